/*
 * pkcsctl import-key: makes the connector's RSA import key pair for the PFX import - the private
 * half for the workers (PKCS#8 PEM, mode 0600, optionally encrypted), the public half for
 * upstream, which encrypts PFX passwords to it (pkcsctl import-encrypt) - and prints the key's
 * id and fingerprint. Never overwrites a key file. Also home of what import-encrypt shares with
 * it (import_int.h): the key id rules and the fingerprint. Main thread only.
 */
#include "import_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common.h"
#include "import.h"
#include "keygen.h"
#include "numbers.h"
#include "request.h"

#define KEY_CMD "import-key"
#define DEFAULT_BITS 3072

bool pkcsctl_import_key_id_ok(const char *id)
{
    size_t len = strlen(id);

    if (len == 0 || len > PC_MAX_ID_LEN)
        return false;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

int pkcsctl_import_fingerprint(const EVP_PKEY *key, char hex[PKCSCTL_SHA256_HEX_LEN])
{
    unsigned char *der = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};

    hex[0] = '\0';
    if (pkcsctl_key_spki(key, &der, &len, &diag) == PC_OK)
        pkcsctl_sha256_hex(der, len, hex);
    free(der);
    return hex[0] != '\0' ? 0 : -1;
}

typedef struct key_opts {
    const char *out_key;
    const char *out_pub;
    const char *id;
    unsigned bits;
    bool encrypt;
} key_opts_t;

static void key_help(void)
{
    printf("usage: pkcsctl import-key --out-key FILE --out-pub FILE [--bits 3072] [--id ID]\n"
           "                          [--encrypt]\n\n"
           "Makes the connector's RSA import key pair. Upstream encrypts the passwords of\n"
           "uploaded PFX files to the public key (pkcsctl import-encrypt --pub); the workers\n"
           "decrypt them with the private key (worker.import_key_file, PC_IMPORT_KEY_FILE) and\n"
           "know it by its id (worker.import_key_id, PC_IMPORT_KEY_ID).\n\n"
           "options:\n"
           "  --out-key FILE  the private key, PKCS#8 PEM, created with mode 0600; an existing\n"
           "                  file is never overwritten\n"
           "  --out-pub FILE  the public key, PEM (SubjectPublicKeyInfo), mode 0644\n"
           "  --bits N        RSA key size: 2048, 3072 (default) or 4096\n"
           "  --id ID         the key id (default " IMPORT_DEFAULT_KEY_ID
           "): letters, digits, . _ -\n"
           "  --encrypt       encrypt the private key (AES-256) with the passphrase in\n"
           "                  $" PC_IMPORT_PASSPHRASE_ENV ", which the workers then need too\n\n"
           "Prints the key id and the SHA-256 fingerprint of the public key (of its DER\n"
           "SubjectPublicKeyInfo), for upstream to check the key it was given.\n");
}

/* create_new makes path with exactly mode, failing when it exists. */
static int create_new(const char *path, mode_t mode, int *fd)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (*fd < 0)
        return pkcsctl_error(KEY_CMD, "cannot create %s: %s%s", path, strerror(errno),
                             errno == EEXIST ? "; refusing to overwrite a key, remove it first or "
                                               "choose another name"
                                             : "");
    if (fchmod(*fd, mode) != 0) { /* the umask may have taken bits away */
        int saved = errno;
        close(*fd);
        unlink(path);
        return pkcsctl_error(KEY_CMD, "cannot set mode %04o on %s: %s", (unsigned)mode, path,
                             strerror(saved));
    }
    return 0;
}

/* write_pem writes key to fd: the private key as PKCS#8 (encrypted with passphrase unless it
 * is NULL), or the public key. The fd BIO does not buffer, and OpenSSL wipes its own
 * temporary copies of the key. */
