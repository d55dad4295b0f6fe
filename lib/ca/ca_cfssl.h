/*
 * ca_cfssl.h - the cfssl backend: a remote CloudFlare cfssl CA ("cfssl serve") over HTTP(S),
 * asynchronous on the worker's libuv loop: every call runs on the loop (libcurl's multi
 * interface) and answers there.
 *
 * Templates are enforced here, before any request is sent; the cfssl profile a template maps
 * to decides what cfssl puts in the certificate (key usages, EKUs, validity). cfssl keeps only
 * some of a CSR: subject attributes C, ST, L, street, postalCode, O, OU, one CN and one
 * serialNumber (in that order, whatever the CSR's order), and DNS, IP and e-mail SANs; a CSR
 * asking for more is refused with PC_ERR_NOT_SUPPORTED rather than issued without it.
 * Loop thread only.
 */
#ifndef PC_CA_CFSSL_H
#define PC_CA_CFSSL_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ca.h"

/* Which cfssl profile signs for a template; a template not listed uses the profile of its own
 * name. */
typedef struct pc_ca_cfssl_profile {
    const char *template_name;
    const char *profile;
} pc_ca_cfssl_profile_t;

typedef struct pc_ca_cfssl_config {
    const char *name; /* CA name requests refer to */
    const char *url;  /* https://host:port of cfssl serve, without the /api/v1/... path */
    /* Accept a plain http:// url: the CSR, the auth token and the certificate then travel
     * unprotected, so this is for a cfssl on the same host or in tests only. The library does
     * not log: a program that sets it says so loudly itself. */
    bool allow_http;
    /* The profiles say "ClientProvidesSerialNumbers": true, so every certificate carries the
     * serial the caller chose (pc_ca_issue_t.serial_hex), recorded before cfssl is asked: a
     * certificate whose answer was lost is then found by its serial, exactly. cfssl reads that
     * Go field name (it has no JSON tag: "client_provides_serial_numbers" is silently ignored),
     * and only a cfssl whose API takes serials honours it (1.6 does; 1.2 drops them). */
    bool client_serials;
    /* Hex key of the cfssl auth_key its profiles name (type "standard"): requests then go to
     * /api/v1/cfssl/authsign with an HMAC-SHA256 token. NULL: /api/v1/cfssl/sign, unsigned. */
    const char *auth_key_hex;
    /* Sent as "label" with every request (multirootca: selects the signer). NULL: the
     * request_id is sent instead, which cfssl serve stores in its certificate database
     * (column ca_label), so that a certificate can be traced back to its request. */
    const char *label;
    const pc_ca_cfssl_profile_t *profiles; /* copied */
    size_t profile_count;
    const char *ca_bundle;       /* PEM CAs to trust for https; NULL: the system's store */
    const char *client_cert;     /* PEM client certificate for mutual TLS; NULL: none */
    const char *client_key;      /* its PEM key, a secret file: readable by its owner only */
    unsigned connect_timeout_ms; /* default 5000 */
    unsigned total_timeout_ms;   /* one attempt, queueing included; default 30000 */
    unsigned max_concurrent;     /* requests in flight to cfssl; default 16 */
    /* Attempts per submit or revoke (1 = no retry; default 3), after a transport error, a
     * timeout, a 5xx or a busy answer, with exponential backoff from retry_base_ms (default
     * 200) up to retry_max_ms (default 5000) and jitter. */
    unsigned attempts;
    unsigned retry_base_ms;
    unsigned retry_max_ms;
    /* Circuit breaker: after breaker_threshold (default 5) failed attempts in a row, requests
     * fail at once with PC_ERR_CA_UNAVAILABLE for breaker_cooldown_ms (default 30000); then
     * one request (or a background probe of /info) tries, and its success closes it. */
    unsigned breaker_threshold;
    unsigned breaker_cooldown_ms;
    pc_ca_template_t **templates; /* the templates (not the array) are taken on success */
    size_t template_count;
} pc_ca_cfssl_config_t;

/* pc_ca_cfssl_new makes the backend and starts fetching the CA's certificate (POST
 * /api/v1/cfssl/info), retrying with backoff until it comes; until then get0_chain returns
 * NULL and submit and revoke fail with PC_ERR_CA_UNAVAILABLE (see pc_ca_cfssl_on_ready). Every
 * certificate cfssl returns must carry the CSR's key and be signed by that CA certificate,
 * else the submit fails with PC_ERR_CRYPTO. *out is the caller's: pc_ca_close, which fails what
 * is pending with PC_ERR_CA_UNAVAILABLE (callbacks run before it returns) and frees the CA in
 * its last close callback; or pc_ca_free, the same without the notice. Either way, run the loop
 * before uv_loop_close(). PC_ERR_INVALID_PARAM naming the bad setting: an http:// url without
 * allow_http, a client key others may read ("chmod 600 FILE"). Loop thread. */
pc_err_t pc_ca_cfssl_new(uv_loop_t *loop, const pc_ca_cfssl_config_t *cfg, pc_ca_t **out,
                         pc_diag_t *diag);

/* Called once: PC_OK when the CA's certificate has been fetched, PC_ERR_CA_UNAVAILABLE when
 * the backend was closed first. */
typedef void (*pc_ca_cfssl_ready_fn)(void *arg, pc_err_t err);

/* pc_ca_cfssl_on_ready calls fn once the chain is known: at once (inside this call) when it is
 * already. Loop thread. */
void pc_ca_cfssl_on_ready(pc_ca_t *ca, pc_ca_cfssl_ready_fn fn, void *arg);

/* Called once with the CA's CRL: der (borrowed for the call) of len bytes, checked to be a CRL
 * the CA signed; or err and diag. */
typedef void (*pc_ca_cfssl_crl_fn)(void *arg, pc_err_t err, const unsigned char *der, size_t len,
                                   const pc_diag_t *diag);

/* pc_ca_cfssl_crl asks cfssl for a CRL made now from its certificate database (GET
 * /api/v1/cfssl/crl, cfssl 1.3 and later), with nextUpdate next_update_hours ahead (0: 24), and
 * calls fn once: on the loop with the answer, or inside this call when it cannot ask (not a
 * cfssl CA: PC_ERR_NOT_SUPPORTED; closing, or the CA certificate not fetched yet:
 * PC_ERR_CA_UNAVAILABLE). Errors: PC_ERR_NOT_SUPPORTED when cfssl has no CRL endpoint (cfssl
 * 1.2), PC_ERR_CA_UNAVAILABLE when cfssl cannot be reached or cannot make one, PC_ERR_BAD_MESSAGE
 * or PC_ERR_CRYPTO when the answer is not a CRL this CA signed; diag names the CA and what to
 * do. Not retried, and not counted by the circuit breaker. Loop thread (ca_cfssl_crl.c). */
void pc_ca_cfssl_crl(pc_ca_t *ca, unsigned next_update_hours, pc_ca_cfssl_crl_fn fn, void *arg);

/* pc_ca_cfssl_requests counts the HTTP requests sent to cfssl so far (metrics, tests). */
unsigned long pc_ca_cfssl_requests(const pc_ca_t *ca);

#endif
