/*
 * kafka.c - librdkafka on the worker's libuv loop: one consumer (cooperative-sticky, optional
 * static membership) and one idempotent producer.
 *
 * librdkafka runs its own threads but hands everything to the application through queues. All
 * of the consumer's events (messages, rebalances, errors, statistics) are forwarded to its
 * consumer queue and the producer's to its main queue; each queue writes a byte to a
 * non-blocking pipe when it turns non-empty, a uv_poll on the pipe wakes the loop, and the queue
 * is then drained to empty. A timer (TICK_MS, 250 ms) drains both as well, because the pipe only
 * signals the empty -> non-empty transition and the consumer must be polled within
 * max.poll.interval.ms anyway. So every callback below runs on the loop thread, and nothing here
 * blocks it except rd_kafka_destroy() at the very end of pc_kafka_close (it joins librdkafka's
 * threads).
 *
 * Offsets: enable.auto.offset.store is off; pc_kafka_message_done stores only the end of the
 * contiguous completed prefix (offsets.c), auto-commit commits it every second, and revoke and
 * close commit it once more.
 *
 * Back-pressure holds first: while the application has no room, the consumer is not polled
 * and messages wait in librdkafka's queue, which goes on fetching up to its own limits; a
 * release hands them out at once. Pausing partitions instead purges what was fetched and
 * costs a fetch round trip (hundreds of ms) on every resume, which capped a saturated worker
 * at a fraction of its speed. A hold that lasts HOLD_PAUSE_MS (nothing finished: a stalled CA)
 * becomes a pause, so that polling, and with it the group's rebalance events, goes on.
 * librdkafka keeps the pause flag on a partition across an unassign and a later re-assignment
 * to the same consumer, so each assignment sets it explicitly (set_intake): a partition taken
 * away while paused must not come back paused for good.
 *
 * Readiness heuristic, per handle: down on ALL_BROKERS_DOWN (librdkafka raises it when the
 * last connected broker is lost, also for a single-broker cluster) or on a fatal error; up on
 * evidence that a broker answers: a consumed message, a successful delivery report, a
 * rebalance (the coordinator answered) or a statistics report with a broker in state UP.
 * Single broker disconnects (__TRANSPORT) are not "down": the other brokers may serve.
 */
#include "kafka.h"
#include "offsets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

/* The tick is a fallback (both queues wake the loop through their pipes): it catches the hold
 * turning into a pause and drains anything a wake-up missed. Idle workers pay for every tick,
 * and a machine may run a hundred of them. */
#define TICK_MS 250
/* A hold this long turns into a pause (see above): well under max.poll.interval.ms, and short
 * enough that a rebalance waits little for a stalled worker. */
#define HOLD_PAUSE_MS 3000
/* While closing, steps are checked more often so that shutdown is not padded by ticks. */
#define CLOSE_TICK_MS 10
/* Statistics feed the readiness heuristic (an idle producer has no other evidence, so a new
 * worker is ready only after the first report); the value is a trade-off between how fast a
 * worker becomes ready, or sees the brokers back, and the cost of a JSON document per interval
 * (librdkafka writes one per handle, with every partition in it). Only a handle that is down
 * parses it. */
#define STATS_INTERVAL_MS "3000"
/* How long close waits for purged delivery reports once the flush deadline has passed. */
#define PURGE_WAIT_MS 2000
/* Extra time, beyond the session timeout, for leaving the group at close. */
#define LEAVE_SLACK_MS 5000
#define PROP_NAME_MAX 128

enum phase {
    PHASE_RUNNING,
    PHASE_FLUSHING, /* close: producer and in-flight messages finishing, bounded by flush_ms */
    PHASE_JOINING,  /* close: waiting for the group's first assignment before leaving it */
    PHASE_LEAVING,  /* close: consumer_close_queue running (final revoke + commit) */
    PHASE_PURGING,  /* close: producer leftovers purged, their reports being served */
    PHASE_RELEASED  /* close: handles destroyed, uv handles closing */
};

/* One queue's wake-up path: the pipe librdkafka writes to and the uv_poll watching it. */
struct wake {
    pc_kafka_t *kafka;
    int fds[2];
    uv_poll_t poll;
    bool inited;
};

struct pc_kafka {
    uv_loop_t *loop;
    pc_kafka_handlers_t handlers;
    void *arg;
    char *topic;
    unsigned session_timeout_ms;
    bool assigned_once; /* the group has given this consumer an assignment (maybe empty) */
    bool joined_once;   /* it had a member id once: the group may have picked its assignor */

    rd_kafka_t *rkc, *rkp;
    rd_kafka_queue_t *qc, *qp;
    struct wake cwake, pwake;
    uv_timer_t timer;
    bool timer_inited;
    int open_handles;

    pc_offsets_t *offsets;
    size_t held; /* messages given to on_message and not yet passed to message_done */
    bool paused;
    rd_kafka_topic_t *warm[4]; /* producer topics looked up ahead (pc_kafka_warm_topic) */
    size_t warm_count;
    bool holding;        /* the application has no room: messages wait in librdkafka's queue */
    uint64_t hold_since; /* loop time the hold began, ms */
    bool hold_paused;    /* the hold lasted HOLD_PAUSE_MS and became a pause */
    bool cons_up, prod_up, reported_up;
    bool refused; /* on_refused was called */
    pc_diag_t last_error;

    enum phase phase;
    uint64_t deadline; /* of the current close phase, loop time in ms */
    void (*closed)(void *arg);
    void *closed_arg;
};

/* A produced message's report target, librdkafka's msg_opaque. */
struct delivery {
    pc_kafka_delivered_fn cb;
    void *arg;
};

