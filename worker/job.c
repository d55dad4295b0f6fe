/*
 * job.c - one consumed message through the worker, as one explicit state machine on the loop
 * thread. Every state is entered through job_to(), the one transition function, which runs the
 * state's action from the table `states`; the action ends in a request to Redis, Kafka, the CA
 * or the thread pool (job_pool.c), whose callback here picks the next state. Read top to bottom:
 *
 *   DECODE ──undecodable, unsigned, forged─────────────────────────────────────────┐ (dead letter)
 *     │ invalid request: FAILED result, nothing claimed ──────────────────────┐     │
 *     ▼                                                                       │     │
 *   QUEUED (behind an earlier request with the same message key)              │     │
 *     ▼                                                                       │     │
 *   CLAIM ──done before: the stored result (REVOKE_OWN first if we hold a     │     │
 *     │      certificate of our own) ─────────────────────────────────────────┼──┐  │
 *     │ owned                                                                 │  │  │
 *     ├─ a predecessor reached the CA ─▶ ORPHANS (revoke what it obtained) ─┐ │  │  │
 *     ▼                                                                   │ │  │  │
 *   ISSUE:  KEYGEN (pool) ─▶ [INTENT] ─▶ CA ─▶ [SIGNED] ─▶ PACK (pool) ┐   │ │  │  │
 *   REVOKE: REVOKE (the CA) ───────────────────────────────────────────┤ ◀─┘ │  │  │
 *   IMPORT_PFX: IMPORT (pool) ─────────────────────────────────────────┤     │  │  │
 *                                                                      ▼     │  │  │
 *                                                          COMPLETE ◀────────┘  │  │
 *                                                              │ recorded       │  │
 *                                                              ▼                ▼  ▼
 *                                         REVOKE_OWN ─────▶ PUBLISH ───▶ AUDIT ───▶ ENDED
 *                                                              (renewal) │          ▲ (offset done)
 *                                                                        ▼          │
 *                                                                        SUPERSEDE ─┘
 *
 *   INTENT records what the CA is about to be asked; for the local CA, whose intent is only its
 *   name, the claim recorded it already (claim_intent) and INTENT is skipped. SIGNED is for CAs
 *   that cannot look certificates up by request: the serial joins the intent record before
 *   anything else happens, so that a successor can revoke it.
 *
 * Retries: a retryable failure (Redis, Kafka or the CA unreachable) waits with backoff and
 * jitter in the same state and enters it again (job_retry). Lease lost: INTENT, SIGNED or
 * COMPLETE answered CONFLICT (another worker took the request over) go back to CLAIM, which
 * then finds the other owner's result (REVOKE_OWN if the CA signed for us) or our own lease
 * again. Failures that are not retryable become a FAILED result, recorded and published like
 * any other. A job whose partition was taken away is abandoned while it has not reached the
 * CA (QUEUED, CLAIM); later states finish. A job is freed when its pipeline has ended and no
 * async operation still refers to it (refs), in the close callback of its last timer.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "audit.h"
#include "clock.h"
#include "job_int.h"
#include "log.h"
#include "request.h"
#include "result.h"

static void job_to(pc_job_t *job, job_state_t next);
static void job_end(pc_job_t *job, bool done);

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
    free(job->orphans);
    free(job->targets);
    free(job->done_refs);
    w->in_flight--;
    uv_close((uv_handle_t *)&job->timer, job_on_timer_closed);
    uv_close((uv_handle_t *)&job->renew, job_on_timer_closed);
}

static void job_ref(pc_job_t *job)
{
    job->refs++;
}

static void job_unref(pc_job_t *job)
{
    if (--job->refs == 0)
        job_free(job);
}

/* An answer that comes after the job ended (abandoned meanwhile) is dropped. */
static bool job_live(const pc_job_t *job)
{
    return job->state != JOB_ENDED;
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

static const char *outcome_names[OUT__COUNT] = {
    [OUT_NONE] = "none",         [OUT_ISSUED] = "issued", [OUT_REVOKED] = "revoked",
    [OUT_IMPORTED] = "imported", [OUT_FAILED] = "failed", [OUT_REPLAYED] = "replayed",
    [OUT_DLQ] = "dlq",
};

/* ---- retries and failures ---------------------------------------------------------------- */

static void job_abandon(pc_job_t *job);

/* job_retry_done: the job is not retrying (any more); the worker counts those that are, for
 * its degraded status. */
static void job_retry_done(pc_job_t *job)
{
    if (job->retrying_since != 0) {
        job->retrying_since = 0;
        job->w->retrying--;
    }
}

/* Abandonable: the partition went away and the job has nothing the CA made for it. */
static bool job_abandonable(const pc_job_t *job)
{
    return job->revoked && job->state <= JOB_CLAIM && job->out == NULL &&
           job->own_serial[0] == '\0';
}

static void job_on_retry_timer(uv_timer_t *timer)
{
    pc_job_t *job = timer->data;
    if (job_abandonable(job))
        job_abandon(job);
    else
        job_to(job, job->state);
}

/* job_retry enters the current state again after a backoff (at least min_delay_ms). */
static void job_retry(pc_job_t *job, uint64_t min_delay_ms)
{
    if (job->retrying_since == 0) {
        job->retrying_since = pc_now_ms();
        job->w->retrying++;
    }
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
    pc_counter_inc(job->w->m.retries);
    uv_timer_start(&job->timer, job_on_retry_timer, delay, 0);
}

/* job_wait is job_retry for a dependency that failed (Redis, Kafka): remember why. */
static void job_wait(pc_job_t *job, pc_err_t err, const pc_diag_t *diag)
{
    pc_worker_note_error(job->w, diag != NULL ? diag->msg : pc_strerror(err));
    job_retry(job, 0);
}

static void job_result_ready(pc_job_t *job);

/* job_fail: a retryable failure is tried again in the same state; any other becomes the
 * request's FAILED result. */
static void job_give_up(pc_job_t *job, pc_err_t err, const pc_diag_t *diag);

/* The states whose retries wait on a CA: they end, after worker.retry_limit_ms or at the
 * request's deadline, in a FAILED result the upstream may send again (retryable). Waits on
 * Redis and Kafka do not end so: without them there is nowhere to record or publish anything,
 * and the worker is not ready meanwhile. */
static bool job_bounded(const pc_job_t *job)
{
    switch (job->state) {
    case JOB_ORPHANS:
    case JOB_CA:
    case JOB_REVOKE:
    case JOB_REVOKE_OWN:
        return true;
    default:
        return false;
    }
}

static void job_fail(pc_job_t *job, pc_err_t err, const pc_diag_t *diag)
{
    if (pc_err_retryable(err)) {
        int64_t now = pc_now_ms(), since = job->retrying_since != 0 ? job->retrying_since : now;
        bool over_limit = now - since >= (int64_t)job->w->cfg->worker.retry_limit_ms;
        bool past_deadline = job->req->deadline_ms != 0 && now >= job->req->deadline_ms;
        if (job_bounded(job) && (over_limit || past_deadline)) {
            job_give_up(job, err, diag);
            return;
        }
        pc_worker_note_error(job->w, diag->msg);
        log_job(PC_LOG_WARN, job, "retried", diag->msg);
        job_retry(job, 0);
        return;
    }
    if (job->result == NULL)
        job->result = pc_result_new(job->req);
    if (job->result != NULL)
        pc_result_set_error(job->result, err, diag);
    job_result_ready(job);
}

/* job_lease_lost: another worker took the request over; claim it again to find out what
 * happened (its result, or our lease back). */
static void job_lease_lost(pc_job_t *job, const char *why)
{
    pc_counter_inc(job->w->m.lease_lost);
    log_job(PC_LOG_WARN, job, "lease_lost", why);
    job->owned = false;
    uv_timer_stop(&job->renew);
    job_to(job, JOB_CLAIM);
}

static void job_on_released(void *arg, pc_err_t err, const pc_diag_t *diag);

/* job_intent_names_nothing tells whether the intent in our record is the one our claim wrote and
 * the CA was never asked since: a release may then drop the record as if it had none. */
static bool job_intent_names_nothing(const pc_job_t *job)
{
    return job->intent_at_claim && !job->ca_asked;
}

/* job_give_up ends a request whose CA kept failing: FAILED with the CA's error (retryable, so
 * the upstream may send it again later), published but not recorded, and the lease released
 * (an intent stays in the record), so that the request sent again is worked on anew. */
static void job_give_up(pc_job_t *job, pc_err_t err, const pc_diag_t *diag)
{
    char prefix[64];
    pc_diag_t d = *diag;
    snprintf(prefix, sizeof(prefix), "gave up after %lld s of retries",
             (long long)((pc_now_ms() - job->retrying_since) / 1000));
    pc_diag_prefix(&d, prefix);
    log_job(PC_LOG_ERROR, job, "gave_up", d.msg);
    pc_worker_note_error(job->w, d.msg);
    if (job->state == JOB_REVOKE_OWN) { /* the other owner's answer still goes out */
        log_job(PC_LOG_ERROR, job, "own_revoke_failed", d.msg);
        job_to(job, JOB_PUBLISH);
        return;
    }
    if (job->owned &&
        pc_dedupe_release(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                          job_intent_names_nothing(job), job_on_released, job) == PC_OK)
        job_ref(job);
    job->owned = false;
    uv_timer_stop(&job->renew);
    if (job->result == NULL)
        job->result = pc_result_new(job->req);
    if (job->result != NULL)
        pc_result_set_error(job->result, err, &d);
    job_result_ready(job);
}

/* ---- abandonment (rebalance, drain timeout) ---------------------------------------------- */

static void job_on_released(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    job_unref(arg);
}

static void job_abandon(pc_job_t *job)
{
    uv_timer_stop(&job->timer);
    if (job->owned &&
        pc_dedupe_release(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                          job_intent_names_nothing(job), job_on_released, job) == PC_OK)
        job_ref(job);
    job->owned = false;
    log_job(PC_LOG_INFO, job, "abandoned",
            "partition revoked or drain timed out; the next "
            "owner of the partition will process it");
    job_end(job, false);
}

/* ---- the thread pool --------------------------------------------------------------------- */

/* job_queue sends the state's work to the pool; after continues on the loop. */
static void job_queue(pc_job_t *job, uv_work_cb work, uv_after_work_cb after)
{
    job->err = PC_OK;
    job->diag.msg[0] = '\0';
    job->work.data = job;
    if (uv_queue_work(job->w->loop, &job->work, work, after) != 0) {
        job_wait(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "the thread pool refused work"});
        return;
    }
    job->w->pool_busy++;
    job_ref(job);
}

