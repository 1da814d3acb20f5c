/* Unit tests for services/metrics-aggregator/metrics_config.c: defaults and ranges of the
 * CC_METRICS_* table (thresholds among them) and the checks beyond ranges (time zone). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_config.h"

static void mc_clear_env(void)
{
    for (size_t i = 0; i < metrics_config_nvars; i++)
        unsetenv(metrics_config_vars[i].name);
}

TestSuite(metrics_config, .init = mc_clear_env, .timeout = 10);

/* Loads the table from the environment; rc and err as cc_config_load gives them. */
static int mc_load(struct metrics_config *cfg, cc_config_arena **arena, char *err, size_t n)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->common.service = METRICS_SERVICE;
    return cc_config_load(metrics_config_vars, metrics_config_nvars, cfg, &cfg->common,
                          METRICS_DEFAULT_HTTP_PORT, arena, err, n);
}

Test(metrics_config, has_the_documented_defaults)
{
    struct metrics_config cfg;
    cc_config_arena *arena = NULL;
    char err[256] = "";

    cr_assert_eq(mc_load(&cfg, &arena, err, sizeof(err)), 0, "expected defaults to load: %s", err);
    cr_expect_str_eq(cfg.consumer_group, "metrics-aggregator");
    cr_expect_eq(cfg.sl_default_s, 20);
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_VOICE], 10, "expected voice short abandon 10 s");
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_CHAT], 5, "expected chat short abandon 5 s");
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_SMS], 5);
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_EMAIL], 5);
    cr_expect_eq(cfg.fcr_days, 7);
    cr_expect_eq(cfg.snapshot_interval_s, 10);
    cr_expect_eq(cfg.stream_interval_ms, 1000);
    cr_expect_eq(cfg.pg_pool_size, 4);
    cr_expect_eq(cfg.batch_max, 4096);
    cr_expect_str_eq(cfg.timezone, "UTC");
    cr_expect_eq(metrics_config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    cc_config_free(arena);
}

Test(metrics_config, reads_each_channel_threshold_into_its_slot)
{
    struct metrics_config cfg;
    cc_config_arena *arena = NULL;
    char err[256] = "";

    setenv("CC_METRICS_SHORT_ABANDON_VOICE_S", "7", 1);
    setenv("CC_METRICS_SHORT_ABANDON_EMAIL_S", "0", 1);
    setenv("CC_METRICS_SL_DEFAULT_S", "30", 1);
    cr_assert_eq(mc_load(&cfg, &arena, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_VOICE], 7);
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_CHAT], 5);
    cr_expect_eq(cfg.short_abandon_s[METRICS_CH_EMAIL], 0, "expected 0 (no short abandons)");
    cr_expect_eq(cfg.sl_default_s, 30);
    cc_config_free(arena);
}

Test(metrics_config, refuses_out_of_range_values_naming_the_variable)
{
    static const char *const bad[][2] = {
        {"CC_METRICS_SL_DEFAULT_S", "0"}, {"CC_METRICS_SHORT_ABANDON_CHAT_S", "-1"},
        {"CC_METRICS_FCR_DAYS", "0"},     {"CC_METRICS_BATCH_MAX", "8193"},
        {"CC_METRICS_PG_POOL", "0"},      {"CC_METRICS_STREAM_INTERVAL_MS", "10"},
        {"CC_METRICS_SNAPSHOT_S", "-5"},  {"CC_METRICS_SHORT_ABANDON_SMS_S", "five"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct metrics_config cfg;
        cc_config_arena *arena = NULL;
        char err[256] = "";

        mc_clear_env();
        setenv(bad[i][0], bad[i][1], 1);
        cr_expect_eq(mc_load(&cfg, &arena, err, sizeof(err)), -EINVAL, "expected %s=%s refused",
                     bad[i][0], bad[i][1]);
        cr_expect(strstr(err, bad[i][0]) != NULL, "expected '%s' to name %s", err, bad[i][0]);
        cc_config_free(arena);
    }
}

Test(metrics_config, accepts_iana_zones_and_refuses_others)
{
    static const char *const good[] = {"UTC", "Europe/Berlin", "Etc/GMT+3", "Etc/GMT-11"};
    static const char *const bad[] = {"Mars/Base", "", "../etc/passwd", "/etc/localtime",
                                      "Europe/Ber lin"};
    struct metrics_config cfg;
    cc_config_arena *arena = NULL;
    char err[256] = "";

    cr_assert_eq(mc_load(&cfg, &arena, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cfg.timezone = good[i];
        cr_expect_eq(metrics_config_validate(&cfg, err, sizeof(err)), 0,
                     "expected '%s' accepted: %s", good[i], err);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.timezone = bad[i];
        cr_expect_eq(metrics_config_validate(&cfg, err, sizeof(err)), -EINVAL,
                     "expected '%s' refused", bad[i]);
        cr_expect(strstr(err, "CC_METRICS_TZ") != NULL, "expected '%s' to name CC_METRICS_TZ", err);
    }
    cc_config_free(arena);
}
