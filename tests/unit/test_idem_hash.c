/*
 * The ingress's Idempotency-Key request hash (producers/ingress/idem.c):
 * over the canonical JSON, so key order, whitespace and string escapes do
 * not matter while values do; bodies that are not strict JSON are hashed
 * as their bytes.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../producers/ingress/ingress.h"

static void hash_of(const char *body, char out[65])
{
	idem_request_hash("POST", "/v1/usage-triggers", body, strlen(body),
	                  out);
}

static bool same(const char *a, const char *b)
{
	char ha[65], hb[65];

	hash_of(a, ha);
	hash_of(b, hb);
	return strcmp(ha, hb) == 0;
}

Test(idem_hash, order_whitespace_and_escapes_do_not_matter)
{
	cr_assert(same(
	        "{\"a\":1,\"b\":[1,2,{\"c\":null}]}",
	        " {\n\t\"b\" : [ 1, 2, { \"c\" : null } ] ,\"a\":1 }\r\n"));
	cr_assert(same("{\"name\":\"\\u00e9t\\u00e9\"}",
	               "{\"name\":\"\xc3\xa9t\xc3\xa9\"}"));
	cr_assert(same("{\"u\":\"https:\\/\\/x\"}", "{\"u\":\"https://x\"}"));
	cr_assert(same("{}", "{ }"));
}

Test(idem_hash, values_types_paths_and_methods_matter)
{
	char a[65], b[65];

	cr_assert_not(same("{\"a\":1}", "{\"a\":2}"));
	cr_assert_not(same("{\"a\":1}", "{\"a\":1.0}"));
	cr_assert_not(same("{\"a\":1}", "{\"a\":\"1\"}"));
	cr_assert_not(same("{\"a\":[1,2]}", "{\"a\":[2,1]}"));
	cr_assert_not(same("{}", ""));
	idem_request_hash("POST", "/v1/a", "{}", 2, a);
	idem_request_hash("POST", "/v1/b", "{}", 2, b);
	cr_assert_str_neq(a, b);
	idem_request_hash("DELETE", "/v1/a", "{}", 2, b);
	cr_assert_str_neq(a, b);
}

Test(idem_hash, bodies_that_are_not_strict_json_are_their_bytes)
{
	/* Duplicate keys: never equal to either reading of them. */
	cr_assert_not(same("{\"a\":1,\"a\":2}", "{\"a\":2}"));
	cr_assert_not(same("{\"a\":1,\"a\":2}", "{\"a\":1}"));
	cr_assert(same("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"));
	cr_assert_not(same("{\"a\":1,\"a\":2}", "{\"a\":1, \"a\":2}"));
	cr_assert_not(same("not json", "not  json"));
	/* An integer too large for jansson. */
	cr_assert_not(same("{\"n\":123456789012345678901234567890}",
	                   "{ \"n\":123456789012345678901234567890}"));
}
