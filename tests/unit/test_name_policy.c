/*
 * test_name_policy.c - a template's name policy, as the CAs apply it in pc_ca_template_check:
 * wildcards refused unless allowed (the value "*" in {{DeviceName}}.contoso.com included),
 * allowed DNS domains with and without their subdomains, SAN types, e-mail domains and UPN
 * suffixes, DNS names that are no DNS names whoever built the CSR, CNs as host names only when
 * the template says so; and the same settings read from a configuration file. Each refusal is
 * POLICY_VIOLATION naming the name and the rule.
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

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "config.h"
#include "csr.h"
#include "name_policy.h"
#include "san.h"

static EVP_PKEY *key;

static pc_ca_template_t *device_template(void)
{
    pc_ca_template_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->name = strdup("Device");
    t->max_validity_days = 365;
    t->subject_from_request = true;
    return t;
}

static void add_domain(char ***list, size_t *count, const char *domain)
{
    pc_diag_t diag = {{0}};
    if (pc_name_policy_add_domain(list, count, domain, "test", &diag) != PC_OK)
        fail_msg("%s", diag.msg);
}

/* csr_with signs a CSR for cn (may be NULL) with the SANs of names, in OpenSSL's config syntax
 * ("DNS:a.example, email:b@example"; NULL: none). */
static X509_REQ *csr_with(const char *cn, const char *names)
{
    X509_NAME *subject = X509_NAME_new();
    GENERAL_NAMES *sans = NULL;
    X509_REQ *csr = NULL;
    pc_diag_t diag = {{0}};

    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    if (names != NULL) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, names);
        assert_non_null(ext);
        sans = X509V3_EXT_d2i(ext);
        X509_EXTENSION_free(ext);
        assert_non_null(sans);
    }
    pc_csr_params_t params = {.subject = subject, .sans = sans};
    assert_int_equal(pc_csr_new(key, &params, &csr, &diag), PC_OK);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    return csr;
}

/* raw_dns: a CSR whose one DNS SAN holds exactly len bytes of s, as no renderer would make. */
static X509_REQ *raw_dns(const char *s, size_t len)
{
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *str = ASN1_IA5STRING_new();
    X509_NAME *subject = X509_NAME_new();
    X509_REQ *csr = NULL;
    pc_diag_t diag = {{0}};

    assert_int_equal(ASN1_STRING_set(str, s, (int)len), 1);
    GENERAL_NAME_set0_value(gen, GEN_DNS, str);
    assert_true(sk_GENERAL_NAME_push(sans, gen) > 0);
    pc_csr_params_t params = {.subject = subject, .sans = sans};
    assert_int_equal(pc_csr_new(key, &params, &csr, &diag), PC_OK);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    return csr;
}

static void expect_ok(const pc_ca_template_t *t, X509_REQ *csr)
{
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_ca_template_check(t, csr, 30, &diag);
    X509_REQ_free(csr);
    if (err != PC_OK)
        fail_msg("expected the template to allow it: %s", diag.msg);
}

static void expect_policy(const pc_ca_template_t *t, X509_REQ *csr, const char *text1,
                          const char *text2)
{
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_ca_template_check(t, csr, 30, &diag);
    X509_REQ_free(csr);
    if (err != PC_ERR_POLICY || strstr(diag.msg, text1) == NULL ||
        (text2 != NULL && strstr(diag.msg, text2) == NULL))
        fail_msg("expected POLICY_VIOLATION with \"%s\" and \"%s\", got %s: %s", text1,
                 text2 != NULL ? text2 : "", pc_err_code_name(err), diag.msg);
}

/* ---- wildcards ---------------------------------------------------------------------------- */

/* The case: a device name of "*" in {{DeviceName}}.contoso.com renders a wildcard; a
 * template without allow_wildcards refuses it, as every template did not before. */
static void test_name_policy_wildcard_from_a_variable_is_refused(void **state)
{
    pc_san_format_t format = {PC_SAN_DNS, "{{DeviceName}}.contoso.com"};
    pc_var_t items[] = {{"DeviceName", "*"}};
    pc_vars_t vars = {items, 1};
    GENERAL_NAMES *sans = NULL;
    X509_NAME *subject = X509_NAME_new();
    X509_REQ *csr = NULL;
    pc_diag_t diag = {{0}};
    pc_ca_template_t *t = device_template();

    assert_int_equal(pc_san_render(&format, 1, PC_CERT_DEVICE, &vars, &sans, &diag), PC_OK);
    pc_csr_params_t params = {.subject = subject, .sans = sans};
    assert_int_equal(pc_csr_new(key, &params, &csr, &diag), PC_OK);
    expect_policy(t, csr,
                  "template \"Device\" does not allow the wildcard DNS SAN \"*.contoso.com\"",
                  "set allow_wildcards");
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    pc_ca_template_free(t);
}

