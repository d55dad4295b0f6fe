/*
 * file.h - small, careful file helpers: bounded reads, reads of files that hold a secret (which
 * nobody but their owner may read), atomic private writes. Any thread (blocking).
 */
#ifndef PC_FILE_H
#define PC_FILE_H

#include <stddef.h>

#include "pc_err.h"

/* pc_file_read reads all of path (at most max bytes) into a malloc'd, NUL-terminated buffer
 * (*len excludes the NUL). PC_ERR_IO naming the path and the reason; PC_ERR_TOO_LARGE over max. */
pc_err_t pc_file_read(const char *path, size_t max, unsigned char **data, size_t *len,
                      pc_diag_t *diag);

/* pc_file_read_secret reads a file that holds a secret (a passphrase, an HMAC secret, a token):
 * a regular file of at most max bytes that neither group nor others may read (symbolic links are
 * followed: the mode that counts is the file's). The bytes land in one buffer, never copied on
 * the way; *data is NUL-terminated (*len excludes the NUL) and the caller's: wipe and free it
 * with OPENSSL_clear_free(*data, *len). PC_ERR_INVALID_PARAM for a file readable by group or
 * others (the message says "chmod 600 FILE") or not a regular file; PC_ERR_TOO_LARGE over max;
 * PC_ERR_IO when it cannot be opened or read. */
pc_err_t pc_file_read_secret(const char *path, size_t max, unsigned char **data, size_t *len,
                             pc_diag_t *diag);

/* pc_file_read_key is pc_file_read_secret without the mode check, for a PEM private key that
 * may be encrypted (its passphrase then protects it, and the file may be shared, e.g. from a
 * Kubernetes Secret): *mode gets the file's st_mode; once the key turns out to be unencrypted,
 * the caller applies pc_file_check_secret_mode. Same buffer and errors otherwise. */
pc_err_t pc_file_read_key(const char *path, size_t max, unsigned char **data, size_t *len,
                          unsigned *mode, pc_diag_t *diag);

/* pc_file_check_secret_mode applies the rule for secret files to a file's st_mode: PC_OK when
 * neither group nor others may read it, else PC_ERR_INVALID_PARAM naming path, the mode and
 * the fix ("chmod 600 FILE"). */
pc_err_t pc_file_check_secret_mode(const char *path, unsigned mode, pc_diag_t *diag);

/* pc_file_check_secret stats path (following links) and applies pc_file_check_secret_mode, for
 * a secret file another library opens by name (libcurl's TLS client key). PC_ERR_IO when it
 * cannot be stat'ed. */
pc_err_t pc_file_check_secret(const char *path, pc_diag_t *diag);

/* pc_file_write writes data to path through a new temporary file in the same folder (a random
 * name, created with O_EXCL | O_NOFOLLOW, so no existing file or symbolic link is ever opened
 * or followed), given exactly mode (not the umask's, not an old file's; e.g. 0600 for anything
 * secret, 0644 for certificates) before any byte is written, synced, and renamed over path: a
 * reader sees the old file or the whole new one. PC_ERR_IO naming the path and the reason. */
pc_err_t pc_file_write(const char *path, const void *data, size_t len, unsigned mode,
                       pc_diag_t *diag);

/* pc_file_mkdirs creates dir and the folders above it that are missing (mkdir -p), each new one
 * with mode. PC_ERR_IO naming the folder that could not be made and why; PC_ERR_INVALID_PARAM
 * for an empty or too long path. */
pc_err_t pc_file_mkdirs(const char *dir, unsigned mode, pc_diag_t *diag);

#endif
