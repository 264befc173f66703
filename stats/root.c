/* root.c -- regula falsi with the Illinois modification (Dowell &
 * Jarratt 1971, "A modified regula falsi method for computing the root of
 * an equation", BIT 11, 168-174; also Press et al., Numerical Recipes,
 * 3rd ed., 9.2). Each step takes the secant through the bracket's ends;
 * when the same end is kept twice in a row, its function value is halved
 * so the next secant moves it: order ~1.44 convergence, never leaving the
 * bracket. A step that lands outside (rounding) is replaced by bisection.
 *
 * The function is normalised to increasing (g = sign * f): Illinois is
 * symmetric under negation, so the points evaluated are the same either
 * way.
 */
#include "stats/root.h"

#include <math.h>

ab_status
stats_root_illinois(stats_root_fn *f, void *arg, double lo, double hi,
                    double flo, double fhi, const struct stats_root_tol *tol,
                    double *root)
{
    if (isnan(flo) || isnan(fhi) || !(lo < hi))
        return AB_EINVAL;
    double sign = flo <= 0 ? 1 : -1;
    flo *= sign;
    fhi *= sign;
    if (flo > 0 || fhi < 0)
        return AB_EINVAL;
    int kept = 0; /* -1: lo moved last, 1: hi moved last */
    for (int i = 0; i < tol->max_iter; i++) {
        if (flo == 0) {
            *root = lo;
            return AB_OK;
        }
        if (fhi == 0) {
            *root = hi;
            return AB_OK;
        }
        if (hi - lo <= tol->x_abs + tol->x_rel * fmax(fabs(lo), fabs(hi)))
            break;
        double x = (lo * fhi - hi * flo) / (fhi - flo);
        if (!(x > lo && x < hi))
            x = (lo + hi) / 2;
        double fx = f(x, arg);
        if (isnan(fx))
            return AB_ENUMERIC;
        fx *= sign;
        if (fabs(fx) <= tol->f_abs) {
            *root = x;
            return AB_OK;
        }
        if (fx < 0) {
            lo = x;
            flo = fx;
            if (kept == -1)
                fhi /= 2;
            kept = -1;
        } else {
            hi = x;
            fhi = fx;
            if (kept == 1)
                flo /= 2;
            kept = 1;
        }
        if (i + 1 == tol->max_iter && tol->strict)
            return AB_ENUMERIC;
    }
    *root = (lo + hi) / 2;
    return AB_OK;
}
