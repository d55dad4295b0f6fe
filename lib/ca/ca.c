/*
 * ca.c - what every CA backend shares: the template policy check, template lookup, serial
 * parsing, the calls callers make through the vtable, the synchronous wrappers for tools, and
 * freeing.
 *
 * The policy check lives here, not in a backend, so that no backend can sign something a
 * template forbids; the names part of it is name_policy.c's. The policy check and serial parsing
 * run on any thread; the calls follow the threads of ca.h.
 */
#include "ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "usage.h"

#define DEFAULT_MIN_RSA_BITS 2048u
#define DEFAULT_MIN_EC_BITS 256u

/* Appends text to buf (size n) at *pos, separated by ", " after the first item; truncates. */
static void list_append(char *buf, size_t n, size_t *pos, const char *text)
{
    if (*pos >= n)
        return;
    int w = snprintf(buf + *pos, n - *pos, "%s%s", *pos > 0 ? ", " : "", text);
    if (w > 0)
        *pos += (size_t)w;
    if (*pos >= n)
        *pos = n;
}

/* The short name of obj ("clientAuth"), or its dotted OID when OpenSSL has no name for it. */
static void obj_name(const ASN1_OBJECT *obj, char *buf, size_t n)
{
    int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef)
        snprintf(buf, n, "%s", OBJ_nid2sn(nid));
    else
        OBJ_obj2txt(buf, (int)n, obj, 1);
}

static void eku_allowed_list(const pc_ca_template_t *tmpl, char *buf, size_t n)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < tmpl->allowed_eku_count; i++) {
        char name[128];
        ASN1_OBJECT *obj = OBJ_txt2obj(tmpl->allowed_ekus[i], 0);
        if (obj == NULL) {
            ERR_clear_error();
            list_append(buf, n, &pos, tmpl->allowed_ekus[i]);
            continue;
        }
        obj_name(obj, name, sizeof(name));
        ASN1_OBJECT_free(obj);
        list_append(buf, n, &pos, name);
    }
    if (pos == 0)
        snprintf(buf, n, "none");
}

/* Whether the template lists the EKU obj; a template entry that is no OID is a config error. */
static pc_err_t eku_allowed(const pc_ca_template_t *tmpl, const ASN1_OBJECT *obj, bool *allowed,
                            pc_diag_t *diag)
{
    *allowed = false;
    for (size_t i = 0; i < tmpl->allowed_eku_count && !*allowed; i++) {
        ASN1_OBJECT *want = OBJ_txt2obj(tmpl->allowed_ekus[i], 0);
        if (want == NULL) {
            ERR_clear_error();
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "template \"%s\" lists an unknown EKU \"%s\"; fix the template to use "
                           "dotted OIDs such as 1.3.6.1.5.5.7.3.2",
                           tmpl->name, tmpl->allowed_ekus[i]);
        }
        *allowed = OBJ_cmp(want, obj) == 0;
        ASN1_OBJECT_free(want);
    }
    return PC_OK;
}

/* check_eku_list refuses an EKU of eku (may be NULL) that the template does not list. */
static pc_err_t check_eku_list(const pc_ca_template_t *tmpl, const STACK_OF(ASN1_OBJECT) * eku,
                               pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku) && err == PC_OK; i++) {
        const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
        bool allowed = false;
        err = eku_allowed(tmpl, obj, &allowed, diag);
        if (err == PC_OK && !allowed) {
            char name[128], oid[128], list[256];
            obj_name(obj, name, sizeof(name));
            OBJ_obj2txt(oid, sizeof(oid), obj, 1);
            eku_allowed_list(tmpl, list, sizeof(list));
            err = pc_fail(diag, PC_ERR_POLICY,
                          "template \"%s\" does not allow EKU %s (%s); allowed: %s", tmpl->name,
                          name, oid, list);
        }
    }
    return err;
}

