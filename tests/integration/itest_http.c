/* itest_http: the raw-socket HTTP/1.1 test client (see itest_http.h). */
#include "itest_http.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cc_time.h"

int itest_http_raw_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int itest_http_connect(int port)
{
    int fd = itest_http_raw_connect(port);

    cr_assert(fd >= 0, "expected to connect to port %d: %s", port, strerror(errno));
    return fd;
}

void itest_http_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may refuse early (413) and close: the reply tells */
        data += n;
        len -= (size_t)n;
    }
}

void itest_http_request(int fd, const char *method, const char *path, const char *token,
                        const char *extra, const char *body)
{
    char head[4096];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, path);

    if (token)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (body)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", strlen(body));
    n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", extra ? extra : "");
    itest_http_send(fd, head, (size_t)n);
    if (body)
        itest_http_send(fd, body, strlen(body));
}

const char *itest_http_header(const struct itest_http_reply *r, const char *name, char *out,
                              size_t cap)
{
    size_t nlen = strlen(name);

    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
            const char *v = p + 3 + nlen;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int)vlen, v);
            return out;
        }
    }
    return NULL;
}

bool itest_http_read(int fd, struct itest_http_reply *r, bool head_only)
{
    char buf[sizeof(r->head) + sizeof(r->body)], value[64];
    size_t have = 0, hlen, want = 0;
    char *end = NULL;

    memset(r, 0, sizeof(*r));
    while (!end) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    hlen = (size_t)(end - buf) + 2;
    if (hlen >= sizeof(r->head))
        return false;
    memcpy(r->head, buf, hlen);
    sscanf(r->head, "HTTP/1.1 %d", &r->status);
    if (!head_only && itest_http_header(r, "Content-Length", value, sizeof(value)))
        want = strtoul(value, NULL, 10);
    if (want >= sizeof(r->body))
        return false;
    r->body_len = have - hlen - 2;
    memcpy(r->body, end + 4, r->body_len);
    while (r->body_len < want) {
        ssize_t n = recv(fd, r->body + r->body_len, want - r->body_len, 0);
        if (n <= 0)
            return false;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    return true;
}

void itest_http_fetch(int port, const char *method, const char *path, const char *token,
                      const char *extra, const char *body, struct itest_http_reply *r)
{
    int fd = itest_http_connect(port);

    itest_http_request(fd, method, path, token, extra, body);
    cr_assert(itest_http_read(fd, r, strcmp(method, "HEAD") == 0), "expected a response to %s %s",
              method, path);
    close(fd);
}

bool itest_http_peer_closed(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    if (poll(&p, 1, ms) <= 0)
        return false;
    return recv(fd, &c, 1, MSG_PEEK) == 0;
}

json_t *itest_http_expect_problem(const struct itest_http_reply *r, int status)
{
    char ctype[128];
    json_error_t jerr;
    json_t *doc;

    cr_assert_eq(r->status, status, "expected %d, got %d: %s", status, r->status, r->body);
    cr_assert_not_null(itest_http_header(r, "Content-Type", ctype, sizeof(ctype)),
                       "expected a Content-Type");
    cr_assert_str_eq(ctype, "application/problem+json");
    doc = json_loads(r->body, 0, &jerr);
    cr_assert_not_null(doc, "expected a JSON problem body, got '%s'", r->body);
    cr_assert_eq(json_integer_value(json_object_get(doc, "status")), status);
    cr_assert(json_is_string(json_object_get(doc, "type")), "expected a 'type'");
    cr_assert(json_is_string(json_object_get(doc, "title")), "expected a 'title'");
    cr_assert(json_is_string(json_object_get(doc, "detail")), "expected a 'detail'");
    return doc;
}

json_t *itest_http_expect_json(const struct itest_http_reply *r, int status)
{
    json_error_t jerr;
    json_t *doc;

    cr_assert_eq(r->status, status, "expected %d, got %d: %s", status, r->status, r->body);
    doc = json_loads(r->body, 0, &jerr);
    cr_assert_not_null(doc, "expected a JSON body, got '%s'", r->body);
    return doc;
}

bool itest_http_read_until(int fd, char *buf, size_t cap, size_t *have, const char *needle, int ms)
{
    int64_t until = cc_time_mono_ms() + ms;

    while (!needle || !strstr(buf, needle)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(until - cc_time_mono_ms());
        ssize_t n;

        if (left <= 0 || *have + 1 >= cap || poll(&p, 1, left) <= 0)
            return false;
        n = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (n <= 0)
            return false;
        *have += (size_t)n;
        buf[*have] = '\0';
    }
    return true;
}
