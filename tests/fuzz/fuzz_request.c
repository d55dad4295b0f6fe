/*
 * fuzz_request.c - libFuzzer target: a Kafka message as a worker reads it. The input is the
 * message value; it goes through what worker/job.c's DECODE runs: pc_request_decode (unpack the
 * SignedRequest, check the signature against the configured signers, unpack the signed bytes
 * as a Request), the signer's authorization for the request's tenant, CA and template (as
 * job_authorize does, with pc_config_signer_allows), pc_request_validate,
 * pc_request_check_fresh and pc_request_digest; then through what the worker does next with
 * the request's own bytes: for an ISSUE request, rendering its subject, SANs and
 * SID (pc_issue_prepare) for a CA with the default templates that takes its callers' serials,
 * the request to the CA with the device key checked (pc_issue_make_request, with a fixed P-256
 * key instead of a fresh one: keygen is not under test), as a CSR for a CA that takes CSRs
 * (cfssl) or as a parsed request for one that signs them (the local CA), chosen by the
 * request's digest, and the template's policy on either (pc_ca_template_check,
 * pc_ca_template_check_request), the serial
 * (pc_issue_choose_serial) and the intent record that goes to Redis (pc_issue_intent, read back
 * with pc_issue_intent_read); for a REVOKE, its serial (pc_ca_serial_parse). The input is also
 * read as an intent record as it comes from Redis. The configuration is the defaults plus the
 * three signers of fuzz_keys.h, each allowed other tenants, CAs and templates.
 *
 * The fuzzer cannot forge a signature, so each input is also tried as an unsigned message on a
 * worker that allows them, and re-signed with the HMAC signer's key; and the input itself is
 * also taken as the Request's bytes and sent signed, as a producer would: mutations inside the
 * SignedRequest's length-prefixed request field mostly break its length, while mutations of a
 * bare Request (the corpus holds both kinds) reach every field of it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth.h"
#include "config.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "issue.h"
#include "request.h"

static pc_auth_t *auth;
static pc_config_t *cfg; /* the defaults and the signers: the CA's templates, the limits */
static pc_ca_t stub_ca;  /* that CA's name and templates: all the stages before the CA need */
static EVP_PKEY *csr_key;

/* The signers and what each may act for; %s is the temporary folder. */
static const char config_text[] =
    "{\"signers\": [\n"
    " {\"id\": \"" FUZZ_HMAC_ID "\", \"algorithm\": \"hmac-sha256\", \"secret_file\": "
    "\"%s/hmac.secret\", \"tenants\": [\"*\"]},\n"
    " {\"id\": \"" FUZZ_ED25519_ID "\", \"algorithm\": \"ed25519\", \"public_key_file\": "
    "\"%s/ed25519.pub\", \"tenants\": [\"contoso\", \"fabrikam\"], \"cas\": [\"local\"]},\n"
    " {\"id\": \"" FUZZ_ECDSA_ID "\", \"algorithm\": \"ecdsa-p256-sha256\", \"public_key_file\": "
    "\"%s/ecdsa.pub\", \"tenants\": [\"*\"], \"templates\": [\"User\", \"SMIME\"]}]}\n";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_request: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    ERR_print_errors_fp(stderr);
    abort();
}

static void bug(const char *what, const char *detail)
{
    die(what, detail); /* a broken promise of the code under test, not bad input */
}

/* The stub CA is only asked what kind of CA it is, never to sign. */
static void stub_submit_request(pc_ca_t *ca, const pc_ca_request_t *req, const pc_ca_issue_t *issue,
                                pc_ca_done_fn done, void *arg)
{
    bug("the stub CA was asked to sign", NULL);
}
static const pc_ca_ops_t takes_csrs = {.kind = "fuzz, CSRs (as cfssl)"};
static const pc_ca_ops_t takes_requests = {.kind = "fuzz, parsed requests (as the local CA)",
                                           .submit_request = stub_submit_request};

/* write_public writes the public half of key as PEM into the temporary folder. */
static void write_public(EVP_PKEY *key, const char *name, char *path, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, key) != 1)
        die("cannot write a public key", name);
    long len = BIO_get_mem_data(bio, &pem);
    fuzz_write(name, pem, (size_t)len, 0600, path, size);
    BIO_free(bio);
}

