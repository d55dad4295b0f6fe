/*
 * ca_int.h - internals of the local CA shared by its files: ca_local.c (the backend: issue,
 * revoke), ca_local_setup.c (load or generate the CA key and certificate, the state folder's
 * files), ca_local_crl.c and ca_local_ocsp.c (the OCSP responder and its certificate).
 */
#ifndef PC_CA_INT_H
#define PC_CA_INT_H

#include <pthread.h>
#include <time.h>

#include "ca_index.h"
#include "ca_local.h"

/* What signing a parsed request reuses, built once per CA (ca_local_direct.c). */
typedef struct pc_ca_local_direct pc_ca_local_direct_t;

/* The local CA. Everything but the index and the loop's bookkeeping is read-only once
 * pc_ca_local_new returns, so that pool threads can sign with it at once. */
typedef struct pc_ca_local {
    pc_ca_t base;
    X509 *cert;                /* the CA's certificate */
    EVP_PKEY *key;             /* the CA's private key (a handle to it when in a token) */
    ENGINE *engine;            /* the pkcs11 engine holding key; NULL for a key from a file */
    pthread_mutex_t sign_lock; /* orders signatures with a token key (ca_local_token.c) */
    STACK_OF(X509) * chain;    /* cert first, then the chain that followed it in its file */
    ASN1_OCTET_STRING *keyid;  /* the CA's subject key id: AKI of all it signs */
    const EVP_MD *md;          /* digest of the CA's signatures */
    char *crl_url;             /* NULL when not configured */
    char *aia_url;             /* NULL when not configured */
    char *ocsp_url;            /* NULL when not configured */
    pc_ca_index_t *index;
    pc_ca_local_direct_t *direct; /* read-only once built, like the key */
    uint64_t record_retry_us;     /* how long recording a signed certificate is retried */
    char *state_dir;
    char *key_passphrase; /* encrypts the OCSP responder's key on disk; wiped when freed */
    /* The delegated OCSP responder (ca_local_ocsp.c), made or renewed while the CA runs: its
     * fields are guarded by ocsp_lock; one thread at a time renews, holding ocsp_renew_lock. */
    pthread_mutex_t ocsp_lock;
    pthread_mutex_t ocsp_renew_lock;
    X509 *ocsp_cert;
    EVP_PKEY *ocsp_key;
    time_t ocsp_renew_at;  /* when a third of its validity is left */
    time_t ocsp_not_after; /* when it stops being usable at all */
    time_t ocsp_retry_at;  /* after a failed renewal, the next attempt */
    /* Loop thread: the loop's Redis client that records what the pool signed (NULL: the pool
     * thread records, blocking), calls in the thread pool or being recorded, and who waits for
     * them to answer (close). */
    pc_redis_t *records;
    bool closing;
    unsigned pending;
    void (*closed)(void *arg);
    void *closed_arg;
} pc_ca_local_t;

/* pc_ca_local_setup fills lca's cert, key, chain, keyid and md from cfg: cert_file/key_file,
 * else state_dir/ca.crt + ca.key, else a new CA generated into state_dir. Holds the flock
 * state_dir/lock while it looks and writes, so that concurrent first starts agree on one CA. */
pc_err_t pc_ca_local_setup(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg, pc_diag_t *diag);

/* pc_ca_local_load_key reads the encrypted PEM private key at path with pass into *key (the
 * caller's); an unencrypted key is refused. PC_ERR_IO, PC_ERR_CRYPTO, PC_ERR_INVALID_PARAM. */
pc_err_t pc_ca_local_load_key(const char *path, const char *pass, EVP_PKEY **key, pc_diag_t *diag);

/* pc_ca_local_write_pair writes key (encrypted PKCS#8 under pass, 0600) to key_path, then cert
 * (0644) to cert_path, each through a temporary file renamed into place, and syncs dir. The
 * caller holds the state folder's lock. PC_ERR_IO naming the file. */
pc_err_t pc_ca_local_write_pair(const char *dir, const char *key_path, EVP_PKEY *key,
                                const char *cert_path, X509 *cert, const char *pass,
                                pc_diag_t *diag);

/* pc_ca_local_lock_state takes the flock on state_dir/lock (blocking) so that processes sharing
 * the folder agree on what it holds; *fd is released with pc_ca_local_unlock_state. */
pc_err_t pc_ca_local_lock_state(const char *state_dir, int *fd, pc_diag_t *diag);
void pc_ca_local_unlock_state(int fd);

