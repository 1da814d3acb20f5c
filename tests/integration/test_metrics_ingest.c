/*
 * Integration tests of the metrics-aggregator's ingest (issue 5, correctness): the real
 * cc-metrics-aggregator binary on the local stack, hand-made events produced with the real
 * producer onto the dev broker, and every figure of a fixed scenario asserted exactly -- through
 * the service's own REST API, as a manager sees them: GET /v1/metrics/intervals (counts, KPIs,
 * codes, agent-state time), /v1/metrics/live, /v1/metrics/fcr and /v1/metrics/outbound. The
 * figures are read in one place (mi_report, mi_live ...); every KPI is asserted as the service
 * rounds it (ratios half up to 4 decimals, times to whole ms), with the hand computation next to
 * the assertion.
 *
 * THE SCENARIO (times in seconds after B, a 15-minute UTC bucket start about 3 h ago; buckets
 * b0 = [0,900), b1 = [900,1800), b2 = [1800,2700), b3 = [2700,3600), b4 = [3600,4500)).
 * Queues: sales (voice, SL T = 30 s: its queued events carry sl_threshold_s 30), support
 * (voice, T = default 20 s), chat (chat, T = 20 s), mail (email, T = 3600 s), outq (outbound
 * voice of campaign camp1, T = 20 s). Short abandon: voice < 10 s, chat/email < 5 s (strict).
 *
 * id  created queue cust  answered (time agent wait)  abandoned    ended talk/hold/duration
 * S1    0  sales   c1   10 a1 10000 (SL)             -            310 290000/10000/310000
 *          dispo 330 sale conv res [pricing]; wrap-up 340 30000; survey 400 csat 5 nps 10 (a1)
 * S2   60  sales   c2   90 a2 30000 (= T: SL)        -            390 300000/0/330000
 *          dispo 400 no_sale res [pricing,billing]; wrap-up 410 20000; survey 500 csat 3 nps 6
 * S3  120  sales   c3  151 a1 31000 (not SL)         -           1000 849000/0/880000 (b1)
 *          dispo 1010 sale conv; wrap-up 1030 30000 (b1)
 * S4  180  sales   c4   -                          185 5000 short     185
 * S5  240  sales        -                          265 25000 (SL)     265
 * S6  300  sales        -                          345 45000          345
 * S7  360  sales        -                          370 10000 (not short: strict; SL) 370
 * S8  420  sales   c3  440 a2 20000 (SL)             -            620 170000/10000/200000
 *          wrap-up 650 30000
 * S9 1600  sales (b1) 1605 a2 5000 (SL)             -           1905 300000/0/300000 (b2)
 *          wrap-up 1925 10000 (b2)
 * P1   30  support c5   50 a3 20000 (= T: SL)        -            350 280000/20000/320000
 *          dispo 370 info res [billing]; wrap-up 380 15000
 * P2   90  support     115 a3 25000 (not SL); 400 transferred a3/support -> queue sales, queued
 *          sales 400; 410 a1 10000 in sales (SL)  -            700 575000/0/610000 (a1, sales)
 *          wrap-up 720 20000
 * P3  150  support      -                          158 8000 short     158
 * P4  200  support      -                          230 30000 (not SL) 230
 * P5 1000  support c5 (b1) 1012 a3 12000 (SL)        -           1312 300000/0/312000
 *          wrap-up 1332 20000
 * P6  385  support c7  395 a3 10000 (SL)             -            695 300000/0/310000
 *          (parent C2)
 * P7 1300  support (b1) still waiting at the end
 * P8 1400  support (b1) 1500 a3 100000 (not SL)       -           1800 300000/0/400000 (b2)
 *          wrap-up 1830 10000 (b2)
 * C1   10  chat    c6   25 a4 15000 (SL)             -            610 585000/0/600000
 *          messages: in 12, out 40 (first response 30000), out 100; dispo 615 resolved res
 *          [shipping]; wrap-up 620 10000; survey 700 csat 4 (a4)
 * C2   70  chat    c7  100 a4 30000 (not SL)         -            400 300000/0/330000
 *          out 130 (first response 60000); 380 transferred a4/chat -> queue support with
 *          channel_change voice (escalation: P6); wrap-up 410 5000
 * C3  130  chat         -                          133 3000 short     133
 * C4  190  chat         -                          195 5000 (not short: strict; SL) 195
 * C5  250  chat         -                          290 40000 (not SL) 290
 * C6  310  chat    c6  330 a4 20000 (= T: SL); out 335 (first response 25000)
 *                                                  -            935 605000/0/625000 (b1)
 * C7 1500  chat (b1) still waiting at the end
 * E1   20  mail    c8 1220 a4 1200000 (SL, b1); out 1500 (first response 1480000, b1)
 *                                                  -           1600 380000/0/1580000 (b1)
 * E2   80  mail    c9 4080 a4 4000000 (not SL, b4); out 4100 (first response 4020000, b4)
 *                                                  -           4200 120000/0/4120000 (b4)
 * E3  140  mail         -                          143 3000 short     143
 * O1  500  outq camp1: customer 510; 511 a1 1000 (SL)           811 300000/0/311000
 *          dispo 820 sale conv; wrap-up 831 20000
 * O2  520  outq camp1: customer 530                532 2000 short  532 (a dialer abandon)
 * O3  540  outq camp1: customer 550                 -            600 no agent (dialer abandon)
 * O4  560  outq camp1: never connected              -            590 failed
 * 31 interactions (S 9, P 8, C 7, E 3, O 4), and for FCR four older ones, 10 and 9 days before
 * B (outside every range below but the FCR one):
 * F1 -864000 sales c10, answered by a2 after 20 s, ended; F2 -860400 sales c10 (F1's repeat),
 * answered, ended; F3 -777600 sales c11, answered, ended; F4 -777000 sales c12, abandoned.
 * Agents (cc.agents):
 * a1: logged_in -600 not_ready/login; 0 -> available (600000 not_ready, from reason login);
 *     1200 -> not_ready/break (1200000 available); 3600 -> available (2400000 not_ready, from
 *     reason break); 4500 logged_out (last_state available 900000)
 * a2: logged_in 0 available; 90 -> busy (90000 available); 390 -> wrap_up (300000 busy); 410 ->
 *     available (20000 wrap_up); 1000 -> reserved (590000 available); 1010 -> busy (10000)
 * a3: logged_in 20 not_ready/login
 *
 * HAND-COMPUTED COUNTS (sums over [b-2, b8), every bucket of the scenario, unless said)
 * sales: entered 9 (S1..S9; b0 8, b1 1). answered 6 = S1 S2 S3 S8 S9 + P2's second answer;
 *   in SL (wait <= 30000) 5 (all but S3's 31000); answer wait sum 10000+30000+31000+20000+5000+
 *   10000 = 106000. abandoned (not short) 3 = S5 S6 S7, in SL 2 (25000, 10000), wait sum 25000+
 *   45000+10000 = 80000; short 1 (S4). longest wait 45000 (S6). handled 6 = S1 S2 S3 S8 S9 P2
 *   (ended in sales after an agent answer), talk 290000+300000+849000+170000+300000+575000 =
 *   2484000, hold 10000+10000 = 20000; wrap-ups 6 = 30000+20000+30000+30000+10000+20000 = 140000;
 *   dispositions 3 (S1 S2 S3), conversions 2 (S1 S3), resolved 2 (S1 S2); csat 2 answers, sum
 *   5+3 = 8, satisfied 1 (5); nps 2 answers, promoters 1 (10), detractors 1 (6).
 *   By bucket: b0 entered 8, answered 5 (SL 4, waits 101000), handled 4 (S1 S2 S8 P2; talk
 *   290000+300000+170000+575000 = 1335000), wrap-ups 4 (100000); b1 entered 1, answered 1 (5000),
 *   handled 1 (S3, 849000), wrap-ups 1 (30000); b2 handled 1 (S9), wrap-ups 1 (10000).
 * support: entered 8 (P1..P8). answered 5 = P1 P2 P5 P6 P8, SL 3 (20000, 12000, 10000), waits
 *   20000+25000+12000+10000+100000 = 167000. abandoned 1 (P4 30000, not SL), short 1 (P3 8000).
 *   longest 100000 (P8). handled 4 = P1 P5 P6 P8, talk 280000+300000+300000+300000 = 1180000,
 *   hold 20000; wrap-ups 3 = 15000+20000+10000 = 45000; transfers 1 (P2 from a3), channel
 *   changes 0; dispositions 1 (P1), resolved 1.
 * chat: entered 7. answered 3 = C1 C2 C6, SL 2, waits 15000+30000+20000 = 65000. abandoned 2 =
 *   C4 (SL) C5, waits 45000; short 1 (C3). longest 40000. handled 3, talk 585000+300000+605000 =
 *   1490000, hold 0; resolution 3, 600000+330000+625000 = 1555000; first response 3, 30000+60000+
 *   25000 = 115000; wrap-ups 2 = 15000; transfers 1, channel changes 1 (C2 chat -> voice);
 *   dispositions 1, resolved 1; csat 1 answer, sum 4, satisfied 1.
 * mail: entered 3. answered 2 (SL 1: 1200000 <= 3600000), waits 5200000; short 1 (E3). longest
 *   4000000. handled 2, talk 500000; resolution 2, 1580000+4120000 = 5700000; first response 2,
 *   1480000+4020000 = 5500000. b4: E2 only.
 * outq / camp1: entered 4 = outbound attempts 4; outbound connects 3 (O1 O2 O3); answered 1 (O1,
 *   1000, SL); short 1 (O2's 2000); longest 1000; handled 1, talk 300000; wrap-up 1, 20000;
 *   dispositions 1, conversions 1; outbound abandoned 2 (O2, O3: connected, no agent answer).
 * tenant: entered 31; answered 17, SL 12, waits 5539000; abandoned 6, SL 3, waits 155000; short
 *   5; longest 4000000; handled 16, talk 5954000, hold 40000; wrap-ups 12, 220000; transfers 2,
 *   channel changes 1; dispositions 6, conversions 3, resolved 4; first response 5, 5615000;
 *   resolution 5, 7255000; csat 3, sum 12, satisfied 2; nps 2, promoters 1, detractors 1;
 *   outbound attempts 4, connects 3, abandoned 2.
 * tenant b0 (events timed before 900): entered 26; answered 12 (sales 5, support P1 P2 P6, chat
 *   C1 C2 C6, O1), SL 9, waits 101000+55000+65000+1000 = 222000; every abandon (6, SL 3, short 5);
 *   longest 45000; handled 9 (S1 S2 S8 P2 P1 P6 C1 C2 O1), talk 1335000+580000+885000+300000 =
 *   3100000, hold 40000; wrap-ups 8, 150000; transfers 2; dispositions 5 (all but S3),
 *   conversions 2, resolved 4; first response 3, 115000; resolution 2 (C1 C2), 930000; every
 *   survey; every outbound figure.
 * by agent (handled / talk): a1 4 (S1 S3 P2 O1) 2014000; a2 3 (S2 S8 S9) 770000; a3 4 1180000;
 *   a4 5 (C1 C2 C6 E1 E2) 585000+300000+605000+380000+120000 = 1990000. answered: a1 4, a2 3,
 *   a3 5, a4 5. a2 in b0: answered 2 (S2 30000, S8 20000; both SL), handled 2 (talk 300000+170000
 *   = 470000, hold 10000), wrap-ups 2 (20000+30000), disposition 1 (no_sale, resolved), survey 1
 *   (csat 3, nps 6).
 * codes: disposition sale 3 (S1 S3 O1), no_sale 1, info 1, resolved 1; contact_reason pricing 2
 *   (S1 S2), billing 2 (S2 P1), shipping 1 (C1).
 * agent states (ms): a1 b-1 not_ready/login 600000; b0 available 900000; b1 available 300000,
 *   not_ready/break 600000; b2 not_ready/break 900000; b3 not_ready/break 900000; b4 available
 *   900000. a2 b0 available 90000+490000 = 580000, busy 300000, wrap_up 20000; b1 available
 *   100000, reserved 10000. Over all agents: available 2100000+680000 = 2780000, reserved 10000,
 *   busy 300000, wrap_up 20000, not_ready login 600000, break 2400000 (logged in 6110000).
 * live: waiting 2 (P7 support since 1300, C7 chat since 1500); agents a1 logged_out, a2 busy
 *   since 1010 ({sales}), a3 not_ready/login since 20 ({support}).
 *
 * The KPIs (proto/openapi/metrics-aggregator.yaml) are computed by hand next to each assertion.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"
#include "itest_http.h"
#include "itest_metrics.h"
#include "metrics_retention.h"

static struct itest_metrics mi;

static void mi_init(void)
{
    itest_metrics_setup(&mi, "mi");
}

static void mi_fini(void)
{
    itest_metrics_teardown(&mi);
}

TestSuite(metrics_ingest, .init = mi_init, .fini = mi_fini, .timeout = 300);

/* ---- the scenario's events --------------------------------------------------------------- */

