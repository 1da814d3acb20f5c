/* cc_pg: see cc_pg.h. */
#include "cc_pg.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cc_log.h"
#include "cc_time.h"

#define SQLSTATE_CONNECTION_FAILURE "08006"
#define MIGRATION_FILE_MAX          (16 * 1024 * 1024) /* bytes of one migration file */
#define SCHEMA_NAME_MAX             63
/* First key of the migrations advisory lock, so it never meets an application's own locks. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtext('cc_pg_migrate'), hashtext($1))"

#define SQLSTATE_UNDEFINED_PSTATEMENT "26000" /* prepared statement does not exist */

/* One named statement: its text, and whether the current session has it prepared. */
struct pg_stmt {
    char *name;
    char *sql;
    bool prepared; /* on the current backend; cleared by every reconnect */
};

struct cc_pg {
    PGconn *conn;
    bool in_tx;       /* between cc_pg_begin() and cc_pg_commit()/cc_pg_rollback() */
    char sqlstate[6]; /* of the last failure, "" after a success */
    struct pg_stmt *stmts;
    size_t nstmts, capstmts;
};

/* ---- connection ----------------------------------------------------------------------------- */

/* libpq's messages span lines and end in a newline; a log message is one line. Copies msg into
 * buf with line breaks and tabs turned into spaces and the trailing ones dropped. */
static const char *one_line(const char *msg, char *buf, size_t len)
{
    size_t n;

    snprintf(buf, len, "%s", msg ? msg : "");
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    return buf;
}

/* Server NOTICEs ("schema already exists, skipping") go to the log, not raw to stderr. */
static void notice_to_log(void *arg, const char *message)
{
    char buf[512];

    (void)arg;
    CC_DEBUG("pg notice: %s", one_line(message, buf, sizeof(buf)));
}

cc_pg *cc_pg_new(const char *dsn)
{
    char buf[512];
    cc_pg *pg = calloc(1, sizeof(*pg));

    if (!pg) {
        CC_ERROR("pg client allocation failed: out of memory");
        return NULL;
    }
    pg->conn = PQconnectdb(dsn ? dsn : "");
    if (!pg->conn) {
        CC_ERROR("pg connect failed: out of memory");
        goto free_pg;
    }
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        /* The dsn may hold a password: log libpq's reason, never the dsn. */
        CC_ERROR("pg connect failed: %s", one_line(PQerrorMessage(pg->conn), buf, sizeof(buf)));
        goto finish_conn;
    }
    PQsetNoticeProcessor(pg->conn, notice_to_log, NULL);
    return pg;

finish_conn:
    PQfinish(pg->conn);
free_pg:
    free(pg);
    return NULL;
}

void cc_pg_free(cc_pg *pg)
{
    if (!pg)
        return;
    PQfinish(pg->conn);
    for (size_t i = 0; i < pg->nstmts; i++) {
        free(pg->stmts[i].name);
        free(pg->stmts[i].sql);
    }
    free(pg->stmts);
    free(pg);
}

/* A new backend knows none of our prepared statements. */
static void forget_prepared(cc_pg *pg)
{
    for (size_t i = 0; i < pg->nstmts; i++)
        pg->stmts[i].prepared = false;
}

/* PQreset with backoff, for at most CC_PG_RECONNECT_BUDGET_MS. 0 or -EIO. */
static int reconnect(cc_pg *pg)
{
    struct cc_backoff b;
    char buf[512];

    cc_backoff_init(&b, CC_PG_BACKOFF_MIN_MS, CC_PG_BACKOFF_MAX_MS, CC_PG_RECONNECT_BUDGET_MS);
    do {
        PQreset(pg->conn);
        forget_prepared(pg);
        if (PQstatus(pg->conn) == CONNECTION_OK) {
            CC_INFO("pg reconnected");
            return 0;
        }
    } while (cc_backoff_wait(&b));
    CC_ERROR("pg unreachable after %d ms: %s", CC_PG_RECONNECT_BUDGET_MS,
             one_line(PQerrorMessage(pg->conn), buf, sizeof(buf)));
    return -EIO;
}

