/*
 * common.c - what more than one pkcsctl subcommand uses, in one place so that it behaves the
 * same everywhere: error messages; JSON-form message files (read as strictly as the workers read
 * messages); PEM keys (never a passphrase prompt, the file's bytes wiped); Kafka clients (the
 * settings and error reporting every client shares); a configured CA opened as the workers open
 * it, and output to a file or standard output; request ids as file names. Main thread only.
 */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "file.h"
#include "pbjson.h"
#include "pem.h"
#include "text.h"

#define KEY_FILE_MAX_BYTES (64u * 1024u)
#define SAFE_NAME_MAX 200

/* ---- errors ---- */

static void vreport(const char *cmd, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void vreport(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "pkcsctl %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int pkcsctl_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int pkcsctl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "see 'pkcsctl %s --help'\n", cmd);
    return 2;
}

int pkcsctl_diag_error(const char *cmd, pc_err_t err, const pc_diag_t *diag)
{
    return pkcsctl_error(cmd, "%s (%s)", diag->msg[0] ? diag->msg : pc_strerror(err),
                         pc_err_code_name(err));
}

/* ---- JSON files ---- */

int pkcsctl_load_json(const char *cmd, const char *path, json_t **out)
{
    unsigned char *text = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    json_error_t jerr;
    *out = NULL;
    pc_err_t err = pc_file_read(path, PKCSCTL_JSON_MAX_BYTES, &text, &len, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(cmd, err, &diag);
    /* Duplicate keys are refused as the workers' decoder (pc_pbjson_decode_string) refuses
     * them: a file must not mean one thing here and another there. */
    *out = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (*out == NULL)
        return pkcsctl_error(cmd, "%s: malformed JSON at line %d, column %d: %s", path, jerr.line,
                             jerr.column, jerr.text);
    return 0;
}

int pkcsctl_json_message(const char *cmd, const char *path, const json_t *json,
                         const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_pbjson_decode(desc, json, out, &diag);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, path);
        return pkcsctl_diag_error(cmd, err, &diag);
    }
    return 0;
}

int pkcsctl_load_message(const char *cmd, const char *path, const ProtobufCMessageDescriptor *desc,
                         ProtobufCMessage **out)
{
    json_t *json = NULL;
    *out = NULL;
    if (pkcsctl_load_json(cmd, path, &json) != 0)
        return 1;
    int rc = pkcsctl_json_message(cmd, path, json, desc, out);
    json_decref(json);
    return rc;
}

/* ---- PEM keys ---- */

/* parse_pem reads a key that must not be encrypted: an encrypted one is refused (and
 * *encrypted set), where OpenSSL's default callback would prompt on the terminal (and hang a
 * script). */
static EVP_PKEY *parse_pem(const unsigned char *pem, size_t len, bool private_key, bool *encrypted)
{
    EVP_PKEY *key = NULL;
    pc_pem_passphrase_t none = {.text = NULL};
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return NULL;
    key = private_key ? PEM_read_bio_PrivateKey(bio, NULL, pc_pem_passphrase_cb, &none)
                      : PEM_read_bio_PUBKEY(bio, NULL, pc_pem_passphrase_cb, &none);
    BIO_free(bio);
    *encrypted = *encrypted || none.asked;
    return key;
}

pc_err_t pkcsctl_key_spki(const EVP_PKEY *key, unsigned char **spki, size_t *len, pc_diag_t *diag)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    *spki = NULL;
    *len = 0;
    if (n <= 0)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the public key");
    /* a copy in malloc'd memory: it goes into protobuf-c messages, which free() it */
    if ((*spki = malloc((size_t)n)) == NULL) {
        OPENSSL_free(der);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    memcpy(*spki, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    return PC_OK;
}

pc_err_t pkcsctl_key_read(const char *what, const char *path, pkcsctl_key_want_t want,
                          EVP_PKEY **key, unsigned char **spki, size_t *spki_len, pc_diag_t *diag)
{
    unsigned char *pem = NULL;
    size_t len = 0;
    bool encrypted = false;
    EVP_PKEY *pkey = NULL;
    pc_err_t err = pc_file_read(path, KEY_FILE_MAX_BYTES, &pem, &len, diag);
    if (err != PC_OK) {
        pc_diag_prefix(diag, what);
        return err;
    }
    if (want == PKCSCTL_KEY_PUBLIC_OR_PRIVATE)
        pkey = parse_pem(pem, len, false, &encrypted);
    if (pkey == NULL)
        pkey = parse_pem(pem, len, true, &encrypted);
    OPENSSL_cleanse(pem, len); /* may have been a private key */
    free(pem);
    ERR_clear_error();
    if (pkey == NULL && encrypted)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s %s is an encrypted key, and pkcsctl asks for no passphrase: an "
                       "unencrypted PEM key is expected (openssl pkey -in %s -out FILE writes one)",
                       what, path, path);
    if (pkey == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       want == PKCSCTL_KEY_PRIVATE
                           ? "%s %s is not a PEM private key (an unencrypted PKCS#8 or "
                             "traditional key is expected)"
                           : "%s %s is not a PEM public key (or unencrypted PEM private key)",
                       what, path);
    if (spki != NULL && (err = pkcsctl_key_spki(pkey, spki, spki_len, diag)) != PC_OK) {
        EVP_PKEY_free(pkey);
        return err;
    }
    if (key != NULL)
        *key = pkey;
    else
        EVP_PKEY_free(pkey);
    return PC_OK;
}

