/*
 * pbjson.h - the proto3 JSON form of any protobuf-c message (lowerCamelCase names, enums by
 * name, 64-bit integers as decimal strings, bytes as base64), driven by the message's
 * descriptors. Decoding is strict: unknown fields, wrong types and bad values are errors that
 * name the field path. Thread-safe: no global state.
 */
#ifndef PC_PBJSON_H
#define PC_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "pc_err.h"

/* Largest JSON text pc_pbjson_decode_string accepts, in bytes. */
#ifndef PC_PBJSON_MAX_TEXT
#define PC_PBJSON_MAX_TEXT (16u * 1024u * 1024u)
#endif

/* Deepest nesting of JSON objects and arrays (and of messages) accepted or produced. */
#define PC_PBJSON_MAX_DEPTH 32

/* pc_pbjson_encode makes the JSON form of msg into *out (a new reference; json_decref it).
 * Fails with PC_ERR_INVALID_PARAM for a string that is not valid UTF-8, PC_ERR_TOO_LARGE for
 * messages nested deeper than PC_PBJSON_MAX_DEPTH, PC_ERR_NOMEM. */
pc_err_t pc_pbjson_encode(const ProtobufCMessage *msg, json_t **out, pc_diag_t *diag);

/* pc_pbjson_encode_string is pc_pbjson_encode to text: compact (no spaces) or, with pretty,
 * indented by two spaces. The caller frees *out with free(). */
pc_err_t pc_pbjson_encode_string(const ProtobufCMessage *msg, bool pretty, char **out,
                                 pc_diag_t *diag);

/* pc_pbjson_decode builds a message of type desc from json into *out, allocated the way
 * protobuf-c's unpack does: the caller frees it with protobuf_c_message_free_unpacked(*out,
 * NULL). Both lowerCamelCase and proto field names are accepted; null means the default.
 * Fails with PC_ERR_INVALID_PARAM (unknown field, wrong type, value out of range, bad enum
 * name, bad base64, a field or oneof given twice), PC_ERR_TOO_LARGE (nested deeper than
 * PC_PBJSON_MAX_DEPTH), PC_ERR_NOMEM; *out is NULL on failure. */
pc_err_t pc_pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                          ProtobufCMessage **out, pc_diag_t *diag);

/* pc_pbjson_decode_string is pc_pbjson_decode from len bytes of JSON text (need not be
 * NUL-terminated). Adds PC_ERR_BAD_MESSAGE for malformed JSON (with line and column) and
 * PC_ERR_TOO_LARGE for a text over PC_PBJSON_MAX_TEXT bytes. */
pc_err_t pc_pbjson_decode_string(const ProtobufCMessageDescriptor *desc, const char *text,
                                 size_t len, ProtobufCMessage **out, pc_diag_t *diag);

#endif
