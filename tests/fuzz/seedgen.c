/*
 * seedgen.c - writes the seed corpora of the fuzz targets again: fuzz-seedgen CORPUS_DIR
 * [SOURCE_DIR]. Text seeds come from the repository's samples (deploy/samples, the example
 * configuration, the integration tests' request templates) and from cases of the unit tests;
 * binary seeds (signed protobuf requests, PFX files, device public keys, cfssl answers with
 * certificates) are made here with fresh keys, so a new run gives different bytes of the same
 * kinds; what a target must verify is signed with the fixed keys of fuzz_keys.h. The keys
 * protect nothing. Not part of the test suite: run it by hand when the seeds should change.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "auth.h"
#include "file.h"
#include "fuzz_keys.h"
#include "fuzz_util.h" /* FUZZ_NOW_MS */
#include "pbjson.h"
#include "pfx.h"
#include "result.h"
#include "pkcs.pb-c.h"

static const char *out_dir;
static const char *src_dir;
static char tmp_dir[512];

static void die(const char *what)
{
    fprintf(stderr, "seedgen: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    pc_diag_t diag = {{0}};
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot make a corpus folder");
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    if (pc_file_write(path, data, len, 0644, &diag) != PC_OK)
        die(diag.msg);
}

/* seed2 writes a seed made of one lead byte and then data. */
static void seed2(const char *target, const char *name, unsigned char lead, const void *data,
                  size_t len)
{
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL)
        die("out of memory");
    buf[0] = lead;
    memcpy(buf + 1, data, len);
    seed(target, name, buf, len + 1);
    free(buf);
}

/* A growing byte buffer for NUL-separated seeds. */
typedef struct buf {
    unsigned char data[8192];
    size_t len;
} buf_t;

static void put(buf_t *b, const void *data, size_t len)
{
    if (b->len + len > sizeof(b->data))
        die("seed too long");
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_str(buf_t *b, const char *s)
{
    put(b, s, strlen(s) + 1); /* with its NUL, the field separator */
}

/* ---- keys and certificates ---------------------------------------------------------------- */

static EVP_PKEY *key_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        die("cannot read a test key");
    return key;
}

static EVP_PKEY *gen(const char *alg, const char *param)
{
    EVP_PKEY *key = NULL;
    if (strcmp(alg, "RSA") == 0)
        key = EVP_RSA_gen((unsigned)strtoul(param, NULL, 10));
    else if (strcmp(alg, "EC") == 0)
        key = EVP_EC_gen(param);
    else
        key = EVP_PKEY_Q_keygen(NULL, NULL, alg);
    if (key == NULL)
        die("key generation failed");
    return key;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
        die("cannot add an extension");
    X509_EXTENSION_free(ext);
}

static long next_serial = 1; /* of the next certificate make_cert makes */

/* make_cert signs a certificate for key; issuer NULL makes it self-signed. Extensions are
 * "eku", "ku" values (NULL: none); ca adds basicConstraints CA:TRUE. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *eku, const char *ku, bool ca, const char *not_after)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    long serial = next_serial++;
    if (cert == NULL || name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_version(cert, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) != 1 ||
        ASN1_TIME_set_string_X509(X509_getm_notBefore(cert), "20200101000000Z") != 1 ||
        ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), not_after) != 1 ||
        X509_set_subject_name(cert, name) != 1 ||
        X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(cert, key) != 1)
        die("cannot make a certificate");
    X509_NAME_free(name);
    X509 *signer = issuer != NULL ? issuer : cert;
    add_ext(cert, signer, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(cert, signer, NID_authority_key_identifier, "keyid");
    if (ca)
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    if (eku != NULL)
        add_ext(cert, signer, NID_ext_key_usage, eku);
    if (ku != NULL)
        add_ext(cert, signer, NID_key_usage, ku);
    if (X509_sign(cert, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0)
        die("cannot sign a certificate");
    return cert;
}

static unsigned char *spki_of(EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        die("cannot encode a public key");
    *len = (size_t)n;
    return der;
}

/* ---- spki ----------------------------------------------------------------------------------- */

static void spki_seeds(void)
{
    static const struct {
        const char *name, *alg, *param;
    } keys[] = {
        {"rsa-2048.der", "RSA", "2048"},      {"rsa-1024.der", "RSA", "1024"},
        {"rsa-3072.der", "RSA", "3072"},      {"p-256.der", "EC", "P-256"},
        {"p-384.der", "EC", "P-384"},         {"p-521.der", "EC", "P-521"},
        {"secp256k1.der", "EC", "secp256k1"}, {"ed25519.der", "ED25519", NULL},
        {"x25519.der", "X25519", NULL},       {"ed448.der", "ED448", NULL},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        EVP_PKEY *key = gen(keys[i].alg, keys[i].param);
        size_t len = 0;
        unsigned char *der = spki_of(key, &len);
        seed("spki", keys[i].name, der, len);
        OPENSSL_free(der);
        EVP_PKEY_free(key);
    }
    /* the same P-256 key with explicit curve parameters and with a compressed point */
    EVP_PKEY *key = gen("EC", "P-256");
    const char *forms[][2] = {{"ec-explicit.der", "explicit"}, {"ec-compressed.der", NULL}};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *copy = EVP_PKEY_dup(key);
        if (copy == NULL ||
            (forms[i][1] != NULL &&
             EVP_PKEY_set_utf8_string_param(copy, "encoding", forms[i][1]) != 1) ||
            (forms[i][1] == NULL &&
             EVP_PKEY_set_utf8_string_param(copy, "point-format", "compressed") != 1))
            die("cannot change an EC key's encoding");
        size_t len = 0;
        unsigned char *der = spki_of(copy, &len);
        seed("spki", forms[i][0], der, len);
        OPENSSL_free(der);
        EVP_PKEY_free(copy);
    }
    EVP_PKEY_free(key);
}

/* ---- requests and pbjson ------------------------------------------------------------------ */

/* The JSON samples: requests and profiles people write. */
static const char *const samples[] = {
    "deploy/samples/user-wifi.json",
    "deploy/samples/device-vpn.json",
    "deploy/samples/user-smime.json",
    "deploy/samples/profiles/user-wifi.json",
    "deploy/samples/profiles/device-vpn.json",
    "deploy/samples/profiles/user-smime.json",
    "tests/integration/data/bad-variable.json",
    "tests/integration/data/device-remote.json",
    "tests/integration/data/expired.json",
    "tests/integration/data/lint-bad-attrs.json",
    "tests/integration/data/lint-bad.json",
    "tests/integration/data/lint-good-attrs.json",
    "tests/integration/data/lint-good.json",
    "tests/integration/data/one-device.json",
    "tests/integration/data/user-ec.json",
    "tests/integration/data/user-rsa.json",
};

