/*
 * ca_local.c - the local CA backend: an in-process OpenSSL CA, the embedded default.
 *
 * It lets the connector run without an external CA: it checks the template, signs the CSR with
 * its own key, records every certificate in its index (Redis, shared by the cluster; a file
 * offline) and revokes from it. Signing costs CPU and the index waits on Redis, so with a loop
 * every call runs on the loop's thread pool and answers on the loop; without one (tools) it
 * runs inside the call. A worker gives the CA its loop's Redis client
 * (pc_ca_local_attach_redis): the pool thread then signs and prepares the record, and the loop
 * only sends it, again on a timer (not in the pool thread's sleep) while Redis is away. Many
 * pool threads may use one CA at once: the key and certificate are read-only after
 * pc_ca_local_new, and the index does its own locking.
 */
#include "ca_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "clock.h"
#include "san.h"
#include "subject.h"
#include "text.h"

#define CLOCK_SKEW_SECONDS 300
/* Recording a signed certificate is retried 100, 200, 400, 800, then every 1000 ms: for about
 * RECORD_RETRY_US (4 attempts), and when writes must reach replicas (redis.min_replicas_acks)
 * for RECORD_DURABLE_RETRY_US, long enough to outlast a failover, in which the new master has
 * no replica to confirm writes until one has rejoined it. */
#define RECORD_RETRY_US (700 * 1000)
#define RECORD_DURABLE_RETRY_US (30 * 1000 * 1000)
#define RECORD_PAUSE_MAX_MS 1000

static bool local_healthy(const pc_ca_t *ca);
static void local_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                         void *arg);
static void local_submit_request(pc_ca_t *ca, const pc_ca_request_t *creq,
                                 const pc_ca_issue_t *issue, pc_ca_done_fn done, void *arg);
static void local_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg);
static void local_find_issued(pc_ca_t *ca, const char *tenant, const char *request_id,
                              pc_ca_found_fn found, void *arg);
static STACK_OF(X509) * local_get0_chain(pc_ca_t *ca);
static void local_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg);
static void local_free(pc_ca_t *ca);

static const pc_ca_ops_t local_ops = {
    .kind = "local",
    .healthy = local_healthy,
    .submit = local_submit,
    .submit_request = local_submit_request,
    .revoke = local_revoke,
    .find_issued = local_find_issued,
    .get0_chain = local_get0_chain,
    .close = local_close,
    .free = local_free,
};

pc_ca_local_t *pc_ca_local_from(pc_ca_t *ca)
{
    return ca != NULL && ca->ops == &local_ops ? (pc_ca_local_t *)ca : NULL;
}

void pc_ca_local_attach_redis(pc_ca_t *ca, pc_redis_t *redis)
{
    pc_ca_local_t *lca = pc_ca_local_from(ca);
    if (lca != NULL && ca->loop != NULL && pc_ca_index_records_async(lca->index))
        lca->records = redis;
}

