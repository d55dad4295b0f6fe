/*
 * ca_index_redis.c - the Redis backend of the local CA's index: the CA's database for a
 * cluster. Every worker and the coordinator, on any machine, read and write the same records,
 * so a certificate issued on one host can be revoked from another and every CRL lists it.
 *
 * Keys (literal braces: the CA's name is the Redis Cluster hash tag, so a script's keys share
 * one slot), times as GeneralizedTime text "YYYYMMDDHHMMSSZ":
 *   pc:ca:{NAME}:cert:SERIAL    hash: subject, request_id, not_after, issued_at, and once
 *                               revoked: revoked_at, reason
 *   pc:ca:{NAME}:issued         zset: every serial, scored by its issue time (Unix seconds)
 *   pc:ca:{NAME}:revoked        hash: serial -> "REVOKED_AT REASON", what a CRL lists
 *   pc:ca:{NAME}:req:TENANT:REQUEST_ID  list: the serials issued for a request, oldest first
 *                               (both segments encoded by pc_key_segment, in ca_local.c)
 *   pc:ca:{NAME}:crlnumber      counter, INCR for each CRL
 * An OCSP answer reads one serial's cert hash and revoked field (a read-only script).
 * Nothing expires: these are the CA's records. Recording and revoking are Lua scripts, so each
 * is atomic, and repeating one changes nothing (recording a serial twice keeps one record).
 *
 * Synchronous hiredis, because the local CA runs on pool threads, several at once: a call
 * borrows a connection from a small mutex-guarded pool (or opens one) and gives it back unless
 * it broke. A connection that breaks after lying idle (Redis restarted, say) is replaced and the
 * command sent once more, which is safe for every command here (a repeated INCR only skips a
 * CRL number; CRL numbers need to increase, not to be consecutive). Connections are made
 * through redis_target.h: the login, and with Sentinel the current master (a READONLY answer
 * means the master was demoted: every idle connection goes, and the command is sent once more
 * to the master the sentinels name now). Any thread; blocking.
 */
#include "ca_index_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"
#include "text.h"
#include "redis_target.h"

#define DEFAULT_TIMEOUT_MS 2000
#define POOL_MAX 32        /* idle connections kept; more are closed after use */
#define SCAN_COUNT "1000"  /* revocations fetched per HSCAN step */
#define MAX_SCRIPT_ARGS 16 /* keys + arguments of one script */

/* Redis does not undo the writes of a script that fails half-way (out of memory, say), so each
 * script writes the key that marks its work done last: a repeated call then completes it. */

/* KEYS cert, issued[, req]; ARGV serial, subject, request_id, not_after, issued_at,
 * issued_at_unix -> 1 recorded | 0 already recorded (a repeated call). The cert hash is the
 * mark; an interrupted first call may leave the serial twice in the request's list, which only
 * means it is revoked twice as an orphan. */
static const char add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])\n"
    "if KEYS[3] then redis.call('RPUSH', KEYS[3], ARGV[1]) end\n"
    "redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'request_id', ARGV[3],\n"
    "           'not_after', ARGV[4], 'issued_at', ARGV[5])\n"
    "return 1\n";

/* KEYS cert, revoked; ARGV serial, revoked_at, reason
 * -> 1 revoked | 2 already revoked (kept as first recorded) | 0 no such certificate.
 * The revoked hash, what CRLs list, is the mark. */
static const char revoke_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])\n"
    "redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2], 'reason', ARGV[3])\n"
    "return 1\n";

/* KEYS cert, revoked; ARGV serial -> {1 issued | 0 not, and the revoked hash's "REVOKED_AT
 * REASON" when it lists the serial}. Reads only; one round trip for an OCSP answer. */
static const char status_lua[] = "local issued = redis.call('EXISTS', KEYS[1])\n"
                                 "local revoked = redis.call('HGET', KEYS[2], ARGV[1])\n"
                                 "if revoked then return {issued, revoked} end\n"
                                 "return {issued}\n";

