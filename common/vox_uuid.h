/*
 * vox_uuid: UUIDv7 ids (RFC 9562), time-ordered and monotonic per process.
 *
 * Layout: 48-bit Unix ms timestamp, version 7, a 12-bit counter in rand_a
 * that keeps ids increasing within one millisecond, variant, 62 random bits.
 */
#ifndef VOX_UUID_H
#define VOX_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define VOX_UUID_STRLEN 37 /* 36 chars + NUL */

/* Thread-safe. Writes the canonical lowercase 8-4-4-4-12 form. */
void vox_uuid7(char out[VOX_UUID_STRLEN]);

/* vox_uuid7() with the clock reading given instead of read: lets tests
 * step the clock back. Shares vox_uuid7()'s monotonic state. */
void vox_uuid7_at(char out[VOX_UUID_STRLEN], uint64_t clock_ms);

/* Canonical textual UUID of any version (hex digits and dashes in place). */
bool vox_uuid_valid(const char *text);

/* The ms timestamp inside a v7 id (0 when not a v7 id). */
uint64_t vox_uuid7_time_ms(const char *text);

/* The 16 bytes of a canonical textual uuid; false (out untouched) when
 * text is not one. */
bool vox_uuid_bytes(const char *text, unsigned char out[16]);

#endif
