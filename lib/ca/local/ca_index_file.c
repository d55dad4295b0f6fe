/*
 * ca_index_file.c - the file backend of the local CA's index: issued and revoked certificates
 * in state_dir/index.txt, the CRL number in state_dir/crlnumber. For a process without a cluster
 * (pkcsctl issue --offline, the engine benchmark); a cluster keeps these records in Redis
 * (ca_index_redis.c), where every machine sees them.
 *
 * Tab-separated lines, appended with one write() under flock so that several processes sharing
 * a state dir never interleave or lose a record:
 *   I <serial> <notAfter YYYYMMDDHHMMSSZ> <request_id> <subject>
 *   R <serial> <revokedAt YYYYMMDDHHMMSSZ> <reason>
 * A revocation is a line of its own, so the file is only ever appended to. A torn last line (a
 * crash mid-write) is skipped when read. Any thread: a mutex orders the threads of one process,
 * flock the processes.
 */
#include "ca_index_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

typedef struct file_index {
    pc_ca_index_t base;
    pthread_mutex_t lock; /* orders this process's threads; flock orders processes */
    char path[PATH_MAX];
    char crlnumber_path[PATH_MAX];
} file_index_t;

/* A locked, open index file: the mutex held, flock taken. */
typedef struct locked_file {
    file_index_t *idx;
    int fd;
} locked_file_t;

static const pc_ca_index_ops_t file_ops;

pc_err_t pc_ca_index_open_file(const char *dir, pc_ca_index_t **out, pc_diag_t *diag)
{
    *out = NULL;
    file_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory opening the CA index");
    int n1 = snprintf(idx->path, sizeof(idx->path), "%s/index.txt", dir);
    int n2 = snprintf(idx->crlnumber_path, sizeof(idx->crlnumber_path), "%s/crlnumber", dir);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(idx->path) ||
        (size_t)n2 >= sizeof(idx->crlnumber_path)) {
        free(idx);
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA state directory path too long: %s", dir);
    }
    idx->base.ops = &file_ops;
    pthread_mutex_init(&idx->lock, NULL);
    *out = &idx->base;
    return PC_OK;
}

static void file_free(pc_ca_index_t *base)
{
    file_index_t *idx = (file_index_t *)base;
    pthread_mutex_destroy(&idx->lock);
    free(idx);
}

static pc_err_t lock_open(file_index_t *idx, const char *path, int flags, int how,
                          locked_file_t *lf, pc_diag_t *diag)
{
    pthread_mutex_lock(&idx->lock);
    lf->idx = idx;
    lf->fd = open(path, flags | O_CLOEXEC, 0644);
    if (lf->fd < 0) {
        int e = errno;
        pthread_mutex_unlock(&idx->lock);
        return pc_fail(diag, PC_ERR_IO,
                       "cannot open the CA index %s: %s; check that the CA state directory "
                       "exists and is writable by this user",
                       path, strerror(e));
    }
    while (flock(lf->fd, how) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(lf->fd);
        pthread_mutex_unlock(&idx->lock);
        return pc_fail(diag, PC_ERR_IO, "cannot lock %s: %s; check the file system supports flock",
                       path, strerror(e));
    }
    return PC_OK;
}

static void unlock_close(locked_file_t *lf)
{
    flock(lf->fd, LOCK_UN);
    close(lf->fd);
    pthread_mutex_unlock(&lf->idx->lock);
}

/* Appends buf to fd and syncs it. When a crash left a torn last line, a newline first ends it so
 * that it cannot swallow this record. */
static pc_err_t write_all(int fd, const char *buf, size_t len, const char *path, pc_diag_t *diag)
{
    char last = '\n';
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n' && write(fd, "\n", 1) != 1)
        return pc_fail(diag, PC_ERR_IO, "cannot write the CA index %s: %s", path, strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return pc_fail(diag, PC_ERR_IO,
                           "cannot write the CA index %s: %s; free disk space or fix permissions",
                           path, strerror(errno));
        buf += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        return pc_fail(diag, PC_ERR_IO, "cannot sync the CA index %s to disk: %s", path,
                       strerror(errno));
    return PC_OK;
}

/* Appends s to the buffer line (capacity cap) at *pos, %-escaping tab, newline, other control
 * characters and '%' so that a field never breaks the line format. Returns false when full. */
static bool append_field(char *line, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-"); *p != '\0'; p++) {
        bool escape = *p < 0x20 || *p == 0x7f || *p == '%';
        size_t need = escape ? 3 : 1;
        if (*pos + need >= cap)
            return false;
        if (escape) {
            line[(*pos)++] = '%';
            line[(*pos)++] = hex[*p >> 4];
            line[(*pos)++] = hex[*p & 0xf];
        } else {
            line[(*pos)++] = (char)*p;
        }
    }
    line[*pos] = '\0';
    return true;
}

