/*
 * dedupe.h - the per-request record in Redis that makes issuance effectively-once: claim with
 * a lease, renew it while working, complete under a fencing token, and the cached result for a
 * retention period. Every multi-step change is one Lua script. Loop thread only.
 *
 * Record: key "pc:req:{tenant}:{request_id}" (hash) with fields state ("claimed"/"done"),
 * owner (worker id), token (random lease token), fence (counter raised at every claim),
 * lease_until (ms), intent (opaque bytes the owner records before submitting to a CA: with the
 * claim when it is known then, else with set_intent),
 * request (the content digest of the request that first claimed it: the same id with other
 * content is a CONFLICT), result (the serialized Result), digest (SHA-256 hex of result). A claimed
 * record expires (PEXPIRE) 60 s after its lease, so that the intent of a dead owner is still there
 * for the worker that takes over; a done record lives for the retention period.
 */
#ifndef PC_DEDUPE_H
#define PC_DEDUPE_H

#include <stdbool.h>
#include <stdint.h>

#include "certs.h"
#include "pc_err.h"
#include "redis.h"

typedef enum pc_claim_state {
    PC_CLAIM_OWNED = 1, /* we hold the lease: do the work */
    PC_CLAIM_DONE,      /* already done: result holds the cached result, send it again */
    PC_CLAIM_BUSY,      /* another worker holds a live lease: try again after retry_after_ms */
    PC_CLAIM_CONFLICT,  /* the request id was first used for a request of other content */
} pc_claim_state_t;

typedef struct pc_claim {
    pc_claim_state_t state;
    char token[33];              /* our lease token (OWNED) */
    int64_t fence;               /* fencing counter of our claim (OWNED) */
    const unsigned char *result; /* DONE: borrowed for the duration of the callback */
    size_t result_len;
    const unsigned char *intent; /* OWNED: intent left by a previous owner that died, or NULL */
    size_t intent_len;
    bool intent_recorded;   /* OWNED: the intent given to the claim is the record's now */
    int64_t retry_after_ms; /* BUSY: the rest of the other owner's lease */
} pc_claim_t;

typedef struct pc_dedupe pc_dedupe_t;

#define PC_DEDUPE_ID_MAX 128 /* bytes of a tenant or request id */
/* Each id is one key segment (pc_key_segment): at most three bytes per byte of id. */
#define PC_DEDUPE_KEY_MAX (sizeof("pc:req:{}:{}") + 2 * 3 * PC_DEDUPE_ID_MAX)

/* pc_dedupe_key writes the record key "pc:req:{tenant}:{request_id}" (literal braces, each id
 * encoded as a key segment with pc_key_segment, so that no tenant and id can make another pair's
 * key) into buf (PC_DEDUPE_KEY_MAX bytes suffice); PC_ERR_INVALID_PARAM when an id is empty or
 * longer than PC_DEDUPE_ID_MAX bytes. Any thread. */
pc_err_t pc_dedupe_key(const char *tenant, const char *request_id, char *buf, size_t size,
                       pc_diag_t *diag);

typedef void (*pc_claim_fn)(void *arg, pc_err_t err, const pc_claim_t *claim,
                            const pc_diag_t *diag);
/* For renew / complete / set_intent / release: err PC_OK, PC_ERR_CONFLICT when the lease was
 * lost (another worker took over; stop and do not publish), PC_ERR_DEPENDENCY when Redis is
 * down. */
typedef void (*pc_dedupe_done_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* pc_dedupe_new: redis is borrowed; lease_ms default 30000 (0), retention_ms default 7 days
 * (0). Every operation below runs its callback exactly once on the loop thread when it
 * returns PC_OK; it returns PC_ERR_INVALID_PARAM for a bad id or a token that is not 32 characters,
 * PC_ERR_NOMEM, PC_ERR_CRYPTO (no randomness) or PC_ERR_DEPENDENCY (connection closed)
 * otherwise, and then the callback does not run. In-flight operations do not use dd, so
 * pc_dedupe_free may come first. A script error reply (OOM, READONLY) is PC_ERR_DEPENDENCY.
 * complete stores digest = SHA-256 hex of result, computed in C. */
pc_err_t pc_dedupe_new(pc_redis_t *redis, const char *worker_id, unsigned lease_ms,
                       int64_t retention_ms, pc_dedupe_t **out, pc_diag_t *diag);
void pc_dedupe_free(pc_dedupe_t *dd);

/* claim: content is the request's content digest (pc_request_digest; "" skips the check).
 * intent (NULL: none) is recorded with the claim, in the same script, when no earlier owner left
 * one (claim->intent_recorded); an earlier owner's is returned instead (claim->intent) and
 * stays. For work whose intent is known before it starts, it saves a set_intent. */
pc_err_t pc_dedupe_claim(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                         const char *content, const char *intent, pc_claim_fn cb, void *arg);
pc_err_t pc_dedupe_renew(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                         const char *token, pc_dedupe_done_fn cb, void *arg);
pc_err_t pc_dedupe_set_intent(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                              const char *token, const unsigned char *intent, size_t len,
                              pc_dedupe_done_fn cb, void *arg);
/* complete stores result and marks the record done, only if token and fence still match, and
 * in the same script applies change to the inventory (certs.h; NULL: none), so that a result
 * and the certificates it delivered or revoked are recorded together; a record already done
 * with this very result (a retry whose first reply was lost) is PC_OK and changes nothing. */
pc_err_t pc_dedupe_complete(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                            const char *token, int64_t fence, const unsigned char *result,
                            size_t len, const pc_certs_change_t *change, pc_dedupe_done_fn cb,
                            void *arg);
/* release gives the lease up (work abandoned, e.g. on rebalance); a later claim takes over.
 * A record with an intent stays (lease over) for that claim to see, unless drop_own_intent says
 * the intent is the one our claim recorded and nothing was asked of the CA since: then, as
 * without an intent, the record is deleted. */
pc_err_t pc_dedupe_release(pc_dedupe_t *dd, const char *tenant, const char *request_id,
                           const char *token, bool drop_own_intent, pc_dedupe_done_fn cb,
                           void *arg);

#endif
