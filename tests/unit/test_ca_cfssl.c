/*
 * test_ca_cfssl.c - the cfssl backend against a real "cfssl serve" (Debian's cfssl 1.2, set up
 * by tests/lib/cfssl.sh in a temporary directory and run as this process's child): what it
 * issues verifies and carries the CSR's key, subject and SANs; wrong keys and forbidden CSRs are
 * refused (the latter without a request); revocations reach cfssl's database; a stopped cfssl
 * opens the circuit breaker and a restarted one closes it. Each test asserts
 * uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_cfssl.h"

#define UPN_OID "1.3.6.1.4.1.311.20.2.3"

/* ---- the cfssl process -------------------------------------------------------------------- */

typedef struct server {
    const char *mode; /* "serve" (http) or "serve-tls" (https + client certificates) */
    int port;
    pid_t pid;
} server_t;

static struct {
    char dir[64];
    char script[512];
    char key_hex[128];
    char url[64];     /* of main */
    char tls_url[64]; /* of tls */
    server_t main, tls;
} cfssl;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* cfssl_answers: a blocking POST /info with a short timeout (the test may block; the code
 * under test may not); over TLS, that it accepts connections. */
static bool cfssl_answers(const server_t *srv)
{
    static const char req[] = "POST /api/v1/cfssl/info HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}";
    struct sockaddr_in sa;
    struct timeval tv = {0, 300000};
    char buf[64] = "";
    bool ok = false;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (strcmp(srv->mode, "serve") != 0)
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
             write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1) &&
             read(fd, buf, sizeof(buf) - 1) > 0)
        ok = strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0;
    close(fd);
    return ok;
}

static void cfssl_stop(server_t *srv)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid)
            goto out_reaped;
        sleep_ms(10);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
out_reaped:
    srv->pid = 0;
}

/* cfssl_start runs "cfssl.sh serve" as our child (it dies with us: PR_SET_PDEATHSIG) and waits
 * until it answers. */
static void cfssl_start(server_t *srv)
{
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", srv->port);
    snprintf(log, sizeof(log), "%s/cfssl.log", cfssl.dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execlp("bash", "bash", cfssl.script, srv->mode, cfssl.dir, port, (char *)NULL);
        _exit(127);
    }
    srv->pid = pid;
    for (int i = 0; i < 400; i++) {
        if (cfssl_answers(srv))
            return;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            srv->pid = 0;
            fail_msg("cfssl serve exited at start; see %s", log);
        }
        sleep_ms(25);
    }
    fail_msg("cfssl serve did not answer on port %d within 10 s; see %s", srv->port, log);
}

static void cfssl_cleanup(void)
{
    char cmd[128];
    cfssl_stop(&cfssl.main);
    cfssl_stop(&cfssl.tls);
    if (cfssl.dir[0] != '\0' && getenv("PC_KEEP_CFSSL_DIR") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cfssl.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", cfssl.dir);
        cfssl.dir[0] = '\0';
    }
}

/* sql runs one query on cfssl's database and returns its first output line. */
static char *sql(const char *query)
{
    static char line[256];
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sqlite3 '%s/certs.db' \"%s\"", cfssl.dir, query);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (fgets(line, sizeof(line), p) != NULL)
        line[strcspn(line, "\n")] = '\0';
    pclose(p);
    return line;
}

