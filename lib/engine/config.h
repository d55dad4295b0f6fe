/*
 * config.h - the connector's configuration: one JSON file plus environment overrides, every
 * setting with a default that works for the local stack. Read once at start (main thread).
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include <jansson.h>

#include "ca.h"
#include "kafka_security.h"
#include "keygen.h"
#include "pc_err.h"
#include "redis.h"

typedef struct pc_config_ca {
    char *name;           /* "local" */
    char *type;           /* "local" or "cfssl" */
    char *state_dir;      /* default: <state_dir>/ca/<name> */
    char *cert_file;      /* optional PEM */
    char *key_file;       /* optional PEM, encrypted */
    char *key_passphrase; /* from key_passphrase, key_passphrase_file or PC_CA_KEY_PASSPHRASE */
    char *subject;        /* of a generated CA */
    char *crl_url;
    char *aia_url;
    char *ocsp_url;   /* AIA OCSP URL put in issued certificates (local CA) */
    char *key_uri;    /* the CA key in a PKCS#11 token (RFC 7512), instead of key_file */
    char *key_pin;    /* the token's PIN, from key_pin_file; wiped when freed */
    char *key_module; /* the PKCS#11 module; default the engine's (p11-kit) */
    pc_ca_template_t **templates;
    size_t template_count;
    /* type "cfssl": a remote cfssl serve */
    char *url;           /* https://host:port (http:// only with allow_http) */
    bool allow_http;     /* accept a plain http:// url (a cfssl on this host); default false */
    bool client_serials; /* we pick each serial (ClientProvidesSerialNumbers); default false */
    char *auth_key_hex;  /* from auth_key_file (hex); NULL: unauthenticated /sign */
    char *label;
    char *ca_bundle, *client_cert, *client_key;
    unsigned connect_timeout_ms, total_timeout_ms, max_concurrent, attempts;
    unsigned retry_base_ms, retry_max_ms;
    unsigned breaker_threshold, breaker_cooldown_ms;
    char **profile_templates; /* template name -> cfssl profile name, profile_count pairs */
    char **profile_names;
    size_t profile_count;
} pc_config_ca_t;

/* One upstream signing key the workers accept (see auth.h). */
typedef struct pc_config_signer {
    char *id;
    char *algorithm;       /* "ed25519", "ecdsa-p256-sha256", "hmac-sha256" */
    char *public_key_file; /* PEM, for ed25519 / ecdsa */
    char *secret_file;     /* for hmac-sha256 */
    /* What it may act for (pc_config_signer_allows): tenants (required; "*" = every tenant),
     * CAs and templates (absent = any). NULL-terminated lists. */
    char **tenants, **cas, **templates;
} pc_config_signer_t;

/* The scalar settings, one struct per section of the file; see the settings table in
 * config_settings.c for the JSON names, environment variables and defaults. */

/* "kafka": the brokers and topics, for every process that talks to Kafka. */
typedef struct pc_config_kafka {
    char *brokers;               /* default 127.0.0.1:9092 */
    char *group_id;              /* default pkcs-workers */
    char *group_instance_id;     /* static membership, default none */
    char *requests_topic;        /* default pkcs.requests */
    char *results_topic;         /* default pkcs.results */
    char *dlq_topic;             /* default pkcs.requests.dlq */
    char *audit_topic;           /* default pkcs.audit; "" = no audit records to Kafka */
    char *notices_topic;         /* default pkcs.notices (renewal and expiry notices) */
    unsigned session_timeout_ms; /* default 10000 */
    /* security, for every Kafka client (see kafka_security.h) */
    char *security_protocol;  /* plaintext (default), ssl, sasl_ssl, sasl_plaintext */
    char *ssl_ca_file;        /* default none: the system's trust store */
    char *ssl_cert_file;      /* client certificate, default none */
    char *ssl_key_file;       /* its key, default none */
    char *ssl_key_password;   /* wiped when freed; also ssl_key_password_file */
    bool ssl_verify_hostname; /* default true */
    char *sasl_mechanism;     /* default SCRAM-SHA-512 */
    char *sasl_username;      /* default none */
    char *sasl_password;      /* wiped when freed; also sasl_password_file */
} pc_config_kafka_t;

/* "redis": the cluster's Redis, and how long what the workers keep there lives. */
typedef struct pc_config_redis {
    char *host;                  /* default 127.0.0.1 */
    unsigned port;               /* default 6379 */
    char *username;              /* ACL user, default none (the default user) */
    char *password;              /* default none; wiped when freed; also password_file */
    char *sentinels;             /* "host:port,host:port": find the master through Sentinel */
    char *master_name;           /* the name the sentinels monitor it under */
    char *sentinel_password;     /* default none; wiped when freed; also sentinel_password_file */
    unsigned command_timeout_ms; /* default 2000 */
    unsigned min_replicas_acks;  /* durable writes wait for this many replicas, default 0 */
    unsigned lease_ms;           /* default 30000 */
    unsigned retention_hours;    /* cached results kept, default 168 */
} pc_config_redis_t;

