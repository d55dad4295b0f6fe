/*
 * dedupe.c - the per-request record that makes issuance effectively-once. Each operation
 * (claim, renew, set_intent, complete, release) is one Lua script on one hash key, so two
 * workers can never interleave inside a step; time is Redis server time (TIME inside the
 * script), so worker clocks do not matter. Loop thread only.
 *
 * Record "pc:req:{tenant}:{request_id}" (literal braces; the first pair is the cluster hash
 * tag): state claimed|done, owner, token, fence, lease_until (server ms), intent, result,
 * digest (SHA-256 hex of result, computed here: Redis Lua only has SHA-1), completed_at.
 * A claimed record lives lease + KEEP_MS, longer than its lease, so an intent left by a dead
 * owner is still there for the worker that takes over; the lease itself is lease_until.
 *
 * Operations copy everything they need, so pc_dedupe_free may run while some are in flight
 * (their callbacks still run, from the Redis connection).
 */
#include "dedupe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "certs.h"
#include "text.h"

#define ID_MAX PC_DEDUPE_ID_MAX
#define KEY_MAX PC_DEDUPE_KEY_MAX
/* how long a claimed record outlives its lease, for the successor to find the intent */
#define KEEP_MS 60000
#define DEFAULT_LEASE_MS 30000
#define DEFAULT_RETENTION_MS (7 * 24 * 3600 * 1000LL)

/* now_ms in every script: Redis server time in milliseconds */
#define LUA_NOW                                                                                    \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS[1] record; ARGV owner, token, lease_ms, keep_ms, content digest ("": not checked),
 * intent to record with the claim ("": none).
 * -> {'conflict', first digest} | {'done', result} | {'busy', ms_left} | {'owned', fence[, intent]}
 * A record made before digests were kept has none, and takes the first one offered. The intent
 * given is recorded only when no earlier owner left one: that one is returned instead, and stays
 * until its orphans are dealt with and the new owner records its own (set_intent). */
static const char claim_lua[] =
    LUA_NOW "local key = KEYS[1]\n"
            "local h = redis.call('HMGET', key, 'state', 'lease_until', 'result', 'request')\n"
            "if h[4] and ARGV[5] ~= '' and h[4] ~= ARGV[5] then return {'conflict', h[4]} end\n"
            "if h[1] == 'done' then return {'done', h[3] or ''} end\n"
            "if h[1] == 'claimed' then\n"
            "  local lease_until = tonumber(h[2] or '0') or 0\n"
            "  if lease_until > now then return {'busy', lease_until - now} end\n"
            "end\n"
            "local lease = tonumber(ARGV[3])\n"
            "local fence = redis.call('HINCRBY', key, 'fence', 1)\n"
            "redis.call('HSET', key, 'state', 'claimed', 'owner', ARGV[1], 'token', ARGV[2],\n"
            "           'lease_until', now + lease)\n"
            "if ARGV[5] ~= '' then redis.call('HSET', key, 'request', ARGV[5]) end\n"
            "redis.call('PEXPIRE', key, lease + tonumber(ARGV[4]))\n"
            "local intent = redis.call('HGET', key, 'intent')\n"
            "if intent then return {'owned', fence, intent} end\n"
            "if ARGV[6] ~= '' then redis.call('HSET', key, 'intent', ARGV[6]) end\n"
            "return {'owned', fence}\n";

/* KEYS[1] record; ARGV token, lease_ms, keep_ms -> 1 | 0 (not ours) */
static const char renew_lua[] =
    LUA_NOW "local h = redis.call('HMGET', KEYS[1], 'state', 'token')\n"
            "if h[1] ~= 'claimed' or h[2] ~= ARGV[1] then return 0 end\n"
            "local lease = tonumber(ARGV[2])\n"
            "redis.call('HSET', KEYS[1], 'lease_until', now + lease)\n"
            "redis.call('PEXPIRE', KEYS[1], lease + tonumber(ARGV[3]))\n"
            "return 1\n";

