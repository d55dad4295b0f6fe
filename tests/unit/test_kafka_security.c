/*
 * test_kafka_security.c - unit tests for kafka_security.c: the kafka.* security settings become
 * the librdkafka properties a client then uses (read back from the configuration), settings
 * that contradict each other are refused naming the setting (PLAIN without TLS above all), no
 * password ever appears in an error, and librdkafka's errors are told apart: refused
 * credentials and untrusted certificates stop a program, a broker that is away does not.
 * Main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <cmocka.h>

#include <string.h>

#include "kafka_security.h"

#define PASSWORD "s3cret-Scram-pass"

/* prop returns librdkafka's value of name in conf ("" when unset), in a static buffer. */
static const char *prop(rd_kafka_conf_t *conf, const char *name)
{
    static char value[512];
    size_t size = sizeof(value);
    if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK)
        value[0] = '\0';
    return value;
}

/* apply runs pc_kafka_security_apply on a new configuration, kept in *conf (NULL: freed). */
static pc_err_t apply(const pc_kafka_security_t *sec, rd_kafka_conf_t **conf, pc_diag_t *diag)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    memset(diag, 0, sizeof(*diag));
    pc_err_t err = pc_kafka_security_apply(c, sec, diag);
    if (conf != NULL)
        *conf = c;
    else
        rd_kafka_conf_destroy(c);
    return err;
}

static void test_plaintext_by_default(void **state)
{
    (void)state;
    rd_kafka_conf_t *conf;
    pc_diag_t diag;
    assert_int_equal(apply(NULL, &conf, &diag), PC_OK);
    assert_string_equal(prop(conf, "security.protocol"), "plaintext");
    rd_kafka_conf_destroy(conf);
    pc_kafka_security_t empty = {0};
    assert_int_equal(apply(&empty, &conf, &diag), PC_OK);
    assert_string_equal(prop(conf, "security.protocol"), "plaintext");
    rd_kafka_conf_destroy(conf);
}

static void test_sasl_ssl_sets_everything(void **state)
{
    (void)state;
    pc_kafka_security_t sec = {.protocol = "SASL_SSL",
                               .ssl_ca_file = "/etc/pkcs/kafka-ca.pem",
                               .sasl_username = "pkcs",
                               .sasl_password = PASSWORD};
    rd_kafka_conf_t *conf;
    pc_diag_t diag;
    assert_int_equal(apply(&sec, &conf, &diag), PC_OK);
    assert_string_equal(prop(conf, "security.protocol"), "sasl_ssl");
    assert_string_equal(prop(conf, "ssl.ca.location"), "/etc/pkcs/kafka-ca.pem");
    assert_string_equal(prop(conf, "sasl.mechanisms"), "SCRAM-SHA-512"); /* the default */
    assert_string_equal(prop(conf, "sasl.username"), "pkcs");
    assert_string_equal(prop(conf, "sasl.password"), PASSWORD);
    assert_string_equal(prop(conf, "enable.ssl.certificate.verification"), "true");
    assert_string_equal(prop(conf, "ssl.endpoint.identification.algorithm"), "https");
    rd_kafka_conf_destroy(conf);

    sec.no_hostname_check = true;
    sec.sasl_mechanism = "scram-sha-256";
    assert_int_equal(apply(&sec, &conf, &diag), PC_OK);
    assert_string_equal(prop(conf, "ssl.endpoint.identification.algorithm"), "none");
    assert_string_equal(prop(conf, "sasl.mechanisms"), "SCRAM-SHA-256");
    rd_kafka_conf_destroy(conf);
}

static void test_plain_only_inside_tls(void **state)
{
    (void)state;
    pc_kafka_security_t sec = {.protocol = "sasl_plaintext",
                               .sasl_mechanism = "PLAIN",
                               .sasl_username = "pkcs",
                               .sasl_password = PASSWORD};
    pc_diag_t diag;
    assert_int_equal(apply(&sec, NULL, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "PLAIN sends the password in the clear"));
    assert_non_null(strstr(diag.msg, "sasl_ssl"));
    assert_null(strstr(diag.msg, PASSWORD));

    sec.protocol = "sasl_ssl";
    assert_int_equal(apply(&sec, NULL, &diag), PC_OK);
    sec.protocol = "sasl_plaintext"; /* SCRAM never sends the password itself */
    sec.sasl_mechanism = "SCRAM-SHA-512";
    assert_int_equal(apply(&sec, NULL, &diag), PC_OK);
}

