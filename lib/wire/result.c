/*
 * result.c - building Result messages. Every field is allocated with malloc so that
 * protobuf_c_message_free_unpacked(..., NULL) frees a Result we built exactly like one it
 * unpacked. Any thread.
 */
#include "result.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "request.h"
#include "san.h"
#include "subject.h"

static pc_err_t set_string(char **dst, const char *src)
{
    char *copy = strdup(src == NULL ? "" : src);
    if (copy == NULL)
        return PC_ERR_NOMEM;
    if (*dst != NULL && *dst != protobuf_c_empty_string)
        free(*dst);
    *dst = copy;
    return PC_OK;
}

pc_err_t pc_result_set_bytes(ProtobufCBinaryData *dst, const unsigned char *src, size_t len)
{
    unsigned char *copy = malloc(len == 0 ? 1 : len);
    if (copy == NULL)
        return PC_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, src, len);
    free(dst->data);
    dst->data = copy;
    dst->len = len;
    return PC_OK;
}

Pkcs__V1__Result *pc_result_new(const Pkcs__V1__Request *req)
{
    Pkcs__V1__Result *res = malloc(sizeof(*res));
    if (res == NULL)
        return NULL;
    pkcs__v1__result__init(res);
    res->schema_version = PC_SCHEMA_VERSION;
    if (req == NULL)
        return res;
    res->kind = req->kind;
    if (set_string(&res->request_id, req->request_id) != PC_OK ||
        set_string(&res->tenant_id, req->tenant_id) != PC_OK ||
        set_string(&res->user_id, req->user_id) != PC_OK ||
        set_string(&res->device_id, req->device_id) != PC_OK) {
        protobuf_c_message_free_unpacked(&res->base, NULL);
        return NULL;
    }
    return res;
}

Pkcs__V1__ErrorCode pc_result_error_code(pc_err_t err)
{
    switch (err) {
    case PC_OK:
        return PKCS__V1__ERROR_CODE__ERROR_CODE_NONE;
    case PC_ERR_BAD_MESSAGE:
        return PKCS__V1__ERROR_CODE__BAD_MESSAGE;
    case PC_ERR_INVALID_PARAM:
        return PKCS__V1__ERROR_CODE__INVALID_PARAMETERS;
    case PC_ERR_POLICY:
        return PKCS__V1__ERROR_CODE__POLICY_VIOLATION;
    case PC_ERR_CRYPTO:
        return PKCS__V1__ERROR_CODE__CRYPTO_FAILURE;
    case PC_ERR_NOT_FOUND:
        return PKCS__V1__ERROR_CODE__CERTIFICATE_NOT_FOUND;
    case PC_ERR_CONFLICT:
        return PKCS__V1__ERROR_CODE__CONFLICT;
    case PC_ERR_NOT_SUPPORTED:
        return PKCS__V1__ERROR_CODE__NOT_SUPPORTED;
    case PC_ERR_TOO_LARGE:
        return PKCS__V1__ERROR_CODE__TOO_LARGE;
    case PC_ERR_UNAUTHENTICATED:
        return PKCS__V1__ERROR_CODE__UNAUTHENTICATED;
    case PC_ERR_EXPIRED:
        return PKCS__V1__ERROR_CODE__DEADLINE_EXCEEDED;
    case PC_ERR_CA_UNAVAILABLE:
        return PKCS__V1__ERROR_CODE__CA_UNAVAILABLE;
    case PC_ERR_CA_BUSY:
        return PKCS__V1__ERROR_CODE__CA_BUSY;
    case PC_ERR_CA_AUTH:
        return PKCS__V1__ERROR_CODE__AUTHENTICATION;
    case PC_ERR_DEPENDENCY:
        return PKCS__V1__ERROR_CODE__DEPENDENCY_DOWN;
    default:
        return PKCS__V1__ERROR_CODE__INTERNAL;
    }
}

pc_err_t pc_result_set_error(Pkcs__V1__Result *res, pc_err_t err, const pc_diag_t *diag)
{
    res->status = PKCS__V1__STATUS__FAILED;
    res->error_code = pc_result_error_code(err);
    res->retryable = pc_err_retryable(err);
    const char *text = diag != NULL && diag->msg[0] != '\0' ? diag->msg : pc_strerror(err);
    return set_string(&res->error_message, text);
}

static pc_err_t hex_digest(const EVP_MD *md, const unsigned char *der, size_t len, char **out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_Digest(der, len, digest, &dlen, md, NULL))
        return PC_ERR_CRYPTO;
    char *hex = malloc((size_t)dlen * 2 + 1);
    if (hex == NULL)
        return PC_ERR_NOMEM;
    static const char digits[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < dlen; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[2 * dlen] = '\0';
    if (*out != protobuf_c_empty_string)
        free(*out);
    *out = hex;
    return PC_OK;
}

static int64_t asn1_time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static pc_err_t set_serial(Pkcs__V1__Result *res, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn == NULL ? NULL : BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL)
        return PC_ERR_NOMEM;
    pc_err_t err = set_string(&res->serial_number, hex);
    OPENSSL_free(hex);
    return err;
}

static pc_err_t set_issuer(Pkcs__V1__Result *res, X509 *cert)
{
    char text[1024];
    if (!pc_name_text(X509_get_issuer_name(cert), text, sizeof(text)))
        return PC_ERR_CRYPTO;
    return set_string(&res->issuer, text);
}

static pc_err_t der_of(X509 *cert, ProtobufCBinaryData *dst)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        return PC_ERR_CRYPTO;
    pc_err_t err = pc_result_set_bytes(dst, der, (size_t)len);
    OPENSSL_free(der);
    return err;
}

