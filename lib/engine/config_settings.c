/*
 * config_settings.c - the scalar settings of every section (kafka, redis, worker, coordinator)
 * as one table: JSON section and name, environment variable, type, where it goes, default.
 * Adding a setting is adding a row. Main thread, at start.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "file.h"
#include "request.h"

/* T_SECRET is a string that is wiped when freed. T_FILE names a file holding the secret at
 * offset (its first line): the "_file" form of a secret, so that it need be in neither the
 * configuration nor the environment; its row follows the secret's own. */
typedef enum { T_STR, T_SECRET, T_FILE, T_UINT, T_BOOL } setting_type_t;

typedef struct setting {
    const char *section; /* "kafka", "redis", "worker", "coordinator" */
    const char *name;
    const char *env;
    setting_type_t type;
    size_t offset;   /* in pc_config_t */
    const char *def; /* default as text; NULL = none */
} setting_t;

#define K(field) offsetof(pc_config_t, kafka.field)
#define R(field) offsetof(pc_config_t, redis.field)
#define W(field) offsetof(pc_config_t, worker.field)
#define C(field) offsetof(pc_config_t, coordinator.field)

static const setting_t settings[] = {
    {"worker", "id", "PC_WORKER_ID", T_STR, W(id), NULL},
    {"worker", "max_in_flight", "PC_MAX_IN_FLIGHT", T_UINT, W(max_in_flight), "64"},
    {"worker", "resume_below", "PC_RESUME_BELOW", T_UINT, W(resume_below), "0"},
    {"worker", "threadpool_size", "PC_THREADPOOL_SIZE", T_UINT, W(threadpool_size), "0"},
    {"worker", "max_instances", "PC_MAX_INSTANCES", T_UINT, W(max_instances), "100"},
    {"worker", "heartbeat_ms", "PC_HEARTBEAT_MS", T_UINT, W(heartbeat_ms), "3000"},
    {"worker", "heartbeat_ttl_ms", "PC_HEARTBEAT_TTL_MS", T_UINT, W(heartbeat_ttl_ms), "10000"},
    {"worker", "drain_timeout_ms", "PC_DRAIN_TIMEOUT_MS", T_UINT, W(drain_timeout_ms), "30000"},
    {"worker", "http_host", "PC_HTTP_HOST", T_STR, W(http_host), "127.0.0.1"},
    {"worker", "http_port", "PC_HTTP_PORT", T_UINT, W(http_port), "9464"},
    {"worker", "log_level", "PC_LOG_LEVEL", T_STR, W(log_level), "info"},
    {"worker", "key_pool_size", "PC_KEY_POOL_SIZE", T_UINT, W(key_pool_size), "16"},
    {"worker", "key_pool_algorithms", "PC_KEY_POOL_ALGORITHMS", T_STR, W(key_pool_algorithms),
     "RSA-2048"},
    {"worker", "retry_min_ms", "PC_RETRY_MIN_MS", T_UINT, W(retry_min_ms), "200"},
    {"worker", "retry_max_ms", "PC_RETRY_MAX_MS", T_UINT, W(retry_max_ms), "10000"},
    {"worker", "retry_limit_ms", "PC_RETRY_LIMIT_MS", T_UINT, W(retry_limit_ms), "300000"},
    {"worker", "degraded_after_ms", "PC_DEGRADED_AFTER_MS", T_UINT, W(degraded_after_ms), "30000"},
    {"worker", "allow_unsigned", "PC_ALLOW_UNSIGNED", T_BOOL, W(allow_unsigned), "false"},
    {"worker", "max_request_age_s", "PC_MAX_REQUEST_AGE_S", T_UINT, W(max_request_age_s), "259200"},
    {"worker", "clock_skew_ms", "PC_CLOCK_SKEW_MS", T_UINT, W(clock_skew_ms), "300000"},
    {"worker", "result_key_file", "PC_RESULT_KEY_FILE", T_STR, W(result_key_file), NULL},
    {"worker", "result_key_id", "PC_RESULT_KEY_ID", T_STR, W(result_key_id), "results-1"},
    {"worker", "result_key_algorithm", "PC_RESULT_KEY_ALGORITHM", T_STR, W(result_key_algorithm),
     "ed25519"},
    {"kafka", "brokers", "PC_KAFKA_BROKERS", T_STR, K(brokers), "127.0.0.1:9092"},
    {"kafka", "group_id", "PC_KAFKA_GROUP_ID", T_STR, K(group_id), "pkcs-workers"},
    {"kafka", "group_instance_id", "PC_KAFKA_GROUP_INSTANCE_ID", T_STR, K(group_instance_id), NULL},
    {"kafka", "requests_topic", "PC_REQUESTS_TOPIC", T_STR, K(requests_topic), "pkcs.requests"},
    {"kafka", "results_topic", "PC_RESULTS_TOPIC", T_STR, K(results_topic), "pkcs.results"},
    {"kafka", "dlq_topic", "PC_DLQ_TOPIC", T_STR, K(dlq_topic), "pkcs.requests.dlq"},
    {"kafka", "audit_topic", "PC_AUDIT_TOPIC", T_STR, K(audit_topic), "pkcs.audit"},
    {"kafka", "notices_topic", "PC_NOTICES_TOPIC", T_STR, K(notices_topic), "pkcs.notices"},
    {"kafka", "session_timeout_ms", "PC_KAFKA_SESSION_TIMEOUT_MS", T_UINT, K(session_timeout_ms),
     "10000"},
    {"kafka", "security_protocol", "PC_KAFKA_SECURITY_PROTOCOL", T_STR, K(security_protocol),
     "plaintext"},
    {"kafka", "ssl_ca_file", "PC_KAFKA_SSL_CA_FILE", T_STR, K(ssl_ca_file), NULL},
    {"kafka", "ssl_cert_file", "PC_KAFKA_SSL_CERT_FILE", T_STR, K(ssl_cert_file), NULL},
    {"kafka", "ssl_key_file", "PC_KAFKA_SSL_KEY_FILE", T_STR, K(ssl_key_file), NULL},
    {"kafka", "ssl_key_password", "PC_KAFKA_SSL_KEY_PASSWORD", T_SECRET, K(ssl_key_password), NULL},
    {"kafka", "ssl_key_password_file", "PC_KAFKA_SSL_KEY_PASSWORD_FILE", T_FILE,
     K(ssl_key_password), NULL},
    {"kafka", "ssl_verify_hostname", "PC_KAFKA_SSL_VERIFY_HOSTNAME", T_BOOL, K(ssl_verify_hostname),
     "true"},
    {"kafka", "sasl_mechanism", "PC_KAFKA_SASL_MECHANISM", T_STR, K(sasl_mechanism),
     "SCRAM-SHA-512"},
    {"kafka", "sasl_username", "PC_KAFKA_SASL_USERNAME", T_STR, K(sasl_username), NULL},
    {"kafka", "sasl_password", "PC_KAFKA_SASL_PASSWORD", T_SECRET, K(sasl_password), NULL},
    {"kafka", "sasl_password_file", "PC_KAFKA_SASL_PASSWORD_FILE", T_FILE, K(sasl_password), NULL},
    {"redis", "host", "PC_REDIS_HOST", T_STR, R(host), "127.0.0.1"},
    {"redis", "port", "PC_REDIS_PORT", T_UINT, R(port), "6379"},
    {"redis", "username", "PC_REDIS_USERNAME", T_STR, R(username), NULL},
    {"redis", "password", "PC_REDIS_PASSWORD", T_SECRET, R(password), NULL},
    {"redis", "password_file", "PC_REDIS_PASSWORD_FILE", T_FILE, R(password), NULL},
    {"redis", "sentinels", "PC_REDIS_SENTINELS", T_STR, R(sentinels), NULL},
    {"redis", "master_name", "PC_REDIS_MASTER_NAME", T_STR, R(master_name), NULL},
    {"redis", "sentinel_password", "PC_REDIS_SENTINEL_PASSWORD", T_SECRET, R(sentinel_password),
     NULL},
    {"redis", "sentinel_password_file", "PC_REDIS_SENTINEL_PASSWORD_FILE", T_FILE,
     R(sentinel_password), NULL},
    {"redis", "command_timeout_ms", "PC_REDIS_TIMEOUT_MS", T_UINT, R(command_timeout_ms), "2000"},
    {"redis", "min_replicas_acks", "PC_REDIS_MIN_REPLICAS_ACKS", T_UINT, R(min_replicas_acks), "0"},
    {"redis", "lease_ms", "PC_LEASE_MS", T_UINT, R(lease_ms), "30000"},
    {"redis", "retention_hours", "PC_RETENTION_HOURS", T_UINT, R(retention_hours), "168"},
    {"worker", "import_key_file", "PC_IMPORT_KEY_FILE", T_STR, W(import_key_file), NULL},
    {"worker", "import_key_id", "PC_IMPORT_KEY_ID", T_STR, W(import_key_id), "import-1"},
    /* Imported PFX files choose their own key-derivation work; these bound it (pfx.h). 100000
     * iterations is 50x what Windows (2000) and OpenSSL 3 (2048) write and 10x Java's. */
    {"worker", "pfx_max_iterations", "PC_PFX_MAX_ITERATIONS", T_UINT, W(pfx_max_iterations),
     "100000"},
    {"worker", "pfx_max_bytes", "PC_PFX_MAX_BYTES", T_UINT, W(pfx_max_bytes), "65536"},
    {"worker", "pfx_max_bags", "PC_PFX_MAX_BAGS", T_UINT, W(pfx_max_bags), "32"},
    {"worker", "pfx_max_certs", "PC_PFX_MAX_CERTS", T_UINT, W(pfx_max_certs), "16"},
    {"worker", "http_max_connections", "PC_HTTP_MAX_CONNECTIONS", T_UINT, W(http_max_connections),
     "64"},
    {"worker", "http_timeout_ms", "PC_HTTP_TIMEOUT_MS", T_UINT, W(http_timeout_ms), "5000"},
    {"coordinator", "http_host", "PC_COORDINATOR_HOST", T_STR, C(http_host), "127.0.0.1"},
    {"coordinator", "http_port", "PC_COORDINATOR_PORT", T_UINT, C(http_port), "9470"},
    {"coordinator", "topic_partitions", "PC_TOPIC_PARTITIONS", T_UINT, C(topic_partitions), "128"},
    {"coordinator", "results_partitions", "PC_RESULTS_PARTITIONS", T_UINT, C(results_partitions),
     "16"},
    {"coordinator", "topic_replication", "PC_TOPIC_REPLICATION", T_UINT, C(topic_replication), "1"},
    {"coordinator", "topic_retention_hours", "PC_TOPIC_RETENTION_HOURS", T_UINT,
     C(topic_retention_hours), "168"},
    {"coordinator", "audit_retention_hours", "PC_AUDIT_RETENTION_HOURS", T_UINT,
     C(audit_retention_hours), "8760"},
    {"coordinator", "notice_interval_ms", "PC_NOTICE_INTERVAL_MS", T_UINT, C(notice_interval_ms),
     "60000"},
    {"coordinator", "expiry_notice_days", "PC_EXPIRY_NOTICE_DAYS", T_UINT, C(expiry_notice_days),
     "14"},
    {"coordinator", "supersede_grace_s", "PC_SUPERSEDE_GRACE_S", T_UINT, C(supersede_grace_s),
     "600"},
    {"coordinator", "http_max_connections", "PC_COORDINATOR_MAX_CONNECTIONS", T_UINT,
     C(http_max_connections), "256"},
    {"coordinator", "http_timeout_ms", "PC_COORDINATOR_TIMEOUT_MS", T_UINT, C(http_timeout_ms),
     "5000"},
    {"coordinator", "admin_token_file", "PC_ADMIN_TOKEN_FILE", T_STR, C(admin_token_file), NULL},
    {"coordinator", "degraded_lag", "PC_DEGRADED_LAG", T_UINT, C(degraded_lag), "1000"},
};

