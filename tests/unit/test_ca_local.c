/*
 * test_ca_local.c - the local CA as an operator and a relying party see it: its key on disk is
 * encrypted, it survives restarts, what it issues verifies (also with the openssl tool), what it
 * refuses is never signed, revocations reach a signed CRL, and threads and processes share it.
 * Its records live in a real redis-server, shared by two CAs as by two machines; with Redis down
 * nothing is handed out; offline they live in the state folder.
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
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <hiredis/hiredis.h>

#include "ca_local.h"
#include "csr.h"
/* The fixture's event-loop helpers serve the async tests; the local CA blocks. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "redis_fixture.h"
#pragma GCC diagnostic pop

#define PASS "correct horse battery staple"
#define CRL_URL "http://pki.example.test/local.crl"
#define AIA_URL "http://pki.example.test/local.crt"
#define SID_OID "1.3.6.1.4.1.311.25.2"

/* One test's world: a temp dir (removed after), a CA whose state lives in dir/state and whose
 * records live in the test's Redis (emptied before each test), and a connection to look at them. */
typedef struct fixture {
    char dir[64];
    char state[128];
    pc_redis_config_t redis;
    redisContext *admin;
    pc_ca_t *ca;
    EVP_PKEY *key; /* the requester's key */
} fixture_t;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static pc_ca_template_t *make_template(const char *name)
{
    pc_ca_template_t *tmpl = calloc(1, sizeof(*tmpl));
    assert_non_null(tmpl);
    tmpl->name = xstrdup(name);
    tmpl->allowed_ekus = calloc(2, sizeof(char *));
    assert_non_null(tmpl->allowed_ekus);
    tmpl->allowed_ekus[0] = xstrdup("1.3.6.1.5.5.7.3.2");
    tmpl->allowed_ekus[1] = xstrdup("1.3.6.1.5.5.7.3.4");
    tmpl->allowed_eku_count = 2;
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    tmpl->max_validity_days = 365;
    tmpl->subject_from_request = true;
    return tmpl;
}

static pc_ca_local_config_t base_config(fixture_t *fx)
{
    pc_ca_local_config_t cfg = {.name = "local",
                                .state_dir = fx->state,
                                .key_passphrase = PASS,
                                .crl_url = CRL_URL,
                                .aia_url = AIA_URL,
                                .redis = &fx->redis};
    return cfg;
}

/* Opens the CA of fx->state with one "User" template. */
static pc_err_t open_ca(fixture_t *fx, pc_ca_local_config_t *cfg, pc_ca_t **ca, pc_diag_t *diag)
{
    pc_ca_template_t *templates[1] = {make_template("User")};
    cfg->templates = templates;
    cfg->template_count = 1;
    pc_err_t err = pc_ca_local_new(cfg, ca, diag);
    if (err != PC_OK)
        pc_ca_template_free(templates[0]); /* taken only on success */
    return err;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc_test_ca.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
    fx->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    *state = fx;
    if (fx->key == NULL || fixture_revive(NULL) != 0)
        return -1;
    fx->redis = (pc_redis_config_t){.host = "127.0.0.1", .port = fixture_redis.port};
    fx->admin = redisConnect("127.0.0.1", fixture_redis.port);
    if (fx->admin == NULL || fx->admin->err != 0)
        return -1;
    freeReplyObject(redisCommand(fx->admin, "FLUSHALL"));
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    pc_ca_free(fx->ca);
    EVP_PKEY_free(fx->key);
    redisFree(fx->admin);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static fixture_t *with_ca(void **state)
{
    fixture_t *fx = *state;
    pc_ca_local_config_t cfg = base_config(fx);
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = open_ca(fx, &cfg, &fx->ca, &diag);
    if (err != PC_OK)
        fail_msg("pc_ca_local_new: %s", diag.msg);
    return fx;
}

/* with_ca_redis_away opens the CA on a Redis port nothing listens on (commands time out after
 * 500 ms); where gets "Redis at 127.0.0.1:PORT", which the errors must name. */
static fixture_t *with_ca_redis_away(void **state, char *where, size_t len)
{
    fixture_t *fx = *state;
    fx->redis.port = fixture_free_port();
    fx->redis.command_timeout_ms = 500;
    snprintf(where, len, "Redis at 127.0.0.1:%d", fx->redis.port);
    return with_ca(state);
}

static X509 *ca_cert(pc_ca_t *ca)
{
    STACK_OF(X509) *chain = ca->ops->get0_chain(ca);
    assert_true(sk_X509_num(chain) >= 1);
    return sk_X509_value(chain, 0);
}

static X509_EXTENSION *sid_ext(const char *payload)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(SID_OID, 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    assert_true(oid != NULL && data != NULL);
    ASN1_OCTET_STRING_set(data, (const unsigned char *)payload, (int)strlen(payload));
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, data);
    assert_non_null(ext);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(data);
    return ext;
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *cn, const char *eku)
{
    X509_NAME *name = X509_NAME_new();
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *email = ASN1_IA5STRING_new();
    X509_EXTENSION *sid = sid_ext("S-1-5-21-7-8-9-1001");
    X509_REQ *req = NULL;

    assert_true(name && sans && gn && email);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    ASN1_STRING_set(email, "alice@example.com", -1);
    GENERAL_NAME_set0_value(gn, GEN_EMAIL, email);
    sk_GENERAL_NAME_push(sans, gn);
    const char *ekus[] = {eku};
    pc_csr_params_t params = {.subject = name,
                              .sans = sans,
                              .ekus = ekus,
                              .eku_count = 1,
                              .key_usage = KU_DIGITAL_SIGNATURE,
                              .sid = sid};
    assert_int_equal(pc_csr_new(key, &params, &req, NULL), PC_OK);
    X509_EXTENSION_free(sid);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(name);
    return req;
}

