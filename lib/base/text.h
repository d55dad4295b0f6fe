/*
 * text.h - a growable byte buffer and strict UTF-8 checks. Any thread.
 */
#ifndef PC_TEXT_H
#define PC_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "pc_err.h"

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

#endif
