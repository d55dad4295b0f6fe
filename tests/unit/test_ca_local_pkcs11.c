/*
 * test_ca_local_pkcs11.c - the local CA with its key in a PKCS#11 token: a SoftHSM2 token made
 * in a temporary folder (SOFTHSM2_CONF), an EC key generated inside it, not extractable, and a
 * CA certificate made for it by openssl through the pkcs11 engine. The CA then issues, revokes,
 * signs a CRL and its OCSP responder's certificate with the token key, and openssl verifies each
 * against the CA certificate; no CA key is ever written to the state folder; threads sign at
 * once; a wrong PIN, a missing key or a certificate of another key are refused, naming the
 * setting and never the PIN. Skips, saying so, when SoftHSM2, pkcs11-tool or the engine are
 * not installed (deploy/setup.sh installs them).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_local.h"
#include "csr.h"

#define PASS "correct horse battery staple"
#define PIN "2468"
#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define KEY_URI "pkcs11:token=pc-ca;object=ca-key;type=private"

/* The token, made once for the group: SoftHSM reads its configuration once per process. */
static char dir[64];
static bool have_token;
static char skip_reason[256];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* output runs a command and returns what it printed (caller frees). */
static char *output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf != NULL ? fread(buf, 1, 65535, p) : 0;
    if (buf != NULL)
        buf[n] = '\0';
    pclose(p);
    return buf;
}

static int group_setup(void **state)
{
    char conf[128];
    snprintf(dir, sizeof(dir), "/tmp/pc_test_p11.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (access(MODULE, R_OK) != 0 ||
        run("command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null") != 0 ||
        run("openssl engine pkcs11 -t >/dev/null 2>&1") != 0) {
        snprintf(skip_reason, sizeof(skip_reason),
                 "SKIP: SoftHSM2 (softhsm2), pkcs11-tool (opensc) or the pkcs11 engine "
                 "(libengine-pkcs11-openssl) is not installed; deploy/setup.sh installs them");
        return 0;
    }
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    FILE *fp = fopen(conf, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir);
    fclose(fp);
    setenv("SOFTHSM2_CONF", conf, 1);
    /* A token, an EC key made inside it (pkcs11-tool makes it sensitive and not extractable),
     * and the CA certificate openssl signs with that key through the engine. */
    if (run("mkdir -p %s/tokens && softhsm2-util --init-token --free --label pc-ca --pin " PIN
            " --so-pin 13579 >/dev/null",
            dir) != 0 ||
        run("pkcs11-tool --module " MODULE " --login --pin " PIN " --token-label pc-ca "
            "--keypairgen --key-type EC:prime256v1 --label ca-key --id 01 >/dev/null 2>&1") != 0 ||
        run("openssl req -new -x509 -engine pkcs11 -keyform engine -key '" KEY_URI ";pin-value=" PIN
            "' -subj '/CN=Token CA/O=PKCS Connector Test' -days 30 -sha256 "
            "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,"
            "cRLSign -addext subjectKeyIdentifier=hash -out %s/ca.crt >/dev/null 2>&1",
            dir) != 0)
        return -1;
    have_token = true;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_teardown(void **state)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void need_token(void)
{
    if (!have_token) {
        printf("%s\n", skip_reason);
        skip();
    }
}

static pc_ca_template_t *make_template(void)
{
    pc_ca_template_t *tmpl = calloc(1, sizeof(*tmpl));
    assert_non_null(tmpl);
    tmpl->name = strdup("User");
    tmpl->allowed_ekus = calloc(1, sizeof(char *));
    tmpl->allowed_ekus[0] = strdup("1.3.6.1.5.5.7.3.2");
    tmpl->allowed_eku_count = 1;
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE;
    tmpl->max_validity_days = 20;
    tmpl->subject_from_request = true;
    return tmpl;
}

/* open_ca opens the token CA with state in dir/NAME (its records offline, in index.txt). */
static pc_err_t open_ca(const char *name, const char *uri, const char *pin, const char *cert,
                        pc_ca_t **ca, pc_diag_t *diag)
{
    char state[128], cert_path[128];
    snprintf(state, sizeof(state), "%s/%s", dir, name);
    snprintf(cert_path, sizeof(cert_path), "%s/%s", dir, cert);
    pc_ca_template_t *templates[1] = {make_template()};
    pc_ca_local_config_t cfg = {.name = "hsm",
                                .state_dir = state,
                                .cert_file = cert_path,
                                .key_uri = uri,
                                .key_pin = pin,
                                .key_module = MODULE,
                                .key_passphrase = PASS,
                                .templates = templates,
                                .template_count = 1};
    pc_err_t err = pc_ca_local_new(&cfg, ca, diag);
    if (err != PC_OK)
        pc_ca_template_free(templates[0]);
    return err;
}

static X509 *issue(pc_ca_t *ca)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"bob", -1, -1, 0);
    const char *ekus[] = {"clientAuth"};
    pc_csr_params_t params = {
        .subject = name, .ekus = ekus, .eku_count = 1, .key_usage = KU_DIGITAL_SIGNATURE};
    X509_REQ *req = NULL;
    assert_int_equal(pc_csr_new(key, &params, &req, NULL), PC_OK);
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 10};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;
    if (pc_ca_submit_sync(ca, req, &iss, &cert, &diag) != PC_OK)
        fail_msg("issue: %s", diag.msg);
    X509_REQ_free(req);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return cert;
}

