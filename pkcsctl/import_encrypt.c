/*
 * pkcsctl import-encrypt: what upstream does for an administrator's PFX upload - encrypts the PFX
 * password to the connector's import key (from pkcsctl import-key) with RSA-OAEP and writes an
 * IMPORT_PFX request in JSON, ready for `pkcsctl submit`. The PFX is opened with the password
 * first, as the worker will. The password is never printed or written in the clear, and our
 * copies of it are wiped. Main thread only.
 */
#include "import_int.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "clock.h"
#include "common.h"
#include "file.h"
#include "import.h"
#include "pbjson.h"
#include "pfx.h"
#include "request.h"
#include "subject.h"

#define ENC_CMD "import-encrypt"
#define MAX_PASSWORD_FILE 4096

typedef struct enc_opts {
    const char *pub;
    const char *pfx;
    const char *password_file;
    const char *password_env;
    const char *oaep_hash;
    const char *key_id;
    const char *device_key;
    const char *request_id;
    const char *tenant;
    const char *user_id;
    const char *device_id;
    const char *purpose;
    const char *out;
    bool verify;
} enc_opts_t;

/* What goes into the request, owned here. */
typedef struct enc_parts {
    unsigned char *pfx;
    size_t pfx_len;
    unsigned char *ciphertext;
    size_t ciphertext_len;
    unsigned char *spki;
    size_t spki_len;
    char subject[256]; /* of the PFX's certificate, when checked */
    char not_after[64];
} enc_parts_t;

static void enc_help(void)
{
    printf(
        "usage: pkcsctl import-encrypt --pub IMPORT_PUB.pem --pfx FILE.pfx\n"
        "           (--password-file FILE | --password-env VAR) --device-key DEVICE.pem\n"
        "           --request-id ID --tenant T --user-id U --device-id D --out REQUEST.json\n"
        "           [--oaep-hash sha256] [--key-id " IMPORT_DEFAULT_KEY_ID "] [--purpose "
        "smime_encryption]\n"
        "           [--no-verify]\n\n"
        "Does what upstream does with an administrator's PFX upload: encrypts the PFX\n"
        "password to the connector's import key (RSA-OAEP, MGF1 with the same hash) and writes\n"
        "an IMPORT_PFX request (pkcs.v1.Request, JSON) for 'pkcsctl submit --request'. The\n"
        "worker decrypts the password, checks the PFX and returns it enveloped to the device.\n\n"
        "options:\n"
        "  --pub FILE            the import public key (PEM), from 'pkcsctl import-key'\n"
        "  --pfx FILE            the PKCS#12 to deliver (at most %u bytes)\n"
        "  --password-file FILE  the PFX password: the file's content, without one trailing\n"
        "                        newline\n"
        "  --password-env VAR    the PFX password: the value of environment variable VAR\n"
        "  --oaep-hash H         sha256 (default), sha384 or sha512\n"
        "  --key-id ID           the import key's id (default " IMPORT_DEFAULT_KEY_ID
        "), as the workers\n"
        "                        know it (worker.import_key_id)\n"
        "  --device-key FILE     the device's key (PEM, public or private): the result is\n"
        "                        enveloped to its public key\n"
        "  --request-id ID       the request id (idempotency key)\n"
        "  --tenant T            tenant id\n"
        "  --user-id U           the user the PFX belongs to\n"
        "  --device-id D         the device to deliver it to\n"
        "  --purpose P           smime_encryption (default), smime_signing, or any\n"
        "  --out FILE            the request, JSON (mode 0600)\n"
        "  --no-verify           do not check here that the password opens the PFX (to make\n"
        "                        requests that the worker must refuse, for tests)\n\n"
        "The password is never printed and never written unencrypted.\n",
        PC_MAX_PFX_LEN);
}

static int check_enc_opts(enc_opts_t *o)
{
    if (o->pub == NULL || o->pfx == NULL || o->device_key == NULL || o->out == NULL)
        return pkcsctl_usage_error(ENC_CMD, "--pub, --pfx, --device-key and --out are required");
    if ((o->password_file == NULL) == (o->password_env == NULL))
        return pkcsctl_usage_error(ENC_CMD,
                                   "give the PFX password with exactly one of --password-file "
                                   "FILE and --password-env VAR");
    if (o->request_id == NULL || o->tenant == NULL || o->user_id == NULL || o->device_id == NULL)
        return pkcsctl_usage_error(
            ENC_CMD, "--request-id, --tenant, --user-id and --device-id are required");
    if (strcmp(o->oaep_hash, "sha256") != 0 && strcmp(o->oaep_hash, "sha384") != 0 &&
        strcmp(o->oaep_hash, "sha512") != 0)
        return pkcsctl_usage_error(ENC_CMD, "--oaep-hash \"%s\": use sha256, sha384 or sha512",
                                   o->oaep_hash);
    if (strcmp(o->purpose, "any") == 0)
        o->purpose = "";
    else if (strcmp(o->purpose, "smime_encryption") != 0 &&
             strcmp(o->purpose, "smime_signing") != 0)
        return pkcsctl_usage_error(
            ENC_CMD, "--purpose \"%s\": use smime_encryption, smime_signing or any", o->purpose);
    if (!pkcsctl_import_key_id_ok(o->key_id))
        return pkcsctl_usage_error(ENC_CMD,
                                   "--key-id \"%s\" must be 1 to %u letters, digits, '.', '_' or "
                                   "'-'",
                                   o->key_id, PC_MAX_ID_LEN);
    return 0;
}

