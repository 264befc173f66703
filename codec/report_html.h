/* report_html.h -- the deployment report of one experiment as a
 * self-contained HTML page: no script, no external style, font or image;
 * every chart is inline SVG. Pure: the document in, the page out.
 *
 * The document is what arbiter.experiment_report() builds
 * (sql/migrations/011_models.sql):
 *   experiment  {key, state, served_arm, definition, created_at, ...}
 *   rollout     {phase, step, evidence} or null
 *   decisions   [{id, at, t, action, from_state, to_state, actor, reason,
 *                 details}]
 *   weights     [{version, at, t, weights {"arm": percent}, source}]
 *   evidence    [{t, phase, step, evidence {primary, guardrails, ...}}]
 *   series      [{metric, arm, t, events, units, sum}]  (time buckets)
 *   models      [{model, version, at, action, from_stage, to_stage,
 *                 decision_id}]
 * Times "t" are epoch milliseconds; now_ms closes the open intervals.
 *
 * Every chart is an <svg class="chart" data-chart="NAME" data-points="N">
 * with N the number of data points drawn, so a test can check that every
 * chart is present and has data.
 */
#ifndef CODEC_REPORT_HTML_H
#define CODEC_REPORT_HTML_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/status.h"

/* A new NUL-terminated page in *html (free()), its length in *len.
 * AB_EINVAL when doc is not a report document. */
ab_status report_html_render(json_t *doc, int64_t now_ms, char **html,
                             size_t *len);

#endif /* CODEC_REPORT_HTML_H */
