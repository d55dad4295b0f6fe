/*
 * pkcsctl revoke: what an upstream system sends when a device is wiped or retired or a profile
 * unassigned - a REVOKE request for one serial, signed and produced to the requests topic the
 * way `pkcsctl submit` sends (sender.c). With --wait it follows the results topic for that
 * request id (results.c) and prints the outcome. Main thread only, blocking.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "clock.h"
#include "common.h"
#include "numbers.h"
#include "request.h"
#include "results.h"
#include "sender.h"

#define CMD "revoke"
#define SERIAL_MAX 64

/* One `pkcsctl revoke` run. */
typedef struct revoke_opts {
    pkcsctl_sender_t snd;
    const char *signer_key;
    const char *passphrase_file; /* --signer-key-passphrase-file */
    const char *results_topic;
    char serial[SERIAL_MAX + 1]; /* canonical: upper-case hex */
    char *ca_name, *issuer, *request_id, *tenant, *device_id, *user_id;
    char *target_request, *profile_id;
    Pkcs__V1__RevokeScope scope;
    int scopes; /* how many of --serial, --device, --user, --request were given */
    Pkcs__V1__RevokeReason reason;
    Pkcs__V1__RevokeScenario scenario;
    bool wait;
    long timeout_s;
} revoke_opts_t;

static void help(void)
{
    printf(
        "usage: pkcsctl revoke (--serial HEX --ca NAME | --device ID | --user ID | --request ID)\n"
        "                      [--profile NAME] [OPTIONS]\n\n"
        "Produces a signed REVOKE request (pkcs.v1.Request) to the requests topic, as an\n"
        "upstream system does when a device is wiped or retired or a profile unassigned, and\n"
        "prints its request id. A worker finds the tenant's certificates it names (only ever\n"
        "that tenant's), revokes them at their CAs and publishes a REVOKED result listing them\n"
        "(or FAILED); the next CRL lists them (pkcsctl crl). Sent again, it revokes nothing "
        "more.\n\n"
        "what (one of):\n"
        "  --serial HEX          one certificate: its serial in hex (colons and case ignored),\n"
        "                        with --ca NAME, the CA that issued it (e.g. local)\n"
        "  --device ID           every valid certificate of the device (wipe, retire)\n"
        "  --user ID             every valid certificate of the user\n"
        "  --request ID          every valid certificate issued for request id ID\n"
        "  --profile NAME        with --device or --user: only that profile's (unassignment)\n"
        "  --ca NAME             with --device, --user or --request: only that CA's\n\n"
        "request:\n"
        "  --issuer DN           its issuer, as text (optional, carried in the request)\n"
        "  --reason R            key-compromise, superseded, affiliation-changed, cessation or\n"
        "                        unspecified (default; the CRL then carries no reason code)\n"
        "  --scenario S          wipe, retire, unassigned or user-deleted (carried through)\n"
        "  --request-id ID       idempotency key (default revoke-SERIAL-RANDOM)\n"
        "  --tenant T            tenant id (default \"default\")\n"
        "  --device-id D         the device (also the Kafka message key: orders it after that\n"
        "                        device's earlier requests; --device sets it)\n"
        "  --user-id U           the user (message key when there is no device id; --user\n"
        "                        sets it)\n\n"
        "sending:\n"
        "  --brokers LIST        bootstrap servers (default $PC_KAFKA_BROKERS, "
        "else " PKCSCTL_DEFAULT_BROKERS ")\n"
        "  --topic NAME          requests topic (default pkcs.requests)\n"
        "  --signer-key-id ID    the signer's key id, as the workers know it\n"
        "  --signer-algorithm A  ed25519 (default), ecdsa-p256-sha256 or hmac-sha256\n"
        "  --signer-key FILE     PEM private key, or the HMAC secret file; unencrypted, it must\n"
        "                        be readable by its owner only (chmod 600)\n"
        "  --signer-key-passphrase-file FILE\n"
        "                        the passphrase of an encrypted --signer-key (chmod 600)\n"
        "  --unsigned            send the request without a signature (tests)\n"
        "  --timeout S           give up after S seconds (default 60), for delivery and --wait\n\n"
        "  --wait                follow the results topic until this request's result arrives\n"
        "                        and print \"REVOKED SERIAL\" or \"FAILED CODE: message\"\n"
        "  --results-topic NAME  results topic for --wait (default pkcs.results)\n\n"
        "Exits 0 when the request was delivered (and, with --wait, revoked); 1 otherwise.\n");
}

