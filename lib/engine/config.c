/*
 * config.c - loads the JSON configuration file, checks every key it knows and refuses the ones
 * it does not, applies PC_* environment overrides and defaults. Main thread, at start.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "file.h"
#include "usage.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

static pc_err_t check_keys(json_t *obj, const char *where, const char *const *allowed,
                           pc_diag_t *diag)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: unknown setting \"%s\"", where, key);
    }
    return PC_OK;
}

static pc_err_t get_string(json_t *obj, const char *key, const char *where, char **out,
                           pc_diag_t *diag)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return PC_OK;
    if (!json_is_string(v))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.%s must be a string", where, key);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out == NULL ? pc_fail(diag, PC_ERR_NOMEM, "out of memory") : PC_OK;
}

static pc_err_t get_uint(json_t *obj, const char *key, const char *where, unsigned *out,
                         pc_diag_t *diag)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return PC_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.%s must be a whole number", where, key);
    *out = (unsigned)json_integer_value(v);
    return PC_OK;
}

static pc_err_t get_bool(json_t *obj, const char *key, const char *where, bool *out,
                         pc_diag_t *diag)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return PC_OK;
    if (!json_is_boolean(v))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.%s must be true or false", where, key);
    *out = json_is_true(v);
    return PC_OK;
}

static pc_err_t eku_oid(const char *name, char **oid, pc_diag_t *diag)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(name, 0);
    char buf[128];
    if (obj == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "unknown EKU \"%s\"; use a dotted OID or a name like clientAuth", name);
    OBJ_obj2txt(buf, sizeof(buf), obj, 1);
    ASN1_OBJECT_free(obj);
    *oid = strdup(buf);
    return *oid == NULL ? pc_fail(diag, PC_ERR_NOMEM, "out of memory") : PC_OK;
}

static pc_err_t template_add_eku(pc_ca_template_t *t, const char *name, pc_diag_t *diag)
{
    char **grown = realloc(t->allowed_ekus, (t->allowed_eku_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    t->allowed_ekus = grown;
    pc_err_t err = eku_oid(name, &t->allowed_ekus[t->allowed_eku_count], diag);
    if (err == PC_OK)
        t->allowed_eku_count++;
    return err;
}

static pc_err_t template_lists(pc_ca_template_t *t, json_t *obj, const char *where, pc_diag_t *diag)
{
    json_t *ekus = json_object_get(obj, "allowed_ekus");
    json_t *usages = json_object_get(obj, "allowed_key_usages");
    size_t i;
    json_t *v;
    pc_err_t err = PC_OK;
    if ((ekus != NULL && !json_is_array(ekus)) || (usages != NULL && !json_is_array(usages)))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s: allowed_ekus and allowed_key_usages must be lists of strings", where);
    json_array_foreach(ekus, i, v)
    {
        if (!json_is_string(v))
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.allowed_ekus[%zu] is not a string",
                           where, i);
        if ((err = template_add_eku(t, json_string_value(v), diag)) != PC_OK)
            return err;
    }
    json_array_foreach(usages, i, v)
    {
        unsigned bit = 0;
        if (!json_is_string(v))
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.allowed_key_usages[%zu] is not a string",
                           where, i);
        if ((err = pc_key_usage_parse(json_string_value(v), &bit, diag)) != PC_OK)
            return err;
        t->allowed_key_usage |= bit;
    }
    return PC_OK;
}

/* string_list calls add(t, item, what) for each string of the list obj[key] (absent: none). */
static pc_err_t string_list(json_t *obj, const char *key, const char *where, pc_ca_template_t *t,
                            pc_err_t (*add)(pc_ca_template_t *t, const char *item, const char *what,
                                            pc_diag_t *diag),
                            pc_diag_t *diag)
{
    json_t *list = json_object_get(obj, key), *v;
    char what[200];
    size_t i;
    pc_err_t err;

    if (list == NULL || json_is_null(list))
        return PC_OK;
    if (!json_is_array(list))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.%s must be a list of strings", where, key);
    json_array_foreach(list, i, v)
    {
        snprintf(what, sizeof(what), "%s.%s[%zu]", where, key, i);
        if (!json_is_string(v))
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s is not a string", what);
        if ((err = add(t, json_string_value(v), what, diag)) != PC_OK)
            return err;
    }
    return PC_OK;
}

