/*
 * auth.c - upstream request signatures: the workers' verification keys (by id) and the
 * producers' signer. A request is authentic when the signature over the exact bytes of the
 * SignedRequest's `request` field verifies with the key its signer_key_id names, under the
 * algorithm that key is configured for. Keys are read-only after loading, so pc_auth_verify runs
 * on any thread (each call makes its own OpenSSL contexts); loading blocks on file reads.
 *
 * Ed25519 signatures are made and checked by libsodium, keys still read by OpenSSL: OpenSSL 3.0
 * verifies one in about 105 µs and signs in 43 µs on the machines we measure, libsodium in 49
 * and 19 µs, and a worker checks one request signature and signs one result per request on its
 * loop thread (perf: 19% and 7% of a worker's CPU). libsodium is also the stricter verifier: it
 * refuses non-canonical signatures and small-order keys, which no honest signer produces.
 */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "file.h"
#include "pem.h"

#define HMAC_MIN_SECRET 32u
#define HMAC_MAX_SECRET 4096u
#define HMAC_LEN 32u
#define PEM_KEY_MAX (64u * 1024) /* an Ed25519 or P-256 PEM key is a few hundred bytes */

typedef enum alg {
    ALG_ED25519,
    ALG_ECDSA_P256,
    ALG_HMAC,
} alg_t;

static const char *const alg_names[] = {
    [ALG_ED25519] = "ed25519",
    [ALG_ECDSA_P256] = "ecdsa-p256-sha256",
    [ALG_HMAC] = "hmac-sha256",
};

/* One key: a public key (verification), a private key (signing) or an HMAC secret. */
typedef struct key {
    char *id;
    alg_t alg;
    EVP_PKEY *pkey;
    unsigned char *secret;
    size_t secret_len;
    unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES]; /* Ed25519: the public key, for libsodium */
    unsigned char *ed_sk; /* Ed25519 signer: libsodium's secret key, wiped when freed */
} sigkey_t;

struct pc_auth {
    sigkey_t *keys;
    size_t count;
};

struct pc_signer {
    sigkey_t key;
    char *alg_name; /* owned copy: SignedRequest wants a mutable char * */
};

static bool alg_parse(const char *name, alg_t *alg)
{
    for (size_t i = 0; name != NULL && i < sizeof(alg_names) / sizeof(alg_names[0]); i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            *alg = (alg_t)i;
            return true;
        }
    }
    return false;
}

static void key_clear(sigkey_t *key)
{
    free(key->id);
    EVP_PKEY_free(key->pkey);
    if (key->secret != NULL)
        OPENSSL_clear_free(key->secret, key->secret_len);
    if (key->ed_sk != NULL)
        OPENSSL_clear_free(key->ed_sk, crypto_sign_SECRETKEYBYTES);
    memset(key, 0, sizeof(*key));
}

/* read_secret reads the whole HMAC secret file (nobody but its owner may read it, as every
 * secret file: file.h) into memory that is wiped when freed. */
static pc_err_t read_secret(const char *id, const char *path, sigkey_t *key, pc_diag_t *diag)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char prefix[160];
    pc_err_t err = pc_file_read_secret(path, HMAC_MAX_SECRET, &data, &len, diag);

    snprintf(prefix, sizeof(prefix), "key %s: secret file", id);
    if (err != PC_OK) {
        pc_diag_prefix(diag, prefix);
        return err;
    }
    if (len < HMAC_MIN_SECRET)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "key %s: secret in %s is %zu bytes; hmac-sha256 needs at least %u random "
                      "bytes (e.g. openssl rand 32 > %s)",
                      id, path, len, HMAC_MIN_SECRET, path);
    else if (memcmp(data, "-----BEGIN", 10) == 0)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "key %s: %s holds a PEM file, but hmac-sha256 needs a file of raw random "
                      "bytes (e.g. openssl rand 32 > secret)",
                      id, path);
    if (err != PC_OK) {
        OPENSSL_clear_free(data, len);
        return err;
    }
    key->secret = data;
    key->secret_len = len;
    return PC_OK;
}

/* check_key_type makes sure the PEM key is what the algorithm needs: an Ed25519 key, or an EC
 * key on P-256. */
