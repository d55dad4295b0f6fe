/*
 * pkcsctl status: the operator's view of the cluster, from the coordinator's HTTP API -
 * /api/fleet (each worker: Active or Inactive, version, host, counts, last error), /api/totals
 * and /api/lag - as a terminal table, or the raw JSON with --json, read through coord_api.c.
 * Every field is optional: an older or newer coordinator shows what it has and "-" for the
 * rest. Main thread only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common.h"
#include "coord_api.h"
#include "numbers.h"

#define CMD "status"
#define LAGGING_SHOWN 8

static void help(void)
{
    printf("usage: pkcsctl status [--coordinator URL] [--json] [--timeout S]\n\n"
           "Shows the cluster as the coordinator sees it: each worker (state, version, host,\n"
           "uptime, certificates issued, failures, last error), the totals, and the consumer\n"
           "lag of the requests topic.\n\n"
           "options:\n"
           "  --coordinator URL  the coordinator's HTTP address (default $PC_COORDINATOR_URL,\n"
           "                     else " PKCSCTL_COORDINATOR_URL ")\n"
           "  --json             print {\"fleet\":...,\"totals\":...,\"lag\":...} as the "
           "coordinator\n"
           "                     returned them\n"
           "  --timeout S        give up on the coordinator after S seconds (default 5)\n\n"
           "Exits 1 when the coordinator cannot be reached or answers with an error.\n");
}

/* num formats the numeric member key of obj into buf, or "-". */
static const char *num(const json_t *obj, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.1f", json_real_value(v));
    else
        snprintf(buf, len, "-");
    return buf;
}

static const char *uptime(const json_t *worker, char *buf, size_t len)
{
    const json_t *v = json_object_get(worker, "uptime_s");
    if (!json_is_number(v)) {
        snprintf(buf, len, "-");
        return buf;
    }
    long long s = (long long)json_number_value(v);
    if (s >= 86400)
        snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%llds", s < 0 ? 0 : s);
    return buf;
}

/* last_error returns the worker's last error on one line (it may be long or hold newlines). */
static const char *last_error(const json_t *worker, char *buf, size_t len)
{
    snprintf(buf, len, "%s", pkcsctl_text(worker, "last_error"));
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return buf;
}

static void print_fleet(const json_t *fleet)
{
    const json_t *workers = json_object_get(fleet, "workers");
    size_t i;
    const json_t *wk;
    char b1[32], b2[32], b3[32], err[160];
    int id_w = pkcsctl_column_width(workers, "id", 6, 40),
        host_w = pkcsctl_column_width(workers, "host", 4, 32);
    printf("%-*s %-8s %-8s %-*s %-8s %8s %7s  %s\n", id_w, "WORKER", "STATE", "VERSION", host_w,
           "HOST", "UPTIME", "ISSUED", "FAILED", "LAST-ERROR");
    if (json_array_size(workers) == 0)
        printf("(no workers registered)\n");
    json_array_foreach(workers, i, wk)
    {
        const json_t *counts = json_object_get(wk, "counts");
        printf("%-*s %-8s %-8s %-*s %-8s %8s %7s  %s\n", id_w, pkcsctl_text(wk, "id"),
               pkcsctl_text(wk, "state"), pkcsctl_text(wk, "version"), host_w,
               pkcsctl_text(wk, "host"), uptime(wk, b1, sizeof(b1)),
               num(counts, "issued", b2, sizeof(b2)), num(counts, "failed", b3, sizeof(b3)),
               last_error(wk, err, sizeof(err)));
    }
}

static void print_totals(const json_t *t)
{
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32], h[32];
    printf("\nworkers: %s active, %s degraded, %s inactive\n", num(t, "active", a, sizeof(a)),
           num(t, "degraded", h, sizeof(h)), num(t, "inactive", b, sizeof(b)));
    printf("certificates: issued %s, failed %s, revoked %s, dead letters %s; %s issued/s\n",
           num(t, "issued", c, sizeof(c)), num(t, "failed", d, sizeof(d)),
           num(t, "revoked", e, sizeof(e)), num(t, "dlq", f, sizeof(f)),
           num(t, "issue_rate_per_s", g, sizeof(g)));
}

static void print_lag(const json_t *lag)
{
    const json_t *parts = json_object_get(lag, "partitions"), *p;
    char total[32], b1[32], b2[32];
    size_t i, lagging = 0;
    printf("consumer lag: %s messages", num(lag, "total", total, sizeof(total)));
    json_array_foreach(parts, i, p)
    {
        const json_t *l = json_object_get(p, "lag");
        if (!json_is_number(l) || json_number_value(l) <= 0)
            continue;
        if (lagging++ < LAGGING_SHOWN)
            printf("%spartition %s: %s", lagging == 1 ? " (" : ", ",
                   num(p, "partition", b1, sizeof(b1)), num(p, "lag", b2, sizeof(b2)));
    }
    if (lagging > LAGGING_SHOWN)
        printf(", %zu more", lagging - LAGGING_SHOWN);
    printf("%s\n", lagging > 0 ? ")" : "");
}

static int run(const char *base, long timeout_s, bool raw)
{
    json_t *fleet = NULL, *totals = NULL, *lag = NULL;
    int rc = 1;
    if (pkcsctl_coord_get(CMD, base, "/api/fleet", timeout_s, &fleet, NULL) != 0 ||
        pkcsctl_coord_get(CMD, base, "/api/totals", timeout_s, &totals, NULL) != 0 ||
        pkcsctl_coord_get(CMD, base, "/api/lag", timeout_s, &lag, NULL) != 0)
        goto out_free_json;
    if (raw) {
        json_t *all = json_pack("{s:O,s:O,s:O}", "fleet", fleet, "totals", totals, "lag", lag);
        char *text = all != NULL ? json_dumps(all, JSON_INDENT(2)) : NULL;
        json_decref(all);
        if (text == NULL) {
            rc = pkcsctl_error(CMD, "out of memory");
            goto out_free_json;
        }
        printf("%s\n", text);
        free(text);
    } else {
        print_fleet(fleet);
        print_totals(totals);
        print_lag(lag);
    }
    rc = 0;
out_free_json:
    json_decref(lag);
    json_decref(totals);
    json_decref(fleet);
    return rc;
}

int pkcsctl_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    char base[1024];
    bool raw = false;
    long timeout_s = 5;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            url = optarg;
            break;
        case 'j':
            raw = true;
            break;
        case 't':
            if (!pc_parse_long(optarg, 1, 3600, &timeout_s))
                return pkcsctl_usage_error(CMD, "--timeout wants seconds (1-3600), not \"%s\"",
                                           optarg);
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
    pkcsctl_coord_base(url, base, sizeof(base));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pkcsctl_error(CMD, "cannot initialise libcurl");
    int rc = run(base, timeout_s, raw);
    curl_global_cleanup();
    return rc;
}
