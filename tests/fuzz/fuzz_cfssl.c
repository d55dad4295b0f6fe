/*
 * fuzz_cfssl.c - libFuzzer target: what the cfssl backend makes of a cfssl server's answer
 * (lib/ca/cfssl/ca_cfssl_wire.c): parse the body, judge it with the HTTP outcome, read the PEM
 * certificates of result.certificate, and use them as the backend does: the first one of a
 * signing answer must be what the CA can have issued for the CSR (pc_ca_cfssl_check_issued
 * against the CA certificate of fuzz_keys.h, which the seeds' certificates are signed with); a
 * CA certificate from /info gives its subject key id (the revocations' AKI); a certificate that
 * passes goes into a Result with its chain, as a worker publishes it.
 *
 * Input: one byte, then the response body. The byte's value modulo 16 chooses the HTTP outcome
 * (a status from the table below, or no answer at all: bit 4 then tells a closed connection
 * from a timeout); bit 5 makes it a CA with client_serials, which asked for the serial
 * FUZZ_CFSSL_SERIAL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_cfssl_int.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "result.h"

static const long statuses[16] = {200, 200, 200, 201, 400, 400, 401, 403,
                                  404, 429, 500, 502, 503, 301, 0,   0};

static EVP_PKEY *csr_key; /* the key a signed certificate should carry */
static X509 *ca_cert;     /* the CA cfssl gave at start */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_cfssl: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

static EVP_PKEY *key_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        die("cannot read a test key");
    return key;
}

static void add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
        die("cannot add an extension");
    X509_EXTENSION_free(ext);
}

/* make_ca makes the self-signed CA certificate of FUZZ_CA_KEY, as seedgen.c does. */
static X509 *make_ca(void)
{
    EVP_PKEY *key = key_from_pem(FUZZ_CA_KEY);
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (cert == NULL || name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)FUZZ_CA_SUBJECT, -1, -1, 0) != 1 ||
        X509_set_version(cert, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        ASN1_TIME_set_string_X509(X509_getm_notBefore(cert), "20200101000000Z") != 1 ||
        ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), "20991231235959Z") != 1 ||
        X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1 ||
        X509_set_pubkey(cert, key) != 1)
        die("cannot make the CA certificate");
    add_ext(cert, NID_subject_key_identifier, "hash");
    add_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (X509_sign(cert, key, EVP_sha256()) <= 0)
        die("cannot sign the CA certificate");
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return cert;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    csr_key = key_from_pem(FUZZ_ECDSA_KEY);
    ca_cert = make_ca();
    return 0;
}

/* use_certs does with the certificates of an answer what the backend and the worker do;
 * serial_dec is the serial asked for, NULL when cfssl chooses. */
static void use_certs(STACK_OF(X509) * certs, const char *serial_dec)
{
    X509 *first = sk_X509_value(certs, 0);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(first);
    char aki_hex[2 * 64 + 1] = "";
    pc_diag_t diag = {{0}};

    /* /info: the CA certificate's key id, for revocations (keep_chain) */
    for (int i = 0; ski != NULL && i < ski->length && i < 64; i++)
        snprintf(aki_hex + 2 * i, 3, "%02x", ski->data[i]);
    /* /sign: the certificate, checked, then into a Result with the CA's chain */
    if (pc_ca_cfssl_check_issued("fuzz", "signing a CSR with profile \"User\"", ca_cert, csr_key,
                                 serial_dec, first, &diag) != PC_OK)
        return;
    STACK_OF(X509) *chain = sk_X509_new_null();
    Pkcs__V1__Result *res = pc_result_new(NULL);
    if (chain != NULL && res != NULL && sk_X509_push(chain, ca_cert) > 0 &&
        pc_result_set_cert(res, first, chain, &diag) == PC_OK) {
        char subject[256], sans[256];
        pc_result_cert_texts(res, subject, sizeof(subject), sans, sizeof(sans));
        size_t len = pkcs__v1__result__get_packed_size(res);
        uint8_t *packed = malloc(len > 0 ? len : 1);
        if (packed != NULL)
            pkcs__v1__result__pack(res, packed);
        free(packed);
    }
    if (res != NULL)
        protobuf_c_message_free_unpacked(&res->base, NULL);
    sk_X509_free(chain); /* ca_cert is borrowed */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_ca_cfssl_reply_t reply;
    pc_diag_t diag = {{0}};
    STACK_OF(X509) *certs = NULL;

    if (size < 1)
        return 0;
    /* the client hands the body over NUL-terminated, in a buffer of its own */
    char *body = malloc(size);
    if (body == NULL)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    long status = statuses[data[0] % 16];
    pc_curl_uv_result_t res = {
        .code = status != 0      ? CURLE_OK
                : (data[0] & 16) ? CURLE_ABORTED_BY_CALLBACK
                                 : CURLE_OPERATION_TIMEDOUT,
        .status = status,
        .body = body,
        .body_len = size - 1,
        .error = status != 0 ? "" : "Timeout was reached",
    };
    pc_ca_cfssl_reply_parse(res.body, res.body_len, &reply);
    pc_ca_cfssl_verdict_t v =
        pc_ca_cfssl_judge("fuzz", "signing a CSR with profile \"User\"", &res, &reply, &diag);
    if (v.err == PC_OK && pc_ca_cfssl_result_certs(&reply, &certs, &diag) == PC_OK) {
        use_certs(certs, (data[0] & 32) ? FUZZ_CFSSL_SERIAL_DEC : NULL);
        sk_X509_pop_free(certs, X509_free);
    }
    pc_ca_cfssl_reply_clear(&reply);
    free(body);
    ERR_clear_error();
    return 0;
}
