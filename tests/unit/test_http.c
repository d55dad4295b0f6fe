/*
 * test_http.c - the HTTP server as a client sees it: real sockets from a client thread while
 * the test thread runs the loop; status lines, Content-Length, HEAD, bad and oversize heads,
 * idle clients, query strings, request bodies within their bound, answers given later (from a
 * timer, from the thread pool, inside the handler, after the client left, after the server
 * closed), and a clean loop after close. The client thread only records what it saw;
 * assertions run on the test thread after it is joined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define REPLY_MAX 4096
#define REPLIES 64

typedef struct fixture fixture_t;

struct fixture {
    uv_loop_t loop;
    uv_async_t done;
    pc_http_t *http;
    int port;
    bool closed;
    bool signalled;
    unsigned handled;       /* handler calls, loop thread */
    uv_timer_t later_timer; /* answers a deferred request */
    pc_http_later_t *later;
    uint64_t later_ms;
    char later_query[256];
    bool answered_late; /* pc_http_answer ran */
    size_t body_max;    /* given to pc_http_set_body_max when not 0 */
    uv_work_t pool;     /* answers a deferred request from the pool's after-work callback */
    pc_http_later_t *pooled;
    char pooled_text[128]; /* that answer: "later", and the request's body copied */
    void (*client)(fixture_t *fx);
    /* filled by the client thread, read after join */
    char reply[REPLIES][REPLY_MAX];
    int reply_len[REPLIES];
    long elapsed_ms[REPLIES];
};

/* ---- server side (loop thread) ----------------------------------------------------------- */

static void on_later_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void on_later_timer(uv_timer_t *timer)
{
    fixture_t *fx = timer->data;
    char body[300];
    snprintf(body, sizeof(body), "later %s", fx->later_query);
    pc_http_response_t resp = {.status = 202, .body = strdup(body), .body_len = strlen(body)};
    pc_http_answer(fx->later, &resp);
    fx->later = NULL;
    fx->answered_late = true;
    uv_close((uv_handle_t *)timer, on_later_closed);
}

static void answer_pooled(fixture_t *fx, const char *text)
{
    pc_http_response_t resp = {.status = 202, .body = strdup(text), .body_len = strlen(text)};
    pc_http_answer(fx->pooled, &resp);
    fx->pooled = NULL;
}

static void on_pool_work(uv_work_t *work)
{
    (void)work;
}

static void on_pool_done(uv_work_t *work, int status)
{
    fixture_t *fx = work->data;
    (void)status;
    answer_pooled(fx, fx->pooled_text);
}

static void on_closed(void *arg);

/* The server was closed while a request waited for its answer: answering goes nowhere. */
static void on_closed_then_answer(void *arg)
{
    fixture_t *fx = arg;
    answer_pooled(fx, "too late");
    on_closed(fx);
}

/* The handler's routes that need more than a path: /echo shows the request's type and body,
 * /pool answers from the thread pool with the body it copied, /now defers and answers before
 * it returns, /hold closes the server before it answers. */
static bool handle_more(fixture_t *fx, const pc_http_request_t *req, pc_http_response_t *resp)
{
    char text[256];
    if (strcmp(req->path, "/echo") == 0) {
        snprintf(text, sizeof(text), "type=%s body=%.*s",
                 req->content_type != NULL ? req->content_type : "(none)", (int)req->body_len,
                 req->body != NULL ? (const char *)req->body : "");
        resp->body = strdup(text);
        resp->body_len = strlen(text);
        return true;
    }
    if (strcmp(req->path, "/pool") == 0) {
        /* the body is the handler's only during the call: the answer keeps a copy */
        snprintf(fx->pooled_text, sizeof(fx->pooled_text), "later%s%.*s",
                 req->body_len > 0 ? " " : "", (int)req->body_len,
                 req->body != NULL ? (const char *)req->body : "");
        fx->pooled = pc_http_defer(fx->http);
        assert_non_null(fx->pooled);
        assert_null(pc_http_defer(fx->http)); /* once */
        fx->pool.data = fx;
        assert_int_equal(uv_queue_work(&fx->loop, &fx->pool, on_pool_work, on_pool_done), 0);
        return true;
    }
    if (strcmp(req->path, "/now") == 0) {
        fx->pooled = pc_http_defer(fx->http);
        assert_non_null(fx->pooled);
        answer_pooled(fx, "now");
        assert_null(pc_http_defer(fx->http)); /* answered: nothing more to defer */
        resp->status = 500;                   /* ignored: the answer was given */
        return true;
    }
    if (strcmp(req->path, "/hold") == 0) {
        fx->pooled = pc_http_defer(fx->http);
        assert_non_null(fx->pooled);
        pc_http_t *http = fx->http;
        fx->http = NULL; /* the client's end finds it closed */
        pc_http_close(http, on_closed_then_answer, fx);
        return true;
    }
    return false;
}

