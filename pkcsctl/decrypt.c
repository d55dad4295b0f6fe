/*
 * pkcsctl decrypt: open an enveloped result (CMS EnvelopedData, DER) with the device private
 * key, exactly as a device does, and show what is inside: the certificate and chain of the
 * PKCS#12. Optionally writes the PKCS#12 (mode 0600; it holds the private key).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "common.h"
#include "envelope.h"
#include "file.h"
#include "pfx.h"

#define CMD "decrypt"
#define ENVELOPE_MAX_BYTES (1024 * 1024)

static void help(void)
{
    printf("usage: pkcsctl decrypt --key DEVICE_KEY.pem --in RESULT.p7m [--out RESULT.p12]\n\n"
           "Opens the enveloped PKCS#12 of a result with the device's private key, checks\n"
           "that the PKCS#12 holds a certificate and its private key, and prints the\n"
           "certificate's subject, issuer, serial and validity.\n\n"
           "options:\n"
           "  --key FILE   the device private key (PEM)\n"
           "  --in FILE    the enveloped result (CMS DER, result.p7m)\n"
           "  --out FILE   also write the PKCS#12 (empty password), mode 0600\n");
}

static void print_cert(const char *label, X509 *cert)
{
    printf("%-8s", label);
    X509_NAME_print_ex_fp(stdout, X509_get_subject_name(cert), 0,
                          XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    printf("\n");
}

static void print_pfx(X509 *cert, STACK_OF(X509) * chain)
{
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    print_cert("subject", cert);
    printf("issuer  ");
    X509_NAME_print_ex_fp(stdout, X509_get_issuer_name(cert), 0,
                          XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    printf("\nserial  ");
    i2a_ASN1_INTEGER(out, X509_get0_serialNumber(cert));
    BIO_printf(out, "\nvalid   ");
    ASN1_TIME_print(out, X509_get0_notBefore(cert));
    BIO_printf(out, " .. ");
    ASN1_TIME_print(out, X509_get0_notAfter(cert));
    BIO_printf(out, "\nkey     private key present and matches the certificate\n");
    BIO_free(out);
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        print_cert("chain", sk_X509_value(chain, i));
}

static int open_result(EVP_PKEY *key, const char *in, const char *out)
{
    unsigned char *env = NULL, *pfx = NULL;
    size_t env_len = 0, pfx_len = 0;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    pc_diag_t diag = {{0}};
    int rc = 1;
    pc_err_t err = pc_file_read(in, ENVELOPE_MAX_BYTES, &env, &env_len, &diag);
    if (err == PC_OK)
        err = pc_envelope_open(key, env, env_len, &pfx, &pfx_len, &diag);
    if (err == PC_OK)
        err = pc_pfx_open(pfx, pfx_len, "", &pkey, &cert, &chain, &diag);
    if (err == PC_OK && X509_check_private_key(cert, pkey) != 1)
        err = pc_fail(&diag, PC_ERR_CRYPTO, "the PKCS#12's key does not match its certificate");
    if (err == PC_OK && out != NULL)
        err = pc_file_write(out, pfx, pfx_len, 0600, &diag);
    if (err != PC_OK) {
        pc_diag_prefix(&diag, in);
        rc = pkcsctl_diag_error(CMD, err, &diag);
    } else {
        print_pfx(cert, chain);
        rc = 0;
    }
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    if (pfx != NULL)
        OPENSSL_clear_free(pfx, pfx_len);
    free(env);
    return rc;
}

int pkcsctl_decrypt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *in = NULL, *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "hk:i:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            help();
            return 0;
        default:
            return pkcsctl_usage_error(CMD, "unknown option");
        }
    }
    if (key_path == NULL || in == NULL)
        return pkcsctl_usage_error(CMD, "--key FILE and --in FILE are required");
    EVP_PKEY *key = NULL;
    if (pkcsctl_key_load(CMD, "--key", key_path, PKCSCTL_KEY_PRIVATE, &key, NULL, NULL) != 0)
        return 1;
    int rc = open_result(key, in, out);
    EVP_PKEY_free(key);
    return rc;
}
