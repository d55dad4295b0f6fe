/*
 * certs.h - the inventory: one record per certificate the cluster delivered, whatever its CA,
 * with who it is for and where it stands, and the indexes upstream systems and operators find
 * it by. This module owns the key family "pc:cert:{TENANT}:..." (segments encoded with
 * pc_key_segment; the tenant is the Redis Cluster hash tag, so a tenant's records, its indexes
 * and its request records share one slot):
 *
 *   pc:cert:{T}:c:CA:SERIAL   hash: ca, serial, kind (issued/imported), tenant, user, device,
 *                             profile, template, request, subject, sans, not_before, not_after,
 *                             renew_at (ms: when the profile's renewal threshold is reached),
 *                             issued_at (ms), sha1, sha256, status (valid, revoked,
 *                             superseded), and once not valid: reason, revoked_at (ms);
 *                             renews / renewed_by (the serials of a renewal)
 *   pc:cert:{T}:dev:DEVICE    zset of "CA:SERIAL" by issued_at (likewise user:USER, req:REQUEST)
 *   pc:cert:{T}:all           zset of "CA:SERIAL" by issued_at: every certificate of the tenant
 *   pc:cert:{T}:exp           zset of "CA:SERIAL" by not_after: expiry order
 *   pc:cert:{T}:due:renew     zset of "CA:SERIAL" by renew_at: renewal notices not yet sent
 *   pc:cert:{T}:due:exp       zset of "CA:SERIAL" by not_after: expiry notices not yet sent
 *   pc:cert:{T}:pending       zset of "CA:SERIAL" superseded but not yet revoked at their CA,
 *                             by the time they were superseded
 *   pc:cert:tenants           set of every tenant with a record (no hash tag: written on its
 *                             own, before the records; see pc_certs_tenant_args)
 *
 * The three queues (due:*, pending) are worked by pc_certs_take_due and pc_certs_due_done: a
 * member handed out comes back later unless it was done, so work taken by a process that died
 * is taken again, and two processes never take the same member at once.
 *
 * Records are written only where a request is completed: the completion script of the request
 * record (dedupe.c) includes PC_CERTS_LUA and applies the change built by pc_certs_change_args,
 * so a result and its inventory are recorded together or not at all. Reads are
 * pc_certs_find. Nothing expires: a record is the certificate's history. Loop thread only.
 */
#ifndef PC_CERTS_H
#define PC_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pc_err.h"
#include "redis.h"

/* ---- changes, applied by a request's completion ------------------------------------------ */

/* One certificate to record. Strings are borrowed; NULL or "" for what is not known. */
typedef struct pc_cert_info {
    const char *ca;     /* CA name (for an imported PFX: "import") */
    const char *serial; /* canonical hex */
    const char *kind;   /* "issued" or "imported" */
    const char *user_id, *device_id, *profile_id, *template_name, *request_id;
    const char *subject, *sans; /* RFC 2253 text; SANs as "DNS:a, email:b" */
    int64_t not_before_ms, not_after_ms;
    const char *sha1, *sha256; /* thumbprints, upper-case hex */
    const char *renews;        /* serial (same CA) this certificate renews, or NULL */
    int64_t renew_at_ms;       /* when its profile's renewal threshold is reached; 0: never */
} pc_cert_info_t;

/* A certificate of the tenant, by CA and serial. */
typedef struct pc_cert_ref {
    char ca[128];
    char serial[64];
} pc_cert_ref_t;

/* What one completion does to the inventory. */
typedef struct pc_certs_change {
    const pc_cert_info_t *add;    /* a certificate delivered by this request; NULL: none */
    const pc_cert_ref_t *revoked; /* certificates revoked by this request */
    size_t revoked_count;
    int reason; /* RFC 5280 CRLReason of the revocations */
} pc_certs_change_t;

/* The Lua functions a completion script includes, ahead of its own code: certs_apply(at), which
 * applies the change whose arguments start at ARGV[at] (as pc_certs_change_args wrote them) and
 * returns 1, with `now` (ms) in scope. */
extern const char pc_certs_lua[];

/* pc_certs_change_args appends change (NULL: no change) for tenant to args, as certs_apply
 * reads it. PC_ERR_INVALID_PARAM for ids too long to be key segments, PC_ERR_NOMEM. */
pc_err_t pc_certs_change_args(const char *tenant, const pc_certs_change_t *change, pc_args_t *args,
                              pc_diag_t *diag);

/* ---- reading ----------------------------------------------------------------------------- */

typedef enum pc_certs_by {
    PC_CERTS_ALL = 0,  /* every certificate of the tenant, newest first */
    PC_CERTS_DEVICE,   /* key: a device id */
    PC_CERTS_USER,     /* key: a user id */
    PC_CERTS_REQUEST,  /* key: a request id */
    PC_CERTS_SERIAL,   /* key: a serial; ca names its CA */
    PC_CERTS_EXPIRING, /* by expiry: not_after before expiring_before_ms (and from
                        * expiring_after_ms when set), soonest first */
} pc_certs_by_t;

