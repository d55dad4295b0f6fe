/*
 * test_csr.c - the CSR a worker sends carries what the profile asked for, signed by the new key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "csr.h"

#define SID_OID "1.3.6.1.4.1.311.25.2"

static EVP_PKEY *rsa_key;

static int group_setup(void **state)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return rsa_key != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(rsa_key);
    return 0;
}

static X509_NAME *name_cn(const char *cn)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    return name;
}

static GENERAL_NAMES *sans_email(const char *email)
{
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *value = ASN1_IA5STRING_new();
    assert_true(sans != NULL && gn != NULL && value != NULL);
    assert_int_equal(ASN1_STRING_set(value, email, -1), 1);
    GENERAL_NAME_set0_value(gn, GEN_EMAIL, value);
    assert_true(sk_GENERAL_NAME_push(sans, gn) > 0);
    return sans;
}

static X509_EXTENSION *sid_ext(const char *oid_text, const char *payload)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(oid_text, 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    assert_true(oid != NULL && data != NULL);
    assert_int_equal(
        ASN1_OCTET_STRING_set(data, (const unsigned char *)payload, (int)strlen(payload)), 1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, data);
    assert_non_null(ext);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(data);
    return ext;
}

/* The requested extension with OID oid, or NULL; borrowed from exts. */
static X509_EXTENSION *find_ext(STACK_OF(X509_EXTENSION) * exts, const char *oid)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int at = X509v3_get_ext_by_OBJ(exts, obj, -1);
    ASN1_OBJECT_free(obj);
    return at >= 0 ? sk_X509_EXTENSION_value(exts, at) : NULL;
}

static void test_csr_carries_request(void **state)
{
    X509_NAME *subject = name_cn("alice");
    GENERAL_NAMES *sans = sans_email("alice@example.com");
    X509_EXTENSION *sid = sid_ext(SID_OID, "S-1-5-21-1-2-3-1001");
    const char *ekus[] = {"clientAuth", "1.3.6.1.5.5.7.3.4"};
    pc_csr_params_t params = {.subject = subject,
                              .sans = sans,
                              .ekus = ekus,
                              .eku_count = 2,
                              .key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
                              .sid = sid};
    X509_REQ *req = NULL;
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_csr_new(rsa_key, &params, &req, &diag), PC_OK);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, rsa_key), 1);
    assert_int_equal(X509_REQ_get_version(req), 0);
    assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(req), subject), 0);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), rsa_key), 1);

    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);

    /* SAN: the email, not critical since the subject names the holder */
    X509_EXTENSION *san_ext = find_ext(exts, "2.5.29.17");
    assert_non_null(san_ext);
    assert_int_equal(X509_EXTENSION_get_critical(san_ext), 0);
    GENERAL_NAMES *got_sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(got_sans), 1);
    int type = 0;
    ASN1_IA5STRING *email = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(got_sans, 0), &type);
    assert_int_equal(type, GEN_EMAIL);
    assert_string_equal((const char *)ASN1_STRING_get0_data(email), "alice@example.com");
    GENERAL_NAMES_free(got_sans);

    /* EKU: both, by OID */
    EXTENDED_KEY_USAGE *eku = X509V3_get_d2i(exts, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
    char oid[64];
    OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, 0), 1);
    assert_string_equal(oid, "1.3.6.1.5.5.7.3.2");
    OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, 1), 1);
    assert_string_equal(oid, "1.3.6.1.5.5.7.3.4");
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

    /* keyUsage: critical, exactly the two bits */
    X509_EXTENSION *ku_ext = find_ext(exts, "2.5.29.15");
    assert_non_null(ku_ext);
    assert_int_equal(X509_EXTENSION_get_critical(ku_ext), 1);
    ASN1_BIT_STRING *ku = X509V3_get_d2i(exts, NID_key_usage, NULL, NULL);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 1), 0); /* nonRepudiation */
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 2), 1); /* keyEncipherment */
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 5), 0); /* keyCertSign */
    ASN1_BIT_STRING_free(ku);

    /* SID: copied byte for byte */
    X509_EXTENSION *got_sid = find_ext(exts, SID_OID);
    assert_non_null(got_sid);
    assert_int_equal(
        ASN1_STRING_cmp(X509_EXTENSION_get_data(got_sid), X509_EXTENSION_get_data(sid)), 0);

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    X509_EXTENSION_free(sid);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
}

static void test_csr_unknown_eku_named(void **state)
{
    X509_NAME *subject = name_cn("bob");
    const char *ekus[] = {"clientAuth", "frobnicateAuth"};
    pc_csr_params_t params = {.subject = subject, .ekus = ekus, .eku_count = 2};
    X509_REQ *req = NULL;
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_csr_new(rsa_key, &params, &req, &diag), PC_ERR_INVALID_PARAM);
    assert_null(req);
    assert_non_null(strstr(diag.msg, "frobnicateAuth"));
    X509_NAME_free(subject);
}

static void test_csr_p384_uses_sha384(void **state)
{
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_NAME *subject = name_cn("device-1");
    pc_csr_params_t params = {.subject = subject};
    X509_REQ *req384 = NULL, *req256 = NULL;

    assert_int_equal(pc_csr_new(p384, &params, &req384, NULL), PC_OK);
    assert_int_equal(pc_csr_new(p256, &params, &req256, NULL), PC_OK);
    assert_int_equal(X509_REQ_get_signature_nid(req384), NID_ecdsa_with_SHA384);
    assert_int_equal(X509_REQ_get_signature_nid(req256), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_REQ_verify(req384, p384), 1);
    /* no extension asked for, none requested */
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req384);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();

    X509_REQ_free(req384);
    X509_REQ_free(req256);
    X509_NAME_free(subject);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p256);
}

static void test_csr_empty_subject_makes_san_critical(void **state)
{
    X509_NAME *subject = name_cn(NULL);
    GENERAL_NAMES *sans = sans_email("carol@example.com");
    pc_csr_params_t params = {.subject = subject, .sans = sans};
    X509_REQ *req = NULL;

    assert_int_equal(pc_csr_new(rsa_key, &params, &req, NULL), PC_OK);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    X509_EXTENSION *san = find_ext(exts, "2.5.29.17");
    assert_non_null(san);
    assert_int_equal(X509_EXTENSION_get_critical(san), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
}

static void test_csr_refuses_bad_inputs(void **state)
{
    X509_NAME *subject = name_cn("dave");
    X509_EXTENSION *wrong = sid_ext("1.2.3.4", "x");
    pc_csr_params_t params = {.subject = subject, .sid = wrong};
    X509_REQ *req = NULL;
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_csr_new(rsa_key, &params, &req, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "1.2.3.4"));
    assert_null(req);

    params.sid = NULL;
    params.key_usage = 0x10000; /* no such key usage */
    assert_int_equal(pc_csr_new(rsa_key, &params, &req, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "key usage"));

    params.key_usage = 0;
    params.subject = NULL;
    assert_int_equal(pc_csr_new(rsa_key, &params, &req, &diag), PC_ERR_INVALID_PARAM);
    assert_null(req);

    X509_EXTENSION_free(wrong);
    X509_NAME_free(subject);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_carries_request),
        cmocka_unit_test(test_csr_unknown_eku_named),
        cmocka_unit_test(test_csr_p384_uses_sha384),
        cmocka_unit_test(test_csr_empty_subject_makes_san_critical),
        cmocka_unit_test(test_csr_refuses_bad_inputs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
