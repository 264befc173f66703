/* ddsketch.h -- a mergeable quantile sketch with a relative-error
 * guarantee (DDSketch: Masson, Rim & Lee, "DDSketch: a fast and fully-
 * mergeable quantile sketch with relative-error guarantees", VLDB 2019).
 * Pure: no I/O, no allocation (the caller owns the bin array), no globals.
 *
 * Buckets. gamma = (1 + alpha) / (1 - alpha). A value x > 0 goes to the
 * bucket with index
 *     i(x) = ceil(ln(x) / ln(gamma))       (bucket i holds (gamma^(i-1),
 *                                            gamma^i])
 * and a bucket stands for v(i) = 2 gamma^i / (gamma + 1), which is within
 * relative error alpha of every value of its bucket:
 *     |v(i) - x| <= alpha x   for every x in (gamma^(i-1), gamma^i].
 * Zero and negative values (the documented rule): the sketch is for
 * non-negative outcomes such as latency; x <= 0 is counted in a zero bucket
 * (index STATS_DDSKETCH_ZERO) that sorts below every positive value and
 * stands for 0. Zeros are therefore exact; a negative value is clamped to 0.
 *
 * Guarantee. Let X_(1) <= ... <= X_(n) be the values added (negatives
 * clamped to 0). For every rank r in 1..n, stats_ddsketch_at_rank() returns
 * v with |v - X_(r)| <= alpha X_(r): the r-th value lies in the bucket where
 * the cumulative count first reaches r, and v(i) is within alpha of every
 * value of that bucket. A quantile q is reported at rank ceil(q n) (the
 * inverse of the empirical distribution function, numpy's "inverted_cdf"),
 * so it is within relative error alpha of the exact sample quantile of that
 * rank. Merging adds counts bucket by bucket: the merge of two sketches is
 * the sketch of the union, exactly.
 *
 * arbiter stores sketches in PostgreSQL at alpha = STATS_DDSKETCH_ALPHA (the
 * fold computes the same index in SQL: 013_quantiles.sql).
 */
#ifndef STATS_DDSKETCH_H
#define STATS_DDSKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

#define STATS_DDSKETCH_ALPHA 0.01
#define STATS_DDSKETCH_ZERO INT32_MIN /* the index of the zero bucket */

struct stats_ddsketch_bin {
    int32_t index;
    uint64_t count;
};

/* bins: caller-owned, sorted by index, at most cap of them. */
struct stats_ddsketch {
    double alpha, gamma, ln_gamma;
    uint64_t n; /* values added */
    struct stats_ddsketch_bin *bins;
    size_t n_bins, cap;
};

/* An empty sketch over the caller's bins[cap]. AB_EINVAL: alpha not in
 * (0, 1), or cap 0. */
ab_status stats_ddsketch_init(struct stats_ddsketch *s, double alpha,
                              struct stats_ddsketch_bin *bins, size_t cap);

/* The bucket index of x at this alpha: STATS_DDSKETCH_ZERO for x <= 0
 * (and NaN, which callers never pass). */
int32_t stats_ddsketch_index(double ln_gamma, double x);

/* The value a bucket stands for (0 for the zero bucket). */
double stats_ddsketch_value(const struct stats_ddsketch *s, int32_t index);

/* Add count values x (x finite). AB_ETOOBIG: a new bucket and no room. */
ab_status stats_ddsketch_add(struct stats_ddsketch *s, double x,
                             uint64_t count);

/* Add count to a bucket by index (as stored by the fold). AB_ETOOBIG: no
 * room. */
ab_status stats_ddsketch_add_bin(struct stats_ddsketch *s, int32_t index,
                                 uint64_t count);

/* dst += src (same alpha, else AB_EINVAL; AB_ETOOBIG: no room, dst may
 * then hold part of src). */
ab_status stats_ddsketch_merge(struct stats_ddsketch *dst,
                               const struct stats_ddsketch *src);

/* The value of rank r (1 <= r <= n) within relative error alpha (see the
 * header). AB_EINVAL: r out of range. */
ab_status stats_ddsketch_at_rank(const struct stats_ddsketch *s, uint64_t r,
                                 double *out);

/* The edges of the bucket that holds X_(r): X_(r) in (*low, *high]
 * (gamma^(i-1) and gamma^i, the sharp form of the alpha bound; both 0 for
 * the zero bucket, where X_(r) = 0). AB_EINVAL: r out of range. */
ab_status stats_ddsketch_rank_bounds(const struct stats_ddsketch *s,
                                     uint64_t r, double *low, double *high);

/* The q-quantile (0 < q < 1) at rank ceil(q n). AB_EINVAL: q out of range
 * or an empty sketch. */
ab_status stats_ddsketch_quantile(const struct stats_ddsketch *s, double q,
                                  double *out);

#endif /* STATS_DDSKETCH_H */
