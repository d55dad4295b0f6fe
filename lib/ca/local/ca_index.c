/*
 * ca_index.c - the local CA's index seen from the CA: each call goes to the backend the index
 * was opened with (ca_index_redis.c for a cluster, ca_index_file.c offline). Any thread.
 */
#include "ca_index_int.h"

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

pc_err_t pc_ca_index_add_issued_async(pc_ca_index_t *idx, pc_redis_t *redis, const char *serial_hex,
                                      time_t not_after, const char *request_id, const char *subject,
                                      pc_ca_index_done_fn cb, void *arg, pc_diag_t *diag)
{
    if (idx->ops->add_issued_async == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "this index records certificates synchronously only (a file)");
    return idx->ops->add_issued_async(idx, redis, serial_hex, not_after, request_id, subject, cb,
                                      arg, diag);
}

bool pc_ca_index_records_async(const pc_ca_index_t *idx)
{
    return idx->ops->add_issued_async != NULL;
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
