/*
 * file.c - bounded file reads and atomic writes with an explicit mode, so that nothing secret
 * is ever briefly world-readable and no reader sees half a file. Any thread (blocking I/O).
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pc_err_t pc_file_read(const char *path, size_t max, unsigned char **data, size_t *len,
                      pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return pc_fail(diag, PC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= max) {
            err = pc_fail(diag, PC_ERR_TOO_LARGE, "%s is over the limit of %zu bytes", path, max);
            goto out_free_buf;
        }
        cap = cap * 2 > max ? max + 1 : cap * 2;
        unsigned char *bigger = realloc(buf, cap + 1);
        if (bigger == NULL)
            goto out_free_buf;
        buf = bigger;
    }
    if (buf == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory reading %s", path);
        goto out_close;
    }
    if (ferror(f)) {
        err = pc_fail(diag, PC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        goto out_free_buf;
    }
    if (n > max) {
        err = pc_fail(diag, PC_ERR_TOO_LARGE, "%s is over the limit of %zu bytes", path, max);
        goto out_free_buf;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    goto out_close;
out_free_buf:
    if (err == PC_OK)
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory reading %s", path);
    free(buf);
out_close:
    fclose(f);
    return err;
}

pc_err_t pc_file_write(const char *path, const void *data, size_t len, unsigned mode,
                       pc_diag_t *diag)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return pc_fail(diag, PC_ERR_IO, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return pc_fail(diag, PC_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = errno;
            close(fd);
            unlink(tmp);
            return pc_fail(diag, PC_ERR_IO, "cannot write %s: %s", path, strerror(saved));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return pc_fail(diag, PC_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    return PC_OK;
}

pc_err_t pc_file_mkdirs(const char *dir, unsigned mode, pc_diag_t *diag)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof(path))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "folder path empty or too long: %.64s", dir);
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST)
            return pc_fail(diag, PC_ERR_IO, "cannot create the folder %s: %s", path,
                           strerror(errno));
        if (end)
            break;
        *p = '/';
    }
    return PC_OK;
}
