/*
 * ca_index.h - the local CA's record of issued and revoked certificates, and its CRL counter.
 *
 * A line-based file (state_dir/index.txt) shared by every process that uses the state dir,
 * guarded by flock between processes and a mutex between threads. Kept behind these few functions
 * so that a cluster-wide store (Redis) can replace it. Any thread; every call blocks on file I/O.
 */
#ifndef PC_CA_INDEX_H
#define PC_CA_INDEX_H

#include <stdint.h>
#include <time.h>

#include "pc_err.h"

typedef struct pc_ca_index pc_ca_index_t;

/* One revoked certificate, as the CRL needs it. */
typedef struct pc_ca_index_revoked {
    char serial_hex[64]; /* canonical upper-case hex */
    char revoked_at[16]; /* GeneralizedTime text, "YYYYMMDDHHMMSSZ" */
    int reason;          /* RFC 5280 CRLReason */
} pc_ca_index_revoked_t;

/* pc_ca_index_open prepares the index kept in dir (files are created on first write); *out is
 * the caller's (pc_ca_index_free). PC_ERR_INVALID_PARAM when the path is too long. */
pc_err_t pc_ca_index_open(const char *dir, pc_ca_index_t **out, pc_diag_t *diag);

/* pc_ca_index_free frees idx (NULL allowed). */
void pc_ca_index_free(pc_ca_index_t *idx);

/* pc_ca_index_add_issued appends one durable line for an issued certificate (request_id and
 * subject may be NULL; control characters are %-escaped). PC_ERR_IO with the path on failure. */
pc_err_t pc_ca_index_add_issued(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                                const char *request_id, const char *subject, pc_diag_t *diag);

/* pc_ca_index_revoke records the revocation of serial_hex (canonical hex) at time when.
 * PC_ERR_NOT_FOUND (diag not filled: the caller knows the CA's name) when the index has no such
 * certificate; an already revoked serial is left as first recorded and is PC_OK. */
pc_err_t pc_ca_index_revoke(pc_ca_index_t *idx, const char *serial_hex, int reason, time_t when,
                            pc_diag_t *diag);

/* pc_ca_index_list_revoked returns every revoked certificate; *out (caller frees with free) may
 * be NULL when *count is 0. */
pc_err_t pc_ca_index_list_revoked(pc_ca_index_t *idx, pc_ca_index_revoked_t **out, size_t *count,
                                  pc_diag_t *diag);

/* One certificate issued for a request: its serial (canonical hex). */
typedef struct pc_ca_index_serial {
    char serial_hex[64];
} pc_ca_index_serial_t;

/* pc_ca_index_find_issued returns the serials issued for request_id, oldest first (*out: caller
 * frees with free; NULL when *count is 0). Used to find a certificate whose worker died before
 * it could hand it out. */
pc_err_t pc_ca_index_find_issued(pc_ca_index_t *idx, const char *request_id,
                                 pc_ca_index_serial_t **out, size_t *count, pc_diag_t *diag);

/* pc_ca_index_next_crl_number increments and returns the CRL number kept in dir/crlnumber
 * (1 for the first CRL); monotonic across processes. */
pc_err_t pc_ca_index_next_crl_number(pc_ca_index_t *idx, uint64_t *number, pc_diag_t *diag);

#endif
