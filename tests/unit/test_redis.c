/*
 * test_redis.c - the Redis connection against a real redis-server: commands, per-command
 * timeouts on a stopped server, reconnect after a stop or a restart on the same port, fast
 * failure while down, EVALSHA with the NOSCRIPT fallback, AUTH, an ACL user, the eviction policy
 * check (CONFIG, or INFO when the ACL forbids CONFIG), and a clean close (uv_loop_close() == 0).
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

typedef struct result {
    bool done;
    int calls;
    pc_err_t err;
    int type;
    long long integer;
    size_t elements;
    char str[256];
    size_t len;
    char elem[4][64];
    size_t elem_len[4];
    char diag[512];
} result_t;

typedef struct ctx {
    uv_loop_t loop;
    pc_redis_t *redis;
    bool closed;
    int ups, downs;
    bool up;
} ctx_t;

static void copy_str(char *dst, size_t size, size_t *len, const char *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    *len = n;
}

static void on_result(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    result_t *res = arg;

    size_t dlen;

    res->calls++;
    res->done = true;
    res->err = err;
    if (diag != NULL)
        copy_str(res->diag, sizeof(res->diag), &dlen, diag->msg, strlen(diag->msg));
    if (reply == NULL)
        return;
    res->type = reply->type;
    res->integer = reply->integer;
    res->elements = reply->elements;
    if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
        reply->type == REDIS_REPLY_ERROR)
        copy_str(res->str, sizeof(res->str), &res->len, reply->str, reply->len);
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && i < 4; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            copy_str(res->elem[i], sizeof(res->elem[i]), &res->elem_len[i], reply->element[i]->str,
                     reply->element[i]->len);
        else if (reply->element[i]->type == REDIS_REPLY_INTEGER)
            res->elem_len[i] = (size_t)snprintf(res->elem[i], sizeof(res->elem[i]), "%lld",
                                                reply->element[i]->integer);
}

static void on_state(void *arg, bool up)
{
    ctx_t *ctx = arg;
    ctx->up = up;
    if (up)
        ctx->ups++;
    else
        ctx->downs++;
}

static void on_closed(void *arg)
{
    ctx_t *ctx = arg;
    ctx->closed = true;
}

static void ctx_open(ctx_t *ctx, const pc_redis_config_t *cfg)
{
    pc_diag_t diag;

    memset(ctx, 0, sizeof(*ctx));
    assert_int_equal(uv_loop_init(&ctx->loop), 0);
    assert_int_equal(pc_redis_new(&ctx->loop, cfg, &ctx->redis, &diag), PC_OK);
    pc_redis_on_state(ctx->redis, on_state, ctx);
}

static pc_redis_config_t fast_cfg(int port)
{
    pc_redis_config_t cfg = {.host = "127.0.0.1",
                             .port = port,
                             .command_timeout_ms = 300,
                             .reconnect_min_ms = 20,
                             .reconnect_max_ms = 150};
    return cfg;
}

static void ctx_close(ctx_t *ctx)
{
    pc_redis_close(ctx->redis, on_closed, ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    assert_true(ctx->closed);
    assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

static bool wait_ready(ctx_t *ctx, unsigned ms)
{
    uint64_t t0 = uv_hrtime();
    while (!pc_redis_ready(ctx->redis) && ms_since(t0) < ms)
        run_for(&ctx->loop, 10);
    return pc_redis_ready(ctx->redis);
}

/* cmd runs one text command to its answer. */
static void cmd(ctx_t *ctx, result_t *res, int argc, const char **argv)
{
    size_t argvlen[16];

    assert_true(argc <= 16);
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_redis_command(ctx->redis, on_result, res, argc, argv, argvlen), PC_OK);
    assert_false(res->done); /* never called back from inside the call */
    assert_true(run_until(&ctx->loop, &res->done, 5000));
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

