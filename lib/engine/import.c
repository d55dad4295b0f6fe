/*
 * import.c - IMPORT_PFX: what the Intune PFX Certificate Connector does, on Linux. Upstream
 * sends an administrator's PFX and its password RSA-OAEP-encrypted to our import key; we
 * decrypt the password, open the PFX, refuse certificates that could not serve the intended
 * S/MIME purpose, and re-pack the same key, certificate and chain into a PFX with an empty
 * password that only the target device can open (CMS envelope to its key).
 *
 * The import key is loaded once (pc_import_new, main thread) and is read-only afterwards: every
 * pool thread uses it at once through its own EVP_PKEY_CTX. The plaintext password and the
 * re-packed PFX live only in buffers we wipe.
 */
#include "import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "envelope.h"
#include "file.h"
#include "pem.h"
#include "pfx.h"
#include "request.h"
#include "result.h"
#include "usage.h"

#define MAX_KEY_FILE (64u * 1024) /* an RSA-16384 PKCS#8 PEM is about 13 KiB */

struct pc_import {
    EVP_PKEY *key;
    char *key_id;
    pc_pfx_limits_t limits; /* for uploaded PFX files */
    char desc[32];          /* "RSA-3072", for messages */
};

typedef enum purpose {
    PURPOSE_ANY,
    PURPOSE_SIGNING,
    PURPOSE_ENCRYPTION,
} purpose_t;

/* What pc_pfx_open found in the uploaded PFX. */
typedef struct parts {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) * chain;
} parts_t;

/* read_key_file reads path into a buffer wiped later (OPENSSL_clear_free(*buf, *len)) and
 * reports its mode, which matters only when the key turns out to be unencrypted. */
static pc_err_t read_key_file(const char *path, char **buf, size_t *len, unsigned *mode,
                              pc_diag_t *diag)
{
    unsigned char *data = NULL;
    pc_err_t err = pc_file_read_key(path, MAX_KEY_FILE, &data, len, mode, diag);

    *buf = (char *)data;
    if (err != PC_OK)
        pc_diag_prefix(diag, "import key (worker.import_key_file, PC_IMPORT_KEY_FILE)");
    return err;
}

/* parse_key turns the PEM text into a key, decrypting it with $PC_IMPORT_KEY_PASSPHRASE when
 * it is encrypted; *encrypted tells which it was. */
static pc_err_t parse_key(const char *path, const char *pem, size_t len, EVP_PKEY **key,
                          bool *encrypted, pc_diag_t *diag)
{
    pc_pem_passphrase_t pw = {.text = getenv(PC_IMPORT_PASSPHRASE_ENV), .asked = false};
    BIO *bio = BIO_new_mem_buf(pem, (int)len);

    if (bio == NULL)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "out of memory reading import key %s", path);
    *key = PEM_read_bio_PrivateKey(bio, NULL, pc_pem_passphrase_cb, &pw);
    BIO_free(bio);
    *encrypted = pw.asked;
    if (*key != NULL)
        return PC_OK;
    ERR_clear_error();
    if (pw.asked && pw.text == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "import key %s is encrypted: set %s to its passphrase", path,
                       PC_IMPORT_PASSPHRASE_ENV);
    if (pw.asked)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "cannot decrypt import key %s with the passphrase in %s: wrong "
                       "passphrase? Set the one the key was encrypted with",
                       path, PC_IMPORT_PASSPHRASE_ENV);
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "import key %s holds no PEM private key; give the PKCS#8 PEM made by "
                   "'pkcsctl import-key'",
                   path);
}

/* check_mode refuses an unencrypted key that group or others may read: anyone who can read
 * it can decrypt every uploaded PFX password. The rule is every secret file's (file.h). */
static pc_err_t check_mode(const char *path, unsigned mode, bool encrypted, pc_diag_t *diag)
{
    pc_err_t err = encrypted ? PC_OK : pc_file_check_secret_mode(path, mode, diag);

    if (err != PC_OK && diag != NULL) {
        size_t n = strlen(diag->msg);
        snprintf(diag->msg + n, sizeof(diag->msg) - n, "; or encrypt the import key and set %s",
                 PC_IMPORT_PASSPHRASE_ENV);
        pc_diag_prefix(diag, "import key");
    }
    return err;
}

