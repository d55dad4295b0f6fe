/*
 * test_metrics.c - what a Prometheus scrape sees: exact text for a small registry, HELP/TYPE
 * once per name, cumulative histogram buckets, number formatting, handle identity, and exact
 * totals under concurrent updates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>

#include "metrics.h"

static char *render(pc_metrics_t *m)
{
    size_t len = 12345;
    char *text = pc_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static void test_exact_text(void **state)
{
    static const double stage_bounds[] = {0.005, 0.1, 1};
    static const double plain_bounds[] = {0.5};
    static const double seen[] = {0.00390625, 0.0625, 0.5, 0.75, 8};
    pc_metrics_t *m = pc_metrics_new();
    (void)state;
    assert_non_null(m);
    pc_counter_t *issue =
        pc_metrics_counter(m, "pc_requests_total", "Requests handled.", "kind=\"ISSUE\"");
    pc_gauge_t *in_flight = pc_metrics_gauge(m, "pc_in_flight", "Requests in flight.", "");
    pc_counter_t *revoke =
        pc_metrics_counter(m, "pc_requests_total", "Requests handled.", "kind=\"REVOKE\"");
    pc_histogram_t *stage = pc_metrics_histogram(m, "pc_stage_seconds", "Stage latency.",
                                                 "stage=\"ca\"", stage_bounds, 3);
    pc_histogram_t *plain =
        pc_metrics_histogram(m, "pc_plain_seconds", "Plain.", "", plain_bounds, 1);
    assert_non_null(issue);
    assert_non_null(in_flight);
    assert_non_null(revoke);
    assert_non_null(stage);
    assert_non_null(plain);

    pc_counter_add(issue, 2);
    pc_counter_inc(issue);
    pc_counter_inc(revoke);
    pc_gauge_set(in_flight, 2.5);
    pc_gauge_add(in_flight, -1);
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
        pc_histogram_observe(stage, seen[i]);

    char *text = render(m);
    assert_string_equal(text, "# HELP pc_requests_total Requests handled.\n"
                              "# TYPE pc_requests_total counter\n"
                              "pc_requests_total{kind=\"ISSUE\"} 3\n"
                              "pc_requests_total{kind=\"REVOKE\"} 1\n"
                              "# HELP pc_in_flight Requests in flight.\n"
                              "# TYPE pc_in_flight gauge\n"
                              "pc_in_flight 1.5\n"
                              "# HELP pc_stage_seconds Stage latency.\n"
                              "# TYPE pc_stage_seconds histogram\n"
                              "pc_stage_seconds_bucket{stage=\"ca\",le=\"0.005\"} 1\n"
                              "pc_stage_seconds_bucket{stage=\"ca\",le=\"0.1\"} 2\n"
                              "pc_stage_seconds_bucket{stage=\"ca\",le=\"1\"} 4\n"
                              "pc_stage_seconds_bucket{stage=\"ca\",le=\"+Inf\"} 5\n"
                              "pc_stage_seconds_sum{stage=\"ca\"} 9.31640625\n"
                              "pc_stage_seconds_count{stage=\"ca\"} 5\n"
                              "# HELP pc_plain_seconds Plain.\n"
                              "# TYPE pc_plain_seconds histogram\n"
                              "pc_plain_seconds_bucket{le=\"0.5\"} 0\n"
                              "pc_plain_seconds_bucket{le=\"+Inf\"} 0\n"
                              "pc_plain_seconds_sum 0\n"
                              "pc_plain_seconds_count 0\n");
    free(text);
    pc_metrics_free(m);
}

static void test_same_handle(void **state)
{
    static const double bounds[] = {1, 2};
    pc_metrics_t *m = pc_metrics_new();
    (void)state;
    pc_counter_t *a = pc_metrics_counter(m, "pc_x_total", "X.", "a=\"1\"");
    assert_ptr_equal(pc_metrics_counter(m, "pc_x_total", "X.", "a=\"1\""), a);
    assert_ptr_not_equal(pc_metrics_counter(m, "pc_x_total", "X.", "a=\"2\""), a);
    assert_ptr_not_equal(pc_metrics_counter(m, "pc_x_total", "X.", ""), a);
    pc_gauge_t *g = pc_metrics_gauge(m, "pc_g", "G.", NULL);
    assert_ptr_equal(pc_metrics_gauge(m, "pc_g", "G.", ""), g);
    pc_histogram_t *h = pc_metrics_histogram(m, "pc_h", "H.", "", bounds, 2);
    assert_ptr_equal(pc_metrics_histogram(m, "pc_h", "H.", "", bounds, 2), h);

    /* Updates through either registration land in the same series. */
    pc_counter_inc(a);
    pc_counter_inc(pc_metrics_counter(m, "pc_x_total", "X.", "a=\"1\""));
    assert_int_equal(pc_counter_get(a), 2);

    /* Programming errors give NULL, and NULL handles are harmless. */
    assert_null(pc_metrics_gauge(m, "pc_x_total", "X.", "a=\"9\"")); /* counter name */
    assert_null(pc_metrics_counter(m, "pc_g", "G.", ""));            /* gauge name */
    assert_null(pc_metrics_counter(m, "9lives", "bad", ""));
    assert_null(pc_metrics_counter(m, "has space", "bad", ""));
    assert_null(pc_metrics_counter(m, "", "bad", ""));
    static const double unsorted[] = {2, 1};
    static const double inf[] = {1, INFINITY};
    assert_null(pc_metrics_histogram(m, "pc_bad", "bad", "", unsorted, 2));
    assert_null(pc_metrics_histogram(m, "pc_bad", "bad", "", inf, 2));
    pc_counter_inc(NULL);
    pc_counter_add(NULL, 5);
    pc_gauge_set(NULL, 1);
    pc_gauge_add(NULL, 1);
    pc_histogram_observe(NULL, 1);
    assert_int_equal(pc_counter_get(NULL), 0);

    char *text = render(m);
    assert_null(strstr(text, "pc_bad"));
    assert_null(strstr(text, "9lives"));
    assert_non_null(strstr(text, "\npc_x_total{a=\"1\"} 2\n"));
    free(text);
    pc_metrics_free(m);
    pc_metrics_free(NULL);
}

