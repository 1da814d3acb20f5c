/*
 * test_metrics_wallboard: the wallboard page of cc-metrics-aggregator in headless Chromium.
 *
 * The real service runs on the local stack for a tenant of the test's own; the test produces a
 * scenario of agent and interaction events on the dev broker, then runs
 * tests/browser/wallboard.mjs (playwright-core driving Debian's /usr/bin/chromium), which loads
 * /wallboard/?token=..., waits for the figures computed by hand below, checks that the oldest
 * wait ticks, then -- after the test produced one more event and wrote the figures expected
 * next -- that the page followed the stream without a reload, and keeps a screenshot in
 * $CC_TEST_ARTIFACT_DIR (default <top>/.stack/artifacts)/wallboard.png.
 *
 * Missing chromium, node or tests/browser/node_modules fail the test, saying what to install.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc_bus.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_metrics.h"
#include "itest_proc.h"
#include "metrics_wallboard.h"

#define WB_CHROMIUM  "/usr/bin/chromium"
#define WB_PAGE_WAIT 60000 /* ms the page may take to show a set of figures */

struct wb {
    struct itest_metrics m; /* the service, the tenant (token ITEST_METRICS_TOKEN), a producer */
    bool up;                /* m set up: to tear down */
    char dir[256];          /* scratch: the expectation files */
    struct itest_proc browser;
    int64_t t0_at; /* the scenario's first event, as an offset from m.base_ms */
    int seq;       /* events sent: each one's id, and 10 ms after the previous one */
};

static struct wb wb;

static void wb_setup(void)
{
    memset(&wb, 0, sizeof(wb));
}

static void wb_teardown(void)
{
    itest_proc_kill(&wb.browser);
    if (wb.up)
        itest_metrics_teardown(&wb.m);
    if (wb.dir[0]) {
        char path[320];

        snprintf(path, sizeof(path), "%s/initial.json", wb.dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/update.json", wb.dir);
        unlink(path);
        rmdir(wb.dir);
    }
}

TestSuite(metrics_wallboard, .init = wb_setup, .fini = wb_teardown, .timeout = 60);

/* ---- prerequisites ---------------------------------------------------------------------- */

static bool wb_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];

    while (path && *path) {
        size_t n = strcspn(path, ":");

        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* Fails the test, naming what to install, unless chromium, node and playwright-core are there. */
static void wb_require_browser(void)
{
    char pkg[512];
    struct stat st;

    cr_assert(access(WB_CHROMIUM, X_OK) == 0,
              "expected Debian's chromium at " WB_CHROMIUM
              " for the wallboard test: run deploy/local/install-deps.sh (as root)");
    cr_assert(wb_in_path("node"),
              "expected node in PATH for the wallboard test: run deploy/local/install-deps.sh");
    snprintf(pkg, sizeof(pkg), "%s/tests/browser/node_modules/playwright-core/package.json",
             itest_env("CC_TEST_TOP"));
    cr_assert(stat(pkg, &st) == 0,
              "expected playwright-core in tests/browser/node_modules (no %s): run "
              "deploy/local/install-deps.sh (it runs npm ci --prefix tests/browser)",
              pkg);
}

/* ---- events ----------------------------------------------------------------------------- */

/* Sends one event of the tenant (data: JSON with single quotes for double quotes, printf-style)
 * at `at` ms after m.base_ms, or, when at is 0, 10 ms after the previous scenario event. Subjects
 * "I1".."I8" are interactions (the fixture prefixes its tag), "a1".. agents. */
static void wb_send(const char *topic, const char *type, const char *subject, int64_t at,
                    const char *fmt, ...)
{
    char data[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(data, sizeof(data), fmt, ap);
    va_end(ap);
    wb.seq++;
    itest_metrics_send(&wb.m, topic, type, subject, at ? at : wb.t0_at + wb.seq * 10, data, wb.seq);
}

static void wb_agent_login(const char *agent, const char *queue, const char *state)
{
    wb_send(CC_TOPIC_AGENTS, "cc.agent.logged_in", agent, 0,
            "{'capacity': {'voice': 1}, 'queue_ids': ['%s'], 'state': '%s'%s}", queue, state,
            strcmp(state, "not_ready") == 0 ? ", 'reason_code': 'break'" : "");
}

static void wb_agent_state(const char *agent, const char *from, const char *to)
{
    wb_send(CC_TOPIC_AGENTS, "cc.agent.state_changed", agent, 0,
            "{'from_state': '%s', 'to_state': '%s', 'duration_ms': 10, 'changed_by': 'system'}",
            from, to);
}

/* created + queued in queue (SL threshold sl_s), at `at` (0: the next scenario time). */
static void wb_arrive(const char *id, const char *queue, int sl_s, int64_t at)
{
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.created", id, at,
            "{'channel': 'voice', 'direction': 'inbound', 'queue_id': '%s', "
            "'from': '+4917600000000', 'to': '+4930555000100', 'priority': 10}",
            queue);
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.queued", id, at ? at + 5 : 0,
            "{'queue_id': '%s', 'priority': 10, 'position': 1, 'sl_threshold_s': %d}", queue, sl_s);
}

