/*
 * vars.h - the {{variables}} of subject-name and SAN formats.
 *
 * Knows the variable names of DESIGN.md (user and device lists), matches them
 * case-insensitively, and tells which certificate type may use which. Pure functions, any thread.
 */
#ifndef PC_VARS_H
#define PC_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "pc_err.h"

typedef enum pc_cert_type {
    PC_CERT_USER = 1,
    PC_CERT_DEVICE = 2,
} pc_cert_type_t;

/* One attribute value from the request, e.g. {"UserPrincipalName", "ann@contoso.com"}. */
typedef struct pc_var {
    const char *name;
    const char *value;
} pc_var_t;

/* The attribute values of one request (borrowed; names matched case-insensitively). */
typedef struct pc_vars {
    const pc_var_t *items;
    size_t count;
} pc_vars_t;

/* pc_vars_allowed tells whether name (case-insensitive) is a variable certificates of type may
 * use; *known_other (may be NULL) is set when it is a known variable of the other type only. */
bool pc_vars_allowed(const char *name, size_t name_len, pc_cert_type_t type, bool *known_other);

/* pc_vars_lookup returns the borrowed value of name (case-insensitive) in vars, or NULL. */
const char *pc_vars_lookup(const pc_vars_t *vars, const char *name, size_t name_len);

/* pc_vars_expand expands every {{Variable}} of format into plain text (for SAN formats, where a
 * value is a whole string and no syntax applies). *out is malloc'd, caller frees. Fails with
 * PC_ERR_INVALID_PARAM naming the variable that is unknown, not allowed for type, or without a
 * value, or on unbalanced braces or invalid UTF-8. */
pc_err_t pc_vars_expand(const char *format, pc_cert_type_t type, const pc_vars_t *vars, char **out,
                        pc_diag_t *diag);

#endif
