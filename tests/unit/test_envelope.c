/*
 * test_envelope.c - CMS envelope to a device key: round trips, what the `openssl cms` command a
 * device runs does with it, the algorithms on the wire, and the refusals a caller sees.
 * Keys and certificates are made here with plain OpenSSL calls.
 */
/* EC_KEY: OpenSSL 3.0 writes explicit curve parameters only from a legacy key. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "envelope.h"
#include "pfx.h"

enum { RSA2048, RSA3072, P256, P384, N_DEVICE_KEYS };

typedef struct fixture {
    char dir[64];
    EVP_PKEY *device[N_DEVICE_KEYS];
    EVP_PKEY *leaf_key; /* what the PFX carries */
    unsigned char *pfx;
    size_t pfx_len;
} fixture_t;

static X509 *self_signed(EVP_PKEY *key, bool with_ski)
{
    X509 *x509 = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    assert_non_null(x509);
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"device", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_version(x509, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x509), 7), 1);
    assert_int_equal(X509_set_subject_name(x509, name), 1);
    assert_int_equal(X509_set_issuer_name(x509, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x509), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x509), 86400));
    assert_int_equal(X509_set_pubkey(x509, key), 1);
    if (with_ski) {
        /* OpenSSL's own "hash" method: the SKI a real device certificate would carry */
        X509V3_set_ctx(&ctx, x509, x509, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x509, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x509, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x509;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    X509 *cert;
    pc_diag_t diag = {{0}};
    pc_err_t err;

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->device[RSA2048] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx->device[RSA3072] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    fx->device[P256] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->device[P384] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    fx->leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    for (int i = 0; i < N_DEVICE_KEYS; i++)
        if (fx->device[i] == NULL)
            return -1;
    if (fx->leaf_key == NULL)
        return -1;
    cert = self_signed(fx->leaf_key, false);
    err = pc_pfx_build(fx->leaf_key, cert, NULL, "device-42", "", &fx->pfx, &fx->pfx_len, &diag);
    X509_free(cert);
    *state = fx;
    return err == PC_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    for (int i = 0; i < N_DEVICE_KEYS; i++)
        EVP_PKEY_free(fx->device[i]);
    EVP_PKEY_free(fx->leaf_key);
    OPENSSL_clear_free(fx->pfx, fx->pfx_len);
    free(fx);
    return 0;
}

/* seal_to seals the fixture's PFX to key's public half and returns the envelope DER. */
static unsigned char *seal_to(fixture_t *fx, EVP_PKEY *key, size_t *len)
{
    unsigned char *spki = NULL, *env = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    pc_diag_t diag = {{0}};

    assert_true(spki_len > 0);
    assert_int_equal(
        pc_envelope_seal(spki, (size_t)spki_len, fx->pfx, fx->pfx_len, &env, len, &diag), PC_OK);
    assert_non_null(env);
    OPENSSL_free(spki);
    return env;
}

static void write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *file = fopen(path, "wb");

    assert_non_null(file);
    assert_int_equal(fwrite(buf, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 20);

    assert_non_null(file);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, file);
    assert_int_equal(fclose(file), 0);
    return buf;
}

/* capture runs cmd and returns its stdout+stderr (caller frees); *status gets the exit code. */
static char *capture(const char *cmd, int *status)
{
    char full[1024];
    size_t cap = 65536, len = 0, n;
    char *text = malloc(cap);
    FILE *pipe;

    assert_non_null(text);
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    pipe = popen(full, "r");
    assert_non_null(pipe);
    while ((n = fread(text + len, 1, cap - 1 - len, pipe)) > 0)
        len += n;
    text[len] = '\0';
    *status = pclose(pipe);
    return text;
}

static void assert_round_trip(fixture_t *fx, EVP_PKEY *key)
{
    size_t env_len = 0, out_len = 0;
    unsigned char *env = seal_to(fx, key, &env_len);
    unsigned char *out = NULL;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_envelope_open(key, env, env_len, &out, &out_len, &diag), PC_OK);
    assert_int_equal(out_len, fx->pfx_len);
    assert_memory_equal(out, fx->pfx, fx->pfx_len);
    OPENSSL_clear_free(out, out_len);
    OPENSSL_free(env);
}