/* JSON a user writes by hand, from the unit tests of lib/pbjson.c. */
static const char *const pbjson_cases[] = {
    "{}",
    "{\"revoke\":{}}",
    "{\"kind\":42}",
    "{\"requestId\":null,\"kind\":null,\"createdAtMs\":null,\"issue\":null}",
    "{\"kind\":\"ISSUE\",\"issue\":{\"profile\":{\"subjectAlternativeNames\":[{\"type\":\"UPN\","
    "\"format\":\"{{UserPrincipalName}}\"},{\"type\":3,\"format\":\"{{DeviceName}}.contoso.com\"}"
    "]},\"attributes\":{\"UserName\":\"ann\"},\"devicePublicKey\":\"+/+/ABA=\"}}",
    "{\"schemaVersion\":1,\"requestId\":\"r1\",\"tenantId\":\"t\",\"kind\":\"REVOKE\","
    "\"createdAtMs\":\"1700000000000\",\"deadlineMs\":\"-9223372036854775808\",\"revoke\":{"
    "\"caName\":\"local\",\"serialNumber\":\"01ab\",\"reason\":\"SUPERSEDED\",\"scenario\":1}}",
    "{\"import_pfx\":{\"pfx\":\"-_-_ABA\",\"oaepHash\":\"sha384\",\"intendedPurpose\":"
    "\"smime_signing\"}}",
    "{\"status\":\"FAILED\",\"errorCode\":\"CA_BUSY\",\"retryable\":true,\"timing\":{"
    "\"receivedAtMs\":\"-9223372036854775808\",\"keygenUs\":\"18446744073709551615\"},"
    "\"chain\":[\"AAEC\",\"\"]}",
    "{\"partition\":\"-2147483648\",\"schemaVersion\":4294967295,\"originalValue\":\"AAAA\"}",
    "{\"request\":\"CAE=\",\"signerKeyId\":\"mdm-1\",\"signatureAlgorithm\":\"ed25519\","
    "\"signature\":\"AAAA\"}",
    "{\"schemaVersion\":1,\"recordId\":\"ab12\",\"event\":\"renewed\",\"atMs\":"
    "\"1735689600000\",\"tenantId\":\"contoso\",\"requestId\":\"r2\",\"kind\":\"ISSUE\","
    "\"caName\":\"local\",\"serialNumber\":\"7F3A\",\"subject\":\"CN=Ann\",\"outcome\":"
    "\"ISSUED\",\"revoked\":[{\"caName\":\"local\",\"serialNumber\":\"01\"}],\"renews\":{"
    "\"caName\":\"local\",\"serialNumber\":\"01\"}}",
    "{\"schemaVersion\":1,\"kind\":\"RENEWAL_DUE\",\"tenantId\":\"contoso\",\"deviceId\":"
    "\"d1\",\"certificate\":{\"caName\":\"local\",\"serialNumber\":\"7F3A\"},"
    "\"notBeforeMs\":\"0\",\"notAfterMs\":\"9223372036854775807\",\"renewAtMs\":\"-1\"}",
    "{\"revoke\":{\"scope\":\"REVOKE_SCOPE_DEVICE\",\"profileId\":\"wifi\"},\"kind\":"
    "\"REVOKE\",\"deviceId\":\"d1\"}",
};

static char *sample_text(const char *rel, size_t *len)
{
    char path[1024];
    unsigned char *text = NULL;
    pc_diag_t diag = {{0}};
    snprintf(path, sizeof(path), "%s/%s", src_dir, rel);
    if (pc_file_read(path, 1024 * 1024, &text, len, &diag) != PC_OK)
        die(diag.msg);
    /* the integration tests' templates number their requests: {n} */
    for (char *p = (char *)text; (p = strstr(p, "{n}")) != NULL;)
        memcpy(p, "007", 3);
    return (char *)text;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static void pbjson_seeds(void)
{
    char name[128];
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = 0;
        char *text = sample_text(samples[i], &len);
        snprintf(name, sizeof(name), "%s%s", strstr(samples[i], "profiles/") ? "profile-" : "",
                 base_name(samples[i]));
        seed("pbjson", name, text, len);
        free(text);
    }
    for (size_t i = 0; i < sizeof(pbjson_cases) / sizeof(pbjson_cases[0]); i++) {
        snprintf(name, sizeof(name), "case-%02zu.json", i + 1);
        seed("pbjson", name, pbjson_cases[i], strlen(pbjson_cases[i]));
    }
}

typedef struct signers {
    pc_signer_t *hmac, *ed25519, *ecdsa;
} signers_t;

static void write_tmp(const char *name, const void *data, size_t len, char *path, size_t size)
{
    pc_diag_t diag = {{0}};
    snprintf(path, size, "%s/%s", tmp_dir, name);
    if (pc_file_write(path, data, len, 0600, &diag) != PC_OK)
        die(diag.msg);
}

static void signers_new(signers_t *s)
{
    char path[1024];
    pc_diag_t diag = {{0}};
    write_tmp("hmac", FUZZ_HMAC_SECRET, strlen(FUZZ_HMAC_SECRET), path, sizeof(path));
    if (pc_signer_new(FUZZ_HMAC_ID, "hmac-sha256", path, NULL, &s->hmac, &diag) != PC_OK)
        die(diag.msg);
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                (const unsigned char *)FUZZ_ED25519_SEED, 32);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (ed == NULL || bio == NULL ||
        PEM_write_bio_PrivateKey(bio, ed, NULL, NULL, 0, NULL, NULL) != 1)
        die("cannot write the ed25519 key");
    long len = BIO_get_mem_data(bio, &pem);
    write_tmp("ed25519.pem", pem, (size_t)len, path, sizeof(path));
    BIO_free(bio);
    EVP_PKEY_free(ed);
    if (pc_signer_new(FUZZ_ED25519_ID, "ed25519", path, NULL, &s->ed25519, &diag) != PC_OK)
        die(diag.msg);
    write_tmp("ecdsa.pem", FUZZ_ECDSA_KEY, strlen(FUZZ_ECDSA_KEY), path, sizeof(path));
    if (pc_signer_new(FUZZ_ECDSA_ID, "ecdsa-p256-sha256", path, NULL, &s->ecdsa, &diag) != PC_OK)
        die(diag.msg);
}

