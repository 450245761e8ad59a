/*
 * Invoices (docs/BILLING.md "API"): the list and one invoice with its
 * lines, credit notes and payments, read synchronously from PostgreSQL;
 * and the commands (generate, finalize, void, mark-uncollectible, pay,
 * credit notes), checked here against what the ingress can see (404 for
 * what is not the caller's, 409 invalid_state for a transition the state
 * refuses, 422 for a period or an amount the rules refuse), then published
 * on vox.cmd.invoicing keyed by the account id and answered 202 with an
 * operation. The invoicing worker checks again in its transaction: the
 * state may change between here and there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_json.h"
#include "vox_money.h"

#define CREDIT_REASON_MAX 500

bool billing_whole_number(const json_t *v, long long *out)
{
	double d;

	if (json_is_integer(v)) {
		*out = (long long)json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!(d > -9.2e18 && d < 9.2e18) || d != (double)(long long)d)
		return false;
	*out = (long long)d;
	return true;
}

long long billing_micros(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? 0
	               : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

static json_t *int_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_integer(billing_micros(res, row, col));
}

json_t *billing_invoice_json(const PGresult *res, int row)
{
	static const struct {
		const char *name;
		int col;
	} money[] = {
	        {"subtotal_micros", IC_SUBTOTAL},
	        {"tax_micros", IC_TAX},
	        {"total_micros", IC_TOTAL},
	        {"credit_applied_micros", IC_CREDIT_APPLIED},
	        {"credited_micros", IC_CREDITED},
	        {"amount_paid_micros", IC_PAID},
	        {"amount_due_micros", IC_DUE},
	};
	static const struct {
		const char *name;
		int col;
	} times[] = {
	        {"issued_at", IC_ISSUED_AT},
	        {"due_at", IC_DUE_AT},
	        {"paid_at", IC_PAID_AT},
	        {"voided_at", IC_VOIDED_AT},
	        {"marked_uncollectible_at", IC_UNCOLLECTIBLE_AT},
	        {"grace_until", IC_GRACE_UNTIL},
	        {"created_at", IC_CREATED_AT},
	        {"updated_at", IC_UPDATED_AT},
	};
	const char *currency = PQgetvalue(res, row, IC_CURRENCY);
	char due[32], total[32];
	json_t *o;

	o = json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:I}", "id",
	              PQgetvalue(res, row, IC_ID), "number",
	              text_or_null(res, row, IC_NUMBER), "status",
	              PQgetvalue(res, row, IC_STATUS), "period_start",
	              PQgetvalue(res, row, IC_PERIOD_START), "period_end",
	              PQgetvalue(res, row, IC_PERIOD_END), "timezone",
	              PQgetvalue(res, row, IC_TIMEZONE), "currency", currency,
	              "tax_rate_ppm",
	              (json_int_t)billing_micros(res, row, IC_TAX_RATE));
	for (size_t i = 0; i < sizeof(money) / sizeof(money[0]); i++)
		json_object_set_new(
		        o, money[i].name,
		        json_integer(billing_micros(res, row, money[i].col)));
	/* For people: rounded to the minor unit. The micros are the truth. */
	vox_money_format_minor(billing_micros(res, row, IC_TOTAL), currency,
	                       total);
	vox_money_format_minor(billing_micros(res, row, IC_DUE), currency, due);
	json_object_set_new(o, "total", json_string(total));
	json_object_set_new(o, "amount_due", json_string(due));
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
		json_object_set_new(o, times[i].name,
		                    text_or_null(res, row, times[i].col));
	return o;
}

PGresult *billing_invoice_lookup(vox_http_req_t *req, ingress_req_t *ir,
                                 const char *id)
{
	return ingress_lookup(req, ir, "ingress_invoice_get",
	                      "SELECT " INVOICE_COLUMNS
	                      "FROM invoices i JOIN accounts a ON a.id = "
	                      "i.account_id WHERE i.id = $1 AND i.account_id = "
	                      "$2",
	                      id, "invoice_not_found", "invoice");
}

