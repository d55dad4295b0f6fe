/*
 * test_pfx.c - PKCS#12 build and open: what a device importing the PFX, or an operator running
 * `openssl pkcs12`, would notice. Keys and certificates are made here with plain OpenSSL calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "pfx.h"

typedef struct fixture {
    char dir[64];
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    EVP_PKEY *ec_key; /* leaf P-256 */
    X509 *ec_cert;
    EVP_PKEY *rsa_key; /* leaf RSA-2048 */
    X509 *rsa_cert;
} fixture_t;

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x509 = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(x509);
    assert_non_null(name);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x509, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x509), 42), 1);
    assert_int_equal(X509_set_subject_name(x509, name), 1);
    assert_int_equal(
        X509_set_issuer_name(x509, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x509), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x509), 86400));
    assert_int_equal(X509_set_pubkey(x509, key), 1);
    assert_true(X509_sign(x509, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x509;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx->rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (fx->ca_key == NULL || fx->ec_key == NULL || fx->rsa_key == NULL)
        return -1;
    fx->ca_cert = make_cert(fx->ca_key, "Test CA", NULL, NULL);
    fx->ec_cert = make_cert(fx->ec_key, "device-ec", fx->ca_cert, fx->ca_key);
    fx->rsa_cert = make_cert(fx->rsa_key, "device-rsa", fx->ca_cert, fx->ca_key);
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
    EVP_PKEY_free(fx->ca_key);
    EVP_PKEY_free(fx->ec_key);
    EVP_PKEY_free(fx->rsa_key);
    X509_free(fx->ca_cert);
    X509_free(fx->ec_cert);
    X509_free(fx->rsa_cert);
    free(fx);
    return 0;
}

static STACK_OF(X509) * chain_of(X509 *ca_cert)
{
    STACK_OF(X509) *chain = sk_X509_new_null();

    assert_non_null(chain);
    assert_true(sk_X509_push(chain, ca_cert) > 0);
    return chain;
}

static void build(fixture_t *fx, EVP_PKEY *key, X509 *cert, const char *password,
                  unsigned char **der, size_t *len)
{
    STACK_OF(X509) *chain = chain_of(fx->ca_cert);
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_pfx_build(key, cert, chain, "device-42", password, der, len, &diag), PC_OK);
    assert_non_null(*der);
    assert_true(*len > 0);
    sk_X509_free(chain);
}

