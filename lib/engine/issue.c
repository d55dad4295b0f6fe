/*
 * issue.c - the stages of one ISSUE request (see issue.h for which thread runs which).
 *
 * The job owns everything secret it touches: the private key lives from keygen to pack and is
 * freed (OpenSSL wipes key material on free) as soon as the envelope is sealed; the plain
 * PKCS#12 never leaves pc_issue_pack and is cleansed before it is freed.
 */
#include "issue.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "envelope.h"
#include "pfx.h"
#include "request.h"
#include "result.h"
#include "san.h"
#include "subject.h"

/* Serials the engine picks for a CA that takes them: 16 random bytes, 126 bits of entropy. */
#define SERIAL_BYTES 16

struct pc_issue {
    const Pkcs__V1__Request *req;
    pc_ca_t *ca;
    pc_key_spec_t key_spec;
    pc_ca_issue_t ca_params;
    unsigned key_usage;
    X509_NAME *subject;
    GENERAL_NAMES *sans;
    X509_EXTENSION *sid;
    EVP_PKEY *key;
    /* What the CA is asked: a CSR, or for a CA that takes parsed requests (the local CA, in
     * this process) the request itself, whose key is checked against the certificate by its
     * SubjectPublicKeyInfo bytes. */
    bool direct;      /* the CA takes parsed requests */
    bool has_request; /* made: csr, or creq with spki */
    X509_REQ *csr;
    pc_ca_request_t creq;
    STACK_OF(ASN1_OBJECT) * ekus; /* the profile's EKUs, parsed (direct only) */
    unsigned char *spki;          /* the new key's SubjectPublicKeyInfo (direct only) */
    int spki_len;
    unsigned char spki_sha256[32]; /* of the new key, set with the request */
    pc_envelope_to_t *device;      /* the device key, checked before the CA is asked */
    X509 *cert;
    unsigned char *cert_der; /* cert encoded once, for the PKCS#12 and the Result */
    size_t cert_der_len;
    unsigned char *envelope;
    size_t envelope_len;
    char chosen_serial[2 * SERIAL_BYTES + 1]; /* for a CA that takes our serials; "" none */
};

static pc_err_t render_names(pc_issue_t *job, const Pkcs__V1__IssueRequest *issue,
                             pc_cert_type_t type, pc_diag_t *diag)
{
    const Pkcs__V1__Profile *profile = issue->profile;
    pc_var_t *items = NULL;
    size_t count = 0;
    pc_san_format_t *formats = NULL;
    pc_err_t err = pc_issue_vars(issue, &items, &count, diag);
    if (err != PC_OK)
        return err;
    pc_vars_t vars = {.items = items, .count = count};
    err = pc_subject_render(profile->subject_format, type, &vars, profile->allow_long_values,
                            &job->subject, diag);
    if (err != PC_OK)
        goto out_free_vars;
    if ((err = pc_profile_san_formats(profile, &formats, diag)) != PC_OK)
        goto out_free_vars;
    if (formats != NULL) {
        err = pc_san_render(formats, profile->n_subject_alternative_names, type, &vars, &job->sans,
                            diag);
    }
    free(formats);
out_free_vars:
    free(items);
    return err;
}

static pc_err_t check_ca(const pc_issue_t *job, const Pkcs__V1__Profile *profile, pc_diag_t *diag)
{
    if (strcmp(job->ca->name, profile->ca_name) != 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\" is not configured on this worker",
                       profile->ca_name);
    if (pc_ca_find_template(job->ca, profile->template_name) == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "CA \"%s\" has no template \"%s\"; check the profile's templateName",
                       job->ca->name, profile->template_name);
    return PC_OK;
}

