/*
 * pkcsctl lint-profile --csv: the sample values from a CSV file, as administrators keep them -
 * a header row naming the attributes, then one row per user or device; the first data row is
 * the sample. Read by csv.c exactly as `pkcsctl submit --csv` reads it, so a file that submit
 * would refuse is refused here too, with the same FILE:LINE; the request's own columns
 * (requestId, tenantId, userId, deviceId, devicePublicKeyFile, sid) are not attribute values.
 * Main thread only.
 */
#include <stdlib.h>

#include "common.h"
#include "csv.h"
#include "lint_int.h"

int pkcsctl_lint_csv_sample(const char *path, json_t *attrs)
{
    pkcsctl_csv_t *csv = calloc(1, sizeof(*csv));
    int rc = 1;
    if (csv == NULL)
        return pkcsctl_error(LINT_CMD, "out of memory");
    if (pkcsctl_csv_open(csv, LINT_CMD, path) != 0)
        goto out_close_csv;
    int got = pkcsctl_csv_next(csv);
    if (got <= 0) {
        if (got == 0)
            pkcsctl_csv_fail(csv, csv->line,
                             "no data rows after the header: the first data row is the sample");
        goto out_close_csv;
    }
    /* An empty cell is no value, as submit sends it. */
    for (size_t i = 0; i < csv->n_names; i++)
        if (pkcsctl_csv_is_attribute(csv, i) && csv->fields[i][0] != '\0')
            json_object_set_new_nocheck(attrs, csv->names[i], json_string_nocheck(csv->fields[i]));
    rc = 0;
out_close_csv:
    pkcsctl_csv_close(csv);
    free(csv);
    return rc;
}
