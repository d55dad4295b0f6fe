/*
 * subject_int.h - helpers shared by vars.c, subject.c and san.c (not part of the public API):
 * a growable byte buffer, strict UTF-8 checks, and the one place that resolves a {{variable}}
 * reference to its value with the project's error messages. Any thread.
 */
#ifndef PC_SUBJECT_INT_H
#define PC_SUBJECT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "pc_err.h"
#include "vars.h"

/* A growable byte buffer; zero-initialise, release with pc_buf_free. */
typedef struct pc_buf {
    char *data;
    size_t len;
    size_t cap;
} pc_buf_t;

/* pc_buf_append appends len bytes; PC_ERR_NOMEM on allocation failure. */
pc_err_t pc_buf_append(pc_buf_t *buf, const char *bytes, size_t len, pc_diag_t *diag);

/* pc_buf_free releases buf's memory and zeroes it (NULL-safe). */
void pc_buf_free(pc_buf_t *buf);

/* pc_utf8_valid tells whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF); on failure *bad_at (may be NULL) is the offset of the first bad byte. */
bool pc_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* pc_utf8_chars counts the characters (code points) of valid UTF-8 s[0..len). */
size_t pc_utf8_chars(const char *s, size_t len);

/* pc_utf8_clip returns the largest length <= max that does not cut a UTF-8 sequence of s, for
 * quoting part of a value in a message. */
int pc_utf8_clip(const char *s, size_t len, size_t max);

/* pc_vars_ref_scan reads the reference that starts with "{{" at s[pos]: on success *name_off and
 * *name_len delimit the name with surrounding whitespace trimmed, and *end is the offset just
 * past the closing "}}". PC_ERR_INVALID_PARAM (naming the position) when there is no closing
 * "}}" before the next "{{" or the end, or when the name is empty. */
pc_err_t pc_vars_ref_scan(const char *s, size_t pos, size_t *name_off, size_t *name_len,
                          size_t *end, pc_diag_t *diag);

/* pc_vars_resolve sets *value to the borrowed value of variable name for a certificate of type.
 * PC_ERR_INVALID_PARAM naming the variable when it is unknown, a user variable in a device
 * certificate, without a value in vars, or when its value is not valid UTF-8. */
pc_err_t pc_vars_resolve(const char *name, size_t name_len, pc_cert_type_t type,
                         const pc_vars_t *vars, const char **value, pc_diag_t *diag);

#endif
