/*
 * csr.c - builds the PKCS#10 request a worker sends to a CA for a freshly generated key.
 *
 * The request carries what the profile asks for as requested extensions (SAN, EKU, key usage,
 * the Microsoft SID extension), so that the CA's template check sees exactly what will be
 * certified. Pool threads: no shared state, every call owns what it builds.
 */
/* EVP_PKEY_get1_EC_KEY / EVP_PKEY_assign_EC_KEY: see public_key_twin. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "csr.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "san.h"

/* RFC 5280 KeyUsage bit numbers of the KU_* masks, in bit-string order. */
static const unsigned ku_bit_masks[] = {
    KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION, KU_KEY_ENCIPHERMENT,
    KU_DATA_ENCIPHERMENT, KU_KEY_AGREEMENT,   KU_KEY_CERT_SIGN,
    KU_CRL_SIGN,          KU_ENCIPHER_ONLY,   KU_DECIPHER_ONLY,
};

/*
 * public_key_twin returns the key to put in the CSR's SubjectPublicKeyInfo: for EC, a legacy
 * EC_KEY holding only the public point. OpenSSL 3.0 fills an X509_PUBKEY from a provider key by
 * encoding it and decoding it again, two provider lookups that were a third of a P-256
 * request's CPU (perf); a legacy key is encoded directly, and the CA copies the same object
 * into the certificate. Public only: the certificate outlives the private key. Other key
 * types, or any failure: key itself (up-ref'd). The caller frees the result (EVP_PKEY_free).
 */
static EVP_PKEY *public_key_twin(EVP_PKEY *key)
{
    const EC_KEY *ec = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? EVP_PKEY_get0_EC_KEY(key) : NULL;
    EC_KEY *pub = NULL;
    EVP_PKEY *twin = NULL;

    if (ec != NULL && (pub = EC_KEY_new()) != NULL &&
        EC_KEY_set_group(pub, EC_KEY_get0_group(ec)) == 1 &&
        EC_KEY_set_public_key(pub, EC_KEY_get0_public_key(ec)) == 1 &&
        (twin = EVP_PKEY_new()) != NULL && EVP_PKEY_assign_EC_KEY(twin, pub) == 1)
        return twin;
    EC_KEY_free(pub);
    EVP_PKEY_free(twin);
    ERR_clear_error();
    return EVP_PKEY_up_ref(key) == 1 ? key : NULL;
}

static bool set_public_key(X509_REQ *req, EVP_PKEY *key)
{
    EVP_PKEY *twin = public_key_twin(key);
    bool ok = twin != NULL && X509_REQ_set_pubkey(req, twin) == 1;
    EVP_PKEY_free(twin);
    return ok;
}

const EVP_MD *pc_csr_digest_for(const EVP_PKEY *key)
{
    /* Match the hash to the curve's strength (RFC 5480 section 4); RSA stays at SHA-256. */
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits > 384)
            return EVP_sha512();
        if (bits > 256)
            return EVP_sha384();
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ||
        EVP_PKEY_get_base_id(key) == EVP_PKEY_ED448)
        return NULL; /* EdDSA hashes internally */
    return EVP_sha256();
}

/* Wraps DER bytes of an extension value into an X509_EXTENSION and pushes it onto exts. */
static pc_err_t push_ext_der(STACK_OF(X509_EXTENSION) * exts, int nid, int crit, unsigned char *der,
                             int len, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;

    if (value == NULL || !ASN1_OCTET_STRING_set(value, der, len)) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot build the %s extension", OBJ_nid2sn(nid));
        goto out_free_value;
    }
    ext = X509_EXTENSION_create_by_NID(NULL, nid, crit, value);
    if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
        X509_EXTENSION_free(ext);
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot build the %s extension", OBJ_nid2sn(nid));
    }
out_free_value:
    ASN1_OCTET_STRING_free(value);
    return err;
}

static pc_err_t push_san(STACK_OF(X509_EXTENSION) * exts, const GENERAL_NAMES *sans,
                         bool subject_empty, pc_diag_t *diag)
{
    unsigned char *der = NULL;
    int len = i2d_GENERAL_NAMES(sans, &der);
    if (len <= 0)
        return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                           "cannot encode the subject alternative names; check the SAN values");
    /* RFC 5280 4.2.1.6: the SAN is critical when it is the only name of the subject. */
    pc_err_t err = push_ext_der(exts, NID_subject_alt_name, subject_empty, der, len, diag);
    OPENSSL_free(der);
    return err;
}

pc_err_t pc_csr_ekus_new(const char *const *ekus, size_t count, STACK_OF(ASN1_OBJECT) * *out,
                         pc_diag_t *diag)
{
    STACK_OF(ASN1_OBJECT) *list = sk_ASN1_OBJECT_new_null();

    *out = NULL;
    if (list == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building the extended key usage");
    for (size_t i = 0; i < count; i++) {
        ASN1_OBJECT *obj = ekus[i] != NULL ? OBJ_txt2obj(ekus[i], 0) : NULL;
        if (obj == NULL) {
            ERR_clear_error();
            sk_ASN1_OBJECT_pop_free(list, ASN1_OBJECT_free);
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "unknown extended key usage \"%s\"; use a dotted OID "
                           "(e.g. 1.3.6.1.5.5.7.3.2) or a name such as clientAuth",
                           ekus[i] != NULL ? ekus[i] : "(null)");
        }
        if (!sk_ASN1_OBJECT_push(list, obj)) {
            ASN1_OBJECT_free(obj);
            sk_ASN1_OBJECT_pop_free(list, ASN1_OBJECT_free);
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory building the extended key usage");
        }
    }
    *out = list;
    return PC_OK;
}

