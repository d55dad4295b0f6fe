/*
 * ca_index.h - the local CA's record of issued and revoked certificates, and its CRL counter.
 *
 * Two backends behind one small vtable (ca_index_int.h), one file each:
 *   redis (ca_index_redis.c): the CA's database for a cluster, shared by every worker and the
 *     coordinator on any machine; what workers, the coordinator and pkcsctl crl use.
 *   file (ca_index_file.c): state_dir/index.txt, for a process that runs without a cluster
 *     (pkcsctl issue --offline, the engine benchmark).
 * Any thread; every call blocks (on Redis or on file I/O), so call it from a pool thread; the
 * exception, pc_ca_index_send_issued, runs on the loop thread.
 */
#ifndef PC_CA_INDEX_H
#define PC_CA_INDEX_H

#include <stdint.h>
#include <time.h>

#include "ca.h"
#include "pc_err.h"
#include "redis.h"

typedef struct pc_ca_index pc_ca_index_t;

/* One revoked certificate, as the CRL needs it. */
typedef struct pc_ca_index_revoked {
    char serial_hex[64]; /* canonical upper-case hex */
    char revoked_at[16]; /* GeneralizedTime text, "YYYYMMDDHHMMSSZ" */
    int reason;          /* RFC 5280 CRLReason */
} pc_ca_index_revoked_t;

/* What the index knows of one serial, as an OCSP responder answers it. */
typedef enum pc_ca_index_state {
    PC_CA_INDEX_UNKNOWN = 0, /* this CA never issued it */
    PC_CA_INDEX_GOOD,        /* issued and not revoked */
    PC_CA_INDEX_REVOKED,     /* revoked: revoked_at and reason say when and why */
} pc_ca_index_state_t;

typedef struct pc_ca_index_status {
    pc_ca_index_state_t state;
    char revoked_at[16]; /* REVOKED: GeneralizedTime text, "YYYYMMDDHHMMSSZ" */
    int reason;          /* REVOKED: RFC 5280 CRLReason */
} pc_ca_index_status_t;

/* pc_ca_index_open_redis prepares the records of CA ca_name in the Redis of cfg (keys
 * "pc:ca:{ca_name}:..."; host, port, password and command_timeout_ms are used, the timeout for
 * connecting and for each command); it connects on first use, so it succeeds while Redis is
 * down. *out is the caller's (pc_ca_index_free). PC_ERR_INVALID_PARAM for an empty name or a
 * bad port, PC_ERR_NOMEM. */
pc_err_t pc_ca_index_open_redis(const char *ca_name, const pc_redis_config_t *cfg,
                                pc_ca_index_t **out, pc_diag_t *diag);

/* pc_ca_index_open_file prepares the index kept in dir (index.txt and crlnumber, created on
 * first write); *out is the caller's (pc_ca_index_free). PC_ERR_INVALID_PARAM when the path is
 * too long. Only for processes outside a cluster: no other machine sees these records. */
pc_err_t pc_ca_index_open_file(const char *dir, pc_ca_index_t **out, pc_diag_t *diag);

/* pc_ca_index_free frees idx (NULL allowed); no call on idx may be running. */
void pc_ca_index_free(pc_ca_index_t *idx);

/* Errors of the calls below: PC_ERR_DEPENDENCY (retryable) when Redis cannot be reached or
 * refuses a command, naming its address; PC_ERR_IO for the file backend's file. */

/* pc_ca_index_add_issued durably records an issued certificate (request_id and subject may be
 * NULL). The CA passes "TENANT:REQUEST" as request_id, both key segments (ca_local.c), so that
 * two tenants' equal request ids stay apart. */
pc_err_t pc_ca_index_add_issued(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                                const char *request_id, const char *subject, pc_diag_t *diag);

/* A record of an issued certificate made ready, on any thread, to be sent from the loop as
 * often as Redis needs asking (the Redis backend only). */