typedef struct redis_index {
    pc_ca_index_t base;
    char *ca_name;
    pc_redis_target_t *target;
    char name[PC_REDIS_WHERE_MAX]; /* the target, for messages */
    unsigned timeout_ms;
    char *prefix; /* "pc:ca:{NAME}:" */
    pc_redis_script_t add_script;
    pc_redis_script_t revoke_script;
    pc_redis_script_t status_script;
    pthread_mutex_t lock; /* guards idle and idle_count */
    redisContext *idle[POOL_MAX];
    size_t idle_count;
} redis_index_t;

static const pc_ca_index_ops_t redis_ops;

/* ---- errors ------------------------------------------------------------------------------ */

static pc_err_t unreachable(const redis_index_t *ri, const char *what, const char *why,
                            pc_diag_t *diag)
{
    return pc_fail(diag, PC_ERR_DEPENDENCY,
                   "CA \"%s\" cannot %s: Redis at %s: %s; check that Redis runs there (%s) and "
                   "answers within %u ms (redis.command_timeout_ms)",
                   ri->ca_name, what, ri->name, why,
                   pc_redis_target_sentinel(ri->target) ? "redis.sentinels, redis.master_name"
                                                        : "redis.host, redis.port",
                   ri->timeout_ms);
}

static pc_err_t refused(const redis_index_t *ri, const char *what, const char *answer,
                        pc_diag_t *diag)
{
    /* Redis 7 refuses a long command from an unauthenticated client before it says NOAUTH */
    bool auth = strncmp(answer, "NOAUTH", 6) == 0 || strncmp(answer, "WRONGPASS", 9) == 0 ||
                strstr(answer, "unauthenticated") != NULL;
    return pc_fail(diag, PC_ERR_DEPENDENCY, "CA \"%s\" cannot %s: Redis at %s answered \"%s\"; %s",
                   ri->ca_name, what, ri->name, answer,
                   auth ? "set the user and password Redis expects in redis.username and "
                          "redis.password"
                        : "see the Redis server's log");
}

static pc_err_t unexpected(const redis_index_t *ri, const char *what, pc_diag_t *diag)
{
    return pc_fail(diag, PC_ERR_DEPENDENCY,
                   "CA \"%s\" cannot %s: unexpected reply from Redis at %s; is that a Redis "
                   "server of version 4 or later?",
                   ri->ca_name, what, ri->name);
}

/* ---- connections ------------------------------------------------------------------------- */

static pc_err_t connect_new(redis_index_t *ri, const char *what, redisContext **out,
                            pc_diag_t *diag)
{
    char where[PC_REDIS_WHERE_MAX];
    pc_diag_t why = {{0}};
    pc_err_t err = pc_redis_target_connect(ri->target, ri->timeout_ms, out, where, &why);
    if (err != PC_OK)
        pc_fail(diag, err, "CA \"%s\" cannot %s: %s", ri->ca_name, what, why.msg);
    return err;
}

/* pool_drop closes every idle connection: after a failover they all lead to the old master. */
static void pool_drop(redis_index_t *ri)
{
    redisContext *idle[POOL_MAX];
    size_t n;
    pthread_mutex_lock(&ri->lock);
    n = ri->idle_count;
    memcpy(idle, ri->idle, n * sizeof(*idle));
    ri->idle_count = 0;
    pthread_mutex_unlock(&ri->lock);
    for (size_t i = 0; i < n; i++)
        redisFree(idle[i]);
}

/* wait_replicas has WAIT confirm that min_replicas_acks replicas have every write made on ctx
 * (no-op when it is 0). */
static pc_err_t wait_replicas(redis_index_t *ri, const char *what, redisContext *ctx,
                              pc_diag_t *diag)
{
    unsigned want = pc_redis_target_min_acks(ri->target);
    const char *argv[3];
    size_t argvlen[3];
    char buf[32];
    pc_err_t err = PC_OK;
    if (want == 0)
        return PC_OK;
    pc_redis_target_wait_args(ri->target, ri->timeout_ms, buf, argv, argvlen);
    redisReply *reply = redisCommandArgv(ctx, 3, argv, argvlen);
    if (reply == NULL)
        return unreachable(ri, what, ctx->errstr, diag);
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < (long long)want)
        err = pc_fail(diag, PC_ERR_DEPENDENCY,
                      "CA \"%s\" cannot %s: %lld replica(s) of Redis at %s confirmed the write "
                      "within %u ms, not %u (redis.min_replicas_acks): it may not survive a "
                      "failover; retrying",
                      ri->ca_name, what, reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0LL,
                      ri->name, ri->timeout_ms / 2, want);
    freeReplyObject(reply);
    return err;
}

