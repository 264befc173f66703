/* ingest.c -- group commit, spool and replay for outcome events (see
 * ingest.h). One writer thread owns the database connection and the spool;
 * handlers only touch the queue under its mutex.
 */
#include "service/ingest.h"
#include "lib/clock.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "service/app.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "service/spool.h"
#include "sql/db.h"
#include "sql/db_events.h"

#define GROUP_MAX 50000         /* events in one transaction */
#define GROUP_BATCHES 4096      /* requests in one transaction */
#define RETRY_DB_MS 1000        /* after a failure, spool for this long */
#define RETRY_DB_MAX_MS 8000    /* ... doubling after each missed deadline */
#define REPLAY_MIN 50           /* events: the smallest replay group */
#define MAINTAIN_MS (3600 * 1000) /* partitions and retention, hourly */

struct batch {
    char id[64];
    int64_t enqueued_ms; /* its submitter has waited since */
    struct ingest_event *ev;
    size_t n;
    struct batch *next;
    /* asynchronous submitters: called by the writer, then the batch is
     * freed by it; synchronous ones wait on ing->done */
    ingest_done_fn *cb;
    void *cb_arg;
    /* result, written by the writer under the lock */
    bool done;
    ab_status rc;
    struct ingest_result res;
};

struct ingest {
    struct app *app;
    struct ingest_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t work; /* writer waits */
    pthread_cond_t done; /* handlers wait */
    struct batch *head, *tail;
    size_t queued; /* events in the queue */
    bool stop;
    bool drained; /* the writer thread was joined */
    int stop_timeout_ms;
    pthread_t thread;

    struct spool *spool; /* writer thread only */
    struct db *db;
    int64_t db_failed_at;
    int64_t retry_ms;   /* spool for this long after db_failed_at */
    size_t replay_max;  /* events per replay group: halved after a missed
                         * deadline, doubled back after each success */
    int64_t stop_deadline; /* writer only: give up replaying after it */
    bool replaying;        /* writer only: the write is a spool replay */
    int64_t maintained_at;
    uint64_t seq;
    uint64_t nonce[2]; /* 128 random bits drawn once per process */

    _Atomic int64_t m_queue;
    _Atomic int64_t m_spool_bytes;
    _Atomic int64_t m_replayed_bytes;
    _Atomic int64_t m_replayed_batches;
    _Atomic int64_t m_accepted;
    _Atomic int64_t m_duplicates;
    _Atomic int64_t m_spooled;
    _Atomic int64_t m_commits;
    _Atomic int64_t m_db_errors;
    _Atomic int64_t m_rejected_busy;
    _Atomic int64_t m_quarantined;
    _Atomic int64_t m_durability_failures;
    _Atomic int64_t m_refused;
    _Atomic int64_t m_commit_timeouts;
};

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

static void
batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        ingest_event_clear(&b->ev[i]);
    free(b->ev);
    free(b);
}

/* ---- spool records: {"id":..., "events":[[exp, id, unit, arm, hint,
 *      metric, value, ts_ms, attributes], ...]} ---------------------------- */

static json_t *
nullable(const char *s)
{
    return s ? json_string(s) : json_null();
}

static char *
batch_encode(const struct batch *b, size_t *len)
{
    json_t *evs = json_array();
    for (size_t i = 0; i < b->n; i++) {
        const struct ingest_event *e = &b->ev[i];
        json_array_append_new(
            evs, json_pack("[I,o,s,o,s,s,f,I,o]", (json_int_t)e->experiment_id,
                           nullable(e->event_id), e->unit, nullable(e->arm),
                           e->arm_hint, e->metric, e->value,
                           (json_int_t)e->ts_ms, nullable(e->attributes)));
    }
    json_t *doc = json_pack("{s:s,s:o}", "id", b->id, "events", evs);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    *len = strlen(text);
    return text;
}

static char *
dup_or_null(json_t *v)
{
    return json_is_string(v) ? ab_xstrdup(json_string_value(v)) : NULL;
}