#define CR(ch, dir, q, extra)                                                                      \
    "{'channel':'" ch "','direction':'" dir "','queue_id':'" q "','from':'+4930111',"              \
    "'to':'+4930222','priority':0" extra "}"
#define QU(q, extra) "{'queue_id':'" q "','priority':0" extra "}"
#define ANS(a, q, w) "{'answered_by':'agent','agent_id':'" a "','queue_id':'" q "','wait_ms':" w "}"
#define ANS_CUSTOMER "{'answered_by':'customer','wait_ms':0}"
#define ABN(q, w)    "{'queue_id':'" q "','wait_ms':" w "}"
#define END(talk, hold, dur, extra)                                                                \
    "{'ended_by':'customer','talk_ms':" talk ",'hold_ms':" hold ",'duration_ms':" dur extra "}"
#define WRAP(a, ms)        "{'agent_id':'" a "','wrapup_ms':" ms "}"
#define DISPO(a, d, extra) "{'agent_id':'" a "','disposition':'" d "'" extra "}"
#define MSG_OUT(a, id)                                                                             \
    "{'message_id':'" id "','direction':'outbound','sender':'agent','agent_id':'" a "',"           \
    "'content_type':'text/plain'}"
#define MSG_IN(id)                                                                                 \
    "{'message_id':'" id "','direction':'inbound','sender':'customer','content_type':"             \
    "'text/plain'}"
#define SC(from, to, ms, extra)                                                                    \
    "{'from_state':'" from "','to_state':'" to "','duration_ms':" ms ",'changed_by':'agent'" extra \
    "}"
#define SL30               ",'sl_threshold_s':30"
#define VOICE_IN(q, extra) CR("voice", "inbound", q, extra)

struct mi_event {
    int at_s;
    char agent; /* 1: cc.agents, 0: cc.interactions */
    const char *type;
    const char *subject;
    const char *data;
};

/* The pairs of events most interactions have, in their order: created and queued at at_s;
 * abandoned after wait_ms and ended with it at at_s; answered by agent a at at_s after wait_ms
 * and ended at end_s with talk, hold and duration (ms). */
/* clang-format off */
#define ARRIVE(at_s, ix, created, queued)                                                          \
    {at_s, 0, "cc.interaction.created", ix, created},                                              \
    {at_s, 0, "cc.interaction.queued", ix, queued}
#define ABANDON(at_s, ix, q, wait_ms)                                                              \
    {at_s, 0, "cc.interaction.abandoned", ix, ABN(q, wait_ms)},                                    \
    {at_s, 0, "cc.interaction.ended", ix, END("0", "0", wait_ms, ",'reason':'abandoned'")}
#define TALK(at_s, end_s, ix, a, q, wait_ms, talk, hold, dur)                                      \
    {at_s, 0, "cc.interaction.answered", ix, ANS(a, q, wait_ms)},                                  \
    {end_s, 0, "cc.interaction.ended", ix,                                                         \
     END(talk, hold, dur, ",'agent_id':'" a "','queue_id':'" q "'")}
/* clang-format on */

