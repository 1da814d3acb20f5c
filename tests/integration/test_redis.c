/* Integration tests for common/cc_redis.c against the real redis-server of the local stack. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cc_redis.h"
#include "cc_time.h"
#include "itest.h"

static cc_redis *redis_it;       /* the client under test */
static cc_redis *redis_it_admin; /* a second connection that plays the operator */
static char redis_it_key[128];   /* unique key prefix of this test */

static void redis_it_setup(void)
{
    const char *url = itest_env("CC_REDIS_URL");

    itest_unique(redis_it_key, sizeof(redis_it_key), "itest-redis");
    redis_it = cc_redis_new(url);
    redis_it_admin = cc_redis_new(url);
    cr_assert_not_null(redis_it, "expected a client for '%s'", url);
    cr_assert_not_null(redis_it_admin, "expected an admin client for '%s'", url);
}

static void redis_it_teardown(void)
{
    redisReply *reply = cc_redis_command(redis_it_admin, "EVAL %s 0 %s",
                                         "for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) "
                                         "do redis.call('DEL', k) end return 0",
                                         redis_it_key);
    if (reply)
        freeReplyObject(reply);
    cc_redis_free(redis_it);
    cc_redis_free(redis_it_admin);
}

TestSuite(redis, .init = redis_it_setup, .fini = redis_it_teardown, .timeout = 30);

static long long redis_it_integer(redisReply *reply, const char *what)
{
    long long v;

    cr_assert_not_null(reply, "expected a reply to %s", what);
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "expected an integer reply to %s, got type %d",
                 what, reply->type);
    v = reply->integer;
    freeReplyObject(reply);
    return v;
}

static long long redis_it_client_id(cc_redis *r)
{
    return redis_it_integer(cc_redis_command(r, "CLIENT ID"), "CLIENT ID");
}

Test(redis, runs_commands_and_returns_string_replies)
{
    redisReply *reply;

    reply = cc_redis_command(redis_it, "SET %s:greeting %s", redis_it_key, "hello");
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS, "expected a status reply to SET");
    freeReplyObject(reply);
    reply = cc_redis_command(redis_it, "GET %s:greeting", redis_it_key);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING, "expected a string reply to GET");
    cr_assert_str_eq(reply->str, "hello", "expected GET to return what SET stored");
    freeReplyObject(reply);
}

Test(redis, sends_binary_safe_argument_vectors)
{
    char key[160];
    const char value[] = {'a', '\0', 'b'};
    const char *argv[] = {"SET", key, value};
    size_t argvlen[] = {3, 0, sizeof(value)};
    redisReply *reply;

    snprintf(key, sizeof(key), "%s:bin", redis_it_key);
    argvlen[1] = strlen(key);
    reply = cc_redis_commandv(redis_it, 3, argv, argvlen);
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS, "expected a status reply to SET");
    freeReplyObject(reply);
    reply = cc_redis_command(redis_it, "GET %s", key);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING, "expected a string reply to GET");
    cr_assert_eq(reply->len, sizeof(value), "expected 3 bytes including the NUL, got %zu",
                 (size_t)reply->len);
    cr_assert(memcmp(reply->str, value, sizeof(value)) == 0, "expected the bytes back unchanged");
    freeReplyObject(reply);
}

Test(redis, returns_error_replies_to_the_caller)
{
    redisReply *reply;

    reply = cc_redis_command(redis_it, "SET %s:text %s", redis_it_key, "not-a-number");
    freeReplyObject(reply);
    reply = cc_redis_command(redis_it, "INCR %s:text", redis_it_key);
    cr_assert_not_null(reply, "expected an error reply, not NULL: the server is reachable");
    cr_assert_eq(reply->type, REDIS_REPLY_ERROR, "expected REDIS_REPLY_ERROR for INCR on text");
    freeReplyObject(reply);
    cr_assert(cc_redis_ping(redis_it), "expected the connection to stay usable after an error");
}