static pc_err_t set_text(pc_config_t *cfg, const setting_t *s, const char *text, const char *origin,
                         pc_diag_t *diag)
{
    void *field = (char *)cfg + s->offset;
    if (s->type == T_STR || s->type == T_SECRET) {
        char **dst = field;
        if (*dst != NULL && s->type == T_SECRET)
            OPENSSL_cleanse(*dst, strlen(*dst));
        free(*dst);
        *dst = strdup(text);
        return *dst == NULL ? pc_fail(diag, PC_ERR_NOMEM, "out of memory") : PC_OK;
    }
    if (s->type == T_BOOL) {
        bool yes = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        if (!yes && strcmp(text, "false") != 0 && strcmp(text, "0") != 0)
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: %s.%s must be true or false", origin,
                           s->section, s->name);
        *(bool *)field = yes;
        return PC_OK;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v > 100000000UL || text[0] == '-')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: %s.%s must be a whole number, got \"%s\"",
                       origin, s->section, s->name, text);
    *(unsigned *)field = (unsigned)v;
    return PC_OK;
}

static pc_err_t set_json(pc_config_t *cfg, const setting_t *s, json_t *v, pc_diag_t *diag)
{
    char buf[32];
    if (json_is_null(v))
        return PC_OK;
    if ((s->type == T_STR || s->type == T_SECRET) && json_is_string(v))
        return set_text(cfg, s, json_string_value(v), "config", diag);
    if (s->type == T_UINT && json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return set_text(cfg, s, buf, "config", diag);
    }
    if (s->type == T_BOOL && json_is_boolean(v))
        return set_text(cfg, s, json_is_true(v) ? "true" : "false", "config", diag);
    if (s->type == T_FILE && json_is_string(v))
        return PC_OK; /* read by apply_file */
    return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: %s.%s must be a %s", s->section, s->name,
                   s->type == T_UINT   ? "whole number"
                   : s->type == T_BOOL ? "boolean"
                                       : "string");
}

