/*
 * pkcsctl lint-profile: the names part - every {{variable}} of the subject and SAN formats
 * (all problems, not only the first, which is all a failing request can report), then the
 * subject and SANs rendered with the sample values by the engine's own code (pc_subject_render,
 * pc_san_render), and the X.520 length of each subject value. Main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>

#include "lint_int.h"
#include "pc_err.h"
#include "request.h"
#include "san.h"
#include "subject.h"
#include "text.h"

#define QUOTE_MAX 40

/* Upper bounds of RFC 5280 appendix A (ub-*), in characters, as pc_subject_render applies
 * them; listed here to name every over-long value, where the renderer stops at the first. */
static const struct {
    int nid;
    size_t max_chars;
} bounds[] = {
    {NID_commonName, 64},           {NID_organizationalUnitName, 64},
    {NID_organizationName, 64},     {NID_localityName, 128},
    {NID_stateOrProvinceName, 128}, {NID_pkcs9_emailAddress, 255},
    {NID_serialNumber, 64},         {NID_title, 64},
    {NID_streetAddress, 128},       {NID_postalCode, 40},
    {NID_givenName, 32768},         {NID_surname, 32768},
};

static const char *type_name(pc_cert_type_t type)
{
    return type == PC_CERT_DEVICE ? "DEVICE" : "USER";
}

/* check_ref judges one variable name: known, allowed for the type, with a sample value.
 * Returns whether the format can be rendered as far as this variable goes. */
static bool check_ref(lint_t *l, const char *name, size_t len, const char *where)
{
    bool other = false;
    int n = len > 64 ? 64 : (int)len;
    if (!pc_vars_allowed(name, len, l->type, &other)) {
        if (other)
            pkcsctl_lint_problem(l, true,
                                 "{{%.*s}} in %s is a user variable; %s certificates may "
                                 "use device variables only",
                                 n, name, where, type_name(l->type));
        else
            pkcsctl_lint_problem(l, true,
                                 "unknown variable {{%.*s}} in %s; see 'pkcsctl "
                                 "lint-profile --help' for the variables",
                                 n, name, where);
        return false;
    }
    if (pc_vars_lookup(&l->vars, name, len) == NULL) {
        pkcsctl_lint_problem(l, false,
                             "no sample value for {{%.*s}} (used in %s); a request without "
                             "this attribute fails",
                             n, name, where);
        return false;
    }
    return true;
}

/* stand_in writes a stand-in value for an unusable variable at *w: its name, letters, digits
 * and '-' only (safe anywhere in a format, quoted or not, and a PrintableString, which
 * SERIALNUMBER and C must be: "Device_Serial" stands in as "DeviceSerial"), at most 32. */
static void stand_in(const char *name, const char *end, char **w)
{
    size_t n = 0;
    for (; name < end && n < 32; name++)
        if ((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
            (*name >= '0' && *name <= '9') || *name == '-')
            (*w)[n++] = *name;
    if (n == 0)
        (*w)[n++] = 'x';
    *w += n;
}

/* check_refs checks every {{variable}} of format; true when all are usable. With out, it also
 * makes *out (malloc'd; NULL when out of memory): format with a stand-in for each unusable
 * reference, so that the rest can still be rendered and checked. Unbalanced braces and empty
 * names are left to the renderer, which names them. */
static bool check_refs(lint_t *l, const char *format, const char *where, char **out)
{
    bool clean = true;
    const char *p = format, *ref;
    char *copy = out != NULL ? malloc(strlen(format) + 1) : NULL, *w = copy;
    while ((ref = strstr(p, "{{")) != NULL) {
        const char *name = ref + 2, *close = strstr(name, "}}");
        if (close == NULL)
            break;
        const char *end = close;
        while (name < end && (*name == ' ' || *name == '\t'))
            name++;
        while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        bool usable = end == name || check_ref(l, name, (size_t)(end - name), where);
        clean = clean && usable;
        if (copy != NULL) {
            /* A stand-in is never longer than the reference it replaces: copy has room. */
            memcpy(w, p, (size_t)(ref - p));
            w += ref - p;
            if (usable) {
                memcpy(w, ref, (size_t)(close + 2 - ref));
                w += close + 2 - ref;
            } else {
                stand_in(name, end, &w);
            }
        }
        p = close + 2;
    }
    if (copy != NULL)
        memcpy(w, p, strlen(p) + 1);
    if (out != NULL)
        *out = copy;
    return clean;
}

static size_t bound_of(int nid)
{
    for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
        if (bounds[i].nid == nid)
            return bounds[i].max_chars;
    return 0;
}

/* check_lengths names every subject value over its X.520 bound; returns how many. */
static size_t check_lengths(lint_t *l, const X509_NAME *name)
{
    size_t found = 0;
    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        size_t max = bound_of(nid);
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (max == 0 || len < 0) {
            OPENSSL_free(utf8);
            continue;
        }
        size_t chars = pc_utf8_chars((const char *)utf8, (size_t)len);
        /* the quote never cuts a character in two */
        int quote = pc_utf8_clip((const char *)utf8, (size_t)len, QUOTE_MAX);
        if (chars > max) {
            found++;
            pkcsctl_lint_problem(l, true,
                                 "subject %s value \"%.*s...\" is %zu characters, over the "
                                 "X.520 limit of %zu; shorten it, or set allowLongValues in "
                                 "the profile",
                                 OBJ_nid2sn(nid), quote, (const char *)utf8, chars, max);
        }
        OPENSSL_free(utf8);
    }
    return found;
}

