/* Integration tests for common/cc_pg.c against the real PostgreSQL of the local stack:
 * queries, transactions, reconnect, and the migrations runner (fixtures in migrations/). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_pg.h"
#include "itest.h"

#define PG_IT_MIGRATORS 4

static cc_pg *pg_it;          /* the connection under test */
static cc_pg *pg_it_admin;    /* a second connection that plays the operator */
static char pg_it_schema[64]; /* unique schema of this test, dropped afterwards */
static char pg_it_tmpdir[64]; /* scratch copy of fixtures, "" when unused */

/* itest_unique() names may hold characters a schema name may not. */
static void pg_it_sanitize(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
        else if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            *s = '_';
    }
}

static void pg_it_setup(void)
{
    const char *dsn = itest_env("CC_PG_DSN");

    itest_unique(pg_it_schema, sizeof(pg_it_schema), "itest_pg");
    pg_it_sanitize(pg_it_schema);
    pg_it = cc_pg_new(dsn);
    pg_it_admin = cc_pg_new(dsn);
    cr_assert_not_null(pg_it, "expected a connection to CC_PG_DSN");
    cr_assert_not_null(pg_it_admin, "expected a second connection to CC_PG_DSN");
    pg_it_tmpdir[0] = '\0';
}

static void pg_it_teardown(void)
{
    char sql[160], cmd[128];

    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", pg_it_schema);
    cc_pg_exec(pg_it_admin, sql, 0, NULL);
    if (pg_it_tmpdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_it_tmpdir);
        cr_assert_eq(system(cmd), 0, "expected the scratch directory to be removed");
    }
    cc_pg_free(pg_it);
    cc_pg_free(pg_it_admin);
}

TestSuite(pg, .init = pg_it_setup, .fini = pg_it_teardown, .timeout = 60);

/* ---- helpers -------------------------------------------------------------------------------- */

static void pg_it_fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/tests/integration/migrations/%s", itest_env("CC_TEST_TOP"), name);
}