pc_err_t pc_issue_prepare(const Pkcs__V1__Request *req, pc_ca_t *ca, pc_issue_t **out,
                          pc_diag_t *diag)
{
    *out = NULL;
    if (req->body_case != PKCS__V1__REQUEST__BODY_ISSUE || req->issue->profile == NULL)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "not an ISSUE request with a profile");
    const Pkcs__V1__IssueRequest *issue = req->issue;
    const Pkcs__V1__Profile *profile = issue->profile;
    pc_issue_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for request %s", req->request_id);
    job->req = req;
    job->ca = ca;
    job->ca_params.template_name = profile->template_name;
    job->ca_params.validity_days = pc_profile_validity_days(profile);
    job->ca_params.tenant = req->tenant_id;
    job->ca_params.request_id = req->request_id;
    job->ca_params.exact_key_usage = profile->n_key_usages > 0;
    pc_cert_type_t type;
    pc_err_t err;
    if ((err = check_ca(job, profile, diag)) != PC_OK ||
        (err = pc_profile_cert_type(profile, &type, diag)) != PC_OK ||
        (err = pc_profile_key_spec(profile, &job->key_spec, diag)) != PC_OK ||
        (err = pc_profile_key_usage(profile, &job->key_spec, &job->key_usage, diag)) != PC_OK ||
        (err = render_names(job, issue, type, diag)) != PC_OK)
        goto out_free_job;
    if (issue->sid[0] != '\0' && (err = pc_sid_extension_new(issue->sid, &job->sid, diag)) != PC_OK)
        goto out_free_job;
    job->direct = pc_ca_takes_requests(ca);
    /* The EKU names are parsed here for a parsed request, as pc_csr_new parses them for a CSR:
     * the same function, the same refusal of an unknown name. */
    if (job->direct && profile->n_extended_key_usages > 0 &&
        (err = pc_csr_ekus_new((const char *const *)profile->extended_key_usages,
                               profile->n_extended_key_usages, &job->ekus, diag)) != PC_OK)
        goto out_free_job;
    *out = job;
    return PC_OK;
out_free_job:
    pc_issue_free(job);
    return err;
}

const pc_key_spec_t *pc_issue_key_spec(const pc_issue_t *job)
{
    return &job->key_spec;
}

/* forget_request drops what was made for the job's key (the parsed request borrows it) before
 * the key changes or is freed. */
static void forget_request(pc_issue_t *job)
{
    job->creq = (pc_ca_request_t){0};
    job->has_request = false;
    OPENSSL_free(job->spki);
    job->spki = NULL;
    job->spki_len = 0;
}

pc_err_t pc_issue_keygen(pc_issue_t *job, pc_keygen_mode_t mode, pc_diag_t *diag)
{
    forget_request(job);
    EVP_PKEY_free(job->key);
    job->key = NULL;
    return pc_key_generate(&job->key_spec, mode, &job->key, diag);
}

void pc_issue_set0_key(pc_issue_t *job, EVP_PKEY *key)
{
    forget_request(job);
    EVP_PKEY_free(job->key);
    job->key = key;
}

/* check_device parses the device key once, before any certificate is made for it. */
static pc_err_t check_device(pc_issue_t *job, pc_diag_t *diag)
{
    const ProtobufCBinaryData *spki = &job->req->issue->device_public_key;
    if (job->device != NULL)
        return PC_OK;
    pc_err_t err = pc_envelope_to_new(spki->data, spki->len, &job->device, diag);
    if (err != PC_OK)
        pc_diag_prefix(diag, "device public key");
    return err;
}

/* hash_public_key keeps the SHA-256 of the CSR's SubjectPublicKeyInfo for the intent record;
 * re-encoding the parsed structure is cheaper than encoding the key. */
static pc_err_t hash_public_key(pc_issue_t *job, pc_diag_t *diag)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(job->csr), &spki);
    bool ok = spki_len > 0 &&
              EVP_Digest(spki, (size_t)spki_len, job->spki_sha256, NULL, EVP_sha256(), NULL);
    OPENSSL_free(spki);
    if (!ok)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot hash the public key of request %s",
                           job->req->request_id);
    return PC_OK;
}

