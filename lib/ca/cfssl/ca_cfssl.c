/*
 * ca_cfssl.c - the cfssl backend: a remote cfssl CA signs, revokes and tells its certificate
 * over HTTP(S), driven by the worker's libuv loop through curl_uv, so that a slow or dead CA
 * never blocks the loop. Template policy is checked here before anything is sent.
 *
 * Each submit, revoke or info fetch is an op_t, a small state machine:
 *   op_new -> op_send -> on_http_done -> op_succeeded | op_failed -> (on_op_timer -> op_send)*
 *   -> op_answer
 * Failed attempts (transport errors, timeouts, 5xx) count toward a circuit breaker: once open,
 * requests fail at once until the cool-down has passed, then one probe (a request, or a
 * background /info) decides whether it closes. The CA's certificate is fetched at start and
 * kept; until it is there get0_chain returns NULL and nothing is sent to be signed, because
 * every certificate cfssl returns is checked against it (pc_ca_cfssl_check_issued).
 *
 * Loop thread only. Lifetimes: an op owns a uv_timer and is freed in its close callback once
 * it has been answered and curl_uv has let go of it; the backend is freed when its timer, its
 * curl_uv client and every op are gone, after pc_ca_close (then pc_ca_free) or pc_ca_free. A
 * done callback never runs inside submit or revoke (except when out of memory).
 */
#include "ca_cfssl_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#define MAX_RESPONSE ((size_t)1 << 20)

typedef enum op_kind { OP_SIGN, OP_REVOKE, OP_INFO } op_kind_t;

struct waiter {
    waiter_t *next;
    pc_ca_cfssl_ready_fn fn;
    void *arg;
};

struct op {
    op_t *prev, *next;
    pc_ca_cfssl_t *cca;
    op_kind_t kind;
    uv_timer_t timer; /* retry backoff, or a decided outcome waiting for the loop */
    const char *url;
    char *body;
    EVP_PKEY *csr_key;   /* sign: the certificate must carry this key */
    X509_REQ *csr;       /* sign: what was asked, to check what cfssl signed against it */
    pc_ca_issue_t asked; /* sign: its validity and key usage rule (strings not kept) */
    char *serial_dec;    /* revoke: as cfssl keys its database; sign: the serial asked for */
    char serial_hex[68]; /* revoke: as the caller gave it */
    const char *reason;  /* revoke, static */
    unsigned aki_next;   /* revoke: the authority key id form to try next */
    unsigned tries;      /* retries so far */
    bool in_http, probe, decided, answered;
    pc_err_t err; /* when decided */
    pc_diag_t diag;
    pc_ca_done_fn done; /* NULL for the backend's own info fetches */
    void *arg;
    char what[160]; /* "signing a CSR with profile \"User\"", for messages */
};

static void cfssl_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                         void *arg);
static void cfssl_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg);
static STACK_OF(X509) * cfssl_get0_chain(pc_ca_t *ca);
static bool cfssl_healthy(const pc_ca_t *ca);
static void cfssl_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg);
static void cfssl_free(pc_ca_t *ca);
static void info_schedule(pc_ca_cfssl_t *cca);

/* No find_issued: cfssl's API cannot list certificates by label (see ca.h). */
static const pc_ca_ops_t cfssl_ops = {
    .kind = "cfssl",
    .healthy = cfssl_healthy,
    .submit = cfssl_submit,
    .revoke = cfssl_revoke,
    .get0_chain = cfssl_get0_chain,
    .close = cfssl_close,
    .free = cfssl_free,
};

static pc_ca_cfssl_t *cfssl_from(pc_ca_t *ca)
{
    return ca != NULL && ca->ops == &cfssl_ops ? (pc_ca_cfssl_t *)ca : NULL;
}

