/*
 * pkcs-bench-engine - what the engine does per second on this machine, one thread and all
 * cores: key pairs per algorithm (our fast RSA path next to OpenSSL's own keygen), certificates
 * signed by the local CA, PKCS#12 + envelope, and whole ISSUE requests. Prints a Markdown table.
 *
 * usage: pkcs-bench-engine [--seconds N] [--threads N] [--only NAME]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"
#include "ca_local.h"
#include "clock.h"
#include "config.h"
#include "csr.h"
#include "engine.h"
#include "envelope.h"
#include "keygen.h"
#include "pfx.h"

typedef struct bench_ctx {
    pc_engine_t *engine;
    pc_ca_t *ca;
    unsigned char *device_spki;
    size_t device_spki_len;
    EVP_PKEY *rsa_key; /* for sign / pack */
    X509 *rsa_cert;
    pc_key_spec_t spec; /* for keygen / engine cases */
    pc_keygen_mode_t mode;
} bench_ctx_t;

typedef bool (*bench_op_fn)(bench_ctx_t *ctx);

typedef struct bench_run {
    bench_ctx_t *ctx;
    bench_op_fn op;
    double seconds;
    atomic_ulong done;
    atomic_ulong failed;
} bench_run_t;

static void *bench_thread(void *arg)
{
    bench_run_t *run = arg;
    double end = pc_mono_s() + run->seconds;
    while (pc_mono_s() < end) {
        if (run->op(run->ctx))
            atomic_fetch_add(&run->done, 1);
        else
            atomic_fetch_add(&run->failed, 1);
    }
    return NULL;
}

/* measure runs op on threads threads for seconds and returns operations per second. */
static double measure(bench_ctx_t *ctx, bench_op_fn op, unsigned threads, double seconds)
{
    bench_run_t run = {.ctx = ctx, .op = op, .seconds = seconds};
    pthread_t tids[256];
    double start = pc_mono_s();
    for (unsigned i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, bench_thread, &run);
    for (unsigned i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    double elapsed = pc_mono_s() - start;
    if (atomic_load(&run.failed) > 0)
        fprintf(stderr, "warning: %lu operations failed\n", atomic_load(&run.failed));
    return (double)atomic_load(&run.done) / elapsed;
}

static bool op_keygen(bench_ctx_t *ctx)
{
    EVP_PKEY *key = NULL;
    pc_err_t err = pc_key_generate(&ctx->spec, ctx->mode, &key, NULL);
    EVP_PKEY_free(key);
    return err == PC_OK;
}

static X509_REQ *make_csr(EVP_PKEY *key)
{
    X509_NAME *name = X509_NAME_new();
    X509_REQ *csr = NULL;
    static const char *const ekus[] = {"clientAuth"};
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"bench", -1, -1,
                               0);
    pc_csr_params_t params = {
        .subject = name, .ekus = ekus, .eku_count = 1, .key_usage = KU_DIGITAL_SIGNATURE};
    pc_csr_new(key, &params, &csr, NULL);
    X509_NAME_free(name);
    return csr;
}

static bool op_sign(bench_ctx_t *ctx)
{
    X509_REQ *csr = make_csr(ctx->rsa_key);
    X509 *cert = NULL;
    pc_ca_issue_t issue = {.template_name = "User", .validity_days = 365, .request_id = "bench"};
    pc_err_t err =
        csr == NULL ? PC_ERR_CRYPTO : pc_ca_submit_sync(ctx->ca, csr, &issue, &cert, NULL);
    X509_free(cert);
    X509_REQ_free(csr);
    return err == PC_OK;
}

