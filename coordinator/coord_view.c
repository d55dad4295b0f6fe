/*
 * coord_view.c - turns what a refresh cycle gathered into the documents the HTTP API serves:
 * the fleet (the registry joined with the consumer group: a worker is Active while its
 * heartbeat is alive AND it is a member of the group, Inactive otherwise, with the reason;
 * Degraded when active but retrying, or behind on its partitions), lag per partition and per
 * worker, topics, totals, the cluster's statistics; and updates the metrics. Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "clock.h"

static const char *const count_names[COUNT__N] = {"issued", "failed", "revoked", "dlq"};

static int64_t field_int(const json_t *w, const char *name)
{
    const char *text = json_string_value(json_object_get(w, name));
    return text != NULL ? strtoll(text, NULL, 10) : 0;
}

static json_t *field_str(const json_t *w, const char *name)
{
    const char *text = json_string_value(json_object_get(w, name));
    return text != NULL && text[0] != '\0' ? json_string(text) : json_null();
}

/* counts_of parses the worker's counts (JSON text in the hash); missing ones are 0. */
static json_t *counts_of(const json_t *w)
{
    const char *text = json_string_value(json_object_get(w, "counts"));
    json_t *parsed = text != NULL ? json_loads(text, 0, NULL) : NULL;
    json_t *counts = json_object();
    for (int k = 0; k < COUNT__N; k++) {
        json_int_t n = json_integer_value(json_object_get(parsed, count_names[k]));
        json_object_set_new(counts, count_names[k], json_integer(n > 0 ? n : 0));
    }
    static const char *const gauges[] = {"in_flight", "retrying", "retrying_s"};
    for (size_t k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++)
        json_object_set_new(counts, gauges[k],
                            json_integer(json_integer_value(json_object_get(parsed, gauges[k]))));
    json_object_set_new(counts, "degraded",
                        json_boolean(json_is_true(json_object_get(parsed, "degraded"))));
    json_t *ca_down = json_object_get(parsed, "ca_down");
    json_object_set_new(counts, "ca_down",
                        json_is_array(ca_down) ? json_incref(ca_down) : json_array());
    json_decref(parsed);
    return counts;
}

/* state_of decides Active / Inactive and writes the reason for Inactive into reason. */
static bool state_of(const pc_coord_cycle_t *cycle, const char *id, const json_t *w, int64_t now,
                     char *reason, size_t size)
{
    const json_t *score = json_object_get(w, "score");
    int64_t last_seen = field_int(w, "last_seen");
    if (score == NULL || json_integer_value(score) <= now) {
        if (last_seen > 0)
            snprintf(reason, size, "no heartbeat for %lld s",
                     (long long)((now - last_seen) / 1000));
        else
            snprintf(reason, size, "no heartbeat");
        return false;
    }
    if (!cycle->group_ok) {
        snprintf(reason, size, "consumer group unknown: %s", cycle->group_diag.msg);
        return false;
    }
    if (json_object_get(cycle->members, id) == NULL) {
        snprintf(reason, size, "not in the consumer group");
        return false;
    }
    return true;
}

/* Degraded: active, but the worker says a request has been retrying for its
 * worker.degraded_after_ms, usually on a CA it keeps failing on. */
static const char *degraded_reason(const json_t *counts, const json_t *w, char *reason, size_t size)
{
    json_int_t retrying = json_integer_value(json_object_get(counts, "retrying"));
    json_int_t for_s = json_integer_value(json_object_get(counts, "retrying_s"));
    if (!json_is_true(json_object_get(counts, "degraded")))
        return NULL;
    const char *err = json_string_value(json_object_get(w, "last_error"));
    snprintf(reason, size, "%lld request(s) retrying, the oldest for %lld s: %s",
             (long long)retrying, (long long)for_s, err != NULL && err[0] ? err : "no error text");
    return reason;
}

/* worker_lag sums the lag of the worker's partitions from lag (lag_view's document); -1 when it
 * is not known. */
static int64_t worker_lag(const json_t *parts, const json_t *lag)
{
    const json_t *per = json_object_get(lag, "partitions"), *p;
    int64_t sum = 0;
    size_t i;
    if (!json_is_integer(json_object_get(lag, "total")))
        return -1;
    json_array_foreach(parts, i, p)
    {
        const json_t *row = json_array_get(per, (size_t)json_integer_value(p));
        if (json_integer_value(json_object_get(row, "partition")) == json_integer_value(p))
            sum += json_integer_value(json_object_get(row, "lag"));
    }
    return sum;
}

/* Degraded by lag: active, but its partitions hold coordinator.degraded_lag requests or more
 * that the group has not finished: it keeps up with less than it is given. */
