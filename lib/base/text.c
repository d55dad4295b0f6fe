/*
 * text.c - a growable byte buffer, strict UTF-8 checks, wiping secret strings and base64
 * decoding, for code that builds or checks text from outside (names, CSV cells, messages,
 * encoded DER). Pure functions on the caller's data; any thread.
 */
#include "text.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

pc_err_t pc_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len,
                          pc_diag_t *diag)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    while (pad < 2 && len > 0 && text[len - 1] == '=') {
        len--;
        pad++;
    }
    /* EVP_DecodeBlock would read through whitespace and stray padding: checked here. */
    bool ok = len % 4 != 1 && (pad == 0 || (len + pad) % 4 == 0) && len <= INT_MAX / 2;
    for (size_t i = 0; ok && i < len; i++)
        ok = text[i] != '\0' && strchr(alphabet, text[i]) != NULL;
    if (!ok)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "not base64 (RFC 4648, standard alphabet)");
    size_t full = (len + 3) / 4 * 4;
    char *padded = malloc(full + 1);
    unsigned char *bytes = malloc(full / 4 * 3 + 1);
    if (padded == NULL || bytes == NULL) {
        free(padded);
        free(bytes);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory decoding base64");
    }
    memcpy(padded, text, len);
    memset(padded + len, '=', full - len);
    int n = EVP_DecodeBlock(bytes, (const unsigned char *)padded, (int)full);
    free(padded);
    if (n < 0) {
        free(bytes);
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "not base64 (RFC 4648, standard alphabet)");
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    *out = bytes;
    *out_len = (size_t)n - (full - len);
    return PC_OK;
}

pc_err_t pc_buf_append(pc_buf_t *buf, const char *bytes, size_t len, pc_diag_t *diag)
{
    if (len == 0 && buf->data != NULL)
        return PC_OK;
    if (len > SIZE_MAX / 2 - buf->len)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a name");
    if (buf->len + len > buf->cap || buf->data == NULL) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len)
            cap *= 2;
        char *grown = realloc(buf->data, cap);
        if (grown == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a name");
        buf->data = grown;
        buf->cap = cap;
    }
    if (len > 0)
        memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    return PC_OK;
}

void pc_buf_free(pc_buf_t *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

void pc_str_free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0u) == 0x80u;
}

/* Length of the well-formed UTF-8 sequence at s (left bytes available), or 0 if ill-formed
 * (Unicode table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c < 0xF5) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (left < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++) {
        if (!is_cont(s[i]))
            return 0;
    }
    return need;
}

bool pc_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0) {
            if (bad_at != NULL)
                *bad_at = i;
            return false;
        }
        i += n;
    }
    return true;
}

size_t pc_utf8_chars(const char *s, size_t len)
{
    size_t chars = 0;

    for (size_t i = 0; i < len; i++) {
        if (!is_cont((unsigned char)s[i]))
            chars++;
    }
    return chars;
}

int pc_utf8_clip(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return (int)len;
    while (max > 0 && is_cont((unsigned char)s[max]))
        max--;
    return (int)max;
}

pc_err_t pc_key_segment(const char *id, char *out, size_t size, pc_diag_t *diag)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~@+=", *p) != NULL;
        if (used + (keep ? 1 : 3) >= size)
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "an id is too long for a record key");
        if (keep) {
            out[used++] = (char)*p;
        } else {
            out[used++] = '%';
            out[used++] = hex[*p >> 4];
            out[used++] = hex[*p & 15];
        }
    }
    if (size == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "an id is too long for a record key");
    out[used] = '\0';
    return PC_OK;
}
