/*
 * ca_local_ocsp.c - the local CA's OCSP responder (RFC 6960): answers "is this certificate
 * revoked?" for one serial at a time from the CA's records, so that a relying party need not
 * fetch the whole CRL.
 *
 * Responses are signed by a delegated responder certificate rather than by the CA key: the CA
 * key signs once a month (or, in a token, stays idle), and a stolen responder key lies for at
 * most 30 days. The responder certificate carries id-kp-OCSPSigning (RFC 6960 4.2.2.2) and
 * id-pkix-ocsp-nocheck (4.2.2.2.1: clients do not ask about the responder itself, which its
 * short life makes safe). Its key lives in the CA's state folder as ocsp.key, encrypted
 * (PKCS#8, AES-256) under the CA's passphrase like ca.key, beside ocsp.crt; processes sharing
 * the folder take its lock, so they agree on one. It is renewed when a third of its validity
 * is left, while the old one goes on answering.
 *
 * Pool threads, many at once: a request takes references to the current responder certificate
 * and key under ocsp_lock, so a renewal never frees what another thread signs with.
 */
#include "ca_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include "csr.h"
#include "subject.h"

#define RESPONDER_VALIDITY_DAYS 30
#define RESPONDER_RETRY_SECONDS 60 /* after a failed renewal, while the old one still serves */
#define RESPONDER_MIN_LIFE_SECONDS 3600
#define CLOCK_SKEW_SECONDS 300
#define NEXT_UPDATE_SECONDS 3600 /* how long a relying party may keep an answer */
#define MAX_CERT_IDS 32          /* per request: bounds the look-ups one request costs */
#define RESPONDER_CERT "ocsp.crt"
#define RESPONDER_KEY "ocsp.key"

/* The responder certificate's extensions besides the key identifiers, as openssl's
 * configuration syntax writes them. */
static const struct {
    int nid;
    const char *value;
} responder_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "OCSPSigning"},
    {NID_id_pkix_OCSP_noCheck, "ignored"}, /* the value is an ASN.1 NULL whatever is written */
    {NID_subject_key_identifier, "hash"},
};

/* ---- the responder certificate ------------------------------------------------------------ */

static time_t asn1_time_t(const ASN1_TIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

/* When a responder certificate should be replaced: a third of its validity before its end. */
static time_t renew_time(X509 *cert)
{
    time_t from = asn1_time_t(X509_get0_notBefore(cert));
    time_t to = asn1_time_t(X509_get0_notAfter(cert));
    return from + (to - from) / 3 * 2;
}

void pc_ca_local_ocsp_clear(pc_ca_local_t *lca)
{
    X509_free(lca->ocsp_cert);
    EVP_PKEY_free(lca->ocsp_key);
    lca->ocsp_cert = NULL;
    lca->ocsp_key = NULL;
}

/* A responder found in the state folder serves if this CA's key signed it, its key is its own,
 * and it is not due for renewal (the CA key may have changed since: then it is made again). */
static bool usable(const pc_ca_local_t *lca, X509 *cert, EVP_PKEY *key, time_t now)
{
    EVP_PKEY *ca_pub = X509_get0_pubkey(lca->cert);
    bool ok = ca_pub != NULL && X509_verify(cert, ca_pub) == 1 &&
              X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(lca->cert)) == 0 &&
              X509_check_private_key(cert, key) == 1 && now < renew_time(cert) &&
              now >= asn1_time_t(X509_get0_notBefore(cert));
    ERR_clear_error();
    return ok;
}

/* Loads the pair from the state folder; false (nothing kept) when absent or unreadable: a new
 * one is made then, as the pair is the CA's own disposable state. */
static bool load_responder(const pc_ca_local_t *lca, const char *cert_path, const char *key_path,
                           time_t now, X509 **cert, EVP_PKEY **key)
{
    pc_diag_t ignored;
    FILE *fp = fopen(cert_path, "r");
    *cert = NULL;
    *key = NULL;
    if (fp == NULL)
        return false;
    *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    if (*cert != NULL &&
        pc_ca_local_load_key(key_path, lca->key_passphrase, key, &ignored) == PC_OK &&
        usable(lca, *cert, *key, now))
        return true;
    ERR_clear_error();
    X509_free(*cert);
    EVP_PKEY_free(*key);
    *cert = NULL;
    *key = NULL;
    return false;
}

