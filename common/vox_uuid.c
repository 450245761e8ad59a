/*
 * vox_uuid: UUIDv7 generation (RFC 9562, method 1: a 12-bit counter in
 * rand_a) and checks of textual UUIDs.
 *
 * Ids from one process are strictly increasing, also when the wall clock
 * steps back or more than 4096 ids are made in one millisecond: then the
 * timestamp field runs ahead of the clock until the clock catches up.
 */
#include "vox_uuid.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define COUNTER_MAX 0xfffu

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static uint32_t uuid_counter;

static void random_fill(unsigned char *out, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(out + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* a duplicate id is worse than stopping: ids are
			 * primary keys and idempotency keys */
			fprintf(stderr, "vox_uuid: getrandom: %s\n",
			        strerror(errno));
			abort();
		}
		done += (size_t)n;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Picks the (timestamp, counter) pair following the last one handed out. */
static void next_stamp(uint64_t clock_ms, uint16_t seed, uint64_t *ms,
                       uint32_t *counter)
{
	clock_ms &= 0xffffffffffffull;
	pthread_mutex_lock(&uuid_lock);
	if (clock_ms > uuid_last_ms) {
		uuid_last_ms = clock_ms;
		/* random start, top bit clear: at least 2048 ids of headroom
		 * before the timestamp has to run ahead */
		uuid_counter = seed & 0x7ffu;
	} else if (uuid_counter < COUNTER_MAX) {
		uuid_counter++;
	} else {
		uuid_last_ms++;
		uuid_counter = seed & 0x7ffu;
	}
	*ms = uuid_last_ms;
	*counter = uuid_counter;
	pthread_mutex_unlock(&uuid_lock);
}

void vox_uuid7_at(char out[VOX_UUID_STRLEN], uint64_t clock_ms)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[10], bytes[16];
	uint32_t counter;
	uint64_t ms;
	size_t o = 0;

	random_fill(rnd, sizeof(rnd));
	next_stamp(clock_ms, (uint16_t)(rnd[0] << 8 | rnd[1]), &ms, &counter);
	for (int i = 0; i < 6; i++)
		bytes[i] = (unsigned char)(ms >> (40 - 8 * i));
	bytes[6] = (unsigned char)(0x70 | (counter >> 8));
	bytes[7] = (unsigned char)(counter & 0xff);
	memcpy(bytes + 8, rnd + 2, 8);
	bytes[8] = (unsigned char)(0x80 | (bytes[8] & 0x3f));

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[bytes[i] >> 4];
		out[o++] = hex[bytes[i] & 0xf];
	}
	out[o] = '\0';
}

void vox_uuid7(char out[VOX_UUID_STRLEN])
{
	vox_uuid7_at(out, now_ms());
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool vox_uuid_valid(const char *text)
{
	if (text == NULL)
		return false;
	for (int i = 0; i < VOX_UUID_STRLEN - 1; i++) {
		bool dash = (i == 8 || i == 13 || i == 18 || i == 23);

		/* also stops at a short string's NUL */
		if (dash ? text[i] != '-' : hex_value(text[i]) < 0)
			return false;
	}
	return text[VOX_UUID_STRLEN - 1] == '\0';
}

bool vox_uuid_bytes(const char *text, unsigned char out[16])
{
	int k = 0;

	if (!vox_uuid_valid(text))
		return false;
	for (int i = 0; i < VOX_UUID_STRLEN - 1; i++) {
		if (text[i] == '-')
			continue;
		out[k++] = (unsigned char)(hex_value(text[i]) << 4 |
		                           hex_value(text[i + 1]));
		i++;
	}
	return true;
}

uint64_t vox_uuid7_time_ms(const char *text)
{
	uint64_t ms = 0;
	int variant;

	if (!vox_uuid_valid(text) || text[14] != '7')
		return 0;
	variant = hex_value(text[19]);
	if ((variant & 0xc) != 0x8)
		return 0;
	for (int i = 0; i < 13; i++) {
		if (i == 8)
			continue;
		ms = ms << 4 | (uint64_t)hex_value(text[i]);
	}
	return ms;
}
