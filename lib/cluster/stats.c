/*
 * stats.c - the cluster's statistics in Redis (see stats.h for the keys): a worker's counts,
 * added up in memory and written together (one small script per hash, sent at once), the
 * coordinator's read
 * of the total and the last hour's minutes (HGETALLs sent at once), and percentiles from the
 * histograms. Loop thread, but pc_stats_quantile (any thread).
 *
 * Why per-minute hashes rather than a stream of samples: a minute's counts are a handful of
 * HINCRBYs whatever the traffic, any number of workers add to them without coordination, and
 * the coordinator's read is a bounded 61 hashes. Why two keys and no script across them: in a
 * Redis Cluster they live on different slots, and a count needs no atomicity with another.
 */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL_KEY "pc:stats:total"
#define MINUTE_FMT "pc:stats:min:%lld"

const char *const pc_stats_names[PC_STATS__COUNT] = {
    [PC_STATS_ISSUED] = "issued",   [PC_STATS_FAILED] = "failed",
    [PC_STATS_REVOKED] = "revoked", [PC_STATS_IMPORTED] = "imported",
    [PC_STATS_RENEWED] = "renewed", [PC_STATS_CONFLICTS] = "conflicts",
    [PC_STATS_DLQ] = "dlq",
};

const int64_t pc_stats_bounds_ms[PC_STATS_BUCKETS - 1] = {10,  25,   50,   100,  250,
                                                          500, 1000, 2500, 5000, 10000};

/* add: KEYS[1] a hash; ARGV ttl in s (0: keep), then field, amount pairs to add. */
static const char add_lua[] =
    "for i = 2, #ARGV - 1, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
    "return 1\n";

static pc_redis_script_t add_script = {.name = "stats_add", .source = add_lua};

/* bucket_name writes the histogram field of bucket i. */
static void bucket_name(size_t i, char *out, size_t size)
{
    if (i < PC_STATS_BUCKETS - 1)
        snprintf(out, size, "lat_le_%lld", (long long)pc_stats_bounds_ms[i]);
    else
        snprintf(out, size, "lat_le_inf");
}

static size_t bucket_of(int64_t ms)
{
    size_t i = 0;
    while (i < PC_STATS_BUCKETS - 1 && ms > pc_stats_bounds_ms[i])
        i++;
    return i;
}

/* ---- writing ----------------------------------------------------------------------------- */

typedef struct record_op {
    pc_stats_done_fn cb;
    void *arg;
    int pending;
    pc_err_t err;
    pc_diag_t diag;
} record_op_t;

static void record_step(record_op_t *op)
{
    if (--op->pending > 0)
        return;
    if (op->cb != NULL)
        op->cb(op->arg, op->err, op->err == PC_OK ? NULL : &op->diag);
    free(op);
}

static void on_added(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    record_op_t *op = arg;
    if (op->err == PC_OK && err != PC_OK) {
        op->err = err;
        pc_fail(&op->diag, err, "recording statistics: %s", diag != NULL ? diag->msg : "");
    } else if (op->err == PC_OK && reply->type == REDIS_REPLY_ERROR) {
        op->err = pc_fail(&op->diag, PC_ERR_DEPENDENCY, "recording statistics: Redis refused: %s",
                          reply->str);
    }
    record_step(op);
}

/* send_add runs add_lua on key with ttl (text) and the non-zero counts of the minute m, or of
 * the total when m is NULL. */
static pc_err_t send_add(pc_redis_t *redis, const char *key, const char *ttl,
                         const uint64_t counts[PC_STATS__COUNT], const pc_stats_minute_t *m,
                         record_op_t *op)
{
    pc_args_t args = {0};
    char bucket[24];
    pc_err_t err = pc_args_addf(&args, "%s", key);
    if (err == PC_OK)
        err = pc_args_addf(&args, "%s", ttl);
    for (size_t i = 0; err == PC_OK && i < PC_STATS__COUNT; i++)
        if (counts[i] > 0 && (err = pc_args_addf(&args, "%s", pc_stats_names[i])) == PC_OK)
            err = pc_args_addf(&args, "%llu", (unsigned long long)counts[i]);
    for (size_t i = 0; m != NULL && err == PC_OK && i < PC_STATS_BUCKETS; i++) {
        if (m->lat[i] == 0)
            continue;
        bucket_name(i, bucket, sizeof(bucket));
        if ((err = pc_args_addf(&args, "%s", bucket)) == PC_OK)
            err = pc_args_addf(&args, "%llu", (unsigned long long)m->lat[i]);
    }
    if (m != NULL && m->lat_sum_ms > 0 && err == PC_OK &&
        (err = pc_args_addf(&args, "lat_sum_ms")) == PC_OK)
        err = pc_args_addf(&args, "%llu", (unsigned long long)m->lat_sum_ms);
    if (err == PC_OK) {
        if (add_script.sha1[0] == '\0')
            pc_redis_script_init(&add_script);
        err = pc_redis_eval(redis, &add_script, 1, (int)args.n, args.v, args.len, on_added, op);
    }
    pc_args_free(&args);
    return err;
}