pc_err_t pc_issue_make_csr(pc_issue_t *job, pc_diag_t *diag)
{
    const Pkcs__V1__Profile *profile = job->req->issue->profile;
    pc_csr_params_t params = {
        .subject = job->subject,
        .sans = job->sans,
        .ekus = (const char *const *)profile->extended_key_usages,
        .eku_count = profile->n_extended_key_usages,
        .key_usage = job->key_usage,
        .sid = job->sid,
    };
    if (job->key == NULL)
        return pc_fail(diag, PC_ERR_CRYPTO, "no key pair to make a CSR with");
    pc_err_t err = check_device(job, diag);
    if (err != PC_OK)
        return err;
    X509_REQ_free(job->csr);
    job->csr = NULL;
    job->has_request = false;
    if ((err = pc_csr_new(job->key, &params, &job->csr, diag)) != PC_OK)
        return err;
    if ((err = hash_public_key(job, diag)) != PC_OK)
        return err;
    job->has_request = true;
    return PC_OK;
}

/* make_parsed fills the parsed request: the names rendered at prepare, the key, and the key's
 * SubjectPublicKeyInfo for the intent record and the certificate check. */
static pc_err_t make_parsed(pc_issue_t *job, pc_diag_t *diag)
{
    OPENSSL_free(job->spki);
    job->spki = NULL;
    job->has_request = false;
    job->spki_len = i2d_PUBKEY(job->key, &job->spki);
    if (job->spki_len <= 0 ||
        !EVP_Digest(job->spki, (size_t)job->spki_len, job->spki_sha256, NULL, EVP_sha256(), NULL))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the public key of request %s",
                           job->req->request_id);
    job->creq = (pc_ca_request_t){
        .key = job->key,
        .subject = job->subject,
        .sans = job->sans,
        .ekus = job->ekus,
        .key_usage = job->key_usage,
        .sid = job->sid,
    };
    job->has_request = true;
    return PC_OK;
}

pc_err_t pc_issue_make_request(pc_issue_t *job, pc_diag_t *diag)
{
    if (!job->direct)
        return pc_issue_make_csr(job, diag);
    if (job->key == NULL)
        return pc_fail(diag, PC_ERR_CRYPTO, "no key pair to make a request with");
    pc_err_t err = check_device(job, diag);
    return err == PC_OK ? make_parsed(job, diag) : err;
}

bool pc_issue_has_request(const pc_issue_t *job)
{
    return job->has_request;
}

void pc_issue_submit(pc_issue_t *job, pc_ca_done_fn done, void *arg)
{
    if (job->direct)
        pc_ca_submit_request(job->ca, &job->creq, &job->ca_params, done, arg);
    else
        pc_ca_submit(job->ca, job->csr, &job->ca_params, done, arg);
}

pc_err_t pc_issue_submit_sync(pc_issue_t *job, X509 **cert, pc_diag_t *diag)
{
    if (job->direct)
        return pc_ca_submit_request_sync(job->ca, &job->creq, &job->ca_params, cert, diag);
    return pc_ca_submit_sync(job->ca, job->csr, &job->ca_params, cert, diag);
}

pc_err_t pc_issue_intent(const pc_issue_t *job, char *buf, size_t len, pc_diag_t *diag)
{
    if (!job->has_request)
        return pc_fail(diag, PC_ERR_CRYPTO, "no request to the CA yet for request %s",
                       job->req->request_id);
    int n = snprintf(buf, len, "ca=%s spki_sha256=", job->ca->name);
    for (size_t i = 0; n > 0 && i < sizeof(job->spki_sha256) && (size_t)n + 3 <= len; i++)
        n += snprintf(buf + n, len - (size_t)n, "%02X", job->spki_sha256[i]);
    char serial[sizeof(((pc_ca_serial_t *)0)->hex)];
    if (n > 0 && pc_issue_serial(job, serial, sizeof(serial)))
        n += snprintf(buf + n, len - (size_t)n, " serial=%s", serial);
    if (n < 0 || (size_t)n >= len)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the intent of request %s does not fit",
                       job->req->request_id);
    return PC_OK;
}