static pc_err_t check_key_type(const char *id, const char *path, const sigkey_t *key,
                               pc_diag_t *diag)
{
    char group[64] = "";
    size_t group_len = 0;
    if (key->alg == ALG_ED25519) {
        if (EVP_PKEY_get_id(key->pkey) != EVP_PKEY_ED25519)
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "key %s: %s holds a %s key, but the key is declared ed25519", id, path,
                           EVP_PKEY_get0_type_name(key->pkey));
        return PC_OK;
    }
    if (EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_EC)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "key %s: %s holds a %s key, but the key is declared ecdsa-p256-sha256", id,
                       path, EVP_PKEY_get0_type_name(key->pkey));
    if (EVP_PKEY_get_group_name(key->pkey, group, sizeof(group), &group_len) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "key %s: %s is an EC key on curve %s; ecdsa-p256-sha256 needs P-256", id,
                       path, group[0] ? group : "(unknown)");
    return PC_OK;
}

static pc_err_t read_public_key(const char *id, const char *path, sigkey_t *key, pc_diag_t *diag)
{
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL)
        return pc_fail_ssl(diag, PC_ERR_IO, "key %s: cannot open %s", id, path);
    pc_pem_passphrase_t none = {.text = NULL}; /* refused, never a prompt on the terminal */
    key->pkey = PEM_read_bio_PUBKEY(bio, NULL, pc_pem_passphrase_cb, &none);
    BIO_free(bio);
    if (key->pkey == NULL)
        return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                           "key %s: %s is not a PEM public key (an unencrypted "
                           "SubjectPublicKeyInfo is expected)",
                           id, path);
    return check_key_type(id, path, key, diag);
}

/* read_private_key reads a signer's PEM private key: encrypted with passphrase (its file may
 * then be shared), or unencrypted in a file nobody but its owner may read. */
static pc_err_t read_private_key(const char *id, const char *path, const char *passphrase,
                                 sigkey_t *key, pc_diag_t *diag)
{
    unsigned char *pem = NULL;
    size_t len = 0;
    unsigned mode = 0;
    pc_pem_passphrase_t pw = {.text = passphrase, .asked = false};
    char prefix[160];
    pc_err_t err = pc_file_read_key(path, PEM_KEY_MAX, &pem, &len, &mode, diag);
    BIO *bio = NULL;

    snprintf(prefix, sizeof(prefix), "key %s", id);
    if (err != PC_OK) {
        pc_diag_prefix(diag, prefix);
        return err;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "key %s: out of memory", id);
        goto out_wipe_pem;
    }
    key->pkey = PEM_read_bio_PrivateKey(bio, NULL, pc_pem_passphrase_cb, &pw);
    BIO_free(bio);
    if (key->pkey == NULL) {
        ERR_clear_error();
        if (pw.asked)
            err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                          passphrase == NULL
                              ? "key %s: %s is encrypted and no passphrase was given; give the "
                                "file holding its passphrase"
                              : "key %s: %s cannot be decrypted with the passphrase given: wrong "
                                "passphrase?",
                          id, path);
        else
            err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                          "key %s: %s is not a PEM private key (PKCS#8, encrypted or not, is "
                          "expected)",
                          id, path);
        goto out_wipe_pem;
    }
    if (!pw.asked && (err = pc_file_check_secret_mode(path, mode, diag)) != PC_OK) {
        pc_diag_prefix(diag, prefix);
        goto out_wipe_pem;
    }
    err = check_key_type(id, path, key, diag);
out_wipe_pem:
    OPENSSL_clear_free(pem, len);
    return err;
}

/* ed25519_prepare hands an Ed25519 key OpenSSL read to libsodium: the raw public key, checked
 * (on the curve, canonical, not of small order: libsodium's verification would refuse every
 * signature under such a key), and for a signer the secret key made from the private seed,
 * whose copies are wiped. */
