/* models.c -- the production versions in memory, and the registry's
 * settings (see models.h). The holder is one immutable JSON object
 * {"model": {...}} behind a mutex: readers take a reference (jansson's
 * reference counts are atomic) and serialize outside the lock; a reload
 * builds a new object and swaps the pointer.
 */
#include "service/models.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "service/app.h"
#include "service/listen.h"
#include "sql/db.h"
#include "sql/db_models.h"

#define MODELS_CHANNEL "arbiter_models"
#define MODELS_BACKSTOP_MS 5000

static struct {
    pthread_mutex_t lock;
    json_t *production; /* owned; never mutated once published */
    bool strict;
    char *database_url;
    pthread_t thread;
    bool started;
    atomic_bool stopping;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool
models_strict(void)
{
    return reg.strict;
}

ab_status
models_reload(struct db *db)
{
    char *text = NULL;
    ab_status rc = db_model_production(db, &text);
    if (rc != AB_OK)
        return rc;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return AB_EINTERNAL;
    }
    pthread_mutex_lock(&reg.lock);
    json_t *old = reg.production;
    reg.production = doc;
    pthread_mutex_unlock(&reg.lock);
    json_decref(old);
    return AB_OK;
}

char *
models_production(const char *model)
{
    pthread_mutex_lock(&reg.lock);
    json_t *doc = json_incref(reg.production);
    pthread_mutex_unlock(&reg.lock);
    json_t *m = json_object_get(doc, model);
    char *text = m ? json_dumps(m, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    return text;
}

void
models_after_decision(struct db *db, const char *key, json_t *doc)
{
    if (models_reload(db) != AB_OK)
        log_msg(LOG_WARN, "model registry reload failed", NULL);
    char *text = NULL;
    if (db_model_last_decision(db, key, &text) != AB_OK)
        return;
    json_t *moves = json_loads(text, 0, NULL);
    free(text);
    if (json_is_object(moves) && json_is_object(doc))
        json_object_update(doc, moves);
    json_decref(moves);
}

/* The registry listener's clock of its backstop (models_woke). */
static int64_t models_last;

static ab_status
models_connected(void *arg, struct db *db)
{
    (void)arg;
    models_last = ab_now_ms();
    return models_reload(db);
}

/* On a notification, and every MODELS_BACKSTOP_MS: reload the production
 * versions and keep the reports of rollouts that have ended. */
static ab_status
models_woke(void *arg, struct db *db, bool got)
{
    (void)arg;
    int64_t now = ab_now_ms();
    if (!got && now - models_last < MODELS_BACKSTOP_MS)
        return AB_OK;
    int written = 0;
    if (models_reload(db) != AB_OK ||
        db_experiment_reports_write(db, &written) != AB_OK)
        return AB_EDB;
    if (written > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", written);
        log_msg(LOG_INFO, "deployment reports kept", "count", n, NULL);
    }
    models_last = now;
    return AB_OK;
}

/* LISTEN on the registry and config channels (service/listen.h); on every
 * notification and every MODELS_BACKSTOP_MS reload the production versions
 * and keep the reports of rollouts that have ended
 * (arbiter.experiment_reports_write: off the decisions' transactions, one
 * instance at a time). Reconnects with a growing pause when the database
 * is away (the last production versions keep being served). */
static void *
listener_main(void *arg)
{
    (void)arg;
    static const char *const channels[] = {MODELS_CHANNEL,
                                           DB_CONFIG_CHANNEL};
    const struct listen_loop loop = {
        .database_url = reg.database_url,
        .channels = channels,
        .n_channels = 2,
        .stopping = &reg.stopping,
        .connected = models_connected,
        .woke = models_woke,
    };
    listen_run(&loop);
    return NULL;
}

void
models_start(struct app *app)
{
    const char *s = getenv("ARBITER_MODEL_REGISTRY_STRICT");
    reg.strict = s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0);
    pthread_mutex_lock(&reg.lock);
    if (reg.production == NULL)
        reg.production = json_object();
    pthread_mutex_unlock(&reg.lock);
    struct db *db = app_db_get(app);
    if (db) {
        models_reload(db);
        app_db_put(app, db);
    }
    reg.database_url = ab_xstrdup(app->cfg.database_url);
    atomic_store(&reg.stopping, false);
    if (pthread_create(&reg.thread, NULL, listener_main, NULL) == 0)
        reg.started = true;
    else
        log_msg(LOG_ERROR, "model registry listener did not start", NULL);
    log_msg(LOG_INFO, "model registry", "mode", reg.strict ? "strict" : "warn",
            NULL);
}

void
models_stop(void)
{
    atomic_store(&reg.stopping, true);
    if (reg.started)
        pthread_join(reg.thread, NULL);
    reg.started = false;
    free(reg.database_url);
    reg.database_url = NULL;
    pthread_mutex_lock(&reg.lock);
    json_decref(reg.production);
    reg.production = NULL;
    pthread_mutex_unlock(&reg.lock);
}
