/*
 * test_keygen.c - unit tests for keygen.c: are the keys correct, as a user would check them?
 *
 * Every generated key (fast path and provider, RSA 2048/3072/4096, P-256, P-384) must pass
 * OpenSSL's own key checks, have the asked size, sign/verify (and, for RSA, OAEP
 * encrypt/decrypt), and be accepted by the openssl command-line tool. The fast path's checks are
 * driven one by one through pc_keygen_rsa_from_factors with primes built to fail them, and a
 * deliberately corrupted key proves that the checks used here can fail. Main thread, plus a few
 * threads in the concurrency test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keygen.h"
#include "keygen_int.h"

struct key_case {
    pc_key_alg_t alg;
    unsigned bits;
    pc_keygen_mode_t mode;
};

static const unsigned char msg[] = "CN=device-42, issued by PKCS Connector";

static EVP_PKEY *generate(pc_key_alg_t alg, unsigned bits, pc_keygen_mode_t mode)
{
    pc_key_spec_t spec = {alg, bits};
    pc_diag_t diag = {{0}};
    EVP_PKEY *key = NULL;
    pc_err_t err = pc_key_generate(&spec, mode, &key, &diag);
    if (err != PC_OK)
        print_error("pc_key_generate: %s: %s\n", pc_strerror(err), diag.msg);
    assert_int_equal(err, PC_OK);
    assert_non_null(key);
    return key;
}

static BIGNUM *get_bn(const EVP_PKEY *key, const char *name)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(key, name, &bn), 1);
    return bn;
}

/* Returns 1 when OpenSSL's full key check (private, public, pairwise) passes. */
static int evp_check(EVP_PKEY *key)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    assert_non_null(pctx);
    int ok = EVP_PKEY_check(pctx);
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static void assert_openssl_checks(EVP_PKEY *key)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_check(pctx), 1);
    assert_int_equal(EVP_PKEY_public_check(pctx), 1);
    assert_int_equal(EVP_PKEY_private_check(pctx), 1);
    assert_int_equal(EVP_PKEY_pairwise_check(pctx), 1);
    assert_int_equal(EVP_PKEY_param_check(pctx), 1);
    EVP_PKEY_CTX_free(pctx);
}

/* Signs msg (RSA-PSS for RSA, ECDSA for EC), verifies it, and checks that a changed message
 * or signature does not verify. */
static void assert_sign_verify(EVP_PKEY *key)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    unsigned char other[sizeof(msg)];
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, key, NULL), 1);
    if (EVP_PKEY_is_a(key, "RSA"))
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)), 1);

    for (int round = 0; round < 3; round++) {
        memcpy(other, msg, sizeof(msg));
        if (round == 1)
            other[3] ^= 0x01;
        if (round == 2)
            sig[siglen / 2] ^= 0x80;
        assert_int_equal(EVP_MD_CTX_reset(md), 1);
        pctx = NULL;
        assert_int_equal(EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, key, NULL), 1);
        if (EVP_PKEY_is_a(key, "RSA"))
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        int ok = EVP_DigestVerify(md, sig, siglen, other, sizeof(other));
        assert_int_equal(ok == 1, round == 0);
    }
    EVP_MD_CTX_free(md);
}

static void set_oaep(EVP_PKEY_CTX *pctx)
{
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()), 1);
}

/* RSA-OAEP (SHA-256) encrypts with the public key and decrypts back with the private one. */
static void assert_oaep_round_trip(EVP_PKEY *key)
{
    static const unsigned char secret[32] = "a 256-bit session key (example)";
    unsigned char ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_encrypt_init(pctx), 1);
    set_oaep(pctx);
    assert_int_equal(EVP_PKEY_encrypt(pctx, ct, &ctlen, secret, sizeof(secret)), 1);
    assert_int_equal(ctlen, (size_t)EVP_PKEY_get_size(key));
    assert_int_equal(EVP_PKEY_decrypt_init(pctx), 1);
    set_oaep(pctx);
    assert_int_equal(EVP_PKEY_decrypt(pctx, pt, &ptlen, ct, ctlen), 1);
    assert_int_equal(ptlen, sizeof(secret));
    assert_memory_equal(pt, secret, sizeof(secret));
    EVP_PKEY_CTX_free(pctx);
}