static pc_err_t add_san_type(pc_ca_template_t *t, const char *item, const char *what,
                             pc_diag_t *diag)
{
    unsigned bit = 0;
    pc_err_t err = pc_name_policy_san_type(item, &bit, diag);
    if (err != PC_OK)
        pc_diag_prefix(diag, what);
    t->names.san_types |= bit;
    return err;
}

static pc_err_t add_dns_domain(pc_ca_template_t *t, const char *item, const char *what,
                               pc_diag_t *diag)
{
    return pc_name_policy_add_domain(&t->names.dns_domains, &t->names.dns_domain_count, item, what,
                                     diag);
}

static pc_err_t add_email_domain(pc_ca_template_t *t, const char *item, const char *what,
                                 pc_diag_t *diag)
{
    return pc_name_policy_add_domain(&t->names.email_domains, &t->names.email_domain_count, item,
                                     what, diag);
}

static pc_err_t add_upn_suffix(pc_ca_template_t *t, const char *item, const char *what,
                               pc_diag_t *diag)
{
    return pc_name_policy_add_domain(&t->names.upn_suffixes, &t->names.upn_suffix_count, item, what,
                                     diag);
}

/* template_names reads the template's name policy (name_policy.h): every setting optional. */
static pc_err_t template_names(pc_ca_template_t *t, json_t *obj, const char *where, pc_diag_t *diag)
{
    pc_err_t err;
    if ((err = string_list(obj, "allowed_san_types", where, t, add_san_type, diag)) != PC_OK ||
        (err = string_list(obj, "allowed_dns_domains", where, t, add_dns_domain, diag)) != PC_OK ||
        (err = string_list(obj, "allowed_email_domains", where, t, add_email_domain, diag)) !=
            PC_OK ||
        (err = string_list(obj, "allowed_upn_suffixes", where, t, add_upn_suffix, diag)) != PC_OK ||
        (err = get_bool(obj, "allow_subdomains", where, &t->names.allow_subdomains, diag)) !=
            PC_OK ||
        (err = get_bool(obj, "allow_wildcards", where, &t->names.allow_wildcards, diag)) != PC_OK)
        return err;
    return get_bool(obj, "cn_is_dns_name", where, &t->names.cn_is_dns_name, diag);
}

static pc_err_t parse_template(json_t *obj, const char *where, pc_ca_template_t **out,
                               pc_diag_t *diag)
{
    static const char *const keys[] = {"name",
                                       "allowed_ekus",
                                       "allowed_key_usages",
                                       "max_validity_days",
                                       "min_rsa_bits",
                                       "min_ec_bits",
                                       "subject_from_request",
                                       "allowed_san_types",
                                       "allowed_dns_domains",
                                       "allow_subdomains",
                                       "allow_wildcards",
                                       "allowed_email_domains",
                                       "allowed_upn_suffixes",
                                       "cn_is_dns_name",
                                       NULL};
    pc_ca_template_t *t = calloc(1, sizeof(*t));
    pc_err_t err;
    if (t == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    t->max_validity_days = 730;
    t->min_rsa_bits = 2048;
    t->min_ec_bits = 256;
    t->subject_from_request = true;
    if (!json_is_object(obj)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "%s must be an object", where);
        goto out_free_template;
    }
    json_t *sfr = json_object_get(obj, "subject_from_request");
    if ((err = check_keys(obj, where, keys, diag)) != PC_OK ||
        (err = get_string(obj, "name", where, &t->name, diag)) != PC_OK ||
        (err = get_uint(obj, "max_validity_days", where, &t->max_validity_days, diag)) != PC_OK ||
        (err = get_uint(obj, "min_rsa_bits", where, &t->min_rsa_bits, diag)) != PC_OK ||
        (err = get_uint(obj, "min_ec_bits", where, &t->min_ec_bits, diag)) != PC_OK ||
        (err = template_lists(t, obj, where, diag)) != PC_OK ||
        (err = template_names(t, obj, where, diag)) != PC_OK)
        goto out_free_template;
    if (sfr != NULL)
        t->subject_from_request = json_is_true(sfr);
    if (t->name == NULL || t->name[0] == '\0') {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.name is missing", where);
        goto out_free_template;
    }
    *out = t;
    return PC_OK;
out_free_template:
    pc_ca_template_free(t);
    return err;
}

