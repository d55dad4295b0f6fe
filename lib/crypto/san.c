/*
 * san.c - subject alternative names (UPN, email, DNS, URI) from formats with {{variables}},
 * and Microsoft's SID security extension (KB5014754 strong certificate mapping).
 *
 * A SAN value is a whole string: the format is expanded as plain text, then checked against
 * the syntax of its type before it goes into a certificate. Any thread.
 */
#include "san.h"
#include "subject_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#define OID_UPN "1.3.6.1.4.1.311.20.2.3"
#define OID_SID_OTHERNAME "1.3.6.1.4.1.311.25.2.1"

#define UPN_MAX 1024
#define EMAIL_MAX 255 /* ub-emailaddress-length */
#define DNS_MAX 253
#define LABEL_MAX 63
#define URI_MAX 4096
#define SID_MAX 184 /* "S-1-" + 48-bit authority + 15 sub-authorities of 10 digits */
#define SID_SUBAUTH_MAX 15
#define QUOTE_MAX 64

static const char *san_type_name(pc_san_type_t type)
{
    switch (type) {
    case PC_SAN_UPN:
        return "UPN";
    case PC_SAN_EMAIL:
        return "email";
    case PC_SAN_DNS:
        return "DNS";
    case PC_SAN_URI:
        return "URI";
    }
    return "unknown";
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Visible ASCII, no space or control. */
static bool is_graph_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    }
    return true;
}

/* Letters, digits, hyphens; no hyphen at either end (RFC 1123). */
static bool is_ldh_label(const char *s, size_t len)
{
    if (len == 0 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
            return false;
    }
    return true;
}

/* label_problem says what is wrong with one label (NULL: nothing), quoting it in buf. */
static const char *label_problem(const char *s, size_t len, char *buf, size_t size)
{
    int quote = len > QUOTE_MAX ? QUOTE_MAX : (int)len;

    if (len == 0)
        return "it has an empty label (two dots in a row, or a dot at an end)";
    if (len > LABEL_MAX) {
        snprintf(buf, size, "label \"%.*s...\" is %zu characters; each label is 1-63", quote, s,
                 len);
        return buf;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80) {
            snprintf(buf, size,
                     "label \"%.*s\" is not ASCII; an international name goes in as its xn-- "
                     "A-label (IDNA 2008), e.g. from idn2",
                     pc_utf8_clip(s, len, QUOTE_MAX), s);
            return buf;
        }
    if (!is_ldh_label(s, len)) {
        snprintf(buf, size,
                 "label \"%.*s\" is not letters, digits and inner hyphens; each label is 1-63 "
                 "of those (LDH, RFC 1123)",
                 quote, s);
        return buf;
    }
    return NULL;
}

/* check_dns_name: LDH labels of 1-63 characters, 253 in all, ASCII only (international names as
 * xn-- A-labels; they are not decoded here), no empty label and so no trailing dot, and a last
 * label that is not all digits (an address is an IP SAN, not a DNS name). With wildcard_ok, a
 * first label "*" is syntax; whether a template allows it is the CA's business (ca.h). */
static const char *check_dns_name(const char *s, size_t len, bool wildcard_ok, char *buf,
                                  size_t size)
{
    size_t start = 0, last = 0;
    const char *problem;

    if (len > DNS_MAX)
        return "it is longer than 253 characters";
    if (wildcard_ok && len > 2 && s[0] == '*' && s[1] == '.')
        start = last = 2;
    for (size_t i = start; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if ((problem = label_problem(s + start, i - start, buf, size)) != NULL)
            return problem;
        last = start;
        start = i + 1;
    }
    for (size_t i = last; i < len; i++)
        if (!is_digit(s[i]))
            return NULL;
    return "its last label is all digits: an IP address is not a DNS name (use an IP SAN)";
}

static const char *check_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);

    if (len > EMAIL_MAX)
        return "it is longer than 255 characters";
    if (!is_graph_ascii(s, len))
        return "it must be ASCII without spaces";
    if (at == NULL || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
        return "it must hold exactly one '@'";
    if (at == s || at == s + len - 1)
        return "it needs text on both sides of the '@'";
    char buf[160];
    if (check_dns_name(at + 1, len - (size_t)(at - s) - 1, false, buf, sizeof(buf)) != NULL)
        return "the part after '@' is not a valid domain name";
    return NULL;
}

/* RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" and something after it. */
static const char *check_uri(const char *s, size_t len)
{
    size_t i = 0;

    if (len > URI_MAX)
        return "it is longer than 4096 characters";
    if (!is_graph_ascii(s, len))
        return "it must be ASCII without spaces (percent-encode other characters)";
    if (len == 0 || !is_alpha(s[0]))
        return "it must start with a scheme such as https:";
    while (i < len &&
           (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == len || s[i] != ':')
        return "it must start with a scheme such as https:";
    if (i + 1 == len)
        return "it has nothing after the scheme";
    return NULL;
}

static const char *check_upn(const char *s, size_t len)
{
    if (len > UPN_MAX)
        return "it is longer than 1024 characters";
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return "it holds control characters";
    }
    return NULL;
}