static pc_err_t responder_subject(const pc_ca_local_t *lca, X509 *cert, pc_diag_t *diag)
{
    char cn[256];
    snprintf(cn, sizeof(cn), "OCSP responder of CA %s", lca->base.name);
    X509_NAME *name = X509_NAME_new();
    bool ok = name != NULL &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0) &&
              X509_set_subject_name(cert, name);
    X509_NAME_free(name);
    return ok ? PC_OK : pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot name the OCSP responder");
}

static pc_err_t responder_extensions(const pc_ca_local_t *lca, X509 *cert, pc_diag_t *diag)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, lca->cert, cert, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof(responder_exts) / sizeof(responder_exts[0]); i++) {
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, &ctx, responder_exts[i].nid, responder_exts[i].value);
        int ok = ext != NULL && X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        if (!ok)
            return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                               "cannot add %s to the OCSP responder certificate",
                               OBJ_nid2sn(responder_exts[i].nid));
    }
    /* The CA's key id as the AKI, as in every certificate it issues (it may have no SKI). */
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    bool ok =
        akid != NULL && (akid->keyid = ASN1_OCTET_STRING_dup(lca->keyid)) != NULL &&
        X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
    AUTHORITY_KEYID_free(akid);
    return ok ? PC_OK
              : pc_fail_ssl(diag, PC_ERR_CRYPTO,
                            "cannot add the authority key id to the OCSP responder certificate");
}

/* Validity: RESPONDER_VALIDITY_DAYS from now, never past the CA's own end. */
static pc_err_t responder_validity(const pc_ca_local_t *lca, X509 *cert, time_t now,
                                   pc_diag_t *diag)
{
    if (!ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, -CLOCK_SKEW_SECONDS) ||
        !ASN1_TIME_adj(X509_getm_notAfter(cert), now, RESPONDER_VALIDITY_DAYS, 0))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot set the OCSP responder's validity");
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(lca->cert)) > 0 &&
        !X509_set1_notAfter(cert, X509_get0_notAfter(lca->cert)))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot set the OCSP responder's validity");
    return PC_OK;
}

/* Records the responder certificate like any the CA issues, so its serial is known. */
static pc_err_t record_responder(pc_ca_local_t *lca, X509 *cert, pc_diag_t *diag)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *serial = bn != NULL ? BN_bn2hex(bn) : NULL;
    char subject[300];
    pc_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
    pc_err_t err = serial == NULL ? pc_fail(diag, PC_ERR_NOMEM, "out of memory")
                                  : pc_ca_index_add_issued(lca->index, serial,
                                                           asn1_time_t(X509_get0_notAfter(cert)),
                                                           NULL, subject, diag);
    OPENSSL_free(serial);
    BN_free(bn);
    return err;
}

/* Has the CA issue a new responder certificate for a new P-256 key. */
static pc_err_t make_responder(pc_ca_local_t *lca, time_t now, X509 **out_cert, EVP_PKEY **out_key,
                               pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    X509 *cert = X509_new();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (cert == NULL || key == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot generate the OCSP responder's key");
        goto out_free_pair;
    }
    if (!X509_set_version(cert, X509_VERSION_3) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(lca->cert)) ||
        !X509_set_pubkey(cert, key)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot fill the OCSP responder certificate");
        goto out_free_pair;
    }
    if ((err = pc_ca_local_set_serial(cert, diag)) != PC_OK ||
        (err = responder_subject(lca, cert, diag)) != PC_OK ||
        (err = responder_validity(lca, cert, now, diag)) != PC_OK ||
        (err = responder_extensions(lca, cert, diag)) != PC_OK)
        goto out_free_pair;
    if (pc_ca_local_sign_cert(lca, cert, NULL) <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "CA \"%s\" cannot sign its OCSP responder certificate", lca->base.name);
        goto out_free_pair;
    }
    /* Recorded before it is used, like every certificate the CA hands out. */
    if ((err = record_responder(lca, cert, diag)) != PC_OK)
        goto out_free_pair;
    *out_cert = cert;
    *out_key = key;
    return PC_OK;
out_free_pair:
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

/* Under the state folder's lock: the pair another process left there, or a new one written
 * there. */
