/*
 * http.c - the small HTTP/1.1 server behind /healthz, /readyz and /metrics, the coordinator's
 * API and its OCSP responder: accept, read one bounded request head (and, where the server
 * allows, a bounded Content-Length body), ask the handler, answer with Connection: close, then
 * linger until the client closes (so that unread request bytes never turn our answer into a
 * reset). Exists so that probes and Prometheus reach a worker without pulling in an HTTP
 * library. What a client can hold is bounded: one head of HEAD_MAX bytes with at most
 * HEADERS_MAX headers and a body of body_max bytes, idle_ms to send them (from the connection,
 * not renewed by each byte) and again to read the answer, and max_conns connections at once;
 * one more is refused at once with a 503. A handler that needs Redis or the thread pool defers
 * its answer (pc_http_defer): the connection then waits, idle_ms again, for pc_http_answer; the
 * handle outlives the connection, so an answer that comes after the client left is dropped,
 * never written to freed memory.
 * Loop thread only. Memory that owns uv handles is freed only in the last close callback:
 * a connection when its timer and socket are closed, the server when its listener and every
 * connection are gone.
 */
#include "http.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "file.h"
#include "numbers.h"

#define HEAD_MAX PC_HTTP_HEAD_MAX
#define HEADERS_MAX PC_HTTP_HEADERS_MAX
#define IDLE_MS_DEFAULT 5000 /* to send the whole head, and again to close after our answer */
#define BACKLOG 128
#define METHOD_MAX 16
#define TOKEN_FILE_MAX 4096

typedef struct conn conn_t;

struct pc_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    pc_http_handler_fn handler;
    void *arg;
    uint64_t idle_ms;
    size_t body_max; /* 0: bodies are not read */
    int port;
    unsigned open;      /* listener + connections + refusals; the last one to close frees http */
    unsigned live;      /* connections being served (refusals not counted) */
    unsigned max_conns; /* live connections allowed at once */
    unsigned long refused;
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
    bool answered; /* past the request: further bytes are read and dropped */
    bool replied;  /* the answer is on its way */
    bool head_only;
    pc_http_later_t *later; /* a deferred answer still owed, else NULL */
    uv_write_t write_req;
    uv_write_t continue_req; /* "100 Continue", for a client that waits for it */
    uv_shutdown_t shutdown_req;
    char *out;
    size_t len;
    size_t body_max;        /* the server's when the connection was accepted */
    pc_http_head_t request; /* once its head is in (pc_http_parse_head): points into head */
    unsigned char *body;    /* body_want bytes, body_len of them in so far */
    size_t body_len, body_want;
    bool reading_body;
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
    case 401:
        return "Unauthorized";
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
    if (conn->later != NULL)
        conn->later->conn = NULL; /* its answer goes nowhere now */
    free(conn->out);
    free(conn->body);
    free(conn);
    http->live--;
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
    conn->body_max = http->body_max;
    conn->timer.data = conn;
    conn->handles = 1;
    conn->next = http->conns;
    if (http->conns != NULL)
        http->conns->prev = conn;
    http->conns = conn;
    http->open++;
    http->live++;
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
                       size_t body_len, const char *authenticate, bool head_only)
{
    char hdr[768], auth[320] = "";
    conn->answered = true;
    conn->replied = true;
    if (status < 100 || status > 999)
        status = 500;
    if (content_type == NULL)
        content_type = "text/plain; charset=utf-8";
    if (body == NULL)
        body_len = 0;
    if (authenticate != NULL)
        snprintf(auth, sizeof(auth), "WWW-Authenticate: %s\r\n", authenticate);
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, reason(status), content_type, body_len, auth);
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

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2: the characters of a token, which a header name is made of. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field_ok tells whether a header line's name s[0..colon) is a token and its value
 * (colon, end) holds no control character but tabs (RFC 9110 5.5). A NUL byte would end the
 * string a handler sees early ("Authorization\0x" read as Authorization, a value cut short),
 * and a lone CR is a line break to some readers: neither may pass. */
static bool field_ok(const char *s, const char *colon, const char *end)
{
    for (const char *c = s; c < colon; c++)
        if (!is_tchar(*c))
            return false;
    for (const char *c = colon + 1; c < end; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return false;
    return true;
}

/* parse_headers cuts the header lines in p[0..end) (after the request line, up to and with the
 * blank line) into NUL-terminated names and trimmed values. Returns 0, or the status to answer:
 * 400 for a line without a name and colon, a name that is not a token (white space before the
 * colon or an obsolete folded line among them, RFC 9112 5.1, 5.2), a control character in a
 * value; 431 for more than HEADERS_MAX headers. */
static int parse_headers(char *p, char *end, pc_http_head_t *h)
{
    h->header_count = 0;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return 400;
        char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (line_end == p)
            return 0; /* the blank line: the head ends here */
        char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon == NULL || colon == p || !field_ok(p, colon, line_end))
            return 400;
        if (h->header_count == HEADERS_MAX)
            return 431;
        char *value = colon + 1, *value_end = line_end;
        while (value < value_end && is_blank(*value))
            value++;
        while (value_end > value && is_blank(value_end[-1]))
            value_end--;
        *colon = '\0';
        *value_end = '\0';
        h->header_names[h->header_count] = p;
        h->header_values[h->header_count++] = value;
        p = eol + 1;
    }
    return 400;
}

