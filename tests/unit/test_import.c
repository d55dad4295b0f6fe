/*
 * test_import.c - IMPORT_PFX in process: an administrator's S/MIME PFX (made here with plain
 * OpenSSL calls) and its password RSA-OAEP-encrypted to the import key go in; what a device
 * would notice comes out: the envelope opens with the device key and holds the very certificate
 * and key that were uploaded. Bad uploads fail with a clear error that never shows the password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "envelope.h"
#include "import.h"
#include "pfx.h"
#include "clock.h"
#include "result.h"

#define PASSWORD "Ann's S/MIME pfx: 7#kq!"
#define FRIENDLY_NAME "Ann S/MIME"
#define KEY_ID "import-1"
#define DAY (24L * 3600)

typedef struct fixture {
    char dir[64];
    char key_path[128];
    EVP_PKEY *import_key; /* RSA-2048: the connector's import key */
    EVP_PKEY *other_key;  /* RSA-2048: somebody else's */
    EVP_PKEY *dev_ec;     /* device keys */
    EVP_PKEY *dev_rsa;
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    EVP_PKEY *leaf_rsa; /* keys of the uploaded certificates */
    EVP_PKEY *leaf_ec;
    pc_import_t *imp;
} fixture_t;

/* What a certificate made by make_leaf looks like. */
typedef struct leaf_spec {
    long not_before; /* seconds from now */
    long not_after;
    const char *eku; /* extendedKeyUsage value, or NULL for none */
    const char *ku;  /* keyUsage value, or NULL for none */
} leaf_spec_t;

static const leaf_spec_t smime = {-DAY, 30 * DAY, "emailProtection",
                                  "critical,digitalSignature,keyEncipherment"};

/* An upload: the request body with buffers the test owns. */
typedef struct upload {
    Pkcs__V1__ImportPfxRequest body;
    X509 *cert;
    EVP_PKEY *key; /* borrowed */
} upload_t;

