/*
 * test_curl_uv.c - the loop-driven HTTP client against a small HTTP server on the same loop:
 * round trips, statuses, timeouts of silent servers and of the queue, refused connections, the
 * concurrency limit, oversized answers, and closing with requests pending. Every test ends with
 * uv_loop_close() == 0, so nothing may outlive its close callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curl_uv.h"

#define REQ_MAX 65536
#define SLOW_MS 150
#define BIG_LEN (64 * 1024)

/* ---- the test server: one request per connection, answer chosen by the path ------------- */

typedef struct server server_t;
typedef struct conn conn_t;

struct server {
    uv_tcp_t listener;
    int port;
    unsigned handles;  /* listener + handles of live connections */
    unsigned inflight; /* requests read but not yet answered */
    unsigned max_inflight;
    unsigned requests;
    conn_t *conns;
    bool closed;
};

struct conn {
    conn_t *prev, *next;
    server_t *srv;
    uv_tcp_t tcp;
    uv_timer_t delay;
    uv_write_t write_req;
    unsigned handles;
    bool closing, answered, counted;
    char *out;
    size_t len;
    char buf[REQ_MAX + 1];
};

static void server_release(server_t *srv)
{
    if (--srv->handles == 0)
        srv->closed = true;
}

static void on_conn_closed(uv_handle_t *handle)
{
    conn_t *conn = handle->data;
    if (--conn->handles > 0)
        return;
    server_t *srv = conn->srv;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    free(conn->out);
    free(conn);
    server_release(srv);
}

static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    if (conn->counted && !conn->answered)
        conn->srv->inflight--;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&conn->delay, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    conn_close(req->data);
}

static void conn_send(conn_t *conn, int status, const char *body, size_t body_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, body_len);
    assert_true(n > 0 && (size_t)n < sizeof(head));
    conn->out = malloc((size_t)n + body_len);
    assert_non_null(conn->out);
    memcpy(conn->out, head, (size_t)n);
    memcpy(conn->out + n, body, body_len);
    conn->answered = true;
    conn->srv->inflight--;
    uv_buf_t buf = uv_buf_init(conn->out, (unsigned)((size_t)n + body_len));
    conn->write_req.data = conn;
    if (uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &buf, 1, on_written) != 0)
        conn_close(conn);
}

static void on_delay(uv_timer_t *timer)
{
    conn_send(timer->data, 200, "slow", 4);
}

/* header_value finds "name: value" in the head and copies value into out. */
static void header_value(const char *head, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, nlen) != 0 || line[2 + nlen] != ':')
            continue;
        const char *v = line + 3 + nlen;
        while (*v == ' ')
            v++;
        size_t vlen = strcspn(v, "\r\n");
        snprintf(out, size, "%.*s", (int)(vlen < size ? vlen : size - 1), v);
        return;
    }
}

