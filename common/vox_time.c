/* vox_time: clocks, RFC 3339, sleeping and backoff with jitter. */
#include "vox_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vox_error.h"

int64_t vox_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t vox_mono_ms(void)
{
	return vox_mono_us() / 1000;
}

double vox_mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t vox_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vox_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	if (ms <= 0)
		return;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void vox_rfc3339_format(int64_t us, char *out, size_t outlen)
{
	time_t secs = (time_t)(us / 1000000);
	long frac = (long)(us % 1000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, frac);
}

void vox_time_now_rfc3339(char *out, size_t outlen)
{
	vox_rfc3339_format(vox_now_us(), out, outlen);
}

/* n decimal digits at s into *out; nonzero if any is not a digit. */
static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30,
	                          31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

int vox_rfc3339_parse(const char *text, int64_t *out_us)
{
	int y, mo, d, h, mi, s, us = 0, off = 0;
	const char *p;
	struct tm tm = {0};

	/* YYYY-MM-DDTHH:MM:SS */
	if (text == NULL || strlen(text) < 20 || digits(text, 4, &y) ||
	    text[4] != '-' || digits(text + 5, 2, &mo) || text[7] != '-' ||
	    digits(text + 8, 2, &d) || (text[10] != 'T' && text[10] != 't') ||
	    digits(text + 11, 2, &h) || text[13] != ':' ||
	    digits(text + 14, 2, &mi) || text[16] != ':' ||
	    digits(text + 17, 2, &s))
		return VOX_ERR_INVALID;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
		return VOX_ERR_INVALID;
	p = text + 19;
	if (*p == '.') {
		int n = 0, scale = 100000;

		for (p++; isdigit((unsigned char)*p); p++, n++) {
			us += (*p - '0') * scale;
			scale /= 10;
		}
		if (n == 0 || n > 9)
			return VOX_ERR_INVALID;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (digits(p + 1, 2, &oh) || p[3] != ':' ||
		    digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return VOX_ERR_INVALID;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return VOX_ERR_INVALID;
	}
	if (*p != '\0')
		return VOX_ERR_INVALID;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	*out_us = ((int64_t)timegm(&tm) - off) * 1000000 + us;
	return 0;
}

uint64_t vox_jitter_random(uint64_t bound)
{
	static __thread uint64_t state;

	if (state == 0) {
		if (getrandom(&state, sizeof(state), 0) !=
		    (ssize_t)sizeof(state))
			state = (uint64_t)vox_mono_us() ^
			        (uint64_t)(uintptr_t)&state;
		state |= 1; /* xorshift never leaves 0 */
	}
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return bound ? (state * 0x2545F4914F6CDD1DULL) % bound : 0;
}

long vox_backoff_ms(long base_ms, long max_ms, int attempt, int full_jitter)
{
	long delay = base_ms > 0 ? base_ms : 1;

	for (int i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (max_ms > 0 && delay > max_ms)
		delay = max_ms;
	if (full_jitter)
		return (long)vox_jitter_random((uint64_t)delay + 1);
	return delay / 2 + (long)vox_jitter_random((uint64_t)(delay / 2) + 1);
}
