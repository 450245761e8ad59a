/*
 * Tests of vox_json: parsing the samples in tests/data/json/ (run from the
 * repository root), the depth pre-scan, and the small helpers.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"

#define DATA_DIR "tests/data/json/"

/* Whole file in a malloc'd buffer (not NUL-terminated for the parser's
 * sake: *len is what counts). */
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
	fclose(file);
	*len = (size_t)size;
	return buf;
}

/* Parses a sample expecting failure; returns the error for more checks. */
static vox_error_t parse_bad(const char *name, vox_err_code_t code,
                             const char *needle)
{
	vox_error_t err;
	size_t len;
	char *buf = read_sample(name, &len);
	json_t *value;

	vox_error_clear(&err);
	value = vox_json_parse(buf, len, VOX_JSON_DEFAULT_DEPTH, &err);
	cr_assert_null(value, "%s: parsed but should not", name);
	cr_assert_eq(err.code, code, "%s: code %d, want %d (%s)", name,
	             err.code, code, err.message);
	cr_assert_not(err.retriable, "%s: bad input is never retriable", name);
	cr_assert_not_null(strstr(err.message, needle),
	                   "%s: message \"%s\" lacks \"%s\"", name, err.message,
	                   needle);
	free(buf);
	return err;
}

static json_t *parse_good(const char *name)
{
	vox_error_t err;
	size_t len;
	char *buf = read_sample(name, &len);
	json_t *value;

	vox_error_clear(&err);
	value = vox_json_parse(buf, len, VOX_JSON_DEFAULT_DEPTH, &err);
	cr_assert_not_null(value, "%s: %s", name, err.message);
	free(buf);
	return value;
}

Test(json_valid, message_object)
{
	json_t *value = parse_good("valid_message.json");

	cr_assert(json_is_object(value));
	cr_assert_str_eq(vox_json_str(value, "type"), "provision_number");
	cr_assert_eq(json_integer_value(json_object_get(value, "account_id")),
	             42);
	json_decref(value);
}

Test(json_valid, depth_32_is_allowed)
{
	json_decref(parse_good("valid_depth32.json"));
	json_decref(parse_good("valid_depth32_after_escapes.json"));
}

Test(json_valid, brackets_inside_strings_do_not_count)
{
	json_t *value = parse_good("valid_brackets_in_strings.json");

	cr_assert_not_null(strstr(vox_json_str(value, "text"), "[{[{"));
	json_decref(value);
}

Test(json_valid, unicode_and_number_edges)
{
	json_t *value = parse_good("valid_unicode_numbers.json");

	cr_assert_str_eq(vox_json_str(value, "caf\xc3\xa9"),
	                 "\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_eq(json_integer_value(json_object_get(value, "big")),
	             INT64_MAX);
	cr_assert_eq(json_integer_value(json_object_get(value, "neg")),
	             INT64_MIN);
	cr_assert_str_eq(vox_json_str(value, "esc"), "\"\\/\b\f\n\r\t");
	json_decref(value);
}

Test(json_valid, scalars_and_whitespace)
{
	json_t *value = parse_good("valid_scalar.json");

	cr_assert_str_eq(json_string_value(value), "just a string");
	json_decref(value);
	value = parse_good("valid_empty_array.json");
	cr_assert(json_is_array(value));
	cr_assert_eq(json_array_size(value), 0);
	json_decref(value);
}

Test(json_invalid, duplicate_key_is_named)
{
	vox_error_t err = parse_bad("invalid_duplicate_key.json",
	                            VOX_ERR_INVALID, "duplicate key \"id\"");

	cr_assert_not_null(strstr(err.message, "line 1"), "%s", err.message);
}

Test(json_invalid, nested_duplicate_key_names_line)
{
	vox_error_t err = parse_bad("invalid_duplicate_key_nested.json",
	                            VOX_ERR_INVALID, "duplicate key \"x\"");

	cr_assert_not_null(strstr(err.message, "line 3"), "%s", err.message);
}

Test(json_invalid, duplicate_key_spelled_differently)
{
	/* "\u0061b" and "ab" are the same key once decoded */
	parse_bad("invalid_duplicate_key_escaped.json", VOX_ERR_INVALID,
	          "duplicate key \"ab\"");
}

