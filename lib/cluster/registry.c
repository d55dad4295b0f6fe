/*
 * registry.c - worker registration, heartbeats and the cluster's instance limit, in Redis.
 * Joining and heartbeating are one Lua script (so the limit check and the insert cannot race
 * between workers); time is Redis server time. Loop thread only.
 *
 * "pc:workers" is a sorted set: worker id -> heartbeat expiry (server ms). A worker counts as
 * alive while its expiry is in the future; expired members are removed before every count.
 * "pc:worker:{id}" (literal braces) is a hash: id, host, version, started_at, last_seen,
 * ttl_ms, counts (JSON), last_error. It outlives the heartbeat by HASH_KEEP_TTLS - 1 TTLs so
 * the coordinator can show a silent worker as Inactive, with its last error, for a while.
 */
#include "registry.h"
#include "registry_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 128
#define HASH_KEEP_TTLS 4
#define DEFAULT_MAX_INSTANCES 100
#define DEFAULT_TTL_MS 15000

static const char workers_key[] = REGISTRY_WORKERS_KEY;

/* KEYS[1] pc:workers, KEYS[2] pc:worker:{id}; ARGV id, host, version, started_at, ttl_ms,
 * max, keep_ms, has_counts, counts, has_error, last_error -> {1, live} | {0, live}.
 * A heartbeat from a worker the cluster already counted out re-joins under the same limit. */
static const char join_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[5])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then\n"
    "  local live = redis.call('ZCARD', KEYS[1])\n"
    "  if live >= tonumber(ARGV[6]) then return {0, live} end\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[1], 'host', ARGV[2], 'version', ARGV[3],\n"
    "           'started_at', ARGV[4], 'last_seen', now, 'ttl_ms', ttl)\n"
    "if ARGV[8] == '1' then redis.call('HSET', KEYS[2], 'counts', ARGV[9]) end\n"
    "if ARGV[10] == '1' then redis.call('HSET', KEYS[2], 'last_error', ARGV[11]) end\n"
    "redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[7]))\n"
    "return {1, redis.call('ZCARD', KEYS[1])}\n";

/* KEYS[1] pc:workers, KEYS[2] pc:worker:{id}; ARGV id -> 1 */
static const char leave_lua[] = "redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                "redis.call('DEL', KEYS[2])\n"
                                "return 1\n";

struct pc_registry {
    pc_redis_t *redis;
    char *id;
    char *host;
    char *version;
    char started_at[24];
    char key[sizeof(REGISTRY_WORKER_KEY_OPEN "}") + ID_MAX];
    unsigned max_instances;
    unsigned ttl_ms;
    pc_redis_script_t join, leave;
};

/* One operation in flight; owns copies of what its callback needs. */
typedef struct op {
    pc_registry_fn cb;
    void *arg;
    const char *what; /* "register", ... (static) */
    unsigned max_instances;
    char id[ID_MAX + 1];
} op_t;

static op_t *op_new(const pc_registry_t *reg, const char *what, pc_registry_fn cb, void *arg)
{
    op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->cb = cb;
    op->arg = arg;
    op->what = what;
    op->max_instances = reg->max_instances;
    memcpy(op->id, reg->id, strlen(reg->id) + 1);
    return op;
}

static pc_err_t reply_failed(const op_t *op, pc_err_t err, const redisReply *reply,
                             const pc_diag_t *in, pc_diag_t *out)
{
    if (err != PC_OK) {
        *out = *in;
        pc_diag_prefix(out, op->what);
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        return pc_fail(out, PC_ERR_DEPENDENCY, "%s of worker %s: Redis refused the script: %s",
                       op->what, op->id, reply->str);
    return PC_OK;
}

static void join_replied(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    op_t *op = arg;
    pc_diag_t mine;

    err = reply_failed(op, err, reply, diag, &mine);
    if (err == PC_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
                         reply->element[0]->type != REDIS_REPLY_INTEGER ||
                         reply->element[1]->type != REDIS_REPLY_INTEGER))
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "%s of worker %s: unexpected reply from Redis",
                      op->what, op->id);
    if (err == PC_OK && reply->element[0]->integer != 1)
        err = pc_fail(&mine, PC_ERR_CONFLICT,
                      "worker %s cannot join: the cluster already has %lld active workers (the "
                      "configured maximum, max_instances = %u); stop one or raise the limit",
                      op->id, reply->element[1]->integer, op->max_instances);
    op->cb(op->arg, err, err == PC_OK ? NULL : &mine);
    free(op);
}