static X509 *ca_cert(pc_ca_t *ca)
{
    return sk_X509_value(ca->ops->get0_chain(ca), 0);
}

static void write_pem(const char *path, int (*writer)(FILE *, const void *), const void *obj)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(writer(fp, obj), 1);
    fclose(fp);
}

static int write_cert(FILE *fp, const void *obj)
{
    return PEM_write_X509(fp, obj);
}

static int write_crl(FILE *fp, const void *obj)
{
    return PEM_write_X509_CRL(fp, obj);
}

static void test_key_stays_in_token(void **state)
{
    need_token();
    char *objects = output("pkcs11-tool --module " MODULE " --login --pin " PIN
                           " --token-label pc-ca --list-objects --type privkey 2>&1");
    assert_non_null(objects);
    assert_non_null(strstr(objects, "label:      ca-key"));
    assert_non_null(strstr(objects, "never extractable"));
    assert_non_null(strstr(objects, "always sensitive"));
    free(objects);
}

/* Run before any CA logs in: the token stays logged in for the whole process once a CA did
 * (PKCS#11 login is per application), so a later wrong PIN would not be asked about. */
static void test_wrong_pin_refused(void **state)
{
    need_token();
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(open_ca("wrong-pin", KEY_URI, "97531", "ca.crt", &ca, &diag), PC_ERR_CRYPTO);
    assert_null(ca);
    assert_non_null(strstr(diag.msg, "key_pin_file"));
    assert_null(strstr(diag.msg, "97531")); /* the PIN is never told */
}