/* Copies tmpl into out with every "{S}" replaced by the test schema. */
static void pg_it_expand(const char *tmpl, char *out, size_t n)
{
    size_t len = 0, slen = strlen(pg_it_schema);

    for (const char *p = tmpl; *p; p++) {
        if (strncmp(p, "{S}", 3) == 0) {
            cr_assert_lt(len + slen, n, "expected the expanded SQL to fit");
            memcpy(out + len, pg_it_schema, slen);
            len += slen;
            p += 2;
        } else {
            cr_assert_lt(len + 1, n, "expected the expanded SQL to fit");
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

/* Runs tmpl ("{S}" = the test schema) on c and returns the first column of the first row, or
 * "<null>"/"<none>", as a malloc'd string. */
static char *pg_it_value(cc_pg *c, const char *tmpl)
{
    char sql[2048];
    PGresult *res;
    char *v;

    pg_it_expand(tmpl, sql, sizeof(sql));
    res = cc_pg_query(c, sql, 0, NULL);
    cr_assert_not_null(res, "expected '%s' to work (sqlstate %s)", sql, cc_pg_last_sqlstate(c));
    if (PQntuples(res) == 0)
        v = strdup("<none>");
    else if (PQgetisnull(res, 0, 0))
        v = strdup("<null>");
    else
        v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static long pg_it_long(cc_pg *c, const char *tmpl)
{
    char *v = pg_it_value(c, tmpl);
    long n = strtol(v, NULL, 10);

    free(v);
    return n;
}

/* A dump of everything migrations could have touched in the schema: relations (with oid and
 * relfilenode, which change if a table is recreated or rewritten), columns, and every row with
 * its xmin (which changes if a row is rewritten). */
static char *pg_it_dump(void)
{
    return pg_it_value(pg_it_admin,
                       "SELECT concat_ws(E'\\n',"
                       " (SELECT string_agg(format('%s|%s|%s|%s', c.oid, c.relname, c.relkind,"
                       "  c.relfilenode), ',' ORDER BY c.relname) FROM pg_class c"
                       "  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{S}'),"
                       " (SELECT string_agg(format('%s.%s:%s:%s:%s:%s', table_name, column_name,"
                       "  ordinal_position, data_type, is_nullable, column_default), ','"
                       "  ORDER BY table_name, ordinal_position)"
                       "  FROM information_schema.columns WHERE table_schema = '{S}'),"
                       " (SELECT string_agg(t.xmin::text || ':' || t::text, ',' ORDER BY t.id)"
                       "  FROM \"{S}\".items t),"
                       " (SELECT string_agg(m.xmin::text || ':' || m::text, ',' ORDER BY m.version)"
                       "  FROM \"{S}\".schema_migrations m))");
}

static bool pg_it_table_exists(const char *table)
{
    char sql[256];
    bool exists;
    char *v;

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{S}' AND "
             "table_name = '%s'",
             table);
    v = pg_it_value(pg_it_admin, sql);
    exists = strcmp(v, "1") == 0;
    free(v);
    return exists;
}

/* Copies a fixture directory into a fresh scratch directory and returns its path. */
static const char *pg_it_copy_fixture(const char *name)
{
    char src[512], cmd[1200];

    pg_it_fixture(src, sizeof(src), name);
    snprintf(pg_it_tmpdir, sizeof(pg_it_tmpdir), "/tmp/cc_pg_itest.XXXXXX");
    cr_assert_not_null(mkdtemp(pg_it_tmpdir), "expected a scratch directory");
    snprintf(cmd, sizeof(cmd), "cp '%s'/*.sql '%s'/", src, pg_it_tmpdir);
    cr_assert_eq(system(cmd), 0, "expected '%s' to copy", cmd);
    return pg_it_tmpdir;
}

/* ---- queries and transactions --------------------------------------------------------------- */

Test(pg, runs_parameterised_queries_with_nulls)
{
    const char *params[] = {NULL, "41", "it's; DROP TABLE x"};
    PGresult *res;

    res = cc_pg_query(pg_it, "SELECT $1::text IS NULL, $2::int + 1, $3::text, $1::text", 3, params);
    cr_assert_not_null(res, "expected the query to work");
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "t", "expected a NULL pointer to be SQL NULL");
    cr_assert_str_eq(PQgetvalue(res, 0, 1), "42", "expected '41' to arrive as a number");
    cr_assert_str_eq(PQgetvalue(res, 0, 2), "it's; DROP TABLE x",
                     "expected the text parameter back verbatim, never spliced into SQL");
    cr_assert(PQgetisnull(res, 0, 3), "expected NULL back as NULL");
    PQclear(res);
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "", "expected no sqlstate after a success");
}

Test(pg, reports_the_sqlstate_of_a_failure)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"; ", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), 0, "expected the schema to be created");
    snprintf(sql, sizeof(sql), "CREATE TABLE \"%s\".t (id int PRIMARY KEY)", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), 0, "expected the table to be created");
    snprintf(sql, sizeof(sql), "INSERT INTO \"%s\".t VALUES (1)", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), 0, "expected the first insert to work");
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), -EIO, "expected a duplicate key to fail");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "23505", "expected unique_violation");
    cr_assert_null(cc_pg_query(pg_it, "SELEC 1", 0, NULL), "expected a syntax error to fail");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "42601", "expected syntax_error");
    cr_assert(cc_pg_ping(pg_it), "expected the connection to stay usable");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "", "expected the sqlstate cleared by success");
}