static redisContext *pool_take(redis_index_t *ri)
{
    redisContext *ctx = NULL;
    pthread_mutex_lock(&ri->lock);
    if (ri->idle_count > 0)
        ctx = ri->idle[--ri->idle_count];
    pthread_mutex_unlock(&ri->lock);
    return ctx;
}

static void pool_give(redis_index_t *ri, redisContext *ctx)
{
    pthread_mutex_lock(&ri->lock);
    if (ri->idle_count < POOL_MAX) {
        ri->idle[ri->idle_count++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&ri->lock);
    if (ctx != NULL)
        redisFree(ctx);
}

/* command sends one command (arguments are C strings) on a pooled connection. PC_OK with
 * *reply, which may be an error reply (caller frees with freeReplyObject); PC_ERR_DEPENDENCY
 * when Redis cannot be reached or did not answer, or, durable, when fewer replicas than
 * redis.min_replicas_acks confirmed the write. */
static pc_err_t command(redis_index_t *ri, const char *what, int argc, const char **argv,
                        bool durable, redisReply **reply, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_redis_pipe_guard_t guard;
    redisContext *ctx = pool_take(ri);
    bool pooled = ctx != NULL, demoted = false;

    *reply = NULL;
    pc_redis_pipe_block(&guard);
    for (;;) {
        if (ctx == NULL && (err = connect_new(ri, what, &ctx, diag)) != PC_OK)
            break;
        *reply = redisCommandArgv(ctx, argc, argv, NULL);
        if (*reply != NULL && pc_redis_reply_readonly(*reply) && !demoted) {
            /* a failover demoted the server under us: nothing was written; once more on the
             * master the sentinels name now */
            freeReplyObject(*reply);
            *reply = NULL;
            redisFree(ctx);
            ctx = NULL;
            pool_drop(ri);
            demoted = true;
            pooled = false;
            continue;
        }
        if (*reply != NULL && durable && (*reply)->type != REDIS_REPLY_ERROR &&
            (err = wait_replicas(ri, what, ctx, diag)) != PC_OK) {
            /* the write may be lost in a failover: the caller writes it again; with Sentinel,
             * every connection may lead to a demoted master */
            freeReplyObject(*reply);
            *reply = NULL;
            redisFree(ctx);
            if (pc_redis_target_sentinel(ri->target))
                pool_drop(ri);
            break;
        }
        if (*reply != NULL) {
            pool_give(ri, ctx);
            break;
        }
        /* A broken connection is never reused. One that lay idle may just be stale: once more
         * on a new one. */
        if (!pooled) {
            err = unreachable(ri, what, ctx->errstr, diag);
            redisFree(ctx);
            break;
        }
        redisFree(ctx);
        ctx = NULL;
        pooled = false;
    }
    pc_redis_pipe_unblock(&guard);
    return err;
}

/* eval runs script with nkeys keys then the arguments (C strings): EVALSHA, and EVAL (which
 * loads it) when Redis does not have it. PC_OK with a reply that is not an error. */
static pc_err_t eval(redis_index_t *ri, const char *what, const pc_redis_script_t *script,
                     int nkeys, int argc, const char **argv, redisReply **reply, pc_diag_t *diag)
{
    const char *args[MAX_SCRIPT_ARGS + 3];
    char nkeys_text[16];

    if (argc > MAX_SCRIPT_ARGS)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "too many script arguments");
    snprintf(nkeys_text, sizeof(nkeys_text), "%d", nkeys);
    args[0] = "EVALSHA";
    args[1] = script->sha1;
    args[2] = nkeys_text;
    memcpy(&args[3], argv, (size_t)argc * sizeof(*argv));
    pc_err_t err = command(ri, what, argc + 3, args, script->durable, reply, diag);
    if (err == PC_OK && (*reply)->type == REDIS_REPLY_ERROR &&
        strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*reply);
        args[0] = "EVAL";
        args[1] = script->source;
        err = command(ri, what, argc + 3, args, script->durable, reply, diag);
    }
    if (err == PC_OK && (*reply)->type == REDIS_REPLY_ERROR) {
        err = refused(ri, what, (*reply)->str, diag);
        freeReplyObject(*reply);
        *reply = NULL;
    }
    return err;
}

