/* cmd_serve.c -- `arbiter serve` and `arbiter migrate`: configuration from
 * flags and environment, start-up order, signals, shutdown.
 *
 * Start-up: connect, apply pending migrations (refuse a newer schema),
 * load the snapshot, start the exposure writer and the config listener,
 * then listen. SIGTERM/SIGINT/SIGHUP (a closed terminal): stop accepting,
 * finish in-flight requests, flush exposures, exit 0. SIGUSR2: restart
 * without downtime (below).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>

#include "api/api.h"
#include "service/app.h"
#include "service/fold.h"
#include "service/ingest.h"
#include "service/leader.h"
#include "service/models.h"
#include "service/reweight.h"
#include "service/rollout_job.h"
#include "service/drift_job.h"
#include "service/sticky.h"
#include "lib/version.h"
#include "cli/commands.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "api/server.h"
#include "sql/conninfo.h"
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
    /* One token per line (several for rotation without downtime); blank
     * lines and lines starting with '#' are skipped. The lines are kept
     * newline-separated: api/server.c splits the list on ',' and
     * whitespace. */
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char buf[512], out[8192];
    size_t used = 0;
    bool any = false;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] == '\0' || buf[0] == '#')
            continue;
        size_t n = strlen(buf);
        if (used + n + 2 > sizeof(out))
            break;
        if (any)
            out[used++] = '\n';
        memcpy(out + used, buf, n);
        used += n;
        any = true;
    }
    fclose(f);
    if (!any)
        return NULL;
    out[used] = '\0';
    return ab_xstrdup(out);
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

/* ---- the options table ----------------------------------------------------
 * Every option of `serve` and `migrate`, once: its flag, its environment
 * variable, its default, its range and its help line. Parsing (flags over
 * environment over defaults), the getopt table and --help all derive from
 * it (the model: Redis config.c's standardConfig table). */

enum opt_kind {
    K_INT,    /* int field, range-checked */
    K_SIZE,   /* size_t field, range-checked */
    K_STR,    /* char * field, a new string */
    K_LISTEN, /* HOST:PORT into host and port */
    K_LEVEL,  /* log level name */
    K_SECRET  /* char * field read from a file (first line) */
};

struct opt {
    const char *flag;    /* --flag, or NULL: environment only */
    const char *env;     /* ARBITER_..., or NULL: flag only */
    const char *metavar; /* the value in --help */
    const char *def;     /* default as text (NULL: none, or computed) */
    const char *help;    /* after the variable in --help ("" for none) */
    const char *what;    /* the option's name in error messages */
    enum opt_kind kind;
    size_t off; /* offsetof(struct app_config, field) */
    long lo, hi;
};