static bool op_pack(bench_ctx_t *ctx)
{
    unsigned char *pfx = NULL, *env = NULL;
    size_t pfx_len = 0, env_len = 0;
    pc_err_t err = pc_pfx_build(ctx->rsa_key, ctx->rsa_cert, ctx->ca->ops->get0_chain(ctx->ca),
                                "bench", "", &pfx, &pfx_len, NULL);
    if (err == PC_OK)
        err = pc_envelope_seal(ctx->device_spki, ctx->device_spki_len, pfx, pfx_len, &env, &env_len,
                               NULL);
    if (pfx != NULL)
        OPENSSL_clear_free(pfx, pfx_len);
    OPENSSL_free(env);
    return err == PC_OK;
}

static atomic_ulong request_seq;

static bool op_engine(bench_ctx_t *ctx)
{
    char id[64];
    snprintf(id, sizeof(id), "bench-%lu", atomic_fetch_add(&request_seq, 1));
    Pkcs__V1__Request req;
    Pkcs__V1__IssueRequest issue;
    Pkcs__V1__Profile profile;
    Pkcs__V1__SanFormat san;
    Pkcs__V1__SanFormat *sans[] = {&san};
    Pkcs__V1__IssueRequest__AttributesEntry a1;
    Pkcs__V1__IssueRequest__AttributesEntry a2;
    Pkcs__V1__IssueRequest__AttributesEntry *attrs[] = {&a1, &a2};
    char *ekus[] = {"clientAuth"};
    pkcs__v1__request__init(&req);
    pkcs__v1__issue_request__init(&issue);
    pkcs__v1__profile__init(&profile);
    pkcs__v1__san_format__init(&san);
    pkcs__v1__issue_request__attributes_entry__init(&a1);
    pkcs__v1__issue_request__attributes_entry__init(&a2);
    a1.key = "UserName";
    a1.value = "Bench User";
    a2.key = "UserPrincipalName";
    a2.value = "bench@contoso.com";
    san.type = PKCS__V1__SAN_TYPE__UPN;
    san.format = "{{UserPrincipalName}}";
    profile.ca_name = "local";
    profile.template_name = "User";
    profile.certificate_type = PKCS__V1__CERTIFICATE_TYPE__USER;
    profile.subject_format = "CN={{UserName}},O=Contoso";
    profile.n_subject_alternative_names = 1;
    profile.subject_alternative_names = sans;
    profile.n_extended_key_usages = 1;
    profile.extended_key_usages = ekus;
    profile.key_algorithm =
        ctx->spec.alg == PC_KEY_RSA ? PKCS__V1__KEY_ALGORITHM__RSA : PKCS__V1__KEY_ALGORITHM__EC;
    profile.key_size = ctx->spec.bits;
    issue.profile = &profile;
    issue.n_attributes = 2;
    issue.attributes = attrs;
    issue.device_public_key.data = ctx->device_spki;
    issue.device_public_key.len = ctx->device_spki_len;
    req.schema_version = 1;
    req.request_id = id;
    req.tenant_id = "bench";
    req.kind = PKCS__V1__KIND__ISSUE;
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &issue;
    Pkcs__V1__Result *res = pc_engine_run_sync(ctx->engine, &req);
    bool ok = res != NULL && res->status == PKCS__V1__STATUS__ISSUED;
    if (res != NULL && !ok)
        fprintf(stderr, "engine: %s\n", res->error_message);
    if (res != NULL)
        protobuf_c_message_free_unpacked(&res->base, NULL);
    return ok;
}

