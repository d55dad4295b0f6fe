/*
 * keygen_int.h - keygen internals shared with the unit tests (not part of the public contract).
 */
#ifndef PC_KEYGEN_INT_H
#define PC_KEYGEN_INT_H

/* White-box tests of the fast RSA path define PC_INSIDE_CRYPTO too (see tests/CMakeLists.txt). */
#ifndef PC_INSIDE_CRYPTO
#error "keygen_int.h is private to lib/crypto: use keygen.h"
#endif

#include <openssl/bn.h>
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

#endif
