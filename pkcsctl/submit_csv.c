/*
 * pkcsctl submit --csv: ISSUE requests from a CSV file (read by csv.c, as lint-profile reads
 * it) and a profile (pkcs.v1.Profile in its JSON form), one request per data row: requestId,
 * tenantId, userId, deviceId, devicePublicKeyFile and sid fill the request's own fields; every
 * other column is an attribute, the value of a {{variable}}. Each file is read whole and checked
 * before its first request is produced, so a malformed line sends nothing of that file. Main
 * thread only.
 */
#include "submit_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"
#include "csv.h"
#include "file.h"
#include "request.h"
#include "vars.h"

#define CMD SUBMIT_CMD
#define DEFAULT_TENANT "default"

/* One --csv input being sent. */
typedef struct csv_job {
    pkcsctl_sender_t *snd;
    pkcsctl_gen_t *gen;
    pkcsctl_csv_t csv;
    Pkcs__V1__Profile *profile;
    char *dir; /* the CSV's folder, for relative devicePublicKeyFile paths; or NULL */
    long rows; /* data rows of the file */
    Pkcs__V1__IssueRequest__AttributesEntry entries[PKCSCTL_CSV_MAX_FIELDS];
    Pkcs__V1__IssueRequest__AttributesEntry *entry_ptrs[PKCSCTL_CSV_MAX_FIELDS];
} csv_job_t;

/* warn_attribute warns about an attribute column no certificate of the profile's type can use
 * (a typo, or extra data): it is sent, but nothing reads it. */
static void warn_attribute(const csv_job_t *job, const char *name)
{
    pc_cert_type_t type = job->profile->certificate_type == PKCS__V1__CERTIFICATE_TYPE__DEVICE
                              ? PC_CERT_DEVICE
                              : PC_CERT_USER;
    if (!pc_vars_allowed(name, strlen(name), type, NULL))
        fprintf(stderr,
                "pkcsctl submit: %s: warning: column \"%s\" is not a variable %s certificates "
                "can use; it is sent as an attribute, but no {{variable}} reads it\n",
                job->csv.path, name, type == PC_CERT_DEVICE ? "device" : "user");
}

/* check_header: beyond what any CSV of ours needs (pkcsctl_csv_open), a request must say whom
 * its certificate is for. */
static int check_header(csv_job_t *job)
{
    const pkcsctl_csv_t *csv = &job->csv;
    for (size_t i = 0; i < csv->n_names; i++)
        if (pkcsctl_csv_is_attribute(csv, i))
            warn_attribute(job, csv->names[i]);
    if (csv->col[CSV_COL_USER_ID] < 0 && csv->col[CSV_COL_DEVICE_ID] < 0)
        return pkcsctl_csv_fail(csv, csv->header_line,
                                "the header names neither userId nor deviceId: which user or "
                                "device is each certificate for?");
    return 0;
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
        return pkcsctl_csv_fail(&job->csv, job->csv.record_line, "devicePublicKeyFile %s: %s", path,
                                strerror(errno));
    return 0;
}

/* check_row checks one data row before anything of the file is sent. */
static int check_row(csv_job_t *job)
{
    const pkcsctl_csv_t *csv = &job->csv;
    const char *file = pkcsctl_csv_cell(&job->csv, CSV_COL_KEY_FILE);
    if (file != NULL)
        return check_key_file(job, file);
    if (job->gen->keys_dir == NULL)
        return pkcsctl_csv_fail(
            csv, csv->record_line,
            "no devicePublicKeyFile for this row, and no --device-keys DIR to make "
            "the device a key pair in");
    const char *id = pkcsctl_csv_cell(&job->csv, CSV_COL_REQUEST_ID);
    if (id != NULL && !pkcsctl_safe_name(id))
        return pkcsctl_csv_fail(
            csv, csv->record_line,
            "requestId \"%.64s\" cannot name its device key file in --device-keys "
            "(at most 200 bytes, no '/', not . or ..)",
            id);
    return 0;
}

