/*
 * subject.c - subject names from a format with {{variables}}, read the way Windows
 * CertStrToName (CERT_X500_NAME_STR) reads X.500 text, in the order written.
 *
 * Two passes, so that a substituted value can never become syntax: parse_format() reads only
 * the format and turns it into attribute templates (type, RDN index, literal and variable
 * segments); render_attr() then fills each template with variable values as opaque bytes and
 * encodes it. The parser never sees a value. Any thread.
 */
#include "subject.h"
#include "subject_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

/* A format is admin-written text; values are bounded by X.520 unless allow_long. These caps
 * only keep a broken profile or request from making huge allocations. */
#define FORMAT_MAX 16384
#define VALUE_MAX 65536
/* Longest piece of a value or format quoted back in a message. */
#define QUOTE_MAX 64

enum value_kind {
    KIND_UTF8,    /* UTF8String */
    KIND_IA5,     /* IA5String: ASCII only */
    KIND_DC,      /* IA5String, bound applies per dot-separated label */
    KIND_COUNTRY, /* PrintableString, exactly two letters */
    KIND_SERIAL,  /* PrintableString only (RFC 5280 A.1: X520SerialNumber) */
};

/* Upper bounds from RFC 5280 appendix A (ub-*), in characters; 0 means none. */
static const struct rdn_type {
    const char *name;
    int nid;
    enum value_kind kind;
    size_t max_chars;
} rdn_types[] = {
    {"CN", NID_commonName, KIND_UTF8, 64},
    {"E", NID_pkcs9_emailAddress, KIND_IA5, 255},
    {"EMAIL", NID_pkcs9_emailAddress, KIND_IA5, 255},
    {"OU", NID_organizationalUnitName, KIND_UTF8, 64},
    {"O", NID_organizationName, KIND_UTF8, 64},
    {"L", NID_localityName, KIND_UTF8, 128},
    {"ST", NID_stateOrProvinceName, KIND_UTF8, 128},
    {"S", NID_stateOrProvinceName, KIND_UTF8, 128},
    {"C", NID_countryName, KIND_COUNTRY, 2},
    {"DC", NID_domainComponent, KIND_DC, 63},
    {"SERIALNUMBER", NID_serialNumber, KIND_SERIAL, 64},
    {"G", NID_givenName, KIND_UTF8, 32768},
    {"GN", NID_givenName, KIND_UTF8, 32768},
    {"SN", NID_surname, KIND_UTF8, 32768},
    {"T", NID_title, KIND_UTF8, 64},
    {"TITLE", NID_title, KIND_UTF8, 64},
    {"STREET", NID_streetAddress, KIND_UTF8, 128},
    {"POSTALCODE", NID_postalCode, KIND_UTF8, 40},
};

#define RDN_TYPE_COUNT (sizeof(rdn_types) / sizeof(rdn_types[0]))

/* One piece of a value template: a variable name (in the format) or literal bytes (in lit). */
typedef struct segment {
    bool is_var;
    size_t off;
    size_t len;
} segment_t;

typedef struct attr_tmpl {
    const struct rdn_type *rdn_type; /* NULL for a dotted OID */
    ASN1_OBJECT *oid;                /* dotted OID, owned */
    size_t type_off, type_len;       /* the type as written, for messages */
    size_t rdn;                      /* 0-based RDN index */
    size_t seg_first, seg_count;
} attr_tmpl_t;

typedef struct tmpl {
    attr_tmpl_t *attrs;
    size_t attr_count, attr_cap;
    segment_t *segs;
    size_t seg_count, seg_cap;
    pc_buf_t lit;
} tmpl_t;

