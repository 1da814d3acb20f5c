/*
 * sipedge_registrar: the SIP registrar of agent phones.
 *
 * REGISTER with digest authentication (sipedge_digest: stateless signed nonces, HA1 from
 * sipedge_store), several contacts per AOR, expiry clamped to [min, max] (423 below min),
 * `Expires: 0` / `Contact: *` un-register, bindings persisted in PostgreSQL before the 200.
 * Every accepted change publishes cc.agent.registered with the AOR's newest remaining contact
 * (expires_s 0 when none is left). Authentication failures are counted per source address: past
 * CC_SIPEDGE_AUTH_FAIL_LIMIT within CC_SIPEDGE_AUTH_FAIL_WINDOW_S the source is answered 403
 * without a database lookup (one log line per window) until the window passes.
 *
 * Thread-safety: none -- every function runs on the SIP (su_root) thread.
 */
#ifndef SIPEDGE_REGISTRAR_H
#define SIPEDGE_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>

#include <sofia-sip/nua.h>

#include "sipedge_bus.h"
#include "sipedge_config.h"
#include "sipedge_store.h"

typedef struct sipedge_registrar sipedge_registrar;

struct sipedge_registrar_config {
    const struct sipedge_config *cfg; /* borrowed */
    sipedge_store *store;             /* borrowed */
    const struct sipedge_pub *pub;    /* borrowed */
    const unsigned char *secret;      /* nonce secret (copied) */
    size_t secret_len;                /* 1..SIPEDGE_SECRET_MAX */
};

/* NULL on ENOMEM or a bad secret. */
sipedge_registrar *sipedge_registrar_new(const struct sipedge_registrar_config *c);
void sipedge_registrar_free(sipedge_registrar *r);
/* Answers one REGISTER (the event nua_i_register) and destroys nh. */
void sipedge_registrar_on_register(sipedge_registrar *r, nua_t *nua, nua_handle_t *nh,
                                   const sip_t *sip);
/* Authenticates an INVITE from an agent's phone (a consultation call) with the credential of
 * its From (user@domain, realm = domain): true with *cred filled when the Proxy-Authorization
 * passed; otherwise answers it (407 challenge, 400, 403 -- the same failure limit as REGISTER
 * -- or 503) and returns false. Does not destroy nh. */
bool sipedge_registrar_authenticate(sipedge_registrar *r, nua_t *nua, nua_handle_t *nh,
                                    const sip_t *sip, struct sipedge_credential *cred);
/* Deletes expired bindings and publishes what changed; call about once a second. */
void sipedge_registrar_sweep(sipedge_registrar *r);

#endif
