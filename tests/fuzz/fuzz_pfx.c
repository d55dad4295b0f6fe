/*
 * fuzz_pfx.c - libFuzzer target: IMPORT_PFX as a worker runs it (lib/engine/import.c,
 * lib/crypto/pfx.c): the uploaded PFX is held to the import's limits (iterations, size, bags,
 * certificates: read from its ASN.1 before any key is derived), opened with its password, its
 * key and certificate are checked for the S/MIME purpose, and it is packed again and enveloped
 * to the device key; then the result is serialized. The import key, the password's RSA-OAEP
 * ciphertexts and the device key are made once at start, so that every input reaches the PFX
 * itself.
 *
 * Input: one flags byte, then the PFX DER. Bit 0: the password is "fuzz-password", else empty;
 * bits 1-2: the intended purpose: any, smime_signing, smime_encryption or an unknown one; bit 3:
 * tight limits (2048 iterations, 4 KiB, 8 bags, 2 certificates) instead of the defaults a worker
 * runs with (pfx.h), so that each limit is met at its edge. Inputs over the PC_MAX_PFX_LEN a
 * request may carry are skipped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "import.h"
#include "request.h"
#include "result.h"

#define IMPORT_KEY_ID "fuzz-import"
#define PASSWORD "fuzz-password"

static pc_import_t *imp[2]; /* the default limits, tight ones */
static unsigned char *device_spki;
static size_t device_spki_len;
static unsigned char *sealed[2]; /* the empty password and PASSWORD, OAEP-encrypted */
static size_t sealed_len[2];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_pfx: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

static void seal_password(EVP_PKEY *key, const char *pw, unsigned char **out, size_t *len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_encrypt(ctx, NULL, len, (const unsigned char *)pw, strlen(pw)) != 1 ||
        (*out = malloc(*len)) == NULL ||
        EVP_PKEY_encrypt(ctx, *out, len, (const unsigned char *)pw, strlen(pw)) != 1)
        die("cannot encrypt the password");
    EVP_PKEY_CTX_free(ctx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const pc_pfx_limits_t tight = {
        .max_iterations = 2048,
        .max_bytes = 4096,
        .max_bags = 8,
        .max_certs = 2,
        .setting = "worker.pfx_",
    };
    char path[1024];
    pc_diag_t diag = {{0}};
    char *pem = NULL;

    fuzz_clear_pc_environment(); /* no passphrase for the import key from outside */
    EVP_PKEY *key = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    if (key == NULL || bio == NULL ||
        PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        die("cannot make the import key");
    long len = BIO_get_mem_data(bio, &pem);
    fuzz_write("import.key", pem, (size_t)len, 0600, path, sizeof(path));
    BIO_free(bio);
    if (pc_import_new(path, IMPORT_KEY_ID, NULL, &imp[0], &diag) != PC_OK ||
        pc_import_new(path, IMPORT_KEY_ID, &tight, &imp[1], &diag) != PC_OK) {
        fprintf(stderr, "fuzz_pfx: %s\n", diag.msg);
        abort();
    }
    seal_password(key, "", &sealed[0], &sealed_len[0]);
    seal_password(key, PASSWORD, &sealed[1], &sealed_len[1]);
    EVP_PKEY_free(key);

    bio = BIO_new_mem_buf(FUZZ_ECDSA_KEY, -1);
    EVP_PKEY *device = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    int n = device != NULL ? i2d_PUBKEY(device, &device_spki) : -1;
    if (n <= 0)
        die("cannot make the device key");
    device_spki_len = (size_t)n;
    EVP_PKEY_free(device);
    BIO_free(bio);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char key_id[] = IMPORT_KEY_ID, oaep_hash[] = "sha256";
    static char *const purposes[] = {"", "smime_signing", "smime_encryption", "smime"};
    Pkcs__V1__ImportPfxRequest body;
    pc_diag_t diag = {{0}};

    if (size < 1 || size - 1 > PC_MAX_PFX_LEN) /* pc_request_validate refuses longer ones */
        return 0;
    Pkcs__V1__Result *res = pc_result_new(NULL);
    if (res == NULL)
        return 0;
    pkcs__v1__import_pfx_request__init(&body);
    body.pfx.data = (uint8_t *)(uintptr_t)(data + 1);
    body.pfx.len = size - 1;
    body.encrypted_password.data = sealed[data[0] & 1];
    body.encrypted_password.len = sealed_len[data[0] & 1];
    body.import_key_id = key_id;
    body.intended_purpose = purposes[(data[0] >> 1) & 3];
    body.oaep_hash = oaep_hash;
    body.device_public_key.data = device_spki;
    body.device_public_key.len = device_spki_len;

    pc_err_t err = pc_import_run(imp[(data[0] >> 3) & 1], &body, res, &diag);
    if (err != PC_OK)
        pc_result_set_error(res, err, &diag);
    size_t len = pkcs__v1__result__get_packed_size(res);
    uint8_t *packed = malloc(len > 0 ? len : 1);
    if (packed != NULL)
        pkcs__v1__result__pack(res, packed);
    free(packed);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    ERR_clear_error();
    return 0;
}
