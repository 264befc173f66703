/* h_report.c -- GET /v1/experiments/{key}/report: the deployment report
 * as one self-contained HTML page (codec/report_html.h), built from the
 * decision trail the database keeps (arbiter.experiment_report(), in
 * sql/migrations/011_models.sql). While the experiment runs it is a live
 * report; once the rollout ends (promoted, rolled back, stopped) the same
 * trail gives the final one, for as long as the experiment is kept.
 */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "codec/report_html.h"
#include "lib/clock.h"
#include "sql/db_models.h"

void
api_experiment_report(struct api_ctx *ctx, const struct api_req *req,
                      struct api_resp *resp)
{
    const char *key = req->params[0];
    if (api_reply_impossible_key(key, resp))
        return;
    char *text = NULL;
    ab_status rc = db_experiment_report(ctx->db, key, &text);
    if (rc == AB_ENOTFOUND) {
        api_reply_no_experiment(resp, key);
        return;
    }
    if (rc != AB_OK) {
        api_reply_status(resp, rc, "could not read the decision trail");
        return;
    }
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    char *html = NULL;
    size_t len = 0;
    rc = report_html_render(doc, ab_now_ms(), &html, &len);
    json_decref(doc);
    if (rc != AB_OK) {
        api_reply_status(resp, AB_EINTERNAL, "could not render the report");
        return;
    }
    api_reply_raw(resp, 200, "text/html; charset=utf-8", html, len);
}