/* Default templates, as an administrator would set up for Intune-style PKCS profiles. */
static const char default_templates[] =
    "[{\"name\":\"User\",\"allowed_ekus\":[\"clientAuth\",\"emailProtection\","
    "\"msSmartcardLogin\"],\"allowed_key_usages\":[\"digitalSignature\",\"nonRepudiation\","
    "\"keyEncipherment\",\"keyAgreement\"],\"max_validity_days\":730},"
    "{\"name\":\"Device\",\"allowed_ekus\":[\"clientAuth\",\"serverAuth\"],"
    "\"allowed_key_usages\":[\"digitalSignature\",\"keyEncipherment\",\"keyAgreement\"],"
    "\"max_validity_days\":730},"
    "{\"name\":\"SMIME\",\"allowed_ekus\":[\"emailProtection\"],\"allowed_key_usages\":["
    "\"digitalSignature\",\"nonRepudiation\",\"keyEncipherment\",\"keyAgreement\"],"
    "\"max_validity_days\":1095}]";

static pc_err_t parse_templates(pc_config_ca_t *ca, json_t *list, pc_diag_t *diag)
{
    json_t *defaults = NULL;
    pc_err_t err = PC_OK;
    if (list == NULL) {
        defaults = json_loads(default_templates, 0, NULL);
        list = defaults;
    }
    if (!json_is_array(list)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "ca %s: templates must be a list", ca->name);
        goto out_free_defaults;
    }
    ca->templates = calloc(json_array_size(list) + 1, sizeof(*ca->templates));
    if (ca->templates == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_free_defaults;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        char where[160];
        snprintf(where, sizeof(where), "cas[%s].templates[%zu]", ca->name, i);
        err = parse_template(json_array_get(list, i), where, &ca->templates[i], diag);
        if (err != PC_OK)
            goto out_free_defaults;
        ca->template_count = i + 1;
    }
out_free_defaults:
    json_decref(defaults);
    return err;
}

/* read_secret_file reads a secret (passphrase, PIN) for ca's setting from path into *out, line
 * end cut; what *out held is wiped. */
static pc_err_t read_secret_file(const pc_config_ca_t *ca, const char *setting, const char *path,
                                 char **out, pc_diag_t *diag)
{
    unsigned char *data = NULL;
    size_t len = 0;
    pc_err_t err = pc_file_read_secret(path, 4096, &data, &len, diag);
    if (err != PC_OK) {
        char where[160];
        snprintf(where, sizeof(where), "ca %s: %s", ca->name ? ca->name : "local", setting);
        pc_diag_prefix(diag, where);
        return err;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    if (*out != NULL)
        OPENSSL_clear_free(*out, strlen(*out));
    *out = (char *)data;
    return PC_OK;
}

static pc_err_t read_passphrase_file(pc_config_ca_t *ca, const char *path, pc_diag_t *diag)
{
    return read_secret_file(ca, "key_passphrase_file", path, &ca->key_passphrase, diag);
}

/* The CA key in a PKCS#11 token: its URI, module and the PIN from key_pin_file. */
static pc_err_t ca_token(pc_config_ca_t *ca, json_t *obj, pc_diag_t *diag)
{
    char *pin_file = NULL;
    pc_err_t err = get_string(obj, "key_uri", "ca", &ca->key_uri, diag);
    if (err == PC_OK)
        err = get_string(obj, "key_module", "ca", &ca->key_module, diag);
    if (err == PC_OK)
        err = get_string(obj, "key_pin_file", "ca", &pin_file, diag);
    if (err == PC_OK && pin_file != NULL)
        err = read_secret_file(ca, "key_pin_file", pin_file, &ca->key_pin, diag);
    if (err == PC_OK && ca->key_uri != NULL && strncmp(ca->key_uri, "pkcs11:", 7) != 0)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "ca %s: key_uri must be a PKCS#11 URI, e.g. "
                      "\"pkcs11:token=CA;object=ca-key;type=private\"",
                      ca->name != NULL ? ca->name : "local");
    free(pin_file);
    return err;
}