static void test_round_trip_rsa2048(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->device[RSA2048]);
}

static void test_round_trip_rsa3072(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->device[RSA3072]);
}

static void test_round_trip_p256(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->device[P256]);
}

static void test_round_trip_p384(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->device[P384]);
}

static void test_round_trip_empty_content(void **state)
{
    fixture_t *fx = *state;
    unsigned char *spki = NULL, *env = NULL, *out = NULL;
    int spki_len = i2d_PUBKEY(fx->device[P256], &spki);
    size_t env_len = 0, out_len = 1;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_envelope_seal(spki, (size_t)spki_len, NULL, 0, &env, &env_len, &diag),
                     PC_OK);
    assert_int_equal(pc_envelope_open(fx->device[P256], env, env_len, &out, &out_len, &diag),
                     PC_OK);
    assert_int_equal(out_len, 0);
    OPENSSL_clear_free(out, out_len);
    OPENSSL_free(env);
    OPENSSL_free(spki);
}

/* The device's view: the two commands the README gives it, and nothing else. */
static void assert_cli_opens(fixture_t *fx, EVP_PKEY *key, const char *name)
{
    size_t env_len = 0, p12_len = 0;
    unsigned char *env = seal_to(fx, key, &env_len), *p12;
    char env_path[128], key_path[128], p12_path[128], pem_path[128], cmd[1024];
    char *text;
    int status;
    FILE *file;
    EVP_PKEY *pem_key;

    snprintf(env_path, sizeof(env_path), "%s/%s.p7m", fx->dir, name);
    snprintf(key_path, sizeof(key_path), "%s/%s.key.pem", fx->dir, name);
    snprintf(p12_path, sizeof(p12_path), "%s/%s.p12", fx->dir, name);
    snprintf(pem_path, sizeof(pem_path), "%s/%s.pem", fx->dir, name);
    write_file(env_path, env, env_len);
    file = fopen(key_path, "w");
    assert_non_null(file);
    assert_int_equal(PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(file), 0);

    snprintf(cmd, sizeof(cmd), "openssl cms -decrypt -inform DER -in '%s' -inkey '%s' -out '%s'",
             env_path, key_path, p12_path);
    text = capture(cmd, &status);
    if (status != 0)
        print_error("%s\n%s\n", cmd, text);
    assert_int_equal(status, 0);
    free(text);
    p12 = read_file(p12_path, &p12_len);
    assert_int_equal(p12_len, fx->pfx_len);
    assert_memory_equal(p12, fx->pfx, fx->pfx_len);
    free(p12);

    snprintf(cmd, sizeof(cmd), "openssl pkcs12 -in '%s' -passin pass: -nodes -out '%s'", p12_path,
             pem_path);
    text = capture(cmd, &status);
    assert_int_equal(status, 0);
    free(text);
    file = fopen(pem_path, "r");
    assert_non_null(file);
    pem_key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    assert_non_null(pem_key);
    assert_int_equal(EVP_PKEY_eq(pem_key, fx->leaf_key), 1);
    EVP_PKEY_free(pem_key);
    OPENSSL_free(env);
}

static void test_cli_opens_rsa2048(void **state)
{
    fixture_t *fx = *state;
    assert_cli_opens(fx, fx->device[RSA2048], "rsa2048");
}

static void test_cli_opens_rsa3072(void **state)
{
    fixture_t *fx = *state;
    assert_cli_opens(fx, fx->device[RSA3072], "rsa3072");
}

static void test_cli_opens_p256(void **state)
{
    fixture_t *fx = *state;
    assert_cli_opens(fx, fx->device[P256], "p256");
}

static void test_cli_opens_p384(void **state)
{
    fixture_t *fx = *state;
    assert_cli_opens(fx, fx->device[P384], "p384");
}