static pc_err_t check_key(const char *path, EVP_PKEY *key, pc_diag_t *diag)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "import key %s is %s, not RSA; make an RSA key with 'pkcsctl import-key'",
                       path, EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
    if (EVP_PKEY_get_bits(key) < PC_IMPORT_MIN_RSA_BITS)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "import key %s is RSA-%d, below the minimum of %d bits; make a new one "
                       "with 'pkcsctl import-key'",
                       path, EVP_PKEY_get_bits(key), PC_IMPORT_MIN_RSA_BITS);
    return PC_OK;
}

static pc_err_t check_new_args(const char *key_file, const char *key_id, pc_import_t **out,
                               pc_diag_t *diag)
{
    if (out == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pc_import_new: no place for the result");
    *out = NULL;
    if (key_file == NULL || key_file[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "no import key file: set worker.import_key_file (PC_IMPORT_KEY_FILE); "
                       "make one with 'pkcsctl import-key'");
    if (key_id == NULL || key_id[0] == '\0' || strlen(key_id) > PC_MAX_ID_LEN)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the import key id must be 1 to %u characters; set worker.import_key_id "
                       "(PC_IMPORT_KEY_ID)",
                       PC_MAX_ID_LEN);
    return PC_OK;
}

pc_err_t pc_import_new(const char *key_file, const char *key_id, const pc_pfx_limits_t *limits,
                       pc_import_t **out, pc_diag_t *diag)
{
    pc_err_t err;
    char *pem = NULL;
    size_t len = 0;
    unsigned mode = 0;
    bool encrypted = false;
    pc_import_t *imp = NULL;

    if ((err = check_new_args(key_file, key_id, out, diag)) != PC_OK)
        return err;
    if ((err = read_key_file(key_file, &pem, &len, &mode, diag)) != PC_OK)
        goto out_wipe_pem;
    if ((imp = calloc(1, sizeof(*imp))) == NULL || (imp->key_id = strdup(key_id)) == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory loading import key %s", key_file);
        goto out_free_imp;
    }
    if ((err = parse_key(key_file, pem, len, &imp->key, &encrypted, diag)) != PC_OK ||
        (err = check_mode(key_file, mode, encrypted, diag)) != PC_OK ||
        (err = check_key(key_file, imp->key, diag)) != PC_OK)
        goto out_free_imp;
    snprintf(imp->desc, sizeof(imp->desc), "RSA-%d", EVP_PKEY_get_bits(imp->key));
    imp->limits = limits != NULL
                      ? *limits
                      : (pc_pfx_limits_t){.max_iterations = PC_PFX_MAX_ITERATIONS_DEFAULT,
                                          .max_bytes = PC_PFX_MAX_BYTES_DEFAULT,
                                          .max_bags = PC_PFX_MAX_BAGS_DEFAULT,
                                          .max_certs = PC_PFX_MAX_CERTS_DEFAULT};
    *out = imp;
    imp = NULL;
out_free_imp:
    pc_import_free(imp);
out_wipe_pem:
    OPENSSL_clear_free(pem, len);
    return err;
}

const char *pc_import_get0_key_id(const pc_import_t *imp)
{
    return imp != NULL ? imp->key_id : NULL;
}

void pc_import_free(pc_import_t *imp)
{
    if (imp == NULL)
        return;
    EVP_PKEY_free(imp->key); /* OpenSSL clears the private key's numbers */
    free(imp->key_id);
    free(imp);
}

/* ---- the request's parameters ---- */

static pc_err_t oaep_md(const char *name, const EVP_MD **md, pc_diag_t *diag)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "sha256") == 0)
        *md = EVP_sha256();
    else if (strcmp(name, "sha384") == 0)
        *md = EVP_sha384();
    else if (strcmp(name, "sha512") == 0)
        *md = EVP_sha512();
    else
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "importPfx.oaepHash \"%.32s\" is not supported; use sha256 (the default), "
                       "sha384 or sha512",
                       name);
    return PC_OK;
}