static void test_contradictions_refused(void **state)
{
    (void)state;
    static const struct {
        pc_kafka_security_t sec;
        const char *names; /* the setting the message must name */
    } cases[] = {
        {{.protocol = "tls"}, "kafka.security_protocol \"tls\" is unknown"},
        {{.protocol = "plaintext", .sasl_username = "pkcs", .sasl_password = PASSWORD},
         "kafka.sasl_username is set but kafka.security_protocol is plaintext"},
        {{.protocol = "ssl", .sasl_password = PASSWORD},
         "kafka.sasl_password is set but kafka.security_protocol is ssl"},
        {{.protocol = "sasl_plaintext",
          .ssl_ca_file = "ca.pem",
          .sasl_username = "u",
          .sasl_password = PASSWORD},
         "kafka.ssl_ca_file is set but kafka.security_protocol is sasl_plaintext"},
        {{.protocol = "ssl", .ssl_cert_file = "client.pem"},
         "kafka.ssl_cert_file and kafka.ssl_key_file go together"},
        {{.protocol = "ssl", .ssl_key_password = PASSWORD}, "kafka.ssl_key_password is set"},
        {{.protocol = "sasl_ssl", .sasl_username = "pkcs"}, "the password is missing"},
        {{.protocol = "sasl_ssl", .sasl_password = PASSWORD}, "the user name is missing"},
        {{.protocol = "sasl_ssl",
          .sasl_mechanism = "GSSAPI",
          .sasl_username = "u",
          .sasl_password = PASSWORD},
         "kafka.sasl_mechanism \"GSSAPI\" is not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pc_diag_t diag;
        assert_int_equal(apply(&cases[i].sec, NULL, &diag), PC_ERR_INVALID_PARAM);
        if (strstr(diag.msg, cases[i].names) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, diag.msg, cases[i].names);
        assert_null(strstr(diag.msg, PASSWORD));
    }
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        int err;
        const char *reason;
        const char *says; /* NULL: not a refusal */
    } cases[] = {
        {RD_KAFKA_RESP_ERR__AUTHENTICATION,
         "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed "
         "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
         "(after 354ms in state AUTH_REQ)",
         "Kafka refused our credentials: check kafka.sasl_username and kafka.sasl_password"},
        {RD_KAFKA_RESP_ERR__SSL,
         "sasl_ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL "
         "routines::certificate verify failed: broker certificate could not be verified (after "
         "20ms in state SSL_HANDSHAKE)",
         "certificate is not trusted: set kafka.ssl_ca_file"},
        {RD_KAFKA_RESP_ERR__SSL,
         "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A00010B:SSL "
         "routines::wrong version number",
         "does not speak TLS there: check kafka.security_protocol"},
        {RD_KAFKA_RESP_ERR__SSL,
         "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000412:SSL "
         "routines::sslv3 alert bad certificate",
         "refused the TLS handshake: check kafka.ssl_cert_file"},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "Not authorized to access topics",
         "grant kafka.sasl_username"},
        /* a broker away, or restarting mid-handshake: librdkafka's retries are right */
        {RD_KAFKA_RESP_ERR__TRANSPORT,
         "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 "
         "failed: Connection refused",
         NULL},
        {RD_KAFKA_RESP_ERR__SSL,
         "ssl://127.0.0.1:9093/1: SSL transport error: Connection reset "
         "by peer (certificate verify failed earlier?)",
         NULL},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", NULL},
        {RD_KAFKA_RESP_ERR__TIMED_OUT, "SSL handshake failed: alert in a timeout?", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pc_diag_t diag = {{0}};
        bool refused = pc_kafka_refusal(cases[i].err, cases[i].reason, &diag);
        if (refused != (cases[i].says != NULL))
            fail_msg("case %zu: refusal %d, want %d", i, refused, cases[i].says != NULL);
        if (cases[i].says == NULL) {
            assert_string_equal(diag.msg, "");
            continue;
        }
        if (strstr(diag.msg, cases[i].says) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, diag.msg, cases[i].says);
        assert_null(strstr(diag.msg, "(after ")); /* librdkafka's timing is left out */
    }
    pc_diag_t diag = {{0}};
    assert_true(pc_kafka_refusal(RD_KAFKA_RESP_ERR__AUTHENTICATION, NULL, &diag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext_by_default),
        cmocka_unit_test(test_sasl_ssl_sets_everything),
        cmocka_unit_test(test_plain_only_inside_tls),
        cmocka_unit_test(test_contradictions_refused),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