bool pc_issue_claim_intent(const pc_ca_t *ca, char *buf, size_t len)
{
    if (ca == NULL || !pc_ca_can_find_issued(ca) || pc_ca_takes_serial(ca))
        return false;
    int n = snprintf(buf, len, "ca=%s", ca->name);
    return n > 0 && (size_t)n < len;
}

/* word_value finds "name=" as a word of text[0..len) and copies its value into out. */
static bool word_value(const char *text, size_t len, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i + nlen <= len; i++) {
        if ((i > 0 && text[i - 1] != ' ') || memcmp(text + i, name, nlen) != 0)
            continue;
        size_t start = i + nlen, end = start;
        while (end < len && text[end] != ' ')
            end++;
        if (end - start == 0 || end - start >= size)
            return false;
        memcpy(out, text + start, end - start);
        out[end - start] = '\0';
        return true;
    }
    return false;
}

bool pc_issue_intent_read(const unsigned char *intent, size_t len, pc_issue_intent_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!word_value((const char *)intent, len, "ca=", out->ca, sizeof(out->ca)))
        return false;
    word_value((const char *)intent, len, "serial=", out->serial, sizeof(out->serial));
    return true;
}

pc_err_t pc_issue_choose_serial(pc_issue_t *job, pc_diag_t *diag)
{
    if (!pc_ca_takes_serial(job->ca))
        return PC_OK;
    unsigned char r[SERIAL_BYTES];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "no random serial number for request %s",
                           job->req->request_id);
    /* positive, and as long as every other: a first byte 0x40..0x7F (RFC 5280 4.1.2.2) */
    r[0] = (unsigned char)(0x40 | (r[0] & 0x3F));
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(job->chosen_serial + 2 * i, 3, "%02X", r[i]);
    job->ca_params.serial_hex = job->chosen_serial;
    return PC_OK;
}

