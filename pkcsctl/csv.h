/*
 * csv.h - CSV files of users and devices as administrators keep them, read the same way by
 * `pkcsctl submit --csv` (which sends a request per row) and `pkcsctl lint-profile --csv` (which
 * takes its sample values from the first row). RFC 4180: comma-separated; a field holding
 * commas, quotes or line breaks in double quotes, each quote in it written ""; CRLF or LF line
 * ends; UTF-8 (an Excel byte-order mark is skipped); blank lines skipped. The header row names
 * the columns: requestId, tenantId, userId, deviceId, devicePublicKeyFile and sid (spelled
 * exactly so) are the request's own fields, every other column an attribute, the value of a
 * {{variable}}. Every error names FILE:LINE. Main thread only.
 */
#ifndef PKCSCTL_CSV_H
#define PKCSCTL_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define PKCSCTL_CSV_MAX_FIELDS 256u

/* The request's own columns. */
enum pkcsctl_csv_column {
    CSV_COL_REQUEST_ID,
    CSV_COL_TENANT_ID,
    CSV_COL_USER_ID,
    CSV_COL_DEVICE_ID,
    CSV_COL_KEY_FILE,
    CSV_COL_SID,
    CSV_COL_COUNT
};

/* One CSV file being read: the file, the header, and the record read last. */
typedef struct pkcsctl_csv {
    const char *cmd;     /* names the command in messages */
    const char *path;    /* names the file in messages */
    unsigned char *text; /* the whole file */
    const char *p, *end; /* where the next record starts, and the end of the text */
    long line;           /* physical line of p, from 1 */
    long record_line;    /* line on which the last record started */
    char *rec;           /* the record's fields, each NUL-terminated, one after the other */
    size_t rec_len, rec_cap;
    size_t offs[PKCSCTL_CSV_MAX_FIELDS];
    char *fields[PKCSCTL_CSV_MAX_FIELDS]; /* the record's fields, in rec */
    size_t n_fields;
    bool quoted;                         /* the record had a quoted field: "" is not blank */
    char *names[PKCSCTL_CSV_MAX_FIELDS]; /* the header's column names, spaces around trimmed */
    size_t n_names;
    long col[CSV_COL_COUNT]; /* column index of each request field, -1 when absent */
    long header_line;        /* the header's line */
    const char *data_p;      /* the first byte after the header */
    long data_line;          /* and its line */
} pkcsctl_csv_t;

/* pkcsctl_csv_open reads the file at path whole and its header row: every column named, a
 * request column spelled exactly (a name differing only in case is refused as a typo, except
 * DeviceId, the variable), no column twice (attributes compared case-insensitively, as
 * variables are). Returns 0, or 1 after printing the error; pkcsctl_csv_close csv either way. */
int pkcsctl_csv_open(pkcsctl_csv_t *csv, const char *cmd, const char *path);

/* pkcsctl_csv_next reads the next data row into csv->fields, as many as the header names
 * columns: 1, 0 at the end of the file, -1 after printing the error. */
int pkcsctl_csv_next(pkcsctl_csv_t *csv);

/* pkcsctl_csv_rewind goes back to the first data row. */
void pkcsctl_csv_rewind(pkcsctl_csv_t *csv);

/* pkcsctl_csv_is_attribute tells whether column i is an attribute (not a request field). */
bool pkcsctl_csv_is_attribute(const pkcsctl_csv_t *csv, size_t i);

/* pkcsctl_csv_cell returns the current row's value of request field k, or NULL when the column
 * is absent or the cell is empty. */
char *pkcsctl_csv_cell(const pkcsctl_csv_t *csv, enum pkcsctl_csv_column k);

/* pkcsctl_csv_fail prints "pkcsctl CMD: FILE:LINE: message" and returns -1. */
int pkcsctl_csv_fail(const pkcsctl_csv_t *csv, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pkcsctl_csv_close frees what csv holds. */
void pkcsctl_csv_close(pkcsctl_csv_t *csv);

#endif
