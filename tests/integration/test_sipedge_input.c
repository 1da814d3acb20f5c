/*
 * Bad input to a real cc-sip-edge over real UDP and TCP sockets: garbage datagrams, requests
 * missing Call-ID / CSeq / Via, bad request lines, a 100 kB body, an unknown method, a REGISTER
 * flood with wrong passwords from one source address, a TCP stream cut in the middle of a
 * message. Each answer must be the right SIP error or silence; after each test the process still
 * answers OPTIONS and exits 0 on SIGTERM with no sanitizer report (checked in .fini).
 *
 * Every test has its own sip-edge (free port, tenant = SIP domain) against the stack's
 * PostgreSQL and dev broker; no router is needed (no call gets as far as routing).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_http.h"
#include "itest_proc.h"
#include "sipedge_digest.h"

#define SI_ADMIN      "si-admin-token"
#define SI_SECRET     "si-test-nonce-secret"
#define SI_FAIL_LIMIT 5
#define SI_QUIET_MS   700 /* how long "silence" is waited for */
#define SI_BUF        (160 * 1024)

static struct itest_proc si_edge;
static int si_sip_port, si_http_port;
static char si_tenant[80];
static char si_tokens[256];

/* ---- the process ------------------------------------------------------------------------ */

static void si_start(void)
{
    char bin[512], mig[600], inst[96], env_inst[128], env_url[96], env_mig[700], env_limit[64],
        dir[400], log[512], line[1024], hash[65];
    const char *env[] = {si_tokens,
                         "CC_HTTP_PORT=0",
                         "CC_HTTP_ADDR=127.0.0.1",
                         env_inst,
                         env_url,
                         env_mig,
                         env_limit,
                         "CC_SIPEDGE_AUTH_FAIL_WINDOW_S=60",
                         "CC_SIPEDGE_NONCE_SECRET=" SI_SECRET,
                         "CC_LOG_LEVEL=info",
                         NULL};
    char *argv[] = {bin, NULL};
    const char *p;

    itest_unique(si_tenant, sizeof(si_tenant), "si");
    cc_auth_hash_token(SI_ADMIN, hash);
    snprintf(si_tokens, sizeof(si_tokens), "CC_AUTH_TOKENS=%s:%s:admin", hash, si_tenant);
    snprintf(bin, sizeof(bin), "%s/bin/cc-sip-edge", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    itest_unique(inst, sizeof(inst), "sie");
    si_sip_port = itest_free_udp_port();
    cr_assert(si_sip_port > 0, "expected a free udp port");
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s", inst);
    snprintf(env_url, sizeof(env_url), "CC_SIPEDGE_SIP_URL=sip:127.0.0.1:%d", si_sip_port);
    snprintf(env_mig, sizeof(env_mig), "CC_SIPEDGE_MIGRATIONS_DIR=%s", mig);
    snprintf(env_limit, sizeof(env_limit), "CC_SIPEDGE_AUTH_FAIL_LIMIT=%d", SI_FAIL_LIMIT);
    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    snprintf(log, sizeof(log), "%s/%s.log", dir, inst);
    cr_assert_eq(itest_proc_spawn(&si_edge, argv, env, log), 0, "expected cc-sip-edge to start");
    cr_assert(itest_proc_wait_line(&si_edge, "serving: sip udp/tcp", line, sizeof(line), 30000),
              "expected cc-sip-edge to serve within 30 s (see %s)", log);
    p = strstr(line, ", http ");
    cr_assert(p && sscanf(p, ", http %*[^:]:%d", &si_http_port) == 1,
              "expected the http port in '%s'", line);
}

static void si_stop(void)
{
    int rc;

    if (si_edge.pid <= 0)
        return;
    rc = itest_proc_stop(&si_edge, 15000);
    cr_expect_eq(rc, 0,
                 "expected cc-sip-edge to exit 0 on SIGTERM after bad input, got %d (see %s)", rc,
                 si_edge.log);
    cr_expect(!itest_proc_sanitizer_report(&si_edge), "expected no sanitizer report in %s",
              si_edge.log);
}

TestSuite(sipedge_input, .init = si_start, .fini = si_stop, .timeout = 90);

/* ---- sockets ---------------------------------------------------------------------------- */

/* A UDP socket bound to ip (any port). */
static int si_udp(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    cr_assert(fd >= 0, "expected a udp socket");
    inet_pton(AF_INET, ip, &a.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "expected to bind %s", ip);
    return fd;
}

static int si_local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static void si_udp_send(int fd, const void *msg, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)si_sip_port)};

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(sendto(fd, msg, len, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)len,
              "expected to send %zu bytes", len);
}

static int si_tcp(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)si_sip_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
              "expected sip-edge to accept a tcp connection on port %d", si_sip_port);
    return fd;
}