Test(pg, commits_and_rolls_back_transactions)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"; ", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), 0, "expected the schema to be created");
    snprintf(sql, sizeof(sql), "CREATE TABLE \"%s\".items (id int PRIMARY KEY)", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it, sql, 0, NULL), 0, "expected the table to be created");
    snprintf(sql, sizeof(sql), "INSERT INTO \"%s\".items VALUES ($1)", pg_it_schema);

    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_eq(cc_pg_exec(pg_it, sql, 1, (const char *[]){"1"}), 0, "expected an insert");
    cr_assert_eq(cc_pg_rollback(pg_it), 0, "expected ROLLBACK");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 0,
                 "expected the rolled back row to be gone");

    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_eq(cc_pg_exec(pg_it, sql, 1, (const char *[]){"2"}), 0, "expected an insert");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 0,
                 "expected the uncommitted row invisible to another connection");
    cr_assert_eq(cc_pg_commit(pg_it), 0, "expected COMMIT");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 1,
                 "expected the committed row visible");

    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_eq(cc_pg_exec(pg_it, sql, 1, (const char *[]){"2"}), -EIO, "expected a conflict");
    cr_assert_eq(cc_pg_commit(pg_it), -EIO, "expected COMMIT of an aborted transaction to fail");
    cr_assert_eq(cc_pg_rollback(pg_it), 0, "expected ROLLBACK outside a transaction to be a no-op");
}

Test(pg, reconnects_after_the_server_terminates_the_backend)
{
    char pid[16];
    const char *params[] = {pid};
    int before = PQbackendPID(cc_pg_conn(pg_it));

    snprintf(pid, sizeof(pid), "%d", before);
    PGresult *res = cc_pg_query(pg_it_admin, "SELECT pg_terminate_backend($1)", 1, params);
    cr_assert(res && strcmp(PQgetvalue(res, 0, 0), "t") == 0, "expected the backend terminated");
    PQclear(res);

    res = cc_pg_query(pg_it, "SELECT 40 + 2", 0, NULL);
    cr_assert_not_null(res, "expected the next query to reconnect and work (sqlstate %s)",
                       cc_pg_last_sqlstate(pg_it));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "42", "expected the query's answer");
    PQclear(res);
    cr_assert_neq(PQbackendPID(cc_pg_conn(pg_it)), before, "expected a new backend");
}

Test(pg, does_not_retry_inside_a_transaction_whose_backend_died)
{
    char pid[16];
    const char *params[] = {pid};

    snprintf(pid, sizeof(pid), "%d", PQbackendPID(cc_pg_conn(pg_it)));
    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_eq(cc_pg_exec(pg_it_admin, "SELECT pg_terminate_backend($1)", 1, params), 0,
                 "expected the backend terminated");
    cr_assert_eq(cc_pg_exec(pg_it, "SELECT 1", 0, NULL), -EIO,
                 "expected the statement in the lost transaction to fail, not silently retried "
                 "outside it");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "08006", "expected connection_failure");
    cr_assert_eq(cc_pg_rollback(pg_it), 0, "expected ROLLBACK of the lost transaction to be fine");
    cr_assert(cc_pg_ping(pg_it), "expected the next statement to reconnect");
}

Test(pg, new_returns_null_when_the_server_is_unreachable)
{
    cr_assert_null(cc_pg_new("host=/nonexistent/cc-itest dbname=cc connect_timeout=2"),
                   "expected NULL when the first connect fails");
}

/* ---- migrations ----------------------------------------------------------------------------- */

Test(pg, migrations_applied_twice_change_nothing_the_second_time)
{
    char dir[512];
    int applied = -1;
    char *first, *second;

    pg_it_fixture(dir, sizeof(dir), "basic");
    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), 0, "expected success");
    cr_assert_eq(applied, 3, "expected 3 migrations applied the first time, got %d", applied);
    first = pg_it_dump();
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT sum(priority) FROM \"{S}\".items"), 60,
                 "expected all three migrations to have run");

    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), 0, "expected success");
    cr_assert_eq(applied, 0, "expected nothing applied the second time, got %d", applied);
    second = pg_it_dump();
    cr_assert_str_eq(second, first, "expected catalogs and rows byte-for-byte unchanged");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".schema_migrations"), 3,
                 "expected 3 recorded migrations");
    free(first);
    free(second);
}

