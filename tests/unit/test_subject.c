/*
 * test_subject.c - subject names from formats: what lands in each attribute of the X509_NAME,
 * and the errors a profile author would see. Most cases are one table; the variable lists of
 * DESIGN.md are walked in loops below it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "subject.h"

#define A8 "aaaaaaaa"
#define A64 A8 A8 A8 A8 A8 A8 A8 A8
#define E8 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" /* eight e-acute */
#define E64 E8 E8 E8 E8 E8 E8 E8 E8

#define MAX_ENTRIES 8
#define MAX_VARS 4

typedef struct expect_entry {
    int rdn;           /* RDN index, 0 = first written */
    const char *sn;    /* short name, or dotted OID */
    const char *value; /* exact bytes */
    int asn1_type;     /* 0 = not checked */
} expect_entry_t;

typedef struct subject_case {
    const char *title;
    const char *format;
    pc_cert_type_t type;
    pc_var_t vars[MAX_VARS]; /* override the standard values; looked up first */
    bool allow_long;
    pc_err_t err;
    const char *msg_part; /* substring of the error message */
    expect_entry_t entries[MAX_ENTRIES];
} subject_case_t;

static const pc_var_t standard_vars[] = {
    {"UserName", "ann"},
    {"UserPrincipalName", "ann@contoso.com"},
    {"EmailAddress", "ann@contoso.com"},
    {"OnPrem_Distinguished_Name", "CN=Ann,OU=Sales,DC=contoso,DC=com"},
    {"DeviceName", "PC-01"},
    {"SerialNumber", "SN123"},
    {"AAD_Device_ID", "0f3c1d2e-aaaa-bbbb-cccc-0123456789ab"},
};

#define U PC_CERT_USER
#define D PC_CERT_DEVICE
#define OK PC_OK
#define BAD PC_ERR_INVALID_PARAM
#define UTF8 V_ASN1_UTF8STRING
#define PRINTABLE V_ASN1_PRINTABLESTRING
#define IA5 V_ASN1_IA5STRING

