/*
 * sipedge_digest: SIP digest authentication arithmetic (RFC 2617 / RFC 7616, MD5, qop=auth or
 * no qop) and stateless nonces. Pure functions, no I/O; thread-safe.
 *
 * Nonces are "<unix seconds, 8 hex>" followed by the first 16 bytes (32 hex) of
 * HMAC-SHA256(secret, "<seconds hex>:<realm>") -- any instance sharing the secret can check one
 * without storing it, and a nonce of another realm is refused.
 */
#ifndef SIPEDGE_DIGEST_H
#define SIPEDGE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIPEDGE_DIGEST_HEX_LEN   32 /* an MD5 in lowercase hex, without the NUL */
#define SIPEDGE_DIGEST_NONCE_LEN 40 /* 8 + 32 hex digits, without the NUL */

/* The parts of an Authorization / Proxy-Authorization header's digest credentials (borrowed
 * strings; qop, nc and cnonce are NULL when the client sent no qop). */
struct sipedge_digest_creds {
    const char *username, *realm, *nonce, *uri, *response;
    const char *qop, *nc, *cnonce, *algorithm; /* algorithm NULL or "MD5" */
};

enum sipedge_digest_verdict {
    SIPEDGE_DIGEST_OK = 0,
    SIPEDGE_DIGEST_BAD_RESPONSE, /* wrong password (or a tampered header) */
    SIPEDGE_DIGEST_STALE_NONCE,  /* our nonce, correctly signed, but older than the max age */
    SIPEDGE_DIGEST_BAD_NONCE,    /* not one of ours (or another realm's) */
    SIPEDGE_DIGEST_MALFORMED,    /* a missing field, an unsupported algorithm or qop */
};

/* out[33] = lowercase hex MD5(username ":" realm ":" password). 0, or -EINVAL on NULL input. */
int sipedge_digest_ha1(const char *username, const char *realm, const char *password,
                       char out[SIPEDGE_DIGEST_HEX_LEN + 1]);

/* out[41] = a fresh nonce for realm, issued at now_s, signed with secret (secret_len bytes). */
void sipedge_digest_nonce(const void *secret, size_t secret_len, const char *realm, int64_t now_s,
                          char out[SIPEDGE_DIGEST_NONCE_LEN + 1]);

/* out[33] = the expected request-digest (RFC 2617 3.2.2.1) for ha1 (32 hex) and a request of
 * method to uri: MD5(ha1:nonce:nc:cnonce:auth:HA2) when qop is "auth" (nc and cnonce required),
 * MD5(ha1:nonce:HA2) when qop is NULL, HA2 = MD5(method:uri). 0, or -EINVAL on a missing input
 * or another qop. No nonce rules: sipedge_digest_check applies those. */
int sipedge_digest_response(const char *ha1, const char *method, const char *uri, const char *nonce,
                            const char *qop, const char *nc, const char *cnonce,
                            char out[SIPEDGE_DIGEST_HEX_LEN + 1]);

/* Checks creds for a request of method (e.g. "REGISTER") against the stored ha1 (32 hex) and
 * the nonce rules (signed by secret for creds->realm, issued no more than max_age_s before
 * now_s, not in the future by more than 5 s). Compares the response in constant time. */
enum sipedge_digest_verdict sipedge_digest_check(const struct sipedge_digest_creds *creds,
                                                 const char *method, const char *ha1,
                                                 const void *secret, size_t secret_len,
                                                 int64_t now_s, int max_age_s);

/* "ok", "bad response", "stale nonce", "bad nonce", "malformed". */
const char *sipedge_digest_verdict_name(enum sipedge_digest_verdict v);

#endif