/* The line each `openssl SUBCMD -check` prints for a good key. `openssl rsa -check` exits 0
 * even for a broken key ("RSA key not ok"), so the exit status alone proves nothing. */
static const char *cli_ok_line(const char *subcmd)
{
    if (strcmp(subcmd, "rsa") == 0)
        return "RSA key ok";
    if (strcmp(subcmd, "ec") == 0)
        return "EC Key valid.";
    return "Key is valid";
}

/* Writes key as PEM to a temp file and tells whether `openssl SUBCMD -in FILE -check -noout`
 * accepts it: exit status 0 and its success line in the output. */
static bool openssl_cli_accepts(EVP_PKEY *key, const char *subcmd)
{
    char path[] = "/tmp/test_keygen_XXXXXX";
    char cmd[256], line[512];
    bool ok_line = false;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    int n = snprintf(cmd, sizeof(cmd), "openssl %s -in %s -check -noout 2>&1", subcmd, path);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    FILE *out = popen(cmd, "r");
    assert_non_null(out);
    while (fgets(line, sizeof(line), out) != NULL)
        if (strncmp(line, cli_ok_line(subcmd), strlen(cli_ok_line(subcmd))) == 0)
            ok_line = true;
    int status = pclose(out);
    unlink(path);
    assert_true(status != -1);
    return ok_line && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void assert_cli_accepts(EVP_PKEY *key)
{
    assert_true(openssl_cli_accepts(key, "pkey"));
    assert_true(openssl_cli_accepts(key, EVP_PKEY_is_a(key, "RSA") ? "rsa" : "ec"));
}

/* The properties of a sound RSA key that OpenSSL's RSA check does not cover (FIPS 186-4
 * B.3.1/B.3.3): e = 65537, factors of exactly half size and each at least sqrt(2) *
 * 2^(bits/2 - 1), |p - q| > 2^(bits/2 - 100), d > 2^(bits/2). */
static void assert_rsa_structure(EVP_PKEY *key, unsigned bits)
{
    int half = (int)bits / 2;
    BIGNUM *e = get_bn(key, OSSL_PKEY_PARAM_RSA_E);
    BIGNUM *n = get_bn(key, OSSL_PKEY_PARAM_RSA_N);
    BIGNUM *d = get_bn(key, OSSL_PKEY_PARAM_RSA_D);
    BIGNUM *p = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR1);
    BIGNUM *q = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR2);
    BIGNUM *diff = BN_new(), *sq = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    assert_true(diff != NULL && sq != NULL && ctx != NULL);
    assert_true(BN_is_word(e, 65537));
    assert_int_equal(BN_num_bits(n), (int)bits);
    assert_int_equal(BN_num_bits(p), half);
    assert_int_equal(BN_num_bits(q), half);
    /* p >= sqrt(2) * 2^(half-1)  <=>  p^2 >= 2^(2*half-1)  <=>  p^2 has 2*half bits */
    assert_int_equal(BN_sqr(sq, p, ctx), 1);
    assert_int_equal(BN_num_bits(sq), 2 * half);
    assert_int_equal(BN_sqr(sq, q, ctx), 1);
    assert_int_equal(BN_num_bits(sq), 2 * half);
    assert_int_equal(BN_sub(diff, p, q), 1);
    BN_set_negative(diff, 0);
    assert_true(BN_num_bits(diff) > half - 100);
    assert_true(BN_num_bits(d) > half);
    BN_CTX_free(ctx);
    BN_free(sq);
    BN_free(diff);
    BN_clear_free(q);
    BN_clear_free(p);
    BN_clear_free(d);
    BN_free(n);
    BN_free(e);
}

/* The fast path's own promises: both factors have their top two bits set (so n has exactly
 * `bits` bits) and p > q. */
