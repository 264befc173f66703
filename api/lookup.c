/* lookup.c -- the one load-experiment-or-reply ladder every handler that
 * names an experiment goes through:
 *
 *   key no experiment can have   -> 404 not_found (no database round trip)
 *   not in the snapshot / table  -> 404 not_found, no experiment "<key>"
 *   PostgreSQL cannot answer     -> 503 (api_reply_status: Retry-After: 1)
 *
 * The key in the message is quoted JSON-style ("a\"b\\"), so a caller sees
 * exactly what arbiter looked for; a key longer than any experiment's is
 * shown as (too long).
 */
#include <string.h>

#include "api/handlers.h"
#include "core/experiment.h"
#include "service/app.h"
#include "sql/db.h"

bool
api_key_possible(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > CORE_KEY_MAX)
        return false;
    for (const char *p = key; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

void
api_reply_no_experiment(struct api_resp *resp, const char *key)
{
    char k[6 * CORE_KEY_MAX + 8];
    api_json_escape(k, sizeof(k),
                    strlen(key) > CORE_KEY_MAX ? "(too long)" : key);
    api_reply_error(resp, 404, "not_found", "no experiment \"%s\"", k);
}

bool
api_reply_impossible_key(const char *key, struct api_resp *resp)
{
    if (api_key_possible(key))
        return false;
    api_reply_error(resp, 404, "not_found",
                    "no experiment with this key (keys are 1 to 64 "
                    "characters of A-Z a-z 0-9 _ . -)");
    return true;
}

struct core_experiment *
api_snapshot_experiment(struct api_ctx *ctx, const char *key,
                        struct api_resp *resp, struct snapshot **s,
                        size_t *idx)
{
    *s = app_snapshot_get(ctx->app);
    struct core_experiment *e = snapshot_find(*s, key, idx);
    if (e == NULL) {
        app_snapshot_release(*s);
        *s = NULL;
        api_reply_no_experiment(resp, key);
    }
    return e;
}

bool
api_experiment_row(struct api_ctx *ctx, const char *key,
                   struct api_resp *resp, struct db_experiment *row)
{
    if (api_reply_impossible_key(key, resp))
        return false;
    ab_status rc = db_experiment_get(ctx->db, key, row);
    if (rc == AB_OK)
        return true;
    if (rc == AB_ENOTFOUND)
        api_reply_no_experiment(resp, key);
    else
        api_reply_status(resp, rc, "could not read the experiment");
    return false;
}