/* The common head of every after-work callback: false when the job must stop here. */
static bool job_back_from_pool(pc_job_t *job, int status)
{
    job->w->pool_busy--;
    if (status == UV_ECANCELED || !job_live(job)) {
        job_unref(job);
        return false;
    }
    return true;
}

/* ---- DECODE ------------------------------------------------------------------------------ */

/* A dead letter keeps at most this much of the original, so that it fits the dead-letter topic
 * under Kafka's default 1 MB limit; a topic that takes less makes it shrink (job_too_large). */
#define DLQ_KEEP_MAX ((size_t)256 * 1024)

/* job_dead_letter sets the message aside: its original (or its first dlq_keep bytes) with the
 * reason, to the dead-letter topic. */
static void job_dead_letter(pc_job_t *job, pc_err_t err, const char *reason)
{
    Pkcs__V1__DeadLetter dl;
    char topic[256];
    if (job->dlq_reason != reason) {
        snprintf(job->dlq_reason, sizeof(job->dlq_reason), "%s", reason);
        job->dlq_err = err;
        job->dlq_keep = DLQ_KEEP_MAX;
        pc_log(PC_LOG_WARN, "dlq", reason, "code", pc_err_code_name(err), NULL);
        job->outcome = OUT_DLQ;
        job_stats_record(job); /* once: a smaller copy of it later is the same dead letter */
    }
    snprintf(topic, sizeof(topic), "%s", rd_kafka_topic_name(job->rkm->rkt));
    pkcs__v1__dead_letter__init(&dl);
    dl.schema_version = PC_SCHEMA_VERSION;
    dl.error_code = pc_result_error_code(job->dlq_err);
    dl.reason = job->dlq_reason;
    dl.original_value.data = job->rkm->payload;
    dl.original_value.len = job->rkm->len < job->dlq_keep ? job->rkm->len : job->dlq_keep;
    dl.original_length = job->rkm->len;
    dl.original_key.data = job->rkm->key;
    dl.original_key.len = job->rkm->key_len < job->dlq_keep ? job->rkm->key_len : job->dlq_keep;
    dl.topic = topic;
    dl.partition = job->rkm->partition;
    dl.offset = job->rkm->offset;
    dl.failed_at_ms = pc_now_ms();
    dl.worker_id = job->w->cfg->worker.id;
    free(job->out);
    job->out_len = protobuf_c_message_get_packed_size(&dl.base);
    job->out = malloc(job->out_len == 0 ? 1 : job->out_len);
    if (job->out != NULL)
        protobuf_c_message_pack(&dl.base, job->out);
    job->out_topic = job->w->cfg->kafka.dlq_topic;
    job->outcome = OUT_DLQ;
    job_to(job, JOB_PUBLISH);
}

/* job_too_large: Kafka refused what we publish for its size; it never passes as it is. A dead
 * letter keeps less of the original (a quarter, then none: its reason and where it came from
 * always fit); a result becomes a FAILED TOO_LARGE result. The message ends either way. */
static void job_too_large(pc_job_t *job, const pc_diag_t *diag)
{
    log_job(PC_LOG_ERROR, job, "too_large", diag->msg);
    if (job->outcome == OUT_DLQ && job->dlq_keep > 0) {
        job->dlq_keep = job->dlq_keep >= 4096 ? job->dlq_keep / 4 : 0;
        snprintf(job->dlq_reason + strnlen(job->dlq_reason, sizeof(job->dlq_reason)),
                 sizeof(job->dlq_reason) - strnlen(job->dlq_reason, sizeof(job->dlq_reason)), "%s",
                 strstr(job->dlq_reason, " (original truncated") != NULL
                     ? ""
                     : " (original truncated: too large for the dead-letter topic)");
        job_dead_letter(job, job->dlq_err, job->dlq_reason);
        return;
    }
    if (job->outcome == OUT_DLQ || job->req == NULL) {
        log_job(PC_LOG_ERROR, job, "dropped",
                "not even a dead letter without the original fits the dead-letter topic; the "
                "message is given up: raise the topic's max.message.bytes");
        job_end(job, true);
        return;
    }
    Pkcs__V1__Result *failed = pc_result_new(job->req);
    pc_diag_t d;
    pc_fail(&d, PC_ERR_TOO_LARGE, "the result of request %s is too large for the results topic",
            job->req->request_id);
    if (failed == NULL || pc_result_set_error(failed, PC_ERR_TOO_LARGE, &d) != PC_OK) {
        if (failed != NULL)
            protobuf_c_message_free_unpacked(&failed->base, NULL);
        job_wait(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "out of memory for the result"});
        return;
    }
    if (job->result != NULL)
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
    job->result = failed;
    job->owned = false; /* published, not recorded: the record keeps what was recorded */
    job_result_ready(job);
}

/* job_authorize: a signer acts only for the tenants (and CAs and templates) the workers'
 * configuration gives it; anything else is refused as unauthenticated, like a bad signature. */
static pc_err_t job_authorize(pc_job_t *job, pc_diag_t *diag)
{
    const Pkcs__V1__SignedRequest *sr = job->signed_req;
    const Pkcs__V1__Request *req = job->req;
    if (sr->signature.len == 0) /* allow_unsigned: a test cluster without signers */
        return PC_OK;
    const pc_config_signer_t *signer = pc_config_signer(job->w->cfg, sr->signer_key_id);
    if (signer == NULL) /* verified, so configured: a mismatch would be our bug */
        return pc_fail(diag, PC_ERR_UNAUTHENTICATED, "signer %s is not configured",
                       sr->signer_key_id);
    const char *ca = NULL, *tmpl = NULL;
    if (req->body_case == PKCS__V1__REQUEST__BODY_ISSUE && req->issue->profile != NULL) {
        ca = req->issue->profile->ca_name;
        tmpl = req->issue->profile->template_name;
    } else if (req->body_case == PKCS__V1__REQUEST__BODY_REVOKE) {
        ca = req->revoke->ca_name;
    }
    if (!pc_config_signer_allows(signer, req->tenant_id, ca, tmpl, diag))
        return PC_ERR_UNAUTHENTICATED;
    return PC_OK;
}

static void enter_decode(pc_job_t *job)
{
    pc_diag_t diag = {{0}};
    pc_err_t err =
        pc_request_decode(job->w->auth, job->w->cfg->worker.allow_unsigned, job->rkm->payload,
                          job->rkm->len, &job->signed_req, &job->req, &diag);
    if (err == PC_OK && (err = job_authorize(job, &diag)) != PC_OK)
        pc_diag_prefix(&diag, "refused");
    if (err != PC_OK) {
        job_dead_letter(job, err, diag.msg); /* undecodable, unauthenticated, unauthorized */
        return;
    }
    const pc_config_worker_t *c = &job->w->cfg->worker;
    int64_t now = pc_now_ms();
    if ((err = pc_request_validate(job->req, now, &diag)) != PC_OK ||
        (err = pc_request_check_fresh(job->req, now, (int64_t)c->max_request_age_s * 1000,
                                      (int64_t)c->clock_skew_ms, &diag)) != PC_OK ||
        (err = pc_request_digest(job->req, job->content, &diag)) != PC_OK) {
        job_fail(job, err, &diag); /* a FAILED result; nothing claimed */
        return;
    }
    job_to(job, JOB_QUEUED);
}

/* ---- QUEUED ------------------------------------------------------------------------------ */

static void enter_queued(pc_job_t *job)
{
    /* First of its key: claim now; otherwise job_end of the one before moves it on. */
    if (pc_keyq_push(job->w->keyq, &job->kq, job->rkm->key, job->rkm->key_len))
        job_to(job, JOB_CLAIM);
}

