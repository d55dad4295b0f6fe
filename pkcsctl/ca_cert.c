/*
 * pkcsctl ca-cert: the certificate of a configured CA and its chain up to the root, what devices
 * and relying parties need to trust the certificates it issues. Read from the CA's files alone,
 * opened the way the workers open them (pkcsctl_open_ca), so it needs the same CA key
 * passphrase; no Kafka or coordinator. Main thread only, blocking.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common.h"
#include "config.h"
#include "engine.h"

#define CMD "ca-cert"

typedef struct ca_cert_opts {
    const char *ca_name;
    const char *config;
    const char *out; /* NULL: standard output */
    bool der;
} ca_cert_opts_t;

static void help(void)
{
    printf("usage: pkcsctl ca-cert --ca NAME [--config FILE] [--out FILE] [--der]\n\n"
           "Prints the certificate of the configured CA NAME and its chain up to the root\n"
           "(issuing CA first), PEM: what devices and relying parties need to trust the\n"
           "certificates it issues.\n\n"
           "options:\n"
           "  --ca NAME       the CA, as named in the configuration's cas section\n"
           "  --config FILE   configuration file (default: $PC_CONFIG, else built-in defaults)\n"
           "  --out FILE      write there (default: standard output)\n"
           "  --der           the CA certificate alone, DER (DER holds one certificate)\n");
}

/* parse_opts returns -1 to go on, else the exit code (0 after --help). */
static int parse_opts(int argc, char **argv, ca_cert_opts_t *o)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'a'},  {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'}, {"der", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->ca_name = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'd':
            o->der = true;
            break;
        case 'h':
            help();
            return 0;
        default:
            return pkcsctl_usage_error(CMD, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    if (o->ca_name == NULL)
        return pkcsctl_usage_error(CMD, "--ca NAME is required (the CA's name in the "
                                        "configuration, e.g. local)");
    return -1;
}

static int write_chain(const ca_cert_opts_t *o, STACK_OF(X509) * chain)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = 1;
    if (bio == NULL)
        return pkcsctl_error(CMD, "out of memory");
    if (chain == NULL || sk_X509_num(chain) == 0) {
        rc = pkcsctl_error(CMD,
                           "CA \"%s\" has no certificate to show; check its "
                           "cert_file or state_dir",
                           o->ca_name);
        goto out_free_bio;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        if (o->der ? i2d_X509_bio(bio, cert) != 1 : PEM_write_bio_X509(bio, cert) != 1) {
            rc = pkcsctl_error(CMD, "cannot encode certificate %d of CA \"%s\"", i + 1, o->ca_name);
            goto out_free_bio;
        }
        if (o->der)
            break; /* DER is one certificate: the CA's own */
    }
    rc = pkcsctl_write_out_bio(CMD, o->out, bio);
out_free_bio:
    BIO_free(bio);
    return rc;
}

int pkcsctl_ca_cert(int argc, char **argv)
{
    ca_cert_opts_t o = {.config = getenv("PC_CONFIG")};
    pc_config_t *cfg = NULL;
    pc_engine_t *engine = NULL;
    pc_ca_t *ca = NULL;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if ((rc = pkcsctl_open_ca(CMD, o.config, o.ca_name, &cfg, &engine, &ca)) == 0)
        rc = write_chain(&o, ca->ops->get0_chain(ca));
    pc_engine_free(engine);
    pc_config_free(cfg);
    return rc;
}