static pc_err_t check_ekus(const pc_ca_template_t *tmpl, const STACK_OF(X509_EXTENSION) * exts,
                           pc_diag_t *diag)
{
    int crit = 0;
    EXTENDED_KEY_USAGE *eku = X509V3_get_d2i(exts, NID_ext_key_usage, &crit, NULL);

    if (eku == NULL) {
        if (crit != -1) /* present but undecodable (-2 means duplicated) */
            return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                           "the CSR's extended key usage extension is malformed or repeated");
        return PC_OK;
    }
    pc_err_t err = check_eku_list(tmpl, eku, diag);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return err;
}

/* check_key_usage_mask refuses a KU_* usage in asked that the template does not allow. */
static pc_err_t check_key_usage_mask(const pc_ca_template_t *tmpl, unsigned asked, pc_diag_t *diag)
{
    unsigned extra = asked & ~tmpl->allowed_key_usage;
    if (extra == 0)
        return PC_OK;
    char bad[256], allowed[256];
    pc_key_usage_text(extra, bad, sizeof(bad));
    pc_key_usage_text(tmpl->allowed_key_usage, allowed, sizeof(allowed));
    return pc_fail(diag, PC_ERR_POLICY, "template \"%s\" does not allow key usage %s; allowed: %s",
                   tmpl->name, bad, allowed);
}

static pc_err_t check_key_usage(const pc_ca_template_t *tmpl, const STACK_OF(X509_EXTENSION) * exts,
                                pc_diag_t *diag)
{
    int crit = 0;
    ASN1_BIT_STRING *bits = X509V3_get_d2i(exts, NID_key_usage, &crit, NULL);

    if (bits == NULL) {
        if (crit != -1)
            return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                           "the CSR's key usage extension is malformed or repeated");
        return PC_OK;
    }
    /* Same byte order as OpenSSL's own ex_kusage: first octet low, second octet high. */
    unsigned asked = 0;
    if (bits->length > 0)
        asked = bits->data[0];
    if (bits->length > 1)
        asked |= (unsigned)bits->data[1] << 8;
    ASN1_BIT_STRING_free(bits);
    return check_key_usage_mask(tmpl, asked, diag);
}

static pc_err_t check_key(const pc_ca_template_t *tmpl, const EVP_PKEY *key, pc_diag_t *diag)
{
    int type = EVP_PKEY_get_base_id(key);
    unsigned bits = (unsigned)EVP_PKEY_get_bits(key);

    if (type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS) {
        unsigned min = tmpl->min_rsa_bits != 0 ? tmpl->min_rsa_bits : DEFAULT_MIN_RSA_BITS;
        if (bits < min)
            return pc_fail(diag, PC_ERR_POLICY,
                           "template \"%s\" refuses an RSA-%u key: the minimum is RSA-%u",
                           tmpl->name, bits, min);
        return PC_OK;
    }
    if (type == EVP_PKEY_EC) {
        unsigned min = tmpl->min_ec_bits != 0 ? tmpl->min_ec_bits : DEFAULT_MIN_EC_BITS;
        if (bits < min)
            return pc_fail(diag, PC_ERR_POLICY,
                           "template \"%s\" refuses an EC key of %u bits: the minimum is %u bits",
                           tmpl->name, bits, min);
        return PC_OK;
    }
    return pc_fail(diag, PC_ERR_POLICY, "template \"%s\" refuses a %s key; use RSA or ECDSA",
                   tmpl->name, EVP_PKEY_get0_type_name(key));
}

static pc_err_t check_validity(const pc_ca_template_t *tmpl, unsigned validity_days,
                               pc_diag_t *diag)
{
    if (validity_days == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "a validity of 0 days was asked for; ask for at least 1 day");
    if (tmpl->max_validity_days == 0)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" has no maximum validity set, so it issues nothing; "
                       "set max_validity_days in the template",
                       tmpl->name);
    if (validity_days > tmpl->max_validity_days)
        return pc_fail(diag, PC_ERR_POLICY,
                       "template \"%s\" allows at most %u days of validity, %u were asked for",
                       tmpl->name, tmpl->max_validity_days, validity_days);
    return PC_OK;
}

