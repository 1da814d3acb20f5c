/* sipedge_sip: su_root loop, NUA stack, event dispatch and the command queue (see sipedge_sip.h).
 */
#include "sipedge_sip.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/su_wait.h>

#include "cc_log.h"
#include "sipedge_call.h"
#include "sipedge_registrar.h"

#define SIP_SHUTDOWN_MS 5000

struct sip_cmd {
    struct sip_cmd *next;
    struct sipedge_decision d;
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
    pthread_mutex_t lock; /* guards head/tail: the only state other threads touch */
    struct sip_cmd *head, **tail;
};

/* ---- command queue ---------------------------------------------------------------------- */

int sipedge_sip_post(sipedge_sip *s, const struct sipedge_decision *d)
{
    struct sip_cmd *cmd = malloc(sizeof(*cmd));
    uint64_t one = 1;

    if (!cmd)
        return -ENOMEM;
    cmd->next = NULL;
    cmd->d = *d;
    pthread_mutex_lock(&s->lock);
    *s->tail = cmd;
    s->tail = &cmd->next;
    pthread_mutex_unlock(&s->lock);
    if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        CC_ERROR("cannot wake the sip thread up: %s", strerror(errno));
    return 0;
}

void sipedge_sip_post_fn(void *s, const struct sipedge_decision *d)
{
    if (sipedge_sip_post(s, d) < 0)
        CC_ERROR_CTX(&(struct cc_log_ctx){.interaction_id = d->interaction_id},
                     "cannot queue a decision: out of memory");
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
        if (!s->stopping)
            sipedge_calls_on_decision(s->calls, &list->d);
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
    s->nua = nua_create(s->root, sip_event, s, NUTAG_URL(c->cfg->sip_url), NUTAG_MEDIA_ENABLE(0),
                        NUTAG_APPL_METHOD("REGISTER"), NUTAG_ALLOW("REGISTER"),
                        NUTAG_USER_AGENT("cc-sip-edge"), NUTAG_ENABLEMESSAGE(0), TAG_END());
    if (!s->nua) {
        CC_ERROR("cannot listen for sip on '%s'", c->cfg->sip_url);
        goto out_fail;
    }
    s->reg = sipedge_registrar_new(&(struct sipedge_registrar_config){.cfg = c->cfg,
                                                                      .store = c->store,
                                                                      .pub = c->pub,
                                                                      .secret = c->secret,
                                                                      .secret_len = c->secret_len});
    s->calls = sipedge_calls_new(&(struct sipedge_calls_config){
        .cfg = c->cfg, .store = c->store, .pub = c->pub, .nua = s->nua, .root = s->root});
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->reg || !s->calls || s->efd < 0)
        goto out_fail;
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
    return 0;
}

void sipedge_sip_free(sipedge_sip *s)
{
    struct sip_cmd *next;

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
    for (; s->head; s->head = next) {
        next = s->head->next;
        free(s->head);
    }
    pthread_mutex_destroy(&s->lock);
    su_deinit();
    free(s);
}
