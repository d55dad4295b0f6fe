/*
 * http.c - the small HTTP/1.1 server behind /healthz, /readyz and /metrics: accept, read one
 * bounded request head (and, where the server allows, a bounded Content-Length body), ask the
 * handler, answer with Connection: close (at once, or later for a deferred request), then
 * linger until the client closes (so that unread request bytes never turn our answer into a
 * reset). Exists so that probes and Prometheus reach a worker without pulling in an HTTP
 * library. Loop thread only. Memory that owns uv handles is freed only in the last close
 * callback: a connection when its timer and socket are closed, the server when its listener
 * and every connection are gone. A deferred request's handle outlives its connection: closing
 * the connection only unlinks it, and the answer frees it.
 */
#include "http.h"

#include <limits.h>
#include <stdbool.h>
#include <strings.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numbers.h"

#define HEAD_MAX 8192        /* request line + headers + blank line */
#define IDLE_MS_DEFAULT 5000 /* to send the whole head, and again to close after our answer */
#define BACKLOG 128
#define METHOD_MAX 16
#define CONTENT_TYPE_MAX 128

typedef struct pc_http_conn conn_t;

struct pc_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    pc_http_handler_fn handler;
    void *arg;
    uint64_t idle_ms;
    size_t body_max; /* 0: bodies are not read */
    int port;
    unsigned open; /* listener + live connections; the last one to close frees http */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
    conn_t *conns;
};

struct pc_http_conn {
    pc_http_t *http;
    conn_t *prev, *next;
    uv_timer_t timer;
    uv_tcp_t tcp;
    bool tcp_open; /* tcp initialised, so it must be closed too */
    unsigned handles;
    bool closing;
    bool answered; /* past the head: further bytes are read and dropped */
    bool replied;  /* the answer is on its way */
    uv_write_t write_req;
    uv_write_t continue_req; /* "100 Continue", for a client that waits for it */
    uv_shutdown_t shutdown_req;
    char *out;
    size_t len;
    size_t body_max; /* the server's when the connection was accepted */
    /* The request once its head is in: method and path point into head. */
    char *method, *path;
    char content_type[CONTENT_TYPE_MAX];
    bool has_content_type;
    unsigned char *body; /* Content-Length bytes being read (reading_body), then the handler's */
    size_t body_len, body_want;
    bool reading_body;
    pc_http_deferred_t *deferred; /* the handler answers later */
    char head[HEAD_MAX];
};

/* A deferred request: conn is NULL once the connection closed before the answer. */
struct pc_http_deferred {
    conn_t *conn;
    bool head_only;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        break;
    }
    if (status < 300)
        return "Success";
    if (status < 400)
        return "Redirection";
    if (status < 500)
        return "Client Error";
    return "Server Error";
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void http_release(pc_http_t *http)
{
    if (--http->open > 0)
        return;
    void (*closed)(void *) = http->closed;
    void *arg = http->closed_arg;
    free(http);
    if (closed != NULL)
        closed(arg);
}

static void on_listener_closed(uv_handle_t *handle)
{
    http_release(handle->data);
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    conn_t *conn = handle->data;
    if (--conn->handles > 0)
        return;
    pc_http_t *http = conn->http;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        http->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    free(conn->out);
    free(conn->body);
    free(conn);
    http_release(http);
}

/* conn_close starts closing both handles; idempotent, the memory goes in the last callback. */
static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    if (conn->deferred != NULL) { /* its answer will find no connection */
        conn->deferred->conn = NULL;
        conn->deferred = NULL;
    }
    uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
    if (conn->tcp_open)
        uv_close((uv_handle_t *)&conn->tcp, on_conn_handle_closed);
}

/* conn_new returns a linked connection with both handles initialised, or NULL. */
static conn_t *conn_new(pc_http_t *http)
{
    conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        goto out;
    if (uv_timer_init(http->loop, &conn->timer) != 0)
        goto out_free_conn;
    conn->http = http;
    conn->body_max = http->body_max;
    conn->timer.data = conn;
    conn->handles = 1;
    conn->next = http->conns;
    if (http->conns != NULL)
        http->conns->prev = conn;
    http->conns = conn;
    http->open++;
    if (uv_tcp_init(http->loop, &conn->tcp) != 0) {
        conn_close(conn); /* frees conn in the timer's close callback */
        conn = NULL;
        goto out;
    }
    conn->tcp.data = conn;
    conn->tcp_open = true;
    conn->handles = 2;
    goto out;
out_free_conn:
    free(conn);
    conn = NULL;
out:
    return conn;
}

/* ---- answering --------------------------------------------------------------------------- */