static const pc_ca_cfssl_t *cfssl_const(const pc_ca_t *ca)
{
    return ca != NULL && ca->ops == &cfssl_ops ? (const pc_ca_cfssl_t *)ca : NULL;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static void release(pc_ca_cfssl_t *cca)
{
    if (--cca->handles > 0 || !cca->closing)
        return;
    void (*closed)(void *) = cca->closed;
    void *arg = cca->closed_arg;
    cca->handles_gone = true;
    if (cca->free_when_closed) {
        pc_ca_cfssl_clear(cca);
        free(cca);
    }
    if (closed != NULL)
        closed(arg);
}

static void on_info_timer_closed(uv_handle_t *handle)
{
    release(handle->data);
}

static void on_http_closed(void *arg)
{
    release(arg);
}

static void on_op_closed(uv_handle_t *handle)
{
    op_t *op = handle->data;
    pc_ca_cfssl_t *cca = op->cca;

    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        cca->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    EVP_PKEY_free(op->csr_key);
    X509_REQ_free(op->csr);
    OPENSSL_free(op->serial_dec);
    free(op->body);
    free(op);
    release(cca);
}

/* op_settle frees op (through its timer's close callback) once it is answered and out of
 * curl_uv. */
static void op_settle(op_t *op)
{
    if (op->answered && !op->in_http && !uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, on_op_closed);
}

static void on_op_timer(uv_timer_t *timer);

static op_t *op_new(pc_ca_cfssl_t *cca, op_kind_t kind, pc_ca_done_fn done, void *arg)
{
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->cca = cca;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    uv_timer_init(cca->loop, &op->timer);
    op->timer.data = op;
    op->next = cca->ops;
    if (cca->ops != NULL)
        cca->ops->prev = op;
    cca->ops = op;
    cca->handles++;
    return op;
}

/* ---- answering ---------------------------------------------------------------------------- */

static void info_done(pc_ca_cfssl_t *cca)
{
    cca->info_inflight = false;
    info_schedule(cca);
}

/* op_answer calls done once (cert becomes the callee's), then lets op go. */
static void op_answer(op_t *op, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    if (op->answered) {
        X509_free(cert);
        return;
    }
    op->answered = true;
    uv_timer_stop(&op->timer);
    if (op->done != NULL)
        op->done(op->arg, err, cert, err == PC_OK ? NULL : diag);
    else
        X509_free(cert);
    if (op->kind == OP_INFO)
        info_done(op->cca);
    op_settle(op);
}

/* op_defer answers from the loop's next turn: never inside the caller's own call. */
static void op_defer(op_t *op, pc_err_t err, const pc_diag_t *diag)
{
    op->decided = true;
    op->err = err;
    op->diag = *diag;
    uv_timer_start(&op->timer, on_op_timer, 0, 0);
}

/* ---- circuit breaker and backoff ---------------------------------------------------------- */

static uint64_t next_random(pc_ca_cfssl_t *cca)
{
    /* xorshift64*: jitter only spreads workers apart, it need not be unpredictable */
    uint64_t x = cca->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    cca->rng = x;
    return x * 2685821657736338717ULL;
}

/* backoff_ms: retry_base_ms doubled per earlier try, capped, with "equal jitter" (half fixed,
 * half random) so that workers do not come back to a recovering CA all at once. */
static uint64_t backoff_ms(pc_ca_cfssl_t *cca, unsigned tries)
{
    uint64_t delay = cca->retry_base_ms;
    for (unsigned i = 0; i < tries && delay < cca->retry_max_ms; i++)
        delay *= 2;
    if (delay > cca->retry_max_ms)
        delay = cca->retry_max_ms;
    uint64_t half = delay / 2;
    return half + next_random(cca) % (delay - half + 1);
}

/* breaker_gate lets op through while the breaker is closed, and once as the probe after the
 * cool-down; otherwise it says why not. */
static pc_err_t breaker_gate(pc_ca_cfssl_t *cca, op_t *op, pc_diag_t *diag)
{
    uint64_t now = uv_now(cca->loop);

    if (!cca->open)
        return PC_OK;
    if (now >= cca->open_until && !cca->probing) {
        cca->probing = true;
        op->probe = true;
        return PC_OK;
    }
    return pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                   "cfssl CA \"%s\" is not asked for %llu ms more after %u failed requests in a "
                   "row (circuit breaker open); last failure: %s",
                   cca->base.name,
                   (unsigned long long)(cca->open_until > now ? cca->open_until - now : 0),
                   cca->failures, cca->last_failure.msg);
}

