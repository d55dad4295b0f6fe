/*
 * test_cfssl_https.c - what the cfssl backend trusts: https:// unless the CA's configuration
 * says allow_http; a TLS client key nobody else may read; and no certificate cfssl returns
 * unless the CA certificate cfssl named at start signed it, for the CSR's key.
 *
 * cfssl here is a stand-in served by the project's own HTTP server on the test's loop: /info
 * answers with CA A's certificate, /sign and /authsign with whatever certificate the test put
 * up (signed by A, by another CA B, or for another key). The real cfssl is in test_ca_cfssl.c.
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

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_cfssl.h"
#include "http.h"

typedef struct world {
    uv_loop_t loop;
    pc_http_t *http;
    char url[64];
    EVP_PKEY *ca_a_key, *ca_b_key, *leaf_key, *other_key;
    X509 *ca_a, *ca_b;
    char *info_answer; /* JSON for /info */
    char *sign_answer; /* JSON for /sign and /authsign */
    unsigned sign_requests;
    pc_ca_t *ca;
    bool ready, done, closed;
    pc_err_t ready_err, err;
    X509 *cert;
    char msg[512];
} world_t;

/* ---- the stand-in cfssl (loop thread) ----------------------------------------------------- */

static void serve(void *arg, const pc_http_request_t *req, pc_http_response_t *resp)
{
    world_t *w = arg;
    const char *answer = NULL;

    if (strcmp(req->path, "/api/v1/cfssl/info") == 0) {
        answer = w->info_answer;
    } else if (strcmp(req->path, "/api/v1/cfssl/sign") == 0 ||
               strcmp(req->path, "/api/v1/cfssl/authsign") == 0) {
        w->sign_requests++;
        answer = w->sign_answer;
    }
    if (answer == NULL) {
        pc_http_respond_text(resp, 404, "{\"success\":false,\"result\":null,\"errors\":[]}");
        return;
    }
    pc_http_respond_text(resp, 200, answer);
    resp->content_type = "application/json";
}

static char *answer_with(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, *text;
    long len;
    json_t *doc;

    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    len = BIO_get_mem_data(bio, &pem);
    doc = json_pack("{s:b, s:{s:s%}, s:[]}", "success", 1, "result", "certificate", pem,
                    (size_t)len, "errors");
    assert_non_null(doc);
    text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    json_decref(doc);
    BIO_free(bio);
    return text;
}