static void test_histogram_buckets(void **state)
{
    pc_metrics_t *m = pc_metrics_new();
    (void)state;
    pc_histogram_t *h =
        pc_metrics_histogram(m, "pc_lat_seconds", "Latency.", "", pc_metrics_latency_bounds,
                             pc_metrics_latency_bounds_count);
    assert_non_null(h);
    pc_histogram_observe(h, 0.1);    /* on a bound: counts in le="0.1" */
    pc_histogram_observe(h, 0.1001); /* just over: next bucket */
    pc_histogram_observe(h, 0);
    pc_histogram_observe(h, 61); /* over the last bound: +Inf only */
    pc_histogram_observe(h, 3600);
    char *text = render(m);
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"0.05\"} 1\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"0.1\"} 2\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"0.25\"} 3\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"2.5\"} 3\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"60\"} 3\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_bucket{le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_count 5\n"));
    assert_non_null(strstr(text, "\npc_lat_seconds_sum 3661.2001\n"));
    /* one line per bound, +Inf, _sum, _count, and HELP/TYPE */
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, pc_metrics_latency_bounds_count + 1 + 2 + 2);
    free(text);
    pc_metrics_free(m);
}

static void test_latency_bounds(void **state)
{
    (void)state;
    assert_int_equal(pc_metrics_latency_bounds_count, 15);
    assert_true(pc_metrics_latency_bounds[0] == 0.001);
    assert_true(pc_metrics_latency_bounds[14] == 60);
    for (size_t i = 1; i < pc_metrics_latency_bounds_count; i++)
        assert_true(pc_metrics_latency_bounds[i] > pc_metrics_latency_bounds[i - 1]);
}

