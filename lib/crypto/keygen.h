/*
 * keygen.h - key pairs for issued certificates: RSA 2048/3072/4096, ECDSA P-256/P-384.
 *
 * RSA key generation dominates the cost of the whole system, so RSA has a fast path: primes from
 * OpenSSL's own prime generator, the standard checks, the key assembled with EVP_PKEY_fromdata
 * and a pairwise consistency test. EC keys in the fast mode are made on the curve's group built
 * once per process (keygen.c: OpenSSL 3.0 rebuilds it for every EVP_PKEY_Q_keygen). The
 * provider's own keygen stays available for both (FIPS mode).
 *
 * Threads: every function runs on any thread, several at once (the worker's pool threads, the
 * benchmark's), and blocks. The groups are built by whichever call comes first, under
 * pthread_once, and only read after; nothing else is shared. Keys are OpenSSL's, which wipes
 * their private parts when they are freed.
 */
#ifndef PC_KEYGEN_H
#define PC_KEYGEN_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "pc_err.h"

typedef enum pc_key_alg {
    PC_KEY_RSA = 1,
    PC_KEY_EC = 2,
} pc_key_alg_t;

typedef struct pc_key_spec {
    pc_key_alg_t alg;
    unsigned bits; /* RSA: 2048, 3072, 4096; EC: 256 (P-256), 384 (P-384) */
} pc_key_spec_t;

typedef enum pc_keygen_mode {
    PC_KEYGEN_FAST = 0,     /* our RSA path; EC keys as OpenSSL's EC_KEY (see keygen.c) */
    PC_KEYGEN_PROVIDER = 1, /* EVP_PKEY_keygen of the default (or FIPS) provider */
} pc_keygen_mode_t;

/* pc_key_spec_check fails with PC_ERR_INVALID_PARAM for an unsupported algorithm or a size
 * other than the ones above (a weak key says so: "RSA-1024 is below the minimum of 2048"). */
pc_err_t pc_key_spec_check(const pc_key_spec_t *spec, pc_diag_t *diag);

/* pc_key_generate makes a new key pair for spec; *out is the caller's (EVP_PKEY_free). */
pc_err_t pc_key_generate(const pc_key_spec_t *spec, pc_keygen_mode_t mode, EVP_PKEY **out,
                         pc_diag_t *diag);

/* pc_key_spec_of describes an existing key (for policy checks); PC_ERR_NOT_SUPPORTED for other
 * key types. */
pc_err_t pc_key_spec_of(const EVP_PKEY *key, pc_key_spec_t *spec, pc_diag_t *diag);

/* pc_key_spec_name writes "RSA-2048" / "P-256" into buf. */
const char *pc_key_spec_name(const pc_key_spec_t *spec, char *buf, size_t len);

#endif
