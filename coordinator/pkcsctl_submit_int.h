/*
 * pkcsctl_submit_int.h - what `pkcsctl submit` (pkcsctl_submit.c: options, inputs, Kafka) and
 * its request generator (pkcsctl_gen.c) share. Main thread only.
 */
#ifndef PKCSCTL_SUBMIT_INT_H
#define PKCSCTL_SUBMIT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "keygen.h"
#include "pkcs.pb-c.h"

#define SUBMIT_CMD "submit"

/* The producing side of one `pkcsctl submit` run. */
typedef struct pkcsctl_sender {
    rd_kafka_t *rk;
    const char *topic;
    const char *brokers;
    pc_signer_t *signer;      /* NULL with --unsigned */
    char *key_id;             /* --signer-key-id, carried as is by --unsigned */
    char *algorithm;          /* --signer-algorithm, likewise */
    bool unsigned_requests;   /* --unsigned */
    bool corrupt_signature;   /* --corrupt-signature */
    size_t produced;          /* handed to librdkafka */
    size_t delivered;         /* acknowledged by the brokers */
    size_t failed;            /* delivery reports with an error */
    char first_failure[256];  /* the first failed delivery's reason */
    unsigned char shown[512]; /* Kafka error codes already shown (+256), to show each once */
    double started;           /* monotonic seconds */
} pkcsctl_sender_t;

/* The generator's options (--template ... --count N). */
typedef struct pkcsctl_gen {
    const char *template_path;
    long count;
    const char *prefix;   /* --id-prefix */
    const char *keys_dir; /* --device-keys, may be NULL */
    pc_key_alg_t key_alg; /* --key-alg */
} pkcsctl_gen_t;

/* pkcsctl_producer_new makes snd->rk for snd->brokers; messages time out after timeout_s.
 * Returns 0, or 1 after printing the error. */
int pkcsctl_producer_new(pkcsctl_sender_t *snd, long timeout_s);

/* pkcsctl_produce hands one message (copied) to librdkafka, waiting while its queue is full,
 * and shows progress every 1000 messages. Refuses once a delivery has failed. Returns 0 or 1. */
int pkcsctl_produce(pkcsctl_sender_t *snd, const char *key, unsigned char *value, size_t len);

/* pkcsctl_producer_finish waits for every delivery report (bounded by the timeout), prints
 * "submitted N requests in X s (Y/s)" and returns rc, or 1 when a message was not delivered. */
int pkcsctl_producer_finish(pkcsctl_sender_t *snd, long timeout_s, int rc);

/* pkcsctl_send_request signs req (unless --unsigned) and produces it, keyed by device id, else
 * user id. Returns 0, or 1 after printing what went wrong. */
int pkcsctl_send_request(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req);

/* pkcsctl_load_request reads one Request in its JSON form; the caller frees *req with
 * protobuf_c_message_free_unpacked. Returns 0, or 1 after printing the error. */
int pkcsctl_load_request(const char *path, Pkcs__V1__Request **req);

/* pkcsctl_generate produces gen->count requests made from a template. Returns 0 or 1. */
int pkcsctl_generate(pkcsctl_sender_t *snd, const pkcsctl_gen_t *gen);

/* pkcsctl_now returns monotonic seconds. */
double pkcsctl_now(void);

#endif
