/*
 * coord_admin.c - the coordinator's one librdkafka handle: Admin API calls whose results come
 * back on a queue that a loop timer drains (so no call ever blocks the loop), and the probe that
 * librdkafka 2.0 only offers as blocking calls (metadata, watermark offsets), run on a pool
 * thread. Loop thread, except pc_coord_probe_run (pool thread).
 *
 * Each Admin API call carries an op (its options' opaque) in a list, so that a call still
 * pending at shutdown is answered with NULL and whoever waits for it can free its state.
 *
 * The handle is a consumer with the workers' group.id that never subscribes (so it never joins
 * the group): librdkafka 2.0's OffsetFetch error path (NOT_COORDINATOR, e.g. while the group's
 * coordinator is still loading) sends a coordinator query to the handle's own consumer group
 * and crashes on a handle that has none (librdkafka issue: rd_kafka_cgrp_op with rkcg NULL,
 * seen here under ASan). With a group it is an ordinary retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"

#define POLL_MS 50 /* result latency; cheap, the queue is usually empty */

typedef struct op {
    struct op *prev, *next;
    pc_coord_admin_fn fn;
    void *arg;
} op_t;

struct pc_coord_admin {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    uv_timer_t timer;
    bool timer_open;
    op_t *ops;
    char last_error[256];
    bool refused;
    pc_diag_t refusal;
};

/* librdkafka's error callback, served by rd_kafka_poll on the loop thread. A refusal
 * (credentials, the brokers' certificate) does not heal by itself, and librdkafka retries it
 * silently: it is logged as an error naming the fix, and /readyz shows it. The coordinator goes
 * on serving CA certificates and CRLs, which need no Kafka. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pc_coord_admin_t *admin = opaque;
    pc_diag_t diag;
    if (pc_kafka_refusal(err, reason, &diag)) {
        if (!admin->refused || strcmp(diag.msg, admin->refusal.msg) != 0)
            pc_log(PC_LOG_ERROR, "kafka_refused", diag.msg, NULL);
        admin->refused = true;
        admin->refusal = diag;
        return;
    }
    char text[sizeof(admin->last_error)];
    snprintf(text, sizeof(text), "%s: %s", rd_kafka_err2name(err), reason);
    /* Brokers going away repeat the same error every few seconds: log changes only. */
    if (strcmp(text, admin->last_error) != 0)
        pc_log(PC_LOG_WARN, "kafka_error", text, NULL);
    memcpy(admin->last_error, text, sizeof(text));
}

/* librdkafka's own log lines (any of its threads; pc_log is thread-safe), as JSON lines like
 * everything else on stderr. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Its errors (a broker not reachable) also come through error_cb: warnings here. */
    pc_log_level_t mine = level <= 4 ? PC_LOG_WARN : level <= 6 ? PC_LOG_INFO : PC_LOG_DEBUG;
    pc_log(mine, "kafka_log", buf, "facility", fac, NULL);
}

static void unlink_op(pc_coord_admin_t *admin, op_t *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        admin->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
}

static void on_poll_timer(uv_timer_t *timer)
{
    pc_coord_admin_t *admin = timer->data;
    rd_kafka_event_t *ev;
    rd_kafka_poll(admin->rk, 0);
    while ((ev = rd_kafka_queue_poll(admin->queue, 0)) != NULL) {
        op_t *op = rd_kafka_event_opaque(ev);
        if (op != NULL) {
            unlink_op(admin, op);
            op->fn(op->arg, ev);
            free(op);
        }
        rd_kafka_event_destroy(ev);
    }
}

static pc_err_t conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                         pc_diag_t *diag)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return pc_fail(
            diag, PC_ERR_INVALID_PARAM,
            "kafka: cannot set %s=\"%s\": %s (fix the kafka settings in the configuration)", name,
            value, errstr);
    return PC_OK;
}

