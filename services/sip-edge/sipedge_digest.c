/* sipedge_digest: digest arithmetic and stateless nonces (see sipedge_digest.h). */
#include "sipedge_digest.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NONCE_TS_LEN     8  /* hex digits of the issue time */
#define NONCE_MAC_BYTES  16 /* of the HMAC-SHA256, shown as 32 hex digits */
#define NONCE_FUTURE_MAX 5  /* seconds a nonce may be ahead of now_s (clock skew of peers) */

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[n] == '\0';
}

/* out[33] = hex MD5 of the NULL-terminated parts joined by ':'. 0 or -EIO. */
static int md5_joined(char out[SIPEDGE_DIGEST_HEX_LEN + 1], const char *const *parts)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL);

    for (size_t i = 0; ok && parts[i]; i++) {
        if (i > 0)
            ok = EVP_DigestUpdate(ctx, ":", 1);
        if (ok)
            ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
    }
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 16;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    to_hex(md, 16, out);
    return 0;
}

/* out[33] = hex of the first 16 bytes of HMAC-SHA256(secret, "<ts hex>:<realm>"). 0 or -EIO. */
static int nonce_mac(const void *secret, size_t secret_len, const char *ts_hex, const char *realm,
                     char out[2 * NONCE_MAC_BYTES + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    char msg[NONCE_TS_LEN + 1 + 256 + 1];
    size_t maclen = 0;
    int len = snprintf(msg, sizeof(msg), "%s:%s", ts_hex, realm);

    if (len < 0 || (size_t)len >= sizeof(msg))
        return -EIO; /* a realm this long never had a nonce of ours */
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret_len ? secret : "", secret_len,
                   (const unsigned char *)msg, (size_t)len, mac, sizeof(mac), &maclen) ||
        maclen < NONCE_MAC_BYTES)
        return -EIO;
    to_hex(mac, NONCE_MAC_BYTES, out);
    return 0;
}

int sipedge_digest_ha1(const char *username, const char *realm, const char *password,
                       char out[SIPEDGE_DIGEST_HEX_LEN + 1])
{
    const char *parts[] = {username, realm, password, NULL};

    if (!username || !realm || !password || !out)
        return -EINVAL;
    return md5_joined(out, parts);
}

void sipedge_digest_nonce(const void *secret, size_t secret_len, const char *realm, int64_t now_s,
                          char out[SIPEDGE_DIGEST_NONCE_LEN + 1])
{
    char ts[NONCE_TS_LEN + 1];

    snprintf(ts, sizeof(ts), "%08x", (unsigned)(uint32_t)now_s);
    memcpy(out, ts, NONCE_TS_LEN);
    /* On failure the signature stays zeros: sipedge_digest_check refuses such a nonce. */
    if (!realm || nonce_mac(secret, secret_len, ts, realm, out + NONCE_TS_LEN) < 0) {
        memset(out + NONCE_TS_LEN, '0', 2 * NONCE_MAC_BYTES);
        out[SIPEDGE_DIGEST_NONCE_LEN] = '\0';
    }
}

int sipedge_digest_response(const char *ha1, const char *method, const char *uri, const char *nonce,
                            const char *qop, const char *nc, const char *cnonce,
                            char out[SIPEDGE_DIGEST_HEX_LEN + 1])
{
    char ha2[SIPEDGE_DIGEST_HEX_LEN + 1];
    int rc;

    if (!ha1 || !method || !uri || !nonce || !out)
        return -EINVAL;
    if (qop && (strcasecmp(qop, "auth") != 0 || !nc || !cnonce))
        return -EINVAL;
    rc = md5_joined(ha2, (const char *const[]){method, uri, NULL});
    if (rc < 0)
        return rc;
    if (qop)
        return md5_joined(out, (const char *const[]){ha1, nonce, nc, cnonce, "auth", ha2, NULL});
    return md5_joined(out, (const char *const[]){ha1, nonce, ha2, NULL});
}

/* The nonce's signature and age; the response is judged before staleness (RFC 2617 3.2.1:
 * stale=true only for a valid response). Sets *age_s. */
