/* cmd_rollout.c -- `arbiter rollout wait KEY`: block until a rollout ends,
 * printing progress, and exit with a code a CI/CD pipeline can gate on:
 *
 *   0  promoted        3  rolled back      4  stopped (concluded or failed)
 *   5  timed out       1  database error   2  usage error / no such key
 *
 * It reads PostgreSQL (the source of truth) directly, so it works against
 * any arbiter deployment without a token: ARBITER_DATABASE_URL or
 * --database-url. A paused rollout keeps it waiting (a human may resume).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "sql/db.h"
#include "sql/db_rollout.h"

enum {
    EXIT_PROMOTED = 0,
    EXIT_DB = 1,
    EXIT_USAGE = 2,
    EXIT_ROLLED_BACK = 3,
    EXIT_STOPPED = 4,
    EXIT_TIMEOUT = 5
};

static const char usage[] =
    "usage: arbiter rollout wait KEY [--timeout SECONDS] [--interval SECONDS]\n"
    "                               [--database-url URL]\n"
    "Waits until the experiment is promoted, rolled back or stopped.\n"
    "Exit codes: 0 promoted, 3 rolled back, 4 stopped, 5 timed out,\n"
    "            1 database error, 2 usage error or unknown experiment.\n";

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e7)
        return false;
    *out = v;
    return true;
}

/* The last decision's action and reason, into buf. */
static void
last_decision(struct db *db, const char *key, char *buf, size_t len)
{
    char *text = NULL;
    buf[0] = '\0';
    if (db_decisions_json(db, key, &text) != AB_OK)
        return;
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    json_t *last = json_array_get(arr, json_array_size(arr) - 1);
    if (last)
        snprintf(buf, len, "%s (%s) %s",
                 json_string_value(json_object_get(last, "action")),
                 json_string_value(json_object_get(last, "actor")),
                 json_string_value(json_object_get(last, "reason")));
    json_decref(arr);
}

static int
wait_for(const char *url, const char *key, double timeout, double interval)
{
    struct db *db = NULL;
    double t0 = now_s();
    /* the database may be starting or busy: keep trying until timeout */
    while (db_open(url, &db) != AB_OK) {
        if (now_s() - t0 > timeout) {
            fprintf(stderr,
                    "arbiter rollout: cannot connect to the database\n");
            return EXIT_DB;
        }
        usleep((useconds_t)(interval * 1e6));
    }
    char last_line[1024] = "";
    int code = EXIT_TIMEOUT;
    for (;;) {
        struct db_experiment row = {0};
        ab_status rc = db_experiment_get(db, key, &row);
        if (rc == AB_ENOTFOUND) {
            fprintf(stderr, "arbiter rollout: no experiment \"%s\"\n", key);
            code = EXIT_USAGE;
            break;
        }
        if (rc != AB_OK) {
            /* the database may be restarting: keep trying until timeout */
            if (now_s() - t0 > timeout)
                break;
            usleep((useconds_t)(interval * 1e6));
            continue;
        }
        struct db_rollout r = {0};
        char phase[64] = "-";
        int step = 0;
        if (db_rollout_load(db, row.id, &r) == AB_OK) {
            snprintf(phase, sizeof(phase), "%s", r.phase);
            step = r.step;
            db_rollout_clear(&r);
        }
        json_t *def = json_loads(row.definition, 0, NULL);
        char weights[256] = "";
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(def, "arms"), i, a) {
            size_t l = strlen(weights);
            snprintf(weights + l, sizeof(weights) - l, "%s%s=%g%%",
                     l ? " " : "",
                     json_string_value(json_object_get(a, "name")),
                     json_number_value(json_object_get(a, "weight")));
        }
        json_decref(def);
        char decision[400];
        last_decision(db, key, decision, sizeof(decision));
        char line[1024];
        int n = snprintf(line, sizeof(line), "state=%s phase=%s step=%d %s | %s",
                         row.state, phase, step, weights, decision);
        if (n < 0 || (size_t)n >= sizeof(line))
            line[sizeof(line) - 1] = '\0'; /* a long reason is cut */
        if (strcmp(line, last_line) != 0) {
            printf("[%6.1fs] %s\n", now_s() - t0, line);
            fflush(stdout);
            snprintf(last_line, sizeof(last_line), "%s", line);
        }
        bool done = true;
        if (strcmp(row.state, "promoted") == 0)
            code = EXIT_PROMOTED;
        else if (strcmp(row.state, "rolled_back") == 0)
            code = EXIT_ROLLED_BACK;
        else if (strcmp(row.state, "stopped") == 0)
            code = EXIT_STOPPED;
        else
            done = false;
        db_experiment_clear(&row);
        if (done)
            break;
        if (now_s() - t0 > timeout) {
            printf("timed out after %.0f s\n", timeout);
            code = EXIT_TIMEOUT;
            break;
        }
        usleep((useconds_t)(interval * 1e6));
    }
    db_close(db);
    return code;
}

int
cmd_rollout(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "wait") != 0) {
        fprintf(stderr, "arbiter rollout: unknown action \"%s\"\n%s", argv[1],
                usage);
        return EXIT_USAGE;
    }
    const char *url = getenv("ARBITER_DATABASE_URL");
    double timeout = 3600, interval = 1;
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'},
        {"database-url", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    argc--;
    argv++;
    for (;;) {
        c = getopt_long(argc, argv, "h", opts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 't':
            if (!parse_seconds(optarg, &timeout)) {
                fprintf(stderr, "arbiter rollout: --timeout needs seconds\n");
                return EXIT_USAGE;
            }
            break;
        case 'i':
            if (!parse_seconds(optarg, &interval)) {
                fprintf(stderr, "arbiter rollout: --interval needs seconds\n");
                return EXIT_USAGE;
            }
            break;
        case 'd': url = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (url == NULL || *url == '\0') {
        fputs("arbiter rollout: set ARBITER_DATABASE_URL or --database-url\n",
              stderr);
        return EXIT_USAGE;
    }
    return wait_for(url, argv[optind], timeout, interval);
}