PGresult *billing_invoice_lines(vox_http_req_t *req, ingress_req_t *ir,
                                const char *id)
{
	const char *params[] = {id};

	return ingress_query(
	        ir->in, req, "ingress_invoice_lines",
	        "SELECT line_no, kind, description, e164, event_type, "
	        "quantity, unit, unit_price_micros, amount_micros, days, "
	        "period_days, vox_iso(period_start), vox_iso(period_end), "
	        "metadata::text FROM invoice_lines WHERE invoice_id = $1 "
	        "ORDER BY line_no",
	        1, params);
}

PGresult *billing_invoice_credit_notes(vox_http_req_t *req, ingress_req_t *ir,
                                       const char *id)
{
	const char *params[] = {id};

	return ingress_query(ir->in, req, "ingress_invoice_credit_notes",
	                     "SELECT number, amount_micros, reason, "
	                     "applied_to, vox_iso(created_at), id FROM "
	                     "credit_notes WHERE invoice_id = $1 ORDER BY seq",
	                     1, params);
}

static json_t *line_json(const PGresult *res, int i)
{
	json_t *meta =
	        PQgetisnull(res, i, LC_METADATA)
	                ? json_null()
	                : json_loads(PQgetvalue(res, i, LC_METADATA), 0, NULL);

	return json_pack(
	        "{s:I, s:s, s:s, s:o, s:o, s:I, s:s, s:I, s:I, s:o, s:o, s:o, "
	        "s:o, s:o}",
	        "line_no", (json_int_t)billing_micros(res, i, LC_NO), "kind",
	        PQgetvalue(res, i, LC_KIND), "description",
	        PQgetvalue(res, i, LC_DESCRIPTION), "phone_number",
	        text_or_null(res, i, LC_E164), "event_type",
	        text_or_null(res, i, LC_EVENT_TYPE), "quantity",
	        (json_int_t)billing_micros(res, i, LC_QUANTITY), "unit",
	        PQgetvalue(res, i, LC_UNIT), "unit_price_micros",
	        (json_int_t)billing_micros(res, i, LC_UNIT_PRICE),
	        "amount_micros", (json_int_t)billing_micros(res, i, LC_AMOUNT),
	        "days", int_or_null(res, i, LC_DAYS), "period_days",
	        int_or_null(res, i, LC_PERIOD_DAYS), "period_start",
	        text_or_null(res, i, LC_PERIOD_START), "period_end",
	        text_or_null(res, i, LC_PERIOD_END), "metadata",
	        meta ? meta : json_null());
}

static json_t *note_json(const PGresult *res, int i)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id",
	                 PQgetvalue(res, i, 5), "number", PQgetvalue(res, i, 0),
	                 "amount_micros", (json_int_t)billing_micros(res, i, 1),
	                 "reason", PQgetvalue(res, i, 2), "applied_to",
	                 PQgetvalue(res, i, 3), "created_at",
	                 PQgetvalue(res, i, 4));
}

static json_t *payment_json(const PGresult *res, int i)
{
	return json_pack(
	        "{s:s, s:s, s:I, s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:s}", "id",
	        PQgetvalue(res, i, 0), "status", PQgetvalue(res, i, 1),
	        "amount_micros", (json_int_t)billing_micros(res, i, 2),
	        "currency", PQgetvalue(res, i, 3), "payment_method_id",
	        text_or_null(res, i, 4), "attempts",
	        (json_int_t)billing_micros(res, i, 5), "failure_code",
	        text_or_null(res, i, 6), "failure_reason",
	        text_or_null(res, i, 7), "next_attempt_at",
	        text_or_null(res, i, 8), "succeeded_at",
	        text_or_null(res, i, 9), "created_at", PQgetvalue(res, i, 10));
}

static json_t *rows_json(const PGresult *res,
                         json_t *(*fn)(const PGresult *res, int i))
{
	json_t *list = json_array();

	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, fn(res, i));
	return list;
}

static json_t *list_row(const PGresult *res, int i)
{
	return billing_invoice_json(res, i);
}

static const char *const statuses[] = {"draft", "finalized",     "paid",
                                       "void",  "uncollectible", NULL};

