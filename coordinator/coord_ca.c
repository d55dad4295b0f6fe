/*
 * coord_ca.c - the CA side of the coordinator's HTTP port: each CA's certificate (GET
 * /ca/NAME.crt as PEM, /ca/NAME.der as DER, the URL a certificate's AIA points at) and each
 * CA's CRL (GET /crl/NAME.crl, DER, the URL of its CRL distribution point): a local CA's made
 * here, a cfssl CA's fetched from cfssl (below).
 *
 * Signing a CRL reads the CA's whole index from Redis, so it runs on a pool thread and HTTP
 * serves the last one made. A CRL is made at start; on change: every CRL_CHECK_MS the number
 * of revoked certificates is read (one Redis command, pool thread), and a new revocation makes
 * a new CRL at once; when it was asked for since the last one, at most once a minute
 * (CRL_MIN_INTERVAL_MS); and at least once an hour (CRL_MAX_AGE_MS), with a nextUpdate a day
 * ahead, so a fetched CRL is never stale for a relying party. Loop thread, except make_crl and
 * count_revoked (pool thread).
 *
 * A cfssl CA's CRL is made by cfssl from its own database (pc_ca_cfssl_crl, on the loop): there
 * is no cheap count of its revocations, so it is fetched at start, again when it was asked for
 * and is older than REMOTE_MIN_INTERVAL_MS, and at least once an hour; the last good one is
 * served meanwhile, and 503 with the reason while there is none (cfssl down, or a cfssl without
 * a CRL endpoint).
 *
 * Also each CA's health for the status page (/api/cas): what the workers say (a CA a worker
 * cannot use now is in its heartbeat's ca_down), and for the local CAs, whose certificate and
 * CRLs are made here, the certificate's expiry and the CRL's age and last error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca_cfssl.h"
#include "ca_local.h"
#include "coord.h"
#include "log.h"
#include "clock.h"
#include "subject.h"

#define CRL_CHECK_MS 5000
#define CRL_MIN_INTERVAL_MS 60000
#define CRL_MAX_AGE_MS (3600 * 1000)
#define CRL_NEXT_UPDATE_HOURS 24
#define REMOTE_MIN_INTERVAL_MS 10000
#define CERT_WARN_DAYS 30 /* a CA certificate this close to its end is a warning */

struct pc_coord_crl {
    pc_ca_t *ca; /* borrowed from the engine */
    pc_coord_t *coord;
    bool local;
    bool remote;        /* a cfssl CA: its CRL comes from cfssl */
    unsigned char *der; /* the CRL served, OPENSSL_malloc'd */
    size_t len;
    int64_t made_ms;
    bool requested;        /* asked for since it was made */
    bool busy;             /* a new one is being made, or the revocations counted */
    uint64_t revoked_made; /* revoked certificates when the served CRL was made */
    uint64_t revoked_now;  /* the last count read */
    bool counting;         /* busy with a count, not a CRL */
    uv_work_t work;
    unsigned char *new_der;
    size_t new_len;
    pc_err_t err;
    pc_diag_t diag;
    char last_error[sizeof(pc_diag_t)];
};

static void make_crl(uv_work_t *work) /* pool thread */
{
    pc_coord_crl_t *crl = work->data;
    /* counted first: a revocation in between is in the CRL and makes one more, never one less */
    crl->err = pc_ca_local_revoked_count(crl->ca, &crl->revoked_now, &crl->diag);
    if (crl->err == PC_OK)
        crl->err = pc_ca_local_crl(crl->ca, CRL_NEXT_UPDATE_HOURS, &crl->new_der, &crl->new_len,
                                   &crl->diag);
}

static void count_revoked(uv_work_t *work) /* pool thread */
{
    pc_coord_crl_t *crl = work->data;
    crl->err = pc_ca_local_revoked_count(crl->ca, &crl->revoked_now, &crl->diag);
}

static void after_make_crl(uv_work_t *work, int status)
{
    pc_coord_crl_t *crl = work->data;
    crl->busy = false;
    if (status != 0 || crl->err != PC_OK) {
        const char *why = status != 0 ? "cancelled" : crl->diag.msg;
        if (strcmp(why, crl->last_error) != 0)
            pc_log(PC_LOG_ERROR, "crl_failed", why, "ca", crl->ca->name, NULL);
        snprintf(crl->last_error, sizeof(crl->last_error), "%s", why);
        return;
    }
    pc_log(crl->der == NULL ? PC_LOG_INFO : PC_LOG_DEBUG, "crl_published", "signed a new CRL", "ca",
           crl->ca->name, NULL);
    OPENSSL_free(crl->der);
    crl->der = crl->new_der;
    crl->len = crl->new_len;
    crl->new_der = NULL;
    crl->revoked_made = crl->revoked_now;
    crl->made_ms = pc_now_ms();
    crl->requested = false;
    crl->last_error[0] = '\0';
}

