/* rollout_stats.c -- the decision jobs' arm statistics (see
 * rollout_stats.h). */
#include "service/rollout_stats.h"

#include <string.h>

#include "sql/db_stats.h"

ab_status
rollout_stats_read(struct db *db, const struct core_experiment *e,
                   struct core_eval_stats *grid)
{
    struct db_arm_stat *rows = NULL;
    size_t n_rows = 0;
    if (db_arm_stats_read(db, e->key, &rows, &n_rows) != AB_OK)
        return AB_EDB;
    memset(grid, 0,
           CORE_EVAL_MAX_METRICS * CORE_EVAL_MAX_ARMS * sizeof(*grid));
    for (size_t m = 0; m < e->n_metrics && m < CORE_EVAL_MAX_METRICS; m++)
        for (size_t a = 0; a < e->n_arms && a < CORE_EVAL_MAX_ARMS; a++) {
            const struct db_arm_stat *r = db_arm_stat_find(
                rows, n_rows, e->metrics[m].name, e->arms[a].name);
            struct core_eval_stats *s = &grid[m * CORE_EVAL_MAX_ARMS + a];
            if (r == NULL)
                continue;
            *s = (struct core_eval_stats){
                r->n,          r->sum,       r->sum_sq,           r->den_sum,
                r->den_sum_sq, r->cross_sum, r->units_with_events};
        }
    db_arm_stats_free(rows, n_rows);
    return AB_OK;
}