static pc_err_t ed25519_prepare(const char *id, bool private_key, sigkey_t *key, pc_diag_t *diag)
{
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    size_t len = sizeof(key->ed_pk);
    pc_err_t err = PC_OK;

    if (sodium_init() < 0)
        return pc_fail(diag, PC_ERR_CRYPTO, "key %s: libsodium could not start", id);
    if (EVP_PKEY_get_raw_public_key(key->pkey, key->ed_pk, &len) != 1 || len != sizeof(key->ed_pk))
        return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM, "key %s: cannot read the Ed25519 key", id);
    if (crypto_core_ed25519_is_valid_point(key->ed_pk) != 1)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "key %s: not a usable Ed25519 public key (a point of small order or "
                       "outside the prime-order group, which no key generator makes)",
                       id);
    if (!private_key)
        return PC_OK;
    len = sizeof(seed);
    if (EVP_PKEY_get_raw_private_key(key->pkey, seed, &len) != 1 || len != sizeof(seed)) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM, "key %s: cannot read the Ed25519 key", id);
    }
    if ((key->ed_sk = OPENSSL_malloc(crypto_sign_SECRETKEYBYTES)) == NULL)
        err = pc_fail(diag, PC_ERR_NOMEM, "key %s: out of memory", id);
    else if (crypto_sign_seed_keypair(pk, key->ed_sk, seed) != 0 ||
             memcmp(pk, key->ed_pk, sizeof(pk)) != 0)
        err = pc_fail(diag, PC_ERR_CRYPTO,
                      "key %s: libsodium and OpenSSL disagree on the Ed25519 public key", id);
    OPENSSL_cleanse(seed, sizeof(seed));
    return err;
}

/* key_load fills key from pem_file (ed25519, ecdsa) or secret_file (hmac) as the algorithm
 * says; on failure key is cleared. */
static pc_err_t key_load(const char *id, const char *algorithm, const char *pem_file,
                         const char *secret_file, bool private_key, const char *passphrase,
                         sigkey_t *key, pc_diag_t *diag)
{
    const char *file;
    pc_err_t err;
    memset(key, 0, sizeof(*key));
    if (id == NULL || id[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "a signing key has no id");
    if (!alg_parse(algorithm, &key->alg))
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "key %s: unknown algorithm \"%s\" (use ed25519, ecdsa-p256-sha256 or "
                       "hmac-sha256)",
                       id, algorithm ? algorithm : "");
    file = key->alg == ALG_HMAC ? secret_file : pem_file;
    if (file == NULL || file[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "key %s: no %s file given", id,
                       key->alg == ALG_HMAC ? "secret" : "PEM key");
    if ((key->id = strdup(id)) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "key %s: out of memory", id);
    if (key->alg == ALG_HMAC)
        err = read_secret(id, file, key, diag);
    else if (private_key)
        err = read_private_key(id, file, passphrase, key, diag);
    else
        err = read_public_key(id, file, key, diag);
    if (err == PC_OK && key->alg == ALG_ED25519)
        err = ed25519_prepare(id, private_key, key, diag);
    if (err != PC_OK)
        key_clear(key);
    return err;
}

pc_err_t pc_auth_new(const pc_auth_key_t *keys, size_t count, pc_auth_t **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_auth_t *auth = calloc(1, sizeof(*auth));
    *out = NULL;
    if (auth == NULL || (count > 0 && (auth->keys = calloc(count, sizeof(sigkey_t))) == NULL)) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory loading %zu verification keys", count);
        goto out_free_auth;
    }
    for (size_t i = 0; i < count; i++) {
        const pc_auth_key_t *k = &keys[i];
        for (size_t j = 0; j < i; j++) {
            if (k->id != NULL && strcmp(keys[j].id, k->id) == 0) {
                err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                              "key id %s is configured twice; key ids must be unique", k->id);
                goto out_free_auth;
            }
        }
        err = key_load(k->id, k->algorithm, k->public_key_file, k->secret_file, false, NULL,
                       &auth->keys[auth->count], diag);
        if (err != PC_OK)
            goto out_free_auth;
        auth->count++;
    }
    *out = auth;
    return PC_OK;
out_free_auth:
    pc_auth_free(auth);
    return err;
}

void pc_auth_free(pc_auth_t *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; i < auth->count; i++)
        key_clear(&auth->keys[i]);
    free(auth->keys);
    free(auth);
}

static const sigkey_t *auth_find(const pc_auth_t *auth, const char *id)
{
    for (size_t i = 0; i < auth->count; i++)
        if (strcmp(auth->keys[i].id, id) == 0)
            return &auth->keys[i];
    return NULL;
}

static pc_err_t hmac_compute(const sigkey_t *key, const unsigned char *data, size_t len,
                             unsigned char mac[HMAC_LEN], pc_diag_t *diag)
{
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key->secret, (int)key->secret_len, data, len, mac, &mac_len) == NULL ||
        mac_len != HMAC_LEN)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "key %s: HMAC-SHA256 failed", key->id);
    return PC_OK;
}

