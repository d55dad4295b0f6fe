/*
 * import_int.h - what the two ends of the PFX import outside the workers share: `pkcsctl
 * import-key` (import_key.c), which makes the connector's import key and names it, and `pkcsctl
 * import-encrypt` (import_encrypt.c), which encrypts to that key under that name. Defined in
 * import_key.c. Main thread only.
 */
#ifndef PKCSCTL_IMPORT_INT_H
#define PKCSCTL_IMPORT_INT_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "common.h"

/* The import key's id when none is given, in both commands. */
#define IMPORT_DEFAULT_KEY_ID "import-1"

/* pkcsctl_import_key_id_ok allows key ids that read well in configuration, logs and requests:
 * 1 to PC_MAX_ID_LEN letters, digits, '.', '_' or '-'. */
bool pkcsctl_import_key_id_ok(const char *id);

/* pkcsctl_import_fingerprint writes the upper-case hex SHA-256 of key's SubjectPublicKeyInfo
 * DER: what `openssl pkey -pubin -outform DER | sha256sum` shows, for upstream to check the key
 * it was given. Returns 0, or -1 when the key cannot be encoded. */
int pkcsctl_import_fingerprint(const EVP_PKEY *key, char hex[PKCSCTL_SHA256_HEX_LEN]);

#endif
