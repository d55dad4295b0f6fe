/*
 * test_ca_local_ocsp.c - the local CA's OCSP responder as a relying party sees it: what it
 * issued is good, what it revoked is revoked with time and reason, a serial it never issued is
 * unknown, each answer of a request with several, the nonce echoed; another CA's certificate is
 * unauthorized and garbage malformed; every answer verifies against the CA certificate alone,
 * through a delegated responder certificate (OCSPSigning, no-check, 30 days) whose key is
 * encrypted on disk, kept across restarts and renewed when a third of its life is left; with
 * Redis down the answer is tryLater. Issued certificates name the responder in their AIA.
 * The CA's records live in a real redis-server.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <hiredis/hiredis.h>

#include "ca_local.h"
#include "csr.h"
/* The fixture's event-loop helpers serve the async tests; the local CA blocks. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "redis_fixture.h"
#pragma GCC diagnostic pop

#define PASS "correct horse battery staple"
#define OCSP_URL "http://pki.example.test/ocsp/local"

typedef struct fixture {
    char dir[64];
    char state[128];
    pc_redis_config_t redis;
    redisContext *admin;
    pc_ca_t *ca;
    EVP_PKEY *key; /* the requester's key */
} fixture_t;

static pc_ca_template_t *make_template(void)
{
    pc_ca_template_t *tmpl = calloc(1, sizeof(*tmpl));
    assert_non_null(tmpl);
    tmpl->name = strdup("User");
    tmpl->allowed_ekus = calloc(1, sizeof(char *));
    assert_non_null(tmpl->allowed_ekus);
    tmpl->allowed_ekus[0] = strdup("1.3.6.1.5.5.7.3.2");
    tmpl->allowed_eku_count = 1;
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE;
    tmpl->max_validity_days = 365;
    tmpl->subject_from_request = true;
    return tmpl;
}

static pc_err_t open_ca_in(fixture_t *fx, const char *state_dir, pc_ca_t **ca, pc_diag_t *diag)
{
    pc_ca_template_t *templates[1] = {make_template()};
    pc_ca_local_config_t cfg = {.name = "local",
                                .state_dir = state_dir,
                                .key_passphrase = PASS,
                                .ocsp_url = OCSP_URL,
                                .redis = &fx->redis,
                                .templates = templates,
                                .template_count = 1};
    pc_err_t err = pc_ca_local_new(&cfg, ca, diag);
    if (err != PC_OK)
        pc_ca_template_free(templates[0]);
    return err;
}

static void open_ca(fixture_t *fx)
{
    pc_diag_t diag = {.msg = ""};
    pc_ca_free(fx->ca);
    fx->ca = NULL;
    if (open_ca_in(fx, fx->state, &fx->ca, &diag) != PC_OK)
        fail_msg("pc_ca_local_new: %s", diag.msg);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc_test_ocsp.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
    fx->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    *state = fx;
    if (fx->key == NULL || fixture_revive(NULL) != 0)
        return -1;
    fx->redis = (pc_redis_config_t){.host = "127.0.0.1", .port = fixture_redis.port};
    fx->admin = redisConnect("127.0.0.1", fixture_redis.port);
    if (fx->admin == NULL || fx->admin->err != 0)
        return -1;
    freeReplyObject(redisCommand(fx->admin, "FLUSHALL"));
    open_ca(fx);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    pc_ca_free(fx->ca);
    EVP_PKEY_free(fx->key);
    redisFree(fx->admin);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static X509 *ca_cert(pc_ca_t *ca)
{
    return sk_X509_value(ca->ops->get0_chain(ca), 0);
}

static X509 *issue(fixture_t *fx)
{
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"alice", -1, -1,
                               0);
    const char *ekus[] = {"clientAuth"};
    pc_csr_params_t params = {
        .subject = name, .ekus = ekus, .eku_count = 1, .key_usage = KU_DIGITAL_SIGNATURE};
    X509_REQ *req = NULL;
    assert_int_equal(pc_csr_new(fx->key, &params, &req, NULL), PC_OK);
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 30, .request_id = "r"};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;
    if (pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag) != PC_OK)
        fail_msg("issue: %s", diag.msg);
    X509_REQ_free(req);
    X509_NAME_free(name);
    return cert;
}

