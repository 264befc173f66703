/* h_verdict.c -- GET /v1/experiments/:key/verdict: the rollout verdict a
 * Kubernetes controller gates on (Argo Rollouts' web metric provider).
 *
 *   {"experiment":"k","strategy":"canary","verdict":"continue",
 *    "phase":"ramp","step":1,"share":5,"reason":"...",
 *    "decided_at":"2026-12-03T13:40:00.000Z","age_s":4.2,"stale":false}
 *
 * From memory only (service/verdicts.c: the decision leader's latest
 * decision, the snapshot's state): never recomputed per request, never
 * waiting on PostgreSQL, so it answers 200 for every known experiment
 * even while the database is down (a 5xx would count toward Argo's
 * consecutive-error limit and abort the rollout). "stale" says the answer
 * may be behind: the database is unreachable, or the experiment is
 * running and this process has made no decision on it within three
 * decision ticks plus 5 s (it is not the leader, or the leader is stuck).
 * A decision is every evaluation the leader applied, "continue" included:
 * decided_at is the last one.
 */

#include "api/handlers.h"
#include "lib/clock.h"
#include "codec/field.h"
#include "service/app.h"
#include "service/verdicts.h"

/* A leader's tick can run late (a slow database, a loaded host): three
 * ticks plus this before a running experiment's decision counts as stale. */
#define STALE_SLACK_MS 5000

json_t *
api_verdict_json(struct app *app, const struct core_experiment *e,
                 struct verdict *v)
{
    verdicts_get(e, v);
    int64_t now = ab_now_ms();
    json_t *decided = json_null(), *age = json_null();
    if (v->decided_at_ms > 0) {
        decided = codec_time_json(v->decided_at_ms);
        age = json_real((double)(now - v->decided_at_ms) / 1000.0);
    }
    bool stale = !app_db_up(app);
    if (e->state == CORE_STATE_RUNNING &&
        (v->decided_at_ms == 0 ||
         now - v->decided_at_ms >
             3 * (int64_t)app->cfg.decision_tick_ms + STALE_SLACK_MS))
        stale = true;
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:f,s:s,s:o,s:o,s:b}",
                     "experiment", e->key, "strategy",
                     core_strategy_name(e->strategy), "verdict", v->verdict,
                     "phase", *v->phase ? json_string(v->phase) : json_null(),
                     "step",
                     v->step >= 0 ? json_integer((json_int_t)v->step)
                                  : json_null(),
                     "share", v->share, "reason", v->reason, "decided_at",
                     decided, "age_s", age, "stale", stale);
}

void
api_experiment_verdict(struct api_ctx *ctx, const struct api_req *req,
                       struct api_resp *resp)
{
    const char *key = req->params[0];
    struct snapshot *s;
    const struct core_experiment *e =
        api_snapshot_experiment(ctx, key, resp, &s, NULL);
    if (e == NULL)
        return;
    struct verdict v;
    json_t *body = api_verdict_json(ctx->app, e, &v);
    app_snapshot_release(s);
    api_reply_json(resp, 200, body);
}
