/*
 * coord.h - pkcs-coordinator's insides: the control plane of a PKCS Connector cluster. Any
 * number of copies may run; everything they show comes from Kafka and Redis, nothing is kept
 * here but the last snapshot. Everything runs on the one libuv loop thread unless a function
 * says "pool thread".
 *
 * Every COORD_REFRESH_MS a refresh cycle reads, side by side: the worker registry from Redis
 * (pc_registry_read, lib/cluster/registry_read.c), topic metadata and the requests topic's
 * watermarks on a pool thread (coord_admin.c), the consumer group's members and committed offsets,
 * and the topics' retention (Admin API, coord_cycle.c, coord_topics.c). When every part has
 * answered, the snapshot is rebuilt (coord_view.c, coord_totals.c) and served over HTTP
 * (coord_http.c, coord_page.c, and coord_ca.c for CA certificates and CRLs).
 */
#ifndef PC_COORD_H
#define PC_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "config.h"
#include "engine.h"
#include "http.h"
#include "metrics.h"
#include "redis.h"
#include "registry.h"
#include "stats.h"

#define COORD_REFRESH_MS 2000       /* a snapshot every 2 s, as often as the page refreshes */
#define COORD_KAFKA_TIMEOUT_MS 5000 /* bound on each Kafka request of a cycle */
#define COORD_DLQ_PARTITIONS_MAX 8  /* the DLQ gets min(topic_partitions, this) */
#define COORD_RATE_WINDOW_MS 60000  /* issue rate over the last minute */
#define COORD_RATE_SAMPLES 64       /* > window / refresh interval */
#define COORD_UNKNOWN INT64_MIN     /* a number not known (-1 can be a real retention.ms) */

/* ---- Kafka admin handle (coord_admin.c) ------------------------------------------------- */

typedef struct pc_coord_admin pc_coord_admin_t;

/* Result of one Admin API call, on the loop thread: ev is the result event (borrowed, valid
 * during the call), or NULL when the coordinator is shutting down and the call was dropped. */
typedef void (*pc_coord_admin_fn)(void *arg, rd_kafka_event_t *ev);

/* pc_coord_admin_new creates the librdkafka handle the coordinator uses for the Admin API and
 * the blocking metadata/watermark probe (a consumer in group_id that never joins it, with the
 * kafka section's brokers and security), and a timer on loop that serves its queues. */
pc_err_t pc_coord_admin_new(uv_loop_t *loop, const pc_config_kafka_t *kafka,
                            const pc_kafka_security_t *security, pc_coord_admin_t **out,
                            pc_diag_t *diag);
/* pc_coord_admin_refusal is the last time the brokers refused our credentials or we refused
 * their certificate (pc_kafka_refusal; logged once as kafka_refused), borrowed; NULL when not
 * refused. pc_coord_admin_refusal_clear forgets it, once Kafka has answered again. */
const pc_diag_t *pc_coord_admin_refusal(const pc_coord_admin_t *admin);
void pc_coord_admin_refusal_clear(pc_coord_admin_t *admin);
/* pc_coord_admin_rk returns the borrowed handle (thread-safe; the probe uses it on the pool). */
rd_kafka_t *pc_coord_admin_rk(pc_coord_admin_t *admin);
/* pc_coord_admin_queue returns the borrowed queue every Admin API result must be sent to. */
rd_kafka_queue_t *pc_coord_admin_queue(pc_coord_admin_t *admin);
/* pc_coord_admin_options returns options for one Admin API call of type op whose result goes
 * to fn(arg) exactly once (caller destroys the options after the call); NULL when out of
 * memory, and fn is then not called. */
rd_kafka_AdminOptions_t *pc_coord_admin_options(pc_coord_admin_t *admin, rd_kafka_admin_op_t op,
                                                pc_coord_admin_fn fn, void *arg);
/* pc_coord_admin_stop closes the timer (the loop can then end). */
void pc_coord_admin_stop(pc_coord_admin_t *admin);
/* pc_coord_admin_free, after the loop ended: calls fn(arg, NULL) for calls still pending,
 * destroys the handle (blocks while librdkafka's threads end) and frees admin (NULL allowed). */
void pc_coord_admin_free(pc_coord_admin_t *admin);

/* What the pool-thread probe found out about one topic. */
typedef struct pc_coord_topic_meta {
    bool exists;
    int partitions;
    int replication; /* replicas of partition 0 */
} pc_coord_topic_meta_t;