static void release(pc_kafka_t *kafka);

/* ---- state --------------------------------------------------------------------------- */

static void report_state(pc_kafka_t *kafka)
{
    bool up = kafka->cons_up && kafka->prod_up;
    if (up == kafka->reported_up)
        return;
    kafka->reported_up = up;
    if (kafka->handlers.on_state != NULL)
        kafka->handlers.on_state(kafka->arg, up);
}

static void set_up(pc_kafka_t *kafka, rd_kafka_t *rk, bool up)
{
    if (rk == kafka->rkc)
        kafka->cons_up = up;
    else
        kafka->prod_up = up;
    report_state(kafka);
}

static const char *role(const pc_kafka_t *kafka, const rd_kafka_t *rk)
{
    return rk == kafka->rkc ? "consumer" : "producer";
}

/* ---- configuration ------------------------------------------------------------------- */

static pc_err_t conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                         pc_diag_t *diag)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka: cannot set property %s: %s (fix the kafka settings)", name, errstr);
    return PC_OK;
}

static pc_err_t conf_set_uint(rd_kafka_conf_t *conf, const char *name, unsigned value,
                              pc_diag_t *diag)
{
    char text[16];
    snprintf(text, sizeof(text), "%u", value);
    return conf_set(conf, name, text, diag);
}

/* apply_extra sets the "name=value" strings on conf; a "consumer." or "producer." prefix
 * restricts a property to that handle, without one it goes to both. */
static pc_err_t apply_extra(rd_kafka_conf_t *conf, const char *const *extra, const char *who,
                            pc_diag_t *diag)
{
    size_t who_len = strlen(who);
    for (; extra != NULL && *extra != NULL; extra++) {
        const char *prop = *extra;
        if (strncmp(prop, "consumer.", 9) == 0 || strncmp(prop, "producer.", 9) == 0) {
            if (strncmp(prop, who, who_len) != 0 || prop[who_len] != '.')
                continue;
            prop += who_len + 1;
        }
        const char *eq = strchr(prop, '=');
        size_t name_len = eq ? (size_t)(eq - prop) : 0;
        if (eq == NULL || name_len == 0 || name_len >= PROP_NAME_MAX)
            /* name only: the value may be a secret (sasl.password) */
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "kafka: extra property '%.*s' is not name=value (fix the kafka "
                           "settings)",
                           eq ? (int)name_len : (int)strlen(prop), prop);
        char name[PROP_NAME_MAX];
        memcpy(name, prop, name_len);
        name[name_len] = '\0';
        pc_err_t err = conf_set(conf, name, eq + 1, diag);
        if (err != PC_OK)
            return err;
    }
    return PC_OK;
}

