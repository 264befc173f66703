/* sim_rollouts.c -- operating characteristics of the automated rollouts,
 * by simulation through the same rules and evidence as the service
 * (core/rollout.c, core/rollout_eval.c), with each strategy's defaults.
 *
 * Traffic: every tick (10 s of simulated time) `rate` units arrive and are
 * split by the current weights (a binomial draw, as hashing does); each
 * unit yields a latency N(100 (1 + d_lat), 20^2) (guardrail, lower is
 * better), an error with probability 0.01 (1 + d_err) (guardrail and error
 * metric: the counting-process test) and a conversion with probability
 * 0.10 (1 + lift) (primary). The effects apply to the candidate only.
 * Decisions are applied as the leader applies them (weights change,
 * promote, roll back, stop). Seeded: the same seed gives the same report.
 *
 *   sim_rollouts [--runs N] [--seed S] [--rate UNITS_PER_TICK] [--out FILE]
 *
 * With SIM_REASONS set in the environment, the reason of every ending is
 * printed to stderr (to see why harmless candidates were rolled back).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "core/rollout.h"
#include "core/rollout_eval.h"

#define TICK_S 10
#define MAX_TICKS 2000

enum { M_LAT, M_ERR, M_CLICK, N_METRICS };

struct scenario {
    const char *name;
    enum core_strategy strategy;
    double d_lat, d_err, lift;
};

struct outcome {
    enum core_rollout_action end; /* PROMOTE, ROLLBACK, STOP, PAUSE, NONE */
    int ticks;
    double cand_units; /* units the candidate served */
    double units;      /* units of both arms */
};

static struct core_metric metrics[N_METRICS] = {
    {"latency", CORE_METRIC_MEAN, CORE_DECREASE, CORE_ROLE_GUARDRAIL, NULL, 0, {0}},
    {"errors", CORE_METRIC_BINARY, CORE_DECREASE, CORE_ROLE_GUARDRAIL, NULL, 0, {0}},
    {"click", CORE_METRIC_BINARY, CORE_INCREASE, CORE_ROLE_PRIMARY, NULL, 0, {0}},
};