static pc_err_t load_or_make(pc_ca_local_t *lca, time_t now, X509 **cert, EVP_PKEY **key,
                             pc_diag_t *diag)
{
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    int lock = -1;
    pc_err_t err =
        pc_ca_local_state_path(lca->state_dir, RESPONDER_CERT, cert_path, sizeof(cert_path), diag);
    if (err == PC_OK)
        err =
            pc_ca_local_state_path(lca->state_dir, RESPONDER_KEY, key_path, sizeof(key_path), diag);
    if (err == PC_OK)
        err = pc_ca_local_lock_state(lca->state_dir, &lock, diag);
    if (err != PC_OK)
        return err;
    if (!load_responder(lca, cert_path, key_path, now, cert, key)) {
        err = make_responder(lca, now, cert, key, diag);
        if (err == PC_OK)
            err = pc_ca_local_write_pair(lca->state_dir, key_path, *key, cert_path, *cert,
                                         lca->key_passphrase, diag);
        if (err != PC_OK) {
            X509_free(*cert);
            EVP_PKEY_free(*key);
            *cert = NULL;
            *key = NULL;
        }
    }
    pc_ca_local_unlock_state(lock);
    return err;
}

/* The current responder's certificate and key, each with a reference of the caller's. */
static void take_current(pc_ca_local_t *lca, X509 **cert, EVP_PKEY **key)
{
    X509_up_ref(lca->ocsp_cert);
    EVP_PKEY_up_ref(lca->ocsp_key);
    *cert = lca->ocsp_cert;
    *key = lca->ocsp_key;
}

/* Whether the current responder serves now without a renewal attempt (ocsp_lock held). */
static bool current_serves(const pc_ca_local_t *lca, time_t now)
{
    return lca->ocsp_cert != NULL && now < lca->ocsp_not_after &&
           (now < lca->ocsp_renew_at || now < lca->ocsp_retry_at);
}

/* renew: under ocsp_renew_lock, one thread at a time. A failed renewal leaves a still valid
 * responder in service and tries again after RESPONDER_RETRY_SECONDS. */
static pc_err_t renew(pc_ca_local_t *lca, time_t now, pc_diag_t *diag)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    pc_err_t err = load_or_make(lca, now, &cert, &key, diag);
    pthread_mutex_lock(&lca->ocsp_lock);
    if (err == PC_OK) {
        pc_ca_local_ocsp_clear(lca);
        lca->ocsp_cert = cert;
        lca->ocsp_key = key;
        lca->ocsp_not_after = asn1_time_t(X509_get0_notAfter(cert));
        lca->ocsp_renew_at = renew_time(cert);
        /* A CA near its own end gives short responders: never renew on every request. */
        if (lca->ocsp_renew_at < now + RESPONDER_MIN_LIFE_SECONDS)
            lca->ocsp_renew_at = now + RESPONDER_MIN_LIFE_SECONDS;
        lca->ocsp_retry_at = 0;
    } else if (lca->ocsp_cert != NULL && now < lca->ocsp_not_after) {
        lca->ocsp_retry_at = now + RESPONDER_RETRY_SECONDS;
        err = PC_OK;
    }
    pthread_mutex_unlock(&lca->ocsp_lock);
    return err;
}

/* get_responder gives the caller references to a responder that serves now, renewing first
 * when it is missing or due. */
static pc_err_t get_responder(pc_ca_local_t *lca, X509 **cert, EVP_PKEY **key, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    time_t now = time(NULL);

    pthread_mutex_lock(&lca->ocsp_lock);
    bool serves = current_serves(lca, now);
    if (serves)
        take_current(lca, cert, key);
    pthread_mutex_unlock(&lca->ocsp_lock);
    if (serves)
        return PC_OK;

    pthread_mutex_lock(&lca->ocsp_renew_lock);
    pthread_mutex_lock(&lca->ocsp_lock);
    serves = current_serves(lca, now); /* another thread may have renewed meanwhile */
    pthread_mutex_unlock(&lca->ocsp_lock);
    if (!serves)
        err = renew(lca, now, diag);
    if (err == PC_OK) {
        pthread_mutex_lock(&lca->ocsp_lock);
        take_current(lca, cert, key);
        pthread_mutex_unlock(&lca->ocsp_lock);
    }
    pthread_mutex_unlock(&lca->ocsp_renew_lock);
    if (err != PC_OK)
        pc_diag_prefix(diag, "OCSP responder certificate");
    return err;
}