static void wb_answer(const char *id, const char *queue, const char *agent, int wait_ms, int64_t at)
{
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", id, at,
            "{'answered_by': 'agent', 'agent_id': '%s', 'queue_id': '%s', 'wait_ms': %d}", agent,
            queue, wait_ms);
}

static void wb_abandon(const char *id, const char *queue, int wait_ms)
{
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.abandoned", id, 0,
            "{'queue_id': '%s', 'wait_ms': %d}", queue, wait_ms);
}

/* ended (talk, hold), then a wrap-up of wrapup_ms when > 0. */
static void wb_end(const char *id, const char *queue, const char *agent, int talk_ms, int hold_ms,
                   int wrapup_ms)
{
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", id, 0,
            "{'ended_by': 'customer', 'talk_ms': %d, 'hold_ms': %d, 'duration_ms': %d, "
            "'agent_id': '%s', 'queue_id': '%s', 'reason': 'normal'}",
            talk_ms, hold_ms, talk_ms + hold_ms + 1000, agent, queue);
    if (wrapup_ms > 0)
        wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.wrapup_completed", id, 0,
                "{'agent_id': '%s', 'wrapup_ms': %d, 'completed_by': 'agent'}", agent, wrapup_ms);
}

static void wb_survey(const char *id, const char *agent, int csat, int nps)
{
    wb_send(CC_TOPIC_INTERACTIONS, "cc.interaction.survey_completed", id, 0,
            "{'csat': %d, 'nps': %d, 'agent_id': '%s'}", csat, nps, agent);
}

/* Now, as an offset from m.base_ms. */
static int64_t wb_now_at(void)
{
    return cc_time_now_ms() - wb.m.base_ms;
}

/*
 * The scenario, today in the fixture's time zone (where it is about noon: no run straddles
 * midnight). SL thresholds: sales 20 s, support 30 s; short abandon (voice) under 10 s.
 *
 * Agents: a1 sales available; a2 sales busy; a3 sales not ready (break); a4 support wrap-up.
 *   all:     logged in 4, available 1, on contact 1, wrap-up 1, not ready 1 (break 1)
 *   sales:   logged in 3, available 1, on contact 1, wrap-up 0, not ready 1
 *   support: logged in 1, available 0, on contact 0, wrap-up 1, not ready 0
 * Interactions:
 *   I1 sales    answered a2 after  5 s (in SL); ended talk 60 s hold 10 s; wrap-up 20 s
 *   I2 sales    answered a1 after 12 s (in SL); ended talk 120 s hold 0;   wrap-up 10 s
 *   I3 sales    answered a2 after 30 s (out of SL); still talking
 *   I4 sales    abandoned after 25 s (counts, out of SL)
 *   I5 sales    abandoned after 3 s (short: apart, in no figure below)
 *   I6 sales    waiting since t0, 50 s before the events are sent
 *   I7 sales    waiting since 8 s before the events are sent
 *   I8 support  answered a4 after 40 s (out of SL); ended talk 30 s hold 0; no wrap-up yet
 *   surveys: I1 csat 5 nps 10, I2 csat 4 nps 9, I8 csat 2 nps 3
 * Figures (the page rounds ratios to whole percents and averages to whole seconds):
 *   sales:   waiting 2, answered 3, abandoned 1, SL 2/3 = 67%
 *            AHT (talk 180 + hold 10 + wrap-up 30)/2 handled = 110 s; estimated wait
 *            2 waiting x 110 s / 2 agents working (a1, a2) = 110 s -> 1:50
 *   support: waiting 0, answered 1, abandoned 0, SL 0/1 = 0%
 *   today:   answered 4, abandoned 1, handled 3 (I1, I2, I8)
 *            SL 2/4 = 50%; abandon rate 1/(4+1) = 20%
 *            ASA (5+12+30+40)/4 = 21.75 s -> 0:22
 *            AHT (talk 210 + hold 10 + wrap-up 30)/3 handled = 83.3 s -> 1:23
 *            CSAT 2 satisfied (4 or 5) / 3 = 67%; NPS (2 promoters - 1 detractor)/3 = +33
 * Then one more event: I7 answered by a1 after 9 s (in SL):
 *   sales waiting 1, answered 4, SL 3/4 = 75%; today answered 5, SL 3/5 = 60%,
 *   ASA (87+9)/5 = 19.2 s -> 0:19.
 */
