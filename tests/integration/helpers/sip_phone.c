/*
 * sip_phone: a small SIP phone (Sofia-SIP NUA) for integration tests, driven by line commands on
 * stdin and reporting what happens as lines on stdout, so that a test can play a real phone
 * where a sipp scenario cannot: several dialogs with Call-IDs of their own, REFER with Replaces,
 * digest authentication of REGISTER and INVITE.
 *
 *   sip_phone BIND_URL          e.g. sip_phone "sip:127.0.0.1:5099;transport=udp"
 *
 * Commands (one per line; <call> is the number an event gave):
 *   register <aor> <user> <password> <registrar> [expires]
 *                         REGISTER aor at registrar (answering its 401 with the digest of
 *                         user/password); the registrar becomes the outbound proxy and aor the
 *                         From of calls; user/password answer INVITE challenges too
 *   unregister            REGISTER with Expires 0
 *   invite <uri>          a new call (fresh Call-ID); its 401/407 answered once
 *   autoanswer <status>   what incoming INVITEs get: 200 (default: 180 then 200 with SDP),
 *                         180 (ring until `answer`), or a final status (486, 603 ...)
 *   answer <call>         200 with SDP to a ringing incoming call
 *   hold <call> / resume <call>
 *                         re-INVITE with a=sendonly / a=sendrecv
 *   refer <call> <uri>    blind transfer: REFER with Refer-To <uri>
 *   refer-replaces <call> <target call>
 *                         attended transfer: REFER on <call> with Refer-To the target call's
 *                         remote URI ?Replaces=<its Call-ID;to-tag;from-tag>
 *   bye <call>            BYE (CANCEL while it rings)
 *   quit                  un-register when registered, shut NUA down, exit 0
 *
 * Events (stdout, one line each, "key=value" words; values have no spaces):
 *   ready bind=<url>
 *   event registered status=<s> | event register_failed status=<s>
 *   event incoming call=<n> from=<uri> to=<uri> call_id=<id> origin=<o= user/sess/version>
 *   event calling call=<n> uri=<uri>
 *   event progress call=<n> status=<1xx>
 *   event answered call=<n> call_id=<id> local_tag=<t> remote_tag=<t> origin=<...>
 *   event failed call=<n> status=<s>
 *   event reinvite call=<n> origin=<...> hold=<0|1>      (a re-INVITE we answered 200)
 *   event reinvite_done call=<n> status=<s>              (the answer to our re-INVITE)
 *   event refer_sent call=<n> status=<s>                 (the REFER's answer, e.g. 202)
 *   event notify call=<n> sipfrag=<status> state=<subscription state>
 *   event ended call=<n> by=<local|remote>
 *   error <text>          a command that could not be done
 *
 * Media: none. Each call offers/answers a fixed SDP (PCMU at 127.0.0.1, port 40000 + 2 * call)
 * with an increasing origin version; later media tests can replace it.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/su_wait.h>

#define PHONE_CALLS    32
#define PHONE_LINE_MAX 2048
#define PHONE_STR      512

struct phone_call {
    int n;            /* 1.. (0: free slot) */
    nua_handle_t *nh; /* NULL once terminated */
    bool incoming, answered, ended, auth_tried;
    char remote_uri[PHONE_STR]; /* whom we called / who called us */
    char call_id[PHONE_STR], local_tag[128], remote_tag[128];
    int sdp_version;
};

struct phone {
    su_root_t *root;
    nua_t *nua;
    nua_handle_t *reg; /* the registration */
    char aor[PHONE_STR], user[128], password[128];
    bool reg_auth_tried, quitting;
    int autoanswer;
    int next_n;
    int stdin_index; /* su_root registration of stdin, -1 once gone */
    char inbuf[PHONE_LINE_MAX];
    size_t inlen;
    struct phone_call calls[PHONE_CALLS];
};

static void phone_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void phone_say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- calls ------------------------------------------------------------------------------ */

