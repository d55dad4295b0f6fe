/*
 * engine.c - the configured CAs (one opener per backend type, from a table), the import key,
 * and one request start to end on the calling thread for tools: validate, then the issue stages
 * (issue.c), a revocation or an import. The worker spreads the same stages over its loop.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "ca_cfssl.h"
#include "ca_local.h"
#include "issue.h"
#include "request.h"
#include "clock.h"
#include "result.h"

static pc_err_t open_cfssl(pc_config_ca_t *c, uv_loop_t *loop, const pc_redis_config_t *redis,
                           pc_ca_t **out, pc_diag_t *diag)
{
    pc_ca_cfssl_profile_t *profiles = calloc(c->profile_count + 1, sizeof(*profiles));
    if (profiles == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->profile_count; i++) {
        profiles[i].template_name = c->profile_templates[i];
        profiles[i].profile = c->profile_names[i];
    }
    pc_ca_cfssl_config_t cc = {
        .name = c->name,
        .url = c->url,
        .allow_http = c->allow_http,
        .client_serials = c->client_serials,
        .auth_key_hex = c->auth_key_hex,
        .label = c->label,
        .profiles = profiles,
        .profile_count = c->profile_count,
        .ca_bundle = c->ca_bundle,
        .client_cert = c->client_cert,
        .client_key = c->client_key,
        .connect_timeout_ms = c->connect_timeout_ms,
        .total_timeout_ms = c->total_timeout_ms,
        .max_concurrent = c->max_concurrent,
        .attempts = c->attempts,
        .retry_base_ms = c->retry_base_ms,
        .retry_max_ms = c->retry_max_ms,
        .breaker_threshold = c->breaker_threshold,
        .breaker_cooldown_ms = c->breaker_cooldown_ms,
        .templates = c->templates,
        .template_count = c->template_count,
    };
    pc_err_t err = pc_ca_cfssl_new(loop, &cc, out, diag);
    free(profiles);
    return err;
}

static pc_err_t open_local(pc_config_ca_t *c, uv_loop_t *loop, const pc_redis_config_t *redis,
                           pc_ca_t **out, pc_diag_t *diag)
{
    pc_ca_local_config_t lc = {
        .loop = loop,
        .name = c->name,
        .state_dir = c->state_dir,
        .cert_file = c->cert_file,
        .key_file = c->key_file,
        .key_passphrase = c->key_passphrase,
        .subject = c->subject,
        .crl_url = c->crl_url,
        .aia_url = c->aia_url,
        .ocsp_url = c->ocsp_url,
        .key_uri = c->key_uri,
        .key_pin = c->key_pin,
        .key_module = c->key_module,
        .redis = redis,
        .templates = c->templates,
        .template_count = c->template_count,
    };
    pc_err_t err = pc_ca_local_new(&lc, out, diag);
    if (err != PC_OK) {
        char prefix[160];
        snprintf(prefix, sizeof(prefix), "CA \"%s\"", c->name);
        pc_diag_prefix(diag, prefix);
    }
    return err;
}

/* The backends by configuration type; remote ones need an event loop. */
static const struct {
    const char *type;
    bool needs_loop;
    pc_err_t (*open)(pc_config_ca_t *c, uv_loop_t *loop, const pc_redis_config_t *redis,
                     pc_ca_t **out, pc_diag_t *diag);
} backends[] = {
    {"local", false, open_local},
    {"cfssl", true, open_cfssl},
};

static pc_err_t open_ca(pc_config_ca_t *c, uv_loop_t *loop, const pc_redis_config_t *redis,
                        pc_ca_t **out, pc_diag_t *diag)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        if (strcmp(c->type, backends[i].type) != 0)
            continue;
        if (backends[i].needs_loop && loop == NULL)
            return PC_OK; /* *out stays NULL: left out */
        pc_err_t err = backends[i].open(c, loop, redis, out, diag);
        if (err == PC_OK) {
            free(c->templates); /* the CA took the templates, not the array */
            c->templates = NULL;
            c->template_count = 0;
        }
        return err;
    }
    return pc_fail(diag, PC_ERR_INVALID_PARAM, "CA \"%s\" has unknown type \"%s\"", c->name,
                   c->type);
}

