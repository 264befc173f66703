/* test_bandit_driver.c -- oracle driver for tests/oracle/test_bandits.py:
 * reads one request per line on stdin, answers one line on stdout.
 *
 *   pbest binary|gaussian quad|mc|gh DRAWS SEED K  n s ss  n s ss ...
 *       -> K probabilities that each arm is best (default priors)
 *   ucb1 binary|gaussian T C  n s ss   -> the UCB1 index
 *   klucb binary|gaussian T C  n s ss  -> the KL-UCB index
 *
 * Errors print "error <status>". Not part of bin/arbiter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>

#include "bandits/bandit.h"
#include "bandits/thompson.h"
#include "bandits/ucb.h"

static int
read_arm(char **save, struct bandit_arm *a)
{
    char *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = strtok_r(NULL, " \t\n", save);
        if (t[i] == NULL)
            return -1;
    }
    a->n = strtod(t[0], NULL);
    a->sum = strtod(t[1], NULL);
    a->sum_sq = strtod(t[2], NULL);
    a->active = 1;
    return 0;
}

int
main(void)
{
    char line[8192];
    struct bandit_workspace *ws;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    static const unsigned char all[BANDIT_MAX_ARMS] = { 1, 1, 1, 1, 1, 1,
                                                        1, 1, 1, 1, 1, 1 };

    gsl_set_error_handler_off();
    if (bandit_workspace_new(12, &ws) != AB_OK)
        return 1;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *save = NULL;
        char *op = strtok_r(line, " \t\n", &save);
        char *rw = strtok_r(NULL, " \t\n", &save);
        enum bandit_reward reward;
        ab_status rc = AB_EINVAL;
        if (op == NULL || rw == NULL)
            continue;
        reward = strcmp(rw, "gaussian") == 0 ? BANDIT_REWARD_GAUSSIAN
                                              : BANDIT_REWARD_BINARY;
        if (strcmp(op, "pbest") == 0) {
            char *m = strtok_r(NULL, " \t\n", &save);
            char *d = strtok_r(NULL, " \t\n", &save);
            char *sd = strtok_r(NULL, " \t\n", &save);
            char *k = strtok_r(NULL, " \t\n", &save);
            struct bandit_config cfg;
            struct bandit_posterior post[12];
            double p[12];
            size_t n = k != NULL ? (size_t)strtoul(k, NULL, 10) : 0;
            enum bandit_pbest_method method = BANDIT_PBEST_QUAD;
            if (m == NULL || d == NULL || sd == NULL || n == 0 || n > 12)
                goto bad;
            if (strcmp(m, "mc") == 0)
                method = BANDIT_PBEST_MC;
            else if (strcmp(m, "gh") == 0)
                method = BANDIT_PBEST_GH;
            gsl_rng_set(rng, strtoul(sd, NULL, 10));
            bandit_config_default(&cfg, BANDIT_THOMPSON, reward);
            for (size_t i = 0; i < n; i++) {
                struct bandit_arm a;
                if (read_arm(&save, &a) != 0)
                    goto bad;
                rc = bandit_posterior_make(&a, reward, &cfg.prior, &post[i]);
                if (rc != AB_OK)
                    goto bad;
            }
            rc = bandit_pbest(post, all, n, method, strtoul(d, NULL, 10),
                              rng, ws, p);
            if (rc != AB_OK)
                goto bad;
            for (size_t i = 0; i < n; i++)
                printf("%s%.15g", i ? " " : "", p[i]);
            printf("\n");
        } else if (strcmp(op, "ucb1") == 0 || strcmp(op, "klucb") == 0) {
            char *t = strtok_r(NULL, " \t\n", &save);
            char *c = strtok_r(NULL, " \t\n", &save);
            struct bandit_arm a;
            double v;
            if (t == NULL || c == NULL || read_arm(&save, &a) != 0)
                goto bad;
            if (op[0] == 'u')
                rc = bandit_ucb1_index(&a, reward, strtod(t, NULL),
                                       strtod(c, NULL), &v);
            else
                rc = bandit_klucb_index(&a, reward, strtod(t, NULL),
                                        strtod(c, NULL), &v);
            if (rc != AB_OK)
                goto bad;
            printf("%.15g\n", v);
        } else {
            goto bad;
        }
        fflush(stdout);
        continue;
bad:
        printf("error %s\n", ab_status_name(rc));
        fflush(stdout);
    }
    bandit_workspace_free(ws);
    gsl_rng_free(rng);
    return 0;
}
