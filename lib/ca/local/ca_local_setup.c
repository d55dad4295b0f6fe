/*
 * ca_local_setup.c - where the local CA's key and certificate come from: files the operator
 * gave (or a certificate file and a key in a PKCS#11 token, ca_local_token.c), the state dir of
 * an earlier start, or a CA generated on first start.
 *
 * The private key never reaches disk unencrypted: it is written as encrypted PKCS#8 (AES-256)
 * to a 0600 file created with O_EXCL, then renamed into place. Several workers may start at once
 * on one empty state dir; an flock on state_dir/lock makes exactly one of them generate and the
 * others load what it wrote. Runs once, on the thread that creates the CA.
 */
#include "ca_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "csr.h"
#include "file.h"
#include "pem.h"

#define DEFAULT_SUBJECT "CN=PKCS Connector Local CA"
#define CA_VALIDITY_DAYS 3650
#define CLOCK_SKEW_SECONDS 300

/* Paths of the state dir's files. */
typedef struct state_paths {
    char cert[PATH_MAX];
    char key[PATH_MAX];
} state_paths_t;

static pc_err_t join_path(char *out, size_t size, const char *dir, const char *name,
                          pc_diag_t *diag)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA state directory path too long: %s", dir);
    return PC_OK;
}

/* The CA's folder and those above it, made private (0700) where they are new. */
static pc_err_t make_dirs(const char *dir, pc_diag_t *diag)
{
    pc_err_t err = pc_file_mkdirs(dir, 0700, diag);
    if (err == PC_ERR_IO)
        pc_fail(diag, err, "%s; create it or set ca.state_dir to a writable place", diag->msg);
    return err;
}

static pc_err_t load_cert_chain(const char *path, X509 **cert, STACK_OF(X509) * *chain,
                                pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    X509 *x = NULL;
    FILE *fp = fopen(path, "r");

    if (fp == NULL)
        return pc_fail(diag, PC_ERR_IO, "cannot open the CA certificate %s: %s; check the path",
                       path, strerror(errno));
    *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    *chain = sk_X509_new_null();
    if (*cert == NULL || *chain == NULL || !sk_X509_push(*chain, *cert) || !X509_up_ref(*cert)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "%s holds no PEM certificate; give the CA "
                          "certificate in PEM form",
                          path);
        goto out_close;
    }
    while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(*chain, x)) {
            X509_free(x);
            err = pc_fail(diag, PC_ERR_NOMEM, "out of memory reading the chain in %s", path);
            goto out_close;
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
out_close:
    fclose(fp);
    return err;
}

pc_err_t pc_ca_local_load_key(const char *path, const char *pass, EVP_PKEY **key, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_pem_passphrase_t pw = {.text = pass, .asked = false};
    FILE *fp = fopen(path, "r");

    if (fp == NULL)
        return pc_fail(diag, PC_ERR_IO, "cannot open the CA key %s: %s; check the path", path,
                       strerror(errno));
    *key = PEM_read_PrivateKey(fp, NULL, pc_pem_passphrase_cb, &pw);
    if (*key == NULL && pw.asked) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "cannot decrypt the CA key %s: wrong passphrase? Set the passphrase it "
                          "was written with in ca.key_passphrase or PC_CA_KEY_PASSPHRASE",
                          path);
        goto out_close;
    }
    if (*key == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "%s holds no PEM private key", path);
        goto out_close;
    }
    if (!pw.asked) {
        EVP_PKEY_free(*key);
        *key = NULL;
        err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                      "the CA key %s is not encrypted; encrypt it (openssl pkcs8 -topk8 -v2 "
                      "aes-256-cbc -in %s -out %s.enc) and point ca.key_file at the result",
                      path, path, path);
    }
out_close:
    fclose(fp);
    return err;
}

/* The loaded pair must be usable: a CA certificate, still valid, whose key we hold. */
static pc_err_t check_pair(X509 *cert, EVP_PKEY *key, const char *cert_path, const char *key_path,
                           pc_diag_t *diag)
{
    if (!X509_check_private_key(cert, key))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "the key in %s does not belong to the certificate in %s; give the "
                           "key of that certificate",
                           key_path, cert_path);
    ERR_clear_error();
    if (X509_check_ca(cert) < 1)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "%s is not a CA certificate (basicConstraints CA:TRUE is missing); give "
                       "the certificate of a CA",
                       cert_path);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the CA certificate %s has expired; renew the CA or remove it from the "
                       "state directory to generate a new one",
                       cert_path);
    return PC_OK;
}