#define COORD_TOPICS 5 /* at most: requests, results, dlq, audit, notices */

/* The probe: metadata of every topic, then low and high watermarks of the requests topic. */
typedef struct pc_coord_probe {
    uv_work_t work;
    void *arg;                       /* the cycle it is part of */
    rd_kafka_t *rk;                  /* borrowed */
    const char *names[COORD_TOPICS]; /* borrowed from the configuration */
    int count;                       /* of names */
    pc_err_t err;                    /* of the metadata request */
    pc_diag_t diag;
    pc_coord_topic_meta_t meta[COORD_TOPICS];
    int marks_count;     /* partitions of the requests topic with watermarks */
    int64_t *low, *high; /* [marks_count], malloc'd */
    pc_err_t marks_err;
    pc_diag_t marks_diag;
    int64_t *committed; /* [marks_count], the group's committed offsets (-1: none), malloc'd */
    pc_err_t committed_err;
    pc_diag_t committed_diag;
} pc_coord_probe_t;

/* pc_coord_probe_run: uv_queue_work's work function (pool thread; blocks up to about
 * 3 x COORD_KAFKA_TIMEOUT_MS). */
void pc_coord_probe_run(uv_work_t *work);
/* pc_coord_probe_free frees probe and its arrays (NULL allowed). */
void pc_coord_probe_free(pc_coord_probe_t *probe);

/* ---- one refresh cycle (coord_cycle.c) -------------------------------------------------- */

typedef struct pc_coord pc_coord_t;

/* Everything one cycle gathered; the view is built from it. */
typedef struct pc_coord_cycle {
    pc_coord_t *coord;
    int pending; /* parts not answered yet */
    pc_registry_view_t reg;
    pc_coord_probe_t *probe;
    bool group_ok;
    pc_diag_t group_diag;
    char group_state[32];
    json_t *members; /* {client_id: [partition of the requests topic, ...]} */
    bool offsets_ok;
    pc_diag_t offsets_diag;
    json_t *committed; /* {"partition": committed offset} of the requests topic */
    bool configs_ok;
    pc_diag_t configs_diag;
    int64_t retention_ms[COORD_TOPICS]; /* COORD_UNKNOWN until read */
    bool stats_ok;                      /* the cluster's statistics (pc:stats:*) were read */
    pc_diag_t stats_diag;
    pc_stats_view_t stats;
} pc_coord_cycle_t;

/* pc_coord_cycle_start begins a refresh cycle unless one is running. */
void pc_coord_cycle_start(pc_coord_t *coord);
/* pc_coord_cycle_part_done counts one part of the cycle as answered; the last one builds the
 * view, frees the cycle and schedules the next one. */
void pc_coord_cycle_part_done(pc_coord_cycle_t *cycle);

/* ---- topics (coord_topics.c) ------------------------------------------------------------ */

/* One of the cluster's topics, as configured. */
typedef struct pc_coord_topic {
    const char *role; /* "requests", "results", "dlq", "audit", "notices" */
    const char *name; /* borrowed from the configuration */
    int want_partitions, want_replication;
    int64_t want_retention_ms;
    const char *partitions_setting, *retention_setting; /* named in problems */
} pc_coord_topic_t;

/* pc_coord_topics_init fills coord->topics from the configuration. */
void pc_coord_topics_init(pc_coord_t *coord);
/* pc_coord_topics_probed runs after the probe: creates missing topics while coord->ensure is
 * set, and asks for the existing topics' configuration as a new part of cycle. */
void pc_coord_topics_probed(pc_coord_t *coord, pc_coord_cycle_t *cycle);
/* pc_coord_topics_view returns /api/topics' document for what cycle saw (new reference), and
 * logs each problem once ("topic_mismatch"). *problems is set to the number of problems. */
json_t *pc_coord_topics_view(pc_coord_t *coord, const pc_coord_cycle_t *cycle, size_t *problems);

/* ---- the snapshot (coord_view.c) -------------------------------------------------------- */

typedef struct pc_coord_metrics {
    pc_metrics_t *registry;
    pc_gauge_t *active, *degraded, *inactive, *lag, *rate, *problems, *in_flight, *up_redis,
        *up_kafka;
    pc_counter_t *issued, *failed, *revoked, *dlq;
} pc_coord_metrics_t;