static void request_seed(const pc_signer_t *signer, Pkcs__V1__Request *req, const char *name)
{
    unsigned char *out = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    if (signer == NULL) { /* unsigned: a SignedRequest without signature */
        Pkcs__V1__SignedRequest sr;
        pkcs__v1__signed_request__init(&sr);
        sr.request.len = pkcs__v1__request__get_packed_size(req);
        sr.request.data = malloc(sr.request.len + 1);
        if (sr.request.data == NULL)
            die("out of memory");
        pkcs__v1__request__pack(req, sr.request.data);
        len = pkcs__v1__signed_request__get_packed_size(&sr);
        out = malloc(len + 1);
        if (out == NULL)
            die("out of memory");
        pkcs__v1__signed_request__pack(&sr, out);
        free(sr.request.data);
    } else if (pc_signer_sign(signer, req, &out, &len, &diag) != PC_OK) {
        die(diag.msg);
    }
    seed("request", name, out, len);
    free(out);
    if (signer == NULL)
        return;
    /* the bare Request too: the target also sends its input signed, as a Request's bytes */
    char bare[160];
    snprintf(bare, sizeof(bare), "bare-%s", name);
    len = pkcs__v1__request__get_packed_size(req);
    out = malloc(len + 1);
    if (out == NULL)
        die("out of memory");
    pkcs__v1__request__pack(req, out);
    seed("request", bare, out, len);
    free(out);
}

static void request_seeds(EVP_PKEY *dev_ec, EVP_PKEY *dev_rsa, const unsigned char *pfx,
                          size_t pfx_len)
{
    signers_t s = {0};
    size_t ec_len = 0, rsa_len = 0;
    unsigned char *ec = spki_of(dev_ec, &ec_len), *rsa = spki_of(dev_rsa, &rsa_len);
    char name[128];
    signers_new(&s);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = 0;
        ProtobufCMessage *msg = NULL;
        pc_diag_t diag = {{0}};
        char *text = sample_text(samples[i], &len);
        pc_err_t err =
            pc_pbjson_decode_string(&pkcs__v1__request__descriptor, text, len, &msg, &diag);
        free(text);
        if (err != PC_OK)
            continue; /* a profile, or a lint case that is no request */
        Pkcs__V1__Request *req = (Pkcs__V1__Request *)msg;
        char *own_id = req->request_id; /* put back before the message is freed */
        if (own_id == NULL || own_id[0] == '\0')
            req->request_id = "seed-request";
        if (req->created_at_ms == 0) /* fresh at the targets' "now" (expired.json keeps its) */
            req->created_at_ms = FUZZ_NOW_MS - 60000;
        if (req->body_case == PKCS__V1__REQUEST__BODY_ISSUE) {
            req->issue->device_public_key.data = (i % 2) ? rsa : ec;
            req->issue->device_public_key.len = (i % 2) ? rsa_len : ec_len;
        }
        snprintf(name, sizeof(name), "%.*s.bin", (int)(strlen(base_name(samples[i])) - 5),
                 base_name(samples[i]));
        request_seed(i == 1 ? s.ed25519 : i == 2 ? s.ecdsa : s.hmac, req, name);
        if (i == 0)
            request_seed(NULL, req, "unsigned.bin");
        if (req->body_case == PKCS__V1__REQUEST__BODY_ISSUE)
            req->issue->device_public_key = (ProtobufCBinaryData){0, NULL};
        req->request_id = own_id;
        protobuf_c_message_free_unpacked(msg, NULL);
    }

    Pkcs__V1__Request req;
    Pkcs__V1__RevokeRequest rev;
    Pkcs__V1__ImportPfxRequest imp;
    unsigned char sealed[256];
    memset(sealed, 0x5a, sizeof(sealed));
    pkcs__v1__request__init(&req);
    req.schema_version = 1;
    req.request_id = "seed-revoke";
    req.tenant_id = "contoso";
    req.kind = PKCS__V1__KIND__REVOKE;
    req.created_at_ms = 1735689000000;
    req.deadline_ms = 1735690000000;
    pkcs__v1__revoke_request__init(&rev);
    rev.ca_name = "local";
    rev.serial_number = "7F3A09C2";
    rev.reason = PKCS__V1__REVOKE_REASON__SUPERSEDED;
    rev.scenario = PKCS__V1__REVOKE_SCENARIO__DEVICE_WIPE;
    req.body_case = PKCS__V1__REQUEST__BODY_REVOKE;
    req.revoke = &rev;
    request_seed(s.hmac, &req, "revoke.bin");
    /* the scopes that name certificates another way than by serial */
    req.device_id = "device-1";
    req.user_id = "ann@contoso.com";
    rev.ca_name = "";
    rev.serial_number = "";
    rev.scope = PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_DEVICE;
    rev.profile_id = "wifi";
    request_seed(s.hmac, &req, "revoke-device.bin");
    rev.scope = PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_REQUEST;
    rev.target_request_id = "seed-request";
    request_seed(s.hmac, &req, "revoke-request.bin");
    req.device_id = "";
    req.user_id = "";
    pkcs__v1__import_pfx_request__init(&imp);
    imp.pfx.data = (uint8_t *)(uintptr_t)pfx;
    imp.pfx.len = pfx_len;
    imp.encrypted_password.data = sealed;
    imp.encrypted_password.len = sizeof(sealed);
    imp.import_key_id = "import-1";
    imp.intended_purpose = "smime_encryption";
    imp.device_public_key.data = ec;
    imp.device_public_key.len = ec_len;
    req.request_id = "seed-import";
    req.kind = PKCS__V1__KIND__IMPORT_PFX;
    req.body_case = PKCS__V1__REQUEST__BODY_IMPORT_PFX;
    req.import_pfx = &imp;
    request_seed(s.hmac, &req, "import-pfx.bin");
    OPENSSL_free(ec);
    OPENSSL_free(rsa);
    pc_signer_free(s.hmac);
    pc_signer_free(s.ed25519);
    pc_signer_free(s.ecdsa);
}

/* ---- subject and san ---------------------------------------------------------------------- */

/* name_value_seed writes flags, the fields, then the attributes of req as name/value pairs. */
static void vars_fields(buf_t *b, const Pkcs__V1__IssueRequest *issue)
{
    for (size_t i = 0; i < issue->n_attributes; i++) {
        put_str(b, issue->attributes[i]->key);
        put_str(b, issue->attributes[i]->value);
    }
}

