/*
 * Unit tests for services/sip-edge/sipedge_digest.c: RFC 2617's own example, responses with and
 * without qop computed independently (Python hashlib/hmac), and every nonce verdict.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "sipedge_digest.h"

#define SD_SECRET "test-secret"
#define SD_NOW    1700000000 /* the nonce below was issued at this second */
#define SD_NONCE  "6553f1000a8e9b31614c5b572105d20aeeb2357d" /* realm "acme", SD_SECRET */
#define SD_HA1    "bc8803f5291a9c0f01f0ac66b389c609"         /* MD5("1001:acme:s3cret-pass") */
#define SD_NOQOP  "417da624d6e2001f863bfa9e8ab347b8"         /* REGISTER sip:acme, no qop */
#define SD_QOP    "11522876a0403dbac24da28c02b3018e"         /* the same, qop=auth nc=00000002 */

TestSuite(sipedge_digest);

static struct sipedge_digest_creds sd_creds(const char *response, bool qop)
{
    return (struct sipedge_digest_creds){.username = "1001",
                                         .realm = "acme",
                                         .nonce = SD_NONCE,
                                         .uri = "sip:acme",
                                         .response = response,
                                         .qop = qop ? "auth" : NULL,
                                         .nc = qop ? "00000002" : NULL,
                                         .cnonce = qop ? "abcdef12" : NULL,
                                         .algorithm = qop ? "MD5" : NULL};
}

static enum sipedge_digest_verdict sd_check(const struct sipedge_digest_creds *c, int64_t now)
{
    return sipedge_digest_check(c, "REGISTER", SD_HA1, SD_SECRET, strlen(SD_SECRET), now, 300);
}

Test(sipedge_digest, computes_the_rfc2617_example)
{
    char ha1[SIPEDGE_DIGEST_HEX_LEN + 1], resp[SIPEDGE_DIGEST_HEX_LEN + 1];

    cr_assert_eq(sipedge_digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", ha1), 0);
    cr_assert_str_eq(ha1, "939e7578ed9e3c518a452acee763bce9", "expected RFC 2617's HA1");
    cr_assert_eq(sipedge_digest_response(ha1, "GET", "/dir/index.html",
                                         "dcd98b7102dd2f0e8b11d0f600bfb0c093", "auth", "00000001",
                                         "0a4f113b", resp),
                 0);
    cr_assert_str_eq(resp, "6629fae49393a05397450978507c4ef1",
                     "expected the response of RFC 2617 section 3.5");
}

Test(sipedge_digest, computes_a_response_without_qop)
{
    char resp[SIPEDGE_DIGEST_HEX_LEN + 1];

    cr_assert_eq(
        sipedge_digest_response(SD_HA1, "REGISTER", "sip:acme", SD_NONCE, NULL, NULL, NULL, resp),
        0);
    cr_assert_str_eq(resp, SD_NOQOP, "expected MD5(HA1:nonce:HA2) without qop");
}

Test(sipedge_digest, refuses_missing_inputs)
{
    char out[SIPEDGE_DIGEST_HEX_LEN + 1];

    cr_assert_eq(sipedge_digest_ha1(NULL, "r", "p", out), -EINVAL);
    cr_assert_eq(sipedge_digest_response(SD_HA1, "REGISTER", "sip:acme", SD_NONCE, "auth-int", "1",
                                         "c", out),
                 -EINVAL, "expected qop auth-int to be refused");
    cr_assert_eq(
        sipedge_digest_response(SD_HA1, "REGISTER", "sip:acme", SD_NONCE, "auth", NULL, "c", out),
        -EINVAL, "expected qop=auth without nc to be refused");
}

Test(sipedge_digest, makes_nonces_of_the_documented_form)
{
    char nonce[SIPEDGE_DIGEST_NONCE_LEN + 1], other[SIPEDGE_DIGEST_NONCE_LEN + 1];

    sipedge_digest_nonce(SD_SECRET, strlen(SD_SECRET), "acme", SD_NOW, nonce);
    cr_assert_str_eq(nonce, SD_NONCE, "expected <ts hex> + HMAC-SHA256 prefix, as computed apart");
    sipedge_digest_nonce(SD_SECRET, strlen(SD_SECRET), "globex", SD_NOW, other);
    cr_assert_str_neq(nonce, other, "expected the realm to change the nonce");
}

Test(sipedge_digest, accepts_a_right_response_with_and_without_qop)
{
    struct sipedge_digest_creds c = sd_creds(SD_QOP, true);

    cr_assert_eq(sd_check(&c, SD_NOW + 10), SIPEDGE_DIGEST_OK, "expected qop=auth to pass");
    c = sd_creds(SD_NOQOP, false);
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_OK, "expected no qop to pass");
    c = sd_creds("11522876A0403DBAC24DA28C02B3018E", true);
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_OK, "expected upper-case hex to pass");
}