static X509 *issue(fixture_t *fx, unsigned days, const char *request_id)
{
    X509_REQ *req = make_csr(fx->key, "alice", "clientAuth");
    pc_ca_issue_t iss = {.template_name = "User",
                         .validity_days = days,
                         .tenant = "contoso",
                         .request_id = request_id};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;
    pc_err_t err = pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag);
    if (err != PC_OK)
        fail_msg("issue: %s", diag.msg);
    X509_REQ_free(req);
    return cert;
}

static char *serial_hex(const X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    return hex;
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* admin_int: an integer reply of the admin connection (fmt takes one string). */
static long long admin_int(const fixture_t *fx, const char *fmt, const char *arg)
{
    redisReply *reply = redisCommand(fx->admin, fmt, arg);
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        fail_msg("redis %s: no integer reply", fmt);
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

/* Certificates the CA "local" recorded as issued / revoked, in Redis. */
static long long issued_count(const fixture_t *fx)
{
    return admin_int(fx, "ZCARD %s", "pc:ca:{local}:issued");
}

static long long revoked_count(const fixture_t *fx)
{
    return admin_int(fx, "HLEN %s", "pc:ca:{local}:revoked");
}

/* Lines of state/index.txt (the offline records) starting with prefix ("I\t": issued, "R\t":
 * revoked). */
static int index_lines(const fixture_t *fx, const char *prefix)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/index.txt", fx->state);
    char *text = read_file(path);
    if (text == NULL)
        return 0;
    int count = 0;
    for (char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            count++;
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
    return count;
}

static void write_pem_cert(const char *path, X509 *cert)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, cert), 1);
    fclose(fp);
}

static void test_generated_key_is_encrypted(void **state)
{
    fixture_t *fx = with_ca(state);
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/ca.key", fx->state);
    char *pem = read_file(path);
    assert_non_null(pem);
    assert_int_equal(strncmp(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37), 0);
    free(pem);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/ca.crt", fx->state);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(fx->state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* the generated CA: P-256, CA:TRUE, 10 years, default subject */
    X509 *cert = ca_cert(fx->ca);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(cert)), 256);
    assert_int_equal(X509_check_ca(cert), 1);
    assert_non_null(X509_get0_subject_key_id(cert));
    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "PKCS Connector Local CA");
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    assert_true(days >= 3650 && days <= 3651);

    /* a wrong passphrase is refused, naming the file and the setting */
    pc_ca_free(fx->ca);
    fx->ca = NULL;
    pc_ca_local_config_t cfg = base_config(fx);
    cfg.key_passphrase = "wrong";
    pc_diag_t diag = {.msg = ""};
    pc_ca_t *ca = NULL;
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_CRYPTO);
    assert_null(ca);
    assert_non_null(strstr(diag.msg, "ca.key"));
    assert_non_null(strstr(diag.msg, "passphrase"));
}

static void test_passphrase_required(void **state)
{
    fixture_t *fx = *state;
    pc_ca_local_config_t cfg = base_config(fx);
    pc_diag_t diag = {.msg = ""};
    pc_ca_t *ca = NULL;
    char path[256];

    cfg.key_passphrase = "";
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_INVALID_PARAM);
    assert_string_equal(diag.msg, "the local CA needs a key passphrase (set ca.key_passphrase "
                                  "or PC_CA_KEY_PASSPHRASE)");
    cfg.key_passphrase = NULL;
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_INVALID_PARAM);
    assert_null(ca);
    snprintf(path, sizeof(path), "%s/ca.key", fx->state);
    assert_int_not_equal(access(path, F_OK), 0); /* nothing written */
}

static void test_reopen_gives_same_ca(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *first = X509_dup(ca_cert(fx->ca));
    pc_ca_free(fx->ca);
    fx->ca = NULL;

    with_ca(state);
    assert_int_equal(X509_cmp(first, ca_cert(fx->ca)), 0);
    X509_free(first);
}

static void test_subject_from_config(void **state)
{
    fixture_t *fx = *state;
    pc_ca_local_config_t cfg = base_config(fx);
    pc_diag_t diag = {.msg = ""};

    cfg.subject = "CN=Example Issuing CA, O=Example\\, Inc.,C=DE";
    assert_int_equal(open_ca(fx, &cfg, &fx->ca, &diag), PC_OK);
    char text[128];
    X509_NAME *name = X509_get_subject_name(ca_cert(fx->ca));
    X509_NAME_get_text_by_NID(name, NID_organizationName, text, sizeof(text));
    assert_string_equal(text, "Example, Inc.");
    X509_NAME_get_text_by_NID(name, NID_countryName, text, sizeof(text));
    assert_string_equal(text, "DE");

    pc_ca_local_config_t bad = base_config(fx);
    char other[160];
    snprintf(other, sizeof(other), "%s/other", fx->dir);
    bad.state_dir = other;
    bad.subject = "XQ=nope";
    pc_ca_t *ca = NULL;
    assert_int_equal(open_ca(fx, &bad, &ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "XQ"));
}

static bool has_uri(const GENERAL_NAMES *names, const char *url)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        int type = 0;
        ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
        if (type == GEN_URI && strcmp((const char *)ASN1_STRING_get0_data(s), url) == 0)
            return true;
    }
    return false;
}

static void check_urls(X509 *cert)
{
    CRL_DIST_POINTS *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    assert_int_equal(sk_DIST_POINT_num(dps), 1);
    DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
    assert_true(has_uri(dp->distpoint->name.fullname, CRL_URL));
    CRL_DIST_POINTS_free(dps);

    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(cert, NID_info_access, NULL, NULL);
    assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
    ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
    assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
    int type = 0;
    ASN1_STRING *uri = GENERAL_NAME_get0_value(ad->location, &type);
    assert_int_equal(type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(uri), AIA_URL);
    AUTHORITY_INFO_ACCESS_free(aia);
}