/* key_new returns prefix + kind + id (id may be NULL), caller frees; NULL when out of memory. */
static char *key_new(const redis_index_t *ri, const char *kind, const char *id)
{
    size_t len = strlen(ri->prefix) + strlen(kind) + (id != NULL ? strlen(id) : 0) + 1;
    char *key = malloc(len);
    if (key != NULL)
        snprintf(key, len, "%s%s%s", ri->prefix, kind, id != NULL ? id : "");
    return key;
}

/* ---- operations -------------------------------------------------------------------------- */

/* add_args puts the add script's keys, then its arguments, into args (*nkeys: how many are
 * keys): one way for the blocking call and the loop's, so that both write the same record. */
static pc_err_t add_args(const redis_index_t *ri, const char *serial_hex, time_t not_after,
                         const char *request_id, const char *subject, pc_args_t *args, int *nkeys,
                         pc_diag_t *diag)
{
    char not_after_text[16], issued_at[16], issued_unix[32];
    time_t now = time(NULL);
    bool with_request = request_id != NULL && request_id[0] != '\0';
    char *keys[3] = {key_new(ri, "cert:", serial_hex), key_new(ri, "issued", NULL),
                     with_request ? key_new(ri, "req:", request_id) : NULL};
    pc_ca_index_format_time(not_after, not_after_text);
    pc_ca_index_format_time(now, issued_at);
    snprintf(issued_unix, sizeof(issued_unix), "%lld", (long long)now);
    const char *values[] = {serial_hex,
                            subject != NULL ? subject : "",
                            request_id != NULL ? request_id : "",
                            not_after_text,
                            issued_at,
                            issued_unix};
    pc_err_t err = keys[0] != NULL && keys[1] != NULL && (!with_request || keys[2] != NULL)
                       ? PC_OK
                       : PC_ERR_NOMEM;
    for (size_t i = 0; err == PC_OK && i < 3 && keys[i] != NULL; i++)
        err = pc_args_add(args, keys[i], strlen(keys[i]));
    *nkeys = args->n;
    for (size_t i = 0; err == PC_OK && i < sizeof(values) / sizeof(values[0]); i++)
        err = pc_args_add(args, values[i], strlen(values[i]));
    for (size_t i = 0; i < 3; i++)
        free(keys[i]);
    if (err != PC_OK) {
        pc_args_free(args);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory recording certificate %s", serial_hex);
    }
    return PC_OK;
}

static pc_err_t redis_add_issued(pc_ca_index_t *base, const char *serial_hex, time_t not_after,
                                 const char *request_id, const char *subject, pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    redisReply *reply = NULL;
    pc_args_t args = {0};
    int nkeys = 0;
    char what[128];
    pc_err_t err = add_args(ri, serial_hex, not_after, request_id, subject, &args, &nkeys, diag);
    if (err != PC_OK)
        return err;
    snprintf(what, sizeof(what), "record the certificate it issued, serial %s", serial_hex);
    err = eval(ri, what, &ri->add_script, nkeys, args.n, args.v, &reply, diag);
    if (err == PC_OK && reply->type != REDIS_REPLY_INTEGER)
        err = unexpected(ri, what, diag);
    freeReplyObject(reply);
    pc_args_free(&args);
    return err;
}

