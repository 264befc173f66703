/* copy_ceiling.c -- the raw libpq COPY ceiling of `make bench-ingest`: how
 * fast the same PostgreSQL stores the very rows that arbiter just stored,
 * when nothing but COPY stands between the rows and the table.
 *
 *   copy_ceiling --url URL [--clients 2] [--rows-per-xact 50000]
 *                [--where SQL] [--pg-pid POSTMASTER_PID]
 *
 * 1. The rows: COPY (SELECT experiment_id, event_id, unit, arm, metric,
 *    value, ts, attributes, txid FROM arbiter.events_raw [WHERE ...]) TO STDOUT,
 *    kept in memory as COPY text lines (so the ceiling sends byte for byte
 *    what arbiter's raw table holds; received_at takes its default now()).
 * 2. The target: bench_copy.events, created fresh as
 *    (LIKE arbiter.events_raw INCLUDING DEFAULTS) plus the same indexes
 *    (experiment_id, metric, unit) and (txid, the fold's watermark column) -- one plain table, which is what one
 *    monthly partition of events_raw is. Logged, fsync on,
 *    synchronous_commit on: the same durability as arbiter's commits.
 * 3. --clients connections, each taking a contiguous share of the rows and
 *    sending COPY ... FROM STDIN statements of --rows-per-xact rows; each
 *    statement is its own transaction (autocommit), so every chunk ends in
 *    a commit flush like one group commit of arbiter.
 *
 *   ceiling rows/s = rows / (time from the first COPY to the last commit)
 *
 * What it includes: libpq framing, COPY text parsing, heap multi-insert,
 * the btree index, WAL and the commit fsyncs. What it leaves out: HTTP,
 * JSON, validation, arm resolution, idempotency, exposures and the
 * incremental aggregates -- everything arbiter adds on top. (COPY's
 * batched heap_multi_insert is the fastest path into a heap; PostgreSQL
 * documentation, "Populating a Database", section 14.4.2.)
 * Prints: rows=N clients=C rows_per_xact=B seconds=T rps=R cpu_s=(this
 * process's user + system CPU while it COPYs) pg_cpu_s=(the same for the
 * whole PostgreSQL cluster, with --pg-pid; -1 without)
 */
#include <dirent.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct rows {
    char *text;    /* COPY text lines, each ending in '\n' */
    size_t len;
    size_t *start; /* offset of row i; start[n] = len */
    size_t n;
};

struct worker {
    const char *url;
    const struct rows *rows;
    size_t first, last; /* [first, last) */
    size_t per_xact;
    pthread_t thread;
    PGconn *conn;
    pthread_barrier_t *go;
    int failed;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's user + system CPU seconds so far. */
static double
cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of a PostgreSQL cluster: the postmaster (with its reaped
 * children) and every live child (backends, WAL writer, checkpointer ...),
 * from /proc/PID/stat utime + stime (fields 14, 15; 16, 17 for reaped
 * children), proc(5). -1 when pm is 0 or unreadable. */
static int
stat_ticks(long pid, long *ppid, long long *own, long long *reaped)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* after the command name */
    unsigned long long ut, st, cut, cst;
    long pp;
    if (p == NULL ||
        sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
                      " %llu %llu",
               &pp, &ut, &st, &cut, &cst) != 5)
        return 0;
    *ppid = pp;
    *own = (long long)(ut + st);
    *reaped = (long long)(cut + cst);
    return 1;
}

static double
pg_cpu(long pm)
{
    long pp;
    long long own, reaped, total;
    if (pm <= 0 || !stat_ticks(pm, &pp, &own, &reaped))
        return -1;
    total = own + reaped;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid > 0 && pid != pm && stat_ticks(pid, &pp, &own, &reaped) &&
            pp == pm)
            total += own;
    }
    if (d)
        closedir(d);
    return (double)total / (double)sysconf(_SC_CLK_TCK);
}

static int
exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
             PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "copy_ceiling: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