static struct phone_call *phone_call_new(struct phone *ph, nua_handle_t *nh)
{
    for (int i = 0; i < PHONE_CALLS; i++) {
        struct phone_call *c = &ph->calls[i];

        if (c->n == 0 || (c->ended && !c->nh)) {
            memset(c, 0, sizeof(*c));
            c->n = ++ph->next_n;
            c->nh = nh;
            nua_handle_bind(nh, c);
            return c;
        }
    }
    return NULL;
}

static struct phone_call *phone_call_get(struct phone *ph, const char *arg)
{
    int n = arg ? atoi(arg) : 0;

    for (int i = 0; i < PHONE_CALLS; i++)
        if (n > 0 && ph->calls[i].n == n && ph->calls[i].nh)
            return &ph->calls[i];
    phone_say("error no call '%s'", arg ? arg : "");
    return NULL;
}

/* Our SDP for call c (direction dir), at a new origin version. */
static void phone_sdp(struct phone_call *c, const char *dir, char *out, size_t cap)
{
    snprintf(out, cap,
             "v=0\r\no=phone %d %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n",
             1000 + c->n, ++c->sdp_version, 40000 + 2 * c->n, dir);
}

/* "user/sess/version" of an SDP's origin line ("-" when there is none). */
static void phone_origin(const sip_t *sip, char *out, size_t cap)
{
    const char *p = sip && sip->sip_payload ? sip->sip_payload->pl_data : NULL;
    size_t len = p ? sip->sip_payload->pl_len : 0;
    char user[64], sess[32], ver[32];
    const char *o = NULL;

    for (size_t i = 0; p && i + 2 < len; i++)
        if ((i == 0 || p[i - 1] == '\n') && p[i] == 'o' && p[i + 1] == '=') {
            o = p + i + 2;
            break;
        }
    if (!o || sscanf(o, "%63s %31s %31s", user, sess, ver) != 3) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%s/%s/%s", user, sess, ver);
}

static bool phone_sdp_holds(const sip_t *sip)
{
    const char *p = sip && sip->sip_payload ? sip->sip_payload->pl_data : NULL;
    size_t len = p ? sip->sip_payload->pl_len : 0;

    return p && (memmem(p, len, "a=sendonly", 10) || memmem(p, len, "a=inactive", 10));
}

/* Remembers the tags of a dialog: a UAC's from its 2xx (From = ours, To = theirs), a UAS's
 * remote tag from the INVITE (its own to-tag NUA makes up and does not hand out). */
static void phone_tags(struct phone_call *c, const sip_t *sip)
{
    const sip_from_t *local = c->incoming ? NULL : sip->sip_from;
    const sip_to_t *remote = c->incoming ? sip->sip_from : sip->sip_to;

    if (local && local->a_tag)
        snprintf(c->local_tag, sizeof(c->local_tag), "%s", local->a_tag);
    if (remote && remote->a_tag)
        snprintf(c->remote_tag, sizeof(c->remote_tag), "%s", remote->a_tag);
}

/* Percent-escapes s for a URI header value (RFC 3261 hnv-unreserved kept minimal). */
static void phone_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;

    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;

        if (isalnum(ch) || strchr("-_.!~*'()", ch))
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

/* The digest answer to a 401/407 of sip with our credentials: true when sent. */
static bool phone_authenticate(struct phone *ph, nua_handle_t *nh, int status, const sip_t *sip,
                               bool *tried)
{
    const msg_auth_t *au = status == 407 ? sip->sip_proxy_authenticate : sip->sip_www_authenticate;
    const char *realm = au ? msg_params_find(au->au_params, "realm=") : NULL;
    char cred[PHONE_STR];

    if (*tried || !realm || !ph->user[0])
        return false;
    *tried = true;
    snprintf(cred, sizeof(cred), "%s:%s:%s:%s", au->au_scheme, realm, ph->user, ph->password);
    nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
    return true;
}

/* ---- commands --------------------------------------------------------------------------- */

