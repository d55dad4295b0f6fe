/*
 * curl_uv.c - libcurl's multi interface driven by the worker's libuv loop, so that HTTP calls
 * to a CA (cfssl today) never block the loop thread and need no thread of ours.
 *
 * libcurl says which sockets to watch (socket callback: one uv_poll per socket) and when to be
 * called back (timer callback: one uv_timer); we report readiness with
 * curl_multi_socket_action and collect finished transfers with curl_multi_info_read. At most
 * max_concurrent transfers run; the rest wait in a FIFO. Loop thread only.
 *
 * Lifetimes: a transfer (xfer_t) is freed right after its callback. Poll handles are freed in
 * their close callbacks; the client itself in the close callback of its last handle (a timer
 * or a poll), after pc_curl_uv_close, so uv_loop_close() returns 0 once the loop has run.
 * No user callback ever runs inside a libcurl call: callbacks run from collect() after
 * curl_multi_socket_action has returned, from the queue timer, or from pc_curl_uv_close.
 */
#include "curl_uv.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef PC_VERSION
#define PC_VERSION "dev"
#endif

#define DEFAULT_MAX_CONCURRENT 16u
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DEFAULT_TOTAL_TIMEOUT_MS 30000u
#define DEFAULT_MAX_RESPONSE ((size_t)1 << 20)
#define RESPONSE_INITIAL 512u
#define METHOD_MAX 16u

typedef struct xfer xfer_t;
typedef struct sock sock_t;

struct pc_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;           /* NULL once closing */
    uv_timer_t timer;       /* libcurl's timeouts */
    uv_timer_t queue_timer; /* the earliest deadline of a queued request */
    uint64_t queue_due;     /* when queue_timer fires, while it is active */
    unsigned max_concurrent;
    xfer_t *active; /* running transfers, doubly linked */
    size_t nactive;
    xfer_t *queue_head; /* waiting for a slot, oldest first */
    xfer_t *queue_tail;
    size_t nqueued;
    sock_t *socks;    /* watched sockets whose poll handle is not closing */
    unsigned handles; /* the two timers and the poll handles not yet closed */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* One socket libcurl asked us to watch. */
struct sock {
    sock_t *prev, *next;
    pc_curl_uv_t *cu;
    curl_socket_t fd;
    uv_poll_t poll;
};

