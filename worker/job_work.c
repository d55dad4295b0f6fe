/*
 * job_work.c - the expensive stages of a job, each on a libuv pool thread, each continued on
 * the loop thread by its after-work callback:
 *
 *   job_work_issue → front (pool: key from the key pool or keygen, CSR) → job_after_front
 *     → ca (pool, for a blocking backend) → job_after_ca → pack (pool: PKCS#12 + envelope)
 *     → job_after_pack → job_result_ready
 *   job_work_engine → engine (pool: REVOKE / IMPORT_PFX) → job_after_engine → job_result_ready
 *
 * A pool function touches only the job's issue and its err/diag; the loop thread does not
 * touch them while the work is queued.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job_int.h"
#include "log.h"
#include "result.h"

static bool queue_work(pc_job_t *job, uv_work_cb work, uv_after_work_cb after)
{
    job->err = PC_OK;
    job->diag.msg[0] = '\0';
    job->work.data = job;
    if (uv_queue_work(job->w->loop, &job->work, work, after) != 0)
        return false;
    job->w->pool_busy++;
    job_ref(job);
    return true;
}

/* Common head of every after-work callback: false when the job must stop here. */
static bool after_common(pc_job_t *job, int status)
{
    job->w->pool_busy--;
    if (status == UV_ECANCELED || job->step == STEP_ENDED) {
        job_unref(job);
        return false;
    }
    return true;
}

static void queue_or_retry(pc_job_t *job, uv_work_cb work, uv_after_work_cb after)
{
    if (!queue_work(job, work, after))
        job_retry(job, job_work_issue, 0);
}

/* ---- pack -------------------------------------------------------------------------------- */

static void pool_pack(uv_work_t *req) /* pool thread */
{
    pc_job_t *job = req->data;
    uint64_t t0 = job_now_us();
    job->err = pc_issue_pack(job->issue, &job->diag);
    job->pack_us = job_now_us() - t0;
}

static void job_after_pack(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    pc_histogram_observe(job->w->m.pack_s, (double)job->pack_us / 1e6);
    if (job->err != PC_OK) {
        job_fail(job, job->err, &job->diag);
    } else {
        job->result = pc_result_new(job->req);
        pc_diag_t diag = {{0}};
        pc_err_t err = job->result == NULL ? PC_ERR_NOMEM
                                           : pc_issue_fill_result(job->issue, job->result, &diag);
        if (err != PC_OK) {
            job_fail(job, err, &diag);
        } else {
            job_result_ready(job);
        }
    }
    job_unref(job);
}

/* ---- CA ---------------------------------------------------------------------------------- */

static void pool_ca(uv_work_t *req) /* pool thread */
{
    pc_job_t *job = req->data;
    X509 *cert = NULL;
    uint64_t t0 = job_now_us();
    pc_ca_t *ca = pc_issue_get0_ca(job->issue);
    job->err = pc_ca_submit_sync(ca, pc_issue_get0_csr(job->issue), pc_issue_ca_params(job->issue),
                                 &cert, &job->diag);
    if (job->err == PC_OK)
        job->err = pc_issue_set0_cert(job->issue, cert, &job->diag);
    job->ca_us = job_now_us() - t0;
}

/* Fault injection for the orphan test, in test builds only: the worker dies right after the
 * CA signed and before the result is recorded anywhere. */
static void crash_hook_after_ca(const pc_job_t *job)
{
#ifdef PC_TEST_HOOKS
    const char *victim = getenv("PC_TEST_CRASH_AFTER_CA");
    if (victim != NULL && strcmp(victim, job->req->request_id) == 0) {
        pc_log(PC_LOG_WARN, "test_crash", "PC_TEST_CRASH_AFTER_CA: dying after the CA signed",
               "request_id", job->req->request_id, NULL);
        _exit(86);
    }
#else
    (void)job;
#endif
}

static void job_after_ca(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    if (job->err == PC_OK)
        crash_hook_after_ca(job);
    pc_histogram_observe(job->w->m.ca_s, (double)job->ca_us / 1e6);
    if (job->err != PC_OK)
        job_fail(job, job->err, &job->diag);
    else
        queue_or_retry(job, pool_pack, job_after_pack);
    job_unref(job);
}

/* ---- intent: recorded before the CA is asked ---------------------------------------------- */

static void job_to_ca(pc_job_t *job);

/* A remote CA answered, on the loop thread. */
static void job_on_ca_signed(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    job->ca_us = job_now_us() - job->ca_us;
    if (job->step == STEP_ENDED) {
        X509_free(cert);
    } else {
        pc_histogram_observe(job->w->m.ca_s, (double)job->ca_us / 1e6);
        pc_diag_t d = {{0}};
        if (err == PC_OK)
            err = pc_issue_set0_cert(job->issue, cert, &d);
        else
            pc_fail(&d, err, "%s", diag != NULL ? diag->msg : pc_strerror(err));
        if (err != PC_OK) {
            job_fail(job, err, &d);
        } else {
            crash_hook_after_ca(job);
            queue_or_retry(job, pool_pack, job_after_pack);
        }
    }
    job_unref(job);
}

