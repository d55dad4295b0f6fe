/*
 * ca_cfssl_setup.c - the cfssl backend's configuration: checking it, copying it into the
 * backend (URLs of the endpoints, the auth key, the template -> profile map, TLS files,
 * timeouts and defaults), and freeing it again. Loop thread (at creation and after the last
 * close callback); nothing here touches the network.
 */
#include "ca_cfssl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "file.h"

#define API_PATH "/api/v1/cfssl/"

/* given: a setting that is there; an empty string counts as unset, as in a config file. */
static bool given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool hex_decode(const char *hex, unsigned char **out, size_t *len)
{
    size_t n = strlen(hex);

    *out = NULL;
    *len = 0;
    if (n == 0 || n % 2 != 0 || strspn(hex, "0123456789abcdefABCDEF") != n)
        return false;
    *out = malloc(n / 2);
    if (*out == NULL)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        (*out)[i] = (unsigned char)strtoul(byte, NULL, 16);
    }
    *len = n / 2;
    return true;
}

static bool url_ok(const char *url)
{
    return url != NULL && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) &&
           url[strcspn(url, " \t\r\n")] == '\0';
}

/* check_client_key: libcurl reads the TLS client key by name, so its mode is checked here, by
 * the rule every secret file follows (file.h). */
static pc_err_t check_client_key(const pc_ca_cfssl_config_t *cfg, pc_diag_t *diag)
{
    char where[160];
    pc_err_t err = given(cfg->client_key) ? pc_file_check_secret(cfg->client_key, diag) : PC_OK;

    if (err != PC_OK) {
        snprintf(where, sizeof(where), "cfssl CA \"%s\": client_key", cfg->name);
        pc_diag_prefix(diag, where);
    }
    return err;
}

static pc_err_t check_config(const pc_ca_cfssl_config_t *cfg, pc_diag_t *diag)
{
    if (cfg->name == NULL || cfg->name[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the cfssl CA needs a name (set ca.name)");
    if (!url_ok(cfg->url))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "cfssl CA \"%s\": \"%s\" is not an https:// URL; set ca.url to e.g. "
                       "https://cfssl.example:8888",
                       cfg->name, cfg->url != NULL ? cfg->url : "");
    /* The CSR, the auth token (a signed request seen on the wire can be sent again) and the
     * certificate must not travel in clear past this host. */
    if (strncmp(cfg->url, "http://", 7) == 0 && !cfg->allow_http)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "cfssl CA \"%s\": %s is plain HTTP, which exposes requests and answers "
                       "to the network; use https:// (with ca_bundle), or set \"allow_http\": "
                       "true in this CA's configuration for a cfssl on this host",
                       cfg->name, cfg->url);
    for (size_t i = 0; i < cfg->profile_count; i++)
        if (cfg->profiles[i].template_name == NULL || cfg->profiles[i].profile == NULL ||
            cfg->profiles[i].profile[0] == '\0')
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "cfssl CA \"%s\": profile mapping %zu lacks a template or a profile "
                           "name",
                           cfg->name, i + 1);
    if (given(cfg->client_cert) != given(cfg->client_key))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "cfssl CA \"%s\": mutual TLS needs both a client certificate and its "
                       "key; set both or neither",
                       cfg->name);
    return check_client_key(cfg, diag);
}

static char *dup_or_null(const char *s, bool *failed)
{
    char *d = given(s) ? strdup(s) : NULL;
    if (given(s) && d == NULL)
        *failed = true;
    return d;
}

static char *endpoint(const char *base, const char *name, bool *failed)
{
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    size_t size = len + strlen(API_PATH) + strlen(name) + 1;
    char *url = malloc(size);
    if (url == NULL)
        *failed = true;
    else
        snprintf(url, size, "%.*s%s%s", (int)len, base, API_PATH, name);
    return url;
}

static unsigned or_default(unsigned value, unsigned def)
{
    return value != 0 ? value : def;
}

pc_err_t pc_ca_cfssl_configure(pc_ca_cfssl_t *cca, const pc_ca_cfssl_config_t *cfg, pc_diag_t *diag)
{
    bool failed = false;
    pc_err_t err = check_config(cfg, diag);

    if (err != PC_OK)
        return err;
    if (given(cfg->auth_key_hex) && !hex_decode(cfg->auth_key_hex, &cca->key, &cca->key_len))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "cfssl CA \"%s\": the auth key is not an even number of hex digits; set it "
                       "to the \"key\" of the auth_keys entry in cfssl's configuration",
                       cfg->name);
    cca->base.name = dup_or_null(cfg->name, &failed);
    cca->sign_url = endpoint(cfg->url, cca->key != NULL ? "authsign" : "sign", &failed);
    cca->revoke_url = endpoint(cfg->url, "revoke", &failed);
    cca->info_url = endpoint(cfg->url, "info", &failed);
    cca->label = dup_or_null(cfg->label, &failed);
    cca->tls.ca_bundle = cca->ca_bundle = dup_or_null(cfg->ca_bundle, &failed);
    cca->tls.client_cert = cca->client_cert = dup_or_null(cfg->client_cert, &failed);
    cca->tls.client_key = cca->client_key = dup_or_null(cfg->client_key, &failed);
    if (cfg->profile_count > 0) {
        cca->profile_of = calloc(2 * cfg->profile_count, sizeof(char *));
        failed = failed || cca->profile_of == NULL;
    }
    for (size_t i = 0; cca->profile_of != NULL && i < cfg->profile_count; i++) {
        cca->profile_of[2 * i] = dup_or_null(cfg->profiles[i].template_name, &failed);
        cca->profile_of[2 * i + 1] = dup_or_null(cfg->profiles[i].profile, &failed);
        cca->profile_count = i + 1;
    }
    if (cfg->template_count > 0) {
        cca->base.templates = calloc(cfg->template_count, sizeof(*cca->base.templates));
        failed = failed || cca->base.templates == NULL;
    }
    if (failed)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the cfssl CA \"%s\"", cfg->name);
    cca->connect_timeout_ms = or_default(cfg->connect_timeout_ms, 5000);
    cca->total_timeout_ms = or_default(cfg->total_timeout_ms, 30000);
    cca->attempts = or_default(cfg->attempts, 3);
    cca->retry_base_ms = or_default(cfg->retry_base_ms, 200);
    cca->retry_max_ms = or_default(cfg->retry_max_ms, 5000);
    if (cca->retry_max_ms < cca->retry_base_ms)
        cca->retry_max_ms = cca->retry_base_ms;
    cca->breaker_threshold = or_default(cfg->breaker_threshold, 5);
    cca->breaker_cooldown_ms = or_default(cfg->breaker_cooldown_ms, 30000);
    return PC_OK;
}

void pc_ca_cfssl_clear(pc_ca_cfssl_t *cca)
{
    pc_ca_base_clear(&cca->base);
    sk_X509_pop_free(cca->chain, X509_free);
    if (cca->key != NULL)
        OPENSSL_cleanse(cca->key, cca->key_len);
    free(cca->key);
    for (size_t i = 0; i < 2 * cca->profile_count; i++)
        free(cca->profile_of[i]);
    free(cca->profile_of);
    free(cca->sign_url);
    free(cca->revoke_url);
    free(cca->info_url);
    free(cca->label);
    free(cca->ca_bundle);
    free(cca->client_cert);
    free(cca->client_key);
}
