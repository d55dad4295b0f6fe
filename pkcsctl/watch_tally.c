/*
 * pkcsctl watch: the tally of what arrived on the results topic - counts by status and error
 * code, distinct request ids, and duplicates split by whether they carry the same certificate
 * (expected under at-least-once delivery) or a DIFFERENT one (a request issued twice); the
 * end-to-end latency of each result and its --latency-csv line; and the summary. Main thread
 * only.
 */
#include "watch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "common.h"
#include "numbers.h"
#include "text.h"

#define CMD WATCH_CMD

/* track_ids records the request (tenant and request id: two tenants may use one id) and
 * classifies a duplicate as same or DIFFERENT certificate. */
static void track_ids(watch_t *w, const Pkcs__V1__Result *res)
{
    char hex[PKCSCTL_SHA256_HEX_LEN] = ""; /* "": no certificate (a failure, a revocation) */
    char tenant[PC_KEY_SEGMENT_MAX(256)], id[PC_KEY_SEGMENT_MAX(256)], key[sizeof(tenant) * 2];
    if (res->certificate.len > 0)
        pkcsctl_sha256_hex(res->certificate.data, res->certificate.len, hex);
    if (pc_key_segment(res->tenant_id, tenant, sizeof(tenant), NULL) != PC_OK ||
        pc_key_segment(res->request_id, id, sizeof(id), NULL) != PC_OK) {
        w->undecodable++; /* ids longer than any request may have: not a result of ours */
        return;
    }
    snprintf(key, sizeof(key), "%s/%s", tenant, id);
    json_t *want = w->wanted != NULL ? json_object_get(w->wanted, res->request_id) : NULL;
    if (want != NULL && json_is_true(want)) {
        json_object_set_new_nocheck(w->wanted, res->request_id, json_false());
        w->wanted_seen++;
    }
    json_t *prev = json_object_get(w->seen, key);
    if (prev == NULL) {
        json_object_set_new_nocheck(w->seen, key, json_string_nocheck(hex));
        return;
    }
    w->duplicates++;
    const char *before = json_string_value(prev);
    if (before[0] != '\0' && hex[0] != '\0' && strcmp(before, hex) != 0) {
        w->dup_different++;
        pkcsctl_error(CMD,
                      "request %s of tenant %s got a DIFFERENT certificate: SHA-256 %s, "
                      "earlier %s",
                      res->request_id, res->tenant_id, hex, before);
        return;
    }
    w->dup_same++;
    if (before[0] == '\0' && hex[0] != '\0')
        json_string_set_nocheck(prev, hex);
}

static void count_status(watch_t *w, const Pkcs__V1__Result *res)
{
    const ProtobufCEnumDescriptor *codes = &pkcs__v1__error_code__descriptor;
    const ProtobufCEnumValue *code;
    switch (res->status) {
    case PKCS__V1__STATUS__ISSUED:
        w->issued++;
        break;
    case PKCS__V1__STATUS__REVOKED:
        w->revoked++;
        break;
    case PKCS__V1__STATUS__IMPORTED:
        w->imported++;
        break;
    case PKCS__V1__STATUS__FAILED:
        w->failed++;
        code = protobuf_c_enum_descriptor_get_value(codes, (int)res->error_code);
        if (code != NULL)
            w->by_code[code - codes->values]++;
        else
            w->by_code_unknown++;
        break;
    default:
        break;
    }
}

void pkcsctl_watch_tally(watch_t *w, const Pkcs__V1__Result *res)
{
    count_status(w, res);
    track_ids(w, res);
}

/* csv_field writes text as one CSV field (RFC 4180): quoted when it holds a comma, a quote or
 * a line break. Request ids come from the topic: anything may be in them. */
