/*
 * The invoicing worker on the real PostgreSQL and Kafka, commands sent to
 * its own topic, inputs written as SQL fixtures (ownership history, rated
 * usage): docs/BILLING.md's worked example to the micro-unit, drafts
 * recomputed from scratch, idempotent generation (one batch, two workers
 * at once), gapless numbers, credit notes, void, uncollectible, late usage
 * and the commands that fail or are dead-lettered. The same through the
 * real API and metering path: test_invoicing_e2e.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test_invoicing_helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_uuid.h"

/* November 2026 in New York, anchor day 1 (BILLING.md's example). */
#define NOV_START "2026-11-01T04:00:00Z"
#define NOV_END   "2026-12-01T05:00:00Z"

static const char *lines_sql =
        "SELECT string_agg(concat_ws('|', line_no, kind, e164, event_type, "
        "quantity, days, period_days, amount_micros), ';' ORDER BY line_no) "
        "FROM invoice_lines WHERE invoice_id = $1::uuid";

static long long inv_num(struct ti *w, const char *col, const char *invoice)
{
	char sql[200];

	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM invoices WHERE id = $1::uuid", col);
	const char *params[] = {invoice};
	return ti_num(w, sql, 1, params);
}

static char *inv_text(struct ti *w, const char *col, const char *invoice)
{
	char sql[200];

	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM invoices WHERE id = $1::uuid", col);
	const char *params[] = {invoice};
	return ti_str(w, sql, 1, params);
}

static void expect_status(struct ti *w, const char *invoice, const char *st)
{
	char *s = inv_text(w, "status", invoice);

	cr_assert_str_eq(s, st, "invoice %s", invoice);
	free(s);
}

/* The example's inputs: four numbers, 131 calls, 40 SMS, and records
 * that must not count (before, after, unrated). */
static void worked_example(struct ti *w, char account[40])
{
	ti_account(w, "America/New_York", 1, 88750, 3, account);
	ti_own(w, account, "+14155550100", "2026-10-01T12:00:00Z", NULL,
	       "purchase", 1000000, 500000);
	/* Nov 10, 15:00 in New York */
	ti_own(w, account, "+14155550101", "2026-11-10T20:00:00Z", NULL,
	       "purchase", 1150000, 500000);
	/* released Nov 20, 12:00 in New York */
	ti_own(w, account, "+14155550102", "2026-09-01T12:00:00Z",
	       "2026-11-20T17:00:00Z", "purchase", 990000, 250000);
	/* Nov 3, 10:00 to 18:00 in New York */
	ti_own(w, account, "+14155550103", "2026-11-03T15:00:00Z",
	       "2026-11-03T23:00:00Z", "purchase", 2000000, 0);
	/* 130 x 18,000 + 5,678 = 2,345,678 */
	ti_usage(w, account, "outbound_call", "2026-11-05T10:00:00Z", 130,
	         18000);
	ti_usage(w, account, "outbound_call", "2026-11-30T23:00:00Z", 1, 5678);
	ti_usage(w, account, "sms_sent", "2026-11-01T04:00:00Z", 40, 7900);
	/* Oct 31, 23:59:59 in New York; Dec 1, 00:00 in New York */
	ti_usage(w, account, "outbound_call", "2026-11-01T03:59:59Z", 1, 1000);
	ti_usage(w, account, "outbound_call", NOV_END, 1, 1000);
	const char *params[] = {account};
	ti_sql(w,
	       "INSERT INTO usage_records (account_id, e164, event_type, "
	       "direction, carrier, carrier_cdr_id, started_at, currency) "
	       "VALUES ($1::uuid, '+14155550100', 'sms_sent', 'outbound', "
	       "'test', gen_random_uuid()::text, '2026-11-15T12:00:00Z', "
	       "'USD')",
	       1, params);
}

