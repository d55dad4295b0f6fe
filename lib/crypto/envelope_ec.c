/*
 * envelope_ec.c - the CMS EnvelopedData to an EC device key, written here instead of by
 * OpenSSL's CMS: ephemeral-static ECDH (RFC 5753, dhSinglePass-stdDH-sha256kdf-scheme), the
 * ANSI X9.63 KDF with SHA-256 over the ECC-CMS-SharedInfo, AES-256 key wrap (RFC 3394) of a
 * fresh content key, and the content in AES-256-CBC. The DER is what OpenSSL's CMS writes for
 * the same choices (test_envelope opens it with OpenSSL's CMS and `openssl cms -decrypt`).
 *
 * Why not OpenSSL's CMS: for every envelope to a P-256 key OpenSSL 3.0 builds the curve's group
 * again for the ephemeral key, and validates the device's point inside EVP_PKEY_derive_set_peer
 * with a full scalar multiplication (n * Q = infinity), beside the one the agreement needs:
 * three times the elliptic-curve work of the agreement alone (perf of the engine's pack stage:
 * 47 us check, 43 us ephemeral key, 46 us agreement). Here the device's point is checked once,
 * when envelope.c decodes it (on the curve and not infinity, which for P-256 and P-384, of
 * cofactor 1, is the whole check), the ephemeral key is made on the group built once
 * (keygen.c), and the ciphers and digest are fetched once per process.
 *
 * Pool threads, several at once: the fetched algorithms are set under pthread_once and only
 * read after; the content key, the KDF output and the shared secret are wiped before return.
 */
/* ECDH_compute_key and the EC_KEY the device key and the ephemeral key are held in: see
 * keygen.c (legacy keys skip OpenSSL 3.0's provider encoders and decoders). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "der_int.h"
#include "envelope_int.h"
#include "keygen_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdh.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define CEK_LEN PC_DER_AES_KEY_LEN /* AES-256 content key */
#define WRAPPED_LEN 40             /* RFC 3394: the key and one 8-byte block */
#define MAX_FIELD 48               /* P-384's shared secret, the larger of the two curves */

/* ---- DER pieces that never change (OIDs as full TLVs; `openssl asn1parse` names them) ----- */

/* 1.2.840.113549.1.7.3 envelopedData */
static const unsigned char oid_enveloped_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                   0xf7, 0x0d, 0x01, 0x07, 0x03};
/* AlgorithmIdentifier { 1.2.840.10045.2.1 id-ecPublicKey } (parameters absent, as OpenSSL
 * writes the originator's key: its curve is the recipient's) */
static const unsigned char alg_ec_public_key[] = {0x30, 0x09, 0x06, 0x07, 0x2a, 0x86,
                                                  0x48, 0xce, 0x3d, 0x02, 0x01};
/* AlgorithmIdentifier { 2.16.840.1.101.3.4.1.45 id-aes256-wrap } (parameters absent, RFC 3565):
 * the key-encryption algorithm inside the KARI's and the KDF's shared info */
static const unsigned char alg_aes256_wrap[] = {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                                0x01, 0x65, 0x03, 0x04, 0x01, 0x2d};
/* 1.3.132.1.11.1 dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 7.1.4) */
static const unsigned char oid_ecdh_sha256kdf[] = {0x06, 0x06, 0x2b, 0x81, 0x04, 0x01, 0x0b, 0x01};
/* ECC-CMS-SharedInfo (RFC 5753 7.2), the KDF's other input: SEQUENCE { keyInfo: the wrap's
 * AlgorithmIdentifier as above, no entityUInfo (we send no ukm), suppPubInfo [2] EXPLICIT
 * OCTET STRING: the KEK's length in bits, 256, as 4 bytes } */
static const unsigned char shared_info_aes256_wrap[] = {
    0x30, 0x15, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
    0x04, 0x01, 0x2d, 0xa2, 0x06, 0x04, 0x04, 0x00, 0x00, 0x01, 0x00};
static const unsigned char version_2[] = {0x02, 0x01, 0x02}; /* EnvelopedData with a KARI */
static const unsigned char version_3[] = {0x02, 0x01, 0x03}; /* KeyAgreeRecipientInfo */

/* ---- the algorithms, fetched once ------------------------------------------------------- */

