/*
 * csv.c - CSV files of users and devices (csv.h), for `pkcsctl submit --csv` and `pkcsctl
 * lint-profile --csv`: a strict RFC 4180 reader over the file read whole, which names FILE:LINE
 * in every error, and the header row's rules. One reader, so that lint-profile sees a file
 * exactly as submit will send it. Main thread only.
 */
#include "csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "file.h"
#include "text.h"

#define CSV_MAX_BYTES (64u * 1024u * 1024u)
#define CSV_MAX_RECORD (1024u * 1024u)
#define UTF8_BOM "\xEF\xBB\xBF"

static const char *const column_names[CSV_COL_COUNT] = {
    "requestId", "tenantId", "userId", "deviceId", "devicePublicKeyFile", "sid"};

int pkcsctl_csv_fail(const pkcsctl_csv_t *csv, long line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pkcsctl_error(csv->cmd, "%s:%ld: %s", csv->path, line, msg);
    return -1;
}

static int push(pkcsctl_csv_t *csv, char ch)
{
    if (csv->rec_len == csv->rec_cap) {
        if (csv->rec_cap >= CSV_MAX_RECORD)
            return pkcsctl_csv_fail(
                csv, csv->record_line,
                "a record of over %u bytes (a double quote that is never closed?)", CSV_MAX_RECORD);
        size_t cap = csv->rec_cap == 0 ? 4096 : csv->rec_cap * 2;
        char *grown = realloc(csv->rec, cap);
        if (grown == NULL)
            return pkcsctl_csv_fail(csv, csv->record_line, "out of memory");
        csv->rec = grown;
        csv->rec_cap = cap;
    }
    csv->rec[csv->rec_len++] = ch;
    return 0;
}

static int nul_byte(const pkcsctl_csv_t *csv)
{
    return pkcsctl_csv_fail(
        csv, csv->line, "a NUL byte: the file is not UTF-8 text (convert UTF-16 exports to UTF-8)");
}

static int unquoted_field(pkcsctl_csv_t *csv)
{
    while (csv->p < csv->end && *csv->p != ',' && *csv->p != '\n' && *csv->p != '\r') {
        if (*csv->p == '"')
            return pkcsctl_csv_fail(
                csv, csv->line,
                "a double quote inside an unquoted field: put the whole field in "
                "double quotes and write each quote in it as \"\"");
        if (*csv->p == '\0')
            return nul_byte(csv);
        if (push(csv, *csv->p++) != 0)
            return -1;
    }
    return 0;
}

static int quoted_field(pkcsctl_csv_t *csv)
{
    long opened = csv->line;
    csv->quoted = true;
    csv->p++;
    for (;;) {
        if (csv->p == csv->end)
            return pkcsctl_csv_fail(csv, opened,
                                    "the double quote that opens a field on this line is "
                                    "never closed");
        char ch = *csv->p++;
        if (ch == '"' && (csv->p == csv->end || *csv->p != '"'))
            break;
        if (ch == '"')
            csv->p++; /* "" stands for one quote */
        else if (ch == '\n')
            csv->line++;
        else if (ch == '\0')
            return nul_byte(csv);
        if (push(csv, ch) != 0)
            return -1;
    }
    if (csv->p < csv->end && *csv->p != ',' && *csv->p != '\r' && *csv->p != '\n')
        return pkcsctl_csv_fail(csv, csv->line,
                                "text after the closing double quote of a field: inside a quoted "
                                "field, write a quote as \"\"");
    return 0;
}

/* end_field closes the field that started at rec offset start and steps over what ends it;
 * *more tells whether another field of the same record follows. */
static int end_field(pkcsctl_csv_t *csv, size_t start, bool *more)
{
    if (csv->n_fields == PKCSCTL_CSV_MAX_FIELDS)
        return pkcsctl_csv_fail(csv, csv->record_line, "more than %u fields in one record",
                                PKCSCTL_CSV_MAX_FIELDS);
    csv->offs[csv->n_fields++] = start;
    if (push(csv, '\0') != 0)
        return -1;
    *more = false;
    if (csv->p == csv->end)
        return 0;
    char ch = *csv->p++;
    if (ch == ',') {
        *more = true;
        return 0;
    }
    if (ch == '\r' && csv->p < csv->end && *csv->p == '\n')
        csv->p++;
    csv->line++;
    return 0;
}

static int check_utf8(const pkcsctl_csv_t *csv)
{
    for (size_t i = 0; i < csv->n_fields; i++) {
        size_t bad_at = 0;
        if (!pc_utf8_valid(csv->fields[i], strlen(csv->fields[i]), &bad_at))
            return pkcsctl_csv_fail(
                csv, csv->record_line,
                "field %zu is not valid UTF-8 (at its byte %zu): save the file as "
                "UTF-8",
                i + 1, bad_at + 1);
    }
    return 0;
}

/* read_record reads one record at csv->p (which is before the end). 0 or -1. */
static int read_record(pkcsctl_csv_t *csv)
{
    bool more = true;
    csv->record_line = csv->line;
    csv->rec_len = 0;
    csv->n_fields = 0;
    csv->quoted = false;
    while (more) {
        size_t start = csv->rec_len;
        int rc = csv->p < csv->end && *csv->p == '"' ? quoted_field(csv) : unquoted_field(csv);
        if (rc != 0 || end_field(csv, start, &more) != 0)
            return -1;
    }
    for (size_t i = 0; i < csv->n_fields; i++)
        csv->fields[i] = csv->rec + csv->offs[i];
    return check_utf8(csv);
}