/* conn_answer: /echo, /status/NNN, /slow (after SLOW_MS), /big, /hang (never). */
static void conn_answer(conn_t *conn, const char *head, const char *body, size_t body_len)
{
    char method[16] = "", path[128] = "", xtest[64], reply[512];
    sscanf(head, "%15s %127s", method, path);
    header_value(head, "X-Test", xtest, sizeof(xtest));
    if (strcmp(path, "/echo") == 0) {
        int n = snprintf(reply, sizeof(reply), "%s %s x-test=%s body=%.*s", method, path, xtest,
                         (int)body_len, body);
        conn_send(conn, 200, reply, (size_t)n);
    } else if (strncmp(path, "/status/", 8) == 0) {
        conn_send(conn, (int)strtol(path + 8, NULL, 10), "status", 6);
    } else if (strcmp(path, "/slow") == 0) {
        uv_timer_start(&conn->delay, on_delay, SLOW_MS, 0);
    } else if (strcmp(path, "/big") == 0) {
        char *big = malloc(BIG_LEN);
        assert_non_null(big);
        memset(big, 'x', BIG_LEN);
        conn_send(conn, 200, big, BIG_LEN);
        free(big);
    } else if (strcmp(path, "/hang") != 0) {
        conn_send(conn, 404, "no", 2);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn_t *conn = handle->data;
    *buf = uv_buf_init(conn->buf + conn->len, (unsigned)(REQ_MAX - conn->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *conn = stream->data;
    char clen[32];

    if (nread < 0) {
        conn_close(conn);
        return;
    }
    conn->len += (size_t)nread;
    conn->buf[conn->len] = '\0';
    char *end = strstr(conn->buf, "\r\n\r\n");
    if (end == NULL || conn->counted)
        return;
    header_value(conn->buf, "Content-Length", clen, sizeof(clen));
    size_t want = (size_t)strtoul(clen, NULL, 10);
    size_t have = conn->len - (size_t)(end + 4 - conn->buf);
    if (have < want)
        return;
    conn->counted = true;
    server_t *srv = conn->srv;
    srv->requests++;
    if (++srv->inflight > srv->max_inflight)
        srv->max_inflight = srv->inflight;
    end[2] = '\0';
    conn_answer(conn, conn->buf, end + 4, want);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *srv = listener->data;
    assert_int_equal(status, 0);
    conn_t *conn = calloc(1, sizeof(*conn));
    assert_non_null(conn);
    conn->srv = srv;
    uv_tcp_init(listener->loop, &conn->tcp);
    uv_timer_init(listener->loop, &conn->delay);
    conn->tcp.data = conn;
    conn->delay.data = conn;
    conn->handles = 2;
    srv->handles++;
    conn->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = conn;
    srv->conns = conn;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0)
        conn_close(conn);
}

static void on_listener_closed(uv_handle_t *handle)
{
    server_release(handle->data);
}

static void server_start(uv_loop_t *loop, server_t *srv)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);

    memset(srv, 0, sizeof(*srv));
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    srv->handles = 1;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 64, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len), 0);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void server_stop(server_t *srv)
{
    for (conn_t *conn = srv->conns; conn != NULL; conn = conn->next)
        conn_close(conn);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct outcome {
    bool called;
    CURLcode code;
    long status;
    char body[1024];
    size_t body_len;
    char error[CURL_ERROR_SIZE];
    double seconds;
    unsigned order; /* 1-based position among all completions */
} outcome_t;

typedef struct world {
    uv_loop_t loop;
    server_t srv;
    pc_curl_uv_t *cu;
    bool cu_close_called;
    bool cu_closed;
    unsigned completions;
    outcome_t outs[8]; /* outlive a test: teardown's close still answers into them */
    pc_curl_uv_t *close_from_callback; /* closed by the next callback when set */
} world_t;

static world_t *world; /* for callbacks that only get an outcome */

static void on_cu_closed(void *arg)
{
    ((world_t *)arg)->cu_closed = true;
}

static void on_done(void *arg, pc_curl_uv_result_t *res)
{
    outcome_t *out = arg;
    assert_false(out->called);
    assert_non_null(res->body);
    assert_non_null(res->error);
    out->called = true;
    out->code = res->code;
    out->status = res->status;
    out->body_len = res->body_len;
    snprintf(out->body, sizeof(out->body), "%s", res->body);
    snprintf(out->error, sizeof(out->error), "%s", res->error);
    out->seconds = res->seconds;
    out->order = ++world->completions;
    free(res->body);
    if (world->close_from_callback != NULL) {
        pc_curl_uv_t *cu = world->close_from_callback;
        world->close_from_callback = NULL;
        world->cu_close_called = true;
        pc_curl_uv_close(cu, on_cu_closed, world);
    }
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    pc_diag_t diag = {.msg = ""};
    assert_non_null(w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    server_start(&w->loop, &w->srv);
    assert_int_equal(pc_curl_uv_new(&w->loop, 2, &w->cu, &diag), PC_OK);
    world = w;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    if (!w->cu_close_called)
        pc_curl_uv_close(w->cu, on_cu_closed, w);
    server_stop(&w->srv);
    for (int i = 0; i < 1000 && !(w->cu_closed && w->srv.closed); i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_true(w->cu_closed);
    assert_true(w->srv.closed);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    free(w);
    return 0;
}

/* run_until runs the loop until every outcome is in, or a safety deadline passes. */
static void run_until(world_t *w, outcome_t *outs, size_t n)
{
    uint64_t deadline = uv_now(&w->loop) + 10000;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && outs[i].called;
        if (all || uv_now(&w->loop) > deadline)
            break;
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n; i++)
        assert_true(outs[i].called);
}

static char *url(world_t *w, const char *path)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", w->srv.port, path);
    return buf;
}

static void request(world_t *w, const pc_curl_uv_request_t *req, outcome_t *out)
{
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = pc_curl_uv_request(w->cu, req, on_done, out, &diag);
    if (err != PC_OK)
        fail_msg("request to %s refused: %s", req->url, diag.msg);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_get_and_post_round_trip(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;
    const char *headers[] = {"X-Test: hello"};

    pc_curl_uv_request_t get = {.url = url(w, "/echo")};
    request(w, &get, &outs[0]);
    pc_curl_uv_request_t post = {.method = "POST",
                                 .url = url(w, "/echo"),
                                 .body = "{\"a\":1}",
                                 .body_len = 7,
                                 .headers = headers,
                                 .header_count = 1};
    request(w, &post, &outs[1]);
    pc_curl_uv_request_t put = {.method = "PUT", .url = url(w, "/echo"), .body = "", .body_len = 0};
    request(w, &put, &outs[2]);
    run_until(w, outs, 3);

    assert_int_equal(outs[0].code, CURLE_OK);
    assert_int_equal(outs[0].status, 200);
    assert_string_equal(outs[0].body, "GET /echo x-test= body=");
    assert_string_equal(outs[0].error, "");
    assert_int_equal(outs[1].status, 200);
    assert_string_equal(outs[1].body, "POST /echo x-test=hello body={\"a\":1}");
    assert_int_equal(outs[1].body_len, strlen(outs[1].body));
    assert_string_equal(outs[2].body, "PUT /echo x-test= body=");
}

static void test_status_is_passed_through(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;

    pc_curl_uv_request_t busy = {.url = url(w, "/status/503")};
    request(w, &busy, &outs[0]);
    pc_curl_uv_request_t missing = {.url = url(w, "/nothing-here")};
    request(w, &missing, &outs[1]);
    run_until(w, outs, 2);

    assert_int_equal(outs[0].code, CURLE_OK); /* an answer is an answer, whatever its status */
    assert_int_equal(outs[0].status, 503);
    assert_string_equal(outs[0].body, "status");
    assert_int_equal(outs[1].status, 404);
}

static void test_silent_server_times_out(void **state)
{
    world_t *w = *state;
    outcome_t *out = &w->outs[0];

    pc_curl_uv_request_t req = {.url = url(w, "/hang"), .total_timeout_ms = 300};
    request(w, &req, out);
    run_until(w, out, 1);

    assert_int_equal(out->code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(out->status, 0);
    assert_true(out->seconds >= 0.25 && out->seconds < 2.0);
    assert_non_null(strstr(out->error, "timed out"));
    assert_int_equal(pc_curl_uv_active(w->cu), 0);
}

static void test_refused_connection(void **state)
{
    world_t *w = *state;
    outcome_t *out = &w->outs[0];
    char dead[64];
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was free a moment ago: nothing listens there */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/echo", ntohs(sa.sin_port));

    pc_curl_uv_request_t req = {.url = dead};
    request(w, &req, out);
    run_until(w, out, 1);

    assert_int_equal(out->code, CURLE_COULDNT_CONNECT);
    assert_int_equal(out->status, 0);
    assert_true(out->error[0] != '\0');
}

static void test_concurrency_limit_and_fifo(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;

    for (size_t i = 0; i < 6; i++) {
        pc_curl_uv_request_t req = {.url = url(w, "/slow")};
        request(w, &req, &outs[i]);
    }
    assert_int_equal(pc_curl_uv_active(w->cu), 2); /* the client was made with 2 slots */
    assert_int_equal(pc_curl_uv_queued(w->cu), 4);
    run_until(w, outs, 6);

    assert_int_equal(w->srv.requests, 6);
    assert_int_equal(w->srv.max_inflight, 2);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(outs[i].status, 200);
        assert_string_equal(outs[i].body, "slow");
    }
    /* first in, first served: the last two waited for two rounds of the others */
    assert_true(outs[4].order > outs[0].order && outs[4].order > outs[1].order);
    assert_true(outs[5].seconds >= 2.5 * SLOW_MS / 1000.0);
    assert_int_equal(pc_curl_uv_queued(w->cu), 0);
}

static void test_queued_request_times_out_on_its_own_deadline(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;

    pc_curl_uv_request_t hang = {.url = url(w, "/hang"), .total_timeout_ms = 3000};
    request(w, &hang, &outs[0]);
    request(w, &hang, &outs[1]);
    pc_curl_uv_request_t quick = {.url = url(w, "/echo"), .total_timeout_ms = 200};
    request(w, &quick, &outs[2]);
    assert_int_equal(pc_curl_uv_queued(w->cu), 1);
    run_until(w, &outs[2], 1);

    assert_false(outs[0].called); /* both slots are still taken */
    assert_int_equal(outs[2].code, CURLE_OPERATION_TIMEDOUT);
    assert_true(outs[2].seconds >= 0.15 && outs[2].seconds < 1.0);
    assert_non_null(strstr(outs[2].error, "waiting for one of the 2 connection slots"));
    assert_int_equal(w->srv.requests, 2); /* it never reached the server */
}

static void test_oversized_answer_fails(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;

    pc_curl_uv_request_t small = {.url = url(w, "/big"), .max_response = 1000};
    request(w, &small, &outs[0]);
    pc_curl_uv_request_t enough = {.url = url(w, "/big"), .max_response = BIG_LEN};
    request(w, &enough, &outs[1]);
    run_until(w, outs, 2);

    assert_int_equal(outs[0].code, CURLE_WRITE_ERROR);
    assert_non_null(strstr(outs[0].error, "larger than 1000 bytes"));
    assert_int_equal(outs[1].code, CURLE_OK);
    assert_int_equal(outs[1].body_len, BIG_LEN);
}

static void test_bad_requests_are_refused_at_once(void **state)
{
    world_t *w = *state;
    outcome_t *out = &w->outs[0];
    pc_diag_t diag = {.msg = ""};

    pc_curl_uv_request_t ftp = {.url = "ftp://127.0.0.1/x"};
    assert_int_equal(pc_curl_uv_request(w->cu, &ftp, on_done, out, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "ftp://127.0.0.1/x"));
    pc_curl_uv_request_t method = {.method = "GET /x", .url = url(w, "/echo")};
    assert_int_equal(pc_curl_uv_request(w->cu, &method, on_done, out, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "not an HTTP method"));
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_false(out->called);
}

static void test_close_fails_pending_requests(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;
    pc_diag_t diag = {.msg = ""};

    for (size_t i = 0; i < 4; i++) {
        pc_curl_uv_request_t req = {.url = url(w, "/hang")};
        request(w, &req, &outs[i]);
    }
    /* let the first two reach the server */
    for (int i = 0; i < 200 && w->srv.requests < 2; i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_int_equal(w->srv.requests, 2);

    w->cu_close_called = true;
    pc_curl_uv_close(w->cu, on_cu_closed, w);
    for (size_t i = 0; i < 4; i++) {
        assert_true(outs[i].called); /* before pc_curl_uv_close returned */
        assert_int_equal(outs[i].code, CURLE_ABORTED_BY_CALLBACK);
        assert_non_null(strstr(outs[i].error, "closed"));
    }
    assert_false(w->cu_closed); /* freed only in the last close callback */
    pc_curl_uv_request_t late = {.url = url(w, "/echo")};
    outcome_t late_out;
    memset(&late_out, 0, sizeof(late_out));
    assert_int_equal(pc_curl_uv_request(w->cu, &late, on_done, &late_out, &diag),
                     PC_ERR_INVALID_PARAM);
    for (int i = 0; i < 100 && !w->cu_closed; i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_true(w->cu_closed);
}

static void test_close_from_a_callback(void **state)
{
    world_t *w = *state;
    outcome_t *outs = w->outs;

    pc_curl_uv_request_t fast = {.url = url(w, "/echo")};
    request(w, &fast, &outs[0]);
    pc_curl_uv_request_t hang = {.url = url(w, "/hang")};
    request(w, &hang, &outs[1]);
    request(w, &hang, &outs[2]);
    w->close_from_callback = w->cu;
    run_until(w, outs, 3);

    assert_int_equal(outs[0].status, 200);
    assert_int_equal(outs[1].code, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(outs[2].code, CURLE_ABORTED_BY_CALLBACK);
    assert_true(w->cu_close_called);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_is_passed_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_limit_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_request_times_out_on_its_own_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_oversized_answer_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_are_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_fails_pending_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_a_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