static void write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *file = fopen(path, "wb");

    assert_non_null(file);
    assert_int_equal(fwrite(buf, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
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

static bool same_der(X509 *a, X509 *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
    bool same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;

    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

static void assert_round_trip(fixture_t *fx, EVP_PKEY *key, X509 *cert)
{
    unsigned char *der = NULL;
    size_t len = 0;
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    STACK_OF(X509) *got_chain = NULL;
    pc_diag_t diag = {{0}};
    const unsigned char *alias;
    int alias_len = 0;

    build(fx, key, cert, "", &der, &len);
    assert_int_equal(pc_pfx_open(der, len, "", &got_key, &got_cert, &got_chain, &diag), PC_OK);
    assert_int_equal(EVP_PKEY_eq(got_key, key), 1);
    assert_true(same_der(got_cert, cert));
    assert_non_null(got_chain);
    assert_int_equal(sk_X509_num(got_chain), 1);
    assert_true(same_der(sk_X509_value(got_chain, 0), fx->ca_cert));
    alias = X509_alias_get0(got_cert, &alias_len);
    assert_non_null(alias);
    assert_int_equal(alias_len, strlen("device-42"));
    assert_memory_equal(alias, "device-42", strlen("device-42"));
    EVP_PKEY_free(got_key);
    X509_free(got_cert);
    sk_X509_pop_free(got_chain, X509_free);
    OPENSSL_clear_free(der, len);
}

static void test_round_trip_ec_leaf(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->ec_key, fx->ec_cert);
}

static void test_round_trip_rsa_leaf(void **state)
{
    fixture_t *fx = *state;
    assert_round_trip(fx, fx->rsa_key, fx->rsa_cert);
}

static void test_no_chain_no_name(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_pfx_build(fx->ec_key, fx->ec_cert, NULL, NULL, "", &der, &len, &diag),
                     PC_OK);
    /* chain NULL: the caller does not want the extra certificates */
    assert_int_equal(pc_pfx_open(der, len, "", &got_key, &got_cert, NULL, &diag), PC_OK);
    assert_int_equal(EVP_PKEY_eq(got_key, fx->ec_key), 1);
    assert_true(same_der(got_cert, fx->ec_cert));
    assert_null(X509_alias_get0(got_cert, NULL));
    EVP_PKEY_free(got_key);
    X509_free(got_cert);
    OPENSSL_clear_free(der, len);
}

static void test_wrong_password_is_unauthenticated(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    pc_diag_t diag = {{0}};

    build(fx, fx->ec_key, fx->ec_cert, "correct horse", &der, &len);
    assert_int_equal(pc_pfx_open(der, len, "wrong", &got_key, &got_cert, NULL, &diag),
                     PC_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(diag.msg, "password is wrong"));
    assert_null(got_key);
    assert_null(got_cert);
    assert_int_equal(pc_pfx_open(der, len, "", &got_key, &got_cert, NULL, &diag),
                     PC_ERR_UNAUTHENTICATED);
    assert_int_equal(pc_pfx_open(der, len, "correct horse", &got_key, &got_cert, NULL, &diag),
                     PC_OK);
    assert_int_equal(EVP_PKEY_eq(got_key, fx->ec_key), 1);
    EVP_PKEY_free(got_key);
    X509_free(got_cert);
    OPENSSL_clear_free(der, len);
}

/* Some producers MAC an empty-password PFX with a NULL password (no BMPString terminator);
 * "" must open those too, as `openssl pkcs12 -passin pass:` does. */
static void test_empty_password_accepts_null_mac(void **state)
{
    fixture_t *fx = *state;
    PKCS12 *p12 = PKCS12_create_ex(NULL, NULL, fx->ec_key, fx->ec_cert, NULL, NID_aes_256_cbc,
                                   NID_aes_256_cbc, 2048, -1, 0, NULL, NULL);
    unsigned char *der = NULL;
    int len;
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    pc_diag_t diag = {{0}};

    assert_non_null(p12);
    assert_int_equal(PKCS12_set_mac(p12, NULL, 0, NULL, 0, 2048, EVP_sha256()), 1);
    assert_int_equal(PKCS12_verify_mac(p12, "", 0), 0); /* really the NULL variant */
    len = i2d_PKCS12(p12, &der);
    assert_true(len > 0);
    assert_int_equal(pc_pfx_open(der, (size_t)len, "", &got_key, &got_cert, NULL, &diag), PC_OK);
    assert_int_equal(EVP_PKEY_eq(got_key, fx->ec_key), 1);
    EVP_PKEY_free(got_key);
    X509_free(got_cert);
    OPENSSL_clear_free(der, (size_t)len);
    PKCS12_free(p12);
}

static void assert_bad_message(const unsigned char *der, size_t len)
{
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_pfx_open(der, len, "", &got_key, &got_cert, NULL, &diag),
                     PC_ERR_BAD_MESSAGE);
    assert_true(strlen(diag.msg) > 0);
    assert_null(got_key);
    assert_null(got_cert);
}

static void test_corrupt_pfx_is_bad_message(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL, *longer;
    size_t len = 0;
    static const unsigned char garbage[] = "this is not a PKCS#12 file";

    build(fx, fx->ec_key, fx->ec_cert, "", &der, &len);
    assert_bad_message(garbage, sizeof(garbage));
    assert_bad_message(der, 0);
    assert_bad_message(der, len / 2);
    assert_bad_message(der, len - 1);
    longer = OPENSSL_malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_bad_message(longer, len + 1);
    der[0] ^= 0xff; /* not a SEQUENCE any more */
    assert_bad_message(der, len);
    OPENSSL_clear_free(longer, len + 1);
    OPENSSL_clear_free(der, len);
}

static void assert_missing(EVP_PKEY *key, X509 *cert, const char *what)
{
    PKCS12 *p12 = PKCS12_create_ex("", NULL, key, cert, NULL, NID_aes_256_cbc, NID_aes_256_cbc,
                                   2048, 2048, 0, NULL, NULL);
    unsigned char *der = NULL;
    int len;
    EVP_PKEY *got_key = NULL;
    X509 *got_cert = NULL;
    pc_diag_t diag = {{0}};

    assert_non_null(p12);
    len = i2d_PKCS12(p12, &der);
    assert_true(len > 0);
    assert_int_equal(pc_pfx_open(der, (size_t)len, "", &got_key, &got_cert, NULL, &diag),
                     PC_ERR_BAD_MESSAGE);
    assert_non_null(strstr(diag.msg, what));
    assert_null(got_key);
    assert_null(got_cert);
    OPENSSL_clear_free(der, (size_t)len);
    PKCS12_free(p12);
}