/* True while a transaction is open: ours (cc_pg_begin) or one the caller opened with SQL. */
static bool in_transaction(const cc_pg *pg)
{
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);

    return pg->in_tx || ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

static void record_failure(cc_pg *pg, const PGresult *res, const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char buf[512];

    if (PQstatus(pg->conn) == CONNECTION_BAD && !state)
        state = SQLSTATE_CONNECTION_FAILURE;
    snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", state ? state : "");
    if (!msg)
        msg = one_line(PQerrorMessage(pg->conn), buf, sizeof(buf));
    CC_ERROR("pg query failed: sqlstate %s: %s (query \"%.80s\")",
             pg->sqlstate[0] ? pg->sqlstate : "none", msg, sql);
}

/* How one statement is sent: PQexec (several statements, no params; migrations), PQexecParams,
 * or PQexecPrepared of stmt (prepared first when this backend does not have it yet). */
struct pg_call {
    const char *sql;
    int nparams;
    const char *const *params;
    bool simple;
    struct pg_stmt *stmt; /* non-NULL: prepared */
};

static bool result_ok(const PGresult *res)
{
    if (!res)
        return false;
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static bool result_sqlstate_is(const PGresult *res, const char *state)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s && strcmp(s, state) == 0;
}

/* Prepares c->stmt on the current backend if it is not there yet. NULL when it is (or now is),
 * else the failed PGresult. "already exists" (the backend kept it) counts as prepared. */
static PGresult *prepare_once(cc_pg *pg, const struct pg_call *c)
{
    PGresult *res;

    if (c->stmt->prepared)
        return NULL;
    res = PQprepare(pg->conn, c->stmt->name, c->sql, c->nparams, NULL);
    if (result_ok(res) || result_sqlstate_is(res, "42P05")) {
        PQclear(res);
        c->stmt->prepared = true;
        return NULL;
    }
    return res;
}

/* One statement round-trip (two when a statement is prepared first). */
static PGresult *run_once(cc_pg *pg, const struct pg_call *c)
{
    PGresult *res;

    if (c->simple)
        return PQexec(pg->conn, c->sql);
    if (!c->stmt)
        return PQexecParams(pg->conn, c->sql, c->nparams, NULL, c->params, NULL, NULL, 0);
    res = prepare_once(pg, c);
    if (res)
        return res;
    res = PQexecPrepared(pg->conn, c->stmt->name, c->nparams, c->params, NULL, NULL, 0);
    if (result_sqlstate_is(res, SQLSTATE_UNDEFINED_PSTATEMENT))
        c->stmt->prepared = false; /* dropped behind our back (DEALLOCATE, DISCARD ALL) */
    return res;
}

/* True when running the statement once more is safe and may help: outside a transaction, the
 * connection died (the statement ran alone or not at all), or a prepared statement vanished. */
static bool worth_retry(const cc_pg *pg, const PGresult *res, const struct pg_call *c)
{
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return true;
    return c->stmt && !c->stmt->prepared && result_sqlstate_is(res, SQLSTATE_UNDEFINED_PSTATEMENT);
}

static PGresult *run_call(cc_pg *pg, const struct pg_call *c)
{
    bool was_in_tx = in_transaction(pg);
    PGresult *res;

    if (!was_in_tx && PQstatus(pg->conn) != CONNECTION_OK && reconnect(pg) < 0) {
        snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", SQLSTATE_CONNECTION_FAILURE);
        return NULL;
    }
    res = run_once(pg, c);
    if (!result_ok(res) && !was_in_tx && worth_retry(pg, res, c)) {
        char buf[512];
        bool lost = PQstatus(pg->conn) == CONNECTION_BAD;

        if (lost)
            CC_WARN("pg connection lost, reconnecting: %s",
                    one_line(PQerrorMessage(pg->conn), buf, sizeof(buf)));
        PQclear(res);
        res = NULL;
        if (!lost || reconnect(pg) == 0)
            res = run_once(pg, c);
    }
    if (!result_ok(res)) {
        record_failure(pg, res, c->sql);
        PQclear(res);
        return NULL;
    }
    pg->sqlstate[0] = '\0';
    return res;
}

