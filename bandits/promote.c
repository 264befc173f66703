/* promote.c -- the P(best) promotion rule (promote.h). P(best) is the
 * posterior probability that an arm has the best mean (bandits/bandit.h,
 * Thompson 1933); holding it above a threshold for a fixed time rather
 * than once guards against a lucky run (Scott 2015, "Multi-armed bandit
 * experiments in the online service economy", Applied Stochastic Models
 * in Business and Industry 31, ends an experiment once one arm's P(best)
 * is high; the hold time is ours).
 */
#include "bandits/promote.h"

ab_status
bandit_promote_step(const double *p_best, size_t n, bool adaptive,
                    const struct bandit_promote_rule *rule,
                    const struct bandit_streak *prev, int64_t now_ms,
                    struct bandit_promote_step *out)
{
    if (n == 0)
        return AB_EINVAL;
    struct bandit_promote_step s = {0, false, false, -1, false};
    for (size_t k = 1; k < n; k++)
        if (p_best[k] > p_best[s.lead])
            s.lead = k;
    if (rule->enabled && adaptive && p_best[s.lead] >= rule->threshold) {
        s.in_streak = true;
        s.continued = prev->leader == (long)s.lead && prev->since_ms >= 0;
        s.since_ms = s.continued ? prev->since_ms : now_ms;
        s.due = now_ms - s.since_ms >= rule->after_ms;
    }
    *out = s;
    return AB_OK;
}

void
bandit_promote_weights(size_t lead, size_t n, uint32_t scale, uint32_t *out)
{
    for (size_t k = 0; k < n; k++)
        out[k] = k == lead ? scale : 0;
}
