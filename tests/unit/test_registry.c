/*
 * test_registry.c - worker registration against a real redis-server: the cluster refuses a
 * worker over max_instances with a message naming the limit, makes room when one leaves or
 * stops heartbeating, and heartbeats update what the coordinator reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "redis.h"
#include "redis_fixture.h"
#include "registry.h"

typedef struct reg_res {
    bool done;
    int calls;
    pc_err_t err;
    char diag[512];
} reg_res_t;

typedef struct hash_res {
    bool done;
    long long integer;
    size_t n;
    char items[32][128];
} hash_res_t;

typedef struct ctx {
    uv_loop_t loop;
    pc_redis_t *redis;
    pc_registry_t *reg[4];
    bool closed;
} ctx_t;

static void on_reg(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    reg_res_t *res = arg;

    res->calls++;
    res->done = true;
    res->err = err;
    if (diag != NULL)
        snprintf(res->diag, sizeof(res->diag), "%s", diag->msg);
}

static void on_hash(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    hash_res_t *res = arg;

    res->done = true;
    if (err != PC_OK)
        return;
    res->integer = reply->integer;
    if (reply->type == REDIS_REPLY_STRING) {
        snprintf(res->items[0], sizeof(res->items[0]), "%.*s", (int)reply->len, reply->str);
        res->n = 1;
    }
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && i < 32; i++) {
        snprintf(res->items[i], sizeof(res->items[i]), "%.*s", (int)reply->element[i]->len,
                 reply->element[i]->str != NULL ? reply->element[i]->str : "");
        res->n++;
    }
}

static void on_closed(void *arg)
{
    ((ctx_t *)arg)->closed = true;
}

static void command(ctx_t *ctx, hash_res_t *res, int argc, const char **argv)
{
    size_t argvlen[8];
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_redis_command(ctx->redis, on_hash, res, argc, argv, argvlen), PC_OK);
    assert_true(run_until(&ctx->loop, &res->done, 3000));
}

/* field returns the value of name in an HGETALL answer, or NULL. */
static const char *field(const hash_res_t *res, const char *name)
{
    for (size_t i = 0; i + 1 < res->n; i += 2)
        if (strcmp(res->items[i], name) == 0)
            return res->items[i + 1];
    return NULL;
}

static void ctx_open(ctx_t *ctx, unsigned max, unsigned ttl_ms)
{
    static const char *ids[] = {"w-1", "w-2", "w-3", "w-4"};
    pc_redis_config_t cfg = {.port = fixture_redis.port, .command_timeout_ms = 1000};
    const char *flush[] = {"FLUSHALL"};
    uint64_t t0 = uv_hrtime();
    hash_res_t res;
    pc_diag_t diag;

    memset(ctx, 0, sizeof(*ctx));
    assert_int_equal(uv_loop_init(&ctx->loop), 0);
    assert_int_equal(pc_redis_new(&ctx->loop, &cfg, &ctx->redis, &diag), PC_OK);
    for (int i = 0; i < 4; i++) {
        pc_worker_info_t info = {ids[i], "host-a", "0.1.0", 1700000000000 + i};
        assert_int_equal(pc_registry_new(ctx->redis, &info, max, ttl_ms, &ctx->reg[i], &diag),
                         PC_OK);
    }
    while (!pc_redis_ready(ctx->redis) && ms_since(t0) < 3000)
        run_for(&ctx->loop, 10);
    assert_true(pc_redis_ready(ctx->redis));
    command(ctx, &res, 1, flush);
}

