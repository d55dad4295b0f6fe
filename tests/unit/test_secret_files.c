/*
 * test_secret_files.c - one rule for every file that holds a secret: nobody but its owner may
 * read it, or it is refused with "chmod 600 FILE" (base/file.c), whichever program reads it:
 * the CA key passphrase file and the cfssl auth key (configuration), HMAC secrets and signer
 * keys (wire/auth.c; an encrypted signer key opens with its passphrase and may be shared).
 * And files are written safely: a fresh temporary file with exactly the mode asked for, never
 * through a file or link already there, renamed over the destination.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "config.h"
#include "file.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char paths[4][192];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
    return p;
}

static const char *write_file(const char *name, const void *data, size_t len, mode_t mode)
{
    const char *path = path_of(name);
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static const char *write_text(const char *name, const char *text, mode_t mode)
{
    return write_file(name, text, strlen(text), mode);
}

static void expect_diag(pc_err_t err, pc_err_t want, const pc_diag_t *diag, const char *text1,
                        const char *text2)
{
    if (err != want || strstr(diag->msg, text1) == NULL ||
        (text2 != NULL && strstr(diag->msg, text2) == NULL))
        fail_msg("expected %s with \"%s\" and \"%s\", got %s: %s", pc_err_code_name(want), text1,
                 text2 != NULL ? text2 : "", pc_err_code_name(err), diag->msg);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- reading -------------------------------------------------------------------------------- */

static void test_secret_files_read_only_when_private(void **state)
{
    unsigned char *data = NULL;
    size_t len = 0;
    unsigned mode = 0;
    pc_diag_t diag = {{0}};
    char want[256];
    const char *path = write_text("pass", "s3cret\n", 0600);

    assert_int_equal(pc_file_read_secret(path, 64, &data, &len, &diag), PC_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "s3cret\n", 8); /* NUL-terminated */
    OPENSSL_clear_free(data, len);

    assert_int_equal(chmod(path, 0640), 0);
    snprintf(want, sizeof(want), "readable by its group (mode 0640): run 'chmod 600 %s'", path);
    expect_diag(pc_file_read_secret(path, 64, &data, &len, &diag), PC_ERR_INVALID_PARAM, &diag,
                want, NULL);
    assert_null(data);
    assert_int_equal(chmod(path, 0604), 0);
    expect_diag(pc_file_read_secret(path, 64, &data, &len, &diag), PC_ERR_INVALID_PARAM, &diag,
                "readable by others (mode 0604)", "chmod 600");
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(pc_file_read_secret(path, 64, &data, &len, &diag), PC_OK);
    OPENSSL_clear_free(data, len);

    /* pc_file_read_key reads whatever the mode, and tells it */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pc_file_read_key(path, 64, &data, &len, &mode, &diag), PC_OK);
    assert_int_equal(mode & 0777, 0644);
    OPENSSL_clear_free(data, len);
    expect_diag(pc_file_check_secret_mode(path, mode, &diag), PC_ERR_INVALID_PARAM, &diag,
                "chmod 600", NULL);
    expect_diag(pc_file_check_secret(path, &diag), PC_ERR_INVALID_PARAM, &diag, "mode 0644", NULL);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(pc_file_check_secret(path, &diag), PC_OK);
}

/* A link is followed: what counts is the file's own mode (Kubernetes mounts secrets as links). */
static void test_secret_files_links_and_odd_files(void **state)
{
    unsigned char *data = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    const char *target = write_text("target", "0123456789", 0600);
    const char *link = path_of("link");

    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(pc_file_read_secret(link, 64, &data, &len, &diag), PC_OK);
    assert_int_equal(len, 10);
    OPENSSL_clear_free(data, len);
    assert_int_equal(chmod(target, 0644), 0);
    expect_diag(pc_file_read_secret(link, 64, &data, &len, &diag), PC_ERR_INVALID_PARAM, &diag,
                "mode 0644", NULL);
    assert_int_equal(chmod(target, 0600), 0);

    expect_diag(pc_file_read_secret(target, 9, &data, &len, &diag), PC_ERR_TOO_LARGE, &diag,
                "over the limit of 9 bytes", NULL);
    expect_diag(pc_file_read_secret(dir, 64, &data, &len, &diag), PC_ERR_INVALID_PARAM, &diag,
                "is not a regular file", NULL);
    expect_diag(pc_file_read_secret(path_of("missing"), 64, &data, &len, &diag), PC_ERR_IO, &diag,
                "cannot open", NULL);
    assert_int_equal(pc_file_read_secret(write_text("empty", "", 0600), 64, &data, &len, &diag),
                     PC_OK);
    assert_int_equal(len, 0);
    OPENSSL_clear_free(data, len);
}

