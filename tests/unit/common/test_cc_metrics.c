/* Unit tests for common/cc_metrics.c: registry and Prometheus text rendering. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cc_metrics.h"

static cc_metrics *reg;

static void metrics_setup(void)
{
    reg = cc_metrics_new();
    cr_assert_not_null(reg);
}

static void metrics_teardown(void)
{
    cc_metrics_free(reg);
    reg = NULL;
}

TestSuite(cc_metrics, .init = metrics_setup, .fini = metrics_teardown);

/* Renders the registry and compares the whole text. */
static void assert_render(const char *expected)
{
    size_t len = 0;
    char *text = cc_metrics_render(reg, &len);

    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text), "expected len to match the string");
    cr_assert_str_eq(text, expected, "expected:\n%s\ngot:\n%s", expected, text);
    free(text);
}

Test(cc_metrics, empty_registry_renders_nothing)
{
    assert_render("");
}

Test(cc_metrics, renders_counters_with_and_without_labels)
{
    struct cc_counter *a = cc_metrics_counter(reg, "cc_bus_messages_total", "Messages consumed.",
                                              "topic=\"cc.agents\"");
    struct cc_counter *b =
        cc_metrics_counter(reg, "cc_bus_messages_total", "ignored", "topic=\"cc.interactions\"");
    struct cc_counter *c = cc_metrics_counter(reg, "cc_up_total", "Starts.", NULL);

    cr_assert(a && b && c);
    cc_counter_add(a, 3);
    cc_counter_add(b, 1);
    cc_counter_add(a, 2);
    cc_counter_add(c, 1);
    assert_render("# HELP cc_bus_messages_total Messages consumed.\n"
                  "# TYPE cc_bus_messages_total counter\n"
                  "cc_bus_messages_total{topic=\"cc.agents\"} 5\n"
                  "cc_bus_messages_total{topic=\"cc.interactions\"} 1\n"
                  "# HELP cc_up_total Starts.\n"
                  "# TYPE cc_up_total counter\n"
                  "cc_up_total 1\n");
}

Test(cc_metrics, same_name_and_labels_return_the_same_metric)
{
    struct cc_counter *a = cc_metrics_counter(reg, "x_total", "h", "a=\"1\"");

    cr_assert_eq(cc_metrics_counter(reg, "x_total", "h", "a=\"1\""), a);
    cr_assert_neq(cc_metrics_counter(reg, "x_total", "h", "a=\"2\""), a);
    struct cc_gauge *g = cc_metrics_gauge(reg, "g", "h", NULL);
    cr_assert_eq(cc_metrics_gauge(reg, "g", "h", ""), g, "expected \"\" and NULL labels alike");
}

Test(cc_metrics, renders_gauges_as_shortest_exact_floats)
{
    struct cc_gauge *g = cc_metrics_gauge(reg, "cc_queue_depth", "Waiting.", "queue=\"q1\"");
    struct cc_gauge *h = cc_metrics_gauge(reg, "cc_queue_depth", "Waiting.", "queue=\"q2\"");
    struct cc_gauge *i = cc_metrics_gauge(reg, "cc_ratio", "A ratio.", NULL);
    struct cc_gauge *j = cc_metrics_gauge(reg, "cc_inf", "Infinite.", NULL);

    cc_gauge_set(g, 7);
    cc_gauge_add(g, -2.5);
    cc_gauge_set(h, 1e21);
    cc_gauge_set(i, 0.1);
    cc_gauge_set(j, -INFINITY);
    assert_render("# HELP cc_queue_depth Waiting.\n"
                  "# TYPE cc_queue_depth gauge\n"
                  "cc_queue_depth{queue=\"q1\"} 4.5\n"
                  "cc_queue_depth{queue=\"q2\"} 1e+21\n"
                  "# HELP cc_ratio A ratio.\n"
                  "# TYPE cc_ratio gauge\n"
                  "cc_ratio 0.1\n"
                  "# HELP cc_inf Infinite.\n"
                  "# TYPE cc_inf gauge\n"
                  "cc_inf -Inf\n");
}

Test(cc_metrics, histograms_count_cumulative_buckets_sum_and_count)
{
    const double bounds[] = {0.005, 0.01, 0.1, 1};
    struct cc_histogram *h = cc_metrics_histogram(reg, "cc_bus_latency_seconds", "Latency.",
                                                  "topic=\"cc.qa\"", bounds, 4);
    struct cc_histogram *n =
        cc_metrics_histogram(reg, "cc_plain_seconds", "Plain.", NULL, bounds, 2);

    cr_assert(h && n);
    cc_histogram_observe(h, 0.001); /* 0.005 */
    cc_histogram_observe(h, 0.005); /* 0.005: bounds are inclusive */
    cc_histogram_observe(h, 0.05);  /* 0.1 */
    cc_histogram_observe(h, 0.5);   /* 1 */
    cc_histogram_observe(h, 4);     /* +Inf */
    cc_histogram_observe(n, 0.5);
    assert_render("# HELP cc_bus_latency_seconds Latency.\n"
                  "# TYPE cc_bus_latency_seconds histogram\n"
                  "cc_bus_latency_seconds_bucket{topic=\"cc.qa\",le=\"0.005\"} 2\n"
                  "cc_bus_latency_seconds_bucket{topic=\"cc.qa\",le=\"0.01\"} 2\n"
                  "cc_bus_latency_seconds_bucket{topic=\"cc.qa\",le=\"0.1\"} 3\n"
                  "cc_bus_latency_seconds_bucket{topic=\"cc.qa\",le=\"1\"} 4\n"
                  "cc_bus_latency_seconds_bucket{topic=\"cc.qa\",le=\"+Inf\"} 5\n"
                  "cc_bus_latency_seconds_sum{topic=\"cc.qa\"} 4.556\n"
                  "cc_bus_latency_seconds_count{topic=\"cc.qa\"} 5\n"
                  "# HELP cc_plain_seconds Plain.\n"
                  "# TYPE cc_plain_seconds histogram\n"
                  "cc_plain_seconds_bucket{le=\"0.005\"} 0\n"
                  "cc_plain_seconds_bucket{le=\"0.01\"} 0\n"
                  "cc_plain_seconds_bucket{le=\"+Inf\"} 1\n"
                  "cc_plain_seconds_sum 0.5\n"
                  "cc_plain_seconds_count 1\n");
}

