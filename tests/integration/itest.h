/*
 * itest: helpers for integration tests run against the local stack by
 * tests/run-tests.sh (which exports the stack's CC_* variables, CC_TEST_BIN_DIR
 * and CC_TEST_TOP). Static inline only: every test file may include it.
 */
#ifndef ITEST_H
#define ITEST_H

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * Returns the value of environment variable name (borrowed from environ).
 * Fails the current test when it is unset or empty, saying how to run.
 */
static inline const char *itest_env(const char *name)
{
    const char *v = getenv(name);

    cr_assert(v && *v,
              "expected %s in the environment: run integration tests through "
              "tests/run-tests.sh (make test-integration)",
              name);
    return v;
}

/*
 * Writes "<prefix>_<pid>_<16 hex digits>" into buf and returns buf: a name
 * unique across tests, processes and concurrent runs, made of [a-z0-9_] plus
 * the prefix, so it is valid as a Kafka topic, a consumer group, a Redis key
 * and an unquoted PostgreSQL identifier (keep prefix lowercase and short: PG
 * identifiers end at 63 bytes). Fails the test when buf is too small.
 */
static inline char *itest_unique(char *buf, size_t n, const char *prefix)
{
    unsigned long long r = 0;
    struct timespec ts;
    int len;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
    }
    len = snprintf(buf, n, "%s_%ld_%016llx", prefix, (long)getpid(), r);
    cr_assert(len > 0 && (size_t)len < n, "expected a buffer of more than %d bytes for '%s'", len,
              prefix);
    return buf;
}

/*
 * Creates topic with the given partition count on the dev broker, through its
 * control socket ($CC_DEVBROKER_CONTROL): the mock cluster has no CreateTopics
 * and auto-creates unknown topics with 4 partitions. Fails the test unless the
 * broker answers "ok" (a topic that already exists is a failure too).
 */
static inline void itest_topic_create(const char *topic, int partitions)
{
    const char *path = itest_env("CC_DEVBROKER_CONTROL");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 5};
    char req[320], reply[160];
    size_t len = 0;
    int fd, reqlen;
    ssize_t r;

    cr_assert(strlen(path) < sizeof(sa.sun_path), "expected a control socket path < %zu bytes",
              sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    reqlen = snprintf(req, sizeof(req), "create %s %d\n", topic, partitions);
    cr_assert(reqlen > 0 && (size_t)reqlen < sizeof(req), "expected a topic name < 300 bytes");

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "expected a unix socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        close(fd);
        cr_assert_fail("expected the dev broker control socket '%s' to accept: %s", path,
                       strerror(err));
    }
    if (send(fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
        close(fd);
        cr_assert_fail("expected to send the create request for '%s'", topic);
    }
    while (len + 1 < sizeof(reply) && (r = recv(fd, reply + len, sizeof(reply) - 1 - len, 0)) > 0)
        len += (size_t)r;
    close(fd);
    reply[len] = '\0';
    cr_assert_str_eq(reply, "ok\n", "expected the dev broker to create '%s' with %d partitions",
                     topic, partitions);
}

#endif
