/*
 * coord_totals.c - cluster totals, the issue rate and the coordinator's metrics.
 *
 * Totals and the *_total counters come from the cluster's statistics in Redis (pc:stats:total,
 * lib/cluster/stats.c), which every worker adds to as it finishes a request: they survive
 * restarts of workers and coordinators alike. Only before the first read of them do the totals
 * fall back on the sum of the live workers' counts.
 *
 * The issue rate of the last minute follows the workers' heartbeats, which are fresher than a
 * minute's hash: the workers' counts are per process and vanish with their registry entry, so
 * the rate adds up what each worker did since the previous refresh (its counts minus the ones
 * seen last time for the same worker id and start time; a restarted worker starts from zero),
 * which never decreases. Loop thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"

#define FORGET_MS (3600 * 1000) /* a worker unseen this long is forgotten */

static const char *const count_names[COUNT__N] = {"issued", "failed", "revoked", "dlq"};

/* The statistic behind each count of the totals. */
static const pc_stats_count_t count_stats[COUNT__N] = {
    [COUNT_ISSUED] = PC_STATS_ISSUED,
    [COUNT_FAILED] = PC_STATS_FAILED,
    [COUNT_REVOKED] = PC_STATS_REVOKED,
    [COUNT_DLQ] = PC_STATS_DLQ,
};

/* count_from_stats advances the *_total counters to the cluster's totals (never backwards: a
 * Redis emptied by hand must not make a counter decrease). */
static void count_from_stats(pc_coord_view_t *view, pc_coord_metrics_t *m)
{
    pc_counter_t *counters[COUNT__N] = {m->issued, m->failed, m->revoked, m->dlq};
    for (int k = 0; view->have_stats && k < COUNT__N; k++) {
        uint64_t now_n = view->stats.total[count_stats[k]];
        if (now_n > view->counted[k]) {
            pc_counter_add(counters[k], now_n - view->counted[k]);
            view->counted[k] = now_n;
        }
    }
}

static uint64_t count_of(const json_t *worker, int k)
{
    json_int_t n =
        json_integer_value(json_object_get(json_object_get(worker, "counts"), count_names[k]));
    return n > 0 ? (uint64_t)n : 0;
}

/* advance_counts adds to added[] what each worker did since it was last seen, and remembers
 * its counts for the next time. */
static void advance_counts(pc_coord_view_t *view, const json_t *workers, int64_t now,
                           uint64_t added[COUNT__N])
{
    size_t i;
    const json_t *w;
    const char *id;
    json_t *entry;
    void *tmp;
    if (view->last_counts == NULL && (view->last_counts = json_object()) == NULL)
        return;
    json_array_foreach(workers, i, w)
    {
        const char *wid = json_string_value(json_object_get(w, "id"));
        json_int_t started = json_integer_value(json_object_get(w, "started_at"));
        json_t *prev = json_object_get(view->last_counts, wid);
        bool same =
            prev != NULL && json_integer_value(json_object_get(prev, "started_at")) == started;
        json_t *counts = json_array();
        for (int k = 0; k < COUNT__N; k++) {
            uint64_t now_n = count_of(w, k);
            uint64_t before = same ? (uint64_t)json_integer_value(
                                         json_array_get(json_object_get(prev, "counts"), (size_t)k))
                                   : 0;
            added[k] += now_n > before ? now_n - before : 0;
            json_array_append_new(counts, json_integer((json_int_t)now_n));
        }
        json_object_set_new(view->last_counts, wid,
                            json_pack("{s:I,s:I,s:o}", "started_at", started, "seen",
                                      (json_int_t)now, "counts", counts));
    }
    json_object_foreach_safe(view->last_counts, tmp, id, entry)
    {
        if (json_integer_value(json_object_get(entry, "seen")) < now - FORGET_MS)
            json_object_del(view->last_counts, id);
    }
}

/* issue_rate records a sample of the cumulative issued count and returns the rate per second
 * over the samples of the last minute. */
static double issue_rate(pc_coord_view_t *view, int64_t now)
{
    size_t slot = (view->sample_head + view->sample_count) % COORD_RATE_SAMPLES;
    view->samples[slot].t_ms = now;
    view->samples[slot].issued = view->cumulative[COUNT_ISSUED];
    if (view->sample_count == COORD_RATE_SAMPLES)
        view->sample_head = (view->sample_head + 1) % COORD_RATE_SAMPLES;
    else
        view->sample_count++;
    while (view->sample_count > 1 &&
           view->samples[view->sample_head].t_ms < now - COORD_RATE_WINDOW_MS) {
        view->sample_head = (view->sample_head + 1) % COORD_RATE_SAMPLES;
        view->sample_count--;
    }
    int64_t dt = now - view->samples[view->sample_head].t_ms;
    if (dt <= 0)
        return 0.0;
    uint64_t done = view->cumulative[COUNT_ISSUED] - view->samples[view->sample_head].issued;
    return round((double)done * 1000.0 / (double)dt * 100.0) / 100.0;
}

