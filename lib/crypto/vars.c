/*
 * vars.c - the {{variables}} of subject-name and SAN formats: which names exist, which
 * certificate type may use which, and plain expansion for SAN formats.
 * Pure functions on the caller's data; any thread.
 */
#include "vars.h"
#include "subject_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOR_USER 1u
#define FOR_DEVICE 2u
#define FOR_BOTH (FOR_USER | FOR_DEVICE)

/* DESIGN.md "Subject names and SANs". User certificates may use the device variables too; the
 * user list's SERIALNUMBER and the device list's SerialNumber are one name (case-insensitive). */
static const struct variable {
    const char *name;
    unsigned types;
} variables[] = {
    {"UserName", FOR_USER},
    {"UserPrincipalName", FOR_USER},
    {"EmailAddress", FOR_USER},
    {"OnPrem_Distinguished_Name", FOR_USER},
    {"onPremisesSamAccountName", FOR_USER},
    {"AAD_Device_ID", FOR_BOTH},
    {"AzureADDeviceId", FOR_BOTH},
    {"DeviceId", FOR_BOTH},
    {"Device_Serial", FOR_BOTH},
    {"SerialNumber", FOR_BOTH},
    {"Device_IMEI", FOR_BOTH},
    {"IMEINumber", FOR_BOTH},
    {"IMEI", FOR_BOTH},
    {"WiFiMacAddress", FOR_BOTH},
    {"DeviceName", FOR_BOTH},
    {"FullyQualifiedDomainName", FOR_BOTH},
    {"MEID", FOR_BOTH},
};

#define VARIABLE_COUNT (sizeof(variables) / sizeof(variables[0]))

/* Longest name quoted back in a message; names come from formats and may be anything. */
#define NAME_QUOTE_MAX 64

static unsigned type_mask(pc_cert_type_t type)
{
    return type == PC_CERT_USER ? FOR_USER : type == PC_CERT_DEVICE ? FOR_DEVICE : 0u;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ASCII-only case-insensitive compare of a counted name with a C string; strncasecmp would
 * follow the locale (Turkish dotless i). */
static bool name_equal(const char *name, size_t name_len, const char *cstr)
{
    size_t i;

    for (i = 0; i < name_len; i++) {
        if (cstr[i] == '\0' || ascii_lower(name[i]) != ascii_lower(cstr[i]))
            return false;
    }
    return cstr[i] == '\0';
}

static const struct variable *find_variable(const char *name, size_t name_len)
{
    for (size_t i = 0; i < VARIABLE_COUNT; i++) {
        if (name_equal(name, name_len, variables[i].name))
            return &variables[i];
    }
    return NULL;
}

/* Writes the names usable by mask as "A, B, C" into out (truncated if need be). */
static void list_names(unsigned mask, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < VARIABLE_COUNT && used < cap; i++) {
        if ((variables[i].types & mask) == 0)
            continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", variables[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static const char *type_name(pc_cert_type_t type)
{
    return type == PC_CERT_DEVICE ? "device" : "user";
}

bool pc_vars_allowed(const char *name, size_t name_len, pc_cert_type_t type, bool *known_other)
{
    const struct variable *var = find_variable(name, name_len);

    if (known_other != NULL)
        *known_other = false;
    if (var == NULL)
        return false;
    if ((var->types & type_mask(type)) != 0)
        return true;
    if (known_other != NULL)
        *known_other = true;
    return false;
}

const char *pc_vars_lookup(const pc_vars_t *vars, const char *name, size_t name_len)
{
    if (vars == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < vars->count; i++) {
        const pc_var_t *var = &vars->items[i];
        if (var->name != NULL && var->value != NULL && name_equal(name, name_len, var->name))
            return var->value;
    }
    return NULL;
}

pc_err_t pc_vars_resolve(const char *name, size_t name_len, pc_cert_type_t type,
                         const pc_vars_t *vars, const char **value, pc_diag_t *diag)
{
    int shown = pc_utf8_clip(name, name_len, NAME_QUOTE_MAX);
    char names[400];
    bool known_other;
    size_t bad;

    *value = NULL;
    if (!pc_vars_allowed(name, name_len, type, &known_other)) {
        list_names(type_mask(type), names, sizeof(names));
        if (known_other)
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "variable {{%.*s}} is a user variable; %s certificates may use only: %s",
                           shown, name, type_name(type), names);
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "unknown variable {{%.*s}}; %s certificates may use: %s", shown, name,
                       type_name(type), names);
    }
    const char *found = pc_vars_lookup(vars, name, name_len);
    if (found == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "variable {{%.*s}} has no value in this request; the %s must report it, "
                       "or remove it from the profile",
                       shown, name, type == PC_CERT_DEVICE ? "device" : "user or device");
    if (!pc_utf8_valid(found, strlen(found), &bad))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "value of variable {{%.*s}} is not valid UTF-8 (byte %zu)", shown, name,
                       bad + 1);
    *value = found;
    return PC_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

