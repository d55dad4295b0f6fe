/*
 * pkcsctl revoke --wait: a consumer of the results topic that waits for the result of one
 * request. It notes each partition's high watermark before the request is sent and reads only
 * from there, so it neither misses the result nor scans the topic's history; it uses no consumer
 * group (partitions are assigned directly) and commits nothing. Main thread only, blocking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <openssl/rand.h>

#include "clock.h"
#include "common.h"
#include "results.h"
#include "submit_int.h"

#define CMD REVOKE_CMD
#define POLL_MS 200

struct pkcsctl_waiter {
    rd_kafka_t *rk;
    const char *topic;
    const char *brokers;
    char last_error[256];
};

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pkcsctl_waiter_t *w = opaque;
    snprintf(w->last_error, sizeof(w->last_error), "%s", reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {}

static rd_kafka_t *consumer_new(pkcsctl_waiter_t *w)
{
    unsigned char rnd[6] = {0};
    char group[64], errstr[512];
    rd_kafka_t *rk = NULL;
    /* Never joined (partitions are assigned), but librdkafka wants a group id for a consumer. */
    RAND_bytes(rnd, sizeof(rnd));
    snprintf(group, sizeof(group), "pkcsctl-revoke-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", w->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "pkcsctl-revoke", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        pkcsctl_error(CMD, "kafka configuration: %s", errstr);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        pkcsctl_error(CMD, "cannot create a Kafka consumer for %s: %s", w->brokers, errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* partition_count asks the brokers how many partitions the topic has; 0 after printing why. */
static int partition_count(pkcsctl_waiter_t *w, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->rk, w->topic, NULL);
    int count = 0;
    if (rkt == NULL) {
        pkcsctl_error(CMD, "cannot use topic %s: %s", w->topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(w->rk, 0, rkt, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        pkcsctl_error(CMD,
                      "cannot read the partitions of %s from %s: %s; check that Kafka is "
                      "running there (--brokers or PC_KAFKA_BROKERS)",
                      w->topic, w->brokers, rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
             md->topics[0].partition_cnt == 0)
        pkcsctl_error(CMD,
                      "topic %s does not exist on %s; give the results topic with "
                      "--results-topic",
                      w->topic, w->brokers);
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
            rd_kafka_query_watermark_offsets(w->rk, w->topic, p, &lo, &hi, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = pkcsctl_error(CMD, "cannot read where %s [%d] ends: %s", w->topic, p,
                               rd_kafka_err2str(err));
        else
            rd_kafka_topic_partition_list_add(parts, w->topic, p)->offset = hi;
    }
    if (rc == 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(w->rk, parts);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = pkcsctl_error(CMD, "cannot read %s: %s", w->topic, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

int pkcsctl_waiter_new(const char *brokers, const char *topic, long timeout_s,
                       pkcsctl_waiter_t **out)
{
    pkcsctl_waiter_t *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (w == NULL)
        return pkcsctl_error(CMD, "out of memory");
    w->brokers = brokers;
    w->topic = topic;
    if ((w->rk = consumer_new(w)) == NULL || assign_from_end(w, (int)(timeout_s * 1000)) != 0) {
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
            snprintf(w->last_error, sizeof(w->last_error), "%s", rd_kafka_message_errstr(msg));
        return NULL;
    }
    Pkcs__V1__Result *res = pkcs__v1__result__unpack(NULL, msg->len, msg->payload);
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
    while (*res == NULL && pc_mono_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->rk, POLL_MS);
        if (msg == NULL)
            continue;
        *res = matching(w, msg, request_id);
        rd_kafka_message_destroy(msg);
    }
    if (*res != NULL)
        return 0;
    return pkcsctl_error(CMD,
                         "no result for request %s on %s after %ld s%s%s; check that workers "
                         "are running (pkcsctl status) and that they accept the signer key, or "
                         "wait longer with --timeout",
                         request_id, w->topic, timeout_s, w->last_error[0] ? "; last error: " : "",
                         w->last_error);
}

void pkcsctl_waiter_free(pkcsctl_waiter_t *w)
{
    if (w == NULL)
        return;
    if (w->rk != NULL) {
        rd_kafka_consumer_close(w->rk);
        rd_kafka_destroy(w->rk);
    }
    free(w);
}
