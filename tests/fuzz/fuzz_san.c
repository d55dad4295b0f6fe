/*
 * fuzz_san.c - libFuzzer target: subject alternative names and the SID extension from formats
 * with variables (lib/crypto/san.c and vars.c), which come from the profile and the attributes
 * of a request, and a template's name policy over the rendered names (lib/ca/name_policy.c),
 * as pc_ca_template_check applies it before a CA signs.
 *
 * Input: one flags byte, then NUL-separated fields: SAN formats up to an empty field, each led
 * by one byte naming its type (its value modulo 6: 1 UPN, 2 email, 3 DNS, 4 URI, 0 and 5 none),
 * then variable name/value pairs. Flags bit 0: a device certificate, else a user one; the policy
 * (domain lists contoso.com and example.org): bit 1 allows subdomains, bit 2 wildcards, bit 3
 * only DNS and e-mail SANs, bit 4 empty lists (any domain). Each format is also expanded alone
 * (pc_vars_expand), its text judged by pc_san_problem for each type, and read as a SID
 * (pc_sid_extension_new).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzz_util.h"
#include "name_policy.h"
#include "request.h"
#include "san.h"

static pc_name_policy_t lists; /* the domain lists; each input sets the flags of a copy */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const domains[] = {"contoso.com", "example.org"};
    pc_diag_t diag = {{0}};
    for (size_t i = 0; i < 2; i++)
        if (pc_name_policy_add_domain(&lists.dns_domains, &lists.dns_domain_count, domains[i],
                                      "dns", &diag) != PC_OK ||
            pc_name_policy_add_domain(&lists.email_domains, &lists.email_domain_count, domains[i],
                                      "email", &diag) != PC_OK ||
            pc_name_policy_add_domain(&lists.upn_suffixes, &lists.upn_suffix_count, domains[i],
                                      "upn", &diag) != PC_OK) {
            fprintf(stderr, "fuzz_san: %s\n", diag.msg);
            abort();
        }
    return 0;
}

static void one_format(const char *format, pc_cert_type_t type, const pc_vars_t *vars)
{
    pc_diag_t diag = {{0}};
    char *text = NULL;
    X509_EXTENSION *sid = NULL;

    if (pc_vars_expand(format, type, vars, &text, &diag) == PC_OK) {
        char buf[PC_SAN_PROBLEM_MAX];
        for (pc_san_type_t t = PC_SAN_UPN; t <= PC_SAN_URI; t++)
            (void)pc_san_problem(t, text, strlen(text), buf, sizeof(buf));
        free(text);
    }
    if (pc_sid_extension_new(format, &sid, &diag) == PC_OK)
        X509_EXTENSION_free(sid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fields_t f;
    pc_san_format_t formats[PC_MAX_SANS];
    pc_var_t items[FUZZ_MAX_FIELDS / 2];
    pc_vars_t vars = {.items = items, .count = 0};
    size_t nformats = 0, i = 0;
    pc_diag_t diag = {{0}};
    GENERAL_NAMES *names = NULL;

    if (size < 1 || !fuzz_split(data + 1, size - 1, FUZZ_MAX_FIELDS, &f))
        return 0;
    pc_cert_type_t type = (data[0] & 1) ? PC_CERT_DEVICE : PC_CERT_USER;
    for (; i < f.count && f.field[i][0] != '\0'; i++) {
        if (nformats == PC_MAX_SANS)
            continue;
        formats[nformats].type = (pc_san_type_t)((unsigned char)f.field[i][0] % 6);
        formats[nformats].format = f.field[i] + 1;
        nformats++;
    }
    for (i++; i + 1 < f.count; i += 2) {
        items[vars.count].name = f.field[i];
        items[vars.count].value = f.field[i + 1];
        vars.count++;
    }
    for (size_t j = 0; j < nformats; j++)
        one_format(formats[j].format, type, &vars);
    if (pc_san_render(formats, nformats, type, &vars, &names, &diag) == PC_OK) {
        unsigned char *der = NULL; /* the CSR encodes them: they must encode */
        if (i2d_GENERAL_NAMES(names, &der) <= 0) {
            fprintf(stderr, "fuzz_san: rendered names do not encode\n");
            abort();
        }
        OPENSSL_free(der);
        pc_name_policy_t policy = lists;
        if (data[0] & 16)
            policy.dns_domain_count = policy.email_domain_count = policy.upn_suffix_count = 0;
        policy.allow_subdomains = (data[0] & 2) != 0;
        policy.allow_wildcards = (data[0] & 4) != 0;
        policy.san_types = (data[0] & 8) ? PC_NAME_SAN_DNS | PC_NAME_SAN_EMAIL : 0;
        for (int j = 0; j < sk_GENERAL_NAME_num(names); j++)
            (void)pc_name_policy_check_san(&policy, "User", sk_GENERAL_NAME_value(names, j), &diag);
        GENERAL_NAMES_free(names);
    }
    fuzz_fields_free(&f);
    ERR_clear_error();
    return 0;
}