/* pc_ca_local_state_path writes state_dir/name into out. PC_ERR_INVALID_PARAM when too long. */
pc_err_t pc_ca_local_state_path(const char *state_dir, const char *name, char *out, size_t size,
                                pc_diag_t *diag);

/* pc_ca_local_token_key loads the private key cfg->key_uri names through OpenSSL's pkcs11
 * engine (module cfg->key_module, logging in with cfg->key_pin): *key is a handle, the key
 * stays in the token; *engine (pc_ca_local_token_release, after freeing *key) keeps the engine
 * loaded. PC_ERR_DEPENDENCY when the engine is not installed, PC_ERR_CRYPTO naming the URI (never
 * the PIN) when the token refuses. ca_local_token.c. */
pc_err_t pc_ca_local_token_key(const pc_ca_local_config_t *cfg, EVP_PKEY **key, ENGINE **engine,
                               pc_diag_t *diag);
void pc_ca_local_token_release(ENGINE *engine);

/* pc_ca_local_sign_cert and pc_ca_local_sign_crl sign with the CA key and md (NULL: lca->md),
 * one at a time when the key is in a token (whose sessions the engine shares between threads);
 * > 0 on success, as X509_sign. Every signature with the CA key goes through them. Any
 * thread. */
int pc_ca_local_sign_cert(pc_ca_local_t *lca, X509 *cert, const EVP_MD *md);
int pc_ca_local_sign_crl(pc_ca_local_t *lca, X509_CRL *crl);

/* pc_ca_local_ocsp_clear frees the responder's certificate and key (ca_local_ocsp.c). */
void pc_ca_local_ocsp_clear(pc_ca_local_t *lca);

/* pc_ca_local_key_id computes the RFC 5280 method-1 key id (SHA-1 of the public key bits) of
 * cert; caller frees. */
ASN1_OCTET_STRING *pc_ca_local_key_id(X509 *cert);

/* pc_ca_local_set_serial gives cert a fresh random serial: 20 octets with the top bit clear,
 * so positive, at least 64 random bits, never zero. PC_ERR_CRYPTO when the RNG fails. */
pc_err_t pc_ca_local_set_serial(X509 *cert, pc_diag_t *diag);

/* pc_ca_local_extension_model (ca_local.c) makes a certificate holding exactly the extensions
 * the CA adds to every certificate it signs from a CSR that asks for none (basicConstraints,
 * key ids, CRL and AIA URLs), in their order, its SKI being that of the CA's own key: what
 * ca_local_direct.c copies once, so that both ways of signing certify the same. *out is the
 * caller's. */
pc_err_t pc_ca_local_extension_model(const pc_ca_local_t *lca, X509 **out, pc_diag_t *diag);

/* pc_ca_local_new_cert (ca_local.c) starts the certificate lca signs for subject and key, from
 * a CSR or a parsed request alike: version 3, the CA as issuer, a fresh serial, notBefore now
 * less the clock skew allowed and notAfter days from now (PC_ERR_POLICY when it would outlive
 * the CA's certificate). Extensions and the signature are the caller's, and so is *out. Any
 * thread. */
pc_err_t pc_ca_local_new_cert(const pc_ca_local_t *lca, const X509_NAME *subject, EVP_PKEY *key,
                              unsigned days, X509 **out, pc_diag_t *diag);

/* pc_ca_local_direct_new builds what signing a parsed request reuses from lca's certificate, key
 * and URLs; *out is the caller's (pc_ca_local_direct_free). Once, on the thread that creates the
 * CA. */
pc_err_t pc_ca_local_direct_new(const pc_ca_local_t *lca, pc_ca_local_direct_t **out,
                                pc_diag_t *diag);

/* pc_ca_local_direct_free frees d (NULL allowed). */
void pc_ca_local_direct_free(pc_ca_local_direct_t *d);

/* pc_ca_local_sign_request builds and signs (with lca's key, wherever it lives) the certificate
 * for a request that passed pc_ca_template_check_request: the same certificate sign_csr makes
 * from a CSR asking for the same. *out is the caller's. Any thread. */
pc_err_t pc_ca_local_sign_request(pc_ca_local_t *lca, const pc_ca_request_t *req, unsigned days,
                                  X509 **out, pc_diag_t *diag);

/* pc_ca_local_from is lca when ca is a local CA, else NULL. */
pc_ca_local_t *pc_ca_local_from(pc_ca_t *ca);

#endif
