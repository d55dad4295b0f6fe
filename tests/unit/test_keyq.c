/* Tests of serial-per-key ordering: same key waits in arrival order, other keys run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyq.h"

static void test_same_key_in_order_other_keys_parallel(void **state)
{
    pc_keyq_t *q = pc_keyq_new(8);
    pc_keyq_entry_t a1, a2, a3, b1;
    assert_true(pc_keyq_push(q, &a1, "dev-a", 5));
    assert_false(pc_keyq_push(q, &a2, "dev-a", 5));
    assert_true(pc_keyq_push(q, &b1, "dev-b", 5));
    assert_false(pc_keyq_push(q, &a3, "dev-a", 5));
    assert_int_equal(pc_keyq_waiting(q), 2);
    assert_ptr_equal(pc_keyq_pop(q, &a1), &a2);
    assert_ptr_equal(pc_keyq_pop(q, &a2), &a3);
    assert_null(pc_keyq_pop(q, &a3));
    assert_null(pc_keyq_pop(q, &b1));
    assert_int_equal(pc_keyq_waiting(q), 0);
    /* the key is free again: a new request starts at once */
    assert_true(pc_keyq_push(q, &a1, "dev-a", 5));
    assert_null(pc_keyq_pop(q, &a1));
    pc_keyq_free(q);
}

static void test_remove_from_middle_keeps_order(void **state)
{
    pc_keyq_t *q = pc_keyq_new(1); /* one bucket: every key collides */
    pc_keyq_entry_t e[4], x;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pc_keyq_push(q, &e[i], "k", 1), i == 0);
    assert_true(pc_keyq_push(q, &x, "other", 5));
    assert_null(pc_keyq_remove(q, &e[2])); /* abandoned while waiting */
    assert_null(pc_keyq_remove(q, &e[3])); /* the tail */
    assert_ptr_equal(pc_keyq_pop(q, &e[0]), &e[1]);
    pc_keyq_entry_t late;
    assert_false(pc_keyq_push(q, &late, "k", 1)); /* queued after e[1], not lost */
    assert_ptr_equal(pc_keyq_pop(q, &e[1]), &late);
    assert_null(pc_keyq_pop(q, &late));
    assert_null(pc_keyq_pop(q, &x));
    assert_int_equal(pc_keyq_waiting(q), 0);
    pc_keyq_free(q);
}

static void test_empty_key_never_waits(void **state)
{
    pc_keyq_t *q = pc_keyq_new(4);
    pc_keyq_entry_t a, b;
    assert_true(pc_keyq_push(q, &a, "", 0));
    assert_true(pc_keyq_push(q, &b, "", 0));
    assert_null(pc_keyq_pop(q, &a));
    pc_keyq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_in_order_other_keys_parallel),
        cmocka_unit_test(test_remove_from_middle_keeps_order),
        cmocka_unit_test(test_empty_key_never_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