static void test_pfx_without_key_or_cert_is_bad_message(void **state)
{
    fixture_t *fx = *state;

    assert_missing(NULL, fx->ec_cert, "no private key");
    assert_missing(fx->ec_key, NULL, "no certificate");
}

static void test_key_not_matching_cert_is_refused(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_pfx_build(fx->rsa_key, fx->ec_cert, NULL, NULL, "", &der, &len, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "does not belong"));
    assert_null(der);
}

/* What an operator sees: `openssl pkcs12 -info` names the modern algorithms and the empty
 * password opens the file with `-passin pass:`; only a real password gets 2048 iterations. */
static void test_openssl_cli_shows_modern_algorithms(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    char path[128], cmd[512];
    char *text;
    int status;

    build(fx, fx->ec_key, fx->ec_cert, "", &der, &len);
    snprintf(path, sizeof(path), "%s/info.p12", fx->dir);
    write_file(path, der, len);
    snprintf(cmd, sizeof(cmd), "openssl pkcs12 -info -noout -in '%s' -passin pass:", path);
    text = capture(cmd, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(text, "MAC: sha256, Iteration 1\n"));
    assert_non_null(strstr(text, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 1,"));
    assert_non_null(strstr(text, "PRF hmacWithSHA256"));
    assert_null(strstr(text, "PKCS7 Encrypted data")); /* certificates are public */
    assert_null(strstr(text, "SHA1"));
    assert_null(strstr(text, "RC2"));
    assert_null(strstr(text, "3DES"));
    free(text);
    snprintf(cmd, sizeof(cmd), "openssl pkcs12 -info -noout -in '%s' -passin pass:wrong", path);
    text = capture(cmd, &status);
    assert_int_not_equal(status, 0);
    free(text);
    OPENSSL_clear_free(der, len);

    /* a real password is stretched */
    build(fx, fx->ec_key, fx->ec_cert, "s3cret", &der, &len);
    write_file(path, der, len);
    snprintf(cmd, sizeof(cmd), "openssl pkcs12 -info -noout -in '%s' -passin pass:s3cret", path);
    text = capture(cmd, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(text, "MAC: sha256, Iteration 2048\n"));
    assert_non_null(strstr(text, "AES-256-CBC, Iteration 2048,"));
    free(text);
    OPENSSL_clear_free(der, len);
}

/* The MAC's key and the key bag's are derived here, not by OpenSSL: OpenSSL must verify the MAC
 * and decrypt the key for passwords of every shape, among them one whose BMPString spans more
 * than one 64-byte block of the PKCS#12 KDF and one that is not ASCII. */
static void test_openssl_verifies_mac_for_any_password(void **state)
{
    fixture_t *fx = *state;
    static const char *const passwords[] = {
        "", "s3cret", "a password of forty-five characters, or more!", "p\xc3\xa4ssw\xc3\xb6rd"};

    for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        build(fx, fx->ec_key, fx->ec_cert, passwords[i], &der, &len);
        const unsigned char *p = der;
        PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
        assert_non_null(p12);
        assert_int_equal(PKCS12_verify_mac(p12, passwords[i], -1), 1);
        assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        assert_int_equal(PKCS12_parse(p12, passwords[i], &key, &cert, NULL), 1);
        assert_int_equal(EVP_PKEY_eq(key, fx->ec_key), 1);
        assert_int_equal(X509_cmp(cert, fx->ec_cert), 0);
        EVP_PKEY_free(key);
        X509_free(cert);
        PKCS12_free(p12);
        OPENSSL_clear_free(der, len);
        ERR_clear_error();
    }
}

static void test_openssl_cli_extracts_key_and_certs(void **state)
{
    fixture_t *fx = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    char p12_path[128], pem_path[128], cmd[512];
    char *text;
    int status;
    FILE *file;
    EVP_PKEY *pem_key;

    build(fx, fx->rsa_key, fx->rsa_cert, "", &der, &len);
    snprintf(p12_path, sizeof(p12_path), "%s/extract.p12", fx->dir);
    snprintf(pem_path, sizeof(pem_path), "%s/extract.pem", fx->dir);
    write_file(p12_path, der, len);
    snprintf(cmd, sizeof(cmd), "openssl pkcs12 -in '%s' -passin pass: -nodes -out '%s'", p12_path,
             pem_path);
    text = capture(cmd, &status);
    assert_int_equal(status, 0);
    free(text);
    snprintf(cmd, sizeof(cmd), "cat '%s'", pem_path);
    text = capture(cmd, &status);
    assert_non_null(strstr(text, "friendlyName: device-42"));
    assert_non_null(strstr(text, "subject=CN = device-rsa"));
    assert_non_null(strstr(text, "subject=CN = Test CA"));
    free(text);
    file = fopen(pem_path, "r");
    assert_non_null(file);
    pem_key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    assert_non_null(pem_key);
    assert_int_equal(EVP_PKEY_eq(pem_key, fx->rsa_key), 1);
    EVP_PKEY_free(pem_key);
    OPENSSL_clear_free(der, len);
}

/* assert_key_id checks that bag carries localKeyID = SHA-1 of cert, by which Windows and
 * OpenSSL pair the key with its certificate. */
static void assert_key_id(const PKCS12_SAFEBAG *bag, X509 *cert)
{
    const ASN1_TYPE *id = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID);
    unsigned char sha1[20];
    unsigned int sha1_len = 0;

    assert_non_null(id);
    assert_int_equal(id->type, V_ASN1_OCTET_STRING);
    assert_int_equal(X509_digest(cert, EVP_sha1(), sha1, &sha1_len), 1);
    assert_int_equal(ASN1_STRING_length(id->value.octet_string), sha1_len);
    assert_memory_equal(ASN1_STRING_get0_data(id->value.octet_string), sha1, sha1_len);
}