/* KEYS[1] record; ARGV token, intent -> 1 | 0 */
static const char intent_lua[] = "local h = redis.call('HMGET', KEYS[1], 'state', 'token')\n"
                                 "if h[1] ~= 'claimed' or h[2] ~= ARGV[1] then return 0 end\n"
                                 "redis.call('HSET', KEYS[1], 'intent', ARGV[2])\n"
                                 "return 1\n";

/* The body of the completion script, after LUA_NOW and the inventory's functions (certs.h).
 * KEYS[1] record; ARGV token, fence, result, digest, retention_ms, then the inventory change
 * (pc_certs_change_args) -> 1 | 0. Completing again with the same result is 1 and changes
 * nothing: a retry after a reply lost on the way (a timeout) must not look like another owner's
 * result, which would make the worker revoke the certificate it delivered. */
static const char complete_body_lua[] =
    "local key = KEYS[1]\n"
    "local h = redis.call('HMGET', key, 'state', 'token', 'fence', 'digest')\n"
    "if h[1] == 'done' and h[4] == ARGV[4] then return 1 end\n"
    "if h[1] ~= 'claimed' or h[2] ~= ARGV[1] or h[3] ~= ARGV[2] then return 0 end\n"
    "redis.call('HSET', key, 'state', 'done', 'result', ARGV[3], 'digest', ARGV[4],\n"
    "           'completed_at', now)\n"
    "redis.call('HDEL', key, 'token', 'intent', 'lease_until')\n"
    "redis.call('PEXPIRE', key, ARGV[5])\n"
    "return certs_apply(6)\n";

/* KEYS[1] record; ARGV token, drop ("1": the intent is the one our claim recorded and the CA was
 * never asked) -> 1 | 0. With an intent the record stays, lease over, for the next owner to
 * see; without one (or one that names nothing) it is simply deleted. */
static const char release_lua[] = "local key = KEYS[1]\n"
                                  "local h = redis.call('HMGET', key, 'state', 'token')\n"
                                  "if h[1] ~= 'claimed' or h[2] ~= ARGV[1] then return 0 end\n"
                                  "if ARGV[2] ~= '1' and redis.call('HEXISTS', key, 'intent') == 1 "
                                  "then\n"
                                  "  redis.call('HSET', key, 'lease_until', 0)\n"
                                  "  redis.call('HDEL', key, 'token')\n"
                                  "else\n"
                                  "  redis.call('DEL', key)\n"
                                  "end\n"
                                  "return 1\n";

struct pc_dedupe {
    pc_redis_t *redis;
    char *worker_id;
    unsigned lease_ms;
    int64_t retention_ms;
    pc_redis_script_t claim, renew, intent, complete, release;
    char *complete_source; /* LUA_NOW + the inventory's functions + complete_body_lua */
};

/* One operation in flight; owns copies of what its callback needs. */
typedef struct op {
    pc_claim_fn claim_cb;
    pc_dedupe_done_fn done_cb;
    void *arg;
    const char *what;  /* "claim", "renew", ... (static) */
    bool intent_given; /* claim: an intent to record was sent */
    char token[33];
    char key[KEY_MAX];
} op_t;

pc_err_t pc_dedupe_key(const char *tenant, const char *request_id, char *buf, size_t size,
                       pc_diag_t *diag)
{
    size_t tlen = tenant != NULL ? strnlen(tenant, ID_MAX + 1) : 0;
    size_t rlen = request_id != NULL ? strnlen(request_id, ID_MAX + 1) : 0;
    char t[PC_KEY_SEGMENT_MAX(ID_MAX)], r[PC_KEY_SEGMENT_MAX(ID_MAX)];
    int n;

    if (tlen == 0 || tlen > ID_MAX || rlen == 0 || rlen > ID_MAX)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "tenant and request_id must be 1-%d bytes (got %zu and %zu bytes)", ID_MAX,
                       tlen, rlen);
    pc_err_t err = pc_key_segment(tenant, t, sizeof(t), diag);
    if (err == PC_OK)
        err = pc_key_segment(request_id, r, sizeof(r), diag);
    if (err != PC_OK)
        return err;
    n = snprintf(buf, size, "pc:req:{%s}:{%s}", t, r);
    if (n < 0 || (size_t)n >= size)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "record key buffer too small (%zu bytes)", size);
    return PC_OK;
}