const char *pc_san_problem(pc_san_type_t type, const char *s, size_t len, char *buf, size_t size)
{
    switch (type) {
    case PC_SAN_UPN:
        return check_upn(s, len);
    case PC_SAN_EMAIL:
        return check_email(s, len);
    case PC_SAN_DNS:
        return check_dns_name(s, len, true, buf, size);
    case PC_SAN_URI:
        return check_uri(s, len);
    }
    return "the SAN type is not supported";
}

/* A UTF8String otherName under type-id oid (new, caller owns). */
static GENERAL_NAME *othername_new(const char *oid, int asn1_type, const char *s, size_t len)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *str = ASN1_STRING_type_new(asn1_type);

    if (gen == NULL || obj == NULL || value == NULL || str == NULL ||
        !ASN1_STRING_set(str, s, (int)len))
        goto out_free_all;
    ASN1_TYPE_set(value, asn1_type, str);
    str = NULL;
    if (!GENERAL_NAME_set0_othername(gen, obj, value))
        goto out_free_all;
    return gen;

out_free_all:
    ASN1_STRING_free(str);
    ASN1_TYPE_free(value);
    ASN1_OBJECT_free(obj);
    GENERAL_NAME_free(gen);
    return NULL;
}

/* An IA5String name of kind GEN_EMAIL / GEN_DNS / GEN_URI (new, caller owns). */
static GENERAL_NAME *ia5_name_new(int kind, const char *s, size_t len)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *str = ASN1_IA5STRING_new();

    if (gen == NULL || str == NULL || !ASN1_STRING_set(str, s, (int)len)) {
        ASN1_IA5STRING_free(str);
        GENERAL_NAME_free(gen);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, kind, str);
    return gen;
}

static GENERAL_NAME *general_name_new(pc_san_type_t type, const char *s, size_t len)
{
    switch (type) {
    case PC_SAN_UPN:
        return othername_new(OID_UPN, V_ASN1_UTF8STRING, s, len);
    case PC_SAN_EMAIL:
        return ia5_name_new(GEN_EMAIL, s, len);
    case PC_SAN_DNS:
        return ia5_name_new(GEN_DNS, s, len);
    case PC_SAN_URI:
        return ia5_name_new(GEN_URI, s, len);
    }
    return NULL;
}

static pc_err_t render_one(const pc_san_format_t *format, pc_cert_type_t type,
                           const pc_vars_t *vars, GENERAL_NAMES *names, pc_diag_t *diag)
{
    const char *type_name = san_type_name(format->type);
    char *value = NULL, why[PC_SAN_PROBLEM_MAX];
    GENERAL_NAME *gen = NULL;
    const char *problem;
    pc_err_t err;
    size_t len;

    if ((err = pc_vars_expand(format->format, type, vars, &value, diag)) != PC_OK) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "%s SAN", type_name);
        pc_diag_prefix(diag, prefix);
        goto out;
    }
    len = strlen(value);
    if (len == 0) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "%s SAN format '%.*s' renders empty; its variables have empty values",
                      type_name, pc_utf8_clip(format->format, strlen(format->format), QUOTE_MAX),
                      format->format);
        goto out_free_value;
    }
    if ((problem = pc_san_problem(format->type, value, len, why, sizeof(why))) != NULL) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "%s SAN '%.*s' is not valid: %s", type_name,
                      pc_utf8_clip(value, len, QUOTE_MAX), value, problem);
        goto out_free_value;
    }
    if ((gen = general_name_new(format->type, value, len)) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "could not build the %s SAN", type_name);
        goto out_free_value;
    }
    if (!sk_GENERAL_NAME_push(names, gen)) {
        GENERAL_NAME_free(gen);
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "could not add the %s SAN", type_name);
    }

out_free_value:
    free(value);
out:
    return err;
}

pc_err_t pc_san_render(const pc_san_format_t *formats, size_t count, pc_cert_type_t type,
                       const pc_vars_t *vars, GENERAL_NAMES **out, pc_diag_t *diag)
{
    GENERAL_NAMES *names = NULL;
    pc_err_t err = PC_OK;

    *out = NULL;
    if (count > 0 && formats == NULL) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "SAN formats are missing");
        goto out;
    }
    if ((names = GENERAL_NAMES_new()) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory creating SANs");
        goto out;
    }
    for (size_t i = 0; i < count && err == PC_OK; i++) {
        if (formats[i].format == NULL)
            err = pc_fail(diag, PC_ERR_INVALID_PARAM, "%s SAN has no format",
                          san_type_name(formats[i].type));
        else if (formats[i].type < PC_SAN_UPN || formats[i].type > PC_SAN_URI)
            err = pc_fail(diag, PC_ERR_NOT_SUPPORTED, "SAN type %d is not supported",
                          (int)formats[i].type);
        else
            err = render_one(&formats[i], type, vars, names, diag);
    }
    if (err != PC_OK)
        goto out_free_names;
    *out = names;
    goto out;

