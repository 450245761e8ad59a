/*
 * Carrier credentials by the SHA-256 of their "voxc_" key, cached in the
 * ingress so an authenticated carrier request (carrier_auth.c) needs no
 * database round trip. Kept like the API-key cache (auth.c): direct-mapped
 * on the hash, positive answers 60 s, negative (unknown, revoked) 5 s, and
 * dropped when the credential changes (NOTIFY vox_carriers, migration 0024,
 * heard by listener.c; everything is dropped after the listener
 * reconnects). A cached entry holds the opened signing secret: it is wiped
 * (OPENSSL_cleanse) whenever the entry leaves the cache, and callers wipe
 * their copy. Filled by carrier_auth.c, which reads the credential.
 */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "carrier_keys.h"
#include "vox_time.h"

#define CARRIER_SLOTS           1024
#define CARRIER_TTL_MS          60000
#define CARRIER_NEGATIVE_TTL_MS 5000

struct carrier_keys {
	pthread_mutex_t lock;
	/* Counts forgets: an answer fetched while a change was notified is
	 * not cached (it may predate the change). */
	unsigned long generation;
	carrier_key_t slots[CARRIER_SLOTS];
};

carrier_keys_t *carrier_keys_new(void)
{
	carrier_keys_t *cache = calloc(1, sizeof(*cache));

	if (cache != NULL)
		pthread_mutex_init(&cache->lock, NULL);
	return cache;
}

void carrier_keys_destroy(carrier_keys_t *cache)
{
	if (cache == NULL)
		return;
	OPENSSL_cleanse(cache->slots, sizeof(cache->slots));
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

/* The hash is uniformly random: its first hex digits pick the slot. */
static carrier_key_t *slot_of(carrier_keys_t *cache, const char *hash)
{
	char head[9];

	memcpy(head, hash, 8);
	head[8] = '\0';
	return &cache->slots[strtoul(head, NULL, 16) % CARRIER_SLOTS];
}

void carrier_keys_forget(carrier_keys_t *cache, const char *hash_hex)
{
	carrier_key_t *e;

	if (hash_hex == NULL || strlen(hash_hex) != 64)
		return;
	pthread_mutex_lock(&cache->lock);
	e = slot_of(cache, hash_hex);
	if (strcmp(e->hash, hash_hex) == 0)
		OPENSSL_cleanse(e, sizeof(*e));
	cache->generation++;
	pthread_mutex_unlock(&cache->lock);
}

void carrier_keys_forget_all(carrier_keys_t *cache)
{
	pthread_mutex_lock(&cache->lock);
	OPENSSL_cleanse(cache->slots, sizeof(cache->slots));
	cache->generation++;
	pthread_mutex_unlock(&cache->lock);
}

unsigned long carrier_keys_generation(carrier_keys_t *cache)
{
	unsigned long g;

	pthread_mutex_lock(&cache->lock);
	g = cache->generation;
	pthread_mutex_unlock(&cache->lock);
	return g;
}

bool carrier_keys_get(carrier_keys_t *cache, const char *hash,
                      carrier_key_t *out)
{
	long now = vox_mono_ms();
	carrier_key_t *e;
	bool hit = false;

	pthread_mutex_lock(&cache->lock);
	e = slot_of(cache, hash);
	if (strcmp(e->hash, hash) == 0) {
		if (now - e->fetched_ms <
		    (e->valid ? CARRIER_TTL_MS : CARRIER_NEGATIVE_TTL_MS)) {
			*out = *e;
			hit = true;
		} else {
			OPENSSL_cleanse(e, sizeof(*e)); /* expired */
		}
	}
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

bool carrier_keys_put(carrier_keys_t *cache, const carrier_key_t *entry,
                      unsigned long generation)
{
	carrier_key_t *e;
	bool stored = false;

	pthread_mutex_lock(&cache->lock);
	if (cache->generation == generation) {
		e = slot_of(cache, entry->hash);
		OPENSSL_cleanse(e, sizeof(*e)); /* the evicted one's secret */
		*e = *entry;
		stored = true;
	}
	pthread_mutex_unlock(&cache->lock);
	return stored;
}
