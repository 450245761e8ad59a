/*
 * Tests of vox_copy: the binary COPY header and trailer, each field type
 * in network byte order, timestamps from PostgreSQL's 2000-01-01 epoch,
 * and malformed uuids refused. (The integration tests COPY such rows into
 * PostgreSQL, which checks the rest.)
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_copy.h"

Test(copy, header_fields_and_trailer)
{
	static const unsigned char want[] = {
	        'P',  'G',  'C',  'O',  'P',  'Y',  '\n', 0xff,
	        '\r', '\n', 0,                                  /* sig */
	        0,    0,    0,    0,    0,    0,    0,    0,    /* flags, ext */
	        0,    4,                                        /* 4 columns */
	        0,    0,    0,    2,    'o',  'k',              /* text */
	        0,    0,    0,    4,    0xff, 0xff, 0xff, 0xfe, /* int4 -2 */
	        0,    0,    0,    8,    0,    0,    0,    0,
	        0,    0,    0,    1,    /* timestamptz */
	        0xff, 0xff, 0xff, 0xff, /* NULL */
	        0xff, 0xff};            /* trailer */
	vox_copybuf_t b;

	vox_copy_begin(&b, 0);
	vox_copy_row(&b, 4);
	vox_copy_text(&b, "ok");
	vox_copy_int4(&b, -2);
	vox_copy_timestamptz(&b, 946684800LL * 1000000 + 1);
	vox_copy_null(&b);
	cr_assert_eq(vox_copy_end(&b), 0);
	cr_assert_eq(b.len, sizeof(want));
	cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
	vox_copy_free(&b);
}

Test(copy, uuid_bytes_and_bad_uuids)
{
	static const unsigned char want[] = {
	        0,    0,    0,    16,   0x01, 0x93, 0xa6, 0x01, 0x2b, 0x3c,
	        0x7d, 0x4e, 0x8f, 0x50, 0x61, 0x72, 0x83, 0x94, 0x0a, 0x1b};
	vox_copybuf_t b;

	vox_copy_begin(&b, 0);
	vox_copy_uuid(&b, "0193a601-2b3c-7d4e-8f50-617283940a1b");
	cr_assert_eq(vox_copy_end(&b), 0);
	cr_assert_eq(memcmp(b.data + 19, want, sizeof(want)), 0);
	vox_copy_free(&b);
	vox_copy_begin(&b, 0);
	vox_copy_uuid(&b, "0193a601-2b3c-7d4e-8f50-617283940a1");
	cr_assert_eq(vox_copy_end(&b), -1, "short uuid accepted");
	vox_copy_free(&b);
	vox_copy_begin(&b, 0);
	vox_copy_uuid(&b, "0193a601-2b3c-7d4e-8f50-617283940a1g");
	cr_assert_eq(vox_copy_end(&b), -1, "non-hex uuid accepted");
	vox_copy_free(&b);
}

Test(copy, int8_network_order_and_growth)
{
	vox_copybuf_t b;

	vox_copy_begin(&b, 0);
	for (int i = 0; i < 10000; i++) {
		vox_copy_row(&b, 1);
		vox_copy_int8(&b, 0x0102030405060708LL);
	}
	cr_assert_eq(vox_copy_end(&b), 0);
	cr_assert_eq(b.len, 19 + 10000 * (2 + 4 + 8) + 2);
	cr_assert_eq((unsigned char)b.data[19 + 6], 0x01);
	cr_assert_eq((unsigned char)b.data[19 + 13], 0x08);
	vox_copy_free(&b);
}
