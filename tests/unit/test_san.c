/*
 * test_san.c - subject alternative names and the SID extension: what ends up in the
 * GENERAL_NAMES (type, OID, exact value) and which values are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "san.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define L10 "abcdefghij"
#define L60 L10 L10 L10 L10 L10 L10

static const pc_var_t items[] = {
    {"UserName", "ann"},
    {"UserPrincipalName", "ann@contoso.com"},
    {"EmailAddress", "ann@contoso.com"},
    {"DeviceName", "pc-01"},
    {"AAD_Device_ID", "0f3c1d2e-aaaa-bbbb-cccc-0123456789ab"},
    {"onPremisesSamAccountName", "Zo\xc3\xab"},
};
static const pc_vars_t vars = {items, COUNT(items)};

static void oid_text(const ASN1_OBJECT *obj, char *buf, int cap)
{
    OBJ_obj2txt(buf, cap, obj, 1);
}

static pc_err_t render1(pc_san_type_t type, const char *format, pc_cert_type_t cert,
                        GENERAL_NAMES **out, pc_diag_t *diag)
{
    pc_san_format_t f = {type, format};
    return pc_san_render(&f, 1, cert, &vars, out, diag);
}

static void test_upn_is_othername(void **state)
{
    GENERAL_NAMES *names = NULL;
    const GENERAL_NAME *gen;
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *value = NULL;
    char buf[64];
    (void)state;

    assert_int_equal(render1(PC_SAN_UPN, "{{UserPrincipalName}}", PC_CERT_USER, &names, NULL),
                     PC_OK);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    gen = sk_GENERAL_NAME_value(names, 0);
    assert_true(GENERAL_NAME_get0_otherName(gen, &oid, &value));
    oid_text(oid, buf, sizeof(buf));
    assert_string_equal(buf, "1.3.6.1.4.1.311.20.2.3");
    assert_int_equal(ASN1_TYPE_get(value), V_ASN1_UTF8STRING);
    assert_int_equal(ASN1_STRING_length(value->value.utf8string), 15);
    assert_memory_equal(ASN1_STRING_get0_data(value->value.utf8string), "ann@contoso.com", 15);
    GENERAL_NAMES_free(names);
}

static void test_upn_non_ascii_kept(void **state)
{
    GENERAL_NAMES *names = NULL;
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *value = NULL;
    (void)state;

    assert_int_equal(
        render1(PC_SAN_UPN, "{{onPremisesSamAccountName}}@contoso.com", PC_CERT_USER, &names, NULL),
        PC_OK);
    assert_true(GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(names, 0), &oid, &value));
    assert_int_equal(ASN1_STRING_length(value->value.utf8string), 16);
    assert_memory_equal(ASN1_STRING_get0_data(value->value.utf8string), "Zo\xc3\xab@contoso.com",
                        16);
    GENERAL_NAMES_free(names);
}

/* Email, DNS and URI are IA5Strings of their GENERAL_NAME kind, in the order given. */
static void test_all_types_in_order(void **state)
{
    static const pc_san_format_t formats[] = {
        {PC_SAN_EMAIL, "{{EmailAddress}}"},    {PC_SAN_DNS, "{{DeviceName}}.contoso.com"},
        {PC_SAN_DNS, "*.contoso.com"},         {PC_SAN_URI, "urn:uuid:{{AAD_Device_ID}}"},
        {PC_SAN_UPN, "{{UserPrincipalName}}"},
    };
    static const struct {
        int kind;
        const char *value;
    } want[] = {
        {GEN_EMAIL, "ann@contoso.com"}, {GEN_DNS, "pc-01.contoso.com"},
        {GEN_DNS, "*.contoso.com"},     {GEN_URI, "urn:uuid:0f3c1d2e-aaaa-bbbb-cccc-0123456789ab"},
        {GEN_OTHERNAME, NULL},
    };
    GENERAL_NAMES *names = NULL;
    pc_diag_t diag = {{0}};
    (void)state;

    if (pc_san_render(formats, COUNT(formats), PC_CERT_USER, &vars, &names, &diag) != PC_OK)
        fail_msg("%s", diag.msg);
    assert_int_equal(sk_GENERAL_NAME_num(names), (int)COUNT(want));
    for (size_t i = 0; i < COUNT(want); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(names, (int)i);
        int kind;
        const ASN1_STRING *str = GENERAL_NAME_get0_value(gen, &kind);
        assert_int_equal(kind, want[i].kind);
        if (want[i].value == NULL)
            continue;
        assert_int_equal(ASN1_STRING_type(str), V_ASN1_IA5STRING);
        assert_int_equal(ASN1_STRING_length(str), (int)strlen(want[i].value));
        assert_memory_equal(ASN1_STRING_get0_data(str), want[i].value, strlen(want[i].value));
    }

    /* and the whole set encodes as a SubjectAltName extension */
    X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
    assert_non_null(ext);
    X509_EXTENSION_free(ext);
    GENERAL_NAMES_free(names);
}

