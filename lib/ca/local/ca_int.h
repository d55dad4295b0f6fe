/*
 * ca_int.h - internals of the local CA shared by its files: ca_local.c (the backend: issue,
 * revoke), ca_local_setup.c (load or generate the CA key and certificate) and ca_local_crl.c.
 */
#ifndef PC_CA_INT_H
#define PC_CA_INT_H

#include "ca_index.h"
#include "ca_local.h"

/* What signing a parsed request reuses, built once per CA (ca_local_direct.c). */
typedef struct pc_ca_local_direct pc_ca_local_direct_t;

/* The local CA. Everything but the index and the loop's bookkeeping is read-only once
 * pc_ca_local_new returns, so that pool threads can sign with it at once. */
typedef struct pc_ca_local {
    pc_ca_t base;
    X509 *cert;               /* the CA's certificate */
    EVP_PKEY *key;            /* the CA's private key */
    STACK_OF(X509) * chain;   /* cert first, then the chain that followed it in its file */
    ASN1_OCTET_STRING *keyid; /* the CA's subject key id: AKI of all it signs */
    const EVP_MD *md;         /* digest of the CA's signatures */
    char *crl_url;            /* NULL when not configured */
    char *aia_url;            /* NULL when not configured */
    pc_ca_index_t *index;
    pc_ca_local_direct_t *direct; /* read-only once built, like the key */
    uint64_t record_retry_us;     /* how long recording a signed certificate is retried */
    /* Loop thread: calls in the thread pool, and who waits for them to answer (close). */
    unsigned pending;
    void (*closed)(void *arg);
    void *closed_arg;
} pc_ca_local_t;

/* pc_ca_local_setup fills lca's cert, key, chain, keyid and md from cfg: cert_file/key_file,
 * else state_dir/ca.crt + ca.key, else a new CA generated into state_dir. Holds the flock
 * state_dir/lock while it looks and writes, so that concurrent first starts agree on one CA. */
pc_err_t pc_ca_local_setup(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg, pc_diag_t *diag);

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

/* pc_ca_local_set_validity (ca_local.c) sets notBefore (now, less the clock skew allowed) and
 * notAfter (days from now); PC_ERR_POLICY when the certificate would outlive the CA's. */
pc_err_t pc_ca_local_set_validity(const pc_ca_local_t *lca, X509 *cert, unsigned days,
                                  pc_diag_t *diag);

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
pc_err_t pc_ca_local_sign_request(const pc_ca_local_t *lca, const pc_ca_request_t *req,
                                  unsigned days, X509 **out, pc_diag_t *diag);

/* pc_ca_local_from is lca when ca is a local CA, else NULL. */
pc_ca_local_t *pc_ca_local_from(pc_ca_t *ca);

#endif
