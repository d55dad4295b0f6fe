/*
 * certs.c - the inventory of delivered certificates (see certs.h for the keys): the Lua that a
 * request's completion runs to record what it delivered or revoked, the arguments it reads, and
 * the read-only script behind every query. Loop thread.
 *
 * Ids from requests become key segments (pc_key_segment), so no tenant, device or user id can
 * name another's key; a certificate is named within its tenant by "CA:SERIAL" (both encoded).
 */
#include "certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "text.h"

#define ID_MAX 256 /* bytes of an id that can be a key segment here */
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000

/* certs_apply(at): ARGV from at: prefix "pc:cert:{T}:", adds (0/1), then for an add: member,
 * user, device, request (segments, "" for none), not_after, renews member ("" none), the new
 * serial, renew_at (0: none), nfields, then nfields name/value pairs; then nrevoked, reason,
 * and the members.
 * `now` (ms) comes from the including script. The request's own completion happens once (its
 * digest check), so an add is never applied twice. */
const char pc_certs_lua[] =
    "local function certs_apply(at)\n"
    "  local p = ARGV[at]\n"
    "  local i = at + 1\n"
    "  if tonumber(ARGV[i]) == 1 then\n"
    "    local m, user, dev, req = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]\n"
    "    local not_after, renews, serial = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]\n"
    "    local renew_at, nf = tonumber(ARGV[i + 8]), tonumber(ARGV[i + 9])\n"
    "    i = i + 10\n"
    "    local rec = p .. 'c:' .. m\n"
    /* one HSET of every field: a call per field cost Redis a script call each, 15 a request */
    "    local f = {'status', 'valid', 'issued_at', now}\n"
    "    for k = i, i + 2 * nf - 1 do f[#f + 1] = ARGV[k] end\n"
    "    redis.call('HSET', rec, unpack(f))\n"
    "    i = i + 2 * nf\n"
    "    redis.call('ZADD', p .. 'all', now, m)\n"
    "    redis.call('ZADD', p .. 'exp', not_after, m)\n"
    "    redis.call('ZADD', p .. 'due:exp', not_after, m)\n"
    "    if renew_at > 0 then redis.call('ZADD', p .. 'due:renew', renew_at, m) end\n"
    "    if user ~= '' then redis.call('ZADD', p .. 'user:' .. user, now, m) end\n"
    "    if dev ~= '' then redis.call('ZADD', p .. 'dev:' .. dev, now, m) end\n"
    "    if req ~= '' then redis.call('ZADD', p .. 'req:' .. req, now, m) end\n"
    "    if renews ~= '' then\n"
    "      local old = p .. 'c:' .. renews\n"
    "      if redis.call('HGET', old, 'status') == 'valid' then\n"
    "        redis.call('HSET', old, 'status', 'superseded', 'reason', 4, 'revoked_at', now,\n"
    "                   'renewed_by', serial)\n"
    "        redis.call('ZADD', p .. 'pending', now, renews)\n"
    "      end\n"
    "    end\n"
    "  else\n"
    "    i = i + 1\n"
    "  end\n"
    "  local nrev, reason = tonumber(ARGV[i]), ARGV[i + 1]\n"
    "  for k = 0, nrev - 1 do\n"
    "    local m = ARGV[i + 2 + k]\n"
    "    local rec = p .. 'c:' .. m\n"
    "    local st = redis.call('HGET', rec, 'status')\n"
    "    if st == 'valid' then\n"
    "      redis.call('HSET', rec, 'status', 'revoked', 'reason', reason, 'revoked_at', now)\n"
    "    end\n"
    "    redis.call('ZREM', p .. 'pending', m)\n"
    "  end\n"
    "  return 1\n"
    "end\n";

/* find: KEYS[1] the index (a zset) or a record; ARGV mode ('z' newest first, 'e' by expiry
 * from ARGV[7] up to ARGV[5], 'r' one record), offset, limit, prefix, max score, member, min
 * score.
 * -> {more, member1, {fields...}, member2, {...}, ...} */
static const char find_lua[] =
    "local mode, off, lim, p = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]\n"
    "local members\n"
    "if mode == 'r' then\n"
    "  if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end\n"
    "  return {0, ARGV[6], redis.call('HGETALL', KEYS[1])}\n"
    "elseif mode == 'e' then\n"
    "  members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[7], ARGV[5], 'LIMIT', off, lim + 1)\n"
    "else\n"
    "  members = redis.call('ZREVRANGE', KEYS[1], off, off + lim)\n"
    "end\n"
    "local out = {0}\n"
    "if #members > lim then out[1] = 1; members[#members] = nil end\n"
    "for _, m in ipairs(members) do\n"
    "  out[#out + 1] = m\n"
    "  out[#out + 1] = redis.call('HGETALL', p .. 'c:' .. m)\n"
    "end\n"
    "return out\n";

