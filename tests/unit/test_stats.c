/*
 * test_stats.c - the cluster's statistics against a real redis-server: what workers record is
 * what the coordinator reads back (totals, each minute's counts, the latency buckets), in the
 * minute it happened, with the minute's hash expiring and the total not; percentiles from the
 * histograms; bad calls refused; a worker's counts of many requests written in one script per
 * hash.
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
#include "stats.h"

#define MINUTE 29000000LL /* a unix minute in 2025 */
#define AT(min, s) (((MINUTE) + (min)) * 60000 + (s)*1000)

typedef struct ctx {
    uv_loop_t loop;
    pc_redis_t *redis;
    bool closed;
} ctx_t;

typedef struct done {
    bool done;
    int calls;
    pc_err_t err;
    pc_stats_view_t view;
    long long integer;
    char text[8192];
} done_t;

static void on_closed(void *arg)
{
    ((ctx_t *)arg)->closed = true;
}

static void on_recorded(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    done_t *d = arg;
    d->done = true;
    d->calls++;
    d->err = err;
}

static void on_read(void *arg, pc_err_t err, const pc_stats_view_t *view, const pc_diag_t *diag)
{
    done_t *d = arg;
    d->done = true;
    d->calls++;
    d->err = err;
    if (view != NULL)
        d->view = *view;
}

static void on_reply(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    done_t *d = arg;
    d->done = true;
    d->err = err;
    if (err == PC_OK)
        d->integer = reply->integer;
    if (err == PC_OK && reply->type == REDIS_REPLY_STRING)
        snprintf(d->text, sizeof(d->text), "%s", reply->str);
}

static void command(ctx_t *ctx, done_t *d, int argc, const char **argv)
{
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    memset(d, 0, sizeof(*d));
    assert_int_equal(pc_redis_command(ctx->redis, on_reply, d, argc, argv, lens), PC_OK);
    assert_true(run_until(&ctx->loop, &d->done, 3000));
}

static void ctx_open(ctx_t *ctx)
{
    pc_redis_config_t cfg = {.port = fixture_redis.port, .command_timeout_ms = 1000};
    const char *flush[] = {"FLUSHALL"};
    uint64_t t0 = uv_hrtime();
    done_t d;
    pc_diag_t diag;
    memset(ctx, 0, sizeof(*ctx));
    assert_int_equal(uv_loop_init(&ctx->loop), 0);
    assert_int_equal(pc_redis_new(&ctx->loop, &cfg, &ctx->redis, &diag), PC_OK);
    while (!pc_redis_ready(ctx->redis) && ms_since(t0) < 3000)
        run_for(&ctx->loop, 10);
    assert_true(pc_redis_ready(ctx->redis));
    command(ctx, &d, 1, flush);
}

