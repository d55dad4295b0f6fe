/*
 * test_cfssl_verdicts.c - what the cfssl backend makes of cfssl's answers (pc_ca_cfssl_judge,
 * a pure function): which error a request gets, whether it is asked again, and whether the
 * answer counts against the CA's circuit breaker. The answers are cfssl 1.6's JSON, as its
 * "serve" writes them; the real server's refusals are in test_ca_cfssl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ca_cfssl_int.h"

typedef struct answer {
    const char *name;
    long status;
    const char *body;
    pc_err_t err;
    bool retry, ca_failed;
    const char *says; /* in the message */
} answer_t;

static const answer_t answers[] = {
    {"signed", 200,
     "{\"success\":true,\"result\":{\"certificate\":\"x\"},\"errors\":[],\"messages\":[]}", PC_OK,
     false, false, NULL},
    /* SQLite's lock while another request is being recorded: cfssl signed, recorded nothing */
    {"database locked", 400,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":11000,\"message\":\"database is "
     "locked\"}],\"messages\":[]}",
     PC_ERR_CA_BUSY, true, false, "database is locked (cfssl code 11000); asking again"},
    {"insertion failed", 400,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":11100,\"message\":\"UNIQUE "
     "constraint failed\"}],\"messages\":[]}",
     PC_ERR_CA_BUSY, true, false, "could not record the certificate"},
    {"record not found", 400,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":11200,\"message\":\"not "
     "found\"}],\"messages\":[]}",
     PC_ERR_NOT_FOUND, false, false, "found nothing"},
    {"policy", 400,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":5300,\"message\":\"Policy "
     "violation\"}],\"messages\":[]}",
     PC_ERR_POLICY, false, false, "by its policy"},
    {"bad CSR", 400,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":9002,\"message\":\"bad "
     "request\"}],\"messages\":[]}",
     PC_ERR_INVALID_PARAM, false, false, "not acceptable"},
    {"busy", 503, "", PC_ERR_CA_BUSY, true, false, "busy"},
    {"server error", 500,
     "{\"success\":false,\"result\":null,\"errors\":[{\"code\":1000,\"message\":\"boom\"}]}",
     PC_ERR_CA_UNAVAILABLE, true, true, "see cfssl's log"},
};

static void test_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        const answer_t *a = &answers[i];
        pc_curl_uv_result_t res = {.code = CURLE_OK, .status = a->status, .error = ""};
        pc_ca_cfssl_reply_t reply;
        pc_diag_t diag = {{0}};

        pc_ca_cfssl_reply_parse(a->body, strlen(a->body), &reply);
        pc_ca_cfssl_verdict_t v = pc_ca_cfssl_judge("remote", "signing a CSR", &res, &reply, &diag);
        if (v.err != a->err || v.retry != a->retry || v.ca_failed != a->ca_failed ||
            (a->says != NULL && strstr(diag.msg, a->says) == NULL))
            fail_msg("%s: err %d retry %d ca_failed %d: %s", a->name, v.err, v.retry, v.ca_failed,
                     diag.msg);
        pc_ca_cfssl_reply_clear(&reply);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