static bool signature_ok(const sigkey_t *key, const ProtobufCBinaryData *data,
                         const ProtobufCBinaryData *sig)
{
    bool ok = false;
    if (key->alg == ALG_HMAC) {
        unsigned char mac[HMAC_LEN];
        ok = sig->len == HMAC_LEN && hmac_compute(key, data->data, data->len, mac, NULL) == PC_OK &&
             CRYPTO_memcmp(mac, sig->data, HMAC_LEN) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return ok;
    }
    if (key->alg == ALG_ED25519)
        return sig->len == crypto_sign_BYTES &&
               crypto_sign_verify_detached(sig->data, data->data, data->len, key->ed_pk) == 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = key->alg == ALG_ECDSA_P256 ? EVP_sha256() : NULL;
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1)
        ok = EVP_DigestVerify(ctx, sig->data, sig->len, data->data, data->len) == 1;
    EVP_MD_CTX_free(ctx);
    /* a wrong signature leaves errors on the queue: they are not this thread's next problem */
    ERR_clear_error();
    return ok;
}

/* verify checks a signature by key_id with algorithm over data, for a request or a result
 * (what). */
static pc_err_t verify(const pc_auth_t *auth, const char *what, const char *key_id,
                       const char *algorithm, const ProtobufCBinaryData *data,
                       const ProtobufCBinaryData *sig, pc_diag_t *diag)
{
    alg_t alg;
    if (key_id == NULL || key_id[0] == '\0' || sig->len == 0)
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                       "%s is not signed (it needs a signer key id and a signature); have its "
                       "producer sign it",
                       what);
    const sigkey_t *key = auth_find(auth, key_id);
    if (key == NULL)
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                       "%s is signed by unknown key id \"%.128s\"; add that key to the "
                       "configuration if the signer is legitimate",
                       what, key_id);
    if (!alg_parse(algorithm, &alg) || alg != key->alg)
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                       "%s says it is signed with algorithm \"%.64s\", but key %s is "
                       "configured for %s",
                       what, algorithm ? algorithm : "", key->id, alg_names[key->alg]);
    if (!signature_ok(key, data, sig))
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                       "signature of %s by key %s does not verify (%s); it was altered or "
                       "signed with another key",
                       what, key->id, alg_names[key->alg]);
    return PC_OK;
}

pc_err_t pc_auth_verify(const pc_auth_t *auth, const Pkcs__V1__SignedRequest *sr, pc_diag_t *diag)
{
    return verify(auth, "request", sr->signer_key_id, sr->signature_algorithm, &sr->request,
                  &sr->signature, diag);
}

pc_err_t pc_auth_verify_result(const pc_auth_t *auth, const Pkcs__V1__SignedResult *sr,
                               pc_diag_t *diag)
{
    return verify(auth, "result", sr->signer_key_id, sr->signature_algorithm, &sr->result,
                  &sr->signature, diag);
}

