/*
 * pkcsctl submit --csv: ISSUE requests from a CSV file and a profile (pkcs.v1.Profile in its
 * JSON form), one request per data row. The CSV is RFC 4180: comma-separated, a field holding
 * commas, quotes or line breaks in double quotes with each quote in it written "", CRLF or LF
 * line ends, UTF-8 (an Excel byte-order mark is skipped). The header row names the columns:
 * requestId, tenantId, userId, deviceId, devicePublicKeyFile and sid fill the request's own
 * fields; every other column is an attribute, the value of a {{variable}}. Each file is read
 * whole and checked before its first request is produced, so a malformed line sends nothing of
 * that file. Main thread only.
 */
#include "submit_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"
#include "file.h"
#include "request.h"
#include "text.h"
#include "vars.h"

#define CMD SUBMIT_CMD
#define CSV_MAX_BYTES (64u * 1024u * 1024u)
#define CSV_MAX_RECORD (1024u * 1024u)
#define CSV_MAX_FIELDS 256u
#define DEFAULT_TENANT "default"
#define UTF8_BOM "\xEF\xBB\xBF"

enum column {
    COL_REQUEST_ID,
    COL_TENANT_ID,
    COL_USER_ID,
    COL_DEVICE_ID,
    COL_KEY_FILE,
    COL_SID,
    COL_COUNT
};

static const char *const column_names[COL_COUNT] = {
    "requestId", "tenantId", "userId", "deviceId", "devicePublicKeyFile", "sid"};

/* The parser's position in a file read whole, and the record it read last. */
typedef struct csv {
    const char *path;
    const char *p, *end;
    long line;        /* physical line of p, from 1 */
    long record_line; /* line on which the last record started */
    char *rec;        /* the record's fields, each NUL-terminated, one after the other */
    size_t rec_len, rec_cap;
    size_t offs[CSV_MAX_FIELDS];
    char *fields[CSV_MAX_FIELDS];
    size_t n_fields;
    bool quoted; /* the record had a quoted field: a line holding "" is not blank */
} csv_t;

/* The header row: the column names and which column is which request field. */
typedef struct header {
    char *names[CSV_MAX_FIELDS]; /* malloc'd, spaces around them trimmed */
    size_t n;
    long col[COL_COUNT]; /* column index, -1 when absent */
} header_t;

/* One --csv input being sent. */
typedef struct csv_job {
    pkcsctl_sender_t *snd;
    pkcsctl_gen_t *gen;
    csv_t csv;
    header_t hdr;
    Pkcs__V1__Profile *profile;
    char *dir;          /* the CSV's folder, for relative devicePublicKeyFile paths; or NULL */
    const char *data_p; /* the first byte after the header */
    long data_line;     /* and its line */
    long rows;          /* data rows of the file */
    Pkcs__V1__IssueRequest__AttributesEntry entries[CSV_MAX_FIELDS];
    Pkcs__V1__IssueRequest__AttributesEntry *entry_ptrs[CSV_MAX_FIELDS];
} csv_job_t;

