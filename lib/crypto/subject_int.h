/*
 * subject_int.h - private to lib/crypto: what vars.c, subject.c and san.c share, the one place
 * that scans a {{variable}} reference and resolves it to its value with the project's error
 * messages. Any thread.
 */
#ifndef PC_SUBJECT_INT_H
#define PC_SUBJECT_INT_H

#ifndef PC_INSIDE_CRYPTO
#error "subject_int.h is private to lib/crypto: use subject.h, san.h or vars.h"
#endif

#include <stdbool.h>
#include <stddef.h>

#include "pc_err.h"
#include "text.h"
#include "vars.h"

/* pc_vars_ref_scan reads the reference that starts with "{{" at s[pos]: on success *name_off and
 * *name_len delimit the name with surrounding whitespace trimmed, and *end is the offset just
 * past the closing "}}". PC_ERR_INVALID_PARAM (naming the position) when there is no closing
 * "}}" before the next "{{" or the end, or when the name is empty. */
pc_err_t pc_vars_ref_scan(const char *s, size_t pos, size_t *name_off, size_t *name_len,
                          size_t *end, pc_diag_t *diag);

/* pc_vars_resolve sets *value to the borrowed value of variable name for a certificate of type.
 * PC_ERR_INVALID_PARAM naming the variable when it is unknown, a user variable in a device
 * certificate, without a value in vars, or when its value is not valid UTF-8. */
pc_err_t pc_vars_resolve(const char *name, size_t name_len, pc_cert_type_t type,
                         const pc_vars_t *vars, const char **value, pc_diag_t *diag);

#endif
