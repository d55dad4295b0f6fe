/*
 * pkcsctl certs: the inventory of delivered certificates, read from the coordinator's
 * /api/certs (coord_api.c): `list` (a tenant's certificates, or one device's, user's or
 * request's), `show` (one by CA and serial) and `expiring` (valid ones whose notAfter is within
 * N days). A table for people by default, one JSON object per line with --json (for jq); --all
 * follows the pages. Main thread only.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common.h"
#include "coord_api.h"
#include "numbers.h"

#define PATH_MAX_LEN 4096
#define SUBJECT_SHOWN 48

typedef struct certs_opts {
    const char *cmd; /* "certs list", ... */
    const char *coordinator, *tenant, *device, *user, *request, *profile, *ca;
    bool valid, json, all;
    long days, limit, offset, timeout_s;
} certs_opts_t;

static void help(const char *sub)
{
    if (strcmp(sub, "show") == 0) {
        printf("usage: pkcsctl certs show --tenant T --ca NAME [--json] SERIAL\n\n"
               "Shows one certificate of the inventory: who and what it is for, its validity,\n"
               "thumbprints and status (valid, revoked, superseded, expired). SERIAL in hex\n"
               "(colons and case ignored). Exits 1 when the tenant has no such certificate.\n");
    } else {
        printf("usage: pkcsctl certs list --tenant T [--device D | --user U | --request R]\n"
               "                          [--profile P] [--ca NAME] [--valid] [--json] [--all]\n"
               "       pkcsctl certs expiring --tenant T [--days N] [--profile P] [--ca NAME]\n"
               "                          [--json] [--all]\n"
               "       pkcsctl certs show --tenant T --ca NAME SERIAL\n\n"
               "Reads the inventory of delivered certificates from the coordinator: a tenant's\n"
               "certificates newest first, or one device's, user's or request's; `expiring`\n"
               "lists the valid ones whose notAfter is within N days (default 30), soonest\n"
               "first. Prints a table (serial, CA, status, subject, device, user, notAfter)\n"
               "or, with --json, one JSON object per line.\n\n");
    }
    printf("options:\n"
           "  --coordinator URL  the coordinator's HTTP address (default $PC_COORDINATOR_URL,\n"
           "                     else " PKCSCTL_COORDINATOR_URL ")\n"
           "  --tenant T         the tenant (tenantId of the requests); required\n");
    if (strcmp(sub, "show") != 0)
        printf("  --device D, --user U, --request R   only that device's, user's or request's\n"
               "                     (list only; one of them)\n"
               "  --profile P        only that profile's certificates\n"
               "  --ca NAME          only that CA's certificates\n"
               "  --valid            only valid ones (not revoked, superseded or expired)\n"
               "  --days N           expiring: within N days (1-3650, default 30)\n"
               "  --all              follow the pages to the end (else the first page, and a\n"
               "                     hint on stderr when there is more)\n"
               "  --limit N          certificates per page (1-1000, default 100)\n"
               "  --offset N         start at this position of the list\n");
    else
        printf("  --ca NAME          the CA that issued it; required\n");
    printf("  --json             JSON, one certificate per line\n"
           "  --timeout S        give up on the coordinator after S seconds (default 10)\n");
}

/* ---- the query --------------------------------------------------------------------------- */

/* add_param appends "&name=value" (value percent-encoded) to path; false when it is too long. */
static bool add_param(CURL *curl, char *path, size_t size, const char *name, const char *value)
{
    if (value == NULL)
        return true;
    char *enc = curl_easy_escape(curl, value, 0);
    if (enc == NULL)
        return false;
    size_t n = strlen(path);
    int w =
        snprintf(path + n, size - n, "%s%s=%s", strchr(path, '?') != NULL ? "&" : "?", name, enc);
    curl_free(enc);
    return w > 0 && (size_t)w < size - n;
}