static void cmd_register(struct phone *ph, char **arg, int n)
{
    const char *expires = n > 5 ? arg[5] : "300";

    if (n < 5) {
        phone_say("error usage: register <aor> <user> <password> <registrar> [expires]");
        return;
    }
    snprintf(ph->aor, sizeof(ph->aor), "%s", arg[1]);
    snprintf(ph->user, sizeof(ph->user), "%s", arg[2]);
    snprintf(ph->password, sizeof(ph->password), "%s", arg[3]);
    nua_set_params(ph->nua, NUTAG_PROXY(arg[4]), TAG_END());
    if (ph->reg)
        nua_handle_destroy(ph->reg);
    ph->reg_auth_tried = false;
    ph->reg =
        nua_handle(ph->nua, NULL, SIPTAG_TO_STR(ph->aor), SIPTAG_FROM_STR(ph->aor), TAG_END());
    if (!ph->reg) {
        phone_say("error cannot make a handle");
        return;
    }
    nua_register(ph->reg, NUTAG_REGISTRAR(arg[4]), SIPTAG_EXPIRES_STR(expires),
                 NUTAG_M_USERNAME(ph->user), TAG_END());
}

static void cmd_invite(struct phone *ph, char **arg, int n)
{
    struct phone_call *c;
    nua_handle_t *nh;
    char sdp[512];

    if (n < 2) {
        phone_say("error usage: invite <uri>");
        return;
    }
    nh = nua_handle(ph->nua, NULL, NUTAG_URL(arg[1]), SIPTAG_TO_STR(arg[1]),
                    TAG_IF(ph->aor[0], SIPTAG_FROM_STR(ph->aor)), TAG_END());
    c = nh ? phone_call_new(ph, nh) : NULL;
    if (!c) {
        if (nh)
            nua_handle_destroy(nh);
        phone_say("error too many calls");
        return;
    }
    snprintf(c->remote_uri, sizeof(c->remote_uri), "%s", arg[1]);
    phone_sdp(c, "sendrecv", sdp, sizeof(sdp));
    phone_say("event calling call=%d uri=%s", c->n, arg[1]);
    nua_invite(nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp), TAG_END());
}

static void phone_answer(struct phone_call *c)
{
    char sdp[512];

    phone_sdp(c, "sendrecv", sdp, sizeof(sdp));
    nua_respond(c->nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                SIPTAG_PAYLOAD_STR(sdp), TAG_END());
}

static void cmd_reinvite(struct phone *ph, char **arg, const char *dir)
{
    struct phone_call *c = phone_call_get(ph, arg[1]);
    char sdp[512];

    if (!c)
        return;
    phone_sdp(c, dir, sdp, sizeof(sdp));
    nua_invite(c->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp),
               TAG_END());
}

static void cmd_refer(struct phone *ph, char **arg, int n, bool replaces)
{
    struct phone_call *c = phone_call_get(ph, n > 1 ? arg[1] : NULL), *t = NULL;
    char refer_to[6 * PHONE_STR], rep[3 * PHONE_STR], esc[4 * PHONE_STR];

    if (!c || n < 3) {
        phone_say("error usage: refer <call> <uri> | refer-replaces <call> <target call>");
        return;
    }
    if (!replaces) {
        snprintf(refer_to, sizeof(refer_to), "<%s>", arg[2]);
    } else {
        t = phone_call_get(ph, arg[2]);
        if (!t)
            return;
        /* RFC 3891: the dialog as its other end (the transfer target) sees it */
        snprintf(rep, sizeof(rep), "%s;to-tag=%s;from-tag=%s", t->call_id, t->remote_tag,
                 t->local_tag);
        phone_escape(rep, esc, sizeof(esc));
        snprintf(refer_to, sizeof(refer_to), "<%s?Replaces=%s>", t->remote_uri, esc);
    }
    nua_refer(c->nh, SIPTAG_REFER_TO_STR(refer_to), TAG_END());
}

