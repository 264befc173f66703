/* fold_units.c -- the leader's in-memory fold (see fold_units.h). */
#include "service/fold_units.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "sql/db_fold.h"

/* One unit's running value: (experiment, metric, unit, arm). */
struct uent {
    uint64_t h;
    int64_t exp;
    char *metric, *unit, *arm; /* one allocation, metric first */
    int64_t n;                 /* 0: no row */
    double s;
    int64_t first_us, last_us;
    /* the current batch's delta (valid when dmark == the batch) */
    int64_t dn;
    double ds;
    int64_t dfirst, dlast;
    uint32_t dmark, amark;
    /* the unit's membership of the arm's population before and after the
     * batch (valid when dmark == the batch; 015_attribution.sql) */
    bool member0, member1;
    bool known; /* n, s, ts read from unit_metrics (or memory) */
    bool dirty; /* changed since the last checkpoint */
};

/* A metric definition of an experiment in the batch. */
struct mdef {
    char *name, *kind, *cov; /* cov NULL: none */
    bool whole;              /* binary or sum: every exposed unit counts */
};

/* Per-(experiment, arm, metric) changes of the batch. */
struct acc {
    int64_t units;
    double v[8]; /* sum, sum_sq, den_sum, den_sum_sq, cross_sum, pre_sum,
                    pre_sum_sq, pre_cross_sum */
    bool touched;
};

struct arm_acc {
    const char *arm; /* a unit entry's string (entries outlive the batch) */
    struct acc *acc; /* one per definition */
};

struct exp_defs {
    int64_t exp;
    struct mdef *defs;
    size_t n_defs;
    struct arm_acc *arms;
    size_t n_arms;
};

/* (main metric, its covariate, definition) of one unit the batch moves,
 * and the unit's membership of the arm before and after the batch */
struct affected {
    struct uent *main, *cov;
    struct exp_defs *ex;
    size_t def;
    bool member0, member1;
};

struct vec {
    void *p;
    size_t n, cap;
};

struct fold_units {
    struct uent **slots;
    size_t cap, count;
    struct vec dirty; /* struct uent * */
    int64_t checkpoint_ms, last_ckpt_ms;
    bool synced;       /* memory matches fold_state's two watermarks */
    int64_t w, unit_w; /* those watermarks, as this leader left them */
    int64_t epoch;     /* fold_state.epoch its memory was built under */
    uint32_t batch;
    /* per batch */
    struct vec touched, missing, affected; /* uent *, uent *, affected */
    struct exp_defs *ex;
    size_t n_ex;
};

/* ---- small helpers --------------------------------------------------------- */

static void *
vec_push(struct vec *v, size_t size)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->p = ab_xrealloc(v->p, v->cap * size);
    }
    return (char *)v->p + size * v->n++;
}

static void
vec_push_ptr(struct vec *v, void *p)
{
    *(void **)vec_push(v, sizeof(void *)) = p;
}

static double
flush(double v)
{
    return fabs(v) < 1e-154 ? 0.0 : v;
}

static uint64_t
key_hash(int64_t exp, const char *metric, const char *unit, const char *arm)
{
    uint64_t h = XXH3_64bits_withSeed(metric, strlen(metric), (uint64_t)exp);
    h = XXH3_64bits_withSeed(unit, strlen(unit), h);
    return XXH3_64bits_withSeed(arm, strlen(arm), h);
}

/* ---- the map of units ------------------------------------------------------ */

static void
map_clear(struct fold_units *u)
{
    for (size_t i = 0; i < u->cap; i++) {
        if (u->slots[i]) {
            free(u->slots[i]->metric);
            free(u->slots[i]);
        }
    }
    free(u->slots);
    u->slots = NULL;
    u->cap = u->count = 0;
    u->dirty.n = 0;
}

