/*
 * Issue 14's acceptance 1 end to end, nothing played by the test: through
 * the real ingress (documents, porting API, the carrier's signed webhooks),
 * the carrier sandbox playing the losing carriers, the porting worker, the
 * metering worker and the notifications worker.
 *
 * 1. check -> draft -> LOA and invoice -> submit -> exception (wrong PIN)
 *    -> PATCH the PIN -> submit -> FOC confirmed -> ported: the number is
 *    active in GET /v1/numbers, a CDR pushed for it is rated, every move
 *    is in the order's history, reached vox.events and became a
 *    notification (mail in the SMTP sink).
 * 2. numbers of two losing carriers: split into two children, one ported,
 *    the other cancelled by its id before its FOC; the parent shows both
 *    and sums up as ported.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "test_notify_helpers.h"
#include "test_porting_helpers.h"
#include "vox_json.h"
#include "vox_uuid.h"

#define WAIT_MS 60000

/* The end user of the orders, with pin (NULL: none). */
static json_t *end_user(const char *account_number, const char *pin)
{
	json_t *u =
	        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s}",
	                  "authorized_name", "Ada Lovelace", "business_name",
	                  "Analytical Ltd", "service_address", "street",
	                  "1 Main St", "locality", "San Francisco",
	                  "administrative_area", "CA", "postal_code", "94105",
	                  "country", "US", "account_number", account_number);

	if (pin != NULL)
		json_object_set_new(u, "pin", json_string(pin));
	return u;
}

/* A draft of numbers (a JSON array, stolen) with documents; its id. */
static void draft(struct tp_world *w, json_t *numbers, json_t *user,
                  char id[40])
{
	char loa[40], invoice[40], path[120], foc[11], *body;
	json_t *doc;

	tp_document(w, "loa", loa);
	tp_document(w, "invoice", invoice);
	doc = json_pack("{s:o, s:o, s:{s:s, s:s}, s:s}", "phone_numbers",
	                numbers, "end_user", user, "documents", "loa", loa,
	                "invoice", invoice, "customer_reference", "e2e");
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	doc = tp_api(w, "POST", "/v1/porting-orders", body, 201);
	free(body);
	cr_assert_str_eq(vox_json_str(doc, "status"), "draft");
	snprintf(id, 40, "%s", vox_json_str(doc, "id"));
	json_decref(doc);

	/* the earliest FOC the order may ask for */
	tp_first_foc(w, id, foc);
	doc = json_pack("{s:s}", "requested_foc_date", foc);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	json_decref(tp_api(w, "PATCH", path, body, 200));
	free(body);
}

static void submit(struct tp_world *w, const char *id)
{
	char path[160];
	json_t *doc;

	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         id);
	doc = tp_api(w, "POST", path, NULL, 202);
	/* 202 with the operation, like every command */
	cr_assert_str_eq(vox_json_str(doc, "kind"), "porting.submit",
	                 "submit answered no operation");
	json_decref(doc);
}

/* The account's number e164 as GET /v1/numbers shows it (NULL: absent). */
static json_t *listed_number(struct tp_world *w, const char *e164)
{
	json_t *doc = tp_api(w, "GET", "/v1/numbers?limit=100", NULL, 200);
	json_t *data = json_object_get(doc, "data"), *n, *found = NULL;
	size_t i;

	json_array_foreach(data, i, n)
	{
		if (strcmp(vox_json_str(n, "phone_number"), e164) == 0)
			found = json_incref(n);
	}
	json_decref(doc);
	return found;
}

/* A rate card that prices sms_sent at 300 micro-units for the account. */
static void rate_card(const char *account)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;
	const char *params[] = {account};

	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "WITH card AS (INSERT INTO rate_cards (name, "
	                    "currency, effective_from) VALUES ('porting e2e', "
	                    "'USD', '2020-01-01') RETURNING id), rate AS "
	                    "(INSERT INTO rates (rate_card_id, currency, "
	                    "event_type, prefix, per_minute_micros, "
	                    "per_unit_micros, setup_micros, first_increment_s, "
	                    "next_increment_s) SELECT id, 'USD', 'sms_sent', "
	                    "'', 0, 300, 0, 60, 60 FROM card) INSERT INTO "
	                    "account_rate_cards (account_id, rate_card_id, "
	                    "effective_from) SELECT $1, id, '2020-01-01' FROM "
	                    "card",
	                    1, params, NULL, &err),
	        0, "%s", err.message);
	vox_pg_destroy(pg);
}

