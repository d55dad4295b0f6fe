/*
 * pkcsctl lint-profile: checks a certificate profile before it is deployed, without sending
 * anything - variables, the rendered subject and SANs with sample values, lengths, key, usages
 * and the CA template's policy - and says what a worker would issue and every problem it sees.
 * This file reads the options and inputs and runs the checks in order: the names (lint_names.c),
 * then the policy (lint_policy.c); a CSV sample is lint_csv.c's; the problems and the report
 * are lint_report.c's. Main thread only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "lint_int.h"
#include "request.h"

#define CMD LINT_CMD

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
           "    minimums, maximum validity, subject supplied in the request, and its name\n"
           "    policy (SAN types, DNS and e-mail domains, UPN suffixes, wildcards, CNs as\n"
           "    host names), each name checked on its own.\n\n"
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

/* load_profile decodes PROFILE.json, a Profile or a whole Request; a Request's attributes
 * become the sample unless with_sample. */
static int load_profile(lint_t *l, const char *path, bool with_sample)
{
    json_t *json = NULL;
    if (pkcsctl_load_json(CMD, path, &json) != 0)
        return 1;
    bool request = json_object_get(json, "issue") != NULL || json_object_get(json, "kind") != NULL;
    int rc = pkcsctl_json_message(
        CMD, path, json, request ? &pkcs__v1__request__descriptor : &pkcs__v1__profile__descriptor,
        &l->msg);
    json_decref(json);
    if (rc != 0)
        return rc;
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
    if (pkcsctl_load_json(CMD, path, &json) != 0)
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
    pkcsctl_lint_report(l, profile);
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
    lint_t l;
    int rc = pkcsctl_lint_init(&l) != 0 ? pkcsctl_error(CMD, "out of memory")
                                        : run(&l, profile, attributes, csv, config);
    pkcsctl_lint_free(&l);
    return rc;
}
