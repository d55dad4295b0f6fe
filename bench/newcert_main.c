/*
 * pkcs-bench-cfssl - the cfssl reference of the benchmark: cfssl doing our connector's job
 * (make a key pair, have the CA sign a certificate for it) through its own HTTP API, POST
 * /api/v1/cfssl/newcert, which generates the key and signs on the server. C requests are kept
 * in flight; each is timed from the moment it is handed to libcurl to its last response byte.
 * Prints the rate of certificates and latency percentiles, readable or as one CSV line.
 *
 * A standalone client on one thread: libcurl's multi interface driven by a plain
 * curl_multi_perform / curl_multi_poll loop (nothing else shares the thread, so no libuv), and
 * jansson for the JSON. Before the load, one POST /api/v1/cfssl/info (connect timeout 3 s)
 * tells an unreachable or wrong --url apart from a slow cfssl.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "clock.h"
#include "numbers.h"

#define TOOL "pkcs-bench-cfssl"
#define NEWCERT_PATH "/api/v1/cfssl/newcert"
#define INFO_PATH "/api/v1/cfssl/info"
#define CONNECT_TIMEOUT_MS 3000L
#define PROBE_TIMEOUT_MS 10000L
#define RESPONSE_MAX ((size_t)1 << 20)
#define POLL_MS 100
#define CONCURRENCY_MAX 1024L
#define CERT_PEM "-----BEGIN CERTIFICATE-----"

typedef struct alg {
    const char *name; /* as --alg spells it */
    const char *algo; /* cfssl's key.algo */
    int size;         /* cfssl's key.size */
} alg_t;

static const alg_t algs[] = {
    {"P-256", "ecdsa", 256},
    {"P-384", "ecdsa", 384},
    {"RSA-2048", "rsa", 2048},
    {"RSA-3072", "rsa", 3072},
};

typedef struct opts {
    const char *base; /* --url, without trailing '/' */
    const alg_t *alg;
    long concurrency;
    long count;     /* --count; 0: run for --seconds */
    double seconds; /* --seconds */
    const char *profile;
    long timeout_s; /* per request */
    bool csv;
} opts_t;

/* A response being received. */
typedef struct buf {
    char *data; /* NUL-terminated once anything arrived */
    size_t len, cap;
    bool too_big;
} buf_t;

/* One request in flight: its easy handle (reused), body and response. */
typedef struct slot {
    CURL *easy;
    char *body; /* json_dumps'd */
    buf_t resp;
    long n; /* request number, from 1 */
    double started;
} slot_t;

/* One run of the load and what it measured. */
typedef struct bench {
    const opts_t *opts;
    char *url; /* base + NEWCERT_PATH */
    CURLM *multi;
    struct curl_slist *headers;
    slot_t *slots;
    long started_n, in_flight;
    double t0, last_done;
    size_t ok, errors;
    double *latency_ms; /* successful requests only */
    size_t latency_cap;
    char first_error[512];
    bool unreachable; /* a connection was refused mid-run: stop starting requests */
} bench_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pkcs-bench-cfssl [--url BASE] [--alg ALG] [--concurrency C]\n"
            "                        [--count N | --seconds S] [--profile NAME] [--csv]\n\n"
            "Measures cfssl doing what the connector does: POST BASE" NEWCERT_PATH " (cfssl\n"
            "generates the key pair and signs its certificate) with C requests in flight at\n"
            "once, each for its own subject (CN=User 000001,OU=Load,O=Contoso, e-mail SAN\n"
            "user000001@contoso.com, ...). A request succeeds on HTTP 200 with \"success\": true\n"
            "and a certificate in the result.\n\n"
            "options:\n"
            "  --url BASE        cfssl serve's base URL (default http://127.0.0.1:8888)\n"
            "  --alg ALG         P-256 (default), P-384, RSA-2048 or RSA-3072\n"
            "  --concurrency C   requests in flight at once (default 2)\n"
            "  --count N         send N requests\n"
            "  --seconds S       or start requests for S seconds, then wait for those in flight\n"
            "                    (default: 10 s)\n"
            "  --profile NAME    the cfssl signing profile (default: cfssl's default profile;\n"
            "                    cfssl 1.2 falls back to it for an unknown name, and its newcert\n"
            "                    does not ask for a profile's auth key)\n"
            "  --timeout S       give up on one request after S seconds (default 60)\n"
            "  --csv             print one CSV line instead of the summary:\n"
            "                    alg,concurrency,requests,errors,seconds,req_per_s,p50_ms,p90_ms,\n"
            "                    p99_ms,max_ms,mean_ms\n\n"
            "requests = successes + errors; seconds = from the first request started to the last\n"
            "response; req_per_s = successes / seconds; latency (ms, from handing a request to\n"
            "libcurl to its complete response) over successes only, percentiles nearest-rank;\n"
            "the latency fields are empty when nothing succeeded.\n\n"
            "Exits 0 when every request succeeded, 1 when cfssl cannot be reached at BASE or a\n"
            "request failed (the first failure is shown on stderr), 2 for bad options.\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, TOOL ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* ---- options ------------------------------------------------------------------------------ */