typedef struct parser {
    const char *s;
    size_t pos;
    tmpl_t *tmpl;
    attr_tmpl_t *attr;     /* the attribute being parsed */
    size_t ws_off, ws_len; /* unquoted whitespace kept only if more value text follows */
    size_t sep_pos;        /* the last separator read */
    pc_diag_t *diag;
} parser_t;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_separator(char c)
{
    return c == '\0' || c == ',' || c == ';' || c == '+';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool ascii_iequal(const char *a, size_t a_len, const char *cstr)
{
    size_t i;

    for (i = 0; i < a_len; i++) {
        char x = a[i], y = cstr[i];
        if (y == '\0')
            return false;
        if (x >= 'a' && x <= 'z')
            x = (char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = (char)(y - 'a' + 'A');
        if (x != y)
            return false;
    }
    return cstr[i] == '\0';
}

static void skip_space(parser_t *p)
{
    while (is_space(p->s[p->pos]))
        p->pos++;
}

static void tmpl_free(tmpl_t *tmpl)
{
    for (size_t i = 0; i < tmpl->attr_count; i++)
        ASN1_OBJECT_free(tmpl->attrs[i].oid);
    free(tmpl->attrs);
    free(tmpl->segs);
    pc_buf_free(&tmpl->lit);
}

static pc_err_t push_attr(parser_t *p, size_t rdn)
{
    tmpl_t *tmpl = p->tmpl;

    if (tmpl->attr_count == tmpl->attr_cap) {
        size_t cap = tmpl->attr_cap ? tmpl->attr_cap * 2 : 8;
        attr_tmpl_t *grown = realloc(tmpl->attrs, cap * sizeof(*grown));
        if (grown == NULL)
            return pc_fail(p->diag, PC_ERR_NOMEM, "out of memory parsing the subject format");
        tmpl->attrs = grown;
        tmpl->attr_cap = cap;
    }
    p->attr = &tmpl->attrs[tmpl->attr_count++];
    memset(p->attr, 0, sizeof(*p->attr));
    p->attr->rdn = rdn;
    p->attr->seg_first = tmpl->seg_count;
    return PC_OK;
}

static pc_err_t push_segment(parser_t *p, bool is_var, size_t off, size_t len)
{
    tmpl_t *tmpl = p->tmpl;

    if (tmpl->seg_count == tmpl->seg_cap) {
        size_t cap = tmpl->seg_cap ? tmpl->seg_cap * 2 : 16;
        segment_t *grown = realloc(tmpl->segs, cap * sizeof(*grown));
        if (grown == NULL)
            return pc_fail(p->diag, PC_ERR_NOMEM, "out of memory parsing the subject format");
        tmpl->segs = grown;
        tmpl->seg_cap = cap;
    }
    tmpl->segs[tmpl->seg_count++] = (segment_t){.is_var = is_var, .off = off, .len = len};
    p->attr->seg_count++;
    return PC_OK;
}

/* Appends literal bytes to the current attribute, growing its last literal segment if any. */
static pc_err_t add_literal(parser_t *p, const char *bytes, size_t len)
{
    tmpl_t *tmpl = p->tmpl;
    size_t off = tmpl->lit.len;
    pc_err_t err;

    if ((err = pc_buf_append(&tmpl->lit, bytes, len, p->diag)) != PC_OK)
        return err;
    if (p->attr->seg_count > 0) {
        segment_t *last = &tmpl->segs[tmpl->seg_count - 1];
        if (!last->is_var && last->off + last->len == off) {
            last->len += len;
            return PC_OK;
        }
    }
    return push_segment(p, false, off, len);
}

/* Unquoted whitespace is held back and kept only when more value text follows, so that
 * leading and trailing blanks of the format are trimmed as CertStrToName does. */
static pc_err_t flush_space(parser_t *p)
{
    size_t len = p->ws_len;

    p->ws_len = 0;
    return len ? add_literal(p, p->s + p->ws_off, len) : PC_OK;
}

static pc_err_t parse_variable(parser_t *p)
{
    size_t name_off, name_len, end;
    pc_err_t err;

    if ((err = pc_vars_ref_scan(p->s, p->pos, &name_off, &name_len, &end, p->diag)) != PC_OK ||
        (err = push_segment(p, true, name_off, name_len)) != PC_OK)
        return err;
    p->pos = end;
    return PC_OK;
}

static pc_err_t unmatched_close(parser_t *p)
{
    return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                   "unbalanced braces: the '}}' at position %zu has no matching '{{'", p->pos + 1);
}

/* Unquoted text: backslash escapes RFC 4514 specials or gives a byte as two hex digits. */
static pc_err_t parse_escape(parser_t *p)
{
    const char *s = p->s + p->pos;
    int hi = hex_value(s[1]);
    int lo = hi >= 0 ? hex_value(s[2]) : -1;
    char byte;

    if (hi >= 0 && lo >= 0) {
        byte = (char)(unsigned char)(hi * 16 + lo);
        p->pos += 3;
        return add_literal(p, &byte, 1);
    }
    if (s[1] != '\0' && strchr(",+;\"\\<>#= {}", s[1]) != NULL) {
        p->pos += 2;
        return add_literal(p, s + 1, 1);
    }
    if (s[1] == '\0')
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "the '\\' at position %zu ends the format; write \\\\ for a backslash",
                       p->pos + 1);
    return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                   "invalid escape at position %zu: '\\' must be followed by one of , + ; \" \\ "
                   "< > # = space or two hex digits",
                   p->pos + 1);
}

