/*
 * keygen.c - new key pairs for issued certificates: RSA 2048/3072/4096 and ECDSA P-256/P-384.
 *
 * Key generation is the most expensive step of a PKCS request, and OpenSSL 3.0's RSA keygen
 * (SP 800-56B, with auxiliary primes) costs about three times what two random primes cost. The
 * fast path therefore draws p and q from OpenSSL's own prime generator, applies the FIPS 186-4
 * B.3.3 checks itself, derives d and the CRT values, assembles the key with EVP_PKEY_fromdata
 * and proves it with a pairwise sign/verify test before handing it out. EC keys come from
 * OpenSSL's EC key generation on groups built once (ec_fast). The provider's keygen stays
 * available for both (PC_KEYGEN_PROVIDER, for FIPS mode).
 * Pool threads, many at once: no mutable state but the EC groups, built once and read-only
 * after; one BN_CTX per call; secrets wiped.
 */
/* EC_KEY_generate_key and friends: see ec_fast. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "keygen.h"
#include "keygen_int.h"

#include <pthread.h>

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

/* Draws of one prime before giving up; a draw fails the checks about once in 65537. */
#define PRIME_ATTEMPTS 64
/* Prime pairs before giving up; a pair fails the pair checks with probability ~2^-100. */
#define PAIR_ATTEMPTS 8
/* FIPS 186-4 B.3.3: |p - q| > 2^(nlen/2 - 100). */
#define PQ_DISTANCE_MARGIN 100
/* Room for a signature by the largest key the pairwise test accepts (8192 bits). */
#define SIG_MAX 1024

/* The numbers of one RSA key; everything but n and e is secret and wiped on free. */
struct rsa_parts {
    BIGNUM *n, *e, *d, *p, *q, *dp, *dq, *qinv;
};

static void rsa_parts_free(struct rsa_parts *rp)
{
    BN_free(rp->n);
    BN_free(rp->e);
    BN_clear_free(rp->d);
    BN_clear_free(rp->p);
    BN_clear_free(rp->q);
    BN_clear_free(rp->dp);
    BN_clear_free(rp->dq);
    BN_clear_free(rp->qinv);
}

/* rsa_parts_init allocates every number and sets e; on failure the caller still frees rp. */
static pc_err_t rsa_parts_init(struct rsa_parts *rp, pc_diag_t *diag)
{
    rp->n = BN_new();
    rp->e = BN_new();
    rp->d = BN_secure_new();
    rp->p = BN_secure_new();
    rp->q = BN_secure_new();
    rp->dp = BN_secure_new();
    rp->dq = BN_secure_new();
    rp->qinv = BN_secure_new();
    if (rp->n == NULL || rp->e == NULL || rp->d == NULL || rp->p == NULL || rp->q == NULL ||
        rp->dp == NULL || rp->dq == NULL || rp->qinv == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "RSA key generation: out of memory for the key");
    if (!BN_set_word(rp->e, PC_KEYGEN_RSA_E))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: cannot set e");
    /* Keep the secret arithmetic (gcd, inverses, divisions) on OpenSSL's constant-time paths. */
    BN_set_flags(rp->d, BN_FLG_CONSTTIME);
    BN_set_flags(rp->p, BN_FLG_CONSTTIME);
    BN_set_flags(rp->q, BN_FLG_CONSTTIME);
    return PC_OK;
}

/* check_factor_size insists on the top two bits of a half-size factor: p >= 3 * 2^(half-2),
 * which exceeds B.3.3's sqrt(2) * 2^(half-1) and makes p*q exactly 2*half bits. */
static pc_err_t check_factor_size(const BIGNUM *p, int half, pc_diag_t *diag)
{
    if (BN_num_bits(p) != half || !BN_is_bit_set(p, half - 2))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "RSA key generation: a prime factor is not a %d-bit number with its top "
                       "two bits set",
                       half);
    return PC_OK;
}

