/*
 * pfx_build.c - writes the PKCS#12 (PFX) a device imports, by hand: the same structure
 * PKCS12_create_ex and PKCS12_set_mac write for our choices, without their object trees.
 *
 *   PFX { 3, data { AuthenticatedSafe }, MacData (HMAC-SHA256, PKCS#12 KDF) }
 *   AuthenticatedSafe { data { SafeContents { certBag (friendlyName, localKeyID), chain... } },
 *                       data { SafeContents { pkcs8ShroudedKeyBag (friendlyName, localKeyID) } } }
 *   key bag: EncryptedPrivateKeyInfo, PBES2 { PBKDF2 (salt, iterations, hmacWithSHA256),
 *                                             AES-256-CBC (iv) }
 *
 * Modern algorithms only (every current platform imports them); certificates are public, so
 * their bag is not encrypted (as Windows' own exports of a chain do). The connector seals the
 * PFX in a CMS envelope to the device key, so the password is usually empty; it still opens with
 * `openssl pkcs12 -passin pass:` (test_pfx checks this file with OpenSSL's parser and command).
 *
 * Why by hand: PKCS12_create_ex built, for one key and two certificates, an ASN.1 object tree
 * of bags, attributes and PBE parameters, looked its algorithms up by OID inside for each
 * (nothing can hand it the ones fetched once), and encoded the tree; with the MAC that was a
 * quarter of the engine's CPU per P-256 request after the envelope's cut (perf, pkcs-bench-engine
 * --stages). The cryptography it needs is one PBKDF2 of one iteration, AES on about 140 bytes,
 * the PKCS#12 KDF and one HMAC.
 * Pool threads, several at once: the algorithms are fetched under pthread_once and only read.
 */
#include "der_int.h"
#include "pfx.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

/*
 * PBKDF2 and MAC iterations. An iteration count stretches a password against guessing; an empty
 * password has nothing to stretch (the real protection is the CMS envelope to the device key),
 * so it gets one iteration, which saves two 2048-round derivations per issuance (about 40% of
 * an ECDSA request's CPU). A real password gets OpenSSL's own PKCS12_DEFAULT_ITER.
 */
#define PFX_ITER 2048
#define PFX_ITER_NO_PASSWORD 1
#define SALT_LEN 8 /* PKCS5_SALT_LEN, what OpenSSL writes for the key and the MAC */
#define KEY_LEN 32 /* the key bag's AES-256 key (PC_DER_AES_KEY_LEN) and HMAC-SHA256's */
#define KEY_ID_LEN 20

/* ---- DER that never changes (full TLVs; `openssl asn1parse` names them) ------------------- */

/* 1.2.840.113549.1.12.10.1.3 certBag */
static const unsigned char oid_cert_bag[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                             0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03};
/* 1.2.840.113549.1.12.10.1.2 pkcs8ShroudedKeyBag */
static const unsigned char oid_shrouded_key_bag[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                     0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02};
/* 1.2.840.113549.1.9.22.1 x509Certificate */
static const unsigned char oid_x509_certificate[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86,
                                                     0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01};
/* 1.2.840.113549.1.9.20 friendlyName */
static const unsigned char oid_friendly_name[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                  0xf7, 0x0d, 0x01, 0x09, 0x14};
/* 1.2.840.113549.1.9.21 localKeyID */
static const unsigned char oid_local_key_id[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                 0xf7, 0x0d, 0x01, 0x09, 0x15};
/* 1.2.840.113549.1.5.13 PBES2 */
static const unsigned char oid_pbes2[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                          0xf7, 0x0d, 0x01, 0x05, 0x0d};
/* 1.2.840.113549.1.5.12 PBKDF2 */
static const unsigned char oid_pbkdf2[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                           0xf7, 0x0d, 0x01, 0x05, 0x0c};
/* AlgorithmIdentifier { 1.2.840.113549.2.9 hmacWithSHA256, NULL }: PBKDF2's PRF */
static const unsigned char alg_hmac_sha256[] = {0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                                0x86, 0xf7, 0x0d, 0x02, 0x09, 0x05, 0x00};
/* AlgorithmIdentifier { 2.16.840.1.101.3.4.2.1 sha256, NULL }: the MAC's digest */
static const unsigned char alg_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00};
static const unsigned char version_3[] = {0x02, 0x01, 0x03};

/* ---- the algorithms, fetched once ------------------------------------------------------- */

