/*
 * pkcsctl watch: consume the results topic from the beginning with a throwaway consumer group
 * (nothing is committed) until enough distinct request ids were seen, and judge what arrived:
 * duplicates carrying the same certificate are expected under at-least-once delivery, a request
 * id with two different certificates is the failure this command exists to catch. Optionally
 * opens and verifies every issued result as its device would (watch_check.c); the counting and
 * the summary are watch_tally.c's.
 * Main thread only: a blocking rd_kafka_consumer_poll loop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "common.h"
#include "file.h"
#include "numbers.h"
#include "pbjson.h"
#include "pkcs.pb-c.h"
#include "result.h"
#include "watch_int.h"

#define CMD WATCH_CMD
#define POLL_MS 200

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = 1;
}

static void help(void)
{
    printf(
        "usage: pkcsctl watch [--count N | --ids FILE] [OPTIONS]\n\n"
        "Consumes pkcs.v1.Result messages from the beginning of the results topic (own\n"
        "throwaway consumer group, nothing committed) until N distinct request ids were seen,\n"
        "or every id of FILE, or the timeout. Prints a summary on stdout:\n"
        "  results: N (issued A, failed B, revoked C, imported D); distinct request ids: K;\n"
        "  duplicates: X (same certificate: Y, DIFFERENT certificate: Z); opened+verified: V;\n"
        "  errors by code: CODE=n ...\n"
        "  latency ms (request created -> result read): p50 P, p90 P, p99 P, max M, mean A\n"
        "  over N results; throughput T results/s (N results in S s from the first request\n"
        "  created to the last result read)\n"
        "A duplicate counts as DIFFERENT when both results carry a certificate and the two\n"
        "differ: one request got two certificates. Latency is taken for each result whose\n"
        "timing has the request's createdAtMs: the wall clock when watch reads the result minus\n"
        "createdAtMs (watch reads from the beginning of the topic: start it before the load, or\n"
        "older results count from when they are read). Percentiles are nearest-rank over those\n"
        "results; throughput T = N / S, where S = (last result read - earliest request\n"
        "created) in seconds.\n\n"
        "options:\n"
        "  --brokers LIST    bootstrap servers (default $PC_KAFKA_BROKERS, "
        "else " PKCSCTL_DEFAULT_BROKERS ")\n"
        "  --topic NAME      results topic (default pkcs.results)\n"
        "  --count N         stop after N distinct request ids\n"
        "  --total N         and after N result messages in all (replays included)\n"
        "  --ids FILE        stop when every request id of FILE (one a line) was seen; results\n"
        "                    for other ids are ignored\n"
        "  --timeout S       give up after S seconds (default 120)\n"
        "  --since MS        read only results produced at or after MS (Unix time in ms, by\n"
        "                    their Kafka timestamp) instead of the whole topic: a run after\n"
        "                    others skips their results instead of reading and checking them\n"
        "  --json            print each result as one JSON line on stdout\n"
        "  --out DIR         write each result to DIR/<request id>.json\n"
        "  --device-keys DIR open each issued result's encryptedPfx with DIR/<request id>.pem\n"
        "                    (as `pkcsctl submit --device-keys` wrote them) and check that it\n"
        "                    holds the result's certificate and its key\n"
        "  --ca FILE         verify each issued certificate up to the CA certificate(s) of FILE\n"
        "  --result-key FILE the cluster's result key (PEM public key, as the coordinators\n"
        "                    serve it at /keys/results.pem): every result must be signed with\n"
        "                    it; one that is not is reported, not counted, and fails the run\n"
        "  --result-key-id ID  its key id (default results-1)\n"
        "  --result-key-algorithm A  ed25519 (default) or ecdsa-p256-sha256\n"
        "  --latency-csv FILE  write one line per result read (after the header\n"
        "                    request_id,status,created_at_ms,read_at_ms,latency_ms): wall-clock\n"
        "                    ms since the epoch; created_at_ms and latency_ms are empty for a\n"
        "                    result without timing; duplicates get a line each, results\n"
        "                    ignored under --ids none\n\n"
        "Exits 0 when the count was reached, no request id got two different certificates and\n"
        "every checked result passed; 1 otherwise; without --count or --ids it runs until the\n"
        "timeout.\n");
}

static int load_ids(watch_t *w, const char *path)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pkcsctl_error(CMD, "cannot open %s: %s", path, strerror(errno));
    if ((w->wanted = json_object()) == NULL)
        goto out_close;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && strchr(" \t\r\n", line[n - 1]) != NULL)
            line[--n] = '\0';
        if (n > 0)
            json_object_set_new_nocheck(w->wanted, line, json_true());
    }
out_close:
    free(line);
    fclose(f);
    if (w->wanted == NULL || json_object_size(w->wanted) == 0)
        return pkcsctl_usage_error(CMD, "%s lists no request ids", path);
    return 0;
}

/* With --since, each partition assigned starts at its first result produced at or after
 * since_ms (RD_KAFKA_OFFSET_END where there is none yet); a partition whose offset cannot be
 * looked up starts at the beginning, which only costs reading more. */
