/*
 * worker.c - the life of a worker process on its libuv loop: build the components, connect
 * Redis and register (refusing to run past the cluster's instance limit), then consume from
 * Kafka with bounded in-flight work, heart-beat, fill the key pool with spare pool threads, and
 * on SIGTERM/SIGINT drain: stop intake, finish in-flight work within the bound, flush, commit,
 * unregister, close every handle. Loop thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "clock.h"
#include "worker.h"

static void worker_close_components(pc_worker_t *w);

/* ---- small helpers ----------------------------------------------------------------------- */

unsigned pc_worker_retrying(const pc_worker_t *w, int64_t *since_ms)
{
    int64_t oldest = 0;
    for (const pc_job_t *job = w->jobs; job != NULL; job = pc_job_next(job)) {
        int64_t since = pc_job_retrying_since(job);
        if (since != 0 && (oldest == 0 || since < oldest))
            oldest = since;
    }
    if (since_ms != NULL)
        *since_ms = oldest;
    return w->retrying;
}

void pc_worker_note_error(pc_worker_t *w, const char *text)
{
    size_t n = strnlen(text, sizeof(w->last_error) - 1);
    memcpy(w->last_error, text, n);
    w->last_error[n] = '\0';
}

static void update_intake(pc_worker_t *w)
{
    if (w->kafka == NULL || w->state != PC_WORKER_RUNNING)
        return;
    if (w->in_flight >= w->cfg->worker.max_in_flight)
        pc_kafka_hold(w->kafka);
    else if (w->in_flight < w->cfg->worker.resume_below)
        pc_kafka_release(w->kafka);
}

static void drain_check(pc_worker_t *w);

/* How long the worker waits, after the last request in flight ended, before it makes keys
 * ahead: a request that follows at once is not queued behind a key generation. */
#define FILL_DELAY_MS 50

static void fill_soon(pc_worker_t *w, uint64_t delay_ms);

void pc_worker_job_finished(pc_worker_t *w)
{
    pc_gauge_set(w->m.in_flight, (double)w->in_flight);
    update_intake(w);
    if (w->in_flight == 0)
        fill_soon(w, FILL_DELAY_MS); /* the job may have taken a pooled key */
    if (w->state == PC_WORKER_DRAINING)
        drain_check(w);
}

/* ---- Kafka callbacks --------------------------------------------------------------------- */

static void on_message(void *arg, rd_kafka_message_t *rkm)
{
    pc_worker_t *w = arg;
    if (w->state != PC_WORKER_RUNNING) {
        pc_kafka_message_release(w->kafka, rkm); /* not done: the next owner gets it */
        return;
    }
    pc_job_start(w, rkm);
    pc_gauge_set(w->m.in_flight, (double)w->in_flight);
    update_intake(w);
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < parts->cnt && used < sizeof(list) - 16; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d", i ? "," : "",
                                 (int)parts->elems[i].partition);
    pc_log(PC_LOG_INFO, "rebalanced", what, "partitions", list, NULL);
}

/* The worker's own record of its assignment, reported with every heartbeat: the coordinator
 * shows group membership from it (the Admin API's DescribeConsumerGroups crashed librdkafka
 * 2.0.2 intermittently). */
static void track_partitions(pc_worker_t *w, const rd_kafka_topic_partition_list_t *parts, bool add)
{
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        size_t k = 0;
        while (k < w->partition_count && w->partitions[k] != p)
            k++;
        if (!add && k < w->partition_count)
            w->partitions[k] = w->partitions[--w->partition_count];
        if (!add || k < w->partition_count)
            continue;
        if (w->partition_count == w->partition_cap) {
            size_t cap = w->partition_cap == 0 ? 64 : w->partition_cap * 2;
            int32_t *grown = realloc(w->partitions, cap * sizeof(*grown));
            if (grown == NULL)
                return;
            w->partitions = grown;
            w->partition_cap = cap;
        }
        w->partitions[w->partition_count++] = p;
    }
}

static void on_revoked(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    pc_worker_t *w = arg;
    track_partitions(w, parts, false);
    log_partitions("partitions revoked", parts);
    pc_job_revoke_partitions(w, parts);
    pc_gauge_set(w->m.assigned, (double)w->partition_count);
}

