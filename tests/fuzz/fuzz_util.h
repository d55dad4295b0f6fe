/*
 * fuzz_util.h - what the libFuzzer targets of tests/fuzz share: a private temporary folder for
 * the files a decoder insists on reading (secrets, keys, the configuration), and a splitter
 * that cuts one fuzz input into NUL-separated fields, so that a target with several inputs
 * (a format and its variables) still takes one byte string the fuzzer can mutate freely.
 */
#ifndef PC_FUZZ_UTIL_H
#define PC_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bound of the fields fuzz_split makes. */
#define FUZZ_MAX_FIELDS 80

/* The fields of one input: each a NUL-terminated copy (a field never holds a NUL). */
typedef struct fuzz_fields {
    char *field[FUZZ_MAX_FIELDS];
    size_t count;
    char *buf; /* one allocation holding every field */
} fuzz_fields_t;

/* fuzz_split cuts data at NUL bytes into at most max (<= FUZZ_MAX_FIELDS) fields; what follows
 * the max-th field is ignored. False when out of memory. */
bool fuzz_split(const uint8_t *data, size_t len, size_t max, fuzz_fields_t *out);
void fuzz_fields_free(fuzz_fields_t *f);

/* fuzz_dir returns the target's own temporary folder, made on first use and removed with its
 * files at exit. Aborts when it cannot be made: a target cannot run without it. */
const char *fuzz_dir(void);

/* fuzz_path writes "<fuzz_dir>/name" into buf; aborts when it does not fit. */
void fuzz_path(char *buf, size_t size, const char *name);

/* fuzz_write writes len bytes to "<fuzz_dir>/name" with mode and returns the path in buf
 * (size bytes); aborts on failure (the disk is not the code under test). */
void fuzz_write(const char *name, const void *data, size_t len, unsigned mode, char *buf,
                size_t size);

/* fuzz_clear_pc_environment unsets every PC_* variable, so that what a target reads (the
 * configuration's environment overrides) does not depend on the caller's environment. */
void fuzz_clear_pc_environment(void);

/* The wall clock the targets pass as "now", so that a run does not depend on the day: 2025-01-01
 * 00:00:00 UTC in ms since the epoch. */
#define FUZZ_NOW_MS INT64_C(1735689600000)

#endif
