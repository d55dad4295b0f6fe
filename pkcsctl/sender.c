/*
 * sender.c - signed requests to the requests topic, for `pkcsctl submit` and `pkcsctl revoke`:
 * each request stamped, signed and produced by an idempotent producer that serves its delivery
 * reports on the calling thread (rd_kafka_poll while producing, rd_kafka_flush at the end), so
 * that a command-line run ends with an exact count of acknowledged messages, or a clear failure
 * when the brokers cannot be reached within the message timeout. --rate's pacing lives here
 * too, as it serves delivery reports while it waits, and loading the signer's key. Main thread
 * only.
 */
#include "sender.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "common.h"
#include "file.h"
#include "pbjson.h"

#define PROGRESS_EVERY 1000
#define FLUSH_MARGIN_MS 10000
#define PASSPHRASE_MAX 4096
#define FLUSH_STEP_MS 200

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
        if (snd->kafka.rk != NULL && wait_ms >= 1.0)
            rd_kafka_poll(snd->kafka.rk, (int)wait_ms); /* returns early when it served a report */
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
    pkcsctl_kafka_t *kafka = opaque;
    pkcsctl_sender_t *snd = kafka->owner;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snd->delivered++;
        return;
    }
    if (snd->failed++ == 0)
        snprintf(snd->first_failure, sizeof(snd->first_failure), "%s", rd_kafka_err2str(msg->err));
}