/* list_path builds /api/certs?... for o at offset. */
static bool list_path(CURL *curl, const certs_opts_t *o, long offset, char *path, size_t size)
{
    char num[3][24];
    snprintf(num[0], sizeof(num[0]), "%ld", o->days);
    snprintf(num[1], sizeof(num[1]), "%ld", offset);
    snprintf(num[2], sizeof(num[2]), "%ld", o->limit);
    snprintf(path, size, "/api/certs");
    return add_param(curl, path, size, "tenant", o->tenant) &&
           add_param(curl, path, size, "device", o->device) &&
           add_param(curl, path, size, "user", o->user) &&
           add_param(curl, path, size, "request", o->request) &&
           add_param(curl, path, size, "profile", o->profile) &&
           add_param(curl, path, size, "ca", o->ca) &&
           add_param(curl, path, size, "status", o->valid ? "valid" : NULL) &&
           add_param(curl, path, size, "expiring_days", o->days > 0 ? num[0] : NULL) &&
           add_param(curl, path, size, "offset", offset > 0 ? num[1] : NULL) &&
           add_param(curl, path, size, "limit", num[2]);
}

/* get runs one GET; the coordinator's 4xx become messages: 400 is bad usage (2), others 1. */
static int get(const certs_opts_t *o, const char *path, json_t **out)
{
    char base[1024];
    long status = 0;
    pkcsctl_coord_base(o->coordinator, base, sizeof(base));
    if (pkcsctl_coord_get(o->cmd, base, path, o->timeout_s, out, &status) != 0)
        return 1;
    if (status == 200)
        return 0;
    const char *msg = json_string_value(json_object_get(*out, "error"));
    char text[1024];
    snprintf(text, sizeof(text), "%s", msg != NULL ? msg : "no message");
    json_decref(*out);
    *out = NULL;
    if (status == 400)
        return pkcsctl_usage_error(o->cmd, "the coordinator refused the query: %s", text);
    if (status == 404 && msg == NULL)
        return pkcsctl_error(o->cmd,
                             "%s has no inventory API (HTTP 404); is it a coordinator of this "
                             "version?",
                             base);
    return pkcsctl_error(o->cmd, "%s (HTTP %ld)", text, status);
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *when(const json_t *c, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(c, key);
    struct tm tm;
    time_t t = json_is_integer(v) ? (time_t)(json_integer_value(v) / 1000) : 0;
    if (!json_is_integer(v) || gmtime_r(&t, &tm) == NULL ||
        strftime(buf, size, "%Y-%m-%d %H:%MZ", &tm) == 0)
        snprintf(buf, size, "-");
    return buf;
}

/* one_line copies text with control characters as spaces, cut to max characters ("..."). */
static const char *one_line(const char *text, size_t max, char *buf, size_t size)
{
    size_t n = 0;
    for (; text[n] != '\0' && n + 1 < size; n++)
        buf[n] = (unsigned char)text[n] < 0x20 ? ' ' : text[n];
    buf[n] = '\0';
    if (n > max && max >= 3 && max < size) {
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)buf[cut] & 0xC0) == 0x80)
            cut--; /* not inside a UTF-8 sequence */
        memcpy(buf + cut, "...", 4);
    }
    return buf;
}

static void print_table(const json_t *certs)
{
    size_t i;
    const json_t *c;
    char subject[256], dev[128], user[128], after[32];
    int sw = pkcsctl_column_width(certs, "serial", 6, 64),
        cw = pkcsctl_column_width(certs, "ca", 2, 24);
    int dw = pkcsctl_column_width(certs, "device", 6, 36),
        uw = pkcsctl_column_width(certs, "user", 4, 36);
    printf("%-*s %-*s %-10s %-*s %-*s %-*s %s\n", sw, "SERIAL", cw, "CA", "STATUS", SUBJECT_SHOWN,
           "SUBJECT", dw, "DEVICE", uw, "USER", "NOT-AFTER");
    if (json_array_size(certs) == 0)
        printf("(no certificates)\n");
    json_array_foreach(certs, i, c)
    {
        printf("%-*s %-*s %-10s %-*s %-*s %-*s %s\n", sw, pkcsctl_text(c, "serial"), cw,
               pkcsctl_text(c, "ca"), pkcsctl_text(c, "status"), SUBJECT_SHOWN,
               one_line(pkcsctl_text(c, "subject"), SUBJECT_SHOWN, subject, sizeof(subject)), dw,
               one_line(pkcsctl_text(c, "device"), (size_t)dw, dev, sizeof(dev)), uw,
               one_line(pkcsctl_text(c, "user"), (size_t)uw, user, sizeof(user)),
               when(c, "not_after_ms", after, sizeof(after)));
    }
}

