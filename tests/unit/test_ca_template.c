/*
 * test_ca_template.c - template policy refuses what a CA administrator forbade, naming the rule;
 * and the backend-neutral helpers of ca.c (lookup, sync wrappers, free).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "csr.h"

static EVP_PKEY *rsa2048;
static EVP_PKEY *ec256;

static int group_setup(void **state)
{
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return rsa2048 != NULL && ec256 != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(ec256);
    return 0;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* "User": clientAuth + emailProtection, digitalSignature + keyEncipherment, 365 days. */
static pc_ca_template_t *user_template(void)
{
    pc_ca_template_t *tmpl = calloc(1, sizeof(*tmpl));
    assert_non_null(tmpl);
    tmpl->name = xstrdup("User");
    tmpl->allowed_ekus = calloc(2, sizeof(char *));
    assert_non_null(tmpl->allowed_ekus);
    tmpl->allowed_ekus[0] = xstrdup("1.3.6.1.5.5.7.3.2");
    tmpl->allowed_ekus[1] = xstrdup("1.3.6.1.5.5.7.3.4");
    tmpl->allowed_eku_count = 2;
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    tmpl->max_validity_days = 365;
    tmpl->subject_from_request = true;
    return tmpl;
}

typedef struct csr_spec {
    EVP_PKEY *key;
    const char *cn; /* NULL: empty subject */
    const char *const *ekus;
    size_t eku_count;
    unsigned key_usage;
    const char *dns; /* NULL: no SAN */
} csr_spec_t;

/* spec_sans is the SAN list of spec (NULL without one). */
static GENERAL_NAMES *spec_sans(const csr_spec_t *spec)
{
    if (spec->dns == NULL)
        return NULL;
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
    assert_true(sans != NULL && gn != NULL && dns != NULL);
    assert_int_equal(ASN1_STRING_set(dns, spec->dns, -1), 1);
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    assert_int_equal(sk_GENERAL_NAME_push(sans, gn), 1);
    return sans;
}

static X509_REQ *make_csr(const csr_spec_t *spec)
{
    X509_NAME *name = X509_NAME_new();
    X509_REQ *req = NULL;
    assert_non_null(name);
    if (spec->cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)spec->cn, -1, -1, 0),
                         1);
    GENERAL_NAMES *sans = spec_sans(spec);
    pc_csr_params_t params = {.subject = name,
                              .sans = sans,
                              .ekus = spec->ekus,
                              .eku_count = spec->eku_count,
                              .key_usage = spec->key_usage};
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(pc_csr_new(spec->key, &params, &req, &diag), PC_OK);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(name);
    return req;
}

static const char *const client_auth[] = {"clientAuth"};

static X509_REQ *good_csr(EVP_PKEY *key)
{
    csr_spec_t spec = {.key = key,
                       .cn = "alice",
                       .ekus = client_auth,
                       .eku_count = 1,
                       .key_usage = KU_DIGITAL_SIGNATURE};
    return make_csr(&spec);
}

static void test_good_csr_passes(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    X509_REQ *rsa_req = good_csr(rsa2048);
    X509_REQ *ec_req = good_csr(ec256);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, rsa_req, 365, &diag), PC_OK);
    assert_int_equal(pc_ca_template_check(tmpl, ec_req, 1, &diag), PC_OK);
    /* no extension requested at all is within any template */
    csr_spec_t bare = {.key = ec256, .cn = "bare"};
    X509_REQ *bare_req = make_csr(&bare);
    assert_int_equal(pc_ca_template_check(tmpl, bare_req, 30, &diag), PC_OK);

    X509_REQ_free(bare_req);
    X509_REQ_free(rsa_req);
    X509_REQ_free(ec_req);
    pc_ca_template_free(tmpl);
}

