/*
 * fuzz_pbjson.c - libFuzzer target: the JSON form of the wire schema (lib/wire/pbjson.c),
 * which pkcsctl reads requests and profiles from (request files, NDJSON batches, CSV profiles)
 * and tools read results (signed or not), dead letters, audit records and notices in. The input is
 * JSON text. It is decoded as a Request from text, as pkcsctl does, and the parsed JSON also as
 * every other message of the schema that has a JSON form people or tools read. Whatever decodes
 * must survive the round trip: encoded again and decoded, it is the same message, byte for byte
 * once packed, and encodes to the same text; a difference aborts, since it is a bug and not bad
 * input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "pbjson.h"
#include "pkcs.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &pkcs__v1__request__descriptor,        &pkcs__v1__profile__descriptor,
    &pkcs__v1__signed_request__descriptor, &pkcs__v1__result__descriptor,
    &pkcs__v1__dead_letter__descriptor,    &pkcs__v1__audit_record__descriptor,
    &pkcs__v1__notice__descriptor,         &pkcs__v1__signed_result__descriptor,
};

static void bug(const ProtobufCMessageDescriptor *desc, const char *what, const char *text)
{
    fprintf(stderr, "fuzz_pbjson: %s: %s\n  JSON: %s\n", desc->name, what, text);
    abort();
}

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len > 0 ? *len : 1);
    if (buf != NULL)
        protobuf_c_message_pack(msg, buf);
    return buf;
}

/* round_trip checks that msg, encoded and decoded again, is unchanged. */
static void round_trip(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    pc_diag_t diag = {{0}};
    char *text = NULL, *text2 = NULL;
    ProtobufCMessage *again = NULL;
    size_t len = 0, len2 = 0;

    if (pc_pbjson_encode_string(msg, false, &text, &diag) != PC_OK) {
        if (strstr(diag.msg, "out of memory") != NULL)
            return;
        bug(desc, "a decoded message does not encode", diag.msg);
    }
    if (pc_pbjson_decode_string(desc, text, strlen(text), &again, &diag) != PC_OK)
        bug(desc, diag.msg, text);
    uint8_t *bytes = pack(msg, &len), *bytes2 = pack(again, &len2);
    if (bytes == NULL || bytes2 == NULL)
        goto out;
    if (len != len2 || memcmp(bytes, bytes2, len) != 0)
        bug(desc, "the message changed on a JSON round trip", text);
    if (pc_pbjson_encode_string(again, true, &text2, &diag) != PC_OK)
        bug(desc, "the decoded round trip does not encode", text);
    free(text2);
    text2 = NULL;
    if (pc_pbjson_encode_string(again, false, &text2, &diag) != PC_OK || strcmp(text, text2) != 0)
        bug(desc, "a round trip encodes to other text", text);
out:
    free(bytes);
    free(bytes2);
    free(text);
    free(text2);
    if (again != NULL)
        protobuf_c_message_free_unpacked(again, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_diag_t diag = {{0}};
    ProtobufCMessage *msg = NULL;
    json_error_t jerr;

    if (pc_pbjson_decode_string(&pkcs__v1__request__descriptor, (const char *)data, size, &msg,
                                &diag) == PC_OK) {
        round_trip(msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    json_t *json = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL)
        return 0;
    for (size_t i = 1; i < sizeof(types) / sizeof(types[0]); i++) {
        msg = NULL;
        if (pc_pbjson_decode(types[i], json, &msg, &diag) != PC_OK)
            continue;
        round_trip(msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    json_decref(json);
    return 0;
}