static void subject_san_from_samples(void)
{
    char name[128];
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = 0;
        ProtobufCMessage *msg = NULL;
        pc_diag_t diag = {{0}};
        char *text = sample_text(samples[i], &len);
        pc_err_t err =
            pc_pbjson_decode_string(&pkcs__v1__request__descriptor, text, len, &msg, &diag);
        free(text);
        if (err != PC_OK)
            continue;
        Pkcs__V1__Request *req = (Pkcs__V1__Request *)msg;
        if (req->body_case != PKCS__V1__REQUEST__BODY_ISSUE || req->issue->profile == NULL) {
            protobuf_c_message_free_unpacked(msg, NULL);
            continue;
        }
        const Pkcs__V1__Profile *p = req->issue->profile;
        unsigned char flags = p->certificate_type == PKCS__V1__CERTIFICATE_TYPE__DEVICE ? 1 : 0;
        buf_t b = {.len = 0};
        put(&b, &(unsigned char){flags | (p->allow_long_values ? 2 : 0)}, 1);
        put_str(&b, p->subject_format);
        vars_fields(&b, req->issue);
        snprintf(name, sizeof(name), "%.*s.seed", (int)(strlen(base_name(samples[i])) - 5),
                 base_name(samples[i]));
        seed("subject", name, b.data, b.len);
        b.len = 0;
        put(&b, &flags, 1);
        for (size_t j = 0; j < p->n_subject_alternative_names; j++) {
            unsigned char type = (unsigned char)p->subject_alternative_names[j]->type;
            put(&b, &type, 1);
            put_str(&b, p->subject_alternative_names[j]->format);
        }
        if (req->issue->sid[0] != '\0') { /* the SID as one more format, of no type */
            put(&b, "\0", 1);
            put_str(&b, req->issue->sid);
        }
        put(&b, "", 1);
        vars_fields(&b, req->issue);
        seed("san", name, b.data, b.len);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* Subject formats of the unit tests of lib/subject.c, with a value for UserName. */
static const char *const subject_cases[][2] = {
    {"CN={{UserName}},OU=Staff,O=Contoso,C=US", "ann"},
    {"cn={{username}},o={{USERPRINCIPALNAME}}", "ann"},
    {"  CN  =  {{ UserName }}  ,  O = Contoso Ltd  ", "ann"},
    {"O=\"{{UserName}}, Inc\"", "a\"b"},
    {"CN={{UserName}}+SERIALNUMBER=42;DC=contoso;DC=com", "Doe, Ann"},
    {"CN=\\41\\42{{UserName}},STREET=\"1 Main St\\, Apt 2\"", "#0403616263"},
    {"1.2.840.113549.1.9.1={{UserName}},2.5.4.3=x", "<ann>"},
    {"E={{UserName}},G=Ann,SN=Lee,T=Dr,L=Paris,ST=IDF,POSTALCODE=75001", "ann@contoso.com"},
    {"CN={{OnPrem_Distinguished_Name}},O=Contoso", "CN=Ann,OU=Sales,DC=contoso,DC=com"},
    {"CN={{UserName}},O=\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe",
     "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m"},
    {"CN={{UserName}", "ann"},
    {"CN=\"{{UserName}}", "ann"},
    {"XX={{UserName}}", "ann"},
};

/* Values for the property mode: what a value must never do to the name around it. */
static const char *const hostile_values[] = {
    "a+b",        "a;b",          "Doe, Ann",
    "a=b,O=evil", "a\"b\"",       "a\\,b\\",
    "  ann  ",    "{{UserName}}", "\xe5\xb1\xb1\xe7\x94\xb0",
};

static void subject_san_cases(void)
{
    char name[64];
    for (size_t i = 0; i < sizeof(subject_cases) / sizeof(subject_cases[0]); i++) {
        buf_t b = {.len = 0};
        put(&b, &(unsigned char){i % 4 == 3 ? 2 : 0}, 1);
        put_str(&b, subject_cases[i][0]);
        put_str(&b, "UserName");
        put_str(&b, subject_cases[i][1]);
        put_str(&b, "UserPrincipalName");
        put_str(&b, "ann@contoso.com");
        put_str(&b, "OnPrem_Distinguished_Name");
        put_str(&b, "CN=Ann,OU=Sales,DC=contoso,DC=com");
        snprintf(name, sizeof(name), "case-%02zu.seed", i + 1);
        seed("subject", name, b.data, b.len);
    }
    for (size_t i = 0; i < sizeof(hostile_values) / sizeof(hostile_values[0]); i++) {
        snprintf(name, sizeof(name), "value-%02zu.seed", i + 1);
        seed2("subject", name, (unsigned char)(4 | (i % 2 ? 8 : 0)), hostile_values[i],
              strlen(hostile_values[i]));
    }
    static const char *const san_cases[][2] = {
        {"\x02", "{{EmailAddress}}"},
        {"\x03", "{{DeviceName}}.contoso.com"},
        {"\x03", "*.contoso.com"},
        {"\x04", "urn:uuid:{{AAD_Device_ID}}"},
        {"\x01", "{{onPremisesSamAccountName}}@contoso.com"},
        {"\x04", "tag:contoso.com,2024:{{UserName}}"},
        {"\x02", "ann.lee+tag@contoso.com"},
        {"\x03", "pc..contoso.com"},
        {"\x00", "S-1-5-21-3623811015-3361044348-30300820-1013"},
    };
    buf_t b = {.len = 0};
    put(&b, "\0", 1);
    for (size_t i = 0; i < sizeof(san_cases) / sizeof(san_cases[0]); i++) {
        put(&b, san_cases[i][0], 1);
        put_str(&b, san_cases[i][1]);
    }
    put(&b, "", 1);
    static const char *const vars[] = {"EmailAddress",
                                       "ann@contoso.com",
                                       "DeviceName",
                                       "pc-01",
                                       "AAD_Device_ID",
                                       "0f3c1d2e-aaaa-bbbb-cccc-0123456789ab",
                                       "onPremisesSamAccountName",
                                       "Zo\xc3\xab",
                                       "UserName",
                                       "ann"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        put_str(&b, vars[i]);
    seed("san", "cases.seed", b.data, b.len);
}

/* ---- http ------------------------------------------------------------------------------- */

static void http_seeds(void)
{
    static const char *const heads[] = {
        "GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /nope HTTP/1.0\r\n\r\n",
        "GET /metrics#frag HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1\n\n",
        "HEAD /healthz HTTP/1.1\r\n\r\n",
        "POST /api/topics/ensure HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "GET /api/workers/w-1 HTTP/1.1\r\nUser-Agent: probe\r\nAccept: */*\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET /healthz\r\n\r\n",
        "get /healthz HTTP/1.1\r\n\r\n",
        "GET /a\x01z HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
        "POST /api/topics/ensure HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer "
        "fuzz-admin-token-0123456789\r\nContent-Length: 0\r\n\r\n",
        "POST /api/topics/ensure HTTP/1.1\r\nauthorization:bearer \t fuzz-admin-token-0123456789 "
        "\r\nAuthorization: Bearer x\r\n\r\n",
        "GET /api/certs?tenant=contoso&device=d1#top HTTP/1.1\r\nAccept: */*\r\n\r\n",
        "GET /api/certs/local/7F3A?tenant=a%20b HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\n: no name\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n",
    };
    char name[64];
    /* the most headers a request may have, and one more */
    for (size_t extra = 0; extra < 2; extra++) {
        buf_t b = {.len = 0};
        put(&b, "\0GET /readyz HTTP/1.1\r\n", 23);
        for (size_t i = 0; i < 48 + extra; i++) {
            char line[32];
            int n = snprintf(line, sizeof(line), "X-H%zu: %zu\r\n", i, i);
            put(&b, line, (size_t)n);
        }
        put(&b, "\r\n", 2);
        seed("http", extra ? "headers-49.seed" : "headers-48.seed", b.data, b.len);
    }
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        snprintf(name, sizeof(name), "head-%02zu.seed", i + 1);
        /* all at once, and a few bytes per read */
        seed2("http", name,
              (unsigned char)(i % 3 == 0   ? 0
                              : i % 3 == 1 ? 1
                                           : 7),
              heads[i], strlen(heads[i]));
    }
}

/* ---- cfssl ---------------------------------------------------------------------------------- */

static char *pem_of(X509 *const *certs, size_t n)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    for (size_t i = 0; bio != NULL && i < n; i++)
        if (PEM_write_bio_X509(bio, certs[i]) != 1)
            die("cannot write a certificate");
    long len = BIO_get_mem_data(bio, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(bio);
    return out;
}

/* sign_answer writes a signing answer holding certs as cfssl sends it. */
static void sign_answer(const char *name, X509 **certs, size_t n)
{
    char *pem = pem_of(certs, n);
    json_t *reply = json_pack("{s:b, s:{s:s}, s:[], s:[]}", "success", 1, "result", "certificate",
                              pem, "errors", "messages");
    char *text = json_dumps(reply, JSON_COMPACT);
    if (text == NULL)
        die("out of memory");
    seed2("cfssl", name, 0, text, strlen(text));
    free(text);
    json_decref(reply);
    free(pem);
}

/* cfssl_seeds: the CA is fuzz_keys.h's, which the cfssl target checks signed certificates
 * against. */
static void cfssl_seeds(X509 *ca_cert, EVP_PKEY *ca_key)
{
    EVP_PKEY *leaf_key = key_from_pem(FUZZ_ECDSA_KEY);
    next_serial = FUZZ_CFSSL_SERIAL; /* what the target asks for with client serials */
    X509 *leaf = make_cert(leaf_key, "device-1", ca_cert, ca_key, "clientAuth",
                           "critical,digitalSignature", false, "20991231235959Z");
    X509 *both[] = {leaf, ca_cert};
    char *chain = pem_of(both, 2), *one = pem_of(&ca_cert, 1);
    json_t *cert_reply = json_pack("{s:b, s:{s:s}, s:[], s:[]}", "success", 1, "result",
                                   "certificate", chain, "errors", "messages");
    json_t *info_reply = json_pack("{s:b, s:{s:s, s:[s]}, s:[], s:[]}", "success", 1, "result",
                                   "certificate", one, "usages", "signing", "errors", "messages");
    char *cert_text = json_dumps(cert_reply, JSON_COMPACT);
    char *info_text = json_dumps(info_reply, JSON_COMPACT);
    static const struct {
        const char *name;
        unsigned char status; /* an index of fuzz_cfssl.c's table */
        const char *body;
    } fixed[] = {
        {"invalid-token.seed", 4,
         "{\"success\":false,\"result\":null,\"errors\":[{\"code\":400,\"message\":\"invalid "
         "token\"}],\"messages\":[]}"},
        {"policy.seed", 4,
         "{\"success\":false,\"result\":null,\"errors\":[{\"code\":5300,\"message\":\"Policy "
         "violation request\"}],\"messages\":[]}"},
        {"not-found.seed", 5,
         "{\"success\":false,\"result\":null,\"errors\":[{\"code\":11200,\"message\":\"Record "
         "not found\"}],\"messages\":[]}"},
        {"revoked.seed", 0, "{\"success\":true,\"result\":{},\"errors\":[],\"messages\":[]}"},
        {"busy.seed", 12, "{\"success\":false,\"errors\":[{\"code\":1,\"message\":\"busy\"}]}"},
        {"server-error.seed", 10, "<html><body>502 Bad Gateway</body></html>"},
        {"no-answer.seed", 14, ""},
        {"not-json.seed", 0, "OK"},
    };
    seed2("cfssl", "sign.seed", 0, cert_text, strlen(cert_text));
    seed2("cfssl", "sign-client-serial.seed", 32, cert_text, strlen(cert_text));
    seed2("cfssl", "info.seed", 1, info_text, strlen(info_text));
    /* what the backend must refuse: another key than the CSR's, or another CA's signature */
    EVP_PKEY *other_key = gen("EC", "P-256");
    X509 *wrong_key = make_cert(other_key, "device-1", ca_cert, ca_key, "clientAuth", NULL, false,
                                "20991231235959Z");
    X509 *other_ca = make_cert(other_key, FUZZ_CA_SUBJECT, NULL, NULL, NULL,
                               "critical,keyCertSign,cRLSign", true, "20991231235959Z");
    X509 *wrong_ca = make_cert(leaf_key, "device-1", other_ca, other_key, "clientAuth", NULL, false,
                               "20991231235959Z");
    sign_answer("sign-wrong-key.seed", &wrong_key, 1);
    sign_answer("sign-wrong-ca.seed", &wrong_ca, 1);
    X509_free(wrong_key);
    X509_free(other_ca);
    X509_free(wrong_ca);
    EVP_PKEY_free(other_key);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        seed2("cfssl", fixed[i].name, fixed[i].status, fixed[i].body, strlen(fixed[i].body));
    free(cert_text);
    free(info_text);
    json_decref(cert_reply);
    json_decref(info_reply);
    free(chain);
    free(one);
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
}

/* ---- pfx ------------------------------------------------------------------------------------ */

static unsigned char *p12_der(PKCS12 *p12, size_t *len)
{
    unsigned char *der = NULL;
    int n = p12 != NULL ? i2d_PKCS12(p12, &der) : -1;
    if (n <= 0)
        die("cannot encode a PKCS#12");
    *len = (size_t)n;
    PKCS12_free(p12);
    return der;
}

/* pfx_seeds writes PFX seeds; returns (in *pfx, the caller's) one for the request seeds. */
static void pfx_seeds(X509 *ca_cert, EVP_PKEY *ca_key, unsigned char **pfx, size_t *pfx_len)
{
    EVP_PKEY *rsa = gen("RSA", "2048"), *ec = gen("EC", "P-256");
    X509 *smime = make_cert(rsa, "ann@contoso.com", ca_cert, ca_key, "emailProtection",
                            "critical,digitalSignature,keyEncipherment", false, "20991231235959Z");
    X509 *ec_smime = make_cert(ec, "zoe@contoso.com", ca_cert, ca_key, "emailProtection",
                               "critical,keyAgreement", false, "20991231235959Z");
    X509 *server = make_cert(rsa, "www.contoso.com", ca_cert, ca_key, "serverAuth",
                             "critical,digitalSignature", false, "20991231235959Z");
    X509 *expired = make_cert(ec, "old@contoso.com", ca_cert, ca_key, "emailProtection", NULL,
                              false, "20210101000000Z");
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL || sk_X509_push(chain, ca_cert) == 0 || X509_up_ref(ca_cert) != 1)
        die("out of memory");
    const struct {
        const char *name;
        unsigned char flags; /* fuzz_pfx.c: bit 0 password, bits 1-2 purpose */
        EVP_PKEY *key;
        X509 *cert;
        const char *password;
    } built[] = {
        {"rsa-empty.seed", 0, rsa, smime, ""},
        {"rsa-password.seed", 1 | 2, rsa, smime, "fuzz-password"},
        {"ec-empty.seed", 4, ec, ec_smime, ""},
        {"server.seed", 0, rsa, server, ""},
        {"expired.seed", 2, ec, expired, ""},
        /* under fuzz_pfx.c's tight limits (flag 8): 2048 iterations is the limit itself */
        {"rsa-password-tight.seed", 1 | 2 | 8, rsa, smime, "fuzz-password"},
        {"ec-empty-tight.seed", 4 | 8, ec, ec_smime, ""},
    };
    pc_diag_t diag = {{0}};
    for (size_t i = 0; i < sizeof(built) / sizeof(built[0]); i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        if (pc_pfx_build(built[i].key, built[i].cert, chain, "friendly", built[i].password, &der,
                         &len, &diag) != PC_OK)
            die(diag.msg);
        seed2("pfx", built[i].name, built[i].flags, der, len);
        if (i == 0) {
            *pfx = der;
            *pfx_len = len;
        } else {
            OPENSSL_clear_free(der, len);
        }
    }
    /* In clear: no MAC and an unencrypted key bag, so that mutations reach the contents. */
    size_t len = 0;
    unsigned char *der = p12_der(
        PKCS12_create_ex(NULL, "clear", rsa, smime, chain, -1, -1, 0, -1, 0, NULL, NULL), &len);
    seed2("pfx", "rsa-clear.seed", 0, der, len);
    OPENSSL_free(der);
    der = p12_der(PKCS12_create_ex(NULL, NULL, ec, ec_smime, NULL, -1, -1, 0, -1, 0, NULL, NULL),
                  &len);
    seed2("pfx", "ec-clear.seed", 4, der, len);
    OPENSSL_free(der);
    /* Older producers: PKCS#12 PBE with 3DES and a SHA-1 MAC. */
    der = p12_der(PKCS12_create_ex("fuzz-password", "legacy", rsa, smime, chain,
                                   NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                   NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 2048, 1, 0, NULL, NULL),
                  &len);
    seed2("pfx", "rsa-legacy.seed", 1, der, len);
    OPENSSL_free(der);
    /* One iteration over the limits: refused before any key is derived. */
    der = p12_der(PKCS12_create_ex("fuzz-password", "over", ec, ec_smime, chain, NID_aes_256_cbc,
                                   -1, 2049, 2049, 0, NULL, NULL),
                  &len);
    seed2("pfx", "ec-iter-2049-tight.seed", 1 | 8, der, len);
    OPENSSL_free(der);
    der = p12_der(PKCS12_create_ex("fuzz-password", "over", ec, ec_smime, chain, NID_aes_256_cbc,
                                   -1, PC_PFX_MAX_ITERATIONS_DEFAULT + 1,
                                   PC_PFX_MAX_ITERATIONS_DEFAULT + 1, 0, NULL, NULL),
                  &len);
    seed2("pfx", "ec-iter-over-default.seed", 1, der, len);
    OPENSSL_free(der);
    sk_X509_pop_free(chain, X509_free);
    X509_free(smime);
    X509_free(ec_smime);
    X509_free(server);
    X509_free(expired);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

/* ---- result --------------------------------------------------------------------------------- */

static void packed_seed(const char *name, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL)
        die("out of memory");
    protobuf_c_message_pack(msg, buf);
    seed("result", name, buf, len);
    free(buf);
}