/* ---- certificates ------------------------------------------------------------------------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* make_cert: a CA certificate (issuer NULL: self-signed) or a leaf for key signed by issuer. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 99), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (issuer == NULL) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
        add_ext(x, issuer, NID_ext_key_usage, "clientAuth"); /* what the requests ask */
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static X509_REQ *make_csr(EVP_PKEY *key)
{
    X509_REQ *csr = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"alice", -1, -1, 0),
                     1);
    sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, "clientAuth"));
    assert_int_equal(X509_REQ_set_subject_name(csr, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(csr, key), 1);
    assert_int_equal(X509_REQ_add_extensions(csr, exts), 1);
    assert_true(X509_REQ_sign(csr, key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return csr;
}

/* ---- the backend under test --------------------------------------------------------------- */

static void on_ready(void *arg, pc_err_t err)
{
    world_t *w = arg;
    w->ready = true;
    w->ready_err = err;
}

static void on_done(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    world_t *w = arg;
    w->done = true;
    w->err = err;
    w->cert = cert;
    snprintf(w->msg, sizeof(w->msg), "%s", diag != NULL ? diag->msg : "");
}

static void on_closed(void *arg)
{
    world_t *w = arg;
    w->closed = true;
    pc_ca_free(w->ca);
    w->ca = NULL;
}

static void run_until(world_t *w, const bool *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_true(*flag);
}

static pc_ca_template_t *make_template(void)
{
    pc_ca_template_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->name = strdup("User");
    t->allowed_ekus = calloc(1, sizeof(char *));
    t->allowed_ekus[0] = strdup("1.3.6.1.5.5.7.3.2");
    t->allowed_eku_count = 1;
    t->max_validity_days = 365;
    t->subject_from_request = true;
    return t;
}

static pc_ca_cfssl_config_t config(world_t *w, pc_ca_template_t **templates)
{
    pc_ca_cfssl_config_t cfg = {.name = "stand-in",
                                .url = w->url,
                                .allow_http = true,
                                .attempts = 1,
                                .connect_timeout_ms = 1000,
                                .total_timeout_ms = 3000,
                                .templates = templates,
                                .template_count = templates != NULL ? 1 : 0};
    return cfg;
}

static void open_ca(world_t *w)
{
    pc_ca_template_t *templates[1] = {make_template()};
    pc_ca_cfssl_config_t cfg = config(w, templates);
    pc_diag_t diag = {{0}};

    if (pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag) != PC_OK)
        fail_msg("pc_ca_cfssl_new: %s", diag.msg);
    pc_ca_cfssl_on_ready(w->ca, on_ready, w);
    run_until(w, &w->ready);
    assert_int_equal(w->ready_err, PC_OK);
}

static void submit(world_t *w)
{
    pc_ca_issue_t issue = {.template_name = "User", .validity_days = 30, .request_id = "r-1"};
    X509_REQ *csr = make_csr(w->leaf_key);

    w->done = false;
    pc_ca_submit(w->ca, csr, &issue, on_done, w);
    X509_REQ_free(csr);
    run_until(w, &w->done);
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    pc_diag_t diag = {{0}};

    assert_non_null(w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->ca_a_key = EVP_EC_gen("P-256");
    w->ca_b_key = EVP_EC_gen("P-256");
    w->leaf_key = EVP_EC_gen("P-256");
    w->other_key = EVP_EC_gen("P-256");
    /* the same name for both CAs: only the signature tells them apart */
    w->ca_a = make_cert("Contoso CA", w->ca_a_key, NULL, NULL);
    w->ca_b = make_cert("Contoso CA", w->ca_b_key, NULL, NULL);
    w->info_answer = answer_with(w->ca_a);
    assert_int_equal(pc_http_new(&w->loop, "127.0.0.1", 0, serve, w, &w->http, &diag), PC_OK);
    snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%d", pc_http_port(w->http));
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;

    if (w->ca != NULL)
        pc_ca_close(w->ca, on_closed, w);
    pc_http_close(w->http, NULL, NULL);
    for (int i = 0; i < 1000 && uv_loop_alive(&w->loop); i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    X509_free(w->cert);
    X509_free(w->ca_a);
    X509_free(w->ca_b);
    EVP_PKEY_free(w->ca_a_key);
    EVP_PKEY_free(w->ca_b_key);
    EVP_PKEY_free(w->leaf_key);
    EVP_PKEY_free(w->other_key);
    free(w->info_answer);
    free(w->sign_answer);
    free(w);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_cfssl_https_plain_http_needs_allow_http(void **state)
{
    world_t *w = *state;
    pc_ca_cfssl_config_t cfg = config(w, NULL);
    pc_diag_t diag = {{0}};

    cfg.allow_http = false;
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_ERR_INVALID_PARAM);
    assert_null(w->ca);
    assert_non_null(strstr(diag.msg, "is plain HTTP"));
    assert_non_null(strstr(diag.msg, "use https://"));
    assert_non_null(strstr(diag.msg, "\"allow_http\": true"));
    assert_int_equal(w->sign_requests, 0);

    /* https is fine without it (nothing answers there: it only has to be accepted) */
    cfg.url = "https://127.0.0.1:1";
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_OK);
    pc_ca_close(w->ca, on_closed, w);
    run_until(w, &w->closed);
}

static void test_cfssl_https_client_key_must_be_private(void **state)
{
    world_t *w = *state;
    char dir[] = "/tmp/pc-cfssl-https-XXXXXX", key[64], cert[64];
    pc_ca_cfssl_config_t cfg = config(w, NULL);
    pc_diag_t diag = {{0}};

    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/client-key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", dir);
    int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PrivateKey(f, w->leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(key, 0644), 0);
    cfg.url = "https://127.0.0.1:1";
    cfg.client_cert = cert;
    cfg.client_key = key;
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "client_key"));
    assert_non_null(strstr(diag.msg, "readable by others (mode 0644)"));
    assert_non_null(strstr(diag.msg, "chmod 600"));
    assert_null(w->ca);

    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_OK);
    pc_ca_close(w->ca, on_closed, w);
    run_until(w, &w->closed);
    unlink(key);
    rmdir(dir);
}

