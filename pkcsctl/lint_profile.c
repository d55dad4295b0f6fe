/*
 * pkcsctl lint-profile: checks a certificate profile before it is deployed, without sending
 * anything - variables, the rendered subject and SANs with sample values, lengths, key, usages
 * and the CA template's policy - and says what a worker would issue and every problem it sees.
 * This file reads the inputs and prints the report; the checks live in pkcsctl_lint_names.c and
 * pkcsctl_lint_policy.c. Main thread only.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "file.h"
#include "pbjson.h"
#include "common.h"
#include "lint_int.h"
#include "request.h"

#define CMD LINT_CMD
#define INPUT_MAX_BYTES (1024 * 1024)
#define TEXT_MAX 2048

static void help(void)
{
    printf("usage: pkcsctl lint-profile --profile PROFILE.json [--attributes ATTRS.json | --csv "
           "FILE]\n"
           "                            [--config FILE]\n\n"
           "Checks a certificate profile without sending anything, and prints what a worker would\n"
           "issue with the sample values (subject as RFC 4514 text, SANs, key, EKUs, validity)\n"
           "and every problem found, not only the first:\n"
           "  - certificateType set; every {{variable}} known and allowed for the type;\n"
           "  - a sample value for each variable used (missing: a warning naming it);\n"
           "  - the subject and SANs rendered by the worker's own code; values over their X.520\n"
           "    length (CN 64 characters...) unless the profile sets allowLongValues;\n"
           "  - key algorithm and size, key usages, EKUs;\n"
           "  - the CA and template of the configuration: allowed EKUs and key usages, key\n"
           "    minimums, maximum validity, subject supplied in the request.\n\n"
           "options:\n"
           "  --profile FILE     a pkcs.v1.Profile in JSON, or a whole Request (JSON) whose\n"
           "                     issue.profile and issue.attributes are used\n"
           "  --attributes FILE  sample values: a JSON object, e.g. {\"UserName\": \"Ann\"}\n"
           "  --csv FILE         sample values: a CSV file whose header names the attributes;\n"
           "                     the first data row is used\n"
           "  --config FILE      configuration with the CAs and templates (default: $PC_CONFIG,\n"
           "                     else built-in defaults)\n\n"
           "variables (case-insensitive):\n"
           "  user certificates:   UserName, UserPrincipalName, EmailAddress,\n"
           "                       OnPrem_Distinguished_Name, onPremisesSamAccountName, and every\n"
           "                       device variable\n"
           "  device certificates: AAD_Device_ID, AzureADDeviceId, DeviceId, Device_Serial,\n"
           "                       SerialNumber, Device_IMEI, IMEINumber, IMEI, WiFiMacAddress,\n"
           "                       DeviceName, FullyQualifiedDomainName, MEID\n\n"
           "Exits 0 when there are no errors (warnings allowed), 1 otherwise, 2 on bad usage.\n");
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

static int read_json(const char *path, json_t **out)
{
    unsigned char *text = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    json_error_t jerr;
    pc_err_t err = pc_file_read(path, INPUT_MAX_BYTES, &text, &len, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    *out = json_loadb((const char *)text, len, 0, &jerr);
    free(text);
    if (*out == NULL)
        return pkcsctl_error(CMD, "%s is not JSON: %s (line %d, column %d)", path, jerr.text,
                             jerr.line, jerr.column);
    return 0;
}

/* load_profile decodes PROFILE.json, a Profile or a whole Request; a Request's attributes
 * become the sample unless with_sample. */
static int load_profile(lint_t *l, const char *path, bool with_sample)
{
    json_t *json = NULL;
    pc_diag_t diag = {{0}};
    if (read_json(path, &json) != 0)
        return 1;
    bool request = json_object_get(json, "issue") != NULL || json_object_get(json, "kind") != NULL;
    pc_err_t err =
        pc_pbjson_decode(request ? &pkcs__v1__request__descriptor : &pkcs__v1__profile__descriptor,
                         json, &l->msg, &diag);
    json_decref(json);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, path);
        return pkcsctl_diag_error(CMD, err, &diag);
    }
    if (!request) {
        l->profile = (Pkcs__V1__Profile *)l->msg;
        return 0;
    }
    const Pkcs__V1__Request *req = (const Pkcs__V1__Request *)l->msg;
    if (req->body_case != PKCS__V1__REQUEST__BODY_ISSUE || req->issue->profile == NULL)
        return pkcsctl_error(CMD, "%s is a request without issue.profile; give a profile", path);
    l->profile = req->issue->profile;
    for (size_t i = 0; i < req->issue->n_attributes && !with_sample; i++)
        json_object_set_new_nocheck(l->attrs, req->issue->attributes[i]->key,
                                    json_string_nocheck(req->issue->attributes[i]->value));
    return 0;
}