/* ---- CLAIM ------------------------------------------------------------------------------- */

/* The lease is renewed every quarter lease; a renewal Redis did not answer is tried again
 * soon, not a quarter later, so that one lost answer does not cost the lease. */
static uint64_t renew_every_ms(const pc_job_t *job)
{
    return job->w->cfg->redis.lease_ms / 4;
}

static void job_on_renew_timer(uv_timer_t *timer);

static void job_on_renewed(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    /* A renewal answered after the job ended finds the record completed (not ours any more):
     * that is no lost lease, and the ended job has no message left to name in a log line. */
    if (err == PC_ERR_CONFLICT && !job->lease_lost && job_live(job)) {
        job->lease_lost = true;
        log_job(PC_LOG_WARN, job, "lease_lost", "another worker took this request over");
    } else if (err == PC_ERR_DEPENDENCY && job->owned && job_live(job)) {
        uint64_t every = renew_every_ms(job);
        uv_timer_start(&job->renew, job_on_renew_timer, every < 200 ? every : 200, every);
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

/* job_work picks the state that continues the work from what the job already has: a request
 * claimed again after a lost lease does not ask the CA a second time. */
static job_state_t job_work(const pc_job_t *job)
{
    if (job->out != NULL)
        return JOB_COMPLETE;
    if (job->own_serial[0] != '\0')
        return pc_ca_can_find_issued(pc_issue_get0_ca(job->issue)) ? JOB_PACK : JOB_SIGNED;
    if (job->issue != NULL && pc_issue_has_request(job->issue))
        return JOB_INTENT;
    switch (job->req->body_case) {
    case PKCS__V1__REQUEST__BODY_ISSUE:
        if (!job->renewal_known &&
            (job->req->issue->renews_serial_number[0] != '\0' || job->req->issue->renew_current))
            return JOB_RENEWAL;
        return JOB_KEYGEN;
    case PKCS__V1__REQUEST__BODY_REVOKE:
        return JOB_REVOKE;
    default:
        return JOB_IMPORT;
    }
}

/* Another worker's result is the request's answer. If the CA signed for us too, that
 * certificate is an orphan of ours: revoke it before publishing. */
static void job_replay(pc_job_t *job, const pc_claim_t *claim)
{
    bool ours = job->out != NULL && job->out_len == claim->result_len &&
                memcmp(job->out, claim->result, claim->result_len) == 0;
    free(job->out);
    job->out = malloc(claim->result_len == 0 ? 1 : claim->result_len);
    if (job->out != NULL)
        memcpy(job->out, claim->result, claim->result_len);
    job->out_len = claim->result_len;
    job->out_topic = job->w->cfg->kafka.results_topic;
    /* A renewal delivered again supersedes again: its first delivery may not have got there. */
    Pkcs__V1__SignedResult *sealed = NULL;
    Pkcs__V1__Result *stored = NULL;
    pc_diag_t open_diag;
    pc_result_open(claim->result, claim->result_len, &sealed, &stored, &open_diag);
    if (sealed != NULL)
        pkcs__v1__signed_result__free_unpacked(sealed, NULL);
    if (stored != NULL && stored->status == PKCS__V1__STATUS__ISSUED && stored->renews != NULL &&
        stored->renews->serial_number[0] != '\0') {
        snprintf(job->renews.ca, sizeof(job->renews.ca), "%s", stored->renews->ca_name);
        snprintf(job->renews.serial, sizeof(job->renews.serial), "%s",
                 stored->renews->serial_number);
    }
    if (stored != NULL)
        pkcs__v1__result__free_unpacked(stored, NULL);
    if (ours) { /* completed by us; the reply was lost */
        job_to(job, JOB_PUBLISH);
        return;
    }
    job->outcome = OUT_REPLAYED;
    job_to(job, job->own_serial[0] != '\0' ? JOB_REVOKE_OWN : JOB_PUBLISH);
}

static void job_owned(pc_job_t *job, const pc_claim_t *claim)
{
    job->owned = true;
    memcpy(job->token, claim->token, sizeof(job->token));
    job->fence = claim->fence;
    job->intent_at_claim = claim->intent_recorded;
    uint64_t every = renew_every_ms(job);
    uv_timer_start(&job->renew, job_on_renew_timer, every, every);
    free(job->prior_intent);
    job->prior_intent = NULL;
    if (claim->intent != NULL && claim->intent_len > 0 &&
        (job->prior_intent = malloc(claim->intent_len)) != NULL) {
        memcpy(job->prior_intent, claim->intent, claim->intent_len);
        job->prior_intent_len = claim->intent_len;
    }
    if (job_abandonable(job))
        job_abandon(job);
    else
        job_to(job, job->prior_intent != NULL ? JOB_ORPHANS : job_work(job));
}

static void job_on_claimed(void *arg, pc_err_t err, const pc_claim_t *claim, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (!job_live(job)) {
        job_unref(job);
        return;
    }
    if (err != PC_OK) {
        job_wait(job, err, diag);
    } else if (claim->state == PC_CLAIM_DONE) {
        job_replay(job, claim);
    } else if (claim->state == PC_CLAIM_CONFLICT) {
        /* Not this request's answer to record: the id belongs to another request. */
        pc_diag_t d;
        pc_fail(&d, PC_ERR_CONFLICT,
                "request id %s was first used for a request with other content (another "
                "subject, profile or device key); a request id names one request: send this one "
                "under a new id",
                job->req->request_id);
        log_job(PC_LOG_WARN, job, "conflict", d.msg);
        job_fail(job, PC_ERR_CONFLICT, &d);
    } else if (claim->state == PC_CLAIM_BUSY) {
        job->attempt = 0;
        job_retry(job, claim->retry_after_ms > 50 ? (uint64_t)claim->retry_after_ms : 50);
    } else {
        job->attempt = 0;
        job_owned(job, claim);
    }
    job_unref(job);
}

/* claim_intent is the intent the claim records for an ISSUE request whose CA allows one
 * (pc_issue_claim_intent: the local CA), NULL otherwise: that request then goes from KEYGEN
 * straight to the CA, one Redis round trip fewer. A successor that finds it asks the CA for
 * the request's certificates (ORPHANS), as with an intent written by INTENT. What INTENT also
 * did, fencing a lease lost before the CA is asked, the lease renewal still does; a worker whose
 * lease ran out in between and that completes late revokes its certificate (REVOKE_OWN). */
static const char *claim_intent(const pc_job_t *job, char *buf, size_t len)
{
    pc_ca_t *ca = NULL;
    pc_diag_t diag;

    if (job->req->body_case != PKCS__V1__REQUEST__BODY_ISSUE || job->ca_asked ||
        pc_engine_find_ca_for(job->w->engine, job->req->issue->profile->ca_name, &ca, &diag) !=
            PC_OK)
        return NULL;
    return pc_issue_claim_intent(ca, buf, len) ? buf : NULL;
}

static void enter_claim(pc_job_t *job)
{
    char intent[160];

    if (job_abandonable(job)) {
        job_abandon(job);
        return;
    }
    if (pc_dedupe_claim(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->content,
                        claim_intent(job, intent, sizeof(intent)), job_on_claimed, job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, 0);
}

/* ---- ORPHANS: what a predecessor obtained is revoked, never reused -------------------------- */

/* We never hold an orphan's private key, so it can only be revoked. Its serial comes from the
 * predecessor's intent record (CAs that cannot look up by request), and from the CA's own
 * records (CAs that can); ours, if the CA already signed for us, is kept. */

static void job_orphans_done(pc_job_t *job)
{
    char msg[256];
    if (job->orphans_revoked > 0) {
        snprintf(msg, sizeof(msg),
                 "revoked %zu certificate(s) an earlier attempt obtained, last %s",
                 job->orphans_revoked, job->orphans[job->orphan_count - 1].hex);
        log_job(PC_LOG_WARN, job, "orphan_revoked", msg);
    } else if (job->orphans_known) {
        log_job(PC_LOG_INFO, job, "orphan_none",
                "an earlier attempt recorded an intent, but the CA holds no certificate of it");
    }
    free(job->prior_intent);
    job->prior_intent = NULL;
    job_to(job, job_work(job));
}

static void job_orphan_next(pc_job_t *job);

static void job_on_orphan_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    X509_free(cert);
    if (job_live(job)) {
        if (err == PC_OK) {
            job->orphans_revoked++;
        } else if (pc_err_retryable(err)) {
            job_fail(job, err, diag);
            job_unref(job);
            return;
        } else if (err != PC_ERR_NOT_FOUND) { /* NOT_FOUND: never signed; nothing to do */
            log_job(PC_LOG_ERROR, job, "orphan_revoke_failed", diag->msg);
        }
        job->orphan_next++;
        job_orphan_next(job);
    }
    job_unref(job);
}

static void job_orphan_next(pc_job_t *job)
{
    while (job->orphan_next < job->orphan_count &&
           strcmp(job->orphans[job->orphan_next].hex, job->own_serial) == 0)
        job->orphan_next++;
    if (job->orphan_next == job->orphan_count) {
        job_orphans_done(job);
        return;
    }
    pc_issue_intent_t intent;
    pc_issue_intent_read(job->prior_intent, job->prior_intent_len, &intent);
    pc_ca_t *ca = pc_engine_find_ca(job->w->engine, intent.ca);
    pc_ca_revoke_t rev = {.serial_hex = job->orphans[job->orphan_next].hex,
                          .reason = PC_REVOKE_SUPERSEDED};
    job_ref(job);
    pc_ca_revoke(ca, &rev, job_on_orphan_revoked, job);
}

static bool job_orphan_add(pc_job_t *job, const char *hex)
{
    for (size_t i = 0; i < job->orphan_count; i++)
        if (strcmp(job->orphans[i].hex, hex) == 0)
            return true;
    pc_ca_serial_t *grown = realloc(job->orphans, (job->orphan_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return false;
    job->orphans = grown;
    snprintf(job->orphans[job->orphan_count++].hex, sizeof(grown->hex), "%s", hex);
    return true;
}

static void job_on_orphans_found(void *arg, pc_err_t err, const pc_ca_serial_t *serials,
                                 size_t count, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        for (size_t i = 0; err == PC_OK && i < count; i++)
            if (!job_orphan_add(job, serials[i].hex))
                err = pc_fail(&job->diag, PC_ERR_NOMEM, "out of memory listing orphans");
        if (err != PC_OK)
            job_fail(job, err, err == PC_ERR_NOMEM ? &job->diag : diag);
        else
            job_orphan_next(job);
    }
    job_unref(job);
}

static void enter_orphans(pc_job_t *job)
{
    pc_issue_intent_t intent;
    pc_diag_t diag;
    free(job->orphans);
    job->orphans = NULL;
    job->orphan_count = job->orphan_next = job->orphans_revoked = 0;
    pc_ca_t *ca = NULL;
    if (!pc_issue_intent_read(job->prior_intent, job->prior_intent_len, &intent) ||
        (ca = pc_engine_find_ca(job->w->engine, intent.ca)) == NULL) {
        /* Not ours to judge: an intent naming a CA this worker lacks, or unreadable bytes. */
        log_job(PC_LOG_ERROR, job, "orphan_unknown",
                "a previous owner recorded an intent for a CA this worker does not have; a "
                "certificate it obtained could not be looked for");
        free(job->prior_intent);
        job->prior_intent = NULL;
        job_to(job, job_work(job));
        return;
    }
    if (intent.serial[0] != '\0' && !job_orphan_add(job, intent.serial)) {
        job_fail(job, pc_fail(&diag, PC_ERR_NOMEM, "out of memory listing orphans"), &diag);
        return;
    }
    job->orphans_known = intent.serial[0] != '\0' || pc_ca_can_find_issued(ca);
    if (!pc_ca_can_find_issued(ca)) {
        if (intent.serial[0] == '\0')
            log_job(PC_LOG_WARN, job, "orphan_unknown",
                    "a previous owner died while its CA was signing and the CA cannot look "
                    "certificates up by request: a certificate may have been signed; see "
                    "README.md, Orphans");
        job_orphan_next(job);
        return;
    }
    job_ref(job);
    pc_ca_find_issued(ca, job->req->tenant_id, job->req->request_id, job_on_orphans_found, job);
}

/* canonical_serial writes hex as the CA ca_name writes serials (upper case, even length). */
static pc_err_t canonical_serial(pc_job_t *job, const char *ca_name, const char *hex, char *out,
                                 size_t size, pc_diag_t *diag)
{
    pc_ca_t *ca = NULL;
    BIGNUM *bn = NULL;
    pc_err_t err = pc_engine_find_ca_for(job->w->engine, ca_name, &ca, diag);
    if (err == PC_OK)
        err = pc_ca_serial_parse(ca, hex, &bn, diag);
    char *text = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (err == PC_OK && text == NULL)
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    if (text != NULL)
        snprintf(out, size, "%s", text);
    OPENSSL_free(text);
    BN_free(bn);
    return err;
}

/* ---- RENEWAL: the certificate a renewal replaces, from the tenant's inventory -------------- */

static void job_on_renewal_found(void *arg, pc_err_t err, const pc_cert_t *certs, size_t count,
                                 bool more, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        const Pkcs__V1__IssueRequest *issue = job->req->issue;
        const pc_cert_t *old = NULL;
        for (size_t i = 0; err == PC_OK && i < count && old == NULL; i++)
            if (strcmp(certs[i].status, "valid") == 0 && strcmp(certs[i].kind, "issued") == 0)
                old = &certs[i]; /* newest first: the current one */
        pc_diag_t d;
        if (err != PC_OK) {
            job_fail(job, err, diag);
        } else if (old == NULL && issue->renews_serial_number[0] != '\0') {
            job_fail(job,
                     pc_fail(&d, PC_ERR_NOT_FOUND,
                             "issue.renewsSerialNumber %s is not a valid certificate of tenant %s "
                             "from CA \"%s\"; renew one that is, or issue without it",
                             issue->renews_serial_number, job->req->tenant_id,
                             issue->profile->ca_name),
                     &d);
        } else {
            if (old != NULL) {
                snprintf(job->renews.ca, sizeof(job->renews.ca), "%s", old->ca);
                snprintf(job->renews.serial, sizeof(job->renews.serial), "%s", old->serial);
            } else {
                log_job(PC_LOG_INFO, job, "renewal_none",
                        "renew the current certificate: none is valid for this device and "
                        "profile; a new one is issued");
            }
            job->renewal_known = true;
            job_to(job, job_work(job));
        }
    }
    job_unref(job);
}

static void enter_renewal(pc_job_t *job)
{
    const Pkcs__V1__Request *req = job->req;
    const Pkcs__V1__IssueRequest *issue = req->issue;
    char serial[sizeof(((pc_cert_ref_t *)0)->serial)] = "";
    pc_diag_t diag = {{0}};
    pc_certs_query_t q = {
        .tenant = req->tenant_id, .ca = issue->profile->ca_name, .valid_only = true, .limit = 1000};
    if (issue->renews_serial_number[0] != '\0') {
        pc_err_t err = canonical_serial(job, issue->profile->ca_name, issue->renews_serial_number,
                                        serial, sizeof(serial), &diag);
        if (err != PC_OK) {
            job_fail(job, err, &diag);
            return;
        }
        q.by = PC_CERTS_SERIAL;
        q.key = serial;
    } else {
        q.by = req->device_id[0] != '\0' ? PC_CERTS_DEVICE : PC_CERTS_USER;
        q.key = req->device_id[0] != '\0' ? req->device_id : req->user_id;
        q.profile_id = issue->profile->profile_id;
    }
    pc_err_t err = pc_certs_find(job->w->redis, &q, job_on_renewal_found, job);
    if (err == PC_OK)
        job_ref(job);
    else if (err == PC_ERR_INVALID_PARAM)
        job_fail(job,
                 pc_fail(&diag, err,
                         "the certificate to renew cannot be looked up: the request names no "
                         "device or user, or an id is too long"),
                 &diag);
    else
        job_retry(job, 0);
}

/* ---- KEYGEN ------------------------------------------------------------------------------ */

static void job_after_keygen(uv_work_t *work, int status)
{
    pc_job_t *job = work->data;
    if (!job_back_from_pool(job, status))
        return;
    pc_histogram_observe(job->w->m.keygen_s, (double)job->keygen_us / 1e6);
    if (job->err != PC_OK)
        job_fail(job, job->err, &job->diag);
    else
        job_to(job, job->intent_at_claim ? JOB_CA : JOB_INTENT);
    job_unref(job);
}

static void enter_keygen(pc_job_t *job)
{
    if (job->issue == NULL) {
        pc_diag_t diag = {{0}};
        pc_ca_t *ca = NULL;
        pc_err_t err =
            pc_engine_find_ca_for(job->w->engine, job->req->issue->profile->ca_name, &ca, &diag);
        if (err == PC_OK)
            err = pc_issue_prepare(job->req, ca, &job->issue, &diag);
        if (err != PC_OK) {
            job_fail(job, err, &diag);
            return;
        }
    }
    job_queue(job, job_pool_keygen, job_after_keygen);
}

/* ---- INTENT and SIGNED: what the CA is asked, then what it signed, go to Redis first ------ */

static void job_on_intent(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_OK)
            job_to(job, job->state == JOB_INTENT ? JOB_CA : JOB_PACK);
        else if (err == PC_ERR_CONFLICT)
            job_lease_lost(job, job->state == JOB_INTENT
                                    ? "lease lost before the CA was asked; claiming again"
                                    : "lease lost after the CA signed; claiming again");
        else
            job_wait(job, err, diag);
    }
    job_unref(job);
}

