/* ingest_load.c -- load generator of `make bench-ingest`: several clients,
 * each on one keep-alive HTTP/1.1 connection, POST batches of outcome
 * events to /v1/events as fast as the server acknowledges them, for a
 * fixed time; it counts only acknowledged (202) events and prints
 *
 *   requests=R events=E accepted=A duplicates=D seconds=T eps=A/T
 *   p50_ms=.. p99_ms=.. cpu_s=(this process's user + system CPU)
 *
 * committed events per second = sum of "accepted" over 202 answers
 *                               / (last answer - first request)
 * (each answer comes only after its events are committed, so this is an
 * end-to-end rate of durable events, closed-loop as in Gray and Reuter,
 * "Transaction Processing", section 9.4: group commit under a fixed
 * number of outstanding requests).
 *
 *   ingest_load --port P --token T [--host 127.0.0.1] [--clients 4]
 *       [--batch 1000] [--seconds 10] [--experiments 4] [--units 100000]
 *       [--ids 1] [--run TAG] [--max-requests N] [--rate EPS]
 *   --rate: paced, EPS events/s over all clients (each client sends its
 *       k-th request at a fixed schedule; a late answer delays only that
 *       client's next request); latency is measured from the send
 *   ingest_load --sink [--clients 4] ...   client ceiling: the same
 *       requests against an in-process sink that reads each request and
 *       answers 202 at once (what this program can send at most)
 *   ingest_load --assign --port P --token T [--clients 4] [--units U]
 *       [--rate RPS] [--only FILE] [--only FILE]
 *       the assignment phase, before any outcome: POST /v1/assign
 *       {"unit":"u-<n>"} for every unit n < U (client c takes the n with
 *       n % clients == c), as production traffic assigns a unit before
 *       it has outcomes (--only FILE: just the unit numbers it lists);
 *       prints assigned=N seconds=T rps=N/T cpu_s=..
 *
 * Event i of client c in run TAG (deterministic, see event_format()):
 *   {"id":"TAG-c-i","experiment":"bench-(i*7+c)%X","unit":"u-<hash%U>",
 *    "metric":"click"|"revenue","value":v,"ts":now_ms}
 * Any non-202 answer, short read or reset stops the run with exit 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_MAX 8192
#define LAT_MAX 1000000

struct opts {
    const char *host;
    int port;
    const char *token;
    int clients;
    int batch;
    double seconds;
    int experiments;
    int units;
    int ids;
    const char *run;
    long max_requests;
    double rate; /* events/s over all clients; 0: as fast as answered */
    bool sink;
    bool assign; /* --assign: the assignment phase */
    const int *only; /* --only FILE: the units to assign (else 0..U-1) */
    int n_only;
};

struct client {
    const struct opts *o;
    int index;
    pthread_t thread;
    long requests;
    long events;
    long accepted;
    long duplicates;
    double *lat_ms;
    size_t n_lat;
    int failed;
    char why[256];
};

static _Atomic int stop_all;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's user + system CPU seconds so far. */
static double
cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64 (Steele, Lea and Flood, OOPSLA 2014): a fixed, seedable
 * mixing of the event index into unit and value choices. */
static uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Append event i of client c to buf; returns bytes written (0: no room). */
static size_t
event_format(const struct opts *o, int c, uint64_t i, int64_t ts, char *buf,
             size_t room)
{
    uint64_t h = mix64(((uint64_t)c << 40) ^ i);
    int exp = (int)(h % (uint64_t)o->experiments);
    unsigned unit = (unsigned)((h >> 16) % (uint64_t)o->units);
    bool click = (h >> 48) % 4 != 0;
    char idpart[96] = "";
    if (o->ids)
        snprintf(idpart, sizeof(idpart), "\"id\":\"%s-%d-%llu\",", o->run, c,
                 (unsigned long long)i);
    int n;
    if (click)
        n = snprintf(buf, room,
                     "{%s\"experiment\":\"bench-%d\",\"unit\":\"u-%07u\","
                     "\"metric\":\"click\",\"value\":1,\"ts\":%lld}",
                     idpart, exp, unit, (long long)ts);
    else
        n = snprintf(buf, room,
                     "{%s\"experiment\":\"bench-%d\",\"unit\":\"u-%07u\","
                     "\"metric\":\"revenue\",\"value\":%u.%02u,\"ts\":%lld}",
                     idpart, exp, unit, (unsigned)((h >> 8) % 200),
                     (unsigned)(h % 100), (long long)ts);
    if (n < 0 || (size_t)n >= room)
        return 0;
    return (size_t)n;
}

