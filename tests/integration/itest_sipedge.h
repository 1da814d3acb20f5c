/*
 * itest_sipedge: the fixture of sip-edge's SIP integration tests -- cc-router and cc-sip-edge
 * as processes on the stack, a tenant of the test's own (queue, agents, SIP credentials, DIDs),
 * sipp callers and phones, and a watch of cc.interactions / cc.agents / cc.routing.* keeping
 * only that tenant's events.
 *
 * Every function asserts (Criterion): test code only. One struct per test, set up in the
 * suite's .init and torn down in its .fini (which kills whatever a failed test left running).
 */
#ifndef ITEST_SIPEDGE_H
#define ITEST_SIPEDGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cc_bus.h"
#include "itest_proc.h"

#define ITEST_SIPEDGE_ADMIN   "sc-admin-token" /* the admin token of the tenant */
#define ITEST_SIPEDGE_WAIT_MS 60000            /* bus waits (generous: a loaded machine) */
#define ITEST_SIPEDGE_SIPP    6                /* sipp processes at once */
#define ITEST_SIPEDGE_PHONES  2                /* sip_phone processes at once */
#define ITEST_PHONE_LINES     1024             /* lines of one phone's log that can be consumed */

/* A tests/helpers/sip_phone process: commands go to its stdin, its events (stdout) and stderr
 * to proc.log, which itest_phone_expect reads. */
struct itest_phone {
    struct itest_proc proc;
    int in_fd;                             /* its stdin, -1 when not running */
    int port;                              /* its UDP/TCP port on 127.0.0.1 */
    unsigned char used[ITEST_PHONE_LINES]; /* log lines already matched by an expect */
};

struct itest_sipedge {
    char tenant[80];
    const char *extra_tokens; /* more CC_AUTH_TOKENS entries for both services, or NULL */
    char trunk_uri[128];      /* CC_SIPEDGE_TRUNK_URI of sip-edge ("" = no trunk) */
    char dialer_group[96];    /* sip-edge's cc.dialer.commands group (unique, at the end) */
    char instance[96];        /* sip-edge's CC_INSTANCE_ID ("" = a unique one per start) */
    const char *edge_env;     /* one more "CC_X=v" for sip-edge, or NULL */
    char takeover_group[64];  /* sip-edge's CC_SIPEDGE_TAKEOVER_GROUP: the test's own */
    struct itest_proc router, edge, sipp[ITEST_SIPEDGE_SIPP];
    struct itest_phone phones[ITEST_SIPEDGE_PHONES];
    int router_port, edge_http_port, sip_port;
    char sip_target[64]; /* "127.0.0.1:<sip port>" */
    cc_consumer *watch;
    cc_producer *producer; /* the watch's deadletter; free for the test's own events */
    json_t *events;        /* the tenant's events in arrival order, each with "_topic" */
    int lock_fd;
};

/* Takes the shared suite lock, makes a unique tenant named after prefix and starts the watch. */
void itest_sipedge_setup(struct itest_sipedge *t, const char *prefix);
/* Kills every process still running and frees the watch. */
void itest_sipedge_teardown(struct itest_sipedge *t);

/* cc-router / cc-sip-edge (CC_SIPEDGE_MAX_CALLS=max_calls) for the tenant, waiting until they
 * serve; logs in BUILDROOT/tests/logs. sip-edge gets t->trunk_uri (with user "trunkuser",
 * password "trunk-secret") and a dialer group of its own positioned at the end of
 * cc.dialer.commands. */
void itest_sipedge_router_start(struct itest_sipedge *t);
void itest_sipedge_edge_start(struct itest_sipedge *t, int max_calls);
/* SIGTERM both; expects exit 0 and no sanitizer report. */
void itest_sipedge_stop_services(struct itest_sipedge *t);
/* Both services, queue "q1" (ring timeout, max_no_answer), agents a1 (and a2 when nagents is
 * 2) with SIP users 1001/1002, registered on the UAS ports written to ports[] and available. */
void itest_sipedge_start_with_agents(struct itest_sipedge *t, int nagents, int ring_timeout_s,
                                     int max_no_answer, int max_calls, int ports[2]);
/* The same without registering or making anyone available: both services, q1, a1 (and a2) with
 * SIP users 1001 (and 1002); then register each phone (sipp or itest_phone) and call
 * itest_sipedge_available. */
