/*
 * request.c - the gate a request passes before any key is made: schema version, ids, the body
 * matching the kind, every size limit, the deadline; and the mapping of a profile to the
 * engine's types. Nothing here allocates much or blocks, so it runs on the loop thread.
 */
#include "request.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "usage.h"

static pc_err_t check_id(const char *field, const char *value, bool required, pc_diag_t *diag)
{
    size_t len = value == NULL ? 0 : strlen(value);
    if (required && len == 0)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "%s is missing; every request needs one", field);
    if (len > PC_MAX_ID_LEN)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "%s is %zu bytes, over the limit of %u", field, len,
                       PC_MAX_ID_LEN);
    return PC_OK;
}

static pc_err_t check_len(const char *field, size_t len, size_t max, pc_diag_t *diag)
{
    if (len > max)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "%s is %zu bytes, over the limit of %zu", field, len,
                       max);
    return PC_OK;
}

static pc_err_t check_body(const Pkcs__V1__Request *req, pc_diag_t *diag)
{
    static const struct {
        Pkcs__V1__Kind kind;
        Pkcs__V1__Request__BodyCase body;
        const char *name;
    } pairs[] = {
        {PKCS__V1__KIND__ISSUE, PKCS__V1__REQUEST__BODY_ISSUE, "issue"},
        {PKCS__V1__KIND__REVOKE, PKCS__V1__REQUEST__BODY_REVOKE, "revoke"},
        {PKCS__V1__KIND__IMPORT_PFX, PKCS__V1__REQUEST__BODY_IMPORT_PFX, "importPfx"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        if (pairs[i].kind != req->kind)
            continue;
        if (req->body_case != pairs[i].body)
            return pc_fail(
                diag, PC_ERR_BAD_MESSAGE, "kind %s needs the \"%s\" body, which is missing",
                protobuf_c_enum_descriptor_get_value(&pkcs__v1__kind__descriptor, req->kind)->name,
                pairs[i].name);
        return PC_OK;
    }
    return pc_fail(diag, PC_ERR_BAD_MESSAGE, "kind %d is not one of ISSUE, REVOKE, IMPORT_PFX",
                   (int)req->kind);
}

static pc_err_t check_profile(const Pkcs__V1__Profile *p, pc_diag_t *diag)
{
    pc_err_t err;
    if (p == NULL)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "issue.profile is missing");
    if ((err = check_len("profile.subjectFormat", strlen(p->subject_format), PC_MAX_FORMAT_LEN,
                         diag)) != PC_OK)
        return err;
    if (p->n_subject_alternative_names > PC_MAX_SANS)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "profile has %zu SANs, over the limit of %u",
                       p->n_subject_alternative_names, PC_MAX_SANS);
    for (size_t i = 0; i < p->n_subject_alternative_names; i++) {
        const char *f = p->subject_alternative_names[i]->format;
        if ((err = check_len("profile SAN format", strlen(f), PC_MAX_FORMAT_LEN, diag)) != PC_OK)
            return err;
    }
    if (p->n_extended_key_usages > PC_MAX_EKUS)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "profile has %zu EKUs, over the limit of %u",
                       p->n_extended_key_usages, PC_MAX_EKUS);
    if (p->validity_days > PC_MAX_VALIDITY_DAYS)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "profile.validityDays %u is over the limit of %u days", p->validity_days,
                       PC_MAX_VALIDITY_DAYS);
    if (p->renewal_threshold_percent > 99)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "profile.renewalThresholdPercent %u must be between 1 and 99",
                       p->renewal_threshold_percent);
    if (p->ca_name[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "profile.caName is missing");
    if (p->template_name[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "profile.templateName is missing");
    return PC_OK;
}

static pc_err_t check_issue(const Pkcs__V1__IssueRequest *issue, pc_diag_t *diag)
{
    pc_err_t err = check_profile(issue->profile, diag);
    if (err != PC_OK)
        return err;
    if (issue->n_attributes > PC_MAX_ATTRS)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "request has %zu attributes, over the limit of %u",
                       issue->n_attributes, PC_MAX_ATTRS);
    for (size_t i = 0; i < issue->n_attributes; i++) {
        const char *v = issue->attributes[i]->value;
        if (v != NULL && strlen(v) > PC_MAX_ATTR_VALUE_LEN)
            return pc_fail(diag, PC_ERR_TOO_LARGE,
                           "attribute %s is %zu bytes, over the limit of %u",
                           issue->attributes[i]->key, strlen(v), PC_MAX_ATTR_VALUE_LEN);
    }
    if (issue->device_public_key.len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "issue.devicePublicKey is missing; the PFX is encrypted to it");
    err = check_len("issue.renewsSerialNumber", strlen(issue->renews_serial_number), 64, diag);
    if (err != PC_OK)
        return err;
    return check_len("issue.devicePublicKey", issue->device_public_key.len, PC_MAX_SPKI_LEN, diag);
}