static void add_ext(X509 *x509, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x509, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x509, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const leaf_spec_t *spec)
{
    X509 *x509 = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(x509);
    assert_non_null(name);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x509, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x509), 4242), 1);
    assert_int_equal(X509_set_subject_name(x509, name), 1);
    assert_int_equal(
        X509_set_issuer_name(x509, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x509), spec->not_before));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x509), spec->not_after));
    assert_int_equal(X509_set_pubkey(x509, key), 1);
    if (issuer == NULL) {
        add_ext(x509, x509, NID_basic_constraints, "critical,CA:TRUE");
    } else {
        add_ext(x509, issuer, NID_subject_alt_name, "email:ann@contoso.com");
        if (spec->eku != NULL)
            add_ext(x509, issuer, NID_ext_key_usage, spec->eku);
        if (spec->ku != NULL)
            add_ext(x509, issuer, NID_key_usage, spec->ku);
    }
    assert_true(X509_sign(x509, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x509;
}

static void write_key(const char *path, EVP_PKEY *key, mode_t mode, const char *passphrase)
{
    int fd;
    FILE *file;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    file = fdopen(fd, "w");
    assert_non_null(file);
    assert_int_equal(PEM_write_PKCS8PrivateKey(file, key,
                                               passphrase != NULL ? EVP_aes_256_cbc() : NULL, NULL,
                                               0, NULL, (void *)(uintptr_t)passphrase),
                     1);
    assert_int_equal(fclose(file), 0);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    leaf_spec_t ca_spec = {-DAY, 365 * DAY, NULL, NULL};
    pc_diag_t diag = {{0}};

    if (fx == NULL)
        return -1;
    unsetenv(PC_IMPORT_PASSPHRASE_ENV);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc-import-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->key_path, sizeof(fx->key_path), "%s/import.pem", fx->dir);
    fx->import_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx->other_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx->dev_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->dev_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->leaf_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx->leaf_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (fx->import_key == NULL || fx->other_key == NULL || fx->dev_ec == NULL ||
        fx->dev_rsa == NULL || fx->ca_key == NULL || fx->leaf_rsa == NULL || fx->leaf_ec == NULL)
        return -1;
    fx->ca_cert = make_cert(fx->ca_key, "Contoso S/MIME CA", NULL, NULL, &ca_spec);
    write_key(fx->key_path, fx->import_key, 0600, NULL);
    if (pc_import_new(fx->key_path, KEY_ID, NULL, &fx->imp, &diag) != PC_OK) {
        fprintf(stderr, "pc_import_new: %s\n", diag.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    pc_import_free(fx->imp);
    EVP_PKEY_free(fx->import_key);
    EVP_PKEY_free(fx->other_key);
    EVP_PKEY_free(fx->dev_ec);
    EVP_PKEY_free(fx->dev_rsa);
    EVP_PKEY_free(fx->ca_key);
    EVP_PKEY_free(fx->leaf_rsa);
    EVP_PKEY_free(fx->leaf_ec);
    X509_free(fx->ca_cert);
    free(fx);
    return 0;
}

/* ---- making uploads ---- */

static void make_pfx(fixture_t *fx, EVP_PKEY *key, X509 *cert, const char *password,
                     ProtobufCBinaryData *out)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    PKCS12 *p12;
    unsigned char *der = NULL;
    int len;

    assert_non_null(chain);
    assert_true(sk_X509_push(chain, fx->ca_cert) > 0);
    /* OpenSSL's defaults, as `openssl pkcs12 -export` writes them */
    p12 = PKCS12_create(password, FRIENDLY_NAME, key, cert, chain, 0, 0, 0, 0, 0);
    assert_non_null(p12);
    len = i2d_PKCS12(p12, &der);
    assert_true(len > 0);
    out->data = malloc((size_t)len);
    assert_non_null(out->data);
    memcpy(out->data, der, (size_t)len);
    out->len = (size_t)len;
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_X509_free(chain);
}

static void oaep_encrypt(EVP_PKEY *pub, const EVP_MD *md, const char *text, size_t text_len,
                         ProtobufCBinaryData *out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    size_t len = 0;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
    assert_int_equal(EVP_PKEY_encrypt(ctx, NULL, &len, (const unsigned char *)text, text_len), 1);
    out->data = malloc(len);
    assert_non_null(out->data);
    assert_int_equal(EVP_PKEY_encrypt(ctx, out->data, &len, (const unsigned char *)text, text_len),
                     1);
    out->len = len;
    EVP_PKEY_CTX_free(ctx);
}

static void spki_of(EVP_PKEY *key, ProtobufCBinaryData *out)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);

    assert_true(len > 0);
    out->data = malloc((size_t)len);
    assert_non_null(out->data);
    memcpy(out->data, der, (size_t)len);
    out->len = (size_t)len;
    OPENSSL_free(der);
}

/* upload_init makes an upload of a certificate for leaf_key as spec says, its PFX protected
 * by PASSWORD, the password encrypted to the import key with md, enveloped to dev_key. */
static void upload_init(upload_t *up, fixture_t *fx, EVP_PKEY *leaf_key, const leaf_spec_t *spec,
                        const EVP_MD *md, EVP_PKEY *dev_key)
{
    memset(up, 0, sizeof(*up));
    pkcs__v1__import_pfx_request__init(&up->body);
    up->key = leaf_key;
    up->cert = make_cert(leaf_key, "Ann O'Neil", fx->ca_cert, fx->ca_key, spec);
    make_pfx(fx, leaf_key, up->cert, PASSWORD, &up->body.pfx);
    oaep_encrypt(fx->import_key, md, PASSWORD, strlen(PASSWORD), &up->body.encrypted_password);
    spki_of(dev_key, &up->body.device_public_key);
    up->body.oaep_hash = md == EVP_sha512() ? "sha512" : md == EVP_sha384() ? "sha384" : "sha256";
    up->body.import_key_id = KEY_ID;
    up->body.intended_purpose = "smime_encryption";
}