static void check_copied(X509 *cert)
{
    int crit = -1;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
    GENERAL_NAMES_free(sans);

    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

    ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
    assert_int_equal(crit, 1);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 2), 0);
    ASN1_BIT_STRING_free(ku);

    ASN1_OBJECT *sid_oid = OBJ_txt2obj(SID_OID, 1);
    int at = X509_get_ext_by_OBJ(cert, sid_oid, -1);
    ASN1_OBJECT_free(sid_oid);
    assert_true(at >= 0);
    X509_EXTENSION *sid = sid_ext("S-1-5-21-7-8-9-1001");
    assert_int_equal(ASN1_STRING_cmp(X509_EXTENSION_get_data(X509_get_ext(cert, at)),
                                     X509_EXTENSION_get_data(sid)),
                     0);
    X509_EXTENSION_free(sid);

    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_int_equal(bc->ca, 0);
    BASIC_CONSTRAINTS_free(bc);
}

static void test_issued_cert(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *cacert = ca_cert(fx->ca);
    X509 *cert = issue(fx, 30, "req-0001");

    /* verifies against the CA */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(store, cacert);
    X509_STORE_CTX_init(ctx, store, cert, NULL);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);

    /* serial: positive, at least 64 bits */
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_false(BN_is_negative(serial));
    assert_true(BN_num_bits(serial) >= 64);
    BN_free(serial);

    /* key identifiers: AKI is the CA's SKI, SKI present */
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(cacert)), 0);
    assert_non_null(X509_get0_subject_key_id(cert));

    /* names, validity */
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(cacert)), 0);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "alice");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fx->key), 1);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    assert_int_equal(days, 30);
    assert_int_equal(secs, 300); /* notBefore backdated 5 minutes for clock skew */
    assert_true(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);

    check_urls(cert);
    check_copied(cert);

    /* recorded in Redis with its tenant and request id, subject and validity */
    char *hex = serial_hex(cert);
    redisReply *reply =
        redisCommand(fx->admin, "HMGET pc:ca:{local}:cert:%s request_id subject not_after", hex);
    assert_true(reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3);
    assert_string_equal(reply->element[0]->str, "contoso:req-0001");
    assert_string_equal(reply->element[1]->str, "CN=alice");
    char not_after[32];
    struct tm tm;
    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    strftime(not_after, sizeof(not_after), "%Y%m%d%H%M%SZ", &tm);
    assert_string_equal(reply->element[2]->str, not_after);
    freeReplyObject(reply);
    assert_int_equal(issued_count(fx), 1);
    assert_int_equal(index_lines(fx, ""), 0); /* nothing in the state folder */
    OPENSSL_free(hex);
    X509_free(cert);
}

static void test_no_urls_unless_configured(void **state)
{
    fixture_t *fx = *state;
    pc_ca_local_config_t cfg = base_config(fx);
    cfg.crl_url = NULL;
    cfg.aia_url = "";
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(open_ca(fx, &cfg, &fx->ca, &diag), PC_OK);

    X509 *cert = issue(fx, 7, "req-no-urls");
    assert_int_equal(X509_get_ext_by_NID(cert, NID_crl_distribution_points, -1), -1);
    assert_int_equal(X509_get_ext_by_NID(cert, NID_info_access, -1), -1);
    X509_free(cert);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_serials_unique(void **state)
{
    fixture_t *fx = with_ca(state);
    enum { N = 64 };
    char *serials[N];

    for (int i = 0; i < N; i++) {
        X509 *cert = issue(fx, 1, "many");
        serials[i] = serial_hex(cert);
        X509_free(cert);
    }
    qsort(serials, N, sizeof(serials[0]), cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(serials[i - 1], serials[i]);
    for (int i = 0; i < N; i++)
        OPENSSL_free(serials[i]);
    assert_int_equal(issued_count(fx), N);
}

static void test_refusal_signs_nothing(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *first = issue(fx, 30, "before");
    X509_free(first);

    X509_REQ *req = make_csr(fx->key, "mallory", "serverAuth");
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 30, .request_id = "bad"};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;
    assert_int_equal(pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag), PC_ERR_POLICY);
    assert_null(cert);
    assert_non_null(strstr(diag.msg, "serverAuth"));
    X509_REQ_free(req);

    req = make_csr(fx->key, "mallory", "clientAuth");
    iss.validity_days = 400;
    assert_int_equal(pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag), PC_ERR_POLICY);
    iss.validity_days = 30;
    iss.template_name = "WebServer";
    assert_int_equal(pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "WebServer"));
    assert_non_null(strstr(diag.msg, "local"));
    X509_REQ_free(req);

    assert_int_equal(issued_count(fx), 1); /* only the one issued before */
}

/* A parsed request asking what make_csr asks: the local CA's direct path. The parts are the
 * caller's (free_direct). */
typedef struct direct {
    X509_NAME *subject;
    GENERAL_NAMES *sans;
    STACK_OF(ASN1_OBJECT) * ekus;
    X509_EXTENSION *sid;
    pc_ca_request_t req;
} direct_t;

static void make_direct(direct_t *d, EVP_PKEY *key, const char *cn, const char *eku)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *email = ASN1_IA5STRING_new();
    const char *ekus[] = {eku};

    d->subject = X509_NAME_new();
    d->sans = GENERAL_NAMES_new();
    assert_true(d->subject && d->sans && gn && email);
    X509_NAME_add_entry_by_txt(d->subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                               0);
    ASN1_STRING_set(email, "alice@example.com", -1);
    GENERAL_NAME_set0_value(gn, GEN_EMAIL, email);
    sk_GENERAL_NAME_push(d->sans, gn);
    assert_int_equal(pc_csr_ekus_new(ekus, 1, &d->ekus, NULL), PC_OK);
    d->sid = sid_ext("S-1-5-21-7-8-9-1001");
    d->req = (pc_ca_request_t){.key = key,
                               .subject = d->subject,
                               .sans = d->sans,
                               .ekus = d->ekus,
                               .key_usage = KU_DIGITAL_SIGNATURE,
                               .sid = d->sid};
}

