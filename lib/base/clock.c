/*
 * clock.c - the wall, monotonic and thread CPU clocks, read in one place so that every module
 * means the same thing by "now". Any thread.
 */
#include "clock.h"

#include <time.h>

static uint64_t read_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t pc_now_ms(void)
{
    return (int64_t)(read_us(CLOCK_REALTIME) / 1000u);
}

uint64_t pc_mono_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

double pc_mono_s(void)
{
    return (double)pc_mono_us() / 1e6;
}

uint64_t pc_thread_cpu_us(void)
{
    return read_us(CLOCK_THREAD_CPUTIME_ID);
}
