/*
 * pbjson.c - the proto3 JSON mapping for any protobuf-c message, walking its descriptors.
 *
 * Why: requests, results and dead letters are read and written as JSON by people and tools
 * (debugging, DLQ inspection, test fixtures); one generic mapping keeps the JSON form in step
 * with pkcs.proto. protobuf-c 1.4 has no JSON support and no json_name in its descriptors, so
 * names, maps (repeated *Entry messages) and oneofs (case at quantifier_offset) are worked out
 * here. Decoded messages are allocated exactly as protobuf_c_message_unpack would, so that
 * protobuf_c_message_free_unpacked frees them; they are kept freeable after every step, so an
 * error anywhere only needs that one call.
 *
 * Thread: any; each call touches only its arguments.
 */
#include "pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest field or message-entry name we convert; protoc names are far shorter. */
#define NAME_MAX_LEN 256
/* How much of a bad value an error message quotes. */
#define QUOTE_MAX 40

/* Where in the message a call is, for error messages ("issue.profile.keySize"). */
typedef struct ctx {
    pc_diag_t *diag;
    const char *root; /* full name of the top-level message, for errors at the top */
    size_t path_len;
    char path[256];
} ctx_t;

typedef enum num_status { NUM_OK, NUM_SYNTAX, NUM_RANGE } num_status_t;

/* strtoll/strtoull results are stored as int64_t/uint64_t without range checks */
_Static_assert(sizeof(long long) == sizeof(int64_t), "long long must be 64 bits");

static pc_err_t encode_message(ctx_t *ctx, const ProtobufCMessage *msg, int depth, json_t **out);
static pc_err_t decode_message(ctx_t *ctx, const json_t *json, ProtobufCMessage *msg, int depth);

/* ---- small helpers ------------------------------------------------------------------------ */

/* jansson's object iterators take json_t * even to read; they do not modify the object. Going
 * through uintptr_t keeps -Wcast-qual meaningful everywhere else. */
static json_t *unconst(const json_t *json)
{
    return (json_t *)(uintptr_t)json;
}

static const void *member_get(const ProtobufCMessage *msg, unsigned offset)
{
    return (const char *)msg + offset;
}

static void *member_mut(ProtobufCMessage *msg, unsigned offset)
{
    return (char *)msg + offset;
}

static bool is_pointer_type(ProtobufCType type)
{
    return type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE;
}

/* value_size is the size of one element of a repeated field, as protobuf-c lays it out. */
static size_t value_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* camel_name converts a proto name as protoc does: "request_id" gives "requestId" (JSON name)
 * or, with upper_first, "RequestId" (map entry names). False if it does not fit. */
static bool camel_name(const char *name, bool upper_first, char *buf, size_t size)
{
    bool upper = upper_first;
    size_t n = 0;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (c == '_') {
            upper = true;
            continue;
        }
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper = false;
        if (n + 1 >= size)
            return false;
        buf[n++] = c;
    }
    if (n >= size)
        return false;
    buf[n] = '\0';
    return true;
}

/* utf8_valid tells whether s holds well-formed UTF-8 (no overlongs, surrogates or values
 * over U+10FFFF); on failure *bad is the offset of the first bad byte. */
static bool utf8_valid(const unsigned char *s, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            break;
        }
        if (len - i <= n)
            break;
        size_t k;
        for (k = 1; k <= n && (s[i + k] & 0xC0) == 0x80; k++)
            cp = (cp << 6) | (s[i + k] & 0x3F);
        if (k <= n || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            break;
        i += n + 1;
    }
    *bad = i;
    return i == len;
}

/* ---- paths and errors --------------------------------------------------------------------- */

/* path_append adds prefix+text+suffix to the path and returns the mark to restore. */
static size_t path_append(ctx_t *ctx, const char *prefix, const char *text, const char *suffix)
{
    size_t mark = ctx->path_len;
    size_t room = sizeof(ctx->path) - mark;
    int n = snprintf(ctx->path + mark, room, "%s%s%s", prefix, text, suffix);
    if (n > 0)
        ctx->path_len = (size_t)n < room ? mark + (size_t)n : sizeof(ctx->path) - 1;
    return mark;
}

static size_t path_push_field(ctx_t *ctx, const char *name)
{
    return path_append(ctx, ctx->path_len > 0 ? "." : "", name, "");
}

static size_t path_push_index(ctx_t *ctx, size_t i)
{
    char num[24];
    snprintf(num, sizeof(num), "%zu", i);
    return path_append(ctx, "[", num, "]");
}

static size_t path_push_key(ctx_t *ctx, const char *key)
{
    return path_append(ctx, "[\"", key, "\"]");
}

static void path_pop(ctx_t *ctx, size_t mark)
{
    ctx->path_len = mark;
    ctx->path[mark] = '\0';
}

