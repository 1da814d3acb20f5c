/*
 * sofia_uas: the reference for `make bench-sip` -- a bare Sofia-SIP NUA user agent server that
 * answers every INVITE with 200 OK and a fixed SDP, and lets NUA handle ACK and BYE. No routing,
 * no bus, no database: the ceiling one Sofia root reaches on this machine, against which
 * sip-edge (a B2BUA doing twice the SIP work per call plus routing) is compared.
 *
 * Usage: sofia_uas <port>     listens on UDP 127.0.0.1:<port>; prints "sofia_uas: ready" on
 *                             stdout, runs until SIGTERM/SIGINT, then prints the calls answered.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>

#define UAS_UDP_BUFFER_BYTES (4 * 1024 * 1024) /* as cc-sip-edge's */

static const char uas_sdp[] = "v=0\r\n"
                              "o=uas 1 1 IN IP4 127.0.0.1\r\n"
                              "s=-\r\n"
                              "c=IN IP4 127.0.0.1\r\n"
                              "t=0 0\r\n"
                              "m=audio 7000 RTP/AVP 0\r\n"
                              "a=rtpmap:0 PCMU/8000\r\n";

struct uas {
    su_root_t *root;
    nua_t *nua;
    unsigned long answered;
    int shutting_down;
};

static void uas_event(nua_event_t event, int status, char const *phrase, nua_t *nua,
                      nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic, sip_t const *sip,
                      tagi_t tags[])
{
    struct uas *u = (struct uas *)magic;
    int state = nua_callstate_init;

    (void)phrase, (void)nua, (void)hmagic, (void)sip;
    switch (event) {
    case nua_i_invite:
        nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                    SIPTAG_PAYLOAD_STR(uas_sdp), TAG_END());
        u->answered++;
        break;
    case nua_i_state:
        tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
        if (state == nua_callstate_terminated)
            nua_handle_destroy(nh);
        break;
    case nua_r_shutdown:
        if (status >= 200)
            su_root_break(u->root);
        break;
    default:
        break;
    }
}

/* SIGTERM/SIGINT arrive on a signalfd registered in the root: shut NUA down from its thread. */
static int uas_signal(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    struct uas *u = (struct uas *)arg;
    struct signalfd_siginfo si;

    (void)magic;
    if (read(w->fd, &si, sizeof(si)) > 0 && !u->shutting_down) {
        u->shutting_down = 1;
        nua_shutdown(u->nua);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct uas u = {0};
    char url[64];
    sigset_t set;
    su_wait_t w;
    int sfd, wait_index, rc = EXIT_FAILURE;

    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: sofia_uas <port>\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    snprintf(url, sizeof(url), "sip:127.0.0.1:%d;transport=udp", atoi(argv[1]));
    if (sfd < 0 || su_init() != 0)
        return EXIT_FAILURE;
    u.root = su_root_create(&u);
    if (!u.root)
        goto out_init;
    su_root_threading(u.root, 0); /* as cc-sip-edge: NUA's stack in this thread */
    /* the UDP buffers cc-sip-edge sets (SIP_UDP_BUFFER_BYTES): with the kernel's default (~200 kB)
     * a burst arriving while this thread is descheduled is dropped and the step fails on sipp's
     * retransmissions (UdpRcvbufErrors) -- a limit of the socket, not of the UAS */
    u.nua = nua_create(u.root, uas_event, (nua_magic_t *)&u, NUTAG_URL(url), NUTAG_MEDIA_ENABLE(0),
                       TPTAG_UDP_RMEM(UAS_UDP_BUFFER_BYTES), TPTAG_UDP_WMEM(UAS_UDP_BUFFER_BYTES),
                       TAG_END());
    if (!u.nua) {
        fprintf(stderr, "sofia_uas: cannot listen on %s\n", url);
        goto out_root;
    }
    su_wait_create(&w, sfd, SU_WAIT_IN);
    wait_index = su_root_register(u.root, &w, uas_signal, (su_wakeup_arg_t *)&u, 0);
    printf("sofia_uas: ready on %s\n", url);
    fflush(stdout);
    su_root_run(u.root);
    printf("sofia_uas: answered %lu calls\n", u.answered);
    nua_destroy(u.nua);
    su_root_deregister(u.root, wait_index);
    rc = EXIT_SUCCESS;
out_root:
    su_root_destroy(u.root);
out_init:
    su_deinit();
    close(sfd);
    return rc;
}