static EVP_PKEY *key_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        die("cannot read a test key", NULL);
    return key;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[1024], text[sizeof(config_text) + 3 * 512];
    pc_diag_t diag = {{0}};

    fuzz_clear_pc_environment();
    fuzz_write("hmac.secret", FUZZ_HMAC_SECRET, strlen(FUZZ_HMAC_SECRET), 0600, path, sizeof(path));
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                (const unsigned char *)FUZZ_ED25519_SEED, 32);
    EVP_PKEY *ec = key_from_pem(FUZZ_ECDSA_KEY);
    if (ed == NULL)
        die("cannot make the ed25519 key", NULL);
    write_public(ed, "ed25519.pub", path, sizeof(path));
    write_public(ec, "ecdsa.pub", path, sizeof(path));
    EVP_PKEY_free(ed);
    int n = snprintf(text, sizeof(text), config_text, fuzz_dir(), fuzz_dir(), fuzz_dir());
    if (n < 0 || (size_t)n >= sizeof(text))
        die("the configuration does not fit", NULL);
    fuzz_write("config.json", text, (size_t)n, 0600, path, sizeof(path));
    if (pc_config_load(path, &cfg, &diag) != PC_OK || cfg->ca_count == 0)
        die("pc_config_load", diag.msg);
    /* the workers' signers, as worker.c makes them */
    pc_auth_key_t keys[3];
    for (size_t i = 0; i < cfg->signer_count && i < 3; i++)
        keys[i] = (pc_auth_key_t){.id = cfg->signers[i].id,
                                  .algorithm = cfg->signers[i].algorithm,
                                  .public_key_file = cfg->signers[i].public_key_file,
                                  .secret_file = cfg->signers[i].secret_file};
    if (cfg->signer_count != 3 || pc_auth_new(keys, 3, &auth, &diag) != PC_OK)
        die("pc_auth_new", diag.msg);
    stub_ca.name = cfg->cas[0].name;
    stub_ca.templates = cfg->cas[0].templates;
    stub_ca.template_count = cfg->cas[0].template_count;
    stub_ca.takes_serial = true; /* as a cfssl CA with client_serials */
    csr_key = ec; /* the device key of the seeds is another one: this only signs CSRs */
    return 0;
}

/* issue_stages runs what a worker does with an ISSUE request before the CA signs, for a CA
 * that takes parsed requests (direct) or CSRs. */
static void issue_stages(const Pkcs__V1__Request *req, bool direct)
{
    pc_diag_t diag = {{0}};
    pc_issue_t *issue = NULL;
    char intent[512];
    pc_issue_intent_t read;

    stub_ca.ops = direct ? &takes_requests : &takes_csrs;
    if (pc_issue_prepare(req, &stub_ca, &issue, &diag) != PC_OK)
        return;
    if (EVP_PKEY_up_ref(csr_key) != 1)
        die("EVP_PKEY_up_ref", NULL);
    pc_issue_set0_key(issue, csr_key);
    if (pc_issue_make_request(issue, &diag) != PC_OK)
        goto out;
    const pc_ca_issue_t *params = pc_issue_ca_params(issue);
    const pc_ca_template_t *tmpl = pc_ca_find_template(&stub_ca, params->template_name);
    if (tmpl == NULL)
        bug("pc_issue_prepare accepted a template the CA does not have", params->template_name);
    if ((pc_issue_get0_request(issue) != NULL) != direct ||
        (pc_issue_get0_csr(issue) != NULL) == direct)
        bug("pc_issue_make_request made another kind of request than the CA takes", NULL);
    if (direct)
        (void)pc_ca_template_check_request(tmpl, pc_issue_get0_request(issue),
                                           params->validity_days, &diag);
    else
        (void)pc_ca_template_check(tmpl, pc_issue_get0_csr(issue), params->validity_days, &diag);
    if (pc_issue_choose_serial(issue, &diag) != PC_OK)
        goto out;
    if (pc_issue_intent(issue, intent, sizeof(intent), &diag) != PC_OK)
        bug("the intent record of a CSR does not fit", diag.msg);
    char serial[64];
    if (!pc_issue_intent_read((const unsigned char *)intent, strlen(intent), &read) ||
        strcmp(read.ca, stub_ca.name) != 0 || !pc_issue_serial(issue, serial, sizeof(serial)) ||
        strcmp(read.serial, serial) != 0)
        bug("the intent record does not read back", intent);
out:
    pc_issue_free(issue);
}

/* authorize is worker/job.c's job_authorize: a signer acts only for the tenants, CAs and
 * templates the configuration gives it. */
static pc_err_t authorize(const Pkcs__V1__SignedRequest *sr, const Pkcs__V1__Request *req,
                          pc_diag_t *diag)
{
    if (sr->signature.len == 0) /* allow_unsigned */
        return PC_OK;
    const pc_config_signer_t *signer = pc_config_signer(cfg, sr->signer_key_id);
    if (signer == NULL)
        bug("a verified signature of a signer that is not configured", sr->signer_key_id);
    const char *ca = NULL, *tmpl = NULL;
    if (req->body_case == PKCS__V1__REQUEST__BODY_ISSUE && req->issue->profile != NULL) {
        ca = req->issue->profile->ca_name;
        tmpl = req->issue->profile->template_name;
    } else if (req->body_case == PKCS__V1__REQUEST__BODY_REVOKE) {
        ca = req->revoke->ca_name;
    }
    return pc_config_signer_allows(signer, req->tenant_id, ca, tmpl, diag) ? PC_OK
                                                                           : PC_ERR_UNAUTHENTICATED;
}