static bool known(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].name, name) == 0)
            return true;
    return false;
}

static pc_err_t check_section(json_t *root, const char *section, pc_diag_t *diag)
{
    json_t *obj = json_object_get(root, section);
    const char *key;
    json_t *v;
    if (obj == NULL)
        return PC_OK;
    if (!json_is_object(obj))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: %s must be an object", section);
    json_object_foreach(obj, key, v)
    {
        if (!known(section, key))
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: unknown setting %s.%s", section,
                           key);
    }
    return PC_OK;
}

/* apply_file reads the secret from the file a T_FILE row names (the environment's over the
 * configuration's). Naming the secret twice, once as text and once as a file, is refused: which
 * one wins would be a guess. */
static pc_err_t apply_file(pc_config_t *cfg, const setting_t *s, json_t *v, pc_diag_t *diag)
{
    char **dst = (char **)((char *)cfg + s->offset);
    const char *path = getenv(s->env) != NULL ? getenv(s->env) : json_string_value(v);
    unsigned char *data = NULL;
    size_t len = 0;
    if (path == NULL)
        return PC_OK;
    if (*dst != NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s.%s and %s.%.*s are both set; keep one of them", s->section, s->name,
                       s->section, (int)(strlen(s->name) - strlen("_file")), s->name);
    pc_err_t err = pc_file_read(path, 4096, &data, &len, diag);
    if (err != PC_OK) {
        char where[80];
        snprintf(where, sizeof(where), "%s.%s", s->section, s->name);
        pc_diag_prefix(diag, where);
        return err;
    }
    /* the first line: a file written by echo or an editor ends with a newline */
    len = strcspn((char *)data, "\r\n");
    OPENSSL_cleanse(data + len, strlen((char *)data + len));
    if (len == 0) {
        free(data);
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s.%s: %s is empty; write the secret in it",
                       s->section, s->name, path);
    }
    *dst = (char *)data;
    return PC_OK;
}