/* fail_at is pc_fail with the current path (or the message name at the top) in front. */
static pc_err_t fail_at(ctx_t *ctx, pc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pc_err_t fail_at(ctx_t *ctx, pc_err_t err, const char *fmt, ...)
{
    char what[sizeof(ctx->diag->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return pc_fail(ctx->diag, err, "%s: %s", ctx->path_len > 0 ? ctx->path : ctx->root, what);
}

static pc_err_t fail_nomem(ctx_t *ctx)
{
    return fail_at(ctx, PC_ERR_NOMEM, "out of memory");
}

/* quote_json writes json as JSON text, escaped to ASCII and cut to QUOTE_MAX characters, so
 * that whatever a user sent prints safely in one line. */
static void quote_json(const json_t *json, char *buf, size_t size)
{
    char *text = json_dumps(json, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    const char *shown = text != NULL ? text : "?";
    size_t len = strlen(shown);
    snprintf(buf, size, "%.*s%s", len > QUOTE_MAX ? QUOTE_MAX : (int)len, shown,
             len > QUOTE_MAX ? "..." : "");
    free(text);
}

/* describe_json writes what a user gave, briefly: `string "abc"`, `number 12`, `object`. */
static void describe_json(const json_t *json, char *buf, size_t size)
{
    char quoted[QUOTE_MAX + 8];
    const char *type = "";
    switch (json_typeof(json)) {
    case JSON_OBJECT:
        snprintf(buf, size, "object");
        return;
    case JSON_ARRAY:
        snprintf(buf, size, "array");
        return;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        break;
    case JSON_STRING:
        type = "string ";
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        type = "number ";
        break;
    }
    quote_json(json, quoted, sizeof(quoted));
    snprintf(buf, size, "%s%s", type, quoted);
}

static pc_err_t type_error(ctx_t *ctx, const char *expected, const json_t *json)
{
    char got[QUOTE_MAX + 32];
    describe_json(json, got, sizeof(got));
    return fail_at(ctx, PC_ERR_INVALID_PARAM, "expected %s, got %s", expected, got);
}

/* ---- base64 ------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64_encode returns standard padded base64 of data (malloc'd, NUL-terminated), or NULL. */
static char *base64_encode(const uint8_t *data, size_t len, size_t *out_len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* b64_value maps a standard or URL-safe base64 character to its 6 bits, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* base64_decode decodes standard or URL-safe base64, padded or not, into a malloc'd buffer
 * (NULL when empty, as protobuf-c's unpack leaves empty bytes). Errors name the bad offset. */
static pc_err_t base64_decode(ctx_t *ctx, const char *text, size_t len, ProtobufCBinaryData *out)
{
    size_t n = len;
    if (n > 0 && n % 4 == 0 && text[n - 1] == '=')
        n -= text[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (b64_value(c) >= 0)
            continue;
        bool printable = c >= 0x20 && c < 0x7f;
        return fail_at(ctx, PC_ERR_INVALID_PARAM,
                       "not valid base64: character %s%c%s (0x%02x) at offset %zu",
                       printable ? "'" : "", printable ? c : '?', printable ? "'" : "", c, i);
    }
    if (n % 4 == 1)
        return fail_at(ctx, PC_ERR_INVALID_PARAM,
                       "not valid base64: %zu characters cannot encode whole bytes", len);
    size_t out_len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    uint8_t *buf = NULL;
    if (out_len > 0 && (buf = malloc(out_len)) == NULL)
        return fail_nomem(ctx);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)text[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = buf;
    out->len = out_len;
    return PC_OK;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static bool value_is_zero(ProtobufCType type, const void *member)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)member == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)member;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)member == NULL;
    }
    return true;
}

/* field_present mirrors protobuf_c_message_pack's choice of what to write, so that the JSON
 * holds exactly what the binary form would: set oneof members even when zero, defaults not. */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const void *member = member_get(msg, field->offset);
    const void *quantifier = member_get(msg, field->quantifier_offset);
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)quantifier > 0;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)quantifier != field->id)
            return false;
        if (!is_pointer_type(field->type))
            return true;
        const void *ptr = *(const void *const *)member;
        return ptr != NULL && ptr != field->default_value;
    }
    if (is_pointer_type(field->type)) {
        const void *ptr = *(const void *const *)member;
        if (field->label == PROTOBUF_C_LABEL_NONE)
            return !value_is_zero(field->type, member);
        return ptr != NULL &&
               (field->label == PROTOBUF_C_LABEL_REQUIRED || ptr != field->default_value);
    }
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)quantifier;
    return field->label == PROTOBUF_C_LABEL_REQUIRED || !value_is_zero(field->type, member);
}

static json_t *encode_int64(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string(buf);
}

static json_t *encode_uint64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

/* encode_double writes a number, or "NaN", "Infinity", "-Infinity" as proto3 JSON says. */
static json_t *encode_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

static json_t *encode_enum(const ProtobufCEnumDescriptor *edesc, int32_t v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(edesc, v);
    return ev != NULL ? json_string(ev->name) : json_integer(v);
}