static void cmd_bye(struct phone *ph, char **arg)
{
    struct phone_call *c = phone_call_get(ph, arg[1]);

    if (!c)
        return;
    if (c->answered)
        nua_bye(c->nh, TAG_END());
    else if (c->incoming)
        nua_respond(c->nh, SIP_480_TEMPORARILY_UNAVAILABLE, TAG_END());
    else
        nua_cancel(c->nh, TAG_END());
}

static void cmd_quit(struct phone *ph)
{
    ph->quitting = true;
    if (ph->reg && nua_handle_has_registrations(ph->reg)) {
        nua_unregister(ph->reg, TAG_END());
        return; /* shut down once it is answered */
    }
    nua_shutdown(ph->nua);
}

static void phone_command(struct phone *ph, char *line)
{
    char *arg[8], *save = NULL;
    int n = 0;

    for (char *w = strtok_r(line, " \t\r", &save); w && n < 8; w = strtok_r(NULL, " \t\r", &save))
        arg[n++] = w;
    if (n == 0)
        return;
    if (strcmp(arg[0], "register") == 0)
        cmd_register(ph, arg, n);
    else if (strcmp(arg[0], "unregister") == 0 && ph->reg)
        nua_unregister(ph->reg, TAG_END());
    else if (strcmp(arg[0], "invite") == 0)
        cmd_invite(ph, arg, n);
    else if (strcmp(arg[0], "autoanswer") == 0 && n > 1)
        ph->autoanswer = atoi(arg[1]);
    else if (strcmp(arg[0], "answer") == 0 && n > 1) {
        struct phone_call *c = phone_call_get(ph, arg[1]);
        if (c)
            phone_answer(c);
    } else if (strcmp(arg[0], "hold") == 0 && n > 1)
        cmd_reinvite(ph, arg, "sendonly");
    else if (strcmp(arg[0], "resume") == 0 && n > 1)
        cmd_reinvite(ph, arg, "sendrecv");
    else if (strcmp(arg[0], "refer") == 0)
        cmd_refer(ph, arg, n, false);
    else if (strcmp(arg[0], "refer-replaces") == 0)
        cmd_refer(ph, arg, n, true);
    else if (strcmp(arg[0], "bye") == 0 && n > 1)
        cmd_bye(ph, arg);
    else if (strcmp(arg[0], "quit") == 0)
        cmd_quit(ph);
    else
        phone_say("error unknown or incomplete command '%s'", arg[0]);
}

/* stdin is readable: runs every complete line; EOF quits. */
static int phone_stdin(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    struct phone *ph = arg;
    ssize_t got;
    char *nl;

    (void)magic;
    (void)w;
    got = read(STDIN_FILENO, ph->inbuf + ph->inlen, sizeof(ph->inbuf) - 1 - ph->inlen);
    if (got <= 0) {
        if (got == 0 || errno != EAGAIN) {
            su_root_deregister(ph->root, ph->stdin_index);
            ph->stdin_index = -1;
            if (!ph->quitting)
                cmd_quit(ph);
        }
        return 0;
    }
    ph->inlen += (size_t)got;
    ph->inbuf[ph->inlen] = '\0';
    while ((nl = strchr(ph->inbuf, '\n')) != NULL) {
        size_t used = (size_t)(nl - ph->inbuf) + 1;

        *nl = '\0';
        phone_command(ph, ph->inbuf);
        memmove(ph->inbuf, ph->inbuf + used, ph->inlen - used + 1);
        ph->inlen -= used;
    }
    if (ph->inlen == sizeof(ph->inbuf) - 1)
        ph->inlen = 0; /* an endless line: dropped */
    return 0;
}

/* ---- events ----------------------------------------------------------------------------- */

