/* fake_service.c -- the service layer as the HTTP handlers see it, without
 * threads or a database, for the harnesses of handler bodies
 * (fuzz_event.c, fuzz_assign_body.c): one snapshot holding the experiments
 * of FUZZ_EXPERIMENTS, a sticky store that never answers, exposures and
 * ingestion that accept and drop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "service/app.h"
#include "service/ingest.h"
#include "sql/db.h"
#include "tests/fuzz/fuzz.h"

static const char *const experiments[] = {
    "{\"key\":\"exp\",\"arms\":[{\"name\":\"control\",\"weight\":50,"
    "\"control\":true},{\"name\":\"treat\",\"weight\":50}],"
    "\"metrics\":[{\"name\":\"click\",\"kind\":\"binary\"},"
    "{\"name\":\"rev\",\"kind\":\"sum\"},{\"name\":\"lat\",\"kind\":"
    "\"ratio\"}],\"targeting\":[{\"attribute\":\"country\",\"op\":\"in\","
    "\"values\":[\"fr\",\"de\"]}],\"forced\":{\"qa\":\"treat\"}}",
    "{\"key\":\"sticky\",\"sticky\":true,\"arms\":[{\"name\":\"a\","
    "\"weight\":30,\"control\":true},{\"name\":\"b\",\"weight\":70}],"
    "\"metrics\":[{\"name\":\"m\",\"kind\":\"mean\"}]}",
};
#define N_EXP (sizeof(experiments) / sizeof(experiments[0]))

static struct snapshot snap;
static struct core_experiment *exps[N_EXP];
#define ARMS 8
static _Atomic uint64_t counters[N_EXP][ARMS];
static _Atomic uint64_t *counter_rows[N_EXP][ARMS];
static _Atomic uint64_t **counter_table[N_EXP];
struct app fuzz_app;

static int
by_key(const void *a, const void *b)
{
    const struct core_experiment *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

void fuzz_service_init(void);
void
fuzz_service_init(void)
{
    if (snap.exps != NULL)
        return;
    char err[256];
    for (size_t i = 0; i < N_EXP; i++) {
        json_t *d = json_loads(experiments[i], 0, NULL);
        if (d == NULL ||
            api_experiment_parse(d, &exps[i], err, sizeof(err)) != AB_OK) {
            fprintf(stderr, "fake_service: %s\n", err);
            abort();
        }
        json_decref(d);
        exps[i]->id = (int64_t)i + 1;
    }
    qsort(exps, N_EXP, sizeof(exps[0]), by_key);
    for (size_t i = 0; i < N_EXP; i++) {
        for (size_t a = 0; a < ARMS; a++)
            counter_rows[i][a] = &counters[i][a];
        counter_table[i] = counter_rows[i];
    }
    snap.exps = exps;
    snap.n = N_EXP;
    snap.counters = counter_table;
    atomic_store(&fuzz_app.snap, (void *)&snap);
}

struct snapshot *
app_snapshot_get(struct app *app)
{
    (void)app;
    return &snap; /* never released: the fuzzer's process owns it */
}

void
app_snapshot_release(struct snapshot *s)
{
    (void)s;
}

struct core_experiment *
snapshot_find(const struct snapshot *s, const char *key, size_t *index)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->exps[i]->key, key) == 0) {
            if (index)
                *index = i;
            return s->exps[i];
        }
    return NULL;
}

/* api/lookup.c's database branch (api_experiment_row): the handler bodies
 * fuzzed here read the snapshot only, so it is never reached. */
ab_status
db_experiment_get(struct db *db, const char *key, struct db_experiment *out)
{
    (void)db;
    (void)key;
    (void)out;
    return AB_EDB;
}

char *
app_sticky_lookup(struct app *app, const struct core_experiment *e,
                  const char *unit, bool *store_unavailable)
{
    (void)app;
    (void)e;
    (void)unit;
    *store_unavailable = true;
    return NULL;
}

void
app_sticky_remember(struct app *app, const struct core_experiment *e,
                    const char *unit, const char *arm)
{
    (void)app;
    (void)e;
    (void)unit;
    (void)arm;
}

void
app_expose(struct app *app, const struct exposure *x)
{
    (void)app;
    (void)x;
}

bool
app_db_up(struct app *app)
{
    (void)app;
    return false;
}

ab_status
ingest_submit_async(struct ingest *ing, struct ingest_event *evs, size_t n,
                    ingest_done_fn *cb, void *arg)
{
    (void)ing;
    for (size_t i = 0; i < n; i++)
        ingest_event_clear(&evs[i]);
    free(evs);
    struct ingest_result res = {(int)n, 0, false};
    cb(arg, AB_OK, &res);
    return AB_OK;
}

void
ingest_event_clear(struct ingest_event *e)
{
    free(e->event_id);
    free(e->unit);
    free(e->arm);
    free(e->arm_hint);
    free(e->metric);
    free(e->attributes);
    memset(e, 0, sizeof(*e));
}

/* A deferred answer (the events handler) comes back here. */
void
api_complete(void *defer, struct api_resp *r)
{
    struct api_resp *out = defer;
    *out = *r;
    memset(r, 0, sizeof(*r));
}

void
fuzz_check_resp(struct api_resp *r)
{
    if (r->body == NULL)
        abort();
    if (r->status >= 400) {
        json_t *d = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *e = d ? json_object_get(d, "error") : NULL;
        if (!json_is_string(json_object_get(e, "code")) ||
            !json_is_string(json_object_get(e, "message")))
            abort();
        json_decref(d);
    }
    free(r->body);
    for (size_t i = 0; i < r->n_headers; i++)
        free((char *)r->headers[i].value);
    memset(r, 0, sizeof(*r));
}
