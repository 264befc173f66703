/* listen.c -- the one LISTEN loop (listen.h). */
#include "service/listen.h"

#include <time.h>

#include "sql/db.h"

static void
tell(const struct listen_loop *l, enum listen_event ev)
{
    if (l->reachable != NULL)
        l->reachable(l->arg, ev);
}

/* A listening connection brought up to date, or NULL. */
static struct db *
connect_listening(const struct listen_loop *l)
{
    struct db *db = NULL;
    ab_status rc = db_open(l->database_url, &db);
    for (size_t i = 0; rc == AB_OK && i < l->n_channels; i++)
        rc = db_listen(db, l->channels[i]);
    if (rc == AB_OK)
        rc = l->connected(l->arg, db);
    if (rc == AB_OK)
        return db;
    db_close(db);
    return NULL;
}

void
listen_run(const struct listen_loop *l)
{
    struct db *db = NULL;
    int backoff_ms = 200;
    while (!atomic_load(l->stopping)) {
        if (db == NULL) {
            db = connect_listening(l);
            if (db == NULL) {
                tell(l, LISTEN_CONNECT_FAILED);
                struct timespec ts = {backoff_ms / 1000,
                                      (backoff_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                if (backoff_ms < 2000)
                    backoff_ms *= 2;
                continue;
            }
            backoff_ms = 200;
            tell(l, LISTEN_CONNECTED);
        }
        bool got = false;
        if (db_wait_notify_payloads(db, LISTEN_WAIT_MS, &got, l->payload,
                                    l->arg) != AB_OK) {
            db_close(db);
            db = NULL;
            tell(l, LISTEN_LOST);
            continue;
        }
        if (l->woke(l->arg, db, got) != AB_OK) {
            db_close(db);
            db = NULL;
            tell(l, LISTEN_WAKE_FAILED);
        }
    }
    db_close(db);
}
