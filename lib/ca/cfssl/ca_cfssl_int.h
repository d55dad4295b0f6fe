/*
 * ca_cfssl_int.h - internals of the cfssl backend shared by its files: ca_cfssl.c (requests,
 * retries, circuit breaker, lifetimes), ca_cfssl_setup.c (configuration) and ca_cfssl_wire.c
 * (cfssl's JSON API as this project speaks it: request bodies, the auth token, replies and what
 * they mean).
 *
 * The wire format follows cfssl 1.2 (Debian's golang-cfssl), checked against a running
 * "cfssl serve":
 *   POST /api/v1/cfssl/sign      {"certificate_request": PEM, "profile": P, "label": L}
 *   POST /api/v1/cfssl/authsign  {"token": base64(HMAC-SHA256(key, R)), "request": base64(R)}
 *                                where R is the sign request above, byte for byte
 *   POST /api/v1/cfssl/info      {"label": L} or {}        -> result.certificate (PEM)
 *   POST /api/v1/cfssl/revoke    {"serial": decimal, "authority_key_id": lower-case hex,
 *                                 "reason": RFC 5280 name}  -> result {}
 * Every answer is {"success": bool, "result": ..., "errors": [{"code", "message"}]}; cfssl
 * answers its own errors with HTTP 400 and a cfssl code (5xxx policy, 9xxx CSR, 11200 "not
 * found" on revoke), authentication failures with 400 "invalid token".
 */
#ifndef PC_CA_CFSSL_INT_H
#define PC_CA_CFSSL_INT_H

#include <stdint.h>

#include <jansson.h>

#include "ca_cfssl.h"
#include "curl_uv.h"

typedef struct op op_t;         /* one request's state machine (ca_cfssl.c) */
typedef struct waiter waiter_t; /* a pc_ca_cfssl_on_ready caller */

/* ---- the backend (ca_cfssl.c, ca_cfssl_setup.c): loop thread only ---- */

/* The backend. */
typedef struct pc_ca_cfssl {
    pc_ca_t base;
    uv_loop_t *loop;
    pc_curl_uv_t *http;
    char *sign_url, *revoke_url, *info_url;
    unsigned char *key; /* auth key, wiped when freed; NULL: unauthenticated /sign */
    size_t key_len;
    char *label;
    char **profile_of; /* pairs: template name, profile name */
    size_t profile_count;
    char *ca_bundle, *client_cert, *client_key;
    pc_curl_uv_tls_t tls;
    unsigned connect_timeout_ms, total_timeout_ms, attempts, retry_base_ms, retry_max_ms;
    unsigned breaker_threshold, breaker_cooldown_ms;

    unsigned failures; /* failed attempts in a row */
    bool open;         /* circuit breaker */
    uint64_t open_until;
    bool probing; /* the one request allowed through a half-open breaker is in flight */
    pc_diag_t last_failure;

    STACK_OF(X509) * chain; /* NULL until fetched; never replaced, so borrowers stay safe */
    char aki_hex[2 * 64 + 1];
    uv_timer_t info_timer; /* the next fetch of the CA certificate, or breaker probe */
    unsigned info_attempt;
    bool info_inflight;
    waiter_t *waiters;

    op_t *ops;
    unsigned long requests;
    uint64_t rng;
    unsigned handles; /* info_timer + the curl_uv client + one timer per op */
    bool closing;
    bool handles_gone;     /* closed: nothing of it is left on the loop */
    bool free_when_closed; /* pc_ca_free came while closing: free when the handles are gone */
    void (*closed)(void *arg);
    void *closed_arg;
} pc_ca_cfssl_t;

/* pc_ca_cfssl_configure checks cfg and copies it into cca (templates excepted: the caller
 * takes them once nothing can fail any more); PC_ERR_INVALID_PARAM naming the bad setting, or
 * PC_ERR_NOMEM. On failure pc_ca_cfssl_clear frees what was copied. */
pc_err_t pc_ca_cfssl_configure(pc_ca_cfssl_t *cca, const pc_ca_cfssl_config_t *cfg,
                               pc_diag_t *diag);

/* pc_ca_cfssl_clear frees the members of cca (not cca), the auth key wiped first. */
void pc_ca_cfssl_clear(pc_ca_cfssl_t *cca);

/* ---- the wire format (ca_cfssl_wire.c): pure functions, any thread ---- */