static void assert_fast_path_factors(EVP_PKEY *key, unsigned bits)
{
    int half = (int)bits / 2;
    BIGNUM *p = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR1);
    BIGNUM *q = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR2);
    assert_true(BN_is_bit_set(p, half - 2) && BN_is_bit_set(q, half - 2));
    assert_true(BN_cmp(p, q) > 0);
    BN_clear_free(q);
    BN_clear_free(p);
}

/* assert_named_curve_spki checks that key is written as certificates carry it: the curve by
 * its name (an OID, not explicit parameters) and the point uncompressed. */
static void assert_named_curve_spki(EVP_PKEY *key, unsigned bits)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    const unsigned char *p = der;
    X509_PUBKEY *pub = len > 0 ? d2i_X509_PUBKEY(NULL, &p, len) : NULL;
    const unsigned char *point = NULL;
    int point_len = 0, ptype = 0;
    const void *pval = NULL;
    X509_ALGOR *alg = NULL;

    assert_non_null(pub);
    assert_int_equal(X509_PUBKEY_get0_param(NULL, &point, &point_len, &alg, pub), 1);
    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    assert_int_equal(ptype, V_ASN1_OBJECT);
    assert_int_equal(OBJ_obj2nid(pval), bits == 256 ? NID_X9_62_prime256v1 : NID_secp384r1);
    assert_int_equal(point_len, 1 + 2 * (int)(bits / 8));
    assert_int_equal(point[0], 0x04);
    X509_PUBKEY_free(pub);
    OPENSSL_free(der);
}

static void test_generated_key(void **state)
{
    const struct key_case *kc = *state;
    char name[32];
    EVP_PKEY *key = generate(kc->alg, kc->bits, kc->mode);
    pc_key_spec_t spec = {0, 0};
    pc_diag_t diag = {{0}};

    assert_int_equal(EVP_PKEY_get_bits(key), (int)kc->bits);
    assert_int_equal(pc_key_spec_of(key, &spec, &diag), PC_OK);
    assert_int_equal(spec.alg, kc->alg);
    assert_int_equal(spec.bits, kc->bits);
    assert_true(EVP_PKEY_is_a(key, kc->alg == PC_KEY_RSA ? "RSA" : "EC"));
    if (kc->alg == PC_KEY_EC) {
        assert_int_equal(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                                        sizeof(name), NULL),
                         1);
        assert_string_equal(name, kc->bits == 256 ? "prime256v1" : "secp384r1");
        assert_named_curve_spki(key, kc->bits);
    }
    assert_openssl_checks(key);
    assert_sign_verify(key);
    if (kc->alg == PC_KEY_RSA) {
        assert_rsa_structure(key, kc->bits);
        if (kc->mode == PC_KEYGEN_FAST)
            assert_fast_path_factors(key, kc->bits);
        assert_oaep_round_trip(key);
    }
    assert_cli_accepts(key);
    EVP_PKEY_free(key);
}

static void test_spec_check_accepts_supported(void **state)
{
    static const pc_key_spec_t good[] = {
        {PC_KEY_RSA, 2048}, {PC_KEY_RSA, 3072}, {PC_KEY_RSA, 4096},
        {PC_KEY_EC, 256},   {PC_KEY_EC, 384},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        pc_diag_t diag = {{0}};
        assert_int_equal(pc_key_spec_check(&good[i], &diag), PC_OK);
        assert_string_equal(diag.msg, "");
    }
}

static const struct bad_spec {
    pc_key_spec_t spec;
    const char *names;  /* the message must name the key */
    const char *advice; /* ... and say what is wrong */
} bad_specs[] = {
    {{PC_KEY_RSA, 1024}, "RSA-1024", "below the minimum of 2048 bits; use 2048, 3072 or 4096"},
    {{PC_KEY_RSA, 2047}, "RSA-2047", "below the minimum of 2048"},
    {{PC_KEY_RSA, 2500}, "RSA-2500", "is not supported; use 2048, 3072 or 4096"},
    {{PC_KEY_RSA, 8192}, "RSA-8192", "is not supported"},
    {{PC_KEY_EC, 521}, "EC-521", "is not supported; use P-256 or P-384"},
    {{PC_KEY_EC, 224}, "EC-224", "below the minimum of 256"},
    {{(pc_key_alg_t)0, 2048}, "algorithm 0 (size 2048)", "is not supported"},
    {{(pc_key_alg_t)3, 256}, "algorithm 3 (size 256)", "is not supported"},
};