static pc_err_t file_add_issued(pc_ca_index_t *base, const char *serial_hex, time_t not_after,
                                const char *request_id, const char *subject, pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    char line[4096], when[16];
    size_t pos = 0;
    locked_file_t lf;

    pc_ca_index_format_time(not_after, when);
    int n = snprintf(line, sizeof(line), "I\t%s\t%s\t", serial_hex, when);
    if (n < 0 || (size_t)n >= sizeof(line))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "serial too long for the CA index");
    pos = (size_t)n;
    /* Over-long request ids or subjects are cut rather than refused: the serial is the key. */
    append_field(line, sizeof(line) - 2, &pos, request_id);
    if (pos + 1 < sizeof(line) - 2)
        line[pos++] = '\t';
    append_field(line, sizeof(line) - 2, &pos, subject);
    line[pos++] = '\n';
    line[pos] = '\0';

    pc_err_t err = lock_open(idx, idx->path, O_RDWR | O_APPEND | O_CREAT, LOCK_EX, &lf, diag);
    if (err != PC_OK)
        return err;
    err = write_all(lf.fd, line, pos, idx->path, diag);
    unlock_close(&lf);
    return err;
}

/* The fields of one index line, pointing into the line (tabs replaced by NULs). */
typedef struct index_line {
    char type;
    const char *serial;
    const char *time;
    const char *rest; /* I: request_id <tab> subject; R: reason */
} index_line_t;

static bool parse_line(char *line, index_line_t *out)
{
    line[strcspn(line, "\n")] = '\0';
    char *t1 = strchr(line, '\t');
    char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
    char *t3 = t2 != NULL ? strchr(t2 + 1, '\t') : NULL;
    if (t3 == NULL || t1 - line != 1 || (line[0] != 'I' && line[0] != 'R'))
        return false;
    *t1 = *t2 = *t3 = '\0';
    out->type = line[0];
    out->serial = t1 + 1;
    out->time = t2 + 1;
    out->rest = t3 + 1;
    return strlen(out->time) == 15 && *out->serial != '\0';
}

/* Calls visit for every well-formed line of the open file fd; visit returns false to stop. */
static pc_err_t scan(int fd, const char *path, bool (*visit)(const index_line_t *, void *),
                     void *arg, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    char *line = NULL;
    size_t cap = 0;
    int copy = dup(fd);
    FILE *fp = copy >= 0 ? fdopen(copy, "r") : NULL;

    if (fp == NULL) {
        if (copy >= 0)
            close(copy);
        return pc_fail(diag, PC_ERR_IO, "cannot read the CA index %s: %s", path, strerror(errno));
    }
    rewind(fp);
    while (getline(&line, &cap, fp) >= 0) {
        index_line_t il;
        if (parse_line(line, &il) && !visit(&il, arg))
            break;
    }
    if (ferror(fp))
        err = pc_fail(diag, PC_ERR_IO, "cannot read the CA index %s: %s", path, strerror(errno));
    free(line);
    fclose(fp);
    return err;
}

typedef struct find_state {
    const char *serial;
    bool issued;
    bool revoked;
    char revoked_at[16]; /* of the first revocation line, as the CRL lists it */
    int reason;
} find_state_t;

static bool visit_find(const index_line_t *il, void *arg)
{
    find_state_t *st = arg;
    if (strcasecmp(il->serial, st->serial) != 0)
        return true;
    if (il->type == 'I') {
        st->issued = true;
    } else if (!st->revoked) {
        st->revoked = true;
        snprintf(st->revoked_at, sizeof(st->revoked_at), "%s", il->time);
        char *end = NULL;
        long reason = strtol(il->rest, &end, 10);
        st->reason = (end != il->rest && reason >= 0 && reason <= 10) ? (int)reason : 0;
    }
    return !(st->issued && st->revoked);
}

