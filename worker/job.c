/*
 * job.c - one consumed message through the worker, as an explicit state machine on the loop
 * thread. Read it top to bottom:
 *
 *   pc_job_start → job_decode → (keyq) job_claim → job_on_claimed → job_work_* (pool)
 *     → job_result_ready → job_complete → job_on_completed → job_produce → job_on_delivered
 *     → job_end (offset marked done, next request of the same key started)
 *
 * Undecodable or unauthenticated messages go to the dead-letter topic; invalid requests get a
 * FAILED result; retryable failures wait with backoff and jitter and try again, so a message
 * is never skipped. A job is freed when its pipeline has ended and no async operation still
 * refers to it (refs), in the close callback of its last timer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "job_int.h"
#include "log.h"
#include "request.h"
#include "clock.h"
#include "result.h"

static void job_complete(pc_job_t *job);
static void job_end(pc_job_t *job, bool done);

uint64_t job_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void job_on_timer_closed(uv_handle_t *handle)
{
    pc_job_t *job = handle->data;
    if (--job->timers_open > 0)
        return;
    pc_worker_t *w = job->w;
    free(job);
    pc_worker_job_finished(w);
}

static void job_free(pc_job_t *job)
{
    pc_worker_t *w = job->w;
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        w->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    pc_issue_free(job->issue);
    if (job->result != NULL)
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
    if (job->req != NULL)
        protobuf_c_message_free_unpacked(&job->req->base, NULL);
    if (job->signed_req != NULL)
        protobuf_c_message_free_unpacked(&job->signed_req->base, NULL);
    free(job->out);
    free(job->prior_intent);
    w->in_flight--;
    uv_close((uv_handle_t *)&job->timer, job_on_timer_closed);
    uv_close((uv_handle_t *)&job->renew, job_on_timer_closed);
}

void job_ref(pc_job_t *job)
{
    job->refs++;
}

void job_unref(pc_job_t *job)
{
    if (--job->refs == 0)
        job_free(job);
}

static void log_job(pc_log_level_t level, const pc_job_t *job, const char *event, const char *msg)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)job->rkm->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)job->rkm->offset);
    const char *rid = job->req != NULL ? job->req->request_id : "";
    const char *tenant = job->req != NULL ? job->req->tenant_id : "";
    pc_log(level, event, msg, "request_id", rid, "tenant_id", tenant, "partition", partition,
           "offset", offset, NULL);
}

/* ---- retries ----------------------------------------------------------------------------- */

static void job_on_retry_timer(uv_timer_t *timer)
{
    pc_job_t *job = timer->data;
    job_fn fn = job->retry_fn;
    job->retry_fn = NULL;
    if (!job_abandon_if_revoked(job))
        fn(job);
}

static void job_abandon(pc_job_t *job);

void job_retry(pc_job_t *job, job_fn fn, uint64_t min_delay_ms)
{
    const pc_config_worker_t *c = &job->w->cfg->worker;
    if (job->w->state == PC_WORKER_STOPPING) {
        /* Shutting down: give the message back instead of waiting; it is redelivered. */
        job_abandon(job);
        return;
    }
    uint64_t delay = c->retry_min_ms;
    for (unsigned i = 0; i < job->attempt && delay < c->retry_max_ms; i++)
        delay *= 2;
    if (delay > c->retry_max_ms)
        delay = c->retry_max_ms;
    unsigned char r = 0;
    RAND_bytes(&r, 1);
    delay = delay / 2 + (delay / 2) * r / 255; /* jitter: half to all of the backoff */
    if (delay < min_delay_ms)
        delay = min_delay_ms;
    job->attempt++;
    job->retry_fn = fn;
    pc_counter_inc(job->w->m.retries);
    uv_timer_start(&job->timer, job_on_retry_timer, delay, 0);
}

/* ---- abandonment (rebalance, drain timeout) ---------------------------------------------- */

static void job_on_released(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    job_unref(arg);
}

static void job_abandon(pc_job_t *job)
{
    uv_timer_stop(&job->timer);
    if (job->owned && pc_dedupe_release(job->w->dedupe, job->req->tenant_id, job->req->request_id,
                                        job->token, job_on_released, job) == PC_OK)
        job_ref(job);
    job->owned = false;
    log_job(PC_LOG_INFO, job, "abandoned",
            "partition revoked or drain timed out; the next "
            "owner of the partition will process it");
    job_end(job, false);
}

