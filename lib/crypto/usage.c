/*
 * usage.c - the key usage names, one table. Pure; any thread.
 */
#include "usage.h"

#include <stdbool.h>
#include <stdio.h>
#include <strings.h>

#include <openssl/x509v3.h>

/* RFC 5280's names of the KU_* bits; requestable marks those a request or template may ask for
 * (the CA's own usages, and the *-only modifiers, are not for end entities). */
static const struct {
    unsigned mask;
    const char *name;
    bool requestable;
} usages[] = {
    {KU_DIGITAL_SIGNATURE, "digitalSignature", true},
    {KU_NON_REPUDIATION, "nonRepudiation", true},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment", true},
    {KU_DATA_ENCIPHERMENT, "dataEncipherment", true},
    {KU_KEY_AGREEMENT, "keyAgreement", true},
    {KU_KEY_CERT_SIGN, "keyCertSign", false},
    {KU_CRL_SIGN, "cRLSign", false},
    {KU_ENCIPHER_ONLY, "encipherOnly", false},
    {KU_DECIPHER_ONLY, "decipherOnly", false},
};

#define USAGE_COUNT (sizeof(usages) / sizeof(usages[0]))

pc_err_t pc_key_usage_parse(const char *name, unsigned *bit, pc_diag_t *diag)
{
    for (size_t i = 0; i < USAGE_COUNT; i++) {
        if (usages[i].requestable && strcasecmp(name, usages[i].name) == 0) {
            *bit = usages[i].mask;
            return PC_OK;
        }
    }
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "unknown key usage \"%s\"; use digitalSignature, nonRepudiation, "
                   "keyEncipherment, dataEncipherment or keyAgreement",
                   name);
}

void pc_key_usage_text(unsigned mask, char *buf, size_t n)
{
    size_t pos = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < USAGE_COUNT && pos < n; i++) {
        if ((mask & usages[i].mask) == 0)
            continue;
        int w = snprintf(buf + pos, n - pos, "%s%s", pos > 0 ? ", " : "", usages[i].name);
        pos += w > 0 ? (size_t)w : 0;
    }
    if (pos == 0)
        snprintf(buf, n, "none");
}