/* result_seed writes res bare, as workers older than signed results sent it, and sealed with
 * signer (the result target trusts its key) as "signed-NAME". */
static void result_seed(const pc_signer_t *signer, const Pkcs__V1__Result *res, const char *name)
{
    pc_diag_t diag = {{0}};
    unsigned char *out = NULL;
    size_t len = protobuf_c_message_get_packed_size(&res->base), out_len = 0;
    unsigned char *bytes = malloc(len + 1);
    char signed_name[160];
    if (bytes == NULL)
        die("out of memory");
    protobuf_c_message_pack(&res->base, bytes);
    seed("result", name, bytes, len);
    if (pc_signer_seal_result(signer, bytes, len, &out, &out_len, &diag) != PC_OK)
        die(diag.msg);
    snprintf(signed_name, sizeof(signed_name), "signed-%s", name);
    seed("result", signed_name, out, out_len);
    free(out);
    free(bytes);
}

/* result_seeds: what the results topic carries (and Redis keeps): an ISSUED result with its
 * certificate and chain, a FAILED one, a REVOKED one; bare and sealed. */
static void result_seeds(X509 *ca_cert, EVP_PKEY *ca_key)
{
    char path[1024];
    pc_diag_t diag = {{0}};
    pc_signer_t *signer = NULL;
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                (const unsigned char *)FUZZ_ED25519_SEED, 32);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (ed == NULL || bio == NULL ||
        PEM_write_bio_PrivateKey(bio, ed, NULL, NULL, 0, NULL, NULL) != 1)
        die("cannot write the result key");
    long pem_len = BIO_get_mem_data(bio, &pem);
    write_tmp("result.pem", pem, (size_t)pem_len, path, sizeof(path));
    BIO_free(bio);
    EVP_PKEY_free(ed);
    if (pc_signer_new(FUZZ_RESULT_KEY_ID, "ed25519", path, NULL, &signer, &diag) != PC_OK)
        die(diag.msg);
    unlink(path);

    Pkcs__V1__Request req;
    pkcs__v1__request__init(&req);
    req.schema_version = 1;
    req.request_id = "seed-request";
    req.tenant_id = "contoso";
    req.device_id = "device-1";
    req.kind = PKCS__V1__KIND__ISSUE;
    EVP_PKEY *key = key_from_pem(FUZZ_ECDSA_KEY);
    X509 *leaf = make_cert(key, "device-1", ca_cert, ca_key, "clientAuth",
                           "critical,digitalSignature", false, "20991231235959Z");
    STACK_OF(X509) *chain = sk_X509_new_null();
    Pkcs__V1__Result *res = pc_result_new(&req);
    if (chain == NULL || res == NULL || sk_X509_push(chain, ca_cert) == 0 ||
        pc_result_set_cert(res, leaf, chain, &diag) != PC_OK ||
        pc_result_set_renews(res, "local", "7F3A") != PC_OK)
        die("cannot make a result");
    res->status = PKCS__V1__STATUS__ISSUED;
    static unsigned char envelope[] = "an enveloped PFX would be here";
    res->encrypted_pfx.data = envelope;
    res->encrypted_pfx.len = sizeof(envelope);
    result_seed(signer, res, "issued.bin");
    res->encrypted_pfx = (ProtobufCBinaryData){0, NULL};
    protobuf_c_message_free_unpacked(&res->base, NULL);

    res = pc_result_new(&req);
    pc_fail(&diag, PC_ERR_POLICY, "template User does not allow EKU serverAuth");
    if (res == NULL || pc_result_set_error(res, PC_ERR_POLICY, &diag) != PC_OK)
        die("cannot make a result");
    result_seed(signer, res, "failed.bin");
    protobuf_c_message_free_unpacked(&res->base, NULL);

    req.kind = PKCS__V1__KIND__REVOKE;
    res = pc_result_new(&req);
    if (res == NULL || pc_result_add_revoked(res, "local", "7F3A") != PC_OK ||
        pc_result_add_revoked(res, "remote", "01") != PC_OK)
        die("cannot make a result");
    res->status = PKCS__V1__STATUS__REVOKED;
    result_seed(signer, res, "revoked.bin");
    protobuf_c_message_free_unpacked(&res->base, NULL);

    /* a SignedResult whose result is not one */
    Pkcs__V1__SignedResult sealed;
    pkcs__v1__signed_result__init(&sealed);
    sealed.result.data = envelope;
    sealed.result.len = sizeof(envelope);
    sealed.signer_key_id = FUZZ_RESULT_KEY_ID;
    sealed.signature_algorithm = "ed25519";
    packed_seed("sealed-garbage.bin", &sealed.base);

    sk_X509_free(chain);
    X509_free(leaf);
    EVP_PKEY_free(key);
    pc_signer_free(signer);
}

