/*
 * coord_http.c - the coordinator's HTTP routes: the status page, the JSON API read by the page
 * and by scripts, Prometheus metrics, health and readiness, CA certificates, CRLs and OCSP.
 * Every answer but the inventory's and OCSP's comes from the last snapshot, so a request never
 * waits for Kafka or Redis; those two wait for Redis (OCSP also for its signature, on the pool)
 * without holding the loop (pc_http_defer). Loop thread.
 *
 *   GET  /                      status page (HTML, refreshes itself from the API)
 *   GET  /api/fleet             workers with state, reason, counts, partitions
 *   GET  /api/workers/{id}      one worker
 *   GET  /api/totals            cluster counts, Active/Inactive, issue rate, lag
 *   GET  /api/lag               per partition of the requests topic
 *   GET  /api/topics            the topics, as configured and as found, with problems
 *   GET  /api/stats             totals since the cluster began; the last hour by minute
 *   GET  /api/cas               each CA's health, certificate expiry, CRL age (coord_ca.c)
 *   POST /api/topics/ensure     create missing topics now (body ignored)
 *   GET  /api/certs?tenant=T&.. the inventory, and /api/certs/CA/SERIAL?tenant=T (coord_certs.c)
 *   GET  /metrics, /healthz, /readyz
 *   GET  /ca/NAME.crt|.der, /crl/NAME.crl
 *   POST /ocsp/NAME, GET /ocsp/NAME/{base64 request}   OCSP (coord_ocsp.c)
 *   GET  /keys/results.pem      the public key results are signed with (worker.result_key_id)
 *
 * Reading is open (the coordinator listens on 127.0.0.1 unless told otherwise). /api/ is the
 * administrators' namespace: any other method there is an action and needs "Authorization:
 * Bearer TOKEN" with the token of coordinator.admin_token_file, so a write endpoint added under
 * /api/ later (revocation, inventory) is protected without a word. An endpoint meant for the
 * public that takes POST (OCSP) lives outside /api/ and answers for itself.
 */
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "log.h"

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
    else if (strcmp(path, "/api/stats") == 0)
        pc_coord_respond_json(resp, 200, view->stats_doc);
    else if (strcmp(path, "/api/cas") == 0)
        pc_coord_respond_json(resp, 200, view->cas);
    else if (strncmp(path, "/api/workers/", 13) == 0)
        serve_worker(coord, path + 13, resp);
    else
        respond_error(resp, 404,
                      "no such endpoint; see /api/fleet, /api/totals, /api/lag, "
                      "/api/topics, /api/stats, /api/cas, /api/workers/{id}, "
                      "/api/certs?tenant=T");
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

/* admin_allowed: 403 while no token is configured (write endpoints are off), 401 without the
 * right token. */
static bool admin_allowed(pc_coord_t *coord, const pc_http_request_t *req, pc_http_response_t *resp)
{
    if (!coord->admin_token_set) {
        respond_error(resp, 403,
                      "write endpoints are off: set coordinator.admin_token_file "
                      "(PC_ADMIN_TOKEN_FILE) to a file holding a token, and send it as "
                      "Authorization: Bearer TOKEN");
        return false;
    }
    if (pc_http_bearer_ok(req, &coord->admin_token))
        return true;
    pc_log(PC_LOG_WARN, "admin_refused", "a write request without the admin token", "method",
           req->method, "path", req->path, NULL);
    respond_error(resp, 401,
                  "a missing or wrong bearer token: send Authorization: Bearer TOKEN with the "
                  "token in coordinator.admin_token_file");
    resp->authenticate = "Bearer realm=\"pkcs-coordinator\"";
    return false;
}

void pc_coord_http_handler(void *arg, const pc_http_request_t *req, pc_http_response_t *resp)
{
    pc_coord_t *coord = arg;
    const char *method = req->method, *path = req->path;
    bool reading = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!reading && strncmp(path, "/api/", 5) == 0 && !admin_allowed(coord, req, resp))
        return;
    if (strcmp(path, "/api/topics/ensure") == 0) {
        serve_ensure(coord, method, resp);
        return;
    }
    if (strncmp(path, "/ocsp/", 6) == 0) {
        pc_coord_ocsp_serve(coord, req, resp);
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
    } else if (strcmp(path, "/api/certs") == 0 || strncmp(path, "/api/certs/", 11) == 0) {
        pc_coord_certs_serve(coord, path, resp);
    } else if (strncmp(path, "/api/", 5) == 0) {
        serve_api(coord, path, resp);
    } else if (strcmp(path, "/keys/results.pem") == 0) {
        if (coord->result_key_pem == NULL) {
            pc_http_respond_text(resp, 404,
                                 "no result key: the workers sign nothing (set "
                                 "worker.result_key_file)\n");
        } else {
            pc_http_respond_text(resp, 200, coord->result_key_pem);
            resp->content_type = "application/x-pem-file";
        }
    } else if (!pc_coord_ca_serve(coord, path, resp)) {
        pc_http_respond_text(resp, 404,
                             "not found: try /, /api/fleet, /metrics, /healthz, /readyz, "
                             "/ca/NAME.crt or /crl/NAME.crl\n");
    }
}
