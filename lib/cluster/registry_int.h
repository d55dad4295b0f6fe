/*
 * registry_int.h - private to lib/cluster: the Redis keys of the worker registry, shared by its
 * writer (registry.c) and its reader (registry_read.c), so that one module owns them.
 */
#ifndef PC_REGISTRY_INT_H
#define PC_REGISTRY_INT_H

#ifndef PC_INSIDE_CLUSTER
#error "registry_int.h is private to lib/cluster: use registry.h"
#endif

/* Sorted set: worker id -> heartbeat expiry (Redis server ms). */
#define REGISTRY_WORKERS_KEY "pc:workers"
/* Hash per worker: REGISTRY_WORKER_KEY_OPEN id "}" (literal braces: one Redis Cluster slot). */
#define REGISTRY_WORKER_PREFIX "pc:worker:"
#define REGISTRY_WORKER_KEY_OPEN REGISTRY_WORKER_PREFIX "{"

#endif