static void on_assigned(void *arg, const rd_kafka_topic_partition_list_t *parts)
{
    pc_worker_t *w = arg;
    w->in_group = true;
    track_partitions(w, parts, true);
    log_partitions("partitions assigned", parts);
    pc_gauge_set(w->m.assigned, (double)w->partition_count);
}

static void on_kafka_state(void *arg, bool up)
{
    pc_worker_t *w = arg;
    pc_log(up ? PC_LOG_INFO : PC_LOG_WARN, up ? "kafka_up" : "kafka_down",
           up ? "Kafka brokers reachable" : "Kafka brokers unreachable; work waits", NULL);
    if (!up)
        pc_worker_note_error(w, "Kafka brokers unreachable");
}

/* Refused credentials or an untrusted broker do not heal by waiting: stop, saying what to fix,
 * rather than look alive while doing nothing (the supervisor's restart then shows the line). */
static void on_kafka_refused(void *arg, const pc_diag_t *diag)
{
    pc_worker_t *w = arg;
    pc_log(PC_LOG_ERROR, "kafka_refused", diag->msg, NULL);
    fprintf(stderr, "pkcs-worker: %s\n", diag->msg);
    pc_worker_note_error(w, diag->msg);
    pc_worker_shutdown(w, 1);
}

static void on_redis_state(void *arg, bool up)
{
    pc_worker_t *w = arg;
    if (up)
        pc_log(PC_LOG_INFO, "redis_up", "Redis reachable", NULL);
    else
        pc_log(PC_LOG_WARN, "redis_down", "Redis unreachable; requests wait and retry", "reason",
               pc_redis_last_error(w->redis), NULL);
    if (!up)
        pc_worker_note_error(w, "Redis unreachable");
}

/* ---- key pool ---------------------------------------------------------------------------- */

typedef struct fill_work {
    uv_work_t work;
    pc_worker_t *w;
    pc_key_spec_t spec;
    EVP_PKEY *key;
} fill_work_t;

static void pool_fill(uv_work_t *req) /* pool thread */
{
    fill_work_t *f = req->data;
    if (pc_key_generate(&f->spec, f->w->engine->keygen_mode, &f->key, NULL) != PC_OK)
        f->key = NULL;
}

static void after_fill(uv_work_t *req, int status)
{
    fill_work_t *f = req->data;
    pc_worker_t *w = f->w;
    w->pool_busy--;
    if (f->key != NULL)
        pc_keypool_put(w->keypool, &f->spec, f->key);
    else
        pc_keypool_cancel(w->keypool, &f->spec);
    free(f);
    fill_soon(w, 0);
}

/* Pre-generate keys only with pool threads nobody else is using: requests always come first.
 * The timer is one-shot, armed by what can make room or free a thread (the start, a fill done,
 * the last request in flight ended: requests are what take pooled keys), so that a worker
 * whose pool is full sleeps: a 50 ms poll woke every idle worker 20 times a second for
 * nothing. */
static void on_fill_timer(uv_timer_t *timer)
{
    pc_worker_t *w = timer->data;
    while (w->state == PC_WORKER_RUNNING && w->pool_busy < w->threadpool_size &&
           w->in_flight == 0) {
        fill_work_t *f = calloc(1, sizeof(*f));
        if (f == NULL || !pc_keypool_reserve(w->keypool, &f->spec)) {
            free(f);
            return;
        }
        f->w = w;
        f->work.data = f;
        if (uv_queue_work(w->loop, &f->work, pool_fill, after_fill) != 0) {
            pc_keypool_cancel(w->keypool, &f->spec);
            free(f);
            return;
        }
        w->pool_busy++;
    }
}

static void fill_soon(pc_worker_t *w, uint64_t delay_ms)
{
    if (w->keypool != NULL && w->state == PC_WORKER_RUNNING)
        uv_timer_start(&w->fill, on_fill_timer, delay_ms, 0);
}

/* ---- statistics ------------------------------------------------------------------------- */

static bool stats_failing; /* the last write failed: the next failure is not logged again */

