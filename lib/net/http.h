/*
 * http.h - a small HTTP/1.1 server on a libuv loop: the worker's /healthz, /readyz and
 * /metrics, the coordinator's status page and API: the request line and headers (no body),
 * one response per connection (Connection: close), bounded request size, slow clients timed
 * out. Loop thread only.
 */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pc_err.h"

typedef struct pc_http pc_http_t;

typedef struct pc_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd, taken by the server; may be NULL */
    size_t body_len;
} pc_http_response_t;

/* Handles one request (method "GET"/"HEAD"/..., path without the query string: see
 * pc_http_query). Runs on the loop thread; must not block: an answer that needs Redis is
 * given later through pc_http_defer. */
typedef void (*pc_http_handler_fn)(void *arg, const char *method, const char *path,
                                   pc_http_response_t *resp);

/* pc_http_respond_text sets resp to a plain-text answer: status and a copy of text (an out of
 * memory copy leaves the body empty). */
void pc_http_respond_text(pc_http_response_t *resp, int status, const char *text);

/* pc_http_new listens on host:port (port 0 = any free port; see pc_http_port). host is a
 * numeric IPv4/IPv6 address, "localhost", or NULL/"" for 0.0.0.0. Fails with
 * PC_ERR_INVALID_PARAM for a bad address or port, PC_ERR_IO when the socket cannot listen
 * (e.g. port in use); after a PC_ERR_IO the half-made server is freed on the loop's next turn,
 * so run the loop before uv_loop_close(). Loop thread. */
pc_err_t pc_http_new(uv_loop_t *loop, const char *host, int port, pc_http_handler_fn handler,
                     void *arg, pc_http_t **out, pc_diag_t *diag);
/* pc_http_port returns the port actually listened on (the chosen one when asked for 0). */
int pc_http_port(const pc_http_t *http);
/* pc_http_set_idle_timeout sets, for connections accepted afterwards, how long a client has to
 * send its whole request head, and again to read the answer and close (0 = the default 5 s).
 * Mostly for tests. Loop thread. */
void pc_http_set_idle_timeout(pc_http_t *http, uint64_t ms);
/* pc_http_query returns the query string of the request whose handler is running (what
 * follows '?', without a fragment; "" when there is none), still percent-encoded, borrowed
 * until the handler returns; NULL outside a handler. */
const char *pc_http_query(const pc_http_t *http);

/* A request whose answer is given later. */
typedef struct pc_http_later pc_http_later_t;

/* pc_http_defer, called by a handler, answers its request later: the server sends nothing when
 * the handler returns (resp is then ignored), and the caller owes one pc_http_answer with the
 * handle, whatever happens. The connection's time limit still runs: a client that leaves, or
 * waits past it, or a server closed meanwhile, only means the answer goes nowhere. NULL
 * outside a handler or when out of memory: the handler answers now. Loop thread. */
pc_http_later_t *pc_http_defer(pc_http_t *http);

/* pc_http_answer sends resp (status, type, body: the body is taken, also when the client is
 * gone) as the answer of a deferred request, and frees later. Loop thread. */
void pc_http_answer(pc_http_later_t *later, pc_http_response_t *resp);

/* pc_http_close stops listening, closes open connections, frees http in the last close
 * callback and then calls closed (may be NULL). NULL or a second call does nothing. */
void pc_http_close(pc_http_t *http, void (*closed)(void *arg), void *arg);

#endif