int pkcsctl_producer_new(pkcsctl_sender_t *snd, long timeout_s)
{
    char timeout_ms[32];
    snprintf(timeout_ms, sizeof(timeout_ms), "%ld", timeout_s * 1000);
    /* The topic's own limit (max.message.bytes) decides what fits; the producer's default of
     * 1 MB would refuse bigger messages first, which a topic set to take them accepts. */
    const char *const settings[] = {
        "enable.idempotence", "true", "message.timeout.ms", timeout_ms, "message.max.bytes",
        "16777216",           NULL};
    snd->kafka = (pkcsctl_kafka_t){.cmd = snd->cmd, .brokers = snd->brokers, .owner = snd};
    rd_kafka_conf_t *conf = pkcsctl_kafka_conf(&snd->kafka, settings);
    if (conf == NULL)
        return 1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (pkcsctl_kafka_new(&snd->kafka, RD_KAFKA_PRODUCER, conf) != 0)
        return 1;
    snd->started = pc_mono_s();
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
    /* no key: librdkafka picks a partition. RD_KAFKA_V_KEY casts to void * (the key is only
     * copied), which would drop the const qualifier under -Wcast-qual. */
    void *msg_key = key_len > 0 ? (void *)(uintptr_t)key : NULL;
    if (snd->failed > 0)
        return pkcsctl_error(snd->cmd, "stopped: a message was not delivered (%s)",
                             snd->first_failure);
    if (snd->kafka.refused)
        return pkcsctl_error(snd->cmd, "stopped: %s", snd->kafka.last_error);
    for (;;) {
        err = rd_kafka_producev(snd->kafka.rk, RD_KAFKA_V_TOPIC(snd->topic),
                                RD_KAFKA_V_KEY(msg_key, key_len), RD_KAFKA_V_VALUE(value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(snd->kafka.rk, 100);
    }
    rd_kafka_poll(snd->kafka.rk, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return pkcsctl_error(snd->cmd, "cannot produce to topic %s: %s", snd->topic,
                             rd_kafka_err2str(err));
    if (++snd->produced % PROGRESS_EVERY == 0)
        progress(snd);
    return 0;
}

int pkcsctl_producer_finish(pkcsctl_sender_t *snd, long timeout_s, int rc)
{
    /* in steps, so that a refusal (seen by the error callback the flush serves) ends the wait */
    double deadline = pc_mono_s() + (double)timeout_s + FLUSH_MARGIN_MS / 1000.0;
    while (rd_kafka_outq_len(snd->kafka.rk) > 0 && !snd->kafka.refused && pc_mono_s() < deadline)
        rd_kafka_flush(snd->kafka.rk, FLUSH_STEP_MS);
    if (snd->kafka.refused) {
        rd_kafka_purge(snd->kafka.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(snd->kafka.rk, FLUSH_STEP_MS); /* serves the purged reports */
    }
    int waiting = rd_kafka_outq_len(snd->kafka.rk);
    double secs = pc_mono_s() - snd->started;
    fprintf(stderr, "submitted %zu requests in %.1f s (%.0f/s)\n", snd->delivered, secs,
            secs > 0 ? (double)snd->delivered / secs : 0.0);
    pkcsctl_pace_report(snd);
    if (snd->kafka.refused)
        rc = pkcsctl_error(snd->cmd, "%zu of %zu messages were not delivered to topic %s: %s",
                           snd->produced - snd->delivered, snd->produced, snd->topic,
                           snd->kafka.last_error);
    else if (snd->failed > 0 || waiting > 0)
        rc = pkcsctl_error(snd->cmd,
                           "%zu of %zu messages were not delivered to topic %s (%s); check "
                           "that Kafka is running and reachable at %s (--brokers or "
                           "PC_KAFKA_BROKERS) and that the topic exists",
                           snd->produced - snd->delivered, snd->produced, snd->topic,
                           snd->failed > 0 ? snd->first_failure : "no acknowledgement",
                           snd->brokers);
    pkcsctl_kafka_close(&snd->kafka);
    return rc;
}

static int pack(const pkcsctl_sender_t *snd, const ProtobufCMessage *msg, unsigned char **out,
                size_t *len)
{
    *out = malloc(protobuf_c_message_get_packed_size(msg) + 1);
    if (*out == NULL)
        return pkcsctl_error(snd->cmd, "out of memory");
    *len = protobuf_c_message_pack(msg, *out);
    return 0;
}

/* encode_unsigned makes a SignedRequest without a signature (--unsigned). */
static int encode_unsigned(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req, unsigned char **out,
                           size_t *len)
{
    Pkcs__V1__SignedRequest sr;
    unsigned char *body = NULL;
    pkcs__v1__signed_request__init(&sr);
    if (pack(snd, &req->base, &body, &sr.request.len) != 0)
        return 1;
    sr.request.data = body;
    if (snd->key_id != NULL)
        sr.signer_key_id = snd->key_id;
    if (snd->algorithm != NULL)
        sr.signature_algorithm = snd->algorithm;
    int rc = pack(snd, &sr.base, out, len);
    free(body);
    return rc;
}

/* corrupt flips one bit of the signature in a serialized SignedRequest (--corrupt-signature). */
static int corrupt(const pkcsctl_sender_t *snd, unsigned char **value, size_t *len)
{
    Pkcs__V1__SignedRequest *sr = pkcs__v1__signed_request__unpack(NULL, *len, *value);
    int rc = 1;
    if (sr == NULL || sr->signature.len == 0)
        return pkcsctl_error(snd->cmd, "--corrupt-signature: no signature to corrupt");
    sr->signature.data[sr->signature.len / 2] ^= 0x01;
    free(*value);
    *value = NULL;
    rc = pack(snd, &sr->base, value, len);
    pkcs__v1__signed_request__free_unpacked(sr, NULL);
    return rc;
}

/* print_request is --dry-run's pkcsctl_send_request: the request's JSON line on stdout. */
static int print_request(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req)
{
    char *text = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_pbjson_encode_string(&req->base, false, &text, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(snd->cmd, err, &diag);
    printf("%s\n", text);
    free(text);
    snd->produced++;
    return 0;
}

int pkcsctl_signer_load(pkcsctl_sender_t *snd, const char *key_file, const char *passphrase_file)
{
    unsigned char *passphrase = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    pc_err_t err = PC_OK;

    if (passphrase_file != NULL) {
        err = pc_file_read_secret(passphrase_file, PASSPHRASE_MAX, &passphrase, &len, &diag);
        if (err != PC_OK) {
            pc_diag_prefix(&diag, "--signer-key-passphrase-file");
            return pkcsctl_diag_error(snd->cmd, err, &diag);
        }
        while (len > 0 && (passphrase[len - 1] == '\n' || passphrase[len - 1] == '\r'))
            passphrase[--len] = '\0';
    }
    err = pc_signer_new(snd->key_id, snd->algorithm != NULL ? snd->algorithm : "ed25519", key_file,
                        (const char *)passphrase, &snd->signer, &diag);
    OPENSSL_clear_free(passphrase, len);
    return err == PC_OK ? 0 : pkcsctl_diag_error(snd->cmd, err, &diag);
}

int pkcsctl_send_request(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req)
{
    unsigned char *value = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    int rc = 1;
    const char *key = snd->message_key != NULL                      ? snd->message_key
                      : req->device_id != NULL && req->device_id[0] ? req->device_id
                                                                    : req->user_id;
    Pkcs__V1__Request stamped;
    pkcsctl_pace(snd);
    /* Stamped after the wait and before signing: the signature covers the exact bytes. */
    if (req->created_at_ms == 0) {
        stamped = *req;
        stamped.created_at_ms = pc_now_ms();
        req = &stamped;
    }
    if (snd->dry_run)
        return print_request(snd, req);
    if (snd->unsigned_requests) {
        if (encode_unsigned(snd, req, &value, &len) != 0)
            goto out_free_value;
    } else {
        pc_err_t err = pc_signer_sign(snd->signer, req, &value, &len, &diag);
        if (err != PC_OK) {
            pc_diag_prefix(&diag, req->request_id);
            rc = pkcsctl_diag_error(snd->cmd, err, &diag);
            goto out_free_value;
        }
        if (snd->corrupt_signature && corrupt(snd, &value, &len) != 0)
            goto out_free_value;
    }
    rc = pkcsctl_produce(snd, key, value, len);
out_free_value:
    free(value);
    return rc;
}
