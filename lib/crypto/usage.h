/*
 * usage.h - the names of the key usages (RFC 5280 4.2.1.3), as requests, templates and messages
 * spell them: one table for every module that reads or shows them. Any thread.
 */
#ifndef PC_USAGE_H
#define PC_USAGE_H

#include <stddef.h>

#include "pc_err.h"

/* pc_key_usage_parse sets *bit to the KU_* mask of a key usage a request or template may ask
 * for (digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement; case
 * does not matter). PC_ERR_INVALID_PARAM naming those that may be asked for otherwise. */
pc_err_t pc_key_usage_parse(const char *name, unsigned *bit, pc_diag_t *diag);

/* pc_key_usage_text writes the names of mask's KU_* bits into buf ("digitalSignature,
 * keyAgreement"), "none" for 0; truncated to n bytes. */
void pc_key_usage_text(unsigned mask, char *buf, size_t n);

#endif
