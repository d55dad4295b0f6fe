/*
 * numbers.h - the small numeric helpers the command-line tools share: strict integer parsing for
 * options, and nearest-rank percentiles for latency summaries. Any thread; no state.
 */
#ifndef PC_NUMBERS_H
#define PC_NUMBERS_H

#include <stdbool.h>
#include <stddef.h>

/* pc_parse_long reads a whole decimal integer in [min, max]; false for anything else (empty,
 * trailing characters, out of range), *out untouched then. */
bool pc_parse_long(const char *text, long min, long max, long *out);

/* pc_sort_doubles sorts v ascending, in place. */
void pc_sort_doubles(double *v, size_t n);

/* pc_percentile returns the p-quantile (0..1) of sorted (ascending, n > 0) by nearest rank. */
double pc_percentile(const double *sorted, size_t n, double p);

#endif
