/*
 * kafka_security.c - the kafka.* security settings as librdkafka properties, and the errors
 * that mean "refused for good". Tables: the protocols (what each needs), the SASL mechanisms,
 * the refusals (error code, a phrase of librdkafka's text, the fix). Any thread; no state.
 *
 * Why refusals are ours to detect: librdkafka treats an authentication failure or an untrusted
 * broker certificate like a broker that is away and reconnects with backoff forever, so a
 * worker with a wrong password would look alive and do nothing. The phrases matched below are
 * librdkafka's and OpenSSL's own wording (librdkafka 2.0, OpenSSL 3); a phrase that changes in
 * a later version only turns a clear stop back into retries, never the reverse.
 */
#include "kafka_security.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct protocol {
    const char *name; /* as in kafka.security_protocol, also librdkafka's value */
    bool tls;
    bool sasl;
} protocol_t;

static const protocol_t protocols[] = {
    {"plaintext", false, false},
    {"ssl", true, false},
    {"sasl_ssl", true, true},
    {"sasl_plaintext", false, true},
};

/* PLAIN sends the password itself, so it is only accepted inside TLS; SCRAM proves knowledge of
 * it without sending it. GSSAPI and OAUTHBEARER need more than a user and a password. */
static const char *const mechanisms[] = {"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"};

static pc_err_t set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *setting,
                    pc_diag_t *diag)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "%s: librdkafka refuses %s: %s", setting, name,
                       errstr);
    return PC_OK;
}

static bool given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static pc_err_t find_protocol(const char *name, const protocol_t **out, pc_diag_t *diag)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
        if (strcasecmp(name, protocols[i].name) == 0) {
            *out = &protocols[i];
            return PC_OK;
        }
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "kafka.security_protocol \"%s\" is unknown; use plaintext, ssl, sasl_ssl or "
                   "sasl_plaintext",
                   name);
}

static pc_err_t check_unused(const pc_kafka_security_t *sec, const protocol_t *p, pc_diag_t *diag)
{
    const char *tls_setting = given(sec->ssl_ca_file)        ? "kafka.ssl_ca_file"
                              : given(sec->ssl_cert_file)    ? "kafka.ssl_cert_file"
                              : given(sec->ssl_key_file)     ? "kafka.ssl_key_file"
                              : given(sec->ssl_key_password) ? "kafka.ssl_key_password"
                                                             : NULL;
    const char *sasl_setting = given(sec->sasl_username)   ? "kafka.sasl_username"
                               : given(sec->sasl_password) ? "kafka.sasl_password"
                                                           : NULL;
    if (!p->tls && tls_setting != NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s is set but kafka.security_protocol is %s, which does not use TLS; set "
                       "kafka.security_protocol to ssl or sasl_ssl, or remove %s",
                       tls_setting, p->name, tls_setting);
    if (!p->sasl && sasl_setting != NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s is set but kafka.security_protocol is %s, which does not authenticate "
                       "with SASL; set kafka.security_protocol to sasl_ssl, or remove %s",
                       sasl_setting, p->name, sasl_setting);
    return PC_OK;
}

static pc_err_t apply_tls(rd_kafka_conf_t *conf, const pc_kafka_security_t *sec, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    if (given(sec->ssl_cert_file) != given(sec->ssl_key_file))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka.ssl_cert_file and kafka.ssl_key_file go together (a client "
                       "certificate and its private key); set both or neither");
    if (given(sec->ssl_key_password) && !given(sec->ssl_key_file))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka.ssl_key_password is set without kafka.ssl_key_file; set the key "
                       "file it opens, or remove the password");
    /* Verification stays on whatever librdkafka's default: a connection to a broker we cannot
     * authenticate would hand requests and private keys to whoever answers. */
    err = set(conf, "enable.ssl.certificate.verification", "true", "kafka", diag);
    if (err == PC_OK)
        err = set(conf, "ssl.endpoint.identification.algorithm",
                  sec->no_hostname_check ? "none" : "https", "kafka.ssl_verify_hostname", diag);
    if (err == PC_OK && given(sec->ssl_ca_file))
        err = set(conf, "ssl.ca.location", sec->ssl_ca_file, "kafka.ssl_ca_file", diag);
    if (err == PC_OK && given(sec->ssl_cert_file))
        err =
            set(conf, "ssl.certificate.location", sec->ssl_cert_file, "kafka.ssl_cert_file", diag);
    if (err == PC_OK && given(sec->ssl_key_file))
        err = set(conf, "ssl.key.location", sec->ssl_key_file, "kafka.ssl_key_file", diag);
    if (err == PC_OK && given(sec->ssl_key_password))
        err = set(conf, "ssl.key.password", sec->ssl_key_password, "kafka.ssl_key_password", diag);
    return err;
}