/* breaker_record counts one attempt's outcome: any answer from a working CA closes the
 * breaker; threshold failures in a row open it, a failed probe opens it again. */
static void breaker_record(pc_ca_cfssl_t *cca, op_t *op, bool failed, const pc_diag_t *diag)
{
    if (op->probe) {
        op->probe = false;
        cca->probing = false;
    }
    if (!failed) {
        cca->failures = 0;
        cca->open = false;
        return;
    }
    cca->last_failure = *diag;
    if (cca->failures < UINT32_MAX)
        cca->failures++;
    if (cca->open || cca->failures >= cca->breaker_threshold) {
        cca->open = true;
        cca->open_until = uv_now(cca->loop) + cca->breaker_cooldown_ms;
        info_schedule(cca);
    }
}

/* ---- sending ------------------------------------------------------------------------------ */

static void on_http_done(void *arg, pc_curl_uv_result_t *res);

/* op_send starts one attempt; on failure nothing is in flight and diag says why. */
static pc_err_t op_send(op_t *op, pc_diag_t *diag)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          "Accept: application/json"};
    pc_ca_cfssl_t *cca = op->cca;

    if (cca->closing)
        return pc_fail(diag, PC_ERR_CA_UNAVAILABLE, "cfssl CA \"%s\" was closed before %s",
                       cca->base.name, op->what);
    /* info fetches run on their own schedule and serve as the breaker's probe */
    pc_err_t err = op->kind == OP_INFO ? PC_OK : breaker_gate(cca, op, diag);
    if (err != PC_OK)
        return err;
    pc_curl_uv_request_t req = {.method = "POST",
                                .url = op->url,
                                .body = op->body,
                                .body_len = strlen(op->body),
                                .headers = headers,
                                .header_count = sizeof(headers) / sizeof(headers[0]),
                                .connect_timeout_ms = cca->connect_timeout_ms,
                                .total_timeout_ms = cca->total_timeout_ms,
                                .max_response = MAX_RESPONSE,
                                .tls = &cca->tls};
    err = pc_curl_uv_request(cca->http, &req, on_http_done, op, diag);
    if (err != PC_OK) {
        if (op->probe) {
            op->probe = false;
            cca->probing = false;
        }
        pc_diag_prefix(diag, cca->base.name);
        return err;
    }
    op->in_http = true;
    cca->requests++;
    return PC_OK;
}

/* aki_form: the authority key id forms a revoke tries in turn, NULL after the last. cfssl
 * looks a certificate up by serial and AKI; cfssl 1.2 stores an empty AKI, later versions the
 * issuer's key id. */
static const char *aki_form(const pc_ca_cfssl_t *cca, unsigned n)
{
    if (cca->aki_hex[0] != '\0' && n == 0)
        return cca->aki_hex;
    return n == (cca->aki_hex[0] != '\0' ? 1u : 0u) ? "" : NULL;
}

static pc_err_t revoke_body(op_t *op, pc_diag_t *diag)
{
    free(op->body);
    op->body = NULL;
    return pc_ca_cfssl_revoke_body(op->serial_dec, aki_form(op->cca, op->aki_next), op->reason,
                                   &op->body, diag);
}

/* ---- outcomes ----------------------------------------------------------------------------- */

