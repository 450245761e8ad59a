/*
 * vox_money (common/vox_money.c): rounding half away from zero (once),
 * exact 128-bit products, ISO 4217 exponents, overflow refused, and the
 * formatting of micros and minor units; the worked example of
 * docs/BILLING.md to the micro-unit.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vox_money.h"

static int64_t muldiv(int64_t a, int64_t b, int64_t c)
{
	int64_t out = 0x5a5a;

	cr_assert(vox_money_muldiv(a, b, c, &out), "%lld*%lld/%lld refused",
	          (long long)a, (long long)b, (long long)c);
	return out;
}

Test(money, muldiv_rounds_half_away_from_zero)
{
	cr_expect_eq(muldiv(1, 1, 2), 1);
	cr_expect_eq(muldiv(-1, 1, 2), -1);
	cr_expect_eq(muldiv(3, 1, 2), 2);
	cr_expect_eq(muldiv(-3, 1, 2), -2);
	cr_expect_eq(muldiv(1, -3, 2), -2);
	cr_expect_eq(muldiv(1, 1, 3), 0);
	cr_expect_eq(muldiv(2, 1, 3), 1);
	cr_expect_eq(muldiv(-2, 1, 3), -1);
	cr_expect_eq(muldiv(5, 1, 4), 1);
	cr_expect_eq(muldiv(-5, 1, 4), -1);
	cr_expect_eq(muldiv(7, 1, 4), 2);
	cr_expect_eq(muldiv(0, 123, 7), 0);
	cr_expect_eq(muldiv(499999, 1, 1000000), 0);
	cr_expect_eq(muldiv(500000, 1, 1000000), 1);
	cr_expect_eq(muldiv(-500000, 1, 1000000), -1);
}

Test(money, billing_md_worked_example)
{
	/* docs/BILLING.md "Worked example" */
	cr_expect_eq(muldiv(1000000, 30, 30), 1000000);
	cr_expect_eq(muldiv(1150000, 21, 30), 805000);
	cr_expect_eq(muldiv(990000, 20, 30), 660000);
	cr_expect_eq(muldiv(2000000, 1, 30), 66667);
	int64_t subtotal =
	        1000000 + 805000 + 500000 + 660000 + 66667 + 2345678 + 316000;
	cr_expect_eq(subtotal, 5693345);
	int64_t tax = muldiv(subtotal, 88750, 1000000);
	cr_expect_eq(tax, 505284);
	int64_t due;
	cr_assert(vox_money_round_minor(subtotal + tax, "USD", &due));
	cr_expect_eq(subtotal + tax, 6198629);
	cr_expect_eq(due, 6200000);
}

Test(money, muldiv_is_exact_past_64_bits_and_refuses_overflow)
{
	int64_t out;

	/* the product overflows 64 bits, the result does not */
	cr_expect_eq(muldiv(INT64_MAX, 2, 2), INT64_MAX);
	cr_expect_eq(muldiv(INT64_MAX, 1000000, 1000000), INT64_MAX);
	cr_expect_eq(muldiv(INT64_MIN, 3, 3), INT64_MIN);
	cr_expect_eq(muldiv(INT64_MIN, 1, 1), INT64_MIN);
	cr_expect_eq(muldiv(4611686018427387904LL, 3, 2),
	             (int64_t)6917529027641081856LL);
	cr_expect_not(vox_money_muldiv(INT64_MAX, 2, 1, &out));
	cr_expect_not(vox_money_muldiv(INT64_MIN, -1, 1, &out));
	cr_expect_not(vox_money_muldiv(INT64_MAX, INT64_MAX, 1, &out));
	cr_expect_not(vox_money_muldiv(1, 1, 0, &out));
	cr_expect_not(vox_money_muldiv(1, 1, -5, &out));
}

Test(money, exponents)
{
	cr_expect_eq(vox_currency_exponent("USD"), 2);
	cr_expect_eq(vox_currency_exponent("EUR"), 2);
	cr_expect_eq(vox_currency_exponent("JPY"), 0);
	cr_expect_eq(vox_currency_exponent("KRW"), 0);
	cr_expect_eq(vox_currency_exponent("KWD"), 3);
	cr_expect_eq(vox_currency_exponent("BHD"), 3);
	cr_expect_eq(vox_currency_exponent("CLF"), 4);
	cr_expect_eq(vox_currency_exponent("XYZ"), 2, "unlisted: cents");
	cr_expect_eq(vox_currency_exponent("usd"), -1);
	cr_expect_eq(vox_currency_exponent("US"), -1);
	cr_expect_eq(vox_currency_exponent("USDX"), -1);
	cr_expect_eq(vox_currency_exponent(""), -1);
	cr_expect_eq(vox_currency_exponent(NULL), -1);
	cr_expect_eq(vox_currency_exponent("U1D"), -1);
}

