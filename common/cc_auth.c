/* cc_auth: bearer tokens stored as SHA-256 hashes, each with a tenant and role; see cc_auth.h. */
#include "cc_auth.h"
#include "cc_event.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HASH_LEN 32

struct auth_entry {
    unsigned char hash[HASH_LEN];
    struct cc_principal principal;
};

struct cc_auth {
    size_t count;
    struct auth_entry *entries;
    EVP_MD *sha256; /* fetched once: an implicit fetch on every check costs about 1 us */
};

static const char *const role_names[CC_ROLE_COUNT] = {
    "admin", "supervisor", "agent", "analyst", "service",
};

enum cc_role cc_role_parse(const char *text)
{
    for (int r = 0; text && r < CC_ROLE_COUNT; r++) {
        if (strcmp(text, role_names[r]) == 0)
            return (enum cc_role)r;
    }
    return CC_ROLE_INVALID;
}

const char *cc_role_name(enum cc_role role)
{
    if (role < 0 || role >= CC_ROLE_COUNT)
        return "invalid";
    return role_names[role];
}

static int sha256(const EVP_MD *md, const char *data, size_t len, unsigned char out[HASH_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, md, NULL) != 1 || n != HASH_LEN)
        return -EIO;
    return 0;
}

int cc_auth_hash_token(const char *token, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[HASH_LEN];

    if (!token || sha256(EVP_sha256(), token, strlen(token), digest) < 0)
        return -EIO;
    for (size_t i = 0; i < HASH_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool parse_hash(const char *text, unsigned char out[HASH_LEN])
{
    if (strlen(text) != 2 * HASH_LEN)
        return false;
    for (size_t i = 0; i < HASH_LEN; i++) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* Strips leading and trailing blanks in place; returns the new start. */
static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Splits text at the next ':' (cut in place); returns the rest, or NULL when there is none. */
static char *split_field(char *text)
{
    char *colon = text ? strchr(text, ':') : NULL;

    if (!colon)
        return NULL;
    *colon = '\0';
    return colon + 1;
}

/* Parses one "hash:tenant:role[:subject]" entry (1-based position n, for messages) into *e. */
static int parse_entry(char *text, size_t n, struct auth_entry *e, char *err, size_t errlen)
{
    char *hash = trim(text);
    char *tenant = split_field(hash);
    char *role = split_field(tenant);
    char *subject = split_field(role);
    enum cc_role r;

    if (*hash == '\0') {
        snprintf(err, errlen, "empty token entry %zu (stray comma?)", n);
        return -EINVAL;
    }
    if (!role || (subject && strchr(subject, ':'))) {
        snprintf(err, errlen,
                 "malformed token entry %zu: expected 'sha256hex:tenant:role[:subject]'", n);
        return -EINVAL;
    }
    hash = trim(hash);
    tenant = trim(tenant);
    role = trim(role);
    subject = subject ? trim(subject) : "";
    if (!parse_hash(hash, e->hash)) {
        snprintf(err, errlen, "bad hash in token entry %zu: expected 64 hex digits", n);
        return -EINVAL;
    }
    if (!cc_tenant_valid(tenant)) {
        snprintf(err, errlen,
                 "bad tenant in token entry %zu: expected 1..%d characters of [A-Za-z0-9_-]", n,
                 CC_AUTH_TENANT_MAX);
        return -EINVAL;
    }
    r = cc_role_parse(role);
    if (r == CC_ROLE_INVALID) {
        snprintf(err, errlen,
                 "unknown role '%.32s' in token entry %zu: expected admin, supervisor, agent, "
                 "analyst or service",
                 role, n);
        return -EINVAL;
    }
    if (*subject && !cc_tenant_valid(subject)) {
        snprintf(err, errlen,
                 "bad subject in token entry %zu: expected 1..%d characters of [A-Za-z0-9_-]", n,
                 CC_AUTH_SUBJECT_MAX);
        return -EINVAL;
    }
    if (r == CC_ROLE_AGENT && !*subject) {
        snprintf(err, errlen,
                 "token entry %zu: an agent token needs a subject (the agent id it acts as)", n);
        return -EINVAL;
    }
    memset(&e->principal, 0, sizeof(e->principal));
    memcpy(e->principal.tenant, tenant, strlen(tenant) + 1);
    memcpy(e->principal.subject, subject, strlen(subject) + 1);
    e->principal.role = r;
    for (size_t i = 0; i < 6; i++)
        snprintf(e->principal.key_id + 2 * i, 3, "%02x", e->hash[i]);
    return 0;
}

/* Rejects two entries with the same hash: one token must map to one principal. */
static int check_duplicates(const cc_auth *auth, char *err, size_t errlen)
{
    for (size_t i = 1; i < auth->count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (memcmp(auth->entries[i].hash, auth->entries[j].hash, HASH_LEN) == 0) {
                snprintf(err, errlen, "token entry %zu repeats the hash of token entry %zu", i + 1,
                         j + 1);
                return -EINVAL;
            }
        }
    }
    return 0;
}

cc_auth *cc_auth_new(const char *spec, char *err, size_t errlen)
{
    cc_auth *auth = calloc(1, sizeof(*auth));
    char *copy = NULL, *cursor, *item;
    size_t slots = 1;

    if (!auth)
        goto fail_nomem;
    auth->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!auth->sha256) {
        snprintf(err, errlen, "cannot load SHA-256 from OpenSSL");
        goto fail;
    }
    if (!spec || spec[strspn(spec, " \t\r\n")] == '\0')
        return auth; /* no token configured: every check fails */
    copy = strdup(spec);
    if (!copy)
        goto fail_nomem;
    for (const char *p = spec; *p; p++)
        slots += *p == ',';
    auth->entries = calloc(slots, sizeof(*auth->entries));
    if (!auth->entries)
        goto fail_nomem;
    cursor = copy;
    while ((item = strsep(&cursor, ",")) != NULL) {
        if (parse_entry(item, auth->count + 1, &auth->entries[auth->count], err, errlen) < 0)
            goto fail;
        auth->count++;
    }
    if (check_duplicates(auth, err, errlen) < 0)
        goto fail;
    free(copy);
    return auth;

fail_nomem:
    snprintf(err, errlen, "out of memory while parsing the token list");
fail:
    free(copy);
    cc_auth_free(auth);
    return NULL;
}

void cc_auth_free(cc_auth *auth)
{
    if (!auth)
        return;
    if (auth->entries)
        OPENSSL_cleanse(auth->entries, auth->count * sizeof(*auth->entries));
    free(auth->entries);
    EVP_MD_free(auth->sha256);
    free(auth);
}

size_t cc_auth_count(const cc_auth *auth)
{
    return auth ? auth->count : 0;
}

int cc_auth_check(const cc_auth *auth, const char *token, struct cc_principal *out)
{
    unsigned char digest[HASH_LEN];
    size_t found = SIZE_MAX;

    if (!auth || !token || *token == '\0')
        return -EACCES;
    if (sha256(auth->sha256, token, strlen(token), digest) < 0)
        return -EACCES;
    /* Visit every entry whatever matches, so the time taken says nothing about the table. */
    for (size_t i = 0; i < auth->count; i++) {
        if (CRYPTO_memcmp(digest, auth->entries[i].hash, HASH_LEN) == 0)
            found = i;
    }
    if (found == SIZE_MAX)
        return -EACCES;
    *out = auth->entries[found].principal;
    return 0;
}