pc_err_t pc_ca_local_ocsp_prepare(pc_ca_t *ca, pc_diag_t *diag)
{
    pc_ca_local_t *lca = pc_ca_local_from(ca);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    if (lca == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "CA \"%s\" is not a local CA; it has no OCSP "
                       "responder here",
                       ca != NULL ? ca->name : "(none)");
    pc_err_t err = get_responder(lca, &cert, &key, diag);
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

/* ---- answering ---------------------------------------------------------------------------- */

/* encode_status encodes an OCSPResponse with an error status and no body. */
static pc_err_t encode_status(int status, unsigned char **der, size_t *len, pc_diag_t *diag)
{
    OCSP_RESPONSE *resp = OCSP_response_create(status, NULL);
    int n = resp != NULL ? i2d_OCSP_RESPONSE(resp, der) : -1;
    OCSP_RESPONSE_free(resp);
    if (n <= 0)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot encode an OCSP response");
    *len = (size_t)n;
    return PC_OK;
}

/* Whether cid names this CA (its name and key hashed with cid's hash algorithm). *known tells
 * whether the hash algorithm is one we have. */
static bool names_this_ca(const pc_ca_local_t *lca, OCSP_CERTID *cid, bool *known)
{
    ASN1_OBJECT *md_oid = NULL;
    OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, cid);
    const EVP_MD *md = md_oid != NULL ? EVP_get_digestbyobj(md_oid) : NULL;
    *known = md != NULL;
    if (md == NULL)
        return false;
    OCSP_CERTID *ours = OCSP_cert_to_id(md, NULL, lca->cert);
    bool same = ours != NULL && OCSP_id_issuer_cmp(ours, cid) == 0;
    OCSP_CERTID_free(ours);
    return same;
}

/* check_request: every CertID names this CA and the request is within bounds; the error that
 * decides the response status otherwise. */
static pc_err_t check_request(const pc_ca_local_t *lca, OCSP_REQUEST *req, pc_diag_t *diag)
{
    int n = OCSP_request_onereq_count(req);
    if (n <= 0 || n > MAX_CERT_IDS)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the OCSP request asks about %d certificates; ask about 1 to %d", n,
                       MAX_CERT_IDS);
    for (int i = 0; i < n; i++) {
        bool known = false;
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        if (names_this_ca(lca, cid, &known))
            continue;
        if (!known)
            return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                           "the OCSP request's CertID %d uses a hash algorithm this responder "
                           "does not know; use SHA-1 or SHA-256",
                           i + 1);
        return pc_fail(diag, PC_ERR_NOT_FOUND,
                       "the OCSP request's CertID %d names another issuer than CA \"%s\"; ask "
                       "that CA's responder",
                       i + 1, lca->base.name);
    }
    return PC_OK;
}

/* The index's status of the serial in cid: a serial that is not positive was never issued. */
static pc_err_t look_up(pc_ca_local_t *lca, OCSP_CERTID *cid, pc_ca_index_status_t *st,
                        pc_diag_t *diag)
{
    ASN1_INTEGER *serial = NULL;
    *st = (pc_ca_index_status_t){.state = PC_CA_INDEX_UNKNOWN};
    OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid);
    BIGNUM *bn = serial != NULL ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    if (bn == NULL || BN_is_negative(bn) || BN_is_zero(bn) || BN_num_bytes(bn) > 30) {
        BN_free(bn);
        return PC_OK;
    }
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    pc_err_t err = pc_ca_index_status(lca->index, hex, st, diag);
    OPENSSL_free(hex);
    return err;
}

