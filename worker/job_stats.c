/*
 * job_stats.c - a finished request into the cluster's statistics (lib/cluster/stats.h), once,
 * when its result is recorded (or, for what is never recorded, when it is final: a request
 * refused before its claim, a dead letter). A replay is not counted again: its request was
 * counted when its result was first recorded.
 *
 * The latency is from the Kafka message's timestamp (when the upstream produced the request,
 * or when the broker appended it with LogAppendTime) to now: what the cluster took, queueing
 * in Kafka included, and known for every message, dead letters too. A message without a
 * timestamp counts from the worker's intake. Clocks differ between machines: a negative
 * latency counts as 0.
 *
 * Counted in the worker (its stats_pending), written with the others every second by
 * pc_worker_stats_flush: the job does not wait for Redis, and a failed write is logged, once
 * per run of failures. Loop thread.
 */
#include <stdbool.h>

#include "clock.h"
#include "job_int.h"
#include "result.h"
#include "stats.h"

void job_stats_record(pc_job_t *job)
{
    pc_stats_event_t ev = {.at_ms = pc_now_ms()};
    const Pkcs__V1__Result *res = job->result;
    switch (job->outcome) {
    case OUT_ISSUED:
        ev.outcome = PC_STATS_ISSUED;
        ev.renewed = job->renews.serial[0] != '\0';
        break;
    case OUT_REVOKED:
        ev.outcome = PC_STATS_REVOKED;
        break;
    case OUT_IMPORTED:
        ev.outcome = PC_STATS_IMPORTED;
        break;
    case OUT_FAILED:
        ev.outcome = PC_STATS_FAILED;
        ev.conflict = res != NULL && res->error_code == pc_result_error_code(PC_ERR_CONFLICT);
        break;
    case OUT_DLQ:
        ev.outcome = PC_STATS_DLQ;
        break;
    default:
        return; /* replays and the like: counted when first recorded */
    }
    int64_t since = rd_kafka_message_timestamp(job->rkm, NULL);
    if (since <= 0)
        since = job->received_ms;
    ev.latency_ms = ev.at_ms > since ? ev.at_ms - since : 0;
    if (pc_stats_add(&job->w->stats_pending, &ev) == PC_ERR_TOO_LARGE) {
        pc_worker_stats_flush(job->w); /* minutes that no flush has written: now */
        pc_stats_add(&job->w->stats_pending, &ev);
    }
}
