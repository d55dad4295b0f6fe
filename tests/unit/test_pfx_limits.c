/*
 * test_pfx_limits.c - a PFX from outside cannot make a worker derive keys without end: the
 * iteration counts of its MAC and of every encrypted part, and its size, bags and certificates,
 * are held to limits before any key is derived with them.
 *
 * The files are made here with OpenSSL's PKCS#12 building blocks at a few iterations, then the
 * counts written into them are raised (to two billion: hours of PBKDF2 if anything derived a
 * key with them) without redoing the encryption. So the refusals are count-based by
 * construction: a test that finishes proves nothing was derived, and nothing here is timed.
 * Normal files as Windows, OpenSSL and Java write them open as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "import.h"
#include "pfx.h"
#include "result.h"

#define PASSWORD "correct horse battery"
#define HUGE 2000000000 /* iterations: about an hour of PBKDF2-SHA256 on one core */
#define PBES2_AES (NID_aes_256_cbc)
#define PBE_3DES (NID_pbe_WithSHA1And3_Key_TripleDES_CBC)
#define IN_CLEAR (-1)

static EVP_PKEY *leaf_key;
static X509 *leaf_cert;

/* ---- making PFX files ------------------------------------------------------------------- */

/* How one test file is made: what encrypts the key and the certificates, with how many
 * iterations, and which counts are then written into it instead ("claims", 0: as made). */
typedef struct pfx_spec {
    int key_nid;          /* PBES2_AES or PBE_3DES */
    int key_iter;         /* iterations the key bag is really encrypted with */
    int key_claim;        /* count then written into the key bag's parameters */
    bool key_scrypt;      /* write scrypt parameters into the key bag instead */
    int certs_nid;        /* IN_CLEAR, or the encryption of the part holding them */
    int certs_iter;       /* iterations the certificates' part is really encrypted with */
    int certs_claim;      /* count then written into that part's parameters */
    bool key_with_certs;  /* the key bag inside the certificates' (encrypted) part */
    int mac_iter;         /* iterations of the MAC */
    int64_t mac_claim;    /* count then written into the MAC data */
    const EVP_MD *mac_md; /* NULL: SHA-256 */
    int extra_certs;      /* more copies of the certificate */
} pfx_spec_t;

static void *unconst(const void *p)
{
    return (void *)(uintptr_t)p; /* the test edits structures OpenSSL hands out read-only */
}

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Ann", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "emailProtection");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* bogus_pbe: parameters of the same kind as nid, claiming iter iterations. */
static X509_ALGOR *bogus_pbe(int nid, int iter, bool scrypt)
{
    X509_ALGOR *alg;
    if (scrypt)
        alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 1 << 14, 8, 1);
    else if (nid == PBES2_AES)
        alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), iter, NULL, 0, NULL, NID_hmacWithSHA256);
    else
        alg = PKCS5_pbe_set(nid, iter, NULL, 0);
    assert_non_null(alg);
    return alg;
}

static void claim(X509_ALGOR *alg, int nid, int iter, bool scrypt)
{
    X509_ALGOR *bogus = bogus_pbe(nid, iter, scrypt);
    assert_int_equal(X509_ALGOR_copy(alg, bogus), 1);
    X509_ALGOR_free(bogus);
}

static STACK_OF(PKCS12_SAFEBAG) * key_bags(const pfx_spec_t *spec)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    PKCS12_SAFEBAG *bag =
        PKCS12_add_key(&bags, leaf_key, 0, spec->key_iter, spec->key_nid, PASSWORD);
    X509_ALGOR *alg = NULL;

    assert_non_null(bag);
    assert_int_equal(PKCS12_add_localkeyid(bag, (unsigned char *)"k1", 2), 1);
    if (spec->key_claim != 0 || spec->key_scrypt) {
        X509_SIG_getm(unconst(PKCS12_SAFEBAG_get0_pkcs8(bag)), &alg, NULL);
        claim(alg, spec->key_nid, spec->key_claim, spec->key_scrypt);
    }
    return bags;
}

static void add_certs(STACK_OF(PKCS12_SAFEBAG) * *bags, const pfx_spec_t *spec)
{
    for (int i = 0; i <= spec->extra_certs; i++) {
        PKCS12_SAFEBAG *bag = PKCS12_add_cert(bags, leaf_cert);
        assert_non_null(bag);
        if (i == 0)
            assert_int_equal(PKCS12_add_localkeyid(bag, (unsigned char *)"k1", 2), 1);
    }
}