static pc_err_t check_subject(const pc_ca_template_t *tmpl, const X509_NAME *subject,
                              pc_diag_t *diag)
{
    if (tmpl->subject_from_request || X509_NAME_entry_count(subject) == 0)
        return PC_OK;
    char text[256];
    X509_NAME_oneline(subject, text, sizeof(text));
    return pc_fail(diag, PC_ERR_POLICY,
                   "template \"%s\" builds the subject itself and refuses the requested subject "
                   "%s; leave the subject empty or allow \"supply in the request\" in the template",
                   tmpl->name, text);
}

/* check_name_list holds every SAN of sans (may be NULL) and, when the template says so, the
 * subject's CNs to the template's name policy. */
static pc_err_t check_name_list(const pc_ca_template_t *tmpl, const GENERAL_NAMES *sans,
                                const X509_NAME *subject, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && err == PC_OK; i++)
        err = pc_name_policy_check_san(&tmpl->names, tmpl->name, sk_GENERAL_NAME_value(sans, i),
                                       diag);
    if (err == PC_OK)
        err = pc_name_policy_check_subject(&tmpl->names, tmpl->name, subject, diag);
    return err;
}

/* check_names is check_name_list for the CSR's SAN extension and subject. */
static pc_err_t check_names(const pc_ca_template_t *tmpl, X509_REQ *csr,
                            const STACK_OF(X509_EXTENSION) * exts, pc_diag_t *diag)
{
    int crit = 0;
    GENERAL_NAMES *sans = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);

    if (sans == NULL && crit != -1)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the CSR's subject alternative name extension is malformed or repeated");
    pc_err_t err = check_name_list(tmpl, sans, X509_REQ_get_subject_name(csr), diag);
    GENERAL_NAMES_free(sans);
    return err;
}

pc_err_t pc_ca_template_check(const pc_ca_template_t *tmpl, X509_REQ *csr, unsigned validity_days,
                              pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);

    if (key == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE, "the CSR has no readable public key");
        goto out;
    }
    if (X509_REQ_verify(csr, key) <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO,
                          "the CSR's signature does not verify with its own public key; the "
                          "request was altered or signed with another key");
        goto out;
    }
    err = check_key(tmpl, key, diag);
    if (err == PC_OK)
        err = check_validity(tmpl, validity_days, diag);
    if (err == PC_OK)
        err = check_subject(tmpl, X509_REQ_get_subject_name(csr), diag);
    if (err != PC_OK)
        goto out;
    exts = X509_REQ_get_extensions(csr);
    ERR_clear_error(); /* a CSR without extensions leaves a harmless error behind */
    err = check_ekus(tmpl, exts, diag);
    if (err == PC_OK)
        err = check_key_usage(tmpl, exts, diag);
    if (err == PC_OK)
        err = check_names(tmpl, csr, exts, diag);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
out:
    return err;
}