static int print_json_line(const char *cmd, const json_t *c)
{
    char *text = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return pkcsctl_error(cmd, "out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}

static void print_one(const json_t *c)
{
    static const char *const fields[] = {
        "serial",   "ca",      "status",  "kind", "tenant", "device", "user",   "profile",
        "template", "request", "subject", "sans", "sha1",   "sha256", "renews", "renewed_by"};
    char buf[32], line[1024];
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        printf("%-12s %s\n", fields[i],
               one_line(pkcsctl_text(c, fields[i]), sizeof(line) - 1, line, sizeof(line)));
    printf("%-12s %s\n", "not_before", when(c, "not_before_ms", buf, sizeof(buf)));
    printf("%-12s %s\n", "not_after", when(c, "not_after_ms", buf, sizeof(buf)));
    printf("%-12s %s\n", "issued_at", when(c, "issued_at_ms", buf, sizeof(buf)));
    if (json_is_integer(json_object_get(c, "revoked_at_ms"))) {
        printf("%-12s %s\n", "revoked_at", when(c, "revoked_at_ms", buf, sizeof(buf)));
        printf("%-12s %lld\n", "reason",
               (long long)json_integer_value(json_object_get(c, "reason")));
    }
}

/* ---- the subcommands --------------------------------------------------------------------- */

static int run_list(const certs_opts_t *o)
{
    char path[PATH_MAX_LEN];
    json_t *all = json_array(), *page = NULL;
    long offset = o->offset;
    int rc = 1;
    CURL *curl = curl_easy_init();
    if (curl == NULL || all == NULL) {
        rc = pkcsctl_error(o->cmd, "out of memory");
        goto out_free;
    }
    for (;;) {
        if (!list_path(curl, o, offset, path, sizeof(path))) {
            rc = pkcsctl_usage_error(o->cmd, "the ids given are too long for one URL");
            goto out_free;
        }
        if ((rc = get(o, path, &page)) != 0)
            goto out_free;
        json_t *certs = json_object_get(page, "certs"), *c;
        const json_t *next = json_object_get(page, "next_offset");
        size_t i;
        if (!json_is_array(certs)) {
            rc = pkcsctl_error(o->cmd, "the coordinator's answer has no \"certs\" list");
            goto out_free;
        }
        json_array_foreach(certs, i, c)
        {
            if (o->json && print_json_line(o->cmd, c) != 0)
                goto out_free;
            if (!o->json)
                json_array_append(all, c);
        }
        if (!json_is_true(json_object_get(page, "more")) || !json_is_integer(next))
            break;
        if (!o->all) {
            fprintf(stderr,
                    "pkcsctl %s: more certificates follow: --all for every page, or --offset "
                    "%lld for the next\n",
                    o->cmd, (long long)json_integer_value(next));
            break;
        }
        offset = (long)json_integer_value(next);
        json_decref(page);
        page = NULL;
    }
    if (!o->json)
        print_table(all);
    rc = 0;
out_free:
    json_decref(page);
    json_decref(all);
    curl_easy_cleanup(curl);
    return rc;
}

static int run_show(const certs_opts_t *o, const char *serial)
{
    char path[PATH_MAX_LEN];
    json_t *cert = NULL;
    int rc = 1;
    CURL *curl = curl_easy_init();
    char *ca = curl != NULL ? curl_easy_escape(curl, o->ca, 0) : NULL;
    char *sn = curl != NULL ? curl_easy_escape(curl, serial, 0) : NULL;
    if (ca == NULL || sn == NULL) {
        rc = pkcsctl_error(o->cmd, "out of memory");
        goto out_free;
    }
    snprintf(path, sizeof(path), "/api/certs/%s/%s", ca, sn);
    if (!add_param(curl, path, sizeof(path), "tenant", o->tenant)) {
        rc = pkcsctl_usage_error(o->cmd, "the ids given are too long for one URL");
        goto out_free;
    }
    if ((rc = get(o, path, &cert)) != 0)
        goto out_free;
    if (o->json)
        rc = print_json_line(o->cmd, cert);
    else
        print_one(cert);
out_free:
    json_decref(cert);
    curl_free(ca);
    curl_free(sn);
    curl_easy_cleanup(curl);
    return rc;
}

static int parse(int argc, char **argv, certs_opts_t *o, const char *sub)
{
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 't'},
        {"device", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'u'},
        {"request", required_argument, NULL, 'r'},
        {"profile", required_argument, NULL, 'p'},
        {"ca", required_argument, NULL, 'a'},
        {"valid", no_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'A'},
        {"days", required_argument, NULL, 'D'},
        {"limit", required_argument, NULL, 'l'},
        {"offset", required_argument, NULL, 'o'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->coordinator = optarg;
            break;
        case 't':
            o->tenant = optarg;
            break;
        case 'd':
            o->device = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'r':
            o->request = optarg;
            break;
        case 'p':
            o->profile = optarg;
            break;
        case 'a':
            o->ca = optarg;
            break;
        case 'v':
            o->valid = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'A':
            o->all = true;
            break;
        case 'D':
            if (!pc_parse_long(optarg, 1, 3650, &o->days))
                return pkcsctl_usage_error(o->cmd, "--days wants 1-3650, not \"%s\"", optarg);
            break;
        case 'l':
            if (!pc_parse_long(optarg, 1, 1000, &o->limit))
                return pkcsctl_usage_error(o->cmd, "--limit wants 1-1000, not \"%s\"", optarg);
            break;
        case 'o':
            if (!pc_parse_long(optarg, 0, 100000000L, &o->offset))
                return pkcsctl_usage_error(o->cmd, "--offset wants 0 or more, not \"%s\"", optarg);
            break;
        case 'T':
            if (!pc_parse_long(optarg, 1, 3600, &o->timeout_s))
                return pkcsctl_usage_error(o->cmd, "--timeout wants seconds (1-3600), not \"%s\"",
                                           optarg);
            break;
        case 'h':
            help(sub);
            return -1;
        default:
            return pkcsctl_usage_error(o->cmd, "unknown option");
        }
    }
    if (o->tenant == NULL || o->tenant[0] == '\0')
        return pkcsctl_usage_error(o->cmd, "--tenant T is required: the inventory is per tenant");
    return 0;
}