static PGresult *run(cc_pg *pg, const char *sql, int nparams, const char *const *params,
                     bool simple)
{
    const struct pg_call c = {.sql = sql, .nparams = nparams, .params = params, .simple = simple};

    return run_call(pg, &c);
}

PGresult *cc_pg_query(cc_pg *pg, const char *sql, int nparams, const char *const *params)
{
    return run(pg, sql, nparams, params, false);
}

int cc_pg_exec(cc_pg *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = run(pg, sql, nparams, params, false);

    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

/* The registered statement called name, registering it on first use. NULL (logged, sqlstate
 * set) when name is bad, already names another text, or memory runs out. */
static struct pg_stmt *stmt_lookup(cc_pg *pg, const char *name, const char *sql)
{
    struct pg_stmt *st;

    for (size_t i = 0; i < pg->nstmts; i++) {
        st = &pg->stmts[i];
        if (strcmp(st->name, name) != 0)
            continue;
        if (st->sql != sql && strcmp(st->sql, sql) != 0)
            goto name_taken;
        return st;
    }
    if (!*name || strlen(name) > CC_PG_STATEMENT_NAME_MAX) {
        CC_ERROR("pg prepared statement name invalid: \"%.80s\" (1..%d bytes)", name,
                 CC_PG_STATEMENT_NAME_MAX);
        goto fail;
    }
    if (pg->nstmts == pg->capstmts) {
        size_t ncap = pg->capstmts ? pg->capstmts * 2 : 16;
        struct pg_stmt *grown = realloc(pg->stmts, ncap * sizeof(*grown));
        if (!grown)
            goto out_of_memory;
        pg->stmts = grown;
        pg->capstmts = ncap;
    }
    st = &pg->stmts[pg->nstmts];
    *st = (struct pg_stmt){.name = strdup(name), .sql = strdup(sql)};
    if (!st->name || !st->sql) {
        free(st->name);
        free(st->sql);
        goto out_of_memory;
    }
    pg->nstmts++;
    return st;

name_taken:
    CC_ERROR("pg prepared statement name reused for another query: \"%s\"", name);
    goto fail;
out_of_memory:
    CC_ERROR("pg prepared statement \"%s\" not registered: out of memory", name);
fail:
    snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", "42P05");
    return NULL;
}

PGresult *cc_pg_query_prepared(cc_pg *pg, const char *name, const char *sql, int nparams,
                               const char *const *params)
{
    struct pg_call c = {.sql = sql, .nparams = nparams, .params = params};

    if (!name || !sql)
        return NULL;
    c.stmt = stmt_lookup(pg, name, sql);
    if (!c.stmt)
        return NULL;
    return run_call(pg, &c);
}

int cc_pg_exec_prepared(cc_pg *pg, const char *name, const char *sql, int nparams,
                        const char *const *params)
{
    PGresult *res = cc_pg_query_prepared(pg, name, sql, nparams, params);

    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

/* ---- several statements in one round trip ---------------------------------------------------- */

/* Reads the pipeline's answers up to its sync. *failed: the first failed result (the caller
 * PQclear's it), NULL when none failed; *at: the index of its statement. Returns 0 when the
 * sync came, -EIO when the connection failed before it. */
static int pipeline_collect(cc_pg *pg, size_t n, PGresult **failed, size_t *at)
{
    size_t answered = 0;

    /* each statement answers a result and a NULL; a broken connection answers NULLs */
    for (size_t guard = 0; guard < 2 * n + 4; guard++) {
        PGresult *res = PQgetResult(pg->conn);
        ExecStatusType st;

        if (!res) {
            if (PQstatus(pg->conn) == CONNECTION_BAD)
                return -EIO;
            continue;
        }
        st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return 0;
        }
        if (!result_ok(res) && st != PGRES_PIPELINE_ABORTED && !*failed) {
            *failed = res;
            *at = answered < n ? answered : n - 1;
        } else {
            PQclear(res);
        }
        answered++;
    }
    return -EIO;
}

/* Sends calls[0..n) through stmts (prepared) and one sync, and reads the answers. 0 when every
 * statement ran and the transaction committed; -EIO when one failed (*failed and *at as
 * pipeline_collect); -ECONNRESET when the answers did not all come (the connection broke): the
 * connection is then reset, since one left in pipeline mode would hand them to the next
 * statement. */
static int pipeline_run(cc_pg *pg, struct pg_stmt *const *stmts, const struct cc_pg_call *calls,
                        size_t n, PGresult **failed, size_t *at)
{
    int rc = -ECONNRESET;

    *failed = NULL;
    if (!PQenterPipelineMode(pg->conn))
        return -ECONNRESET;
    for (size_t i = 0; i < n; i++) {
        if (!PQsendQueryPrepared(pg->conn, stmts[i]->name, calls[i].nparams, calls[i].params, NULL,
                                 NULL, 0))
            goto out;
    }
    if (PQpipelineSync(pg->conn) && pipeline_collect(pg, n, failed, at) == 0)
        rc = *failed ? -EIO : 0;
out:
    if (!PQexitPipelineMode(pg->conn)) {
        CC_WARN("pg connection lost during a pipeline, reconnecting");
        reconnect(pg);
        return -ECONNRESET;
    }
    if (*failed && result_sqlstate_is(*failed, SQLSTATE_UNDEFINED_PSTATEMENT))
        forget_prepared(pg); /* which one is unknown: prepare_once finds the others there */
    return rc;
}

/* Prepares stmts[0..n) where this backend lacks them. 0, or -EIO with *failed (or NULL when
 * the connection failed) and *at, the statement's index. */
static int pipeline_prepare(cc_pg *pg, struct pg_stmt *const *stmts, const struct cc_pg_call *calls,
                            size_t n, PGresult **failed, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        const struct pg_call c = {
            .sql = calls[i].sql, .nparams = calls[i].nparams, .stmt = stmts[i]};

        *failed = prepare_once(pg, &c);
        if (*failed) {
            *at = i;
            return -EIO;
        }
    }
    return 0;
}