/* offline: the local CAs keep their records in their state folders, not in Redis. */
static pc_err_t engine_new(pc_config_t *cfg, uv_loop_t *loop, bool offline, pc_engine_t **out,
                           pc_diag_t *diag)
{
    const pc_redis_config_t redis = pc_config_redis(cfg);
    *out = NULL;
    pc_engine_t *engine = calloc(1, sizeof(*engine));
    if (engine == NULL || (engine->cas = calloc(cfg->ca_count, sizeof(pc_ca_t *))) == NULL) {
        free(engine);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    }
    engine->keygen_mode = cfg->keygen_mode;
    if (cfg->worker.import_key_file != NULL) {
        const pc_pfx_limits_t limits = {.max_iterations = cfg->worker.pfx_max_iterations,
                                        .max_bytes = cfg->worker.pfx_max_bytes,
                                        .max_bags = cfg->worker.pfx_max_bags,
                                        .max_certs = cfg->worker.pfx_max_certs,
                                        .setting = "worker.pfx_"};
        pc_err_t err = pc_import_new(cfg->worker.import_key_file, cfg->worker.import_key_id,
                                     &limits, &engine->import, diag);
        if (err != PC_OK) {
            pc_diag_prefix(diag, "worker.import_key_file");
            pc_engine_free(engine);
            return err;
        }
    }
    for (size_t i = 0; i < cfg->ca_count; i++) {
        pc_err_t err = open_ca(&cfg->cas[i], loop, offline ? NULL : &redis,
                               &engine->cas[engine->ca_count], diag);
        if (err != PC_OK) {
            pc_engine_free(engine);
            return err;
        }
        if (engine->cas[engine->ca_count] != NULL)
            engine->ca_count++;
    }
    *out = engine;
    return PC_OK;
}

pc_err_t pc_engine_new(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag)
{
    return engine_new(cfg, NULL, false, out, diag);
}

pc_err_t pc_engine_new_offline(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag)
{
    return engine_new(cfg, NULL, true, out, diag);
}

pc_err_t pc_engine_new_loop(pc_config_t *cfg, uv_loop_t *loop, pc_engine_t **out, pc_diag_t *diag)
{
    return engine_new(cfg, loop, false, out, diag);
}

pc_ca_t *pc_engine_find_ca(const pc_engine_t *engine, const char *name)
{
    for (size_t i = 0; i < engine->ca_count; i++)
        if (engine->cas[i] != NULL && strcmp(engine->cas[i]->name, name) == 0)
            return engine->cas[i];
    return NULL;
}

pc_err_t pc_engine_find_ca_for(const pc_engine_t *engine, const char *name, pc_ca_t **ca,
                               pc_diag_t *diag)
{
    *ca = pc_engine_find_ca(engine, name);
    if (*ca == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "CA \"%s\" is not configured on this worker; configured CAs are named in "
                       "the cas section of the configuration",
                       name);
    return PC_OK;
}

static pc_err_t run_issue(pc_engine_t *engine, const Pkcs__V1__Request *req, Pkcs__V1__Result *res,
                          pc_diag_t *diag)
{
    pc_ca_t *ca = NULL;
    pc_issue_t *job = NULL;
    X509 *cert = NULL;
    pc_err_t err = pc_engine_find_ca_for(engine, req->issue->profile->ca_name, &ca, diag);
    if (err != PC_OK || (err = pc_issue_prepare(req, ca, &job, diag)) != PC_OK)
        return err;
    if ((err = pc_issue_keygen(job, engine->keygen_mode, diag)) != PC_OK ||
        (err = pc_issue_make_request(job, diag)) != PC_OK ||
        (err = pc_issue_submit_sync(job, &cert, diag)) != PC_OK)
        goto out_free_job;
    if ((err = pc_issue_set0_cert(job, cert, diag)) != PC_OK ||
        (err = pc_issue_pack(job, diag)) != PC_OK)
        goto out_free_job;
    err = pc_issue_fill_result(job, res, diag);
out_free_job:
    pc_issue_free(job);
    return err;
}