static void si_tcp_send(int fd, const char *data, size_t len)
{
    size_t off = 0;
    ssize_t n;

    while (off < len) {
        n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* closed by sip-edge: what it answered tells why */
        off += (size_t)n;
    }
}

/* The status of the first final response (>= 200) read on fd within timeout_ms; 0 on silence,
 * -1 when a stream was closed without one. Copies that response into out when non-NULL. */
static int si_final(int fd, int timeout_ms, char *out, size_t cap)
{
    static char buf[SI_BUF];
    int64_t until = cc_time_mono_ms() + timeout_ms;
    size_t have = 0;
    int status;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = until - cc_time_mono_ms();
        ssize_t n;
        char *line;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        /* every response in buf, provisional ones skipped */
        for (line = buf; (line = strstr(line, "SIP/2.0 ")) != NULL; line += 8) {
            if (sscanf(line, "SIP/2.0 %d", &status) == 1 && status >= 200) {
                if (out)
                    snprintf(out, cap, "%s", line);
                return status;
            }
        }
        if (have > sizeof(buf) / 2)
            have = 0;
    }
}

/* A request from host:lport over transport ("UDP"/"TCP"): every mandatory header but those
 * named in omit ("Via", "Call-ID", "CSeq"), extra header lines, and a body of body_len bytes.
 * Returns its length. */
static size_t si_request(char *out, size_t cap, const char *method, const char *user,
                         const char *transport, const char *host, int lport, const char *omit,
                         const char *extra, size_t body_len)
{
    unsigned r = (unsigned)rand();
    int n = snprintf(out, cap, "%s sip:%s@127.0.0.1:%d SIP/2.0\r\n", method, user, si_sip_port);

    if (!strstr(omit, "Via"))
        n += snprintf(out + n, cap - (size_t)n,
                      "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-si%u;rport\r\n", transport, host, lport,
                      r);
    n += snprintf(out + n, cap - (size_t)n,
                  "Max-Forwards: 70\r\nFrom: <sip:caller@%s>;tag=si%u\r\n"
                  "To: <sip:%s@127.0.0.1>\r\nContact: <sip:caller@%s:%d>\r\n",
                  host, r, user, host, lport);
    if (!strstr(omit, "Call-ID"))
        n += snprintf(out + n, cap - (size_t)n, "Call-ID: si-%u@%s\r\n", r, host);
    if (!strstr(omit, "CSeq"))
        n += snprintf(out + n, cap - (size_t)n, "CSeq: 1 %s\r\n", method);
    n += snprintf(out + n, cap - (size_t)n, "%sContent-Length: %zu\r\n\r\n", extra ? extra : "",
                  body_len);
    cr_assert((size_t)n + body_len < cap, "expected the request to fit %zu bytes", cap);
    memset(out + n, 'a', body_len);
    return (size_t)n + body_len;
}

/* Sends method to user (without the headers named in omit) over UDP from a fresh socket on
 * 127.0.0.1; returns the final status within timeout_ms (0: silence). */
static int si_udp_request(const char *method, const char *user, const char *omit, int timeout_ms)
{
    static char msg[4096];
    int fd = si_udp("127.0.0.1"), status;
    size_t len = si_request(msg, sizeof(msg), method, user, "UDP", "127.0.0.1", si_local_port(fd),
                            omit, NULL, 0);

    si_udp_send(fd, msg, len);
    status = si_final(fd, timeout_ms, NULL, 0);
    close(fd);
    return status;
}

/* Asserts sip-edge still answers OPTIONS with 200 over UDP and over TCP. */
static void si_expect_alive(void)
{
    static char msg[4096];
    int status = si_udp_request("OPTIONS", "ping", "", 3000), fd;
    size_t len;

    cr_assert_eq(status, 200, "expected sip-edge to still answer OPTIONS over udp with 200, got %d",
                 status);
    fd = si_tcp();
    len = si_request(msg, sizeof(msg), "OPTIONS", "ping", "TCP", "127.0.0.1", si_local_port(fd), "",
                     NULL, 0);
    si_tcp_send(fd, msg, len);
    status = si_final(fd, 3000, NULL, 0);
    close(fd);
    cr_assert_eq(status, 200, "expected sip-edge to still answer OPTIONS over tcp with 200, got %d",
                 status);
    cr_assert_gt(si_edge.pid, 0, "expected cc-sip-edge to be running");
}

/* Sends msg in one datagram from 127.0.0.1 and returns the final status (0: silence). */
static int si_udp_exchange(const void *msg, size_t len)
{
    int fd = si_udp("127.0.0.1"), status;

    si_udp_send(fd, msg, len);
    status = si_final(fd, SI_QUIET_MS, NULL, 0);
    close(fd);
    return status;
}

