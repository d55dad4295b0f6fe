/*
 * import.h - IMPORT_PFX, the PFX Certificate Connector's job: an administrator uploads a PFX
 * (S/MIME) whose password is RSA-OAEP-encrypted to the connector's import key; the connector
 * decrypts the password, opens and checks the PFX and returns it enveloped to the device key.
 * pc_import_new runs once at start (blocking file read); pc_import_run on pool threads.
 */
#ifndef PC_IMPORT_H
#define PC_IMPORT_H

#include "pc_err.h"
#include "pfx.h"
#include "pkcs.pb-c.h"

/* Smallest RSA import key accepted, in bits. */
#define PC_IMPORT_MIN_RSA_BITS 2048

/* Environment variable holding the passphrase of an encrypted import key file. */
#define PC_IMPORT_PASSPHRASE_ENV "PC_IMPORT_KEY_PASSPHRASE"

/* How far in the future a certificate's notBefore may lie (clock skew), in seconds. */
#define PC_IMPORT_CLOCK_SKEW_S 300

/* The import key: an RSA private key and the id upstream names it by. Read-only once made,
 * so one pc_import_t serves every pool thread at once. */
typedef struct pc_import pc_import_t;

/* pc_import_new loads the import private key from key_file (PEM, RSA of at least
 * PC_IMPORT_MIN_RSA_BITS) under the id key_id. An unencrypted key is accepted only when the
 * file is not readable by group or others (else "chmod 600 FILE"); an encrypted PEM is
 * decrypted with the passphrase in $PC_IMPORT_KEY_PASSPHRASE. Uploaded PFX files are held to
 * limits (copied; NULL: pfx.h's defaults). *out is the caller's (pc_import_free).
 * PC_ERR_INVALID_PARAM for a missing path or id, a loose file mode, a missing or wrong
 * passphrase or an unsuitable key; PC_ERR_IO when the file cannot be read. */
pc_err_t pc_import_new(const char *key_file, const char *key_id, const pc_pfx_limits_t *limits,
                       pc_import_t **out, pc_diag_t *diag);

/* pc_import_get0_key_id returns the borrowed id of the import key. */
const char *pc_import_get0_key_id(const pc_import_t *imp);

/* pc_import_free wipes and frees imp (NULL allowed). */
void pc_import_free(pc_import_t *imp);

/*
 * pc_import_run does one IMPORT_PFX body: checks the import key id, decrypts the PFX password
 * (RSA-OAEP, MGF1 with the same hash), opens the PFX, checks it (key matches certificate,
 * certificate valid now, key usage and EKU fit body->intended_purpose) and re-packs key,
 * certificate and chain into a PFX with an empty password enveloped to body->device_public_key.
 * On success res gets status IMPORTED, the certificate fields and encrypted_pfx; on failure res
 * is left for the caller to mark (pc_result_set_error). Errors: PC_ERR_NOT_SUPPORTED when imp
 * is NULL (no import key configured); PC_ERR_INVALID_PARAM for a wrong key id, OAEP hash,
 * purpose, undecryptable password or unusable device key; PC_ERR_UNAUTHENTICATED when the
 * password does not open the PFX; PC_ERR_INVALID_PARAM (PC_ERR_TOO_LARGE for its size) naming
 * the count and the limit for a PFX over the import's limits, refused before any key
 * derivation; PC_ERR_BAD_MESSAGE for a corrupt PFX; PC_ERR_POLICY for a
 * certificate that is expired, not yet valid or not for the purpose. The password never
 * appears in a message and is wiped, as is the re-packed PFX. Pool threads; thread-safe.
 */
pc_err_t pc_import_run(const pc_import_t *imp, const Pkcs__V1__ImportPfxRequest *body,
                       Pkcs__V1__Result *res, pc_diag_t *diag);

#endif
