/*
 * pfx.c - opens a PKCS#12 (PFX): an imported one, and ours in the tests. pfx_build.c writes
 * the ones a device imports.
 *
 * A PFX from outside (IMPORT_PFX) chooses its own key-derivation work: before OpenSSL derives
 * any key from it, scan() reads every iteration count and counts the parts (pfx.h's limits).
 * Pool threads; no shared state.
 */
#include "pfx.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#define PFX_MAX_DEPTH 4 /* safeContentsBag inside safeContentsBag...: OpenSSL recurses */

/* check_password tells whether password verifies the MAC, and which form of it does in
 * *effective. OpenSSL derives different keys from NULL and "" (no BMPString terminator vs one);
 * producers differ, so "" accepts either, as PKCS12_parse does. */
static bool check_password(PKCS12 *p12, const char *password, const char **effective)
{
    *effective = password;
    if (!PKCS12_mac_present(p12)) {
        if (password[0] == '\0')
            *effective = NULL; /* PKCS12_parse's choice without a MAC */
        return true;           /* nothing to verify; decryption below will tell */
    }
    if (PKCS12_verify_mac(p12, password, -1) == 1)
        return true;
    *effective = NULL;
    return password[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0) == 1;
}

/* ---- bounds, read before any key derivation ---------------------------------------------- */

/* What a scan has found so far. */
typedef struct scan {
    const pc_pfx_limits_t *limits;
    unsigned bags, certs;
} scan_t;

/* setting_text writes " (worker.pfx_max_NAME)" when the limits say where they are set. */
static const char *setting_text(const scan_t *sc, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sc->limits->setting != NULL)
        snprintf(buf, len, " (%smax_%s)", sc->limits->setting, name);
    return buf;
}

static pc_err_t check_iter(const scan_t *sc, const ASN1_INTEGER *iter, const char *what,
                           pc_diag_t *diag)
{
    int64_t n = 1; /* an absent count means 1 (RFC 7292 MacData's default) */
    char where[80];

    if (iter != NULL && ASN1_INTEGER_get_int64(&n, iter) != 1) {
        ERR_clear_error();
        n = INT64_MAX; /* too large for 64 bits: over any limit */
    }
    if (n < 1)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX's %s has an iteration count of %" PRId64,
                       what, n);
    if ((uint64_t)n <= sc->limits->max_iterations)
        return PC_OK;
    return pc_fail(diag, PC_ERR_INVALID_PARAM,
                   "the PFX's %s asks for %" PRId64 " key-derivation iterations, over the limit "
                   "of %u%s; export it again with fewer (Windows and OpenSSL write 2000 to 2048)",
                   what, n, sc->limits->max_iterations,
                   setting_text(sc, "iterations", where, sizeof(where)));
}

/* sequence_of returns the DER of a SEQUENCE-typed AlgorithmIdentifier parameter, or NULL. */
static const ASN1_STRING *sequence_of(const X509_ALGOR *alg, const ASN1_OBJECT **obj)
{
    int type = V_ASN1_UNDEF;
    const void *value = NULL;

    X509_ALGOR_get0(obj, &type, &value, alg);
    return type == V_ASN1_SEQUENCE ? value : NULL;
}

static pc_err_t check_pbkdf2(const scan_t *sc, const X509_ALGOR *keyfunc, const char *what,
                             pc_diag_t *diag)
{
    const ASN1_OBJECT *obj = NULL;
    const ASN1_STRING *seq = sequence_of(keyfunc, &obj);
    const unsigned char *p = seq != NULL ? ASN1_STRING_get0_data(seq) : NULL;
    PBKDF2PARAM *kdf = NULL;
    char name[80];
    pc_err_t err;

    if (OBJ_obj2nid(obj) != NID_id_pbkdf2) {
        OBJ_obj2txt(name, sizeof(name), obj, 0);
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the PFX's %s derives its key with %s, whose cost is not bounded here; "
                       "export it with PBKDF2 (AES-256-CBC) or the PKCS#12 KDF",
                       what, name);
    }
    if (p == NULL || (kdf = d2i_PBKDF2PARAM(NULL, &p, ASN1_STRING_length(seq))) == NULL) {
        ERR_clear_error();
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX's %s has unreadable PBKDF2 parameters",
                       what);
    }
    err = check_iter(sc, kdf->iter, what, diag);
    PBKDF2PARAM_free(kdf);
    return err;
}

/* check_pbe reads the iteration count of a password-based encryption: PBES2 (with PBKDF2) or
 * a PKCS#5 v1 / PKCS#12 PBE (PBEParameter), without deriving anything. */
