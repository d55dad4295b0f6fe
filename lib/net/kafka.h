/*
 * kafka.h - librdkafka on the worker's libuv loop: a consumer (cooperative rebalancing,
 * optional static membership) and a separate idempotent producer. Each handle's queue signals
 * a non-blocking pipe watched by uv_poll and is drained to empty on every wake-up; a periodic
 * timer polls as well. Offsets are stored only for the contiguous completed prefix of each
 * partition (pc_kafka_message_done), and committed by librdkafka's auto-commit and on revoke
 * and close. Loop thread only.
 */
#ifndef PC_KAFKA_H
#define PC_KAFKA_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "kafka_security.h"
#include "pc_err.h"

typedef struct pc_kafka pc_kafka_t;

typedef struct pc_kafka_config {
    const char *brokers;                 /* "127.0.0.1:9092" */
    const char *group_id;                /* "pkcs-workers" */
    const char *group_instance_id;       /* static membership; NULL = dynamic */
    const char *client_id;               /* the worker id */
    const char *topic;                   /* the requests topic to subscribe to */
    unsigned session_timeout_ms;         /* default 10000 */
    unsigned max_poll_interval_ms;       /* default 300000 */
    const pc_kafka_security_t *security; /* TLS and SASL for both handles; NULL: plaintext */
    /* extra librdkafka properties, "name=value" strings, NULL-terminated; may be NULL. A
     * "consumer." or "producer." prefix sets the property on that handle only
     * ("producer.message.timeout.ms=60000"); otherwise it is set on both. */
    const char *const *extra;
} pc_kafka_config_t;

typedef struct pc_kafka_handlers {
    /* One consumed message; the callee owns rkm and must pass it to pc_kafka_message_done()
     * (which destroys it) exactly once. Messages with errors are not passed here. */
    void (*on_message)(void *arg, rd_kafka_message_t *rkm);
    /* Partitions are being taken away: stop starting work for them. Called after they have
     * left pc_kafka_assigned_count, before their completed prefix is committed and they are
     * unassigned. */
    void (*on_revoked)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    /* Partitions were added; pc_kafka_assigned_count already counts them. */
    void (*on_assigned)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    /* The brokers became reachable (up) or not; may be NULL. */
    void (*on_state)(void *arg, bool up);
    /* The brokers refused our credentials, or their certificate is not trusted
     * (pc_kafka_refusal): librdkafka would retry forever, so the program should stop. diag names
     * the settings to fix. Called at most once; may be NULL (the error then only shows in
     * pc_kafka_last_error). */
    void (*on_refused)(void *arg, const pc_diag_t *diag);
} pc_kafka_handlers_t;

/* Delivery report of one produced message, on the loop thread: PC_OK when the broker has it,
 * PC_ERR_DEPENDENCY otherwise (diag says why; the caller produces again later). */