static void upload_free(upload_t *up)
{
    free(up->body.pfx.data);
    free(up->body.encrypted_password.data);
    free(up->body.device_public_key.data);
    X509_free(up->cert);
}

/* ---- checking results ---- */

static bool same_der(X509 *cert, const unsigned char *der, size_t len)
{
    unsigned char *mine = NULL;
    int n = i2d_X509(cert, &mine);
    bool same = n > 0 && (size_t)n == len && memcmp(mine, der, len) == 0;

    OPENSSL_free(mine);
    return same;
}

/* expect_imported opens the result as the device would and compares with the upload. */
static void expect_imported(fixture_t *fx, const upload_t *up, const Pkcs__V1__Result *res,
                            EVP_PKEY *dev_key)
{
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    pc_diag_t diag = {{0}};
    const unsigned char *alias;
    int alias_len = 0;

    assert_int_equal(res->status, PKCS__V1__STATUS__IMPORTED);
    assert_true(same_der(up->cert, res->certificate.data, res->certificate.len));
    assert_int_equal(res->n_chain, 1);
    assert_true(same_der(fx->ca_cert, res->chain[0].data, res->chain[0].len));
    assert_string_equal(res->serial_number, "1092");
    assert_true(res->not_after_ms > pc_now_ms());
    assert_int_equal(pc_envelope_open(dev_key, res->encrypted_pfx.data, res->encrypted_pfx.len,
                                      &pfx, &pfx_len, &diag),
                     PC_OK);
    assert_int_equal(pc_pfx_open(pfx, pfx_len, "", &key, &cert, &chain, &diag), PC_OK);
    assert_true(same_der(cert, res->certificate.data, res->certificate.len));
    assert_int_equal(EVP_PKEY_eq(key, up->key), 1);
    assert_int_equal(sk_X509_num(chain), 1);
    alias = X509_alias_get0(cert, &alias_len);
    assert_non_null(alias);
    assert_int_equal(alias_len, strlen(FRIENDLY_NAME));
    assert_memory_equal(alias, FRIENDLY_NAME, strlen(FRIENDLY_NAME));
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
    OPENSSL_clear_free(pfx, pfx_len);
}

static pc_err_t run(const pc_import_t *imp, const upload_t *up, Pkcs__V1__Result **res,
                    pc_diag_t *diag)
{
    *res = pc_result_new(NULL);
    assert_non_null(*res);
    return pc_import_run(imp, &up->body, *res, diag);
}

static void expect_ok_with(fixture_t *fx, const pc_import_t *imp, const upload_t *up,
                           EVP_PKEY *dev_key)
{
    Pkcs__V1__Result *res = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = run(imp, up, &res, &diag);

    if (err != PC_OK)
        fprintf(stderr, "unexpected failure: %s\n", diag.msg);
    assert_int_equal(err, PC_OK);
    expect_imported(fx, up, res, dev_key);
    protobuf_c_message_free_unpacked(&res->base, NULL);
}

static void expect_ok(fixture_t *fx, const upload_t *up, EVP_PKEY *dev_key)
{
    expect_ok_with(fx, fx->imp, up, dev_key);
}

/* expect_fail runs up and wants err with a message holding want (and never the password). */
static void expect_fail_with(const pc_import_t *imp, const upload_t *up, pc_err_t want_err,
                             const char *want)
{
    Pkcs__V1__Result *res = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = run(imp, up, &res, &diag);

    if (err != want_err || strstr(diag.msg, want) == NULL)
        fprintf(stderr, "got %s: %s\n", pc_err_code_name(err), diag.msg);
    assert_int_equal(err, want_err);
    assert_non_null(strstr(diag.msg, want));
    assert_null(strstr(diag.msg, PASSWORD));
    assert_int_not_equal(res->status, PKCS__V1__STATUS__IMPORTED);
    assert_int_equal(res->encrypted_pfx.len, 0);
    protobuf_c_message_free_unpacked(&res->base, NULL);
}