struct xfer {
    xfer_t *prev, *next;
    pc_curl_uv_t *cu;
    CURL *easy;
    struct curl_slist *headers;
    char *resp; /* always allocated and NUL-terminated */
    size_t resp_len, resp_cap, resp_max;
    bool too_large;
    uint64_t started;  /* uv_now() at pc_curl_uv_request */
    uint64_t deadline; /* started + total timeout */
    unsigned connect_ms;
    pc_curl_uv_done_fn done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    /* once per process, never cleaned up: other modules may use libcurl until exit */
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void handle_released(pc_curl_uv_t *cu)
{
    if (--cu->handles > 0 || !cu->closing)
        return;
    void (*closed)(void *) = cu->closed;
    void *arg = cu->closed_arg;
    free(cu);
    if (closed != NULL)
        closed(arg);
}

static void on_timer_closed(uv_handle_t *handle)
{
    handle_released(handle->data);
}

static void on_sock_closed(uv_handle_t *handle)
{
    sock_t *sock = handle->data;
    pc_curl_uv_t *cu = sock->cu;
    free(sock);
    handle_released(cu);
}

/* sock_close stops watching at once (uv_close does) and frees sock in its close callback. */
static void sock_close(sock_t *sock)
{
    pc_curl_uv_t *cu = sock->cu;
    if (sock->prev != NULL)
        sock->prev->next = sock->next;
    else
        cu->socks = sock->next;
    if (sock->next != NULL)
        sock->next->prev = sock->prev;
    uv_close((uv_handle_t *)&sock->poll, on_sock_closed);
}

static void xfer_free(xfer_t *xfer)
{
    if (xfer == NULL)
        return;
    curl_easy_cleanup(xfer->easy);
    curl_slist_free_all(xfer->headers);
    free(xfer->resp);
    free(xfer);
}

/* xfer_finish hands the outcome to the caller and frees xfer. code CURLE_OK means an HTTP
 * answer arrived; xfer->errbuf may already say more about a failure. */
static void xfer_finish(xfer_t *xfer, CURLcode code)
{
    pc_curl_uv_result_t res = {.code = code, .status = 0};
    uint64_t now = uv_now(xfer->cu->loop);

    if (code == CURLE_OK)
        curl_easy_getinfo(xfer->easy, CURLINFO_RESPONSE_CODE, &res.status);
    else if (code == CURLE_WRITE_ERROR && xfer->too_large)
        snprintf(xfer->errbuf, sizeof(xfer->errbuf),
                 "the response body is larger than %zu bytes; refused", xfer->resp_max);
    else if (xfer->errbuf[0] == '\0')
        snprintf(xfer->errbuf, sizeof(xfer->errbuf), "%s", curl_easy_strerror(code));
    res.error = code == CURLE_OK ? "" : xfer->errbuf;
    res.body = xfer->resp;
    res.body_len = xfer->resp_len;
    res.seconds = (double)(now - xfer->started) / 1000.0;
    xfer->resp = NULL;
    xfer->done(xfer->arg, &res);
    xfer_free(xfer);
}

/* ---- the FIFO and the running set -------------------------------------------------------- */

static void active_link(pc_curl_uv_t *cu, xfer_t *xfer)
{
    xfer->prev = NULL;
    xfer->next = cu->active;
    if (cu->active != NULL)
        cu->active->prev = xfer;
    cu->active = xfer;
    cu->nactive++;
}

static void active_unlink(pc_curl_uv_t *cu, xfer_t *xfer)
{
    if (xfer->prev != NULL)
        xfer->prev->next = xfer->next;
    else
        cu->active = xfer->next;
    if (xfer->next != NULL)
        xfer->next->prev = xfer->prev;
    xfer->prev = xfer->next = NULL;
    cu->nactive--;
}

static void on_queue_timer(uv_timer_t *timer);

/* arm_queue_timer wakes the loop at deadline unless it is already due earlier. */
static void arm_queue_timer(pc_curl_uv_t *cu, uint64_t deadline)
{
    uint64_t now = uv_now(cu->loop);

    if (uv_is_active((uv_handle_t *)&cu->queue_timer) && cu->queue_due <= deadline)
        return;
    cu->queue_due = deadline;
    uv_timer_start(&cu->queue_timer, on_queue_timer, deadline > now ? deadline - now : 0, 0);
}

static void queue_push(pc_curl_uv_t *cu, xfer_t *xfer)
{
    xfer->next = NULL;
    if (cu->queue_tail != NULL)
        cu->queue_tail->next = xfer;
    else
        cu->queue_head = xfer;
    cu->queue_tail = xfer;
    cu->nqueued++;
    arm_queue_timer(cu, xfer->deadline);
}

static xfer_t *queue_pop(pc_curl_uv_t *cu)
{
    xfer_t *xfer = cu->queue_head;
    if (xfer == NULL)
        return NULL;
    cu->queue_head = xfer->next;
    if (cu->queue_head == NULL)
        cu->queue_tail = NULL;
    xfer->next = NULL;
    cu->nqueued--;
    return xfer;
}

static void queue_expired(xfer_t *xfer, uint64_t now)
{
    snprintf(xfer->errbuf, sizeof(xfer->errbuf),
             "timed out after %llu ms waiting for one of the %u connection slots",
             (unsigned long long)(now - xfer->started), xfer->cu->max_concurrent);
}

/* on_queue_timer fails the queued requests whose time is up (each request has its own
 * timeout, so they need not be at the head), then waits for the next deadline. */
static void on_queue_timer(uv_timer_t *timer)
{
    pc_curl_uv_t *cu = timer->data;
    uint64_t now = uv_now(cu->loop);
    uint64_t next_due = UINT64_MAX;
    xfer_t *expired = NULL, **tail = &expired, *prev = NULL;

    for (xfer_t *xfer = cu->queue_head, *next; xfer != NULL; xfer = next) {
        next = xfer->next;
        if (xfer->deadline > now) {
            next_due = xfer->deadline < next_due ? xfer->deadline : next_due;
            prev = xfer;
            continue;
        }
        if (prev != NULL)
            prev->next = next;
        else
            cu->queue_head = next;
        if (cu->queue_tail == xfer)
            cu->queue_tail = prev;
        cu->nqueued--;
        xfer->next = NULL;
        *tail = xfer;
        tail = &xfer->next;
    }
    if (next_due != UINT64_MAX)
        arm_queue_timer(cu, next_due);
    while (expired != NULL) {
        xfer_t *xfer = expired;
        expired = xfer->next;
        queue_expired(xfer, now);
        xfer_finish(xfer, CURLE_OPERATION_TIMEDOUT);
    }
}

/* xfer_start hands xfer to libcurl with what is left of its time; on failure xfer is not
 * running and the code says why (errbuf too). */
static CURLcode xfer_start(pc_curl_uv_t *cu, xfer_t *xfer)
{
    uint64_t now = uv_now(cu->loop);

    if (now >= xfer->deadline) {
        queue_expired(xfer, now);
        return CURLE_OPERATION_TIMEDOUT;
    }
    long left = (long)(xfer->deadline - now);
    long connect = (long)xfer->connect_ms < left ? (long)xfer->connect_ms : left;
    if (curl_easy_setopt(xfer->easy, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
        curl_easy_setopt(xfer->easy, CURLOPT_CONNECTTIMEOUT_MS, connect) != CURLE_OK)
        return CURLE_FAILED_INIT;
    CURLMcode mc = curl_multi_add_handle(cu->multi, xfer->easy);
    if (mc != CURLM_OK) {
        snprintf(xfer->errbuf, sizeof(xfer->errbuf), "cannot start the transfer: %s",
                 curl_multi_strerror(mc));
        return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    }
    active_link(cu, xfer);
    return CURLE_OK;
}

/* start_queued fills free slots from the FIFO; a request whose time ran out while it waited
 * fails here. */
static void start_queued(pc_curl_uv_t *cu)
{
    while (!cu->closing && cu->nactive < cu->max_concurrent && cu->queue_head != NULL) {
        xfer_t *xfer = queue_pop(cu);
        CURLcode code = xfer_start(cu, xfer);
        if (code != CURLE_OK)
            xfer_finish(xfer, code);
    }
}

/* collect answers every finished transfer; the freed slot goes to the FIFO's head first, so
 * that a request made from a callback cannot overtake one that was waiting. */
static void collect(pc_curl_uv_t *cu)
{
    CURLMsg *msg;
    int left = 0;

    while (!cu->closing && (msg = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result; /* msg is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        xfer_t *xfer = (xfer_t *)(void *)priv;
        curl_multi_remove_handle(cu->multi, easy);
        active_unlink(cu, xfer);
        start_queued(cu);
        xfer_finish(xfer, code);
    }
}

/* ---- libcurl's callbacks and the loop's -------------------------------------------------- */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_t *sock = poll->data;
    pc_curl_uv_t *cu = sock->cu;
    int flags = 0;
    int running = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if ((events & (UV_READABLE | UV_DISCONNECT)) != 0)
        flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(cu->multi, sock->fd, flags, &running);
    collect(cu);
}

static void on_timer(uv_timer_t *timer)
{
    pc_curl_uv_t *cu = timer->data;
    int running = 0;

    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(cu);
}

static sock_t *sock_new(pc_curl_uv_t *cu, curl_socket_t fd)
{
    sock_t *sock = calloc(1, sizeof(*sock));
    if (sock == NULL)
        return NULL;
    if (uv_poll_init_socket(cu->loop, &sock->poll, fd) != 0) {
        free(sock);
        return NULL;
    }
    sock->cu = cu;
    sock->fd = fd;
    sock->poll.data = sock;
    sock->next = cu->socks;
    if (cu->socks != NULL)
        cu->socks->prev = sock;
    cu->socks = sock;
    cu->handles++;
    return sock;
}

/* libcurl's socket callback: watch, rewatch or forget fd. Must not call back into libcurl
 * other than curl_multi_assign. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    pc_curl_uv_t *cu = userp;
    sock_t *sock = socketp;
    int events = 0;

    if (cu->closing) /* pc_curl_uv_close has closed every poll handle already */
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            curl_multi_assign(cu->multi, fd, NULL);
            sock_close(sock);
        }
        return 0;
    }
    if (sock == NULL) {
        sock = sock_new(cu, fd);
        if (sock == NULL)
            return -1; /* libcurl fails the transfers on this socket */
        curl_multi_assign(cu->multi, fd, sock);
    }
    if ((what & CURL_POLL_IN) != 0)
        events |= UV_READABLE;
    if ((what & CURL_POLL_OUT) != 0)
        events |= UV_WRITABLE;
    return uv_poll_start(&sock->poll, events, on_poll) == 0 ? 0 : -1;
}

/* libcurl's timer callback: only (re)arm our timer; calling libcurl from here is not allowed,
 * so even a zero timeout goes through the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    pc_curl_uv_t *cu = userp;

    if (cu->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
    xfer_t *xfer = userp;
    size_t len = size * n;

    if (len > xfer->resp_max - xfer->resp_len) {
        xfer->too_large = true;
        return 0; /* anything but len fails the transfer with CURLE_WRITE_ERROR */
    }
    if (xfer->resp_len + len + 1 > xfer->resp_cap) {
        size_t cap = xfer->resp_cap;
        while (cap < xfer->resp_len + len + 1)
            cap *= 2;
        char *grown = realloc(xfer->resp, cap);
        if (grown == NULL)
            return 0;
        xfer->resp = grown;
        xfer->resp_cap = cap;
    }
    memcpy(xfer->resp + xfer->resp_len, data, len);
    xfer->resp_len += len;
    xfer->resp[xfer->resp_len] = '\0';
    return len;
}

