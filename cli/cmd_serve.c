/* cmd_serve.c -- `arbiter serve` and `arbiter migrate`: configuration from
 * flags and environment, start-up order, signals, shutdown.
 *
 * Start-up: connect, apply pending migrations (refuse a newer schema),
 * load the snapshot, start the exposure writer and the config listener,
 * then listen. SIGTERM/SIGINT: stop accepting, finish in-flight requests,
 * flush exposures, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>

#include "api/api.h"
#include "service/app.h"
#include "service/ingest.h"
#include "service/leader.h"
#include "service/models.h"
#include "service/reweight.h"
#include "service/rollout_job.h"
#include "lib/version.h"
#include "cli/commands.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "api/server.h"
#include "sql/db.h"
#include "sql/migrations.h"

static void
db_logger(const char *what, const char *detail)
{
    char d[512];
    snprintf(d, sizeof(d), "%s", detail);
    size_t n = strlen(d);
    while (n && (d[n - 1] == '\n' || d[n - 1] == ' '))
        d[--n] = '\0';
    log_msg(LOG_WARN, "database error", "op", what, "detail", d, NULL);
}

/* Read a secret from a file: the first line, without the newline. */
static char *
read_secret_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char buf[512];
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (line == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return ab_xstrdup(buf);
}

static bool
parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool
parse_listen(const char *s, struct app_config *cfg)
{
    const char *colon = strrchr(s, ':');
    long port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof(cfg->host) ||
        !parse_int(colon + 1, 1, 65535, &port))
        return false;
    memcpy(cfg->host, s, (size_t)(colon - s));
    cfg->host[colon - s] = '\0';
    if (strcmp(cfg->host, "localhost") == 0 || cfg->host[0] == '\0')
        snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = (int)port;
    return true;
}

static const char serve_usage[] =
    "usage: arbiter serve [options]\n"
    "       arbiter migrate [--database-url URL]\n"
    "\n"
    "options (each also an environment variable):\n"
    "  --listen HOST:PORT        ARBITER_LISTEN (default 127.0.0.1:8080)\n"
    "  --database-url URL        ARBITER_DATABASE_URL (required)\n"
    "  --admin-token-file PATH   ARBITER_ADMIN_TOKEN or ARBITER_ADMIN_TOKEN_FILE\n"
    "  --client-token-file PATH  ARBITER_CLIENT_TOKEN or ARBITER_CLIENT_TOKEN_FILE\n"
    "  --log-level LEVEL         ARBITER_LOG_LEVEL: debug|info|warn|error\n"
    "  --threads N               ARBITER_THREADS: HTTP workers (default: cores)\n"
    "  --exposure-queue N        ARBITER_EXPOSURE_QUEUE (default 1000000)\n"
    "  --sticky-cache N          ARBITER_STICKY_CACHE units (default 1000000)\n"
    "  --sticky-timeout-ms N     ARBITER_STICKY_TIMEOUT_MS (default 50)\n"
    "  --conn-memory BYTES       ARBITER_CONN_MEMORY (default 8192)\n"
    "  --spool-dir DIR           ARBITER_SPOOL_DIR (default var/spool/HOST-PORT)\n"
    "  --spool-max-bytes N       ARBITER_SPOOL_MAX_BYTES (default 1073741824)\n"
    "  --ingest-queue N          ARBITER_INGEST_QUEUE events (default 200000)\n"
    "  --event-retention-days N  ARBITER_EVENT_RETENTION_DAYS (default 90)\n"
    "  --decision-tick-ms N      ARBITER_DECISION_TICK_MS: rollout analysis\n"
    "                            tick on the leader (default 10000)\n"
    "  --tick-ms N               ARBITER_TICK_MS: decision-leader tick, lock\n"
    "                            attempts and bandit reweights (default 1000)\n"
    "Tokens are never logged. Without an admin token the admin routes answer\n"
    "401 to everyone; without a client token only the admin token assigns.\n";

enum {
    OPT_LISTEN = 1000,
    OPT_DB,
    OPT_ADMIN_FILE,
    OPT_CLIENT_FILE,
    OPT_LOG,
    OPT_THREADS,
    OPT_QUEUE,
    OPT_STICKY_CACHE,
    OPT_STICKY_TIMEOUT,
    OPT_CONN_MEMORY,
    OPT_SPOOL_DIR,
    OPT_SPOOL_MAX,
    OPT_INGEST_QUEUE,
    OPT_RETENTION,
    OPT_TICK,
    OPT_DECISION_TICK,
    OPT_HELP
};

