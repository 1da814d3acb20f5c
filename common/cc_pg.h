/*
 * cc_pg: one PostgreSQL connection with reconnect, parameterised queries, transactions and a
 * per-service migrations runner.
 *
 * Queries use PQexecParams with text parameters (NULL pointer = SQL NULL). When the connection
 * is bad, a query resets it (backoff 50 ms doubling to 2 s, at most CC_PG_RECONNECT_BUDGET_MS)
 * and retries once -- but never inside an open transaction: there, the failure is returned and
 * the transaction is lost, the caller starts over.
 *
 * Prepared statements (cc_pg_query_prepared): a per-connection registry by name; the statement
 * is prepared on the backend on first use and again after any reconnect (a new backend has
 * none), or when the backend lost it (DEALLOCATE / DISCARD ALL: SQLSTATE 26000, retried once
 * outside a transaction). The hot path thus skips parse and plan after the first call.
 *
 * Migrations: each service keeps ordered files `NNN_name.sql` in one directory; cc_pg_migrate()
 * applies those not yet recorded in "<schema>".schema_migrations, one transaction per file.
 *
 * Thread-safety: none. A cc_pg is one connection; use one per thread.
 */
#ifndef CC_PG_H
#define CC_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define CC_PG_BACKOFF_MIN_MS      50
#define CC_PG_BACKOFF_MAX_MS      2000
#define CC_PG_RECONNECT_BUDGET_MS 5000 /* longest one query waits for the server to come back */
#define CC_PG_MIGRATION_NAME_MAX  255
#define CC_PG_STATEMENT_NAME_MAX  63 /* NAMEDATALEN - 1 */

typedef struct cc_pg cc_pg;

/* One migration file found on disk. */
struct cc_pg_migration {
    long version;                            /* NNN, > 0 */
    char file[CC_PG_MIGRATION_NAME_MAX + 1]; /* "NNN_name.sql" (no directory) */
};

/* Connects to dsn (libpq conninfo or URI). Returns NULL (logged) if the first connect fails. */
cc_pg *cc_pg_new(const char *dsn);

/* Closes the connection and frees pg. NULL is a no-op. */
void cc_pg_free(cc_pg *pg);

/* Runs sql with nparams text params (params[i] NULL = SQL NULL; params may be NULL when
 * nparams is 0). If the connection is bad, resets it (bounded backoff) and retries once -- never
 * inside an open transaction. Returns a PGresult with status COMMAND_OK or TUPLES_OK that the
 * caller PQclear's, or NULL (error logged with its SQLSTATE; cc_pg_last_sqlstate() tells which). */
PGresult *cc_pg_query(cc_pg *pg, const char *sql, int nparams, const char *const *params);

/* As cc_pg_query() for statements whose rows are not needed. Returns 0 or -EIO. */
int cc_pg_exec(cc_pg *pg, const char *sql, int nparams, const char *const *params);

/* As cc_pg_query(), through the prepared statement name (1..CC_PG_STATEMENT_NAME_MAX bytes) of
 * sql: prepared on this connection's backend on first use and after every reconnect, then only
 * executed. A name always stands for one sql text (compare by content): reusing it for another
 * text fails (NULL, sqlstate "42P05", logged). sql is copied on first use. Same retry rules as
 * cc_pg_query(); if the backend lost the statement (26000) it is prepared again and run once
 * more, outside a transaction only. Returns a PGresult to PQclear, or NULL. */
PGresult *cc_pg_query_prepared(cc_pg *pg, const char *name, const char *sql, int nparams,
                               const char *const *params);

/* As cc_pg_query_prepared() for statements whose rows are not needed. Returns 0 or -EIO. */
int cc_pg_exec_prepared(cc_pg *pg, const char *name, const char *sql, int nparams,
                        const char *const *params);

/* One execution of a prepared statement, for cc_pg_exec_prepared_all(): name and sql as in
 * cc_pg_exec_prepared(). */
struct cc_pg_call {
    const char *name;
    const char *sql;
    int nparams;
    const char *const *params;
};