int pkcsctl_certs(int argc, char **argv)
{
    certs_opts_t o = {.limit = 100, .timeout_s = 10};
    char cmd[32];
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        help("list");
        return 0;
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "expiring") != 0)
        return pkcsctl_usage_error("certs",
                                   "say what to do: certs list, certs show or certs "
                                   "expiring%s%s%s",
                                   sub[0] ? " (not \"" : "", sub, sub[0] ? "\")" : "");
    snprintf(cmd, sizeof(cmd), "certs %s", sub);
    o.cmd = cmd;
    int rc = parse(argc - 1, argv + 1, &o, sub);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    int keys = (o.device != NULL) + (o.user != NULL) + (o.request != NULL);
    if (keys > 1)
        return pkcsctl_usage_error(cmd, "give one of --device, --user or --request");
    if (strcmp(sub, "show") == 0) {
        if (o.ca == NULL || optind + 1 != argc - 1)
            return pkcsctl_usage_error(cmd, "give --ca NAME and one SERIAL (hex)");
    } else if (optind < argc - 1) {
        return pkcsctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind + 1]);
    }
    if (strcmp(sub, "expiring") == 0) {
        if (keys > 0)
            return pkcsctl_usage_error(cmd, "expiring lists the whole tenant: leave out "
                                            "--device, --user and --request");
        o.valid = true;
        if (o.days == 0)
            o.days = 30;
    } else if (o.days != 0) {
        return pkcsctl_usage_error(cmd, "--days is for `certs expiring`");
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pkcsctl_error(cmd, "cannot initialise libcurl");
    rc = strcmp(sub, "show") == 0 ? run_show(&o, argv[optind + 1]) : run_list(&o);
    curl_global_cleanup();
    return rc;
}
