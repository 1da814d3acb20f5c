/* sipedge_sip: su_root loop, NUA stack, event dispatch and the command queue (see sipedge_sip.h).
 */
#include "sipedge_sip.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/su_wait.h>

#include "cc_log.h"
#include "cc_time.h"
#include "sipedge_call.h"
#include "sipedge_registrar.h"

#define SIP_SHUTDOWN_MS 5000
/* RFC 4028 on both legs: a peer that stops refreshing (or answering our UPDATE refreshes)
 * has its call ended after at most this long (ended reason session_timeout). */
#define SIP_SESSION_EXPIRES_S 1800
#define SIP_UDP_BUFFER_BYTES                                                                       \
    (4 * 1024 * 1024) /* SO_RCVBUF/SO_SNDBUF (capped by net.core.*mem_max) */

/* A control request and its outcome, shared by the waiting thread and the SIP thread: freed
 * by whichever of the two lets go of it last (refs, under lock). */
struct sip_job {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    int rc;
    json_t *out;
    struct sipedge_ctl req;
};

/* One queued command: a control job (job != NULL), callbacks taken over (rows != NULL), an
 * originate (is_originate) or a decision. */
struct sip_cmd {
    struct sip_cmd *next;
    struct sip_job *job;
    struct sipedge_callback *rows; /* malloc'd, nrows */
    size_t nrows;
    bool is_originate;
    union {
        struct sipedge_decision d;
        struct sipedge_originate o;
    } u;
};

struct sipedge_sip {
    struct sipedge_sip_config c;
    su_root_t *root;
    nua_t *nua;
    sipedge_registrar *reg;
    sipedge_calls *calls;
    su_timer_t *sweep, *shutdown_timer;
    int efd, efd_index, stop_index;
    bool stopping, shut_down;
    pthread_mutex_t lock; /* guards head/tail/closed: the only state other threads touch */
    struct sip_cmd *head, **tail;
    bool closed; /* the loop has stopped: control requests are refused */
};

/* ---- command queue ---------------------------------------------------------------------- */

static void job_unref(struct sip_job *job)
{
    bool last;

    pthread_mutex_lock(&job->lock);
    last = --job->refs == 0;
    pthread_mutex_unlock(&job->lock);
    if (!last)
        return;
    json_decref(job->out);
    pthread_cond_destroy(&job->cond);
    pthread_mutex_destroy(&job->lock);
    free(job);
}

/* Queues cmd (taken) and wakes the SIP thread; -ESHUTDOWN (cmd freed) once it has stopped. */
static int sip_enqueue(sipedge_sip *s, struct sip_cmd *cmd)
{
    uint64_t one = 1;
    bool closed, wake;

    cmd->next = NULL;
    pthread_mutex_lock(&s->lock);
    closed = s->closed;
    /* a wake-up is pending while the queue is not empty: sip_drain reads the eventfd before it
     * takes the queue, so what is appended to a non-empty queue is taken with it */
    wake = s->head == NULL;
    if (!closed) {
        *s->tail = cmd;
        s->tail = &cmd->next;
    }
    pthread_mutex_unlock(&s->lock);
    if (closed) {
        free(cmd);
        return -ESHUTDOWN;
    }
    if (wake && write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        CC_ERROR("cannot wake the sip thread up: %s", strerror(errno));
    return 0;
}

int sipedge_sip_post(sipedge_sip *s, const struct sipedge_decision *d)
{
    struct sip_cmd *cmd = calloc(1, sizeof(*cmd));

    if (!cmd)
        return -ENOMEM;
    cmd->u.d = *d;
    (void)sip_enqueue(s, cmd); /* -ESHUTDOWN: a decision after the loop is moot */
    return 0;
}

static int job_wait(struct sip_job *job, int timeout_ms, json_t **out)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->lock);
    while (!job->done && rc == 0)
        rc = pthread_cond_timedwait(&job->cond, &job->lock, &until);
    if (job->done) {
        rc = job->rc;
        *out = job->out;
        job->out = NULL;
    } else {
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&job->lock);
    return rc;
}