Test(invoicing, worked_example_to_the_micro_unit, .timeout = 180)
{
	struct ti w;
	char account[40], op[40], invoice[40], again[40];
	char *lines, *lines_after, *number;

	ti_start(&w, 1, NULL);
	worked_example(&w, account);
	ti_generate(&w, account, NOV_START, NOV_END, op);
	ti_op_invoice(&w, op, invoice);
	expect_status(&w, invoice, "draft");
	lines = ti_str(&w, lines_sql, 1, (const char *[]){invoice});
	cr_log_info("lines: %s", lines);
	cr_assert_str_eq(lines, "1|number_monthly|+14155550100|1|30|30|1000000;"
	                        "2|number_monthly|+14155550101|1|21|30|805000;"
	                        "3|number_monthly|+14155550102|1|20|30|660000;"
	                        "4|number_monthly|+14155550103|1|1|30|66667;"
	                        "5|number_setup|+14155550101|1|500000;"
	                        "6|usage|outbound_call|7860|2345678;"
	                        "7|usage|sms_sent|40|316000");
	cr_assert_eq(inv_num(&w, "subtotal_micros", invoice), 5693345);
	cr_assert_eq(inv_num(&w, "tax_micros", invoice), 505284);
	cr_assert_eq(inv_num(&w, "total_micros", invoice), 6198629);
	cr_assert_eq(inv_num(&w, "amount_due_micros", invoice), 6200000);
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT count(*) FROM outbox WHERE payload "
	                        "LIKE '%\"type\":\"invoice.created\"%' AND "
	                        "message_key = $1",
	                        account),
	             1);

	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account, invoice,
	               NULL, op);
	ti_op_invoice(&w, op, again);
	cr_assert_str_eq(again, invoice);
	expect_status(&w, invoice, "finalized");
	number = inv_text(&w, "number", invoice);
	char want[40];
	snprintf(want, sizeof(want), "%.8s-000001", account);
	for (char *c = want; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	cr_assert_str_eq(number, want);
	cr_assert_eq(inv_num(&w, "total_micros", invoice), 6198629);
	cr_assert_eq(inv_num(&w, "amount_due_micros", invoice), 6200000);
	cr_assert_eq(inv_num(&w, "(due_at = issued_at)::int", invoice), 1);
	cr_assert_eq(inv_num(&w, "(usage_cutoff IS NOT NULL)::int", invoice),
	             1);

	/* generating again gives the same invoice, untouched */
	ti_generate(&w, account, NOV_START, NOV_END, op);
	ti_op_invoice(&w, op, again);
	cr_assert_str_eq(again, invoice);
	lines_after = ti_str(&w, lines_sql, 1, (const char *[]){invoice});
	cr_assert_str_eq(lines_after, lines);
	free(lines_after);
	lines_after = inv_text(&w, "number", invoice);
	cr_assert_str_eq(lines_after, number);
	free(lines_after);
	expect_status(&w, invoice, "finalized");
	free(number);
	free(lines);
	ti_stop(&w);
}

