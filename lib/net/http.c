/*
 * http.c - the small HTTP/1.1 server behind /healthz, /readyz and /metrics: accept, read one
 * bounded request head, ask the handler, answer with Connection: close, then linger until the
 * client closes (so that unread request bytes never turn our answer into a reset).
 * Exists so that probes and Prometheus reach a worker without pulling in an HTTP library.
 * A handler that needs Redis defers its answer (pc_http_defer): the connection then waits, under
 * its usual time limit, for pc_http_answer; the handle outlives the connection, so an answer
 * that comes after the client left is dropped, never written to freed memory.
 * Loop thread only. Memory that owns uv handles is freed only in the last close callback:
 * a connection when its timer and socket are closed, the server when its listener and every
 * connection are gone.
 */
#include "http.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 8192        /* request line + headers + blank line */
#define IDLE_MS_DEFAULT 5000 /* to send the whole head, and again to close after our answer */
#define BACKLOG 128
#define METHOD_MAX 16

typedef struct conn conn_t;

struct pc_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    pc_http_handler_fn handler;
    void *arg;
    uint64_t idle_ms;
    int port;
    unsigned open; /* listener + live connections; the last one to close frees http */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
    conn_t *conns;
    conn_t *current;   /* the connection whose handler is running, else NULL */
    const char *query; /* its query string, during the handler */
};

struct pc_http_later {
    conn_t *conn; /* NULL once the connection is gone */
};

struct conn {
    pc_http_t *http;
    conn_t *prev, *next;
    uv_timer_t timer;
    uv_tcp_t tcp;
    bool tcp_open; /* tcp initialised, so it must be closed too */
    unsigned handles;
    bool closing;
    bool answered; /* past the head: further bytes are read and dropped */
    bool head_only;
    pc_http_later_t *later; /* a deferred answer still owed, else NULL */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    char *out;
    size_t len;
    char head[HEAD_MAX];
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
    if (conn->later != NULL)
        conn->later->conn = NULL; /* its answer goes nowhere now */
    free(conn->out);
    free(conn);
    http_release(http);
}

/* conn_close starts closing both handles; idempotent, the memory goes in the last callback. */
static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
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
 * in place into NUL-terminated method, path and query ("" when none; the fragment dropped). */
static bool parse_request_line(char *line, size_t len, char **method, char **path, char **query)
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
    char *cut = target + strcspn(target, "?#");
    *query = sp2; /* the empty string its NUL made */
    if (*cut == '?') {
        *query = cut + 1;
        (*query)[strcspn(*query, "#")] = '\0';
    }
    *cut = '\0';
    *method = line;
    *path = target;
    return true;
}

/* conn_answer runs once the whole head is in: parse, ask the handler, reply. */
static void conn_answer(conn_t *conn)
{
    char *method = NULL, *path = NULL, *query = NULL;
    size_t line_len = (size_t)((char *)memchr(conn->head, '\n', conn->len) - conn->head);
    if (line_len > 0 && conn->head[line_len - 1] == '\r')
        line_len--;
    if (!parse_request_line(conn->head, line_len, &method, &path, &query)) {
        conn_reply(conn, 400, NULL, "bad request\n", 12, false);
        return;
    }
    pc_http_response_t resp = {.status = 200};
    pc_http_t *http = conn->http;
    conn->head_only = strcmp(method, "HEAD") == 0;
    http->current = conn;
    http->query = query;
    http->handler(http->arg, method, path, &resp);
    /* http is still there: a handler that closes the server only starts closing it. */
    http->current = NULL;
    http->query = NULL;
    /* The handler may have closed the server, and with it this connection. */
    if (conn->later != NULL)
        conn->answered = true; /* pc_http_answer replies */
    else if (!conn->closing)
        conn_reply(conn, resp.status, resp.content_type, resp.body, resp.body_len, conn->head_only);
    free(resp.body);
}

/* head_complete looks for the blank line ending the head, starting a little before the bytes
 * just received so that a terminator split across reads is found. */
static bool head_complete(const char *head, size_t from, size_t len)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (head[i] != '\n')
            continue;
        if (head[i + 1] == '\n' || (i + 2 < len && head[i + 1] == '\r' && head[i + 2] == '\n'))
            return true;
    }
    return false;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *conn = handle->data;
    if (conn->answered) /* the head is spent: reuse it to drop what the client still sends */
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
    size_t from = conn->len > 3 ? conn->len - 3 : 0;
    conn->len += (size_t)nread;
    if (head_complete(conn->head, from, conn->len))
        conn_answer(conn);
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

const char *pc_http_query(const pc_http_t *http)
{
    return http->current != NULL ? http->query : NULL;
}

pc_http_later_t *pc_http_defer(pc_http_t *http)
{
    conn_t *conn = http->current;
    if (conn == NULL || conn->later != NULL)
        return NULL;
    pc_http_later_t *later = calloc(1, sizeof(*later));
    if (later == NULL)
        return NULL;
    later->conn = conn;
    conn->later = later;
    return later;
}

void pc_http_answer(pc_http_later_t *later, pc_http_response_t *resp)
{
    conn_t *conn = later->conn;
    if (conn != NULL) {
        conn->later = NULL;
        if (!conn->closing)
            conn_reply(conn, resp->status, resp->content_type, resp->body, resp->body_len,
                       conn->head_only);
    }
    free(resp->body);
    resp->body = NULL;
    free(later);
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