static void rebalance_since(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    watch_t *w = opaque; /* &w->kafka, its first member */
    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, NULL);
        return;
    }
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = w->since_ms;
    rd_kafka_resp_err_t lookup = rd_kafka_offsets_for_times(rk, parts, 10000);
    for (int i = 0; i < parts->cnt; i++)
        if (lookup != RD_KAFKA_RESP_ERR_NO_ERROR || parts->elems[i].err)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    if (lookup != RD_KAFKA_RESP_ERR_NO_ERROR)
        pkcsctl_error(CMD, "cannot find where --since starts (%s): reading from the beginning",
                      rd_kafka_err2str(lookup));
    rd_kafka_assign(rk, parts);
}

/* consumer_new subscribes a consumer of a throwaway group to the topic, reading it from the
 * beginning (or --since) and committing nothing. */
static int consumer_new(watch_t *w)
{
    char group[64];
    rd_kafka_conf_t *conf;
    if (pkcsctl_kafka_group_id(&w->kafka, group, sizeof(group)) != 0)
        return 1;
    const char *const settings[] = {"group.id",
                                    group,
                                    "auto.offset.reset",
                                    "earliest",
                                    "enable.auto.commit",
                                    "false",
                                    "enable.auto.offset.store",
                                    "false",
                                    NULL};
    if ((conf = pkcsctl_kafka_conf(&w->kafka, settings)) == NULL)
        return 1;
    if (w->since_ms > 0)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_since);
    if (pkcsctl_kafka_new(&w->kafka, RD_KAFKA_CONSUMER, conf) != 0)
        return 1;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, w->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->kafka.rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pkcsctl_kafka_close(&w->kafka);
        return pkcsctl_error(CMD, "cannot subscribe to %s: %s", w->topic, rd_kafka_err2str(err));
    }
    return 0;
}

static void output(watch_t *w, const Pkcs__V1__Result *res)
{
    char *text = NULL, path[4096];
    pc_diag_t diag = {{0}};
    if (w->json && pc_pbjson_encode_string(&res->base, false, &text, &diag) == PC_OK) {
        printf("%s\n", text);
        fflush(stdout);
    }
    free(text);
    text = NULL;
    if (w->out_dir == NULL)
        return;
    if (!pkcsctl_safe_name(res->request_id)) {
        pkcsctl_error(CMD,
                      "not writing the result for request id \"%.64s\": not usable as a "
                      "file name",
                      res->request_id);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.json", w->out_dir, res->request_id);
    pc_err_t err = pc_pbjson_encode_string(&res->base, true, &text, &diag);
    if (err == PC_OK)
        err = pc_file_write(path, text, strlen(text), 0644, &diag);
    if (err != PC_OK)
        pkcsctl_diag_error(CMD, err, &diag);
    free(text);
}

static void on_result(watch_t *w, const Pkcs__V1__Result *res)
{
    char why[768];
    if (w->wanted != NULL && json_object_get(w->wanted, res->request_id) == NULL) {
        w->ignored++;
        return;
    }
    w->results++;
    pkcsctl_watch_tally(w, res);
    pkcsctl_watch_latency(w, res);
    output(w, res);
    bool packed =
        res->status == PKCS__V1__STATUS__ISSUED || res->status == PKCS__V1__STATUS__IMPORTED;
    if (!packed || (w->keys_dir == NULL && w->store == NULL))
        return;
    if (pkcsctl_watch_check(res, w->keys_dir, w->store, why, sizeof(why))) {
        w->verified++;
    } else {
        w->verify_failed++;
        pkcsctl_error(CMD, "request %s: %s", res->request_id, why);
    }
}

static void on_message(watch_t *w, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pkcsctl_kafka_error(&w->kafka, msg->err, rd_kafka_message_errstr(msg));
        return;
    }
    Pkcs__V1__SignedResult *sealed = NULL;
    Pkcs__V1__Result *res = NULL;
    pc_diag_t diag;
    if (pc_result_open(msg->payload, msg->len, &sealed, &res, &diag) != PC_OK) {
        w->undecodable++;
        pkcsctl_error(CMD, "%s [%d] offset %lld: %s", w->topic, (int)msg->partition,
                      (long long)msg->offset, diag.msg);
        return;
    }
    /* With the cluster's result key, a result that does not verify is not one of ours: it is
     * reported and not counted as an answer. */
    if (w->result_keys != NULL &&
        (sealed == NULL ? pc_fail(&diag, PC_ERR_UNAUTHENTICATED, "result is not signed") != PC_OK
                        : pc_auth_verify_result(w->result_keys, sealed, &diag) != PC_OK)) {
        w->forged++;
        pkcsctl_error(CMD,
                      "%s [%d] offset %lld: a result for request %s that is not the "
                      "cluster's: %s",
                      w->topic, (int)msg->partition, (long long)msg->offset, res->request_id,
                      diag.msg);
    } else {
        on_result(w, res);
    }
    if (sealed != NULL)
        pkcs__v1__signed_result__free_unpacked(sealed, NULL);
    pkcs__v1__result__free_unpacked(res, NULL);
}

