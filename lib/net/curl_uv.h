/*
 * curl_uv.h - an HTTP(S) client on the worker's libuv loop: libcurl's multi interface driven by
 * uv_poll and one uv_timer, with a bounded number of requests in flight and a FIFO for the rest.
 * No blocking call and no thread of ours; loop thread only.
 */
#ifndef PC_CURL_UV_H
#define PC_CURL_UV_H

#include <stddef.h>

#include <curl/curl.h>
#include <uv.h>

#include "pc_err.h"

typedef struct pc_curl_uv pc_curl_uv_t;

/* TLS settings of one request; every member may be NULL. Files are read by libcurl when the
 * connection is made (on the loop thread: keep them on local disk). */
typedef struct pc_curl_uv_tls {
    const char *ca_bundle;   /* PEM file of the CAs to trust; NULL: the system's store */
    const char *client_cert; /* PEM client certificate for mutual TLS; NULL: none */
    const char *client_key;  /* its PEM private key (unencrypted) */
} pc_curl_uv_tls_t;

/* One request. Everything is copied before pc_curl_uv_request returns. */
typedef struct pc_curl_uv_request {
    const char *method; /* "GET", "POST", "PUT", "DELETE", ...; NULL: GET, or POST with a body */
    const char *url;    /* http:// or https:// only */
    const void *body;   /* may be NULL */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines */
    size_t header_count;
    unsigned connect_timeout_ms; /* 0: 10 s */
    /* 0: 30 s. Counts from pc_curl_uv_request, so time spent waiting in the queue counts too. */
    unsigned total_timeout_ms;
    size_t max_response;         /* 0: 1 MiB; a longer response body fails the request */
    const pc_curl_uv_tls_t *tls; /* NULL: all defaults */
} pc_curl_uv_request_t;

/* Outcome of one request. code is CURLE_OK when an HTTP answer arrived, whatever its status;
 * otherwise the transfer failed (CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, ...;
 * CURLE_ABORTED_BY_CALLBACK when the client was closed first) and error says how. */
typedef struct pc_curl_uv_result {
    CURLcode code;
    long status;       /* HTTP status, 0 without an answer */
    char *body;        /* malloc'd and NUL-terminated (never NULL); the callback frees it */
    size_t body_len;   /* without the NUL */
    const char *error; /* "" on success; valid during the callback only */
    double seconds;    /* from pc_curl_uv_request to the outcome */
} pc_curl_uv_result_t;

/* Called exactly once per accepted request, on the loop thread, never inside
 * pc_curl_uv_request itself. */
typedef void (*pc_curl_uv_done_fn)(void *arg, pc_curl_uv_result_t *result);

/* pc_curl_uv_new makes a client on loop that runs at most max_concurrent requests at once
 * (0: 16); *out is the caller's (pc_curl_uv_close). PC_ERR_NOMEM, or PC_ERR_DEPENDENCY when
 * libcurl cannot be initialised. Loop thread. */
pc_err_t pc_curl_uv_new(uv_loop_t *loop, unsigned max_concurrent, pc_curl_uv_t **out,
                        pc_diag_t *diag);

/* pc_curl_uv_request starts req, or queues it (FIFO) while max_concurrent requests run; done
 * gets the outcome. Returns PC_OK when done will be called; PC_ERR_INVALID_PARAM for a missing
 * or non-HTTP URL, a bad option, or a closing client; PC_ERR_NOMEM. Loop thread. */
pc_err_t pc_curl_uv_request(pc_curl_uv_t *cu, const pc_curl_uv_request_t *req,
                            pc_curl_uv_done_fn done, void *arg, pc_diag_t *diag);

/* pc_curl_uv_active and pc_curl_uv_queued count requests in flight and waiting. */
size_t pc_curl_uv_active(const pc_curl_uv_t *cu);
size_t pc_curl_uv_queued(const pc_curl_uv_t *cu);

/* pc_curl_uv_close fails every queued and running request (CURLE_ABORTED_BY_CALLBACK; their
 * callbacks run before it returns), and frees cu in the last close callback, after which
 * closed (may be NULL) is called. Run the loop before uv_loop_close(). NULL or a second call
 * does nothing. May be called from a done callback. Loop thread. */
void pc_curl_uv_close(pc_curl_uv_t *cu, void (*closed)(void *arg), void *arg);

#endif