static pc_err_t encode_string_value(ctx_t *ctx, const char *s, json_t **out)
{
    size_t bad = 0;
    if (s == NULL)
        s = "";
    if (!utf8_valid((const unsigned char *)s, strlen(s), &bad))
        return fail_at(ctx, PC_ERR_INVALID_PARAM,
                       "string is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
                       (unsigned char)s[bad], bad);
    *out = json_string_nocheck(s);
    return *out != NULL ? PC_OK : fail_nomem(ctx);
}

static pc_err_t encode_bytes(ctx_t *ctx, const ProtobufCBinaryData *bd, json_t **out)
{
    size_t n = 0;
    char *text = base64_encode(bd->data, bd->data != NULL ? bd->len : 0, &n);
    if (text == NULL)
        return fail_nomem(ctx);
    *out = json_stringn_nocheck(text, n);
    free(text);
    return *out != NULL ? PC_OK : fail_nomem(ctx);
}

/* encode_value makes the JSON of one value stored at member (a field or an array element). */
static pc_err_t encode_value(ctx_t *ctx, const ProtobufCFieldDescriptor *field, const void *member,
                             int depth, json_t **out)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *out = json_integer(*(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *out = json_integer(*(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *out = encode_int64(*(const int64_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *out = encode_uint64(*(const uint64_t *)member);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *out = encode_double(*(const float *)member);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *out = encode_double(*(const double *)member);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *out = json_boolean(*(const protobuf_c_boolean *)member);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        *out = encode_enum(field->descriptor, *(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_STRING:
        return encode_string_value(ctx, *(const char *const *)member, out);
    case PROTOBUF_C_TYPE_BYTES:
        return encode_bytes(ctx, member, out);
    case PROTOBUF_C_TYPE_MESSAGE: {
        /* A map entry without a value (possible on the wire) means the default: {}. */
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        if (sub != NULL)
            return encode_message(ctx, sub, depth + 1, out);
        *out = json_object();
        break;
    }
    }
    return *out != NULL ? PC_OK : fail_nomem(ctx);
}

/* is_map_field tells whether field is a map: protoc turns map<K,V> name into a repeated
 * nested message <Parent>.<Name>Entry with fields key = 1 and value = 2. */
static bool is_map_field(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *field)
{
    char entry_name[NAME_MAX_LEN];
    if (field->label != PROTOBUF_C_LABEL_REPEATED || field->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    if (entry->n_fields != 2 || entry->fields[0].id != 1 || entry->fields[1].id != 2 ||
        strcmp(entry->fields[0].name, "key") != 0 || strcmp(entry->fields[1].name, "value") != 0)
        return false;
    size_t plen = strlen(parent->name);
    if (strncmp(entry->name, parent->name, plen) != 0 || entry->name[plen] != '.')
        return false;
    if (!camel_name(field->name, true, entry_name, sizeof(entry_name) - strlen("Entry")))
        return false;
    size_t elen = strlen(entry_name);
    snprintf(entry_name + elen, sizeof(entry_name) - elen, "Entry");
    return strcmp(entry->name + plen + 1, entry_name) == 0;
}

/* map_key_text writes a map key as JSON object keys carry it: always a string. */
static const char *map_key_text(const ProtobufCFieldDescriptor *kf, const void *member, char *buf,
                                size_t size)
{
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;
        return s != NULL ? s : "";
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member ? "true" : "false";
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, size, "%" PRId32, *(const int32_t *)member);
        return buf;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, size, "%" PRIu32, *(const uint32_t *)member);
        return buf;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, size, "%" PRId64, *(const int64_t *)member);
        return buf;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)member);
        return buf;
    default:
        /* protoc allows only integral, bool and string map keys */
        return NULL;
    }
}

static pc_err_t encode_map_entry(ctx_t *ctx, const ProtobufCMessage *entry, int depth, json_t *obj)
{
    const ProtobufCMessageDescriptor *edesc = entry->descriptor;
    const ProtobufCFieldDescriptor *kf = &edesc->fields[0];
    const ProtobufCFieldDescriptor *vf = &edesc->fields[1];
    char buf[24];
    size_t bad = 0;
    json_t *value = NULL;
    const char *key = map_key_text(kf, member_get(entry, kf->offset), buf, sizeof(buf));
    if (key == NULL)
        return fail_at(ctx, PC_ERR_NOT_SUPPORTED, "map key type %d is not supported", kf->type);
    /* checked before the key goes into the path, which must stay printable */
    if (!utf8_valid((const unsigned char *)key, strlen(key), &bad))
        return fail_at(ctx, PC_ERR_INVALID_PARAM, "map key is not valid UTF-8 (offset %zu)", bad);
    size_t mark = path_push_key(ctx, key);
    pc_err_t err = encode_value(ctx, vf, member_get(entry, vf->offset), depth, &value);
    if (err == PC_OK && json_object_set_new(obj, key, value) != 0)
        err = fail_nomem(ctx);
    if (err == PC_OK)
        path_pop(ctx, mark);
    return err;
}

static pc_err_t encode_map(ctx_t *ctx, const ProtobufCMessage *msg,
                           const ProtobufCFieldDescriptor *field, int depth, json_t **out)
{
    size_t n = *(const size_t *)member_get(msg, field->quantifier_offset);
    const ProtobufCMessage *const *entries =
        *(const ProtobufCMessage *const *const *)member_get(msg, field->offset);
    pc_err_t err = PC_OK;
    json_t *obj = json_object();
    if (obj == NULL)
        return fail_nomem(ctx);
    for (size_t i = 0; i < n && err == PC_OK; i++) {
        if (entries[i] != NULL)
            err = encode_map_entry(ctx, entries[i], depth, obj);
    }
    if (err != PC_OK)
        goto out_free_obj;
    *out = obj;
    obj = NULL;
out_free_obj:
    json_decref(obj);
    return err;
}

static pc_err_t encode_array(ctx_t *ctx, const ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *field, int depth, json_t **out)
{
    size_t n = *(const size_t *)member_get(msg, field->quantifier_offset);
    const char *base = *(const char *const *)member_get(msg, field->offset);
    size_t size = value_size(field->type);
    pc_err_t err = PC_OK;
    json_t *arr = json_array();
    if (arr == NULL)
        return fail_nomem(ctx);
    for (size_t i = 0; i < n && err == PC_OK; i++) {
        json_t *item = NULL;
        size_t mark = path_push_index(ctx, i);
        err = encode_value(ctx, field, base + i * size, depth, &item);
        if (err == PC_OK && json_array_append_new(arr, item) != 0)
            err = fail_nomem(ctx);
        if (err == PC_OK)
            path_pop(ctx, mark);
    }
    if (err != PC_OK)
        goto out_free_arr;
    *out = arr;
    arr = NULL;
out_free_arr:
    json_decref(arr);
    return err;
}

static pc_err_t encode_field(ctx_t *ctx, const ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *field, int depth, json_t **out)
{
    if (field->label != PROTOBUF_C_LABEL_REPEATED)
        return encode_value(ctx, field, member_get(msg, field->offset), depth, out);
    if (is_map_field(msg->descriptor, field))
        return encode_map(ctx, msg, field, depth, out);
    return encode_array(ctx, msg, field, depth, out);
}

static pc_err_t encode_message(ctx_t *ctx, const ProtobufCMessage *msg, int depth, json_t **out)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    char name[NAME_MAX_LEN];
    pc_err_t err = PC_OK;
    if (depth > PC_PBJSON_MAX_DEPTH)
        return fail_at(ctx, PC_ERR_TOO_LARGE, "messages nested deeper than %d levels",
                       PC_PBJSON_MAX_DEPTH);
    json_t *obj = json_object();
    if (obj == NULL)
        return fail_nomem(ctx);
    for (unsigned i = 0; i < desc->n_fields && err == PC_OK; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        json_t *value = NULL;
        if (!field_present(msg, field))
            continue;
        if (!camel_name(field->name, false, name, sizeof(name))) {
            err =
                fail_at(ctx, PC_ERR_NOT_SUPPORTED, "field name %.40s... is too long", field->name);
            break;
        }
        size_t mark = path_push_field(ctx, name);
        err = encode_field(ctx, msg, field, depth, &value);
        if (err == PC_OK && json_object_set_new(obj, name, value) != 0)
            err = fail_nomem(ctx);
        if (err == PC_OK)
            path_pop(ctx, mark);
    }
    if (err != PC_OK)
        goto out_free_obj;
    *out = obj;
    obj = NULL;
out_free_obj:
    json_decref(obj);
    return err;
}