static char *dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static pc_err_t check_config(const pc_ca_local_config_t *cfg, pc_diag_t *diag)
{
    if (cfg->name == NULL || cfg->name[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the local CA needs a name (set ca.name)");
    if (cfg->state_dir == NULL || cfg->state_dir[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the local CA \"%s\" needs a state directory (set ca.state_dir)", cfg->name);
    if (cfg->key_passphrase == NULL || cfg->key_passphrase[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the local CA needs a key passphrase (set ca.key_passphrase or "
                       "PC_CA_KEY_PASSPHRASE)");
    return PC_OK;
}

pc_err_t pc_ca_local_new(const pc_ca_local_config_t *cfg, pc_ca_t **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_ca_local_t *lca = NULL;

    *out = NULL;
    if (cfg == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no local CA configuration given");
    err = check_config(cfg, diag);
    if (err != PC_OK)
        return err;
    lca = calloc(1, sizeof(*lca));
    if (lca == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the local CA");
    pthread_mutex_init(&lca->ocsp_lock, NULL);
    pthread_mutex_init(&lca->sign_lock, NULL);
    pthread_mutex_init(&lca->ocsp_renew_lock, NULL);
    lca->base.ops = &local_ops;
    lca->base.loop = cfg->loop;
    lca->base.name = strdup(cfg->name);
    lca->crl_url = dup_or_null(cfg->crl_url);
    lca->aia_url = dup_or_null(cfg->aia_url);
    lca->ocsp_url = dup_or_null(cfg->ocsp_url);
    lca->state_dir = strdup(cfg->state_dir);
    lca->key_passphrase = strdup(cfg->key_passphrase);
    if (cfg->template_count > 0)
        lca->base.templates = calloc(cfg->template_count, sizeof(*lca->base.templates));
    if (lca->base.name == NULL || (cfg->crl_url != NULL && cfg->crl_url[0] && !lca->crl_url) ||
        (cfg->aia_url != NULL && cfg->aia_url[0] && !lca->aia_url) ||
        (cfg->ocsp_url != NULL && cfg->ocsp_url[0] && !lca->ocsp_url) || lca->state_dir == NULL ||
        lca->key_passphrase == NULL || (cfg->template_count > 0 && lca->base.templates == NULL)) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the local CA");
        goto out_free_ca;
    }
    err = pc_ca_local_setup(lca, cfg, diag);
    if (err == PC_OK)
        err = pc_ca_local_direct_new(lca, &lca->direct, diag);
    if (err == PC_OK && cfg->redis != NULL)
        err = pc_ca_index_open_redis(cfg->name, cfg->redis, &lca->index, diag);
    else if (err == PC_OK)
        err = pc_ca_index_open_file(cfg->state_dir, &lca->index, diag);
    lca->record_retry_us = cfg->redis != NULL && cfg->redis->min_replicas_acks > 0
                               ? RECORD_DURABLE_RETRY_US
                               : RECORD_RETRY_US;
    if (err != PC_OK) {
        pc_diag_prefix(diag, cfg->name);
        goto out_free_ca;
    }
    /* Nothing can fail from here: the templates are taken only on success. */
    for (size_t i = 0; i < cfg->template_count; i++)
        lca->base.templates[i] = cfg->templates[i];
    lca->base.template_count = cfg->template_count;
    *out = &lca->base;
    lca = NULL;
out_free_ca:
    local_free(lca != NULL ? &lca->base : NULL);
    return err;
}

static void local_free(pc_ca_t *ca)
{
    pc_ca_local_t *lca = (pc_ca_local_t *)ca;
    if (lca == NULL)
        return;
    pc_ca_base_clear(&lca->base);
    X509_free(lca->cert);
    EVP_PKEY_free(lca->key);
    pc_ca_local_token_release(lca->engine); /* after the key, which holds it */
    sk_X509_pop_free(lca->chain, X509_free);
    ASN1_OCTET_STRING_free(lca->keyid);
    free(lca->crl_url);
    free(lca->aia_url);
    free(lca->ocsp_url);
    pc_ca_index_free(lca->index);
    pc_ca_local_direct_free(lca->direct);
    pc_ca_local_ocsp_clear(lca);
    pthread_mutex_destroy(&lca->ocsp_lock);
    pthread_mutex_destroy(&lca->ocsp_renew_lock);
    pthread_mutex_destroy(&lca->sign_lock);
    free(lca->state_dir);
    if (lca->key_passphrase != NULL)
        OPENSSL_clear_free(lca->key_passphrase, strlen(lca->key_passphrase));
    free(lca);
}

static STACK_OF(X509) * local_get0_chain(pc_ca_t *ca)
{
    return ((pc_ca_local_t *)ca)->chain;
}

/* One URI as a GENERAL_NAME; NULL when out of memory. */
static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
    if (gn == NULL || uri == NULL || !ASN1_STRING_set(uri, url, -1)) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(uri);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, uri);
    return gn;
}

static bool add_crl_dp(X509 *cert, const char *url)
{
    bool ok = false;
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = DIST_POINT_new();
    GENERAL_NAME *gn = uri_name(url);

    if (dps == NULL || dp == NULL || gn == NULL || !sk_DIST_POINT_push(dps, dp))
        goto out_free_dp;
    dp = NULL; /* now dps's */
    DIST_POINT *pushed = sk_DIST_POINT_value(dps, 0);
    pushed->distpoint = DIST_POINT_NAME_new();
    if (pushed->distpoint == NULL)
        goto out_free_dp;
    pushed->distpoint->type = 0; /* fullName */
    pushed->distpoint->name.fullname = GENERAL_NAMES_new();
    if (pushed->distpoint->name.fullname == NULL ||
        !sk_GENERAL_NAME_push(pushed->distpoint->name.fullname, gn))
        goto out_free_dp;
    gn = NULL;
    ok = X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps, 0, X509V3_ADD_DEFAULT) == 1;
out_free_dp:
    GENERAL_NAME_free(gn);
    DIST_POINT_free(dp);
    CRL_DIST_POINTS_free(dps);
    return ok;
}

/* Appends one access description (method NID_ad_OCSP or NID_ad_ca_issuers) to aia. */
static bool push_access(AUTHORITY_INFO_ACCESS *aia, int method, const char *url)
{
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *gn = uri_name(url);
    if (ad == NULL || gn == NULL) {
        GENERAL_NAME_free(gn);
        ACCESS_DESCRIPTION_free(ad);
        return false;
    }
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method);
    GENERAL_NAME_free(ad->location);
    ad->location = gn;
    if (!sk_ACCESS_DESCRIPTION_push(aia, ad)) {
        ACCESS_DESCRIPTION_free(ad);
        return false;
    }
    return true;
}

/* authorityInfoAccess with the OCSP responder and the CA certificate's URL, those configured. */
static bool add_aia(X509 *cert, const char *ocsp_url, const char *ca_issuers_url)
{
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    bool ok = aia != NULL && (ocsp_url == NULL || push_access(aia, NID_ad_OCSP, ocsp_url)) &&
              (ca_issuers_url == NULL || push_access(aia, NID_ad_ca_issuers, ca_issuers_url)) &&
              X509_add1_ext_i2d(cert, NID_info_access, aia, 0, X509V3_ADD_DEFAULT) == 1;
    AUTHORITY_INFO_ACCESS_free(aia);
    return ok;
}

static bool add_key_ids(X509 *cert, const ASN1_OCTET_STRING *ca_keyid)
{
    bool ok = false;
    ASN1_OCTET_STRING *ski = pc_ca_local_key_id(cert);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

    if (ski == NULL || akid == NULL)
        goto out_free_ids;
    akid->keyid = ASN1_OCTET_STRING_dup(ca_keyid);
    ok = akid->keyid != NULL &&
         X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
out_free_ids:
    ASN1_OCTET_STRING_free(ski);
    AUTHORITY_KEYID_free(akid);
    return ok;
}

static bool add_basic_constraints(X509 *cert)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (bc == NULL)
        return false;
    bc->ca = 0;
    bool ok = X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1;
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

/* Which requested extensions are certified: the ones the template check judged, nothing else
 * (a CSR asking for basicConstraints CA:TRUE gets CA:FALSE). */
static bool copied_from_csr(X509_EXTENSION *ext)
{
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_subject_alt_name || nid == NID_ext_key_usage || nid == NID_key_usage)
        return true;
    return pc_sid_extension_is(ext);
}

static pc_err_t copy_requested(X509 *cert, X509_REQ *csr, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    bool subject_empty = X509_NAME_entry_count(X509_REQ_get_subject_name(csr)) == 0;

    ERR_clear_error(); /* no extensions at all leaves a harmless error behind */
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        if (!copied_from_csr(ext))
            continue;
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        /* RFC 5280: keyUsage should be critical; the SAN must be when it names the subject. */
        if (nid == NID_key_usage || (nid == NID_subject_alt_name && subject_empty))
            X509_EXTENSION_set_critical(ext, 1);
        if (!X509_add_ext(cert, ext, -1)) {
            err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot copy the requested %s extension",
                              OBJ_nid2sn(nid));
            break;
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return err;
}

static pc_err_t set_validity(const pc_ca_local_t *lca, X509 *cert, unsigned days, pc_diag_t *diag)
{
    time_t now = time(NULL);
    if (!ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, -CLOCK_SKEW_SECONDS) ||
        !ASN1_TIME_adj(X509_getm_notAfter(cert), now, (int)days, 0))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot set the validity of %u days", days);
    /* A certificate outliving its issuer would fail validation at the end; say so now. */
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(lca->cert)) > 0)
        return pc_fail(diag, PC_ERR_POLICY,
                       "a validity of %u days would outlast the certificate of CA \"%s\"; ask "
                       "for fewer days or renew the CA",
                       days, lca->base.name);
    return PC_OK;
}