static int group_setup(void **state)
{
    char cmd[1024];
    const char *src = getenv("PC_SOURCE_DIR");

    if (src != NULL)
        snprintf(cfssl.script, sizeof(cfssl.script), "%s/tests/lib/cfssl.sh", src);
    else /* __FILE__ is tests/unit/test_ca_cfssl.c */
        snprintf(cfssl.script, sizeof(cfssl.script), "%.*s/../lib/cfssl.sh",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
    snprintf(cfssl.dir, sizeof(cfssl.dir), "/tmp/pc-cfssl-XXXXXX");
    if (mkdtemp(cfssl.dir) == NULL)
        return -1;
    atexit(cfssl_cleanup);
    snprintf(cmd, sizeof(cmd), "bash '%s' setup '%s' >'%s/setup.log' 2>&1", cfssl.script, cfssl.dir,
             cfssl.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cfssl setup failed: see %s/setup.log\n", cfssl.dir);
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "%s/auth_key.hex", cfssl.dir);
    FILE *f = fopen(cmd, "r");
    if (f == NULL || fgets(cfssl.key_hex, sizeof(cfssl.key_hex), f) == NULL)
        return -1;
    fclose(f);
    cfssl.key_hex[strcspn(cfssl.key_hex, "\n")] = '\0';
    cfssl.main.mode = "serve";
    cfssl.main.port = free_port();
    snprintf(cfssl.url, sizeof(cfssl.url), "http://127.0.0.1:%d/", cfssl.main.port);
    cfssl_start(&cfssl.main);
    cfssl.tls.mode = "serve-tls";
    cfssl.tls.port = free_port();
    snprintf(cfssl.tls_url, sizeof(cfssl.tls_url), "https://127.0.0.1:%d", cfssl.tls.port);
    cfssl_start(&cfssl.tls);
    return 0;
}

static int group_teardown(void **state)
{
    cfssl_cleanup();
    return 0;
}

/* ---- CSRs --------------------------------------------------------------------------------- */

typedef struct csr_spec {
    const char *subject[6]; /* "field=value" in order; NULL ends */
    const char *sans;       /* OpenSSL config syntax, may be NULL */
    const char *ekus;       /* e.g. "clientAuth", may be NULL */
} csr_spec_t;

static void add_ext(STACK_OF(X509_EXTENSION) * exts, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, nid, value);
    assert_non_null(ext);
    assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
}

