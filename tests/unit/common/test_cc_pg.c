/* Unit tests for common/cc_pg.c: migration file names and their ordering (no server needed). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_pg.h"

static char pg_unit_dir[64];

static void pg_unit_setup(void)
{
    snprintf(pg_unit_dir, sizeof(pg_unit_dir), "/tmp/cc_pg_unit.XXXXXX");
    cr_assert_not_null(mkdtemp(pg_unit_dir), "expected a temporary directory");
}

static void pg_unit_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_unit_dir);
    cr_assert_eq(system(cmd), 0, "expected the temporary directory to be removed");
}

TestSuite(cc_pg, .init = pg_unit_setup, .fini = pg_unit_teardown);

static void pg_unit_touch(const char *name)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", pg_unit_dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "expected to create '%s'", path);
    fputs("SELECT 1;\n", f);
    fclose(f);
}

struct pg_name_case {
    char file[64];
    int rc;
    long version;
};

ParameterizedTestParameters(cc_pg, parses_migration_file_names)
{
    static struct pg_name_case cases[] = {
        {"001_create_agents.sql", 0, 1},
        {"12_add-column.sql", 0, 12},
        {"000000000000000042_x.sql", 0, 42},
        {"007_Mixed_Case9.sql", 0, 7},
        {"000_zero.sql", -EINVAL, 0},
        {"001.sql", -EINVAL, 0},
        {"001_.sql", -EINVAL, 0},
        {"_name.sql", -EINVAL, 0},
        {"abc_name.sql", -EINVAL, 0},
        {"001_name.SQL", -EINVAL, 0},
        {"001_name.sql.bak", -EINVAL, 0},
        {"001_with space.sql", -EINVAL, 0},
        {"001-name.sql", -EINVAL, 0},
        {"1234567890123456789_too_long.sql", -EINVAL, 0},
        {"", -EINVAL, 0},
    };
    return cr_make_param_array(struct pg_name_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct pg_name_case *c, cc_pg, parses_migration_file_names)
{
    long version = -1;
    int rc = cc_pg_migration_parse_name(c->file, &version);

    cr_assert_eq(rc, c->rc, "expected '%s' to give %d, got %d", c->file, c->rc, rc);
    if (c->rc == 0)
        cr_assert_eq(version, c->version, "expected version %ld for '%s', got %ld", c->version,
                     c->file, version);
}

Test(cc_pg, lists_migrations_in_numeric_order_ignoring_other_files)
{
    struct cc_pg_migration *list = NULL;
    size_t n = 0;

    pg_unit_touch("10_ten.sql");
    pg_unit_touch("002_two.sql");
    pg_unit_touch("1_one.sql");
    pg_unit_touch("README.md");
    pg_unit_touch(".hidden.sql");
    cr_assert_eq(cc_pg_migration_list(pg_unit_dir, &list, &n), 0, "expected the list to load");
    cr_assert_eq(n, 3, "expected 3 migrations, got %zu", n);
    cr_assert_str_eq(list[0].file, "1_one.sql", "expected version 1 first");
    cr_assert_str_eq(list[1].file, "002_two.sql", "expected version 2 second");
    cr_assert_str_eq(list[2].file, "10_ten.sql", "expected version 10 last, not lexical order");
    cr_assert_eq(list[2].version, 10, "expected version 10");
    free(list);
}

Test(cc_pg, lists_an_empty_directory_as_no_migrations)
{
    struct cc_pg_migration *list = (void *)1;
    size_t n = 99;

    cr_assert_eq(cc_pg_migration_list(pg_unit_dir, &list, &n), 0, "expected success");
    cr_assert_eq(n, 0, "expected no migrations");
    cr_assert_null(list, "expected a NULL list for an empty directory");
}

Test(cc_pg, refuses_two_migrations_with_one_version)
{
    struct cc_pg_migration *list = NULL;
    size_t n = 0;

    pg_unit_touch("001_a.sql");
    pg_unit_touch("01_b.sql");
    cr_assert_eq(cc_pg_migration_list(pg_unit_dir, &list, &n), -EINVAL,
                 "expected a duplicated version to be refused");
}

Test(cc_pg, refuses_a_badly_named_sql_file)
{
    struct cc_pg_migration *list = NULL;
    size_t n = 0;

    pg_unit_touch("001_ok.sql");
    pg_unit_touch("init.sql");
    cr_assert_eq(cc_pg_migration_list(pg_unit_dir, &list, &n), -EINVAL,
                 "expected 'init.sql' to be refused rather than silently skipped");
}

Test(cc_pg, reports_a_missing_directory)
{
    struct cc_pg_migration *list = NULL;
    size_t n = 0;

    cr_assert_eq(cc_pg_migration_list("/nonexistent/cc_pg/migrations", &list, &n), -ENOENT,
                 "expected -ENOENT for a missing directory");
}
