/*
 * ca_cfssl_wire.c - cfssl's JSON API as the cfssl backend speaks it: request bodies, the
 * HMAC-SHA256 "standard" auth token of /authsign, parsing answers, and what each answer means
 * (which pc_err_t, whether to retry, whether the CA counts as failing). Also the checks that
 * keep a CSR from losing parts in cfssl. See ca_cfssl_int.h for the endpoints.
 *
 * Kept apart from ca_cfssl.c so that the protocol can be read (and changed for another cfssl
 * version) without the event-loop plumbing. Pure functions: any thread.
 */
#include "ca_cfssl_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

/* ---- request bodies ----------------------------------------------------------------------- */

/* dump_json serialises and frees obj (NULL-safe); NULL when out of memory. */
static char *dump_json(json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}

bool pc_ca_cfssl_auth_token(const unsigned char *key, size_t key_len, const void *data, size_t len,
                            char *out, size_t size)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (size < 45 || key_len > INT32_MAX)
        return false;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &mac_len) == NULL) {
        ERR_clear_error();
        return false;
    }
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len); /* 32 bytes: 44 chars + NUL */
    OPENSSL_cleanse(mac, sizeof(mac));
    return true;
}

static char *base64(const char *data, size_t len)
{
    if (len > INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
    return out;
}

/* auth_wrap puts request into cfssl's AuthenticatedRequest: the token is computed over the
 * very bytes that are sent (base64) as "request". */
static char *auth_wrap(const char *request, const unsigned char *key, size_t key_len)
{
    char token[64];
    char *text = NULL;
    size_t len = strlen(request);
    char *encoded = base64(request, len);

    if (encoded == NULL ||
        !pc_ca_cfssl_auth_token(key, key_len, request, len, token, sizeof(token)))
        goto out_free_encoded;
    text = dump_json(json_pack("{s:s, s:s}", "token", token, "request", encoded));
out_free_encoded:
    free(encoded);
    return text;
}

/* with_serial appends "serial": DEC to the JSON object text (cfssl reads it as a big integer,
 * which a JSON integer of jansson's cannot hold); NULL when out of memory. Takes text. */
static char *with_serial(char *text, const char *serial_dec)
{
    size_t len = strlen(text), dlen = strlen(serial_dec);
    char *out = len >= 2 && text[len - 1] == '}' ? malloc(len + dlen + 16) : NULL;
    if (out != NULL) /* {...} -> {...,"serial":DEC} */
        snprintf(out, len + dlen + 16, "%.*s,\"serial\":%s}", (int)(len - 1), text, serial_dec);
    free(text);
    return out;
}

pc_err_t pc_ca_cfssl_sign_body(const char *csr_pem, const char *profile, const char *label,
                               const char *serial_dec, const unsigned char *key, size_t key_len,
                               char **body, pc_diag_t *diag)
{
    json_t *req = json_pack("{s:s, s:s}", "certificate_request", csr_pem, "profile", profile);
    char *inner = NULL;

    *body = NULL;
    if (req != NULL && label != NULL && json_object_set_new(req, "label", json_string(label)) != 0)
        goto out_nomem;
    inner = dump_json(req);
    if (inner != NULL && serial_dec != NULL)
        inner = with_serial(inner, serial_dec);
    if (inner == NULL)
        goto out_nomem;
    if (key_len == 0) {
        *body = inner;
        return PC_OK;
    }
    *body = auth_wrap(inner, key, key_len);
    free(inner);
    if (*body == NULL)
        goto out_nomem;
    return PC_OK;
out_nomem:
    return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a cfssl sign request");
}

pc_err_t pc_ca_cfssl_revoke_body(const char *serial_dec, const char *aki_hex, const char *reason,
                                 char **body, pc_diag_t *diag)
{
    *body = dump_json(json_pack("{s:s, s:s, s:s}", "serial", serial_dec, "authority_key_id",
                                aki_hex, "reason", reason));
    if (*body == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a cfssl revoke request");
    return PC_OK;
}

pc_err_t pc_ca_cfssl_info_body(const char *label, char **body, pc_diag_t *diag)
{
    json_t *req = label != NULL ? json_pack("{s:s}", "label", label) : json_object();
    *body = dump_json(req);
    if (*body == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory building a cfssl info request");
    return PC_OK;
}

/* ---- answers ------------------------------------------------------------------------------ */

void pc_ca_cfssl_reply_parse(const char *body, size_t len, pc_ca_cfssl_reply_t *reply)
{
    json_error_t jerr;

    memset(reply, 0, sizeof(*reply));
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root) || !json_is_boolean(json_object_get(root, "success"))) {
        json_decref(root);
        return;
    }
    reply->root = root;
    reply->success = json_is_true(json_object_get(root, "success"));
    reply->result = json_object_get(root, "result");
    const json_t *first = json_array_get(json_object_get(root, "errors"), 0);
    const json_t *code = json_object_get(first, "code");
    const char *message = json_string_value(json_object_get(first, "message"));
    if (json_is_integer(code))
        reply->code = (int)json_integer_value(code);
    snprintf(reply->message, sizeof(reply->message), "%s", message != NULL ? message : "");
}

void pc_ca_cfssl_reply_clear(pc_ca_cfssl_reply_t *reply)
{
    json_decref(reply->root);
    memset(reply, 0, sizeof(*reply));
}

pc_err_t pc_ca_cfssl_result_certs(const pc_ca_cfssl_reply_t *reply, STACK_OF(X509) * *certs,
                                  pc_diag_t *diag)
{
    const char *pem = json_string_value(json_object_get(reply->result, "certificate"));
    STACK_OF(X509) *out = NULL;
    BIO *bio = NULL;
    X509 *cert = NULL;

    *certs = NULL;
    if (pem == NULL)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the answer has no result.certificate");
    bio = BIO_new_mem_buf(pem, -1);
    out = sk_X509_new_null();
    if (bio == NULL || out == NULL)
        goto out_nomem;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(out, cert) == 0) {
            X509_free(cert);
            goto out_nomem;
        }
    }
    ERR_clear_error(); /* the end of the PEM text reads as an error */
    BIO_free(bio);
    if (sk_X509_num(out) == 0) {
        sk_X509_free(out);
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "result.certificate holds no PEM certificate it can read");
    }
    *certs = out;
    return PC_OK;
