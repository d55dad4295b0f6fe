/*
 * watch_int.h - what the parts of `pkcsctl watch` share: the consumer loop and options
 * (watch.c), the tally and summary (watch_tally.c) and the checks of each issued result
 * (watch_check.c). Calls go one way: watch.c calls the other two. Main thread only.
 */
#ifndef PKCSCTL_WATCH_INT_H
#define PKCSCTL_WATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "auth.h"
#include "common.h"
#include "pkcs.pb-c.h"

#define WATCH_CMD "watch"

/* One `pkcsctl watch` run: its options and what it has seen so far. */
typedef struct watch {
    pkcsctl_kafka_t kafka; /* the consumer; its brokers are --brokers. First: the consumer's
                            * opaque is &w->kafka, and its rebalance callback finds w there */
    const char *topic, *out_dir, *keys_dir;
    bool json;
    long count; /* distinct request ids to wait for; 0: none */
    long total; /* result messages to wait for, duplicates included; 0: none */
    long timeout_s;
    int64_t since_ms; /* --since: read from the first result produced at or after (0: all) */
    json_t *wanted;   /* --ids: the request ids to wait for (NULL without --ids) */
    size_t wanted_seen;
    json_t *seen; /* request id -> hex SHA-256 of its certificate ("" while none) */
    X509_STORE *store;
    pc_auth_t *result_keys; /* --result-key: every result must verify; NULL: not checked */
    size_t forged;          /* results that do not verify (or are unsigned) under it */
    size_t results, issued, failed, revoked, imported;
    size_t duplicates, dup_same, dup_different;
    size_t verified, verify_failed, undecodable, ignored;
    size_t *by_code; /* FAILED results by error code (index into the enum's values) */
    size_t by_code_unknown;
    double *latency_ms; /* request created -> result read, one per result with timing */
    size_t latency_count, latency_cap;
    int64_t first_created_ms, last_read_ms;
    const char *latency_csv_path; /* --latency-csv FILE */
    FILE *latency_csv;            /* open on it; NULL without */
} watch_t;

/* pkcsctl_watch_latency records the end-to-end latency of res, read now (wall clock), and
 * writes its line to --latency-csv: request_id,status,created_at_ms,read_at_ms,latency_ms
 * (created_at_ms and latency_ms empty for a result without timing). */
void pkcsctl_watch_latency(watch_t *w, const Pkcs__V1__Result *res);

/* pkcsctl_watch_tally counts res by status and error code and tracks its request id:
 * distinct, or a duplicate with the same or a DIFFERENT certificate (reported on stderr). */
void pkcsctl_watch_tally(watch_t *w, const Pkcs__V1__Result *res);

/* pkcsctl_watch_summary prints the one-line summary on stdout. */
void pkcsctl_watch_summary(const watch_t *w);

/* pkcsctl_watch_ca_load makes a store trusting every certificate of the PEM file at path (the
 * issuing CA, or the root); *store is the caller's (X509_STORE_free). Returns 0, or 1 after
 * printing the error. */
int pkcsctl_watch_ca_load(const char *path, X509_STORE **store);

/* pkcsctl_watch_check checks one ISSUED result: with keys_dir, opens its encrypted PFX with
 * keys_dir/<request id>.pem as the device would and compares the PFX's certificate and key with
 * the result; with store, verifies the certificate up to the CA through the result's chain.
 * Returns true when every check passed, else false with the reason in why. */
bool pkcsctl_watch_check(const Pkcs__V1__Result *res, const char *keys_dir, X509_STORE *store,
                         char *why, size_t why_len);

#endif