static void expect_fail(fixture_t *fx, const upload_t *up, pc_err_t want_err, const char *want)
{
    expect_fail_with(fx->imp, up, want_err, want);
}

/* ---- round trips ---- */

static void test_roundtrip_sha256_ec_device(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);
}

static void test_roundtrip_sha384_rsa_device(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha384(), fx->dev_rsa);
    up.body.intended_purpose = "smime_signing";
    expect_ok(fx, &up, fx->dev_rsa);
    upload_free(&up);
}

static void test_roundtrip_sha512_any_purpose(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha512(), fx->dev_ec);
    up.body.intended_purpose = "";
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);
}

/* An empty oaepHash means SHA-256; an EC certificate encrypts by keyAgreement. */
static void test_roundtrip_default_hash_ec_cert(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = {-DAY, 30 * DAY, "emailProtection,clientAuth", "keyAgreement"};
    upload_t up;

    upload_init(&up, fx, fx->leaf_ec, &spec, EVP_sha256(), fx->dev_rsa);
    up.body.oaep_hash = "";
    expect_ok(fx, &up, fx->dev_rsa);
    upload_free(&up);
}

/* No EKU and no key usage at all: nothing forbids S/MIME. */
static void test_roundtrip_no_extensions(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = {-DAY, 30 * DAY, NULL, NULL};
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);
}

/* ---- the password ---- */

static void test_password_for_other_key(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    free(up.body.encrypted_password.data);
    oaep_encrypt(fx->other_key, EVP_sha256(), PASSWORD, strlen(PASSWORD),
                 &up.body.encrypted_password);
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM,
                "could not be decrypted with import key " KEY_ID " (RSA-2048): it was not "
                "encrypted to this key (or with another OAEP hash)");
    upload_free(&up);
}

static void test_wrong_oaep_hash(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    up.body.oaep_hash = "sha512";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "or with another OAEP hash");
    up.body.oaep_hash = "sha1";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "oaepHash \"sha1\" is not supported");
    up.body.oaep_hash = "SHA-256";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "use sha256 (the default), sha384 or sha512");
    upload_free(&up);
}

static void test_wrong_password(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    free(up.body.encrypted_password.data);
    oaep_encrypt(fx->import_key, EVP_sha256(), "not the password", 16, &up.body.encrypted_password);
    expect_fail(fx, &up, PC_ERR_UNAUTHENTICATED,
                "does not open the PFX: the password encrypted in the request is not this "
                "PFX's password");
    upload_free(&up);
}

static void test_bad_encrypted_password(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    up.body.encrypted_password.len = 0;
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "encryptedPassword is missing");
    up.body.encrypted_password.len = 100; /* not the key's size */
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "not encrypted to this key");
    free(up.body.encrypted_password.data);
    oaep_encrypt(fx->import_key, EVP_sha256(), "pass\0word", 9, &up.body.encrypted_password);
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "holds a NUL byte");
    upload_free(&up);
}

/* ---- the PFX ---- */

static void test_corrupt_pfx(void **state)
{
    fixture_t *fx = *state;
    upload_t up;
    size_t len;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    len = up.body.pfx.len;
    up.body.pfx.len = len / 2;
    expect_fail(fx, &up, PC_ERR_BAD_MESSAGE, "importPfx.pfx: the PFX is not valid PKCS#12 DER");
    up.body.pfx.len = len;
    memset(up.body.pfx.data, 0x5a, len);
    expect_fail(fx, &up, PC_ERR_BAD_MESSAGE, "not valid PKCS#12");
    up.body.pfx.len = 0;
    expect_fail(fx, &up, PC_ERR_BAD_MESSAGE, "empty");
    upload_free(&up);
}