void ingress_invoice_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *status, *cursor;
	char limit[16];
	PGresult *res;
	size_t k = 0;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	status = vox_http_query(req, "status");
	while (status != NULL && statuses[k] != NULL &&
	       strcmp(statuses[k], status) != 0)
		k++;
	if (status != NULL && statuses[k] == NULL) {
		ingress_bad_param(req, "status",
		                  "one of draft, finalized, paid, void, "
		                  "uncollectible");
		return;
	}
	const char *params[] = {ir->who.account_id, status, cursor, limit};
	/* Newest period first; the cursor is the last id shown, whose
	 * (period_start, id) the next page starts after. */
	res = ingress_query(
	        ir->in, req, "ingress_invoice_list",
	        "SELECT " INVOICE_COLUMNS
	        "FROM invoices i JOIN accounts a ON a.id = i.account_id "
	        "WHERE i.account_id = $1 AND ($2::text IS NULL OR i.status = "
	        "$2) AND ($3::uuid IS NULL OR (i.period_start, i.id) < (SELECT "
	        "c.period_start, c.id FROM invoices c WHERE c.id = $3::uuid "
	        "AND c.account_id = $1)) ORDER BY i.period_start DESC, i.id "
	        "DESC LIMIT $4::int",
	        4, params);
	if (res == NULL)
		return;
	vox_http_reply_json(
	        req, 200,
	        ingress_page(res, strtol(limit, NULL, 10) - 1, list_row));
	PQclear(res);
}

void ingress_invoice_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *inv, *lines = NULL, *notes = NULL, *pays = NULL;
	const char *params[] = {id};
	json_t *o;

	if (ir == NULL || (inv = billing_invoice_lookup(req, ir, id)) == NULL)
		return;
	if ((lines = billing_invoice_lines(req, ir, id)) == NULL ||
	    (notes = billing_invoice_credit_notes(req, ir, id)) == NULL ||
	    (pays = ingress_query(
	             ir->in, req, "ingress_invoice_payments",
	             "SELECT id, status, amount_micros, currency, "
	             "payment_method_id, attempts, failure_code, "
	             "failure_reason, vox_iso(next_attempt_at), "
	             "vox_iso(succeeded_at), vox_iso(created_at) FROM payments "
	             "WHERE invoice_id = $1 ORDER BY created_at, id",
	             1, params)) == NULL)
		goto out;
	o = billing_invoice_json(inv, 0);
	json_object_set_new(o, "lines", rows_json(lines, line_json));
	json_object_set_new(o, "credit_notes", rows_json(notes, note_json));
	json_object_set_new(o, "payments", rows_json(pays, payment_json));
	vox_http_reply_json(req, 200, o);
out:
	PQclear(inv);
	PQclear(lines);
	PQclear(notes);
	PQclear(pays);
}

/* ---------------------------------------------------------------- commands */