static pc_err_t parse_quoted(parser_t *p)
{
    size_t open = p->pos++;
    pc_err_t err = PC_OK;

    for (;;) {
        const char *s = p->s + p->pos;
        if (s[0] == '\0')
            return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                           "unterminated quote: the '\"' at position %zu has no closing '\"'",
                           open + 1);
        if (s[0] == '"' && s[1] != '"')
            break;
        if (s[0] == '{' && s[1] == '{') {
            err = parse_variable(p);
        } else if (s[0] == '}' && s[1] == '}') {
            err = unmatched_close(p);
        } else {
            /* "" inside quotes is one literal quote, as in CertStrToName */
            err = add_literal(p, s, 1);
            p->pos += s[0] == '"' ? 2 : 1;
        }
        if (err != PC_OK)
            return err;
    }
    p->pos++;
    skip_space(p);
    if (!is_separator(p->s[p->pos]))
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "unexpected text at position %zu after the closing quote; put all of the "
                       "value inside the quotes",
                       p->pos + 1);
    return PC_OK;
}

static pc_err_t parse_unquoted_char(parser_t *p)
{
    const char *s = p->s + p->pos;
    pc_err_t err;

    if (is_space(s[0])) {
        if (p->ws_len == 0)
            p->ws_off = p->pos;
        p->ws_len++;
        p->pos++;
        return PC_OK;
    }
    if ((err = flush_space(p)) != PC_OK)
        return err;
    if (s[0] == '\\')
        return parse_escape(p);
    if (s[0] == '{' && s[1] == '{')
        return parse_variable(p);
    if (s[0] == '}' && s[1] == '}')
        return unmatched_close(p);
    if (s[0] == '"')
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "unexpected '\"' at position %zu inside an unquoted value; quote the whole "
                       "value (O=\"a, b\") or write \\\"",
                       p->pos + 1);
    p->pos++;
    return add_literal(p, s, 1);
}

static pc_err_t parse_value(parser_t *p)
{
    pc_err_t err = PC_OK;

    skip_space(p);
    if (p->s[p->pos] == '"')
        return parse_quoted(p);
    p->ws_len = 0;
    while (err == PC_OK && !is_separator(p->s[p->pos]))
        err = parse_unquoted_char(p);
    p->ws_len = 0;
    return err;
}

/* "1.2.3.4" or "OID.1.2.3.4": digits and single dots, at least two arcs. */
static pc_err_t parse_oid(parser_t *p, const char *text, size_t len, size_t at)
{
    char buf[128];
    bool dot_ok = false;
    size_t dots = 0;

    if (len >= 4 && ascii_iequal(text, 4, "OID.")) {
        text += 4;
        len -= 4;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '.' && dot_ok) {
            dot_ok = false;
            dots++;
        } else if (is_digit(text[i])) {
            dot_ok = true;
        } else {
            dots = 0;
            break;
        }
    }
    if (!dot_ok || dots == 0 || len >= sizeof(buf))
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "invalid OID '%.*s' as RDN type at position %zu; write it as 1.2.3.4",
                       pc_utf8_clip(text, len, QUOTE_MAX), text, at + 1);
    memcpy(buf, text, len);
    buf[len] = '\0';
    p->attr->oid = OBJ_txt2obj(buf, 1);
    if (p->attr->oid == NULL)
        return pc_fail_ssl(p->diag, PC_ERR_INVALID_PARAM,
                           "invalid OID '%s' as RDN type at position %zu", buf, at + 1);
    return PC_OK;
}

static pc_err_t parse_type(parser_t *p)
{
    size_t start = p->pos, end;
    const char *s = p->s;

    while (!is_separator(s[p->pos]) && s[p->pos] != '=')
        p->pos++;
    end = p->pos;
    while (end > start && is_space(s[end - 1]))
        end--;
    if (s[p->pos] != '=')
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "missing '=' after '%.*s' at position %zu; write TYPE=value such as CN=Ann",
                       pc_utf8_clip(s + start, end - start, QUOTE_MAX), s + start, start + 1);
    if (end == start)
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "missing attribute type before the '=' at position %zu", p->pos + 1);
    p->pos++;
    p->attr->type_off = start;
    p->attr->type_len = end - start;
    if (is_digit(s[start]) || (end - start > 4 && ascii_iequal(s + start, 4, "OID.")))
        return parse_oid(p, s + start, end - start, start);
    for (size_t i = 0; i < RDN_TYPE_COUNT; i++) {
        if (ascii_iequal(s + start, end - start, rdn_types[i].name)) {
            p->attr->rdn_type = &rdn_types[i];
            return PC_OK;
        }
    }
    return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                   "unknown RDN type '%.*s' at position %zu; use CN, E, OU, O, L, ST, C, DC, "
                   "SERIALNUMBER, G, SN, T, STREET, POSTALCODE or a dotted OID",
                   pc_utf8_clip(s + start, end - start, QUOTE_MAX), s + start, start + 1);
}