/* A PFX whose only certificate is not its key's: nothing to deliver. */
static void test_pfx_key_not_certificate(void **state)
{
    fixture_t *fx = *state;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12 *p12;
    unsigned char *der = NULL;
    upload_t up;
    int len;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    assert_non_null(PKCS12_add_cert(&bags, up.cert));
    assert_non_null(PKCS12_add_key(&bags, fx->leaf_ec, 0, 2048, NID_aes_256_cbc, PASSWORD));
    assert_non_null(PKCS12_add_safe(&safes, bags, -1, 0, NULL));
    p12 = PKCS12_add_safes(safes, 0);
    assert_non_null(p12);
    assert_int_equal(PKCS12_set_mac(p12, PASSWORD, -1, NULL, 0, 2048, EVP_sha256()), 1);
    len = i2d_PKCS12(p12, &der);
    assert_true(len > 0);
    free(up.body.pfx.data);
    up.body.pfx.data = malloc((size_t)len);
    assert_non_null(up.body.pfx.data);
    memcpy(up.body.pfx.data, der, (size_t)len);
    up.body.pfx.len = (size_t)len;
    expect_fail(fx, &up, PC_ERR_BAD_MESSAGE, "certificate matching its private key");
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    upload_free(&up);
}

/* ---- the certificate ---- */

static void test_expired_certificate(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = smime;
    upload_t up;

    spec.not_before = -60 * DAY;
    spec.not_after = -DAY;
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_fail(fx, &up, PC_ERR_POLICY, "the PFX's certificate \"CN=Ann O'Neil\" expired on 20");
    upload_free(&up);
}

static void test_not_yet_valid(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = smime;
    upload_t up;

    spec.not_before = DAY;
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_fail(fx, &up, PC_ERR_POLICY, "is not valid before 20");
    upload_free(&up);
    /* within the allowed clock skew: fine */
    spec.not_before = PC_IMPORT_CLOCK_SKEW_S - 60;
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);
}

static void test_server_auth_only(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = smime;
    char *purposes[] = {"smime_encryption", "smime_signing", ""};
    upload_t up;

    spec.eku = "serverAuth";
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    for (size_t i = 0; i < 3; i++) {
        up.body.intended_purpose = purposes[i];
        expect_fail(fx, &up, PC_ERR_POLICY,
                    "not for S/MIME: its extended key usage (serverAuth) lacks emailProtection");
    }
    upload_free(&up);
}

/* anyExtendedKeyUsage allows S/MIME (RFC 8550 4.4.4). */
static void test_any_eku(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = smime;
    upload_t up;

    spec.eku = "serverAuth,anyExtendedKeyUsage";
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);
}

static void test_key_usage_and_purpose(void **state)
{
    fixture_t *fx = *state;
    leaf_spec_t spec = smime;
    upload_t up;

    spec.ku = "critical,digitalSignature";
    upload_init(&up, fx, fx->leaf_rsa, &spec, EVP_sha256(), fx->dev_ec);
    expect_fail(fx, &up, PC_ERR_POLICY,
                "cannot receive S/MIME mail: its key usage (digitalSignature) lacks "
                "keyEncipherment, which an RSA key needs");
    up.body.intended_purpose = "smime_signing";
    expect_ok(fx, &up, fx->dev_ec);
    up.body.intended_purpose = "";
    expect_ok(fx, &up, fx->dev_ec);
    upload_free(&up);

    spec.ku = "keyAgreement";
    upload_init(&up, fx, fx->leaf_ec, &spec, EVP_sha256(), fx->dev_ec);
    up.body.intended_purpose = "smime_signing";
    expect_fail(fx, &up, PC_ERR_POLICY,
                "cannot sign S/MIME mail: its key usage (keyAgreement) has neither "
                "digitalSignature nor nonRepudiation");
    upload_free(&up);

    spec.ku = "keyEncipherment"; /* for an EC key: neither signs nor agrees */
    upload_init(&up, fx, fx->leaf_ec, &spec, EVP_sha256(), fx->dev_ec);
    up.body.intended_purpose = "";
    expect_fail(fx, &up, PC_ERR_POLICY, "can neither sign nor receive S/MIME mail");
    up.body.intended_purpose = "smime_encryption";
    expect_fail(fx, &up, PC_ERR_POLICY, "lacks keyAgreement, which an EC key needs");
    upload_free(&up);
}