static subject_case_t cases[] = {
    /* the plain cases */
    {"simple CN", "CN={{UserName}}", U, {{0}}, false, OK, NULL, {{0, "CN", "ann", UTF8}}},
    {"written order kept",
     "CN={{UserName}},OU=Staff,O=Contoso,C=US",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", UTF8},
      {1, "OU", "Staff", UTF8},
      {2, "O", "Contoso", UTF8},
      {3, "C", "US", PRINTABLE}}},
    {"literal around a variable",
     "CN={{UserName}} (staff)",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann (staff)", 0}}},
    {"case-insensitive names and types",
     "cn={{username}},o={{USERPRINCIPALNAME}}",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", 0}, {1, "O", "ann@contoso.com", 0}}},
    {"whitespace around types, =, separators and in braces",
     "  CN  =  {{ UserName }}  ,  O = Contoso Ltd  ",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", 0}, {1, "O", "Contoso Ltd", 0}}},
    /* a substituted value is data: each special character stays in its one attribute */
    {"value with +",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "a+b"}},
     false,
     OK,
     NULL,
     {{0, "CN", "a+b", 0}, {1, "O", "x", 0}}},
    {"value with ;",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "a;b"}},
     false,
     OK,
     NULL,
     {{0, "CN", "a;b", 0}, {1, "O", "x", 0}}},
    {"value with ,",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "Doe, Ann"}},
     false,
     OK,
     NULL,
     {{0, "CN", "Doe, Ann", 0}, {1, "O", "x", 0}}},
    {"value with =",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "a=b,O=evil"}},
     false,
     OK,
     NULL,
     {{0, "CN", "a=b,O=evil", 0}, {1, "O", "x", 0}}},
    {"value with quote",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "a\"b\""}},
     false,
     OK,
     NULL,
     {{0, "CN", "a\"b\"", 0}, {1, "O", "x", 0}}},
    {"value with backslash",
     "CN={{UserName}},O=x",
     U,
     {{"UserName", "a\\,b\\"}},
     false,
     OK,
     NULL,
     {{0, "CN", "a\\,b\\", 0}, {1, "O", "x", 0}}},
    {"value with #",
     "CN={{UserName}}",
     U,
     {{"UserName", "#0403616263"}},
     false,
     OK,
     NULL,
     {{0, "CN", "#0403616263", 0}}},
    {"value with < >",
     "CN={{UserName}}",
     U,
     {{"UserName", "<ann>"}},
     false,
     OK,
     NULL,
     {{0, "CN", "<ann>", 0}}},
    {"value with braces is not expanded again",
     "CN={{UserName}}",
     U,
     {{"UserName", "{{UserPrincipalName}}"}},
     false,
     OK,
     NULL,
     {{0, "CN", "{{UserPrincipalName}}", 0}}},
    {"value with leading and trailing spaces",
     "CN= {{UserName}} ,O=x",
     U,
     {{"UserName", "  ann  "}},
     false,
     OK,
     NULL,
     {{0, "CN", "  ann  ", 0}, {1, "O", "x", 0}}},
    {"whole DN as OnPrem_Distinguished_Name",
     "CN={{OnPrem_Distinguished_Name}},O=Contoso",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "CN=Ann,OU=Sales,DC=contoso,DC=com", 0}, {1, "O", "Contoso", 0}}},
    {"value in quotes with a quote and comma",
     "O=\"{{UserName}}, Inc\"",
     U,
     {{"UserName", "a\"b"}},
     false,
     OK,
     NULL,
     {{0, "O", "a\"b, Inc", 0}}},
    {"non-ASCII UTF-8",
     "CN={{UserName}}",
     U,
     {{"UserName", "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m"}},
     false,
     OK,
     NULL,
     {{0, "CN", "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m", UTF8}}},
    {"CJK",
     "CN={{UserName}},O=\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe",
     U,
     {{"UserName", "\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e"}},
     false,
     OK,
     NULL,
     {{0, "CN", "\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e", 0},
      {1, "O", "\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe", 0}}},
    /* literal syntax of the format */
    {"quoted literal with commas",
     "CN={{UserName}},O=\"Contoso, Ltd\"",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", 0}, {1, "O", "Contoso, Ltd", 0}}},
    {"doubled quote inside quotes",
     "O=\"Say \"\"hi\"\"\"",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "O", "Say \"hi\"", 0}}},
    {"quoted spaces kept",
     "O=\"  padded  \"",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "O", "  padded  ", 0}}},
    {"backslash escapes",
     "O=Contoso\\, Ltd\\+Co\\;\\\\\\\"",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "O", "Contoso, Ltd+Co;\\\"", 0}}},
    {"escaped trailing space kept",
     "CN=ann\\ ,O=x",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann ", 0}, {1, "O", "x", 0}}},
    {"hex escapes", "CN=Zo\\C3\\ab\\2C", U, {{0}}, false, OK, NULL, {{0, "CN", "Zo\xc3\xab,", 0}}},
    {"multi-valued RDN",
     "CN={{UserName}}+OU=Staff,O=Contoso",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", 0}, {0, "OU", "Staff", 0}, {1, "O", "Contoso", 0}}},
    {"semicolon separator",
     "CN={{UserName}};O=Contoso",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "ann", 0}, {1, "O", "Contoso", 0}}},
    {"dotted OID type",
     "1.2.3.4={{UserName}},OID.2.5.4.3=x",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "1.2.3.4", "ann", UTF8}, {1, "CN", "x", 0}}},
    {"all named types",
     "L=Paris,ST=IDF,STREET=1 Rue X,POSTALCODE=75001,G=Ann,SN=Lee,T=Dr,DC=contoso",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "L", "Paris", 0},
      {1, "ST", "IDF", 0},
      {2, "street", "1 Rue X", 0},
      {3, "postalCode", "75001", 0},
      {4, "GN", "Ann", 0},
      {5, "SN", "Lee", 0},
      {6, "title", "Dr", 0},
      {7, "DC", "contoso", IA5}}},
    {"E is IA5",
     "E={{EmailAddress}}",
     U,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "emailAddress", "ann@contoso.com", IA5}}},
    {"device certificate",
     "CN={{DeviceName}},SERIALNUMBER={{serialnumber}}",
     D,
     {{0}},
     false,
     OK,
     NULL,
     {{0, "CN", "PC-01", 0}, {1, "serialNumber", "SN123", PRINTABLE}}},
    /* RFC 5280: X520SerialNumber is a PrintableString; anything else is refused, never
     * written as a UTF8String */
    {"SERIALNUMBER not printable (non-ASCII)",
     "SERIALNUMBER={{SerialNumber}}",
     D,
     {{"SerialNumber", "Zo\xc3\xab"}},
     false,
     BAD,
     "not a PrintableString",
     {{0}}},
    {"SERIALNUMBER not printable (_ and @)",
     "SERIALNUMBER={{SerialNumber}}",
     D,
     {{"SerialNumber", "ABC_123@x"}},
     false,
     BAD,
     "not a PrintableString",
     {{0}}},
    /* bounds */
    {"CN of 64 characters", "CN=" A64, U, {{0}}, false, OK, NULL, {{0, "CN", A64, 0}}},
    {"CN of 65 characters", "CN=" A64 "b", U, {{0}}, false, BAD, "65 characters", {{0}}},
    {"CN of 65 characters, long allowed",
     "CN=" A64 "b",
     U,
     {{0}},
     true,
     OK,
     NULL,
     {{0, "CN", A64 "b", 0}}},
    {"CN of 70 from a variable",
     "CN={{UserName}}",
     U,
     {{"UserName", A64 "bbbbbb"}},
     false,
     BAD,
     "CN value is 70 characters, over the X.520 limit of 64",
     {{0}}},
    {"CN of 64 two-byte characters",
     "CN={{UserName}}",
     U,
     {{"UserName", E64}},
     false,
     OK,
     NULL,
     {{0, "CN", E64, 0}}},
    /* errors */
    {"device certificate with a user variable",
     "CN={{UserPrincipalName}}",
     D,
     {{0}},
     false,
     BAD,
     "{{UserPrincipalName}} is a user variable",
     {{0}}},
    {"unknown variable", "CN={{Foo}}", U, {{0}}, false, BAD, "unknown variable {{Foo}}", {{0}}},
    {"variable without value", "CN={{MEID}}", D, {{0}}, false, BAD, "{{MEID}} has no value", {{0}}},
    {"unclosed braces", "CN={{UserName}", U, {{0}}, false, BAD, "no matching '}}'", {{0}}},
    {"unopened braces", "CN=UserName}}", U, {{0}}, false, BAD, "no matching '{{'", {{0}}},
    {"unknown RDN type", "CN=a,XX=b", U, {{0}}, false, BAD, "unknown RDN type 'XX'", {{0}}},
    {"missing =", "CN", U, {{0}}, false, BAD, "missing '=' after 'CN'", {{0}}},
    {"empty RDN", "CN=a,,O=b", U, {{0}}, false, BAD, "empty RDN at position 6", {{0}}},
    {"trailing separator", "CN=a,", U, {{0}}, false, BAD, "ends with the separator", {{0}}},
    {"unterminated quote", "O=\"Contoso, Ltd", U, {{0}}, false, BAD, "unterminated quote", {{0}}},
    {"text after quote",
     "O=\"Contoso\" Ltd",
     U,
     {{0}},
     false,
     BAD,
     "after the closing quote",
     {{0}}},
    {"stray quote", "O=Cont\"oso", U, {{0}}, false, BAD, "unexpected '\"' at position 7", {{0}}},
    {"invalid escape", "O=a\\qb", U, {{0}}, false, BAD, "invalid escape at position 4", {{0}}},
    {"NUL from hex escape", "O=a\\00b", U, {{0}}, false, BAD, "NUL", {{0}}},
    {"invalid UTF-8 from hex escape", "O=a\\C3", U, {{0}}, false, BAD, "not valid UTF-8", {{0}}},
    {"invalid UTF-8 in a value",
     "CN={{UserName}}",
     U,
     {{"UserName", "a\xc3\x28"}},
     false,
     BAD,
     "{{UserName}} is not valid UTF-8",
     {{0}}},
    {"invalid UTF-8 in the format",
     "CN=a\xff",
     U,
     {{0}},
     false,
     BAD,
     "not valid UTF-8 at position 5",
     {{0}}},
    {"overlong UTF-8 in the format", "CN=\xc0\xaf", U, {{0}}, false, BAD, "not valid UTF-8", {{0}}},
    {"C with 3 letters", "C=USA", U, {{0}}, false, BAD, "two-letter country code", {{0}}},
    {"C with digits", "C=U1", U, {{0}}, false, BAD, "two-letter country code", {{0}}},
    {"non-ASCII in E",
     "E={{EmailAddress}}",
     U,
     {{"EmailAddress", "zo\xc3\xab@x.com"}},
     false,
     BAD,
     "E value 'zo\xc3\xab@x.com' holds non-ASCII",
     {{0}}},
    {"empty format", "", U, {{0}}, false, BAD, "format is empty", {{0}}},
    {"blank format", "   ", U, {{0}}, false, BAD, "format is empty", {{0}}},
    {"empty value",
     "CN={{UserName}}",
     U,
     {{"UserName", ""}},
     false,
     BAD,
     "CN value is empty",
     {{0}}},
    {"empty literal value", "CN=,O=x", U, {{0}}, false, BAD, "CN value is empty", {{0}}},
    {"bad OID", "1..2=x", U, {{0}}, false, BAD, "invalid OID '1..2'", {{0}}},
};

