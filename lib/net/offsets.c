/*
 * offsets.c - the contiguous-prefix tracker behind at-least-once commits.
 *
 * Messages of one partition are worked on in parallel and finish out of order, but Kafka can
 * only remember one position per partition. Each partition keeps a ring buffer of the offsets
 * handed out, in increasing order, with a done flag; the front is popped while it is done, and
 * the last popped offset + 1 is what may be committed. Offsets need not be contiguous
 * (compaction, transaction markers): lookup tries offset - front first and falls back to a
 * binary search. Partitions are a sparse array indexed by partition id (ids are small and
 * dense in Kafka). Single-threaded: the owner's loop thread.
 */
#include "offsets.h"

#include <stdlib.h>

/* Kafka partition ids are dense from 0; a larger id is a caller bug, not a topic. */
#define PARTITION_LIMIT (1 << 20)
#define RING_INITIAL 64

struct entry {
    int64_t offset;
    const void *token;
    bool done;
};

struct part {
    struct entry *ring; /* cap entries, a power of two */
    size_t cap, head, len;
    size_t in_flight;
    int64_t last_begun;    /* highest offset handed out, -1 none */
    int64_t prefix_end;    /* highest offset of the completed prefix, -1 none */
    int64_t last_returned; /* last value of next_commit, -1 none */
};

struct pc_offsets {
    struct part **parts; /* indexed by partition id, NULL = not tracked */
    size_t nparts;
    int count;
    size_t in_flight;
};

pc_offsets_t *pc_offsets_new(void)
{
    return calloc(1, sizeof(pc_offsets_t));
}

static void part_free(struct part *part)
{
    if (part == NULL)
        return;
    free(part->ring);
    free(part);
}

void pc_offsets_free(pc_offsets_t *offsets)
{
    if (offsets == NULL)
        return;
    for (size_t i = 0; i < offsets->nparts; i++)
        part_free(offsets->parts[i]);
    free(offsets->parts);
    free(offsets);
}

static struct part *part_get(const pc_offsets_t *offsets, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= offsets->nparts)
        return NULL;
    return offsets->parts[partition];
}

/* grow_index makes room for partition id in the sparse index. */
static pc_err_t grow_index(pc_offsets_t *offsets, int32_t partition)
{
    size_t want = (size_t)partition + 1;
    if (want <= offsets->nparts)
        return PC_OK;
    size_t n = offsets->nparts ? offsets->nparts : 16;
    while (n < want)
        n *= 2;
    struct part **parts = realloc(offsets->parts, n * sizeof(*parts));
    if (parts == NULL)
        return PC_ERR_NOMEM;
    for (size_t i = offsets->nparts; i < n; i++)
        parts[i] = NULL;
    offsets->parts = parts;
    offsets->nparts = n;
    return PC_OK;
}

pc_err_t pc_offsets_add_partition(pc_offsets_t *offsets, int32_t partition)
{
    if (partition < 0 || partition >= PARTITION_LIMIT)
        return PC_ERR_INVALID_PARAM;
    if (part_get(offsets, partition) != NULL)
        return PC_OK;
    if (grow_index(offsets, partition) != PC_OK)
        return PC_ERR_NOMEM;
    struct part *part = calloc(1, sizeof(*part));
    if (part == NULL)
        return PC_ERR_NOMEM;
    part->last_begun = -1;
    part->prefix_end = -1;
    part->last_returned = -1;
    offsets->parts[partition] = part;
    offsets->count++;
    return PC_OK;
}

void pc_offsets_remove_partition(pc_offsets_t *offsets, int32_t partition)
{
    struct part *part = part_get(offsets, partition);
    if (part == NULL)
        return;
    offsets->in_flight -= part->in_flight;
    offsets->count--;
    offsets->parts[partition] = NULL;
    part_free(part);
}

bool pc_offsets_has_partition(const pc_offsets_t *offsets, int32_t partition)
{
    return part_get(offsets, partition) != NULL;
}

int pc_offsets_partition_count(const pc_offsets_t *offsets)
{
    return offsets->count;
}

static struct entry *ring_at(const struct part *part, size_t i)
{
    return &part->ring[(part->head + i) & (part->cap - 1)];
}