static void keep_chain(pc_ca_cfssl_t *cca, STACK_OF(X509) * certs)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(sk_X509_value(certs, 0));

    cca->chain = certs;
    cca->aki_hex[0] = '\0';
    for (int i = 0; ski != NULL && i < ski->length && i < 64; i++)
        snprintf(cca->aki_hex + 2 * i, 3, "%02x", ski->data[i]);
    cca->info_attempt = 0;
    while (cca->waiters != NULL) {
        waiter_t *w = cca->waiters;
        cca->waiters = w->next;
        w->fn(w->arg, PC_OK);
        free(w);
    }
}

/* ---- a certificate other than asked --------------------------------------------------------- */

/* cfssl's profile, not the request, decides validity and usages: what it signed other than
 * asked is revoked at once, and the submit fails with the difference, so that nothing signed
 * stays valid and unknown. */
typedef struct refusal {
    pc_ca_done_fn done;
    void *arg;
    pc_diag_t why;
} refusal_t;

static void on_refusal_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    refusal_t *r = arg;
    X509_free(cert);
    size_t len = strlen(r->why.msg);
    if (err == PC_OK)
        snprintf(r->why.msg + len, sizeof(r->why.msg) - len, " (the certificate was revoked)");
    else
        snprintf(r->why.msg + len, sizeof(r->why.msg) - len,
                 " (revoking the certificate failed: %s; revoke it at cfssl)",
                 diag != NULL ? diag->msg : pc_strerror(err));
    r->done(r->arg, PC_ERR_POLICY, NULL, &r->why);
    free(r);
}

static void refuse_signed(op_t *op, X509 *cert, const pc_diag_t *why)
{
    refusal_t *r = calloc(1, sizeof(*r));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    X509_free(cert);
    if (r == NULL || hex == NULL || op->done == NULL) {
        free(r);
        OPENSSL_free(hex);
        op_answer(op, PC_ERR_POLICY, NULL, why);
        return;
    }
    r->done = op->done;
    r->arg = op->arg;
    r->why = *why;
    pc_diag_prefix(&r->why, op->cca->base.name);
    op->done = NULL; /* answered through the revocation */
    op_answer(op, PC_ERR_POLICY, NULL, why);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_CESSATION_OF_OPERATION};
    cfssl_revoke(&op->cca->base, &rev, on_refusal_revoked, r); /* copies what it keeps */
    OPENSSL_free(hex);
}

static void op_succeeded(op_t *op, const pc_ca_cfssl_reply_t *reply)
{
    STACK_OF(X509) *certs = NULL;
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = PC_OK;

    if (op->kind == OP_REVOKE) {
        op_answer(op, PC_OK, NULL, NULL);
        return;
    }
    err = pc_ca_cfssl_result_certs(reply, &certs, &diag);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, op->what);
        pc_diag_prefix(&diag, op->cca->base.name);
        op_answer(op, PC_ERR_CA_UNAVAILABLE, NULL, &diag);
        return;
    }
    if (op->kind == OP_INFO) {
        if (op->cca->chain == NULL)
            keep_chain(op->cca, certs);
        else
            sk_X509_pop_free(certs, X509_free);
        op_answer(op, PC_OK, NULL, NULL);
        return;
    }
    X509 *cert = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    /* against the CA certificate cfssl gave at start (sign_prepare waited for it) */
    err = pc_ca_cfssl_check_issued(op->cca->base.name, op->what, sk_X509_value(op->cca->chain, 0),
                                   op->csr_key, op->serial_dec, cert, &diag);
    if (err != PC_OK) {
        X509_free(cert);
        op_answer(op, err, NULL, &diag);
        return;
    }
    if (op->csr != NULL && pc_ca_check_as_asked(cert, op->csr, &op->asked, &diag) != PC_OK) {
        refuse_signed(op, cert, &diag);
        return;
    }
    op_answer(op, PC_OK, cert, NULL);
}