static void free_direct(direct_t *d)
{
    X509_NAME_free(d->subject);
    GENERAL_NAMES_free(d->sans);
    sk_ASN1_OBJECT_pop_free(d->ekus, ASN1_OBJECT_free);
    X509_EXTENSION_free(d->sid);
}

/* The direct path (no CSR) certifies exactly what the CSR path certifies for the same request:
 * the same names, key, extensions in the same order with the same criticality and bytes, the
 * same validity and record; and it refuses what the template forbids, signing nothing. */
static void test_direct_request_signs_as_csr(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *by_csr = issue(fx, 30, "by-csr");
    direct_t d;
    make_direct(&d, fx->key, "alice", "clientAuth");
    pc_ca_issue_t iss = {
        .template_name = "User", .validity_days = 30, .tenant = "contoso", .request_id = "direct"};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;

    assert_true(pc_ca_takes_requests(fx->ca));
    if (pc_ca_submit_request_sync(fx->ca, &d.req, &iss, &cert, &diag) != PC_OK)
        fail_msg("direct: %s", diag.msg);
    assert_int_equal(X509_get_version(cert), X509_get_version(by_csr));
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_subject_name(by_csr)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_issuer_name(by_csr)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), X509_get0_pubkey(by_csr)), 1);
    assert_int_equal(X509_get_signature_nid(cert), X509_get_signature_nid(by_csr));
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca_cert(fx->ca))), 1);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    assert_int_equal(days, 30);
    assert_int_equal(secs, 300);
    assert_int_equal(X509_get_ext_count(cert), X509_get_ext_count(by_csr));
    for (int i = 0; i < X509_get_ext_count(cert); i++) {
        X509_EXTENSION *a = X509_get_ext(cert, i), *b = X509_get_ext(by_csr, i);
        assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(a), X509_EXTENSION_get_object(b)), 0);
        assert_int_equal(X509_EXTENSION_get_critical(a), X509_EXTENSION_get_critical(b));
        assert_int_equal(
            ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(a), X509_EXTENSION_get_data(b)), 0);
    }
    check_urls(cert);
    check_copied(cert);
    assert_int_equal(issued_count(fx), 2); /* recorded like the other */
    char *hex = serial_hex(cert);
    redisReply *reply = redisCommand(fx->admin, "HGET pc:ca:{local}:cert:%s request_id", hex);
    assert_true(reply != NULL && reply->type == REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "contoso:direct");
    freeReplyObject(reply);
    OPENSSL_free(hex);
    X509_free(cert);
    free_direct(&d);

    /* refusals: the template's rules, before anything is signed or recorded */
    make_direct(&d, fx->key, "mallory", "serverAuth");
    cert = NULL;
    assert_int_equal(pc_ca_submit_request_sync(fx->ca, &d.req, &iss, &cert, &diag), PC_ERR_POLICY);
    assert_null(cert);
    assert_non_null(strstr(diag.msg, "serverAuth"));
    free_direct(&d);
    make_direct(&d, fx->key, "mallory", "clientAuth");
    iss.validity_days = 400;
    assert_int_equal(pc_ca_submit_request_sync(fx->ca, &d.req, &iss, &cert, &diag), PC_ERR_POLICY);
    iss.validity_days = 30;
    d.req.key_usage = KU_KEY_CERT_SIGN;
    assert_int_equal(pc_ca_submit_request_sync(fx->ca, &d.req, &iss, &cert, &diag), PC_ERR_POLICY);
    d.req.key_usage = KU_DIGITAL_SIGNATURE;
    iss.template_name = "WebServer";
    assert_int_equal(pc_ca_submit_request_sync(fx->ca, &d.req, &iss, &cert, &diag),
                     PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "WebServer"));
    free_direct(&d);
    assert_int_equal(issued_count(fx), 2);
    X509_free(by_csr);
}

static void test_revoke(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *cert = issue(fx, 30, "to-revoke");
    char *hex = serial_hex(cert);
    pc_diag_t diag = {.msg = ""};

    pc_ca_revoke_t rev = {.serial_hex = "0123456789ABCDEF", .reason = PC_REVOKE_KEY_COMPROMISE};
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_ERR_NOT_FOUND);
    assert_string_equal(diag.msg, "certificate with serial 0123456789ABCDEF was not issued by "
                                  "CA local");

    rev.serial_hex = "xyz";
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "xyz"));

    /* lower case is the same serial */
    for (char *p = hex; *p != '\0'; p++)
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p + ('a' - 'A') : *p);
    rev.serial_hex = hex;
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_OK);
    rev.reason = PC_REVOKE_SUPERSEDED;
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_OK); /* twice is fine */
    assert_int_equal(revoked_count(fx), 1);

    rev.reason = (pc_revoke_reason_t)2; /* cACompromise: not for end-entity certificates */
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_ERR_INVALID_PARAM);

    OPENSSL_free(hex);
    X509_free(cert);
}

typedef struct answer {
    bool done;
    pc_err_t err;
    bool cert; /* a certificate came with the answer */
    char msg[512];
} answer_t;

static void on_answer(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    answer_t *a = arg;
    a->done = true;
    a->err = err;
    a->cert = cert != NULL;
    snprintf(a->msg, sizeof(a->msg), "%s", diag != NULL ? diag->msg : "");
    X509_free(cert);
}

static void on_ca_closed(void *arg)
{
    *(bool *)arg = true;
}

/* A CA of fx->state on its own loop, as a worker runs it; with_redis: the loop's Redis client
 * for fx->redis, attached to record what the CA signs. */