/* check_coprime_to_e requires gcd(e, p - 1) = 1, without which d does not exist. */
static pc_err_t check_coprime_to_e(const BIGNUM *p, const BIGNUM *e, BN_CTX *ctx, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    BN_CTX_start(ctx);
    BIGNUM *pm1 = BN_CTX_get(ctx);
    BIGNUM *g = BN_CTX_get(ctx);
    if (g == NULL || BN_copy(pm1, p) == NULL || !BN_sub_word(pm1, 1) || !BN_gcd(g, pm1, e, ctx)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: gcd(e, p - 1) failed");
        goto out_end_ctx;
    }
    if (!BN_is_one(g))
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "RSA key generation: gcd(e, p - 1) != 1 for a prime factor "
                      "(e = %d divides p - 1)",
                      PC_KEYGEN_RSA_E);
out_end_ctx:
    BN_CTX_end(ctx);
    return err;
}

static pc_err_t check_factor(const BIGNUM *p, int half, const BIGNUM *e, BN_CTX *ctx,
                             pc_diag_t *diag)
{
    pc_err_t err = check_factor_size(p, half, diag);
    if (err == PC_OK)
        err = check_coprime_to_e(p, e, ctx, diag);
    return err;
}

/* check_distance requires p - q > 2^(half - 100), given p > q. */
static pc_err_t check_distance(const BIGNUM *p, const BIGNUM *q, int half, BN_CTX *ctx,
                               pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    BN_CTX_start(ctx);
    BIGNUM *diff = BN_CTX_get(ctx);
    BIGNUM *bound = BN_CTX_get(ctx);
    /* BN_CTX_get hands out zeroed numbers, so setting one bit makes the bound. */
    if (bound == NULL || !BN_sub(diff, p, q) || !BN_set_bit(bound, half - PQ_DISTANCE_MARGIN)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: |p - q| failed");
        goto out_end_ctx;
    }
    if (BN_cmp(diff, bound) <= 0)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "RSA key generation: the prime factors are too close "
                      "(|p - q| must exceed 2^%d)",
                      half - PQ_DISTANCE_MARGIN);
out_end_ctx:
    BN_CTX_end(ctx);
    return err;
}

/* lcm_of_factors sets lcm = lcm(p - 1, q - 1) (Carmichael's lambda(n)). */
static int lcm_of_factors(BIGNUM *lcm, const BIGNUM *p, const BIGNUM *q, BN_CTX *ctx)
{
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *pm1 = BN_CTX_get(ctx);
    BIGNUM *qm1 = BN_CTX_get(ctx);
    BIGNUM *g = BN_CTX_get(ctx);
    BIGNUM *prod = BN_CTX_get(ctx);
    if (prod == NULL || BN_copy(pm1, p) == NULL || BN_copy(qm1, q) == NULL)
        goto out_end_ctx;
    BN_set_flags(pm1, BN_FLG_CONSTTIME);
    BN_set_flags(qm1, BN_FLG_CONSTTIME);
    BN_set_flags(prod, BN_FLG_CONSTTIME);
    ok = BN_sub_word(pm1, 1) && BN_sub_word(qm1, 1) && BN_gcd(g, pm1, qm1, ctx) &&
         BN_mul(prod, pm1, qm1, ctx) && BN_div(lcm, NULL, prod, g, ctx);
out_end_ctx:
    BN_CTX_end(ctx);
    return ok;
}

/* derive_crt sets dP = d mod (p - 1), dQ = d mod (q - 1) and qInv = q^-1 mod p. */
static int derive_crt(struct rsa_parts *rp, BN_CTX *ctx)
{
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *pm1 = BN_CTX_get(ctx);
    BIGNUM *qm1 = BN_CTX_get(ctx);
    if (qm1 == NULL || BN_copy(pm1, rp->p) == NULL || BN_copy(qm1, rp->q) == NULL)
        goto out_end_ctx;
    BN_set_flags(pm1, BN_FLG_CONSTTIME);
    BN_set_flags(qm1, BN_FLG_CONSTTIME);
    ok = BN_sub_word(pm1, 1) && BN_sub_word(qm1, 1) && BN_mod(rp->dp, rp->d, pm1, ctx) &&
         BN_mod(rp->dq, rp->d, qm1, ctx) && BN_mod_inverse(rp->qinv, rp->q, rp->p, ctx) != NULL;
out_end_ctx:
    BN_CTX_end(ctx);
    return ok;
}