static pc_err_t redis_prepare_issued(pc_ca_index_t *base, const char *serial_hex, time_t not_after,
                                     const char *request_id, const char *subject,
                                     pc_ca_index_record_t *rec, pc_diag_t *diag)
{
    snprintf(rec->what, sizeof(rec->what), "record the certificate it issued, serial %s",
             serial_hex);
    return add_args((redis_index_t *)base, serial_hex, not_after, request_id, subject, &rec->args,
                    &rec->nkeys, diag);
}

/* One record sent through the loop's client. */
typedef struct add_op {
    redis_index_t *ri;
    pc_ca_index_done_fn cb;
    void *arg;
    char what[128];
} add_op_t;

/* on_added reads the answer as eval does for the blocking call. Loop thread. */
static void on_added(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    add_op_t *op = arg;
    pc_diag_t d = {{0}};
    if (err != PC_OK)
        err = unreachable(op->ri, op->what, diag != NULL ? diag->msg : pc_strerror(err), &d);
    else if (reply->type == REDIS_REPLY_ERROR)
        err = refused(op->ri, op->what, reply->str, &d);
    else if (reply->type != REDIS_REPLY_INTEGER)
        err = unexpected(op->ri, op->what, &d);
    op->cb(op->arg, err, err == PC_OK ? NULL : &d);
    free(op);
}

static pc_err_t redis_send_issued(pc_ca_index_t *base, pc_redis_t *redis,
                                  const pc_ca_index_record_t *rec, pc_ca_index_done_fn cb,
                                  void *arg, pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    add_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory: cannot %s", rec->what);
    *op = (add_op_t){.ri = ri, .cb = cb, .arg = arg};
    memcpy(op->what, rec->what, sizeof(op->what));
    pc_err_t err = pc_redis_eval(redis, &ri->add_script, rec->nkeys, rec->args.n, rec->args.v,
                                 rec->args.len, on_added, op);
    if (err != PC_OK) {
        free(op);
        return err == PC_ERR_DEPENDENCY
                   ? unreachable(ri, rec->what, "the connection is closed", diag)
                   : pc_fail(diag, err, "cannot %s: %s", rec->what, pc_strerror(err));
    }
    return PC_OK;
}

static pc_err_t redis_revoke(pc_ca_index_t *base, const char *serial_hex, int reason, time_t when,
                             pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    pc_err_t err = PC_OK;
    redisReply *reply = NULL;
    char what[128], revoked_at[16], reason_text[16];
    char *cert_key = key_new(ri, "cert:", serial_hex);
    char *revoked_key = key_new(ri, "revoked", NULL);

    if (cert_key == NULL || revoked_key == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory revoking %s", serial_hex);
        goto out_free_keys;
    }
    snprintf(what, sizeof(what), "revoke serial %s", serial_hex);
    pc_ca_index_format_time(when, revoked_at);
    snprintf(reason_text, sizeof(reason_text), "%d", reason);
    const char *argv[] = {cert_key, revoked_key, serial_hex, revoked_at, reason_text};
    err = eval(ri, what, &ri->revoke_script, 2, 5, argv, &reply, diag);
    if (err == PC_OK && reply->type != REDIS_REPLY_INTEGER)
        err = unexpected(ri, what, diag);
    else if (err == PC_OK && reply->integer == 0)
        err = PC_ERR_NOT_FOUND;
    freeReplyObject(reply);
out_free_keys:
    free(revoked_key);
    free(cert_key);
    return err;
}

static bool is_hex(const char *s, size_t len)
{
    return len > 0 && strspn(s, "0123456789ABCDEFabcdef") == len;
}

/* Parses a value of the revoked hash, "YYYYMMDDHHMMSSZ REASON", into revoked_at[16] and
 * *reason. */
static bool parse_revoked_value(const redisReply *value, char *revoked_at, int *reason)
{
    if (value->type != REDIS_REPLY_STRING || value->len < 17 || value->len > 18 ||
        strspn(value->str, "0123456789") != 14 || value->str[14] != 'Z' || value->str[15] != ' ' ||
        value->str[16] < '0' || value->str[16] > '9')
        return false;
    char *end = NULL;
    long r = strtol(value->str + 16, &end, 10);
    if (end != value->str + value->len || r < 0 || r > 10)
        return false;
    memcpy(revoked_at, value->str, 15);
    revoked_at[15] = '\0';
    *reason = (int)r;
    return true;
}

