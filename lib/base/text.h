/*
 * text.h - a growable byte buffer, strict UTF-8 checks, secret strings and base64 decoding.
 * Any thread.
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

/* pc_str_free_secret wipes the NUL-terminated string s (a password, a token) and frees it; s
 * must come from malloc (strdup), and may be NULL. */
void pc_str_free_secret(char *s);

/* pc_utf8_valid tells whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF); on failure *bad_at (may be NULL) is the offset of the first bad byte. */
bool pc_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* pc_utf8_chars counts the characters (code points) of valid UTF-8 s[0..len). */
size_t pc_utf8_chars(const char *s, size_t len);

/* pc_utf8_clip returns the largest length <= max that does not cut a UTF-8 sequence of s, for
 * quoting part of a value in a message. */
int pc_utf8_clip(const char *s, size_t len, size_t max);

/* pc_base64_decode decodes standard base64 (RFC 4648 section 4; the final padding may be left
 * out) of len bytes into *out (caller frees with free) of *out_len bytes. PC_ERR_BAD_MESSAGE
 * for anything else (other characters, a bad length), PC_ERR_NOMEM. */
pc_err_t pc_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len,
                          pc_diag_t *diag);

/* PC_KEY_SEGMENT_MAX is the room pc_key_segment needs for an id of n bytes, NUL included. */
#define PC_KEY_SEGMENT_MAX(n) (3 * (n) + 1)

/* pc_key_segment writes id into out as one segment of a Redis key: bytes outside
 * A-Z a-z 0-9 - . _ ~ @ + = become %XX (upper-case hex). Ids from requests are outside data: so
 * encoded, no id can hold a key's separators (':', '{', '}'), and two different ids (or tenant
 * and id pairs) never make the same key. Ids made of those characters (GUIDs, UPNs) are kept as
 * they are. PC_ERR_INVALID_PARAM when out (size bytes) is too small. Any thread. */
pc_err_t pc_key_segment(const char *id, char *out, size_t size, pc_diag_t *diag);

#endif
