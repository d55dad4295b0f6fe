/*
 * audit.h - the audit trail's records (AuditRecord in proto/pkcs.proto): one per request that
 * ends and per certificate revoked on the way, published as JSON text to the audit topic, the
 * same facts as the log line of the event. Any thread; a pc_audit_t belongs to one caller.
 */
#ifndef PC_AUDIT_H
#define PC_AUDIT_H

#include <stddef.h>

#include "pc_err.h"
#include "pkcs.pb-c.h"

/* A record being made. Its strings are borrowed from the request, the result and the caller,
 * which must outlive pc_audit_encode; event, worker, subject and record_id are held here. */
typedef struct pc_audit {
    Pkcs__V1__AuditRecord rec;
    char event[32], worker_id[128];
    char subject[512];
    char record_id[65];
} pc_audit_t;

/* pc_audit_init starts a record of event ("issued", "renewed", "revoked",
 * "imported", "refused", "replayed", "dead_lettered", "superseded", "orphan_revoked") about req
 * (NULL when it could not be read) and its result res (NULL: none): identity, kind, profile,
 * outcome, error, serial, revoked and renewed certificates come from them; worker_id and the
 * time now. The subject is subject when given (the caller has the certificate's text), else
 * read from res's certificate. The caller sets rec.ca_name (and for a certificate revoked on
 * the way rec.serial_number) itself. */
void pc_audit_init(pc_audit_t *a, const char *event, const Pkcs__V1__Request *req,
                   const Pkcs__V1__Result *res, const char *subject, const char *worker_id);

/* pc_audit_encode fills rec.record_id (hex SHA-256 over tenant, request, event and serial, so
 * that a record published twice is recognisable) and writes the record's JSON text into *out
 * (the caller frees it with free) and its length into *len. PC_ERR_INVALID_PARAM for text that
 * is not UTF-8, PC_ERR_NOMEM. */
pc_err_t pc_audit_encode(pc_audit_t *a, char **out, size_t *len, pc_diag_t *diag);

/* pc_audit_key writes the record's Kafka key, "TENANT/REQUEST", into out. */
void pc_audit_key(const pc_audit_t *a, char *out, size_t size);

#endif