static void test_forbidden_eku(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    const char *ekus[] = {"clientAuth", "serverAuth"};
    csr_spec_t spec = {.key = ec256, .cn = "alice", .ekus = ekus, .eku_count = 2};
    X509_REQ *req = make_csr(&spec);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_string_equal(diag.msg, "template \"User\" does not allow EKU serverAuth "
                                  "(1.3.6.1.5.5.7.3.1); allowed: clientAuth, emailProtection");
    X509_REQ_free(req);

    /* an EKU OpenSSL has no name for is shown by OID */
    const char *odd[] = {"1.2.3.4.5"};
    csr_spec_t odd_spec = {.key = ec256, .cn = "alice", .ekus = odd, .eku_count = 1};
    req = make_csr(&odd_spec);
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "1.2.3.4.5"));
    X509_REQ_free(req);
    pc_ca_template_free(tmpl);
}

static void test_forbidden_key_usage(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    csr_spec_t spec = {
        .key = ec256, .cn = "alice", .key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN};
    X509_REQ *req = make_csr(&spec);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "key usage keyCertSign"));
    assert_non_null(strstr(diag.msg, "\"User\""));
    assert_null(strstr(diag.msg, "usage digitalSignature")); /* only the offending bit */
    X509_REQ_free(req);

    /* decipherOnly lives in the second octet of the bit string */
    spec.key_usage = KU_KEY_AGREEMENT | KU_DECIPHER_ONLY;
    tmpl->allowed_key_usage = KU_KEY_AGREEMENT;
    req = make_csr(&spec);
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "decipherOnly"));
    X509_REQ_free(req);
    pc_ca_template_free(tmpl);
}

static void test_weak_keys(void **state)
{
    pc_ca_template_t *tmpl = user_template(); /* min_rsa_bits 0: the default 2048 applies */
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(rsa1024);
    X509_REQ *req = good_csr(rsa1024);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "RSA-1024"));
    assert_non_null(strstr(diag.msg, "2048"));
    X509_REQ_free(req);

    /* a template asking for more than the default is held to it */
    tmpl->min_rsa_bits = 3072;
    req = good_csr(rsa2048);
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "3072"));
    X509_REQ_free(req);

    tmpl->min_ec_bits = 384;
    req = good_csr(ec256);
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "256 bits"));
    assert_non_null(strstr(diag.msg, "384"));
    X509_REQ_free(req);

    EVP_PKEY_free(rsa1024);
    pc_ca_template_free(tmpl);
}

static void test_validity_limits(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    X509_REQ *req = good_csr(ec256);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 366, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "at most 365 days"));
    assert_non_null(strstr(diag.msg, "366"));
    assert_int_equal(pc_ca_template_check(tmpl, req, 0, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "0 days"));

    tmpl->max_validity_days = 0;
    assert_int_equal(pc_ca_template_check(tmpl, req, 1, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "max_validity_days"));
    X509_REQ_free(req);
    pc_ca_template_free(tmpl);
}

static void test_subject_not_from_request(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    tmpl->subject_from_request = false;
    X509_REQ *req = good_csr(ec256);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "subject"));
    assert_non_null(strstr(diag.msg, "CN=alice"));
    X509_REQ_free(req);

    csr_spec_t spec = {.key = ec256, .cn = NULL};
    req = make_csr(&spec);
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_OK);
    X509_REQ_free(req);
    pc_ca_template_free(tmpl);
}

/* Alters the CN in the signed DER ("alice" -> "alicf"), as an attacker in transit would. */
static X509_REQ *tamper(X509_REQ *req)
{
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    unsigned char *hit = NULL;
    for (int i = 0; i + 5 <= len && hit == NULL; i++)
        if (memcmp(der + i, "alice", 5) == 0)
            hit = der + i;
    assert_non_null(hit);
    hit[4] = 'f';
    const unsigned char *p = der;
    X509_REQ *out = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(out);
    OPENSSL_free(der);
    return out;
}

