/*
 * envelope.h - CMS EnvelopedData to a device's public key: what makes a PFX openable by the
 * target device only. RSA device keys: key transport with RSA-OAEP (SHA-256); EC device keys:
 * ephemeral-static ECDH (dhSinglePass-stdDH-sha256kdf) with AES-256 key wrap. Content: AES-256-CBC.
 * The recipient is named by subjectKeyIdentifier = SHA-1 of the device's public key bits.
 * Pool threads.
 */
#ifndef PC_ENVELOPE_H
#define PC_ENVELOPE_H

#include <stddef.h>

#include <openssl/evp.h>

#include "pc_err.h"

/* A device public key checked and ready to seal to. */
typedef struct pc_envelope_to pc_envelope_to_t;

/* pc_envelope_to_new checks the device public key given as SubjectPublicKeyInfo DER; *out is
 * the caller's (pc_envelope_to_free). PC_ERR_INVALID_PARAM when spki is not an RSA (>= 2048) or
 * P-256/P-384 public key: check it before a certificate is made for it. */
pc_err_t pc_envelope_to_new(const unsigned char *spki, size_t spki_len, pc_envelope_to_t **out,
                            pc_diag_t *diag);

/* pc_envelope_to_free frees to (NULL allowed). */
void pc_envelope_to_free(pc_envelope_to_t *to);

/* pc_envelope_seal_to encrypts in to the device and returns the CMS ContentInfo DER in *out
 * (caller frees with OPENSSL_free). */
pc_err_t pc_envelope_seal_to(const pc_envelope_to_t *to, const unsigned char *in, size_t in_len,
                             unsigned char **out, size_t *out_len, pc_diag_t *diag);

/* pc_envelope_seal is pc_envelope_to_new + pc_envelope_seal_to, for one envelope. */
pc_err_t pc_envelope_seal(const unsigned char *spki, size_t spki_len, const unsigned char *in,
                          size_t in_len, unsigned char **out, size_t *out_len, pc_diag_t *diag);

/* pc_envelope_open decrypts with the device private key, as a device would; *out is the
 * caller's (OPENSSL_clear_free). PC_ERR_BAD_MESSAGE for a corrupt envelope, PC_ERR_CRYPTO when
 * key does not open it, PC_ERR_NOT_SUPPORTED for RSA key transport other than RSA-OAEP. */
pc_err_t pc_envelope_open(EVP_PKEY *key, const unsigned char *in, size_t in_len,
                          unsigned char **out, size_t *out_len, pc_diag_t *diag);

#endif