/* ring_grow doubles the ring, unwrapping it so that head is 0 again. */
static pc_err_t ring_grow(struct part *part)
{
    size_t cap = part->cap ? part->cap * 2 : RING_INITIAL;
    struct entry *ring = malloc(cap * sizeof(*ring));
    if (ring == NULL)
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < part->len; i++)
        ring[i] = *ring_at(part, i);
    free(part->ring);
    part->ring = ring;
    part->cap = cap;
    part->head = 0;
    return PC_OK;
}

pc_err_t pc_offsets_begin(pc_offsets_t *offsets, int32_t partition, int64_t offset,
                          const void *token)
{
    struct part *part = part_get(offsets, partition);
    if (part == NULL)
        return PC_ERR_NOT_FOUND;
    if (offset < 0 || offset <= part->last_begun || offset <= part->prefix_end)
        return PC_ERR_CONFLICT;
    if (part->len == part->cap && ring_grow(part) != PC_OK)
        return PC_ERR_NOMEM;
    struct entry *entry = ring_at(part, part->len);
    entry->offset = offset;
    entry->token = token;
    entry->done = false;
    part->len++;
    part->last_begun = offset;
    part->in_flight++;
    offsets->in_flight++;
    return PC_OK;
}

/* find returns the ring entry holding offset, or NULL. Contiguous offsets hit on the first
 * probe; gaps fall back to a binary search (the ring is sorted). */
static struct entry *find(const struct part *part, int64_t offset)
{
    if (part->len == 0)
        return NULL;
    int64_t first = ring_at(part, 0)->offset;
    if (offset < first || offset > part->last_begun)
        return NULL;
    uint64_t guess = (uint64_t)(offset - first);
    if (guess < part->len && ring_at(part, (size_t)guess)->offset == offset)
        return ring_at(part, (size_t)guess);
    size_t lo = 0, hi = part->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct entry *entry = ring_at(part, mid);
        if (entry->offset == offset)
            return entry;
        if (entry->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* pop_done advances the completed prefix over the done entries at the front. */
static void pop_done(struct part *part)
{
    while (part->len > 0 && ring_at(part, 0)->done) {
        part->prefix_end = ring_at(part, 0)->offset;
        part->head = (part->head + 1) & (part->cap - 1);
        part->len--;
    }
}

bool pc_offsets_done(pc_offsets_t *offsets, int32_t partition, int64_t offset, const void *token)
{
    struct part *part = part_get(offsets, partition);
    if (part == NULL)
        return false;
    struct entry *entry = find(part, offset);
    if (entry == NULL || entry->done || entry->token != token)
        return false;
    entry->done = true;
    part->in_flight--;
    offsets->in_flight--;
    pop_done(part);
    return true;
}

int64_t pc_offsets_commit_point(const pc_offsets_t *offsets, int32_t partition)
{
    const struct part *part = part_get(offsets, partition);
    if (part == NULL || part->prefix_end < 0)
        return -1;
    return part->prefix_end + 1;
}

int64_t pc_offsets_next_commit(pc_offsets_t *offsets, int32_t partition)
{
    struct part *part = part_get(offsets, partition);
    int64_t point = pc_offsets_commit_point(offsets, partition);
    if (point < 0 || point == part->last_returned)
        return -1;
    part->last_returned = point;
    return point;
}

size_t pc_offsets_in_flight(const pc_offsets_t *offsets, int32_t partition)
{
    const struct part *part = part_get(offsets, partition);
    return part ? part->in_flight : 0;
}

size_t pc_offsets_total_in_flight(const pc_offsets_t *offsets)
{
    return offsets->in_flight;
}

int64_t pc_offsets_unfinished(const pc_offsets_t *offsets, int32_t partition)
{
    const struct part *part = part_get(offsets, partition);
    if (part == NULL || part->last_begun < 0)
        return -1;
    for (size_t i = 0; i < part->len; i++) { /* the ring holds done entries behind a pending one */
        const struct entry *e = &part->ring[(part->head + i) & (part->cap - 1)];
        if (!e->done)
            return e->offset;
    }
    return part->last_begun + 1;
}
