/*
 * test_numbers.c - unit tests for numbers.c: option integers are whole, in range, or refused;
 * percentiles by nearest rank.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "numbers.h"

static void test_parse_long(void **state)
{
    long v = -1;
    (void)state;
    assert_true(pc_parse_long("42", 1, 100, &v));
    assert_int_equal(v, 42);
    assert_true(pc_parse_long("1", 1, 100, &v));
    assert_true(pc_parse_long("100", 1, 100, &v));
    v = 7;
    assert_false(pc_parse_long("0", 1, 100, &v));
    assert_false(pc_parse_long("101", 1, 100, &v));
    assert_false(pc_parse_long("", 1, 100, &v));
    assert_false(pc_parse_long("12x", 1, 100, &v));
    assert_false(pc_parse_long("x12", 1, 100, &v));
    assert_false(pc_parse_long("99999999999999999999999", 1, 100, &v));
    assert_int_equal(v, 7);
}

static void test_percentiles(void **state)
{
    double v[] = {9, 1, 5, 3, 7, 2, 8, 4, 10, 6};
    (void)state;
    pc_sort_doubles(v, 10);
    for (int i = 0; i < 10; i++)
        assert_true(v[i] == (double)(i + 1));
    assert_true(pc_percentile(v, 10, 0.0) == 1.0);
    assert_true(pc_percentile(v, 10, 0.5) == 6.0);
    assert_true(pc_percentile(v, 10, 0.99) == 10.0);
    assert_true(pc_percentile(v, 10, 1.0) == 10.0);
    double one = 3.5;
    assert_true(pc_percentile(&one, 1, 0.9) == 3.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_long),
        cmocka_unit_test(test_percentiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