static EVP_MD *sha256, *sha1;
static EVP_KDF *pbkdf2;
/* HMAC-SHA256 without a key, copied for each MAC: a MAC context given its digest by name looks
 * the digest up again at every init, and HMAC() fetches HMAC itself for every call. */
static EVP_MAC_CTX *hmac_sha256;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    pbkdf2 = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA2-256", 0),
        OSSL_PARAM_END,
    };
    hmac_sha256 = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac); /* the context holds its own reference */
    if (hmac_sha256 != NULL && EVP_MAC_CTX_set_params(hmac_sha256, params) != 1) {
        EVP_MAC_CTX_free(hmac_sha256);
        hmac_sha256 = NULL;
    }
}

/* hmac writes HMAC-SHA256 under key of data and then of more (NULL for none) into out. */
static bool hmac(const void *key, size_t key_len, const unsigned char *data, size_t len,
                 const unsigned char *more, size_t more_len, unsigned char out[KEY_LEN])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(hmac_sha256);
    size_t n = 0;
    bool ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, NULL) == 1 &&
              EVP_MAC_update(ctx, data, len) == 1 &&
              (more == NULL || EVP_MAC_update(ctx, more, more_len) == 1) &&
              EVP_MAC_final(ctx, out, &n, KEY_LEN) == 1 && n == KEY_LEN;

    EVP_MAC_CTX_free(ctx);
    return ok;
}

/* ---- the parts -------------------------------------------------------------------------- */

/* What every bag of the key's pair carries. */
typedef struct names {
    unsigned char *bmp; /* the friendly name in UTF-16BE (BMPString), NULL for none */
    int bmp_len;
    unsigned char key_id[KEY_ID_LEN]; /* SHA-1 of the certificate, as OpenSSL writes it */
} names_t;

/* put_attributes writes the bag's attributes: SET OF { friendlyName, localKeyID }, in DER's
 * order (OpenSSL sorts them the same way). */
static void put_attributes(pc_der_t *d, const names_t *names)
{
    size_t set = d->len, at;
    size_t n = 0;

    if (names->bmp != NULL) {
        at = d->len;
        pc_der_put(d, oid_friendly_name, sizeof(oid_friendly_name));
        size_t values = d->len;
        pc_der_tlv(d, PC_DER_BMP_STRING, names->bmp, (size_t)names->bmp_len);
        pc_der_wrap(d, values, PC_DER_SET);
        pc_der_wrap(d, at, PC_DER_SEQUENCE);
        n++;
    }
    at = d->len;
    pc_der_put(d, oid_local_key_id, sizeof(oid_local_key_id));
    size_t values = d->len;
    pc_der_tlv(d, PC_DER_OCTET_STRING, names->key_id, KEY_ID_LEN);
    pc_der_wrap(d, values, PC_DER_SET);
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    n++;
    pc_der_sort_set(d, set, n);
    pc_der_wrap(d, set, PC_DER_SET);
}

/* put_cert_bag writes a certBag holding cert's DER, with the attributes when names is given. */
static void put_cert_bag(pc_der_t *d, const unsigned char *cert, size_t cert_len,
                         const names_t *names)
{
    size_t bag = d->len, at;

    pc_der_put(d, oid_cert_bag, sizeof(oid_cert_bag));
    at = d->len; /* [0] { CertBag { x509Certificate, [0] { OCTET STRING } } } */
    pc_der_put(d, oid_x509_certificate, sizeof(oid_x509_certificate));
    size_t value = d->len;
    pc_der_tlv(d, PC_DER_OCTET_STRING, cert, cert_len);
    pc_der_wrap(d, value, PC_DER_CTX0);
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    pc_der_wrap(d, at, PC_DER_CTX0);
    if (names != NULL)
        put_attributes(d, names);
    pc_der_wrap(d, bag, PC_DER_SEQUENCE);
}

/* wrap_data makes what was written since start (a SafeContents or the AuthenticatedSafe) the
 * content of a ContentInfo of type data: SEQUENCE { data, [0] { OCTET STRING } }. */
static void wrap_data(pc_der_t *d, size_t start)
{
    pc_der_wrap(d, start, PC_DER_OCTET_STRING);
    pc_der_wrap(d, start, PC_DER_CTX0);
    pc_der_insert(d, start, pc_der_oid_data, sizeof(pc_der_oid_data));
    pc_der_wrap(d, start, PC_DER_SEQUENCE);
}

/* unconst hands a read-only input to an OSSL_PARAM, whose pointer is not const because the same
 * type carries outputs; the KDF only reads it. */