static void revoke_cert(fixture_t *fx, X509 *cert, pc_revoke_reason_t reason)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = BN_bn2hex(bn);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = reason};
    pc_diag_t diag = {.msg = ""};
    if (pc_ca_revoke_sync(fx->ca, &rev, &diag) != PC_OK)
        fail_msg("revoke: %s", diag.msg);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* A request about certs (each issued by issuer), with a nonce when asked. */
static OCSP_REQUEST *make_request(X509 *issuer, X509 **certs, size_t count, bool nonce)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    assert_non_null(req);
    for (size_t i = 0; i < count; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, certs[i], issuer);
        assert_non_null(id);
        assert_non_null(OCSP_request_add0_id(req, id));
    }
    if (nonce)
        assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
    return req;
}

/* ask sends req to the responder and returns the decoded response (err: the call's result). */
static OCSP_RESPONSE *ask(fixture_t *fx, OCSP_REQUEST *req, pc_err_t *err, pc_diag_t *diag)
{
    unsigned char *der = NULL, *resp_der = NULL;
    size_t resp_len = 0;
    int len = i2d_OCSP_REQUEST(req, &der);
    assert_true(len > 0);
    *err = pc_ca_local_ocsp(fx->ca, der, (size_t)len, &resp_der, &resp_len, diag);
    OPENSSL_free(der);
    assert_non_null(resp_der);
    const unsigned char *p = resp_der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)resp_len);
    assert_non_null(resp);
    assert_ptr_equal(p, resp_der + resp_len);
    OPENSSL_free(resp_der);
    return resp;
}

/* verified checks a successful response as a relying party would, trusting the CA certificate
 * alone, and returns its basic response (caller frees). */
static OCSP_BASICRESP *verified(fixture_t *fx, OCSP_RESPONSE *resp, OCSP_REQUEST *req)
{
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    X509_STORE *store = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(store, ca_cert(fx->ca)), 1);
    int ok = OCSP_basic_verify(bs, NULL, store, 0);
    if (ok != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("the OCSP response does not verify against the CA");
    }
    X509_STORE_free(store);
    if (req != NULL)
        assert_int_equal(OCSP_check_nonce(req, bs), 1);
    return bs;
}

/* status_of returns the status bs gives cert's CertID, checking its update times. */
static int status_of(OCSP_BASICRESP *bs, X509 *issuer, X509 *cert, int *reason,
                     ASN1_GENERALIZEDTIME **revoked_at)
{
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
    ASN1_GENERALIZEDTIME *this_update = NULL, *next_update = NULL;
    int status = -1;
    assert_int_equal(
        OCSP_resp_find_status(bs, id, &status, reason, revoked_at, &this_update, &next_update), 1);
    assert_non_null(next_update);
    assert_int_equal(OCSP_check_validity(this_update, next_update, 300, -1), 1);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, this_update, next_update), 1);
    assert_int_equal(days * 86400 + secs, 3600);
    OCSP_CERTID_free(id);
    return status;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_good_revoked_unknown(void **state)
{
    fixture_t *fx = *state;
    X509 *ca = ca_cert(fx->ca);
    X509 *good = issue(fx), *bad = issue(fx), *never = X509_dup(good);
    revoke_cert(fx, bad, PC_REVOKE_KEY_COMPROMISE);
    /* the same issuer, a serial the CA never issued */
    ASN1_INTEGER_set_int64(X509_get_serialNumber(never), 0x0123456789abcdefLL);

    X509 *certs[] = {good, bad, never};
    OCSP_REQUEST *req = make_request(ca, certs, 3, true);
    pc_diag_t diag = {.msg = ""};
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, &diag);
    assert_int_equal(err, PC_OK);
    OCSP_BASICRESP *bs = verified(fx, resp, req);
    assert_int_equal(OCSP_resp_count(bs), 3);

    int reason = -7;
    ASN1_GENERALIZEDTIME *revoked_at = NULL;
    assert_int_equal(status_of(bs, ca, good, &reason, &revoked_at), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(status_of(bs, ca, bad, &reason, &revoked_at), V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert_non_null(revoked_at);
    assert_true(X509_cmp_current_time(revoked_at) < 0); /* revoked in the past */
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, revoked_at, NULL);
    assert_true(days == 0 && secs < 600);
    assert_int_equal(status_of(bs, ca, never, &reason, &revoked_at), V_OCSP_CERTSTATUS_UNKNOWN);

    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(good);
    X509_free(bad);
    X509_free(never);
}