static void test_name_policy_wildcards_when_allowed(void **state)
{
    pc_ca_template_t *t = device_template();

    t->names.allow_wildcards = true;
    expect_ok(t, csr_with(NULL, "DNS:*.contoso.com"));
    expect_policy(t, csr_with(NULL, "DNS:*.com"), "\"*.com\"", "at least two labels");
    expect_policy(t, csr_with(NULL, "DNS:a.*.contoso.com"), "not a valid DNS name", "\"*\"");
    expect_policy(t, csr_with(NULL, "DNS:**.contoso.com"), "not a valid DNS name", NULL);

    /* with domains: "*.D" stands for names under D */
    add_domain(&t->names.dns_domains, &t->names.dns_domain_count, "contoso.com");
    expect_policy(t, csr_with(NULL, "DNS:*.contoso.com"), "under contoso.com",
                  "set allow_subdomains");
    t->names.allow_subdomains = true;
    expect_ok(t, csr_with(NULL, "DNS:*.contoso.com"));
    expect_ok(t, csr_with(NULL, "DNS:*.eu.contoso.com"));
    expect_policy(t, csr_with(NULL, "DNS:*.fabrikam.com"), "\"*.fabrikam.com\"",
                  "none of its DNS domains (contoso.com)");
    pc_ca_template_free(t);
}

/* ---- domains ------------------------------------------------------------------------------ */

static void test_name_policy_dns_domains(void **state)
{
    pc_ca_template_t *t = device_template();

    add_domain(&t->names.dns_domains, &t->names.dns_domain_count, "contoso.com");
    add_domain(&t->names.dns_domains, &t->names.dns_domain_count, "Corp.Fabrikam.COM");
    expect_ok(t, csr_with(NULL, "DNS:contoso.com"));
    expect_ok(t, csr_with(NULL, "DNS:CONTOSO.com"));
    expect_ok(t, csr_with(NULL, "DNS:corp.fabrikam.com"));
    expect_policy(t, csr_with(NULL, "DNS:pc-1.contoso.com"),
                  "does not allow DNS SAN \"pc-1.contoso.com\": it is under contoso.com",
                  "allow_subdomains");
    expect_policy(t, csr_with(NULL, "DNS:evilcontoso.com"),
                  "\"evilcontoso.com\": it is in none of its DNS domains "
                  "(contoso.com, corp.fabrikam.com)",
                  NULL);
    expect_policy(t, csr_with(NULL, "DNS:contoso.com.evil.org"), "none of its DNS domains", NULL);

    t->names.allow_subdomains = true;
    expect_ok(t, csr_with(NULL, "DNS:pc-1.contoso.com, DNS:a.b.corp.fabrikam.com"));
    expect_policy(t, csr_with(NULL, "DNS:pc-1.contoso.com, DNS:fabrikam.com"), "\"fabrikam.com\"",
                  "none of its DNS domains");
    /* no list: any domain */
    pc_name_policy_clear(&t->names);
    expect_ok(t, csr_with(NULL, "DNS:anything.example.org"));
    pc_ca_template_free(t);
}

/* Syntax holds whoever made the CSR: these never come out of the renderer, but a CA must not
 * sign them for a CSR from elsewhere either. */
static void test_name_policy_dns_syntax(void **state)
{
    static const char long_label[] =
        "a123456789b123456789c123456789d123456789e123456789f123456789abcd.com"; /* 64 */
    pc_ca_template_t *t = device_template();

    expect_ok(t, csr_with(NULL, "DNS:xn--bcher-kva.example"));
    expect_ok(t, csr_with(NULL, "DNS:localhost"));
    expect_policy(t, raw_dns("a_b.contoso.com", 15), "refuses DNS SAN \"a_b.contoso.com\"",
                  "label \"a_b\" is not letters, digits and inner hyphens");
    expect_policy(t,
                  raw_dns("b\xc3\xbc"
                          "cher.example",
                          14),
                  "label \"b\xc3\xbc"
                  "cher\" is not ASCII",
                  "xn--");
    expect_policy(t, raw_dns("10.0.0.1", 8), "\"10.0.0.1\"", "an IP address is not a DNS name");
    expect_policy(t, raw_dns("contoso.com.", 12), "empty label", NULL);
    expect_policy(t, raw_dns("pc 1.contoso.com", 16), "label \"pc 1\"", NULL);
    expect_policy(t, raw_dns("pc\0evil.contoso.com", 19), "\"pc?evil.contoso.com\"", NULL);
    expect_policy(t, raw_dns("-pc.contoso.com", 15), "label \"-pc\"", NULL);
    expect_policy(t, raw_dns(long_label, sizeof(long_label) - 1), "is 64 characters", "1-63");
    expect_policy(t, raw_dns("", 0), "not a valid DNS name", NULL);
    pc_ca_template_free(t);
}

