/*
 * coord_topics.c - the topics of the cluster (requests, results, dlq, audit, notices): created when
 * missing (at start, and when asked with POST /api/topics/ensure) with the configured partitions,
 * replication factor and retention.ms; compared with the configuration on every refresh. A topic
 * that exists with other settings is reported (log event "topic_mismatch", once per problem, and
 * /api/topics), never changed: adding partitions moves keys to other partitions and would break the
 * order of one device's requests, so that is an operator's decision. Loop thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"

void pc_coord_topics_init(pc_coord_t *coord)
{
    const pc_config_coordinator_t *c = &coord->cfg->coordinator;
    const pc_config_kafka_t *k = &coord->cfg->kafka;
    int parts = (int)c->topic_partitions;
    int dlq = parts < COORD_DLQ_PARTITIONS_MAX ? parts : COORD_DLQ_PARTITIONS_MAX;
    /* What workers write and a few upstream consumers read needs no partition per worker: each
     * result is a produce request of its own when its partition gets a few messages a second
     * (librdkafka sends one request per partition), which tripled the broker's CPU per
     * certificate on 128 partitions (docs/perf/end-to-end.md). */
    int out = c->results_partitions != 0 && (int)c->results_partitions < parts
                  ? (int)c->results_partitions
                  : parts;
    int64_t retention = (int64_t)c->topic_retention_hours * 3600 * 1000;
    int replication = (int)c->topic_replication;
    int64_t audit = (int64_t)c->audit_retention_hours * 3600 * 1000;
    static const char all[] = "coordinator.topic_partitions",
                      few[] = "min(coordinator.topic_partitions, 8)",
                      written[] =
                          "min(coordinator.topic_partitions, coordinator.results_partitions)",
                      kept[] = "coordinator.topic_retention_hours",
                      kept_audit[] = "coordinator.audit_retention_hours";
    /* The audit trail has as many partitions as the results; notices are few. */
    const pc_coord_topic_t topics[COORD_TOPICS] = {
        {"requests", k->requests_topic, parts, replication, retention, all, kept},
        {"results", k->results_topic, out, replication, retention, written, kept},
        {"dlq", k->dlq_topic, dlq, replication, retention, few, kept},
        {"audit", k->audit_topic, out, replication, audit, written, kept_audit},
        {"notices", k->notices_topic, dlq, replication, retention, few, kept},
    };
    coord->topic_count = 0;
    for (int i = 0; i < COORD_TOPICS; i++) /* a topic configured as "" is not used */
        if (topics[i].name != NULL && topics[i].name[0] != '\0')
            coord->topics[coord->topic_count++] = topics[i];
}

/* ---- creating missing topics ------------------------------------------------------------- */

static void log_create(pc_coord_t *coord, const char *name, rd_kafka_resp_err_t rerr,
                       const char *text)
{
    char msg[512];
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pc_log(PC_LOG_INFO, "topic_created", "created the topic", "topic", name, NULL);
        return;
    }
    if (rerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        pc_log(PC_LOG_INFO, "topic_exists",
               "the topic was created meanwhile (another coordinator?)", "topic", name, NULL);
        return;
    }
    snprintf(msg, sizeof(msg),
             "cannot create topic %s: %s; check the coordinator.topic_* settings against the "
             "brokers (replication factor at most the number of brokers) and the ACLs",
             name, text);
    /* Creation is tried again at every refresh: log a failure once, not every 2 s. */
    if (strcmp(msg, coord->create_error) != 0)
        pc_log(PC_LOG_ERROR, "topic_create_failed", msg, "topic", name, NULL);
    memcpy(coord->create_error, msg, sizeof(msg));
}

static void on_created(void *arg, rd_kafka_event_t *ev)
{
    pc_coord_t *coord = arg;
    size_t n = 0;
    coord->create_in_flight = false;
    if (ev == NULL)
        return;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_create(coord, "(all)", rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
        return;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    const rd_kafka_topic_result_t **topics =
        res != NULL ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    bool all_there = true;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t rerr = rd_kafka_topic_result_error(topics[i]);
        all_there &=
            rerr == RD_KAFKA_RESP_ERR_NO_ERROR || rerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
        log_create(coord, rd_kafka_topic_result_name(topics[i]), rerr,
                   rd_kafka_topic_result_error_string(topics[i]));
    }
    if (all_there)
        coord->ensure = false;         /* created (by us or another): from now on only report */
    pc_coord_refresh_soon(coord, 100); /* show them without waiting a whole interval */
}