static int load_attributes(lint_t *l, const char *path)
{
    json_t *json = NULL, *v;
    const char *key;
    int rc = 0;
    if (read_json(path, &json) != 0)
        return 1;
    if (!json_is_object(json))
        rc = pkcsctl_error(CMD,
                           "%s must hold one JSON object of attribute values, e.g. "
                           "{\"UserName\": \"Ann\"}",
                           path);
    json_object_foreach(json, key, v)
    {
        if (rc == 0 && !json_is_string(v))
            rc = pkcsctl_error(CMD, "%s: the value of \"%s\" must be a string", path, key);
        else if (rc == 0)
            json_object_set(l->attrs, key, v);
    }
    json_decref(json);
    return rc;
}

/* vars_view makes l->vars point at the sample values. */
static int vars_view(lint_t *l)
{
    const char *key;
    json_t *v;
    size_t n = 0;
    if (json_object_size(l->attrs) == 0)
        return 0;
    if ((l->items = calloc(json_object_size(l->attrs), sizeof(*l->items))) == NULL)
        return pkcsctl_error(CMD, "out of memory");
    json_object_foreach(l->attrs, key, v)
    {
        l->items[n].name = key;
        l->items[n++].value = json_string_value(v);
    }
    l->vars.items = l->items;
    l->vars.count = n;
    return 0;
}

static void subject_text(const lint_t *l, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    snprintf(buf, len, "(not rendered)");
    if (l->subject != NULL && bio != NULL &&
        X509_NAME_print_ex(bio, l->subject, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_get_mem_data(bio, &data)) >= 0)
        snprintf(buf, len, "%.*s%s", (int)n, data ? data : "",
                 l->subject_stand_ins ? " (with stand-ins for the unusable variables)" : "");
    BIO_free(bio);
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

static void print_report(const lint_t *l, const char *path)
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

static int run(lint_t *l, const char *profile, const char *attributes, const char *csv,
               const char *config)
{
    pc_diag_t diag = {{0}};
    pc_err_t err;
    if (load_profile(l, profile, attributes != NULL || csv != NULL) != 0 ||
        (attributes != NULL && load_attributes(l, attributes) != 0) ||
        (csv != NULL && pkcsctl_lint_csv_sample(csv, l->attrs) != 0) || vars_view(l) != 0)
        return 1;
    if ((err = pc_config_load(config, &l->cfg, &diag)) != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    if (pc_profile_cert_type(l->profile, &l->type, &diag) != PC_OK) {
        pkcsctl_lint_problem(l, true, "%s", diag.msg);
        l->type = PC_CERT_USER; /* to go on with the other checks */
    }
    pkcsctl_lint_names(l);
    pkcsctl_lint_policy(l);
    print_report(l, profile);
    return l->errors == 0 ? 0 : 1;
}

int pkcsctl_lint_profile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'}, {"attributes", required_argument, NULL, 'a'},
        {"csv", required_argument, NULL, 'v'},     {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *profile = NULL, *attributes = NULL, *csv = NULL, *config = getenv("PC_CONFIG");
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            profile = optarg;
            break;
        case 'a':
            attributes = optarg;
            break;
        case 'v':
            csv = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            help();
            return 0;
        default:
            return pkcsctl_usage_error(CMD, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    if (profile == NULL)
        return pkcsctl_usage_error(CMD, "--profile FILE is required");
    if (attributes != NULL && csv != NULL)
        return pkcsctl_usage_error(CMD, "give the sample values once: --attributes or --csv");
    lint_t l = {.attrs = json_object(), .problems = json_array()};
    int rc = l.attrs == NULL || l.problems == NULL ? pkcsctl_error(CMD, "out of memory")
                                                   : run(&l, profile, attributes, csv, config);
    GENERAL_NAMES_free(l.sans);
    X509_NAME_free(l.subject);
    pc_config_free(l.cfg);
    free(l.items);
    if (l.msg != NULL)
        protobuf_c_message_free_unpacked(l.msg, NULL);
    json_decref(l.problems);
    json_decref(l.attrs);
    return rc;
}
