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
 * Fire and forget: the job does not wait for Redis, and a failed write is logged, once per run
 * of failures. Loop thread.
 */
#include <stdbool.h>

#include "clock.h"
#include "job_int.h"
#include "log.h"
#include "result.h"
#include "stats.h"

static bool failing; /* the last write failed: the next failure is not logged again */

static void on_recorded(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    (void)arg;
    if (err != PC_OK && !failing)
        pc_log(PC_LOG_WARN, "stats_failed",
               diag != NULL ? diag->msg : "recording statistics failed; totals will miss it", NULL);
    else if (err == PC_OK && failing)
        pc_log(PC_LOG_INFO, "stats_recovered", "statistics are recorded again", NULL);
    failing = err != PC_OK;
}

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
    pc_err_t err = pc_stats_record(job->w->redis, &ev, on_recorded, NULL);
    if (err != PC_OK)
        on_recorded(NULL, err, &(pc_diag_t){.msg = "recording statistics: Redis is closed"});
}