out_nomem:
    sk_X509_pop_free(out, X509_free);
    BIO_free(bio);
    return pc_fail(diag, PC_ERR_NOMEM, "out of memory reading a certificate from cfssl");
}

/* pc_ca_cfssl_check_issued: a proxy, a misconfigured multiroot cfssl or a compromised server
 * that answers with anything else than what its CA issued for the CSR is caught here, before
 * the certificate reaches a device. */
pc_err_t pc_ca_cfssl_check_issued(const char *ca_name, const char *what, X509 *ca_cert,
                                  EVP_PKEY *csr_key, const char *serial_dec, X509 *cert,
                                  pc_diag_t *diag)
{
    bool same_key = EVP_PKEY_eq(X509_get0_pubkey(cert), csr_key) == 1;
    bool issued = same_key && ca_cert != NULL && X509_check_issued(ca_cert, cert) == X509_V_OK &&
                  X509_verify(cert, X509_get0_pubkey(ca_cert)) == 1;

    bool serial_ok = true;
    if (serial_dec != NULL) { /* client_serials: the serial we recorded, or nothing */
        BIGNUM *want = NULL, *got = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        serial_ok = BN_dec2bn(&want, serial_dec) > 0 && got != NULL && BN_cmp(want, got) == 0;
        BN_free(want);
        BN_free(got);
    }
    ERR_clear_error();
    if (!serial_ok)
        return pc_fail(diag, PC_ERR_CRYPTO,
                       "cfssl CA \"%s\" signed with another serial than the one asked for while "
                       "%s: with client_serials, its cfssl profile must say "
                       "\"ClientProvidesSerialNumbers\": true (spelled so: cfssl ignores other "
                       "spellings), and cfssl must take serials in its API (1.6 does, 1.2 not)",
                       ca_name, what);
    if (!same_key)
        return pc_fail(diag, PC_ERR_CRYPTO,
                       "cfssl CA \"%s\" returned a certificate for another public key than the "
                       "CSR's while %s; do not trust this CA's answers",
                       ca_name, what);
    if (!issued)
        return pc_fail(diag, PC_ERR_CRYPTO,
                       "cfssl CA \"%s\" returned a certificate that its CA certificate did not "
                       "sign while %s; do not trust this CA's answers, and check that its url "
                       "and label reach the CA it names at start",
                       ca_name, what);
    return PC_OK;
}