Test(redis, runs_a_script_by_evalsha_and_reloads_it_after_script_flush)
{
    struct cc_redis_script incr = {
        .name = "itest_incrby",
        .source = "return redis.call('INCRBY', KEYS[1], ARGV[1])",
    };
    char key[160];
    const char *argv[] = {key, "5"};
    redisReply *reply;

    snprintf(key, sizeof(key), "%s:counter", redis_it_key);
    cr_assert_eq(cc_redis_script_load(redis_it, &incr), 0, "expected SCRIPT LOAD to work");
    cr_assert_eq(strlen(incr.sha), 40, "expected a 40-hex sha, got '%s'", incr.sha);
    cr_assert_eq(redis_it_integer(cc_redis_evalsha(redis_it, &incr, 1, 2, argv, NULL), "EVALSHA"),
                 5, "expected the first run to add 5");

    reply = cc_redis_command(redis_it_admin, "SCRIPT FLUSH");
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS, "expected SCRIPT FLUSH to work");
    freeReplyObject(reply);
    reply = cc_redis_command(redis_it_admin, "SCRIPT EXISTS %s", incr.sha);
    cr_assert(reply && reply->elements == 1 && reply->element[0]->integer == 0,
              "expected the script to be gone after SCRIPT FLUSH");
    freeReplyObject(reply);

    cr_assert_eq(redis_it_integer(cc_redis_evalsha(redis_it, &incr, 1, 2, argv, NULL),
                                  "EVALSHA after flush"),
                 10, "expected the NOSCRIPT fallback to load the script again and add 5");
}

Test(redis, returns_script_errors_as_error_replies)
{
    struct cc_redis_script bad = {.name = "itest_bad", .source = "return redis.call('NOPE')"};
    redisReply *reply;

    cr_assert_eq(cc_redis_script_load(redis_it, &bad), 0, "expected the script to compile");
    reply = cc_redis_evalsha(redis_it, &bad, 0, 0, NULL, NULL);
    cr_assert(reply && reply->type == REDIS_REPLY_ERROR, "expected an error reply at run time");
    freeReplyObject(reply);
}

Test(redis, refuses_a_script_that_does_not_compile)
{
    struct cc_redis_script bad = {.name = "itest_syntax", .source = "return ((("};

    cr_assert_eq(cc_redis_script_load(redis_it, &bad), -EINVAL,
                 "expected -EINVAL for a script the server rejects");
}

Test(redis, reconnects_after_the_server_kills_the_connection)
{
    long long before = redis_it_client_id(redis_it);
    redisReply *reply;

    /* CLIENT KILL ID rather than TYPE normal: tests run in parallel against one server. */
    reply = cc_redis_command(redis_it_admin, "CLIENT KILL ID %lld", before);
    cr_assert_eq(redis_it_integer(reply, "CLIENT KILL"), 1, "expected one client killed");
    cr_assert(cc_redis_ping(redis_it), "expected PING to reconnect and succeed");
    cr_assert_neq(redis_it_client_id(redis_it), before,
                  "expected a new connection (another client id) after the kill");
}

Test(redis, reconnects_after_client_kill_type_normal)
{
    cc_redis *victim;
    redisReply *reply;

    /* Kills every normal client of the server, also other tests' cc_redis clients: they
     * reconnect on their next command, which is the behaviour under test. */
    victim = cc_redis_new(itest_env("CC_REDIS_URL"));
    cr_assert_not_null(victim, "expected a client");
    long long before = redis_it_client_id(victim);
    reply = cc_redis_command(redis_it_admin, "CLIENT KILL TYPE normal");
    cr_assert(redis_it_integer(reply, "CLIENT KILL TYPE normal") >= 1,
              "expected at least the victim to be killed");
    reply = cc_redis_command(victim, "SET %s:after-kill 1", redis_it_key);
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS,
              "expected the command after the kill to reconnect and succeed");
    freeReplyObject(reply);
    cr_assert_neq(redis_it_client_id(victim), before, "expected a new connection");
    cc_redis_free(victim);
}

Test(redis, selects_the_database_of_the_url)
{
    const char *base = itest_env("CC_REDIS_URL");
    char url[512];
    cc_redis *db2;
    redisReply *reply;

    snprintf(url, sizeof(url), "%s%s", base, strncmp(base, "unix://", 7) == 0 ? "?db=2" : "/2");
    db2 = cc_redis_new(url);
    cr_assert_not_null(db2, "expected a client for '%s'", url);
    reply = cc_redis_command(db2, "SET %s:db2 here", redis_it_key);
    freeReplyObject(reply);
    reply = cc_redis_command(redis_it, "EXISTS %s:db2", redis_it_key);
    cr_assert_eq(redis_it_integer(reply, "EXISTS in db 0"), 0, "expected the key only in db 2");
    reply = cc_redis_command(db2, "DEL %s:db2", redis_it_key);
    cr_assert_eq(redis_it_integer(reply, "DEL in db 2"), 1, "expected the key in db 2");
    cc_redis_free(db2);
}

