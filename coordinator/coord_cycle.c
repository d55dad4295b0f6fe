/*
 * coord_cycle.c - one refresh cycle: the parts that make up a snapshot are asked for side by
 * side (the registry and the statistics in Redis, the probe on a pool thread, the consumer
 * group's members and its committed offsets through the Admin API; the topics' configuration
 * once the probe has named the existing topics), each answers exactly once, and the last answer
 * builds the view.
 * A part that fails leaves its diagnosis in the cycle; the view shows it. Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "log.h"

static void cycle_free(pc_coord_cycle_t *cycle)
{
    pc_registry_view_clear(&cycle->reg);
    pc_coord_probe_free(cycle->probe);
    json_decref(cycle->members);
    json_decref(cycle->committed);
    free(cycle);
}

void pc_coord_cycle_part_done(pc_coord_cycle_t *cycle)
{
    if (--cycle->pending > 0)
        return;
    pc_coord_t *coord = cycle->coord;
    if (!coord->stopping)
        pc_coord_view_build(coord, cycle);
    coord->cycle = NULL;
    cycle_free(cycle);
    pc_coord_refresh_soon(coord, coord->refresh_again ? 0 : COORD_REFRESH_MS);
    coord->refresh_again = false;
}

/* ---- registry ---------------------------------------------------------------------------- */

/* Group membership as the workers report it in their heartbeats ("in_group" and the
 * partitions of their assignment, tracked from their rebalance callbacks). Asking the broker
 * with the Admin API's DescribeConsumerGroups was the first design, but with librdkafka 2.0.2
 * it intermittently tripped an assertion inside the library (rd_kafka_enq_once_del_source_return)
 * and killed the coordinator. A worker that dies stops heart-beating and turns Inactive. */
static void members_from_heartbeats(pc_coord_cycle_t *cycle)
{
    const char *id;
    json_t *w;
    json_object_foreach(cycle->reg.workers, id, w)
    {
        json_t *counts = json_loads(json_string_value(json_object_get(w, "counts")) != NULL
                                        ? json_string_value(json_object_get(w, "counts"))
                                        : "{}",
                                    0, NULL);
        json_t *parts = json_object_get(counts, "partitions");
        if (json_is_true(json_object_get(counts, "in_group")))
            json_object_set_new(cycle->members, id,
                                json_is_array(parts) ? json_incref(parts) : json_array());
        json_decref(counts);
    }
    cycle->group_ok = cycle->reg.ok;
    snprintf(cycle->group_state, sizeof(cycle->group_state), "%s", "reported by workers");
}

static void on_registry(void *arg, pc_registry_view_t *reg)
{
    pc_coord_cycle_t *cycle = arg;
    cycle->reg = *reg; /* takes reg->workers */
    reg->workers = NULL;
    if (cycle->reg.workers != NULL)
        members_from_heartbeats(cycle);
    pc_coord_cycle_part_done(cycle);
}

/* ---- statistics -------------------------------------------------------------------------- */

static void on_stats(void *arg, pc_err_t err, const pc_stats_view_t *view, const pc_diag_t *diag)
{
    pc_coord_cycle_t *cycle = arg;
    cycle->stats_ok = err == PC_OK;
    if (err == PC_OK)
        cycle->stats = *view;
    else
        cycle->stats_diag = *diag;
    pc_coord_cycle_part_done(cycle);
}

static void start_stats(pc_coord_cycle_t *cycle)
{
    pc_err_t err =
        pc_stats_read(cycle->coord->redis, pc_now_ms(), PC_STATS_WINDOW, on_stats, cycle);
    if (err == PC_OK)
        cycle->pending++;
    else
        pc_fail(&cycle->stats_diag, err, "cannot read the statistics: %s", pc_strerror(err));
}

/* ---- probe ------------------------------------------------------------------------------- */

static void after_probe(uv_work_t *work, int status)
{
    pc_coord_probe_t *probe = work->data;
    pc_coord_cycle_t *cycle = probe->arg;
    if (status != 0) {
        probe->err = pc_fail(&probe->diag, PC_ERR_DEPENDENCY, "Kafka probe cancelled");
        probe->marks_err = probe->err;
        probe->marks_diag = probe->diag;
    }
    cycle->probe = probe;
    if (probe->committed != NULL && probe->committed_err == PC_OK) {
        for (int p = 0; p < probe->marks_count; p++) {
            char key[16];
            if (probe->committed[p] < 0)
                continue;
            snprintf(key, sizeof(key), "%d", p);
            json_object_set_new(cycle->committed, key, json_integer(probe->committed[p]));
        }
        cycle->offsets_ok = true;
    } else {
        cycle->offsets_diag = probe->committed_err != PC_OK ? probe->committed_diag : probe->diag;
    }
    pc_coord_topics_probed(cycle->coord, cycle);
    pc_coord_cycle_part_done(cycle);
}

static void start_probe(pc_coord_cycle_t *cycle)
{
    pc_coord_t *coord = cycle->coord;
    pc_coord_probe_t *probe = calloc(1, sizeof(*probe));
    if (probe == NULL)
        return; /* the view reports the missing probe */
    probe->arg = cycle;
    probe->rk = pc_coord_admin_rk(coord->admin);
    probe->count = coord->topic_count;
    for (int i = 0; i < coord->topic_count; i++)
        probe->names[i] = coord->topics[i].name;
    probe->work.data = probe;
    if (uv_queue_work(coord->loop, &probe->work, pc_coord_probe_run, after_probe) != 0) {
        free(probe);
        return;
    }
    cycle->pending++;
}

void pc_coord_cycle_start(pc_coord_t *coord)
{
    if (coord->cycle != NULL || coord->stopping)
        return;
    pc_coord_cycle_t *cycle = calloc(1, sizeof(*cycle));
    if (cycle == NULL || (cycle->members = json_object()) == NULL ||
        (cycle->committed = json_object()) == NULL) {
        if (cycle != NULL)
            cycle_free(cycle);
        pc_log(PC_LOG_ERROR, "refresh", "out of memory starting a refresh", NULL);
        pc_coord_refresh_soon(coord, COORD_REFRESH_MS);
        return;
    }
    cycle->coord = coord;
    for (int i = 0; i < COORD_TOPICS; i++)
        cycle->retention_ms[i] = COORD_UNKNOWN;
    pc_fail(&cycle->configs_diag, PC_ERR_DEPENDENCY, "topic configuration not read");
    coord->cycle = cycle;
    cycle->pending = 2; /* the registry, and a hold until every part is out */
    pc_registry_read(coord->redis, on_registry, cycle);
    start_stats(cycle);
    start_probe(cycle);
    pc_coord_cycle_part_done(cycle);
}
