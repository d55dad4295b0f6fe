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
 * OPENSSL_clear_free(*der, *len). PC_ERR_INVALID_PARAM when key does not belong to cert. */
pc_err_t pc_pfx_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *friendly_name,
                      const char *password, unsigned char **der, size_t *len, pc_diag_t *diag);

/* pc_pfx_build_encoded is pc_pfx_build for a caller that holds cert's DER already (leaf,
 * leaf_len: what i2d_X509 gives for cert), which it writes as is: the engine encodes the
 * certificate it was issued once for the PKCS#12 and the Result. */
pc_err_t pc_pfx_build_encoded(EVP_PKEY *key, X509 *cert, const unsigned char *leaf, size_t leaf_len,
                              STACK_OF(X509) * chain, const char *friendly_name,
                              const char *password, unsigned char **der, size_t *len,
                              pc_diag_t *diag);

/*
 * Bounds on the work a PKCS#12 from outside may ask for. The file itself chooses how many
 * iterations its MAC and each encrypted part's key derivation take (2,000,000 PBKDF2 rounds cost
 * seconds of a thread, and the format allows far more), and how many parts it has. Each count
 * is read from the ASN.1 structures and refused before any key is derived with it: the MAC's
 * and every visible part's at once, the parts inside an encrypted part as soon as it is
 * decrypted (with a count already checked), before their own derivation.
 */
typedef struct pc_pfx_limits {
    unsigned max_iterations; /* of the MAC, and of each PBE (PBKDF2 or PKCS#12 KDF) */
    size_t max_bytes;        /* of the DER */
    unsigned max_bags;       /* SafeBags, nested ones and the ContentInfos holding them */
    unsigned max_certs;      /* certificate bags */
    const char *setting;     /* names the settings in messages, e.g. "worker.pfx_" (may be NULL) */
} pc_pfx_limits_t;

/* The bounds pc_pfx_open applies: 50x the iterations Windows (2000) and OpenSSL 3 (2048) write
 * and 10x Java's (10000); room for a key, its certificate and a long chain. */
#define PC_PFX_MAX_ITERATIONS_DEFAULT 100000u
#define PC_PFX_MAX_BYTES_DEFAULT (64u * 1024)
#define PC_PFX_MAX_BAGS_DEFAULT 32u
#define PC_PFX_MAX_CERTS_DEFAULT 16u

/* pc_pfx_open is pc_pfx_open_limited with the default bounds. */
pc_err_t pc_pfx_open(const unsigned char *der, size_t len, const char *password, EVP_PKEY **key,
                     X509 **cert, STACK_OF(X509) * *chain, pc_diag_t *diag);

/* pc_pfx_open_limited parses, checks against limits (NULL: the defaults) and decrypts a
 * PKCS#12; outputs are the caller's (chain may be NULL to ignore). PC_ERR_TOO_LARGE over
 * max_bytes; PC_ERR_INVALID_PARAM naming the count and the limit for too many iterations, bags
 * or certificates, and for a key derivation other than PBKDF2 or the PKCS#12 KDF (scrypt's
 * memory cost is not bounded here); PC_ERR_BAD_MESSAGE for a corrupt file;
 * PC_ERR_UNAUTHENTICATED for a wrong password. Pool threads; thread-safe. */
pc_err_t pc_pfx_open_limited(const unsigned char *der, size_t len, const char *password,
                             const pc_pfx_limits_t *limits, EVP_PKEY **key, X509 **cert,
                             STACK_OF(X509) * *chain, pc_diag_t *diag);

#endif