/* after_decode does what a worker does next with a decoded request's outside bytes. */
static void after_decode(const Pkcs__V1__SignedRequest *sr, const Pkcs__V1__Request *req)
{
    const pc_config_worker_t *c = &cfg->worker;
    pc_diag_t diag = {{0}};
    char digest[65];
    BIGNUM *bn = NULL;

    if (authorize(sr, req, &diag) != PC_OK ||
        pc_request_validate(req, FUZZ_NOW_MS, &diag) != PC_OK ||
        pc_request_check_fresh(req, FUZZ_NOW_MS, (int64_t)c->max_request_age_s * 1000,
                               (int64_t)c->clock_skew_ms, &diag) != PC_OK ||
        pc_request_digest(req, digest, &diag) != PC_OK) {
        if (diag.msg[0] == '\0')
            bug("a refused request without a reason", NULL);
        return;
    }
    switch (req->body_case) {
    case PKCS__V1__REQUEST__BODY_ISSUE:
        issue_stages(req, (digest[0] & 1) != 0); /* either path, stably per request */
        break;
    case PKCS__V1__REQUEST__BODY_REVOKE:
        if (req->revoke->serial_number[0] != '\0' &&
            pc_ca_serial_parse(&stub_ca, req->revoke->serial_number, &bn, &diag) == PC_OK) {
            char *hex = BN_bn2hex(bn);
            OPENSSL_free(hex);
            BN_free(bn);
        }
        break;
    default: /* IMPORT_PFX: the pfx target's */
        break;
    }
}

static void decode_as_worker(const pc_auth_t *signers, bool allow_unsigned, const uint8_t *data,
                             size_t size)
{
    Pkcs__V1__SignedRequest *sr = NULL;
    Pkcs__V1__Request *req = NULL;
    pc_diag_t diag = {{0}};

    pc_err_t err = pc_request_decode(signers, allow_unsigned, data, size, &sr, &req, &diag);
    if (err == PC_OK)
        after_decode(sr, req);
    else if (diag.msg[0] == '\0')
        bug("a refused message without a reason", NULL);
    if (req != NULL)
        protobuf_c_message_free_unpacked(&req->base, NULL);
    if (sr != NULL)
        protobuf_c_message_free_unpacked(&sr->base, NULL);
}

/* send_signed packs request (len bytes) into a SignedRequest with a valid HMAC over them, as a
 * legitimate producer holding the secret would, and decodes it as a worker. The other fields,
 * unknown ones included, come from orig when it is not NULL. */
static void send_signed(const uint8_t *request, size_t len, const Pkcs__V1__SignedRequest *orig)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    Pkcs__V1__SignedRequest sr;
    static char hmac_id[] = FUZZ_HMAC_ID, hmac_alg[] = "hmac-sha256";

    if (orig != NULL)
        sr = *orig;
    else
        pkcs__v1__signed_request__init(&sr);
    if (HMAC(EVP_sha256(), FUZZ_HMAC_SECRET, (int)strlen(FUZZ_HMAC_SECRET), request, len, mac,
             &mac_len) == NULL)
        die("HMAC failed", NULL);
    sr.request.data = (uint8_t *)(uintptr_t)request;
    sr.request.len = len;
    sr.signer_key_id = hmac_id;
    sr.signature_algorithm = hmac_alg;
    sr.signature.data = mac;
    sr.signature.len = mac_len;
    size_t packed_len = pkcs__v1__signed_request__get_packed_size(&sr);
    uint8_t *packed = malloc(packed_len > 0 ? packed_len : 1);
    if (packed != NULL) {
        pkcs__v1__signed_request__pack(&sr, packed);
        decode_as_worker(auth, false, packed, packed_len);
    }
    free(packed);
}

/* resign sends the request bytes of the SignedRequest in data again, validly signed. */
static void resign(const uint8_t *data, size_t size)
{
    Pkcs__V1__SignedRequest *sr = pkcs__v1__signed_request__unpack(NULL, size, data);
    if (sr == NULL)
        return;
    send_signed(sr->request.data, sr->request.len, sr);
    protobuf_c_message_free_unpacked(&sr->base, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_issue_intent_t intent;

    decode_as_worker(auth, false, data, size); /* a production worker */
    decode_as_worker(NULL, true, data, size);  /* no signers, unsigned messages allowed */
    resign(data, size);
    send_signed(data, size, NULL); /* the input as a bare Request */
    (void)pc_issue_intent_read(data, size, &intent);
    ERR_clear_error();
    return 0;
}