/* ---- tests ------------------------------------------------------------------------------ */

Test(sipedge_input, ignores_garbage_datagrams)
{
#define SI_BYTES(s)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *data;
        size_t len;
    } garbage[] = {SI_BYTES("hello"), SI_BYTES("\r\n\r\n\r\n"), SI_BYTES("SIP/2.0\r\n\r\n"),
                   SI_BYTES("\x00\x01\x02\xff\xfe binary \x7f"),
                   SI_BYTES("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: ;;;;\r\nCSeq: abc\r\n\r\n")};
#undef SI_BYTES

    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int status = si_udp_exchange(garbage[i].data, garbage[i].len);

        cr_expect(status == 0 || status == 400,
                  "expected silence or 400 for garbage datagram %zu, got %d", i, status);
    }
    si_expect_alive();
}

Test(sipedge_input, answers_400_or_nothing_to_a_request_missing_a_mandatory_header)
{
    static const char *const omit[] = {"Call-ID", "CSeq", "Via", "Call-ID CSeq Via"};

    for (size_t i = 0; i < sizeof(omit) / sizeof(omit[0]); i++) {
        int status = si_udp_request("INVITE", "1000", omit[i], SI_QUIET_MS);

        cr_expect(status == 0 || status == 400,
                  "expected silence or 400 for an INVITE without %s, got %d", omit[i], status);
    }
    si_expect_alive();
}

Test(sipedge_input, answers_400_or_nothing_to_a_bad_request_line)
{
    static const char *const first[] = {"INVITE sip:1000@127.0.0.1\r\n", "INVITE SIP/2.0\r\n",
                                        "INVITE sip:1000@127.0.0.1 SIP/9.9\r\n",
                                        " sip:1000@127.0.0.1 SIP/2.0\r\n",
                                        "INVITE <<>> SIP/2.0\r\n"};
    static char msg[4096], rest[4096];

    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
        int fd = si_udp("127.0.0.1"), status;
        size_t len = si_request(rest, sizeof(rest), "INVITE", "1000", "UDP", "127.0.0.1",
                                si_local_port(fd), "", NULL, 0);
        const char *headers = strstr(rest, "\r\n") + 2;

        len = (size_t)snprintf(msg, sizeof(msg), "%s%s", first[i], headers);
        si_udp_send(fd, msg, len);
        status = si_final(fd, SI_QUIET_MS, NULL, 0);
        close(fd);
        /* 400 Bad Request, 416 Unsupported URI Scheme, 505 Version Not Supported, ... */
        cr_expect(status == 0 || (status >= 400 && status < 500) || status == 505,
                  "expected silence, a 4xx or 505 for request line %zu, got %d", i, status);
    }
    si_expect_alive();
}

Test(sipedge_input, refuses_an_unknown_method)
{
    int status = si_udp_request("FROBNICATE", "1000", "", 3000);

    cr_assert(status == 405 || status == 501, "expected 405 or 501 for an unknown method, got %d",
              status);
    si_expect_alive();
}

Test(sipedge_input, survives_a_100_kb_body_over_tcp)
{
    static char msg[SI_BUF];
    int fd = si_tcp(), status;
    size_t len = si_request(msg, sizeof(msg), "INVITE", "1000", "TCP", "127.0.0.1",
                            si_local_port(fd), "", "Content-Type: application/sdp\r\n", 100 * 1024);

    si_tcp_send(fd, msg, len);
    status = si_final(fd, 5000, NULL, 0);
    close(fd);
    /* too large (413/513), unparseable (400), or an unknown number (404): never a 2xx */
    cr_expect(status <= 0 || status >= 400,
              "expected an error, silence or a closed connection for a 100 kB body, got %d",
              status);
    si_expect_alive();
}

Test(sipedge_input, survives_a_tcp_stream_cut_in_the_middle_of_a_message)
{
    static char msg[8192];
    int fd = si_tcp(), status;
    size_t len = si_request(msg, sizeof(msg), "INVITE", "1000", "TCP", "127.0.0.1",
                            si_local_port(fd), "", "Content-Type: application/sdp\r\n", 2000);

    si_tcp_send(fd, msg, len / 3); /* headers cut short */
    close(fd);
    fd = si_tcp();
    si_tcp_send(fd, msg, len - 1000); /* whole head, half the body */
    close(fd);
    fd = si_tcp();
    si_tcp_send(fd, msg, len - 1000);
    shutdown(fd, SHUT_WR); /* half-closed: sip-edge may answer an error, or close */
    status = si_final(fd, SI_QUIET_MS, NULL, 0);
    cr_expect(status <= 0 || status >= 400,
              "expected silence, a close or an error for half a message, got %d", status);
    close(fd);
    si_expect_alive();
}