/* next_record reads the next record that is not a blank line: 1, 0 at the end, -1 on error. */
static int next_record(pkcsctl_csv_t *csv)
{
    while (csv->p < csv->end) {
        if (read_record(csv) != 0)
            return -1;
        if (csv->n_fields > 1 || csv->fields[0][0] != '\0' || csv->quoted)
            return 1;
    }
    return 0;
}

static char *trimmed_copy(const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    return strndup(s, len);
}

/* name_column tells which request field column i names, or that it is an attribute. A name
 * that differs from a request field's only in case is refused as a likely typo, except
 * DeviceId: that is the variable, deviceId the request's field. */
static int name_column(pkcsctl_csv_t *csv, size_t i)
{
    const char *name = csv->names[i];
    for (int k = 0; k < CSV_COL_COUNT; k++) {
        if (strcmp(name, column_names[k]) == 0) {
            if (csv->col[k] >= 0)
                return pkcsctl_csv_fail(csv, csv->header_line,
                                        "column \"%s\" appears twice in the header", name);
            csv->col[k] = (long)i;
            return 0;
        }
        if (strcasecmp(name, column_names[k]) == 0 && strcmp(name, "DeviceId") != 0)
            return pkcsctl_csv_fail(csv, csv->header_line,
                                    "column \"%s\": did you mean %s? The request's own columns "
                                    "are spelled exactly requestId, tenantId, userId, deviceId, "
                                    "devicePublicKeyFile and sid",
                                    name, column_names[k]);
    }
    return 0;
}

bool pkcsctl_csv_is_attribute(const pkcsctl_csv_t *csv, size_t i)
{
    for (int k = 0; k < CSV_COL_COUNT; k++)
        if (csv->col[k] == (long)i)
            return false;
    return true;
}

/* check_attributes refuses an attribute named twice: variables match case-insensitively. */
static int check_attributes(const pkcsctl_csv_t *csv)
{
    for (size_t i = 0; i < csv->n_names; i++)
        for (size_t j = 0; j < i && pkcsctl_csv_is_attribute(csv, i); j++)
            if (pkcsctl_csv_is_attribute(csv, j) && strcasecmp(csv->names[i], csv->names[j]) == 0)
                return pkcsctl_csv_fail(csv, csv->header_line,
                                        "columns \"%s\" and \"%s\" name the same variable "
                                        "(names are matched case-insensitively)",
                                        csv->names[j], csv->names[i]);
    return 0;
}

static int read_header(pkcsctl_csv_t *csv)
{
    int rc = next_record(csv);
    csv->header_line = rc > 0 ? csv->record_line : csv->line;
    if (rc <= 0)
        return rc < 0 ? -1
                      : pkcsctl_csv_fail(csv, csv->header_line,
                                         "the file is empty: its first line must name the "
                                         "columns, e.g. userId,deviceId,UserName,"
                                         "UserPrincipalName");
    for (int k = 0; k < CSV_COL_COUNT; k++)
        csv->col[k] = -1;
    for (size_t i = 0; i < csv->n_fields; i++) {
        if ((csv->names[i] = trimmed_copy(csv->fields[i])) == NULL)
            return pkcsctl_csv_fail(csv, csv->header_line, "out of memory");
        csv->n_names = i + 1;
        if (csv->names[i][0] == '\0')
            return pkcsctl_csv_fail(csv, csv->header_line,
                                    "column %zu has no name in the header row", i + 1);
        if (name_column(csv, i) != 0)
            return -1;
    }
    if (check_attributes(csv) != 0)
        return -1;
    csv->data_p = csv->p;
    csv->data_line = csv->line;
    return 0;
}

int pkcsctl_csv_open(pkcsctl_csv_t *csv, const char *cmd, const char *path)
{
    size_t len = 0;
    pc_diag_t diag = {{0}};
    memset(csv, 0, sizeof(*csv));
    csv->cmd = cmd;
    csv->path = path;
    pc_err_t err = pc_file_read(path, CSV_MAX_BYTES, &csv->text, &len, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(cmd, err, &diag);
    csv->p = (const char *)csv->text;
    csv->end = csv->p + len;
    csv->line = 1;
    if (len >= 3 && memcmp(csv->text, UTF8_BOM, 3) == 0)
        csv->p += 3;
    return read_header(csv) == 0 ? 0 : 1;
}

int pkcsctl_csv_next(pkcsctl_csv_t *csv)
{
    int rc = next_record(csv);
    if (rc == 1 && csv->n_fields != csv->n_names)
        return pkcsctl_csv_fail(csv, csv->record_line,
                                "%zu fields, but the header names %zu columns (a field holding "
                                "a comma must be in double quotes)",
                                csv->n_fields, csv->n_names);
    return rc;
}

void pkcsctl_csv_rewind(pkcsctl_csv_t *csv)
{
    csv->p = csv->data_p;
    csv->line = csv->data_line;
}

char *pkcsctl_csv_cell(const pkcsctl_csv_t *csv, enum pkcsctl_csv_column k)
{
    long i = csv->col[k];
    return i >= 0 && csv->fields[i][0] != '\0' ? csv->fields[i] : NULL;
}

void pkcsctl_csv_close(pkcsctl_csv_t *csv)
{
    for (size_t i = 0; i < csv->n_names; i++)
        free(csv->names[i]);
    free(csv->rec);
    free(csv->text);
    memset(csv, 0, sizeof(*csv));
}
