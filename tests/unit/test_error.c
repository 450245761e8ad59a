/*
 * Tests of vox_error: filling error objects, the fatal/retriable flags,
 * truncation of long messages, and the stable code names.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_error.h"

Test(error, set_fills_and_returns_code)
{
	vox_error_t err;

	vox_error_clear(&err);
	cr_assert_eq(vox_error_set(&err, VOX_ERR_UNAVAILABLE, true,
	                           "redis %s:%d down", "localhost", 6379),
	             VOX_ERR_UNAVAILABLE);
	cr_assert_eq(err.code, VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_not(err.fatal);
	cr_assert_str_eq(err.message, "redis localhost:6379 down");
}

Test(error, fatal_is_never_retriable)
{
	vox_error_t err;

	vox_error_clear(&err);
	err.retriable = true;
	cr_assert_eq(vox_error_fatal(&err, VOX_ERR_INVALID, "bad url %d", 1),
	             VOX_ERR_INVALID);
	cr_assert(err.fatal);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message, "bad url 1");
}

Test(error, later_set_overwrites)
{
	vox_error_t err;

	vox_error_fatal(&err, VOX_ERR_INTERNAL, "first");
	vox_error_set(&err, VOX_ERR_TIMEOUT, true, "second");
	cr_assert_eq(err.code, VOX_ERR_TIMEOUT);
	cr_assert_not(err.fatal, "fatal flag is not sticky");
	cr_assert_str_eq(err.message, "second");
}

Test(error, null_err_still_returns_code)
{
	cr_assert_eq(vox_error_set(NULL, VOX_ERR_NOT_FOUND, false, "x"),
	             VOX_ERR_NOT_FOUND);
	cr_assert_eq(vox_error_fatal(NULL, VOX_ERR_NOMEM, "x"), VOX_ERR_NOMEM);
	vox_error_clear(NULL);
}

Test(error, long_message_is_truncated)
{
	char long_text[600];
	vox_error_t err;

	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	vox_error_set(&err, VOX_ERR_INVALID, false, "%s", long_text);
	cr_assert_eq(strlen(err.message), sizeof(err.message) - 1);
}

Test(error, clear_zeroes)
{
	vox_error_t err;

	vox_error_fatal(&err, VOX_ERR_INTERNAL, "boom");
	vox_error_clear(&err);
	cr_assert_eq(err.code, VOX_OK);
	cr_assert_not(err.fatal);
	cr_assert_not(err.retriable);
	cr_assert_str_empty(err.message);
}

Test(error, code_names_are_stable)
{
	static const struct {
		vox_err_code_t code;
		const char *name;
	} names[] = {
	        {VOX_OK, "ok"},
	        {VOX_ERR_INVALID, "invalid_argument"},
	        {VOX_ERR_NOT_FOUND, "not_found"},
	        {VOX_ERR_CONFLICT, "conflict"},
	        {VOX_ERR_UNAVAILABLE, "unavailable"},
	        {VOX_ERR_TIMEOUT, "timeout"},
	        {VOX_ERR_INTERNAL, "internal"},
	        {VOX_ERR_NOMEM, "out_of_memory"},
	        {VOX_ERR_DUPLICATE, "duplicate"},
	        {VOX_ERR_LIMIT, "limit_exceeded"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_str_eq(vox_err_code_name(names[i].code),
		                 names[i].name);
	cr_assert_str_eq(vox_err_code_name((vox_err_code_t)-99), "unknown");
	cr_assert_str_eq(vox_err_code_name((vox_err_code_t)5), "unknown");
}
