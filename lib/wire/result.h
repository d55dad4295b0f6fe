/*
 * result.h - Result messages: allocation that protobuf_c_message_free_unpacked can free, the
 * outcome fields common to every kind, and the certificate fields. Any thread.
 */
#ifndef PC_RESULT_H
#define PC_RESULT_H

#include <stdint.h>

#include <openssl/x509.h>

#include "pc_err.h"
#include "pkcs.pb-c.h"

/* pc_result_new returns a Result with the identity fields copied from req (which may be NULL
 * for a message that could not be decoded); NULL when out of memory. Free with
 * protobuf_c_message_free_unpacked(&res->base, NULL). */
Pkcs__V1__Result *pc_result_new(const Pkcs__V1__Request *req);

/* pc_result_set_error marks res FAILED with the code of err and the text of diag. */
pc_err_t pc_result_set_error(Pkcs__V1__Result *res, pc_err_t err, const pc_diag_t *diag);

/* pc_result_error_code maps a pc_err_t to the wire error code. */
Pkcs__V1__ErrorCode pc_result_error_code(pc_err_t err);

/* pc_result_set_cert fills certificate, chain, serial, issuer, thumbprints and validity. */
pc_err_t pc_result_set_cert(Pkcs__V1__Result *res, X509 *cert, STACK_OF(X509) * chain,
                            pc_diag_t *diag);
/* pc_result_set_cert_encoded is pc_result_set_cert for a caller that holds cert's DER (der,
 * len: what i2d_X509 gives for cert), which the Result carries as is. */
pc_err_t pc_result_set_cert_encoded(Pkcs__V1__Result *res, X509 *cert, const unsigned char *der,
                                    size_t len, STACK_OF(X509) * chain, pc_diag_t *diag);

/* pc_result_add_revoked appends {ca, serial} to res->revoked; pc_result_set_renews sets
 * res->renews. PC_ERR_NOMEM. */
pc_err_t pc_result_add_revoked(Pkcs__V1__Result *res, const char *ca, const char *serial);
pc_err_t pc_result_set_renews(Pkcs__V1__Result *res, const char *ca, const char *serial);

/* pc_cert_texts writes cert's subject (RFC 2253) and SANs ("DNS:a, email:b") into the buffers
 * ("" for cert NULL). pc_result_cert_texts does it for res's certificate ("" when there is none
 * or it does not parse); it decodes the DER, which in OpenSSL 3.0 costs as much as a signature
 * (the public key goes through the provider's decoder): where the X509 is at hand, use it. */
void pc_cert_texts(const X509 *cert, char *subject, size_t subject_len, char *sans,
                   size_t sans_len);
void pc_result_cert_texts(const Pkcs__V1__Result *res, char *subject, size_t subject_len,
                          char *sans, size_t sans_len);

/* pc_result_open reads a message of the results topic (or a stored result): a SignedResult into
 * *sealed with its Result into *res, or, from workers older than signed results, a bare Result
 * into *res with *sealed NULL. The caller frees both with protobuf_c_message_free_unpacked
 * (NULL allowed); checking the signature is pc_auth_verify_result's. PC_ERR_BAD_MESSAGE when
 * it is neither. Any thread. */
pc_err_t pc_result_open(const unsigned char *msg, size_t len, Pkcs__V1__SignedResult **sealed,
                        Pkcs__V1__Result **res, pc_diag_t *diag);

/* pc_result_set_bytes copies len bytes into a ProtobufCBinaryData (malloc). */
pc_err_t pc_result_set_bytes(ProtobufCBinaryData *dst, const unsigned char *src, size_t len);

#endif
