/*
 * engine.h - the certificate engine: the configured CAs and the import key, and the whole of
 * one request start to end on the calling thread (pc_engine_run_sync) for tools: pkcsctl's
 * offline mode and the engine benchmark. The worker runs the same stages (issue.h) spread over
 * its event loop and thread pool, and calls the CAs through their interface (ca.h); the
 * coordinator and pkcsctl crl open their CAs through it.
 */
#ifndef PC_ENGINE_H
#define PC_ENGINE_H

#include <uv.h>

#include "ca.h"
#include "config.h"
#include "import.h"
#include "keygen.h"
#include "pkcs.pb-c.h"

typedef struct pc_engine {
    pc_ca_t **cas;
    size_t ca_count;
    pc_keygen_mode_t keygen_mode;
    pc_import_t *import; /* the import key for IMPORT_PFX; NULL when not configured */
    int closing;         /* CAs still closing */
    void (*closed)(void *arg);
    void *closed_arg;
} pc_engine_t;

/* pc_engine_new opens the local CAs of cfg (taking their templates out of cfg) for a process
 * that calls them on its own thread (pkcsctl crl, the coordinator's CRL work): their records of
 * issued and revoked certificates are in the cluster's Redis (cfg's redis section; not contacted
 * until a CA needs them); remote CAs (cfssl) need an event loop and are left out. *out is the
 * caller's (pc_engine_free). Errors name the CA. */
pc_err_t pc_engine_new(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_new_offline is pc_engine_new for a process outside any cluster (pkcsctl issue
 * --offline, the engine benchmark): the local CAs record what they issue in index.txt in their
 * state folders, which no worker sees, so they cannot be revoked through the cluster. */
pc_err_t pc_engine_new_offline(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_new_loop opens every CA of cfg on loop (the worker): calls run as each backend
 * decides (the local CA on the loop's thread pool, cfssl on the loop) and answer on the loop.
 * Close with pc_engine_close before pc_engine_free. Loop thread. */
pc_err_t pc_engine_new_loop(pc_config_t *cfg, uv_loop_t *loop, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_ca_healthy: every CA can be used now (for /readyz); *unhealthy (may be NULL) is
 * the first that cannot. */
bool pc_engine_ca_healthy(const pc_engine_t *engine, const pc_ca_t **unhealthy);

/* pc_engine_attach_redis gives the local CAs the loop's Redis client to record what they sign
 * (pc_ca_local_attach_redis): redis must stay open until pc_engine_close has been called. Loop
 * thread, before the first request. */
void pc_engine_attach_redis(pc_engine_t *engine, pc_redis_t *redis);

/* pc_engine_close closes every CA on its loop (see pc_ca_close) and calls closed when all are
 * closed; pc_engine_free does the rest after the loop ended. Loop thread. */
void pc_engine_close(pc_engine_t *engine, void (*closed)(void *arg), void *arg);

/* pc_engine_find_ca returns the borrowed CA called name, or NULL. */
pc_ca_t *pc_engine_find_ca(const pc_engine_t *engine, const char *name);

/* pc_engine_find_ca_for is pc_engine_find_ca for a request: PC_ERR_INVALID_PARAM naming the
 * CA and where CAs are configured when there is none of that name. */
pc_err_t pc_engine_find_ca_for(const pc_engine_t *engine, const char *name, pc_ca_t **ca,
                               pc_diag_t *diag);

/* pc_engine_revoke_of fills rev (pointing into req) from a REVOKE request. */
void pc_engine_revoke_of(const Pkcs__V1__RevokeRequest *req, pc_ca_revoke_t *rev);

/* pc_engine_import runs an IMPORT_PFX body with the configured import key (pc_import_run) and
 * maps a wrong PFX password to PC_ERR_INVALID_PARAM: UNAUTHENTICATED is for request
 * signatures only. Pool threads. */
pc_err_t pc_engine_import(const pc_engine_t *engine, const Pkcs__V1__ImportPfxRequest *body,
                          Pkcs__V1__Result *res, pc_diag_t *diag);

/* pc_engine_run_sync validates and runs one request with CAs opened without a loop and returns
 * its result: ISSUED / REVOKED / IMPORTED, or FAILED with the error code and message (NULL only
 * when out of memory). Free with protobuf_c_message_free_unpacked. */
Pkcs__V1__Result *pc_engine_run_sync(pc_engine_t *engine, const Pkcs__V1__Request *req);

/* pc_engine_free frees the CAs (closed first when they run on a loop) and the import key (NULL
 * allowed). */
void pc_engine_free(pc_engine_t *engine);

#endif