#define F(field) offsetof(struct app_config, field)
/* clang-format off */
static const struct opt opts[] = {
    /* flag                   environment                     metavar      default        help */
    { "listen",               "ARBITER_LISTEN",               "HOST:PORT", "127.0.0.1:8080", "", "listen address", K_LISTEN, 0, 0, 0 },
    { "database-url",         "ARBITER_DATABASE_URL",         "URL",       NULL,          " (required)", "database url", K_STR, F(database_url), 0, 0 },
    { NULL,                   "ARBITER_ADMIN_TOKEN",          "TOKEN",     NULL,          "", "admin token", K_STR, F(admin_token), 0, 0 },
    { "admin-token-file",     "ARBITER_ADMIN_TOKEN_FILE",     "PATH",      NULL,          "", "admin token file", K_SECRET, F(admin_token), 0, 0 },
    { NULL,                   "ARBITER_CLIENT_TOKEN",         "TOKEN",     NULL,          "", "client token", K_STR, F(client_token), 0, 0 },
    { "client-token-file",    "ARBITER_CLIENT_TOKEN_FILE",    "PATH",      NULL,          "", "client token file", K_SECRET, F(client_token), 0, 0 },
    { NULL,                   "ARBITER_READONLY_TOKEN",       "TOKEN",     NULL,          "", "read-only token", K_STR, F(readonly_token), 0, 0 },
    { "readonly-token-file",  "ARBITER_READONLY_TOKEN_FILE",  "PATH",      NULL,          "", "read-only token file", K_SECRET, F(readonly_token), 0, 0 },
    { "log-level",            "ARBITER_LOG_LEVEL",            "LEVEL",     "info",        ": debug|info|warn|error", "log level", K_LEVEL, F(log_level), 0, 0 },
    { "threads",              "ARBITER_THREADS",              "N",         NULL,          ": HTTP workers (default: cores)", "threads", K_INT, F(threads), 1, 256 },
    { "exposure-queue",       "ARBITER_EXPOSURE_QUEUE",       "N",         "1000000",     "", "exposure queue", K_SIZE, F(exposure_queue), 1, 100000000 },
    { "sticky-cache",         "ARBITER_STICKY_CACHE",         "N",         "1000000",     " units", "sticky cache", K_SIZE, F(sticky_cache), 64, 100000000 },
    { "sticky-timeout-ms",    "ARBITER_STICKY_TIMEOUT_MS",    "N",         "50",          "", "sticky timeout", K_INT, F(sticky_timeout_ms), 1, 10000 },
    { "conn-memory",          "ARBITER_CONN_MEMORY",          "BYTES",     "8192",        "", "connection memory", K_SIZE, F(conn_memory), 2048, 1048576 },
    { "spool-dir",            "ARBITER_SPOOL_DIR",            "DIR",       NULL,          " (default var/spool/HOST-PORT)", "spool dir", K_STR, F(spool_dir), 0, 0 },
    { "spool-max-bytes",      "ARBITER_SPOOL_MAX_BYTES",      "N",         "1073741824",  "", "spool max bytes", K_SIZE, F(spool_max), 4096, 1L << 40 },
    { "ingest-queue",         "ARBITER_INGEST_QUEUE",         "N",         "200000",      " events", "ingest queue", K_SIZE, F(ingest_queue), 10000, 100000000 },
    { "event-retention-days", "ARBITER_EVENT_RETENTION_DAYS", "N",         "90",          "", "event retention days", K_INT, F(event_retention_days), 1, 36500 },
    { "commit-timeout-ms",    "ARBITER_COMMIT_TIMEOUT_MS",    "N",         "2000",        ": event commit deadline, then spool", "commit timeout ms", K_INT, F(commit_timeout_ms), 50, 600000 },
    { "metrics-max-label-sets", "ARBITER_METRICS_MAX_LABEL_SETS", "N",     "10000",       ": experiment label sets on /metrics, then \"other\" (0: no limit)", "metrics max label sets", K_SIZE, F(metrics_label_sets), 0, 100000000 },
    { "decision-tick-ms",     "ARBITER_DECISION_TICK_MS",     "N",         "10000",       ": rollout analysis tick on the leader", "decision tick ms", K_INT, F(decision_tick_ms), 50, 3600000 },
    { "tick-ms",              "ARBITER_TICK_MS",              "N",         "1000",        ": leader tick (lock, reweights)", "tick ms", K_INT, F(tick_ms), 50, 60000 },
    { "fold-checkpoint-ms",   "ARBITER_FOLD_CHECKPOINT_MS",   "N",         "30000",       ": per-unit values to unit_metrics", "fold checkpoint ms", K_INT, F(fold_checkpoint_ms), 0, 86400000 },
    { "fold-max-age-ms",      "ARBITER_FOLD_MAX_AGE_MS",      "N",         "5000",        ": decisions wait on older statistics", "fold max age ms", K_INT, F(fold_max_age_ms), 100, 3600000 },
};
/* clang-format on */
#undef F
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))
#define OPT_HELP 999 /* getopt value of --help; option i is 1000 + i */

