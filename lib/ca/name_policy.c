/*
 * name_policy.c - a template's rules for the names in a certificate (name_policy.h): SAN types,
 * DNS domains, wildcards, e-mail domains, UPN suffixes, and CNs that are host names. The
 * syntax of each name is san.c's (pc_san_problem), so a name the renderer would refuse is
 * refused here too, whoever built the CSR. Pure functions on read-only data; any thread.
 */
#include "name_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/objects.h>

#include "san.h"
#include "text.h"

#define QUOTE_MAX 64  /* bytes of a name quoted in a message */
#define LIST_TEXT 200 /* bytes of a domain list in a message */

/* The SAN types by configured name, and how messages call them. */
static const struct {
    const char *name;
    unsigned bit;
} san_types[] = {
    {"UPN", PC_NAME_SAN_UPN}, {"email", PC_NAME_SAN_EMAIL}, {"DNS", PC_NAME_SAN_DNS},
    {"URI", PC_NAME_SAN_URI}, {"IP", PC_NAME_SAN_IP},
};

/* One name out of a certificate request, classified. */
typedef struct name {
    unsigned bit;
    const char *type; /* "DNS", "email", ..., or the GeneralName's kind for other names */
    const char *value;
    size_t len;
} name_t;

/* quote copies s for a message: at most QUOTE_MAX bytes, never half a UTF-8 character,
 * control characters (and invalid UTF-8) as '?'. */
static const char *quote(const char *s, size_t len, char *out, size_t size)
{
    size_t n = 0, whole = len, bad = len;

    if (!pc_utf8_valid(s, len, &bad))
        len = bad;
    len = (size_t)pc_utf8_clip(s, len, QUOTE_MAX < size - 4 ? QUOTE_MAX : size - 4);
    for (; n < len; n++)
        out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
    if (len < whole) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static void list_text(char *const *list, size_t count, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < count && pos < size; i++) {
        int w = snprintf(buf + pos, size - pos, "%s%s", i > 0 ? ", " : "", list[i]);
        pos += w > 0 ? (size_t)w : 0;
    }
}

static void types_text(unsigned bits, char *buf, size_t size)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(san_types) / sizeof(san_types[0]) && pos < size; i++) {
        if ((bits & san_types[i].bit) == 0)
            continue;
        int w = snprintf(buf + pos, size - pos, "%s%s", pos > 0 ? ", " : "", san_types[i].name);
        pos += w > 0 ? (size_t)w : 0;
    }
}

pc_err_t pc_name_policy_san_type(const char *name, unsigned *bit, pc_diag_t *diag)
{
    for (size_t i = 0; name != NULL && i < sizeof(san_types) / sizeof(san_types[0]); i++)
        if (strcasecmp(name, san_types[i].name) == 0) {
            *bit = san_types[i].bit;
            return PC_OK;
        }
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "unknown SAN type \"%.40s\"; use UPN, email, DNS, URI or IP",
                   name != NULL ? name : "");
}