static void enter_intent(pc_job_t *job)
{
    char intent[320];
    pc_diag_t diag = {{0}};
    /* a CA that takes our serials: a fresh one for each attempt, named in the intent */
    pc_err_t err = job->state == JOB_INTENT ? pc_issue_choose_serial(job->issue, &diag) : PC_OK;
    if (err == PC_OK)
        err = pc_issue_intent(job->issue, intent, sizeof(intent), &diag);
    if (err != PC_OK) {
        job_fail(job, err, &diag);
        return;
    }
    if (pc_dedupe_set_intent(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                             (const unsigned char *)intent, strlen(intent), job_on_intent,
                             job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, 0);
}

/* ---- CA ---------------------------------------------------------------------------------- */

/* Test builds only: PC_TEST_STALL_AFTER_CA=REQUEST_ID:MS holds the first job of that request
 * after the CA signed, without renewing its lease, so that another job takes it over. */
static bool stall_hook_after_ca(pc_job_t *job, job_state_t next);
static void crash_hook(const pc_job_t *job, bool on_answer);

/* job_ca_failed: an attempt whose answer may have been lost can have left a certificate: a CA
 * that can look certificates up and failed on its own records (Redis), or any failure of a CA
 * that signs with the serial we chose. Before asking again, the retry looks for what the
 * attempt left and revokes it, exactly as for a predecessor's orphan (a serial the CA never
 * signed is NOT_FOUND, nothing to do), then asks with a new serial. */
static void job_ca_failed(pc_job_t *job, pc_err_t err, const pc_diag_t *diag)
{
    char intent[320];
    pc_diag_t d;
    pc_ca_t *ca = pc_issue_get0_ca(job->issue);
    bool may_be_left = (err == PC_ERR_DEPENDENCY && pc_ca_can_find_issued(ca)) ||
                       (pc_err_retryable(err) && pc_ca_takes_serial(ca));
    if (may_be_left && pc_issue_intent(job->issue, intent, sizeof(intent), &d) == PC_OK) {
        size_t len = strlen(intent);
        free(job->prior_intent);
        if ((job->prior_intent = malloc(len)) != NULL) {
            memcpy(job->prior_intent, intent, len);
            job->prior_intent_len = len;
            job->state = JOB_ORPHANS; /* what the retry enters after its backoff */
        }
    }
    job_fail(job, err, diag);
}

static void job_on_signed(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    job->ca_us = pc_mono_us() - job->ca_us;
    if (!job_live(job)) {
        X509_free(cert);
        job_unref(job);
        return;
    }
    pc_histogram_observe(job->w->m.ca_s, (double)job->ca_us / 1e6);
    if (err == PC_OK)
        crash_hook(job, true);
    pc_diag_t d = {{0}};
    if (err == PC_OK)
        err = pc_issue_set0_cert(job->issue, cert, &d);
    else
        pc_fail(&d, err, "%s", diag != NULL ? diag->msg : pc_strerror(err));
    if (err == PC_OK && !pc_issue_serial(job->issue, job->own_serial, sizeof(job->own_serial)))
        err = pc_fail(&d, PC_ERR_CRYPTO, "the CA's certificate for %s has no readable serial",
                      job->req->request_id);
    if (err != PC_OK) {
        job_ca_failed(job, err, &d);
    } else {
        job_state_t next =
            pc_ca_can_find_issued(pc_issue_get0_ca(job->issue)) ? JOB_PACK : JOB_SIGNED;
        if (!stall_hook_after_ca(job, next))
            job_to(job, next);
    }
    job_unref(job);
}

static void job_ask_ca(pc_job_t *job)
{
    job->ca_asked = true;
    job_ref(job); /* before the call: a refusal answers inside it */
    job->ca_us = pc_mono_us();
    pc_issue_submit(job->issue, job_on_signed, job);
}

static void job_on_ca_intent(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_OK)
            job_ask_ca(job);
        else if (err == PC_ERR_CONFLICT)
            job_lease_lost(job, "lease lost before the CA was asked again; claiming again");
        else
            job_wait(job, err, diag);
    }
    job_unref(job);
}

