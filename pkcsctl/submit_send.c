/*
 * pkcsctl submit: the Kafka side - an idempotent producer that serves its delivery reports on
 * the calling thread (rd_kafka_poll while producing, rd_kafka_flush at the end), so that a
 * command-line run ends with an exact count of acknowledged messages, or a clear failure when
 * the brokers cannot be reached within the message timeout. --rate's pacing lives here too, as
 * it serves delivery reports while it waits. Main thread only.
 */
#include "submit_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "common.h"

#define CMD SUBMIT_CMD
#define PROGRESS_EVERY 1000
#define FLUSH_MARGIN_MS 10000

/* sleep_s sleeps secs (> 0), resuming after signals. */
static void sleep_s(double secs)
{
    struct timespec ts = {.tv_sec = (time_t)secs};
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void pkcsctl_pace(pkcsctl_sender_t *snd)
{
    if (snd->rate <= 0)
        return;
    double now = pc_mono_s();
    if (snd->paced == 0)
        snd->paced_first = now;
    /* Absolute deadlines: a late send does not push back the ones after it. */
    double due = snd->paced_first + (double)snd->paced / snd->rate;
    while (now < due) {
        double wait_ms = (due - now) * 1000.0;
        if (snd->rk != NULL && wait_ms >= 1.0)
            rd_kafka_poll(snd->rk, (int)wait_ms); /* returns early when it served a report */
        else
            sleep_s(due - now);
        now = pc_mono_s();
    }
    if (now - due > snd->max_behind)
        snd->max_behind = now - due;
    snd->paced_last = now;
    snd->paced++;
}

void pkcsctl_pace_report(const pkcsctl_sender_t *snd)
{
    if (snd->rate <= 0 || snd->paced == 0)
        return;
    double span = snd->paced_last - snd->paced_first;
    if (snd->paced < 2 || span <= 0) {
        fprintf(stderr, "paced at %g/s: %zu produced, too few to measure the achieved rate\n",
                snd->rate, snd->paced);
        return;
    }
    fprintf(stderr,
            "paced at %g/s: %zu requests produced over %.3f s from the first to the last: "
            "achieved %.2f/s; at most %.0f ms behind schedule\n",
            snd->rate, snd->paced, span, (double)(snd->paced - 1) / span, snd->max_behind * 1000.0);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    pkcsctl_sender_t *snd = opaque;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snd->delivered++;
        return;
    }
    if (snd->failed++ == 0)
        snprintf(snd->first_failure, sizeof(snd->first_failure), "%s", rd_kafka_err2str(msg->err));
}

/* on_error shows each kind of Kafka error once (they repeat while a broker is down). */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pkcsctl_sender_t *snd = opaque;
    char fatal[256];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        pkcsctl_error(CMD, "kafka: fatal error: %s", fatal);
    } else if (err + 256 >= 0 && err + 256 < (int)sizeof(snd->shown) && !snd->shown[err + 256]) {
        pkcsctl_error(CMD, "kafka: %s", reason);
        snd->shown[err + 256] = 1;
    }
}

/* librdkafka's own log repeats what on_error reports; keep the terminal readable. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {}

int pkcsctl_producer_new(pkcsctl_sender_t *snd, long timeout_s)
{
    char errstr[512], timeout_ms[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(timeout_ms, sizeof(timeout_ms), "%ld", timeout_s * 1000);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", snd->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", timeout_ms, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "pkcsctl-submit", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        return pkcsctl_error(CMD, "kafka configuration: %s", errstr);
    }
    rd_kafka_conf_set_opaque(conf, snd);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    snd->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (snd->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return pkcsctl_error(CMD, "cannot create a Kafka producer for %s: %s", snd->brokers,
                             errstr);
    }
    return 0;
}

static void progress(pkcsctl_sender_t *snd)
{
    double secs = pc_mono_s() - snd->started;
    fprintf(stderr, "submitted %zu requests in %.1f s (%.0f/s)\n", snd->produced, secs,
            secs > 0 ? (double)snd->produced / secs : 0.0);
}

int pkcsctl_produce(pkcsctl_sender_t *snd, const char *key, unsigned char *value, size_t len)
{
    rd_kafka_resp_err_t err;
    size_t key_len = key != NULL ? strlen(key) : 0;
    const char *msg_key = key_len > 0 ? key : NULL; /* no key: librdkafka picks a partition */
    if (snd->failed > 0)
        return pkcsctl_error(CMD, "stopped: a message was not delivered (%s)", snd->first_failure);
    for (;;) {
        err = rd_kafka_producev(snd->rk, RD_KAFKA_V_TOPIC(snd->topic),
                                RD_KAFKA_V_KEY(msg_key, key_len), RD_KAFKA_V_VALUE(value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(snd->rk, 100);
    }
    rd_kafka_poll(snd->rk, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return pkcsctl_error(CMD, "cannot produce to topic %s: %s", snd->topic,
                             rd_kafka_err2str(err));
    if (++snd->produced % PROGRESS_EVERY == 0)
        progress(snd);
    return 0;
}

int pkcsctl_producer_finish(pkcsctl_sender_t *snd, long timeout_s, int rc)
{
    rd_kafka_flush(snd->rk, (int)(timeout_s * 1000 + FLUSH_MARGIN_MS));
    int waiting = rd_kafka_outq_len(snd->rk);
    double secs = pc_mono_s() - snd->started;
    fprintf(stderr, "submitted %zu requests in %.1f s (%.0f/s)\n", snd->delivered, secs,
            secs > 0 ? (double)snd->delivered / secs : 0.0);
    pkcsctl_pace_report(snd);
    if (snd->failed > 0 || waiting > 0)
        rc = pkcsctl_error(CMD,
                           "%zu of %zu messages were not delivered to topic %s (%s); check "
                           "that Kafka is running and reachable at %s (--brokers or "
                           "PC_KAFKA_BROKERS) and that the topic exists",
                           snd->produced - snd->delivered, snd->produced, snd->topic,
                           snd->failed > 0 ? snd->first_failure : "no acknowledgement",
                           snd->brokers);
    return rc;
}
