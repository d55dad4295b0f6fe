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

/* pc_csr_digest_for returns the digest the project signs with for key (static, not to be freed):
 * SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, NULL for EdDSA. CAs use it
 * for their own signatures too. */
const EVP_MD *pc_csr_digest_for(const EVP_PKEY *key);

#endif