static pc_err_t consumer_props(rd_kafka_conf_t *conf, const pc_kafka_config_t *cfg, pc_diag_t *diag)
{
    unsigned session = cfg->session_timeout_ms ? cfg->session_timeout_ms : 10000;
    unsigned poll = cfg->max_poll_interval_ms ? cfg->max_poll_interval_ms : 300000;
    unsigned heartbeat = session / 3 < 3000 ? session / 3 : 3000;
    static const char *const fixed[][2] = {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* An idle fetch waits this long at the broker; new data answers it at once, so this
         * only sets how often idle workers ask (librdkafka's default is 500). */
        {"fetch.wait.max.ms", "1000"},
        {"statistics.interval.ms", STATS_INTERVAL_MS},
    };
    pc_err_t err = conf_set(conf, "group.id", cfg->group_id, diag);
    if (err == PC_OK && cfg->group_instance_id != NULL)
        err = conf_set(conf, "group.instance.id", cfg->group_instance_id, diag);
    for (size_t i = 0; err == PC_OK && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        err = conf_set(conf, fixed[i][0], fixed[i][1], diag);
    if (err == PC_OK)
        err = conf_set_uint(conf, "session.timeout.ms", session, diag);
    if (err == PC_OK)
        err = conf_set_uint(conf, "heartbeat.interval.ms", heartbeat ? heartbeat : 1, diag);
    if (err == PC_OK)
        err = conf_set_uint(conf, "max.poll.interval.ms", poll, diag);
    return err;
}

static pc_err_t producer_props(rd_kafka_conf_t *conf, pc_diag_t *diag)
{
    static const char *const fixed[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"compression.type", "none"},
        {"message.timeout.ms", "300000"},
        {"statistics.interval.ms", STATS_INTERVAL_MS},
    };
    pc_err_t err = PC_OK;
    for (size_t i = 0; err == PC_OK && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        err = conf_set(conf, fixed[i][0], fixed[i][1], diag);
    return err;
}

/* ---- librdkafka callbacks (loop thread, from the drains) ---------------------------------- */

/* librdkafka's own log lines would go to stderr, in the middle of a program's JSON log, and a
 * library never logs: what matters to the program also reaches error_cb and last_error. Called
 * on librdkafka's threads. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

/* refuse reports a refusal once: every broker connection repeats it on each reconnect. */
static void refuse(pc_kafka_t *kafka, rd_kafka_t *rk, const pc_diag_t *diag)
{
    kafka->last_error = *diag;
    set_up(kafka, rk, false);
    if (kafka->refused || kafka->phase != PHASE_RUNNING)
        return;
    kafka->refused = true;
    if (kafka->handlers.on_refused != NULL)
        kafka->handlers.on_refused(kafka->arg, diag);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pc_kafka_t *kafka = opaque;
    pc_diag_t diag;
    if (pc_kafka_refusal(err, reason, &diag)) {
        refuse(kafka, rk, &diag);
        return;
    }
    pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka %s: %s: %s (check the brokers)",
            role(kafka, rk), rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__FATAL)
        set_up(kafka, rk, false);
}

/* stats_any_broker_up tells whether the statistics JSON lists a real (not internal) broker in
 * state UP. */
static bool stats_any_broker_up(const char *json, size_t json_len)
{
    bool up = false;
    json_t *root = json_loadb(json, json_len, 0, NULL);
    json_t *brokers = json_object_get(root, "brokers");
    const char *name;
    json_t *broker;
    json_object_foreach(brokers, name, broker)
    {
        const char *source = json_string_value(json_object_get(broker, "source"));
        const char *state = json_string_value(json_object_get(broker, "state"));
        if (source != NULL && state != NULL && strcmp(source, "internal") != 0 &&
            strcmp(state, "UP") == 0)
            up = true;
    }
    json_decref(root);
    return up;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    pc_kafka_t *kafka = opaque;
    bool up = rk == kafka->rkc ? kafka->cons_up : kafka->prod_up;
    /* Only evidence of "up": a handle with sparse connections may have none open while idle. */
    if (!up && stats_any_broker_up(json, json_len))
        set_up(kafka, rk, true);
    return 0;
}

static pc_err_t produce_err(rd_kafka_resp_err_t rerr);

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    pc_kafka_t *kafka = opaque;
    struct delivery *delivery = rkm->_private;
    pc_diag_t diag;
    pc_err_t err = PC_OK;
    if (rkm->err && produce_err(rkm->err) == PC_ERR_TOO_LARGE) {
        err = pc_fail(&diag, PC_ERR_TOO_LARGE,
                      "kafka: a message of %zu bytes to topic %s is too large for it: %s", rkm->len,
                      rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
    } else if (rkm->err) {
        err = pc_fail(&diag, PC_ERR_DEPENDENCY,
                      "kafka: message to topic %s was not delivered: %s (it will be produced "
                      "again; check the brokers)",
                      rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
    } else {
        set_up(kafka, rk, true);
    }
    if (delivery != NULL) {
        delivery->cb(delivery->arg, err, err == PC_OK ? NULL : &diag);
        free(delivery);
    }
}

static void store_offset(pc_kafka_t *kafka, int32_t partition, int64_t offset)
{
    if (kafka->rkc == NULL)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kafka->topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(kafka->rkc, list);
    if (err)
        pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY,
                "kafka: storing offset %lld of %s [%d] failed: %s", (long long)offset, kafka->topic,
                (int)partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

/* prefix_list returns the commit points of the partitions of parts that have completed
 * something (a new list, possibly empty), read before they are untracked. */
static rd_kafka_topic_partition_list_t *prefix_list(pc_kafka_t *kafka,
                                                    const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        int64_t point = pc_offsets_commit_point(kafka->offsets, parts->elems[i].partition);
        if (strcmp(parts->elems[i].topic, kafka->topic) == 0 && point >= 0)
            rd_kafka_topic_partition_list_add(list, kafka->topic, parts->elems[i].partition)
                ->offset = point;
    }
    return list;
}

/* commit_prefix stores and commits (asynchronously) the commit points of list. Async: a
 * synchronous commit would block the loop for as long as the coordinator takes to answer, and
 * the commit is queued ahead of the unassign on librdkafka's group queue anyway. */
static void commit_prefix(pc_kafka_t *kafka, rd_kafka_topic_partition_list_t *list)
{
    if (list->cnt > 0 && rd_kafka_offsets_store(kafka->rkc, list) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_commit(kafka->rkc, list, 1);
}

/* set_intake gives parts the intake state (paused or not) of the rest of the assignment, and
 * tells whether every partition was reached. librdkafka keeps a partition's application pause
 * flag on its partition object across an unassign and a later re-assignment (librdkafka #1849):
 * a partition revoked while intake was paused would come back still paused after intake had
 * resumed, and nothing would be fetched from it again, its messages never handed to anyone and
 * invisible to pc_kafka_lag. So every assignment states the flag. Called before the partitions
 * are assigned, while librdkafka has no fetcher operation of its own under way for them: every
 * pause, resume and fetch start takes a per-partition version barrier, and an operation that
 * loses the race for it is dropped without a word (librdkafka #5591). false: a partition had
 * no partition object yet (topic metadata not seen), so it was left as is. */
static bool set_intake(pc_kafka_t *kafka, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err = kafka->paused ? rd_kafka_pause_partitions(kafka->rkc, parts)
                                            : rd_kafka_resume_partitions(kafka->rkc, parts);
    bool all = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < parts->cnt; i++) {
        all = all && parts->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
        parts->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR; /* the list is assigned next */
    }
    return all;
}

static void on_assign(pc_kafka_t *kafka, rd_kafka_topic_partition_list_t *parts, bool cooperative)
{
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, kafka->topic) == 0 &&
            pc_offsets_add_partition(kafka->offsets, parts->elems[i].partition) != PC_OK)
            pc_fail(&kafka->last_error, PC_ERR_NOMEM,
                    "kafka: cannot track partition %d yet; it is tracked when its first "
                    "message arrives",
                    (int)parts->elems[i].partition);
    bool reached = set_intake(kafka, parts);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(kafka->rkc, parts);
        if (error != NULL) {
            pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka: incremental assign: %s",
                    rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(kafka->rkc, parts);
    }
    /* A partition first seen in this assignment has no stale flag to clear, but must be paused
     * if intake is; its partition object exists now. */
    if (!reached && kafka->paused)
        rd_kafka_pause_partitions(kafka->rkc, parts);
    set_up(kafka, kafka->rkc, true);
    if (parts->cnt > 0 && kafka->handlers.on_assigned != NULL)
        kafka->handlers.on_assigned(kafka->arg, parts);
}

