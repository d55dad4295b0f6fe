/*
 * keyq.h - serial per key: requests that share a message key (the device id, else the user id)
 * are processed one at a time, in arrival order, while different keys run in parallel.
 * Loop thread only.
 */
#ifndef PC_KEYQ_H
#define PC_KEYQ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pc_keyq pc_keyq_t;

/* An entry lives inside the caller's object (intrusive); the queue never allocates per entry. */
typedef struct pc_keyq_entry {
    struct pc_keyq_entry *next;
    char *key; /* owned by the queue while queued */
    size_t key_len;
} pc_keyq_entry_t;

pc_keyq_t *pc_keyq_new(size_t buckets);
void pc_keyq_free(pc_keyq_t *q);

/* pc_keyq_push appends e under key; true when e is at the head (it may start now). An empty
 * key never waits: it returns true and does not queue. */
bool pc_keyq_push(pc_keyq_t *q, pc_keyq_entry_t *e, const void *key, size_t key_len);

/* pc_keyq_pop removes e, which must be the head of its key (or unqueued), and returns the next
 * entry of the same key, now the head, or NULL. */
pc_keyq_entry_t *pc_keyq_pop(pc_keyq_t *q, pc_keyq_entry_t *e);

/* pc_keyq_remove takes e out wherever it is (abandoned work); returns the new head if e was
 * the head, else NULL. */
pc_keyq_entry_t *pc_keyq_remove(pc_keyq_t *q, pc_keyq_entry_t *e);

/* pc_keyq_waiting: entries queued behind a head, over all keys. */
size_t pc_keyq_waiting(const pc_keyq_t *q);

#endif
