/*
 * test_request.c - the gate a message passes in a worker: what pc_request_decode makes a dead
 * letter (undecodable, unsigned, badly signed), with a reason that says which, and what it
 * hands on for pc_request_validate to judge (an invalid request: a FAILED result); and a
 * deadline at any distance in the past, which once overflowed. Signed with an HMAC secret
 * written to a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "request.h"

#define NOW_MS INT64_C(1735689600000)
#define SECRET "0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[64], secret[128];
    pc_auth_t *auth;
    pc_signer_t *signer;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    pc_diag_t diag = {{0}};
    if (fx == NULL)
        return -1;
    umask(077);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc-request-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->secret, sizeof(fx->secret), "%s/hmac.key", fx->dir);
    FILE *f = fopen(fx->secret, "w");
    if (f == NULL || fputs(SECRET, f) < 0 || fclose(f) != 0)
        return -1;
    const pc_auth_key_t key = {.id = "mdm", .algorithm = "hmac-sha256", .secret_file = fx->secret};
    if (pc_auth_new(&key, 1, &fx->auth, &diag) != PC_OK ||
        pc_signer_new("mdm", "hmac-sha256", fx->secret, NULL, &fx->signer, &diag) != PC_OK) {
        fprintf(stderr, "%s\n", diag.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    pc_auth_free(fx->auth);
    pc_signer_free(fx->signer);
    unlink(fx->secret);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A valid REVOKE request; its strings are static. */
static void revoke_request(Pkcs__V1__Request *req, Pkcs__V1__RevokeRequest *rev)
{
    static char id[] = "r-1", tenant[] = "contoso", ca[] = "local", serial[] = "7F3A";
    pkcs__v1__request__init(req);
    pkcs__v1__revoke_request__init(rev);
    req->schema_version = PC_SCHEMA_VERSION;
    req->request_id = id;
    req->tenant_id = tenant;
    req->kind = PKCS__V1__KIND__REVOKE;
    req->body_case = PKCS__V1__REQUEST__BODY_REVOKE;
    req->revoke = rev;
    rev->ca_name = ca;
    rev->serial_number = serial;
}

/* decode runs pc_request_decode on msg and returns its error; *had_req tells whether the
 * Request was decoded. A decoded one is then validated as a worker does: *valid is that error. */
static pc_err_t decode(const fixture_t *fx, bool allow_unsigned, const unsigned char *msg,
                       size_t len, bool *had_req, pc_err_t *valid, pc_diag_t *diag)
{
    Pkcs__V1__SignedRequest *sr = NULL;
    Pkcs__V1__Request *req = NULL;
    pc_diag_t vdiag = {{0}};
    pc_err_t err =
        pc_request_decode(fx != NULL ? fx->auth : NULL, allow_unsigned, msg, len, &sr, &req, diag);
    *had_req = req != NULL;
    *valid = PC_ERR_BAD_MESSAGE;
    if (err == PC_OK && (*valid = pc_request_validate(req, NOW_MS, &vdiag)) != PC_OK)
        *diag = vdiag;
    if (req != NULL)
        protobuf_c_message_free_unpacked(&req->base, NULL);
    if (sr != NULL)
        protobuf_c_message_free_unpacked(&sr->base, NULL);
    return err;
}

static unsigned char *sign(const fixture_t *fx, const Pkcs__V1__Request *req, size_t *len)
{
    unsigned char *out = NULL;
    pc_diag_t diag = {{0}};
    if (pc_signer_sign(fx->signer, req, &out, len, &diag) != PC_OK)
        fail_msg("%s", diag.msg);
    return out;
}

