/*
 * http.h - a small HTTP/1.1 server on a libuv loop: the worker's /healthz, /readyz and
 * /metrics, the coordinator's status page, API and OCSP responder. It reads the request line
 * and headers, and a bounded body where the server allows one (pc_http_set_body_max), gives one
 * answer per connection (Connection: close), at once or later (pc_http_defer), and bounds what
 * a client may hold: the size of the head and body, the time to send them and to read the
 * answer, and the number of connections open at once (beyond it a new one gets 503 and is
 * closed at once). Loop thread only.
 *
 * Bodies: a server that never calls pc_http_set_body_max reads none; bytes after the head are
 * read and dropped once answered. One that does reads a Content-Length body (no chunked
 * encoding) before calling the handler, which finds it in pc_http_request_t.
 */
#ifndef PC_HTTP_H
#define PC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pc_err.h"

typedef struct pc_http pc_http_t;

/* One request, borrowed by the handler for the call: method ("GET", "HEAD", "POST", ...), path
 * without the query string, and the headers (see pc_http_request_header). */
typedef struct pc_http_request {
    const char *method;
    const char *path;  /* without the query string */
    const char *query; /* what followed '?' (no fragment), still percent-encoded; "" if none */
    size_t header_count;
    const char *const *header_names;  /* as sent; compare case-insensitively */
    const char *const *header_values; /* leading and trailing blanks removed */
    const char *content_type;         /* the Content-Type header's value; NULL when absent */
    /* The body, when the server reads bodies (pc_http_set_body_max) and the request has one;
     * else NULL and 0. Borrowed like the rest: a deferred answer copies what it keeps. */
    const unsigned char *body;
    size_t body_len;
} pc_http_request_t;

typedef struct pc_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd, taken by the server; may be NULL */
    size_t body_len;
    const char *authenticate; /* static string: a WWW-Authenticate header (a 401 needs one) */
} pc_http_response_t;

/* Handles one request (req's path is without the query string: req->query). Runs on the loop
 * thread; must not block: an answer that needs Redis is given later through pc_http_defer. */
typedef void (*pc_http_handler_fn)(void *arg, const pc_http_request_t *req,
                                   pc_http_response_t *resp);

/* pc_http_request_header returns the borrowed value of the header called name (any case), or
 * NULL when the request has none, or has it more than once: a repeated header is ambiguous,
 * and one that decides access must not be picked at random. */
const char *pc_http_request_header(const pc_http_request_t *req, const char *name);

/* Largest request head (request line, headers and the blank line) a server reads, in bytes;
 * a longer one is answered 431. */
#define PC_HTTP_HEAD_MAX 8192
/* Most header lines a request may have; more are answered 431. */
#define PC_HTTP_HEADERS_MAX 48

/* A request head cut in place by pc_http_parse_head: every pointer points into its buffer. */
typedef struct pc_http_head {
    char *method, *path, *query; /* as in pc_http_request_t */
    size_t header_count;
    const char *header_names[PC_HTTP_HEADERS_MAX];
    const char *header_values[PC_HTTP_HEADERS_MAX];
} pc_http_head_t;

/* The parser the server runs on each connection's bytes, as pure functions (for tests and the
 * fuzz targets); any thread. pc_http_head_complete tells whether head[0..len) holds the blank
 * line that ends a request head, looking from offset from on (the server passes where the bytes
 * new since its last look start, less 3, so that a terminator split across reads is found).
 * pc_http_parse_head parses the head in head[0..len): the request line "METHOD SP /target SP
 * HTTP/1.x" and the header lines up to the blank line, cut in place into NUL-terminated strings
 * that *out points to; bytes after the blank line (a body) are left as they are. Returns 0, or the
 * status the server answers: 400 for a malformed request line or header line (a name that is not a
 * token, a control character but a tab in a value), or no blank line; 431 for more than
 * PC_HTTP_HEADERS_MAX headers. */
bool pc_http_head_complete(const char *head, size_t from, size_t len);
int pc_http_parse_head(char *head, size_t len, pc_http_head_t *out);

/* A bearer token as a server keeps it: only its SHA-256, so that a comparison takes the same
 * time whatever a guess holds and the token itself is not kept in memory. */