static void
map_place(struct uent **slots, size_t cap, struct uent *e)
{
    size_t i = e->h & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

static void
map_grow(struct fold_units *u)
{
    size_t cap = u->cap ? u->cap * 2 : 1 << 16;
    struct uent **slots = ab_xcalloc(cap, sizeof(*slots));
    for (size_t i = 0; i < u->cap; i++)
        if (u->slots[i])
            map_place(slots, cap, u->slots[i]);
    free(u->slots);
    u->slots = slots;
    u->cap = cap;
}

/* The entry of a key; created (not known, n == 0) when absent, and then
 * listed in u->missing for the batch to load. */
static struct uent *
map_get(struct fold_units *u, int64_t exp, const char *metric,
        const char *unit, const char *arm)
{
    uint64_t h = key_hash(exp, metric, unit, arm);
    if (u->cap) {
        for (size_t i = h & (u->cap - 1); u->slots[i];
             i = (i + 1) & (u->cap - 1)) {
            struct uent *e = u->slots[i];
            if (e->h == h && e->exp == exp && strcmp(e->unit, unit) == 0 &&
                strcmp(e->metric, metric) == 0 && strcmp(e->arm, arm) == 0)
                return e;
        }
    }
    if ((u->count + 1) * 4 > u->cap * 3)
        map_grow(u);
    size_t lm = strlen(metric) + 1, lu = strlen(unit) + 1,
           la = strlen(arm) + 1;
    struct uent *e = ab_xcalloc(1, sizeof(*e));
    e->h = h;
    e->exp = exp;
    e->metric = ab_xmalloc(lm + lu + la);
    memcpy(e->metric, metric, lm);
    e->unit = e->metric + lm;
    memcpy(e->unit, unit, lu);
    e->arm = e->unit + lu;
    memcpy(e->arm, arm, la);
    map_place(u->slots, u->cap, e);
    u->count++;
    vec_push_ptr(&u->missing, e);
    return e;
}

/* ---- lifecycle ------------------------------------------------------------- */

struct fold_units *
fold_units_new(int64_t checkpoint_ms)
{
    struct fold_units *u = ab_xcalloc(1, sizeof(*u));
    u->checkpoint_ms = checkpoint_ms;
    return u;
}

static void
batch_clear(struct fold_units *u)
{
    for (size_t i = 0; i < u->n_ex; i++) {
        struct exp_defs *x = &u->ex[i];
        for (size_t j = 0; j < x->n_defs; j++) {
            free(x->defs[j].name);
            free(x->defs[j].kind);
            free(x->defs[j].cov);
        }
        for (size_t j = 0; j < x->n_arms; j++)
            free(x->arms[j].acc);
        free(x->defs);
        free(x->arms);
    }
    free(u->ex);
    u->ex = NULL;
    u->n_ex = 0;
    u->touched.n = u->missing.n = u->affected.n = 0;
}

/* Forget everything: the next batch starts over from the checkpoint. */
static void
drop_memory(struct fold_units *u)
{
    batch_clear(u);
    map_clear(u);
    u->synced = false;
}

void
fold_units_free(struct fold_units *u)
{
    if (u == NULL)
        return;
    drop_memory(u);
    free(u->dirty.p);
    free(u->touched.p);
    free(u->missing.p);
    free(u->affected.p);
    free(u);
}

size_t
fold_units_held(const struct fold_units *u)
{
    return u->count;
}

size_t
fold_units_dirty(const struct fold_units *u)
{
    return u->dirty.n;
}

/* ---- one batch ------------------------------------------------------------- */

static void
on_delta(void *arg, const struct db_unit_value *v)
{
    struct fold_units *u = arg;
    struct uent *e = map_get(u, v->experiment_id, v->metric, v->unit, v->arm);
    e->dn = v->n;
    e->ds = v->sum;
    e->dfirst = v->first_us;
    e->dlast = v->last_us;
    e->dmark = u->batch;
    e->member0 = v->member0;
    e->member1 = v->member1;
    vec_push_ptr(&u->touched, e);
}

static struct exp_defs *
exp_find(struct fold_units *u, int64_t exp)
{
    for (size_t i = 0; i < u->n_ex; i++)
        if (u->ex[i].exp == exp)
            return &u->ex[i];
    return NULL;
}

static void
on_def(void *arg, const struct db_metric_def *d)
{
    struct fold_units *u = arg;
    struct exp_defs *x = exp_find(u, d->experiment_id);
    if (x == NULL) {
        u->ex = ab_xrealloc(u->ex, (u->n_ex + 1) * sizeof(*u->ex));
        x = &u->ex[u->n_ex++];
        memset(x, 0, sizeof(*x));
        x->exp = d->experiment_id;
    }
    x->defs = ab_xrealloc(x->defs, (x->n_defs + 1) * sizeof(*x->defs));
    struct mdef *m = &x->defs[x->n_defs++];
    m->name = ab_xstrdup(d->name);
    m->kind = ab_xstrdup(d->kind);
    m->cov = d->covariate ? ab_xstrdup(d->covariate) : NULL;
    m->whole = strcmp(d->kind, "binary") == 0 || strcmp(d->kind, "sum") == 0;
}

static void
on_loaded(void *arg, const struct db_unit_value *v)
{
    struct fold_units *u = arg;
    struct uent *e = map_get(u, v->experiment_id, v->metric, v->unit, v->arm);
    e->n = v->n;
    e->s = v->sum;
    e->first_us = v->first_us;
    e->last_us = v->last_us;
}

/* The accumulators of (x, arm); created with the arm. */
static struct acc *
arm_accs(struct exp_defs *x, const char *arm)
{
    for (size_t i = 0; i < x->n_arms; i++)
        if (strcmp(x->arms[i].arm, arm) == 0)
            return x->arms[i].acc;
    x->arms = ab_xrealloc(x->arms, (x->n_arms + 1) * sizeof(*x->arms));
    struct arm_acc *a = &x->arms[x->n_arms++];
    a->arm = arm;
    a->acc = ab_xcalloc(x->n_defs ? x->n_defs : 1, sizeof(*a->acc));
    return a->acc;
}

/* Definition j of x for (unit, arm), once per batch: its main value and
 * its covariate's, with the unit's membership before and after. */
static void
add_affected(struct fold_units *u, struct exp_defs *x, size_t j,
             const char *unit, const char *arm, bool member0, bool member1)
{
    struct mdef *m = &x->defs[j];
    struct uent *main = map_get(u, x->exp, m->name, unit, arm);
    arm_accs(x, main->arm);
    if (main->amark == u->batch)
        return;
    main->amark = u->batch;
    struct affected *a = vec_push(&u->affected, sizeof(*a));
    a->main = main;
    a->cov = m->cov ? map_get(u, x->exp, m->cov, unit, arm) : NULL;
    a->ex = x;
    a->def = j;
    a->member0 = member0;
    a->member1 = member1;
}

/* Every unit value the batch reads: the touched ones, and for each
 * definition that reads a touched metric (as itself or as its
 * covariate), the unit's value of the metric and of the covariate; for a
 * unit that joins the arm's population in this batch, every binary and
 * sum definition too (its earlier values enter their sums now). */
static void
collect_affected(struct fold_units *u)
{
    size_t n = u->touched.n;
    for (size_t i = 0; i < n; i++) {
        struct uent *t = ((struct uent **)u->touched.p)[i];
        struct exp_defs *x = exp_find(u, t->exp);
        if (x == NULL)
            continue; /* no definitions: the unit values only */
        arm_accs(x, t->arm);
        for (size_t j = 0; j < x->n_defs; j++) {
            struct mdef *m = &x->defs[j];
            bool joins = m->whole && t->member1 && !t->member0;
            if (!joins && strcmp(m->name, t->metric) != 0 &&
                (m->cov == NULL || strcmp(m->cov, t->metric) != 0))
                continue;
            add_affected(u, x, j, t->unit, t->arm, t->member0, t->member1);
        }
    }
}

/* A unit that joins an arm through an exposure recorded since the last
 * batch: every binary and sum definition takes its values now. */
static void
on_join(void *arg, const struct db_unit_value *v)
{
    struct fold_units *u = arg;
    struct exp_defs *x = exp_find(u, v->experiment_id);
    if (x == NULL)
        return;
    for (size_t j = 0; j < x->n_defs; j++)
        if (x->defs[j].whole)
            add_affected(u, x, j, v->unit, v->arm, false, true);
}

/* The units read for the first time since the last reset: their values
 * in unit_metrics (absent: n == 0). */
static ab_status
load_missing(struct fold_units *u, struct db *db)
{
    size_t n = u->missing.n;
    if (n == 0)
        return AB_OK;
    struct db_unit_value *keys = ab_xcalloc(n, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        struct uent *e = ((struct uent **)u->missing.p)[i];
        keys[i] = (struct db_unit_value){.experiment_id = e->exp,
                                         .metric = e->metric,
                                         .unit = e->unit,
                                         .arm = e->arm};
    }
    /* on_loaded finds them again: nothing new is listed */
    struct vec keep = u->missing;
    u->missing = (struct vec){0};
    ab_status rc = db_fold_load(db, keys, n, on_loaded, u);
    free(u->missing.p);
    u->missing = keep;
    free(keys);
    for (size_t i = 0; i < n; i++)
        ((struct uent **)u->missing.p)[i]->known = true;
    u->missing.n = 0;
    return rc;
}

/* arbiter.contribution() of one value (kind, n, s, x), as a row of
 * arbiter.fold_sql's totals: units, y, d, x when counted, else zeros.
 * Binary and sum: counted while the unit is a member of the arm's
 * population; mean and ratio: when it has events of the metric. */
static void
contribution(const struct mdef *m, int64_t n, double s, double x,
             bool member, int64_t *units, double out[3])
{
    bool counted = m->whole ? member : n > 0;
    double y = 0.0;
    if (strcmp(m->kind, "binary") == 0)
        y = s > 0 ? 1.0 : 0.0;
    else if (strcmp(m->kind, "mean") == 0)
        y = n > 0 ? s / (double)n : 0.0;
    else /* sum, ratio */
        y = s;
    bool ratio = strcmp(m->kind, "ratio") == 0;
    *units = counted ? (n > 0) : 0;
    out[0] = counted ? flush(y) : 0.0;
    out[1] = counted && ratio ? (double)n : 0.0;
    out[2] = counted ? flush(x) : 0.0;
}

static void
accumulate(struct fold_units *u, const struct affected *a)
{
    const struct mdef *m = &a->ex->defs[a->def];
    const struct uent *e = a->main, *c = a->cov;
    int64_t dn = e->dmark == u->batch ? e->dn : 0;
    double ds = e->dmark == u->batch ? e->ds : 0.0;
    double x0 = c ? c->s : 0.0;
    double x1 = x0 + (c && c->dmark == u->batch ? c->ds : 0.0);
    int64_t u0, u1;
    double v0[3], v1[3]; /* y, d, x */
    contribution(m, e->n, e->s, x0, a->member0, &u0, v0);
    contribution(m, e->n + dn, e->s + ds, x1, a->member1, &u1, v1);
    struct acc *acc = &arm_accs(a->ex, e->arm)[a->def];
    acc->touched = true;
    acc->units += u1 - u0;
    acc->v[0] += v1[0] - v0[0];
    acc->v[1] += v1[0] * v1[0] - v0[0] * v0[0];
    acc->v[2] += v1[1] - v0[1];
    acc->v[3] += v1[1] * v1[1] - v0[1] * v0[1];
    acc->v[4] += v1[0] * v1[1] - v0[0] * v0[1];
    acc->v[5] += v1[2] - v0[2];
    acc->v[6] += v1[2] * v1[2] - v0[2] * v0[2];
    acc->v[7] += v1[2] * v1[0] - v0[2] * v0[0];
}

/* The rows for arbiter.fold_finish: every accumulator touched, and a
 * (zero) row for every binary or sum metric of an arm with data. */
static struct db_arm_delta *
arm_rows(struct fold_units *u, size_t *n_out)
{
    struct vec rows = {0};
    for (size_t i = 0; i < u->n_ex; i++) {
        struct exp_defs *x = &u->ex[i];
        for (size_t a = 0; a < x->n_arms; a++) {
            for (size_t j = 0; j < x->n_defs; j++) {
                const struct acc *c = &x->arms[a].acc[j];
                if (!c->touched && !x->defs[j].whole)
                    continue;
                struct db_arm_delta *r = vec_push(&rows, sizeof(*r));
                *r = (struct db_arm_delta){
                    .experiment_id = x->exp, .arm = x->arms[a].arm,
                    .metric = x->defs[j].name, .units = c->units,
                    .sum = c->v[0], .sum_sq = c->v[1], .den_sum = c->v[2],
                    .den_sum_sq = c->v[3], .cross_sum = c->v[4],
                    .pre_sum = c->v[5], .pre_sum_sq = c->v[6],
                    .pre_cross_sum = c->v[7]};
            }
        }
    }
    *n_out = rows.n;
    return rows.p;
}

/* The batch's deltas into the running values (after the totals read the
 * old ones); dirty until the next checkpoint. */
static void
apply_deltas(struct fold_units *u)
{
    for (size_t i = 0; i < u->touched.n; i++) {
        struct uent *e = ((struct uent **)u->touched.p)[i];
        if (e->n == 0) {
            e->first_us = e->dfirst;
            e->last_us = e->dlast;
        } else {
            e->first_us = e->dfirst < e->first_us ? e->dfirst : e->first_us;
            e->last_us = e->dlast > e->last_us ? e->dlast : e->last_us;
        }
        e->n += e->dn;
        e->s += e->ds;
        if (!e->dirty) {
            e->dirty = true;
            vec_push_ptr(&u->dirty, e);
        }
    }
}

/* Bring memory in line with fold_state: drop it, refold the raw events
 * after the checkpoint into unit_metrics, start from there. */
static ab_status
resync(struct fold_units *u, struct db *db)
{
    drop_memory(u);
    int64_t w, epoch;
    if (db_fold_units_sync(db, &w, &epoch) != AB_OK)
        return AB_EDB;
    u->w = u->unit_w = w;
    u->epoch = epoch;
    u->synced = true;
    u->last_ckpt_ms = ab_now_ms();
    log_msg(LOG_INFO, "fold: unit values restarted from the checkpoint",
            NULL);
    return AB_OK;
}

/* BEGIN and the range, with memory that matches it (one resync). */
static ab_status
begin_matching(struct fold_units *u, struct db *db, int max_events,
               struct db_fold_range *r)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!u->synced && resync(u, db) != AB_OK)
            return AB_EDB;
        if (db_fold_begin(db, max_events, r) != AB_OK)
            return AB_EDB;
        if (r->w0 == u->w && r->unit_w == u->unit_w && r->epoch == u->epoch)
            return AB_OK;
        db_fold_abort(db);
        log_msg(LOG_INFO, "fold: another process folded; memory dropped",
                NULL);
        u->synced = false;
    }
    return AB_EDB;
}