typedef struct pc_ca_index_record pc_ca_index_record_t;

/* pc_ca_index_prepare_issued builds what pc_ca_index_add_issued would write, ready to send;
 * *out is the caller's (pc_ca_index_record_free). Any thread: a pool thread makes it, so that
 * the loop only sends. PC_ERR_NOT_SUPPORTED for the file backend (record with
 * pc_ca_index_add_issued on a pool thread), PC_ERR_NOMEM. */
pc_err_t pc_ca_index_prepare_issued(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                                    const char *request_id, const char *subject,
                                    pc_ca_index_record_t **out, pc_diag_t *diag);

/* pc_ca_index_record_free frees rec (NULL allowed). */
void pc_ca_index_record_free(pc_ca_index_record_t *rec);

/* Outcome of pc_ca_index_send_issued, on the loop thread: the errors of pc_ca_index_add_issued. */
typedef void (*pc_ca_index_done_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* pc_ca_index_send_issued sends rec (borrowed until it returns) through redis, the loop's client
 * for the same Redis as the index (its connection, its durable-write setting), without
 * blocking: cb is called once, on the loop thread, never inside this call, unless it returns an
 * error. One attempt: a PC_ERR_DEPENDENCY answer is the caller's to retry, with the same rec.
 * Loop thread. PC_ERR_NOMEM, PC_ERR_DEPENDENCY when redis is closed. */
pc_err_t pc_ca_index_send_issued(pc_ca_index_t *idx, pc_redis_t *redis,
                                 const pc_ca_index_record_t *rec, pc_ca_index_done_fn cb, void *arg,
                                 pc_diag_t *diag);

/* pc_ca_index_records_async tells whether idx takes pc_ca_index_prepare_issued (Redis). */
bool pc_ca_index_records_async(const pc_ca_index_t *idx);

/* pc_ca_index_revoke records the revocation of serial_hex (canonical hex) at time when.
 * PC_ERR_NOT_FOUND (diag not filled: the caller knows the CA's name) when the index has no such
 * certificate; an already revoked serial is left as first recorded and is PC_OK. */
pc_err_t pc_ca_index_revoke(pc_ca_index_t *idx, const char *serial_hex, int reason, time_t when,
                            pc_diag_t *diag);

/* pc_ca_index_list_revoked returns every revoked certificate, each once; *out (caller frees
 * with free) may be NULL when *count is 0. */
pc_err_t pc_ca_index_list_revoked(pc_ca_index_t *idx, pc_ca_index_revoked_t **out, size_t *count,
                                  pc_diag_t *diag);

/* pc_ca_index_find_issued returns the serials issued for request_id, oldest first (*out: caller
 * frees with free; NULL when *count is 0). Used to find a certificate whose worker died before
 * it could hand it out. */
pc_err_t pc_ca_index_find_issued(pc_ca_index_t *idx, const char *request_id, pc_ca_serial_t **out,
                                 size_t *count, pc_diag_t *diag);

/* pc_ca_index_status tells whether serial_hex (canonical hex) was issued, and whether and how
 * it was revoked, in *out: one look-up, for an OCSP answer. A serial the CRL lists counts as
 * revoked even if its certificate record is gone, so the two never disagree. */
pc_err_t pc_ca_index_status(pc_ca_index_t *idx, const char *serial_hex, pc_ca_index_status_t *out,
                            pc_diag_t *diag);

/* pc_ca_index_revoked_count returns how many certificates are revoked: cheap, so that a CRL
 * publisher can tell when a new revocation calls for a new CRL. */
pc_err_t pc_ca_index_revoked_count(pc_ca_index_t *idx, uint64_t *count, pc_diag_t *diag);

/* pc_ca_index_next_crl_number increments and returns the CRL number (1 for the first CRL);
 * monotonic for every user of the same records. */
pc_err_t pc_ca_index_next_crl_number(pc_ca_index_t *idx, uint64_t *number, pc_diag_t *diag);

#endif
