/*
 * Authentication: "Authorization: Bearer <API key | JWT>".
 *
 * API keys are looked up by their SHA-256 and cached (positive answers 60 s,
 * negative 5 s); the cache follows revocations and account changes through
 * PostgreSQL notifications (listener.c), so a revoked key stops working
 * within milliseconds, not at the next expiry. JWTs are verified locally
 * (vox_jwt_verify) and their account's status comes from the same cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ingress.h"
#include "vox_log.h"
#include "vox_time.h"

#define CACHE_SLOTS           8192
#define CACHE_TTL_MS          60000
#define CACHE_NEGATIVE_TTL_MS 5000
#define TOUCH_EVERY_MS        60000

struct key_entry {
	char hash[65]; /* "" when the slot is empty */
	bool valid;
	int status; /* when not valid: 401 or 403 */
	char reason[64];
	vox_principal_t who;
	long expires_ms; /* key's own expiry, 0: none */
	long fetched_ms, touched_ms;
};

struct key_cache {
	pthread_mutex_t lock;
	struct key_entry slots[CACHE_SLOTS];
};

/* Wall clock: a key's expires_ms comes from the database. */
static long now_ms(void)
{
	return (long)(vox_now_us() / 1000);
}

struct key_cache *key_cache_new(void)
{
	struct key_cache *cache = calloc(1, sizeof(*cache));

	if (cache != NULL)
		pthread_mutex_init(&cache->lock, NULL);
	return cache;
}