Test(invoicing, draft_recomputed_and_late_usage_billed_next, .timeout = 180)
{
	struct ti w;
	char account[40], op[40], invoice[40], dec[40];
	const char *dec_start = "2026-12-01T05:00:00Z";
	const char *dec_end = "2027-01-01T05:00:00Z";

	ti_start(&w, 1, NULL);
	ti_account(&w, "America/New_York", 1, 0, 3, account);
	ti_usage(&w, account, "sms_sent", "2026-11-10T12:00:00Z", 10, 1000);
	ti_generate(&w, account, NOV_START, NOV_END, op);
	ti_op_invoice(&w, op, invoice);
	cr_assert_eq(inv_num(&w, "total_micros", invoice), 10000);
	/* a late CDR inside the period, during the grace period */
	ti_usage(&w, account, "sms_sent", "2026-11-30T12:00:00Z", 1, 2500);
	ti_generate(&w, account, NOV_START, NOV_END, op);
	ti_op_invoice(&w, op, invoice);
	cr_assert_eq(inv_num(&w, "total_micros", invoice), 12500);
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT count(*) FROM invoice_lines WHERE "
	                        "invoice_id = $1::uuid",
	                        invoice),
	             1, "recomputed from scratch, not added to");
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account, invoice,
	               NULL, op);
	json_decref(ti_op_wait(&w, op));
	/* later than the cutoff: not on the finalized invoice, on the next */
	ti_usage(&w, account, "sms_sent", "2026-11-20T12:00:00Z", 3, 700);
	ti_usage(&w, account, "sms_sent", "2026-12-02T12:00:00Z", 1, 400);
	/* December has started (the current period may be drafted) */
	ti_generate(&w, account, dec_start, dec_end, op);
	ti_op_invoice(&w, op, dec);
	cr_assert_eq(inv_num(&w, "total_micros", invoice), 12500,
	             "a finalized invoice never changes");
	char *lines = ti_str(&w, lines_sql, 1, (const char *[]){dec});
	cr_log_info("december: %s", lines);
	cr_assert_str_eq(lines, "1|usage|sms_sent|1|400;"
	                        "2|late_usage|sms_sent|3|2100");
	free(lines);
	cr_assert_eq(inv_num(&w, "total_micros", dec), 2500);
	/* the generate command of a period in the future fails */
	ti_generate(&w, account, "2027-01-01T05:00:00Z", "2027-02-01T05:00:00Z",
	            op);
	ti_op_failed(&w, op, "invalid_period");
	/* and one that is not the account's period */
	ti_generate(&w, account, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z",
	            op);
	ti_op_failed(&w, op, "invalid_period");
	ti_stop(&w);
}

/* Twenty accounts, each asked for twice in a row (one batch) and seen by
 * two worker processes at once (two groups on the topic): one invoice
 * each, every operation answered with it. */
Test(invoicing, one_invoice_per_period_when_raced, .timeout = 240)
{
	enum { N = 20 };
	struct ti w;
	char account[N][40], op[N][2][40], invoice[40], other[40];

	ti_start(&w, 2, NULL);
	for (int i = 0; i < N; i++) {
		ti_account(&w, "Europe/Paris", 15, 200000, 3, account[i]);
		ti_own(&w, account[i], "+33612345678", "2026-01-01T00:00:00Z",
		       NULL, "purchase", 3000000, 0);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 2; k++)
			ti_generate(&w, account[i], "2026-10-14T22:00:00Z",
			            "2026-11-14T23:00:00Z", op[i][k]);
	for (int i = 0; i < N; i++) {
		ti_op_invoice(&w, op[i][0], invoice);
		ti_op_invoice(&w, op[i][1], other);
		cr_assert_str_eq(invoice, other);
		cr_assert_eq(t_pg_count(w.pg,
		                        "SELECT count(*) FROM invoices WHERE "
		                        "account_id = $1::uuid",
		                        account[i]),
		             1);
		/* the whole month, tax 20 % */
		cr_assert_eq(inv_num(&w, "total_micros", invoice), 3600000);
		cr_assert_eq(t_pg_count(w.pg,
		                        "SELECT count(*) FROM invoice_lines "
		                        "WHERE invoice_id = $1::uuid",
		                        invoice),
		             1);
	}
	/* both workers ran: each group committed offsets */
	ti_stop(&w);
}

/* Numbers are gapless per account: a refused finalization takes none. */
Test(invoicing, numbers_gapless, .timeout = 180)
{
	static const char *const periods[][2] = {
	        {"2026-08-01T00:00:00Z", "2026-09-01T00:00:00Z"},
	        {"2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z"},
	        {"2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"},
	};
	struct ti w;
	char account[40], op[40], invoice[3][40];

	ti_start(&w, 1, NULL);
	ti_account(&w, "UTC", 1, 0, 3, account);
	ti_own(&w, account, "+14155550100", "2026-07-01T00:00:00Z", NULL,
	       "purchase", 1000000, 0);
	for (int i = 0; i < 3; i++) {
		ti_generate(&w, account, periods[i][0], periods[i][1], op);
		ti_op_invoice(&w, op, invoice[i]);
	}
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account,
	               invoice[1], NULL, op);
	json_decref(ti_op_wait(&w, op));
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account,
	               invoice[1], NULL, op);
	ti_op_failed(&w, op, "invalid_state");
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account,
	               invoice[0], NULL, op);
	json_decref(ti_op_wait(&w, op));
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account,
	               invoice[2], NULL, op);
	json_decref(ti_op_wait(&w, op));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(inv_num(&w, "seq", invoice[i]), i == 1   ? 1
		                                             : i == 0 ? 2
		                                                      : 3);
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT next_invoice_seq FROM "
	                        "billing_accounts WHERE account_id = $1::uuid",
	                        account),
	             4);
	ti_stop(&w);
}

