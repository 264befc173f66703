/* estimate.h -- arm means that stay unbiased when the allocation changes.
 * Pure: no I/O, no allocation.
 *
 * Under adaptive allocation the naive arm mean (sum / n over the units the
 * arm received) is biased: the arm receives more units in the periods in
 * which it happened to look good, and in periods whose outcomes differ for
 * everyone (a weekday effect). Weighting each unit by the inverse of the
 * propensity that the assignment recorded (the arm's weight when the unit
 * was assigned) removes the bias; so does averaging per-period means with
 * the period's share of all units.
 */
#ifndef BANDITS_ESTIMATE_H
#define BANDITS_ESTIMATE_H

#include <stddef.h>

#include "lib/status.h"

/* Inverse-propensity sums for one arm over an experiment with n_total
 * units in all arms. Over the units i that received the arm, with recorded
 * propensity p_i > 0 and outcome y_i:
 *   sum_w = sum 1/p_i        sum_wy  = sum y_i/p_i
 *   sum_w2 = sum 1/p_i^2     sum_w2y = sum y_i/p_i^2
 *   sum_w2y2 = sum y_i^2/p_i^2
 * They add across units and across instances, like the other sufficient
 * statistics. */
struct bandit_ipw_sums {
    double n_total;
    double sum_w, sum_wy, sum_w2, sum_w2y, sum_w2y2;
};

struct bandit_estimate {
    double mean; /* estimate of the arm's mean over the population */
    double se;   /* its standard error */
};

/* Horvitz-Thompson mean  sum_wy / n_total  with
 *   se^2 = (sum_w2y2 / n_total - mean^2) / n_total,
 * and the Hajek (self-normalised) mean  sum_wy / sum_w  with the
 * linearised
 *   se^2 = (sum_w2y2 - 2 m sum_w2y + m^2 sum_w2) / sum_w^2.
 * Either out pointer may be NULL. Outputs are written only on AB_OK.
 * AB_EINVAL: n_total <= 0, sum_w <= 0, a negative or non-finite sum. */
ab_status bandit_ipw_mean(const struct bandit_ipw_sums *s,
                          struct bandit_estimate *ht,
                          struct bandit_estimate *hajek);

/* One allocation period (a span in which the weights did not change) for
 * one arm: n_total units in all arms, and this arm's n, sum, sum_sq. */
struct bandit_period {
    double n_total;
    double n, sum, sum_sq;
};

/* Per-period (stratified) mean  sum_t (N_t / N) ybar_t  over the periods
 * with n >= 1, N the total of their n_total, and
 *   se^2 = sum_t (N_t / N)^2 s_t^2 / n_t
 * where s_t^2 is the period's sample variance (periods with one unit
 * contribute none). AB_EINVAL: no period has a unit, or impossible
 * statistics. '*out' is written only on AB_OK. */
ab_status bandit_period_mean(const struct bandit_period *periods,
                             size_t n_periods, struct bandit_estimate *out);

#endif /* BANDITS_ESTIMATE_H */