static pc_err_t ca_passphrase(pc_config_ca_t *ca, json_t *obj, pc_diag_t *diag)
{
    char *file = NULL;
    pc_err_t err = get_string(obj, "key_passphrase", "ca", &ca->key_passphrase, diag);
    if (err == PC_OK)
        err = get_string(obj, "key_passphrase_file", "ca", &file, diag);
    if (err != PC_OK)
        goto out_free_file;
    if (file == NULL && getenv("PC_CA_KEY_PASSPHRASE_FILE") != NULL)
        file = strdup(getenv("PC_CA_KEY_PASSPHRASE_FILE"));
    if (file != NULL && ca->key_passphrase == NULL)
        err = read_passphrase_file(ca, file, diag);
    else if (ca->key_passphrase == NULL && getenv("PC_CA_KEY_PASSPHRASE") != NULL)
        ca->key_passphrase = strdup(getenv("PC_CA_KEY_PASSPHRASE"));
out_free_file:
    free(file);
    return err;
}

static pc_err_t parse_profiles(pc_config_ca_t *ca, json_t *obj, pc_diag_t *diag)
{
    const char *key;
    json_t *v;
    if (obj == NULL)
        return PC_OK;
    if (!json_is_object(obj))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "ca %s: profiles must map template names to cfssl profile names", ca->name);
    size_t n = json_object_size(obj);
    ca->profile_templates = calloc(n + 1, sizeof(char *));
    ca->profile_names = calloc(n + 1, sizeof(char *));
    if (ca->profile_templates == NULL || ca->profile_names == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "ca %s: profiles.%s must be a string",
                           ca->name, key);
        ca->profile_templates[ca->profile_count] = strdup(key);
        ca->profile_names[ca->profile_count] = strdup(json_string_value(v));
        ca->profile_count++;
    }
    return PC_OK;
}