static pc_err_t add_extensions(const pc_ca_local_t *lca, X509 *cert, X509_REQ *csr, pc_diag_t *diag)
{
    if (!add_basic_constraints(cert) || !add_key_ids(cert, lca->keyid))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the key identifiers");
    pc_err_t err = copy_requested(cert, csr, diag);
    if (err != PC_OK)
        return err;
    if (lca->crl_url != NULL && !add_crl_dp(cert, lca->crl_url))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the CRL distribution point %s",
                           lca->crl_url);
    if ((lca->aia_url != NULL || lca->ocsp_url != NULL) &&
        !add_aia(cert, lca->ocsp_url, lca->aia_url))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the AIA URLs (OCSP %s, caIssuers %s)",
                           lca->ocsp_url != NULL ? lca->ocsp_url : "none",
                           lca->aia_url != NULL ? lca->aia_url : "none");
    return PC_OK;
}

/* Builds and signs the certificate for an already checked CSR. */
static pc_err_t sign_csr(pc_ca_local_t *lca, X509_REQ *csr, unsigned days, X509 **out,
                         pc_diag_t *diag)
{
    X509 *cert = NULL;
    pc_err_t err = pc_ca_local_new_cert(lca, X509_REQ_get_subject_name(csr),
                                        X509_REQ_get0_pubkey(csr), days, &cert, diag);
    if (err == PC_OK)
        err = add_extensions(lca, cert, csr, diag);
    if (err == PC_OK && pc_ca_local_sign_cert(lca, cert, NULL) <= 0)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "CA \"%s\" cannot sign the certificate",
                          lca->base.name);
    if (err != PC_OK) {
        X509_free(cert);
        return err;
    }
    *out = cert;
    return PC_OK;
}