pc_err_t pc_signer_new(const char *key_id, const char *algorithm, const char *key_file,
                       const char *passphrase, pc_signer_t **out, pc_diag_t *diag)
{
    pc_err_t err;
    pc_signer_t *signer = calloc(1, sizeof(*signer));
    *out = NULL;
    if (signer == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory loading signing key");
    err = key_load(key_id, algorithm, key_file, key_file, true, passphrase, &signer->key, diag);
    if (err != PC_OK)
        goto out_free_signer;
    if ((signer->alg_name = strdup(alg_names[signer->key.alg])) == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory loading signing key");
        goto out_free_signer;
    }
    *out = signer;
    return PC_OK;
out_free_signer:
    pc_signer_free(signer);
    return err;
}

void pc_signer_free(pc_signer_t *signer)
{
    if (signer == NULL)
        return;
    key_clear(&signer->key);
    free(signer->alg_name);
    free(signer);
}

/* sign_bytes signs data with the signer's key into a malloc'd *sig. */
static pc_err_t sign_bytes(const sigkey_t *key, const unsigned char *data, size_t len,
                           unsigned char **sig, size_t *sig_len, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    EVP_MD_CTX *ctx = NULL;
    size_t cap = 0;
    *sig = NULL;
    if (key->alg == ALG_HMAC) {
        if ((*sig = malloc(HMAC_LEN)) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory signing a request");
        *sig_len = HMAC_LEN;
        err = hmac_compute(key, data, len, *sig, diag);
        goto out_check;
    }
    if (key->alg == ALG_ED25519) {
        if ((*sig = malloc(crypto_sign_BYTES)) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory signing");
        *sig_len = crypto_sign_BYTES;
        if (key->ed_sk == NULL || crypto_sign_detached(*sig, NULL, data, len, key->ed_sk) != 0)
            err = pc_fail(diag, PC_ERR_CRYPTO, "key %s: signing failed", key->id);
        goto out_check;
    }
    const EVP_MD *md = key->alg == ALG_ECDSA_P256 ? EVP_sha256() : NULL;
    if ((ctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(ctx, NULL, md, NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &cap, data, len) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "key %s: cannot start signing", key->id);
        goto out_free_ctx;
    }
    if ((*sig = malloc(cap)) == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory signing a request");
        goto out_free_ctx;
    }
    *sig_len = cap;
    if (EVP_DigestSign(ctx, *sig, sig_len, data, len) != 1)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "key %s: signing failed", key->id);
out_free_ctx:
    EVP_MD_CTX_free(ctx);
out_check:
    if (err != PC_OK) {
        free(*sig);
        *sig = NULL;
    }
    return err;
}

static pc_err_t pack_message(const ProtobufCMessage *msg, unsigned char **out, size_t *len,
                             pc_diag_t *diag)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    /* one byte more: malloc(0) may return NULL for an all-default message */
    *out = malloc(size + 1);
    if (*out == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory packing a %s",
                       msg->descriptor->short_name);
    *len = protobuf_c_message_pack(msg, *out);
    return PC_OK;
}

pc_err_t pc_signer_sign(const pc_signer_t *signer, const Pkcs__V1__Request *req,
                        unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    Pkcs__V1__SignedRequest sr;
    unsigned char *body = NULL, *sig = NULL;
    size_t body_len = 0, sig_len = 0;
    pc_err_t err;
    *out = NULL;
    *out_len = 0;
    pkcs__v1__signed_request__init(&sr);
    if ((err = pack_message(&req->base, &body, &body_len, diag)) != PC_OK)
        return err;
    if ((err = sign_bytes(&signer->key, body, body_len, &sig, &sig_len, diag)) != PC_OK)
        goto out_free_body;
    sr.request.data = body;
    sr.request.len = body_len;
    sr.signer_key_id = signer->key.id;
    sr.signature_algorithm = signer->alg_name;
    sr.signature.data = sig;
    sr.signature.len = sig_len;
    err = pack_message(&sr.base, out, out_len, diag);
    free(sig);
out_free_body:
    free(body);
    return err;
}

pc_err_t pc_signer_seal_result(const pc_signer_t *signer, const unsigned char *result, size_t len,
                               unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    Pkcs__V1__SignedResult sr;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    pc_err_t err = PC_OK;
    pkcs__v1__signed_result__init(&sr);
    *out = NULL;
    *out_len = 0;
    if (signer != NULL) {
        if (signer->key.alg == ALG_HMAC) /* a shared secret would let consumers forge results */
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "key %s: results are signed with ed25519 or ecdsa-p256-sha256, not "
                           "a shared secret",
                           signer->key.id);
        if ((err = sign_bytes(&signer->key, result, len, &sig, &sig_len, diag)) != PC_OK)
            return err;
        sr.signer_key_id = signer->key.id;
        sr.signature_algorithm = signer->alg_name;
        sr.signature.data = sig;
        sr.signature.len = sig_len;
    }
    sr.result.data = (unsigned char *)(uintptr_t)result; /* packed, never written */
    sr.result.len = len;
    err = pack_message(&sr.base, out, out_len, diag);
    free(sig);
    return err;
}

pc_err_t pc_signer_public_pem(const pc_signer_t *signer, char **pem, pc_diag_t *diag)
{
    *pem = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (bio == NULL || signer->key.pkey == NULL ||
        PEM_write_bio_PUBKEY(bio, signer->key.pkey) != 1 ||
        (len = BIO_get_mem_data(bio, &data)) <= 0 || (*pem = malloc((size_t)len + 1)) == NULL) {
        BIO_free(bio);
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "key %s: no public key to publish", signer->key.id);
    }
    memcpy(*pem, data, (size_t)len);
    (*pem)[len] = '\0';
    BIO_free(bio);
    return PC_OK;
}

const char *pc_signer_key_id(const pc_signer_t *signer)
{
    return signer->key.id;
}