static void wb_scenario(void)
{
    static const char *const sales[] = {"I1", "I2", "I3", "I4", "I5"};
    int64_t now_at = wb_now_at();

    wb.t0_at = now_at - 50000;
    wb_agent_login("a1", "sales", "available");
    wb_agent_login("a2", "sales", "available");
    wb_agent_state("a2", "available", "busy");
    wb_agent_login("a3", "sales", "not_ready");
    wb_agent_login("a4", "support", "available");
    wb_agent_state("a4", "available", "busy");
    wb_agent_state("a4", "busy", "wrap_up");

    wb_arrive("I6", "sales", 20, wb.t0_at);
    for (size_t i = 0; i < sizeof(sales) / sizeof(sales[0]); i++)
        wb_arrive(sales[i], "sales", 20, 0);
    wb_arrive("I8", "support", 30, 0);
    wb_answer("I1", "sales", "a2", 5000, 0);
    wb_answer("I2", "sales", "a1", 12000, 0);
    wb_answer("I3", "sales", "a2", 30000, 0);
    wb_abandon("I4", "sales", 25000);
    wb_abandon("I5", "sales", 3000);
    wb_answer("I8", "support", "a4", 40000, 0);
    wb_end("I1", "sales", "a2", 60000, 10000, 20000);
    wb_end("I2", "sales", "a1", 120000, 0, 10000);
    wb_end("I8", "support", "a4", 30000, 0, 0);
    wb_survey("I1", "a2", 5, 10);
    wb_survey("I2", "a1", 4, 9);
    wb_survey("I8", "a4", 2, 3);
    wb_arrive("I7", "sales", 20, now_at - 8000);
    itest_metrics_wait_caught_up(&wb.m);
}

/* What the page must show (data-testid, text) once the scenario is in: see wb_scenario. */
static const char *const wb_initial[][2] = {
    {"kpi-waiting", "2"},
    {"kpi-answered", "4"},
    {"kpi-abandoned", "1"},
    {"kpi-handled", "3"},
    {"kpi-service-level", "50%"},
    {"kpi-abandon-rate", "20%"},
    {"kpi-asa", "0:22"},
    {"kpi-aht", "1:23"},
    {"kpi-csat", "67%"},
    {"kpi-nps", "+33"},
    {"queue-sales-waiting", "2"},
    {"queue-sales-answered", "3"},
    {"queue-sales-abandoned", "1"},
    {"queue-sales-service-level", "67%"},
    {"queue-sales-estimated-wait", "1:50"},
    {"queue-sales-agents-available", "1"},
    {"queue-sales-agents-on-contact", "1"},
    {"queue-sales-agents-not-ready", "1"},
    {"queue-sales-agents-logged-in", "3"},
    {"queue-support-waiting", "0"},
    {"queue-support-answered", "1"},
    {"queue-support-service-level", "0%"},
    {"queue-support-agents-wrap-up", "1"},
    {"queue-support-agents-logged-in", "1"},
    {"agents-logged-in", "4"},
    {"agents-available", "1"},
    {"agents-on-contact", "1"},
    {"agents-wrap-up", "1"},
    {"agents-not-ready", "1"},
    {"agents-not-ready-break", "1"},
};

