/*
 * Pool refill (search.h): a search that finds too few available numbers
 * asks the carrier for more like them and adds them to the local pool
 * (never overwriting). Each server thread has its own carrier client with
 * a short timeout: a search waits for it. For a while after a refill
 * failed, every search answer says X-Cache: stale.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "search.h"
#include "vox_carrier.h"
#include "vox_log.h"
#include "vox_phone.h"
#include "vox_time.h"

/* When a refill last failed (ms, monotonic; 0: the carrier answered since).
 * For a while after, every search answer says X-Cache: stale: the pool
 * cannot be checked against the carrier. */
static atomic_long carrier_failed_ms;
#define CARRIER_STALE_MS 15000

/* Adds what the carrier offers to the local pool (never overwriting). */
static int inventory_add(vox_pg_t *pg, const vox_carrier_number_t *nums, int n,
                         vox_error_t *err)
{
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		char setup[24], monthly[24], features[SEARCH_FEATURES_LEN];
		vox_phone_t p;

		if (vox_phone_parse(nums[i].e164, NULL, &p, NULL) != 0)
			continue; /* the carrier offered something invalid */
		snprintf(setup, sizeof(setup), "%lld", nums[i].upfront_micros);
		snprintf(monthly, sizeof(monthly), "%lld",
		         nums[i].monthly_micros);
		search_features_text(nums[i].features ? nums[i].features : 1,
		                     features);
		const char *params[] = {
		        nums[i].e164,
		        p.region,
		        p.area_code[0] ? p.area_code : NULL,
		        nums[i].city[0] ? nums[i].city : NULL,
		        nums[i].state[0] ? nums[i].state : NULL,
		        strcmp(nums[i].type, "mobile") == 0      ? "mobile"
		        : strcmp(nums[i].type, "toll_free") == 0 ? "toll_free"
		                                                 : "local",
		        features,
		        setup,
		        monthly,
		        nums[i].currency[0] ? nums[i].currency : "USD"};
		rc = vox_pg_execp(
		        pg, "ingress_inventory_add",
		        "INSERT INTO numbers (e164, country, area_code, city, "
		        "region, number_type, features, setup_fee_micros, "
		        "monthly_rate_micros, currency, carrier) VALUES ($1, "
		        "$2, "
		        "$3, $4, $5, $6, $7::text[], $8::bigint, $9::bigint, "
		        "$10, "
		        "'sandbox') ON CONFLICT DO NOTHING",
		        10, params, NULL, err);
	}
	return rc;
}

bool pool_refill_failed_lately(void)
{
	long failed = atomic_load(&carrier_failed_ms);

	return failed != 0 && vox_mono_ms() - failed < CARRIER_STALE_MS;
}

static pthread_key_t carrier_key;
static pthread_once_t carrier_once = PTHREAD_ONCE_INIT;

static void carrier_free(void *c)
{
	vox_carrier_destroy(c);
}

static void carrier_key_make(void)
{
	pthread_key_create(&carrier_key, carrier_free);
}

/* This server thread's carrier client. */
static vox_carrier_t *ingress_carrier(ingress_t *in)
{
	vox_carrier_t *c;

	pthread_once(&carrier_once, carrier_key_make);
	c = pthread_getspecific(carrier_key);
	if (c == NULL) {
		vox_carrier_conf_t conf = {0};
		vox_error_t err;

		conf.base_url = in->cfg->carrier_url;
		conf.api_key = in->cfg->carrier_key;
		conf.timeout_ms =
		        1500; /* a search waits for this, keep short */
		conf.max_attempts = 1;
		c = vox_carrier_new(&conf, &err);
		if (c != NULL)
			pthread_setspecific(carrier_key, c);
	}
	return c;
}

bool pool_refill(ingress_t *in, vox_pg_t *pg, const struct search *q)
{
	vox_carrier_number_t found[100];
	vox_carrier_query_t cq = {0};
	vox_carrier_t *carrier = ingress_carrier(in);
	vox_error_t err;
	int count = 0;

	if (carrier == NULL)
		return false;
	cq.country = q->country;
	cq.area_code = q->area_code;
	cq.contains = q->raw_contains[0] ? q->raw_contains : NULL;
	char starts[40];

	snprintf(starts, sizeof(starts), "+%d%s",
	         vox_phone_country_code(q->country), q->raw_starts);
	cq.starts_with = q->raw_starts[0] ? starts : NULL;
	cq.ends_with = q->raw_ends[0] ? q->raw_ends : NULL;
	cq.city = q->city;
	cq.region = q->region;
	cq.type = q->type;
	cq.features = q->feature_bits;
	cq.limit = 100;
	if (vox_carrier_search(carrier, &cq, found, 100, &count, &err) != 0) {
		vox_log(VOX_LOG_WARN, "carrier search failed", "error",
		        err.message, NULL);
		atomic_store(&carrier_failed_ms, vox_mono_ms());
		return false;
	}
	atomic_store(&carrier_failed_ms, 0);
	if (inventory_add(pg, found, count, &err) != 0)
		vox_log(VOX_LOG_WARN, "inventory refill not stored", "error",
		        err.message, NULL);
	return true;
}
