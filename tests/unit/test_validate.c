/* vox_validate: the checks the command validators share, at their edges
 * (the schemas' patterns and lengths in characters). */
#include <criterion/criterion.h>

#include "vox_validate.h"

Test(validate, e164_is_the_schemas_pattern)
{
	cr_expect(vox_valid_e164("+4412345"));         /* 7 digits */
	cr_expect(vox_valid_e164("+123456789012345")); /* 15 digits */
	cr_expect_not(vox_valid_e164("+123456"));      /* 6 */
	cr_expect_not(vox_valid_e164("+1234567890123456"));
	cr_expect_not(vox_valid_e164("+0123456789"));
	cr_expect_not(vox_valid_e164("14155550100"));
	cr_expect_not(vox_valid_e164("+1 415 555 0100"));
	cr_expect_not(vox_valid_e164(""));
	cr_expect_not(vox_valid_e164(NULL));
}

Test(validate, uuid_is_lower_case_hex)
{
	cr_expect(vox_valid_uuid("0193a5f2-7c4e-7000-8000-0000000000a1"));
	cr_expect_not(vox_valid_uuid("0193A5F2-7C4E-7000-8000-0000000000A1"));
	cr_expect_not(vox_valid_uuid("0193a5f2-7c4e-7000-8000-0000000000a"));
	cr_expect_not(vox_valid_uuid("0193a5f2x7c4e-7000-8000-0000000000a1"));
	cr_expect_not(vox_valid_uuid("0193a5f2-7c4e-7000-8000-0000000000g1"));
	cr_expect_not(vox_valid_uuid(NULL));
}

Test(validate, lengths_count_characters_not_bytes)
{
	json_t *d = json_pack("{s:s, s:s, s:i, s:b}", "two", "\xc3\xa9\xc3\xa9",
	                      "empty", "", "n", 5, "b", 1);
	vox_error_t err;

	cr_expect_eq(vox_utf8_chars("\xc3\xa9\xe2\x82\xac"), 2);
	cr_expect_eq(vox_validate_str(d, "two", 1, 2, false, &err), 0);
	cr_expect_eq(vox_validate_str(d, "two", 1, 1, false, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_validate_str(d, "empty", 1, 5, false, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_validate_str(d, "absent", 1, 5, true, &err), 0);
	cr_expect_eq(vox_validate_str(d, "absent", 1, 5, false, &err),
	             VOX_ERR_INVALID);
	cr_expect_str_eq(err.message, "data.absent must be a string");
	cr_expect_eq(vox_validate_int(d, "n", 5, 120, &err), 0);
	cr_expect_eq(vox_validate_int(d, "n", 6, 120, &err), VOX_ERR_INVALID);
	cr_expect_eq(vox_validate_bool(d, "b", &err), 0);
	cr_expect_eq(vox_validate_bool(d, "n", &err), VOX_ERR_INVALID);
	json_decref(d);
}

Test(validate, objects_name_their_unknown_member)
{
	static const char *const keys[] = {"operation_id", NULL};
	json_t *d =
	        json_pack("{s:s, s:b}", "operation_id",
	                  "0193a5f2-7c4e-7000-8000-0000000000a1", "force", 1);
	vox_error_t err;

	cr_expect_eq(vox_validate_object(d, keys, &err), VOX_ERR_INVALID);
	cr_expect(strstr(err.message, "force") != NULL, "%s", err.message);
	cr_expect_eq(vox_validate_uuids(d, keys, &err), 0);
	json_decref(d);
	d = json_array();
	cr_expect_eq(vox_validate_object(d, keys, &err), VOX_ERR_INVALID);
	json_decref(d);
}