/* unprefixed drops the renderer's own "subject: ", which the callers put in front. */
static const char *unprefixed(const char *msg)
{
    return strncmp(msg, "subject: ", 9) == 0 ? msg + 9 : msg;
}

static void render_subject(lint_t *l)
{
    const Pkcs__V1__Profile *p = l->profile;
    pc_diag_t diag = {{0}};
    X509_NAME *strict = NULL;
    char *format = NULL;
    bool clean = check_refs(l, p->subject_format, "the subject", &format);
    if (format == NULL) {
        pkcsctl_lint_problem(l, true, "out of memory");
        return;
    }
    /* Rendered without the length limits, so that the name can be shown and every over-long
     * value named; the limits are then applied exactly as the worker applies them. */
    pc_err_t err = pc_subject_render(format, l->type, &l->vars, true, &l->subject, &diag);
    if (err != PC_OK) {
        pkcsctl_lint_problem(l, true, "subject%s: %s",
                             clean ? "" : " (with stand-ins for the unusable variables)",
                             unprefixed(diag.msg));
        goto out_free_format;
    }
    l->subject_stand_ins = !clean;
    if (p->allow_long_values || check_lengths(l, l->subject) > 0 || !clean)
        goto out_free_format;
    err = pc_subject_render(format, l->type, &l->vars, false, &strict, &diag);
    if (err != PC_OK)
        pkcsctl_lint_problem(l, true, "subject: %s", unprefixed(diag.msg));
    X509_NAME_free(strict);
out_free_format:
    free(format);
}

/* render_san renders SAN i (numbered from 1 in messages) and adds it to l->sans. */
static void render_san(lint_t *l, size_t i)
{
    Pkcs__V1__Profile one = *l->profile;
    pc_san_format_t *format = NULL;
    GENERAL_NAMES *names = NULL;
    pc_diag_t diag = {{0}};
    char where[32];
    snprintf(where, sizeof(where), "SAN %zu", i + 1);
    one.n_subject_alternative_names = 1;
    one.subject_alternative_names = &l->profile->subject_alternative_names[i];
    pc_err_t err = pc_profile_san_formats(&one, &format, &diag);
    bool ok = check_refs(l, l->profile->subject_alternative_names[i]->format, where, NULL);
    if (err != PC_OK) {
        pkcsctl_lint_problem(l, true, "%s", diag.msg);
        ok = false;
    }
    if (ok && (err = pc_san_render(format, 1, l->type, &l->vars, &names, &diag)) != PC_OK) {
        pkcsctl_lint_problem(l, true, "%s: %s", where, diag.msg);
        ok = false;
    }
    while (ok && sk_GENERAL_NAME_num(names) > 0) {
        GENERAL_NAME *gen = sk_GENERAL_NAME_shift(names);
        if (sk_GENERAL_NAME_push(l->sans, gen) <= 0)
            GENERAL_NAME_free(gen);
    }
    l->sans_complete = l->sans_complete && ok;
    GENERAL_NAMES_free(names);
    free(format);
}

void pkcsctl_lint_names(lint_t *l)
{
    render_subject(l);
    l->sans_complete = true;
    if ((l->sans = GENERAL_NAMES_new()) == NULL) {
        pkcsctl_lint_problem(l, true, "out of memory");
        return;
    }
    if (l->profile->n_subject_alternative_names > PC_MAX_SANS)
        return; /* the request limits (pkcsctl_lint_policy, lint_policy.c) say so */
    for (size_t i = 0; i < l->profile->n_subject_alternative_names; i++)
        render_san(l, i);
}