static pc_err_t parse_purpose(const char *name, purpose_t *purpose, pc_diag_t *diag)
{
    if (name == NULL || name[0] == '\0')
        *purpose = PURPOSE_ANY;
    else if (strcmp(name, "smime_signing") == 0)
        *purpose = PURPOSE_SIGNING;
    else if (strcmp(name, "smime_encryption") == 0)
        *purpose = PURPOSE_ENCRYPTION;
    else
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "importPfx.intendedPurpose \"%.40s\" is unknown; use smime_signing, "
                       "smime_encryption or leave it empty for either",
                       name);
    return PC_OK;
}

static pc_err_t check_key_id(const pc_import_t *imp, const char *id, pc_diag_t *diag)
{
    if (id != NULL && strcmp(id, imp->key_id) == 0)
        return PC_OK;
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "importPfx.importKeyId is \"%.128s\" but this connector's import key is "
                   "\"%s\"; encrypt the PFX password to import key %s",
                   id != NULL && id[0] != '\0' ? id : "(empty)", imp->key_id, imp->key_id);
}

/* ---- the password ---- */

static pc_err_t oaep_ctx(const pc_import_t *imp, const EVP_MD *md, EVP_PKEY_CTX **ctx,
                         pc_diag_t *diag)
{
    *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, imp->key, NULL);
    if (*ctx == NULL || EVP_PKEY_decrypt_init(*ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(*ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(*ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(*ctx, md) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not set up RSA-OAEP with import key %s",
                           imp->key_id);
    return PC_OK;
}

static pc_err_t not_for_this_key(const pc_import_t *imp, pc_diag_t *diag)
{
    ERR_clear_error(); /* says nothing useful, and less is better near a padding check */
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "the PFX password could not be decrypted with import key %s (%s): it was not "
                   "encrypted to this key (or with another OAEP hash); encrypt it again to the "
                   "public key of %s with the hash named in oaepHash",
                   imp->key_id, imp->desc, imp->key_id);
}

/* decrypt_password yields the password as a NUL-terminated string in *pw, which the caller
 * wipes with OPENSSL_clear_free(*pw, *cap). */
static pc_err_t decrypt_password(const pc_import_t *imp, const ProtobufCBinaryData *in,
                                 const EVP_MD *md, char **pw, size_t *cap, pc_diag_t *diag)
{
    pc_err_t err;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len;

    *pw = NULL;
    *cap = (size_t)EVP_PKEY_get_size(imp->key) + 1; /* the ciphertext's size, and a NUL */
    if (in->len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "importPfx.encryptedPassword is missing; encrypt the PFX password to "
                       "import key %s with RSA-OAEP",
                       imp->key_id);
    if (in->len != *cap - 1)
        return not_for_this_key(imp, diag);
    if ((err = oaep_ctx(imp, md, &ctx, diag)) != PC_OK)
        goto out_free_ctx;
    if ((*pw = OPENSSL_zalloc(*cap)) == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory decrypting the PFX password");
        goto out_free_ctx;
    }
    len = *cap - 1; /* what OpenSSL asks for; OAEP plaintexts are shorter, leaving the NUL */
    if (EVP_PKEY_decrypt(ctx, (unsigned char *)*pw, &len, in->data, in->len) != 1)
        err = not_for_this_key(imp, diag);
    else if (memchr(*pw, '\0', len) != NULL)
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "the decrypted PFX password holds a NUL byte; encrypt the password's "
                      "UTF-8 bytes, without a terminator");
    else
        (*pw)[len] = '\0';
out_free_ctx:
    EVP_PKEY_CTX_free(ctx);
    if (err != PC_OK) {
        OPENSSL_clear_free(*pw, *cap);
        *pw = NULL;
    }
    return err;
}

/* ---- the PFX and its certificate ---- */