static int check_rows(csv_job_t *job)
{
    int rc;
    while ((rc = pkcsctl_csv_next(&job->csv)) == 1) {
        if (check_row(job) != 0)
            return -1;
        job->rows++;
    }
    if (rc < 0)
        return -1;
    if (job->rows == 0)
        return pkcsctl_csv_fail(&job->csv, job->csv.line, "no data rows after the header");
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
        return pkcsctl_csv_fail(&job->csv, job->csv.record_line, "%s", diag.msg);
    return 0;
}

/* fill_attributes points issue's attributes at the row's non-empty attribute cells: an empty
 * cell is no value, so a profile that uses that variable fails naming it. */
static void fill_attributes(csv_job_t *job, Pkcs__V1__IssueRequest *issue)
{
    size_t n = 0;
    for (size_t i = 0; i < job->csv.n_names; i++) {
        if (!pkcsctl_csv_is_attribute(&job->csv, i) || job->csv.fields[i][0] == '\0')
            continue;
        pkcs__v1__issue_request__attributes_entry__init(&job->entries[n]);
        job->entries[n].key = job->csv.names[i];
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
        return pkcsctl_csv_fail(&job->csv, job->csv.record_line, "%s (%s)",
                                diag.msg[0] ? diag.msg : pc_strerror(err), pc_err_code_name(err));
    return pkcsctl_send_request(job->snd, req) == 0 ? 0 : -1;
}

static int send_row(csv_job_t *job, long row)
{
    char id[160];
    Pkcs__V1__Request req;
    Pkcs__V1__IssueRequest issue;
    unsigned char *spki = NULL;
    size_t spki_len = 0;
    int rc = -1;
    char *v;
    pkcs__v1__request__init(&req);
    pkcs__v1__issue_request__init(&issue);
    snprintf(id, sizeof(id), "%s-%06ld", job->gen->prefix, row);
    req.schema_version = PC_SCHEMA_VERSION;
    req.kind = PKCS__V1__KIND__ISSUE;
    req.request_id = (v = pkcsctl_csv_cell(&job->csv, CSV_COL_REQUEST_ID)) != NULL ? v : id;
    req.tenant_id =
        (v = pkcsctl_csv_cell(&job->csv, CSV_COL_TENANT_ID)) != NULL ? v : DEFAULT_TENANT;
    req.user_id = (v = pkcsctl_csv_cell(&job->csv, CSV_COL_USER_ID)) != NULL ? v : "";
    req.device_id = (v = pkcsctl_csv_cell(&job->csv, CSV_COL_DEVICE_ID)) != NULL ? v : "";
    /* created_at_ms: stamped by pkcsctl_send_request when the row is produced */
    req.body_case = PKCS__V1__REQUEST__BODY_ISSUE;
    req.issue = &issue;
    issue.profile = job->profile;
    issue.sid = (v = pkcsctl_csv_cell(&job->csv, CSV_COL_SID)) != NULL ? v : "";
    fill_attributes(job, &issue);
    if ((v = pkcsctl_csv_cell(&job->csv, CSV_COL_KEY_FILE)) != NULL) {
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
    pkcsctl_csv_rewind(&job->csv);
    while ((rc = pkcsctl_csv_next(&job->csv)) == 1)
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
    pkcsctl_csv_close(&job->csv);
    if (job->profile != NULL)
        protobuf_c_message_free_unpacked(&job->profile->base, NULL);
    free(job->dir);
    free(job);
}

int pkcsctl_submit_csv(pkcsctl_sender_t *snd, pkcsctl_gen_t *gen, const char *csv_path,
                       const char *profile_path)
{
    ProtobufCMessage *profile = NULL;
    int rc = 1;
    csv_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return pkcsctl_error(CMD, "out of memory");
    job->snd = snd;
    job->gen = gen;
    job->dir = folder_of(csv_path);
    if (pkcsctl_load_message(CMD, profile_path, &pkcs__v1__profile__descriptor, &profile) != 0)
        goto out_free_job;
    job->profile = (Pkcs__V1__Profile *)profile;
    if (pkcsctl_csv_open(&job->csv, CMD, csv_path) == 0 && check_header(job) == 0 &&
        check_rows(job) == 0 && send_rows(job) == 0)
        rc = 0;
out_free_job:
    job_free(job);
    return rc;
}
