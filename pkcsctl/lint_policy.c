/*
 * pkcsctl lint-profile: the policy part - the request limits a worker enforces, the CA and
 * template of the configuration, the key, key usages and EKUs, the template's name policy
 * (each SAN and CN through the CA's own name_policy.h), and the template's policy. The
 * policy is the CA's own code (pc_ca_template_check) run on throwaway CSRs built the way the
 * worker builds them (pc_csr_new with a throwaway key): one for the key, validity and subject,
 * and one per EKU and one for the key usages against the template with its key and validity
 * rules relaxed, so that one broken rule does not hide the others. Main thread only.
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "csr.h"
#include "lint_int.h"
#include "pc_err.h"
#include "request.h"

/* check_request runs the worker's own request validation on an ISSUE request made of the
 * profile: caName and templateName present, validity and renewal threshold in range, counts of
 * SANs and EKUs, format sizes. */
static void check_request(lint_t *l)
{
    static char lint_id[] = "lint-profile";
    static unsigned char stand_in_key[1]; /* the device key is not the profile's business */
    Pkcs__V1__Request req;
    Pkcs__V1__IssueRequest issue;
    pc_diag_t diag = {{0}};
    pkcs__v1__request__init(&req);
    pkcs__v1__issue_request__init(&issue);
    issue.profile = l->profile;
    issue.device_public_key.data = stand_in_key;
    issue.device_public_key.len = sizeof(stand_in_key);
    req.schema_version = PC_SCHEMA_VERSION;
    req.request_id = lint_id;
    req.tenant_id = lint_id;
    req.kind = PKCS__V1__KIND__ISSUE;
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &issue;
    if (pc_request_validate(&req, pc_now_ms(), &diag) != PC_OK)
        pkcsctl_lint_problem(l, true, "%s", diag.msg);
}

/* ca_names and template_names list the configured names as "a, b, c" into buf. */
static const char *ca_names(const pc_config_t *cfg, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->ca_count && pos < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", cfg->cas[i].name);
        pos += w > 0 ? (size_t)w : 0;
    }
    return buf[0] ? buf : "none";
}

static const char *template_names(const pc_config_ca_t *ca, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ca->template_count && pos < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", ca->templates[i]->name);
        pos += w > 0 ? (size_t)w : 0;
    }
    return buf[0] ? buf : "none";
}

/* find_template sets l->tmpl to the profile's template in the configuration. */
static void find_template(lint_t *l)
{
    const Pkcs__V1__Profile *p = l->profile;
    const pc_config_ca_t *found = NULL;
    char names[512];
    if (p->ca_name[0] == '\0' || p->template_name[0] == '\0')
        return; /* check_request says so */
    for (size_t i = 0; i < l->cfg->ca_count && found == NULL; i++)
        if (strcmp(l->cfg->cas[i].name, p->ca_name) == 0)
            found = &l->cfg->cas[i];
    if (found == NULL) {
        pkcsctl_lint_problem(l, true,
                             "CA \"%s\" is not configured (configured: %s); fix caName, or give "
                             "--config the workers' configuration",
                             p->ca_name, ca_names(l->cfg, names, sizeof(names)));
        return;
    }
    /* A view of the configured CA, enough for the shared template lookup. */
    pc_ca_t view = {.ops = NULL,
                    .name = found->name,
                    .templates = found->templates,
                    .template_count = found->template_count};
    if ((l->tmpl = pc_ca_find_template(&view, p->template_name)) == NULL)
        pkcsctl_lint_problem(l, true,
                             "CA \"%s\" has no template \"%s\" (its templates: %s); fix "
                             "templateName (names are case-sensitive)",
                             p->ca_name, p->template_name,
                             template_names(found, names, sizeof(names)));
}

static void check_key(lint_t *l)
{
    pc_diag_t diag = {{0}};
    l->key_ok = pc_profile_key_spec(l->profile, &l->key_spec, &diag) == PC_OK;
    if (!l->key_ok)
        pkcsctl_lint_problem(l, true, "key: %s", diag.msg);
}

/* check_key_usages names every unknown key usage and sets l->key_usage as the worker would. */
static void check_key_usages(lint_t *l)
{
    const Pkcs__V1__Profile *p = l->profile;
    Pkcs__V1__Profile one = *p;
    pc_key_spec_t spec = {p->key_algorithm == PKCS__V1__KEY_ALGORITHM__EC ? PC_KEY_EC : PC_KEY_RSA,
                          0};
    pc_diag_t diag = {{0}};
    unsigned bits = 0, all = 0;
    one.n_key_usages = 1;
    for (size_t i = 0; i < p->n_key_usages; i++) {
        one.key_usages = &p->key_usages[i];
        if (pc_profile_key_usage(&one, &spec, &bits, &diag) != PC_OK)
            pkcsctl_lint_problem(l, true, "key usages: %s", diag.msg);
        else
            all |= bits;
    }
    one.n_key_usages = 0;
    if (all == 0 && pc_profile_key_usage(&one, &spec, &bits, &diag) == PC_OK)
        all = bits; /* none asked for (or none valid): the default for the key */
    l->key_usage = all;
}

/* csr_new builds a CSR like the worker's; NULL after recording why (what names the CSR). */
static X509_REQ *csr_new(lint_t *l, EVP_PKEY *key, const pc_csr_params_t *params, const char *what)
{
    X509_REQ *csr = NULL;
    pc_diag_t diag = {{0}};
    if (pc_csr_new(key, params, &csr, &diag) != PC_OK)
        pkcsctl_lint_problem(l, true, "%s: %s", what, diag.msg);
    return csr;
}

