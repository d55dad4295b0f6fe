/*
 * test_offsets.c - unit tests for offsets.c: is only the contiguous completed prefix of a
 * partition ever offered for commit, whatever order work finishes in? Main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <cmocka.h>

#include <stdlib.h>

#include "offsets.h"

static int setup(void **state)
{
    pc_offsets_t *offsets = pc_offsets_new();
    if (offsets == NULL)
        return -1;
    *state = offsets;
    return 0;
}

static int teardown(void **state)
{
    pc_offsets_free(*state);
    return 0;
}

static void begin_range(pc_offsets_t *offsets, int32_t partition, int64_t from, int64_t to)
{
    for (int64_t o = from; o <= to; o++)
        assert_int_equal(pc_offsets_begin(offsets, partition, o, NULL), PC_OK);
}

static void test_out_of_order(void **state)
{
    pc_offsets_t *offsets = *state;
    assert_int_equal(pc_offsets_add_partition(offsets, 0), PC_OK);
    begin_range(offsets, 0, 10, 19);
    assert_int_equal(pc_offsets_in_flight(offsets, 0), 10);

    assert_true(pc_offsets_done(offsets, 0, 12, NULL));
    assert_true(pc_offsets_done(offsets, 0, 11, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), -1);
    assert_int_equal(pc_offsets_commit_point(offsets, 0), -1);

    assert_true(pc_offsets_done(offsets, 0, 10, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), 13);
    /* each value is offered once */
    assert_int_equal(pc_offsets_next_commit(offsets, 0), -1);
    assert_int_equal(pc_offsets_commit_point(offsets, 0), 13);
    assert_int_equal(pc_offsets_in_flight(offsets, 0), 7);

    /* a hole at 13 holds everything after it */
    for (int64_t o = 19; o >= 14; o--)
        assert_true(pc_offsets_done(offsets, 0, o, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), -1);
    assert_true(pc_offsets_done(offsets, 0, 13, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), 20);
    assert_int_equal(pc_offsets_in_flight(offsets, 0), 0);
    assert_int_equal(pc_offsets_total_in_flight(offsets), 0);
}

/* The work left in a partition starts at its first unfinished message: what is in flight or
 * queued counts as lag, as in the consumer group's own lag, not only what is not fetched. */
static void test_unfinished_is_where_lag_starts(void **state)
{
    pc_offsets_t *offsets = *state;
    assert_int_equal(pc_offsets_add_partition(offsets, 2), PC_OK);
    assert_int_equal(pc_offsets_unfinished(offsets, 2), -1); /* nothing handed out yet */
    assert_int_equal(pc_offsets_unfinished(offsets, 7), -1); /* unknown partition */
    begin_range(offsets, 2, 100, 105);
    assert_int_equal(pc_offsets_unfinished(offsets, 2), 100);
    assert_true(pc_offsets_done(offsets, 2, 101, NULL));
    assert_int_equal(pc_offsets_unfinished(offsets, 2), 100); /* 100 still holds it */
    assert_true(pc_offsets_done(offsets, 2, 100, NULL));
    assert_int_equal(pc_offsets_unfinished(offsets, 2), 102);
    for (int64_t o = 102; o <= 105; o++)
        assert_true(pc_offsets_done(offsets, 2, o, NULL));
    assert_int_equal(pc_offsets_unfinished(offsets, 2), 106); /* all done: the next one */
}

static void test_done_twice_and_unknown(void **state)
{
    pc_offsets_t *offsets = *state;
    assert_int_equal(pc_offsets_add_partition(offsets, 1), PC_OK);
    begin_range(offsets, 1, 0, 2);
    assert_true(pc_offsets_done(offsets, 1, 1, NULL));
    assert_false(pc_offsets_done(offsets, 1, 1, NULL));
    assert_false(pc_offsets_done(offsets, 1, 7, NULL));
    assert_false(pc_offsets_done(offsets, 2, 0, NULL));
    assert_int_equal(pc_offsets_in_flight(offsets, 1), 2);
    /* offsets must increase */
    assert_int_equal(pc_offsets_begin(offsets, 1, 2, NULL), PC_ERR_CONFLICT);
    assert_int_equal(pc_offsets_begin(offsets, 5, 0, NULL), PC_ERR_NOT_FOUND);
    assert_int_equal(pc_offsets_add_partition(offsets, -1), PC_ERR_INVALID_PARAM);
}