int pkcsctl_key_load(const char *cmd, const char *what, const char *path, pkcsctl_key_want_t want,
                     EVP_PKEY **key, unsigned char **spki, size_t *spki_len)
{
    pc_diag_t diag = {{0}};
    pc_err_t err = pkcsctl_key_read(what, path, want, key, spki, spki_len, &diag);
    return err == PC_OK ? 0 : pkcsctl_error(cmd, "%s", diag.msg);
}

/* ---- Kafka ---- */

const char *pkcsctl_kafka_brokers(const char *given)
{
    return given != NULL && given[0] != '\0' ? given : PKCSCTL_DEFAULT_BROKERS;
}

void pkcsctl_kafka_error(pkcsctl_kafka_t *k, int err, const char *reason)
{
    snprintf(k->last_error, sizeof(k->last_error), "%s", reason);
    if (k->quiet || err + 256 < 0 || err + 256 >= (int)sizeof(k->shown) || k->shown[err + 256])
        return;
    k->shown[err + 256] = 1;
    pkcsctl_error(k->cmd, "kafka: %s", reason);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pkcsctl_kafka_t *k = opaque;
    char fatal[200];
    pc_diag_t diag;
    if (pc_kafka_refusal(err, reason, &diag)) {
        /* said once whatever quiet says: the command stops because of it */
        if (!k->refused)
            pkcsctl_error(k->cmd, "%s", diag.msg);
        k->refused = true;
        snprintf(k->last_error, sizeof(k->last_error), "%s", diag.msg);
        return;
    }
    if (k->refused)
        return; /* what follows a refusal ("brokers are down") only hides its reason */
    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        pkcsctl_kafka_error(k, err, reason);
        return;
    }
    /* the client is done for: say so every time, whatever was shown before */
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    snprintf(k->last_error, sizeof(k->last_error), "fatal error: %s", fatal);
    if (!k->quiet)
        pkcsctl_error(k->cmd, "kafka: fatal error: %s", fatal);
}

/* librdkafka's own log repeats what on_error reports; keep the terminal readable. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {}

/* apply_security sets the workers' Kafka security settings on conf: the same table, file and
 * variables (pc_config_load), so one configuration serves the workers and the operator. */
static int apply_security(pkcsctl_kafka_t *k, rd_kafka_conf_t *conf)
{
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    const char *path = getenv("PC_CONFIG");
    pc_err_t err = pc_config_load(path != NULL && path[0] != '\0' ? path : NULL, &cfg, &diag);
    if (err == PC_OK) {
        pc_kafka_security_t security = pc_config_kafka_security(cfg);
        err = pc_kafka_security_apply(conf, &security, &diag);
    }
    pc_config_free(cfg);
    return err == PC_OK ? 0 : pkcsctl_diag_error(k->cmd, err, &diag);
}