/* A CA that cannot look certificates up is asked again only once Redis has just answered
 * (the intent, written again): what it signs can then be recorded (SIGNED) a moment later.
 * Without it a retry that comes while Redis is down would have the CA sign, and a worker
 * killed before Redis is back would leave that certificate where no successor finds it. */
static void enter_ca(pc_job_t *job)
{
    char intent[320];
    pc_diag_t diag;
    if (job->attempt == 0 || pc_ca_can_find_issued(pc_issue_get0_ca(job->issue)) ||
        pc_issue_intent(job->issue, intent, sizeof(intent), &diag) != PC_OK) {
        job_ask_ca(job);
        return;
    }
    if (pc_dedupe_set_intent(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                             (const unsigned char *)intent, strlen(intent), job_on_ca_intent,
                             job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, 0);
}

/* ---- PACK -------------------------------------------------------------------------------- */

/* Test builds only: PC_TEST_CRASH_AFTER_CA=REQUEST_ID makes the worker die once the CA signed
 * and its serial is recorded, before the result is: the orphan tests. With
 * PC_TEST_CRASH_AFTER_CA=REQUEST_ID:answer it dies as the CA's answer arrives, before anything
 * of it is recorded. */
static void crash_hook(const pc_job_t *job, bool on_answer)
{
#ifdef PC_TEST_HOOKS
    const char *spec = getenv("PC_TEST_CRASH_AFTER_CA");
    char victim[160];
    snprintf(victim, sizeof(victim), "%s%s", job->req->request_id, on_answer ? ":answer" : "");
    if (spec != NULL && strcmp(spec, victim) == 0) {
        pc_log(PC_LOG_WARN, "test_crash", "PC_TEST_CRASH_AFTER_CA: dying after the CA signed",
               "request_id", job->req->request_id, NULL);
        _exit(86);
    }
#else
    (void)job, (void)on_answer;
#endif
}

static void crash_hook_after_ca(const pc_job_t *job)
{
    crash_hook(job, false);
}

static void job_after_pack(uv_work_t *work, int status)
{
    pc_job_t *job = work->data;
    if (!job_back_from_pool(job, status))
        return;
    pc_histogram_observe(job->w->m.pack_s, (double)job->pack_us / 1e6);
    if (job->err != PC_OK)
        job_fail(job, job->err, &job->diag);
    else
        job_result_ready(job);
    job_unref(job);
}

static void enter_pack(pc_job_t *job)
{
    crash_hook_after_ca(job);
    job_queue(job, job_pool_pack, job_after_pack);
}

/* ---- REVOKE and IMPORT ------------------------------------------------------------------- */

/* REVOKE: the tenant's certificates the request names are found in the inventory (never
 * another tenant's), then revoked one by one at their CAs; the result lists what was revoked,
 * and its completion marks those records revoked. Sent again, a REVOKE finds nothing valid left
 * and is answered REVOKED with an empty list: idempotent. */

static bool ref_add(pc_cert_ref_t **list, size_t *count, const char *ca, const char *serial)
{
    pc_cert_ref_t *grown = realloc(*list, (*count + 1) * sizeof(*grown));
    if (grown == NULL)
        return false;
    *list = grown;
    snprintf(grown[*count].ca, sizeof(grown->ca), "%s", ca);
    snprintf(grown[*count].serial, sizeof(grown->serial), "%s", serial);
    (*count)++;
    return true;
}

static void job_revoked_all(pc_job_t *job)
{
    pc_diag_t d = {{0}};
    if ((job->result = pc_result_new(job->req)) == NULL) {
        job_fail(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "out of memory for the result"});
        return;
    }
    for (size_t i = 0; i < job->done_count; i++) {
        if (pc_result_add_revoked(job->result, job->done_refs[i].ca, job->done_refs[i].serial) !=
            PC_OK) {
            job_fail(job, pc_fail(&d, PC_ERR_NOMEM, "out of memory for the result"), &d);
            return;
        }
    }
    if (job->done_count > 0) { /* the one serial of scope SERIAL, as before scopes existed */
        char *serial = strdup(job->done_refs[0].serial);
        if (serial == NULL) {
            job_fail(job, pc_fail(&d, PC_ERR_NOMEM, "out of memory for the result"), &d);
            return;
        }
        if (job->result->serial_number != protobuf_c_empty_string)
            free(job->result->serial_number);
        job->result->serial_number = serial;
    }
    job->result->status = PKCS__V1__STATUS__REVOKED;
    job_result_ready(job);
}

static void job_revoke_next(pc_job_t *job);

static void job_on_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    X509_free(cert);
    job->ca_us = pc_mono_us() - job->ca_us;
    if (job_live(job)) {
        pc_histogram_observe(job->w->m.ca_s, (double)job->ca_us / 1e6);
        pc_diag_t d = {{0}};
        const pc_cert_ref_t *t = &job->targets[job->target_next];
        bool by_serial = job->req->revoke->scope == PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_SERIAL;
        if (err != PC_OK && err != PC_ERR_NOT_FOUND) {
            pc_fail(&d, err, "%s", diag != NULL ? diag->msg : pc_strerror(err));
            job_fail(job, err, &d);
        } else if (err == PC_ERR_NOT_FOUND && by_serial) { /* the CA never had it */
            job_fail(job, err, diag);
        } else if (err == PC_OK && !ref_add(&job->done_refs, &job->done_count, t->ca, t->serial)) {
            job_fail(job, pc_fail(&d, PC_ERR_NOMEM, "out of memory"), &d);
        } else {
            job->target_next++;
            job_revoke_next(job);
        }
    }
    job_unref(job);
}