/* --help, from the table. */
static void
usage(FILE *out)
{
    fputs("usage: arbiter serve [options]\n"
          "       arbiter migrate [--database-url URL]\n"
          "\n"
          "options (each also an environment variable):\n",
          out);
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        char left[64];
        if (o->flag)
            snprintf(left, sizeof(left), "--%s %s", o->flag, o->metavar);
        else
            snprintf(left, sizeof(left), "(environment) %s", o->metavar);
        char line[256];
        int n = snprintf(line, sizeof(line), "  %-24s  %s%s", left, o->env,
                         o->help);
        if (o->def && n >= 0 && (size_t)n < sizeof(line))
            snprintf(line + n, sizeof(line) - (size_t)n, " (default %s)",
                     o->def);
        /* longer than 79 columns: the text after "VAR: " on its own line */
        const char *colon = strchr(line + 28, ':');
        if (strlen(line) > 79 && colon != NULL)
            fprintf(out, "%.*s\n%28s%s\n", (int)(colon - line + 1), line, "",
                    colon + 2);
        else
            fprintf(out, "%s\n", line);
    }
    fputs("A --*-token-file flag or *_TOKEN_FILE variable wins over the "
          "*_TOKEN variable.\n"
          "Tokens are never logged. Without an admin token the admin "
          "routes answer\n"
          "401 to everyone; without a client token only the admin token "
          "assigns.\n"
          "Each scope takes several tokens (rotation without downtime): "
          "separated\n"
          "by commas in the environment, one per line in a file.\n",
          out);
}

/* Store one option's value; false: a usage error (printed). */
static bool
apply(const struct opt *o, const char *v, struct app_config *cfg)
{
    char *base = (char *)cfg + o->off;
    long n;
    switch (o->kind) {
    case K_LISTEN:
        if (!parse_listen(v, cfg)) {
            fprintf(stderr,
                    "arbiter: listen address must be HOST:PORT, not "
                    "\"%s\"\n",
                    v);
            return false;
        }
        return true;
    case K_LEVEL: {
        int l = log_level_parse(v);
        if (l < 0) {
            fprintf(stderr, "arbiter: unknown log level \"%s\"\n", v);
            return false;
        }
        *(int *)(void *)base = l;
        return true;
    }
    case K_INT:
    case K_SIZE:
        if (!parse_int(v, o->lo, o->hi, &n)) {
            fprintf(stderr, "arbiter: %s must be an integer in [%ld, %ld]\n",
                    o->what, o->lo, o->hi);
            return false;
        }
        if (o->kind == K_INT)
            *(int *)(void *)base = (int)n;
        else
            *(size_t *)(void *)base = (size_t)n;
        return true;
    case K_STR:
    case K_SECRET: {
        char **field = (char **)(void *)base;
        char *value = o->kind == K_STR ? ab_xstrdup(v) : read_secret_file(v);
        if (value == NULL) {
            fprintf(stderr, "arbiter: cannot read %s %s\n", o->what, v);
            return false;
        }
        free(*field);
        *field = value;
        return true;
    }
    }
    return false;
}

/* value[i]: option i from its flag, else its environment, else NULL.
 * false: a usage error (printed); exits 0 on --help. */
static bool
read_flags(int argc, char **argv, const char **value)
{
    struct option gopts[N_OPTS + 2];
    size_t g = 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        value[i] = opts[i].env ? getenv(opts[i].env) : NULL;
        if (opts[i].flag)
            gopts[g++] = (struct option){opts[i].flag, required_argument, NULL,
                                         1000 + (int)i};
    }
    gopts[g++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    gopts[g] = (struct option){NULL, 0, NULL, 0};
    int c;
    optind = 1;
    for (;;) {
        c = getopt_long(argc, argv, "h", gopts, NULL);
        if (c == -1)
            break;
        if (c == 'h' || c == OPT_HELP) {
            usage(stdout);
            exit(0);
        }
        if (c < 1000 || c >= 1000 + (int)N_OPTS) {
            usage(stderr);
            return false;
        }
        value[c - 1000] = optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "arbiter: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return false;
    }
    return true;
}

/* Defaults, then environment, then flags. false: usage error (printed). */
static bool
configure(int argc, char **argv, struct app_config *cfg)
{
    const char *value[N_OPTS];
    memset(cfg, 0, sizeof(*cfg));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = ncpu > 0 ? (int)ncpu : 2; /* computed defaults */
    cfg->reload_interval_ms = 10000;         /* not configurable */
    if (!read_flags(argc, argv, value))
        return false;
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = value[i] && *value[i] ? value[i] : opts[i].def;
        if (v != NULL && !apply(&opts[i], v, cfg))
            return false;
    }
    if (cfg->database_url == NULL) {
        fputs("arbiter: no database: set ARBITER_DATABASE_URL or "
              "--database-url (`make run` starts a private PostgreSQL)\n",
              stderr);
        return false;
    }
    if (cfg->spool_dir == NULL) {
        char dir[256];
        snprintf(dir, sizeof(dir), "var/spool/%s-%d", cfg->host, cfg->port);
        cfg->spool_dir = ab_xstrdup(dir);
    }
    return true;
}