/* on_revoke untracks parts before on_revoked runs, so that pc_kafka_assigned_count already
 * leaves them out there. Their commit points are read first; the callee cannot move them (it
 * only releases messages of these partitions, and a later pc_kafka_message_done for them stores
 * nothing). */
static void on_revoke(pc_kafka_t *kafka, rd_kafka_topic_partition_list_t *parts, bool cooperative)
{
    rd_kafka_topic_partition_list_t *prefix = prefix_list(kafka, parts);
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, kafka->topic) == 0)
            pc_offsets_remove_partition(kafka->offsets, parts->elems[i].partition);
    if (parts->cnt > 0 && kafka->handlers.on_revoked != NULL)
        kafka->handlers.on_revoked(kafka->arg, parts);
    /* A lost assignment belongs to someone else already: committing would be fenced. */
    if (!rd_kafka_assignment_lost(kafka->rkc))
        commit_prefix(kafka, prefix);
    rd_kafka_topic_partition_list_destroy(prefix);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(kafka->rkc, parts);
        if (error != NULL) {
            pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka: incremental unassign: %s",
                    rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(kafka->rkc, NULL);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pc_kafka_t *kafka = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kafka->assigned_once = true;
        on_assign(kafka, parts, cooperative);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(kafka, parts, cooperative);
    } else {
        /* librdkafka's advice for a failed rebalance: drop the whole assignment. */
        pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka: rebalance failed: %s",
                rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_t *all = NULL;
        if (rd_kafka_assignment(rk, &all) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            on_revoke(kafka, all, false);
            rd_kafka_topic_partition_list_destroy(all);
        }
    }
}

/* ---- draining ------------------------------------------------------------------------ */

static void consumer_error(pc_kafka_t *kafka, const rd_kafka_message_t *rkm)
{
    pc_diag_t diag;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (pc_kafka_refusal(rkm->err, rd_kafka_message_errstr(rkm), &diag)) {
        refuse(kafka, kafka->rkc, &diag);
        return;
    }
    pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka consumer: %s: %s (check the brokers)",
            rd_kafka_err2name(rkm->err), rd_kafka_message_errstr(rkm));
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
        set_up(kafka, kafka->rkc, false);
}

/* owned tells whether partition is in librdkafka's current assignment (a synchronous request
 * to librdkafka's main thread, answered at once; only for the rare path below). */
static bool owned(pc_kafka_t *kafka, int32_t partition)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(kafka->rkc, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool found = rd_kafka_topic_partition_list_find(parts, kafka->topic, partition) != NULL;
    rd_kafka_topic_partition_list_destroy(parts);
    return found;
}

/* track_late decides about a message of a partition the tracker does not know, while running,
 * and tells whether it may be handed out. A partition no longer assigned (librdkafka filters
 * their messages out already; this is a safety net) may drop it: librdkafka forgets the
 * position of an unassigned partition and its next owner starts at the committed offset. A
 * partition still assigned (its tracking failed when it was assigned: out of memory) may not:
 * librdkafka's position has moved past the message, and the next pause would resume after it.
 * So the partition is tracked from this message, its first one since the assignment; if that
 * fails again, librdkafka is sent back to the message so that it is delivered later. */
static bool track_late(pc_kafka_t *kafka, const rd_kafka_message_t *rkm)
{
    if (!owned(kafka, rkm->partition))
        return false;
    if (pc_offsets_add_partition(kafka->offsets, rkm->partition) == PC_OK)
        return true;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kafka->topic, rkm->partition)->offset = rkm->offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(kafka->rkc, list, 0 /* async */);
    if (error != NULL)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    pc_fail(&kafka->last_error, PC_ERR_NOMEM,
            "kafka: cannot track partition %d; offset %lld will be fetched again",
            (int)rkm->partition, (long long)rkm->offset);
    return false;
}

/* dispatch hands one consumed message to on_message, tracking its offset first. Messages that
 * arrive while closing are dropped uncommitted: this consumer is leaving the group, and the next
 * owner of their partitions starts at the committed offset. */
static void dispatch(pc_kafka_t *kafka, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        consumer_error(kafka, rkm);
        rd_kafka_message_destroy(rkm);
        return;
    }
    set_up(kafka, kafka->rkc, true);
    if (kafka->phase != PHASE_RUNNING ||
        (!pc_offsets_has_partition(kafka->offsets, rkm->partition) && !track_late(kafka, rkm))) {
        rd_kafka_message_destroy(rkm);
        return;
    }
    /* A refusal (offsets going backwards after an offset reset, or no memory) still hands the
     * message out: it is processed, only its offset is not tracked. */
    if (pc_offsets_begin(kafka->offsets, rkm->partition, rkm->offset, rkm) != PC_OK)
        pc_fail(&kafka->last_error, PC_ERR_CONFLICT,
                "kafka: offset %lld of %s [%d] arrived out of order; not tracked",
                (long long)rkm->offset, kafka->topic, (int)rkm->partition);
    kafka->held++;
    kafka->handlers.on_message(kafka->arg, rkm);
}

/* drain_consumer hands out what librdkafka has, unless holding (a hold turned pause polls
 * again: paused partitions yield no messages, only events). on_message may start a hold. */