static void on_stats_written(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    (void)arg;
    if (err != PC_OK && !stats_failing)
        pc_log(PC_LOG_WARN, "stats_failed",
               diag != NULL ? diag->msg : "recording statistics failed; totals will miss it", NULL);
    else if (err == PC_OK && stats_failing)
        pc_log(PC_LOG_INFO, "stats_recovered", "statistics are recorded again", NULL);
    stats_failing = err != PC_OK;
}

void pc_worker_stats_flush(pc_worker_t *w)
{
    pc_err_t err = pc_stats_flush(w->redis, &w->stats_pending, on_stats_written, NULL);
    if (err != PC_OK && err != PC_ERR_NOT_FOUND) /* NOT_FOUND: nothing counted */
        on_stats_written(NULL, err, &(pc_diag_t){.msg = "recording statistics: Redis is closed"});
}

static void on_stats_timer(uv_timer_t *timer)
{
    pc_worker_stats_flush(timer->data);
}

/* ---- registration and heartbeat ---------------------------------------------------------- */

static char *counts_json(const pc_worker_t *w)
{
    json_t *parts = json_array();
    for (size_t i = 0; parts != NULL && i < w->partition_count; i++)
        json_array_append_new(parts, json_integer(w->partitions[i]));
    unsigned retrying = 0;
    int64_t for_ms = 0;
    bool degraded = pc_worker_degraded(w, &retrying, &for_ms);
    json_t *o = json_pack(
        "{s:I,s:I,s:I,s:I,s:i,s:b,s:i,s:I,s:b,s:o*}", "issued", (json_int_t)w->count_issued,
        "failed", (json_int_t)w->count_failed, "revoked", (json_int_t)w->count_revoked, "dlq",
        (json_int_t)w->count_dlq, "in_flight", (int)w->in_flight, "in_group",
        (int)(w->in_group && w->state == PC_WORKER_RUNNING), "retrying", (int)retrying,
        "retrying_s", (json_int_t)(for_ms / 1000), "degraded", (int)degraded, "partitions", parts);
    /* the CAs this worker cannot use now: the coordinator shows each CA's health from them */
    json_t *ca_down = json_array();
    for (size_t i = 0; o != NULL && ca_down != NULL && i < w->engine->ca_count; i++)
        if (!pc_ca_healthy(w->engine->cas[i]))
            json_array_append_new(ca_down, json_string(w->engine->cas[i]->name));
    if (o != NULL && ca_down != NULL)
        json_object_set(o, "ca_down", ca_down);
    json_decref(ca_down);
    char *text = o == NULL ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void on_heartbeat_done(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    if (err == PC_ERR_CONFLICT)
        pc_log(PC_LOG_ERROR, "registry", diag->msg, NULL);
}

static void on_heartbeat_timer(uv_timer_t *timer)
{
    pc_worker_t *w = timer->data;
    if (w->kafka != NULL)
        pc_gauge_set(w->m.lag, (double)pc_kafka_lag(w->kafka));
    pc_gauge_set(w->m.pool_busy, (double)w->pool_busy);
    if (!w->registered || w->state == PC_WORKER_STOPPING)
        return;
    char *counts = counts_json(w);
    pc_registry_heartbeat(w->registry, counts != NULL ? counts : "{}",
                          w->last_error[0] ? w->last_error : NULL, on_heartbeat_done, w);
    free(counts);
}

static pc_err_t start_intake(pc_worker_t *w, pc_diag_t *diag)
{
    pc_kafka_security_t security = pc_config_kafka_security(w->cfg);
    pc_kafka_config_t kc = {
        .brokers = w->cfg->kafka.brokers,
        .group_id = w->cfg->kafka.group_id,
        .group_instance_id = w->cfg->kafka.group_instance_id,
        .client_id = w->cfg->worker.id,
        .topic = w->cfg->kafka.requests_topic,
        .session_timeout_ms = w->cfg->kafka.session_timeout_ms,
        .security = &security,
    };
    pc_kafka_handlers_t handlers = {on_message, on_revoked, on_assigned, on_kafka_state,
                                    on_kafka_refused};
    pc_err_t err = pc_kafka_new(w->loop, &kc, &handlers, w, &w->kafka, diag);
    if (err == PC_OK)
        err = pc_kafka_warm_topic(w->kafka, w->cfg->kafka.results_topic, diag);
    if (err == PC_OK)
        err = pc_kafka_warm_topic(w->kafka, w->cfg->kafka.dlq_topic, diag);
    if (err == PC_OK && w->cfg->kafka.audit_topic[0] != '\0')
        err = pc_kafka_warm_topic(w->kafka, w->cfg->kafka.audit_topic, diag);
    if (err == PC_OK)
        err = pc_kafka_start(w->kafka, diag);
    return err;
}

static void on_registered(void *arg, pc_err_t err, const pc_diag_t *diag);
static pc_err_t begin_registration(pc_worker_t *w);

static void on_register_retry(uv_timer_t *timer)
{
    pc_worker_t *w = timer->data;
    if (w->state == PC_WORKER_STARTING)
        begin_registration(w);
}

/* A Redis that may evict keys would, once full, drop the local CA's records or a claim, and
 * then a certificate is issued twice: refuse to start on one, before any work. */
static void on_eviction_checked(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_worker_t *w = arg;
    if (w->state != PC_WORKER_STARTING)
        return;
    if (err == PC_ERR_INVALID_PARAM) {
        pc_log(PC_LOG_ERROR, "redis_misconfigured", diag->msg, NULL);
        fprintf(stderr, "pkcs-worker: %s\n", diag->msg);
        pc_worker_shutdown(w, 1);
        return;
    }
    if (err == PC_ERR_DEPENDENCY && pc_redis_refused(w->redis)) {
        /* a wrong user or password does not heal by waiting: say so and stop */
        pc_log(PC_LOG_ERROR, "redis_refused", pc_redis_last_error(w->redis), NULL);
        fprintf(stderr, "pkcs-worker: %s\n", pc_redis_last_error(w->redis));
        pc_worker_shutdown(w, 1);
        return;
    }
    if (err == PC_ERR_DEPENDENCY) { /* Redis not there yet: keep trying, not ready meanwhile */
        pc_worker_note_error(w, diag != NULL ? diag->msg : pc_strerror(err));
        uv_timer_start(&w->register_retry, on_register_retry, 1000, 0);
        return;
    }
    if (err != PC_OK) /* the policy cannot be read with this user's rights: say so, go on */
        pc_log(PC_LOG_WARN, "redis_policy_unknown", diag->msg, NULL);
    w->eviction_checked = true;
    begin_registration(w);
}

/* begin_registration checks Redis's eviction policy once, then registers. */
static pc_err_t begin_registration(pc_worker_t *w)
{
    if (w->eviction_checked)
        return pc_registry_register(w->registry, on_registered, w);
    pc_err_t err = pc_redis_check_eviction(w->redis, on_eviction_checked, w);
    if (err == PC_ERR_DEPENDENCY)
        uv_timer_start(&w->register_retry, on_register_retry, 1000, 0);
    return err == PC_ERR_DEPENDENCY ? PC_OK : err;
}

static void on_registered(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_worker_t *w = arg;
    pc_diag_t d = {{0}};
    if (w->state != PC_WORKER_STARTING)
        return;
    if (err == PC_ERR_CONFLICT) {
        pc_log(PC_LOG_ERROR, "refused", diag->msg, NULL);
        fprintf(stderr, "pkcs-worker: %s\n", diag->msg);
        pc_worker_shutdown(w, 3);
        return;
    }
    if (err != PC_OK) { /* Redis not there yet: keep trying, not ready meanwhile */
        pc_worker_note_error(w, diag != NULL ? diag->msg : pc_strerror(err));
        uv_timer_start(&w->register_retry, on_register_retry, 1000, 0);
        return;
    }
    w->registered = true;
    w->state = PC_WORKER_RUNNING;
    w->last_error[0] = '\0'; /* start-up waits (Redis still connecting) are not errors */
    if ((err = start_intake(w, &d)) != PC_OK) {
        pc_log(PC_LOG_ERROR, "kafka", d.msg, NULL);
        fprintf(stderr, "pkcs-worker: %s\n", d.msg);
        pc_worker_shutdown(w, 1);
        return;
    }
    pc_log(PC_LOG_INFO, "started", "registered and consuming", "topic",
           w->cfg->kafka.requests_topic, "group", w->cfg->kafka.group_id, NULL);
    fill_soon(w, FILL_DELAY_MS);
}

/* ---- signals and drain ------------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    pc_worker_t *w = sig->data;
    pc_log(PC_LOG_INFO, "draining", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    pc_worker_shutdown(w, 0);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    pc_worker_t *w = timer->data;
    pc_log(PC_LOG_WARN, "drain_timeout", "in-flight work did not finish in time; giving it back",
           NULL);
    pc_job_abandon_all(w);
    worker_close_components(w);
}

static void drain_check(pc_worker_t *w)
{
    if (w->in_flight == 0 && w->state == PC_WORKER_DRAINING)
        worker_close_components(w);
}

void pc_worker_shutdown(pc_worker_t *w, int exit_code)
{
    if (w->state == PC_WORKER_DRAINING || w->state == PC_WORKER_STOPPING)
        return;
    w->exit_code = exit_code;
    w->state = PC_WORKER_DRAINING;
    if (w->kafka != NULL)
        pc_kafka_pause(w->kafka);
    uv_timer_start(&w->drain, on_drain_timeout, w->cfg->worker.drain_timeout_ms, 0);
    drain_check(w);
}

/* ---- closing ----------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
    pc_worker_t *w = handle->data;
    w->open_handles--;
}

static void close_handle(pc_worker_t *w, uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_handle_closed);
}

static void on_component_closed(void *arg)
{
    pc_worker_t *w = arg;
    w->open_handles--;
}

static void on_unregistered(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_worker_t *w = arg;
    w->open_handles--; /* the unregister step */
    if (w->redis != NULL) {
        w->open_handles++;
        pc_redis_close(w->redis, on_component_closed, w);
        w->redis = NULL;
    }
}

