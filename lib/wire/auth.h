/*
 * auth.h - upstream request signatures. A SignedRequest carries the exact bytes of a Request,
 * the signer's key id, the algorithm and the signature over those bytes. Workers hold the
 * verification keys by id; unsigned or badly signed requests are refused. Any thread (keys are
 * read-only after pc_auth_new).
 *
 * Algorithms: "ed25519" (raw 64-byte signature), "ecdsa-p256-sha256" (DER signature),
 * "hmac-sha256" (32-byte MAC with a shared secret; compared in constant time).
 */
#ifndef PC_AUTH_H
#define PC_AUTH_H

#include <stddef.h>

#include <openssl/evp.h>

#include "pc_err.h"
#include "pkcs.pb-c.h"

typedef struct pc_auth pc_auth_t;

typedef struct pc_auth_key {
    const char *id;
    const char *algorithm;
    const char *public_key_file; /* PEM public key (ed25519, ecdsa-p256-sha256) */
    const char *secret_file;     /* shared secret, raw bytes (hmac-sha256), at least 32 bytes */
} pc_auth_key_t;

/* pc_auth_new loads every key: PEM public keys, and HMAC secret files, which neither group nor
 * others may read (PC_ERR_INVALID_PARAM saying "chmod 600 FILE" otherwise); errors name the key
 * id and file. */
pc_err_t pc_auth_new(const pc_auth_key_t *keys, size_t count, pc_auth_t **out, pc_diag_t *diag);
void pc_auth_free(pc_auth_t *auth);

/* pc_auth_verify checks sr's signature: PC_ERR_UNAUTHENTICATED for a missing signature, an
 * unknown key id, an algorithm that does not match the key, or a wrong signature. */
pc_err_t pc_auth_verify(const pc_auth_t *auth, const Pkcs__V1__SignedRequest *sr, pc_diag_t *diag);

/* pc_auth_verify_result checks a SignedResult's signature over its result bytes with the
 * result keys auth holds, as pc_auth_verify does for requests. */
pc_err_t pc_auth_verify_result(const pc_auth_t *auth, const Pkcs__V1__SignedResult *sr,
                               pc_diag_t *diag);

typedef struct pc_signer pc_signer_t;

/* pc_signer_new loads a signing key: a PEM private key (ed25519, ecdsa-p256-sha256), encrypted
 * with passphrase (NULL: none given) or unencrypted in a file neither group nor others may read,
 * or a secret file (hmac-sha256; the same rule for its mode, passphrase unused). *out is the
 * caller's (pc_signer_free, which wipes the key). PC_ERR_INVALID_PARAM naming the file for a
 * loose mode ("chmod 600 FILE"), an encrypted key without its passphrase or with a wrong one,
 * or a key unfit for the algorithm; PC_ERR_IO when the file cannot be read. For upstream
 * producers and pkcsctl; any thread (blocking file reads). */
pc_err_t pc_signer_new(const char *key_id, const char *algorithm, const char *key_file,
                       const char *passphrase, pc_signer_t **out, pc_diag_t *diag);
void pc_signer_free(pc_signer_t *signer);

/* pc_signer_sign packs req, signs it and returns the serialized SignedRequest (malloc'd,
 * caller frees). */
pc_err_t pc_signer_sign(const pc_signer_t *signer, const Pkcs__V1__Request *req,
                        unsigned char **out, size_t *out_len, pc_diag_t *diag);

/* pc_signer_seal_result wraps len bytes of a serialized Result into a SignedResult signed by
 * signer (NULL: unsigned, for a cluster without a result key) into *out (malloc'd, caller
 * frees). PC_ERR_INVALID_PARAM for an HMAC key (consumers would hold the secret that forges
 * results), PC_ERR_CRYPTO, PC_ERR_NOMEM. Any thread; tens of microseconds. */
pc_err_t pc_signer_seal_result(const pc_signer_t *signer, const unsigned char *result, size_t len,
                               unsigned char **out, size_t *out_len, pc_diag_t *diag);

/* pc_signer_public_pem writes the PEM public key of signer (not HMAC) into *pem (malloc'd, caller
 * frees): what the coordinators publish for result consumers. PC_ERR_CRYPTO. */
pc_err_t pc_signer_public_pem(const pc_signer_t *signer, char **pem, pc_diag_t *diag);

/* pc_signer_key_id returns the signer's key id (borrowed). */
const char *pc_signer_key_id(const pc_signer_t *signer);

#endif
