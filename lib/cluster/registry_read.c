/*
 * registry_read.c - the reading half of the registry (registry.c writes it): what the workers
 * keep in Redis, for the coordinator's fleet view:
 * the sorted set pc:workers (id -> heartbeat expiry, Redis server ms), the hashes
 * pc:worker:{id}, also of workers that have dropped out of the set (so a worker that died
 * recently still shows, as Inactive, while its hash lives), and Redis' clock to compare the
 * expiries with. Read-only; loop thread.
 *
 * First TIME, ZRANGE and a SCAN over pc:worker:* go out together; once they are all answered,
 * one HGETALL per worker id. Every reply is checked for its shape: a registry written by a
 * different version fails the read with a message rather than showing nonsense.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "registry_int.h"

#define SCAN_COUNT "500"
#define SCAN_MAX 1000 /* SCAN calls per read: 500k keys is far beyond any real registry */

typedef struct fetch {
    pc_redis_t *redis;
    pc_registry_read_fn fn;
    void *arg;
    pc_registry_view_t reg;
    int pending;
    unsigned scans;
    bool hashes_sent;
} fetch_t;

/* One HGETALL: the fetch and the worker id it is for. */
typedef struct hget {
    fetch_t *fetch;
    char id[];
} hget_t;

static void step_done(fetch_t *f);

static void fetch_fail(fetch_t *f, const char *what, const pc_diag_t *diag)
{
    if (!f->reg.ok)
        return; /* keep the first failure: later ones are usually its echo */
    f->reg.ok = false;
    pc_fail(&f->reg.diag, PC_ERR_DEPENDENCY, "cannot read the worker registry from Redis (%s): %s",
            what,
            diag != NULL ? diag->msg : "unexpected reply (is this a PKCS Connector registry?)");
}

static bool reply_ok(fetch_t *f, const char *what, pc_err_t err, const redisReply *reply,
                     const pc_diag_t *diag, int type)
{
    pc_diag_t mine;
    if (err != PC_OK) {
        fetch_fail(f, what, diag);
        return false;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        pc_fail(&mine, PC_ERR_DEPENDENCY, "refused: %s", reply->str);
        fetch_fail(f, what, &mine);
        return false;
    }
    if (reply->type != type) {
        fetch_fail(f, what, NULL);
        return false;
    }
    return true;
}

static void send_cmd(fetch_t *f, pc_redis_reply_fn cb, void *arg, int argc, const char **argv)
{
    size_t lens[8];
    pc_diag_t diag;
    for (int i = 0; i < argc && i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (pc_redis_command(f->redis, cb, arg, argc, argv, lens) == PC_OK) {
        f->pending++;
        return;
    }
    pc_fail(&diag, PC_ERR_DEPENDENCY, "the connection is closed");
    fetch_fail(f, argv[0], &diag);
    if (arg != f)
        free(arg);
}

/* worker returns the entry for id, made on first use. */
static json_t *worker(fetch_t *f, const char *id)
{
    json_t *w = json_object_get(f->reg.workers, id);
    if (w == NULL) {
        w = json_object();
        json_object_set_new(f->reg.workers, id, w);
    }
    return w;
}

static void on_time(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    fetch_t *f = arg;
    if (reply_ok(f, "TIME", err, reply, diag, REDIS_REPLY_ARRAY) && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING)
        f->reg.now_ms = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
                        strtoll(reply->element[1]->str, NULL, 10) / 1000;
    step_done(f);
}

static void on_zrange(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    fetch_t *f = arg;
    if (reply_ok(f, "ZRANGE " REGISTRY_WORKERS_KEY, err, reply, diag, REDIS_REPLY_ARRAY)) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *id = reply->element[i], *score = reply->element[i + 1];
            if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
                continue;
            json_object_set_new(worker(f, id->str), "score",
                                json_integer((json_int_t)strtod(score->str, NULL)));
        }
    }
    step_done(f);
}

static void send_scan(fetch_t *f, const char *cursor);