static pc_err_t parse_attr(parser_t *p, size_t rdn)
{
    pc_err_t err;
    char c;

    skip_space(p);
    c = p->s[p->pos];
    if (c == '\0')
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "the format ends with the separator '%c' at position %zu; remove it",
                       p->s[p->sep_pos], p->sep_pos + 1);
    if (is_separator(c))
        return pc_fail(p->diag, PC_ERR_INVALID_PARAM,
                       "empty %s at position %zu: nothing before the '%c'; remove it or add "
                       "TYPE=value",
                       c == '+' ? "attribute" : "RDN", p->pos + 1, c);
    if ((err = push_attr(p, rdn)) != PC_OK || (err = parse_type(p)) != PC_OK)
        return err;
    return parse_value(p);
}

/* Pass one: the format alone, into templates. Nothing here looks at a variable's value. */
static pc_err_t parse_format(const char *format, tmpl_t *tmpl, pc_diag_t *diag)
{
    parser_t p = {.s = format, .tmpl = tmpl, .diag = diag};
    size_t rdn = 0;
    pc_err_t err;

    for (;;) {
        if ((err = parse_attr(&p, rdn)) != PC_OK)
            return err;
        char c = format[p.pos];
        if (c == '\0')
            return PC_OK;
        p.sep_pos = p.pos++;
        if (c != '+')
            rdn++;
    }
}

/* ---- pass two: fill and encode ---- */

static const char *attr_label(const char *format, const attr_tmpl_t *attr, int *len)
{
    *len = pc_utf8_clip(format + attr->type_off, attr->type_len, QUOTE_MAX);
    return format + attr->type_off;
}

static pc_err_t fill_value(const char *format, const tmpl_t *tmpl, const attr_tmpl_t *attr,
                           pc_cert_type_t type, const pc_vars_t *vars, pc_buf_t *value,
                           pc_diag_t *diag)
{
    pc_err_t err = PC_OK;

    for (size_t i = 0; i < attr->seg_count && err == PC_OK; i++) {
        const segment_t *seg = &tmpl->segs[attr->seg_first + i];
        const char *text;
        if (!seg->is_var) {
            err = pc_buf_append(value, tmpl->lit.data + seg->off, seg->len, diag);
            continue;
        }
        if ((err = pc_vars_resolve(format + seg->off, seg->len, type, vars, &text, diag)) == PC_OK)
            err = pc_buf_append(value, text, strlen(text), diag);
    }
    return err;
}

static bool is_printable_string(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!is_alpha(c) && !is_digit(c) && strchr(" '()+,-./:=?", c) == NULL)
            return false;
    }
    return true;
}

static bool is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return false;
    }
    return true;
}

/* Longest dot-separated label of a DC value, in characters. */
static size_t longest_label(const char *s, size_t len)
{
    size_t longest = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (i - start > longest)
                longest = i - start;
            start = i + 1;
        }
    }
    return longest;
}

/* Checks a filled value against its attribute's rules; sets *asn1_type to its string type. */
static pc_err_t check_value(const char *format, const attr_tmpl_t *attr, const pc_buf_t *value,
                            bool allow_long, int *asn1_type, pc_diag_t *diag)
{
    int label_len, shown = pc_utf8_clip(value->data, value->len, QUOTE_MAX);
    const char *label = attr_label(format, attr, &label_len);
    enum value_kind kind = attr->rdn_type ? attr->rdn_type->kind : KIND_UTF8;
    size_t bad, chars, max = attr->rdn_type ? attr->rdn_type->max_chars : 0;

    if (value->len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%.*s value is empty; give it text or a variable that has a value",
                       label_len, label);
    if (value->len > VALUE_MAX)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "%.*s value is %zu bytes, over the limit of %d",
                       label_len, label, value->len, VALUE_MAX);
    if (!pc_utf8_valid(value->data, value->len, &bad))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%.*s value is not valid UTF-8 at byte %zu; check its \\XX escapes",
                       label_len, label, bad + 1);
    if (memchr(value->data, '\0', value->len) != NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%.*s value holds a NUL character (\\00)",
                       label_len, label);
    chars = pc_utf8_chars(value->data, value->len);
    *asn1_type = V_ASN1_UTF8STRING;
    switch (kind) {
    case KIND_COUNTRY:
        if (value->len != 2 || !is_alpha(value->data[0]) || !is_alpha(value->data[1]))
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "%.*s value '%.*s' is not a two-letter country code (ISO 3166, such "
                           "as US)",
                           label_len, label, shown, value->data);
        *asn1_type = V_ASN1_PRINTABLESTRING;
        return PC_OK;
    case KIND_IA5:
    case KIND_DC:
        if (!is_ascii(value->data, value->len))
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "%.*s value '%.*s' holds non-ASCII characters; %.*s is an IA5String "
                           "and takes ASCII only",
                           label_len, label, shown, value->data, label_len, label);
        *asn1_type = V_ASN1_IA5STRING;
        if (kind == KIND_DC)
            chars = longest_label(value->data, value->len);
        break;
    case KIND_SERIAL:
        /* RFC 5280 allows only a PrintableString here; a UTF8String is shown as hex by GnuTLS
         * and refused by strict parsers. */
        if (!is_printable_string(value->data, value->len))
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "%.*s value '%.*s' is not a PrintableString: a serial number takes "
                           "letters, digits, space and ' ( ) + , - . / : = ? only",
                           label_len, label, shown, value->data);
        *asn1_type = V_ASN1_PRINTABLESTRING;
        break;
    case KIND_UTF8:
        break;
    }
    if (max != 0 && chars > max && !allow_long)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%.*s value is %zu characters%s, over the X.520 limit of %zu; shorten it "
                       "or allow long values in the profile",
                       label_len, label, chars, kind == KIND_DC ? " in one label" : "", max);
    return PC_OK;
}