pc_err_t pc_ca_template_check_request(const pc_ca_template_t *tmpl, const pc_ca_request_t *req,
                                      unsigned validity_days, pc_diag_t *diag)
{
    if (req == NULL || req->key == NULL || req->subject == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the request has no public key or subject");
    pc_err_t err = check_key(tmpl, req->key, diag);
    if (err == PC_OK)
        err = check_validity(tmpl, validity_days, diag);
    if (err == PC_OK)
        err = check_subject(tmpl, req->subject, diag);
    if (err == PC_OK)
        err = check_eku_list(tmpl, req->ekus, diag);
    if (err == PC_OK)
        err = check_key_usage_mask(tmpl, req->key_usage, diag);
    if (err == PC_OK)
        err = check_name_list(tmpl, req->sans, req->subject, diag);
    return err;
}

void pc_ca_template_free(pc_ca_template_t *tmpl)
{
    if (tmpl == NULL)
        return;
    for (size_t i = 0; i < tmpl->allowed_eku_count; i++)
        free(tmpl->allowed_ekus[i]);
    free(tmpl->allowed_ekus);
    pc_name_policy_clear(&tmpl->names);
    free(tmpl->name);
    free(tmpl);
}

const pc_ca_template_t *pc_ca_find_template(const pc_ca_t *ca, const char *name)
{
    if (ca == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < ca->template_count; i++)
        if (ca->templates[i] != NULL && ca->templates[i]->name != NULL &&
            strcmp(ca->templates[i]->name, name) == 0)
            return ca->templates[i];
    return NULL;
}

/* ---- calls ----------------------------------------------------------------------------- */

bool pc_ca_healthy(const pc_ca_t *ca)
{
    return ca->ops->healthy == NULL || ca->ops->healthy(ca);
}

void pc_ca_submit(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, pc_ca_done_fn done,
                  void *arg)
{
    ca->ops->submit(ca, csr, issue, done, arg);
}

void pc_ca_revoke(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_ca_done_fn done, void *arg)
{
    ca->ops->revoke(ca, rev, done, arg);
}

STACK_OF(X509) * pc_ca_get0_chain(pc_ca_t *ca)
{
    return ca->ops->get0_chain(ca);
}

static int oid_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* eku_text writes the EKUs of exts (or of a certificate's), sorted by OID, into buf. */
static void eku_text(EXTENDED_KEY_USAGE *eku, char *buf, size_t n)
{
    char oids[16][80];
    int count = 0;
    for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku) && count < 16; i++)
        OBJ_obj2txt(oids[count++], sizeof(oids[0]), sk_ASN1_OBJECT_value(eku, i), 1);
    qsort(oids, (size_t)count, sizeof(oids[0]), oid_cmp);
    buf[0] = '\0';
    for (int i = 0; i < count; i++) {
        char name[80];
        ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
        int nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
        ASN1_OBJECT_free(obj);
        snprintf(name, sizeof(name), "%.79s", nid != NID_undef ? OBJ_nid2sn(nid) : oids[i]);
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s", i > 0 ? "," : "", name);
    }
    int total = eku != NULL ? sk_ASN1_OBJECT_num(eku) : 0;
    if (total > count) { /* past 16 (no real certificate has so many), at least the count shows */
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, " and %d more", total - count);
    }
    if (count == 0)
        snprintf(buf, n, "none");
}

static unsigned ku_bits(const ASN1_BIT_STRING *bits)
{
    unsigned v = 0;
    if (bits != NULL && bits->length > 0)
        v = bits->data[0];
    if (bits != NULL && bits->length > 1)
        v |= (unsigned)bits->data[1] << 8;
    return v;
}

pc_err_t pc_ca_check_as_asked(X509 *cert, X509_REQ *csr, const pc_ca_issue_t *issue,
                              pc_diag_t *diag)
{
    char problems[768] = "";
    size_t used = 0;
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (used < sizeof(problems))                                                               \
            used += (size_t)snprintf(problems + used, sizeof(problems) - used, "%s",               \
                                     used > 0 ? "; " : "");                                        \
        if (used < sizeof(problems))                                                               \
            used += (size_t)snprintf(problems + used, sizeof(problems) - used, __VA_ARGS__);       \
    } while (0)
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) != 1)
        days = -1;
    /* to the nearest day: a backdated notBefore adds minutes, not days */
    int rounded = days + (secs >= 12 * 3600 ? 1 : 0);
    if (issue->validity_days != 0 && rounded != (int)issue->validity_days)
        PROBLEM("valid %d days where %u were asked", rounded, issue->validity_days);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    ERR_clear_error(); /* a CSR without extensions leaves a harmless error behind */
    EXTENDED_KEY_USAGE *want_eku = X509V3_get_d2i(exts, NID_ext_key_usage, NULL, NULL);
    EXTENDED_KEY_USAGE *got_eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    char want[256], got[256];
    eku_text(want_eku, want, sizeof(want));
    eku_text(got_eku, got, sizeof(got));
    if (strcmp(want, got) != 0)
        PROBLEM("extended key usages %s where %s were asked", got, want);
    if (issue->exact_key_usage) {
        ASN1_BIT_STRING *want_ku = X509V3_get_d2i(exts, NID_key_usage, NULL, NULL);
        ASN1_BIT_STRING *got_ku = X509_get_ext_d2i(cert, NID_key_usage, NULL, NULL);
        unsigned w = ku_bits(want_ku), g = ku_bits(got_ku);
        if (w != g) {
            pc_key_usage_text(g, got, sizeof(got));
            pc_key_usage_text(w, want, sizeof(want));
            PROBLEM("key usages %s where %s were asked", got, want);
        }
        ASN1_BIT_STRING_free(want_ku);
        ASN1_BIT_STRING_free(got_ku);
    }
