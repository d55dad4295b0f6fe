/*
 * coord_certs.c - the inventory over HTTP: what the cluster delivered, for operators and their
 * scripts (pkcsctl certs) and the status page's search.
 *
 *   GET /api/certs?tenant=T[&device=D|&user=U|&request=R][&ca=C][&profile=P][&status=S]
 *                  [&expiring_days=N][&offset=O][&limit=L]
 *       -> {"certs": [...], "more": bool, "next_offset": N or null}
 *   GET /api/certs/CA/SERIAL?tenant=T  -> one certificate, or 404
 *
 * Every read is one pc_certs_find (lib/cluster/certs.c), never a SCAN: a page is a range of one
 * index of one tenant, so a tenant never sees another's certificates and a page costs the same
 * however large the inventory. Filters (ca, profile, status) apply to the page read, so a page
 * may hold fewer than `limit` certificates while `more` is true: follow next_offset until it is
 * null. The answer waits for Redis (pc_http_defer), never the loop. A parameter that cannot be
 * used is a 400 whose message says what to send instead. Loop thread.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "clock.h"
#include "coord.h"
#include "numbers.h"

#define ID_MAX 256 /* bytes of an id the inventory can index (certs.c) */
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define OFFSET_MAX 100000000L
#define EXPIRING_DAYS_MAX 3650
#define DAY_MS (86400LL * 1000)

/* What a query string may say; every value percent-decoded. */
typedef struct certs_params {
    char tenant[ID_MAX + 1], device[ID_MAX + 1], user[ID_MAX + 1], request[ID_MAX + 1];
    char ca[ID_MAX + 1], profile[ID_MAX + 1], status[16];
    char expiring_days[16], offset[16], limit[16];
} certs_params_t;

static const struct {
    const char *name;
    size_t off, size;
} params[] = {
#define P(f)                                                                                       \
    {                                                                                              \
#f, offsetof(certs_params_t, f), sizeof(((certs_params_t *)0)->f)                          \
    }
    P(tenant),  P(device), P(user),          P(request), P(ca),
    P(profile), P(status), P(expiring_days), P(offset),  P(limit),
#undef P
};

#define PARAMS_KNOWN                                                                               \
    "tenant, device, user, request, ca, profile, status, expiring_days, offset, limit"

/* The statuses a query may ask for; "valid" is the inventory's own filter (valid and not
 * expired), the others are picked from the page here. */
static const char *const statuses[] = {"valid", "revoked", "superseded", "expired"};

/* One read in flight: the deferred HTTP answer and how to shape it. */
typedef struct certs_op {
    pc_http_later_t *later; /* NULL: the answer was given already (out of memory) */
    bool one;               /* GET /api/certs/CA/SERIAL */
    char status[16];        /* keep only this status ("" any) */
    unsigned offset, limit;
    char tenant[ID_MAX + 1], ca[ID_MAX + 1], serial[72];
} certs_op_t;