/* canon_serial copies text without ':' and spaces, in upper case; false when it is empty, too
 * long or not hex. */
static bool canon_serial(const char *text, char out[SERIAL_MAX + 1])
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ':' || *p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p) || n == SERIAL_MAX)
            return false;
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
    return n > 0;
}

static const struct {
    const char *name;
    Pkcs__V1__RevokeReason value;
} reasons[] = {
    {"unspecified", PKCS__V1__REVOKE_REASON__REVOKE_REASON_UNSPECIFIED},
    {"key-compromise", PKCS__V1__REVOKE_REASON__KEY_COMPROMISE},
    {"affiliation-changed", PKCS__V1__REVOKE_REASON__AFFILIATION_CHANGED},
    {"superseded", PKCS__V1__REVOKE_REASON__SUPERSEDED},
    {"cessation", PKCS__V1__REVOKE_REASON__CESSATION_OF_OPERATION},
};

static const struct {
    const char *name;
    Pkcs__V1__RevokeScenario value;
} scenarios[] = {
    {"wipe", PKCS__V1__REVOKE_SCENARIO__DEVICE_WIPE},
    {"retire", PKCS__V1__REVOKE_SCENARIO__DEVICE_RETIRE},
    {"unassigned", PKCS__V1__REVOKE_SCENARIO__PROFILE_UNASSIGNED},
    {"user-deleted", PKCS__V1__REVOKE_SCENARIO__USER_DELETED},
};

static bool parse_reason(const char *text, Pkcs__V1__RevokeReason *out)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcmp(text, reasons[i].name) == 0) {
            *out = reasons[i].value;
            return true;
        }
    return false;
}

static bool parse_scenario(const char *text, Pkcs__V1__RevokeScenario *out)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (strcmp(text, scenarios[i].name) == 0) {
            *out = scenarios[i].value;
            return true;
        }
    return false;
}

/* option handles one option; returns -1 to go on, else the exit code. */
static int option(revoke_opts_t *o, int c, char *arg)
{
    switch (c) {
    case 's':
        if (!canon_serial(arg, o->serial))
            return pkcsctl_usage_error(CMD, "--serial wants 1-%d hex digits, not \"%s\"",
                                       SERIAL_MAX, arg);
        return -1;
    case 'a':
        o->ca_name = arg;
        return -1;
    case 'I':
        o->issuer = arg;
        return -1;
    case 'r':
        if (!parse_reason(arg, &o->reason))
            return pkcsctl_usage_error(CMD,
                                       "--reason is key-compromise, superseded, "
                                       "affiliation-changed, cessation or unspecified, not \"%s\"",
                                       arg);
        return -1;
    case 'S':
        if (!parse_scenario(arg, &o->scenario))
            return pkcsctl_usage_error(
                CMD, "--scenario is wipe, retire, unassigned or user-deleted, not \"%s\"", arg);
        return -1;
    case 'q':
        o->request_id = arg;
        return -1;
    case 'T':
        o->tenant = arg;
        return -1;
    case 'd':
        o->device_id = arg;
        o->scope = PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_DEVICE;
        o->scopes++;
        return -1;
    case 'e':
        o->user_id = arg;
        o->scope = PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_USER;
        o->scopes++;
        return -1;
    case 'Q':
        o->target_request = arg;
        o->scope = PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_REQUEST;
        o->scopes++;
        return -1;
    case 'P':
        o->profile_id = arg;
        return -1;
    case 'D':
        o->device_id = arg;
        return -1;
    case 'U':
        o->user_id = arg;
        return -1;
    case 'b':
        o->snd.brokers = arg;
        return -1;
    case 't':
        o->snd.topic = arg;
        return -1;
    case 'i':
        o->snd.key_id = arg;
        return -1;
    case 'g':
        o->snd.algorithm = arg;
        return -1;
    case 'k':
        o->signer_key = arg;
        return -1;
    case 'F':
        o->passphrase_file = arg;
        return -1;
    case 'u':
        o->snd.unsigned_requests = true;
        return -1;
    case 'w':
        if (!pc_parse_long(arg, 1, 86400, &o->timeout_s))
            return pkcsctl_usage_error(CMD, "--timeout wants seconds (1-86400), not \"%s\"", arg);
        return -1;
    case 'W':
        o->wait = true;
        return -1;
    case 'R':
        o->results_topic = arg;
        return -1;
    case 'h':
        help();
        return 0;
    default:
        return pkcsctl_usage_error(CMD, "unknown option");
    }
}