static void test_commands(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *set[] = {"SET", "pc:test:bin", "a\0b"};
    size_t setlen[] = {3, 11, 3};
    const char *get[] = {"GET", "pc:test:bin"};
    const char *incr[] = {"INCR", "pc:test:bin"};
    result_t res;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    assert_false(pc_redis_ready(ctx.redis));
    assert_true(wait_ready(&ctx, 2000));
    assert_int_equal(ctx.ups, 1);
    assert_true(ctx.up);

    memset(&res, 0, sizeof(res));
    assert_int_equal(pc_redis_command(ctx.redis, on_result, &res, 3, set, setlen), PC_OK);
    assert_true(run_until(&ctx.loop, &res.done, 2000));
    assert_int_equal(res.err, PC_OK);
    assert_int_equal(res.type, REDIS_REPLY_STATUS);

    cmd(&ctx, &res, 2, get);
    assert_int_equal(res.err, PC_OK);
    assert_int_equal(res.type, REDIS_REPLY_STRING);
    assert_int_equal(res.len, 3);
    assert_memory_equal(res.str, "a\0b", 3);

    /* an error reply is an answer: PC_OK, and the caller reads it */
    cmd(&ctx, &res, 2, incr);
    assert_int_equal(res.err, PC_OK);
    assert_int_equal(res.type, REDIS_REPLY_ERROR);
    assert_int_equal(res.calls, 1);

    ctx_close(&ctx);
    assert_int_equal(ctx.downs, 0); /* no state news after close */
}

static void test_down_fails_fast(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_free_port());
    const char *ping[] = {"PING"};
    char where[64];
    uint64_t t0;
    result_t res;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    run_for(&ctx.loop, 100);
    assert_false(pc_redis_ready(ctx.redis));
    t0 = uv_hrtime();
    cmd(&ctx, &res, 1, ping);
    assert_true(ms_since(t0) < 100);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_int_equal(res.calls, 1);
    snprintf(where, sizeof(where), "127.0.0.1:%d", cfg.port);
    assert_non_null(strstr(res.diag, where));
    assert_int_equal(ctx.ups, 0);
    ctx_close(&ctx);
}

static void test_stopped_server_times_out_and_recovers(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *ping[] = {"PING"};
    uint64_t t0, took;
    result_t res;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    assert_int_equal(kill(fixture_redis.pid, SIGSTOP), 0);

    t0 = uv_hrtime();
    cmd(&ctx, &res, 1, ping);
    took = ms_since(t0);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_non_null(strstr(res.diag, "did not answer PING within 300 ms"));
    assert_true(took >= 280 && took < 1500);
    assert_false(pc_redis_ready(ctx.redis));
    assert_int_equal(ctx.downs, 1);

    /* still stopped: reconnects reach the kernel's backlog but never Redis, so not ready */
    run_for(&ctx.loop, 500);
    assert_false(pc_redis_ready(ctx.redis));
    t0 = uv_hrtime();
    cmd(&ctx, &res, 1, ping);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_true(ms_since(t0) < 100);

    assert_int_equal(kill(fixture_redis.pid, SIGCONT), 0);
    assert_true(wait_ready(&ctx, 3000));
    assert_int_equal(ctx.ups, 2);
    cmd(&ctx, &res, 1, ping);
    assert_int_equal(res.err, PC_OK);
    assert_string_equal(res.str, "PONG");
    ctx_close(&ctx);
}

static void test_restart_on_same_port(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *set[] = {"SET", "pc:test:k", "v"};
    const char *get[] = {"GET", "pc:test:k"};
    result_t res;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    fixture_kill(&fixture_redis);
    for (int i = 0; i < 200 && pc_redis_ready(ctx.redis); i++)
        run_for(&ctx.loop, 10);
    assert_false(pc_redis_ready(ctx.redis));
    assert_int_equal(ctx.downs, 1);

    cmd(&ctx, &res, 3, set);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);

    assert_int_equal(fixture_start(&fixture_redis), 0);
    assert_true(wait_ready(&ctx, 3000));
    assert_int_equal(ctx.ups, 2);
    cmd(&ctx, &res, 3, set);
    assert_int_equal(res.err, PC_OK);
    cmd(&ctx, &res, 2, get);
    assert_int_equal(res.err, PC_OK);
    assert_string_equal(res.str, "v");
    ctx_close(&ctx);
}