/* print_envelope returns `openssl cms -cmsout -print` of env (caller frees). */
static char *print_envelope(fixture_t *fx, const unsigned char *env, size_t env_len)
{
    char path[128], cmd[512];
    char *text;
    int status;

    snprintf(path, sizeof(path), "%s/print.p7m", fx->dir);
    write_file(path, env, env_len);
    snprintf(cmd, sizeof(cmd), "openssl cms -cmsout -print -inform DER -in '%s'", path);
    text = capture(cmd, &status);
    assert_int_equal(status, 0);
    return text;
}

/* parse_single_recipient checks the envelope's shape and returns its one RecipientInfo. */
static CMS_RecipientInfo *parse_single_recipient(const unsigned char *env, size_t env_len,
                                                 CMS_ContentInfo **cms)
{
    const unsigned char *p = env;
    STACK_OF(CMS_RecipientInfo) * ris;
    STACK_OF(X509) * certs;

    *cms = d2i_CMS_ContentInfo(NULL, &p, (long)env_len);
    assert_non_null(*cms);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(*cms)), NID_pkcs7_enveloped);
    certs = CMS_get1_certs(*cms);
    assert_int_equal(sk_X509_num(certs) > 0, 0); /* no certificate travels with it */
    sk_X509_pop_free(certs, X509_free);
    ris = CMS_get0_RecipientInfos(*cms);
    assert_int_equal(sk_CMS_RecipientInfo_num(ris), 1);
    return sk_CMS_RecipientInfo_value(ris, 0);
}

static void test_rsa_envelope_uses_oaep_sha256_and_ski(void **state)
{
    fixture_t *fx = *state;
    EVP_PKEY *key = fx->device[RSA2048];
    size_t env_len = 0;
    unsigned char *env = seal_to(fx, key, &env_len);
    X509 *device_cert = self_signed(key, true);
    CMS_ContentInfo *cms = NULL;
    CMS_RecipientInfo *ri = parse_single_recipient(env, env_len, &cms);
    ASN1_OCTET_STRING *keyid = NULL;
    char *text;

    assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_TRANS);
    assert_int_equal(CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, NULL, NULL), 1);
    assert_non_null(keyid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(keyid, X509_get0_subject_key_id(device_cert)), 0);
    text = print_envelope(fx, env, env_len);
    assert_non_null(strstr(text, "pkcs7-envelopedData"));
    assert_non_null(strstr(text, "aes-256-cbc"));
    assert_non_null(strstr(text, "rsaesOaep"));
    assert_non_null(strstr(text, ":sha256"));
    assert_non_null(strstr(text, ":mgf1"));
    assert_null(strstr(text, ":sha1"));
    assert_non_null(strstr(text, "subjectKeyIdentifier"));
    free(text);
    CMS_ContentInfo_free(cms);
    X509_free(device_cert);
    OPENSSL_free(env);
}

static void assert_ecdh_envelope(fixture_t *fx, EVP_PKEY *key)
{
    size_t env_len = 0;
    unsigned char *env = seal_to(fx, key, &env_len);
    X509 *device_cert = self_signed(key, true);
    CMS_ContentInfo *cms = NULL;
    CMS_RecipientInfo *ri = parse_single_recipient(env, env_len, &cms);
    STACK_OF(CMS_RecipientEncryptedKey) * reks;
    char *text;

    assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_AGREE);
    reks = CMS_RecipientInfo_kari_get0_reks(ri);
    assert_int_equal(sk_CMS_RecipientEncryptedKey_num(reks), 1);
    /* a device holding a real certificate with the usual SKI is the one named */
    assert_int_equal(CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, 0),
                                                        device_cert),
                     0);
    text = print_envelope(fx, env, env_len);
    assert_non_null(strstr(text, "pkcs7-envelopedData"));
    assert_non_null(strstr(text, "aes-256-cbc"));
    assert_non_null(strstr(text, "dhSinglePass-stdDH-sha256kdf-scheme"));
    assert_non_null(strstr(text, "id-aes256-wrap"));
    assert_non_null(strstr(text, "d.rKeyId"));
    assert_non_null(strstr(text, "subjectKeyIdentifier"));
    free(text);
    CMS_ContentInfo_free(cms);
    X509_free(device_cert);
    OPENSSL_free(env);
}