Test(pg, records_version_name_and_sha256_of_each_migration)
{
    char dir[512];
    char *v;

    pg_it_fixture(dir, sizeof(dir), "basic");
    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, NULL), 0, "expected success");
    v = pg_it_value(pg_it_admin, "SELECT string_agg(version || ':' || name, ',' ORDER BY version)"
                                 " FROM \"{S}\".schema_migrations");
    cr_assert_str_eq(v, "1:001_create_items.sql,2:002_insert_items.sql,3:003_add_priority.sql",
                     "expected one row per file in order");
    free(v);
    v = pg_it_value(pg_it_admin, "SELECT count(*) FROM \"{S}\".schema_migrations"
                                 " WHERE sha256 ~ '^[0-9a-f]{64}$' AND applied_at <= now()");
    cr_assert_str_eq(v, "3", "expected a hex sha256 and a timestamp on every row");
    free(v);
}

static void pg_it_check_failed_migration(const char *fixture)
{
    char dir[512];
    int applied = -1;

    pg_it_fixture(dir, sizeof(dir), fixture);
    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), -EIO,
                 "expected the failing migration to be reported");
    cr_assert_eq(applied, 1, "expected only the first migration applied, got %d", applied);
    cr_assert(pg_it_table_exists("items"), "expected the earlier migration to stay");
    cr_assert_not(pg_it_table_exists("extras"), "expected the failing file rolled back entirely");
    cr_assert_not(pg_it_table_exists("never_applied"), "expected no migration after the failure");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 0,
                 "expected the failing file's insert rolled back");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT max(version) FROM \"{S}\".schema_migrations"), 1,
                 "expected the failing migration not recorded");
    cr_assert(cc_pg_ping(pg_it), "expected the connection usable after the failure");
}

Test(pg, a_migration_with_a_syntax_error_rolls_back_and_is_not_recorded)
{
    pg_it_check_failed_migration("broken_syntax");
}

Test(pg, a_migration_failing_after_some_statements_rolls_back_entirely)
{
    pg_it_check_failed_migration("broken_late");
}

Test(pg, refuses_a_migration_changed_after_it_was_applied)
{
    const char *dir = pg_it_copy_fixture("basic");
    char path[256];
    int applied = -1;
    FILE *f;

    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), 0, "expected success");
    snprintf(path, sizeof(path), "%s/002_insert_items.sql", dir);
    f = fopen(path, "a");
    cr_assert_not_null(f, "expected to open '%s'", path);
    fputs("INSERT INTO items (id, name) VALUES (4, 'delta');\n", f);
    fclose(f);
    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), -EBADMSG,
                 "expected a changed file to be refused with -EBADMSG");
    cr_assert_eq(applied, 0, "expected nothing applied");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 3,
                 "expected the changed file not run again");
}

Test(pg, applies_a_new_migration_added_later)
{
    const char *dir = pg_it_copy_fixture("basic");
    char path[256];
    int applied = -1;
    FILE *f;

    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), 0, "expected success");
    snprintf(path, sizeof(path), "%s/004_add_index.sql", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f, "expected to create '%s'", path);
    fputs("CREATE INDEX items_name_idx ON items (name);\n", f);
    fclose(f);
    cr_assert_eq(cc_pg_migrate(pg_it, pg_it_schema, dir, &applied), 0, "expected success");
    cr_assert_eq(applied, 1, "expected only the new file applied, got %d", applied);
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
                                         "'{S}' AND indexname = 'items_name_idx'"),
                 1, "expected the index created in the service schema");
}

Test(pg, refuses_an_invalid_schema_name)
{
    char dir[512];

    pg_it_fixture(dir, sizeof(dir), "basic");
    cr_assert_eq(cc_pg_migrate(pg_it, "Bad\"Schema", dir, NULL), -EINVAL,
                 "expected a schema name needing quotes to be refused");
    cr_assert_eq(cc_pg_migrate(pg_it, "1router", dir, NULL), -EINVAL,
                 "expected a schema name starting with a digit to be refused");
}

