/*
 * pkcsctl_import.h - the PFX import subcommands: make the connector's import key, and encrypt
 * an administrator's PFX password to it in an IMPORT_PFX request.
 */
#ifndef PKCSCTL_IMPORT_H
#define PKCSCTL_IMPORT_H

/* pkcsctl_import_key is `pkcsctl import-key`: a new RSA import key pair in two PEM files. */
int pkcsctl_import_key(int argc, char **argv);

/* pkcsctl_import_encrypt is `pkcsctl import-encrypt`: an IMPORT_PFX request in JSON. */
int pkcsctl_import_encrypt(int argc, char **argv);

#endif