bool job_abandon_if_revoked(pc_job_t *job)
{
    if (!job->revoked || job->step >= STEP_WORK)
        return false;
    job_abandon(job);
    return true;
}

/* ---- decode ------------------------------------------------------------------------------ */

static void job_dead_letter(pc_job_t *job, pc_err_t err, const char *reason)
{
    Pkcs__V1__DeadLetter dl;
    char reason_copy[600], topic[256];
    snprintf(reason_copy, sizeof(reason_copy), "%s", reason);
    snprintf(topic, sizeof(topic), "%s", rd_kafka_topic_name(job->rkm->rkt));
    pkcs__v1__dead_letter__init(&dl);
    dl.schema_version = PC_SCHEMA_VERSION;
    dl.error_code = pc_result_error_code(err);
    dl.reason = reason_copy;
    dl.original_value.data = job->rkm->payload;
    dl.original_value.len = job->rkm->len;
    dl.original_key.data = job->rkm->key;
    dl.original_key.len = job->rkm->key_len;
    dl.topic = topic;
    dl.partition = job->rkm->partition;
    dl.offset = job->rkm->offset;
    dl.failed_at_ms = pc_now_ms();
    dl.worker_id = job->w->cfg->worker.id;
    job->out_len = protobuf_c_message_get_packed_size(&dl.base);
    job->out = malloc(job->out_len == 0 ? 1 : job->out_len);
    if (job->out != NULL)
        protobuf_c_message_pack(&dl.base, job->out);
    job->out_topic = job->w->cfg->worker.dlq_topic;
    job->outcome = "dlq";
    pc_log(PC_LOG_WARN, "dlq", reason, "code", pc_err_code_name(err), NULL);
    job->step = STEP_PRODUCE;
    job_produce(job);
}

static pc_err_t job_authenticate(pc_job_t *job, pc_diag_t *diag)
{
    const Pkcs__V1__SignedRequest *sr = job->signed_req;
    if (sr->signature.len == 0 && job->w->cfg->worker.allow_unsigned)
        return PC_OK;
    if (job->w->auth == NULL)
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                       "request is signed by %s but no signers are configured on this worker",
                       sr->signer_key_id);
    return pc_auth_verify(job->w->auth, sr, diag);
}

static void job_decode(pc_job_t *job)
{
    pc_diag_t diag = {{0}};
    char reason[600];
    job->signed_req = pkcs__v1__signed_request__unpack(NULL, job->rkm->len, job->rkm->payload);
    if (job->signed_req == NULL) {
        job_dead_letter(job, PC_ERR_BAD_MESSAGE,
                        "message is not a pkcs.v1.SignedRequest (protobuf decoding failed)");
        return;
    }
    pc_err_t err = job_authenticate(job, &diag);
    if (err != PC_OK) {
        snprintf(reason, sizeof(reason), "refused: %s", diag.msg);
        job_dead_letter(job, err, reason);
        return;
    }
    job->req = pkcs__v1__request__unpack(NULL, job->signed_req->request.len,
                                         job->signed_req->request.data);
    if (job->req == NULL) {
        job_dead_letter(job, PC_ERR_BAD_MESSAGE,
                        "signed bytes are not a pkcs.v1.Request (protobuf decoding failed)");
        return;
    }
    if ((err = pc_request_validate(job->req, pc_now_ms(), &diag)) != PC_OK) {
        job_fail(job, err, &diag); /* a FAILED result; nothing claimed */
        return;
    }
    job->step = STEP_QUEUED;
    if (pc_keyq_push(job->w->keyq, &job->kq, job->rkm->key, job->rkm->key_len))
        job_claim(job);
}

/* ---- claim ------------------------------------------------------------------------------- */

static void job_on_renewed(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (err == PC_ERR_CONFLICT && !job->lease_lost) {
        job->lease_lost = true;
        log_job(PC_LOG_WARN, job, "lease_lost", "another worker took this request over");
    }
    job_unref(job);
}