static pc_err_t new_token(char token[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return PC_ERR_CRYPTO;
    for (size_t i = 0; i < sizeof(raw); i++) {
        token[2 * i] = hex[raw[i] >> 4];
        token[2 * i + 1] = hex[raw[i] & 15];
    }
    token[32] = '\0';
    return PC_OK;
}

/* sha256_hex: a few kilobytes of result hash in microseconds, so this stays on the loop. */
static pc_err_t sha256_hex(const unsigned char *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return PC_ERR_CRYPTO;
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return PC_OK;
}

/* op_new checks the ids (and token, unless NULL is expected) and builds the record key. */
static op_t *op_new(const char *what, const char *tenant, const char *request_id, const char *token,
                    bool need_token, pc_err_t *err)
{
    op_t *op;

    if (need_token && (token == NULL || strlen(token) != 32)) {
        *err = PC_ERR_INVALID_PARAM;
        return NULL;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        *err = PC_ERR_NOMEM;
        return NULL;
    }
    op->what = what;
    *err = pc_dedupe_key(tenant, request_id, op->key, sizeof(op->key), NULL);
    if (*err != PC_OK) {
        free(op);
        return NULL;
    }
    return op;
}

/* reply_failed turns a transport failure or a script error into the caller's error. */
static pc_err_t reply_failed(const op_t *op, pc_err_t err, const redisReply *reply,
                             const pc_diag_t *in, pc_diag_t *out)
{
    if (err != PC_OK) {
        *out = *in;
        pc_diag_prefix(out, op->what);
        return err;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        /* OOM, READONLY after a failover, BUSY: the world, not the request */
        return pc_fail(out, PC_ERR_DEPENDENCY, "%s of %s: Redis refused the script: %s", op->what,
                       op->key, reply->str);
    return PC_OK;
}

static pc_err_t parse_claim(const redisReply *reply, pc_claim_t *claim)
{
    const redisReply *tag, *val;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2)
        return PC_ERR_DEPENDENCY;
    tag = reply->element[0];
    val = reply->element[1];
    if (tag->type != REDIS_REPLY_STRING)
        return PC_ERR_DEPENDENCY;
    if (strcmp(tag->str, "done") == 0 && val->type == REDIS_REPLY_STRING) {
        claim->state = PC_CLAIM_DONE;
        claim->result = (const unsigned char *)val->str;
        claim->result_len = val->len;
    } else if (strcmp(tag->str, "conflict") == 0 && val->type == REDIS_REPLY_STRING) {
        claim->state = PC_CLAIM_CONFLICT;
    } else if (strcmp(tag->str, "busy") == 0 && val->type == REDIS_REPLY_INTEGER) {
        claim->state = PC_CLAIM_BUSY;
        claim->retry_after_ms = val->integer > 0 ? val->integer : 1;
    } else if (strcmp(tag->str, "owned") == 0 && val->type == REDIS_REPLY_INTEGER) {
        claim->state = PC_CLAIM_OWNED;
        claim->fence = val->integer;
        if (reply->elements > 2 && reply->element[2]->type == REDIS_REPLY_STRING) {
            claim->intent = (const unsigned char *)reply->element[2]->str;
            claim->intent_len = reply->element[2]->len;
        }
    } else {
        return PC_ERR_DEPENDENCY;
    }
    return PC_OK;
}

static void claim_replied(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    op_t *op = arg;
    pc_claim_t claim;
    pc_diag_t mine;

    memset(&claim, 0, sizeof(claim));
    err = reply_failed(op, err, reply, diag, &mine);
    if (err == PC_OK && parse_claim(reply, &claim) != PC_OK)
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "claim of %s: unexpected reply from the script",
                      op->key);
    if (err == PC_OK) {
        memcpy(claim.token, op->token, sizeof(claim.token));
        claim.intent_recorded =
            claim.state == PC_CLAIM_OWNED && op->intent_given && claim.intent == NULL;
        op->claim_cb(op->arg, PC_OK, &claim, NULL);
    } else {
        op->claim_cb(op->arg, err, NULL, &mine);
    }
    free(op);
}

