/* cc_redis: see cc_redis.h. */
#include "cc_redis.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_log.h"
#include "cc_time.h"

struct cc_redis {
    struct cc_redis_url url;
    redisContext *ctx; /* NULL while disconnected */
};

/* ---- url parsing ---------------------------------------------------------------------------- */

/* Parses a decimal number of 1..5 digits in [min, max] from s[0..len). */
static int parse_small_uint(const char *s, size_t len, int min, int max, int *out)
{
    long v = 0;

    if (len == 0 || len > 5)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_unix_url(const char *rest, struct cc_redis_url *out)
{
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);

    if (plen < 2 || rest[0] != '/' || plen > CC_REDIS_PATH_MAX)
        return -EINVAL;
    memcpy(out->path, rest, plen);
    out->path[plen] = '\0';
    out->is_unix = true;
    if (!q)
        return 0;
    if (strncmp(q, "?db=", 4) != 0)
        return -EINVAL;
    return parse_small_uint(q + 4, strlen(q + 4), 0, 65535, &out->db);
}

/* host is "name", "1.2.3.4" or "[v6]"; the brackets are stripped. */
static int parse_host(const char *s, size_t len, struct cc_redis_url *out)
{
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len > CC_REDIS_HOST_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '@' || s[i] == '[' || s[i] == ']' || s[i] == '/' || s[i] == '?' || s[i] <= ' ')
            return -EINVAL;
    }
    memcpy(out->host, s, len);
    out->host[len] = '\0';
    return 0;
}

/* "host[:port][/db]" where host may be "[v6]". */
static int parse_tcp_url(const char *rest, struct cc_redis_url *out)
{
    const char *slash = strchr(rest, '/');
    size_t authlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *sep; /* the ':' before the port, or NULL */
    size_t hostlen;
    int rc;

    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', authlen);
        if (!close)
            return -EINVAL;
        hostlen = (size_t)(close - rest) + 1;
        sep = hostlen < authlen ? rest + hostlen : NULL;
        if (sep && *sep != ':')
            return -EINVAL;
    } else {
        sep = memchr(rest, ':', authlen);
        hostlen = sep ? (size_t)(sep - rest) : authlen;
    }
    rc = parse_host(rest, hostlen, out);
    if (rc == 0 && sep)
        rc = parse_small_uint(sep + 1, authlen - hostlen - 1, 1, 65535, &out->port);
    if (rc == 0 && slash && slash[1] != '\0')
        rc = parse_small_uint(slash + 1, strlen(slash + 1), 0, 65535, &out->db);
    return rc;
}

int cc_redis_url_parse(const char *url, struct cc_redis_url *out)
{
    struct cc_redis_url u = {.port = 6379, .db = 0};
    int rc;

    if (!url || !out)
        return -EINVAL;
    if (strncmp(url, "unix://", 7) == 0)
        rc = parse_unix_url(url + 7, &u);
    else if (strncmp(url, "redis://", 8) == 0)
        rc = parse_tcp_url(url + 8, &u);
    else
        rc = -EINVAL;
    if (rc < 0)
        return rc;
    *out = u;
    return 0;
}

/* ---- connection ----------------------------------------------------------------------------- */

static struct timeval ms_to_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static const char *url_subject(const cc_redis *r)
{
    return r->url.is_unix ? r->url.path : r->url.host;
}

static void disconnect(cc_redis *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}