bool pc_issue_serial(const pc_issue_t *job, char *buf, size_t len)
{
    if (job->cert == NULL && job->chosen_serial[0] != '\0' && strlen(job->chosen_serial) < len) {
        snprintf(buf, len, "%s", job->chosen_serial); /* asked for, perhaps signed */
        return true;
    }
    if (job->cert == NULL)
        return false;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(job->cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    bool ok = hex != NULL && strlen(hex) < len;
    if (ok)
        snprintf(buf, len, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return ok;
}

const pc_ca_request_t *pc_issue_get0_request(const pc_issue_t *job)
{
    return job->direct && job->has_request ? &job->creq : NULL;
}

X509_REQ *pc_issue_get0_csr(const pc_issue_t *job)
{
    return job->csr;
}

const pc_ca_issue_t *pc_issue_ca_params(const pc_issue_t *job)
{
    return &job->ca_params;
}

pc_ca_t *pc_issue_get0_ca(const pc_issue_t *job)
{
    return job->ca;
}

const X509 *pc_issue_get0_cert(const pc_issue_t *job)
{
    return job->cert;
}

/* same_public_key tells whether cert certifies the key whose SubjectPublicKeyInfo the job sent.
 * The local CA copied that key into the certificate, so the encodings are the same bytes;
 * comparing them costs next to nothing, where X509_check_private_key decodes the certificate's
 * key and compares the two in the provider. */
static bool same_public_key(const pc_issue_t *job, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    bool same = len > 0 && len == job->spki_len && memcmp(der, job->spki, (size_t)len) == 0;
    OPENSSL_free(der);
    return same;
}

/* encode_cert encodes the job's certificate once: the PKCS#12 and the Result both carry it, and
 * OpenSSL keeps no encoding of a certificate it signed, so each i2d_X509 would encode it anew. */
static pc_err_t encode_cert(pc_issue_t *job, pc_diag_t *diag)
{
    OPENSSL_free(job->cert_der);
    job->cert_der = NULL;
    int len = i2d_X509(job->cert, &job->cert_der);
    if (len <= 0)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode request %s's certificate",
                           job->req->request_id);
    job->cert_der_len = (size_t)len;
    return PC_OK;
}

pc_err_t pc_issue_set0_cert(pc_issue_t *job, X509 *cert, pc_diag_t *diag)
{
    X509_free(job->cert);
    job->cert = cert;
    OPENSSL_free(job->cert_der);
    job->cert_der = NULL;
    /* The certificate must carry the job's key: a CA that swapped requests would otherwise hand
     * one device another's certificate. Here a parsed request, whose public key bytes the job
     * kept, is checked by those bytes, and only a CSR's answer costs a key comparison.
     * pc_pfx_build checks the pair for every caller too; for the local CA's certificate, which
     * holds the job's very key object, that costs a pointer comparison. */
    if (job->direct && job->spki != NULL) {
        if (!same_public_key(job, cert))
            return pc_fail(diag, PC_ERR_CRYPTO,
                           "the CA returned a certificate for another key than request %s's",
                           job->req->request_id);
        return encode_cert(job, diag);
    }
    if (job->key != NULL && X509_check_private_key(cert, job->key) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "the CA returned a certificate for another key than request %s's",
                           job->req->request_id);
    return encode_cert(job, diag);
}

pc_err_t pc_issue_pack(pc_issue_t *job, pc_diag_t *diag)
{
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;
    pc_err_t err;
    if (job->key == NULL || job->cert_der == NULL || job->device == NULL)
        return pc_fail(diag, PC_ERR_CRYPTO,
                       "nothing to pack: key, certificate or device key missing");
    err = pc_pfx_build_encoded(job->key, job->cert, job->cert_der, job->cert_der_len,
                               pc_ca_get0_chain(job->ca), job->req->request_id, "", &pfx, &pfx_len,
                               diag);
    if (err != PC_OK)
        goto out_free_key;
    err = pc_envelope_seal_to(job->device, pfx, pfx_len, &job->envelope, &job->envelope_len, diag);
    if (err != PC_OK)
        pc_diag_prefix(diag, "device public key");
    OPENSSL_clear_free(pfx, pfx_len);
out_free_key:
    job->creq.key = NULL; /* borrowed it; the CA is asked no more once the job packs */
    EVP_PKEY_free(job->key);
    job->key = NULL;
    return err;
}

pc_err_t pc_issue_fill_result(const pc_issue_t *job, Pkcs__V1__Result *res, pc_diag_t *diag)
{
    const Pkcs__V1__Profile *profile = job->req->issue->profile;
    if (job->cert_der == NULL || job->envelope == NULL)
        return pc_fail(diag, PC_ERR_CRYPTO, "request %s has no packed certificate",
                       job->req->request_id);
    pc_err_t err = pc_result_set_cert_encoded(res, job->cert, job->cert_der, job->cert_der_len,
                                              pc_ca_get0_chain(job->ca), diag);
    if (err != PC_OK)
        return err;
    if (pc_result_set_bytes(&res->encrypted_pfx, job->envelope, job->envelope_len) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for the result");
    char *ksp = strdup(profile->key_storage_provider);
    if (ksp == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for the result");
    if (res->key_storage_provider != protobuf_c_empty_string)
        free(res->key_storage_provider);
    res->key_storage_provider = ksp;
    res->renewal_threshold_percent =
        profile->renewal_threshold_percent == 0 ? 20 : profile->renewal_threshold_percent;
    res->status = PKCS__V1__STATUS__ISSUED;
    res->error_code = PKCS__V1__ERROR_CODE__ERROR_CODE_NONE;
    return PC_OK;
}

void pc_issue_free(pc_issue_t *job)
{
    if (job == NULL)
        return;
    X509_NAME_free(job->subject);
    GENERAL_NAMES_free(job->sans);
    X509_EXTENSION_free(job->sid);
    EVP_PKEY_free(job->key);
    X509_REQ_free(job->csr);
    sk_ASN1_OBJECT_pop_free(job->ekus, ASN1_OBJECT_free);
    OPENSSL_free(job->spki);
    pc_envelope_to_free(job->device);
    X509_free(job->cert);
    OPENSSL_free(job->cert_der);
    OPENSSL_free(job->envelope);
    free(job);
}
