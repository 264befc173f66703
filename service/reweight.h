/* reweight.h -- bandit experiments in the running service: the reweight
 * job that the decision leader runs every tick (service/leader.h), and the
 * estimates that stay unbiased while the allocation changes.
 *
 * For each running bandit experiment whose interval elapsed, the job reads
 * the arm statistics of the bandit's metric (arbiter.arm_stats), computes
 * new weights with bandit_weights() and a gsl_rng seeded from (seed,
 * weights_version), rounds them to percent with 4 decimals that sum to
 * exactly 100, and -- when they differ from the current ones -- publishes
 * them: the definition's arm weights and weights_version change in one
 * statement with the history row (inputs, seed, P(best)), the decision
 * row and the NOTIFY that reloads every process's snapshot. It also
 * tracks how long the arm with the largest P(best) has kept it above
 * promote_threshold, and promotes that arm (weight 100, decision
 * 'promote') after promote_after_s. Its memory lives in
 * arbiter.bandit_state, so a new leader carries on.
 */
#ifndef SERVICE_REWEIGHT_H
#define SERVICE_REWEIGHT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bandits/bandit.h"
#include "core/experiment.h"
#include "lib/status.h"

struct app;
struct db;
struct reweight;

/* A job (allocates the bandit workspace and the rng); stores a new one in
 * *out, release with reweight_free() (NULL is a no-op) after the leader
 * stopped. Registers the arbiter_bandit_* counters. */
/* The bandits/ policy that runs the model's (codec/experiment_json.c names
 * them; the two enums list the same policies). */
enum bandit_policy reweight_policy(enum core_bandit_policy p);

ab_status reweight_new(struct reweight **out);
void reweight_free(struct reweight *r);

/* Decisions wait while the folded statistics are older than max_age_ms
 * (service/fold.h, fold_gate_check: logged and counted in
 * arbiter_bandit_stale_waits_total). Call once, before the leader starts;
 * without it the job does not wait. */
void reweight_set_fold_max_age(struct reweight *r, int64_t max_age_ms);

/* The leader job (a leader_job_fn): arg is the struct reweight. */
void reweight_job(void *arg, struct db *db, int64_t now_ms);

/* Corrected estimates of every arm's mean of the bandit's metric, as a new
 * JSON object in *out:
 *   {"metric","kind","lower_is_better","method":"per_period","units",
 *    "unallocated_units","periods",
 *    "estimates":[{"arm","units","naive_mean","naive_se","corrected_mean",
 *                  "corrected_se","method":"per_period",
 *                  "ipw":{"units","ht_mean","ht_se","hajek_mean",
 *                         "hajek_se"}}]}
 * corrected_*: the per-period (stratified) mean over allocation periods
 * (the weights version of each unit's first exposure); ipw: the inverse
 * propensity means with the propensities recorded at first exposure
 * (bandits/estimate.h). Means without data are null. AB_EINVAL: e is not
 * a bandit or has no metric; AB_EDB. */
ab_status reweight_estimates_json(struct db *db,
                                  const struct core_experiment *e,
                                  json_t **out);

#endif /* SERVICE_REWEIGHT_H */