static pc_err_t apply_one(pc_config_t *cfg, const setting_t *s, json_t *root, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    json_t *v = json_object_get(json_object_get(root, s->section), s->name);
    if (s->type == T_FILE) {
        if (v != NULL && !json_is_null(v) && (err = set_json(cfg, s, v, diag)) != PC_OK)
            return err;
        return apply_file(cfg, s, v, diag);
    }
    if (s->def != NULL)
        err = set_text(cfg, s, s->def, "default", diag);
    if (err == PC_OK && v != NULL)
        err = set_json(cfg, s, v, diag);
    if (err == PC_OK && getenv(s->env) != NULL) {
        char origin[80];
        snprintf(origin, sizeof(origin), "environment %s", s->env);
        err = set_text(cfg, s, getenv(s->env), origin, diag);
    }
    return err;
}

/* Limits that must be at least 1: 0 would refuse everything, never "no limit". */
static const struct {
    const char *name;
    size_t offset;
} at_least_one[] = {
    {"worker.pfx_max_iterations", W(pfx_max_iterations)},
    {"worker.pfx_max_bytes", W(pfx_max_bytes)},
    {"worker.pfx_max_bags", W(pfx_max_bags)},
    {"worker.pfx_max_certs", W(pfx_max_certs)},
    {"worker.http_max_connections", W(http_max_connections)},
    {"worker.http_timeout_ms", W(http_timeout_ms)},
    {"coordinator.http_max_connections", C(http_max_connections)},
    {"coordinator.http_timeout_ms", C(http_timeout_ms)},
};

