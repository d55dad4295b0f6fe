/*
 * pfx.c - builds the PKCS#12 (PFX) a device imports, and opens one (imported PFX, tests).
 *
 * Modern algorithms only: the key bag is PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and the MAC is
 * HMAC-SHA256, which every current platform imports. Certificates are public, so their bag is
 * not encrypted (as Windows' own exports of a chain do). The connector seals the PFX in a CMS
 * envelope to the device key, so the PFX password is usually empty; it must still open with
 * `openssl pkcs12 -passin pass:`. Pool threads; no shared state.
 */
#include "pfx.h"

#include <limits.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>

/*
 * PBKDF2 and MAC iterations. An iteration count stretches a password against guessing; an empty
 * password has nothing to stretch (the real protection is the CMS envelope to the device key),
 * so it gets one iteration, which saves two 2048-round derivations per issuance (about 40% of
 * an ECDSA request's CPU). A real password gets OpenSSL's own PKCS12_DEFAULT_ITER.
 */
#define PFX_ITER 2048
#define PFX_ITER_NO_PASSWORD 1
#define PFX_CERTS_IN_CLEAR (-1)

static pc_err_t encode_pfx(PKCS12 *p12, unsigned char **der, size_t *len, pc_diag_t *diag)
{
    unsigned char *buf = NULL;
    int n = i2d_PKCS12(p12, &buf);

    if (n <= 0)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the PFX");
    *der = buf;
    *len = (size_t)n;
    return PC_OK;
}

pc_err_t pc_pfx_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *friendly_name,
                      const char *password, unsigned char **der, size_t *len, pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    PKCS12 *p12 = NULL;

    if (key == NULL || cert == NULL || password == NULL || der == NULL || len == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_pfx_build needs a key, a certificate, a "
                       "password (may be empty) and an output");
    *der = NULL;
    *len = 0;
    if (X509_check_private_key(cert, key) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                          "the private key does not belong to the certificate given for the PFX");
        goto out;
    }
    int iter = password[0] == '\0' ? PFX_ITER_NO_PASSWORD : PFX_ITER;
    /* mac_iter -1: no MAC yet; PKCS12_create's MAC would be SHA-1 in OpenSSL 3.0 */
    p12 = PKCS12_create_ex(password, friendly_name, key, cert, chain, NID_aes_256_cbc,
                           PFX_CERTS_IN_CLEAR, iter, -1, 0, NULL, NULL);
    if (p12 == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not create the PFX");
        goto out;
    }
    if (PKCS12_set_mac(p12, password, -1, NULL, 0, iter, EVP_sha256()) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not add the SHA-256 MAC to the PFX");
        goto out_free_p12;
    }
    err = encode_pfx(p12, der, len, diag);
out_free_p12:
    PKCS12_free(p12);
out:
    return err;
}

/* check_password tells whether password verifies the MAC. OpenSSL derives different keys from
 * NULL and "" (no BMPString terminator vs one); producers differ, so "" accepts either. */
static bool check_password(PKCS12 *p12, const char *password)
{
    if (!PKCS12_mac_present(p12))
        return true; /* nothing to verify; decryption below will tell */
    if (PKCS12_verify_mac(p12, password, -1) == 1)
        return true;
    return password[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0) == 1;
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
    pc_err_t err = PC_OK;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *x509 = NULL;
    STACK_OF(X509) *ca = NULL;

    if (der == NULL || password == NULL || key == NULL || cert == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_pfx_open needs the PFX, a password (may be empty) and outputs");
    *key = NULL;
    *cert = NULL;
    if (chain != NULL)
        *chain = NULL;
    err = decode_pfx(der, len, &p12, diag);
    if (err != PC_OK)
        goto out;
    if (!check_password(p12, password)) {
        err = pc_fail(diag, PC_ERR_UNAUTHENTICATED, "the PFX password is wrong");
        ERR_clear_error();
        goto out_free_p12;
    }
    if (PKCS12_parse(p12, password, &pkey, &x509, &ca) != 1) {
        err = pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE,
                          "the PFX could not be decrypted or its contents are corrupt");
        goto out_free_p12;
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
out_free_p12:
    PKCS12_free(p12);
out:
    return err;
}
