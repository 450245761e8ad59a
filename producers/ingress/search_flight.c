/*
 * Single flight for searches (search.h): when a search is not cached (or
 * due for a refresh), one thread of this process asks PostgreSQL (and the
 * carrier) for it; the others that miss meanwhile wait for its answer
 * instead of all running the same search (bench/numbers: an expiry turned
 * into a burst of misses that backed up the HTTP threads for seconds).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search.h"
#include "vox_time.h"

struct search_flight {
	char key[96];
	pthread_cond_t done_cond;
	int waiters;
	bool done;
	char *body; /* the leader's answer, NULL if it had none */
	char label[24];
	struct search_flight *next;
};

static pthread_mutex_t flights_lock = PTHREAD_MUTEX_INITIALIZER;
static struct search_flight *flights; /* those under way */

/* those under way */

static void flight_free(struct search_flight *f)
{
	pthread_cond_destroy(&f->done_cond);
	free(f->body);
	free(f);
}

static struct search_flight *flight_new(const char *key)
{
	struct search_flight *f = calloc(1, sizeof(*f));
	pthread_condattr_t attr;

	if (f == NULL)
		return NULL;
	snprintf(f->key, sizeof(f->key), "%s", key);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f->done_cond, &attr);
	pthread_condattr_destroy(&attr);
	f->next = flights;
	flights = f;
	return f;
}

/* Waits (flights_lock held) up to wait_ms for f's answer: a copy, or NULL
 * if it had none or took longer. */
static char *flight_wait(struct search_flight *f, int wait_ms, char *label,
                         size_t label_len)
{
	/* done_cond waits on CLOCK_MONOTONIC, vox_mono_us's clock. */
	int64_t deadline_us = vox_mono_us() + (int64_t)wait_ms * 1000;
	struct timespec until = {(time_t)(deadline_us / 1000000),
	                         (long)(deadline_us % 1000000) * 1000};
	char *body = NULL;

	f->waiters++;
	while (!f->done && pthread_cond_timedwait(&f->done_cond, &flights_lock,
	                                          &until) == 0)
		;
	if (f->done && f->body != NULL) {
		body = strdup(f->body);
		snprintf(label, label_len, "%s", f->label);
	}
	if (--f->waiters == 0 && f->done)
		flight_free(f); /* the leader left it to the last waiter */
	return body;
}

struct search_flight *search_flight_begin(const char *key, int wait_ms,
                                          char **shared, char *label,
                                          size_t label_len)
{
	struct search_flight *f;

	*shared = NULL;
	pthread_mutex_lock(&flights_lock);
	for (f = flights; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			break;
	if (f == NULL)
		f = flight_new(key); /* NULL if out of memory: on its own */
	else if (wait_ms > 0) {
		*shared = flight_wait(f, wait_ms, label, label_len);
		f = NULL;
	} else
		f = NULL;
	pthread_mutex_unlock(&flights_lock);
	return f;
}

void search_flight_end(struct search_flight *f, const char *body,
                       const char *label)
{
	struct search_flight **at;

	if (f == NULL)
		return;
	pthread_mutex_lock(&flights_lock);
	for (at = &flights; *at != NULL; at = &(*at)->next)
		if (*at == f) {
			*at = f->next;
			break;
		}
	f->done = true;
	f->body = body ? strdup(body) : NULL;
	snprintf(f->label, sizeof(f->label), "%s", label);
	pthread_cond_broadcast(&f->done_cond);
	if (f->waiters == 0)
		flight_free(f);
	pthread_mutex_unlock(&flights_lock);
}