void pc_coord_view_set_totals(pc_coord_t *coord, const json_t *workers, bool counted, int64_t now,
                              int64_t lag, size_t problems)
{
    pc_coord_view_t *view = &coord->view;
    pc_coord_metrics_t *m = &coord->m;
    uint64_t sums[COUNT__N] = {0}, added[COUNT__N] = {0};
    json_int_t active = 0, degraded = 0, inactive = 0, in_flight = 0;
    size_t i;
    const json_t *w;

    json_array_foreach(workers, i, w)
    {
        const char *state = json_string_value(json_object_get(w, "state"));
        bool is_degraded = strcmp(state, "Degraded") == 0;
        bool is_active = strcmp(state, "Active") == 0 || is_degraded; /* in the group, working */
        active += is_active && !is_degraded;
        degraded += is_degraded;
        inactive += !is_active;
        for (int k = 0; k < COUNT__N; k++)
            sums[k] += count_of(w, k);
        if (is_active)
            in_flight +=
                json_integer_value(json_object_get(json_object_get(w, "counts"), "in_flight"));
    }
    if (counted) {
        advance_counts(view, workers, now, added);
        for (int k = 0; k < COUNT__N; k++)
            view->cumulative[k] += added[k];
        view->rate = issue_rate(view, now);
    }
    count_from_stats(view, m);
    for (int k = 0; view->have_stats && k < COUNT__N; k++)
        sums[k] = view->stats.total[count_stats[k]];
    const uint64_t *st = view->stats.total;
    json_decref(view->totals);
    view->totals = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:o,s:I,s:o,s:o,s:o,s:o,s:b}", "updated_at",
        (json_int_t)now, "issued", (json_int_t)sums[COUNT_ISSUED], "failed",
        (json_int_t)sums[COUNT_FAILED], "revoked", (json_int_t)sums[COUNT_REVOKED], "dlq",
        (json_int_t)sums[COUNT_DLQ], "in_flight", in_flight, "active", active, "degraded", degraded,
        "inactive", inactive, "issue_rate_per_s", view->rate, "lag",
        lag == COORD_UNKNOWN ? json_null() : json_integer(lag), "topic_problems",
        (json_int_t)problems, "imported",
        view->have_stats ? json_integer((json_int_t)st[PC_STATS_IMPORTED]) : json_null(), "renewed",
        view->have_stats ? json_integer((json_int_t)st[PC_STATS_RENEWED]) : json_null(),
        "conflicts",
        view->have_stats ? json_integer((json_int_t)st[PC_STATS_CONFLICTS]) : json_null(),
        "stats_error", view->stats_error[0] != '\0' ? json_string(view->stats_error) : json_null(),
        "since_cluster_began", view->have_stats);
    pc_gauge_set(m->active, (double)active);
    pc_gauge_set(m->degraded, (double)degraded);
    pc_gauge_set(m->inactive, (double)inactive);
    pc_gauge_set(m->lag, lag == COORD_UNKNOWN ? NAN : (double)lag);
    pc_gauge_set(m->rate, view->rate);
    pc_gauge_set(m->problems, (double)problems);
    pc_gauge_set(m->in_flight, (double)in_flight);
    pc_gauge_set(m->up_redis, view->redis_ok ? 1.0 : 0.0);
    pc_gauge_set(m->up_kafka, view->kafka_ok ? 1.0 : 0.0);
}

pc_err_t pc_coord_metrics_init(pc_coord_metrics_t *m)
{
    const char *workers = "pkcs_cluster_workers";
    const char *workers_help = "Workers in the registry, by state";
    const char *up = "pkcs_cluster_up";
    const char *up_help = "Whether the last refresh could read the dependency (1) or not (0)";
    const char *total_help = "Requests the cluster finished since it began, by outcome (the "
                             "statistics in Redis, pc:stats:total)";
    if ((m->registry = pc_metrics_new()) == NULL)
        return PC_ERR_NOMEM;
    m->active = pc_metrics_gauge(m->registry, workers, workers_help, "state=\"active\"");
    m->degraded = pc_metrics_gauge(m->registry, workers, workers_help, "state=\"degraded\"");
    m->inactive = pc_metrics_gauge(m->registry, workers, workers_help, "state=\"inactive\"");
    m->lag =
        pc_metrics_gauge(m->registry, "pkcs_cluster_lag",
                         "Requests not yet processed by the consumer group (NaN: unknown)", "");
    m->rate = pc_metrics_gauge(m->registry, "pkcs_cluster_issue_rate",
                               "Certificates issued per second over the last minute", "");
    m->problems = pc_metrics_gauge(m->registry, "pkcs_cluster_topic_problems",
                                   "Topics missing or not as configured (see /api/topics)", "");
    m->in_flight = pc_metrics_gauge(m->registry, "pkcs_cluster_in_flight",
                                    "Requests in the active workers' pipelines", "");
    m->up_redis = pc_metrics_gauge(m->registry, up, up_help, "dependency=\"redis\"");
    m->up_kafka = pc_metrics_gauge(m->registry, up, up_help, "dependency=\"kafka\"");
    m->issued = pc_metrics_counter(m->registry, "pkcs_cluster_issued_total", total_help, "");
    m->failed = pc_metrics_counter(m->registry, "pkcs_cluster_failed_total", total_help, "");
    m->revoked = pc_metrics_counter(m->registry, "pkcs_cluster_revoked_total", total_help, "");
    m->dlq = pc_metrics_counter(m->registry, "pkcs_cluster_dlq_total", total_help, "");
    if (m->active == NULL || m->degraded == NULL || m->inactive == NULL || m->lag == NULL ||
        m->rate == NULL || m->problems == NULL || m->in_flight == NULL || m->up_redis == NULL ||
        m->up_kafka == NULL || m->issued == NULL || m->failed == NULL || m->revoked == NULL ||
        m->dlq == NULL)
        return PC_ERR_NOMEM;
    return PC_OK;
}