struct pg_it_migrator {
    const char *dsn;
    const char *dir;
    pthread_barrier_t *start;
    int rc;
    int applied;
};

static void *pg_it_migrator_run(void *arg)
{
    struct pg_it_migrator *m = arg;
    cc_pg *c = cc_pg_new(m->dsn);

    pthread_barrier_wait(m->start);
    m->rc = c ? cc_pg_migrate(c, pg_it_schema, m->dir, &m->applied) : -EIO;
    cc_pg_free(c);
    return NULL;
}

Test(pg, concurrent_migrators_apply_each_migration_exactly_once)
{
    struct pg_it_migrator m[PG_IT_MIGRATORS];
    pthread_t threads[PG_IT_MIGRATORS];
    pthread_barrier_t start;
    char dir[512];
    int total = 0;

    pg_it_fixture(dir, sizeof(dir), "slow");
    pthread_barrier_init(&start, NULL, PG_IT_MIGRATORS);
    for (int i = 0; i < PG_IT_MIGRATORS; i++) {
        m[i] = (struct pg_it_migrator){
            .dsn = itest_env("CC_PG_DSN"), .dir = dir, .start = &start, .rc = 1, .applied = -1};
        cr_assert_eq(pthread_create(&threads[i], NULL, pg_it_migrator_run, &m[i]), 0,
                     "expected a thread");
    }
    for (int i = 0; i < PG_IT_MIGRATORS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(m[i].rc, 0, "expected migrator %d to succeed, got %d", i, m[i].rc);
        total += m[i].applied;
    }
    pthread_barrier_destroy(&start);
    cr_assert_eq(total, 3, "expected 3 applications in all, got %d", total);
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".schema_migrations"), 3,
                 "expected each migration recorded once");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 3,
                 "expected the insert migration run once (3 rows, not more)");
}

/* ---- prepared statements -------------------------------------------------------------------- */

/* How many statements called name the backend of c has prepared (pg_prepared_statements is
 * per session, so this asks c itself). */
static long pg_it_backend_prepared(cc_pg *c, const char *name)
{
    PGresult *res = cc_pg_query(c, "SELECT count(*) FROM pg_prepared_statements WHERE name = $1", 1,
                                (const char *const[]){name});
    long n;

    cr_assert_not_null(res, "expected pg_prepared_statements to be readable");
    n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void pg_it_expect_sum(const char *name, const char *a, const char *b, const char *want)
{
    PGresult *res = cc_pg_query_prepared(pg_it, name, "SELECT $1::int + $2::int", 2,
                                         (const char *const[]){a, b});

    cr_assert_not_null(res, "expected prepared '%s' to run (sqlstate %s)", name,
                       cc_pg_last_sqlstate(pg_it));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), want, "expected %s + %s = %s", a, b, want);
    PQclear(res);
}

Test(pg, prepares_a_statement_once_and_reuses_it)
{
    cr_assert_not(cc_pg_is_prepared(pg_it, "it_sum"), "expected nothing prepared before use");
    pg_it_expect_sum("it_sum", "40", "2", "42");
    cr_assert(cc_pg_is_prepared(pg_it, "it_sum"), "expected it prepared after first use");
    pg_it_expect_sum("it_sum", "1", "2", "3");
    pg_it_expect_sum("it_sum", "5", NULL, "");
    cr_assert_eq(pg_it_backend_prepared(pg_it, "it_sum"), 1,
                 "expected exactly one server-side statement after three runs");
    cr_assert_eq(cc_pg_exec_prepared(pg_it, "it_sum", "SELECT $1::int + $2::int", 2,
                                     (const char *const[]){"1", "1"}),
                 0, "expected exec_prepared through the same statement");
}