/* ---- SAN types, e-mail domains, UPN suffixes ---------------------------------------------- */

#define UPN "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:"

static void test_name_policy_san_types(void **state)
{
    pc_ca_template_t *t = device_template();
    unsigned bit = 0;
    pc_diag_t diag = {{0}};

    assert_int_equal(pc_name_policy_san_type("upn", &bit, &diag), PC_OK);
    t->names.san_types |= bit;
    assert_int_equal(pc_name_policy_san_type("EMAIL", &bit, &diag), PC_OK);
    t->names.san_types |= bit;
    assert_int_equal(pc_name_policy_san_type("X400", &bit, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "use UPN, email, DNS, URI or IP"));

    expect_ok(t, csr_with("Ann", UPN "ann@contoso.com, email:ann@contoso.com"));
    expect_policy(t, csr_with(NULL, "DNS:pc-1.contoso.com"),
                  "does not allow DNS SANs (\"pc-1.contoso.com\"); allowed SAN types: UPN, email",
                  NULL);
    expect_policy(t, csr_with(NULL, "URI:https://contoso.com/x"), "does not allow URI SANs", NULL);
    expect_policy(t, csr_with(NULL, "IP:10.0.0.1"), "does not allow IP SANs", NULL);
    expect_policy(t, csr_with(NULL, "RID:1.2.3.4"), "does not allow registeredID SANs", NULL);
    pc_ca_template_free(t);
}

static void test_name_policy_email_domains_and_upn_suffixes(void **state)
{
    pc_ca_template_t *t = device_template();

    add_domain(&t->names.email_domains, &t->names.email_domain_count, "contoso.com");
    add_domain(&t->names.upn_suffixes, &t->names.upn_suffix_count, "corp.contoso.com");
    expect_ok(t, csr_with(NULL, "email:Ann@Contoso.com, " UPN "ann@corp.contoso.com"));
    expect_policy(t, csr_with(NULL, "email:ann@fabrikam.com"),
                  "email SAN \"ann@fabrikam.com\": it is in none of its e-mail domains "
                  "(contoso.com)",
                  NULL);
    expect_policy(t, csr_with(NULL, "email:ann@eu.contoso.com"), "under contoso.com",
                  "e-mail domains themselves");
    expect_policy(t, csr_with(NULL, UPN "ann@corp.contoso.com.evil.org"),
                  "UPN SAN \"ann@corp.contoso.com.evil.org\"", "UPN suffixes (corp.contoso.com)");
    expect_policy(t, csr_with(NULL, UPN "ann"), "UPN SAN \"ann\": it has no '@'", NULL);
    /* the suffix is after the last '@' */
    expect_policy(t, csr_with(NULL, UPN "ann@corp.contoso.com@evil.org"), "none of its UPN", NULL);
    t->names.allow_subdomains = true;
    expect_ok(t, csr_with(NULL, "email:ann@eu.contoso.com"));
    expect_policy(t, csr_with(NULL, "email:ann@contoso.com.evil.org"), "none of its e-mail", NULL);
    pc_ca_template_free(t);
}

/* ---- CNs ---------------------------------------------------------------------------------- */

static void test_name_policy_cn_only_when_the_template_says(void **state)
{
    pc_ca_template_t *t = device_template();

    add_domain(&t->names.dns_domains, &t->names.dns_domain_count, "contoso.com");
    t->names.allow_subdomains = true;
    expect_ok(t, csr_with("John Smith", NULL)); /* a CN is a person's name unless told */
    expect_ok(t, csr_with("*.fabrikam.com", NULL));
    t->names.cn_is_dns_name = true;
    expect_ok(t, csr_with("pc-1.contoso.com", NULL));
    expect_policy(t, csr_with("John Smith", NULL), "refuses subject CN \"John Smith\"",
                  "not a valid DNS name");
    expect_policy(t, csr_with("*.contoso.com", NULL), "wildcard subject CN \"*.contoso.com\"",
                  NULL);
    expect_policy(t, csr_with("pc-1.fabrikam.com", NULL), "subject CN \"pc-1.fabrikam.com\"",
                  "none of its DNS domains");
    pc_ca_template_free(t);
}