static void eval(ctx_t *ctx, pc_redis_script_t *script, result_t *res)
{
    const char *argv[] = {"pc:test:key", "a\0b", "x"};
    size_t argvlen[] = {11, 3, 1};

    memset(res, 0, sizeof(*res));
    assert_int_equal(pc_redis_eval(ctx->redis, script, 1, 3, argv, argvlen, on_result, res), PC_OK);
    assert_true(run_until(&ctx->loop, &res->done, 2000));
    assert_int_equal(res->err, PC_OK);
    assert_int_equal(res->type, REDIS_REPLY_ARRAY);
    assert_int_equal(res->elements, 3);
    assert_string_equal(res->elem[0], "pc:test:key");
    assert_int_equal(res->elem_len[1], 3);
    assert_memory_equal(res->elem[1], "a\0b", 3);
    assert_string_equal(res->elem[2], "x");
}

static long long script_exists(ctx_t *ctx, const char *sha1)
{
    const char *argv[] = {"SCRIPT", "EXISTS", sha1};
    result_t res;

    cmd(ctx, &res, 3, argv);
    assert_int_equal(res.type, REDIS_REPLY_ARRAY);
    return strtoll(res.elem[0], NULL, 10);
}

static void test_eval_loads_script_on_noscript(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    pc_redis_script_t script = {.name = "echo", .source = "return {KEYS[1], ARGV[1], ARGV[2]}"};
    const char *flush[] = {"SCRIPT", "FLUSH"};
    const char *load[] = {"SCRIPT", "LOAD", script.source};
    result_t res;
    ctx_t ctx;
    (void)state;

    pc_redis_script_init(&script);
    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));

    cmd(&ctx, &res, 2, flush);
    assert_int_equal(script_exists(&ctx, script.sha1), 0);
    eval(&ctx, &script, &res); /* NOSCRIPT, then EVAL */
    assert_int_equal(script_exists(&ctx, script.sha1), 1);
    eval(&ctx, &script, &res); /* EVALSHA */

    cmd(&ctx, &res, 2, flush);
    assert_int_equal(script_exists(&ctx, script.sha1), 0);
    eval(&ctx, &script, &res);
    assert_int_equal(script_exists(&ctx, script.sha1), 1);

    /* our SHA1 is the one Redis computes */
    cmd(&ctx, &res, 3, load);
    assert_string_equal(res.str, script.sha1);
    ctx_close(&ctx);
}

static void test_close_fails_pending(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *ping[] = {"PING"};
    size_t pinglen[] = {4};
    result_t res;
    ctx_t ctx;
    (void)state;

    cfg.command_timeout_ms = 10000;
    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    assert_int_equal(kill(fixture_redis.pid, SIGSTOP), 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(pc_redis_command(ctx.redis, on_result, &res, 1, ping, pinglen), PC_OK);
    run_for(&ctx.loop, 50);
    assert_false(res.done);

    pc_redis_close(ctx.redis, on_closed, &ctx);
    assert_true(res.done);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    /* closing: new commands are refused, and their callback never runs */
    assert_int_equal(pc_redis_command(ctx.redis, on_result, &res, 1, ping, pinglen),
                     PC_ERR_DEPENDENCY);
    uv_run(&ctx.loop, UV_RUN_DEFAULT);
    assert_int_equal(res.calls, 1);
    assert_true(ctx.closed);
    assert_int_equal(uv_loop_close(&ctx.loop), 0);
    assert_int_equal(kill(fixture_redis.pid, SIGCONT), 0);
}

static void test_close_while_connecting(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_free_port());
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg); /* refused, backing off */
    run_for(&ctx.loop, 30);
    ctx_close(&ctx);

    cfg = fast_cfg(fixture_redis.port);
    cfg.host = "localhost"; /* resolved on the threadpool */
    ctx_open(&ctx, &cfg);
    ctx_close(&ctx);

    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 3000));
    ctx_close(&ctx);
}

typedef struct closer {
    ctx_t *ctx;
    result_t res;
} closer_t;

static void close_in_callback(void *arg, pc_err_t err, const redisReply *reply,
                              const pc_diag_t *diag)
{
    closer_t *closer = arg;

    on_result(&closer->res, err, reply, diag);
    pc_redis_close(closer->ctx->redis, on_closed, closer->ctx);
}

