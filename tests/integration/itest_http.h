/*
 * itest_http: a tiny raw-socket HTTP/1.1 client for integration tests (every byte and every
 * close visible), shared by the tests of cc_http and of every service's REST API.
 *
 * Functions that assert (itest_http_connect, itest_http_fetch, itest_http_expect_problem) use
 * Criterion and so belong in test code only; the others never assert and are safe in threads.
 */
#ifndef ITEST_HTTP_H
#define ITEST_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct itest_http_reply {
    int status;
    char head[4096];
    char body[65536];
    size_t body_len;
};

/* A loopback connection to port with a 5 s receive timeout, or -1 (no assert: for threads). */
int itest_http_raw_connect(int port);
/* As itest_http_raw_connect, asserting success. */
int itest_http_connect(int port);
/* Sends all of data; stops quietly if the server closed (its reply tells why). */
void itest_http_send(int fd, const char *data, size_t len);
/* Sends method path with an optional bearer token, extra header lines ("Name: v\r\n"...) and
 * an optional body (with its Content-Length). */
void itest_http_request(int fd, const char *method, const char *path, const char *token,
                        const char *extra, const char *body);
/* Reads one response (head_only for HEAD); false if the server closed or timed out first, or
 * the response does not fit. */
bool itest_http_read(int fd, struct itest_http_reply *r, bool head_only);
/* Value of a response header (case-insensitive) copied into out[cap], or NULL. */
const char *itest_http_header(const struct itest_http_reply *r, const char *name, char *out,
                              size_t cap);
/* One request on a fresh connection to port, asserting a response came. */
void itest_http_fetch(int port, const char *method, const char *path, const char *token,
                      const char *extra, const char *body, struct itest_http_reply *r);
/* True if the peer closed the connection (readable with EOF) within ms. */
bool itest_http_peer_closed(int fd, int ms);
/* Reads from fd into buf (appending at *have, NUL-terminated) until needle shows up: true; false
 * after ms, on EOF or when buf is full. needle NULL: reads for ms and returns false. */
bool itest_http_read_until(int fd, char *buf, size_t cap, size_t *have, const char *needle, int ms);
/* Asserts r is an RFC 7807 problem+json with this status and type/title/detail; returns the
 * parsed document (new reference: json_decref it). */
json_t *itest_http_expect_problem(const struct itest_http_reply *r, int status);
/* Asserts r->status == status and the body is JSON; returns it (new reference). */
json_t *itest_http_expect_json(const struct itest_http_reply *r, int status);

#endif
