/* root.h -- the one bracketed root finder of the statistics code: regula
 * falsi with the Illinois modification (Dowell & Jarratt 1971, BIT 11,
 * 168-174), superlinear and always inside its bracket. Pure: no I/O, no
 * allocation, no state beyond the caller's stack (the GSL solvers,
 * gsl_root_fsolver_brent, allocate, and stats/ does not).
 *
 * Callers find the bracket themselves (the search is domain knowledge:
 * log n for sample sizes, [0, 1] for rates); this header refines it.
 */
#ifndef STATS_ROOT_H
#define STATS_ROOT_H

#include <stdbool.h>

#include "lib/status.h"

/* The function whose root is sought; NaN reports a failed evaluation. */
typedef double stats_root_fn(double x, void *arg);

/* When to stop:
 *   |f(x)| <= f_abs                                      -> x
 *   hi - lo <= x_abs + x_rel * max(|lo|, |hi|)           -> (lo + hi) / 2
 *   max_iter evaluations spent -> AB_ENUMERIC when strict, else the
 *                                 midpoint of the last bracket. */
struct stats_root_tol {
    double x_abs, x_rel, f_abs;
    int max_iter;
    bool strict;
};

/* Root of f in [lo, hi], given flo = f(lo) and fhi = f(hi) of opposite
 * signs (either may be zero; either order: increasing or decreasing f).
 * AB_EINVAL when the values do not bracket a root, AB_ENUMERIC when f
 * answers NaN (or, strict, the iterations run out). '*root' is written
 * only on AB_OK. */
ab_status stats_root_illinois(stats_root_fn *f, void *arg, double lo, double hi,
                              double flo, double fhi,
                              const struct stats_root_tol *tol, double *root);

#endif /* STATS_ROOT_H */