/* ---- the other parameters ---- */

static void test_wrong_import_key_id(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    up.body.import_key_id = "import-0";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM,
                "importPfx.importKeyId is \"import-0\" but this connector's import key is "
                "\"" KEY_ID "\"");
    up.body.import_key_id = "";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "importKeyId is \"(empty)\"");
    upload_free(&up);
}

static void test_bad_purpose_and_device_key(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    up.body.intended_purpose = "tls";
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "intendedPurpose \"tls\" is unknown");
    up.body.intended_purpose = "smime_encryption";
    memset(up.body.device_public_key.data, 0, up.body.device_public_key.len);
    expect_fail(fx, &up, PC_ERR_INVALID_PARAM, "device public key");
    upload_free(&up);
}

static void test_no_import_key(void **state)
{
    fixture_t *fx = *state;
    upload_t up;

    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    expect_fail_with(NULL, &up, PC_ERR_NOT_SUPPORTED, "worker.import_key_file");
    upload_free(&up);
}

/* ---- the import key file ---- */

static void expect_key_refused(const char *path, const char *key_id, pc_err_t want_err,
                               const char *want)
{
    pc_import_t *imp = (pc_import_t *)1;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_import_new(path, key_id, NULL, &imp, &diag);

    if (err != want_err || strstr(diag.msg, want) == NULL)
        fprintf(stderr, "got %s: %s\n", pc_err_code_name(err), diag.msg);
    assert_int_equal(err, want_err);
    assert_non_null(strstr(diag.msg, want));
    assert_null(imp);
}

static void test_key_file_group_readable(void **state)
{
    fixture_t *fx = *state;
    char path[160], want[256];

    snprintf(path, sizeof(path), "%s/loose.pem", fx->dir);
    write_key(path, fx->import_key, 0640, NULL);
    snprintf(want, sizeof(want), "readable by its group (mode 0640): run 'chmod 600 %s'", path);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM, want);
    write_key(path, fx->import_key, 0604, NULL);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM, "readable by others (mode 0604)");
}

static void test_key_file_encrypted(void **state)
{
    fixture_t *fx = *state;
    char path[160];
    pc_import_t *imp = NULL;
    pc_diag_t diag = {{0}};
    upload_t up;

    snprintf(path, sizeof(path), "%s/encrypted.pem", fx->dir);
    write_key(path, fx->import_key, 0640, "correct horse");
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM,
                       "is encrypted: set PC_IMPORT_KEY_PASSPHRASE to its passphrase");
    setenv(PC_IMPORT_PASSPHRASE_ENV, "wrong horse", 1);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM, "wrong passphrase?");
    setenv(PC_IMPORT_PASSPHRASE_ENV, "correct horse", 1);
    assert_int_equal(pc_import_new(path, "import-2", NULL, &imp, &diag), PC_OK);
    unsetenv(PC_IMPORT_PASSPHRASE_ENV);
    assert_string_equal(pc_import_get0_key_id(imp), "import-2");
    upload_init(&up, fx, fx->leaf_rsa, &smime, EVP_sha256(), fx->dev_ec);
    up.body.import_key_id = "import-2";
    expect_ok_with(fx, imp, &up, fx->dev_ec);
    upload_free(&up);
    pc_import_free(imp);
}