/* derive_private computes n, d and the CRT values from p > q, checking the sizes of n and d. */
static pc_err_t derive_private(struct rsa_parts *rp, unsigned bits, BN_CTX *ctx, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    BN_CTX_start(ctx);
    BIGNUM *lcm = BN_CTX_get(ctx);
    if (lcm == NULL || !BN_mul(rp->n, rp->p, rp->q, ctx)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: n = p * q failed");
        goto out_end_ctx;
    }
    if ((unsigned)BN_num_bits(rp->n) != bits) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "RSA key generation: the modulus has %d bits instead of %u",
                      BN_num_bits(rp->n), bits);
        goto out_end_ctx;
    }
    BN_set_flags(lcm, BN_FLG_CONSTTIME);
    if (!lcm_of_factors(lcm, rp->p, rp->q, ctx) || BN_mod_inverse(rp->d, rp->e, lcm, ctx) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: d = e^-1 mod lcm failed");
        goto out_end_ctx;
    }
    /* d is odd (e * d is 1 modulo an even number), so more than bits/2 bits means
     * d > 2^(bits/2), the lower bound of FIPS 186-4 B.3.1. */
    if ((unsigned)BN_num_bits(rp->d) <= bits / 2) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "RSA key generation: the private exponent is too small");
        goto out_end_ctx;
    }
    if (!derive_crt(rp, ctx))
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: CRT values failed");
out_end_ctx:
    BN_CTX_end(ctx);
    return err;
}

/* assemble_key makes an EVP_PKEY from the numbers. OpenSSL 3.0 has no OSSL_PARAM_clear_free:
 * the builder copies numbers flagged BN_FLG_SECURE (our BN_secure_new secrets) into a separate
 * block that OSSL_PARAM_free releases with OPENSSL_secure_clear_free, so the copies are wiped. */
static pc_err_t assemble_key(const struct rsa_parts *rp, EVP_PKEY **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "RSA key generation: out of memory for parameters");
        goto out;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, rp->n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, rp->e) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, rp->d) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, rp->p) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, rp->q) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, rp->dp) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, rp->dq) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, rp->qinv) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: building parameters failed");
        goto out_free_bld;
    }
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, out, EVP_PKEY_KEYPAIR, params) <= 0)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: EVP_PKEY_fromdata failed");
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
out_free_bld:
    OSSL_PARAM_BLD_free(bld);
out:
    return err;
}

/* pairwise_test signs a fixed message with the new private key (RSA: PKCS#1 v1.5, SHA-256) and
 * verifies it with the public key, so that a broken key never leaves this module. */
static pc_err_t pairwise_test(EVP_PKEY *key, pc_diag_t *diag)
{
    static const unsigned char msg[] = "PKCS Connector pairwise consistency test";
    unsigned char sig[SIG_MAX];
    size_t siglen = sizeof(sig);
    pc_err_t err = PC_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "pairwise consistency test: out of memory");
        goto out;
    }
    if (EVP_PKEY_get_size(key) > (int)sizeof(sig) ||
        EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "new key failed its pairwise consistency test: signing failed");
        goto out_free_md;
    }
    if (EVP_MD_CTX_reset(md) != 1 ||
        EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) != 1)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "new key failed its pairwise consistency test: its signature does "
                          "not verify; the key is discarded");
out_free_md:
    EVP_MD_CTX_free(md);
out:
    return err;
}