static void on_kafka_closed(void *arg)
{
    pc_worker_t *w = arg;
    w->kafka = NULL; /* kept until now: the final revoke callbacks still ask it */
    w->open_handles--;
    pc_log(PC_LOG_INFO, "stopped", "offsets committed, left the group", NULL);
    w->open_handles++;
    if (!w->registered || pc_registry_unregister(w->registry, on_unregistered, w) != PC_OK)
        on_unregistered(w, PC_OK, NULL);
}

static void worker_close_components(pc_worker_t *w)
{
    if (w->state == PC_WORKER_STOPPING)
        return;
    w->state = PC_WORKER_STOPPING;
    /* the last counts: answered before the unregistration that follows on the same connection,
     * and so before Redis is closed */
    pc_worker_stats_flush(w);
    close_handle(w, (uv_handle_t *)&w->stats);
    close_handle(w, (uv_handle_t *)&w->sigterm);
    close_handle(w, (uv_handle_t *)&w->sigint);
    close_handle(w, (uv_handle_t *)&w->heartbeat);
    close_handle(w, (uv_handle_t *)&w->fill);
    close_handle(w, (uv_handle_t *)&w->drain);
    close_handle(w, (uv_handle_t *)&w->register_retry);
    if (w->http != NULL) {
        w->open_handles++;
        pc_http_close(w->http, on_component_closed, w);
        w->http = NULL;
    }
    if (w->engine != NULL) {
        w->open_handles++;
        pc_engine_close(w->engine, on_component_closed, w);
    }
    w->open_handles++;
    if (w->kafka != NULL) {
        pc_kafka_close(w->kafka, 10000, on_kafka_closed, w);
    } else {
        on_kafka_closed(w);
    }
}