static void test_tampered_signature(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    X509_REQ *req = good_csr(rsa2048);
    X509_REQ *bad = tamper(req);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, bad, 30, &diag), PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, "signature"));
    /* the check refuses before any policy rule: even an allowed request is refused */
    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_OK);
    X509_REQ_free(bad);
    X509_REQ_free(req);

    X509_REQ *ec_req = good_csr(ec256);
    bad = tamper(ec_req);
    assert_int_equal(pc_ca_template_check(tmpl, bad, 30, &diag), PC_ERR_CRYPTO);
    X509_REQ_free(bad);
    X509_REQ_free(ec_req);
    pc_ca_template_free(tmpl);
}

static void test_bad_template_entry(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    free(tmpl->allowed_ekus[0]);
    tmpl->allowed_ekus[0] = xstrdup("no-such-eku");
    X509_REQ *req = good_csr(ec256);
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(pc_ca_template_check(tmpl, req, 30, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "no-such-eku"));
    X509_REQ_free(req);
    pc_ca_template_free(tmpl);
    pc_ca_template_free(NULL);
}

/* check_both judges spec as a CSR (pc_ca_template_check) and as the parsed request the local
 * CA takes (pc_ca_template_check_request), asserts that both come to the same verdict with the
 * same message, and returns it (the message in *diag). */
static pc_err_t check_both(const pc_ca_template_t *tmpl, const csr_spec_t *spec, unsigned days,
                           pc_diag_t *diag)
{
    X509_REQ *csr = make_csr(spec);
    pc_diag_t csr_diag = {.msg = ""};
    pc_err_t csr_err = pc_ca_template_check(tmpl, csr, days, &csr_diag);

    STACK_OF(ASN1_OBJECT) *ekus = NULL;
    assert_int_equal(pc_csr_ekus_new(spec->ekus, spec->eku_count, &ekus, NULL), PC_OK);
    GENERAL_NAMES *sans = spec_sans(spec);
    pc_ca_request_t req = {.key = spec->key,
                           .subject = X509_REQ_get_subject_name(csr),
                           .sans = sans,
                           .ekus = ekus,
                           .key_usage = spec->key_usage};
    *diag = (pc_diag_t){.msg = ""};
    pc_err_t err = pc_ca_template_check_request(tmpl, &req, days, diag);
    if (err != csr_err || strcmp(diag->msg, csr_diag.msg) != 0)
        fail_msg("CSR: %d \"%s\"; parsed request: %d \"%s\"", csr_err, csr_diag.msg, err,
                 diag->msg);
    GENERAL_NAMES_free(sans);
    sk_ASN1_OBJECT_pop_free(ekus, ASN1_OBJECT_free);
    X509_REQ_free(csr);
    return err;
}

/* A parsed request (the local CA's direct path, no CSR) is held to every rule a CSR is, with
 * the same verdict and message: the two paths share the rules, and this breaks when they part. */
