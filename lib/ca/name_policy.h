/*
 * name_policy.h - which names a certificate template lets a certificate carry: the SAN types,
 * the DNS domains (and whether their subdomains and wildcards), the e-mail domains and UPN
 * suffixes, and, when the template says its CNs are host names, the subject's CNs. Part of
 * every template (ca.h) and checked by pc_ca_template_check before any backend signs; pkcsctl
 * lint-profile calls the same functions. Any thread: a policy is read-only once configured.
 *
 * Rules, for every CA:
 *   - A DNS name is always checked for syntax (san.h's pc_san_problem: LDH labels, ASCII with
 *     international names as xn-- A-labels, lengths, no trailing dot, not an IP address).
 *   - Wildcards ("*.contoso.com": a first label "*" and nothing else starred) are refused unless
 *     allow_wildcards; even then "*" must stand over at least two labels ("*.com" never passes),
 *     and "*.D" counts as a name under D for the domain rule.
 *   - A domain list allows each domain itself, and with allow_subdomains the names under it
 *     (a whole-label match: "evilcontoso.com" is not under "contoso.com"); compared without
 *     regard to case. The same rule serves DNS names, e-mail domains (after the '@') and UPN
 *     suffixes (after the last '@'). An empty list allows any domain.
 *   - san_types lists the SAN types allowed; 0 allows every type.
 *   - The subject's CNs are checked as DNS names only when cn_is_dns_name is set.
 * A refusal is PC_ERR_POLICY naming the template, the name and the rule.
 */
#ifndef PC_NAME_POLICY_H
#define PC_NAME_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509v3.h>

#include "pc_err.h"

/* SAN types, as bits of pc_name_policy_t.san_types. */
enum {
    PC_NAME_SAN_UPN = 1 << 0,   /* otherName 1.3.6.1.4.1.311.20.2.3 */
    PC_NAME_SAN_EMAIL = 1 << 1, /* rfc822Name */
    PC_NAME_SAN_DNS = 1 << 2,   /* dNSName */
    PC_NAME_SAN_URI = 1 << 3,   /* uniformResourceIdentifier */
    PC_NAME_SAN_IP = 1 << 4,    /* iPAddress */
    PC_NAME_SAN_OTHER = 1 << 5, /* any other otherName, directoryName, registeredID, ... */
};

typedef struct pc_name_policy {
    unsigned san_types; /* PC_NAME_SAN_* allowed; 0: every type */
    char **dns_domains; /* lower case, validated; empty: any domain */
    size_t dns_domain_count;
    char **email_domains; /* the same for the part after '@' of e-mail SANs */
    size_t email_domain_count;
    char **upn_suffixes; /* the same for the part after the last '@' of UPN SANs */
    size_t upn_suffix_count;
    bool allow_subdomains; /* the lists allow names under their domains too; default false */
    bool allow_wildcards;  /* "*.D" DNS names; default false */
    bool cn_is_dns_name;   /* the subject's CNs are host names, held to the DNS rules */
} pc_name_policy_t;

/* pc_name_policy_san_type reads a SAN type name as configured ("UPN", "email", "DNS", "URI",
 * "IP"; any case) into *bit. PC_ERR_INVALID_PARAM naming the word and the choices. */
pc_err_t pc_name_policy_san_type(const char *name, unsigned *bit, pc_diag_t *diag);

/* pc_name_policy_add_domain appends domain (lower-cased) to *list (*count entries, the policy's
 * own: freed by pc_name_policy_clear) after checking it is a DNS name without wildcard or
 * leading dot; what names the setting in messages. PC_ERR_INVALID_PARAM, PC_ERR_NOMEM. */
pc_err_t pc_name_policy_add_domain(char ***list, size_t *count, const char *domain,
                                   const char *what, pc_diag_t *diag);

/* pc_name_policy_check_san checks one SAN against the policy of the template called tmpl_name:
 * its type, its syntax and its domain. PC_ERR_POLICY naming the name and the rule. */
pc_err_t pc_name_policy_check_san(const pc_name_policy_t *policy, const char *tmpl_name,
                                  const GENERAL_NAME *san, pc_diag_t *diag);

/* pc_name_policy_check_subject checks each CN of subject as a DNS name when the policy says CNs
 * are host names (else PC_OK at once). PC_ERR_POLICY naming the CN and the rule. */
pc_err_t pc_name_policy_check_subject(const pc_name_policy_t *policy, const char *tmpl_name,
                                      const X509_NAME *subject, pc_diag_t *diag);

/* pc_name_policy_clear frees the lists and zeroes the policy. */
void pc_name_policy_clear(pc_name_policy_t *policy);

#endif
