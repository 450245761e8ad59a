/*
 * vox_carrier_money: the carrier's decimal money strings ("1.00") to
 * micro-units, exactly, without floating point.
 */
#include <limits.h>
#include <stdbool.h>

#include "vox_carrier.h"

int vox_carrier_money_parse(const char *text, long long *micros)
{
	const long long max_whole = LLONG_MAX / 1000000 - 1;
	long long whole = 0, frac = 0;
	int whole_digits = 0, frac_digits = 0;
	bool negative = false;
	const char *p = text;

	if (p == NULL || micros == NULL)
		return VOX_ERR_INVALID;
	if (*p == '-') {
		negative = true;
		p++;
	}
	for (; *p >= '0' && *p <= '9'; p++, whole_digits++) {
		whole = whole * 10 + (*p - '0');
		if (whole > max_whole)
			return VOX_ERR_INVALID;
	}
	if (whole_digits == 0)
		return VOX_ERR_INVALID;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++) {
			if (frac_digits < 6)
				frac = frac * 10 + (*p - '0');
			else if (*p != '0') /* not representable exactly */
				return VOX_ERR_INVALID;
		}
		if (frac_digits == 0)
			return VOX_ERR_INVALID;
	}
	if (*p != '\0')
		return VOX_ERR_INVALID;
	for (int i = frac_digits; i < 6; i++)
		frac *= 10;
	*micros = (whole * 1000000 + frac) * (negative ? -1 : 1);
	return 0;
}