int cc_pg_exec_prepared_all(cc_pg *pg, const struct cc_pg_call *calls, size_t n)
{
    struct pg_stmt *stmts[CC_PG_PIPELINE_MAX];
    PGresult *failed = NULL;
    size_t at = 0;
    int rc = -EIO;

    if (n == 0)
        return 0;
    if (n > CC_PG_PIPELINE_MAX) {
        CC_ERROR("pg pipeline of %zu statements refused (at most %d)", n, CC_PG_PIPELINE_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        stmts[i] =
            calls[i].name && calls[i].sql ? stmt_lookup(pg, calls[i].name, calls[i].sql) : NULL;
        if (!stmts[i])
            return -EINVAL;
    }
    if (in_transaction(pg)) {
        for (size_t i = 0; i < n; i++) {
            if (cc_pg_exec_prepared(pg, calls[i].name, calls[i].sql, calls[i].nparams,
                                    calls[i].params) < 0)
                return -EIO;
        }
        return 0;
    }
    /* like run_call: once more when the connection broke or a statement vanished */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(pg->conn) != CONNECTION_OK && reconnect(pg) < 0) {
            rc = -EIO;
            break;
        }
        rc = pipeline_prepare(pg, stmts, calls, n, &failed, &at);
        if (rc == 0)
            rc = pipeline_run(pg, stmts, calls, n, &failed, &at);
        if (rc == 0 || !(rc == -ECONNRESET || PQstatus(pg->conn) == CONNECTION_BAD ||
                         result_sqlstate_is(failed, SQLSTATE_UNDEFINED_PSTATEMENT)))
            break;
        if (attempt == 0) {
            PQclear(failed);
            failed = NULL;
        }
    }
    if (rc == -ECONNRESET && !failed) {
        CC_ERROR("pg pipeline failed: connection lost (query \"%.80s\")", calls[0].sql);
        snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", SQLSTATE_CONNECTION_FAILURE);
        return -EIO;
    }
    if (rc < 0) {
        record_failure(pg, failed, calls[at].sql);
        PQclear(failed);
        return -EIO;
    }
    pg->sqlstate[0] = '\0';
    return 0;
}

