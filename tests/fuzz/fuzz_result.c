/*
 * fuzz_result.c - libFuzzer target: a message of the results topic as `pkcsctl watch` reads it,
 * and a stored result as a worker replays it from Redis (lib/wire/result.c, auth.c): opened
 * with pc_result_open (a SignedResult, or a bare Result from older workers), its signature
 * checked with the cluster's result key (pc_auth_verify_result), then used: its JSON form (what
 * watch prints) and its certificate's subject and SANs (pc_result_cert_texts).
 *
 * The fuzzer cannot forge a signature, so the bytes of each Result found (the input itself, or
 * the result inside a SignedResult) are also sealed again with the result key
 * (pc_signer_seal_result), as a worker would send them, and opened and verified as above. It
 * checks what consumers rely on: a Result sealed by the cluster opens and verifies, and a bare
 * Result is never taken for a SignedResult.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "pbjson.h"
#include "result.h"

static pc_signer_t *signer;  /* the cluster's result key (a worker's) */
static pc_auth_t *verifiers; /* its public half (a consumer's) */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_result: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    ERR_print_errors_fp(stderr);
    abort();
}

static void write_pem(EVP_PKEY *key, bool public, const char *name, char *path, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio == NULL ||
        (public ? PEM_write_bio_PUBKEY(bio, key)
                : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) != 1)
        die("cannot write a key", name);
    long len = BIO_get_mem_data(bio, &pem);
    fuzz_write(name, pem, (size_t)len, 0600, path, size);
    BIO_free(bio);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char priv[1024], pub[1024];
    pc_diag_t diag = {{0}};
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                (const unsigned char *)FUZZ_ED25519_SEED, 32);
    if (ed == NULL)
        die("cannot make the ed25519 key", NULL);
    write_pem(ed, false, "result.key", priv, sizeof(priv));
    write_pem(ed, true, "result.pub", pub, sizeof(pub));
    EVP_PKEY_free(ed);
    const pc_auth_key_t key = {
        .id = FUZZ_RESULT_KEY_ID, .algorithm = "ed25519", .public_key_file = pub};
    if (pc_signer_new(FUZZ_RESULT_KEY_ID, "ed25519", priv, NULL, &signer, &diag) != PC_OK ||
        pc_auth_new(&key, 1, &verifiers, &diag) != PC_OK)
        die("cannot load the result key", diag.msg);
    return 0;
}

/* use does with an opened result what watch does. */
static void use(const Pkcs__V1__Result *res)
{
    pc_diag_t diag = {{0}};
    char *json = NULL, subject[256], sans[256];
    if (pc_pbjson_encode_string(&res->base, false, &json, &diag) == PC_OK)
        free(json);
    pc_result_cert_texts(res, subject, sizeof(subject), sans, sizeof(sans));
}

/* open_message opens len bytes of msg as a consumer does; verified tells whether its signature
 * verified, bare whether it was a bare Result. False when it is neither kind. */
static bool open_message(const uint8_t *msg, size_t len, bool *verified, bool *bare)
{
    Pkcs__V1__SignedResult *sealed = NULL;
    Pkcs__V1__Result *res = NULL;
    pc_diag_t diag = {{0}};

    *verified = *bare = false;
    if (pc_result_open(msg, len, &sealed, &res, &diag) != PC_OK) {
        if (sealed != NULL || res != NULL)
            die("pc_result_open failed and left a message", NULL);
        return false;
    }
    *bare = sealed == NULL;
    *verified = sealed != NULL && pc_auth_verify_result(verifiers, sealed, &diag) == PC_OK;
    use(res);
    if (sealed != NULL)
        protobuf_c_message_free_unpacked(&sealed->base, NULL);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    return true;
}

/* reseal seals len bytes of a Result as a worker does and opens them as a consumer. */
static void reseal(const uint8_t *result, size_t len)
{
    pc_diag_t diag = {{0}};
    unsigned char *out = NULL;
    size_t out_len = 0;
    bool verified = false, bare = false;

    /* An empty Result packs to no bytes, which a SignedResult cannot tell from no result
     * (pc_result_open then reads the message as a bare Result); a worker's Result always has
     * a schema version and a request id. */
    if (len == 0 || pc_signer_seal_result(signer, result, len, &out, &out_len, &diag) != PC_OK)
        return;
    if (!open_message(out, out_len, &verified, &bare) || bare || !verified)
        die("a Result sealed with the result key does not open and verify", diag.msg);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool verified = false, bare = false;

    if (open_message(data, size, &verified, &bare) && !bare) {
        Pkcs__V1__SignedResult *sealed = pkcs__v1__signed_result__unpack(NULL, size, data);
        if (sealed == NULL)
            die("pc_result_open opened a SignedResult that does not unpack", NULL);
        reseal(sealed->result.data, sealed->result.len);
        protobuf_c_message_free_unpacked(&sealed->base, NULL);
    }
    /* the input as a Result's bytes; a bare Result must open as one */
    Pkcs__V1__Result *res = pkcs__v1__result__unpack(NULL, size, data);
    if (res != NULL) {
        size_t len = pkcs__v1__result__get_packed_size(res);
        uint8_t *packed = malloc(len > 0 ? len : 1);
        Pkcs__V1__Result *again = NULL;
        if (packed != NULL) {
            pkcs__v1__result__pack(res, packed);
            /* protobuf-c reads a field number 0 spelled in two bytes (80 00) as an unknown
             * field and writes it back in one (00), which it refuses: only what it can read
             * again is a Result on the wire (regressions/result/field-zero-tag.bin) */
            again = pkcs__v1__result__unpack(NULL, len, packed);
            if (again != NULL && (!open_message(packed, len, &verified, &bare) || !bare))
                die("a packed Result is not opened as a bare Result", NULL);
        }
        if (again != NULL)
            protobuf_c_message_free_unpacked(&again->base, NULL);
        free(packed);
        protobuf_c_message_free_unpacked(&res->base, NULL);
        reseal(data, size);
    }
    ERR_clear_error();
    return 0;
}
