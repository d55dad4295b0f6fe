/*
 * coord_ocsp.c - the coordinator's OCSP responder for each local CA (RFC 6960 appendix A):
 *
 *   POST /ocsp/NAME            body: a DER OCSPRequest (Content-Type application/ocsp-request)
 *   GET  /ocsp/NAME/{request}  the DER OCSPRequest in base64, then URL-encoded
 *
 * answered application/ocsp-response. An answer reads the CA's records in Redis and is signed,
 * so it is made on a pool thread (pc_ca_local_ocsp) and the HTTP request waits for it
 * (pc_http_defer). Bounded: a request body of OCSP_REQUEST_MAX bytes at most, and at most
 * OCSP_IN_FLIGHT_MAX answers in the making; past that the answer is tryLater at once, which
 * clients understand better than an HTTP error. A malformed or unauthorized request gets the
 * OCSP response that says so, with HTTP 200, as RFC 6960 responders do. Loop thread, except
 * run_ocsp and run_prepare (pool thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca_local.h"
#include "coord.h"
#include "log.h"
#include "text.h"

#define OCSP_REQUEST_MAX 16384 /* bytes; a request about one certificate is about 100 */
#define OCSP_IN_FLIGHT_MAX 64  /* answers on the pool at once */
#define OCSP_CA_NAME_MAX 128
#define OCSP_TYPE "application/ocsp-request"

/* OCSPResponse {responseStatus tryLater (3)}: no body, nothing to sign. */
static const unsigned char try_later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};

/* One answer in the making. */
typedef struct ocsp_job {
    uv_work_t work;
    pc_coord_t *coord;
    pc_ca_t *ca; /* borrowed from the engine */
    pc_http_later_t *later;
    unsigned char *request; /* malloc'd */
    size_t request_len;
    unsigned char *response; /* OPENSSL_malloc'd */
    size_t response_len;
    pc_err_t err;
    pc_diag_t diag;
} ocsp_job_t;

/* ---- at start ---------------------------------------------------------------------------- */

typedef struct prepare_job {
    uv_work_t work;
    pc_ca_t *ca;
    pc_err_t err;
    pc_diag_t diag;
} prepare_job_t;

static void run_prepare(uv_work_t *work) /* pool thread */
{
    prepare_job_t *job = work->data;
    job->err = pc_ca_local_ocsp_prepare(job->ca, &job->diag);
}

static void after_prepare(uv_work_t *work, int status)
{
    prepare_job_t *job = work->data;
    if (status == 0 && job->err == PC_OK)
        pc_log(PC_LOG_INFO, "ocsp_ready", "OCSP responder certificate ready", "ca", job->ca->name,
               NULL);
    else if (status == 0)
        pc_log(PC_LOG_ERROR, "ocsp_failed", job->diag.msg, "ca", job->ca->name, NULL);
    free(job);
}

static bool is_local(const pc_ca_t *ca)
{
    return strcmp(ca->ops->kind, "local") == 0;
}