static pc_vars_t case_vars(const subject_case_t *c, pc_var_t *items, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < MAX_VARS && c->vars[i].name != NULL; i++)
        items[n++] = c->vars[i];
    for (size_t i = 0; i < sizeof(standard_vars) / sizeof(standard_vars[0]) && n < cap; i++)
        items[n++] = standard_vars[i];
    return (pc_vars_t){.items = items, .count = n};
}

static void entry_name(const X509_NAME_ENTRY *ne, char *buf, size_t cap)
{
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(ne);
    int nid = OBJ_obj2nid(obj);

    if (nid != NID_undef)
        snprintf(buf, cap, "%s", OBJ_nid2sn(nid));
    else
        OBJ_obj2txt(buf, (int)cap, obj, 1);
}

static void check_name(const subject_case_t *c, const X509_NAME *name)
{
    size_t expected = 0;

    while (expected < MAX_ENTRIES && c->entries[expected].sn != NULL)
        expected++;
    if ((size_t)X509_NAME_entry_count(name) != expected)
        fail_msg("%s: %d entries, expected %zu", c->title, X509_NAME_entry_count(name), expected);
    for (size_t i = 0; i < expected; i++) {
        const expect_entry_t *e = &c->entries[i];
        const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, (int)i);
        const ASN1_STRING *str = X509_NAME_ENTRY_get_data(ne);
        char sn[80];

        entry_name(ne, sn, sizeof(sn));
        if (strcmp(sn, e->sn) != 0 || X509_NAME_ENTRY_set(ne) != e->rdn)
            fail_msg("%s: entry %zu is %s in RDN %d, expected %s in RDN %d", c->title, i, sn,
                     X509_NAME_ENTRY_set(ne), e->sn, e->rdn);
        if ((size_t)ASN1_STRING_length(str) != strlen(e->value) ||
            memcmp(ASN1_STRING_get0_data(str), e->value, strlen(e->value)) != 0)
            fail_msg("%s: entry %zu value '%.*s', expected '%s'", c->title, i,
                     ASN1_STRING_length(str), (const char *)ASN1_STRING_get0_data(str), e->value);
        if (e->asn1_type != 0 && ASN1_STRING_type(str) != e->asn1_type)
            fail_msg("%s: entry %zu ASN.1 type %d, expected %d", c->title, i, ASN1_STRING_type(str),
                     e->asn1_type);
    }
}