static bool bad_field(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[240];

	snprintf(msg, sizeof(msg), "%s %s", field, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", field));
	return false;
}

/* Strict YYYY-MM-DD with a real day (years 2000..2999). */
static bool date_ok(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    strspn(s, "0123456789") != 4 || strspn(s + 5, "0123456789") != 2 ||
	    strspn(s + 8, "0123456789") != 2)
		return false;
	y = (int)strtol(s, NULL, 10);
	m = (int)strtol(s + 5, NULL, 10);
	d = (int)strtol(s + 8, NULL, 10);
	if (y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1 ||
	    d > mdays[m - 1])
		return false;
	return !(m == 2 && d == 29 &&
	         !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
}

/* The period containing local midnight of date in the account's zone, for
 * its anchor day: is date its start, has it started. */
static const char period_sql[] =
        "SELECT vox_iso(p.period_start), vox_iso(p.period_end), "
        "p.period_start = s.want, p.period_start <= now(), "
        "to_char(p.period_start AT TIME ZONE s.tz, 'YYYY-MM-DD') FROM "
        "(SELECT a.timezone AS tz, COALESCE(b.anchor_day, 1::smallint) AS "
        "anchor, ($2::date::timestamp AT TIME ZONE a.timezone) AS want FROM "
        "accounts a LEFT JOIN billing_accounts b ON b.account_id = a.id "
        "WHERE a.id = $1) s, billing_period_of(s.want, s.anchor, s.tz) p";

void ingress_invoice_generate(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"period_start", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *date;
	PGresult *res = NULL;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	date = vox_json_str(body, "period_start");
	if (!date_ok(date)) {
		bad_field(req, "period_start",
		          "must be a date YYYY-MM-DD: the first local day of a "
		          "billing period");
		goto out;
	}
	if (!idem_begin(req, ir))
		goto out;
	const char *params[] = {ir->who.account_id, date};
	res = ingress_query(ir->in, req, "ingress_invoice_period", period_sql,
	                    2, params);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		ingress_error(req, 404, "account_not_found",
		              "no account has this id", NULL);
	} else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		char msg[200];

		snprintf(msg, sizeof(msg),
		         "%s is not the first day of a billing period of this "
		         "account (its anchor day, in its time zone): the "
		         "period containing it starts on %s",
		         date, PQgetvalue(res, 0, 4));
		ingress_error(req, 422, "invalid_period", msg,
		              json_pack("{s:s, s:s}", "field", "period_start",
		                        "period_start", PQgetvalue(res, 0, 4)));
	} else if (strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
		ingress_error(req, 422, "invalid_period",
		              "this billing period has not started yet",
		              json_pack("{s:s, s:s}", "field", "period_start",
		                        "period_start", PQgetvalue(res, 0, 4)));
	} else {
		ir->kind = "invoice.generate";
		ingress_command(req, ir, BILLING_TOPIC,
		                "vox.invoice.generate_requested",
		                ir->who.account_id,
		                json_pack("{s:s, s:s, s:s}", "account_id",
		                          ir->who.account_id, "period_start",
		                          PQgetvalue(res, 0, 0), "period_end",
		                          PQgetvalue(res, 0, 1)));
	}
out:
	PQclear(res);
	json_decref(body);
}

/* An invoice action: no body (or {}), the key first (a retry after the
 * worker acted replays the 202), the invoice, its state, the command. */
static void invoice_action(vox_http_req_t *req, void *ctx, const char *kind,
                           const char *type, const char *const *from)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	const char *status;
	PGresult *inv;
	json_t *body;
	size_t k = 0;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	if (!idem_begin(req, ir) ||
	    (inv = billing_invoice_lookup(req, ir, id)) == NULL)
		return;
	status = PQgetvalue(inv, 0, IC_STATUS);
	while (from[k] != NULL && strcmp(from[k], status) != 0)
		k++;
	if (from[k] == NULL) {
		ingress_conflict(req, "invoice", status);
	} else {
		ir->kind = kind;
		ingress_command(
		        req, ir, BILLING_TOPIC, type, ir->who.account_id,
		        json_pack("{s:s, s:s}", "account_id",
		                  ir->who.account_id, "invoice_id", id));
	}
	PQclear(inv);
}

void ingress_invoice_finalize(vox_http_req_t *req, void *ctx)
{
	static const char *const from[] = {"draft", NULL};

	invoice_action(req, ctx, "invoice.finalize",
	               "vox.invoice.finalize_requested", from);
}

void ingress_invoice_void(vox_http_req_t *req, void *ctx)
{
	static const char *const from[] = {"finalized", NULL};

	invoice_action(req, ctx, "invoice.void", "vox.invoice.void_requested",
	               from);
}

void ingress_invoice_uncollectible(vox_http_req_t *req, void *ctx)
{
	static const char *const from[] = {"finalized", NULL};

	invoice_action(req, ctx, "invoice.mark_uncollectible",
	               "vox.invoice.mark_uncollectible_requested", from);
}

/* pay: a finalized or uncollectible invoice with something due, no
 * payment in flight, and a default payment method to charge. */
