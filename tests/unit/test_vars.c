/*
 * test_vars.c - variable names, which certificate type may use them, lookup and plain expansion
 * (the SAN path).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vars.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const pc_var_t items[] = {
    {"UserName", "ann"},
    {"UserPrincipalName", "ann@contoso.com"},
    {"DeviceName", "PC-01"},
    {"SERIALNUMBER", "SN1"},
    {"EmailAddress", "{{UserName}}"},
    {"IMEI", "\xc3\x28"},
    {"MEID", ""},
};
static const pc_vars_t vars = {items, COUNT(items)};

static bool allowed(const char *name, pc_cert_type_t type, bool *known_other)
{
    return pc_vars_allowed(name, strlen(name), type, known_other);
}

static void test_allowed(void **state)
{
    bool other = true;
    (void)state;

    assert_true(allowed("UserName", PC_CERT_USER, &other));
    assert_false(other);
    assert_true(allowed("username", PC_CERT_USER, NULL));
    assert_true(allowed("DEVICENAME", PC_CERT_USER, NULL)); /* users may use device variables */
    assert_true(allowed("SERIALNUMBER", PC_CERT_DEVICE, NULL));
    assert_true(allowed("SerialNumber", PC_CERT_USER, NULL));
    assert_true(allowed("Device_IMEI", PC_CERT_DEVICE, NULL));

    assert_false(allowed("UserPrincipalName", PC_CERT_DEVICE, &other));
    assert_true(other);
    assert_false(allowed("onpremisessamaccountname", PC_CERT_DEVICE, &other));
    assert_true(other);

    assert_false(allowed("Nope", PC_CERT_USER, &other));
    assert_false(other);
    assert_false(allowed("UserNam", PC_CERT_USER, NULL));
    assert_false(allowed("UserNames", PC_CERT_USER, NULL));
    assert_false(allowed("", PC_CERT_USER, NULL));
}

static void test_allowed_counts_length(void **state)
{
    bool other;
    (void)state;
    /* name_len bounds the name: "UserNameXYZ" with length 8 is UserName */
    assert_true(pc_vars_allowed("UserNameXYZ", 8, PC_CERT_USER, &other));
    assert_false(pc_vars_allowed("UserName", 4, PC_CERT_USER, &other));
}

static void test_lookup(void **state)
{
    (void)state;
    assert_string_equal(pc_vars_lookup(&vars, "username", 8), "ann");
    assert_string_equal(pc_vars_lookup(&vars, "SerialNumber", 12), "SN1");
    assert_string_equal(pc_vars_lookup(&vars, "DeviceName}}", 10), "PC-01");
    assert_string_equal(pc_vars_lookup(&vars, "MEID", 4), "");
    assert_null(pc_vars_lookup(&vars, "AzureADDeviceId", 15));
    assert_null(pc_vars_lookup(&vars, "User", 4));
    assert_null(pc_vars_lookup(NULL, "UserName", 8));
}

typedef struct expand_case {
    const char *format;
    pc_cert_type_t type;
    pc_err_t err;
    const char *want; /* output, or a substring of the error message */
} expand_case_t;

static const expand_case_t expand_cases[] = {
    {"{{UserPrincipalName}}", PC_CERT_USER, PC_OK, "ann@contoso.com"},
    {"{{UserName}}.{{DeviceName}}.contoso.com", PC_CERT_USER, PC_OK, "ann.PC-01.contoso.com"},
    {"{{ UserName }}", PC_CERT_USER, PC_OK, "ann"},
    {"{{username}}", PC_CERT_USER, PC_OK, "ann"},
    {"plain text", PC_CERT_USER, PC_OK, "plain text"},
    {"", PC_CERT_USER, PC_OK, ""},
    {"a{b}c", PC_CERT_USER, PC_OK, "a{b}c"},
    {"{{MEID}}", PC_CERT_DEVICE, PC_OK, ""},
    {"{{EmailAddress}}", PC_CERT_USER, PC_OK, "{{UserName}}"}, /* values are not re-expanded */
    {"{{DeviceName}}", PC_CERT_DEVICE, PC_OK, "PC-01"},
    {"{{UserName}}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM, "{{UserName}} is a user variable"},
    {"{{Nope}}", PC_CERT_USER, PC_ERR_INVALID_PARAM, "unknown variable {{Nope}}"},
    {"{{AzureADDeviceId}}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM,
     "{{AzureADDeviceId}} has no value"},
    {"{{UserName}", PC_CERT_USER, PC_ERR_INVALID_PARAM, "position 1 has no matching '}}'"},
    {"{{UserName {{DeviceName}}", PC_CERT_USER, PC_ERR_INVALID_PARAM, "no matching '}}'"},
    {"UserName}}", PC_CERT_USER, PC_ERR_INVALID_PARAM, "'}}' at position 9 has no matching"},
    {"{{}}", PC_CERT_USER, PC_ERR_INVALID_PARAM, "empty variable name"},
    {"{{IMEI}}", PC_CERT_DEVICE, PC_ERR_INVALID_PARAM, "{{IMEI}} is not valid UTF-8"},
    {"a\xe2\x82", PC_CERT_USER, PC_ERR_INVALID_PARAM, "not valid UTF-8 at position 2"},
    {"\xed\xa0\x80", PC_CERT_USER, PC_ERR_INVALID_PARAM, "not valid UTF-8"}, /* surrogate */
};

static void test_expand(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(expand_cases); i++) {
        const expand_case_t *c = &expand_cases[i];
        pc_diag_t diag = {{0}};
        char *out = (char *)1;
        pc_err_t err = pc_vars_expand(c->format, c->type, &vars, &out, &diag);

        if (err != c->err)
            fail_msg("'%s': got %s (%s)", c->format, pc_strerror(err), diag.msg);
        if (err == PC_OK) {
            if (strcmp(out, c->want) != 0)
                fail_msg("'%s': got '%s', expected '%s'", c->format, out, c->want);
        } else {
            assert_null(out);
            if (strstr(diag.msg, c->want) == NULL)
                fail_msg("'%s': message '%s' lacks '%s'", c->format, diag.msg, c->want);
        }
        free(out);
    }
}

static void test_expand_without_diag(void **state)
{
    char *out = NULL;
    (void)state;
    assert_int_equal(pc_vars_expand("{{Nope}}", PC_CERT_USER, &vars, &out, NULL),
                     PC_ERR_INVALID_PARAM);
    assert_null(out);
    assert_int_equal(pc_vars_expand(NULL, PC_CERT_USER, &vars, &out, NULL), PC_ERR_INVALID_PARAM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_allowed_counts_length),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_without_diag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
