/*
 * engine.h - the certificate engine: the configured CAs and the whole of one request, start to
 * end, on the calling thread. Used by pkcsctl's offline mode and the engine benchmark; the
 * worker runs the same stages (issue.h) spread over its event loop and thread pool, and the
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
    int remote_closing;  /* remote CAs still closing */
    void (*remote_closed)(void *arg);
    void *remote_closed_arg;
} pc_engine_t;

/* pc_engine_new opens every local CA of cfg (taking their templates out of cfg), with their
 * records of issued and revoked certificates in the cluster's Redis (cfg's redis section; not
 * contacted until a CA needs its records); remote CAs (cfssl) need an event loop and are left
 * out. *out is the caller's (pc_engine_free). Errors name the CA. */
pc_err_t pc_engine_new(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_new_offline is pc_engine_new for a process outside any cluster (pkcsctl issue
 * --offline, the engine benchmark): the local CAs record what they issue in index.txt in their
 * state folders, which no worker sees, so they cannot be revoked through the cluster. */
pc_err_t pc_engine_new_offline(pc_config_t *cfg, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_new_loop is pc_engine_new with remote CAs too, driven by loop (loop thread). */
pc_err_t pc_engine_new_loop(pc_config_t *cfg, uv_loop_t *loop, pc_engine_t **out, pc_diag_t *diag);

/* pc_engine_ca_healthy: every remote CA can be used now (for /readyz). */
bool pc_engine_ca_healthy(const pc_engine_t *engine);

/* pc_engine_close_remote closes the remote CAs (their handles live on the loop) and calls
 * closed when they are gone; pc_engine_free does the rest after the loop ended. */
void pc_engine_close_remote(pc_engine_t *engine, void (*closed)(void *arg), void *arg);

/* pc_engine_find_ca returns the borrowed CA called name, or NULL. */
pc_ca_t *pc_engine_find_ca(const pc_engine_t *engine, const char *name);

/* pc_engine_run_sync validates and runs one request with blocking CA backends and returns its
 * result: ISSUED / REVOKED, or FAILED with the error code and message (NULL only when out of
 * memory). Free with protobuf_c_message_free_unpacked. */
Pkcs__V1__Result *pc_engine_run_sync(pc_engine_t *engine, const Pkcs__V1__Request *req);

/* pc_engine_free closes the CAs (NULL allowed). */
void pc_engine_free(pc_engine_t *engine);

#endif
