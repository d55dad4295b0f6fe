/*
 * keypool.h - a bounded in-memory pool of pre-generated key pairs per key spec, filled while
 * the worker has spare CPU, so that a burst after a quiet period is answered without waiting
 * for key generation. Keys never leave memory, and each is handed out once. Thread-safe: taken
 * on pool threads, filled from pool threads, asked about from the loop thread.
 */
#ifndef PC_KEYPOOL_H
#define PC_KEYPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "keygen.h"

typedef struct pc_keypool pc_keypool_t;

/* pc_keypool_new: up to capacity keys for each of the count specs (copied). NULL on OOM. */
pc_keypool_t *pc_keypool_new(const pc_key_spec_t *specs, size_t count, size_t capacity);
/* pc_keypool_free frees every pooled key (OpenSSL wipes them). NULL allowed. */
void pc_keypool_free(pc_keypool_t *pool);

/* pc_keypool_take returns a pooled key for spec (the caller's), or NULL when none is ready. */
EVP_PKEY *pc_keypool_take(pc_keypool_t *pool, const pc_key_spec_t *spec);

/* pc_keypool_reserve picks the spec that most needs a key (lowest fill) and reserves one slot
 * for it; false when every spec is full or being filled. Each reservation ends with
 * pc_keypool_put (the pool takes key) or pc_keypool_cancel. */
bool pc_keypool_reserve(pc_keypool_t *pool, pc_key_spec_t *spec);
void pc_keypool_put(pc_keypool_t *pool, const pc_key_spec_t *spec, EVP_PKEY *key);
void pc_keypool_cancel(pc_keypool_t *pool, const pc_key_spec_t *spec);

/* pc_keypool_count: keys ready for spec; for every spec when spec is NULL. */
size_t pc_keypool_count(pc_keypool_t *pool, const pc_key_spec_t *spec);

#endif
