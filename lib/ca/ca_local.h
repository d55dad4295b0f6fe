/*
 * ca_local.h - the local CA: an in-process OpenSSL CA, the embedded default backend.
 */
#ifndef PC_CA_LOCAL_H
#define PC_CA_LOCAL_H

#include "ca.h"
#include "redis.h"

typedef struct pc_ca_local_config {
    uv_loop_t *loop;            /* calls run on its thread pool; NULL: inside each call (tools) */
    const char *name;           /* CA name requests refer to, e.g. "local" */
    const char *state_dir;      /* where a generated CA key and certificate live */
    const char *cert_file;      /* optional PEM: use this CA certificate (+ chain after it) */
    const char *key_file;       /* optional PEM private key (encrypted with key_passphrase) */
    const char *key_passphrase; /* protects the CA key on disk; required */
    /* Or the CA key in a PKCS#11 token, where it stays: an RFC 7512 URI
     * ("pkcs11:token=...;object=...;type=private") used through OpenSSL's pkcs11 engine;
     * cert_file (the CA certificate) is then required, and key_passphrase still protects the
     * OCSP responder's key on disk. */
    const char *key_uri;
    const char *key_pin;    /* the token's user PIN (borrowed; the caller wipes it) */
    const char *key_module; /* the PKCS#11 module (.so); NULL: the engine's default, p11-kit */
    const char *subject;    /* subject of a generated CA, default "CN=PKCS Connector Local CA" */
    const char *crl_url;    /* CRL distribution point put in issued certs, may be NULL */
    const char *aia_url;    /* AIA caIssuers URL put in issued certs, may be NULL */
    const char *ocsp_url;   /* AIA OCSP responder URL put in issued certs, may be NULL */
    /* Where the records of issued and revoked certificates live: this Redis, shared by the
     * cluster; NULL: state_dir/index.txt, for a process outside any cluster (offline). */
    const pc_redis_config_t *redis;
    pc_ca_template_t **templates; /* the templates (not the array) are taken on success */
    size_t template_count;
} pc_ca_local_config_t;

/* pc_ca_local_new loads the CA from cert_file/key_file, or cert_file/key_uri (a token), or from
 * state_dir, or generates a new one (P-256, 10 years) into state_dir with the key encrypted
 * (AES-256, PKCS#8) under key_passphrase. Redis is not contacted until the CA first needs its
 * records. *out is the caller's (pc_ca_free). PC_ERR_IO / PC_ERR_CRYPTO with the file or
 * token and what to do; PC_ERR_DEPENDENCY when the token cannot be used (no pkcs11 engine). */
pc_err_t pc_ca_local_new(const pc_ca_local_config_t *cfg, pc_ca_t **out, pc_diag_t *diag);

/* pc_ca_local_attach_redis has ca record what it signs through redis, the loop's client for the
 * Redis of cfg->redis, instead of on the pool thread that signed: the thread is free once the
 * signature is made, and a Redis outage no longer holds it in the record's retries. redis is
 * borrowed: it must stay open until pc_ca_close has been called (a signature that ends after
 * that is not recorded, and not handed out). No-op for a CA that is not local, keeps its records
 * in a file or runs without a loop. Loop thread, before the first submit. */
void pc_ca_local_attach_redis(pc_ca_t *ca, pc_redis_t *redis);

/* pc_ca_local_crl returns a freshly signed CRL (DER, caller frees with OPENSSL_free) listing
 * every revoked certificate with its reason and time, with a CRL number and nextUpdate
 * (next_update_hours from now). */
pc_err_t pc_ca_local_crl(pc_ca_t *ca, unsigned next_update_hours, unsigned char **der, size_t *len,
                         pc_diag_t *diag);

/* pc_ca_local_ocsp answers one OCSP request (RFC 6960, DER request_der of len bytes) from the
 * CA's records: each CertID must name this CA (issuer name and key hash); a serial it never
 * issued is unknown, a revoked one revoked with its time and reason, any other good; the nonce
 * is echoed; thisUpdate is now and nextUpdate an hour ahead; signed by the CA's delegated
 * responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, 30 days, renewed when a third
 * is left; its key encrypted under key_passphrase in state_dir), which the response includes.
 * *response_der (caller frees with OPENSSL_free) is an OCSPResponse to send whenever one could
 * be encoded, also on error: PC_OK successful; PC_ERR_BAD_MESSAGE malformedRequest (diag says
 * why); PC_ERR_NOT_FOUND unauthorized (a CertID names another CA); PC_ERR_DEPENDENCY tryLater
 * (the records cannot be read now); PC_ERR_IO / PC_ERR_CRYPTO internalError (no responder
 * certificate). No response: PC_ERR_NOT_SUPPORTED (ca is not a local CA), PC_ERR_NOMEM. Pool
 * thread (blocks on the records); many at once. */
pc_err_t pc_ca_local_ocsp(pc_ca_t *ca, const unsigned char *request_der, size_t len,
                          unsigned char **response_der, size_t *response_len, pc_diag_t *diag);

/* pc_ca_local_ocsp_prepare makes sure the CA has a usable OCSP responder certificate: loads it
 * from state_dir, or has the CA issue (and record) a new one when it is missing, not this CA's,
 * or near its end. pc_ca_local_ocsp does the same when needed; a responder calls this at start
 * so that a problem shows at once. Errors name the file or dependency. Pool thread. */
pc_err_t pc_ca_local_ocsp_prepare(pc_ca_t *ca, pc_diag_t *diag);

/* pc_ca_local_revoked_count returns how many certificates the CA has revoked (one Redis
 * command): a publisher compares it with the count at its last CRL. */
pc_err_t pc_ca_local_revoked_count(pc_ca_t *ca, uint64_t *count, pc_diag_t *diag);

#endif