static void op_failed(op_t *op, pc_ca_cfssl_verdict_t v, pc_diag_t *diag)
{
    pc_ca_cfssl_t *cca = op->cca;

    if (cca->closing) {
        pc_fail(diag, PC_ERR_CA_UNAVAILABLE, "cfssl CA \"%s\" was closed before %s finished",
                cca->base.name, op->what);
        op_answer(op, PC_ERR_CA_UNAVAILABLE, NULL, diag);
        return;
    }
    if (op->kind == OP_REVOKE && v.err == PC_ERR_NOT_FOUND) {
        op->aki_next++;
        if (aki_form(cca, op->aki_next) != NULL) {
            pc_err_t err = revoke_body(op, diag);
            if (err == PC_OK)
                err = op_send(op, diag);
            if (err != PC_OK)
                op_answer(op, err, NULL, diag);
            return;
        }
        pc_fail(diag, PC_ERR_NOT_FOUND,
                "cfssl CA \"%s\" has no certificate with serial %s (decimal %s) in its "
                "database; check the serial, and that this CA issued it",
                cca->base.name, op->serial_hex, op->serial_dec);
    }
    if (v.retry && op->kind != OP_INFO && op->tries + 1 < cca->attempts) {
        uv_timer_start(&op->timer, on_op_timer, backoff_ms(cca, op->tries), 0);
        op->tries++;
        return;
    }
    size_t len = strlen(diag->msg);
    if (op->tries > 0 && len < sizeof(diag->msg))
        snprintf(diag->msg + len, sizeof(diag->msg) - len, " (%u attempts)", op->tries + 1);
    op_answer(op, v.err, NULL, diag);
}

static void on_http_done(void *arg, pc_curl_uv_result_t *res)
{
    op_t *op = arg;
    pc_ca_cfssl_t *cca = op->cca;
    pc_ca_cfssl_reply_t reply;
    pc_diag_t diag = {.msg = ""};

    op->in_http = false;
    pc_ca_cfssl_reply_parse(res->body, res->body_len, &reply);
    free(res->body);
    pc_ca_cfssl_verdict_t v = pc_ca_cfssl_judge(cca->base.name, op->what, res, &reply, &diag);
    if (res->code != CURLE_ABORTED_BY_CALLBACK)
        breaker_record(cca, op, v.ca_failed, &diag);
    if (v.err == PC_OK) /* even when closing: cfssl has issued it, so hand it out */
        op_succeeded(op, &reply);
    else
        op_failed(op, v, &diag);
    pc_ca_cfssl_reply_clear(&reply);
    op_settle(op);
}

static void on_op_timer(uv_timer_t *timer)
{
    op_t *op = timer->data;
    pc_diag_t diag = {.msg = ""};

    if (op->decided) {
        op_answer(op, op->err, NULL, &op->diag);
        return;
    }
    pc_err_t err = op_send(op, &diag); /* a retry */
    if (err != PC_OK)
        op_answer(op, err, NULL, &diag);
}

/* ---- the CA certificate ------------------------------------------------------------------- */

static void on_info_timer(uv_timer_t *timer);

static void info_start(pc_ca_cfssl_t *cca)
{
    pc_diag_t diag = {.msg = ""};
    op_t *op = NULL;

    if (cca->closing || cca->info_inflight)
        return;
    op = op_new(cca, OP_INFO, NULL, NULL);
    if (op == NULL) { /* out of memory: try again later */
        uv_timer_start(&cca->info_timer, on_info_timer, cca->retry_max_ms, 0);
        return;
    }
    cca->info_inflight = true;
    op->url = cca->info_url;
    snprintf(op->what, sizeof(op->what), "fetching its CA certificate");
    if (cca->open && !cca->probing) {
        cca->probing = true;
        op->probe = true;
    }
    pc_err_t err = pc_ca_cfssl_info_body(cca->label, &op->body, &diag);
    if (err == PC_OK)
        err = op_send(op, &diag);
    if (err != PC_OK)
        op_answer(op, err, NULL, &diag); /* info_done schedules the next try */
}

static void on_info_timer(uv_timer_t *timer)
{
    info_start(timer->data);
}