static void respond_error(pc_http_response_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_error(pc_http_response_t *resp, int status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *doc = json_pack("{s:s}", "error", msg);
    pc_coord_respond_json(resp, status, doc);
    json_decref(doc);
}

/* ---- the query string -------------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* decode writes text[0..len) percent-decoded into out ('+' is a space, as HTML forms and
 * URLSearchParams send it); false when malformed, holding a NUL, or longer than size - 1. */
static bool decode(const char *text, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 1 < len ? hex_digit(text[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(text[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= size)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

/* parse_query fills p from query; false with a 400 in resp for an unknown, repeated, too long
 * or malformed parameter. */
static bool parse_query(const char *query, certs_params_t *p, pc_http_response_t *resp)
{
    unsigned seen = 0;
    memset(p, 0, sizeof(*p));
    for (const char *s = query; s != NULL && *s != '\0';) {
        const char *end = s + strcspn(s, "&");
        const char *eq = memchr(s, '=', (size_t)(end - s));
        const char *vstart = eq != NULL ? eq + 1 : end;
        size_t klen = (size_t)((eq != NULL ? eq : end) - s);
        char name[32];
        if (end == s) { /* "&&" */
            s = end + 1;
            continue;
        }
        size_t k = 0;
        bool named = klen < sizeof(name) && decode(s, klen, name, sizeof(name));
        for (; named && k < sizeof(params) / sizeof(params[0]); k++)
            if (strcmp(name, params[k].name) == 0)
                break;
        if (!named || k == sizeof(params) / sizeof(params[0])) {
            respond_error(resp, 400, "unknown parameter \"%.*s\"; use " PARAMS_KNOWN,
                          (int)(klen < 40 ? klen : 40), s);
            return false;
        }
        if (seen & (1u << k)) {
            respond_error(resp, 400, "parameter %s is given twice; give it once", name);
            return false;
        }
        seen |= 1u << k;
        if (!decode(vstart, (size_t)(end - vstart), (char *)p + params[k].off, params[k].size)) {
            respond_error(resp, 400,
                          "parameter %s is malformed or longer than %zu bytes; percent-encode "
                          "its value (e.g. %%20 for a space)",
                          name, params[k].size - 1);
            return false;
        }
        s = *end == '&' ? end + 1 : end;
    }
    return true;
}

/* canon_serial writes text as the inventory names serials: upper-case hex of even length
 * without leading zero bytes, as BN_bn2hex writes them (colons and spaces ignored); false when
 * it is not hex. */
static bool canon_serial(const char *text, char *out, size_t size)
{
    char digits[72];
    size_t n = 0;
    for (; *text != '\0'; text++) {
        if (*text == ':' || *text == ' ')
            continue;
        if (!isxdigit((unsigned char)*text) || n + 1 >= sizeof(digits))
            return false;
        if (n == 0 && *text == '0')
            continue;
        digits[n++] = (char)toupper((unsigned char)*text);
    }
    if (n == 0)
        digits[n++] = '0';
    digits[n] = '\0';
    return (size_t)snprintf(out, size, "%s%s", n % 2 != 0 ? "0" : "", digits) < size;
}

/* ---- answers ----------------------------------------------------------------------------- */

static json_t *text_or_null(const char *text)
{
    return text[0] != '\0' ? json_string(text) : json_null();
}

static json_t *ms_or_null(int64_t ms)
{
    return ms != 0 ? json_integer((json_int_t)ms) : json_null();
}

/* cert_json is one certificate of tenant as the API shows it: "" and 0 are null (not
 * recorded). The tenant is the query's: the record's keys are the tenant's own. */
static json_t *cert_json(const pc_cert_t *c, const char *tenant)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < pc_cert_text_field_count; i++)
        json_object_set_new(o, pc_cert_text_fields[i].name,
                            text_or_null((const char *)c + pc_cert_text_fields[i].offset));
    if (c->tenant[0] == '\0')
        json_object_set_new(o, "tenant", json_string(tenant));
    json_object_set_new(o, "not_before_ms", ms_or_null(c->not_before_ms));
    json_object_set_new(o, "not_after_ms", ms_or_null(c->not_after_ms));
    json_object_set_new(o, "issued_at_ms", ms_or_null(c->issued_at_ms));
    json_object_set_new(o, "revoked_at_ms", ms_or_null(c->revoked_at_ms));
    json_object_set_new(o, "reason", c->revoked_at_ms != 0 ? json_integer(c->reason) : json_null());
    return o;
}

static void on_found(void *arg, pc_err_t err, const pc_cert_t *certs, size_t count, bool more,
                     const pc_diag_t *diag)
{
    certs_op_t *op = arg;
    pc_http_response_t resp = {0};
    if (op->later == NULL)
        goto out_free_op;
    if (err != PC_OK) {
        respond_error(&resp, err == PC_ERR_DEPENDENCY ? 503 : 500,
                      "cannot read the inventory: %s; check Redis and retry",
                      diag != NULL ? diag->msg : pc_strerror(err));
    } else if (op->one && count == 0) {
        respond_error(&resp, 404,
                      "tenant %s has no certificate %s of CA %s; check the serial (hex) and "
                      "the CA's name, or list the tenant's certificates with "
                      "/api/certs?tenant=%s",
                      op->tenant, op->serial, op->ca, op->tenant);
    } else if (op->one) {
        json_t *doc = cert_json(&certs[0], op->tenant);
        if (doc != NULL)
            pc_coord_respond_json(&resp, 200, doc);
        else
            pc_http_respond_text(&resp, 500, "out of memory\n");
        json_decref(doc);
    } else {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < count; i++)
            if (op->status[0] == '\0' || strcmp(certs[i].status, op->status) == 0)
                json_array_append_new(list, cert_json(&certs[i], op->tenant));
        json_t *doc = json_pack("{s:o,s:b,s:o}", "certs", list, "more", more, "next_offset",
                                more ? json_integer(op->offset + op->limit) : json_null());
        if (doc != NULL)
            pc_coord_respond_json(&resp, 200, doc);
        else
            pc_http_respond_text(&resp, 500, "out of memory\n");
        json_decref(doc);
    }
    pc_http_answer(op->later, &resp);
out_free_op:
    free(op);
}

/* ---- the routes -------------------------------------------------------------------------- */

/* number reads a decimal parameter (default def when absent); false with a 400. */
static bool number(const char *name, const char *text, long min, long max, long def, long *out,
                   pc_http_response_t *resp)
{
    if (text[0] == '\0') {
        *out = def;
        return true;
    }
    if (pc_parse_long(text, min, max, out))
        return true;
    respond_error(resp, 400, "%s wants a whole number from %ld to %ld, not \"%s\"", name, min, max,
                  text);
    return false;
}

/* build_query checks p and fills q (its strings borrowed from p) and op; false with a 400. */
static bool build_query(const certs_params_t *p, bool one, pc_certs_query_t *q, certs_op_t *op,
                        pc_http_response_t *resp)
{
    long offset, limit, days;
    int keys = (p->device[0] != '\0') + (p->user[0] != '\0') + (p->request[0] != '\0');
    if (p->tenant[0] == '\0') {
        respond_error(resp, 400,
                      "the inventory is per tenant: add tenant=T (the tenantId of the requests)");
        return false;
    }
    if (one && (keys > 0 || p->ca[0] != '\0' || p->profile[0] != '\0' || p->status[0] != '\0' ||
                p->expiring_days[0] != '\0' || p->offset[0] != '\0' || p->limit[0] != '\0')) {
        respond_error(
            resp, 400,
            "/api/certs/CA/SERIAL takes only tenant=T; search with /api/certs?tenant=T&...");
        return false;
    }
    if (keys > 1) {
        respond_error(resp, 400, "give one of device, user or request, not %d of them", keys);
        return false;
    }
    if (keys > 0 && p->expiring_days[0] != '\0') {
        respond_error(resp, 400,
                      "expiring_days lists the whole tenant by expiry: leave out device, user "
                      "and request (or filter the list by expiry yourself)");
        return false;
    }
    if (!number("offset", p->offset, 0, OFFSET_MAX, 0, &offset, resp) ||
        !number("limit", p->limit, 1, LIMIT_MAX, LIMIT_DEFAULT, &limit, resp) ||
        !number("expiring_days", p->expiring_days, 1, EXPIRING_DAYS_MAX, 0, &days, resp))
        return false;
    bool known = p->status[0] == '\0' || strcmp(p->status, "any") == 0;
    for (size_t i = 0; !known && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known = strcmp(p->status, statuses[i]) == 0;
    if (!known) {
        respond_error(resp, 400,
                      "status \"%s\" is not one of valid, revoked, superseded, expired (or any)",
                      p->status);
        return false;
    }
    q->tenant = p->tenant;
    q->ca = p->ca[0] != '\0' ? p->ca : NULL;
    q->profile_id = p->profile[0] != '\0' ? p->profile : NULL;
    q->valid_only = strcmp(p->status, "valid") == 0;
    q->offset = (unsigned)offset;
    q->limit = (unsigned)limit;
    q->by = p->device[0] != '\0'    ? PC_CERTS_DEVICE
            : p->user[0] != '\0'    ? PC_CERTS_USER
            : p->request[0] != '\0' ? PC_CERTS_REQUEST
            : days > 0              ? PC_CERTS_EXPIRING
                                    : PC_CERTS_ALL;
    q->key = p->device[0] != '\0' ? p->device : p->user[0] != '\0' ? p->user : p->request;
    if (days > 0) {
        q->expiring_after_ms = pc_now_ms();
        q->expiring_before_ms = q->expiring_after_ms + days * DAY_MS;
    }
    if (strcmp(p->status, "any") != 0 && !q->valid_only)
        snprintf(op->status, sizeof(op->status), "%s", p->status);
    op->offset = (unsigned)offset;
    op->limit = (unsigned)limit;
    snprintf(op->tenant, sizeof(op->tenant), "%s", p->tenant);
    return true;
}

/* split_serial reads "CA/SERIAL" (each percent-encoded) into op; false with a 400 or 404. */
static bool split_serial(const char *rest, certs_op_t *op, pc_http_response_t *resp)
{
    const char *slash = strchr(rest, '/');
    if (slash == NULL || slash == rest || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
        respond_error(resp, 404, "no such endpoint; use /api/certs/CA/SERIAL?tenant=T");
        return false;
    }
    char serial[72];
    if (!decode(rest, (size_t)(slash - rest), op->ca, sizeof(op->ca)) ||
        !decode(slash + 1, strlen(slash + 1), serial, sizeof(serial)) ||
        !canon_serial(serial, op->serial, sizeof(op->serial))) {
        respond_error(resp, 400,
                      "the path names no certificate: use /api/certs/CA/SERIAL with the CA's "
                      "name and the serial in hex (at most 64 digits)");
        return false;
    }
    op->one = true;
    return true;
}

void pc_coord_certs_serve(pc_coord_t *coord, const char *path, pc_http_response_t *resp)
{
    certs_params_t p;
    pc_certs_query_t q = {0};
    certs_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pc_http_respond_text(resp, 500, "out of memory\n");
        return;
    }
    bool one = strncmp(path, "/api/certs/", 11) == 0;
    if ((one && !split_serial(path + 11, op, resp)) ||
        !parse_query(pc_http_query(coord->http), &p, resp) || !build_query(&p, one, &q, op, resp))
        goto out_free_op;
    if (one) {
        q.by = PC_CERTS_SERIAL;
        q.key = op->serial;
        q.ca = op->ca;
    }
    if (coord->redis == NULL) {
        respond_error(resp, 503, "the coordinator is stopping; retry on another one");
        goto out_free_op;
    }
    pc_err_t err = pc_certs_find(coord->redis, &q, on_found, op);
    if (err == PC_ERR_INVALID_PARAM) {
        respond_error(resp, 400,
                      "an id cannot be looked up (at most %d bytes each); check tenant, device, "
                      "user, request and ca",
                      ID_MAX);
        goto out_free_op;
    }
    if (err != PC_OK) {
        respond_error(resp, 503, "cannot read the inventory: %s; retry", pc_strerror(err));
        goto out_free_op;
    }
    /* on_found runs later and frees op; without a deferred answer it only frees it */
    op->later = pc_http_defer(coord->http);
    if (op->later == NULL)
        pc_http_respond_text(resp, 500, "out of memory\n");
    return;
out_free_op:
    free(op);
}