#undef PROBLEM
    sk_ASN1_OBJECT_pop_free(want_eku, ASN1_OBJECT_free);
    sk_ASN1_OBJECT_pop_free(got_eku, ASN1_OBJECT_free);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    if (problems[0] == '\0')
        return PC_OK;
    return pc_fail(diag, PC_ERR_POLICY,
                   "the CA signed a certificate other than asked: %s; make the CA's profile "
                   "match the template, or the template the profile",
                   problems);
}

bool pc_ca_takes_requests(const pc_ca_t *ca)
{
    return ca->ops->submit_request != NULL;
}

void pc_ca_submit_request(pc_ca_t *ca, const pc_ca_request_t *req, const pc_ca_issue_t *issue,
                          pc_ca_done_fn done, void *arg)
{
    if (ca->ops->submit_request != NULL) {
        ca->ops->submit_request(ca, req, issue, done, arg);
        return;
    }
    pc_diag_t diag;
    done(arg,
         pc_fail(&diag, PC_ERR_NOT_SUPPORTED, "CA \"%s\" (%s) signs CSRs only; send it a CSR",
                 ca->name, ca->ops->kind),
         NULL, &diag);
}

bool pc_ca_takes_serial(const pc_ca_t *ca)
{
    return ca->takes_serial;
}

bool pc_ca_can_find_issued(const pc_ca_t *ca)
{
    return ca->ops->find_issued != NULL;
}

void pc_ca_find_issued(pc_ca_t *ca, const char *tenant, const char *request_id,
                       pc_ca_found_fn found, void *arg)
{
    if (ca->ops->find_issued != NULL) {
        ca->ops->find_issued(ca, tenant, request_id, found, arg);
        return;
    }
    pc_diag_t diag;
    found(arg,
          pc_fail(&diag, PC_ERR_NOT_SUPPORTED,
                  "CA \"%s\" (%s) cannot look certificates up by request", ca->name, ca->ops->kind),
          NULL, 0, &diag);
}

void pc_ca_close(pc_ca_t *ca, void (*closed)(void *arg), void *arg)
{
    ca->ops->close(ca, closed, arg);
}

pc_err_t pc_ca_serial_parse(const pc_ca_t *ca, const char *hex, BIGNUM **out, pc_diag_t *diag)
{
    size_t len = hex != NULL ? strlen(hex) : 0;

    *out = NULL;
    if (len == 0 || len > 64 || strspn(hex, "0123456789abcdefABCDEF") != len ||
        BN_hex2bn(out, hex) != (int)len) {
        BN_free(*out);
        *out = NULL;
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "\"%s\" is not a certificate serial number; give it in hex without "
                       "separators (CA \"%s\")",
                       hex != NULL ? hex : "", ca->name);
    }
    return PC_OK;
}

/* ---- synchronous calls, for CAs opened without a loop ----------------------------------- */

/* What a backend reported through its callback. */
typedef struct sync_outcome {
    bool called;
    pc_err_t err;
    X509 *cert;
    pc_ca_serial_t *serials;
    size_t count;
    pc_diag_t diag;
} sync_outcome_t;

static void sync_done(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    sync_outcome_t *outcome = arg;
    outcome->called = true;
    outcome->err = err;
    outcome->cert = cert;
    if (diag != NULL)
        outcome->diag = *diag;
}

