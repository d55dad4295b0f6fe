/*
 * ca_local_token.c - the local CA's key in a PKCS#11 token (an HSM, a smart card, SoftHSM):
 * the key never leaves the token; OpenSSL signs through a handle to it, so issuance, CRLs and
 * the OCSP responder certificate are signed inside the token.
 *
 * Through OpenSSL's ENGINE interface and libp11's pkcs11 engine (Debian's
 * libengine-pkcs11-openssl): Debian 12 ships no pkcs11 provider for OpenSSL 3's provider
 * interface, and OpenSSL 3 still loads engines. The ENGINE calls are deprecated in OpenSSL 3,
 * so this file, and only it, asks for them without the warnings. Runs when the CA is made (the
 * caller's thread); the signing helpers run on any thread.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE_*: see above */
#include "ca_int.h"

#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>

#define ENGINE_ID "pkcs11"

static pc_err_t engine_fail(ENGINE *e, bool initialised, pc_err_t err)
{
    if (initialised)
        ENGINE_finish(e);
    ENGINE_free(e);
    return err;
}

pc_err_t pc_ca_local_token_key(const pc_ca_local_config_t *cfg, EVP_PKEY **key, ENGINE **engine,
                               pc_diag_t *diag)
{
    const char *name = cfg->name;
    *key = NULL;
    *engine = NULL;
    ENGINE *e = ENGINE_by_id(ENGINE_ID);
    if (e == NULL)
        return pc_fail_ssl(diag, PC_ERR_DEPENDENCY,
                           "CA \"%s\": OpenSSL's pkcs11 engine is not installed; install the "
                           "Debian package libengine-pkcs11-openssl (deploy/setup.sh does)",
                           name);
    /* The engine prints its troubles to stderr unless told not to; they reach the error queue
     * too, which diag carries. (Older engines lack QUIET: then they print.) */
    ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1);
    ERR_clear_error();
    /* The module and the PIN are settings of the engine, given before it starts. */
    if (cfg->key_module != NULL && cfg->key_module[0] != '\0' &&
        !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", cfg->key_module, 0))
        return engine_fail(e, false,
                           pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                                       "CA \"%s\": the pkcs11 engine refuses the module %s; check "
                                       "ca.key_module",
                                       name, cfg->key_module));
    if (cfg->key_pin != NULL && cfg->key_pin[0] != '\0' &&
        !ENGINE_ctrl_cmd_string(e, "PIN", cfg->key_pin, 0))
        return engine_fail(e, false,
                           pc_fail_ssl(diag, PC_ERR_CRYPTO,
                                       "CA \"%s\": the pkcs11 engine refuses the PIN setting",
                                       name));
    if (!ENGINE_init(e))
        return engine_fail(
            e, false,
            pc_fail_ssl(diag, PC_ERR_DEPENDENCY,
                        "CA \"%s\": the pkcs11 engine cannot start with module %s; "
                        "check ca.key_module and that the module is installed",
                        name, cfg->key_module != NULL ? cfg->key_module : "(default: p11-kit)"));
    *key = ENGINE_load_private_key(e, cfg->key_uri, NULL, NULL);
    if (*key == NULL)
        return engine_fail(e, true,
                           pc_fail_ssl(diag, PC_ERR_CRYPTO,
                                       "CA \"%s\": no private key %s in the token, or the token "
                                       "refused the PIN; check ca.key_uri (token and object "
                                       "label, type=private) and ca.key_pin_file",
                                       name, cfg->key_uri));
    *engine = e;
    return PC_OK;
}

void pc_ca_local_token_release(ENGINE *engine)
{
    if (engine == NULL)
        return;
    ENGINE_finish(engine);
    ENGINE_free(engine);
}

int pc_ca_local_sign_cert(pc_ca_local_t *lca, X509 *cert, const EVP_MD *md)
{
    if (md == NULL)
        md = lca->md;
    if (lca->engine == NULL)
        return X509_sign(cert, lca->key, md);
    pthread_mutex_lock(&lca->sign_lock);
    int n = X509_sign(cert, lca->key, md);
    pthread_mutex_unlock(&lca->sign_lock);
    return n;
}

int pc_ca_local_sign_crl(pc_ca_local_t *lca, X509_CRL *crl)
{
    if (lca->engine == NULL)
        return X509_CRL_sign(crl, lca->key, lca->md);
    pthread_mutex_lock(&lca->sign_lock);
    int n = X509_CRL_sign(crl, lca->key, lca->md);
    pthread_mutex_unlock(&lca->sign_lock);
    return n;
}
