/*
 * file.h - small, careful file helpers: bounded reads, private writes. Any thread (blocking).
 */
#ifndef PC_FILE_H
#define PC_FILE_H

#include <stddef.h>

#include "pc_err.h"

/* pc_file_read reads all of path (at most max bytes) into a malloc'd, NUL-terminated buffer
 * (*len excludes the NUL). PC_ERR_IO naming the path and the reason; PC_ERR_TOO_LARGE over max. */
pc_err_t pc_file_read(const char *path, size_t max, unsigned char **data, size_t *len,
                      pc_diag_t *diag);

/* pc_file_write writes data to path through a temporary file and rename, with mode
 * (e.g. 0600 for anything secret, 0644 for certificates). */
pc_err_t pc_file_write(const char *path, const void *data, size_t len, unsigned mode,
                       pc_diag_t *diag);

/* pc_file_mkdirs creates dir and the folders above it that are missing (mkdir -p), each new one
 * with mode. PC_ERR_IO naming the folder that could not be made and why; PC_ERR_INVALID_PARAM
 * for an empty or too long path. */
pc_err_t pc_file_mkdirs(const char *dir, unsigned mode, pc_diag_t *diag);

#endif