Test(pg, refuses_one_statement_name_for_two_queries)
{
    pg_it_expect_sum("it_twice", "1", "1", "2");
    cr_assert_null(cc_pg_query_prepared(pg_it, "it_twice", "SELECT 1", 0, NULL),
                   "expected a name bound to another query to be refused");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "42P05", "expected duplicate_prepared_statement");
    cr_assert_null(cc_pg_query_prepared(pg_it, "", "SELECT 1", 0, NULL),
                   "expected an empty name to be refused");
    pg_it_expect_sum("it_twice", "2", "2", "4");
}

Test(pg, prepares_again_after_the_server_terminates_the_backend)
{
    char pid[16];
    int before;

    pg_it_expect_sum("it_reconnect", "1", "2", "3");
    before = PQbackendPID(cc_pg_conn(pg_it));
    snprintf(pid, sizeof(pid), "%d", before);
    cr_assert_eq(
        cc_pg_exec(pg_it_admin, "SELECT pg_terminate_backend($1)", 1, (const char *const[]){pid}),
        0, "expected the backend terminated");
    pg_it_expect_sum("it_reconnect", "20", "22", "42");
    cr_assert_neq(PQbackendPID(cc_pg_conn(pg_it)), before, "expected a new backend");
    cr_assert_eq(pg_it_backend_prepared(pg_it, "it_reconnect"), 1,
                 "expected the statement prepared on the new backend");
}

Test(pg, prepares_again_a_statement_the_backend_dropped)
{
    pg_it_expect_sum("it_dropped", "1", "2", "3");
    cr_assert_eq(cc_pg_exec(pg_it, "DEALLOCATE ALL", 0, NULL), 0, "expected DEALLOCATE ALL");
    pg_it_expect_sum("it_dropped", "2", "3", "5");
    cr_assert_eq(pg_it_backend_prepared(pg_it, "it_dropped"), 1, "expected it prepared again");
}

Test(pg, does_not_retry_a_dropped_statement_inside_a_transaction)
{
    pg_it_expect_sum("it_dropped_tx", "1", "2", "3");
    cr_assert_eq(cc_pg_exec(pg_it, "DEALLOCATE ALL", 0, NULL), 0, "expected DEALLOCATE ALL");
    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_null(cc_pg_query_prepared(pg_it, "it_dropped_tx", "SELECT $1::int + $2::int", 2,
                                        (const char *const[]){"1", "1"}),
                   "expected the failure returned: the transaction is aborted");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "26000", "expected invalid_sql_statement_name");
    cr_assert_eq(cc_pg_rollback(pg_it), 0, "expected ROLLBACK");
    pg_it_expect_sum("it_dropped_tx", "2", "2", "4");
}

/* ---- several statements in one round trip --------------------------------------------------- */

/* Creates the test schema with items (id int PRIMARY KEY, v text) and fills sql with the insert
 * statement ($1 id, $2 v). */
static void pg_it_items_table(char *sql, size_t len)
{
    char ddl[256];

    snprintf(ddl, sizeof(ddl), "CREATE SCHEMA \"%s\"", pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it_admin, ddl, 0, NULL), 0, "expected the schema to be created");
    snprintf(ddl, sizeof(ddl), "CREATE TABLE \"%s\".items (id int PRIMARY KEY, v text)",
             pg_it_schema);
    cr_assert_eq(cc_pg_exec(pg_it_admin, ddl, 0, NULL), 0, "expected the table to be created");
    snprintf(sql, len, "INSERT INTO \"%s\".items VALUES ($1::int, $2)", pg_it_schema);
}

/* calls[i] inserts the row (ids[i], "v<ids[i]>") through statement it_items_insert. */
static void pg_it_insert_calls(const char *sql, const char *const *ids, size_t n,
                               struct cc_pg_call *calls, const char *(*params)[2])
{
    for (size_t i = 0; i < n; i++) {
        params[i][0] = ids[i];
        params[i][1] = ids[i];
        calls[i] = (struct cc_pg_call){"it_items_insert", sql, 2, params[i]};
    }
}