static EVP_MD *sha256;
static EVP_CIPHER *aes256_wrap;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    aes256_wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", NULL);
}

/* ---- the key agreement ------------------------------------------------------------------ */

/*
 * derive_kek agrees on a secret with device through eph and derives the key-encryption key
 * from it: X9.63 KDF, SHA-256(Z || counter 1 || ECC-CMS-SharedInfo), one block for AES-256.
 * The shared info names the wrap algorithm and the KEK's length, as RFC 5753 7.2 says.
 */
static bool derive_kek(const EC_KEY *device, const EC_KEY *eph, unsigned char kek[CEK_LEN])
{
    static const unsigned char counter_1[] = {0x00, 0x00, 0x00, 0x01};
    unsigned char z[MAX_FIELD];
    int zlen = ECDH_compute_key(z, sizeof(z), EC_KEY_get0_public_key(device), eph, NULL);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = NULL;
    bool ok = false;

    if (zlen > 0 && (md = EVP_MD_CTX_new()) != NULL && EVP_DigestInit_ex2(md, sha256, NULL) == 1 &&
        EVP_DigestUpdate(md, z, (size_t)zlen) == 1 &&
        EVP_DigestUpdate(md, counter_1, sizeof(counter_1)) == 1 &&
        EVP_DigestUpdate(md, shared_info_aes256_wrap, sizeof(shared_info_aes256_wrap)) == 1 &&
        EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen >= CEK_LEN) {
        memcpy(kek, digest, CEK_LEN);
        ok = true;
    }
    EVP_MD_CTX_free(md);
    OPENSSL_cleanse(z, sizeof(z));
    OPENSSL_cleanse(digest, sizeof(digest));
    return ok;
}