/* Credit notes: off the amount due of an unpaid invoice (to paid at 0),
 * never above the total, onto the balance for a paid one, then taken off
 * the next invoice. */
Test(invoicing, credit_notes, .timeout = 180)
{
	struct ti w;
	char account[40], op[40], oct[40], nov[40];

	ti_start(&w, 1, NULL);
	ti_account(&w, "UTC", 1, 100000, 3, account);
	ti_own(&w, account, "+14155550100", "2026-07-01T00:00:00Z", NULL,
	       "purchase", 10000000, 0);
	ti_generate(&w, account, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z",
	            op);
	ti_op_invoice(&w, op, oct);
	/* a credit note on a draft is refused */
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)1000, "reason", "goodwill"),
	               op);
	ti_op_failed(&w, op, "invalid_state");
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account, oct, NULL,
	               op);
	json_decref(ti_op_wait(&w, op));
	cr_assert_eq(inv_num(&w, "total_micros", oct), 11000000);
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)4000000, "reason", "outage"),
	               op);
	json_t *row = ti_op_wait(&w, op);
	cr_assert_str_eq(vox_json_str(row, "status"), "completed");
	char want[40];
	snprintf(want, sizeof(want), "CN-%.8s-000001", account);
	for (char *c = want; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	cr_assert_str_eq(vox_json_str(json_object_get(row, "result"), "number"),
	                 want);
	json_decref(row);
	cr_assert_eq(inv_num(&w, "amount_due_micros", oct), 7000000);
	/* more than what is left of the total */
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)7000001, "reason", "too much"),
	               op);
	ti_op_failed(&w, op, "credit_exceeds_total");
	/* bad amounts and reasons */
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros", (json_int_t)0,
	                         "reason", "zero"),
	               op);
	ti_op_failed(&w, op, "invalid_request");
	char reason[520];
	memset(reason, 'r', 501);
	reason[501] = '\0';
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros", (json_int_t)1,
	                         "reason", reason),
	               op);
	ti_op_failed(&w, op, "invalid_request");
	reason[500] = '\0'; /* 500 characters: the most */
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)6000000, "reason", reason),
	               op);
	json_decref(ti_op_wait(&w, op));
	cr_assert_eq(inv_num(&w, "amount_due_micros", oct), 1000000);
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, oct,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)1000000, "reason", "the rest"),
	               op);
	json_decref(ti_op_wait(&w, op));
	expect_status(&w, oct, "paid");
	cr_assert_eq(inv_num(&w, "amount_due_micros", oct), 0);

	/* November: paid (the payment is played by SQL here: payments are
	 * test_payments'), then a credit note onto the balance */
	ti_generate(&w, account, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z",
	            op);
	ti_op_invoice(&w, op, nov);
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account, nov, NULL,
	               op);
	json_decref(ti_op_wait(&w, op));
	const char *params[] = {nov};
	ti_sql(&w,
	       "UPDATE invoices SET amount_paid_micros = amount_due_micros, "
	       "amount_due_micros = 0, status = 'paid', paid_at = now() WHERE "
	       "id = $1::uuid",
	       1, params);
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, nov,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)2500000, "reason", "refund"),
	               op);
	json_decref(ti_op_wait(&w, op));
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT credit_balance_micros FROM "
	                        "billing_accounts WHERE account_id = $1::uuid",
	                        account),
	             2500000);
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT count(*) FROM credit_notes WHERE "
	                        "account_id = $1::uuid",
	                        account),
	             4, "CN 1, 2, 3 on October, 4 on November");
	/* December's draft takes the credit off; finalizing uses it up */
	char dec[40];
	ti_generate(&w, account, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z",
	            op);
	ti_op_invoice(&w, op, dec);
	cr_assert_eq(inv_num(&w, "credit_applied_micros", dec), 2500000);
	cr_assert_eq(inv_num(&w, "subtotal_micros", dec), 7500000);
	cr_assert_eq(inv_num(&w, "total_micros", dec), 8250000);
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account, dec, NULL,
	               op);
	json_decref(ti_op_wait(&w, op));
	cr_assert_eq(t_pg_count(w.pg,
	                        "SELECT credit_balance_micros FROM "
	                        "billing_accounts WHERE account_id = $1::uuid",
	                        account),
	             0);
	ti_stop(&w);
}

