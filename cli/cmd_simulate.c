/* cmd_simulate.c -- `arbiter simulate`: reproducible bandit simulations.
 *
 * Every policy of bandits/ plays the same problem for --runs replications:
 * K arms with Bernoulli or Gaussian rewards whose means move linearly from
 * --means at the first unit to --means-end at the last (equal lists:
 * stationary); with --late-arm T the last arm is retired (inactive) until
 * unit T, as an arm added while running, and regret counts only the arms
 * present. Allocation is online (--batch 1: bandit_choose() per unit)
 * or batched (bandit_weights() every --batch units, then each unit draws
 * its arm from those weights, as the service's reweight job does).
 *
 * Reported per policy, averaged over runs, at --points checkpoints:
 *   cumulative pseudo-regret  R(t) = sum_{s <= t} (mu*_s - mu_{A_s, s})
 *   share of the units in the window that went to the best arm mu*_s
 *   for stationary Bernoulli arms, R(t) / (C ln t), where
 *     C = sum_{k: mu_k < mu*} (mu* - mu_k) / kl(mu_k, mu*)
 *   is the constant of the Lai-Robbins lower bound (Lai and Robbins 1985,
 *   "Asymptotically efficient adaptive allocation rules", Adv. Appl. Math.
 *   6, theorem 2): every consistent policy has liminf R(T)/ln T >= C.
 * With --estimators (batched only, since the propensities are the
 * published weights) it also reports, per arm, the bias of the naive arm
 * mean, of the Horvitz-Thompson and Hajek inverse-propensity means and of
 * the per-period mean (bandits/estimate.h) against the arm's population
 * mean (1/T) sum_t mu_{k,t}, with the Monte Carlo standard error of the
 * bias and z = bias / se.
 *
 * Seeds: the reward stream of run r is seeded (seed, r) and shared by all
 * policies; policy p in run r draws from its own stream (seed, r, p), so a
 * run is reproducible bit for bit for a given --seed, alone or in a batch.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "cli/commands.h"
#include "bandits/bandit.h"
#include "bandits/estimate.h"
#include "bandits/ucb.h"
#include "codec/experiment_json.h"
#include "service/reweight.h"
#include "lib/status.h"

#define SIM_MAX_ARMS 10
#define SIM_MAX_POLICIES 6
#define SIM_MAX_POINTS 1000

struct sim {
    enum bandit_reward reward;
    size_t n_arms;
    double mu0[SIM_MAX_ARMS], mu1[SIM_MAX_ARMS];
    double sd;
    int drifting;
    size_t n_policies;
    /* the model's policies (codec/experiment_json.c names them) */
    enum core_bandit_policy policies[SIM_MAX_POLICIES];
    long horizon, runs, batch, points;
    unsigned long seed;
    int estimators, json;
    long late_arm; /* the last arm joins at this unit; 0: from the start */
    struct bandit_config base; /* controls shared by every policy */
};

/* per policy, summed over runs */
struct curve {
    double reg[SIM_MAX_POINTS], reg2[SIM_MAX_POINTS];
    double share[SIM_MAX_POINTS];
};

/* one estimator's errors over runs: sum, sum of squares, count */
struct acc {
    double s, s2, n;
};

struct est {
    double truth;
    struct acc naive, ht, hajek, period;
};