static pc_err_t check_bounds(const pc_config_t *cfg, pc_diag_t *diag)
{
    for (size_t i = 0; i < sizeof(at_least_one) / sizeof(at_least_one[0]); i++)
        if (*(const unsigned *)((const char *)cfg + at_least_one[i].offset) == 0)
            return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s must be at least 1",
                           at_least_one[i].name);
    if (cfg->worker.pfx_max_bytes > PC_MAX_PFX_LEN)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "worker.pfx_max_bytes is %u, over the %u bytes a request may carry; set "
                       "it to %u or less",
                       cfg->worker.pfx_max_bytes, PC_MAX_PFX_LEN, PC_MAX_PFX_LEN);
    return PC_OK;
}

static pc_err_t derived_defaults(pc_config_t *cfg, pc_diag_t *diag)
{
    pc_config_worker_t *w = &cfg->worker;
    if (w->id == NULL) {
        char host[256] = "worker", id[320];
        gethostname(host, sizeof(host) - 1);
        snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
        if ((w->id = strdup(id)) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    if (w->max_in_flight == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "worker.max_in_flight must be at least 1");
    if (w->resume_below == 0 || w->resume_below > w->max_in_flight)
        w->resume_below = w->max_in_flight; /* holding is cheap: release as a slot frees */
    if (cfg->redis.lease_ms < 1000)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "redis.lease_ms must be at least 1000");
    if (w->max_instances == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "worker.max_instances must be at least 1");
    /* a request is refused once older than its age; until then its record answers a replay */
    uint64_t valid_s = (uint64_t)w->max_request_age_s + w->clock_skew_ms / 1000 + 1;
    if ((uint64_t)cfg->redis.retention_hours * 3600 < valid_s)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.retention_hours (%u) must keep request records at least as long as "
                       "a request stays valid (worker.max_request_age_s %u + worker.clock_skew_ms "
                       "%u): a replay after its record expired would be issued anew",
                       cfg->redis.retention_hours, w->max_request_age_s, w->clock_skew_ms);
    return check_bounds(cfg, diag);
}

/* string_list copies a JSON list of non-empty strings into a NULL-terminated array. */
static pc_err_t string_list(json_t *v, const char *what, char ***out, pc_diag_t *diag)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: %s must be a non-empty list of strings",
                       what);
    if ((*out = calloc(json_array_size(v) + 1, sizeof(**out))) == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *item = json_array_get(v, i);
        if (!json_is_string(item) || json_string_value(item)[0] == '\0')
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "config: %s must be a non-empty list of strings", what);
        if (((*out)[i] = strdup(json_string_value(item))) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    return PC_OK;
}

static void free_list(char **list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

static pc_err_t parse_signer(json_t *obj, pc_config_signer_t *s, pc_diag_t *diag)
{
    static const char *const names[] = {"id", "algorithm", "public_key_file", "secret_file"};
    char **fields[] = {&s->id, &s->algorithm, &s->public_key_file, &s->secret_file};
    static const char *const lists[] = {"tenants", "cas", "templates"};
    char ***list_fields[] = {&s->tenants, &s->cas, &s->templates};
    const char *key;
    json_t *v;
    if (!json_is_object(obj))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: each signer must be an object");
    json_object_foreach(obj, key, v)
    {
        size_t i = 0, l = 0;
        while (i < 4 && strcmp(key, names[i]) != 0)
            i++;
        while (l < 3 && strcmp(key, lists[l]) != 0)
            l++;
        if (l < 3) {
            char what[64];
            snprintf(what, sizeof(what), "signers[].%s", key);
            pc_err_t err = string_list(v, what, list_fields[l], diag);
            if (err != PC_OK)
                return err;
            continue;
        }
        if (i == 4 || !json_is_string(v))
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "config: signers[].%s is unknown or not a string", key);
        if ((*fields[i] = strdup(json_string_value(v))) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    if (s->id == NULL || s->algorithm == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: every signer needs id and algorithm");
    if (s->tenants == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "config: signer %s needs \"tenants\": the tenants it may act for (or "
                       "[\"*\"] for every tenant)",
                       s->id);
    return PC_OK;
}

static bool listed(char *const *list, const char *name)
{
    if (list == NULL)
        return true; /* not restricted */
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], "*") == 0 || strcmp(list[i], name) == 0)
            return true;
    return false;
}

const pc_config_signer_t *pc_config_signer(const pc_config_t *cfg, const char *id)
{
    for (size_t i = 0; id != NULL && i < cfg->signer_count; i++)
        if (strcmp(cfg->signers[i].id, id) == 0)
            return &cfg->signers[i];
    return NULL;
}