/* Parses one field of the revoked hash: serial -> "YYYYMMDDHHMMSSZ REASON". */
static bool parse_revoked(const redisReply *field, const redisReply *value,
                          pc_ca_index_revoked_t *out)
{
    if (field->type != REDIS_REPLY_STRING || field->len >= sizeof(out->serial_hex) ||
        !is_hex(field->str, field->len) ||
        !parse_revoked_value(value, out->revoked_at, &out->reason))
        return false;
    memcpy(out->serial_hex, field->str, field->len);
    out->serial_hex[field->len] = '\0';
    return true;
}

static int cmp_revoked(const void *a, const void *b)
{
    return strcmp(((const pc_ca_index_revoked_t *)a)->serial_hex,
                  ((const pc_ca_index_revoked_t *)b)->serial_hex);
}

/* Appends the field/value pairs of one HSCAN page to *items. */
static pc_err_t add_page(const redis_index_t *ri, const char *key, const redisReply *pairs,
                         pc_ca_index_revoked_t **items, size_t *count, size_t *cap, pc_diag_t *diag)
{
    for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
        if (*count == *cap) {
            size_t new_cap = *cap != 0 ? *cap * 2 : 64;
            pc_ca_index_revoked_t *grown = realloc(*items, new_cap * sizeof(**items));
            if (grown == NULL)
                return pc_fail(diag, PC_ERR_NOMEM,
                               "out of memory reading the revocations of CA \"%s\"", ri->ca_name);
            *items = grown;
            *cap = new_cap;
        }
        const redisReply *field = pairs->element[i], *value = pairs->element[i + 1];
        if (!parse_revoked(field, value, &(*items)[*count]))
            return pc_fail(diag, PC_ERR_CONFLICT,
                           "CA \"%s\": the Redis hash %s holds a malformed revocation \"%.*s\" -> "
                           "\"%.*s\" (expected SERIAL -> \"YYYYMMDDHHMMSSZ REASON\"); correct or "
                           "remove that field",
                           ri->ca_name, key,
                           field->type == REDIS_REPLY_STRING ? (int)field->len : 0,
                           field->type == REDIS_REPLY_STRING ? field->str : "",
                           value->type == REDIS_REPLY_STRING ? (int)value->len : 0,
                           value->type == REDIS_REPLY_STRING ? value->str : "");
        (*count)++;
    }
    return PC_OK;
}

/* HSCAN rather than HGETALL: a long revocation list is read in steps, never blocking Redis for
 * the whole of it. A step may repeat fields (the hash was resized meanwhile), so the list is
 * sorted and each serial kept once. */
static pc_err_t redis_list_revoked(pc_ca_index_t *base, pc_ca_index_revoked_t **out, size_t *count,
                                   pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    pc_err_t err = PC_OK;
    pc_ca_index_revoked_t *items = NULL;
    size_t n = 0, cap = 0;
    char cursor[32] = "0";
    char *key = key_new(ri, "revoked", NULL);
    const char *what = "read its revocations";

    if (key == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory reading the revocations");
    do {
        redisReply *reply = NULL;
        const char *argv[] = {"HSCAN", key, cursor, "COUNT", SCAN_COUNT};
        err = command(ri, what, 5, argv, false, &reply, diag);
        if (err != PC_OK)
            break;
        if (reply->type == REDIS_REPLY_ERROR)
            err = refused(ri, what, reply->str, diag);
        else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                 reply->element[0]->type != REDIS_REPLY_STRING ||
                 reply->element[0]->len >= sizeof(cursor) ||
                 reply->element[1]->type != REDIS_REPLY_ARRAY)
            err = unexpected(ri, what, diag);
        else {
            memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
            cursor[reply->element[0]->len] = '\0';
            err = add_page(ri, key, reply->element[1], &items, &n, &cap, diag);
        }
        freeReplyObject(reply);
    } while (err == PC_OK && strcmp(cursor, "0") != 0);
    free(key);
    if (err != PC_OK) {
        free(items);
        return err;
    }
    if (n > 1)
        qsort(items, n, sizeof(*items), cmp_revoked);
    size_t kept = n > 0 ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(items[kept - 1].serial_hex, items[i].serial_hex) == 0)
            continue;
        if (kept != i)
            items[kept] = items[i];
        kept++;
    }
    *out = items;
    *count = kept;
    return PC_OK;
}

