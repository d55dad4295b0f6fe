/*
 * test_log.c - what a log shipper sees: every line parses as one JSON object with the agreed
 * fields in order, hostile strings are escaped, levels filter, long lines are cut but stay
 * valid, and lines from several threads never interleave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

#define MAX_LINES 8192

typedef struct lines {
    size_t count;
    char *raw[MAX_LINES];
    json_t *json[MAX_LINES];
} lines_t;

/* read_lines re-reads the log file; every line must be one JSON object ending in '\n'. */
static lines_t *read_lines(FILE *f)
{
    lines_t *ls = calloc(1, sizeof(*ls));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    assert_non_null(ls);
    rewind(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t error;
        assert_true(ls->count < MAX_LINES);
        assert_int_equal(line[n - 1], '\n');
        json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &error);
        if (obj == NULL)
            fail_msg("not JSON (%s): %.200s", error.text, line);
        assert_true(json_is_object(obj));
        ls->raw[ls->count] = strdup(line);
        ls->json[ls->count++] = obj;
    }
    free(line);
    return ls;
}

static void lines_free(lines_t *ls)
{
    for (size_t i = 0; i < ls->count; i++) {
        free(ls->raw[i]);
        json_decref(ls->json[i]);
    }
    free(ls);
}

static const char *field(const lines_t *ls, size_t i, const char *key)
{
    json_t *v = json_object_get(ls->json[i], key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int setup(void **state)
{
    FILE *f = tmpfile();
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    pc_log_init(NULL, PC_LOG_INFO, NULL); /* never leave the logger on a closed stream */
    fclose(*state);
    return 0;
}

static void test_fields(void **state)
{
    FILE *f = *state;
    pc_log_init("w1", PC_LOG_DEBUG, f);
    time_t before = time(NULL);
    pc_log(PC_LOG_INFO, "issued", "certificate issued", "request_id", "r1", "partition", "3", NULL);
    time_t after = time(NULL);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, 1);
    assert_string_equal(field(ls, 0, "level"), "info");
    assert_string_equal(field(ls, 0, "event"), "issued");
    assert_string_equal(field(ls, 0, "worker"), "w1");
    assert_string_equal(field(ls, 0, "msg"), "certificate issued");
    assert_string_equal(field(ls, 0, "request_id"), "r1");
    assert_string_equal(field(ls, 0, "partition"), "3");
    assert_int_equal(json_object_size(ls->json[0]), 7);

    /* ts: 2026-11-24T10:00:00.123Z, UTC, now */
    const char *ts = field(ls, 0, "ts");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    struct tm tm = {0};
    int ms = -1, used = 0;
    assert_int_equal(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used),
                     7);
    assert_int_equal(used, 24);
    assert_in_range(ms, 0, 999);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t when = timegm(&tm);
    assert_true(when >= before && when <= after);

    /* fields in the agreed order, extras last */
    assert_memory_equal(ls->raw[0], "{\"ts\":\"", 7);
    assert_non_null(strstr(ls->raw[0], "Z\",\"level\":\"info\",\"event\":\"issued\",\"worker\":"
                                       "\"w1\",\"msg\":\"certificate issued\",\"request_id\":"
                                       "\"r1\",\"partition\":\"3\"}\n"));
    lines_free(ls);
}

static void test_no_worker(void **state)
{
    FILE *f = *state;
    pc_log_init(NULL, PC_LOG_INFO, f);
    pc_log(PC_LOG_ERROR, "boot", NULL, "missing", NULL, NULL);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, 1);
    assert_null(json_object_get(ls->json[0], "worker"));
    assert_string_equal(field(ls, 0, "level"), "error");
    assert_string_equal(field(ls, 0, "msg"), "");
    assert_true(json_is_null(json_object_get(ls->json[0], "missing")));
    lines_free(ls);
}

static void test_escaping(void **state)
{
    FILE *f = *state;
    const char *msg = "say \"hi\"\n\tback\\slash\r\x01\x1f end";
    const char *utf8 = "caf\xc3\xa9 \xf0\x9f\x94\x91 \xe2\x82\xac";
    /* invalid: lone byte, bad continuation, overlong, surrogate, above U+10FFFF, cut at end */
    const char *bad = "a\xff"
                      "b\xc3\x28"
                      "c\xc0\xaf"
                      "d\xed\xa0\x80"
                      "e\xf4\x90\x80\x80"
                      "f\xe2\x82";
    const char *fixed = "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd("
                        "c\xef\xbf\xbd\xef\xbf\xbd"
                        "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "f\xef\xbf\xbd\xef\xbf\xbd";
    pc_log_init("w\"1", PC_LOG_INFO, f);
    pc_log(PC_LOG_WARN, "ev\n", msg, "utf8", utf8, "bad", bad, "k\"ey", "v", NULL);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, 1);
    assert_string_equal(field(ls, 0, "msg"), msg);
    assert_string_equal(field(ls, 0, "event"), "ev\n");
    assert_string_equal(field(ls, 0, "worker"), "w\"1");
    assert_string_equal(field(ls, 0, "utf8"), utf8);
    assert_string_equal(field(ls, 0, "bad"), fixed);
    assert_string_equal(field(ls, 0, "k\"ey"), "v");

    const char *raw = ls->raw[0];
    assert_non_null(strstr(raw, "\\u0001\\u001f"));
    assert_non_null(strstr(raw, "\\n\\tback\\\\slash\\r"));
    assert_non_null(strstr(raw, utf8));        /* valid UTF-8 is passed through as is */
    assert_non_null(strstr(raw, "a\\ufffdb")); /* invalid bytes are replaced */
    for (const char *p = raw; *p != '\n'; p++)
        assert_true((unsigned char)*p >= 0x20);
    assert_string_equal(strchr(raw, '\n'), "\n");
    lines_free(ls);
}