static pc_redis_script_t find_script = {.name = "certs_find", .source = find_lua};

/* take: KEYS[1] a queue (a zset of members by the time they are due); ARGV prefix, max score,
 * limit, later (ms), mode ('valid': only valid, unexpired certificates stay queued; 'any': any
 * recorded one), now. Each member due (score <= max) whose record still qualifies is handed out
 * and pushed `later` ms past max, so that no other caller takes it meanwhile and it comes back
 * if whoever took it never calls pc_certs_due_done; the others leave the queue.
 * -> {member1, {fields...}, ...} */
static const char take_lua[] =
    "local p, max, lim, later = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local mode, now = ARGV[5], tonumber(ARGV[6])\n"
    "local out = {}\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', max, 'LIMIT', 0, lim)) do\n"
    "  local rec = p .. 'c:' .. m\n"
    "  local st, na = unpack(redis.call('HMGET', rec, 'status', 'not_after'))\n"
    "  local keep = st ~= false\n"
    "  if mode == 'valid' then keep = st == 'valid' and (tonumber(na) or 0) > now end\n"
    "  if keep then\n"
    "    redis.call('ZADD', KEYS[1], max + later, m)\n"
    "    out[#out + 1] = m\n"
    "    out[#out + 1] = redis.call('HGETALL', rec)\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], m)\n"
    "  end\n"
    "end\n"
    "return out\n";

static pc_redis_script_t take_script = {.name = "certs_take", .source = take_lua};

/* ---- names ------------------------------------------------------------------------------- */

static pc_err_t segment(const char *id, char *out, size_t size, pc_diag_t *diag)
{
    if (id == NULL || id[0] == '\0') {
        out[0] = '\0';
        return PC_OK;
    }
    return pc_key_segment(id, out, size, diag);
}

