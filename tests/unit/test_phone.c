/*
 * Tests of vox_phone: valid and invalid numbers of several countries,
 * formatting tolerance, national numbers with a default region, the
 * fields filled (area code, type, city), hostile input, and parsing from
 * several threads at once.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vox_phone.h"

static vox_phone_t parse_ok(const char *text, const char *region)
{
	vox_phone_t phone;
	vox_error_t err;
	int rc;

	vox_error_clear(&err);
	rc = vox_phone_parse(text, region, &phone, &err);
	cr_assert_eq(rc, 0, "\"%s\" (%s): %s", text, region ? region : "-",
	             err.message);
	return phone;
}

/* Parses expecting failure; the message must contain needle. */
static void parse_bad(const char *text, const char *region, const char *needle)
{
	vox_phone_t phone;
	vox_error_t err;
	int rc;

	memset(&phone, 0x55, sizeof(phone));
	vox_error_clear(&err);
	rc = vox_phone_parse(text, region, &phone, &err);
	cr_assert_eq(rc, VOX_ERR_INVALID, "\"%s\" (%s) parsed as %s",
	             text ? text : "NULL", region ? region : "-", phone.e164);
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_not_null(strstr(err.message, needle),
	                   "\"%s\": message \"%s\" lacks \"%s\"",
	                   text ? text : "NULL", err.message, needle);
	cr_assert_eq(phone.e164[0], '\0', "out is zeroed on failure");
	cr_assert_eq(phone.country_code, 0);
}

static void expect(const char *text, const char *region, const char *e164,
                   const char *number_region, const char *area,
                   const char *type, const char *city)
{
	vox_phone_t phone = parse_ok(text, region);

	cr_expect_str_eq(phone.e164, e164, "\"%s\"", text);
	cr_expect_str_eq(phone.region, number_region, "\"%s\"", text);
	cr_expect_str_eq(phone.area_code, area, "\"%s\"", text);
	cr_expect_str_eq(phone.type, type, "\"%s\"", text);
	cr_expect_str_eq(phone.city, city, "\"%s\"", text);
	cr_expect(vox_phone_is_e164(phone.e164), "%s", phone.e164);
}

Test(phone_valid, us_fields)
{
	vox_phone_t phone = parse_ok("+14155550123", NULL);

	cr_assert_str_eq(phone.e164, "+14155550123");
	cr_assert_str_eq(phone.region, "US");
	cr_assert_eq(phone.country_code, 1);
	cr_assert_str_eq(phone.national, "4155550123");
	cr_assert_str_eq(phone.area_code, "415");
	cr_assert_str_eq(phone.type, "local");
	cr_assert_str_eq(phone.city, "San Francisco, CA");
}

Test(phone_valid, countries)
{
	expect("+12125551234", NULL, "+12125551234", "US", "212", "local",
	       "New York, NY");
	expect("+16135550100", NULL, "+16135550100", "CA", "613", "local",
	       "Ontario");
	expect("+442079460000", NULL, "+442079460000", "GB", "20", "local",
	       "London");
	expect("+493012345678", NULL, "+493012345678", "DE", "30", "local",
	       "Berlin");
	expect("+33142685300", NULL, "+33142685300", "FR", "1", "local",
	       "Paris");
	expect("+61293744000", NULL, "+61293744000", "AU", "2", "local", "");
}

Test(phone_valid, country_codes)
{
	cr_assert_eq(parse_ok("+442079460000", NULL).country_code, 44);
	cr_assert_eq(parse_ok("+493012345678", NULL).country_code, 49);
	cr_assert_eq(parse_ok("+33142685300", NULL).country_code, 33);
	cr_assert_eq(parse_ok("+61293744000", NULL).country_code, 61);
	cr_assert_eq(parse_ok("+16135550100", NULL).country_code, 1);
}