static void leave_replied(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    op_t *op = arg;
    pc_diag_t mine;

    err = reply_failed(op, err, reply, diag, &mine);
    op->cb(op->arg, err, err == PC_OK ? NULL : &mine);
    free(op);
}

/* join runs the join script; counts_json / last_error NULL leave those fields as they are. */
static pc_err_t join(pc_registry_t *reg, const char *what, const char *counts_json,
                     const char *last_error, pc_registry_fn cb, void *arg)
{
    char ttl[16], max[16], keep[24];
    pc_err_t err;
    op_t *op = op_new(reg, what, cb, arg);

    if (op == NULL)
        return PC_ERR_NOMEM;
    snprintf(ttl, sizeof(ttl), "%u", reg->ttl_ms);
    snprintf(max, sizeof(max), "%u", reg->max_instances);
    snprintf(keep, sizeof(keep), "%" PRIu64, (uint64_t)reg->ttl_ms * HASH_KEEP_TTLS);
    const char *argv[] = {workers_key,
                          reg->key,
                          reg->id,
                          reg->host,
                          reg->version,
                          reg->started_at,
                          ttl,
                          max,
                          keep,
                          counts_json != NULL ? "1" : "0",
                          counts_json != NULL ? counts_json : "",
                          last_error != NULL ? "1" : "0",
                          last_error != NULL ? last_error : ""};
    enum { ARGC = sizeof(argv) / sizeof(argv[0]) };
    size_t argvlen[ARGC];
    for (size_t i = 0; i < ARGC; i++)
        argvlen[i] = strlen(argv[i]);
    err = pc_redis_eval(reg->redis, &reg->join, 2, ARGC, argv, argvlen, join_replied, op);
    if (err != PC_OK)
        free(op);
    return err;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

pc_err_t pc_registry_new(pc_redis_t *redis, const pc_worker_info_t *info, unsigned max_instances,
                         unsigned ttl_ms, pc_registry_t **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_registry_t *reg;

    *out = NULL;
    if (info == NULL || info->id == NULL || info->id[0] == '\0' || strlen(info->id) > ID_MAX)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "worker id must be 1-%d bytes", ID_MAX);
    reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the worker registry");
    reg->id = strdup(info->id);
    reg->host = dup_or_empty(info->host);
    reg->version = dup_or_empty(info->version);
    if (reg->id == NULL || reg->host == NULL || reg->version == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the worker registry");
        goto out_free_reg;
    }
    snprintf(reg->key, sizeof(reg->key), REGISTRY_WORKER_KEY_OPEN "%s}", info->id);
    snprintf(reg->started_at, sizeof(reg->started_at), "%" PRId64, info->started_at_ms);
    reg->redis = redis;
    reg->max_instances = max_instances != 0 ? max_instances : DEFAULT_MAX_INSTANCES;
    reg->ttl_ms = ttl_ms != 0 ? ttl_ms : DEFAULT_TTL_MS;
    reg->join = (pc_redis_script_t){.name = "registry_join", .source = join_lua};
    reg->leave = (pc_redis_script_t){.name = "registry_leave", .source = leave_lua};
    pc_redis_script_init(&reg->join);
    pc_redis_script_init(&reg->leave);
    *out = reg;
    return PC_OK;

out_free_reg:
    pc_registry_free(reg);
    return err;
}

void pc_registry_free(pc_registry_t *reg)
{
    if (reg == NULL)
        return;
    free(reg->id);
    free(reg->host);
    free(reg->version);
    free(reg);
}

pc_err_t pc_registry_register(pc_registry_t *reg, pc_registry_fn cb, void *arg)
{
    return join(reg, "register", NULL, NULL, cb, arg);
}

pc_err_t pc_registry_heartbeat(pc_registry_t *reg, const char *counts_json, const char *last_error,
                               pc_registry_fn cb, void *arg)
{
    return join(reg, "heartbeat", counts_json, last_error, cb, arg);
}

pc_err_t pc_registry_unregister(pc_registry_t *reg, pc_registry_fn cb, void *arg)
{
    pc_err_t err;
    op_t *op = op_new(reg, "unregister", cb, arg);

    if (op == NULL)
        return PC_ERR_NOMEM;
    const char *argv[] = {workers_key, reg->key, reg->id};
    size_t argvlen[] = {strlen(workers_key), strlen(reg->key), strlen(reg->id)};
    err = pc_redis_eval(reg->redis, &reg->leave, 2, 3, argv, argvlen, leave_replied, op);
    if (err != PC_OK)
        free(op);
    return err;
}
