/*
 * lint_report.c - the record of one `pkcsctl lint-profile` run (lint_t): made and freed here,
 * its problems recorded as the checks find them (lint_names.c, lint_policy.c), and printed at
 * the end as the report - what a worker would issue, and every problem. Main thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "common.h"
#include "lint_int.h"
#include "request.h"
#include "subject.h"

#define CMD LINT_CMD
#define TEXT_MAX 2048

int pkcsctl_lint_init(lint_t *l)
{
    *l = (lint_t){.attrs = json_object(), .problems = json_array()};
    return l->attrs == NULL || l->problems == NULL ? -1 : 0;
}

void pkcsctl_lint_free(lint_t *l)
{
    GENERAL_NAMES_free(l->sans);
    X509_NAME_free(l->subject);
    pc_config_free(l->cfg);
    free(l->items);
    if (l->msg != NULL)
        protobuf_c_message_free_unpacked(l->msg, NULL);
    json_decref(l->problems);
    json_decref(l->attrs);
}

void pkcsctl_lint_problem(lint_t *l, bool error, const char *fmt, ...)
{
    char text[1024];
    size_t i;
    json_t *p;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_array_foreach(l->problems, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "text")), text) == 0)
            return;
    }
    /* Not checked as UTF-8: a problem may quote a sample value that is not (and says so). */
    bool stored = false;
    if ((p = json_object()) != NULL && json_object_set_new(p, "error", json_boolean(error)) == 0 &&
        json_object_set_new(p, "text", json_string_nocheck(text)) == 0) {
        stored = json_array_append_new(l->problems, p) == 0; /* takes p, even on failure */
        p = NULL;
    }
    json_decref(p);
    if (!stored) {
        fprintf(stderr, "pkcsctl %s: out of memory; a problem was not recorded: %s\n", CMD, text);
        l->errors++; /* never let a lost problem pass as a clean profile */
        return;
    }
    if (error)
        l->errors++;
    else
        l->warnings++;
}

static void subject_text(const lint_t *l, char *buf, size_t len)
{
    static const char stand_ins[] = " (with stand-ins for the unusable variables)";
    size_t room = l->subject_stand_ins ? len - sizeof(stand_ins) + 1 : len;
    if (l->subject == NULL || !pc_name_text(l->subject, buf, room))
        snprintf(buf, len, "(not rendered)");
    else if (l->subject_stand_ins)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s", stand_ins);
}

static void append(char *buf, size_t len, size_t *pos, const char *prefix, const void *s, int n)
{
    if (*pos >= len)
        return;
    int w =
        snprintf(buf + *pos, len - *pos, "%s%s%.*s", *pos ? ", " : "", prefix, n, (const char *)s);
    *pos += w > 0 ? (size_t)w : 0;
}

static void sans_text(const lint_t *l, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < sk_GENERAL_NAME_num(l->sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(l->sans, i);
        const ASN1_STRING *s = NULL;
        const char *prefix = g->type == GEN_EMAIL ? "email:"
                             : g->type == GEN_DNS ? "DNS:"
                             : g->type == GEN_URI ? "URI:"
                                                  : "UPN:";
        if (g->type == GEN_EMAIL || g->type == GEN_DNS || g->type == GEN_URI)
            s = g->d.ia5;
        else if (g->type == GEN_OTHERNAME && g->d.otherName->value->type == V_ASN1_UTF8STRING)
            s = g->d.otherName->value->value.utf8string;
        if (s != NULL)
            append(buf, len, &pos, prefix, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
    }
    if (pos == 0)
        snprintf(buf, len, "%s", l->sans_complete ? "none" : "(not rendered)");
    else if (!l->sans_complete && pos < len)
        snprintf(buf + pos, len - pos, "%s", " (some not rendered)");
}

static void usages_text(const lint_t *l, char *ku, size_t ku_len, char *eku, size_t eku_len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"},
                 {KU_NON_REPUDIATION, "nonRepudiation"},
                 {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
                 {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
                 {KU_KEY_AGREEMENT, "keyAgreement"}};
    size_t pos = 0;
    ku[0] = eku[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (l->key_usage & names[i].bit)
            append(ku, ku_len, &pos, "", names[i].name, (int)strlen(names[i].name));
    pos = 0;
    for (size_t i = 0; i < l->profile->n_extended_key_usages; i++) {
        const char *e = l->profile->extended_key_usages[i];
        append(eku, eku_len, &pos, "", e, (int)strlen(e));
    }
    if (eku[0] == '\0')
        snprintf(eku, eku_len, "none");
}

void pkcsctl_lint_report(const lint_t *l, const char *path)
{
    const Pkcs__V1__Profile *p = l->profile;
    char subject[TEXT_MAX], sans[TEXT_MAX], ku[256], eku[TEXT_MAX], key[32], max[64];
    size_t i;
    json_t *pr;
    subject_text(l, subject, sizeof(subject));
    sans_text(l, sans, sizeof(sans));
    usages_text(l, ku, sizeof(ku), eku, sizeof(eku));
    snprintf(key, sizeof(key), "%s", l->key_ok ? "" : "(invalid)");
    if (l->key_ok)
        pc_key_spec_name(&l->key_spec, key, sizeof(key));
    max[0] = '\0';
    if (l->tmpl != NULL)
        snprintf(max, sizeof(max), " (template maximum %u)", l->tmpl->max_validity_days);
    printf("profile:  %s: %s certificate, CA %s, template %s\n",
           p->profile_id[0] ? p->profile_id : path,
           p->certificate_type == PKCS__V1__CERTIFICATE_TYPE__DEVICE ? "DEVICE"
           : p->certificate_type == PKCS__V1__CERTIFICATE_TYPE__USER ? "USER"
                                                                     : "(no type)",
           p->ca_name[0] ? p->ca_name : "-", p->template_name[0] ? p->template_name : "-");
    printf("subject:  %s\nSANs:     %s\n", subject, sans);
    printf("key:      %s; key usages: %s\nEKUs:     %s\n", key, ku, eku);
    printf("validity: %u days%s\n\n", pc_profile_validity_days(p), max);
    if (l->errors == 0)
        printf("would issue: subject %s, SANs %s, key %s, EKUs %s, valid %u days\n", subject, sans,
               key, eku, pc_profile_validity_days(p));
    else
        printf("would not issue: %zu error%s, %zu warning%s\n", l->errors,
               l->errors == 1 ? "" : "s", l->warnings, l->warnings == 1 ? "" : "s");
    json_array_foreach(l->problems, i, pr)
    {
        printf("%s: %s\n", json_is_true(json_object_get(pr, "error")) ? "error" : "warning",
               json_string_value(json_object_get(pr, "text")));
    }
}
