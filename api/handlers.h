/* handlers.h -- every route handler (see routes.c for the table). */
#ifndef API_HANDLERS_H
#define API_HANDLERS_H

#include "api/api.h"

/* api/h_health.c */
api_handler_fn api_health, api_ready, api_metrics;
/* api/h_assign.c */
api_handler_fn api_assign_get, api_assign_post;
/* api/h_rollout.c */
api_handler_fn api_experiment_promote, api_experiment_rollback,
    api_experiment_approve;
/* api/h_results.c */
api_handler_fn api_analyze_post, api_experiment_results;
/* api/h_bandit.c */
api_handler_fn api_bandit_get;
/* api/h_events.c */
api_handler_fn api_events_post;
/* api/h_experiments.c */
api_handler_fn api_experiment_create, api_experiment_list,
    api_experiment_get, api_experiment_patch, api_experiment_start,
    api_experiment_pause, api_experiment_resume, api_experiment_stop,
    api_experiment_decisions, api_experiment_exposures;
/* api/h_models.c */
api_handler_fn api_model_register, api_model_list, api_model_get,
    api_model_history, api_model_production, api_model_version_get,
    api_model_stage, api_model_checkpoint_add, api_models_experiment_create,
    api_models_experiment_patch;
/* api/h_report.c */
api_handler_fn api_experiment_report;

/* api/h_shadow.c (issue 16: paired shadow analysis) */
api_handler_fn api_shadow_pairs_post, api_shadow_labels_post, api_shadow_get;

/* api/h_verdict.c */
api_handler_fn api_experiment_verdict;
/* api/h_flagger.c */
api_handler_fn api_flagger_rollout, api_flagger_confirm_promotion,
    api_flagger_rollback, api_flagger_event;
/* api/h_ofrep.c */
api_handler_fn api_ofrep_evaluate, api_ofrep_bulk, api_ofrep_preflight,
    api_ofrep_configuration, api_ofrep_track;

/* Shared by handlers ------------------------------------------------------ */
struct snapshot;
struct core_experiment;
struct core_attr;
struct core_assignment;
struct verdict;
/* h_assign.c: assign one unit in experiment s->exps[idx] (stickiness, the
 * assignment counter; the exposure only when 'expose'). The unit must be
 * checked (1..CORE_UNIT_MAX bytes of UTF-8). */
void api_assign_unit(struct app *app, struct snapshot *s, size_t idx,
                     const char *unit, size_t unit_len,
                     const struct core_attr *attrs, size_t n_attrs,
                     bool expose, struct core_assignment *out);
/* h_verdict.c: the verdict answer for e (new reference); *v is filled. */
json_t *api_verdict_json(struct app *app, const struct core_experiment *e,
                         struct verdict *v);

/* api/lookup.c: the one load-experiment-or-reply ladder. */
struct db_experiment;
/* Whether some experiment could have this key: 1 to CORE_KEY_MAX
 * characters of A-Z a-z 0-9 _ . - (codec/experiment_json.h). */
bool api_key_possible(const char *key);
/* 404 not_found: no experiment "<key>" (JSON-quoted; "(too long)"). */
void api_reply_no_experiment(struct api_resp *resp, const char *key);
/* true after a 404 for a key no experiment can have (no database trip:
 * PostgreSQL would refuse a key that is not UTF-8 with a 5xx). */
bool api_reply_impossible_key(const char *key, struct api_resp *resp);
/* The experiment 'key' in the current snapshot, *s held (release it with
 * app_snapshot_release()) and *idx its index when idx is not NULL; NULL
 * after a 404 was written to resp (*s is then NULL, nothing held). */
struct core_experiment *api_snapshot_experiment(struct api_ctx *ctx,
                                                const char *key,
                                                struct api_resp *resp,
                                                struct snapshot **s,
                                                size_t *idx);
/* The stored row of experiment 'key' into *row (db_experiment_clear() it);
 * false after a 404 (impossible or unknown key) or a 503 (database) was
 * written to resp. */
bool api_experiment_row(struct api_ctx *ctx, const char *key,
                        struct api_resp *resp, struct db_experiment *row);

#endif /* API_HANDLERS_H */
