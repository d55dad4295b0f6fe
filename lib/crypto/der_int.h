/*
 * der_int.h - private to lib/crypto: a DER writer for the structures written by hand (the EC
 * envelope, the PKCS#12), where OpenSSL's ASN.1 templates would allocate, fill and encode an
 * object tree for every message. Content is written first and its header put in front of it
 * (pc_der_wrap), so no length is computed ahead. Also the one content encryption both
 * structures use (AES-256-CBC). Any thread; a pc_der_t is its owner's.
 */
#ifndef PC_DER_INT_H
#define PC_DER_INT_H

#ifndef PC_INSIDE_CRYPTO
#error "der_int.h is private to lib/crypto"
#endif

#include <stdbool.h>
#include <stddef.h>

/* ASN.1 tags of what is written by hand */
enum {
    PC_DER_INTEGER = 0x02,
    PC_DER_BIT_STRING = 0x03,
    PC_DER_OCTET_STRING = 0x04,
    PC_DER_BMP_STRING = 0x1e,
    PC_DER_SEQUENCE = 0x30,
    PC_DER_SET = 0x31,
    PC_DER_CTX0 = 0xa0,           /* [0] constructed (EXPLICIT, or IMPLICIT of a SEQUENCE) */
    PC_DER_CTX1 = 0xa1,           /* [1] constructed */
    PC_DER_CTX0_PRIMITIVE = 0x80, /* [0] IMPLICIT of a primitive (OCTET STRING) */
};

/* 1.2.840.113549.1.7.1 data, the ContentInfo type both hand-written structures use, as a TLV. */
extern const unsigned char pc_der_oid_data[11];

#define PC_DER_AES_KEY_LEN 32 /* AES-256 */
#define PC_DER_AES_IV_LEN 16  /* its CBC block */

/* The output being written. buf is OPENSSL_malloc'd, so that it can become a caller's output
 * freed with OPENSSL_free; a failure (memory, size) sticks in failed and later calls do nothing.
 * secret: the bytes must not outlive their use (a PKCS#12 whose password is empty), so a buffer
 * outgrown is wiped before it is freed, and pc_der_free wipes too. */
typedef struct pc_der {
    unsigned char *buf;
    size_t len, cap;
    bool failed;
    bool secret;
} pc_der_t;

/* pc_der_reserve makes room for more bytes at buf + len; false (and failed) when it cannot. */
bool pc_der_reserve(pc_der_t *d, size_t more);

/* pc_der_put appends n bytes (an already encoded element, or content). */
void pc_der_put(pc_der_t *d, const void *bytes, size_t n);

/* pc_der_insert puts n bytes (an encoded element) at start, before what was written since. */
void pc_der_insert(pc_der_t *d, size_t start, const void *bytes, size_t n);

/* pc_der_wrap makes everything written since start the content of one element of tag. */
void pc_der_wrap(pc_der_t *d, size_t start, unsigned char tag);

/* pc_der_tlv appends one element of tag with n bytes of content. */
void pc_der_tlv(pc_der_t *d, unsigned char tag, const void *bytes, size_t n);

/* pc_der_header writes tag and the DER length len at out (room for PC_DER_HEADER_MAX bytes) and
 * returns the bytes written. */
#define PC_DER_HEADER_MAX (2 + sizeof(size_t))
size_t pc_der_header(unsigned char *out, unsigned char tag, size_t len);

/* pc_der_uint appends a non-negative INTEGER. */
void pc_der_uint(pc_der_t *d, unsigned long value);

/* pc_der_sort_set sorts the n elements of a SET OF written from start on (DER wants them in the
 * order of their encodings, X.690 11.6); at most 8 elements, each a complete TLV. */
void pc_der_sort_set(pc_der_t *d, size_t start, size_t n);

/* pc_der_aes256_cbc_alg appends AlgorithmIdentifier { aes256-CBC, OCTET STRING iv }: how the
 * EC envelope's content and the PKCS#12's key bag are encrypted. */
void pc_der_aes256_cbc_alg(pc_der_t *d, const unsigned char iv[PC_DER_AES_IV_LEN]);

/* pc_der_aes256_cbc appends one element of tag whose content is in encrypted with AES-256-CBC
 * (PKCS#7 padding) under key and iv, written straight into the output; in_len at most INT_MAX -
 * 32. False when the cipher is missing from OpenSSL's providers or fails, or d failed. The
 * cipher is fetched once per process. */
bool pc_der_aes256_cbc(pc_der_t *d, unsigned char tag, const unsigned char key[PC_DER_AES_KEY_LEN],
                       const unsigned char iv[PC_DER_AES_IV_LEN], const unsigned char *in,
                       size_t in_len);

/* pc_der_free frees buf (wiped first when secret). */
void pc_der_free(pc_der_t *d);

#endif