static void handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp)
{
    fixture_t *fx = arg;
    const char *path = req->path;
    fx->handled++;
    const char *body = "not found\n";
    if (handle_more(fx, req, resp))
        return;
    if (strcmp(path, "/query") == 0) {
        body = pc_http_query(fx->http);
    } else if (strcmp(path, "/later") == 0) {
        /* answered from a timer, as a Redis reply would be; resp must be ignored */
        snprintf(fx->later_query, sizeof(fx->later_query), "%s", pc_http_query(fx->http));
        fx->later = pc_http_defer(fx->http);
        assert_non_null(fx->later);
        assert_null(pc_http_defer(fx->http)); /* one answer per request */
        uv_timer_init(&fx->loop, &fx->later_timer);
        fx->later_timer.data = fx;
        uv_timer_start(&fx->later_timer, on_later_timer, fx->later_ms, 0);
        resp->status = 500;
        body = "not this";
    } else if (strcmp(path, "/healthz") == 0) {
        body = "ok";
    } else if (strcmp(path, "/readyz") == 0) {
        resp->status = 503;
        body = "not ready";
    } else if (strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4";
        body = "x 1\n";
    } else {
        resp->status = 404;
    }
    resp->body = strdup(body);
    resp->body_len = strlen(body);
}

static void on_closed(void *arg)
{
    fixture_t *fx = arg;
    fx->closed = true;
}

static void on_client_done(uv_async_t *async)
{
    fixture_t *fx = async->data;
    pc_http_close(fx->http, on_closed, fx);
    uv_close((uv_handle_t *)async, NULL);
}

/* ---- client side (client thread) --------------------------------------------------------- */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void signal_done(fixture_t *fx)
{
    if (!fx->signalled) {
        fx->signalled = true;
        uv_async_send(&fx->done);
    }
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* read_all reads until EOF into reply (NUL-terminated); -1 on error or timeout. */
static int read_all(int fd, char *reply, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, reply + got, cap - 1 - got, 0);
        if (n == 0)
            break;
        if (n < 0)
            return -1;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    reply[got] = '\0';
    return (int)got;
}

/* fetch sends the parts of one request with delay_ms between them and records the reply. */
static void fetch_parts(fixture_t *fx, int slot, const char *const *parts, int nparts, int delay_ms)
{
    long start = now_ms();
    fx->reply_len[slot] = -1;
    int fd = dial(fx->port);
    if (fd < 0)
        return;
    for (int i = 0; i < nparts; i++) {
        if (i > 0)
            usleep((useconds_t)delay_ms * 1000);
        if (!send_all(fd, parts[i], strlen(parts[i])))
            goto out_close_fd;
    }
    fx->reply_len[slot] = read_all(fd, fx->reply[slot], REPLY_MAX);
    fx->elapsed_ms[slot] = now_ms() - start;
out_close_fd:
    close(fd);
}

static void fetch(fixture_t *fx, int slot, const char *request)
{
    fetch_parts(fx, slot, &request, 1, 0);
}

static void *client_main(void *arg)
{
    fixture_t *fx = arg;
    fx->client(fx);
    signal_done(fx);
    return NULL;
}

/* ---- harness (test thread) --------------------------------------------------------------- */