/* info_schedule plans the next /info: with backoff while the certificate is missing, at the
 * end of the cool-down while the breaker is open (the probe), else none. */
static void info_schedule(pc_ca_cfssl_t *cca)
{
    uint64_t now = uv_now(cca->loop);
    uint64_t delay;

    if (cca->closing || cca->info_inflight)
        return;
    if (cca->chain == NULL) {
        delay = backoff_ms(cca, cca->info_attempt);
        if (cca->info_attempt < 32)
            cca->info_attempt++;
    } else if (cca->open) {
        delay = cca->open_until > now ? cca->open_until - now : 0;
    } else {
        uv_timer_stop(&cca->info_timer);
        return;
    }
    uv_timer_start(&cca->info_timer, on_info_timer, delay, 0);
}

/* ---- submit and revoke -------------------------------------------------------------------- */

static const char *profile_for(const pc_ca_cfssl_t *cca, const char *template_name)
{
    for (size_t i = 0; i < cca->profile_count; i++)
        if (strcmp(cca->profile_of[2 * i], template_name) == 0)
            return cca->profile_of[2 * i + 1];
    return template_name;
}

/* sign_prepare checks everything that can be checked here (template policy first) and builds
 * the request; nothing has been sent when it fails. */
static pc_err_t sign_prepare(op_t *op, X509_REQ *csr, const pc_ca_issue_t *issue, pc_diag_t *diag)
{
    pc_ca_cfssl_t *cca = op->cca;
    const char *name = cca->base.name;
    char *pem = NULL;

    if (csr == NULL || issue == NULL || issue->template_name == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\": no CSR or template given", name);
    const pc_ca_template_t *tmpl = pc_ca_find_template(&cca->base, issue->template_name);
    if (tmpl == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "CA \"%s\" has no template \"%s\"; use a template configured for it", name,
                       issue->template_name);
    pc_err_t err = pc_ca_template_check(tmpl, csr, issue->validity_days, diag);
    if (err == PC_OK)
        err = pc_ca_cfssl_check_csr(name, csr, diag);
    if (err == PC_OK && cca->chain == NULL) /* what it signs is checked against it */
        err = pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                      "cfssl CA \"%s\" has not sent its CA certificate yet, which every "
                      "certificate it signs is checked against; last failure: %s",
                      name, cca->last_failure.msg[0] != '\0' ? cca->last_failure.msg : "none");
    if (err == PC_OK)
        err = pc_ca_cfssl_csr_pem(csr, &pem, diag);
    if (err != PC_OK)
        return err;
    const char *profile = profile_for(cca, tmpl->name);
    snprintf(op->what, sizeof(op->what), "signing a CSR with profile \"%s\"", profile);
    op->url = cca->sign_url;
    op->csr_key = X509_REQ_get_pubkey(csr);
    op->csr = X509_REQ_dup(csr);
    op->asked = (pc_ca_issue_t){.validity_days = issue->validity_days,
                                .exact_key_usage = issue->exact_key_usage};
    if (cca->base.takes_serial) {
        BIGNUM *bn = NULL;
        if (issue->serial_hex == NULL ||
            (err = pc_ca_serial_parse(&cca->base, issue->serial_hex, &bn, diag)) != PC_OK) {
            free(pem);
            return issue->serial_hex == NULL
                       ? pc_fail(diag, PC_ERR_INVALID_PARAM,
                                 "cfssl CA \"%s\" takes its callers' serials (client_serials) "
                                 "and none was given",
                                 name)
                       : err;
        }
        op->serial_dec = BN_bn2dec(bn);
        BN_free(bn);
        if (op->serial_dec == NULL) {
            free(pem);
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory converting a serial");
        }
    }
    err = pc_ca_cfssl_sign_body(pem, profile, cca->label != NULL ? cca->label : issue->request_id,
                                op->serial_dec, cca->key, cca->key_len, &op->body, diag);
    free(pem);
    if (err == PC_OK && (op->csr_key == NULL || op->csr == NULL))
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory keeping the CSR's key");
    return err;
}