static void push_sms(struct tp_world *w, const char *e164)
{
	char body[400], when[32], id[VOX_UUID_STRLEN];
	time_t at = time(NULL) - 60;
	struct tm tm;

	gmtime_r(&at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vox_uuid7(id);
	snprintf(body, sizeof(body),
	         "[{\"id\":\"port-%s\",\"type\":\"sms_sent\",\"from\":\"%s\","
	         "\"to\":\"+442079460000\",\"started_at\":\"%s\","
	         "\"segments\":1}]",
	         id, e164, when);
	cr_assert_eq(t_cdr_push(w->port, w->ckey, w->csecret, body), 202);
}

#define CHAIN_TYPES                                                            \
	"SELECT string_agg(event_type, ',' ORDER BY sequence) "                \
	"FROM notification_chains WHERE account_id = $1 AND event_type LIKE "  \
	"'porting_order.%'"
#define MAILS_DELIVERED                                                        \
	"SELECT count(*) FROM notifications n JOIN notification_chains c ON "  \
	"c.id = n.chain_id WHERE c.account_id = $1 AND c.event_type LIKE "     \
	"'porting_order.%' AND n.channel = 'email' AND n.status = "            \
	"'delivered'"
#define USAGE_COUNT                                                            \
	"SELECT count(*) FROM usage_records WHERE account_id = $1 AND "        \
	"event_type = 'sms_sent' AND cost_micros > 0"

Test(porting_e2e, check_draft_documents_exception_fix_ported_rated,
     .timeout = 300, .fini = tp_fini)
{
	char number[20], account_number[40], pin[8], id[40], path[160];
	char uid[VOX_UUID_STRLEN], *body, *mail;
	struct tp_world w;
	json_t *doc, *item, *n;

	tp_start(&w, true, false, NULL, 500000);
	tp_number(number, 3); /* Acme Wireless: a PIN, the last four digits */
	snprintf(pin, sizeof(pin), "%s", number + strlen(number) - 4);
	vox_uuid7(uid);
	snprintf(account_number, sizeof(account_number), "ACC-%.12s", uid + 24);

	/* 1. portability */
	body = NULL;
	doc = json_pack("{s:[s]}", "phone_numbers", number);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	doc = tp_api(&w, "POST", "/v1/porting/portability-checks", body, 200);
	free(body);
	item = json_array_get(json_object_get(doc, "data"), 0);
	cr_assert(json_is_true(json_object_get(item, "portable")),
	          "%s is not portable", number);
	cr_assert_str_eq(
	        vox_json_str(json_object_get(item, "losing_carrier"), "name"),
	        "Acme Wireless");
	cr_assert(json_is_true(json_object_get(
	        json_object_get(item, "requirements"), "pin_required")));
	json_decref(doc);

	/* 2. the draft with its documents, a wrong PIN */
	draft(&w, json_pack("[s]", number), end_user(account_number, "0000"),
	      id);

	/* 3. submit: the losing carrier refuses the PIN */
	submit(&w, id);
	doc = tp_wait_status(&w, id, "exception", WAIT_MS);
	item = json_array_get(json_object_get(doc, "exceptions"), 0);
	cr_assert_str_eq(vox_json_str(item, "code"), "wrong_pin");
	cr_assert_str_eq(vox_json_str(item, "field"), "end_user.pin");
	json_decref(doc);

	/* 4. the PIN fixed, submitted again: FOC, then ported */
	doc = json_pack("{s:o}", "end_user", end_user(account_number, pin));
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	doc = tp_api(&w, "PATCH", path, body, 200);
	free(body);
	cr_assert_str_eq(
	        vox_json_str(json_object_get(doc, "end_user"), "pin_last2"),
	        pin + 2);
	json_decref(doc);
	submit(&w, id);
	doc = tp_wait_status(&w, id, "ported", WAIT_MS);
	cr_assert(json_is_string(json_object_get(doc, "foc_date")),
	          "no FOC date on the ported order");
	cr_assert(json_is_string(json_object_get(doc, "ported_at")));
	cr_assert_eq(json_array_size(json_object_get(doc, "exceptions")), 0);
	n = json_array_get(json_object_get(doc, "phone_numbers"), 0);
	cr_assert_str_eq(vox_json_str(n, "status"), "ported");
	cr_assert(json_is_string(json_object_get(n, "number_id")));
	json_decref(doc);

	/* 5. the number is the account's, active */
	n = listed_number(&w, number);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", number);
	cr_assert_str_eq(vox_json_str(n, "status"), "active");
	json_decref(n);

	/* 6. metered like a bought one */
	rate_card(w.account);
	push_sms(&w, number);
	cr_assert(tn_wait_sql(USAGE_COUNT, w.account, "1", WAIT_MS),
	          "the CDR of the ported number was not rated");

	/* 7. the history: every move once, in order */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/events", id);
	doc = tp_api(&w, "GET", path, NULL, 200);
	{
		static const char *const moves[] = {
		        "submitted", "in-process", "exception",
		        "submitted", "in-process", "foc-date-confirmed",
		        "ported"};
		json_t *data = json_object_get(doc, "data");
		size_t k = 0, i;
		json_t *e;

		json_array_foreach(data, i, e)
		{
			if (!json_is_true(json_object_get(e, "applied")))
				continue;
			cr_assert_lt(k, 7, "more applied moves than 7");
			cr_expect_str_eq(vox_json_str(e, "to_status"), moves[k],
			                 "move %zu", k);
			k++;
		}
		cr_assert_eq(k, 7, "%zu applied moves", k);
	}
	json_decref(doc);

	/* 8. a notification per move, and mail in the sink */
	cr_assert(
	        tn_wait_sql(CHAIN_TYPES, w.account,
	                    "porting_order.submitted,porting_order.in_process,"
	                    "porting_order.exception,porting_order.submitted,"
	                    "porting_order.in_process,porting_order."
	                    "foc_date_confirmed,porting_order.ported",
	                    WAIT_MS),
	        "notifications: %s", tn_sql(CHAIN_TYPES, w.account));
	cr_assert(tn_wait_sql(MAILS_DELIVERED, w.account, "7", WAIT_MS),
	          "%s of 7 porting mails delivered",
	          tn_sql(MAILS_DELIVERED, w.account));
	mail = tn_mail(w.email, WAIT_MS);
	cr_assert_not_null(mail, "no porting mail reached the SMTP sink");
	cr_expect(strstr(mail, id) != NULL, "the mail names no order: %.300s",
	          mail);
	free(mail);
	tp_stop(&w);
}

/* The child of parent doc whose losing carrier is lc. */
static void child_of(const json_t *parent, const char *lc, char id[40])
{
	json_t *kids = json_object_get(parent, "children"), *c;
	size_t i;

	id[0] = '\0';
	json_array_foreach(kids, i, c)
	{
		if (strcmp(vox_json_str(c, "losing_carrier"), lc) == 0)
			snprintf(id, 40, "%s", vox_json_str(c, "id"));
	}
	cr_assert(id[0] != '\0', "no child for %s", lc);
}

Test(porting_e2e, two_losing_carriers_split_one_ported_one_cancelled,
     .timeout = 300, .fini = tp_fini)
{
	char acme[20], beta[20], pin[8], id[40], kid_a[40], kid_b[40];
	char path[160];
	struct tp_world w;
	json_t *doc = NULL, *n;

	/* FOC (3 business days ahead) about 15 s away: time to cancel one */
	tp_start(&w, false, false, NULL, 20000);
	tp_number(acme, 2);
	tp_number(beta, 6);
	snprintf(pin, sizeof(pin), "%s", acme + strlen(acme) - 4);
	draft(&w, json_pack("[s, s]", acme, beta), end_user("ACC-7788", pin),
	      id);
	submit(&w, id);

	/* split: a child per losing carrier */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	for (int i = 0; i < 100; i++) {
		json_decref(doc);
		doc = tp_api(&w, "GET", path, NULL, 200);
		if (json_array_size(json_object_get(doc, "children")) == 2)
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(json_array_size(json_object_get(doc, "children")), 2,
	             "the order was not split");
	child_of(doc, "Acme Wireless", kid_a);
	child_of(doc, "Beta Telecom", kid_b);
	json_decref(doc);

	/* the Beta child cancelled by its id, before its FOC */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/cancel",
	         kid_b);
	json_decref(tp_api(&w, "POST", path, NULL, 202));
	json_decref(tp_wait_status(&w, kid_b, "cancelled", WAIT_MS));
	json_decref(tp_wait_status(&w, kid_a, "ported", 2 * WAIT_MS));

	/* the parent: both children, all numbers, summary ported */
	doc = tp_wait_status(&w, id, "ported", WAIT_MS);
	cr_assert_eq(json_array_size(json_object_get(doc, "children")), 2);
	{
		json_t *kids = json_object_get(doc, "children"), *c;
		int ported = 0, cancelled = 0;
		size_t i;

		json_array_foreach(kids, i, c)
		{
			ported += strcmp(vox_json_str(c, "status"), "ported") ==
			          0;
			cancelled += strcmp(vox_json_str(c, "status"),
			                    "cancelled") == 0;
		}
		cr_assert(ported == 1 && cancelled == 1,
		          "children: %d ported, %d cancelled", ported,
		          cancelled);
	}
	cr_assert_eq(json_array_size(json_object_get(doc, "phone_numbers")), 2);
	json_decref(doc);

	/* one carrier order per child, the Acme number ours, not Beta's */
	cr_assert_eq(tp_carrier_orders(kid_a), 1);
	cr_assert_eq(tp_carrier_orders(kid_b), 1);
	n = listed_number(&w, acme);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", acme);
	cr_assert_str_eq(vox_json_str(n, "status"), "active");
	json_decref(n);
	cr_assert_null(listed_number(&w, beta), "the cancelled number is ours");
	tp_stop(&w);
}

/* A carrier webhook body about our order. */
static char *carrier_body(const char *event_id, const char *carrier_order,
                          const char *reference, const char *status,
                          const char *e164)
{
	json_t *doc = json_pack(
	        "{s:{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:n, s:[], s:[{s:s, "
	        "s:s, s:n}]}}}",
	        "data", "id", event_id, "event_type",
	        "porting_order.status_changed", "occurred_at",
	        "2026-12-07T10:00:00Z", "payload", "id", carrier_order,
	        "customer_reference", reference, "status", status, "foc_date",
	        "exceptions", "phone_numbers", "phone_number", e164, "status",
	        status, "id");
	char *body = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	return body;
}

#define EVENT_ROWS                                                             \
	"SELECT count(*) FROM porting_order_events WHERE carrier_event_id = "  \
	"$1"

static bool refused_row(void *arg)
{
	vox_pg_t *pg = t_pg();
	bool there = t_pg_count(pg,
	                        "SELECT count(*) FROM porting_order_events "
	                        "WHERE carrier_event_id = $1 AND NOT applied "
	                        "AND reason LIKE 'move not allowed%'",
	                        arg) == 1;

	vox_pg_destroy(pg);
	return there;
}

Test(porting_e2e, carrier_events_once_refused_recorded_strangers_skipped,
     .timeout = 300, .fini = tp_fini)
{
	char number[20], id[40], carrier_order[80], seen[120], stranger[40];
	char late[60], other[60], unknown[60], uid[VOX_UUID_STRLEN], *body;
	struct tp_world w;
	vox_pg_t *pg = t_pg();
	long long before;
	PGresult *res;
	vox_error_t err;
	json_t *doc;

	tp_start(&w, false, false, NULL, 500000);
	tp_number(number, 8); /* Beta Telecom: no PIN */
	draft(&w, json_pack("[s]", number), end_user("ACC-4242", NULL), id);
	submit(&w, id);
	json_decref(tp_wait_status(&w, id, "ported", WAIT_MS));
	{
		const char *p[] = {id};

		cr_assert_eq(
		        vox_pg_exec(pg,
		                    "SELECT o.carrier_order_id, "
		                    "e.carrier_event_id FROM porting_orders "
		                    "o JOIN porting_order_events e ON "
		                    "e.order_id = o.id WHERE o.id = $1 AND "
		                    "e.to_status = 'in-process' AND e.source "
		                    "= 'carrier'",
		                    1, p, &res, &err),
		        0, "%s", err.message);
		cr_assert_eq(PQntuples(res), 1);
		snprintf(carrier_order, sizeof(carrier_order), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(seen, sizeof(seen), "%s", PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	before = t_pg_count(pg,
	                    "SELECT count(*) FROM porting_order_events WHERE "
	                    "order_id = $1",
	                    id);
	vox_uuid7(uid);
	snprintf(late, sizeof(late), "late-%s", uid);
	snprintf(other, sizeof(other), "other-%s", uid);
	snprintf(unknown, sizeof(unknown), "unknown-%s", uid);

	/* a delivery again of an event applied already */
	body = carrier_body(seen, carrier_order, id, "in-process", number);
	cr_assert_eq(tp_carrier_event(&w, body), 202);
	free(body);
	/* our order's id with another carrier order's */
	body = carrier_body(other, "not-our-order", id, "cancelled", number);
	cr_assert_eq(tp_carrier_event(&w, body), 202);
	free(body);
	/* a move the table refuses: ported -> in-process */
	body = carrier_body(late, carrier_order, id, "in-process", number);
	cr_assert_eq(tp_carrier_event(&w, body), 202);
	free(body);
	/* an order we do not have */
	vox_uuid7(stranger);
	body = carrier_body(unknown, "no-such-order", stranger, "ported",
	                    "+16285550100");
	cr_assert_eq(tp_carrier_event(&w, body), 202);
	free(body);

	/* the refused move is recorded (same partition as the two before:
	 * they were handled first), and nothing else changed */
	cr_assert(t_wait_for(refused_row, late, WAIT_MS),
	          "the refused move was not recorded");
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_order_events "
	                        "WHERE order_id = $1",
	                        id),
	             before + 1);
	cr_expect_eq(t_pg_count(pg, EVENT_ROWS, seen), 1);
	cr_expect_eq(t_pg_count(pg, EVENT_ROWS, other), 0);
	doc = tp_wait_status(&w, id, "ported", 1000);
	json_decref(doc);
	sleep(2); /* the stranger's partition */
	cr_expect_eq(t_pg_count(pg, EVENT_ROWS, unknown), 0);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1",
	                        stranger),
	             0);
	vox_pg_destroy(pg);
	tp_stop(&w);
}