int pc_http_parse_head(char *head, size_t len, pc_http_head_t *out)
{
    char *nl = memchr(head, '\n', len);
    out->method = out->path = out->query = NULL;
    out->header_count = 0;
    if (nl == NULL)
        return 400;
    size_t line_len = (size_t)(nl - head);
    if (line_len > 0 && head[line_len - 1] == '\r')
        line_len--;
    if (!parse_request_line(head, line_len, &out->method, &out->path, &out->query))
        return 400;
    return parse_headers(nl + 1, head + len, out);
}

static void reply_text(conn_t *conn, int status, const char *text)
{
    conn_reply(conn, status, NULL, text, strlen(text), NULL, false);
}

/* conn_dispatch asks the handler once the request (head and body) is in, and replies unless
 * the handler deferred its answer. */
static void conn_dispatch(conn_t *conn)
{
    const pc_http_head_t *h = &conn->request;
    pc_http_request_t req = {.method = h->method,
                             .path = h->path,
                             .query = h->query,
                             .header_count = h->header_count,
                             .header_names = h->header_names,
                             .header_values = h->header_values,
                             .body = conn->body,
                             .body_len = conn->body_len};
    pc_http_response_t resp = {.status = 200};
    pc_http_t *http = conn->http;
    req.content_type = pc_http_request_header(&req, "Content-Type");
    conn->answered = true;
    conn->head_only = strcmp(h->method, "HEAD") == 0;
    http->current = conn;
    http->query = h->query;
    http->handler(http->arg, &req, &resp);
    /* http is still there: a handler that closes the server only starts closing it. */
    http->current = NULL;
    http->query = NULL;
    free(conn->body); /* the handler only borrowed it */
    conn->body = NULL;
    conn->body_len = 0;
    /* The handler may have closed the server, and with it this connection, or deferred its
     * answer (and maybe given it already). */
    if (conn->later != NULL && !conn->closing)
        uv_timer_start(&conn->timer, on_timeout, http->idle_ms, 0); /* bounds the wait */
    else if (conn->later == NULL && !conn->replied && !conn->closing)
        conn_reply(conn, resp.status, resp.content_type, resp.body, resp.body_len,
                   resp.authenticate, conn->head_only);
    free(resp.body);
}

/* header_count counts the headers called name (any case). */
static size_t header_count(const pc_http_head_t *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->header_count; i++)
        n += strcasecmp(h->header_names[i], name) == 0;
    return n;
}

