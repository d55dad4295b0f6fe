/*
 * test_http_limits.c - what the HTTP server lets a client hold and how it reads what it sends:
 * at most max_conns connections (one more gets 503 at once, and is counted), request headers
 * for the handler (names in any case, values trimmed, a repeated header ambiguous, malformed
 * lines, names that are not tokens, control bytes in values and too many headers refused, the
 * parser alone too), and bearer tokens: loaded from a file nobody else may
 * read, compared whole. Real sockets from a client thread while the test thread runs the loop;
 * the client thread only records what it saw, assertions run after it is joined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"

#define REPLY_MAX 2048
#define REPLIES 16
#define TOKEN "f3a1c0de-5eed-4bad-9000-c0ffee123456"

typedef struct fixture fixture_t;

struct fixture {
    uv_loop_t loop;
    uv_async_t done;
    pc_http_t *http;
    pc_http_token_t token;
    int port;
    unsigned max_conns;
    void (*client)(fixture_t *fx);
    unsigned long refused; /* read on the loop thread at the end */
    char reply[REPLIES][REPLY_MAX];
    int retries; /* connections the client needed before the server served again */
};

/* ---- server side (loop thread) ----------------------------------------------------------- */

static void handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp)
{
    fixture_t *fx = arg;
    char body[512];

    if (strcmp(req->path, "/admin") == 0) {
        bool ok = pc_http_bearer_ok(req, &fx->token);
        pc_http_respond_text(resp, ok ? 200 : 401, ok ? "yes\n" : "no\n");
        if (!ok)
            resp->authenticate = "Bearer realm=\"test\"";
        return;
    }
    const char *v = pc_http_request_header(req, "x-test");
    snprintf(body, sizeof(body), "x-test=[%s] host=[%s] headers=%zu\n", v != NULL ? v : "(none)",
             pc_http_request_header(req, "HOST") ? pc_http_request_header(req, "HOST") : "(none)",
             req->header_count);
    pc_http_respond_text(resp, 200, body);
}

static void on_client_done(uv_async_t *async)
{
    fixture_t *fx = async->data;
    fx->refused = pc_http_refused(fx->http);
    pc_http_close(fx->http, NULL, NULL);
    uv_close((uv_handle_t *)async, NULL);
}

/* ---- client side (client thread) --------------------------------------------------------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 10};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* read_all reads until EOF (or an error, or the receive timeout) into out. */
static void read_all(int fd, char *out)
{
    size_t got = 0;
    ssize_t n;
    while (got < REPLY_MAX - 1 && (n = recv(fd, out + got, REPLY_MAX - 1 - got, 0)) > 0)
        got += (size_t)n;
    out[got] = '\0';
}

static void fetch(fixture_t *fx, int slot, const char *request)
{
    int fd = dial(fx->port);
    fx->reply[slot][0] = '\0';
    if (fd < 0)
        return;
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request))
        read_all(fd, fx->reply[slot]);
    close(fd);
}

static void *client_main(void *arg)
{
    fixture_t *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->done);
    return NULL;
}

/* ---- harness (test thread) --------------------------------------------------------------- */