/* ---- decoding: scalars -------------------------------------------------------------------- */

/* json_cstring returns a JSON string's text, or NULL if json is not a string or the string
 * holds a NUL (which a C string cannot carry). */
static const char *json_cstring(const json_t *json)
{
    if (!json_is_string(json))
        return NULL;
    const char *s = json_string_value(json);
    return strlen(s) == json_string_length(json) ? s : NULL;
}

static num_status_t parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    if (s == NULL || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return NUM_SYNTAX;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return NUM_SYNTAX;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = (int64_t)v;
    return NUM_OK;
}

static num_status_t parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL)
        return NUM_SYNTAX;
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
        return NUM_RANGE;
    if (!(s[0] >= '0' && s[0] <= '9'))
        return NUM_SYNTAX;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0')
        return NUM_SYNTAX;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = (uint64_t)v;
    return NUM_OK;
}

/* json_to_i64 reads an integer given as a JSON integer, an integral number such as 1e3 or
 * 2.0, or a decimal string. */
static num_status_t json_to_i64(const json_t *json, int64_t *out)
{
    if (json_is_integer(json)) {
        *out = json_integer_value(json);
        return NUM_OK;
    }
    if (json_is_real(json)) {
        double d = json_real_value(json);
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return NUM_RANGE;
        if ((double)(int64_t)d != d)
            return NUM_SYNTAX;
        *out = (int64_t)d;
        return NUM_OK;
    }
    return parse_i64(json_cstring(json), out);
}