/* ---- what an answer means ----------------------------------------------------------------- */

static pc_ca_cfssl_verdict_t verdict(pc_err_t err, bool retry, bool ca_failed)
{
    pc_ca_cfssl_verdict_t v = {.err = err, .retry = retry, .ca_failed = ca_failed};
    return v;
}

/* auth_hint: what to do about one of cfssl's authentication refusals, NULL when msg is none. */
static const char *auth_hint(const char *msg)
{
    if (strcmp(msg, "invalid token") == 0)
        return "our auth key does not match the auth_key of the cfssl profile (a key rotation "
               "in progress?); check the CA's auth key";
    if (strcmp(msg, "authentication required") == 0)
        return "the cfssl profile has an auth_key; configure that key for this CA";
    if (strcmp(msg, "no authentication provider") == 0)
        return "the cfssl profile has no auth_key (cfssl also falls back to its default profile "
               "for an unknown profile name); give the profile an auth_key, map the template "
               "to one that has it, or drop the auth key here";
    return NULL;
}

/* What cfssl's own error codes (its errors package: category * 1000 + reason) mean here, first
 * match wins; a code in none of these ranges is a request cfssl found unacceptable. */
static const struct {
    int min, max;
    pc_err_t err;
    bool retry;
    const char *what; /* "cfssl CA X <what> while <doing>: <message> (cfssl code N)" */
    const char *fix;  /* after "; " */
} cfssl_codes[] = {
    /* CertStoreError + RecordNotFound: revoking a serial cfssl does not know */
    {11200, 11200, PC_ERR_NOT_FOUND, false, "found nothing", "nothing to revoke"},
    /* CertStoreError's other reasons, Unknown (11000: what cfssl wraps its database's own errors
     * in, "database is locked" under concurrent signing) and InsertionFailed (11100): cfssl
     * signed, then failed to record, and delivered nothing; the same request asked again is
     * signed anew. Not the CA's breakdown: no breaker. */
    {11000, 11199, PC_ERR_CA_BUSY, true, "could not record the certificate in its database",
     "asking again"},
    /* PolicyError */
    {5000, 5999, PC_ERR_POLICY, false, "refused by its policy",
     "check the profile in cfssl's signing configuration"},
    {0, -1, PC_ERR_INVALID_PARAM, false, "refused", "the request or CSR is not acceptable to it"},
};

/* judge_cfssl_error: cfssl answered with its own error (HTTP 4xx, success false). */
static pc_ca_cfssl_verdict_t judge_cfssl_error(const char *ca, const char *what,
                                               const pc_ca_cfssl_reply_t *reply, pc_diag_t *diag)
{
    const char *msg = reply->message[0] != '\0' ? reply->message : "no reason given";
    const char *hint = auth_hint(msg);

    if (hint != NULL) {
        pc_fail(diag, PC_ERR_CA_AUTH, "cfssl CA \"%s\" refused to authenticate %s: %s; %s", ca,
                what, msg, hint);
        return verdict(PC_ERR_CA_AUTH, false, false);
    }
    size_t i = 0, last = sizeof(cfssl_codes) / sizeof(cfssl_codes[0]) - 1;
    while (i < last && (reply->code < cfssl_codes[i].min || reply->code > cfssl_codes[i].max))
        i++;
    pc_fail(diag, cfssl_codes[i].err, "cfssl CA \"%s\" %s while %s: %s (cfssl code %d); %s", ca,
            cfssl_codes[i].what, what, msg, reply->code, cfssl_codes[i].fix);
    return verdict(cfssl_codes[i].err, cfssl_codes[i].retry, false);
}