static int setup(bench_ctx_t *ctx, char *state_dir)
{
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    setenv("PC_STATE_DIR", state_dir, 1);
    setenv("PC_CA_KEY_PASSPHRASE", "bench-only-passphrase", 1);
    pc_err_t err = pc_config_load(NULL, &cfg, &diag);
    if (err == PC_OK)
        err = pc_engine_new_offline(cfg, &ctx->engine, &diag);
    pc_config_free(cfg);
    if (err != PC_OK) {
        fprintf(stderr, "bench: %s\n", diag.msg);
        return 1;
    }
    ctx->ca = ctx->engine->cas[0];
    EVP_PKEY *device = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ctx->device_spki_len = (size_t)i2d_PUBKEY(device, &ctx->device_spki);
    EVP_PKEY_free(device);
    pc_key_spec_t rsa = {PC_KEY_RSA, 2048};
    pc_key_generate(&rsa, PC_KEYGEN_FAST, &ctx->rsa_key, NULL);
    X509_REQ *csr = make_csr(ctx->rsa_key);
    pc_ca_issue_t issue = {.template_name = "User", .validity_days = 365, .request_id = "b"};
    err = pc_ca_submit_sync(ctx->ca, csr, &issue, &ctx->rsa_cert, &diag);
    X509_REQ_free(csr);
    if (err != PC_OK) {
        fprintf(stderr, "bench: %s\n", diag.msg);
        return 1;
    }
    return 0;
}

typedef struct bench_case {
    const char *name;
    bench_op_fn op;
    pc_key_spec_t spec;
    pc_keygen_mode_t mode;
} bench_case_t;

static const bench_case_t cases[] = {
    {"keygen RSA-2048 fast", op_keygen, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST},
    {"keygen RSA-2048 openssl", op_keygen, {PC_KEY_RSA, 2048}, PC_KEYGEN_PROVIDER},
    {"keygen RSA-3072 fast", op_keygen, {PC_KEY_RSA, 3072}, PC_KEYGEN_FAST},
    {"keygen RSA-3072 openssl", op_keygen, {PC_KEY_RSA, 3072}, PC_KEYGEN_PROVIDER},
    {"keygen P-256", op_keygen, {PC_KEY_EC, 256}, PC_KEYGEN_PROVIDER},
    {"keygen P-384", op_keygen, {PC_KEY_EC, 384}, PC_KEYGEN_PROVIDER},
    {"CA sign (CSR + certificate)", op_sign, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST},
    {"PKCS#12 + envelope", op_pack, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST},
    {"engine request RSA-2048", op_engine, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST},
    {"engine request RSA-3072", op_engine, {PC_KEY_RSA, 3072}, PC_KEYGEN_FAST},
    {"engine request P-256", op_engine, {PC_KEY_EC, 256}, PC_KEYGEN_FAST},
    {"engine request P-384", op_engine, {PC_KEY_EC, 384}, PC_KEYGEN_FAST},
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    double seconds = 3;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *only = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "s:t:o:h", opts, NULL)) != -1) {
        if (c == 's')
            seconds = strtod(optarg, NULL);
        else if (c == 't')
            threads = strtol(optarg, NULL, 10);
        else if (c == 'o')
            only = optarg;
        else {
            printf("usage: pkcs-bench-engine [--seconds N] [--threads N] [--only SUBSTRING]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (threads < 1 || threads > 256 || seconds <= 0) {
        fprintf(stderr, "pkcs-bench-engine: --threads must be 1..256, --seconds > 0\n");
        return 2;
    }
    char state_dir[] = "/tmp/pc-bench-XXXXXX";
    bench_ctx_t ctx = {0};
    if (mkdtemp(state_dir) == NULL || setup(&ctx, state_dir) != 0)
        return 1;
    printf("| operation | 1 thread /s | %ld threads /s | speed-up |\n", threads);
    printf("|---|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL && strstr(cases[i].name, only) == NULL)
            continue;
        ctx.spec = cases[i].spec;
        ctx.mode = cases[i].mode;
        double one = measure(&ctx, cases[i].op, 1, seconds);
        double all = measure(&ctx, cases[i].op, (unsigned)threads, seconds);
        printf("| %s | %.1f | %.1f | %.2fx |\n", cases[i].name, one, all, all / one);
        fflush(stdout);
    }
    X509_free(ctx.rsa_cert);
    EVP_PKEY_free(ctx.rsa_key);
    OPENSSL_free(ctx.device_spki);
    pc_engine_free(ctx.engine);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
    return system(cmd) == 0 ? 0 : 1;
}