/* add_answer adds cid's status to bs, valid from now for NEXT_UPDATE_SECONDS. */
static pc_err_t add_answer(OCSP_BASICRESP *bs, OCSP_CERTID *cid, const pc_ca_index_status_t *st,
                           ASN1_TIME *this_update, ASN1_TIME *next_update, pc_diag_t *diag)
{
    static const int states[] = {
        [PC_CA_INDEX_UNKNOWN] = V_OCSP_CERTSTATUS_UNKNOWN,
        [PC_CA_INDEX_GOOD] = V_OCSP_CERTSTATUS_GOOD,
        [PC_CA_INDEX_REVOKED] = V_OCSP_CERTSTATUS_REVOKED,
    };
    ASN1_GENERALIZEDTIME *revoked_at = NULL;
    int reason = OCSP_REVOKED_STATUS_NOSTATUS;
    if (st->state == PC_CA_INDEX_REVOKED) {
        revoked_at = ASN1_GENERALIZEDTIME_new();
        if (revoked_at == NULL || !ASN1_GENERALIZEDTIME_set_string(revoked_at, st->revoked_at)) {
            ASN1_GENERALIZEDTIME_free(revoked_at);
            return pc_fail_ssl(diag, PC_ERR_CRYPTO, "bad revocation time %s in the records",
                               st->revoked_at);
        }
        /* As in the CRL (RFC 5280 5.3.1): unspecified is said by giving no reason. */
        if (st->reason != PC_REVOKE_UNSPECIFIED)
            reason = st->reason;
    }
    OCSP_SINGLERESP *single = OCSP_basic_add1_status(bs, cid, states[st->state], reason, revoked_at,
                                                     this_update, next_update);
    ASN1_GENERALIZEDTIME_free(revoked_at);
    if (single == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add a status to the OCSP response");
    return PC_OK;
}

/* answer_all fills bs with one answer per CertID of req, and the nonce. */
static pc_err_t answer_all(pc_ca_local_t *lca, OCSP_REQUEST *req, OCSP_BASICRESP *bs,
                           pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    time_t now = time(NULL);
    ASN1_TIME *this_update = ASN1_TIME_adj(NULL, now, 0, 0);
    ASN1_TIME *next_update = ASN1_TIME_adj(NULL, now, 0, NEXT_UPDATE_SECONDS);
    if (this_update == NULL || next_update == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_free_times;
    }
    for (int i = 0; i < OCSP_request_onereq_count(req) && err == PC_OK; i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        pc_ca_index_status_t st;
        err = look_up(lca, cid, &st, diag);
        if (err == PC_OK)
            err = add_answer(bs, cid, &st, this_update, next_update, diag);
    }
    /* A nonce ties the answer to this request (RFC 8954): echoed when the client sent one. */
    if (err == PC_OK && OCSP_copy_nonce(bs, req) <= 0)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot echo the OCSP request's nonce");
out_free_times:
    ASN1_TIME_free(this_update);
    ASN1_TIME_free(next_update);
    return err;
}

/* sign_and_encode signs bs with the responder (its certificate included, identified by its key
 * hash as RFC 5019 prefers) and encodes the successful OCSPResponse. */
static pc_err_t sign_and_encode(pc_ca_local_t *lca, OCSP_BASICRESP *bs, unsigned char **der,
                                size_t *len, pc_diag_t *diag)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    OCSP_RESPONSE *resp = NULL;
    pc_err_t err = get_responder(lca, &cert, &key, diag);
    if (err != PC_OK)
        return err;
    if (!OCSP_basic_sign(bs, cert, key, pc_csr_digest_for(key), NULL, OCSP_RESPID_KEY)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "CA \"%s\": cannot sign the OCSP response",
                          lca->base.name);
        goto out_free_responder;
    }
    resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    int n = resp != NULL ? i2d_OCSP_RESPONSE(resp, der) : -1;
    if (n <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot encode the OCSP response");
        goto out_free_responder;
    }
    *len = (size_t)n;
out_free_responder:
    OCSP_RESPONSE_free(resp);
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

/* The response status that says what went wrong. */
static int status_for(pc_err_t err)
{
    switch (err) {
    case PC_ERR_BAD_MESSAGE:
        return OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
    case PC_ERR_NOT_FOUND:
        return OCSP_RESPONSE_STATUS_UNAUTHORIZED;
    case PC_ERR_DEPENDENCY:
        return OCSP_RESPONSE_STATUS_TRYLATER;
    default:
        return OCSP_RESPONSE_STATUS_INTERNALERROR;
    }
}

pc_err_t pc_ca_local_ocsp(pc_ca_t *ca, const unsigned char *request_der, size_t len,
                          unsigned char **response_der, size_t *response_len, pc_diag_t *diag)
{
    pc_ca_local_t *lca = pc_ca_local_from(ca);
    OCSP_REQUEST *req = NULL;
    OCSP_BASICRESP *bs = NULL;
    pc_err_t err = PC_OK;

    *response_der = NULL;
    *response_len = 0;
    if (lca == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "CA \"%s\" is not a local CA; it has no OCSP responder here",
                       ca != NULL ? ca->name : "(none)");
    const unsigned char *p = request_der;
    if (request_der == NULL || len == 0 || len > LONG_MAX ||
        (req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL || p != request_der + len) {
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE,
                          "the body is not a DER OCSPRequest (RFC 6960 4.1.1)");
        goto out_encode_status;
    }
    bs = OCSP_BASICRESP_new();
    if (bs == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_encode_status;
    }
    if ((err = check_request(lca, req, diag)) != PC_OK ||
        (err = answer_all(lca, req, bs, diag)) != PC_OK ||
        (err = sign_and_encode(lca, bs, response_der, response_len, diag)) != PC_OK)
        goto out_encode_status;
    goto out_free_req;
out_encode_status:
    ERR_clear_error();
    if (err != PC_ERR_NOMEM &&
        encode_status(status_for(err), response_der, response_len, NULL) != PC_OK) {
        *response_der = NULL;
        *response_len = 0;
    }
out_free_req:
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    return err;
}