pc_ca_cfssl_verdict_t pc_ca_cfssl_judge(const char *ca, const char *what,
                                        const pc_curl_uv_result_t *res,
                                        const pc_ca_cfssl_reply_t *reply, pc_diag_t *diag)
{
    long st = res->status;
    const char *msg = reply->message[0] != '\0' ? reply->message : "no cfssl error message";

    if (res->code != CURLE_OK) {
        bool closed = res->code == CURLE_ABORTED_BY_CALLBACK;
        pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                "cfssl CA \"%s\" did not answer while %s: %s; check that cfssl runs and that "
                "its URL, TLS settings and the network let us reach it",
                ca, what, res->error);
        return verdict(PC_ERR_CA_UNAVAILABLE, !closed, !closed);
    }
    if (st == 429 || st == 503) {
        pc_fail(diag, PC_ERR_CA_BUSY, "cfssl CA \"%s\" is busy (HTTP %ld) while %s: %s", ca, st,
                what, msg);
        return verdict(PC_ERR_CA_BUSY, true, false);
    }
    if (st >= 500) {
        pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                "cfssl CA \"%s\" failed (HTTP %ld) while %s: %s; see cfssl's log", ca, st, what,
                msg);
        return verdict(PC_ERR_CA_UNAVAILABLE, true, true);
    }
    if (st == 401 || st == 403) {
        pc_fail(diag, PC_ERR_CA_AUTH,
                "cfssl CA \"%s\" (or a proxy before it) refused access (HTTP %ld) while %s; "
                "check the client certificate and key",
                ca, st, what);
        return verdict(PC_ERR_CA_AUTH, false, false);
    }
    if (reply->root == NULL && st == 404) {
        /* cfssl serve registers an endpoint only when it can serve it: trying again cannot
         * help, and the answer is a configuration to change. */
        pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                "cfssl CA \"%s\" has no endpoint for this (HTTP 404) while %s; %s", ca, what,
                strncmp(what, "revoking", 8) == 0
                    ? "cfssl serve offers revoke only with a certificate database: start it "
                      "with -db-config"
                    : "check the URL, and that cfssl enables this endpoint (authsign needs a "
                      "profile with an auth_key, sign one without)");
        return verdict(PC_ERR_NOT_SUPPORTED, false, false);
    }
    if (reply->root == NULL) {
        bool ok_status = st >= 200 && st < 300;
        pc_fail(diag, PC_ERR_CA_UNAVAILABLE,
                "cfssl CA \"%s\" answered HTTP %ld without a cfssl response while %s; check "
                "the URL, and that cfssl enables this endpoint (authsign needs a profile with "
                "an auth_key, sign one without)",
                ca, st, what);
        return verdict(PC_ERR_CA_UNAVAILABLE, ok_status, ok_status);
    }
    if (reply->success && st >= 200 && st < 300)
        return verdict(PC_OK, false, false);
    return judge_cfssl_error(ca, what, reply, diag);
}

/* ---- what cfssl can carry ----------------------------------------------------------------- */

/* Subject attributes cfssl 1.2 keeps (Go's pkix.Name without ExtraNames). */
static bool subject_nid_kept(int nid)
{
    return nid == NID_countryName || nid == NID_stateOrProvinceName || nid == NID_localityName ||
           nid == NID_streetAddress || nid == NID_postalCode || nid == NID_organizationName ||
           nid == NID_organizationalUnitName || nid == NID_commonName || nid == NID_serialNumber;
}