static void
usage(FILE *f)
{
    fputs(
        "usage: arbiter simulate --means LIST [options]\n"
        "\n"
        "Reproducible bandit simulations: every policy against the others\n"
        "and against uniform allocation, on the same problem and seeds.\n"
        "\n"
        "problem\n"
        "  --reward bernoulli|gaussian  reward model (default bernoulli)\n"
        "  --means LIST        true arm means at the first unit, 2 to 10\n"
        "                      comma-separated values\n"
        "  --means-end LIST    means at the last unit; they move linearly\n"
        "                      in between (drift). Default: --means\n"
        "  --sd X              Gaussian noise sd (default 1)\n"
        "  --lower-is-better   the smallest mean is the best arm\n"
        "  --late-arm T        the last arm joins at unit T (an arm added\n"
        "                      while running; warm-up: --min-units)\n"
        "run\n"
        "  --policies LIST     uniform,thompson,top_two,ucb1,kl_ucb,\n"
        "                      eps_greedy or all (default all)\n"
        "  --horizon N         units per run (default 10000)\n"
        "  --runs R            replications (default 20)\n"
        "  --batch B           reweight every B units; 1 = online (default)\n"
        "  --seed S            seed (default 1)\n"
        "  --points P          checkpoints on the curves (default 20)\n"
        "controls (as the service applies them)\n"
        "  --floor X           minimum weight per arm\n"
        "  --control K         pin arm K (0-based) at --control-share\n"
        "  --control-share X   its fixed weight\n"
        "  --burn-in N         equal split until N units in all\n"
        "  --min-units N       units an arm needs before it is reweighted\n"
        "policy parameters\n"
        "  --pbest mc|quad|gh  P(best) method for batched Thompson and\n"
        "                      top-two (default mc)\n"
        "  --mc-draws N        draws for --pbest mc (default 2000)\n"
        "  --top-two-beta X    (default 0.5)\n"
        "  --epsilon X         eps-greedy rate (default 0.1)\n"
        "  --epsilon-c C       decay eps_t = min(epsilon, C K / t)\n"
        "output\n"
        "  --estimators        bias of naive, IPW and per-period arm means\n"
        "                      (needs --batch >= 2)\n"
        "  --json              JSON instead of text\n"
        "\n"
        "Exit status: 0 done, 2 invalid arguments.\n",
        f);
}

