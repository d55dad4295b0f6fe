/*
 * pkcs-coordinator - the control plane of a PKCS Connector cluster: makes sure the topics
 * exist (and reports those that differ from the configuration), shows the workers as Active or
 * Inactive with their counts, lag and issue rate on a status page, a JSON API and Prometheus
 * metrics, publishes the CA certificates and CRLs, answers OCSP for the local CAs, and sends
 * the notices of what falls due. Holds no state of its own: any number of copies may run. One
 * libuv loop thread; the pool runs the blocking Kafka probe, CRL and OCSP signing. SIGTERM /
 * SIGINT close everything and exit 0.
 *
 * usage: pkcs-coordinator [--config FILE]     (or PC_CONFIG; environment overrides apply)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "coord.h"
#include "log.h"

static void usage(void)
{
    printf("usage: pkcs-coordinator [--config FILE]\n\n"
           "Creates the cluster's Kafka topics when missing, shows the workers, lag and issue\n"
           "rate on http://HOST:PORT/ (coordinator.http_host / http_port, default\n"
           "127.0.0.1:9470) with a JSON API and /metrics, and serves /ca/NAME.crt,\n"
           "/crl/NAME.crl and /ocsp/NAME. Settings come from the configuration file (--config\n"
           "or PC_CONFIG) and PC_* environment variables; see README.md. SIGTERM stops it\n"
           "(exit 0).\n");
}

/* ---- closing ----------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *handle)
{
    pc_coord_t *coord = handle->data;
    coord->open--;
}

static void on_component_closed(void *arg)
{
    pc_coord_t *coord = arg;
    coord->open--;
}

/* close_backends closes Redis and the engine's CAs (a cfssl CA's HTTP client is on the loop). */
static void close_backends(pc_coord_t *coord)
{
    if (coord->redis != NULL) {
        coord->open++;
        pc_redis_close(coord->redis, on_component_closed, coord);
        coord->redis = NULL;
    }
    if (coord->engine != NULL && !coord->engine_closing) {
        coord->engine_closing = true;
        coord->open++;
        pc_engine_close(coord->engine, on_component_closed, coord);
    }
}

/* The notices' last batch still uses Redis and the CAs (it revokes superseded certificates):
 * they are closed after it. */
static void on_notices_closed(void *arg)
{
    pc_coord_t *coord = arg;
    coord->open--;
    close_backends(coord);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_closed);
}

/* coord_shutdown closes every handle and component; the loop then ends. Pending Kafka admin
 * calls are answered (with NULL) by pc_coord_admin_free after the loop. */