static void assert_bad_spec_message(const struct bad_spec *bs, const pc_diag_t *diag)
{
    if (strstr(diag->msg, bs->names) == NULL || strstr(diag->msg, bs->advice) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", diag->msg, bs->names, bs->advice);
}

static void test_spec_check_rejects_bad_specs(void **state)
{
    for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
        pc_diag_t diag = {{0}};
        assert_int_equal(pc_key_spec_check(&bad_specs[i].spec, &diag), PC_ERR_INVALID_PARAM);
        assert_bad_spec_message(&bad_specs[i], &diag);
    }
    assert_int_equal(pc_key_spec_check(NULL, NULL), PC_ERR_INVALID_PARAM);
}

static void test_generate_rejects_bad_specs(void **state)
{
    for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
        for (int mode = PC_KEYGEN_FAST; mode <= PC_KEYGEN_PROVIDER; mode++) {
            pc_diag_t diag = {{0}};
            EVP_PKEY *key = NULL;
            assert_int_equal(pc_key_generate(&bad_specs[i].spec, mode, &key, &diag),
                             PC_ERR_INVALID_PARAM);
            assert_null(key);
            assert_bad_spec_message(&bad_specs[i], &diag);
        }
    }
    pc_key_spec_t good = {PC_KEY_EC, 256};
    pc_diag_t diag = {{0}};
    EVP_PKEY *key = NULL;
    assert_int_equal(pc_key_generate(&good, (pc_keygen_mode_t)7, &key, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_null(key);
    assert_non_null(strstr(diag.msg, "mode 7"));
    assert_int_equal(pc_key_generate(&good, PC_KEYGEN_FAST, NULL, NULL), PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_key_generate(NULL, PC_KEYGEN_FAST, &key, NULL), PC_ERR_INVALID_PARAM);
    assert_null(key);
}

static void test_spec_name(void **state)
{
    char buf[32];
    char small[4];
    pc_key_spec_t rsa = {PC_KEY_RSA, 2048}, p256 = {PC_KEY_EC, 256}, p384 = {PC_KEY_EC, 384};
    pc_key_spec_t ec521 = {PC_KEY_EC, 521};
    assert_string_equal(pc_key_spec_name(&rsa, buf, sizeof(buf)), "RSA-2048");
    assert_string_equal(pc_key_spec_name(&p256, buf, sizeof(buf)), "P-256");
    assert_string_equal(pc_key_spec_name(&p384, buf, sizeof(buf)), "P-384");
    assert_string_equal(pc_key_spec_name(&ec521, buf, sizeof(buf)), "EC-521");
    assert_ptr_equal(pc_key_spec_name(&rsa, buf, sizeof(buf)), buf);
    /* truncated, never overflowed */
    assert_string_equal(pc_key_spec_name(&rsa, small, sizeof(small)), "RSA");
    assert_string_equal(pc_key_spec_name(&rsa, NULL, 0), "");
}

static void test_spec_of_other_keys(void **state)
{
    pc_key_spec_t spec = {0, 0};
    pc_diag_t diag = {{0}};

    /* A weak key is described as it is; rejecting it is the policy's job. */
    EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
    assert_non_null(rsa1024);
    assert_int_equal(pc_key_spec_of(rsa1024, &spec, &diag), PC_OK);
    assert_int_equal(spec.alg, PC_KEY_RSA);
    assert_int_equal(spec.bits, 1024);
    assert_int_equal(pc_key_spec_check(&spec, NULL), PC_ERR_INVALID_PARAM);
    EVP_PKEY_free(rsa1024);

    EVP_PKEY *p521 = EVP_EC_gen("P-521");
    assert_non_null(p521);
    assert_int_equal(pc_key_spec_of(p521, &spec, &diag), PC_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(diag.msg, "secp521r1"));
    EVP_PKEY_free(p521);

    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_int_equal(pc_key_spec_of(ed, &spec, &diag), PC_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(diag.msg, "ED25519"));
    EVP_PKEY_free(ed);

    assert_int_equal(pc_key_spec_of(NULL, &spec, &diag), PC_ERR_INVALID_PARAM);
}

#define MANY_KEYS 20

/* Fast-path keys must never repeat or share a prime (the classic RSA keygen failure). */
static void test_fast_keys_distinct(void **state)
{
    BIGNUM *n[MANY_KEYS];
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *g = BN_new();
    assert_non_null(ctx);
    assert_non_null(g);
    for (int i = 0; i < MANY_KEYS; i++) {
        EVP_PKEY *key = generate(PC_KEY_RSA, 2048, PC_KEYGEN_FAST);
        assert_rsa_structure(key, 2048);
        assert_fast_path_factors(key, 2048);
        assert_int_equal(evp_check(key), 1);
        n[i] = get_bn(key, OSSL_PKEY_PARAM_RSA_N);
        EVP_PKEY_free(key);
    }
    for (int i = 0; i < MANY_KEYS; i++)
        for (int j = i + 1; j < MANY_KEYS; j++) {
            assert_int_not_equal(BN_cmp(n[i], n[j]), 0);
            assert_int_equal(BN_gcd(g, n[i], n[j], ctx), 1);
            assert_true(BN_is_one(g));
        }
    for (int i = 0; i < MANY_KEYS; i++)
        BN_free(n[i]);
    BN_free(g);
    BN_CTX_free(ctx);
}

#define THREADS 4
#define KEYS_PER_THREAD 3

struct worker {
    pthread_t tid;
    BIGNUM *n[KEYS_PER_THREAD];
    int failures;
};

/* Runs on its own thread: generates keys and counts those that fail (cmocka asserts are not
 * thread-safe, so the main thread asserts on the count). */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < KEYS_PER_THREAD; i++) {
        pc_key_spec_t spec = {PC_KEY_RSA, 2048};
        pc_key_spec_t ec = {PC_KEY_EC, 256};
        EVP_PKEY *key = NULL, *eckey = NULL;
        if (pc_key_generate(&spec, PC_KEYGEN_FAST, &key, NULL) != PC_OK || evp_check(key) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &w->n[i]) != 1)
            w->failures++;
        if (pc_key_generate(&ec, PC_KEYGEN_FAST, &eckey, NULL) != PC_OK || evp_check(eckey) != 1)
            w->failures++;
        EVP_PKEY_free(eckey);
        EVP_PKEY_free(key);
    }
    return NULL;
}