static void on_timeout(uv_timer_t *timer)
{
    conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* On success, wait for the client's EOF (or the timer): closing now could reset the
     * connection while our answer is still unread. */
    if (status < 0)
        conn_close(req->data);
}

static void on_written(uv_write_t *req, int status)
{
    conn_t *conn = req->data;
    free(conn->out);
    conn->out = NULL;
    if (status < 0 || conn->closing)
        goto out_close;
    conn->shutdown_req.data = conn;
    if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
        goto out_close;
    return;
out_close:
    conn_close(conn);
}

/* conn_reply writes the status line, headers and (unless head_only) body, then lingers. */
static void conn_reply(conn_t *conn, int status, const char *content_type, const char *body,
                       size_t body_len, bool head_only)
{
    char hdr[512];
    conn->answered = true;
    conn->replied = true;
    if (status < 100 || status > 999)
        status = 500;
    if (content_type == NULL)
        content_type = "text/plain; charset=utf-8";
    if (body == NULL)
        body_len = 0;
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason(status), content_type, body_len);
    if (n < 0 || (size_t)n >= sizeof(hdr))
        goto out_close;
    size_t send_len = (size_t)n + (head_only ? 0 : body_len);
    conn->out = malloc(send_len);
    if (conn->out == NULL)
        goto out_close;
    memcpy(conn->out, hdr, (size_t)n);
    if (!head_only && body_len > 0)
        memcpy(conn->out + n, body, body_len);
    uv_buf_t buf = uv_buf_init(conn->out, (unsigned)send_len);
    conn->write_req.data = conn;
    if (uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &buf, 1, on_written) != 0)
        goto out_close;
    /* From here the timer bounds how long a client may take to read and close. */
    uv_timer_start(&conn->timer, on_timeout, conn->http->idle_ms, 0);
    return;
out_close:
    conn_close(conn);
}

static bool is_method_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* parse_request_line checks "METHOD SP /target SP HTTP/1.x" in line[0..len) and cuts it
 * in place into NUL-terminated method and path (query string and fragment dropped). */
static bool parse_request_line(char *line, size_t len, char **method, char **path)
{
    char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line || sp1 - line > METHOD_MAX)
        return false;
    for (char *p = line; p < sp1; p++)
        if (!is_method_char(*p))
            return false;
    char *target = sp1 + 1;
    char *end = line + len;
    char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (sp2 == NULL || sp2 == target || *target != '/')
        return false;
    for (char *p = target; p < sp2; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    char *version = sp2 + 1;
    if (end - version != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
        (version[7] != '0' && version[7] != '1'))
        return false;
    *sp1 = '\0';
    *sp2 = '\0';
    target[strcspn(target, "?#")] = '\0';
    *method = line;
    *path = target;
    return true;
}

/* conn_dispatch asks the handler once the request (head and body) is in, and replies unless
 * the handler deferred its answer. */
static void conn_dispatch(conn_t *conn)
{
    pc_http_request_t req = {.content_type = conn->has_content_type ? conn->content_type : NULL,
                             .body = conn->body,
                             .body_len = conn->body_len};
    pc_http_response_t resp = {.status = 200, .request = &req, .conn = conn};
    pc_http_t *http = conn->http;
    conn->answered = true;
    http->handler(http->arg, conn->method, conn->path, &resp);
    free(conn->body); /* the handler only borrowed it */
    conn->body = NULL;
    conn->body_len = 0;
    /* The handler may have closed the server, and with it this connection. */
    if (conn->closing) {
        free(resp.body);
        return;
    }
    if (conn->replied) { /* deferred, and answered inside the handler already */
        free(resp.body);
        return;
    }
    if (conn->deferred != NULL) {
        free(resp.body);
        /* From here the timer bounds the wait for the answer. */
        uv_timer_start(&conn->timer, on_timeout, http->idle_ms, 0);
        return;
    }
    conn_reply(conn, resp.status, resp.content_type, resp.body, resp.body_len,
               strcmp(conn->method, "HEAD") == 0);
    free(resp.body);
}

/* header_value copies the value of header name (case-insensitive, surrounding blanks cut) from
 * the header lines in head[from..end) into out; false when it is absent or does not fit. */