pc_err_t pc_coord_admin_new(uv_loop_t *loop, const pc_config_kafka_t *kafka,
                            const pc_kafka_security_t *security, pc_coord_admin_t **out,
                            pc_diag_t *diag)
{
    char errstr[512];
    pc_err_t err;
    pc_coord_admin_t *admin = calloc(1, sizeof(*admin));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    *out = NULL;
    if (admin == NULL || conf == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_free_conf;
    }
    if ((err = conf_set(conf, "bootstrap.servers", kafka->brokers, diag)) != PC_OK ||
        (err = conf_set(conf, "client.id", "pkcs-coordinator", diag)) != PC_OK ||
        (err = conf_set(conf, "group.id", kafka->group_id, diag)) != PC_OK ||
        (err = conf_set(conf, "enable.auto.commit", "false", diag)) != PC_OK ||
        (err = pc_kafka_security_apply(conf, security, diag)) != PC_OK)
        goto out_free_conf;
    rd_kafka_conf_set_opaque(conf, admin);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    admin->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (admin->rk == NULL) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "kafka: cannot create the admin client: %s",
                      errstr);
        goto out_free_conf;
    }
    conf = NULL; /* the handle has it */
    admin->queue = rd_kafka_queue_new(admin->rk);
    uv_timer_init(loop, &admin->timer);
    admin->timer.data = admin;
    admin->timer_open = true;
    uv_timer_start(&admin->timer, on_poll_timer, POLL_MS, POLL_MS);
    *out = admin;
    admin = NULL;
out_free_conf:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(admin);
    return err;
}

const pc_diag_t *pc_coord_admin_refusal(const pc_coord_admin_t *admin)
{
    return admin != NULL && admin->refused ? &admin->refusal : NULL;
}

void pc_coord_admin_refusal_clear(pc_coord_admin_t *admin)
{
    if (admin != NULL)
        admin->refused = false;
}

rd_kafka_t *pc_coord_admin_rk(pc_coord_admin_t *admin)
{
    return admin->rk;
}

rd_kafka_queue_t *pc_coord_admin_queue(pc_coord_admin_t *admin)
{
    return admin->queue;
}

rd_kafka_AdminOptions_t *pc_coord_admin_options(pc_coord_admin_t *admin, rd_kafka_admin_op_t kind,
                                                pc_coord_admin_fn fn, void *arg)
{
    char errstr[256];
    op_t *op = calloc(1, sizeof(*op));
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(admin->rk, kind);

    if (op == NULL || options == NULL) {
        free(op);
        if (options != NULL)
            rd_kafka_AdminOptions_destroy(options);
        return NULL;
    }
    /* Cannot fail for a positive value below the maximum. */
    rd_kafka_AdminOptions_set_request_timeout(options, COORD_KAFKA_TIMEOUT_MS, errstr,
                                              sizeof(errstr));
    if (kind == RD_KAFKA_ADMIN_OP_CREATETOPICS)
        rd_kafka_AdminOptions_set_operation_timeout(options, COORD_KAFKA_TIMEOUT_MS, errstr,
                                                    sizeof(errstr));
    op->fn = fn;
    op->arg = arg;
    op->next = admin->ops;
    if (admin->ops != NULL)
        admin->ops->prev = op;
    admin->ops = op;
    rd_kafka_AdminOptions_set_opaque(options, op);
    return options;
}

static void on_timer_closed(uv_handle_t *handle)
{
    pc_coord_admin_t *admin = handle->data;
    admin->timer_open = false;
}

void pc_coord_admin_stop(pc_coord_admin_t *admin)
{
    if (admin != NULL && admin->timer_open && !uv_is_closing((uv_handle_t *)&admin->timer))
        uv_close((uv_handle_t *)&admin->timer, on_timer_closed);
}

