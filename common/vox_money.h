/*
 * vox_money: micro-units (1/1,000,000 of a currency unit, DESIGN.md) and
 * the currency's minor unit (ISO 4217 exponent: cents for USD, none for
 * JPY, 1/1000 for KWD), which is what card processors charge in.
 * docs/BILLING.md "Rounding".
 */
#ifndef VOX_MONEY_H
#define VOX_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ISO 4217 exponent of code (2 for codes it does not list); -1 when
 * code is not three upper-case letters. */
int vox_currency_exponent(const char *code);

/* micros rounded half away from zero to the currency's minor unit, in
 * minor units (USD: 1234567 micros -> 123 cents). false on overflow or a
 * bad code. */
bool vox_money_to_minor(int64_t micros, const char *code, int64_t *minor);

/* minor units back to micros (exact). false on overflow or a bad code. */
bool vox_money_from_minor(int64_t minor, const char *code, int64_t *micros);

/* micros rounded half away from zero to the minor unit, still in micros
 * (USD: 1234567 -> 1230000; 1235000 -> 1240000). */
bool vox_money_round_minor(int64_t micros, const char *code, int64_t *out);

/* "12.345678": the amount in currency units with all six decimals, a
 * leading '-' when negative. out must hold 32 bytes. */
void vox_money_format(int64_t micros, char out[32]);

/* "12.35": rounded (half away from zero) to the currency's minor unit
 * for display (invoices' PDF). out must hold 32 bytes. */
void vox_money_format_minor(int64_t micros, const char *code, char out[32]);

/* round(a * b / c) half away from zero, exact for any int64 a, b and
 * c > 0 whose true result fits (128-bit intermediate). false otherwise.
 * Proration: vox_money_muldiv(rate, days, period_days); tax:
 * vox_money_muldiv(subtotal, rate_ppm, 1000000). */
bool vox_money_muldiv(int64_t a, int64_t b, int64_t c, int64_t *out);

#endif