static void csv_field(FILE *f, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, f);
        return;
    }
    fputc('"', f);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_line(watch_t *w, const Pkcs__V1__Result *res, int64_t created, int64_t now)
{
    const ProtobufCEnumValue *status =
        protobuf_c_enum_descriptor_get_value(&pkcs__v1__status__descriptor, (int)res->status);
    csv_field(w->latency_csv, res->request_id);
    fprintf(w->latency_csv, ",%s,", status != NULL ? status->name : "UNKNOWN");
    if (created > 0)
        fprintf(w->latency_csv, "%lld", (long long)created);
    fprintf(w->latency_csv, ",%lld,", (long long)now);
    if (created > 0)
        fprintf(w->latency_csv, "%lld", (long long)(now - created));
    fputc('\n', w->latency_csv);
}

void pkcsctl_watch_latency(watch_t *w, const Pkcs__V1__Result *res)
{
    int64_t now = pc_now_ms();
    int64_t created = res->timing != NULL ? res->timing->request_created_at_ms : 0;
    if (w->latency_csv != NULL)
        csv_line(w, res, created, now);
    if (created <= 0)
        return;
    if (w->latency_count == w->latency_cap) {
        size_t cap = w->latency_cap == 0 ? 1024 : w->latency_cap * 2;
        double *grown = realloc(w->latency_ms, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        w->latency_ms = grown;
        w->latency_cap = cap;
    }
    w->latency_ms[w->latency_count++] = (double)(now - created);
    if (w->first_created_ms == 0 || created < w->first_created_ms)
        w->first_created_ms = created;
    w->last_read_ms = now;
}

/* Latency percentiles (nearest rank), mean and throughput: the results with timing over the
 * time from the earliest request created to the last result read. Sorting in place is fine:
 * the summary is the last thing a run prints. */
static void print_latency(const watch_t *w)
{
    size_t n = w->latency_count;
    double sum = 0;
    if (n == 0)
        return;
    pc_sort_doubles(w->latency_ms, n);
    for (size_t i = 0; i < n; i++)
        sum += w->latency_ms[i];
    double span_s = (double)(w->last_read_ms - w->first_created_ms) / 1000.0;
    printf("latency ms (request created -> result read): p50 %.0f, p90 %.0f, p99 %.0f, max %.0f, "
           "mean %.1f over %zu results; throughput %.1f results/s (%zu results in %.3f s from "
           "the first request created to the last result read)\n",
           pc_percentile(w->latency_ms, n, 0.50), pc_percentile(w->latency_ms, n, 0.90),
           pc_percentile(w->latency_ms, n, 0.99), w->latency_ms[n - 1], sum / (double)n, n,
           span_s > 0 ? (double)n / span_s : 0.0, n, span_s);
}

void pkcsctl_watch_summary(const watch_t *w)
{
    const ProtobufCEnumDescriptor *codes = &pkcs__v1__error_code__descriptor;
    bool any = false;
    printf("results: %zu (issued %zu, failed %zu, revoked %zu, imported %zu); distinct request "
           "ids: %zu; duplicates: %zu (same certificate: %zu, DIFFERENT certificate: %zu); "
           "opened+verified: %zu; errors by code:",
           w->results, w->issued, w->failed, w->revoked, w->imported, json_object_size(w->seen),
           w->duplicates, w->dup_same, w->dup_different, w->verified);
    for (unsigned i = 0; i < codes->n_values; i++) {
        if (w->by_code[i] > 0) {
            printf(" %s=%zu", codes->values[i].name, w->by_code[i]);
            any = true;
        }
    }
    if (w->by_code_unknown > 0)
        printf(" UNKNOWN=%zu", w->by_code_unknown);
    printf("%s", any || w->by_code_unknown > 0 ? "" : " none");
    if (w->verify_failed > 0)
        printf("; verification failures: %zu", w->verify_failed);
    if (w->undecodable > 0)
        printf("; undecodable: %zu", w->undecodable);
    if (w->ignored > 0)
        printf("; ignored (not in --ids): %zu", w->ignored);
    printf("\n");
    print_latency(w);
    fflush(stdout);
}
