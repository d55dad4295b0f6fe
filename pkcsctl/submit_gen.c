/*
 * pkcsctl submit --template: the request generator for load tests and integration tests. Each
 * request is the template with its own ids ({n} substituted) and, with --device-keys, its own
 * device key pair, whose private key is written where `pkcsctl watch --device-keys` finds it to
 * open the result as the device would (pkcsctl_device_key, also used by submit_csv.c). The
 * template is never modified: each request is a shallow copy whose changed fields point at
 * buffers owned here. created_at_ms is left as the template has it: pkcsctl_send_request
 * stamps a request without one when it is produced (after --rate's wait). Main thread only.
 */
#include "submit_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "common.h"
#include "file.h"

#define CMD SUBMIT_CMD
#define MAX_PREFIX_LEN 100
#define SEQ_MARK "{n}"

/* Buffers of one generated request, reused from one request to the next. */
typedef struct gen_bufs {
    char request_id[160];
    char device_id[160];
    char *user_id;      /* malloc'd, or NULL */
    char *device_subst; /* malloc'd, or NULL */
    Pkcs__V1__IssueRequest issue;
    Pkcs__V1__IssueRequest__AttributesEntry *entries;
    Pkcs__V1__IssueRequest__AttributesEntry **entry_ptrs;
    char **values; /* malloc'd, one per attribute */
    size_t n_attributes;
    unsigned char *spki; /* malloc'd */
} gen_bufs_t;

/* subst returns a malloc'd copy of text with every "{n}" replaced by num (NULL: no memory). */
static char *subst(const char *text, const char *num)
{
    size_t marks = 0, mark_len = strlen(SEQ_MARK), num_len = strlen(num);
    for (const char *p = strstr(text, SEQ_MARK); p != NULL; p = strstr(p + mark_len, SEQ_MARK))
        marks++;
    char *out = malloc(strlen(text) + marks * num_len + 1), *dst = out;
    if (out == NULL)
        return NULL;
    for (const char *p = text, *m; *p != '\0'; p = m + mark_len) {
        m = strstr(p, SEQ_MARK);
        size_t take = m != NULL ? (size_t)(m - p) : strlen(p);
        memcpy(dst, p, take);
        dst += take;
        if (m == NULL)
            break;
        memcpy(dst, num, num_len);
        dst += num_len;
    }
    *dst = '\0';
    return out;
}

static void bufs_reset(gen_bufs_t *b)
{
    free(b->user_id);
    free(b->device_subst);
    b->user_id = b->device_subst = NULL;
    for (size_t i = 0; i < b->n_attributes; i++) {
        free(b->values[i]);
        b->values[i] = NULL;
    }
    free(b->spki);
    b->spki = NULL;
}

static void bufs_free(gen_bufs_t *b)
{
    bufs_reset(b);
    free(b->values);
    free(b->entry_ptrs);
    free(b->entries);
}

static int bufs_init(gen_bufs_t *b, const Pkcs__V1__Request *tmpl)
{
    memset(b, 0, sizeof(*b));
    if (tmpl->body_case != PKCS__V1__REQUEST__BODY_ISSUE || tmpl->issue->n_attributes == 0)
        return 0;
    b->n_attributes = tmpl->issue->n_attributes;
    b->entries = calloc(b->n_attributes, sizeof(*b->entries));
    b->entry_ptrs = calloc(b->n_attributes, sizeof(*b->entry_ptrs));
    b->values = calloc(b->n_attributes, sizeof(*b->values));
    if (b->entries == NULL || b->entry_ptrs == NULL || b->values == NULL) {
        bufs_free(b);
        return pkcsctl_error(CMD, "out of memory");
    }
    return 0;
}

int pkcsctl_device_key(const char *keys_dir, pc_key_alg_t alg, const char *request_id,
                       unsigned char **spki, size_t *spki_len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.pem", keys_dir, request_id) >= sizeof(path))
        return pkcsctl_error(CMD, "the device key path for %s in %s is too long", request_id,
                             keys_dir);
    /* A key already there is used again, so that generating the same batch again (a replay)
     * sends byte-identical requests. */
    if (access(path, F_OK) == 0 || errno != ENOENT)
        return pkcsctl_key_load(CMD, "device key", path, PKCSCTL_KEY_PRIVATE, NULL, spki, spki_len);
    pc_key_spec_t spec = {alg, alg == PC_KEY_RSA ? 2048u : 256u};
    EVP_PKEY *key = NULL;
    BIO *pem = NULL;
    char *data = NULL;
    pc_diag_t diag = {{0}};
    int rc = 1;
    pc_err_t err = pc_key_generate(&spec, PC_KEYGEN_FAST, &key, &diag);
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    if ((err = pkcsctl_key_spki(key, spki, spki_len, &diag)) != PC_OK) {
        rc = pkcsctl_diag_error(CMD, err, &diag);
        goto out_free_key;
    }
    if ((pem = BIO_new(BIO_s_secmem())) == NULL ||
        !PEM_write_bio_PrivateKey(pem, key, NULL, NULL, 0, NULL, NULL)) {
        rc = pkcsctl_error(CMD, "cannot encode the device key of %s", request_id);
        goto out_free_spki;
    }
    long len = BIO_get_mem_data(pem, &data);
    err = pc_file_write(path, data, (size_t)len, 0600, &diag);
    rc = err == PC_OK ? 0 : pkcsctl_diag_error(CMD, err, &diag);
out_free_spki:
    if (rc != 0) {
        free(*spki);
        *spki = NULL;
    }
out_free_key:
    BIO_free(pem);
    EVP_PKEY_free(key);
    return rc;
}

