/*
 * http.h - a small HTTP/1.1 server on a libuv loop: the worker's /healthz, /readyz and
 * /metrics, the coordinator's status page, API and OCSP responder: the request line and
 * headers, a bounded body where the server allows one (pc_http_set_body_max), one response per
 * connection (Connection: close), answered at once or later (pc_http_defer), bounded request
 * size, slow clients timed out. Loop thread only.
 */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pc_err.h"

typedef struct pc_http pc_http_t;
typedef struct pc_http_conn pc_http_conn_t;
typedef struct pc_http_deferred pc_http_deferred_t;

/* What a handler may need of the request beyond its method and path. */
typedef struct pc_http_request {
    const char *content_type;  /* the Content-Type header's value; NULL when absent */
    const unsigned char *body; /* the body, when the server reads bodies; else NULL */
    size_t body_len;
} pc_http_request_t;

typedef struct pc_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd, taken by the server; may be NULL */
    size_t body_len;
    /* Set by the server before it calls the handler, borrowed for the call: the request, and
     * the connection (the server's, for pc_http_defer). NULL in a response made elsewhere. */
    const pc_http_request_t *request;
    pc_http_conn_t *conn;
} pc_http_response_t;

/* Handles one request (method "GET"/"HEAD"/..., path without the query string). Runs on the
 * loop thread; must not block. */
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
/* pc_http_set_body_max makes the server read the body of requests that announce one with
 * Content-Length, up to max bytes (0, the default: bodies are not read, handlers see none); a
 * longer one is answered 413 and a body without Content-Length 411, without the handler. For
 * connections accepted afterwards. Loop thread. */
void pc_http_set_body_max(pc_http_t *http, size_t max);

/* pc_http_defer, called by a handler with its resp, keeps the connection open for an answer
 * given later with pc_http_deferred_answer (work on the thread pool, say); the handler then
 * leaves resp empty. Returns NULL when out of memory or resp is not the server's: the handler
 * answers at once then. The idle timeout bounds the wait: a client that gave up, or a server
 * closed meanwhile, only makes the answer go nowhere. Loop thread. */
pc_http_deferred_t *pc_http_defer(pc_http_response_t *resp);

/* pc_http_deferred_answer sends resp (its body is taken) for the deferred request d if its
 * connection is still open, and frees d. Every deferred request is answered exactly once, also
 * after pc_http_close (then nothing is sent). Loop thread. */
void pc_http_deferred_answer(pc_http_deferred_t *d, pc_http_response_t *resp);

/* pc_http_close stops listening, closes open connections, frees http in the last close
 * callback and then calls closed (may be NULL). NULL or a second call does nothing. */
void pc_http_close(pc_http_t *http, void (*closed)(void *arg), void *arg);

#endif