static void job_revoke_next(pc_job_t *job)
{
    if (job->target_next == job->target_count) {
        job_revoked_all(job);
        return;
    }
    const pc_cert_ref_t *t = &job->targets[job->target_next];
    pc_diag_t diag = {{0}};
    pc_ca_t *ca = NULL;
    pc_err_t err = pc_engine_find_ca_for(job->w->engine, t->ca, &ca, &diag);
    if (err != PC_OK) {
        job_fail(job, err, &diag);
        return;
    }
    pc_ca_revoke_t rev;
    pc_engine_revoke_of(job->req->revoke, &rev);
    rev.serial_hex = t->serial;
    job_ref(job);
    job->ca_us = pc_mono_us();
    pc_ca_revoke(ca, &rev, job_on_revoked, job);
}

static void job_on_targets(void *arg, pc_err_t err, const pc_cert_t *certs, size_t count, bool more,
                           const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        pc_diag_t d = {{0}};
        const Pkcs__V1__RevokeRequest *rev = job->req->revoke;
        bool by_serial = rev->scope == PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_SERIAL;
        for (size_t i = 0; err == PC_OK && i < count; i++) {
            /* only what our CAs issued: an imported PFX is not ours to revoke; by serial, the
             * certificate even when already revoked (revoking twice is not an error) */
            if (strcmp(certs[i].kind, "issued") != 0 ||
                (!by_serial && strcmp(certs[i].status, "valid") != 0))
                continue;
            if (!ref_add(&job->targets, &job->target_count, certs[i].ca, certs[i].serial))
                err = pc_fail(&d, PC_ERR_NOMEM, "out of memory");
        }
        if (err == PC_OK && by_serial && job->target_count == 0)
            err = pc_fail(&d, PC_ERR_NOT_FOUND,
                          "tenant %s has no certificate with serial %s from CA \"%s\"; a REVOKE "
                          "only reaches its own tenant's certificates",
                          job->req->tenant_id, rev->serial_number, rev->ca_name);
        if (err == PC_OK && more)
            log_job(PC_LOG_WARN, job, "revoke_more",
                    "more certificates than one request revokes (1000): send it again for the "
                    "rest");
        if (err != PC_OK) {
            job_fail(job, err, err == PC_ERR_DEPENDENCY ? diag : &d);
        } else {
            job->targets_known = true;
            job_revoke_next(job);
        }
    }
    job_unref(job);
}

static void enter_revoke(pc_job_t *job)
{
    const Pkcs__V1__RevokeRequest *rev = job->req->revoke;
    pc_diag_t diag = {{0}};
    char serial[sizeof(((pc_cert_ref_t *)0)->serial)] = "";
    if (job->result != NULL) { /* a retry: the failed attempt's result goes */
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
        job->result = NULL;
    }
    if (job->targets_known) { /* a retry after a CA failure: go on where it stopped */
        job_revoke_next(job);
        return;
    }
    pc_certs_query_t q = {.tenant = job->req->tenant_id,
                          .ca = rev->ca_name[0] != '\0' ? rev->ca_name : NULL,
                          .profile_id = rev->profile_id[0] != '\0' ? rev->profile_id : NULL,
                          .limit = 1000};
    switch (rev->scope) {
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_DEVICE:
        q.by = PC_CERTS_DEVICE;
        q.key = job->req->device_id;
        break;
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_USER:
        q.by = PC_CERTS_USER;
        q.key = job->req->user_id;
        break;
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_REQUEST:
        q.by = PC_CERTS_REQUEST;
        q.key = rev->target_request_id;
        break;
    default: {
        pc_err_t err =
            canonical_serial(job, rev->ca_name, rev->serial_number, serial, sizeof(serial), &diag);
        if (err != PC_OK) {
            job_fail(job, err, &diag);
            return;
        }
        q.by = PC_CERTS_SERIAL;
        q.key = serial;
        break;
    }
    }
    pc_err_t err = pc_certs_find(job->w->redis, &q, job_on_targets, job);
    if (err == PC_OK)
        job_ref(job);
    else if (err == PC_ERR_INVALID_PARAM)
        job_fail(job,
                 pc_fail(&diag, err,
                         "the certificates to revoke cannot be looked up: an id is too long"),
                 &diag);
    else
        job_retry(job, 0);
}

static void job_after_import(uv_work_t *work, int status)
{
    pc_job_t *job = work->data;
    if (!job_back_from_pool(job, status))
        return;
    pc_histogram_observe(job->w->m.ca_s, (double)job->pack_us / 1e6);
    if (job->err != PC_OK)
        job_fail(job, job->err, &job->diag);
    else
        job_result_ready(job);
    job_unref(job);
}

static void enter_import(pc_job_t *job)
{
    if (job->result != NULL) {
        protobuf_c_message_free_unpacked(&job->result->base, NULL);
        job->result = NULL;
    }
    job_queue(job, job_pool_import, job_after_import);
}

/* ---- the result -------------------------------------------------------------------------- */

static job_outcome_t outcome_of(const Pkcs__V1__Result *res)
{
    switch (res->status) {
    case PKCS__V1__STATUS__ISSUED:
        return OUT_ISSUED;
    case PKCS__V1__STATUS__REVOKED:
        return OUT_REVOKED;
    case PKCS__V1__STATUS__IMPORTED:
        return OUT_IMPORTED;
    default:
        return OUT_FAILED;
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

/* job_result_ready serializes job->result (worker id and timing added) and records it. */
static void job_result_ready(pc_job_t *job)
{
    Pkcs__V1__Result *res = job->result;
    if (res == NULL) {
        job_wait(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "out of memory building the result"});
        return;
    }
    if (res->timing == NULL)
        set_timing(job, res);
    if (res->status == PKCS__V1__STATUS__ISSUED && job->renews.serial[0] != '\0' &&
        pc_result_set_renews(res, job->renews.ca, job->renews.serial) != PC_OK) {
        job_wait(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "out of memory building the result"});
        return;
    }
    char *id = strdup(job->w->cfg->worker.id);
    if (id != NULL) {
        if (res->worker_id != protobuf_c_empty_string)
            free(res->worker_id);
        res->worker_id = id;
    }
    job->outcome = outcome_of(res);
    free(job->out);
    job->out_len = protobuf_c_message_get_packed_size(&res->base);
    job->out = malloc(job->out_len == 0 ? 1 : job->out_len);
    if (job->out == NULL) {
        job_wait(job, PC_ERR_NOMEM, &(pc_diag_t){.msg = "out of memory for the result"});
        return;
    }
    protobuf_c_message_pack(&res->base, job->out);
    /* Sealed before it is recorded, so that a replay republishes the same signed bytes and a
     * record altered in Redis no longer verifies. On the loop: tens of microseconds. */
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    pc_diag_t d;
    pc_err_t err = pc_signer_seal_result(job->w->result_signer, job->out, job->out_len, &sealed,
                                         &sealed_len, &d);
    free(job->out);
    job->out = sealed;
    job->out_len = sealed_len;
    if (err != PC_OK) {
        job_wait(job, err, &d);
        return;
    }
    job->out_topic = job->w->cfg->kafka.results_topic;
    job_to(job, JOB_COMPLETE);
}

/* ---- COMPLETE ---------------------------------------------------------------------------- */

static void job_on_completed(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_OK) {
            job->owned = false;
            uv_timer_stop(&job->renew);
            job_stats_record(job);
            job_to(job, JOB_PUBLISH);
        } else if (err == PC_ERR_CONFLICT) {
            /* Fenced out: CLAIM finds the other owner's result (and revokes ours), or our
             * lease back and records ours, made already: never a second certificate. */
            job_lease_lost(job, "lease lost before completion; claiming again");
        } else {
            job_wait(job, err, diag);
        }
    }
    job_unref(job);
}

/* The tenant joins the set of tenants with records ahead of its record, on the same
 * connection, so that the coordinator's notices find it. Its reply says nothing the
 * completion's does not: a Redis that fails it fails the completion too, which is retried. */
static void job_on_tenant_noted(void *arg, pc_err_t err, const redisReply *reply,
                                const pc_diag_t *diag)
{
    (void)arg, (void)err, (void)reply, (void)diag;
}

static void job_note_tenant(pc_job_t *job)
{
    pc_args_t args = {0};
    pc_diag_t diag;
    if (pc_certs_tenant_args(job->req->tenant_id, &args, &diag) == PC_OK)
        pc_redis_command(job->w->redis, job_on_tenant_noted, NULL, args.n, args.v, args.len);
    pc_args_free(&args);
}

/* renew_at: when a certificate reaches its profile's renewal threshold, the percentage of its
 * validity left (0 means the default, 20). */
static int64_t renew_at(const Pkcs__V1__Result *res)
{
    unsigned pct = res->renewal_threshold_percent != 0 ? res->renewal_threshold_percent : 20;
    if (pct > 99)
        pct = 99;
    int64_t life = res->not_after_ms - res->not_before_ms;
    return life > 0 ? res->not_after_ms - life / 100 * (int64_t)pct : 0;
}

/* What completing the request does to the inventory: a delivered certificate is recorded (a
 * renewal marks the one it replaces superseded), revoked ones are marked. */