static void add_safe(STACK_OF(PKCS7) * *safes, STACK_OF(PKCS12_SAFEBAG) * bags, int nid, int iter,
                     int claimed)
{
    assert_int_equal(PKCS12_add_safe(safes, bags, nid, iter, PASSWORD), 1);
    if (claimed != 0) {
        PKCS7 *p7 = sk_PKCS7_value(*safes, sk_PKCS7_num(*safes) - 1);
        claim(p7->d.encrypted->enc_data->algorithm, nid, claimed, false);
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

/* make_pfx builds the file spec describes: DER in *der (free with OPENSSL_free). */
static size_t make_pfx(const pfx_spec_t *spec, unsigned char **der)
{
    STACK_OF(PKCS7) *safes = NULL;
    STACK_OF(PKCS12_SAFEBAG) *keys = key_bags(spec), *certs = NULL;
    const ASN1_INTEGER *mac_iter = NULL;

    if (spec->key_with_certs) {
        certs = keys;
        keys = NULL;
    }
    add_certs(&certs, spec);
    add_safe(&safes, certs, spec->certs_nid, spec->certs_iter, spec->certs_claim);
    if (keys != NULL)
        add_safe(&safes, keys, IN_CLEAR, 0, 0);
    PKCS12 *p12 = PKCS12_add_safes(safes, 0);
    assert_non_null(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    assert_int_equal(PKCS12_set_mac(p12, PASSWORD, -1, NULL, 0, spec->mac_iter,
                                    spec->mac_md != NULL ? spec->mac_md : EVP_sha256()),
                     1);
    if (spec->mac_claim != 0) {
        PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
        assert_non_null(mac_iter);
        assert_int_equal(ASN1_INTEGER_set_int64(unconst(mac_iter), spec->mac_claim), 1);
    }
    *der = NULL;
    int len = i2d_PKCS12(p12, der);
    assert_true(len > 0);
    PKCS12_free(p12);
    return (size_t)len;
}

/* As `openssl pkcs12 -export` (3.0) writes it: PBES2/AES-256 key, certificates in a PBES2 part,
 * 2048 iterations everywhere, SHA-256 MAC. */
static const pfx_spec_t openssl_like = {.key_nid = PBES2_AES,
                                        .key_iter = 2048,
                                        .certs_nid = PBES2_AES,
                                        .certs_iter = 2048,
                                        .mac_iter = 2048};

/* As Windows (before 2019) and most older tools write it: PKCS#12 3DES PBE, SHA-1 MAC, 2000. */
static pfx_spec_t windows_like(void)
{
    pfx_spec_t s = {.key_nid = PBE_3DES,
                    .key_iter = 2000,
                    .certs_nid = PBE_3DES,
                    .certs_iter = 2000,
                    .mac_iter = 2000,
                    .mac_md = EVP_sha1()};
    return s;
}

/* ---- checking --------------------------------------------------------------------------- */

static pc_pfx_limits_t limits_of(unsigned iterations)
{
    pc_pfx_limits_t l = {.max_iterations = iterations,
                         .max_bytes = PC_PFX_MAX_BYTES_DEFAULT,
                         .max_bags = PC_PFX_MAX_BAGS_DEFAULT,
                         .max_certs = PC_PFX_MAX_CERTS_DEFAULT,
                         .setting = "worker.pfx_"};
    return l;
}

static void expect_open(const pfx_spec_t *spec, const pc_pfx_limits_t *limits)
{
    unsigned char *der = NULL;
    size_t len = make_pfx(spec, &der);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_pfx_open_limited(der, len, PASSWORD, limits, &key, &cert, &chain, &diag);

    if (err != PC_OK)
        fail_msg("expected the PFX to open: %s", diag.msg);
    assert_int_equal(EVP_PKEY_eq(key, leaf_key), 1);
    assert_int_equal(X509_cmp(cert, leaf_cert), 0);
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    OPENSSL_free(der);
}

static void expect_refused(const pfx_spec_t *spec, const pc_pfx_limits_t *limits,
                           const char *password, pc_err_t want, const char *text1,
                           const char *text2)
{
    unsigned char *der = NULL;
    size_t len = make_pfx(spec, &der);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_pfx_open_limited(der, len, password, limits, &key, &cert, NULL, &diag);

    if (err != want || strstr(diag.msg, text1) == NULL ||
        (text2 != NULL && strstr(diag.msg, text2) == NULL))
        fail_msg("expected %s with \"%s\" and \"%s\", got %s: %s", pc_err_code_name(want), text1,
                 text2 != NULL ? text2 : "", pc_err_code_name(err), diag.msg);
    assert_null(key);
    assert_null(cert);
    OPENSSL_free(der);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_pfx_limits_real_world_files_open(void **state)
{
    pfx_spec_t clear_certs = openssl_like, key_inside = openssl_like, java_like = openssl_like;
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t windows = windows_like();

    clear_certs.certs_nid = IN_CLEAR;
    key_inside.key_with_certs = true;
    java_like.key_iter = java_like.certs_iter = java_like.mac_iter = 10000;
    expect_open(&openssl_like, &defaults);
    expect_open(&windows, &defaults);
    expect_open(&clear_certs, &defaults);
    expect_open(&key_inside, &defaults);
    expect_open(&java_like, &defaults);
    expect_open(&openssl_like, NULL); /* NULL: the defaults */
}

static void test_pfx_limits_count_at_the_limit_opens_one_over_is_refused(void **state)
{
    pc_pfx_limits_t at = limits_of(2048), under = limits_of(2047);

    expect_open(&openssl_like, &at);
    expect_refused(&openssl_like, &under, PASSWORD, PC_ERR_INVALID_PARAM,
                   "MAC asks for 2048 key-derivation iterations, over the limit of 2047",
                   "(worker.pfx_max_iterations)");
}

static void test_pfx_limits_huge_mac_count_refused_before_the_mac(void **state)
{
    pfx_spec_t spec = openssl_like;
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);

    spec.mac_claim = HUGE;
    expect_refused(&spec, &defaults, PASSWORD, PC_ERR_INVALID_PARAM,
                   "MAC asks for 2000000000 key-derivation iterations, over the limit of 100000",
                   "export it again with fewer");
    /* a wrong password changes nothing: the count is refused before the MAC is tried */
    expect_refused(&spec, &defaults, "wrong", PC_ERR_INVALID_PARAM, "MAC asks for 2000000000",
                   NULL);
    spec.mac_claim = INT64_MAX;
    expect_refused(&spec, &defaults, PASSWORD, PC_ERR_INVALID_PARAM, "asks for 9223372036854775807",
                   NULL);
}

static void test_pfx_limits_huge_key_bag_counts_refused(void **state)
{
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t pbes2 = openssl_like, legacy = windows_like();

    pbes2.key_claim = HUGE;
    expect_refused(&pbes2, &defaults, PASSWORD, PC_ERR_INVALID_PARAM,
                   "key bag asks for 2000000000 key-derivation iterations", "limit of 100000");
    legacy.key_claim = HUGE;
    expect_refused(&legacy, &defaults, PASSWORD, PC_ERR_INVALID_PARAM,
                   "key bag asks for 2000000000", NULL);
}

static void test_pfx_limits_huge_encrypted_part_refused(void **state)
{
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t pbes2 = openssl_like, legacy = windows_like();

    pbes2.certs_claim = HUGE;
    expect_refused(&pbes2, &defaults, PASSWORD, PC_ERR_INVALID_PARAM,
                   "encrypted part asks for 2000000000 key-derivation iterations", NULL);
    legacy.certs_claim = HUGE;
    expect_refused(&legacy, &defaults, PASSWORD, PC_ERR_INVALID_PARAM,
                   "encrypted part asks for 2000000000", NULL);
}

/* A key bag inside an encrypted part shows its count only once that part is decrypted (with a
 * count that passed): it is refused then, before the key's own derivation. */
static void test_pfx_limits_key_bag_inside_an_encrypted_part(void **state)
{
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t spec = openssl_like;

    spec.key_with_certs = true;
    spec.key_claim = HUGE;
    expect_refused(&spec, &defaults, PASSWORD, PC_ERR_INVALID_PARAM, "key bag asks for 2000000000",
                   NULL);
}

static void test_pfx_limits_scrypt_refused(void **state)
{
    pc_pfx_limits_t defaults = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t spec = openssl_like;

    spec.key_scrypt = true;
    expect_refused(&spec, &defaults, PASSWORD, PC_ERR_INVALID_PARAM, "key bag derives its key",
                   "scrypt");
}

static void test_pfx_limits_sizes(void **state)
{
    pc_pfx_limits_t small = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t many = openssl_like;

    small.max_bytes = 500;
    expect_refused(&openssl_like, &small, PASSWORD, PC_ERR_TOO_LARGE,
                   "bytes, over the limit of 500", "(worker.pfx_max_bytes)");

    /* 16 certificates pass the default limit, 17 do not */
    small = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    many.extra_certs = 15;
    expect_open(&many, &small);
    many.extra_certs = 16;
    expect_refused(&many, &small, PASSWORD, PC_ERR_INVALID_PARAM,
                   "holds 17 certificates, over the limit of 16", "(worker.pfx_max_certs)");

    /* certificates in clear are counted before the password is tried: a wrong one changes
     * nothing */
    many.certs_nid = IN_CLEAR;
    expect_refused(&many, &small, "wrong", PC_ERR_INVALID_PARAM, "holds 17 certificates", NULL);
    many.certs_nid = PBES2_AES;

    /* bags: 8 certificates, a key and two parts make 11 */
    many.extra_certs = 7;
    small.max_bags = 10;
    expect_refused(&many, &small, PASSWORD, PC_ERR_INVALID_PARAM,
                   "holds 11 bags (with the parts holding them), over the limit of 10",
                   "(worker.pfx_max_bags)");
    small.max_bags = 11;
    expect_open(&many, &small);
}

static void test_pfx_limits_pc_pfx_open_has_the_defaults(void **state)
{
    pfx_spec_t spec = openssl_like;
    unsigned char *der = NULL;
    size_t len;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    pc_diag_t diag = {{0}};

    spec.mac_claim = PC_PFX_MAX_ITERATIONS_DEFAULT + 1;
    len = make_pfx(&spec, &der);
    assert_int_equal(pc_pfx_open(der, len, PASSWORD, &key, &cert, NULL, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "100001 key-derivation iterations, over the limit of 100000"));
    assert_null(strstr(diag.msg, "worker.")); /* tools name no setting */
    OPENSSL_free(der);
}

/* ---- through IMPORT_PFX ----------------------------------------------------------------- */

static void test_pfx_limits_apply_to_imports(void **state)
{
    char dir[] = "/tmp/pc-pfx-limits-XXXXXX", path[64];
    EVP_PKEY *import_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *device = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    pc_pfx_limits_t limits = limits_of(PC_PFX_MAX_ITERATIONS_DEFAULT);
    pfx_spec_t spec = openssl_like;
    pc_import_t *imp = NULL;
    pc_diag_t diag = {{0}};
    unsigned char pw[256], *der = NULL, *spki = NULL;
    size_t pw_len = sizeof(pw);
    Pkcs__V1__ImportPfxRequest body;
    Pkcs__V1__Result *res = pc_result_new(NULL);
    pkcs__v1__import_pfx_request__init(&body);

    assert_non_null(import_key);
    assert_non_null(device);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/import.pem", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, import_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(pc_import_new(path, "import-1", &limits, &imp, &diag), PC_OK);

    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, import_key, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
    assert_int_equal(
        EVP_PKEY_encrypt(ctx, pw, &pw_len, (const unsigned char *)PASSWORD, strlen(PASSWORD)), 1);
    EVP_PKEY_CTX_free(ctx);
    int spki_len = i2d_PUBKEY(device, &spki);
    assert_true(spki_len > 0);

    spec.key_claim = HUGE;
    body.pfx.len = make_pfx(&spec, &der);
    body.pfx.data = der;
    body.encrypted_password.data = pw;
    body.encrypted_password.len = pw_len;
    body.import_key_id = "import-1";
    body.device_public_key.data = spki;
    body.device_public_key.len = (size_t)spki_len;
    assert_non_null(res);
    assert_int_equal(pc_import_run(imp, &body, res, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "importPfx.pfx: the PFX's key bag asks for 2000000000 "
                                     "key-derivation iterations, over the limit of 100000 "
                                     "(worker.pfx_max_iterations)"));
    assert_null(strstr(diag.msg, PASSWORD));
    OPENSSL_free(der);

    /* the same file as made, without the raised count: imported */
    spec.key_claim = 0;
    body.pfx.len = make_pfx(&spec, &der);
    body.pfx.data = der;
    if (pc_import_run(imp, &body, res, &diag) != PC_OK)
        fail_msg("import: %s", diag.msg);
    assert_int_equal(res->status, PKCS__V1__STATUS__IMPORTED);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    OPENSSL_free(der);
    OPENSSL_free(spki);
    pc_import_free(imp);
    EVP_PKEY_free(import_key);
    EVP_PKEY_free(device);
    unlink(path);
    rmdir(dir);
}

static int group_setup(void **state)
{
    leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (leaf_key == NULL)
        return -1;
    leaf_cert = make_cert(leaf_key);
    return 0;
}

static int group_teardown(void **state)
{
    X509_free(leaf_cert);
    EVP_PKEY_free(leaf_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pfx_limits_real_world_files_open),
        cmocka_unit_test(test_pfx_limits_count_at_the_limit_opens_one_over_is_refused),
        cmocka_unit_test(test_pfx_limits_huge_mac_count_refused_before_the_mac),
        cmocka_unit_test(test_pfx_limits_huge_key_bag_counts_refused),
        cmocka_unit_test(test_pfx_limits_huge_encrypted_part_refused),
        cmocka_unit_test(test_pfx_limits_key_bag_inside_an_encrypted_part),
        cmocka_unit_test(test_pfx_limits_scrypt_refused),
        cmocka_unit_test(test_pfx_limits_sizes),
        cmocka_unit_test(test_pfx_limits_pc_pfx_open_has_the_defaults),
        cmocka_unit_test(test_pfx_limits_apply_to_imports),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
