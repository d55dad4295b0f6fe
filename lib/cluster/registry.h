/*
 * registry.h - worker registration and heartbeats in Redis, and the cluster's instance limit.
 * Loop thread only.
 *
 * Keys: "pc:workers" (sorted set: worker id -> heartbeat expiry ms) and "pc:worker:{id}" (hash:
 * id, host, version, started_at, last_seen, counts as JSON, last_error; expires with the
 * heartbeat TTL). Registering removes expired members first, then refuses when max_instances
 * live workers are registered.
 */
#ifndef PC_REGISTRY_H
#define PC_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "pc_err.h"
#include "redis.h"

typedef struct pc_registry pc_registry_t;

typedef struct pc_worker_info {
    const char *id;
    const char *host;
    const char *version;
    int64_t started_at_ms;
} pc_worker_info_t;

/* err: PC_OK; PC_ERR_CONFLICT when the cluster already has max_instances live workers (diag
 * says how many and what to do); PC_ERR_DEPENDENCY when Redis is down. */
typedef void (*pc_registry_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* pc_registry_new: redis borrowed; ttl_ms (default 15000) is how long a worker counts as
 * alive after its last heartbeat. */
pc_err_t pc_registry_new(pc_redis_t *redis, const pc_worker_info_t *info, unsigned max_instances,
                         unsigned ttl_ms, pc_registry_t **out, pc_diag_t *diag);
void pc_registry_free(pc_registry_t *reg);

pc_err_t pc_registry_register(pc_registry_t *reg, pc_registry_fn cb, void *arg);
/* pc_registry_register joins the cluster (or refreshes an existing entry). Like heartbeat and
 * unregister it returns PC_OK when cb will run once on the loop thread, else PC_ERR_NOMEM or
 * PC_ERR_DEPENDENCY (connection closed) and cb does not run. In-flight calls do not use reg,
 * so pc_registry_free may come first. A heartbeat from a worker whose entry expired joins again,
 * under the same limit (PC_ERR_CONFLICT when the cluster filled up meanwhile).
 * The hash pc:worker:{id} (literal braces) is kept for 4 TTLs after the last heartbeat, so the
 * coordinator can list a silent worker as Inactive; it also holds ttl_ms. */
/* counts_json: e.g. {"issued":10,"failed":1}; NULL leaves counts unchanged. last_error may be
 * NULL: the stored last_error is then left as it was. */
pc_err_t pc_registry_heartbeat(pc_registry_t *reg, const char *counts_json, const char *last_error,
                               pc_registry_fn cb, void *arg);
pc_err_t pc_registry_unregister(pc_registry_t *reg, pc_registry_fn cb, void *arg);

/* ---- reading (registry_read.c), for the coordinator --------------------------------------- */

/* What the registry holds: workers is {id: {"score": heartbeat expiry ms (only while in
 * pc:workers), the hash's fields as strings...}}, also for workers whose hash outlives their
 * place in the set (they show as Inactive). ok false: diag says what failed. */
typedef struct pc_registry_view {
    bool ok;
    pc_diag_t diag;
    int64_t now_ms; /* Redis server time, to compare the expiries with */
    json_t *workers;
} pc_registry_view_t;

/* Called once with what was read (view is the callee's: pc_registry_view_clear). */
typedef void (*pc_registry_read_fn)(void *arg, pc_registry_view_t *view);

/* pc_registry_read reads the whole registry and Redis' clock; fn runs once on the loop thread
 * (inside this call only when redis is already closed or memory ran out). A reply of another
 * shape (a registry of another version) fails the read with a message. */
void pc_registry_read(pc_redis_t *redis, pc_registry_read_fn fn, void *arg);

/* pc_registry_view_clear frees what view holds. */
void pc_registry_view_clear(pc_registry_view_t *view);

#endif