static void *unconst(const void *p)
{
    void *q;

    memcpy(&q, &p, sizeof(q));
    return q;
}

/* pbkdf2_key derives the key bag's AES key from password and salt. With one iteration and a
 * key as long as the digest, PBKDF2 (RFC 8018 5.2) is one HMAC of the salt and the block
 * number 1 under the password; the KDF would look its digest up by name for every key. */
static bool pbkdf2_key(const char *password, const unsigned char *salt, unsigned iter,
                       unsigned char key[KEY_LEN])
{
    static const unsigned char block_1[4] = {0, 0, 0, 1};
    if (iter == 1)
        return hmac(password, strlen(password), salt, SALT_LEN, block_1, sizeof(block_1), key);

    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(pbkdf2);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, unconst(password),
                                          strlen(password)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, unconst(salt), SALT_LEN),
        OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA2-256", 0),
        OSSL_PARAM_END,
    };
    bool ok = ctx != NULL && EVP_KDF_derive(ctx, key, KEY_LEN, params) == 1;

    EVP_KDF_CTX_free(ctx);
    return ok;
}

/* put_key_bag writes the pkcs8ShroudedKeyBag: key's PKCS#8, encrypted with PBES2. */
static bool put_key_bag(pc_der_t *d, EVP_PKEY *key, const char *password, unsigned iter,
                        const names_t *names)
{
    unsigned char salt[SALT_LEN], iv[PC_DER_AES_IV_LEN], aes[PC_DER_AES_KEY_LEN];
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    unsigned char *plain = NULL;
    int plain_len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, &plain) : 0;
    size_t bag = d->len, value, params;
    bool ok = false;

    PKCS8_PRIV_KEY_INFO_free(p8); /* wipes the key's copy */
    if (plain_len <= 0 || RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1 ||
        !pbkdf2_key(password, salt, iter, aes))
        goto out;
    pc_der_put(d, oid_shrouded_key_bag, sizeof(oid_shrouded_key_bag));
    /* [0] { EncryptedPrivateKeyInfo { { PBES2, { { PBKDF2, { salt, iterations, prf } },
     *                                           { aes256-CBC, iv } } }, OCTET STRING } } */
    value = d->len;
    pc_der_put(d, oid_pbes2, sizeof(oid_pbes2));
    params = d->len;
    pc_der_put(d, oid_pbkdf2, sizeof(oid_pbkdf2));
    size_t kdf_params = d->len;
    pc_der_tlv(d, PC_DER_OCTET_STRING, salt, sizeof(salt));
    pc_der_uint(d, iter);
    pc_der_put(d, alg_hmac_sha256, sizeof(alg_hmac_sha256));
    pc_der_wrap(d, kdf_params, PC_DER_SEQUENCE);
    pc_der_wrap(d, params, PC_DER_SEQUENCE); /* keyDerivationFunc */
    pc_der_aes256_cbc_alg(d, iv);            /* encryptionScheme */
    pc_der_wrap(d, params, PC_DER_SEQUENCE); /* PBES2's parameters */
    pc_der_wrap(d, value, PC_DER_SEQUENCE);  /* encryptionAlgorithm */
    if (!pc_der_aes256_cbc(d, PC_DER_OCTET_STRING, aes, iv, plain, (size_t)plain_len))
        goto out;
    pc_der_wrap(d, value, PC_DER_SEQUENCE);
    pc_der_wrap(d, value, PC_DER_CTX0);
    put_attributes(d, names);
    pc_der_wrap(d, bag, PC_DER_SEQUENCE);
    ok = !d->failed;
out:
    OPENSSL_clear_free(plain, plain_len > 0 ? (size_t)plain_len : 0);
    OPENSSL_cleanse(aes, sizeof(aes));
    return ok;
}

/* mac_key derives the MAC's key with the PKCS#12 KDF (RFC 7292 B.2, ID 3, SHA-256). For a key
 * as long as the digest (n = u = 32) the KDF is the digest, taken iter times, of 64 bytes of
 * the ID, the salt repeated to 64 bytes and the password repeated to a multiple of 64 bytes,
 * the password being a BMPString with its two-byte terminator (as OpenSSL and Windows take
 * it). PKCS12_key_gen_utf8_ex fetched its KDF, and the KDF its digest, for every key. */