static void parts_clear(parts_t *parts)
{
    EVP_PKEY_free(parts->key);
    X509_free(parts->cert);
    sk_X509_pop_free(parts->chain, X509_free);
    memset(parts, 0, sizeof(*parts));
}

static pc_err_t open_pfx(const pc_import_t *imp, const ProtobufCBinaryData *pfx, const char *pw,
                         parts_t *parts, pc_diag_t *diag)
{
    pc_err_t err;

    /* the import's limits hold the PFX's own key-derivation work in check before any of it */
    err = pc_pfx_open_limited(pfx->data, pfx->len, pw, &imp->limits, &parts->key, &parts->cert,
                              &parts->chain, diag);
    if (err == PC_ERR_UNAUTHENTICATED)
        return pc_fail(diag, err,
                       "the password decrypted with import key %s does not open the PFX: the "
                       "password encrypted in the request is not this PFX's password; upload "
                       "the PFX again with its own password",
                       imp->key_id);
    if (err != PC_OK)
        pc_diag_prefix(diag, "importPfx.pfx");
    return err;
}

static void subject_text(X509 *cert, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n = 0;

    if (bio != NULL && X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                                          XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        n = BIO_read(bio, buf, (int)len - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(bio);
    ERR_clear_error();
}

static void time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "(unreadable)");
}

static pc_err_t check_validity(X509 *cert, pc_diag_t *diag)
{
    char subject[160], when[40];
    time_t now = time(NULL), latest = now + PC_IMPORT_CLOCK_SKEW_S;
    int after = X509_cmp_time(X509_get0_notAfter(cert), &now);      /* -1: notAfter <= now */
    int before = X509_cmp_time(X509_get0_notBefore(cert), &latest); /* 1: later than latest */

    if (after == 0 || before == 0) {
        ERR_clear_error();
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the PFX's certificate has unreadable validity dates");
    }
    if (after > 0 && before < 0)
        return PC_OK;
    subject_text(cert, subject, sizeof(subject));
    if (after < 0) {
        time_text(X509_get0_notAfter(cert), when, sizeof(when));
        return pc_fail(diag, PC_ERR_POLICY,
                       "the PFX's certificate \"%s\" expired on %s; upload a current one", subject,
                       when);
    }
    time_text(X509_get0_notBefore(cert), when, sizeof(when));
    return pc_fail(diag, PC_ERR_POLICY,
                   "the PFX's certificate \"%s\" is not valid before %s; upload it once it is "
                   "valid (or check this host's clock)",
                   subject, when);
}

/* eku_text lists the certificate's extended key usages by short name ("serverAuth, ..."). */
static void eku_text(X509 *cert, char *buf, size_t len)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    size_t used = 0;
    char oid[80];

    buf[0] = '\0';
    for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku) && used < len; i++) {
        ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
        int nid = OBJ_obj2nid(obj);
        if (nid == NID_undef)
            OBJ_obj2txt(oid, sizeof(oid), obj, 1);
        int n = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "",
                         nid != NID_undef ? OBJ_nid2sn(nid) : oid);
        used += n > 0 ? (size_t)n : 0;
    }
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
}

/* S/MIME wants emailProtection in an EKU extension, or anyExtendedKeyUsage (RFC 8550 4.4.4). */
static pc_err_t check_eku(X509 *cert, pc_diag_t *diag)
{
    char have[200];

    if ((X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) == 0 ||
        (X509_get_extended_key_usage(cert) & (XKU_SMIME | XKU_ANYEKU)) != 0)
        return PC_OK;
    eku_text(cert, have, sizeof(have));
    return pc_fail(diag, PC_ERR_POLICY,
                   "the PFX's certificate is not for S/MIME: its extended key usage (%s) lacks "
                   "emailProtection (1.3.6.1.5.5.7.3.4); upload an S/MIME certificate",
                   have[0] ? have : "empty");
}