static void create_topics(pc_coord_t *coord, const pc_coord_probe_t *probe)
{
    rd_kafka_NewTopic_t *nt[COORD_TOPICS];
    size_t n = 0;
    char errstr[256], retention[24];
    for (int i = 0; i < coord->topic_count; i++) {
        const pc_coord_topic_t *t = &coord->topics[i];
        if (probe->meta[i].exists)
            continue;
        nt[n] = rd_kafka_NewTopic_new(t->name, t->want_partitions, t->want_replication, errstr,
                                      sizeof(errstr));
        if (nt[n] == NULL) {
            log_create(coord, t->name, RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
            continue;
        }
        snprintf(retention, sizeof(retention), "%lld", (long long)t->want_retention_ms);
        rd_kafka_NewTopic_set_config(nt[n], "retention.ms", retention);
        n++;
    }
    rd_kafka_AdminOptions_t *options =
        n == 0 ? NULL
               : pc_coord_admin_options(coord->admin, RD_KAFKA_ADMIN_OP_CREATETOPICS, on_created,
                                        coord);
    if (options != NULL) {
        coord->create_in_flight = true;
        rd_kafka_CreateTopics(pc_coord_admin_rk(coord->admin), nt, n, options,
                              pc_coord_admin_queue(coord->admin));
        rd_kafka_AdminOptions_destroy(options);
    }
    rd_kafka_NewTopic_destroy_array(nt, n);
}

/* ---- reading the existing topics' configuration ------------------------------------------ */

static void on_configs(void *arg, rd_kafka_event_t *ev)
{
    pc_coord_cycle_t *cycle = arg;
    pc_coord_t *coord = cycle->coord;
    size_t n = 0;
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pc_fail(&cycle->configs_diag, PC_ERR_DEPENDENCY,
                "kafka: cannot read the topics' configuration: %s",
                ev == NULL ? "shutting down" : rd_kafka_event_error_string(ev));
        pc_coord_cycle_part_done(cycle);
        return;
    }
    const rd_kafka_DescribeConfigs_result_t *res = rd_kafka_event_DescribeConfigs_result(ev);
    const rd_kafka_ConfigResource_t **rs =
        res != NULL ? rd_kafka_DescribeConfigs_result_resources(res, &n) : NULL;
    cycle->configs_ok = true;
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_ConfigResource_name(rs[i]);
        if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cycle->configs_ok = false;
            pc_fail(&cycle->configs_diag, PC_ERR_DEPENDENCY,
                    "kafka: cannot read the configuration of topic %s: %s", name,
                    rd_kafka_ConfigResource_error_string(rs[i]));
            continue;
        }
        size_t count = 0;
        const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(rs[i], &count);
        for (int k = 0; k < coord->topic_count; k++) {
            if (strcmp(name, coord->topics[k].name) != 0)
                continue;
            for (size_t e = 0; e < count; e++) {
                const char *value = rd_kafka_ConfigEntry_value(entries[e]);
                if (strcmp(rd_kafka_ConfigEntry_name(entries[e]), "retention.ms") == 0 &&
                    value != NULL)
                    cycle->retention_ms[k] = strtoll(value, NULL, 10);
            }
        }
    }
    pc_coord_cycle_part_done(cycle);
}

static void describe_configs(pc_coord_cycle_t *cycle)
{
    pc_coord_t *coord = cycle->coord;
    rd_kafka_ConfigResource_t *rs[COORD_TOPICS];
    size_t n = 0;
    for (int i = 0; i < coord->topic_count; i++)
        if (cycle->probe->meta[i].exists &&
            (rs[n] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, coord->topics[i].name)) !=
                NULL)
            n++;
    rd_kafka_AdminOptions_t *options =
        n == 0 ? NULL
               : pc_coord_admin_options(coord->admin, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, on_configs,
                                        cycle);
    if (options != NULL) {
        cycle->pending++;
        rd_kafka_DescribeConfigs(pc_coord_admin_rk(coord->admin), rs, n, options,
                                 pc_coord_admin_queue(coord->admin));
        rd_kafka_AdminOptions_destroy(options);
    }
    rd_kafka_ConfigResource_destroy_array(rs, n);
}

void pc_coord_topics_probed(pc_coord_t *coord, pc_coord_cycle_t *cycle)
{
    const pc_coord_probe_t *probe = cycle->probe;
    bool missing = false, existing = false;
    if (coord->stopping || probe->err != PC_OK)
        return;
    for (int i = 0; i < coord->topic_count; i++) {
        missing |= !probe->meta[i].exists;
        existing |= probe->meta[i].exists;
    }
    /* Create only when two probes in a row miss a topic: metadata of a topic created a moment
     * ago may not have reached this broker yet, and a needless CreateTopics (answered
     * TOPIC_ALREADY_EXISTS) has been seen to trip an assertion in librdkafka 2.0.2. */
    coord->missing_probes = missing ? coord->missing_probes + 1 : 0;
    if (!missing)
        coord->ensure = false; /* all there: from now on only report */
    else if (coord->ensure && !coord->create_in_flight && coord->missing_probes >= 2)
        create_topics(coord, probe);
    if (existing)
        describe_configs(cycle);
    else
        cycle->configs_ok = true; /* nothing to read */
}

