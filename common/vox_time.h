/*
 * vox_time: the one monotonic clock, the one "now as RFC 3339", RFC 3339
 * parsing and formatting, sleeping, and the one exponential backoff with
 * jitter that every module uses (thread-safe: a per-thread generator
 * seeded from getrandom, never rand()).
 */
#ifndef VOX_TIME_H
#define VOX_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock (CLOCK_MONOTONIC): for timeouts and durations. */
int64_t vox_mono_ms(void);
int64_t vox_mono_us(void);
double vox_mono_seconds(void);

/* Wall clock in microseconds since the epoch (CLOCK_REALTIME). */
int64_t vox_now_us(void);

/* Sleeps ms milliseconds, resuming after signals. */
void vox_sleep_ms(long ms);

/* RFC 3339 UTC time with microseconds: 2026-11-24T16:02:17.123456Z
 * (outlen >= 28). */
void vox_time_now_rfc3339(char *out, size_t outlen);
void vox_rfc3339_format(int64_t us, char *out, size_t outlen);

/* Parses an RFC 3339 date-time (Z or +hh:mm offset, up to 9 fractional
 * digits, years from 1970). Returns 0 or VOX_ERR_INVALID. */
int vox_rfc3339_parse(const char *text, int64_t *out_us);

/* A uniformly random number in [0, bound) (bound > 0) from a per-thread
 * xorshift64* generator seeded by getrandom: for jitter, not secrets. */
uint64_t vox_jitter_random(uint64_t bound);

/* Exponential backoff: base_ms doubled for each attempt after the first
 * (attempt counts from 1), capped at max_ms, then "equal jitter": a delay
 * uniformly in [d/2, d]. full_jitter: uniformly in [0, d] instead. */
long vox_backoff_ms(long base_ms, long max_ms, int attempt, int full_jitter);

#endif