static pc_err_t set_chain(Pkcs__V1__Result *res, STACK_OF(X509) * chain)
{
    int n = chain == NULL ? 0 : sk_X509_num(chain);
    if (n == 0)
        return PC_OK;
    res->chain = calloc((size_t)n, sizeof(*res->chain));
    if (res->chain == NULL)
        return PC_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        pc_err_t err = der_of(sk_X509_value(chain, i), &res->chain[i]);
        if (err != PC_OK)
            return err;
        res->n_chain = (size_t)i + 1;
    }
    return PC_OK;
}

pc_err_t pc_result_set_cert(Pkcs__V1__Result *res, X509 *cert, STACK_OF(X509) * chain,
                            pc_diag_t *diag)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the certificate for the result");
    pc_err_t err = pc_result_set_cert_encoded(res, cert, der, (size_t)len, chain, diag);
    OPENSSL_free(der);
    return err;
}

pc_err_t pc_result_set_cert_encoded(Pkcs__V1__Result *res, X509 *cert, const unsigned char *der,
                                    size_t len, STACK_OF(X509) * chain, pc_diag_t *diag)
{
    pc_err_t err;
    if ((err = pc_result_set_bytes(&res->certificate, der, len)) != PC_OK ||
        (err = hex_digest(EVP_sha1(), res->certificate.data, res->certificate.len,
                          &res->thumbprint_sha1)) != PC_OK ||
        (err = hex_digest(EVP_sha256(), res->certificate.data, res->certificate.len,
                          &res->thumbprint_sha256)) != PC_OK ||
        (err = set_serial(res, cert)) != PC_OK || (err = set_issuer(res, cert)) != PC_OK ||
        (err = set_chain(res, chain)) != PC_OK)
        return pc_fail(diag, err, "could not put the certificate into the result: %s",
                       pc_strerror(err));
    res->not_before_ms = asn1_time_ms(X509_get0_notBefore(cert));
    res->not_after_ms = asn1_time_ms(X509_get0_notAfter(cert));
    return PC_OK;
}

static Pkcs__V1__CertificateRef *ref_new(const char *ca, const char *serial)
{
    Pkcs__V1__CertificateRef *ref = malloc(sizeof(*ref));
    if (ref == NULL)
        return NULL;
    pkcs__v1__certificate_ref__init(ref);
    if (set_string(&ref->ca_name, ca) != PC_OK ||
        set_string(&ref->serial_number, serial) != PC_OK) {
        protobuf_c_message_free_unpacked(&ref->base, NULL);
        return NULL;
    }
    return ref;
}

pc_err_t pc_result_add_revoked(Pkcs__V1__Result *res, const char *ca, const char *serial)
{
    Pkcs__V1__CertificateRef **grown =
        realloc(res->revoked, (res->n_revoked + 1) * sizeof(*res->revoked));
    if (grown == NULL)
        return PC_ERR_NOMEM;
    res->revoked = grown;
    if ((res->revoked[res->n_revoked] = ref_new(ca, serial)) == NULL)
        return PC_ERR_NOMEM;
    res->n_revoked++;
    return PC_OK;
}

pc_err_t pc_result_set_renews(Pkcs__V1__Result *res, const char *ca, const char *serial)
{
    Pkcs__V1__CertificateRef *ref = ref_new(ca, serial);
    if (ref == NULL)
        return PC_ERR_NOMEM;
    if (res->renews != NULL)
        protobuf_c_message_free_unpacked(&res->renews->base, NULL);
    res->renews = ref;
    return PC_OK;
}

void pc_cert_texts(const X509 *cert, char *subject, size_t subject_len, char *sans, size_t sans_len)
{
    subject[0] = sans[0] = '\0';
    if (cert != NULL) {
        pc_name_text(X509_get_subject_name(cert), subject, subject_len);
        pc_san_text(cert, sans, sans_len);
    }
}

void pc_result_cert_texts(const Pkcs__V1__Result *res, char *subject, size_t subject_len,
                          char *sans, size_t sans_len)
{
    const unsigned char *p = res->certificate.data;
    X509 *cert = res->certificate.len > 0 ? d2i_X509(NULL, &p, (long)res->certificate.len) : NULL;
    pc_cert_texts(cert, subject, subject_len, sans, sans_len);
    X509_free(cert);
}

pc_err_t pc_result_open(const unsigned char *msg, size_t len, Pkcs__V1__SignedResult **sealed,
                        Pkcs__V1__Result **res, pc_diag_t *diag)
{
    /* A bare Result starts with schema_version, a varint as field 1, where a SignedResult has
     * bytes: one never decodes as the other. */
    *sealed = pkcs__v1__signed_result__unpack(NULL, len, msg);
    if (*sealed != NULL && (*sealed)->result.len > 0) {
        *res = pkcs__v1__result__unpack(NULL, (*sealed)->result.len, (*sealed)->result.data);
    } else {
        if (*sealed != NULL)
            pkcs__v1__signed_result__free_unpacked(*sealed, NULL);
        *sealed = NULL;
        *res = pkcs__v1__result__unpack(NULL, len, msg);
    }
    if (*res != NULL)
        return PC_OK;
    if (*sealed != NULL)
        pkcs__v1__signed_result__free_unpacked(*sealed, NULL);
    if (*res != NULL)
        pkcs__v1__result__free_unpacked(*res, NULL);
    *sealed = NULL;
    *res = NULL;
    return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                   "not a pkcs.v1.SignedResult or Result (%zu bytes); is this the results topic?",
                   len);
}