/* The PFX is written by hand (pfx_build.c): OpenSSL encodes what it parsed from it to the same
 * bytes (lengths, and the attributes' SET in DER order, which a long friendly name reverses),
 * and the key and its certificate carry the same local key id. */
static void test_der_is_canonical_and_key_pairs_with_cert(void **state)
{
    fixture_t *fx = *state;
    static const char long_name[] = "a-request-id-long-enough-to-sort-after-the-key-id";
    STACK_OF(X509) *chain = chain_of(fx->ca_cert);
    unsigned char *der = NULL, *again = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    const unsigned char *p;
    PKCS12 *p12;
    STACK_OF(PKCS7) * safes;
    int again_len, key_bags = 0;

    assert_int_equal(
        pc_pfx_build(fx->ec_key, fx->ec_cert, chain, long_name, "s3cret", &der, &len, &diag),
        PC_OK);
    p = der;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    assert_non_null(p12);
    assert_ptr_equal(p, der + len);
    again_len = i2d_PKCS12(p12, &again);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, der, len);
    safes = PKCS12_unpack_authsafes(p12);
    assert_non_null(safes);
    assert_int_equal(sk_PKCS7_num(safes), 2);
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *safe = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(safe);
        unsigned char *bags_der = NULL;
        int bags_len;

        assert_non_null(bags);
        /* the bags travel as bytes inside the part: encode them again and compare too */
        bags_len = ASN1_item_i2d((ASN1_VALUE *)bags, &bags_der, ASN1_ITEM_rptr(PKCS12_SAFEBAGS));
        assert_int_equal(bags_len, ASN1_STRING_length(safe->d.data));
        assert_memory_equal(bags_der, ASN1_STRING_get0_data(safe->d.data), (size_t)bags_len);
        OPENSSL_free(bags_der);
        const PKCS12_SAFEBAG *first = sk_PKCS12_SAFEBAG_value(bags, 0);
        assert_key_id(first, fx->ec_cert);
        if (PKCS12_SAFEBAG_get_nid(first) == NID_pkcs8ShroudedKeyBag)
            key_bags++;
        else /* the chain's certificate has no attributes */
            assert_null(PKCS12_SAFEBAG_get0_attrs(sk_PKCS12_SAFEBAG_value(bags, 1)));
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    assert_int_equal(key_bags, 1);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    OPENSSL_free(again);
    OPENSSL_clear_free(der, len);
    sk_X509_free(chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_ec_leaf),
        cmocka_unit_test(test_round_trip_rsa_leaf),
        cmocka_unit_test(test_no_chain_no_name),
        cmocka_unit_test(test_wrong_password_is_unauthenticated),
        cmocka_unit_test(test_openssl_verifies_mac_for_any_password),
        cmocka_unit_test(test_empty_password_accepts_null_mac),
        cmocka_unit_test(test_corrupt_pfx_is_bad_message),
        cmocka_unit_test(test_pfx_without_key_or_cert_is_bad_message),
        cmocka_unit_test(test_key_not_matching_cert_is_refused),
        cmocka_unit_test(test_openssl_cli_shows_modern_algorithms),
        cmocka_unit_test(test_openssl_cli_extracts_key_and_certs),
        cmocka_unit_test(test_der_is_canonical_and_key_pairs_with_cert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
