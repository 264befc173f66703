/* h_health.c -- liveness, readiness and the Prometheus endpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "api/handlers.h"
#include "service/verdicts.h"
#include "service/holdback.h"
#include "service/drift_job.h"
#include "lib/metrics.h"

void
api_health(struct api_ctx *ctx, const struct api_req *req,
           struct api_resp *resp)
{
    (void)ctx;
    (void)req;
    api_reply_raw(resp, 200, "application/json",
                  ab_xstrdup("{\"status\":\"ok\"}"), 15);
}

/* Ready: a snapshot was loaded from PostgreSQL and it is reachable now. */
void
api_ready(struct api_ctx *ctx, const struct api_req *req,
          struct api_resp *resp)
{
    (void)req;
    struct app *app = ctx->app;
    bool loaded = atomic_load(&app->m_reloads) > 0;
    bool db = app_db_up(app);
    int status = loaded && db ? 200 : 503;
    api_reply_json(resp, status,
                   json_pack("{s:s,s:b,s:b,s:I}", "status",
                             status == 200 ? "ready" : "not_ready",
                             "snapshot_loaded", loaded, "database", db,
                             "snapshot_version",
                             (json_int_t)atomic_load(
                                 &app->m_snapshot_version)));
}

void
api_metrics(struct api_ctx *ctx, const struct api_req *req,
            struct api_resp *resp)
{
    (void)req;
    char *text, *more;
    size_t len, more_len;
    metrics_render(&text, &len);
    api_unavailable_render(&more, &more_len); /* 503s by reason */
    text = ab_xrealloc(text, len + more_len + 1);
    memcpy(text + len, more, more_len + 1);
    len += more_len;
    free(more);
    { /* per-experiment rollout series (service/verdicts.c) */
        struct snapshot *s = app_snapshot_get(ctx->app);
        /* the label-set limit (lib/metrics.h): the experiments past it
         * are rendered as experiment="other" */
        bool *labelled = ab_xcalloc(s->n ? s->n : 1, sizeof(*labelled));
        for (size_t i = 0; i < s->n; i++)
            labelled[i] = metrics_experiment_labelled(s->exps[i]->key);
        verdicts_metrics_render((const struct core_experiment *const *)s->exps,
                                s->n, labelled, &more, &more_len);
        free(labelled);
        app_snapshot_release(s);
        text = ab_xrealloc(text, len + more_len + 1);
        memcpy(text + len, more, more_len + 1);
        len += more_len;
        free(more);
    }
    { /* the watches after promotion and the drift watches (issue 16:
       * service/holdback.c, service/drift_job.c) */
        struct snapshot *s = app_snapshot_get(ctx->app);
        const struct core_experiment *const *exps =
            (const struct core_experiment *const *)s->exps;
        for (int k = 0; k < 2; k++) {
            if (k == 0)
                holdback_metrics_render(exps, s->n, &more, &more_len);
            else
                drift_metrics_render(exps, s->n, &more, &more_len);
            text = ab_xrealloc(text, len + more_len + 1);
            memcpy(text + len, more, more_len + 1);
            len += more_len;
            free(more);
        }
        app_snapshot_release(s);
    }
    api_reply_raw(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                  len);
}