static bool outbox_expired(void *arg)
{
	vox_pg_t *pg = t_pg();
	bool there = t_pg_count(pg,
	                        "SELECT count(*) FROM outbox WHERE topic = "
	                        "'vox.events' AND message_key = $1 AND "
	                        "payload::jsonb->>'type' = "
	                        "'porting_order.expired'",
	                        arg) == 1;

	vox_pg_destroy(pg);
	return there;
}

Test(porting_e2e, draft_expires_into_cancelled, .timeout = 120, .fini = tp_fini)
{
	char number[20], id[40], *body;
	struct tp_world w;
	vox_pg_t *pg = t_pg();
	vox_error_t err;
	json_t *doc;

	tp_start(&w, false, false, NULL, 500000);
	tp_number(number, 4);
	doc = json_pack("{s:[s]}", "phone_numbers", number);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	doc = tp_api(&w, "POST", "/v1/porting-orders", body, 201);
	free(body);
	snprintf(id, sizeof(id), "%s", vox_json_str(doc, "id"));
	json_decref(doc);
	/* the 30 days cut short (SQL): the worker's tick does the rest */
	const char *p[] = {id};
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE porting_orders SET expires_at = now() "
	                         "- interval '1 second' WHERE id = $1",
	                         1, p, NULL, &err),
	             0, "%s", err.message);
	doc = tp_wait_status(&w, id, "cancelled", WAIT_MS);
	cr_assert_str_eq(vox_json_str(doc, "cancel_reason"), "draft_expired");
	cr_assert_str_eq(
	        vox_json_str(json_array_get(
	                             json_object_get(doc, "phone_numbers"), 0),
	                     "status"),
	        "cancelled");
	json_decref(doc);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_order_events "
	                        "WHERE order_id = $1 AND from_status = 'draft' "
	                        "AND to_status = 'cancelled' AND source = "
	                        "'system' AND reason = 'draft_expired'",
	                        id),
	             1);
	cr_assert(t_wait_for(outbox_expired, id, WAIT_MS),
	          "no porting_order.expired event");
	vox_pg_destroy(pg);
	tp_stop(&w);
}