static ab_status
batch_body(struct fold_units *u, struct db *db, const struct db_fold_range *r)
{
    if (db_fold_delta(db, on_delta, u) != AB_OK ||
        db_fold_defs(db, on_def, u) != AB_OK)
        return AB_EDB;
    collect_affected(u);
    if (db_fold_joins(db, on_join, u) != AB_OK ||
        load_missing(u, db) != AB_OK)
        return AB_EDB;
    struct affected *aff = u->affected.p;
    for (size_t i = 0; i < u->affected.n; i++)
        accumulate(u, &aff[i]);
    /* the quantile sketches of the same range are folded by
     * db_fold_finish(), in this transaction */
    size_t n_rows;
    struct db_arm_delta *rows = arm_rows(u, &n_rows);
    apply_deltas(u); /* undone by drop_memory() if the commit fails */
    ab_status rc = db_fold_finish(db, r->w1, r->events, rows, n_rows);
    free(rows);
    return rc;
}

ab_status
fold_units_batch(struct fold_units *u, struct db *db, int max_events,
                 struct fold_units_result *out)
{
    struct db_fold_range r;
    memset(out, 0, sizeof(*out));
    if (begin_matching(u, db, max_events, &r) != AB_OK) {
        drop_memory(u);
        return AB_EDB;
    }
    if (r.w1 <= r.w0) {
        db_fold_abort(db); /* nothing new has ended */
        out->watermark = r.w0;
        return AB_OK;
    }
    u->batch++;
    ab_status rc = batch_body(u, db, &r);
    batch_clear(u);
    if (rc != AB_OK) {
        db_fold_abort(db);
        drop_memory(u);
        return AB_EDB;
    }
    u->w = r.w1;
    out->folded = r.events;
    out->watermark = r.w1;
    out->more = r.more;
    return AB_OK;
}