static void test_p256_envelope_uses_ecdh_sha256kdf_aes256wrap(void **state)
{
    fixture_t *fx = *state;
    assert_ecdh_envelope(fx, fx->device[P256]);
}

static void test_p384_envelope_uses_ecdh_sha256kdf_aes256wrap(void **state)
{
    fixture_t *fx = *state;
    assert_ecdh_envelope(fx, fx->device[P384]);
}

static void test_two_seals_differ(void **state)
{
    fixture_t *fx = *state;
    size_t len_a = 0, len_b = 0;
    unsigned char *a = seal_to(fx, fx->device[P256], &len_a);
    unsigned char *b = seal_to(fx, fx->device[P256], &len_b);

    assert_true(len_a != len_b || memcmp(a, b, len_a) != 0);
    OPENSSL_free(a);
    OPENSSL_free(b);
}

static void assert_cannot_open(EVP_PKEY *key, const unsigned char *env, size_t env_len,
                               const char *why)
{
    unsigned char *out = NULL;
    size_t out_len = 0;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_envelope_open(key, env, env_len, &out, &out_len, &diag), PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, "this key does not open the envelope"));
    assert_non_null(strstr(diag.msg, why));
    assert_null(out);
    assert_int_equal(out_len, 0);
}

static void test_wrong_device_key_cannot_open(void **state)
{
    fixture_t *fx = *state;
    EVP_PKEY *other_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    size_t rsa_len = 0, ec_len = 0;
    unsigned char *rsa_env = seal_to(fx, fx->device[RSA2048], &rsa_len);
    unsigned char *ec_env = seal_to(fx, fx->device[P256], &ec_len);

    assert_non_null(other_p256);
    assert_cannot_open(fx->device[RSA3072], rsa_env, rsa_len, "no recipient for this key");
    assert_cannot_open(fx->device[P256], rsa_env, rsa_len, "no recipient for this key");
    assert_cannot_open(other_p256, ec_env, ec_len, "no recipient for this key");
    assert_cannot_open(fx->device[P384], ec_env, ec_len, "no recipient for this key");
    assert_cannot_open(fx->device[RSA2048], ec_env, ec_len, "no recipient for this key");
    EVP_PKEY_free(other_p256);
    OPENSSL_free(rsa_env);
    OPENSSL_free(ec_env);
}

/*
 * OpenSSL's RSA countermeasure, when no recipient is named, decrypts with a random key and lets
 * the content padding check decide, which passes about once in 220 tries and yields garbage.
 * With the right key but a tampered encrypted key, every try must be refused.
 */
static void test_tampered_rsa_key_never_yields_garbage(void **state)
{
    fixture_t *fx = *state;
    size_t env_len = 0, at = 0;
    unsigned char *env = seal_to(fx, fx->device[RSA2048], &env_len);
    static const unsigned char enc_key_head[] = {0x04, 0x82, 0x01, 0x00}; /* 256-byte string */

    for (size_t i = 0; i + sizeof(enc_key_head) < env_len && at == 0; i++)
        if (memcmp(env + i, enc_key_head, sizeof(enc_key_head)) == 0)
            at = i + sizeof(enc_key_head);
    assert_true(at > 0);
    /* 1024 tries: a random-key "success" (about 1 in 220) would show up with 99% odds */
    for (size_t i = 0; i < 1024; i++) {
        unsigned char flip = (unsigned char)(1u << (i / 256 + 1));

        env[at + i % 256] ^= flip;
        assert_cannot_open(fx->device[RSA2048], env, env_len,
                           "does not match or the envelope is corrupt");
        env[at + i % 256] ^= flip;
    }
    OPENSSL_free(env);
}

/* An RSA envelope made the old way (PKCS#1 v1.5) is refused, not decrypted with the
 * Bleichenbacher countermeasure switched off. */