bool cc_pg_is_prepared(const cc_pg *pg, const char *name)
{
    for (size_t i = 0; i < pg->nstmts; i++) {
        if (strcmp(pg->stmts[i].name, name) == 0)
            return pg->stmts[i].prepared;
    }
    return false;
}

int cc_pg_begin(cc_pg *pg)
{
    int rc = cc_pg_exec(pg, "BEGIN", 0, NULL);

    if (rc == 0)
        pg->in_tx = true;
    return rc;
}

int cc_pg_commit(cc_pg *pg)
{
    PGresult *res = run(pg, "COMMIT", 0, NULL, false);
    int rc = 0;

    pg->in_tx = false;
    if (!res)
        return -EIO;
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK. */
    if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        CC_ERROR("pg commit failed: transaction was aborted, rolled back");
        snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", "25P02");
        rc = -EIO;
    }
    PQclear(res);
    return rc;
}

int cc_pg_rollback(cc_pg *pg)
{
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);

    pg->in_tx = false;
    if (ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN)
        return 0; /* nothing open, or the connection (and its transaction) is gone */
    return cc_pg_exec(pg, "ROLLBACK", 0, NULL);
}

const char *cc_pg_last_sqlstate(const cc_pg *pg)
{
    return pg->sqlstate;
}

bool cc_pg_ping(cc_pg *pg)
{
    return cc_pg_exec(pg, "SELECT 1", 0, NULL) == 0;
}

PGconn *cc_pg_conn(cc_pg *pg)
{
    return pg->conn;
}

/* ---- migration files ------------------------------------------------------------------------ */

int cc_pg_migration_parse_name(const char *file, long *version)
{
    const char *p = file;
    size_t len, digits = 0;
    long v = 0;

    if (!file)
        return -EINVAL;
    len = strlen(file);
    if (len <= 4 || len > CC_PG_MIGRATION_NAME_MAX || strcmp(file + len - 4, ".sql") != 0)
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (*p - '0');
    if (digits == 0 || digits > 18 || v <= 0 || *p != '_')
        return -EINVAL;
    for (p++; p < file + len - 4; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
        if (!ok)
            return -EINVAL;
    }
    if (p == file + digits + 1) /* empty name */
        return -EINVAL;
    if (version)
        *version = v;
    return 0;
}

static int compare_migrations(const void *a, const void *b)
{
    const struct cc_pg_migration *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

static bool has_sql_suffix(const char *name)
{
    size_t len = strlen(name);

    return len >= 4 && strcmp(name + len - 4, ".sql") == 0;
}

/* Appends one entry to *list, growing it. 0 or -ENOMEM. */
static int push_migration(struct cc_pg_migration **list, size_t *n, size_t *cap, long version,
                          const char *file)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct cc_pg_migration *grown = realloc(*list, ncap * sizeof(**list));
        if (!grown)
            return -ENOMEM;
        *list = grown;
        *cap = ncap;
    }
    (*list)[*n].version = version;
    snprintf((*list)[*n].file, sizeof((*list)[*n].file), "%s", file);
    (*n)++;
    return 0;
}