static pc_err_t load_pair(pc_ca_local_t *lca, const char *cert_path, const char *key_path,
                          const char *pass, pc_diag_t *diag)
{
    pc_err_t err = load_cert_chain(cert_path, &lca->cert, &lca->chain, diag);
    if (err == PC_OK)
        err = pc_ca_local_load_key(key_path, pass, &lca->key, diag);
    if (err == PC_OK)
        err = check_pair(lca->cert, lca->key, cert_path, key_path, diag);
    return err;
}

/* Parses "CN=Name,O=Org" (a backslash escapes the next character) into name. */
static pc_err_t parse_subject(const char *text, X509_NAME *name, pc_diag_t *diag)
{
    char field[512];
    size_t len = 0;

    for (const char *p = text;; p++) {
        if (*p == '\\' && p[1] != '\0' && len + 1 < sizeof(field)) {
            field[len++] = *++p;
            continue;
        }
        if (*p != ',' && *p != '\0') {
            if (len + 1 >= sizeof(field))
                return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA subject too long: %s", text);
            field[len++] = *p;
            continue;
        }
        field[len] = '\0';
        char *eq = strchr(field, '=');
        char *type = field;
        while (*type == ' ')
            type++;
        if (eq == NULL || eq == type || eq[1] == '\0')
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "CA subject \"%s\": \"%s\" is not TYPE=VALUE; write e.g. "
                           "CN=My CA,O=My Org",
                           text, field);
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8, (const unsigned char *)eq + 1,
                                        -1, -1, 0))
            return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                               "CA subject \"%s\": unknown attribute type \"%s\"; use CN, O, OU, "
                               "L, ST, C or DC",
                               text, type);
        len = 0;
        if (*p == '\0')
            break;
    }
    return PC_OK;
}

static pc_err_t add_conf_ext(X509 *cert, int nid, const char *value, pc_diag_t *diag)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add %s to the new CA certificate",
                           OBJ_nid2sn(nid));
    return PC_OK;
}

static pc_err_t build_ca_cert(EVP_PKEY *key, const char *subject, X509 **out, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    time_t now = time(NULL);

    if (cert == NULL || name == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory generating the CA certificate");
        goto out_free_cert;
    }
    err = parse_subject(subject, name, diag);
    if (err == PC_OK)
        err = pc_ca_local_set_serial(cert, diag);
    if (err != PC_OK)
        goto out_free_cert;
    if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_subject_name(cert, name) ||
        !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, key) ||
        !ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, -CLOCK_SKEW_SECONDS) ||
        !ASN1_TIME_adj(X509_getm_notAfter(cert), now, CA_VALIDITY_DAYS, 0)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot fill the new CA certificate");
        goto out_free_cert;
    }
    err = add_conf_ext(cert, NID_basic_constraints, "critical,CA:TRUE", diag);
    if (err == PC_OK)
        err = add_conf_ext(cert, NID_key_usage, "critical,keyCertSign,cRLSign", diag);
    if (err == PC_OK)
        err = add_conf_ext(cert, NID_subject_key_identifier, "hash", diag);
    if (err != PC_OK)
        goto out_free_cert;
    if (X509_sign(cert, key, pc_csr_digest_for(key)) <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot self-sign the new CA certificate");
        goto out_free_cert;
    }
    /* Kept as parsed from its DER, as a CA loaded from its file is: a parsed certificate keeps
     * its encoding, where one OpenSSL signed is encoded anew by every i2d_X509, and the chain
     * is written into every PKCS#12 and Result. */
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    const unsigned char *p = der;
    *out = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
    OPENSSL_free(der);
    if (*out == NULL)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the new CA certificate");
out_free_cert:
    X509_NAME_free(name);
    X509_free(cert);
    return err;
}

typedef int (*pem_writer_fn)(FILE *fp, const void *obj, const char *pass);

static int write_key_pem(FILE *fp, const void *obj, const char *pass)
{
    return PEM_write_PKCS8PrivateKey(fp, obj, EVP_aes_256_cbc(), pass, (int)strlen(pass), NULL,
                                     NULL);
}

static int write_cert_pem(FILE *fp, const void *obj, const char *pass)
{
    return PEM_write_X509(fp, obj);
}