static bool parse_seconds(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v <= 0 || v > 86400)
        return false;
    *out = v;
    return true;
}

static const alg_t *find_alg(const char *name)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    return NULL;
}

/* parse_opts fills o from argv; returns -1 to go on, else the exit code. */
static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"alg", required_argument, NULL, 'a'},
        {"concurrency", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"profile", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'},
        {"csv", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char base[2048];
    const char *url = "http://127.0.0.1:8888";
    bool have_seconds = false;
    int c, index = 0;
    *o = (opts_t){.alg = &algs[0], .concurrency = 2, .seconds = 10, .timeout_s = 60};
    while ((c = getopt_long(argc, argv, "h", longopts, &index)) != -1) {
        const char *want = NULL; /* set when optarg is not a good value */
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'a':
            if ((o->alg = find_alg(optarg)) == NULL)
                want = "P-256, P-384, RSA-2048 or RSA-3072";
            break;
        case 'c':
            if (!pc_parse_long(optarg, 1, CONCURRENCY_MAX, &o->concurrency))
                want = "a number from 1 to 1024";
            break;
        case 'n':
            if (!pc_parse_long(optarg, 1, 100000000, &o->count))
                want = "a number from 1";
            break;
        case 's':
            if (!(have_seconds = parse_seconds(optarg, &o->seconds)))
                want = "seconds, more than 0";
            break;
        case 'p':
            o->profile = optarg;
            break;
        case 't':
            if (!pc_parse_long(optarg, 1, 3600, &o->timeout_s))
                want = "seconds from 1 to 3600";
            break;
        case 'v':
            o->csv = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "see '" TOOL " --help'\n");
            return 2;
        }
        if (want != NULL) {
            fprintf(stderr, TOOL ": --%s wants %s, not \"%s\"\n", longopts[index].name, want,
                    optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, TOOL ": unexpected argument \"%s\"; see --help\n", argv[optind]);
        return 2;
    }
    if (o->count > 0 && have_seconds) {
        fprintf(stderr, TOOL ": give --count N or --seconds S, not both\n");
        return 2;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        len >= sizeof(base)) {
        fprintf(stderr,
                TOOL ": --url wants cfssl's base URL, e.g. http://127.0.0.1:8888, not "
                     "\"%s\"\n",
                url);
        return 2;
    }
    memcpy(base, url, len);
    base[len] = '\0';
    o->base = base;
    return -1;
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_t *b = userdata;
    size_t n = size * nmemb;
    if (b->too_big || b->len + n > RESPONSE_MAX) {
        b->too_big = true;
        return n; /* keep reading, judge it too big at the end */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 8192 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return 0; /* libcurl fails the transfer: CURLE_WRITE_ERROR */
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* set_post points easy at url with body, its response going to resp. */
static bool set_post(CURL *easy, const char *url, const char *body, struct curl_slist *headers,
                     buf_t *resp, long timeout_ms)
{
    return curl_easy_setopt(easy, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body)) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_WRITEDATA, resp) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
}