static void sync_found(void *arg, pc_err_t err, const pc_ca_serial_t *serials, size_t count,
                       const pc_diag_t *diag)
{
    sync_outcome_t *outcome = arg;
    outcome->called = true;
    outcome->err = err;
    if (diag != NULL)
        outcome->diag = *diag;
    if (err != PC_OK || count == 0)
        return;
    if ((outcome->serials = malloc(count * sizeof(*serials))) == NULL) {
        outcome->err = pc_fail(&outcome->diag, PC_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(outcome->serials, serials, count * sizeof(*serials));
    outcome->count = count;
}

static pc_err_t sync_finish(const pc_ca_t *ca, sync_outcome_t *outcome, pc_diag_t *diag)
{
    if (!outcome->called)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "CA \"%s\" (%s) did not complete inside the call; its backend is broken",
                       ca->name, ca->ops->kind);
    if (outcome->err != PC_OK && diag != NULL)
        *diag = outcome->diag;
    return outcome->err;
}

static pc_err_t sync_precheck(const pc_ca_t *ca, pc_diag_t *diag)
{
    if (ca == NULL || ca->ops == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "no CA given");
    if (ca->loop != NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "CA \"%s\" (%s) runs on an event loop; it cannot be called "
                       "synchronously",
                       ca->name, ca->ops->kind);
    return PC_OK;
}

pc_err_t pc_ca_submit_sync(pc_ca_t *ca, X509_REQ *csr, const pc_ca_issue_t *issue, X509 **cert,
                           pc_diag_t *diag)
{
    sync_outcome_t outcome = {.called = false};

    *cert = NULL;
    pc_err_t err = sync_precheck(ca, diag);
    if (err != PC_OK)
        return err;
    ca->ops->submit(ca, csr, issue, sync_done, &outcome);
    err = sync_finish(ca, &outcome, diag);
    if (err == PC_OK)
        *cert = outcome.cert;
    else
        X509_free(outcome.cert);
    return err;
}

pc_err_t pc_ca_submit_request_sync(pc_ca_t *ca, const pc_ca_request_t *req,
                                   const pc_ca_issue_t *issue, X509 **cert, pc_diag_t *diag)
{
    sync_outcome_t outcome = {.called = false};

    *cert = NULL;
    pc_err_t err = sync_precheck(ca, diag);
    if (err != PC_OK)
        return err;
    pc_ca_submit_request(ca, req, issue, sync_done, &outcome);
    err = sync_finish(ca, &outcome, diag);
    if (err == PC_OK)
        *cert = outcome.cert;
    else
        X509_free(outcome.cert);
    return err;
}

pc_err_t pc_ca_revoke_sync(pc_ca_t *ca, const pc_ca_revoke_t *rev, pc_diag_t *diag)
{
    sync_outcome_t outcome = {.called = false};

    pc_err_t err = sync_precheck(ca, diag);
    if (err != PC_OK)
        return err;
    ca->ops->revoke(ca, rev, sync_done, &outcome);
    X509_free(outcome.cert);
    return sync_finish(ca, &outcome, diag);
}

pc_err_t pc_ca_find_issued_sync(pc_ca_t *ca, const char *tenant, const char *request_id,
                                pc_ca_serial_t **serials, size_t *count, pc_diag_t *diag)
{
    sync_outcome_t outcome = {.called = false};

    *serials = NULL;
    *count = 0;
    pc_err_t err = sync_precheck(ca, diag);
    if (err != PC_OK)
        return err;
    pc_ca_find_issued(ca, tenant, request_id, sync_found, &outcome);
    err = sync_finish(ca, &outcome, diag);
    if (err != PC_OK) {
        free(outcome.serials);
        return err;
    }
    *serials = outcome.serials;
    *count = outcome.count;
    return PC_OK;
}

void pc_ca_base_clear(pc_ca_t *ca)
{
    if (ca == NULL)
        return;
    for (size_t i = 0; i < ca->template_count; i++)
        pc_ca_template_free(ca->templates[i]);
    free(ca->templates);
    free(ca->name);
    ca->templates = NULL;
    ca->template_count = 0;
    ca->name = NULL;
}

void pc_ca_free(pc_ca_t *ca)
{
    if (ca == NULL)
        return;
    ca->ops->free(ca);
}