static pc_err_t prefix_of(const char *tenant, char *out, size_t size, pc_diag_t *diag)
{
    char t[PC_KEY_SEGMENT_MAX(ID_MAX)];
    if (tenant == NULL || tenant[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the inventory needs a tenant");
    pc_err_t err = pc_key_segment(tenant, t, sizeof(t), diag);
    if (err != PC_OK)
        return err;
    int n = snprintf(out, size, "pc:cert:{%s}:", t);
    return n > 0 && (size_t)n < size ? PC_OK
                                     : pc_fail(diag, PC_ERR_INVALID_PARAM, "tenant too long");
}

/* member_of writes "CA:SERIAL" (segments) for ca and serial. */
static pc_err_t member_of(const char *ca, const char *serial, char *out, size_t size,
                          pc_diag_t *diag)
{
    char c[PC_KEY_SEGMENT_MAX(ID_MAX)], s[PC_KEY_SEGMENT_MAX(64)];
    pc_err_t err = pc_key_segment(ca != NULL ? ca : "", c, sizeof(c), diag);
    if (err == PC_OK)
        err = pc_key_segment(serial != NULL ? serial : "", s, sizeof(s), diag);
    if (err != PC_OK)
        return err;
    int n = snprintf(out, size, "%s:%s", c, s);
    return n > 0 && (size_t)n < size ? PC_OK : pc_fail(diag, PC_ERR_INVALID_PARAM, "name too long");
}

/* ---- changes ----------------------------------------------------------------------------- */

#define MEMBER_MAX (PC_KEY_SEGMENT_MAX(ID_MAX) + PC_KEY_SEGMENT_MAX(64) + 1)
#define PREFIX_MAX (sizeof("pc:cert:{}:") + PC_KEY_SEGMENT_MAX(ID_MAX))

static pc_err_t add_text(pc_args_t *args, const char *text)
{
    return pc_args_add(args, text != NULL ? text : "", text != NULL ? strlen(text) : 0);
}

static pc_err_t add_record(const char *tenant, const pc_cert_info_t *c, pc_args_t *args,
                           pc_diag_t *diag)
{
    char member[MEMBER_MAX], renews[MEMBER_MAX] = "", user[PC_KEY_SEGMENT_MAX(ID_MAX)],
                             dev[PC_KEY_SEGMENT_MAX(ID_MAX)], req[PC_KEY_SEGMENT_MAX(ID_MAX)];
    pc_err_t err = member_of(c->ca, c->serial, member, sizeof(member), diag);
    if (err == PC_OK && c->renews != NULL && c->renews[0] != '\0')
        err = member_of(c->ca, c->renews, renews, sizeof(renews), diag);
    if (err == PC_OK)
        err = segment(c->user_id, user, sizeof(user), diag);
    if (err == PC_OK)
        err = segment(c->device_id, dev, sizeof(dev), diag);
    if (err == PC_OK)
        err = segment(c->request_id, req, sizeof(req), diag);
    if (err != PC_OK)
        return err;
    const struct {
        const char *name, *value;
    } fields[] = {
        {"tenant", tenant},         {"ca", c->ca},
        {"serial", c->serial},      {"kind", c->kind},
        {"user", c->user_id},       {"device", c->device_id},
        {"profile", c->profile_id}, {"template", c->template_name},
        {"request", c->request_id}, {"subject", c->subject},
        {"sans", c->sans},          {"sha1", c->sha1},
        {"sha256", c->sha256},      {"renews", c->renews},
    };
    const size_t nfields = sizeof(fields) / sizeof(fields[0]);
    if (pc_args_add(args, "1", 1) != PC_OK || add_text(args, member) != PC_OK ||
        add_text(args, user) != PC_OK || add_text(args, dev) != PC_OK ||
        add_text(args, req) != PC_OK ||
        pc_args_addf(args, "%lld", (long long)c->not_after_ms) != PC_OK ||
        add_text(args, renews) != PC_OK || add_text(args, c->serial) != PC_OK ||
        pc_args_addf(args, "%lld", (long long)c->renew_at_ms) != PC_OK ||
        pc_args_addf(args, "%zu", nfields + 3) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory recording a certificate");
    for (size_t i = 0; i < nfields; i++)
        if (add_text(args, fields[i].name) != PC_OK || add_text(args, fields[i].value) != PC_OK)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory recording a certificate");
    if (add_text(args, "not_before") != PC_OK ||
        pc_args_addf(args, "%lld", (long long)c->not_before_ms) != PC_OK ||
        add_text(args, "not_after") != PC_OK ||
        pc_args_addf(args, "%lld", (long long)c->not_after_ms) != PC_OK ||
        add_text(args, "renew_at") != PC_OK ||
        pc_args_addf(args, "%lld", (long long)c->renew_at_ms) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory recording a certificate");
    return PC_OK;
}

pc_err_t pc_certs_change_args(const char *tenant, const pc_certs_change_t *change, pc_args_t *args,
                              pc_diag_t *diag)
{
    char prefix[PREFIX_MAX], member[MEMBER_MAX];
    pc_err_t err = prefix_of(tenant, prefix, sizeof(prefix), diag);
    if (err != PC_OK)
        return err;
    if (add_text(args, prefix) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    if (change != NULL && change->add != NULL)
        err = add_record(tenant, change->add, args, diag);
    else
        err = pc_args_add(args, "0", 1) == PC_OK ? PC_OK
                                                 : pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    if (err != PC_OK)
        return err;
    size_t nrev = change != NULL ? change->revoked_count : 0;
    if (pc_args_addf(args, "%zu", nrev) != PC_OK ||
        pc_args_addf(args, "%d", change != NULL ? change->reason : 0) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nrev; i++) {
        err = member_of(change->revoked[i].ca, change->revoked[i].serial, member, sizeof(member),
                        diag);
        if (err != PC_OK)
            return err;
        if (add_text(args, member) != PC_OK)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    return PC_OK;
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct find_op {
    pc_certs_found_fn cb;
    void *arg;
    char ca[128], profile[128];
    bool valid_only;
    int64_t now;
} find_op_t;

#define T(n, f)                                                                                    \
    {                                                                                              \
        n, offsetof(pc_cert_t, f), sizeof(((pc_cert_t *)0)->f)                                     \
    }
const pc_cert_text_field_t pc_cert_text_fields[] = {
    T("ca", ca),
    T("serial", serial),
    T("kind", kind),
    T("status", status),
    T("tenant", tenant),
    T("user", user_id),
    T("device", device_id),
    T("profile", profile_id),
    T("template", template_name),
    T("request", request_id),
    T("subject", subject),
    T("sans", sans),
    T("sha1", sha1),
    T("sha256", sha256),
    T("renews", renews),
    T("renewed_by", renewed_by),
};
#undef T
const size_t pc_cert_text_field_count =
    sizeof(pc_cert_text_fields) / sizeof(pc_cert_text_fields[0]);

static void copy_field(char *dst, size_t size, const redisReply *v)
{
    size_t n = v->len < size - 1 ? v->len : size - 1;
    memcpy(dst, v->str, n);
    dst[n] = '\0';
}

/* parse_record fills c from a HGETALL reply; false when it is not a record. */
static bool parse_record(const redisReply *h, pc_cert_t *c, int64_t now)
{
    memset(c, 0, sizeof(*c));
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return false;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        for (size_t t = 0; t < pc_cert_text_field_count; t++)
            if (strcmp(k->str, pc_cert_text_fields[t].name) == 0)
                copy_field((char *)c + pc_cert_text_fields[t].offset, pc_cert_text_fields[t].size,
                           v);
        if (strcmp(k->str, "not_before") == 0)
            c->not_before_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "not_after") == 0)
            c->not_after_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "renew_at") == 0)
            c->renew_at_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "issued_at") == 0)
            c->issued_at_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "revoked_at") == 0)
            c->revoked_at_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "reason") == 0)
            c->reason = (int)strtol(v->str, NULL, 10);
    }
    if (strcmp(c->status, "valid") == 0 && c->not_after_ms != 0 && c->not_after_ms < now)
        snprintf(c->status, sizeof(c->status), "expired");
    return c->serial[0] != '\0';
}

