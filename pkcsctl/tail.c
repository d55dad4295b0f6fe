/*
 * pkcsctl dlq | audit | notices - the cluster's side topics, read from the beginning (a
 * throwaway consumer group, nothing committed) and printed one JSON line per message, oldest
 * first per partition:
 *   dlq      what the workers set aside (DeadLetter): why, where it came from, when, by whom;
 *            the original bytes only with --with-original, since they may be large or garbage
 *   audit    the audit trail (AuditRecord, already JSON on the topic)
 *   notices  renewal and expiry notices from the coordinators (Notice)
 * The three differ only in their topic and message type: one reader, a table of kinds. Main
 * thread only, blocking.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "common.h"
#include "numbers.h"
#include "pbjson.h"
#include "pkcs.pb-c.h"

#define POLL_MS 200

typedef struct filter {
    const char *tenant, *request;
    bool with_original;
} filter_t;

/* print_fn prints one message if it passes f: 1 printed, 0 filtered out, -1 not of the kind. */
typedef int (*print_fn)(const rd_kafka_message_t *rkm, const filter_t *f);

static bool passes(const filter_t *f, const char *tenant, const char *request)
{
    return (f->tenant == NULL || strcmp(f->tenant, tenant) == 0) &&
           (f->request == NULL || strcmp(f->request, request) == 0);
}

/* print_message prints msg's JSON form and frees msg. */
static void print_message(ProtobufCMessage *msg)
{
    char *text = NULL;
    pc_diag_t diag = {{0}};
    if (pc_pbjson_encode_string(msg, false, &text, &diag) == PC_OK)
        printf("%s\n", text);
    else
        pkcsctl_diag_error("pkcsctl", PC_ERR_NOMEM, &diag);
    fflush(stdout);
    free(text);
    protobuf_c_message_free_unpacked(msg, NULL);
}

static int print_letter(const rd_kafka_message_t *rkm, const filter_t *f)
{
    Pkcs__V1__DeadLetter *dl = pkcs__v1__dead_letter__unpack(NULL, rkm->len, rkm->payload);
    if (dl == NULL)
        return -1;
    if (!f->with_original) {
        dl->original_value.len = 0;
        dl->original_key.len = 0;
    }
    print_message(&dl->base);
    return 1;
}

static int print_audit(const rd_kafka_message_t *rkm, const filter_t *f)
{
    ProtobufCMessage *msg = NULL;
    pc_diag_t diag;
    if (pc_pbjson_decode_string(&pkcs__v1__audit_record__descriptor, rkm->payload, rkm->len, &msg,
                                &diag) != PC_OK)
        return -1;
    const Pkcs__V1__AuditRecord *r = (const Pkcs__V1__AuditRecord *)msg;
    if (!passes(f, r->tenant_id, r->request_id)) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return 0;
    }
    print_message(msg);
    return 1;
}

static int print_notice(const rd_kafka_message_t *rkm, const filter_t *f)
{
    Pkcs__V1__Notice *n = pkcs__v1__notice__unpack(NULL, rkm->len, rkm->payload);
    if (n == NULL)
        return -1;
    if (!passes(f, n->tenant_id, n->request_id)) {
        pkcs__v1__notice__free_unpacked(n, NULL);
        return 0;
    }
    print_message(&n->base);
    return 1;
}

static const struct kind {
    const char *cmd, *topic, *what, *about;
    print_fn print;
    bool filters; /* --tenant and --request apply */
} kinds[] = {
    {"dlq", "pkcs.requests.dlq", "dead letter",
     "Prints every dead letter of the dead-letter topic (the DeadLetter message of\n"
     "proto/pkcs.proto in its JSON form): the reason and error code, the topic, partition and\n"
     "offset the message came from, when and by which worker, and originalLength, the size of\n"
     "the message as it arrived.\n",
     print_letter, false},
    {"audit", "pkcs.audit", "audit record",
     "Prints the audit trail (AuditRecord of proto/pkcs.proto): every request that ended\n"
     "(issued, renewed, revoked, imported, refused, replayed, dead_lettered) and every\n"
     "certificate revoked on the way (superseded, orphan_revoked), with tenant, user, device,\n"
     "request, CA, serial, subject, outcome and worker.\n",
     print_audit, true},
    {"notices", "pkcs.notices", "notice",
     "Prints the coordinators' notices (Notice of proto/pkcs.proto): RENEWAL_DUE for a\n"
     "certificate past its profile's renewal threshold, EXPIRING for one close to its end.\n",
     print_notice, true},
};

