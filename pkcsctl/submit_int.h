/*
 * pkcsctl_submit_int.h - what `pkcsctl submit` (pkcsctl_submit.c: options, inputs, Kafka), its
 * request generator (pkcsctl_gen.c) and its CSV input (pkcsctl_csv.c) share. Main thread only.
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
    bool dry_run;             /* --dry-run: print requests as JSON lines, produce nothing */
    size_t produced;          /* handed to librdkafka */
    size_t delivered;         /* acknowledged by the brokers */
    size_t failed;            /* delivery reports with an error */
    char first_failure[256];  /* the first failed delivery's reason */
    unsigned char shown[512]; /* Kafka error codes already shown (+256), to show each once */
    double started;           /* monotonic seconds */
    double rate;              /* --rate: requests per second; 0: as fast as possible */
    size_t paced;             /* requests sent under --rate */
    double paced_first;       /* monotonic seconds: when the first paced request went out */
    double paced_last;        /* ... and the latest */
    double max_behind;        /* seconds: the latest a request went out after its deadline */
} pkcsctl_sender_t;

/* The generator's options (--template ... --count N); --csv uses prefix, keys_dir, key_alg. */
typedef struct pkcsctl_gen {
    const char *template_path;
    long count;
    const char *prefix;   /* --id-prefix */
    const char *keys_dir; /* --device-keys, may be NULL */
    pc_key_alg_t key_alg; /* --key-alg */
    long csv_rows;        /* data rows of --csv files sent so far: default ids go on from here */
} pkcsctl_gen_t;

/* pkcsctl_producer_new makes snd->rk for snd->brokers; messages time out after timeout_s.
 * Returns 0, or 1 after printing the error. */
int pkcsctl_producer_new(pkcsctl_sender_t *snd, long timeout_s);

/* pkcsctl_produce hands one message (copied) to librdkafka, waiting while its queue is full,
 * and shows progress every 1000 messages. Refuses once a delivery has failed. Returns 0 or 1. */
int pkcsctl_produce(pkcsctl_sender_t *snd, const char *key, unsigned char *value, size_t len);

/* pkcsctl_producer_finish waits for every delivery report (bounded by the timeout), prints
 * "submitted N requests in X s (Y/s)" (and pkcsctl_pace_report's line) and returns rc, or 1
 * when a message was not delivered. */
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
 * it, keyed by device id, else user id. Returns 0, or 1 after printing what went wrong. */
int pkcsctl_send_request(pkcsctl_sender_t *snd, const Pkcs__V1__Request *req);

/* pkcsctl_load_request reads one Request in its JSON form; the caller frees *req with
 * protobuf_c_message_free_unpacked. Returns 0, or 1 after printing the error. */
int pkcsctl_load_request(const char *path, Pkcs__V1__Request **req);

/* pkcsctl_generate produces gen->count requests made from a template. Returns 0 or 1. */
int pkcsctl_generate(pkcsctl_sender_t *snd, const pkcsctl_gen_t *gen);

/* pkcsctl_check_prefix_keys checks --id-prefix and creates --device-keys DIR (0700) if given.
 * Returns 0, 2 for a bad prefix, 1 when the folder cannot be made. */
int pkcsctl_check_prefix_keys(const pkcsctl_gen_t *gen);

/* pkcsctl_device_key gives the device key pair of request_id: the private key in
 * keys_dir/<request_id>.pem when that file exists (a replay sends the same key), else a new
 * pair of alg (P-256 or RSA-2048) written there with mode 0600. *spki (OPENSSL_free it) gets
 * the public key as SubjectPublicKeyInfo DER, *spki_len its length. Returns 0, or 1 after
 * printing the error. */
int pkcsctl_device_key(const char *keys_dir, pc_key_alg_t alg, const char *request_id,
                       unsigned char **spki, int *spki_len);

/* pkcsctl_submit_csv produces one ISSUE request per data row of the CSV file csv_path with the
 * profile (pkcs.v1.Profile, JSON) of profile_path. The whole file is checked first, so a
 * malformed line (reported as FILE:LINE) sends nothing of that file. Default request ids are
 * <prefix>-<row>, rows counted on from gen->csv_rows, which is advanced. Returns 0 or 1. */
int pkcsctl_submit_csv(pkcsctl_sender_t *snd, pkcsctl_gen_t *gen, const char *csv_path,
                       const char *profile_path);

#endif