/* What the index records of a certificate. */
typedef struct record {
    char *serial; /* canonical hex, OPENSSL_free */
    time_t not_after;
    char subject[1024];
} record_t;

static pc_err_t record_of(X509 *cert, record_t *rec, pc_diag_t *diag)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    struct tm tm;
    rec->serial = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    pc_name_text(X509_get_subject_name(cert), rec->subject, sizeof(rec->subject));
    if (rec->serial == NULL || !ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm)) {
        OPENSSL_free(rec->serial);
        rec->serial = NULL;
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory recording a certificate");
    }
    rec->not_after = timegm(&tm);
    return PC_OK;
}

/* The pause before the attempt after attempt (0 the first). */
static long record_pause_ms(unsigned attempt)
{
    return attempt < 4 ? 100L << attempt : RECORD_PAUSE_MAX_MS;
}

static pc_err_t record_issued(pc_ca_local_t *lca, X509 *cert, const char *request_id,
                              pc_diag_t *diag)
{
    record_t rec;
    pc_err_t err = record_of(cert, &rec, diag);
    if (err != PC_OK)
        return err;
    /* A write whose answer did not come in time, or that the replicas did not confirm, may
     * have landed: recording the same serial again is harmless (the index keeps one record),
     * signing again would make a second certificate for the request. So a slow, dropped or
     * unconfirmed answer is retried here, and only a Redis that stays away fails the call. */
    uint64_t until = pc_mono_us() + lca->record_retry_us;
    for (unsigned attempt = 0;; attempt++) {
        err = pc_ca_index_add_issued(lca->index, rec.serial, rec.not_after, request_id, rec.subject,
                                     diag);
        if (err != PC_ERR_DEPENDENCY || pc_mono_us() >= until)
            break;
        long pause_ms = record_pause_ms(attempt);
        struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    OPENSSL_free(rec.serial);
    return err;
}

/* issue checks a CSR, or (csr NULL) a parsed request creq, against its template, has it signed
 * and records the certificate (unless record is false: the loop records it): one way for both,
 * so that neither skips a step. */
static pc_err_t issue(pc_ca_local_t *lca, X509_REQ *csr, const pc_ca_request_t *creq,
                      const pc_ca_issue_t *req, const char *key, bool record, X509 **out,
                      pc_diag_t *diag)
{
    const pc_ca_template_t *tmpl = NULL;
    X509 *cert = NULL;

    *out = NULL;
    if ((csr == NULL && creq == NULL) || req == NULL || req->template_name == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\": no CSR or template given",
                       lca->base.name);
    tmpl = pc_ca_find_template(&lca->base, req->template_name);
    if (tmpl == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "CA \"%s\" has no template \"%s\"; use a template configured for it",
                       lca->base.name, req->template_name);
    pc_err_t err = csr != NULL ? pc_ca_template_check(tmpl, csr, req->validity_days, diag)
                               : pc_ca_template_check_request(tmpl, creq, req->validity_days, diag);
    if (err == PC_OK)
        err = csr != NULL ? sign_csr(lca, csr, req->validity_days, &cert, diag)
                          : pc_ca_local_sign_request(lca, creq, req->validity_days, &cert, diag);
    /* A certificate is handed out only once the index holds it, so that it can be revoked. */
    if (err == PC_OK && record)
        err = record_issued(lca, cert, key, diag);
    if (err != PC_OK) {
        X509_free(cert);
        return err;
    }
    *out = cert;
    return PC_OK;
}

pc_err_t pc_ca_local_extension_model(const pc_ca_local_t *lca, X509 **out, pc_diag_t *diag)
{
    X509 *cert = X509_new();
    X509_REQ *none = X509_REQ_new(); /* asks for nothing */
    pc_err_t err = PC_OK;

    *out = NULL;
    if (cert == NULL || none == NULL || !X509_set_pubkey(cert, X509_get0_pubkey(lca->cert)))
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory preparing CA \"%s\"", lca->base.name);
    else
        err = add_extensions(lca, cert, none, diag);
    X509_REQ_free(none);
    if (err == PC_OK)
        *out = cert;
    else
        X509_free(cert);
    return err;
}