/* "worker": one pkcs-worker process. */
typedef struct pc_config_worker {
    char *id;                   /* default: host name + "-" + pid */
    unsigned max_in_flight;     /* requests in the pipeline at once, default 64 */
    unsigned resume_below;      /* resume intake below this, default max_in_flight */
    unsigned threadpool_size;   /* 0 = number of cores */
    unsigned max_instances;     /* cluster limit, default 100 */
    unsigned heartbeat_ms;      /* default 3000 */
    unsigned heartbeat_ttl_ms;  /* default 10000 */
    unsigned drain_timeout_ms;  /* SIGTERM: finish in-flight work within this, default 30000 */
    char *http_host;            /* default 127.0.0.1 */
    unsigned http_port;         /* default 9464; 0 = any free port */
    char *log_level;            /* default info */
    unsigned key_pool_size;     /* pre-generated keys per algorithm, default 16; 0 = off */
    char *key_pool_algorithms;  /* comma-separated, default "RSA-2048" */
    unsigned retry_min_ms;      /* backoff for retryable failures, default 200 */
    unsigned retry_max_ms;      /* default 10000 */
    unsigned retry_limit_ms;    /* a CA that keeps failing: FAILED (retryable) after, default
                                 * 300000; the request's deadline, when sooner, ends it first */
    unsigned degraded_after_ms; /* a request retrying this long makes the worker degraded,
                                 * default 30000 */
    bool allow_unsigned;        /* accept requests without signature: tests only, default false */
    unsigned max_request_age_s; /* older requests are refused (replays), default 259200 (72 h) */
    unsigned clock_skew_ms;     /* createdAtMs may be this far ahead, default 300000 */
    char *result_key_file;      /* the cluster's result-signing key (PEM, mode 0600); none:
                                 * results go out unsigned */
    char *result_key_id;        /* its id, default "results-1" */
    char *result_key_algorithm; /* "ed25519" (default) or "ecdsa-p256-sha256" */
    char *import_key_file;      /* PEM private key for IMPORT_PFX passwords, default none */
    char *import_key_id;        /* its id, default "import-1" */
    /* bounds on an imported PFX, checked before any key derivation (see pfx.h) */
    unsigned pfx_max_iterations;   /* per MAC or PBE, default 100000 */
    unsigned pfx_max_bytes;        /* default 65536; at most the wire's PC_MAX_PFX_LEN */
    unsigned pfx_max_bags;         /* default 32 */
    unsigned pfx_max_certs;        /* default 16 */
    unsigned http_max_connections; /* default 64 */
    unsigned http_timeout_ms;      /* to send a request head, and to read the answer; 5000 */
} pc_config_worker_t;

/* "coordinator": the control plane's HTTP port, who may use its write endpoints, and the topics
 * it creates. */
typedef struct pc_config_coordinator {
    char *http_host;                /* default 127.0.0.1 */
    unsigned http_port;             /* default 9470 */
    unsigned topic_partitions;      /* default 128 */
    unsigned results_partitions;    /* results and audit topics: at most this many, default 16
                                     * (0: topic_partitions) */
    unsigned topic_replication;     /* default 1 */
    unsigned topic_retention_hours; /* default 168 */
    unsigned audit_retention_hours; /* the audit topic's, default 8760 (a year) */
    unsigned notice_interval_ms;    /* how often what is due is looked for, default 60000 */
    unsigned expiry_notice_days;    /* expiry notices this long ahead, default 14 */
    unsigned supersede_grace_s;     /* a superseded certificate its renewal's worker has not
                                     * revoked after this is revoked by a coordinator, default
                                     * 600 */
    unsigned http_max_connections;  /* default 256 */
    unsigned http_timeout_ms;       /* default 5000 */
    char *admin_token_file;         /* bearer token for write endpoints; none: they are refused */
    unsigned degraded_lag;          /* lag of a worker's partitions that is Degraded (1000) */
} pc_config_coordinator_t;

typedef struct pc_config {
    char *state_dir;              /* default "./state"; env PC_STATE_DIR */
    pc_keygen_mode_t keygen_mode; /* "fast" (default) or "provider"; env PC_KEYGEN_MODE */
    pc_config_ca_t *cas;
    size_t ca_count;
    pc_config_kafka_t kafka;
    pc_config_redis_t redis;
    pc_config_worker_t worker;
    pc_config_coordinator_t coordinator;
    pc_config_signer_t *signers;
    size_t signer_count;
} pc_config_t;

/* pc_config_signer finds the signer with key id, NULL when none has it. */
const pc_config_signer_t *pc_config_signer(const pc_config_t *cfg, const char *id);

/* pc_config_signer_allows tells whether signer may act for tenant, and (when not NULL) for CA
 * ca and template tmpl; false with diag naming what it may not do and the setting to change. */
bool pc_config_signer_allows(const pc_config_signer_t *signer, const char *tenant, const char *ca,
                             const char *tmpl, pc_diag_t *diag);

/* pc_config_settings_parse fills the kafka, redis, worker and coordinator sections of cfg from
 * the objects of those names in root (any may be missing), then PC_* environment overrides,
 * then defaults; and cfg->signers from "signers". Called by pc_config_load. */
pc_err_t pc_config_settings_parse(pc_config_t *cfg, json_t *root, pc_diag_t *diag);

/* pc_config_settings_clear frees what pc_config_settings_parse filled, wiping secrets. */
void pc_config_settings_clear(pc_config_t *cfg);

/* pc_config_load reads path (NULL: defaults only), applies environment overrides and fills in
 * defaults: a local CA named "local" with templates User, Device and SMIME when no CA is
 * configured. Unknown keys are errors (a typo must not be silently ignored). *out is the
 * caller's (pc_config_free). */
pc_err_t pc_config_load(const char *path, pc_config_t **out, pc_diag_t *diag);

/* pc_config_redis is the redis section as the Redis clients take it (strings borrowed from
 * cfg). */
pc_redis_config_t pc_config_redis(const pc_config_t *cfg);

/* pc_config_kafka_security is the kafka section's security settings as pc_kafka_security_apply
 * takes them (strings borrowed from cfg). */
pc_kafka_security_t pc_config_kafka_security(const pc_config_t *cfg);

/* pc_config_free frees cfg (NULL allowed), wiping passphrases. */
void pc_config_free(pc_config_t *cfg);

#endif