typedef struct pc_http_token {
    unsigned char sha256[32];
} pc_http_token_t;

/* Shortest bearer token accepted, in characters. */
#define PC_HTTP_TOKEN_MIN 16

/* pc_http_token_load reads the token from path, a secret file (file.h: neither group nor
 * others may read it; "chmod 600 FILE" otherwise), one line of at least PC_HTTP_TOKEN_MIN
 * visible ASCII characters (a trailing newline is not part of it, e.g. from
 * `openssl rand -hex 32 > FILE`), and keeps its digest in *token; the text is wiped.
 * PC_ERR_INVALID_PARAM naming the file and the rule; PC_ERR_IO when it cannot be read. Any
 * thread (blocking read). */
pc_err_t pc_http_token_load(const char *path, pc_http_token_t *token, pc_diag_t *diag);

/* pc_http_bearer_ok tells whether req carries "Authorization: Bearer TOKEN" (once) with token's
 * text; the comparison is in constant time. */
bool pc_http_bearer_ok(const pc_http_request_t *req, const pc_http_token_t *token);

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
 * send its whole request head (counted from the connection, not renewed by each byte, so a
 * slow sender cannot hold it), and again to read the answer and close (0 = the default 5 s).
 * Loop thread. */
void pc_http_set_idle_timeout(pc_http_t *http, uint64_t ms);
/* pc_http_set_body_max makes the server read the body of requests that announce one with
 * Content-Length, up to max bytes (0, the default: bodies are not read, handlers see none). A
 * longer one is answered "413 Payload Too Large", one sent with Transfer-Encoding "411 Length
 * Required" and a bad or repeated Content-Length 400, without asking the handler; a client
 * that sent "Expect: 100-continue" is told to go on. The body must arrive within the time the
 * head has (pc_http_set_idle_timeout). For connections accepted afterwards. Loop thread. */
void pc_http_set_body_max(pc_http_t *http, size_t max);
/* Connections served at once when pc_http_set_max_connections is not called. */
#define PC_HTTP_MAX_CONNECTIONS_DEFAULT 256
/* pc_http_set_max_connections sets how many connections may be open at once (0 = the default
 * PC_HTTP_MAX_CONNECTIONS_DEFAULT); one more is answered "503 Service Unavailable" (too many
 * connections) without reading it and closed at once, so that clients holding connections
 * cannot exhaust file descriptors or memory. Loop thread. */
void pc_http_set_max_connections(pc_http_t *http, unsigned max);
/* pc_http_refused counts the connections refused at the limit so far. */
unsigned long pc_http_refused(const pc_http_t *http);
/* pc_http_query returns the query string of the request whose handler is running (what
 * follows '?', without a fragment; "" when there is none), still percent-encoded, borrowed
 * until the handler returns; NULL outside a handler. */
const char *pc_http_query(const pc_http_t *http);

/* A request whose answer is given later. */
typedef struct pc_http_later pc_http_later_t;

/* pc_http_defer, called by a handler, answers its request later: the server sends nothing when
 * the handler returns (resp is then ignored), and the caller owes one pc_http_answer with the
 * handle, whatever happens (also from inside the handler, or after pc_http_close). From the
 * handler's return the connection's time limit (pc_http_set_idle_timeout) starts again and
 * bounds the wait: a client that leaves, or waits past it, or a server closed meanwhile, only
 * means the answer goes nowhere. The request (req, its body) is the handler's only during the
 * call. NULL outside a handler, for a second call in one handler, or when out of memory: the
 * handler answers now. Loop thread. */
pc_http_later_t *pc_http_defer(pc_http_t *http);

/* pc_http_answer sends resp (status, type, body: the body is taken, also when the client is
 * gone) as the answer of a deferred request, and frees later. Loop thread. */
void pc_http_answer(pc_http_later_t *later, pc_http_response_t *resp);

/* pc_http_close stops listening, closes open connections, frees http in the last close
 * callback and then calls closed (may be NULL). NULL or a second call does nothing. */
void pc_http_close(pc_http_t *http, void (*closed)(void *arg), void *arg);

#endif