static pc_err_t read_hex_key(pc_config_ca_t *ca, const char *path, pc_diag_t *diag)
{
    unsigned char *data = NULL;
    size_t len = 0;
    pc_err_t err = pc_file_read_secret(path, 4096, &data, &len, diag);
    if (err != PC_OK) {
        char where[160];
        snprintf(where, sizeof(where), "ca %s: auth_key_file", ca->name);
        pc_diag_prefix(diag, where);
        return err;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        data[--len] = '\0';
    ca->auth_key_hex = (char *)data;
    return PC_OK;
}

static pc_err_t parse_cfssl(json_t *obj, pc_config_ca_t *ca, pc_diag_t *diag)
{
    char *key_file = NULL;
    pc_err_t err;
    if ((err = get_string(obj, "url", "ca", &ca->url, diag)) != PC_OK ||
        (err = get_bool(obj, "allow_http", "ca", &ca->allow_http, diag)) != PC_OK ||
        (err = get_bool(obj, "client_serials", "ca", &ca->client_serials, diag)) != PC_OK ||
        (err = get_string(obj, "auth_key_file", "ca", &key_file, diag)) != PC_OK ||
        (err = get_string(obj, "label", "ca", &ca->label, diag)) != PC_OK ||
        (err = get_string(obj, "ca_bundle", "ca", &ca->ca_bundle, diag)) != PC_OK ||
        (err = get_string(obj, "client_cert", "ca", &ca->client_cert, diag)) != PC_OK ||
        (err = get_string(obj, "client_key", "ca", &ca->client_key, diag)) != PC_OK ||
        (err = get_uint(obj, "connect_timeout_ms", "ca", &ca->connect_timeout_ms, diag)) != PC_OK ||
        (err = get_uint(obj, "total_timeout_ms", "ca", &ca->total_timeout_ms, diag)) != PC_OK ||
        (err = get_uint(obj, "max_concurrent", "ca", &ca->max_concurrent, diag)) != PC_OK ||
        (err = get_uint(obj, "attempts", "ca", &ca->attempts, diag)) != PC_OK ||
        (err = get_uint(obj, "retry_base_ms", "ca", &ca->retry_base_ms, diag)) != PC_OK ||
        (err = get_uint(obj, "retry_max_ms", "ca", &ca->retry_max_ms, diag)) != PC_OK ||
        (err = get_uint(obj, "breaker_threshold", "ca", &ca->breaker_threshold, diag)) != PC_OK ||
        (err = get_uint(obj, "breaker_cooldown_ms", "ca", &ca->breaker_cooldown_ms, diag)) !=
            PC_OK ||
        (err = parse_profiles(ca, json_object_get(obj, "profiles"), diag)) != PC_OK)
        goto out_free_key_file;
    if (ca->url == NULL) {
        err =
            pc_fail(diag, PC_ERR_INVALID_PARAM,
                    "ca %s: a cfssl CA needs \"url\" (https://host:port of cfssl serve)", ca->name);
        goto out_free_key_file;
    }
    if (key_file != NULL)
        err = read_hex_key(ca, key_file, diag);
out_free_key_file:
    free(key_file);
    return err;
}

static pc_err_t parse_ca(json_t *obj, const pc_config_t *cfg, pc_config_ca_t *ca, pc_diag_t *diag)
{
    static const char *const keys[] = {
        "name", "type", "state_dir", "cert_file", "key_file", "subject", "crl_url", "aia_url",
        "key_passphrase", "key_passphrase_file", "templates", "ocsp_url", "key_uri", "key_pin_file",
        "key_module",
        /* type cfssl */
        "url", "allow_http", "client_serials", "auth_key_file", "label", "ca_bundle", "client_cert",
        "client_key", "connect_timeout_ms", "total_timeout_ms", "max_concurrent", "attempts",
        "retry_base_ms", "retry_max_ms", "breaker_threshold", "breaker_cooldown_ms", "profiles",
        NULL};
    pc_err_t err;
    if (!json_is_object(obj))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "each entry of cas must be an object");
    if ((err = check_keys(obj, "cas[]", keys, diag)) != PC_OK ||
        (err = get_string(obj, "name", "ca", &ca->name, diag)) != PC_OK ||
        (err = get_string(obj, "type", "ca", &ca->type, diag)) != PC_OK ||
        (err = get_string(obj, "state_dir", "ca", &ca->state_dir, diag)) != PC_OK ||
        (err = get_string(obj, "cert_file", "ca", &ca->cert_file, diag)) != PC_OK ||
        (err = get_string(obj, "key_file", "ca", &ca->key_file, diag)) != PC_OK ||
        (err = get_string(obj, "subject", "ca", &ca->subject, diag)) != PC_OK ||
        (err = get_string(obj, "crl_url", "ca", &ca->crl_url, diag)) != PC_OK ||
        (err = get_string(obj, "aia_url", "ca", &ca->aia_url, diag)) != PC_OK ||
        (err = get_string(obj, "ocsp_url", "ca", &ca->ocsp_url, diag)) != PC_OK ||
        (err = ca_token(ca, obj, diag)) != PC_OK || (err = ca_passphrase(ca, obj, diag)) != PC_OK)
        return err;
    if (ca->name == NULL && (ca->name = strdup("local")) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    if (ca->type == NULL && (ca->type = strdup("local")) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    if (strcmp(ca->type, "cfssl") == 0) {
        if ((err = parse_cfssl(obj, ca, diag)) != PC_OK)
            return err;
    } else if (strcmp(ca->type, "local") != 0) {
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "ca %s: type \"%s\" is not supported; use local or cfssl", ca->name,
                       ca->type);
    }
    if (ca->state_dir == NULL) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/ca/%s", cfg->state_dir, ca->name);
        if ((ca->state_dir = strdup(dir)) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    return parse_templates(ca, json_object_get(obj, "templates"), diag);
}

static pc_err_t parse_cas(pc_config_t *cfg, json_t *list, pc_diag_t *diag)
{
    json_t *fallback = NULL;
    pc_err_t err = PC_OK;
    if (list == NULL || json_array_size(list) == 0) {
        fallback = json_pack("[{}]");
        list = fallback;
    }
    if (!json_is_array(list)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "cas must be a list");
        goto out_free_fallback;
    }
    cfg->cas = calloc(json_array_size(list), sizeof(*cfg->cas));
    if (cfg->cas == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_free_fallback;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        cfg->ca_count = i + 1;
        if ((err = parse_ca(json_array_get(list, i), cfg, &cfg->cas[i], diag)) != PC_OK)
            goto out_free_fallback;
    }
out_free_fallback:
    json_decref(fallback);
    return err;
}

static pc_err_t keygen_mode(const char *text, pc_keygen_mode_t *mode, pc_diag_t *diag)
{
    if (strcmp(text, "fast") == 0)
        *mode = PC_KEYGEN_FAST;
    else if (strcmp(text, "provider") == 0 || strcmp(text, "fips") == 0)
        *mode = PC_KEYGEN_PROVIDER;
    else
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "keygen_mode \"%s\" is unknown; use fast or provider", text);
    return PC_OK;
}

