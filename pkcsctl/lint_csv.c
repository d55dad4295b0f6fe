/*
 * pkcsctl lint-profile --csv: the sample values from a CSV file, as administrators keep them -
 * a header row naming the attributes, then one row per user or device; the first data row is
 * the sample. RFC 4180: comma-separated, fields in double quotes may hold commas, line breaks
 * and doubled quotes; CRLF or LF line ends; a UTF-8 byte order mark is skipped. As for
 * `pkcsctl submit --csv`, the columns requestId, tenantId, userId, deviceId,
 * devicePublicKeyFile and sid (spelled exactly so) are the request's own fields, not attribute
 * values. Main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "file.h"
#include "lint_int.h"

#define CSV_MAX_BYTES (64u * 1024 * 1024)
#define FIELD_MAX 4096

static bool request_column(const char *name)
{
    static const char *const names[] = {"requestId",           "tenantId", "userId", "deviceId",
                                        "devicePublicKeyFile", "sid"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* next_field reads one field at *p into field (truncated to FIELD_MAX - 1 bytes) and moves *p
 * past it and its separator; *last is set at the end of a record. False on an unclosed
 * quote. */
static bool next_field(const char **p, char field[FIELD_MAX], bool *last)
{
    const char *s = *p;
    size_t n = 0;
    bool quoted = *s == '"';
    if (quoted)
        s++;
    for (;;) {
        if (*s == '\0') {
            if (quoted)
                return false;
            break;
        }
        if (quoted && *s == '"') {
            if (s[1] != '"') {
                quoted = false;
                s++;
                continue;
            }
            s++; /* "" is one quote */
        } else if (!quoted && (*s == ',' || *s == '\n' || *s == '\r')) {
            break;
        }
        if (n < FIELD_MAX - 1)
            field[n++] = *s;
        s++;
    }
    field[n] = '\0';
    *last = *s != ',';
    if (*s == ',')
        s++;
    else if (*s == '\r' && s[1] == '\n')
        s += 2;
    else if (*s != '\0')
        s++;
    *p = s;
    return true;
}

/* next_record reads one record into the array fields (of strings). Blank lines are skipped.
 * Returns 1 for a record, 0 at the end of the text, -1 on an unclosed quote. */
static int next_record(const char **p, json_t *fields)
{
    static char field[FIELD_MAX];
    bool last = false;
    while (**p == '\n' || **p == '\r')
        (*p)++;
    if (**p == '\0')
        return 0;
    json_array_clear(fields);
    while (!last) {
        if (!next_field(p, field, &last))
            return -1;
        json_array_append_new(fields, json_string_nocheck(field)); /* UTF-8 is judged later */
    }
    return 1;
}

int pkcsctl_lint_csv_sample(const char *path, json_t *attrs)
{
    unsigned char *text = NULL;
    size_t len = 0, i;
    pc_diag_t diag = {{0}};
    json_t *header = json_array(), *row = json_array(), *name;
    int rc = 1, got;
    pc_err_t err = pc_file_read(path, CSV_MAX_BYTES, &text, &len, &diag);
    if (err != PC_OK) {
        rc = pkcsctl_diag_error(LINT_CMD, err, &diag);
        goto out_free;
    }
    const char *p = (const char *)text;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    if ((got = next_record(&p, header)) == 1)
        got = next_record(&p, row);
    if (got <= 0) {
        rc = pkcsctl_error(LINT_CMD,
                           got < 0 ? "%s: a quoted field is never closed; check its quotes"
                                   : "%s needs a header row and at least one data row",
                           path);
        goto out_free;
    }
    json_array_foreach(header, i, name)
    {
        const char *key = json_string_value(name),
                   *value = json_string_value(json_array_get(row, i));
        if (key != NULL && key[0] != '\0' && !request_column(key) && value != NULL &&
            value[0] != '\0')
            json_object_set_new_nocheck(attrs, key, json_string_nocheck(value));
    }
    rc = 0;
out_free:
    json_decref(row);
    json_decref(header);
    free(text);
    return rc;
}