void ingress_invoice_pay(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *inv, *res = NULL;
	const char *status;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	if (!idem_begin(req, ir) ||
	    (inv = billing_invoice_lookup(req, ir, id)) == NULL)
		return;
	status = PQgetvalue(inv, 0, IC_STATUS);
	if ((strcmp(status, "finalized") != 0 &&
	     strcmp(status, "uncollectible") != 0) ||
	    billing_micros(inv, 0, IC_DUE) <= 0) {
		ingress_conflict(req, "invoice", status);
		goto out;
	}
	const char *params[] = {id, ir->who.account_id};
	res = ingress_query(
	        ir->in, req, "ingress_invoice_pay_check",
	        "SELECT EXISTS (SELECT 1 FROM payments WHERE invoice_id = $1 "
	        "AND status IN ('pending', 'processing')), EXISTS (SELECT 1 "
	        "FROM payment_methods WHERE account_id = $2 AND is_default AND "
	        "deleted_at IS NULL AND status = 'active')",
	        2, params);
	if (res == NULL)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		ingress_error(
		        req, 409, "payment_in_progress",
		        "a payment of this invoice is in flight: follow it "
		        "on the invoice (payments)",
		        NULL);
	} else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		ingress_error(
		        req, 409, "no_payment_method",
		        "the account has no active default payment method: "
		        "add one (POST /v1/payment-methods)",
		        NULL);
	} else {
		ir->kind = "invoice.pay";
		ingress_command(req, ir, BILLING_TOPIC,
		                "vox.invoice.pay_requested", ir->who.account_id,
		                json_pack("{s:s, s:s}", "account_id",
		                          ir->who.account_id, "invoice_id",
		                          id));
	}
out:
	PQclear(res);
	PQclear(inv);
}

/* UTF-8 code points (jansson checked the encoding). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void ingress_credit_note_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"amount_micros", "reason", NULL};
	static const char *const from[] = {"finalized", "paid", "uncollectible",
	                                   NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	const json_t *amount;
	const char *reason, *status;
	PGresult *inv = NULL, *res = NULL;
	long long micros, total, available;
	json_t *body;
	size_t k = 0;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	amount = json_object_get(body, "amount_micros");
	reason = vox_json_str(body, "reason");
	if (!billing_whole_number(amount, &micros) || micros < 1) {
		bad_field(
		        req, "amount_micros",
		        "must be an integer of at least 1 (micro-units, up to "
		        "the invoice's total)");
		goto out;
	}
	if (reason == NULL || *reason == '\0' ||
	    utf8_chars(reason) > CREDIT_REASON_MAX) {
		bad_field(req, "reason",
		          "must be a text of 1 to 500 characters");
		goto out;
	}
	if (!idem_begin(req, ir) ||
	    (inv = billing_invoice_lookup(req, ir, id)) == NULL)
		goto out;
	status = PQgetvalue(inv, 0, IC_STATUS);
	while (from[k] != NULL && strcmp(from[k], status) != 0)
		k++;
	if (from[k] == NULL) {
		ingress_conflict(req, "invoice", status);
		goto out;
	}
	const char *params[] = {id};
	res = ingress_query(ir->in, req, "ingress_credit_note_sum",
	                    "SELECT COALESCE(sum(amount_micros), 0)::bigint "
	                    "FROM credit_notes WHERE invoice_id = $1",
	                    1, params);
	if (res == NULL)
		goto out;
	total = billing_micros(inv, 0, IC_TOTAL);
	available = total - billing_micros(res, 0, 0);
	if (micros > available) {
		char msg[200];

		snprintf(msg, sizeof(msg),
		         "amount_micros %lld is more than the %lld micro-units "
		         "of the invoice's total not yet credited",
		         micros, available < 0 ? 0 : available);
		ingress_error(
		        req, 422, "credit_note_too_large", msg,
		        json_pack("{s:s, s:I, s:I}", "field", "amount_micros",
		                  "total_micros", (json_int_t)total,
		                  "available_micros",
		                  (json_int_t)(available < 0 ? 0 : available)));
		goto out;
	}
	ir->kind = "credit_note.create";
	ingress_command(req, ir, BILLING_TOPIC,
	                "vox.credit_note.create_requested", ir->who.account_id,
	                json_pack("{s:s, s:s, s:I, s:s}", "account_id",
	                          ir->who.account_id, "invoice_id", id,
	                          "amount_micros", (json_int_t)micros, "reason",
	                          reason));
out:
	PQclear(res);
	PQclear(inv);
	json_decref(body);
}