/* ---- init and start ---------------------------------------------------------------------- */

static pc_err_t init_auth(pc_worker_t *w, pc_diag_t *diag)
{
    const pc_config_t *cfg = w->cfg;
    if (cfg->signer_count == 0)
        return cfg->worker.allow_unsigned
                   ? PC_OK
                   : pc_fail(diag, PC_ERR_INVALID_PARAM,
                             "no upstream signers are configured: add a \"signers\" list to the "
                             "configuration (or set worker.allow_unsigned for tests)");
    pc_auth_key_t *keys = calloc(cfg->signer_count, sizeof(*keys));
    if (keys == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cfg->signer_count; i++) {
        keys[i].id = cfg->signers[i].id;
        keys[i].algorithm = cfg->signers[i].algorithm;
        keys[i].public_key_file = cfg->signers[i].public_key_file;
        keys[i].secret_file = cfg->signers[i].secret_file;
    }
    pc_err_t err = pc_auth_new(keys, cfg->signer_count, &w->auth, diag);
    free(keys);
    return err;
}

static pc_err_t init_result_signer(pc_worker_t *w, pc_diag_t *diag)
{
    const pc_config_worker_t *c = &w->cfg->worker;
    if (c->result_key_file == NULL) {
        pc_log(PC_LOG_WARN, "results_unsigned",
               "no worker.result_key_file: results go out unsigned, and consumers cannot tell "
               "them from forged ones",
               NULL);
        return PC_OK;
    }
    pc_err_t err = pc_signer_new(c->result_key_id, c->result_key_algorithm, c->result_key_file,
                                 NULL, &w->result_signer, diag);
    if (err != PC_OK)
        pc_diag_prefix(diag, "worker.result_key_file");
    return err;
}

