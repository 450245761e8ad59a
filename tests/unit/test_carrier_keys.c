/*
 * Tests of the ingress's carrier credential cache (carrier_keys.c): a hit
 * copies the entry out; forgetting one hash, or all, drops it; an answer
 * fetched while a change was notified is not cached (it may predate it);
 * and an evicted or forgotten entry's signing secret is wiped, not just
 * overwritten by the next key's shorter one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../producers/ingress/carrier_keys.h"
#include "vox_time.h"

/* A valid entry for a hash whose slot is picked by head (8 hex digits). */
static carrier_key_t entry(const char *head, const char *secret)
{
	carrier_key_t e;

	memset(&e, 0, sizeof(e));
	snprintf(e.hash, sizeof(e.hash), "%s%056d", head, 7);
	e.valid = true;
	snprintf(e.cred_id, sizeof(e.cred_id), "id-%s", head);
	snprintf(e.carrier, sizeof(e.carrier), "carrier-%s", head);
	snprintf(e.secret, sizeof(e.secret), "%s", secret);
	e.fetched_ms = vox_mono_ms();
	return e;
}

Test(carrier_keys, a_hit_copies_the_entry_and_forget_drops_it)
{
	carrier_keys_t *cache = carrier_keys_new();
	carrier_key_t e = entry("0000000a", "a-long-signing-secret"), out;

	cr_assert_not_null(cache);
	cr_expect_not(carrier_keys_get(cache, e.hash, &out), "empty cache");
	cr_assert(carrier_keys_put(cache, &e, carrier_keys_generation(cache)));
	cr_assert(carrier_keys_get(cache, e.hash, &out));
	cr_expect_str_eq(out.secret, "a-long-signing-secret");
	cr_expect_str_eq(out.carrier, "carrier-0000000a");
	carrier_keys_forget(cache, e.hash);
	cr_expect_not(carrier_keys_get(cache, e.hash, &out), "forgotten");
	cr_assert(carrier_keys_put(cache, &e, carrier_keys_generation(cache)));
	carrier_keys_forget_all(cache);
	cr_expect_not(carrier_keys_get(cache, e.hash, &out), "all forgotten");
	carrier_keys_destroy(cache);
}

Test(carrier_keys, an_answer_older_than_a_notified_change_is_not_cached)
{
	carrier_keys_t *cache = carrier_keys_new();
	carrier_key_t e = entry("0000000b", "secret-b-0123456789"), out;
	unsigned long before = carrier_keys_generation(cache);

	/* fetched, then NOTIFY vox_carriers for it, then the put */
	carrier_keys_forget(cache, e.hash);
	cr_expect_not(carrier_keys_put(cache, &e, before));
	cr_expect_not(carrier_keys_get(cache, e.hash, &out));
	carrier_keys_destroy(cache);
}

Test(carrier_keys, an_evicted_or_expired_secret_is_wiped)
{
	carrier_keys_t *cache = carrier_keys_new();
	/* same slot (1024 slots: heads equal modulo 1024), other hash */
	carrier_key_t a = entry("00000001", "first-secret-that-is-long"),
	              b = entry("00000401", "short-b"), out;
	const char *raw = (const char *)cache;
	/* within the allocation: the slots (and a lock before them) */
	size_t size = 1024 * sizeof(carrier_key_t);

	cr_assert(carrier_keys_put(cache, &a, carrier_keys_generation(cache)));
	cr_assert(carrier_keys_put(cache, &b, carrier_keys_generation(cache)));
	cr_expect_not(carrier_keys_get(cache, a.hash, &out), "evicted");
	cr_assert(carrier_keys_get(cache, b.hash, &out));
	cr_expect_null(memmem(raw, size, "that-is-long", 12),
	               "the evicted secret's tail is still in memory");
	carrier_keys_forget(cache, b.hash);
	cr_expect_null(memmem(raw, size, "short-b", 7),
	               "the forgotten secret is still in memory");
	/* an entry past its time (60 s) is a miss, and wiped */
	b.fetched_ms -= 61000;
	cr_assert(carrier_keys_put(cache, &b, carrier_keys_generation(cache)));
	cr_expect_not(carrier_keys_get(cache, b.hash, &out), "expired");
	cr_expect_null(memmem(raw, size, "short-b", 7),
	               "the expired secret is still in memory");
	carrier_keys_destroy(cache);
}
