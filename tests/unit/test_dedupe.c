/*
 * test_dedupe.c - the per-request record against a real redis-server, seen as two workers
 * would see it: one owns, the other waits; a completed request gives back the same bytes; a
 * lost lease is taken over with a higher fence and the dead owner's intent; stale tokens and
 * fences are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "dedupe.h"
#include "redis.h"
#include "redis_fixture.h"

#define TENANT "t-contoso"

typedef struct claim_res {
    bool done;
    int calls;
    pc_err_t err;
    pc_claim_state_t state;
    char token[33];
    int64_t fence;
    unsigned char result[256];
    size_t result_len;
    bool has_intent;
    unsigned char intent[256];
    size_t intent_len;
    bool intent_recorded;
    int64_t retry_after_ms;
    char diag[512];
} claim_res_t;

typedef struct done_res {
    bool done;
    int calls;
    pc_err_t err;
    char diag[512];
} done_res_t;

typedef struct reply_res {
    bool done;
    char fields[16][128];
    size_t nfields;
    long long integer;
} reply_res_t;

typedef struct ctx {
    uv_loop_t loop;
    pc_redis_t *redis;
    pc_dedupe_t *a, *b; /* two workers */
    bool closed;
} ctx_t;

static void on_claim(void *arg, pc_err_t err, const pc_claim_t *claim, const pc_diag_t *diag)
{
    claim_res_t *res = arg;

    res->calls++;
    res->done = true;
    res->err = err;
    if (diag != NULL)
        snprintf(res->diag, sizeof(res->diag), "%s", diag->msg);
    if (claim == NULL)
        return;
    res->state = claim->state;
    memcpy(res->token, claim->token, sizeof(res->token));
    res->fence = claim->fence;
    res->retry_after_ms = claim->retry_after_ms;
    if (claim->result != NULL && claim->result_len <= sizeof(res->result)) {
        memcpy(res->result, claim->result, claim->result_len);
        res->result_len = claim->result_len;
    }
    res->has_intent = claim->intent != NULL;
    res->intent_recorded = claim->intent_recorded;
    if (claim->intent != NULL && claim->intent_len <= sizeof(res->intent)) {
        memcpy(res->intent, claim->intent, claim->intent_len);
        res->intent_len = claim->intent_len;
    }
}

static void on_done(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    done_res_t *res = arg;

    res->calls++;
    res->done = true;
    res->err = err;
    if (diag != NULL)
        snprintf(res->diag, sizeof(res->diag), "%s", diag->msg);
}

static void on_reply(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    reply_res_t *res = arg;

    res->done = true;
    assert_int_equal(err, PC_OK);
    res->integer = reply->integer;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && i < 16; i++) {
        const redisReply *e = reply->element[i];
        size_t n = e->len < sizeof(res->fields[i]) - 1 ? e->len : sizeof(res->fields[i]) - 1;
        if (e->type == REDIS_REPLY_STRING)
            memcpy(res->fields[i], e->str, n);
        res->nfields++;
    }
}

static void on_closed(void *arg)
{
    ((ctx_t *)arg)->closed = true;
}

static void ctx_open_port(ctx_t *ctx, int port, unsigned lease_ms)
{
    pc_redis_config_t cfg = {
        .port = port, .command_timeout_ms = 1000, .reconnect_min_ms = 20, .reconnect_max_ms = 200};
    pc_diag_t diag;
    uint64_t t0 = uv_hrtime();

    memset(ctx, 0, sizeof(*ctx));
    assert_int_equal(uv_loop_init(&ctx->loop), 0);
    assert_int_equal(pc_redis_new(&ctx->loop, &cfg, &ctx->redis, &diag), PC_OK);
    assert_int_equal(pc_dedupe_new(ctx->redis, "worker-a", lease_ms, 3600000, &ctx->a, &diag),
                     PC_OK);
    assert_int_equal(pc_dedupe_new(ctx->redis, "worker-b", lease_ms, 3600000, &ctx->b, &diag),
                     PC_OK);
    while (port == fixture_redis.port && !pc_redis_ready(ctx->redis) && ms_since(t0) < 3000)
        run_for(&ctx->loop, 10);
}

static void ctx_open(ctx_t *ctx, unsigned lease_ms)
{
    ctx_open_port(ctx, fixture_redis.port, lease_ms);
    assert_true(pc_redis_ready(ctx->redis));
}