/* The carrier down through the client's retries: the submit's operation
 * fails carrier_unavailable and the order is a draft again, not split; once
 * the carrier is back, the same order ports. */
Test(porting_e2e, carrier_down_fails_the_submit_and_leaves_the_draft,
     .timeout = 180, .fini = tp_fini)
{
	char acme[20], beta[20], id[40], op[40], path[160];
	struct tp_world w;
	vox_pg_t *pg = t_pg();
	json_t *doc;

	tp_start(&w, false, false, NULL, 500000);
	tp_sandbox_faults("DELETE", NULL);
	tp_number(acme, 2);
	tp_number(beta, 6);
	draft(&w, json_pack("[s, s]", acme, beta),
	      end_user("ACC-4242", acme + strlen(acme) - 4), id);
	tp_sandbox_faults("POST", "{\"endpoint\":\"port_create\","
	                          "\"error_rate\":1,\"status\":503}");
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         id);
	doc = tp_api(&w, "POST", path, NULL, 202);
	snprintf(op, sizeof(op), "%s", vox_json_str(doc, "id"));
	json_decref(doc);
	cr_assert(tp_wait_sql("SELECT status FROM operations WHERE id = "
	                      "$1::uuid",
	                      op, "failed", WAIT_MS, NULL),
	          "the submit's operation did not fail");
	snprintf(path, sizeof(path), "/v1/operations/%s", op);
	doc = tp_api(&w, "GET", path, NULL, 200);
	cr_assert_str_eq(vox_json_str(json_object_get(doc, "error"), "code"),
	                 "carrier_unavailable");
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	doc = tp_api(&w, "GET", path, NULL, 200);
	cr_assert_str_eq(vox_json_str(doc, "status"), "draft");
	cr_assert_eq(json_array_size(json_object_get(doc, "children")), 0);
	json_decref(doc);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_orders WHERE "
	                        "parent_id = $1::uuid",
	                        id),
	             0, "a half split was left");
	cr_assert_eq(tp_carrier_orders(id), 0);

	tp_sandbox_faults("DELETE", NULL);
	submit(&w, id);
	json_decref(tp_wait_status(&w, id, "ported", WAIT_MS));
	vox_pg_destroy(pg);
	tp_stop(&w);
}

