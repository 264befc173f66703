/* ddsketch.c -- DDSketch (Masson, Rim & Lee, VLDB 2019, sec. 2): bucket
 * index ceil(log_gamma x), representative 2 gamma^i / (gamma + 1), bins kept
 * sorted in a caller-owned array (see ddsketch.h for the guarantee). */
#include "stats/ddsketch.h"

#include <math.h>
#include <string.h>

ab_status
stats_ddsketch_init(struct stats_ddsketch *s, double alpha,
                    struct stats_ddsketch_bin *bins, size_t cap)
{
    if (!(alpha > 0 && alpha < 1) || bins == NULL || cap == 0)
        return AB_EINVAL;
    s->alpha = alpha;
    s->gamma = (1 + alpha) / (1 - alpha);
    s->ln_gamma = log(s->gamma);
    s->n = 0;
    s->bins = bins;
    s->n_bins = 0;
    s->cap = cap;
    return AB_OK;
}

int32_t
stats_ddsketch_index(double ln_gamma, double x)
{
    if (!(x > 0))
        return STATS_DDSKETCH_ZERO;
    /* the same operations, in the same order, as arbiter.ddsketch_index()
     * (013_quantiles.sql): ceil(ln(x) / ln(gamma)) in double precision */
    double i = ceil(log(x) / ln_gamma);
    return (int32_t)i; /* |i| < 40,000 for finite doubles at alpha 1 % */
}

double
stats_ddsketch_value(const struct stats_ddsketch *s, int32_t index)
{
    if (index == STATS_DDSKETCH_ZERO)
        return 0;
    return 2 * exp(index * s->ln_gamma) / (s->gamma + 1);
}

/* Position of index in the sorted bins (first bin with index >= it). */
static size_t
find(const struct stats_ddsketch *s, int32_t index)
{
    size_t lo = 0, hi = s->n_bins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->bins[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ab_status
stats_ddsketch_add_bin(struct stats_ddsketch *s, int32_t index,
                       uint64_t count)
{
    if (count == 0)
        return AB_OK;
    size_t at = find(s, index);
    if (at < s->n_bins && s->bins[at].index == index) {
        s->bins[at].count += count;
    } else {
        if (s->n_bins == s->cap)
            return AB_ETOOBIG;
        memmove(&s->bins[at + 1], &s->bins[at],
                (s->n_bins - at) * sizeof(s->bins[0]));
        s->bins[at].index = index;
        s->bins[at].count = count;
        s->n_bins++;
    }
    s->n += count;
    return AB_OK;
}

ab_status
stats_ddsketch_add(struct stats_ddsketch *s, double x, uint64_t count)
{
    return stats_ddsketch_add_bin(s, stats_ddsketch_index(s->ln_gamma, x),
                                  count);
}

ab_status
stats_ddsketch_merge(struct stats_ddsketch *dst,
                     const struct stats_ddsketch *src)
{
    if (dst->alpha != src->alpha)
        return AB_EINVAL;
    for (size_t i = 0; i < src->n_bins; i++) {
        ab_status rc = stats_ddsketch_add_bin(dst, src->bins[i].index,
                                              src->bins[i].count);
        if (rc != AB_OK)
            return rc;
    }
    return AB_OK;
}

ab_status
stats_ddsketch_at_rank(const struct stats_ddsketch *s, uint64_t r,
                       double *out)
{
    if (r < 1 || r > s->n)
        return AB_EINVAL;
    uint64_t cum = 0;
    for (size_t i = 0; i < s->n_bins; i++) {
        cum += s->bins[i].count;
        if (cum >= r) {
            *out = stats_ddsketch_value(s, s->bins[i].index);
            return AB_OK;
        }
    }
    return AB_EINVAL; /* unreachable: the counts sum to n */
}

ab_status
stats_ddsketch_rank_bounds(const struct stats_ddsketch *s, uint64_t r,
                           double *low, double *high)
{
    if (r < 1 || r > s->n)
        return AB_EINVAL;
    uint64_t cum = 0;
    for (size_t i = 0; i < s->n_bins; i++) {
        cum += s->bins[i].count;
        if (cum < r)
            continue;
        int32_t k = s->bins[i].index;
        if (k == STATS_DDSKETCH_ZERO) {
            *low = *high = 0;
        } else {
            *low = exp((k - 1) * s->ln_gamma);
            *high = exp(k * s->ln_gamma);
        }
        return AB_OK;
    }
    return AB_EINVAL;
}

ab_status
stats_ddsketch_quantile(const struct stats_ddsketch *s, double q,
                        double *out)
{
    if (!(q > 0 && q < 1) || s->n == 0)
        return AB_EINVAL;
    double r = ceil(q * (double)s->n);
    if (r < 1)
        r = 1;
    return stats_ddsketch_at_rank(s, (uint64_t)r, out);
}
