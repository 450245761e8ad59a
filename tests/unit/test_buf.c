/*
 * Tests of vox_buf: appends within the cap, the cap itself (exactly at it,
 * one byte over, a printf that would cross it), the sticky first error and
 * the memory freed with it, explicit hand-over, and JSON string escaping
 * checked against jansson's parser (RFC 8259).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"

Test(buf, appends_and_takes)
{
	vox_buf_t b;
	size_t len;
	char *text;

	vox_buf_init(&b, 1000);
	cr_assert_str_eq(vox_buf_str(&b), "");
	cr_assert_eq(vox_buf_adds(&b, "ab"), 0);
	cr_assert_eq(vox_buf_add(&b, "cdef", 2), 0);
	cr_assert_eq(vox_buf_printf(&b, "-%d-%s", 42, "x"), 0);
	cr_assert_eq(vox_buf_add_int(&b, -9223372036854775807LL - 1), 0);
	cr_assert_eq(vox_buf_adds(&b, ","), 0);
	cr_assert_eq(vox_buf_add_int(&b, 0), 0);
	cr_assert_str_eq(vox_buf_str(&b), "abcd-42-x-9223372036854775808,0");
	cr_assert_eq(vox_buf_len(&b), strlen(vox_buf_str(&b)));
	text = vox_buf_take(&b, &len);
	cr_assert_str_eq(text, "abcd-42-x-9223372036854775808,0");
	cr_assert_eq(len, strlen(text));
	/* taken: the buffer is empty and usable again */
	cr_assert_str_eq(vox_buf_str(&b), "");
	cr_assert_eq(vox_buf_len(&b), 0);
	cr_assert_eq(vox_buf_adds(&b, "again"), 0);
	cr_assert_str_eq(vox_buf_str(&b), "again");
	free(text);
	vox_buf_free(&b);
}

Test(buf, grows_to_large_documents)
{
	vox_buf_t b;

	vox_buf_init(&b, 10 * 1000 * 1000);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(vox_buf_printf(&b, "%08d", i), 0);
	cr_assert_eq(vox_buf_len(&b), 800000);
	cr_assert_eq(strncmp(vox_buf_str(&b) + 8 * 99999, "00099999", 8), 0);
	vox_buf_free(&b);
}

Test(buf, cap_is_exact_and_the_error_sticks)
{
	vox_buf_t b;
	vox_error_t err;

	vox_buf_init(&b, 10);
	cr_assert_eq(vox_buf_adds(&b, "0123456789"), 0, "exactly the cap");
	cr_assert_eq(vox_buf_add(&b, "x", 1), VOX_ERR_LIMIT);
	/* the memory is gone, the error stays, nothing is appended after */
	cr_assert_str_eq(vox_buf_str(&b), "");
	cr_assert_eq(vox_buf_len(&b), 0);
	cr_assert_eq(vox_buf_adds(&b, ""), VOX_ERR_LIMIT);
	cr_assert_eq(vox_buf_add_int(&b, 1), VOX_ERR_LIMIT);
	cr_assert_eq(vox_buf_error(&b), VOX_ERR_LIMIT);
	cr_assert_null(vox_buf_take(&b, NULL));
	cr_assert_eq(vox_buf_check(&b, "event", &err), VOX_ERR_LIMIT);
	cr_assert(strstr(err.message, "event") != NULL, "%s", err.message);
	vox_buf_reset(&b);
	cr_assert_eq(vox_buf_error(&b), 0);
	cr_assert_eq(vox_buf_check(&b, "event", &err), 0);
	cr_assert_eq(vox_buf_adds(&b, "ok"), 0);
	vox_buf_free(&b);
}