/* Revoked without a reason: revoked, and no reason given (as in the CRL). */
static void test_revoked_unspecified(void **state)
{
    fixture_t *fx = *state;
    X509 *ca = ca_cert(fx->ca);
    X509 *cert = issue(fx);
    revoke_cert(fx, cert, PC_REVOKE_UNSPECIFIED);
    OCSP_REQUEST *req = make_request(ca, &cert, 1, false);
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, NULL);
    assert_int_equal(err, PC_OK);
    OCSP_BASICRESP *bs = verified(fx, resp, NULL);
    int reason = -7;
    ASN1_GENERALIZEDTIME *revoked_at = NULL;
    assert_int_equal(status_of(bs, ca, cert, &reason, &revoked_at), V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, OCSP_REVOKED_STATUS_NOSTATUS);
    /* no nonce asked, none given */
    assert_int_equal(OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1), -1);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(cert);
}

/* The nonce comes back as sent; a forged one would not match. */
static void test_nonce_echoed(void **state)
{
    fixture_t *fx = *state;
    X509 *cert = issue(fx);
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &cert, 1, false);
    unsigned char nonce[16] = "0123456789abcdef";
    assert_int_equal(OCSP_request_add1_nonce(req, nonce, sizeof(nonce)), 1);
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, NULL);
    assert_int_equal(err, PC_OK);
    OCSP_BASICRESP *bs = verified(fx, resp, req);
    OCSP_REQUEST *other = make_request(ca_cert(fx->ca), &cert, 1, true);
    assert_int_equal(OCSP_check_nonce(other, bs), 0);
    OCSP_REQUEST_free(other);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(cert);
}

/* A certificate of another CA (with the same subject name, even): unauthorized. */
static void test_wrong_issuer(void **state)
{
    fixture_t *fx = *state;
    char other_dir[160];
    snprintf(other_dir, sizeof(other_dir), "%s/other", fx->dir);
    pc_ca_t *other = NULL;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(open_ca_in(fx, other_dir, &other, &diag), PC_OK);
    X509 *mine = issue(fx);
    /* the first CertID names this CA, the second the other one */
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &mine, 1, true);
    OCSP_CERTID *foreign = OCSP_cert_to_id(NULL, mine, ca_cert(other));
    assert_non_null(OCSP_request_add0_id(req, foreign));
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, &diag);
    assert_int_equal(err, PC_ERR_NOT_FOUND);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    assert_null(OCSP_response_get1_basic(resp));
    assert_non_null(strstr(diag.msg, "another issuer"));
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(mine);
    pc_ca_free(other);
}

static void expect_malformed(fixture_t *fx, const unsigned char *der, size_t len)
{
    unsigned char *resp_der = NULL;
    size_t resp_len = 0;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(pc_ca_local_ocsp(fx->ca, der, len, &resp_der, &resp_len, &diag),
                     PC_ERR_BAD_MESSAGE);
    assert_non_null(resp_der);
    const unsigned char *p = resp_der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)resp_len);
    assert_non_null(resp);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_true(diag.msg[0] != '\0');
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(resp_der);
}