Test(sipedge_digest, refuses_a_wrong_password)
{
    struct sipedge_digest_creds c = sd_creds(SD_QOP, true);
    char ha1[SIPEDGE_DIGEST_HEX_LEN + 1];

    sipedge_digest_ha1("1001", "acme", "wrong-pass", ha1);
    cr_assert_eq(
        sipedge_digest_check(&c, "REGISTER", ha1, SD_SECRET, strlen(SD_SECRET), SD_NOW, 300),
        SIPEDGE_DIGEST_BAD_RESPONSE);
    c = sd_creds(SD_QOP, true);
    c.uri = "sip:globex"; /* tampered after signing */
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_BAD_RESPONSE);
    cr_assert_eq(
        sipedge_digest_check(&c, "INVITE", SD_HA1, SD_SECRET, strlen(SD_SECRET), SD_NOW, 300),
        SIPEDGE_DIGEST_BAD_RESPONSE, "expected another method to change HA2");
}

Test(sipedge_digest, calls_an_old_nonce_stale_only_when_the_response_is_right)
{
    struct sipedge_digest_creds c = sd_creds(SD_QOP, true);

    cr_assert_eq(sd_check(&c, SD_NOW + 300), SIPEDGE_DIGEST_OK, "expected max age inclusive");
    cr_assert_eq(sd_check(&c, SD_NOW + 301), SIPEDGE_DIGEST_STALE_NONCE);
    c.response = SD_NOQOP;
    cr_assert_eq(sd_check(&c, SD_NOW + 301), SIPEDGE_DIGEST_BAD_RESPONSE,
                 "expected no stale=true for a wrong response");
}

Test(sipedge_digest, refuses_nonces_that_are_not_ours)
{
    struct sipedge_digest_creds c = sd_creds(SD_QOP, true);
    char forged[] = SD_NONCE;

    forged[39] = forged[39] == '0' ? '1' : '0';
    c.nonce = forged;
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_BAD_NONCE, "expected a bad signature");
    c.nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_BAD_NONCE, "expected a foreign nonce");
    c.nonce = "6553F1000A8E9B31614C5B572105D20AEEB2357D";
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_BAD_NONCE, "expected upper case refused");
    c = sd_creds(SD_QOP, true);
    cr_assert_eq(sipedge_digest_check(&c, "REGISTER", SD_HA1, "other", 5, SD_NOW, 300),
                 SIPEDGE_DIGEST_BAD_NONCE, "expected another secret to refuse the nonce");
    cr_assert_eq(sd_check(&c, SD_NOW - 6), SIPEDGE_DIGEST_BAD_NONCE,
                 "expected a nonce from more than 5 s in the future refused");
    cr_assert_eq(sd_check(&c, SD_NOW - 5), SIPEDGE_DIGEST_OK, "expected 5 s of skew allowed");
}

Test(sipedge_digest, refuses_another_realms_nonce)
{
    char nonce[SIPEDGE_DIGEST_NONCE_LEN + 1], ha1[SIPEDGE_DIGEST_HEX_LEN + 1];
    char resp[SIPEDGE_DIGEST_HEX_LEN + 1];
    struct sipedge_digest_creds c;

    /* a nonce issued for globex, replayed with realm acme and an otherwise right response */
    sipedge_digest_nonce(SD_SECRET, strlen(SD_SECRET), "globex", SD_NOW, nonce);
    sipedge_digest_ha1("1001", "acme", "s3cret-pass", ha1);
    sipedge_digest_response(ha1, "REGISTER", "sip:acme", nonce, NULL, NULL, NULL, resp);
    c = sd_creds(resp, false);
    c.nonce = nonce;
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_BAD_NONCE);
}

Test(sipedge_digest, calls_incomplete_credentials_malformed)
{
    struct sipedge_digest_creds c = sd_creds(SD_QOP, true);

    c.username = NULL;
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_MALFORMED, "expected no username refused");
    c = sd_creds(SD_QOP, true);
    c.algorithm = "SHA-256";
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_MALFORMED, "expected SHA-256 unsupported");
    c = sd_creds(SD_QOP, true);
    c.qop = "auth-int";
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_MALFORMED, "expected auth-int unsupported");
    c = sd_creds(SD_QOP, true);
    c.cnonce = NULL;
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_MALFORMED, "expected qop without cnonce");
    c = sd_creds("abc", true);
    cr_assert_eq(sd_check(&c, SD_NOW), SIPEDGE_DIGEST_MALFORMED, "expected a short response");
    c = sd_creds(SD_QOP, true);
    cr_assert_eq(sipedge_digest_check(&c, "REGISTER", "short", SD_SECRET, 11, SD_NOW, 300),
                 SIPEDGE_DIGEST_MALFORMED, "expected a bad stored HA1 refused");
    cr_assert_str_eq(sipedge_digest_verdict_name(SIPEDGE_DIGEST_STALE_NONCE), "stale nonce");
}