/* Writes obj to path through path.tmp (created O_EXCL with mode), synced, then renamed. */
static pc_err_t write_atomic(const char *path, mode_t mode, pem_writer_fn writer, const void *obj,
                             const char *pass, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "path too long: %s", path);

    /* We hold state_dir/lock: a leftover temp file is from a crashed start, not a live one. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fp == NULL) {
        err = pc_fail(diag, PC_ERR_IO,
                      "cannot create %s: %s; check the state directory's "
                      "permissions",
                      tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return err;
    }
    if (fchmod(fd, mode) != 0 || !writer(fp, obj, pass) || fflush(fp) != 0 || fsync(fd) != 0) {
        err = pc_fail_ssl(diag, PC_ERR_IO,
                          "cannot write %s: %s; free disk space or fix "
                          "permissions",
                          tmp, strerror(errno));
        fclose(fp);
        goto out_unlink;
    }
    if (fclose(fp) != 0 || rename(tmp, path) != 0) {
        err = pc_fail(diag, PC_ERR_IO, "cannot move %s to %s: %s", tmp, path, strerror(errno));
        goto out_unlink;
    }
    return PC_OK;
out_unlink:
    unlink(tmp);
    return err;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

pc_err_t pc_ca_local_write_pair(const char *dir, const char *key_path, EVP_PKEY *key,
                                const char *cert_path, X509 *cert, const char *pass,
                                pc_diag_t *diag)
{
    /* Key first: the certificate appearing is what tells other processes the pair is whole. */
    pc_err_t err = write_atomic(key_path, 0600, write_key_pem, key, pass, diag);
    if (err == PC_OK)
        err = write_atomic(cert_path, 0644, write_cert_pem, cert, NULL, diag);
    if (err == PC_OK)
        sync_dir(dir);
    return err;
}

static pc_err_t generate(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg,
                         const state_paths_t *paths, pc_diag_t *diag)
{
    const char *subject =
        cfg->subject != NULL && cfg->subject[0] != '\0' ? cfg->subject : DEFAULT_SUBJECT;
    /* P-256: the curve every device and the CA/Browser Forum accept, and the one OpenSSL signs
     * with its constant-time assembly; a P-384 signature costs about 20 times as much, and the
     * CA signs once per certificate. */
    lca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (lca->key == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot generate the local CA's P-256 key");
    pc_err_t err = build_ca_cert(lca->key, subject, &lca->cert, diag);
    if (err != PC_OK)
        return err;
    lca->chain = sk_X509_new_null();
    if (lca->chain == NULL || !sk_X509_push(lca->chain, lca->cert) || !X509_up_ref(lca->cert))
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory generating the CA");
    return pc_ca_local_write_pair(cfg->state_dir, paths->key, lca->key, paths->cert, lca->cert,
                                  cfg->key_passphrase, diag);
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Under state_dir/lock: load the CA an earlier start left, or generate one. */
static pc_err_t load_or_generate(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg,
                                 const state_paths_t *paths, pc_diag_t *diag)
{
    bool have_cert = file_exists(paths->cert), have_key = file_exists(paths->key);

    if (have_cert && have_key)
        return load_pair(lca, paths->cert, paths->key, cfg->key_passphrase, diag);
    if (have_key)
        return pc_fail(diag, PC_ERR_IO,
                       "%s exists but %s does not (an interrupted first start?); restore %s, or "
                       "if this CA never issued a certificate delete %s to generate a new CA",
                       paths->key, paths->cert, paths->cert, paths->key);
    if (have_cert)
        return pc_fail(diag, PC_ERR_IO,
                       "%s exists but its key %s does not; restore the key, or move %s away to "
                       "generate a new CA",
                       paths->cert, paths->key, paths->cert);
    return generate(lca, cfg, paths, diag);
}

static pc_err_t from_state_dir(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg, pc_diag_t *diag)
{
    state_paths_t paths;
    pc_err_t err = join_path(paths.cert, sizeof(paths.cert), cfg->state_dir, "ca.crt", diag);
    if (err == PC_OK)
        err = join_path(paths.key, sizeof(paths.key), cfg->state_dir, "ca.key", diag);
    if (err != PC_OK)
        return err;

    int fd = -1;
    err = pc_ca_local_lock_state(cfg->state_dir, &fd, diag);
    if (err != PC_OK)
        return err;
    err = load_or_generate(lca, cfg, &paths, diag);
    pc_ca_local_unlock_state(fd);
    return err;
}

pc_err_t pc_ca_local_lock_state(const char *state_dir, int *fd, pc_diag_t *diag)
{
    char path[PATH_MAX];
    pc_err_t err = join_path(path, sizeof(path), state_dir, "lock", diag);
    if (err != PC_OK)
        return err;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0)
        return pc_fail(diag, PC_ERR_IO,
                       "cannot open %s: %s; check the state directory's "
                       "permissions",
                       path, strerror(errno));
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            err = pc_fail(diag, PC_ERR_IO, "cannot lock %s: %s", path, strerror(errno));
            close(*fd);
            *fd = -1;
            return err;
        }
    }
    return PC_OK;
}

