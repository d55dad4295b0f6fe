/*
 * ca_local_direct.c - the local CA signs a parsed request (pc_ca_submit_request): the key and
 * the names the engine made in this process, with no CSR between them.
 *
 * A CSR costs the engine a signature and an encoding, and the CA a parse and a verification,
 * to carry what both already hold; the local CA is in the same process, so the engine hands it
 * the key and the names, and the template check (pc_ca_template_check_request) judges them as
 * it judges a CSR's. What every certificate of the CA carries alike (basicConstraints, the
 * authority key id, the CRL and AIA URLs, and whatever ca_local.c's add_extensions adds) is
 * taken once from pc_ca_local_extension_model, so the two ways of signing cannot drift apart;
 * only the subject key id and the requested extensions are made per certificate. The digest is
 * fetched once. Signing goes through the CA's EVP_PKEY, wherever its key lives.
 * Any thread: everything built here is read-only once pc_ca_local_direct_new returns.
 */
#include "ca_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "csr.h"
#include "san.h"

struct pc_ca_local_direct {
    /* The model's extensions in their order; NULL stands for the certificate's own SKI. */
    X509_EXTENSION **fixed;
    int fixed_count;
    int requested_at; /* the requested extensions go before fixed[requested_at] */
    EVP_MD *md;       /* the CA's digest, fetched once; NULL: lca->md as it is */
};

void pc_ca_local_direct_free(pc_ca_local_direct_t *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < d->fixed_count; i++)
        X509_EXTENSION_free(d->fixed[i]);
    free(d->fixed);
    EVP_MD_free(d->md);
    free(d);
}

/* copy_model takes model's extensions: the SKI (the CA's own, in the model) becomes a
 * NULL slot that add_extensions fills with each certificate's own SKI, and the requested
 * extensions go right after the key ids, where copy_requested puts them for a CSR. */
static pc_err_t copy_model(pc_ca_local_direct_t *d, const X509 *model, pc_diag_t *diag)
{
    int n = X509_get_ext_count(model);
    d->fixed = calloc(n > 0 ? (size_t)n : 1, sizeof(*d->fixed));
    if (d->fixed == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory preparing the local CA");
    d->requested_at = n;
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(model, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        d->fixed_count = i + 1;
        if (nid == NID_subject_key_identifier || nid == NID_authority_key_identifier)
            d->requested_at = i + 1;
        if (nid == NID_subject_key_identifier)
            continue; /* the NULL slot: each certificate's own SKI */
        if ((d->fixed[i] = X509_EXTENSION_dup(ext)) == NULL)
            return pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory preparing the local CA");
    }
    return PC_OK;
}

pc_err_t pc_ca_local_direct_new(const pc_ca_local_t *lca, pc_ca_local_direct_t **out,
                                pc_diag_t *diag)
{
    X509 *model = NULL;
    pc_ca_local_direct_t *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory preparing the local CA");
    pc_err_t err = pc_ca_local_extension_model(lca, &model, diag);
    if (err == PC_OK)
        err = copy_model(d, model, diag);
    X509_free(model);
    if (err != PC_OK) {
        pc_ca_local_direct_free(d);
        return err;
    }
    /* An implicit fetch on every signature is a method-store look-up each time (OpenSSL 3.0);
     * without a name (EdDSA) there is nothing to fetch. */
    const char *md_name = lca->md != NULL ? EVP_MD_get0_name(lca->md) : NULL;
    if (md_name != NULL && (d->md = EVP_MD_fetch(NULL, md_name, NULL)) == NULL)
        ERR_clear_error(); /* lca->md as it is, then */
    *out = d;
    return PC_OK;
}

static pc_err_t add_ski(X509 *cert, pc_diag_t *diag)
{
    ASN1_OCTET_STRING *ski = pc_ca_local_key_id(cert);
    bool ok = ski != NULL &&
              X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_OCTET_STRING_free(ski);
    return ok ? PC_OK : pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the subject key identifier");
}

/* add_requested adds what the request asked for and the template check judged, as
 * copy_requested does for a CSR: SAN (critical when it is the only name), EKU, key usage
 * (critical), the SID extension. */
static pc_err_t add_requested(X509 *cert, const pc_ca_request_t *req, pc_diag_t *diag)
{
    bool subject_empty = X509_NAME_entry_count(req->subject) == 0;
    if (sk_GENERAL_NAME_num(req->sans) > 0 &&
        X509_add1_ext_i2d(cert, NID_subject_alt_name, (void *)(uintptr_t)req->sans, subject_empty,
                          X509V3_ADD_DEFAULT) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the subject alternative names");
    if (sk_ASN1_OBJECT_num(req->ekus) > 0 &&
        X509_add1_ext_i2d(cert, NID_ext_key_usage, (void *)(uintptr_t)req->ekus, 0,
                          X509V3_ADD_DEFAULT) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the extended key usage");
    if (req->key_usage != 0) {
        ASN1_BIT_STRING *bits = NULL;
        pc_err_t err = pc_csr_key_usage_bits(req->key_usage, &bits, diag);
        if (err != PC_OK)
            return err;
        int ok = X509_add1_ext_i2d(cert, NID_key_usage, bits, 1, X509V3_ADD_DEFAULT);
        ASN1_BIT_STRING_free(bits);
        if (ok != 1)
            return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the key usage");
    }
    if (req->sid != NULL && !pc_sid_extension_is(req->sid))
        return pc_fail(
            diag, PC_ERR_INVALID_PARAM,
            "the SID extension of the request has another OID than " PC_SID_EXTENSION_OID);
    /* X509_add_ext adds a copy; OpenSSL 3.0 declares it non-const */
    if (req->sid != NULL && X509_add_ext(cert, (X509_EXTENSION *)(uintptr_t)req->sid, -1) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the SID extension");
    return PC_OK;
}

static pc_err_t add_extensions(const pc_ca_local_direct_t *d, X509 *cert,
                               const pc_ca_request_t *req, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    for (int i = 0; i <= d->fixed_count && err == PC_OK; i++) {
        if (i == d->requested_at)
            err = add_requested(cert, req, diag);
        if (i == d->fixed_count || err != PC_OK)
            break;
        if (d->fixed[i] == NULL)
            err = add_ski(cert, diag);
        else if (X509_add_ext(cert, d->fixed[i], -1) != 1)
            err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the CA's extensions");
    }
    return err;
}

pc_err_t pc_ca_local_sign_request(pc_ca_local_t *lca, const pc_ca_request_t *req, unsigned days,
                                  X509 **out, pc_diag_t *diag)
{
    const pc_ca_local_direct_t *d = lca->direct;
    X509 *cert = NULL;

    *out = NULL;
    if (d == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a certificate");
    pc_err_t err = pc_ca_local_new_cert(lca, req->subject, req->key, days, &cert, diag);
    if (err == PC_OK)
        err = add_extensions(d, cert, req, diag);
    if (err == PC_OK && pc_ca_local_sign_cert(lca, cert, d->md) <= 0)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "CA \"%s\" cannot sign the certificate",
                          lca->base.name);
    if (err != PC_OK) {
        X509_free(cert);
        return err;
    }
    *out = cert;
    return PC_OK;
}