/* In production order; each interaction's events in their time order. */
static const struct mi_event mi_scenario[] = {
    /* sales */
    ARRIVE(0, "S1", VOICE_IN("sales", ",'customer_id':'c1'"), QU("sales", SL30)),
    TALK(10, 310, "S1", "a1", "sales", "10000", "290000", "10000", "310000"),
    {330, 0, "cc.interaction.disposition_set", "S1",
     DISPO("a1", "sale", ",'is_conversion':true,'resolved':true,'contact_reasons':['pricing']")},
    {340, 0, "cc.interaction.wrapup_completed", "S1", WRAP("a1", "30000")},
    {400, 0, "cc.interaction.survey_completed", "S1", "{'csat':5,'nps':10,'agent_id':'a1'}"},
    ARRIVE(60, "S2", VOICE_IN("sales", ",'customer_id':'c2'"), QU("sales", SL30)),
    TALK(90, 390, "S2", "a2", "sales", "30000", "300000", "0", "330000"),
    {400, 0, "cc.interaction.disposition_set", "S2",
     DISPO("a2", "no_sale",
           ",'is_conversion':false,'resolved':true,'contact_reasons':['pricing','billing']")},
    {410, 0, "cc.interaction.wrapup_completed", "S2", WRAP("a2", "20000")},
    {500, 0, "cc.interaction.survey_completed", "S2", "{'csat':3,'nps':6,'agent_id':'a2'}"},
    ARRIVE(120, "S3", VOICE_IN("sales", ",'customer_id':'c3'"), QU("sales", SL30)),
    TALK(151, 1000, "S3", "a1", "sales", "31000", "849000", "0", "880000"),
    {1010, 0, "cc.interaction.disposition_set", "S3",
     DISPO("a1", "sale", ",'is_conversion':true,'resolved':false")},
    {1030, 0, "cc.interaction.wrapup_completed", "S3", WRAP("a1", "30000")},
    ARRIVE(180, "S4", VOICE_IN("sales", ",'customer_id':'c4'"), QU("sales", SL30)),
    ABANDON(185, "S4", "sales", "5000"),
    ARRIVE(240, "S5", VOICE_IN("sales", ""), QU("sales", SL30)),
    ABANDON(265, "S5", "sales", "25000"),
    ARRIVE(300, "S6", VOICE_IN("sales", ""), QU("sales", SL30)),
    ABANDON(345, "S6", "sales", "45000"),
    ARRIVE(360, "S7", VOICE_IN("sales", ""), QU("sales", SL30)),
    ABANDON(370, "S7", "sales", "10000"),
    ARRIVE(420, "S8", VOICE_IN("sales", ",'customer_id':'c3'"), QU("sales", SL30)),
    TALK(440, 620, "S8", "a2", "sales", "20000", "170000", "10000", "200000"),
    {650, 0, "cc.interaction.wrapup_completed", "S8", WRAP("a2", "30000")},
    ARRIVE(1600, "S9", VOICE_IN("sales", ""), QU("sales", SL30)),
    TALK(1605, 1905, "S9", "a2", "sales", "5000", "300000", "0", "300000"),
    {1925, 0, "cc.interaction.wrapup_completed", "S9", WRAP("a2", "10000")},
    /* support */
    ARRIVE(30, "P1", VOICE_IN("support", ",'customer_id':'c5'"), QU("support", "")),
    TALK(50, 350, "P1", "a3", "support", "20000", "280000", "20000", "320000"),
    {370, 0, "cc.interaction.disposition_set", "P1",
     DISPO("a3", "info", ",'resolved':true,'contact_reasons':['billing']")},
    {380, 0, "cc.interaction.wrapup_completed", "P1", WRAP("a3", "15000")},
    ARRIVE(90, "P2", VOICE_IN("support", ""), QU("support", "")),
    {115, 0, "cc.interaction.answered", "P2", ANS("a3", "support", "25000")},
    {400, 0, "cc.interaction.transferred", "P2",
     "{'transfer_type':'blind','target_type':'queue','target':'sales','from_agent_id':'a3',"
     "'from_queue_id':'support'}"},
    {400, 0, "cc.interaction.queued", "P2", QU("sales", SL30)},
    TALK(410, 700, "P2", "a1", "sales", "10000", "575000", "0", "610000"),
    {720, 0, "cc.interaction.wrapup_completed", "P2", WRAP("a1", "20000")},
    ARRIVE(150, "P3", VOICE_IN("support", ""), QU("support", "")),
    ABANDON(158, "P3", "support", "8000"),
    ARRIVE(200, "P4", VOICE_IN("support", ""), QU("support", "")),
    ABANDON(230, "P4", "support", "30000"),
    ARRIVE(1000, "P5", VOICE_IN("support", ",'customer_id':'c5'"), QU("support", "")),
    TALK(1012, 1312, "P5", "a3", "support", "12000", "300000", "0", "312000"),
    {1332, 0, "cc.interaction.wrapup_completed", "P5", WRAP("a3", "20000")},
    ARRIVE(385, "P6", VOICE_IN("support", ",'customer_id':'c7'"), QU("support", "")),
    TALK(395, 695, "P6", "a3", "support", "10000", "300000", "0", "310000"),
    ARRIVE(1300, "P7", VOICE_IN("support", ""), QU("support", "")),
    ARRIVE(1400, "P8", VOICE_IN("support", ""), QU("support", "")),
    TALK(1500, 1800, "P8", "a3", "support", "100000", "300000", "0", "400000"),
    {1830, 0, "cc.interaction.wrapup_completed", "P8", WRAP("a3", "10000")},
    /* chat */
    ARRIVE(10, "C1", CR("chat", "inbound", "chat", ",'customer_id':'c6'"), QU("chat", "")),
    {12, 0, "cc.interaction.message", "C1", MSG_IN("m1")},
    {25, 0, "cc.interaction.answered", "C1", ANS("a4", "chat", "15000")},
    {40, 0, "cc.interaction.message", "C1", MSG_OUT("a4", "m2")},
    {100, 0, "cc.interaction.message", "C1", MSG_OUT("a4", "m3")},
    {610, 0, "cc.interaction.ended", "C1",
     END("585000", "0", "600000", ",'agent_id':'a4','queue_id':'chat'")},
    {615, 0, "cc.interaction.disposition_set", "C1",
     DISPO("a4", "resolved", ",'resolved':true,'contact_reasons':['shipping']")},
    {620, 0, "cc.interaction.wrapup_completed", "C1", WRAP("a4", "10000")},
    {700, 0, "cc.interaction.survey_completed", "C1", "{'csat':4,'agent_id':'a4'}"},
    ARRIVE(70, "C2", CR("chat", "inbound", "chat", ",'customer_id':'c7'"), QU("chat", "")),
    {100, 0, "cc.interaction.answered", "C2", ANS("a4", "chat", "30000")},
    {130, 0, "cc.interaction.message", "C2", MSG_OUT("a4", "m4")},
    {380, 0, "cc.interaction.transferred", "C2",
     "{'transfer_type':'blind','target_type':'queue','target':'support','from_agent_id':'a4',"
     "'from_queue_id':'chat','channel_change':'voice'}"},
    {400, 0, "cc.interaction.ended", "C2",
     END("300000", "0", "330000", ",'agent_id':'a4','queue_id':'chat','reason':'transferred'")},
    {410, 0, "cc.interaction.wrapup_completed", "C2", WRAP("a4", "5000")},
    ARRIVE(130, "C3", CR("chat", "inbound", "chat", ""), QU("chat", "")),
    ABANDON(133, "C3", "chat", "3000"),
    ARRIVE(190, "C4", CR("chat", "inbound", "chat", ""), QU("chat", "")),
    ABANDON(195, "C4", "chat", "5000"),
    ARRIVE(250, "C5", CR("chat", "inbound", "chat", ""), QU("chat", "")),
    ABANDON(290, "C5", "chat", "40000"),
    ARRIVE(310, "C6", CR("chat", "inbound", "chat", ",'customer_id':'c6'"), QU("chat", "")),
    {330, 0, "cc.interaction.answered", "C6", ANS("a4", "chat", "20000")},
    {335, 0, "cc.interaction.message", "C6", MSG_OUT("a4", "m5")},
    {935, 0, "cc.interaction.ended", "C6",
     END("605000", "0", "625000", ",'agent_id':'a4','queue_id':'chat'")},
    ARRIVE(1500, "C7", CR("chat", "inbound", "chat", ""), QU("chat", "")),
    /* email */
    ARRIVE(20, "E1", CR("email", "inbound", "mail", ",'customer_id':'c8'"),
           QU("mail", ",'sl_threshold_s':3600")),
    {1220, 0, "cc.interaction.answered", "E1", ANS("a4", "mail", "1200000")},
    {1500, 0, "cc.interaction.message", "E1", MSG_OUT("a4", "m6")},
    {1600, 0, "cc.interaction.ended", "E1",
     END("380000", "0", "1580000", ",'agent_id':'a4','queue_id':'mail'")},
    ARRIVE(80, "E2", CR("email", "inbound", "mail", ",'customer_id':'c9'"),
           QU("mail", ",'sl_threshold_s':3600")),
    {4080, 0, "cc.interaction.answered", "E2", ANS("a4", "mail", "4000000")},
    {4100, 0, "cc.interaction.message", "E2", MSG_OUT("a4", "m7")},
    {4200, 0, "cc.interaction.ended", "E2",
     END("120000", "0", "4120000", ",'agent_id':'a4','queue_id':'mail'")},
    ARRIVE(140, "E3", CR("email", "inbound", "mail", ""), QU("mail", ",'sl_threshold_s':3600")),
    ABANDON(143, "E3", "mail", "3000"),
    /* outbound */
    {500, 0, "cc.interaction.created", "O1",
     CR("voice", "outbound", "outq", ",'campaign_id':'camp1'")},
    {510, 0, "cc.interaction.answered", "O1", ANS_CUSTOMER},
    TALK(511, 811, "O1", "a1", "outq", "1000", "300000", "0", "311000"),
    {820, 0, "cc.interaction.disposition_set", "O1", DISPO("a1", "sale", ",'is_conversion':true")},
    {831, 0, "cc.interaction.wrapup_completed", "O1", WRAP("a1", "20000")},
    {520, 0, "cc.interaction.created", "O2",
     CR("voice", "outbound", "outq", ",'campaign_id':'camp1'")},
    {530, 0, "cc.interaction.answered", "O2", ANS_CUSTOMER},
    {532, 0, "cc.interaction.abandoned", "O2", ABN("outq", "2000")},
    {532, 0, "cc.interaction.ended", "O2",
     END("0", "0", "12000", ",'queue_id':'outq','reason':'abandoned'")},
    {540, 0, "cc.interaction.created", "O3",
     CR("voice", "outbound", "outq", ",'campaign_id':'camp1'")},
    {550, 0, "cc.interaction.answered", "O3", ANS_CUSTOMER},
    {600, 0, "cc.interaction.ended", "O3", END("0", "0", "60000", ",'reason':'abandoned'")},
    {560, 0, "cc.interaction.created", "O4",
     CR("voice", "outbound", "outq", ",'campaign_id':'camp1'")},
    {590, 0, "cc.interaction.ended", "O4", END("0", "0", "30000", ",'reason':'failed'")},
    /* older contacts, for a first contact resolution whose 7 days have elapsed */
    ARRIVE(-864000, "F1", VOICE_IN("sales", ",'customer_id':'c10'"), QU("sales", SL30)),
    TALK(-863980, -863680, "F1", "a2", "sales", "20000", "280000", "0", "300000"),
    ARRIVE(-860400, "F2", VOICE_IN("sales", ",'customer_id':'c10'"), QU("sales", SL30)),
    TALK(-860390, -860100, "F2", "a2", "sales", "10000", "280000", "0", "290000"),
    ARRIVE(-777600, "F3", VOICE_IN("sales", ",'customer_id':'c11'"), QU("sales", SL30)),
    TALK(-777590, -777300, "F3", "a2", "sales", "10000", "280000", "0", "290000"),
    ARRIVE(-777000, "F4", VOICE_IN("sales", ",'customer_id':'c12'"), QU("sales", SL30)),
    ABANDON(-776970, "F4", "sales", "30000"),
    /* agents */
    {-600, 1, "cc.agent.logged_in", "a1",
     "{'capacity':{'voice':1},'queue_ids':['sales','outq'],'state':'not_ready','reason_code':"
     "'login'}"},
    {0, 1, "cc.agent.state_changed", "a1",
     SC("not_ready", "available", "600000", ",'from_reason_code':'login'")},
    {1200, 1, "cc.agent.state_changed", "a1",
     SC("available", "not_ready", "1200000", ",'reason_code':'break'")},
    {3600, 1, "cc.agent.state_changed", "a1",
     SC("not_ready", "available", "2400000", ",'from_reason_code':'break'")},
    {4500, 1, "cc.agent.logged_out", "a1",
     "{'logged_out_by':'agent','session_ms':5100000,'last_state':'available','last_state_ms':"
     "900000}"},
    {0, 1, "cc.agent.logged_in", "a2",
     "{'capacity':{'voice':1},'queue_ids':['sales'],'state':'available'}"},
    {90, 1, "cc.agent.state_changed", "a2", SC("available", "busy", "90000", "")},
    {390, 1, "cc.agent.state_changed", "a2", SC("busy", "wrap_up", "300000", "")},
    {410, 1, "cc.agent.state_changed", "a2", SC("wrap_up", "available", "20000", "")},
    {1000, 1, "cc.agent.state_changed", "a2", SC("available", "reserved", "590000", "")},
    {1010, 1, "cc.agent.state_changed", "a2", SC("reserved", "busy", "10000", "")},
    {20, 1, "cc.agent.logged_in", "a3",
     "{'capacity':{'voice':1},'queue_ids':['support'],'state':'not_ready','reason_code':"
     "'login'}"},
};
#define MI_NEVENTS ((int)(sizeof(mi_scenario) / sizeof(mi_scenario[0])))

static void mi_send_one(int i)
{
    const struct mi_event *e = &mi_scenario[i];

    itest_metrics_send(&mi, e->agent ? CC_TOPIC_AGENTS : CC_TOPIC_INTERACTIONS, e->type, e->subject,
                       (int64_t)e->at_s * 1000, e->data, i);
}

/* Sends events [from, to) of the scenario in table order. */
static void mi_send_range(int from, int to)
{
    for (int i = from; i < to; i++)
        mi_send_one(i);
}

/* The index of the scenario's event (type, subject, at_s); asserts it exists. */
static int mi_find(const char *type, const char *subject, int at_s)
{
    for (int i = 0; i < MI_NEVENTS; i++)
        if (mi_scenario[i].at_s == at_s && strcmp(mi_scenario[i].subject, subject) == 0 &&
            strcmp(mi_scenario[i].type, type) == 0)
            return i;
    cr_assert_fail("no scenario event %s %s at %d", type, subject, at_s);
    return -1;
}

/* ---- reading the figures: the service's REST API ------------------------------------------ */

#define MI_BUCKET_MS 900000LL
#define MI_FIRST_B   (-2) /* the scenario's range: [B + MI_FIRST_B buckets, B + MI_LAST_B ...) */
#define MI_LAST_B    8
#define MI_DAY_MS    86400000LL
#define MI_KPI_COUNT 17

static const char *const mi_counters[] = {
    "entered",
    "answered",
    "answered_in_sl",
    "answer_wait_ms_sum",
    "abandoned",
    "abandoned_in_sl",
    "abandoned_short",
    "abandon_wait_ms_sum",
    "max_wait_ms",
    "handled",
    "talk_ms_sum",
    "hold_ms_sum",
    "wrapup_count",
    "wrapup_ms_sum",
    "transfers",
    "channel_changes",
    "dispositions",
    "conversions",
    "resolved_marked",
    "first_response_count",
    "first_response_ms_sum",
    "resolution_count",
    "resolution_ms_sum",
    "csat_count",
    "csat_sum",
    "csat_satisfied",
    "nps_count",
    "nps_promoters",
    "nps_detractors",
    "outbound_attempts",
    "outbound_connects",
    "outbound_abandoned",
};
#define MI_NC ((int)(sizeof(mi_counters) / sizeof(mi_counters[0])))