static pc_err_t redis_find_issued(pc_ca_index_t *base, const char *request_id, pc_ca_serial_t **out,
                                  size_t *count, pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    pc_err_t err = PC_OK;
    redisReply *reply = NULL;
    char what[160];
    char *key = key_new(ri, "req:", request_id);

    if (key == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory looking up request %s", request_id);
    snprintf(what, sizeof(what), "look up the certificates of request %.100s", request_id);
    const char *argv[] = {"LRANGE", key, "0", "-1"};
    err = command(ri, what, 4, argv, false, &reply, diag);
    free(key);
    if (err != PC_OK)
        return err;
    if (reply->type == REDIS_REPLY_ERROR) {
        err = refused(ri, what, reply->str, diag);
        goto out_free_reply;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        err = unexpected(ri, what, diag);
        goto out_free_reply;
    }
    if (reply->elements == 0)
        goto out_free_reply;
    pc_ca_serial_t *items = calloc(reply->elements, sizeof(*items));
    if (items == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory looking up request %s", request_id);
        goto out_free_reply;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *serial = reply->element[i];
        if (serial->type != REDIS_REPLY_STRING || serial->len >= sizeof(items[i].hex) ||
            !is_hex(serial->str, serial->len)) {
            free(items);
            err = unexpected(ri, what, diag);
            goto out_free_reply;
        }
        memcpy(items[i].hex, serial->str, serial->len);
    }
    *out = items;
    *count = reply->elements;
out_free_reply:
    freeReplyObject(reply);
    return err;
}

static pc_err_t redis_status(pc_ca_index_t *base, const char *serial_hex, pc_ca_index_status_t *out,
                             pc_diag_t *diag)
{
    redis_index_t *ri = (redis_index_t *)base;
    pc_err_t err = PC_OK;
    redisReply *reply = NULL;
    char what[128];
    char *cert_key = key_new(ri, "cert:", serial_hex);
    char *revoked_key = key_new(ri, "revoked", NULL);

    if (cert_key == NULL || revoked_key == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory looking up serial %s", serial_hex);
        goto out_free_keys;
    }
    snprintf(what, sizeof(what), "look up the status of serial %.64s", serial_hex);
    const char *argv[] = {cert_key, revoked_key, serial_hex};
    err = eval(ri, what, &ri->status_script, 2, 3, argv, &reply, diag);
    if (err != PC_OK)
        goto out_free_keys;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->elements > 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        err = unexpected(ri, what, diag);
    } else if (reply->elements == 2) {
        out->state = PC_CA_INDEX_REVOKED;
        if (!parse_revoked_value(reply->element[1], out->revoked_at, &out->reason))
            err = pc_fail(diag, PC_ERR_CONFLICT,
                          "CA \"%s\": the revocation of serial %s in Redis is malformed (expected "
                          "\"YYYYMMDDHHMMSSZ REASON\"); correct or remove that field",
                          ri->ca_name, serial_hex);
    } else {
        out->state = reply->element[0]->integer == 1 ? PC_CA_INDEX_GOOD : PC_CA_INDEX_UNKNOWN;
    }
    freeReplyObject(reply);
out_free_keys:
    free(revoked_key);
    free(cert_key);
    return err;
}

/* integer_command runs VERB on the CA's key named suffix and returns its integer reply, which
 * must be at least min. */