static pc_err_t parse_top(pc_config_t *cfg, json_t *root, pc_diag_t *diag)
{
    static const char *const keys[] = {"state_dir", "keygen_mode", "cas",     "worker", "kafka",
                                       "redis",     "coordinator", "signers", NULL};
    char *mode = NULL;
    pc_err_t err;
    if (!json_is_object(root))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the configuration must be a JSON object");
    if ((err = check_keys(root, "config", keys, diag)) != PC_OK ||
        (err = get_string(root, "state_dir", "config", &cfg->state_dir, diag)) != PC_OK ||
        (err = get_string(root, "keygen_mode", "config", &mode, diag)) != PC_OK)
        goto out_free_mode;
    if (getenv("PC_STATE_DIR") != NULL) {
        free(cfg->state_dir);
        cfg->state_dir = strdup(getenv("PC_STATE_DIR"));
    }
    if (getenv("PC_KEYGEN_MODE") != NULL) {
        free(mode);
        mode = strdup(getenv("PC_KEYGEN_MODE"));
    }
    if (cfg->state_dir == NULL)
        cfg->state_dir = strdup("./state");
    if (mode != NULL && (err = keygen_mode(mode, &cfg->keygen_mode, diag)) != PC_OK)
        goto out_free_mode;
    if ((err = parse_cas(cfg, json_object_get(root, "cas"), diag)) != PC_OK)
        goto out_free_mode;
    err = pc_config_settings_parse(cfg, root, diag);
out_free_mode:
    free(mode);
    return err;
}

static pc_err_t load_json(const char *path, json_t **root, pc_diag_t *diag)
{
    unsigned char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    if (path == NULL) {
        *root = json_object();
        return PC_OK;
    }
    pc_err_t err = pc_file_read(path, CONFIG_MAX_BYTES, &text, &len, diag);
    if (err != PC_OK)
        return err;
    *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "%s line %d column %d: %s", path, jerr.line,
                      jerr.column, jerr.text);
    OPENSSL_clear_free(text, len);
    return err;
}

pc_err_t pc_config_load(const char *path, pc_config_t **out, pc_diag_t *diag)
{
    json_t *root = NULL;
    *out = NULL;
    pc_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    pc_err_t err = load_json(path, &root, diag);
    if (err == PC_OK)
        err = parse_top(cfg, root, diag);
    json_decref(root);
    if (err != PC_OK) {
        pc_config_free(cfg);
        return err;
    }
    *out = cfg;
    return PC_OK;
}

static void free_ca(pc_config_ca_t *ca)
{
    free(ca->name);
    free(ca->type);
    free(ca->state_dir);
    free(ca->cert_file);
    free(ca->key_file);
    if (ca->key_passphrase != NULL)
        OPENSSL_clear_free(ca->key_passphrase, strlen(ca->key_passphrase));
    free(ca->subject);
    free(ca->crl_url);
    free(ca->aia_url);
    free(ca->ocsp_url);
    free(ca->key_uri);
    free(ca->key_module);
    if (ca->key_pin != NULL)
        OPENSSL_clear_free(ca->key_pin, strlen(ca->key_pin));
    free(ca->url);
    if (ca->auth_key_hex != NULL)
        OPENSSL_clear_free(ca->auth_key_hex, strlen(ca->auth_key_hex));
    free(ca->label);
    free(ca->ca_bundle);
    free(ca->client_cert);
    free(ca->client_key);
    for (size_t i = 0; i < ca->profile_count; i++) {
        free(ca->profile_templates[i]);
        free(ca->profile_names[i]);
    }
    free(ca->profile_templates);
    free(ca->profile_names);
    for (size_t i = 0; i < ca->template_count; i++)
        pc_ca_template_free(ca->templates[i]);
    free(ca->templates);
}

void pc_config_free(pc_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->ca_count; i++)
        free_ca(&cfg->cas[i]);
    free(cfg->cas);
    free(cfg->state_dir);
    pc_config_settings_clear(cfg);
    free(cfg);
}
