/*
 * common.h - pkcsctl's subcommands as main.c dispatches them, and what more than one of them
 * uses: error messages, JSON-form message files, PEM keys, Kafka clients, a configured CA and
 * where output goes, request ids as file names. Main thread only.
 */
#ifndef PKCSCTL_COMMON_H
#define PKCSCTL_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>

#include "ca.h"
#include "config.h"
#include "engine.h"
#include "pc_err.h"

/* ---- the subcommands: each is `pkcsctl NAME ARGS...` with argv[0] the name; each returns the
 * exit code: 0 done, 1 failed (after saying why on stderr), 2 bad usage ---- */

int pkcsctl_issue(int argc, char **argv);          /* issue.c */
int pkcsctl_decrypt(int argc, char **argv);        /* decrypt.c */
int pkcsctl_submit(int argc, char **argv);         /* submit.c */
int pkcsctl_watch(int argc, char **argv);          /* watch.c */
int pkcsctl_revoke(int argc, char **argv);         /* revoke.c */
int pkcsctl_crl(int argc, char **argv);            /* crl.c */
int pkcsctl_ca_cert(int argc, char **argv);        /* ca_cert.c */
int pkcsctl_status(int argc, char **argv);         /* status.c */
int pkcsctl_dlq(int argc, char **argv);            /* tail.c */
int pkcsctl_audit(int argc, char **argv);          /* tail.c */
int pkcsctl_notices(int argc, char **argv);        /* tail.c */
int pkcsctl_lint_profile(int argc, char **argv);   /* lint_profile.c */
int pkcsctl_import_key(int argc, char **argv);     /* import_key.c */
int pkcsctl_import_encrypt(int argc, char **argv); /* import_encrypt.c */
int pkcsctl_certs(int argc, char **argv);          /* certs.c */

/* ---- errors ---- */

/* pkcsctl_error prints "pkcsctl CMD: message" to stderr and returns the exit code 1. */
int pkcsctl_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pkcsctl_usage_error prints the message and where to read the command's options, and returns
 * the exit code 2. */
int pkcsctl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pkcsctl_diag_error prints err and diag for cmd, returns 1. */
int pkcsctl_diag_error(const char *cmd, pc_err_t err, const pc_diag_t *diag);

/* ---- JSON files ---- */

/* The most a JSON input file (a request, template, profile or sample values) may hold. */
#define PKCSCTL_JSON_MAX_BYTES (1024u * 1024u)

/* pkcsctl_load_json parses the JSON file at path into *out (the caller's: json_decref), as
 * strictly as the workers read messages (a key given twice is an error). Returns 0, or 1 after
 * printing the error. */
int pkcsctl_load_json(const char *cmd, const char *path, json_t **out);

/* pkcsctl_json_message decodes json, read from path, as a message of type desc in its JSON form
 * (pc_pbjson_decode) into *out, the caller's: protobuf_c_message_free_unpacked(*out, NULL).
 * Returns 0, or 1 after printing the error, which names path and the field. */