static struct outcome
simulate(const struct scenario *sc, double rate, gsl_rng *r)
{
    struct core_arm arms[2] = {{"stable", "", CORE_SCALE, true},
                               {"next", "", 0, false}};
    struct core_experiment e;
    memset(&e, 0, sizeof(e));
    e.key = "sim";
    e.strategy = sc->strategy;
    e.state = CORE_STATE_RUNNING;
    e.arms = arms;
    e.n_arms = 2;
    e.metrics = metrics;
    e.n_metrics = N_METRICS;
    struct core_rollout_config c;
    core_rollout_config_default(&c);
    memcpy(c.error_metric, "errors", sizeof("errors"));
    if (sc->strategy == CORE_STRATEGY_AB) {
        arms[0].weight = arms[1].weight = CORE_SCALE / 2;
        c.error_metric[0] = '\0';
        c.max_units = 20000;
    } else if (sc->strategy == CORE_STRATEGY_CANARY) {
        arms[0].weight = CORE_SCALE - c.steps[0];
        arms[1].weight = c.steps[0];
    }
    struct core_rollout_state st;
    core_rollout_state_init(&e, &c, 0, &st);
    static struct core_eval_tests tests;
    core_eval_tests_init(&tests);
    static struct core_eval_stats stats[CORE_EVAL_MAX_METRICS *
                                        CORE_EVAL_MAX_ARMS];
    memset(stats, 0, sizeof(stats));
    struct stats_count_period periods[64];
    size_t n_periods = 0;
    double srm[2] = {0, 0}, total = 0, cand_units = 0;
    int64_t version = 1;
    periods[0] = (struct stats_count_period){0, 0, arms[1].weight / 1e6};
    n_periods = 1;
    struct outcome out = {CORE_ACTION_NONE, MAX_TICKS, 0, 0};

    for (int tick = 1; tick <= MAX_TICKS; tick++) {
        /* arrivals: blue-green smoke and shadow mirror 10 % of traffic to
         * the candidate (outcomes for both), live traffic by weights */
        unsigned n = gsl_ran_poisson(r, rate);
        double share = arms[1].weight / 1e6;
        bool mirror = (sc->strategy == CORE_STRATEGY_BLUE_GREEN &&
                       st.phase == CORE_PHASE_SMOKE);
        for (unsigned u = 0; u < n; u++) {
            int arm = gsl_rng_uniform(r) < share ? 1 : 0;
            int n_arms_run = 1, run[2] = {arm, 0};
            if (mirror && gsl_rng_uniform(r) < 0.1) {
                run[1] = 1;
                n_arms_run = 2;
            }
            srm[arm] += 1;
            total += 1;
            for (int k = 0; k < n_arms_run; k++) {
                int a = run[k];
                bool cand = a == 1;
                if (cand)
                    cand_units += 1;
                double lat = 100 * (1 + (cand ? sc->d_lat : 0)) +
                             gsl_ran_gaussian(r, 20);
                double err = gsl_rng_uniform(r) <
                                     0.01 * (1 + (cand ? sc->d_err : 0))
                                 ? 1
                                 : 0;
                double click = gsl_rng_uniform(r) <
                                       0.10 * (1 + (cand ? sc->lift : 0))
                                   ? 1
                                   : 0;
                double y[N_METRICS] = {lat, err, click};
                for (int m = 0; m < N_METRICS; m++) {
                    struct core_eval_stats *s =
                        &stats[m * CORE_EVAL_MAX_ARMS + a];
                    s->n += 1;
                    s->sum += y[m];
                    s->sum_sq += y[m] * y[m];
                    s->units_with_events += 1;
                }
                if (err > 0 && n_periods > 0) {
                    if (cand)
                        periods[n_periods - 1].errors_t += 1;
                    else
                        periods[n_periods - 1].errors_c += 1;
                }
            }
        }
        struct core_eval_input in = {stats,     srm,      total, version,
                                     periods,   n_periods,
                                     (int64_t)tick * TICK_S * 1000};
        struct core_rollout_evidence ev;
        static struct core_eval_report rep;
        core_rollout_evaluate(&e, &c, &in, &tests, &ev, &rep);
        struct core_rollout_decision d;
        core_rollout_decide(&e, &c, &st, &ev, &d);
        st = d.next;
        switch (d.action) {
        case CORE_ACTION_ADVANCE:
        case CORE_ACTION_CONVERT:
            arms[1].weight = d.candidate_weight;
            arms[0].weight = CORE_SCALE - d.candidate_weight;
            srm[0] = srm[1] = 0; /* a new weights version */
            version++;
            if (n_periods < AB_ARRAY_LEN(periods))
                n_periods++;
            periods[n_periods - 1] =
                (struct stats_count_period){0, 0, arms[1].weight / 1e6};
            break;
        case CORE_ACTION_PROMOTE:
        case CORE_ACTION_ROLLBACK:
        case CORE_ACTION_STOP:
        case CORE_ACTION_PAUSE:
            out.end = d.action;
            if (getenv("SIM_REASONS"))
                fprintf(stderr, "REASON %s: %s\n", sc->name, d.reason);
            out.ticks = tick;
            out.cand_units = cand_units;
            out.units = total;
            return out;
        case CORE_ACTION_NONE:
        case CORE_ACTION_WAIT:
            break;
        }
    }
    out.cand_units = cand_units;
    return out;
}

struct summary {
    int runs, promoted, rolled_back, stopped, paused, open;
    double ticks_promote, ticks_rollback, units_rollback;
    double units_promote, total_rollback;
};

static struct summary
run_many(const struct scenario *sc, int runs, double rate, gsl_rng *r)
{
    struct summary s = {0};
    s.runs = runs;
    for (int i = 0; i < runs; i++) {
        struct outcome o = simulate(sc, rate, r);
        switch (o.end) {
        case CORE_ACTION_PROMOTE:
            s.promoted++;
            s.ticks_promote += o.ticks;
            s.units_promote += o.units;
            break;
        case CORE_ACTION_ROLLBACK:
            s.rolled_back++;
            s.ticks_rollback += o.ticks;
            s.units_rollback += o.cand_units;
            s.total_rollback += o.units;
            break;
        case CORE_ACTION_STOP: s.stopped++; break;
        case CORE_ACTION_PAUSE: s.paused++; break;
        default: s.open++; break;
        }
    }
    return s;
}