static X509_REQ *make_csr(EVP_PKEY *key, const csr_spec_t *spec)
{
    X509_REQ *csr = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

    for (size_t i = 0; i < 6 && spec->subject[i] != NULL; i++) {
        char field[32];
        const char *eq = strchr(spec->subject[i], '=');
        snprintf(field, sizeof(field), "%.*s", (int)(eq - spec->subject[i]), spec->subject[i]);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                                    (const unsigned char *)eq + 1, -1, -1, 0),
                         1);
    }
    if (spec->sans != NULL)
        add_ext(exts, NID_subject_alt_name, spec->sans);
    if (spec->ekus != NULL)
        add_ext(exts, NID_ext_key_usage, spec->ekus);
    add_ext(exts, NID_key_usage, "critical,digitalSignature");
    assert_int_equal(X509_REQ_set_subject_name(csr, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(csr, key), 1);
    assert_int_equal(X509_REQ_add_extensions(csr, exts), 1);
    assert_true(X509_REQ_sign(csr, key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return csr;
}

/* make_template: a template allowing the EKUs of the comma-separated list ekus. */
static pc_ca_template_t *make_template(const char *name, const char *ekus)
{
    pc_ca_template_t *tmpl = calloc(1, sizeof(*tmpl));
    assert_non_null(tmpl);
    tmpl->name = strdup(name);
    tmpl->allowed_ekus = calloc(4, sizeof(char *));
    for (const char *p = ekus; *p != '\0' && tmpl->allowed_eku_count < 4;) {
        size_t n = strcspn(p, ",");
        tmpl->allowed_ekus[tmpl->allowed_eku_count++] = strndup(p, n);
        p += n + (p[n] == ',');
    }
    tmpl->allowed_key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    tmpl->max_validity_days = 365;
    tmpl->subject_from_request = true;
    return tmpl;
}

/* ---- a loop, a backend, and outcomes ------------------------------------------------------ */

typedef struct outcome {
    bool called;
    unsigned calls;
    bool well_formed; /* a diag exactly on failure, no certificate with it */
    bool inside_call; /* answered before submit/revoke returned */
    pc_err_t err;
    X509 *cert;
    char msg[512];
} outcome_t;

typedef struct world {
    uv_loop_t loop;
    EVP_PKEY *key;
    pc_ca_t *ca;
    bool ca_closed;
    bool in_call;
    bool ready_called;
    pc_err_t ready_err;
    outcome_t outs[6]; /* outlive a test: closing the backend answers into them */
} world_t;

static world_t *world;

/* on_done records; assertions run in the test body (a failing assertion longjmps, which must
 * not happen inside a libuv callback). */
static void on_done(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    outcome_t *out = arg;
    out->calls++;
    out->called = true;
    out->inside_call = world->in_call;
    out->err = err;
    out->cert = cert;
    out->well_formed = err == PC_OK ? diag == NULL : diag != NULL && cert == NULL;
    snprintf(out->msg, sizeof(out->msg), "%s", diag != NULL ? diag->msg : "");
}

static void on_ready(void *arg, pc_err_t err)
{
    world_t *w = arg;
    w->ready_called = true;
    w->ready_err = err;
}

/* on_closed: nothing of the CA is left on the loop; it is freed here, as pc_ca_close wants. */
static void on_closed(void *arg)
{
    world_t *w = arg;
    w->ca_closed = true;
    pc_ca_free(w->ca);
}

/* run_until runs the loop until *flag, or fails after timeout_ms. */
static void run_until(world_t *w, const bool *flag, unsigned timeout_ms)
{
    uint64_t deadline = uv_now(&w->loop) + timeout_ms;
    while (!*flag && uv_now(&w->loop) < deadline) {
        uv_update_time(&w->loop);
        uv_run(&w->loop, UV_RUN_NOWAIT);
        sleep_ms(1);
    }
    assert_true(*flag);
}

/* wait_out runs the loop until out is answered, exactly once and well formed. */
static void wait_out(world_t *w, outcome_t *out, unsigned timeout_ms)
{
    run_until(w, &out->called, timeout_ms);
    assert_int_equal(out->calls, 1);
    assert_true(out->well_formed);
}

static void run_for(world_t *w, unsigned ms)
{
    uint64_t deadline = uv_now(&w->loop) + ms;
    while (uv_now(&w->loop) < deadline) {
        uv_update_time(&w->loop);
        uv_run(&w->loop, UV_RUN_NOWAIT);
        sleep_ms(1);
    }
}

static pc_ca_cfssl_config_t base_config(pc_ca_template_t **templates, size_t count)
{
    pc_ca_cfssl_config_t cfg = {.name = "cfssl-test",
                                .url = cfssl.url,
                                .allow_http = true, /* cfssl.url is http:// on loopback */
                                .auth_key_hex = cfssl.key_hex,
                                .connect_timeout_ms = 1000,
                                .total_timeout_ms = 3000,
                                .attempts = 3,
                                .retry_base_ms = 50,
                                .retry_max_ms = 100,
                                .breaker_threshold = 3,
                                .breaker_cooldown_ms = 1200,
                                .templates = templates,
                                .template_count = count};
    return cfg;
}

/* open_ca makes the backend from cfg and waits for its chain. */
static void open_ca(world_t *w, const pc_ca_cfssl_config_t *cfg)
{
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = pc_ca_cfssl_new(&w->loop, cfg, &w->ca, &diag);
    if (err != PC_OK)
        fail_msg("pc_ca_cfssl_new: %s", diag.msg);
    assert_string_equal(w->ca->ops->kind, "cfssl");
    assert_non_null(w->ca->loop);
    pc_ca_cfssl_on_ready(w->ca, on_ready, w);
    run_until(w, &w->ready_called, 5000);
    assert_int_equal(w->ready_err, PC_OK);
    assert_non_null(w->ca->ops->get0_chain(w->ca));
    assert_true(pc_ca_healthy(w->ca));
}

/* open_default: templates "User" (clientAuth) and "Employee" (mapped to cfssl's "User"). */
static void open_default(world_t *w)
{
    pc_ca_template_t *templates[2] = {make_template("User", "clientAuth,emailProtection"),
                                      make_template("Employee", "clientAuth,emailProtection")};
    pc_ca_cfssl_profile_t map[1] = {{.template_name = "Employee", .profile = "User"}};
    pc_ca_cfssl_config_t cfg = base_config(templates, 2);
    cfg.profiles = map;
    cfg.profile_count = 1;
    open_ca(w, &cfg);
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->key = EVP_EC_gen("P-256");
    assert_non_null(w->key);
    world = w;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    if (w->ca != NULL && !w->ca_closed)
        pc_ca_close(w->ca, on_closed, w);
    for (int i = 0; i < 1000 && w->ca != NULL && !w->ca_closed; i++)
        uv_run(&w->loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    for (size_t i = 0; i < sizeof(w->outs) / sizeof(w->outs[0]); i++)
        X509_free(w->outs[i].cert);
    EVP_PKEY_free(w->key);
    free(w);
    return 0;
}

static void submit(world_t *w, X509_REQ *csr, const char *tmpl, const char *request_id,
                   outcome_t *out)
{
    /* what the test cfssl's profiles sign: a year */
    pc_ca_issue_t issue = {.template_name = tmpl, .validity_days = 365, .request_id = request_id};
    w->in_call = true;
    pc_ca_submit(w->ca, csr, &issue, on_done, out);
    w->in_call = false;
    X509_REQ_free(csr); /* borrowed only during the call */
}

static void revoke_serial(world_t *w, const char *serial_hex, outcome_t *out)
{
    pc_ca_revoke_t rev = {.serial_hex = serial_hex, .reason = PC_REVOKE_KEY_COMPROMISE};
    w->in_call = true;
    w->ca->ops->revoke(w->ca, &rev, on_done, out);
    w->in_call = false;
}

static bool has_san(X509 *cert, int type, const char *value)
{
    bool found = false;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && !found; i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        int t = 0;
        ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
        found = t == type && (size_t)ASN1_STRING_length(s) == strlen(value) &&
                memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0;
    }
    GENERAL_NAMES_free(sans);
    return found;
}

static char *serial_hex(X509 *cert)
{
    static char hex[80];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *text = BN_bn2hex(bn);
    snprintf(hex, sizeof(hex), "%s", text);
    OPENSSL_free(text);
    BN_free(bn);
    return hex;
}

static char *serial_dec(X509 *cert)
{
    static char dec[80];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *text = BN_bn2dec(bn);
    snprintf(dec, sizeof(dec), "%s", text);
    OPENSSL_free(text);
    BN_free(bn);
    return dec;
}

/* what the test cfssl's profile "User" signs: client auth and e-mail protection */
static const csr_spec_t alice = {
    .subject = {"O=Contoso", "OU=Staff", "CN=alice"},
    .sans = "DNS:dev1.contoso.test,email:alice@contoso.test",
    .ekus = "clientAuth,emailProtection",
};

/* what cfssl's default profile signs: client auth */
static const csr_spec_t bob = {.subject = {"O=Contoso", "CN=bob"}, .ekus = "clientAuth"};

/* issue_one issues alice's certificate through template "User" into outs[slot]. */
static X509 *issue_one(world_t *w, size_t slot, const char *request_id)
{
    submit(w, make_csr(w->key, &alice), "User", request_id, &w->outs[slot]);
    wait_out(w, &w->outs[slot], 10000);
    if (w->outs[slot].err != PC_OK)
        fail_msg("issue failed: %s", w->outs[slot].msg);
    assert_non_null(w->outs[slot].cert);
    return w->outs[slot].cert;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_issues_through_authsign(void **state)
{
    world_t *w = *state;
    open_default(w);
    unsigned long before = pc_ca_cfssl_requests(w->ca);

    X509 *cert = issue_one(w, 0, "req-issue-1");
    assert_false(w->outs[0].inside_call);
    assert_int_equal(pc_ca_cfssl_requests(w->ca), before + 1);

    /* signed by cfssl's CA, for our key, with our subject and SANs */
    X509 *ca_cert = sk_X509_value(w->ca->ops->get0_chain(w->ca), 0);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca_cert)), 1);
    assert_int_equal(X509_check_issued(ca_cert, cert), X509_V_OK);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), w->key), 1);
    X509_REQ *csr = make_csr(w->key, &alice);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), X509_REQ_get_subject_name(csr)), 0);
    X509_REQ_free(csr);
    assert_true(has_san(cert, GEN_DNS, "dev1.contoso.test"));
    assert_true(has_san(cert, GEN_EMAIL, "alice@contoso.test"));
    /* the cfssl profile "User" decides the usages: client auth and e-mail protection */
    assert_true((X509_get_extended_key_usage(cert) & (XKU_SSL_CLIENT | XKU_SMIME)) ==
                (XKU_SSL_CLIENT | XKU_SMIME));

    /* cfssl recorded it, labelled with the request id */
    char query[256];
    snprintf(query, sizeof(query),
             "select ca_label || '|' || status from certificates where serial_number = '%s'",
             serial_dec(cert));
    assert_string_equal(sql(query), "req-issue-1|good");

    /* a template mapped to another profile name */
    submit(w, make_csr(w->key, &alice), "Employee", "req-issue-2", &w->outs[1]);
    wait_out(w, &w->outs[1], 10000);
    assert_int_equal(w->outs[1].err, PC_OK);
}

