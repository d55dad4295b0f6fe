/*
 * ca.h - the certification-authority interface, and certificate templates.
 *
 * One small vtable shared by every backend, one folder per backend: local/ (an in-process
 * OpenSSL CA with its records in Redis) and cfssl/ (a remote cfssl over HTTP). A caller sees
 * only this interface: it submits, revokes, looks certificates up by request, asks whether the
 * CA is healthy and closes it, and each backend decides inside itself where its work runs (the
 * local CA on the loop's thread pool, cfssl on the loop itself).
 *
 * Threads. A CA opened with an event loop (pc_ca_t.loop set: the worker) is called on that
 * loop's thread and calls back there, after the call returned, except when it refuses at once
 * (bad arguments, out of memory, a look-up it cannot do): then inside the call, so a caller
 * keeps what the callback needs before calling. A CA opened without a loop (tools: pkcsctl
 * issue --offline, the engine benchmark, pkcsctl crl) does its work inside the call and calls
 * back before returning; the pc_ca_*_sync wrappers are for those. Template policy is checked
 * inside submit, before any backend signs.
 */
#ifndef PC_CA_H
#define PC_CA_H

#include <stdbool.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "name_policy.h"
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
    pc_name_policy_t names;    /* which SANs and host names (name_policy.h) */
} pc_ca_template_t;

/* pc_ca_template_check refuses (PC_ERR_POLICY, naming what broke the rule) a CSR that asks for
 * an EKU or key usage the template does not allow, a key below its minimum, a subject when the
 * template builds its own, validity_days over the maximum, or a name its name policy forbids
 * (a SAN type, domain or wildcard, a DNS name that is not one; name_policy.h);
 * PC_ERR_BAD_MESSAGE for a malformed or repeated extension; PC_ERR_CRYPTO when the CSR's
 * signature does not verify. Any thread. */
pc_err_t pc_ca_template_check(const pc_ca_template_t *tmpl, X509_REQ *csr, unsigned validity_days,
                              pc_diag_t *diag);

/* pc_ca_template_free frees tmpl's members and tmpl (NULL allowed). */
void pc_ca_template_free(pc_ca_template_t *tmpl);

typedef struct pc_ca pc_ca_t;

typedef struct pc_ca_issue {
    const char *template_name;
    unsigned validity_days;
    const char *tenant;     /* with request_id, recorded where the backend can, so that */
    const char *request_id; /* find_issued finds the request's certificates, its tenant's only */
    /* The serial (hex) the certificate must carry, for a CA that takes its callers' serials
     * (pc_ca_takes_serial); NULL otherwise: the CA picks. */
    const char *serial_hex;
    /* The profile named its key usages (not the defaults): the certificate must carry exactly
     * those (pc_ca_check_as_asked). */
    bool exact_key_usage;
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

/* A serial number in canonical form: upper-case hex of even length, as BN_bn2hex writes it. */
typedef struct pc_ca_serial {
    char hex[64];
} pc_ca_serial_t;

/* Completion of a submit or revoke: err and diag say what failed; cert (submit only, else NULL)
 * becomes the callee's. */
typedef void (*pc_ca_done_fn)(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag);

/* Completion of a look-up: serials (borrowed for the call) of count certificates. */
typedef void (*pc_ca_found_fn)(void *arg, pc_err_t err, const pc_ca_serial_t *serials, size_t count,
                               const pc_diag_t *diag);

/* The backend interface. The arguments of submit (csr, issue and the strings it points to) are
 * borrowed until its callback has run; revoke's and find_issued's only for the call (a caller's
 * stack is fine: the backend copies what it keeps). Every callback runs exactly once. */
typedef struct pc_ca_ops {
    const char *kind; /* "local", "cfssl", ... */
    /* Whether the CA can be used now (for /readyz): its certificate is known, it answers. */
    bool (*healthy)(const pc_ca_t *ca);
    /* Checks the template, then has the CSR signed. */
    void (*submit)(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                   void *arg);
    /* Revokes a serial; revoking twice is not an error. PC_ERR_NOT_FOUND when the CA never
     * issued it. */
    void (*revoke)(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg);
    /* The serials of every certificate issued for tenant's request_id, oldest first: a worker
     * that takes a request over finds what its dead predecessor obtained, and never another
     * tenant's. NULL when the backend cannot look certificates up (cfssl's API cannot): the
     * worker then records each serial as soon as the CA returns it, so that orphans are found
     * from its own records. */
    void (*find_issued)(pc_ca_t *ca, const char *tenant, const char *request_id,
                        pc_ca_found_fn found, void *arg);
    /* Borrowed chain: issuing CA first, up to the root; NULL while not known yet. */
    STACK_OF(X509) * (*get0_chain)(pc_ca_t *ca);
    /* Fails or finishes what is pending (callbacks run), stops using the loop, and calls closed
     * (may be NULL) when nothing of the CA is left on it; then pc_ca_free. */
    void (*close)(pc_ca_t *ca, void (*closed)(void *arg), void *arg);
    void (*free)(pc_ca_t *ca);
} pc_ca_ops_t;

/* Every backend's struct starts with this. */
struct pc_ca {
    const pc_ca_ops_t *ops;
    char *name;
    uv_loop_t *loop; /* NULL: opened for a tool; every call completes inside itself */
    pc_ca_template_t **templates;
    size_t template_count;
    bool takes_serial; /* signs with the serial it is given (pc_ca_issue_t.serial_hex) */
};

/* The calls, one per op, for callers (they check nothing the backend does not). */
bool pc_ca_healthy(const pc_ca_t *ca);
void pc_ca_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                  void *arg);
void pc_ca_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg);
STACK_OF(X509) * pc_ca_get0_chain(pc_ca_t *ca);

