/*
 * pkcsctl submit: sign requests as an upstream system does and produce them to the requests
 * topic - from JSON files, JSON lines, CSV files with a profile (submit_csv.c), a generator
 * (submit_gen.c) or raw bytes for tests of malformed messages. This file holds the options and
 * the simple inputs; the producing is sender.c's, shared with `pkcsctl revoke`. Main thread
 * only.
 */
#include "submit_int.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "file.h"
#include "numbers.h"
#include "pbjson.h"

#define CMD SUBMIT_CMD
#define RATE_MAX 1000000.0
#define RAW_MAX_BYTES (16 * 1024 * 1024)

enum input_type { INPUT_JSON, INPUT_JSONL, INPUT_CSV, INPUT_RAW };

typedef struct input {
    enum input_type type;
    const char *path;
    const char *profile; /* INPUT_CSV: its --profile, set by pair_profiles */
} input_t;

static void help(void)
{
    printf(
        "usage: pkcsctl submit [OPTIONS] INPUT...\n\n"
        "Signs requests (pkcs.v1.Request, JSON form) as an upstream system does and produces\n"
        "them as SignedRequest messages to Kafka, keyed by device id, else user id.\n\n"
        "inputs (may be combined; files are sent in the order given):\n"
        "  --request FILE        one request in JSON (may be given several times)\n"
        "  --requests FILE       JSON lines: one request per line\n"
        "  --template FILE --count N [--id-prefix P] [--device-keys DIR] [--key-alg rsa|ec]\n"
        "                        generate N requests from a template: request ids P-000001...,\n"
        "                        device ids P-dev-000001... when the template has none (a\n"
        "                        template's device id is kept); the literal {n} in the user\n"
        "                        id, device id and attribute values becomes the number\n"
        "                        (000001...). With --device-keys, each request gets a new\n"
        "                        device key pair (ec: P-256, the default; rsa: RSA-2048)\n"
        "                        written to DIR/<request id>.pem (mode 0600); without it the\n"
        "                        template's devicePublicKey is used. --id-prefix defaults to\n"
        "                        \"req\".\n"
        "  --csv FILE --profile PROFILE.json [--id-prefix P] [--device-keys DIR] [--key-alg A]\n"
        "                        one ISSUE request per data row of an RFC 4180 CSV file (UTF-8;\n"
        "                        quoted fields may hold commas, \"\" and line breaks; CRLF or LF)\n"
        "                        with the profile of PROFILE.json (a pkcs.v1.Profile in JSON).\n"
        "                        The header row names the columns: requestId (default\n"
        "                        P-000001..., rows numbered on across the run's --csv files),\n"
        "                        tenantId (default \"default\"), userId, deviceId (at least one\n"
        "                        of the two), devicePublicKeyFile (PEM, relative to the CSV's\n"
        "                        folder; else a key pair is made in --device-keys as for\n"
        "                        --template), sid; every other column is an attribute: its\n"
        "                        name is the variable (UserName, DeviceId, ...), an empty cell\n"
        "                        is no value. The i-th --csv goes with the i-th --profile; a\n"
        "                        single --profile serves every --csv. A malformed line is an\n"
        "                        error naming FILE:LINE, and nothing of that file is sent.\n"
        "  --raw FILE            produce the file's bytes as they are (tests of bad messages)\n\n"
        "options:\n"
        "  --brokers LIST        bootstrap servers (default $PC_KAFKA_BROKERS, "
        "else " PKCSCTL_DEFAULT_BROKERS ")\n"
        "  --topic NAME          requests topic (default pkcs.requests)\n"
        "  --signer-key-id ID    the signer's key id, as the workers know it\n"
        "  --signer-algorithm A  ed25519 (default), ecdsa-p256-sha256 or hmac-sha256\n"
        "  --signer-key FILE     PEM private key, or the HMAC secret file; unencrypted, it must\n"
        "                        be readable by its owner only (chmod 600)\n"
        "  --signer-key-passphrase-file FILE\n"
        "                        the passphrase of an encrypted --signer-key (chmod 600)\n"
        "  --unsigned            send requests without a signature (tests)\n"
        "  --corrupt-signature   flip one bit of each signature (tests)\n"
        "  --message-key K       the Kafka message key K instead of the device (else user) id:\n"
        "                        the same request on another partition (tests of delivery)\n"
        "  --dry-run             print each request (JSON line) on stdout instead of signing\n"
        "                        and producing it; needs no broker and no signer key\n"
        "  --timeout S           give up on a message after S seconds (default 30)\n"
        "  --rate R              produce R requests per second (a positive number, e.g. 15 or\n"
        "                        0.5), evenly paced: the k-th request is due k/R s after the\n"
        "                        first, so the average holds when one send is late (nothing\n"
        "                        waits while behind). Default: as fast as possible. At the\n"
        "                        end, stderr shows the achieved rate: (N - 1) / (time from the\n"
        "                        first request produced to the last), and how far the latest\n"
        "                        request was behind its schedule\n\n"
        "A request without createdAtMs (every generated request and CSV row) is stamped with the\n"
        "time it is produced, then signed, so latency is measured from the send.\n\n"
        "Exits 1 when a request cannot be read or signed, or when Kafka does not acknowledge\n"
        "every message within the timeout.\n");
}