pc_err_t pc_coord_ocsp_start(pc_coord_t *coord, pc_diag_t *diag)
{
    pc_http_set_body_max(coord->http, OCSP_REQUEST_MAX);
    for (size_t i = 0; i < coord->engine->ca_count; i++) {
        if (!is_local(coord->engine->cas[i]))
            continue;
        prepare_job_t *job = calloc(1, sizeof(*job));
        if (job == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        job->ca = coord->engine->cas[i];
        job->work.data = job;
        if (uv_queue_work(coord->loop, &job->work, run_prepare, after_prepare) != 0)
            free(job); /* the first request makes the responder instead */
    }
    return PC_OK;
}

/* ---- answering --------------------------------------------------------------------------- */

static void run_ocsp(uv_work_t *work) /* pool thread */
{
    ocsp_job_t *job = work->data;
    job->err = pc_ca_local_ocsp(job->ca, job->request, job->request_len, &job->response,
                                &job->response_len, &job->diag);
}

static void respond_der(pc_http_response_t *resp, const unsigned char *der, size_t len)
{
    resp->body = malloc(len);
    if (resp->body == NULL) {
        pc_http_respond_text(resp, 500, "out of memory\n");
        return;
    }
    memcpy(resp->body, der, len);
    resp->body_len = len;
    resp->status = 200;
    resp->content_type = "application/ocsp-response";
}

/* Failures that are the responder's (not the client's) are logged, each distinct one once
 * until an answer succeeds again. */
static void log_outcome(pc_coord_t *coord, const ocsp_job_t *job)
{
    if (job->err == PC_OK) {
        if (coord->ocsp_last_error[0] != '\0')
            pc_log(PC_LOG_INFO, "ocsp_recovered", "OCSP answers are signed again", "ca",
                   job->ca->name, NULL);
        coord->ocsp_last_error[0] = '\0';
        return;
    }
    if (job->err == PC_ERR_BAD_MESSAGE || job->err == PC_ERR_NOT_FOUND)
        return; /* the client's mistake, said in the response */
    if (strcmp(job->diag.msg, coord->ocsp_last_error) == 0)
        return;
    pc_log(PC_LOG_ERROR, "ocsp_failed", job->diag.msg, "ca", job->ca->name, "code",
           pc_err_code_name(job->err), NULL);
    snprintf(coord->ocsp_last_error, sizeof(coord->ocsp_last_error), "%s", job->diag.msg);
}

static void after_ocsp(uv_work_t *work, int status)
{
    ocsp_job_t *job = work->data;
    pc_coord_t *coord = job->coord;
    pc_http_response_t resp = {.status = 200};
    coord->ocsp_in_flight--;
    if (status != 0)
        respond_der(&resp, try_later, sizeof(try_later));
    else if (job->response != NULL)
        respond_der(&resp, job->response, job->response_len);
    else
        pc_http_respond_text(&resp, 500, "cannot encode an OCSP response\n");
    if (status == 0)
        log_outcome(coord, job);
    pc_http_answer(job->later, &resp);
    OPENSSL_free(job->response);
    free(job->request);
    free(job);
}

/* start_job queues the answer to request (taken); resp is answered later, or now when the
 * pool is full or refuses. */
static void start_job(pc_coord_t *coord, pc_ca_t *ca, unsigned char *request, size_t len,
                      pc_http_response_t *resp)
{
    ocsp_job_t *job = NULL;
    if (coord->stopping || coord->ocsp_in_flight >= OCSP_IN_FLIGHT_MAX ||
        (job = calloc(1, sizeof(*job))) == NULL)
        goto out_try_later;
    job->later = pc_http_defer(coord->http);
    if (job->later == NULL)
        goto out_try_later;
    job->coord = coord;
    job->ca = ca;
    job->request = request;
    job->request_len = len;
    job->work.data = job;
    if (uv_queue_work(coord->loop, &job->work, run_ocsp, after_ocsp) != 0) {
        pc_http_response_t later = {.status = 200};
        respond_der(&later, try_later, sizeof(try_later));
        pc_http_answer(job->later, &later);
        goto out_free_job;
    }
    coord->ocsp_in_flight++;
    return;
out_try_later:
    respond_der(resp, try_later, sizeof(try_later));
out_free_job:
    free(job);
    free(request);
}

/* The GET form: the rest of the path, URL-decoded, is the base64 of the request. */
static bool decode_get(const char *encoded, unsigned char **request, size_t *len)
{
    size_t cap = strlen(encoded) + 1;
    char *text = malloc(cap);
    bool ok = text != NULL && pc_coord_percent_decode(encoded, text, cap) &&
              pc_base64_decode(text, strlen(text), request, len, NULL) == PC_OK;
    free(text);
    return ok;
}

/* take_request copies the DER request out of a POST body or a GET path (rest: after
 * "/ocsp/NAME/"), since the answer outlives req; false when it answered already. */
static bool take_request(const pc_http_request_t *req, const char *rest, pc_http_response_t *resp,
                         unsigned char **request, size_t *len)
{
    const char *method = req->method;
    *request = NULL;
    *len = 0;
    if (strcmp(method, "POST") == 0) {
        if (*rest != '\0') {
            pc_http_respond_text(resp, 404, "not found: POST the request to /ocsp/NAME\n");
            return false;
        }
        if (req->content_type != NULL && strcmp(req->content_type, OCSP_TYPE) != 0) {
            pc_http_respond_text(resp, 415, "send the request as " OCSP_TYPE "\n");
            return false;
        }
        if (req->body_len > 0 && (*request = malloc(req->body_len)) == NULL) {
            pc_http_respond_text(resp, 500, "out of memory\n");
            return false;
        }
        if (req->body_len > 0)
            memcpy(*request, req->body, req->body_len);
        *len = req->body_len;
        return true;
    }
    if (strcmp(method, "GET") == 0) {
        if (*rest == '\0') {
            pc_http_respond_text(resp, 404,
                                 "not found: GET /ocsp/NAME/{base64 of the DER request, "
                                 "URL-encoded}, or POST it to /ocsp/NAME\n");
            return false;
        }
        /* Not base64: still an OCSP question, answered malformedRequest by the CA. */
        if (!decode_get(rest, request, len)) {
            *request = NULL;
            *len = 0;
        }
        return true;
    }
    pc_http_respond_text(resp, 405, "method not allowed: use POST or GET\n");
    return false;
}

void pc_coord_ocsp_serve(pc_coord_t *coord, const pc_http_request_t *req, pc_http_response_t *resp)
{
    const char *path = req->path;
    char name[OCSP_CA_NAME_MAX], msg[300];
    const char *start = path + strlen("/ocsp/");
    size_t name_len = strcspn(start, "/");
    const char *rest = start + name_len + (start[name_len] == '/' ? 1 : 0);
    if (name_len == 0 || name_len >= sizeof(name)) {
        pc_http_respond_text(resp, 404, "not found: use /ocsp/NAME with a CA's name\n");
        return;
    }
    memcpy(name, start, name_len);
    name[name_len] = '\0';
    pc_ca_t *ca = pc_engine_find_ca(coord->engine, name);
    if (ca == NULL || !is_local(ca)) {
        snprintf(msg, sizeof(msg),
                 ca == NULL ? "not found: no CA called \"%s\" is configured\n"
                            : "not found: CA \"%s\" is not a local CA; ask its own OCSP "
                              "responder\n",
                 name);
        pc_http_respond_text(resp, 404, msg);
        return;
    }
    unsigned char *request = NULL;
    size_t len = 0;
    if (take_request(req, rest, resp, &request, &len))
        start_job(coord, ca, request, len, resp);
}