static void on_incoming(struct phone *ph, nua_handle_t *nh, const sip_t *sip)
{
    struct phone_call *c = phone_call_new(ph, nh);
    char origin[128];

    if (!c) {
        nua_respond(nh, SIP_486_BUSY_HERE, TAG_END());
        nua_handle_destroy(nh);
        return;
    }
    c->incoming = true;
    snprintf(c->remote_uri, sizeof(c->remote_uri), URL_PRINT_FORMAT,
             URL_PRINT_ARGS(sip->sip_from->a_url));
    snprintf(c->call_id, sizeof(c->call_id), "%s", sip->sip_call_id->i_id);
    phone_tags(c, sip);
    phone_origin(sip, origin, sizeof(origin));
    phone_say("event incoming call=%d from=%s to=" URL_PRINT_FORMAT " call_id=%s origin=%s", c->n,
              c->remote_uri, URL_PRINT_ARGS(sip->sip_to->a_url), c->call_id, origin);
    if (ph->autoanswer == 200 || ph->autoanswer == 180)
        nua_respond(nh, SIP_180_RINGING, TAG_END());
    if (ph->autoanswer == 200)
        phone_answer(c);
    else if (ph->autoanswer >= 300)
        nua_respond(nh, ph->autoanswer, sip_status_phrase(ph->autoanswer), TAG_END());
}

static void on_reinvite(struct phone_call *c, const sip_t *sip)
{
    char origin[128];
    bool hold = phone_sdp_holds(sip);

    phone_origin(sip, origin, sizeof(origin));
    phone_say("event reinvite call=%d origin=%s hold=%d", c->n, origin, hold);
    if (sip && sip->sip_payload) {
        char sdp[512];
        phone_sdp(c, hold ? "recvonly" : "sendrecv", sdp, sizeof(sdp));
        nua_respond(c->nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                    SIPTAG_PAYLOAD_STR(sdp), TAG_END());
    } else {
        phone_answer(c);
    }
}

static void on_invite_answer(struct phone *ph, struct phone_call *c, int status, const sip_t *sip)
{
    char origin[128];

    if (c->answered) {
        if (status >= 200)
            phone_say("event reinvite_done call=%d status=%d", c->n, status);
        return;
    }
    if ((status == 401 || status == 407) &&
        phone_authenticate(ph, c->nh, status, sip, &c->auth_tried))
        return;
    if (status < 200) {
        if (status > 100)
            phone_say("event progress call=%d status=%d", c->n, status);
        return;
    }
    if (status >= 300) {
        phone_say("event failed call=%d status=%d", c->n, status);
        return;
    }
    c->answered = true;
    snprintf(c->call_id, sizeof(c->call_id), "%s",
             sip && sip->sip_call_id ? sip->sip_call_id->i_id : "");
    if (sip)
        phone_tags(c, sip);
    phone_origin(sip, origin, sizeof(origin));
    phone_say("event answered call=%d call_id=%s local_tag=%s remote_tag=%s origin=%s", c->n,
              c->call_id, c->local_tag, c->remote_tag, origin);
}

static void on_notify(struct phone_call *c, const sip_t *sip)
{
    const char *body = sip && sip->sip_payload ? sip->sip_payload->pl_data : NULL;
    int frag = 0;

    if (body && sip->sip_payload->pl_len > 8 && strncmp(body, "SIP/2.0 ", 8) == 0)
        frag = atoi(body + 8);
    phone_say("event notify call=%d sipfrag=%d state=%s", c->n, frag,
              sip && sip->sip_subscription_state ? sip->sip_subscription_state->ss_substate : "-");
}

static void on_state(struct phone *ph, struct phone_call *c, tagi_t tags[])
{
    int state = nua_callstate_init;

    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    if (state == nua_callstate_ready && c->incoming && !c->answered) {
        c->answered = true;
        phone_say("event answered call=%d call_id=%s local_tag=%s remote_tag=%s origin=-", c->n,
                  c->call_id, c->local_tag, c->remote_tag);
    }
    if (state != nua_callstate_terminated)
        return;
    if (!c->ended)
        phone_say("event ended call=%d by=local", c->n);
    c->ended = true;
    nua_handle_bind(c->nh, NULL);
    nua_handle_destroy(c->nh);
    c->nh = NULL;
    (void)ph;
}

