/*
 * sipedge_sdp: the little SDP work of a signalling-only B2BUA -- SDP is passed through between
 * the legs; only the origin line and the direction attributes are rewritten.
 *
 * Each leg keeps a struct sipedge_sdp_out (what was sent to it): every SDP sent to a leg after
 * the first keeps the origin line (user, session id, address) that leg first saw, with an
 * increasing version (RFC 3264 section 8), so a leg never sees the other side's origin change.
 *
 * Pure string work, no I/O; thread-safety: a sipedge_sdp_out belongs to one thread.
 */
#ifndef SIPEDGE_SDP_H
#define SIPEDGE_SDP_H

#include <stdbool.h>

#include <sofia-sip/sip.h>

/* What was sent to one leg (every pointer malloc'd or NULL). */
struct sipedge_sdp_out {
    char *sent;          /* the last SDP sent to the leg */
    char *o_prefix;      /* "o=<user> <sess-id> " of the first SDP sent to it */
    char *o_suffix;      /* " <nettype> <addrtype> <address>" of it */
    long long o_version; /* the last sess-version sent to it */
};

/* The message body of sip as a NUL-terminated string (malloc'd), or NULL when it has none or on
 * ENOMEM. */
char *sipedge_sdp_of(const sip_t *sip);
/* True when an offer puts its receiver on hold: a=sendonly or a=inactive (session or media
 * level), or a connection address 0.0.0.0 (RFC 2543 style). */
bool sipedge_sdp_is_hold(const char *sdp);
/* The SDP to send to a leg (malloc'd, and remembered in out->sent): sdp with the origin line
 * the leg first saw at a new version and, with dir ("sendonly" ...), every direction attribute
 * replaced by one session-level a=<dir>. The first SDP sent to a leg goes out unchanged. NULL
 * when sdp is NULL or on ENOMEM. */
char *sipedge_sdp_for_leg(struct sipedge_sdp_out *out, const char *sdp, const char *dir);
/* A minimal sendrecv offer (malloc'd) of a party without media yet: session id sess_id,
 * address addr, audio PCMU/PCMA on the discard port 9 (RFC 3264 allows any port; nothing is
 * sent to it before the real SDP replaces it). NULL on ENOMEM. */
char *sipedge_sdp_placeholder(const char *addr, unsigned long long sess_id);
/* Frees what out holds and zeroes it. */
void sipedge_sdp_out_clear(struct sipedge_sdp_out *out);

#endif