typedef struct pc_certs_query {
    const char *tenant;
    pc_certs_by_t by;
    const char *key;            /* see pc_certs_by_t */
    const char *ca;             /* only this CA's certificates; NULL: any (required for SERIAL) */
    const char *profile_id;     /* only this profile's; NULL: any */
    bool valid_only;            /* only status valid and not expired */
    int64_t expiring_before_ms; /* PC_CERTS_EXPIRING */
    int64_t expiring_after_ms;  /* PC_CERTS_EXPIRING: not_after at or after it; 0: no bound */
    unsigned offset, limit;     /* paging over the index (limit 0: 100; at most 1000) */
} pc_certs_query_t;

/* One certificate as read. Every string is set ("" when not recorded); status is "valid",
 * "revoked", "superseded" or "expired" (valid with not_after past). */
typedef struct pc_cert {
    char ca[128], serial[64], kind[16], status[16];
    char tenant[128], user_id[128], device_id[128], profile_id[128], template_name[128];
    char request_id[128];
    char subject[512], sans[512];
    int64_t not_before_ms, not_after_ms, renew_at_ms, issued_at_ms, revoked_at_ms;
    int reason;
    char sha1[48], sha256[72];
    char renews[64], renewed_by[64];
} pc_cert_t;

/* The text fields of pc_cert_t, each by its name in the record (and in the coordinator's
 * API): where it sits in the struct and its size, NUL included. One table for every reader. */
typedef struct pc_cert_text_field {
    const char *name;
    size_t offset, size;
} pc_cert_text_field_t;
extern const pc_cert_text_field_t pc_cert_text_fields[];
extern const size_t pc_cert_text_field_count;

/* certs: count records (borrowed for the call); more: the index holds more past this page. */
typedef void (*pc_certs_found_fn)(void *arg, pc_err_t err, const pc_cert_t *certs, size_t count,
                                  bool more, const pc_diag_t *diag);

/* pc_certs_find reads the certificates q selects, one Lua script on redis; cb runs once on the
 * loop thread (never inside this call) unless an error is returned: PC_ERR_INVALID_PARAM for a
 * bad query, PC_ERR_NOMEM, PC_ERR_DEPENDENCY when redis is closed. A Redis failure reaches cb
 * as PC_ERR_DEPENDENCY. */
pc_err_t pc_certs_find(pc_redis_t *redis, const pc_certs_query_t *q, pc_certs_found_fn cb,
                       void *arg);

/* ---- tenants ----------------------------------------------------------------------------- */

/* pc_certs_tenant_args appends the command that adds tenant to the set of tenants with records
 * (SADD; the caller sends it before the completion that writes the first record, so that a
 * tenant is never missing from it). PC_ERR_INVALID_PARAM for no tenant, PC_ERR_NOMEM. */
pc_err_t pc_certs_tenant_args(const char *tenant, pc_args_t *args, pc_diag_t *diag);

/* tenants: count names (borrowed for the call); next: the cursor to go on with, 0 at the end. */
typedef void (*pc_certs_tenants_fn)(void *arg, pc_err_t err, const char **tenants, size_t count,
                                    unsigned long long next, const pc_diag_t *diag);

/* pc_certs_tenants reads one page of the tenants from cursor (0: the start), SSCAN's way: a
 * tenant may come twice over a whole pass, never not at all. Errors as for pc_certs_find. */
pc_err_t pc_certs_tenants(pc_redis_t *redis, unsigned long long cursor, pc_certs_tenants_fn cb,
                          void *arg);

/* ---- queues ------------------------------------------------------------------------------ */

typedef enum pc_certs_queue {
    PC_CERTS_DUE_RENEWAL = 0, /* valid certificates past renew_at: a renewal notice each */
    PC_CERTS_DUE_EXPIRY,      /* valid certificates by not_after: an expiry notice each */
    PC_CERTS_DUE_REVOCATION,  /* superseded certificates whose CA has not revoked them yet */
} pc_certs_queue_t;

/* pc_certs_take_due hands out up to limit certificates of tenant's queue due by due_by_ms (its
 * score: renew_at, not_after or the time superseded), as records through cb (more is false);
 * each comes back from this call again after later_ms unless pc_certs_due_done took it out.
 * Certificates the queue no longer concerns (revoked, superseded or expired before their
 * renewal notice) leave it. Errors as for pc_certs_find. */
pc_err_t pc_certs_take_due(pc_redis_t *redis, const char *tenant, pc_certs_queue_t queue,
                           int64_t due_by_ms, unsigned limit, unsigned later_ms,
                           pc_certs_found_fn cb, void *arg);

/* pc_certs_due_done takes ref out of tenant's queue, once its notice was delivered or its CA
 * revoked it; cb as for pc_redis_command (the reply is ignored). */
pc_err_t pc_certs_due_done(pc_redis_t *redis, const char *tenant, pc_certs_queue_t queue,
                           const pc_cert_ref_t *ref, pc_redis_reply_fn cb, void *arg);

#endif