static void test_issue_crl_ocsp_with_token_key(void **state)
{
    need_token();
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {.msg = ""};
    char path[256];
    if (open_ca("state", KEY_URI, PIN, "ca.crt", &ca, &diag) != PC_OK)
        fail_msg("pc_ca_local_new: %s", diag.msg);
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca_cert(ca));

    /* issued: signed by the token key, and openssl agrees */
    X509 *cert = issue(ca), *other = issue(ca);
    assert_int_equal(X509_verify(cert, ca_pub), 1);
    snprintf(path, sizeof(path), "%s/issued.pem", dir);
    write_pem(path, write_cert, cert);
    assert_int_equal(run("openssl verify -CAfile %s/ca.crt %s >/dev/null", dir, path), 0);

    /* revoked, and listed in a CRL the token key signed */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = BN_bn2hex(bn);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_KEY_COMPROMISE};
    assert_int_equal(pc_ca_revoke_sync(ca, &rev, &diag), PC_OK);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(pc_ca_local_crl(ca, 24, &der, &len, &diag), PC_OK);
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, ca_pub), 1);
    X509_REVOKED *entry = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cert)), 1);
    assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(other)), 0);
    snprintf(path, sizeof(path), "%s/crl.pem", dir);
    write_pem(path, write_crl, crl);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "openssl crl -in %s -noout -CAfile %s/ca.crt 2>&1", path, dir);
    char *verdict = output(cmd);
    assert_non_null(strstr(verdict, "verify OK"));
    free(verdict);

    /* OCSP: the responder certificate the token key issued, trusted through the CA alone */
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_request_add0_id(req, OCSP_cert_to_id(NULL, cert, ca_cert(ca)));
    unsigned char *req_der = NULL, *resp_der = NULL;
    size_t resp_len = 0;
    int req_len = i2d_OCSP_REQUEST(req, &req_der);
    if (pc_ca_local_ocsp(ca, req_der, (size_t)req_len, &resp_der, &resp_len, &diag) != PC_OK)
        fail_msg("ocsp: %s", diag.msg);
    p = resp_der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)resp_len);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca_cert(ca));
    assert_int_equal(OCSP_basic_verify(bs, NULL, store, 0), 1);
    X509 *signer = NULL;
    assert_int_equal(OCSP_resp_get0_signer(bs, &signer, NULL), 1);
    assert_int_equal(X509_verify(signer, ca_pub), 1);
    int status = -1, reason = -1;
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, ca_cert(ca));
    assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, NULL, NULL, NULL), 1);
    assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);

    /* the state folder holds the responder's encrypted key, and no CA key */
    snprintf(path, sizeof(path), "%s/state/ca.key", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(cmd, sizeof(cmd), "grep -l 'BEGIN PRIVATE KEY\\|BEGIN EC PRIVATE KEY' -r %s/state",
             dir);
    char *plain = output(cmd);
    assert_string_equal(plain, "");
    free(plain);

    OCSP_CERTID_free(id);
    X509_STORE_free(store);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(resp_der);
    OPENSSL_free(req_der);
    OCSP_REQUEST_free(req);
    X509_CRL_free(crl);
    OPENSSL_free(der);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(other);
    X509_free(cert);
    pc_ca_free(ca);
}

typedef struct worker_arg {
    pc_ca_t *ca;
    int verified;
} worker_arg_t;

static void *sign_some(void *arg)
{
    worker_arg_t *w = arg;
    for (int i = 0; i < 5; i++) {
        X509 *cert = issue(w->ca);
        w->verified += X509_verify(cert, X509_get0_pubkey(ca_cert(w->ca))) == 1;
        X509_free(cert);
    }
    return NULL;
}

/* Pool threads sign with the one token key at once. */
static void test_threads_share_token_key(void **state)
{
    need_token();
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {.msg = ""};
    if (open_ca("threads", KEY_URI, PIN, "ca.crt", &ca, &diag) != PC_OK)
        fail_msg("pc_ca_local_new: %s", diag.msg);
    pthread_t threads[4];
    worker_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg_t){.ca = ca};
        assert_int_equal(pthread_create(&threads[i], NULL, sign_some, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].verified, 5);
    }
    pc_ca_free(ca);
}

static void test_refusals(void **state)
{
    need_token();
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {.msg = ""};

    assert_int_equal(open_ca("no-key", "pkcs11:token=pc-ca;object=nothing;type=private", PIN,
                             "ca.crt", &ca, &diag),
                     PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, "object=nothing"));

    /* a CA certificate of another key */
    assert_int_equal(run("openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                         "-nodes -keyout %s/other.key -subj /CN=Other -days 2 "
                         "-addext basicConstraints=critical,CA:TRUE -out %s/other.crt "
                         ">/dev/null 2>&1",
                         dir, dir),
                     0);
    assert_int_equal(open_ca("other", KEY_URI, PIN, "other.crt", &ca, &diag), PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, "does not belong"));

    /* key_uri without the certificate file */
    char state_dir[128];
    snprintf(state_dir, sizeof(state_dir), "%s/bare", dir);
    pc_ca_local_config_t cfg = {
        .name = "hsm", .state_dir = state_dir, .key_uri = KEY_URI, .key_passphrase = PASS};
    assert_int_equal(pc_ca_local_new(&cfg, &ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "cert_file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_stays_in_token),
        cmocka_unit_test(test_wrong_pin_refused), /* first to log in: see there */
        cmocka_unit_test(test_issue_crl_ocsp_with_token_key),
        cmocka_unit_test(test_threads_share_token_key),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