static bool done(const watch_t *w)
{
    if (w->count == 0 && w->wanted == NULL && w->total == 0)
        return false;
    return (w->count == 0 || json_object_size(w->seen) >= (size_t)w->count) &&
           (w->total == 0 || w->results >= (size_t)w->total) &&
           (w->wanted == NULL || w->wanted_seen >= json_object_size(w->wanted));
}

/* verdict prints why the run failed, if it did, and returns the exit code. */
static int verdict(const watch_t *w, bool reached)
{
    int rc = 0;
    if (w->dup_different > 0)
        rc = pkcsctl_error(CMD,
                           "%zu duplicate results carry a DIFFERENT certificate: a request "
                           "was issued twice",
                           w->dup_different);
    if (w->verify_failed > 0)
        rc = pkcsctl_error(CMD, "%zu issued results failed to open or verify (see above)",
                           w->verify_failed);
    if (w->forged > 0)
        rc = pkcsctl_error(CMD,
                           "%zu results are not signed by the cluster's result key (see above): "
                           "do not trust them",
                           w->forged);
    if (!reached && interrupted)
        rc = pkcsctl_error(CMD, "interrupted before the expected results arrived");
    else if (!reached && w->kafka.refused)
        rc = pkcsctl_error(CMD, "stopped: %s", w->kafka.last_error);
    else if (!reached)
        rc = pkcsctl_error(CMD, "timed out after %ld s: %zu of %zu expected request ids seen%s%s",
                           w->timeout_s, w->wanted ? w->wanted_seen : json_object_size(w->seen),
                           w->wanted ? json_object_size(w->wanted) : (size_t)w->count,
                           w->kafka.last_error[0] ? "; last Kafka error: " : "",
                           w->kafka.last_error);
    return rc;
}

static int run(watch_t *w)
{
    struct sigaction sa = {.sa_handler = on_signal};
    if (consumer_new(w) != 0)
        return 1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double deadline = pc_mono_s() + (double)w->timeout_s;
    while (!done(w) && !interrupted && !w->kafka.refused && pc_mono_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->kafka.rk, POLL_MS);
        if (msg != NULL) {
            on_message(w, msg);
            rd_kafka_message_destroy(msg);
        }
    }
    pkcsctl_kafka_close(&w->kafka);
    pkcsctl_watch_summary(w);
    bool reached = done(w) || (w->count == 0 && w->wanted == NULL && w->total == 0 &&
                               !interrupted && !w->kafka.refused);
    return verdict(w, reached);
}

static int prepare(watch_t *w, const char *ids_path, const char *ca_path)
{
    w->seen = json_object();
    w->by_code = calloc(pkcs__v1__error_code__descriptor.n_values, sizeof(*w->by_code));
    if (w->seen == NULL || w->by_code == NULL)
        return pkcsctl_error(CMD, "out of memory");
    if (ids_path != NULL && load_ids(w, ids_path) != 0)
        return 1;
    if (ca_path != NULL && pkcsctl_watch_ca_load(ca_path, &w->store) != 0)
        return 1;
    pc_diag_t diag = {{0}};
    pc_err_t err = w->out_dir != NULL ? pc_file_mkdirs(w->out_dir, 0755, &diag) : PC_OK;
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    if (w->latency_csv_path != NULL) {
        if ((w->latency_csv = fopen(w->latency_csv_path, "w")) == NULL)
            return pkcsctl_error(CMD, "cannot create --latency-csv %s: %s", w->latency_csv_path,
                                 strerror(errno));
        fputs("request_id,status,created_at_ms,read_at_ms,latency_ms\n", w->latency_csv);
    }
    return 0;
}