/* publish takes a new CRL (DER, copied) as the one served. */
static void publish(pc_coord_crl_t *crl, const unsigned char *der, size_t len)
{
    unsigned char *copy = OPENSSL_malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return; /* the old one stays; the next refresh tries again */
    memcpy(copy, der, len);
    pc_log(crl->der == NULL ? PC_LOG_INFO : PC_LOG_DEBUG, "crl_published",
           "fetched a new CRL from cfssl", "ca", crl->ca->name, NULL);
    OPENSSL_free(crl->der);
    crl->der = copy;
    crl->len = len;
    crl->made_ms = pc_now_ms();
    crl->requested = false;
    crl->last_error[0] = '\0';
}

static void on_remote_crl(void *arg, pc_err_t err, const unsigned char *der, size_t len,
                          const pc_diag_t *diag)
{
    pc_coord_crl_t *crl = arg;
    crl->busy = false;
    if (crl->coord->stopping)
        return;
    if (err == PC_OK) {
        publish(crl, der, len);
        return;
    }
    if (strcmp(diag->msg, crl->last_error) != 0)
        pc_log(PC_LOG_ERROR, "crl_failed", diag->msg, "ca", crl->ca->name, "code",
               pc_err_code_name(err), NULL);
    snprintf(crl->last_error, sizeof(crl->last_error), "%s", diag->msg);
}

static void start_crl(pc_coord_t *coord, pc_coord_crl_t *crl)
{
    if (crl->busy || coord->stopping)
        return;
    if (crl->remote) {
        crl->busy = true;
        crl->coord = coord;
        pc_ca_cfssl_crl(crl->ca, CRL_NEXT_UPDATE_HOURS, on_remote_crl, crl);
        return;
    }
    if (!crl->local)
        return;
    crl->work.data = crl;
    if (uv_queue_work(coord->loop, &crl->work, make_crl, after_make_crl) == 0)
        crl->busy = true;
}

static void after_count(uv_work_t *work, int status)
{
    pc_coord_crl_t *crl = work->data;
    pc_coord_t *coord = crl->coord;
    crl->busy = false;
    crl->counting = false;
    if (status == 0 && crl->err == PC_OK && crl->der != NULL &&
        crl->revoked_now != crl->revoked_made)
        start_crl(coord, crl);
}

static void start_count(pc_coord_t *coord, pc_coord_crl_t *crl)
{
    if (crl->busy || !crl->local || coord->stopping || crl->der == NULL)
        return;
    crl->work.data = crl;
    crl->coord = coord;
    if (uv_queue_work(coord->loop, &crl->work, count_revoked, after_count) == 0)
        crl->busy = crl->counting = true;
}

static void on_crl_timer(uv_timer_t *timer)
{
    pc_coord_t *coord = timer->data;
    int64_t now = pc_now_ms();
    for (size_t i = 0; i < coord->engine->ca_count; i++) {
        pc_coord_crl_t *crl = &coord->crls[i];
        int64_t age = now - crl->made_ms;
        if (crl->remote && (crl->der == NULL || age >= CRL_MAX_AGE_MS ||
                            (crl->requested && age >= REMOTE_MIN_INTERVAL_MS)))
            start_crl(coord, crl);
        else if (crl->remote)
            continue;
        else if (crl->der == NULL || age >= CRL_MAX_AGE_MS ||
                 (crl->requested && age >= CRL_MIN_INTERVAL_MS))
            start_crl(coord, crl);
        else
            start_count(coord, crl);
    }
}

pc_err_t pc_coord_ca_start(pc_coord_t *coord, pc_diag_t *diag)
{
    size_t n = coord->engine->ca_count;
    coord->crls = calloc(n > 0 ? n : 1, sizeof(*coord->crls));
    if (coord->crls == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        coord->crls[i].ca = coord->engine->cas[i];
        coord->crls[i].local = strcmp(coord->engine->cas[i]->ops->kind, "local") == 0;
        coord->crls[i].remote = strcmp(coord->engine->cas[i]->ops->kind, "cfssl") == 0;
        coord->crls[i].coord = coord;
        /* a cfssl CA's first fetch waits for its CA certificate: the timer's first tick */
        if (coord->crls[i].local)
            start_crl(coord, &coord->crls[i]);
    }
    uv_timer_start(&coord->crl_timer, on_crl_timer, CRL_CHECK_MS, CRL_CHECK_MS);
    return PC_OK;
}