/* ---- building a transfer ----------------------------------------------------------------- */

static bool url_ok(const char *url)
{
    return url != NULL &&
           (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) &&
           strpbrk(url, " \r\n") == NULL;
}

static bool method_ok(const char *method)
{
    size_t len = strlen(method);
    return len > 0 && len <= METHOD_MAX && strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == len;
}

static CURLcode set_headers(xfer_t *xfer, const pc_curl_uv_request_t *req)
{
    /* An empty "Expect:" stops libcurl from waiting for "100 Continue" before larger bodies. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; list != NULL && i < req->header_count; i++) {
        struct curl_slist *more = curl_slist_append(list, req->headers[i]);
        if (more == NULL) {
            curl_slist_free_all(list);
            list = NULL;
        }
        list = more;
    }
    if (list == NULL)
        return CURLE_OUT_OF_MEMORY;
    xfer->headers = list;
    return curl_easy_setopt(xfer->easy, CURLOPT_HTTPHEADER, list);
}

static CURLcode set_method(CURL *easy, const pc_curl_uv_request_t *req)
{
    const char *method = req->method;
    bool has_body = req->body != NULL;
    CURLcode rc = CURLE_OK;

    if (method == NULL)
        method = has_body ? "POST" : "GET";
    if (strcmp(method, "GET") == 0 && !has_body)
        return curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0 && !has_body)
        return curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    if (has_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        /* COPYPOSTFIELDS copies now; the size must be set first */
        rc = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, has_body ? req->body : "");
    }
    if (rc == CURLE_OK && strcmp(method, "POST") != 0)
        rc = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    return rc;
}