/* csv_fail prints "pkcsctl submit: FILE:LINE: message" and returns -1. */
static int csv_fail(const csv_t *csv, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int csv_fail(const csv_t *csv, long line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pkcsctl_error(CMD, "%s:%ld: %s", csv->path, line, msg);
    return -1;
}

static int push(csv_t *csv, char ch)
{
    if (csv->rec_len == csv->rec_cap) {
        if (csv->rec_cap >= CSV_MAX_RECORD)
            return csv_fail(csv, csv->record_line,
                            "a record of over %u bytes (a double quote that is never closed?)",
                            CSV_MAX_RECORD);
        size_t cap = csv->rec_cap == 0 ? 4096 : csv->rec_cap * 2;
        char *grown = realloc(csv->rec, cap);
        if (grown == NULL)
            return csv_fail(csv, csv->record_line, "out of memory");
        csv->rec = grown;
        csv->rec_cap = cap;
    }
    csv->rec[csv->rec_len++] = ch;
    return 0;
}

static int nul_byte(const csv_t *csv)
{
    return csv_fail(csv, csv->line,
                    "a NUL byte: the file is not UTF-8 text (convert UTF-16 exports to UTF-8)");
}

static int unquoted_field(csv_t *csv)
{
    while (csv->p < csv->end && *csv->p != ',' && *csv->p != '\n' && *csv->p != '\r') {
        if (*csv->p == '"')
            return csv_fail(csv, csv->line,
                            "a double quote inside an unquoted field: put the whole field in "
                            "double quotes and write each quote in it as \"\"");
        if (*csv->p == '\0')
            return nul_byte(csv);
        if (push(csv, *csv->p++) != 0)
            return -1;
    }
    return 0;
}

static int quoted_field(csv_t *csv)
{
    long opened = csv->line;
    csv->quoted = true;
    csv->p++;
    for (;;) {
        if (csv->p == csv->end)
            return csv_fail(csv, opened,
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
        return csv_fail(csv, csv->line,
                        "text after the closing double quote of a field: inside a quoted "
                        "field, write a quote as \"\"");
    return 0;
}

/* end_field closes the field that started at rec offset start and steps over what ends it;
 * *more tells whether another field of the same record follows. */
static int end_field(csv_t *csv, size_t start, bool *more)
{
    if (csv->n_fields == CSV_MAX_FIELDS)
        return csv_fail(csv, csv->record_line, "more than %u fields in one record", CSV_MAX_FIELDS);
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

static int check_utf8(const csv_t *csv)
{
    for (size_t i = 0; i < csv->n_fields; i++) {
        size_t bad_at = 0;
        if (!pc_utf8_valid(csv->fields[i], strlen(csv->fields[i]), &bad_at))
            return csv_fail(csv, csv->record_line,
                            "field %zu is not valid UTF-8 (at its byte %zu): save the file as "
                            "UTF-8",
                            i + 1, bad_at + 1);
    }
    return 0;
}

/* read_record reads one record at csv->p (which is before the end). 0 or -1. */
static int read_record(csv_t *csv)
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

/* csv_next reads the next record that is not a blank line: 1, 0 at the end, -1 on error. */
static int csv_next(csv_t *csv)
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
static int name_column(csv_job_t *job, size_t i)
{
    const char *name = job->hdr.names[i];
    for (int k = 0; k < COL_COUNT; k++) {
        if (strcmp(name, column_names[k]) == 0) {
            if (job->hdr.col[k] >= 0)
                return csv_fail(&job->csv, 1, "column \"%s\" appears twice in the header", name);
            job->hdr.col[k] = (long)i;
            return 0;
        }
        if (strcasecmp(name, column_names[k]) == 0 && strcmp(name, "DeviceId") != 0)
            return csv_fail(&job->csv, 1,
                            "column \"%s\": did you mean %s? The request's own columns are "
                            "spelled exactly requestId, tenantId, userId, deviceId, "
                            "devicePublicKeyFile and sid",
                            name, column_names[k]);
    }
    return 0;
}

static bool is_attribute(const header_t *hdr, size_t i)
{
    for (int k = 0; k < COL_COUNT; k++)
        if (hdr->col[k] == (long)i)
            return false;
    return true;
}

/* check_attribute refuses an attribute named twice (variables match case-insensitively) and
 * warns about one no certificate of the profile's type can use (a typo, or extra data). */
static int check_attribute(csv_job_t *job, size_t i)
{
    const char *name = job->hdr.names[i];
    for (size_t j = 0; j < i; j++)
        if (is_attribute(&job->hdr, j) && strcasecmp(name, job->hdr.names[j]) == 0)
            return csv_fail(&job->csv, 1,
                            "columns \"%s\" and \"%s\" name the same variable (names are "
                            "matched case-insensitively)",
                            job->hdr.names[j], name);
    pc_cert_type_t type = job->profile->certificate_type == PKCS__V1__CERTIFICATE_TYPE__DEVICE
                              ? PC_CERT_DEVICE
                              : PC_CERT_USER;
    if (!pc_vars_allowed(name, strlen(name), type, NULL))
        fprintf(stderr,
                "pkcsctl submit: %s: warning: column \"%s\" is not a variable %s certificates "
                "can use; it is sent as an attribute, but no {{variable}} reads it\n",
                job->csv.path, name, type == PC_CERT_DEVICE ? "device" : "user");
    return 0;
}

static int read_header(csv_job_t *job)
{
    header_t *hdr = &job->hdr;
    int rc = csv_next(&job->csv);
    if (rc <= 0)
        return rc < 0 ? -1
                      : csv_fail(&job->csv, 1,
                                 "the file is empty: its first line must name the columns, "
                                 "e.g. userId,deviceId,UserName,UserPrincipalName");
    for (int k = 0; k < COL_COUNT; k++)
        hdr->col[k] = -1;
    for (size_t i = 0; i < job->csv.n_fields; i++) {
        if ((hdr->names[i] = trimmed_copy(job->csv.fields[i])) == NULL)
            return csv_fail(&job->csv, 1, "out of memory");
        hdr->n = i + 1;
        if (hdr->names[i][0] == '\0')
            return csv_fail(&job->csv, 1, "column %zu has no name in the header row", i + 1);
        if (name_column(job, i) != 0)
            return -1;
    }
    for (size_t i = 0; i < hdr->n; i++)
        if (is_attribute(hdr, i) && check_attribute(job, i) != 0)
            return -1;
    if (hdr->col[COL_USER_ID] < 0 && hdr->col[COL_DEVICE_ID] < 0)
        return csv_fail(&job->csv, 1,
                        "the header names neither userId nor deviceId: which user or device "
                        "is each certificate for?");
    job->data_p = job->csv.p;
    job->data_line = job->csv.line;
    return 0;
}

/* cell returns the row's value of request field k, or NULL when the column is absent or the
 * cell is empty. */
static char *cell(const csv_job_t *job, int k)
{
    long i = job->hdr.col[k];
    return i >= 0 && job->csv.fields[i][0] != '\0' ? job->csv.fields[i] : NULL;
}

static void key_path(const csv_job_t *job, const char *file, char *path, size_t size)
{
    if (file[0] == '/' || job->dir == NULL)
        snprintf(path, size, "%s", file);
    else
        snprintf(path, size, "%s/%s", job->dir, file);
}

/* check_key_file: a devicePublicKeyFile that is not there stops the file before it is sent. */
static int check_key_file(const csv_job_t *job, const char *file)
{
    char path[4096];
    key_path(job, file, path, sizeof(path));
    if (access(path, R_OK) != 0)
        return csv_fail(&job->csv, job->csv.record_line, "devicePublicKeyFile %s: %s", path,
                        strerror(errno));
    return 0;
}

/* check_row checks one data row before anything of the file is sent. */
static int check_row(csv_job_t *job)
{
    const csv_t *csv = &job->csv;
    if (csv->n_fields != job->hdr.n)
        return csv_fail(csv, csv->record_line,
                        "%zu fields, but the header names %zu columns (a field holding a comma "
                        "must be in double quotes)",
                        csv->n_fields, job->hdr.n);
    const char *file = cell(job, COL_KEY_FILE);
    if (file != NULL)
        return check_key_file(job, file);
    if (job->gen->keys_dir == NULL)
        return csv_fail(csv, csv->record_line,
                        "no devicePublicKeyFile for this row, and no --device-keys DIR to make "
                        "the device a key pair in");
    const char *id = cell(job, COL_REQUEST_ID);
    if (id != NULL && !pkcsctl_safe_name(id))
        return csv_fail(csv, csv->record_line,
                        "requestId \"%.64s\" cannot name its device key file in --device-keys "
                        "(at most 200 bytes, no '/', not . or ..)",
                        id);
    return 0;
}

static int check_rows(csv_job_t *job)
{
    int rc;
    while ((rc = csv_next(&job->csv)) == 1) {
        if (check_row(job) != 0)
            return -1;
        job->rows++;
    }
    if (rc < 0)
        return -1;
    if (job->rows == 0)
        return csv_fail(&job->csv, job->csv.line, "no data rows after the header");
    return 0;
}

/* key_from_file reads the device key of a devicePublicKeyFile cell: a public key or a private
 * key in PEM, at a path relative to the CSV's folder unless absolute. */
static int key_from_file(csv_job_t *job, const char *file, unsigned char **spki, size_t *spki_len)
{
    char path[4096];
    pc_diag_t diag = {{0}};
    key_path(job, file, path, sizeof(path));
    if (pkcsctl_key_read("devicePublicKeyFile", path, PKCSCTL_KEY_PUBLIC_OR_PRIVATE, NULL, spki,
                         spki_len, &diag) != PC_OK)
        return csv_fail(&job->csv, job->csv.record_line, "%s", diag.msg);
    return 0;
}

/* fill_attributes points issue's attributes at the row's non-empty attribute cells: an empty
 * cell is no value, so a profile that uses that variable fails naming it. */
static void fill_attributes(csv_job_t *job, Pkcs__V1__IssueRequest *issue)
{
    size_t n = 0;
    for (size_t i = 0; i < job->hdr.n; i++) {
        if (!is_attribute(&job->hdr, i) || job->csv.fields[i][0] == '\0')
            continue;
        Pkcs__V1__IssueRequest__AttributesEntry init =
            PKCS__V1__ISSUE_REQUEST__ATTRIBUTES_ENTRY__INIT;
        job->entries[n] = init;
        job->entries[n].key = job->hdr.names[i];
        job->entries[n].value = job->csv.fields[i];
        job->entry_ptrs[n] = &job->entries[n];
        n++;
    }
    issue->n_attributes = n;
    issue->attributes = n > 0 ? job->entry_ptrs : NULL;
}

static int validate_and_send(csv_job_t *job, const Pkcs__V1__Request *req)
{
    pc_diag_t diag = {{0}};
    pc_err_t err = pc_request_validate(req, pc_now_ms(), &diag);
    if (err != PC_OK)
        return csv_fail(&job->csv, job->csv.record_line, "%s (%s)",
                        diag.msg[0] ? diag.msg : pc_strerror(err), pc_err_code_name(err));
    return pkcsctl_send_request(job->snd, req) == 0 ? 0 : -1;
}

static int send_row(csv_job_t *job, long row)
{
    char id[160];
    Pkcs__V1__Request req = PKCS__V1__REQUEST__INIT;
    Pkcs__V1__IssueRequest issue = PKCS__V1__ISSUE_REQUEST__INIT;
    unsigned char *spki = NULL;
    size_t spki_len = 0;
    int rc = -1;
    char *v;
    snprintf(id, sizeof(id), "%s-%06ld", job->gen->prefix, row);
    req.schema_version = PC_SCHEMA_VERSION;
    req.kind = PKCS__V1__KIND__ISSUE;
    req.request_id = (v = cell(job, COL_REQUEST_ID)) != NULL ? v : id;
    req.tenant_id = (v = cell(job, COL_TENANT_ID)) != NULL ? v : DEFAULT_TENANT;
    req.user_id = (v = cell(job, COL_USER_ID)) != NULL ? v : "";
    req.device_id = (v = cell(job, COL_DEVICE_ID)) != NULL ? v : "";
    /* created_at_ms: stamped by pkcsctl_send_request when the row is produced */
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &issue;
    issue.profile = job->profile;
    issue.sid = (v = cell(job, COL_SID)) != NULL ? v : "";
    fill_attributes(job, &issue);
    if ((v = cell(job, COL_KEY_FILE)) != NULL) {
        if (key_from_file(job, v, &spki, &spki_len) != 0)
            goto out_free_spki;
    } else if (pkcsctl_device_key(job->gen->keys_dir, job->gen->key_alg, req.request_id, &spki,
                                  &spki_len) != 0) {
        goto out_free_spki;
    }
    issue.device_public_key.data = spki;
    issue.device_public_key.len = spki_len;
    rc = validate_and_send(job, &req);
out_free_spki:
    free(spki);
    return rc;
}

static int send_rows(csv_job_t *job)
{
    long row = 0;
    int rc;
    job->csv.p = job->data_p;
    job->csv.line = job->data_line;
    while ((rc = csv_next(&job->csv)) == 1)
        if (send_row(job, job->gen->csv_rows + ++row) != 0)
            return -1;
    job->gen->csv_rows += row;
    return rc;
}

static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return NULL;
    return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

static void job_free(csv_job_t *job)
{
    for (size_t i = 0; i < job->hdr.n; i++)
        free(job->hdr.names[i]);
    if (job->profile != NULL)
        protobuf_c_message_free_unpacked(&job->profile->base, NULL);
    free(job->csv.rec);
    free(job->dir);
    free(job);
}

int pkcsctl_submit_csv(pkcsctl_sender_t *snd, pkcsctl_gen_t *gen, const char *csv_path,
                       const char *profile_path)
{
    unsigned char *text = NULL;
    size_t len = 0;
    pc_diag_t diag = {{0}};
    ProtobufCMessage *profile = NULL;
    int rc = 1;
    csv_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return pkcsctl_error(CMD, "out of memory");
    job->snd = snd;
    job->gen = gen;
    job->csv.path = csv_path;
    job->dir = folder_of(csv_path);
    if (pkcsctl_load_message(CMD, profile_path, &pkcs__v1__profile__descriptor, &profile) != 0)
        goto out_free_job;
    job->profile = (Pkcs__V1__Profile *)profile;
    pc_err_t err = pc_file_read(csv_path, CSV_MAX_BYTES, &text, &len, &diag);
    if (err != PC_OK) {
        rc = pkcsctl_diag_error(CMD, err, &diag);
        goto out_free_job;
    }
    job->csv.p = (const char *)text;
    job->csv.end = job->csv.p + len;
    job->csv.line = 1;
    if (len >= 3 && memcmp(text, UTF8_BOM, 3) == 0)
        job->csv.p += 3;
    if (read_header(job) == 0 && check_rows(job) == 0 && send_rows(job) == 0)
        rc = 0;
    free(text);
out_free_job:
    job_free(job);
    return rc;
}