static void run(fixture_t *fx, void (*client)(fixture_t *fx))
{
    pc_diag_t diag = {{0}};
    pthread_t thread;

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(pc_http_new(&fx->loop, "127.0.0.1", 0, handler, fx, &fx->http, &diag), PC_OK);
    if (fx->max_conns > 0)
        pc_http_set_max_connections(fx->http, fx->max_conns);
    fx->port = pc_http_port(fx->http);
    assert_int_equal(uv_async_init(&fx->loop, &fx->done, on_client_done), 0);
    fx->done.data = fx;
    fx->client = client;
    assert_int_equal(pthread_create(&thread, NULL, client_main, fx), 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void expect_status(const fixture_t *fx, int slot, int status)
{
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (strncmp(fx->reply[slot], line, strlen(line)) != 0)
        fail_msg("reply %d: expected %d, got \"%.80s\"", slot, status, fx->reply[slot]);
}

static void expect_body(const fixture_t *fx, int slot, const char *text)
{
    const char *body = strstr(fx->reply[slot], "\r\n\r\n");
    if (body == NULL || strcmp(body + 4, text) != 0)
        fail_msg("reply %d: expected body \"%s\", got \"%s\"", slot, text, fx->reply[slot]);
}

/* ---- connection limit -------------------------------------------------------------------- */

static void client_holds_every_slot(fixture_t *fx)
{
    int held[3], fd;
    for (int i = 0; i < 3; i++)
        held[i] = dial(fx->port);
    /* Once the third is answered the server has accepted all three (in order); it half-closes
     * after answering and keeps the connection, so the slot stays taken. */
    send(held[2], "GET /a HTTP/1.1\r\n\r\n", 19, MSG_NOSIGNAL);
    read_all(held[2], fx->reply[0]);
    fd = dial(fx->port);
    read_all(fd, fx->reply[1]); /* nothing sent: only a refusal answers */
    close(fd);
    for (int i = 0; i < 3; i++)
        close(held[i]);
    /* served again once the held connections are gone (when the server has seen their EOF) */
    for (fx->retries = 0; fx->retries < 200; fx->retries++) {
        fetch(fx, 2, "GET /b HTTP/1.1\r\n\r\n");
        if (strncmp(fx->reply[2], "HTTP/1.1 200", 12) == 0)
            break;
        usleep(10000);
    }
}

static void test_http_limits_connections_over_the_limit_get_503(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->max_conns = 3;
    run(fx, client_holds_every_slot);
    expect_status(fx, 0, 200);
    expect_status(fx, 1, 503);
    assert_non_null(strstr(fx->reply[1], "\r\nRetry-After: 1\r\n"));
    expect_body(fx, 1, "too many connections\n");
    expect_status(fx, 2, 200);
    assert_true(fx->refused >= 1); /* the retries at the end may have met the limit too */
    free(fx);
}

static void client_many(fixture_t *fx)
{
    int held[20];
    for (int i = 0; i < 20; i++)
        held[i] = dial(fx->port);
    fetch(fx, 0, "GET /a HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 20; i++)
        close(held[i]);
}

static void test_http_limits_default_limit_is_generous(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    run(fx, client_many); /* 21 at once, under PC_HTTP_MAX_CONNECTIONS_DEFAULT */
    expect_status(fx, 0, 200);
    assert_int_equal(fx->refused, 0);
    free(fx);
}

/* ---- headers ----------------------------------------------------------------------------- */

static void client_headers(fixture_t *fx)
{
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET /m HTTP/1.1\r\n");

    fetch(fx, 0, "GET /h HTTP/1.1\r\nHost: example\r\nX-Test:   spaced value \t\r\n\r\n");
    fetch(fx, 1, "GET /h HTTP/1.1\r\nx-TEST: one\r\nX-Test: two\r\n\r\n");
    fetch(fx, 2, "GET /h HTTP/1.1\r\nX-Test : v\r\n\r\n");
    fetch(fx, 3, "GET /h HTTP/1.1\r\nX-Test: v\r\n folded\r\n\r\n");
    fetch(fx, 4, "GET /h HTTP/1.1\r\nno colon here\r\n\r\n");
    fetch(fx, 5, "GET /h HTTP/1.1\r\n: no name\r\n\r\n");
    fetch(fx, 6, "GET /h HTTP/1.1\nX-Test:bare-lf\n\n");
    for (int i = 0; i < 49; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%d: %d\r\n", i, i);
    snprintf(many + n, sizeof(many) - n, "\r\n");
    fetch(fx, 7, many);
    fetch(fx, 8, "GET /h HTTP/1.1\r\nX-Test:\r\n\r\n");
}

static void test_http_limits_request_headers(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    run(fx, client_headers);
    expect_body(fx, 0, "x-test=[spaced value] host=[example] headers=2\n");
    expect_body(fx, 1, "x-test=[(none)] host=[(none)] headers=2\n"); /* repeated: ambiguous */
    expect_status(fx, 2, 400);                                       /* blank before colon */
    expect_status(fx, 3, 400);                                       /* obsolete folding */
    expect_status(fx, 4, 400);
    expect_status(fx, 5, 400);
    expect_body(fx, 6, "x-test=[bare-lf] host=[(none)] headers=1\n");
    expect_status(fx, 7, 431);
    expect_body(fx, 7, "too many request headers\n");
    expect_body(fx, 8, "x-test=[] host=[(none)] headers=1\n");
    free(fx);
}

/* parse parses len bytes of head as the server does; the status it answers (0: parsed). */
static int parse(const char *head, size_t len, pc_http_head_t *h)
{
    static char buf[PC_HTTP_HEAD_MAX];
    assert_true(len <= sizeof(buf));
    memcpy(buf, head, len);
    return pc_http_parse_head(buf, len, h);
}

/* The bytes a header may hold: a name is a token, a value has no control character but tabs;
 * a NUL byte would cut what a handler reads ("Authorization\0x" as Authorization). */
static void test_http_limits_header_bytes(void **state)
{
    static const char nul_name[] = "GET /h HTTP/1.1\r\nAuthorization\0x: Bearer t\r\n\r\n";
    static const char nul_value[] = "GET /h HTTP/1.1\r\nX-Test: a\0b\r\n\r\n";
    static const char cr_value[] = "GET /h HTTP/1.1\r\nX-Test: a\rb\r\n\r\n";
    static const char ctl_value[] = "GET /h HTTP/1.1\r\nX-Test: a\x01\r\n\r\n";
    static const char bad_name[] = "GET /h HTTP/1.1\r\nX(Test): a\r\n\r\n";
    static const char good[] = "GET /h?q=1 HTTP/1.1\r\nX-Test: a\tb \xc3\xa9\r\n"
                               "!#$%&'*+-.^_`|~09az: v\r\n\r\n";
    pc_http_head_t h;

    assert_int_equal(parse(nul_name, sizeof(nul_name) - 1, &h), 400);
    assert_int_equal(parse(nul_value, sizeof(nul_value) - 1, &h), 400);
    assert_int_equal(parse(cr_value, sizeof(cr_value) - 1, &h), 400);
    assert_int_equal(parse(ctl_value, sizeof(ctl_value) - 1, &h), 400);
    assert_int_equal(parse(bad_name, sizeof(bad_name) - 1, &h), 400);
    assert_int_equal(parse(good, sizeof(good) - 1, &h), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.path, "/h");
    assert_string_equal(h.query, "q=1");
    assert_int_equal(h.header_count, 2);
    assert_string_equal(h.header_names[0], "X-Test");
    assert_string_equal(h.header_values[0], "a\tb \xc3\xa9");
    assert_string_equal(h.header_names[1], "!#$%&'*+-.^_`|~09az");
    /* the parser takes any bytes: without its blank line a head is refused, not overrun */
    assert_int_equal(parse(good, sizeof(good) - 3, &h), 400);
    assert_int_equal(parse("", 0, &h), 400);
    assert_true(pc_http_head_complete(good, 0, sizeof(good) - 1));
    assert_false(pc_http_head_complete(good, 0, sizeof(good) - 3));
}

/* ---- bearer tokens ----------------------------------------------------------------------- */

static void client_bearer(fixture_t *fx)
{
    fetch(fx, 0, "POST /admin HTTP/1.1\r\nAuthorization: Bearer " TOKEN "\r\n\r\n");
    fetch(fx, 1, "POST /admin HTTP/1.1\r\n\r\n");
    fetch(fx, 2, "POST /admin HTTP/1.1\r\nAuthorization: Bearer " TOKEN "0\r\n\r\n");
    fetch(fx, 3, "POST /admin HTTP/1.1\r\nAuthorization: Bearer f3a1c0de\r\n\r\n");
    fetch(fx, 4, "POST /admin HTTP/1.1\r\nAuthorization: Basic " TOKEN "\r\n\r\n");
    fetch(fx, 5, "POST /admin HTTP/1.1\r\nauthorization: bearer \t " TOKEN "\r\n\r\n");
    fetch(fx, 6,
          "POST /admin HTTP/1.1\r\nAuthorization: Bearer " TOKEN "\r\n"
          "Authorization: Bearer " TOKEN "\r\n\r\n");
    fetch(fx, 7, "POST /admin HTTP/1.1\r\nAuthorization: Bearer\r\n\r\n");
    fetch(fx, 8, "POST /admin HTTP/1.1\r\nAuthorization: Bearer" TOKEN "\r\n\r\n");
    fetch(fx, 9, "POST /admin HTTP/1.1\r\nAuthorization: Digest " TOKEN "\r\n\r\n");
}

/* write_token writes text to dir/name with mode; returns the path (static). */
static const char *write_token(const char *dir, const char *name, const char *text, mode_t mode)
{
    static char path[128];
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static void test_http_limits_bearer_token(void **state)
{
    char dir[] = "/tmp/pc-http-limits-XXXXXX";
    fixture_t *fx = calloc(1, sizeof(*fx));
    pc_diag_t diag = {{0}};

    assert_non_null(fx);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(
        pc_http_token_load(write_token(dir, "t", TOKEN "\r\n", 0600), &fx->token, &diag), PC_OK);
    run(fx, client_bearer);
    expect_status(fx, 0, 200);
    expect_status(fx, 1, 401);
    assert_non_null(strstr(fx->reply[1], "\r\nWWW-Authenticate: Bearer realm=\"test\"\r\n"));
    expect_status(fx, 2, 401); /* one character more */
    expect_status(fx, 3, 401); /* a prefix */
    expect_status(fx, 4, 401); /* another scheme */
    expect_status(fx, 5, 200); /* the scheme in any case, blanks before the token */
    expect_status(fx, 6, 401); /* twice: ambiguous */
    expect_status(fx, 7, 401);
    expect_status(fx, 8, 401); /* no blank after the scheme */
    expect_status(fx, 9, 401); /* another scheme of the same length */
    free(fx);

    pc_http_token_t token;
    const char *path = write_token(dir, "loose", TOKEN "\n", 0640);
    assert_int_equal(pc_http_token_load(path, &token, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "readable by its group (mode 0640)"));
    assert_non_null(strstr(diag.msg, "chmod 600"));
    path = write_token(dir, "short", "abc123\n", 0600);
    assert_int_equal(pc_http_token_load(path, &token, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "at least 16 visible ASCII characters"));
    assert_non_null(strstr(diag.msg, "openssl rand -hex 32"));
    path = write_token(dir, "spaces", "a token with blanks in it\n", 0600);
    assert_int_equal(pc_http_token_load(path, &token, &diag), PC_ERR_INVALID_PARAM);
    path = write_token(dir, "two-lines", TOKEN "\n" TOKEN "\n", 0600);
    assert_int_equal(pc_http_token_load(path, &token, &diag), PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_http_token_load("/nonexistent/token", &token, &diag), PC_ERR_IO);
    const char *names[] = {"t", "loose", "short", "spaces", "two-lines"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_limits_connections_over_the_limit_get_503),
        cmocka_unit_test(test_http_limits_default_limit_is_generous),
        cmocka_unit_test(test_http_limits_request_headers),
        cmocka_unit_test(test_http_limits_header_bytes),
        cmocka_unit_test(test_http_limits_bearer_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