typedef struct loop_ca {
    uv_loop_t loop;
    pc_ca_t *ca;
    pc_redis_t *redis;
} loop_ca_t;

static void loop_ca_open(fixture_t *fx, loop_ca_t *lc, bool with_redis)
{
    assert_int_equal(uv_loop_init(&lc->loop), 0);
    pc_ca_local_config_t cfg = base_config(fx);
    cfg.loop = &lc->loop;
    pc_diag_t diag = {.msg = ""};
    lc->ca = NULL;
    lc->redis = NULL;
    assert_int_equal(open_ca(fx, &cfg, &lc->ca, &diag), PC_OK);
    if (with_redis) {
        assert_int_equal(pc_redis_new(&lc->loop, &fx->redis, &lc->redis, &diag), PC_OK);
        pc_ca_local_attach_redis(lc->ca, lc->redis);
    }
}

/* loop_ca_close closes the CA, then its Redis client (the order a worker keeps), and runs the
 * loop to its end. */
static void loop_ca_close(loop_ca_t *lc)
{
    bool closed = false, redis_closed = lc->redis == NULL;
    pc_ca_close(lc->ca, on_ca_closed, &closed);
    assert_true(run_until(&lc->loop, &closed, 10000));
    if (lc->redis != NULL)
        pc_redis_close(lc->redis, on_ca_closed, &redis_closed);
    assert_true(run_until(&lc->loop, &redis_closed, 10000));
    pc_ca_free(lc->ca);
    assert_int_equal(uv_run(&lc->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&lc->loop), 0);
}

/* Pool work that holds a pool thread until the gate opens, so that work queued after it waits
 * too. */
#define BLOCKERS 16 /* more than libuv's pool has threads unless UV_THREADPOOL_SIZE says more */
static uv_sem_t gate;
static unsigned blockers_done;

static void block_work(uv_work_t *work)
{
    uv_sem_wait(&gate);
}

static void block_done(uv_work_t *work, int status)
{
    blockers_done++;
}

/* On a loop the revocation runs on a pool thread after pc_ca_revoke returned: what the caller
 * passed may be gone by then (a worker passes it from its stack), so the CA keeps a copy. */
static void test_revoke_on_loop_keeps_its_own_copy(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *cert = issue(fx, 30, "revoke-later");
    loop_ca_t lc;
    loop_ca_open(fx, &lc, false);

    /* the pool's threads held, the revocation runs only once the caller's copy is gone */
    uv_work_t blockers[BLOCKERS];
    assert_int_equal(uv_sem_init(&gate, 0), 0);
    blockers_done = 0;
    for (int i = 0; i < BLOCKERS; i++)
        assert_int_equal(uv_queue_work(&lc.loop, &blockers[i], block_work, block_done), 0);
    pc_ca_revoke_t *rev = malloc(sizeof(*rev));
    char *hex = serial_hex(cert);
    assert_non_null(rev);
    rev->serial_hex = hex;
    rev->reason = PC_REVOKE_KEY_COMPROMISE;
    answer_t answer = {.done = false};
    pc_ca_revoke(lc.ca, rev, on_answer, &answer);
    memset(hex, 'Z', strlen(hex)); /* the caller moves on */
    OPENSSL_free(hex);
    free(rev);
    for (int i = 0; i < BLOCKERS; i++)
        uv_sem_post(&gate);
    assert_true(run_until(&lc.loop, &answer.done, 10000));
    assert_int_equal(answer.err, PC_OK);
    assert_int_equal(revoked_count(fx), 1);

    loop_ca_close(&lc);
    assert_int_equal(blockers_done, BLOCKERS);
    uv_sem_destroy(&gate);
    X509_free(cert);
}

static void probe_work(uv_work_t *work) {}

static void probe_done(uv_work_t *work, int status)
{
    *(bool *)work->data = true;
}

/* With the loop's Redis client attached (as a worker does), a pool thread only signs: while
 * Redis does not answer, more submits than the pool has threads leave it free for other work,
 * and nothing is handed out before it is recorded; once Redis answers, every certificate is
 * recorded and handed out. */
static void test_records_from_loop_leave_pool_free(void **state)
{
    fixture_t *fx = *state;
    fx->redis.command_timeout_ms = 60000; /* longer than the test waits for the probe */
    with_ca(state);
    loop_ca_t lc;
    loop_ca_open(fx, &lc, true);
    for (int i = 0; i < 2000 && !pc_redis_ready(lc.redis); i++) /* connected before it stops */
        run_for(&lc.loop, 5);
    assert_true(pc_redis_ready(lc.redis));
    pc_diag_t diag = {.msg = ""};

    kill(fixture_redis.pid, SIGSTOP); /* Redis takes the records and does not answer */
    X509_REQ *req = make_csr(fx->key, "alice", "clientAuth");
    pc_ca_issue_t iss[BLOCKERS];
    char ids[BLOCKERS][32];
    answer_t answers[BLOCKERS];
    for (int i = 0; i < BLOCKERS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "loop-%d", i);
        iss[i] = (pc_ca_issue_t){.template_name = "User",
                                 .validity_days = 30,
                                 .tenant = "contoso",
                                 .request_id = ids[i]};
        answers[i] = (answer_t){.done = false};
        pc_ca_submit(lc.ca, req, &iss[i], on_answer, &answers[i]);
    }
    bool probed = false;
    uv_work_t probe = {.data = &probed};
    assert_int_equal(uv_queue_work(&lc.loop, &probe, probe_work, probe_done), 0);
    bool ran = run_until(&lc.loop, &probed, 20000);
    int answered = 0;
    for (int i = 0; i < BLOCKERS; i++)
        answered += answers[i].done;
    kill(fixture_redis.pid, SIGCONT);
    for (int i = 0; i < BLOCKERS; i++) /* every call ends before anything is checked */
        run_until(&lc.loop, &answers[i].done, 30000);
    run_until(&lc.loop, &probed, 30000);
    assert_true(ran); /* blocking records would hold every pool thread until Redis answers */
    assert_int_equal(answered, 0);
    for (int i = 0; i < BLOCKERS; i++) {
        assert_true(answers[i].done);
        assert_int_equal(answers[i].err, PC_OK);
    }
    assert_int_equal(issued_count(fx), BLOCKERS);
    pc_ca_serial_t *serials = NULL;
    size_t count = 0;
    assert_int_equal(pc_ca_find_issued_sync(fx->ca, "contoso", "loop-3", &serials, &count, &diag),
                     PC_OK);
    assert_int_equal(count, 1);
    free(serials);

    loop_ca_close(&lc);
    X509_REQ_free(req);
}

