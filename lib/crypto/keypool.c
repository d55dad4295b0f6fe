/*
 * keypool.c - pre-generated key pairs per key spec, bounded, handed out once each. A mutex
 * guards the small per-spec stacks; taking is O(1). Any thread.
 */
#include "keypool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct slot {
    pc_key_spec_t spec;
    EVP_PKEY **keys;
    size_t count;
    size_t filling; /* reserved by pc_keypool_reserve, not yet put or cancelled */
} slot_t;

struct pc_keypool {
    pthread_mutex_t lock;
    slot_t *slots;
    size_t slot_count;
    size_t capacity;
};

pc_keypool_t *pc_keypool_new(const pc_key_spec_t *specs, size_t count, size_t capacity)
{
    pc_keypool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->slots = calloc(count == 0 ? 1 : count, sizeof(*pool->slots));
    if (pool->slots == NULL)
        goto out_free_pool;
    pool->capacity = capacity;
    for (size_t i = 0; i < count; i++) {
        pool->slots[i].spec = specs[i];
        pool->slots[i].keys = calloc(capacity == 0 ? 1 : capacity, sizeof(EVP_PKEY *));
        if (pool->slots[i].keys == NULL)
            goto out_free_slots;
        pool->slot_count = i + 1;
    }
    pthread_mutex_init(&pool->lock, NULL);
    return pool;
out_free_slots:
    for (size_t i = 0; i < pool->slot_count; i++)
        free(pool->slots[i].keys);
    free(pool->slots);
out_free_pool:
    free(pool);
    return NULL;
}

void pc_keypool_free(pc_keypool_t *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->slot_count; i++) {
        for (size_t k = 0; k < pool->slots[i].count; k++)
            EVP_PKEY_free(pool->slots[i].keys[k]);
        free(pool->slots[i].keys);
    }
    free(pool->slots);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

static slot_t *find_slot(pc_keypool_t *pool, const pc_key_spec_t *spec)
{
    for (size_t i = 0; i < pool->slot_count; i++)
        if (pool->slots[i].spec.alg == spec->alg && pool->slots[i].spec.bits == spec->bits)
            return &pool->slots[i];
    return NULL;
}

EVP_PKEY *pc_keypool_take(pc_keypool_t *pool, const pc_key_spec_t *spec)
{
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&pool->lock);
    slot_t *slot = find_slot(pool, spec);
    if (slot != NULL && slot->count > 0)
        key = slot->keys[--slot->count];
    pthread_mutex_unlock(&pool->lock);
    return key;
}

bool pc_keypool_reserve(pc_keypool_t *pool, pc_key_spec_t *spec)
{
    slot_t *best = NULL;
    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->slot_count; i++) {
        slot_t *s = &pool->slots[i];
        if (s->count + s->filling >= pool->capacity)
            continue;
        if (best == NULL || s->count + s->filling < best->count + best->filling)
            best = s;
    }
    if (best != NULL) {
        best->filling++;
        *spec = best->spec;
    }
    pthread_mutex_unlock(&pool->lock);
    return best != NULL;
}

void pc_keypool_put(pc_keypool_t *pool, const pc_key_spec_t *spec, EVP_PKEY *key)
{
    pthread_mutex_lock(&pool->lock);
    slot_t *slot = find_slot(pool, spec);
    if (slot != NULL && slot->filling > 0)
        slot->filling--;
    if (slot != NULL && slot->count < pool->capacity) {
        slot->keys[slot->count++] = key;
        key = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    EVP_PKEY_free(key); /* no room (or unknown spec): never kept beyond capacity */
}

void pc_keypool_cancel(pc_keypool_t *pool, const pc_key_spec_t *spec)
{
    pthread_mutex_lock(&pool->lock);
    slot_t *slot = find_slot(pool, spec);
    if (slot != NULL && slot->filling > 0)
        slot->filling--;
    pthread_mutex_unlock(&pool->lock);
}

size_t pc_keypool_count(pc_keypool_t *pool, const pc_key_spec_t *spec)
{
    size_t n = 0;
    pthread_mutex_lock(&pool->lock);
    if (spec == NULL) {
        for (size_t i = 0; i < pool->slot_count; i++)
            n += pool->slots[i].count;
    } else {
        slot_t *slot = find_slot(pool, spec);
        n = slot == NULL ? 0 : slot->count;
    }
    pthread_mutex_unlock(&pool->lock);
    return n;
}