/* excerpt gives the start of a response body on one line, for an error message. */
static void excerpt(const buf_t *resp, char *out, size_t out_len)
{
    if (resp->len == 0) {
        snprintf(out, out_len, "an empty body");
        return;
    }
    snprintf(out, out_len, "\"%.120s%s\"", resp->data, resp->len > 120 ? "..." : "");
    for (char *p = out; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* cfssl_error gives the message of cfssl's {"errors": [{"message": ...}]}, else the body. */
static void cfssl_error(const buf_t *resp, json_t *json, char *out, size_t out_len)
{
    json_t *first = json_array_get(json_object_get(json, "errors"), 0);
    const char *msg = json_string_value(json_object_get(first, "message"));
    if (msg != NULL)
        snprintf(out, out_len, "%s", msg);
    else
        excerpt(resp, out, out_len);
}

/* judge tells whether a finished newcert request succeeded; else why in why. */
static bool judge(CURL *easy, CURLcode res, const buf_t *resp, char *why, size_t why_len)
{
    long status = 0;
    char detail[300];
    json_t *json = NULL;
    bool ok = false;
    if (res != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_easy_strerror(res));
        return false;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (resp->too_big) {
        snprintf(why, why_len, "HTTP %ld with a response over %zu bytes", status, RESPONSE_MAX);
        return false;
    }
    if (resp->len > 0)
        json = json_loadb(resp->data, resp->len, 0, NULL);
    const char *cert =
        json_string_value(json_object_get(json_object_get(json, "result"), "certificate"));
    if (status != 200) {
        cfssl_error(resp, json, detail, sizeof(detail));
        snprintf(why, why_len, "HTTP %ld: %s", status, detail);
    } else if (json == NULL) {
        excerpt(resp, detail, sizeof(detail));
        snprintf(why, why_len, "HTTP 200 but not JSON: %s", detail);
    } else if (!json_is_true(json_object_get(json, "success"))) {
        cfssl_error(resp, json, detail, sizeof(detail));
        snprintf(why, why_len, "\"success\" is not true: %s", detail);
    } else if (cert == NULL || strncmp(cert, CERT_PEM, strlen(CERT_PEM)) != 0) {
        snprintf(why, why_len, "HTTP 200 and success, but no certificate in the result");
    } else {
        ok = true;
    }
    json_decref(json);
    return ok;
}

/* probe asks cfssl for its CA (POST /info) once, so that a wrong --url or a stopped cfssl is
 * a clear error within seconds rather than a run of failed requests. Returns 0 or 1. */
static int probe(const opts_t *o, struct curl_slist *headers)
{
    char url[2100], why[600];
    buf_t resp = {0};
    int rc = 1;
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return fail("cannot create a libcurl handle");
    snprintf(url, sizeof(url), "%s" INFO_PATH, o->base);
    if (!set_post(easy, url, "{}", headers, &resp, PROBE_TIMEOUT_MS)) {
        rc = fail("cannot set up the request to %s", url);
        goto out_free;
    }
    CURLcode res = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *json =
        res == CURLE_OK ? json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL) : NULL;
    bool cfssl = status == 200 && json_is_true(json_object_get(json, "success"));
    json_decref(json);
    if (res != CURLE_OK) {
        rc = fail("cannot reach cfssl at %s: %s; is `cfssl serve` running there? (for a test "
                  "CA: bash tests/lib/cfssl.sh setup DIR && bash tests/lib/cfssl.sh start DIR)",
                  o->base, curl_easy_strerror(res));
    } else if (!cfssl) {
        excerpt(&resp, why, sizeof(why));
        rc = fail("%s answered HTTP %ld with %s, not as cfssl does; --url wants the base URL of a "
                  "cfssl serve started with -ca and -ca-key",
                  url, status, why);
    } else {
        rc = 0;
    }
out_free:
    curl_easy_cleanup(easy);
    free(resp.data);
    return rc;
}

/* ---- the load ----------------------------------------------------------------------------- */

/* request_body is request n's newcert body (free it), NULL without memory. */
static char *request_body(const opts_t *o, long n)
{
    char cn[64], email[64];
    snprintf(cn, sizeof(cn), "User %06ld", n);
    snprintf(email, sizeof(email), "user%06ld@contoso.com", n);
    json_t *req = json_pack("{s:{s:s, s:[{s:s, s:s}], s:[s], s:{s:s, s:i}}}", "request", "CN", cn,
                            "names", "O", "Contoso", "OU", "Load", "hosts", email, "key", "algo",
                            o->alg->algo, "size", o->alg->size);
    if (req != NULL && o->profile != NULL)
        json_object_set_new(req, "profile", json_string(o->profile));
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return text;
}

static bool more_to_start(const bench_t *b)
{
    if (b->unreachable)
        return false;
    if (b->opts->count > 0)
        return b->started_n < b->opts->count;
    return pc_mono_s() - b->t0 < b->opts->seconds;
}

static int start_one(bench_t *b, slot_t *slot)
{
    slot->n = ++b->started_n;
    slot->resp.len = 0;
    slot->resp.too_big = false;
    if ((slot->body = request_body(b->opts, slot->n)) == NULL)
        return fail("out of memory");
    if (!set_post(slot->easy, b->url, slot->body, b->headers, &slot->resp,
                  b->opts->timeout_s * 1000) ||
        curl_easy_setopt(slot->easy, CURLOPT_PRIVATE, slot) != CURLE_OK)
        return fail("cannot set up request %ld to %s", slot->n, b->url);
    slot->started = pc_mono_s();
    if (curl_multi_add_handle(b->multi, slot->easy) != CURLM_OK)
        return fail("cannot start request %ld", slot->n);
    b->in_flight++;
    return 0;
}

static void record_latency(bench_t *b, double ms)
{
    if (b->ok == b->latency_cap) {
        size_t cap = b->latency_cap == 0 ? 1024 : b->latency_cap * 2;
        double *grown = realloc(b->latency_ms, cap * sizeof(*grown));
        if (grown == NULL)
            return; /* the count goes on; this latency is lost */
        b->latency_ms = grown;
        b->latency_cap = cap;
    }
    b->latency_ms[b->ok] = ms;
}

static void finish_one(bench_t *b, CURLMsg *msg)
{
    char *priv = NULL, why[400];
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    slot_t *slot = (slot_t *)priv;
    double done = pc_mono_s();
    b->last_done = done;
    if (judge(slot->easy, msg->data.result, &slot->resp, why, sizeof(why))) {
        record_latency(b, (done - slot->started) * 1000.0);
        b->ok++;
    } else {
        if (b->errors++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "request %ld: %s", slot->n, why);
        /* cfssl went away: what follows would measure nothing */
        if (msg->data.result == CURLE_COULDNT_CONNECT)
            b->unreachable = true;
    }
    curl_multi_remove_handle(b->multi, slot->easy);
    free(slot->body);
    slot->body = NULL;
    b->in_flight--;
}

/* run keeps up to --concurrency requests in flight until --count were started or --seconds
 * passed, then waits for those in flight. Returns 0, or 1 when it could not go on. */
static int run(bench_t *b)
{
    long conc = b->opts->concurrency;
    int running = 0, left = 0;
    b->t0 = b->last_done = pc_mono_s();
    for (;;) {
        for (long i = 0; i < conc && b->in_flight < conc && more_to_start(b); i++) {
            if (b->slots[i].body == NULL && start_one(b, &b->slots[i]) != 0)
                return 1;
        }
        if (b->in_flight == 0)
            return 0;
        if (curl_multi_perform(b->multi, &running) != CURLM_OK)
            return fail("libcurl's multi interface failed");
        bool freed = false;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                finish_one(b, msg);
                freed = true;
            }
        }
        if (!freed && curl_multi_poll(b->multi, NULL, 0, POLL_MS, NULL) != CURLM_OK)
            return fail("libcurl's multi interface failed while waiting");
    }
}