/* Read the source rows with COPY TO STDOUT. */
static int
rows_fetch(PGconn *conn, const char *where, struct rows *out)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "COPY (SELECT experiment_id, event_id, unit, arm, metric, "
             "value, ts, attributes, txid FROM arbiter.events_raw %s%s)"
             " TO STDOUT",
             where ? "WHERE " : "", where ? where : "");
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(conn));
        PQclear(res);
        return 0;
    }
    PQclear(res);
    size_t cap = 1 << 20, scap = 1 << 16;
    out->text = malloc(cap);
    out->start = malloc(scap * sizeof(*out->start));
    out->len = out->n = 0;
    for (;;) {
        char *line;
        int n = PQgetCopyData(conn, &line, 0);
        if (n == -1)
            break;
        if (n < 0) {
            fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(conn));
            return 0;
        }
        while (out->len + (size_t)n > cap)
            cap *= 2;
        out->text = realloc(out->text, cap);
        if (out->n + 2 > scap) {
            scap *= 2;
            out->start = realloc(out->start, scap * sizeof(*out->start));
        }
        if (out->text == NULL || out->start == NULL)
            return 0;
        out->start[out->n++] = out->len;
        memcpy(out->text + out->len, line, (size_t)n);
        out->len += (size_t)n;
        PQfreemem(line);
    }
    out->start[out->n] = out->len;
    res = PQgetResult(conn);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    return ok;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    const struct rows *r = w->rows;
    pthread_barrier_wait(w->go);
    for (size_t i = w->first; i < w->last; i += w->per_xact) {
        size_t j = i + w->per_xact < w->last ? i + w->per_xact : w->last;
        PGresult *res = PQexec(w->conn,
                               "COPY bench_copy.events (experiment_id, "
                               "event_id, unit, arm, metric, value, ts, "
                               "attributes, txid) FROM STDIN");
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(w->conn));
            PQclear(res);
            w->failed = 1;
            return NULL;
        }
        PQclear(res);
        const char *p = r->text + r->start[i];
        size_t len = r->start[j] - r->start[i];
        if (PQputCopyData(w->conn, p, (int)len) != 1 ||
            PQputCopyEnd(w->conn, NULL) != 1) {
            fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(w->conn));
            w->failed = 1;
            return NULL;
        }
        res = PQgetResult(w->conn);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(w->conn));
            w->failed = 1;
        }
        PQclear(res);
        while ((res = PQgetResult(w->conn)) != NULL)
            PQclear(res);
        if (w->failed)
            return NULL;
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *where = NULL;
    long pm = 0;
    int clients = 2;
    long per_xact = 50000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--clients") == 0)
            clients = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rows-per-xact") == 0)
            per_xact = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--where") == 0)
            where = argv[i + 1];
        else if (strcmp(argv[i], "--pg-pid") == 0)
            pm = strtol(argv[i + 1], NULL, 10);
        else
            url = NULL, i = argc;
    }
    if (url == NULL || clients < 1 || clients > 64 || per_xact < 1) {
        fputs("usage: copy_ceiling --url URL [--clients N] "
              "[--rows-per-xact N] [--where SQL] [--pg-pid PID]\n",
              stderr);
        return 2;
    }
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(conn));
        return 1;
    }
    struct rows rows;
    if (!rows_fetch(conn, where, &rows))
        return 1;
    if (rows.n == 0) {
        fputs("copy_ceiling: arbiter.events_raw has no rows\n", stderr);
        return 1;
    }
    if (!exec_ok(conn, "SET client_min_messages = warning") ||
        !exec_ok(conn, "DROP SCHEMA IF EXISTS bench_copy CASCADE") ||
        !exec_ok(conn, "CREATE SCHEMA bench_copy") ||
        !exec_ok(conn, "CREATE TABLE bench_copy.events (LIKE "
                       "arbiter.events_raw INCLUDING DEFAULTS)") ||
        !exec_ok(conn, "CREATE INDEX ON bench_copy.events (experiment_id, "
                       "metric, unit)") ||
        !exec_ok(conn, "CREATE INDEX ON bench_copy.events (txid)") ||
        !exec_ok(conn, "CHECKPOINT"))
        return 1;

    struct worker *ws = calloc((size_t)clients, sizeof(*ws));
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)clients + 1);
    for (int c = 0; c < clients; c++) {
        struct worker *w = &ws[c];
        w->url = url;
        w->rows = &rows;
        w->first = rows.n * (size_t)c / (size_t)clients;
        w->last = rows.n * (size_t)(c + 1) / (size_t)clients;
        w->per_xact = (size_t)per_xact;
        w->go = &go;
        w->conn = PQconnectdb(url);
        if (PQstatus(w->conn) != CONNECTION_OK) {
            fprintf(stderr, "copy_ceiling: %s", PQerrorMessage(w->conn));
            return 1;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return 1;
    }
    double cpu0 = cpu_now();
    double pg0 = pg_cpu(pm);
    pthread_barrier_wait(&go);
    double t0 = now_s();
    int failed = 0;
    for (int c = 0; c < clients; c++) {
        pthread_join(ws[c].thread, NULL);
        failed |= ws[c].failed;
    }
    double secs = now_s() - t0;
    double pg = pg0 < 0 ? -1 : pg_cpu(pm) - pg0; /* backends still live */
    for (int c = 0; c < clients; c++)
        PQfinish(ws[c].conn);
    PGresult *res = PQexec(conn, "SELECT count(*) FROM bench_copy.events");
    long stored = PQresultStatus(res) == PGRES_TUPLES_OK
                      ? strtol(PQgetvalue(res, 0, 0), NULL, 10)
                      : -1;
    PQclear(res);
    exec_ok(conn, "DROP SCHEMA bench_copy CASCADE");
    PQfinish(conn);
    if (failed || stored != (long)rows.n) {
        fprintf(stderr, "copy_ceiling: stored %ld of %zu rows\n", stored,
                rows.n);
        return 1;
    }
    double cpu = cpu_now() - cpu0;
    printf("rows=%zu clients=%d rows_per_xact=%ld seconds=%.3f rps=%.0f "
           "cpu_s=%.3f pg_cpu_s=%.3f\n",
           rows.n, clients, per_xact, secs, (double)rows.n / secs, cpu, pg);
    free(ws);
    free(rows.text);
    free(rows.start);
    return 0;
}