Test(cc_metrics, histogram_bounds_are_copied_and_must_match_on_reuse)
{
    double bounds[] = {1, 2};
    struct cc_histogram *h = cc_metrics_histogram(reg, "h_seconds", "h", NULL, bounds, 2);

    bounds[1] = 3;
    cr_assert_null(cc_metrics_histogram(reg, "h_seconds", "h", NULL, bounds, 2),
                   "expected other bounds for the same series refused");
    bounds[1] = 2;
    cr_assert_eq(cc_metrics_histogram(reg, "h_seconds", "h", NULL, bounds, 2), h);
}

Test(cc_metrics, escapes_backslashes_and_newlines_in_help)
{
    cc_metrics_counter(reg, "a_total", "line one\nback\\slash", NULL);
    assert_render("# HELP a_total line one\\nback\\\\slash\n"
                  "# TYPE a_total counter\n"
                  "a_total 0\n");
}

/* Inline arrays, not pointers: Criterion hands parameters to a separate worker process. */
struct reg_case {
    char name[16];
    char labels[32];
    char why[48];
};

ParameterizedTestParameters(cc_metrics, refuses_bad_names_and_label_lists)
{
    static struct reg_case cases[] = {
        {"", "", "empty name"},
        {"1abc", "", "leading digit"},
        {"a-b", "", "dash in name"},
        {"a b", "", "space in name"},
        {"ok", "topic", "label without value"},
        {"ok", "topic=cc", "unquoted value"},
        {"ok", "topic=\"cc", "unterminated value"},
        {"ok", "topic=\"a\"b=\"c\"", "missing comma"},
        {"ok", "topic=\"a\",", "trailing comma"},
        {"ok", "1t=\"a\"", "label name with a leading digit"},
        {"ok", "t=\"a\nb\"", "raw newline in value"},
        {"ok", "t=\"a\\x\"", "unknown escape"},
        {"ok", "{t=\"a\"}", "braces included"},
    };
    return cr_make_param_array(struct reg_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct reg_case *c, cc_metrics, refuses_bad_names_and_label_lists)
{
    cr_assert_null(cc_metrics_counter(reg, c->name, "h", c->labels), "expected refusal: %s",
                   c->why);
}

Test(cc_metrics, accepts_escaped_quotes_and_several_labels)
{
    struct cc_counter *c = cc_metrics_counter(reg, "ok_total", "h", "a=\"x\\\"y\",b_2=\"\"");

    cr_assert_not_null(c, "expected a valid label list");
}

Test(cc_metrics, refuses_a_name_registered_with_another_type)
{
    const double b[] = {1};

    cr_assert_not_null(cc_metrics_counter(reg, "m", "h", NULL));
    cr_assert_null(cc_metrics_gauge(reg, "m", "h", NULL));
    cr_assert_null(cc_metrics_histogram(reg, "m", "h", NULL, b, 1));
}

Test(cc_metrics, refuses_bad_histogram_bounds_and_le_labels)
{
    const double unsorted[] = {1, 0.5}, dup[] = {1, 1}, inf[] = {1, INFINITY}, ok[] = {1};

    cr_assert_null(cc_metrics_histogram(reg, "a", "h", NULL, unsorted, 2));
    cr_assert_null(cc_metrics_histogram(reg, "a", "h", NULL, dup, 2));
    cr_assert_null(cc_metrics_histogram(reg, "a", "h", NULL, inf, 2));
    cr_assert_null(cc_metrics_histogram(reg, "a", "h", NULL, ok, 0));
    cr_assert_null(cc_metrics_histogram(reg, "a", "h", "le=\"1\"", ok, 1));
}

struct hammer_ctx {
    struct cc_counter *c;
    struct cc_gauge *g;
    struct cc_histogram *h;
};

static void *hammer(void *arg)
{
    struct hammer_ctx *ctx = arg;

    for (int i = 0; i < 100000; i++) {
        cc_counter_add(ctx->c, 1);
        cc_gauge_add(ctx->g, 1);
        cc_histogram_observe(ctx->h, (i % 4) * 0.5);
    }
    return NULL;
}

Test(cc_metrics, concurrent_updates_lose_nothing, .timeout = 30)
{
    const double bounds[] = {0.25, 0.75};
    struct hammer_ctx ctx = {
        cc_metrics_counter(reg, "n_total", "h", NULL),
        cc_metrics_gauge(reg, "g", "h", NULL),
        cc_metrics_histogram(reg, "l", "h", NULL, bounds, 2),
    };
    pthread_t th[4];

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, &ctx);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_render("# HELP n_total h\n# TYPE n_total counter\nn_total 400000\n"
                  "# HELP g h\n# TYPE g gauge\ng 400000\n"
                  "# HELP l h\n# TYPE l histogram\n"
                  "l_bucket{le=\"0.25\"} 100000\nl_bucket{le=\"0.75\"} 200000\n"
                  "l_bucket{le=\"+Inf\"} 400000\nl_sum 300000\nl_count 400000\n");
}

Test(cc_metrics, free_accepts_null)
{
    cc_metrics_free(NULL);
}