static void test_interleaved_partitions(void **state)
{
    pc_offsets_t *offsets = *state;
    for (int32_t p = 0; p < 3; p++)
        assert_int_equal(pc_offsets_add_partition(offsets, p), PC_OK);
    for (int64_t o = 100; o < 110; o++)
        for (int32_t p = 0; p < 3; p++)
            assert_int_equal(pc_offsets_begin(offsets, p, o + p * 1000, NULL), PC_OK);
    assert_int_equal(pc_offsets_total_in_flight(offsets), 30);

    assert_true(pc_offsets_done(offsets, 1, 1100, NULL));
    assert_true(pc_offsets_done(offsets, 2, 2101, NULL));
    assert_true(pc_offsets_done(offsets, 0, 100, NULL));
    assert_true(pc_offsets_done(offsets, 0, 101, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), 102);
    assert_int_equal(pc_offsets_next_commit(offsets, 1), 1101);
    assert_int_equal(pc_offsets_next_commit(offsets, 2), -1);
    assert_int_equal(pc_offsets_in_flight(offsets, 0), 8);
    assert_int_equal(pc_offsets_in_flight(offsets, 1), 9);
    assert_int_equal(pc_offsets_in_flight(offsets, 2), 9);
    assert_int_equal(pc_offsets_total_in_flight(offsets), 26);
}

static void test_revoke_drops_state(void **state)
{
    pc_offsets_t *offsets = *state;
    assert_int_equal(pc_offsets_add_partition(offsets, 3), PC_OK);
    assert_int_equal(pc_offsets_add_partition(offsets, 4), PC_OK);
    assert_int_equal(pc_offsets_partition_count(offsets), 2);
    begin_range(offsets, 3, 0, 4);
    begin_range(offsets, 4, 0, 1);
    pc_offsets_remove_partition(offsets, 3);
    assert_false(pc_offsets_has_partition(offsets, 3));
    assert_int_equal(pc_offsets_partition_count(offsets), 1);
    assert_int_equal(pc_offsets_total_in_flight(offsets), 2);
    assert_int_equal(pc_offsets_in_flight(offsets, 3), 0);
    assert_false(pc_offsets_done(offsets, 3, 0, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 3), -1);

    /* assigned again: fresh state, and a late completion of the old copy is refused */
    int old_msg, new_msg;
    pc_offsets_remove_partition(offsets, 4);
    assert_int_equal(pc_offsets_add_partition(offsets, 4), PC_OK);
    assert_int_equal(pc_offsets_begin(offsets, 4, 0, &new_msg), PC_OK);
    assert_false(pc_offsets_done(offsets, 4, 0, &old_msg));
    assert_int_equal(pc_offsets_next_commit(offsets, 4), -1);
    assert_true(pc_offsets_done(offsets, 4, 0, &new_msg));
    assert_int_equal(pc_offsets_next_commit(offsets, 4), 1);
}

static void test_gaps_and_growth(void **state)
{
    pc_offsets_t *offsets = *state;
    assert_int_equal(pc_offsets_add_partition(offsets, 0), PC_OK);
    /* odd offsets only (as after compaction), more than the initial ring holds, with the ring
     * wrapped around by completions in between */
    for (int64_t o = 1; o < 200; o += 2)
        assert_int_equal(pc_offsets_begin(offsets, 0, o, NULL), PC_OK);
    for (int64_t o = 1; o < 100; o += 2)
        assert_true(pc_offsets_done(offsets, 0, o, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), 100);
    for (int64_t o = 201; o < 1001; o += 2)
        assert_int_equal(pc_offsets_begin(offsets, 0, o, NULL), PC_OK);
    for (int64_t o = 999; o > 100; o -= 2)
        assert_true(pc_offsets_done(offsets, 0, o, NULL));
    assert_false(pc_offsets_done(offsets, 0, 500, NULL));
    assert_int_equal(pc_offsets_next_commit(offsets, 0), 1000);
    assert_int_equal(pc_offsets_total_in_flight(offsets), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_twice_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_is_where_lag_starts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_drops_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_and_growth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