static int
parse_double(const char *s, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "0.1,0.2,0.3" into out[]; every value must parse, max values */
static int
parse_list(const char *s, double *out, size_t max, size_t *n)
{
    size_t k = 0;
    for (;;) {
        char *end;
        errno = 0;
        if (k == max)
            return -1;
        out[k] = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(out[k]))
            return -1;
        k++;
        if (*end == '\0')
            break;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
    *n = k;
    return 0;
}

static int
parse_policies(const char *s, struct sim *sim)
{
    sim->n_policies = 0;
    if (strcmp(s, "all") == 0) {
        for (int i = 0; i < SIM_MAX_POLICIES; i++)
            sim->policies[i] = (enum core_bandit_policy)i;
        sim->n_policies = SIM_MAX_POLICIES;
        return 0;
    }
    for (;;) {
        char name[32];
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        if (len == 0 || len >= sizeof(name) ||
            sim->n_policies == SIM_MAX_POLICIES)
            return -1;
        memcpy(name, s, len);
        name[len] = '\0';
        if (api_bandit_policy_parse(name, &sim->policies[sim->n_policies]) !=
            AB_OK)
            return -1;
        sim->n_policies++;
        if (comma == NULL)
            return 0;
        s = comma + 1;
    }
}

static int
bad(const char *what, const char *value)
{
    if (value != NULL && value[0] != '\0')
        fprintf(stderr, "arbiter simulate: invalid %s \"%s\" (see --help)\n",
                what, value);
    else
        fprintf(stderr, "arbiter simulate: invalid %s (see --help)\n", what);
    return 2;
}

/* ------------------------------------------------------------------ */
/* one problem                                                         */
/* ------------------------------------------------------------------ */

static double
mean_at(const struct sim *sim, size_t k, long t)
{
    double f;
    if (!sim->drifting || sim->horizon <= 1)
        return sim->mu0[k];
    f = (double)t / (double)(sim->horizon - 1);
    return sim->mu0[k] + (sim->mu1[k] - sim->mu0[k]) * f;
}

static int
better(const struct sim *sim, double a, double b)
{
    return sim->base.lower_is_better ? a < b : a > b;
}

/* Lai-Robbins constant for stationary Bernoulli arms, or NAN */
static double
lai_robbins(const struct sim *sim)
{
    double best, c = 0;
    size_t k;
    if (sim->reward != BANDIT_REWARD_BINARY || sim->drifting ||
        sim->late_arm > 0)
        return NAN;
    best = sim->mu0[0];
    for (k = 1; k < sim->n_arms; k++) {
        if (better(sim, sim->mu0[k], best))
            best = sim->mu0[k];
    }
    for (k = 0; k < sim->n_arms; k++) {
        double a = sim->mu0[k], b = best;
        if (a == best)
            continue;
        if (sim->base.lower_is_better) {
            a = 1 - a;
            b = 1 - b;
        }
        c += (b - a) / bandit_kl_bernoulli(a, b);
    }
    return c > 0 ? c : NAN;
}

static unsigned long
mix_seed(unsigned long seed, unsigned long run, unsigned long stream)
{
    /* splitmix64 finaliser over (seed, run, stream): distinct streams */
    unsigned long long z = (unsigned long long)seed * 0x9E3779B97F4A7C15ULL +
                           (unsigned long long)run * 0xBF58476D1CE4E5B9ULL +
                           (unsigned long long)stream * 0x94D049BB133111EBULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (unsigned long)(z & 0xFFFFFFFFUL);
}

static void
acc_add(struct acc *a, double e)
{
    a->s += e;
    a->s2 += e * e;
    a->n += 1;
}

/* One run of one policy; adds into curve and est. */
static int
run_one(const struct sim *sim, size_t pi, long run, gsl_rng *prng,
        gsl_rng *yrng, struct bandit_workspace *ws, struct curve *cv,
        struct est *est, struct bandit_period *periods, size_t max_periods)
{
    struct bandit_config cfg = sim->base;
    struct bandit_arm arms[SIM_MAX_ARMS];
    struct bandit_ipw_sums ipw[SIM_MAX_ARMS];
    double w[SIM_MAX_ARMS], mu[SIM_MAX_ARMS], regret = 0;
    long window_best = 0, window_n = 0, point = 0, period = -1;
    size_t k, K = sim->n_arms;
    ab_status rc;

    cfg.policy = reweight_policy(sim->policies[pi]);
    gsl_rng_set(prng, mix_seed(sim->seed, (unsigned long)run, pi + 1));
    gsl_rng_set(yrng, mix_seed(sim->seed, (unsigned long)run, 0));
    memset(arms, 0, sizeof(arms));
    memset(ipw, 0, sizeof(ipw));
    for (k = 0; k < K; k++) {
        arms[k].active = 1;
        w[k] = 1.0 / (double)K;
    }
    if (sim->estimators)
        memset(periods, 0, max_periods * K * sizeof(*periods));

    for (long t = 0; t < sim->horizon; t++) {
        size_t a = 0, best = 0;
        double y;
        /* arm 0 is always active, so 'best' starts on an active arm */
        arms[K - 1].active = t >= sim->late_arm;
        for (k = 0; k < K; k++) {
            mu[k] = mean_at(sim, k, t);
            if (arms[k].active && better(sim, mu[k], mu[best]))
                best = k;
        }
        if (sim->batch == 1) {
            rc = bandit_choose(arms, K, &cfg, prng, ws, &a);
            if (rc != AB_OK)
                return -1;
        } else {
            double u, acc = 0;
            if (t % sim->batch == 0) {
                rc = bandit_weights(arms, K, &cfg, prng, ws, w, NULL);
                if (rc != AB_OK)
                    return -1;
                period++;
            }
            u = gsl_rng_uniform(prng);
            for (k = 0; k < K; k++) {
                if (w[k] <= 0)
                    continue;
                a = k;
                acc += w[k];
                if (u < acc)
                    break;
            }
        }
        if (sim->reward == BANDIT_REWARD_BINARY)
            y = gsl_rng_uniform(yrng) < mu[a] ? 1.0 : 0.0;
        else
            y = mu[a] + gsl_ran_gaussian_ziggurat(yrng, sim->sd);
        arms[a].n += 1;
        arms[a].sum += y;
        arms[a].sum_sq += y * y;
        regret += fabs(mu[best] - mu[a]);
        /* ties count as the best arm */
        window_best += mu[a] == mu[best];
        window_n++;
        if (sim->estimators) {
            struct bandit_period *pp = &periods[(size_t)period * K + a];
            double p = w[a];
            ipw[a].sum_w += 1 / p;
            ipw[a].sum_wy += y / p;
            ipw[a].sum_w2 += 1 / (p * p);
            ipw[a].sum_w2y += y / (p * p);
            ipw[a].sum_w2y2 += y * y / (p * p);
            pp->n += 1;
            pp->sum += y;
            pp->sum_sq += y * y;
            for (k = 0; k < K; k++)
                periods[(size_t)period * K + k].n_total += 1;
        }
        if ((t + 1) * sim->points / sim->horizon > point) {
            cv->reg[point] += regret;
            cv->reg2[point] += regret * regret;
            cv->share[point] += (double)window_best / (double)window_n;
            window_best = window_n = 0;
            point++;
        }
    }
    if (sim->estimators) {
        size_t n_periods = (size_t)period + 1;
        struct bandit_period per[1024];
        if (n_periods > AB_ARRAY_LEN(per))
            return -1;
        for (k = 0; k < K; k++) {
            struct bandit_estimate ht, hj, pm;
            ipw[k].n_total = (double)sim->horizon;
            if (arms[k].n > 0)
                acc_add(&est[k].naive, arms[k].sum / arms[k].n -
                                           est[k].truth);
            if (bandit_ipw_mean(&ipw[k], &ht, &hj) == AB_OK) {
                acc_add(&est[k].ht, ht.mean - est[k].truth);
                acc_add(&est[k].hajek, hj.mean - est[k].truth);
            }
            for (size_t p = 0; p < n_periods; p++)
                per[p] = periods[p * K + k];
            if (bandit_period_mean(per, n_periods, &pm) == AB_OK)
                acc_add(&est[k].period, pm.mean - est[k].truth);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* output                                                              */
/* ------------------------------------------------------------------ */

static void
acc_stats(const struct acc *a, double *bias, double *se, double *z)
{
    double var;
    *bias = a->n > 0 ? a->s / a->n : NAN;
    var = a->n > 1 ? (a->s2 / a->n - *bias * *bias) * a->n / (a->n - 1)
                   : NAN;
    *se = a->n > 1 && var > 0 ? sqrt(var / a->n) : NAN;
    *z = *se > 0 ? *bias / *se : NAN;
}

/* JSON has no NaN: print null */
static void
jnum(const char *key, double v, const char *tail)
{
    if (isfinite(v))
        printf("\"%s\":%.6f%s", key, v, tail);
    else
        printf("\"%s\":null%s", key, tail);
}

static void
json_acc(const char *name, const struct acc *a, const char *tail)
{
    double bias, se, z;
    acc_stats(a, &bias, &se, &z);
    printf("\"%s\":{", name);
    jnum("bias", bias, ",");
    jnum("se", se, ",");
    jnum("z", z, ",");
    printf("\"runs\":%.0f}%s", a->n, tail);
}

static double
point_t(const struct sim *sim, long i)
{
    /* the checkpoint after unit ceil((i+1) T / P) */
    long t = ((i + 1) * sim->horizon + sim->points - 1) / sim->points;
    return (double)t;
}

static void
print_json(const struct sim *sim, const struct curve *cv,
           const struct est *est, double lr)
{
    double R = (double)sim->runs;
    printf("{\"reward\":\"%s\",\"arms\":%zu,\"horizon\":%ld,\"runs\":%ld,"
           "\"batch\":%ld,\"seed\":%lu,\"drifting\":%s,\"late_arm\":%ld,",
           sim->reward == BANDIT_REWARD_BINARY ? "bernoulli" : "gaussian",
           sim->n_arms, sim->horizon, sim->runs, sim->batch, sim->seed,
           sim->drifting ? "true" : "false", sim->late_arm);
    printf("\"means\":[");
    for (size_t k = 0; k < sim->n_arms; k++)
        printf("%s%.6f", k ? "," : "", sim->mu0[k]);
    printf("],\"means_end\":[");
    for (size_t k = 0; k < sim->n_arms; k++)
        printf("%s%.6f", k ? "," : "", sim->mu1[k]);
    printf("],");
    jnum("lai_robbins_constant", lr, ",");
    printf("\"policies\":[");
    for (size_t p = 0; p < sim->n_policies; p++) {
        const struct curve *c = &cv[p];
        printf("%s{\"policy\":\"%s\",\"curve\":[", p ? "," : "",
               api_bandit_policy_name(sim->policies[p]));
        for (long i = 0; i < sim->points; i++) {
            double m = c->reg[i] / R;
            double var = R > 1 ? (c->reg2[i] / R - m * m) * R / (R - 1) : 0;
            double t = point_t(sim, i);
            printf("%s{\"t\":%.0f,", i ? "," : "", t);
            jnum("regret", m, ",");
            jnum("regret_se", sqrt(var > 0 ? var / R : 0), ",");
            jnum("best_share", c->share[i] / R, ",");
            jnum("lr_ratio", t > 1 ? m / (lr * log(t)) : NAN, "}");
        }
        printf("]");
        if (sim->estimators) {
            printf(",\"estimators\":[");
            for (size_t k = 0; k < sim->n_arms; k++) {
                const struct est *e = &est[p * sim->n_arms + k];
                printf("%s{\"arm\":%zu,", k ? "," : "", k);
                jnum("truth", e->truth, ",");
                json_acc("naive", &e->naive, ",");
                json_acc("ht", &e->ht, ",");
                json_acc("hajek", &e->hajek, ",");
                json_acc("period", &e->period, "}");
            }
            printf("]");
        }
        printf("}");
    }
    printf("]}\n");
}

static void
print_text(const struct sim *sim, const struct curve *cv,
           const struct est *est, double lr)
{
    double R = (double)sim->runs, T = (double)sim->horizon;
    long last = sim->points - 1;

    printf("arbiter simulate: %s, %zu arms, horizon %ld, %ld runs, batch "
           "%ld, seed %lu, %s\n",
           sim->reward == BANDIT_REWARD_BINARY ? "bernoulli" : "gaussian",
           sim->n_arms, sim->horizon, sim->runs, sim->batch, sim->seed,
           sim->drifting ? "drifting" : "stationary");
    if (sim->late_arm > 0)
        printf("arm %zu joins at unit %ld\n", sim->n_arms - 1, sim->late_arm);
    if (isfinite(lr))
        printf("lai-robbins constant %.6f (lower bound %.4f at t = %ld)\n",
               lr, lr * log(T), sim->horizon);
    printf("%-12s %14s %10s %12s %10s\n", "policy", "regret", "se",
           "best_share", "lr_ratio");
    for (size_t p = 0; p < sim->n_policies; p++) {
        const struct curve *c = &cv[p];
        double m = c->reg[last] / R;
        double var = R > 1 ? (c->reg2[last] / R - m * m) * R / (R - 1) : 0;
        printf("%-12s %14.6f %10.6f %12.6f",
               api_bandit_policy_name(sim->policies[p]), m,
               sqrt(var > 0 ? var / R : 0), c->share[last] / R);
        if (isfinite(lr))
            printf(" %10.4f\n", m / (lr * log(T)));
        else
            printf(" %10s\n", "-");
    }
    if (!sim->estimators)
        return;
    printf("\nestimators: bias of the arm mean against its population mean "
           "(z = bias / MC se)\n");
    printf("%-12s %4s %9s %10s %8s %10s %8s %10s %8s %10s %8s\n", "policy",
           "arm", "truth", "naive", "z", "ht", "z", "hajek", "z", "period",
           "z");
    for (size_t p = 0; p < sim->n_policies; p++) {
        for (size_t k = 0; k < sim->n_arms; k++) {
            const struct est *e = &est[p * sim->n_arms + k];
            const struct acc *a[4] = { &e->naive, &e->ht, &e->hajek,
                                       &e->period };
            printf("%-12s %4zu %9.5f",
                   api_bandit_policy_name(sim->policies[p]), k, e->truth);
            for (int j = 0; j < 4; j++) {
                double b, se, z;
                acc_stats(a[j], &b, &se, &z);
                printf(" %10.5f %8.2f", b, z);
            }
            printf("\n");
        }
    }
}

/* ------------------------------------------------------------------ */
/* the command                                                         */
/* ------------------------------------------------------------------ */

enum {
    OPT_REWARD = 256, OPT_MEANS, OPT_MEANS_END, OPT_SD, OPT_LOWER,
    OPT_POLICIES, OPT_HORIZON, OPT_RUNS, OPT_BATCH, OPT_SEED, OPT_POINTS,
    OPT_FLOOR, OPT_CONTROL, OPT_CONTROL_SHARE, OPT_BURN_IN, OPT_MIN_UNITS,
    OPT_PBEST, OPT_MC_DRAWS, OPT_TOP_TWO_BETA, OPT_EPSILON, OPT_EPSILON_C,
    OPT_ESTIMATORS, OPT_JSON, OPT_HELP, OPT_LATE_ARM
};

static const struct option long_opts[] = {
    { "reward", required_argument, NULL, OPT_REWARD },
    { "means", required_argument, NULL, OPT_MEANS },
    { "means-end", required_argument, NULL, OPT_MEANS_END },
    { "sd", required_argument, NULL, OPT_SD },
    { "lower-is-better", no_argument, NULL, OPT_LOWER },
    { "policies", required_argument, NULL, OPT_POLICIES },
    { "horizon", required_argument, NULL, OPT_HORIZON },
    { "runs", required_argument, NULL, OPT_RUNS },
    { "batch", required_argument, NULL, OPT_BATCH },
    { "seed", required_argument, NULL, OPT_SEED },
    { "points", required_argument, NULL, OPT_POINTS },
    { "floor", required_argument, NULL, OPT_FLOOR },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "control-share", required_argument, NULL, OPT_CONTROL_SHARE },
    { "burn-in", required_argument, NULL, OPT_BURN_IN },
    { "min-units", required_argument, NULL, OPT_MIN_UNITS },
    { "pbest", required_argument, NULL, OPT_PBEST },
    { "mc-draws", required_argument, NULL, OPT_MC_DRAWS },
    { "top-two-beta", required_argument, NULL, OPT_TOP_TWO_BETA },
    { "epsilon", required_argument, NULL, OPT_EPSILON },
    { "epsilon-c", required_argument, NULL, OPT_EPSILON_C },
    { "estimators", no_argument, NULL, OPT_ESTIMATORS },
    { "late-arm", required_argument, NULL, OPT_LATE_ARM },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

/* One option; 1 when 'opt' is not an option of ours. */
static int
parse_one(int opt, const char *arg, struct sim *sim, size_t *n_end,
          int *have_end)
{
    long v;

    switch (opt) {
    case OPT_REWARD:
        if (strcmp(arg, "bernoulli") == 0)
            sim->reward = BANDIT_REWARD_BINARY;
        else if (strcmp(arg, "gaussian") == 0)
            sim->reward = BANDIT_REWARD_GAUSSIAN;
        else
            return bad("--reward", arg);
        break;
    case OPT_MEANS:
        if (parse_list(arg, sim->mu0, SIM_MAX_ARMS, &sim->n_arms))
            return bad("--means", arg);
        break;
    case OPT_MEANS_END:
        if (parse_list(arg, sim->mu1, SIM_MAX_ARMS, n_end))
            return bad("--means-end", arg);
        *have_end = 1;
        break;
    case OPT_SD:
        if (parse_double(arg, &sim->sd) || !(sim->sd > 0))
            return bad("--sd", arg);
        break;
    case OPT_LOWER: sim->base.lower_is_better = 1; break;
    case OPT_POLICIES:
        if (parse_policies(arg, sim))
            return bad("--policies", arg);
        break;
    case OPT_HORIZON:
        if (parse_long(arg, 1, 100000000, &sim->horizon))
            return bad("--horizon", arg);
        break;
    case OPT_RUNS:
        if (parse_long(arg, 1, 1000000, &sim->runs))
            return bad("--runs", arg);
        break;
    case OPT_BATCH:
        if (parse_long(arg, 1, 100000000, &sim->batch))
            return bad("--batch", arg);
        break;
    case OPT_SEED:
        if (parse_long(arg, 0, 2147483647L, &v))
            return bad("--seed", arg);
        sim->seed = (unsigned long)v;
        break;
    case OPT_POINTS:
        if (parse_long(arg, 1, SIM_MAX_POINTS, &sim->points))
            return bad("--points", arg);
        break;
    case OPT_FLOOR:
        if (parse_double(arg, &sim->base.floor))
            return bad("--floor", arg);
        break;
    case OPT_CONTROL:
        if (parse_long(arg, 0, SIM_MAX_ARMS - 1, &sim->base.control))
            return bad("--control", arg);
        break;
    case OPT_CONTROL_SHARE:
        if (parse_double(arg, &sim->base.control_share))
            return bad("--control-share", arg);
        break;
    case OPT_BURN_IN:
        if (parse_double(arg, &sim->base.burn_in))
            return bad("--burn-in", arg);
        break;
    case OPT_MIN_UNITS:
        if (parse_double(arg, &sim->base.min_units))
            return bad("--min-units", arg);
        break;
    case OPT_PBEST:
        if (strcmp(arg, "mc") == 0)
            sim->base.pbest = BANDIT_PBEST_MC;
        else if (strcmp(arg, "quad") == 0)
            sim->base.pbest = BANDIT_PBEST_QUAD;
        else if (strcmp(arg, "gh") == 0)
            sim->base.pbest = BANDIT_PBEST_GH;
        else
            return bad("--pbest", arg);
        break;
    case OPT_MC_DRAWS:
        if (parse_long(arg, 1, 10000000, &v))
            return bad("--mc-draws", arg);
        sim->base.mc_draws = (size_t)v;
        break;
    case OPT_TOP_TWO_BETA:
        if (parse_double(arg, &sim->base.top_two_beta))
            return bad("--top-two-beta", arg);
        break;
    case OPT_EPSILON:
        if (parse_double(arg, &sim->base.epsilon))
            return bad("--epsilon", arg);
        break;
    case OPT_EPSILON_C:
        if (parse_double(arg, &sim->base.epsilon_c))
            return bad("--epsilon-c", arg);
        break;
    case OPT_LATE_ARM:
        if (parse_long(arg, 0, 100000000, &sim->late_arm))
            return bad("--late-arm", arg);
        break;
    case OPT_ESTIMATORS: sim->estimators = 1; break;
    case OPT_JSON: sim->json = 1; break;
    default: return 1;
    }
    return 0;
}

/* The options together: ranges that depend on each other. */
static int
check_args(struct sim *sim, size_t n_end, int have_end)
{
    if (sim->n_arms < 2)
        return bad("--means (2 to 10 arms)", "");
    if (!have_end) {
        memcpy(sim->mu1, sim->mu0, sizeof(sim->mu1));
    } else {
        if (n_end != sim->n_arms)
            return bad("--means-end (one value per arm)", "");
        sim->drifting = memcmp(sim->mu0, sim->mu1, sizeof(sim->mu0)) != 0;
    }
    if (sim->reward == BANDIT_REWARD_BINARY) {
        for (size_t k = 0; k < sim->n_arms; k++) {
            if (sim->mu0[k] < 0 || sim->mu0[k] > 1 || sim->mu1[k] < 0 ||
                sim->mu1[k] > 1)
                return bad("--means (Bernoulli means lie in [0, 1])", "");
        }
    } else {
        /* the NIG prior's b0 is a guess of the reward variance */
        sim->base.prior.b0 = sim->sd * sim->sd;
    }
    sim->base.reward = sim->reward;
    if (sim->estimators && sim->batch < 2)
        return bad("--estimators (needs --batch >= 2)", "");
    if (sim->estimators && sim->late_arm > 0)
        return bad("--estimators (not with --late-arm)", "");
    if (sim->late_arm > 0 && sim->base.control == (long)sim->n_arms - 1)
        return bad("--control (the late arm cannot be the control)", "");
    if (sim->points > sim->horizon)
        sim->points = sim->horizon;
    if (bandit_config_check(&sim->base, sim->n_arms) != AB_OK)
        return bad("controls or policy parameters", "");
    if (sim->base.floor * (double)(sim->n_arms - (sim->base.control >= 0)) >
        1.0 - sim->base.control_share)
        return bad("--floor (the arms cannot all get it)", "");
    if (sim->horizon / sim->batch + 1 > 1024 && sim->estimators)
        return bad("--estimators (at most 1024 periods)", "");
    return 0;
}

static int
parse_args(int argc, char **argv, struct sim *sim)
{
    size_t n_end = 0;
    int have_end = 0, opt, rc;

    *sim = (struct sim){.reward = BANDIT_REWARD_BINARY,
                        .sd = 1,
                        .horizon = 10000,
                        .runs = 20,
                        .batch = 1,
                        .seed = 1,
                        .points = 20};
    bandit_config_default(&sim->base, BANDIT_UNIFORM, BANDIT_REWARD_BINARY);
    sim->base.pbest = BANDIT_PBEST_MC;
    sim->base.mc_draws = 2000;
    parse_policies("all", sim);

    optind = 1;
    opterr = 0;
    for (;;) {
        opt = getopt_long(argc, argv, "h", long_opts, NULL);
        if (opt == -1)
            break;
        if (opt == OPT_HELP || opt == 'h') {
            usage(stdout);
            return -1;
        }
        rc = parse_one(opt, optarg, sim, &n_end, &have_end);
        if (rc == 1)
            return bad("option", argv[optind - 1]);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return bad("argument", argv[optind]);
    return check_args(sim, n_end, have_end);
}

int
cmd_simulate(int argc, char **argv)
{
    struct sim sim;
    struct curve *cv = NULL;
    struct est *est = NULL;
    struct bandit_period *periods = NULL;
    struct bandit_workspace *ws = NULL;
    gsl_rng *prng = NULL, *yrng = NULL;
    size_t max_periods = 0;
    int rc = parse_args(argc, argv, &sim);
    double lr;

    if (rc < 0)
        return 0; /* --help */
    if (rc > 0)
        return rc;
    gsl_set_error_handler_off();
    if (bandit_workspace_new(sim.n_arms, &ws) != AB_OK) {
        fputs("arbiter simulate: could not build quadrature rules\n", stderr);
        return 1;
    }
    prng = gsl_rng_alloc(gsl_rng_mt19937);
    yrng = gsl_rng_alloc(gsl_rng_mt19937);
    cv = ab_xcalloc(sim.n_policies, sizeof(*cv));
    est = ab_xcalloc(sim.n_policies * sim.n_arms, sizeof(*est));
    if (sim.estimators) {
        max_periods = (size_t)(sim.horizon / sim.batch + 1);
        periods = ab_xcalloc(max_periods * sim.n_arms, sizeof(*periods));
    }
    for (size_t p = 0; p < sim.n_policies; p++) {
        for (size_t k = 0; k < sim.n_arms; k++) {
            double s = 0;
            for (long t = 0; t < sim.horizon; t++)
                s += mean_at(&sim, k, t);
            est[p * sim.n_arms + k].truth = s / (double)sim.horizon;
        }
    }
    lr = lai_robbins(&sim);
    rc = 0;
    for (long r = 0; r < sim.runs && rc == 0; r++) {
        for (size_t p = 0; p < sim.n_policies; p++) {
            if (run_one(&sim, p, r, prng, yrng, ws, &cv[p],
                        &est[p * sim.n_arms], periods, max_periods) != 0) {
                fprintf(stderr, "arbiter simulate: policy %s failed\n",
                        api_bandit_policy_name(sim.policies[p]));
                rc = 1;
                break;
            }
        }
    }
    if (rc == 0) {
        if (sim.json)
            print_json(&sim, cv, est, lr);
        else
            print_text(&sim, cv, est, lr);
    }
    free(periods);
    free(est);
    free(cv);
    gsl_rng_free(prng);
    gsl_rng_free(yrng);
    bandit_workspace_free(ws);
    return rc;
}