static pc_err_t check_pbe(const scan_t *sc, const X509_ALGOR *alg, const char *what,
                          pc_diag_t *diag)
{
    const ASN1_OBJECT *obj = NULL;
    const ASN1_STRING *seq = sequence_of(alg, &obj);
    const unsigned char *p = seq != NULL ? ASN1_STRING_get0_data(seq) : NULL;
    int nid = OBJ_obj2nid(obj);
    pc_err_t err;

    if (nid == NID_pbes2) {
        PBE2PARAM *pbe2 = p != NULL ? d2i_PBE2PARAM(NULL, &p, ASN1_STRING_length(seq)) : NULL;
        if (pbe2 == NULL) {
            ERR_clear_error();
            return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX's %s has unreadable PBES2 parameters",
                           what);
        }
        err = check_pbkdf2(sc, pbe2->keyfunc, what, diag);
        PBE2PARAM_free(pbe2);
        return err;
    }
    if (nid == NID_undef || EVP_PBE_find(EVP_PBE_TYPE_OUTER, nid, NULL, NULL, NULL) != 1)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the PFX's %s is encrypted with an algorithm that is not password-based",
                       what);
    PBEPARAM *pbe = p != NULL ? d2i_PBEPARAM(NULL, &p, ASN1_STRING_length(seq)) : NULL;
    if (pbe == NULL) {
        ERR_clear_error();
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX's %s has unreadable PBE parameters",
                       what);
    }
    err = check_iter(sc, pbe->iter, what, diag);
    PBEPARAM_free(pbe);
    return err;
}

/* scan_bags counts bags and certificates and checks each shrouded key's PBE, nested bags
 * included. */
static pc_err_t scan_bags(scan_t *sc, const STACK_OF(PKCS12_SAFEBAG) * bags, int depth,
                          pc_diag_t *diag)
{
    pc_err_t err = PC_OK;

    if (depth > PFX_MAX_DEPTH)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the PFX nests its bags more than %d deep; export it again", PFX_MAX_DEPTH);
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags) && err == PC_OK; i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        const X509_ALGOR *alg = NULL;

        sc->bags++;
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_pkcs8ShroudedKeyBag:
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
            err = alg != NULL ? check_pbe(sc, alg, "key bag", diag)
                              : pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX's key bag is empty");
            break;
        case NID_certBag:
            sc->certs++;
            break;
        case NID_safeContentsBag:
            err = scan_bags(sc, PKCS12_SAFEBAG_get0_safes(bag), depth + 1, diag);
            break;
        default:
            break;
        }
    }
    return err;
}

static pc_err_t check_counts(const scan_t *sc, pc_diag_t *diag)
{
    char where[80];

    if (sc->bags > sc->limits->max_bags)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the PFX holds %u bags (with the parts holding them), over the limit of "
                       "%u%s; export only the key, its certificate and its chain",
                       sc->bags, sc->limits->max_bags,
                       setting_text(sc, "bags", where, sizeof(where)));
    if (sc->certs > sc->limits->max_certs)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the PFX holds %u certificates, over the limit of %u%s; export only the "
                       "certificate and its chain",
                       sc->certs, sc->limits->max_certs,
                       setting_text(sc, "certs", where, sizeof(where)));
    return PC_OK;
}

static bool is_encrypted(const PKCS7 *p7)
{
    return OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted;
}

/* scan_visible checks what needs no key: the MAC's count, every part's (ContentInfo's)
 * encryption and the bags of the parts in clear. */
static pc_err_t scan_visible(scan_t *sc, PKCS12 *p12, STACK_OF(PKCS7) * safes, pc_diag_t *diag)
{
    const ASN1_INTEGER *mac_iter = NULL;
    pc_err_t err = PC_OK;

    if (PKCS12_mac_present(p12)) {
        PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
        if ((err = check_iter(sc, mac_iter, "MAC", diag)) != PC_OK)
            return err;
    }
    sc->bags += (unsigned)sk_PKCS7_num(safes);
    for (int i = 0; i < sk_PKCS7_num(safes) && err == PC_OK; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        if (is_encrypted(p7)) {
            if (p7->d.encrypted == NULL || p7->d.encrypted->enc_data == NULL)
                return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX has an empty encrypted part");
            err = check_pbe(sc, p7->d.encrypted->enc_data->algorithm, "encrypted part", diag);
        } else if (OBJ_obj2nid(p7->type) == NID_pkcs7_data) {
            STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);
            if (bags == NULL) {
                ERR_clear_error();
                return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX has an unreadable part");
            }
            err = scan_bags(sc, bags, 0, diag);
            sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        }
    }
    return err == PC_OK ? check_counts(sc, diag) : err;
}