pc_err_t pc_ca_local_new_cert(const pc_ca_local_t *lca, const X509_NAME *subject, EVP_PKEY *key,
                              unsigned days, X509 **out, pc_diag_t *diag)
{
    X509 *cert = X509_new();
    pc_err_t err = PC_OK;

    *out = NULL;
    if (cert == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a certificate");
    if (!X509_set_version(cert, X509_VERSION_3) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(lca->cert)) ||
        !X509_set_subject_name(cert, subject) || !X509_set_pubkey(cert, key))
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot fill the certificate from the request");
    if (err == PC_OK)
        err = pc_ca_local_set_serial(cert, diag);
    if (err == PC_OK)
        err = set_validity(lca, cert, days, diag);
    if (err != PC_OK) {
        X509_free(cert);
        return err;
    }
    *out = cert;
    return PC_OK;
}

static bool reason_valid(pc_revoke_reason_t reason)
{
    return reason == PC_REVOKE_UNSPECIFIED || reason == PC_REVOKE_KEY_COMPROMISE ||
           reason == PC_REVOKE_AFFILIATION_CHANGED || reason == PC_REVOKE_SUPERSEDED ||
           reason == PC_REVOKE_CESSATION_OF_OPERATION;
}

static pc_err_t revoke(pc_ca_local_t *lca, const pc_ca_revoke_t *rev, pc_diag_t *diag)
{
    const char *name = lca->base.name;
    BIGNUM *bn = NULL;

    if (rev == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\": no revocation given", name);
    pc_err_t err = pc_ca_serial_parse(&lca->base, rev->serial_hex, &bn, diag);
    if (err != PC_OK)
        return err;
    /* The canonical form (BN_bn2hex: upper case, even length), so "0a" finds "0A". */
    char *serial = BN_bn2hex(bn);
    BN_free(bn);
    if (serial == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory revoking %s", rev->serial_hex);
    if (!reason_valid(rev->reason))
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "revocation reason %d is not one this CA records; use 0, 1, 3, 4 or 5",
                      (int)rev->reason);
    else
        err = pc_ca_index_revoke(lca->index, serial, (int)rev->reason, time(NULL), diag);
    if (err == PC_ERR_NOT_FOUND)
        pc_fail(diag, err, "certificate with serial %s was not issued by CA %s", serial, name);
    OPENSSL_free(serial);
    return err;
}