/* build_key turns rp->p and rp->q (any order) into a checked, tested key in *out. */
static pc_err_t build_key(struct rsa_parts *rp, unsigned bits, BN_CTX *ctx, EVP_PKEY **out,
                          pc_diag_t *diag)
{
    int half = (int)bits / 2;
    EVP_PKEY *key = NULL;
    if (BN_cmp(rp->p, rp->q) < 0)
        BN_swap(rp->p, rp->q); /* p > q, the usual convention for qInv */
    pc_err_t err = check_factor(rp->p, half, rp->e, ctx, diag);
    if (err == PC_OK)
        err = check_factor(rp->q, half, rp->e, ctx, diag);
    if (err == PC_OK)
        err = check_distance(rp->p, rp->q, half, ctx, diag);
    if (err == PC_OK)
        err = derive_private(rp, bits, ctx, diag);
    if (err == PC_OK)
        err = assemble_key(rp, &key, diag);
    if (err == PC_OK)
        err = pairwise_test(key, diag);
    if (err == PC_OK) {
        *out = key;
        key = NULL;
    }
    EVP_PKEY_free(key);
    return err;
}

/* gen_factor draws primes of `half` bits until one passes the per-factor checks. */
static pc_err_t gen_factor(BIGNUM *p, int half, const BIGNUM *e, BN_CTX *ctx, pc_diag_t *diag)
{
    pc_err_t err = PC_ERR_INVALID_PARAM;
    for (int i = 0; i < PRIME_ATTEMPTS && err == PC_ERR_INVALID_PARAM; i++) {
        if (!BN_generate_prime_ex2(p, half, 0, NULL, NULL, NULL, ctx))
            err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                              "RSA key generation: prime generation failed; check the random "
                              "number generator");
        else
            err = check_factor(p, half, e, ctx, diag);
    }
    return err;
}

/* rsa_fast is the fast path: OpenSSL's primes, our checks, a pairwise test. */
static pc_err_t rsa_fast(unsigned bits, EVP_PKEY **out, pc_diag_t *diag)
{
    struct rsa_parts rp = {0};
    pc_err_t err = PC_OK;
    BN_CTX *ctx = BN_CTX_secure_new();
    if (ctx == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "RSA key generation: out of memory");
        goto out;
    }
    err = rsa_parts_init(&rp, diag);
    if (err != PC_OK)
        goto out_free_parts;
    err = PC_ERR_INVALID_PARAM;
    for (int i = 0; i < PAIR_ATTEMPTS && err == PC_ERR_INVALID_PARAM; i++) {
        err = gen_factor(rp.p, (int)bits / 2, rp.e, ctx, diag);
        if (err == PC_OK)
            err = gen_factor(rp.q, (int)bits / 2, rp.e, ctx, diag);
        if (err == PC_OK)
            err = build_key(&rp, bits, ctx, out, diag);
    }
    if (err == PC_ERR_INVALID_PARAM)
        err = pc_fail(diag, PC_ERR_CRYPTO,
                      "RSA-%u key generation: no prime pair passed the checks in %d attempts; "
                      "the random number generator may be faulty",
                      bits, PAIR_ATTEMPTS);
out_free_parts:
    rsa_parts_free(&rp);
    BN_CTX_free(ctx);
out:
    return err;
}

pc_err_t pc_keygen_rsa_from_factors(const BIGNUM *p, const BIGNUM *q, unsigned bits, EVP_PKEY **out,
                                    pc_diag_t *diag)
{
    struct rsa_parts rp = {0};
    pc_err_t err = PC_OK;
    BN_CTX *ctx = NULL;
    if (p == NULL || q == NULL || out == NULL || bits % 2 != 0 ||
        bits < 2 * PQ_DISTANCE_MARGIN + 2 || bits > 8 * SIG_MAX) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "RSA key from factors: bad arguments");
        goto out;
    }
    *out = NULL;
    ctx = BN_CTX_secure_new();
    if (ctx == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "RSA key generation: out of memory");
        goto out;
    }
    err = rsa_parts_init(&rp, diag);
    if (err != PC_OK)
        goto out_free_parts;
    if (BN_copy(rp.p, p) == NULL || BN_copy(rp.q, q) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key generation: copying factors failed");
        goto out_free_parts;
    }
    err = build_key(&rp, bits, ctx, out, diag);
