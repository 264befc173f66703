/* metric_kind.c -- the table of metric kinds (metric_kind.h). */
#include "core/metric_kind.h"

#include <string.h>

static const struct core_metric_kind_def kinds[] = {
    { CORE_METRIC_BINARY, "binary", "1 converted, 0 did not",
      "sum of values > 0", true, true, false, true, true, true },
    { CORE_METRIC_SUM, "sum", "an amount",
      "sum of values, 0 without events", false, true, false, false, false,
      true },
    { CORE_METRIC_MEAN, "mean", "one measurement", "mean of values", false,
      false, false, false, false, true },
    { CORE_METRIC_RATIO, "ratio", "the numerator of one request",
      "sum of values over the count of events", false, false, true, false,
      false, false },
    /* per-request values kept as a DDSketch per arm (stats/ddsketch.h);
     * analysed from the sketches (stats/quantile.h), not from moments */
    { CORE_METRIC_QUANTILE, "quantile", "one measurement (e.g. a latency)",
      "every value, into the arm's sketch", false, false, false, false,
      false, false },
};

const char core_metric_kind_list[] =
    "\"binary\", \"sum\", \"mean\", \"ratio\", \"quantile\"";

const struct core_metric_kind_def *
core_metric_kind_def(enum core_metric_kind k)
{
    for (size_t i = 0; i < AB_ARRAY_LEN(kinds); i++)
        if (kinds[i].kind == k)
            return &kinds[i];
    return &kinds[2];
}

ab_status
core_metric_kind_parse(const char *s, enum core_metric_kind *out)
{
    for (size_t i = 0; i < AB_ARRAY_LEN(kinds); i++)
        if (strcmp(s, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return AB_OK;
        }
    return AB_EINVAL;
}

ab_status
core_metric_kind_summary(enum core_metric_kind k,
                         const struct stats_ratio_moments *m,
                         struct stats_summary *out, enum stats_reason *why)
{
    if (core_metric_kind_def(k)->ratio_moments)
        return stats_ratio_summary(m, out, why);
    struct stats_moments mm = { m->n, m->num_sum, m->num_sum_sq };
    return stats_moments_summary(&mm, out, why);
}
