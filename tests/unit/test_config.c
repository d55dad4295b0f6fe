/*
 * test_config.c - unit tests for the settings table (config_settings.c) where the transport's
 * security lives: secrets read from a file named by a "_file" setting or its variable (first
 * line only), a secret named twice refused, an empty or missing file refused naming the
 * setting, and the kafka section handed to the Kafka clients as pc_kafka_security_t. Files in
 * a temporary folder. Main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

typedef struct fixture {
    char dir[256];
    char config[300];
    char secret[300];
} fixture_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/test_config-XXXXXX", tmp);
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->config, sizeof(fx->config), "%s/config.json", fx->dir);
    snprintf(fx->secret, sizeof(fx->secret), "%s/secret", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    unlink(fx->config);
    unlink(fx->secret);
    rmdir(fx->dir);
    free(fx);
    unsetenv("PC_KAFKA_SASL_PASSWORD");
    unsetenv("PC_KAFKA_SASL_PASSWORD_FILE");
    return 0;
}

/* load writes json as the configuration file and loads it. */
static pc_err_t load(fixture_t *fx, const char *json, pc_config_t **cfg, pc_diag_t *diag)
{
    write_file(fx->config, json);
    memset(diag, 0, sizeof(*diag));
    return pc_config_load(fx->config, cfg, diag);
}

static void test_secret_from_file(void **state)
{
    fixture_t *fx = *state;
    char json[512];
    pc_config_t *cfg = NULL;
    pc_diag_t diag;
    write_file(fx->secret, "from-the-file\nsecond line is not part of it\n");
    snprintf(json, sizeof(json),
             "{\"kafka\": {\"security_protocol\": \"sasl_ssl\", \"sasl_username\": \"pkcs\","
             " \"sasl_password_file\": \"%s\", \"ssl_verify_hostname\": false}}",
             fx->secret);
    assert_int_equal(load(fx, json, &cfg, &diag), PC_OK);
    assert_string_equal(cfg->kafka.sasl_password, "from-the-file");
    pc_kafka_security_t sec = pc_config_kafka_security(cfg);
    assert_string_equal(sec.protocol, "sasl_ssl");
    assert_string_equal(sec.sasl_username, "pkcs");
    assert_string_equal(sec.sasl_password, "from-the-file");
    assert_string_equal(sec.sasl_mechanism, "SCRAM-SHA-512");
    assert_true(sec.no_hostname_check);
    pc_config_free(cfg);
}

static void test_defaults_verify_hostname(void **state)
{
    fixture_t *fx = *state;
    pc_config_t *cfg = NULL;
    pc_diag_t diag;
    assert_int_equal(load(fx, "{}", &cfg, &diag), PC_OK);
    pc_kafka_security_t sec = pc_config_kafka_security(cfg);
    assert_string_equal(sec.protocol, "plaintext");
    assert_false(sec.no_hostname_check);
    assert_null(sec.sasl_password);
    pc_config_free(cfg);
}

static void test_file_from_environment(void **state)
{
    fixture_t *fx = *state;
    pc_config_t *cfg = NULL;
    pc_diag_t diag;
    write_file(fx->secret, "env-named\r\n");
    setenv("PC_KAFKA_SASL_PASSWORD_FILE", fx->secret, 1);
    assert_int_equal(
        load(fx, "{\"kafka\": {\"sasl_password_file\": \"/nonexistent\"}}", &cfg, &diag), PC_OK);
    assert_string_equal(cfg->kafka.sasl_password, "env-named"); /* the variable wins */
    pc_config_free(cfg);
}

static void test_secret_twice_refused(void **state)
{
    fixture_t *fx = *state;
    char json[512];
    pc_config_t *cfg = NULL;
    pc_diag_t diag;
    write_file(fx->secret, "in-a-file\n");
    snprintf(json, sizeof(json),
             "{\"kafka\": {\"sasl_password\": \"inline-pass\", \"sasl_password_file\": \"%s\"}}",
             fx->secret);
    assert_int_equal(load(fx, json, &cfg, &diag), PC_ERR_INVALID_PARAM);
    assert_null(cfg);
    assert_non_null(strstr(diag.msg, "kafka.sasl_password_file and kafka.sasl_password are both"));
    assert_null(strstr(diag.msg, "inline-pass"));

    setenv("PC_KAFKA_SASL_PASSWORD", "env-pass", 1);
    snprintf(json, sizeof(json), "{\"kafka\": {\"sasl_password_file\": \"%s\"}}", fx->secret);
    assert_int_equal(load(fx, json, &cfg, &diag), PC_ERR_INVALID_PARAM);
    assert_null(strstr(diag.msg, "env-pass"));
}

static void test_bad_files_refused(void **state)
{
    fixture_t *fx = *state;
    char json[512];
    pc_config_t *cfg = NULL;
    pc_diag_t diag;
    write_file(fx->secret, "\n");
    snprintf(json, sizeof(json), "{\"kafka\": {\"sasl_password_file\": \"%s\"}}", fx->secret);
    assert_int_equal(load(fx, json, &cfg, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "kafka.sasl_password_file"));
    assert_non_null(strstr(diag.msg, "is empty"));

    assert_int_equal(
        load(fx, "{\"kafka\": {\"sasl_password_file\": \"/nonexistent/pw\"}}", &cfg, &diag),
        PC_ERR_IO);
    assert_non_null(strstr(diag.msg, "kafka.sasl_password_file"));
    assert_non_null(strstr(diag.msg, "/nonexistent/pw"));

    assert_int_equal(load(fx, "{\"kafka\": {\"sasl_password_file\": 7}}", &cfg, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "kafka.sasl_password_file must be a string"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_verify_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_twice_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