out_free_parts:
    rsa_parts_free(&rp);
    BN_CTX_free(ctx);
out:
    return err;
}

/* rsa_provider asks the provider (default or FIPS) for the key. */
static pc_err_t rsa_provider(unsigned bits, EVP_PKEY **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (pctx == NULL || EVP_PKEY_keygen_init(pctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(pctx, (int)bits) <= 0 || EVP_PKEY_keygen(pctx, out) <= 0)
        err =
            pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA-%u key generation by the provider failed", bits);
    EVP_PKEY_CTX_free(pctx);
    return err;
}

/* The curves' groups, built once for the process and only read after: every key copies its
 * group from them (EC_KEY_set_group), which costs a fraction of building one. */
static EC_GROUP *ec_groups[2]; /* P-256, P-384 */
static pthread_once_t ec_groups_once = PTHREAD_ONCE_INIT;

static void ec_groups_init(void)
{
    ec_groups[0] = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    ec_groups[1] = EC_GROUP_new_by_curve_name(NID_secp384r1);
}

const EC_GROUP *pc_keygen_ec_group(int curve_nid)
{
    if (curve_nid != NID_X9_62_prime256v1 && curve_nid != NID_secp384r1)
        return NULL;
    pthread_once(&ec_groups_once, ec_groups_init);
    return ec_groups[curve_nid == NID_X9_62_prime256v1 ? 0 : 1];
}

EC_KEY *pc_keygen_ec_key(int curve_nid)
{
    const EC_GROUP *group = pc_keygen_ec_group(curve_nid);
    EC_KEY *ec = group != NULL ? EC_KEY_new() : NULL;

    if (ec != NULL && EC_KEY_set_group(ec, group) == 1 && EC_KEY_generate_key(ec) == 1)
        return ec;
    EC_KEY_free(ec);
    return NULL;
}

/*
 * ec_fast makes an EC key with OpenSSL's own EC key generation (the one the provider calls),
 * as a legacy EC_KEY on a group built once. OpenSSL 3.0's provider path builds the group again
 * for every key (EVP_PKEY_Q_keygen), and its keys then cost an encoder look-up each time they
 * are written: into the certificate (X509_set_pubkey), the intent hash (i2d_PUBKEY) and the
 * PKCS#8 of the PFX, together several times the key generation itself (perf). A legacy key is
 * written by its own ASN.1 methods. The provider mode keeps the provider's keygen (FIPS).
 */
static pc_err_t ec_fast(unsigned bits, EVP_PKEY **out, pc_diag_t *diag)
{
    const char *curve = bits == 256 ? "P-256" : "P-384";
    EC_KEY *ec = pc_keygen_ec_key(bits == 256 ? NID_X9_62_prime256v1 : NID_secp384r1);
    EVP_PKEY *key = NULL;

    if (ec == NULL || (key = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_EC_KEY(key, ec) != 1) {
        EC_KEY_free(ec);
        EVP_PKEY_free(key);
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "%s key generation failed", curve);
    }
    *out = key;
    return PC_OK;
}

static pc_err_t ec_generate(unsigned bits, pc_keygen_mode_t mode, EVP_PKEY **out, pc_diag_t *diag)
{
    const char *curve = bits == 256 ? "P-256" : "P-384";
    if (mode == PC_KEYGEN_FAST)
        return ec_fast(bits, out, diag);
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    if (*out == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "%s key generation failed", curve);
    return PC_OK;
}

pc_err_t pc_key_spec_check(const pc_key_spec_t *spec, pc_diag_t *diag)
{
    char name[32];
    if (spec == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no key specification given");
    pc_key_spec_name(spec, name, sizeof(name));
    switch (spec->alg) {
    case PC_KEY_RSA:
        if (spec->bits == 2048 || spec->bits == 3072 || spec->bits == 4096)
            return PC_OK;
        if (spec->bits < 2048)
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "%s is below the minimum of 2048 bits; use 2048, 3072 or 4096", name);
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s is not supported; use 2048, 3072 or 4096",
                       name);
    case PC_KEY_EC:
        if (spec->bits == 256 || spec->bits == 384)
            return PC_OK;
        if (spec->bits < 256)
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "%s is below the minimum of 256 bits; use P-256 or P-384", name);
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s is not supported; use P-256 or P-384", name);
    }
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "key algorithm %d (size %u) is not supported; use RSA (2048, 3072, 4096) or "
                   "EC (P-256, P-384)",
                   (int)spec->alg, spec->bits);
}