static int64_t minor(int64_t micros, const char *code)
{
	int64_t out = 0x5a5a;

	cr_assert(vox_money_to_minor(micros, code, &out), "%lld %s",
	          (long long)micros, code);
	return out;
}

Test(money, to_and_from_minor_units)
{
	int64_t out;

	cr_expect_eq(minor(1234567, "USD"), 123);
	cr_expect_eq(minor(1235000, "USD"), 124);
	cr_expect_eq(minor(1234999, "USD"), 123);
	cr_expect_eq(minor(-1235000, "USD"), -124);
	cr_expect_eq(minor(-1234999, "USD"), -123);
	cr_expect_eq(minor(1500000, "JPY"), 2);
	cr_expect_eq(minor(-1500000, "JPY"), -2);
	cr_expect_eq(minor(499999, "JPY"), 0);
	cr_expect_eq(minor(1234567, "KWD"), 1235);
	cr_expect_eq(minor(1234567, "CLF"), 12346);
	cr_expect_eq(minor(INT64_MAX, "USD"), 922337203685478LL);
	cr_expect_eq(minor(INT64_MIN, "USD"), -922337203685478LL);
	cr_expect_not(vox_money_to_minor(1, "usd", &out));
	cr_expect_not(vox_money_to_minor(1, NULL, &out));

	cr_assert(vox_money_from_minor(123, "USD", &out));
	cr_expect_eq(out, 1230000);
	cr_assert(vox_money_from_minor(2, "JPY", &out));
	cr_expect_eq(out, 2000000);
	cr_assert(vox_money_from_minor(1235, "KWD", &out));
	cr_expect_eq(out, 1235000);
	cr_assert(vox_money_from_minor(-7, "USD", &out));
	cr_expect_eq(out, -70000);
	cr_expect_not(vox_money_from_minor(INT64_MAX, "USD", &out));
	cr_expect_not(vox_money_from_minor(INT64_MIN, "JPY", &out));
	cr_expect_not(vox_money_from_minor(1, "xx", &out));
	/* round trip of every minor amount is exact */
	for (int64_t m = -1000; m <= 1000; m++) {
		int64_t micros, back;

		cr_assert(vox_money_from_minor(m, "USD", &micros));
		cr_assert(vox_money_to_minor(micros, "USD", &back));
		cr_assert_eq(back, m);
	}
}

Test(money, round_minor_stays_in_micros)
{
	int64_t out;

	cr_assert(vox_money_round_minor(1234567, "USD", &out));
	cr_expect_eq(out, 1230000);
	cr_assert(vox_money_round_minor(1235000, "USD", &out));
	cr_expect_eq(out, 1240000);
	cr_assert(vox_money_round_minor(-1235000, "USD", &out));
	cr_expect_eq(out, -1240000);
	cr_assert(vox_money_round_minor(1500000, "JPY", &out));
	cr_expect_eq(out, 2000000);
	/* rounding up past INT64_MAX is refused, not wrapped */
	cr_expect_not(vox_money_round_minor(INT64_MAX, "USD", &out));
	cr_expect_not(vox_money_round_minor(1, "???", &out));
}

static void format_is(int64_t micros, const char *want)
{
	char out[32];

	memset(out, 'x', sizeof(out));
	vox_money_format(micros, out);
	cr_expect_str_eq(out, want);
}

static void minor_is(int64_t micros, const char *code, const char *want)
{
	char out[32];

	memset(out, 'x', sizeof(out));
	vox_money_format_minor(micros, code, out);
	cr_expect_str_eq(out, want, "%lld %s", (long long)micros, code);
}

Test(money, formatting)
{
	format_is(0, "0.000000");
	format_is(12345678, "12.345678");
	format_is(1, "0.000001");
	format_is(-1, "-0.000001");
	format_is(-12345678, "-12.345678");
	format_is(INT64_MAX, "9223372036854.775807");
	format_is(INT64_MIN, "-9223372036854.775808");

	minor_is(6198629, "USD", "6.20");
	minor_is(0, "USD", "0.00");
	minor_is(5000, "USD", "0.01");
	minor_is(4999, "USD", "0.00");
	minor_is(-5000, "USD", "-0.01");
	minor_is(-4999, "USD", "0.00");
	minor_is(100000000, "USD", "100.00");
	minor_is(1500000, "JPY", "2");
	minor_is(-1500000, "JPY", "-2");
	minor_is(1234567, "KWD", "1.235");
	minor_is(12345, "CLF", "0.0123");
	minor_is(INT64_MIN, "USD", "-9223372036854.78");
	/* a bad code falls back to all six decimals */
	minor_is(1234567, "usd", "1.234567");
}
