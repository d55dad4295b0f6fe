/*
 * pkcsctl dlq - what the workers set aside: reads the dead-letter topic from the beginning
 * (a throwaway consumer group, nothing committed) and prints each DeadLetter as one JSON line:
 * why (reason, error code), where the message came from (topic, partition, offset), when and by
 * which worker, and how long the original was. The original bytes are left out unless asked
 * for (--with-original), since they may be large or garbage. Main thread only, blocking.
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

#define CMD "dlq"
#define POLL_MS 200

static void help(void)
{
    printf("usage: pkcsctl dlq [--brokers LIST] [--topic NAME] [--count N] [--timeout S]\n"
           "                   [--with-original]\n\n"
           "Prints every dead letter of the dead-letter topic, oldest first, one JSON line each\n"
           "(the DeadLetter message of proto/pkcs.proto in its JSON form): the reason and error\n"
           "code, the topic, partition and offset the message came from, when and by which\n"
           "worker, and originalLength, the size of the message as it arrived.\n\n"
           "options:\n"
           "  --brokers LIST     bootstrap servers (default $PC_KAFKA_BROKERS, else %s)\n"
           "  --topic NAME       dead-letter topic (default pkcs.requests.dlq)\n"
           "  --count N          stop after N dead letters (exit 1 if fewer come in time)\n"
           "  --timeout S        give up after S seconds without a new one (default 10)\n"
           "  --with-original    keep originalValue and originalKey (base64) in the output\n",
           PKCSCTL_DEFAULT_BROKERS);
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
        return pkcsctl_error(CMD, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(err));
    }
    return 0;
}

/* print_letter prints one dead letter; false when the message is not one. */
static bool print_letter(const rd_kafka_message_t *rkm, bool with_original)
{
    Pkcs__V1__DeadLetter *dl = pkcs__v1__dead_letter__unpack(NULL, rkm->len, rkm->payload);
    if (dl == NULL)
        return false;
    if (!with_original) {
        dl->original_value.len = 0;
        dl->original_key.len = 0;
    }
    char *text = NULL;
    pc_diag_t diag = {{0}};
    if (pc_pbjson_encode_string(&dl->base, false, &text, &diag) == PC_OK)
        printf("%s\n", text);
    else
        pkcsctl_diag_error(CMD, PC_ERR_NOMEM, &diag);
    fflush(stdout);
    free(text);
    pkcs__v1__dead_letter__free_unpacked(dl, NULL);
    return true;
}

int pkcsctl_dlq(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 's'},
        {"with-original", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *brokers = NULL, *topic = "pkcs.requests.dlq";
    long count = 0, timeout_s = 10;
    bool with_original = false;
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
                return pkcsctl_usage_error(CMD, "--count wants a positive number, not \"%s\"",
                                           optarg);
            break;
        case 's':
            if (!pc_parse_long(optarg, 1, 86400, &timeout_s))
                return pkcsctl_usage_error(CMD, "--timeout wants 1-86400 seconds, not \"%s\"",
                                           optarg);
            break;
        case 'o':
            with_original = true;
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

    pkcsctl_kafka_t k = {.cmd = CMD, .brokers = pkcsctl_kafka_brokers(brokers)};
    if (subscribe(&k, topic) != 0)
        return 1;
    long seen = 0, other = 0;
    double idle_until = pc_mono_s() + (double)timeout_s;
    while ((count == 0 || seen < count) && pc_mono_s() < idle_until) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k.rk, POLL_MS);
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (print_letter(rkm, with_original))
                seen++;
            else
                other++;
            idle_until = pc_mono_s() + (double)timeout_s;
        } else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pkcsctl_kafka_error(&k, rkm->err, rd_kafka_message_errstr(rkm));
        }
        rd_kafka_message_destroy(rkm);
    }
    pkcsctl_kafka_close(&k);
    if (other > 0)
        pkcsctl_error(CMD, "%ld message(s) of %s are not dead letters", other, topic);
    if (count > 0 && seen < count)
        return pkcsctl_error(CMD, "%ld dead letter(s) in %ld s without a new one, not %ld", seen,
                             timeout_s, count);
    return 0;
}
