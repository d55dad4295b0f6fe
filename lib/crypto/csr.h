/*
 * csr.h - PKCS#10 certificate requests signed with the freshly generated key. Pool threads.
 */
#ifndef PC_CSR_H
#define PC_CSR_H

#include <openssl/x509v3.h>

#include "pc_err.h"

typedef struct pc_csr_params {
    const X509_NAME *subject;  /* borrowed, required */
    const GENERAL_NAMES *sans; /* borrowed, may be NULL */
    const char *const *ekus;   /* dotted OIDs or OpenSSL short names ("clientAuth") */
    size_t eku_count;
    unsigned key_usage;        /* KU_* bits of <openssl/x509v3.h>; 0 = no extension */
    const X509_EXTENSION *sid; /* borrowed, may be NULL */
} pc_csr_params_t;

/* pc_csr_new builds a CSR for key with the requested extensions of params, signed with key
 * (SHA-256; SHA-384 for P-384); *out is the caller's. PC_ERR_INVALID_PARAM for an unknown EKU
 * name, PC_ERR_CRYPTO when signing fails. */
pc_err_t pc_csr_new(EVP_PKEY *key, const pc_csr_params_t *params, X509_REQ **out, pc_diag_t *diag);

/* pc_csr_ekus_new parses EKU names (clientAuth) or dotted OIDs into the list a CSR or a
 * certificate carries; *out is the caller's (sk_ASN1_OBJECT_pop_free with ASN1_OBJECT_free).
 * PC_ERR_INVALID_PARAM naming an entry that is neither. Any thread. */
pc_err_t pc_csr_ekus_new(const char *const *ekus, size_t count, STACK_OF(ASN1_OBJECT) * *out,
                         pc_diag_t *diag);

/* pc_csr_key_usage_bits makes the KeyUsage BIT STRING of a KU_* mask, as a CSR or a
 * certificate carries it; *out is the caller's (ASN1_BIT_STRING_free). PC_ERR_INVALID_PARAM for
 * bits that are no RFC 5280 key usage. Any thread. */
pc_err_t pc_csr_key_usage_bits(unsigned key_usage, ASN1_BIT_STRING **out, pc_diag_t *diag);

/* pc_csr_digest_for returns the digest the project signs with for key (static, not to be freed):
 * SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, NULL for EdDSA. CAs use it
 * for their own signatures too. */
const EVP_MD *pc_csr_digest_for(const EVP_PKEY *key);

#endif