static pc_err_t integer_command(redis_index_t *ri, const char *what, const char *verb,
                                const char *suffix, long long min, uint64_t *out, pc_diag_t *diag)
{
    redisReply *reply = NULL;
    char *key = key_new(ri, suffix, NULL);

    if (key == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory: CA \"%s\" cannot %s", ri->ca_name, what);
    const char *argv[] = {verb, key};
    /* a CRL number a failover forgot would be handed out again: INCR is durable */
    pc_err_t err = command(ri, what, 2, argv, strcmp(verb, "INCR") == 0, &reply, diag);
    free(key);
    if (err != PC_OK)
        return err;
    if (reply->type == REDIS_REPLY_ERROR)
        err = refused(ri, what, reply->str, diag);
    else if (reply->type != REDIS_REPLY_INTEGER || reply->integer < min)
        err = unexpected(ri, what, diag);
    else
        *out = (uint64_t)reply->integer;
    freeReplyObject(reply);
    return err;
}

static pc_err_t redis_next_crl_number(pc_ca_index_t *base, uint64_t *number, pc_diag_t *diag)
{
    return integer_command((redis_index_t *)base, "take the number of its next CRL", "INCR",
                           "crlnumber", 1, number, diag);
}

static pc_err_t redis_revoked_count(pc_ca_index_t *base, uint64_t *count, pc_diag_t *diag)
{
    return integer_command((redis_index_t *)base, "count its revoked certificates", "HLEN",
                           "revoked", 0, count, diag);
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void redis_free(pc_ca_index_t *base)
{
    redis_index_t *ri = (redis_index_t *)base;
    for (size_t i = 0; i < ri->idle_count; i++)
        redisFree(ri->idle[i]);
    pthread_mutex_destroy(&ri->lock);
    pc_redis_target_free(ri->target);
    free(ri->prefix);
    free(ri->ca_name);
    free(ri);
}

pc_err_t pc_ca_index_open_redis(const char *ca_name, const pc_redis_config_t *cfg,
                                pc_ca_index_t **out, pc_diag_t *diag)
{
    *out = NULL;
    if (ca_name == NULL || ca_name[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the CA's records in Redis need the CA's name");
    redis_index_t *ri = calloc(1, sizeof(*ri));
    if (ri == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory opening the records of CA \"%s\"",
                       ca_name);
    ri->base.ops = &redis_ops;
    pthread_mutex_init(&ri->lock, NULL);
    ri->timeout_ms = cfg->command_timeout_ms != 0 ? cfg->command_timeout_ms : DEFAULT_TIMEOUT_MS;
    pc_err_t err = pc_redis_target_new(cfg, &ri->target, diag);
    if (err != PC_OK) {
        redis_free(&ri->base);
        return err;
    }
    pc_redis_target_name(ri->target, ri->name, sizeof(ri->name));
    ri->ca_name = strdup(ca_name);
    ri->prefix = malloc(strlen(ca_name) + sizeof("pc:ca:{}:"));
    if (ri->ca_name == NULL || ri->prefix == NULL) {
        redis_free(&ri->base);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory opening the records of CA \"%s\"",
                       ca_name);
    }
    snprintf(ri->prefix, strlen(ca_name) + sizeof("pc:ca:{}:"), "pc:ca:{%s}:", ca_name);
    /* the CA's records must survive a failover: durable, when redis.min_replicas_acks asks */
    ri->add_script =
        (pc_redis_script_t){.name = "ca_add_issued", .source = add_lua, .durable = true};
    ri->revoke_script =
        (pc_redis_script_t){.name = "ca_revoke", .source = revoke_lua, .durable = true};
    ri->status_script = (pc_redis_script_t){.name = "ca_status", .source = status_lua};
    pc_redis_script_init(&ri->add_script);
    pc_redis_script_init(&ri->revoke_script);
    pc_redis_script_init(&ri->status_script);
    *out = &ri->base;
    return PC_OK;
}

static const pc_ca_index_ops_t redis_ops = {
    .add_issued = redis_add_issued,
    .prepare_issued = redis_prepare_issued,
    .send_issued = redis_send_issued,
    .revoke = redis_revoke,
    .list_revoked = redis_list_revoked,
    .find_issued = redis_find_issued,
    .next_crl_number = redis_next_crl_number,
    .revoked_count = redis_revoked_count,
    .status = redis_status,
    .free = redis_free,
};
