/* Unit tests for common/cc_auth.c: token spec parsing, hashing, checks, roles. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cc_auth.h"

/* Any 64 hex digits: a well-formed hash that no test token has. */
#define HASH_A "fe8cf05dc4e8ba18f78d0e5e4e4f6e3c6d4a98b2d5f6c8f9a0e1b2c3d4e5f607"

/* SHA-256 of "secret-a" and "secret-b", as `printf %s secret-a | sha256sum` gives. */
static char hash_a[65], hash_b[65];

static void auth_setup(void)
{
    cr_assert_eq(cc_auth_hash_token("secret-a", hash_a), 0);
    cr_assert_eq(cc_auth_hash_token("secret-b", hash_b), 0);
}

TestSuite(cc_auth, .init = auth_setup);

Test(cc_auth, hashes_like_sha256sum)
{
    char out[65];

    /* printf %s abc | sha256sum */
    cr_assert_eq(cc_auth_hash_token("abc", out), 0);
    cr_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(cc_auth_hash_token("", out), 0);
    cr_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(cc_auth, accepts_a_known_token_and_returns_its_tenant_and_role)
{
    char spec[256], err[256] = "";
    struct cc_principal p;

    snprintf(spec, sizeof(spec), "%s:acme:supervisor, %s:globex:agent:a-7", hash_a, hash_b);
    cc_auth *auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(auth, "expected the spec to parse, got '%s'", err);
    cr_assert_eq(cc_auth_count(auth), 2);

    cr_assert_eq(cc_auth_check(auth, "secret-b", &p), 0, "expected secret-b to be accepted");
    cr_assert_str_eq(p.tenant, "globex");
    cr_assert_eq(p.role, CC_ROLE_AGENT);
    cr_assert_str_eq(p.subject, "a-7", "expected the agent token's subject");
    cr_assert_eq(strncmp(p.key_id, hash_b, 12), 0, "expected key_id to be the hash prefix");
    cr_assert_eq(strlen(p.key_id), 12);

    cr_assert_eq(cc_auth_check(auth, "secret-a", &p), 0);
    cr_assert_str_eq(p.tenant, "acme");
    cr_assert_eq(p.role, CC_ROLE_SUPERVISOR);
    cr_assert_str_eq(p.subject, "", "expected no subject when the entry names none");
    cc_auth_free(auth);
}

Test(cc_auth, refuses_an_agent_token_without_a_subject)
{
    char spec[256], err[256] = "";

    snprintf(spec, sizeof(spec), "%s:acme:agent", hash_a);
    cr_assert_null(cc_auth_new(spec, err, sizeof(err)),
                   "expected an agent token to need a subject");
    cr_assert(strstr(err, "needs a subject") != NULL, "expected the reason, got '%s'", err);
}

Test(cc_auth, refuses_a_bad_subject_or_a_fifth_field)
{
    char spec[256], err[256] = "";

    snprintf(spec, sizeof(spec), "%s:acme:agent:bad id", hash_a);
    cr_assert_null(cc_auth_new(spec, err, sizeof(err)), "expected a subject with a blank refused");
    cr_assert(strstr(err, "bad subject") != NULL, "got '%s'", err);
    snprintf(spec, sizeof(spec), "%s:acme:agent:a-1:extra", hash_a);
    cr_assert_null(cc_auth_new(spec, err, sizeof(err)), "expected a fifth field refused");
    cr_assert(strstr(err, "malformed") != NULL, "got '%s'", err);
}

Test(cc_auth, rejects_unknown_empty_and_null_tokens_without_touching_the_principal)
{
    char spec[256], err[256];
    struct cc_principal p = {.tenant = "untouched", .role = CC_ROLE_ANALYST};

    snprintf(spec, sizeof(spec), "%s:acme:admin", hash_a);
    cc_auth *auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(auth);
    cr_assert_eq(cc_auth_check(auth, "secret-b", &p), -EACCES);
    cr_assert_eq(cc_auth_check(auth, "", &p), -EACCES);
    cr_assert_eq(cc_auth_check(auth, NULL, &p), -EACCES);
    cr_assert_eq(cc_auth_check(auth, hash_a, &p), -EACCES, "the hash itself is not a token");
    cr_assert_str_eq(p.tenant, "untouched");
    cc_auth_free(auth);
}

Test(cc_auth, accepts_uppercase_hex_and_blanks_around_fields)
{
    char spec[256], err[256] = "", upper[65];
    struct cc_principal p;

    for (size_t i = 0; i < 65; i++)
        upper[i] = (char)((hash_a[i] >= 'a' && hash_a[i] <= 'f') ? hash_a[i] - 32 : hash_a[i]);
    snprintf(spec, sizeof(spec), "  %s : acme : service  ", upper);
    cc_auth *auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(auth, "expected the spec to parse, got '%s'", err);
    cr_assert_eq(cc_auth_check(auth, "secret-a", &p), 0);
    cr_assert_eq(p.role, CC_ROLE_SERVICE);
    cc_auth_free(auth);
}

Test(cc_auth, an_empty_spec_knows_no_token)
{
    char err[64];
    struct cc_principal p;

    cc_auth *auth = cc_auth_new("", err, sizeof(err));
    cr_assert_not_null(auth, "expected an empty spec to be valid");
    cr_assert_eq(cc_auth_count(auth), 0);
    cr_assert_eq(cc_auth_check(auth, "anything", &p), -EACCES);
    cc_auth_free(auth);

    auth = cc_auth_new(NULL, err, sizeof(err));
    cr_assert_not_null(auth, "expected a NULL spec to be valid");
    cc_auth_free(auth);
}

struct bad_spec {
    char spec[160];
    char reason[64]; /* expected in the error message */
};

ParameterizedTestParameters(cc_auth, fails_with_a_clear_error_for_a_bad_spec)
{
    static struct bad_spec cases[] = {
        {"abc:acme:admin", "bad hash"},
        {HASH_A "00:acme:admin", "bad hash"},
        {"zz" HASH_A ":acme:admin", "bad hash"},
        {HASH_A ":acme:root", "unknown role 'root'"},
        {HASH_A ":acme:Admin", "unknown role"},
        {HASH_A "::admin", "bad tenant"},
        {HASH_A ":ac me:admin", "bad tenant"},
        {HASH_A ":acme", "malformed token entry 1"},
        {HASH_A ":acme:admin:x:extra", "malformed token entry 1"},
        {HASH_A ":acme:agent", "needs a subject"},
        {HASH_A ":acme:admin,", "empty token entry 2"},
        {HASH_A ":acme:admin,," HASH_A ":b:admin", "empty token entry 2"},
        {HASH_A ":acme:admin," HASH_A ":other:agent:a1", "repeats the hash of token entry 1"},
    };
    return cr_make_param_array(struct bad_spec, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_spec *c, cc_auth, fails_with_a_clear_error_for_a_bad_spec)
{
    char err[256] = "";

    cc_auth *auth = cc_auth_new(c->spec, err, sizeof(err));
    cr_assert_null(auth, "expected '%s' to be refused", c->spec);
    cr_assert(strstr(err, c->reason) != NULL, "expected an error with '%s', got '%s'", c->reason,
              err);
}

Test(cc_auth, refuses_a_tenant_longer_than_the_maximum)
{
    char spec[256], err[256] = "", tenant[CC_AUTH_TENANT_MAX + 2];

    memset(tenant, 't', sizeof(tenant) - 1);
    tenant[sizeof(tenant) - 1] = '\0';
    snprintf(spec, sizeof(spec), "%s:%s:admin", hash_a, tenant);
    cr_assert_null(cc_auth_new(spec, err, sizeof(err)),
                   "expected a tenant one over the maximum refused");
    tenant[CC_AUTH_TENANT_MAX] = '\0';
    snprintf(spec, sizeof(spec), "%s:%s:admin", hash_a, tenant);
    cc_auth *auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(auth, "expected a tenant of the maximum length accepted, got '%s'", err);
    cc_auth_free(auth);
}

Test(cc_auth, parses_and_names_every_role)
{
    static const char *const names[] = {"admin", "supervisor", "agent", "analyst", "service"};

    for (int r = 0; r < CC_ROLE_COUNT; r++) {
        cr_assert_eq(cc_role_parse(names[r]), (enum cc_role)r, "expected '%s' to parse", names[r]);
        cr_assert_str_eq(cc_role_name((enum cc_role)r), names[r]);
    }
    cr_assert_eq(cc_role_parse("owner"), CC_ROLE_INVALID);
    cr_assert_eq(cc_role_parse(NULL), CC_ROLE_INVALID);
    cr_assert_str_eq(cc_role_name(CC_ROLE_INVALID), "invalid");
    cr_assert_str_eq(cc_role_name(CC_ROLE_COUNT), "invalid");
}

Test(cc_auth, free_accepts_null)
{
    cc_auth_free(NULL);
}
