/*
 * ca_local_crl.c - the local CA's certificate revocation list, built from its index.
 *
 * Relying parties learn of revocations only through a CRL, so the coordinator publishes a fresh
 * one periodically. Any thread (a pool thread: reading the index blocks on Redis or a file);
 * signs with the read-only key.
 */
#include "ca_int.h"

#include <stdlib.h>

#include <openssl/err.h>

static bool add_crl_number(X509_CRL *crl, uint64_t number)
{
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    bool ok = n != NULL && ASN1_INTEGER_set_uint64(n, number) &&
              X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_INTEGER_free(n);
    return ok;
}

static bool add_crl_akid(X509_CRL *crl, const ASN1_OCTET_STRING *keyid)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    bool ok =
        akid != NULL && (akid->keyid = ASN1_OCTET_STRING_dup(keyid)) != NULL &&
        X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
    AUTHORITY_KEYID_free(akid);
    return ok;
}

static bool add_entry(X509_CRL *crl, const pc_ca_index_revoked_t *item)
{
    bool ok = false;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_new();
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    X509_REVOKED *rev = X509_REVOKED_new();

    if (when == NULL || reason == NULL || rev == NULL || !BN_hex2bn(&bn, item->serial_hex) ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        !ASN1_TIME_set_string_X509(when, item->revoked_at) ||
        !X509_REVOKED_set_serialNumber(rev, serial) || !X509_REVOKED_set_revocationDate(rev, when))
        goto out_free_rev;
    /* RFC 5280 5.3.1: the reason code is omitted rather than given as unspecified. */
    if (item->reason != PC_REVOKE_UNSPECIFIED &&
        (!ASN1_ENUMERATED_set(reason, item->reason) ||
         X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT) != 1))
        goto out_free_rev;
    if (!X509_CRL_add0_revoked(crl, rev))
        goto out_free_rev;
    rev = NULL;
    ok = true;
out_free_rev:
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static pc_err_t fill_crl(pc_ca_local_t *lca, X509_CRL *crl, unsigned hours, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_ca_index_revoked_t *items = NULL;
    size_t count = 0;
    uint64_t number = 0;
    ASN1_TIME *t = ASN1_TIME_new();
    time_t now = time(NULL);

    if (t == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(lca->cert)) ||
        !ASN1_TIME_set(t, now) || !X509_CRL_set1_lastUpdate(crl, t) ||
        !ASN1_TIME_adj(t, now, 0, (long)hours * 3600) || !X509_CRL_set1_nextUpdate(crl, t)) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot fill the CRL of CA \"%s\"", lca->base.name);
        goto out_free_items;
    }
    err = pc_ca_index_list_revoked(lca->index, &items, &count, diag);
    if (err == PC_OK)
        err = pc_ca_index_next_crl_number(lca->index, &number, diag);
    if (err != PC_OK)
        goto out_free_items;
    for (size_t i = 0; i < count; i++) {
        if (!add_entry(crl, &items[i])) {
            err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add serial %s to the CRL",
                              items[i].serial_hex);
            goto out_free_items;
        }
    }
    if (!add_crl_number(crl, number) || !add_crl_akid(crl, lca->keyid))
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot add the CRL extensions");
out_free_items:
    free(items);
    ASN1_TIME_free(t);
    return err;
}

pc_err_t pc_ca_local_crl(pc_ca_t *ca, unsigned next_update_hours, unsigned char **der, size_t *len,
                         pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    pc_ca_local_t *lca = pc_ca_local_from(ca);
    X509_CRL *crl = NULL;

    *der = NULL;
    *len = 0;
    if (lca == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "CA \"%s\" is not a local CA; it has no CRL here",
                       ca != NULL ? ca->name : "(none)");
    if (next_update_hours == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "a CRL needs a nextUpdate at least 1 hour ahead; set the CRL period");
    crl = X509_CRL_new();
    if (crl == NULL) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory building a CRL");
        goto out_free_crl;
    }
    err = fill_crl(lca, crl, next_update_hours, diag);
    if (err != PC_OK)
        goto out_free_crl;
    X509_CRL_sort(crl);
    if (pc_ca_local_sign_crl(lca, crl) <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "CA \"%s\" cannot sign its CRL", lca->base.name);
        goto out_free_crl;
    }
    int n = i2d_X509_CRL(crl, der);
    if (n <= 0) {
        err =
            pc_fail_ssl(diag, PC_ERR_CRYPTO, "cannot encode the CRL of CA \"%s\"", lca->base.name);
        goto out_free_crl;
    }
    *len = (size_t)n;
out_free_crl:
    X509_CRL_free(crl);
    return err;
}

pc_err_t pc_ca_local_revoked_count(pc_ca_t *ca, uint64_t *count, pc_diag_t *diag)
{
    pc_ca_local_t *lca = pc_ca_local_from(ca);
    *count = 0;
    if (lca == NULL)
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED, "CA \"%s\" is not a local CA",
                       ca != NULL ? ca->name : "(none)");
    return pc_ca_index_revoked_count(lca->index, count, diag);
}