static void on_scan(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    fetch_t *f = arg;
    if (reply_ok(f, "SCAN " REGISTRY_WORKER_PREFIX "*", err, reply, diag, REDIS_REPLY_ARRAY) &&
        reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *keys = reply->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            size_t len = keys->element[i]->len, pre = strlen(REGISTRY_WORKER_KEY_OPEN);
            if (keys->element[i]->type != REDIS_REPLY_STRING || len <= pre + 1 ||
                strncmp(key, REGISTRY_WORKER_KEY_OPEN, pre) != 0 || key[len - 1] != '}')
                continue;
            char id[256];
            size_t n = len - pre - 1 < sizeof(id) - 1 ? len - pre - 1 : sizeof(id) - 1;
            memcpy(id, key + pre, n);
            id[n] = '\0';
            worker(f, id);
        }
        if (strcmp(reply->element[0]->str, "0") != 0 && ++f->scans < SCAN_MAX)
            send_scan(f, reply->element[0]->str);
    }
    step_done(f);
}

static void send_scan(fetch_t *f, const char *cursor)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", REGISTRY_WORKER_PREFIX "*", "COUNT", SCAN_COUNT};
    send_cmd(f, on_scan, f, 6, argv);
}

static void on_hgetall(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    hget_t *h = arg;
    fetch_t *f = h->fetch;
    if (reply_ok(f, "HGETALL", err, reply, diag, REDIS_REPLY_ARRAY)) {
        json_t *w = worker(f, h->id);
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                strcmp(k->str, "score") != 0)
                json_object_set_new(w, k->str, json_stringn(v->str, v->len));
        }
    }
    free(h);
    step_done(f);
}

static void send_hashes(fetch_t *f)
{
    const char *id;
    json_t *w;
    f->hashes_sent = true;
    json_object_foreach(f->reg.workers, id, w)
    {
        size_t len = strlen(id);
        hget_t *h = malloc(sizeof(*h) + len + 1);
        char key[300];
        if (h == NULL) {
            pc_diag_t diag;
            pc_fail(&diag, PC_ERR_NOMEM, "out of memory");
            fetch_fail(f, "HGETALL", &diag);
            return;
        }
        h->fetch = f;
        memcpy(h->id, id, len + 1);
        snprintf(key, sizeof(key), REGISTRY_WORKER_KEY_OPEN "%s}", id);
        const char *argv[] = {"HGETALL", key};
        send_cmd(f, on_hgetall, h, 2, argv);
    }
}

/* drop_vanished forgets ids whose hash expired between SCAN and HGETALL and that are not in
 * the sorted set either: nothing is known about them any more. */
static void drop_vanished(fetch_t *f)
{
    const char *id;
    json_t *w;
    void *tmp;
    json_object_foreach_safe(f->reg.workers, tmp, id, w)
    {
        if (json_object_size(w) == 0)
            json_object_del(f->reg.workers, id);
    }
}

static void step_done(fetch_t *f)
{
    if (--f->pending > 0)
        return;
    if (f->reg.ok && !f->hashes_sent) {
        f->pending++; /* hold the fetch open while the hashes go out */
        send_hashes(f);
        if (--f->pending > 0)
            return;
    }
    if (f->reg.ok && f->reg.now_ms == 0)
        fetch_fail(f, "TIME", NULL);
    drop_vanished(f);
    f->fn(f->arg, &f->reg);
    free(f);
}

void pc_registry_read(pc_redis_t *redis, pc_registry_read_fn fn, void *arg)
{
    fetch_t *f = calloc(1, sizeof(*f));
    pc_registry_view_t failed = {.ok = false};
    if (f == NULL || (f->reg.workers = json_object()) == NULL) {
        free(f);
        pc_fail(&failed.diag, PC_ERR_NOMEM, "out of memory reading the registry");
        fn(arg, &failed);
        return;
    }
    f->redis = redis;
    f->fn = fn;
    f->arg = arg;
    f->reg.ok = true;
    f->pending = 1; /* until every first command is out */
    const char *time_argv[] = {"TIME"};
    const char *zrange_argv[] = {"ZRANGE", REGISTRY_WORKERS_KEY, "0", "-1", "WITHSCORES"};
    send_cmd(f, on_time, f, 1, time_argv);
    send_cmd(f, on_zrange, f, 5, zrange_argv);
    send_scan(f, "0");
    step_done(f);
}

void pc_registry_view_clear(pc_registry_view_t *reg)
{
    json_decref(reg->workers);
    reg->workers = NULL;
}