static pc_err_t check_import(const Pkcs__V1__ImportPfxRequest *imp, pc_diag_t *diag)
{
    pc_err_t err = check_len("importPfx.pfx", imp->pfx.len, PC_MAX_PFX_LEN, diag);
    if (err != PC_OK)
        return err;
    if (imp->pfx.len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "importPfx.pfx is empty");
    if (imp->device_public_key.len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "importPfx.devicePublicKey is missing");
    return check_len("importPfx.devicePublicKey", imp->device_public_key.len, PC_MAX_SPKI_LEN,
                     diag);
}

/* A REVOKE names what it revokes by its scope, each with what that scope needs. */
static pc_err_t check_revoke(const Pkcs__V1__Request *req, pc_diag_t *diag)
{
    const Pkcs__V1__RevokeRequest *rev = req->revoke;
    pc_err_t err;
    if ((err = check_id("revoke.targetRequestId", rev->target_request_id, false, diag)) != PC_OK ||
        (err = check_id("revoke.profileId", rev->profile_id, false, diag)) != PC_OK ||
        (err = check_id("revoke.caName", rev->ca_name, false, diag)) != PC_OK)
        return err;
    switch (rev->scope) {
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_SERIAL:
        if (rev->serial_number[0] == '\0' || rev->ca_name[0] == '\0')
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "revoke.serialNumber or revoke.caName is missing; give both, or a "
                           "scope (DEVICE, USER, REQUEST) that names the certificates another way");
        return check_len("revoke.serialNumber", strlen(rev->serial_number), 64, diag);
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_DEVICE:
        return req->device_id[0] != '\0'
                   ? PC_OK
                   : pc_fail(diag, PC_ERR_INVALID_PARAM,
                             "revoke scope DEVICE needs the request's deviceId");
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_USER:
        return req->user_id[0] != '\0' ? PC_OK
                                       : pc_fail(diag, PC_ERR_INVALID_PARAM,
                                                 "revoke scope USER needs the request's userId");
    case PKCS__V1__REVOKE_SCOPE__REVOKE_SCOPE_REQUEST:
        return rev->target_request_id[0] != '\0'
                   ? PC_OK
                   : pc_fail(diag, PC_ERR_INVALID_PARAM,
                             "revoke scope REQUEST needs revoke.targetRequestId");
    default:
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "revoke.scope %d is unknown; use SERIAL, DEVICE, USER or REQUEST",
                       (int)rev->scope);
    }
}

static pc_err_t check_kind_body(const Pkcs__V1__Request *req, pc_diag_t *diag)
{
    switch (req->body_case) {
    case PKCS__V1__REQUEST__BODY_ISSUE:
        return check_issue(req->issue, diag);
    case PKCS__V1__REQUEST__BODY_IMPORT_PFX:
        return check_import(req->import_pfx, diag);
    case PKCS__V1__REQUEST__BODY_REVOKE:
        return check_revoke(req, diag);
    default:
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "request has no body");
    }
}

pc_err_t pc_request_validate(const Pkcs__V1__Request *req, int64_t now_ms, pc_diag_t *diag)
{
    pc_err_t err;
    if (req->schema_version != PC_SCHEMA_VERSION)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "schemaVersion %u is not supported; this worker reads version %u",
                       req->schema_version, PC_SCHEMA_VERSION);
    if ((err = check_id("requestId", req->request_id, true, diag)) != PC_OK ||
        (err = check_id("tenantId", req->tenant_id, true, diag)) != PC_OK ||
        (err = check_id("userId", req->user_id, false, diag)) != PC_OK ||
        (err = check_id("deviceId", req->device_id, false, diag)) != PC_OK)
        return err;
    if ((err = check_body(req, diag)) != PC_OK)
        return err;
    /* The deadline is the sender's number: far in the past, now_ms - deadline_ms overflows an
     * int64_t, so the (positive) difference is taken in uint64_t, where it is exact. */
    if (req->deadline_ms != 0 && req->deadline_ms < now_ms)
        return pc_fail(diag, PC_ERR_EXPIRED,
                       "request %s expired %llu ms ago (deadline %lld); upstream must send a "
                       "new request",
                       req->request_id,
                       (unsigned long long)((uint64_t)now_ms - (uint64_t)req->deadline_ms),
                       (long long)req->deadline_ms);
    return check_kind_body(req, diag);
}