static void test_key_file_unsuitable(void **state)
{
    fixture_t *fx = *state;
    char path[160];
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    FILE *file;

    assert_non_null(small);
    snprintf(path, sizeof(path), "%s/small.pem", fx->dir);
    write_key(path, small, 0600, NULL);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM,
                       "is RSA-1024, below the minimum of 2048 bits");
    EVP_PKEY_free(small);
    snprintf(path, sizeof(path), "%s/ec.pem", fx->dir);
    write_key(path, fx->dev_ec, 0600, NULL);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM, "is EC, not RSA");
    snprintf(path, sizeof(path), "%s/cert.pem", fx->dir);
    file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(PEM_write_X509(file, fx->ca_cert), 1);
    assert_int_equal(fclose(file), 0);
    expect_key_refused(path, KEY_ID, PC_ERR_INVALID_PARAM, "holds no PEM private key");
    snprintf(path, sizeof(path), "%s/missing.pem", fx->dir);
    expect_key_refused(path, KEY_ID, PC_ERR_IO, "import key (worker.import_key_file");
    expect_key_refused(fx->dir, KEY_ID, PC_ERR_INVALID_PARAM, "is not a regular file");
    expect_key_refused(NULL, KEY_ID, PC_ERR_INVALID_PARAM, "set worker.import_key_file");
    expect_key_refused(fx->key_path, "", PC_ERR_INVALID_PARAM, "import key id");
}

/* ---- threads ---- */

#define THREADS 4
#define RUNS_PER_THREAD 3

typedef struct worker {
    pthread_t thread;
    const pc_import_t *imp;
    const upload_t *up;
    int failures;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;

    for (int i = 0; i < RUNS_PER_THREAD; i++) {
        Pkcs__V1__Result *res = pc_result_new(NULL);
        pc_diag_t diag = {{0}};
        if (res == NULL || pc_import_run(w->imp, &w->up->body, res, &diag) != PC_OK ||
            res->status != PKCS__V1__STATUS__IMPORTED)
            w->failures++;
        if (res != NULL)
            protobuf_c_message_free_unpacked(&res->base, NULL);
    }
    return NULL;
}

/* One import key serves every pool thread at once. */
static void test_threads_share_import_key(void **state)
{
    fixture_t *fx = *state;
    worker_t workers[THREADS];
    upload_t ups[THREADS];

    for (int i = 0; i < THREADS; i++) {
        upload_init(&ups[i], fx, i % 2 ? fx->leaf_ec : fx->leaf_rsa,
                    i % 2 ? &(leaf_spec_t){-DAY, DAY, "emailProtection", "keyAgreement"} : &smime,
                    i % 3 ? EVP_sha384() : EVP_sha256(), i % 2 ? fx->dev_rsa : fx->dev_ec);
        workers[i] = (worker_t){.imp = fx->imp, .up = &ups[i]};
        assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
        assert_int_equal(workers[i].failures, 0);
    }
    for (int i = 0; i < THREADS; i++) {
        expect_ok(fx, &ups[i], i % 2 ? fx->dev_rsa : fx->dev_ec);
        upload_free(&ups[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sha256_ec_device),
        cmocka_unit_test(test_roundtrip_sha384_rsa_device),
        cmocka_unit_test(test_roundtrip_sha512_any_purpose),
        cmocka_unit_test(test_roundtrip_default_hash_ec_cert),
        cmocka_unit_test(test_roundtrip_no_extensions),
        cmocka_unit_test(test_password_for_other_key),
        cmocka_unit_test(test_wrong_oaep_hash),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_bad_encrypted_password),
        cmocka_unit_test(test_corrupt_pfx),
        cmocka_unit_test(test_pfx_key_not_certificate),
        cmocka_unit_test(test_expired_certificate),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_server_auth_only),
        cmocka_unit_test(test_any_eku),
        cmocka_unit_test(test_key_usage_and_purpose),
        cmocka_unit_test(test_wrong_import_key_id),
        cmocka_unit_test(test_bad_purpose_and_device_key),
        cmocka_unit_test(test_no_import_key),
        cmocka_unit_test(test_key_file_group_readable),
        cmocka_unit_test(test_key_file_encrypted),
        cmocka_unit_test(test_key_file_unsuitable),
        cmocka_unit_test(test_threads_share_import_key),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