static void test_concurrent_generation(void **state)
{
    struct worker w[THREADS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&w[i].tid, NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        for (int k = 0; k < KEYS_PER_THREAD; k++) {
            assert_non_null(w[i].n[k]);
            for (int j = 0; j < THREADS; j++)
                for (int l = 0; l < KEYS_PER_THREAD; l++)
                    if (i != j || k != l)
                        assert_int_not_equal(BN_cmp(w[i].n[k], w[j].n[l]), 0);
        }
    }
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < KEYS_PER_THREAD; k++)
            BN_free(w[i].n[k]);
}

/* A prime of `bits` bits with its top two bits set, as the fast path draws them. */
static BIGNUM *good_prime(int bits, BN_CTX *ctx)
{
    BIGNUM *p = BN_new();
    assert_non_null(p);
    do {
        assert_int_equal(BN_generate_prime_ex2(p, bits, 0, NULL, NULL, NULL, ctx), 1);
    } while (BN_is_bit_set(p, bits - 2) == 0 || BN_mod_word(p, 65537) == 1);
    return p;
}

/* The next prime after start (exclusive). */
static BIGNUM *next_prime(const BIGNUM *start, BN_CTX *ctx)
{
    BIGNUM *p = BN_dup(start);
    assert_non_null(p);
    if (!BN_is_odd(p))
        assert_int_equal(BN_sub_word(p, 1), 1);
    do {
        assert_int_equal(BN_add_word(p, 2), 1);
    } while (BN_check_prime(p, ctx, NULL) != 1);
    return p;
}

