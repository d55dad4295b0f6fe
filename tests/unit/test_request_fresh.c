/*
 * test_request_fresh.c - pc_request_check_fresh: a request without createdAtMs, made too long
 * ago, or from too far in the future is refused with the code an upstream system acts on, and
 * times at the ends of int64 do not overflow the arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "request.h"

#define NOW 1800000000000LL
#define AGE (72LL * 3600 * 1000)
#define SKEW (5LL * 60 * 1000)

static pc_err_t fresh(int64_t created_at_ms, pc_diag_t *diag)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    char id[] = "r-1";
    req.request_id = id;
    req.created_at_ms = created_at_ms;
    return pc_request_check_fresh(&req, NOW, AGE, SKEW, diag);
}

static void test_fresh_requests_pass(void **state)
{
    (void)state;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(fresh(NOW, &diag), PC_OK);
    assert_int_equal(fresh(NOW - AGE, &diag), PC_OK);  /* exactly as old as allowed */
    assert_int_equal(fresh(NOW + SKEW, &diag), PC_OK); /* exactly as far ahead as allowed */
}

static void test_missing_created_at_is_refused(void **state)
{
    (void)state;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(fresh(0, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "createdAtMs is required"));
    assert_int_equal(fresh(-5, &diag), PC_ERR_INVALID_PARAM);
}

static void test_old_request_is_expired(void **state)
{
    (void)state;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(fresh(NOW - AGE - 1000, &diag), PC_ERR_EXPIRED);
    assert_non_null(strstr(diag.msg, "worker.max_request_age_s"));
    assert_int_equal(fresh(1, &diag), PC_ERR_EXPIRED);
}

static void test_future_request_is_refused(void **state)
{
    (void)state;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(fresh(NOW + SKEW + 1, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "worker.clock_skew_ms"));
    assert_int_equal(fresh(INT64_MAX, &diag), PC_ERR_INVALID_PARAM); /* no overflow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_requests_pass),
        cmocka_unit_test(test_missing_created_at_is_refused),
        cmocka_unit_test(test_old_request_is_expired),
        cmocka_unit_test(test_future_request_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