static num_status_t json_to_u64(const json_t *json, uint64_t *out)
{
    if (json_is_integer(json)) {
        json_int_t v = json_integer_value(json);
        if (v < 0)
            return NUM_RANGE;
        *out = (uint64_t)v;
        return NUM_OK;
    }
    if (json_is_real(json)) {
        double d = json_real_value(json);
        if (!(d > -1.0 && d < 18446744073709551616.0))
            return NUM_RANGE;
        if ((double)(uint64_t)d != d)
            return NUM_SYNTAX;
        *out = (uint64_t)d;
        return NUM_OK;
    }
    return parse_u64(json_cstring(json), out);
}

static pc_err_t range_error(ctx_t *ctx, const json_t *json, const char *range)
{
    char got[QUOTE_MAX + 32];
    describe_json(json, got, sizeof(got));
    return fail_at(ctx, PC_ERR_INVALID_PARAM, "%s is out of range %s", got, range);
}

static pc_err_t decode_signed(ctx_t *ctx, const json_t *json, int64_t min, int64_t max,
                              int64_t *out)
{
    int64_t v = 0;
    char range[64];
    num_status_t status = json_to_i64(json, &v);
    if (status == NUM_SYNTAX)
        return type_error(
            ctx, max > INT32_MAX ? "an integer (number or decimal string)" : "a number", json);
    if (status == NUM_RANGE || v < min || v > max) {
        snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64, min, max);
        return range_error(ctx, json, range);
    }
    *out = v;
    return PC_OK;
}

static pc_err_t decode_unsigned(ctx_t *ctx, const json_t *json, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    char range[64];
    num_status_t status = json_to_u64(json, &v);
    if (status == NUM_SYNTAX)
        return type_error(
            ctx, max > UINT32_MAX ? "an integer (number or decimal string)" : "a number", json);
    if (status == NUM_RANGE || v > max) {
        snprintf(range, sizeof(range), "0..%" PRIu64, max);
        return range_error(ctx, json, range);
    }
    *out = v;
    return PC_OK;
}

/* parse_double reads a decimal number from a string; strtod alone would also take "inf",
 * hex and leading spaces, which proto3 JSON does not. */
static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    if (s == NULL || s[0] == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
        return false;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE)
        return false;
    *out = d;
    return true;
}

static pc_err_t decode_floating(ctx_t *ctx, const json_t *json, bool single, void *member)
{
    const char *s = json_cstring(json);
    double d = 0;
    if (json_is_number(json))
        d = json_number_value(json);
    else if (s != NULL && strcmp(s, "NaN") == 0)
        d = NAN;
    else if (s != NULL && strcmp(s, "Infinity") == 0)
        d = INFINITY;
    else if (s != NULL && strcmp(s, "-Infinity") == 0)
        d = -INFINITY;
    else if (!parse_double(s, &d))
        return type_error(ctx, "a number", json);
    if (!single) {
        *(double *)member = d;
        return PC_OK;
    }
    if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
        return range_error(ctx, json, "of a float");
    *(float *)member = (float)d;
    return PC_OK;
}

/* enum_names lists an enum's value names ("A, B, C") if they fit, for error messages. */
static void enum_names(const ProtobufCEnumDescriptor *edesc, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < edesc->n_values; i++) {
        int w = snprintf(buf + n, size - n, "%s%s", i > 0 ? ", " : "", edesc->values[i].name);
        if (w < 0 || (size_t)w >= size - n) {
            snprintf(buf, size, "the values of %s", edesc->name);
            return;
        }
        n += (size_t)w;
    }
}

static pc_err_t decode_enum(ctx_t *ctx, const ProtobufCEnumDescriptor *edesc, const json_t *json,
                            int32_t *out)
{
    char names[200];
    char quoted[QUOTE_MAX + 8];
    int64_t v = 0;
    if (json_is_integer(json)) {
        /* proto3 enums are open: any int32 is kept, named or not */
        pc_err_t err = decode_signed(ctx, json, INT32_MIN, INT32_MAX, &v);
        if (err == PC_OK)
            *out = (int32_t)v;
        return err;
    }
    const char *s = json_cstring(json);
    if (s == NULL)
        return type_error(ctx, "an enum value name or number", json);
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(edesc, s);
    if (ev == NULL) {
        enum_names(edesc, names, sizeof(names));
        quote_json(json, quoted, sizeof(quoted));
        return fail_at(ctx, PC_ERR_INVALID_PARAM, "unknown %s value %s; use one of %s",
                       edesc->short_name, quoted, names);
    }
    *out = ev->value;
    return PC_OK;
}

static pc_err_t decode_bool(ctx_t *ctx, const json_t *json, protobuf_c_boolean *out)
{
    if (!json_is_boolean(json))
        return type_error(ctx, "true or false", json);
    *out = json_is_true(json);
    return PC_OK;
}

