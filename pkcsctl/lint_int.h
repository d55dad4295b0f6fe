/*
 * lint_int.h - what the parts of `pkcsctl lint-profile` share: the options and inputs
 * (lint_profile.c), the CSV sample (lint_csv.c), variables, subject and SANs (lint_names.c), the
 * key, usages and template policy (lint_policy.c), and the run's record of problems and its
 * report (lint_report.c). Calls go one way: lint_profile.c calls the others, lint_names.c and
 * lint_policy.c call lint_report.c. Main thread only.
 */
#ifndef PKCSCTL_LINT_INT_H
#define PKCSCTL_LINT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "config.h"
#include "keygen.h"
#include "pkcs.pb-c.h"
#include "vars.h"

#define LINT_CMD "lint-profile"

/* One lint run: the profile, the sample values, what was rendered, and every problem found. */
typedef struct lint {
    Pkcs__V1__Profile *profile; /* borrowed from msg */
    ProtobufCMessage *msg;      /* the decoded Profile or Request (owned) */
    json_t *attrs;              /* sample values: object name -> string (owned) */
    pc_var_t *items;            /* pc_vars_t view of attrs (array owned, strings not) */
    pc_vars_t vars;
    pc_config_t *cfg;
    pc_cert_type_t type;          /* USER when the profile's type is missing (that is an error) */
    const pc_ca_template_t *tmpl; /* borrowed from cfg; NULL when CA or template is unknown */
    pc_key_spec_t key_spec;
    bool key_ok;
    unsigned key_usage;     /* KU_* bits asked for (default for the key when none) */
    X509_NAME *subject;     /* rendered; NULL when it could not be */
    bool subject_stand_ins; /* rendered with stand-ins for unusable variables */
    GENERAL_NAMES *sans;    /* the SANs that rendered */
    bool sans_complete;     /* every SAN rendered */
    json_t *problems;       /* array of {"error": bool, "text": string}, in the order found */
    size_t errors, warnings;
} lint_t;

/* pkcsctl_lint_init makes an empty run record (lint_report.c). 0, or -1 out of memory; free
 * it with pkcsctl_lint_free either way. */
int pkcsctl_lint_init(lint_t *l);

/* pkcsctl_lint_free frees what l holds (lint_report.c). */
void pkcsctl_lint_free(lint_t *l);

/* pkcsctl_lint_problem records an error (or a warning) once: the same text twice is one
 * problem (lint_report.c). */
void pkcsctl_lint_problem(lint_t *l, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pkcsctl_lint_report prints what a worker would issue with the sample values (the profile
 * named by path when it has no id) and every problem, in the order found (lint_report.c). */
void pkcsctl_lint_report(const lint_t *l, const char *path);

/* pkcsctl_lint_csv_sample (lint_csv.c) reads the header and the first data row of the CSV file at
 * path into attrs (column name -> value; empty cells are left out). Returns 0, or 1 after printing.
 */
int pkcsctl_lint_csv_sample(const char *path, json_t *attrs);

/* pkcsctl_lint_names (lint_names.c) checks every {{variable}} of the subject and SAN formats
 * (known, allowed for the certificate type, with a sample value) and renders the subject and SANs
 * with the sample values, checking X.520 lengths unless the profile allows long values. */
void pkcsctl_lint_names(lint_t *l);

/* pkcsctl_lint_policy (lint_policy.c) checks the request limits, the CA and template of the
 * configuration, the key, key usages and EKUs, each rendered SAN and CN against the template's
 * name policy (name_policy.h), and runs the template policy (pc_ca_template_check) on throwaway
 * CSRs made like the worker makes them. */
void pkcsctl_lint_policy(lint_t *l);

#endif