static void done_replied(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    op_t *op = arg;
    pc_diag_t mine;

    err = reply_failed(op, err, reply, diag, &mine);
    if (err == PC_OK && (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1))
        err = pc_fail(&mine, PC_ERR_CONFLICT,
                      "%s of %s: the lease is no longer ours (another worker took the request "
                      "over, or it was completed or expired); stop and do not publish",
                      op->what, op->key);
    op->done_cb(op->arg, err, err == PC_OK ? NULL : &mine);
    free(op);
}

/* run sends op's script; on failure op is freed and the callback will not run. */
static pc_err_t run(pc_dedupe_t *dd, op_t *op, pc_redis_script_t *script, int argc,
                    const char **argv, const size_t *argvlen, pc_redis_reply_fn replied)
{
    pc_err_t err = pc_redis_eval(dd->redis, script, 1, argc, argv, argvlen, replied, op);

    if (err != PC_OK)
        free(op);
    return err;
}

/* text_lens sets the lengths of arguments that are all NUL-terminated text. */
static void text_lens(int argc, const char **argv, size_t *argvlen)
{
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
}

pc_err_t pc_dedupe_new(pc_redis_t *redis, const char *worker_id, unsigned lease_ms,
                       int64_t retention_ms, pc_dedupe_t **out, pc_diag_t *diag)
{
    pc_dedupe_t *dd;

    *out = NULL;
    if (worker_id == NULL || worker_id[0] == '\0' || strlen(worker_id) > ID_MAX)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "worker id must be 1-%d bytes", ID_MAX);
    dd = calloc(1, sizeof(*dd));
    if (dd == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the dedupe store");
    dd->worker_id = strdup(worker_id);
    if (dd->worker_id == NULL) {
        free(dd);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the dedupe store");
    }
    dd->redis = redis;
    dd->lease_ms = lease_ms != 0 ? lease_ms : DEFAULT_LEASE_MS;
    dd->retention_ms = retention_ms > 0 ? retention_ms : DEFAULT_RETENTION_MS;
    /* Every write here is one a failover must not lose (a lost claim, intent or completion
     * can have a request issued twice): durable, when redis.min_replicas_acks asks for it. */
    dd->claim = (pc_redis_script_t){.name = "dedupe_claim", .source = claim_lua, .durable = true};
    dd->renew = (pc_redis_script_t){.name = "dedupe_renew", .source = renew_lua, .durable = true};
    dd->intent =
        (pc_redis_script_t){.name = "dedupe_set_intent", .source = intent_lua, .durable = true};
    size_t len = sizeof(LUA_NOW) + strlen(pc_certs_lua) + sizeof(complete_body_lua);
    if ((dd->complete_source = malloc(len)) == NULL) {
        free(dd->worker_id);
        free(dd);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the dedupe store");
    }
    snprintf(dd->complete_source, len, "%s%s%s", LUA_NOW, pc_certs_lua, complete_body_lua);
    dd->complete = (pc_redis_script_t){
        .name = "dedupe_complete", .source = dd->complete_source, .durable = true};
    dd->release =
        (pc_redis_script_t){.name = "dedupe_release", .source = release_lua, .durable = true};
    pc_redis_script_init(&dd->claim);
    pc_redis_script_init(&dd->renew);
    pc_redis_script_init(&dd->intent);
    pc_redis_script_init(&dd->complete);
    pc_redis_script_init(&dd->release);
    *out = dd;
    return PC_OK;
}

void pc_dedupe_free(pc_dedupe_t *dd)
{
    if (dd == NULL)
        return;
    free(dd->worker_id);
    free(dd->complete_source);
    free(dd);
}