static struct batch *
batch_decode(const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, 0, NULL);
    json_t *evs = json_object_get(doc, "events");
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!json_is_array(evs) || id == NULL) {
        json_decref(doc);
        return NULL;
    }
    struct batch *b = ab_xcalloc(1, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->n = json_array_size(evs);
    b->ev = ab_xcalloc(b->n ? b->n : 1, sizeof(*b->ev));
    for (size_t i = 0; i < b->n; i++) {
        json_t *r = json_array_get(evs, i);
        struct ingest_event *e = &b->ev[i];
        e->experiment_id = (int64_t)json_integer_value(json_array_get(r, 0));
        e->event_id = dup_or_null(json_array_get(r, 1));
        e->unit = dup_or_null(json_array_get(r, 2));
        e->arm = dup_or_null(json_array_get(r, 3));
        e->arm_hint = dup_or_null(json_array_get(r, 4));
        e->metric = dup_or_null(json_array_get(r, 5));
        e->value = json_number_value(json_array_get(r, 6));
        e->ts_ms = (int64_t)json_integer_value(json_array_get(r, 7));
        e->attributes = dup_or_null(json_array_get(r, 8));
        if (e->unit == NULL || e->arm_hint == NULL || e->metric == NULL) {
            json_decref(doc);
            batch_free(b);
            return NULL;
        }
    }
    json_decref(doc);
    return b;
}

/* ---- database ------------------------------------------------------------ */

static void retry_later(struct ingest *ing, bool timed_out);

static struct db *
writer_db(struct ingest *ing)
{
    if (ing->db == NULL) {
        /* a client-side deadline on the connect and on every write
         * (issue 14): a stopped server (SIGSTOP) accepts connections and
         * never answers, and statement_timeout cannot fire there */
        int64_t t0 = ab_now_ms();
        if (db_open_bounded(ing->app->cfg.database_url,
                            ing->cfg.commit_timeout_ms, 60000,
                            &ing->db) != AB_OK) {
            ing->db_failed_at = ab_now_ms();
            /* refused at once (server down) or given up at the deadline */
            retry_later(ing, ing->db_failed_at - t0 >=
                                 ing->cfg.commit_timeout_ms);
            return NULL;
        }
    }
    return ing->db;
}

/* How long to spool before the next attempt: RETRY_DB_MS, doubling up to
 * RETRY_DB_MAX_MS while attempts keep missing their deadline (each such
 * attempt holds the writer, and the requests queued behind it, for up to
 * commit_timeout_ms: during a long stall they become rare). */
static void
retry_later(struct ingest *ing, bool timed_out)
{
    if (!timed_out) {
        ing->retry_ms = RETRY_DB_MS;
        return;
    }
    atomic_fetch_add(&ing->m_commit_timeouts, 1);
    ing->retry_ms = ing->retry_ms < RETRY_DB_MS ? RETRY_DB_MS
                                                : 2 * ing->retry_ms;
    if (ing->retry_ms > RETRY_DB_MAX_MS)
        ing->retry_ms = RETRY_DB_MAX_MS;
}

static void
db_failed(struct ingest *ing)
{
    bool timed_out = db_take_timed_out(ing->db);
    db_close(ing->db);
    ing->db = NULL;
    ing->db_failed_at = ab_now_ms();
    retry_later(ing, timed_out);
    atomic_fetch_add(&ing->m_db_errors, 1);
}

/* The database was tried and failed recently: spool instead. */
static bool
db_resting(const struct ingest *ing)
{
    return ab_now_ms() - ing->db_failed_at < ing->retry_ms;
}

/* A replay (of batches acknowledged long ago) may outlast the commit
 * deadline while no request waits behind it for longer than that bound
 * (a slow database under load then still drains the spool), and while a
 * shutdown's replay time lasts. */
static bool
replay_patient(void *arg)
{
    struct ingest *ing = arg;
    int64_t now = ab_now_ms();
    if (ing->stop_deadline && now > ing->stop_deadline)
        return false;
    pthread_mutex_lock(&ing->lock);
    bool ok = ing->head == NULL ||
              now - ing->head->enqueued_ms < ing->cfg.commit_timeout_ms;
    pthread_mutex_unlock(&ing->lock);
    return ok;
}