static pc_err_t from_factors(const BIGNUM *p, const BIGNUM *q, unsigned bits, EVP_PKEY **key,
                             pc_diag_t *diag)
{
    memset(diag, 0, sizeof(*diag));
    return pc_keygen_rsa_from_factors(p, q, bits, key, diag);
}

/* No message may carry key material: look for the first 16 hex digits of a factor. */
static void assert_no_factor_in(const pc_diag_t *diag, const BIGNUM *p)
{
    char *hex = BN_bn2hex(p);
    assert_non_null(hex);
    hex[16] = '\0';
    assert_null(strstr(diag->msg, hex));
    OPENSSL_free(hex);
}

static void test_from_factors_builds_given_key(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    assert_non_null(ctx);
    BIGNUM *p = good_prime(1024, ctx), *q = good_prime(1024, ctx);
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    /* the smaller factor first: the key must still come out with p > q */
    if (BN_cmp(p, q) > 0)
        BN_swap(p, q);
    assert_int_equal(from_factors(p, q, 2048, &key, &diag), PC_OK);
    assert_non_null(key);
    assert_openssl_checks(key);
    assert_rsa_structure(key, 2048);
    BIGNUM *kp = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR1);
    BIGNUM *kq = get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR2);
    assert_int_equal(BN_cmp(kp, q), 0);
    assert_int_equal(BN_cmp(kq, p), 0);
    BN_free(kq);
    BN_free(kp);
    EVP_PKEY_free(key);
    BN_free(q);
    BN_free(p);
    BN_CTX_free(ctx);
}

