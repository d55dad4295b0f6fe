/*
 * fuzz_config.c - libFuzzer target: the configuration file (lib/engine/config.c and its
 * settings table, config_settings.c) through pc_config_load, from a file as at start, then
 * what the programs do with it next: the signer keys (pc_auth_new, as a worker does) and what
 * each signer may act for (pc_config_signer, pc_config_signer_allows), the result key
 * (pc_signer_new, and its public half as the coordinator publishes it), the import key with the
 * configured PFX limits (pc_import_new, as the engine does) and the admin token
 * (pc_http_token_load, as the coordinator does). The input is the file's content.
 *
 * The configuration names files of its own; the target loads it from within its temporary
 * folder, which holds one of each (ca.pass, cfssl.hex, hmac.secret, ed25519.pub, import.key,
 * result.key, admin.token), so that relative names reach those readers, and goes back to where it
 * was after each input (libFuzzer reads and writes the corpus from there). Inputs that name device
 * or process files (/dev, /proc, /sys, or a slash hidden in a JSON escape) are skipped: reading a
 * terminal would hang the run and reading the process would make it depend on the day, and
 * neither is the configuration parser's business. PC_* variables are cleared at start so that
 * the run does not depend on the caller's environment.
 */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "config.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "http.h"
#include "import.h"

static char config_path[1024];
static int start_dir = -1; /* where libFuzzer runs */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

/* write_pem writes key (its public half only with public) as PEM into the temporary folder. */
static void write_pem(EVP_PKEY *key, bool public, const char *name)
{
    char path[1024];
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (key == NULL || bio == NULL ||
        (public ? PEM_write_bio_PUBKEY(bio, key)
                : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) != 1)
        die("cannot write a key");
    long len = BIO_get_mem_data(bio, &pem);
    fuzz_write(name, pem, (size_t)len, 0600, path, sizeof(path));
    BIO_free(bio);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char pass[] = "fuzz passphrase\n";
    static const char hex[] = "00112233445566778899aabbccddeeff\n";
    static const char token[] = "fuzz-admin-token-0123456789\n";
    char path[1024];

    fuzz_clear_pc_environment();
    fuzz_write("ca.pass", pass, sizeof(pass) - 1, 0600, path, sizeof(path));
    fuzz_write("cfssl.hex", hex, sizeof(hex) - 1, 0600, path, sizeof(path));
    fuzz_write("admin.token", token, sizeof(token) - 1, 0600, path, sizeof(path));
    fuzz_write("hmac.secret", FUZZ_HMAC_SECRET, strlen(FUZZ_HMAC_SECRET), 0600, path, sizeof(path));
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                (const unsigned char *)FUZZ_ED25519_SEED, 32);
    write_pem(ed, true, "ed25519.pub");
    write_pem(ed, false, "result.key");
    EVP_PKEY_free(ed);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    write_pem(rsa, false, "import.key");
    EVP_PKEY_free(rsa);
    fuzz_path(config_path, sizeof(config_path), "config.json");
    if ((start_dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        perror("fuzz_config: cannot open the current folder");
        abort();
    }
    return 0;
}

static bool names_system_files(const uint8_t *data, size_t size)
{
    static const char *const bad[] = {"/dev", "/proc", "/sys", "\\/", "\\u002f", "\\u002F"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (memmem(data, size, bad[i], strlen(bad[i])) != NULL)
            return true;
    return false;
}

/* after_load reads the files cfg names as the programs do once it loaded. */
static void after_load(const pc_config_t *cfg)
{
    pc_diag_t diag = {{0}};
    pc_auth_key_t keys[8];
    size_t n = 0;

    for (size_t i = 0; i < cfg->signer_count && n < 8; i++, n++) {
        keys[n].id = cfg->signers[i].id;
        keys[n].algorithm = cfg->signers[i].algorithm;
        keys[n].public_key_file = cfg->signers[i].public_key_file;
        keys[n].secret_file = cfg->signers[i].secret_file;
    }
    pc_auth_t *auth = NULL;
    if (n > 0 && pc_auth_new(keys, n, &auth, &diag) == PC_OK)
        pc_auth_free(auth);
    for (size_t i = 0; i < cfg->signer_count; i++) {
        const pc_config_signer_t *s = pc_config_signer(cfg, cfg->signers[i].id);
        if (s == NULL)
            die("pc_config_signer does not find a configured signer");
        (void)pc_config_signer_allows(s, "contoso", "local", "User", &diag);
        (void)pc_config_signer_allows(s, "", NULL, NULL, &diag);
    }
    if (cfg->worker.result_key_file != NULL) {
        pc_signer_t *signer = NULL;
        char *pem = NULL;
        if (pc_signer_new(cfg->worker.result_key_id, cfg->worker.result_key_algorithm,
                          cfg->worker.result_key_file, NULL, &signer, &diag) == PC_OK &&
            pc_signer_public_pem(signer, &pem, &diag) == PC_OK)
            free(pem);
        pc_signer_free(signer);
    }
    if (cfg->worker.import_key_file != NULL) {
        const pc_pfx_limits_t limits = {.max_iterations = cfg->worker.pfx_max_iterations,
                                        .max_bytes = cfg->worker.pfx_max_bytes,
                                        .max_bags = cfg->worker.pfx_max_bags,
                                        .max_certs = cfg->worker.pfx_max_certs,
                                        .setting = "worker.pfx_"};
        pc_import_t *imp = NULL;
        if (pc_import_new(cfg->worker.import_key_file, cfg->worker.import_key_id, &limits, &imp,
                          &diag) == PC_OK)
            pc_import_free(imp);
    }
    if (cfg->coordinator.admin_token_file != NULL) {
        pc_http_token_t token;
        (void)pc_http_token_load(cfg->coordinator.admin_token_file, &token, &diag);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[1024];
    pc_config_t *cfg = NULL;
    pc_diag_t diag = {{0}};

    if (names_system_files(data, size))
        return 0;
    fuzz_write("config.json", data, size, 0600, path, sizeof(path));
    if (chdir(fuzz_dir()) != 0) {
        perror("fuzz_config: chdir");
        abort();
    }
    if (pc_config_load(config_path, &cfg, &diag) == PC_OK) {
        after_load(cfg);
        pc_config_free(cfg);
    }
    if (fchdir(start_dir) != 0) {
        perror("fuzz_config: fchdir");
        abort();
    }
    ERR_clear_error();
    return 0;
}