/* Write batches in one transaction; fills each batch's result. */
static ab_status
write_batches(struct ingest *ing, struct batch **bs, size_t nb)
{
    struct db *db = writer_db(ing);
    if (db == NULL) {
        ing->db_failed_at = ab_now_ms();
        return AB_EDB;
    }
    size_t n = 0;
    for (size_t i = 0; i < nb; i++)
        n += bs[i]->n;
    struct db_event *rows = ab_xmalloc((n ? n : 1) * sizeof(*rows));
    const char **ids = ab_xmalloc(nb * sizeof(*ids));
    struct db_batch_result *res = ab_xcalloc(nb, sizeof(*res));
    size_t k = 0;
    for (size_t i = 0; i < nb; i++) {
        ids[i] = bs[i]->id;
        for (size_t j = 0; j < bs[i]->n; j++, k++) {
            const struct ingest_event *e = &bs[i]->ev[j];
            rows[k] = (struct db_event){e->experiment_id, e->event_id,
                                        e->unit,          e->arm,
                                        e->arm_hint,      e->metric,
                                        e->value,         e->ts_ms,
                                        e->attributes,    (int)i};
        }
    }
    db_set_patience(db, ing->replaying ? replay_patient : NULL, ing);
    ab_status rc = db_events_write(db, ids, nb, rows, n, res);
    if (rc == AB_OK) {
        ing->retry_ms = RETRY_DB_MS;
        atomic_fetch_add(&ing->m_commits, 1);
        for (size_t i = 0; i < nb; i++) {
            bs[i]->res.accepted = res[i].accepted;
            bs[i]->res.duplicates = res[i].duplicates;
            atomic_fetch_add(&ing->m_accepted, res[i].accepted);
            atomic_fetch_add(&ing->m_duplicates, res[i].duplicates);
        }
    } else if (rc == AB_EINVAL) {
        /* refused for these events; the connection is fine */
        atomic_fetch_add(&ing->m_db_errors, 1);
    } else {
        db_failed(ing);
    }
    free(rows);
    free(ids);
    free(res);
    return rc;
}

