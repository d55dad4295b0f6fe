/*
 * config.h - the connector's configuration: one JSON file plus environment overrides, every
 * setting with a default that works for the local stack. Read once at start (main thread).
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include "ca.h"
#include "keygen.h"
#include "pc_err.h"

typedef struct pc_config_ca {
    char *name;           /* "local" */
    char *type;           /* "local" (cfssl and others in later versions) */
    char *state_dir;      /* default: <state_dir>/ca/<name> */
    char *cert_file;      /* optional PEM */
    char *key_file;       /* optional PEM, encrypted */
    char *key_passphrase; /* from key_passphrase, key_passphrase_file or PC_CA_KEY_PASSPHRASE */
    char *subject;        /* of a generated CA */
    char *crl_url;
    char *aia_url;
    pc_ca_template_t **templates;
    size_t template_count;
} pc_config_ca_t;

typedef struct pc_config {
    char *state_dir;              /* default "./state"; env PC_STATE_DIR */
    pc_keygen_mode_t keygen_mode; /* "fast" (default) or "provider"; env PC_KEYGEN_MODE */
    pc_config_ca_t *cas;
    size_t ca_count;
} pc_config_t;

/* pc_config_load reads path (NULL: defaults only), applies environment overrides and fills in
 * defaults: a local CA named "local" with templates User, Device and SMIME when no CA is
 * configured. Unknown keys are errors (a typo must not be silently ignored). *out is the
 * caller's (pc_config_free). */
pc_err_t pc_config_load(const char *path, pc_config_t **out, pc_diag_t *diag);

/* pc_config_free frees cfg (NULL allowed), wiping passphrases. */
void pc_config_free(pc_config_t *cfg);

#endif