static void test_number_format(void **state)
{
    pc_metrics_t *m = pc_metrics_new();
    (void)state;
    static const struct {
        const char *labels;
        double v;
        const char *want;
    } cases[] = {
        {"c=\"tenth\"", 0.1, "pc_v{c=\"tenth\"} 0.1\n"},
        {"c=\"neg\"", -3, "pc_v{c=\"neg\"} -3\n"},
        {"c=\"tiny\"", 1e-9, "pc_v{c=\"tiny\"} 1e-09\n"},
        {"c=\"big\"", 123456789012.0, "pc_v{c=\"big\"} 123456789012\n"},
        {"c=\"huge\"", 1.5e300, "pc_v{c=\"huge\"} 1.5e+300\n"},
        {"c=\"zero\"", 0, "pc_v{c=\"zero\"} 0\n"},
        {"c=\"third\"", 1.0 / 3, "pc_v{c=\"third\"} 0.3333333333333333\n"},
        {"c=\"nan\"", NAN, "pc_v{c=\"nan\"} NaN\n"},
        {"c=\"inf\"", INFINITY, "pc_v{c=\"inf\"} +Inf\n"},
        {"c=\"ninf\"", -INFINITY, "pc_v{c=\"ninf\"} -Inf\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        pc_gauge_set(pc_metrics_gauge(m, "pc_v", "Values.", cases[i].labels), cases[i].v);
    pc_counter_add(pc_metrics_counter(m, "pc_big_total", "Big.", ""), UINT64_MAX);
    pc_metrics_gauge(m, "pc_help", "back\\slash and\nnewline", "");
    char *text = render(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_non_null(strstr(text, cases[i].want));
    assert_non_null(strstr(text, "\npc_big_total 18446744073709551615\n"));
    assert_non_null(strstr(text, "\n# HELP pc_help back\\\\slash and\\nnewline\n"));
    assert_float_equal(pc_gauge_get(pc_metrics_gauge(m, "pc_v", "", "c=\"tenth\"")), 0.1, 0);
    free(text);
    pc_metrics_free(m);
}

static void test_empty_registry(void **state)
{
    pc_metrics_t *m = pc_metrics_new();
    size_t len = 99;
    (void)state;
    char *text = pc_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    pc_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 100000

typedef struct hammer {
    pc_metrics_t *m;
    pc_counter_t *counter;
    pc_gauge_t *gauge;
    pc_histogram_t *histogram;
} hammer_t;

static void *hammer_main(void *arg)
{
    hammer_t *hm = arg;
    /* registering concurrently must hand every thread the same series */
    pc_counter_t *again = pc_metrics_counter(hm->m, "pc_hits_total", "Hits.", "");
    for (int i = 0; i < PER_THREAD; i++) {
        pc_counter_inc(i % 2 == 0 ? hm->counter : again);
        pc_gauge_add(hm->gauge, 1);
        pc_histogram_observe(hm->histogram, i % 2 == 0 ? 0.5 : 2);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    static const double bounds[] = {1};
    pthread_t threads[THREADS];
    hammer_t hm;
    (void)state;
    hm.m = pc_metrics_new();
    hm.counter = pc_metrics_counter(hm.m, "pc_hits_total", "Hits.", "");
    hm.gauge = pc_metrics_gauge(hm.m, "pc_level", "Level.", "");
    hm.histogram = pc_metrics_histogram(hm.m, "pc_obs", "Obs.", "", bounds, 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer_main, &hm), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);

    assert_int_equal(pc_counter_get(hm.counter), THREADS * PER_THREAD);
    assert_float_equal(pc_gauge_get(hm.gauge), THREADS * PER_THREAD, 0);
    char *text = render(hm.m);
    assert_non_null(strstr(text, "\npc_hits_total 400000\n"));
    assert_non_null(strstr(text, "\npc_level 400000\n"));
    assert_non_null(strstr(text, "\npc_obs_bucket{le=\"1\"} 200000\n"));
    assert_non_null(strstr(text, "\npc_obs_bucket{le=\"+Inf\"} 400000\n"));
    assert_non_null(strstr(text, "\npc_obs_sum 500000\n"));
    assert_non_null(strstr(text, "\npc_obs_count 400000\n"));
    free(text);
    pc_metrics_free(hm.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_text),         cmocka_unit_test(test_same_handle),
        cmocka_unit_test(test_histogram_buckets),  cmocka_unit_test(test_latency_bounds),
        cmocka_unit_test(test_number_format),      cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_concurrent_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