/* ... and after the one more event (I7 answered). */
static const char *const wb_update[][2] = {
    {"queue-sales-waiting", "1"},
    {"queue-sales-answered", "4"},
    {"queue-sales-service-level", "75%"},
    {"kpi-waiting", "1"},
    {"kpi-answered", "5"},
    {"kpi-service-level", "60%"},
    {"kpi-asa", "0:19"},
};

/* {"<testid>": "<text>", ...} from n pairs: a new reference. */
static json_t *wb_expectations(const char *const pairs[][2], size_t n)
{
    json_t *doc = json_object();

    cr_assert(doc, "expected memory for the expectations");
    for (size_t i = 0; i < n; i++)
        json_object_set_new(doc, pairs[i][0], json_string(pairs[i][1]));
    return doc;
}

/* ---- the browser -------------------------------------------------------------------------- */

/* Writes doc (stolen) to dir/name atomically (the browser script polls for the file). */
static void wb_write_json(const char *name, json_t *doc)
{
    char path[320], tmp[330];

    snprintf(path, sizeof(path), "%s/%s", wb.dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(json_dump_file(doc, tmp, JSON_INDENT(2)), 0, "expected to write %s", tmp);
    json_decref(doc);
    cr_assert_eq(rename(tmp, path), 0, "expected to rename %s: %s", tmp, strerror(errno));
}

/* BUILDROOT/tests/logs/<name>.log (kept for post-mortems). */
static void wb_log_path(char *out, size_t cap, const char *name)
{
    char dir[400];

    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    snprintf(out, cap, "%s/%s.log", dir, name);
}

static void wb_artifact(char *out, size_t cap)
{
    const char *dir = getenv("CC_TEST_ARTIFACT_DIR");

    if (dir && *dir)
        snprintf(out, cap, "%s/wallboard.png", dir);
    else
        snprintf(out, cap, "%s/.stack/artifacts/wallboard.png", itest_env("CC_TEST_TOP"));
}

static void wb_browser_start(const char *png)
{
    char script[512], url[160], expect[320], update[320], log[512], name[96];
    const char *argv[] = {"node",     script, "--url",        url, "--expect",     expect,
                          "--update", update, "--screenshot", png, "--timeout-ms", "60000",
                          NULL};

    snprintf(script, sizeof(script), "%s/tests/browser/wallboard.mjs", itest_env("CC_TEST_TOP"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/wallboard/?token=%s", wb.m.port,
             ITEST_METRICS_TOKEN);
    snprintf(expect, sizeof(expect), "%s/initial.json", wb.dir);
    snprintf(update, sizeof(update), "%s/update.json", wb.dir);
    wb_log_path(log, sizeof(log), itest_unique(name, sizeof(name), "wallboard"));
    cr_assert_eq(itest_proc_spawn(&wb.browser, (char *const *)argv, NULL, log), 0,
                 "expected node to start");
}

/* Waits for a "wallboard: <what>" line of the browser script; fails with its FAIL line. */
static void wb_browser_expect(const char *what, int timeout_ms)
{
    char needle[96], line[2048] = "";

    snprintf(needle, sizeof(needle), "wallboard: %s", what);
    if (itest_proc_wait_line(&wb.browser, needle, NULL, 0, timeout_ms))
        return;
    itest_proc_wait_line(&wb.browser, "wallboard: FAIL", line, sizeof(line), 0);
    cr_assert_fail("expected the page to report '%s' within %d ms: %s (see %s)", what, timeout_ms,
                   line[0] ? line : "no FAIL line", wb.browser.log);
}

Test(metrics_wallboard, embeds_the_page_files_byte_for_byte)
{
    static const char *const files[] = {"index.html", "wallboard.js", "wallboard.css"};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const struct metrics_asset *a = metrics_wallboard_asset(files[i]);
        char path[512];
        unsigned char *buf;
        FILE *f;
        long len;

        cr_assert(a, "expected '%s' among the embedded files", files[i]);
        cr_assert_str_eq(a->path, files[i], "expected the asset named '%s'", files[i]);
        snprintf(path, sizeof(path), "%s/services/metrics-aggregator/wallboard/%s",
                 itest_env("CC_TEST_TOP"), files[i]);
        f = fopen(path, "rb");
        cr_assert(f, "expected to read %s", path);
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        buf = malloc((size_t)len);
        cr_assert(buf && fread(buf, 1, (size_t)len, f) == (size_t)len, "expected %s read", path);
        fclose(f);
        cr_expect_eq(a->len, (size_t)len, "expected %s embedded whole (%ld bytes), got %zu",
                     files[i], len, a->len);
        cr_expect(a->len == (size_t)len && memcmp(a->data, buf, a->len) == 0,
                  "expected the embedded %s to equal the file (rebuild after editing it)",
                  files[i]);
        free(buf);
    }
    cr_expect_str_eq(metrics_wallboard_asset("index.html")->content_type,
                     "text/html; charset=utf-8");
    cr_expect_str_eq(metrics_wallboard_asset("wallboard.js")->content_type,
                     "text/javascript; charset=utf-8");
    cr_expect_str_eq(metrics_wallboard_asset("wallboard.css")->content_type,
                     "text/css; charset=utf-8");
}

Test(metrics_wallboard, finds_no_file_outside_the_page)
{
    static const char *const names[] = {"",           "/index.html", "index.htm",    "../main.c",
                                        "INDEX.HTML", "wallboard",   "wallboard.js/"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_expect_null(metrics_wallboard_asset(names[i]), "expected no asset named '%s'", names[i]);
    cr_expect_null(metrics_wallboard_asset(NULL), "expected no asset for NULL");
}

Test(metrics_wallboard, shows_the_scenario_and_follows_the_stream_in_chromium, .timeout = 240)
{
    char png[512];
    json_t *initial, *update;
    int rc;

    wb_require_browser();
    snprintf(wb.dir, sizeof(wb.dir), "/tmp/cc-wallboard-XXXXXX");
    cr_assert(mkdtemp(wb.dir), "expected a scratch directory: %s", strerror(errno));
    wb_artifact(png, sizeof(png));
    unlink(png); /* a screenshot of an earlier run must not pass for this one's */

    itest_metrics_setup(&wb.m, "wb");
    wb.up = true;
    itest_metrics_start(&wb.m, (const char *const[]){"CC_METRICS_STREAM_INTERVAL_MS=200",
                                                     "CC_METRICS_SNAPSHOT_S=0", NULL});
    wb_scenario();

    initial = wb_expectations(wb_initial, sizeof(wb_initial) / sizeof(wb_initial[0]));
    json_object_set_new(initial, "ticking",
                        json_pack("[s, s]", "queue-sales-oldest-wait", "kpi-oldest-wait"));
    wb_write_json("initial.json", initial);
    wb_browser_start(png);
    wb_browser_expect("initial figures ok", WB_PAGE_WAIT + 30000);

    /* one more event, while the page is open */
    wb_answer("I7", "sales", "a1", 9000, wb_now_at());
    itest_metrics_wait_caught_up(&wb.m);
    update = wb_expectations(wb_update, sizeof(wb_update) / sizeof(wb_update[0]));
    wb_write_json("update.json", update);
    wb_browser_expect("updated without reload ok", WB_PAGE_WAIT + 10000);
    wb_browser_expect("screenshot ", 15000);

    rc = itest_proc_wait(&wb.browser, 30000);
    cr_assert_eq(rc, 0, "expected the browser script to exit 0, got %d (see %s)", rc,
                 wb.browser.log);
    cr_assert(access(png, R_OK) == 0, "expected the screenshot %s", png);
    fprintf(stderr, "metrics_wallboard: screenshot %s\n", png);

    itest_metrics_stop(&wb.m);
}