static pc_err_t check_subject(const char *ca, X509_REQ *csr, pc_diag_t *diag)
{
    const X509_NAME *name = X509_REQ_get_subject_name(csr);
    int cn = 0, serial = 0;

    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name, i));
        int nid = OBJ_obj2nid(obj);
        cn += nid == NID_commonName;
        serial += nid == NID_serialNumber;
        if (subject_nid_kept(nid) && cn <= 1 && serial <= 1)
            continue;
        char text[80];
        OBJ_obj2txt(text, sizeof(text), obj, 0);
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "cfssl CA \"%s\" would drop the subject attribute %s%s from the CSR; it "
                       "keeps one CN, one serialNumber and C, ST, L, street, postalCode, O, OU: "
                       "change the profile's subject format or use another CA",
                       ca, text, subject_nid_kept(nid) ? " (repeated)" : "");
    }
    return PC_OK;
}

static const char *gen_name_kind(int type)
{
    switch (type) {
    case GEN_OTHERNAME:
        return "otherName (e.g. UPN)";
    case GEN_URI:
        return "URI";
    case GEN_DIRNAME:
        return "directoryName";
    case GEN_RID:
        return "registeredID";
    default:
        return "unusual";
    }
}

static pc_err_t check_sans(const char *ca, const STACK_OF(X509_EXTENSION) * exts, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    GENERAL_NAMES *sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);

    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && err == PC_OK; i++) {
        int type = sk_GENERAL_NAME_value(sans, i)->type;
        if (type != GEN_DNS && type != GEN_IPADD && type != GEN_EMAIL)
            err = pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                          "cfssl CA \"%s\" would drop the CSR's %s subject alternative name; it "
                          "keeps DNS, IP and e-mail names only: change the profile's SANs or use "
                          "another CA",
                          ca, gen_name_kind(type));
    }
    GENERAL_NAMES_free(sans);
    return err;
}

/* Extensions whose content cfssl takes from the CSR (SANs) or replaces by the profile's. */
static bool ext_nid_handled(int nid)
{
    return nid == NID_subject_alt_name || nid == NID_ext_key_usage || nid == NID_key_usage ||
           nid == NID_basic_constraints || nid == NID_subject_key_identifier;
}

pc_err_t pc_ca_cfssl_check_csr(const char *ca, X509_REQ *csr, pc_diag_t *diag)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    pc_err_t err = check_subject(ca, csr, diag);

    ERR_clear_error(); /* a CSR without extensions leaves a harmless error behind */
    for (int i = 0; i < sk_X509_EXTENSION_num(exts) && err == PC_OK; i++) {
        const ASN1_OBJECT *obj = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
        if (ext_nid_handled(OBJ_obj2nid(obj)))
            continue;
        char oid[80];
        OBJ_obj2txt(oid, sizeof(oid), obj, 1);
        err = pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                      "cfssl CA \"%s\" does not copy the CSR's extension %s into certificates; "
                      "drop it from the profile (e.g. the SID extension) or use another CA",
                      ca, oid);
    }
    if (err == PC_OK)
        err = check_sans(ca, exts, diag);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return err;
}

/* ---- small conversions -------------------------------------------------------------------- */

pc_err_t pc_ca_cfssl_csr_pem(X509_REQ *csr, char **pem, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;

    *pem = NULL;
    if (bio == NULL || PEM_write_bio_X509_REQ(bio, csr) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot write the CSR as PEM");
        goto out_free_bio;
    }
    long len = BIO_get_mem_data(bio, &data);
    *pem = strndup(data, (size_t)len);
    if (*pem == NULL)
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory writing the CSR as PEM");
out_free_bio:
    BIO_free(bio);
    return err;
}

const char *pc_ca_cfssl_reason_name(pc_revoke_reason_t reason)
{
    switch (reason) {
    case PC_REVOKE_UNSPECIFIED:
        return "unspecified";
    case PC_REVOKE_KEY_COMPROMISE:
        return "keyCompromise";
    case PC_REVOKE_AFFILIATION_CHANGED:
        return "affiliationChanged";
    case PC_REVOKE_SUPERSEDED:
        return "superseded";
    case PC_REVOKE_CESSATION_OF_OPERATION:
        return "cessationOfOperation";
    default:
        return NULL;
    }
}
