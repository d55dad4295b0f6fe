/*
 * test_pbjson.c - unit tests of the proto3 JSON form of pkcs.proto messages (lib/wire/pbjson.c):
 * exact output for small messages, decoding what a user would write by hand, byte-equal round
 * trips through protobuf_c_message_pack, and the errors a user sees. Single-threaded.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbjson.h"
#include "pkcs.pb-c.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *encode(const ProtobufCMessage *msg)
{
    pc_diag_t diag = {{0}};
    char *text = NULL;
    pc_err_t err = pc_pbjson_encode_string(msg, false, &text, &diag);
    if (err != PC_OK)
        print_error("encode failed: %s\n", diag.msg);
    assert_int_equal(err, PC_OK);
    assert_non_null(text);
    return text;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, const char *text)
{
    pc_diag_t diag = {{0}};
    ProtobufCMessage *msg = NULL;
    pc_err_t err = pc_pbjson_decode_string(desc, text, strlen(text), &msg, &diag);
    if (err != PC_OK)
        print_error("decode of %s failed: %s\n", text, diag.msg);
    assert_int_equal(err, PC_OK);
    assert_non_null(msg);
    return msg;
}

/* decode_fails expects decoding text to fail with err and returns the diagnostic. */
static void decode_fails(const ProtobufCMessageDescriptor *desc, const char *text, pc_err_t err,
                         pc_diag_t *diag)
{
    ProtobufCMessage *msg = (ProtobufCMessage *)&diag; /* must be reset to NULL */
    memset(diag, 0, sizeof(*diag));
    assert_int_equal(pc_pbjson_decode_string(desc, text, strlen(text), &msg, diag), err);
    assert_null(msg);
    assert_true(diag->msg[0] != '\0');
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* assert_round_trip checks that decode(encode(msg)) packs to msg's bytes, compact and pretty. */
static void assert_round_trip(const ProtobufCMessage *msg)
{
    pc_diag_t diag = {{0}};
    size_t want_len = 0, got_len = 0;
    uint8_t *want = pack(msg, &want_len);
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *text = NULL;
        assert_int_equal(pc_pbjson_encode_string(msg, pretty, &text, &diag), PC_OK);
        ProtobufCMessage *back = decode(msg->descriptor, text);
        uint8_t *got = pack(back, &got_len);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        free(got);
        protobuf_c_message_free_unpacked(back, NULL);
        free(text);
    }
    free(want);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static uint8_t key_der[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d};
static uint8_t odd_bytes[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};

/* The parts of a full IssueRequest, kept static so tests can point into them. */
static Pkcs__V1__SanFormat san_upn;
static Pkcs__V1__SanFormat san_dns;
static Pkcs__V1__SanFormat *sans[] = {&san_upn, &san_dns};
static char *ekus[] = {"clientAuth", "1.3.6.1.5.5.7.3.4"};
static char *key_usages[] = {"digitalSignature", "keyEncipherment"};
static Pkcs__V1__IssueRequest__AttributesEntry attr[4];
static Pkcs__V1__IssueRequest__AttributesEntry *attrs[] = {&attr[0], &attr[1], &attr[2], &attr[3]};
static Pkcs__V1__Profile profile;
static Pkcs__V1__IssueRequest issue;

static void make_issue(Pkcs__V1__Request *req)
{
    pkcs__v1__san_format__init(&san_upn);
    pkcs__v1__san_format__init(&san_dns);
    for (size_t i = 0; i < 4; i++)
        pkcs__v1__issue_request__attributes_entry__init(&attr[i]);
    pkcs__v1__profile__init(&profile);
    pkcs__v1__issue_request__init(&issue);
    san_upn.type = PKCS__V1__SAN_TYPE__UPN;
    san_upn.format = "{{UserPrincipalName}}";
    san_dns.type = PKCS__V1__SAN_TYPE__DNS;
    san_dns.format = "{{DeviceName}}.corp.contoso.com";
    attr[0].key = "UserPrincipalName";
    attr[0].value = "zo\xc3\xab@contoso.com";
    attr[1].key = "DeviceName";
    attr[1].value = "\xe6\x9d\xb1\xe4\xba\xac-laptop \xf0\x9f\x94\x90";
    attr[2].key = "Empty";
    attr[2].value = "";
    attr[3].key = "Quote\"and\\slash/";
    attr[3].value = "line\nbreak\ttab";
    profile.profile_id = "p-1";
    profile.ca_name = "local";
    profile.template_name = "User";
    profile.certificate_type = PKCS__V1__CERTIFICATE_TYPE__USER;
    profile.subject_format = "CN={{UserName}},O=\"Contoso, Ltd\"";
    profile.n_subject_alternative_names = 2;
    profile.subject_alternative_names = sans;
    profile.n_extended_key_usages = 2;
    profile.extended_key_usages = ekus;
    profile.n_key_usages = 2;
    profile.key_usages = key_usages;
    profile.validity_days = 365;
    profile.renewal_threshold_percent = 20;
    profile.key_algorithm = PKCS__V1__KEY_ALGORITHM__EC;
    profile.key_size = 256;
    profile.key_storage_provider = "TPM";
    profile.platform = "windows";
    profile.allow_long_values = 1;
    issue.profile = &profile;
    issue.n_attributes = 4;
    issue.attributes = attrs;
    issue.device_public_key.len = sizeof(key_der);
    issue.device_public_key.data = key_der;
    issue.sid = "S-1-5-21-1-2-3-1001";
    req->schema_version = 1;
    req->request_id = "r-issue";
    req->tenant_id = "contoso";
    req->kind = PKCS__V1__KIND__ISSUE;
    req->user_id = "u-1";
    req->device_id = "d-1";
    req->created_at_ms = 1700000000000;
    req->deadline_ms = 1700000060000;
    req->body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req->issue = &issue;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void test_encode_small_request_exact(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    Pkcs__V1__IssueRequest body;
    pkcs__v1__issue_request__init(&body);
    Pkcs__V1__Profile prof;
    pkcs__v1__profile__init(&prof);
    char *eku[] = {"clientAuth"};
    uint8_t key[] = {1, 2, 3};
    prof.ca_name = "local";
    prof.n_extended_key_usages = 1;
    prof.extended_key_usages = eku;
    prof.key_algorithm = PKCS__V1__KEY_ALGORITHM__RSA;
    prof.key_size = 2048;
    body.profile = &prof;
    body.device_public_key.len = sizeof(key);
    body.device_public_key.data = key;
    req.schema_version = 1;
    req.request_id = "r1";
    req.kind = PKCS__V1__KIND__ISSUE;
    req.created_at_ms = 1700000000000;
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &body;
    char *text = encode(&req.base);
    assert_string_equal(text, "{\"schemaVersion\":1,\"requestId\":\"r1\",\"kind\":\"ISSUE\","
                              "\"createdAtMs\":\"1700000000000\",\"issue\":{\"profile\":{"
                              "\"caName\":\"local\",\"extendedKeyUsages\":[\"clientAuth\"],"
                              "\"keyAlgorithm\":\"RSA\",\"keySize\":2048},"
                              "\"devicePublicKey\":\"AQID\"}}");
    free(text);
}

static void test_encode_omits_defaults_keeps_set_oneof(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    Pkcs__V1__RevokeRequest revoke;
    pkcs__v1__revoke_request__init(&revoke);
    char *text = encode(&req.base);
    assert_string_equal(text, "{}");
    free(text);

    /* a oneof member that is set is written even when all its fields are defaults */
    req.body_case = PKCS__V1__REQUEST__BODY_REVOKE;
    req.revoke = &revoke;
    req.request_id = "";
    text = encode(&req.base);
    assert_string_equal(text, "{\"revoke\":{}}");
    free(text);
    assert_round_trip(&req.base);
}

static void test_encode_unknown_enum_value_as_number(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    req.kind = (Pkcs__V1__Kind)42;
    char *text = encode(&req.base);
    assert_string_equal(text, "{\"kind\":42}");
    Pkcs__V1__Request *back = (Pkcs__V1__Request *)decode(&pkcs__v1__request__descriptor, text);
    assert_int_equal(back->kind, 42);
    protobuf_c_message_free_unpacked(&back->base, NULL);
    free(text);
}

static void test_encode_result_types(void **state)
{
    Pkcs__V1__Result result;
    pkcs__v1__result__init(&result);
    Pkcs__V1__Timing timing;
    pkcs__v1__timing__init(&timing);
    ProtobufCBinaryData chain[2] = {{3, odd_bytes}, {0, NULL}};
    timing.received_at_ms = -1;
    timing.keygen_us = UINT64_MAX;
    result.status = PKCS__V1__STATUS__FAILED;
    result.error_code = PKCS__V1__ERROR_CODE__CA_BUSY;
    result.retryable = 1;
    result.n_chain = 2;
    result.chain = chain;
    result.timing = &timing;
    char *text = encode(&result.base);
    assert_string_equal(text, "{\"status\":\"FAILED\",\"errorCode\":\"CA_BUSY\",\"retryable\":true,"
                              "\"chain\":[\"+/+/\",\"\"],\"timing\":{\"receivedAtMs\":\"-1\","
                              "\"keygenUs\":\"18446744073709551615\"}}");
    free(text);
}

static void test_encode_pretty(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    pc_diag_t diag = {{0}};
    char *text = NULL;
    req.request_id = "r1";
    req.kind = PKCS__V1__KIND__REVOKE;
    assert_int_equal(pc_pbjson_encode_string(&req.base, true, &text, &diag), PC_OK);
    assert_string_equal(text, "{\n  \"requestId\": \"r1\",\n  \"kind\": \"REVOKE\"\n}");
    free(text);
}

static void test_encode_rejects_invalid_utf8(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    Pkcs__V1__IssueRequest body;
    pkcs__v1__issue_request__init(&body);
    Pkcs__V1__IssueRequest__AttributesEntry entry;
    pkcs__v1__issue_request__attributes_entry__init(&entry);
    Pkcs__V1__IssueRequest__AttributesEntry *entries[] = {&entry};
    pc_diag_t diag = {{0}};
    json_t *json = (json_t *)&diag;
    entry.key = "UPN";
    entry.value = "ann\xc3(";
    body.n_attributes = 1;
    body.attributes = entries;
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &body;
    assert_int_equal(pc_pbjson_encode(&req.base, &json, &diag), PC_ERR_INVALID_PARAM);
    assert_null(json);
    assert_contains(diag.msg, "issue.attributes[\"UPN\"]: string is not valid UTF-8");

    req.request_id = "\xc0\x80"; /* overlong NUL */
    assert_int_equal(pc_pbjson_encode(&req.base, &json, &diag), PC_ERR_INVALID_PARAM);
    assert_contains(diag.msg, "requestId: string is not valid UTF-8");
}

/* ---- bytes -------------------------------------------------------------------------------- */

static void test_bytes_base64_padding(void **state)
{
    static const char *const want[] = {
        "{}",
        "{\"pfx\":\"+w==\"}",
        "{\"pfx\":\"+/8=\"}",
        "{\"pfx\":\"+/+/\"}",
        "{\"pfx\":\"+/+/AA==\"}",
        "{\"pfx\":\"+/+/ABA=\"}",
    };
    for (size_t len = 0; len <= 5; len++) {
        Pkcs__V1__ImportPfxRequest imp;
        pkcs__v1__import_pfx_request__init(&imp);
        imp.pfx.len = len;
        imp.pfx.data = len > 0 ? odd_bytes : NULL;
        char *text = encode(&imp.base);
        assert_string_equal(text, want[len]);
        Pkcs__V1__ImportPfxRequest *back =
            (Pkcs__V1__ImportPfxRequest *)decode(&pkcs__v1__import_pfx_request__descriptor, text);
        assert_int_equal(back->pfx.len, len);
        if (len > 0)
            assert_memory_equal(back->pfx.data, odd_bytes, len);
        protobuf_c_message_free_unpacked(&back->base, NULL);
        free(text);
    }
}

static void test_bytes_accepts_url_safe_and_unpadded(void **state)
{
    static const char *const inputs[] = {
        "{\"pfx\":\"-_-_ABA\"}",
        "{\"pfx\":\"+/+/ABA\"}",
        "{\"pfx\":\"-_-_ABA=\"}",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        Pkcs__V1__ImportPfxRequest *imp = (Pkcs__V1__ImportPfxRequest *)decode(
            &pkcs__v1__import_pfx_request__descriptor, inputs[i]);
        assert_int_equal(imp->pfx.len, 5);
        assert_memory_equal(imp->pfx.data, odd_bytes, 5);
        protobuf_c_message_free_unpacked(&imp->base, NULL);
    }
}

/* ---- decoding ----------------------------------------------------------------------------- */

static void test_decode_user_json(void **state)
{
    const char *text = "{\n"
                       "  \"schema_version\": 1,\n"
                       "  \"requestId\": \"req-42\",\n"
                       "  \"tenant_id\": \"contoso\",\n"
                       "  \"kind\": 2,\n"
                       "  \"createdAtMs\": 1700000000000,\n"
                       "  \"deadline_ms\": \"1700000060000\",\n"
                       "  \"revoke\": {\n"
                       "    \"ca_name\": \"local\",\n"
                       "    \"serialNumber\": \"0A1B\",\n"
                       "    \"issuer\": \"CN=Contoso Issuing CA\",\n"
                       "    \"reason\": \"KEY_COMPROMISE\",\n"
                       "    \"scenario\": 2\n"
                       "  }\n"
                       "}\n";
    Pkcs__V1__Request *req = (Pkcs__V1__Request *)decode(&pkcs__v1__request__descriptor, text);
    assert_int_equal(req->schema_version, 1);
    assert_string_equal(req->request_id, "req-42");
    assert_string_equal(req->tenant_id, "contoso");
    assert_string_equal(req->user_id, "");
    assert_int_equal(req->kind, PKCS__V1__KIND__REVOKE);
    assert_true(req->created_at_ms == 1700000000000);
    assert_true(req->deadline_ms == 1700000060000);
    assert_int_equal(req->body_case, PKCS__V1__REQUEST__BODY_REVOKE);
    assert_string_equal(req->revoke->ca_name, "local");
    assert_string_equal(req->revoke->serial_number, "0A1B");
    assert_string_equal(req->revoke->issuer, "CN=Contoso Issuing CA");
    assert_int_equal(req->revoke->reason, PKCS__V1__REVOKE_REASON__KEY_COMPROMISE);
    assert_int_equal(req->revoke->scenario, PKCS__V1__REVOKE_SCENARIO__DEVICE_RETIRE);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void test_decode_issue_with_map_and_lists(void **state)
{
    const char *text =
        "{\"kind\":\"ISSUE\",\"issue\":{"
        "\"profile\":{\"ca_name\":\"local\",\"keyAlgorithm\":\"EC\",\"key_size\":\"384\","
        "\"subjectAlternativeNames\":[{\"type\":\"UPN\",\"format\":\"{{UserPrincipalName}}\"},"
        "{\"type\":3,\"format\":\"{{DeviceName}}.contoso.com\"}],"
        "\"extended_key_usages\":[\"clientAuth\",\"1.3.6.1.5.5.7.3.4\"],"
        "\"allowLongValues\":true,\"validityDays\":3.65e2},"
        "\"attributes\":{\"UserPrincipalName\":\"zo\\u00eb@contoso.com\","
        "\"DeviceName\":\"\xe6\x9d\xb1\xe4\xba\xac\"},"
        "\"device_public_key\":\"MFkwEwYHKoZIzj0=\"}}";
    Pkcs__V1__Request *req = (Pkcs__V1__Request *)decode(&pkcs__v1__request__descriptor, text);
    assert_int_equal(req->body_case, PKCS__V1__REQUEST__BODY_ISSUE);
    Pkcs__V1__IssueRequest *is = req->issue;
    Pkcs__V1__Profile *p = is->profile;
    assert_string_equal(p->ca_name, "local");
    assert_int_equal(p->key_algorithm, PKCS__V1__KEY_ALGORITHM__EC);
    assert_int_equal(p->key_size, 384);
    assert_int_equal(p->validity_days, 365);
    assert_true(p->allow_long_values);
    assert_int_equal(p->n_subject_alternative_names, 2);
    assert_int_equal(p->subject_alternative_names[0]->type, PKCS__V1__SAN_TYPE__UPN);
    assert_int_equal(p->subject_alternative_names[1]->type, PKCS__V1__SAN_TYPE__DNS);
    assert_string_equal(p->subject_alternative_names[1]->format, "{{DeviceName}}.contoso.com");
    assert_int_equal(p->n_extended_key_usages, 2);
    assert_string_equal(p->extended_key_usages[1], "1.3.6.1.5.5.7.3.4");
    assert_int_equal(p->n_key_usages, 0);
    assert_int_equal(is->n_attributes, 2);
    assert_string_equal(is->attributes[0]->key, "UserPrincipalName");
    assert_string_equal(is->attributes[0]->value, "zo\xc3\xab@contoso.com");
    assert_string_equal(is->attributes[1]->key, "DeviceName");
    assert_string_equal(is->attributes[1]->value, "\xe6\x9d\xb1\xe4\xba\xac");
    assert_int_equal(is->device_public_key.len, sizeof(key_der));
    assert_memory_equal(is->device_public_key.data, key_der, sizeof(key_der));
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void test_decode_null_is_default(void **state)
{
    const char *text = "{\"requestId\":null,\"kind\":null,\"createdAtMs\":null,\"issue\":null,"
                       "\"revoke\":null}";
    Pkcs__V1__Request *req = (Pkcs__V1__Request *)decode(&pkcs__v1__request__descriptor, text);
    assert_string_equal(req->request_id, "");
    assert_int_equal(req->kind, PKCS__V1__KIND__KIND_UNSPECIFIED);
    assert_int_equal(req->body_case, PKCS__V1__REQUEST__BODY__NOT_SET);
    assert_int_equal(protobuf_c_message_get_packed_size(&req->base), 0);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void test_decode_integer_forms(void **state)
{
    Pkcs__V1__Timing *t = (Pkcs__V1__Timing *)decode(
        &pkcs__v1__timing__descriptor, "{\"receivedAtMs\":\"-9223372036854775808\","
                                       "\"completed_at_ms\":9223372036854775807,"
                                       "\"keygenUs\":\"18446744073709551615\",\"caUs\":7,"
                                       "\"packUs\":\"0\",\"waitUs\":1e3}");
    assert_true(t->received_at_ms == INT64_MIN);
    assert_true(t->completed_at_ms == INT64_MAX);
    assert_true(t->keygen_us == UINT64_MAX);
    assert_true(t->ca_us == 7);
    assert_true(t->pack_us == 0);
    assert_true(t->wait_us == 1000);
    protobuf_c_message_free_unpacked(&t->base, NULL);

    Pkcs__V1__DeadLetter *dl = (Pkcs__V1__DeadLetter *)decode(
        &pkcs__v1__dead_letter__descriptor, "{\"partition\":\"-2147483648\",\"schemaVersion\":"
                                            "\"4294967295\",\"errorCode\":\"DEPENDENCY_DOWN\"}");
    assert_int_equal(dl->partition, INT32_MIN);
    assert_int_equal(dl->schema_version, UINT32_MAX);
    assert_int_equal(dl->error_code, PKCS__V1__ERROR_CODE__DEPENDENCY_DOWN);
    protobuf_c_message_free_unpacked(&dl->base, NULL);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_round_trip_issue(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    make_issue(&req);
    assert_round_trip(&req.base);
    /* device_public_key lengths 0..5 exercise every base64 padding case */
    for (size_t len = 0; len <= 5; len++) {
        issue.device_public_key.len = len;
        issue.device_public_key.data = len > 0 ? odd_bytes : NULL;
        assert_round_trip(&req.base);
    }
}

static void test_round_trip_revoke_and_import(void **state)
{
    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    Pkcs__V1__RevokeRequest revoke;
    pkcs__v1__revoke_request__init(&revoke);
    Pkcs__V1__ImportPfxRequest imp;
    pkcs__v1__import_pfx_request__init(&imp);
    uint8_t all[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)i;
    revoke.ca_name = "local";
    revoke.serial_number = "7F00AB";
    revoke.issuer = "CN=Contoso Issuing CA,O=Contoso";
    revoke.reason = PKCS__V1__REVOKE_REASON__CESSATION_OF_OPERATION;
    revoke.scenario = PKCS__V1__REVOKE_SCENARIO__USER_DELETED;
    req.schema_version = 1;
    req.request_id = "r-revoke";
    req.kind = PKCS__V1__KIND__REVOKE;
    req.deadline_ms = -5;
    req.body_case = PKCS__V1__REQUEST__BODY_REVOKE;
    req.revoke = &revoke;
    assert_round_trip(&req.base);

    imp.pfx.len = sizeof(all);
    imp.pfx.data = all;
    imp.encrypted_password.len = 5;
    imp.encrypted_password.data = odd_bytes;
    imp.oaep_hash = "sha256";
    imp.import_key_id = "import-2024";
    imp.device_public_key.len = sizeof(key_der);
    imp.device_public_key.data = key_der;
    imp.intended_purpose = "smime_encryption";
    req.kind = PKCS__V1__KIND__IMPORT_PFX;
    req.body_case = PKCS__V1__REQUEST__BODY_IMPORT_PFX;
    req.import_pfx = &imp;
    assert_round_trip(&req.base);

    /* and the signed envelope that carries the packed request */
    Pkcs__V1__SignedRequest signed_req;
    pkcs__v1__signed_request__init(&signed_req);
    size_t len = 0;
    uint8_t *bytes = pack(&req.base, &len);
    signed_req.request.len = len;
    signed_req.request.data = bytes;
    signed_req.signer_key_id = "upstream-1";
    signed_req.signature_algorithm = "ed25519";
    signed_req.signature.len = 4;
    signed_req.signature.data = all + 250;
    assert_round_trip(&signed_req.base);
    free(bytes);
}

static void test_round_trip_result_and_dead_letter(void **state)
{
    Pkcs__V1__Result result;
    pkcs__v1__result__init(&result);
    Pkcs__V1__Timing timing;
    pkcs__v1__timing__init(&timing);
    ProtobufCBinaryData chain[3] = {{sizeof(key_der), key_der}, {0, NULL}, {5, odd_bytes}};
    timing.received_at_ms = 1700000000000;
    timing.completed_at_ms = 1700000000123;
    timing.keygen_us = UINT64_MAX;
    timing.ca_us = 1;
    timing.wait_us = 4242;
    result.schema_version = 1;
    result.request_id = "r-issue";
    result.kind = PKCS__V1__KIND__ISSUE;
    result.status = PKCS__V1__STATUS__ISSUED;
    result.error_message = "all good \xe2\x9c\x93";
    result.certificate.len = 4;
    result.certificate.data = odd_bytes;
    result.n_chain = 3;
    result.chain = chain;
    result.serial_number = "0A";
    result.not_before_ms = -1;
    result.not_after_ms = INT64_MAX;
    result.renewal_threshold_percent = 20;
    result.worker_id = "w-1";
    result.timing = &timing;
    assert_round_trip(&result.base);

    Pkcs__V1__DeadLetter dl;
    pkcs__v1__dead_letter__init(&dl);
    dl.schema_version = 1;
    dl.error_code = PKCS__V1__ERROR_CODE__UNAUTHENTICATED;
    dl.reason = "signature does not verify";
    dl.original_value.len = 5;
    dl.original_value.data = odd_bytes;
    dl.original_key.len = 2;
    dl.original_key.data = odd_bytes;
    dl.topic = "pkcs.requests";
    dl.partition = -5;
    dl.offset = INT64_MAX;
    dl.failed_at_ms = 1700000000000;
    dl.worker_id = "w-2";
    assert_round_trip(&dl.base);
}

/* ---- a hand-written descriptor for types pkcs.proto does not use -------------------------- */

/* As protoc-c would generate for:
 *   message Scalars { double d_val = 1; float f_val = 2; sint32 s_val = 3; fixed64 x_val = 4;
 *     map<int32, string> by_code = 5; optional uint32 opt_count = 6;
 *     repeated double samples = 7; bool flag = 8; }                                  */
typedef struct {
    ProtobufCMessage base;
    int32_t key;
    char *value;
} ByCodeEntry;

typedef struct {
    ProtobufCMessage base;
    double d_val;
    float f_val;
    int32_t s_val;
    uint64_t x_val;
    size_t n_by_code;
    ByCodeEntry **by_code;
    protobuf_c_boolean has_opt_count;
    uint32_t opt_count;
    size_t n_samples;
    double *samples;
    protobuf_c_boolean flag;
} Scalars;

static const ProtobufCMessageDescriptor by_code_entry_descriptor;
static const ProtobufCMessageDescriptor scalars_descriptor;

static void by_code_entry_init(ProtobufCMessage *msg)
{
    memset(msg, 0, sizeof(ByCodeEntry));
    msg->descriptor = &by_code_entry_descriptor;
}

static void scalars_init(ProtobufCMessage *msg)
{
    memset(msg, 0, sizeof(Scalars));
    msg->descriptor = &scalars_descriptor;
}

static const ProtobufCFieldDescriptor by_code_entry_fields[] = {
    {"key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0, offsetof(ByCodeEntry, key), NULL,
     NULL, 0, 0, NULL, NULL},
    {"value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(ByCodeEntry, value),
     NULL, NULL, 0, 0, NULL, NULL},
};
static const unsigned by_code_entry_by_name[] = {0, 1};
static const ProtobufCIntRange by_code_entry_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCMessageDescriptor by_code_entry_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Scalars.ByCodeEntry",
    "ByCodeEntry",
    "ByCodeEntry",
    "test",
    sizeof(ByCodeEntry),
    2,
    by_code_entry_fields,
    by_code_entry_by_name,
    1,
    by_code_entry_ranges,
    by_code_entry_init,
    NULL,
    NULL,
    NULL,
};

static const ProtobufCFieldDescriptor scalars_fields[] = {
    {"d_val", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_DOUBLE, 0, offsetof(Scalars, d_val), NULL,
     NULL, 0, 0, NULL, NULL},
    {"f_val", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_FLOAT, 0, offsetof(Scalars, f_val), NULL,
     NULL, 0, 0, NULL, NULL},
    {"s_val", 3, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_SINT32, 0, offsetof(Scalars, s_val), NULL,
     NULL, 0, 0, NULL, NULL},
    {"x_val", 4, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_FIXED64, 0, offsetof(Scalars, x_val), NULL,
     NULL, 0, 0, NULL, NULL},
    {"by_code", 5, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE, offsetof(Scalars, n_by_code),
     offsetof(Scalars, by_code), &by_code_entry_descriptor, NULL, 0, 0, NULL, NULL},
    {"opt_count", 6, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_UINT32,
     offsetof(Scalars, has_opt_count), offsetof(Scalars, opt_count), NULL, NULL, 0, 0, NULL, NULL},
    {"samples", 7, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_DOUBLE, offsetof(Scalars, n_samples),
     offsetof(Scalars, samples), NULL, NULL, PROTOBUF_C_FIELD_FLAG_PACKED, 0, NULL, NULL},
    {"flag", 8, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BOOL, 0, offsetof(Scalars, flag), NULL, NULL,
     0, 0, NULL, NULL},
};
static const unsigned scalars_by_name[] = {4, 0, 1, 7, 5, 2, 6, 3};
static const ProtobufCIntRange scalars_ranges[] = {{1, 0}, {0, 8}};
static const ProtobufCMessageDescriptor scalars_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Scalars",
    "Scalars",
    "Scalars",
    "test",
    sizeof(Scalars),
    8,
    scalars_fields,
    scalars_by_name,
    1,
    scalars_ranges,
    scalars_init,
    NULL,
    NULL,
    NULL,
};

static void test_generic_types_encode_and_round_trip(void **state)
{
    Scalars msg;
    ByCodeEntry minus, seven;
    ByCodeEntry *entries[] = {&minus, &seven};
    double samples[] = {-INFINITY, 0.25, 0};
    scalars_init(&msg.base);
    by_code_entry_init(&minus.base);
    by_code_entry_init(&seven.base);
    minus.key = -1;
    minus.value = "minus";
    seven.key = 7;
    seven.value = "sieben";
    msg.d_val = NAN;
    msg.f_val = 1.5f;
    msg.s_val = -3;
    msg.x_val = UINT64_MAX;
    msg.n_by_code = 2;
    msg.by_code = entries;
    msg.has_opt_count = 1; /* present though zero */
    msg.n_samples = 3;
    msg.samples = samples;
    msg.flag = 1;
    char *text = encode(&msg.base);
    assert_string_equal(text, "{\"dVal\":\"NaN\",\"fVal\":1.5,\"sVal\":-3,"
                              "\"xVal\":\"18446744073709551615\",\"byCode\":{\"-1\":\"minus\","
                              "\"7\":\"sieben\"},\"optCount\":0,"
                              "\"samples\":[\"-Infinity\",0.25,0.0],\"flag\":true}");
    free(text);
    assert_round_trip(&msg.base);
    msg.has_opt_count = 0;
    msg.d_val = 1e300;
    msg.f_val = -FLT_MIN;
    text = encode(&msg.base);
    assert_null(strstr(text, "optCount"));
    free(text);
    assert_round_trip(&msg.base);
}

static void test_generic_types_decode(void **state)
{
    pc_diag_t diag;
    Scalars *msg = (Scalars *)decode(&scalars_descriptor,
                                     "{\"d_val\":\"-2.5e3\",\"fVal\":\"Infinity\",\"s_val\":\"-7\","
                                     "\"xVal\":42,\"by_code\":{\"12\":\"twelve\"},\"optCount\":0,"
                                     "\"samples\":[1,\"NaN\",2.5],\"flag\":false}");
    assert_true(msg->d_val == -2500.0);
    assert_true(isinf(msg->f_val) && msg->f_val > 0);
    assert_int_equal(msg->s_val, -7);
    assert_true(msg->x_val == 42);
    assert_int_equal(msg->n_by_code, 1);
    assert_int_equal(msg->by_code[0]->key, 12);
    assert_string_equal(msg->by_code[0]->value, "twelve");
    assert_true(msg->has_opt_count);
    assert_int_equal(msg->opt_count, 0);
    assert_int_equal(msg->n_samples, 3);
    assert_true(msg->samples[0] == 1.0 && isnan(msg->samples[1]) && msg->samples[2] == 2.5);
    protobuf_c_message_free_unpacked(&msg->base, NULL);

    decode_fails(&scalars_descriptor, "{\"byCode\":{\"x\":\"y\"}}", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "byCode[\"x\"]: expected a number, got string \"x\"");
    decode_fails(&scalars_descriptor, "{\"fVal\":1e39}", PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "is out of range of a float");
    decode_fails(&scalars_descriptor, "{\"dVal\":\"inf\"}", PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&scalars_descriptor, "{\"dVal\":\"0x10\"}", PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&scalars_descriptor, "{\"flag\":1}", PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&scalars_descriptor, "{\"samples\":{}}", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "samples: expected an array, got object");
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_error_unknown_field_names_path(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"issue\":{\"profile\":{\"keySise\":2048}}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "issue.profile.keySise: unknown field of pkcs.v1.Profile");
    assert_contains(diag.msg, "keySize");
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestID\":\"r1\"}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_contains(diag.msg, "requestID: unknown field of pkcs.v1.Request");
}

static void test_error_wrong_type(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"issue\":{\"profile\":{\"keySize\":\"abc\"}}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "issue.profile.keySize: expected a number, got string \"abc\"");
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestId\":7}", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "requestId: expected a string, got number 7");
    decode_fails(&pkcs__v1__request__descriptor, "{\"issue\":[]}", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "issue: expected an object, got array");
    decode_fails(&pkcs__v1__request__descriptor, "[]", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "pkcs.v1.Request: expected a JSON object, got array");
    decode_fails(&pkcs__v1__request__descriptor,
                 "{\"issue\":{\"profile\":{\"keyUsages\":[\"digitalSignature\",null]}}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "issue.profile.keyUsages[1]: expected a string, got null");
    decode_fails(&pkcs__v1__request__descriptor, "{\"issue\":{\"attributes\":{\"UPN\":5}}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "issue.attributes[\"UPN\"]: expected a string, got number 5");
    decode_fails(&pkcs__v1__request__descriptor,
                 "{\"issue\":{\"profile\":{\"allowLongValues\":\"yes\"}}}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_string_equal(
        diag.msg, "issue.profile.allowLongValues: expected true or false, got string \"yes\"");
}

static void test_error_integer_range(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"schemaVersion\":-1}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_string_equal(diag.msg, "schemaVersion: number -1 is out of range 0..4294967295");
    decode_fails(&pkcs__v1__request__descriptor, "{\"schemaVersion\":4294967296}",
                 PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&pkcs__v1__request__descriptor, "{\"schemaVersion\":1.5}", PC_ERR_INVALID_PARAM,
                 &diag);
    decode_fails(&pkcs__v1__request__descriptor, "{\"createdAtMs\":\"12abc\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "createdAtMs: expected an integer");
    decode_fails(&pkcs__v1__request__descriptor, "{\"createdAtMs\":\" 12\"}", PC_ERR_INVALID_PARAM,
                 &diag);
    decode_fails(&pkcs__v1__request__descriptor, "{\"createdAtMs\":\"99999999999999999999\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "out of range");
    decode_fails(&pkcs__v1__timing__descriptor, "{\"keygenUs\":\"-1\"}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_contains(diag.msg, "keygenUs: string \"-1\" is out of range");
    decode_fails(&pkcs__v1__dead_letter__descriptor, "{\"partition\":2147483648}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "partition: number 2147483648 is out of range");
}

static void test_error_bad_enum(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"kind\":\"ISSUED\"}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_string_equal(diag.msg, "kind: unknown Kind value \"ISSUED\"; use one of "
                                  "KIND_UNSPECIFIED, ISSUE, REVOKE, IMPORT_PFX");
    decode_fails(&pkcs__v1__request__descriptor, "{\"kind\":\"issue\"}", PC_ERR_INVALID_PARAM,
                 &diag);
    /* what the user sent is quoted escaped and cut short */
    decode_fails(&pkcs__v1__request__descriptor,
                 "{\"kind\":\"\\\"\u00e9\\n0123456789012345678901234567890123456789\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg,
                    "kind: unknown Kind value \"\\\"\\u00E9\\n01234567890123456789012345678...;");
    decode_fails(&pkcs__v1__request__descriptor, "{\"kind\":true}", PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "kind: expected an enum value name or number, got true");
}

static void test_error_bad_base64(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"importPfx\":{\"pfx\":\"AB$D\"}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg,
                        "importPfx.pfx: not valid base64: character '$' (0x24) at offset 2");
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":\"QUJDR\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "pfx: not valid base64");
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":\"AB=C\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":\"A===\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":\"QUJD\\nRA==\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":\"\u00e9AA=\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "pfx: not valid base64: character ? (0xc3) at offset 0");
    decode_fails(&pkcs__v1__import_pfx_request__descriptor, "{\"pfx\":42}", PC_ERR_INVALID_PARAM,
                 &diag);
    assert_string_equal(diag.msg, "pfx: expected a base64 string, got number 42");
}

static void test_error_malformed_json(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor,
                 "{\n  \"requestId\": \"r1\",\n  \"kind\": ISSUE\n}", PC_ERR_BAD_MESSAGE, &diag);
    assert_contains(diag.msg, "pkcs.v1.Request: malformed JSON at line 3");
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestId\":\"a\"} trailing",
                 PC_ERR_BAD_MESSAGE, &diag);
    decode_fails(&pkcs__v1__request__descriptor, "", PC_ERR_BAD_MESSAGE, &diag);
    /* the same key twice is ambiguous, so malformed */
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestId\":\"a\",\"requestId\":\"b\"}",
                 PC_ERR_BAD_MESSAGE, &diag);
    assert_contains(diag.msg, "duplicate");
    /* a NUL cannot travel in a C string */
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestId\":\"a\\u0000b\"}",
                 PC_ERR_BAD_MESSAGE, &diag);
}

static void test_error_field_or_oneof_twice(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor, "{\"requestId\":\"a\",\"request_id\":\"b\"}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "given twice, as \"request_id\" and \"requestId\"");
    decode_fails(&pkcs__v1__request__descriptor, "{\"issue\":{},\"revoke\":{}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(
        diag.msg, "revoke: issue is already set and only one member of this oneof may be set");
    /* null does not set a member */
    Pkcs__V1__Request *req = (Pkcs__V1__Request *)decode(&pkcs__v1__request__descriptor,
                                                         "{\"issue\":null,\"revoke\":{}}");
    assert_int_equal(req->body_case, PKCS__V1__REQUEST__BODY_REVOKE);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* nested builds {"issue":{"profile":{"keyUsages": <levels-3 nested arrays> }}}. */
static char *nested(int levels)
{
    size_t size = 64 + 2 * (size_t)levels;
    char *text = malloc(size);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, size, "{\"issue\":{\"profile\":{\"keyUsages\":");
    for (int i = 0; i < levels - 3; i++)
        text[n++] = '[';
    for (int i = 0; i < levels - 3; i++)
        text[n++] = ']';
    snprintf(text + n, size - n, "}}}");
    return text;
}

static void test_error_too_deep(void **state)
{
    pc_diag_t diag;
    char *text = nested(PC_PBJSON_MAX_DEPTH + 1);
    decode_fails(&pkcs__v1__request__descriptor, text, PC_ERR_TOO_LARGE, &diag);
    assert_contains(diag.msg, "deeper than 32");
    free(text);
    /* at the limit the depth is fine; the nested arrays are simply the wrong type */
    text = nested(PC_PBJSON_MAX_DEPTH);
    decode_fails(&pkcs__v1__request__descriptor, text, PC_ERR_INVALID_PARAM, &diag);
    assert_string_equal(diag.msg, "issue.profile.keyUsages[0]: expected a string, got array");
    free(text);
    /* far deeper than jansson's own parser limit is still "too large" */
    text = nested(5000);
    decode_fails(&pkcs__v1__request__descriptor, text, PC_ERR_TOO_LARGE, &diag);
    free(text);
}

static void test_error_too_large_text(void **state)
{
    pc_diag_t diag = {{0}};
    ProtobufCMessage *msg = NULL;
    size_t len = PC_PBJSON_MAX_TEXT + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, ' ', len);
    text[0] = '{';
    text[len - 1] = '}';
    assert_int_equal(
        pc_pbjson_decode_string(&pkcs__v1__request__descriptor, text, len, &msg, &diag),
        PC_ERR_TOO_LARGE);
    assert_null(msg);
    assert_contains(diag.msg, "over the limit");
    /* one byte less is accepted */
    assert_int_equal(
        pc_pbjson_decode_string(&pkcs__v1__request__descriptor, text + 1, len - 1, &msg, &diag),
        PC_ERR_BAD_MESSAGE);
    text[len - 2] = '}';
    assert_int_equal(
        pc_pbjson_decode_string(&pkcs__v1__request__descriptor, text, len - 1, &msg, &diag), PC_OK);
    protobuf_c_message_free_unpacked(msg, NULL);
    free(text);
}

