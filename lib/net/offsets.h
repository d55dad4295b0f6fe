/*
 * offsets.h - per-partition tracker of consumed offsets and their completion, so that only the
 * contiguous completed prefix of a partition is ever stored for commit. A pure data structure
 * (no librdkafka, no I/O); not thread-safe, the owner serialises (the worker's loop thread).
 */
#ifndef PC_OFFSETS_H
#define PC_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pc_err.h"

typedef struct pc_offsets pc_offsets_t;

/* pc_offsets_new returns an empty tracker (no partitions) or NULL when out of memory. */
pc_offsets_t *pc_offsets_new(void);

/* pc_offsets_free frees the tracker and every partition's state; NULL is a no-op. */
void pc_offsets_free(pc_offsets_t *offsets);

/* pc_offsets_add_partition starts tracking partition (>= 0) with no offsets handed out; a
 * partition already tracked keeps its state. PC_ERR_INVALID_PARAM for a negative id,
 * PC_ERR_NOMEM. */
pc_err_t pc_offsets_add_partition(pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_remove_partition forgets partition and its in-flight offsets (on revoke); later
 * completions for it are unknown. Unknown partitions are a no-op. */
void pc_offsets_remove_partition(pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_has_partition tells whether partition is tracked (assigned). */
bool pc_offsets_has_partition(const pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_partition_count is the number of tracked partitions. */
int pc_offsets_partition_count(const pc_offsets_t *offsets);

/* pc_offsets_begin records that offset of partition was handed out, tagged with token (any
 * pointer unique among in-flight entries, e.g. the message; may be NULL). Offsets must arrive
 * in increasing order per partition: PC_ERR_CONFLICT for one not above the last handed out (the
 * caller then does not track it), PC_ERR_NOT_FOUND for an untracked partition, PC_ERR_NOMEM. */
pc_err_t pc_offsets_begin(pc_offsets_t *offsets, int32_t partition, int64_t offset,
                          const void *token);

/* pc_offsets_done marks offset of partition completed. Returns false (and changes nothing) when
 * the partition is not tracked, the offset is not in flight, or token differs from the one given
 * to pc_offsets_begin (a stale message from an earlier assignment of the same partition). */
bool pc_offsets_done(pc_offsets_t *offsets, int32_t partition, int64_t offset, const void *token);

/* pc_offsets_next_commit returns the offset to store for partition, (the highest offset of the
 * contiguous completed prefix) + 1, or -1 when it has not advanced since the last call (or the
 * partition is unknown). Each value is returned once. */
int64_t pc_offsets_next_commit(pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_commit_point is the offset pc_offsets_next_commit would store, without consuming
 * it: the prefix end + 1, or -1 when nothing of partition has completed yet. */
int64_t pc_offsets_commit_point(const pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_unfinished is the lowest offset of partition not finished: the first one handed
 * out and not done, else the one after the last handed out; -1 when nothing of partition was
 * handed out since it was added (or it is unknown). What lies from there to the partition's end
 * is the work left: in flight, waiting in the consumer's queue, or not fetched yet. */
int64_t pc_offsets_unfinished(const pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_in_flight counts offsets of partition handed out and not yet done (0 if unknown). */
size_t pc_offsets_in_flight(const pc_offsets_t *offsets, int32_t partition);

/* pc_offsets_total_in_flight counts in-flight offsets over all partitions. */
size_t pc_offsets_total_in_flight(const pc_offsets_t *offsets);

#endif
