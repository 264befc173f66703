/* alloc.h -- from bandit shares to a published weights version: the
 * shares as millionths of traffic (the unit of core/experiment.h's arm
 * weights), whether they changed enough to publish, and the rng seed of a
 * weights version. Pure: no I/O, no allocation.
 */
#ifndef BANDITS_ALLOC_H
#define BANDITS_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

#define BANDIT_MILLIONTHS 1000000u /* 100 % of traffic (= CORE_SCALE) */

/* Shares w[0..n) (non-negative, sum > 0) as millionths that sum to exactly
 * BANDIT_MILLIONTHS: each gets floor(BANDIT_MILLIONTHS w_k / sum w), and
 * the remainder goes one millionth at a time to the largest fractional
 * parts (ties: the lower index) -- Hamilton's largest-remainder method
 * (Balinski and Young, "Fair Representation", 2nd ed. 2001). AB_EINVAL
 * when a share is negative or not finite, they sum to 0, n is 0 or above
 * BANDIT_MAX_ARMS. 'out' is written only on AB_OK. */
ab_status bandit_to_millionths(const double *w, size_t n, uint32_t *out);

/* Whether new weights differ from the current ones by more than one
 * millionth on some arm: a one-millionth difference is the rounding of
 * equal shares landing on another arm (1/3 each: 333334 333333 333333 or
 * 333333 333333 333334), not a change worth a new weights version. */
bool bandit_weights_changed(const uint32_t *current, const uint32_t *next,
                            size_t n);

/* The seed of the rng that computes weights version v of an experiment
 * with seed 'seed': the low 32 bits of splitmix64(seed XOR splitmix64(v))
 * (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), so any version can be recomputed from its
 * recorded inputs. Stable: recorded in every version's inputs. */
unsigned long bandit_rng_seed(int64_t seed, int64_t weights_version);

#endif /* BANDITS_ALLOC_H */
