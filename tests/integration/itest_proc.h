/*
 * itest_proc: child processes for integration tests -- a service binary or sipp started with
 * extra environment and its stdout+stderr in a log file, waited for by a line in that log, and
 * stopped with SIGTERM (exit status and sanitizer reports checked by the caller).
 *
 * No function here asserts (safe in any thread; the test decides what a failure means). Each
 * process belongs to the test that started it: stop or kill it in the test or its .fini.
 */
#ifndef ITEST_PROC_H
#define ITEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct itest_proc {
    pid_t pid; /* 0 when not running */
    char log[512];
};

/* Starts argv[0] (a path) with argv, the current environment plus env ("NAME=value" entries,
 * NULL-terminated; may be NULL), stdout and stderr appended to log (created/truncated). 0, or a
 * negative errno (fork failed). */
int itest_proc_spawn(struct itest_proc *p, char *const argv[], const char *const env[],
                     const char *log);
/* Waits until a line of p's log contains needle; copies that line (without the newline) into
 * line[cap] when line is non-NULL. The log is read once even when the process is gone. False
 * after timeout_ms, or when the process exited first. */
bool itest_proc_wait_line(struct itest_proc *p, const char *needle, char *line, size_t cap,
                          int timeout_ms);
/* True when the log holds a sanitizer report (AddressSanitizer, LeakSanitizer, UBSan). */
bool itest_proc_sanitizer_report(const struct itest_proc *p);
/* Waits for the process to exit, at most timeout_ms; returns its exit status (0..255), 128+signal
 * when a signal ended it, or -ETIMEDOUT (the process then still runs). p->pid becomes 0 once
 * it is reaped. */
int itest_proc_wait(struct itest_proc *p, int timeout_ms);
/* SIGTERM, then itest_proc_wait(timeout_ms); SIGKILL when it did not exit in time (returning
 * -ETIMEDOUT). No-op returning 0 when p is not running. */
int itest_proc_stop(struct itest_proc *p, int timeout_ms);
/* SIGKILL and reap (for fixtures cleaning up after a failed test). No-op when not running. */
void itest_proc_kill(struct itest_proc *p);
/* A loopback port free right now for both UDP and TCP (bound and released), or -1. */
int itest_free_udp_port(void);
/* Starts sipp with the scenario top/tests/integration/sip/<scenario>, the remote target (NULL:
 * server mode), local port, and extra arguments (NULL-terminated list, may be NULL); logs go to
 * log. Always runs "-nd -nostdin -i 127.0.0.1 -timeout 120s -timeout_error -recv_timeout 60000 -m
 * 1" (extra may set its own -m). 0 or a negative errno. */
int itest_sipp_start(struct itest_proc *p, const char *top, const char *scenario,
                     const char *remote, int port, const char *const extra[], const char *log);

#endif