pc_err_t pc_key_generate(const pc_key_spec_t *spec, pc_keygen_mode_t mode, EVP_PKEY **out,
                         pc_diag_t *diag)
{
    if (out == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "key generation: no place for the key");
    *out = NULL;
    pc_err_t err = pc_key_spec_check(spec, diag);
    if (err != PC_OK)
        return err;
    if (mode != PC_KEYGEN_FAST && mode != PC_KEYGEN_PROVIDER)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "key generation mode %d is unknown; use fast (0) or provider (1)",
                       (int)mode);
    if (spec->alg == PC_KEY_EC)
        return ec_generate(spec->bits, mode, out, diag);
    if (mode == PC_KEYGEN_PROVIDER)
        return rsa_provider(spec->bits, out, diag);
    return rsa_fast(spec->bits, out, diag);
}

/* ec_spec_of maps the key's named curve to 256 / 384. */
static pc_err_t ec_spec_of(const EVP_PKEY *key, pc_key_spec_t *spec, pc_diag_t *diag)
{
    char group[80];
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1)
        return pc_fail_ssl(diag, PC_ERR_NOT_SUPPORTED,
                           "EC key without a named curve is not supported; use P-256 or P-384");
    int nid = EC_curve_nist2nid(group);
    if (nid == NID_undef)
        nid = OBJ_txt2nid(group);
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1) {
        spec->alg = PC_KEY_EC;
        spec->bits = nid == NID_secp384r1 ? 384 : 256;
        return PC_OK;
    }
    return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                   "EC key on curve %s is not supported; use P-256 or P-384", group);
}

pc_err_t pc_key_spec_of(const EVP_PKEY *key, pc_key_spec_t *spec, pc_diag_t *diag)
{
    if (key == NULL || spec == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "key description: no key given");
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits <= 0)
            return pc_fail_ssl(diag, PC_ERR_CRYPTO, "RSA key without a modulus size");
        spec->alg = PC_KEY_RSA;
        spec->bits = (unsigned)bits;
        return PC_OK;
    }
    if (EVP_PKEY_is_a(key, "EC"))
        return ec_spec_of(key, spec, diag);
    const char *type = EVP_PKEY_get0_type_name(key);
    return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                   "%s keys are not supported; use RSA (2048, 3072, 4096) or EC (P-256, P-384)",
                   type != NULL ? type : "this type of");
}

const char *pc_key_spec_name(const pc_key_spec_t *spec, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return "";
    if (spec == NULL)
        snprintf(buf, len, "(no key)");
    else if (spec->alg == PC_KEY_RSA)
        snprintf(buf, len, "RSA-%u", spec->bits);
    else if (spec->alg == PC_KEY_EC && (spec->bits == 256 || spec->bits == 384))
        snprintf(buf, len, "P-%u", spec->bits);
    else if (spec->alg == PC_KEY_EC)
        snprintf(buf, len, "EC-%u", spec->bits);
    else
        snprintf(buf, len, "alg%d-%u", (int)spec->alg, spec->bits);
    return buf;
}