static void run(fixture_t *fx, void (*client)(fixture_t *fx), uint64_t idle_ms)
{
    pc_diag_t diag = {{0}};
    pthread_t thread;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(pc_http_new(&fx->loop, "127.0.0.1", 0, handler, fx, &fx->http, &diag), PC_OK);
    if (idle_ms > 0)
        pc_http_set_idle_timeout(fx->http, idle_ms);
    if (fx->body_max > 0)
        pc_http_set_body_max(fx->http, fx->body_max);
    fx->port = pc_http_port(fx->http);
    assert_true(fx->port > 0 && fx->port < 65536);
    assert_int_equal(uv_async_init(&fx->loop, &fx->done, on_client_done), 0);
    fx->done.data = fx;
    fx->client = client;
    assert_int_equal(pthread_create(&thread, NULL, client_main, fx), 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(fx->closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static fixture_t *fixture_new(void)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    return fx;
}

/* check_reply asserts the status, that Content-Length is content_length, that exactly body
 * follows the head (NULL: nothing follows, as for HEAD), and returns the head for more checks. */
static void check_reply(const fixture_t *fx, int slot, int status, size_t content_length,
                        const char *body)
{
    const char *reply = fx->reply[slot];
    char line[64];
    assert_true(fx->reply_len[slot] > 0);
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    assert_memory_equal(reply, line, strlen(line));
    const char *end = strstr(reply, "\r\n\r\n");
    assert_non_null(end);
    const char *cl = strstr(reply, "\r\nContent-Length: ");
    assert_non_null(cl);
    assert_true(cl < end);
    assert_int_equal(strtoul(cl + 18, NULL, 10), content_length);
    assert_non_null(strstr(reply, "\r\nConnection: close\r\n"));
    const char *got = end + 4;
    assert_int_equal((size_t)fx->reply_len[slot] - (size_t)(got - reply),
                     body != NULL ? strlen(body) : 0);
    if (body != NULL)
        assert_string_equal(got, body);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void client_routes(fixture_t *fx)
{
    fetch(fx, 0, "GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    fetch(fx, 1, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    fetch(fx, 2, "GET /nope HTTP/1.0\r\n\r\n");
    fetch(fx, 3, "GET /metrics#frag HTTP/1.1\r\n\r\n");
    fetch(fx, 4, "GET /healthz HTTP/1.1\n\n"); /* bare LF line ends are tolerated */
}

static void test_routes(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_routes, 0);
    check_reply(fx, 0, 200, 2, "ok");
    assert_memory_equal(fx->reply[0], "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(strstr(fx->reply[0], "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    check_reply(fx, 1, 503, 9, "not ready");
    assert_memory_equal(fx->reply[1], "HTTP/1.1 503 Service Unavailable\r\n", 34);
    check_reply(fx, 2, 404, 10, "not found\n");
    assert_memory_equal(fx->reply[2], "HTTP/1.1 404 Not Found\r\n", 24);
    check_reply(fx, 3, 200, 4, "x 1\n");
    assert_non_null(strstr(fx->reply[3], "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
    check_reply(fx, 4, 200, 2, "ok");
    assert_int_equal(fx->handled, 5);
    free(fx);
}

static void client_head(fixture_t *fx)
{
    fetch(fx, 0, "HEAD /healthz HTTP/1.1\r\n\r\n");
    fetch(fx, 1, "HEAD /readyz HTTP/1.1\r\n\r\n");
}

static void test_head_has_no_body(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_head, 0);
    check_reply(fx, 0, 200, 2, NULL);
    check_reply(fx, 1, 503, 9, NULL);
    free(fx);
}

static void client_bad(fixture_t *fx)
{
    fetch(fx, 0, "GARBAGE\r\n\r\n");
    fetch(fx, 1, "GET /healthz\r\n\r\n");           /* no version */
    fetch(fx, 2, "GET healthz HTTP/1.1\r\n\r\n");   /* not origin-form */
    fetch(fx, 3, "GET /healthz HTTP/2.0\r\n\r\n");  /* not HTTP/1.x */
    fetch(fx, 4, "get /healthz HTTP/1.1\r\n\r\n");  /* methods are upper case */
    fetch(fx, 5, "GET  /healthz HTTP/1.1\r\n\r\n"); /* two spaces */
    fetch(fx, 6, "GET /a\x01z HTTP/1.1\r\n\r\n");   /* control byte in the target */
    fetch(fx, 7, "\r\n\r\n");                       /* empty request line */
}

static void test_bad_request(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_bad, 0);
    for (int i = 0; i < 8; i++) {
        check_reply(fx, i, 400, 12, "bad request\n");
        assert_memory_equal(fx->reply[i], "HTTP/1.1 400 Bad Request\r\n", 26);
    }
    assert_int_equal(fx->handled, 0); /* the handler never sees a malformed request */
    free(fx);
}

/* head_of builds a GET /healthz head of exactly total bytes (padding in one header). */
static char *head_of(size_t total)
{
    const char *start = "GET /healthz HTTP/1.1\r\nX-Pad: ";
    const char *end = "\r\n\r\n";
    char *head = malloc(total + 1);
    if (head == NULL)
        return NULL;
    size_t pad = total - strlen(start) - strlen(end);
    memcpy(head, start, strlen(start));
    memset(head + strlen(start), 'a', pad);
    memcpy(head + strlen(start) + pad, end, strlen(end) + 1);
    return head;
}

static void client_oversize(fixture_t *fx)
{
    char *fits = head_of(8192);
    char *over = head_of(8193);
    char *huge = head_of(16u << 20); /* more than the socket buffers hold */
    if (fits != NULL && over != NULL && huge != NULL) {
        fetch(fx, 0, fits);
        fetch(fx, 1, over);
        fetch(fx, 2, huge);
    }
    free(fits);
    free(over);
    free(huge);
}

static void test_oversize_head(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_oversize, 0);
    check_reply(fx, 0, 200, 2, "ok"); /* exactly at the limit */
    check_reply(fx, 1, 431, 23, "request head too large\n");
    assert_memory_equal(fx->reply[1], "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46);
    /* far over the limit, the client still reads the answer rather than a reset */
    check_reply(fx, 2, 431, 23, "request head too large\n");
    assert_int_equal(fx->handled, 1);
    free(fx);
}

static void client_idle(fixture_t *fx)
{
    const char *partial = "GET /healthz HTTP/1.1\r\nHost:";
    fetch_parts(fx, 0, NULL, 0, 0);     /* connects, sends nothing */
    fetch_parts(fx, 1, &partial, 1, 0); /* slow: never finishes its head */
    const char *parts[] = {"GET /heal", "thz HTTP/1.1\r", "\n\r", "\n"};
    fetch_parts(fx, 2, parts, 4, 30); /* slow but within the timeout */
}

static void test_idle_client_closed(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_idle, 300);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fx->reply_len[i], 0); /* closed without an answer */
        assert_true(fx->elapsed_ms[i] >= 250);
        assert_true(fx->elapsed_ms[i] < 3000);
    }
    check_reply(fx, 2, 200, 2, "ok");
    assert_int_equal(fx->handled, 1);
    free(fx);
}

static void client_sequential(fixture_t *fx)
{
    for (int i = 0; i < 50; i++)
        fetch(fx, i, i % 2 == 0 ? "GET /healthz HTTP/1.1\r\n\r\n" : "GET /readyz HTTP/1.1\r\n\r\n");
}

static void test_sequential_requests(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_sequential, 0);
    for (int i = 0; i < 50; i++) {
        if (i % 2 == 0)
            check_reply(fx, i, 200, 2, "ok");
        else
            check_reply(fx, i, 503, 9, "not ready");
    }
    assert_int_equal(fx->handled, 50);
    free(fx);
}