/* Every member of a "kpis" object (proto/openapi/metrics-aggregator.yaml#/components/Kpis). */
static const char *const mi_kpis[MI_KPI_COUNT] = {
    "service_level",   "service_level_2",
    "asa_ms",          "aht_ms",
    "avg_talk_ms",     "avg_hold_ms",
    "avg_wrapup_ms",   "longest_wait_ms",
    "abandon_rate",    "first_response_ms",
    "resolution_ms",   "csat",
    "csat_avg",        "nps",
    "conversion_rate", "occupancy",
    "utilisation",
};

/* Which figures: filters ("" or NULL = any) and buckets [from_b, to_b) relative to B
 * (from_b == to_b: the whole scenario range). */
struct mi_filter {
    const char *queue, *agent, *channel, *campaign;
    int from_b, to_b;
};

/* GET path with the tenant's analyst token; asserts 200 and returns the JSON (new reference). */
static json_t *mi_get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *mi_get(const char *fmt, ...)
{
    struct itest_http_reply *r = calloc(1, sizeof(*r));
    char path[1024];
    va_list ap;
    json_t *doc;

    cr_assert_not_null(r);
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    itest_http_fetch(mi.port, "GET", path, ITEST_METRICS_TOKEN, NULL, NULL, r);
    cr_assert_eq(r->status, 200, "expected 200 from GET %s, got %d: %s", path, r->status, r->body);
    doc = itest_http_expect_json(r, 200);
    free(r);
    return doc;
}

/* B + ms as an RFC 3339 UTC time for a query string. */
static const char *mi_time(char buf[CC_TIME_ISO8601_LEN], int64_t ms_after_b)
{
    cr_assert_eq(cc_time_format_iso8601(mi.base_ms + ms_after_b, buf), 0);
    return buf;
}

/* GET /v1/metrics/intervals over the buckets and with the filters of f (one day interval: only
 * the totals are read). New reference. */
static json_t *mi_report(const struct mi_filter *f)
{
    char from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN], filters[256] = "";
    bool all = f->from_b == f->to_b;
    size_t n = 0;

    if (f->queue && *f->queue)
        n += (size_t)snprintf(filters + n, sizeof(filters) - n, "&queue_id=%s", f->queue);
    if (f->agent && *f->agent)
        n += (size_t)snprintf(filters + n, sizeof(filters) - n, "&agent_id=%s", f->agent);
    if (f->channel && *f->channel)
        n += (size_t)snprintf(filters + n, sizeof(filters) - n, "&channel=%s", f->channel);
    if (f->campaign && *f->campaign)
        snprintf(filters + n, sizeof(filters) - n, "&campaign_id=%s", f->campaign);
    return mi_get("/v1/metrics/intervals?from=%s&to=%s&interval=1d%s",
                  mi_time(from, (all ? MI_FIRST_B : f->from_b) * MI_BUCKET_MS),
                  mi_time(to, (all ? MI_LAST_B : f->to_b) * MI_BUCKET_MS), filters);
}

/* The member at a dotted path of o (NULL when absent). */
static json_t *mi_at(const json_t *o, const char *path)
{
    char buf[256], *cursor = buf, *tok;
    json_t *v = (json_t *)o;

    snprintf(buf, sizeof(buf), "%s", path);
    while (v && (tok = strsep(&cursor, ".")) != NULL)
        v = json_object_get(v, tok);
    return v;
}

/* The totals' counters of the figures f selects. */
static void mi_read_counts(const struct mi_filter *f, long long out[MI_NC])
{
    json_t *doc = mi_report(f), *counts = mi_at(doc, "totals.counts");

    cr_assert(json_is_object(counts), "expected totals.counts in the interval report");
    for (int i = 0; i < MI_NC; i++) {
        json_t *v = json_object_get(counts, mi_counters[i]);

        cr_assert(json_is_integer(v), "expected counts.%s to be an integer", mi_counters[i]);
        out[i] = json_integer_value(v);
    }
    json_decref(doc);
}

/* Asserts "name=value name=value ..." on the counts of f; every counter not named must be 0. */
static void mi_expect(const char *what, const struct mi_filter *f, const char *expected)
{
    long long c[MI_NC], want[MI_NC] = {0};
    char buf[2048], *save = NULL;

    mi_read_counts(f, c);
    snprintf(buf, sizeof(buf), "%s", expected);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        int i;

        cr_assert_not_null(eq, "bad expectation '%s'", tok);
        *eq = '\0';
        for (i = 0; i < MI_NC && strcmp(mi_counters[i], tok) != 0; i++)
            ;
        cr_assert(i < MI_NC, "no counter '%s'", tok);
        want[i] = strtoll(eq + 1, NULL, 10);
    }
    for (int i = 0; i < MI_NC; i++)
        cr_expect_eq(c[i], want[i], "%s: expected %s = %lld, got %lld", what, mi_counters[i],
                     want[i], c[i]);
}

/* Asserts that the JSON value v is want: "null", an integer (names ending in _ms: times are whole
 * milliseconds) or a number as the service rounds it (4 decimals). */
static void mi_expect_value(const char *what, const char *name, const json_t *v, const char *want)
{
    size_t len = strlen(name);
    bool ms = len > 3 && strcmp(name + len - 3, "_ms") == 0;
    char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;

    if (strcmp(want, "null") == 0)
        cr_expect(json_is_null(v), "%s: expected %s null, got %s", what, name, got ? got : "-");
    else if (ms)
        cr_expect(json_is_integer(v) && json_integer_value(v) == strtoll(want, NULL, 10),
                  "%s: expected %s = %s ms, got %s", what, name, want, got ? got : "-");
    else
        cr_expect(json_is_number(v) && fabs(json_number_value(v) - strtod(want, NULL)) < 1e-9,
                  "%s: expected %s = %s, got %s", what, name, want, got ? got : "-");
    free(got);
}

/* Asserts "name=value ..." on the members of obj; names in all[0..n) not listed must be null. */
static void mi_expect_members(const char *what, const json_t *obj, const char *expected,
                              const char *const *all, size_t n)
{
    char buf[2048], *save = NULL;
    bool seen[32] = {false};

    cr_assert(json_is_object(obj), "%s: expected an object", what);
    snprintf(buf, sizeof(buf), "%s", expected);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        size_t i;

        cr_assert_not_null(eq, "bad expectation '%s'", tok);
        *eq = '\0';
        for (i = 0; i < n && strcmp(all[i], tok) != 0; i++)
            ;
        cr_assert(i < n || n == 0, "%s: no member '%s'", what, tok);
        if (i < n)
            seen[i] = true;
        cr_assert(json_object_get(obj, tok) != NULL, "%s: expected a member '%s'", what, tok);
        mi_expect_value(what, tok, json_object_get(obj, tok), eq + 1);
    }
    for (size_t i = 0; i < n; i++)
        if (!seen[i])
            mi_expect_value(what, all[i], json_object_get(obj, all[i]), "null");
}

/* Asserts the totals' KPIs of f ("name=value ...", every KPI not named is null). */
static void mi_expect_kpis(const char *what, const struct mi_filter *f, const char *expected)
{
    json_t *doc = mi_report(f);

    mi_expect_members(what, mi_at(doc, "totals.kpis"), expected, mi_kpis, MI_KPI_COUNT);
    json_decref(doc);
}

/* Agent state ms of agent in state (reason for not_ready) in bucket b (relative to B). */
static long long mi_state_ms(const char *agent, const char *state, const char *reason, int b)
{
    json_t *doc = mi_report(&(struct mi_filter){.agent = agent, .from_b = b, .to_b = b + 1});
    json_t *st = mi_at(doc, "totals.counts.agent_state_ms"), *v;
    long long ms;

    cr_assert(json_is_object(st), "expected agent_state_ms for agent %s", agent);
    v = strcmp(state, "not_ready") == 0 ? mi_at(st, "not_ready") : json_object_get(st, state);
    if (strcmp(state, "not_ready") == 0)
        v = json_object_get(v, reason);
    ms = json_is_integer(v) ? json_integer_value(v) : 0;
    json_decref(doc);
    return ms;
}

/* Asserts that the JSON at path of doc equals the JSON text want (single quotes for double). */
static void mi_expect_json(const char *what, const json_t *doc, const char *path, const char *want)
{
    char *text = strdup(want), *got;
    json_t *w, *v = mi_at(doc, path);

    cr_assert_not_null(text);
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    w = json_loads(text, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(w, "bad expected JSON '%s'", text);
    got = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    cr_expect(v && json_equal(v, w), "%s: expected %s = %s, got %s", what, path, text,
              got ? got : "-");
    free(got);
    free(text);
    json_decref(w);
}

/* The live view's queue id (asserts it is listed). Borrowed from live. */
static json_t *mi_live_queue(const json_t *live, const char *id)
{
    size_t i;
    json_t *q;

    json_array_foreach(json_object_get(live, "queues"), i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "queue_id")), id) == 0)
            return q;
    }
    cr_assert_fail("expected queue '%s' in the live view", id);
    return NULL;
}

static long long mi_sql(const char *sql, const char *a, const char *b)
{
    const char *p[3] = {mi.tenant, a, b};

    return itest_metrics_sql_int(&mi, sql, 3, p);
}

/* ---- the hand values --------------------------------------------------------------------- */