#define SUBMITS                                                                \
	"SELECT count(*) FROM porting_order_events WHERE order_id = $1 AND "   \
	"to_status = 'submitted' AND applied"

Test(porting_e2e, split_child_in_exception_fixed_through_the_parent,
     .timeout = 300, .fini = tp_fini)
{
	char acme[20], beta[20], pin[8], id[40], kid_a[40], kid_b[40];
	char path[160], *body;
	struct tp_world w;
	json_t *doc, *n;

	tp_start(&w, false, false, NULL, 500000);
	tp_number(acme, 0);
	tp_number(beta, 7);
	snprintf(pin, sizeof(pin), "%s", acme + strlen(acme) - 4);
	/* a wrong PIN: the Acme child stops in exception, Beta ports */
	draft(&w, json_pack("[s, s]", acme, beta), end_user("ACC-5151", "9999"),
	      id);
	submit(&w, id);
	doc = tp_wait_status(&w, id, "exception", WAIT_MS);
	cr_assert_eq(json_array_size(json_object_get(doc, "children")), 2);
	child_of(doc, "Acme Wireless", kid_a);
	child_of(doc, "Beta Telecom", kid_b);
	cr_assert_str_eq(
	        vox_json_str(
	                json_array_get(json_object_get(doc, "exceptions"), 0),
	                "code"),
	        "wrong_pin");
	json_decref(doc);
	json_decref(tp_wait_status(&w, kid_b, "ported", WAIT_MS));
	json_decref(tp_wait_status(&w, kid_a, "exception", WAIT_MS));

	/* the PIN fixed on the parent (its child in exception follows),
	 * the parent submitted again: only that child goes back (a PATCH
	 * of its carrier order), the ported one is left alone */
	doc = json_pack("{s:o}", "end_user", end_user("ACC-5151", pin));
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	json_decref(tp_api(&w, "PATCH", path, body, 200));
	free(body);
	submit(&w, id);
	json_decref(tp_wait_status(&w, kid_a, "ported", WAIT_MS));
	doc = tp_wait_status(&w, id, "ported", WAIT_MS);
	cr_assert_eq(json_array_size(json_object_get(doc, "exceptions")), 0);
	json_decref(doc);

	/* one carrier order per child: the fix was a PATCH of the first */
	cr_assert_eq(tp_carrier_orders(kid_a), 1);
	cr_assert_eq(tp_carrier_orders(kid_b), 1);
	cr_expect(tp_wait_sql(SUBMITS, kid_a, "2", 1, NULL),
	          "the child in exception was not submitted twice");
	cr_expect(tp_wait_sql(SUBMITS, kid_b, "1", 1, NULL),
	          "the ported child was submitted again");
	n = listed_number(&w, acme);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", acme);
	json_decref(n);
	n = listed_number(&w, beta);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", beta);
	json_decref(n);
	tp_stop(&w);
}