Test(pg, runs_several_statements_as_one_transaction_in_one_round_trip)
{
    char sql[160];
    const char *ids[] = {"1", "2", "3"}, *dup[] = {"4", "2", "5"}, *params[3][2];
    struct cc_pg_call calls[3];

    pg_it_items_table(sql, sizeof(sql));
    pg_it_insert_calls(sql, ids, 3, calls, params);
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 3), 0, "expected the three inserts (%s)",
                 cc_pg_last_sqlstate(pg_it));
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 3,
                 "expected three rows");
    cr_assert(cc_pg_is_prepared(pg_it, "it_items_insert"), "expected the statement prepared");

    pg_it_insert_calls(sql, dup, 3, calls, params);
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 3), -EIO,
                 "expected the batch with a duplicate key to fail");
    cr_assert_str_eq(cc_pg_last_sqlstate(pg_it), "23505", "expected unique_violation");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 3,
                 "expected none of the failed batch applied (4 rolled back, 5 not run)");
    cr_assert(cc_pg_ping(pg_it), "expected the connection usable after the failed batch");
    cr_assert_eq(PQpipelineStatus(cc_pg_conn(pg_it)), PQ_PIPELINE_OFF,
                 "expected the connection out of pipeline mode");
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 0), 0, "expected no calls to be a no-op");
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, CC_PG_PIPELINE_MAX + 1), -EINVAL,
                 "expected more than CC_PG_PIPELINE_MAX calls refused");
}

Test(pg, a_pipeline_reconnects_and_prepares_again_after_losing_its_backend)
{
    char sql[160], pid[16];
    const char *a[] = {"1", "2"}, *b[] = {"3", "4"}, *params[2][2];
    struct cc_pg_call calls[2];
    int before;

    pg_it_items_table(sql, sizeof(sql));
    pg_it_insert_calls(sql, a, 2, calls, params);
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 2), 0, "expected the first batch");
    before = PQbackendPID(cc_pg_conn(pg_it));
    snprintf(pid, sizeof(pid), "%d", before);
    cr_assert_eq(
        cc_pg_exec(pg_it_admin, "SELECT pg_terminate_backend($1)", 1, (const char *const[]){pid}),
        0, "expected the backend terminated");
    pg_it_insert_calls(sql, b, 2, calls, params);
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 2), 0,
                 "expected the batch to reconnect and run (sqlstate %s)",
                 cc_pg_last_sqlstate(pg_it));
    cr_assert_neq(PQbackendPID(cc_pg_conn(pg_it)), before, "expected a new backend");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 4,
                 "expected the four rows");

    cr_assert_eq(cc_pg_exec(pg_it, "DEALLOCATE ALL", 0, NULL), 0, "expected DEALLOCATE ALL");
    pg_it_insert_calls(sql, (const char *[]){"5", "6"}, 2, calls, params);
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 2), 0,
                 "expected the batch to prepare the dropped statement again (sqlstate %s)",
                 cc_pg_last_sqlstate(pg_it));
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 6,
                 "expected the six rows");
}

Test(pg, a_pipeline_inside_a_transaction_belongs_to_it)
{
    char sql[160];
    const char *ids[] = {"1", "2"}, *params[2][2];
    struct cc_pg_call calls[2];

    pg_it_items_table(sql, sizeof(sql));
    pg_it_insert_calls(sql, ids, 2, calls, params);
    cr_assert_eq(cc_pg_begin(pg_it), 0, "expected BEGIN");
    cr_assert_eq(cc_pg_exec_prepared_all(pg_it, calls, 2), 0, "expected the inserts");
    cr_assert_eq(cc_pg_rollback(pg_it), 0, "expected ROLLBACK");
    cr_assert_eq(pg_it_long(pg_it_admin, "SELECT count(*) FROM \"{S}\".items"), 0,
                 "expected the caller's rollback to undo them");
}