int sipedge_sip_control(sipedge_sip *s, const struct sipedge_ctl *req, int timeout_ms, json_t **out)
{
    struct sip_cmd *cmd = calloc(1, sizeof(*cmd));
    struct sip_job *job = calloc(1, sizeof(*job));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!cmd || !job) {
        free(cmd);
        free(job);
        return -ENOMEM;
    }
    pthread_mutex_init(&job->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cond, &ca);
    pthread_condattr_destroy(&ca);
    job->refs = 2; /* this thread and the SIP thread */
    job->req = *req;
    cmd->job = job;
    rc = sip_enqueue(s, cmd);
    if (rc < 0) {
        job->refs = 1;
        job_unref(job);
        return rc;
    }
    rc = job_wait(job, timeout_ms, out);
    job_unref(job);
    return rc;
}

/* True when tenant is one of the comma-separated list (an empty list names every tenant). */
static bool sip_tenant_served(const char *list, const char *tenant)
{
    size_t n = strlen(tenant);

    if (!list || !*list)
        return true;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, tenant, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* The row of o in sipedge.originations. */
static void sip_origination(const sipedge_sip *s, const struct sipedge_originate *o,
                            struct sipedge_origination *row)
{
    memset(row, 0, sizeof(*row));
    snprintf(row->attempt_id, sizeof(row->attempt_id), "%s", o->attempt_id);
    snprintf(row->tenant, sizeof(row->tenant), "%s", o->tenant);
    snprintf(row->interaction_id, sizeof(row->interaction_id), "%s", o->interaction_id);
    snprintf(row->campaign_id, sizeof(row->campaign_id), "%s", o->campaign_id);
    snprintf(row->queue_id, sizeof(row->queue_id), "%s", o->queue_id);
    snprintf(row->customer_id, sizeof(row->customer_id), "%s", o->customer_id);
    snprintf(row->caller_id, sizeof(row->caller_id), "%s", o->caller_id);
    snprintf(row->destination, sizeof(row->destination), "%s", o->to);
    snprintf(row->instance, sizeof(row->instance), "%s", s->c.cfg->common.instance_id);
    row->priority = o->priority;
    row->recorded_ms = o->recorded_ms;
}

int sipedge_sip_originate_fn(void *ctx, const struct sipedge_originate *o)
{
    sipedge_sip *s = ctx;
    struct cc_log_ctx log = {.interaction_id = o->interaction_id};
    struct sipedge_origination row;
    struct sip_cmd *cmd;
    int rc;

    if (!sip_tenant_served(s->c.cfg->dialer_tenants, o->tenant))
        return 0; /* another instance's tenant */
    cmd = calloc(1, sizeof(*cmd));
    if (!cmd)
        return -ENOMEM;
    cmd->is_originate = true;
    cmd->u.o = *o;
    cmd->u.o.recorded_ms = cc_time_now_ms();
    sip_origination(s, &cmd->u.o, &row);
    /* recorded before the INVITE: a redelivered command never dials twice */
    rc = sipedge_store_origination_claim(s->c.store, &row);
    if (rc < 0)
        free(cmd);
    if (rc == -EALREADY) {
        CC_INFO_CTX(&log, "attempt '%s' was dialled already: redelivered command ignored",
                    o->attempt_id);
        return 0;
    }
    if (rc == -EINVAL) {
        CC_WARN_CTX(&log, "attempt '%s' refused by the database: command dropped", o->attempt_id);
        return 0;
    }
    if (rc < 0) {
        CC_ERROR_CTX(&log, "cannot record attempt '%s': %s; retrying later", o->attempt_id,
                     strerror(-rc));
        return -EAGAIN;
    }
    if (sip_enqueue(s, cmd) < 0) /* stays recorded: the next start reports it not dialled */
        CC_WARN_CTX(&log, "attempt '%s' arrived while stopping: not dialled", o->attempt_id);
    return 0;
}

void sipedge_sip_restore_fn(void *ctx, struct sipedge_callback *rows, size_t n)
{
    struct sip_cmd *cmd = calloc(1, sizeof(*cmd));

    if (!cmd) {
        CC_ERROR("cannot queue %zu callback(s) taken over: out of memory (they wait for this "
                 "instance's next start)",
                 n);
        free(rows);
        return;
    }
    cmd->rows = rows;
    cmd->nrows = n;
    if (sip_enqueue(ctx, cmd) < 0) {
        CC_WARN("%zu callback(s) taken over while stopping: they wait for this instance's next "
                "start, or for a live instance once it is retired",
                n);
        free(rows);
    }
}

void sipedge_sip_post_fn(void *s, const struct sipedge_decision *d)
{
    if (sipedge_sip_post(s, d) < 0)
        CC_ERROR_CTX(&(struct cc_log_ctx){.interaction_id = d->interaction_id},
                     "cannot queue a decision: out of memory");
}

/* Runs a control job on the SIP thread and hands the outcome to the waiting thread. */
static void sip_run_job(sipedge_sip *s, struct sip_job *job)
{
    json_t *out = NULL;
    int rc = s->stopping ? -ESHUTDOWN : sipedge_calls_control(s->calls, &job->req, &out);

    pthread_mutex_lock(&job->lock);
    job->rc = rc;
    job->out = out;
    job->done = true;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->lock);
    job_unref(job);
}