/* Counts and KPIs of the interval report (GET /v1/metrics/intervals, totals). */
static void mi_assert_intervals(void)
{
    const struct mi_filter all = {0}, sales = {.queue = "sales"}, support = {.queue = "support"},
                           chat = {.queue = "chat"}, mail = {.queue = "mail"},
                           camp = {.campaign = "camp1"};

    mi_expect("sales", &sales,
              "entered=9 answered=6 answered_in_sl=5 answer_wait_ms_sum=106000 abandoned=3 "
              "abandoned_in_sl=2 abandoned_short=1 abandon_wait_ms_sum=80000 max_wait_ms=45000 "
              "handled=6 talk_ms_sum=2484000 hold_ms_sum=20000 wrapup_count=6 "
              "wrapup_ms_sum=140000 dispositions=3 conversions=2 resolved_marked=2 csat_count=2 "
              "csat_sum=8 csat_satisfied=1 nps_count=2 nps_promoters=1 nps_detractors=1");
    /* SL1 5/6 = 0.83333; SL2 (5+2)/(6+3) = 7/9 = 0.77778; ASA 106000/6 = 17666.67; AHT
     * (2484000+20000+140000)/6 = 2644000/6 = 440666.67; talk 2484000/6 = 414000; hold 20000/6 =
     * 3333.33; wrap-up 140000/6 = 23333.33; abandonment 3/(6+3) = 0.33333; CSAT 1/2, mean 8/2;
     * NPS (1-1)/2*100 = 0; conversion 2/3 = 0.66667. A queue has no agent time: occupancy null */
    mi_expect_kpis("sales", &sales,
                   "service_level=0.8333 service_level_2=0.7778 asa_ms=17667 aht_ms=440667 "
                   "avg_talk_ms=414000 avg_hold_ms=3333 avg_wrapup_ms=23333 longest_wait_ms=45000 "
                   "abandon_rate=0.3333 csat=0.5 csat_avg=4 nps=0 conversion_rate=0.6667");
    mi_expect("sales b0", &(struct mi_filter){.queue = "sales", .from_b = 0, .to_b = 1},
              "entered=8 answered=5 answered_in_sl=4 answer_wait_ms_sum=101000 abandoned=3 "
              "abandoned_in_sl=2 abandoned_short=1 abandon_wait_ms_sum=80000 max_wait_ms=45000 "
              "handled=4 talk_ms_sum=1335000 hold_ms_sum=20000 wrapup_count=4 "
              "wrapup_ms_sum=100000 dispositions=2 conversions=1 resolved_marked=2 csat_count=2 "
              "csat_sum=8 csat_satisfied=1 nps_count=2 nps_promoters=1 nps_detractors=1");
    /* SL1 4/5; SL2 (4+2)/(5+3) = 0.75; ASA 101000/5 = 20200; AHT (1335000+20000+100000)/4 =
     * 363750; talk 333750; hold 5000; wrap-up 100000/4 = 25000; abandonment 3/8 = 0.375;
     * conversion 1/2 */
    mi_expect_kpis("sales b0", &(struct mi_filter){.queue = "sales", .from_b = 0, .to_b = 1},
                   "service_level=0.8 service_level_2=0.75 asa_ms=20200 aht_ms=363750 "
                   "avg_talk_ms=333750 avg_hold_ms=5000 avg_wrapup_ms=25000 longest_wait_ms=45000 "
                   "abandon_rate=0.375 csat=0.5 csat_avg=4 nps=0 conversion_rate=0.5");
    mi_expect("sales b1", &(struct mi_filter){.queue = "sales", .from_b = 1, .to_b = 2},
              "entered=1 answered=1 answered_in_sl=1 answer_wait_ms_sum=5000 max_wait_ms=5000 "
              "handled=1 talk_ms_sum=849000 wrapup_count=1 wrapup_ms_sum=30000 dispositions=1 "
              "conversions=1");
    /* S9 answered 5000 (SL), S3 ended (849000) and wrapped up (30000): AHT 879000; no
     * abandon: abandonment 0/1 */
    mi_expect_kpis("sales b1", &(struct mi_filter){.queue = "sales", .from_b = 1, .to_b = 2},
                   "service_level=1 service_level_2=1 asa_ms=5000 aht_ms=879000 "
                   "avg_talk_ms=849000 avg_hold_ms=0 avg_wrapup_ms=30000 longest_wait_ms=5000 "
                   "abandon_rate=0 conversion_rate=1");
    mi_expect("sales b2", &(struct mi_filter){.queue = "sales", .from_b = 2, .to_b = 3},
              "handled=1 talk_ms_sum=300000 wrapup_count=1 wrapup_ms_sum=10000");
    /* only S9's end and wrap-up: AHT (300000+10000)/1; nothing answered or abandoned: SL, ASA,
     * longest wait and abandonment null */
    mi_expect_kpis("sales b2", &(struct mi_filter){.queue = "sales", .from_b = 2, .to_b = 3},
                   "aht_ms=310000 avg_talk_ms=300000 avg_hold_ms=0 avg_wrapup_ms=10000");
    mi_expect("support", &support,
              "entered=8 answered=5 answered_in_sl=3 answer_wait_ms_sum=167000 abandoned=1 "
              "abandoned_short=1 abandon_wait_ms_sum=30000 max_wait_ms=100000 handled=4 "
              "talk_ms_sum=1180000 hold_ms_sum=20000 wrapup_count=3 wrapup_ms_sum=45000 "
              "transfers=1 dispositions=1 resolved_marked=1");
    /* SL1 3/5; SL2 (3+0)/(5+1) = 0.5; ASA 167000/5 = 33400; AHT (1180000+20000+45000)/4 =
     * 311250; talk 295000; hold 5000; wrap-up 45000/3 = 15000; abandonment 1/6 = 0.16667;
     * conversion 0/1 */
    mi_expect_kpis("support", &support,
                   "service_level=0.6 service_level_2=0.5 asa_ms=33400 aht_ms=311250 "
                   "avg_talk_ms=295000 avg_hold_ms=5000 avg_wrapup_ms=15000 "
                   "longest_wait_ms=100000 abandon_rate=0.1667 conversion_rate=0");
    mi_expect("chat", &chat,
              "entered=7 answered=3 answered_in_sl=2 answer_wait_ms_sum=65000 abandoned=2 "
              "abandoned_in_sl=1 abandoned_short=1 abandon_wait_ms_sum=45000 max_wait_ms=40000 "
              "handled=3 talk_ms_sum=1490000 resolution_count=3 resolution_ms_sum=1555000 "
              "first_response_count=3 first_response_ms_sum=115000 wrapup_count=2 "
              "wrapup_ms_sum=15000 transfers=1 channel_changes=1 dispositions=1 "
              "resolved_marked=1 csat_count=1 csat_sum=4 csat_satisfied=1");
    /* SL1 2/3 = 0.66667; SL2 (2+1)/(3+2) = 0.6; ASA 65000/3 = 21666.67; AHT (1490000+0+15000)/3
     * = 501666.67; talk 1490000/3 = 496666.67; wrap-up 15000/2 = 7500; abandonment 2/5 = 0.4;
     * first response 115000/3 = 38333.33; resolution 1555000/3 = 518333.33; CSAT 1/1, mean 4;
     * conversion 0/1 */
    mi_expect_kpis("chat", &chat,
                   "service_level=0.6667 service_level_2=0.6 asa_ms=21667 aht_ms=501667 "
                   "avg_talk_ms=496667 avg_hold_ms=0 avg_wrapup_ms=7500 longest_wait_ms=40000 "
                   "abandon_rate=0.4 first_response_ms=38333 resolution_ms=518333 csat=1 "
                   "csat_avg=4 conversion_rate=0");
    mi_expect("mail", &mail,
              "entered=3 answered=2 answered_in_sl=1 answer_wait_ms_sum=5200000 "
              "abandoned_short=1 max_wait_ms=4000000 handled=2 talk_ms_sum=500000 "
              "resolution_count=2 resolution_ms_sum=5700000 first_response_count=2 "
              "first_response_ms_sum=5500000");
    /* SL1 1/2; SL2 1/2; ASA 5200000/2; AHT 500000/2; no wrap-up: null; abandonment 0/2 (the
     * short one apart); first response 5500000/2; resolution 5700000/2 */
    mi_expect_kpis("mail", &mail,
                   "service_level=0.5 service_level_2=0.5 asa_ms=2600000 aht_ms=250000 "
                   "avg_talk_ms=250000 avg_hold_ms=0 longest_wait_ms=4000000 abandon_rate=0 "
                   "first_response_ms=2750000 resolution_ms=2850000");
    mi_expect("mail b4", &(struct mi_filter){.queue = "mail", .from_b = 4, .to_b = 5},
              "answered=1 answer_wait_ms_sum=4000000 max_wait_ms=4000000 handled=1 "
              "talk_ms_sum=120000 resolution_count=1 resolution_ms_sum=4120000 "
              "first_response_count=1 first_response_ms_sum=4020000");
    /* E2 alone: 4000000 > T 3600000: SL 0/1 */
    mi_expect_kpis("mail b4", &(struct mi_filter){.queue = "mail", .from_b = 4, .to_b = 5},
                   "service_level=0 service_level_2=0 asa_ms=4000000 aht_ms=120000 "
                   "avg_talk_ms=120000 avg_hold_ms=0 longest_wait_ms=4000000 abandon_rate=0 "
                   "first_response_ms=4020000 resolution_ms=4120000");
    mi_expect("camp1", &camp,
              "entered=4 answered=1 answered_in_sl=1 answer_wait_ms_sum=1000 abandoned_short=1 "
              "max_wait_ms=1000 handled=1 talk_ms_sum=300000 wrapup_count=1 wrapup_ms_sum=20000 "
              "dispositions=1 conversions=1 outbound_attempts=4 outbound_connects=3 "
              "outbound_abandoned=2");
    /* O1: SL 1/1, ASA 1000, AHT (300000+20000)/1; abandonment 0/1 (O2's is short); conversion
     * 1/1 */
    mi_expect_kpis("camp1", &camp,
                   "service_level=1 service_level_2=1 asa_ms=1000 aht_ms=320000 "
                   "avg_talk_ms=300000 avg_hold_ms=0 avg_wrapup_ms=20000 longest_wait_ms=1000 "
                   "abandon_rate=0 conversion_rate=1");
    mi_expect("tenant", &all,
              "entered=31 answered=17 answered_in_sl=12 answer_wait_ms_sum=5539000 abandoned=6 "
              "abandoned_in_sl=3 abandoned_short=5 abandon_wait_ms_sum=155000 "
              "max_wait_ms=4000000 handled=16 talk_ms_sum=5954000 hold_ms_sum=40000 "
              "wrapup_count=12 wrapup_ms_sum=220000 transfers=2 channel_changes=1 dispositions=6 "
              "conversions=3 resolved_marked=4 first_response_count=5 "
              "first_response_ms_sum=5615000 resolution_count=5 resolution_ms_sum=7255000 "
              "csat_count=3 csat_sum=12 csat_satisfied=2 nps_count=2 nps_promoters=1 "
              "nps_detractors=1 outbound_attempts=4 outbound_connects=3 outbound_abandoned=2");
    /* SL1 12/17 = 0.70588; SL2 (12+3)/(17+6) = 15/23 = 0.65217; ASA 5539000/17 = 325823.53;
     * AHT (5954000+40000+220000)/16 = 6214000/16 = 388375; talk 5954000/16 = 372125; hold
     * 40000/16 = 2500; wrap-up 220000/12 = 18333.33; abandonment 6/23 = 0.26087; first response
     * 5615000/5 = 1123000; resolution 7255000/5 = 1451000; CSAT 2/3 = 0.66667, mean 12/3 = 4;
     * NPS (1-1)/2*100 = 0; conversion 3/6. Over all agents (work = busy + wrap-up = 320000):
     * occupancy 320000 / (320000 + available 2780000 + reserved 10000) = 320000/3110000 =
     * 0.10289; utilisation 320000 / (3110000 + not ready 3000000) = 320000/6110000 = 0.05237 */
    mi_expect_kpis("tenant", &all,
                   "service_level=0.7059 service_level_2=0.6522 asa_ms=325824 aht_ms=388375 "
                   "avg_talk_ms=372125 avg_hold_ms=2500 avg_wrapup_ms=18333 "
                   "longest_wait_ms=4000000 abandon_rate=0.2609 first_response_ms=1123000 "
                   "resolution_ms=1451000 csat=0.6667 csat_avg=4 nps=0 conversion_rate=0.5 "
                   "occupancy=0.1029 utilisation=0.0524");
    mi_expect("tenant b0", &(struct mi_filter){.from_b = 0, .to_b = 1},
              "entered=26 answered=12 answered_in_sl=9 answer_wait_ms_sum=222000 abandoned=6 "
              "abandoned_in_sl=3 abandoned_short=5 abandon_wait_ms_sum=155000 max_wait_ms=45000 "
              "handled=9 talk_ms_sum=3100000 hold_ms_sum=40000 wrapup_count=8 "
              "wrapup_ms_sum=150000 transfers=2 channel_changes=1 dispositions=5 conversions=2 "
              "resolved_marked=4 first_response_count=3 first_response_ms_sum=115000 "
              "resolution_count=2 resolution_ms_sum=930000 csat_count=3 csat_sum=12 "
              "csat_satisfied=2 nps_count=2 nps_promoters=1 nps_detractors=1 outbound_attempts=4 "
              "outbound_connects=3 outbound_abandoned=2");
    /* SL1 9/12 = 0.75; SL2 (9+3)/(12+6) = 0.66667; ASA 222000/12 = 18500; AHT (3100000+40000+
     * 150000)/9 = 365555.56; talk 3100000/9 = 344444.44; hold 40000/9 = 4444.44; wrap-up
     * 150000/8 = 18750; abandonment 6/18 = 0.33333; first response 115000/3 = 38333.33;
     * resolution 930000/2 = 465000; conversion 2/5 = 0.4. Agents in b0: a1 available 900000, a2
     * available 580000, busy 300000, wrap-up 20000: occupancy = utilisation = 320000/1800000 =
     * 0.17778 */
    mi_expect_kpis("tenant b0", &(struct mi_filter){.from_b = 0, .to_b = 1},
                   "service_level=0.75 service_level_2=0.6667 asa_ms=18500 aht_ms=365556 "
                   "avg_talk_ms=344444 avg_hold_ms=4444 avg_wrapup_ms=18750 longest_wait_ms=45000 "
                   "abandon_rate=0.3333 first_response_ms=38333 resolution_ms=465000 "
                   "csat=0.6667 csat_avg=4 nps=0 conversion_rate=0.4 occupancy=0.1778 "
                   "utilisation=0.1778");
    /* by agent: handled / talk, answered */
    mi_expect("a1", &(struct mi_filter){.agent = "a1"},
              "answered=4 answered_in_sl=3 answer_wait_ms_sum=52000 max_wait_ms=31000 handled=4 "
              "talk_ms_sum=2014000 hold_ms_sum=10000 wrapup_count=4 wrapup_ms_sum=100000 "
              "dispositions=3 conversions=3 resolved_marked=1 csat_count=1 csat_sum=5 "
              "csat_satisfied=1 nps_count=1 nps_promoters=1");
    /* SL 3/4 (S3 31000 > 30000); ASA 52000/4 = 13000; AHT (2014000+10000+100000)/4 = 531000;
     * talk 503500; hold 2500; wrap-up 25000; abandonment 0/4; CSAT 1/1 mean 5; NPS 1/1*100;
     * conversion 3/3; a1 never busy: occupancy 0/2100000 available, utilisation 0/(2100000 +
     * 3000000 not ready) */
    mi_expect_kpis("a1", &(struct mi_filter){.agent = "a1"},
                   "service_level=0.75 service_level_2=0.75 asa_ms=13000 aht_ms=531000 "
                   "avg_talk_ms=503500 avg_hold_ms=2500 avg_wrapup_ms=25000 longest_wait_ms=31000 "
                   "abandon_rate=0 csat=1 csat_avg=5 nps=100 conversion_rate=1 occupancy=0 "
                   "utilisation=0");
    mi_expect("a2 b0", &(struct mi_filter){.agent = "a2", .from_b = 0, .to_b = 1},
              "answered=2 answered_in_sl=2 answer_wait_ms_sum=50000 max_wait_ms=30000 handled=2 "
              "talk_ms_sum=470000 hold_ms_sum=10000 wrapup_count=2 wrapup_ms_sum=50000 "
              "dispositions=1 resolved_marked=1 csat_count=1 csat_sum=3 nps_count=1 "
              "nps_detractors=1");
    /* SL 2/2; ASA 50000/2; AHT (470000+10000+50000)/2 = 265000; talk 235000; hold 5000; wrap-up
     * 25000; CSAT 0/1 (a 3), mean 3; NPS (0-1)/1*100 = -100; conversion 0/1; occupancy (300000
     * busy + 20000 wrap-up) / (320000 + 580000 available) = 0.35556, utilisation the same (no
     * not-ready time in b0) */
    mi_expect_kpis("a2 b0", &(struct mi_filter){.agent = "a2", .from_b = 0, .to_b = 1},
                   "service_level=1 service_level_2=1 asa_ms=25000 aht_ms=265000 "
                   "avg_talk_ms=235000 avg_hold_ms=5000 avg_wrapup_ms=25000 longest_wait_ms=30000 "
                   "abandon_rate=0 csat=0 csat_avg=3 nps=-100 conversion_rate=0 occupancy=0.3556 "
                   "utilisation=0.3556");
    mi_expect("a4", &(struct mi_filter){.agent = "a4"},
              "answered=5 answered_in_sl=3 answer_wait_ms_sum=5265000 max_wait_ms=4000000 "
              "handled=5 talk_ms_sum=1990000 resolution_count=5 resolution_ms_sum=7255000 "
              "first_response_count=5 first_response_ms_sum=5615000 wrapup_count=2 "
              "wrapup_ms_sum=15000 transfers=1 channel_changes=1 dispositions=1 "
              "resolved_marked=1 csat_count=1 csat_sum=4 csat_satisfied=1");
    /* SL 3/5; ASA 5265000/5 = 1053000; AHT (1990000+15000)/5 = 401000; talk 398000; wrap-up
     * 7500; first response 5615000/5; resolution 7255000/5; CSAT 1/1; conversion 0/1; a4 has no
     * agent-state events: no time, occupancy and utilisation null */
    mi_expect_kpis("a4", &(struct mi_filter){.agent = "a4"},
                   "service_level=0.6 service_level_2=0.6 asa_ms=1053000 aht_ms=401000 "
                   "avg_talk_ms=398000 avg_hold_ms=0 avg_wrapup_ms=7500 longest_wait_ms=4000000 "
                   "abandon_rate=0 first_response_ms=1123000 resolution_ms=1451000 csat=1 "
                   "csat_avg=4 conversion_rate=0");
}