static void test_pkcs1v15_envelope_is_not_supported(void **state)
{
    fixture_t *fx = *state;
    EVP_PKEY *key = fx->device[RSA2048];
    X509 *device_cert = self_signed(key, true);
    STACK_OF(X509) *recips = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(fx->pfx, (int)fx->pfx_len);
    CMS_ContentInfo *cms;
    unsigned char *env = NULL, *out = NULL;
    int env_len;
    size_t out_len = 0;
    pc_diag_t diag = {{0}};

    assert_non_null(recips);
    assert_non_null(bio);
    assert_true(sk_X509_push(recips, device_cert) > 0);
    cms = CMS_encrypt(recips, bio, EVP_aes_256_cbc(), CMS_BINARY | CMS_USE_KEYID);
    assert_non_null(cms);
    env_len = i2d_CMS_ContentInfo(cms, &env);
    assert_true(env_len > 0);
    assert_int_equal(pc_envelope_open(key, env, (size_t)env_len, &out, &out_len, &diag),
                     PC_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(diag.msg, "RSA-OAEP"));
    assert_null(out);
    OPENSSL_free(env);
    CMS_ContentInfo_free(cms);
    BIO_free(bio);
    sk_X509_free(recips);
    X509_free(device_cert);
}

static void assert_bad_message(EVP_PKEY *key, const unsigned char *env, size_t env_len)
{
    unsigned char *out = NULL;
    size_t out_len = 0;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_envelope_open(key, env, env_len, &out, &out_len, &diag),
                     PC_ERR_BAD_MESSAGE);
    assert_true(strlen(diag.msg) > 0);
    assert_null(out);
}

static void test_corrupt_envelope_is_bad_message(void **state)
{
    fixture_t *fx = *state;
    EVP_PKEY *key = fx->device[P256];
    size_t env_len = 0;
    unsigned char *env = seal_to(fx, key, &env_len), *longer, *data_der = NULL;
    static const unsigned char garbage[] = "definitely not CMS";
    CMS_ContentInfo *data;
    BIO *bio = BIO_new_mem_buf("hello", 5);
    int data_len;

    assert_bad_message(key, garbage, sizeof(garbage));
    assert_bad_message(key, env, 0);
    assert_bad_message(key, env, env_len / 2);
    assert_bad_message(key, env, env_len - 1);
    longer = OPENSSL_malloc(env_len + 2);
    assert_non_null(longer);
    memcpy(longer, env, env_len);
    longer[env_len] = 0x05;
    longer[env_len + 1] = 0x00;
    assert_bad_message(key, longer, env_len + 2);
    OPENSSL_free(longer);
    env[0] ^= 0xff;
    assert_bad_message(key, env, env_len);
    /* well-formed CMS, but not an envelope */
    assert_non_null(bio);
    data = CMS_data_create(bio, CMS_BINARY);
    assert_non_null(data);
    data_len = i2d_CMS_ContentInfo(data, &data_der);
    assert_true(data_len > 0);
    assert_bad_message(key, data_der, (size_t)data_len);
    OPENSSL_free(data_der);
    CMS_ContentInfo_free(data);
    BIO_free(bio);
    OPENSSL_free(env);
}

static void assert_refused(const unsigned char *spki, size_t spki_len, const char *what)
{
    unsigned char *env = NULL;
    size_t env_len = 0;
    pc_diag_t diag = {{0}};

    assert_int_equal(
        pc_envelope_seal(spki, spki_len, (const unsigned char *)"x", 1, &env, &env_len, &diag),
        PC_ERR_INVALID_PARAM);
    if (strstr(diag.msg, what) == NULL)
        print_error("diag: %s\n", diag.msg);
    assert_non_null(strstr(diag.msg, what));
    assert_null(env);
}

static void assert_key_refused(EVP_PKEY *key, const char *what)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    pc_diag_t diag = {{0}};
    unsigned char *env = NULL;
    size_t env_len = 0;

    assert_true(spki_len > 0);
    assert_refused(spki, (size_t)spki_len, what);
    assert_int_equal(pc_envelope_seal(spki, (size_t)spki_len, (const unsigned char *)"x", 1, &env,
                                      &env_len, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "accepted: RSA of 2048 bits or more, EC P-256 or EC P-384"));
    OPENSSL_free(spki);
    EVP_PKEY_free(key);
}

static void test_weak_or_unsupported_device_keys_are_refused(void **state)
{
    assert_key_refused(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), "RSA-1024");
    assert_key_refused(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "ED25519");
    assert_key_refused(EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), "X25519");
    assert_key_refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"), "secp521r1");
    assert_key_refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"), "secp256k1");
}