/* ---- writing -------------------------------------------------------------------------------- */

static size_t count_entries(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_secret_files_write_gives_exactly_the_mode(void **state)
{
    pc_diag_t diag = {{0}};
    unsigned char *data = NULL;
    size_t len = 0, before;
    const char *out = path_of("out.pfx");
    mode_t old_umask = umask(0);

    /* an existing file's looser mode is not kept */
    write_text("out.pfx", "old", 0644);
    before = count_entries();
    assert_int_equal(pc_file_write(out, "new secret", 10, 0600, &diag), PC_OK);
    assert_int_equal(mode_of(out), 0600);
    assert_int_equal(count_entries(), before); /* no temporary file left */
    assert_int_equal(pc_file_read_secret(out, 64, &data, &len, &diag), PC_OK);
    assert_memory_equal(data, "new secret", 10);
    OPENSSL_clear_free(data, len);
    /* and the umask does not take from the mode asked for */
    umask(077);
    assert_int_equal(pc_file_write(out, "cert", 4, 0644, &diag), PC_OK);
    assert_int_equal(mode_of(out), 0644);
    umask(old_umask);
    expect_diag(pc_file_write(path_of("no/such/folder/x"), "x", 1, 0600, &diag), PC_ERR_IO, &diag,
                "cannot create", NULL);
}

/* Links are never written through: neither one at the destination (it is replaced) nor one
 * planted at the name the old code used for its temporary file (path.tmp.PID). */
static void test_secret_files_write_never_follows_links(void **state)
{
    pc_diag_t diag = {{0}};
    const char *victim = write_text("victim", "precious", 0644);
    const char *out = path_of("decrypted.pfx");
    char planted[256];

    unlink(out);
    assert_int_equal(symlink(victim, out), 0);
    assert_int_equal(pc_file_write(out, "key bytes", 9, 0600, &diag), PC_OK);
    struct stat st;
    assert_int_equal(lstat(out, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the link was replaced by the file */
    assert_int_equal(st.st_mode & 07777, 0600);

    snprintf(planted, sizeof(planted), "%s.tmp.%ld", out, (long)getpid());
    unlink(planted);
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(pc_file_write(out, "key bytes 2", 11, 0600, &diag), PC_OK);
    unlink(planted);

    unsigned char *data = NULL;
    size_t len = 0;
    unsigned mode = 0;
    assert_int_equal(pc_file_read_key(victim, 64, &data, &len, &mode, &diag), PC_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(data, "precious", 8); /* untouched */
    assert_int_equal(mode & 0777, 0644);
    OPENSSL_clear_free(data, len);
}

/* ---- the users of the rule ---------------------------------------------------------------- */

static pc_err_t load_config(const char *json, pc_config_t **cfg, pc_diag_t *diag)
{
    const char *path = write_text("config.json", json, 0600);
    return pc_config_load(path, cfg, diag);
}

static void test_secret_files_configuration(void **state)
{
    pc_config_t *cfg = NULL;
    pc_diag_t diag = {{0}};
    char json[1024];
    const char *pass = write_text("ca-pass", "horse battery\n", 0640);
    const char *hex = write_text("auth.hex", "00112233445566778899aabbccddeeff\n", 0644);

    snprintf(json, sizeof(json),
             "{\"cas\": [{\"name\": \"local\", \"key_passphrase_file\": \"%s\"}]}", pass);
    expect_diag(load_config(json, &cfg, &diag), PC_ERR_INVALID_PARAM, &diag,
                "ca local: key_passphrase_file", "chmod 600");
    assert_null(cfg);
    assert_int_equal(chmod(pass, 0600), 0);
    assert_int_equal(load_config(json, &cfg, &diag), PC_OK);
    assert_string_equal(cfg->cas[0].key_passphrase, "horse battery");
    pc_config_free(cfg);

    snprintf(json, sizeof(json),
             "{\"cas\": [{\"name\": \"remote\", \"type\": \"cfssl\", \"url\": "
             "\"https://cfssl.example\", \"auth_key_file\": \"%s\"}]}",
             hex);
    expect_diag(load_config(json, &cfg, &diag), PC_ERR_INVALID_PARAM, &diag,
                "ca remote: auth_key_file", "readable by others");
    assert_int_equal(chmod(hex, 0600), 0);
    assert_int_equal(load_config(json, &cfg, &diag), PC_OK);
    assert_string_equal(cfg->cas[0].auth_key_hex, "00112233445566778899aabbccddeeff");
    pc_config_free(cfg);
}

static void test_secret_files_hmac_secrets(void **state)
{
    unsigned char secret[32];
    pc_auth_t *auth = NULL;
    pc_signer_t *signer = NULL;
    pc_diag_t diag = {{0}};

    memset(secret, 0x5a, sizeof(secret));
    const char *path = write_file("hmac.key", secret, sizeof(secret), 0644);
    pc_auth_key_t key = {.id = "mdm-2", .algorithm = "hmac-sha256", .secret_file = path};
    expect_diag(pc_auth_new(&key, 1, &auth, &diag), PC_ERR_INVALID_PARAM, &diag,
                "key mdm-2: secret file", "chmod 600");
    expect_diag(pc_signer_new("mdm-2", "hmac-sha256", path, NULL, &signer, &diag),
                PC_ERR_INVALID_PARAM, &diag, "chmod 600", NULL);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(pc_auth_new(&key, 1, &auth, &diag), PC_OK);
    assert_int_equal(pc_signer_new("mdm-2", "hmac-sha256", path, NULL, &signer, &diag), PC_OK);
    pc_auth_free(auth);
    pc_signer_free(signer);
}

static const char *write_key(const char *name, EVP_PKEY *key, const char *passphrase, mode_t mode)
{
    const char *path = path_of(name);
    FILE *f;
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, key, passphrase ? EVP_aes_256_cbc() : NULL, NULL,
                                               0, NULL, (void *)(uintptr_t)passphrase),
                     1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_secret_files_signer_keys(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    pc_signer_t *signer = NULL;
    pc_diag_t diag = {{0}};

    assert_non_null(key);
    const char *plain = write_key("signer.pem", key, NULL, 0644);
    expect_diag(pc_signer_new("mdm-1", "ed25519", plain, NULL, &signer, &diag),
                PC_ERR_INVALID_PARAM, &diag, "key mdm-1", "chmod 600");
    assert_null(signer);
    assert_int_equal(chmod(plain, 0600), 0);
    assert_int_equal(pc_signer_new("mdm-1", "ed25519", plain, NULL, &signer, &diag), PC_OK);
    pc_signer_free(signer);

    /* encrypted: its passphrase protects it, so the file may be shared */
    const char *enc = write_key("signer.enc.pem", key, "correct horse", 0644);
    expect_diag(pc_signer_new("mdm-1", "ed25519", enc, NULL, &signer, &diag), PC_ERR_INVALID_PARAM,
                &diag, "is encrypted and no passphrase was given", NULL);
    expect_diag(pc_signer_new("mdm-1", "ed25519", enc, "wrong horse", &signer, &diag),
                PC_ERR_INVALID_PARAM, &diag, "wrong passphrase?", NULL);
    assert_null(strstr(diag.msg, "wrong horse"));
    assert_int_equal(pc_signer_new("mdm-1", "ed25519", enc, "correct horse", &signer, &diag),
                     PC_OK);
    pc_signer_free(signer);
    EVP_PKEY_free(key);
}

static int group_setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/pc-secret-files-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_files_read_only_when_private),
        cmocka_unit_test(test_secret_files_links_and_odd_files),
        cmocka_unit_test(test_secret_files_write_gives_exactly_the_mode),
        cmocka_unit_test(test_secret_files_write_never_follows_links),
        cmocka_unit_test(test_secret_files_configuration),
        cmocka_unit_test(test_secret_files_hmac_secrets),
        cmocka_unit_test(test_secret_files_signer_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