static void test_garbage_is_malformed(void **state)
{
    fixture_t *fx = *state;
    expect_malformed(fx, (const unsigned char *)"hello, responder", 16);
    expect_malformed(fx, (const unsigned char *)"", 0);

    /* a good request with a byte after it, and one asking about nothing */
    X509 *cert = issue(fx);
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &cert, 1, true);
    unsigned char *der = NULL;
    int len = i2d_OCSP_REQUEST(req, &der);
    unsigned char *longer = malloc((size_t)len + 1);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    expect_malformed(fx, longer, (size_t)len + 1);
    expect_malformed(fx, der, (size_t)len - 1); /* cut short */
    free(longer);
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    OCSP_REQUEST *empty = OCSP_REQUEST_new();
    der = NULL;
    len = i2d_OCSP_REQUEST(empty, &der);
    expect_malformed(fx, der, (size_t)len);
    OPENSSL_free(der);
    OCSP_REQUEST_free(empty);
    X509_free(cert);

    /* not a local CA at all: no answer */
    unsigned char *resp_der = NULL;
    size_t resp_len = 0;
    assert_int_equal(
        pc_ca_local_ocsp(NULL, (const unsigned char *)"x", 1, &resp_der, &resp_len, NULL),
        PC_ERR_NOT_SUPPORTED);
    assert_null(resp_der);
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static X509 *responder_on_disk(fixture_t *fx)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/ocsp.crt", fx->state);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(cert);
    return cert;
}

/* The signer a response names and includes. */
static X509 *signer_of(fixture_t *fx)
{
    X509 *cert = issue(fx);
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &cert, 1, true);
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, NULL);
    assert_int_equal(err, PC_OK);
    OCSP_BASICRESP *bs = verified(fx, resp, req);
    X509 *signer = NULL;
    assert_int_equal(OCSP_resp_get0_signer(bs, &signer, NULL), 1);
    X509_up_ref(signer);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(cert);
    return signer;
}

static void test_responder_certificate(void **state)
{
    fixture_t *fx = *state;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(pc_ca_local_ocsp_prepare(fx->ca, &diag), PC_OK);
    X509 *signer = signer_of(fx);

    /* delegated: issued by the CA, not the CA itself, for OCSP signing only, no-check */
    assert_int_not_equal(X509_cmp(signer, ca_cert(fx->ca)), 0);
    assert_int_equal(X509_check_issued(ca_cert(fx->ca), signer), X509_V_OK);
    assert_int_equal(X509_check_ca(signer), 0);
    assert_true(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(signer), XKU_OCSP_SIGN);
    assert_true(X509_get_ext_by_NID(signer, NID_id_pkix_OCSP_noCheck, -1) >= 0);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(signer), X509_get0_notAfter(signer));
    assert_true(days == 30 || (days == 29 && secs > 0)); /* 30 days from now, 5 minutes back */

    /* on disk beside the CA: the certificate, and its key encrypted with owner-only access */
    X509 *disk = responder_on_disk(fx);
    assert_int_equal(X509_cmp(disk, signer), 0);
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/ocsp.key", fx->state);
    char *pem = read_text(path);
    assert_non_null(pem);
    assert_int_equal(strncmp(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37), 0);
    free(pem);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* recorded like every certificate the CA issues: it answers good for itself */
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &signer, 1, false);
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, NULL);
    OCSP_BASICRESP *bs = verified(fx, resp, NULL);
    assert_int_equal(status_of(bs, ca_cert(fx->ca), signer, NULL, NULL), V_OCSP_CERTSTATUS_GOOD);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);

    /* a restart keeps it */
    open_ca(fx);
    X509 *again = signer_of(fx);
    assert_int_equal(X509_cmp(again, signer), 0);
    X509_free(again);
    X509_free(disk);
    X509_free(signer);
}

/* Replaces the responder certificate on disk by one for the same key, issued by the CA with
 * its validity from days_before to days_after today. */