Test(phone_valid, formatting_tolerated)
{
	static const char *const forms[] = {
	        "+1 415 555 0123",        "+1 (415) 555-0123",
	        "+1.415.555.0123",        "+1-415-555-0123",
	        "+1/415/555/0123",        "  +14155550123  ",
	        "+1 4 1 5 5 5 5 0 1 2 3",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		cr_expect_str_eq(parse_ok(forms[i], NULL).e164, "+14155550123",
		                 "\"%s\"", forms[i]);
}

Test(phone_valid, national_with_default_region)
{
	expect("(415) 555-0123", "US", "+14155550123", "US", "415", "local",
	       "San Francisco, CA");
	expect("1 415 555 0123", "US", "+14155550123", "US", "415", "local",
	       "San Francisco, CA");
	expect("020 7946 0000", "GB", "+442079460000", "GB", "20", "local",
	       "London");
	expect("030 12345678", "DE", "+493012345678", "DE", "30", "local",
	       "Berlin");
	expect("01 42 68 53 00", "FR", "+33142685300", "FR", "1", "local",
	       "Paris");
	expect("(02) 9374 4000", "AU", "+61293744000", "AU", "2", "local", "");
	/* a NANPA number given with US as default is still Canadian */
	expect("613 555 0100", "US", "+16135550100", "CA", "613", "local",
	       "Ontario");
	/* region case does not matter */
	cr_assert_str_eq(parse_ok("020 7946 0000", "gb").e164, "+442079460000");
	/* an international number ignores the default region */
	cr_assert_str_eq(parse_ok("+442079460000", "US").region, "GB");
}

Test(phone_valid, types)
{
	expect("07400 123456", "GB", "+447400123456", "GB", "7400", "mobile",
	       "");
	expect("+18005550199", NULL, "+18005550199", "US", "800", "toll_free",
	       "");
	expect("+19005550123", NULL, "+19005550123", "US", "900",
	       "premium_rate", "");
	expect("+4915123456789", NULL, "+4915123456789", "DE", "1512", "mobile",
	       "");
	expect("06 12 34 56 78", "FR", "+33612345678", "FR", "6", "mobile", "");
	expect("0412 345 678", "AU", "+61412345678", "AU", "412", "mobile", "");
	cr_assert_str_eq(parse_ok("+448001234567", NULL).type, "toll_free");
}

Test(phone_invalid, not_numbers)
{
	parse_bad(NULL, NULL, "not a phone number");
	parse_bad("", NULL, "not a phone number");
	parse_bad("   ", "US", "not a phone number");
	parse_bad("+", NULL, "not a phone number");
	parse_bad("abc", "US", "unexpected 'a'");
	parse_bad("+1 415 CALL NOW", NULL, "unexpected 'C'");
	parse_bad("+1 800 FLOWERS", NULL, "unexpected 'F'");
	parse_bad("+14155550123 ext 5", NULL, "unexpected 'e'");
	parse_bad("+14155550123x12", NULL, "unexpected 'x'");
	parse_bad("+1415+5550123", NULL, "unexpected '+'");
	parse_bad("++14155550123", NULL, "unexpected '+'");
	parse_bad("tel:+14155550123", NULL, "unexpected 't'");
	parse_bad("+1 415\n555 0123", NULL, "byte 0x0a");
	parse_bad("+1\t415\t5550123", NULL, "byte 0x09");
	parse_bad("+1 415 555 0123\xc2\xa0", NULL, "byte 0xc2");
	parse_bad("+1415555012300000000000", NULL, "digits");
}

Test(phone_invalid, too_long_text)
{
	char text[200];

	memset(text, ' ', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text + 150, "+14155550123", 12);
	parse_bad(text, NULL, "longer than");
}

Test(phone_invalid, lengths_and_validity)
{
	parse_bad("+4412", NULL, "too short for GB");
	parse_bad("020 79", "GB", "too short for GB");
	parse_bad("+1 415 555 01", NULL, "too short for US");
	parse_bad("+1415555012345", NULL, "too long for US");
	parse_bad("+44207946000012345", NULL, "too long for GB");
	parse_bad("+12005550123", NULL, "invalid number for US");
	parse_bad("(200) 555-0123", "US", "invalid number for US");
	parse_bad("+4900012345678", NULL, "for DE");
	parse_bad("+33 1 23", NULL, "too short for FR");
	/* valid for libphonenumber, but 16 digits */
	parse_bad("+4955050055045505", NULL, "E.164 allows 15 digits");
}

Test(phone_invalid, countries)
{
	parse_bad("+999123456", NULL, "unsupported country calling code");
	parse_bad("+80012345678", NULL, "not a geographic one");
	parse_bad("4155550123", NULL, "not an international number");
	parse_bad("4155550123", "XX", "unsupported region XX");
	parse_bad("4155550123", "ZZ", "unsupported region ZZ");
	parse_bad("4155550123", "USA", "unsupported region");
	parse_bad("4155550123", "", "unsupported region");
	parse_bad("4155550123", "1", "unsupported region");
}

Test(phone_invalid, null_out_and_err)
{
	cr_assert_eq(vox_phone_parse("+14155550123", NULL, NULL, NULL), 0);
	cr_assert_eq(vox_phone_parse("nope", NULL, NULL, NULL),
	             VOX_ERR_INVALID);
}

Test(phone_e164, shape_and_validity)
{
	cr_assert(vox_phone_is_e164("+14155550123"));
	cr_assert(vox_phone_is_e164("+442079460000"));
	cr_assert(vox_phone_is_e164("+4930123456"));
	cr_assert_not(vox_phone_is_e164(NULL));
	cr_assert_not(vox_phone_is_e164(""));
	cr_assert_not(vox_phone_is_e164("+"));
	cr_assert_not(vox_phone_is_e164("14155550123"));
	cr_assert_not(vox_phone_is_e164("+1 415 555 0123"));
	cr_assert_not(vox_phone_is_e164("+1-415-555-0123"));
	cr_assert_not(vox_phone_is_e164("+04155550123"));
	cr_assert_not(vox_phone_is_e164("+12005550123"));   /* invalid */
	cr_assert_not(vox_phone_is_e164("+1415555012345")); /* too long */
	cr_assert_not(vox_phone_is_e164("+1234567890123456"));
	cr_assert_not(vox_phone_is_e164("+14155550123 "));
	cr_assert_not(vox_phone_is_e164("+80012345678")); /* non-geographic */
	/* a trunk 0 after the country code is not canonical */
	cr_assert_not(vox_phone_is_e164("+4402079460000"));
}

Test(phone_region, supported_and_codes)
{
	static const char *const known[] = {"US", "CA", "GB", "DE",
	                                    "FR", "AU", "us", "Gb"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		cr_expect(vox_phone_region_supported(known[i]), "%s", known[i]);
	cr_assert_not(vox_phone_region_supported(NULL));
	cr_assert_not(vox_phone_region_supported(""));
	cr_assert_not(vox_phone_region_supported("XX"));
	cr_assert_not(vox_phone_region_supported("ZZ"));
	cr_assert_not(vox_phone_region_supported("001"));
	cr_assert_not(vox_phone_region_supported("USA"));
	cr_assert_not(vox_phone_region_supported("U"));
	cr_assert_eq(vox_phone_country_code("US"), 1);
	cr_assert_eq(vox_phone_country_code("CA"), 1);
	cr_assert_eq(vox_phone_country_code("GB"), 44);
	cr_assert_eq(vox_phone_country_code("de"), 49);
	cr_assert_eq(vox_phone_country_code("FR"), 33);
	cr_assert_eq(vox_phone_country_code("AU"), 61);
	cr_assert_eq(vox_phone_country_code("XX"), 0);
	cr_assert_eq(vox_phone_country_code(NULL), 0);
}

/* Threads parse a rotating set of numbers and check every answer. */
#define THREADS 8
#define ROUNDS  400

static const struct {
	const char *text, *region, *e164, *city;
} samples[] = {
        {"+14155550123", NULL, "+14155550123", "San Francisco, CA"},
        {"020 7946 0000", "GB", "+442079460000", "London"},
        {"+493012345678", NULL, "+493012345678", "Berlin"},
        {"+33142685300", NULL, "+33142685300", "Paris"},
        {"+16135550100", NULL, "+16135550100", "Ontario"},
        {"07400 123456", "GB", "+447400123456", ""},
};

static void *parse_many(void *arg)
{
	size_t start = (size_t)(uintptr_t)arg;
	size_t nsamples = sizeof(samples) / sizeof(samples[0]);
	long failures = 0;

	for (int i = 0; i < ROUNDS; i++) {
		size_t k = (start + (size_t)i) % nsamples;
		vox_phone_t phone;
		vox_error_t err;

		if (vox_phone_parse(samples[k].text, samples[k].region, &phone,
		                    &err) != 0 ||
		    strcmp(phone.e164, samples[k].e164) != 0 ||
		    strcmp(phone.city, samples[k].city) != 0)
			failures++;
		if (vox_phone_parse("+12005550123", NULL, &phone, &err) !=
		    VOX_ERR_INVALID)
			failures++;
	}
	return (void *)(uintptr_t)failures;
}

Test(phone_threads, parse_concurrently)
{
	pthread_t threads[THREADS];
	long failures = 0;

	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&threads[i], NULL, parse_many,
		                            (void *)(uintptr_t)i),
		             0);
	for (int i = 0; i < THREADS; i++) {
		void *result;

		pthread_join(threads[i], &result);
		failures += (long)(uintptr_t)result;
	}
	cr_assert_eq(failures, 0, "%ld wrong answers", failures);
}

/* libphonenumber drops Mexico's legacy mobile "1" once per parse: the E.164
 * we answer is the fixed point, so it parses back to itself (a fuzz find). */
Test(phone, e164_is_a_fixed_point_for_legacy_prefixes)
{
	static const char *const inputs[] = {"+52116129521167",
	                                     "+5216129521167", "+526129521167"};
	vox_phone_t p, again;
	vox_error_t err;

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		cr_assert_eq(vox_phone_parse(inputs[i], NULL, &p, &err), 0,
		             "%s: %s", inputs[i], err.message);
		cr_expect_str_eq(p.e164, "+526129521167", "%s", inputs[i]);
		cr_assert_eq(vox_phone_parse(p.e164, NULL, &again, &err), 0);
		cr_expect_str_eq(again.e164, p.e164);
		cr_expect(vox_phone_is_e164(p.e164));
	}
}