static bool header_value(const char *head, size_t from, size_t end, const char *name, char *out,
                         size_t size)
{
    size_t name_len = strlen(name);
    for (size_t at = from; at < end;) {
        const char *line = head + at;
        const char *nl = memchr(line, '\n', end - at);
        size_t len = nl != NULL ? (size_t)(nl - line) : end - at;
        at += len + 1;
        if (len <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
            continue;
        const char *v = line + name_len + 1, *v_end = line + len;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        if ((size_t)(v_end - v) >= size)
            return false;
        memcpy(out, v, (size_t)(v_end - v));
        out[v_end - v] = '\0';
        return true;
    }
    return false;
}

static void on_continue_written(uv_write_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

/* conn_expect_body prepares to read the Content-Length body that follows the head (the first
 * bytes may already be in head after head_end); false when it replied instead. */
static bool conn_expect_body(conn_t *conn, size_t head_start, size_t head_end)
{
    static char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char text[32];
    long want = 0;
    if (header_value(conn->head, head_start, head_end, "Transfer-Encoding", text, sizeof(text))) {
        conn_reply(conn, 411, NULL, "send the body with Content-Length\n", 34, false);
        return false;
    }
    if (!header_value(conn->head, head_start, head_end, "Content-Length", text, sizeof(text)))
        return true;
    if (!pc_parse_long(text, 0, LONG_MAX, &want)) {
        conn_reply(conn, 400, NULL, "bad request\n", 12, false);
        return false;
    }
    if ((unsigned long)want > conn->body_max) {
        conn_reply(conn, 413, NULL, "request body too large\n", 23, false);
        return false;
    }
    if (want == 0)
        return true;
    conn->body = malloc((size_t)want);
    if (conn->body == NULL) {
        conn_reply(conn, 503, NULL, "out of memory\n", 14, false);
        return false;
    }
    conn->body_want = (size_t)want;
    conn->body_len =
        conn->len - head_end < conn->body_want ? conn->len - head_end : conn->body_want;
    memcpy(conn->body, conn->head + head_end, conn->body_len);
    conn->reading_body = conn->body_len < conn->body_want;
    if (conn->reading_body &&
        header_value(conn->head, head_start, head_end, "Expect", text, sizeof(text)) &&
        strcasecmp(text, "100-continue") == 0) {
        uv_buf_t buf = uv_buf_init(continue_line, sizeof(continue_line) - 1);
        conn->continue_req.data = conn;
        if (uv_write(&conn->continue_req, (uv_stream_t *)&conn->tcp, &buf, 1,
                     on_continue_written) != 0) {
            conn_close(conn);
            return false;
        }
    }
    return true;
}

/* conn_head_done runs once the whole head (head_end bytes) is in: parse it, then read the body
 * or ask the handler. */
static void conn_head_done(conn_t *conn, size_t head_end)
{
    size_t line_len = (size_t)((char *)memchr(conn->head, '\n', conn->len) - conn->head);
    size_t headers_at = line_len + 1;
    if (line_len > 0 && conn->head[line_len - 1] == '\r')
        line_len--;
    conn->has_content_type = header_value(conn->head, headers_at, head_end, "Content-Type",
                                          conn->content_type, sizeof(conn->content_type));
    if (!parse_request_line(conn->head, line_len, &conn->method, &conn->path)) {
        conn_reply(conn, 400, NULL, "bad request\n", 12, false);
        return;
    }
    if (conn->body_max > 0 && !conn_expect_body(conn, headers_at, head_end))
        return;
    if (!conn->reading_body)
        conn_dispatch(conn);
}

/* find_head_end finds the blank line ending the head, starting a little before the bytes just
 * received so that a terminator split across reads is found: the offset just after it, or 0. */
static size_t find_head_end(const char *head, size_t from, size_t len)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (head[i] != '\n')
            continue;
        if (head[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && head[i + 1] == '\r' && head[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *conn = handle->data;
    if (conn->reading_body)
        *buf = uv_buf_init((char *)conn->body + conn->body_len,
                           (unsigned)(conn->body_want - conn->body_len));
    else if (conn->answered) /* the head is spent: reuse it to drop what the client still sends */
        *buf = uv_buf_init(conn->head, sizeof(conn->head));
    else
        *buf = uv_buf_init(conn->head + conn->len, (unsigned)(sizeof(conn->head) - conn->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *conn = stream->data;
    if (nread < 0) {
        conn_close(conn); /* EOF or error: nothing more to say */
        return;
    }
    if (nread == 0 || conn->answered || conn->closing)
        return;
    if (conn->reading_body) {
        conn->body_len += (size_t)nread;
        conn->reading_body = conn->body_len < conn->body_want;
        if (!conn->reading_body)
            conn_dispatch(conn);
        return;
    }
    size_t from = conn->len > 3 ? conn->len - 3 : 0;
    conn->len += (size_t)nread;
    size_t end = find_head_end(conn->head, from, conn->len);
    if (end > 0)
        conn_head_done(conn, end);
    else if (conn->len == sizeof(conn->head))
        conn_reply(conn, 431, NULL, "request head too large\n", 23, false);
}

static void on_connection(uv_stream_t *server, int status)
{
    pc_http_t *http = server->data;
    if (status < 0 || http->closing)
        return;
    /* Out of memory leaves the connection in the backlog; the next one retries. */
    conn_t *conn = conn_new(http);
    if (conn == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0 ||
        uv_timer_start(&conn->timer, on_timeout, http->idle_ms, 0) != 0 ||
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0)
        conn_close(conn);
}

/* ---- public ------------------------------------------------------------------------------ */

static pc_err_t parse_address(const char *host, int port, struct sockaddr_storage *addr,
                              pc_diag_t *diag)
{
    if (port < 0 || port > 65535)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "HTTP port %d is out of range; use 1..65535, or 0 for any free port", port);
    if (host == NULL || host[0] == '\0')
        host = "0.0.0.0";
    else if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1"; /* no resolver on the loop thread */
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0)
        return PC_OK;
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "HTTP listen address \"%s\" is not a numeric IP address; use e.g. 0.0.0.0, "
                   "127.0.0.1 or ::",
                   host);
}

static int local_port(const uv_tcp_t *tcp)
{
    struct sockaddr_storage addr;
    int len = (int)sizeof(addr);
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* pc_http_new: on failure after the listener was created, it is closed and freed on the
 * loop's next turn, so the caller still runs the loop before uv_loop_close(). */
pc_err_t pc_http_new(uv_loop_t *loop, const char *host, int port, pc_http_handler_fn handler,
                     void *arg, pc_http_t **out, pc_diag_t *diag)
{
    struct sockaddr_storage addr;
    pc_err_t err = PC_OK;
    *out = NULL;
    if (handler == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "HTTP server needs a request handler");
    err = parse_address(host, port, &addr, diag);
    if (err != PC_OK)
        return err;
    pc_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory starting the HTTP server");
    http->loop = loop;
    http->handler = handler;
    http->arg = arg;
    http->idle_ms = IDLE_MS_DEFAULT;
    int rc = uv_tcp_init(loop, &http->listener);
    if (rc != 0) {
        err = pc_fail(diag, PC_ERR_IO, "cannot create the HTTP socket: %s", uv_strerror(rc));
        goto out_free_http;
    }
    http->listener.data = http;
    http->open = 1;
    rc = uv_tcp_bind(&http->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&http->listener, BACKLOG, on_connection);
    if (rc != 0) {
        err = pc_fail(diag, PC_ERR_IO,
                      "cannot listen for HTTP on %s:%d: %s; choose another address or port",
                      host != NULL ? host : "", port, uv_strerror(rc));
        goto out_close_listener;
    }
    http->port = local_port(&http->listener);
    *out = http;
    goto out;
out_close_listener:
    http->closing = true;
    uv_close((uv_handle_t *)&http->listener, on_listener_closed);
    goto out;
out_free_http:
    free(http);
out:
    return err;
}

int pc_http_port(const pc_http_t *http)
{
    return http->port;
}

void pc_http_set_idle_timeout(pc_http_t *http, uint64_t ms)
{
    http->idle_ms = ms > 0 ? ms : IDLE_MS_DEFAULT;
}

void pc_http_set_body_max(pc_http_t *http, size_t max)
{
    http->body_max = max;
}

pc_http_deferred_t *pc_http_defer(pc_http_response_t *resp)
{
    conn_t *conn = resp->conn;
    if (conn == NULL || conn->closing || conn->deferred != NULL)
        return NULL;
    pc_http_deferred_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->conn = conn;
    d->head_only = strcmp(conn->method, "HEAD") == 0;
    conn->deferred = d;
    return d;
}

void pc_http_deferred_answer(pc_http_deferred_t *d, pc_http_response_t *resp)
{
    conn_t *conn = d->conn;
    if (conn != NULL) {
        conn->deferred = NULL;
        conn_reply(conn, resp->status, resp->content_type, resp->body, resp->body_len,
                   d->head_only);
    }
    free(resp->body);
    resp->body = NULL;
    free(d);
}

void pc_http_close(pc_http_t *http, void (*closed)(void *arg), void *arg)
{
    if (http == NULL || http->closing)
        return;
    http->closing = true;
    http->closed = closed;
    http->closed_arg = arg;
    for (conn_t *conn = http->conns; conn != NULL; conn = conn->next)
        conn_close(conn);
    uv_close((uv_handle_t *)&http->listener, on_listener_closed);
}

void pc_http_respond_text(pc_http_response_t *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = strdup(text);
    resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
}