static pc_err_t file_revoke(pc_ca_index_t *base, const char *serial_hex, int reason, time_t when,
                            pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    find_state_t st = {.serial = serial_hex, .issued = false, .revoked = false};
    locked_file_t lf;

    pc_err_t err = lock_open(idx, idx->path, O_RDWR | O_APPEND | O_CREAT, LOCK_EX, &lf, diag);
    if (err != PC_OK)
        return err;
    err = scan(lf.fd, idx->path, visit_find, &st, diag);
    if (err != PC_OK)
        goto out_unlock;
    if (!st.issued) {
        err = PC_ERR_NOT_FOUND;
        goto out_unlock;
    }
    if (st.revoked)
        goto out_unlock; /* revoking twice keeps the first time and reason */
    char line[128], at[16];
    pc_ca_index_format_time(when, at);
    int n = snprintf(line, sizeof(line), "R\t%s\t%s\t%d\n", serial_hex, at, reason);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "serial too long for the CA index");
        goto out_unlock;
    }
    err = write_all(lf.fd, line, (size_t)n, idx->path, diag);
out_unlock:
    unlock_close(&lf);
    return err;
}

static pc_err_t file_status(pc_ca_index_t *base, const char *serial_hex, pc_ca_index_status_t *out,
                            pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    find_state_t st = {.serial = serial_hex};
    locked_file_t lf;

    pc_err_t err = lock_open(idx, idx->path, O_RDONLY | O_CREAT, LOCK_SH, &lf, diag);
    if (err != PC_OK)
        return err;
    err = scan(lf.fd, idx->path, visit_find, &st, diag);
    unlock_close(&lf);
    if (err != PC_OK)
        return err;
    if (st.revoked) {
        out->state = PC_CA_INDEX_REVOKED;
        memcpy(out->revoked_at, st.revoked_at, sizeof(out->revoked_at));
        out->reason = st.reason;
    } else {
        out->state = st.issued ? PC_CA_INDEX_GOOD : PC_CA_INDEX_UNKNOWN;
    }
    return PC_OK;
}

typedef struct revoked_list {
    pc_ca_index_revoked_t *items;
    size_t count;
    size_t cap;
    bool nomem;
} revoked_list_t;

static bool visit_revoked(const index_line_t *il, void *arg)
{
    revoked_list_t *list = arg;
    if (il->type != 'R')
        return true;
    /* A serial revoked by two processes at once may appear twice; the first line wins. */
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->items[i].serial_hex, il->serial) == 0)
            return true;
    if (list->count == list->cap) {
        size_t cap = list->cap != 0 ? list->cap * 2 : 16;
        pc_ca_index_revoked_t *items = realloc(list->items, cap * sizeof(*items));
        if (items == NULL) {
            list->nomem = true;
            return false;
        }
        list->items = items;
        list->cap = cap;
    }
    pc_ca_index_revoked_t *r = &list->items[list->count];
    if (strlen(il->serial) >= sizeof(r->serial_hex))
        return true;
    snprintf(r->serial_hex, sizeof(r->serial_hex), "%s", il->serial);
    snprintf(r->revoked_at, sizeof(r->revoked_at), "%s", il->time);
    char *end = NULL;
    long reason = strtol(il->rest, &end, 10);
    r->reason = (end != il->rest && reason >= 0 && reason <= 10) ? (int)reason : 0;
    list->count++;
    return true;
}

static pc_err_t file_list_revoked(pc_ca_index_t *base, pc_ca_index_revoked_t **out, size_t *count,
                                  pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    revoked_list_t list = {.items = NULL, .count = 0, .cap = 0, .nomem = false};
    locked_file_t lf;

    pc_err_t err = lock_open(idx, idx->path, O_RDONLY | O_CREAT, LOCK_SH, &lf, diag);
    if (err != PC_OK)
        return err;
    err = scan(lf.fd, idx->path, visit_revoked, &list, diag);
    unlock_close(&lf);
    if (err == PC_OK && list.nomem)
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory reading the revocations of %s", idx->path);
    if (err != PC_OK) {
        free(list.items);
        return err;
    }
    *out = list.items;
    *count = list.count;
    return PC_OK;
}