Test(invoicing, void_and_uncollectible, .timeout = 180)
{
	struct ti w;
	char account[40], op[40], a[40], b[40], missing[40];

	ti_start(&w, 1, NULL);
	ti_account(&w, "Asia/Tokyo", 28, 0, 3, account);
	ti_own(&w, account, "+81312345678", "2026-01-01T00:00:00Z", NULL,
	       "purchase", 5000000, 0);
	/* anchor 28 in Tokyo: [Sep 28, Oct 28) and [Oct 28, Nov 28) local */
	ti_generate(&w, account, "2026-09-27T15:00:00Z", "2026-10-27T15:00:00Z",
	            op);
	ti_op_invoice(&w, op, a);
	ti_generate(&w, account, "2026-10-27T15:00:00Z", "2026-11-27T15:00:00Z",
	            op);
	ti_op_invoice(&w, op, b);
	ti_invoice_cmd(&w, "vox.invoice.void_requested", account, a, NULL, op);
	ti_op_failed(&w, op, "invalid_state");
	ti_invoice_cmd(&w, "vox.invoice.mark_uncollectible_requested", account,
	               a, NULL, op);
	ti_op_failed(&w, op, "invalid_state");
	for (int i = 0; i < 2; i++) {
		ti_invoice_cmd(&w, "vox.invoice.finalize_requested", account,
		               i ? b : a, NULL, op);
		json_decref(ti_op_wait(&w, op));
	}
	ti_invoice_cmd(&w, "vox.invoice.void_requested", account, a, NULL, op);
	json_decref(ti_op_wait(&w, op));
	expect_status(&w, a, "void");
	cr_assert_eq(inv_num(&w, "(voided_at IS NOT NULL)::int", a), 1);
	cr_assert_eq(inv_num(&w, "amount_due_micros", a), 0);
	cr_assert_eq(inv_num(&w, "seq", a), 1,
	             "a void invoice keeps its number");
	ti_invoice_cmd(&w, "vox.invoice.void_requested", account, a, NULL, op);
	ti_op_failed(&w, op, "invalid_state");
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, a,
	               json_pack("{s:I, s:s}", "amount_micros", (json_int_t)1,
	                         "reason", "x"),
	               op);
	ti_op_failed(&w, op, "invalid_state");
	ti_invoice_cmd(&w, "vox.invoice.mark_uncollectible_requested", account,
	               b, NULL, op);
	json_decref(ti_op_wait(&w, op));
	expect_status(&w, b, "uncollectible");
	/* still payable: a credit note for all of it pays it */
	ti_invoice_cmd(&w, "vox.credit_note.create_requested", account, b,
	               json_pack("{s:I, s:s}", "amount_micros",
	                         (json_int_t)5000000, "reason", "settled"),
	               op);
	json_decref(ti_op_wait(&w, op));
	expect_status(&w, b, "paid");
	/* another account's invoice, or none: not found */
	char other[40];
	ti_account(&w, "UTC", 1, 0, 3, other);
	ti_invoice_cmd(&w, "vox.invoice.finalize_requested", other, b, NULL,
	               op);
	ti_op_failed(&w, op, "not_found");
	vox_uuid7(missing);
	ti_invoice_cmd(&w, "vox.invoice.void_requested", account, missing, NULL,
	               op);
	ti_op_failed(&w, op, "not_found");
	ti_stop(&w);
}