static pc_err_t push_eku(STACK_OF(X509_EXTENSION) * exts, const char *const *ekus, size_t count,
                         pc_diag_t *diag)
{
    unsigned char *der = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    pc_err_t err = pc_csr_ekus_new(ekus, count, &eku, diag);

    if (err != PC_OK)
        return err;
    int len = i2d_EXTENDED_KEY_USAGE(eku, &der);
    if (len <= 0)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the extended key usage");
    else
        err = push_ext_der(exts, NID_ext_key_usage, 0, der, len, diag);
    OPENSSL_free(der);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return err;
}

pc_err_t pc_csr_key_usage_bits(unsigned key_usage, ASN1_BIT_STRING **out, pc_diag_t *diag)
{
    unsigned known = 0;
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();

    *out = NULL;
    if (bits == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building the key usage");
    for (size_t i = 0; i < sizeof(ku_bit_masks) / sizeof(ku_bit_masks[0]); i++) {
        known |= ku_bit_masks[i];
        if ((key_usage & ku_bit_masks[i]) != 0 && !ASN1_BIT_STRING_set_bit(bits, (int)i, 1)) {
            ASN1_BIT_STRING_free(bits);
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory building the key usage");
        }
    }
    if ((key_usage & ~known) != 0) {
        ASN1_BIT_STRING_free(bits);
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "key usage mask 0x%x has bits 0x%x that are no RFC 5280 key usage",
                       key_usage, key_usage & ~known);
    }
    *out = bits;
    return PC_OK;
}

static pc_err_t push_key_usage(STACK_OF(X509_EXTENSION) * exts, unsigned key_usage, pc_diag_t *diag)
{
    unsigned char *der = NULL;
    ASN1_BIT_STRING *bits = NULL;
    pc_err_t err = pc_csr_key_usage_bits(key_usage, &bits, diag);

    if (err != PC_OK)
        return err;
    int len = i2d_ASN1_BIT_STRING(bits, &der);
    if (len <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the key usage");
        goto out_free_bits;
    }
    err = push_ext_der(exts, NID_key_usage, 1, der, len, diag);
    OPENSSL_free(der);
out_free_bits:
    ASN1_BIT_STRING_free(bits);
    return err;
}

static pc_err_t push_sid(STACK_OF(X509_EXTENSION) * exts, const X509_EXTENSION *sid,
                         pc_diag_t *diag)
{
    char oid[64];
    X509_EXTENSION *copy = X509_EXTENSION_dup(sid);

    if (copy == NULL)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot copy the SID extension");
    if (!pc_sid_extension_is(copy)) {
        OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(copy), 1);
        X509_EXTENSION_free(copy);
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the SID extension has OID %s, expected " PC_SID_EXTENSION_OID, oid);
    }
    if (!sk_X509_EXTENSION_push(exts, copy)) {
        X509_EXTENSION_free(copy);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory adding the SID extension");
    }
    return PC_OK;
}

static pc_err_t build_extensions(const pc_csr_params_t *params, STACK_OF(X509_EXTENSION) * exts,
                                 pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    bool subject_empty = X509_NAME_entry_count(params->subject) == 0;

    if (params->sans != NULL && sk_GENERAL_NAME_num(params->sans) > 0)
        err = push_san(exts, params->sans, subject_empty, diag);
    if (err == PC_OK && params->eku_count > 0)
        err = push_eku(exts, params->ekus, params->eku_count, diag);
    if (err == PC_OK && params->key_usage != 0)
        err = push_key_usage(exts, params->key_usage, diag);
    if (err == PC_OK && params->sid != NULL)
        err = push_sid(exts, params->sid, diag);
    return err;
}

pc_err_t pc_csr_new(EVP_PKEY *key, const pc_csr_params_t *params, X509_REQ **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;

    *out = NULL;
    if (key == NULL || params == NULL || params->subject == NULL ||
        (params->eku_count > 0 && params->ekus == NULL))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CSR: key, parameters and subject are required");

    req = X509_REQ_new();
    exts = sk_X509_EXTENSION_new_null();
    if (req == NULL || exts == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory building a CSR");
        goto out_free_req;
    }
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, params->subject) || !set_public_key(req, key)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot fill the CSR with subject and public key");
        goto out_free_req;
    }
    err = build_extensions(params, exts, diag);
    if (err != PC_OK)
        goto out_free_req;
    if (sk_X509_EXTENSION_num(exts) > 0 && !X509_REQ_add_extensions(req, exts)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the requested extensions to the CSR");
        goto out_free_req;
    }
    if (X509_REQ_sign(req, key, pc_csr_digest_for(key)) <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot sign the CSR with the new %s key",
                          EVP_PKEY_get0_type_name(key));
        goto out_free_req;
    }
    *out = req;
    req = NULL;
out_free_req:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return err;
}