static void
config_free(struct app_config *cfg)
{
    free(cfg->database_url);
    free(cfg->admin_token);
    free(cfg->client_token);
    free(cfg->readonly_token);
    free(cfg->spool_dir);
}

/* Connect and migrate; 0 on success, else the exit code. */
static int
migrate(const struct app_config *cfg)
{
    struct db *db;
    char redacted[512]; /* host, port, dbname, user: never a secret */
    db_conninfo_describe(cfg->database_url, redacted, sizeof(redacted));
    /* the database may still be starting: try for a while */
    int tries = 0;
    while (db_open(cfg->database_url, &db) != AB_OK) {
        if (++tries == 30) {
            log_msg(LOG_ERROR, "cannot connect to the database", "database",
                    redacted, NULL);
            return 1;
        }
        sleep(1);
    }
    int applied = 0, version = 0;
    ab_status rc = db_migrate(db, db_migrations, db_n_migrations, &applied,
                              &version);
    db_close(db);
    if (rc == AB_ECONFLICT) {
        log_json(LOG_ERROR,
                 "database schema is newer than this arbiter knows; refusing "
                 "to start",
                 json_pack("{s:i,s:s}", "schema_version", version,
                           "known_version",
                           db_n_migrations
                               ? db_migrations[db_n_migrations - 1].name
                               : "0"));
        return 1;
    }
    if (rc != AB_OK) {
        log_msg(LOG_ERROR, "migration failed", NULL);
        return 1;
    }
    log_json(LOG_INFO, "migrations applied",
             json_pack("{s:i,s:i,s:s}", "applied", applied, "schema_version",
                       version, "database", redacted));
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

/* ---- restart without downtime (SIGUSR2) -------------------------------------
 *
 *   old process                          successor (same flags, new binary)
 *   SIGUSR2: spawn the binary at the
 *   path it started from, passing the
 *   listening socket (ARBITER_LISTEN_FD)
 *   and a pipe (ARBITER_HANDOFF_FD)  -->  migrate, load the snapshot, then
 *                                         write "R" on the pipe and wait
 *                                         for the spool's lock
 *   "R": stop accepting (the socket
 *   stays open in the successor, so new
 *   connections wait in its backlog),
 *   finish in-flight requests, drain
 *   events, release the spool, exit 0 -->  take the spool, start the
 *                                         ingest and the leader, accept on
 *                                         the inherited socket
 * No connection is refused at any point: connections that arrive while
 * neither process accepts wait in the kernel's backlog (the pause lasts
 * the old process's drain). Idle keep-alive connections of the old
 * process are closed; answers given while draining say Connection: close.
 * If the successor fails or is not ready within 60 s, the old process
 * keeps serving and logs why. */
static char self_path[4096];

static void
handoff_remember_self(void)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    self_path[n > 0 ? n : 0] = '\0';
}

extern char **environ;

/* true when a successor is ready to take over. Everything the child needs
 * is built before fork() (the process has threads). */