void key_cache_destroy(struct key_cache *cache)
{
	if (cache == NULL)
		return;
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

/* The hash is uniformly random: its first hex digits pick the slot. */
static struct key_entry *cache_slot(struct key_cache *cache, const char *hash)
{
	char head[9];

	memcpy(head, hash, 8);
	head[8] = '\0';
	return &cache->slots[strtoul(head, NULL, 16) % CACHE_SLOTS];
}

void key_cache_forget(struct key_cache *cache, const char *hash_hex)
{
	struct key_entry *e;

	if (strlen(hash_hex) != 64)
		return;
	pthread_mutex_lock(&cache->lock);
	e = cache_slot(cache, hash_hex);
	if (strcmp(e->hash, hash_hex) == 0)
		e->hash[0] = '\0';
	pthread_mutex_unlock(&cache->lock);
}

void key_cache_forget_account(struct key_cache *cache, const char *account)
{
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (account == NULL ||
		    strcmp(cache->slots[i].who.account_id, account) == 0)
			cache->slots[i].hash[0] = '\0';
	pthread_mutex_unlock(&cache->lock);
}

/* Copies a fresh entry out; false on a miss. */
static bool cache_get(struct key_cache *cache, const char *hash,
                      struct key_entry *out, bool *touch)
{
	struct key_entry *e;
	long now = now_ms();
	bool hit = false;

	pthread_mutex_lock(&cache->lock);
	e = cache_slot(cache, hash);
	if (strcmp(e->hash, hash) == 0 &&
	    now - e->fetched_ms <
	            (e->valid ? CACHE_TTL_MS : CACHE_NEGATIVE_TTL_MS)) {
		*out = *e;
		hit = true;
		*touch = e->valid && now - e->touched_ms > TOUCH_EVERY_MS;
		if (*touch)
			e->touched_ms = now;
	}
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

static void cache_put(struct key_cache *cache, const struct key_entry *entry)
{
	pthread_mutex_lock(&cache->lock);
	*cache_slot(cache, entry->hash) = *entry;
	pthread_mutex_unlock(&cache->lock);
}

static void entry_refuse(struct key_entry *e, int status, const char *reason)
{
	e->valid = false;
	e->status = status;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

/* One query: the key, its account's status. */
static int key_fetch(ingress_t *in, const char *hash, struct key_entry *e,
                     vox_error_t *err)
{
	const char *params[] = {hash};
	PGresult *res;
	vox_pg_t *pg;
	int rc;

	pg = vox_pg_pool_acquire(in->pg_pool, 2000, err);
	if (pg == NULL)
		return VOX_ERR_UNAVAILABLE;
	rc = vox_pg_execp(
	        pg, "ingress_key_fetch",
	        "SELECT k.id, k.account_id, k.role, k.prefix, "
	        "k.revoked_at IS NOT NULL, "
	        "coalesce(extract(epoch FROM k.expires_at) * 1000, 0)::bigint, "
	        "a.status FROM api_keys k JOIN accounts a ON a.id = "
	        "k.account_id WHERE k.secret_hash = decode($1, 'hex')",
	        1, params, &res, err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc != 0)
		return rc;
	memset(e, 0, sizeof(*e));
	snprintf(e->hash, sizeof(e->hash), "%s", hash);
	e->fetched_ms = e->touched_ms = now_ms();
	if (PQntuples(res) == 0) {
		entry_refuse(e, 401, "unknown API key");
		goto out;
	}
	snprintf(e->who.key_id, sizeof(e->who.key_id), "%s",
	         PQgetvalue(res, 0, 0));
	snprintf(e->who.account_id, sizeof(e->who.account_id), "%s",
	         PQgetvalue(res, 0, 1));
	e->who.role = vox_role_parse(PQgetvalue(res, 0, 2));
	snprintf(e->who.subject, sizeof(e->who.subject), "%s",
	         PQgetvalue(res, 0, 3));
	e->expires_ms = strtol(PQgetvalue(res, 0, 5), NULL, 10);
	if (strcmp(PQgetvalue(res, 0, 4), "t") == 0)
		entry_refuse(e, 401, "API key revoked");
	else if (strcmp(PQgetvalue(res, 0, 6), "active") != 0)
		entry_refuse(e, 403, "account is not active");
	else
		e->valid = true;
out:
	PQclear(res);
	return 0;
}

static void key_touch(ingress_t *in, const char *key_id)
{
	const char *params[] = {key_id};
	vox_error_t err;
	vox_pg_t *pg = vox_pg_pool_acquire(in->pg_pool, 100, &err);

	if (pg == NULL)
		return; /* only bookkeeping: never delay a request for it */
	vox_pg_execp(pg, "ingress_key_touch",
	             "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
	             1, params, NULL, &err);
	vox_pg_pool_release(in->pg_pool, pg);
}

static int auth_key(ingress_t *in, const char *key, vox_principal_t *who,
                    const char **code, char *message, size_t msglen)
{
	struct key_entry e;
	char hash[65];
	bool touch = false;
	vox_error_t err;

	if (!vox_apikey_well_formed(key)) {
		*code = "invalid_credentials";
		snprintf(message, msglen, "malformed API key");
		return 401;
	}
	vox_apikey_hash_hex(key, hash);
	if (!cache_get(in->keys, hash, &e, &touch)) {
		if (key_fetch(in, hash, &e, &err) != 0) {
			*code = "database_unavailable";
			snprintf(message, msglen,
			         "cannot check credentials: %s", err.message);
			return 503;
		}
		cache_put(in->keys, &e);
		touch = e.valid; /* first use since the cache last saw it */
	}
	if (e.valid && e.expires_ms != 0 && now_ms() >= e.expires_ms)
		entry_refuse(&e, 401, "API key expired");
	if (!e.valid) {
		*code = e.status == 403 ? "account_inactive"
		                        : "invalid_credentials";
		snprintf(message, msglen, "%s", e.reason);
		return e.status;
	}
	if (touch)
		key_touch(in, e.who.key_id);
	*who = e.who;
	return 0;
}

/* JWTs name their account; it must exist and be active. The account's
 * status is cached in the same table under a pseudo-hash. */
static int auth_account_active(ingress_t *in, const char *account,
                               vox_error_t *err)
{
	char slot_key[65];
	struct key_entry e;
	const char *params[] = {account};
	bool touch;
	PGresult *res;
	vox_pg_t *pg;
	int rc;

	snprintf(slot_key, sizeof(slot_key), "%.8sacct%-52s", account + 24,
	         account);
	if (cache_get(in->keys, slot_key, &e, &touch))
		return e.valid ? 0 : VOX_ERR_NOT_FOUND;
	pg = vox_pg_pool_acquire(in->pg_pool, 2000, err);
	if (pg == NULL)
		return VOX_ERR_UNAVAILABLE;
	rc = vox_pg_execp(pg, "ingress_account_status",
	                  "SELECT status FROM accounts WHERE id = $1", 1,
	                  params, &res, err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc != 0)
		return rc;
	memset(&e, 0, sizeof(e));
	snprintf(e.hash, sizeof(e.hash), "%s", slot_key);
	snprintf(e.who.account_id, sizeof(e.who.account_id), "%s", account);
	e.fetched_ms = now_ms();
	e.valid = PQntuples(res) == 1 &&
	          strcmp(PQgetvalue(res, 0, 0), "active") == 0;
	PQclear(res);
	cache_put(in->keys, &e);
	return e.valid ? 0 : VOX_ERR_NOT_FOUND;
}

static int auth_jwt(ingress_t *in, const char *token, vox_principal_t *who,
                    const char **code, char *message, size_t msglen)
{
	vox_error_t err;
	int rc;

	*code = "invalid_credentials";
	if (!in->jwt_enabled) {
		snprintf(message, msglen,
		         "not an API key, and JWTs are not configured");
		return 401;
	}
	if (vox_jwt_verify(&in->jwt, token, (time_t)(vox_now_us() / 1000000),
	                   who, &err) != 0) {
		snprintf(message, msglen, "%s", err.message);
		return 401;
	}
	rc = auth_account_active(in, who->account_id, &err);
	if (rc == VOX_ERR_NOT_FOUND) {
		*code = "account_inactive";
		snprintf(message, msglen, "the token's account is not active");
		return 403;
	}
	if (rc != 0) {
		*code = "database_unavailable";
		snprintf(message, msglen, "cannot check credentials: %s",
		         err.message);
		return 503;
	}
	return 0;
}

int auth_authenticate(ingress_t *in, const char *authorization,
                      vox_principal_t *who, const char **code, char *message,
                      size_t msglen)
{
	const char *token;

	if (authorization == NULL || *authorization == '\0') {
		*code = "missing_credentials";
		snprintf(message, msglen,
		         "send Authorization: Bearer <API key or JWT>");
		return 401;
	}
	if (strncasecmp(authorization, "Bearer ", 7) != 0) {
		*code = "invalid_credentials";
		snprintf(message, msglen,
		         "the Authorization scheme must be Bearer");
		return 401;
	}
	token = authorization + 7;
	while (*token == ' ')
		token++;
	if (strncmp(token, "vox_", 4) == 0)
		return auth_key(in, token, who, code, message, msglen);
	return auth_jwt(in, token, who, code, message, msglen);
}