static void on_register(struct phone *ph, nua_event_t event, int status, const sip_t *sip)
{
    if ((status == 401 || status == 407) &&
        phone_authenticate(ph, ph->reg, status, sip, &ph->reg_auth_tried))
        return;
    if (status < 200)
        return;
    ph->reg_auth_tried = false;
    if (event == nua_r_unregister) {
        phone_say("event unregistered status=%d", status);
        if (ph->quitting)
            nua_shutdown(ph->nua);
        return;
    }
    phone_say(status < 300 ? "event registered status=%d" : "event register_failed status=%d",
              status);
}

static void phone_event(nua_event_t event, int status, char const *phrase, nua_t *nua,
                        nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic,
                        sip_t const *sip, tagi_t tags[])
{
    struct phone *ph = magic;
    struct phone_call *c = hmagic;

    (void)phrase;
    if (event == nua_r_shutdown) {
        if (status >= 200)
            su_root_break(ph->root);
        return;
    }
    if (event == nua_r_register || event == nua_r_unregister) {
        on_register(ph, event, status, sip);
        return;
    }
    if (!c) {
        if (event == nua_i_invite) {
            on_incoming(ph, nh, sip);
        } else if (event == nua_i_message || event == nua_i_refer || event == nua_i_notify ||
                   event == nua_i_subscribe || event == nua_i_info || event == nua_i_method ||
                   event == nua_i_publish) { /* out of dialog: not a phone's business here */
            nua_respond(nh, SIP_501_NOT_IMPLEMENTED, NUTAG_WITH_THIS(nua), TAG_END());
            nua_handle_destroy(nh);
        } else if (event == nua_i_options) {
            nua_handle_destroy(nh); /* NUA answered it */
        }
        return;
    }
    switch (event) {
    case nua_i_invite:
        on_reinvite(c, sip);
        break;
    case nua_r_invite:
        on_invite_answer(ph, c, status, sip);
        break;
    case nua_r_refer:
        if (status >= 200)
            phone_say("event refer_sent call=%d status=%d", c->n, status);
        break;
    case nua_i_notify:
        on_notify(c, sip);
        break;
    case nua_i_bye:
        c->ended = true;
        phone_say("event ended call=%d by=remote", c->n);
        break;
    case nua_i_cancel:
        c->ended = true;
        phone_say("event ended call=%d by=remote", c->n);
        break;
    case nua_i_state:
        on_state(ph, c, tags);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    struct phone ph = {.autoanswer = 200, .stdin_index = -1};
    su_wait_t w;
    int rc = EXIT_FAILURE;

    if (argc != 2) {
        fprintf(stderr, "usage: sip_phone BIND_URL (e.g. sip:127.0.0.1:5099)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (su_init() != 0)
        return EXIT_FAILURE;
    ph.root = su_root_create(&ph);
    if (!ph.root)
        goto out_init;
    ph.nua = nua_create(ph.root, phone_event, &ph, NUTAG_URL(argv[1]), NUTAG_MEDIA_ENABLE(0),
                        NUTAG_USER_AGENT("cc-test-phone"), NUTAG_ENABLEMESSAGE(0), TAG_END());
    if (!ph.nua) {
        fprintf(stderr, "sip_phone: cannot bind '%s'\n", argv[1]);
        goto out_root;
    }
    if (su_wait_create(&w, STDIN_FILENO, SU_WAIT_IN) != 0)
        goto out_nua;
    ph.stdin_index = su_root_register(ph.root, &w, phone_stdin, &ph, 0);
    if (ph.stdin_index < 0)
        goto out_nua;
    phone_say("ready bind=%s", argv[1]);
    su_root_run(ph.root);
    rc = EXIT_SUCCESS;
out_nua:
    if (ph.stdin_index >= 0)
        su_root_deregister(ph.root, ph.stdin_index);
    for (int i = 0; i < PHONE_CALLS; i++)
        if (ph.calls[i].nh)
            nua_handle_destroy(ph.calls[i].nh);
    if (ph.reg)
        nua_handle_destroy(ph.reg);
    nua_destroy(ph.nua);
out_root:
    su_root_destroy(ph.root);
out_init:
    su_deinit();
    return rc;
}
