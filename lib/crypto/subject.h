/*
 * subject.h - subject names from a format with {{variables}}, as CertStrToName reads X.500 text.
 *
 * A substituted value is always data: it lands, byte for byte, in the one attribute it was
 * placed in, whatever characters it holds. Any thread.
 */
#ifndef PC_SUBJECT_H
#define PC_SUBJECT_H

#include <openssl/x509.h>

#include "pc_err.h"
#include "vars.h"

/* pc_subject_render parses format (e.g. "CN={{UserName}},OU=Staff,O=\"Contoso, Ltd\"") with the
 * variables of vars for a certificate of type and returns a new X509_NAME (caller frees).
 * RDN types: CN, E, OU, O, L, ST, C, DC, SERIALNUMBER, G, SN, T, STREET, POSTALCODE and dotted
 * OIDs; ',' ';' separate RDNs, '+' joins a multi-valued RDN; quoted values and backslash escapes.
 * Errors (PC_ERR_INVALID_PARAM, message names the culprit): unknown RDN type, unknown variable,
 * variable not allowed for type, variable without value, unbalanced braces or quotes, invalid
 * UTF-8, value over its X.520 upper bound unless allow_long, empty format. */
pc_err_t pc_subject_render(const char *format, pc_cert_type_t type, const pc_vars_t *vars,
                           bool allow_long, X509_NAME **out, pc_diag_t *diag);

/* pc_name_text writes name as RFC 2253 text in its own UTF-8 (nothing escaped as \\XX) into
 * buf, cut at a character boundary to fit len bytes; false when it cannot be printed (buf is then
 * ""). Any thread. */
bool pc_name_text(const X509_NAME *name, char *buf, size_t len);

#endif