static void submit_remote(pc_job_t *job)
{
    pc_ca_t *ca = pc_issue_get0_ca(job->issue);
    job_ref(job); /* before the call: a refusal may answer at once */
    job->ca_us = job_now_us();
    ca->ops->submit_csr(ca, pc_issue_get0_csr(job->issue), pc_issue_ca_params(job->issue),
                        job_on_ca_signed, job);
}

static void job_on_intent(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job->step != STEP_ENDED) {
        if (err == PC_OK && !pc_issue_get0_ca(job->issue)->ops->blocking) {
            submit_remote(job);
        } else if (err == PC_OK) {
            queue_or_retry(job, pool_ca, job_after_ca);
        } else if (err == PC_ERR_CONFLICT) {
            job->owned = false; /* lease lost before the CA: claim again, nothing signed yet */
            uv_timer_stop(&job->renew);
            job_claim(job);
        } else {
            pc_worker_note_error(job->w, diag != NULL ? diag->msg : pc_strerror(err));
            job_retry(job, job_to_ca, 0);
        }
    }
    job_unref(job);
}

static void job_to_ca(pc_job_t *job)
{
    char intent[160];
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_issue_intent(job->issue, intent, sizeof(intent), &diag);
    if (err != PC_OK) {
        job_fail(job, err, &diag);
        return;
    }
    if (pc_dedupe_set_intent(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                             (const unsigned char *)intent, strlen(intent), job_on_intent,
                             job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, job_to_ca, 0);
}

/* ---- front: key and CSR ------------------------------------------------------------------- */

static void pool_front(uv_work_t *req) /* pool thread */
{
    pc_job_t *job = req->data;
    uint64_t t0 = job_now_us();
    EVP_PKEY *key = NULL;
    if (job->w->keypool != NULL)
        key = pc_keypool_take(job->w->keypool, pc_issue_key_spec(job->issue));
    if (key != NULL)
        pc_issue_set0_key(job->issue, key);
    else
        job->err = pc_issue_keygen(job->issue, job->w->engine->keygen_mode, &job->diag);
    job->keygen_us = job_now_us() - t0;
    if (job->err == PC_OK)
        job->err = pc_issue_make_csr(job->issue, &job->diag);
}

static void job_after_front(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    pc_histogram_observe(job->w->m.keygen_s, (double)job->keygen_us / 1e6);
    if (job->err != PC_OK)
        job_fail(job, job->err, &job->diag);
    else
        job_to_ca(job);
    job_unref(job);
}

void job_work_issue(pc_job_t *job)
{
    pc_diag_t diag = {{0}};
    if (job->issue == NULL) {
        const char *ca_name = job->req->issue->profile->ca_name;
        pc_ca_t *ca = pc_engine_find_ca(job->w->engine, ca_name);
        pc_err_t err = ca == NULL ? pc_fail(&diag, PC_ERR_INVALID_PARAM,
                                            "CA \"%s\" is not configured on this worker", ca_name)
                                  : pc_issue_prepare(job->req, ca, &job->issue, &diag);
        if (err != PC_OK) {
            job_fail(job, err, &diag);
            return;
        }
    }
    /* A retry after a retryable CA failure starts again at the CA: the key and CSR stand. */
    if (pc_issue_get0_csr(job->issue) != NULL)
        job_to_ca(job);
    else
        queue_or_retry(job, pool_front, job_after_front);
}

/* ---- REVOKE and IMPORT_PFX ---------------------------------------------------------------- */

static void pool_engine(uv_work_t *req) /* pool thread */
{
    pc_job_t *job = req->data;
    uint64_t t0 = job_now_us();
    job->result = pc_engine_run_sync(job->w->engine, job->req);
    job->ca_us = job_now_us() - t0;
}

static void job_after_engine(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    pc_histogram_observe(job->w->m.ca_s, (double)job->ca_us / 1e6);
    if (job->result != NULL && job->result->retryable) {
        pc_diag_t diag;
        pc_fail(&diag, PC_ERR_CA_UNAVAILABLE, "%s", job->result->error_message);
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
        job->result = NULL;
        job_fail(job, PC_ERR_CA_UNAVAILABLE, &diag);
    } else {
        job_result_ready(job);
    }
    job_unref(job);
}

static void job_on_remote_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    X509_free(cert);
    if (job->step != STEP_ENDED) {
        pc_diag_t d = {{0}};
        if (err != PC_OK) {
            pc_fail(&d, err, "%s", diag != NULL ? diag->msg : pc_strerror(err));
            job_fail(job, err, &d);
        } else if ((job->result = pc_result_new(job->req)) != NULL) {
            job->result->status = PKCS__V1__STATUS__REVOKED;
            char *serial = strdup(job->req->revoke->serial_number);
            if (serial != NULL)
                job->result->serial_number = serial;
            job_result_ready(job);
        } else {
            job_result_ready(job); /* out of memory: it retries */
        }
    }
    job_unref(job);
}