/* The four counts of a worker, as summed for totals. */
enum { COUNT_ISSUED, COUNT_FAILED, COUNT_REVOKED, COUNT_DLQ, COUNT__N };

typedef struct pc_coord_view {
    bool have;        /* a first cycle has finished */
    int64_t built_ms; /* when */
    json_t *fleet, *lag, *topics, *totals;
    bool redis_ok, kafka_ok;
    char not_ready[sizeof(pc_diag_t)]; /* why /readyz says 503 */
    /* issue rate: samples of the cumulative issued count, oldest first in a ring */
    struct {
        int64_t t_ms;
        uint64_t issued;
    } samples[COORD_RATE_SAMPLES];
    size_t sample_head, sample_count;
    json_t *last_counts; /* {id: {"started_at", "seen", "counts": [4]}} of earlier cycles */
    double rate;         /* issued per second, from the last refresh that read the registry */
    uint64_t cumulative[COUNT__N];       /* counts seen by this coordinator, never decreasing */
    bool have_stats;                     /* stats holds a successful read */
    pc_stats_view_t stats;               /* the last one: totals, the last hour by minute */
    char stats_error[sizeof(pc_diag_t)]; /* why the last read failed; "" when it did not */
    uint64_t counted[COUNT__N];          /* added to the *_total counters from the stats */
    json_t *stats_doc;                   /* /api/stats */
    json_t *cas;                         /* /api/cas */
} pc_coord_view_t;

/* pc_coord_view_build replaces the snapshot with what cycle gathered and updates metrics. */
void pc_coord_view_build(pc_coord_t *coord, pc_coord_cycle_t *cycle);
void pc_coord_view_clear(pc_coord_view_t *view);
/* pc_coord_view_set_totals (coord_totals.c) rebuilds /api/totals from the fleet's workers (as
 * built by the view), advances the issue rate when the registry was read (counted), and sets
 * the metrics. lag is COORD_UNKNOWN when not known. */
void pc_coord_view_set_totals(pc_coord_t *coord, const json_t *workers, bool counted, int64_t now,
                              int64_t lag, size_t problems);
pc_err_t pc_coord_metrics_init(pc_coord_metrics_t *m);

/* ---- the cluster's statistics (coord_stats.c) ------------------------------------------- */

/* pc_coord_stats_doc returns /api/stats' document for view's statistics at now (new
 * reference): the totals since the cluster began, each minute of the last hour (issued and
 * failed per second, latency p50 and p99), and the hour's figures. */
json_t *pc_coord_stats_doc(const pc_coord_view_t *view, int64_t now);

/* ---- CA certificates and CRLs (coord_ca.c) ---------------------------------------------- */

typedef struct pc_coord_crl pc_coord_crl_t;

/* pc_coord_ca_start generates the first CRL of each local CA (on the pool). */
pc_err_t pc_coord_ca_start(pc_coord_t *coord, pc_diag_t *diag);
/* pc_coord_ca_view returns /api/cas' document (new reference): each configured CA with its
 * health (OK, Warning, Failing, Down or Unknown, and why), from the fleet's workers (as the
 * view built them: their ca_down) and, for local CAs, their certificate's expiry and CRL. */
json_t *pc_coord_ca_view(pc_coord_t *coord, const json_t *workers, int64_t now);
/* pc_coord_ca_serve answers GET /ca/NAME.crt|.der and /crl/NAME.crl; false if path is not
 * one of these. */
bool pc_coord_ca_serve(pc_coord_t *coord, const char *path, pc_http_response_t *resp);
void pc_coord_ca_free(pc_coord_t *coord);

/* ---- OCSP (coord_ocsp.c) ---------------------------------------------------------------- */

/* pc_coord_ocsp_start lets the HTTP server read OCSP request bodies and has each local CA make
 * sure of its responder certificate (on the pool; a failure is logged, and retried by the
 * first request). */
pc_err_t pc_coord_ocsp_start(pc_coord_t *coord, pc_diag_t *diag);
/* pc_coord_ocsp_serve answers POST /ocsp/NAME (req's body) and GET /ocsp/NAME/BASE64 (RFC 6960
 * appendix A), later, from the pool (pc_http_defer). Called from the HTTP handler. */
void pc_coord_ocsp_serve(pc_coord_t *coord, const pc_http_request_t *req, pc_http_response_t *resp);

