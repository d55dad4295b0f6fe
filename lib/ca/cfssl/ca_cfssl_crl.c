/*
 * ca_cfssl_crl.c - the CRL of a cfssl CA, as cfssl builds it from its certificate database:
 * GET /api/v1/cfssl/crl?expiry=DURATION answers {"success": true, "result": base64(DER CRL)}
 * (cfssl 1.3 and later, "cfssl serve" with -db-config; cfssl 1.2 has no such endpoint and
 * answers 404). Relying parties fetch CRLs from our coordinator rather than from cfssl, which
 * stays on an inner network; so the coordinator asks the backend, which owns the connection
 * settings (TLS, timeouts) and the CA certificate the CRL must verify against.
 *
 * Kept apart from the signing and revoking requests (ca_cfssl.c): a CRL fetch is neither
 * retried nor counted by the circuit breaker, since the coordinator asks again on its own
 * schedule. Loop thread; the answer comes through the backend's HTTP client.
 */
#include "ca_cfssl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "text.h"

#define CRL_PATH "crl"
#define CRL_MAX_RESPONSE ((size_t)32 << 20) /* a CRL of some 400,000 entries, in base64 */

typedef struct crl_fetch {
    pc_ca_cfssl_t *cca;
    pc_ca_cfssl_crl_fn fn;
    void *arg;
} crl_fetch_t;

/* The CRL URL: the info endpoint's, with crl in place of info. */
static char *crl_url(const pc_ca_cfssl_t *cca, unsigned next_update_hours)
{
    const char *slash = strrchr(cca->info_url, '/');
    size_t base = slash != NULL ? (size_t)(slash - cca->info_url) + 1 : 0;
    size_t size = base + sizeof(CRL_PATH "?expiry=4294967295h");
    char *url = malloc(size);
    if (url != NULL)
        snprintf(url, size, "%.*s" CRL_PATH "?expiry=%uh", (int)base, cca->info_url,
                 next_update_hours);
    return url;
}

/* check_crl: the DER holds a CRL this CA signed. */
static pc_err_t check_crl(const pc_ca_cfssl_t *cca, const unsigned char *der, size_t len,
                          pc_diag_t *diag)
{
    X509 *ca = sk_X509_num(cca->chain) > 0 ? sk_X509_value(cca->chain, 0) : NULL;
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    pc_err_t err = PC_OK;
    if (crl == NULL || p != der + len)
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE, "its result is not a DER CRL");
    else if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0 ||
             X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "its CRL is not signed by the CA certificate cfssl gives at /info; "
                          "check that cfssl serve runs with that CA's -ca and -ca-key");
    X509_CRL_free(crl);
    return err;
}

/* judge turns cfssl's answer into a verified DER CRL (*der, caller frees) or an error. */
static pc_err_t judge(const pc_ca_cfssl_t *cca, const pc_curl_uv_result_t *res, unsigned char **der,
                      size_t *len, pc_diag_t *diag)
{
    pc_ca_cfssl_reply_t reply;
    pc_err_t err = PC_OK;
    *der = NULL;
    *len = 0;
    if (res->code != CURLE_OK)
        return pc_fail(diag, PC_ERR_CA_UNAVAILABLE, "cannot reach cfssl for its CRL: %s",
                       res->error);
    if (res->status == 404)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "cfssl has no CRL endpoint (404 for /api/v1/cfssl/crl): cfssl 1.2 has "
                       "none; run cfssl 1.3 or later, serving with its certificate database "
                       "(-db-config)");
    pc_ca_cfssl_reply_parse(res->body, res->body_len, &reply);
    const char *b64 = json_string_value(reply.result);
    if (reply.root == NULL)
        err = pc_fail(diag, res->status >= 500 ? PC_ERR_CA_UNAVAILABLE : PC_ERR_BAD_MESSAGE,
                      "cfssl answered its CRL request with HTTP %ld and no cfssl answer",
                      res->status);
    else if (!reply.success || res->status != 200)
        err = pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                      "cfssl could not make its CRL (HTTP %ld, code %d: %s); see cfssl's log, "
                      "and check its certificate database (-db-config)",
                      res->status, reply.code, reply.message);
    else if (b64 == NULL || pc_base64_decode(b64, strlen(b64), der, len, NULL) != PC_OK)
        err = pc_fail(diag, PC_ERR_BAD_MESSAGE, "cfssl's CRL answer has no base64 result");
    else
        err = check_crl(cca, *der, *len, diag);
    pc_ca_cfssl_reply_clear(&reply);
    if (err != PC_OK) {
        free(*der);
        *der = NULL;
        *len = 0;
    }
    return err;
}

static void on_crl_done(void *arg, pc_curl_uv_result_t *res)
{
    crl_fetch_t *fetch = arg;
    pc_diag_t diag = {.msg = ""};
    unsigned char *der = NULL;
    size_t len = 0;
    pc_err_t err = judge(fetch->cca, res, &der, &len, &diag);
    if (err != PC_OK)
        pc_diag_prefix(&diag, fetch->cca->base.name);
    free(res->body);
    fetch->fn(fetch->arg, err, der, len, err != PC_OK ? &diag : NULL);
    free(der);
    free(fetch);
}

void pc_ca_cfssl_crl(pc_ca_t *ca, unsigned next_update_hours, pc_ca_cfssl_crl_fn fn, void *arg)
{
    static const char *const headers[] = {"Accept: application/json"};
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = PC_OK;
    char *url = NULL;
    crl_fetch_t *fetch = NULL;
    pc_ca_cfssl_t *cca =
        ca != NULL && strcmp(ca->ops->kind, "cfssl") == 0 ? (pc_ca_cfssl_t *)ca : NULL;

    if (cca == NULL) {
        err = pc_fail(&diag, PC_ERR_NOT_SUPPORTED, "CA \"%s\" is not a cfssl CA",
                      ca != NULL ? ca->name : "(none)");
        goto out_fail;
    }
    if (cca->closing || cca->chain == NULL) {
        err = pc_fail(&diag, PC_ERR_CA_UNAVAILABLE,
                      cca->closing ? "cfssl CA \"%s\" is closing"
                                   : "cfssl CA \"%s\": its CA certificate has not been fetched "
                                     "yet, so no CRL can be checked; is cfssl up?",
                      ca->name);
        goto out_fail;
    }
    url = crl_url(cca, next_update_hours > 0 ? next_update_hours : 24);
    fetch = calloc(1, sizeof(*fetch));
    if (url == NULL || fetch == NULL) {
        err = pc_fail(&diag, PC_ERR_NOMEM, "out of memory");
        goto out_fail;
    }
    *fetch = (crl_fetch_t){.cca = cca, .fn = fn, .arg = arg};
    pc_curl_uv_request_t req = {.method = "GET",
                                .url = url,
                                .headers = headers,
                                .header_count = 1,
                                .connect_timeout_ms = cca->connect_timeout_ms,
                                .total_timeout_ms = cca->total_timeout_ms,
                                .max_response = CRL_MAX_RESPONSE,
                                .tls = &cca->tls};
    err = pc_curl_uv_request(cca->http, &req, on_crl_done, fetch, &diag);
    free(url);
    url = NULL;
    if (err != PC_OK)
        goto out_fail;
    return;
out_fail:
    free(url);
    free(fetch);
    fn(arg, err, NULL, 0, &diag);
}