static void coord_shutdown(pc_coord_t *coord, int exit_code)
{
    if (coord->stopping)
        return;
    coord->stopping = true;
    coord->exit_code = exit_code;
    close_handle((uv_handle_t *)&coord->sigterm);
    close_handle((uv_handle_t *)&coord->sigint);
    close_handle((uv_handle_t *)&coord->refresh);
    close_handle((uv_handle_t *)&coord->crl_timer);
    if (coord->http != NULL) {
        coord->open++;
        pc_http_close(coord->http, on_component_closed, coord);
        coord->http = NULL;
    }
    if (coord->notices != NULL) { /* then Redis and the CAs */
        coord->open++;
        pc_coord_notices_close(coord->notices, on_notices_closed, coord);
        coord->notices = NULL;
    } else {
        close_backends(coord);
    }
    pc_coord_admin_stop(coord->admin);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    pc_coord_t *coord = sig->data;
    pc_log(PC_LOG_INFO, "stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    coord_shutdown(coord, 0);
}

/* ---- refresh ----------------------------------------------------------------------------- */

/* A Redis that may evict keys would, once full, drop the local CA's records, which the
 * coordinator's CRLs are made from: refuse it. Redis not reachable yet: the next refresh asks
 * again. */
static void on_eviction_checked(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    pc_coord_t *coord = arg;
    coord->eviction_checking = false;
    if (!coord->stopping && err == PC_ERR_DEPENDENCY && pc_redis_refused(coord->redis)) {
        /* a wrong user or password does not heal by waiting: say so and stop */
        pc_log(PC_LOG_ERROR, "redis_refused", pc_redis_last_error(coord->redis), NULL);
        fprintf(stderr, "pkcs-coordinator: %s\n", pc_redis_last_error(coord->redis));
        coord_shutdown(coord, 1);
        return;
    }
    if (coord->stopping || err == PC_ERR_DEPENDENCY)
        return;
    if (err == PC_ERR_INVALID_PARAM) {
        pc_log(PC_LOG_ERROR, "redis_misconfigured", diag->msg, NULL);
        fprintf(stderr, "pkcs-coordinator: %s\n", diag->msg);
        coord_shutdown(coord, 1);
        return;
    }
    if (err != PC_OK)
        pc_log(PC_LOG_WARN, "redis_policy_unknown", diag->msg, NULL);
    coord->eviction_checked = true;
}

static void on_refresh(uv_timer_t *timer)
{
    pc_coord_t *coord = timer->data;
    if (!coord->eviction_checked && !coord->eviction_checking &&
        pc_redis_check_eviction(coord->redis, on_eviction_checked, coord) == PC_OK)
        coord->eviction_checking = true;
    pc_coord_cycle_start(coord);
}

void pc_coord_refresh_soon(pc_coord_t *coord, uint64_t delay_ms)
{
    if (coord->stopping)
        return;
    if (coord->cycle != NULL) { /* the running cycle's end schedules the next one */
        coord->refresh_again |= delay_ms < COORD_REFRESH_MS;
        return;
    }
    uv_timer_start(&coord->refresh, on_refresh, delay_ms, 0);
}

/* ---- start ------------------------------------------------------------------------------- */

static void init_handles(pc_coord_t *coord)
{
    uv_handle_t *handles[] = {(uv_handle_t *)&coord->sigterm, (uv_handle_t *)&coord->sigint,
                              (uv_handle_t *)&coord->refresh, (uv_handle_t *)&coord->crl_timer};
    uv_signal_init(coord->loop, &coord->sigterm);
    uv_signal_init(coord->loop, &coord->sigint);
    uv_timer_init(coord->loop, &coord->refresh);
    uv_timer_init(coord->loop, &coord->crl_timer);
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        handles[i]->data = coord;
    coord->open += (int)(sizeof(handles) / sizeof(handles[0]));
}

/* The workers' result key, published for consumers: only its public half is kept. */
static pc_err_t load_result_key(pc_coord_t *coord, pc_diag_t *diag)
{
    const pc_config_worker_t *w = &coord->cfg->worker;
    pc_signer_t *signer = NULL;
    if (w->result_key_file == NULL)
        return PC_OK;
    pc_err_t err = pc_signer_new(w->result_key_id, w->result_key_algorithm, w->result_key_file,
                                 NULL, &signer, diag);
    if (err == PC_OK)
        err = pc_signer_public_pem(signer, &coord->result_key_pem, diag);
    pc_signer_free(signer);
    if (err != PC_OK)
        pc_diag_prefix(diag, "worker.result_key_file");
    return err;
}

static pc_err_t coord_start(pc_coord_t *coord, pc_diag_t *diag)
{
    const pc_config_t *cfg = coord->cfg;
    pc_redis_config_t rc = pc_config_redis(cfg);
    pc_kafka_security_t security = pc_config_kafka_security(cfg);
    char port[16];
    pc_err_t err;
    if ((err = pc_coord_metrics_init(&coord->m)) != PC_OK) {
        pc_fail(diag, err, "out of memory");
        return err;
    }
    pc_coord_topics_init(coord);
    if ((err = load_result_key(coord, diag)) != PC_OK)
        return err;
    if (cfg->coordinator.admin_token_file != NULL) {
        if ((err = pc_http_token_load(cfg->coordinator.admin_token_file, &coord->admin_token,
                                      diag)) != PC_OK) {
            pc_diag_prefix(diag, "coordinator.admin_token_file");
            return err;
        }
        coord->admin_token_set = true;
    }
    /* On the loop: a cfssl CA needs it to fetch its certificate and CRL, and the notices revoke
     * through the CAs without blocking it. */
    if ((err = pc_engine_new_loop(coord->cfg, coord->loop, &coord->engine, diag)) != PC_OK ||
        (err = pc_redis_new(coord->loop, &rc, &coord->redis, diag)) != PC_OK ||
        (err = pc_coord_admin_new(coord->loop, &cfg->kafka, &security, &coord->admin, diag)) !=
            PC_OK ||
        (err = pc_http_new(coord->loop, cfg->coordinator.http_host, (int)cfg->coordinator.http_port,
                           pc_coord_http_handler, coord, &coord->http, diag)) != PC_OK ||
        (err = pc_coord_ca_start(coord, diag)) != PC_OK ||
        (err = pc_coord_ocsp_start(coord, diag)) != PC_OK ||
        (err = pc_coord_notices_new(coord, &coord->notices, diag)) != PC_OK)
        return err;
    pc_http_set_max_connections(coord->http, cfg->coordinator.http_max_connections);
    pc_http_set_idle_timeout(coord->http, cfg->coordinator.http_timeout_ms);
    snprintf(port, sizeof(port), "%d", pc_http_port(coord->http));
    pc_log(PC_LOG_INFO, "http", "serving the status page, /api, /metrics, /ca, /crl and /ocsp",
           "port", port, "write_endpoints", coord->admin_token_set ? "token" : "off", NULL);
    uv_signal_start(&coord->sigterm, on_signal, SIGTERM);
    uv_signal_start(&coord->sigint, on_signal, SIGINT);
    coord->ensure = true;
    pc_coord_refresh_soon(coord, 0);
    pc_log(PC_LOG_INFO, "started", "coordinator running", "brokers", cfg->kafka.brokers, "group",
           cfg->kafka.group_id, NULL);
    return PC_OK;
}

static void coord_cleanup(pc_coord_t *coord)
{
    free(coord->result_key_pem);
    coord->result_key_pem = NULL;
    pc_coord_admin_free(coord->admin); /* answers pending calls: may end the last cycle */
    coord->admin = NULL;
    if (coord->engine != NULL)
        pc_coord_ca_free(coord);
    pc_engine_free(coord->engine);
    pc_coord_view_clear(&coord->view);
    OPENSSL_cleanse(&coord->admin_token, sizeof(coord->admin_token));
    json_decref(coord->logged_problems);
    pc_metrics_free(coord->m.registry);
}

static int run(pc_config_t *cfg)
{
    static pc_coord_t coord; /* lives for the whole process */
    pc_diag_t diag = {{0}};
    uv_loop_t loop;
    uv_loop_init(&loop);
    coord.loop = &loop;
    coord.cfg = cfg;
    init_handles(&coord);
    pc_err_t err = coord_start(&coord, &diag);
    if (err != PC_OK) {
        fprintf(stderr, "pkcs-coordinator: %s\n", diag.msg[0] ? diag.msg : pc_strerror(err));
        pc_log(PC_LOG_ERROR, "start_failed", diag.msg, NULL);
        coord_shutdown(&coord, 1);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    coord_cleanup(&coord);
    if (uv_loop_close(&loop) != 0)
        pc_log(PC_LOG_WARN, "loop", "event loop closed with handles open", NULL);
    pc_log(PC_LOG_INFO, "exit", coord.exit_code == 0 ? "stopped" : "exiting with an error", NULL);
    return coord.exit_code;
}

int main(int argc, char **argv)
{
    const char *config = getenv("PC_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("pkcs-coordinator %s\n", PC_VERSION);
            return 0;
        } else {
            fprintf(stderr, "pkcs-coordinator: unknown argument \"%s\"; see --help\n", argv[i]);
            return 2;
        }
    }
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    if (pc_config_load(config, &cfg, &diag) != PC_OK) {
        fprintf(stderr, "pkcs-coordinator: configuration: %s\n", diag.msg);
        return 2;
    }
    int level = pc_log_parse_level(cfg->worker.log_level);
    pc_log_init("coordinator", level < 0 ? PC_LOG_INFO : (pc_log_level_t)level, NULL);
    int rc = run(cfg);
    pc_config_free(cfg);
    return rc;
}