pc_err_t pc_name_policy_add_domain(char ***list, size_t *count, const char *domain,
                                   const char *what, pc_diag_t *diag)
{
    char why[PC_SAN_PROBLEM_MAX], q[QUOTE_MAX + 4];
    size_t len = domain != NULL ? strlen(domain) : 0;
    const char *problem =
        domain != NULL && (domain[0] == '*' || domain[0] == '.')
            ? "a wildcard or leading dot; list the domain itself and set "
              "allow_subdomains to allow the names under it"
            : pc_san_problem(PC_SAN_DNS, domain != NULL ? domain : "", len, why, sizeof(why));

    if (problem != NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: \"%s\" is not a domain name: %s", what,
                       quote(domain != NULL ? domain : "", len, q, sizeof(q)), problem);
    char **grown = realloc(*list, (*count + 1) * sizeof(*grown));
    if (grown == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    *list = grown;
    if ((grown[*count] = strdup(domain)) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (char *p = grown[*count]; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    (*count)++;
    return PC_OK;
}

/* ---- domains ------------------------------------------------------------------------------ */

typedef enum { MATCH_NONE, MATCH_EXACT, MATCH_UNDER } match_t;

/* match_domain: name is domain itself, or under it (a whole-label suffix), any case. */
static match_t match_domain(const char *name, size_t len, const char *domain)
{
    size_t dlen = strlen(domain);

    if (len == dlen && strncasecmp(name, domain, len) == 0)
        return MATCH_EXACT;
    if (len > dlen && name[len - dlen - 1] == '.' &&
        strncasecmp(name + len - dlen, domain, dlen) == 0)
        return MATCH_UNDER;
    return MATCH_NONE;
}

/* check_domain applies a domain list to the domain part of a name (what: "DNS SAN", "email
 * SAN", ...; shown: the whole name for messages; under: the name stands for names under
 * domain, as a wildcard does). */
static pc_err_t check_domain(const pc_name_policy_t *p, const char *tmpl, char *const *list,
                             size_t count, const char *setting, const char *what, const char *shown,
                             const char *domain, size_t len, bool under, pc_diag_t *diag)
{
    match_t best = MATCH_NONE;
    const char *matched = NULL;
    char names[LIST_TEXT];

    if (count == 0)
        return PC_OK;
    for (size_t i = 0; i < count && best != MATCH_EXACT; i++) {
        match_t m = match_domain(domain, len, list[i]);
        if (m != MATCH_NONE && (best == MATCH_NONE || m == MATCH_EXACT)) {
            best = m;
            matched = list[i];
        }
    }
    if (best == MATCH_EXACT && under)
        best = MATCH_UNDER;
    if (best == MATCH_EXACT || (best == MATCH_UNDER && p->allow_subdomains))
        return PC_OK;
    if (best == MATCH_UNDER)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" does not allow %s \"%s\": it is under %s, and the "
                       "template allows only the %s themselves; set allow_subdomains in the "
                       "template to allow names under them",
                       tmpl, what, shown, matched, setting);
    list_text(list, count, names, sizeof(names));
    return pc_fail(diag, PC_ERR_POLICY,
                   "template \"%s\" does not allow %s \"%s\": it is in none of its %s (%s)", tmpl,
                   what, shown, setting, names);
}

/* check_dns holds one DNS name (a SAN, or a CN used as one) to the syntax, wildcard and domain
 * rules. */
static pc_err_t check_dns(const pc_name_policy_t *p, const char *tmpl, const char *what,
                          const char *s, size_t len, pc_diag_t *diag)
{
    char why[PC_SAN_PROBLEM_MAX], q[QUOTE_MAX + 4];
    const char *problem = pc_san_problem(PC_SAN_DNS, s, len, why, sizeof(why));
    bool wildcard = len > 2 && s[0] == '*' && s[1] == '.';

    quote(s, len, q, sizeof(q));
    if (problem == NULL && memchr(s, '\0', len) != NULL)
        problem = "it holds a NUL byte";
    if (problem != NULL)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" refuses %s \"%s\": it is not a valid "
                       "DNS name: %s",
                       tmpl, what, q, problem);
    if (wildcard && !p->allow_wildcards)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" does not allow the wildcard %s \"%s\"; ask for host "
                       "names, or set allow_wildcards in the template",
                       tmpl, what, q);
    if (wildcard && memchr(s + 2, '.', len - 2) == NULL)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" refuses the wildcard %s \"%s\": a wildcard must stand "
                       "over at least two labels (*.example.com)",
                       tmpl, what, q);
    if (wildcard)
        return check_domain(p, tmpl, p->dns_domains, p->dns_domain_count, "DNS domains", what, q,
                            s + 2, len - 2, true, diag);
    return check_domain(p, tmpl, p->dns_domains, p->dns_domain_count, "DNS domains", what, q, s,
                        len, false, diag);
}

/* ---- SANs --------------------------------------------------------------------------------- */

static const char *kind_name(int kind)
{
    switch (kind) {
    case GEN_OTHERNAME:
        return "otherName";
    case GEN_X400:
        return "x400Address";
    case GEN_DIRNAME:
        return "directoryName";
    case GEN_EDIPARTY:
        return "ediPartyName";
    case GEN_RID:
        return "registeredID";
    default:
        return "unknown";
    }
}

/* classify finds a SAN's type and, for the string types, its bytes. */
static void classify(const GENERAL_NAME *gen, name_t *n)
{
    int kind = 0;
    const void *value = GENERAL_NAME_get0_value(gen, &kind);
    const ASN1_STRING *str = NULL;
    ASN1_OBJECT *upn = OBJ_nid2obj(NID_ms_upn);

    n->bit = PC_NAME_SAN_OTHER;
    n->type = kind_name(kind);
    n->value = "";
    n->len = 0;
    switch (kind) {
    case GEN_EMAIL:
    case GEN_DNS:
    case GEN_URI:
        str = value;
        n->bit = kind == GEN_EMAIL ? PC_NAME_SAN_EMAIL
                 : kind == GEN_DNS ? PC_NAME_SAN_DNS
                                   : PC_NAME_SAN_URI;
        n->type = kind == GEN_EMAIL ? "email" : kind == GEN_DNS ? "DNS" : "URI";
        break;
    case GEN_IPADD:
        n->bit = PC_NAME_SAN_IP;
        n->type = "IP";
        return;
    case GEN_OTHERNAME: {
        const OTHERNAME *other = value;
        if (upn == NULL || OBJ_cmp(other->type_id, upn) != 0)
            return;
        n->bit = PC_NAME_SAN_UPN;
        n->type = "UPN";
        if (other->value != NULL && other->value->type == V_ASN1_UTF8STRING)
            str = other->value->value.utf8string;
        break;
    }
    default:
        return;
    }
    if (str != NULL) {
        n->value = (const char *)ASN1_STRING_get0_data(str);
        n->len = (size_t)ASN1_STRING_length(str);
    }
}