static const char *
strategy_label(enum core_strategy s)
{
    return core_strategy_name(s);
}

int
main(int argc, char **argv)
{
    int runs = 200;
    unsigned long seed = 42;
    double rate = 200;
    const char *out_path = NULL;
    static const struct option opts[] = {
        {"runs", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0}};
    int ch;
    for (;;) {
        ch = getopt_long(argc, argv, "", opts, NULL);
        if (ch == -1)
            break;
        switch (ch) {
        case 'n': runs = atoi(optarg); break;
        case 's': seed = strtoul(optarg, NULL, 10); break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'o': out_path = optarg; break;
        default:
            fprintf(stderr, "usage: sim_rollouts [--runs N] [--seed S] "
                            "[--rate UNITS_PER_TICK] [--out FILE]\n");
            return 2;
        }
    }
    if (runs < 1 || rate <= 0) {
        fprintf(stderr, "sim_rollouts: --runs >= 1, --rate > 0\n");
        return 2;
    }
    static const struct scenario scenarios[] = {
        {"canary, harmless candidate", CORE_STRATEGY_CANARY, 0, 0, 0},
        {"canary, latency +2 %", CORE_STRATEGY_CANARY, 0.02, 0, 0},
        {"canary, latency +5 %", CORE_STRATEGY_CANARY, 0.05, 0, 0},
        {"canary, latency +10 %", CORE_STRATEGY_CANARY, 0.10, 0, 0},
        {"canary, errors x2", CORE_STRATEGY_CANARY, 0, 1.0, 0},
        {"canary, errors x3", CORE_STRATEGY_CANARY, 0, 2.0, 0},
        {"canary, errors x4", CORE_STRATEGY_CANARY, 0, 3.0, 0},
        {"canary, better (latency -5 %)", CORE_STRATEGY_CANARY, -0.05, 0, 0},
        {"blue_green, harmless", CORE_STRATEGY_BLUE_GREEN, 0, 0, 0},
        {"blue_green, latency +10 %", CORE_STRATEGY_BLUE_GREEN, 0.10, 0, 0},
        {"ab, A/A (no effect)", CORE_STRATEGY_AB, 0, 0, 0},
        {"ab, conversion +10 %", CORE_STRATEGY_AB, 0, 0, 0.10},
        {"ab, conversion +20 %", CORE_STRATEGY_AB, 0, 0, 0.20},
    };
    gsl_rng_env_setup();
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (out == NULL) {
        perror(out_path);
        return 1;
    }
    fprintf(out,
            "| scenario | runs | promoted | rolled back | stopped | paused "
            "| undecided | mean time to promote (s) | mean time to roll back "
            "(s) | candidate units before roll back | units to promote | "
            "units to roll back |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < AB_ARRAY_LEN(scenarios); i++) {
        const struct scenario *sc = &scenarios[i];
        fprintf(stderr, "\rsim_rollouts: %zu/%zu %-40s", i + 1,
                AB_ARRAY_LEN(scenarios), sc->name);
        struct summary s = run_many(sc, runs, rate, r);
        char tp[32] = "-", tr[32] = "-", ur[32] = "-", up[32] = "-",
             ut[32] = "-";
        if (s.promoted) {
            snprintf(tp, sizeof(tp), "%.0f",
                     s.ticks_promote / s.promoted * TICK_S);
            snprintf(up, sizeof(up), "%.0f", s.units_promote / s.promoted);
        }
        if (s.rolled_back) {
            snprintf(tr, sizeof(tr), "%.0f",
                     s.ticks_rollback / s.rolled_back * TICK_S);
            snprintf(ur, sizeof(ur), "%.0f", s.units_rollback / s.rolled_back);
            snprintf(ut, sizeof(ut), "%.0f", s.total_rollback / s.rolled_back);
        }
        fprintf(out, "| %s (%s) | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %s "
                     "| %s | %s | %s | %s |\n",
                sc->name, strategy_label(sc->strategy), s.runs,
                (double)s.promoted / runs, (double)s.rolled_back / runs,
                (double)s.stopped / runs, (double)s.paused / runs,
                (double)s.open / runs, tp, tr, ur, up, ut);
        fflush(out);
    }
    fprintf(stderr, "\n");
    if (out != stdout)
        fclose(out);
    gsl_rng_free(r);
    return 0;
}
