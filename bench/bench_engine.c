/*
 * pkcs-bench-engine - what the engine does on this machine, one thread and all cores: key
 * pairs per algorithm (our fast RSA path next to OpenSSL's own keygen), certificates signed by
 * the local CA, PKCS#12 + envelope, and whole ISSUE requests. Prints a Markdown table of
 * operations per second and CPU microseconds per operation (this process's CPU time; Redis's is
 * not in it), and with --stages the CPU time of each stage of an ISSUE request.
 *
 * A request runs the stages the worker runs (job_pool.c), on the calling thread: validate,
 * prepare, keygen, the request to the CA, the CA (template check, signature, its record), the
 * certificate check, PKCS#12 + envelope, the Result (filled, serialized, freed). With --redis
 * PORT the local CA records in that Redis, as the workers' does; without it in a file (offline,
 * which fsyncs every record). The device key is P-256, as the end-to-end runs' is, or RSA-2048
 * (--device-key rsa). The request is the end-to-end runs' template: a device certificate with
 * a DNS name, template Device. The local CA takes the key and names themselves (no CSR); the
 * "via CSR" case asks it with a CSR, as the engine asks a CA in another process (cfssl).
 *
 * usage: pkcs-bench-engine [--seconds N] [--threads N] [--only NAME] [--redis PORT]
 *                          [--device-key p256|rsa] [--stages]
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
#include "issue.h"
#include "keygen.h"
#include "pfx.h"
#include "request.h"
#include "result.h"

/* The stages of one request, as the worker runs them. */
enum {
    ST_VALIDATE,
    ST_PREPARE,
    ST_KEYGEN,
    ST_REQUEST,
    ST_CA,
    ST_CHECK,
    ST_PACK,
    ST_RESULT,
    ST_COUNT
};
static const char *const stage_names[ST_COUNT] = {
    "validate",
    "prepare (subject, SANs)",
    "keygen",
    "request to the CA (CSR or key)",
    "CA (check, sign, record)",
    "certificate check",
    "PKCS#12 + envelope",
    "result (fill, serialize, free)",
};

typedef struct bench_ctx {
    pc_engine_t *engine;
    pc_ca_t *ca;
    unsigned char *device_spki;
    size_t device_spki_len;
    EVP_PKEY *rsa_key; /* for sign / pack */
    X509 *rsa_cert;
    pc_key_spec_t spec; /* for keygen / engine cases */
    pc_keygen_mode_t mode;
    bool via_csr; /* ask the CA with a CSR, as for a CA in another process (cfssl) */
    atomic_ullong stage_ns[ST_COUNT];
    atomic_ulong staged; /* requests whose stages were counted */
} bench_ctx_t;

typedef bool (*bench_op_fn)(bench_ctx_t *ctx);

typedef struct bench_run {
    bench_ctx_t *ctx;
    bench_op_fn op;
    double seconds;
    atomic_ulong done;
    atomic_ulong failed;
} bench_run_t;

static uint64_t thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double process_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

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

/* What one measurement found. */
typedef struct bench_result {
    double per_s;     /* operations per second (wall clock) */
    double cpu_us_op; /* CPU time of this process per operation */
} bench_result_t;