/* Waits up to ms for fd to become readable; true when it did. */
static bool redis_it_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, ms) == 1;
}

Test(redis, splits_a_blocking_round_trip_for_a_poll_loop)
{
    char list[160];
    const char *argv[] = {"BLPOP", list, "5"};
    redisReply *reply = NULL;

    snprintf(list, sizeof(list), "%s:list", redis_it_key);
    cr_assert_eq(cc_redis_send(redis_it, 3, argv, NULL), 0, "expected BLPOP to be sent");
    cr_assert_geq(cc_redis_fd(redis_it), 0, "expected the socket to poll");
    cr_assert_not(redis_it_readable(cc_redis_fd(redis_it), 150),
                  "expected no reply while the list is empty");
    redis_it_integer(cc_redis_command(redis_it_admin, "RPUSH %s v1", list), "RPUSH");
    cr_assert(redis_it_readable(cc_redis_fd(redis_it), 2000), "expected the push to wake the poll");
    int rc;
    do { /* a reply may come in pieces: 0 until it is whole */
        rc = cc_redis_recv(redis_it, &reply);
    } while (rc == 0 && redis_it_readable(cc_redis_fd(redis_it), 2000));
    cr_assert_eq(rc, 1, "expected the whole reply, got %d", rc);
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(reply->elements, 2);
    cr_assert_str_eq(reply->element[1]->str, "v1");
    freeReplyObject(reply);
    /* the connection serves ordinary commands again */
    cr_assert(cc_redis_ping(redis_it), "expected PING after the split round trip");
}

Test(redis, reports_a_dropped_connection_to_the_split_round_trip_and_reconnects)
{
    char list[160];
    const char *argv[] = {"BLPOP", list, "5"};
    long long id = redis_it_client_id(redis_it);
    redisReply *reply = NULL;

    snprintf(list, sizeof(list), "%s:list", redis_it_key);
    cr_assert_eq(cc_redis_send(redis_it, 3, argv, NULL), 0);
    redis_it_integer(cc_redis_command(redis_it_admin, "CLIENT KILL ID %lld", id), "CLIENT KILL");
    cr_assert(redis_it_readable(cc_redis_fd(redis_it), 2000),
              "expected the close to wake the poll");
    cr_assert_eq(cc_redis_recv(redis_it, &reply), -EIO, "expected -EIO on a closed connection");
    cr_assert_null(reply);
    cr_assert_lt(cc_redis_fd(redis_it), 0, "expected the connection dropped");
    cr_assert_eq(cc_redis_send(redis_it, 3, argv, NULL), 0, "expected a new connection to send on");
    redis_it_integer(cc_redis_command(redis_it_admin, "RPUSH %s v2", list), "RPUSH");
    cr_assert(redis_it_readable(cc_redis_fd(redis_it), 2000));
    cr_assert_eq(cc_redis_recv(redis_it, &reply), 1);
    cr_assert_str_eq(reply->element[1]->str, "v2");
    freeReplyObject(reply);
}

Test(redis, refuses_a_bad_url)
{
    cr_assert_null(cc_redis_new("redis://localhost:notaport"), "expected NULL for a bad port");
    cr_assert_null(cc_redis_new("localhost:6379"), "expected NULL without a scheme");
}

Test(redis, gives_up_within_the_budget_when_the_server_is_down)
{
    cc_redis *down = cc_redis_new("unix:///nonexistent/cc-itest/redis.sock");
    int64_t start, elapsed;

    cr_assert_not_null(down, "expected a down server not to be fatal at creation");
    start = cc_time_mono_ms();
    cr_assert_not(cc_redis_ping(down), "expected PING to fail against a missing server");
    elapsed = cc_time_mono_ms() - start;
    cr_assert(elapsed >= CC_REDIS_RECONNECT_BUDGET_MS - 100 &&
                  elapsed <= CC_REDIS_RECONNECT_BUDGET_MS + 2000,
              "expected to retry for about %d ms, took %lld ms", CC_REDIS_RECONNECT_BUDGET_MS,
              (long long)elapsed);
    cc_redis_free(down);
}