/* scan_encrypted decrypts each encrypted part (its count already checked) and checks the bags
 * inside before anything derives a key from them. OpenSSL decrypts them again in PKCS12_parse:
 * the price of not re-implementing it, bounded like the rest. */
static pc_err_t scan_encrypted(scan_t *sc, STACK_OF(PKCS7) * safes, const char *password,
                               pc_diag_t *diag)
{
    pc_err_t err = PC_OK;

    for (int i = 0; i < sk_PKCS7_num(safes) && err == PC_OK; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        if (!is_encrypted(p7))
            continue;
        STACK_OF(PKCS12_SAFEBAG) *bags =
            PKCS12_unpack_p7encdata(p7, password, password != NULL ? -1 : 0);
        if (bags == NULL)
            return pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE,
                               "the PFX could not be decrypted or its contents are corrupt");
        err = scan_bags(sc, bags, 0, diag);
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    return err == PC_OK ? check_counts(sc, diag) : err;
}

static pc_err_t decode_pfx(const unsigned char *der, size_t len, PKCS12 **p12, pc_diag_t *diag)
{
    const unsigned char *p = der;

    if (len == 0 || len > LONG_MAX)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX is empty or too large (%zu bytes)", len);
    *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (*p12 == NULL)
        return pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE, "the PFX is not valid PKCS#12 DER");
    if ((size_t)(p - der) != len) {
        PKCS12_free(*p12);
        *p12 = NULL;
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX has %zu bytes of trailing data",
                       len - (size_t)(p - der));
    }
    return PC_OK;
}

pc_err_t pc_pfx_open(const unsigned char *der, size_t len, const char *password, EVP_PKEY **key,
                     X509 **cert, STACK_OF(X509) * *chain, pc_diag_t *diag)
{
    return pc_pfx_open_limited(der, len, password, NULL, key, cert, chain, diag);
}

static const pc_pfx_limits_t default_limits = {
    .max_iterations = PC_PFX_MAX_ITERATIONS_DEFAULT,
    .max_bytes = PC_PFX_MAX_BYTES_DEFAULT,
    .max_bags = PC_PFX_MAX_BAGS_DEFAULT,
    .max_certs = PC_PFX_MAX_CERTS_DEFAULT,
};

pc_err_t pc_pfx_open_limited(const unsigned char *der, size_t len, const char *password,
                             const pc_pfx_limits_t *limits, EVP_PKEY **key, X509 **cert,
                             STACK_OF(X509) * *chain, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    PKCS12 *p12 = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x509 = NULL;
    STACK_OF(X509) *ca = NULL;
    scan_t sc = {.limits = limits != NULL ? limits : &default_limits};
    const char *effective = NULL;
    char where[80];

    if (der == NULL || password == NULL || key == NULL || cert == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_pfx_open needs the PFX, a password (may be empty) and outputs");
    *key = NULL;
    *cert = NULL;
    if (chain != NULL)
        *chain = NULL;
    if (len > sc.limits->max_bytes)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "the PFX is %zu bytes, over the limit of %zu%s", len,
                       sc.limits->max_bytes, setting_text(&sc, "bytes", where, sizeof(where)));
    err = decode_pfx(der, len, &p12, diag);
    if (err != PC_OK)
        goto out;
    if ((safes = PKCS12_unpack_authsafes(p12)) == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE, "the PFX's contents are unreadable");
        goto out_free_p12;
    }
    if ((err = scan_visible(&sc, p12, safes, diag)) != PC_OK)
        goto out_free_safes;
    if (!check_password(p12, password, &effective)) {
        err = pc_fail(diag, PC_ERR_UNAUTHENTICATED, "the PFX password is wrong");
        ERR_clear_error();
        goto out_free_safes;
    }
    if ((err = scan_encrypted(&sc, safes, effective, diag)) != PC_OK)
        goto out_free_safes;
    if (PKCS12_parse(p12, password, &pkey, &x509, &ca) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE,
                          "the PFX could not be decrypted or its contents are corrupt");
        goto out_free_safes;
    }
    if (pkey == NULL || x509 == NULL) {
        err = pc_fail(diag, PC_ERR_BAD_MESSAGE, "the PFX holds no %s",
                      pkey == NULL ? "private key" : "certificate matching its private key");
        goto out_free_parts;
    }
    *key = pkey;
    *cert = x509;
    pkey = NULL;
    x509 = NULL;
    if (chain != NULL) {
        *chain = ca;
        ca = NULL;
    }
out_free_parts:
    EVP_PKEY_free(pkey);
    X509_free(x509);
    sk_X509_pop_free(ca, X509_free);
out_free_safes:
    sk_PKCS7_pop_free(safes, PKCS7_free);
out_free_p12:
    PKCS12_free(p12);
out:
    return err;
}