/* Defaults, then environment, then flags. false: usage error (printed). */
static bool
configure(int argc, char **argv, struct app_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = 8080;
    cfg->log_level = LOG_INFO;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = ncpu > 0 ? (int)ncpu : 2;
    cfg->conn_memory = 8192;
    cfg->exposure_queue = 1000000;
    cfg->sticky_timeout_ms = 50;
    cfg->sticky_cache = 1000000;
    cfg->reload_interval_ms = 10000;
    cfg->spool_max = (size_t)1 << 30;
    cfg->ingest_queue = 200000;
    cfg->event_retention_days = 90;
    cfg->tick_ms = 1000;
    cfg->decision_tick_ms = 10000;

    const char *listen = getenv("ARBITER_LISTEN");
    const char *url = getenv("ARBITER_DATABASE_URL");
    const char *admin = getenv("ARBITER_ADMIN_TOKEN");
    const char *client = getenv("ARBITER_CLIENT_TOKEN");
    const char *admin_file = getenv("ARBITER_ADMIN_TOKEN_FILE");
    const char *client_file = getenv("ARBITER_CLIENT_TOKEN_FILE");
    const char *level = getenv("ARBITER_LOG_LEVEL");
    const char *threads = getenv("ARBITER_THREADS");
    const char *queue = getenv("ARBITER_EXPOSURE_QUEUE");
    const char *scache = getenv("ARBITER_STICKY_CACHE");
    const char *stimeout = getenv("ARBITER_STICKY_TIMEOUT_MS");
    const char *cmem = getenv("ARBITER_CONN_MEMORY");
    const char *dtick = getenv("ARBITER_DECISION_TICK_MS");
    const char *spool_dir = getenv("ARBITER_SPOOL_DIR");
    const char *spool_max = getenv("ARBITER_SPOOL_MAX_BYTES");
    const char *iqueue = getenv("ARBITER_INGEST_QUEUE");
    const char *retention = getenv("ARBITER_EVENT_RETENTION_DAYS");
    const char *tick = getenv("ARBITER_TICK_MS");

    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"database-url", required_argument, NULL, OPT_DB},
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_FILE},
        {"client-token-file", required_argument, NULL, OPT_CLIENT_FILE},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"exposure-queue", required_argument, NULL, OPT_QUEUE},
        {"sticky-cache", required_argument, NULL, OPT_STICKY_CACHE},
        {"sticky-timeout-ms", required_argument, NULL, OPT_STICKY_TIMEOUT},
        {"conn-memory", required_argument, NULL, OPT_CONN_MEMORY},
        {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
        {"spool-max-bytes", required_argument, NULL, OPT_SPOOL_MAX},
        {"ingest-queue", required_argument, NULL, OPT_INGEST_QUEUE},
        {"event-retention-days", required_argument, NULL, OPT_RETENTION},
        {"tick-ms", required_argument, NULL, OPT_TICK},
        {"decision-tick-ms", required_argument, NULL, OPT_DECISION_TICK},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN: listen = optarg; break;
        case OPT_DB: url = optarg; break;
        case OPT_ADMIN_FILE: admin_file = optarg; admin = NULL; break;
        case OPT_CLIENT_FILE: client_file = optarg; client = NULL; break;
        case OPT_LOG: level = optarg; break;
        case OPT_THREADS: threads = optarg; break;
        case OPT_QUEUE: queue = optarg; break;
        case OPT_STICKY_CACHE: scache = optarg; break;
        case OPT_STICKY_TIMEOUT: stimeout = optarg; break;
        case OPT_CONN_MEMORY: cmem = optarg; break;
        case OPT_SPOOL_DIR: spool_dir = optarg; break;
        case OPT_SPOOL_MAX: spool_max = optarg; break;
        case OPT_INGEST_QUEUE: iqueue = optarg; break;
        case OPT_RETENTION: retention = optarg; break;
        case OPT_TICK: tick = optarg; break;
        case OPT_DECISION_TICK: dtick = optarg; break;
        case 'h':
        case OPT_HELP: fputs(serve_usage, stdout); exit(0);
        default: fputs(serve_usage, stderr); return false;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "arbiter: unexpected argument \"%s\"\n%s",
                argv[optind], serve_usage);
        return false;
    }
    long v;
    if (listen && !parse_listen(listen, cfg)) {
        fprintf(stderr, "arbiter: listen address must be HOST:PORT, not "
                        "\"%s\"\n", listen);
        return false;
    }
    if (level) {
        int l = log_level_parse(level);
        if (l < 0) {
            fprintf(stderr, "arbiter: unknown log level \"%s\"\n", level);
            return false;
        }
        cfg->log_level = l;
    }