/* ---- the view ---------------------------------------------------------------------------- */

static void add_problem(json_t *list, json_t *all, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_problem(json_t *list, json_t *all, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_string(text));
    json_array_append_new(all, json_string(text));
}

static json_t *topic_view(const pc_coord_t *coord, const pc_coord_cycle_t *cycle, int i,
                          json_t *all)
{
    const pc_coord_topic_t *t = &coord->topics[i];
    const pc_coord_topic_meta_t *m = &cycle->probe->meta[i];
    int64_t retention = cycle->retention_ms[i];
    json_t *problems = json_array();
    if (!m->exists)
        add_problem(problems, all,
                    "topic %s does not exist: workers cannot use it; the coordinator creates it "
                    "at start (or on POST /api/topics/ensure), see its log if that failed",
                    t->name);
    if (m->exists && m->partitions != t->want_partitions)
        add_problem(problems, all,
                    "topic %s has %d partitions, the configuration wants %d (%s): the "
                    "coordinator never changes an existing topic; add partitions with "
                    "kafka-topics.sh --alter (keys then move to other partitions) or change "
                    "the setting",
                    t->name, m->partitions, t->want_partitions, t->partitions_setting);
    if (m->exists && m->replication != t->want_replication)
        add_problem(problems, all,
                    "topic %s has replication factor %d, the configuration wants %d "
                    "(coordinator.topic_replication): reassign its replicas with "
                    "kafka-reassign-partitions.sh or change the setting",
                    t->name, m->replication, t->want_replication);
    if (m->exists && retention != COORD_UNKNOWN && retention != t->want_retention_ms)
        add_problem(problems, all,
                    "topic %s has retention.ms=%lld, the configuration wants %lld (%s): "
                    "change it with kafka-configs.sh --alter --add-config retention.ms=%lld or "
                    "change the setting",
                    t->name, (long long)retention, (long long)t->want_retention_ms,
                    t->retention_setting, (long long)t->want_retention_ms);
    return json_pack("{s:s,s:s,s:b,s:o,s:o,s:o,s:{s:i,s:i,s:I},s:o}", "role", t->role, "name",
                     t->name, "exists", m->exists, "partitions",
                     m->exists ? json_integer(m->partitions) : json_null(), "replication",
                     m->exists ? json_integer(m->replication) : json_null(), "retention_ms",
                     retention != COORD_UNKNOWN ? json_integer(retention) : json_null(), "wanted",
                     "partitions", t->want_partitions, "replication", t->want_replication,
                     "retention_ms", (json_int_t)t->want_retention_ms, "problems", problems);
}

/* log_new_problems logs each problem not logged at the last refresh ("topic_mismatch" for
 * settings, missing topics are logged by their creation) and remembers the current set. */
static void log_new_problems(pc_coord_t *coord, const json_t *all)
{
    json_t *now = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        const char *text = json_string_value(p);
        if (json_object_get(coord->logged_problems, text) == NULL &&
            strstr(text, "does not exist") == NULL)
            pc_log(PC_LOG_WARN, "topic_mismatch", text, NULL);
        json_object_set_new(now, text, json_true());
    }
    json_decref(coord->logged_problems);
    coord->logged_problems = now;
}

json_t *pc_coord_topics_view(pc_coord_t *coord, const pc_coord_cycle_t *cycle, size_t *problems)
{
    const pc_coord_probe_t *probe = cycle->probe;
    json_t *all = json_array(), *topics = json_array();
    *problems = 0;
    if (probe == NULL || probe->err != PC_OK)
        return json_pack("{s:o,s:o,s:s}", "topics", topics, "problems", all, "error",
                         probe == NULL ? "Kafka not probed (out of memory)" : probe->diag.msg);
    for (int i = 0; i < coord->topic_count; i++)
        json_array_append_new(topics, topic_view(coord, cycle, i, all));
    *problems = json_array_size(all);
    log_new_problems(coord, all);
    return json_pack("{s:o,s:o,s:o}", "topics", topics, "problems", all, "error",
                     cycle->configs_ok ? json_null() : json_string(cycle->configs_diag.msg));
}