/* REVOKE on a remote CA: asynchronous on the loop, not through the engine's blocking path. */
static bool revoke_remote(pc_job_t *job)
{
    if (job->req->body_case != PKCS__V1__REQUEST__BODY_REVOKE)
        return false;
    pc_ca_t *ca = pc_engine_find_ca(job->w->engine, job->req->revoke->ca_name);
    if (ca == NULL || ca->ops->blocking)
        return false;
    static const pc_revoke_reason_t reasons[] = {
        [PKCS__V1__REVOKE_REASON__KEY_COMPROMISE] = PC_REVOKE_KEY_COMPROMISE,
        [PKCS__V1__REVOKE_REASON__AFFILIATION_CHANGED] = PC_REVOKE_AFFILIATION_CHANGED,
        [PKCS__V1__REVOKE_REASON__SUPERSEDED] = PC_REVOKE_SUPERSEDED,
        [PKCS__V1__REVOKE_REASON__CESSATION_OF_OPERATION] = PC_REVOKE_CESSATION_OF_OPERATION,
    };
    unsigned r = (unsigned)job->req->revoke->reason;
    pc_ca_revoke_t rev = {
        .serial_hex = job->req->revoke->serial_number,
        .reason = r < sizeof(reasons) / sizeof(reasons[0]) ? reasons[r] : PC_REVOKE_UNSPECIFIED};
    job_ref(job);
    ca->ops->revoke(ca, &rev, job_on_remote_revoked, job);
    return true;
}

void job_work_engine(pc_job_t *job)
{
    if (job->result != NULL) {
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
        job->result = NULL;
    }
    if (revoke_remote(job))
        return;
    if (!queue_work(job, pool_engine, job_after_engine))
        job_retry(job, job_work_engine, 0);
}

/* ---- orphans ------------------------------------------------------------------------------ */

static pc_ca_t *job_ca(const pc_job_t *job)
{
    if (job->req->body_case != PKCS__V1__REQUEST__BODY_ISSUE)
        return NULL;
    return pc_engine_find_ca(job->w->engine, job->req->issue->profile->ca_name);
}

/* A predecessor that recorded an intent may have obtained a certificate no one will ever
 * receive: revoke every certificate the CA issued for this request (we never hold their keys,
 * so none can be reused). Pool thread. */
static void pool_orphans(uv_work_t *req)
{
    pc_job_t *job = req->data;
    pc_ca_t *ca = job_ca(job);
    char(*serials)[64] = NULL;
    size_t count = 0, revoked = 0;
    if (ca == NULL || ca->ops->find_issued == NULL) {
        pc_fail(&job->diag, PC_ERR_NOT_SUPPORTED, "CA cannot look up certificates by request");
        return;
    }
    job->err = ca->ops->find_issued(ca, job->req->request_id, &serials, &count, &job->diag);
    for (size_t i = 0; job->err == PC_OK && i < count; i++) {
        pc_ca_revoke_t rev = {.serial_hex = serials[i], .reason = PC_REVOKE_SUPERSEDED};
        job->err = pc_ca_revoke_sync(ca, &rev, &job->diag);
        revoked += job->err == PC_OK;
    }
    if (job->err == PC_OK)
        snprintf(job->diag.msg, sizeof(job->diag.msg), "revoked %zu orphaned certificate(s)%s%s",
                 revoked, count > 0 ? ", last serial " : "", count > 0 ? serials[count - 1] : "");
    free(serials);
}

static void job_after_orphans(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    if (job->err != PC_OK && pc_err_retryable(job->err)) {
        job_retry(job, job_work_orphans, 0);
    } else {
        pc_log(job->err == PC_OK ? PC_LOG_WARN : PC_LOG_ERROR, "orphan_revoked", job->diag.msg,
               "request_id", job->req->request_id, NULL);
        free(job->prior_intent);
        job->prior_intent = NULL;
        job_work_issue(job);
    }
    job_unref(job);
}

void job_work_orphans(pc_job_t *job)
{
    if (!queue_work(job, pool_orphans, job_after_orphans))
        job_retry(job, job_work_orphans, 0);
}

static void pool_revoke_own(uv_work_t *req)
{
    pc_job_t *job = req->data;
    pc_ca_t *ca = job_ca(job);
    pc_ca_revoke_t rev = {.serial_hex = job->result->serial_number, .reason = PC_REVOKE_SUPERSEDED};
    job->err = ca == NULL ? PC_ERR_NOT_FOUND : pc_ca_revoke_sync(ca, &rev, &job->diag);
}

static void job_after_revoke_own(uv_work_t *req, int status)
{
    pc_job_t *job = req->data;
    if (!after_common(job, status))
        return;
    pc_log(PC_LOG_WARN, "orphan_revoked",
           job->err == PC_OK ? "another worker answered this request; our certificate is revoked"
                             : job->diag.msg,
           "request_id", job->req->request_id, "serial", job->result->serial_number, NULL);
    job_produce(job);
    job_unref(job);
}

void job_revoke_own(pc_job_t *job)
{
    if (!queue_work(job, pool_revoke_own, job_after_revoke_own))
        job_produce(job); /* best effort: the other owner's result goes out regardless */
}
