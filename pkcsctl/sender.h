/*
 * sender.h - signed requests to the requests topic, as an upstream system sends them: what
 * `pkcsctl submit` and `pkcsctl revoke` share. A blocking, idempotent producer that serves its
 * delivery reports on the calling thread, so that a run ends with an exact count of acknowledged
 * messages; the signing (or the test options that skip or spoil it, or --dry-run's printing);
 * and --rate's pacing, which serves delivery reports while it waits. Main thread only.
 */
#ifndef PKCSCTL_SENDER_H
#define PKCSCTL_SENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "common.h"
#include "pkcs.pb-c.h"

/* The producing side of one run. Zero it, then set cmd, topic, brokers and the options. */
typedef struct pkcsctl_sender {
    const char *cmd;         /* the command, for messages and the Kafka client id */
    pkcsctl_kafka_t kafka;   /* the producer, once pkcsctl_producer_new made it */
    const char *topic;       /* the requests topic */
    const char *brokers;     /* bootstrap servers */
    pc_signer_t *signer;     /* NULL with --unsigned */
    char *key_id;            /* --signer-key-id, carried as is by --unsigned */
    char *algorithm;         /* --signer-algorithm, likewise */
    bool unsigned_requests;  /* --unsigned */
    bool corrupt_signature;  /* --corrupt-signature */
    const char *message_key; /* --message-key: this Kafka key instead of the device/user id */
    bool dry_run;            /* --dry-run: print requests as JSON lines, produce nothing */
    size_t produced;         /* handed to librdkafka (printed, with --dry-run) */
    size_t delivered;        /* acknowledged by the brokers */
    size_t failed;           /* delivery reports with an error */
    char first_failure[256]; /* the first failed delivery's reason */
    double started;          /* monotonic seconds: when the producer was made */
    double rate;             /* --rate: requests per second; 0: as fast as possible */
    size_t paced;            /* requests sent under --rate */
    double paced_first;      /* monotonic seconds: when the first paced request went out */
    double paced_last;       /* ... and the latest */
    double max_behind;       /* seconds: the latest a request went out after its deadline */
} pkcsctl_sender_t;

/* pkcsctl_signer_load makes snd->signer from --signer-key key_file (algorithm as given, ed25519
 * when NULL) and, for an encrypted key, the passphrase in --signer-key-passphrase-file
 * passphrase_file (NULL: none; a secret file: neither group nor others may read it; one
 * trailing newline is not part of the passphrase). The passphrase is wiped after use. Returns
 * 0, or 1 after printing the error. */
int pkcsctl_signer_load(pkcsctl_sender_t *snd, const char *key_file, const char *passphrase_file);

/* pkcsctl_producer_new makes the producer for snd->brokers; messages time out after
 * timeout_s. Returns 0, or 1 after printing the error. */
int pkcsctl_producer_new(pkcsctl_sender_t *snd, long timeout_s);

/* pkcsctl_produce hands one message (copied) to librdkafka, waiting while its queue is full,
 * and shows progress every 1000 messages. Refuses once a delivery has failed. Returns 0 or 1. */
int pkcsctl_produce(pkcsctl_sender_t *snd, const char *key, unsigned char *value, size_t len);

/* pkcsctl_producer_finish waits for every delivery report (bounded by the timeout), prints
 * "submitted N requests in X s (Y/s)" (and pkcsctl_pace_report's line), closes the producer
 * and returns rc, or 1 when a message was not delivered. */
int pkcsctl_producer_finish(pkcsctl_sender_t *snd, long timeout_s, int rc);

/* pkcsctl_pace waits, under --rate, until the next request is due: the k-th paced request
 * (from 0) is due k/rate seconds after the first, so the average rate holds when one send is
 * late; it never waits when behind. Serves delivery reports while it waits. No-op without
 * --rate. */
void pkcsctl_pace(pkcsctl_sender_t *snd);

/* pkcsctl_pace_report prints, under --rate, the achieved rate on stderr. */
void pkcsctl_pace_report(const pkcsctl_sender_t *snd);

/* pkcsctl_send_request paces (pkcsctl_pace), stamps a request without created_at_ms with the
 * time it is produced (a copy: req is not changed), signs it (unless --unsigned) and produces
 * it, keyed by device id, else user id; with --dry-run it prints it instead. Returns 0, or 1
 * after printing what went wrong. */
int pkcsctl_send_request(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req);

#endif
