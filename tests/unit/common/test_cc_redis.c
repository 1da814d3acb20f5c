/* Unit tests for common/cc_redis.c: CC_REDIS_URL parsing (no server needed). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "cc_redis.h"

TestSuite(cc_redis);

struct redis_url_case {
    char url[160];
    bool is_unix;
    char host_or_path[64];
    int port;
    int db;
};

ParameterizedTestParameters(cc_redis, parses_valid_urls)
{
    static struct redis_url_case cases[] = {
        {"redis://localhost", false, "localhost", 6379, 0},
        {"redis://127.0.0.1:6380", false, "127.0.0.1", 6380, 0},
        {"redis://cache.internal:7000/3", false, "cache.internal", 7000, 3},
        {"redis://host/", false, "host", 6379, 0},
        {"redis://[::1]:6390/2", false, "::1", 6390, 2},
        {"redis://[::1]", false, "::1", 6379, 0},
        {"unix:///tmp/stack/redis.sock", true, "/tmp/stack/redis.sock", 6379, 0},
        {"unix:///tmp/redis.sock?db=5", true, "/tmp/redis.sock", 6379, 5},
    };
    return cr_make_param_array(struct redis_url_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct redis_url_case *c, cc_redis, parses_valid_urls)
{
    struct cc_redis_url u;

    cr_assert_eq(cc_redis_url_parse(c->url, &u), 0, "expected '%s' to parse", c->url);
    cr_assert_eq(u.is_unix, c->is_unix, "expected is_unix=%d for '%s'", c->is_unix, c->url);
    cr_assert_str_eq(c->is_unix ? u.path : u.host, c->host_or_path,
                     "expected host/path '%s' for '%s'", c->host_or_path, c->url);
    if (!c->is_unix)
        cr_assert_eq(u.port, c->port, "expected port %d for '%s', got %d", c->port, c->url, u.port);
    cr_assert_eq(u.db, c->db, "expected db %d for '%s', got %d", c->db, c->url, u.db);
}

struct redis_bad_url {
    char url[160];
};

ParameterizedTestParameters(cc_redis, refuses_malformed_urls)
{
    static struct redis_bad_url cases[] = {
        {""},
        {"localhost:6379"},
        {"http://localhost:6379"},
        {"redis://"},
        {"redis://:6379"},
        {"redis://host:"},
        {"redis://host:0"},
        {"redis://host:65536"},
        {"redis://host:63x9"},
        {"redis://host:6379/x"},
        {"redis://host:6379/70000"},
        {"redis://user:pw@host:6379"},
        {"redis://::1:6379"},
        {"redis://[::1"},
        {"redis://[::1]x"},
        {"unix://"},
        {"unix://relative/redis.sock"},
        {"unix:///tmp/redis.sock?db="},
        {"unix:///tmp/redis.sock?db=1x"},
        {"unix:///tmp/redis.sock?foo=1"},
    };
    return cr_make_param_array(struct redis_bad_url, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct redis_bad_url *c, cc_redis, refuses_malformed_urls)
{
    struct cc_redis_url u;

    cr_assert_eq(cc_redis_url_parse(c->url, &u), -EINVAL, "expected '%s' to be refused", c->url);
}

Test(cc_redis, refuses_a_unix_path_longer_than_sun_path)
{
    char url[256] = "unix:///";
    struct cc_redis_url u;

    memset(url + 8, 'a', 120);
    cr_assert_eq(cc_redis_url_parse(url, &u), -EINVAL, "expected a 121-char path to be refused");
}

Test(cc_redis, new_returns_null_for_a_malformed_url)
{
    cr_assert_null(cc_redis_new("tcp://localhost:6379"), "expected NULL for a non-redis scheme");
    cr_assert_null(cc_redis_new(NULL), "expected NULL for a NULL url");
}
