/* alloc.c -- largest-remainder apportionment to millionths, the
 * publish-worthy change test and the per-version rng seed (alloc.h).
 *
 * Hamilton's method (Balinski and Young 2001, ch. 2): quotas
 * q_k = S w_k / sum w; every arm gets floor(q_k); the S - sum floor(q_k)
 * millionths left (fewer than n) go to the largest q_k - floor(q_k).
 * Rounding of w_k / sum w can make the floors sum to S + 1 or leave n
 * millionths, hence the two loops that settle the exact total.
 */
#include "bandits/alloc.h"

#include <math.h>

#include "bandits/bandit.h"

ab_status
bandit_to_millionths(const double *w, size_t n, uint32_t *out)
{
    uint32_t base[BANDIT_MAX_ARMS];
    double frac[BANDIT_MAX_ARMS];
    size_t order[BANDIT_MAX_ARMS];
    double sum = 0;
    if (n == 0 || n > BANDIT_MAX_ARMS)
        return AB_EINVAL;
    for (size_t k = 0; k < n; k++) {
        if (!(w[k] >= 0) || !isfinite(w[k]))
            return AB_EINVAL;
        sum += w[k];
    }
    if (!(sum > 0))
        return AB_EINVAL;
    int64_t left = BANDIT_MILLIONTHS;
    for (size_t k = 0; k < n; k++) {
        double x =
            fmin((double)BANDIT_MILLIONTHS * (w[k] / sum), BANDIT_MILLIONTHS);
        base[k] = (uint32_t)floor(x);
        frac[k] = x - floor(x);
        left -= base[k];
    }
    /* indices by decreasing fractional part, ties by index (insertion
     * sort: n <= BANDIT_MAX_ARMS) */
    for (size_t k = 0; k < n; k++) {
        size_t j = k;
        while (j > 0 && frac[order[j - 1]] < frac[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    for (size_t i = 0; left > 0; i = (i + 1) % n, left--)
        base[order[i]]++;
    for (size_t i = n; left < 0; left++) {
        do
            i = (i + n - 1) % n;
        while (base[order[i]] == 0);
        base[order[i]]--;
    }
    for (size_t k = 0; k < n; k++)
        out[k] = base[k];
    return AB_OK;
}

bool
bandit_weights_changed(const uint32_t *current, const uint32_t *next, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (next[k] > current[k] + 1 || current[k] > next[k] + 1)
            return true;
    return false;
}

/* splitmix64 finaliser (Steele, Lea and Flood 2014). */
static uint64_t
splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

unsigned long
bandit_rng_seed(int64_t seed, int64_t weights_version)
{
    uint64_t h =
        splitmix64((uint64_t)seed ^ splitmix64((uint64_t)weights_version));
    return (unsigned long)(h & 0xffffffffULL);
}