/* ---- notices and overdue revocations (coord_notices.c) ---------------------------------- */

typedef struct pc_coord_notices pc_coord_notices_t;

/* pc_coord_notices_new starts looking for what is due every coordinator.notice_interval_ms
 * (the first look a second after start), with a producer of its own; *out is closed with
 * pc_coord_notices_close. PC_ERR_INVALID_PARAM for Kafka settings librdkafka refuses. */
pc_err_t pc_coord_notices_new(pc_coord_t *coord, pc_coord_notices_t **out, pc_diag_t *diag);
/* pc_coord_notices_close stops looking, lets the batch under way finish (its notices
 * delivered, within a few seconds), frees n and then calls closed(arg) (NULL allowed). */
void pc_coord_notices_close(pc_coord_notices_t *n, void (*closed)(void *arg), void *arg);
/* ---- the inventory over HTTP (coord_certs.c) -------------------------------------------- */

/* pc_coord_certs_serve answers GET /api/certs and /api/certs/CA/SERIAL (path without the query;
 * the query from pc_http_query): a 400 at once for what it cannot ask, else later, once Redis
 * has answered (pc_http_defer). Called from the HTTP handler. */
void pc_coord_certs_serve(pc_coord_t *coord, const char *path, pc_http_response_t *resp);

/* ---- HTTP (coord_http.c, coord_page.c) -------------------------------------------------- */

/* pc_coord_http_handler answers one request; under /api/, a method other than GET or HEAD
 * needs the admin token (coord_http.c). */
void pc_coord_http_handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp);
/* pc_coord_page returns the status page (static HTML with its script inline). */
const char *pc_coord_page(void);
/* pc_coord_respond_json sets resp to doc as JSON (status, type, a copy of the body); plain
 * text answers are pc_http_respond_text. */
void pc_coord_respond_json(pc_http_response_t *resp, int status, const json_t *doc);
/* pc_coord_percent_decode decodes %XX in text into out (at most size - 1 bytes, NUL-terminated);
 * false if malformed, empty or too long. */
bool pc_coord_percent_decode(const char *text, char *out, size_t size);

/* ---- the process (coord_main.c) --------------------------------------------------------- */

struct pc_coord {
    uv_loop_t *loop;
    pc_config_t *cfg; /* borrowed */
    int exit_code;
    bool stopping;
    pc_engine_t *engine;
    bool engine_closing; /* its CAs are closing on the loop (cfssl's HTTP client) */
    pc_redis_t *redis;
    pc_http_t *http;
    pc_http_token_t admin_token; /* coordinator.admin_token_file's, when admin_token_set */
    bool admin_token_set;
    pc_coord_admin_t *admin;
    pc_coord_crl_t *crls; /* one per CA, [engine->ca_count] */
    pc_coord_notices_t *notices;
    unsigned ocsp_in_flight;                 /* OCSP requests on the pool (coord_ocsp.c) */
    char ocsp_last_error[sizeof(pc_diag_t)]; /* the last OCSP failure logged */
    char *result_key_pem; /* the public key of worker.result_key_file; NULL: none */
    uv_signal_t sigterm, sigint;
    uv_timer_t refresh;
    uv_timer_t crl_timer;
    int open; /* uv handles and components not closed yet */

    pc_coord_topic_t topics[COORD_TOPICS];
    int topic_count;         /* the topics configured (a topic named "" is not used) */
    bool ensure;             /* create missing topics (at start, POST /api/topics/ensure) */
    bool create_in_flight;   /* a CreateTopics call is under way */
    int missing_probes;      /* consecutive probes that found a topic missing */
    json_t *logged_problems; /* problems already logged: {"text": true} */
    char create_error[512];  /* the last topic creation failure logged */

    bool eviction_checked;  /* Redis's maxmemory-policy was found acceptable (or unreadable) */
    bool eviction_checking; /* the check is under way */

    pc_coord_cycle_t *cycle; /* the running cycle, or NULL */
    bool refresh_again;      /* asked for a refresh while one was running */
    pc_coord_view_t view;
    pc_coord_metrics_t m;
};

/* pc_coord_refresh_soon runs the next cycle in delay_ms unless one is running. */
void pc_coord_refresh_soon(pc_coord_t *coord, uint64_t delay_ms);

#endif