static void test_close_from_reply_callback(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *ping[] = {"PING"};
    size_t pinglen[] = {4};
    closer_t closer;
    result_t second;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    memset(&closer, 0, sizeof(closer));
    memset(&second, 0, sizeof(second));
    closer.ctx = &ctx;
    assert_int_equal(pc_redis_command(ctx.redis, close_in_callback, &closer, 1, ping, pinglen),
                     PC_OK);
    assert_int_equal(pc_redis_command(ctx.redis, on_result, &second, 1, ping, pinglen), PC_OK);
    uv_run(&ctx.loop, UV_RUN_DEFAULT);
    assert_int_equal(closer.res.calls, 1);
    assert_int_equal(closer.res.err, PC_OK);
    assert_int_equal(second.calls, 1);
    assert_int_equal(second.err, PC_ERR_DEPENDENCY);
    assert_true(ctx.closed);
    assert_int_equal(uv_loop_close(&ctx.loop), 0);
}

static void test_auth(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *set_pass[] = {"CONFIG", "SET", "requirepass", "s3cret"};
    const char *clear_pass[] = {"CONFIG", "SET", "requirepass", ""};
    const char *ping[] = {"PING"};
    result_t res;
    ctx_t ctx, good, bad;
    (void)state;

    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    cmd(&ctx, &res, 4, set_pass);
    assert_int_equal(res.type, REDIS_REPLY_STATUS);
    ctx_close(&ctx);

    /* refused AUTH: never ready, and commands fail with the reason */
    cfg.password = "wrong";
    ctx_open(&bad, &cfg);
    run_for(&bad.loop, 500);
    assert_false(pc_redis_ready(bad.redis));
    assert_int_equal(bad.ups, 0);
    cmd(&bad, &res, 1, ping);
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_non_null(strstr(res.diag, "WRONGPASS"));
    ctx_close(&bad);

    cfg.password = "s3cret";
    ctx_open(&good, &cfg);
    assert_true(wait_ready(&good, 2000));
    cmd(&good, &res, 1, ping);
    assert_int_equal(res.err, PC_OK);
    assert_string_equal(res.str, "PONG");
    cmd(&good, &res, 4, clear_pass);
    assert_int_equal(res.type, REDIS_REPLY_STATUS);
    ctx_close(&good);
}

typedef struct checked {
    bool done;
    pc_err_t err;
    char diag[512];
} checked_t;

static void on_checked(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    checked_t *c = arg;
    c->done = true;
    c->err = err;
    snprintf(c->diag, sizeof(c->diag), "%s", diag != NULL ? diag->msg : "");
}

static void check_eviction(ctx_t *ctx, checked_t *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(pc_redis_check_eviction(ctx->redis, on_checked, c), PC_OK);
    assert_true(run_until(&ctx->loop, &c->done, 5000));
}