pc_err_t pc_stats_add(pc_stats_pending_t *p, const pc_stats_event_t *ev)
{
    if (ev->outcome < 0 || ev->outcome >= PC_STATS__COUNT || ev->outcome == PC_STATS_RENEWED ||
        ev->outcome == PC_STATS_CONFLICTS)
        return PC_ERR_INVALID_PARAM;
    int64_t minute = ev->at_ms / 60000;
    pc_stats_minute_t *m = NULL;
    for (size_t i = 0; i < p->count && m == NULL; i++)
        if (p->minutes[i].minute == minute)
            m = &p->minutes[i];
    if (m == NULL) {
        if (p->count == PC_STATS_PENDING_MINUTES)
            return PC_ERR_TOO_LARGE;
        m = &p->minutes[p->count++];
        *m = (pc_stats_minute_t){.minute = minute};
    }
    const pc_stats_count_t counted[] = {ev->outcome, PC_STATS_RENEWED, PC_STATS_CONFLICTS};
    const bool yes[] = {true, ev->renewed, ev->conflict};
    for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
        if (!yes[i])
            continue;
        p->total[counted[i]]++;
        m->counts[counted[i]]++;
    }
    if (ev->latency_ms >= 0) {
        m->lat[bucket_of(ev->latency_ms)]++;
        m->lat_sum_ms += (uint64_t)ev->latency_ms;
    }
    return PC_OK;
}

pc_err_t pc_stats_flush(pc_redis_t *redis, pc_stats_pending_t *p, pc_stats_done_fn cb, void *arg)
{
    if (p->count == 0)
        return PC_ERR_NOT_FOUND;
    pc_stats_pending_t held = *p;
    memset(p, 0, sizeof(*p));
    record_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PC_ERR_NOMEM;
    *op = (record_op_t){.cb = cb, .arg = arg, .pending = (int)held.count + 2};
    char key[64], ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", PC_STATS_KEEP_S);
    pc_err_t err = PC_OK;
    size_t sent = 0;
    for (size_t i = 0; i < held.count && err == PC_OK; i++, sent++) {
        snprintf(key, sizeof(key), MINUTE_FMT, (long long)held.minutes[i].minute);
        err = send_add(redis, key, ttl, held.minutes[i].counts, &held.minutes[i], op);
    }
    if (err == PC_OK && (err = send_add(redis, TOTAL_KEY, "0", held.total, NULL, op)) == PC_OK)
        sent++;
    if (sent == 0) {
        free(op);
        return err;
    }
    if (err != PC_OK) /* what was sent is on its way: its answers end op */
        op->err = pc_fail(&op->diag, err, "recording statistics: not every count was sent");
    /* the pending count was one more than the commands, so that no answer ends op before
     * every command is sent: settle the difference now */
    op->pending -= (int)(held.count + 1 - sent);
    record_step(op);
    return PC_OK;
}

pc_err_t pc_stats_record(pc_redis_t *redis, const pc_stats_event_t *ev, pc_stats_done_fn cb,
                         void *arg)
{
    pc_stats_pending_t p = {0};
    pc_err_t err = pc_stats_add(&p, ev);
    return err == PC_OK ? pc_stats_flush(redis, &p, cb, arg) : err;
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct read_op read_op_t;

/* One HGETALL: -1 for the total, else the index into view.minutes. */
typedef struct read_part {
    read_op_t *op;
    int index;
} read_part_t;

struct read_op {
    pc_stats_read_fn cb;
    void *arg;
    int pending;
    pc_err_t err;
    pc_diag_t diag;
    pc_stats_view_t view;
    read_part_t parts[PC_STATS_WINDOW + 1];
};

static uint64_t as_count(const redisReply *v)
{
    long long n = v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
    return n > 0 ? (uint64_t)n : 0;
}

/* parse_hash adds the fields of a HGETALL reply to counts and, for a minute, to m. */
static void parse_hash(const redisReply *h, uint64_t counts[PC_STATS__COUNT], pc_stats_minute_t *m)
{
    char name[24];
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        for (size_t c = 0; c < PC_STATS__COUNT; c++)
            if (strcmp(k->str, pc_stats_names[c]) == 0)
                counts[c] = as_count(v);
        if (m == NULL)
            continue;
        if (strcmp(k->str, "lat_sum_ms") == 0)
            m->lat_sum_ms = as_count(v);
        for (size_t b = 0; strncmp(k->str, "lat_le_", 7) == 0 && b < PC_STATS_BUCKETS; b++) {
            bucket_name(b, name, sizeof(name));
            if (strcmp(k->str, name) == 0)
                m->lat[b] = as_count(v);
        }
    }
}