rd_kafka_conf_t *pkcsctl_kafka_conf(pkcsctl_kafka_t *k, const char *const *settings)
{
    char errstr[512] = "", client_id[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        pkcsctl_error(k->cmd, "out of memory");
        return NULL;
    }
    snprintf(client_id, sizeof(client_id), "pkcsctl-%s", k->cmd);
    if (apply_security(k, conf) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", k->brokers, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", client_id, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        goto out_destroy_conf;
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, settings[i], settings[i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto out_destroy_conf;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    return conf;
out_destroy_conf:
    rd_kafka_conf_destroy(conf);
    pkcsctl_error(k->cmd, "kafka configuration: %s", errstr);
    return NULL;
}

int pkcsctl_kafka_group_id(const pkcsctl_kafka_t *k, char *buf, size_t len)
{
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return pkcsctl_error(k->cmd, "no randomness for a throwaway Kafka consumer group id");
    }
    snprintf(buf, len, "pkcsctl-%s-%02x%02x%02x%02x%02x%02x", k->cmd, rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    return 0;
}

int pkcsctl_kafka_new(pkcsctl_kafka_t *k, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512] = "";
    k->type = type;
    if ((k->rk = rd_kafka_new(type, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only when it succeeds */
        return pkcsctl_error(k->cmd, "cannot create a Kafka %s for %s: %s",
                             type == RD_KAFKA_PRODUCER ? "producer" : "consumer", k->brokers,
                             errstr);
    }
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(k->rk);
    return 0;
}

void pkcsctl_kafka_close(pkcsctl_kafka_t *k)
{
    if (k->rk == NULL)
        return;
    if (k->type == RD_KAFKA_CONSUMER)
        rd_kafka_consumer_close(k->rk);
    rd_kafka_destroy(k->rk);
    k->rk = NULL;
}

/* ---- a configured CA, output ---- */

int pkcsctl_open_ca(const char *cmd, const char *config, const char *ca_name, pc_config_t **cfg,
                    pc_engine_t **engine, pc_ca_t **ca)
{
    pc_diag_t diag = {{0}};
    pc_err_t err;
    if ((err = pc_config_load(config, cfg, &diag)) != PC_OK ||
        (err = pc_engine_new(*cfg, engine, &diag)) != PC_OK)
        return pkcsctl_diag_error(cmd, err, &diag);
    if ((*ca = pc_engine_find_ca(*engine, ca_name)) != NULL)
        return 0;
    char names[512];
    size_t pos = 0;
    names[0] = '\0';
    for (size_t i = 0; i < (*engine)->ca_count && pos < sizeof(names); i++) {
        int w = snprintf(names + pos, sizeof(names) - pos, "%s%s", i > 0 ? ", " : "",
                         (*engine)->cas[i]->name);
        pos += w > 0 ? (size_t)w : 0;
    }
    return pkcsctl_error(cmd,
                         "no CA named \"%s\" in %s; configured: %s. Give --ca one of them, or "
                         "--config the file that configures it",
                         ca_name, config ? config : "the default configuration",
                         names[0] ? names : "none");
}

int pkcsctl_write_out(const char *cmd, const char *path, const void *data, size_t len)
{
    pc_diag_t diag = {{0}};
    if (path != NULL) {
        pc_err_t err = pc_file_write(path, data, len, 0644, &diag);
        return err == PC_OK ? 0 : pkcsctl_diag_error(cmd, err, &diag);
    }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
        return pkcsctl_error(cmd, "cannot write to standard output: %s", strerror(errno));
    return 0;
}

int pkcsctl_write_out_bio(const char *cmd, const char *path, BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len < 0 || data == NULL)
        return pkcsctl_error(cmd, "out of memory");
    return pkcsctl_write_out(cmd, path, data, (size_t)len);
}

/* ---- text for people ---- */

void pkcsctl_sha256_hex(const void *data, size_t len, char hex[PKCSCTL_SHA256_HEX_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    hex[0] = '\0';
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        ERR_clear_error();
        return;
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02X", md[i]);
}

/* ---- request ids as file names ---- */

bool pkcsctl_safe_name(const char *id)
{
    size_t len = strlen(id);
    return len > 0 && len <= SAFE_NAME_MAX && strchr(id, '/') == NULL && strcmp(id, ".") != 0 &&
           strcmp(id, "..") != 0;
}

/* ---- tables of JSON rows ---- */

const char *pkcsctl_text(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && s[0] != '\0' ? s : "-";
}

int pkcsctl_column_width(const json_t *rows, const char *key, int min, int max)
{
    size_t i;
    const json_t *row;
    int w = min;
    json_array_foreach(rows, i, row)
    {
        size_t n = strlen(pkcsctl_text(row, key));
        if (n > (size_t)w)
            w = n > (size_t)max ? max : (int)n;
    }
    return w;
}