/* decode_string_value stores a malloc'd copy; the member holds the default (not owned). */
static pc_err_t decode_string_value(ctx_t *ctx, const json_t *json, char **member)
{
    if (!json_is_string(json))
        return type_error(ctx, "a string", json);
    const char *s = json_cstring(json);
    if (s == NULL)
        return fail_at(ctx, PC_ERR_INVALID_PARAM, "string holds a NUL character (\\u0000)");
    size_t len = json_string_length(json);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return fail_nomem(ctx);
    memcpy(copy, s, len + 1);
    *member = copy;
    return PC_OK;
}

static pc_err_t decode_bytes(ctx_t *ctx, const json_t *json, ProtobufCBinaryData *member)
{
    if (!json_is_string(json))
        return type_error(ctx, "a base64 string", json);
    return base64_decode(ctx, json_string_value(json), json_string_length(json), member);
}

/* decode_submessage attaches a new, initialised message to member before filling it, so a
 * failure part way leaves it for protobuf_c_message_free_unpacked to free. */
static pc_err_t decode_submessage(ctx_t *ctx, const ProtobufCMessageDescriptor *desc,
                                  const json_t *json, int depth, ProtobufCMessage **member)
{
    if (!json_is_object(json))
        return type_error(ctx, "an object", json);
    ProtobufCMessage *sub = malloc(desc->sizeof_message);
    if (sub == NULL)
        return fail_nomem(ctx);
    protobuf_c_message_init(desc, sub);
    *member = sub;
    return decode_message(ctx, json, sub, depth + 1);
}

/* decode_value stores one value into member (a field or an array element). */
static pc_err_t decode_value(ctx_t *ctx, const ProtobufCFieldDescriptor *field, const json_t *json,
                             int depth, void *member)
{
    int64_t i64 = 0;
    uint64_t u64 = 0;
    pc_err_t err = PC_OK;
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((err = decode_signed(ctx, json, INT32_MIN, INT32_MAX, &i64)) == PC_OK)
            *(int32_t *)member = (int32_t)i64;
        return err;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((err = decode_signed(ctx, json, INT64_MIN, INT64_MAX, &i64)) == PC_OK)
            *(int64_t *)member = i64;
        return err;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((err = decode_unsigned(ctx, json, UINT32_MAX, &u64)) == PC_OK)
            *(uint32_t *)member = (uint32_t)u64;
        return err;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((err = decode_unsigned(ctx, json, UINT64_MAX, &u64)) == PC_OK)
            *(uint64_t *)member = u64;
        return err;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return decode_floating(ctx, json, field->type == PROTOBUF_C_TYPE_FLOAT, member);
    case PROTOBUF_C_TYPE_BOOL:
        return decode_bool(ctx, json, member);
    case PROTOBUF_C_TYPE_ENUM:
        return decode_enum(ctx, field->descriptor, json, member);
    case PROTOBUF_C_TYPE_STRING:
        return decode_string_value(ctx, json, member);
    case PROTOBUF_C_TYPE_BYTES:
        return decode_bytes(ctx, json, member);
    case PROTOBUF_C_TYPE_MESSAGE:
        return decode_submessage(ctx, field->descriptor, json, depth, member);
    }
    return fail_at(ctx, PC_ERR_NOT_SUPPORTED, "field type %d is not supported", field->type);
}

/* ---- decoding: fields --------------------------------------------------------------------- */

static pc_err_t decode_array(ctx_t *ctx, ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *field, const json_t *json, int depth)
{
    pc_err_t err = PC_OK;
    if (!json_is_array(json))
        return type_error(ctx, "an array", json);
    size_t n = json_array_size(json);
    size_t size = value_size(field->type);
    if (n == 0)
        return PC_OK;
    /* zeroed elements are safe for free_unpacked, so the count is set at once */
    char *arr = calloc(n, size);
    if (arr == NULL)
        return fail_nomem(ctx);
    *(void **)member_mut(msg, field->offset) = arr;
    *(size_t *)member_mut(msg, field->quantifier_offset) = n;
    for (size_t i = 0; i < n && err == PC_OK; i++) {
        size_t mark = path_push_index(ctx, i);
        err = decode_value(ctx, field, json_array_get(json, i), depth, arr + i * size);
        if (err == PC_OK)
            path_pop(ctx, mark);
    }
    return err;
}

static pc_err_t decode_map_key(ctx_t *ctx, const ProtobufCFieldDescriptor *kf, const char *key,
                               void *member)
{
    pc_err_t err = PC_OK;
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return fail_at(ctx, PC_ERR_INVALID_PARAM, "map key must be \"true\" or \"false\"");
        *(protobuf_c_boolean *)member = strcmp(key, "true") == 0;
        return PC_OK;
    }
    /* integral keys come as strings, which the integer decoders accept */
    json_t *jkey = json_string(key);
    if (jkey == NULL)
        return fail_nomem(ctx);
    err = decode_value(ctx, kf, jkey, 0, member);
    json_decref(jkey);
    return err;
}