static void enter_complete(pc_job_t *job)
{
    if (!job->owned) { /* a request refused before its claim: nothing to record */
        job_stats_record(job);
        job_to(job, JOB_PUBLISH);
        return;
    }
    const Pkcs__V1__Result *res = job->result;
    const Pkcs__V1__Profile *profile =
        job->req->body_case == PKCS__V1__REQUEST__BODY_ISSUE ? job->req->issue->profile : NULL;
    pc_cert_info_t info = {0};
    pc_certs_change_t change = {0};
    if (res != NULL &&
        (res->status == PKCS__V1__STATUS__ISSUED || res->status == PKCS__V1__STATUS__IMPORTED)) {
        if (!job->texts.set) /* a stored result: its certificate is decoded once */
            job_texts_from_result(job);
        info = (pc_cert_info_t){
            .ca = profile != NULL ? profile->ca_name : "import",
            .serial = res->serial_number,
            .kind = profile != NULL ? "issued" : "imported",
            .user_id = job->req->user_id,
            .device_id = job->req->device_id,
            .profile_id = profile != NULL ? profile->profile_id : "",
            .template_name = profile != NULL ? profile->template_name : "",
            .request_id = job->req->request_id,
            .subject = job->texts.subject,
            .sans = job->texts.sans,
            .not_before_ms = res->not_before_ms,
            .not_after_ms = res->not_after_ms,
            .sha1 = res->thumbprint_sha1,
            .sha256 = res->thumbprint_sha256,
            .renews = job->renews.serial[0] != '\0' ? job->renews.serial : NULL,
            .renew_at_ms = profile != NULL ? renew_at(res) : 0,
        };
        change.add = &info;
        job_note_tenant(job);
    } else if (res != NULL && res->status == PKCS__V1__STATUS__REVOKED) {
        pc_ca_revoke_t rev;
        pc_engine_revoke_of(job->req->revoke, &rev);
        change.revoked = job->done_refs;
        change.revoked_count = job->done_count;
        change.reason = (int)rev.reason;
    }
    pc_err_t err =
        pc_dedupe_complete(job->w->dedupe, job->req->tenant_id, job->req->request_id, job->token,
                           job->fence, job->out, job->out_len, &change, job_on_completed, job);
    if (err == PC_OK)
        job_ref(job);
    else
        job_retry(job, 0);
}

/* ---- REVOKE_OWN -------------------------------------------------------------------------- */

static void job_on_own_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    X509_free(cert);
    if (job_live(job)) {
        char msg[640];
        if (err == PC_OK || err == PC_ERR_NOT_FOUND) {
            snprintf(msg, sizeof(msg),
                     "another worker answered this request first; our certificate %s is "
                     "revoked (superseded)",
                     job->own_serial);
            log_job(PC_LOG_WARN, job, "own_revoked", msg);
            job_to(job, JOB_PUBLISH);
        } else if (pc_err_retryable(err)) {
            job_fail(job, err, diag);
        } else {
            snprintf(msg, sizeof(msg), "could not revoke our certificate %s: %s", job->own_serial,
                     diag != NULL ? diag->msg : pc_strerror(err));
            log_job(PC_LOG_ERROR, job, "own_revoke_failed", msg);
            job_to(job, JOB_PUBLISH);
        }
    }
    job_unref(job);
}

static void enter_revoke_own(pc_job_t *job)
{
    pc_ca_revoke_t rev = {.serial_hex = job->own_serial, .reason = PC_REVOKE_SUPERSEDED};
    job_ref(job);
    pc_ca_revoke(pc_issue_get0_ca(job->issue), &rev, job_on_own_revoked, job);
}

/* ---- PUBLISH ----------------------------------------------------------------------------- */

static const char *job_kind(const pc_job_t *job)
{
    if (job->req == NULL)
        return "UNKNOWN";
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pkcs__v1__kind__descriptor, job->req->kind);
    return v != NULL ? v->name : "UNKNOWN";
}

/* count_request counts one finished request in pkcs_requests_total{kind,outcome}. */
static void count_request(pc_worker_metrics_t *m, const char *kind, const char *outcome)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"%s\"", kind, outcome);
    pc_counter_inc(pc_metrics_counter(m->registry, "pkcs_requests_total",
                                      "Requests finished, by kind and outcome", labels));
}

static void job_count_outcome(pc_job_t *job)
{
    pc_worker_t *w = job->w;
    count_request(&w->m, job_kind(job), outcome_names[job->outcome]);
    switch (job->outcome) {
    case OUT_ISSUED:
    case OUT_IMPORTED:
        w->count_issued++;
        break;
    case OUT_REVOKED:
        w->count_revoked++;
        break;
    case OUT_DLQ:
        w->count_dlq++;
        break;
    case OUT_FAILED:
        w->count_failed++;
        break;
    default:
        break;
    }
    pc_histogram_observe(w->m.e2e_s, (double)(pc_now_ms() - job->received_ms) / 1000.0);
}

static void job_on_delivered(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_ERR_TOO_LARGE) {
            job_too_large(job, diag);
        } else if (err == PC_OK) {
            job_count_outcome(job);
            job_to(job, JOB_AUDIT);
        } else {
            job_wait(job, err, diag);
        }
    }
    job_unref(job);
}

static void enter_publish(pc_job_t *job)
{
    if (job->out == NULL) {
        pc_worker_note_error(job->w, "out of memory for the outgoing message");
        job_end(job, false); /* redelivered after a restart; never skipped */
        return;
    }
    pc_err_t err = pc_kafka_produce(job->w->kafka, job->out_topic, job->rkm->key, job->rkm->key_len,
                                    job->out, job->out_len, job_on_delivered, job);
    if (err == PC_OK)
        job_ref(job);
    else if (err == PC_ERR_TOO_LARGE)
        job_too_large(job, &(pc_diag_t){.msg = "kafka: the message is over the producer's limit"});
    else
        job_retry(job, 0);
}

/* ---- AUDIT: the record of what happened, to the audit topic and the log ------------------ */

/* The audit trail's name for each outcome (an ISSUED renewal is "renewed"). */
static const char *const audit_events[OUT__COUNT] = {
    [OUT_NONE] = "none",         [OUT_ISSUED] = "issued",  [OUT_REVOKED] = "revoked",
    [OUT_IMPORTED] = "imported", [OUT_FAILED] = "refused", [OUT_REPLAYED] = "replayed",
    [OUT_DLQ] = "dead_lettered",
};

/* The CA a request concerned, by its configured name. */
static char *job_ca_name(const pc_job_t *job)
{
    static char import[] = "import", none[] = "";
    if (job->req == NULL)
        return none;
    switch (job->req->body_case) {
    case PKCS__V1__REQUEST__BODY_ISSUE:
        return job->req->issue->profile != NULL ? job->req->issue->profile->ca_name : none;
    case PKCS__V1__REQUEST__BODY_REVOKE:
        return job->req->revoke->ca_name;
    case PKCS__V1__REQUEST__BODY_IMPORT_PFX:
        return import;
    default:
        return none;
    }
}

/* The outcome's log line carries what the audit record says. */
static void log_outcome(pc_job_t *job, const pc_audit_t *a)
{
    const Pkcs__V1__AuditRecord *r = &a->rec;
    const char *name = outcome_names[job->outcome];
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)job->rkm->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)job->rkm->offset);
    pc_log(job->outcome == OUT_FAILED ? PC_LOG_WARN : PC_LOG_INFO, name,
           r->error_message[0] != '\0' ? r->error_message : name, "request_id", r->request_id,
           "tenant_id", r->tenant_id, "partition", partition, "offset", offset, "user_id",
           r->user_id, "device_id", r->device_id, "profile_id", r->profile_id, "ca", r->ca_name,
           "serial", r->serial_number, "subject", r->subject, "audit", r->event, NULL);
}

/* job_audit_send publishes a's record to the audit topic; done hears the delivery. PC_OK when
 * done will be called; otherwise no audit topic is configured (PC_ERR_NOT_FOUND), the record
 * cannot be made or is too large (logged, given up: the log line has it), or Kafka refused it
 * now (PC_ERR_DEPENDENCY: retry). */
static pc_err_t job_audit_send(pc_job_t *job, pc_audit_t *a, pc_kafka_delivered_fn done)
{
    const char *topic = job->w->cfg->kafka.audit_topic;
    if (topic == NULL || topic[0] == '\0')
        return PC_ERR_NOT_FOUND;
    char *json = NULL, key[300];
    size_t len = 0;
    pc_diag_t diag;
    pc_err_t err = pc_audit_encode(a, &json, &len, &diag);
    if (err != PC_OK) {
        log_job(PC_LOG_ERROR, job, "audit_failed", diag.msg);
        return err;
    }
    pc_audit_key(a, key, sizeof(key));
    err = pc_kafka_produce(job->w->kafka, topic, key, strlen(key), json, len, done, job);
    free(json);
    if (err == PC_OK)
        job_ref(job);
    else if (err == PC_ERR_TOO_LARGE)
        log_job(PC_LOG_ERROR, job, "audit_failed", "the audit record is over the producer's limit");
    return err;
}