pc_err_t pc_dedupe_claim(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                         const char *content, const char *intent, pc_claim_fn cb, void *arg)
{
    char lease[24], keep[24];
    pc_err_t err;
    op_t *op = op_new("claim", tenant, request_id, NULL, false, &err);

    if (op == NULL)
        return err;
    op->claim_cb = cb;
    op->arg = arg;
    if (new_token(op->token) != PC_OK) {
        free(op);
        return PC_ERR_CRYPTO;
    }
    snprintf(lease, sizeof(lease), "%u", dd->lease_ms);
    snprintf(keep, sizeof(keep), "%d", KEEP_MS);
    op->intent_given = intent != NULL && intent[0] != '\0';
    const char *argv[] = {op->key,
                          dd->worker_id,
                          op->token,
                          lease,
                          keep,
                          content != NULL ? content : "",
                          op->intent_given ? intent : ""};
    size_t argvlen[7] = {0};
    text_lens(7, argv, argvlen);
    return run(dd, op, &dd->claim, 7, argv, argvlen, claim_replied);
}

pc_err_t pc_dedupe_renew(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                         const char *token, pc_dedupe_done_fn cb, void *arg)
{
    char lease[24], keep[24];
    pc_err_t err;
    op_t *op = op_new("renew", tenant, request_id, token, true, &err);

    if (op == NULL)
        return err;
    op->done_cb = cb;
    op->arg = arg;
    snprintf(lease, sizeof(lease), "%u", dd->lease_ms);
    snprintf(keep, sizeof(keep), "%d", KEEP_MS);
    const char *argv[] = {op->key, token, lease, keep};
    size_t argvlen[4] = {0};
    text_lens(4, argv, argvlen);
    return run(dd, op, &dd->renew, 4, argv, argvlen, done_replied);
}

pc_err_t pc_dedupe_set_intent(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                              const char *token, const unsigned char *intent, size_t len,
                              pc_dedupe_done_fn cb, void *arg)
{
    pc_err_t err;
    op_t *op = op_new("set_intent", tenant, request_id, token, true, &err);

    if (op == NULL)
        return err;
    op->done_cb = cb;
    op->arg = arg;
    const char *argv[] = {op->key, token, len > 0 ? (const char *)intent : ""};
    size_t argvlen[3] = {strlen(op->key), strlen(token), len};
    return run(dd, op, &dd->intent, 3, argv, argvlen, done_replied);
}

pc_err_t pc_dedupe_complete(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                            const char *token, int64_t fence, const unsigned char *result,
                            size_t len, const pc_certs_change_t *change, pc_dedupe_done_fn cb,
                            void *arg)
{
    char digest[65];
    pc_args_t args = {0};
    pc_diag_t diag;
    pc_err_t err;
    op_t *op = op_new("complete", tenant, request_id, token, true, &err);

    if (op == NULL)
        return err;
    op->done_cb = cb;
    op->arg = arg;
    if (sha256_hex(len > 0 ? result : (const unsigned char *)"", len, digest) != PC_OK) {
        free(op);
        return PC_ERR_CRYPTO;
    }
    if (pc_args_add(&args, op->key, strlen(op->key)) != PC_OK ||
        pc_args_add(&args, token, strlen(token)) != PC_OK ||
        pc_args_addf(&args, "%" PRId64, fence) != PC_OK ||
        pc_args_add(&args, result != NULL ? result : (const unsigned char *)"", len) != PC_OK ||
        pc_args_add(&args, digest, strlen(digest)) != PC_OK ||
        pc_args_addf(&args, "%" PRId64, dd->retention_ms) != PC_OK)
        err = PC_ERR_NOMEM;
    else
        err = pc_certs_change_args(tenant, change, &args, &diag);
    if (err == PC_OK)
        err = run(dd, op, &dd->complete, args.n, args.v, args.len, done_replied);
    else
        free(op);
    pc_args_free(&args);
    return err;
}

pc_err_t pc_dedupe_release(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                           const char *token, bool drop_own_intent, pc_dedupe_done_fn cb, void *arg)
{
    pc_err_t err;
    op_t *op = op_new("release", tenant, request_id, token, true, &err);

    if (op == NULL)
        return err;
    op->done_cb = cb;
    op->arg = arg;
    const char *argv[] = {op->key, token, drop_own_intent ? "1" : "0"};
    size_t argvlen[3] = {0};
    text_lens(3, argv, argvlen);
    return run(dd, op, &dd->release, 3, argv, argvlen, done_replied);
}