void itest_sipedge_start_agents_unregistered(struct itest_sipedge *t, int nagents,
                                             int ring_timeout_s, int max_no_answer, int max_calls);
/* Registers user's phone with sipp (its UAS on uas_port), waits for the router to know it. */
void itest_sipedge_register(struct itest_sipedge *t, const char *agent, const char *user,
                            int uas_port);
/* Waits until the router rings agent at a contact on uas_port (cc.agent.registered applied). */
void itest_sipedge_wait_contact(struct itest_sipedge *t, const char *agent, int uas_port);
/* Makes agent available in the router. */
void itest_sipedge_available(struct itest_sipedge *t, const char *agent);

/* Starts a sip_phone on a free port (waits for its "ready"). */
struct itest_phone *itest_sipedge_phone(struct itest_sipedge *t);
/* Registers the phone as user (password agent-secret-1) of the tenant's domain at sip-edge
 * (the registrar becomes its outbound proxy) and waits for the router to know agent there. */
void itest_sipedge_phone_register(struct itest_sipedge *t, struct itest_phone *ph,
                                  const char *agent, const char *user);
/* Sends one command line (printf format, no newline) to the phone. */
void itest_phone_send(struct itest_phone *ph, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The first log line of the phone not matched before that contains needle, within timeout_ms:
 * copied into line (cap), marked matched. Asserts that it came. */
void itest_phone_expect(struct itest_phone *ph, const char *needle, char *line, size_t cap,
                        int timeout_ms);
/* "quit", then expects exit 0 within 10 s and no sanitizer report. */
void itest_phone_stop(struct itest_phone *ph);

/* The first event of type (and subject, and data.field == value when given) within timeout_ms:
 * borrowed, with its index; NULL when none came. */
json_t *itest_sipedge_wait(struct itest_sipedge *t, const char *type, const char *subject,
                           const char *field, const char *value, int timeout_ms, size_t *index);
/* How many events of type about subject arrived after settling settle_ms. */
size_t itest_sipedge_count(struct itest_sipedge *t, const char *type, const char *subject,
                           int settle_ms);
/* How many events of type about subject came from a source starting with source_prefix
 * ("/sip-edge/"), among those arrived so far. */
size_t itest_sipedge_count_from(struct itest_sipedge *t, const char *type, const char *subject,
                                const char *source_prefix);
/* data.field of an event (0 / "" when absent). */
json_int_t itest_sipedge_int(const json_t *ev, const char *field);
const char *itest_sipedge_str(const json_t *ev, const char *field);
/* The interaction sip-edge created for a call to did (asserts it came). */
const char *itest_sipedge_interaction_of(struct itest_sipedge *t, const char *did);

/* One REST call with token (NULL: the admin token) expecting status want; the reply's body
 * parsed (a new reference, NULL when not JSON). */
json_t *itest_sipedge_rest(int port, const char *method, const char *path, const char *token,
                           const char *body, int want);
void itest_sipedge_queue(struct itest_sipedge *t, const char *q, int ring_timeout_s,
                         int max_no_answer);
/* Waits (10 s at most) until the router shows members in queue q. */
void itest_sipedge_wait_members(struct itest_sipedge *t, const char *q, int members);
/* Agent id in queue q at position pos with the SIP credential user@tenant. */
void itest_sipedge_agent(struct itest_sipedge *t, const char *id, const char *q, int pos,
                         const char *user);
/* A DID of the test ("+49" and 11 random digits) routed to queue q. */
void itest_sipedge_did(struct itest_sipedge *t, char *did, size_t cap, const char *q);

/* sipp with scenario (tests/integration/sip/); remote NULL = a UAS on port. */
struct itest_proc *itest_sipedge_sipp(struct itest_sipedge *t, const char *scenario,
                                      const char *remote, int port, const char *const extra[]);
/* Waits for sipp to exit 0 (kills it after timeout_ms). */
void itest_sipedge_sipp_done(struct itest_sipedge *t, struct itest_proc *p, const char *what,
                             int timeout_ms);
/* A caller of did (-d pause_ms, NULL = 0) from a free port. */
struct itest_proc *itest_sipedge_caller(struct itest_sipedge *t, const char *scenario,
                                        const char *did, const char *pause_ms);

#endif