static void test_parsed_request_judged_alike(void **state)
{
    pc_ca_template_t *tmpl = user_template();
    const char *server[] = {"clientAuth", "serverAuth"};
    const char *odd[] = {"1.2.3.4.5"};
    csr_spec_t good = {.key = ec256,
                       .cn = "alice",
                       .ekus = client_auth,
                       .eku_count = 1,
                       .key_usage = KU_DIGITAL_SIGNATURE,
                       .dns = "alice.contoso.com"};
    csr_spec_t spec = good;
    pc_diag_t diag;

    assert_int_equal(check_both(tmpl, &good, 365, &diag), PC_OK);
    spec.key = rsa2048;
    assert_int_equal(check_both(tmpl, &spec, 1, &diag), PC_OK);
    csr_spec_t bare = {.key = ec256, .cn = "bare"};
    assert_int_equal(check_both(tmpl, &bare, 30, &diag), PC_OK);

    /* EKUs */
    spec = good;
    spec.ekus = server;
    spec.eku_count = 2;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "serverAuth"));
    spec.ekus = odd;
    spec.eku_count = 1;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);

    /* key usage, both octets */
    spec = good;
    spec.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "keyCertSign"));
    spec.key_usage = KU_KEY_AGREEMENT | KU_DECIPHER_ONLY;
    tmpl->allowed_key_usage = KU_KEY_AGREEMENT;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "decipherOnly"));
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;

    /* key type and size */
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(rsa1024);
    spec = good;
    spec.key = rsa1024;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "RSA-1024"));
    EVP_PKEY_free(rsa1024);
    tmpl->min_ec_bits = 384;
    assert_int_equal(check_both(tmpl, &good, 30, &diag), PC_ERR_POLICY);
    tmpl->min_ec_bits = 0;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    spec.key = ed;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "use RSA or ECDSA"));
    EVP_PKEY_free(ed);

    /* validity */
    assert_int_equal(check_both(tmpl, &good, 366, &diag), PC_ERR_POLICY);
    assert_int_equal(check_both(tmpl, &good, 0, &diag), PC_ERR_INVALID_PARAM);
    tmpl->max_validity_days = 0;
    assert_int_equal(check_both(tmpl, &good, 1, &diag), PC_ERR_POLICY);
    tmpl->max_validity_days = 365;

    /* subject */
    tmpl->subject_from_request = false;
    assert_int_equal(check_both(tmpl, &good, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "CN=alice"));
    spec = good;
    spec.cn = NULL;
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_OK);
    tmpl->subject_from_request = true;

    /* names: SAN type, DNS syntax and domain, CNs as host names */
    tmpl->names.san_types = PC_NAME_SAN_EMAIL;
    assert_int_equal(check_both(tmpl, &good, 30, &diag), PC_ERR_POLICY);
    tmpl->names.san_types = 0;
    spec = good;
    spec.dns = "not a host name";
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    spec.dns = "*.contoso.com";
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    assert_int_equal(pc_name_policy_add_domain(&tmpl->names.dns_domains,
                                               &tmpl->names.dns_domain_count, "fabrikam.com",
                                               "test", NULL),
                     PC_OK);
    assert_int_equal(check_both(tmpl, &good, 30, &diag), PC_ERR_POLICY);
    assert_non_null(strstr(diag.msg, "alice.contoso.com"));
    pc_name_policy_clear(&tmpl->names);
    tmpl->names.cn_is_dns_name = true;
    spec = good;
    spec.cn = "alice smith";
    assert_int_equal(check_both(tmpl, &spec, 30, &diag), PC_ERR_POLICY);
    tmpl->names.cn_is_dns_name = false;

    /* a template entry that is no EKU is a configuration error either way */
    free(tmpl->allowed_ekus[0]);
    tmpl->allowed_ekus[0] = xstrdup("no-such-eku");
    assert_int_equal(check_both(tmpl, &good, 30, &diag), PC_ERR_INVALID_PARAM);

    /* no key or subject */
    pc_ca_request_t none = {.key = NULL};
    assert_int_equal(pc_ca_template_check_request(tmpl, &none, 30, &diag), PC_ERR_INVALID_PARAM);
    pc_ca_template_free(tmpl);
}

/* A fake backend, to see the shared wrappers work on any backend. */
typedef struct fake_ca {
    pc_ca_t base;
    int submits;
    int *freed;
} fake_ca_t;

static void fake_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                        void *arg)
{
    fake_ca_t *fake = (fake_ca_t *)ca;
    fake->submits++;
    if (strcmp(issue->template_name, "User") != 0) {
        pc_diag_t diag;
        pc_fail(&diag, PC_ERR_CA_BUSY, "fake CA busy");
        done(arg, PC_ERR_CA_BUSY, NULL, &diag);
        return;
    }
    X509 *cert = X509_new();
    done(arg, PC_OK, cert, NULL);
}

static void fake_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg)
{
    pc_diag_t diag;
    pc_fail(&diag, PC_ERR_NOT_FOUND, "no %s", rev->serial_hex);
    done(arg, PC_ERR_NOT_FOUND, NULL, &diag);
}

static void fake_free(pc_ca_t *ca)
{
    fake_ca_t *fake = (fake_ca_t *)ca;
    (*fake->freed)++;
    pc_ca_base_clear(ca);
    free(fake);
}