/* Codes, agent-state time, FCR and outbound. */
static void mi_assert_reports(void)
{
    char from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN];
    json_t *doc;

    /* dispositions and contact reasons, and the agent time by state over all agents */
    doc = mi_report(&(struct mi_filter){0});
    mi_expect_json("codes", doc, "totals.codes.disposition",
                   "{'sale':3,'no_sale':1,'info':1,'resolved':1}");
    mi_expect_json("codes", doc, "totals.codes.contact_reason",
                   "{'pricing':2,'billing':2,'shipping':1}");
    /* available a1 900000+300000+900000 + a2 580000+100000; not ready a1 login 600000, break
     * 600000+900000+900000: no other agent time */
    mi_expect_json("agent time", doc, "totals.counts.agent_state_ms",
                   "{'available':2780000,'reserved':10000,'busy':300000,'wrap_up':20000,"
                   "'not_ready':{'login':600000,'break':2400000}}");
    /* FCR of the scenario's contacts: 12 handled inbound contacts with a customer (S1 S2 S3 S8 P1
     * P5 P6 C1 C2 C6 E1 E2), all created about 3 h ago: every 7-day window is still open */
    mi_expect_json("fcr", doc, "totals.fcr",
                   "{'contacts':12,'resolved':0,'unresolved':0,'pending':12,'rate':null}");
    json_decref(doc);

    /* agent states, split over buckets */
    cr_expect_eq(mi_state_ms("a1", "not_ready", "login", -1), 600000);
    cr_expect_eq(mi_state_ms("a1", "available", "", 0), 900000);
    cr_expect_eq(mi_state_ms("a1", "available", "", 1), 300000);
    cr_expect_eq(mi_state_ms("a1", "not_ready", "break", 1), 600000);
    cr_expect_eq(mi_state_ms("a1", "not_ready", "break", 2), 900000);
    cr_expect_eq(mi_state_ms("a1", "not_ready", "break", 3), 900000);
    cr_expect_eq(mi_state_ms("a1", "available", "", 4), 900000);
    cr_expect_eq(mi_state_ms("a2", "available", "", 0), 580000);
    cr_expect_eq(mi_state_ms("a2", "busy", "", 0), 300000);
    cr_expect_eq(mi_state_ms("a2", "wrap_up", "", 0), 20000);
    cr_expect_eq(mi_state_ms("a2", "available", "", 1), 100000);
    cr_expect_eq(mi_state_ms("a2", "reserved", "", 1), 10000);

    /* FCR by contact reason (S2's two reasons kept): pricing S1 S2, billing S2 P1, shipping C1,
     * the 8 others under "" -- all pending */
    doc = mi_get("/v1/metrics/fcr?from=%s&to=%s&group_by=contact_reason",
                 mi_time(from, MI_FIRST_B * MI_BUCKET_MS), mi_time(to, MI_LAST_B * MI_BUCKET_MS));
    mi_expect_json("fcr by reason", doc, "rows",
                   "[{'contact_reason':'','contacts':8,'resolved':0,'unresolved':0,'pending':8,"
                   "'rate':null},{'contact_reason':'billing','contacts':2,'resolved':0,"
                   "'unresolved':0,'pending':2,'rate':null},{'contact_reason':'pricing',"
                   "'contacts':2,'resolved':0,'unresolved':0,'pending':2,'rate':null},"
                   "{'contact_reason':'shipping','contacts':1,'resolved':0,'unresolved':0,"
                   "'pending':1,'rate':null}]");
    json_decref(doc);
    /* FCR of the older contacts, whose windows have elapsed: F1 (c10) was repeated by F2 within 7
     * days: unresolved; F2 and F3 were not: resolved; F4 was never answered: no contact. rate
     * 2/(2+1) = 0.66667 */
    doc = mi_get("/v1/metrics/fcr?from=%s&to=%s", mi_time(from, -11 * MI_DAY_MS),
                 mi_time(to, -8 * MI_DAY_MS));
    mi_expect_json("fcr", doc, "totals",
                   "{'contacts':3,'resolved':2,'unresolved':1,'pending':0,'rate':0.6667}");
    json_decref(doc);

    /* outbound: attempts O1..O4, connects O1 O2 O3, dialer abandons O2 O3: 2/3 = 0.66667 in both
     * windows (the scenario is about 3 h old) */
    doc = mi_get("/v1/metrics/outbound?campaign_id=camp1");
    mi_expect_json("outbound", doc, "campaigns",
                   "[{'campaign_id':'camp1','last_24h':{'attempts':4,'connects':3,'abandoned':2,"
                   "'abandon_rate':0.6667},'last_30d':{'attempts':4,'connects':3,'abandoned':2,"
                   "'abandon_rate':0.6667}}]");
    json_decref(doc);
}