pc_err_t pc_request_decode(const pc_auth_t *auth, bool allow_unsigned, const void *msg, size_t len,
                           Pkcs__V1__SignedRequest **signed_req, Pkcs__V1__Request **req,
                           pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    *req = NULL;
    *signed_req = pkcs__v1__signed_request__unpack(NULL, len, msg);
    if (*signed_req == NULL)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "message is not a pkcs.v1.SignedRequest (protobuf decoding failed)");
    const Pkcs__V1__SignedRequest *sr = *signed_req;
    if (sr->signature.len == 0 && allow_unsigned)
        err = PC_OK;
    else if (auth == NULL)
        err = pc_fail(diag, PC_ERR_UNAUTHENTICATED,
                      "request is signed by %s but no signers are configured on this worker",
                      sr->signer_key_id);
    else
        err = pc_auth_verify(auth, sr, diag);
    if (err != PC_OK) {
        pc_diag_prefix(diag, "refused");
        return err;
    }
    *req = pkcs__v1__request__unpack(NULL, sr->request.len, sr->request.data);
    if (*req == NULL)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "signed bytes are not a pkcs.v1.Request (protobuf decoding failed)");
    return PC_OK;
}

pc_err_t pc_profile_key_spec(const Pkcs__V1__Profile *profile, pc_key_spec_t *spec, pc_diag_t *diag)
{
    switch (profile->key_algorithm) {
    case PKCS__V1__KEY_ALGORITHM__RSA:
        spec->alg = PC_KEY_RSA;
        spec->bits = profile->key_size == 0 ? 2048 : profile->key_size;
        break;
    case PKCS__V1__KEY_ALGORITHM__EC:
        spec->alg = PC_KEY_EC;
        spec->bits = profile->key_size == 0 ? 256 : profile->key_size;
        break;
    default:
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "profile.keyAlgorithm is missing or unknown; use RSA or EC");
    }
    return pc_key_spec_check(spec, diag);
}

pc_err_t pc_profile_cert_type(const Pkcs__V1__Profile *profile, pc_cert_type_t *type,
                              pc_diag_t *diag)
{
    switch (profile->certificate_type) {
    case PKCS__V1__CERTIFICATE_TYPE__USER:
        *type = PC_CERT_USER;
        return PC_OK;
    case PKCS__V1__CERTIFICATE_TYPE__DEVICE:
        *type = PC_CERT_DEVICE;
        return PC_OK;
    default:
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "profile.certificateType is missing; use USER or DEVICE");
    }
}

pc_err_t pc_profile_key_usage(const Pkcs__V1__Profile *profile, const pc_key_spec_t *spec,
                              unsigned *bits, pc_diag_t *diag)
{
    *bits = 0;
    for (size_t i = 0; i < profile->n_key_usages; i++) {
        unsigned bit;
        pc_err_t err = pc_key_usage_parse(profile->key_usages[i], &bit, diag);
        if (err != PC_OK)
            return err;
        *bits |= bit;
    }
    if (*bits == 0)
        *bits = KU_DIGITAL_SIGNATURE |
                (spec->alg == PC_KEY_RSA ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT);
    return PC_OK;
}

pc_err_t pc_profile_san_formats(const Pkcs__V1__Profile *profile, pc_san_format_t **formats,
                                pc_diag_t *diag)
{
    size_t n = profile->n_subject_alternative_names;
    *formats = NULL;
    if (n == 0)
        return PC_OK;
    pc_san_format_t *f = calloc(n, sizeof(*f));
    if (f == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for SAN formats");
    for (size_t i = 0; i < n; i++) {
        const Pkcs__V1__SanFormat *s = profile->subject_alternative_names[i];
        switch (s->type) {
        case PKCS__V1__SAN_TYPE__UPN:
            f[i].type = PC_SAN_UPN;
            break;
        case PKCS__V1__SAN_TYPE__EMAIL:
            f[i].type = PC_SAN_EMAIL;
            break;
        case PKCS__V1__SAN_TYPE__DNS:
            f[i].type = PC_SAN_DNS;
            break;
        case PKCS__V1__SAN_TYPE__URI:
            f[i].type = PC_SAN_URI;
            break;
        default:
            free(f);
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "SAN %zu has no type; use UPN, EMAIL, DNS or URI", i + 1);
        }
        f[i].format = s->format;
    }
    *formats = f;
    return PC_OK;
}

