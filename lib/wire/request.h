/*
 * request.h - checks a decoded Request before any work is done, and maps its profile to the
 * engine's own types. Cheap and allocation-light: runs on the loop thread.
 */
#ifndef PC_REQUEST_H
#define PC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "pc_err.h"
#include "pkcs.pb-c.h"
#include "keygen.h"
#include "san.h"
#include "vars.h"

#define PC_SCHEMA_VERSION 1u

/* Size limits of request fields; a request over any of them fails with PC_ERR_TOO_LARGE. */
#define PC_MAX_ID_LEN 128u           /* request_id, tenant_id, user_id, device_id */
#define PC_MAX_FORMAT_LEN 1024u      /* subject and SAN formats */
#define PC_MAX_ATTR_VALUE_LEN 1024u  /* one attribute value */
#define PC_MAX_ATTRS 64u             /* attributes per request */
#define PC_MAX_SANS 16u              /* SAN formats per profile */
#define PC_MAX_EKUS 16u              /* EKUs per profile */
#define PC_MAX_SPKI_LEN 2048u        /* device public key DER */
#define PC_MAX_PFX_LEN (256u * 1024) /* imported PFX */
#define PC_MAX_VALIDITY_DAYS 3650u

/* pc_request_validate checks schema version, ids, kind vs body, sizes and the deadline
 * (now_ms: ms since the epoch). PC_ERR_BAD_MESSAGE, PC_ERR_INVALID_PARAM, PC_ERR_TOO_LARGE or
 * PC_ERR_EXPIRED, naming the field. */
pc_err_t pc_request_validate(const Pkcs__V1__Request *req, int64_t now_ms, pc_diag_t *diag);

/* pc_request_check_fresh refuses a request a captured copy of which could be replayed: one
 * without created_at_ms (PC_ERR_INVALID_PARAM), made more than skew_ms in the future
 * (PC_ERR_INVALID_PARAM: a clock is wrong), or made more than max_age_ms before now_ms
 * (PC_ERR_EXPIRED: sent again, it needs a new created_at_ms and signature). The workers keep
 * request records longer than max_age_ms + skew_ms, so a replay within the age is answered from
 * its record and one after it is refused: never issued anew. Any thread. */
pc_err_t pc_request_check_fresh(const Pkcs__V1__Request *req, int64_t now_ms, int64_t max_age_ms,
                                int64_t skew_ms, pc_diag_t *diag);

/* pc_request_decode is what a worker does first with a consumed message of len bytes: unpack
 * the SignedRequest, check its signature with auth (NULL: no signers configured; an unsigned
 * message passes only with allow_unsigned) and unpack the signed bytes as a Request. *signed_req
 * and *req are set as far as decoding got (NULL otherwise) and are the caller's
 * (protobuf_c_message_free_unpacked), also on failure. A failure is a dead letter, diag its
 * reason: PC_ERR_BAD_MESSAGE for undecodable bytes, PC_ERR_UNAUTHENTICATED (diag starting
 * "refused: ") for a missing or wrong signature. What the request says is checked next
 * (pc_request_validate, pc_request_check_fresh). A pure function of its inputs: any thread. */
pc_err_t pc_request_decode(const pc_auth_t *auth, bool allow_unsigned, const void *msg, size_t len,
                           Pkcs__V1__SignedRequest **signed_req, Pkcs__V1__Request **req,
                           pc_diag_t *diag);

/* pc_request_digest writes the SHA-256 (lower-case hex) of what a request asks: its kind, tenant,
 * user and device ids and its body, not when it was made or by when it is due, so that the same
 * request sent again digests the same and a request id reused for other content does not.
 * PC_ERR_NOMEM. Any thread. */
pc_err_t pc_request_digest(const Pkcs__V1__Request *req, char hex[65], pc_diag_t *diag);

/* pc_profile_key_spec maps the profile's algorithm and size (0 = default) and checks it. */
pc_err_t pc_profile_key_spec(const Pkcs__V1__Profile *profile, pc_key_spec_t *spec,
                             pc_diag_t *diag);

/* pc_profile_cert_type maps USER/DEVICE; PC_ERR_INVALID_PARAM when unspecified. */
pc_err_t pc_profile_cert_type(const Pkcs__V1__Profile *profile, pc_cert_type_t *type,
                              pc_diag_t *diag);

/* pc_profile_key_usage maps key usage names to KU_* bits; an empty list gives the default for
 * the key algorithm. PC_ERR_INVALID_PARAM naming an unknown usage. */
pc_err_t pc_profile_key_usage(const Pkcs__V1__Profile *profile, const pc_key_spec_t *spec,
                              unsigned *bits, pc_diag_t *diag);

/* pc_profile_san_formats returns a malloc'd array of borrowed formats (caller frees the array
 * only); PC_ERR_INVALID_PARAM for an unspecified SAN type. */
pc_err_t pc_profile_san_formats(const Pkcs__V1__Profile *profile, pc_san_format_t **formats,
                                pc_diag_t *diag);

/* pc_profile_validity_days applies the default (365) to 0. */
unsigned pc_profile_validity_days(const Pkcs__V1__Profile *profile);

/* pc_issue_vars returns the attribute values of an ISSUE body as a malloc'd array *items of
 * *count borrowed name/value pairs (the caller frees the array only; NULL when empty). */
pc_err_t pc_issue_vars(const Pkcs__V1__IssueRequest *issue, pc_var_t **items, size_t *count,
                       pc_diag_t *diag);

#endif