/* One request: headers and a JSON array of o->batch events. */
static size_t
request_format(const struct opts *o, int c, uint64_t first, char *buf,
               size_t room)
{
    static const size_t hdr_room = 512;
    if (room < hdr_room + 2)
        return 0;
    char *body = buf + hdr_room;
    size_t len = 0, body_room = room - hdr_room;
    int64_t ts = wall_ms();
    body[len++] = '[';
    for (int k = 0; k < o->batch; k++) {
        if (k > 0)
            body[len++] = ',';
        size_t w = event_format(o, c, first + (uint64_t)k, ts, body + len,
                                body_room - len - 2);
        if (w == 0)
            return 0;
        len += w;
    }
    body[len++] = ']';
    char hdr[512];
    int h = snprintf(hdr, sizeof(hdr),
                     "POST /v1/events HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     o->host, o->port, o->token ? o->token : "", len);
    if (h < 0 || (size_t)h >= sizeof(hdr))
        return 0;
    memmove(buf + (size_t)h, body, len);
    memcpy(buf, hdr, (size_t)h);
    return (size_t)h + len;
}

static int
connect_to(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Value of the Content-Length header in [buf, end), or -1. */
static long
content_length(const char *buf, const char *end)
{
    static const char name[] = "\r\ncontent-length:";
    size_t n = sizeof(name) - 1;
    for (const char *p = buf; p + n <= end; p++)
        if (strncasecmp(p, name, n) == 0)
            return strtol(p + n, NULL, 10);
    return -1;
}

static bool
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read one HTTP response (Content-Length framed) into buf; returns the
 * status, the body in *body / *body_len; -1 on a broken connection. */
static int
response_read(int fd, char *buf, size_t room, char **body, size_t *body_len)
{
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        if (have + 1 >= room)
            return -1;
        ssize_t r = read(fd, buf + have, room - have - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    long clen = content_length(buf, end);
    if (clen < 0)
        return -1;
    size_t len = (size_t)clen;
    size_t hdr = (size_t)(end + 4 - buf);
    if (hdr + len + 1 > room)
        return -1;
    while (have < hdr + len) {
        ssize_t r = read(fd, buf + have, hdr + len - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    buf[hdr + len] = '\0';
    *body = buf + hdr;
    *body_len = len;
    return status;
}

static long
json_count(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void *
client_main(void *arg)
{
    struct client *cl = arg;
    const struct opts *o = cl->o;
    size_t room = (size_t)o->batch * 256 + 1024;
    char *req = malloc(room);
    char *resp = malloc(1 << 20);
    cl->lat_ms = malloc(LAT_MAX * sizeof(*cl->lat_ms));
    int fd = connect_to(o->host, o->port);
    if (req == NULL || resp == NULL || cl->lat_ms == NULL || fd < 0) {
        snprintf(cl->why, sizeof(cl->why), "cannot connect to %s:%d",
                 o->host, o->port);
        cl->failed = 1;
        goto done;
    }
    double start = now_s(), end = start + o->seconds;
    /* --rate: client c sends request k at start + (k + c/clients) * gap */
    double gap = o->rate > 0 ? (double)o->batch * o->clients / o->rate : 0;
    uint64_t next = 0;
    while (!atomic_load(&stop_all) && now_s() < end &&
           (o->max_requests == 0 || cl->requests < o->max_requests)) {
        size_t n = request_format(o, cl->index, next, req, room);
        if (n == 0) {
            snprintf(cl->why, sizeof(cl->why), "request does not fit");
            cl->failed = 1;
            break;
        }
        if (gap > 0) {
            double at = start + ((double)cl->requests +
                                 (double)cl->index / o->clients) * gap;
            double wait = at - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait,
                                      (long)((wait - (double)(time_t)wait) *
                                             1e9)};
                nanosleep(&ts, NULL);
            }
            if (now_s() >= end)
                break;
        }
        double t0 = now_s();
        char *body;
        size_t blen;
        int status = -1;
        if (write_all(fd, req, n))
            status = response_read(fd, resp, 1 << 20, &body, &blen);
        if (status != 202) {
            snprintf(cl->why, sizeof(cl->why), "status %d: %.200s", status,
                     status > 0 ? body : "(connection broken)");
            cl->failed = 1;
            break;
        }
        long acc = json_count(body, "\"accepted\":");
        long dup = json_count(body, "\"duplicates\":");
        if (acc < 0 || dup < 0 || acc + dup != o->batch) {
            snprintf(cl->why, sizeof(cl->why), "unexpected answer: %.200s",
                     body);
            cl->failed = 1;
            break;
        }
        if (cl->n_lat < LAT_MAX)
            cl->lat_ms[cl->n_lat++] = (now_s() - t0) * 1000;
        cl->requests++;
        cl->events += o->batch;
        cl->accepted += acc;
        cl->duplicates += dup;
        next += (uint64_t)o->batch;
    }
done:
    if (cl->failed)
        atomic_store(&stop_all, 1);
    if (fd >= 0)
        close(fd);
    free(req);
    free(resp);
    return NULL;
}

/* ---- sink: answers every request with a fixed 202 ---------------------- */

struct sink {
    int listen_fd;
    int batch;
};

static void *
sink_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t room = 8 << 20;
    char *buf = malloc(room);
    char answer[256];
    int alen = 0;
    for (;;) {
        size_t have = 0;
        char *end = NULL;
        while (end == NULL && have + 1 < room) {
            ssize_t r = read(fd, buf + have, room - have - 1);
            if (r <= 0)
                goto out;
            have += (size_t)r;
            buf[have] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        if (end == NULL)
            goto out;
        long clen = content_length(buf, end);
        size_t len = clen > 0 ? (size_t)clen : 0;
        size_t need = (size_t)(end + 4 - buf) + len;
        while (have < need) {
            ssize_t r = read(fd, buf + have,
                             need - have < room - have ? need - have
                                                       : room - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        /* count the events, as a server must at least look at them */
        long n = 0;
        for (const char *p = end + 4; p < buf + need; p++)
            n += *p == '{';
        char body[96];
        int bl = snprintf(body, sizeof(body),
                          "{\"accepted\":%ld,\"duplicates\":0,"
                          "\"spooled\":false,\"rejected\":[]}",
                          n);
        alen = snprintf(answer, sizeof(answer),
                        "HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n"
                        "Content-Type: application/json\r\n\r\n%s",
                        bl, body);
        if (!write_all(fd, answer, (size_t)alen))
            goto out;
    }
out:
    close(fd);
    free(buf);
    return NULL;
}

static void *
sink_main(void *arg)
{
    struct sink *s = arg;
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_t t;
        if (pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

static int
sink_start(struct sink *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t sl = sizeof(sa);
    if (s->listen_fd < 0 ||
        bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(s->listen_fd, 64) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, sink_main, s) != 0)
        return -1;
    pthread_detach(t);
    return ntohs(sa.sin_port);
}

/* ---- the assignment phase (--assign) -------------------------------------- */

static void *
assign_main(void *arg)
{
    struct client *cl = arg;
    const struct opts *o = cl->o;
    char req[1024];
    char *resp = malloc(1 << 16);
    int fd = connect_to(o->host, o->port);
    if (resp == NULL || fd < 0) {
        snprintf(cl->why, sizeof(cl->why), "cannot connect to %s:%d",
                 o->host, o->port);
        cl->failed = 1;
        goto done;
    }
    double start = now_s();
    /* --rate: assignments/s over all clients, client c's k-th at
     * start + (k + c/clients) * gap */
    double gap = o->rate > 0 ? (double)o->clients / o->rate : 0;
    int n = o->only ? o->n_only : o->units;
    for (int k = cl->index; k < n && !atomic_load(&stop_all);
         k += o->clients) {
        int u = o->only ? o->only[k] : k;
        if (gap > 0) {
            double wait = start + ((double)cl->requests +
                                   (double)cl->index / o->clients) * gap -
                          now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait,
                                      (long)((wait - (double)(time_t)wait) *
                                             1e9)};
                nanosleep(&ts, NULL);
            }
        }
        char body[64];
        int bl = snprintf(body, sizeof(body), "{\"unit\":\"u-%07u\"}",
                          (unsigned)u);
        int len = snprintf(req, sizeof(req),
                         "POST /v1/assign HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Authorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         o->host, o->port, o->token, bl, body);
        char *rbody;
        size_t blen;
        int status = -1;
        if (len > 0 && (size_t)len < sizeof(req) &&
            write_all(fd, req, (size_t)len))
            status = response_read(fd, resp, 1 << 16, &rbody, &blen);
        if (status != 200) {
            snprintf(cl->why, sizeof(cl->why), "assign: status %d: %.200s",
                     status, status > 0 ? rbody : "(connection broken)");
            cl->failed = 1;
            break;
        }
        cl->requests++;
    }
done:
    if (cl->failed)
        atomic_store(&stop_all, 1);
    if (fd >= 0)
        close(fd);
    free(resp);
    return NULL;
}

/* --only FILE: unit numbers, one per line. */
static bool
read_only(struct opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    int cap = 1024, n = 0, v;
    int *p = malloc((size_t)cap * sizeof(*p));
    while (p != NULL && fscanf(f, "%d", &v) == 1) {
        if (n == cap) {
            cap *= 2;
            int *q = realloc(p, (size_t)cap * sizeof(*p));
            if (q == NULL) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
        }
        p[n++] = v;
    }
    fclose(f);
    o->only = p;
    o->n_only = n;
    return p != NULL;
}

static int
assign_run(const struct opts *o)
{
    struct client *cls = calloc((size_t)o->clients, sizeof(*cls));
    double t0 = now_s();
    for (int c = 0; c < o->clients; c++) {
        cls[c].o = o;
        cls[c].index = c;
        if (pthread_create(&cls[c].thread, NULL, assign_main, &cls[c]) != 0)
            return 1;
    }
    long assigned = 0;
    int failed = 0;
    for (int c = 0; c < o->clients; c++) {
        pthread_join(cls[c].thread, NULL);
        assigned += cls[c].requests;
        if (cls[c].failed) {
            fprintf(stderr, "ingest_load: client %d: %s\n", c, cls[c].why);
            failed = 1;
        }
    }
    double secs = now_s() - t0;
    printf("assigned=%ld seconds=%.3f rps=%.0f cpu_s=%.3f\n", assigned, secs,
           (double)assigned / secs, cpu_now());
    free(cls);
    return failed;
}

/* ---- main ---------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int
usage(void)
{
    fputs("usage: ingest_load (--port P --token T | --sink) [--assign]"
          " [--host H]\n"
          "  [--clients N] [--batch N] [--seconds S] [--experiments N]\n"
          "  [--units N] [--ids 0|1] [--run TAG] [--max-requests N] [--rate EPS]\n",
          stderr);
    return 2;
}

int
main(int argc, char **argv)
{
    struct opts o = {"127.0.0.1", 0, NULL, 4, 1000, 10, 4, 100000, 1, "r",
                     0, 0, false, false, NULL, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--sink") == 0) {
            o.sink = true;
            continue;
        }
        if (strcmp(a, "--assign") == 0) {
            o.assign = true;
            continue;
        }
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0)
            o.port = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--token") == 0)
            o.token = v;
        else if (strcmp(a, "--clients") == 0)
            o.clients = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--batch") == 0)
            o.batch = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = strtod(v, NULL);
        else if (strcmp(a, "--experiments") == 0)
            o.experiments = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--units") == 0)
            o.units = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--ids") == 0)
            o.ids = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--run") == 0)
            o.run = v;
        else if (strcmp(a, "--max-requests") == 0)
            o.max_requests = strtol(v, NULL, 10);
        else if (strcmp(a, "--rate") == 0)
            o.rate = strtod(v, NULL);
        else if (strcmp(a, "--only") == 0) {
            if (!read_only(&o, v))
                return usage();
        }
        else
            return usage();
    }
    if (o.clients < 1 || o.clients > 256 || o.batch < 1 ||
        o.batch > 10000 || o.seconds <= 0 || o.experiments < 1 ||
        o.units < 1 || strlen(o.run) > 32)
        return usage();
    if (o.assign)
        return o.port <= 0 || o.token == NULL ? usage() : assign_run(&o);
    struct sink sk = {-1, o.batch};
    if (o.sink) {
        o.port = sink_start(&sk);
        if (o.port <= 0) {
            perror("ingest_load: sink");
            return 1;
        }
    } else if (o.port <= 0 || o.token == NULL) {
        return usage();
    }

    struct client *cls = calloc((size_t)o.clients, sizeof(*cls));
    double t0 = now_s();
    for (int c = 0; c < o.clients; c++) {
        cls[c].o = &o;
        cls[c].index = c;
        if (pthread_create(&cls[c].thread, NULL, client_main, &cls[c]) != 0)
            return 1;
    }
    long requests = 0, events = 0, accepted = 0, duplicates = 0;
    size_t n_lat = 0;
    int failed = 0;
    for (int c = 0; c < o.clients; c++) {
        pthread_join(cls[c].thread, NULL);
        requests += cls[c].requests;
        events += cls[c].events;
        accepted += cls[c].accepted;
        duplicates += cls[c].duplicates;
        n_lat += cls[c].n_lat;
        if (cls[c].failed) {
            fprintf(stderr, "ingest_load: client %d: %s\n", c, cls[c].why);
            failed = 1;
        }
    }
    double secs = now_s() - t0;
    double *lat = malloc((n_lat ? n_lat : 1) * sizeof(*lat));
    size_t k = 0;
    for (int c = 0; c < o.clients; c++) {
        memcpy(lat + k, cls[c].lat_ms, cls[c].n_lat * sizeof(*lat));
        k += cls[c].n_lat;
        free(cls[c].lat_ms);
    }
    qsort(lat, n_lat, sizeof(*lat), cmp_double);
    double p50 = n_lat ? lat[n_lat / 2] : 0;
    double p99 = n_lat ? lat[(size_t)((double)(n_lat - 1) * 0.99)] : 0;
    double cpu = cpu_now();
    printf("requests=%ld events=%ld accepted=%ld duplicates=%ld "
           "seconds=%.3f eps=%.0f p50_ms=%.2f p99_ms=%.2f cpu_s=%.3f\n",
           requests, events, accepted, duplicates, secs,
           (double)accepted / secs, p50, p99, cpu);
    free(lat);
    free(cls);
    return failed;
}
