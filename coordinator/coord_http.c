/*
 * coord_http.c - the coordinator's HTTP routes: the status page, the JSON API read by the page
 * and by scripts, Prometheus metrics, health and readiness, CA certificates and CRLs. Every
 * answer comes from the last snapshot, so a request never waits for Kafka or Redis. Loop
 * thread.
 *
 *   GET  /                      status page (HTML, refreshes itself from the API)
 *   GET  /api/fleet             workers with state, reason, counts, partitions
 *   GET  /api/workers/{id}      one worker
 *   GET  /api/totals            cluster counts, Active/Inactive, issue rate, lag
 *   GET  /api/lag               per partition of the requests topic
 *   GET  /api/topics            the three topics, as configured and as found, with problems
 *   POST /api/topics/ensure     create missing topics now (body ignored)
 *   GET  /metrics, /healthz, /readyz
 *   GET  /ca/NAME.crt|.der, /crl/NAME.crl
 *   POST /ocsp/NAME, GET /ocsp/NAME/{base64 request}   OCSP (coord_ocsp.c)
 */
#include <stdlib.h>
#include <string.h>

#include "coord.h"

void pc_coord_respond_json(pc_http_response_t *resp, int status, const json_t *doc)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = json_dumps(doc, JSON_COMPACT);
    if (resp->body == NULL) {
        pc_http_respond_text(resp, 500, "out of memory\n");
        return;
    }
    resp->body_len = strlen(resp->body);
    /* A newline makes curl output readable; JSON parsers do not mind. */
    char *more = realloc(resp->body, resp->body_len + 2);
    if (more != NULL) {
        resp->body = more;
        memcpy(resp->body + resp->body_len, "\n", 2);
        resp->body_len++;
    }
}

static void respond_error(pc_http_response_t *resp, int status, const char *msg)
{
    json_t *doc = json_pack("{s:s}", "error", msg);
    pc_coord_respond_json(resp, status, doc);
    json_decref(doc);
}

bool pc_coord_percent_decode(const char *text, char *out, size_t size)
{
    size_t n = 0;
    for (; *text != '\0'; text++) {
        char c = *text;
        if (c == '%') {
            char hex[3] = {text[1], text[1] != '\0' ? text[2] : '\0', '\0'};
            char *end;
            long v = strtol(hex, &end, 16);
            if (hex[0] == '\0' || hex[1] == '\0' || *end != '\0' || v <= 0)
                return false;
            c = (char)v;
            text += 2;
        }
        if (n + 1 >= size)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0;
}

static void serve_worker(pc_coord_t *coord, const char *encoded, pc_http_response_t *resp)
{
    char id[256];
    size_t i;
    json_t *w;
    if (!pc_coord_percent_decode(encoded, id, sizeof(id))) {
        respond_error(resp, 400, "bad worker id in the path; use /api/workers/{id}");
        return;
    }
    json_array_foreach(json_object_get(coord->view.fleet, "workers"), i, w)
    {
        if (strcmp(json_string_value(json_object_get(w, "id")), id) == 0) {
            pc_coord_respond_json(resp, 200, w);
            return;
        }
    }
    respond_error(resp, 404, "no such worker in the registry; see /api/fleet for the ids");
}

static void serve_ready(pc_coord_t *coord, pc_http_response_t *resp)
{
    char text[sizeof(pc_diag_t) + 2];
    if (coord->stopping)
        pc_http_respond_text(resp, 503, "stopping\n");
    else if (!coord->view.have)
        pc_http_respond_text(resp, 503, "starting: the first refresh has not finished\n");
    else if (!coord->view.redis_ok || !coord->view.kafka_ok) {
        snprintf(text, sizeof(text), "%s\n", coord->view.not_ready);
        pc_http_respond_text(resp, 503, text);
    } else
        pc_http_respond_text(resp, 200, "ready\n");
}

static void serve_api(pc_coord_t *coord, const char *path, pc_http_response_t *resp)
{
    const pc_coord_view_t *view = &coord->view;
    if (!view->have) {
        respond_error(resp, 503, "no data yet: the first refresh has not finished; retry");
        return;
    }
    if (strcmp(path, "/api/fleet") == 0)
        pc_coord_respond_json(resp, 200, view->fleet);
    else if (strcmp(path, "/api/totals") == 0)
        pc_coord_respond_json(resp, 200, view->totals);
    else if (strcmp(path, "/api/lag") == 0)
        pc_coord_respond_json(resp, 200, view->lag);
    else if (strcmp(path, "/api/topics") == 0)
        pc_coord_respond_json(resp, 200, view->topics);
    else if (strncmp(path, "/api/workers/", 13) == 0)
        serve_worker(coord, path + 13, resp);
    else
        respond_error(resp, 404,
                      "no such endpoint; see /api/fleet, /api/totals, /api/lag, "
                      "/api/topics, /api/workers/{id}");
}

static void serve_ensure(pc_coord_t *coord, const char *method, pc_http_response_t *resp)
{
    if (strcmp(method, "POST") != 0) {
        respond_error(resp, 405, "use POST to ask for the topics to be created");
        return;
    }
    coord->ensure = true;
    pc_coord_refresh_soon(coord, 0);
    json_t *doc = json_pack("{s:s}", "ensure",
                            "requested: missing topics are created within "
                            "seconds, see /api/topics");
    pc_coord_respond_json(resp, 202, doc);
    json_decref(doc);
}

void pc_coord_http_handler(void *arg, const char *method, const char *path,
                           pc_http_response_t *resp)
{
    pc_coord_t *coord = arg;
    if (strcmp(path, "/api/topics/ensure") == 0) {
        serve_ensure(coord, method, resp);
        return;
    }
    if (strncmp(path, "/ocsp/", 6) == 0) {
        pc_coord_ocsp_serve(coord, method, path, resp);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        pc_http_respond_text(resp, 405, "method not allowed: use GET\n");
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        pc_http_respond_text(resp, 200, pc_coord_page());
        resp->content_type = "text/html; charset=utf-8";
    } else if (strcmp(path, "/healthz") == 0) {
        pc_http_respond_text(resp, 200, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        serve_ready(coord, resp);
    } else if (strcmp(path, "/metrics") == 0) {
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = pc_metrics_render(coord->m.registry, &resp->body_len);
    } else if (strncmp(path, "/api/", 5) == 0) {
        serve_api(coord, path, resp);
    } else if (!pc_coord_ca_serve(coord, path, resp)) {
        pc_http_respond_text(resp, 404,
                             "not found: try /, /api/fleet, /metrics, /healthz, /readyz, "
                             "/ca/NAME.crt or /crl/NAME.crl\n");
    }
}
