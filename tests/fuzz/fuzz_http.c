/*
 * fuzz_http.c - libFuzzer target: the request-head parser of the HTTP server (lib/net/http.c)
 * behind the worker's health and metrics and the coordinator's API, which reads whatever a
 * client on the network sends.
 *
 * Input: one byte choosing how the rest arrives (its value modulo 64 is the size of each read,
 * 0 meaning all at once), then the bytes of the connection. The target does what the server's
 * read callback does: append each read to a PC_HTTP_HEAD_MAX buffer, look for the end of the
 * head from just before the new bytes, and parse the head once it is complete, or give up when
 * the buffer is full. Then what a handler does with a parsed request: look headers up
 * (pc_http_request_header) and check a bearer token (pc_http_bearer_ok). It checks what the
 * server and handlers rely on: the end of a head is found however the bytes are split; a parsed
 * method, path, query and headers are short, plain and inside the buffer; a header looked up is
 * one the request has exactly once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "fuzz_util.h"
#include "http.h"

#define TOKEN "fuzz-admin-token-0123456789"

static pc_http_token_t token;

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsigned int n = 0;
    if (EVP_Digest(TOKEN, strlen(TOKEN), token.sha256, &n, EVP_sha256(), NULL) != 1 || n != 32)
        bug("cannot hash the token");
    return 0;
}

static bool inside(const char *p, const char *head, size_t len)
{
    return p >= head && p < head + len && memchr(p, '\0', (size_t)(head + len - p)) != NULL;
}

static bool plain(const char *s, const char *stop)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(stop, *s) != NULL)
            return false;
    return true;
}

/* RFC 9110 5.6.2: the characters of a token, which a header name is. */
static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* check_parsed checks the parsed head h of head[0..len), which was orig before parsing cut it. */
static void check_parsed(const char *head, const char *orig, size_t len, const pc_http_head_t *h)
{
    if (!inside(h->method, head, len) || !inside(h->path, head, len) ||
        !inside(h->query, head, len))
        bug("method, path or query outside the request head");
    size_t mlen = strlen(h->method);
    if (mlen == 0 || mlen > 16 || strspn(h->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != mlen)
        bug("a method that is not 1 to 16 upper-case letters, '-' or '_'");
    if (h->path[0] != '/' || !plain(h->path, "?#"))
        bug("a path that does not start with '/' or has a space, control, non-ASCII, ? or #");
    if (!plain(h->query, "#"))
        bug("a query with a space, control, non-ASCII or '#' byte");
    if (h->header_count > PC_HTTP_HEADERS_MAX)
        bug("more headers than PC_HTTP_HEADERS_MAX");
    for (size_t i = 0; i < h->header_count; i++) {
        const char *name = h->header_names[i], *value = h->header_values[i];
        if (!inside(name, head, len) || !inside(value, head, len))
            bug("a header name or value outside the request head");
        size_t nlen = strlen(name), vlen = strlen(value);
        /* where the parser ended each string: a NUL byte sent inside a name or value would end
         * it early in C ("Authorization\0x: ..." read as Authorization) */
        char name_end = orig[name - head + nlen], value_end = orig[value - head + vlen];
        if (nlen == 0 || strspn(name, tchar) != nlen || name_end != ':')
            bug("a header name that is not a token (RFC 9110), or is cut short by a NUL");
        if (value_end != ' ' && value_end != '\t' && value_end != '\r' && value_end != '\n')
            bug("a header value cut short by a NUL");
        for (size_t j = 0; j < vlen; j++)
            if (((unsigned char)value[j] < 0x20 && value[j] != '\t') || value[j] == 0x7f)
                bug("a header value with a control character");
        if (vlen > 0 && (value[0] == ' ' || value[0] == '\t' || value[vlen - 1] == ' ' ||
                         value[vlen - 1] == '\t'))
            bug("a header value with blanks around it");
    }
}

/* use_request does what handlers do with a request: look headers up, check a bearer token. */
static void use_request(const pc_http_head_t *h)
{
    static const char *const names[] = {"Authorization", "Host", "Content-Length", "Accept"};
    pc_http_request_t req = {.method = h->method,
                             .path = h->path,
                             .query = h->query,
                             .header_count = h->header_count,
                             .header_names = h->header_names,
                             .header_values = h->header_values};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = pc_http_request_header(&req, names[i]);
        size_t seen = 0;
        for (size_t j = 0; j < h->header_count; j++)
            seen += strcasecmp(h->header_names[j], names[i]) == 0;
        if ((v != NULL) != (seen == 1))
            bug("a header looked up that the request has not exactly once");
    }
    bool ok = pc_http_bearer_ok(&req, &token);
    const char *auth = pc_http_request_header(&req, "Authorization");
    if (ok && (auth == NULL || strstr(auth, TOKEN) == NULL))
        bug("a bearer token accepted that is not the token");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 64, len = 0;
    const uint8_t *in = data + 1;
    size_t left = size - 1;
    char *head = malloc(PC_HTTP_HEAD_MAX); /* exactly the server's buffer: overruns show */
    char *orig = NULL;
    bool complete = false;
    pc_http_head_t h;

    if (head == NULL)
        return 0;
    while (left > 0 && !complete && len < PC_HTTP_HEAD_MAX) {
        size_t n = step == 0 ? left : step;
        if (n > left)
            n = left;
        if (n > PC_HTTP_HEAD_MAX - len)
            n = PC_HTTP_HEAD_MAX - len;
        memcpy(head + len, in, n);
        in += n;
        left -= n;
        size_t from = len > 3 ? len - 3 : 0;
        len += n;
        complete = pc_http_head_complete(head, from, len);
    }
    if (complete != pc_http_head_complete(head, 0, len))
        bug("the end of the head was found or missed depending on how the bytes were split");
    orig = malloc(len > 0 ? len : 1);
    if (orig == NULL)
        goto out;
    memcpy(orig, head, len);
    /* the server parses complete heads only, but the parser must take any bytes */
    int status = pc_http_parse_head(head, len, &h);
    if (status == 0) {
        if (!complete)
            bug("a head without its blank line parsed");
        check_parsed(head, orig, len, &h);
        use_request(&h);
    } else if (status != 400 && status != 431) {
        bug("pc_http_parse_head answered another status than 400 or 431");
    }
out:
    free(orig);
    free(head);
    return 0;
}
