/*
 * Tests of vox_carrier without a server: money parsing, the search URL,
 * answers parsed from the samples in tests/data/carrier/ (run from the
 * repository root), HTTP error mapping, and argument checks that must fail
 * before any request. The retry loop and the breaker are tested in
 * tests/unit/test_upstream.c and, through the adapter, against a fake
 * carrier in tests/integration/test_carrier.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier.h"

#define DATA_DIR "tests/data/carrier/"
/* nothing listens there: a request would fail as unreachable */
#define DEAD_URL "http://127.0.0.1:1"

static char *read_sample(const char *name, size_t *len)
{
	char path[256];
	char *buf;
	FILE *file;
	long size;

	snprintf(path, sizeof(path), DATA_DIR "%s", name);
	file = fopen(path, "rb");
	cr_assert_not_null(file, "cannot open %s (run from the repo root)",
	                   path);
	cr_assert_eq(fseek(file, 0, SEEK_END), 0);
	size = ftell(file);
	cr_assert_geq(size, 0);
	rewind(file);
	buf = malloc((size_t)size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)size, file), (size_t)size);
	buf[size] = '\0';
	fclose(file);
	*len = (size_t)size;
	return buf;
}

static vox_carrier_t *carrier(const char *url)
{
	vox_carrier_conf_t conf = {.base_url = url, .api_key = "test-key"};
	vox_error_t err;
	vox_carrier_t *c = vox_carrier_new(&conf, &err);

	cr_assert_not_null(c, "%s", err.message);
	return c;
}

/* ---- money ---- */

