/* vox_fault: the test-only crash hook (vox_fault.h). Without
 * VOX_FAULT_HOOKS this file compiles to two empty functions, and no
 * release binary holds the variable's name or the abort. */
#include "vox_fault.h"

#ifdef VOX_FAULT_HOOKS
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static const char *fault_needle, *fault_points;
static size_t fault_len;

static void fault_load(void)
{
	fault_needle = getenv("VOX_FAULT_ABORT_ON");
	fault_len = fault_needle != NULL ? strlen(fault_needle) : 0;
	fault_points = getenv("VOX_FAULT_POINT");
}

void vox_fault_point(const char *name)
{
	size_t len = strlen(name);
	const char *p;

	pthread_once(&fault_once, fault_load);
	for (p = fault_points; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n == len && memcmp(p, name, len) == 0)
			abort();
		p = end != NULL ? end + 1 : NULL;
	}
}

void vox_fault_check_message(const char *payload, size_t len)
{
	pthread_once(&fault_once, fault_load);
	if (fault_len > 0 && payload != NULL &&
	    memmem(payload, len, fault_needle, fault_len) != NULL)
		abort();
}

void vox_fault_check_batch(const vox_batch_msg_t *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vox_fault_check_message(msgs[i].payload, msgs[i].len);
}
#else
void vox_fault_point(const char *name)
{
	(void)name;
}

void vox_fault_check_message(const char *payload, size_t len)
{
	(void)payload;
	(void)len;
}

void vox_fault_check_batch(const vox_batch_msg_t *msgs, size_t n)
{
	(void)msgs;
	(void)n;
}
#endif