Test(json_invalid, depth_33_is_a_limit)
{
	parse_bad("invalid_depth33.json", VOX_ERR_LIMIT, "deeper than 32");
	parse_bad("invalid_depth33_mixed.json", VOX_ERR_LIMIT,
	          "deeper than 32");
	parse_bad("invalid_depth33_after_escapes.json", VOX_ERR_LIMIT,
	          "deeper than 32");
}

Test(json_invalid, raw_nul_byte)
{
	parse_bad("invalid_nul_byte.json", VOX_ERR_INVALID,
	          "NUL byte at offset 7");
}

Test(json_invalid, escaped_nul)
{
	parse_bad("invalid_escaped_nul.json", VOX_ERR_INVALID, "line 1");
}

Test(json_invalid, truncated)
{
	parse_bad("invalid_truncated.json", VOX_ERR_INVALID,
	          "invalid JSON at line 1, column 15");
}

/* The message never echoes the text near the error: it may be a secret. */
Test(json_invalid, message_does_not_echo_the_token)
{
	static const char *const bodies[] = {
	        "{\"pin\": \"739154", "{\"pin\": 0739154}",
	        "{\"pin\": 739154x}", "{\"pin\": \"739154\" \"x\"}",
	        "{\"pin\": [739154",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		vox_error_t err = {0};
		json_t *v =
		        vox_json_parse(bodies[i], strlen(bodies[i]), 8, &err);

		cr_assert_null(v, "%s", bodies[i]);
		cr_expect_null(strstr(err.message, "739154"), "%s: %s",
		               bodies[i], err.message);
		cr_expect_not_null(strstr(err.message, "column"), "%s",
		                   err.message);
	}
}

Test(json_invalid, huge_numbers)
{
	parse_bad("invalid_huge_real.json", VOX_ERR_INVALID, "overflow");
	parse_bad("invalid_huge_integer.json", VOX_ERR_INVALID,
	          "too big integer");
}

Test(json_invalid, bad_utf8_message_stays_valid_utf8)
{
	static const char *const samples[] = {
	        "invalid_bad_utf8.json",
	        "invalid_overlong_utf8.json",
	        "invalid_bom.json",
	};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		vox_error_t err =
		        parse_bad(samples[i], VOX_ERR_INVALID, "line 1");
		/* the message must fit in a JSON log line */
		json_t *text = json_string(err.message);

		cr_assert_not_null(text, "%s: message is not UTF-8: %s",
		                   samples[i], err.message);
		json_decref(text);
	}
}

Test(json_invalid, syntax_errors)
{
	parse_bad("invalid_empty.json", VOX_ERR_INVALID, "line 1");
	parse_bad("invalid_trailing_garbage.json", VOX_ERR_INVALID,
	          "end of file expected");
	parse_bad("invalid_trailing_comma.json", VOX_ERR_INVALID, "column 11");
	parse_bad("invalid_control_char.json", VOX_ERR_INVALID,
	          "control character");
	parse_bad("invalid_lone_surrogate.json", VOX_ERR_INVALID, "line 1");
}