static void expect(pc_err_t got, pc_err_t want, const pc_diag_t *diag, const char *text)
{
    assert_int_equal(got, want);
    if (text != NULL && strstr(diag->msg, text) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", text, diag->msg);
}

static void test_signed_request_passes(void **state)
{
    fixture_t *fx = *state;
    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rev;
    pc_diag_t diag = {{0}};
    bool had_req = false;
    pc_err_t valid;
    size_t len = 0;
    revoke_request(&req, &rev);
    unsigned char *msg = sign(fx, &req, &len);
    expect(decode(fx, false, msg, len, &had_req, &valid, &diag), PC_OK, &diag, NULL);
    assert_true(had_req);
    assert_int_equal(valid, PC_OK);
    free(msg);
}

static void test_dead_letters(void **state)
{
    fixture_t *fx = *state;
    static const unsigned char garbage[] = {0xff, 0xff, 0xff};
    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rev;
    pc_diag_t diag = {{0}};
    bool had_req = true;
    pc_err_t valid;
    size_t len = 0;

    expect(decode(fx, false, garbage, sizeof(garbage), &had_req, &valid, &diag), PC_ERR_BAD_MESSAGE,
           &diag, "not a pkcs.v1.SignedRequest");
    assert_false(had_req);

    revoke_request(&req, &rev);
    unsigned char *msg = sign(fx, &req, &len);
    msg[len - 1] ^= 1; /* the signature's last byte */
    expect(decode(fx, false, msg, len, &had_req, &valid, &diag), PC_ERR_UNAUTHENTICATED, &diag,
           "refused: ");
    assert_false(had_req);
    /* a worker without signers refuses every signed message, naming the signer */
    expect(decode(NULL, false, msg, len, &had_req, &valid, &diag), PC_ERR_UNAUTHENTICATED, &diag,
           "signed by mdm but no signers are configured");
    assert_false(had_req);
    free(msg);

    /* unsigned: refused unless allowed; allowed, its bytes must still be a Request */
    Pkcs__V1__SignedRequest sr;
    unsigned char packed[64];
    pkcs__v1__signed_request__init(&sr);
    sr.request.data = (uint8_t *)(uintptr_t)garbage;
    sr.request.len = sizeof(garbage);
    len = pkcs__v1__signed_request__get_packed_size(&sr);
    assert_true(len <= sizeof(packed));
    pkcs__v1__signed_request__pack(&sr, packed);
    expect(decode(fx, false, packed, len, &had_req, &valid, &diag), PC_ERR_UNAUTHENTICATED, &diag,
           "refused: ");
    expect(decode(fx, true, packed, len, &had_req, &valid, &diag), PC_ERR_BAD_MESSAGE, &diag,
           "signed bytes are not a pkcs.v1.Request");
    assert_false(had_req);
}

static void test_invalid_request_is_a_failed_result(void **state)
{
    fixture_t *fx = *state;
    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rev;
    pc_diag_t diag = {{0}};
    bool had_req = false;
    pc_err_t valid;
    size_t len = 0;
    revoke_request(&req, &rev);
    req.schema_version = 2;
    unsigned char *msg = sign(fx, &req, &len);
    expect(decode(fx, false, msg, len, &had_req, &valid, &diag), PC_OK, &diag, NULL);
    assert_true(had_req);
    expect(valid, PC_ERR_BAD_MESSAGE, &diag, "schemaVersion 2");
    free(msg);
}

/* Any deadline in the past expires the request, however far: the distance is computed without
 * overflow (UBSan aborts on a signed overflow) and reported exactly. */
static void test_deadline_far_in_the_past(void **state)
{
    fixture_t *fx = *state;
    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rev;
    pc_diag_t diag = {{0}};
    char text[96];
    revoke_request(&req, &rev);
    req.deadline_ms = INT64_MIN;
    expect(pc_request_validate(&req, NOW_MS, &diag), PC_ERR_EXPIRED, &diag, NULL);
    snprintf(text, sizeof(text), "expired %llu ms ago",
             (unsigned long long)NOW_MS + (1ULL << 63)); /* NOW_MS - INT64_MIN */
    expect(PC_ERR_EXPIRED, PC_ERR_EXPIRED, &diag, text);

    req.deadline_ms = NOW_MS - 1;
    expect(pc_request_validate(&req, NOW_MS, &diag), PC_ERR_EXPIRED, &diag, "expired 1 ms ago");
    req.deadline_ms = NOW_MS;
    expect(pc_request_validate(&req, NOW_MS, &diag), PC_OK, &diag, NULL);
    (void)fx;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_request_passes),
        cmocka_unit_test(test_dead_letters),
        cmocka_unit_test(test_invalid_request_is_a_failed_result),
        cmocka_unit_test(test_deadline_far_in_the_past),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
