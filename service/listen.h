/* listen.h -- the one LISTEN loop of the workers that follow PostgreSQL
 * notifications (the snapshot's config listener, service/app.c; the model
 * registry's, service/models.c).
 *
 * On its own connection: connect, LISTEN on each channel, let the owner
 * bring its state up to date (connected), then wait LISTEN_WAIT_MS at a
 * time for notifications, handing each payload over as it is read and
 * calling woke() after every wait, with or without one. Any failure
 * (connecting, LISTEN, connected(), the wait, woke()) closes the
 * connection; the next attempt follows a pause that doubles from 200 ms up
 * to 2 s while connecting fails, and is immediate after a connection that
 * worked. Runs on the caller's thread until *stopping is true (checked
 * between waits: at most LISTEN_WAIT_MS, or a connection attempt, late).
 */
#ifndef SERVICE_LISTEN_H
#define SERVICE_LISTEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/status.h"

struct db;

#define LISTEN_WAIT_MS 250

/* What reachable() is told. */
enum listen_event {
    LISTEN_CONNECTED,      /* listening, connected() returned AB_OK */
    LISTEN_CONNECT_FAILED, /* connect, LISTEN or connected() failed */
    LISTEN_LOST,           /* the wait failed: the connection broke */
    LISTEN_WAKE_FAILED     /* woke() did not return AB_OK */
};

struct listen_loop {
    const char *database_url;
    const char *const *channels; /* n_channels names to LISTEN on */
    size_t n_channels;
    const atomic_bool *stopping;
    void *arg; /* passed to every callback */
    /* After LISTEN on a new connection (required). */
    ab_status (*connected)(void *arg, struct db *db);
    /* Each notification's payload as it is read (NULL: not wanted). */
    void (*payload)(void *arg, const char *payload);
    /* After every wait; got: at least one notification came (required). */
    ab_status (*woke)(void *arg, struct db *db, bool got);
    /* Each event above, as it happens (NULL: not wanted). */
    void (*reachable)(void *arg, enum listen_event ev);
};

/* Run the loop until *l->stopping; closes its connection before it
 * returns. l and what it points to must outlive the call. */
void listen_run(const struct listen_loop *l);

#endif /* SERVICE_LISTEN_H */