static pc_err_t apply_sasl(rd_kafka_conf_t *conf, const pc_kafka_security_t *sec,
                           const protocol_t *p, pc_diag_t *diag)
{
    const char *mech = given(sec->sasl_mechanism) ? sec->sasl_mechanism : mechanisms[0];
    const char *canonical = NULL;
    for (size_t i = 0; i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
        if (strcasecmp(mech, mechanisms[i]) == 0)
            canonical = mechanisms[i];
    if (canonical == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka.sasl_mechanism \"%s\" is not supported; use SCRAM-SHA-512, "
                       "SCRAM-SHA-256 or PLAIN (PLAIN only with sasl_ssl)",
                       mech);
    if (strcmp(canonical, "PLAIN") == 0 && !p->tls)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka.sasl_mechanism PLAIN sends the password in the clear, and "
                       "kafka.security_protocol %s has no TLS; use sasl_ssl, or SCRAM-SHA-512",
                       p->name);
    if (!given(sec->sasl_username) || !given(sec->sasl_password))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "kafka.security_protocol %s needs kafka.sasl_username and "
                       "kafka.sasl_password (or kafka.sasl_password_file); %s is missing",
                       p->name, given(sec->sasl_username) ? "the password" : "the user name");
    pc_err_t err = set(conf, "sasl.mechanisms", canonical, "kafka.sasl_mechanism", diag);
    if (err == PC_OK)
        err = set(conf, "sasl.username", sec->sasl_username, "kafka.sasl_username", diag);
    if (err == PC_OK)
        err = set(conf, "sasl.password", sec->sasl_password, "kafka.sasl_password", diag);
    return err;
}

pc_err_t pc_kafka_security_apply(rd_kafka_conf_t *conf, const pc_kafka_security_t *sec,
                                 pc_diag_t *diag)
{
    static const pc_kafka_security_t none = {0};
    const protocol_t *p = &protocols[0];
    pc_err_t err;
    if (sec == NULL)
        sec = &none;
    if (given(sec->protocol) && (err = find_protocol(sec->protocol, &p, diag)) != PC_OK)
        return err;
    if ((err = check_unused(sec, p, diag)) != PC_OK ||
        (err = set(conf, "security.protocol", p->name, "kafka.security_protocol", diag)) != PC_OK)
        return err;
    if (p->tls && (err = apply_tls(conf, sec, diag)) != PC_OK)
        return err;
    if (p->sasl && (err = apply_sasl(conf, sec, p, diag)) != PC_OK)
        return err;
    return PC_OK;
}

/* ---- refusals ---------------------------------------------------------------------------- */

typedef struct refusal {
    int err;            /* librdkafka's code; 0: any code */
    const char *phrase; /* in its reason text; NULL: any text */
    const char *fix;
} refusal_t;

/* First match wins: the specific phrases come before the catch-all codes. */
static const refusal_t refusals[] = {
    {0, "certificate verify failed",
     "the Kafka broker's certificate is not trusted: set kafka.ssl_ca_file to the CA that signed "
     "it, and check that kafka.brokers names the broker as its certificate does "
     "(kafka.ssl_verify_hostname)"},
    {0, "wrong version number",
     "the Kafka broker does not speak TLS there: check kafka.security_protocol against the "
     "broker's listener, and kafka.brokers"},
    {0, "alert",
     "the Kafka broker refused the TLS handshake: check kafka.ssl_cert_file and "
     "kafka.ssl_key_file (a client certificate the broker trusts) and kafka.security_protocol"},
    {RD_KAFKA_RESP_ERR__AUTHENTICATION, NULL,
     "Kafka refused our credentials: check kafka.sasl_username and kafka.sasl_password (and that "
     "the broker enables kafka.sasl_mechanism)"},
    {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, NULL,
     "Kafka refused our credentials: check kafka.sasl_username and kafka.sasl_password (and that "
     "the broker enables kafka.sasl_mechanism)"},
    {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, NULL,
     "Kafka denied access to a topic: grant kafka.sasl_username read and write on the topics"},
    {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, NULL,
     "Kafka denied access to the consumer group: grant kafka.sasl_username read on the group "
     "kafka.group_id"},
    {RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, NULL,
     "Kafka denied a cluster operation: grant kafka.sasl_username the cluster ACLs it needs "
     "(idempotent write; create for the coordinator)"},
};

bool pc_kafka_refusal(int err, const char *reason, pc_diag_t *diag)
{
    const char *text = reason != NULL ? reason : "";
    /* The phrases count only in a failed handshake: a connection reset (a broker restarting)
     * or a message's text is not a refusal. */
    bool handshake = (err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                      err == RD_KAFKA_RESP_ERR__AUTHENTICATION) &&
                     strstr(text, "SSL handshake failed") != NULL;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        const refusal_t *r = &refusals[i];
        if (r->err != 0 && r->err != err)
            continue;
        if (r->phrase != NULL && (!handshake || strstr(text, r->phrase) == NULL))
            continue;
        /* librdkafka's "(after N ms in state X)" only costs room in the one sentence */
        const char *after = strstr(text, " (after ");
        int len = after != NULL ? (int)(after - text) : (int)strlen(text);
        pc_fail(diag, PC_ERR_DEPENDENCY, "%s (librdkafka: %s: %.*s)", r->fix,
                rd_kafka_err2name(err), len, text);
        return true;
    }
    return false;
}