bool pc_config_signer_allows(const pc_config_signer_t *signer, const char *tenant, const char *ca,
                             const char *tmpl, pc_diag_t *diag)
{
    const char *what = NULL, *value = NULL, *setting = NULL;
    if (!listed(signer->tenants, tenant != NULL ? tenant : ""))
        what = "tenant", value = tenant, setting = "tenants";
    else if (ca != NULL && ca[0] != '\0' && !listed(signer->cas, ca))
        what = "CA", value = ca, setting = "cas";
    else if (tmpl != NULL && tmpl[0] != '\0' && !listed(signer->templates, tmpl))
        what = "template", value = tmpl, setting = "templates";
    if (what == NULL)
        return true;
    pc_fail(diag, PC_ERR_UNAUTHENTICATED,
            "signer %s may not act for %s \"%s\" (its \"%s\" in the workers' configuration)",
            signer->id, what, value, setting);
    return false;
}

static pc_err_t parse_signers(pc_config_t *cfg, json_t *list, pc_diag_t *diag)
{
    if (list == NULL)
        return PC_OK;
    if (!json_is_array(list))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "config: signers must be a list");
    cfg->signers = calloc(json_array_size(list) + 1, sizeof(*cfg->signers));
    if (cfg->signers == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(list); i++) {
        cfg->signer_count = i + 1;
        pc_err_t err = parse_signer(json_array_get(list, i), &cfg->signers[i], diag);
        if (err != PC_OK)
            return err;
    }
    return PC_OK;
}

pc_err_t pc_config_settings_parse(pc_config_t *cfg, json_t *root, pc_diag_t *diag)
{
    pc_err_t err;
    if ((err = check_section(root, "worker", diag)) != PC_OK ||
        (err = check_section(root, "kafka", diag)) != PC_OK ||
        (err = check_section(root, "redis", diag)) != PC_OK ||
        (err = check_section(root, "coordinator", diag)) != PC_OK)
        return err;
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if ((err = apply_one(cfg, &settings[i], root, diag)) != PC_OK)
            return err;
    if ((err = derived_defaults(cfg, diag)) != PC_OK ||
        (err = parse_signers(cfg, json_object_get(root, "signers"), diag)) != PC_OK)
        return err;
    if (cfg->worker.allow_unsigned && cfg->signer_count > 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "worker.allow_unsigned is for a test cluster without signers: with signers "
                       "configured every request must be signed (remove one or the other)");
    return PC_OK;
}

pc_kafka_security_t pc_config_kafka_security(const pc_config_t *cfg)
{
    const pc_config_kafka_t *k = &cfg->kafka;
    return (pc_kafka_security_t){
        .protocol = k->security_protocol,
        .ssl_ca_file = k->ssl_ca_file,
        .ssl_cert_file = k->ssl_cert_file,
        .ssl_key_file = k->ssl_key_file,
        .ssl_key_password = k->ssl_key_password,
        .no_hostname_check = !k->ssl_verify_hostname,
        .sasl_mechanism = k->sasl_mechanism,
        .sasl_username = k->sasl_username,
        .sasl_password = k->sasl_password,
    };
}

pc_redis_config_t pc_config_redis(const pc_config_t *cfg)
{
    return (pc_redis_config_t){
        .host = cfg->redis.host,
        .port = (int)cfg->redis.port,
        .username = cfg->redis.username,
        .password = cfg->redis.password,
        .sentinels = cfg->redis.sentinels,
        .master_name = cfg->redis.master_name,
        .sentinel_password = cfg->redis.sentinel_password,
        .min_replicas_acks = cfg->redis.min_replicas_acks,
        .command_timeout_ms = cfg->redis.command_timeout_ms,
    };
}

void pc_config_settings_clear(pc_config_t *cfg)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (settings[i].type != T_STR && settings[i].type != T_SECRET)
            continue;
        char **field = (char **)((char *)cfg + settings[i].offset);
        if (*field != NULL && settings[i].type == T_SECRET)
            OPENSSL_cleanse(*field, strlen(*field));
        free(*field);
        *field = NULL;
    }
    for (size_t i = 0; i < cfg->signer_count; i++) {
        free(cfg->signers[i].id);
        free(cfg->signers[i].algorithm);
        free(cfg->signers[i].public_key_file);
        free(cfg->signers[i].secret_file);
        free_list(cfg->signers[i].tenants);
        free_list(cfg->signers[i].cas);
        free_list(cfg->signers[i].templates);
    }
    free(cfg->signers);
    cfg->signers = NULL;
    cfg->signer_count = 0;
}