void pc_coord_ca_free(pc_coord_t *coord)
{
    for (size_t i = 0; coord->crls != NULL && i < coord->engine->ca_count; i++) {
        OPENSSL_free(coord->crls[i].der);
        OPENSSL_free(coord->crls[i].new_der);
    }
    free(coord->crls);
    coord->crls = NULL;
}

/* ---- serving ----------------------------------------------------------------------------- */

/* split_name cuts "/prefix/NAME.ext" into name and ext; false if path does not start so. */
static bool split_name(const char *path, const char *prefix, char *name, size_t size,
                       const char **ext)
{
    size_t pre = strlen(prefix);
    if (strncmp(path, prefix, pre) != 0)
        return false;
    const char *rest = path + pre, *dot = strrchr(rest, '.');
    if (dot == NULL || dot == rest || (size_t)(dot - rest) >= size || strchr(rest, '/') != NULL)
        return false;
    memcpy(name, rest, (size_t)(dot - rest));
    name[dot - rest] = '\0';
    *ext = dot + 1;
    return true;
}

static void respond_bytes(pc_http_response_t *resp, const char *type, const void *data, size_t len)
{
    resp->status = 200;
    resp->content_type = type;
    resp->body = malloc(len > 0 ? len : 1);
    if (resp->body == NULL) {
        pc_http_respond_text(resp, 500, "out of memory\n");
        return;
    }
    memcpy(resp->body, data, len);
    resp->body_len = len;
}

