/*
 * pkcsctl issue --offline: one request in JSON through the engine with the configured local
 * CA, no Kafka or Redis. Writes cert.pem, chain.pem, result.p7m (the enveloped PFX, DER) and
 * result.json into the output folder. Lets users try a profile before they deploy it. The CA
 * records what it issues in index.txt in its state folder, not in the cluster's Redis.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common.h"
#include "config.h"
#include "engine.h"
#include "file.h"
#include "pbjson.h"

#define CMD "issue"

static void help(void)
{
    printf("usage: pkcsctl issue --offline --request REQUEST.json --out DIR [--config FILE]\n\n"
           "Runs one request (a pkcs.v1.Request in its JSON form) through the engine with the\n"
           "local CA of the configuration, and writes into DIR:\n"
           "  cert.pem     the issued certificate\n"
           "  chain.pem    the issuing chain (issuing CA first)\n"
           "  result.p7m   the PKCS#12 enveloped to the device key (CMS, DER)\n"
           "  result.json  the whole result message\n\n"
           "options:\n"
           "  --offline         use the engine in this process (required for now)\n"
           "  --request FILE    the request, JSON\n"
           "  --out DIR         output folder (created if missing)\n"
           "  --device-key FILE the device key (PEM, public or private): sets the request's\n"
           "                    devicePublicKey, so one request file serves many devices\n"
           "  --config FILE     configuration file (default: $PC_CONFIG, else built-in "
           "defaults)\n\n"
           "The local CA key is encrypted on disk with the passphrase from the configuration\n"
           "or PC_CA_KEY_PASSPHRASE / PC_CA_KEY_PASSPHRASE_FILE. Certificates issued offline\n"
           "are recorded in index.txt in the CA's state folder, not in the cluster's Redis:\n"
           "the cluster's CRL and revoke do not know them.\n");
}

static int write_pem_certs(const char *dir, const char *name, const ProtobufCBinaryData *ders,
                           size_t count)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return pkcsctl_error(CMD, "cannot write %s: %s", path, strerror(errno));
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const unsigned char *p = ders[i].data;
        X509 *cert = d2i_X509(NULL, &p, (long)ders[i].len);
        if (cert == NULL || !PEM_write_X509(f, cert))
            rc = pkcsctl_error(CMD, "cannot write certificate %zu to %s", i + 1, path);
        X509_free(cert);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = pkcsctl_error(CMD, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

static int write_outputs(const char *dir, const Pkcs__V1__Result *res)
{
    char path[4096];
    pc_diag_t diag = {{0}};
    char *json = NULL;
    pc_err_t err;
    if (write_pem_certs(dir, "cert.pem", &res->certificate, 1) != 0 ||
        write_pem_certs(dir, "chain.pem", res->chain, res->n_chain) != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/result.p7m", dir);
    err = pc_file_write(path, res->encrypted_pfx.data, res->encrypted_pfx.len, 0600, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    if ((err = pc_pbjson_encode_string(&res->base, true, &json, &diag)) != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    snprintf(path, sizeof(path), "%s/result.json", dir);
    err = pc_file_write(path, json, strlen(json), 0644, &diag);
    free(json);
    return err == PC_OK ? 0 : pkcsctl_diag_error(CMD, err, &diag);
}

/* set_device_key puts the public key of the PEM key at path (public or private) into the
 * request, so that one request file serves many devices. */
static int set_device_key(Pkcs__V1__Request *req, const char *path)
{
    unsigned char *spki = NULL;
    size_t len = 0;
    if (req->body_case != PKCS__V1__REQUEST__BODY_ISSUE)
        return pkcsctl_error(CMD, "--device-key applies to ISSUE requests only");
    if (pkcsctl_key_load(CMD, "--device-key", path, PKCSCTL_KEY_PUBLIC_OR_PRIVATE, NULL, &spki,
                         &len) != 0)
        return 1;
    ProtobufCBinaryData *dst = &req->issue->device_public_key;
    free(dst->data);
    dst->data = spki;
    dst->len = len;
    return 0;
}

static int report(const Pkcs__V1__Result *res, const char *out_dir)
{
    if (res->status != PKCS__V1__STATUS__ISSUED && res->status != PKCS__V1__STATUS__IMPORTED) {
        const ProtobufCEnumValue *code = protobuf_c_enum_descriptor_get_value(
            &pkcs__v1__error_code__descriptor, res->error_code);
        return pkcsctl_error(CMD, "request %s failed: %s (%s%s)", res->request_id,
                             res->error_message, code ? code->name : "?",
                             res->retryable ? ", retryable" : "");
    }
    if (write_outputs(out_dir, res) != 0)
        return 1;
    printf("%s  request %s\n", res->status == PKCS__V1__STATUS__IMPORTED ? "imported" : "issued",
           res->request_id);
    printf("serial  %s\n", res->serial_number);
    printf("issuer  %s\n", res->issuer);
    printf("sha256  %s\n", res->thumbprint_sha256);
    printf("wrote   %s/cert.pem, chain.pem, result.p7m, result.json\n", out_dir);
    return 0;
}

static int run(const char *request_path, const char *device_key, const char *out_dir,
               const char *config_path)
{
    pc_diag_t diag = {{0}};
    pc_config_t *cfg = NULL;
    pc_engine_t *engine = NULL;
    ProtobufCMessage *msg = NULL;
    Pkcs__V1__Result *res = NULL;
    int rc = 1;
    pc_err_t err = pc_file_mkdirs(out_dir, 0755, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    if (pkcsctl_load_message(CMD, request_path, &pkcs__v1__request__descriptor, &msg) != 0)
        return 1;
    Pkcs__V1__Request *req = (Pkcs__V1__Request *)msg;
    if (device_key != NULL && set_device_key(req, device_key) != 0)
        goto out_free;
    if ((err = pc_config_load(config_path, &cfg, &diag)) != PC_OK ||
        (err = pc_engine_new_offline(cfg, &engine, &diag)) != PC_OK) {
        rc = pkcsctl_diag_error(CMD, err, &diag);
        goto out_free;
    }
    res = pc_engine_run_sync(engine, req);
    rc = res == NULL ? pkcsctl_error(CMD, "out of memory") : report(res, out_dir);
out_free:
    if (res != NULL)
        protobuf_c_message_free_unpacked(&res->base, NULL);
    pc_engine_free(engine);
    pc_config_free(cfg);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return rc;
}

int pkcsctl_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"offline", no_argument, NULL, 'o'},
        {"request", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"device-key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *request = NULL, *out = NULL, *device_key = NULL, *config = getenv("PC_CONFIG");
    bool offline = false;
    int c;
    while ((c = getopt_long(argc, argv, "hr:d:c:k:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            offline = true;
            break;
        case 'r':
            request = optarg;
            break;
        case 'd':
            out = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'k':
            device_key = optarg;
            break;
        case 'h':
            help();
            return 0;
        default:
            return pkcsctl_usage_error(CMD, "unknown option");
        }
    }
    if (!offline)
        return pkcsctl_usage_error(CMD, "only --offline is available: it runs the engine in "
                                        "this process with the local CA");
    if (request == NULL || out == NULL)
        return pkcsctl_usage_error(CMD, "--request FILE and --out DIR are required");
    return run(request, device_key, out, config);
}