static void test_cfssl_https_certificate_from_its_ca_is_accepted(void **state)
{
    world_t *w = *state;
    X509 *good = make_cert("alice", w->leaf_key, w->ca_a, w->ca_a_key);

    w->sign_answer = answer_with(good);
    open_ca(w);
    submit(w);
    if (w->err != PC_OK)
        fail_msg("submit: %s", w->msg);
    assert_int_equal(X509_cmp(w->cert, good), 0);
    assert_int_equal(w->sign_requests, 1);
    X509_free(good);
}

static void test_cfssl_https_certificate_from_another_ca_is_refused(void **state)
{
    world_t *w = *state;
    X509 *other = make_cert("alice", w->leaf_key, w->ca_b, w->ca_b_key);
    /* A's name and key id, B's signature: only the signature gives it away */
    X509 *forged = make_cert("alice", w->leaf_key, w->ca_a, w->ca_b_key);

    w->sign_answer = answer_with(other);
    open_ca(w);
    submit(w);
    assert_int_equal(w->err, PC_ERR_CRYPTO);
    assert_null(w->cert);
    assert_non_null(strstr(w->msg, "stand-in"));
    assert_non_null(strstr(w->msg, "that its CA certificate did not sign"));

    free(w->sign_answer);
    w->sign_answer = answer_with(forged);
    submit(w);
    assert_int_equal(w->err, PC_ERR_CRYPTO);
    assert_null(w->cert);
    assert_non_null(strstr(w->msg, "that its CA certificate did not sign"));
    assert_int_equal(w->sign_requests, 2);
    X509_free(other);
    X509_free(forged);
}

static void test_cfssl_https_certificate_for_another_key_is_refused(void **state)
{
    world_t *w = *state;
    X509 *swapped = make_cert("alice", w->other_key, w->ca_a, w->ca_a_key);

    w->sign_answer = answer_with(swapped);
    open_ca(w);
    submit(w);
    assert_int_equal(w->err, PC_ERR_CRYPTO);
    assert_non_null(strstr(w->msg, "for another public key than the CSR's"));
    X509_free(swapped);
}

/* Until cfssl has named its CA certificate nothing is sent to be signed: there would be nothing
 * to check the answer against. */
static void test_cfssl_https_nothing_signed_before_the_ca_certificate(void **state)
{
    world_t *w = *state;
    pc_ca_template_t *templates[1] = {make_template()};
    pc_ca_cfssl_config_t cfg = config(w, templates);
    pc_diag_t diag = {{0}};
    X509 *good = make_cert("alice", w->leaf_key, w->ca_a, w->ca_a_key);

    free(w->info_answer);
    w->info_answer = NULL; /* /info: 404 */
    w->sign_answer = answer_with(good);
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_OK);
    submit(w);
    assert_int_equal(w->err, PC_ERR_CA_UNAVAILABLE);
    assert_non_null(strstr(w->msg, "has not sent its CA certificate yet"));
    assert_int_equal(w->sign_requests, 0);
    X509_free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cfssl_https_plain_http_needs_allow_http, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cfssl_https_client_key_must_be_private, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cfssl_https_certificate_from_its_ca_is_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cfssl_https_certificate_from_another_ca_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfssl_https_certificate_for_another_key_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfssl_https_nothing_signed_before_the_ca_certificate,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