/* close_csv closes --latency-csv; a write error (disk full) fails the run. */
static int close_csv(watch_t *w, int rc)
{
    if (w->latency_csv == NULL)
        return rc;
    bool bad = ferror(w->latency_csv) != 0;
    if (fclose(w->latency_csv) != 0 || bad)
        rc = pkcsctl_error(CMD, "could not write all of --latency-csv %s", w->latency_csv_path);
    w->latency_csv = NULL;
    return rc;
}

int pkcsctl_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"ids", required_argument, NULL, 'i'},
        {"total", required_argument, NULL, 'T'},
        {"timeout", required_argument, NULL, 'w'},
        {"since", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"out", required_argument, NULL, 'o'},
        {"device-keys", required_argument, NULL, 'd'},
        {"ca", required_argument, NULL, 'c'},
        {"latency-csv", required_argument, NULL, 'L'},
        {"result-key", required_argument, NULL, 'K'},
        {"result-key-id", required_argument, NULL, 'I'},
        {"result-key-algorithm", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    watch_t w = {.kafka = {.cmd = CMD, .brokers = getenv("PC_KAFKA_BROKERS")},
                 .topic = "pkcs.results",
                 .timeout_s = 120};
    const char *ids_path = NULL, *ca_path = NULL, *result_key = NULL, *result_key_id = "results-1",
               *result_key_alg = "ed25519";
    int c, rc = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            w.kafka.brokers = optarg;
            break;
        case 't':
            w.topic = optarg;
            break;
        case 'n':
            if (!pc_parse_long(optarg, 1, 100000000, &w.count))
                return pkcsctl_usage_error(CMD, "--count wants a number from 1, not \"%s\"",
                                           optarg);
            break;
        case 'i':
            ids_path = optarg;
            break;
        case 'T':
            if (!pc_parse_long(optarg, 1, 100000000, &w.total))
                return pkcsctl_usage_error(CMD, "--total wants a number from 1, not \"%s\"",
                                           optarg);
            break;
        case 'w':
            if (!pc_parse_long(optarg, 1, 86400, &w.timeout_s))
                return pkcsctl_usage_error(CMD, "--timeout wants seconds (1-86400), not \"%s\"",
                                           optarg);
            break;
        case 'S': {
            long ms;
            if (!pc_parse_long(optarg, 1, LONG_MAX, &ms))
                return pkcsctl_usage_error(
                    CMD, "--since wants a Unix time in milliseconds, not \"%s\"", optarg);
            w.since_ms = ms;
            break;
        }
        case 'j':
            w.json = true;
            break;
        case 'o':
            w.out_dir = optarg;
            break;
        case 'd':
            w.keys_dir = optarg;
            break;
        case 'c':
            ca_path = optarg;
            break;
        case 'L':
            w.latency_csv_path = optarg;
            break;
        case 'K':
            result_key = optarg;
            break;
        case 'I':
            result_key_id = optarg;
            break;
        case 'A':
            result_key_alg = optarg;
            break;
        case 'h':
            help();
            return 0;
        default:
            return pkcsctl_usage_error(CMD, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    w.kafka.brokers = pkcsctl_kafka_brokers(w.kafka.brokers);
    if (result_key != NULL) {
        pc_diag_t diag;
        pc_auth_key_t key = {
            .id = result_key_id, .algorithm = result_key_alg, .public_key_file = result_key};
        if (pc_auth_new(&key, 1, &w.result_keys, &diag) != PC_OK)
            return pkcsctl_usage_error(CMD, "--result-key: %s", diag.msg);
    }
    if ((rc = prepare(&w, ids_path, ca_path)) == 0)
        rc = run(&w);
    rc = close_csv(&w, rc);
    X509_STORE_free(w.store);
    pc_auth_free(w.result_keys);
    free(w.by_code);
    free(w.latency_ms);
    json_decref(w.wanted);
    json_decref(w.seen);
    return rc;
}
