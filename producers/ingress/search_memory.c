/*
 * Search answers kept in this process's memory for SEARCH_MEMORY_MS
 * (search.h). A popular search is asked thousands of times a second; for
 * that long each answer is served without the Redis GET and the
 * availability recheck in PostgreSQL (bench/numbers: ~160 of the ~360 us
 * of CPU of a cached hit, and two of its three blocking round trips). The
 * price: a number held or sold in the last SEARCH_MEMORY_MS may still be
 * offered; its reservation then reports it taken (docs/NUMBERS.md), as
 * with any answer a client keeps for a second.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"
#include "vox_time.h"

/* Direct-mapped: a newer search in a slot replaces the older one. */
#define MEMORY_SLOTS 1024

struct memory_slot {
	char key[96];
	char *body;
	int64_t made_us; /* monotonic */
};

static pthread_mutex_t memory_lock = PTHREAD_MUTEX_INITIALIZER;
static struct memory_slot memory[MEMORY_SLOTS];

static struct memory_slot *memory_slot(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a: the key is a hash already */

	for (const char *c = key; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	return &memory[h % MEMORY_SLOTS];
}

char *search_memory_get(const char *key)
{
	struct memory_slot *slot = memory_slot(key);
	int64_t now = vox_mono_us();
	char *body = NULL;

	pthread_mutex_lock(&memory_lock);
	if (slot->body != NULL && strcmp(slot->key, key) == 0 &&
	    now - slot->made_us < (int64_t)SEARCH_MEMORY_MS * 1000)
		body = strdup(slot->body); /* NULL if out of memory: a miss */
	pthread_mutex_unlock(&memory_lock);
	return body;
}

void search_memory_put(const char *key, const char *body)
{
	struct memory_slot *slot = memory_slot(key);
	char *copy = strdup(body), *old;

	if (copy == NULL)
		return;
	pthread_mutex_lock(&memory_lock);
	old = slot->body;
	slot->body = copy;
	slot->made_us = vox_mono_us();
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	pthread_mutex_unlock(&memory_lock);
	free(old);
}