/* SELECT db on a fresh context; 0 or -EIO. */
static int select_db(cc_redis *r)
{
    redisReply *reply;
    int rc = 0;

    if (r->url.db == 0)
        return 0;
    reply = redisCommand(r->ctx, "SELECT %d", r->url.db);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        CC_WARN("redis select failed: db %d on \"%s\": %s", r->url.db, url_subject(r),
                reply ? reply->str : r->ctx->errstr);
        rc = -EIO;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* One connect attempt (plus socket timeout and SELECT). 0, or -EIO with the reason in errbuf. */
static int connect_once(cc_redis *r, char *errbuf, size_t errlen)
{
    struct timeval tv = ms_to_tv(CC_REDIS_CONNECT_TIMEOUT_MS);
    redisContext *c;

    if (r->url.is_unix)
        c = redisConnectUnixWithTimeout(r->url.path, tv);
    else
        c = redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!c || c->err) {
        snprintf(errbuf, errlen, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return -EIO;
    }
    r->ctx = c;
    if (redisSetTimeout(c, ms_to_tv(CC_REDIS_COMMAND_TIMEOUT_MS)) != REDIS_OK || select_db(r) < 0) {
        snprintf(errbuf, errlen, "%s", c->err ? c->errstr : "setup failed");
        disconnect(r);
        return -EIO;
    }
    if (!r->url.is_unix)
        redisEnableKeepAlive(c);
    return 0;
}

/* Connects if needed, retrying with backoff for at most CC_REDIS_RECONNECT_BUDGET_MS. */
static int ensure_connected(cc_redis *r)
{
    struct cc_backoff b;
    char err[256] = "";

    if (r->ctx)
        return 0;
    cc_backoff_init(&b, CC_REDIS_BACKOFF_MIN_MS, CC_REDIS_BACKOFF_MAX_MS,
                    CC_REDIS_RECONNECT_BUDGET_MS);
    do {
        if (connect_once(r, err, sizeof(err)) == 0)
            return 0;
    } while (cc_backoff_wait(&b));
    CC_ERROR("redis unreachable: \"%s\" after %d ms: %s", url_subject(r),
             CC_REDIS_RECONNECT_BUDGET_MS, err);
    return -EIO;
}

cc_redis *cc_redis_new(const char *url)
{
    cc_redis *r;
    char err[256] = "";

    r = calloc(1, sizeof(*r));
    if (!r) {
        CC_ERROR("redis client allocation failed: out of memory");
        return NULL;
    }
    if (cc_redis_url_parse(url, &r->url) < 0) {
        /* user:password@ is not supported; never echo a credential into the log. */
        CC_ERROR("redis url invalid: \"%s\" (want redis://host:port[/db] or "
                 "unix:///abs/path.sock[?db=N])",
                 !url               ? "(null)"
                 : strchr(url, '@') ? "(hidden: holds credentials)"
                                    : url);
        free(r);
        return NULL;
    }
    if (connect_once(r, err, sizeof(err)) < 0)
        CC_WARN("redis connect failed: \"%s\": %s (will retry on first command)", url_subject(r),
                err);
    return r;
}

void cc_redis_free(cc_redis *r)
{
    if (!r)
        return;
    disconnect(r);
    free(r);
}

/* ---- commands ------------------------------------------------------------------------------- */

/* hiredis 0.14 writes with write(2), so a peer that closed the connection raises SIGPIPE, whose
 * default action kills the process. Like libpq, block it in this thread around the round-trip
 * and swallow the one the failed write raised, leaving the process's signal setup alone. */
static void sigpipe_block(sigset_t *old, bool *was_pending)
{
    sigset_t pipe_set, pending;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    *was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_unblock(const sigset_t *old, bool was_pending, bool failed)
{
    if (failed && !was_pending) {
        sigset_t pipe_set;
        struct timespec zero = {0, 0};

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* One round-trip on the current connection; NULL on an I/O or protocol error. */
static redisReply *round_trip(cc_redis *r, const char *cmd, size_t len)
{
    void *reply = NULL;
    bool was_pending;
    sigset_t old;
    int saved;

    sigpipe_block(&old, &was_pending);
    if (redisAppendFormattedCommand(r->ctx, cmd, len) != REDIS_OK ||
        redisGetReply(r->ctx, &reply) != REDIS_OK)
        reply = NULL;
    saved = errno;
    sigpipe_unblock(&old, was_pending, reply == NULL);
    errno = saved;
    return reply;
}

/* Sends an already formatted command and reads its reply; on an I/O error, reconnects and sends
 * it once more. */
static redisReply *run_formatted(cc_redis *r, const char *cmd, size_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *reply;

        if (ensure_connected(r) < 0)
            return NULL;
        reply = round_trip(r, cmd, len);
        if (reply)
            return reply;
        CC_WARN("redis command failed: \"%s\": %s (%s)", url_subject(r), r->ctx->errstr,
                attempt == 0 ? "reconnecting" : "giving up");
        disconnect(r);
    }
    return NULL;
}

redisReply *cc_redis_command(cc_redis *r, const char *fmt, ...)
{
    redisReply *reply;
    char *cmd = NULL;
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        CC_ERROR("redis command format invalid: \"%s\"", fmt);
        return NULL;
    }
    reply = run_formatted(r, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

redisReply *cc_redis_commandv(cc_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    redisReply *reply;
    char *cmd = NULL;
    int len;

    if (argc <= 0)
        return NULL;
    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        CC_ERROR("redis command format failed: out of memory");
        return NULL;
    }
    reply = run_formatted(r, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

int cc_redis_script_load(cc_redis *r, struct cc_redis_script *s)
{
    redisReply *reply = cc_redis_command(r, "SCRIPT LOAD %s", s->source);
    int rc = 0;

    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(s->sha, reply->str, 40);
        s->sha[40] = '\0';
    } else {
        CC_ERROR("redis script load failed: \"%s\": %s", s->name,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        rc = -EINVAL;
    }
    freeReplyObject(reply);
    return rc;
}

static bool is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

redisReply *cc_redis_evalsha(cc_redis *r, struct cc_redis_script *s, int nkeys, int argc,
                             const char **argv, const size_t *argvlen)
{
    const char **av;
    size_t *avlen;
    char nkeys_text[16];
    redisReply *reply = NULL;

    if (nkeys < 0 || argc < nkeys || argc > INT_MAX - 3 || (argc > 0 && !argv)) {
        CC_ERROR("redis evalsha arguments invalid: \"%s\" nkeys %d argc %d", s->name, nkeys, argc);
        return NULL;
    }
    av = calloc((size_t)argc + 3, sizeof(*av));
    avlen = calloc((size_t)argc + 3, sizeof(*avlen));
    if (!av || !avlen) {
        CC_ERROR("redis evalsha failed: \"%s\": out of memory", s->name);
        goto free_vectors;
    }
    snprintf(nkeys_text, sizeof(nkeys_text), "%d", nkeys);
    av[0] = "EVALSHA";
    av[1] = s->sha;
    av[2] = nkeys_text;
    for (int i = 0; i < 3; i++)
        avlen[i] = strlen(av[i]);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        avlen[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    reply = cc_redis_commandv(r, argc + 3, av, avlen);
    if (reply && is_noscript(reply)) {
        CC_INFO("redis script missing, loading it again: \"%s\"", s->name);
        freeReplyObject(reply);
        reply = NULL;
        if (cc_redis_script_load(r, s) == 0) {
            avlen[1] = strlen(s->sha);
            reply = cc_redis_commandv(r, argc + 3, av, avlen);
        }
    }
free_vectors:
    free(avlen);
    free(av);
    return reply;
}

bool cc_redis_ping(cc_redis *r)
{
    redisReply *reply = cc_redis_command(r, "PING");
    bool ok;

    if (!reply)
        return false;
    ok = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    freeReplyObject(reply);
    return ok;
}

/* ---- split round trip ----------------------------------------------------------------------- */

int cc_redis_send(cc_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    bool was_pending;
    sigset_t old;
    int done = 0, rc = 0;

    if (argc <= 0 || ensure_connected(r) < 0)
        return -EIO;
    sigpipe_block(&old, &was_pending);
    if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK)
        rc = -EIO;
    while (rc == 0 && !done) /* blocking socket: writes until the buffer is out */
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK)
            rc = -EIO;
    sigpipe_unblock(&old, was_pending, rc < 0);
    if (rc < 0) {
        CC_WARN("redis command failed: \"%s\": %s (reconnecting)", url_subject(r), r->ctx->errstr);
        disconnect(r);
    }
    return rc;
}

int cc_redis_fd(const cc_redis *r)
{
    return r->ctx ? r->ctx->fd : -1;
}

int cc_redis_recv(cc_redis *r, redisReply **out)
{
    void *reply = NULL;

    *out = NULL;
    if (!r->ctx)
        return -EIO;
    /* one read(2) of what the socket holds (the caller polled for it), then parse */
    if (redisBufferRead(r->ctx) != REDIS_OK ||
        redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK) {
        CC_WARN("redis reply failed: \"%s\": %s (reconnecting)", url_subject(r), r->ctx->errstr);
        disconnect(r);
        return -EIO;
    }
    if (!reply)
        return 0;
    *out = reply;
    return 1;
}