static void report(bench_t *b)
{
    const opts_t *o = b->opts;
    size_t n = b->ok < b->latency_cap ? b->ok : b->latency_cap;
    double secs = b->last_done - b->t0, sum = 0;
    double rate = secs > 0 ? (double)b->ok / secs : 0;
    if (n > 0)
        pc_sort_doubles(b->latency_ms, n);
    for (size_t i = 0; i < n; i++)
        sum += b->latency_ms[i];
    if (o->csv) {
        printf("%s,%ld,%zu,%zu,%.3f,%.2f", o->alg->name, o->concurrency, b->ok + b->errors,
               b->errors, secs, rate);
        if (n > 0)
            printf(",%.1f,%.1f,%.1f,%.1f,%.1f\n", pc_percentile(b->latency_ms, n, 0.50),
                   pc_percentile(b->latency_ms, n, 0.90), pc_percentile(b->latency_ms, n, 0.99),
                   b->latency_ms[n - 1], sum / (double)n);
        else
            printf(",,,,,\n");
    } else {
        printf("cfssl newcert %s at %s (profile %s), concurrency %ld: %zu requests, %zu errors "
               "in %.3f s: %.2f certificates/s\n",
               o->alg->name, o->base, o->profile != NULL ? o->profile : "default", o->concurrency,
               b->ok + b->errors, b->errors, secs, rate);
        if (n > 0)
            printf("latency ms (request -> response): p50 %.1f, p90 %.1f, p99 %.1f, max %.1f, "
                   "mean %.1f over %zu successes\n",
                   pc_percentile(b->latency_ms, n, 0.50), pc_percentile(b->latency_ms, n, 0.90),
                   pc_percentile(b->latency_ms, n, 0.99), b->latency_ms[n - 1], sum / (double)n, n);
    }
    fflush(stdout);
    if (b->errors > 0)
        fail("%zu of %zu requests failed; the first: %s%s", b->errors, b->ok + b->errors,
             b->first_error,
             b->unreachable ? " (cfssl stopped accepting connections: run cut short)" : "");
}

