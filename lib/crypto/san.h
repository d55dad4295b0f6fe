/*
 * san.h - subject alternative names and the SID extension, from formats with {{variables}}.
 * Any thread.
 */
#ifndef PC_SAN_H
#define PC_SAN_H

#include <openssl/x509v3.h>

#include "pc_err.h"
#include "vars.h"

typedef enum pc_san_type {
    PC_SAN_UPN = 1, /* otherName 1.3.6.1.4.1.311.20.2.3, UTF8String */
    PC_SAN_EMAIL,   /* rfc822Name */
    PC_SAN_DNS,     /* dNSName */
    PC_SAN_URI,     /* uniformResourceIdentifier */
} pc_san_type_t;

typedef struct pc_san_format {
    pc_san_type_t type;
    const char *format; /* e.g. "{{UserPrincipalName}}" */
} pc_san_format_t;

/* pc_san_render expands each format and appends one GENERAL_NAME per entry to a new
 * GENERAL_NAMES (caller frees with GENERAL_NAMES_free). Fails with PC_ERR_INVALID_PARAM on a
 * variable error (see pc_vars_expand), an empty result, or a value that is not a valid email
 * address / DNS name / URI for its type. */
pc_err_t pc_san_render(const pc_san_format_t *formats, size_t count, pc_cert_type_t type,
                       const pc_vars_t *vars, GENERAL_NAMES **out, pc_diag_t *diag);

/* Room for what pc_san_problem may write. */
#define PC_SAN_PROBLEM_MAX 256

/* pc_san_problem tells what makes s[0..len) unfit as a SAN of type, as a phrase ("label
 * \"a_b\" is not letters, digits and inner hyphens; ..."), or NULL when it is fit: the syntax
 * that rendering and the CAs' name policy (name_policy.h) share. DNS: LDH labels of 1-63
 * characters, at most 253 in all, ASCII only (an international name as its xn-- A-label, not
 * decoded), no empty label or trailing dot, a last label not all digits; a first label "*" is
 * syntax, whether it is allowed is a template's call. The phrase may be written into buf (size
 * bytes, PC_SAN_PROBLEM_MAX is enough). Any thread. */
const char *pc_san_problem(pc_san_type_t type, const char *s, size_t len, char *buf, size_t size);

/* The OID of Microsoft's SID security extension. */
#define PC_SID_EXTENSION_OID "1.3.6.1.4.1.311.25.2"

/* pc_sid_extension_is tells whether ext is the SID security extension (by its OID). Any
 * thread. */
bool pc_sid_extension_is(const X509_EXTENSION *ext);

/* pc_sid_extension_new builds the Microsoft SID security extension (1.3.6.1.4.1.311.25.2,
 * non-critical) holding sid (text form "S-1-5-21-..."); caller frees. PC_ERR_INVALID_PARAM when
 * sid is not of that form. */
pc_err_t pc_sid_extension_new(const char *sid, X509_EXTENSION **out, pc_diag_t *diag);

/* pc_san_text writes cert's subject alternative names as "DNS:a, email:b, UPN:c, URI:d" into
 * buf (cut to fit len bytes; "" when it has none). Any thread. */
void pc_san_text(const X509 *cert, char *buf, size_t len);

#endif
