/*
 * keyq.c - per-key FIFOs in a chained hash table: a chain node per key with a singly linked
 * list of entries. A key's node is removed when its last entry leaves. Loop thread only.
 */
#include "keyq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *next;
    pc_keyq_entry_t *head, *tail;
    size_t key_len;
    char key[];
} node_t;

struct pc_keyq {
    node_t **buckets;
    size_t bucket_count;
    size_t waiting;
};

static uint64_t hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

pc_keyq_t *pc_keyq_new(size_t buckets)
{
    pc_keyq_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->bucket_count = buckets == 0 ? 1024 : buckets;
    q->buckets = calloc(q->bucket_count, sizeof(*q->buckets));
    if (q->buckets == NULL) {
        free(q);
        return NULL;
    }
    return q;
}

void pc_keyq_free(pc_keyq_t *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->bucket_count; i++) {
        node_t *n = q->buckets[i];
        while (n != NULL) {
            node_t *next = n->next;
            for (pc_keyq_entry_t *e = n->head; e != NULL; e = e->next)
                e->key = NULL;
            free(n);
            n = next;
        }
    }
    free(q->buckets);
    free(q);
}

static node_t **find(pc_keyq_t *q, const void *key, size_t len)
{
    node_t **link = &q->buckets[hash(key, len) % q->bucket_count];
    while (*link != NULL && ((*link)->key_len != len || memcmp((*link)->key, key, len) != 0))
        link = &(*link)->next;
    return link;
}

bool pc_keyq_push(pc_keyq_t *q, pc_keyq_entry_t *e, const void *key, size_t key_len)
{
    e->next = NULL;
    e->key = NULL;
    e->key_len = 0;
    if (key_len == 0)
        return true;
    node_t **link = find(q, key, key_len);
    node_t *n = *link;
    if (n == NULL) {
        n = calloc(1, sizeof(*n) + key_len);
        if (n == NULL)
            return true; /* out of memory: run unordered rather than stall */
        memcpy(n->key, key, key_len);
        n->key_len = key_len;
        *link = n;
    }
    e->key = n->key;
    e->key_len = key_len;
    if (n->tail == NULL) {
        n->head = n->tail = e;
        return true;
    }
    n->tail->next = e;
    n->tail = e;
    q->waiting++;
    return false;
}

pc_keyq_entry_t *pc_keyq_remove(pc_keyq_t *q, pc_keyq_entry_t *e)
{
    if (e->key == NULL)
        return NULL;
    node_t **link = find(q, e->key, e->key_len);
    node_t *n = *link;
    pc_keyq_entry_t *next_head = NULL;
    if (n == NULL)
        return NULL;
    if (n->head == e) {
        n->head = e->next;
        next_head = e->next;
        if (next_head != NULL)
            q->waiting--;
    } else {
        pc_keyq_entry_t *prev = n->head;
        while (prev != NULL && prev->next != e)
            prev = prev->next;
        if (prev == NULL)
            return NULL;
        prev->next = e->next;
        q->waiting--;
    }
    /* the tail, found by walking: a key's chain holds a handful of requests at most */
    pc_keyq_entry_t *t = n->head;
    while (t != NULL && t->next != NULL)
        t = t->next;
    n->tail = t;
    e->key = NULL;
    e->next = NULL;
    if (n->head == NULL) {
        *link = n->next;
        free(n);
    }
    return next_head;
}

pc_keyq_entry_t *pc_keyq_pop(pc_keyq_t *q, pc_keyq_entry_t *e)
{
    return pc_keyq_remove(q, e);
}

size_t pc_keyq_waiting(const pc_keyq_t *q)
{
    return q->waiting;
}