static ab_status
spool_batches(struct ingest *ing, struct batch **bs, size_t nb)
{
    if (ing->spool == NULL)
        return AB_EINTERNAL;
    char **texts = ab_xmalloc(nb * sizeof(*texts));
    size_t *lens = ab_xmalloc(nb * sizeof(*lens));
    for (size_t i = 0; i < nb; i++)
        texts[i] = batch_encode(bs[i], &lens[i]);
    ab_status rc = spool_append(ing->spool, texts, lens, nb);
    for (size_t i = 0; i < nb; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    if (rc == AB_OK) {
        for (size_t i = 0; i < nb; i++) {
            bs[i]->res.accepted = (int)bs[i]->n;
            bs[i]->res.spooled = true;
        }
        atomic_fetch_add(&ing->m_spooled, (int64_t)nb);
    } else if (rc == AB_EBUSY) {
        atomic_fetch_add(&ing->m_rejected_busy, (int64_t)nb);
    } else {
        log_msg(LOG_ERROR, "spool write failed", NULL);
    }
    atomic_store(&ing->m_spool_bytes, (int64_t)spool_pending(ing->spool));
    return rc;
}

/* Replay spooled batches, oldest first, grouped like the live path (up to
 * GROUP_MAX events or GROUP_BATCHES records per transaction: one record per
 * transaction replayed slower than a sustained load spooled, so the spool
 * never drained); stops at the first database failure, and the records of
 * the failed group are replayed again later (exactly once: batch ids).
 *
 * A group the database refuses for good (AB_EINVAL) is replayed again one
 * record at a time to find the record at fault; that record is moved to
 * events.poison -- but only if an empty acknowledging write works, so a
 * broken schema never sends everything there. Without this, one such
 * record would stop the spool for ever, and with it every later event. */
static void
replay(struct ingest *ing)
{
    if (ing->spool == NULL || spool_pending(ing->spool) == 0)
        return;
    if (db_resting(ing))
        return;
    struct batch **bs = ab_xmalloc(GROUP_BATCHES * sizeof(*bs));
    char *last = NULL; /* the raw text of a single-record group */
    size_t last_len = 0, max_records = GROUP_BATCHES;
    for (;;) {
        size_t nb = 0, n = 0, peeked = 0;
        ab_status rc = AB_OK;
        free(last);
        last = NULL;
        while (nb < max_records && n < ing->replay_max) {
            char *text;
            size_t len;
            rc = spool_peek(ing->spool, &text, &len);
            if (rc != AB_OK)
                break;
            peeked++;
            struct batch *b = batch_decode(text, len);
            if (b == NULL) {
                free(text);
                log_msg(LOG_ERROR, "unreadable spool record skipped", NULL);
                continue;
            }
            if (max_records == 1) {
                last = text;
                last_len = len;
            } else {
                free(text);
            }
            bs[nb++] = b;
            n += b->n;
        }
        if (rc != AB_OK && rc != AB_ENOTFOUND)
            log_msg(LOG_ERROR, "spool record cannot be read", NULL);
        if (peeked == 0)
            break;
        ing->replaying = true;
        rc = nb > 0 ? write_batches(ing, bs, nb) : AB_OK;
        ing->replaying = false;
        /* a group that missed the deadline may be too big to commit in
         * time on a slow database (then it would never get through):
         * smaller groups until one commits */
        if (rc == AB_EDB && ing->retry_ms > RETRY_DB_MS)
            ing->replay_max = ing->replay_max / 2 > REPLAY_MIN
                                  ? ing->replay_max / 2
                                  : REPLAY_MIN;
        else if (rc == AB_OK && ing->replay_max < GROUP_MAX)
            ing->replay_max = 2 * ing->replay_max < GROUP_MAX
                                  ? 2 * ing->replay_max
                                  : GROUP_MAX;
        char bid[sizeof(bs[0]->id)] = "";
        if (nb == 1)
            snprintf(bid, sizeof(bid), "%s", bs[0]->id);
        for (size_t i = 0; i < nb; i++)
            batch_free(bs[i]);
        if (rc == AB_EINVAL && max_records > 1) {
            spool_rewind(ing->spool); /* find the record at fault */
            max_records = 1;
            continue;
        }
        if (rc == AB_EINVAL && last != NULL && ing->db != NULL &&
            db_events_probe(ing->db) == AB_OK &&
            spool_quarantine(ing->spool, last, last_len) == AB_OK) {
            log_msg(LOG_ERROR, "spooled batch refused by the database; "
                               "moved to events.poison",
                    "batch", bid, NULL);
            atomic_fetch_add(&ing->m_quarantined, 1);
            /* every spooled record was acknowledged (2xx): this is a
             * broken promise, never a normal outcome */
            atomic_fetch_add(&ing->m_durability_failures, 1);
            rc = AB_OK;
            nb = 0;
        } else if (rc == AB_EINVAL) {
            db_failed(ing); /* not shown to be the record's fault: retry */
        }
        if (rc != AB_OK) {
            spool_rewind(ing->spool);
            break;
        }
        spool_advance(ing->spool);
        atomic_fetch_add(&ing->m_replayed_batches, (int64_t)nb);
        atomic_store(&ing->m_replayed_bytes,
                     (int64_t)spool_replayed_total(ing->spool));
        atomic_store(&ing->m_spool_bytes,
                     (int64_t)spool_pending(ing->spool));
        if (spool_pending(ing->spool) == 0) {
            log_msg(LOG_INFO, "spool replayed", NULL);
            break;
        }
        /* a shutdown replays for a bounded time (the rest at next start) */
        if (ing->stop_deadline && ab_now_ms() > ing->stop_deadline)
            break;
        /* let queued batches in between long replays */
        pthread_mutex_lock(&ing->lock);
        bool waiting = ing->head != NULL;
        pthread_mutex_unlock(&ing->lock);
        if (waiting)
            break;
    }
    free(last);
    free(bs);
}

/* Partitions and retention: a leader job (service/leader.h), not the writer's
 * work -- DDL and the retention DELETE wait for table locks, and the
 * writer must never wait behind them (a commit would). One process does it
 * for all: the leader, hourly and at its first tick. */
void
ingest_maintain_job(void *arg, struct db *db, int64_t now)
{
    struct ingest *ing = arg;
    if (ing->maintained_at != 0 && now - ing->maintained_at < MAINTAIN_MS)
        return;
    int64_t day = 86400000;
    int64_t keep = (int64_t)ing->cfg.retention_days * day;
    if (db_events_partitions(db, now - keep - 31 * day, now + 62 * day) !=
            AB_OK ||
        db_events_retention(db, now - keep) != AB_OK)
        return; /* the next tick tries again */
    ing->maintained_at = now;
}

/* ---- the writer thread ---------------------------------------------------- */

/* Answer the submitters of bs, each with its own rc. */
static void
finish(struct ingest *ing, struct batch **bs, size_t nb)
{
    pthread_mutex_lock(&ing->lock);
    for (size_t i = 0; i < nb; i++)
        bs[i]->done = true;
    pthread_cond_broadcast(&ing->done);
    pthread_mutex_unlock(&ing->lock);
    /* asynchronous batches belong to the writer from here on */
    for (size_t i = 0; i < nb; i++) {
        struct batch *b = bs[i];
        if (b->cb == NULL)
            continue;
        b->cb(b->cb_arg, b->rc, b->rc == AB_OK ? &b->res : NULL);
        batch_free(b);
    }
}

/* The database refused a group for good (AB_EINVAL): one event can do
 * that, and it must not take the other requests of the group down with it
 * (issue 14). Commit the requests one at a time: a request refused on its
 * own is answered with AB_EINVAL before any acknowledgement (no 2xx, so no
 * broken promise), the others are committed -- or spooled, in order, if
 * the database fails meanwhile. */
static void
write_each(struct ingest *ing, struct batch **bs, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        bool spooling = ing->spool && spool_pending(ing->spool) > 0;
        bool db_recently_failed = db_resting(ing);
        ab_status rc = AB_EDB;
        if (!spooling && !db_recently_failed)
            rc = write_batches(ing, &bs[i], 1);
        if (rc == AB_EINVAL) {
            atomic_fetch_add(&ing->m_refused, 1);
            log_msg(LOG_WARN, "request refused by the database; not "
                              "acknowledged",
                    "batch", bs[i]->id, NULL);
        } else if (rc != AB_OK) {
            rc = spool_batches(ing, &bs[i], 1);
        }
        bs[i]->rc = rc;
    }
    finish(ing, bs, nb);
}