static pc_err_t decode_map_entry(ctx_t *ctx, const ProtobufCMessageDescriptor *edesc,
                                 const char *key, const json_t *value, int depth,
                                 ProtobufCMessage **slot)
{
    const ProtobufCFieldDescriptor *kf = &edesc->fields[0];
    const ProtobufCFieldDescriptor *vf = &edesc->fields[1];
    ProtobufCMessage *entry = malloc(edesc->sizeof_message);
    if (entry == NULL)
        return fail_nomem(ctx);
    protobuf_c_message_init(edesc, entry);
    *slot = entry;
    pc_err_t err = decode_map_key(ctx, kf, key, member_mut(entry, kf->offset));
    if (err == PC_OK)
        err = decode_value(ctx, vf, value, depth, member_mut(entry, vf->offset));
    return err;
}

static pc_err_t decode_map(ctx_t *ctx, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
                           const json_t *json, int depth)
{
    const char *key;
    json_t *value;
    size_t i = 0;
    pc_err_t err = PC_OK;
    if (!json_is_object(json))
        return type_error(ctx, "an object", json);
    size_t n = json_object_size(json);
    if (n == 0)
        return PC_OK;
    ProtobufCMessage **entries = calloc(n, sizeof(*entries));
    if (entries == NULL)
        return fail_nomem(ctx);
    *(ProtobufCMessage ***)member_mut(msg, field->offset) = entries;
    *(size_t *)member_mut(msg, field->quantifier_offset) = n;
    json_object_foreach(unconst(json), key, value)
    {
        size_t mark = path_push_key(ctx, key);
        err = decode_map_entry(ctx, field->descriptor, key, value, depth, &entries[i++]);
        if (err != PC_OK)
            break;
        path_pop(ctx, mark);
    }
    return err;
}

/* claim_oneof records that field is the member of its oneof that is set, or fails if another
 * member already is. */
static pc_err_t claim_oneof(ctx_t *ctx, ProtobufCMessage *msg,
                            const ProtobufCFieldDescriptor *field)
{
    char other[NAME_MAX_LEN];
    uint32_t *oneof_case = member_mut(msg, field->quantifier_offset);
    if (*oneof_case != 0 && *oneof_case != field->id) {
        const ProtobufCFieldDescriptor *set =
            protobuf_c_message_descriptor_get_field(msg->descriptor, *oneof_case);
        if (set == NULL || !camel_name(set->name, false, other, sizeof(other)))
            snprintf(other, sizeof(other), "another member");
        return fail_at(ctx, PC_ERR_INVALID_PARAM,
                       "%s is already set and only one member of this oneof may be set", other);
    }
    *oneof_case = field->id;
    return PC_OK;
}