static void found(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    find_op_t *op = arg;
    pc_diag_t mine;
    pc_cert_t *certs = NULL;
    size_t count = 0;
    bool more = false;
    if (err == PC_OK && reply->type == REDIS_REPLY_ERROR)
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "reading the inventory: Redis refused: %s",
                      reply->str);
    else if (err == PC_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0))
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "reading the inventory: unexpected reply");
    else if (err != PC_OK)
        mine = *diag;
    if (err == PC_OK) {
        more = reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1;
        size_t n = (reply->elements - 1) / 2;
        certs = n > 0 ? calloc(n, sizeof(*certs)) : NULL;
        if (n > 0 && certs == NULL)
            err = pc_fail(&mine, PC_ERR_NOMEM, "out of memory reading the inventory");
        for (size_t i = 0; err == PC_OK && i < n; i++) {
            pc_cert_t *c = &certs[count];
            if (!parse_record(reply->element[2 + 2 * i], c, op->now))
                continue; /* an index entry whose record is gone: nothing to show */
            if ((op->ca[0] != '\0' && strcmp(c->ca, op->ca) != 0) ||
                (op->profile[0] != '\0' && strcmp(c->profile_id, op->profile) != 0) ||
                (op->valid_only && strcmp(c->status, "valid") != 0))
                continue;
            count++;
        }
    }
    op->cb(op->arg, err, certs, count, more, err == PC_OK ? NULL : &mine);
    free(certs);
    free(op);
}