static bool mac_key(const char *password, const unsigned char salt[SALT_LEN], unsigned iter,
                    unsigned char key[KEY_LEN])
{
    enum { V = 64 }; /* SHA-256's block */
    unsigned char block[V];
    unsigned char *bmp = NULL;
    int bmp_len = 0;
    unsigned len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && OPENSSL_utf82uni(password, -1, &bmp, &bmp_len) != NULL &&
              bmp_len > 0 && EVP_DigestInit_ex(ctx, sha256, NULL) == 1;

    memset(block, PKCS12_MAC_ID, V);
    ok = ok && EVP_DigestUpdate(ctx, block, V) == 1;
    for (size_t i = 0; i < V; i++)
        block[i] = salt[i % SALT_LEN];
    ok = ok && EVP_DigestUpdate(ctx, block, V) == 1;
    for (size_t at = 0; ok && at < (size_t)bmp_len; at += V) {
        for (size_t i = 0; i < V; i++)
            block[i] = bmp[(at + i) % (size_t)bmp_len];
        ok = EVP_DigestUpdate(ctx, block, V) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, key, &len) == 1 && len == KEY_LEN;
    for (unsigned i = 1; ok && i < iter; i++)
        ok = EVP_DigestInit_ex(ctx, sha256, NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, KEY_LEN) == 1 && EVP_DigestFinal_ex(ctx, key, &len) == 1;
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_clear_free(bmp, bmp_len > 0 ? (size_t)bmp_len : 0);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* put_mac writes MacData over the AuthenticatedSafe's bytes (content, content_len): HMAC-SHA256
 * with the PKCS#12 KDF's key from the password. */
static bool put_mac(pc_der_t *d, size_t content, size_t content_len, const char *password,
                    unsigned iter)
{
    unsigned char salt[SALT_LEN], key[KEY_LEN], mac[KEY_LEN];
    size_t at = d->len;
    bool ok = RAND_bytes(salt, sizeof(salt)) == 1 && mac_key(password, salt, iter, key) &&
              hmac(key, KEY_LEN, d->buf + content, content_len, NULL, 0, mac);

    OPENSSL_cleanse(key, sizeof(key));
    if (!ok)
        return false;
    size_t digest_info = d->len;
    pc_der_put(d, alg_sha256, sizeof(alg_sha256));
    pc_der_tlv(d, PC_DER_OCTET_STRING, mac, sizeof(mac));
    pc_der_wrap(d, digest_info, PC_DER_SEQUENCE);
    pc_der_tlv(d, PC_DER_OCTET_STRING, salt, sizeof(salt));
    if (iter != 1) /* iterations INTEGER DEFAULT 1: DER leaves the default out */
        pc_der_uint(d, iter);
    pc_der_wrap(d, at, PC_DER_SEQUENCE);
    return !d->failed;
}

/* ---- the PFX ---------------------------------------------------------------------------- */

/* same_key tells whether key is the private half of cert's public key. A certificate the local
 * CA just made holds this very key object (X509_set_pubkey keeps a reference), which the engine
 * has checked already: nothing to compare. Otherwise the encodings are compared, then OpenSSL's
 * comparison when they differ (an imported PFX's certificate may encode the same key
 * otherwise). */
static bool same_key(EVP_PKEY *key, X509 *cert)
{
    if (X509_get0_pubkey(cert) == key)
        return true;
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_PUBKEY(key, &a);
    int blen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &b);
    bool same = alen > 0 && alen == blen && memcmp(a, b, (size_t)alen) == 0;

    OPENSSL_free(a);
    OPENSSL_free(b);
    if (!same) {
        same = X509_check_private_key(cert, key) == 1;
        ERR_clear_error();
    }
    return same;
}

/* cert_der encodes cert; *der is the caller's (OPENSSL_free). */
static int cert_der(X509 *cert, unsigned char **der)
{
    *der = NULL;
    return i2d_X509(cert, der);
}