static void test_error_embedded_nul_in_json_value(void **state)
{
    pc_diag_t diag = {{0}};
    ProtobufCMessage *msg = NULL;
    json_t *json = json_pack("{s:s#}", "requestId", "a\0b", (size_t)3);
    assert_non_null(json);
    assert_int_equal(pc_pbjson_decode(&pkcs__v1__request__descriptor, json, &msg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_null(msg);
    assert_contains(diag.msg, "requestId: string holds a NUL");
    json_decref(json);
}

/* A failure deep inside leaves partly built sub-messages, lists and maps; ASan checks that
 * they are all freed. */
static void test_error_midway_frees_everything(void **state)
{
    pc_diag_t diag;
    decode_fails(&pkcs__v1__request__descriptor,
                 "{\"requestId\":\"r\",\"issue\":{\"sid\":\"S-1\",\"attributes\":{\"a\":\"1\","
                 "\"b\":\"2\"},\"device_public_key\":\"AAAA\",\"profile\":{\"caName\":\"x\","
                 "\"subjectAlternativeNames\":[{\"format\":\"f\"},{\"type\":\"NOPE\"}]}}}",
                 PC_ERR_INVALID_PARAM, &diag);
    assert_contains(diag.msg, "issue.profile.subjectAlternativeNames[1].type: unknown SanType");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_small_request_exact),
        cmocka_unit_test(test_encode_omits_defaults_keeps_set_oneof),
        cmocka_unit_test(test_encode_unknown_enum_value_as_number),
        cmocka_unit_test(test_encode_result_types),
        cmocka_unit_test(test_encode_pretty),
        cmocka_unit_test(test_encode_rejects_invalid_utf8),
        cmocka_unit_test(test_bytes_base64_padding),
        cmocka_unit_test(test_bytes_accepts_url_safe_and_unpadded),
        cmocka_unit_test(test_decode_user_json),
        cmocka_unit_test(test_decode_issue_with_map_and_lists),
        cmocka_unit_test(test_decode_null_is_default),
        cmocka_unit_test(test_decode_integer_forms),
        cmocka_unit_test(test_round_trip_issue),
        cmocka_unit_test(test_round_trip_revoke_and_import),
        cmocka_unit_test(test_round_trip_result_and_dead_letter),
        cmocka_unit_test(test_generic_types_encode_and_round_trip),
        cmocka_unit_test(test_generic_types_decode),
        cmocka_unit_test(test_error_unknown_field_names_path),
        cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_integer_range),
        cmocka_unit_test(test_error_bad_enum),
        cmocka_unit_test(test_error_bad_base64),
        cmocka_unit_test(test_error_malformed_json),
        cmocka_unit_test(test_error_field_or_oneof_twice),
        cmocka_unit_test(test_error_too_deep),
        cmocka_unit_test(test_error_too_large_text),
        cmocka_unit_test(test_error_embedded_nul_in_json_value),
        cmocka_unit_test(test_error_midway_frees_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
