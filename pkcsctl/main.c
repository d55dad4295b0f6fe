/*
 * pkcsctl - the upstream's and the operator's command-line tool. This file is its dispatch
 * table: usage, --version, and which function runs each subcommand. Each subcommand lives in
 * the file named after it (issue.c, submit.c, ca_cert.c...); what several of them use is in
 * common.c.
 */
#include "common.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"issue", pkcsctl_issue,
     "issue a certificate for one request (--offline: local CA, no "
     "cluster)"},
    {"decrypt", pkcsctl_decrypt,
     "open an enveloped result with the device key, as a device "
     "would"},
    {"submit", pkcsctl_submit, "sign requests and produce them to Kafka (files, or generated)"},
    {"watch", pkcsctl_watch,
     "consume results, check for duplicates, open and verify them as devices would"},
    {"revoke", pkcsctl_revoke, "revoke a certificate through the cluster (signed REVOKE request)"},
    {"crl", pkcsctl_crl, "sign and print a fresh CRL of a local CA"},
    {"ca-cert", pkcsctl_ca_cert, "print a CA's certificate and chain"},
    {"status", pkcsctl_status, "show the workers, totals and lag from the coordinator"},
    {"certs", pkcsctl_certs,
     "the inventory: list, show and find expiring certificates (from the coordinator)"},
    {"lint-profile", pkcsctl_lint_profile,
     "check a profile with sample values against its CA template, send nothing"},
    {"dlq", pkcsctl_dlq, "print what the workers set aside on the dead-letter topic"},
    {"audit", pkcsctl_audit, "print the audit trail: every request that ended, every revocation"},
    {"notices", pkcsctl_notices, "print the coordinators' renewal and expiry notices"},
    {"import-key", pkcsctl_import_key, "make the connector's import key pair (PFX import)"},
    {"import-encrypt", pkcsctl_import_encrypt,
     "encrypt a PFX password to the import key: an IMPORT_PFX request in JSON"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: pkcsctl COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'pkcsctl COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pkcsctl %s\n", PC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "pkcsctl: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