static pc_err_t names_of(const unsigned char *cert, size_t cert_len, const char *friendly_name,
                         names_t *names, pc_diag_t *diag)
{
    if (EVP_Digest(cert, cert_len, names->key_id, NULL, sha1, NULL) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not hash the certificate for the PFX");
    if (friendly_name == NULL)
        return PC_OK;
    /* OPENSSL_utf82uni takes text that is not UTF-8 as Latin-1: only memory can fail it */
    if (OPENSSL_utf82uni(friendly_name, -1, &names->bmp, &names->bmp_len) == NULL ||
        names->bmp_len < 2)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory for the PFX's friendly name");
    names->bmp_len -= 2; /* OPENSSL_utf82uni adds a terminator; the attribute has none */
    return PC_OK;
}

/* put_safes writes the AuthenticatedSafe: the certificates in clear, then the key. */
static pc_err_t put_safes(pc_der_t *d, EVP_PKEY *key, const unsigned char *cert, size_t cert_len,
                          STACK_OF(X509) * chain, const names_t *names, const char *password,
                          unsigned iter, pc_diag_t *diag)
{
    size_t certs = d->len;

    put_cert_bag(d, cert, cert_len, names);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        unsigned char *der = NULL;
        int len = cert_der(sk_X509_value(chain, i), &der);
        if (len <= 0)
            return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the chain for the PFX");
        put_cert_bag(d, der, (size_t)len, NULL);
        OPENSSL_free(der);
    }
    pc_der_wrap(d, certs, PC_DER_SEQUENCE);
    wrap_data(d, certs);
    size_t keys = d->len;
    if (!put_key_bag(d, key, password, iter, names))
        return d->failed ? pc_fail(diag, PC_ERR_NOMEM, "out of memory for the PFX")
                         : pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encrypt the PFX's key");
    pc_der_wrap(d, keys, PC_DER_SEQUENCE);
    wrap_data(d, keys);
    return PC_OK;
}

pc_err_t pc_pfx_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *friendly_name,
                      const char *password, unsigned char **der, size_t *len, pc_diag_t *diag)
{
    unsigned char *leaf = NULL;
    int leaf_len;

    if (cert == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pc_pfx_build needs a certificate");
    if ((leaf_len = cert_der(cert, &leaf)) <= 0)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the certificate for the PFX");
    pc_err_t err = pc_pfx_build_encoded(key, cert, leaf, (size_t)leaf_len, chain, friendly_name,
                                        password, der, len, diag);
    OPENSSL_free(leaf);
    return err;
}

pc_err_t pc_pfx_build_encoded(EVP_PKEY *key, X509 *cert, const unsigned char *leaf, size_t leaf_len,
                              STACK_OF(X509) * chain, const char *friendly_name,
                              const char *password, unsigned char **der, size_t *len,
                              pc_diag_t *diag)
{
    pc_der_t d = {.secret = true};
    names_t names = {0};
    pc_err_t err;

    if (key == NULL || cert == NULL || leaf == NULL || leaf_len == 0 || password == NULL ||
        der == NULL || len == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_pfx_build needs a key, a certificate, a "
                       "password (may be empty) and an output");
    *der = NULL;
    *len = 0;
    unsigned iter = password[0] == '\0' ? PFX_ITER_NO_PASSWORD : PFX_ITER;
    pthread_once(&algs_once, algs_fetch);
    if (sha256 == NULL || sha1 == NULL || pbkdf2 == NULL || hmac_sha256 == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "SHA-256, SHA-1, HMAC or PBKDF2 is not available from OpenSSL's "
                           "providers; check the OpenSSL configuration");
    if (!same_key(key, cert))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the private key does not belong to the certificate given for the PFX");
    if ((err = names_of(leaf, leaf_len, friendly_name, &names, diag)) != PC_OK)
        goto out;
    /* room for all of it at once: the buffer holds the key, and is not copied while it grows */
    if (!pc_der_reserve(&d, 4096 + 2 * leaf_len + 2048 * (size_t)sk_X509_num(chain))) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory for the PFX");
        goto out;
    }
    pc_der_put(&d, version_3, sizeof(version_3));
    size_t safes = d.len;
    if ((err = put_safes(&d, key, leaf, leaf_len, chain, &names, password, iter, diag)) != PC_OK)
        goto out;
    pc_der_wrap(&d, safes, PC_DER_SEQUENCE);
    size_t safes_len = d.len - safes;
    wrap_data(&d, safes);
    /* the MAC covers the AuthenticatedSafe's bytes: the end of the ContentInfo just written */
    if (!d.failed && !put_mac(&d, d.len - safes_len, safes_len, password, iter)) {
        err = d.failed
                  ? pc_fail(diag, PC_ERR_NOMEM, "out of memory for the PFX")
                  : pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not add the SHA-256 MAC to the PFX");
        goto out;
    }
    pc_der_wrap(&d, 0, PC_DER_SEQUENCE);
    if (d.failed) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory for the PFX");
        goto out;
    }
    *der = d.buf;
    *len = d.len;
    d.buf = NULL;
out:
    pc_der_free(&d);
    OPENSSL_free(names.bmp);
    return err;
}
