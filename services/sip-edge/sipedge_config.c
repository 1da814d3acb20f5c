/* sipedge_config: the table of sip-edge's CC_SIPEDGE_* variables. */
#include "sipedge_config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "cc_log.h"

const struct cc_config_var sipedge_config_vars[] = {
    {"CC_SIPEDGE_SIP_URL", CC_CFG_STRING, "sip:*:5060",
     "SIP bind URL: UDP and TCP on this address and port (e.g. sip:127.0.0.1:5070; add "
     ";transport=udp for one transport only)",
     offsetof(struct sipedge_config, sip_url)},
    {"CC_SIPEDGE_MAX_CALLS", CC_CFG_INT, "2000",
     "calls up at once (ringing, queued or talking); one more gets 503 with Retry-After",
     offsetof(struct sipedge_config, max_calls), 1, 1000000},
    {"CC_SIPEDGE_RETRY_AFTER_S", CC_CFG_INT, "5", "Retry-After seconds of the over-capacity 503",
     offsetof(struct sipedge_config, retry_after_s), 1, 3600},
    {"CC_SIPEDGE_NONCE_SECRET", CC_CFG_STRING, "",
     "secret that signs digest nonces; every instance behind one address needs the same one "
     "(empty: random per process)",
     offsetof(struct sipedge_config, nonce_secret), 0, 0, true},
    {"CC_SIPEDGE_NONCE_MAX_AGE_S", CC_CFG_INT, "300",
     "a nonce older than this is answered with 401 stale=true",
     offsetof(struct sipedge_config, nonce_max_age_s), 10, 86400},
    {"CC_SIPEDGE_REG_MIN_EXPIRES", CC_CFG_INT, "60",
     "shortest registration accepted; shorter gets 423 Interval Too Brief",
     offsetof(struct sipedge_config, reg_min_expires), 1, 86400},
    {"CC_SIPEDGE_REG_MAX_EXPIRES", CC_CFG_INT, "3600",
     "longest registration granted (longer requests are cut to this)",
     offsetof(struct sipedge_config, reg_max_expires), 1, 86400},
    {"CC_SIPEDGE_REG_DEFAULT_EXPIRES", CC_CFG_INT, "3600",
     "registration length when the REGISTER names none",
     offsetof(struct sipedge_config, reg_default_expires), 1, 86400},
    {"CC_SIPEDGE_AUTH_FAIL_LIMIT", CC_CFG_INT, "10",
     "failed authentications from one source address per window before it is refused",
     offsetof(struct sipedge_config, auth_fail_limit), 1, 1000000},
    {"CC_SIPEDGE_AUTH_FAIL_WINDOW_S", CC_CFG_INT, "60",
     "window of CC_SIPEDGE_AUTH_FAIL_LIMIT, and how long a refused source stays refused",
     offsetof(struct sipedge_config, auth_fail_window_s), 1, 86400},
    {"CC_SIPEDGE_MIGRATIONS_DIR", CC_CFG_STRING, "services/sip-edge/migrations",
     "directory of sip-edge's NNN_name.sql migrations, applied at start (relative to the working "
     "directory)",
     offsetof(struct sipedge_config, migrations_dir)},
    {"CC_SIPEDGE_PG_POOL", CC_CFG_INT, "4",
     "PostgreSQL connections shared by the SIP thread and the REST handlers (keep > "
     "CC_HTTP_THREADS)",
     offsetof(struct sipedge_config, pg_pool_size), 1, 64},
    {"CC_SIPEDGE_PG_ACQUIRE_TIMEOUT_MS", CC_CFG_INT, "2000",
     "longest a request waits for a free PostgreSQL connection",
     offsetof(struct sipedge_config, pg_acquire_timeout_ms), 1, 60000},
    {"CC_SIPEDGE_CACHE_TTL_MS", CC_CFG_INT, "5000",
     "how long a DID or credential looked up in PostgreSQL is reused (0: no cache); a change made "
     "through another instance is seen after at most this long, through this one at once",
     offsetof(struct sipedge_config, cache_ttl_ms), 0, 60000},
    {"CC_SIPEDGE_DEFAULT_RING_TIMEOUT_S", CC_CFG_INT, "20",
     "how long an agent's phone rings when the routing decision names no ring timeout",
     offsetof(struct sipedge_config, default_ring_timeout_s), 1, 600},
    {"CC_SIPEDGE_PROGRESS_S", CC_CFG_INT, "60",
     "a caller waiting unanswered gets its 180 Ringing again this often (RFC 3261 13.3.1.1: "
     "at least once a minute, or proxies may cancel it after 3 minutes)",
     offsetof(struct sipedge_config, progress_s), 1, 120},
    {"CC_SIPEDGE_TRANSFER_RING_TIMEOUT_S", CC_CFG_INT, "30",
     "how long a number a call is blind-transferred to rings (through the trunk) before the "
     "transfer fails with no_answer",
     offsetof(struct sipedge_config, transfer_ring_timeout_s), 1, 600},
    {"CC_SIPEDGE_CALLBACK_RING_TIMEOUT_S", CC_CFG_INT, "30",
     "how long the customer's phone rings (through the trunk) when a queued callback is dialled "
     "after its agent answered; then the callback ends no_answer",
     offsetof(struct sipedge_config, callback_ring_timeout_s), 1, 600},
    {"CC_SIPEDGE_ORIGINATE_MAX_AGE_S", CC_CFG_INT, "60",
     "oldest originate command (by its CloudEvents time) that is still dialled; an older one "
     "ends failed with detail expired instead of ringing a customer the dialer gave up on",
     offsetof(struct sipedge_config, originate_max_age_s), 1, 86400},
    {"CC_SIPEDGE_INSTANCE_DEAD_S", CC_CFG_INT, "30",
     "an instance that has not renewed its liveness in Redis for this long is dead: a live "
     "instance reports its calls ended (instance_lost) and takes its queued callbacks over; "
     "renewed every third of it",
     offsetof(struct sipedge_config, instance_dead_s), 1, 3600},
    {"CC_SIPEDGE_TAKEOVER_GROUP", CC_CFG_STRING, "default",
     "the instances that take each other over when one dies (those sharing this name and "
     "Redis; 1-64 of A-Z a-z 0-9 _ -): separate fleets on one Redis keep apart; keep it across "
     "restarts, or the previous process's calls are looked for under another name",
     offsetof(struct sipedge_config, takeover_group)},
    {"CC_SIPEDGE_CONSUMER_GROUP", CC_CFG_STRING, "",
     "Kafka consumer group of cc.routing.decisions; must be unique per instance (empty: "
     "sip-edge-<CC_INSTANCE_ID>)",
     offsetof(struct sipedge_config, consumer_group)},
    {"CC_SIPEDGE_DIALER_GROUP", CC_CFG_STRING, "sip-edge-dialer",
     "Kafka consumer group of cc.dialer.commands, shared by every instance (each originate "
     "command is dialled by one of them)",
     offsetof(struct sipedge_config, dialer_group)},
    {"CC_SIPEDGE_DIALER_TENANTS", CC_CFG_STRING, "",
     "comma-separated tenants whose originate commands this instance dials (empty: every "
     "tenant); the others' are acknowledged and left to the instances serving them, which "
     "need a CC_SIPEDGE_DIALER_GROUP of their own",
     offsetof(struct sipedge_config, dialer_tenants)},
    {"CC_SIPEDGE_TRUNK_URI", CC_CFG_STRING, "",
     "SIP trunk (carrier) that outbound calls go through, e.g. "
     "sip:carrier.example:5060;transport=udp (empty: no trunk, originate commands fail)",
     offsetof(struct sipedge_config, trunk_uri)},
    {"CC_SIPEDGE_TRUNK_USER", CC_CFG_STRING, "",
     "user name sip-edge answers the trunk's digest challenges (401/407) with (empty: none)",
     offsetof(struct sipedge_config, trunk_user)},
    {"CC_SIPEDGE_TRUNK_PASSWORD", CC_CFG_STRING, "", "password of CC_SIPEDGE_TRUNK_USER",
     offsetof(struct sipedge_config, trunk_password), 0, 0, true},
    {"CC_SIPEDGE_TRUNK_FROM_DOMAIN", CC_CFG_STRING, "",
     "host part of the From of outbound calls (sip:<caller id>@<domain>; empty: the trunk's "
     "host)",
     offsetof(struct sipedge_config, trunk_from_domain)},
    {"CC_SIPEDGE_MEDIA_ADDR", CC_CFG_STRING, "",
     "address put in the placeholder SDP offer of an outbound call until the agent's SDP "
     "replaces it (empty: the host of CC_SIPEDGE_SIP_URL, or 127.0.0.1 for a wildcard)",
     offsetof(struct sipedge_config, media_addr)},
};

const size_t sipedge_config_nvars = sizeof(sipedge_config_vars) / sizeof(sipedge_config_vars[0]);

long sipedge_config_nonce_secret(const struct sipedge_config *cfg, unsigned char *out, size_t cap)
{
    size_t len = cfg->nonce_secret ? strlen(cfg->nonce_secret) : 0;

    if (len > 0) {
        if (len > cap)
            len = cap;
        memcpy(out, cfg->nonce_secret, len);
        return (long)len;
    }
    len = cap < 32 ? cap : 32;
    if (getrandom(out, len, 0) != (ssize_t)len)
        return -errno;
    CC_WARN("no CC_SIPEDGE_NONCE_SECRET: digest nonces are signed with a random per-process "
            "secret; several instances behind one address need one shared secret");
    return (long)len;
}