static int find_duplicate(const struct cc_pg_migration *list, size_t n, const char *dir)
{
    for (size_t i = 1; i < n; i++) {
        if (list[i].version == list[i - 1].version) {
            CC_ERROR("migration version duplicated: \"%s\" and \"%s\" in \"%s\"", list[i - 1].file,
                     list[i].file, dir);
            return -EINVAL;
        }
    }
    return 0;
}

int cc_pg_migration_list(const char *dir, struct cc_pg_migration **out, size_t *n)
{
    struct cc_pg_migration *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    DIR *d;

    d = opendir(dir);
    if (!d) {
        rc = -errno;
        CC_ERROR("migration directory unreadable: \"%s\": %s", dir, strerror(errno));
        return rc;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        long version;

        if (de->d_name[0] == '.' || !has_sql_suffix(de->d_name))
            continue;
        if (cc_pg_migration_parse_name(de->d_name, &version) < 0) {
            CC_ERROR("migration file name invalid: \"%s\" in \"%s\" (want NNN_name.sql)",
                     de->d_name, dir);
            rc = -EINVAL;
            break;
        }
        rc = push_migration(&list, &count, &cap, version, de->d_name);
    }
    closedir(d);
    if (rc == 0 && count > 1) {
        qsort(list, count, sizeof(*list), compare_migrations);
        rc = find_duplicate(list, count, dir);
    }
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = count;
    return 0;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer. 0 or negative errno. */
static int read_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    char *buf;
    int rc = 0;
    FILE *f;

    f = fopen(path, "rb");
    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) < 0) {
        rc = -errno;
        goto close_file;
    }
    if (st.st_size > MIGRATION_FILE_MAX) {
        rc = -EFBIG;
        goto close_file;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto close_file;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        rc = -EIO;
        goto close_file;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
close_file:
    fclose(f);
    return rc;
}

static int sha256_hex(const char *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof(md))
        return -EIO;
    for (size_t i = 0; i < sizeof(md); i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

/* ---- migrations runner ---------------------------------------------------------------------- */

/* The schema is spliced into SQL, so it is restricted to what needs no quoting. */
static bool schema_name_valid(const char *s)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0 || len > SCHEMA_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    }
    return true;
}

/* BEGIN, take the schema's migration lock, point search_path at the schema. */
static int begin_locked(cc_pg *pg, const char *schema)
{
    const char *params[] = {schema};
    char sql[128];

    if (cc_pg_begin(pg) < 0)
        return -EIO;
    snprintf(sql, sizeof(sql), "SET LOCAL search_path TO \"%s\", public", schema);
    if (cc_pg_exec(pg, MIGRATE_LOCK_SQL, 1, params) < 0 || cc_pg_exec(pg, sql, 0, NULL) < 0) {
        cc_pg_rollback(pg);
        return -EIO;
    }
    return 0;
}

static int ensure_migrations_table(cc_pg *pg, const char *schema)
{
    PGresult *res;
    char sql[512];

    if (begin_locked(pg, schema) < 0)
        return -EIO;
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA IF NOT EXISTS \"%s\"; "
             "CREATE TABLE IF NOT EXISTS \"%s\".schema_migrations ("
             " version bigint PRIMARY KEY,"
             " name text NOT NULL,"
             " sha256 text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now())",
             schema, schema);
    res = run(pg, sql, 0, NULL, true);
    if (!res) {
        cc_pg_rollback(pg);
        return -EIO;
    }
    PQclear(res);
    return cc_pg_commit(pg);
}

/* Looks up a migration's record inside the locked transaction: 1 = recorded with the same
 * sha256, 0 = not recorded, -EBADMSG = recorded with another sha256, -EIO. */