/* measure runs op on threads threads for seconds. */
static bench_result_t measure(bench_ctx_t *ctx, bench_op_fn op, unsigned threads, double seconds)
{
    bench_run_t run = {.ctx = ctx, .op = op, .seconds = seconds};
    pthread_t tids[256];
    double start = pc_mono_s(), cpu0 = process_cpu_s();
    for (unsigned i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, bench_thread, &run);
    for (unsigned i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    double elapsed = pc_mono_s() - start, cpu = process_cpu_s() - cpu0;
    unsigned long done = atomic_load(&run.done);
    if (atomic_load(&run.failed) > 0)
        fprintf(stderr, "warning: %lu operations failed\n", atomic_load(&run.failed));
    bench_result_t r = {.per_s = (double)done / elapsed,
                        .cpu_us_op = done > 0 ? cpu * 1e6 / (double)done : 0};
    return r;
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

/* The end-to-end runs' request template (bench/lib.sh template_for), for ctx's key spec. */
typedef struct bench_request {
    char id[64];
    Pkcs__V1__Request req;
    Pkcs__V1__IssueRequest issue;
    Pkcs__V1__Profile profile;
    Pkcs__V1__SanFormat san;
    Pkcs__V1__SanFormat *sans[1];
    Pkcs__V1__IssueRequest__AttributesEntry attr;
    Pkcs__V1__IssueRequest__AttributesEntry *attrs[1];
    char *ekus[1];
    char device[32];
} bench_request_t;

static void request_init(bench_request_t *b, const bench_ctx_t *ctx)
{
    unsigned long n = atomic_fetch_add(&request_seq, 1);
    snprintf(b->id, sizeof(b->id), "bench-%lu", n);
    snprintf(b->device, sizeof(b->device), "ws-%lu", n);
    pkcs__v1__request__init(&b->req);
    pkcs__v1__issue_request__init(&b->issue);
    pkcs__v1__profile__init(&b->profile);
    pkcs__v1__san_format__init(&b->san);
    pkcs__v1__issue_request__attributes_entry__init(&b->attr);
    b->sans[0] = &b->san;
    b->attrs[0] = &b->attr;
    b->ekus[0] = "clientAuth";
    b->attr.key = "DeviceName";
    b->attr.value = b->device;
    b->san.type = PKCS__V1__SAN_TYPE__DNS;
    b->san.format = "{{DeviceName}}.corp.contoso.com";
    b->profile.ca_name = "local";
    b->profile.template_name = "Device";
    b->profile.certificate_type = PKCS__V1__CERTIFICATE_TYPE__DEVICE;
    b->profile.subject_format = "CN={{DeviceName}},O=Contoso";
    b->profile.n_subject_alternative_names = 1;
    b->profile.subject_alternative_names = b->sans;
    b->profile.n_extended_key_usages = 1;
    b->profile.extended_key_usages = b->ekus;
    b->profile.key_algorithm =
        ctx->spec.alg == PC_KEY_RSA ? PKCS__V1__KEY_ALGORITHM__RSA : PKCS__V1__KEY_ALGORITHM__EC;
    b->profile.key_size = ctx->spec.bits;
    b->issue.profile = &b->profile;
    b->issue.n_attributes = 1;
    b->issue.attributes = b->attrs;
    b->issue.device_public_key.data = ctx->device_spki;
    b->issue.device_public_key.len = ctx->device_spki_len;
    b->req.schema_version = 1;
    b->req.request_id = b->id;
    b->req.tenant_id = "bench";
    b->req.kind = PKCS__V1__KIND__ISSUE;
    b->req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    b->req.issue = &b->issue;
    b->req.created_at_ms = pc_now_ms();
}

/* stage_end adds the CPU time since *t to stage s and starts the next stage. */
static void stage_end(bench_ctx_t *ctx, int s, uint64_t *t, uint64_t *acc)
{
    uint64_t now = thread_cpu_ns();
    acc[s] += now - *t;
    *t = now;
}

static bool op_engine(bench_ctx_t *ctx)
{
    bench_request_t b;
    pc_diag_t diag = {{0}};
    pc_issue_t *job = NULL;
    X509 *cert = NULL;
    uint64_t acc[ST_COUNT] = {0};
    uint64_t t = thread_cpu_ns();
    request_init(&b, ctx);
    pc_err_t err = pc_request_validate(&b.req, pc_now_ms(), &diag);
    stage_end(ctx, ST_VALIDATE, &t, acc);
    if (err == PC_OK)
        err = pc_issue_prepare(&b.req, ctx->ca, &job, &diag);
    stage_end(ctx, ST_PREPARE, &t, acc);
    if (err == PC_OK)
        err = pc_issue_keygen(job, ctx->engine->keygen_mode, &diag);
    stage_end(ctx, ST_KEYGEN, &t, acc);
    if (err == PC_OK)
        err = ctx->via_csr ? pc_issue_make_csr(job, &diag) : pc_issue_make_request(job, &diag);
    stage_end(ctx, ST_REQUEST, &t, acc);
    if (err == PC_OK && ctx->via_csr)
        err = pc_ca_submit_sync(ctx->ca, pc_issue_get0_csr(job), pc_issue_ca_params(job), &cert,
                                &diag);
    else if (err == PC_OK)
        err = pc_issue_submit_sync(job, &cert, &diag);
    stage_end(ctx, ST_CA, &t, acc);
    if (err == PC_OK)
        err = pc_issue_set0_cert(job, cert, &diag);
    stage_end(ctx, ST_CHECK, &t, acc);
    if (err == PC_OK)
        err = pc_issue_pack(job, &diag);
    stage_end(ctx, ST_PACK, &t, acc);
    Pkcs__V1__Result *res = err == PC_OK ? pc_result_new(&b.req) : NULL;
    if (res != NULL) {
        err = pc_issue_fill_result(job, res, &diag);
        size_t len = protobuf_c_message_get_packed_size(&res->base);
        uint8_t *out = malloc(len > 0 ? len : 1);
        if (out != NULL)
            protobuf_c_message_pack(&res->base, out);
        free(out);
        protobuf_c_message_free_unpacked(&res->base, NULL);
    }
    pc_issue_free(job);
    stage_end(ctx, ST_RESULT, &t, acc);
    if (err != PC_OK) {
        fprintf(stderr, "engine: %s\n", diag.msg);
        return false;
    }
    for (int s = 0; s < ST_COUNT; s++)
        atomic_fetch_add(&ctx->stage_ns[s], acc[s]);
    atomic_fetch_add(&ctx->staged, 1);
    return true;
}

static pc_err_t device_key(const char *kind, unsigned char **spki, size_t *len)
{
    EVP_PKEY *device = strcmp(kind, "rsa") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                                : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int n = device != NULL ? i2d_PUBKEY(device, spki) : -1;
    EVP_PKEY_free(device);
    if (n <= 0)
        return PC_ERR_CRYPTO;
    *len = (size_t)n;
    return PC_OK;
}

static int setup(bench_ctx_t *ctx, char *state_dir, const char *redis_port, const char *device)
{
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    setenv("PC_STATE_DIR", state_dir, 1);
    setenv("PC_CA_KEY_PASSPHRASE", "bench-only-passphrase", 1);
    if (redis_port != NULL)
        setenv("PC_REDIS_PORT", redis_port, 1);
    pc_err_t err = pc_config_load(NULL, &cfg, &diag);
    if (err == PC_OK)
        err = redis_port != NULL ? pc_engine_new(cfg, &ctx->engine, &diag)
                                 : pc_engine_new_offline(cfg, &ctx->engine, &diag);
    pc_config_free(cfg);
    if (err != PC_OK) {
        fprintf(stderr, "bench: %s\n", diag.msg);
        return 1;
    }
    ctx->ca = ctx->engine->cas[0];
    if (device_key(device, &ctx->device_spki, &ctx->device_spki_len) != PC_OK) {
        fprintf(stderr, "bench: cannot make a device key\n");
        return 1;
    }
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
    bool via_csr;
} bench_case_t;

static const bench_case_t cases[] = {
    {"keygen RSA-2048 fast", op_keygen, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST, false},
    {"keygen RSA-2048 openssl", op_keygen, {PC_KEY_RSA, 2048}, PC_KEYGEN_PROVIDER, false},
    {"keygen RSA-3072 fast", op_keygen, {PC_KEY_RSA, 3072}, PC_KEYGEN_FAST, false},
    {"keygen RSA-3072 openssl", op_keygen, {PC_KEY_RSA, 3072}, PC_KEYGEN_PROVIDER, false},
    {"keygen P-256", op_keygen, {PC_KEY_EC, 256}, PC_KEYGEN_FAST, false},
    {"keygen P-256 openssl", op_keygen, {PC_KEY_EC, 256}, PC_KEYGEN_PROVIDER, false},
    {"keygen P-384", op_keygen, {PC_KEY_EC, 384}, PC_KEYGEN_FAST, false},
    {"CA sign (CSR + certificate)", op_sign, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST, false},
    {"PKCS#12 + envelope", op_pack, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST, false},
    {"engine request RSA-2048", op_engine, {PC_KEY_RSA, 2048}, PC_KEYGEN_FAST, false},
    {"engine request RSA-3072", op_engine, {PC_KEY_RSA, 3072}, PC_KEYGEN_FAST, false},
    {"engine request P-256", op_engine, {PC_KEY_EC, 256}, PC_KEYGEN_FAST, false},
    /* what the engine pays for a CA that needs a CSR (the CA's part is the local CA's) */
    {"engine request P-256 via CSR", op_engine, {PC_KEY_EC, 256}, PC_KEYGEN_FAST, true},
    {"engine request P-384", op_engine, {PC_KEY_EC, 384}, PC_KEYGEN_FAST, false},
};

/* The stage times of the requests counted since the last reset. */
typedef struct stage_times {
    unsigned long n;
    uint64_t ns[ST_COUNT];
} stage_times_t;

static stage_times_t stages_of(bench_ctx_t *ctx)
{
    stage_times_t st = {.n = atomic_load(&ctx->staged)};
    for (int s = 0; s < ST_COUNT; s++)
        st.ns[s] = atomic_load(&ctx->stage_ns[s]);
    return st;
}

/* print_stages prints the CPU time per stage of st's requests. */
static void print_stages(const stage_times_t *st, const char *name)
{
    double total = 0;
    if (st->n == 0)
        return;
    printf("\n| %s, 1 thread: stage | CPU us/request |\n|---|---:|\n", name);
    for (int s = 0; s < ST_COUNT; s++) {
        double us = (double)st->ns[s] / 1e3 / (double)st->n;
        total += us;
        printf("| %s | %.1f |\n", stage_names[s], us);
    }
    printf("| all stages | %.1f |\n\n", total);
}

static void reset_stages(bench_ctx_t *ctx)
{
    for (int s = 0; s < ST_COUNT; s++)
        atomic_store(&ctx->stage_ns[s], 0);
    atomic_store(&ctx->staged, 0);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"device-key", required_argument, NULL, 'd'},
                                         {"stages", no_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    double seconds = 3;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *only = NULL, *redis_port = NULL, *device = "p256";
    bool stages = false;
    int c;
    while ((c = getopt_long(argc, argv, "s:t:o:r:d:Sh", opts, NULL)) != -1) {
        if (c == 's')
            seconds = strtod(optarg, NULL);
        else if (c == 't')
            threads = strtol(optarg, NULL, 10);
        else if (c == 'o')
            only = optarg;
        else if (c == 'r')
            redis_port = optarg;
        else if (c == 'd')
            device = optarg;
        else if (c == 'S')
            stages = true;
        else {
            printf("usage: pkcs-bench-engine [--seconds N] [--threads N] [--only SUBSTRING]\n"
                   "       [--redis PORT] [--device-key p256|rsa] [--stages]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (threads < 1 || threads > 256 || seconds <= 0 ||
        (strcmp(device, "p256") != 0 && strcmp(device, "rsa") != 0)) {
        fprintf(stderr, "pkcs-bench-engine: --threads must be 1..256, --seconds > 0, "
                        "--device-key p256 or rsa\n");
        return 2;
    }
    char state_dir[] = "/tmp/pc-bench-XXXXXX";
    bench_ctx_t ctx = {0};
    if (mkdtemp(state_dir) == NULL || setup(&ctx, state_dir, redis_port, device) != 0)
        return 1;
    printf("CA records: %s; device key: %s\n\n", redis_port != NULL ? "Redis" : "file (offline)",
           strcmp(device, "rsa") == 0 ? "RSA-2048" : "P-256");
    printf(
        "| operation | 1 thread /s | %ld threads /s | speed-up | CPU us/op (1 thread) | CPU us/op "
        "(%ld threads) |\n",
        threads, threads);
    printf("|---|---:|---:|---:|---:|---:|\n");
    /* --only names one case when it is a whole name ("engine request P-256" is not also its
     * "via CSR" case), else every case it is part of. */
    bool whole = false;
    for (size_t i = 0; only != NULL && i < sizeof(cases) / sizeof(cases[0]); i++)
        whole = whole || strcmp(cases[i].name, only) == 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL &&
            (whole ? strcmp(cases[i].name, only) != 0 : strstr(cases[i].name, only) == NULL))
            continue;
        ctx.spec = cases[i].spec;
        ctx.mode = cases[i].mode;
        ctx.via_csr = cases[i].via_csr;
        reset_stages(&ctx);
        bench_result_t one = measure(&ctx, cases[i].op, 1, seconds);
        stage_times_t staged = stages_of(&ctx); /* one thread's, before the next run adds */
        bench_result_t all = measure(&ctx, cases[i].op, (unsigned)threads, seconds);
        printf("| %s | %.1f | %.1f | %.2fx | %.1f | %.1f |\n", cases[i].name, one.per_s, all.per_s,
               all.per_s / one.per_s, one.cpu_us_op, all.cpu_us_op);
        if (stages && cases[i].op == op_engine)
            print_stages(&staged, cases[i].name);
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