static void read_step(read_op_t *op)
{
    if (--op->pending > 0)
        return;
    op->cb(op->arg, op->err, op->err == PC_OK ? &op->view : NULL,
           op->err == PC_OK ? NULL : &op->diag);
    free(op);
}

static void on_hash(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    read_part_t *part = arg;
    read_op_t *op = part->op;
    if (op->err != PC_OK) {
        /* the first failure is reported; the rest are usually its echo */
    } else if (err != PC_OK) {
        op->err = pc_fail(&op->diag, err, "reading the statistics from Redis: %s",
                          diag != NULL ? diag->msg : "");
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        op->err =
            pc_fail(&op->diag, PC_ERR_DEPENDENCY, "reading the statistics from Redis: %s",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "a pc:stats key is not a hash");
    } else if (part->index < 0) {
        parse_hash(reply, op->view.total, NULL);
    } else {
        pc_stats_minute_t *m = &op->view.minutes[part->index];
        parse_hash(reply, m->counts, m);
    }
    read_step(op);
}

pc_err_t pc_stats_read(pc_redis_t *redis, int64_t now_ms, unsigned minutes, pc_stats_read_fn cb,
                       void *arg)
{
    if (minutes == 0 || minutes > PC_STATS_WINDOW)
        return PC_ERR_INVALID_PARAM;
    read_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return PC_ERR_NOMEM;
    op->cb = cb;
    op->arg = arg;
    op->view.count = minutes;
    op->pending = 1; /* held until every command is out */
    int64_t now_min = now_ms / 60000;
    for (int i = -1; i < (int)minutes; i++) {
        char key[64];
        read_part_t *part = &op->parts[i + 1];
        part->op = op;
        part->index = i;
        if (i < 0) {
            snprintf(key, sizeof(key), "%s", TOTAL_KEY);
        } else {
            op->view.minutes[i].minute = now_min - (int64_t)minutes + 1 + i;
            snprintf(key, sizeof(key), MINUTE_FMT, (long long)op->view.minutes[i].minute);
        }
        const char *argv[] = {"HGETALL", key};
        size_t lens[] = {7, strlen(key)};
        pc_err_t err = pc_redis_command(redis, on_hash, part, 2, argv, lens);
        if (err != PC_OK) {
            if (i < 0) { /* nothing sent yet */
                free(op);
                return err;
            }
            if (op->err == PC_OK)
                op->err = pc_fail(&op->diag, err, "reading the statistics: Redis closed");
            break;
        }
        op->pending++;
    }
    read_step(op); /* cb comes from a reply, never from here: one is pending at least */
    return PC_OK;
}

double pc_stats_quantile(const uint64_t lat[PC_STATS_BUCKETS], double q)
{
    uint64_t n = 0, before = 0;
    for (size_t i = 0; i < PC_STATS_BUCKETS; i++)
        n += lat[i];
    if (n == 0)
        return -1;
    double rank = q * (double)n;
    for (size_t i = 0; i < PC_STATS_BUCKETS; i++) {
        if (lat[i] == 0 || (double)(before + lat[i]) < rank) {
            before += lat[i];
            continue;
        }
        double lower = i == 0 ? 0.0 : (double)pc_stats_bounds_ms[i - 1];
        if (i == PC_STATS_BUCKETS - 1)
            return lower;
        double upper = (double)pc_stats_bounds_ms[i];
        return lower + (upper - lower) * ((rank - (double)before) / (double)lat[i]);
    }
    return (double)pc_stats_bounds_ms[PC_STATS_BUCKETS - 2];
}