Test(porting_e2e, split_child_in_exception_resubmitted_by_its_own_id,
     .timeout = 300, .fini = tp_fini)
{
	char acme[20], beta[20], pin[8], id[40], kid_a[40], kid_b[40];
	char path[160], *body;
	struct tp_world w;
	json_t *doc, *n;

	tp_start(&w, false, false, NULL, 500000);
	tp_number(acme, 3);
	tp_number(beta, 6);
	snprintf(pin, sizeof(pin), "%s", acme + strlen(acme) - 4);
	/* a wrong PIN: the Acme child stops in exception, Beta ports */
	draft(&w, json_pack("[s, s]", acme, beta), end_user("ACC-6161", "8888"),
	      id);
	submit(&w, id);
	doc = tp_wait_status(&w, id, "exception", WAIT_MS);
	cr_assert_eq(json_array_size(json_object_get(doc, "children")), 2);
	child_of(doc, "Acme Wireless", kid_a);
	child_of(doc, "Beta Telecom", kid_b);
	cr_assert_str_eq(
	        vox_json_str(
	                json_array_get(json_object_get(doc, "exceptions"), 0),
	                "code"),
	        "wrong_pin");
	json_decref(doc);
	json_decref(tp_wait_status(&w, kid_b, "ported", WAIT_MS));
	json_decref(tp_wait_status(&w, kid_a, "exception", WAIT_MS));

	/* the PIN fixed on the child itself, the child submitted by its
	 * own id: the parent follows it */
	doc = json_pack("{s:o}", "end_user", end_user("ACC-6161", pin));
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", kid_a);
	json_decref(tp_api(&w, "PATCH", path, body, 200));
	free(body);
	submit(&w, kid_a);
	json_decref(tp_wait_status(&w, kid_a, "ported", WAIT_MS));
	doc = tp_wait_status(&w, id, "ported", WAIT_MS);
	cr_assert_eq(json_array_size(json_object_get(doc, "exceptions")), 0);
	json_decref(doc);

	/* one carrier order per child: the fix was a PATCH of the first */
	cr_assert_eq(tp_carrier_orders(kid_a), 1);
	cr_assert_eq(tp_carrier_orders(kid_b), 1);
	n = listed_number(&w, acme);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", acme);
	json_decref(n);
	n = listed_number(&w, beta);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", beta);
	json_decref(n);
	tp_stop(&w);
}