Test(json_invalid, null_buffer_and_null_err)
{
	vox_error_t err;

	vox_error_clear(&err);
	cr_assert_null(vox_json_parse(NULL, 0, 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	/* err is optional */
	cr_assert_null(vox_json_parse("{", 1, 0, NULL));
	cr_assert_null(vox_json_parse("[[[", 3, 2, NULL));
}

Test(json_invalid, length_is_honoured)
{
	const char text[] = "{\"a\":1}{\"b\":2}";
	json_t *value;

	/* only the first object is inside len: no trailing garbage seen */
	value = vox_json_parse(text, 7, 0, NULL);
	cr_assert_not_null(value);
	json_decref(value);
	cr_assert_null(vox_json_parse(text, 6, 0, NULL));
}

Test(json_invalid, long_duplicate_key_is_truncated)
{
	char text[700];
	char key[301];
	vox_error_t err;

	memset(key, 'k', 300);
	key[300] = '\0';
	snprintf(text, sizeof(text), "{\"%s\":1,\"%s\":2}", key, key);
	vox_error_clear(&err);
	cr_assert_null(vox_json_parse(text, strlen(text), 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "duplicate key \"kkkk"), "%s",
	                   err.message);
	cr_assert_not_null(strstr(err.message, "... at line 1"), "%s",
	                   err.message);
}

Test(json_invalid, duplicate_key_truncated_on_char_boundary)
{
	/* 100 two-byte characters: a byte cut would leave invalid UTF-8 */
	char text[512];
	char key[201];
	vox_error_t err;
	json_t *msg;

	for (int i = 0; i < 100; i++) {
		key[2 * i] = (char)0xc3;
		key[2 * i + 1] = (char)0xa9;
	}
	key[200] = '\0';
	snprintf(text, sizeof(text), "{\"%s\":1,\"%s\":2}", key, key);
	cr_assert_null(vox_json_parse(text, strlen(text), 0, &err));
	msg = json_string(err.message);
	cr_assert_not_null(msg, "not UTF-8: %s", err.message);
	json_decref(msg);
}

Test(json_depth, counts_and_stops)
{
	cr_assert_eq(vox_json_depth("1", 1, 32), 0);
	cr_assert_eq(vox_json_depth("[]", 2, 32), 1);
	cr_assert_eq(vox_json_depth("[{},[[]]]", 9, 32), 3);
	cr_assert_eq(vox_json_depth("[[[[[", 5, 2), 3, "stops at max + 1");
	cr_assert_eq(vox_json_depth("[[[[[", 5, 0), 5, "0 means no limit");
	cr_assert_eq(vox_json_depth("\"[[[\"", 5, 32), 0);
	cr_assert_eq(vox_json_depth("[\"\\\"[[\"]", 8, 32), 1);
	cr_assert_eq(vox_json_depth("[\"\\\\\",[[]]]", 11, 32), 3);
	/* unbalanced closers never go below zero */
	cr_assert_eq(vox_json_depth("]]][", 4, 32), 1);
	/* an unterminated string or a lone backslash at the end */
	cr_assert_eq(vox_json_depth("[\"abc\\", 6, 32), 1);
	cr_assert_eq(vox_json_depth("", 0, 32), 0);
}

Test(json_depth, custom_limit)
{
	vox_error_t err;

	cr_assert_null(vox_json_parse("[[[]]]", 6, 2, &err));
	cr_assert_eq(err.code, VOX_ERR_LIMIT);
	cr_assert_not_null(strstr(err.message, "deeper than 2"));
	json_decref(vox_json_parse("[[]]", 4, 2, &err));
}

Test(json_helpers, dump_is_compact_and_ordered)
{
	json_t *value = vox_json_parse("{ \"z\" : 1, \"a\" : [true, null] }",
	                               31, 0, NULL);
	char *text;

	cr_assert_not_null(value);
	text = vox_json_dump(value);
	cr_assert_str_eq(text, "{\"z\":1,\"a\":[true,null]}");
	free(text);
	json_decref(value);

	value = json_integer(7);
	text = vox_json_dump(value);
	cr_assert_str_eq(text, "7", "scalars dump too");
	free(text);
	json_decref(value);
	cr_assert_null(vox_json_dump(NULL));
}

Test(json_helpers, str_member)
{
	json_t *value =
	        vox_json_parse("{\"s\":\"x\",\"n\":1,\"z\":null}", 24, 0, NULL);

	cr_assert_not_null(value);
	cr_assert_str_eq(vox_json_str(value, "s"), "x");
	cr_assert_null(vox_json_str(value, "n"));
	cr_assert_null(vox_json_str(value, "z"));
	cr_assert_null(vox_json_str(value, "missing"));
	cr_assert_null(vox_json_str(NULL, "s"));
	json_decref(value);
}

Test(json_helpers, only_keys)
{
	static const char *const allowed[] = {"id", "type", NULL};
	json_t *value;
	vox_error_t err;

	value = vox_json_parse("{\"id\":1,\"type\":2}", 17, 0, NULL);
	cr_assert_eq(vox_json_only_keys(value, allowed, &err), 0);
	json_decref(value);

	value = json_object();
	cr_assert_eq(vox_json_only_keys(value, allowed, &err), 0, "empty ok");
	json_decref(value);

	value = vox_json_parse("{\"id\":1,\"typo\":2}", 17, 0, NULL);
	cr_assert_eq(vox_json_only_keys(value, allowed, &err), VOX_ERR_INVALID);
	cr_assert_str_eq(err.message, "unknown key \"typo\"");
	json_decref(value);

	value = json_array();
	cr_assert_eq(vox_json_only_keys(value, allowed, &err), VOX_ERR_INVALID);
	cr_assert_eq(vox_json_only_keys(NULL, allowed, NULL), VOX_ERR_INVALID);
	json_decref(value);
}
