/*
 * job_int.h - the job struct and the stage functions shared by job.c (transitions on the loop
 * thread) and job_work.c (the crypto and CA stages on pool threads).
 */
#ifndef PC_JOB_INT_H
#define PC_JOB_INT_H

#include "issue.h"
#include "worker.h"

typedef enum job_step {
    STEP_DECODE = 0,
    STEP_QUEUED,   /* behind an earlier request for the same key */
    STEP_CLAIM,    /* claiming the request in Redis */
    STEP_WORK,     /* keygen, CA, pack (or revoke) */
    STEP_COMPLETE, /* recording the result in Redis */
    STEP_PRODUCE,  /* publishing the result (or dead letter) */
    STEP_ENDED,
} job_step_t;

typedef void (*job_fn)(pc_job_t *job);

struct pc_job {
    pc_job_t *prev, *next; /* the worker's list of live jobs */
    pc_worker_t *w;
    rd_kafka_message_t *rkm;
    job_step_t step;
    int refs;     /* pipeline + outstanding async operations */
    bool revoked; /* partition taken away or drain timed out: abandon before the CA */
    bool lease_lost;
    pc_keyq_entry_t kq;

    Pkcs__V1__SignedRequest *signed_req;
    Pkcs__V1__Request *req;
    bool owned; /* we hold the Redis lease */
    char token[33];
    int64_t fence;

    unsigned char *prior_intent; /* a dead predecessor reached the CA: find its orphan */
    size_t prior_intent_len;

    pc_issue_t *issue;
    Pkcs__V1__Result *result; /* made by the work stage (success or failure) */
    unsigned char *out;       /* serialized Result or DeadLetter to produce */
    size_t out_len;
    const char *out_topic;
    const char *outcome; /* "issued", "failed", "revoked", "replayed", "dlq", ... */

    pc_err_t err; /* outcome of the pool stage */
    pc_diag_t diag;
    uv_work_t work;
    uv_timer_t timer; /* retry backoff */
    uv_timer_t renew; /* lease renewal */
    int timers_open;
    job_fn retry_fn;
    unsigned attempt;
    int64_t received_ms;
    uint64_t keygen_us, ca_us, pack_us;
};

/* job_work.c: pool-thread stages and their loop-thread continuations. */
void job_work_issue(pc_job_t *job);
void job_work_engine(pc_job_t *job);  /* REVOKE and IMPORT_PFX through pc_engine_run_sync */
void job_work_orphans(pc_job_t *job); /* revoke what a dead predecessor was issued, then work */
void job_revoke_own(pc_job_t *job);   /* our certificate lost to another owner's: revoke it */

/* job.c: transitions the stages continue with. */
void job_result_ready(pc_job_t *job); /* job->result set: serialize, complete, produce */
void job_fail(pc_job_t *job, pc_err_t err, const pc_diag_t *diag); /* retry or FAILED result */
void job_retry(pc_job_t *job, job_fn fn, uint64_t min_delay_ms);
void job_claim(pc_job_t *job);
void job_produce(pc_job_t *job);
void job_ref(pc_job_t *job);
void job_unref(pc_job_t *job);
bool job_abandon_if_revoked(pc_job_t *job);
uint64_t job_now_us(void);

#endif
