/* spool.c -- append-only, checksummed, fsync'd event spool (see spool.h). */
#include "service/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define HDR 16

struct spool {
    int fd;
    char *dir;
    uint64_t size;     /* file size (end of the last whole record) */
    uint64_t offset;   /* replay position */
    uint64_t max;
    uint64_t peeked;   /* bytes peeked since the last advance/rewind */
    uint64_t replayed; /* bytes replayed since start */
};

static void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static bool
read_full(int fd, void *buf, size_t n, uint64_t at)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(at + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

static bool
write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        done += (size_t)w;
    }
    return true;
}

/* Length of the valid record at 'at', or 0 if none/torn. */
static uint64_t
record_at(struct spool *s, uint64_t at, uint64_t file_size, char **payload)
{
    unsigned char h[HDR];
    if (at + HDR > file_size || !read_full(s->fd, h, HDR, at) ||
        memcmp(h, "ARBS", 4) != 0)
        return 0;
    uint32_t len = get_u32(h + 4), sum = get_u32(h + 8);
    if (at + HDR + len > file_size)
        return 0;
    char *buf = ab_xmalloc((size_t)len + 1);
    if (!read_full(s->fd, buf, len, at + HDR) ||
        XXH32(buf, len, 0) != sum) {
        free(buf);
        return 0;
    }
    buf[len] = '\0';
    if (payload)
        *payload = buf;
    else
        free(buf);
    return HDR + (uint64_t)len;
}

static void
save_offset(struct spool *s)
{
    char path[4096], tmp[4200], num[32];
    snprintf(path, sizeof(path), "%s/events.offset", s->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int n = snprintf(num, sizeof(num), "%llu\n", (unsigned long long)s->offset);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    bool ok = write_full(fd, num, (size_t)n);
    close(fd);
    if (ok)
        rename(tmp, path);
}

static uint64_t
load_offset(const char *dir)
{
    char path[4096], num[32] = "";
    snprintf(path, sizeof(path), "%s/events.offset", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char *line = fgets(num, sizeof(num), f);
    fclose(f);
    return line ? strtoull(num, NULL, 10) : 0;
}

ab_status
spool_open(const char *dir, size_t max_bytes, struct spool **out)
{
    char path[4096];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return AB_EINTERNAL;
    snprintf(path, sizeof(path), "%s/events.spool", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return AB_EINTERNAL;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return AB_ECONFLICT;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return AB_EINTERNAL;
    }
    struct spool *s = ab_xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->dir = ab_xstrdup(dir);
    s->max = max_bytes;
    uint64_t file_size = (uint64_t)st.st_size;
    s->offset = load_offset(dir);
    /* walk whole records from the start; cut a torn tail */
    uint64_t at = 0, len;
    while ((len = record_at(s, at, file_size, NULL)) > 0)
        at += len;
    if (at < file_size) {
        if (ftruncate(fd, (off_t)at) != 0 || fsync(fd) != 0) {
            spool_close(s);
            return AB_EINTERNAL;
        }
    }
    s->size = at;
    if (s->offset > s->size)
        s->offset = 0; /* offset from an older file: replay all (idempotent) */
    *out = s;
    return AB_OK;
}

void
spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->dir);
    free(s);
}

ab_status
spool_append(struct spool *s, char *const *payloads, const size_t *lens,
             size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += HDR + lens[i];
    if (s->size - s->offset + total > s->max)
        return AB_EBUSY;
    for (size_t i = 0; i < n; i++) {
        unsigned char h[HDR];
        memcpy(h, "ARBS", 4);
        put_u32(h + 4, (uint32_t)lens[i]);
        put_u32(h + 8, XXH32(payloads[i], lens[i], 0));
        put_u32(h + 12, 0);
        if (!write_full(s->fd, h, HDR) ||
            !write_full(s->fd, payloads[i], lens[i])) {
            /* cut the partial record so the file stays whole */
            if (ftruncate(s->fd, (off_t)s->size) != 0) {
                /* the torn tail is cut at the next start-up */
            }
            return AB_EINTERNAL;
        }
    }
    if (fdatasync(s->fd) != 0) {
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            /* as above */
        }
        return AB_EINTERNAL;
    }
    s->size += total;
    return AB_OK;
}

uint64_t
spool_pending(const struct spool *s)
{
    return s->size - s->offset;
}

uint64_t
spool_replayed_total(const struct spool *s)
{
    return s->replayed;
}

ab_status
spool_peek(struct spool *s, char **payload, size_t *len)
{
    uint64_t at = s->offset + s->peeked;
    if (at >= s->size)
        return AB_ENOTFOUND;
    char *p = NULL;
    uint64_t n = record_at(s, at, s->size, &p);
    if (n == 0)
        return AB_EINTERNAL;
    s->peeked += n;
    *payload = p;
    *len = (size_t)(n - HDR);
    return AB_OK;
}

ab_status
spool_advance(struct spool *s)
{
    s->offset += s->peeked;
    s->replayed += s->peeked;
    s->peeked = 0;
    if (s->offset >= s->size) {
        if (ftruncate(s->fd, 0) != 0)
            return AB_EINTERNAL;
        fsync(s->fd);
        s->offset = s->size = 0;
    }
    save_offset(s);
    return AB_OK;
}

void
spool_rewind(struct spool *s)
{
    s->peeked = 0;
}

ab_status
spool_quarantine(struct spool *s, const char *payload, size_t len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/events.poison", s->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return AB_EINTERNAL;
    bool ok = write_full(fd, payload, len) && write_full(fd, "\n", 1) &&
              fsync(fd) == 0;
    close(fd);
    return ok ? AB_OK : AB_EINTERNAL;
}