static void ctx_close(ctx_t *ctx)
{
    pc_dedupe_free(ctx->a);
    pc_dedupe_free(ctx->b);
    pc_redis_close(ctx->redis, on_closed, ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    assert_true(ctx->closed);
    assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

static void claim_full(ctx_t *ctx, pc_dedupe_t *dd, const char *tenant, const char *rid,
                       const char *content, const char *intent, claim_res_t *res)
{
    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_dedupe_claim(dd, tenant, rid, content, intent, on_claim, res), PC_OK);
    assert_true(run_until(&ctx->loop, &res->done, 3000));
    assert_int_equal(res->calls, 1);
}

static void claim_as(ctx_t *ctx, pc_dedupe_t *dd, const char *tenant, const char *rid,
                     const char *content, claim_res_t *res)
{
    claim_full(ctx, dd, tenant, rid, content, NULL, res);
}

static void claim(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, claim_res_t *res)
{
    claim_as(ctx, dd, TENANT, rid, "", res);
}

static void claim_with_intent(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *intent,
                              claim_res_t *res)
{
    claim_full(ctx, dd, TENANT, rid, "", intent, res);
}

static pc_err_t complete(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *token,
                         int64_t fence, const void *result, size_t len)
{
    done_res_t res = {0};
    assert_int_equal(
        pc_dedupe_complete(dd, TENANT, rid, token, fence, result, len, NULL, on_done, &res), PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
}

static pc_err_t renew(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *token)
{
    done_res_t res = {0};
    assert_int_equal(pc_dedupe_renew(dd, TENANT, rid, token, on_done, &res), PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
}

static pc_err_t set_intent(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *token,
                           const void *intent, size_t len)
{
    done_res_t res = {0};
    assert_int_equal(pc_dedupe_set_intent(dd, TENANT, rid, token, intent, len, on_done, &res),
                     PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
}

static pc_err_t release_full(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *token,
                             bool drop_own_intent)
{
    done_res_t res = {0};
    assert_int_equal(pc_dedupe_release(dd, TENANT, rid, token, drop_own_intent, on_done, &res),
                     PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
}

static pc_err_t release(ctx_t *ctx, pc_dedupe_t *dd, const char *rid, const char *token)
{
    return release_full(ctx, dd, rid, token, false);
}

static void command(ctx_t *ctx, reply_res_t *res, int argc, const char **argv)
{
    size_t argvlen[8];
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_redis_command(ctx->redis, on_reply, res, argc, argv, argvlen), PC_OK);
    assert_true(run_until(&ctx->loop, &res->done, 3000));
}

/* hget reads one field of the record with a plain HGET ("" when missing). */
static void hget(ctx_t *ctx, const char *rid, const char *field, char *out, size_t size)
{
    char key[PC_DEDUPE_KEY_MAX];
    const char *argv[] = {"HMGET", key, field};
    reply_res_t res;

    assert_int_equal(pc_dedupe_key(TENANT, rid, key, sizeof(key), NULL), PC_OK);
    command(ctx, &res, 3, argv);
    snprintf(out, size, "%s", res.fields[0]);
}

static long long pttl(ctx_t *ctx, const char *rid)
{
    char key[PC_DEDUPE_KEY_MAX];
    const char *argv[] = {"PTTL", key};
    reply_res_t res;

    assert_int_equal(pc_dedupe_key(TENANT, rid, key, sizeof(key), NULL), PC_OK);
    command(ctx, &res, 2, argv);
    return res.integer;
}

static int group_setup(void **state)
{
    (void)state;
    return fixture_start(&fixture_redis);
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(&fixture_redis);
    return 0;
}

static const unsigned char cert_result[] = {'r', 'e', 's', 0, 0, 0xff, 0x80, '\n', 0, 'x'};

static void test_claim_busy_complete_done(void **state)
{
    claim_res_t a, b;
    char field[128], expect[65];
    unsigned char md[32];
    unsigned mdlen = 0;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 30000);
    claim(&ctx, ctx.a, "r-basic", &a);
    assert_int_equal(a.err, PC_OK);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    assert_int_equal(a.fence, 1);
    assert_int_equal(strspn(a.token, "0123456789abcdef"), 32);
    assert_false(a.has_intent);

    hget(&ctx, "r-basic", "state", field, sizeof(field));
    assert_string_equal(field, "claimed");
    hget(&ctx, "r-basic", "owner", field, sizeof(field));
    assert_string_equal(field, "worker-a");
    assert_true(pttl(&ctx, "r-basic") > 30000); /* outlives the lease */

    claim(&ctx, ctx.b, "r-basic", &b);
    assert_int_equal(b.err, PC_OK);
    assert_int_equal(b.state, PC_CLAIM_BUSY);
    assert_true(b.retry_after_ms > 28000 && b.retry_after_ms <= 30000);

    assert_int_equal(
        complete(&ctx, ctx.a, "r-basic", a.token, a.fence, cert_result, sizeof(cert_result)),
        PC_OK);
    claim(&ctx, ctx.b, "r-basic", &b);
    assert_int_equal(b.err, PC_OK);
    assert_int_equal(b.state, PC_CLAIM_DONE);
    assert_int_equal(b.result_len, sizeof(cert_result));
    assert_memory_equal(b.result, cert_result, sizeof(cert_result));

    /* a replay to the first worker gets the same bytes too */
    claim(&ctx, ctx.a, "r-basic", &a);
    assert_int_equal(a.state, PC_CLAIM_DONE);
    assert_memory_equal(a.result, cert_result, sizeof(cert_result));

    EVP_Digest(cert_result, sizeof(cert_result), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(expect + 2 * i, 3, "%02x", md[i]);
    hget(&ctx, "r-basic", "digest", field, sizeof(field));
    assert_string_equal(field, expect);
    hget(&ctx, "r-basic", "token", field, sizeof(field));
    assert_string_equal(field, "");
    assert_true(pttl(&ctx, "r-basic") > 3590000); /* retention, not the lease */
    ctx_close(&ctx);
}

static void test_stale_token_or_fence_conflicts(void **state)
{
    const char *other = "0123456789abcdef0123456789abcdef";
    claim_res_t a;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 30000);
    claim(&ctx, ctx.a, "r-stale", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);

    assert_int_equal(complete(&ctx, ctx.a, "r-stale", other, a.fence, "x", 1), PC_ERR_CONFLICT);
    assert_int_equal(complete(&ctx, ctx.a, "r-stale", a.token, a.fence + 1, "x", 1),
                     PC_ERR_CONFLICT);
    assert_int_equal(renew(&ctx, ctx.a, "r-stale", other), PC_ERR_CONFLICT);
    assert_int_equal(set_intent(&ctx, ctx.a, "r-stale", other, "i", 1), PC_ERR_CONFLICT);
    assert_int_equal(release(&ctx, ctx.a, "r-stale", other), PC_ERR_CONFLICT);

    assert_int_equal(complete(&ctx, ctx.a, "r-stale", a.token, a.fence, "ok", 2), PC_OK);
    /* done is final: a second completion is refused */
    assert_int_equal(complete(&ctx, ctx.a, "r-stale", a.token, a.fence, "again", 5),
                     PC_ERR_CONFLICT);
    ctx_close(&ctx);
}

static void test_expired_lease_is_taken_over_with_intent(void **state)
{
    static const unsigned char intent[] = {'s', 'n', '=', '0', '1', 0, 0xfe, 'z'};
    claim_res_t a, b;
    done_res_t res = {0};
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 200);
    claim(&ctx, ctx.a, "r-expire", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    assert_int_equal(set_intent(&ctx, ctx.a, "r-expire", a.token, intent, sizeof(intent)), PC_OK);

    claim(&ctx, ctx.b, "r-expire", &b);
    assert_int_equal(b.state, PC_CLAIM_BUSY);
    assert_true(b.retry_after_ms > 0 && b.retry_after_ms <= 200);

    run_for(&ctx.loop, 300); /* worker a "dies": no renew */
    claim(&ctx, ctx.b, "r-expire", &b);
    assert_int_equal(b.err, PC_OK);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_int_equal(b.fence, a.fence + 1);
    assert_string_not_equal(b.token, a.token);
    assert_true(b.has_intent);
    assert_int_equal(b.intent_len, sizeof(intent));
    assert_memory_equal(b.intent, intent, sizeof(intent));

    /* the old owner wakes up: fenced out */
    assert_int_equal(complete(&ctx, ctx.a, "r-expire", a.token, a.fence, "old", 3),
                     PC_ERR_CONFLICT);
    assert_int_equal(pc_dedupe_renew(ctx.a, TENANT, "r-expire", a.token, on_done, &res), PC_OK);
    assert_true(run_until(&ctx.loop, &res.done, 3000));
    assert_int_equal(res.err, PC_ERR_CONFLICT);
    assert_non_null(strstr(res.diag, "do not publish"));

    assert_int_equal(complete(&ctx, ctx.b, "r-expire", b.token, b.fence, "new", 3), PC_OK);
    claim(&ctx, ctx.a, "r-expire", &a);
    assert_int_equal(a.state, PC_CLAIM_DONE);
    assert_int_equal(a.result_len, 3);
    assert_memory_equal(a.result, "new", 3);
    ctx_close(&ctx);
}

static void test_renew_extends_lease(void **state)
{
    claim_res_t a, b;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 300);
    claim(&ctx, ctx.a, "r-renew", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    run_for(&ctx.loop, 200);
    assert_int_equal(renew(&ctx, ctx.a, "r-renew", a.token), PC_OK);
    run_for(&ctx.loop, 200); /* past the original lease, within the renewed one */
    claim(&ctx, ctx.b, "r-renew", &b);
    assert_int_equal(b.state, PC_CLAIM_BUSY);
    assert_true(b.retry_after_ms > 0 && b.retry_after_ms <= 300);

    run_for(&ctx.loop, 400);
    claim(&ctx, ctx.b, "r-renew", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_int_equal(b.fence, 2);
    ctx_close(&ctx);
}

static void test_release_hands_over_at_once(void **state)
{
    claim_res_t a, b;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 30000);
    claim(&ctx, ctx.a, "r-release", &a);
    assert_int_equal(release(&ctx, ctx.a, "r-release", a.token), PC_OK);
    claim(&ctx, ctx.b, "r-release", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_false(b.has_intent);

    /* with an intent, the record stays so that the next owner sees it */
    assert_int_equal(set_intent(&ctx, ctx.b, "r-release", b.token, "csr-sent", 8), PC_OK);
    assert_int_equal(release(&ctx, ctx.b, "r-release", b.token), PC_OK);
    assert_int_equal(release(&ctx, ctx.b, "r-release", b.token), PC_ERR_CONFLICT);
    claim(&ctx, ctx.a, "r-release", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    assert_int_equal(a.fence, b.fence + 1);
    assert_true(a.has_intent);
    assert_memory_equal(a.intent, "csr-sent", 8);
    assert_int_equal(complete(&ctx, ctx.b, "r-release", b.token, b.fence, "x", 1), PC_ERR_CONFLICT);
    ctx_close(&ctx);
}

/* An intent given to the claim is recorded by it (the worker's local-CA requests skip INTENT):
 * the owner that takes a dead one's lease over finds it; its own claim does not overwrite it,
 * so the predecessor's orphans are still named until the successor records its own. */
static void test_claim_records_intent_unless_one_is_left(void **state)
{
    claim_res_t a, b;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 200);
    claim_with_intent(&ctx, ctx.a, "r-ci", "ca=local", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    assert_true(a.intent_recorded);
    assert_false(a.has_intent);

    run_for(&ctx.loop, 300); /* worker a "dies" after the CA signed: no renew, no completion */
    claim_with_intent(&ctx, ctx.b, "r-ci", "ca=other", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_int_equal(b.fence, a.fence + 1);
    assert_false(b.intent_recorded);
    assert_true(b.has_intent);
    assert_int_equal(b.intent_len, strlen("ca=local"));
    assert_memory_equal(b.intent, "ca=local", strlen("ca=local"));

    run_for(&ctx.loop, 300); /* b dies too, before recording its own: a's intent still stands */
    claim(&ctx, ctx.a, "r-ci", &a);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    assert_true(a.has_intent);
    assert_memory_equal(a.intent, "ca=local", strlen("ca=local"));
    assert_int_equal(complete(&ctx, ctx.a, "r-ci", a.token, a.fence, "r", 1), PC_OK);
    ctx_close(&ctx);
}

/* A release that says its intent names nothing (the claim's own, the CA never asked) drops the
 * record as if there were no intent; without that word, the record and its intent stay. */
static void test_release_drops_an_intent_that_names_nothing(void **state)
{
    claim_res_t a, b;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 30000);
    claim_with_intent(&ctx, ctx.a, "r-drop", "ca=local", &a);
    assert_true(a.intent_recorded);
    assert_int_equal(release_full(&ctx, ctx.a, "r-drop", a.token, true), PC_OK);
    claim(&ctx, ctx.b, "r-drop", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_int_equal(b.fence, 1); /* a new record */
    assert_false(b.has_intent);
    assert_int_equal(release(&ctx, ctx.b, "r-drop", b.token), PC_OK);

    claim_with_intent(&ctx, ctx.a, "r-keep", "ca=local", &a);
    assert_int_equal(release_full(&ctx, ctx.a, "r-keep", a.token, false), PC_OK);
    claim(&ctx, ctx.b, "r-keep", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED);
    assert_int_equal(b.fence, a.fence + 1);
    assert_true(b.has_intent);
    assert_memory_equal(b.intent, "ca=local", strlen("ca=local"));
    ctx_close(&ctx);
}

static void test_bad_ids_refused(void **state)
{
    char key[PC_DEDUPE_KEY_MAX], long_id[200];
    claim_res_t res = {0};
    done_res_t done = {0};
    ctx_t ctx;
    (void)state;

    assert_int_equal(pc_dedupe_key("t1", "r1", key, sizeof(key), NULL), PC_OK);
    assert_string_equal(key, "pc:req:{t1}:{r1}");
    /* ids are outside data: separators inside them are encoded, so no pair makes another's key */
    assert_int_equal(pc_dedupe_key("contoso", "x}:{req-1", key, sizeof(key), NULL), PC_OK);
    assert_string_equal(key, "pc:req:{contoso}:{x%7D%3A%7Breq-1}");
    char other[PC_DEDUPE_KEY_MAX];
    assert_int_equal(pc_dedupe_key("contoso}:{x", "req-1", other, sizeof(other), NULL), PC_OK);
    assert_string_equal(other, "pc:req:{contoso%7D%3A%7Bx}:{req-1}");
    assert_string_not_equal(key, other);
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    assert_int_equal(pc_dedupe_key("t1", long_id, key, sizeof(key), NULL), PC_ERR_INVALID_PARAM);
    long_id[128] = '\0';
    assert_int_equal(pc_dedupe_key(long_id, long_id, key, sizeof(key), NULL), PC_OK);

    ctx_open(&ctx, 30000);
    assert_int_equal(pc_dedupe_claim(ctx.a, "", "r", "", NULL, on_claim, &res),
                     PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_dedupe_renew(ctx.a, TENANT, "r", NULL, on_done, &done),
                     PC_ERR_INVALID_PARAM);
    assert_int_equal(
        pc_dedupe_complete(ctx.a, TENANT, "r", "short", 1, NULL, 0, NULL, on_done, &done),
        PC_ERR_INVALID_PARAM);
    run_for(&ctx.loop, 20);
    assert_false(res.done);
    assert_false(done.done);
    ctx_close(&ctx);
}

/* The same request id with other content is a CONFLICT, before and after completion; the
 * same content is replayed; the same id of another tenant is another request. */
static void test_other_content_conflicts(void **state)
{
    claim_res_t a, b;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 30000);
    claim_as(&ctx, ctx.a, TENANT, "r-content", "aaaa", &a);
    assert_int_equal(a.err, PC_OK);
    assert_int_equal(a.state, PC_CLAIM_OWNED);
    claim_as(&ctx, ctx.b, TENANT, "r-content", "bbbb", &b);
    assert_int_equal(b.err, PC_OK);
    assert_int_equal(b.state, PC_CLAIM_CONFLICT); /* while claimed */
    assert_int_equal(complete(&ctx, ctx.a, "r-content", a.token, a.fence, "res", 3), PC_OK);
    claim_as(&ctx, ctx.b, TENANT, "r-content", "bbbb", &b);
    assert_int_equal(b.state, PC_CLAIM_CONFLICT); /* and once done */
    claim_as(&ctx, ctx.b, TENANT, "r-content", "aaaa", &b);
    assert_int_equal(b.state, PC_CLAIM_DONE); /* the same request again: its result */
    claim_as(&ctx, ctx.b, "other-tenant", "r-content", "bbbb", &b);
    assert_int_equal(b.state, PC_CLAIM_OWNED); /* another tenant's request of that id */
    ctx_close(&ctx);
}

static void test_redis_down_is_dependency(void **state)
{
    claim_res_t res;
    ctx_t ctx;
    (void)state;

    ctx_open_port(&ctx, fixture_free_port(), 30000);
    claim(&ctx, ctx.a, "r-down", &res);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_true(pc_err_retryable(res.err));
    assert_non_null(strstr(res.diag, "claim"));
    ctx_close(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_claim_busy_complete_done, fixture_revive),
        cmocka_unit_test_setup(test_stale_token_or_fence_conflicts, fixture_revive),
        cmocka_unit_test_setup(test_expired_lease_is_taken_over_with_intent, fixture_revive),
        cmocka_unit_test_setup(test_renew_extends_lease, fixture_revive),
        cmocka_unit_test_setup(test_release_hands_over_at_once, fixture_revive),
        cmocka_unit_test_setup(test_claim_records_intent_unless_one_is_left, fixture_revive),
        cmocka_unit_test_setup(test_release_drops_an_intent_that_names_nothing, fixture_revive),
        cmocka_unit_test_setup(test_bad_ids_refused, fixture_revive),
        cmocka_unit_test_setup(test_other_content_conflicts, fixture_revive),
        cmocka_unit_test_setup(test_redis_down_is_dependency, fixture_revive),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