static void job_audited(pc_job_t *job)
{
    if (job->renews.serial[0] != '\0' && job->outcome != OUT_FAILED)
        job_to(job, JOB_SUPERSEDE);
    else
        job_end(job, true);
}

static void job_on_audited(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_OK)
            job_audited(job);
        else if (err == PC_ERR_TOO_LARGE)
            job_audited(job); /* never passes; the log line has the record */
        else
            job_wait(job, err, diag);
    }
    job_unref(job);
}

static void enter_audit(pc_job_t *job)
{
    Pkcs__V1__Result *stored = NULL;
    const Pkcs__V1__Result *res = job->result;
    if (res == NULL && job->outcome != OUT_DLQ && job->out != NULL) { /* a replay: the stored */
        Pkcs__V1__SignedResult *sealed = NULL;
        pc_diag_t d;
        pc_result_open(job->out, job->out_len, &sealed, &stored, &d);
        if (sealed != NULL)
            pkcs__v1__signed_result__free_unpacked(sealed, NULL);
        res = stored;
    }
    pc_audit_t a;
    const char *event = job->outcome == OUT_ISSUED && job->renews.serial[0] != '\0'
                            ? "renewed"
                            : audit_events[job->outcome];
    /* our certificate's subject, read in the pool; a stored or failed result's is its own */
    bool ours = res == job->result && res != NULL && res->certificate.len > 0 && job->texts.set;
    pc_audit_init(&a, event, job->req, res, ours ? job->texts.subject : NULL,
                  job->w->cfg->worker.id);
    a.rec.ca_name = job_ca_name(job);
    if (job->outcome == OUT_DLQ) {
        a.rec.error_code = pc_result_error_code(job->dlq_err);
        a.rec.error_message = job->dlq_reason;
    }
    if (!job->logged && job->req != NULL)
        log_outcome(job, &a);
    job->logged = true;
    pc_err_t err = job_audit_send(job, &a, job_on_audited);
    if (stored != NULL)
        pkcs__v1__result__free_unpacked(stored, NULL);
    if (err == PC_ERR_DEPENDENCY)
        job_retry(job, 0);
    else if (err != PC_OK)
        job_audited(job);
}

/* ---- SUPERSEDE: a renewal's result is delivered; the certificate it replaces goes ---------- */

/* The record was marked superseded with the renewal's completion; here the CA revokes it, and
 * it leaves the tenant's set of superseded certificates awaiting revocation. A worker that dies
 * here leaves the message undone: it is delivered again, replayed, and superseded again. */

static void job_on_pending_done(void *arg, pc_err_t err, const redisReply *reply,
                                const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err != PC_OK)
            job_wait(job, err, diag);
        else
            job_end(job, true);
    }
    job_unref(job);
}

/* The CA revoked it and the audit trail has it: it leaves the queue of superseded
 * certificates awaiting revocation. */
static void job_supersede_done(pc_job_t *job)
{
    if (pc_certs_due_done(job->w->redis, job->req->tenant_id, PC_CERTS_DUE_REVOCATION, &job->renews,
                          job_on_pending_done, job) == PC_OK)
        job_ref(job);
    else
        job_retry(job, 0);
}

static void job_on_supersede_audited(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    if (job_live(job)) {
        if (err == PC_OK || err == PC_ERR_TOO_LARGE)
            job_supersede_done(job);
        else
            job_wait(job, err, diag);
    }
    job_unref(job);
}

static void job_on_superseded(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    pc_job_t *job = arg;
    X509_free(cert);
    if (job_live(job)) {
        char msg[640];
        if (err == PC_OK || err == PC_ERR_NOT_FOUND) {
            snprintf(msg, sizeof(msg), "renewed: certificate %s of CA \"%s\" revoked (superseded)",
                     job->renews.serial, job->renews.ca);
            log_job(PC_LOG_INFO, job, "superseded", msg);
            pc_audit_t a;
            pc_audit_init(&a, "superseded", job->req, NULL, NULL, job->w->cfg->worker.id);
            a.rec.ca_name = job->renews.ca;
            a.rec.serial_number = job->renews.serial;
            a.rec.outcome = PKCS__V1__STATUS__REVOKED;
            pc_err_t aerr = job_audit_send(job, &a, job_on_supersede_audited);
            if (aerr == PC_ERR_DEPENDENCY)
                job_retry(job, 0);
            else if (aerr != PC_OK)
                job_supersede_done(job);
        } else {
            job_fail(job, err, diag);
        }
    }
    job_unref(job);
}

static void enter_supersede(pc_job_t *job)
{
    pc_diag_t diag = {{0}};
    pc_ca_t *ca = NULL;
    pc_err_t err = pc_engine_find_ca_for(job->w->engine, job->renews.ca, &ca, &diag);
    if (err != PC_OK) { /* a CA this worker lacks: the record stays pending for one that has it */
        log_job(PC_LOG_ERROR, job, "supersede_failed", diag.msg);
        job_end(job, true);
        return;
    }
    pc_ca_revoke_t rev = {.serial_hex = job->renews.serial, .reason = PC_REVOKE_SUPERSEDED};
    job_ref(job);
    pc_ca_revoke(ca, &rev, job_on_superseded, job);
}

/* ---- ENDED ------------------------------------------------------------------------------- */

static void job_end(pc_job_t *job, bool done)
{
    pc_worker_t *w = job->w;
    job_retry_done(job);
    job->state = JOB_ENDED;
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
        job_to(nj, JOB_CLAIM);
    }
    job_unref(job);
}

/* ---- the machine ------------------------------------------------------------------------- */

/* Each state's action. ENDED has none: job_end ends the pipeline. */
static void (*const enter[JOB__STATES])(pc_job_t *job) = {
    [JOB_DECODE] = enter_decode,
    [JOB_QUEUED] = enter_queued,
    [JOB_CLAIM] = enter_claim,
    [JOB_ORPHANS] = enter_orphans,
    [JOB_KEYGEN] = enter_keygen,
    [JOB_INTENT] = enter_intent,
    [JOB_CA] = enter_ca,
    [JOB_SIGNED] = enter_intent,
    [JOB_PACK] = enter_pack,
    [JOB_REVOKE] = enter_revoke,
    [JOB_IMPORT] = enter_import,
    [JOB_COMPLETE] = enter_complete,
    [JOB_REVOKE_OWN] = enter_revoke_own,
    [JOB_PUBLISH] = enter_publish,
    [JOB_AUDIT] = enter_audit,
    [JOB_RENEWAL] = enter_renewal,
    [JOB_SUPERSEDE] = enter_supersede,
};

/* job_to is the one transition: into next (or the same state again, after a retry's backoff),
 * and runs its action. A new state starts its retries from the first backoff. */
static void job_to(pc_job_t *job, job_state_t next)
{
    if (next != job->state) {
        job->attempt = 0;
        job_retry_done(job);
    }
    job->state = next;
    if (enter[next] != NULL)
        enter[next](job);
}

#ifdef PC_TEST_HOOKS
static void on_stall_over(uv_timer_t *timer)
{
    pc_job_t *job = timer->data;
    pc_log(PC_LOG_WARN, "test_stall", "PC_TEST_STALL_AFTER_CA: going on", "request_id",
           job->req->request_id, NULL);
    job_to(job, job->state);
}

static bool stall_hook_after_ca(pc_job_t *job, job_state_t next)
{
    static bool stalled; /* once per process: the job that takes over must not stall */
    const char *spec = getenv("PC_TEST_STALL_AFTER_CA");
    const char *colon = spec != NULL ? strrchr(spec, ':') : NULL;
    size_t id_len = colon != NULL ? (size_t)(colon - spec) : 0;
    if (stalled || colon == NULL || strlen(job->req->request_id) != id_len ||
        strncmp(spec, job->req->request_id, id_len) != 0)
        return false;
    stalled = true;
    uv_timer_stop(&job->renew); /* the lease runs out meanwhile */
    job->state = next;
    pc_log(PC_LOG_WARN, "test_stall", "PC_TEST_STALL_AFTER_CA: holding after the CA signed",
           "request_id", job->req->request_id, NULL);
    uv_timer_start(&job->timer, on_stall_over, strtoull(colon + 1, NULL, 10), 0);
    return true;
}
#else
static bool stall_hook_after_ca(pc_job_t *job, job_state_t next)
{
    return false;
}
#endif

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
    job_to(job, JOB_DECODE);
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
 * at any state when forced); jobs waiting on Redis or Kafka see the flag when their reply
 * arrives. */
static void abandon_marked(pc_worker_t *w, bool force)
{
    bool again = true;
    while (again) {
        again = false;
        for (pc_job_t *job = w->jobs; job != NULL; job = job->next) {
            bool waiting = uv_is_active((uv_handle_t *)&job->timer);
            bool idle = (job->state == JOB_QUEUED && job_abandonable(job)) ||
                        (waiting && (job_abandonable(job) || force));
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

const pc_job_t *pc_job_next(const pc_job_t *job)
{
    return job->next;
}

int64_t pc_job_retrying_since(const pc_job_t *job)
{
    return job->retrying_since;
}