/* ---- REGISTER flood --------------------------------------------------------------------- */

/* REGISTER of user@si_tenant from fd (bound to ip): with an Authorization for password when
 * nonce is non-NULL. Returns the final status; *nonce_out gets a challenge's nonce. */
static int si_register(int fd, const char *ip, const char *user, const char *password,
                       const char *nonce, int cseq, char *nonce_out, size_t nonce_cap)
{
    static char msg[8192], resp[8192];
    char auth[1024] = "", uri[160], ha1[SIPEDGE_DIGEST_HEX_LEN + 1],
         digest[SIPEDGE_DIGEST_HEX_LEN + 1];
    int lport = si_local_port(fd), status;
    const char *p;
    int n;

    snprintf(uri, sizeof(uri), "sip:%s", si_tenant);
    if (nonce) {
        sipedge_digest_ha1(user, si_tenant, password, ha1);
        sipedge_digest_response(ha1, "REGISTER", uri, nonce, "auth", "00000001", "c0ffee", digest);
        snprintf(auth, sizeof(auth),
                 "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
                 "uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, "
                 "cnonce=\"c0ffee\"\r\n",
                 user, si_tenant, nonce, uri, digest);
    }
    n = snprintf(msg, sizeof(msg),
                 "REGISTER %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-reg%d-%u\r\n"
                 "Max-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=r%d\r\nTo: <sip:%s@%s>\r\n"
                 "Call-ID: si-reg-%d-%s@%s\r\nCSeq: %d REGISTER\r\n"
                 "Contact: <sip:%s@%s:%d>\r\nExpires: 600\r\n%sContent-Length: 0\r\n\r\n",
                 uri, ip, lport, cseq, (unsigned)rand(), user, si_tenant, lport, user, si_tenant,
                 lport, user, ip, cseq, user, ip, lport, auth);
    si_udp_send(fd, msg, (size_t)n);
    status = si_final(fd, SI_QUIET_MS * 2, resp, sizeof(resp));
    if (nonce_out && (p = strstr(resp, "nonce=\"")) != NULL && status == 401)
        snprintf(nonce_out, nonce_cap, "%.*s", (int)strcspn(p + 7, "\""), p + 7);
    return status;
}

Test(sipedge_input, rate_limits_wrong_passwords_from_one_source_only)
{
    char body[512], nonce[128] = "";
    struct itest_http_reply rep;
    int bad = si_udp("127.0.0.1"), good = si_udp("127.0.0.2"), status, refused = 0;

    snprintf(body, sizeof(body),
             "{\"username\":\"2001\",\"password\":\"right-pass\",\"agent_id\":\"a-2001\","
             "\"domain\":\"%s\"}",
             si_tenant);
    itest_http_fetch(si_http_port, "POST", "/v1/sip/credentials", SI_ADMIN,
                     "Content-Type: application/json\r\n", body, &rep);
    cr_assert_eq(rep.status, 201, "expected the credential to be created, got %d", rep.status);

    cr_assert_eq(si_register(bad, "127.0.0.1", "2001", NULL, NULL, 1, nonce, sizeof(nonce)), 401,
                 "expected a challenge to a REGISTER without credentials");
    for (int i = 0; i < SI_FAIL_LIMIT + 3; i++) {
        status = si_register(bad, "127.0.0.1", "2001", "wrong-pass", nonce, i + 2, NULL, 0);
        if (i < SI_FAIL_LIMIT)
            cr_expect_eq(status, 401, "expected wrong password %d (within the limit) to get 401",
                         i + 1);
        else
            refused += status == 403 || status == 0;
    }
    cr_expect_eq(refused, 3, "expected every attempt past the limit of %d to get 403 or silence",
                 SI_FAIL_LIMIT);
    cr_expect(itest_proc_wait_line(&si_edge, "too many failed authentications from '127.0.0.1'",
                                   NULL, 0, 3000),
              "expected a log line naming the refused source (see %s)", si_edge.log);
    /* even the right password is refused from that source for the rest of the window */
    status = si_register(bad, "127.0.0.1", "2001", "right-pass", nonce, 50, NULL, 0);
    cr_expect(status == 403 || status == 0, "expected the limited source to stay refused, got %d",
              status);

    /* another source is unaffected: challenged, then registered */
    cr_assert_eq(si_register(good, "127.0.0.2", "2001", NULL, NULL, 1, nonce, sizeof(nonce)), 401,
                 "expected another source to be challenged as usual");
    status = si_register(good, "127.0.0.2", "2001", "right-pass", nonce, 2, NULL, 0);
    cr_expect_eq(status, 200, "expected another source with the right password to register, got %d",
                 status);
    close(bad);
    close(good);
    si_expect_alive();
}
