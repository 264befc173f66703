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

#endif /* API_HANDLERS_H */
