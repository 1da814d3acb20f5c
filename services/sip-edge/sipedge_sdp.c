/* sipedge_sdp: SDP pass-through helpers (see sipedge_sdp.h). */
#include "sipedge_sdp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sipedge_sdp_of(const sip_t *sip)
{
    char *s;

    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data || !sip->sip_payload->pl_len)
        return NULL;
    s = malloc(sip->sip_payload->pl_len + 1);
    if (s) {
        memcpy(s, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
        s[sip->sip_payload->pl_len] = '\0';
    }
    return s;
}

static const char *sdp_next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : NULL;
}

static bool sdp_line_is(const char *p, const char *prefix)
{
    return strncmp(p, prefix, strlen(prefix)) == 0;
}

static bool sdp_line_is_direction(const char *p)
{
    return sdp_line_is(p, "a=sendrecv") || sdp_line_is(p, "a=sendonly") ||
           sdp_line_is(p, "a=recvonly") || sdp_line_is(p, "a=inactive");
}

bool sipedge_sdp_is_hold(const char *sdp)
{
    for (const char *p = sdp; p && *p; p = sdp_next_line(p))
        if (sdp_line_is(p, "a=sendonly") || sdp_line_is(p, "a=inactive") ||
            sdp_line_is(p, "c=IN IP4 0.0.0.0"))
            return true;
    return false;
}

/* Remembers the origin line of the first SDP sent to a leg. */
static void sdp_origin_learn(struct sipedge_sdp_out *o, const char *sdp)
{
    const char *p, *f2, *f3, *end;

    for (p = sdp; p && *p && !sdp_line_is(p, "o="); p = sdp_next_line(p))
        ;
    if (!p || !*p || o->o_prefix)
        return;
    end = p + strcspn(p, "\r\n");
    f2 = memchr(p, ' ', (size_t)(end - p));                       /* before sess-id */
    f2 = f2 ? memchr(f2 + 1, ' ', (size_t)(end - f2 - 1)) : NULL; /* before sess-version */
    f3 = f2 ? memchr(f2 + 1, ' ', (size_t)(end - f2 - 1)) : NULL; /* after it */
    if (!f3)
        return;
    o->o_prefix = strndup(p, (size_t)(f2 + 1 - p));
    o->o_suffix = strndup(f3, (size_t)(end - f3));
    o->o_version = strtoll(f2 + 1, NULL, 10);
}

static char *sdp_rewrite(struct sipedge_sdp_out *o, const char *sdp, const char *dir)
{
    const char *eol = strstr(sdp ? sdp : "", "\r\n") ? "\r\n" : "\n";
    bool first = !o->o_prefix, dir_done = !dir;
    size_t cap, n = 0;
    char *out;

    if (!sdp)
        return NULL;
    sdp_origin_learn(o, sdp);
    if (first && !dir)
        return strdup(sdp);
    cap = strlen(sdp) + (o->o_prefix ? strlen(o->o_prefix) + strlen(o->o_suffix) : 0) + 64;
    out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = sdp; p && *p; p = sdp_next_line(p)) {
        size_t len = strcspn(p, "\n");
        if (len && p[len - 1] == '\r')
            len--;
        if (!dir_done && sdp_line_is(p, "m=")) {
            n += (size_t)snprintf(out + n, cap - n, "a=%s%s", dir, eol);
            dir_done = true;
        }
        if (dir && sdp_line_is_direction(p))
            continue;
        if (sdp_line_is(p, "o=") && o->o_prefix && !first)
            n += (size_t)snprintf(out + n, cap - n, "%s%lld%s%s", o->o_prefix, ++o->o_version,
                                  o->o_suffix, eol);
        else
            n += (size_t)snprintf(out + n, cap - n, "%.*s%s", (int)len, p, eol);
    }
    if (!dir_done)
        snprintf(out + n, cap - n, "a=%s%s", dir, eol);
    return out;
}

char *sipedge_sdp_for_leg(struct sipedge_sdp_out *o, const char *sdp, const char *dir)
{
    char *out = sdp_rewrite(o, sdp, dir);

    free(o->sent);
    o->sent = out ? strdup(out) : NULL;
    return out;
}

char *sipedge_sdp_placeholder(const char *addr, unsigned long long sess_id)
{
    const char *ipv = strchr(addr, ':') ? "IP6" : "IP4";
    char *out = NULL;

    if (asprintf(&out,
                 "v=0\r\no=cc-sip-edge %llu 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n"
                 "m=audio 9 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
                 "a=sendrecv\r\n",
                 sess_id, ipv, addr, ipv, addr) < 0)
        return NULL;
    return out;
}

void sipedge_sdp_out_clear(struct sipedge_sdp_out *o)
{
    free(o->sent);
    free(o->o_prefix);
    free(o->o_suffix);
    *o = (struct sipedge_sdp_out){0};
}