static void test_wrong_auth_key_is_an_auth_error(void **state)
{
    world_t *w = *state;
    pc_ca_template_t *templates[1] = {make_template("User", "clientAuth,emailProtection")};
    pc_ca_cfssl_config_t cfg = base_config(templates, 1);
    cfg.auth_key_hex = "00112233445566778899aabbccddeeff";
    open_ca(w, &cfg);
    unsigned long before = pc_ca_cfssl_requests(w->ca);

    submit(w, make_csr(w->key, &alice), "User", "req-auth", &w->outs[0]);
    wait_out(w, &w->outs[0], 10000);

    assert_int_equal(w->outs[0].err, PC_ERR_CA_AUTH);
    assert_non_null(strstr(w->outs[0].msg, "invalid token"));
    assert_non_null(strstr(w->outs[0].msg, "cfssl-test"));
    assert_int_equal(pc_ca_cfssl_requests(w->ca), before + 1); /* not retried */
    assert_true(pc_ca_healthy(w->ca));                         /* the CA itself works */
}

static void test_unauthenticated_sign_and_profile_mismatch(void **state)
{
    world_t *w = *state;
    pc_ca_template_t *templates[2] = {make_template("User", "clientAuth,emailProtection"),
                                      make_template("Plain", "clientAuth")};
    /* no such profile in cfssl: it falls back to its default profile, which needs no key */
    pc_ca_cfssl_profile_t map[1] = {{.template_name = "Plain", .profile = "default"}};
    pc_ca_cfssl_config_t cfg = base_config(templates, 2);
    cfg.auth_key_hex = NULL; /* /api/v1/cfssl/sign */
    cfg.profiles = map;
    cfg.profile_count = 1;
    open_ca(w, &cfg);

    submit(w, make_csr(w->key, &bob), "Plain", NULL, &w->outs[0]);
    submit(w, make_csr(w->key, &alice), "User", NULL, &w->outs[1]);
    wait_out(w, &w->outs[0], 10000);
    wait_out(w, &w->outs[1], 10000);

    assert_int_equal(w->outs[0].err, PC_OK); /* cfssl's default profile needs no key */
    assert_int_equal(w->outs[1].err, PC_ERR_CA_AUTH);
    assert_non_null(strstr(w->outs[1].msg, "authentication required"));
}