/* Most calls cc_pg_exec_prepared_all() takes at once. Their answers (no rows) must fit the
 * socket buffers while they are being sent. */
#define CC_PG_PIPELINE_MAX 512

/* Runs calls[0..n) in order as ONE transaction sent in one round trip (libpq pipeline mode):
 * all of them or, when one fails, none. Statements are prepared as by cc_pg_exec_prepared(); rows
 * they return are dropped. Same retry rules as cc_pg_exec_prepared(): a lost connection or a
 * statement the backend dropped runs the whole transaction once more. Inside an open
 * transaction the calls run one by one (the caller's transaction holds them together). Returns
 * 0, -EIO (logged, sqlstate set: a failed statement rolled the others back; a connection lost
 * before the answer leaves the outcome unknown, as for any statement) or -EINVAL (n above
 * CC_PG_PIPELINE_MAX, a bad name: nothing sent). n == 0 is a no-op. */
int cc_pg_exec_prepared_all(cc_pg *pg, const struct cc_pg_call *calls, size_t n);

/* True when name is registered and prepared on the current backend (false after a reconnect
 * until its next use). For tests and diagnostics. */
bool cc_pg_is_prepared(const cc_pg *pg, const char *name);

/* BEGIN / COMMIT / ROLLBACK. Return 0 or -EIO. A failed COMMIT has rolled back. cc_pg_rollback()
 * outside a transaction is a no-op returning 0, so cleanup paths may call it unconditionally. */
int cc_pg_begin(cc_pg *pg);
int cc_pg_commit(cc_pg *pg);
int cc_pg_rollback(cc_pg *pg);

/* SQLSTATE of the last failed query ("23505" etc.), "" after a success or if the failure had
 * none (connection lost: "08006" is reported for a broken connection). Borrowed, valid until the
 * next call on pg. */
const char *cc_pg_last_sqlstate(const cc_pg *pg);

/* Runs SELECT 1 (reconnecting once if needed); true if it worked. For /readyz. */
bool cc_pg_ping(cc_pg *pg);

/* The underlying connection, borrowed, for COPY and the like. Do not PQfinish it. May change
 * after any call that reconnects. */
PGconn *cc_pg_conn(cc_pg *pg);

/* Parses a migration file name "NNN_name.sql" (NNN: 1..18 digits, value > 0; name: at least one
 * of [A-Za-z0-9_-]). Pure: no I/O. Returns 0 and sets *version, or -EINVAL. */
int cc_pg_migration_parse_name(const char *file, long *version);

/* Lists the migration files of dir sorted by version (ascending). Files not ending in ".sql" are
 * ignored; a ".sql" file with a bad name, or two files with one version, is an error (-EINVAL,
 * logged). On success *out is a malloc'd array the caller free()s (NULL when *n is 0). Returns 0,
 * -EINVAL, -ENOENT/-errno when dir cannot be read, or -ENOMEM. */
int cc_pg_migration_list(const char *dir, struct cc_pg_migration **out, size_t *n);

/* Applies, in version order, every `NNN_name.sql` in dir not yet recorded in
 * "<schema>".schema_migrations (version, name, sha256, applied_at), each in its own transaction
 * together with its record row, with `SET LOCAL search_path TO "<schema>", public` so files need
 * not name the schema. Files must not contain BEGIN/COMMIT (nor CREATE INDEX CONCURRENTLY).
 * Creates the schema and the table if missing. Serialised across processes: every transaction
 * takes pg_advisory_xact_lock on hash(schema) and re-checks the record under it, so concurrent
 * migrators apply each file exactly once and no lock outlives a lost connection. A recorded
 * migration whose file content changed (sha256 differs) is an error (-EBADMSG), naming the file;
 * nothing after it is applied. A failing migration rolls back entirely (its record too) and
 * returns -EIO; earlier ones stay. schema: 1..63 chars of [a-z0-9_], not starting with a digit.
 * *applied gets the number applied this time (may be NULL; set on failure too). Returns 0 or
 * negative. Must not be called inside a transaction. */
int cc_pg_migrate(cc_pg *pg, const char *schema, const char *dir, int *applied);

#endif