static CURLcode set_tls(CURL *easy, const pc_curl_uv_tls_t *tls)
{
    CURLcode rc = CURLE_OK;

    if (tls == NULL)
        return CURLE_OK;
    if (tls->ca_bundle != NULL)
        rc = curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_bundle);
    if (rc == CURLE_OK && tls->client_cert != NULL) {
        rc = curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->client_cert);
    }
    if (rc == CURLE_OK && tls->client_key != NULL) {
        rc = curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->client_key);
    }
    return rc;
}

static CURLcode set_basics(xfer_t *xfer, const pc_curl_uv_request_t *req)
{
    CURL *easy = xfer->easy;
    CURLcode rc = curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)xfer);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_URL, req->url);
    if (rc == CURLE_OK) /* never signals: the worker has threads */
        rc = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, xfer->errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_WRITEDATA, (void *)xfer);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_USERAGENT, "pkcs-connector/" PC_VERSION);
    return rc;
}

static pc_err_t xfer_new(pc_curl_uv_t *cu, const pc_curl_uv_request_t *req, pc_curl_uv_done_fn done,
                         void *arg, xfer_t **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    xfer_t *xfer = calloc(1, sizeof(*xfer));

    *out = NULL;
    if (xfer == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory making an HTTP request to %s", req->url);
    xfer->cu = cu;
    xfer->done = done;
    xfer->arg = arg;
    xfer->resp_cap = RESPONSE_INITIAL;
    xfer->resp = malloc(xfer->resp_cap);
    xfer->easy = curl_easy_init();
    if (xfer->resp == NULL || xfer->easy == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory making an HTTP request to %s", req->url);
        goto out_free_xfer;
    }
    xfer->resp[0] = '\0';
    xfer->resp_max = req->max_response != 0 ? req->max_response : DEFAULT_MAX_RESPONSE;
    xfer->connect_ms =
        req->connect_timeout_ms != 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    xfer->started = uv_now(cu->loop);
    xfer->deadline = xfer->started + (req->total_timeout_ms != 0 ? req->total_timeout_ms
                                                                 : DEFAULT_TOTAL_TIMEOUT_MS);
    CURLcode rc = set_basics(xfer, req);
    if (rc == CURLE_OK)
        rc = set_headers(xfer, req);
    if (rc == CURLE_OK)
        rc = set_method(xfer->easy, req);
    if (rc == CURLE_OK)
        rc = set_tls(xfer->easy, req->tls);
    if (rc != CURLE_OK) {
        err = pc_fail(diag, rc == CURLE_OUT_OF_MEMORY ? PC_ERR_NOMEM : PC_ERR_INVALID_PARAM,
                      "cannot set up the HTTP request to %s: %s", req->url, curl_easy_strerror(rc));
        goto out_free_xfer;
    }
    *out = xfer;
    return PC_OK;
out_free_xfer:
    xfer_free(xfer);
    return err;
}

/* ---- public ------------------------------------------------------------------------------ */

pc_err_t pc_curl_uv_new(uv_loop_t *loop, unsigned max_concurrent, pc_curl_uv_t **out,
                        pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_curl_uv_t *cu = NULL;

    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return pc_fail(diag, PC_ERR_DEPENDENCY, "cannot initialise libcurl: %s",
                       curl_easy_strerror(global_rc));
    cu = calloc(1, sizeof(*cu));
    if (cu == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the HTTP client");
    cu->loop = loop;
    cu->max_concurrent = max_concurrent != 0 ? max_concurrent : DEFAULT_MAX_CONCURRENT;
    cu->multi = curl_multi_init();
    if (cu->multi == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the HTTP client");
        goto out_free_cu;
    }
    if (curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, (void *)cu) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, (void *)cu) != CURLM_OK) {
        err = pc_fail(diag, PC_ERR_DEPENDENCY,
                      "this libcurl cannot be driven by an event loop (multi socket API); "
                      "install libcurl 7.88 or later");
        goto out_cleanup_multi;
    }
    uv_timer_init(loop, &cu->timer);
    uv_timer_init(loop, &cu->queue_timer);
    cu->timer.data = cu;
    cu->queue_timer.data = cu;
    cu->handles = 2;
    *out = cu;
    return PC_OK;
out_cleanup_multi:
    curl_multi_cleanup(cu->multi);
out_free_cu:
    free(cu);
    return err;
}

