/*
 * ca_index_int.h - what the backends of the local CA's index share: the vtable each fills
 * (ca_index_redis.c, ca_index_file.c) and a time format. ca_index.c dispatches through it.
 */
#ifndef PC_CA_INDEX_INT_H
#define PC_CA_INDEX_INT_H

#include "ca_index.h"

/* One backend. The functions have the contracts of the pc_ca_index_* functions of the same
 * name (ca_index.h); out-parameters are already cleared when they are called. */
typedef struct pc_ca_index_ops {
    pc_err_t (*add_issued)(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                           const char *request_id, const char *subject, pc_diag_t *diag);
    /* both NULL: the backend records synchronously only (pc_ca_index_prepare_issued says so) */
    pc_err_t (*prepare_issued)(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                               const char *request_id, const char *subject,
                               pc_ca_index_record_t *rec, pc_diag_t *diag);
    pc_err_t (*send_issued)(pc_ca_index_t *idx, pc_redis_t *redis, const pc_ca_index_record_t *rec,
                            pc_ca_index_done_fn cb, void *arg, pc_diag_t *diag);
    pc_err_t (*revoke)(pc_ca_index_t *idx, const char *serial_hex, int reason, time_t when,
                       pc_diag_t *diag);
    pc_err_t (*list_revoked)(pc_ca_index_t *idx, pc_ca_index_revoked_t **out, size_t *count,
                             pc_diag_t *diag);
    pc_err_t (*find_issued)(pc_ca_index_t *idx, const char *request_id, pc_ca_serial_t **out,
                            size_t *count, pc_diag_t *diag);
    pc_err_t (*next_crl_number)(pc_ca_index_t *idx, uint64_t *number, pc_diag_t *diag);
    pc_err_t (*revoked_count)(pc_ca_index_t *idx, uint64_t *count, pc_diag_t *diag);
    pc_err_t (*status)(pc_ca_index_t *idx, const char *serial_hex, pc_ca_index_status_t *out,
                       pc_diag_t *diag);
    void (*free)(pc_ca_index_t *idx);
} pc_ca_index_ops_t;

/* A script's keys and arguments, ready to send (pc_ca_index_prepare_issued). */
struct pc_ca_index_record {
    pc_args_t args;
    int nkeys;
    char what[128]; /* for messages: "record the certificate it issued, serial ..." */
};

/* The first member of every backend's struct. */
struct pc_ca_index {
    const pc_ca_index_ops_t *ops;
};

/* pc_ca_index_format_time writes t as GeneralizedTime text, "YYYYMMDDHHMMSSZ" (UTC). */
void pc_ca_index_format_time(time_t t, char out[16]);

#endif