static void test_garbage_spki_is_refused(void **state)
{
    fixture_t *fx = *state;
    static const unsigned char garbage[] = "not a public key";
    unsigned char *spki = NULL, *longer;
    int spki_len = i2d_PUBKEY(fx->device[P256], &spki);

    assert_refused(garbage, sizeof(garbage), "not a DER SubjectPublicKeyInfo");
    assert_refused(garbage, 0, "missing");
    assert_refused(spki, (size_t)spki_len - 1, "not a DER SubjectPublicKeyInfo");
    longer = OPENSSL_malloc((size_t)spki_len + 1);
    assert_non_null(longer);
    memcpy(longer, spki, (size_t)spki_len);
    longer[spki_len] = 0;
    assert_refused(longer, (size_t)spki_len + 1, "after its SubjectPublicKeyInfo");
    OPENSSL_free(longer);
    OPENSSL_free(spki);
}

/* A P-256 key whose point is off the curve, or the point at infinity, is refused when the
 * device key is read, not when the envelope is sealed: the envelope's ECDH does not check the
 * point again. */
static void test_invalid_ec_points_are_refused(void **state)
{
    fixture_t *fx = *state;
    /* SubjectPublicKeyInfo { { id-ecPublicKey, prime256v1 }, BIT STRING { 0x00: infinity } } */
    static const unsigned char infinity[] = {0x30, 0x19, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x02, 0x00, 0x00};
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(fx->device[P256], &spki);

    assert_true(spki_len > 65);
    assert_refused(infinity, sizeof(infinity), "not a valid point on P-256");
    spki[spki_len - 1] ^= 0x01; /* the last byte of y: the point leaves the curve */
    assert_refused(spki, (size_t)spki_len, "not a valid point on P-256");
    OPENSSL_free(spki);
}

/* An EC key that spells out P-256's parameters instead of naming the curve is refused by name
 * (RFC 5480 asks for the named curve). */
static void test_explicit_curve_parameters_are_refused(void **state)
{
    fixture_t *fx = *state;
    EC_KEY *ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(fx->device[P256]));
    unsigned char *spki = NULL;
    int spki_len;

    assert_non_null(ec);
    EC_KEY_set_asn1_flag(ec, OPENSSL_EC_EXPLICIT_CURVE);
    spki_len = i2d_EC_PUBKEY(ec, &spki);
    assert_true(spki_len > 0);
    assert_refused(spki, (size_t)spki_len, "explicit curve parameters");
    OPENSSL_free(spki);
    EC_KEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_rsa2048),
        cmocka_unit_test(test_round_trip_rsa3072),
        cmocka_unit_test(test_round_trip_p256),
        cmocka_unit_test(test_round_trip_p384),
        cmocka_unit_test(test_round_trip_empty_content),
        cmocka_unit_test(test_cli_opens_rsa2048),
        cmocka_unit_test(test_cli_opens_rsa3072),
        cmocka_unit_test(test_cli_opens_p256),
        cmocka_unit_test(test_cli_opens_p384),
        cmocka_unit_test(test_rsa_envelope_uses_oaep_sha256_and_ski),
        cmocka_unit_test(test_p256_envelope_uses_ecdh_sha256kdf_aes256wrap),
        cmocka_unit_test(test_p384_envelope_uses_ecdh_sha256kdf_aes256wrap),
        cmocka_unit_test(test_two_seals_differ),
        cmocka_unit_test(test_wrong_device_key_cannot_open),
        cmocka_unit_test(test_tampered_rsa_key_never_yields_garbage),
        cmocka_unit_test(test_pkcs1v15_envelope_is_not_supported),
        cmocka_unit_test(test_corrupt_envelope_is_bad_message),
        cmocka_unit_test(test_weak_or_unsupported_device_keys_are_refused),
        cmocka_unit_test(test_garbage_spki_is_refused),
        cmocka_unit_test(test_invalid_ec_points_are_refused),
        cmocka_unit_test(test_explicit_curve_parameters_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