static const char *lagging_reason(const pc_coord_t *coord, int64_t lag, char *reason, size_t size)
{
    unsigned limit = coord->cfg->coordinator.degraded_lag;
    if (limit == 0 || lag < (int64_t)limit)
        return NULL;
    snprintf(reason, size,
             "%lld request(s) waiting on its partitions (coordinator.degraded_lag is %u): it is "
             "not keeping up; add workers or look at its CA",
             (long long)lag, limit);
    return reason;
}

static json_t *worker_view(const pc_coord_t *coord, const pc_coord_cycle_t *cycle, const char *id,
                           const json_t *w, int64_t now, const json_t *lag_doc)
{
    char reason[600] = "";
    bool active = state_of(cycle, id, w, now, reason, sizeof(reason));
    json_t *counts = counts_of(w);
    json_t *parts = json_object_get(cycle->members, id);
    int64_t lag = active ? worker_lag(parts, lag_doc) : -1;
    const char *state = active ? "Active" : "Inactive";
    if (active && (degraded_reason(counts, w, reason, sizeof(reason)) != NULL ||
                   lagging_reason(coord, lag, reason, sizeof(reason)) != NULL))
        state = "Degraded";
    bool alive = json_integer_value(json_object_get(w, "score")) > now;
    int64_t started = field_int(w, "started_at");
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:I,s:o,s:I,s:o,s:o,s:o,s:o}", "id", id, "state", state,
                     "reason", reason[0] != '\0' ? json_string(reason) : json_null(), "version",
                     field_str(w, "version"), "host", field_str(w, "host"), "started_at",
                     (json_int_t)started, "uptime_s",
                     alive && started > 0 ? json_integer((now - started) / 1000) : json_null(),
                     "last_seen", (json_int_t)field_int(w, "last_seen"), "counts", counts,
                     "last_error", field_str(w, "last_error"), "partitions",
                     parts != NULL ? json_deep_copy(parts) : json_array(), "lag",
                     lag >= 0 ? json_integer(lag) : json_null());
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* workers_view returns the workers sorted by id. */
static json_t *workers_view(const pc_coord_t *coord, const pc_coord_cycle_t *cycle, int64_t now,
                            const json_t *lag_doc)
{
    json_t *list = json_array();
    size_t n = json_object_size(cycle->reg.workers), i = 0;
    const char **ids = n > 0 ? calloc(n, sizeof(*ids)) : NULL;
    const char *id;
    json_t *w;
    if (ids == NULL)
        return list;
    json_object_foreach(cycle->reg.workers, id, w)
    {
        ids[i++] = id;
    }
    qsort(ids, n, sizeof(*ids), compare_ids);
    for (i = 0; i < n; i++)
        json_array_append_new(list, worker_view(coord, cycle, ids[i],
                                                json_object_get(cycle->reg.workers, ids[i]), now,
                                                lag_doc));
    free(ids);
    return list;
}

/* Group members that are not in the registry: another application in our group, or a worker
 * whose registry entry is gone. */
static json_t *strangers_view(const pc_coord_cycle_t *cycle)
{
    json_t *list = json_array();
    const char *id;
    json_t *parts;
    json_object_foreach(cycle->members, id, parts)
    {
        if (json_object_get(cycle->reg.workers, id) == NULL)
            json_array_append_new(list,
                                  json_pack("{s:s,s:O}", "client_id", id, "partitions", parts));
    }
    return list;
}

static void add_error(json_t *errors, bool ok, const pc_diag_t *diag)
{
    if (!ok)
        json_array_append_new(errors, json_string(diag->msg));
}

static json_t *errors_view(const pc_coord_cycle_t *cycle)
{
    json_t *errors = json_array();
    const pc_coord_probe_t *probe = cycle->probe;
    add_error(errors, cycle->reg.ok, &cycle->reg.diag);
    add_error(errors, cycle->group_ok, &cycle->group_diag);
    add_error(errors, cycle->offsets_ok, &cycle->offsets_diag);
    if (probe == NULL)
        json_array_append_new(errors, json_string("Kafka not probed (out of memory)"));
    else if (probe->err != PC_OK)
        add_error(errors, false, &probe->diag);
    return errors;
}

/* lag_view: per partition of the requests topic, committed offset, watermarks and lag. A
 * partition the group never committed starts at its low watermark (auto.offset.reset =
 * earliest, as the workers consume). *total is COORD_UNKNOWN when it cannot be known. */
