/*
 * pkcsctl.h - the subcommands of pkcsctl and the small helpers they share.
 */
#ifndef PKCSCTL_H
#define PKCSCTL_H

#include <stdbool.h>

#include "pc_err.h"

int pkcsctl_issue(int argc, char **argv);
int pkcsctl_decrypt(int argc, char **argv);
int pkcsctl_submit(int argc, char **argv);
int pkcsctl_watch(int argc, char **argv);
int pkcsctl_revoke(int argc, char **argv);
int pkcsctl_crl(int argc, char **argv);
int pkcsctl_ca_cert(int argc, char **argv);
int pkcsctl_status(int argc, char **argv);
int pkcsctl_lint_profile(int argc, char **argv);

/* pkcsctl_error prints "pkcsctl CMD: message" to stderr and returns the exit code 1
 * (2 for usage errors: see pkcsctl_usage_error). */
int pkcsctl_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pkcsctl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pkcsctl_diag_error prints err and diag for cmd, returns 1. */
int pkcsctl_diag_error(const char *cmd, pc_err_t err, const pc_diag_t *diag);

#endif