static pc_err_t parse_pool_spec(const char *name, pc_key_spec_t *spec, pc_diag_t *diag)
{
    static const struct {
        const char *name;
        pc_key_spec_t spec;
    } names[] = {{"RSA-2048", {PC_KEY_RSA, 2048}},
                 {"RSA-3072", {PC_KEY_RSA, 3072}},
                 {"RSA-4096", {PC_KEY_RSA, 4096}},
                 {"P-256", {PC_KEY_EC, 256}},
                 {"P-384", {PC_KEY_EC, 384}}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *spec = names[i].spec;
            return PC_OK;
        }
    }
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "worker.key_pool_algorithms: unknown \"%s\"; use RSA-2048, RSA-3072, RSA-4096, "
                   "P-256 or P-384",
                   name);
}

static pc_err_t init_keypool(pc_worker_t *w, pc_diag_t *diag)
{
    pc_key_spec_t specs[8];
    size_t count = 0;
    char list[256];
    if (w->cfg->worker.key_pool_size == 0)
        return PC_OK;
    snprintf(list, sizeof(list), "%s,", w->cfg->worker.key_pool_algorithms);
    char *tok = list;
    for (char *comma = strchr(tok, ','); comma != NULL && count < 8; comma = strchr(tok, ',')) {
        *comma = '\0';
        while (*tok == ' ')
            tok++;
        if (*tok != '\0') {
            pc_err_t err = parse_pool_spec(tok, &specs[count], diag);
            if (err != PC_OK)
                return err;
            count++;
        }
        tok = comma + 1;
    }
    if (count == 0)
        return PC_OK;
    w->keypool = pc_keypool_new(specs, count, w->cfg->worker.key_pool_size);
    return w->keypool == NULL ? pc_fail(diag, PC_ERR_NOMEM, "out of memory") : PC_OK;
}

static void init_handles(pc_worker_t *w)
{
    uv_handle_t *handles[] = {(uv_handle_t *)&w->sigterm,   (uv_handle_t *)&w->sigint,
                              (uv_handle_t *)&w->heartbeat, (uv_handle_t *)&w->fill,
                              (uv_handle_t *)&w->drain,     (uv_handle_t *)&w->register_retry,
                              (uv_handle_t *)&w->stats};
    uv_signal_init(w->loop, &w->sigterm);
    uv_signal_init(w->loop, &w->sigint);
    uv_timer_init(w->loop, &w->heartbeat);
    uv_timer_init(w->loop, &w->fill);
    uv_timer_init(w->loop, &w->drain);
    uv_timer_init(w->loop, &w->register_retry);
    uv_timer_init(w->loop, &w->stats);
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        handles[i]->data = w;
    w->open_handles += (int)(sizeof(handles) / sizeof(handles[0]));
}

