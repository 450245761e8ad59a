/*
 * Tests of vox_rating: billing increments at their edges, the rounding of
 * fractions of a micro-unit (up, once per record), connect fees, message
 * segments, unanswered calls, longest-prefix and country/type rate choice,
 * and overflow.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_rating.h"

static vox_rate_t rates[] = {
        {1, VOX_CDR_OUTBOUND_CALL, "", "", "", 250000, 0, 0, 60, 60},
        {2, VOX_CDR_OUTBOUND_CALL, "1", "", "", 14000, 0, 0, 60, 60},
        {3, VOX_CDR_OUTBOUND_CALL, "44", "", "", 20000, 0, 0, 1, 1},
        {4, VOX_CDR_OUTBOUND_CALL, "447", "", "", 90000, 0, 10000, 1, 1},
        {5, VOX_CDR_OUTBOUND_CALL, "49", "", "", 25000, 0, 0, 6, 6},
        {6, VOX_CDR_OUTBOUND_CALL, "33", "", "", 7, 0, 0, 30, 6},
        {7, VOX_CDR_INBOUND_CALL, "1", "", "", 8500, 0, 0, 60, 60},
        {8, VOX_CDR_INBOUND_CALL, "1", "US", "toll_free", 22000, 0, 0, 60, 60},
        {9, VOX_CDR_SMS_SENT, "", "", "", 0, 60000, 0, 60, 60},
        {10, VOX_CDR_SMS_SENT, "1", "", "", 0, 7900, 500, 60, 60},
};
static vox_rate_card_t card = {
        "card-1", "USD", 0, 0, true, rates, sizeof(rates) / sizeof(rates[0])};

static vox_charge_t rate(vox_cdr_type_t type, const char *to, int duration,
                         int segments, const char *ntype)
{
	vox_cdr_t cdr;
	vox_charge_t ch;
	vox_error_t err;

	memset(&cdr, 0, sizeof(cdr));
	cdr.type = type;
	snprintf(cdr.to, sizeof(cdr.to), "%s", to);
	cdr.duration_s = duration;
	cdr.segments = segments;
	cr_assert_eq(vox_rate_cdr(&card, &cdr, "US", ntype, &ch, &err), 0, "%s",
	             err.message);
	return ch;
}

Test(rating, increments_at_their_edges)
{
	cr_assert_eq(vox_billable_seconds(0, 60, 60), 0);
	cr_assert_eq(vox_billable_seconds(1, 60, 60), 60);
	cr_assert_eq(vox_billable_seconds(60, 60, 60), 60);
	cr_assert_eq(vox_billable_seconds(61, 60, 60), 120);
	cr_assert_eq(vox_billable_seconds(1, 6, 6), 6);
	cr_assert_eq(vox_billable_seconds(7, 6, 6), 12);
	cr_assert_eq(vox_billable_seconds(59, 1, 1), 59);
	cr_assert_eq(vox_billable_seconds(29, 30, 6), 30);
	cr_assert_eq(vox_billable_seconds(31, 30, 6), 36);
	cr_assert_eq(vox_billable_seconds(36, 30, 6), 36);
	cr_assert_eq(vox_billable_seconds(86400, 60, 60), 86400);
}

Test(rating, per_minute_and_rounding_up)
{
	vox_charge_t ch;

	/* US 60/60 at 14000/min: 61 s -> 2 min */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "+12125550100", 61, 0, "local");
	cr_assert_eq(ch.rate->id, 2);
	cr_assert_eq(ch.billable_s, 120);
	cr_assert_eq(ch.cost_micros, 28000);
	/* GB 1/1 at 20000/min: 7 s = 2333.33.. -> 2334 (rounded up) */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "+442079460000", 7, 0, "local");
	cr_assert_eq(ch.rate->id, 3);
	cr_assert_eq(ch.cost_micros, 2334);
	/* 6 s exactly a tenth of a minute: 2000, no rounding */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "+442079460000", 6, 0, "local");
	cr_assert_eq(ch.cost_micros, 2000);
	/* FR 30/6 at 7/min: 31 s -> 36 s, 7*36/60 = 4.2 -> 5 */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "+33612345678", 31, 0, "local");
	cr_assert_eq(ch.billable_s, 36);
	cr_assert_eq(ch.cost_micros, 5);
}

Test(rating, connect_fee_and_longest_prefix)
{
	vox_charge_t ch =
	        rate(VOX_CDR_OUTBOUND_CALL, "+447700900123", 10, 0, "local");

	cr_assert_eq(ch.rate->id, 4);
	cr_assert_eq(ch.cost_micros, 10000 + 15000);
	/* DE 6/6: 1 s -> 6 s = 2500 */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "+4930123456", 1, 0, "local");
	cr_assert_eq(ch.cost_micros, 2500);
	/* not E.164: only the catch-all */
	ch = rate(VOX_CDR_OUTBOUND_CALL, "anonymous", 60, 0, "local");
	cr_assert_eq(ch.rate->id, 1);
	cr_assert_eq(ch.cost_micros, 250000);
}

Test(rating, unanswered_calls_cost_nothing)
{
	vox_charge_t ch =
	        rate(VOX_CDR_OUTBOUND_CALL, "+447700900123", 0, 0, "local");

	cr_assert_eq(ch.billable_s, 0);
	cr_assert_eq(ch.cost_micros, 0);
}

Test(rating, number_type_rate_wins_a_tie)
{
	vox_charge_t ch =
	        rate(VOX_CDR_INBOUND_CALL, "+18005550100", 30, 0, "toll_free");

	cr_assert_eq(ch.rate->id, 8);
	cr_assert_eq(ch.cost_micros, 22000);
	ch = rate(VOX_CDR_INBOUND_CALL, "+14155550100", 30, 0, "local");
	cr_assert_eq(ch.rate->id, 7);
}

Test(rating, messages_per_segment)
{
	vox_charge_t ch = rate(VOX_CDR_SMS_SENT, "+14155550100", 0, 3, "local");

	cr_assert_eq(ch.units, 3);
	cr_assert_eq(ch.cost_micros, 500 + 3 * 7900);
	ch = rate(VOX_CDR_SMS_SENT, "+4915123456789", 0, 1, "local");
	cr_assert_eq(ch.cost_micros, 60000);
}

Test(rating, no_rate_and_overflow)
{
	vox_rate_t big[] = {{1, VOX_CDR_OUTBOUND_CALL, "", "", "",
	                     INT64_MAX / 2, 0, 0, 1, 1}};
	vox_rate_card_t huge = {"card-2", "USD", 0, 0, false, big, 1};
	vox_cdr_t cdr;
	vox_charge_t ch;
	vox_error_t err;

	memset(&cdr, 0, sizeof(cdr));
	cdr.type = VOX_CDR_SMS_RECEIVED;
	snprintf(cdr.to, sizeof(cdr.to), "+14155550100");
	cdr.segments = 1;
	cr_assert_eq(vox_rate_cdr(&card, &cdr, "US", "local", &ch, &err),
	             VOX_ERR_NOT_FOUND);
	cdr.type = VOX_CDR_OUTBOUND_CALL;
	cdr.duration_s = 86400;
	cr_assert_eq(vox_rate_cdr(&huge, &cdr, "US", "local", &ch, &err),
	             VOX_ERR_LIMIT);
}