static void test_eviction_policy(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *lru[] = {"CONFIG", "SET", "maxmemory-policy", "volatile-lru"};
    const char *noeviction[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction"};
    result_t res;
    checked_t c;
    ctx_t ctx;
    (void)state;

    ctx_open(&ctx, &cfg);
    check_eviction(&ctx, &c); /* not connected yet: ask again later */
    assert_int_equal(c.err, PC_ERR_DEPENDENCY);
    assert_true(wait_ready(&ctx, 2000));
    check_eviction(&ctx, &c);
    assert_int_equal(c.err, PC_OK);
    cmd(&ctx, &res, 4, lru);
    check_eviction(&ctx, &c);
    assert_int_equal(c.err, PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(c.diag, "maxmemory-policy volatile-lru"));
    assert_non_null(strstr(c.diag, "set maxmemory-policy noeviction"));
    cmd(&ctx, &res, 4, noeviction);
    ctx_close(&ctx);
}

/* A durable script waits for replicas (WAIT); this Redis has none, so with min_replicas_acks 1
 * the write is reported as not safe (the caller retries), and without it the reply is as
 * usual. */
static void test_durable_without_replicas(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    pc_redis_script_t script = {.name = "durable_echo",
                                .source = "redis.call('SET', KEYS[1], ARGV[1])\n"
                                          "return {KEYS[1], ARGV[1], ARGV[2]}",
                                .durable = true};
    const char *argv[] = {"pc:test:durable", "a\0b", "x"};
    size_t argvlen[] = {15, 3, 1};
    result_t res;
    ctx_t ctx;
    (void)state;

    pc_redis_script_init(&script);
    cfg.min_replicas_acks = 1;
    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    memset(&res, 0, sizeof(res));
    assert_int_equal(pc_redis_eval(ctx.redis, &script, 1, 3, argv, argvlen, on_result, &res),
                     PC_OK);
    assert_true(run_until(&ctx.loop, &res.done, 2000));
    assert_int_equal(res.err, PC_ERR_DEPENDENCY);
    assert_non_null(strstr(res.diag, "durable_echo"));
    assert_non_null(strstr(res.diag, "0 replica(s) confirmed its write"));
    assert_non_null(strstr(res.diag, "redis.min_replicas_acks"));
    assert_int_equal(res.calls, 1);
    assert_true(wait_ready(&ctx, 2000)); /* not Sentinel: the connection stays */
    ctx_close(&ctx);

    cfg.min_replicas_acks = 0;
    ctx_open(&ctx, &cfg);
    assert_true(wait_ready(&ctx, 2000));
    eval(&ctx, &script, &res);
    ctx_close(&ctx);
}

static void test_acl_user(void **state)
{
    pc_redis_config_t cfg = fast_cfg(fixture_redis.port);
    const char *add_user[] = {"ACL", "SETUSER", "pkcs",  "on",     ">acl-s3cret",
                              "~*",  "&*",      "+@all", "-config"};
    const char *del_user[] = {"ACL", "DELUSER", "pkcs"};
    const char *whoami[] = {"ACL", "WHOAMI"};
    result_t res;
    checked_t c;
    ctx_t admin, bad, good;
    (void)state;

    ctx_open(&admin, &cfg);
    assert_true(wait_ready(&admin, 2000));
    cmd(&admin, &res, 9, add_user);
    assert_int_equal(res.type, REDIS_REPLY_STATUS);

    /* a wrong password: refused, and the reason names the settings, not the password */
    cfg.username = "pkcs";
    cfg.password = "not-it";
    ctx_open(&bad, &cfg);
    run_for(&bad.loop, 500);
    assert_false(pc_redis_ready(bad.redis));
    assert_true(pc_redis_refused(bad.redis));
    assert_non_null(strstr(pc_redis_last_error(bad.redis), "WRONGPASS"));
    assert_non_null(
        strstr(pc_redis_last_error(bad.redis), "check redis.username and redis.password"));
    assert_null(strstr(pc_redis_last_error(bad.redis), "not-it"));
    ctx_close(&bad);

    /* AUTH pkcs acl-s3cret: logged in as that user; CONFIG is forbidden, INFO tells the policy */
    cfg.password = "acl-s3cret";
    ctx_open(&good, &cfg);
    assert_true(wait_ready(&good, 2000));
    assert_false(pc_redis_refused(good.redis));
    cmd(&good, &res, 2, whoami);
    assert_string_equal(res.str, "pkcs");
    check_eviction(&good, &c);
    assert_int_equal(c.err, PC_OK);
    ctx_close(&good);

    cmd(&admin, &res, 3, del_user);
    ctx_close(&admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_commands, fixture_revive),
        cmocka_unit_test_setup(test_down_fails_fast, fixture_revive),
        cmocka_unit_test_setup(test_stopped_server_times_out_and_recovers, fixture_revive),
        cmocka_unit_test_setup(test_restart_on_same_port, fixture_revive),
        cmocka_unit_test_setup(test_eval_loads_script_on_noscript, fixture_revive),
        cmocka_unit_test_setup(test_close_fails_pending, fixture_revive),
        cmocka_unit_test_setup(test_close_while_connecting, fixture_revive),
        cmocka_unit_test_setup(test_close_from_reply_callback, fixture_revive),
        cmocka_unit_test_setup(test_auth, fixture_revive),
        cmocka_unit_test_setup(test_eviction_policy, fixture_revive),
        cmocka_unit_test_setup(test_acl_user, fixture_revive),
        cmocka_unit_test_setup(test_durable_without_replicas, fixture_revive),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