/* ---- checkpoint ------------------------------------------------------------ */

static ab_status
checkpoint_write(struct fold_units *u, struct db *db)
{
    struct uent **d = u->dirty.p;
    struct db_unit_value *rows =
        ab_xcalloc(FOLD_UNITS_CHUNK, sizeof(*rows));
    ab_status rc = AB_OK;
    for (size_t at = 0; at < u->dirty.n && rc == AB_OK;
         at += FOLD_UNITS_CHUNK) {
        size_t k = u->dirty.n - at < FOLD_UNITS_CHUNK ? u->dirty.n - at
                                                      : FOLD_UNITS_CHUNK;
        for (size_t i = 0; i < k; i++) {
            const struct uent *e = d[at + i];
            rows[i] = (struct db_unit_value){
                .experiment_id = e->exp, .metric = e->metric,
                .unit = e->unit, .arm = e->arm, .n = e->n, .sum = e->s,
                .first_us = e->first_us, .last_us = e->last_us};
        }
        rc = db_fold_checkpoint_put(db, rows, k);
    }
    free(rows);
    return rc;
}

ab_status
fold_units_checkpoint(struct fold_units *u, struct db *db, int64_t now_ms,
                      bool force)
{
    if (!u->synced || u->unit_w >= u->w)
        return AB_OK;
    bool due = force || now_ms - u->last_ckpt_ms >= u->checkpoint_ms ||
               u->dirty.n >= FOLD_UNITS_MAX_DIRTY;
    if (!due)
        return AB_OK;
    int64_t w, uw, epoch;
    if (db_fold_checkpoint_begin(db, &w, &uw, &epoch) != AB_OK) {
        drop_memory(u);
        return AB_EDB;
    }
    if (w != u->w || uw != u->unit_w || epoch != u->epoch ||
        checkpoint_write(u, db) != AB_OK ||
        db_fold_checkpoint_commit(db) != AB_OK) {
        db_fold_abort(db);
        drop_memory(u);
        return AB_EDB;
    }
    for (size_t i = 0; i < u->dirty.n; i++)
        ((struct uent **)u->dirty.p)[i]->dirty = false;
    u->dirty.n = 0;
    u->unit_w = u->w;
    u->last_ckpt_ms = now_ms;
    if (u->count > FOLD_UNITS_MAX_HELD)
        map_clear(u); /* all clean: unit_metrics holds them */
    return AB_OK;
}