/* The records name a request by its tenant and id, both key segments: "TENANT:REQUEST", so that
 * a look-up by request never finds another tenant's certificates (ids may hold ':'; segments
 * cannot). A certificate issued without a request id is recorded without one. */
#define REQUEST_KEY_MAX (2 * PC_KEY_SEGMENT_MAX(128) + 1)

static pc_err_t request_key(const char *tenant, const char *request_id, char *out, size_t size,
                            pc_diag_t *diag)
{
    char t[PC_KEY_SEGMENT_MAX(128)], r[PC_KEY_SEGMENT_MAX(128)];
    out[0] = '\0';
    if (request_id == NULL || request_id[0] == '\0')
        return PC_OK;
    pc_err_t err = pc_key_segment(tenant != NULL ? tenant : "", t, sizeof(t), diag);
    if (err == PC_OK)
        err = pc_key_segment(request_id, r, sizeof(r), diag);
    if (err == PC_OK)
        snprintf(out, size, "%s:%s", t, r);
    return err;
}

/* ---- calls: on the loop's thread pool, or inside the call without a loop ------------------ */

typedef enum call_kind { CALL_SUBMIT, CALL_REVOKE, CALL_FIND } call_kind_t;

/* One call. A submit's arguments are borrowed until it answers; a revocation is copied here,
 * since its caller's may be gone when the pool runs it (ca.h). */
typedef struct call {
    uv_work_t work;
    pc_ca_local_t *lca;
    call_kind_t kind;
    X509_REQ *csr;               /* submit of a CSR */
    const pc_ca_request_t *creq; /* submit of a parsed request */
    const pc_ca_issue_t *issue;  /* submit */
    pc_ca_revoke_t rev;          /* revoke: a copy, its serial in serial_hex */
    bool has_rev;
    char serial_hex[128];
    char request_key[REQUEST_KEY_MAX]; /* submit and find: tenant and request, see request_key */
    pc_ca_done_fn done;                /* submit, revoke */
    pc_ca_found_fn found;              /* find */
    void *arg;
    X509 *cert;              /* submit: what was signed */
    pc_ca_serial_t *serials; /* find: what was found */
    size_t count;
    pc_err_t err;
    pc_diag_t diag;
    /* submit through the loop's Redis client (lca->records): the pool signs, the loop records */
    bool record_later;
    pc_ca_index_record_t *prepared; /* what the loop sends, made on the pool thread */
    uint64_t record_until;          /* pc_mono_us */
    unsigned attempt;
    uv_timer_t timer; /* the pause between attempts; c is freed once it is closed */
    bool timer_inited;
} call_t;

/* prepare_record makes, on the pool thread, what the loop will send to record the certificate
 * of a submit; without it the certificate is not handed out. */
static pc_err_t prepare_record(call_t *c)
{
    record_t rec;
    pc_err_t err = record_of(c->cert, &rec, &c->diag);
    if (err == PC_OK) {
        err = pc_ca_index_prepare_issued(c->lca->index, rec.serial, rec.not_after, c->request_key,
                                         rec.subject, &c->prepared, &c->diag);
        OPENSSL_free(rec.serial);
    }
    if (err != PC_OK) {
        X509_free(c->cert);
        c->cert = NULL;
    }
    return err;
}

/* call_run does the work. Pool thread (or the caller's, without a loop). */
static void call_run(call_t *c)
{
    switch (c->kind) {
    case CALL_SUBMIT:
        c->err = issue(c->lca, c->csr, c->creq, c->issue, c->request_key, !c->record_later,
                       &c->cert, &c->diag);
        if (c->err == PC_OK && c->record_later)
            c->err = prepare_record(c);
        break;
    case CALL_REVOKE:
        c->err = revoke(c->lca, c->has_rev ? &c->rev : NULL, &c->diag);
        break;
    case CALL_FIND:
        c->err = pc_ca_index_find_issued(c->lca->index, c->request_key, &c->serials, &c->count,
                                         &c->diag);
        break;
    }
}

