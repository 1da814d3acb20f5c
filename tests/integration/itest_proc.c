/* itest_proc: child processes for integration tests (see itest_proc.h). */
#include "itest_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_ARGS_MAX 48

static long long proc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int itest_proc_spawn(struct itest_proc *p, char *const argv[], const char *const env[],
                     const char *log)
{
    pid_t pid;

    snprintf(p->log, sizeof(p->log), "%s", log);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execvp(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

bool itest_proc_wait_line(struct itest_proc *p, const char *needle, char *line, size_t cap,
                          int timeout_ms)
{
    long long until = proc_now_ms() + timeout_ms;
    char buf[8192];

    for (;;) {
        FILE *f = fopen(p->log, "r");
        bool found = false;

        while (f && !found && fgets(buf, sizeof(buf), f)) {
            if (strstr(buf, needle)) {
                found = true;
                if (line && cap) {
                    buf[strcspn(buf, "\n")] = '\0';
                    snprintf(line, cap, "%s", buf);
                }
            }
        }
        if (f)
            fclose(f);
        if (found)
            return true;
        if (p->pid <= 0)
            return false;
        if (waitpid(p->pid, NULL, WNOHANG) != 0) {
            p->pid = 0; /* exited (and reaped): never signal that pid again */
            return false;
        }
        if (proc_now_ms() > until)
            return false;
        usleep(20 * 1000);
    }
}

bool itest_proc_sanitizer_report(const struct itest_proc *p)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", NULL};
    char buf[8192];
    FILE *f = fopen(p->log, "r");
    bool found = false;

    while (f && !found && fgets(buf, sizeof(buf), f))
        for (size_t i = 0; marks[i] && !found; i++)
            found = strstr(buf, marks[i]) != NULL;
    if (f)
        fclose(f);
    return found;
}

int itest_proc_wait(struct itest_proc *p, int timeout_ms)
{
    long long until = proc_now_ms() + timeout_ms;
    int status = 0;

    if (p->pid <= 0)
        return 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid || (r < 0 && errno != EINTR)) {
            p->pid = 0;
            if (r < 0)
                return -ECHILD;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (proc_now_ms() > until)
            return -ETIMEDOUT;
        usleep(10 * 1000);
    }
}

int itest_proc_stop(struct itest_proc *p, int timeout_ms)
{
    int rc;

    if (p->pid <= 0)
        return 0;
    kill(p->pid, SIGTERM);
    rc = itest_proc_wait(p, timeout_ms);
    if (rc == -ETIMEDOUT)
        itest_proc_kill(p);
    return rc;
}

void itest_proc_kill(struct itest_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* True when port can be bound on 127.0.0.1 with type (SOCK_DGRAM / SOCK_STREAM) right now. */
static bool proc_port_free(int type, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int itest_free_udp_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), port = -1;

        if (fd < 0)
            return -1;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
            port = ntohs(sa.sin_port);
        close(fd);
        if (port > 0 && proc_port_free(SOCK_STREAM, port)) /* SIP listens on both */
            return port;
    }
    return -1;
}

int itest_sipp_start(struct itest_proc *p, const char *top, const char *scenario,
                     const char *remote, int port, const char *const extra[], const char *log)
{
    static char sipp[] = "sipp";
    char *argv[PROC_ARGS_MAX];
    char sf[512], portbuf[16];
    bool has_m = false;
    int n = 0;

    snprintf(sf, sizeof(sf), "%s/tests/integration/sip/%s", top, scenario);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    argv[n++] = sipp;
    if (remote)
        argv[n++] = (char *)remote;
    argv[n++] = (char *)"-sf";
    argv[n++] = sf;
    argv[n++] = (char *)"-i";
    argv[n++] = (char *)"127.0.0.1";
    argv[n++] = (char *)"-p";
    argv[n++] = portbuf;
    argv[n++] = (char *)"-nd";
    argv[n++] = (char *)"-nostdin";
    argv[n++] = (char *)"-timeout";
    argv[n++] = (char *)"120s";
    argv[n++] = (char *)"-timeout_error";
    argv[n++] = (char *)"-recv_timeout";
    argv[n++] = (char *)"60000";
    for (size_t i = 0; extra && extra[i] && n < PROC_ARGS_MAX - 4; i++) {
        has_m = has_m || strcmp(extra[i], "-m") == 0;
        argv[n++] = (char *)extra[i];
    }
    if (!has_m) {
        argv[n++] = (char *)"-m";
        argv[n++] = (char *)"1";
    }
    argv[n] = NULL;
    return itest_proc_spawn(p, argv, NULL, log);
}