static void copy_filter(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

pc_err_t pc_certs_find(pc_redis_t *redis, const pc_certs_query_t *q, pc_certs_found_fn cb,
                       void *arg)
{
    char prefix[PREFIX_MAX], key[PREFIX_MAX + MEMBER_MAX + 8], seg[PC_KEY_SEGMENT_MAX(ID_MAX)];
    char member[MEMBER_MAX] = "";
    const char *mode = "z";
    pc_diag_t diag;
    if (prefix_of(q->tenant, prefix, sizeof(prefix), &diag) != PC_OK)
        return PC_ERR_INVALID_PARAM;
    bool keyed = q->by == PC_CERTS_DEVICE || q->by == PC_CERTS_USER || q->by == PC_CERTS_REQUEST;
    if (keyed && (q->key == NULL || q->key[0] == '\0' ||
                  pc_key_segment(q->key, seg, sizeof(seg), &diag) != PC_OK))
        return PC_ERR_INVALID_PARAM;
    switch (q->by) {
    case PC_CERTS_ALL:
        snprintf(key, sizeof(key), "%sall", prefix);
        break;
    case PC_CERTS_DEVICE:
        snprintf(key, sizeof(key), "%sdev:%s", prefix, seg);
        break;
    case PC_CERTS_USER:
        snprintf(key, sizeof(key), "%suser:%s", prefix, seg);
        break;
    case PC_CERTS_REQUEST:
        snprintf(key, sizeof(key), "%sreq:%s", prefix, seg);
        break;
    case PC_CERTS_SERIAL:
        if (q->ca == NULL || q->key == NULL ||
            member_of(q->ca, q->key, member, sizeof(member), &diag) != PC_OK)
            return PC_ERR_INVALID_PARAM;
        snprintf(key, sizeof(key), "%sc:%s", prefix, member);
        mode = "r";
        break;
    case PC_CERTS_EXPIRING:
        snprintf(key, sizeof(key), "%sexp", prefix);
        mode = "e";
        break;
    default:
        return PC_ERR_INVALID_PARAM;
    }
    find_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PC_ERR_NOMEM;
    op->cb = cb;
    op->arg = arg;
    copy_filter(op->ca, sizeof(op->ca), q->by == PC_CERTS_SERIAL ? NULL : q->ca);
    copy_filter(op->profile, sizeof(op->profile), q->profile_id);
    op->valid_only = q->valid_only;
    op->now = pc_now_ms();
    unsigned limit = q->limit == 0 ? LIMIT_DEFAULT : q->limit > LIMIT_MAX ? LIMIT_MAX : q->limit;
    char off[16], lim[16], max[24], min[24] = "-inf";
    snprintf(off, sizeof(off), "%u", q->offset);
    snprintf(lim, sizeof(lim), "%u", limit);
    snprintf(max, sizeof(max), "%lld", (long long)q->expiring_before_ms);
    if (q->expiring_after_ms != 0)
        snprintf(min, sizeof(min), "%lld", (long long)q->expiring_after_ms);
    const char *argv[] = {key, mode, off, lim, prefix, max, member, min};
    size_t argvlen[8];
    for (int i = 0; i < 8; i++)
        argvlen[i] = strlen(argv[i]);
    if (find_script.sha1[0] == '\0')
        pc_redis_script_init(&find_script);
    pc_err_t err = pc_redis_eval(redis, &find_script, 1, 8, argv, argvlen, found, op);
    if (err != PC_OK)
        free(op);
    return err;
}

/* ---- queues: what is due --------------------------------------------------------------- */

static const struct {
    const char *key, *mode;
} queues[] = {
    [PC_CERTS_DUE_RENEWAL] = {"due:renew", "valid"},
    [PC_CERTS_DUE_EXPIRY] = {"due:exp", "valid"},
    [PC_CERTS_DUE_REVOCATION] = {"pending", "any"},
};

static pc_err_t queue_key(const char *tenant, pc_certs_queue_t queue, char *prefix, char *key,
                          size_t size)
{
    pc_diag_t diag;
    if ((unsigned)queue >= sizeof(queues) / sizeof(queues[0]) ||
        prefix_of(tenant, prefix, PREFIX_MAX, &diag) != PC_OK)
        return PC_ERR_INVALID_PARAM;
    snprintf(key, size, "%s%s", prefix, queues[queue].key);
    return PC_OK;
}

typedef struct take_op {
    pc_certs_found_fn cb;
    void *arg;
    int64_t now;
} take_op_t;

static void taken(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    take_op_t *op = arg;
    pc_diag_t mine;
    pc_cert_t *certs = NULL;
    size_t count = 0;
    if (err == PC_OK && reply->type == REDIS_REPLY_ERROR)
        err =
            pc_fail(&mine, PC_ERR_DEPENDENCY, "reading what is due: Redis refused: %s", reply->str);
    else if (err == PC_OK && reply->type != REDIS_REPLY_ARRAY)
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "reading what is due: unexpected reply");
    else if (err != PC_OK)
        mine = *diag;
    size_t n = err == PC_OK ? reply->elements / 2 : 0;
    if (n > 0 && (certs = calloc(n, sizeof(*certs))) == NULL)
        err = pc_fail(&mine, PC_ERR_NOMEM, "out of memory reading what is due");
    for (size_t i = 0; err == PC_OK && i < n; i++)
        if (parse_record(reply->element[2 * i + 1], &certs[count], op->now))
            count++;
    op->cb(op->arg, err, certs, count, false, err == PC_OK ? NULL : &mine);
    free(certs);
    free(op);
}