static bool parse_rate(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v <= 0 || v > RATE_MAX)
        return false;
    *out = v;
    return true;
}

static int send_json(pkcsctl_sender_t *snd, const char *path)
{
    ProtobufCMessage *req = NULL;
    if (pkcsctl_load_message(CMD, path, &pkcs__v1__request__descriptor, &req) != 0)
        return 1;
    int rc = pkcsctl_send_request(snd, (const Pkcs__V1__Request *)req);
    protobuf_c_message_free_unpacked(req, NULL);
    return rc;
}

static bool blank(const char *line)
{
    return line[strspn(line, " \t\r\n")] == '\0';
}

static int send_jsonl(pkcsctl_sender_t *snd, const char *path)
{
    char *line = NULL, where[4096];
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pkcsctl_error(CMD, "cannot open %s: %s", path, strerror(errno));
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        ProtobufCMessage *msg = NULL;
        pc_diag_t diag = {{0}};
        lineno++;
        if (blank(line))
            continue;
        pc_err_t err =
            pc_pbjson_decode_string(&pkcs__v1__request__descriptor, line, (size_t)n, &msg, &diag);
        if (err != PC_OK) {
            snprintf(where, sizeof(where), "%s:%ld", path, lineno);
            pc_diag_prefix(&diag, where);
            rc = pkcsctl_diag_error(CMD, err, &diag);
            break;
        }
        rc = pkcsctl_send_request(snd, (Pkcs__V1__Request *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    if (rc == 0 && ferror(f))
        rc = pkcsctl_error(CMD, "cannot read %s", path);
    free(line);
    fclose(f);
    return rc;
}

static int send_raw(pkcsctl_sender_t *snd, const char *path)
{
    unsigned char *data = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_file_read(path, RAW_MAX_BYTES, &data, &len, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    pkcsctl_pace(snd);
    int rc = pkcsctl_produce(snd, NULL, data, len);
    free(data);
    return rc;
}

static int send_inputs(pkcsctl_sender_t *snd, const input_t *inputs, size_t n_inputs,
                       pkcsctl_gen_t *gen)
{
    int rc = 0;
    for (size_t i = 0; i < n_inputs && rc == 0; i++) {
        if (inputs[i].type == INPUT_JSON)
            rc = send_json(snd, inputs[i].path);
        else if (inputs[i].type == INPUT_JSONL)
            rc = send_jsonl(snd, inputs[i].path);
        else if (inputs[i].type == INPUT_CSV)
            rc = pkcsctl_submit_csv(snd, gen, inputs[i].path, inputs[i].profile);
        else
            rc = send_raw(snd, inputs[i].path);
    }
    if (rc == 0 && gen->template_path != NULL)
        rc = pkcsctl_generate(snd, gen);
    return rc;
}

static int run(pkcsctl_sender_t *snd, const input_t *inputs, size_t n_inputs, pkcsctl_gen_t *gen,
               long timeout_s)
{
    int rc = 0;
    if (snd->dry_run) {
        rc = send_inputs(snd, inputs, n_inputs, gen);
        fprintf(stderr, "pkcsctl submit: dry run: %zu requests printed, nothing produced\n",
                snd->produced);
        pkcsctl_pace_report(snd);
        return rc;
    }
    if (pkcsctl_producer_new(snd, timeout_s) != 0)
        return 1;
    rc = send_inputs(snd, inputs, n_inputs, gen);
    return pkcsctl_producer_finish(snd, timeout_s, rc);
}

/* pair_profiles gives each --csv its --profile: the i-th --csv the i-th --profile, or the one
 * --profile to every --csv. */
static int pair_profiles(input_t *inputs, size_t n_inputs, const char **profiles, size_t n_profiles,
                         const pkcsctl_gen_t *gen)
{
    size_t n_csv = 0;
    for (size_t i = 0; i < n_inputs; i++)
        n_csv += inputs[i].type == INPUT_CSV;
    if (n_csv > 0 && n_profiles == 0)
        return pkcsctl_usage_error(CMD, "--csv FILE needs --profile PROFILE.json");
    if (n_csv == 0 && n_profiles > 0)
        return pkcsctl_usage_error(CMD, "--profile goes with --csv FILE");
    if (n_profiles > 1 && n_profiles != n_csv)
        return pkcsctl_usage_error(CMD,
                                   "%zu --csv and %zu --profile: give one --profile for all "
                                   "--csv files, or one per --csv (paired in order)",
                                   n_csv, n_profiles);
    if (n_csv > 0 && gen->template_path != NULL)
        return pkcsctl_usage_error(CMD, "--csv and --template cannot be combined in one run "
                                        "(their default request ids would collide); run "
                                        "submit once for each");
    for (size_t i = 0, k = 0; i < n_inputs; i++)
        if (inputs[i].type == INPUT_CSV)
            inputs[i].profile = profiles[n_profiles == 1 ? 0 : k++];
    return n_csv > 0 ? pkcsctl_check_prefix_keys(gen) : 0;
}

/* check_inputs refuses combinations that cannot work, before anything is produced. */
static int check_inputs(const pkcsctl_sender_t *snd, const char *signer_key, const input_t *inputs,
                        size_t n_inputs, const pkcsctl_gen_t *gen, bool only_raw)
{
    bool has_raw = false;
    for (size_t i = 0; i < n_inputs; i++)
        has_raw = has_raw || inputs[i].type == INPUT_RAW;
    if (n_inputs == 0 && gen->template_path == NULL)
        return pkcsctl_usage_error(CMD, "nothing to submit: give --request, --requests, --csv, "
                                        "--template or --raw");
    if ((gen->template_path != NULL) != (gen->count > 0))
        return pkcsctl_usage_error(CMD, "--template FILE and --count N go together");
    if (snd->unsigned_requests && snd->corrupt_signature)
        return pkcsctl_usage_error(CMD, "--unsigned and --corrupt-signature exclude each other");
    if (snd->dry_run && has_raw)
        return pkcsctl_usage_error(CMD, "--dry-run prints requests as JSON, and --raw bytes are "
                                        "no request to print: leave out one of the two");
    if (!snd->unsigned_requests && !snd->dry_run && !only_raw &&
        (snd->key_id == NULL || signer_key == NULL))
        return pkcsctl_usage_error(CMD, "signing needs --signer-key-id ID and --signer-key "
                                        "FILE (or --unsigned to send unsigned requests)");
    return 0;
}

int pkcsctl_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"signer-key-id", required_argument, NULL, 'i'},
        {"signer-algorithm", required_argument, NULL, 'a'},
        {"signer-key", required_argument, NULL, 'k'},
        {"signer-key-passphrase-file", required_argument, NULL, 'Q'},
        {"request", required_argument, NULL, 'r'},
        {"requests", required_argument, NULL, 'l'},
        {"template", required_argument, NULL, 'T'},
        {"count", required_argument, NULL, 'n'},
        {"id-prefix", required_argument, NULL, 'p'},
        {"device-keys", required_argument, NULL, 'd'},
        {"key-alg", required_argument, NULL, 'K'},
        {"csv", required_argument, NULL, 'C'},
        {"profile", required_argument, NULL, 'P'},
        {"dry-run", no_argument, NULL, 'D'},
        {"raw", required_argument, NULL, 'R'},
        {"unsigned", no_argument, NULL, 'u'},
        {"corrupt-signature", no_argument, NULL, 'c'},
        {"message-key", required_argument, NULL, 'M'},
        {"timeout", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'Z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *brokers = getenv("PC_KAFKA_BROKERS"), *signer_key = NULL, *passphrase_file = NULL;
    pkcsctl_sender_t snd = {.cmd = CMD, .topic = "pkcs.requests"};
    pkcsctl_gen_t gen = {.prefix = "req", .key_alg = PC_KEY_EC};
    char *algorithm = NULL;
    long timeout_s = 30;
    size_t n_inputs = 0, n_profiles = 0;
    bool only_raw = true;
    int c, rc = 2;
    input_t *inputs = calloc((size_t)argc, sizeof(*inputs));
    const char **profiles = calloc((size_t)argc, sizeof(*profiles));
    if (inputs == NULL || profiles == NULL) {
        rc = pkcsctl_error(CMD, "out of memory");
        goto out_free_inputs;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            snd.topic = optarg;
            break;
        case 'i':
            snd.key_id = optarg;
            break;
        case 'a':
            algorithm = optarg;
            break;
        case 'k':
            signer_key = optarg;
            break;
        case 'Q':
            passphrase_file = optarg;
            break;
        case 'r':
        case 'l':
        case 'C':
        case 'R':
            inputs[n_inputs].type = c == 'r'   ? INPUT_JSON
                                    : c == 'l' ? INPUT_JSONL
                                    : c == 'C' ? INPUT_CSV
                                               : INPUT_RAW;
            inputs[n_inputs++].path = optarg;
            only_raw = only_raw && c == 'R';
            break;
        case 'P':
            profiles[n_profiles++] = optarg;
            break;
        case 'D':
            snd.dry_run = true;
            break;
        case 'T':
            gen.template_path = optarg;
            only_raw = false;
            break;
        case 'n':
            if (!pc_parse_long(optarg, 1, 100000000, &gen.count)) {
                rc = pkcsctl_usage_error(CMD, "--count wants a number from 1, not \"%s\"", optarg);
                goto out_free_inputs;
            }
            break;
        case 'p':
            gen.prefix = optarg;
            break;
        case 'd':
            gen.keys_dir = optarg;
            break;
        case 'K':
            if (strcmp(optarg, "rsa") != 0 && strcmp(optarg, "ec") != 0) {
                rc = pkcsctl_usage_error(CMD, "--key-alg is rsa or ec, not \"%s\"", optarg);
                goto out_free_inputs;
            }
            gen.key_alg = strcmp(optarg, "rsa") == 0 ? PC_KEY_RSA : PC_KEY_EC;
            break;
        case 'u':
            snd.unsigned_requests = true;
            break;
        case 'M':
            snd.message_key = optarg;
            break;
        case 'c':
            snd.corrupt_signature = true;
            break;
        case 'w':
            if (!pc_parse_long(optarg, 1, 86400, &timeout_s)) {
                rc = pkcsctl_usage_error(CMD, "--timeout wants seconds (1-86400), not \"%s\"",
                                         optarg);
                goto out_free_inputs;
            }
            break;
        case 'Z':
            if (!parse_rate(optarg, &snd.rate)) {
                rc = pkcsctl_usage_error(CMD,
                                         "--rate wants requests per second, a positive number "
                                         "up to %.0f, not \"%s\"",
                                         RATE_MAX, optarg);
                goto out_free_inputs;
            }
            break;
        case 'h':
            help();
            rc = 0;
            goto out_free_inputs;
        default:
            rc = pkcsctl_usage_error(CMD, "unknown option");
            goto out_free_inputs;
        }
    }
    if (optind < argc) {
        rc = pkcsctl_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
        goto out_free_inputs;
    }
    snd.brokers = pkcsctl_kafka_brokers(brokers);
    snd.algorithm = algorithm;
    if ((rc = check_inputs(&snd, signer_key, inputs, n_inputs, &gen, only_raw)) != 0 ||
        (rc = pair_profiles(inputs, n_inputs, profiles, n_profiles, &gen)) != 0)
        goto out_free_inputs;
    if (!snd.unsigned_requests && !snd.dry_run && !only_raw &&
        (rc = pkcsctl_signer_load(&snd, signer_key, passphrase_file)) != 0)
        goto out_free_inputs;
    rc = run(&snd, inputs, n_inputs, &gen, timeout_s);
    pc_signer_free(snd.signer);
out_free_inputs:
    free(profiles);
    free(inputs);
    return rc;
}