Test(buf, printf_measured_before_it_writes)
{
	vox_buf_t b;
	char big[64];

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vox_buf_init(&b, 70);
	cr_assert_eq(vox_buf_printf(&b, "%s", "12345"), 0);
	/* 5 + 63 = 68 fits; then 68 + 3 > 70 does not */
	cr_assert_eq(vox_buf_printf(&b, "%s", big), 0);
	cr_assert_eq(vox_buf_printf(&b, "%d", 123), VOX_ERR_LIMIT);
	cr_assert_null(vox_buf_take(&b, NULL));
	vox_buf_free(&b);
	/* one over the cap in a single append */
	vox_buf_init(&b, 62);
	cr_assert_eq(vox_buf_printf(&b, "%s", big), VOX_ERR_LIMIT);
	vox_buf_free(&b);
	/* a zero cap holds the empty text only */
	vox_buf_init(&b, 0);
	cr_assert_eq(vox_buf_adds(&b, ""), 0);
	cr_assert_eq(vox_buf_adds(&b, "a"), VOX_ERR_LIMIT);
	vox_buf_free(&b);
}

Test(buf, reserve_never_passes_the_cap)
{
	vox_buf_t b;

	vox_buf_init(&b, 100);
	cr_assert_eq(vox_buf_reserve(&b, 1000000), 0);
	cr_assert_leq(b.alloc, 101);
	cr_assert_eq(vox_buf_adds(&b, "x"), 0);
	vox_buf_free(&b);
}

/* s escaped, then parsed back by jansson: the same bytes. */
static void round_trip(const char *s, const char *expect_text)
{
	vox_buf_t b;
	json_error_t jerr;
	json_t *v;

	vox_buf_init(&b, 4096);
	cr_assert_eq(vox_buf_add_json_str(&b, s), 0, "%s", s);
	if (expect_text != NULL)
		cr_assert_str_eq(vox_buf_str(&b), expect_text);
	v = json_loads(vox_buf_str(&b), JSON_DECODE_ANY, &jerr);
	cr_assert_not_null(v, "%s: %s", vox_buf_str(&b), jerr.text);
	cr_assert_str_eq(json_string_value(v), s);
	json_decref(v);
	vox_buf_free(&b);
}

Test(buf, json_strings_escaped_per_rfc8259)
{
	char controls[33];

	round_trip("plain-id_1:2.3", "\"plain-id_1:2.3\"");
	round_trip("", "\"\"");
	round_trip("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
	round_trip("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	round_trip("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
	for (int i = 1; i < 33; i++)
		controls[i - 1] = (char)i;
	controls[32] = '\0';
	round_trip(controls, NULL);
	/* UTF-8 goes out as is: 2, 3 and 4 bytes, U+2028 and U+10FFFF */
	round_trip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e", NULL);
	round_trip("\xe2\x80\xa8 \xf4\x8f\xbf\xbf", NULL);
}

Test(buf, json_null_and_invalid_utf8)
{
	static const char *const bad[] = {
	        "\xff",             /* never in UTF-8 */
	        "\xc3",             /* cut short */
	        "\xc0\xaf",         /* overlong '/' */
	        "\xe0\x80\xaf",     /* overlong, 3 bytes */
	        "\xed\xa0\x80",     /* a surrogate */
	        "\xf4\x90\x80\x80", /* above U+10FFFF */
	        "ok\x80",           /* a lone continuation byte */
	};
	vox_buf_t b;

	vox_buf_init(&b, 100);
	cr_assert_eq(vox_buf_add_json_str(&b, NULL), 0);
	cr_assert_str_eq(vox_buf_str(&b), "null");
	vox_buf_free(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_buf_init(&b, 100);
		cr_assert_eq(vox_buf_add_json_str(&b, bad[i]), VOX_ERR_INVALID,
		             "case %zu", i);
		cr_assert_eq(vox_buf_adds(&b, "x"), VOX_ERR_INVALID);
		cr_assert_null(vox_buf_take(&b, NULL));
		vox_buf_free(&b);
	}
}

Test(buf, json_escape_respects_the_cap)
{
	vox_buf_t b;

	/* "\n" becomes 2 bytes plus 2 quotes: 4 fits, 3 does not */
	vox_buf_init(&b, 4);
	cr_assert_eq(vox_buf_add_json_str(&b, "\n"), 0);
	vox_buf_free(&b);
	vox_buf_init(&b, 3);
	cr_assert_eq(vox_buf_add_json_str(&b, "\n"), VOX_ERR_LIMIT);
	vox_buf_free(&b);
}
