/*
 * keygen_int.h - keygen internals shared with the rest of lib/crypto (the envelope's EC keys) and
 * the unit tests (not part of the public contract).
 */
#ifndef PC_KEYGEN_INT_H
#define PC_KEYGEN_INT_H

/* White-box tests of the fast RSA path define PC_INSIDE_CRYPTO too (see tests/CMakeLists.txt). */
#ifndef PC_INSIDE_CRYPTO
#error "keygen_int.h is private to lib/crypto: use keygen.h"
#endif

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "keygen.h"

/* The public exponent of every RSA key we make. */
#define PC_KEYGEN_RSA_E 65537

/* pc_keygen_rsa_from_factors builds an RSA key of exactly `bits` bits with e = 65537 from the
 * primes p and q (borrowed; either order), exactly as the fast path does: it applies the checks
 * (top two bits of each factor set, gcd(e, p-1) = gcd(e, q-1) = 1, |p - q| > 2^(bits/2 - 100),
 * n of `bits` bits, d > 2^(bits/2)), derives d and the CRT values, assembles the key and runs
 * the pairwise sign/verify test. It does not test p and q for primality: the generator
 * guarantees it, and the pairwise test catches a composite factor. *out is the caller's.
 * Fails with PC_ERR_INVALID_PARAM when the factors fail a check (the generator then draws new
 * primes), PC_ERR_CRYPTO when the pairwise test or OpenSSL fails, PC_ERR_NOMEM. Pool thread. */
pc_err_t pc_keygen_rsa_from_factors(const BIGNUM *p, const BIGNUM *q, unsigned bits, EVP_PKEY **out,
                                    pc_diag_t *diag);

/* pc_keygen_ec_group returns the group of curve_nid (NID_X9_62_prime256v1 or NID_secp384r1),
 * built once for the process and only read after (copy it with EC_KEY_set_group), or NULL for
 * another curve or when it could not be built. Any thread. */
const EC_GROUP *pc_keygen_ec_group(int curve_nid);

/* pc_keygen_ec_key makes a key pair on curve_nid's group (pc_keygen_ec_group) as a legacy
 * EC_KEY: the fast mode's EC keys and the envelope's ephemeral keys. The caller frees it
 * (EC_KEY_free wipes the private part); NULL when the curve is not P-256/P-384 or OpenSSL
 * fails. Any thread. */
EC_KEY *pc_keygen_ec_key(int curve_nid);

#endif
