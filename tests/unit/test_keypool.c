/* Tests of the pre-generated key pool: bounded, each key handed out once, fill order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keypool.h"

static const pc_key_spec_t specs[] = {{PC_KEY_EC, 256}, {PC_KEY_RSA, 2048}};

static EVP_PKEY *ec_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static void test_empty_pool_gives_nothing(void **state)
{
    pc_keypool_t *pool = pc_keypool_new(specs, 2, 4);
    assert_non_null(pool);
    assert_null(pc_keypool_take(pool, &specs[0]));
    pc_key_spec_t other = {PC_KEY_EC, 384};
    assert_null(pc_keypool_take(pool, &other));
    pc_keypool_free(pool);
}

static void test_each_key_handed_out_once(void **state)
{
    pc_keypool_t *pool = pc_keypool_new(specs, 1, 3);
    EVP_PKEY *made[3];
    for (int i = 0; i < 3; i++) {
        pc_key_spec_t spec;
        assert_true(pc_keypool_reserve(pool, &spec));
        made[i] = ec_key();
        pc_keypool_put(pool, &spec, made[i]);
    }
    assert_int_equal(pc_keypool_count(pool, &specs[0]), 3);
    EVP_PKEY *got[3];
    for (int i = 0; i < 3; i++) {
        got[i] = pc_keypool_take(pool, &specs[0]);
        assert_non_null(got[i]);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(got[i], got[j]);
    }
    assert_null(pc_keypool_take(pool, &specs[0]));
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(got[i]);
    pc_keypool_free(pool);
}

static void test_reserve_is_bounded_and_fairly_spread(void **state)
{
    pc_keypool_t *pool = pc_keypool_new(specs, 2, 2);
    pc_key_spec_t spec;
    int ec = 0, rsa = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(pc_keypool_reserve(pool, &spec));
        if (spec.alg == PC_KEY_EC)
            ec++;
        else
            rsa++;
    }
    assert_int_equal(ec, 2);
    assert_int_equal(rsa, 2);
    assert_false(pc_keypool_reserve(pool, &spec)); /* all slots full or filling */
    pc_keypool_cancel(pool, &specs[1]);
    assert_true(pc_keypool_reserve(pool, &spec));
    assert_int_equal(spec.alg, PC_KEY_RSA);
    pc_keypool_free(pool);
}

/* The worker's gauge: keys ready of every pooled algorithm, not only the first. */
static void test_count_of_every_spec(void **state)
{
    pc_keypool_t *pool = pc_keypool_new(specs, 2, 4);
    pc_keypool_put(pool, &specs[0], ec_key());
    pc_keypool_put(pool, &specs[0], ec_key());
    pc_keypool_put(pool, &specs[1], ec_key()); /* the pool does not check the key's kind */
    assert_int_equal(pc_keypool_count(pool, &specs[0]), 2);
    assert_int_equal(pc_keypool_count(pool, &specs[1]), 1);
    assert_int_equal(pc_keypool_count(pool, NULL), 3);
    pc_keypool_free(pool);
}

static void test_put_beyond_capacity_is_dropped(void **state)
{
    pc_keypool_t *pool = pc_keypool_new(specs, 1, 1);
    pc_keypool_put(pool, &specs[0], ec_key());
    pc_keypool_put(pool, &specs[0], ec_key()); /* freed, not kept: ASan would see a leak */
    assert_int_equal(pc_keypool_count(pool, &specs[0]), 1);
    pc_keypool_free(pool); /* frees the pooled key */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_pool_gives_nothing),
        cmocka_unit_test(test_count_of_every_spec),
        cmocka_unit_test(test_each_key_handed_out_once),
        cmocka_unit_test(test_reserve_is_bounded_and_fairly_spread),
        cmocka_unit_test(test_put_beyond_capacity_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