static void job_on_renew_timer(uv_timer_t *timer)
{
    pc_job_t *job = timer->data;
    if (job->owned && pc_dedupe_renew(job->w->dedupe, job->req->tenant_id, job->req->request_id,
                                      job->token, job_on_renewed, job) == PC_OK)
        job_ref(job);
}

static void job_on_claimed(void *arg, pc_err_t err, const pc_claim_t *claim, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job->step == STEP_ENDED) {
        job_unref(job);
        return;
    }
    if (err != PC_OK) {
        pc_worker_note_error(job->w, diag != NULL ? diag->msg : pc_strerror(err));
        job_retry(job, job_claim, 0);
    } else if (claim->state == PC_CLAIM_DONE) {
        /* Our own certificate, if we made one and lost the lease, is an orphan now. */
        bool ours_lost = job->out != NULL && job->result != NULL &&
                         job->result->status == PKCS__V1__STATUS__ISSUED;
        free(job->out);
        job->out = malloc(claim->result_len == 0 ? 1 : claim->result_len);
        if (job->out != NULL)
            memcpy(job->out, claim->result, claim->result_len);
        job->out_len = claim->result_len;
        job->out_topic = job->w->cfg->worker.results_topic;
        job->outcome = "replayed";
        job->step = STEP_PRODUCE;
        if (ours_lost)
            job_revoke_own(job);
        else
            job_produce(job);
    } else if (claim->state == PC_CLAIM_BUSY) {
        job->attempt = 0;
        job_retry(job, job_claim,
                  claim->retry_after_ms > 50 ? (uint64_t)claim->retry_after_ms : 50);
    } else {
        job->owned = true;
        memcpy(job->token, claim->token, sizeof(job->token));
        job->fence = claim->fence;
        job->attempt = 0;
        uint64_t every = job->w->cfg->worker.lease_ms / 3;
        uv_timer_start(&job->renew, job_on_renew_timer, every, every);
        if (claim->intent != NULL && claim->intent_len > 0 && job->out == NULL &&
            (job->prior_intent = malloc(claim->intent_len)) != NULL) {
            memcpy(job->prior_intent, claim->intent, claim->intent_len);
            job->prior_intent_len = claim->intent_len;
        }
        if (job->out != NULL) {
            /* Claimed again after losing the lease with the result already made: record it. */
            job->step = STEP_COMPLETE;
            job_complete(job);
        } else if (!job_abandon_if_revoked(job)) {
            job->step = STEP_WORK;
            if (job->prior_intent != NULL)
                job_work_orphans(job);
            else if (job->req->body_case == PKCS__V1__REQUEST__BODY_ISSUE)
                job_work_issue(job);
            else
                job_work_engine(job);
        }
    }
    job_unref(job);
}