/* The client holds a connection open (half a head) and asks for the server to be closed;
 * the connection must be closed by pc_http_close, long before the 5 s idle timeout. */
static void client_hold_open(fixture_t *fx)
{
    long start = now_ms();
    fx->reply_len[0] = -1;
    int fd = dial(fx->port);
    if (fd < 0)
        return;
    if (send_all(fd, "GET /", 5)) {
        usleep(200 * 1000); /* let the server accept it */
        signal_done(fx);
        char buf[16];
        fx->reply_len[0] = (int)recv(fd, buf, sizeof(buf), 0);
        fx->elapsed_ms[0] = now_ms() - start;
    }
    close(fd);
}

static void test_close_with_open_connection(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_hold_open, 0);
    assert_true(fx->reply_len[0] <= 0); /* EOF (or reset), no answer */
    assert_true(fx->elapsed_ms[0] < 3000);
    assert_int_equal(fx->handled, 0);
    free(fx);
}

#define ECHO_HEAD "POST /echo HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"

static void client_bodies(fixture_t *fx)
{
    fetch(fx, 0, ECHO_HEAD "Content-Length: 5\r\n\r\nhello");
    const char *split[] = {ECHO_HEAD "Content-Length: 5\r\n\r\nhe", "l", "lo"};
    fetch_parts(fx, 1, split, 3, 30);
    fetch(fx, 2, ECHO_HEAD "Content-Length: 65\r\n\r\n");
    fetch(fx, 3, ECHO_HEAD "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    fetch(fx, 4, ECHO_HEAD "Content-Length: five\r\n\r\nhello");
    fetch(fx, 5, "POST /echo HTTP/1.1\r\n\r\n");
    const char *expect[] = {ECHO_HEAD "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", "hello"};
    fetch_parts(fx, 6, expect, 2, 30);
    fetch(fx, 7,
          ECHO_HEAD "content-length:  64 \r\n\r\n"
                    "0123456789012345678901234567890123456789012345678901234567890123");
    /* two lengths, or a length and chunks: two readings of where the body ends */
    fetch(fx, 8, ECHO_HEAD "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
    fetch(fx, 9,
          ECHO_HEAD
          "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    fetch(fx, 10, "POST /pool HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
}

static void test_bodies(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    fx->body_max = 64;
    run(fx, client_bodies, 0);
    const char *echoed = "type=application/ocsp-request body=hello";
    check_reply(fx, 0, 200, strlen(echoed), echoed);
    check_reply(fx, 1, 200, strlen(echoed), echoed); /* a body over several reads */
    check_reply(fx, 2, 413, 23, "request body too large\n");
    assert_memory_equal(fx->reply[2], "HTTP/1.1 413 Payload Too Large\r\n", 32);
    check_reply(fx, 3, 411, 34, "send the body with Content-Length\n");
    assert_memory_equal(fx->reply[3], "HTTP/1.1 411 Length Required\r\n", 30);
    check_reply(fx, 4, 400, 12, "bad request\n");
    check_reply(fx, 5, 200, 17, "type=(none) body=");
    /* a client that waits for "100 Continue" is told to go on, then answered */
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_memory_equal(fx->reply[6], cont, strlen(cont));
    assert_non_null(strstr(fx->reply[6], echoed));
    const char *full = strstr(fx->reply[7], "body=0123");
    assert_non_null(full);
    assert_int_equal(strlen(full), 5 + 64);
    check_reply(fx, 8, 400, 12, "bad request\n");
    check_reply(fx, 9, 411, 34, "send the body with Content-Length\n");
    check_reply(fx, 10, 202, 9, "later abc"); /* a deferred answer made from the body */
    assert_int_equal(fx->handled, 6);         /* never for a refused body */
    free(fx);
}

static void client_bodies_ignored(fixture_t *fx)
{
    fetch(fx, 0, ECHO_HEAD "Content-Length: 5\r\n\r\nhello");
    fetch(fx, 1, ECHO_HEAD "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
}

static void test_bodies_not_read_by_default(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_bodies_ignored, 0);
    check_reply(fx, 0, 200, 35, "type=application/ocsp-request body=");
    check_reply(fx, 1, 200, 35, "type=application/ocsp-request body=");
    free(fx);
}

static void client_deferred(fixture_t *fx)
{
    fetch(fx, 0, "GET /pool HTTP/1.1\r\n\r\n");
    fetch(fx, 1, "HEAD /pool HTTP/1.1\r\n\r\n");
    fetch(fx, 2, "GET /now HTTP/1.1\r\n\r\n");
    fetch(fx, 3, "GET /healthz HTTP/1.1\r\n\r\n");
}

static void test_deferred_answer(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_deferred, 0);
    check_reply(fx, 0, 202, 5, "later");
    check_reply(fx, 1, 202, 5, NULL);
    check_reply(fx, 2, 202, 3, "now"); /* answered inside the handler: once, not twice */
    check_reply(fx, 3, 200, 2, "ok");
    assert_null(fx->pooled);
    free(fx);
}

static void client_hold(fixture_t *fx)
{
    fetch(fx, 0, "GET /hold HTTP/1.1\r\n\r\n");
}

static void test_deferred_after_close(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    run(fx, client_hold, 0);
    assert_int_equal(fx->reply_len[0], 0); /* closed, and the late answer went nowhere */
    assert_null(fx->pooled);
    assert_int_equal(fx->handled, 1);
    free(fx);
}

static void on_flag(void *arg)
{
    *(bool *)arg = true;
}

static void test_bad_address(void **state)
{
    uv_loop_t loop;
    pc_diag_t diag = {{0}};
    pc_http_t *http = NULL, *other = NULL;
    bool closed = false;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);

    assert_int_equal(pc_http_new(&loop, "not-an-ip", 0, handler, NULL, &http, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_null(http);
    assert_non_null(strstr(diag.msg, "not-an-ip"));
    assert_int_equal(pc_http_new(&loop, "127.0.0.1", 70000, handler, NULL, &http, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "70000"));
    assert_int_equal(pc_http_new(&loop, "127.0.0.1", 0, NULL, NULL, &http, &diag),
                     PC_ERR_INVALID_PARAM);

    /* a port already in use: the error names it, and the loop still closes cleanly */
    assert_int_equal(pc_http_new(&loop, "localhost", 0, handler, NULL, &http, &diag), PC_OK);
    int port = pc_http_port(http);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    assert_int_equal(pc_http_new(&loop, "127.0.0.1", port, handler, NULL, &other, &diag),
                     PC_ERR_IO);
    assert_null(other);
    assert_non_null(strstr(diag.msg, port_text));
    pc_http_close(http, on_flag, &closed);
    pc_http_close(http, on_flag, &closed); /* second close is ignored */
    pc_http_close(NULL, on_flag, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void client_query(fixture_t *fx)
{
    fetch(fx, 0, "GET /query?tenant=a%20b&x=1#frag HTTP/1.1\r\n\r\n");
    fetch(fx, 1, "GET /query HTTP/1.1\r\n\r\n");
    fetch(fx, 2, "GET /query?#f HTTP/1.1\r\n\r\n");
    fetch(fx, 3, "GET /later?device=D1 HTTP/1.1\r\n\r\n");
    fetch(fx, 4, "HEAD /later?h=1 HTTP/1.1\r\n\r\n");
}

static void test_query_and_later(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    fx->later_ms = 20;
    run(fx, client_query, 0);
    check_reply(fx, 0, 200, 16, "tenant=a%20b&x=1");
    check_reply(fx, 1, 200, 0, "");
    check_reply(fx, 2, 200, 0, "");
    check_reply(fx, 3, 202, 15, "later device=D1");
    assert_memory_equal(fx->reply[3], "HTTP/1.1 202 Success\r\n", 22);
    check_reply(fx, 4, 202, 9, NULL);
    free(fx);
}

/* The client gives up before the answer: the server closes the connection at its time limit
 * and the late answer goes nowhere (ASan would see a write to a freed connection). */
static void client_leaves(fixture_t *fx)
{
    fetch(fx, 0, "GET /later?slow=1 HTTP/1.1\r\n\r\n");
}

static void test_later_after_client_left(void **state)
{
    fixture_t *fx = fixture_new();
    (void)state;
    fx->later_ms = 600; /* past the 200 ms limit below */
    run(fx, client_leaves, 200);
    assert_true(fx->reply_len[0] == 0); /* closed without an answer */
    assert_true(fx->answered_late);
    free(fx);
}

static void test_close_without_connections(void **state)
{
    uv_loop_t loop;
    pc_http_t *http = NULL;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(pc_http_new(&loop, "::1", 0, handler, NULL, &http, NULL), PC_OK);
    assert_true(pc_http_port(http) > 0);
    pc_http_close(http, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_oversize_head),
        cmocka_unit_test(test_idle_client_closed),
        cmocka_unit_test(test_sequential_requests),
        cmocka_unit_test(test_close_with_open_connection),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_close_without_connections),
        cmocka_unit_test(test_query_and_later),
        cmocka_unit_test(test_later_after_client_left),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_bodies_not_read_by_default),
        cmocka_unit_test(test_deferred_answer),
        cmocka_unit_test(test_deferred_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