/* Recording from the loop with Redis away: asked again on a timer for as long as the pool
 * thread would have, then nothing is handed out, and the error names Redis. */
static void test_records_from_loop_redis_down(void **state)
{
    char where[64];
    fixture_t *fx = with_ca_redis_away(state, where, sizeof(where));
    loop_ca_t lc;
    loop_ca_open(fx, &lc, true);

    X509_REQ *req = make_csr(fx->key, "alice", "clientAuth");
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 30, .request_id = "down"};
    answer_t answer = {.done = false};
    pc_ca_submit(lc.ca, req, &iss, on_answer, &answer);
    assert_true(run_until(&lc.loop, &answer.done, 30000));
    assert_int_equal(answer.err, PC_ERR_DEPENDENCY);
    assert_false(answer.cert);
    assert_non_null(strstr(answer.msg, where));

    loop_ca_close(&lc);
    X509_REQ_free(req);
}

static X509_CRL *get_crl(pc_ca_t *ca, unsigned hours)
{
    unsigned char *der = NULL;
    size_t len = 0;
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = pc_ca_local_crl(ca, hours, &der, &len, &diag);
    if (err != PC_OK)
        fail_msg("crl: %s", diag.msg);
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    OPENSSL_free(der);
    return crl;
}

static long crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    long v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static void test_crl(void **state)
{
    fixture_t *fx = with_ca(state);
    X509 *cacert = ca_cert(fx->ca);
    X509 *revoked = issue(fx, 30, "revoked");
    X509 *kept = issue(fx, 30, "kept");
    char *hex = serial_hex(revoked);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_KEY_COMPROMISE};
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, NULL), PC_OK);

    X509_CRL *crl = get_crl(fx->ca, 24);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(cacert)), 1);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(cacert)), 0);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl));
    assert_int_equal(days * 86400 + secs, 24 * 3600);

    X509_REVOKED *entry = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(revoked)), 1);
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), PC_REVOKE_KEY_COMPROMISE);
    ASN1_ENUMERATED_free(reason);
    assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(kept)), 0);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);

    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(cacert)), 0);
    AUTHORITY_KEYID_free(akid);

    X509_CRL *next = get_crl(fx->ca, 24);
    assert_true(crl_number(next) > crl_number(crl));

    /* the CRL number survives a restart */
    long before = crl_number(next);
    pc_ca_free(fx->ca);
    fx->ca = NULL;
    with_ca(state);
    X509_CRL *after = get_crl(fx->ca, 1);
    assert_true(crl_number(after) > before);

    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(pc_ca_local_crl(fx->ca, 0, &der, &len, NULL), PC_ERR_INVALID_PARAM);

    X509_CRL_free(after);
    X509_CRL_free(next);
    X509_CRL_free(crl);
    OPENSSL_free(hex);
    X509_free(revoked);
    X509_free(kept);
}

/* `openssl verify` as an independent judge of what the CA produced. */
static int openssl_verify(const fixture_t *fx, const char *cert_name, bool crl_check)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "openssl verify %s -CAfile %s/ca.pem %s%s%s %s/%s >/dev/null 2>&1",
             crl_check ? "-crl_check" : "", fx->dir, crl_check ? "-CRLfile " : "",
             crl_check ? fx->dir : "", crl_check ? "/crl.pem" : "", fx->dir, cert_name);
    int status = system(cmd);
    assert_true(status != -1 && WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_openssl_tool_agrees(void **state)
{
    fixture_t *fx = with_ca(state);
    char path[256];
    X509 *good = issue(fx, 30, "good");
    X509 *bad = issue(fx, 30, "bad");
    char *hex = serial_hex(bad);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_CESSATION_OF_OPERATION};
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, NULL), PC_OK);
    X509_CRL *crl = get_crl(fx->ca, 24);

    snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
    write_pem_cert(path, ca_cert(fx->ca));
    snprintf(path, sizeof(path), "%s/good.pem", fx->dir);
    write_pem_cert(path, good);
    snprintf(path, sizeof(path), "%s/bad.pem", fx->dir);
    write_pem_cert(path, bad);
    snprintf(path, sizeof(path), "%s/crl.pem", fx->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509_CRL(fp, crl), 1);
    fclose(fp);

    assert_int_equal(openssl_verify(fx, "good.pem", false), 0);
    assert_int_equal(openssl_verify(fx, "bad.pem", false), 0);
    assert_int_equal(openssl_verify(fx, "good.pem", true), 0);
    assert_int_not_equal(openssl_verify(fx, "bad.pem", true), 0);

    X509_CRL_free(crl);
    OPENSSL_free(hex);
    X509_free(good);
    X509_free(bad);
}

typedef struct worker_arg {
    fixture_t *fx;
    EVP_PKEY *key;
    char *serials[25];
    int failures;
} worker_arg_t;

