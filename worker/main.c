/*
 * pkcs-worker - the stateless worker: consumes certificate requests from Kafka, issues them
 * with the configured CAs, publishes results. Any number of identical copies share the load.
 *
 * usage: pkcs-worker [--config FILE]     (or PC_CONFIG; environment overrides apply)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "log.h"
#include "worker.h"

static void usage(void)
{
    printf("usage: pkcs-worker [--config FILE]\n\n"
           "Consumes signed certificate requests from Kafka, issues them and publishes the\n"
           "results. Settings come from the configuration file (--config or PC_CONFIG) and\n"
           "PC_* environment variables; see README.md. SIGTERM drains and exits 0.\n");
}

/* libuv reads UV_THREADPOOL_SIZE once, at the first queued work: set it before anything. */
static void size_threadpool(pc_worker_t *w, const pc_config_t *cfg)
{
    unsigned n = cfg->worker.threadpool_size;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 2;
    }
    char text[16];
    snprintf(text, sizeof(text), "%u", n);
    setenv("UV_THREADPOOL_SIZE", text, 1);
    w->threadpool_size = n;
}

static int run(pc_config_t *cfg)
{
    static pc_worker_t w; /* large; lives for the whole process */
    pc_diag_t diag = {{0}};
    uv_loop_t loop;
    uv_loop_init(&loop);
    pc_err_t err = pc_worker_init(&w, &loop, cfg, &diag);
    size_threadpool(&w, cfg);
    if (err == PC_OK)
        err = pc_worker_start(&w, &diag);
    if (err != PC_OK) {
        fprintf(stderr, "pkcs-worker: %s\n", diag.msg[0] ? diag.msg : pc_strerror(err));
        pc_log(PC_LOG_ERROR, "start_failed", diag.msg, NULL);
        pc_worker_shutdown(&w, 1);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    pc_worker_cleanup(&w);
    int rc = uv_loop_close(&loop);
    if (rc != 0)
        pc_log(PC_LOG_WARN, "loop", "event loop closed with handles open", NULL);
    pc_log(PC_LOG_INFO, "exit", w.exit_code == 0 ? "drained, exiting" : "exiting with an error",
           NULL);
    return w.exit_code;
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
#ifdef PC_TEST_HOOKS
            printf("pkcs-worker %s (test hooks)\n", PC_VERSION);
#else
            printf("pkcs-worker %s\n", PC_VERSION);
#endif
            return 0;
        } else {
            fprintf(stderr, "pkcs-worker: unknown argument \"%s\"; see --help\n", argv[i]);
            return 2;
        }
    }
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    pc_err_t err = pc_config_load(config, &cfg, &diag);
    if (err != PC_OK) {
        fprintf(stderr, "pkcs-worker: configuration: %s\n", diag.msg);
        return 2;
    }
    int level = pc_log_parse_level(cfg->worker.log_level);
    pc_log_init(cfg->worker.id, level < 0 ? PC_LOG_INFO : (pc_log_level_t)level, NULL);
    int rc = run(cfg);
    pc_config_free(cfg);
    return rc;
}