pc_err_t pc_worker_init(pc_worker_t *w, uv_loop_t *loop, pc_config_t *cfg, pc_diag_t *diag)
{
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    w->cfg = cfg;
    init_handles(w); /* first: a failed init then closes through the normal shutdown path */
    pc_err_t err;
    if ((err = pc_worker_metrics_init(&w->m)) != PC_OK ||
        (err = pc_engine_new_loop(cfg, loop, &w->engine, diag)) != PC_OK ||
        (err = init_auth(w, diag)) != PC_OK || (err = init_result_signer(w, diag)) != PC_OK ||
        (err = init_keypool(w, diag)) != PC_OK)
        return err;
    if ((w->keyq = pc_keyq_new(4096)) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    pc_redis_config_t rc = pc_config_redis(cfg);
    /* Leases are renewed every quarter lease: a reconnect must never wait longer than that, or
     * a short Redis hiccup would let every lease of this worker run out. */
    rc.reconnect_max_ms = cfg->redis.lease_ms / 4 < 5000 ? cfg->redis.lease_ms / 4 : 5000;
    pc_worker_info_t info = {cfg->worker.id, "", PC_VERSION, pc_now_ms()};
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    info.host = host;
    if ((err = pc_redis_new(loop, &rc, &w->redis, diag)) != PC_OK ||
        (err = pc_dedupe_new(w->redis, cfg->worker.id, cfg->redis.lease_ms,
                             (int64_t)cfg->redis.retention_hours * 3600 * 1000, &w->dedupe,
                             diag)) != PC_OK ||
        (err = pc_registry_new(w->redis, &info, cfg->worker.max_instances,
                               cfg->worker.heartbeat_ttl_ms, &w->registry, diag)) != PC_OK)
        return err;
    pc_redis_on_state(w->redis, on_redis_state, w);
    /* The engine is closed before Redis (worker_close_components, then on_unregistered). */
    pc_engine_attach_redis(w->engine, w->redis);
    return PC_OK;
}

/* log_insecure_cas says, at every start, which CAs are reached in clear: the library accepts
 * allow_http, and it is the process's part to make sure nobody misses that it did. */
static void log_insecure_cas(const pc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->ca_count; i++) {
        const pc_config_ca_t *ca = &cfg->cas[i];
        if (ca->allow_http && ca->url != NULL && strncmp(ca->url, "http://", 7) == 0)
            pc_log(PC_LOG_WARN, "insecure_ca",
                   "allow_http: CSRs, cfssl auth tokens and certificates of this CA cross the "
                   "network unencrypted and unauthenticated; use https:// outside tests",
                   "ca", ca->name, "url", ca->url, NULL);
    }
}

pc_err_t pc_worker_start(pc_worker_t *w, pc_diag_t *diag)
{
    pc_err_t err = pc_http_new(w->loop, w->cfg->worker.http_host, (int)w->cfg->worker.http_port,
                               pc_worker_http_handler, w, &w->http, diag);
    if (err != PC_OK)
        return err;
    pc_http_set_max_connections(w->http, w->cfg->worker.http_max_connections);
    pc_http_set_idle_timeout(w->http, w->cfg->worker.http_timeout_ms);
    char port[16];
    snprintf(port, sizeof(port), "%d", pc_http_port(w->http));
    pc_log(PC_LOG_INFO, "http", "serving /healthz, /readyz and /metrics", "port", port, NULL);
    log_insecure_cas(w->cfg);
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_timer_start(&w->heartbeat, on_heartbeat_timer, 0, w->cfg->worker.heartbeat_ms);
    uv_timer_start(&w->stats, on_stats_timer, 1000, 1000);
    return begin_registration(w);
}

void pc_worker_cleanup(pc_worker_t *w)
{
    pc_registry_free(w->registry);
    pc_dedupe_free(w->dedupe);
    pc_keyq_free(w->keyq);
    pc_keypool_free(w->keypool);
    pc_auth_free(w->auth);
    pc_signer_free(w->result_signer);
    pc_engine_free(w->engine);
    pc_metrics_free(w->m.registry);
    free(w->partitions);
}