/* check_syntax refuses a string SAN pc_san_problem finds unfit (the renderer's rules). */
static pc_err_t check_syntax(const char *tmpl, const name_t *n, pc_san_type_t type, pc_diag_t *diag)
{
    char why[PC_SAN_PROBLEM_MAX], q[QUOTE_MAX + 4];
    const char *problem = pc_san_problem(type, n->value, n->len, why, sizeof(why));

    if (problem == NULL && memchr(n->value, '\0', n->len) != NULL)
        problem = "it holds a NUL byte";
    if (problem == NULL && n->len == 0)
        problem = "it is empty";
    if (problem == NULL)
        return PC_OK;
    return pc_fail(diag, PC_ERR_POLICY, "template \"%s\" refuses %s SAN \"%s\": %s", tmpl, n->type,
                   quote(n->value, n->len, q, sizeof(q)), problem);
}

/* check_after_at applies a domain list to the part after the last '@' of an e-mail or UPN. */
static pc_err_t check_after_at(const pc_name_policy_t *p, const char *tmpl, const name_t *n,
                               char *const *list, size_t count, const char *setting,
                               pc_diag_t *diag)
{
    char q[QUOTE_MAX + 4], what[32];
    const char *at = NULL;

    if (count == 0)
        return PC_OK;
    for (size_t i = 0; i < n->len; i++)
        if (n->value[i] == '@')
            at = n->value + i;
    quote(n->value, n->len, q, sizeof(q));
    snprintf(what, sizeof(what), "%s SAN", n->type);
    if (at == NULL)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" does not allow %s \"%s\": it has no '@' and so none of "
                       "the template's %s",
                       tmpl, what, q, setting);
    return check_domain(p, tmpl, list, count, setting, what, q, at + 1,
                        n->len - (size_t)(at + 1 - n->value), false, diag);
}

pc_err_t pc_name_policy_check_san(const pc_name_policy_t *p, const char *tmpl,
                                  const GENERAL_NAME *san, pc_diag_t *diag)
{
    name_t n;
    char allowed[64], q[QUOTE_MAX + 4];
    pc_err_t err;

    classify(san, &n);
    if (p->san_types != 0 && (p->san_types & n.bit) == 0) {
        types_text(p->san_types, allowed, sizeof(allowed));
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" does not allow %s SANs (\"%s\"); allowed SAN types: %s",
                       tmpl, n.type, n.len > 0 ? quote(n.value, n.len, q, sizeof(q)) : "...",
                       allowed);
    }
    switch (n.bit) {
    case PC_NAME_SAN_DNS:
        return check_dns(p, tmpl, "DNS SAN", n.value, n.len, diag);
    case PC_NAME_SAN_EMAIL:
        if ((err = check_syntax(tmpl, &n, PC_SAN_EMAIL, diag)) != PC_OK)
            return err;
        return check_after_at(p, tmpl, &n, p->email_domains, p->email_domain_count,
                              "e-mail domains", diag);
    case PC_NAME_SAN_UPN:
        if ((err = check_syntax(tmpl, &n, PC_SAN_UPN, diag)) != PC_OK)
            return err;
        return check_after_at(p, tmpl, &n, p->upn_suffixes, p->upn_suffix_count, "UPN suffixes",
                              diag);
    case PC_NAME_SAN_URI:
        return check_syntax(tmpl, &n, PC_SAN_URI, diag);
    default:
        return PC_OK;
    }
}

pc_err_t pc_name_policy_check_subject(const pc_name_policy_t *p, const char *tmpl,
                                      const X509_NAME *subject, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;

    if (!p->cn_is_dns_name)
        return PC_OK;
    for (int i = 0; i < X509_NAME_entry_count(subject) && err == PC_OK; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
        unsigned char *utf8 = NULL;
        int len;
        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName)
            continue;
        if ((len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
            return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the subject has an unreadable CN");
        err = check_dns(p, tmpl, "subject CN", (const char *)utf8, (size_t)len, diag);
        OPENSSL_free(utf8);
    }
    return err;
}

static void free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

void pc_name_policy_clear(pc_name_policy_t *p)
{
    free_list(p->dns_domains, p->dns_domain_count);
    free_list(p->email_domains, p->email_domain_count);
    free_list(p->upn_suffixes, p->upn_suffix_count);
    memset(p, 0, sizeof(*p));
}