void pc_ca_local_unlock_state(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

pc_err_t pc_ca_local_state_path(const char *state_dir, const char *name, char *out, size_t size,
                                pc_diag_t *diag)
{
    return join_path(out, size, state_dir, name, diag);
}

ASN1_OCTET_STRING *pc_ca_local_key_id(X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASN1_OCTET_STRING *id = NULL;

    if (!X509_pubkey_digest(cert, EVP_sha1(), md, &len))
        return NULL;
    id = ASN1_OCTET_STRING_new();
    if (id != NULL && !ASN1_OCTET_STRING_set(id, md, (int)len)) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }
    return id;
}

pc_err_t pc_ca_local_set_serial(X509 *cert, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    unsigned char bytes[20];
    BIGNUM *bn = BN_new();

    /* 159 random bits, positive (RFC 5280 4.1.2.2: at most 20 octets, positive, never zero). */
    do {
        if (bn == NULL || RAND_bytes(bytes, sizeof(bytes)) != 1) {
            err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot draw a random serial number");
            goto out_free_bn;
        }
        bytes[0] &= 0x7f;
        BN_bin2bn(bytes, sizeof(bytes), bn);
    } while (BN_num_bits(bn) < 64);
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot set the serial number");
out_free_bn:
    BN_free(bn);
    return err;
}

/* The CA certificate from cert_file, its key in a token (key_uri). */
static pc_err_t load_token_pair(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg,
                                pc_diag_t *diag)
{
    pc_err_t err = load_cert_chain(cfg->cert_file, &lca->cert, &lca->chain, diag);
    if (err == PC_OK)
        err = pc_ca_local_token_key(cfg, &lca->key, &lca->engine, diag);
    if (err == PC_OK)
        err = check_pair(lca->cert, lca->key, cfg->cert_file, cfg->key_uri, diag);
    return err;
}

pc_err_t pc_ca_local_setup(pc_ca_local_t *lca, const pc_ca_local_config_t *cfg, pc_diag_t *diag)
{
    pc_err_t err = make_dirs(cfg->state_dir, diag);
    if (err != PC_OK)
        return err;
    bool own_files = cfg->cert_file != NULL && cfg->cert_file[0] != '\0';
    bool own_key = cfg->key_file != NULL && cfg->key_file[0] != '\0';
    bool token = cfg->key_uri != NULL && cfg->key_uri[0] != '\0';
    if (token && (own_key || !own_files))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "ca.key_uri (the CA key in a token) goes with ca.cert_file (the CA "
                       "certificate) and without ca.key_file; set cert_file and remove key_file");
    if (!token && own_files != own_key)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "ca.cert_file and ca.key_file go together; set both, or neither to use "
                       "the CA in %s",
                       cfg->state_dir);
    if (token)
        err = load_token_pair(lca, cfg, diag);
    else if (own_files)
        err = load_pair(lca, cfg->cert_file, cfg->key_file, cfg->key_passphrase, diag);
    else
        err = from_state_dir(lca, cfg, diag);
    if (err != PC_OK)
        return err;

    /* Cache the certificate's parsed extensions now, while one thread owns it. */
    X509_check_purpose(lca->cert, -1, 0);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(lca->cert);
    lca->keyid = ski != NULL ? ASN1_OCTET_STRING_dup(ski) : pc_ca_local_key_id(lca->cert);
    lca->md = pc_csr_digest_for(lca->key);
    if (lca->keyid == NULL)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot compute the CA's key identifier");
    return PC_OK;
}