unsigned pc_profile_validity_days(const Pkcs__V1__Profile *profile)
{
    return profile->validity_days == 0 ? 365 : profile->validity_days;
}

pc_err_t pc_issue_vars(const Pkcs__V1__IssueRequest *issue, pc_var_t **items, size_t *count,
                       pc_diag_t *diag)
{
    *items = NULL;
    *count = 0;
    if (issue->n_attributes == 0)
        return PC_OK;
    pc_var_t *vars = calloc(issue->n_attributes, sizeof(*vars));
    if (vars == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for attributes");
    for (size_t i = 0; i < issue->n_attributes; i++) {
        vars[i].name = issue->attributes[i]->key;
        vars[i].value = issue->attributes[i]->value;
    }
    *items = vars;
    *count = issue->n_attributes;
    return PC_OK;
}

/* digest_field feeds one length-prefixed field, so that no two field sequences feed the same
 * bytes ("ab" + "c" is not "a" + "bc"). */
static bool digest_field(EVP_MD_CTX *ctx, const void *data, size_t len)
{
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return EVP_DigestUpdate(ctx, prefix, sizeof(prefix)) == 1 &&
           (len == 0 || EVP_DigestUpdate(ctx, data, len) == 1);
}

pc_err_t pc_request_check_fresh(const Pkcs__V1__Request *req, int64_t now_ms, int64_t max_age_ms,
                                int64_t skew_ms, pc_diag_t *diag)
{
    int64_t made = req->created_at_ms;
    if (made <= 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "request %s: createdAtMs is required (when upstream made the request, ms "
                       "since the epoch): without it a captured request could be replayed forever",
                       req->request_id);
    /* in unsigned arithmetic: a time from outside must not overflow a subtraction */
    if (made > now_ms && (uint64_t)made - (uint64_t)now_ms > (uint64_t)skew_ms)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "request %s: createdAtMs is %llu ms ahead of this worker's clock, more "
                       "than the skew allowed (worker.clock_skew_ms %lld): check the clocks",
                       req->request_id, (unsigned long long)((uint64_t)made - (uint64_t)now_ms),
                       (long long)skew_ms);
    if (made < now_ms && (uint64_t)now_ms - (uint64_t)made > (uint64_t)max_age_ms)
        return pc_fail(diag, PC_ERR_EXPIRED,
                       "request %s was made %llu s ago, longer than a request stays valid "
                       "(worker.max_request_age_s %lld): send it again, newly made and signed",
                       req->request_id,
                       (unsigned long long)(((uint64_t)now_ms - (uint64_t)made) / 1000),
                       (long long)(max_age_ms / 1000));
    return PC_OK;
}

pc_err_t pc_request_digest(const Pkcs__V1__Request *req, char hex[65], pc_diag_t *diag)
{
    const ProtobufCMessage *body = NULL;
    switch (req->body_case) {
    case PKCS__V1__REQUEST__BODY_ISSUE:
        body = &req->issue->base;
        break;
    case PKCS__V1__REQUEST__BODY_REVOKE:
        body = &req->revoke->base;
        break;
    case PKCS__V1__REQUEST__BODY_IMPORT_PFX:
        body = &req->import_pfx->base;
        break;
    default:
        break;
    }
    size_t body_len = body != NULL ? protobuf_c_message_get_packed_size(body) : 0;
    unsigned char *packed = malloc(body_len == 0 ? 1 : body_len);
    unsigned char md[32];
    unsigned int md_len = 0;
    uint32_t kind = (uint32_t)req->kind;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = packed != NULL && ctx != NULL;
    if (ok && body != NULL)
        protobuf_c_message_pack(body, packed);
    ok = ok && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         digest_field(ctx, &kind, sizeof(kind)) &&
         digest_field(ctx, req->tenant_id, strlen(req->tenant_id)) &&
         digest_field(ctx, req->user_id, strlen(req->user_id)) &&
         digest_field(ctx, req->device_id, strlen(req->device_id)) &&
         digest_field(ctx, packed, body_len) && EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
    EVP_MD_CTX_free(ctx);
    free(packed);
    if (!ok)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "cannot digest request %s", req->request_id);
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return PC_OK;
}
