/* promote.h -- when a bandit stops exploring: the P(best) promotion rule.
 * Pure: no I/O, no allocation; time comes in as milliseconds.
 *
 * At each run in the adaptive phase (burn-in done, every arm warm), let L
 * be the arm with the largest P(best) (ties: the lower index). If
 * P_L >= threshold, the streak of L continues (same leader as the last
 * run, with a known start) or starts now; otherwise there is no streak.
 * When a streak has lasted after_ms, L is due for promotion: weight 100 %
 * and every other arm 0. (The service adds the guards that need the
 * database: a sample-ratio mismatch blocks the promotion.)
 */
#ifndef BANDITS_PROMOTE_H
#define BANDITS_PROMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

struct bandit_promote_rule {
    bool enabled;
    double threshold; /* P(best) the leader must keep, in (0, 1] */
    int64_t after_ms; /* for this long */
};

/* The streak as the previous run left it: leader -1 when none. */
struct bandit_streak {
    long leader;
    int64_t since_ms; /* < 0: unknown */
};

struct bandit_promote_step {
    size_t lead;      /* argmax P(best) */
    bool in_streak;   /* the rule holds at this run */
    bool continued;   /* ... and the streak is the previous one */
    int64_t since_ms; /* start of the streak (-1 when none) */
    bool due;         /* the streak has lasted rule->after_ms */
};

/* One run of the rule over p_best[0..n). AB_EINVAL when n is 0.
 * '*out' is written only on AB_OK. */
ab_status bandit_promote_step(const double *p_best, size_t n, bool adaptive,
                              const struct bandit_promote_rule *rule,
                              const struct bandit_streak *prev, int64_t now_ms,
                              struct bandit_promote_step *out);

/* The weights of a promotion: 'scale' to arm 'lead', 0 to the others. */
void bandit_promote_weights(size_t lead, size_t n, uint32_t scale,
                            uint32_t *out);

#endif /* BANDITS_PROMOTE_H */