static int write_pem(int fd, const char *path, EVP_PKEY *key, bool private_key,
                     const char *passphrase)
{
    BIO *bio = BIO_new_fd(fd, BIO_NOCLOSE);
    int ok = bio != NULL;

    if (ok && private_key)
        ok = PEM_write_bio_PKCS8PrivateKey(bio, key, passphrase ? EVP_aes_256_cbc() : NULL, NULL, 0,
                                           NULL, (void *)(uintptr_t)passphrase) == 1;
    else if (ok)
        ok = PEM_write_bio_PUBKEY(bio, key) == 1;
    ok = ok && BIO_flush(bio) == 1;
    BIO_free(bio);
    if (!ok) {
        ERR_clear_error();
        return pkcsctl_error(KEY_CMD, "cannot write the %s key to %s",
                             private_key ? "private" : "public", path);
    }
    if (fsync(fd) != 0)
        return pkcsctl_error(KEY_CMD, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static int write_key_files(const key_opts_t *o, EVP_PKEY *key, const char *passphrase)
{
    int key_fd = -1, pub_fd = -1, rc;

    if ((rc = create_new(o->out_key, 0600, &key_fd)) != 0)
        return rc;
    if ((rc = create_new(o->out_pub, 0644, &pub_fd)) != 0)
        goto out_close_key;
    rc = write_pem(key_fd, o->out_key, key, true, passphrase);
    if (rc == 0)
        rc = write_pem(pub_fd, o->out_pub, key, false, NULL);
    if (close(pub_fd) != 0 && rc == 0)
        rc = pkcsctl_error(KEY_CMD, "cannot write %s: %s", o->out_pub, strerror(errno));
    if (rc != 0)
        unlink(o->out_pub);
out_close_key:
    if (close(key_fd) != 0 && rc == 0)
        rc = pkcsctl_error(KEY_CMD, "cannot write %s: %s", o->out_key, strerror(errno));
    if (rc != 0)
        unlink(o->out_key);
    return rc;
}

static void key_report(const key_opts_t *o, EVP_PKEY *key, const char *fingerprint)
{
    printf("import key  %s (RSA-%d)\n", o->id, EVP_PKEY_get_bits(key));
    printf("private     %s (PKCS#8 PEM, %s, mode 0600)\n", o->out_key,
           o->encrypt ? "encrypted with $" PC_IMPORT_PASSPHRASE_ENV : "unencrypted");
    printf("public      %s\n", o->out_pub);
    printf("sha256      %s\n\n", fingerprint);
    printf("Workers: set worker.import_key_file=%s and worker.import_key_id=%s (or\n"
           "PC_IMPORT_KEY_FILE and PC_IMPORT_KEY_ID)%s. Upstream: encrypt PFX passwords to\n"
           "%s ('pkcsctl import-encrypt --pub %s --key-id %s').\n",
           o->out_key, o->id, o->encrypt ? " and " PC_IMPORT_PASSPHRASE_ENV : "", o->out_pub,
           o->out_pub, o->id);
}

static int run_import_key(const key_opts_t *o)
{
    pc_key_spec_t spec = {.alg = PC_KEY_RSA, .bits = o->bits};
    const char *passphrase = o->encrypt ? getenv(PC_IMPORT_PASSPHRASE_ENV) : NULL;
    char fingerprint[PKCSCTL_SHA256_HEX_LEN] = "";
    pc_diag_t diag = {{0}};
    EVP_PKEY *key = NULL;
    pc_err_t err;
    int rc;

    if (o->encrypt && (passphrase == NULL || passphrase[0] == '\0'))
        return pkcsctl_usage_error(KEY_CMD, "--encrypt needs the passphrase in $%s",
                                   PC_IMPORT_PASSPHRASE_ENV);
    if ((err = pc_key_spec_check(&spec, &diag)) != PC_OK)
        return pkcsctl_diag_error(KEY_CMD, err, &diag);
    /* the provider's own key generation: this key is made once and kept for years */
    if ((err = pc_key_generate(&spec, PC_KEYGEN_PROVIDER, &key, &diag)) != PC_OK)
        return pkcsctl_diag_error(KEY_CMD, err, &diag);
    if (pkcsctl_import_fingerprint(key, fingerprint) != 0) {
        rc = pkcsctl_error(KEY_CMD, "cannot encode the new public key");
        goto out_free_key;
    }
    rc = write_key_files(o, key, passphrase);
    if (rc == 0)
        key_report(o, key, fingerprint);
out_free_key:
    EVP_PKEY_free(key);
    return rc;
}

int pkcsctl_import_key(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out-key", required_argument, NULL, 'k'},
        {"out-pub", required_argument, NULL, 'p'},
        {"bits", required_argument, NULL, 'b'},
        {"id", required_argument, NULL, 'i'},
        {"encrypt", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    key_opts_t o = {.id = IMPORT_DEFAULT_KEY_ID, .bits = DEFAULT_BITS};
    long bits;
    int c;

    while ((c = getopt_long(argc, argv, "hk:p:b:i:e", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o.out_key = optarg;
            break;
        case 'p':
            o.out_pub = optarg;
            break;
        case 'b':
            if (!pc_parse_long(optarg, 0, 65536, &bits))
                return pkcsctl_usage_error(KEY_CMD, "--bits \"%s\" is not a number", optarg);
            o.bits = (unsigned)bits;
            break;
        case 'i':
            o.id = optarg;
            break;
        case 'e':
            o.encrypt = true;
            break;
        case 'h':
            key_help();
            return 0;
        default:
            return pkcsctl_usage_error(KEY_CMD, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(KEY_CMD, "unexpected argument \"%s\"", argv[optind]);
    if (o.out_key == NULL || o.out_pub == NULL)
        return pkcsctl_usage_error(KEY_CMD, "--out-key FILE and --out-pub FILE are required");
    if (strcmp(o.out_key, o.out_pub) == 0)
        return pkcsctl_usage_error(KEY_CMD, "--out-key and --out-pub must be different files");
    if (!pkcsctl_import_key_id_ok(o.id))
        return pkcsctl_usage_error(KEY_CMD,
                                   "--id \"%s\" must be 1 to %u letters, digits, '.', '_' or '-'",
                                   o.id, PC_MAX_ID_LEN);
    return run_import_key(&o);
}