Test(carrier_money, exact_decimals)
{
	static const struct {
		const char *text;
		long long micros;
	} cases[] = {
	        {"1.00", 1000000},
	        {"0", 0},
	        {"12", 12000000},
	        {"0.5", 500000},
	        {"0.000001", 1},
	        {"1.50", 1500000},
	        {"1.0000000", 1000000}, /* zeros beyond micros are exact */
	        {"0.1234560000", 123456},
	        {"-0.25", -250000},
	        {"-0", 0},
	        {"007.10", 7100000},
	        {"9223372036853.999999", 9223372036853999999LL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long micros = -42;

		cr_expect_eq(vox_carrier_money_parse(cases[i].text, &micros), 0,
		             "\"%s\" refused", cases[i].text);
		cr_expect_eq(micros, cases[i].micros, "\"%s\": %lld",
		             cases[i].text, micros);
	}
}

Test(carrier_money, refused)
{
	static const char *const bad[] = {
	        "",
	        "-",
	        ".",
	        ".5",
	        "1.",
	        "+1.00",
	        " 1.00",
	        "1.00 ",
	        "1,00",
	        "1.2.3",
	        "1e3",
	        "0x10",
	        "1.0000001",
	        "abc",
	        "--1",
	        "1.00USD",
	        "$1.00",
	        "NaN",
	        "inf",
	        "1 000",
	        "9223372036854",
	        "99999999999999999999",
	        "9223372036854775807",
	};
	long long micros = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(vox_carrier_money_parse(bad[i], &micros),
		             VOX_ERR_INVALID, "\"%s\" accepted: %lld", bad[i],
		             micros);
	cr_assert_eq(vox_carrier_money_parse(NULL, &micros), VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_money_parse("1", NULL), VOX_ERR_INVALID);
}

/* ---- the search URL ---- */

static void expect_url(vox_carrier_t *c, const vox_carrier_query_t *q, int max,
                       const char *want)
{
	vox_error_t err;
	char *url = vox_carrier_search_url(c, q, max, &err);

	cr_assert_not_null(url, "%s", err.message);
	cr_expect_str_eq(url, want);
	free(url);
}

Test(carrier_url, every_filter)
{
	vox_carrier_t *c = carrier("http://carrier.test:27080/");
	vox_carrier_query_t q = {
	        .country = "US",
	        .area_code = "415",
	        .contains = "555",
	        .starts_with = "+1415",
	        .ends_with = "0123",
	        .city = "San Francisco",
	        .region = "CA",
	        .type = "local",
	        .features = VOX_CARRIER_SMS | VOX_CARRIER_VOICE,
	        .limit = 20,
	};

	expect_url(c, &q, 50,
	           "http://carrier.test:27080/v2/available_phone_numbers"
	           "?filter[country_code]=US"
	           "&filter[national_destination_code]=415"
	           "&filter[phone_number][contains]=555"
	           "&filter[phone_number][starts_with]=%2B1415"
	           "&filter[phone_number][ends_with]=0123"
	           "&filter[locality]=San%20Francisco"
	           "&filter[administrative_area]=CA"
	           "&filter[phone_number_type]=local"
	           "&filter[features][]=voice&filter[features][]=sms"
	           "&filter[limit]=20");
	vox_carrier_destroy(c);
}

Test(carrier_url, empty_query_and_limits)
{
	vox_carrier_t *c = carrier("https://carrier.test");
	vox_carrier_query_t q = {.country = "", .city = NULL};

	expect_url(c, &q, 50,
	           "https://carrier.test/v2/available_phone_numbers"
	           "?filter[limit]=50");
	q.limit = 500; /* never more than the caller has room for */
	expect_url(c, &q, 50,
	           "https://carrier.test/v2/available_phone_numbers"
	           "?filter[limit]=50");
	q.limit = 0; /* never more than the carrier's page */
	expect_url(c, &q, 1000,
	           "https://carrier.test/v2/available_phone_numbers"
	           "?filter[limit]=250");
	q.limit = 7;
	q.features = VOX_CARRIER_MMS;
	expect_url(c, &q, 50,
	           "https://carrier.test/v2/available_phone_numbers"
	           "?filter[features][]=mms&filter[limit]=7");
	vox_carrier_destroy(c);
}

Test(carrier_url, values_escaped)
{
	vox_carrier_t *c = carrier("http://h");
	vox_carrier_query_t q = {
	        .city = "St. John's&filter[limit]=9999#x",
	        .region = "Île-de-France",
	        .contains = "a b/c?d",
	};

	expect_url(c, &q, 10,
	           "http://h/v2/available_phone_numbers"
	           "?filter[phone_number][contains]=a%20b%2Fc%3Fd"
	           "&filter[locality]=St.%20John%27s%26filter%5Blimit%5D%"
	           "3D9999%23x"
	           "&filter[administrative_area]=%C3%8Ele-de-France"
	           "&filter[limit]=10");
	vox_carrier_destroy(c);
}

static void url_refused(const vox_carrier_query_t *q, const char *needle)
{
	vox_carrier_t *c = carrier("http://h");
	vox_error_t err;

	cr_assert_null(vox_carrier_search_url(c, q, 10, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_not_null(strstr(err.message, needle), "%s", err.message);
	vox_carrier_destroy(c);
}

Test(carrier_url, bad_queries)
{
	char long_city[80];
	vox_carrier_query_t q = {.type = "landline"};

	url_refused(&q, "not local, mobile or toll_free");
	q = (vox_carrier_query_t){.limit = -1};
	url_refused(&q, "limit -1");
	q = (vox_carrier_query_t){.features = 1u << 5};
	url_refused(&q, "unknown features");
	memset(long_city, 'a', sizeof(long_city) - 1);
	long_city[sizeof(long_city) - 1] = '\0';
	q = (vox_carrier_query_t){.city = long_city};
	url_refused(&q, "longer than 64 bytes");
}

/* ---- answers ---- */

Test(carrier_answers, search_ok)
{
	vox_carrier_number_t numbers[5];
	vox_error_t err;
	size_t len;
	char *body = read_sample("search_ok.json", &len);
	int count = -1;

	cr_assert_eq(
	        vox_carrier_parse_search(body, len, numbers, 5, &count, &err),
	        0, "%s", err.message);
	cr_assert_eq(count, 3);
	cr_expect_str_eq(numbers[0].e164, "+14155550123");
	cr_expect_str_eq(numbers[0].type, "local");
	cr_expect_str_eq(numbers[0].region, "US");
	cr_expect_str_eq(numbers[0].city, "San Francisco");
	cr_expect_str_eq(numbers[0].state, "CA");
	cr_expect_eq(numbers[0].features, VOX_CARRIER_VOICE | VOX_CARRIER_SMS);
	cr_expect_eq(numbers[0].upfront_micros, 1000000);
	cr_expect_eq(numbers[0].monthly_micros, 1500000);
	cr_expect_str_eq(numbers[0].currency, "USD");

	cr_expect_str_eq(numbers[1].e164, "+18005550199");
	cr_expect_str_eq(numbers[1].type, "toll_free");
	cr_expect_str_eq(numbers[1].city, "");
	cr_expect_str_eq(numbers[1].state, "");
	cr_expect_eq(numbers[1].features,
	             VOX_CARRIER_VOICE | VOX_CARRIER_SMS | VOX_CARRIER_MMS);
	cr_expect_eq(numbers[1].upfront_micros, 0);
	cr_expect_eq(numbers[1].monthly_micros, 2000000);

	cr_expect_str_eq(numbers[2].region, "GB");
	cr_expect_str_eq(numbers[2].city, "London");
	cr_expect_str_eq(numbers[2].state, "London"); /* region_type region */
	cr_expect_eq(numbers[2].features, VOX_CARRIER_VOICE);
	cr_expect_eq(numbers[2].monthly_micros, 125000);
	cr_expect_str_eq(numbers[2].currency, "GBP");

	/* no more than max */
	cr_assert_eq(
	        vox_carrier_parse_search(body, len, numbers, 2, &count, &err),
	        0);
	cr_assert_eq(count, 2);
	free(body);
}

Test(carrier_answers, search_skips_malformed_items)
{
	vox_carrier_number_t numbers[10];
	vox_error_t err;
	size_t len;
	char *body = read_sample("search_bad_items.json", &len);
	int count = -1;

	cr_assert_eq(
	        vox_carrier_parse_search(body, len, numbers, 10, &count, &err),
	        0, "%s", err.message);
	cr_assert_eq(count, 1);
	cr_assert_str_eq(numbers[0].e164, "+14155550106");
	free(body);
}

Test(carrier_answers, search_empty_and_unreadable)
{
	static const char *const unreadable[] = {
	        "search_no_data.json", "proxy_error.html", "order_mixed.json"};
	vox_carrier_number_t numbers[2];
	vox_error_t err;
	size_t len;
	char *body = read_sample("search_empty.json", &len);
	int count = -1;

	cr_assert_eq(
	        vox_carrier_parse_search(body, len, numbers, 2, &count, &err),
	        0);
	cr_assert_eq(count, 0);
	free(body);
	for (size_t i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]);
	     i++) {
		body = read_sample(unreadable[i], &len);
		count = -1;
		cr_expect_eq(vox_carrier_parse_search(body, len, numbers, 2,
		                                      &count, &err),
		             VOX_ERR_UNAVAILABLE, "%s", unreadable[i]);
		cr_expect(err.retriable);
		cr_expect_not_null(strstr(err.message, "unreadable"), "%s",
		                   err.message);
		cr_expect_eq(count, 0);
		free(body);
	}
	cr_assert_eq(
	        vox_carrier_parse_search(NULL, 0, numbers, 2, &count, &err),
	        VOX_ERR_UNAVAILABLE);
}

Test(carrier_answers, order_mixed)
{
	const char *const asked[] = {"+14155550123", "+14155550124"};
	vox_carrier_order_result_t results[2];
	vox_error_t err;
	size_t len;
	char *body = read_sample("order_mixed.json", &len);

	cr_assert_eq(
	        vox_carrier_parse_order(body, len, asked, 2, results, &err), 0,
	        "%s", err.message);
	cr_expect_str_eq(results[0].e164, "+14155550123");
	cr_expect(results[0].ok);
	cr_expect_str_eq(results[0].carrier_id, "1293384261075731499");
	cr_expect_str_eq(results[0].error, "");
	cr_expect_str_eq(results[1].e164, "+14155550124");
	cr_expect_not(results[1].ok);
	cr_expect_str_eq(results[1].carrier_id, "");
	cr_expect_str_eq(results[1].error,
	                 "+14155550124 is no longer available, code 10007");
	free(body);
}

Test(carrier_answers, order_partial)
{
	const char *const asked[] = {"+14155550126", "+14155550125",
	                             "+14155550127"};
	vox_carrier_order_result_t results[3];
	vox_error_t err;
	size_t len;
	char *body = read_sample("order_partial.json", &len);

	cr_assert_eq(
	        vox_carrier_parse_order(body, len, asked, 3, results, &err), 0,
	        "%s", err.message);
	cr_expect_not(results[0].ok);
	cr_expect_str_eq(results[0].error, "carrier status pending");
	cr_expect(results[1].ok);
	cr_expect_str_eq(results[1].carrier_id, "1293384261075731501");
	cr_expect_not(results[2].ok);
	cr_expect_str_eq(results[2].error, "not in the carrier's answer");
	free(body);
}

Test(carrier_answers, order_unreadable)
{
	const char *const asked[] = {"+14155550123"};
	vox_carrier_order_result_t results[1];
	vox_error_t err;
	size_t len;
	char *body = read_sample("search_ok.json", &len);

	cr_assert_eq(
	        vox_carrier_parse_order(body, len, asked, 1, results, &err),
	        VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_not(results[0].ok);
	cr_assert_str_eq(results[0].e164, "+14155550123");
	free(body);
}

/* ---- errors ---- */

static vox_error_t http_error(long status, const char *sample)
{
	vox_error_t err;
	size_t len = 0;
	char *body = sample ? read_sample(sample, &len) : NULL;

	vox_error_clear(&err);
	cr_assert_eq(vox_carrier_http_error(status, body, len, &err),
	             (int)err.code);
	free(body);
	return err;
}

Test(carrier_errors, mapping)
{
	vox_error_t err;

	err = http_error(422, "error_422.json");
	cr_expect_eq(err.code, VOX_ERR_INVALID);
	cr_expect_not(err.retriable);
	cr_expect_str_eq(err.message,
	                 "refused the request (HTTP 422): forwards_to must "
	                 "be an E.164 number, code 10015");
	err = http_error(400, NULL);
	cr_expect_eq(err.code, VOX_ERR_INVALID);
	cr_expect_str_eq(err.message, "refused the request (HTTP 400)");
	err = http_error(418, "proxy_error.html");
	cr_expect_eq(err.code, VOX_ERR_INVALID);
	cr_expect_not(err.retriable);
	err = http_error(404, "error_404.json");
	cr_expect_eq(err.code, VOX_ERR_NOT_FOUND);
	cr_expect_not(err.retriable);
	cr_expect_not_null(strstr(err.message, "Phone number 42 not found"));
	err = http_error(409, "error_title_only.json");
	cr_expect_eq(err.code, VOX_ERR_CONFLICT);
	cr_expect_str_eq(err.message, "conflict (HTTP 409): Conflict");
	err = http_error(401, NULL);
	cr_expect_eq(err.code, VOX_ERR_INTERNAL);
	cr_expect(err.fatal);
	cr_expect_not(err.retriable);
	err = http_error(403, NULL);
	cr_expect(err.fatal);
	err = http_error(429, NULL);
	cr_expect_eq(err.code, VOX_ERR_LIMIT);
	cr_expect(err.retriable);
	err = http_error(408, NULL);
	cr_expect_eq(err.code, VOX_ERR_UNAVAILABLE);
	cr_expect(err.retriable);
	err = http_error(500, "error_404.json");
	cr_expect_eq(err.code, VOX_ERR_UNAVAILABLE);
	cr_expect(err.retriable);
	err = http_error(502, "proxy_error.html");
	cr_expect_eq(err.code, VOX_ERR_UNAVAILABLE);
	cr_expect_str_eq(err.message, "failed (HTTP 502)");
	err = http_error(503, NULL);
	cr_expect(err.retriable);
	err = http_error(301, NULL);
	cr_expect_eq(err.code, VOX_ERR_INTERNAL);
	cr_expect_not(err.retriable);
}

/* ---- configuration and arguments ---- */

static void conf_refused(vox_carrier_conf_t conf, const char *needle)
{
	vox_error_t err;

	cr_assert_null(vox_carrier_new(&conf, &err), "accepted (%s)", needle);
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, needle), "%s", err.message);
}