static int parse_enc_opts(int argc, char **argv, enc_opts_t *o)
{
    enum {
        O_PUB = 256,
        O_PFX,
        O_PWFILE,
        O_PWENV,
        O_HASH,
        O_KEYID,
        O_DEVKEY,
        O_REQID,
        O_TENANT,
        O_USER,
        O_DEVICE,
        O_PURPOSE,
        O_OUT,
        O_NOVERIFY
    };
    static const struct option opts[] = {
        {"pub", required_argument, NULL, O_PUB},
        {"pfx", required_argument, NULL, O_PFX},
        {"password-file", required_argument, NULL, O_PWFILE},
        {"password-env", required_argument, NULL, O_PWENV},
        {"oaep-hash", required_argument, NULL, O_HASH},
        {"key-id", required_argument, NULL, O_KEYID},
        {"device-key", required_argument, NULL, O_DEVKEY},
        {"request-id", required_argument, NULL, O_REQID},
        {"tenant", required_argument, NULL, O_TENANT},
        {"user-id", required_argument, NULL, O_USER},
        {"device-id", required_argument, NULL, O_DEVICE},
        {"purpose", required_argument, NULL, O_PURPOSE},
        {"out", required_argument, NULL, O_OUT},
        {"no-verify", no_argument, NULL, O_NOVERIFY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* where each string option goes, in the order of the enum from O_PUB to O_OUT */
    const char **dest[] = {&o->pub,       &o->pfx,     &o->password_file, &o->password_env,
                           &o->oaep_hash, &o->key_id,  &o->device_key,    &o->request_id,
                           &o->tenant,    &o->user_id, &o->device_id,     &o->purpose,
                           &o->out};
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= O_PUB && c <= O_OUT) {
            *dest[c - O_PUB] = optarg;
        } else if (c == O_NOVERIFY) {
            o->verify = false;
        } else if (c == 'h') {
            enc_help();
            return 0;
        } else {
            return pkcsctl_usage_error(ENC_CMD, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(ENC_CMD, "unexpected argument \"%s\"", argv[optind]);
    return check_enc_opts(o) != 0 ? 2 : -1;
}

/* read_password gives the password as a malloc'd string the caller wipes (wipe_password). */
static int read_password(const enc_opts_t *o, char **pw, size_t *len)
{
    unsigned char *data = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err;

    if (o->password_env != NULL) {
        const char *value = getenv(o->password_env);
        if (value == NULL)
            return pkcsctl_error(ENC_CMD, "--password-env: environment variable %s is not set",
                                 o->password_env);
        *len = strlen(value);
        *pw = OPENSSL_strdup(value);
        return *pw == NULL ? pkcsctl_error(ENC_CMD, "out of memory") : 0;
    }
    err = pc_file_read_secret(o->password_file, MAX_PASSWORD_FILE, &data, len, &diag);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, "--password-file");
        return pkcsctl_diag_error(ENC_CMD, err, &diag);
    }
    if (*len > 0 && data[*len - 1] == '\n')
        data[--*len] = '\0';
    if (*len > 0 && data[*len - 1] == '\r')
        data[--*len] = '\0';
    *pw = (char *)data;
    if (memchr(data, '\0', *len) != NULL) {
        OPENSSL_clear_free(data, *len);
        *pw = NULL;
        return pkcsctl_error(ENC_CMD, "--password-file %s holds a NUL byte; a PFX password is text",
                             o->password_file);
    }
    return 0;
}

static void wipe_password(char *pw, size_t len)
{
    OPENSSL_clear_free(pw, len);
}

static void time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "(unreadable)");
}

