/*
 * fuzz_subject.c - libFuzzer target: subject-name formats with their variables
 * (lib/crypto/subject.c and vars.c), which come from the profile and the attributes of a
 * request, and what is done with a rendered name: its text for logs and results
 * (pc_name_text), and a template's name policy for host-name CNs (lib/ca/name_policy.c).
 *
 * Input: one flags byte, then NUL-separated fields. Flags bit 0: a device certificate (else a
 * user one); bit 1: long values allowed. Without bit 2 the fields are the format and then
 * variable name/value pairs. With bit 2 the one field is the value of UserName in a fixed
 * format, and the target checks the README's promise that a substituted value is always data:
 * whatever it holds, a value that renders lands byte for byte in the one attribute it was
 * placed in and never adds or splits RDNs (bit 3 picks a quoted position). A broken promise
 * aborts: it is a bug, not bad input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "fuzz_util.h"
#include "name_policy.h"
#include "subject.h"
#include "text.h"

#define FLAG_DEVICE 1u
#define FLAG_ALLOW_LONG 2u
#define FLAG_PROPERTY 4u
#define FLAG_QUOTED 8u

static void bug(const char *what, const char *value)
{
    fprintf(stderr, "fuzz_subject: %s (value \"%s\")\n", what, value);
    abort();
}

static const char *entry_text(const X509_NAME *name, int i, int *nid, int *set, int *len)
{
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
    *nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    *set = X509_NAME_ENTRY_set(e);
    *len = ASN1_STRING_length(s);
    return (const char *)ASN1_STRING_get0_data(s);
}

/* check_lands: CN=<value>,O=x must give CN = value and O = x, in two RDNs; O="<value>, Inc"
 * must give one O = value + ", Inc". */
static void check_lands(const X509_NAME *name, const char *value, bool quoted)
{
    int nid, set, len;
    size_t vlen = strlen(value), elen = vlen + (quoted ? 5 : 0);
    const char *text;

    if (X509_NAME_entry_count(name) != (quoted ? 1 : 2))
        bug("the value changed the number of attributes", value);
    text = entry_text(name, 0, &nid, &set, &len);
    if (nid != (quoted ? NID_organizationName : NID_commonName) || set != 0 ||
        (size_t)len != elen || memcmp(text, value, vlen) != 0 ||
        (quoted && memcmp(text + vlen, ", Inc", 5) != 0))
        bug("the value did not land byte for byte in its attribute", value);
    if (quoted)
        return;
    text = entry_text(name, 1, &nid, &set, &len);
    if (nid != NID_organizationName || set != 1 || len != 1 || text[0] != 'x')
        bug("the value changed the attribute after it", value);
}

static void render(const char *format, unsigned flags, const pc_vars_t *vars, const char *value)
{
    pc_diag_t diag = {{0}};
    X509_NAME *name = NULL;
    pc_cert_type_t type = (flags & FLAG_DEVICE) ? PC_CERT_DEVICE : PC_CERT_USER;

    if (pc_subject_render(format, type, vars, (flags & FLAG_ALLOW_LONG) != 0, &name, &diag) !=
        PC_OK)
        return;
    if (value != NULL)
        check_lands(name, value, (flags & FLAG_QUOTED) != 0);
    unsigned char *der = NULL; /* the CSR encodes it: it must encode */
    if (i2d_X509_NAME(name, &der) <= 0)
        bug("a rendered name does not encode", format);
    OPENSSL_free(der);
    char text[128]; /* short, so that cutting at a character boundary is tried too */
    if (pc_name_text(name, text, sizeof(text)) && !pc_utf8_valid(text, strlen(text), NULL))
        bug("pc_name_text cut a rendered name inside a character", format);
    static const pc_name_policy_t host_cns = {.cn_is_dns_name = true};
    (void)pc_name_policy_check_subject(&host_cns, "Device", name, &diag);
    X509_NAME_free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fields_t f;
    pc_var_t items[FUZZ_MAX_FIELDS / 2];
    pc_vars_t vars = {.items = items, .count = 0};

    if (size < 1 || !fuzz_split(data + 1, size - 1, FUZZ_MAX_FIELDS - 1, &f))
        return 0;
    unsigned flags = data[0];
    if (flags & FLAG_PROPERTY) {
        items[0].name = "UserName";
        items[0].value = f.field[0];
        vars.count = 1;
        /* a user variable, so always a user certificate */
        render((flags & FLAG_QUOTED) ? "O=\"{{UserName}}, Inc\"" : "CN={{UserName}},O=x",
               flags & ~FLAG_DEVICE, &vars, f.field[0]);
    } else {
        for (size_t i = 1; i + 1 < f.count; i += 2) {
            items[vars.count].name = f.field[i];
            items[vars.count].value = f.field[i + 1];
            vars.count++;
        }
        render(f.field[0], flags, &vars, NULL);
    }
    fuzz_fields_free(&f);
    ERR_clear_error();
    return 0;
}
