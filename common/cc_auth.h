/*
 * cc_auth: bearer-token authentication; every token carries a tenant and a role.
 *
 * Tokens are configured by one string (env CC_AUTH_TOKENS): comma-separated
 * "sha256hex:tenant:role[:subject]" entries, e.g.
 *     CC_AUTH_TOKENS="9f86d0...0a08:acme:supervisor,2c26b4...7ae:acme:agent:a-1007"
 * The subject names who the token acts as; an agent token must have one (the agent
 * id: an agent changes only its own state), other roles may.
 * The server keeps only the SHA-256 of each token, so the configuration holds
 * no secret. Make an entry's hash with:
 *     printf %s "$TOKEN" | sha256sum
 * (printf, not echo: the trailing newline would be hashed too.)
 *
 * Tenant and subject: 1..64 characters of [A-Za-z0-9_-] (cc_tenant_valid). Role:
 * admin, supervisor, agent, analyst or service. Hex is case-insensitive; surrounding blanks are
 * ignored.
 *
 * Tenant isolation is the caller's job: a principal of tenant A that asks for
 * a resource of tenant B gets 404, never 403 (the resource "does not exist" for A).
 *
 * Thread-safety: a cc_auth is immutable once cc_auth_new() returns; any number
 * of threads may call cc_auth_check() on it at once.
 */
#ifndef CC_AUTH_H
#define CC_AUTH_H

#include <stddef.h>

#include "cc_event.h"

#define CC_AUTH_TENANT_MAX  CC_EVENT_TENANT_MAX /* characters, without the terminating NUL */
#define CC_AUTH_SUBJECT_MAX CC_EVENT_TENANT_MAX

typedef struct cc_auth cc_auth;

enum cc_role {
    CC_ROLE_INVALID = -1,
    CC_ROLE_ADMIN = 0,
    CC_ROLE_SUPERVISOR,
    CC_ROLE_AGENT,
    CC_ROLE_ANALYST,
    CC_ROLE_SERVICE,
    CC_ROLE_COUNT,
};

/* Who made a request: copied out of the cc_auth, so it outlives nothing. */
struct cc_principal {
    char tenant[CC_AUTH_TENANT_MAX + 1];
    enum cc_role role;
    char subject[CC_AUTH_SUBJECT_MAX + 1]; /* "" when the token names none */
    char key_id[13]; /* first 12 hex digits of the token's hash: safe to log */
};

/*
 * Parses a token spec (see above). NULL or "" gives a cc_auth that knows no
 * token (every check fails). On a bad spec returns NULL and writes a one-line
 * reason naming the entry (by position, never its hash) into err[errlen].
 */
cc_auth *cc_auth_new(const char *spec, char *err, size_t errlen);
/* Frees the table; NULL is a no-op. */
void cc_auth_free(cc_auth *auth);
/*
 * Checks a bearer token (the text after "Bearer ", not the whole header).
 * Hashes it and compares with every entry in constant time. Returns 0 and
 * fills *out, or -EACCES (NULL/empty/unknown token; *out untouched).
 */
int cc_auth_check(const cc_auth *auth, const char *token, struct cc_principal *out);
/* Number of configured tokens. */
size_t cc_auth_count(const cc_auth *auth);
/* Writes the lowercase hex SHA-256 of token into out (NUL-terminated). 0 or -EIO. */
int cc_auth_hash_token(const char *token, char out[65]);
/* "admin" -> CC_ROLE_ADMIN, ...; exact lowercase names; CC_ROLE_INVALID otherwise (or NULL). */
enum cc_role cc_role_parse(const char *text);
/* The role's name, or "invalid" for a value outside the enum. */
const char *cc_role_name(enum cc_role role);

#endif
