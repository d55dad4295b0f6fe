/*
 * pkcsctl crl and pkcsctl ca-cert: what relying parties need from a configured CA, without
 * Kafka or a coordinator: a freshly signed CRL of the local CA (from the CA's records in the
 * cluster's Redis), and the CA certificate with its chain (from the CA's files alone). Opens the
 * CAs of the configuration the way the workers do (pc_engine_new), so it needs the same CA key
 * passphrase. Main thread only, blocking.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_local.h"
#include "config.h"
#include "engine.h"
#include "file.h"
#include "common.h"

#define DEFAULT_NEXT_UPDATE_HOURS 24L

/* What both commands take: which CA, where its configuration is, how and where to write. */
typedef struct ca_opts {
    const char *cmd;
    const char *ca_name;
    const char *config;
    const char *out;
    bool der;
    long next_update_hours; /* crl only */
} ca_opts_t;

static void crl_help(void)
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

static void ca_cert_help(void)
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

static bool parse_hours(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > 8760)
        return false;
    *out = v;
    return true;
}

/* parse_opts reads the options of crl (with_hours) or ca-cert. Returns -1 to go on, else the
 * exit code (0 after --help). */
static int parse_opts(int argc, char **argv, bool with_hours, ca_opts_t *o)
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
            if (!with_hours)
                return pkcsctl_usage_error(o->cmd, "unknown option --next-update-hours");
            if (!parse_hours(optarg, &o->next_update_hours))
                return pkcsctl_usage_error(o->cmd, "--next-update-hours wants 1-8760, not \"%s\"",
                                           optarg);
            break;
        case 'h':
            if (with_hours)
                crl_help();
            else
                ca_cert_help();
            return 0;
        default:
            return pkcsctl_usage_error(o->cmd, "unknown option");
        }
    }
    if (optind < argc)
        return pkcsctl_usage_error(o->cmd, "unexpected argument \"%s\"", argv[optind]);
    if (o->ca_name == NULL)
        return pkcsctl_usage_error(o->cmd, "--ca NAME is required (the CA's name in the "
                                           "configuration, e.g. local)");
    return -1;
}

/* open_ca loads the configuration and opens its CAs; *ca is o->ca_name's, borrowed from
 * *engine. Returns 0, or 1 after printing the error. */
static int open_ca(const ca_opts_t *o, pc_config_t **cfg, pc_engine_t **engine, pc_ca_t **ca)
{
    pc_diag_t diag = {{0}};
    pc_err_t err;
    if ((err = pc_config_load(o->config, cfg, &diag)) != PC_OK ||
        (err = pc_engine_new(*cfg, engine, &diag)) != PC_OK)
        return pkcsctl_diag_error(o->cmd, err, &diag);
    if ((*ca = pc_engine_find_ca(*engine, o->ca_name)) == NULL) {
        char names[512];
        size_t pos = 0;
        names[0] = '\0';
        for (size_t i = 0; i < (*engine)->ca_count && pos < sizeof(names); i++) {
            int w = snprintf(names + pos, sizeof(names) - pos, "%s%s", i > 0 ? ", " : "",
                             (*engine)->cas[i]->name);
            pos += w > 0 ? (size_t)w : 0;
        }
        return pkcsctl_error(o->cmd,
                             "no CA named \"%s\" in %s; configured: %s. Give --ca one of "
                             "them, or --config the file that configures it",
                             o->ca_name, o->config ? o->config : "the default configuration",
                             names[0] ? names : "none");
    }
    return 0;
}

/* emit writes len bytes to o->out, or to standard output. Returns 0 or 1. */
static int emit(const ca_opts_t *o, const void *data, size_t len)
{
    pc_diag_t diag = {{0}};
    if (o->out != NULL) {
        pc_err_t err = pc_file_write(o->out, data, len, 0644, &diag);
        return err == PC_OK ? 0 : pkcsctl_diag_error(o->cmd, err, &diag);
    }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
        return pkcsctl_error(o->cmd, "cannot write to standard output: %s", strerror(errno));
    return 0;
}

/* emit_bio writes what bio holds. */
static int emit_bio(const ca_opts_t *o, BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len < 0 || data == NULL)
        return pkcsctl_error(o->cmd, "out of memory");
    return emit(o, data, (size_t)len);
}

static int write_crl(const ca_opts_t *o, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = NULL;
    BIO *bio = NULL;
    int rc = 1;
    if (o->der)
        return emit(o, der, len);
    if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_X509_CRL(bio, crl)) {
        rc = pkcsctl_error(o->cmd, "cannot encode the CRL of CA \"%s\" as PEM", o->ca_name);
        goto out_free_bio;
    }
    rc = emit_bio(o, bio);
out_free_bio:
    BIO_free(bio);
    X509_CRL_free(crl);
    return rc;
}

int pkcsctl_crl(int argc, char **argv)
{
    ca_opts_t o = {.cmd = "crl",
                   .config = getenv("PC_CONFIG"),
                   .next_update_hours = DEFAULT_NEXT_UPDATE_HOURS};
    pc_config_t *cfg = NULL;
    pc_engine_t *engine = NULL;
    pc_ca_t *ca = NULL;
    pc_diag_t diag = {{0}};
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = parse_opts(argc, argv, true, &o);
    if (rc >= 0)
        return rc;
    if ((rc = open_ca(&o, &cfg, &engine, &ca)) != 0)
        goto out_free_engine;
    pc_err_t err = pc_ca_local_crl(ca, (unsigned)o.next_update_hours, &der, &len, &diag);
    if (err != PC_OK) {
        rc = pkcsctl_diag_error(o.cmd, err, &diag);
        goto out_free_engine;
    }
    rc = write_crl(&o, der, len);
    OPENSSL_free(der);
out_free_engine:
    pc_engine_free(engine);
    pc_config_free(cfg);
    return rc;
}

static int write_chain(const ca_opts_t *o, STACK_OF(X509) * chain)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = 1;
    if (bio == NULL)
        return pkcsctl_error(o->cmd, "out of memory");
    if (chain == NULL || sk_X509_num(chain) == 0) {
        rc = pkcsctl_error(o->cmd,
                           "CA \"%s\" has no certificate to show; check its "
                           "cert_file or state_dir",
                           o->ca_name);
        goto out_free_bio;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        if (o->der ? i2d_X509_bio(bio, cert) != 1 : PEM_write_bio_X509(bio, cert) != 1) {
            rc = pkcsctl_error(o->cmd, "cannot encode certificate %d of CA \"%s\"", i + 1,
                               o->ca_name);
            goto out_free_bio;
        }
        if (o->der)
            break; /* DER is one certificate: the CA's own */
    }
    rc = emit_bio(o, bio);
out_free_bio:
    BIO_free(bio);
    return rc;
}

int pkcsctl_ca_cert(int argc, char **argv)
{
    ca_opts_t o = {.cmd = "ca-cert", .config = getenv("PC_CONFIG")};
    pc_config_t *cfg = NULL;
    pc_engine_t *engine = NULL;
    pc_ca_t *ca = NULL;
    int rc = parse_opts(argc, argv, false, &o);
    if (rc >= 0)
        return rc;
    if ((rc = open_ca(&o, &cfg, &engine, &ca)) == 0)
        rc = write_chain(&o, ca->ops->get0_chain(ca));
    pc_engine_free(engine);
    pc_config_free(cfg);
    return rc;
}