static int recorded_state(cc_pg *pg, const char *schema, const struct cc_pg_migration *m,
                          const char *sha)
{
    char sql[256], version[24];
    const char *params[] = {version};
    PGresult *res;
    int rc;

    snprintf(version, sizeof(version), "%ld", m->version);
    snprintf(sql, sizeof(sql),
             "SELECT sha256, name FROM \"%s\".schema_migrations WHERE version = $1", schema);
    res = cc_pg_query(pg, sql, 1, params);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        rc = 0;
    } else if (strcmp(PQgetvalue(res, 0, 0), sha) != 0) {
        CC_ERROR("migration changed after it was applied: \"%s\" in schema \"%s\" (recorded "
                 "sha256 %s, file %s); add a new migration instead",
                 m->file, schema, PQgetvalue(res, 0, 0), sha);
        rc = -EBADMSG;
    } else {
        if (strcmp(PQgetvalue(res, 0, 1), m->file) != 0)
            CC_WARN("migration renamed: \"%s\" was recorded as \"%s\" in schema \"%s\"", m->file,
                    PQgetvalue(res, 0, 1), schema);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

static int record_migration(cc_pg *pg, const char *schema, const struct cc_pg_migration *m,
                            const char *sha)
{
    char sql[256], version[24];
    const char *params[] = {version, m->file, sha};

    snprintf(version, sizeof(version), "%ld", m->version);
    snprintf(sql, sizeof(sql),
             "INSERT INTO \"%s\".schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
             schema);
    return cc_pg_exec(pg, sql, 3, params);
}

/* Applies one file in its own locked transaction unless already recorded. Returns 1 when
 * applied, 0 when it was already there, or negative. */
static int apply_one(cc_pg *pg, const char *schema, const char *dir,
                     const struct cc_pg_migration *m)
{
    char path[4096], sha[65];
    char *body = NULL;
    size_t len = 0;
    PGresult *res;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, m->file);
    rc = read_file(path, &body, &len);
    if (rc < 0) {
        CC_ERROR("migration unreadable: \"%s\": %s", path, strerror(-rc));
        return rc;
    }
    rc = sha256_hex(body, len, sha);
    if (rc < 0)
        goto free_body;
    rc = begin_locked(pg, schema);
    if (rc < 0)
        goto free_body;
    rc = recorded_state(pg, schema, m, sha);
    if (rc != 0) {
        rc = rc == 1 ? 0 : rc; /* 1: applied before, nothing to do */
        goto rollback_tx;
    }
    res = run(pg, body, 0, NULL, true);
    if (!res) {
        CC_ERROR("migration failed, rolled back: \"%s\" in schema \"%s\" (sqlstate %s)", m->file,
                 schema, pg->sqlstate);
        rc = -EIO;
        goto rollback_tx;
    }
    PQclear(res);
    rc = record_migration(pg, schema, m, sha);
    if (rc < 0)
        goto rollback_tx;
    rc = cc_pg_commit(pg);
    if (rc == 0) {
        CC_INFO("migration applied: \"%s\" in schema \"%s\"", m->file, schema);
        rc = 1;
    }
    goto free_body;
rollback_tx:
    /* Nothing to keep: the file was applied before (the tx only read), or it failed. */
    cc_pg_rollback(pg);
free_body:
    free(body);
    return rc;
}

int cc_pg_migrate(cc_pg *pg, const char *schema, const char *dir, int *applied)
{
    struct cc_pg_migration *list = NULL;
    size_t n = 0;
    int rc, count = 0;

    if (applied)
        *applied = 0;
    if (!schema_name_valid(schema)) {
        CC_ERROR("migration schema name invalid: \"%s\" (want [a-z_][a-z0-9_]*, at most 63)",
                 schema ? schema : "(null)");
        return -EINVAL;
    }
    if (in_transaction(pg)) {
        CC_ERROR("migration refused: schema \"%s\": a transaction is open", schema);
        return -EINVAL;
    }
    rc = cc_pg_migration_list(dir, &list, &n);
    if (rc < 0)
        return rc;
    rc = ensure_migrations_table(pg, schema);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int one = apply_one(pg, schema, dir, &list[i]);
        if (one < 0)
            rc = one;
        else
            count += one;
    }
    free(list);
    if (applied)
        *applied = count;
    return rc;
}
