/*
 * coord_stats.c - /api/stats: the cluster's statistics as the status page charts them. From the
 * last read of pc:stats:* (lib/cluster/stats.c): the totals since the cluster began, and for
 * each minute of the last hour the requests issued and failed per second and the latency
 * percentiles (p50, p99, interpolated within the histogram's buckets), then the same over the
 * whole hour. The minute in progress is divided by the seconds it has had, not by 60, so that
 * the last point of a chart is not low by construction. Loop thread.
 */
#include <math.h>

#include "coord.h"

static json_t *rate(uint64_t n, double seconds)
{
    return json_real(round((double)n / (seconds > 1.0 ? seconds : 1.0) * 1e4) / 1e4);
}

static json_t *ms(double v)
{
    return v >= 0 ? json_real(round(v * 10.0) / 10.0) : json_null();
}

/* figures: counts, rates over seconds and percentiles of lat. */
static json_t *figures(uint64_t issued, uint64_t failed, const uint64_t lat[PC_STATS_BUCKETS],
                       double seconds)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o}", "issued", (json_int_t)issued, "failed",
                     (json_int_t)failed, "issued_per_s", rate(issued, seconds), "failed_per_s",
                     rate(failed, seconds), "p50_ms", ms(pc_stats_quantile(lat, 0.50)), "p99_ms",
                     ms(pc_stats_quantile(lat, 0.99)));
}

json_t *pc_coord_stats_doc(const pc_coord_view_t *view, int64_t now)
{
    const pc_stats_view_t *s = &view->stats;
    json_t *minutes = json_array(), *total = json_object(), *bounds = json_array();
    uint64_t hour_lat[PC_STATS_BUCKETS] = {0}, issued = 0, failed = 0;
    double seconds = 0;
    for (size_t b = 0; b + 1 < PC_STATS_BUCKETS; b++)
        json_array_append_new(bounds, json_integer((json_int_t)pc_stats_bounds_ms[b]));
    for (int c = 0; view->have_stats && c < PC_STATS__COUNT; c++)
        json_object_set_new(total, pc_stats_names[c], json_integer((json_int_t)s->total[c]));
    for (size_t i = 0; view->have_stats && i < s->count; i++) {
        const pc_stats_minute_t *m = &s->minutes[i];
        int64_t start = m->minute * 60000;
        double secs = now >= start + 60000 ? 60.0
                      : now > start        ? (double)(now - start) / 1000.0
                                           : 1.0;
        json_t *point =
            figures(m->counts[PC_STATS_ISSUED], m->counts[PC_STATS_FAILED], m->lat, secs);
        json_object_set_new(point, "t", json_integer((json_int_t)start));
        json_array_append_new(minutes, point);
        for (size_t b = 0; b < PC_STATS_BUCKETS; b++)
            hour_lat[b] += m->lat[b];
        issued += m->counts[PC_STATS_ISSUED];
        failed += m->counts[PC_STATS_FAILED];
        seconds += secs;
    }
    if (!view->have_stats) {
        json_decref(total);
        total = json_null();
    }
    return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o}", "updated_at", (json_int_t)now, "error",
                     view->stats_error[0] != '\0' ? json_string(view->stats_error) : json_null(),
                     "total", total, "latency_buckets_ms", bounds, "minutes", minutes, "hour",
                     figures(issued, failed, hour_lat, seconds));
}