/* Stops taking commands; what is still queued is dropped, control requests answered
 * -ESHUTDOWN. */
static void sip_close(sipedge_sip *s)
{
    struct sip_cmd *list, *next;

    pthread_mutex_lock(&s->lock);
    s->closed = true;
    list = s->head;
    s->head = NULL;
    s->tail = &s->head;
    pthread_mutex_unlock(&s->lock);
    s->stopping = true;
    for (; list; list = next) {
        next = list->next;
        if (list->job)
            sip_run_job(s, list->job);
        free(list->rows);
        free(list);
    }
}

/* Callbacks taken over from a dead instance (sipedge_journal), on the SIP thread. */
static void sip_restore_rows(sipedge_sip *s, const struct sipedge_callback *rows, size_t n)
{
    int rc = sipedge_calls_restore_callbacks(s->calls, rows, n);

    if (rc < 0)
        CC_ERROR("cannot restore %zu callback(s) taken over: %s (they wait for this instance's "
                 "next start)",
                 n, strerror(-rc));
    else
        CC_INFO("restored %d queued callback(s) taken over from another instance", rc);
}

static int sip_drain(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    sipedge_sip *s = arg;
    struct sip_cmd *list, *next;
    uint64_t n;

    (void)magic;
    if (read(w->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        CC_WARN("cannot read the command eventfd: %s", strerror(errno));
    pthread_mutex_lock(&s->lock);
    list = s->head;
    s->head = NULL;
    s->tail = &s->head;
    pthread_mutex_unlock(&s->lock);
    for (; list; list = next) {
        next = list->next;
        if (list->job)
            sip_run_job(s, list->job);
        else if (s->stopping)
            ;
        else if (list->rows)
            sip_restore_rows(s, list->rows, list->nrows);
        else if (list->is_originate)
            sipedge_calls_originate(s->calls, &list->u.o);
        else
            sipedge_calls_on_decision(s->calls, &list->u.d);
        free(list->rows);
        free(list);
    }
    return 0;
}

/* ---- events ----------------------------------------------------------------------------- */

/* Out-of-dialog requests sip-edge does not serve (MESSAGE, SUBSCRIBE, ...). */
static void sip_refuse(nua_t *nua, nua_handle_t *nh)
{
    nua_respond(nh, SIP_501_NOT_IMPLEMENTED, NUTAG_WITH_THIS(nua), TAG_END());
    nua_handle_destroy(nh);
}

static void sip_event(nua_event_t event, int status, char const *phrase, nua_t *nua,
                      nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic, sip_t const *sip,
                      tagi_t tags[])
{
    sipedge_sip *s = magic;
    int state = nua_callstate_init;

    if (event == nua_r_shutdown) {
        if (status >= 200) {
            s->shut_down = true;
            su_root_break(s->root);
        }
        return;
    }
    if (hmagic) {
        sipedge_calls_on_event(s->calls, event, status, phrase, nh, hmagic, sip, tags);
        return;
    }
    switch (event) {
    case nua_i_invite:
        if (s->stopping)
            nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
        else
            sipedge_calls_on_invite(s->calls, nh, sip);
        break;
    case nua_i_register:
        sipedge_registrar_on_register(s->reg, nua, nh, sip);
        break;
    case nua_i_state:
        tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
        if (state == nua_callstate_terminated)
            nua_handle_destroy(nh);
        break;
    case nua_i_options:
        nua_handle_destroy(nh); /* NUA answered it */
        break;
    case nua_i_message:
    case nua_i_subscribe:
    case nua_i_publish:
    case nua_i_refer:
    case nua_i_notify:
    case nua_i_info:
    case nua_i_method:
        CC_INFO("refusing an unsupported %s request with 501", nua_event_name(event));
        sip_refuse(nua, nh);
        break;
    case nua_i_error:
        CC_WARN("sip stack error %d %s", status, phrase ? phrase : "");
        break;
    default:
        break;
    }
}

static void sip_sweep(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    sipedge_sip *s = arg;

    (void)magic;
    (void)t;
    if (!s->stopping)
        sipedge_registrar_sweep(s->reg);
}

static void sip_shutdown_late(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    sipedge_sip *s = arg;

    (void)magic;
    (void)t;
    CC_WARN("sip stack did not shut down within %d ms: stopping anyway", SIP_SHUTDOWN_MS);
    su_root_break(s->root);
}

static int sip_stop(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    sipedge_sip *s = arg;
    char buf[256];

    (void)magic;
    if (read(w->fd, buf, sizeof(buf)) < 0 && errno != EAGAIN)
        CC_WARN("cannot read the stop descriptor: %s", strerror(errno));
    if (s->stopping)
        return 0;
    s->stopping = true;
    CC_INFO("ending %zu call(s) and shutting the sip stack down", sipedge_calls_active(s->calls));
    sipedge_calls_end_all(s->calls);
    nua_shutdown(s->nua);
    s->shutdown_timer = su_timer_create(su_root_task(s->root), SIP_SHUTDOWN_MS);
    if (s->shutdown_timer)
        su_timer_set(s->shutdown_timer, sip_shutdown_late, s);
    return 0;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Before the loop and the decisions consumer: the callbacks a previous process of this instance
 * took come back (a failure is logged: they come back at the next start, or to a live instance
 * once this one is retired). */
static void sip_restore_callbacks(sipedge_sip *s)
{
    struct sipedge_callback *rows;
    const char *me = s->c.cfg->common.instance_id;
    size_t n;
    int rc;

    if (!s->c.store)
        return;
    rc = sipedge_store_callbacks_claim(s->c.store, me, me, &rows, &n);
    if (rc == 0) {
        rc = sipedge_calls_restore_callbacks(s->calls, rows, n);
        free(rows);
    }
    if (rc < 0)
        CC_ERROR("cannot restore the queued callbacks: %s (tried again at the next start)",
                 strerror(-rc));
    else if (rc > 0)
        CC_INFO("restored %d queued callback(s) waiting for an agent", rc);
}

sipedge_sip *sipedge_sip_new(const struct sipedge_sip_config *c)
{
    sipedge_sip *s = calloc(1, sizeof(*s));
    su_wait_t w;

    if (!s)
        return NULL;
    s->c = *c;
    s->efd = -1;
    s->efd_index = s->stop_index = -1;
    s->tail = &s->head;
    pthread_mutex_init(&s->lock, NULL);
    if (su_init() != 0) {
        free(s);
        return NULL;
    }
    s->root = su_root_create(s);
    if (!s->root)
        goto out_fail;
    /* NUA's stack runs in this thread: with Sofia's default (threading on) nua_create starts it
     * in a thread of its own, and every NUA event and every nua_*() call crossed threads through
     * a socket wakeup (two context switches per SIP event) */
    su_root_threading(s->root, 0);
    s->nua = nua_create(
        s->root, sip_event, s, NUTAG_URL(c->cfg->sip_url), NUTAG_MEDIA_ENABLE(0),
        NUTAG_APPL_METHOD("REGISTER"), NUTAG_ALLOW("REGISTER"), NUTAG_USER_AGENT("cc-sip-edge"),
        NUTAG_ENABLEMESSAGE(0), NUTAG_SESSION_TIMER(SIP_SESSION_EXPIRES_S), NUTAG_MIN_SE(90),
        NUTAG_SESSION_REFRESHER(nua_any_refresher), NUTAG_UPDATE_REFRESH(1),
        /* no nta N2 timer: nta keeps every ringing INVITE in one sorted retransmission list
         * whose insertion walks all of them (O(ringing calls) per call); sipedge_call re-sends
         * 180 to waiting callers itself, from a FIFO (CC_SIPEDGE_PROGRESS_S) */
        NTATAG_PROGRESS(UINT_MAX),
        /* bursts arrive while this thread is descheduled: the default ~200 kB UDP buffers
         * drop them (seen as retransmissions in make bench-sip) */
        TPTAG_UDP_RMEM(SIP_UDP_BUFFER_BYTES), TPTAG_UDP_WMEM(SIP_UDP_BUFFER_BYTES), TAG_END());
    if (!s->nua) {
        CC_ERROR("cannot listen for sip on '%s'", c->cfg->sip_url);
        goto out_fail;
    }
    s->reg = sipedge_registrar_new(&(struct sipedge_registrar_config){.cfg = c->cfg,
                                                                      .store = c->store,
                                                                      .pub = c->pub,
                                                                      .secret = c->secret,
                                                                      .secret_len = c->secret_len});
    s->calls = sipedge_calls_new(&(struct sipedge_calls_config){.cfg = c->cfg,
                                                                .store = c->store,
                                                                .pub = c->pub,
                                                                .nua = s->nua,
                                                                .root = s->root,
                                                                .reg = s->reg,
                                                                .journal = c->journal});
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->reg || !s->calls || s->efd < 0)
        goto out_fail;
    sip_restore_callbacks(s);
    if (su_wait_create(&w, s->efd, SU_WAIT_IN) != 0)
        goto out_fail;
    s->efd_index = su_root_register(s->root, &w, sip_drain, s, 0);
    s->sweep = su_timer_create(su_root_task(s->root), 1000);
    if (s->efd_index < 0 || !s->sweep || su_timer_set_for_ever(s->sweep, sip_sweep, s) < 0)
        goto out_fail;
    return s;
out_fail:
    sipedge_sip_free(s);
    return NULL;
}

int sipedge_sip_run(sipedge_sip *s, int stop_fd)
{
    su_wait_t w;

    if (su_wait_create(&w, stop_fd, SU_WAIT_IN) != 0)
        return -EIO;
    s->stop_index = su_root_register(s->root, &w, sip_stop, s, 0);
    if (s->stop_index < 0)
        return -EIO;
    su_root_run(s->root);
    sip_close(s);
    return 0;
}

void sipedge_sip_free(sipedge_sip *s)
{
    if (!s)
        return;
    if (s->sweep)
        su_timer_destroy(s->sweep);
    if (s->shutdown_timer)
        su_timer_destroy(s->shutdown_timer);
    if (s->nua) {
        if (!s->shut_down) { /* never started, or a late shutdown: finish it here */
            nua_shutdown(s->nua);
            for (int i = 0; i < 50 && !s->shut_down; i++)
                su_root_step(s->root, 100);
        }
        nua_destroy(s->nua);
    }
    sipedge_calls_free(s->calls);
    sipedge_registrar_free(s->reg);
    if (s->root && s->efd_index >= 0)
        su_root_deregister(s->root, s->efd_index);
    if (s->root && s->stop_index >= 0)
        su_root_deregister(s->root, s->stop_index);
    if (s->efd >= 0)
        close(s->efd);
    if (s->root)
        su_root_destroy(s->root);
    sip_close(s);
    pthread_mutex_destroy(&s->lock);
    su_deinit();
    free(s);
}