/* The name must also survive DER: same entries and RDN structure after a round trip. */
static void check_der(const X509_NAME *name)
{
    unsigned char *der = NULL;
    int len = i2d_X509_NAME(name, &der);
    const unsigned char *p = der;
    X509_NAME *back;
    int n = X509_NAME_entry_count(name);

    assert_true(len > 0);
    back = d2i_X509_NAME(NULL, &p, len);
    assert_non_null(back);
    assert_int_equal(X509_NAME_entry_count(back), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(back, i)),
                         X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i)));
    assert_int_equal(X509_NAME_cmp(back, name), 0);
    X509_NAME_free(back);
    OPENSSL_free(der);
}

/* One cmocka test per row, so a failure names its row. */
static void test_case(void **state)
{
    const subject_case_t *c = *state;
    pc_var_t items[16];
    pc_vars_t vars = case_vars(c, items, 16);
    pc_diag_t diag = {{0}};
    X509_NAME *name = NULL;
    pc_err_t err = pc_subject_render(c->format, c->type, &vars, c->allow_long, &name, &diag);

    if (err != c->err)
        fail_msg("%s: got %s (%s), expected %s", c->title, pc_strerror(err), diag.msg,
                 pc_strerror(c->err));
    if (err != PC_OK) {
        assert_null(name);
        if (strstr(diag.msg, c->msg_part) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", c->title, diag.msg, c->msg_part);
        return;
    }
    check_name(c, name);
    check_der(name);
    X509_NAME_free(name);
}

static const char *const user_list[] = {
    "UserName",
    "UserPrincipalName",
    "EmailAddress",
    "AAD_Device_ID",
    "DeviceId",
    "SERIALNUMBER",
    "IMEINumber",
    "OnPrem_Distinguished_Name",
    "onPremisesSamAccountName",
};
static const char *const device_list[] = {
    "AAD_Device_ID",
    "AzureADDeviceId",
    "DeviceId",
    "Device_Serial",
    "SerialNumber",
    "Device_IMEI",
    "IMEINumber",
    "IMEI",
    "WiFiMacAddress",
    "DeviceName",
    "FullyQualifiedDomainName",
    "MEID",
};
static const char *const user_only[] = {
    "UserName",
    "UserPrincipalName",
    "EmailAddress",
    "OnPrem_Distinguished_Name",
    "onPremisesSamAccountName",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Renders CN={{name}} with name's value set to "v:name" and returns the error. */
static pc_err_t render_var(const char *var, pc_cert_type_t type, pc_diag_t *diag)
{
    char format[80], value[80];
    pc_var_t item = {var, value};
    pc_vars_t vars = {&item, 1};
    X509_NAME *name = NULL;
    pc_err_t err;

    snprintf(format, sizeof(format), "CN={{%s}}", var);
    snprintf(value, sizeof(value), "v:%s", var);
    err = pc_subject_render(format, type, &vars, false, &name, diag);
    if (err == PC_OK) {
        const ASN1_STRING *str = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, 0));
        assert_int_equal(X509_NAME_entry_count(name), 1);
        assert_int_equal(ASN1_STRING_length(str), (int)strlen(value));
        assert_memory_equal(ASN1_STRING_get0_data(str), value, strlen(value));
        X509_NAME_free(name);
    }
    return err;
}