static void help(const struct kind *k)
{
    printf("usage: pkcsctl %s [--brokers LIST] [--topic NAME] [--count N] [--timeout S]%s\n\n%s\n"
           "options:\n"
           "  --brokers LIST     bootstrap servers (default $PC_KAFKA_BROKERS, else %s)\n"
           "  --topic NAME       the topic (default %s)\n"
           "  --count N          stop after N %ss (exit 1 if fewer come in time)\n"
           "  --timeout S        give up after S seconds without a new one (default 10)\n",
           k->cmd, k->filters ? " [--tenant T] [--request ID]" : " [--with-original]", k->about,
           PKCSCTL_DEFAULT_BROKERS, k->topic, k->what);
    if (k->filters)
        printf("  --tenant T         only those of tenant T\n"
               "  --request ID       only those of request ID\n");
    else
        printf("  --with-original    keep originalValue and originalKey (base64) in the output\n");
}

static int subscribe(pkcsctl_kafka_t *k, const char *topic)
{
    char group[64];
    rd_kafka_conf_t *conf;
    if (pkcsctl_kafka_group_id(k, group, sizeof(group)) != 0)
        return 1;
    const char *const settings[] = {
        "group.id", group, "auto.offset.reset", "earliest", "enable.auto.commit", "false", NULL};
    if ((conf = pkcsctl_kafka_conf(k, settings)) == NULL ||
        pkcsctl_kafka_new(k, RD_KAFKA_CONSUMER, conf) != 0)
        return 1;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pkcsctl_kafka_close(k);
        return pkcsctl_error(k->cmd, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(err));
    }
    return 0;
}

static int tail(const struct kind *kind, int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 's'},
        {"with-original", no_argument, NULL, 'o'},
        {"tenant", required_argument, NULL, 'T'},
        {"request", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = kind->cmd, *brokers = NULL, *topic = kind->topic;
    long count = 0, timeout_s = 10;
    filter_t f = {0};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            if (!pc_parse_long(optarg, 1, 100000000, &count))
                return pkcsctl_usage_error(cmd, "--count wants a positive number, not \"%s\"",
                                           optarg);
            break;
        case 's':
            if (!pc_parse_long(optarg, 1, 86400, &timeout_s))
                return pkcsctl_usage_error(cmd, "--timeout wants 1-86400 seconds, not \"%s\"",
                                           optarg);
            break;
        case 'o':
            if (kind->filters)
                return pkcsctl_usage_error(cmd, "--with-original is for dlq");
            f.with_original = true;
            break;
        case 'T':
        case 'r':
            if (!kind->filters)
                return pkcsctl_usage_error(cmd, "--tenant and --request are for audit and notices");
            *(c == 'T' ? &f.tenant : &f.request) = optarg;
            break;
        case 'h':
            help(kind);
            return 0;
        default:
            return pkcsctl_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);

    pkcsctl_kafka_t k = {.cmd = cmd, .brokers = pkcsctl_kafka_brokers(brokers)};
    if (subscribe(&k, topic) != 0)
        return 1;
    long seen = 0, other = 0;
    double idle_until = pc_mono_s() + (double)timeout_s;
    while ((count == 0 || seen < count) && !k.refused && pc_mono_s() < idle_until) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k.rk, POLL_MS);
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int printed = kind->print(rkm, &f);
            seen += printed > 0;
            other += printed < 0;
            idle_until = pc_mono_s() + (double)timeout_s;
        } else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pkcsctl_kafka_error(&k, rkm->err, rd_kafka_message_errstr(rkm));
        }
        rd_kafka_message_destroy(rkm);
    }
    pkcsctl_kafka_close(&k);
    if (k.refused)
        return 1; /* said by the error callback */
    if (other > 0)
        pkcsctl_error(cmd, "%ld message(s) of %s are not %ss", other, topic, kind->what);
    if (count > 0 && seen < count)
        return pkcsctl_error(cmd, "%ld %s(s) in %ld s without a new one, not %ld", seen, kind->what,
                             timeout_s, count);
    return 0;
}

int pkcsctl_dlq(int argc, char **argv)
{
    return tail(&kinds[0], argc, argv);
}

int pkcsctl_audit(int argc, char **argv)
{
    return tail(&kinds[1], argc, argv);
}

int pkcsctl_notices(int argc, char **argv)
{
    return tail(&kinds[2], argc, argv);
}
