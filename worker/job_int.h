/*
 * job_int.h - one request in the worker: the job struct, its states and outcomes, shared by
 * job.c (the state machine, loop thread) and job_pool.c (the work it sends to the thread pool).
 */
#ifndef PC_JOB_INT_H
#define PC_JOB_INT_H

#include "issue.h"
#include "worker.h"

/* The states of a job, in the order a request normally passes them; job.c draws the graph. */
typedef enum job_state {
    JOB_DECODE = 0, /* decode, authenticate, validate the message */
    JOB_QUEUED,     /* behind an earlier request with the same message key */
    JOB_CLAIM,      /* claim the request record in Redis */
    JOB_ORPHANS,    /* a predecessor reached the CA and died: revoke what it obtained */
    JOB_RENEWAL,    /* renew the current certificate: find it in the inventory */
    JOB_KEYGEN,     /* pool: the key pair (or one from the key pool) and the CSR */
    JOB_INTENT,     /* Redis: record the intent before the CA is asked */
    JOB_CA,         /* the CA signs */
    JOB_SIGNED,     /* Redis: record the serial, for CAs that cannot look up by request */
    JOB_PACK,       /* pool: PKCS#12 and envelope to the device key */
    JOB_REVOKE,     /* the CA revokes (a REVOKE request) */
    JOB_IMPORT,     /* pool: an IMPORT_PFX upload */
    JOB_COMPLETE,   /* Redis: record the result under our fencing token */
    JOB_REVOKE_OWN, /* another worker answered first: revoke the certificate we obtained */
    JOB_PUBLISH,    /* Kafka: produce the result (or dead letter) */
    JOB_AUDIT,      /* Kafka: the audit record of what happened (and its log line) */
    JOB_SUPERSEDE,  /* a renewal's result is delivered: revoke the certificate it replaces */
    JOB_ENDED,
    JOB__STATES
} job_state_t;

/* How a job ended, for logs (the event name) and pkcs_requests_total{outcome}. */
typedef enum job_outcome {
    OUT_NONE = 0,
    OUT_ISSUED,
    OUT_REVOKED,
    OUT_IMPORTED,
    OUT_FAILED,
    OUT_REPLAYED,
    OUT_DLQ,
    OUT__COUNT
} job_outcome_t;

struct pc_job {
    pc_job_t *prev, *next; /* the worker's list of live jobs */
    pc_worker_t *w;
    rd_kafka_message_t *rkm;
    job_state_t state;
    int refs;     /* the pipeline + outstanding async operations */
    bool revoked; /* partition taken away or drain timed out: abandon before the CA */
    bool lease_lost;
    pc_keyq_entry_t kq;

    Pkcs__V1__SignedRequest *signed_req;
    Pkcs__V1__Request *req;
    char content[65]; /* the request's content digest: the same id with other content conflicts */
    bool owned;       /* we hold the Redis lease */
    char token[33];
    int64_t fence;
    bool intent_at_claim; /* this claim recorded our intent (pc_issue_claim_intent): no INTENT */
    bool ca_asked;        /* the CA was asked for a certificate at least once */

    unsigned char *prior_intent; /* a predecessor reached the CA: find its orphan */
    size_t prior_intent_len;
    pc_ca_serial_t *orphans; /* ORPHANS: the serials to revoke, and how far */
    size_t orphan_count, orphan_next, orphans_revoked;
    bool orphans_known; /* the CA's records or the intent say what was signed */

    pc_cert_ref_t *targets; /* REVOKE: what to revoke, how far, what was */
    size_t target_count, target_next;
    bool targets_known;
    pc_cert_ref_t *done_refs;
    size_t done_count;
    pc_cert_ref_t renews; /* a renewal: the certificate it replaces ("" serial: none) */
    bool renewal_known;   /* the certificate a renewal replaces was looked for */

    pc_issue_t *issue;
    char own_serial[64];      /* the certificate the CA signed for us, "" before */
    Pkcs__V1__Result *result; /* made by the work (success or failure) */
    unsigned char *out;       /* serialized Result or DeadLetter to produce */
    size_t out_len;
    const char *out_topic;
    job_outcome_t outcome;
    bool logged;      /* the outcome's log line is written (AUDIT may be entered again) */
    pc_err_t dlq_err; /* a dead letter's code and reason, kept to build it again smaller */
    char dlq_reason[600];
    size_t dlq_keep; /* bytes of the original a dead letter keeps */

    pc_err_t err; /* outcome of the pool work, read by its after-work callback */
    pc_diag_t diag;
    uv_work_t work;
    uv_timer_t timer; /* retry backoff, test stalls */
    uv_timer_t renew; /* lease renewal */
    int timers_open;
    unsigned attempt;
    int64_t retrying_since; /* wall ms of the first failure of the current state; 0: none */
    int64_t received_ms;
    uint64_t keygen_us, ca_us, pack_us;
    /* The delivered certificate's subject and SANs, for the inventory and the audit record:
     * written in the pool from the certificate at hand, so that the loop thread never decodes
     * it (job_texts_from_result when only the result has it). */
    struct {
        bool set;
        char subject[512], sans[512];
    } texts;
};

/* job_texts_from_result fills job->texts from job->result's certificate (decoding it). */
void job_texts_from_result(pc_job_t *job);

/* job_pool.c: the work job.c queues on the thread pool. Each touches only the job's issue,
 * result, err, diag and stage times (the loop thread leaves them alone while the work is queued)
 * and never calls back into the state machine: job.c's after-work callbacks do. Pool thread. */
void job_pool_keygen(uv_work_t *work); /* JOB_KEYGEN: key pair, CSR */
void job_pool_pack(uv_work_t *work);   /* JOB_PACK: PKCS#12, envelope, result */
void job_pool_import(uv_work_t *work); /* JOB_IMPORT: IMPORT_PFX into job->result */

/* job_stats_record (job_stats.c) counts the finished job in the cluster's statistics, by its
 * outcome; fire and forget. Loop thread. */
void job_stats_record(pc_job_t *job);

#endif