#define NUM(src, lo, hi, field, name)                                         \
    if (src) {                                                                \
        if (!parse_int(src, lo, hi, &v)) {                                    \
            fprintf(stderr, "arbiter: %s must be an integer in [%ld, %ld]\n", \
                    name, (long)(lo), (long)(hi));                            \
            return false;                                                     \
        }                                                                     \
        cfg->field = (__typeof__(cfg->field))v;                               \
    }
    NUM(threads, 1, 256, threads, "threads")
    NUM(queue, 1, 100000000, exposure_queue, "exposure queue")
    NUM(scache, 64, 100000000, sticky_cache, "sticky cache")
    NUM(stimeout, 1, 10000, sticky_timeout_ms, "sticky timeout")
    NUM(cmem, 2048, 1048576, conn_memory, "connection memory")
    NUM(spool_max, 4096, 1L << 40, spool_max, "spool max bytes")
    NUM(iqueue, 10000, 100000000, ingest_queue, "ingest queue")
    NUM(retention, 1, 36500, event_retention_days, "event retention days")
    NUM(tick, 50, 60000, tick_ms, "tick ms")
    NUM(dtick, 50, 3600000, decision_tick_ms, "decision tick ms")
#undef NUM
    if (url == NULL || *url == '\0') {
        fputs("arbiter: no database: set ARBITER_DATABASE_URL or "
              "--database-url (`make run` starts a private PostgreSQL)\n",
              stderr);
        return false;
    }
    cfg->database_url = ab_xstrdup(url);
    if (spool_dir && *spool_dir)
        cfg->spool_dir = ab_xstrdup(spool_dir);
    else {
        char dir[256];
        snprintf(dir, sizeof(dir), "var/spool/%s-%d", cfg->host, cfg->port);
        cfg->spool_dir = ab_xstrdup(dir);
    }
    if (admin_file) {
        cfg->admin_token = read_secret_file(admin_file);
        if (cfg->admin_token == NULL) {
            fprintf(stderr, "arbiter: cannot read admin token file %s\n",
                    admin_file);
            return false;
        }
    } else if (admin)
        cfg->admin_token = ab_xstrdup(admin);
    if (client_file) {
        cfg->client_token = read_secret_file(client_file);
        if (cfg->client_token == NULL) {
            fprintf(stderr, "arbiter: cannot read client token file %s\n",
                    client_file);
            return false;
        }
    } else if (client)
        cfg->client_token = ab_xstrdup(client);
    return true;
}

static void
config_free(struct app_config *cfg)
{
    free(cfg->database_url);
    free(cfg->admin_token);
    free(cfg->client_token);
    free(cfg->spool_dir);
}

/* Connect and migrate; 0 on success, else the exit code. */
static int
migrate(const struct app_config *cfg)
{
    struct db *db;
    char redacted[512];
    log_redact_url(cfg->database_url, redacted, sizeof(redacted));
    /* the database may still be starting: try for a while */
    int tries = 0;
    while (db_open(cfg->database_url, &db) != AB_OK) {
        if (++tries == 30) {
            log_msg(LOG_ERROR, "cannot connect to the database", "url",
                    redacted, NULL);
            return 1;
        }
        sleep(1);
    }
    int applied = 0, version = 0;
    ab_status rc = db_migrate(db, db_migrations, db_n_migrations, &applied,
                              &version);
    db_close(db);
    char a[16], v[16];
    snprintf(a, sizeof(a), "%d", applied);
    snprintf(v, sizeof(v), "%d", version);
    if (rc == AB_ECONFLICT) {
        log_msg(LOG_ERROR,
                "database schema is newer than this arbiter knows; refusing "
                "to start",
                "schema_version", v, "known_version",
                db_n_migrations ? db_migrations[db_n_migrations - 1].name : "0",
                NULL);
        return 1;
    }
    if (rc != AB_OK) {
        log_msg(LOG_ERROR, "migration failed", NULL);
        return 1;
    }
    log_msg(LOG_INFO, "migrations applied", "applied", a, "schema_version", v,
            "url", redacted, NULL);
    return 0;
}