pc_err_t pc_curl_uv_request(pc_curl_uv_t *cu, const pc_curl_uv_request_t *req,
                            pc_curl_uv_done_fn done, void *arg, pc_diag_t *diag)
{
    xfer_t *xfer = NULL;

    if (cu == NULL || req == NULL || done == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "HTTP request without client, request or "
                       "callback");
    if (cu->closing)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the HTTP client is closing; %s not requested",
                       req->url != NULL ? req->url : "(no URL)");
    if (!url_ok(req->url))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "\"%s\" is not an http:// or https:// URL; give e.g. https://host:8888",
                       req->url != NULL ? req->url : "");
    if (req->method != NULL && !method_ok(req->method))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "\"%s\" is not an HTTP method; use an upper-case token such as POST",
                       req->method);
    pc_err_t err = xfer_new(cu, req, done, arg, &xfer, diag);
    if (err != PC_OK)
        return err;
    if (cu->nactive >= cu->max_concurrent || cu->queue_head != NULL) {
        queue_push(cu, xfer);
        return PC_OK;
    }
    CURLcode code = xfer_start(cu, xfer);
    if (code != CURLE_OK) {
        err = pc_fail(diag, code == CURLE_OUT_OF_MEMORY ? PC_ERR_NOMEM : PC_ERR_INVALID_PARAM,
                      "cannot start the HTTP request to %s: %s", req->url,
                      xfer->errbuf[0] != '\0' ? xfer->errbuf : curl_easy_strerror(code));
        xfer_free(xfer);
    }
    return err;
}