/* ---- config --------------------------------------------------------------------------------- */

static void config_seeds(void)
{
    static const struct {
        const char *name, *text;
    } configs[] = {
        {"empty.json", "{}"},
        {"readme.json",
         "{\n  \"state_dir\": \"./state\",\n  \"keygen_mode\": \"fast\",\n  \"cas\": [{\n"
         "    \"name\": \"local\", \"type\": \"local\", \"state_dir\": \"./state/ca/local\",\n"
         "    \"cert_file\": null, \"key_file\": null, \"key_passphrase_file\": \"ca.pass\",\n"
         "    \"subject\": \"CN=PKCS Connector Local CA\",\n"
         "    \"crl_url\": \"http://pki.example.com/crl/local.crl\",\n"
         "    \"aia_url\": \"http://pki.example.com/ca/local.crt\",\n"
         "    \"templates\": [{\"name\": \"User\", \"allowed_ekus\": [\"clientAuth\", "
         "\"emailProtection\"],\n      \"allowed_key_usages\": [\"digitalSignature\", "
         "\"keyEncipherment\", \"keyAgreement\"],\n      \"max_validity_days\": 730, "
         "\"min_rsa_bits\": 2048, \"min_ec_bits\": 256,\n      \"subject_from_request\": true}]\n"
         "  }]\n}\n"},
        {"cfssl.json",
         "{\"cas\": [{\"name\": \"local\", \"key_passphrase\": \"x\"},\n"
         " {\"name\": \"remote\", \"type\": \"cfssl\", \"url\": \"https://cfssl.example.com:8888\","
         "\n  \"auth_key_file\": \"cfssl.hex\", \"ca_bundle\": \"ca.pem\", \"client_cert\": "
         "\"w.pem\",\n  \"client_key\": \"w.key\", \"label\": \"primary\", "
         "\"connect_timeout_ms\": 5000,\n  \"total_timeout_ms\": 30000, \"max_concurrent\": 16, "
         "\"attempts\": 3, \"retry_base_ms\": 100,\n  \"retry_max_ms\": 2000, "
         "\"breaker_threshold\": 5, \"breaker_cooldown_ms\": 30000,\n  \"profiles\": {\"User\": "
         "\"client\", \"Device\": \"device\"},\n  \"templates\": [{\"name\": \"Device\", "
         "\"allowed_ekus\": [\"clientAuth\", \"1.3.6.1.5.5.7.3.2\"]}]}]}\n"},
        {"worker.json",
         "{\"worker\": {\"id\": \"w-1\", \"max_in_flight\": 64, \"resume_below\": 32, "
         "\"threadpool_size\": 2,\n  \"max_instances\": 100, \"heartbeat_ms\": 3000, "
         "\"heartbeat_ttl_ms\": 10000,\n  \"drain_timeout_ms\": 30000, \"http_host\": "
         "\"127.0.0.1\", \"http_port\": 0, \"log_level\": \"debug\",\n  \"key_pool_size\": 16, "
         "\"key_pool_algorithms\": \"RSA-2048,P-256\", \"retry_min_ms\": 200,\n"
         "  \"retry_max_ms\": 10000, \"allow_unsigned\": false, \"import_key_file\": "
         "\"import.pem\",\n  \"import_key_id\": \"import-1\"},\n"
         " \"kafka\": {\"brokers\": \"127.0.0.1:9092\", \"group_id\": \"pkcs-workers\", "
         "\"group_instance_id\": \"w-1\",\n  \"requests_topic\": \"pkcs.requests\", "
         "\"results_topic\": \"pkcs.results\",\n  \"dlq_topic\": \"pkcs.requests.dlq\", "
         "\"session_timeout_ms\": 10000},\n"
         " \"redis\": {\"host\": \"127.0.0.1\", \"port\": 6379, \"password\": \"secret\", "
         "\"command_timeout_ms\": 2000,\n  \"lease_ms\": 30000, \"retention_hours\": 168},\n"
         " \"coordinator\": {\"http_host\": \"127.0.0.1\", \"http_port\": 9470, "
         "\"topic_partitions\": 128,\n  \"topic_replication\": 1, \"topic_retention_hours\": "
         "168}}\n"},
        {"signers.json",
         "{\"signers\": [{\"id\": \"mdm-1\", \"algorithm\": \"ed25519\", \"public_key_file\": "
         "\"ed25519.pub\",\n   \"tenants\": [\"contoso\"], \"cas\": [\"local\"], \"templates\": "
         "[\"User\"]},\n  {\"id\": \"mdm-2\", \"algorithm\": \"hmac-sha256\", "
         "\"secret_file\": \"hmac.secret\", \"tenants\": [\"*\"]}],\n"
         " \"worker\": {\"result_key_file\": \"result.key\", \"result_key_id\": \"results-2\",\n"
         "  \"result_key_algorithm\": \"ed25519\", \"max_request_age_s\": 3600, "
         "\"clock_skew_ms\": 1000}}\n"},
        {"bad.json", "{\"cas\": [{\"name\": \"local\", \"type\": \"acme\", \"typo\": 1}]}"},
        {"policy.json",
         "{\"cas\": [{\"name\": \"local\", \"templates\": [{\"name\": \"Device\",\n"
         "  \"allowed_ekus\": [\"clientAuth\", \"serverAuth\"], \"allowed_san_types\": "
         "[\"DNS\", \"email\", \"UPN\", \"URI\", \"IP\"],\n  \"allowed_dns_domains\": "
         "[\"contoso.com\", \"xn--bcher-kva.example\"], \"allow_subdomains\": true,\n"
         "  \"allow_wildcards\": true, \"allowed_email_domains\": [\"contoso.com\"],\n"
         "  \"allowed_upn_suffixes\": [\"contoso.com\"], \"cn_is_dns_name\": true,\n"
         "  \"subject_from_request\": false, \"min_rsa_bits\": 3072, \"min_ec_bits\": 384}]}]}\n"},
        {"limits.json",
         "{\"worker\": {\"import_key_file\": \"import.key\", \"import_key_id\": \"import-2\",\n"
         "  \"pfx_max_iterations\": 2048, \"pfx_max_bytes\": 262144, \"pfx_max_bags\": 4,\n"
         "  \"pfx_max_certs\": 1, \"http_max_connections\": 8, \"http_timeout_ms\": 1000,\n"
         "  \"retry_limit_ms\": 60000, \"degraded_after_ms\": 5000},\n"
         " \"kafka\": {\"audit_topic\": \"\", \"notices_topic\": \"pkcs.notices\"},\n"
         " \"coordinator\": {\"admin_token_file\": \"admin.token\", \"http_max_connections\": "
         "16,\n  \"http_timeout_ms\": 2000, \"audit_retention_hours\": 24, "
         "\"notice_interval_ms\": 1000,\n  \"expiry_notice_days\": 30, \"supersede_grace_s\": 0, "
         "\"degraded_lag\": 10}}\n"},
        {"cfssl-http.json",
         "{\"cas\": [{\"name\": \"remote\", \"type\": \"cfssl\", \"url\": "
         "\"http://127.0.0.1:8888\",\n  \"allow_http\": true, \"client_serials\": true, "
         "\"auth_key_file\": \"cfssl.hex\"}]}"},
    };
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
        seed("config", configs[i].name, configs[i].text, strlen(configs[i].text));
    size_t len = 0;
    char *text = sample_text("deploy/systemd/config.example.json", &len);
    seed("config", "example.json", text, len);
    free(text);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz-seedgen CORPUS_DIR [SOURCE_DIR]\n");
        return 2;
    }
    out_dir = argv[1];
    src_dir = argc > 2 ? argv[2] : ".";
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/pc-seedgen-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        die("cannot make the corpus folder");
    if (mkdtemp(tmp_dir) == NULL)
        die("cannot make a temporary folder");

    EVP_PKEY *ca_key = key_from_pem(FUZZ_CA_KEY);
    X509 *ca_cert = make_cert(ca_key, FUZZ_CA_SUBJECT, NULL, NULL, NULL,
                              "critical,keyCertSign,cRLSign", true, "20991231235959Z");
    EVP_PKEY *dev_ec = gen("EC", "P-256"), *dev_rsa = gen("RSA", "2048");
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;

    spki_seeds();
    pbjson_seeds();
    pfx_seeds(ca_cert, ca_key, &pfx, &pfx_len);
    request_seeds(dev_ec, dev_rsa, pfx, pfx_len);
    subject_san_from_samples();
    subject_san_cases();
    http_seeds();
    cfssl_seeds(ca_cert, ca_key);
    result_seeds(ca_cert, ca_key);
    config_seeds();

    OPENSSL_clear_free(pfx, pfx_len);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(dev_ec);
    EVP_PKEY_free(dev_rsa);
    const char *const tmp_files[] = {"hmac", "ed25519.pem", "ecdsa.pem"};
    char path[1024];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, tmp_files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    printf("seedgen: seeds written under %s\n", out_dir);
    return 0;
}
