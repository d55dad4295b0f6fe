/*
 * pkcsctl watch: the end-to-end checks of one issued result, done the way the target device
 * would do them - open the enveloped PKCS#12 with the device's private key, make sure it holds
 * exactly the certificate the result announces together with its private key, and verify that
 * certificate up to the CA. Main thread only.
 */
#include "watch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common.h"
#include "envelope.h"
#include "pfx.h"

int pkcsctl_watch_ca_load(const char *path, X509_STORE **store)
{
    *store = X509_STORE_new();
    if (*store == NULL)
        return pkcsctl_error(WATCH_CMD, "out of memory");
    if (X509_STORE_load_file(*store, path) != 1) {
        unsigned long e = ERR_get_error();
        X509_STORE_free(*store);
        *store = NULL;
        ERR_clear_error();
        return pkcsctl_error(WATCH_CMD,
                             "cannot load CA certificates from %s (%s): a PEM file "
                             "with the issuing CA or root certificate is expected",
                             path, e ? ERR_reason_error_string(e) : "no certificate");
    }
    /* the file may hold the issuing CA alone: it is trusted as given */
    X509_STORE_set_flags(*store, X509_V_FLAG_PARTIAL_CHAIN);
    return 0;
}

/* load_device_key reads keys_dir/<id>.pem, where `pkcsctl submit --device-keys` wrote it. */
static EVP_PKEY *load_device_key(const char *keys_dir, const char *id, char *why, size_t why_len)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    pc_diag_t diag = {{0}};
    snprintf(path, sizeof(path), "%s/%s.pem", keys_dir, id);
    if (pkcsctl_key_read("device key", path, PKCSCTL_KEY_PRIVATE, &key, NULL, NULL, &diag) != PC_OK)
        snprintf(why, why_len, "%s", diag.msg);
    return key;
}

/* same_der tells whether cert encodes to exactly der. */
static bool same_der(X509 *cert, const ProtobufCBinaryData *der)
{
    unsigned char *enc = NULL;
    int len = i2d_X509(cert, &enc);
    bool same = len > 0 && (size_t)len == der->len && memcmp(enc, der->data, der->len) == 0;
    OPENSSL_free(enc);
    return same;
}

static bool open_pfx(const Pkcs__V1__Result *res, const char *keys_dir, char *why, size_t why_len)
{
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    pc_diag_t diag = {{0}};
    bool ok = false;
    if (!pkcsctl_safe_name(res->request_id)) {
        snprintf(why, why_len, "request id is not usable as a file name");
        return false;
    }
    EVP_PKEY *device = load_device_key(keys_dir, res->request_id, why, why_len);
    if (device == NULL)
        return false;
    pc_err_t err = pc_envelope_open(device, res->encrypted_pfx.data, res->encrypted_pfx.len, &pfx,
                                    &pfx_len, &diag);
    if (err == PC_OK)
        err = pc_pfx_open(pfx, pfx_len, "", &pkey, &cert, NULL, &diag);
    if (err != PC_OK)
        snprintf(why, why_len, "cannot open the encrypted PFX: %s (%s)", diag.msg,
                 pc_err_code_name(err));
    else if (!same_der(cert, &res->certificate))
        snprintf(why, why_len, "the PFX holds another certificate than the result announces");
    else if (X509_check_private_key(cert, pkey) != 1)
        snprintf(why, why_len, "the PFX's private key does not match its certificate");
    else
        ok = true;
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(pkey);
    if (pfx != NULL)
        OPENSSL_clear_free(pfx, pfx_len);
    EVP_PKEY_free(device);
    return ok;
}

static X509 *parse_cert(const ProtobufCBinaryData *der)
{
    const unsigned char *p = der->data;
    return der->len > 0 ? d2i_X509(NULL, &p, (long)der->len) : NULL;
}

static bool verify_chain(const Pkcs__V1__Result *res, X509 *cert, X509_STORE *store, char *why,
                         size_t why_len)
{
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = false;
    if (untrusted == NULL || ctx == NULL) {
        snprintf(why, why_len, "out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < res->n_chain; i++) {
        X509 *ca = parse_cert(&res->chain[i]);
        if (ca == NULL || !sk_X509_push(untrusted, ca)) {
            X509_free(ca);
            snprintf(why, why_len, "chain certificate %zu is not DER X.509", i + 1);
            goto out_free;
        }
    }
    if (X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
        snprintf(why, why_len, "cannot set up certificate verification");
        goto out_free;
    }
    ok = X509_verify_cert(ctx) == 1;
    if (!ok)
        snprintf(why, why_len, "certificate does not verify against the CA: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out_free:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    return ok;
}

bool pkcsctl_watch_check(const Pkcs__V1__Result *res, const char *keys_dir, X509_STORE *store,
                         char *why, size_t why_len)
{
    X509 *cert = parse_cert(&res->certificate);
    bool ok = false;
    if (cert == NULL)
        snprintf(why, why_len, "the result's certificate is missing or not DER X.509");
    else if (keys_dir == NULL || open_pfx(res, keys_dir, why, why_len))
        ok = store == NULL || verify_chain(res, cert, store, why, why_len);
    ERR_clear_error();
    X509_free(cert);
    return ok;
}