/* cfssl's profile decides validity and usages: a certificate other than asked (a month asked,
 * a year signed; client auth asked, e-mail protection added) is refused, naming both
 * differences, and revoked at cfssl at once. */
static void test_certificate_other_than_asked_is_refused_and_revoked(void **state)
{
    world_t *w = *state;
    open_default(w);
    const csr_spec_t client_only = {.subject = {"O=Contoso", "CN=carol"}, .ekus = "clientAuth"};
    pc_ca_issue_t issue = {.template_name = "User", .validity_days = 30, .request_id = "asked-1"};
    X509_REQ *csr = make_csr(w->key, &client_only);
    pc_ca_submit(w->ca, csr, &issue, on_done, &w->outs[0]);
    X509_REQ_free(csr);
    wait_out(w, &w->outs[0], 10000);
    assert_int_equal(w->outs[0].err, PC_ERR_POLICY);
    assert_null(w->outs[0].cert);
    assert_non_null(strstr(w->outs[0].msg, "valid 365 days where 30 were asked"));
    assert_non_null(
        strstr(w->outs[0].msg, "extended key usages clientAuth,emailProtection where clientAuth"));
    assert_non_null(strstr(w->outs[0].msg, "(the certificate was revoked)"));
}

static void test_template_policy_is_checked_before_any_request(void **state)
{
    world_t *w = *state;
    open_default(w);
    unsigned long before = pc_ca_cfssl_requests(w->ca);
    const csr_spec_t server = {.subject = {"CN=web.contoso.test"}, .ekus = "serverAuth"};
    const csr_spec_t upn = {.subject = {"CN=alice"},
                            .sans = "otherName:" UPN_OID ";UTF8:alice@contoso.test",
                            .ekus = "clientAuth"};
    const csr_spec_t email_rdn = {.subject = {"CN=alice", "emailAddress=alice@contoso.test"},
                                  .ekus = "clientAuth"};

    submit(w, make_csr(w->key, &server), "User", NULL, &w->outs[0]);
    submit(w, make_csr(w->key, &upn), "User", NULL, &w->outs[1]);
    submit(w, make_csr(w->key, &email_rdn), "User", NULL, &w->outs[2]);
    submit(w, make_csr(w->key, &alice), "NoSuchTemplate", NULL, &w->outs[3]);
    for (size_t i = 0; i < 4; i++)
        wait_out(w, &w->outs[i], 5000);

    assert_int_equal(w->outs[0].err, PC_ERR_POLICY);
    assert_non_null(strstr(w->outs[0].msg, "serverAuth"));
    /* cfssl would drop these silently; refused instead */
    assert_int_equal(w->outs[1].err, PC_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(w->outs[1].msg, "otherName"));
    assert_int_equal(w->outs[2].err, PC_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(w->outs[2].msg, "emailAddress"));
    assert_int_equal(w->outs[3].err, PC_ERR_INVALID_PARAM);
    for (size_t i = 0; i < 4; i++)
        assert_false(w->outs[i].inside_call); /* answered from the loop, not inside submit */
    assert_int_equal(pc_ca_cfssl_requests(w->ca), before); /* nothing went to cfssl */
}