void pc_engine_revoke_of(const Pkcs__V1__RevokeRequest *req, pc_ca_revoke_t *rev)
{
    static const pc_revoke_reason_t reasons[] = {
        [PKCS__V1__REVOKE_REASON__KEY_COMPROMISE] = PC_REVOKE_KEY_COMPROMISE,
        [PKCS__V1__REVOKE_REASON__AFFILIATION_CHANGED] = PC_REVOKE_AFFILIATION_CHANGED,
        [PKCS__V1__REVOKE_REASON__SUPERSEDED] = PC_REVOKE_SUPERSEDED,
        [PKCS__V1__REVOKE_REASON__CESSATION_OF_OPERATION] = PC_REVOKE_CESSATION_OF_OPERATION,
    };
    unsigned r = (unsigned)req->reason;
    rev->serial_hex = req->serial_number;
    rev->reason = r < sizeof(reasons) / sizeof(reasons[0]) ? reasons[r] : PC_REVOKE_UNSPECIFIED;
}

pc_err_t pc_engine_import(const pc_engine_t *engine, const Pkcs__V1__ImportPfxRequest *body,
                          Pkcs__V1__Result *res, pc_diag_t *diag)
{
    pc_err_t err = pc_import_run(engine->import, body, res, diag);
    return err == PC_ERR_UNAUTHENTICATED ? PC_ERR_INVALID_PARAM : err;
}

static pc_err_t run_revoke(pc_engine_t *engine, const Pkcs__V1__Request *req, Pkcs__V1__Result *res,
                           pc_diag_t *diag)
{
    pc_ca_t *ca = NULL;
    pc_err_t err = pc_engine_find_ca_for(engine, req->revoke->ca_name, &ca, diag);
    if (err != PC_OK)
        return err;
    pc_ca_revoke_t rev;
    pc_engine_revoke_of(req->revoke, &rev);
    if ((err = pc_ca_revoke_sync(ca, &rev, diag)) != PC_OK)
        return err;
    res->status = PKCS__V1__STATUS__REVOKED;
    char *serial = strdup(req->revoke->serial_number);
    if (serial == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    res->serial_number = serial;
    return PC_OK;
}

Pkcs__V1__Result *pc_engine_run_sync(pc_engine_t *engine, const Pkcs__V1__Request *req)
{
    pc_diag_t diag = {{0}};
    Pkcs__V1__Result *res = pc_result_new(req);
    if (res == NULL)
        return NULL;
    pc_err_t err = pc_request_validate(req, pc_now_ms(), &diag);
    if (err == PC_OK) {
        switch (req->body_case) {
        case PKCS__V1__REQUEST__BODY_ISSUE:
            err = run_issue(engine, req, res, &diag);
            break;
        case PKCS__V1__REQUEST__BODY_REVOKE:
            err = run_revoke(engine, req, res, &diag);
            break;
        default:
            err = pc_engine_import(engine, req->import_pfx, res, &diag);
            break;
        }
    }
    if (err != PC_OK && pc_result_set_error(res, err, &diag) != PC_OK) {
        protobuf_c_message_free_unpacked(&res->base, NULL);
        return NULL;
    }
    return res;
}

bool pc_engine_ca_healthy(const pc_engine_t *engine, const pc_ca_t **unhealthy)
{
    for (size_t i = 0; i < engine->ca_count; i++) {
        if (engine->cas[i] != NULL && !pc_ca_healthy(engine->cas[i])) {
            if (unhealthy != NULL)
                *unhealthy = engine->cas[i];
            return false;
        }
    }
    return true;
}

static void on_ca_closed(void *arg)
{
    pc_engine_t *engine = arg;
    if (--engine->closing == 0 && engine->closed != NULL)
        engine->closed(engine->closed_arg);
}

void pc_engine_attach_redis(pc_engine_t *engine, pc_redis_t *redis)
{
    for (size_t i = 0; i < engine->ca_count; i++)
        pc_ca_local_attach_redis(engine->cas[i], redis);
}

void pc_engine_close(pc_engine_t *engine, void (*closed)(void *arg), void *arg)
{
    engine->closed = closed;
    engine->closed_arg = arg;
    engine->closing = 1; /* held until every close is started */
    for (size_t i = 0; i < engine->ca_count; i++) {
        pc_ca_t *ca = engine->cas[i];
        if (ca == NULL || ca->loop == NULL)
            continue;
        engine->closing++;
        pc_ca_close(ca, on_ca_closed, engine);
    }
    on_ca_closed(engine);
}

void pc_engine_free(pc_engine_t *engine)
{
    if (engine == NULL)
        return;
    for (size_t i = 0; i < engine->ca_count; i++)
        pc_ca_free(engine->cas[i]);
    free(engine->cas);
    pc_import_free(engine->import);
    free(engine);
}