typedef void (*pc_kafka_delivered_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* pc_kafka_new creates both handles (not yet subscribed); *out is the caller's, to be ended
 * with pc_kafka_close. With cfg->topic NULL it makes a producer only (a coordinator that
 * publishes): group_id and handlers are then unused (handlers may be NULL), and
 * pc_kafka_start is not called. PC_ERR_INVALID_PARAM for a missing or rejected setting (diag names
 * it); on failure, uv handles already opened are closed on the loop (run it before uv_loop_close).
 */
pc_err_t pc_kafka_new(uv_loop_t *loop, const pc_kafka_config_t *cfg,
                      const pc_kafka_handlers_t *handlers, void *arg, pc_kafka_t **out,
                      pc_diag_t *diag);

/* pc_kafka_start subscribes to the topic; messages then arrive through on_message. (Both
 * handles are polled from pc_kafka_new on, so delivery reports flow before start too.) */
pc_err_t pc_kafka_start(pc_kafka_t *kafka, pc_diag_t *diag);

/* pc_kafka_message_done marks rkm's offset completed (its result was delivered, or it was
 * dead-lettered) and destroys rkm. Stores the offset after the contiguous completed prefix of
 * its partition. For a partition no longer assigned it only destroys rkm. */
void pc_kafka_message_done(pc_kafka_t *kafka, rd_kafka_message_t *rkm);

/* pc_kafka_message_release gives rkm back WITHOUT marking it completed (work abandoned on a
 * rebalance or shutdown) and destroys it: its offset is never stored, so the partition's next
 * owner, or this worker after a restart, gets the message again. */
void pc_kafka_message_release(pc_kafka_t *kafka, rd_kafka_message_t *rkm);

/* pc_kafka_hold stops handing out messages while the application has no room (they wait in
 * librdkafka's queue, fetching goes on); pc_kafka_release hands them out again from the next
 * loop turn. Cheap both ways: the back-pressure for a busy worker. A hold that lasts 3 s
 * becomes a pause until the release, so that group events keep being served. */
void pc_kafka_hold(pc_kafka_t *kafka);
void pc_kafka_release(pc_kafka_t *kafka);
bool pc_kafka_holding(const pc_kafka_t *kafka);

/* pc_kafka_pause / pc_kafka_resume stop and restart fetching on every assigned partition, and
 * on partitions assigned later as well; the position is kept, nothing is skipped. What was
 * fetched and not yet handed out is dropped and fetched again after the resume. */
void pc_kafka_pause(pc_kafka_t *kafka);
void pc_kafka_resume(pc_kafka_t *kafka);
bool pc_kafka_paused(const pc_kafka_t *kafka);

/* pc_kafka_warm_topic has the producer look topic up now (librdkafka fetches its metadata in
 * the background), so that the first message to it is not held back for that: about 0.9 s
 * for a new worker's first results otherwise. Up to 4 topics. */
pc_err_t pc_kafka_warm_topic(pc_kafka_t *kafka, const char *topic, pc_diag_t *diag);

/* pc_kafka_produce copies key and value and produces them to topic (partitioned by key);
 * cb is called once with the delivery report: PC_OK, PC_ERR_TOO_LARGE when the producer or the
 * broker refuses the message for its size (it will never pass as it is), PC_ERR_DEPENDENCY for
 * anything that may pass later. Returns PC_ERR_TOO_LARGE at once for a message over the
 * producer's own limit (cb does not run then). */
pc_err_t pc_kafka_produce(pc_kafka_t *kafka, const char *topic, const void *key, size_t key_len,
                          const void *value, size_t value_len, pc_kafka_delivered_fn cb, void *arg);

/* pc_kafka_ready tells whether both handles reach a broker (for /readyz). */
bool pc_kafka_ready(const pc_kafka_t *kafka);

/* pc_kafka_lag sums, over assigned partitions, the high watermark minus the first message not
 * finished (in flight or waiting in the consumer's queue count, as in the group's lag), from
 * librdkafka's cached values (never blocks); -1 when unknown. The high watermark comes with
 * each fetch response, so it goes stale while partitions are paused; partitions with nothing
 * consumed since assignment count from the consumer position, or are left out without one. */
int64_t pc_kafka_lag(pc_kafka_t *kafka);

/* pc_kafka_assigned_count: number of partitions currently assigned. Inside on_revoked it
 * already leaves out the partitions being revoked; inside on_assigned it counts the new ones. */
int pc_kafka_assigned_count(const pc_kafka_t *kafka);

/* pc_kafka_in_flight: messages given to on_message and not yet passed to
 * pc_kafka_message_done. */
size_t pc_kafka_in_flight(const pc_kafka_t *kafka);

/* pc_kafka_last_error is the last Kafka error seen (for status pages and logs), "" if none;
 * borrowed, valid until the next call into the module. */
const char *pc_kafka_last_error(const pc_kafka_t *kafka);

/* pc_kafka_close stops intake, flushes the producer (at most flush_ms), commits the stored
 * offsets, leaves the group and frees kafka when all handles are closed; closed (may be NULL)
 * is then called. Non-blocking: the steps run on the loop (only the final rd_kafka_destroy
 * blocks briefly). Messages still held by the caller must be passed to pc_kafka_message_done
 * (kafka stays valid until closed is called); close waits for them after leaving the group.
 * Delivery reports for messages not delivered within flush_ms come back as
 * PC_ERR_DEPENDENCY. A second call is ignored. */
void pc_kafka_close(pc_kafka_t *kafka, unsigned flush_ms, void (*closed)(void *arg), void *arg);

#endif