static int parse_opts(int argc, char **argv, revoke_opts_t *o)
{
    static const struct option opts[] = {
        {"serial", required_argument, NULL, 's'},
        {"ca", required_argument, NULL, 'a'},
        {"issuer", required_argument, NULL, 'I'},
        {"reason", required_argument, NULL, 'r'},
        {"scenario", required_argument, NULL, 'S'},
        {"request-id", required_argument, NULL, 'q'},
        {"tenant", required_argument, NULL, 'T'},
        {"device-id", required_argument, NULL, 'D'},
        {"user-id", required_argument, NULL, 'U'},
        {"device", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'e'},
        {"request", required_argument, NULL, 'Q'},
        {"profile", required_argument, NULL, 'P'},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"signer-key-id", required_argument, NULL, 'i'},
        {"signer-algorithm", required_argument, NULL, 'g'},
        {"signer-key", required_argument, NULL, 'k'},
        {"signer-key-passphrase-file", required_argument, NULL, 'F'},
        {"unsigned", no_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 'w'},
        {"wait", no_argument, NULL, 'W'},
        {"results-topic", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if ((rc = option(o, c, optarg)) >= 0)
            return rc;
    if (optind < argc)
        return pkcsctl_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    if (o->serial[0] != '\0')
        o->scopes++;
    if (o->scopes != 1)
        return pkcsctl_usage_error(CMD, "say what to revoke, once: --serial HEX --ca NAME, "
                                        "--device ID, --user ID or --request ID");
    if (o->serial[0] != '\0' && o->ca_name == NULL)
        return pkcsctl_usage_error(CMD, "--serial HEX needs --ca NAME, the CA that issued it");
    if (o->profile_id != NULL && o->scope != PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_DEVICE &&
        o->scope != PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_USER)
        return pkcsctl_usage_error(CMD, "--profile goes with --device or --user");
    if (!o->snd.unsigned_requests && (o->snd.key_id == NULL || o->signer_key == NULL))
        return pkcsctl_usage_error(CMD, "signing needs --signer-key-id ID and --signer-key "
                                        "FILE (or --unsigned to send it unsigned)");
    if (o->request_id != NULL &&
        (o->request_id[0] == '\0' || strlen(o->request_id) > PC_MAX_ID_LEN))
        return pkcsctl_usage_error(CMD, "--request-id must be 1-%u bytes", PC_MAX_ID_LEN);
    return -1;
}

/* send_revoke builds the request and produces it; the id it carries is in id. */
static int send_revoke(revoke_opts_t *o, const char *id)
{
    static char default_tenant[] = "default";
    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rv;
    char request_id[160];
    snprintf(request_id, sizeof(request_id), "%s", id);
    static char none[] = "";
    pkcs__v1__request__init(&req);
    pkcs__v1__revoke_request__init(&rv);
    rv.ca_name = o->ca_name != NULL ? o->ca_name : none;
    rv.serial_number = o->serial;
    rv.scope = o->scope;
    if (o->target_request != NULL)
        rv.target_request_id = o->target_request;
    if (o->profile_id != NULL)
        rv.profile_id = o->profile_id;
    if (o->issuer != NULL)
        rv.issuer = o->issuer;
    rv.reason = o->reason;
    rv.scenario = o->scenario;
    req.schema_version = PC_SCHEMA_VERSION;
    req.request_id = request_id;
    req.tenant_id = o->tenant != NULL ? o->tenant : default_tenant;
    req.kind = PKCS__V1__KIND__REVOKE;
    if (o->device_id != NULL)
        req.device_id = o->device_id;
    if (o->user_id != NULL)
        req.user_id = o->user_id;
    req.created_at_ms = pc_now_ms();
    req.body_case = PKCS__V1__REQUEST__BODY_REVOKE;
    req.revoke = &rv;
    if (pkcsctl_producer_new(&o->snd, o->timeout_s) != 0)
        return 1;
    int rc = pkcsctl_send_request(&o->snd, &req);
    return pkcsctl_producer_finish(&o->snd, o->timeout_s, rc);
}

/* make_id fills id with --request-id, or revoke-SERIAL-RANDOM. */
static int make_id(const revoke_opts_t *o, char *id, size_t len)
{
    unsigned char rnd[4];
    if (o->request_id != NULL) {
        snprintf(id, len, "%s", o->request_id);
        return 0;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return pkcsctl_error(CMD, "no randomness for a request id; give --request-id");
    const char *what = o->serial[0] != '\0' ? o->serial : "scope";
    snprintf(id, len, "revoke-%s-%02x%02x%02x%02x", what, rnd[0], rnd[1], rnd[2], rnd[3]);
    return 0;
}

/* report prints the outcome of the request: 0 when revoked. */
static int report(const Pkcs__V1__Result *res)
{
    if (res->status == PKCS__V1__STATUS__REVOKED) {
        if (res->n_revoked == 0)
            printf("REVOKED nothing: no valid certificate left to revoke\n");
        for (size_t i = 0; i < res->n_revoked; i++)
            printf("REVOKED %s %s\n", res->revoked[i]->serial_number, res->revoked[i]->ca_name);
        return 0;
    }
    const ProtobufCEnumValue *code =
        protobuf_c_enum_descriptor_get_value(&pkcs__v1__error_code__descriptor, res->error_code);
    printf("FAILED %s: %s\n", code != NULL ? code->name : "?", res->error_message);
    return pkcsctl_error(
        CMD, "request %s was not revoked: %s%s", res->request_id, res->error_message,
        res->retryable ? " (a retryable error: send the request again later)" : "");
}

static int run(revoke_opts_t *o)
{
    char id[160];
    pkcsctl_waiter_t *waiter = NULL;
    Pkcs__V1__Result *res = NULL;
    int rc = make_id(o, id, sizeof(id));
    if (rc != 0)
        return rc;
    /* The waiter marks where the results topic ends before the request goes out, so the
     * result cannot slip past it. */
    if (o->wait &&
        pkcsctl_waiter_new(CMD, o->snd.brokers, o->results_topic, o->timeout_s, &waiter) != 0)
        return 1;
    if ((rc = send_revoke(o, id)) != 0)
        goto out_free_waiter;
    printf("%s\n", id);
    fflush(stdout);
    if (waiter != NULL && (rc = pkcsctl_waiter_wait(waiter, id, o->timeout_s, &res)) == 0) {
        rc = report(res);
        pkcs__v1__result__free_unpacked(res, NULL);
    }
out_free_waiter:
    pkcsctl_waiter_free(waiter);
    return rc;
}

int pkcsctl_revoke(int argc, char **argv)
{
    revoke_opts_t o = {
        .snd = {.cmd = CMD, .topic = "pkcs.requests", .brokers = getenv("PC_KAFKA_BROKERS")},
        .results_topic = "pkcs.results",
        .timeout_s = 60,
    };
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    o.snd.brokers = pkcsctl_kafka_brokers(o.snd.brokers);
    if (!o.snd.unsigned_requests &&
        (rc = pkcsctl_signer_load(&o.snd, o.signer_key, o.passphrase_file)) != 0)
        return rc;
    rc = run(&o);
    pc_signer_free(o.snd.signer);
    return rc;
}