static void test_from_factors_rejects_close_primes(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    assert_non_null(ctx);
    BIGNUM *p = good_prime(1024, ctx);
    BIGNUM *q = next_prime(p, ctx);
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    assert_true(BN_is_bit_set(q, 1022) && BN_num_bits(q) == 1024);
    assert_int_equal(from_factors(p, q, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_null(key);
    assert_non_null(strstr(diag.msg, "too close"));
    assert_no_factor_in(&diag, p);
    assert_int_equal(from_factors(q, p, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_int_equal(from_factors(p, p, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_null(key);
    BN_free(q);
    BN_free(p);
    BN_CTX_free(ctx);
}

static void test_from_factors_rejects_e_dividing_p_minus_1(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *add = BN_new(), *rem = BN_new(), *p = BN_new();
    assert_non_null(ctx);
    assert_true(add != NULL && rem != NULL && p != NULL);
    assert_int_equal(BN_set_word(add, 2 * 65537), 1);
    assert_int_equal(BN_set_word(rem, 1), 1);
    do { /* p = 1 mod 2*65537, i.e. 65537 divides p - 1 */
        assert_int_equal(BN_generate_prime_ex2(p, 1024, 0, add, rem, NULL, ctx), 1);
    } while (!BN_is_bit_set(p, 1022));
    assert_int_equal(BN_mod_word(p, 65537), 1);
    BIGNUM *q = good_prime(1024, ctx);
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    assert_int_equal(from_factors(p, q, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_null(key);
    assert_non_null(strstr(diag.msg, "gcd(e, p - 1) != 1"));
    assert_int_equal(from_factors(q, p, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "gcd(e, p - 1) != 1"));
    assert_null(key);
    BN_free(q);
    BN_free(p);
    BN_free(rem);
    BN_free(add);
    BN_CTX_free(ctx);
}

static void test_from_factors_rejects_wrong_sizes(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    assert_non_null(ctx);
    BIGNUM *p = good_prime(1024, ctx), *q = good_prime(1024, ctx);
    BIGNUM *low = BN_new();
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    assert_non_null(low);

    /* factors for RSA-2048 cannot make an RSA-3072 key */
    assert_int_equal(from_factors(p, q, 3072, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "1536-bit"));
    assert_null(key);

    /* a 1024-bit prime below 3 * 2^1022 (second bit clear) is too small for B.3.3 */
    assert_int_equal(BN_rand(low, 1024, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
    assert_int_equal(BN_clear_bit(low, 1022), 1);
    BIGNUM *lowp = next_prime(low, ctx);
    assert_int_equal(BN_num_bits(lowp), 1024);
    assert_false(BN_is_bit_set(lowp, 1022));
    assert_int_equal(from_factors(lowp, q, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "top two bits"));
    assert_null(key);

    BN_free(lowp);
    BN_free(low);
    BN_free(q);
    BN_free(p);
    BN_CTX_free(ctx);
}

/* d > 2^(bits/2) never fails for random primes, so build factors that make it fail: with
 * p = 8R + 1 and q = 10R + 1, lcm(p - 1, q - 1) = 40R is barely above 2^1024 and about one R in
 * four gives d <= 2^1024. (p and q need not be prime: the d check comes before the pairwise test,
 * and every earlier check passes by construction.) */
static void test_from_factors_rejects_small_d(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *r = BN_new(), *p = BN_new(), *q = BN_new(), *lcm = BN_new(), *e = BN_new();
    BIGNUM *d = BN_new();
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    assert_non_null(ctx);
    assert_true(r && p && q && lcm && e && d);
    assert_int_equal(BN_set_word(e, 65537), 1);
    for (int tries = 0;; tries++) {
        assert_true(tries < 1000);
        /* R in [0.75, 0.766) * 2^1021: p, q then have 1024 bits with the top two set */
        assert_int_equal(BN_rand(r, 1015, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), 1);
        assert_int_equal(BN_set_bit(r, 1020) && BN_set_bit(r, 1019), 1);
        assert_int_equal(BN_mul_word(BN_copy(p, r), 8) && BN_add_word(p, 1), 1);
        assert_int_equal(BN_mul_word(BN_copy(q, r), 10) && BN_add_word(q, 1), 1);
        assert_int_equal(BN_mul_word(BN_copy(lcm, r), 40), 1);
        if (BN_mod_inverse(d, e, lcm, ctx) != NULL && BN_num_bits(d) <= 1024)
            break;
    }
    assert_true(BN_is_bit_set(p, 1022) && BN_is_bit_set(q, 1022) && BN_num_bits(q) == 1024);
    assert_int_equal(from_factors(p, q, 2048, &key, &diag), PC_ERR_INVALID_PARAM);
    assert_null(key);
    assert_non_null(strstr(diag.msg, "private exponent is too small"));
    BN_free(d);
    BN_free(e);
    BN_free(lcm);
    BN_free(q);
    BN_free(p);
    BN_free(r);
    BN_CTX_free(ctx);
}

/* A composite "prime" passes every cheap check; only the pairwise test can catch it. */
static void test_pairwise_test_catches_composite_factor(void **state)
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *c = BN_new();
    assert_non_null(ctx);
    assert_non_null(c);
    for (;;) {
        BIGNUM *a = good_prime(512, ctx), *b = good_prime(512, ctx);
        assert_int_equal(BN_mul(c, a, b, ctx), 1);
        BN_free(b);
        BN_free(a);
        if (BN_num_bits(c) == 1024 && BN_is_bit_set(c, 1022) && BN_mod_word(c, 65537) != 1)
            break;
    }
    assert_int_equal(BN_check_prime(c, ctx, NULL), 0);
    BIGNUM *q = good_prime(1024, ctx);
    pc_diag_t diag;
    EVP_PKEY *key = NULL;
    assert_int_equal(from_factors(c, q, 2048, &key, &diag), PC_ERR_CRYPTO);
    assert_null(key);
    assert_non_null(strstr(diag.msg, "pairwise consistency test"));
    assert_no_factor_in(&diag, c);
    assert_no_factor_in(&diag, q);
    BN_free(q);
    BN_free(c);
    BN_CTX_free(ctx);
}

/* rebuild_with_bad_d returns a copy of an RSA key whose d is off by 2. */
static EVP_PKEY *rebuild_with_bad_d(const EVP_PKEY *key)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    BIGNUM *bn[8];
    EVP_PKEY *bad = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    for (size_t i = 0; i < 8; i++) {
        bn[i] = get_bn(key, names[i]);
        if (strcmp(names[i], OSSL_PKEY_PARAM_RSA_D) == 0)
            assert_int_equal(BN_add_word(bn[i], 2), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]), 1);
    }
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    assert_non_null(params);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(pctx, &bad, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    return bad;
}

/* Negative control: the checks that accept our keys reject a broken one. */
static void test_checks_reject_corrupt_key(void **state)
{
    EVP_PKEY *key = generate(PC_KEY_RSA, 2048, PC_KEYGEN_FAST);
    EVP_PKEY *bad = rebuild_with_bad_d(key);
    assert_int_equal(evp_check(key), 1);
    assert_int_not_equal(evp_check(bad), 1);
    assert_true(openssl_cli_accepts(key, "rsa"));
    assert_false(openssl_cli_accepts(bad, "pkey"));
    assert_false(openssl_cli_accepts(bad, "rsa"));
    EVP_PKEY_free(bad);
    EVP_PKEY_free(key);
}

static struct key_case rsa2048_fast = {PC_KEY_RSA, 2048, PC_KEYGEN_FAST};
static struct key_case rsa2048_prov = {PC_KEY_RSA, 2048, PC_KEYGEN_PROVIDER};
static struct key_case rsa3072_fast = {PC_KEY_RSA, 3072, PC_KEYGEN_FAST};
static struct key_case rsa3072_prov = {PC_KEY_RSA, 3072, PC_KEYGEN_PROVIDER};
static struct key_case rsa4096_fast = {PC_KEY_RSA, 4096, PC_KEYGEN_FAST};
static struct key_case p256_fast = {PC_KEY_EC, 256, PC_KEYGEN_FAST};
static struct key_case p256_prov = {PC_KEY_EC, 256, PC_KEYGEN_PROVIDER};
static struct key_case p384_fast = {PC_KEY_EC, 384, PC_KEYGEN_FAST};
static struct key_case p384_prov = {PC_KEY_EC, 384, PC_KEYGEN_PROVIDER};

#define KEY_TEST(kc) cmocka_unit_test_prestate(test_generated_key, &kc)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_check_accepts_supported),
        cmocka_unit_test(test_spec_check_rejects_bad_specs),
        cmocka_unit_test(test_generate_rejects_bad_specs),
        cmocka_unit_test(test_spec_name),
        cmocka_unit_test(test_spec_of_other_keys),
        KEY_TEST(rsa2048_fast),
        KEY_TEST(rsa2048_prov),
        KEY_TEST(rsa3072_fast),
        KEY_TEST(rsa3072_prov),
        KEY_TEST(rsa4096_fast),
        KEY_TEST(p256_fast),
        KEY_TEST(p256_prov),
        KEY_TEST(p384_fast),
        KEY_TEST(p384_prov),
        cmocka_unit_test(test_fast_keys_distinct),
        cmocka_unit_test(test_concurrent_generation),
        cmocka_unit_test(test_from_factors_builds_given_key),
        cmocka_unit_test(test_from_factors_rejects_close_primes),
        cmocka_unit_test(test_from_factors_rejects_e_dividing_p_minus_1),
        cmocka_unit_test(test_from_factors_rejects_wrong_sizes),
        cmocka_unit_test(test_from_factors_rejects_small_d),
        cmocka_unit_test(test_pairwise_test_catches_composite_factor),
        cmocka_unit_test(test_checks_reject_corrupt_key),
    };
    return cmocka_run_group_tests_name("keygen", tests, NULL, NULL);
}
