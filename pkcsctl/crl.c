/*
 * pkcsctl crl: a freshly signed CRL of a configured local CA, for relying parties, without Kafka
 * or a coordinator: every certificate the CA revoked (from its records in the cluster's Redis),
 * a new CRL number and a nextUpdate some hours from now. Opens the CAs of the configuration the
 * way the workers do (pkcsctl_open_ca), so it needs the same CA key passphrase. Main thread
 * only, blocking.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_local.h"
#include "common.h"
#include "config.h"
#include "engine.h"
#include "numbers.h"

#define CMD "crl"
#define DEFAULT_NEXT_UPDATE_HOURS 24L

typedef struct crl_opts {
    const char *ca_name;
    const char *config;
    const char *out; /* NULL: standard output */
    bool der;
    long next_update_hours;
} crl_opts_t;

static void help(void)
{
    printf("usage: pkcsctl crl --ca NAME [--config FILE] [--out FILE] [--der]\n"
           "                   [--next-update-hours H]\n\n"
           "Signs a fresh certificate revocation list with the configured local CA NAME: every\n"
           "certificate it revoked, with its reason and time, a new CRL number, and a nextUpdate\n"
           "H hours from now. Reads the CA's records from the cluster's Redis like the workers\n"
           "do (same configuration, redis section and CA key passphrase); no Kafka is needed.\n\n"
           "options:\n"
           "  --ca NAME              the CA, as named in the configuration's cas section\n"
           "  --config FILE          configuration file (default: $PC_CONFIG, else built-in\n"
           "                         defaults)\n"
           "  --out FILE             write the CRL there (default: standard output)\n"
           "  --der                  DER instead of PEM\n"
           "  --next-update-hours H  validity of the CRL, 1-8760 hours (default %ld)\n\n"
           "Read it with: openssl crl -in FILE -noout -text\n",
           DEFAULT_NEXT_UPDATE_HOURS);
}

/* parse_opts returns -1 to go on, else the exit code (0 after --help). */
static int parse_opts(int argc, char **argv, crl_opts_t *o)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"der", no_argument, NULL, 'd'},
        {"next-update-hours", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
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
        case 'n':
            if (!pc_parse_long(optarg, 1, 8760, &o->next_update_hours))
                return pkcsctl_usage_error(CMD, "--next-update-hours wants 1-8760, not \"%s\"",
                                           optarg);
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

static int write_crl(const crl_opts_t *o, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = NULL;
    BIO *bio = NULL;
    int rc = 1;
    if (o->der)
        return pkcsctl_write_out(CMD, o->out, der, len);
    if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_X509_CRL(bio, crl)) {
        rc = pkcsctl_error(CMD, "cannot encode the CRL of CA \"%s\" as PEM", o->ca_name);
        goto out_free_bio;
    }
    rc = pkcsctl_write_out_bio(CMD, o->out, bio);
out_free_bio:
    BIO_free(bio);
    X509_CRL_free(crl);
    return rc;
}

int pkcsctl_crl(int argc, char **argv)
{
    crl_opts_t o = {.config = getenv("PC_CONFIG"), .next_update_hours = DEFAULT_NEXT_UPDATE_HOURS};
    pc_config_t *cfg = NULL;
    pc_engine_t *engine = NULL;
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {{0}};
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if ((rc = pkcsctl_open_ca(CMD, o.config, o.ca_name, &cfg, &engine, &ca)) != 0)
        goto out_free_engine;
    pc_err_t err = pc_ca_local_crl(ca, (unsigned)o.next_update_hours, &der, &len, &diag);
    if (err != PC_OK) {
        rc = pkcsctl_diag_error(CMD, err, &diag);
        goto out_free_engine;
    }
    rc = write_crl(&o, der, len);
    OPENSSL_free(der);
out_free_engine:
    pc_engine_free(engine);
    pc_config_free(cfg);
    return rc;
}