static void on_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

/* call_answer calls the caller back and frees c. */
static void call_answer(call_t *c)
{
    const pc_diag_t *diag = c->err == PC_OK ? NULL : &c->diag;
    if (c->kind == CALL_FIND)
        c->found(c->arg, c->err, c->serials, c->count, diag);
    else
        c->done(c->arg, c->err, c->cert, diag);
    free(c->serials);
    pc_ca_index_record_free(c->prepared);
    if (c->timer_inited)
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    else
        free(c);
}

/* call_end answers a call of the loop and tells close when it was the last. */
static void call_end(call_t *c)
{
    pc_ca_local_t *lca = c->lca;
    call_answer(c);
    if (--lca->pending == 0 && lca->closed != NULL) {
        void (*closed)(void *) = lca->closed;
        lca->closed = NULL;
        closed(lca->closed_arg);
    }
}

/* call_drop ends a submit whose certificate will not be handed out. */
static void call_drop(call_t *c, pc_err_t err, const pc_diag_t *diag)
{
    X509_free(c->cert);
    c->cert = NULL;
    c->err = err;
    if (diag != &c->diag)
        c->diag = *diag;
    call_end(c);
}

static void record_send(call_t *c);

static void on_record_timer(uv_timer_t *timer)
{
    record_send(timer->data);
}

/* on_recorded: the certificate is handed out once the index holds it; a Redis that did not
 * answer is asked again, as record_issued does on a pool thread, until record_until. */
static void on_recorded(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    call_t *c = arg;
    pc_ca_local_t *lca = c->lca;
    if (err == PC_OK) {
        call_end(c);
        return;
    }
    if (err != PC_ERR_DEPENDENCY || lca->closing || pc_mono_us() >= c->record_until) {
        call_drop(c, err, diag);
        return;
    }
    if (!c->timer_inited) {
        uv_timer_init(lca->base.loop, &c->timer);
        c->timer.data = c;
        c->timer_inited = true;
    }
    uv_timer_start(&c->timer, on_record_timer, (uint64_t)record_pause_ms(c->attempt++), 0);
}

static void record_send(call_t *c)
{
    pc_ca_local_t *lca = c->lca;
    pc_diag_t diag;
    if (lca->closing) {
        call_drop(c, pc_fail(&diag, PC_ERR_CA_UNAVAILABLE, "CA \"%s\" is closing", lca->base.name),
                  &diag);
        return;
    }
    pc_err_t err =
        pc_ca_index_send_issued(lca->index, lca->records, c->prepared, on_recorded, c, &diag);
    if (err != PC_OK)
        call_drop(c, err, &diag);
}

static void on_call_work(uv_work_t *work)
{
    call_run(work->data);
}

static void on_call_done(uv_work_t *work, int status)
{
    call_t *c = work->data;
    pc_ca_local_t *lca = c->lca;
    if (status == UV_ECANCELED) {
        X509_free(c->cert);
        c->cert = NULL;
        c->err = pc_fail(&c->diag, PC_ERR_CA_UNAVAILABLE, "CA \"%s\" is closing", lca->base.name);
    }
    if (c->err == PC_OK && c->record_later) {
        c->record_until = pc_mono_us() + lca->record_retry_us;
        record_send(c);
        return;
    }
    call_end(c);
}

static void dispatch(call_t *c)
{
    pc_ca_local_t *lca = c->lca;
    if (lca->base.loop == NULL) {
        call_run(c);
        call_answer(c);
        return;
    }
    c->work.data = c;
    if (uv_queue_work(lca->base.loop, &c->work, on_call_work, on_call_done) != 0) {
        c->err = pc_fail(&c->diag, PC_ERR_CA_UNAVAILABLE,
                         "CA \"%s\": the thread pool refused the work", lca->base.name);
        call_answer(c);
        return;
    }
    lca->pending++;
}

static void submit_any(pc_ca_t *ca, X509_REQ *csr, const pc_ca_request_t *creq,
                       const pc_ca_issue_t *req, pc_ca_done_fn done, void *arg);