Test(carrier_conf, checked)
{
	vox_carrier_conf_t good = {.base_url = "http://h", .api_key = "k"};
	vox_carrier_conf_t conf;
	vox_error_t err;

	cr_assert_null(vox_carrier_new(NULL, &err));
	conf = good;
	conf.base_url = NULL;
	conf_refused(conf, "base URL");
	conf.base_url = "ftp://h";
	conf_refused(conf, "base URL");
	conf.base_url = "http://";
	conf_refused(conf, "base URL");
	conf.base_url = "http://h\r\nX: y";
	conf_refused(conf, "base URL");
	conf = good;
	conf.api_key = "";
	conf_refused(conf, "API key");
	conf.api_key = "k\nX-Injected: 1";
	conf_refused(conf, "API key");
	conf = good;
	conf.max_attempts = 11;
	conf_refused(conf, "max_attempts 11");
	conf = good;
	conf.timeout_ms = -1;
	conf_refused(conf, "timeout_ms -1");
	conf = good;
	conf.breaker_failures = -3;
	conf_refused(conf, "breaker_failures");
}

Test(carrier_args, refused_before_any_request)
{
	vox_carrier_t *c = carrier(DEAD_URL);
	const char *const good[] = {"+14155550123"};
	const char *const bad[] = {"4155550123"};
	vox_carrier_order_result_t results[2];
	vox_carrier_number_t numbers[1];
	vox_carrier_query_t q = {.type = "pager"};
	vox_error_t err;
	int count = 7;

	cr_assert_eq(vox_carrier_order(c, good, 1, NULL, results, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "idempotency key"));
	cr_assert_eq(vox_carrier_order(c, good, 1, "", results, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_order(c, good, 1, "k\r\n", results, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_order(c, bad, 1, "k", results, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "not E.164"));
	cr_assert_eq(vox_carrier_order(c, good, 0, "k", results, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_order(c, good, VOX_CARRIER_ORDER_MAX + 1, "k",
	                               results, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_configure(c, NULL, true, NULL, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_configure(c, "", true, NULL, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_configure(c, "42", true, "", &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_release(c, "a\nb", &err), VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_search(c, &q, numbers, 1, &count, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(count, 0);
	cr_assert_eq(vox_carrier_search(c, &q, numbers, 0, &count, &err),
	             VOX_ERR_INVALID);
	/* none of these reached the breaker */
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_CLOSED);
	vox_carrier_destroy(c);
}