static void *issue_many(void *p)
{
    worker_arg_t *w = p;
    X509_REQ *req = make_csr(w->key, "thread", "emailProtection");
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 10, .request_id = "thr"};
    for (int i = 0; i < 25; i++) {
        X509 *cert = NULL;
        if (pc_ca_submit_sync(w->fx->ca, req, &iss, &cert, NULL) != PC_OK) {
            w->failures++;
            continue;
        }
        w->serials[i] = serial_hex(cert);
        X509_free(cert);
    }
    X509_REQ_free(req);
    return NULL;
}

static void test_threads_share_ca(void **state)
{
    fixture_t *fx = with_ca(state);
    worker_arg_t workers[4];
    pthread_t threads[4];
    char *all[100];

    memset(workers, 0, sizeof(workers));
    for (int t = 0; t < 4; t++) {
        workers[t].fx = fx;
        workers[t].key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_int_equal(pthread_create(&threads[t], NULL, issue_many, &workers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].failures, 0);
        for (int i = 0; i < 25; i++)
            all[t * 25 + i] = workers[t].serials[i];
        EVP_PKEY_free(workers[t].key);
    }
    qsort(all, 100, sizeof(all[0]), cmp_str);
    for (int i = 1; i < 100; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    for (int i = 0; i < 100; i++)
        OPENSSL_free(all[i]);
    assert_int_equal(issued_count(fx), 100);
}

/* Several processes starting at once on an empty state dir end up with one CA. */
static void test_processes_agree_on_one_ca(void **state)
{
    fixture_t *fx = *state;
    enum { N = 4 };
    pid_t pids[N];

    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            pc_ca_local_config_t cfg = base_config(fx);
            pc_ca_t *ca = NULL;
            char path[256];
            if (pc_ca_local_new(&cfg, &ca, NULL) != PC_OK)
                _exit(1);
            snprintf(path, sizeof(path), "%s/child%d.pem", fx->dir, i);
            FILE *fp = fopen(path, "w");
            int ok = fp != NULL && PEM_write_X509(fp, ca_cert(ca)) == 1;
            if (fp != NULL)
                fclose(fp);
            pc_ca_free(ca);
            _exit(ok ? 0 : 1);
        }
    }
    X509 *first = NULL;
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        char path[256];
        snprintf(path, sizeof(path), "%s/child%d.pem", fx->dir, i);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
        fclose(fp);
        assert_non_null(cert);
        if (first == NULL)
            first = cert;
        else {
            assert_int_equal(X509_cmp(first, cert), 0);
            X509_free(cert);
        }
    }
    X509_free(first);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_cert_and_key_files(void **state)
{
    fixture_t *fx = with_ca(state); /* a CA to borrow files from */
    X509 *original = X509_dup(ca_cert(fx->ca));
    pc_ca_free(fx->ca);
    fx->ca = NULL;
    char cert_path[256], key_path[256], chain_path[256], plain_path[256], other_state[256];
    snprintf(cert_path, sizeof(cert_path), "%s/ca.crt", fx->state);
    snprintf(key_path, sizeof(key_path), "%s/ca.key", fx->state);
    snprintf(chain_path, sizeof(chain_path), "%s/chain.pem", fx->dir);
    snprintf(plain_path, sizeof(plain_path), "%s/plain.key", fx->dir);
    snprintf(other_state, sizeof(other_state), "%s/deep/other", fx->dir);

    /* cert_file holding the CA and a chain after it */
    EVP_PKEY *root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *root = X509_new();
    X509_set_version(root, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(root), 7);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(root), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"Root", -1, -1, 0);
    X509_set_issuer_name(root, X509_get_subject_name(root));
    X509_gmtime_adj(X509_getm_notBefore(root), 0);
    X509_gmtime_adj(X509_getm_notAfter(root), 86400);
    X509_set_pubkey(root, root_key);
    X509_sign(root, root_key, EVP_sha256());
    FILE *fp = fopen(chain_path, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, original);
    PEM_write_X509(fp, root);
    fclose(fp);

    pc_ca_local_config_t cfg = base_config(fx);
    cfg.state_dir = other_state;
    cfg.cert_file = chain_path;
    cfg.key_file = key_path;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(open_ca(fx, &cfg, &fx->ca, &diag), PC_OK);
    STACK_OF(X509) *chain = fx->ca->ops->get0_chain(fx->ca);
    assert_int_equal(sk_X509_num(chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), original), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), root), 0);
    X509 *cert = issue(fx, 5, "from-files");
    X509_free(cert);
    assert_int_equal(issued_count(fx), 1);

    /* a key that is not the certificate's */
    fp = fopen(plain_path, "w");
    assert_non_null(fp);
    PEM_write_PKCS8PrivateKey(fp, root_key, EVP_aes_256_cbc(), PASS, (int)strlen(PASS), NULL, NULL);
    fclose(fp);
    cfg.key_file = plain_path;
    pc_ca_t *ca = NULL;
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, "does not belong"));

    /* an unencrypted key is refused, with how to encrypt it */
    fp = fopen(plain_path, "w");
    assert_non_null(fp);
    PEM_write_PrivateKey(fp, root_key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "not encrypted"));

    /* a missing file is named */
    cfg.key_file = "/nonexistent/ca.key";
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_IO);
    assert_non_null(strstr(diag.msg, "/nonexistent/ca.key"));
    cfg.key_file = NULL;
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_INVALID_PARAM);

    /* garbage is no certificate */
    write_text(chain_path, "not a certificate\n");
    cfg.key_file = key_path;
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_CRYPTO);
    assert_non_null(strstr(diag.msg, chain_path));

    X509_free(root);
    EVP_PKEY_free(root_key);
    X509_free(original);
}

static void test_half_state_dir_refused(void **state)
{
    fixture_t *fx = with_ca(state);
    pc_ca_free(fx->ca);
    fx->ca = NULL;
    char path[256];
    snprintf(path, sizeof(path), "%s/ca.crt", fx->state);
    assert_int_equal(unlink(path), 0);

    pc_ca_local_config_t cfg = base_config(fx);
    pc_diag_t diag = {.msg = ""};
    pc_ca_t *ca = NULL;
    /* never silently replaces a CA key */
    assert_int_equal(open_ca(fx, &cfg, &ca, &diag), PC_ERR_IO);
    assert_non_null(strstr(diag.msg, "ca.crt"));
}