pc_err_t pc_certs_take_due(pc_redis_t *redis, const char *tenant, pc_certs_queue_t queue,
                           int64_t due_by_ms, unsigned limit, unsigned later_ms,
                           pc_certs_found_fn cb, void *arg)
{
    char prefix[PREFIX_MAX], key[PREFIX_MAX + 16];
    if (queue_key(tenant, queue, prefix, key, sizeof(key)) != PC_OK || limit == 0 || later_ms == 0)
        return PC_ERR_INVALID_PARAM;
    take_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PC_ERR_NOMEM;
    op->cb = cb;
    op->arg = arg;
    op->now = pc_now_ms();
    char max[24], lim[16], later[16], now[24];
    snprintf(max, sizeof(max), "%lld", (long long)due_by_ms);
    snprintf(lim, sizeof(lim), "%u", limit > LIMIT_MAX ? LIMIT_MAX : limit);
    snprintf(later, sizeof(later), "%u", later_ms);
    snprintf(now, sizeof(now), "%lld", (long long)op->now);
    const char *argv[] = {key, prefix, max, lim, later, queues[queue].mode, now};
    size_t argvlen[7];
    for (int i = 0; i < 7; i++)
        argvlen[i] = strlen(argv[i]);
    if (take_script.sha1[0] == '\0')
        pc_redis_script_init(&take_script);
    pc_err_t err = pc_redis_eval(redis, &take_script, 1, 7, argv, argvlen, taken, op);
    if (err != PC_OK)
        free(op);
    return err;
}

pc_err_t pc_certs_due_done(pc_redis_t *redis, const char *tenant, pc_certs_queue_t queue,
                           const pc_cert_ref_t *ref, pc_redis_reply_fn cb, void *arg)
{
    char prefix[PREFIX_MAX], key[PREFIX_MAX + 16], member[MEMBER_MAX];
    pc_diag_t diag;
    if (queue_key(tenant, queue, prefix, key, sizeof(key)) != PC_OK ||
        member_of(ref->ca, ref->serial, member, sizeof(member), &diag) != PC_OK)
        return PC_ERR_INVALID_PARAM;
    const char *argv[] = {"ZREM", key, member};
    size_t argvlen[] = {4, strlen(key), strlen(member)};
    return pc_redis_command(redis, cb, arg, 3, argv, argvlen);
}

/* ---- tenants ----------------------------------------------------------------------------- */

#define TENANTS_KEY "pc:cert:tenants"

pc_err_t pc_certs_tenant_args(const char *tenant, pc_args_t *args, pc_diag_t *diag)
{
    if (tenant == NULL || tenant[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the inventory needs a tenant");
    if (add_text(args, "SADD") != PC_OK || add_text(args, TENANTS_KEY) != PC_OK ||
        add_text(args, tenant) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    return PC_OK;
}

typedef struct tenants_op {
    pc_certs_tenants_fn cb;
    void *arg;
} tenants_op_t;

static void tenants_read(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    tenants_op_t *op = arg;
    pc_diag_t mine;
    const char **names = NULL;
    size_t count = 0;
    unsigned long long next = 0;
    if (err == PC_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                         reply->element[0]->type != REDIS_REPLY_STRING ||
                         reply->element[1]->type != REDIS_REPLY_ARRAY))
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "reading the tenants: unexpected reply from Redis");
    else if (err != PC_OK)
        mine = *diag;
    if (err == PC_OK) {
        next = strtoull(reply->element[0]->str, NULL, 10);
        const redisReply *list = reply->element[1];
        if (list->elements > 0 && (names = calloc(list->elements, sizeof(*names))) == NULL)
            err = pc_fail(&mine, PC_ERR_NOMEM, "out of memory reading the tenants");
        for (size_t i = 0; err == PC_OK && i < list->elements; i++)
            if (list->element[i]->type == REDIS_REPLY_STRING)
                names[count++] = list->element[i]->str;
    }
    op->cb(op->arg, err, names, count, next, err == PC_OK ? NULL : &mine);
    free(names);
    free(op);
}

pc_err_t pc_certs_tenants(pc_redis_t *redis, unsigned long long cursor, pc_certs_tenants_fn cb,
                          void *arg)
{
    tenants_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PC_ERR_NOMEM;
    op->cb = cb;
    op->arg = arg;
    char cur[24];
    snprintf(cur, sizeof(cur), "%llu", cursor);
    const char *argv[] = {"SSCAN", TENANTS_KEY, cur, "COUNT", "100"};
    size_t argvlen[5];
    for (int i = 0; i < 5; i++)
        argvlen[i] = strlen(argv[i]);
    pc_err_t err = pc_redis_command(redis, tenants_read, op, 5, argv, argvlen);
    if (err != PC_OK)
        free(op);
    return err;
}
