/*
 * clock.h - the two clocks the project reads: the wall clock, for times that leave the process
 * (messages, records, logs), and the monotonic clock, for durations and deadlines inside it.
 * Any thread.
 */
#ifndef PC_CLOCK_H
#define PC_CLOCK_H

#include <stdint.h>

/* pc_now_ms returns the wall clock in milliseconds since the epoch. */
int64_t pc_now_ms(void);

/* pc_mono_us returns the monotonic clock in microseconds (an arbitrary origin): for durations. */
uint64_t pc_mono_us(void);

/* pc_mono_s is pc_mono_us in seconds, for tools that print durations. */
double pc_mono_s(void);

/* pc_thread_cpu_us returns the CPU time the calling thread has used, in microseconds. */
uint64_t pc_thread_cpu_us(void);

#endif