pc_err_t pc_vars_ref_scan(const char *s, size_t pos, size_t *name_off, size_t *name_len,
                          size_t *end, pc_diag_t *diag)
{
    size_t i = pos + 2;

    while (s[i] != '\0' && !(s[i] == '}' && s[i + 1] == '}')) {
        if (s[i] == '{' && s[i + 1] == '{')
            break;
        i++;
    }
    if (s[i] != '}')
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "unbalanced braces: the '{{' at position %zu has no matching '}}'", pos + 1);
    size_t first = pos + 2;
    size_t last = i;
    while (first < last && is_space(s[first]))
        first++;
    while (last > first && is_space(s[last - 1]))
        last--;
    if (first == last)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "empty variable name '{{}}' at position %zu; write a name such as "
                       "{{UserName}}",
                       pos + 1);
    *name_off = first;
    *name_len = last - first;
    *end = i + 2;
    return PC_OK;
}

pc_err_t pc_vars_expand(const char *format, pc_cert_type_t type, const pc_vars_t *vars, char **out,
                        pc_diag_t *diag)
{
    pc_buf_t buf = {0};
    pc_err_t err = PC_OK;
    size_t len, bad, pos = 0, run = 0;

    *out = NULL;
    if (format == NULL) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "format is missing");
        goto out;
    }
    len = strlen(format);
    if (!pc_utf8_valid(format, len, &bad)) {
        err = pc_fail(diag, PC_ERR_INVALID_PARAM, "format is not valid UTF-8 at position %zu",
                      bad + 1);
        goto out;
    }
    while (pos < len) {
        size_t name_off, name_len, end;
        const char *value;

        if (format[pos] == '}' && format[pos + 1] == '}') {
            err = pc_fail(diag, PC_ERR_INVALID_PARAM,
                          "unbalanced braces: the '}}' at position %zu has no matching '{{'",
                          pos + 1);
            goto out_free_buf;
        }
        if (!(format[pos] == '{' && format[pos + 1] == '{')) {
            pos++;
            continue;
        }
        if ((err = pc_buf_append(&buf, format + run, pos - run, diag)) != PC_OK ||
            (err = pc_vars_ref_scan(format, pos, &name_off, &name_len, &end, diag)) != PC_OK ||
            (err = pc_vars_resolve(format + name_off, name_len, type, vars, &value, diag)) !=
                PC_OK ||
            (err = pc_buf_append(&buf, value, strlen(value), diag)) != PC_OK)
            goto out_free_buf;
        pos = run = end;
    }
    if ((err = pc_buf_append(&buf, format + run, len - run, diag)) != PC_OK ||
        (err = pc_buf_append(&buf, "", 1, diag)) != PC_OK)
        goto out_free_buf;
    *out = buf.data;
    goto out;

out_free_buf:
    pc_buf_free(&buf);
out:
    return err;
}
