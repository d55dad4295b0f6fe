/*
 * kafka_security.h - how every Kafka client of the project (the worker's consumer and producer,
 * the coordinator's admin handle, pkcsctl's clients) encrypts and authenticates its
 * connections: TLS with the brokers' CA, optional client certificates, SASL SCRAM or PLAIN. One
 * function applies the settings to a librdkafka configuration, one tells an error that will
 * never heal by itself (refused credentials, an untrusted broker) from a broker being away.
 * Any thread; no state.
 */
#ifndef PC_KAFKA_SECURITY_H
#define PC_KAFKA_SECURITY_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "pc_err.h"

/* The kafka.* security settings, strings borrowed. Zeroed means plaintext, no authentication.
 */
typedef struct pc_kafka_security {
    const char *protocol;         /* "plaintext" (NULL), "ssl", "sasl_ssl", "sasl_plaintext" */
    const char *ssl_ca_file;      /* PEM CA(s) that signed the brokers' certificates; NULL:
                                   * the system's trust store */
    const char *ssl_cert_file;    /* PEM client certificate (mutual TLS); needs ssl_key_file */
    const char *ssl_key_file;     /* PEM private key of ssl_cert_file */
    const char *ssl_key_password; /* when ssl_key_file is encrypted */
    bool no_hostname_check;       /* true: do not match the broker's name against its
                                   * certificate (kafka.ssl_verify_hostname false) */
    const char *sasl_mechanism;   /* "SCRAM-SHA-512" (NULL), "SCRAM-SHA-256", "PLAIN" */
    const char *sasl_username;
    const char *sasl_password;
} pc_kafka_security_t;

/* pc_kafka_security_apply checks sec (NULL: plaintext) and sets librdkafka's security.protocol,
 * ssl.* and sasl.* properties on conf. Settings that contradict each other are refused rather
 * than ignored: TLS files or SASL credentials with a protocol that does not use them, a
 * certificate without its key, SASL without a user name or password, and PLAIN over
 * sasl_plaintext (the password would cross the network in the clear). PC_ERR_INVALID_PARAM with
 * diag naming the kafka.* setting to fix; the password never appears in diag. */
pc_err_t pc_kafka_security_apply(rd_kafka_conf_t *conf, const pc_kafka_security_t *sec,
                                 pc_diag_t *diag);

/* pc_kafka_refusal tells whether an error librdkafka reported (its error callback's err and
 * reason) means the brokers refuse us, or we refuse them, for good: failed SASL
 * authentication, a broker certificate that does not verify, a failed TLS handshake. librdkafka
 * retries those forever; a program should stop and say what to fix. true fills diag with a
 * sentence naming the kafka.* settings to check; false (a broker down, a timeout) leaves diag
 * alone. */
bool pc_kafka_refusal(int err, const char *reason, pc_diag_t *diag);

#endif