static pc_err_t render_attr(const char *format, const tmpl_t *tmpl, const attr_tmpl_t *attr,
                            pc_cert_type_t type, const pc_vars_t *vars, bool allow_long,
                            X509_NAME *name, pc_diag_t *diag)
{
    pc_buf_t value = {0};
    pc_err_t err;
    int asn1_type = V_ASN1_UTF8STRING, label_len;
    const char *label = attr_label(format, attr, &label_len);
    const ASN1_OBJECT *obj = attr->oid ? attr->oid : OBJ_nid2obj(attr->rdn_type->nid);
    bool first_in_rdn = attr == tmpl->attrs || attr[-1].rdn != attr->rdn;

    if ((err = fill_value(format, tmpl, attr, type, vars, &value, diag)) != PC_OK ||
        (err = check_value(format, attr, &value, allow_long, &asn1_type, diag)) != PC_OK)
        goto out_free_value;
    /* A plain string type (not MBSTRING_*) stores the bytes as given: no re-encoding and no
     * OpenSSL size table, whose limits we have already applied ourselves. set 0 starts a new
     * RDN, -1 joins the previous one. */
    if (!X509_NAME_add_entry_by_OBJ(name, obj, asn1_type, (const unsigned char *)value.data,
                                    (int)value.len, -1, first_in_rdn ? 0 : -1))
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not add %.*s to the subject name", label_len,
                          label);

out_free_value:
    pc_buf_free(&value);
    return err;
}

static bool all_space(const char *s)
{
    while (is_space(*s))
        s++;
    return *s == '\0';
}

pc_err_t pc_subject_render(const char *format, pc_cert_type_t type, const pc_vars_t *vars,
                           bool allow_long, X509_NAME **out, pc_diag_t *diag)
{
    tmpl_t tmpl = {0};
    X509_NAME *name = NULL;
    pc_err_t err = PC_OK;
    size_t len, bad;

    *out = NULL;
    if (format == NULL || all_space(format)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "the format is empty; write at least one attribute such as "
                      "CN={{UserName}}");
        goto out;
    }
    len = strlen(format);
    if (len > FORMAT_MAX) {
        err = pc_fail(diag, PC_ERR_TOO_LARGE, "the format is %zu bytes, over the limit of %d", len,
                      FORMAT_MAX);
        goto out;
    }
    if (!pc_utf8_valid(format, len, &bad)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "the format is not valid UTF-8 at position %zu",
                      bad + 1);
        goto out;
    }
    if ((err = parse_format(format, &tmpl, diag)) != PC_OK)
        goto out_free_tmpl;
    if ((name = X509_NAME_new()) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory creating a subject name");
        goto out_free_tmpl;
    }
    for (size_t i = 0; i < tmpl.attr_count && err == PC_OK; i++)
        err = render_attr(format, &tmpl, &tmpl.attrs[i], type, vars, allow_long, name, diag);
    if (err != PC_OK)
        goto out_free_name;
    *out = name;
    goto out_free_tmpl;

out_free_name:
    X509_NAME_free(name);
out_free_tmpl:
    tmpl_free(&tmpl);
out:
    if (err != PC_OK)
        pc_diag_prefix(diag, "subject");
    return err;
}