static void drain_consumer(pc_kafka_t *kafka)
{
    rd_kafka_message_t *rkm;
    while (kafka->rkc != NULL && !(kafka->holding && !kafka->paused) &&
           (rkm = rd_kafka_consumer_poll(kafka->rkc, 0)) != NULL)
        dispatch(kafka, rkm);
}

static void drain_producer(pc_kafka_t *kafka)
{
    while (kafka->rkp != NULL && rd_kafka_poll(kafka->rkp, 0) > 0)
        ;
}

static void empty_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void on_wake(uv_poll_t *poll, int status, int events)
{
    struct wake *wake = poll->data;
    pc_kafka_t *kafka = wake->kafka;
    empty_pipe(wake->fds[0]);
    if (wake == &kafka->cwake)
        drain_consumer(kafka);
    else
        drain_producer(kafka);
}

static void close_step(pc_kafka_t *kafka);

static void hold_check(pc_kafka_t *kafka);

static bool has_member_id(pc_kafka_t *kafka)
{
    char *id = rd_kafka_memberid(kafka->rkc);
    bool has = id != NULL && id[0] != '\0';
    if (id != NULL)
        rd_kafka_mem_free(kafka->rkc, id);
    return has;
}

static void on_tick(uv_timer_t *timer)
{
    pc_kafka_t *kafka = timer->data;
    hold_check(kafka);
    drain_producer(kafka);
    drain_consumer(kafka);
    /* Watched, not asked at close: a broker restart takes the member id away again (leave). */
    if (!kafka->joined_once && !kafka->assigned_once && kafka->rkc != NULL)
        kafka->joined_once = has_member_id(kafka);
    if (kafka->phase != PHASE_RUNNING)
        close_step(kafka);
}

/* ---- handles ------------------------------------------------------------------------- */

static pc_err_t handle_new(pc_kafka_t *kafka, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                           rd_kafka_t **out, pc_diag_t *diag)
{
    char errstr[512];
    rd_kafka_conf_set_opaque(conf, kafka);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    *out = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (*out == NULL) {
        rd_kafka_conf_destroy(conf);
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka: cannot create the %s: %s (fix the kafka settings)",
                       type == RD_KAFKA_CONSUMER ? "consumer" : "producer", errstr);
    }
    return PC_OK;
}

static pc_err_t consumer_new(pc_kafka_t *kafka, const pc_kafka_config_t *cfg, pc_diag_t *diag)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    pc_err_t err = conf_set(conf, "bootstrap.servers", cfg->brokers, diag);
    if (err == PC_OK)
        err = conf_set(conf, "client.id", cfg->client_id, diag);
    if (err == PC_OK)
        err = pc_kafka_security_apply(conf, cfg->security, diag);
    if (err == PC_OK)
        err = consumer_props(conf, cfg, diag);
    if (err == PC_OK)
        err = apply_extra(conf, cfg->extra, "consumer", diag);
    if (err != PC_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    err = handle_new(kafka, RD_KAFKA_CONSUMER, conf, &kafka->rkc, diag);
    if (err != PC_OK)
        return err;
    rd_kafka_poll_set_consumer(kafka->rkc);
    kafka->qc = rd_kafka_queue_get_consumer(kafka->rkc);
    return PC_OK;
}

static pc_err_t producer_new(pc_kafka_t *kafka, const pc_kafka_config_t *cfg, pc_diag_t *diag)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    pc_err_t err = conf_set(conf, "bootstrap.servers", cfg->brokers, diag);
    if (err == PC_OK)
        err = conf_set(conf, "client.id", cfg->client_id, diag);
    if (err == PC_OK)
        err = pc_kafka_security_apply(conf, cfg->security, diag);
    if (err == PC_OK)
        err = producer_props(conf, diag);
    if (err == PC_OK)
        err = apply_extra(conf, cfg->extra, "producer", diag);
    if (err != PC_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    err = handle_new(kafka, RD_KAFKA_PRODUCER, conf, &kafka->rkp, diag);
    if (err != PC_OK)
        return err;
    kafka->qp = rd_kafka_queue_get_main(kafka->rkp);
    return PC_OK;
}