static void test_level_filter(void **state)
{
    FILE *f = *state;
    pc_log_init("w1", PC_LOG_WARN, f);
    pc_log(PC_LOG_DEBUG, "d", "dropped", NULL);
    pc_log(PC_LOG_INFO, "i", "dropped", NULL);
    pc_log(PC_LOG_WARN, "w", "kept", NULL);
    pc_log(PC_LOG_ERROR, "e", "kept", NULL);
    pc_log_init("w1", PC_LOG_DEBUG, f);
    pc_log(PC_LOG_DEBUG, "d", "kept", NULL);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, 3);
    assert_string_equal(field(ls, 0, "level"), "warn");
    assert_string_equal(field(ls, 1, "level"), "error");
    assert_string_equal(field(ls, 2, "level"), "debug");
    for (size_t i = 0; i < ls->count; i++)
        assert_string_equal(field(ls, i, "msg"), "kept");
    lines_free(ls);
}

static void test_parse_level(void **state)
{
    (void)state;
    assert_int_equal(pc_log_parse_level("debug"), PC_LOG_DEBUG);
    assert_int_equal(pc_log_parse_level("info"), PC_LOG_INFO);
    assert_int_equal(pc_log_parse_level("warn"), PC_LOG_WARN);
    assert_int_equal(pc_log_parse_level("WARNING"), PC_LOG_WARN);
    assert_int_equal(pc_log_parse_level("Error"), PC_LOG_ERROR);
    assert_int_equal(pc_log_parse_level("verbose"), -1);
    assert_int_equal(pc_log_parse_level("inf"), -1);
    assert_int_equal(pc_log_parse_level(""), -1);
    assert_int_equal(pc_log_parse_level(NULL), -1);
}

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

static void test_truncation(void **state)
{
    FILE *f = *state;
    char *plain = repeat("a", 200000);
    char *controls = repeat("\x01", 30000); /* 6 bytes each once escaped */
    char *euro = repeat("\xe2\x82\xac", 30000);
    pc_log_init("w1", PC_LOG_INFO, f);
    pc_log(PC_LOG_INFO, "big", plain, "after", "dropped", NULL);
    pc_log(PC_LOG_INFO, "big", "short", "controls", controls, NULL);
    pc_log(PC_LOG_INFO, "big", euro, NULL);
    pc_log(PC_LOG_INFO, "small", "fits", NULL);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, 4);
    for (size_t i = 0; i < 3; i++) {
        assert_true(strlen(ls->raw[i]) <= 65536);
        assert_true(strlen(ls->raw[i]) > 60000);
        assert_true(json_is_true(json_object_get(ls->json[i], "truncated")));
    }
    const char *msg = field(ls, 0, "msg");
    assert_true(strlen(msg) > 60000 && strlen(msg) < 65536);
    assert_memory_equal(msg, plain, strlen(msg));
    assert_null(json_object_get(ls->json[0], "after"));
    assert_memory_equal(field(ls, 1, "controls"), controls, strlen(field(ls, 1, "controls")));
    assert_int_equal(strlen(field(ls, 2, "msg")) % 3, 0); /* cut between characters */
    assert_null(json_object_get(ls->json[3], "truncated"));
    assert_string_equal(field(ls, 3, "msg"), "fits");
    lines_free(ls);
    free(plain);
    free(controls);
    free(euro);
}

#define THREADS 4
#define PER_THREAD 1000

static void *writer_main(void *arg)
{
    char id[8], seq[16], msg[600];
    snprintf(id, sizeof(id), "%d", (int)(intptr_t)arg);
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(seq, sizeof(seq), "%d", i);
        pc_log(PC_LOG_INFO, "tick", msg, "thread", id, "seq", seq, NULL);
    }
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    FILE *f = *state;
    pthread_t threads[THREADS];
    int next[THREADS] = {0};
    pc_log_init("w1", PC_LOG_INFO, f);
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, writer_main, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    lines_t *ls = read_lines(f);
    assert_int_equal(ls->count, THREADS * PER_THREAD);
    for (size_t i = 0; i < ls->count; i++) {
        int t = (int)strtol(field(ls, i, "thread"), NULL, 10);
        assert_in_range(t, 0, THREADS - 1);
        /* each thread's lines arrive whole and in its own order */
        assert_int_equal(strtol(field(ls, i, "seq"), NULL, 10), next[t]++);
        assert_int_equal(strlen(field(ls, i, "msg")), 599);
    }
    lines_free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