static void age_responder(fixture_t *fx, int days_before, int days_after)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/ca.key", fx->state);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *ca_key = PEM_read_PrivateKey(fp, NULL, NULL, (void *)PASS);
    fclose(fp);
    assert_non_null(ca_key);
    X509 *cert = responder_on_disk(fx);
    time_t now = time(NULL);
    ASN1_TIME_adj(X509_getm_notBefore(cert), now, -days_before, 0);
    ASN1_TIME_adj(X509_getm_notAfter(cert), now, days_after, 0);
    assert_true(X509_sign(cert, ca_key, EVP_sha256()) > 0);
    snprintf(path, sizeof(path), "%s/ocsp.crt", fx->state);
    fp = fopen(path, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, cert);
    fclose(fp);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
}

static void test_responder_renewed(void **state)
{
    fixture_t *fx = *state;
    X509 *first = signer_of(fx);

    /* more than a third left: kept */
    age_responder(fx, 15, 15);
    open_ca(fx);
    X509 *kept = signer_of(fx);
    assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(kept), X509_get0_serialNumber(first)),
                     0);

    /* less than a third left: a new one, written for the next start too */
    age_responder(fx, 25, 5);
    open_ca(fx);
    X509 *renewed = signer_of(fx);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(renewed), X509_get0_serialNumber(first)), 0);
    X509 *disk = responder_on_disk(fx);
    assert_int_equal(X509_cmp(disk, renewed), 0);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(renewed));
    assert_true(days >= 29);

    /* one a different CA signed (the CA was replaced): replaced too */
    char other_dir[160];
    snprintf(other_dir, sizeof(other_dir), "%s/other", fx->dir);
    pc_ca_t *other = NULL;
    assert_int_equal(open_ca_in(fx, other_dir, &other, NULL), PC_OK);
    assert_int_equal(pc_ca_local_ocsp_prepare(other, NULL), PC_OK);
    char from[256], to[256];
    snprintf(from, sizeof(from), "%s/ocsp.crt", other_dir);
    snprintf(to, sizeof(to), "%s/ocsp.crt", fx->state);
    assert_int_equal(rename(from, to), 0);
    snprintf(from, sizeof(from), "%s/ocsp.key", other_dir);
    snprintf(to, sizeof(to), "%s/ocsp.key", fx->state);
    assert_int_equal(rename(from, to), 0);
    open_ca(fx);
    X509 *mine = signer_of(fx); /* verified against this CA */
    assert_int_not_equal(X509_cmp(mine, renewed), 0);
    X509_free(mine);
    pc_ca_free(other);

    X509_free(disk);
    X509_free(renewed);
    X509_free(kept);
    X509_free(first);
}

static void test_redis_down_try_later(void **state)
{
    fixture_t *fx = *state;
    X509 *cert = issue(fx);
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(pc_ca_local_ocsp_prepare(fx->ca, &diag), PC_OK);
    fx->redis.port = fixture_free_port();
    fx->redis.command_timeout_ms = 500;
    open_ca(fx);
    OCSP_REQUEST *req = make_request(ca_cert(fx->ca), &cert, 1, true);
    pc_err_t err;
    OCSP_RESPONSE *resp = ask(fx, req, &err, &diag);
    assert_int_equal(err, PC_ERR_DEPENDENCY);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_TRYLATER);
    assert_non_null(strstr(diag.msg, "Redis"));
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(cert);
}

/* Issued certificates tell relying parties where to ask. */
static void test_aia_names_responder(void **state)
{
    fixture_t *fx = *state;
    X509 *cert = issue(fx);
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cert);
    assert_int_equal(sk_OPENSSL_STRING_num(urls), 1);
    assert_string_equal(sk_OPENSSL_STRING_value(urls, 0), OCSP_URL);
    X509_email_free(urls);
    X509_free(cert);
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(&fixture_redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_revoked_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_unspecified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responder_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responder_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_try_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aia_names_responder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