static pc_err_t ku_refused(X509 *cert, purpose_t purpose, const char *enc_usage, pc_diag_t *diag)
{
    char have[200];

    pc_key_usage_text(X509_get_key_usage(cert), have, sizeof(have));
    if (purpose == PURPOSE_SIGNING)
        return pc_fail(diag, PC_ERR_POLICY,
                       "the PFX's certificate cannot sign S/MIME mail: its key usage (%s) has "
                       "neither digitalSignature nor nonRepudiation; upload a signing certificate "
                       "or set intendedPurpose to smime_encryption",
                       have[0] ? have : "empty");
    if (purpose == PURPOSE_ENCRYPTION)
        return pc_fail(diag, PC_ERR_POLICY,
                       "the PFX's certificate cannot receive S/MIME mail: %s; upload an "
                       "encryption certificate or set intendedPurpose to smime_signing",
                       enc_usage);
    return pc_fail(diag, PC_ERR_POLICY,
                   "the PFX's certificate can neither sign nor receive S/MIME mail: its key "
                   "usage is %s; upload an S/MIME certificate",
                   have[0] ? have : "empty");
}

/* check_key_usage applies the key usage extension, when present, to the purpose: signing needs
 * digitalSignature or nonRepudiation; encryption keyEncipherment (RSA) or keyAgreement (EC). */
static pc_err_t check_key_usage(X509 *cert, EVP_PKEY *key, purpose_t purpose, pc_diag_t *diag)
{
    bool has_ku = (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0;
    uint32_t ku = X509_get_key_usage(cert);
    int type = EVP_PKEY_get_base_id(key);
    uint32_t enc_bit = type == EVP_PKEY_RSA ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
    bool can_sign = !has_ku || (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) != 0;
    bool can_encrypt =
        (type == EVP_PKEY_RSA || type == EVP_PKEY_EC) && (!has_ku || (ku & enc_bit) != 0);
    char why[320], have[200];

    if ((purpose == PURPOSE_SIGNING && can_sign) ||
        (purpose == PURPOSE_ENCRYPTION && can_encrypt) ||
        (purpose == PURPOSE_ANY && (can_sign || can_encrypt)))
        return PC_OK;
    pc_key_usage_text(ku, have, sizeof(have));
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC)
        snprintf(why, sizeof(why), "its %s key cannot encrypt",
                 EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
    else
        snprintf(why, sizeof(why), "its key usage (%s) lacks %s, which an %s key needs",
                 have[0] ? have : "empty",
                 type == EVP_PKEY_RSA ? "keyEncipherment" : "keyAgreement",
                 type == EVP_PKEY_RSA ? "RSA" : "EC");
    return ku_refused(cert, purpose, why, diag);
}

static pc_err_t check_cert(const parts_t *parts, purpose_t purpose, pc_diag_t *diag)
{
    pc_err_t err;

    if (X509_check_private_key(parts->cert, parts->key) != 1) {
        ERR_clear_error();
        return pc_fail(diag, PC_ERR_POLICY,
                       "the PFX's private key does not belong to its certificate; export the "
                       "PFX again with the certificate's own key");
    }
    if (X509_check_purpose(parts->cert, -1, 0) != 1) {
        ERR_clear_error();
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the PFX's certificate has extensions that cannot be parsed");
    }
    if ((err = check_validity(parts->cert, diag)) != PC_OK ||
        (err = check_eku(parts->cert, diag)) != PC_OK)
        return err;
    return check_key_usage(parts->cert, parts->key, purpose, diag);
}

/* ---- the result ---- */

/* take_friendly_name moves the friendly name PKCS12_parse put on the certificate into a string
 * of ours (NULL when there is none) and clears the certificate's PKCS#12 attributes, so that
 * the new PFX's friendly name and local key id come from pc_pfx_build alone: PKCS12_create
 * also copies them from the certificate, and OpenSSL versions differ in which copy wins or
 * whether both are written. */
static pc_err_t take_friendly_name(X509 *cert, char **name, pc_diag_t *diag)
{
    int len = 0;
    const unsigned char *alias = X509_alias_get0(cert, &len);

    *name = NULL;
    if (alias != NULL && len > 0) {
        if ((*name = malloc((size_t)len + 1)) == NULL)
            return pc_fail(diag, PC_ERR_NOMEM, "out of memory copying the PFX's friendly name");
        memcpy(*name, alias, (size_t)len);
        (*name)[len] = '\0';
    }
    if (X509_alias_set1(cert, NULL, 0) != 1 || X509_keyid_set1(cert, NULL, 0) != 1) {
        free(*name);
        *name = NULL;
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "could not clear the certificate's PFX attributes");
    }
    return PC_OK;
}

