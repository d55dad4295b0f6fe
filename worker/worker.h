/*
 * worker.h - pkcs-worker's insides: the worker (one libuv loop owning Kafka, Redis and HTTP)
 * and the per-request job state machine. Everything here runs on the loop thread unless a
 * function says "pool thread".
 */
#ifndef PC_WORKER_H
#define PC_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "auth.h"
#include "config.h"
#include "dedupe.h"
#include "engine.h"
#include "http.h"
#include "kafka.h"
#include "keypool.h"
#include "keyq.h"
#include "metrics.h"
#include "redis.h"
#include "registry.h"
#include "stats.h"

typedef enum pc_worker_state {
    PC_WORKER_STARTING = 0, /* connecting to Redis, registering */
    PC_WORKER_RUNNING,      /* consuming */
    PC_WORKER_DRAINING,     /* SIGTERM: no intake, finishing in-flight work */
    PC_WORKER_STOPPING,     /* closing handles */
} pc_worker_state_t;

typedef struct pc_job pc_job_t;

/* The metrics the worker keeps (handles owned by the registry in metrics). */
typedef struct pc_worker_metrics {
    pc_metrics_t *registry;
    pc_counter_t *issued, *revoked, *failed, *replayed, *dlq, *retries, *lease_lost;
    pc_histogram_t *keygen_s, *ca_s, *pack_s, *e2e_s;
    pc_gauge_t *in_flight, *pool_busy, *lag, *key_pool, *assigned;
} pc_worker_metrics_t;

typedef struct pc_worker {
    uv_loop_t *loop;
    pc_config_t *cfg; /* borrowed */
    pc_worker_state_t state;
    int exit_code;

    pc_engine_t *engine;
    pc_auth_t *auth;
    pc_signer_t *result_signer; /* signs every result; NULL: results unsigned */
    pc_keypool_t *keypool;
    pc_keyq_t *keyq;
    pc_redis_t *redis;
    pc_dedupe_t *dedupe;
    pc_registry_t *registry;
    pc_kafka_t *kafka;
    pc_http_t *http;
    pc_worker_metrics_t m;

    uv_signal_t sigterm, sigint;
    uv_timer_t heartbeat; /* heartbeat + lag gauge */
    uv_timer_t fill;      /* key pool filling, when the pool threads are idle */
    uv_timer_t drain;     /* bounds the drain */
    uv_timer_t register_retry;
    uv_timer_t stats; /* writes stats_pending every second */
    int open_handles; /* uv handles of the worker still open */

    pc_job_t *jobs; /* every live job (doubly linked) */
    unsigned in_flight;
    unsigned pool_busy; /* uv_queue_work items running or queued */
    unsigned retrying;  /* jobs waiting to try their state again */
    unsigned threadpool_size;
    bool registered;
    bool eviction_checked; /* Redis's maxmemory-policy was found acceptable (or unreadable) */
    bool in_group;         /* the consumer group gave us an assignment (maybe empty) */
    int32_t *partitions;   /* assigned partitions of the requests topic, for the registry */
    size_t partition_count, partition_cap;
    uint64_t count_issued, count_failed, count_revoked, count_dlq;
    pc_stats_pending_t stats_pending; /* finished requests not yet in the cluster's statistics */
    char last_error[256];
} pc_worker_t;

/* pc_worker_init builds every component from cfg; nothing connects before pc_worker_start. */
pc_err_t pc_worker_init(pc_worker_t *w, uv_loop_t *loop, pc_config_t *cfg, pc_diag_t *diag);

/* pc_worker_start connects Redis, registers, then starts Kafka intake and the HTTP port. */
pc_err_t pc_worker_start(pc_worker_t *w, pc_diag_t *diag);

/* pc_worker_cleanup frees what is not a uv handle, after the loop has ended. */
void pc_worker_cleanup(pc_worker_t *w);

/* pc_worker_shutdown begins the drain (as SIGTERM does); the loop ends when all is closed. */
void pc_worker_shutdown(pc_worker_t *w, int exit_code);

/* pc_worker_ready: Kafka, Redis and every CA reachable, registered, not draining (for /readyz;
 * health.c). */
bool pc_worker_ready(const pc_worker_t *w);

/* pc_worker_stats_flush writes the statistics counted in stats_pending (job_stats.c counts
 * them); fire and forget, a failure logged once per run of failures. */
void pc_worker_stats_flush(pc_worker_t *w);

/* pc_worker_retrying returns how many jobs are retrying, and in *since_ms (may be NULL) when
 * the oldest of them started to (wall ms; 0 when none). */
unsigned pc_worker_retrying(const pc_worker_t *w, int64_t *since_ms);

/* pc_worker_degraded: a request has been retrying its state for worker.degraded_after_ms or
 * more (usually a CA it keeps failing on): /readyz says so, the heartbeat tells the
 * coordinator, which shows the worker Degraded. *count and *for_ms: how many retry, and how long
 * the oldest has. */
bool pc_worker_degraded(const pc_worker_t *w, unsigned *count, int64_t *for_ms);

/* pc_worker_note_error remembers the last error for the heartbeat and status. */
void pc_worker_note_error(pc_worker_t *w, const char *text);

/* pc_worker_job_finished is called by a job when it ends, to update counts and intake. */
void pc_worker_job_finished(pc_worker_t *w);

/* pc_worker_http_handler serves /healthz, /readyz and /metrics. */
void pc_worker_http_handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp);

/* pc_worker_metrics_init registers the worker's metrics. */
pc_err_t pc_worker_metrics_init(pc_worker_metrics_t *m);

/* Jobs (job.c): one consumed message through the pipeline. */

/* pc_job_start takes rkm (a message of the requests topic) and starts its pipeline. */
void pc_job_start(pc_worker_t *w, rd_kafka_message_t *rkm);

/* pc_job_revoke_partitions abandons the jobs of parts that have not reached the CA yet;
 * the new owner of the partitions processes them. */
void pc_job_revoke_partitions(pc_worker_t *w, const rd_kafka_topic_partition_list_t *parts);

/* pc_job_abandon_all gives up every job (drain timeout); leases are released. */
void pc_job_abandon_all(pc_worker_t *w);

/* pc_job_next is the next live job after job in the worker's list; pc_job_retrying_since when
 * job started retrying its state (wall ms), 0 when it is not retrying. */
const pc_job_t *pc_job_next(const pc_job_t *job);
int64_t pc_job_retrying_since(const pc_job_t *job);

#endif