static void ctx_close(ctx_t *ctx)
{
    pc_redis_close(ctx->redis, on_closed, ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    assert_true(ctx->closed);
    assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

static void record(ctx_t *ctx, pc_stats_count_t outcome, bool renewed, bool conflict,
                   int64_t latency_ms, int64_t at_ms)
{
    done_t d = {0};
    pc_stats_event_t ev = {outcome, renewed, conflict, latency_ms, at_ms};
    assert_int_equal(pc_stats_record(ctx->redis, &ev, on_recorded, &d), PC_OK);
    assert_false(d.done); /* never inside the call */
    assert_true(run_until(&ctx->loop, &d.done, 3000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, PC_OK);
}

static void read_stats(ctx_t *ctx, int64_t now_ms, unsigned minutes, done_t *d)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(pc_stats_read(ctx->redis, now_ms, minutes, on_read, d), PC_OK);
    assert_false(d->done);
    assert_true(run_until(&ctx->loop, &d->done, 3000));
    assert_int_equal(d->calls, 1);
}

static void test_recorded_is_read(void **state)
{
    ctx_t ctx;
    done_t d;
    (void)state;
    ctx_open(&ctx);
    record(&ctx, PC_STATS_ISSUED, false, false, 5, AT(0, 1));      /* <= 10 ms */
    record(&ctx, PC_STATS_ISSUED, false, false, 30, AT(0, 2));     /* (25, 50] */
    record(&ctx, PC_STATS_ISSUED, false, false, 20000, AT(0, 59)); /* +Inf */
    record(&ctx, PC_STATS_FAILED, false, true, 10, AT(0, 3));      /* a conflict, <= 10 ms */
    record(&ctx, PC_STATS_ISSUED, true, false, 100, AT(2, 0));     /* a renewal, two minutes on */
    record(&ctx, PC_STATS_DLQ, false, false, -1, AT(2, 5));        /* not measured */
    record(&ctx, PC_STATS_REVOKED, false, false, 7, AT(-90, 0));   /* outside the hour read */

    read_stats(&ctx, AT(2, 30), 60, &d);
    assert_int_equal(d.err, PC_OK);
    const uint64_t *t = d.view.total;
    assert_int_equal(t[PC_STATS_ISSUED], 4);
    assert_int_equal(t[PC_STATS_FAILED], 1);
    assert_int_equal(t[PC_STATS_CONFLICTS], 1);
    assert_int_equal(t[PC_STATS_RENEWED], 1);
    assert_int_equal(t[PC_STATS_DLQ], 1);
    assert_int_equal(t[PC_STATS_REVOKED], 1); /* the total has everything */
    assert_int_equal(t[PC_STATS_IMPORTED], 0);

    assert_int_equal(d.view.count, 60);
    const pc_stats_minute_t *now = &d.view.minutes[59], *m0 = &d.view.minutes[57];
    assert_int_equal(now->minute, MINUTE + 2);
    assert_int_equal(m0->minute, MINUTE);
    assert_int_equal(d.view.minutes[0].minute, MINUTE + 2 - 59);
    assert_int_equal(m0->counts[PC_STATS_ISSUED], 3);
    assert_int_equal(m0->counts[PC_STATS_FAILED], 1);
    assert_int_equal(m0->counts[PC_STATS_CONFLICTS], 1);
    assert_int_equal(m0->lat[0], 2); /* 5 and 10 ms: <= 10 */
    assert_int_equal(m0->lat[2], 1); /* 30 ms: (25, 50] */
    assert_int_equal(m0->lat[PC_STATS_BUCKETS - 1], 1);
    assert_int_equal(m0->lat_sum_ms, 5 + 30 + 20000 + 10);
    assert_int_equal(now->counts[PC_STATS_ISSUED], 1);
    assert_int_equal(now->counts[PC_STATS_RENEWED], 1);
    assert_int_equal(now->counts[PC_STATS_DLQ], 1);
    assert_int_equal(now->lat[3], 1); /* 100 ms: (50, 100] */
    uint64_t measured = 0;
    for (int b = 0; b < PC_STATS_BUCKETS; b++)
        measured += now->lat[b];
    assert_int_equal(measured, 1); /* the dead letter was not measured */
    for (int i = 0; i < 57; i++)
        assert_int_equal(d.view.minutes[i].counts[PC_STATS_REVOKED], 0);
    assert_int_equal(d.view.minutes[58].counts[PC_STATS_ISSUED], 0);

    /* a minute's hash expires (after about two hours), the total never */
    char key[64];
    snprintf(key, sizeof(key), "pc:stats:min:%lld", MINUTE);
    const char *ttl_min[] = {"TTL", key}, *ttl_total[] = {"TTL", "pc:stats:total"};
    command(&ctx, &d, 2, ttl_min);
    assert_true(d.integer > 3600 && d.integer <= PC_STATS_KEEP_S);
    command(&ctx, &d, 2, ttl_total);
    assert_int_equal(d.integer, -1);
    ctx_close(&ctx);
}

/* evalsha_calls: EVALSHA commands Redis ran since its statistics were last reset. */
static long evalsha_calls(ctx_t *ctx)
{
    done_t d;
    const char *info[] = {"INFO", "commandstats"};
    command(ctx, &d, 2, info);
    const char *at = strstr(d.text, "cmdstat_evalsha:calls=");
    return at != NULL ? strtol(at + strlen("cmdstat_evalsha:calls="), NULL, 10) : 0;
}

/* What a worker does: 600 requests counted in memory over two minutes, then one flush: the
 * same figures as recorded one by one, in three scripts (two minutes and the total). */
static void test_counted_then_flushed(void **state)
{
    ctx_t ctx;
    done_t d = {0};
    pc_stats_pending_t p = {0};
    (void)state;
    ctx_open(&ctx);
    for (int i = 0; i < 300; i++) {
        pc_stats_event_t ev = {PC_STATS_ISSUED, i % 3 == 0, false, i % 2 ? 30 : 5, AT(0, i % 60)};
        assert_int_equal(pc_stats_add(&p, &ev), PC_OK);
    }
    for (int i = 0; i < 200; i++) {
        pc_stats_event_t ev = {PC_STATS_FAILED, false, true, 100, AT(1, i % 60)};
        assert_int_equal(pc_stats_add(&p, &ev), PC_OK);
    }
    for (int i = 0; i < 100; i++) {
        pc_stats_event_t ev = {PC_STATS_DLQ, false, false, -1, AT(1, 59)};
        assert_int_equal(pc_stats_add(&p, &ev), PC_OK);
    }
    const char *reset[] = {"CONFIG", "RESETSTAT"};
    command(&ctx, &d, 2, reset);
    memset(&d, 0, sizeof(d));
    assert_int_equal(pc_stats_flush(ctx.redis, &p, on_recorded, &d), PC_OK);
    assert_false(d.done);         /* never inside the call */
    assert_int_equal(p.count, 0); /* emptied */
    assert_true(run_until(&ctx.loop, &d.done, 3000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, PC_OK);
    assert_int_equal(evalsha_calls(&ctx), 3);
    /* nothing held: nothing sent, no callback */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pc_stats_flush(ctx.redis, &p, on_recorded, &d), PC_ERR_NOT_FOUND);

    read_stats(&ctx, AT(1, 30), 60, &d);
    assert_int_equal(d.err, PC_OK);
    const uint64_t *t = d.view.total;
    assert_int_equal(t[PC_STATS_ISSUED], 300);
    assert_int_equal(t[PC_STATS_RENEWED], 100);
    assert_int_equal(t[PC_STATS_FAILED], 200);
    assert_int_equal(t[PC_STATS_CONFLICTS], 200);
    assert_int_equal(t[PC_STATS_DLQ], 100);
    const pc_stats_minute_t *m0 = &d.view.minutes[58], *m1 = &d.view.minutes[59];
    assert_int_equal(m0->minute, MINUTE);
    assert_int_equal(m0->counts[PC_STATS_ISSUED], 300);
    assert_int_equal(m0->counts[PC_STATS_RENEWED], 100);
    assert_int_equal(m0->lat[0], 150); /* 5 ms */
    assert_int_equal(m0->lat[2], 150); /* 30 ms */
    assert_int_equal(m0->lat_sum_ms, 150 * 5 + 150 * 30);
    assert_int_equal(m1->counts[PC_STATS_FAILED], 200);
    assert_int_equal(m1->counts[PC_STATS_DLQ], 100);
    assert_int_equal(m1->lat[3], 200); /* 100 ms; the dead letters were not measured */
    assert_int_equal(m1->lat_sum_ms, 200 * 100);
    ctx_close(&ctx);
}

/* A pending set holds PC_STATS_PENDING_MINUTES minutes: the next one asks for a flush first. */
static void test_pending_full(void **state)
{
    pc_stats_pending_t p = {0};
    (void)state;
    for (int m = 0; m < PC_STATS_PENDING_MINUTES; m++) {
        pc_stats_event_t ev = {PC_STATS_ISSUED, false, false, 1, AT(m, 0)};
        assert_int_equal(pc_stats_add(&p, &ev), PC_OK);
    }
    pc_stats_event_t later = {PC_STATS_ISSUED, false, false, 1, AT(PC_STATS_PENDING_MINUTES, 0)};
    pc_stats_event_t held = {PC_STATS_FAILED, false, false, 1, AT(1, 30)};
    pc_stats_event_t renewed = {.outcome = PC_STATS_RENEWED, .at_ms = AT(0, 0)};
    assert_int_equal(pc_stats_add(&p, &later), PC_ERR_TOO_LARGE);
    assert_int_equal(pc_stats_add(&p, &held), PC_OK);
    assert_int_equal(pc_stats_add(&p, &renewed), PC_ERR_INVALID_PARAM);
    assert_int_equal(p.count, PC_STATS_PENDING_MINUTES);
    assert_int_equal(p.total[PC_STATS_ISSUED], PC_STATS_PENDING_MINUTES);
    assert_int_equal(p.total[PC_STATS_FAILED], 1);
}

static void test_bad_calls(void **state)
{
    ctx_t ctx;
    done_t d = {0};
    pc_stats_event_t renewed = {.outcome = PC_STATS_RENEWED, .at_ms = AT(0, 0)};
    pc_stats_event_t beyond = {.outcome = PC_STATS__COUNT, .at_ms = AT(0, 0)};
    (void)state;
    ctx_open(&ctx);
    assert_int_equal(pc_stats_record(ctx.redis, &renewed, on_recorded, &d), PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_stats_record(ctx.redis, &beyond, on_recorded, &d), PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_stats_read(ctx.redis, AT(0, 0), 0, on_read, &d), PC_ERR_INVALID_PARAM);
    assert_int_equal(pc_stats_read(ctx.redis, AT(0, 0), PC_STATS_WINDOW + 1, on_read, &d),
                     PC_ERR_INVALID_PARAM);
    assert_int_equal(d.calls, 0);
    /* an empty cluster reads as zeros */
    read_stats(&ctx, AT(0, 0), 1, &d);
    assert_int_equal(d.err, PC_OK);
    assert_int_equal(d.view.total[PC_STATS_ISSUED], 0);
    assert_int_equal(d.view.count, 1);
    assert_int_equal(d.view.minutes[0].minute, MINUTE);
    ctx_close(&ctx);
}

/* Redis gone: a write and a read each report it once, through their callbacks. */
static void test_redis_down(void **state)
{
    ctx_t ctx;
    done_t d = {0};
    pc_stats_event_t ev = {.outcome = PC_STATS_ISSUED, .latency_ms = 1, .at_ms = AT(0, 0)};
    (void)state;
    ctx_open(&ctx);
    kill(fixture_redis.pid, SIGSTOP);
    assert_int_equal(pc_stats_record(ctx.redis, &ev, on_recorded, &d), PC_OK);
    assert_true(run_until(&ctx.loop, &d.done, 5000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, PC_ERR_DEPENDENCY);
    memset(&d, 0, sizeof(d));
    assert_int_equal(pc_stats_read(ctx.redis, AT(0, 0), 60, on_read, &d), PC_OK);
    assert_true(run_until(&ctx.loop, &d.done, 5000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, PC_ERR_DEPENDENCY);
    kill(fixture_redis.pid, SIGCONT);
    ctx_close(&ctx);
}

static void test_quantiles(void **state)
{
    uint64_t lat[PC_STATS_BUCKETS] = {0};
    (void)state;
    assert_true(pc_stats_quantile(lat, 0.5) < 0);
    lat[2] = 100; /* all in (25, 50] */
    assert_true(pc_stats_quantile(lat, 0.5) > 37.4 && pc_stats_quantile(lat, 0.5) < 37.6);
    assert_true(pc_stats_quantile(lat, 0.99) > 49.7 && pc_stats_quantile(lat, 0.99) <= 50.0);
    lat[0] = 100; /* half <= 10 ms */
    assert_true(pc_stats_quantile(lat, 0.25) > 4.9 && pc_stats_quantile(lat, 0.25) < 5.1);
    assert_true(pc_stats_quantile(lat, 0.75) > 37.4 && pc_stats_quantile(lat, 0.75) < 37.6);
    lat[PC_STATS_BUCKETS - 1] = 1800; /* most beyond the last bound: its lower bound */
    assert_true(pc_stats_quantile(lat, 0.99) == 10000.0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_recorded_is_read, fixture_revive),
        cmocka_unit_test_setup(test_bad_calls, fixture_revive),
        cmocka_unit_test_setup(test_redis_down, fixture_revive),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test_setup(test_counted_then_flushed, fixture_revive),
        cmocka_unit_test(test_pending_full),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
