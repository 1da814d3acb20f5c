/*
 * cc_redis: one Redis connection that survives server restarts, plus Lua scripts run by EVALSHA.
 *
 * Built on hiredis 0.14 (the old synchronous API). A command that fails with an I/O error
 * reconnects -- backoff 50 ms doubling to 2 s, at most CC_REDIS_RECONNECT_BUDGET_MS in all --
 * and is retried once. Error replies (REDIS_REPLY_ERROR) are replies, not failures: the caller
 * looks at them. Scripts are loaded once (SCRIPT LOAD) and run by EVALSHA; a NOSCRIPT reply
 * (server restarted, SCRIPT FLUSH) loads the script again and retries once.
 *
 * SIGPIPE: hiredis writes with write(2); a round-trip blocks SIGPIPE in the calling thread and
 * swallows the one a write to a closed connection raises (as libpq does), so callers need not
 * ignore SIGPIPE process-wide.
 *
 * Thread-safety: none. A cc_redis is one connection; use one per thread.
 */
#ifndef CC_REDIS_H
#define CC_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#define CC_REDIS_CONNECT_TIMEOUT_MS  1000 /* one connect(2) attempt */
#define CC_REDIS_COMMAND_TIMEOUT_MS  5000 /* socket timeout of one command (an I/O error after) */
#define CC_REDIS_BACKOFF_MIN_MS      50
#define CC_REDIS_BACKOFF_MAX_MS      2000
#define CC_REDIS_RECONNECT_BUDGET_MS 5000 /* longest one command waits for the server */
#define CC_REDIS_HOST_MAX            255
#define CC_REDIS_PATH_MAX            107 /* sun_path, without the NUL */

typedef struct cc_redis cc_redis;

/* A parsed CC_REDIS_URL: either TCP (host, port) or a unix socket (path). */
struct cc_redis_url {
    bool is_unix;
    char host[CC_REDIS_HOST_MAX + 1];
    int port; /* 1..65535, default 6379 */
    char path[CC_REDIS_PATH_MAX + 1];
    int db; /* 0..65535, default 0 */
};

/* A Lua script: name (for logs) and source are borrowed and must outlive every use; sha is
 * filled by cc_redis_script_load() (and again after a NOSCRIPT). */
struct cc_redis_script {
    const char *name;
    const char *source;
    char sha[41];
};

/* Parses "redis://host[:port][/db]" or "unix:///abs/path.sock[?db=N]" into *out. Pure: no I/O.
 * Returns 0, or -EINVAL for anything else (empty host, port or db out of range, relative path,
 * trailing garbage, path too long). */
int cc_redis_url_parse(const char *url, struct cc_redis_url *out);

/* Parses url and tries to connect (timeout CC_REDIS_CONNECT_TIMEOUT_MS, SELECT db). Returns NULL
 * (logged) only for a malformed url or out of memory; a server that is down is logged and not
 * fatal: the first command connects. Free with cc_redis_free(). */
cc_redis *cc_redis_new(const char *url);

/* Closes the connection and frees r. NULL is a no-op. */
void cc_redis_free(cc_redis *r);

/* Sends one command (hiredis printf-like format). On an I/O error, reconnects with backoff and
 * retries once, so a non-idempotent command may run twice if the reply was lost -- make scripts
 * and commands idempotent. Returns a reply the caller frees with freeReplyObject() -- including
 * REDIS_REPLY_ERROR replies -- or NULL when the server stayed unreachable (logged). */
redisReply *cc_redis_command(cc_redis *r, const char *fmt, ...);

/* As cc_redis_command() with an argument vector; argvlen may be NULL (each argv[i] is a C
 * string). */
redisReply *cc_redis_commandv(cc_redis *r, int argc, const char **argv, const size_t *argvlen);

/* SCRIPT LOAD s->source; fills s->sha. Call once at start-up per script. Returns 0, -EIO when the
 * server is unreachable, or -EINVAL when the server rejects the script (logged with its error). */
int cc_redis_script_load(cc_redis *r, struct cc_redis_script *s);

/* EVALSHA s->sha nkeys argv[0..argc-1]: argv holds the nkeys keys, then the arguments; argvlen
 * may be NULL (C strings). On NOSCRIPT, loads the script again and retries once. Returns the reply
 * (caller freeReplyObject's; script errors come back as REDIS_REPLY_ERROR) or NULL when the server
 * is unreachable or nkeys/argc are inconsistent. */
redisReply *cc_redis_evalsha(cc_redis *r, struct cc_redis_script *s, int nkeys, int argc,
                             const char **argv, const size_t *argvlen);

/* PING, reconnecting once if needed (bounded by the backoff budget); true on PONG. For /readyz. */
bool cc_redis_ping(cc_redis *r);

/* Split round trip, for a thread that waits on the reply together with other sources in one
 * poll(2) (a blocking read such as XREADGROUP BLOCK): cc_redis_send() writes one command
 * (connecting first when needed) without reading; cc_redis_fd() is then the socket to poll for
 * POLLIN; cc_redis_recv() reads what has arrived and returns 1 with the reply in *out (the
 * caller frees it), 0 when it is not complete yet (poll again), or -EIO when the connection
 * failed (it is dropped; send again). One command at a time; a connection waiting for a reply
 * must not be used for anything else. */
int cc_redis_send(cc_redis *r, int argc, const char **argv, const size_t *argvlen);
int cc_redis_fd(const cc_redis *r);
int cc_redis_recv(cc_redis *r, redisReply **out);

#endif
