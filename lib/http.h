/*
 * http.h - a small HTTP/1.1 server on the worker's libuv loop for /healthz, /readyz and
 * /metrics (and the coordinator's API later): GET and HEAD, one response per connection
 * (Connection: close), bounded request size, slow clients timed out. Loop thread only.
 */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "pc_err.h"

typedef struct pc_http pc_http_t;

typedef struct pc_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd, taken by the server; may be NULL */
    size_t body_len;
} pc_http_response_t;

/* Handles one request (method "GET"/"HEAD"/..., path without the query string). Runs on the
 * loop thread; must not block. */
typedef void (*pc_http_handler_fn)(void *arg, const char *method, const char *path,
                                   pc_http_response_t *resp);

/* pc_http_new listens on host:port (port 0 = any free port; see pc_http_port). */
pc_err_t pc_http_new(uv_loop_t *loop, const char *host, int port, pc_http_handler_fn handler,
                     void *arg, pc_http_t **out, pc_diag_t *diag);
int pc_http_port(const pc_http_t *http);
/* pc_http_close stops listening, closes open connections, frees http in the last close
 * callback and then calls closed (may be NULL). */
void pc_http_close(pc_http_t *http, void (*closed)(void *arg), void *arg);

#endif