static void *
writer_main(void *arg)
{
    struct ingest *ing = arg;
    struct batch **group = ab_xmalloc(GROUP_BATCHES * sizeof(*group));
    for (;;) {
        pthread_mutex_lock(&ing->lock);
        if (ing->head == NULL && !ing->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ing->work, &ing->lock, &ts);
        }
        size_t nb = 0, n = 0;
        while (ing->head && nb < GROUP_BATCHES &&
               (n == 0 || n + ing->head->n <= GROUP_MAX)) {
            struct batch *b = ing->head;
            ing->head = b->next;
            n += b->n;
            group[nb++] = b;
        }
        if (ing->head == NULL)
            ing->tail = NULL;
        ing->queued -= n;
        atomic_store(&ing->m_queue, (int64_t)ing->queued);
        bool stop = ing->stop;
        if (stop && ing->stop_deadline == 0)
            ing->stop_deadline = ab_now_ms() + ing->stop_timeout_ms;
        pthread_mutex_unlock(&ing->lock);

        if (nb > 0) {
            bool spooling = ing->spool && spool_pending(ing->spool) > 0;
            bool db_recently_failed = db_resting(ing);
            ab_status rc = AB_EDB;
            if (!spooling && !db_recently_failed)
                rc = write_batches(ing, group, nb);
            if (rc == AB_EINVAL) {
                write_each(ing, group, nb);
            } else {
                if (rc != AB_OK)
                    rc = spool_batches(ing, group, nb);
                for (size_t i = 0; i < nb; i++)
                    group[i]->rc = rc;
                finish(ing, group, nb);
            }
        }
        replay(ing);
        if (stop) {
            pthread_mutex_lock(&ing->lock);
            bool empty = ing->head == NULL;
            pthread_mutex_unlock(&ing->lock);
            bool replayed = ing->spool == NULL || spool_pending(ing->spool) == 0;
            if (empty && (replayed || ab_now_ms() > ing->stop_deadline))
                break;
            if (empty) {
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    free(group);
    return NULL;
}

/* ---- public --------------------------------------------------------------- */

/* Queue b (the lock is held); AB_EBUSY when stopping or full. */
static ab_status
enqueue(struct ingest *ing, struct batch *b)
{
    if (ing->stop || ing->queued + b->n > ing->cfg.queue_max) {
        atomic_fetch_add(&ing->m_rejected_busy, 1);
        return AB_EBUSY;
    }
    b->enqueued_ms = ab_now_ms();
    /* batch id: 128 random bits of this process and a sequence number.
     * It must be unique across every process that ever writes to the
     * database: a batch whose id was committed before is skipped whole
     * (replay, retried commit). A hash of a heap address and the clock is
     * not enough: two processes can hold the same address in the same
     * millisecond (found by tests/integration/test_ingest_aggregates.py). */
    snprintf(b->id, sizeof(b->id), "%016llx%016llx-%llu",
             (unsigned long long)ing->nonce[0],
             (unsigned long long)ing->nonce[1],
             (unsigned long long)++ing->seq);
    if (ing->tail)
        ing->tail->next = b;
    else
        ing->head = b;
    ing->tail = b;
    ing->queued += b->n;
    atomic_store(&ing->m_queue, (int64_t)ing->queued);
    pthread_cond_signal(&ing->work);
    return AB_OK;
}

ab_status
ingest_submit_async(struct ingest *ing, struct ingest_event *evs, size_t n,
                    ingest_done_fn *cb, void *arg)
{
    struct batch *b = ab_xcalloc(1, sizeof(*b));
    b->ev = evs;
    b->n = n;
    b->cb = cb;
    b->cb_arg = arg;
    pthread_mutex_lock(&ing->lock);
    ab_status rc = enqueue(ing, b);
    pthread_mutex_unlock(&ing->lock);
    if (rc != AB_OK)
        batch_free(b);
    return rc;
}

ab_status
ingest_submit(struct ingest *ing, struct ingest_event *evs, size_t n,
              struct ingest_result *out)
{
    struct batch *b = ab_xcalloc(1, sizeof(*b));
    b->ev = evs;
    b->n = n;
    pthread_mutex_lock(&ing->lock);
    if (enqueue(ing, b) != AB_OK) {
        pthread_mutex_unlock(&ing->lock);
        batch_free(b);
        return AB_EBUSY;
    }
    while (!b->done)
        pthread_cond_wait(&ing->done, &ing->lock);
    pthread_mutex_unlock(&ing->lock);
    ab_status rc = b->rc;
    if (rc == AB_OK)
        *out = b->res;
    batch_free(b);
    return rc;
}

ab_status
ingest_new(struct app *app, const struct ingest_config *cfg,
           struct ingest **out)
{
    struct ingest *ing = ab_xcalloc(1, sizeof(*ing));
    ing->app = app;
    ing->cfg = *cfg;
    if (ing->cfg.commit_timeout_ms <= 0)
        ing->cfg.commit_timeout_ms = INGEST_COMMIT_TIMEOUT_MS;
    ing->retry_ms = RETRY_DB_MS;
    ing->replay_max = GROUP_MAX;
    if (getrandom(ing->nonce, sizeof(ing->nonce), 0) !=
        (ssize_t)sizeof(ing->nonce)) {
        free(ing);
        return AB_EINTERNAL;
    }
    ab_status rc = spool_open(cfg->spool_dir, cfg->spool_max, &ing->spool);
    if (rc != AB_OK) {
        free(ing);
        return rc;
    }
    pthread_mutex_init(&ing->lock, NULL);
    pthread_cond_init(&ing->work, NULL);
    pthread_cond_init(&ing->done, NULL);
    atomic_store(&ing->m_spool_bytes, (int64_t)spool_pending(ing->spool));
    metrics_register("arbiter_ingest_queue_events",
                     "Events waiting for the group-commit writer.",
                     METRICS_GAUGE, &ing->m_queue);
    metrics_register("arbiter_spool_bytes",
                     "Bytes in the local spool not yet replayed.",
                     METRICS_GAUGE, &ing->m_spool_bytes);
    metrics_register("arbiter_spool_replayed_bytes_total",
                     "Spool bytes replayed into PostgreSQL.", METRICS_COUNTER,
                     &ing->m_replayed_bytes);
    metrics_register("arbiter_spool_replayed_batches_total",
                     "Spooled batches replayed into PostgreSQL.",
                     METRICS_COUNTER, &ing->m_replayed_batches);
    metrics_register("arbiter_spooled_batches_total",
                     "Batches made durable in the spool.", METRICS_COUNTER,
                     &ing->m_spooled);
    metrics_register("arbiter_events_accepted_total",
                     "Events committed in PostgreSQL.", METRICS_COUNTER,
                     &ing->m_accepted);
    metrics_register("arbiter_events_duplicate_total",
                     "Events dropped as duplicates of an earlier event id.",
                     METRICS_COUNTER, &ing->m_duplicates);
    metrics_register("arbiter_ingest_commits_total",
                     "Group-commit transactions.", METRICS_COUNTER,
                     &ing->m_commits);
    metrics_register("arbiter_ingest_db_errors_total",
                     "Failed event writes (the batches were spooled).",
                     METRICS_COUNTER, &ing->m_db_errors);
    metrics_register("arbiter_spool_quarantined_batches_total",
                     "Spooled batches the database refused for good, moved "
                     "to events.poison in the spool dir.",
                     METRICS_COUNTER, &ing->m_quarantined);
    metrics_register("arbiter_ingest_commit_timeouts_total",
                     "Event writes (or connects) that missed the writer's "
                     "client-side deadline; their batches were spooled.",
                     METRICS_COUNTER, &ing->m_commit_timeouts);
    metrics_register("arbiter_ingest_durability_failures_total",
                     "Acknowledged (2xx) batches the database later refused "
                     "(quarantined from the spool): must stay 0.",
                     METRICS_COUNTER, &ing->m_durability_failures);
    metrics_register("arbiter_ingest_refused_batches_total",
                     "Requests the database refused before any "
                     "acknowledgement (committed one at a time, answered "
                     "with an error, nothing stored).",
                     METRICS_COUNTER, &ing->m_refused);
    metrics_register("arbiter_ingest_rejected_busy_total",
                     "Batches refused with 503 because the queue or spool "
                     "was full.",
                     METRICS_COUNTER, &ing->m_rejected_busy);
    if (pthread_create(&ing->thread, NULL, writer_main, ing) != 0)
        abort();
    if (spool_pending(ing->spool) > 0) {
        log_json(LOG_INFO, "replaying spool",
                 json_pack("{s:I}", "bytes",
                           (json_int_t)spool_pending(ing->spool)));
    }
    *out = ing;
    return AB_OK;
}

void
ingest_drain(struct ingest *ing, int timeout_ms)
{
    if (ing == NULL)
        return;
    pthread_mutex_lock(&ing->lock);
    bool joined = ing->drained;
    ing->stop = true;
    ing->stop_timeout_ms = timeout_ms;
    pthread_cond_signal(&ing->work);
    pthread_mutex_unlock(&ing->lock);
    if (joined)
        return;
    pthread_join(ing->thread, NULL);
    ing->drained = true;
    if (ing->spool && spool_pending(ing->spool) > 0) {
        char b[32];
        snprintf(b, sizeof(b), "%llu",
                 (unsigned long long)spool_pending(ing->spool));
        log_msg(LOG_WARN, "spool not fully replayed at shutdown; it is "
                          "replayed at the next start",
                "bytes", b, NULL);
    }
}

void
ingest_free(struct ingest *ing)
{
    if (ing == NULL)
        return;
    ingest_drain(ing, 0);
    spool_close(ing->spool);
    db_close(ing->db);
    pthread_mutex_destroy(&ing->lock);
    pthread_cond_destroy(&ing->work);
    pthread_cond_destroy(&ing->done);
    free(ing);
}

void
ingest_stop(struct ingest *ing, int timeout_ms)
{
    ingest_drain(ing, timeout_ms);
    ingest_free(ing);
}