/* ---- configuration ------------------------------------------------------------------------ */

static pc_err_t load(const char *json, pc_config_t **cfg, pc_diag_t *diag)
{
    char path[] = "/tmp/pc-name-policy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    pc_err_t err = pc_config_load(path, cfg, diag);
    unlink(path);
    return err;
}

static void test_name_policy_from_the_configuration(void **state)
{
    pc_config_t *cfg = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = load(
        "{\"cas\": [{\"name\": \"local\", \"templates\": [{\"name\": \"Device\","
        " \"allowed_san_types\": [\"DNS\", \"UPN\"], \"allowed_dns_domains\": [\"Contoso.com\"],"
        " \"allow_subdomains\": true, \"allow_wildcards\": false,"
        " \"allowed_email_domains\": [\"contoso.com\"], \"allowed_upn_suffixes\": "
        "[\"contoso.com\"],"
        " \"cn_is_dns_name\": true}, {\"name\": \"Plain\"}]}]}",
        &cfg, &diag);

    if (err != PC_OK)
        fail_msg("pc_config_load: %s", diag.msg);
    const pc_ca_template_t *t = cfg->cas[0].templates[0];
    assert_int_equal(t->names.san_types, PC_NAME_SAN_DNS | PC_NAME_SAN_UPN);
    assert_int_equal(t->names.dns_domain_count, 1);
    assert_string_equal(t->names.dns_domains[0], "contoso.com");
    assert_true(t->names.allow_subdomains);
    assert_false(t->names.allow_wildcards);
    assert_true(t->names.cn_is_dns_name);
    assert_int_equal(t->names.email_domain_count, 1);
    assert_int_equal(t->names.upn_suffix_count, 1);
    expect_ok(t, csr_with("pc-1.contoso.com", "DNS:pc-1.contoso.com"));
    expect_policy(t, csr_with("pc-1.contoso.com", "DNS:*.contoso.com"), "wildcard", NULL);
    /* a template that says nothing: any name but wildcards */
    const pc_ca_template_t *plain = cfg->cas[0].templates[1];
    expect_ok(plain, csr_with("John Smith", "DNS:pc.example.org, URI:urn:x:1"));
    expect_policy(plain, csr_with(NULL, "DNS:*.example.org"), "wildcard", NULL);
    pc_config_free(cfg);

    assert_int_equal(load("{\"cas\": [{\"templates\": [{\"name\": \"D\", "
                          "\"allowed_dns_domains\": [\"*.contoso.com\"]}]}]}",
                          &cfg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "allowed_dns_domains[0]: \"*.contoso.com\" is not a domain"));
    assert_non_null(strstr(diag.msg, "allow_subdomains"));
    assert_int_equal(load("{\"cas\": [{\"templates\": [{\"name\": \"D\", "
                          "\"allowed_email_domains\": [\"con_toso.com\"]}]}]}",
                          &cfg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "allowed_email_domains[0]"));
    assert_int_equal(load("{\"cas\": [{\"templates\": [{\"name\": \"D\", "
                          "\"allowed_san_types\": [\"DNS\", \"IPv6\"]}]}]}",
                          &cfg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "allowed_san_types[1]"));
    assert_int_equal(load("{\"cas\": [{\"templates\": [{\"name\": \"D\", "
                          "\"allow_wildcards\": \"yes\"}]}]}",
                          &cfg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "allow_wildcards must be true or false"));
}

static int group_setup(void **state)
{
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return key != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_policy_wildcard_from_a_variable_is_refused),
        cmocka_unit_test(test_name_policy_wildcards_when_allowed),
        cmocka_unit_test(test_name_policy_dns_domains),
        cmocka_unit_test(test_name_policy_dns_syntax),
        cmocka_unit_test(test_name_policy_san_types),
        cmocka_unit_test(test_name_policy_email_domains_and_upn_suffixes),
        cmocka_unit_test(test_name_policy_cn_only_when_the_template_says),
        cmocka_unit_test(test_name_policy_from_the_configuration),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