out_free_names:
    GENERAL_NAMES_free(names);
out:
    return err;
}

/* "S-1-" authority, then 1-15 sub-authorities, each decimal and within 32 bits. */
static bool sid_valid(const char *sid)
{
    size_t len = strlen(sid), pos = 4, fields = 0;

    if (len > SID_MAX || strncmp(sid, "S-1-", 4) != 0)
        return false;
    for (;;) {
        size_t start = pos;
        unsigned long long n = 0;
        while (is_digit(sid[pos]) && pos - start < 15)
            n = n * 10 + (unsigned long long)(sid[pos++] - '0');
        if (pos == start || (sid[pos] != '-' && sid[pos] != '\0'))
            return false;
        /* field 0 is the 48-bit identifier authority */
        if (fields == 0 ? n > 0xFFFFFFFFFFFFull : n > 0xFFFFFFFFull)
            return false;
        fields++;
        if (sid[pos] == '\0')
            break;
        pos++;
    }
    return fields >= 2 && fields - 1 <= SID_SUBAUTH_MAX;
}

bool pc_sid_extension_is(const X509_EXTENSION *ext)
{
    char oid[64];
    /* OpenSSL 3.0 declares the getter non-const; it only reads */
    OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object((X509_EXTENSION *)(uintptr_t)ext), 1);
    return strcmp(oid, PC_SID_EXTENSION_OID) == 0;
}

pc_err_t pc_sid_extension_new(const char *sid, X509_EXTENSION **out, pc_diag_t *diag)
{
    GENERAL_NAMES *names = NULL;
    GENERAL_NAME *gen = NULL;
    ASN1_OBJECT *ext_obj = NULL;
    ASN1_OCTET_STRING *der_str = NULL;
    unsigned char *der = NULL;
    pc_err_t err = PC_OK;
    int der_len;

    *out = NULL;
    if (sid == NULL || !sid_valid(sid)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "SID '%.*s' is not a security identifier of the form S-1-5-21-...",
                      sid ? pc_utf8_clip(sid, strlen(sid), QUOTE_MAX) : 0, sid ? sid : "");
        goto out;
    }
    /* Microsoft's encoding: GeneralNames { otherName { 1.3.6.1.4.1.311.25.2.1,
     * [0] EXPLICIT OCTET STRING "S-1-5-..." } } */
    if ((names = GENERAL_NAMES_new()) == NULL ||
        (gen = othername_new(OID_SID_OTHERNAME, V_ASN1_OCTET_STRING, sid, strlen(sid))) == NULL ||
        !sk_GENERAL_NAME_push(names, gen)) {
        GENERAL_NAME_free(gen);
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "could not build the SID extension");
        goto out_free_names;
    }
    if ((der_len = i2d_GENERAL_NAMES(names, &der)) <= 0 ||
        (der_str = ASN1_OCTET_STRING_new()) == NULL ||
        !ASN1_OCTET_STRING_set(der_str, der, der_len) ||
        (ext_obj = OBJ_txt2obj(PC_SID_EXTENSION_OID, 1)) == NULL ||
        (*out = X509_EXTENSION_create_by_OBJ(NULL, ext_obj, 0, der_str)) == NULL)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the SID extension");

    ASN1_OBJECT_free(ext_obj);
    ASN1_OCTET_STRING_free(der_str);
    OPENSSL_free(der);
out_free_names:
    GENERAL_NAMES_free(names);
out:
    return err;
}

/* The UPN otherName's type, to tell it from other otherNames. */
static bool is_upn(const GENERAL_NAME *gn)
{
    ASN1_OBJECT *upn = OBJ_txt2obj("1.3.6.1.4.1.311.20.2.3", 1);
    bool yes = upn != NULL && gn->type == GEN_OTHERNAME &&
               OBJ_cmp(gn->d.otherName->type_id, upn) == 0 &&
               gn->d.otherName->value->type == V_ASN1_UTF8STRING;
    ASN1_OBJECT_free(upn);
    return yes;
}

void pc_san_text(const X509 *cert, char *buf, size_t len)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    if (len > 0)
        buf[0] = '\0';
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && used < len; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const char *kind = NULL;
        const ASN1_STRING *value = NULL;
        if (gn->type == GEN_DNS) {
            kind = "DNS";
            value = gn->d.dNSName;
        } else if (gn->type == GEN_EMAIL) {
            kind = "email";
            value = gn->d.rfc822Name;
        } else if (gn->type == GEN_URI) {
            kind = "URI";
            value = gn->d.uniformResourceIdentifier;
        } else if (is_upn(gn)) {
            kind = "UPN";
            value = gn->d.otherName->value->value.utf8string;
        }
        if (kind == NULL)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s:%.*s", used > 0 ? ", " : "", kind,
                         ASN1_STRING_length(value), (const char *)ASN1_STRING_get0_data(value));
        used += w > 0 ? (size_t)w : 0;
    }
    GENERAL_NAMES_free(names);
}
