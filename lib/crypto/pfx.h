/*
 * pfx.h - PKCS#12 (PFX) files: build one from a key, certificate and chain; open one.
 * Pool threads.
 */
#ifndef PC_PFX_H
#define PC_PFX_H

#include <openssl/x509.h>

#include "pc_err.h"

/* pc_pfx_build makes a PKCS#12 holding key, cert and chain (may be NULL) with friendly_name
 * (may be NULL). The key is protected by password (AES-256-CBC, PBKDF2-SHA256; one iteration
 * when the password is empty, 2048 otherwise), the certificates are in clear, and a SHA-256 MAC
 * covers all. *der is the caller's and holds the private key: free with
 * OPENSSL_clear_free(*der, *len). */
pc_err_t pc_pfx_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *friendly_name,
                      const char *password, unsigned char **der, size_t *len, pc_diag_t *diag);

/* pc_pfx_open parses and decrypts a PKCS#12; outputs are the caller's (chain may be NULL to
 * ignore). PC_ERR_BAD_MESSAGE for a corrupt file, PC_ERR_UNAUTHENTICATED for a wrong password. */
pc_err_t pc_pfx_open(const unsigned char *der, size_t len, const char *password, EVP_PKEY **key,
                     X509 **cert, STACK_OF(X509) * *chain, pc_diag_t *diag);

#endif