int
cmd_migrate(int argc, char **argv)
{
    struct app_config cfg;
    if (!configure(argc, argv, &cfg)) {
        config_free(&cfg);
        return 2;
    }
    log_set_level(cfg.log_level);
    db_set_logger(db_logger);
    int rc = migrate(&cfg);
    config_free(&cfg);
    return rc;
}

int
cmd_serve(int argc, char **argv)
{
    struct app app;
    memset(&app, 0, sizeof(app));
    if (!configure(argc, argv, &app.cfg)) {
        config_free(&app.cfg);
        return 2;
    }
    log_set_level(app.cfg.log_level);
    db_set_logger(db_logger);
    gsl_set_error_handler_off();
    int rc = migrate(&app.cfg);
    if (rc != 0) {
        config_free(&app.cfg);
        return rc;
    }

    /* Block the signals in every thread; the main thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    api_routes_metrics_init();
    app_init(&app);
    struct ingest_config icfg = {app.cfg.spool_dir, app.cfg.spool_max,
                                 app.cfg.ingest_queue,
                                 app.cfg.event_retention_days};
    if (strncmp(app.cfg.spool_dir, "var/spool/", 10) == 0) {
        mkdir("var", 0755);
        mkdir("var/spool", 0700);
    }
    ab_status irc = ingest_new(&app, &icfg, &app.ingest);
    if (irc != AB_OK) {
        log_msg(LOG_ERROR,
                irc == AB_ECONFLICT
                    ? "spool directory is in use by another process"
                    : "cannot open the spool directory",
                "dir", app.cfg.spool_dir, NULL);
        app_shutdown(&app);
        metrics_free();
        config_free(&app.cfg);
        return 1;
    }
    app_start_listener(&app);
    /* wait (bounded) for the first snapshot so /readyz and assignment see
     * the stored experiments from the first request */
    for (int i = 0; i < 100 && atomic_load(&app.m_reloads) == 0; i++)
        usleep(50000);
    /* the decision leader and its jobs (service/leader.h) */
    struct reweight *rw = NULL;
    if (reweight_new(&rw) != AB_OK ||
        leader_new(&app, app.cfg.tick_ms, &app.leader) != AB_OK) {
        log_msg(LOG_ERROR, "cannot start the decision leader", NULL);
        reweight_free(rw);
        ingest_stop(app.ingest, 10000);
        app.ingest = NULL;
        app_shutdown(&app);
        metrics_free();
        config_free(&app.cfg);
        return 1;
    }
    leader_add_job(app.leader, "event_maintenance", ingest_maintain_job,
                   app.ingest);
    leader_add_job(app.leader, "bandit_reweight", reweight_job, rw);
    struct rollout_job *rj = rollout_job_new(&app, app.cfg.decision_tick_ms);
    leader_add_job(app.leader, "rollout", rollout_job_tick, rj);
    leader_start(app.leader);
    models_start(&app); /* service/models.h: production versions in memory */

    struct server *srv;
    if (server_start(&app, &srv) != AB_OK) {
        char port[16];
        snprintf(port, sizeof(port), "%d", app.cfg.port);
        log_msg(LOG_ERROR, "cannot listen", "host", app.cfg.host, "port",
                port, NULL);
        leader_free(app.leader);
        app.leader = NULL;
        reweight_free(rw);
        rollout_job_free(rj);
        ingest_stop(app.ingest, 0);
        app.ingest = NULL;
        app_shutdown(&app);
        metrics_free();
        config_free(&app.cfg);
        return 1;
    }
    char port[16], threads[16];
    snprintf(port, sizeof(port), "%d", app.cfg.port);
    snprintf(threads, sizeof(threads), "%d", app.cfg.threads);
    log_msg(LOG_INFO, "listening", "host", app.cfg.host, "port", port,
            "threads", threads, "version", ARBITER_VERSION, NULL);

    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "shutting down", "signal",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    /* answer every event post first: their answers wait on the writer
     * (deferred), and a stopped server cannot send them */
    ingest_drain(app.ingest, 10000);
    server_stop(srv);
    leader_free(app.leader); /* releases the lock: another takes over */
    app.leader = NULL;
    reweight_free(rw);
    rollout_job_free(rj);
    ingest_free(app.ingest); /* drained above */
    app.ingest = NULL;
    models_stop();
    app_shutdown(&app);
    metrics_free();
    config_free(&app.cfg);
    log_msg(LOG_INFO, "stopped", NULL);
    return 0;
}