static void fail_now(pc_ca_done_fn done, void *arg, const char *name)
{
    pc_diag_t diag = {.msg = ""};
    pc_fail(&diag, PC_ERR_NOMEM, "CA \"%s\": out of memory starting a request", name);
    done(arg, PC_ERR_NOMEM, NULL, &diag);
}

static void cfssl_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                         void *arg)
{
    pc_ca_cfssl_t *cca = (pc_ca_cfssl_t *)ca;
    pc_diag_t diag = {.msg = ""};
    op_t *op = op_new(cca, OP_SIGN, done, arg);

    if (op == NULL) {
        fail_now(done, arg, ca->name);
        return;
    }
    pc_err_t err = sign_prepare(op, csr, issue, &diag);
    if (err == PC_OK)
        err = op_send(op, &diag);
    if (err != PC_OK)
        op_defer(op, err, &diag);
}

static pc_err_t revoke_prepare(op_t *op, const pc_ca_revoke_t *rev, pc_diag_t *diag)
{
    pc_ca_cfssl_t *cca = op->cca;
    const char *name = cca->base.name;

    if (rev == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\": no revocation given", name);
    BIGNUM *bn = NULL;
    pc_err_t err = pc_ca_serial_parse(&cca->base, rev->serial_hex, &bn, diag);
    if (err != PC_OK)
        return err;
    op->serial_dec = BN_bn2dec(bn); /* cfssl keys its database by the decimal serial */
    BN_free(bn);
    if (op->serial_dec == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory converting serial %s", rev->serial_hex);
    op->reason = pc_ca_cfssl_reason_name(rev->reason);
    if (op->reason == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "revocation reason %d is not one this CA records; use 0, 1, 3, 4 or 5",
                       (int)rev->reason);
    if (cca->chain == NULL)
        return pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                       "cfssl CA \"%s\" has not sent its CA certificate yet, whose key id "
                       "revoking needs; last failure: %s",
                       name, cca->last_failure.msg[0] != '\0' ? cca->last_failure.msg : "none");
    snprintf(op->serial_hex, sizeof(op->serial_hex), "%s", rev->serial_hex);
    snprintf(op->what, sizeof(op->what), "revoking serial %s", rev->serial_hex);
    op->url = cca->revoke_url;
    return revoke_body(op, diag);
}

static void cfssl_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg)
{
    pc_ca_cfssl_t *cca = (pc_ca_cfssl_t *)ca;
    pc_diag_t diag = {.msg = ""};
    op_t *op = op_new(cca, OP_REVOKE, done, arg);

    if (op == NULL) {
        fail_now(done, arg, ca->name);
        return;
    }
    pc_err_t err =
        cca->closing ? pc_fail(&diag, PC_ERR_CA_UNAVAILABLE, "cfssl CA \"%s\" is closing", ca->name)
                     : revoke_prepare(op, rev, &diag);
    if (err == PC_OK)
        err = op_send(op, &diag);
    if (err != PC_OK)
        op_defer(op, err, &diag);
}

static STACK_OF(X509) * cfssl_get0_chain(pc_ca_t *ca)
{
    return ((pc_ca_cfssl_t *)ca)->chain;
}

/* Frees at once when closed; otherwise closes (if not closing yet) and frees when the last
 * handle is gone, which needs the loop to run. */
static void cfssl_free(pc_ca_t *ca)
{
    pc_ca_cfssl_t *cca = cfssl_from(ca);
    if (cca == NULL)
        return;
    if (cca->handles_gone) {
        pc_ca_cfssl_clear(cca);
        free(cca);
        return;
    }
    cca->free_when_closed = true;
    if (!cca->closing)
        cfssl_close(ca, NULL, NULL);
}

/* ---- public ------------------------------------------------------------------------------- */

