/*
 * log.h - structured logs: one JSON object per line on stderr, with a stable event id, e.g.
 * {"ts":"2026-11-24T10:00:00.123Z","level":"info","event":"issued","worker":"w1",
 *  "request_id":"r1","msg":"..."}. Thread-safe: one write per line. Never give it key material.
 */
#ifndef PC_LOG_H
#define PC_LOG_H

#include <stdio.h>

typedef enum pc_log_level {
    PC_LOG_DEBUG = 0,
    PC_LOG_INFO,
    PC_LOG_WARN,
    PC_LOG_ERROR,
} pc_log_level_t;

/* pc_log_init sets the worker id put on every line, the lowest level written and the stream
 * (NULL = stderr). Call once at start; before it, lines go to stderr at level info. */
void pc_log_init(const char *worker_id, pc_log_level_t min_level, FILE *out);

/* pc_log_parse_level: "debug", "info", "warn" (or "warning"), "error", any case; -1 when
 * unknown or NULL. */
int pc_log_parse_level(const char *text);

/* pc_log writes one line: event id, message, then NULL-terminated pairs of extra string
 * fields ("request_id", id, "partition", "3", NULL). Values are JSON-escaped (invalid UTF-8
 * becomes U+FFFD); a NULL value is written as null. A line over 64 KiB is cut at a character
 * boundary and ends with "truncated":true. Nothing is written below the minimum level. */
void pc_log(pc_log_level_t level, const char *event, const char *msg, ...)
    __attribute__((sentinel));

#endif
