/*
 * coord_cycle.c - one refresh cycle: the parts that make up a snapshot are asked for side by
 * side (the registry in Redis, the probe on a pool thread, the consumer group's members and its
 * committed offsets through the Admin API; the topics' configuration once the probe has named
 * the existing topics), each answers exactly once, and the last answer builds the view.
 * A part that fails leaves its diagnosis in the cycle; the view shows it. Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"

static void cycle_free(pc_coord_cycle_t *cycle)
{
    pc_coord_registry_clear(&cycle->reg);
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

static void on_registry(void *arg, pc_coord_registry_t *reg)
{
    pc_coord_cycle_t *cycle = arg;
    cycle->reg = *reg; /* takes reg->workers */
    reg->workers = NULL;
    pc_coord_cycle_part_done(cycle);
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
    for (int i = 0; i < COORD_TOPICS; i++)
        probe->names[i] = coord->topics[i].name;
    probe->work.data = probe;
    if (uv_queue_work(coord->loop, &probe->work, pc_coord_probe_run, after_probe) != 0) {
        free(probe);
        return;
    }
    cycle->pending++;
}

/* ---- consumer group ---------------------------------------------------------------------- */

/* admin_failed tells whether ev is missing or failed as a whole, and says so in diag. */
static bool admin_failed(rd_kafka_event_t *ev, const char *what, pc_diag_t *diag)
{
    if (ev == NULL) {
        pc_fail(diag, PC_ERR_DEPENDENCY, "%s: shutting down", what);
        return true;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pc_fail(diag, PC_ERR_DEPENDENCY, "%s: %s (are the brokers up?)", what,
                rd_kafka_event_error_string(ev));
        return true;
    }
    return false;
}

static void add_member(pc_coord_cycle_t *cycle, const rd_kafka_MemberDescription_t *member)
{
    const char *topic = cycle->coord->topics[0].name;
    const char *client_id = rd_kafka_MemberDescription_client_id(member);
    const rd_kafka_MemberAssignment_t *assignment = rd_kafka_MemberDescription_assignment(member);
    const rd_kafka_topic_partition_list_t *parts =
        assignment != NULL ? rd_kafka_MemberAssignment_partitions(assignment) : NULL;
    json_t *list = json_object_get(cycle->members, client_id != NULL ? client_id : "");
    if (list == NULL) {
        list = json_array();
        json_object_set_new(cycle->members, client_id != NULL ? client_id : "", list);
    }
    for (int i = 0; parts != NULL && i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, topic) == 0)
            json_array_append_new(list, json_integer(parts->elems[i].partition));
}

static void on_group(void *arg, rd_kafka_event_t *ev)
{
    pc_coord_cycle_t *cycle = arg;
    const char *what = "kafka: describing the consumer group";
    if (!admin_failed(ev, what, &cycle->group_diag)) {
        size_t n = 0;
        const rd_kafka_DescribeConsumerGroups_result_t *res =
            rd_kafka_event_DescribeConsumerGroups_result(ev);
        const rd_kafka_ConsumerGroupDescription_t **groups =
            res != NULL ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
        const rd_kafka_error_t *error =
            n > 0 ? rd_kafka_ConsumerGroupDescription_error(groups[0]) : NULL;
        if (n == 0)
            pc_fail(&cycle->group_diag, PC_ERR_DEPENDENCY, "%s: no answer", what);
        else if (error != NULL)
            pc_fail(&cycle->group_diag, PC_ERR_DEPENDENCY, "%s %s: %s", what,
                    cycle->coord->cfg->worker.kafka_group_id, rd_kafka_error_string(error));
        else
            cycle->group_ok = true;
        for (size_t m = 0;
             cycle->group_ok && m < rd_kafka_ConsumerGroupDescription_member_count(groups[0]); m++)
            add_member(cycle, rd_kafka_ConsumerGroupDescription_member(groups[0], m));
        if (cycle->group_ok)
            snprintf(cycle->group_state, sizeof(cycle->group_state), "%s",
                     rd_kafka_consumer_group_state_name(
                         rd_kafka_ConsumerGroupDescription_state(groups[0])));
    }
    pc_coord_cycle_part_done(cycle);
}