static pc_err_t decode_field(ctx_t *ctx, ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *field, const json_t *json, int depth)
{
    pc_err_t err = PC_OK;
    if (json_is_null(json))
        return PC_OK;
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return is_map_field(msg->descriptor, field) ? decode_map(ctx, msg, field, json, depth)
                                                    : decode_array(ctx, msg, field, json, depth);
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        err = claim_oneof(ctx, msg, field);
    if (err == PC_OK)
        err = decode_value(ctx, field, json, depth, member_mut(msg, field->offset));
    if (err == PC_OK && field->label == PROTOBUF_C_LABEL_OPTIONAL &&
        !(field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !is_pointer_type(field->type))
        *(protobuf_c_boolean *)member_mut(msg, field->quantifier_offset) = 1;
    return err;
}

/* find_field looks key up as a proto name, then as a lowerCamelCase JSON name. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
    char name[NAME_MAX_LEN];
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(desc, key);
    for (unsigned i = 0; field == NULL && i < desc->n_fields; i++) {
        if (camel_name(desc->fields[i].name, false, name, sizeof(name)) && strcmp(name, key) == 0)
            field = &desc->fields[i];
    }
    return field;
}

static pc_err_t unknown_field(ctx_t *ctx, const ProtobufCMessageDescriptor *desc)
{
    char known[300];
    char name[NAME_MAX_LEN];
    size_t n = 0;
    known[0] = '\0';
    for (unsigned i = 0; i < desc->n_fields && n < sizeof(known); i++) {
        if (!camel_name(desc->fields[i].name, false, name, sizeof(name)))
            continue;
        int w = snprintf(known + n, sizeof(known) - n, "%s%s", n > 0 ? ", " : "", name);
        n = w > 0 ? n + (size_t)w : n;
    }
    return fail_at(ctx, PC_ERR_INVALID_PARAM, "unknown field of %s (known fields: %s)", desc->name,
                   known);
}

/* given_twice fails if the object names field both ways ("requestId" and "request_id"). */
static pc_err_t given_twice(ctx_t *ctx, const json_t *obj, const ProtobufCFieldDescriptor *field,
                            const char *key)
{
    char json_name[NAME_MAX_LEN];
    if (!camel_name(field->name, false, json_name, sizeof(json_name)))
        return PC_OK;
    const char *other = strcmp(key, field->name) == 0 ? json_name : field->name;
    if (strcmp(other, key) == 0 || json_object_get(obj, other) == NULL)
        return PC_OK;
    return fail_at(ctx, PC_ERR_INVALID_PARAM, "field given twice, as \"%s\" and \"%s\"",
                   field->name, json_name);
}

static pc_err_t decode_message(ctx_t *ctx, const json_t *json, ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *key;
    json_t *value;
    pc_err_t err = PC_OK;
    if (depth > PC_PBJSON_MAX_DEPTH)
        return fail_at(ctx, PC_ERR_TOO_LARGE, "messages nested deeper than %d levels",
                       PC_PBJSON_MAX_DEPTH);
    if (!json_is_object(json))
        return type_error(ctx, "an object", json);
    json_object_foreach(unconst(json), key, value)
    {
        size_t mark = path_push_field(ctx, key);
        const ProtobufCFieldDescriptor *field = find_field(desc, key);
        err = field != NULL ? given_twice(ctx, json, field, key) : unknown_field(ctx, desc);
        if (err == PC_OK)
            err = decode_field(ctx, msg, field, value, depth);
        if (err != PC_OK)
            break;
        path_pop(ctx, mark);
    }
    return err;
}

/* depth_within tells whether json nests objects and arrays at most PC_PBJSON_MAX_DEPTH deep;
 * checked up front so that over-deep input is "too large" wherever it hides. */
static bool depth_within(const json_t *json, int depth)
{
    const char *key;
    json_t *value;
    if (!json_is_object(json) && !json_is_array(json))
        return true;
    if (depth > PC_PBJSON_MAX_DEPTH)
        return false;
    for (size_t i = 0; i < json_array_size(json); i++) {
        if (!depth_within(json_array_get(json, i), depth + 1))
            return false;
    }
    json_object_foreach(unconst(json), key, value)
    {
        if (!depth_within(value, depth + 1))
            return false;
    }
    return true;
}

/* ---- public ------------------------------------------------------------------------------- */

pc_err_t pc_pbjson_encode(const ProtobufCMessage *msg, json_t **out, pc_diag_t *diag)
{
    if (out != NULL)
        *out = NULL;
    if (msg == NULL || out == NULL || msg->descriptor == NULL ||
        msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pbjson encode: no message or no output");
    ctx_t ctx = {.diag = diag, .root = msg->descriptor->name};
    return encode_message(&ctx, msg, 1, out);
}

pc_err_t pc_pbjson_encode_string(const ProtobufCMessage *msg, bool pretty, char **out,
                                 pc_diag_t *diag)
{
    json_t *json = NULL;
    if (out == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pbjson encode: no output");
    *out = NULL;
    pc_err_t err = pc_pbjson_encode(msg, &json, diag);
    if (err == PC_OK) {
        *out = json_dumps(json, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        if (*out == NULL)
            err = pc_fail(diag, PC_ERR_NOMEM, "%s: out of memory writing JSON text",
                          msg->descriptor->name);
    }
    json_decref(json);
    return err;
}

pc_err_t pc_pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                          ProtobufCMessage **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    if (out != NULL)
        *out = NULL;
    if (desc == NULL || json == NULL || out == NULL ||
        desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pbjson decode: no type, JSON or output");
    ctx_t ctx = {.diag = diag, .root = desc->name};
    if (!depth_within(json, 1))
        return pc_fail(diag, PC_ERR_TOO_LARGE,
                       "%s: JSON nested deeper than %d levels; the message is never that deep",
                       desc->name, PC_PBJSON_MAX_DEPTH);
    if (!json_is_object(json))
        return type_error(&ctx, "a JSON object", json);
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (msg == NULL)
        return fail_nomem(&ctx);
    protobuf_c_message_init(desc, msg);
    err = decode_message(&ctx, json, msg, 1);
    if (err != PC_OK)
        goto out_free_msg;
    *out = msg;
    msg = NULL;
out_free_msg:
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
    return err;
}

pc_err_t pc_pbjson_decode_string(const ProtobufCMessageDescriptor *desc, const char *text,
                                 size_t len, ProtobufCMessage **out, pc_diag_t *diag)
{
    json_error_t jerr;
    const char *name = desc != NULL ? desc->name : "message";
    if (out != NULL)
        *out = NULL;
    if (text == NULL && len > 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: no JSON text", name);
    if (len > PC_PBJSON_MAX_TEXT)
        return pc_fail(diag, PC_ERR_TOO_LARGE,
                       "%s: JSON text of %zu bytes is over the limit of %u bytes", name, len,
                       (unsigned)PC_PBJSON_MAX_TEXT);
    json_t *json = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL)
        return pc_fail(diag,
                       json_error_code(&jerr) == json_error_stack_overflow ? PC_ERR_TOO_LARGE
                                                                           : PC_ERR_BAD_MESSAGE,
                       "%s: malformed JSON at line %d, column %d: %s", name, jerr.line, jerr.column,
                       jerr.text);
    pc_err_t err = pc_pbjson_decode(desc, json, out, diag);
    json_decref(json);
    return err;
}