/* Two workers on two machines: one CA (the same key files), separate state folders, one
 * Redis. What one issues the other finds and revokes, and both sign the same CRL. */
static void test_two_machines_share_records(void **state)
{
    fixture_t *fx = with_ca(state);
    char cert_path[256], key_path[256], other_state[256];
    snprintf(cert_path, sizeof(cert_path), "%s/ca.crt", fx->state);
    snprintf(key_path, sizeof(key_path), "%s/ca.key", fx->state);
    snprintf(other_state, sizeof(other_state), "%s/machine-b", fx->dir);
    pc_ca_local_config_t cfg = base_config(fx);
    cfg.state_dir = other_state;
    cfg.cert_file = cert_path;
    cfg.key_file = key_path;
    pc_diag_t diag = {.msg = ""};
    pc_ca_t *b = NULL;
    assert_int_equal(open_ca(fx, &cfg, &b, &diag), PC_OK);

    X509 *cert = issue(fx, 30, "m-1"); /* on machine a */
    char *hex = serial_hex(cert);
    pc_ca_serial_t *serials = NULL;
    size_t count = 0;
    assert_int_equal(pc_ca_find_issued_sync(b, "contoso", "m-1", &serials, &count, &diag), PC_OK);
    assert_int_equal(count, 1);
    assert_string_equal(serials[0].hex, hex);
    free(serials);
    /* the same request id from another tenant is another request */
    serials = NULL;
    assert_int_equal(pc_ca_find_issued_sync(b, "fabrikam", "m-1", &serials, &count, &diag), PC_OK);
    assert_int_equal(count, 0);
    free(serials);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_KEY_COMPROMISE};
    assert_int_equal(pc_ca_revoke_sync(b, &rev, &diag), PC_OK); /* on machine b */

    X509_CRL *crl_a = get_crl(fx->ca, 24), *crl_b = get_crl(b, 24);
    X509_REVOKED *entry = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(crl_a, &entry, X509_get0_serialNumber(cert)), 1);
    assert_int_equal(X509_CRL_get0_by_serial(crl_b, &entry, X509_get0_serialNumber(cert)), 1);
    assert_true(crl_number(crl_b) > crl_number(crl_a)); /* one counter for both */

    X509_CRL_free(crl_b);
    X509_CRL_free(crl_a);
    OPENSSL_free(hex);
    X509_free(cert);
    pc_ca_free(b);
}

/* With Redis down the CA starts, but hands nothing out: a certificate it cannot record could
 * never be revoked. The error is retryable and names Redis. */
static void test_redis_down_hands_out_nothing(void **state)
{
    char where[64];
    fixture_t *fx = with_ca_redis_away(state, where, sizeof(where));

    X509_REQ *req = make_csr(fx->key, "alice", "clientAuth");
    pc_ca_issue_t iss = {.template_name = "User", .validity_days = 30, .request_id = "down"};
    pc_diag_t diag = {.msg = ""};
    X509 *cert = NULL;
    assert_int_equal(pc_ca_submit_sync(fx->ca, req, &iss, &cert, &diag), PC_ERR_DEPENDENCY);
    assert_null(cert);
    assert_true(pc_err_retryable(PC_ERR_DEPENDENCY));
    assert_non_null(strstr(diag.msg, where));
    X509_REQ_free(req);

    pc_ca_revoke_t rev = {.serial_hex = "0A1B", .reason = PC_REVOKE_SUPERSEDED};
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_ERR_DEPENDENCY);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(pc_ca_local_crl(fx->ca, 24, &der, &len, &diag), PC_ERR_DEPENDENCY);
    assert_null(der);
    assert_non_null(strstr(diag.msg, where));
}

/* Offline (no Redis configured): the records live in index.txt in the state folder. */
static void test_offline_records_in_state_dir(void **state)
{
    fixture_t *fx = *state;
    pc_ca_local_config_t cfg = base_config(fx);
    cfg.redis = NULL;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(open_ca(fx, &cfg, &fx->ca, &diag), PC_OK);

    X509 *cert = issue(fx, 30, "offline-1");
    char *hex = serial_hex(cert);
    pc_ca_revoke_t rev = {.serial_hex = hex, .reason = PC_REVOKE_KEY_COMPROMISE};
    assert_int_equal(pc_ca_revoke_sync(fx->ca, &rev, &diag), PC_OK);
    X509_CRL *crl = get_crl(fx->ca, 24);
    X509_REVOKED *entry = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cert)), 1);
    assert_int_equal(crl_number(crl), 1);

    assert_int_equal(index_lines(fx, "I\t"), 1);
    assert_int_equal(index_lines(fx, "R\t"), 1);
    char path[256];
    snprintf(path, sizeof(path), "%s/index.txt", fx->state);
    char *text = read_file(path);
    assert_non_null(text);
    assert_non_null(strstr(text, hex));
    assert_non_null(strstr(text, "offline-1"));
    assert_non_null(strstr(text, "CN=alice"));
    free(text);
    assert_int_equal(admin_int(fx, "DBSIZE", NULL), 0); /* nothing in Redis */

    X509_CRL_free(crl);
    OPENSSL_free(hex);
    X509_free(cert);
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(&fixture_redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generated_key_is_encrypted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passphrase_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_gives_same_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subject_from_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issued_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_urls_unless_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serials_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_signs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_request_signs_as_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_on_loop_keeps_its_own_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_from_loop_leave_pool_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_from_loop_redis_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openssl_tool_agrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes_agree_on_one_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_and_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_state_dir_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_machines_share_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_hands_out_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_records_in_state_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