/* verify_pfx opens the PFX with the password, as the worker will, and notes its certificate. */
static int verify_pfx(const enc_opts_t *o, enc_parts_t *p, const char *pw)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_pfx_open(p->pfx, p->pfx_len, pw, &key, &cert, NULL, &diag);

    if (err == PC_ERR_UNAUTHENTICATED)
        return pkcsctl_error(ENC_CMD,
                             "the password does not open %s; give the PFX's own password (or "
                             "--no-verify to send it anyway)",
                             o->pfx);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, o->pfx);
        return pkcsctl_diag_error(ENC_CMD, err, &diag);
    }
    pc_name_text(X509_get_subject_name(cert), p->subject, sizeof(p->subject));
    time_text(X509_get0_notAfter(cert), p->not_after, sizeof(p->not_after));
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

static const EVP_MD *oaep_md(const char *name)
{
    if (strcmp(name, "sha384") == 0)
        return EVP_sha384();
    if (strcmp(name, "sha512") == 0)
        return EVP_sha512();
    return EVP_sha256();
}

/* encrypt_password RSA-OAEP-encrypts pw to the import key (MGF1 with the same hash). */
static int encrypt_password(const enc_opts_t *o, EVP_PKEY *pub, const char *pw, size_t pw_len,
                            enc_parts_t *p)
{
    const EVP_MD *md = oaep_md(o->oaep_hash);
    size_t room = (size_t)EVP_PKEY_get_size(pub) - 2 * (size_t)EVP_MD_get_size(md) - 2;
    EVP_PKEY_CTX *ctx = NULL;
    int rc = 0;

    if (pw_len > room)
        return pkcsctl_error(ENC_CMD,
                             "the password is %zu bytes; RSA-OAEP-%s with this %d-bit key carries "
                             "at most %zu",
                             pw_len, o->oaep_hash, EVP_PKEY_get_bits(pub), room);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
        EVP_PKEY_encrypt(ctx, NULL, &p->ciphertext_len, (const unsigned char *)pw, pw_len) != 1 ||
        (p->ciphertext = malloc(p->ciphertext_len)) == NULL ||
        EVP_PKEY_encrypt(ctx, p->ciphertext, &p->ciphertext_len, (const unsigned char *)pw,
                         pw_len) != 1) {
        ERR_clear_error();
        rc = pkcsctl_error(ENC_CMD, "RSA-OAEP encryption of the password to %s failed", o->pub);
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* check_import_key wants what the workers accept: RSA of at least 2048 bits. */
static int check_import_key(const enc_opts_t *o, EVP_PKEY *pub)
{
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA ||
        EVP_PKEY_get_bits(pub) < PC_IMPORT_MIN_RSA_BITS)
        return pkcsctl_error(ENC_CMD,
                             "--pub %s is not an RSA key of %d bits or more; give the public key "
                             "made by 'pkcsctl import-key'",
                             o->pub, PC_IMPORT_MIN_RSA_BITS);
    return 0;
}

/* device_key_ok mirrors what the envelope accepts: RSA >= 2048, EC P-256 or P-384. */
static bool device_key_ok(EVP_PKEY *key)
{
    char group[64] = "";

    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        return EVP_PKEY_get_bits(key) >= 2048;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1) {
        ERR_clear_error();
        return false;
    }
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0;
}

static int load_device_spki(const enc_opts_t *o, enc_parts_t *p)
{
    EVP_PKEY *key = NULL;

    if (pkcsctl_key_load(ENC_CMD, "--device-key", o->device_key, PKCSCTL_KEY_PUBLIC_OR_PRIVATE,
                         &key, &p->spki, &p->spki_len) != 0)
        return 1;
    bool ok = device_key_ok(key);
    EVP_PKEY_free(key);
    if (!ok)
        return pkcsctl_error(ENC_CMD,
                             "--device-key %s: the device key must be RSA of 2048 bits or more, "
                             "EC P-256 or EC P-384",
                             o->device_key);
    return 0;
}

/* write_request builds the request around the parts, checks it as a worker would and writes
 * its JSON form. */