void pc_coord_admin_free(pc_coord_admin_t *admin)
{
    rd_kafka_event_t *ev;
    if (admin == NULL)
        return;
    while (admin->ops != NULL) {
        op_t *op = admin->ops;
        unlink_op(admin, op);
        op->fn(op->arg, NULL);
        free(op);
    }
    /* Results that arrived meanwhile name ops already answered: drop them unread. */
    while ((ev = rd_kafka_queue_poll(admin->queue, 0)) != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(admin->queue);
    rd_kafka_destroy(admin->rk);
    free(admin);
}

/* ---- the probe (pool thread) ----------------------------------------------------------- */

static void probe_metadata(pc_coord_probe_t *probe)
{
    const struct rd_kafka_metadata *md = NULL;
    /* All topics rather than ours by name: asking for a missing topic by name can make a
     * broker with auto.create.topics.enable create it with its defaults. */
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(probe->rk, 1, NULL, &md, COORD_KAFKA_TIMEOUT_MS);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        probe->err = pc_fail(&probe->diag, PC_ERR_DEPENDENCY,
                             "kafka: cannot read topic metadata: %s (are the brokers up?)",
                             rd_kafka_err2str(rerr));
        return;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        for (int k = 0; k < probe->count; k++) {
            /* A topic listed with a transient error (leaders still being elected for a new
             * topic's partitions) exists all the same: creating it again only earns
             * TOPIC_ALREADY_EXISTS, and repeated admin requests are what we avoid. */
            if (strcmp(t->topic, probe->names[k]) != 0 ||
                t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                continue;
            probe->meta[k].exists = true;
            probe->meta[k].partitions = t->partition_cnt;
            probe->meta[k].replication = t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0;
        }
    }
    rd_kafka_metadata_destroy(md);
}

/* query_offsets asks for one offset per partition of the requests topic: at = -1 gives the
 * high watermark (the end), -2 the low one (the start), as ListOffsets defines them. */
static pc_err_t query_offsets(pc_coord_probe_t *probe, int64_t at, int64_t *out)
{
    pc_err_t err = PC_OK;
    int n = probe->meta[0].partitions;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(list, probe->names[0], p)->offset = at;
    rd_kafka_resp_err_t rerr = rd_kafka_offsets_for_times(probe->rk, list, COORD_KAFKA_TIMEOUT_MS);
    for (int i = 0; rerr == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rerr = tp->err;
        else if (tp->partition >= 0 && tp->partition < n)
            out[tp->partition] = tp->offset;
    }
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        err = pc_fail(&probe->marks_diag, PC_ERR_DEPENDENCY,
                      "kafka: cannot read the %s offsets of topic %s: %s",
                      at == -1 ? "end" : "start", probe->names[0], rd_kafka_err2str(rerr));
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

/* query_committed reads the group's committed offsets with the consumer API's OffsetFetch
 * (rd_kafka_committed: blocking, so on the pool). The Admin API's ListConsumerGroupOffsets
 * did the same from the loop, but with librdkafka 2.0.2 it intermittently tripped an assertion
 * in the library (rd_kafka_enq_once_del_source_return) and killed the process. */
static void query_committed(pc_coord_probe_t *probe, int n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(list, probe->names[0], p);
    rd_kafka_resp_err_t rerr = rd_kafka_committed(probe->rk, list, COORD_KAFKA_TIMEOUT_MS);
    probe->committed_err = PC_OK;
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        probe->committed_err =
            pc_fail(&probe->committed_diag, PC_ERR_DEPENDENCY,
                    "kafka: listing the group's committed offsets: %s", rd_kafka_err2str(rerr));
    for (int i = 0; rerr == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->partition >= 0 && tp->partition < n)
            probe->committed[tp->partition] =
                tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0 ? tp->offset : -1;
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void pc_coord_probe_run(uv_work_t *work)
{
    pc_coord_probe_t *probe = work->data;
    probe_metadata(probe);
    probe->marks_err = PC_ERR_DEPENDENCY;
    if (probe->err != PC_OK) {
        probe->marks_diag = probe->diag;
        return;
    }
    int n = probe->meta[0].partitions;
    if (!probe->meta[0].exists || n <= 0) {
        pc_fail(&probe->marks_diag, PC_ERR_NOT_FOUND, "topic %s does not exist (yet)",
                probe->names[0]);
        return;
    }
    probe->low = calloc((size_t)n, sizeof(int64_t));
    probe->high = calloc((size_t)n, sizeof(int64_t));
    probe->committed = calloc((size_t)n, sizeof(int64_t));
    probe->committed_err = PC_ERR_DEPENDENCY;
    if (probe->low == NULL || probe->high == NULL || probe->committed == NULL) {
        probe->marks_err = pc_fail(&probe->marks_diag, PC_ERR_NOMEM, "out of memory");
        return;
    }
    probe->marks_err = query_offsets(probe, -1, probe->high);
    if (probe->marks_err == PC_OK)
        probe->marks_err = query_offsets(probe, -2, probe->low);
    if (probe->marks_err == PC_OK)
        probe->marks_count = n;
    query_committed(probe, n);
}

void pc_coord_probe_free(pc_coord_probe_t *probe)
{
    if (probe == NULL)
        return;
    free(probe->low);
    free(probe->high);
    free(probe->committed);
    free(probe);
}