void job_claim(pc_job_t *job)
{
    if (job->out == NULL && job_abandon_if_revoked(job))
        return;
    job->step = STEP_CLAIM;
    if (pc_dedupe_claim(job->w->dedupe, job->req->tenant_id, job->req->request_id, job_on_claimed,
                        job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, job_claim, 0);
}

/* ---- results ----------------------------------------------------------------------------- */

void job_fail(pc_job_t *job, pc_err_t err, const pc_diag_t *diag)
{
    if (pc_err_retryable(err)) {
        pc_worker_note_error(job->w, diag->msg);
        log_job(PC_LOG_WARN, job, "retried", diag->msg);
        job_retry(job,
                  job->req->body_case == PKCS__V1__REQUEST__BODY_ISSUE ? job_work_issue
                                                                       : job_work_engine,
                  0);
        return;
    }
    if (job->result == NULL)
        job->result = pc_result_new(job->req);
    if (job->result != NULL)
        pc_result_set_error(job->result, err, diag);
    job_result_ready(job);
}

static const char *outcome_of(const Pkcs__V1__Result *res)
{
    switch (res->status) {
    case PKCS__V1__STATUS__ISSUED:
        return "issued";
    case PKCS__V1__STATUS__REVOKED:
        return "revoked";
    case PKCS__V1__STATUS__IMPORTED:
        return "imported";
    default:
        return "failed";
    }
}

/* set_timing fills the result's timing: when the request was created and received and when
 * its result was ready, and the stage times (zero for the stages a kind does not have). Every
 * result carries it, so that a consumer can measure each kind's latency. */
static void set_timing(pc_job_t *job, Pkcs__V1__Result *res)
{
    Pkcs__V1__Timing *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    pkcs__v1__timing__init(t);
    t->received_at_ms = job->received_ms;
    t->request_created_at_ms = job->req->created_at_ms;
    t->completed_at_ms = pc_now_ms();
    t->keygen_us = job->keygen_us;
    t->ca_us = job->ca_us;
    t->pack_us = job->pack_us;
    uint64_t busy_ms = (job->keygen_us + job->ca_us + job->pack_us) / 1000;
    uint64_t total_ms = (uint64_t)(t->completed_at_ms - t->received_at_ms);
    t->wait_us = total_ms > busy_ms ? (total_ms - busy_ms) * 1000 : 0;
    res->timing = t;
}

void job_result_ready(pc_job_t *job)
{
    Pkcs__V1__Result *res = job->result;
    if (res == NULL) {
        pc_diag_t diag;
        pc_fail(&diag, PC_ERR_NOMEM, "out of memory building the result");
        pc_worker_note_error(job->w, diag.msg);
        job_retry(job,
                  job->req->body_case == PKCS__V1__REQUEST__BODY_ISSUE ? job_work_issue
                                                                       : job_work_engine,
                  0);
        return;
    }
    if (res->timing == NULL)
        set_timing(job, res);
    char *id = strdup(job->w->cfg->worker.id);
    if (id != NULL) {
        if (res->worker_id != protobuf_c_empty_string)
            free(res->worker_id);
        res->worker_id = id;
    }
    job->outcome = outcome_of(res);
    job->out_len = protobuf_c_message_get_packed_size(&res->base);
    job->out = malloc(job->out_len == 0 ? 1 : job->out_len);
    if (job->out != NULL)
        protobuf_c_message_pack(&res->base, job->out);
    job->out_topic = job->w->cfg->worker.results_topic;
    job->step = STEP_COMPLETE;
    job_complete(job);
}

static void job_on_completed(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job->step != STEP_ENDED) {
        if (err == PC_OK) {
            job->owned = false;
            uv_timer_stop(&job->renew);
            job->step = STEP_PRODUCE;
            job_produce(job);
        } else if (err == PC_ERR_CONFLICT) {
            /* Fenced out: another worker took the request over, or Redis lost the record.
             * Claim again: DONE publishes the other owner's result; OWNED records ours, made
             * already, so no second certificate is issued for the request. */
            pc_counter_inc(job->w->m.lease_lost);
            log_job(PC_LOG_WARN, job, "lease_lost", "lease lost before completion; claiming again");
            job->owned = false;
            uv_timer_stop(&job->renew);
            job->attempt = 0;
            job_claim(job);
        } else {
            pc_worker_note_error(job->w, diag != NULL ? diag->msg : pc_strerror(err));
            job_retry(job, job_complete, 0);
        }
    }
    job_unref(job);
}

static void job_complete(pc_job_t *job)
{
    if (!job->owned) { /* a request refused before its claim: nothing to record */
        job->step = STEP_PRODUCE;
        job_produce(job);
        return;
    }
    if (pc_dedupe_complete(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                           job->fence, job->out, job->out_len, job_on_completed, job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, job_complete, 0);
}

/* ---- publish ----------------------------------------------------------------------------- */

static const char *job_kind(const pc_job_t *job)
{
    if (job->req == NULL)
        return "UNKNOWN";
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pkcs__v1__kind__descriptor, job->req->kind);
    return v != NULL ? v->name : "UNKNOWN";
}

static void job_count_outcome(pc_job_t *job)
{
    pc_worker_t *w = job->w;
    const char *o = job->outcome;
    pc_worker_count_request(&w->m, job_kind(job), o);
    if (strcmp(o, "issued") == 0 || strcmp(o, "imported") == 0)
        w->count_issued++;
    else if (strcmp(o, "revoked") == 0)
        w->count_revoked++;
    else if (strcmp(o, "dlq") == 0)
        w->count_dlq++;
    else if (strcmp(o, "failed") == 0)
        w->count_failed++;
    pc_histogram_observe(w->m.e2e_s, (double)(pc_now_ms() - job->received_ms) / 1000.0);
}

