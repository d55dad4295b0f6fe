/*
 * ca.h - the certification-authority backend interface, and certificate templates.
 *
 * One small vtable shared by every backend (local: in-process OpenSSL CA; cfssl and others
 * later), one file per backend. Template policy is checked here, before any backend signs.
 * A backend whose ops->blocking is true does its work on the calling thread (call it from a pool
 * thread); otherwise it runs on the loop thread and calls back there later.
 */
#ifndef PC_CA_H
#define PC_CA_H

#include <stdbool.h>

#include <openssl/x509v3.h>

#include "pc_err.h"

/* Policy of one certificate template, as a CA administrator sets it. */
typedef struct pc_ca_template {
    char *name;
    char **allowed_ekus; /* dotted OIDs; a requested EKU not listed is refused */
    size_t allowed_eku_count;
    unsigned allowed_key_usage; /* KU_* mask; a requested usage outside it is refused */
    unsigned max_validity_days;
    unsigned min_rsa_bits;     /* default 2048 */
    unsigned min_ec_bits;      /* default 256 */
    bool subject_from_request; /* "supply in the request"; false refuses a requested subject */
} pc_ca_template_t;

/* pc_ca_template_check refuses (PC_ERR_POLICY, naming what broke the rule) a CSR that asks for
 * an EKU or key usage the template does not allow, a key below its minimum, a subject when the
 * template builds its own, or validity_days over the maximum; PC_ERR_CRYPTO when the CSR's
 * signature does not verify. Any thread. */
pc_err_t pc_ca_template_check(const pc_ca_template_t *tmpl, X509_REQ *csr, unsigned validity_days,
                              pc_diag_t *diag);

/* pc_ca_template_free frees tmpl's members and tmpl (NULL allowed). */
void pc_ca_template_free(pc_ca_template_t *tmpl);

typedef struct pc_ca pc_ca_t;

typedef struct pc_ca_issue {
    const char *template_name;
    unsigned validity_days;
    const char *request_id; /* recorded with the certificate where the backend can */
} pc_ca_issue_t;

/* RFC 5280 CRLReason values. */
typedef enum pc_revoke_reason {
    PC_REVOKE_UNSPECIFIED = 0,
    PC_REVOKE_KEY_COMPROMISE = 1,
    PC_REVOKE_AFFILIATION_CHANGED = 3,
    PC_REVOKE_SUPERSEDED = 4,
    PC_REVOKE_CESSATION_OF_OPERATION = 5,
} pc_revoke_reason_t;

typedef struct pc_ca_revoke {
    const char *serial_hex; /* upper- or lower-case hex, no separators */
    pc_revoke_reason_t reason;
} pc_ca_revoke_t;

/* Completion of a submit or revoke: err and diag say what failed; cert (submit only, else NULL)
 * becomes the callee's. */
typedef void (*pc_ca_done_fn)(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag);

typedef struct pc_ca_ops {
    const char *kind; /* "local", "cfssl", ... */
    bool blocking;
    /* Checks the template, then signs. Calls done exactly once. */
    void (*submit_csr)(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                       void *arg);
    /* Revokes a serial; revoking twice is not an error. Calls done exactly once. */
    void (*revoke)(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg);
    /* Optional (NULL when the backend cannot): the serials (canonical hex, malloc'd array the
     * caller frees) of every certificate issued for request_id. Blocking. Lets a worker that
     * takes over a request find and revoke a certificate its dead predecessor obtained. */
    pc_err_t (*find_issued)(pc_ca_t *ca, const char *request_id, char (**serials)[64],
                            size_t *count, pc_diag_t *diag);
    /* Borrowed chain: issuing CA first, up to the root. */
    STACK_OF(X509) * (*get0_chain)(pc_ca_t *ca);
    void (*free)(pc_ca_t *ca);
} pc_ca_ops_t;

/* Every backend's struct starts with this. */
struct pc_ca {
    const pc_ca_ops_t *ops;
    char *name;
    pc_ca_template_t **templates;
    size_t template_count;
};

/* pc_ca_find_template returns the borrowed template called name (case-sensitive), or NULL. */
const pc_ca_template_t *pc_ca_find_template(const pc_ca_t *ca, const char *name);

/* pc_ca_submit_sync runs a blocking backend's submit and returns its outcome (*cert is the
 * caller's); PC_ERR_NOT_SUPPORTED for a non-blocking backend. For tools and tests. */
pc_err_t pc_ca_submit_sync(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, X509 **cert,
                           pc_diag_t *diag);

/* pc_ca_revoke_sync: the same for revoke. */
pc_err_t pc_ca_revoke_sync(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_diag_t *diag);

/* pc_ca_free frees any backend (NULL allowed) by calling its ops->free, which frees everything,
 * the pc_ca_t itself included. */
void pc_ca_free(pc_ca_t *ca);

/* pc_ca_base_clear frees the shared members of ca (name, templates) and leaves them empty; a
 * backend's ops->free calls it before freeing its own struct. */
void pc_ca_base_clear(pc_ca_t *ca);

#endif
