/*
 * vox_money: micro-units and minor units (vox_money.h).
 */
#include "vox_money.h"

#include <stdio.h>
#include <string.h>

/* The ISO 4217 currencies whose minor unit is not the cent. */
static const struct {
	const char code[4];
	int exponent;
} exponents[] = {
        {"BHD", 3}, {"BIF", 0}, {"CLF", 4}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0},
        {"IQD", 3}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0},
        {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"PYG", 0}, {"RWF", 0}, {"TND", 3},
        {"UGX", 0}, {"UYI", 0}, {"UYW", 4}, {"VND", 0}, {"VUV", 0}, {"XAF", 0},
        {"XOF", 0}, {"XPF", 0},
};

int vox_currency_exponent(const char *code)
{
	if (code == NULL || strlen(code) != 3)
		return -1;
	for (int i = 0; i < 3; i++)
		if (code[i] < 'A' || code[i] > 'Z')
			return -1;
	for (size_t i = 0; i < sizeof(exponents) / sizeof(exponents[0]); i++)
		if (memcmp(exponents[i].code, code, 3) == 0)
			return exponents[i].exponent;
	return 2;
}

/* micros per minor unit: 10^(6 - exponent). */
static int64_t unit_micros(const char *code)
{
	int e = vox_currency_exponent(code);
	int64_t u = 1;

	if (e < 0)
		return 0;
	for (int i = e; i < 6; i++)
		u *= 10;
	return u;
}

bool vox_money_muldiv(int64_t a, int64_t b, int64_t c, int64_t *out)
{
	__int128 p, q, r;

	if (c <= 0)
		return false;
	p = (__int128)a * b;
	q = p / c;
	r = p % c;
	/* half away from zero: |r| * 2 >= c moves q one step outwards */
	if (r < 0)
		r = -r;
	if (r * 2 >= c)
		q += p < 0 ? -1 : 1;
	if (q > INT64_MAX || q < INT64_MIN)
		return false;
	*out = (int64_t)q;
	return true;
}

bool vox_money_to_minor(int64_t micros, const char *code, int64_t *minor)
{
	int64_t u = unit_micros(code);

	return u > 0 && vox_money_muldiv(micros, 1, u, minor);
}

bool vox_money_from_minor(int64_t minor, const char *code, int64_t *micros)
{
	int64_t u = unit_micros(code);

	if (u <= 0)
		return false;
	return !__builtin_mul_overflow(minor, u, micros);
}

bool vox_money_round_minor(int64_t micros, const char *code, int64_t *out)
{
	int64_t minor;

	return vox_money_to_minor(micros, code, &minor) &&
	       vox_money_from_minor(minor, code, out);
}

void vox_money_format(int64_t micros, char out[32])
{
	uint64_t m =
	        micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;

	snprintf(out, 32, "%s%llu.%06llu", micros < 0 ? "-" : "",
	         (unsigned long long)(m / 1000000),
	         (unsigned long long)(m % 1000000));
}

void vox_money_format_minor(int64_t micros, const char *code, char out[32])
{
	int e = vox_currency_exponent(code);
	int64_t minor, scale = 1;
	uint64_t m;

	if (e < 0 || !vox_money_to_minor(micros, code, &minor)) {
		vox_money_format(micros, out);
		return;
	}
	for (int i = 0; i < e; i++)
		scale *= 10;
	m = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	{
		char frac[8];
		uint64_t f = m % (uint64_t)scale;

		/* e <= 4 digits, zero-padded by hand: no '*' width */
		for (int i = e - 1; i >= 0; i--, f /= 10)
			frac[i] = (char)('0' + f % 10);
		frac[e] = '\0';
		snprintf(out, 32, "%s%llu%s%s", minor < 0 ? "-" : "",
		         (unsigned long long)(m / (uint64_t)scale),
		         e > 0 ? "." : "", frac);
	}
}