/* A parsed cfssl answer. */
typedef struct pc_ca_cfssl_reply {
    json_t *root; /* NULL when the body is not a cfssl answer */
    bool success; /* "success": true */
    const json_t *result;
    int code;          /* errors[0].code, 0 when none */
    char message[256]; /* errors[0].message, "" when none */
} pc_ca_cfssl_reply_t;

/* What an answer (or its absence) means for the request and for the CA's health. */
typedef struct pc_ca_cfssl_verdict {
    pc_err_t err;
    bool retry;     /* another attempt may succeed: transport error, timeout, 5xx, busy */
    bool ca_failed; /* counts toward the circuit breaker: the CA did not work */
} pc_ca_cfssl_verdict_t;

/* pc_ca_cfssl_sign_body builds a sign request for csr_pem and profile, with the serial the
 * certificate must carry when serial_dec (decimal) is not NULL; with a key (key_len > 0) it
 * wraps it into an authenticated request. *body is the caller's (free). */
pc_err_t pc_ca_cfssl_sign_body(const char *csr_pem, const char *profile, const char *label,
                               const char *serial_dec, const unsigned char *key, size_t key_len,
                               char **body, pc_diag_t *diag);

/* pc_ca_cfssl_auth_token computes base64(HMAC-SHA256(key, data)) into out (NUL-terminated,
 * size at least 45); false when OpenSSL fails. */
bool pc_ca_cfssl_auth_token(const unsigned char *key, size_t key_len, const void *data, size_t len,
                            char *out, size_t size);

/* pc_ca_cfssl_revoke_body and pc_ca_cfssl_info_body build those requests (label may be NULL). */
pc_err_t pc_ca_cfssl_revoke_body(const char *serial_dec, const char *aki_hex, const char *reason,
                                 char **body, pc_diag_t *diag);
pc_err_t pc_ca_cfssl_info_body(const char *label, char **body, pc_diag_t *diag);

/* pc_ca_cfssl_reply_parse parses body; reply->root stays NULL when it is not cfssl JSON.
 * pc_ca_cfssl_reply_clear frees it. */
void pc_ca_cfssl_reply_parse(const char *body, size_t len, pc_ca_cfssl_reply_t *reply);
void pc_ca_cfssl_reply_clear(pc_ca_cfssl_reply_t *reply);

/* pc_ca_cfssl_judge turns one HTTP outcome into a verdict, and diag into a sentence naming the
 * CA (ca_name), what was being done (what, e.g. "signing with profile \"User\"") and what to
 * do. */
pc_ca_cfssl_verdict_t pc_ca_cfssl_judge(const char *ca_name, const char *what,
                                        const pc_curl_uv_result_t *res,
                                        const pc_ca_cfssl_reply_t *reply, pc_diag_t *diag);

/* pc_ca_cfssl_result_certs parses the PEM certificates of result.certificate, in order;
 * PC_ERR_BAD_MESSAGE when there are none. *certs is the caller's. */
pc_err_t pc_ca_cfssl_result_certs(const pc_ca_cfssl_reply_t *reply, STACK_OF(X509) * *certs,
                                  pc_diag_t *diag);

/* pc_ca_cfssl_check_issued accepts (PC_OK) only what the CA can have issued for a CSR: a
 * certificate cert for csr_key, naming and signed by ca_cert (the CA certificate cfssl gave at
 * start; NULL refuses), with the serial serial_dec (decimal) when not NULL (client_serials).
 * PC_ERR_CRYPTO otherwise, naming the CA (ca_name) and what was being done (what). */
pc_err_t pc_ca_cfssl_check_issued(const char *ca_name, const char *what, X509 *ca_cert,
                                  EVP_PKEY *csr_key, const char *serial_dec, X509 *cert,
                                  pc_diag_t *diag);

/* pc_ca_cfssl_check_csr refuses (PC_ERR_NOT_SUPPORTED) a CSR with subject attributes or SANs
 * cfssl would silently drop, so that no certificate lacks what was asked for. */
pc_err_t pc_ca_cfssl_check_csr(const char *ca_name, X509_REQ *csr, pc_diag_t *diag);

/* pc_ca_cfssl_csr_pem writes csr as PEM; *pem is the caller's (free). */
pc_err_t pc_ca_cfssl_csr_pem(X509_REQ *csr, char **pem, pc_diag_t *diag);

/* pc_ca_cfssl_reason_name is cfssl's name of an RFC 5280 reason, NULL for one it cannot take. */
const char *pc_ca_cfssl_reason_name(pc_revoke_reason_t reason);

#endif
