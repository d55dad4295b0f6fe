/*
 * audit.c - making audit records: borrowed fields from the request and the result, an id that
 * names the event, the JSON form through pbjson. Any thread.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "pbjson.h"
#include "request.h"
#include "result.h"

void pc_audit_init(pc_audit_t *a, const char *event, const Pkcs__V1__Request *req,
                   const Pkcs__V1__Result *res, const char *subject, const char *worker_id)
{
    memset(a, 0, sizeof(*a));
    Pkcs__V1__AuditRecord *r = &a->rec;
    pkcs__v1__audit_record__init(r);
    r->schema_version = PC_SCHEMA_VERSION;
    snprintf(a->event, sizeof(a->event), "%s", event);
    snprintf(a->worker_id, sizeof(a->worker_id), "%s", worker_id != NULL ? worker_id : "");
    r->event = a->event;
    r->at_ms = pc_now_ms();
    r->worker_id = a->worker_id;
    r->subject = a->subject;
    r->record_id = a->record_id;
    if (req != NULL) {
        r->tenant_id = req->tenant_id;
        r->user_id = req->user_id;
        r->device_id = req->device_id;
        r->request_id = req->request_id;
        r->kind = req->kind;
        if (req->body_case == PKCS__V1__REQUEST__BODY_ISSUE && req->issue->profile != NULL)
            r->profile_id = req->issue->profile->profile_id;
    }
    if (res != NULL) {
        r->outcome = res->status;
        r->error_code = res->error_code;
        r->error_message = res->error_message;
        r->serial_number = res->serial_number;
        r->n_revoked = res->n_revoked;
        r->revoked = res->revoked;
        r->renews = res->renews;
        char sans[8]; /* not recorded: the inventory has them */
        if (subject == NULL)
            pc_result_cert_texts(res, a->subject, sizeof(a->subject), sans, sizeof(sans));
    }
    if (subject != NULL)
        snprintf(a->subject, sizeof(a->subject), "%s", subject);
}

/* hash_field feeds one field and its terminating NUL, so that no two field lists collide. */
static int hash_field(EVP_MD_CTX *md, const char *s)
{
    return EVP_DigestUpdate(md, s != NULL ? s : "", s != NULL ? strlen(s) + 1 : 1);
}

pc_err_t pc_audit_encode(pc_audit_t *a, char **out, size_t *len, pc_diag_t *diag)
{
    *out = NULL;
    *len = 0;
    const Pkcs__V1__AuditRecord *r = &a->rec;
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              hash_field(md, r->tenant_id) == 1 && hash_field(md, r->request_id) == 1 &&
              hash_field(md, r->event) == 1 && hash_field(md, r->serial_number) == 1 &&
              EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == sizeof(digest);
    EVP_MD_CTX_free(md);
    if (!ok)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory making an audit record");
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(a->record_id + 2 * i, 3, "%02x", digest[i]);
    pc_err_t err = pc_pbjson_encode_string(&r->base, false, out, diag);
    if (err == PC_OK)
        *len = strlen(*out);
    return err;
}

void pc_audit_key(const pc_audit_t *a, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", a->rec.tenant_id != NULL ? a->rec.tenant_id : "",
             a->rec.request_id != NULL ? a->rec.request_id : "");
}