static void serve_cert(pc_coord_t *coord, const char *name, const char *ext,
                       pc_http_response_t *resp)
{
    char msg[300];
    bool der = strcmp(ext, "der") == 0;
    pc_ca_t *ca = pc_engine_find_ca(coord->engine, name);
    STACK_OF(X509) *chain = ca != NULL ? ca->ops->get0_chain(ca) : NULL;
    X509 *cert = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
    if (!der && strcmp(ext, "crt") != 0 && strcmp(ext, "pem") != 0) {
        pc_http_respond_text(resp, 404, "not found: use /ca/NAME.crt (PEM) or /ca/NAME.der\n");
        return;
    }
    if (ca == NULL || cert == NULL) {
        snprintf(msg, sizeof(msg), "%s: no CA called \"%s\" is configured%s\n",
                 ca == NULL ? "not found" : "not available", name,
                 ca == NULL ? "" : " with a certificate yet");
        pc_http_respond_text(resp, ca == NULL ? 404 : 503, msg);
        return;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (bio != NULL && (der ? i2d_X509_bio(bio, cert) : PEM_write_bio_X509(bio, cert)) == 1)
        len = BIO_get_mem_data(bio, &data);
    if (len > 0)
        respond_bytes(resp, der ? "application/pkix-cert" : "application/x-pem-file", data,
                      (size_t)len);
    else
        pc_http_respond_text(resp, 500, "cannot encode the CA certificate\n");
    BIO_free(bio);
}

static void serve_crl(pc_coord_t *coord, const char *name, pc_http_response_t *resp)
{
    char msg[800];
    for (size_t i = 0; i < coord->engine->ca_count; i++) {
        pc_coord_crl_t *crl = &coord->crls[i];
        if (strcmp(crl->ca->name, name) != 0)
            continue;
        crl->requested = true;
        if (!crl->local && !crl->remote)
            snprintf(msg, sizeof(msg), "CA \"%s\" publishes its own CRL\n", name);
        else if (crl->der != NULL) {
            respond_bytes(resp, "application/pkix-crl", crl->der, crl->len);
            return;
        } else if (crl->last_error[0] != '\0')
            snprintf(msg, sizeof(msg), "no CRL for CA \"%s\": %s\n", name, crl->last_error);
        else
            snprintf(msg, sizeof(msg), "the CRL of CA \"%s\" is being made; retry in a second\n",
                     name);
        pc_http_respond_text(resp, crl->local || crl->remote ? 503 : 404, msg);
        return;
    }
    snprintf(msg, sizeof(msg), "not found: no CA called \"%s\" is configured\n", name);
    pc_http_respond_text(resp, 404, msg);
}

bool pc_coord_ca_serve(pc_coord_t *coord, const char *path, pc_http_response_t *resp)
{
    char name[128];
    const char *ext;
    if (split_name(path, "/ca/", name, sizeof(name), &ext)) {
        serve_cert(coord, name, ext, resp);
        return true;
    }
    if (split_name(path, "/crl/", name, sizeof(name), &ext)) {
        if (strcmp(ext, "crl") == 0)
            serve_crl(coord, name, resp);
        else
            pc_http_respond_text(resp, 404, "not found: use /crl/NAME.crl\n");
        return true;
    }
    return false;
}

/* ---- health ------------------------------------------------------------------------------ */

/* cert_view: the CA certificate's subject and end, or null when not known here. *days_left is
 * the whole days to its end (negative: expired). */
static json_t *cert_view(pc_ca_t *ca, int64_t now, int *days_left)
{
    STACK_OF(X509) *chain = ca != NULL ? pc_ca_get0_chain(ca) : NULL;
    X509 *cert = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
    char subject[512];
    struct tm tm;
    int days = 0, secs = 0;
    if (cert == NULL || !ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) ||
        !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
        return json_null();
    int64_t not_after = (int64_t)timegm(&tm) * 1000;
    *days_left = days;
    if (!pc_name_text(X509_get_subject_name(cert), subject, sizeof(subject)))
        subject[0] = '\0';
    return json_pack("{s:s,s:I,s:i}", "subject", subject, "not_after_ms", (json_int_t)not_after,
                     "expires_in_days", (int)((not_after - now) / (86400 * 1000)));
}

/* crl_view: the CRL served here (a local CA's, or a cfssl CA's fetched from cfssl), or null.
 * A cfssl CRL's revocations are not counted here: null. */
static json_t *crl_view(const pc_coord_crl_t *crl, int64_t now)
{
    if (crl == NULL || (!crl->local && !crl->remote))
        return json_null();
    return json_pack(
        "{s:o,s:o,s:o,s:o}", "made_at_ms",
        crl->der != NULL ? json_integer(crl->made_ms) : json_null(), "age_s",
        crl->der != NULL ? json_integer((now - crl->made_ms) / 1000) : json_null(), "revoked",
        crl->local ? json_integer((json_int_t)crl->revoked_made) : json_null(), "error",
        crl->last_error[0] != '\0' ? json_string(crl->last_error) : json_null());
}

/* down_on lists the working workers that cannot use the CA called name. *working counts the
 * workers that could say. */
static json_t *down_on(const json_t *workers, const char *name, int *working)
{
    json_t *ids = json_array();
    size_t i, j;
    const json_t *w, *n;
    json_array_foreach(workers, i, w)
    {
        const char *state = json_string_value(json_object_get(w, "state"));
        if (state == NULL || strcmp(state, "Inactive") == 0)
            continue;
        (*working)++;
        json_array_foreach(json_object_get(json_object_get(w, "counts"), "ca_down"), j, n)
        {
            if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
                json_array_append(ids, json_object_get(w, "id"));
        }
    }
    return ids;
}

json_t *pc_coord_ca_view(pc_coord_t *coord, const json_t *workers, int64_t now)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < coord->cfg->ca_count; i++) {
        const pc_config_ca_t *c = &coord->cfg->cas[i];
        pc_coord_crl_t *crl = NULL;
        for (size_t k = 0; k < coord->engine->ca_count; k++)
            if (strcmp(coord->crls[k].ca->name, c->name) == 0)
                crl = &coord->crls[k];
        int working = 0, days_left = INT32_MAX;
        json_t *down = down_on(workers, c->name, &working);
        json_t *cert = cert_view(crl != NULL ? crl->ca : NULL, now, &days_left);
        char reason[sizeof(pc_diag_t) + 64] = "";
        const char *health = "OK";
        if (json_array_size(down) > 0) {
            health = "Down";
            snprintf(reason, sizeof(reason),
                     "%zu of %d working workers cannot use it (circuit "
                     "breaker open, or its certificate not fetched)",
                     json_array_size(down), working);
        } else if (days_left < 0) {
            health = "Down";
            snprintf(reason, sizeof(reason), "its certificate has expired");
        } else if (crl != NULL && crl->last_error[0] != '\0') {
            health = "Failing";
            snprintf(reason, sizeof(reason), "CRL: %s", crl->last_error);
        } else if (days_left < CERT_WARN_DAYS) {
            health = "Warning";
            snprintf(reason, sizeof(reason), "its certificate expires in %d days", days_left);
        } else if (crl == NULL && working == 0) {
            health = "Unknown";
            snprintf(reason, sizeof(reason), "no working worker to ask");
        }
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o}", "name", c->name, "type",
                            c->type != NULL ? c->type : "local", "health", health, "reason",
                            reason[0] != '\0' ? json_string(reason) : json_null(), "down_on", down,
                            "cert", cert, "crl", crl_view(crl, now)));
    }
    return list;
}