static void on_continue_written(uv_write_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

/* conn_expect_body prepares to read the Content-Length body that follows the head (its first
 * bytes may already be in head after head_end); false when it replied instead. A repeated
 * Content-Length, or one next to Transfer-Encoding, is refused: two readings of where the body
 * ends are how requests are smuggled past a proxy. */
static bool conn_expect_body(conn_t *conn, size_t head_end)
{
    static char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const pc_http_head_t *h = &conn->request;
    const char *text = NULL, *expect = NULL;
    long want = 0;
    if (header_count(h, "Transfer-Encoding") > 0) {
        reply_text(conn, 411, "send the body with Content-Length\n");
        return false;
    }
    size_t lengths = header_count(h, "Content-Length");
    if (lengths == 0)
        return true;
    for (size_t i = 0; i < h->header_count && text == NULL; i++)
        if (strcasecmp(h->header_names[i], "Content-Length") == 0)
            text = h->header_values[i];
    if (lengths > 1 || !pc_parse_long(text, 0, LONG_MAX, &want)) {
        reply_text(conn, 400, "bad request\n");
        return false;
    }
    if ((unsigned long)want > conn->body_max) {
        reply_text(conn, 413, "request body too large\n");
        return false;
    }
    if (want == 0)
        return true;
    conn->body = malloc((size_t)want);
    if (conn->body == NULL) {
        reply_text(conn, 503, "out of memory\n");
        return false;
    }
    conn->body_want = (size_t)want;
    conn->body_len =
        conn->len - head_end < conn->body_want ? conn->len - head_end : conn->body_want;
    memcpy(conn->body, conn->head + head_end, conn->body_len);
    conn->reading_body = conn->body_len < conn->body_want;
    for (size_t i = 0; i < h->header_count && expect == NULL; i++)
        if (strcasecmp(h->header_names[i], "Expect") == 0)
            expect = h->header_values[i];
    if (conn->reading_body && expect != NULL && strcasecmp(expect, "100-continue") == 0) {
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
    pc_http_head_t *h = &conn->request;
    int bad = pc_http_parse_head(conn->head, head_end, h);
    if (bad != 0) {
        reply_text(conn, bad, bad == 431 ? "too many request headers\n" : "bad request\n");
        return;
    }
    if (conn->body_max > 0 && !conn_expect_body(conn, head_end))
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

bool pc_http_head_complete(const char *head, size_t from, size_t len)
{
    return find_head_end(head, from, len) != 0;
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
        reply_text(conn, 431, "request head too large\n");
}

/* A connection over the limit: accepted only to be told so and closed. */
typedef struct refusal {
    uv_tcp_t tcp;
    pc_http_t *http;
} refusal_t;

static void on_refusal_closed(uv_handle_t *handle)
{
    refusal_t *r = handle->data;
    pc_http_t *http = r->http;
    free(r);
    http_release(http);
}

/* refuse accepts the connection, drops what the client already sent (so that closing does not
 * reset the connection before it reads the answer), writes a 503 if the socket takes it at once,
 * and closes: nothing of it outlives this turn of the loop but the close. */
static void refuse(pc_http_t *http, uv_stream_t *server)
{
    static char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: 21\r\nRetry-After: 1\r\n"
                           "Connection: close\r\n\r\ntoo many connections\n";
    char drop[1024];
    uv_os_fd_t fd;
    refusal_t *r = calloc(1, sizeof(*r));
    if (r == NULL || uv_tcp_init(http->loop, &r->tcp) != 0) {
        free(r);
        return;
    }
    r->tcp.data = r;
    r->http = http;
    http->open++;
    if (uv_accept(server, (uv_stream_t *)&r->tcp) == 0) {
        if (uv_fileno((uv_handle_t *)&r->tcp, &fd) == 0)
            for (int i = 0; i < 8 && recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; i++)
                ;
        uv_buf_t buf = uv_buf_init(answer, sizeof(answer) - 1);
        (void)uv_try_write((uv_stream_t *)&r->tcp, &buf, 1);
        http->refused++;
    }
    uv_close((uv_handle_t *)&r->tcp, on_refusal_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    pc_http_t *http = server->data;
    if (status < 0 || http->closing)
        return;
    if (http->live >= http->max_conns) {
        refuse(http, server);
        return;
    }
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
    http->max_conns = PC_HTTP_MAX_CONNECTIONS_DEFAULT;
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

void pc_http_set_max_connections(pc_http_t *http, unsigned max)
{
    http->max_conns = max > 0 ? max : PC_HTTP_MAX_CONNECTIONS_DEFAULT;
}

unsigned long pc_http_refused(const pc_http_t *http)
{
    return http->refused;
}

const char *pc_http_query(const pc_http_t *http)
{
    return http->current != NULL ? http->query : NULL;
}

pc_http_later_t *pc_http_defer(pc_http_t *http)
{
    conn_t *conn = http->current;
    if (conn == NULL || conn->later != NULL || conn->replied)
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
                       resp->authenticate, conn->head_only);
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

const char *pc_http_request_header(const pc_http_request_t *req, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i < req->header_count; i++) {
        if (strcasecmp(req->header_names[i], name) != 0)
            continue;
        if (found != NULL)
            return NULL;
        found = req->header_values[i];
    }
    return found;
}

static bool token_digest(const char *text, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    return EVP_Digest(text, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

pc_err_t pc_http_token_load(const char *path, pc_http_token_t *token, pc_diag_t *diag)
{
    unsigned char *text = NULL;
    size_t len = 0, visible = 0;
    pc_err_t err = pc_file_read_secret(path, TOKEN_FILE_MAX, &text, &len, diag);
    if (err != PC_OK)
        return err;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    while (visible < len && text[visible] > ' ' && text[visible] < 0x7f)
        visible++;
    if (visible != len || len < PC_HTTP_TOKEN_MIN)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "the token in %s must be one line of at least %d visible ASCII characters, "
                      "without spaces; make one with 'openssl rand -hex 32 > %s'",
                      path, PC_HTTP_TOKEN_MIN, path);
    else if (!token_digest((const char *)text, len, token->sha256))
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot hash the token in %s", path);
    OPENSSL_clear_free(text, len);
    return err;
}

bool pc_http_bearer_ok(const pc_http_request_t *req, const pc_http_token_t *token)
{
    unsigned char got[32];
    const char *auth = pc_http_request_header(req, "Authorization");
    bool ok;
    if (auth == NULL || strncasecmp(auth, "Bearer", 6) != 0 || !is_blank(auth[6]))
        return false;
    auth += 7;
    while (is_blank(*auth))
        auth++;
    /* digests of equal length, compared in constant time: no early exit tells how much of a
     * guess was right, nor how long the token is */
    ok = *auth != '\0' && token_digest(auth, strlen(auth), got) &&
         CRYPTO_memcmp(got, token->sha256, sizeof(got)) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