static int write_request(const enc_opts_t *o, const enc_parts_t *p)
{
    Pkcs__V1__ImportPfxRequest body;
    Pkcs__V1__Request req;
    pc_diag_t diag = {{0}};
    char *json = NULL;
    pc_err_t err;
    pkcs__v1__import_pfx_request__init(&body);
    pkcs__v1__request__init(&req);

    body.pfx = (ProtobufCBinaryData){.len = p->pfx_len, .data = p->pfx};
    body.encrypted_password =
        (ProtobufCBinaryData){.len = p->ciphertext_len, .data = p->ciphertext};
    body.device_public_key = (ProtobufCBinaryData){.len = p->spki_len, .data = p->spki};
    /* the generated struct's strings are not const, but nothing here writes through them */
    body.oaep_hash = (char *)(uintptr_t)o->oaep_hash;
    body.import_key_id = (char *)(uintptr_t)o->key_id;
    body.intended_purpose = (char *)(uintptr_t)o->purpose;
    req.schema_version = PC_SCHEMA_VERSION;
    req.request_id = (char *)(uintptr_t)o->request_id;
    req.tenant_id = (char *)(uintptr_t)o->tenant;
    req.user_id = (char *)(uintptr_t)o->user_id;
    req.device_id = (char *)(uintptr_t)o->device_id;
    req.kind = PKCS__V1__KIND__IMPORT_PFX;
    req.created_at_ms = pc_now_ms();
    req.body_case = PKCS__V1__REQUEST__BODY_IMPORT_PFX;
    req.import_pfx = &body;
    if ((err = pc_request_validate(&req, req.created_at_ms, &diag)) != PC_OK ||
        (err = pc_pbjson_encode_string(&req.base, true, &json, &diag)) != PC_OK)
        return pkcsctl_diag_error(ENC_CMD, err, &diag);
    err = pc_file_write(o->out, json, strlen(json), 0600, &diag);
    free(json);
    return err == PC_OK ? 0 : pkcsctl_diag_error(ENC_CMD, err, &diag);
}

static void enc_report(const enc_opts_t *o, const enc_parts_t *p, const char *fingerprint)
{
    printf("wrote     %s: IMPORT_PFX request %s (tenant %s, user %s, device %s)\n", o->out,
           o->request_id, o->tenant, o->user_id, o->device_id);
    if (p->subject[0] != '\0')
        printf("pfx       %zu bytes, opens with the password; certificate %s, valid until %s\n",
               p->pfx_len, p->subject, p->not_after);
    else
        printf("pfx       %zu bytes, not checked (--no-verify)\n", p->pfx_len);
    printf("password  RSA-OAEP-%s to import key %s (public key SHA-256 %s)\n", o->oaep_hash,
           o->key_id, fingerprint);
    printf("purpose   %s\n", o->purpose[0] != '\0' ? o->purpose : "any S/MIME use");
    printf("next      pkcsctl submit --request %s\n", o->out);
}

/* seal_password reads the password, checks it against the PFX and encrypts it; the plaintext
 * lives only inside this function. */
static int seal_password(const enc_opts_t *o, EVP_PKEY *pub, enc_parts_t *p)
{
    char *pw = NULL;
    size_t pw_len = 0;
    int rc = read_password(o, &pw, &pw_len);

    if (rc == 0 && o->verify)
        rc = verify_pfx(o, p, pw);
    if (rc == 0)
        rc = encrypt_password(o, pub, pw, pw_len, p);
    wipe_password(pw, pw_len);
    return rc;
}

static int run_import_encrypt(const enc_opts_t *o)
{
    enc_parts_t p = {0};
    EVP_PKEY *pub = NULL;
    char fingerprint[PKCSCTL_SHA256_HEX_LEN] = "";
    pc_diag_t diag = {{0}};
    pc_err_t err;
    int rc;

    if ((rc = pkcsctl_key_load(ENC_CMD, "--pub", o->pub, PKCSCTL_KEY_PUBLIC_OR_PRIVATE, &pub, NULL,
                               NULL)) != 0)
        return rc;
    if ((rc = check_import_key(o, pub)) != 0)
        goto out_free;
    if (pkcsctl_import_fingerprint(pub, fingerprint) != 0) {
        rc = pkcsctl_error(ENC_CMD, "cannot encode the import public key of %s", o->pub);
        goto out_free;
    }
    if ((err = pc_file_read(o->pfx, PC_MAX_PFX_LEN, &p.pfx, &p.pfx_len, &diag)) != PC_OK) {
        rc = pkcsctl_diag_error(ENC_CMD, err, &diag);
        goto out_free;
    }
    if ((rc = seal_password(o, pub, &p)) != 0 || (rc = load_device_spki(o, &p)) != 0 ||
        (rc = write_request(o, &p)) != 0)
        goto out_free;
    enc_report(o, &p, fingerprint);
out_free:
    free(p.pfx);
    free(p.ciphertext);
    free(p.spki);
    EVP_PKEY_free(pub);
    return rc != 0 ? 1 : 0;
}

int pkcsctl_import_encrypt(int argc, char **argv)
{
    enc_opts_t o = {.oaep_hash = "sha256",
                    .key_id = IMPORT_DEFAULT_KEY_ID,
                    .purpose = "smime_encryption",
                    .verify = true};
    int rc = parse_enc_opts(argc, argv, &o);

    return rc >= 0 ? rc : run_import_encrypt(&o);
}
