/* server.h -- the HTTP server (libmicrohttpd); the only header users of
 * server.c need. */
#ifndef API_SERVER_H
#define API_SERVER_H

#include "lib/status.h"

struct app;
struct server;

/* Listen on app->cfg.host:port with a pool of app->cfg.threads workers.
 * Stores a new server in *out (stop with server_stop()). AB_EINVAL when the
 * address cannot be used (in use, bad host). */
ab_status server_start(struct app *app, struct server **out);
/* Stop accepting, finish in-flight requests (up to
 * ARBITER_DRAIN_TIMEOUT_MS), free. NULL is a no-op. */
void server_stop(struct server *srv);
/* Stop accepting without closing the listening socket (a successor
 * process took it over); answers from now on close their connections. */
void server_quiesce(struct server *srv);
/* Stop accepting and wait (up to ARBITER_DRAIN_TIMEOUT_MS) until no
 * request is in flight; the server keeps answering open connections
 * (with Connection: close). server_stop() does it too. */
void server_drain(struct server *srv);
/* The listening socket, or -1. */
int server_listen_fd(struct server *srv);

#endif /* API_SERVER_H */