static call_t *call_new(pc_ca_t *ca, call_kind_t kind, void *arg)
{
    call_t *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->lca = (pc_ca_local_t *)ca;
        c->kind = kind;
        c->arg = arg;
    }
    return c;
}

static void local_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *req, pc_ca_done_fn done,
                         void *arg)
{
    submit_any(ca, csr, NULL, req, done, arg);
}

static void local_submit_request(pc_ca_t *ca, const pc_ca_request_t *creq, const pc_ca_issue_t *req,
                                 pc_ca_done_fn done, void *arg)
{
    if (creq == NULL) {
        pc_diag_t diag;
        done(arg, pc_fail(&diag, PC_ERR_INVALID_PARAM, "CA \"%s\": no request given", ca->name),
             NULL, &diag);
        return;
    }
    submit_any(ca, NULL, creq, req, done, arg);
}

/* submit_any queues the signing of a CSR or (creq not NULL) of a parsed request. */
static void submit_any(pc_ca_t *ca, X509_REQ *csr, const pc_ca_request_t *creq,
                       const pc_ca_issue_t *req, pc_ca_done_fn done, void *arg)
{
    call_t *c = call_new(ca, CALL_SUBMIT, arg);
    if (c == NULL) {
        pc_diag_t diag;
        done(arg, pc_fail(&diag, PC_ERR_NOMEM, "out of memory"), NULL, &diag);
        return;
    }
    pc_diag_t diag;
    pc_err_t err = req != NULL ? request_key(req->tenant, req->request_id, c->request_key,
                                             sizeof(c->request_key), &diag)
                               : PC_OK;
    if (err != PC_OK) {
        free(c);
        done(arg, err, NULL, &diag);
        return;
    }
    c->csr = csr;
    c->creq = creq;
    c->issue = req;
    c->done = done;
    c->record_later = ((pc_ca_local_t *)ca)->records != NULL; /* set only with a loop */
    dispatch(c);
}

static void local_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg)
{
    call_t *c = call_new(ca, CALL_REVOKE, arg);
    if (c == NULL) {
        pc_diag_t diag;
        done(arg, pc_fail(&diag, PC_ERR_NOMEM, "out of memory"), NULL, &diag);
        return;
    }
    if (rev != NULL) {
        const char *serial = rev->serial_hex != NULL ? rev->serial_hex : "";
        if (strlen(serial) >= sizeof(c->serial_hex)) { /* never a shortened, other serial */
            pc_diag_t diag;
            free(c);
            done(arg,
                 pc_fail(&diag, PC_ERR_INVALID_PARAM,
                         "CA \"%s\": a serial number of %zu characters is not one it issued",
                         ca->name, strlen(serial)),
                 NULL, &diag);
            return;
        }
        c->rev = *rev;
        c->has_rev = true;
        snprintf(c->serial_hex, sizeof(c->serial_hex), "%s", serial);
        c->rev.serial_hex = c->serial_hex;
    }
    c->done = done;
    dispatch(c);
}

static void local_find_issued(pc_ca_t *ca, const char *tenant, const char *request_id,
                              pc_ca_found_fn found, void *arg)
{
    pc_diag_t diag;
    call_t *c = call_new(ca, CALL_FIND, arg);
    if (c == NULL) {
        found(arg, pc_fail(&diag, PC_ERR_NOMEM, "out of memory"), NULL, 0, &diag);
        return;
    }
    pc_err_t err = request_key(tenant, request_id, c->request_key, sizeof(c->request_key), &diag);
    if (err != PC_OK) {
        free(c);
        found(arg, err, NULL, 0, &diag);
        return;
    }
    c->found = found;
    dispatch(c);
}

/* The local CA has nothing on the loop but the calls in the pool: closed once they answered. */
static void local_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg)
{
    pc_ca_local_t *lca = (pc_ca_local_t *)ca;
    lca->closing = true; /* records not yet sent are not: lca->records may close after this */
    if (lca->pending > 0) {
        lca->closed = closed;
        lca->closed_arg = arg;
    } else if (closed != NULL) {
        closed(arg);
    }
}

/* Healthy as long as it can sign: Redis trouble shows in the worker's own Redis readiness. */
static bool local_healthy(const pc_ca_t *ca)
{
    return true;
}
