/*
 * health.c - what the worker tells operators over HTTP: /healthz (the process answers),
 * /readyz (Kafka and Redis reachable, registered, not draining: 503 otherwise, with the reason)
 * and /metrics (Prometheus text). Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "worker.h"

bool pc_worker_degraded(const pc_worker_t *w, unsigned *count, int64_t *for_ms)
{
    int64_t since = 0;
    *count = pc_worker_retrying(w, &since);
    *for_ms = since != 0 ? pc_now_ms() - since : 0;
    return since != 0 && *for_ms >= (int64_t)w->cfg->worker.degraded_after_ms;
}

bool pc_worker_ready(const pc_worker_t *w)
{
    unsigned count;
    int64_t for_ms;
    return w->state == PC_WORKER_RUNNING && w->registered && pc_redis_ready(w->redis) &&
           w->kafka != NULL && pc_kafka_ready(w->kafka) && pc_engine_ca_healthy(w->engine, NULL) &&
           !pc_worker_degraded(w, &count, &for_ms);
}

static void not_ready_reason(const pc_worker_t *w, char *buf, size_t n)
{
    const pc_ca_t *ca = NULL;
    unsigned count;
    int64_t for_ms;
    if (w->state == PC_WORKER_DRAINING || w->state == PC_WORKER_STOPPING)
        snprintf(buf, n, "draining\n");
    else if (!pc_redis_ready(w->redis))
        snprintf(buf, n, "redis unreachable\n");
    else if (!w->registered)
        snprintf(buf, n, "not registered yet\n");
    else if (w->kafka == NULL || !pc_kafka_ready(w->kafka))
        snprintf(buf, n, "kafka unreachable\n");
    else if (!pc_engine_ca_healthy(w->engine, &ca))
        snprintf(buf, n,
                 "CA \"%s\" (%s) unavailable (circuit breaker open or CA certificate not "
                 "fetched yet)\n",
                 ca->name, ca->ops->kind);
    else if (pc_worker_degraded(w, &count, &for_ms))
        snprintf(buf, n,
                 "degraded: %u request(s) retrying, the oldest for %lld s; last error: %s\n", count,
                 (long long)(for_ms / 1000), w->last_error);
    else
        snprintf(buf, n, "not ready\n");
}

void pc_worker_http_handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp)
{
    pc_worker_t *w = arg;
    const char *path = req->path;
    if (strcmp(path, "/healthz") == 0) {
        pc_http_respond_text(resp, 200, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[512] = "ready\n";
        bool ready = pc_worker_ready(w);
        if (!ready)
            not_ready_reason(w, why, sizeof(why));
        pc_http_respond_text(resp, ready ? 200 : 503, why);
    } else if (strcmp(path, "/metrics") == 0) {
        pc_gauge_set(w->m.in_flight, (double)w->in_flight);
        pc_gauge_set(w->m.pool_busy, (double)w->pool_busy);
        if (w->keypool != NULL)
            pc_gauge_set(w->m.key_pool, (double)pc_keypool_count(w->keypool, NULL));
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = pc_metrics_render(w->m.registry, &resp->body_len);
    } else {
        pc_http_respond_text(resp, 404, "not found: try /healthz, /readyz or /metrics\n");
    }
}

pc_err_t pc_worker_metrics_init(pc_worker_metrics_t *m)
{
    const double *b = pc_metrics_latency_bounds;
    size_t n = pc_metrics_latency_bounds_count;
    const char *req = "pkcs_requests_total";
    const char *req_help = "Requests finished, by outcome";
    if ((m->registry = pc_metrics_new()) == NULL)
        return PC_ERR_NOMEM;
    /* The common series exist from the start so dashboards see zeros, not gaps. */
    m->issued = pc_metrics_counter(m->registry, req, req_help, "kind=\"ISSUE\",outcome=\"issued\"");
    m->revoked =
        pc_metrics_counter(m->registry, req, req_help, "kind=\"REVOKE\",outcome=\"revoked\"");
    m->failed = pc_metrics_counter(m->registry, req, req_help, "kind=\"ISSUE\",outcome=\"failed\"");
    m->replayed =
        pc_metrics_counter(m->registry, req, req_help, "kind=\"ISSUE\",outcome=\"replayed\"");
    m->dlq = pc_metrics_counter(m->registry, req, req_help, "kind=\"UNKNOWN\",outcome=\"dlq\"");
    m->retries = pc_metrics_counter(m->registry, "pkcs_retries_total",
                                    "Retries after retryable failures (Redis, Kafka, CA)", "");
    m->lease_lost = pc_metrics_counter(m->registry, "pkcs_lease_lost_total",
                                       "Results dropped because another worker took over", "");
    const char *stage = "pkcs_stage_seconds";
    const char *stage_help = "Time spent per pipeline stage";
    m->keygen_s = pc_metrics_histogram(m->registry, stage, stage_help, "stage=\"keygen\"", b, n);
    m->ca_s = pc_metrics_histogram(m->registry, stage, stage_help, "stage=\"ca\"", b, n);
    m->pack_s = pc_metrics_histogram(m->registry, stage, stage_help, "stage=\"pack\"", b, n);
    m->e2e_s = pc_metrics_histogram(m->registry, "pkcs_request_seconds",
                                    "Time from intake to result delivered", "", b, n);
    m->in_flight = pc_metrics_gauge(m->registry, "pkcs_in_flight", "Requests in the pipeline", "");
    m->pool_busy = pc_metrics_gauge(m->registry, "pkcs_pool_queue_depth",
                                    "Work items queued or running on the thread pool", "");
    m->lag = pc_metrics_gauge(m->registry, "pkcs_consumer_lag",
                              "Messages behind the end of the assigned partitions", "");
    m->key_pool = pc_metrics_gauge(m->registry, "pkcs_key_pool_keys",
                                   "Pre-generated keys ready (of every pooled algorithm)", "");
    m->assigned = pc_metrics_gauge(m->registry, "pkcs_assigned_partitions",
                                   "Partitions assigned to this worker", "");
    if (m->issued == NULL || m->e2e_s == NULL || m->assigned == NULL)
        return PC_ERR_NOMEM;
    return PC_OK;
}
