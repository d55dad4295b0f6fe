/*
 * results.c - a consumer of the results topic that waits for the result of one request (for
 * `pkcsctl revoke --wait`). It notes each partition's high watermark before the request is sent
 * and reads only from there, so it neither misses the result nor scans the topic's history; it
 * uses no consumer group (partitions are assigned directly) and commits nothing. Kafka errors
 * are kept, not printed, and named if no result comes. Main thread only, blocking.
 */
#include "results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "common.h"
#include "result.h"

#define POLL_MS 200

struct pkcsctl_waiter {
    pkcsctl_kafka_t kafka; /* quiet: errors are kept for the verdict */
    const char *topic;
};

/* consumer_new makes the consumer. It never joins its group (partitions are assigned), but
 * librdkafka wants a group id for a consumer. */
static int consumer_new(pkcsctl_waiter_t *w)
{
    char group[64];
    if (pkcsctl_kafka_group_id(&w->kafka, group, sizeof(group)) != 0)
        return 1;
    const char *const settings[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = pkcsctl_kafka_conf(&w->kafka, settings);
    return conf == NULL ? 1 : pkcsctl_kafka_new(&w->kafka, RD_KAFKA_CONSUMER, conf);
}

/* partition_count asks the brokers how many partitions the topic has; 0 after printing why. */
static int partition_count(pkcsctl_waiter_t *w, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->kafka.rk, w->topic, NULL);
    int count = 0;
    if (rkt == NULL) {
        pkcsctl_error(w->kafka.cmd, "cannot use topic %s: %s", w->topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(w->kafka.rk, 0, rkt, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        pkcsctl_error(w->kafka.cmd,
                      "cannot read the partitions of %s from %s: %s; check that Kafka is "
                      "running there (--brokers or PC_KAFKA_BROKERS)",
                      w->topic, w->kafka.brokers, rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
             md->topics[0].partition_cnt == 0)
        pkcsctl_error(w->kafka.cmd,
                      "topic %s does not exist on %s; give the results topic with "
                      "--results-topic",
                      w->topic, w->kafka.brokers);
    else
        count = md->topics[0].partition_cnt;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return count;
}

/* assign_from_end assigns every partition of the topic at its current high watermark. */
static int assign_from_end(pkcsctl_waiter_t *w, int timeout_ms)
{
    int count = partition_count(w, timeout_ms), rc = 0;
    if (count == 0)
        return 1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(count);
    for (int p = 0; p < count && rc == 0; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(w->kafka.rk, w->topic, p, &lo, &hi, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = pkcsctl_error(w->kafka.cmd, "cannot read where %s [%d] ends: %s", w->topic, p,
                               rd_kafka_err2str(err));
        else
            rd_kafka_topic_partition_list_add(parts, w->topic, p)->offset = hi;
    }
    if (rc == 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(w->kafka.rk, parts);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = pkcsctl_error(w->kafka.cmd, "cannot read %s: %s", w->topic, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

int pkcsctl_waiter_new(const char *cmd, const char *brokers, const char *topic, long timeout_s,
                       pkcsctl_waiter_t **out)
{
    pkcsctl_waiter_t *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (w == NULL)
        return pkcsctl_error(cmd, "out of memory");
    w->kafka = (pkcsctl_kafka_t){.cmd = cmd, .brokers = brokers, .quiet = true};
    w->topic = topic;
    if (consumer_new(w) != 0 || assign_from_end(w, (int)(timeout_s * 1000)) != 0) {
        pkcsctl_waiter_free(w);
        return 1;
    }
    *out = w;
    return 0;
}

/* matching decodes msg and returns it when it is the result for request_id, else NULL. */
static Pkcs__V1__Result *matching(pkcsctl_waiter_t *w, const rd_kafka_message_t *msg,
                                  const char *request_id)
{
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pkcsctl_kafka_error(&w->kafka, msg->err, rd_kafka_message_errstr(msg));
        return NULL;
    }
    Pkcs__V1__SignedResult *sealed = NULL;
    Pkcs__V1__Result *res = NULL;
    pc_diag_t diag;
    pc_result_open(msg->payload, msg->len, &sealed, &res, &diag);
    if (sealed != NULL)
        pkcs__v1__signed_result__free_unpacked(sealed, NULL);
    if (res != NULL && strcmp(res->request_id, request_id) == 0)
        return res;
    if (res != NULL)
        pkcs__v1__result__free_unpacked(res, NULL);
    return NULL;
}

int pkcsctl_waiter_wait(pkcsctl_waiter_t *w, const char *request_id, long timeout_s,
                        Pkcs__V1__Result **res)
{
    double deadline = pc_mono_s() + (double)timeout_s;
    *res = NULL;
    while (*res == NULL && !w->kafka.refused && pc_mono_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->kafka.rk, POLL_MS);
        if (msg == NULL)
            continue;
        *res = matching(w, msg, request_id);
        rd_kafka_message_destroy(msg);
    }
    if (*res != NULL)
        return 0;
    if (w->kafka.refused)
        return pkcsctl_error(w->kafka.cmd, "stopped: %s", w->kafka.last_error);
    return pkcsctl_error(w->kafka.cmd,
                         "no result for request %s on %s after %ld s%s%s; check that workers "
                         "are running (pkcsctl status) and that they accept the signer key, or "
                         "wait longer with --timeout",
                         request_id, w->topic, timeout_s,
                         w->kafka.last_error[0] ? "; last error: " : "", w->kafka.last_error);
}

void pkcsctl_waiter_free(pkcsctl_waiter_t *w)
{
    if (w == NULL)
        return;
    pkcsctl_kafka_close(&w->kafka);
    free(w);
}
