/*
 * http_bare: the reference for the HTTP benchmark -- bare libmicrohttpd with the same settings
 * as cc_http (thread pool of 2, epoll, response queued on the second call so keep-alive
 * works), answering every request 200 "ok". Nothing else: no routing, auth or metrics.
 *
 * Usage: http_bare [port]   (0 or none = any free port). Prints "port <n>" on stdout once
 * listening; stops on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <microhttpd.h>

static enum MHD_Result answer_ok(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **state)
{
    static int first_call_marker;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    if (*state == NULL) { /* first call: headers only; answering now would drop keep-alive */
        *state = &first_call_marker;
        return MHD_YES;
    }
    *upload_size = 0;
    resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct MHD_Daemon *daemon;
    const union MHD_DaemonInfo *info;
    sigset_t stop;
    int sig;

    if (port < 0 || port > 65535) {
        fprintf(stderr, "http_bare: bad port '%s'\n", argv[1]);
        return 2;
    }
    /* Block the stop signals before the pool's threads exist, so only sigwait sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                         (uint16_t)port, NULL, NULL, answer_ok, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                         2u, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "http_bare: cannot listen on port %d\n", port);
        return 1;
    }
    info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? info->port : 0u);
    fflush(stdout);
    sigwait(&stop, &sig);
    MHD_stop_daemon(daemon);
    return 0;
}
