/*
 * test_auth.c - upstream request signatures: what a signer produces verifies for each
 * algorithm, and every way a request can be unsigned, altered, or signed by the wrong key is
 * refused with a message that names the key. Keys are made here with plain OpenSSL calls and
 * written to a temporary folder, as an operator would configure them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "auth.h"

typedef struct fixture {
    char dir[64];
    char ed_priv[128], ed_pub[128], ed2_priv[128];
    char ec_priv[128], ec_pub[128], p384_pub[128];
    char secret[128], secret2[128], short_secret[128];
    pc_auth_t *auth;
} fixture_t;

static void path_in(const fixture_t *fx, char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", fx->dir, name);
}

static void write_key(EVP_PKEY *key, const char *priv, const char *pub)
{
    FILE *f = fopen(priv, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    if (pub != NULL) {
        f = fopen(pub, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_PUBKEY(f, key), 1);
        fclose(f);
    }
}

static void make_key(const char *type, const char *param, const char *priv, const char *pub)
{
    EVP_PKEY *key = param != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, type, param)
                                  : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(key);
    write_key(key, priv, pub);
    EVP_PKEY_free(key);
}

static void write_random(const char *path, size_t len)
{
    unsigned char buf[64];
    assert_true(len <= sizeof(buf));
    assert_int_equal(RAND_bytes(buf, (int)len), 1);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char scratch[128];
    pc_diag_t diag = {{0}};
    if (fx == NULL)
        return -1;
    umask(077); /* the keys and secrets are readable by their owner only, as they must be */
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc-auth-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    path_in(fx, fx->ed_priv, sizeof(fx->ed_priv), "ed.pem");
    path_in(fx, fx->ed_pub, sizeof(fx->ed_pub), "ed.pub.pem");
    path_in(fx, fx->ed2_priv, sizeof(fx->ed2_priv), "ed2.pem");
    path_in(fx, fx->ec_priv, sizeof(fx->ec_priv), "ec.pem");
    path_in(fx, fx->ec_pub, sizeof(fx->ec_pub), "ec.pub.pem");
    path_in(fx, fx->p384_pub, sizeof(fx->p384_pub), "p384.pub.pem");
    path_in(fx, fx->secret, sizeof(fx->secret), "hmac.key");
    path_in(fx, fx->secret2, sizeof(fx->secret2), "hmac2.key");
    path_in(fx, fx->short_secret, sizeof(fx->short_secret), "short.key");
    path_in(fx, scratch, sizeof(scratch), "p384.pem");
    make_key("ED25519", NULL, fx->ed_priv, fx->ed_pub);
    make_key("ED25519", NULL, fx->ed2_priv, NULL);
    make_key("EC", "P-256", fx->ec_priv, fx->ec_pub);
    make_key("EC", "P-384", scratch, fx->p384_pub);
    write_random(fx->secret, 32);
    write_random(fx->secret2, 48);
    write_random(fx->short_secret, 31);

    const pc_auth_key_t keys[] = {
        {.id = "upstream-ed", .algorithm = "ed25519", .public_key_file = fx->ed_pub},
        {.id = "upstream-ec", .algorithm = "ecdsa-p256-sha256", .public_key_file = fx->ec_pub},
        {.id = "upstream-hmac", .algorithm = "hmac-sha256", .secret_file = fx->secret},
    };
    if (pc_auth_new(keys, 3, &fx->auth, &diag) != PC_OK) {
        fprintf(stderr, "pc_auth_new: %s\n", diag.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    const char *names[] = {"ed.pem",   "ed.pub.pem",   "ed2.pem",  "ec.pem",    "ec.pub.pem",
                           "p384.pem", "p384.pub.pem", "hmac.key", "hmac2.key", "short.key"};
    char path[128];
    pc_auth_free(fx->auth);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_in(fx, path, sizeof(path), names[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A request such as upstream would send; its strings point at static text, so it is never
 * freed. */
static void sample_request(Pkcs__V1__Request *req, char *request_id)
{
    static char tenant[] = "contoso", device[] = "dev-42";
    pkcs__v1__request__init(req);
    req->schema_version = 1;
    req->request_id = request_id;
    req->tenant_id = tenant;
    req->kind = PKCS__V1__KIND__ISSUE;
    req->device_id = device;
    req->created_at_ms = 1700000000000;
}

/* sign signs the sample request with (id, alg, file) and returns it unpacked. */
static Pkcs__V1__SignedRequest *sign(const char *id, const char *alg, const char *file,
                                     char *request_id)
{
    pc_signer_t *signer = NULL;
    pc_diag_t diag = {{0}};
    Pkcs__V1__Request req;
    unsigned char *out = NULL;
    size_t len = 0;
    sample_request(&req, request_id);
    pc_err_t err = pc_signer_new(id, alg, file, NULL, &signer, &diag);
    if (err != PC_OK)
        fail_msg("pc_signer_new(%s): %s", id, diag.msg);
    err = pc_signer_sign(signer, &req, &out, &len, &diag);
    if (err != PC_OK)
        fail_msg("pc_signer_sign(%s): %s", id, diag.msg);
    pc_signer_free(signer);
    Pkcs__V1__SignedRequest *sr = pkcs__v1__signed_request__unpack(NULL, len, out);
    assert_non_null(sr);
    free(out);
    return sr;
}

static void assert_refused(const fixture_t *fx, const Pkcs__V1__SignedRequest *sr,
                           const char *expect)
{
    pc_diag_t diag = {{0}};
    assert_int_equal(pc_auth_verify(fx->auth, sr, &diag), PC_ERR_UNAUTHENTICATED);
    if (strstr(diag.msg, expect) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", expect, diag.msg);
}

static void round_trip(void **state, const char *id, const char *alg, const char *file)
{
    fixture_t *fx = *state;
    pc_diag_t diag = {{0}};
    char rid[] = "req-1";
    Pkcs__V1__SignedRequest *sr = sign(id, alg, file, rid);

    assert_string_equal(sr->signer_key_id, id);
    assert_string_equal(sr->signature_algorithm, alg);
    assert_true(sr->signature.len > 0);
    if (pc_auth_verify(fx->auth, sr, &diag) != PC_OK)
        fail_msg("%s: %s", id, diag.msg);

    /* the signed bytes are the request itself: a worker decodes exactly what was signed */
    Pkcs__V1__Request *req = pkcs__v1__request__unpack(NULL, sr->request.len, sr->request.data);
    assert_non_null(req);
    assert_string_equal(req->request_id, "req-1");
    assert_string_equal(req->device_id, "dev-42");
    pkcs__v1__request__free_unpacked(req, NULL);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

static void test_round_trip_ed25519(void **state)
{
    fixture_t *fx = *state;
    round_trip(state, "upstream-ed", "ed25519", fx->ed_priv);
}

static void test_round_trip_ecdsa_p256(void **state)
{
    fixture_t *fx = *state;
    round_trip(state, "upstream-ec", "ecdsa-p256-sha256", fx->ec_priv);
}

static void test_round_trip_hmac(void **state)
{
    fixture_t *fx = *state;
    round_trip(state, "upstream-hmac", "hmac-sha256", fx->secret);
}

static void test_ed25519_signature_is_raw_64_bytes(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1";
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed_priv, rid);
    assert_int_equal(sr->signature.len, 64);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
    sr = sign("upstream-hmac", "hmac-sha256", fx->secret, rid);
    assert_int_equal(sr->signature.len, 32);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

/* Ed25519 is deterministic: the signature made here (libsodium) is byte for byte the one
 * OpenSSL makes with the same key over the same request, so anything that verifies one
 * verifies the other; and OpenSSL verifies ours. */
static void test_ed25519_signature_is_openssls(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1";
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed_priv, rid);
    FILE *f = fopen(fx->ed_priv, "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);
    unsigned char theirs[64];
    size_t theirs_len = sizeof(theirs);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, theirs, &theirs_len, sr->request.data, sr->request.len),
                     1);
    assert_int_equal(theirs_len, sr->signature.len);
    assert_memory_equal(theirs, sr->signature.data, theirs_len);
    EVP_MD_CTX_free(ctx);
    ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sr->signature.data, sr->signature.len, sr->request.data,
                                      sr->request.len),
                     1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

/* A public key no generator makes (the identity, of small order) is refused when the keys are
 * loaded, not at the first request: every signature under it would be refused. */
static void test_small_order_ed25519_key_is_refused(void **state)
{
    fixture_t *fx = *state;
    unsigned char identity[32] = {1};
    char path[128];
    pc_auth_t *auth = NULL;
    pc_diag_t diag = {{0}};
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, identity, 32);

    assert_non_null(key);
    path_in(fx, path, sizeof(path), "small.pub.pem");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
    EVP_PKEY_free(key);
    const pc_auth_key_t keys[] = {
        {.id = "upstream-small", .algorithm = "ed25519", .public_key_file = path}};
    assert_int_equal(pc_auth_new(keys, 1, &auth, &diag), PC_ERR_INVALID_PARAM);
    assert_null(auth);
    assert_non_null(strstr(diag.msg, "key upstream-small: not a usable Ed25519 public key"));
    unlink(path);
}

static void tampered(void **state, const char *id, const char *alg, const char *file)
{
    fixture_t *fx = *state;
    char rid[] = "req-1", expect[128];
    Pkcs__V1__SignedRequest *sr = sign(id, alg, file, rid);
    snprintf(expect, sizeof(expect), "signature of request by key %s does not verify", id);

    /* one bit of the request changed: "req-1" becomes "req-0" */
    unsigned char *p = memchr(sr->request.data, '1', sr->request.len);
    assert_non_null(p);
    *p ^= 1;
    assert_refused(fx, sr, expect);
    *p ^= 1;

    /* one bit of the signature changed */
    sr->signature.data[sr->signature.len / 2] ^= 0x10;
    assert_refused(fx, sr, expect);
    sr->signature.data[sr->signature.len / 2] ^= 0x10;

    /* a truncated signature */
    sr->signature.len--;
    assert_refused(fx, sr, expect);
    sr->signature.len++;

    pc_diag_t diag = {{0}};
    assert_int_equal(pc_auth_verify(fx->auth, sr, &diag), PC_OK);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

static void test_tampered_ed25519(void **state)
{
    fixture_t *fx = *state;
    tampered(state, "upstream-ed", "ed25519", fx->ed_priv);
}

static void test_tampered_ecdsa_p256(void **state)
{
    fixture_t *fx = *state;
    tampered(state, "upstream-ec", "ecdsa-p256-sha256", fx->ec_priv);
}

static void test_tampered_hmac(void **state)
{
    fixture_t *fx = *state;
    tampered(state, "upstream-hmac", "hmac-sha256", fx->secret);
}

static void test_signature_of_another_request_does_not_verify(void **state)
{
    fixture_t *fx = *state;
    char rid1[] = "req-1", rid2[] = "req-2";
    Pkcs__V1__SignedRequest *a = sign("upstream-ec", "ecdsa-p256-sha256", fx->ec_priv, rid1);
    Pkcs__V1__SignedRequest *b = sign("upstream-ec", "ecdsa-p256-sha256", fx->ec_priv, rid2);
    ProtobufCBinaryData sig = a->signature;
    a->signature = b->signature;
    assert_refused(fx, a, "signature of request by key upstream-ec does not verify");
    a->signature = sig;
    pkcs__v1__signed_request__free_unpacked(a, NULL);
    pkcs__v1__signed_request__free_unpacked(b, NULL);
}

static void test_signed_by_another_key_under_a_known_id(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1";
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed2_priv, rid);
    assert_refused(fx, sr, "signature of request by key upstream-ed does not verify");
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
    sr = sign("upstream-hmac", "hmac-sha256", fx->secret2, rid);
    assert_refused(fx, sr, "signature of request by key upstream-hmac does not verify");
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

static void test_unknown_key_id_is_named(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1";
    Pkcs__V1__SignedRequest *sr = sign("rogue-signer", "ed25519", fx->ed_priv, rid);
    assert_refused(fx, sr, "unknown key id \"rogue-signer\"");
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

static void test_unsigned_requests_are_refused(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1", empty[] = "";
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed_priv, rid);
    ProtobufCBinaryData sig = sr->signature;
    char *id = sr->signer_key_id;

    sr->signature.len = 0;
    assert_refused(fx, sr, "request is not signed");
    sr->signature = sig;
    sr->signer_key_id = empty;
    assert_refused(fx, sr, "request is not signed");
    sr->signer_key_id = NULL;
    assert_refused(fx, sr, "request is not signed");
    sr->signer_key_id = id;
    pkcs__v1__signed_request__free_unpacked(sr, NULL);

    /* a message with nothing but the request, as `pkcsctl submit --unsigned` sends it */
    Pkcs__V1__SignedRequest bare;
    pkcs__v1__signed_request__init(&bare);
    assert_refused(fx, &bare, "request is not signed");
}

static void test_algorithm_mismatch_names_key(void **state)
{
    fixture_t *fx = *state;
    char rid[] = "req-1", ecdsa[] = "ecdsa-p256-sha256", hmac[] = "hmac-sha256", bogus[] = "none";
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed_priv, rid);
    char *alg = sr->signature_algorithm;

    sr->signature_algorithm = ecdsa;
    assert_refused(fx, sr, "key upstream-ed is configured for ed25519");
    sr->signature_algorithm = hmac;
    assert_refused(fx, sr, "key upstream-ed is configured for ed25519");
    sr->signature_algorithm = bogus;
    assert_refused(fx, sr, "\"none\"");
    sr->signature_algorithm = alg;
    pkcs__v1__signed_request__free_unpacked(sr, NULL);

    /* an ed25519 key used as if it were an HMAC secret: the configured algorithm wins */
    sr = sign("upstream-hmac", "ed25519", fx->ed_priv, rid);
    assert_refused(fx, sr, "key upstream-hmac is configured for hmac-sha256");
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
}

static void assert_load_fails(const pc_auth_key_t *key, pc_err_t expect_err, const char *expect1,
                              const char *expect2)
{
    pc_auth_t *auth = (pc_auth_t *)&auth; /* must be reset to NULL on failure */
    pc_diag_t diag = {{0}};
    assert_int_equal(pc_auth_new(key, 1, &auth, &diag), expect_err);
    assert_null(auth);
    if (strstr(diag.msg, expect1) == NULL || (expect2 && strstr(diag.msg, expect2) == NULL))
        fail_msg("expected \"%s\" and \"%s\" in \"%s\"", expect1, expect2 ? expect2 : "", diag.msg);
}

static void test_key_type_must_match_algorithm(void **state)
{
    fixture_t *fx = *state;
    pc_auth_key_t ed_as_ec = {"ed-key", "ecdsa-p256-sha256", fx->ed_pub, NULL};
    pc_auth_key_t ec_as_ed = {"ec-key", "ed25519", fx->ec_pub, NULL};
    pc_auth_key_t p384 = {"p384-key", "ecdsa-p256-sha256", fx->p384_pub, NULL};
    assert_load_fails(&ed_as_ec, PC_ERR_INVALID_PARAM, "key ed-key", "declared ecdsa-p256");
    assert_load_fails(&ec_as_ed, PC_ERR_INVALID_PARAM, "key ec-key", "declared ed25519");
    assert_load_fails(&p384, PC_ERR_INVALID_PARAM, "key p384-key", "needs P-256");

    /* the signer checks the same way */
    pc_signer_t *signer = NULL;
    pc_diag_t diag = {{0}};
    assert_int_equal(
        pc_signer_new("ed-key", "ecdsa-p256-sha256", fx->ed_priv, NULL, &signer, &diag),
        PC_ERR_INVALID_PARAM);
    assert_null(signer);
    assert_non_null(strstr(diag.msg, "key ed-key"));
}

static void test_short_hmac_secret_is_refused(void **state)
{
    fixture_t *fx = *state;
    pc_auth_key_t key = {"weak-hmac", "hmac-sha256", NULL, fx->short_secret};
    assert_load_fails(&key, PC_ERR_INVALID_PARAM, "key weak-hmac", "at least 32");

    pc_signer_t *signer = NULL;
    pc_diag_t diag = {{0}};
    assert_int_equal(
        pc_signer_new("weak-hmac", "hmac-sha256", fx->short_secret, NULL, &signer, &diag),
        PC_ERR_INVALID_PARAM);
    assert_null(signer);
}

static void test_bad_configuration_is_named(void **state)
{
    fixture_t *fx = *state;
    pc_auth_key_t unknown_alg = {"k1", "rsa-pkcs1", fx->ed_pub, NULL};
    pc_auth_key_t missing = {"k2", "ed25519", "/nonexistent/k2.pem", NULL};
    pc_auth_key_t no_file = {"k3", "hmac-sha256", fx->ed_pub, NULL};
    pc_auth_key_t not_pem = {"k4", "ed25519", fx->secret, NULL};
    pc_auth_key_t private_as_public = {"k5", "ed25519", fx->ed_priv, NULL};
    pc_auth_key_t pem_as_secret = {"k6", "hmac-sha256", NULL, fx->ed_pub};
    assert_load_fails(&unknown_alg, PC_ERR_NOT_SUPPORTED, "key k1", "rsa-pkcs1");
    assert_load_fails(&missing, PC_ERR_IO, "key k2", "/nonexistent/k2.pem");
    assert_load_fails(&no_file, PC_ERR_INVALID_PARAM, "key k3", "no secret file");
    assert_load_fails(&not_pem, PC_ERR_INVALID_PARAM, "key k4", "not a PEM public key");
    assert_load_fails(&private_as_public, PC_ERR_INVALID_PARAM, "key k5", NULL);
    assert_load_fails(&pem_as_secret, PC_ERR_INVALID_PARAM, "key k6", "raw random bytes");

    const pc_auth_key_t twice[] = {
        {"dup", "ed25519", fx->ed_pub, NULL},
        {"dup", "hmac-sha256", NULL, fx->secret},
    };
    pc_auth_t *auth = NULL;
    pc_diag_t diag = {{0}};
    assert_int_equal(pc_auth_new(twice, 2, &auth, &diag), PC_ERR_INVALID_PARAM);
    assert_null(auth);
    assert_non_null(strstr(diag.msg, "dup"));
}

static void test_no_keys_refuses_everything(void **state)
{
    fixture_t *fx = *state;
    pc_auth_t *auth = NULL;
    pc_diag_t diag = {{0}};
    char rid[] = "req-1";
    assert_int_equal(pc_auth_new(NULL, 0, &auth, &diag), PC_OK);
    Pkcs__V1__SignedRequest *sr = sign("upstream-ed", "ed25519", fx->ed_priv, rid);
    assert_int_equal(pc_auth_verify(auth, sr, &diag), PC_ERR_UNAUTHENTICATED);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
    pc_auth_free(auth);
    pc_auth_free(NULL);
    pc_signer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_ed25519),
        cmocka_unit_test(test_round_trip_ecdsa_p256),
        cmocka_unit_test(test_round_trip_hmac),
        cmocka_unit_test(test_ed25519_signature_is_raw_64_bytes),
        cmocka_unit_test(test_ed25519_signature_is_openssls),
        cmocka_unit_test(test_small_order_ed25519_key_is_refused),
        cmocka_unit_test(test_tampered_ed25519),
        cmocka_unit_test(test_tampered_ecdsa_p256),
        cmocka_unit_test(test_tampered_hmac),
        cmocka_unit_test(test_signature_of_another_request_does_not_verify),
        cmocka_unit_test(test_signed_by_another_key_under_a_known_id),
        cmocka_unit_test(test_unknown_key_id_is_named),
        cmocka_unit_test(test_unsigned_requests_are_refused),
        cmocka_unit_test(test_algorithm_mismatch_names_key),
        cmocka_unit_test(test_key_type_must_match_algorithm),
        cmocka_unit_test(test_short_hmac_secret_is_refused),
        cmocka_unit_test(test_bad_configuration_is_named),
        cmocka_unit_test(test_no_keys_refuses_everything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