/* Asserts the live view's queue: waiting, oldest wait (now - since, taken between t0 and t1),
 * estimated wait, threshold, agents (JSON) and today's figures ("name=value ..."). */
static void mi_expect_live_queue(const json_t *live, const char *id, int waiting,
                                 int64_t since_ms_after_b, int64_t t0, int64_t t1,
                                 const char *estimated, int sl_s, const char *agents,
                                 const char *today)
{
    json_t *q = mi_live_queue(live, id), *oldest = json_object_get(q, "oldest_wait_ms");
    char what[64];

    snprintf(what, sizeof(what), "live %s", id);
    cr_expect_eq(json_integer_value(json_object_get(q, "waiting")), waiting,
                 "%s: expected %d waiting", what, waiting);
    if (waiting == 0) {
        cr_expect(json_is_null(oldest), "%s: expected no oldest wait", what);
    } else {
        int64_t since = mi.base_ms + since_ms_after_b;

        cr_expect(json_is_integer(oldest) && json_integer_value(oldest) >= t0 - since &&
                      json_integer_value(oldest) <= t1 - since,
                  "%s: expected the oldest wait now - (B + %lld ms) in [%lld, %lld]", what,
                  (long long)since_ms_after_b, (long long)(t0 - since), (long long)(t1 - since));
    }
    mi_expect_value(what, "estimated_wait_ms", json_object_get(q, "estimated_wait_ms"), estimated);
    cr_expect_eq(json_integer_value(json_object_get(q, "sl_threshold_s")), sl_s,
                 "%s: expected T = %d s", what, sl_s);
    mi_expect_json(what, q, "agents", agents);
    mi_expect_members(what, json_object_get(q, "today"), today, NULL, 0);
}

/* The live view (GET /v1/metrics/live): "today" is the local day of the service's time zone,
 * chosen so that the whole scenario (B is about 9:00 local) falls in it. */
static void mi_assert_live(void)
{
    static const char no_agents[] =
        "{'logged_in':0,'available':0,'reserved':0,'busy':0,'wrap_up':0,'not_ready':0,"
        "'not_ready_by_reason':{}}";
    int64_t t0 = cc_time_now_ms(), t1;
    json_t *live = mi_get("/v1/metrics/live");

    t1 = cc_time_now_ms();
    cr_expect_eq(json_array_size(json_object_get(live, "queues")), 5,
                 "expected the live queues chat, mail, outq, sales, support");
    /* chat: C7 waits since 1500; nobody staffs chat: estimated wait 1 x AHT 501667 / max(1, 0);
     * today SL 2/3, ASA 65000/3, AHT 1505000/3, abandonment 2/5 */
    mi_expect_live_queue(live, "chat", 1, 1500000, t0, t1, "501667", 20, no_agents,
                         "answered=3 abandoned=2 service_level=0.6667 asa_ms=21667 aht_ms=501667 "
                         "abandon_rate=0.4 longest_wait_ms=40000");
    /* mail: nobody waits: estimated 0 x 250000; T 3600 s from its queued events */
    mi_expect_live_queue(live, "mail", 0, 0, t0, t1, "0", 3600, no_agents,
                         "answered=2 abandoned=0 service_level=0.5 asa_ms=2600000 aht_ms=250000 "
                         "abandon_rate=0 longest_wait_ms=4000000");
    /* outq: a1 (its agent) logged out: no agents; AHT (300000+20000)/1 */
    mi_expect_live_queue(live, "outq", 0, 0, t0, t1, "0", 20, no_agents,
                         "answered=1 abandoned=0 service_level=1 asa_ms=1000 aht_ms=320000 "
                         "abandon_rate=0 longest_wait_ms=1000");
    /* sales: a2 busy since 1010 (a1 logged out); T 30 s */
    mi_expect_live_queue(live, "sales", 0, 0, t0, t1, "0", 30,
                         "{'logged_in':1,'available':0,'reserved':0,'busy':1,'wrap_up':0,"
                         "'not_ready':0,'not_ready_by_reason':{}}",
                         "answered=6 abandoned=3 service_level=0.8333 asa_ms=17667 aht_ms=440667 "
                         "abandon_rate=0.3333 longest_wait_ms=45000");
    /* support: P7 waits since 1300; a3 not ready (login): estimated 1 x AHT 311250 / max(1, 0) */
    mi_expect_live_queue(live, "support", 1, 1300000, t0, t1, "311250", 20,
                         "{'logged_in':1,'available':0,'reserved':0,'busy':0,'wrap_up':0,"
                         "'not_ready':1,'not_ready_by_reason':{'login':1}}",
                         "answered=5 abandoned=1 service_level=0.6 asa_ms=33400 aht_ms=311250 "
                         "abandon_rate=0.1667 longest_wait_ms=100000");
    /* every agent: a2 busy, a3 not ready (login); a1 logged out is not counted */
    mi_expect_json("live", live, "agents",
                   "{'logged_in':2,'available':0,'reserved':0,'busy':1,'wrap_up':0,"
                   "'not_ready':1,'not_ready_by_reason':{'login':1}}");
    /* today over the tenant: the scenario's totals (SL 12/17, ASA 5539000/17, AHT 6214000/16,
     * abandonment 6/23, CSAT 2/3, NPS 0) */
    mi_expect_members("live today", json_object_get(live, "today"),
                      "answered=17 abandoned=6 service_level=0.7059 asa_ms=325824 aht_ms=388375 "
                      "abandon_rate=0.2609 longest_wait_ms=4000000 handled=16 csat=0.6667 nps=0",
                      NULL, 0);
    json_decref(live);
}

static void mi_assert_scenario(void)
{
    mi_assert_intervals();
    mi_assert_reports();
    mi_assert_live();
    /* the store's own invariant: every parked fact found its created event */
    cr_expect_eq(
        mi_sql("SELECT count(*) FROM metrics.pending WHERE tenant = $1 AND $2 = $3", "", ""), 0,
        "expected nothing left pending");
}
/* ---- the tests --------------------------------------------------------------------------- */