static void test_revoke(void **state)
{
    world_t *w = *state;
    char query[256];
    open_default(w);

    X509 *cert = issue_one(w, 0, "req-revoke");
    char hex[80];
    snprintf(hex, sizeof(hex), "%s", serial_hex(cert));
    snprintf(query, sizeof(query),
             "select status || '|' || reason from certificates where serial_number = '%s'",
             serial_dec(cert));

    revoke_serial(w, hex, &w->outs[1]);
    assert_false(w->outs[1].called);
    wait_out(w, &w->outs[1], 10000);
    assert_int_equal(w->outs[1].err, PC_OK);
    assert_string_equal(sql(query), "revoked|1"); /* keyCompromise */

    revoke_serial(w, hex, &w->outs[2]); /* again: not an error */
    wait_out(w, &w->outs[2], 10000);
    assert_int_equal(w->outs[2].err, PC_OK);

    revoke_serial(w, "0123456789ABCDEF0123456789ABCDEF", &w->outs[3]);
    wait_out(w, &w->outs[3], 10000);
    assert_int_equal(w->outs[3].err, PC_ERR_NOT_FOUND);
    assert_non_null(strstr(w->outs[3].msg, "no certificate with serial"));

    revoke_serial(w, "12:34", &w->outs[4]);
    wait_out(w, &w->outs[4], 5000);
    assert_int_equal(w->outs[4].err, PC_ERR_INVALID_PARAM);
    assert_true(pc_ca_healthy(w->ca));
}

static void test_breaker_opens_when_cfssl_stops_and_closes_when_it_returns(void **state)
{
    world_t *w = *state;
    open_default(w);
    issue_one(w, 0, "req-before");

    cfssl_stop(&cfssl.main);
    unsigned long before = pc_ca_cfssl_requests(w->ca);
    submit(w, make_csr(w->key, &alice), "User", "req-down", &w->outs[1]);
    wait_out(w, &w->outs[1], 10000);
    assert_int_equal(w->outs[1].err, PC_ERR_CA_UNAVAILABLE);
    assert_non_null(strstr(w->outs[1].msg, "(3 attempts)"));
    assert_int_equal(pc_ca_cfssl_requests(w->ca), before + 3);
    assert_false(pc_ca_healthy(w->ca)); /* three failures: open */

    /* open: fails at once, without a request */
    uint64_t start = uv_hrtime();
    submit(w, make_csr(w->key, &alice), "User", "req-fast", &w->outs[2]);
    wait_out(w, &w->outs[2], 1000);
    assert_int_equal(w->outs[2].err, PC_ERR_CA_UNAVAILABLE);
    assert_non_null(strstr(w->outs[2].msg, "circuit breaker open"));
    assert_true(uv_hrtime() - start < 100 * 1000000ull);
    assert_int_equal(pc_ca_cfssl_requests(w->ca), before + 3);

    /* back, but the breaker holds until the cool-down is over */
    cfssl_start(&cfssl.main);
    submit(w, make_csr(w->key, &alice), "User", "req-cooling", &w->outs[3]);
    wait_out(w, &w->outs[3], 1000);
    assert_int_equal(w->outs[3].err, PC_ERR_CA_UNAVAILABLE);

    run_for(w, 1300);
    submit(w, make_csr(w->key, &alice), "User", "req-after", &w->outs[4]);
    wait_out(w, &w->outs[4], 10000);
    if (w->outs[4].err != PC_OK)
        fail_msg("after the cool-down: %s", w->outs[4].msg);
    assert_true(pc_ca_healthy(w->ca));
}