int pkcsctl_json_message(const char *cmd, const char *path, const json_t *json,
                         const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* ---- tables of JSON rows (status, certs) ---- */

/* pkcsctl_text returns the string member key of obj, or "-" when it is missing, empty or not a
 * string: what a table cell shows. */
const char *pkcsctl_text(const json_t *obj, const char *key);

/* pkcsctl_column_width returns the width of the column of rows' member key: the widest
 * pkcsctl_text, at least min and at most max. */
int pkcsctl_column_width(const json_t *rows, const char *key, int min, int max);

/* pkcsctl_load_message is pkcsctl_load_json then pkcsctl_json_message: one message of type desc
 * from the JSON file at path. */
int pkcsctl_load_message(const char *cmd, const char *path, const ProtobufCMessageDescriptor *desc,
                         ProtobufCMessage **out);

/* ---- PEM keys ---- */

/* What a key file may hold. */
typedef enum pkcsctl_key_want {
    PKCSCTL_KEY_PRIVATE,           /* a private key (PKCS#8 or traditional) */
    PKCSCTL_KEY_PUBLIC_OR_PRIVATE, /* a public key (SubjectPublicKeyInfo), or a private key */
} pkcsctl_key_want_t;

/* pkcsctl_key_read reads the unencrypted PEM key at path, as want allows. It never asks for a
 * passphrase: an encrypted key is refused, naming the file and asking for an unencrypted PEM.
 * The file's bytes are wiped once parsed (they may hold a private key). what names the file in
 * messages ("--device-key", "device key"). Outputs, each optional (NULL: not wanted): *key (the
 * caller's: EVP_PKEY_free), and the public key as SubjectPublicKeyInfo DER in *spki (malloc'd,
 * the caller's: free) of *spki_len bytes. Fails with PC_ERR_IO (the file cannot be read),
 * PC_ERR_INVALID_PARAM (no such key in it, or encrypted), PC_ERR_NOMEM. */
pc_err_t pkcsctl_key_read(const char *what, const char *path, pkcsctl_key_want_t want,
                          EVP_PKEY **key, unsigned char **spki, size_t *spki_len, pc_diag_t *diag);

/* pkcsctl_key_load is pkcsctl_key_read for cmd: 0, or 1 after printing the error. */
int pkcsctl_key_load(const char *cmd, const char *what, const char *path, pkcsctl_key_want_t want,
                     EVP_PKEY **key, unsigned char **spki, size_t *spki_len);

/* pkcsctl_key_spki gives key's public half as SubjectPublicKeyInfo DER in *spki (malloc'd, the
 * caller's) of *len bytes. PC_ERR_CRYPTO or PC_ERR_NOMEM. */
pc_err_t pkcsctl_key_spki(const EVP_PKEY *key, unsigned char **spki, size_t *len, pc_diag_t *diag);

/* ---- Kafka ---- */

/* The bootstrap servers when neither --brokers nor $PC_KAFKA_BROKERS names any. */
#define PKCSCTL_DEFAULT_BROKERS "127.0.0.1:9092"

/* pkcsctl_kafka_brokers returns the bootstrap servers given (--brokers, else
 * $PC_KAFKA_BROKERS), or PKCSCTL_DEFAULT_BROKERS when that is NULL or empty. */
const char *pkcsctl_kafka_brokers(const char *given);

/* One Kafka client of a command, and what its error callback has seen. Zero it, set cmd and
 * brokers (and owner and quiet as needed), then pkcsctl_kafka_conf and pkcsctl_kafka_new. */
typedef struct pkcsctl_kafka {
    rd_kafka_t *rk;
    rd_kafka_type_t type;
    const char *cmd;          /* the command, for messages; the client id is "pkcsctl-<cmd>" */
    const char *brokers;      /* bootstrap servers */
    bool quiet;               /* keep errors in last_error, print none */
    void *owner;              /* the command's own state, for its callbacks (delivery reports) */
    unsigned char shown[512]; /* Kafka error codes already printed (+256), to print each once */
    char last_error[sizeof(pc_diag_t)]; /* the latest error's text, "" while none */
    bool refused; /* the brokers refused our credentials, or we their certificate: waiting
                   * longer cannot help (pc_kafka_refusal); printed even when quiet */
} pkcsctl_kafka_t;

/* pkcsctl_kafka_conf starts the configuration of k's client: bootstrap.servers, client.id, k as
 * the opaque of every callback, the error callback (prints each kind of error once, as they
 * repeat while a broker is down, unless k->quiet; keeps the latest in k->last_error; sets
 * k->refused on a refusal), and librdkafka's own log silenced (it repeats what the error
 * callback reports). Then the security settings the workers use (kafka.security_protocol,
 * ssl_*, sasl_*: from the configuration file $PC_CONFIG and PC_KAFKA_* variables), then
 * settings: "name", "value" pairs ending with NULL. Returns the configuration
 * (pkcsctl_kafka_new takes it), or NULL after printing the error. */
rd_kafka_conf_t *pkcsctl_kafka_conf(pkcsctl_kafka_t *k, const char *const *settings);

/* pkcsctl_kafka_group_id writes a throwaway consumer group id, "pkcsctl-<cmd>-" and 12 random
 * hex digits, to buf. Returns 0, or 1 after printing the error. */
int pkcsctl_kafka_group_id(const pkcsctl_kafka_t *k, char *buf, size_t len);

/* pkcsctl_kafka_new makes k->rk of type from conf, which it takes, even on failure; a consumer
 * serves its callbacks through rd_kafka_consumer_poll. Returns 0, or 1 after printing the
 * error. */
int pkcsctl_kafka_new(pkcsctl_kafka_t *k, rd_kafka_type_t type, rd_kafka_conf_t *conf);

/* pkcsctl_kafka_error records a Kafka error met outside the callback (a consumed message's) the
 * way the callback does. */
void pkcsctl_kafka_error(pkcsctl_kafka_t *k, int err, const char *reason);

/* pkcsctl_kafka_close closes a consumer (leaving no group behind) and frees k->rk (NULL
 * allowed). */
void pkcsctl_kafka_close(pkcsctl_kafka_t *k);

/* ---- a configured CA, output ---- */

/* pkcsctl_open_ca loads the configuration at config (NULL: built-in defaults) and opens its CAs
 * the way the workers do (pc_engine_new: the same CA key passphrase and Redis records); *ca is
 * ca_name's, borrowed from *engine. The caller frees *engine and *cfg, also on failure.
 * Returns 0, or 1 after printing the error, which lists the configured CAs. */
int pkcsctl_open_ca(const char *cmd, const char *config, const char *ca_name, pc_config_t **cfg,
                    pc_engine_t **engine, pc_ca_t **ca);

/* pkcsctl_write_out writes len bytes to the file path (mode 0644, through a temporary file), or
 * to standard output when path is NULL. Returns 0, or 1 after printing the error. */
int pkcsctl_write_out(const char *cmd, const char *path, const void *data, size_t len);

/* pkcsctl_write_out_bio is pkcsctl_write_out of what the memory BIO bio holds. */
int pkcsctl_write_out_bio(const char *cmd, const char *path, BIO *bio);

/* ---- text for people ---- */

/* Room for pkcsctl_sha256_hex's text. */
#define PKCSCTL_SHA256_HEX_LEN 65

/* pkcsctl_sha256_hex writes the upper-case hex SHA-256 of len bytes of data to hex (what
 * sha256sum shows, upper-cased); "" when it cannot be computed. */
void pkcsctl_sha256_hex(const void *data, size_t len, char hex[PKCSCTL_SHA256_HEX_LEN]);

/* ---- request ids as file names ---- */

/* pkcsctl_safe_name tells whether a request id can name a file in a folder (a device key, a
 * result): not empty, no '/', not "." or "..", at most 200 bytes. Request ids from a topic or
 * a CSV file are never trusted. */
bool pkcsctl_safe_name(const char *id);

#endif