static pc_err_t file_revoked_count(pc_ca_index_t *base, uint64_t *count, pc_diag_t *diag)
{
    pc_ca_index_revoked_t *items = NULL;
    size_t n = 0;
    pc_err_t err = file_list_revoked(base, &items, &n, diag);
    free(items);
    if (err == PC_OK)
        *count = n;
    return err;
}

typedef struct serial_list {
    const char *request_id;
    pc_ca_serial_t *items;
    size_t count, cap;
    bool nomem;
} serial_list_t;

static bool visit_issued_for(const index_line_t *il, void *arg)
{
    serial_list_t *list = arg;
    size_t id_len = strlen(list->request_id);
    /* rest is "request_id<TAB>subject"; ids are printable, so they are stored unescaped */
    if (il->type != 'I' || strncmp(il->rest, list->request_id, id_len) != 0 ||
        (il->rest[id_len] != '\t' && il->rest[id_len] != '\0'))
        return true;
    if (list->count == list->cap) {
        size_t cap = list->cap != 0 ? list->cap * 2 : 4;
        pc_ca_serial_t *items = realloc(list->items, cap * sizeof(*items));
        if (items == NULL) {
            list->nomem = true;
            return false;
        }
        list->items = items;
        list->cap = cap;
    }
    if (strlen(il->serial) < sizeof(list->items[0].hex))
        snprintf(list->items[list->count++].hex, sizeof(list->items[0].hex), "%s", il->serial);
    return true;
}

static pc_err_t file_find_issued(pc_ca_index_t *base, const char *request_id, pc_ca_serial_t **out,
                                 size_t *count, pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    serial_list_t list = {.request_id = request_id};
    locked_file_t lf;
    pc_err_t err = lock_open(idx, idx->path, O_RDONLY | O_CREAT, LOCK_SH, &lf, diag);
    if (err != PC_OK)
        return err;
    err = scan(lf.fd, idx->path, visit_issued_for, &list, diag);
    unlock_close(&lf);
    if (err == PC_OK && list.nomem)
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory reading %s", idx->path);
    if (err != PC_OK) {
        free(list.items);
        return err;
    }
    *out = list.items;
    *count = list.count;
    return PC_OK;
}

static pc_err_t read_counter(int fd, const char *path, uint64_t *value, pc_diag_t *diag)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        return pc_fail(diag, PC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    buf[n] = '\0';
    *value = 0;
    if (n == 0)
        return PC_OK; /* a new state dir: no CRL issued yet */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0'))
        return pc_fail(diag, PC_ERR_IO,
                       "%s does not hold a CRL number; restore it, or write a number higher than "
                       "that of the last CRL published",
                       path);
    *value = (uint64_t)v;
    return PC_OK;
}

static pc_err_t file_next_crl_number(pc_ca_index_t *base, uint64_t *number, pc_diag_t *diag)
{
    file_index_t *idx = (file_index_t *)base;
    locked_file_t lf;
    uint64_t value = 0;
    char buf[32];

    pc_err_t err = lock_open(idx, idx->crlnumber_path, O_RDWR | O_CREAT, LOCK_EX, &lf, diag);
    if (err != PC_OK)
        return err;
    err = read_counter(lf.fd, idx->crlnumber_path, &value, diag);
    if (err != PC_OK)
        goto out_unlock;
    value++;
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", value);
    if (pwrite(lf.fd, buf, (size_t)n, 0) != n || ftruncate(lf.fd, n) != 0 || fsync(lf.fd) != 0) {
        err = pc_fail(diag, PC_ERR_IO, "cannot write %s: %s; free disk space or fix permissions",
                      idx->crlnumber_path, strerror(errno));
        goto out_unlock;
    }
    *number = value;
out_unlock:
    unlock_close(&lf);
    return err;
}

static const pc_ca_index_ops_t file_ops = {
    .add_issued = file_add_issued,
    .revoke = file_revoke,
    .list_revoked = file_list_revoked,
    .find_issued = file_find_issued,
    .next_crl_number = file_next_crl_number,
    .revoked_count = file_revoked_count,
    .status = file_status,
    .free = file_free,
};