static const pc_ca_ops_t fake_ops = {
    .kind = "fake", .submit = fake_submit, .revoke = fake_revoke, .free = fake_free};

/* fake_new: a CA opened without a loop (loop NULL), or as if on one. */
static fake_ca_t *fake_new(uv_loop_t *loop, int *freed)
{
    fake_ca_t *fake = calloc(1, sizeof(*fake));
    assert_non_null(fake);
    fake->base.ops = &fake_ops;
    fake->base.loop = loop;
    fake->base.name = xstrdup("fake");
    fake->base.templates = calloc(1, sizeof(pc_ca_template_t *));
    assert_non_null(fake->base.templates);
    fake->base.templates[0] = user_template();
    fake->base.template_count = 1;
    fake->freed = freed;
    return fake;
}

static void test_backend_helpers(void **state)
{
    int freed = 0;
    fake_ca_t *fake = fake_new(NULL, &freed);
    pc_ca_t *ca = &fake->base;
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;

    assert_ptr_equal(pc_ca_find_template(ca, "User"), ca->templates[0]);
    assert_null(pc_ca_find_template(ca, "user")); /* case-sensitive */
    assert_null(pc_ca_find_template(ca, "Device"));

    pc_ca_issue_t issue = {.template_name = "User", .validity_days = 30, .request_id = "r1"};
    assert_int_equal(pc_ca_submit_sync(ca, NULL, &issue, &cert, &diag), PC_OK);
    assert_non_null(cert);
    X509_free(cert);
    issue.template_name = "Other";
    assert_int_equal(pc_ca_submit_sync(ca, NULL, &issue, &cert, &diag), PC_ERR_CA_BUSY);
    assert_null(cert);
    assert_string_equal(diag.msg, "fake CA busy");

    pc_ca_revoke_t rev = {.serial_hex = "01", .reason = PC_REVOKE_SUPERSEDED};
    assert_int_equal(pc_ca_revoke_sync(ca, &rev, &diag), PC_ERR_NOT_FOUND);
    assert_string_equal(diag.msg, "no 01");

    /* a backend that takes CSRs only refuses a parsed request, inside the call */
    assert_false(pc_ca_takes_requests(ca));
    pc_ca_request_t req = {.key = ec256};
    issue.template_name = "User";
    assert_int_equal(pc_ca_submit_request_sync(ca, &req, &issue, &cert, &diag),
                     PC_ERR_NOT_SUPPORTED);
    assert_null(cert);
    assert_non_null(strstr(diag.msg, "send it a CSR"));
    assert_int_equal(fake->submits, 2);

    pc_ca_free(ca);
    assert_int_equal(freed, 1);
    pc_ca_free(NULL);

    uv_loop_t loop; /* never run: the sync wrappers must refuse before calling the backend */
    fake = fake_new(&loop, &freed);
    assert_int_equal(pc_ca_submit_sync(&fake->base, NULL, &issue, &cert, &diag),
                     PC_ERR_NOT_SUPPORTED);
    assert_int_equal(fake->submits, 0);
    assert_int_equal(pc_ca_revoke_sync(&fake->base, &rev, &diag), PC_ERR_NOT_SUPPORTED);
    assert_true(pc_ca_healthy(&fake->base)); /* no healthy op: always usable */
    assert_false(pc_ca_can_find_issued(&fake->base));
    pc_ca_free(&fake->base);
    assert_int_equal(freed, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_csr_passes),
        cmocka_unit_test(test_forbidden_eku),
        cmocka_unit_test(test_forbidden_key_usage),
        cmocka_unit_test(test_weak_keys),
        cmocka_unit_test(test_validity_limits),
        cmocka_unit_test(test_subject_not_from_request),
        cmocka_unit_test(test_tampered_signature),
        cmocka_unit_test(test_bad_template_entry),
        cmocka_unit_test(test_backend_helpers),
        cmocka_unit_test(test_parsed_request_judged_alike),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
