/*
 * file.c - bounded file reads; reads of secret files, refused when group or others may read
 * them (one rule for every secret the programs read); atomic writes with an explicit mode
 * through a fresh temporary file, so that nothing secret is ever briefly readable by others, no
 * planted file or link is written through, and no reader sees half a file. Any thread
 * (blocking I/O).
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

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

/* read_whole reads the regular file behind fd, whose size st says, into one buffer of exactly
 * that size and a NUL: no realloc leaves copies of a secret behind in freed memory. */
static pc_err_t read_whole(int fd, const char *path, const struct stat *st, size_t max,
                           unsigned char **data, size_t *len, pc_diag_t *diag)
{
    size_t size = (size_t)st->st_size, got = 0;
    unsigned char probe;
    ssize_t n = 0;

    if (!S_ISREG(st->st_mode))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s is not a regular file; give the file itself",
                       path);
    if ((uintmax_t)st->st_size > (uintmax_t)max)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "%s is over the limit of %zu bytes", path, max);
    if ((*data = OPENSSL_zalloc(size + 1)) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory reading %s", path);
    while (got < size) {
        n = read(fd, *data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == size) /* one byte more would mean it grew while we read */
        while ((n = read(fd, &probe, 1)) < 0 && errno == EINTR)
            ;
    if (got == size && n == 0) {
        *len = size;
        return PC_OK;
    }
    OPENSSL_clear_free(*data, size + 1);
    *data = NULL;
    if (n < 0)
        return pc_fail(diag, PC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    return pc_fail(diag, PC_ERR_IO, "%s changed while it was read; try again", path);
}

static pc_err_t read_private(const char *path, size_t max, unsigned char **data, size_t *len,
                             unsigned *mode, pc_diag_t *diag)
{
    pc_err_t err;
    struct stat st;
    int fd;

    *data = NULL;
    *len = 0;
    if (path == NULL || path[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no file name given");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return pc_fail(diag, PC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        err = pc_fail(diag, PC_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto out_close;
    }
    *mode = (unsigned)st.st_mode;
    err = read_whole(fd, path, &st, max, data, len, diag);
out_close:
    close(fd);
    return err;
}

pc_err_t pc_file_check_secret_mode(const char *path, unsigned mode, pc_diag_t *diag)
{
    if ((mode & 077) == 0)
        return PC_OK;
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "%s holds a secret but is readable by %s (mode %04o): run 'chmod 600 %s'", path,
                   (mode & 007) != 0 ? "others" : "its group", mode & 07777, path);
}

pc_err_t pc_file_check_secret(const char *path, pc_diag_t *diag)
{
    struct stat st;

    if (path == NULL || path[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no file name given");
    if (stat(path, &st) != 0)
        return pc_fail(diag, PC_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    return pc_file_check_secret_mode(path, (unsigned)st.st_mode, diag);
}

pc_err_t pc_file_read_secret(const char *path, size_t max, unsigned char **data, size_t *len,
                             pc_diag_t *diag)
{
    unsigned mode = 0;
    pc_err_t err = read_private(path, max, data, len, &mode, diag);

    /* checked after the read, on the same open file: no window between check and use */
    if (err == PC_OK && (err = pc_file_check_secret_mode(path, mode, diag)) != PC_OK) {
        OPENSSL_clear_free(*data, *len);
        *data = NULL;
        *len = 0;
    }
    return err;
}

pc_err_t pc_file_read_key(const char *path, size_t max, unsigned char **data, size_t *len,
                          unsigned *mode, pc_diag_t *diag)
{
    return read_private(path, max, data, len, mode, diag);
}

/* temp_open creates a new file beside path with a random name and exactly mode. O_EXCL makes
 * open fail rather than use anything already there (a file, or a symbolic link someone planted:
 * with O_CREAT | O_EXCL it is never followed; O_NOFOLLOW says so twice). */
static int temp_open(const char *path, unsigned mode, char *tmp, size_t size, pc_diag_t *diag)
{
    unsigned char rnd[8];
    int fd = -1;

    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            pc_fail(diag, PC_ERR_IO, "cannot make a temporary name for %s: no random bytes", path);
            return -1;
        }
        if (snprintf(tmp, size, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1],
                     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >= (int)size) {
            pc_fail(diag, PC_ERR_IO, "path too long: %s", path);
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            pc_fail(diag, PC_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
    }
    if (fd < 0) {
        pc_fail(diag, PC_ERR_IO, "cannot create a temporary file beside %s", path);
        return -1;
    }
    /* the mode asked for, whatever the umask: fchmod is not filtered by it */
    if (fchmod(fd, (mode_t)(mode & 07777)) != 0) {
        pc_fail(diag, PC_ERR_IO, "cannot set the mode of %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const unsigned char *p, size_t left)
{
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        left -= (size_t)w;
    }
    return true;
}

/* sync_dir makes the rename itself durable; best effort: some file systems refuse to sync a
 * folder, and the file is complete either way. */
static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int n = slash == NULL   ? snprintf(dir, sizeof(dir), ".")
            : slash == path ? snprintf(dir, sizeof(dir), "/")
                            : snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (n <= 0 || (size_t)n >= sizeof(dir))
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

pc_err_t pc_file_write(const char *path, const void *data, size_t len, unsigned mode,
                       pc_diag_t *diag)
{
    char tmp[4096];
    int saved;
    int fd = temp_open(path, mode, tmp, sizeof(tmp), diag);

    if (fd < 0)
        return PC_ERR_IO;
    if (!write_all(fd, data, len)) {
        saved = errno;
        close(fd);
        goto out_unlink;
    }
    if (fsync(fd) != 0) {
        saved = errno;
        close(fd);
        goto out_unlink;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        goto out_unlink;
    }
    sync_dir(path);
    return PC_OK;
out_unlink:
    unlink(tmp);
    return pc_fail(diag, PC_ERR_IO, "cannot write %s: %s", path, strerror(saved));
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