static void describe_group(pc_coord_cycle_t *cycle)
{
    pc_coord_t *coord = cycle->coord;
    const char *groups[] = {coord->cfg->worker.kafka_group_id};
    rd_kafka_AdminOptions_t *options = pc_coord_admin_options(
        coord->admin, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, on_group, cycle);
    if (options == NULL) {
        pc_fail(&cycle->group_diag, PC_ERR_NOMEM, "out of memory");
        return;
    }
    cycle->pending++;
    rd_kafka_DescribeConsumerGroups(pc_coord_admin_rk(coord->admin), groups, 1, options,
                                    pc_coord_admin_queue(coord->admin));
    rd_kafka_AdminOptions_destroy(options);
}

static void on_offsets(void *arg, rd_kafka_event_t *ev)
{
    pc_coord_cycle_t *cycle = arg;
    const char *topic = cycle->coord->topics[0].name;
    const char *what = "kafka: listing the group's committed offsets";
    if (!admin_failed(ev, what, &cycle->offsets_diag)) {
        size_t n = 0;
        const rd_kafka_ListConsumerGroupOffsets_result_t *res =
            rd_kafka_event_ListConsumerGroupOffsets_result(ev);
        const rd_kafka_group_result_t **groups =
            res != NULL ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n) : NULL;
        const rd_kafka_error_t *error = n > 0 ? rd_kafka_group_result_error(groups[0]) : NULL;
        const rd_kafka_topic_partition_list_t *parts =
            n > 0 ? rd_kafka_group_result_partitions(groups[0]) : NULL;
        if (n == 0)
            pc_fail(&cycle->offsets_diag, PC_ERR_DEPENDENCY, "%s: no answer", what);
        else if (error != NULL)
            pc_fail(&cycle->offsets_diag, PC_ERR_DEPENDENCY, "%s: %s", what,
                    rd_kafka_error_string(error));
        else
            cycle->offsets_ok = true;
        for (int i = 0; cycle->offsets_ok && parts != NULL && i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            char key[16];
            if (strcmp(tp->topic, topic) != 0 || tp->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
                tp->offset < 0)
                continue;
            snprintf(key, sizeof(key), "%d", (int)tp->partition);
            json_object_set_new(cycle->committed, key, json_integer(tp->offset));
        }
    }
    pc_coord_cycle_part_done(cycle);
}

static void list_offsets(pc_coord_cycle_t *cycle)
{
    pc_coord_t *coord = cycle->coord;
    /* NULL partitions: every partition the group has committed for. */
    rd_kafka_ListConsumerGroupOffsets_t *req =
        rd_kafka_ListConsumerGroupOffsets_new(coord->cfg->worker.kafka_group_id, NULL);
    /* The options last: once made, their op must be answered, so nothing may fail after. */
    rd_kafka_AdminOptions_t *options =
        req == NULL
            ? NULL
            : pc_coord_admin_options(coord->admin, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                                     on_offsets, cycle);
    if (options == NULL) {
        pc_fail(&cycle->offsets_diag, PC_ERR_NOMEM, "out of memory");
        if (req != NULL)
            rd_kafka_ListConsumerGroupOffsets_destroy(req);
        return;
    }
    cycle->pending++;
    rd_kafka_ListConsumerGroupOffsets(pc_coord_admin_rk(coord->admin), &req, 1, options,
                                      pc_coord_admin_queue(coord->admin));
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(options);
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
    pc_coord_registry_read(coord->redis, on_registry, cycle);
    start_probe(cycle);
    describe_group(cycle);
    list_offsets(cycle);
    pc_coord_cycle_part_done(cycle);
}