static enum sipedge_digest_verdict nonce_verdict(const char *nonce, const char *realm,
                                                 const void *secret, size_t secret_len,
                                                 int64_t now_s, int64_t *age_s)
{
    char ts[NONCE_TS_LEN + 1], want[2 * NONCE_MAC_BYTES + 1];
    uint32_t issued, now32 = (uint32_t)now_s;

    if (strlen(nonce) != SIPEDGE_DIGEST_NONCE_LEN || !is_lower_hex(nonce, SIPEDGE_DIGEST_NONCE_LEN))
        return SIPEDGE_DIGEST_BAD_NONCE;
    memcpy(ts, nonce, NONCE_TS_LEN);
    ts[NONCE_TS_LEN] = '\0';
    if (nonce_mac(secret, secret_len, ts, realm, want) < 0 ||
        CRYPTO_memcmp(want, nonce + NONCE_TS_LEN, 2 * NONCE_MAC_BYTES) != 0)
        return SIPEDGE_DIGEST_BAD_NONCE;
    if (sscanf(ts, "%8x", &issued) != 1)
        return SIPEDGE_DIGEST_BAD_NONCE;
    /* 32-bit seconds wrap in 2106; the difference modulo 2^32 is still right then */
    *age_s = (int64_t)(int32_t)(now32 - issued);
    if (*age_s < -NONCE_FUTURE_MAX)
        return SIPEDGE_DIGEST_BAD_NONCE;
    return SIPEDGE_DIGEST_OK;
}

static bool creds_complete(const struct sipedge_digest_creds *c)
{
    if (!c->username || !c->realm || !c->nonce || !c->uri || !c->response)
        return false;
    if (c->algorithm && strcasecmp(c->algorithm, "MD5") != 0)
        return false;
    if (c->qop && (strcasecmp(c->qop, "auth") != 0 || !c->nc || !c->cnonce))
        return false;
    return strlen(c->response) == SIPEDGE_DIGEST_HEX_LEN;
}

enum sipedge_digest_verdict sipedge_digest_check(const struct sipedge_digest_creds *creds,
                                                 const char *method, const char *ha1,
                                                 const void *secret, size_t secret_len,
                                                 int64_t now_s, int max_age_s)
{
    char want[SIPEDGE_DIGEST_HEX_LEN + 1], given[SIPEDGE_DIGEST_HEX_LEN + 1];
    enum sipedge_digest_verdict v;
    int64_t age_s = 0;

    if (!creds || !method || !ha1 || strlen(ha1) != SIPEDGE_DIGEST_HEX_LEN ||
        !creds_complete(creds))
        return SIPEDGE_DIGEST_MALFORMED;
    v = nonce_verdict(creds->nonce, creds->realm, secret, secret_len, now_s, &age_s);
    if (v != SIPEDGE_DIGEST_OK)
        return v;
    if (sipedge_digest_response(ha1, method, creds->uri, creds->nonce, creds->qop, creds->nc,
                                creds->cnonce, want) < 0)
        return SIPEDGE_DIGEST_MALFORMED;
    /* clients may send hex in upper case: compare lowercase copies, in constant time */
    for (size_t i = 0; i <= SIPEDGE_DIGEST_HEX_LEN; i++)
        given[i] = (char)((creds->response[i] >= 'A' && creds->response[i] <= 'F')
                              ? creds->response[i] - 'A' + 'a'
                              : creds->response[i]);
    if (CRYPTO_memcmp(want, given, SIPEDGE_DIGEST_HEX_LEN) != 0)
        return SIPEDGE_DIGEST_BAD_RESPONSE;
    return age_s > max_age_s ? SIPEDGE_DIGEST_STALE_NONCE : SIPEDGE_DIGEST_OK;
}

const char *sipedge_digest_verdict_name(enum sipedge_digest_verdict v)
{
    switch (v) {
    case SIPEDGE_DIGEST_OK:
        return "ok";
    case SIPEDGE_DIGEST_BAD_RESPONSE:
        return "bad response";
    case SIPEDGE_DIGEST_STALE_NONCE:
        return "stale nonce";
    case SIPEDGE_DIGEST_BAD_NONCE:
        return "bad nonce";
    case SIPEDGE_DIGEST_MALFORMED:
        return "malformed";
    }
    return "malformed";
}
