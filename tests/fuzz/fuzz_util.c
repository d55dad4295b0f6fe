/*
 * fuzz_util.c - the temporary folder and the input splitter of the fuzz targets (see
 * fuzz_util.h). Failures here are the harness's, not the code under test's, so they abort
 * with a message instead of being handed to the decoder.
 */
#include "fuzz_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char dir[512];

bool fuzz_split(const uint8_t *data, size_t len, size_t max, fuzz_fields_t *out)
{
    memset(out, 0, sizeof(*out));
    if (max == 0 || max > FUZZ_MAX_FIELDS)
        max = FUZZ_MAX_FIELDS;
    out->buf = malloc(len + 1);
    if (out->buf == NULL)
        return false;
    if (len > 0)
        memcpy(out->buf, data, len);
    out->buf[len] = '\0';
    size_t start = 0;
    for (size_t i = 0; i <= len && out->count < max; i++) {
        if (i < len && out->buf[i] != '\0')
            continue;
        out->buf[i] = '\0';
        out->field[out->count++] = out->buf + start;
        start = i + 1;
    }
    return true;
}

void fuzz_fields_free(fuzz_fields_t *f)
{
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

const char *fuzz_dir(void)
{
    if (dir[0] != '\0')
        return dir;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if (snprintf(dir, sizeof(dir), "%s/pc-fuzz-XXXXXX", tmp) >= (int)sizeof(dir) ||
        mkdtemp(dir) == NULL) {
        perror("fuzz: cannot make a temporary folder");
        abort();
    }
    atexit(remove_dir);
    return dir;
}

void fuzz_path(char *buf, size_t size, const char *name)
{
    if (snprintf(buf, size, "%s/%s", fuzz_dir(), name) >= (int)size) {
        fprintf(stderr, "fuzz: path of %s too long\n", name);
        abort();
    }
}

void fuzz_write(const char *name, const void *data, size_t len, unsigned mode, char *buf,
                size_t size)
{
    fuzz_path(buf, size, name);
    int fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    const unsigned char *p = data;
    while (fd >= 0 && len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    if (fd < 0 || len > 0 || close(fd) != 0) {
        perror("fuzz: cannot write a file in the temporary folder");
        abort();
    }
}

void fuzz_clear_pc_environment(void)
{
    char name[256];
    for (size_t i = 0; environ[i] != NULL;) {
        const char *eq = strchr(environ[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        if (strncmp(environ[i], "PC_", 3) != 0 || len >= sizeof(name)) {
            i++;
            continue;
        }
        memcpy(name, environ[i], len);
        name[len] = '\0';
        unsetenv(name); /* environ shifts: look at index i again */
    }
}
