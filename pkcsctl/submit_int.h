/*
 * submit_int.h - what the parts of `pkcsctl submit` share: the options and inputs (submit.c),
 * the CSV input (submit_csv.c) and the generator (submit_gen.c), with the device key pairs both
 * inputs make. Calls go one way: submit.c calls submit_csv.c and submit_gen.c, submit_csv.c
 * calls submit_gen.c for device keys, and all of them send through sender.c. Main thread only.
 */
#ifndef PKCSCTL_SUBMIT_INT_H
#define PKCSCTL_SUBMIT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "keygen.h"
#include "sender.h"

#define SUBMIT_CMD "submit"

/* The generator's options (--template ... --count N); --csv uses prefix, keys_dir, key_alg. */
typedef struct pkcsctl_gen {
    const char *template_path;
    long count;
    const char *prefix;   /* --id-prefix */
    const char *keys_dir; /* --device-keys, may be NULL */
    pc_key_alg_t key_alg; /* --key-alg */
    long csv_rows;        /* data rows of --csv files sent so far: default ids go on from here */
} pkcsctl_gen_t;

/* pkcsctl_generate produces gen->count requests made from a template (submit_gen.c). Returns 0
 * or 1. */
int pkcsctl_generate(pkcsctl_sender_t *snd, const pkcsctl_gen_t *gen);

/* pkcsctl_check_prefix_keys checks --id-prefix and creates --device-keys DIR (0700) if given
 * (submit_gen.c). Returns 0, 2 for a bad prefix, 1 when the folder cannot be made. */
int pkcsctl_check_prefix_keys(const pkcsctl_gen_t *gen);

/* pkcsctl_device_key gives the device key pair of request_id (submit_gen.c): the private key
 * in keys_dir/<request_id>.pem when that file exists (a replay sends the same key), else a new
 * pair of alg (P-256 or RSA-2048) written there with mode 0600, where `pkcsctl watch
 * --device-keys` finds it. *spki (free it) gets the public key as SubjectPublicKeyInfo DER,
 * *spki_len its length. Returns 0, or 1 after printing the error. */
int pkcsctl_device_key(const char *keys_dir, pc_key_alg_t alg, const char *request_id,
                       unsigned char **spki, size_t *spki_len);

/* pkcsctl_submit_csv produces one ISSUE request per data row of the CSV file csv_path with the
 * profile (pkcs.v1.Profile, JSON) of profile_path (submit_csv.c). The whole file is checked
 * first, so a malformed line (reported as FILE:LINE) sends nothing of that file. Default request
 * ids are <prefix>-<row>, rows counted on from gen->csv_rows, which is advanced. Returns 0 or
 * 1. */
int pkcsctl_submit_csv(pkcsctl_sender_t *snd, pkcsctl_gen_t *gen, const char *csv_path,
                       const char *profile_path);

#endif