struct dlq {
	int count;
	char reasons[16][240];
};

static void on_dlq(void *arg, const char *payload, size_t len,
                   const char *header)
{
	struct dlq *d = arg;

	(void)payload, (void)len;
	if (d->count < 16)
		snprintf(d->reasons[d->count], sizeof(d->reasons[0]), "%s",
		         header ? header : "");
	d->count++;
}

static bool has_reason(const struct dlq *d, const char *part)
{
	for (int i = 0; i < d->count && i < 16; i++)
		if (strstr(d->reasons[i], part) != NULL)
			return true;
	return false;
}

/* Commands that can never be made are dead-lettered with a reason; the
 * good ones around them are made. */
Test(invoicing, bad_commands_dead_lettered, .timeout = 180)
{
	struct ti w;
	char account[40], op[40], invoice[40], dlq_topic[200], nobody[40];
	struct dlq d = {0};

	ti_start(&w, 1, NULL);
	ti_account(&w, "UTC", 1, 0, 3, account);
	vox_uuid7(nobody);
	ti_send_raw(&w, account, "not json");
	ti_send(&w, "vox.invoice.generate_requested", account,
	        json_pack("{s:s}", "account_id", account));
	ti_send(&w, "vox.invoice.generate_requested", account,
	        json_pack("{s:s, s:s, s:s}", "account_id", account,
	                  "period_start", "yesterday", "period_end", "today"));
	/* no operation to fail: dead-lettered with the reason */
	ti_send(&w, "vox.invoice.generate_requested", account,
	        json_pack("{s:s, s:s, s:s}", "account_id", account,
	                  "period_start", "2026-10-02T00:00:00Z", "period_end",
	                  "2026-11-02T00:00:00Z"));
	ti_send(&w, "vox.invoice.generate_requested", nobody,
	        json_pack("{s:s, s:s, s:s}", "account_id", nobody,
	                  "period_start", "2026-10-01T00:00:00Z", "period_end",
	                  "2026-11-01T00:00:00Z"));
	ti_send(&w, "vox.invoice.finalize_requested", account,
	        json_pack("{s:s, s:s}", "account_id", account, "invoice_id",
	                  "not-a-uuid"));
	json_t *ev = vox_event_new("vox.invoice.teleport_requested",
	                           "/voxlink/ingress", NULL, account, NULL,
	                           json_pack("{s:s}", "account_id", account));
	char *text = json_dumps(ev, JSON_COMPACT);
	ti_send_raw(&w, account, text);
	free(text);
	json_decref(ev);
	/* with an operation: the operation fails */
	ti_generate(&w, nobody, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z",
	            op);
	ti_op_failed(&w, op, "not_found");
	ti_generate(&w, account, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z",
	            op);
	ti_op_invoice(&w, op, invoice);
	snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", w.topic);
	t_consume_all(dlq_topic, 3000, "vox-dlq-reason", on_dlq, &d);
	for (int i = 0; i < d.count && i < 16; i++)
		cr_log_info("dead letter: %s", d.reasons[i]);
	cr_assert_eq(d.count, 7, "%d dead letters", d.count);
	cr_assert(has_reason(&d, "invalid envelope"));
	cr_assert(has_reason(&d, "are required"));
	cr_assert(has_reason(&d, "invalid_period: period_start"));
	cr_assert(has_reason(&d, "invalid_period: the period"));
	cr_assert(has_reason(&d, "not_found"));
	cr_assert(has_reason(&d, "invoice_id must be a UUID"));
	cr_assert(has_reason(&d, "no handler"));
	ti_stop(&w);
}
