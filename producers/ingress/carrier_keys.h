/*
 * carrier_keys.c: carrier credentials by key hash, cached in the ingress
 * and dropped on NOTIFY vox_carriers (docs/CARRIER_CDRS.md); carrier_auth.c
 * reads them from the database on a miss.
 */
#ifndef CARRIER_KEYS_H
#define CARRIER_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "ingress.h"
#include "vox_carrier_secret.h"
#include "vox_cdr.h"

/* One credential as the cache holds it. secret is a secret: wipe every
 * copy (OPENSSL_cleanse) once used. */
typedef struct carrier_key {
	char hash[65]; /* hex SHA-256 of the key; "" when the slot is empty */
	bool valid;    /* false: refused for reason */
	char reason[48];
	char cred_id[40];
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	char secret[VOX_CARRIER_SECRET_MAX + 1];
	int64_t fetched_ms; /* monotonic */
} carrier_key_t;

typedef struct carrier_keys carrier_keys_t;

carrier_keys_t *carrier_keys_new(void);
/* Wipes every cached secret. */
void carrier_keys_destroy(carrier_keys_t *cache);

/* Drops (and wipes) the entry of hash_hex / every entry. */
void carrier_keys_forget(carrier_keys_t *cache, const char *hash_hex);
void carrier_keys_forget_all(carrier_keys_t *cache);

/* get copies a fresh entry out (false on a miss). put stores entry
 * unless something was forgotten since generation was read (the entry may
 * predate that change): false then. */
bool carrier_keys_get(carrier_keys_t *cache, const char *hash_hex,
                      carrier_key_t *out);
unsigned long carrier_keys_generation(carrier_keys_t *cache);
bool carrier_keys_put(carrier_keys_t *cache, const carrier_key_t *entry,
                      unsigned long generation);

#endif