static int bench_init(bench_t *b, const opts_t *o)
{
    size_t len = strlen(o->base) + sizeof(NEWCERT_PATH);
    b->opts = o;
    if ((b->url = malloc(len)) == NULL ||
        (b->slots = calloc((size_t)o->concurrency, sizeof(*b->slots))) == NULL ||
        (b->multi = curl_multi_init()) == NULL)
        return fail("out of memory");
    snprintf(b->url, len, "%s" NEWCERT_PATH, o->base);
    curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, o->concurrency);
    for (long i = 0; i < o->concurrency; i++)
        if ((b->slots[i].easy = curl_easy_init()) == NULL)
            return fail("cannot create a libcurl handle");
    return 0;
}

static void bench_free(bench_t *b)
{
    for (long i = 0; b->slots != NULL && i < b->opts->concurrency; i++) {
        if (b->slots[i].body != NULL)
            curl_multi_remove_handle(b->multi, b->slots[i].easy);
        curl_easy_cleanup(b->slots[i].easy);
        free(b->slots[i].body);
        free(b->slots[i].resp.data);
    }
    free(b->slots);
    if (b->multi != NULL)
        curl_multi_cleanup(b->multi);
    free(b->latency_ms);
    free(b->url);
}

int main(int argc, char **argv)
{
    opts_t o;
    bench_t b = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail("cannot initialise libcurl");
    /* cfssl reads JSON whatever the type says; "Expect:" off: no 100-continue round trip */
    b.headers = curl_slist_append(NULL, "Content-Type: application/json");
    b.headers = b.headers != NULL ? curl_slist_append(b.headers, "Expect:") : NULL;
    if (b.headers == NULL) {
        rc = fail("out of memory");
        goto out_cleanup;
    }
    if ((rc = probe(&o, b.headers)) != 0 || (rc = bench_init(&b, &o)) != 0)
        goto out_free_bench;
    rc = run(&b);
    report(&b);
    if (rc == 0 && (b.errors > 0 || b.ok == 0))
        rc = 1;
out_free_bench:
    if (b.opts != NULL)
        bench_free(&b);
out_cleanup:
    curl_slist_free_all(b.headers);
    curl_global_cleanup();
    return rc;
}