size_t pc_curl_uv_active(const pc_curl_uv_t *cu)
{
    return cu->nactive;
}

size_t pc_curl_uv_queued(const pc_curl_uv_t *cu)
{
    return cu->nqueued;
}

static void fail_all(pc_curl_uv_t *cu)
{
    static const char msg[] = "the HTTP client was closed before the request completed";
    xfer_t *xfer;

    while ((xfer = queue_pop(cu)) != NULL) {
        snprintf(xfer->errbuf, sizeof(xfer->errbuf), "%s", msg);
        xfer_finish(xfer, CURLE_ABORTED_BY_CALLBACK);
    }
    while ((xfer = cu->active) != NULL) {
        curl_multi_remove_handle(cu->multi, xfer->easy);
        active_unlink(cu, xfer);
        snprintf(xfer->errbuf, sizeof(xfer->errbuf), "%s", msg);
        xfer_finish(xfer, CURLE_ABORTED_BY_CALLBACK);
    }
}

void pc_curl_uv_close(pc_curl_uv_t *cu, void (*closed)(void *arg), void *arg)
{
    if (cu == NULL || cu->closing)
        return;
    cu->closing = true;
    cu->closed = closed;
    cu->closed_arg = arg;
    /* Stop watching every socket before libcurl closes any of them: libuv must never poll a
     * closed (or reused) descriptor. */
    while (cu->socks != NULL)
        sock_close(cu->socks);
    uv_timer_stop(&cu->timer);
    uv_timer_stop(&cu->queue_timer);
    fail_all(cu);
    curl_multi_cleanup(cu->multi);
    cu->multi = NULL;
    uv_close((uv_handle_t *)&cu->timer, on_timer_closed);
    uv_close((uv_handle_t *)&cu->queue_timer, on_timer_closed);
}