static void ctx_close(ctx_t *ctx)
{
    for (int i = 0; i < 4; i++)
        pc_registry_free(ctx->reg[i]);
    pc_redis_close(ctx->redis, on_closed, ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    assert_true(ctx->closed);
    assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

static pc_err_t do_register(ctx_t *ctx, int i, reg_res_t *res)
{
    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_registry_register(ctx->reg[i], on_reg, res), PC_OK);
    assert_true(run_until(&ctx->loop, &res->done, 3000));
    assert_int_equal(res->calls, 1);
    return res->err;
}

static pc_err_t do_heartbeat(ctx_t *ctx, int i, const char *counts, const char *last_error)
{
    reg_res_t res = {0};
    assert_int_equal(pc_registry_heartbeat(ctx->reg[i], counts, last_error, on_reg, &res), PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
}

static pc_err_t do_unregister(ctx_t *ctx, int i)
{
    reg_res_t res = {0};
    assert_int_equal(pc_registry_unregister(ctx->reg[i], on_reg, &res), PC_OK);
    assert_true(run_until(&ctx->loop, &res.done, 3000));
    return res.err;
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

static void test_limit_refuses_then_makes_room(void **state)
{
    const char *zcard[] = {"ZCARD", "pc:workers"};
    const char *exists[] = {"EXISTS", "pc:worker:{w-1}"};
    reg_res_t res;
    hash_res_t h;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 3, 15000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(do_register(&ctx, i, &res), PC_OK);
    assert_int_equal(do_register(&ctx, 3, &res), PC_ERR_CONFLICT);
    assert_false(pc_err_retryable(res.err));
    assert_non_null(strstr(res.diag, "w-4"));
    assert_non_null(strstr(res.diag, "already has 3 active workers"));
    assert_non_null(strstr(res.diag, "max_instances = 3"));
    assert_non_null(strstr(res.diag, "stop one or raise the limit"));

    /* registering again is a refresh, not a new member */
    assert_int_equal(do_register(&ctx, 0, &res), PC_OK);
    command(&ctx, &h, 2, zcard);
    assert_int_equal(h.integer, 3);

    assert_int_equal(do_unregister(&ctx, 0), PC_OK);
    command(&ctx, &h, 2, exists);
    assert_int_equal(h.integer, 0);
    assert_int_equal(do_register(&ctx, 3, &res), PC_OK);
    assert_int_equal(do_register(&ctx, 0, &res), PC_ERR_CONFLICT);
    ctx_close(&ctx);
}

static void test_silent_worker_expires(void **state)
{
    reg_res_t res;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 1, 300);
    assert_int_equal(do_register(&ctx, 0, &res), PC_OK);
    assert_int_equal(do_register(&ctx, 1, &res), PC_ERR_CONFLICT);
    assert_non_null(strstr(res.diag, "already has 1 active workers"));
    assert_int_equal(do_heartbeat(&ctx, 0, NULL, NULL), PC_OK); /* alive while it beats */
    run_for(&ctx.loop, 200);
    assert_int_equal(do_register(&ctx, 1, &res), PC_ERR_CONFLICT);

    run_for(&ctx.loop, 250); /* w-1 misses its heartbeat */
    assert_int_equal(do_register(&ctx, 1, &res), PC_OK);
    /* w-1 comes back: it must join again, and the cluster is full */
    assert_int_equal(do_heartbeat(&ctx, 0, NULL, NULL), PC_ERR_CONFLICT);
    ctx_close(&ctx);
}

static void test_heartbeat_updates_fields(void **state)
{
    const char *hgetall[] = {"HGETALL", "pc:worker:{w-2}"};
    const char *pttl[] = {"PTTL", "pc:worker:{w-2}"};
    const char *zscore[] = {"ZSCORE", "pc:workers", "w-2"};
    long long seen1, seen2;
    reg_res_t res;
    hash_res_t h;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, 100, 1000);
    assert_int_equal(do_register(&ctx, 1, &res), PC_OK);
    command(&ctx, &h, 2, hgetall);
    assert_string_equal(field(&h, "id"), "w-2");
    assert_string_equal(field(&h, "host"), "host-a");
    assert_string_equal(field(&h, "version"), "0.1.0");
    assert_string_equal(field(&h, "started_at"), "1700000000001");
    assert_null(field(&h, "counts"));
    seen1 = strtoll(field(&h, "last_seen"), NULL, 10);
    assert_true(seen1 > 1700000000000);

    run_for(&ctx.loop, 20);
    assert_int_equal(do_heartbeat(&ctx, 1, "{\"issued\":10,\"failed\":1}", "CA busy"), PC_OK);
    command(&ctx, &h, 2, hgetall);
    assert_string_equal(field(&h, "counts"), "{\"issued\":10,\"failed\":1}");
    assert_string_equal(field(&h, "last_error"), "CA busy");
    seen2 = strtoll(field(&h, "last_seen"), NULL, 10);
    assert_true(seen2 >= seen1 + 15);

    /* NULL leaves a field as it was */
    assert_int_equal(do_heartbeat(&ctx, 1, "{\"issued\":11}", NULL), PC_OK);
    command(&ctx, &h, 2, hgetall);
    assert_string_equal(field(&h, "counts"), "{\"issued\":11}");
    assert_string_equal(field(&h, "last_error"), "CA busy");
    seen2 = strtoll(field(&h, "last_seen"), NULL, 10);

    command(&ctx, &h, 2, pttl);
    assert_true(h.integer > 1000 && h.integer <= 4000); /* kept past the TTL for "Inactive" */
    command(&ctx, &h, 3, zscore);                       /* alive until the last heartbeat + ttl */
    assert_int_equal(h.n, 1);
    assert_int_equal(strtoll(h.items[0], NULL, 10), seen2 + 1000);
    ctx_close(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_limit_refuses_then_makes_room, fixture_revive),
        cmocka_unit_test_setup(test_silent_worker_expires, fixture_revive),
        cmocka_unit_test_setup(test_heartbeat_updates_fields, fixture_revive),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