static void test_every_user_variable(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(user_list); i++) {
        pc_diag_t diag = {{0}};
        if (render_var(user_list[i], PC_CERT_USER, &diag) != PC_OK)
            fail_msg("user variable %s: %s", user_list[i], diag.msg);
    }
    /* user certificates may use the device variables too */
    for (size_t i = 0; i < COUNT(device_list); i++) {
        pc_diag_t diag = {{0}};
        if (render_var(device_list[i], PC_CERT_USER, &diag) != PC_OK)
            fail_msg("device variable %s in a user cert: %s", device_list[i], diag.msg);
    }
}

static void test_every_device_variable(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(device_list); i++) {
        pc_diag_t diag = {{0}};
        if (render_var(device_list[i], PC_CERT_DEVICE, &diag) != PC_OK)
            fail_msg("device variable %s: %s", device_list[i], diag.msg);
    }
}

static void test_user_variables_refused_for_devices(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(user_only); i++) {
        pc_diag_t diag = {{0}};
        assert_int_equal(render_var(user_only[i], PC_CERT_DEVICE, &diag), PC_ERR_INVALID_PARAM);
        assert_non_null(strstr(diag.msg, user_only[i]));
        assert_non_null(strstr(diag.msg, "user variable"));
    }
}

/* Every value below goes into CN and nowhere else, whatever it holds. */
static void test_values_never_split_rdns(void **state)
{
    static const char *const values[] = {
        "a,b", "a;b",          "a+b", "a=b",  "\"",        "\\",
        "#x",  "<x>",          " x ", "\\2C", "x\",O=\"y", "CN=a+OU=b,O=c",
        "}}",  "{{UserName}}", "\\",  "a\\",  "\t",        "\xe2\x80\x8b",
    };
    (void)state;
    for (size_t i = 0; i < COUNT(values); i++) {
        pc_var_t item = {"UserName", values[i]};
        pc_vars_t vars = {&item, 1};
        X509_NAME *name = NULL;
        pc_diag_t diag = {{0}};
        const ASN1_STRING *str;

        if (pc_subject_render("CN={{UserName}},O=Fixed", PC_CERT_USER, &vars, false, &name,
                              &diag) != PC_OK)
            fail_msg("value '%s': %s", values[i], diag.msg);
        assert_int_equal(X509_NAME_entry_count(name), 2);
        str = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, 0));
        assert_int_equal(ASN1_STRING_length(str), (int)strlen(values[i]));
        assert_memory_equal(ASN1_STRING_get0_data(str), values[i], strlen(values[i]));
        assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 1)), 1);
        X509_NAME_free(name);
    }
}

static void test_diag_may_be_null(void **state)
{
    X509_NAME *name = (X509_NAME *)1;
    (void)state;
    assert_int_equal(pc_subject_render("XX=1", PC_CERT_USER, NULL, false, &name, NULL),
                     PC_ERR_INVALID_PARAM);
    assert_null(name);
}

#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_every_user_variable),
        cmocka_unit_test(test_every_device_variable),
        cmocka_unit_test(test_user_variables_refused_for_devices),
        cmocka_unit_test(test_values_never_split_rdns),
        cmocka_unit_test(test_diag_may_be_null),
    };
    struct CMUnitTest tests[CASE_COUNT + COUNT(fixed)];

    _Static_assert(CASE_COUNT >= 30, "the subject table needs at least 30 rows");
    for (size_t i = 0; i < CASE_COUNT; i++)
        tests[i] = (struct CMUnitTest){
            .name = cases[i].title, .test_func = test_case, .initial_state = &cases[i]};
    for (size_t i = 0; i < COUNT(fixed); i++)
        tests[CASE_COUNT + i] = fixed[i];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