/* wrap_key wraps cek under kek with AES-256 key wrap (RFC 3394, its default IV). */
static bool wrap_key(const unsigned char kek[CEK_LEN], const unsigned char cek[CEK_LEN],
                     unsigned char wrapped[WRAPPED_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = ctx != NULL && EVP_EncryptInit_ex2(ctx, aes256_wrap, kek, NULL, NULL) == 1 &&
              EVP_EncryptUpdate(ctx, wrapped, &n, cek, CEK_LEN) == 1 &&
              EVP_EncryptFinal_ex(ctx, wrapped + n, &fin) == 1 && n + fin == WRAPPED_LEN;

    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* ---- the envelope ----------------------------------------------------------------------- */

/* put_kari writes the KeyAgreeRecipientInfo, [1] in the RecipientInfo CHOICE: the ephemeral
 * public key as the originator, the key-encryption algorithm and the wrapped key, the
 * recipient named by its SKI (rKeyId). */
static void put_kari(pc_der_t *d, const unsigned char *point, size_t point_len,
                     const unsigned char ski[PC_ENVELOPE_SKI_LEN],
                     const unsigned char wrapped[WRAPPED_LEN])
{
    unsigned char bits[1 + PC_ENVELOPE_MAX_EC_POINT];
    size_t kari = d->len, at;

    bits[0] = 0; /* no unused bits */
    memcpy(bits + 1, point, point_len);
    pc_der_put(d, version_3, sizeof(version_3));
    at = d->len; /* originator [0] { originatorKey [1] { algorithm, publicKey } } */
    pc_der_put(d, alg_ec_public_key, sizeof(alg_ec_public_key));
    pc_der_tlv(d, PC_DER_BIT_STRING, bits, 1 + point_len);
    pc_der_wrap(d, at, PC_DER_CTX1);
    pc_der_wrap(d, at, PC_DER_CTX0);
    at = d->len; /* keyEncryptionAlgorithm { scheme, { wrap } } */
    pc_der_put(d, oid_ecdh_sha256kdf, sizeof(oid_ecdh_sha256kdf));
    pc_der_put(d, alg_aes256_wrap, sizeof(alg_aes256_wrap));
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    at = d->len; /* recipientEncryptedKeys { { rKeyId [0] { ski }, encryptedKey } } */
    size_t rid = d->len;
    pc_der_tlv(d, PC_DER_OCTET_STRING, ski, PC_ENVELOPE_SKI_LEN);
    pc_der_wrap(d, rid, PC_DER_CTX0);
    pc_der_tlv(d, PC_DER_OCTET_STRING, wrapped, WRAPPED_LEN);
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    pc_der_wrap(d, kari, PC_DER_CTX1);
}

/* put_content writes the EncryptedContentInfo: in encrypted with cek in AES-256-CBC straight
 * into the output. */
static bool put_content(pc_der_t *d, const unsigned char cek[CEK_LEN], const unsigned char *in,
                        size_t in_len)
{
    unsigned char iv[PC_DER_AES_IV_LEN];
    size_t eci = d->len;

    if (RAND_bytes(iv, sizeof(iv)) != 1)
        return false;
    pc_der_put(d, pc_der_oid_data, sizeof(pc_der_oid_data));
    pc_der_aes256_cbc_alg(d, iv); /* contentEncryptionAlgorithm */
    if (!pc_der_aes256_cbc(d, PC_DER_CTX0_PRIMITIVE, cek, iv, in, in_len))
        return false;
    pc_der_wrap(d, eci, PC_DER_SEQUENCE);
    return !d->failed;
}

pc_err_t pc_envelope_ec_seal(const EC_KEY *device, const unsigned char ski[PC_ENVELOPE_SKI_LEN],
                             const unsigned char *in, size_t in_len, unsigned char **out,
                             size_t *out_len, pc_diag_t *diag)
{
    const EC_GROUP *group = EC_KEY_get0_group(device);
    int curve = group != NULL ? EC_GROUP_get_curve_name(group) : NID_undef;
    unsigned char cek[CEK_LEN], kek[CEK_LEN], wrapped[WRAPPED_LEN], point[PC_ENVELOPE_MAX_EC_POINT];
    pc_der_t d = {0};
    EC_KEY *eph = NULL;
    size_t point_len = 0, ci, ed, ris;
    pc_err_t err = PC_OK;

    *out = NULL;
    *out_len = 0;
    pthread_once(&algs_once, algs_fetch);
    if (sha256 == NULL || aes256_wrap == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "SHA-256 or AES-256-WRAP is not available from OpenSSL's "
                           "providers; check the OpenSSL configuration");
    if (in_len > INT_MAX - 2 * PC_DER_AES_IV_LEN)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "the content to seal is too large (%zu bytes)",
                       in_len);
    if ((eph = pc_keygen_ec_key(curve)) == NULL ||
        (point_len =
             EC_POINT_point2oct(EC_KEY_get0_group(eph), EC_KEY_get0_public_key(eph),
                                POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), NULL)) == 0 ||
        !derive_kek(device, eph, kek)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "could not agree on a key with the device's EC key (ECDH)");
        goto out;
    }
    if (RAND_priv_bytes(cek, sizeof(cek)) != 1 || !wrap_key(kek, cek, wrapped)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not make and wrap the envelope's key");
        goto out;
    }
    /* ContentInfo { envelopedData, [0] { EnvelopedData { 2, SET { kari }, content } } } */
    if (!pc_der_reserve(&d, in_len + 512))
        goto out_nomem;
    ci = d.len;
    pc_der_put(&d, oid_enveloped_data, sizeof(oid_enveloped_data));
    ed = d.len;
    pc_der_put(&d, version_2, sizeof(version_2));
    ris = d.len;
    put_kari(&d, point, point_len, ski, wrapped);
    pc_der_wrap(&d, ris, PC_DER_SET);
    if (!put_content(&d, cek, in, in_len)) {
        if (d.failed)
            goto out_nomem;
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encrypt the envelope's content");
        goto out;
    }
    pc_der_wrap(&d, ed, PC_DER_SEQUENCE);
    pc_der_wrap(&d, ed, PC_DER_CTX0);
    pc_der_wrap(&d, ci, PC_DER_SEQUENCE);
    if (d.failed)
        goto out_nomem;
    *out = d.buf;
    *out_len = d.len;
    d.buf = NULL;
    goto out;
out_nomem:
    err = pc_fail(diag, PC_ERR_NOMEM, "out of memory for the envelope");
out:
    pc_der_free(&d);
    EC_KEY_free(eph);
    OPENSSL_cleanse(cek, sizeof(cek));
    OPENSSL_cleanse(kek, sizeof(kek));
    return err;
}
