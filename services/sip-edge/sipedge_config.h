/*
 * sipedge_config: sip-edge's CC_* variables (one const table) and the struct they load into.
 *
 * Loaded once by main() with cc_config_main(); read-only afterwards and shared freely.
 * `cc-sip-edge --help` prints every variable, the common ones too.
 */
#ifndef SIPEDGE_CONFIG_H
#define SIPEDGE_CONFIG_H

#include <stddef.h>

#include "cc_config.h"

#define SIPEDGE_SERVICE           "sip-edge"
#define SIPEDGE_DEFAULT_HTTP_PORT 8082
#define SIPEDGE_SECRET_MAX        128 /* bytes of nonce secret used */

struct sipedge_config {
    struct cc_common_config common;
    const char *sip_url;           /* CC_SIPEDGE_SIP_URL: NUA bind URL (UDP and TCP) */
    long max_calls;                /* CC_SIPEDGE_MAX_CALLS: calls up at once before 503 */
    long retry_after_s;            /* CC_SIPEDGE_RETRY_AFTER_S: Retry-After of that 503 */
    const char *nonce_secret;      /* CC_SIPEDGE_NONCE_SECRET (secret; "" = random per process) */
    long nonce_max_age_s;          /* CC_SIPEDGE_NONCE_MAX_AGE_S: older nonces are stale */
    long reg_min_expires;          /* CC_SIPEDGE_REG_MIN_EXPIRES: below -> 423 */
    long reg_max_expires;          /* CC_SIPEDGE_REG_MAX_EXPIRES: longer requests are cut */
    long reg_default_expires;      /* CC_SIPEDGE_REG_DEFAULT_EXPIRES: no Expires given */
    long auth_fail_limit;          /* CC_SIPEDGE_AUTH_FAIL_LIMIT: failures per source per window */
    long auth_fail_window_s;       /* CC_SIPEDGE_AUTH_FAIL_WINDOW_S */
    const char *migrations_dir;    /* CC_SIPEDGE_MIGRATIONS_DIR */
    long pg_pool_size;             /* CC_SIPEDGE_PG_POOL: connections (REST + SIP thread) */
    long pg_acquire_timeout_ms;    /* CC_SIPEDGE_PG_ACQUIRE_TIMEOUT_MS */
    long cache_ttl_ms;             /* CC_SIPEDGE_CACHE_TTL_MS: DID/credential lookups cached */
    long default_ring_timeout_s;   /* CC_SIPEDGE_DEFAULT_RING_TIMEOUT_S: decision without one */
    long progress_s;               /* CC_SIPEDGE_PROGRESS_S: 180 again to a waiting caller */
    long transfer_ring_timeout_s;  /* CC_SIPEDGE_TRANSFER_RING_TIMEOUT_S: a number transferred to */
    long callback_ring_timeout_s;  /* CC_SIPEDGE_CALLBACK_RING_TIMEOUT_S: a callback's customer */
    long originate_max_age_s;      /* CC_SIPEDGE_ORIGINATE_MAX_AGE_S: older commands expire */
    long instance_dead_s;          /* CC_SIPEDGE_INSTANCE_DEAD_S: silent this long = dead */
    const char *takeover_group;    /* CC_SIPEDGE_TAKEOVER_GROUP: instances that take each
                                    * other over */
    const char *consumer_group;    /* CC_SIPEDGE_CONSUMER_GROUP ("" = sip-edge-<instance>) */
    const char *dialer_group;      /* CC_SIPEDGE_DIALER_GROUP: cc.dialer.commands, shared */
    const char *dialer_tenants;    /* CC_SIPEDGE_DIALER_TENANTS: "a,b" dialled here ("" = all) */
    const char *trunk_uri;         /* CC_SIPEDGE_TRUNK_URI ("" = no trunk: originates fail) */
    const char *trunk_user;        /* CC_SIPEDGE_TRUNK_USER (digest user; "" = none) */
    const char *trunk_password;    /* CC_SIPEDGE_TRUNK_PASSWORD (secret) */
    const char *trunk_from_domain; /* CC_SIPEDGE_TRUNK_FROM_DOMAIN ("" = the trunk's host) */
    const char *media_addr;        /* CC_SIPEDGE_MEDIA_ADDR: address of placeholder SDP offers */
};

/* sip-edge's own variables (the common ones come from cc_config). */
extern const struct cc_config_var sipedge_config_vars[];
extern const size_t sipedge_config_nvars;

/* Fills out (cap bytes) with the nonce secret: CC_SIPEDGE_NONCE_SECRET's bytes when set, else
 * 32 random bytes (with a warning: instances behind one address need a shared secret). Returns
 * the number of bytes, or a negative errno (getrandom failed). */
long sipedge_config_nonce_secret(const struct sipedge_config *cfg, unsigned char *out, size_t cap);

#endif
