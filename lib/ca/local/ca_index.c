/*
 * ca_index.c - the local CA's index seen from the CA: each call goes to the backend the index
 * was opened with (ca_index_redis.c for a cluster, ca_index_file.c offline). Any thread.
 */
#include "ca_index_int.h"

#include <stdlib.h>

void pc_ca_index_free(pc_ca_index_t *idx)
{
    if (idx != NULL)
        idx->ops->free(idx);
}

pc_err_t pc_ca_index_add_issued(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                                const char *request_id, const char *subject, pc_diag_t *diag)
{
    return idx->ops->add_issued(idx, serial_hex, not_after, request_id, subject, diag);
}

pc_err_t pc_ca_index_prepare_issued(pc_ca_index_t *idx, const char *serial_hex, time_t not_after,
                                    const char *request_id, const char *subject,
                                    pc_ca_index_record_t **out, pc_diag_t *diag)
{
    *out = NULL;
    if (idx->ops->prepare_issued == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "this index records certificates synchronously only (a file)");
    pc_ca_index_record_t *rec = calloc(1, sizeof(*rec));
    if (rec == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory recording certificate %s", serial_hex);
    pc_err_t err =
        idx->ops->prepare_issued(idx, serial_hex, not_after, request_id, subject, rec, diag);
    if (err != PC_OK) {
        pc_ca_index_record_free(rec);
        return err;
    }
    *out = rec;
    return PC_OK;
}

void pc_ca_index_record_free(pc_ca_index_record_t *rec)
{
    if (rec == NULL)
        return;
    pc_args_free(&rec->args);
    free(rec);
}

pc_err_t pc_ca_index_send_issued(pc_ca_index_t *idx, pc_redis_t *redis,
                                 const pc_ca_index_record_t *rec, pc_ca_index_done_fn cb, void *arg,
                                 pc_diag_t *diag)
{
    return idx->ops->send_issued(idx, redis, rec, cb, arg, diag);
}

bool pc_ca_index_records_async(const pc_ca_index_t *idx)
{
    return idx->ops->prepare_issued != NULL;
}

pc_err_t pc_ca_index_revoke(pc_ca_index_t *idx, const char *serial_hex, int reason, time_t when,
                            pc_diag_t *diag)
{
    return idx->ops->revoke(idx, serial_hex, reason, when, diag);
}

pc_err_t pc_ca_index_list_revoked(pc_ca_index_t *idx, pc_ca_index_revoked_t **out, size_t *count,
                                  pc_diag_t *diag)
{
    *out = NULL;
    *count = 0;
    return idx->ops->list_revoked(idx, out, count, diag);
}

pc_err_t pc_ca_index_find_issued(pc_ca_index_t *idx, const char *request_id, pc_ca_serial_t **out,
                                 size_t *count, pc_diag_t *diag)
{
    *out = NULL;
    *count = 0;
    return idx->ops->find_issued(idx, request_id, out, count, diag);
}

pc_err_t pc_ca_index_next_crl_number(pc_ca_index_t *idx, uint64_t *number, pc_diag_t *diag)
{
    return idx->ops->next_crl_number(idx, number, diag);
}

pc_err_t pc_ca_index_revoked_count(pc_ca_index_t *idx, uint64_t *count, pc_diag_t *diag)
{
    *count = 0;
    return idx->ops->revoked_count(idx, count, diag);
}

pc_err_t pc_ca_index_status(pc_ca_index_t *idx, const char *serial_hex, pc_ca_index_status_t *out,
                            pc_diag_t *diag)
{
    *out = (pc_ca_index_status_t){.state = PC_CA_INDEX_UNKNOWN};
    return idx->ops->status(idx, serial_hex, out, diag);
}

void pc_ca_index_format_time(time_t t, char out[16])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%d%H%M%SZ", &tm);
}