static json_t *lag_view(const pc_coord_t *coord, const pc_coord_cycle_t *cycle, int64_t *total)
{
    const pc_coord_probe_t *probe = cycle->probe;
    json_t *parts = json_array();
    const char *error = NULL;
    *total = 0;
    if (probe == NULL || probe->marks_err != PC_OK)
        error = probe == NULL ? "Kafka not probed" : probe->marks_diag.msg;
    else if (!cycle->offsets_ok)
        error = cycle->offsets_diag.msg;
    for (int p = 0; error == NULL && p < probe->marks_count; p++) {
        char key[16];
        snprintf(key, sizeof(key), "%d", p);
        json_t *committed = json_object_get(cycle->committed, key);
        int64_t start = probe->low[p];
        if (committed != NULL && json_integer_value(committed) > start)
            start = json_integer_value(committed);
        int64_t lag = probe->high[p] > start ? probe->high[p] - start : 0;
        *total += lag;
        json_array_append_new(parts, json_pack("{s:i,s:O,s:I,s:I,s:I}", "partition", p, "committed",
                                               committed ? committed : json_null(), "low_watermark",
                                               (json_int_t)probe->low[p], "high_watermark",
                                               (json_int_t)probe->high[p], "lag", (json_int_t)lag));
    }
    if (error != NULL)
        *total = COORD_UNKNOWN;
    return json_pack("{s:s,s:s,s:o,s:o,s:o}", "topic", coord->topics[0].name, "group",
                     coord->cfg->kafka.group_id, "partitions", parts, "total",
                     error == NULL ? json_integer(*total) : json_null(), "error",
                     error == NULL ? json_null() : json_string(error));
}

void pc_coord_view_build(pc_coord_t *coord, pc_coord_cycle_t *cycle)
{
    pc_coord_view_t *view = &coord->view;
    int64_t now = cycle->reg.ok ? cycle->reg.now_ms : pc_now_ms();
    int64_t lag;
    size_t problems;
    json_decref(view->lag);
    view->lag = lag_view(coord, cycle, &lag);
    json_t *workers = workers_view(coord, cycle, now, view->lag);

    json_decref(view->fleet);
    view->fleet = json_pack(
        "{s:I,s:{s:s,s:o,s:o},s:o,s:o,s:o}", "updated_at", (json_int_t)now, "group", "id",
        coord->cfg->kafka.group_id, "state",
        cycle->group_ok ? json_string(cycle->group_state) : json_null(), "error",
        cycle->group_ok ? json_null() : json_string(cycle->group_diag.msg), "workers", workers,
        "unregistered_members", strangers_view(cycle), "errors", errors_view(cycle));
    json_decref(view->topics);
    view->topics = pc_coord_topics_view(coord, cycle, &problems);

    view->redis_ok = cycle->reg.ok;
    bool probe_ok = cycle->probe != NULL && cycle->probe->err == PC_OK;
    if (probe_ok) /* Kafka answered: a refusal seen before was fixed (a user created, say) */
        pc_coord_admin_refusal_clear(coord->admin);
    const pc_diag_t *refusal = pc_coord_admin_refusal(coord->admin);
    view->kafka_ok = probe_ok && cycle->group_ok && cycle->offsets_ok;
    const pc_diag_t *why = !view->redis_ok                     ? &cycle->reg.diag
                           : refusal != NULL                   ? refusal
                           : cycle->probe != NULL && !probe_ok ? &cycle->probe->diag
                           : !cycle->group_ok                  ? &cycle->group_diag
                                                               : &cycle->offsets_diag;
    snprintf(view->not_ready, sizeof(view->not_ready), "%s", why->msg);
    /* The statistics of a failed read stay the last good ones, with the error beside them. */
    if (cycle->stats_ok) {
        view->stats = cycle->stats;
        view->have_stats = true;
    }
    snprintf(view->stats_error, sizeof(view->stats_error), "%s",
             cycle->stats_ok ? "" : cycle->stats_diag.msg);
    json_decref(view->stats_doc);
    view->stats_doc = pc_coord_stats_doc(view, pc_now_ms());
    json_decref(view->cas);
    view->cas = pc_coord_ca_view(coord, workers, pc_now_ms());
    pc_coord_view_set_totals(coord, workers, cycle->reg.ok, now, lag, problems);
    view->have = true;
    view->built_ms = now;
}

void pc_coord_view_clear(pc_coord_view_t *view)
{
    json_decref(view->fleet);
    json_decref(view->lag);
    json_decref(view->topics);
    json_decref(view->totals);
    json_decref(view->last_counts);
    json_decref(view->stats_doc);
    json_decref(view->cas);
    memset(view, 0, sizeof(*view));
}