/* pipe_open makes a non-blocking, close-on-exec pipe (pipe2 would need _GNU_SOURCE). */
static int pipe_open(int fds[2])
{
    if (pipe(fds) != 0) {
        fds[0] = fds[1] = -1;
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1; /* the caller's cleanup closes both */
    return 0;
}

/* wake_open connects queue q to a new pipe and a uv_poll on it; on failure the caller's
 * release() closes whatever was opened. */
static pc_err_t wake_open(pc_kafka_t *kafka, struct wake *wake, rd_kafka_queue_t *q,
                          pc_diag_t *diag)
{
    wake->kafka = kafka;
    if (pipe_open(wake->fds) != 0)
        return pc_fail(diag, PC_ERR_IO, "kafka: cannot create a wake-up pipe: %s", strerror(errno));
    int rc = uv_poll_init(kafka->loop, &wake->poll, wake->fds[0]);
    if (rc != 0)
        return pc_fail(diag, PC_ERR_IO, "kafka: cannot watch the wake-up pipe: %s",
                       uv_strerror(rc));
    wake->inited = true;
    kafka->open_handles++;
    wake->poll.data = wake;
    rd_kafka_queue_io_event_enable(q, wake->fds[1], "1", 1);
    uv_poll_start(&wake->poll, UV_READABLE, on_wake);
    return PC_OK;
}

static void wake_disable(struct wake *wake, rd_kafka_queue_t *q)
{
    if (q != NULL && wake->fds[1] >= 0)
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
}

static void pipe_close(struct wake *wake)
{
    for (int i = 0; i < 2; i++)
        if (wake->fds[i] >= 0)
            close(wake->fds[i]);
    wake->fds[0] = wake->fds[1] = -1;
}

static pc_err_t check_config(const pc_kafka_config_t *cfg, const pc_kafka_handlers_t *handlers,
                             pc_diag_t *diag)
{
    if (cfg == NULL || cfg->brokers == NULL || cfg->client_id == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka: brokers and client id are required (set them in the kafka "
                       "settings)");
    if (cfg->topic == NULL) /* a producer only */
        return PC_OK;
    if (cfg->group_id == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka: a consumer needs a group id (set kafka.group_id)");
    if (handlers == NULL || handlers->on_message == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "kafka: an on_message handler is required");
    return PC_OK;
}

pc_err_t pc_kafka_new(uv_loop_t *loop, const pc_kafka_config_t *cfg,
                      const pc_kafka_handlers_t *handlers, void *arg, pc_kafka_t **out,
                      pc_diag_t *diag)
{
    *out = NULL;
    pc_err_t err = check_config(cfg, handlers, diag);
    if (err != PC_OK)
        return err;
    pc_kafka_t *kafka = calloc(1, sizeof(*kafka));
    if (kafka == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "kafka: out of memory");
    kafka->loop = loop;
    if (handlers != NULL)
        kafka->handlers = *handlers;
    kafka->arg = arg;
    kafka->session_timeout_ms = cfg->session_timeout_ms ? cfg->session_timeout_ms : 10000;
    kafka->cwake.fds[0] = kafka->cwake.fds[1] = -1;
    kafka->pwake.fds[0] = kafka->pwake.fds[1] = -1;
    bool consumer = cfg->topic != NULL;
    kafka->topic = consumer ? strdup(cfg->topic) : NULL;
    kafka->offsets = pc_offsets_new();
    if ((consumer && kafka->topic == NULL) || kafka->offsets == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "kafka: out of memory");
        goto out_release;
    }
    kafka->cons_up = !consumer; /* a producer only is ready when its producer is */
    if ((consumer && (err = consumer_new(kafka, cfg, diag)) != PC_OK) ||
        (err = producer_new(kafka, cfg, diag)) != PC_OK ||
        (consumer && (err = wake_open(kafka, &kafka->cwake, kafka->qc, diag)) != PC_OK) ||
        (err = wake_open(kafka, &kafka->pwake, kafka->qp, diag)) != PC_OK)
        goto out_release;
    uv_timer_init(loop, &kafka->timer);
    kafka->timer.data = kafka;
    kafka->timer_inited = true;
    kafka->open_handles++;
    uv_timer_start(&kafka->timer, on_tick, TICK_MS, TICK_MS);
    *out = kafka;
    return PC_OK;

out_release:
    /* Frees now, or in the last close callback when a uv handle was already initialised. */
    kafka->phase = PHASE_RELEASED;
    release(kafka);
    return err;
}

pc_err_t pc_kafka_start(pc_kafka_t *kafka, pc_diag_t *diag)
{
    if (kafka->rkc == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "kafka: a producer only has nothing to start");
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, kafka->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(kafka->rkc, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr)
        return pc_fail(diag, PC_ERR_DEPENDENCY, "kafka: cannot subscribe to topic %s: %s",
                       kafka->topic, rd_kafka_err2str(rerr));
    return PC_OK;
}

/* ---- messages ------------------------------------------------------------------------ */

void pc_kafka_message_done(pc_kafka_t *kafka, rd_kafka_message_t *rkm)
{
    if (rkm == NULL)
        return;
    if (pc_offsets_done(kafka->offsets, rkm->partition, rkm->offset, rkm)) {
        int64_t next = pc_offsets_next_commit(kafka->offsets, rkm->partition);
        if (next >= 0)
            store_offset(kafka, rkm->partition, next);
    }
    if (kafka->held > 0)
        kafka->held--;
    rd_kafka_message_destroy(rkm);
}

void pc_kafka_message_release(pc_kafka_t *kafka, rd_kafka_message_t *rkm)
{
    if (rkm == NULL)
        return;
    if (kafka->held > 0)
        kafka->held--;
    rd_kafka_message_destroy(rkm);
}

/* unconst: librdkafka's produce API takes void * for key and value but, with
 * RD_KAFKA_MSG_F_COPY, only reads them. */
static void *unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

/* produce_err: a message the producer or the broker refuses for its size is not retried as it
 * is (it never fits); everything else may pass once the brokers are back. */
static pc_err_t produce_err(rd_kafka_resp_err_t rerr)
{
    if (rerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
        rerr == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE || rerr == RD_KAFKA_RESP_ERR_INVALID_RECORD)
        return PC_ERR_TOO_LARGE;
    return PC_ERR_DEPENDENCY;
}

pc_err_t pc_kafka_produce(pc_kafka_t *kafka, const char *topic, const void *key, size_t key_len,
                          const void *value, size_t value_len, pc_kafka_delivered_fn cb, void *arg)
{
    if (kafka->phase >= PHASE_PURGING)
        return PC_ERR_DEPENDENCY;
    struct delivery *delivery = malloc(sizeof(*delivery));
    if (delivery == NULL)
        return PC_ERR_NOMEM;
    delivery->cb = cb;
    delivery->arg = arg;
    rd_kafka_vu_t vu[] = {
        {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = topic},
        {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {unconst(key), key_len}},
        {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {unconst(value), value_len}},
        {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
        {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = delivery},
    };
    rd_kafka_error_t *error = rd_kafka_produceva(kafka->rkp, vu, sizeof(vu) / sizeof(vu[0]));
    if (error == NULL)
        return PC_OK;
    pc_err_t err = produce_err(rd_kafka_error_code(error));
    pc_fail(&kafka->last_error, err, "kafka: cannot produce to topic %s: %s", topic,
            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    free(delivery);
    return err;
}

pc_err_t pc_kafka_warm_topic(pc_kafka_t *kafka, const char *topic, pc_diag_t *diag)
{
    if (kafka->warm_count == sizeof(kafka->warm) / sizeof(kafka->warm[0]))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "kafka: too many topics to warm up");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(kafka->rkp, topic, NULL);
    if (rkt == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "kafka: cannot use topic %s: %s", topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
    kafka->warm[kafka->warm_count++] = rkt;
    return PC_OK;
}

/* ---- flow control and status ----------------------------------------------------------- */

static void pause_resume(pc_kafka_t *kafka, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (kafka->rkc == NULL || rd_kafka_assignment(kafka->rkc, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (pause)
        rd_kafka_pause_partitions(kafka->rkc, parts);
    else
        rd_kafka_resume_partitions(kafka->rkc, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

void pc_kafka_pause(pc_kafka_t *kafka)
{
    if (kafka->paused)
        return;
    kafka->paused = true;
    pause_resume(kafka, true);
}

void pc_kafka_resume(pc_kafka_t *kafka)
{
    if (!kafka->paused || kafka->phase != PHASE_RUNNING)
        return;
    kafka->paused = false;
    pause_resume(kafka, false);
}

bool pc_kafka_paused(const pc_kafka_t *kafka)
{
    return kafka->paused;
}

void pc_kafka_hold(pc_kafka_t *kafka)
{
    if (kafka->holding)
        return;
    kafka->holding = true;
    kafka->hold_since = uv_now(kafka->loop);
}

/* hold_check turns a hold of HOLD_PAUSE_MS into a pause (tick). */
static void hold_check(pc_kafka_t *kafka)
{
    if (!kafka->holding || kafka->paused || uv_now(kafka->loop) - kafka->hold_since < HOLD_PAUSE_MS)
        return;
    kafka->hold_paused = true;
    pc_kafka_pause(kafka);
}

void pc_kafka_release(pc_kafka_t *kafka)
{
    if (!kafka->holding)
        return;
    kafka->holding = false;
    if (kafka->hold_paused) {
        kafka->hold_paused = false;
        pc_kafka_resume(kafka);
    }
    /* librdkafka signals the pipe only when its queue turns non-empty, and it stayed non-empty
     * while held: wake the loop ourselves. Not a drain from here, since the caller may be
     * inside on_message. */
    if (kafka->cwake.fds[1] >= 0 && write(kafka->cwake.fds[1], "1", 1) < 0 && errno != EAGAIN)
        pc_fail(&kafka->last_error, PC_ERR_IO, "kafka: cannot wake the loop: %s", strerror(errno));
}

bool pc_kafka_holding(const pc_kafka_t *kafka)
{
    return kafka->holding;
}

bool pc_kafka_ready(const pc_kafka_t *kafka)
{
    return kafka->phase == PHASE_RUNNING && !kafka->refused && kafka->cons_up && kafka->prod_up;
}

int64_t pc_kafka_lag(pc_kafka_t *kafka)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (kafka->rkc == NULL || rd_kafka_assignment(kafka->rkc, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int64_t lag = parts->cnt == 0 ? 0 : -1;
    rd_kafka_position(kafka->rkc, parts);
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *part = &parts->elems[i];
        int64_t low, high;
        /* From the first message not finished: in flight and queued messages are work left,
         * as the group's lag (end - committed) counts them; the fetch position passed them. */
        int64_t from = pc_offsets_unfinished(kafka->offsets, part->partition);
        if (from < 0)
            from = part->offset;
        if (rd_kafka_get_watermark_offsets(kafka->rkc, part->topic, part->partition, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0 || from < 0)
            continue;
        lag = (lag < 0 ? 0 : lag) + (high > from ? high - from : 0);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

int pc_kafka_assigned_count(const pc_kafka_t *kafka)
{
    return pc_offsets_partition_count(kafka->offsets);
}

size_t pc_kafka_in_flight(const pc_kafka_t *kafka)
{
    return kafka->held;
}

const char *pc_kafka_last_error(const pc_kafka_t *kafka)
{
    return kafka->last_error.msg;
}

/* ---- close --------------------------------------------------------------------------- */

static void enter(pc_kafka_t *kafka, enum phase phase, uint64_t wait_ms)
{
    kafka->phase = phase;
    kafka->deadline = uv_now(kafka->loop) + wait_ms;
}

static bool expired(const pc_kafka_t *kafka)
{
    return uv_now(kafka->loop) >= kafka->deadline;
}

/* leave commits what is stored and starts leaving the group; the final revoke (our
 * rebalance_cb) arrives on the consumer queue, which the timer keeps draining. */
static void purge(pc_kafka_t *kafka);

static void leave(pc_kafka_t *kafka)
{
    if (kafka->rkc == NULL) { /* a producer only: no group to leave */
        purge(kafka);
        return;
    }
    /* librdkafka before 2.3 (Debian 12 has 2.0.2) aborts when a cooperative-sticky consumer
     * that joined the group is destroyed before its first assignment (the assignor's state is
     * still NULL: librdkafka issue 4312). A consumer stopped that early, once it has had a
     * member id (it may have joined; a broker restart can take the id away and leave the
     * assignor picked), waits for the assignment as long as leaving may take, and leaves after
     * it. One that never had a member id never joined: it leaves at once. */
    if (!kafka->assigned_once && kafka->phase != PHASE_JOINING &&
        (kafka->joined_once || has_member_id(kafka))) {
        enter(kafka, PHASE_JOINING, kafka->session_timeout_ms + LEAVE_SLACK_MS);
        return;
    }
    rd_kafka_commit(kafka->rkc, NULL, 1);
    /* After waiting for the assignment, leaving gets what is left of that wait, and at least
     * the slack: the two together stay within one session timeout and two slacks. */
    uint64_t joining_deadline = kafka->phase == PHASE_JOINING ? kafka->deadline : 0;
    enter(kafka, PHASE_LEAVING,
          joining_deadline != 0 ? LEAVE_SLACK_MS : kafka->session_timeout_ms + LEAVE_SLACK_MS);
    if (joining_deadline > kafka->deadline)
        kafka->deadline = joining_deadline;
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(kafka->rkc, kafka->qc);
    if (error != NULL) {
        pc_fail(&kafka->last_error, PC_ERR_DEPENDENCY, "kafka: leaving the group failed: %s",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        kafka->deadline = 0;
    }
}

/* purge gives up on what the producer still holds; the purged messages get failed delivery
 * reports (served by the drains), so every pc_kafka_produce caller hears back. */
static void purge(pc_kafka_t *kafka)
{
    enter(kafka, PHASE_PURGING, PURGE_WAIT_MS);
    if (rd_kafka_outq_len(kafka->rkp) > 0)
        rd_kafka_purge(kafka->rkp, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                       RD_KAFKA_PURGE_F_NON_BLOCKING);
}

/* close_step advances pc_kafka_close by one phase when the current one is finished. The last
 * phase waits for every message handed to on_message to come back: destroying the consumer
 * under a message the caller still holds would leave it dangling. */
static void close_step(pc_kafka_t *kafka)
{
    switch (kafka->phase) {
    case PHASE_FLUSHING:
        if ((rd_kafka_outq_len(kafka->rkp) == 0 && kafka->held == 0) || expired(kafka))
            leave(kafka);
        break;
    case PHASE_JOINING:
        if (kafka->assigned_once || expired(kafka))
            leave(kafka);
        break;
    case PHASE_LEAVING:
        if (rd_kafka_consumer_closed(kafka->rkc) || expired(kafka))
            purge(kafka);
        break;
    case PHASE_PURGING:
        if ((rd_kafka_outq_len(kafka->rkp) == 0 || expired(kafka)) && kafka->held == 0)
            release(kafka);
        break;
    default:
        break;
    }
}

void pc_kafka_close(pc_kafka_t *kafka, unsigned flush_ms, void (*closed)(void *arg), void *arg)
{
    if (kafka == NULL || kafka->phase != PHASE_RUNNING)
        return;
    kafka->closed = closed;
    kafka->closed_arg = arg;
    /* Stop intake: no new fetches, and messages already queued are dropped by dispatch. */
    pause_resume(kafka, true);
    kafka->paused = true;
    enter(kafka, PHASE_FLUSHING, flush_ms);
    uv_timer_start(&kafka->timer, on_tick, CLOSE_TICK_MS, CLOSE_TICK_MS);
}

static void free_kafka(pc_kafka_t *kafka)
{
    void (*closed)(void *arg) = kafka->closed;
    void *closed_arg = kafka->closed_arg;
    pipe_close(&kafka->cwake);
    pipe_close(&kafka->pwake);
    pc_offsets_free(kafka->offsets);
    free(kafka->topic);
    free(kafka);
    if (closed != NULL)
        closed(closed_arg);
}

static void on_handle_closed(uv_handle_t *handle)
{
    pc_kafka_t *kafka = handle->data;
    if (--kafka->open_handles == 0)
        free_kafka(kafka);
}

static void handle_close(pc_kafka_t *kafka, uv_handle_t *handle)
{
    handle->data = kafka;
    uv_close(handle, on_handle_closed);
}

/* release destroys the librdkafka handles (rd_kafka_destroy joins librdkafka's threads: a
 * brief block, accepted at shutdown) and closes the uv handles; kafka is freed in the last
 * close callback, or right here if none was opened. */
static void release(pc_kafka_t *kafka)
{
    bool consumer_closed = kafka->rkc != NULL && rd_kafka_consumer_closed(kafka->rkc);
    kafka->phase = PHASE_RELEASED;
    wake_disable(&kafka->cwake, kafka->qc);
    wake_disable(&kafka->pwake, kafka->qp);
    if (kafka->qc != NULL)
        rd_kafka_queue_destroy(kafka->qc);
    if (kafka->qp != NULL)
        rd_kafka_queue_destroy(kafka->qp);
    while (kafka->warm_count > 0)
        rd_kafka_topic_destroy(kafka->warm[--kafka->warm_count]);
    if (kafka->rkc != NULL)
        rd_kafka_destroy_flags(kafka->rkc,
                               consumer_closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (kafka->rkp != NULL)
        rd_kafka_destroy(kafka->rkp);
    kafka->qc = kafka->qp = NULL;
    kafka->rkc = kafka->rkp = NULL;
    if (kafka->open_handles == 0) {
        free_kafka(kafka);
        return;
    }
    if (kafka->cwake.inited)
        handle_close(kafka, (uv_handle_t *)&kafka->cwake.poll);
    if (kafka->pwake.inited)
        handle_close(kafka, (uv_handle_t *)&kafka->pwake.poll);
    if (kafka->timer_inited)
        handle_close(kafka, (uv_handle_t *)&kafka->timer);
}