static void job_on_delivered(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job->step != STEP_ENDED) {
        if (err == PC_OK) {
            job_count_outcome(job);
            if (job->req != NULL) {
                const char *msg = job->result != NULL && job->result->error_message[0] != '\0'
                                      ? job->result->error_message
                                      : job->outcome;
                log_job(strcmp(job->outcome, "failed") == 0 ? PC_LOG_WARN : PC_LOG_INFO, job,
                        job->outcome, msg);
            }
            job_end(job, true);
        } else {
            pc_worker_note_error(job->w, diag != NULL ? diag->msg : pc_strerror(err));
            job_retry(job, job_produce, 0);
        }
    }
    job_unref(job);
}

void job_produce(pc_job_t *job)
{
    if (job->out == NULL) {
        pc_diag_t diag;
        pc_fail(&diag, PC_ERR_NOMEM, "out of memory for the outgoing message");
        pc_worker_note_error(job->w, diag.msg);
        job_end(job, false); /* redelivered after a restart; never skipped */
        return;
    }
    if (pc_kafka_produce(job->w->kafka, job->out_topic, job->rkm->key, job->rkm->key_len, job->out,
                         job->out_len, job_on_delivered, job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, job_produce, 0);
}

/* ---- end --------------------------------------------------------------------------------- */

static void job_end(pc_job_t *job, bool done)
{
    pc_worker_t *w = job->w;
    job->step = STEP_ENDED;
    uv_timer_stop(&job->timer);
    uv_timer_stop(&job->renew);
    pc_keyq_entry_t *next = pc_keyq_pop(w->keyq, &job->kq);
    if (done)
        pc_kafka_message_done(w->kafka, job->rkm);
    else
        pc_kafka_message_release(w->kafka, job->rkm);
    job->rkm = NULL;
    if (next != NULL) {
        pc_job_t *nj = (pc_job_t *)((char *)next - offsetof(pc_job_t, kq));
        job_claim(nj);
    }
    job_unref(job);
}

/* ---- entry points ------------------------------------------------------------------------ */

void pc_job_start(pc_worker_t *w, rd_kafka_message_t *rkm)
{
    pc_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        pc_kafka_message_release(w->kafka, rkm); /* not done: redelivered, never skipped */
        pc_worker_note_error(w, "out of memory for a new request");
        return;
    }
    job->w = w;
    job->rkm = rkm;
    job->refs = 1;
    job->received_ms = pc_now_ms();
    uv_timer_init(w->loop, &job->timer);
    uv_timer_init(w->loop, &job->renew);
    job->timer.data = job->renew.data = job;
    job->timers_open = 2;
    job->next = w->jobs;
    if (w->jobs != NULL)
        w->jobs->prev = job;
    w->jobs = job;
    w->in_flight++;
    job_decode(job);
}

static bool in_parts(const rd_kafka_message_t *rkm, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition == rkm->partition &&
            strcmp(parts->elems[i].topic, rd_kafka_topic_name(rkm->rkt)) == 0)
            return true;
    return false;
}

/* Abandon now the jobs that wait on nothing but a timer or the key queue (before the CA, or
 * at any step when forced); jobs waiting on Redis or Kafka see the flag when their reply
 * arrives. */
static void abandon_marked(pc_worker_t *w, bool force)
{
    bool again = true;
    while (again) {
        again = false;
        for (pc_job_t *job = w->jobs; job != NULL; job = job->next) {
            bool waiting = uv_is_active((uv_handle_t *)&job->timer);
            bool idle = job->step == STEP_QUEUED || (waiting && (job->step == STEP_CLAIM || force));
            if (job->revoked && idle && job->rkm != NULL) {
                job_abandon(job);
                again = true; /* the list changed under us */
                break;
            }
        }
    }
}

void pc_job_revoke_partitions(pc_worker_t *w, const rd_kafka_topic_partition_list_t *parts)
{
    for (pc_job_t *job = w->jobs; job != NULL; job = job->next)
        if (job->rkm != NULL && in_parts(job->rkm, parts))
            job->revoked = true;
    abandon_marked(w, false);
}

void pc_job_abandon_all(pc_worker_t *w)
{
    for (pc_job_t *job = w->jobs; job != NULL; job = job->next)
        job->revoked = true;
    abandon_marked(w, true);
}