static void test_no_formats(void **state)
{
    GENERAL_NAMES *names = NULL;
    (void)state;
    assert_int_equal(pc_san_render(NULL, 0, PC_CERT_USER, &vars, &names, NULL), PC_OK);
    assert_int_equal(sk_GENERAL_NAME_num(names), 0);
    GENERAL_NAMES_free(names);
}

typedef struct bad_case {
    pc_san_type_t type;
    const char *format;
    pc_cert_type_t cert;
    pc_err_t err;
    const char *msg_part;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {PC_SAN_EMAIL, "ann", PC_CERT_USER, PC_ERR_INVALID_PARAM, "email SAN 'ann'"},
    {PC_SAN_EMAIL, "a@b@c.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "exactly one '@'"},
    {PC_SAN_EMAIL, "@contoso.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "both sides"},
    {PC_SAN_EMAIL, "ann@", PC_CERT_USER, PC_ERR_INVALID_PARAM, "both sides"},
    {PC_SAN_EMAIL, "zo\xc3\xab@x.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "ASCII"},
    {PC_SAN_EMAIL, "ann smith@x.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "without spaces"},
    {PC_SAN_EMAIL, "ann@bad_domain", PC_CERT_USER, PC_ERR_INVALID_PARAM, "domain"},
    {PC_SAN_DNS, "-pc.contoso.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "DNS SAN '-pc"},
    {PC_SAN_DNS, "pc..contoso.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_DNS, "pc_01.contoso.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_DNS, "pc.contoso.com.", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_DNS, "a.*.contoso.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_DNS, "*", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_DNS, L60 "abcd.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "1-63"},
    {PC_SAN_DNS, L60 "." L60 "." L60 "." L60 "." L10 "abc", PC_CERT_USER, PC_ERR_INVALID_PARAM,
     "longer than 253"},
    {PC_SAN_DNS, "z\xc3\xab.com", PC_CERT_USER, PC_ERR_INVALID_PARAM, "label"},
    {PC_SAN_URI, "no-scheme", PC_CERT_USER, PC_ERR_INVALID_PARAM, "URI SAN 'no-scheme'"},
    {PC_SAN_URI, "1http://x", PC_CERT_USER, PC_ERR_INVALID_PARAM, "scheme"},
    {PC_SAN_URI, "https:", PC_CERT_USER, PC_ERR_INVALID_PARAM, "nothing after the scheme"},
    {PC_SAN_URI, "https://x/a b", PC_CERT_USER, PC_ERR_INVALID_PARAM, "without spaces"},
    {PC_SAN_UPN, "{{UserPrincipalName}}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM,
     "UPN SAN: variable {{UserPrincipalName}} is a user variable"},
    {PC_SAN_DNS, "{{FullyQualifiedDomainName}}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM,
     "{{FullyQualifiedDomainName}} has no value"},
    {PC_SAN_DNS, "{{DeviceName}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM, "unbalanced"},
    {PC_SAN_UPN, "", PC_CERT_USER, PC_ERR_INVALID_PARAM, "renders empty"},
    {PC_SAN_UPN, "a\tb", PC_CERT_USER, PC_ERR_INVALID_PARAM, "control"},
    {(pc_san_type_t)99, "x", PC_CERT_USER, PC_ERR_NOT_SUPPORTED, "not supported"},
};

static void test_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(bad_cases); i++) {
        const bad_case_t *c = &bad_cases[i];
        GENERAL_NAMES *names = (GENERAL_NAMES *)1;
        pc_diag_t diag = {{0}};
        pc_err_t err = render1(c->type, c->format, c->cert, &names, &diag);

        if (err != c->err)
            fail_msg("'%s': got %s (%s)", c->format, pc_strerror(err), diag.msg);
        assert_null(names);
        if (strstr(diag.msg, c->msg_part) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", c->format, diag.msg, c->msg_part);
    }
}

static void test_good_edge_values(void **state)
{
    static const struct {
        pc_san_type_t type;
        const char *format;
    } good[] = {
        {PC_SAN_DNS, L60 "abc.com"},
        {PC_SAN_DNS, L60 "." L60 "." L60 "." L60 ".abcdefghi"}, /* 253 */
        {PC_SAN_DNS, "localhost"},
        {PC_SAN_DNS, "x-1.contoso.com"},
        {PC_SAN_URI, "https://contoso.com/device?id=1"},
        {PC_SAN_URI, "tag:contoso.com,2024:{{UserName}}"},
        {PC_SAN_EMAIL, "ann.lee+tag@contoso.com"},
    };
    (void)state;
    for (size_t i = 0; i < COUNT(good); i++) {
        GENERAL_NAMES *names = NULL;
        pc_diag_t diag = {{0}};
        if (render1(good[i].type, good[i].format, PC_CERT_USER, &names, &diag) != PC_OK)
            fail_msg("'%s': %s", good[i].format, diag.msg);
        GENERAL_NAMES_free(names);
    }
}

#define SID "S-1-5-21-3623811015-3361044348-30300820-1013"

static void test_sid_extension(void **state)
{
    X509_EXTENSION *ext = NULL;
    pc_diag_t diag = {{0}};
    char buf[64];
    (void)state;

    if (pc_sid_extension_new(SID, &ext, &diag) != PC_OK)
        fail_msg("%s", diag.msg);
    oid_text(X509_EXTENSION_get_object(ext), buf, sizeof(buf));
    assert_string_equal(buf, "1.3.6.1.4.1.311.25.2");
    assert_false(X509_EXTENSION_get_critical(ext));

    const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(ext);
    const unsigned char *der = ASN1_STRING_get0_data(data);
    const unsigned char *p = der;
    int len = ASN1_STRING_length(data);

    /* Microsoft's bytes: SEQUENCE { [0] { OID 1.3.6.1.4.1.311.25.2.1, [0] { OCTET STRING } } } */
    static const unsigned char head[] = {0xa0, 0x3c, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01,
                                         0x82, 0x37, 0x19, 0x02, 0x01, 0xa0, 0x2e, 0x04, 0x2c};
    assert_int_equal(len, 2 + (int)sizeof(head) + (int)strlen(SID));
    assert_int_equal(der[0], 0x30);
    assert_int_equal(der[1], len - 2);
    assert_memory_equal(der + 2, head, sizeof(head));
    assert_memory_equal(der + 2 + sizeof(head), SID, strlen(SID));

    GENERAL_NAMES *names = d2i_GENERAL_NAMES(NULL, &p, len);
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *value = NULL;
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    assert_true(GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(names, 0), &oid, &value));
    oid_text(oid, buf, sizeof(buf));
    assert_string_equal(buf, "1.3.6.1.4.1.311.25.2.1");
    assert_int_equal(ASN1_TYPE_get(value), V_ASN1_OCTET_STRING);
    assert_int_equal(ASN1_STRING_length(value->value.octet_string), (int)strlen(SID));
    assert_memory_equal(ASN1_STRING_get0_data(value->value.octet_string), SID, strlen(SID));
    GENERAL_NAMES_free(names);
    X509_EXTENSION_free(ext);
}

static void test_sid_short_forms(void **state)
{
    static const char *const ok[] = {"S-1-5-18", "S-1-5-32-544", "S-1-281474976710655-4294967295"};
    (void)state;
    for (size_t i = 0; i < COUNT(ok); i++) {
        X509_EXTENSION *ext = NULL;
        pc_diag_t diag = {{0}};
        if (pc_sid_extension_new(ok[i], &ext, &diag) != PC_OK)
            fail_msg("%s: %s", ok[i], diag.msg);
        X509_EXTENSION_free(ext);
    }
}

static void test_sid_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "S-1-",
        "S-1-5",
        "S-1-5-",
        "S-1-5--21",
        "S-2-5-21",
        "s-1-5-21",
        "S-1-5-21-abc",
        "S-1-5-21 ",
        "S-1-5-4294967296",
        "S-1-281474976710656-1",
        "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        "X",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(bad); i++) {
        X509_EXTENSION *ext = (X509_EXTENSION *)1;
        pc_diag_t diag = {{0}};
        if (pc_sid_extension_new(bad[i], &ext, &diag) != PC_ERR_INVALID_PARAM)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(ext);
        assert_non_null(strstr(diag.msg, "SID"));
    }
    X509_EXTENSION *ext = NULL;
    assert_int_equal(pc_sid_extension_new(NULL, &ext, NULL), PC_ERR_INVALID_PARAM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upn_is_othername),
        cmocka_unit_test(test_upn_non_ascii_kept),
        cmocka_unit_test(test_all_types_in_order),
        cmocka_unit_test(test_no_formats),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_good_edge_values),
        cmocka_unit_test(test_sid_extension),
        cmocka_unit_test(test_sid_short_forms),
        cmocka_unit_test(test_sid_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