/* seal_pfx re-packs the parts with an empty password and envelopes them to the device key. */
static pc_err_t seal_pfx(parts_t *parts, const ProtobufCBinaryData *device_key, unsigned char **env,
                         size_t *env_len, pc_diag_t *diag)
{
    pc_err_t err;
    char *name = NULL;
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;

    if ((err = take_friendly_name(parts->cert, &name, diag)) != PC_OK)
        return err;
    err = pc_pfx_build(parts->key, parts->cert, parts->chain, name, "", &pfx, &pfx_len, diag);
    if (err == PC_OK)
        err = pc_envelope_seal(device_key->data, device_key->len, pfx, pfx_len, env, env_len, diag);
    OPENSSL_clear_free(pfx, pfx_len); /* the empty password protects nothing */
    free(name);
    return err;
}

static pc_err_t fill_result(Pkcs__V1__Result *res, const parts_t *parts, const unsigned char *env,
                            size_t env_len, pc_diag_t *diag)
{
    pc_err_t err = pc_result_set_cert(res, parts->cert, parts->chain, diag);

    if (err != PC_OK)
        return err;
    if (pc_result_set_bytes(&res->encrypted_pfx, env, env_len) != PC_OK)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory putting the PFX into the result");
    res->status = PKCS__V1__STATUS__IMPORTED;
    return PC_OK;
}

static pc_err_t check_request(const pc_import_t *imp, const Pkcs__V1__ImportPfxRequest *body,
                              const Pkcs__V1__Result *res, const EVP_MD **md, purpose_t *purpose,
                              pc_diag_t *diag)
{
    pc_err_t err;

    if (imp == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "IMPORT_PFX needs an import key and this worker has none: set "
                       "worker.import_key_file (PC_IMPORT_KEY_FILE), made with 'pkcsctl "
                       "import-key'");
    if (body == NULL || res == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_import_run needs a request body and a result");
    if ((err = check_key_id(imp, body->import_key_id, diag)) != PC_OK ||
        (err = oaep_md(body->oaep_hash, md, diag)) != PC_OK)
        return err;
    return parse_purpose(body->intended_purpose, purpose, diag);
}

pc_err_t pc_import_run(const pc_import_t *imp, const Pkcs__V1__ImportPfxRequest *body,
                       Pkcs__V1__Result *res, pc_diag_t *diag)
{
    pc_err_t err;
    const EVP_MD *md = NULL;
    purpose_t purpose = PURPOSE_ANY;
    char *pw = NULL;
    size_t pw_cap = 0, env_len = 0;
    parts_t parts = {0};
    unsigned char *env = NULL;

    if ((err = check_request(imp, body, res, &md, &purpose, diag)) != PC_OK)
        goto out;
    if ((err = decrypt_password(imp, &body->encrypted_password, md, &pw, &pw_cap, diag)) != PC_OK)
        goto out;
    err = open_pfx(imp, &body->pfx, pw, &parts, diag);
    OPENSSL_clear_free(pw, pw_cap);
    if (err != PC_OK)
        goto out_clear_parts;
    if ((err = check_cert(&parts, purpose, diag)) != PC_OK ||
        (err = seal_pfx(&parts, &body->device_public_key, &env, &env_len, diag)) != PC_OK)
        goto out_clear_parts;
    err = fill_result(res, &parts, env, env_len, diag);
    OPENSSL_free(env);
out_clear_parts:
    parts_clear(&parts);
out:
    return err;
}