#define POLLED                                                                 \
	"SELECT string_agg(to_status, ',' ORDER BY id) FROM "                  \
	"porting_order_events WHERE order_id = $1 AND applied AND "            \
	"carrier_event_id LIKE 'poll:%'"

Test(porting_e2e, lost_webhooks_the_worker_polls_the_carrier, .timeout = 300,
     .fini = tp_fini)
{
	char number[20], id[40], *polled = NULL;
	struct tp_world w;
	json_t *n;

	/* the port done some 0.5 s after the submit, before any poll */
	tp_start(&w, false, false, NULL, 10000000);
	tp_worker_env(&w, "VOX_PORTING_POLL_AFTER_S=1");
	/* the carrier's webhooks go nowhere (nothing listens on port 9) */
	tp_webhook_url("http://127.0.0.1:9/v1/carrier/porting-events");
	tp_number(number, 5); /* Beta Telecom */
	draft(&w, json_pack("[s]", number), end_user("ACC-7070", NULL), id);
	submit(&w, id);
	json_decref(tp_wait_status(&w, id, "ported", WAIT_MS));
	/* the carrier said ported while we had submitted: the FOC first */
	cr_assert(tp_wait_sql(POLLED, id, "foc-date-confirmed,ported", 1,
	                      &polled),
	          "moves applied from polls: %s", polled);
	free(polled);
	n = listed_number(&w, number);
	cr_assert_not_null(n, "%s not in GET /v1/numbers", number);
	cr_assert_str_eq(vox_json_str(n, "status"), "active");
	json_decref(n);
	tp_stop(&w);
}
