/*
 * pem.h - the passphrase side of reading PEM private keys, one for every reader (the local CA's
 * key, the import key, signer and result keys, pkcsctl's keys).
 *
 * OpenSSL's default passphrase callback prompts on the terminal when a key is encrypted and no
 * passphrase was given: a service must fail instead, and say whether the key was encrypted so
 * that its error names the fix (a missing passphrase, a wrong one, or not a key at all).
 *
 * Threads: any; the state is the caller's.
 */
#ifndef PC_PEM_H
#define PC_PEM_H

#include <stdbool.h>

/* The state of one read: text is the passphrase (NULL: none; an encrypted key then fails),
 * asked is set when the key turned out to be encrypted. */
typedef struct pc_pem_passphrase {
    const char *text;
    bool asked;
} pc_pem_passphrase_t;

/* pc_pem_passphrase_cb is OpenSSL's pem_password_cb; arg is a pc_pem_passphrase_t. */
int pc_pem_passphrase_cb(char *buf, int size, int rwflag, void *arg);

#endif
