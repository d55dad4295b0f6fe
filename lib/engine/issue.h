/*
 * issue.h - one ISSUE request through the engine, as explicit stages:
 *
 *   pc_issue_prepare   (loop thread)  render subject, SANs, SID; pick CA; check key spec
 *   pc_issue_keygen    (pool thread)  make the key pair (or pc_issue_set0_key from a key pool)
 *   pc_issue_make_request (pool thread) check the device key; what the CA is asked: the
 *                      parsed request for a CA in this process (pc_ca_takes_requests), a CSR
 *                      signed with the new key for any other
 *   pc_issue_submit    (loop thread)  the CA signs (pool thread for a blocking backend, loop
 *                      thread otherwise)
 *   pc_issue_pack      (pool thread)  PKCS#12 + CMS envelope to the device key; wipes the key
 *   pc_issue_fill_result (any)        certificate, chain, serial, thumbprints into a Result
 *
 * The worker drives these from its state machine; pc_engine_issue_sync runs them in a row.
 */
#ifndef PC_ISSUE_H
#define PC_ISSUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ca.h"
#include "keygen.h"
#include "pc_err.h"
#include "pkcs.pb-c.h"

typedef struct pc_issue pc_issue_t;

/* pc_issue_prepare checks and renders an ISSUE request (borrowed; must outlive the job) for
 * the CA ca (borrowed). *out is the caller's (pc_issue_free). Errors name the field. */
pc_err_t pc_issue_prepare(const Pkcs__V1__Request *req, pc_ca_t *ca, pc_issue_t **out,
                          pc_diag_t *diag);

/* pc_issue_key_spec returns the key the job needs (for picking a pre-generated key). */
const pc_key_spec_t *pc_issue_key_spec(const pc_issue_t *job);

/* pc_issue_keygen generates the job's key pair. Pool thread. */
pc_err_t pc_issue_keygen(pc_issue_t *job, pc_keygen_mode_t mode, pc_diag_t *diag);

/* pc_issue_set0_key gives the job a ready key of its spec (the job takes it). */
void pc_issue_set0_key(pc_issue_t *job, EVP_PKEY *key);

/* pc_issue_make_csr builds the CSR. Pool thread. */
pc_err_t pc_issue_make_csr(pc_issue_t *job, pc_diag_t *diag);

/* pc_issue_make_request builds what the job's CA is asked, after checking the device key: the
 * parsed request when the CA takes those (pc_ca_takes_requests: the local CA), else the CSR
 * (pc_issue_make_csr). Pool thread. */
pc_err_t pc_issue_make_request(pc_issue_t *job, pc_diag_t *diag);

/* pc_issue_has_request tells whether pc_issue_make_request (or _make_csr) has made it. */
bool pc_issue_has_request(const pc_issue_t *job);

/* pc_issue_submit asks the job's CA to sign what pc_issue_make_request made; done as for
 * pc_ca_submit, whose threads it follows. The job must outlive the callback. */
void pc_issue_submit(pc_issue_t *job, pc_ca_done_fn done, void *arg);

/* pc_issue_submit_sync is pc_issue_submit for a CA opened without a loop (tools, benchmarks);
 * *cert is the caller's. */
pc_err_t pc_issue_submit_sync(pc_issue_t *job, X509 **cert, pc_diag_t *diag);

/* pc_issue_intent writes the job's intent record into buf: the CA name and the SHA-256 of the
 * new public key ("ca=local spki_sha256=AB12..."), stored in Redis before the CA is asked, so
 * that a worker taking the request over knows a certificate may exist; once the CA signed,
 * also the serial (" serial=0A1B..."), for CAs that cannot look certificates up by request. */
pc_err_t pc_issue_intent(const pc_issue_t *job, char *buf, size_t len, pc_diag_t *diag);

/* pc_issue_claim_intent writes into buf the intent a claim can record before any work, and
 * tells whether ca allows one: a CA that finds what it signed by request and picks its own
 * serials (the local CA) needs only its name ("ca=local"), since a successor asks it for every
 * certificate of the request; the new key's hash adds nothing. That saves the request its INTENT
 * round trip. False for other CAs (their intent names a key or a serial: pc_issue_intent). */
bool pc_issue_claim_intent(const pc_ca_t *ca, char *buf, size_t len);

/* What an intent record says (pc_issue_intent_read). */
typedef struct pc_issue_intent {
    char ca[128];    /* the CA that was to be asked */
    char serial[64]; /* what it signed, when the record says; "" otherwise */
} pc_issue_intent_t;

/* pc_issue_intent_read parses an intent record (outside bytes: it comes from Redis); false when
 * it names no CA. */
bool pc_issue_intent_read(const unsigned char *intent, size_t len, pc_issue_intent_t *out);

/* pc_issue_choose_serial picks a new random serial for the certificate when its CA takes its
 * callers' serials (pc_ca_takes_serial; otherwise it does nothing): called before each intent
 * that precedes asking the CA, so that the intent names what the CA may sign. PC_ERR_CRYPTO
 * when no random bytes are to be had. */
pc_err_t pc_issue_choose_serial(pc_issue_t *job, pc_diag_t *diag);

/* pc_issue_serial writes the serial of the signed certificate (canonical hex) into buf, or
 * before that the serial chosen for it (pc_issue_choose_serial); false when neither is known. */
bool pc_issue_serial(const pc_issue_t *job, char *buf, size_t len);

/* pc_issue_get0_csr / pc_issue_get0_request / pc_issue_ca_params give what the CA submission
 * needs (borrowed): the CSR is NULL when the CA takes parsed requests, the parsed request NULL
 * when it takes CSRs (or before pc_issue_make_request). */
X509_REQ *pc_issue_get0_csr(const pc_issue_t *job);
const pc_ca_request_t *pc_issue_get0_request(const pc_issue_t *job);
const pc_ca_issue_t *pc_issue_ca_params(const pc_issue_t *job);
pc_ca_t *pc_issue_get0_ca(const pc_issue_t *job);

/* pc_issue_get0_cert is the certificate the CA signed (borrowed), NULL before it did. */
const X509 *pc_issue_get0_cert(const pc_issue_t *job);

/* pc_issue_set0_cert hands the job the certificate the CA signed (the job takes it). Checks
 * that it carries the job's public key (for a parsed request: the same SubjectPublicKeyInfo
 * bytes): PC_ERR_CRYPTO otherwise. Encodes it once for pc_issue_pack and pc_issue_fill_result. */
pc_err_t pc_issue_set0_cert(pc_issue_t *job, X509 *cert, pc_diag_t *diag);

/* pc_issue_pack builds the PKCS#12 and envelopes it to the device key; the private key and the
 * plain PKCS#12 are wiped and freed before it returns. Pool thread. */
pc_err_t pc_issue_pack(pc_issue_t *job, pc_diag_t *diag);

/* pc_issue_fill_result sets status ISSUED and the certificate fields of res (allocated with
 * malloc, freed by protobuf_c_message_free_unpacked). */
pc_err_t pc_issue_fill_result(const pc_issue_t *job, Pkcs__V1__Result *res, pc_diag_t *diag);

/* pc_issue_free wipes and frees the job (NULL allowed). */
void pc_issue_free(pc_issue_t *job);

#endif