static void test_chain_is_fetched_once_cfssl_answers(void **state)
{
    world_t *w = *state;
    pc_diag_t diag = {.msg = ""};
    pc_ca_cfssl_config_t cfg = base_config(NULL, 0);

    cfssl_stop(&cfssl.main);
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_OK);
    pc_ca_cfssl_on_ready(w->ca, on_ready, w);
    run_for(w, 300);
    assert_false(w->ready_called);
    assert_null(w->ca->ops->get0_chain(w->ca));
    assert_false(pc_ca_healthy(w->ca));
    revoke_serial(w, "01", &w->outs[0]); /* needs the CA's key id */
    wait_out(w, &w->outs[0], 1000);
    assert_int_equal(w->outs[0].err, PC_ERR_CA_UNAVAILABLE);

    cfssl_start(&cfssl.main);
    run_until(w, &w->ready_called, 8000);
    assert_int_equal(w->ready_err, PC_OK);
    assert_int_equal(sk_X509_num(w->ca->ops->get0_chain(w->ca)), 1);
}

static void test_close_answers_pending_requests(void **state)
{
    world_t *w = *state;
    open_default(w);

    submit(w, make_csr(w->key, &alice), "User", "req-close-1", &w->outs[0]);
    submit(w, make_csr(w->key, &alice), "NoSuchTemplate", NULL, &w->outs[1]); /* deferred */
    pc_ca_close(w->ca, on_closed, w);
    assert_true(w->outs[0].called); /* answered before close returned */
    assert_int_equal(w->outs[0].calls, 1);
    assert_true(w->outs[0].well_formed);
    assert_int_equal(w->outs[0].err, PC_ERR_CA_UNAVAILABLE);
    assert_non_null(strstr(w->outs[0].msg, "closed"));
    assert_true(w->outs[1].called);
    assert_int_equal(w->outs[1].err, PC_ERR_INVALID_PARAM); /* its own outcome, not "closed" */
    assert_false(w->ca_closed);                             /* closed in the last close callback */
    run_until(w, &w->ca_closed, 2000);
}

static void test_mutual_tls(void **state)
{
    world_t *w = *state;
    char ca[128], cert[128], key[128];
    pc_ca_template_t *templates[1] = {make_template("User", "clientAuth,emailProtection")};
    pc_ca_cfssl_config_t cfg = base_config(templates, 1);
    snprintf(ca, sizeof(ca), "%s/ca.pem", cfssl.dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", cfssl.dir);
    snprintf(key, sizeof(key), "%s/client-key.pem", cfssl.dir);
    cfg.url = cfssl.tls_url;
    cfg.ca_bundle = ca;
    cfg.client_cert = cert;
    cfg.client_key = key;
    open_ca(w, &cfg);

    issue_one(w, 0, "req-tls");
    pc_ca_close(w->ca, on_closed, w);
    run_until(w, &w->ca_closed, 2000);

    /* without a client certificate the handshake fails: the CA is unavailable to us */
    pc_diag_t diag = {.msg = ""};
    cfg = base_config(NULL, 0);
    cfg.url = cfssl.tls_url;
    cfg.ca_bundle = ca;
    cfg.attempts = 1;
    w->ca_closed = false;
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_OK);
    run_for(w, 300);
    revoke_serial(w, "01", &w->outs[1]); /* the CA certificate never came */
    wait_out(w, &w->outs[1], 1000);
    assert_int_equal(w->outs[1].err, PC_ERR_CA_UNAVAILABLE);
    assert_non_null(strstr(w->outs[1].msg, "fetching its CA certificate"));
    assert_false(pc_ca_healthy(w->ca));
}

static void test_bad_configuration(void **state)
{
    world_t *w = *state;
    pc_diag_t diag = {.msg = ""};
    pc_ca_cfssl_config_t cfg = base_config(NULL, 0);

    cfg.url = "cfssl.example:8888";
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "cfssl.example:8888"));
    cfg = base_config(NULL, 0);
    cfg.auth_key_hex = "xyz";
    assert_int_equal(pc_ca_cfssl_new(&w->loop, &cfg, &w->ca, &diag), PC_ERR_INVALID_PARAM);
    assert_non_null(strstr(diag.msg, "auth key"));
    assert_null(w->ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issues_through_authsign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_auth_key_is_an_auth_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_sign_and_profile_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_certificate_other_than_asked_is_refused_and_revoked,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_policy_is_checked_before_any_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_breaker_opens_when_cfssl_stops_and_closes_when_it_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_is_fetched_once_cfssl_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_pending_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutual_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configuration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