Test(metrics_ingest, computes_every_kpi_of_the_scenario_exactly)
{
    itest_metrics_start(&mi, NULL);
    mi_send_range(0, MI_NEVENTS);
    itest_metrics_wait_caught_up(&mi);
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1,
                 "expected every event but the inbound chat message applied");
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, changes_no_figure_when_the_scenario_is_replayed)
{
    itest_metrics_start(&mi, NULL);
    mi_send_range(0, MI_NEVENTS);
    itest_metrics_wait_caught_up(&mi);
    mi_send_range(0, MI_NEVENTS); /* the same ids again */
    itest_metrics_wait_caught_up(&mi);
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, ends_with_the_same_figures_after_a_kill_9_mid_scenario)
{
    int half = MI_NEVENTS / 2;
    int64_t until = cc_time_mono_ms() + ITEST_METRICS_WAIT_MS;

    itest_metrics_start(&mi, NULL);
    mi_send_range(0, half);
    cr_assert_eq(cc_producer_flush(mi.producer, 10000), 0);
    while (itest_metrics_applied(&mi) < half / 2 && cc_time_mono_ms() < until)
        cc_time_sleep_ms(5);
    cr_assert(itest_metrics_applied(&mi) >= half / 2, "expected part of the scenario applied");
    itest_metrics_kill(&mi); /* offsets of what it applied may not be committed */
    itest_metrics_start(&mi, NULL);
    mi_send_range(half, MI_NEVENTS);
    itest_metrics_wait_caught_up(&mi);
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, puts_late_and_out_of_order_events_in_their_buckets)
{
    itest_metrics_start(&mi, NULL);
    /* every interaction event in reverse: the latest buckets first, each ended before its
     * answered before its created; the agents' events (one agent's are always in order on its
     * partition) after all of them, although they start in an earlier bucket */
    for (int i = MI_NEVENTS - 1; i >= 0; i--)
        if (!mi_scenario[i].agent)
            mi_send_one(i);
    itest_metrics_wait_caught_up(&mi);
    for (int i = 0; i < MI_NEVENTS; i++)
        if (mi_scenario[i].agent)
            mi_send_one(i);
    itest_metrics_wait_caught_up(&mi);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

/* Sends every event of the scenario but those marked in held, waits until they are applied,
 * then sends the held ones (in table order) in batches of their own. */
static void mi_send_holding_back(const bool *held)
{
    for (int i = 0; i < MI_NEVENTS; i++)
        if (!held[i])
            mi_send_one(i);
    itest_metrics_wait_caught_up(&mi);
    for (int i = 0; i < MI_NEVENTS; i++)
        if (held[i])
            mi_send_one(i);
    itest_metrics_wait_caught_up(&mi);
}

Test(metrics_ingest, counts_the_earliest_agent_message_as_the_first_response_when_it_comes_late)
{
    bool held[MI_NEVENTS] = {false};

    /* C1's first agent message (40 s, 30000 after creation) comes in a batch after its second
     * (100 s): the second is counted as the first response (90000) first, then taken back */
    held[mi_find("cc.interaction.message", "C1", 40)] = true;
    itest_metrics_start(&mi, NULL);
    mi_send_holding_back(held);
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, keeps_the_not_ready_reason_when_an_agents_events_come_out_of_order)
{
    bool held[MI_NEVENTS] = {false};
    int a1[MI_NEVENTS], n = 0;

    /* a1's events, newest first, each in a batch of its own: when its 3600 s change from
     * not_ready comes, the agent's stored state is the later logout; the reason (break) comes
     * from the event (from_reason_code) */
    for (int i = 0; i < MI_NEVENTS; i++)
        if (mi_scenario[i].agent && strcmp(mi_scenario[i].subject, "a1") == 0)
            held[i] = true, a1[n++] = i;
    itest_metrics_start(&mi, NULL);
    for (int i = 0; i < MI_NEVENTS; i++)
        if (!held[i])
            mi_send_one(i);
    itest_metrics_wait_caught_up(&mi);
    while (n > 0) {
        mi_send_one(a1[--n]);
        itest_metrics_wait_caught_up(&mi);
    }
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, counts_an_ended_as_handled_when_its_answer_comes_after_it)
{
    bool held[MI_NEVENTS] = {false};

    /* every agent answer comes after the interaction's end: each ended is first counted as not
     * handled (O1's, after its customer answer, as a dialer abandon), then as handled when the
     * answer comes; O2's customer answer too comes after its end: then it is a dialer abandon */
    for (int i = 0; i < MI_NEVENTS; i++)
        held[i] = strcmp(mi_scenario[i].type, "cc.interaction.answered") == 0 &&
                  strstr(mi_scenario[i].data, "'agent'") != NULL;
    held[mi_find("cc.interaction.answered", "O2", 530)] = true;
    itest_metrics_start(&mi, NULL);
    mi_send_holding_back(held);
    cr_assert_eq(itest_metrics_applied(&mi), MI_NEVENTS - 1);
    mi_assert_scenario();
    itest_metrics_stop(&mi);
}

Test(metrics_ingest, keeps_the_queue_ids_of_a_login_followed_by_a_state_change_in_one_batch)
{
    json_t *live;

    /* the router sends them back to back: the state change carries no queue_ids */
    itest_metrics_start(&mi, NULL);
    itest_metrics_send(&mi, CC_TOPIC_AGENTS, "cc.agent.logged_in", "a7", 0,
                       "{'capacity':{'voice':1},'queue_ids':['q7'],'state':'available'}", 9101);
    itest_metrics_send(&mi, CC_TOPIC_AGENTS, "cc.agent.state_changed", "a7", 1000,
                       SC("available", "busy", "1000", ""), 9102);
    itest_metrics_wait_caught_up(&mi);
    cr_assert_eq(itest_metrics_applied(&mi), 2);
    live = mi_get("/v1/metrics/live");
    mi_expect_json("live q7", mi_live_queue(live, "q7"), "agents",
                   "{'logged_in':1,'available':0,'reserved':0,'busy':1,'wrap_up':0,"
                   "'not_ready':0,'not_ready_by_reason':{}}");
    json_decref(live);
    itest_metrics_stop(&mi);
}

/* Runs sql (printf-style, "%1$s" the schema) on mi's connection. */
static void mi_exec_in(const char *schema, const char *fmt)
{
    char sql[2048];

    snprintf(sql, sizeof(sql), fmt, schema);
    cr_assert_eq(cc_pg_exec(mi.pg, sql, 0, NULL), 0, "expected the SQL to run: %s", sql);
}

static long long mi_count_in(const char *schema, const char *table)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s", schema, table);
    return itest_metrics_sql_int(&mi, sql, 0, NULL);
}

Test(metrics_ingest, purges_old_event_ids_and_orphan_facts_in_small_batches)
{
    struct metrics_retention_result res = {0};
    struct metrics_retention_config cfg;
    metrics_retention *ret;
    char schema[64], dir[512];
    int applied = 0;
    int64_t until;

    /* a schema of its own with the service's migrations, so that nothing else is purged */
    itest_unique(schema, sizeof(schema), "mret");
    snprintf(dir, sizeof(dir), "%s/services/metrics-aggregator/migrations",
             itest_env("CC_TEST_TOP"));
    cr_assert_eq(cc_pg_migrate(mi.pg, schema, dir, &applied), 0);
    /* ids applied 9 days ago: 5 (forgotten); 7 days ago: 2; now: 1, of an event 20 days old
     * (a late event: its window counts from when it was applied, so it is kept) */
    mi_exec_in(schema, "INSERT INTO %1$s.events_seen (id, at, seen_at) SELECT 'old-' || g, now() "
                       "- interval '9 days', now() - interval '9 days' FROM generate_series(1, 5) "
                       "g UNION ALL SELECT 'recent-' || g, now() - interval '7 days', now() - "
                       "interval '7 days' FROM generate_series(1, 2) g UNION ALL SELECT 'late', "
                       "now() - interval '20 days', now()");
    /* facts parked 9 days ago: 3 of two interactions whose created never came (dropped); 1
     * parked 7 days ago (kept) */
    mi_exec_in(schema, "INSERT INTO %1$s.pending (id, tenant, kind, subj, t, parked_at) VALUES "
                       "('p1', 't', 3, 'i1', 0, now() - interval '9 days'), ('p2', 't', 5, 'i1', "
                       "0, now() - interval '9 days'), ('p3', 't', 3, 'i2', 0, now() - interval "
                       "'9 days'), ('p4', 't', 3, 'i3', 0, now() - interval '7 days')");
    cfg = (struct metrics_retention_config){
        .schema = schema, .dedupe_days = 8, .pending_days = 8, .batch = 2};
    cr_assert_eq(metrics_retention_purge(mi.pg, &cfg, &res), 0);
    cr_expect_eq(res.events_seen, 5, "expected the 5 ids older than 8 days forgotten, got %ld",
                 res.events_seen);
    cr_expect_eq(res.pending, 3, "expected the 3 facts parked 9 days ago dropped, got %ld",
                 res.pending);
    cr_expect_eq(mi_count_in(schema, "events_seen"), 3, "expected 2 recent ids and the late one");
    cr_expect_eq(mi_count_in(schema, "pending"), 1, "expected the fact parked 7 days ago kept");
    cr_assert_eq(metrics_retention_purge(mi.pg, &cfg, &res), 0);
    cr_expect(res.events_seen == 0 && res.pending == 0, "expected a second pass to find nothing");

    /* the thread: a first pass at once, then one per interval, stopped on demand */
    mi_exec_in(schema, "INSERT INTO %1$s.events_seen (id, at, seen_at) VALUES ('old-6', now(), "
                       "now() - interval '30 days')");
    cfg.dsn = itest_env("CC_PG_DSN");
    cfg.interval_ms = 100;
    ret = metrics_retention_start(&cfg);
    cr_assert_not_null(ret, "expected the retention thread to start");
    until = cc_time_mono_ms() + 10000;
    while (mi_count_in(schema, "events_seen") > 3 && cc_time_mono_ms() < until)
        cc_time_sleep_ms(20);
    metrics_retention_stop(ret);
    cr_expect_eq(mi_count_in(schema, "events_seen"), 3, "expected the thread to purge old-6");
    mi_exec_in(schema, "DROP SCHEMA %1$s CASCADE");
}

/* Counts the dead letters written by one consumer group. */
struct mi_deadletters {
    const char *group;
    int count;
};

static enum cc_bus_verdict mi_deadletter_seen(void *ctx, const struct cc_bus_msg *m, char *reason,
                                              size_t len)
{
    struct mi_deadletters *d = ctx;
    json_t *doc = json_loadb(m->value, m->len, 0, NULL);
    const char *g = json_string_value(json_object_get(json_object_get(doc, "data"), "group"));

    (void)reason;
    (void)len;
    if (g && strcmp(g, d->group) == 0)
        d->count++;
    json_decref(doc);
    return CC_BUS_OK;
}

Test(metrics_ingest, deadletters_malformed_events_and_keeps_going)
{
    static const char *const dl_topic[] = {CC_TOPIC_DEADLETTER};
    struct mi_deadletters dl = {.group = mi.group};
    struct cc_bus_config bus;
    char key[64], group[96];
    int64_t until;
    cc_consumer *watch;

    cc_bus_config_defaults(&bus);
    bus.brokers = itest_env("CC_KAFKA_BROKERS");
    bus.client_id = "itest-metrics-dl";
    bus.session_timeout_ms = 6000;
    bus.heartbeat_interval_ms = 1000;
    bus.fetch_wait_max_ms = 10;
    itest_unique(group, sizeof(group), "midl");
    cr_assert_eq(itest_group_at_end(group, dl_topic, 1), 0);
    watch = cc_consumer_new(&bus, group, dl_topic, 1, mi_deadletter_seen, &dl, mi.producer);
    cr_assert_not_null(watch, "expected a watch of cc.deadletter");

    itest_metrics_start(&mi, NULL);
    snprintf(key, sizeof(key), "%s-BAD", mi.tag);
    itest_metrics_send_raw(&mi, CC_TOPIC_INTERACTIONS, key, "{not json");
    itest_metrics_send(&mi, CC_TOPIC_INTERACTIONS, "cc.interaction.answered", "BAD", 0,
                       "{'answered_by':'agent','wait_ms':1}", 9001); /* no agent_id */
    itest_metrics_send(&mi, CC_TOPIC_INTERACTIONS, "cc.interaction.abandoned", "BAD", 0,
                       "{'queue_id':'q1','wait_ms':'long'}", 9002); /* wrong type */
    itest_metrics_send(&mi, CC_TOPIC_AGENTS, "cc.agent.state_changed", "a9", 0,
                       "{'from_state':'busy'}", 9003); /* missing fields */
    /* then a good one on the same key: applied */
    itest_metrics_send(&mi, CC_TOPIC_INTERACTIONS, "cc.interaction.created", "BAD", 0,
                       VOICE_IN("sales", ""), 9004);
    itest_metrics_wait_caught_up(&mi);
    cr_expect_eq(itest_metrics_applied(&mi), 1, "expected only the valid event applied");
    mi_expect("after bad input", &(struct mi_filter){0}, "entered=1");
    until = cc_time_mono_ms() + ITEST_METRICS_WAIT_MS;
    while (dl.count < 4 && cc_time_mono_ms() < until)
        cc_consumer_poll(watch, 100);
    cc_consumer_free(watch);
    cr_expect_eq(dl.count, 4, "expected 4 dead letters from group '%s', got %d", mi.group,
                 dl.count);
    cr_expect(itest_proc_wait_line(&mi.svc, "missing required field 'agent_id'", NULL, 0, 1000),
              "expected the reason of a reject in the service's log (%s)", mi.svc.log);
    itest_metrics_stop(&mi);
}