/* fill_issue makes the ISSUE body of request n: attributes with {n}, the device key. */
static int fill_issue(const pkcsctl_gen_t *gen, const Pkcs__V1__IssueRequest *tmpl, gen_bufs_t *b,
                      const char *num)
{
    b->issue = *tmpl;
    for (size_t i = 0; i < b->n_attributes; i++) {
        b->entries[i] = *tmpl->attributes[i];
        if ((b->values[i] = subst(tmpl->attributes[i]->value, num)) == NULL)
            return pkcsctl_error(CMD, "out of memory");
        b->entries[i].value = b->values[i];
        b->entry_ptrs[i] = &b->entries[i];
    }
    b->issue.attributes = b->n_attributes > 0 ? b->entry_ptrs : NULL;
    if (gen->keys_dir != NULL) {
        size_t len = 0;
        if (pkcsctl_device_key(gen->keys_dir, gen->key_alg, b->request_id, &b->spki, &len) != 0)
            return 1;
        b->issue.device_public_key.data = b->spki;
        b->issue.device_public_key.len = len;
    }
    return 0;
}

static int gen_one(pkcsctl_sender_t *snd, const pkcsctl_gen_t *gen, const Pkcs__V1__Request *tmpl,
                   gen_bufs_t *b, long n)
{
    Pkcs__V1__Request req = *tmpl;
    char num[32];
    int rc = 1;
    snprintf(num, sizeof(num), "%06ld", n);
    snprintf(b->request_id, sizeof(b->request_id), "%s-%s", gen->prefix, num);
    req.request_id = b->request_id;
    if (strstr(tmpl->device_id, SEQ_MARK) != NULL) {
        if ((req.device_id = b->device_subst = subst(tmpl->device_id, num)) == NULL)
            goto out_oom;
    } else if (tmpl->device_id[0] == '\0') {
        snprintf(b->device_id, sizeof(b->device_id), "%s-dev-%s", gen->prefix, num);
        req.device_id = b->device_id;
    } /* else: one device for every request, as the template says */
    if ((req.user_id = b->user_id = subst(tmpl->user_id, num)) == NULL)
        goto out_oom;
    if (req.body_case == PKCS__V1__REQUEST__BODY_ISSUE) {
        if (fill_issue(gen, tmpl->issue, b, num) != 0)
            goto out_reset;
        req.issue = &b->issue;
    }
    rc = pkcsctl_send_request(snd, &req);
    goto out_reset;
out_oom:
    rc = pkcsctl_error(CMD, "out of memory");
out_reset:
    bufs_reset(b);
    return rc;
}

int pkcsctl_check_prefix_keys(const pkcsctl_gen_t *gen)
{
    if (strlen(gen->prefix) > MAX_PREFIX_LEN || strchr(gen->prefix, '/') != NULL)
        return pkcsctl_usage_error(CMD, "--id-prefix must be at most %d characters, without '/'",
                                   MAX_PREFIX_LEN);
    pc_diag_t diag = {{0}};
    pc_err_t err = gen->keys_dir != NULL ? pc_file_mkdirs(gen->keys_dir, 0700, &diag) : PC_OK;
    if (err != PC_OK)
        return pkcsctl_diag_error(CMD, err, &diag);
    return 0;
}

static int check_gen(const pkcsctl_gen_t *gen, const Pkcs__V1__Request *tmpl)
{
    if (gen->keys_dir != NULL && tmpl->body_case != PKCS__V1__REQUEST__BODY_ISSUE)
        return pkcsctl_usage_error(CMD, "--device-keys needs an ISSUE template (%s is not)",
                                   gen->template_path);
    return pkcsctl_check_prefix_keys(gen);
}

int pkcsctl_generate(pkcsctl_sender_t *snd, const pkcsctl_gen_t *gen)
{
    ProtobufCMessage *msg = NULL;
    gen_bufs_t bufs;
    int rc = 1;
    if (pkcsctl_load_message(CMD, gen->template_path, &pkcs__v1__request__descriptor, &msg) != 0)
        return 1;
    const Pkcs__V1__Request *tmpl = (const Pkcs__V1__Request *)msg;
    if (check_gen(gen, tmpl) != 0 || bufs_init(&bufs, tmpl) != 0)
        goto out_free_template;
    rc = 0;
    for (long n = 1; n <= gen->count && rc == 0; n++)
        rc = gen_one(snd, gen, tmpl, &bufs, n);
    bufs_free(&bufs);
out_free_template:
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}