static void template_check(lint_t *l, const pc_ca_template_t *tmpl, X509_REQ *csr,
                           unsigned validity_days)
{
    pc_diag_t diag = {{0}};
    if (csr != NULL && tmpl != NULL &&
        pc_ca_template_check(tmpl, csr, validity_days, &diag) != PC_OK)
        pkcsctl_lint_problem(l, true, "%s", diag.msg);
    X509_REQ_free(csr);
}

/* Which of a template's rules a check keeps; the others are relaxed so that it cannot fail on
 * them (each rule is judged by one check only, and one broken rule hides no other). The name
 * policy is judged name by name in check_names, so every CSR check relaxes it. */
enum { KEEP_KEY = 1, KEEP_VALIDITY = 2, KEEP_SUBJECT = 4 };

static pc_ca_template_t relaxed(const pc_ca_template_t *tmpl, unsigned validity_days, unsigned keep)
{
    pc_ca_template_t t = *tmpl; /* shallow: the EKU list stays the template's */
    if (!(keep & KEEP_KEY))
        t.min_rsa_bits = t.min_ec_bits = 1;
    if (!(keep & KEEP_VALIDITY))
        t.max_validity_days = validity_days;
    if (!(keep & KEEP_SUBJECT))
        t.subject_from_request = true;
    t.names = (pc_name_policy_t){.allow_wildcards = true}; /* allows every name */
    return t;
}

/* check_names: each rendered SAN, and the subject's CNs, against the template's name policy,
 * with the functions the CA's own check uses (pc_ca_template_check), so that every name that
 * breaks a rule is named, not only the first. */
static void check_names(lint_t *l)
{
    pc_diag_t diag = {{0}};
    if (l->tmpl == NULL)
        return;
    for (int i = 0; l->sans != NULL && i < sk_GENERAL_NAME_num(l->sans); i++)
        if (pc_name_policy_check_san(&l->tmpl->names, l->tmpl->name,
                                     sk_GENERAL_NAME_value(l->sans, i), &diag) != PC_OK)
            pkcsctl_lint_problem(l, true, "%s", diag.msg);
    if (l->subject != NULL && !l->subject_stand_ins &&
        pc_name_policy_check_subject(&l->tmpl->names, l->tmpl->name, l->subject, &diag) != PC_OK)
        pkcsctl_lint_problem(l, true, "%s", diag.msg);
}

/* check_main: key size, validity and subject against the template, each on its own, with a CSR
 * holding the real subject and SANs (a stand-in CN when the subject could not be rendered). */
static void check_main(lint_t *l, EVP_PKEY *key, X509_NAME *stand_in)
{
    unsigned days = pc_profile_validity_days(l->profile);
    pc_csr_params_t params = {.subject = l->subject, .sans = l->sans};
    if (l->subject == NULL) {
        if (l->profile->subject_format[0] != '\0')
            X509_NAME_add_entry_by_txt(stand_in, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)"lint-profile", -1, -1, 0);
        params.subject = stand_in;
    }
    X509_REQ *csr = csr_new(l, key, &params, "CSR");
    if (l->tmpl != NULL && csr != NULL) {
        pc_ca_template_t t;
        if (l->key_ok) { /* else the throwaway key is a stand-in: its size proves nothing */
            t = relaxed(l->tmpl, days, KEEP_KEY);
            template_check(l, &t, X509_REQ_dup(csr), days);
        }
        t = relaxed(l->tmpl, days, KEEP_VALIDITY);
        template_check(l, &t, X509_REQ_dup(csr), days);
        t = relaxed(l->tmpl, days, KEEP_SUBJECT);
        template_check(l, &t, X509_REQ_dup(csr), days);
    }
    X509_REQ_free(csr);
}

/* check_usages: each EKU and the key usages alone against the template's lists. */
static void check_usages(lint_t *l, EVP_PKEY *key, const X509_NAME *empty)
{
    const Pkcs__V1__Profile *p = l->profile;
    pc_ca_template_t t = {.name = NULL};
    char what[160];
    if (l->tmpl != NULL)
        t = relaxed(l->tmpl, 1, 0);
    for (size_t i = 0; i < p->n_extended_key_usages; i++) {
        pc_csr_params_t params = {.subject = empty,
                                  .ekus = (const char *const *)&p->extended_key_usages[i],
                                  .eku_count = 1};
        snprintf(what, sizeof(what), "EKU \"%.100s\"", p->extended_key_usages[i]);
        template_check(l, l->tmpl ? &t : NULL, csr_new(l, key, &params, what), 1);
    }
    pc_csr_params_t params = {.subject = empty, .key_usage = l->key_usage};
    template_check(l, l->tmpl ? &t : NULL, csr_new(l, key, &params, "key usages"), 1);
}

void pkcsctl_lint_policy(lint_t *l)
{
    pc_key_spec_t stand_in = {PC_KEY_EC, 256};
    X509_NAME *empty = X509_NAME_new(), *placeholder = X509_NAME_new();
    EVP_PKEY *key = NULL;
    pc_diag_t diag = {{0}};
    check_request(l);
    find_template(l);
    check_key(l);
    check_key_usages(l);
    if (empty == NULL || placeholder == NULL) {
        pkcsctl_lint_problem(l, true, "out of memory");
        goto out_free_names;
    }
    if (pc_key_generate(l->key_ok ? &l->key_spec : &stand_in, l->cfg->keygen_mode, &key, &diag) !=
        PC_OK) {
        pkcsctl_lint_problem(l, true, "cannot make a throwaway key to check the policy: %s",
                             diag.msg);
        goto out_free_names;
    }
    check_main(l, key, placeholder);
    check_names(l);
    check_usages(l, key, empty);
    EVP_PKEY_free(key);
out_free_names:
    X509_NAME_free(placeholder);
    X509_NAME_free(empty);
}
