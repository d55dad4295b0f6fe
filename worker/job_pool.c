/*
 * job_pool.c - the CPU-bound work of a job, on libuv's thread pool: key generation and what the
 * CA is asked (a parsed request or a CSR), packing the PKCS#12 into the envelope, and IMPORT_PFX.
 * job.c queues these and continues in its after-work callbacks on the loop thread; nothing here
 * calls back into the state machine, so this file can be read on its own. Pool threads: each
 * function touches only its job's issue, result, err, diag and stage times, which the loop thread
 * leaves alone while the work is queued.
 */
#include "clock.h"
#include "job_int.h"
#include "result.h"

void job_texts_from_result(pc_job_t *job)
{
    pc_result_cert_texts(job->result, job->texts.subject, sizeof(job->texts.subject),
                         job->texts.sans, sizeof(job->texts.sans));
    job->texts.set = true;
}

void job_pool_keygen(uv_work_t *work)
{
    pc_job_t *job = work->data;
    pc_worker_t *w = job->w;
    uint64_t t0 = pc_mono_us();
    EVP_PKEY *key = NULL;
    if (w->keypool != NULL)
        key = pc_keypool_take(w->keypool, pc_issue_key_spec(job->issue));
    if (key != NULL)
        pc_issue_set0_key(job->issue, key);
    else
        job->err = pc_issue_keygen(job->issue, w->engine->keygen_mode, &job->diag);
    job->keygen_us = pc_mono_us() - t0;
    if (job->err == PC_OK)
        job->err = pc_issue_make_request(job->issue, &job->diag);
}

void job_pool_pack(uv_work_t *work)
{
    pc_job_t *job = work->data;
    uint64_t t0 = pc_mono_us();
    job->err = pc_issue_pack(job->issue, &job->diag);
    if (job->err == PC_OK) {
        job->result = pc_result_new(job->req);
        job->err = job->result == NULL
                       ? pc_fail(&job->diag, PC_ERR_NOMEM, "out of memory building the result")
                       : pc_issue_fill_result(job->issue, job->result, &job->diag);
    }
    if (job->err == PC_OK) {
        pc_cert_texts(pc_issue_get0_cert(job->issue), job->texts.subject,
                      sizeof(job->texts.subject), job->texts.sans, sizeof(job->texts.sans));
        job->texts.set = true;
    }
    job->pack_us = pc_mono_us() - t0;
}

void job_pool_import(uv_work_t *work)
{
    pc_job_t *job = work->data;
    uint64_t t0 = pc_mono_us();
    job->result = pc_result_new(job->req);
    job->err =
        job->result == NULL
            ? pc_fail(&job->diag, PC_ERR_NOMEM, "out of memory building the result")
            : pc_engine_import(job->w->engine, job->req->import_pfx, job->result, &job->diag);
    if (job->err == PC_OK)
        job_texts_from_result(job);
    job->pack_us = pc_mono_us() - t0;
}
