/*
 * der.c - the DER writer of der_int.h, and the AES-256-CBC content encryption of the EC
 * envelope and the PKCS#12. Any thread: the only shared state is the cipher, fetched under
 * pthread_once and only read after.
 */
#include "der_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SET_MAX 8

const unsigned char pc_der_oid_data[11] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                           0xf7, 0x0d, 0x01, 0x07, 0x01};
/* 2.16.840.1.101.3.4.1.42 aes256-CBC */
static const unsigned char oid_aes256_cbc[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                               0x65, 0x03, 0x04, 0x01, 0x2a};

static EVP_CIPHER *aes256_cbc;
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void cipher_fetch(void)
{
    aes256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

bool pc_der_reserve(pc_der_t *d, size_t more)
{
    if (d->failed || more > SIZE_MAX / 4 - d->len) {
        d->failed = true;
        return false;
    }
    if (d->len + more <= d->cap)
        return true;
    size_t cap = d->cap * 2 > d->len + more ? d->cap * 2 : d->len + more;
    unsigned char *buf = d->secret ? OPENSSL_malloc(cap) : OPENSSL_realloc(d->buf, cap);
    if (buf == NULL) {
        d->failed = true;
        return false;
    }
    if (d->secret && d->buf != NULL) {
        memcpy(buf, d->buf, d->len);
        OPENSSL_clear_free(d->buf, d->cap);
    }
    d->buf = buf;
    d->cap = cap;
    return true;
}

void pc_der_put(pc_der_t *d, const void *bytes, size_t n)
{
    if (n > 0 && pc_der_reserve(d, n)) {
        memcpy(d->buf + d->len, bytes, n);
        d->len += n;
    }
}

size_t pc_der_header(unsigned char *out, unsigned char tag, size_t len)
{
    size_t n = 0, octets = 0;

    out[n++] = tag;
    if (len < 0x80) {
        out[n++] = (unsigned char)len;
        return n;
    }
    for (size_t v = len; v > 0; v >>= 8)
        octets++;
    out[n++] = (unsigned char)(0x80 | octets);
    for (size_t i = octets; i > 0; i--)
        out[n++] = (unsigned char)(len >> (8 * (i - 1)));
    return n;
}

void pc_der_insert(pc_der_t *d, size_t start, const void *bytes, size_t n)
{
    if (d->failed || start > d->len || !pc_der_reserve(d, n))
        return;
    memmove(d->buf + start + n, d->buf + start, d->len - start);
    memcpy(d->buf + start, bytes, n);
    d->len += n;
}

void pc_der_wrap(pc_der_t *d, size_t start, unsigned char tag)
{
    unsigned char header[PC_DER_HEADER_MAX];

    if (d->failed || start > d->len)
        return;
    pc_der_insert(d, start, header, pc_der_header(header, tag, d->len - start));
}

void pc_der_tlv(pc_der_t *d, unsigned char tag, const void *bytes, size_t n)
{
    size_t start = d->len;

    pc_der_put(d, bytes, n);
    pc_der_wrap(d, start, tag);
}

void pc_der_uint(pc_der_t *d, unsigned long value)
{
    unsigned char bytes[1 + sizeof(value)];
    size_t n = 0;

    /* big-endian, minimal, with a leading zero when the top bit is set (positive) */
    for (size_t i = sizeof(value); i > 0; i--) {
        unsigned char b = (unsigned char)(value >> (8 * (i - 1)));
        if (n == 0 && b == 0 && i > 1)
            continue;
        if (n == 0 && (b & 0x80))
            bytes[n++] = 0;
        bytes[n++] = b;
    }
    pc_der_tlv(d, PC_DER_INTEGER, bytes, n);
}

/* element_len reads the length of the element our writer put at p (at most avail bytes). */
static size_t element_len(const unsigned char *p, size_t avail)
{
    size_t len = 0, hl = 2;

    if (avail < 2)
        return 0;
    if (p[1] < 0x80) {
        len = p[1];
    } else {
        size_t octets = p[1] & 0x7f;
        if (octets > sizeof(size_t) || avail < 2 + octets)
            return 0;
        for (size_t i = 0; i < octets; i++)
            len = (len << 8) | p[2 + i];
        hl += octets;
    }
    return len <= avail - hl ? hl + len : 0;
}

typedef struct span {
    const unsigned char *p;
    size_t len;
} span_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

void pc_der_sort_set(pc_der_t *d, size_t start, size_t n)
{
    span_t spans[SET_MAX];
    size_t at = start, total = d->len - start;
    unsigned char *sorted;

    if (d->failed || n < 2)
        return;
    if (n > SET_MAX) {
        d->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        spans[i] = (span_t){d->buf + at, element_len(d->buf + at, d->len - at)};
        if (spans[i].len == 0) {
            d->failed = true;
            return;
        }
        at += spans[i].len;
    }
    if (at != d->len || (sorted = OPENSSL_malloc(total)) == NULL) {
        d->failed = true;
        return;
    }
    qsort(spans, n, sizeof(spans[0]), span_cmp);
    at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(sorted + at, spans[i].p, spans[i].len);
        at += spans[i].len;
    }
    memcpy(d->buf + start, sorted, total);
    OPENSSL_clear_free(sorted, total);
}

void pc_der_aes256_cbc_alg(pc_der_t *d, const unsigned char iv[PC_DER_AES_IV_LEN])
{
    size_t start = d->len;

    pc_der_put(d, oid_aes256_cbc, sizeof(oid_aes256_cbc));
    pc_der_tlv(d, PC_DER_OCTET_STRING, iv, PC_DER_AES_IV_LEN);
    pc_der_wrap(d, start, PC_DER_SEQUENCE);
}

bool pc_der_aes256_cbc(pc_der_t *d, unsigned char tag, const unsigned char key[PC_DER_AES_KEY_LEN],
                       const unsigned char iv[PC_DER_AES_IV_LEN], const unsigned char *in,
                       size_t in_len)
{
    /* PKCS#7 padding adds 1 to 16 bytes */
    size_t enc_len = (in_len / PC_DER_AES_IV_LEN + 1) * PC_DER_AES_IV_LEN;
    unsigned char header[PC_DER_HEADER_MAX];
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, fin = 0;
    bool ok = false;

    pthread_once(&cipher_once, cipher_fetch);
    if (aes256_cbc == NULL || in_len > INT_MAX - 2 * PC_DER_AES_IV_LEN)
        return false;
    pc_der_put(d, header, pc_der_header(header, tag, enc_len));
    if (!pc_der_reserve(d, enc_len) || (ctx = EVP_CIPHER_CTX_new()) == NULL)
        goto out;
    if (EVP_EncryptInit_ex2(ctx, aes256_cbc, key, iv, NULL) == 1 &&
        EVP_EncryptUpdate(ctx, d->buf + d->len, &n, in, (int)in_len) == 1 &&
        EVP_EncryptFinal_ex(ctx, d->buf + d->len + n, &fin) == 1 &&
        (size_t)n + (size_t)fin == enc_len) {
        d->len += enc_len;
        ok = true;
    }
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

void pc_der_free(pc_der_t *d)
{
    if (d->secret && d->buf != NULL)
        OPENSSL_clear_free(d->buf, d->cap);
    else
        OPENSSL_free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}