void pc_ca_cfssl_on_ready(pc_ca_t *ca, pc_ca_cfssl_ready_fn fn, void *arg)
{
    pc_ca_cfssl_t *cca = cfssl_from(ca);
    waiter_t *w = NULL;

    if (cca == NULL || cca->chain != NULL || cca->closing) {
        fn(arg, cca != NULL && cca->chain != NULL ? PC_OK : PC_ERR_CA_UNAVAILABLE);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fn(arg, PC_ERR_NOMEM);
        return;
    }
    w->fn = fn;
    w->arg = arg;
    w->next = cca->waiters;
    cca->waiters = w;
}

static bool cfssl_healthy(const pc_ca_t *ca)
{
    const pc_ca_cfssl_t *cca = cfssl_const(ca);
    return cca != NULL && !cca->closing && cca->chain != NULL && !cca->open;
}

unsigned long pc_ca_cfssl_requests(const pc_ca_t *ca)
{
    const pc_ca_cfssl_t *cca = cfssl_const(ca);
    return cca != NULL ? cca->requests : 0;
}

static void cfssl_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg)
{
    pc_ca_cfssl_t *cca = cfssl_from(ca);
    pc_diag_t diag = {.msg = ""};

    if (cca == NULL || cca->closing)
        return;
    cca->closing = true;
    cca->closed = closed;
    cca->closed_arg = arg;
    uv_timer_stop(&cca->info_timer);
    while (cca->waiters != NULL) {
        waiter_t *w = cca->waiters;
        cca->waiters = w->next;
        w->fn(w->arg, PC_ERR_CA_UNAVAILABLE);
        free(w);
    }
    pc_fail(&diag, PC_ERR_CA_UNAVAILABLE, "cfssl CA \"%s\" was closed before the request ended",
            ca->name);
    /* Ops in curl_uv are answered by its close below; the others now. An op answered here is
     * only closed (not freed), so next stays valid. */
    for (op_t *op = cca->ops, *next; op != NULL; op = next) {
        next = op->next;
        if (op->in_http || op->answered)
            continue;
        if (op->decided)
            op_answer(op, op->err, NULL, &op->diag);
        else
            op_answer(op, PC_ERR_CA_UNAVAILABLE, NULL, &diag);
    }
    pc_curl_uv_close(cca->http, on_http_closed, cca);
    uv_close((uv_handle_t *)&cca->info_timer, on_info_timer_closed);
}

/* ---- creation ----------------------------------------------------------------------------- */

pc_err_t pc_ca_cfssl_new(uv_loop_t *loop, const pc_ca_cfssl_config_t *cfg, pc_ca_t **out,
                         pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_ca_cfssl_t *cca = NULL;

    *out = NULL;
    if (loop == NULL || cfg == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no loop or cfssl CA configuration given");
    cca = calloc(1, sizeof(*cca));
    if (cca == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the cfssl CA");
    cca->base.ops = &cfssl_ops;
    cca->base.loop = loop;
    cca->loop = loop;
    err = pc_ca_cfssl_configure(cca, cfg, diag);
    if (err == PC_OK)
        err = pc_curl_uv_new(loop, cfg->max_concurrent != 0 ? cfg->max_concurrent : 16, &cca->http,
                             diag);
    if (err != PC_OK)
        goto out_free_cca;
    /* Nothing can fail from here: the templates are taken only on success. */
    cca->base.takes_serial = cfg->client_serials;
    for (size_t i = 0; i < cfg->template_count; i++)
        cca->base.templates[i] = cfg->templates[i];
    cca->base.template_count = cfg->template_count;
    cca->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)cca) | 1;
    uv_timer_init(loop, &cca->info_timer);
    cca->info_timer.data = cca;
    cca->handles = 2; /* info_timer and the curl_uv client */
    info_start(cca);
    *out = &cca->base;
    return PC_OK;
out_free_cca:
    pc_ca_cfssl_clear(cca);
    free(cca);
    return err;
}
