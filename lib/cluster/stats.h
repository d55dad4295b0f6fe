/*
 * stats.h - the cluster's statistics, kept in Redis so that they outlive every process: what
 * the cluster did since it began, and minute by minute for the last two hours the same counts
 * with a latency histogram. Workers count each finished request where they are (pc_stats_add)
 * and write what they counted every second (pc_stats_flush): a few commands a second per
 * worker whatever the traffic, where a write per request cost Redis two scripts each. The
 * coordinator reads (pc_stats_read) for its totals, rates and percentiles. This module owns the
 * key family "pc:stats:":
 *
 *   pc:stats:total         hash: issued, failed, revoked, imported, renewed, conflicts, dlq
 *                          (requests since the cluster began; never expires)
 *   pc:stats:min:MINUTE    hash (MINUTE = unix time / 60): the same counts for requests that
 *                          finished in that minute; lat_le_MS for each bound of
 *                          pc_stats_bounds_ms and lat_le_inf: how many took (previous bound, MS]
 *                          (per bucket, not cumulative); lat_sum_ms. Expires PC_STATS_KEEP_S
 *                          after its last write.
 *
 * A count is an HINCRBY, so any number of workers add to the same hashes; a minute's hash is
 * kept short-lived, so the family's size is bounded whatever the traffic. Loop thread only.
 */
#ifndef PC_STATS_H
#define PC_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pc_err.h"
#include "redis.h"

#define PC_STATS_KEEP_S (2 * 3600) /* a minute's hash lives this long after its last write */
#define PC_STATS_WINDOW 60         /* minutes pc_stats_read reads at most: the last hour */
#define PC_STATS_BUCKETS 11        /* the bounds below, then +Inf */

/* What is counted. A request adds one to its outcome (issued, failed, revoked, imported, dlq),
 * and one to renewed or conflicts when it is also that. */
typedef enum pc_stats_count {
    PC_STATS_ISSUED = 0,
    PC_STATS_FAILED,
    PC_STATS_REVOKED,
    PC_STATS_IMPORTED,
    PC_STATS_RENEWED,   /* an ISSUED that renewed (superseded) an earlier certificate */
    PC_STATS_CONFLICTS, /* a FAILED because its request id was used for other content */
    PC_STATS_DLQ,       /* set aside on the dead-letter topic */
    PC_STATS__COUNT
} pc_stats_count_t;

/* The field names of the counts, in pc_stats_count_t order. */
extern const char *const pc_stats_names[PC_STATS__COUNT];

/* Upper bounds (ms) of the latency buckets but the last (+Inf). */
extern const int64_t pc_stats_bounds_ms[PC_STATS_BUCKETS - 1];

/* One finished request. */
typedef struct pc_stats_event {
    pc_stats_count_t outcome; /* ISSUED, FAILED, REVOKED, IMPORTED or DLQ */
    bool renewed, conflict;   /* also counted as PC_STATS_RENEWED / PC_STATS_CONFLICTS */
    int64_t latency_ms;       /* into the histogram; < 0: not measured */
    int64_t at_ms;            /* when it finished (wall clock): its minute */
} pc_stats_event_t;

/* Outcome of a write: PC_OK, or PC_ERR_DEPENDENCY with diag when Redis did not take it. */
typedef void (*pc_stats_done_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* One minute as read, or as counted before it is written. */
typedef struct pc_stats_minute {
    int64_t minute; /* unix time / 60 */
    uint64_t counts[PC_STATS__COUNT];
    uint64_t lat[PC_STATS_BUCKETS]; /* per bucket (not cumulative) */
    uint64_t lat_sum_ms;
} pc_stats_minute_t;

#define PC_STATS_PENDING_MINUTES 4 /* minutes a pc_stats_pending_t holds */

/* Counts not written yet: the total and the minutes they fall in. Zero it to start; owned by
 * its caller, who adds to it and flushes it. What a process holds when it dies is lost: counts,
 * never records, and at most a second's worth with a flush every second. */
typedef struct pc_stats_pending {
    uint64_t total[PC_STATS__COUNT];
    size_t count;                                        /* minutes held */
    pc_stats_minute_t minutes[PC_STATS_PENDING_MINUTES]; /* in the order they came */
} pc_stats_pending_t;

/* pc_stats_add counts ev in p, no I/O. PC_OK; PC_ERR_INVALID_PARAM for an outcome that is not
 * one (RENEWED and CONFLICTS are flags of an event, not outcomes); PC_ERR_TOO_LARGE when p holds
 * PC_STATS_PENDING_MINUTES other minutes already: flush p, then add ev again. */
pc_err_t pc_stats_add(pc_stats_pending_t *p, const pc_stats_event_t *ev);

/* pc_stats_flush writes what p holds and empties it: one script per minute's hash, then one
 * for pc:stats:total (so that a reader who sees the total sees the minutes), pipelined on
 * redis's connection; cb (may be NULL) runs once on the loop thread when all are answered,
 * never inside this call. Returns PC_OK when cb will run; PC_ERR_NOT_FOUND when p holds
 * nothing (nothing sent); PC_ERR_NOMEM / PC_ERR_DEPENDENCY (redis closed): p is emptied all
 * the same and cb does not run. A count is lost, never doubled, when Redis fails. */
pc_err_t pc_stats_flush(pc_redis_t *redis, pc_stats_pending_t *p, pc_stats_done_fn cb, void *arg);

/* pc_stats_record is pc_stats_add and pc_stats_flush of one event, for a process that writes
 * seldom (and the tests). */
pc_err_t pc_stats_record(pc_redis_t *redis, const pc_stats_event_t *ev, pc_stats_done_fn cb,
                         void *arg);

/* What pc_stats_read found: zeros where nothing was recorded. */
typedef struct pc_stats_view {
    uint64_t total[PC_STATS__COUNT];
    size_t count;                               /* minutes read */
    pc_stats_minute_t minutes[PC_STATS_WINDOW]; /* oldest first; the last is now's minute */
} pc_stats_view_t;

/* view is borrowed for the call; NULL when err is not PC_OK (diag says why). */
typedef void (*pc_stats_read_fn)(void *arg, pc_err_t err, const pc_stats_view_t *view,
                                 const pc_diag_t *diag);

/* pc_stats_read reads pc:stats:total and the hashes of the `minutes` minutes (1 to
 * PC_STATS_WINDOW) up to and including now_ms's, pipelined; cb runs once on the loop thread,
 * never inside this call, with PC_ERR_DEPENDENCY when any read failed. Returns PC_OK when cb
 * will run, else PC_ERR_INVALID_PARAM (minutes out of range), PC_ERR_NOMEM, PC_ERR_DEPENDENCY
 * (redis closed). */
pc_err_t pc_stats_read(pc_redis_t *redis, int64_t now_ms, unsigned minutes, pc_stats_read_fn cb,
                       void *arg);

/* pc_stats_quantile returns the q-quantile (0..1) in ms of the latencies counted in lat,
 * interpolated linearly within its bucket (the +Inf bucket answers its lower bound); -1 when
 * lat counts nothing. Any thread. */
double pc_stats_quantile(const uint64_t lat[PC_STATS_BUCKETS], double q);

#endif