static bool
handoff_spawn(struct server *srv, int argc, char **argv)
{
    int lfd = server_listen_fd(srv);
    int p[2];
    if (lfd < 0 || self_path[0] == '\0' || pipe(p) != 0)
        return false;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    int l2 = fcntl(lfd, F_DUPFD, 3); /* without close-on-exec */
    char lfd_s[48], pfd_s[48];
    snprintf(lfd_s, sizeof(lfd_s), "ARBITER_LISTEN_FD=%d", l2);
    snprintf(pfd_s, sizeof(pfd_s), "ARBITER_HANDOFF_FD=%d", p[1]);
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = ab_xcalloc(n_env + 3, sizeof(*envp));
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "ARBITER_LISTEN_FD=", 18) != 0 &&
            strncmp(environ[i], "ARBITER_HANDOFF_FD=", 19) != 0)
            envp[k++] = environ[i];
    envp[k++] = lfd_s;
    envp[k++] = pfd_s;
    char **args = ab_xcalloc((size_t)argc + 2, sizeof(*args));
    args[0] = "arbiter";
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = l2 >= 0 ? fork() : -1;
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(self_path, args, envp);
        _exit(127);
    }
    free(args);
    free(envp);
    close(p[1]);
    if (l2 >= 0)
        close(l2);
    if (pid < 0) {
        close(p[0]);
        return false;
    }
    char spid[16];
    snprintf(spid, sizeof(spid), "%d", (int)pid);
    log_msg(LOG_INFO, "restart: successor started", "pid", spid, "path",
            self_path, NULL);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    char c = 0;
    int r = poll(&pf, 1, 60000);
    bool ready = r == 1 && read(p[0], &c, 1) == 1 && c == 'R';
    close(p[0]);
    if (!ready) {
        log_msg(LOG_ERROR, "restart: successor not ready; still serving",
                "pid", spid, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return ready;
}

/* In a successor: tell the old process to let go. */
static void
handoff_ready(void)
{
    const char *v = getenv("ARBITER_HANDOFF_FD");
    if (v == NULL)
        return;
    int fd = atoi(v);
    if (fd > 2) {
        ssize_t w = write(fd, "R", 1);
        (void)w;
        close(fd);
    }
    unsetenv("ARBITER_HANDOFF_FD");
}

/* Everything `serve` starts, so that one exit path can stop it. */
struct serve {
    struct app app;
    bool app_started; /* app_init() ran */
    struct fold *fold;
    struct reweight *rw;
    struct rollout_job *rj;
    struct server *srv;
};

/* The one exit path: stop what started, in reverse order, and answer
 * 'code'. Event posts are answered before the server stops (their answers
 * wait on the writer, and a stopped server cannot send them); the leader
 * goes before its jobs (it releases the lock: another instance takes
 * over). drain_ms bounds the ingest drain. */
static int
serve_exit(struct serve *s, int drain_ms, int code)
{
    struct app *app = &s->app;
    if (s->srv != NULL) {
        /* stop accepting and let in-flight requests finish (event posts
         * are answered by the writer, still running), then drain the
         * writer; anything that arrives meanwhile on an open connection
         * is still answered */
        server_drain(s->srv);
        ingest_drain(app->ingest, drain_ms);
        server_stop(s->srv);
    }
    leader_free(app->leader);
    app->leader = NULL;
    fold_free(s->fold);
    reweight_free(s->rw);
    rollout_job_free(s->rj);
    if (app->ingest != NULL)
        ingest_stop(app->ingest, drain_ms); /* drained above if serving */
    app->ingest = NULL;
    if (s->app_started) {
        models_stop();
        app_shutdown(app);
        metrics_free();
    }
    config_free(&app->cfg);
    return code;
}

/* Start the ingest writer, the config listener and the decision leader
 * with its jobs; false (logged) when one cannot start. */
static bool
serve_start_workers(struct serve *s)
{
    struct app *app = &s->app;
    struct ingest_config icfg = {app->cfg.spool_dir, app->cfg.spool_max,
                                 app->cfg.ingest_queue,
                                 app->cfg.event_retention_days,
                                 app->cfg.commit_timeout_ms};
    if (strncmp(app->cfg.spool_dir, "var/spool/", 10) == 0) {
        mkdir("var", 0755);
        mkdir("var/spool", 0700);
    }
    /* a successor (SIGUSR2 restart, below): load the snapshot, tell the old
     * process to let go, then wait for it to release the spool */
    bool successor = getenv("ARBITER_HANDOFF_FD") != NULL;
    if (successor) {
        app_start_listener(app);
        for (int i = 0; i < 100 && atomic_load(&app->m_reloads) == 0; i++)
            usleep(50000);
        handoff_ready();
    }
    ab_status irc = ingest_new(app, &icfg, &app->ingest);
    for (int i = 0; successor && irc == AB_ECONFLICT && i < 6000; i++) {
        usleep(10000);
        irc = ingest_new(app, &icfg, &app->ingest);
    }
    if (irc != AB_OK) {
        app->ingest = NULL;
        log_msg(LOG_ERROR,
                irc == AB_ECONFLICT
                    ? "spool directory is in use by another process"
                    : "cannot open the spool directory",
                "dir", app->cfg.spool_dir, NULL);
        return false;
    }
    if (!successor)
        app_start_listener(app);
    /* wait (bounded) for the first snapshot so /readyz and assignment see
     * the stored experiments from the first request */
    for (int i = 0; i < 100 && atomic_load(&app->m_reloads) == 0; i++)
        usleep(50000);
    /* the decision leader and its jobs (service/leader.h) */
    if (reweight_new(&s->rw) != AB_OK ||
        leader_new(app->cfg.database_url, app->cfg.tick_ms, &app->leader) !=
            AB_OK) {
        log_msg(LOG_ERROR, "cannot start the decision leader", NULL);
        return false;
    }
    /* first: the jobs after it read statistics it has just folded */
    s->fold = fold_new(app->cfg.fold_checkpoint_ms);
    leader_add_job(app->leader, "fold", fold_job, s->fold);
    /* readers wake the fold between ticks (service/fold_read.h) */
    leader_on_wake(app->leader, fold_job, s->fold);
    fold_set_leader(s->fold, app->leader);
    leader_add_job(app->leader, "event_maintenance", ingest_maintain_job,
                   app->ingest);
    reweight_set_fold_max_age(s->rw, app->cfg.fold_max_age_ms);
    leader_add_job(app->leader, "bandit_reweight", reweight_job, s->rw);
    s->rj = rollout_job_new(app, app->cfg.decision_tick_ms);
    leader_add_job(app->leader, "rollout", rollout_job_tick, s->rj);
    leader_add_job(app->leader, "drift", drift_job_tick, app); /* issue 16 */
    models_start(app); /* service/models.h: production versions in memory */
    leader_start(app->leader);
    return true;
}


int
cmd_serve(int argc, char **argv)
{
    struct serve s;
    memset(&s, 0, sizeof(s));
    struct app *app = &s.app;
    if (!configure(argc, argv, &app->cfg))
        return serve_exit(&s, 0, 2);
    log_set_level(app->cfg.log_level);
    db_set_logger(db_logger);
    gsl_set_error_handler_off();
    int rc = migrate(&app->cfg);
    if (rc != 0)
        return serve_exit(&s, 0, rc);

    /* Block the signals in every thread; the main thread waits for them.
     * A shell starts background jobs with SIGINT ignored: restore it (an
     * ignored signal is never pending, so sigwait would not see it).
     * SIGHUP stays ignored under nohup, on purpose. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    handoff_remember_self();

    api_routes_metrics_init();
    metrics_set_label_limit(app->cfg.metrics_label_sets);
    app_init(app);
    s.app_started = true;
    /* the sticky store's lookup threads connect now, not on the first
     * lookup (service/sticky.h) */
    sticky_store_start(app->sticky, app->cfg.database_url,
                       app->cfg.sticky_timeout_ms);
    if (!serve_start_workers(&s))
        return serve_exit(&s, 10000, 1);

    if (server_start(app, &s.srv) != AB_OK) { /* it logged why */
        s.srv = NULL;
        return serve_exit(&s, 0, 1);
    }
    unsetenv("ARBITER_LISTEN_FD");
    log_json(LOG_INFO, "listening",
             json_pack("{s:s,s:i,s:i,s:s,s:i}", "host", app->cfg.host, "port",
                       app->cfg.port, "threads", app->cfg.threads, "version",
                       ARBITER_VERSION, "pid", (int)getpid()));

    int sig = 0;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGUSR2 || handoff_spawn(s.srv, argc, argv))
            break;
    }
    log_msg(LOG_INFO, "shutting down", "signal",
            sig == SIGTERM   ? "SIGTERM"
            : sig == SIGHUP  ? "SIGHUP"
            : sig == SIGUSR2 ? "SIGUSR2 (successor ready)"
                             : "SIGINT",
            NULL);
    rc = serve_exit(&s, 10000, 0);
    log_msg(LOG_INFO, "stopped", NULL);
    return rc;
}