/* pc_ca_check_as_asked tells whether cert is what csr and issue asked for, for a CA whose own
 * profile decides what it signs (cfssl): validity_days (to the day: a CA backdates a little),
 * exactly the CSR's extended key usages, and, when issue->exact_key_usage, exactly its key
 * usages. PC_ERR_POLICY naming each difference. Any thread. */
pc_err_t pc_ca_check_as_asked(X509 *cert, X509_REQ *csr, const pc_ca_issue_t *issue,
                              pc_diag_t *diag);

/* pc_ca_takes_serial tells whether the CA signs with the serial its caller picks: the caller
 * records it before asking, so a certificate whose answer was lost is found by it. */
bool pc_ca_takes_serial(const pc_ca_t *ca);

/* pc_ca_can_find_issued tells whether the CA can look certificates up by request. */
bool pc_ca_can_find_issued(const pc_ca_t *ca);

/* pc_ca_find_issued looks up the certificates of tenant's request_id; PC_ERR_NOT_SUPPORTED
 * through found (inside the call) when the CA cannot (see pc_ca_can_find_issued). */
void pc_ca_find_issued(pc_ca_t *ca, const char *tenant, const char *request_id,
                       pc_ca_found_fn found, void *arg);

/* pc_ca_close closes ca on its loop (see ops->close); closed may be NULL. Loop thread. */
void pc_ca_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg);

/* pc_ca_find_template returns the borrowed template called name (case-sensitive), or NULL. */
const pc_ca_template_t *pc_ca_find_template(const pc_ca_t *ca, const char *name);

/* pc_ca_serial_parse reads a serial number given in hex (either case, no separators, at most 64
 * digits) into *out (the caller's, BN_free). PC_ERR_INVALID_PARAM naming ca's name and what to
 * give otherwise. Any thread. */
pc_err_t pc_ca_serial_parse(const pc_ca_t *ca, const char *hex, BIGNUM **out, pc_diag_t *diag);

/* pc_ca_submit_sync, pc_ca_revoke_sync and pc_ca_find_issued_sync run a call on a CA opened
 * without a loop and return its outcome (*cert is the caller's; *serials too, with free);
 * PC_ERR_NOT_SUPPORTED for a CA that runs on a loop. For tools and tests, on their thread. */
pc_err_t pc_ca_submit_sync(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, X509 **cert,
                           pc_diag_t *diag);
pc_err_t pc_ca_revoke_sync(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_diag_t *diag);
pc_err_t pc_ca_find_issued_sync(pc_ca_t *ca, const char *tenant, const char *request_id,
                                pc_ca_serial_t **serials, size_t *count, pc_diag_t *diag);

/* pc_ca_free frees any backend (NULL allowed) by calling its ops->free, which frees everything,
 * the pc_ca_t itself included. A CA with a loop is closed first (pc_ca_close). */
void pc_ca_free(pc_ca_t *ca);

/* pc_ca_base_clear frees the shared members of ca (name, templates) and leaves them empty; a
 * backend's ops->free calls it before freeing its own struct. */
void pc_ca_base_clear(pc_ca_t *ca);

#endif
