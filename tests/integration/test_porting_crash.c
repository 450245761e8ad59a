/*
 * Issue 14's acceptance 4: the porting worker killed during transitions
 * loses none and applies none twice. The test-only worker (vox_fault
 * points) dies twice on purpose:
 *
 * 1. in the submit of an order of two losing carriers, right after the
 *    carrier took both children's orders and before our transaction
 *    committed (the split and the children roll back; the carrier's
 *    webhooks keep coming, before our record of the submit);
 * 2. applying the first `ported` event, with the move and the numbers
 *    written and not committed.
 *
 * After the last restart: one carrier order per child (the sandbox's
 * admin list), each child's moves once in porting_order_events (submitted,
 * in-process, foc-date-confirmed, ported; none held or left over), one
 * vox.events event per applied move, the two numbers active once, one
 * port_in order per child, the parent ported.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "test_porting_helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_uuid.h"

#define WAIT_MS 60000

struct seen {
	const char *ids[3]; /* parent, child a, child b */
	json_t *by_key;     /* "<subject> <type>" -> [event ids] */
	int ported_in;
	const char *numbers[2];
};

static void on_event(void *arg, const char *payload, size_t len,
                     const char *header)
{
	struct seen *s = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *subject = vox_json_str(ev, "subject");
	const char *type = vox_json_str(ev, "type");
	char key[200];

	(void)header;
	if (subject == NULL || type == NULL) {
		json_decref(ev);
		return;
	}
	for (int i = 0; i < 2; i++)
		if (strcmp(type, "number.ported_in") == 0 &&
		    strcmp(subject, s->numbers[i]) == 0)
			s->ported_in++;
	for (int i = 0; i < 3; i++) {
		if (strcmp(subject, s->ids[i]) != 0)
			continue;
		snprintf(key, sizeof(key), "%s %s", subject, type);
		json_t *list = json_object_get(s->by_key, key);
		if (list == NULL) {
			list = json_array();
			json_object_set_new(s->by_key, key, list);
		}
		json_array_append_new(list,
		                      json_string(vox_json_str(ev, "id")));
	}
	json_decref(ev);
}

static void draft_and_submit(struct tp_world *w, const char *acme,
                             const char *beta, char id[40])
{
	char loa[40], invoice[40], foc[11], path[160], *body;
	json_t *doc;

	tp_document(w, "loa", loa);
	tp_document(w, "invoice", invoice);
	doc = json_pack("{s:[s, s], s:{s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, "
	                "s:s}, s:{s:s, s:s}}",
	                "phone_numbers", acme, beta, "end_user",
	                "authorized_name", "Grace Hopper", "service_address",
	                "street", "2 Harbor Rd", "locality", "Arlington",
	                "administrative_area", "VA", "postal_code", "22201",
	                "country", "US", "account_number", "ACC-CRASH-1", "pin",
	                acme + strlen(acme) - 4, "documents", "loa", loa,
	                "invoice", invoice);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	doc = tp_api(w, "POST", "/v1/porting-orders", body, 201);
	free(body);
	snprintf(id, 40, "%s", vox_json_str(doc, "id"));
	json_decref(doc);
	tp_first_foc(w, id, foc);
	doc = json_pack("{s:s}", "requested_foc_date", foc);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	json_decref(tp_api(w, "PATCH", path, body, 200));
	free(body);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         id);
	json_decref(tp_api(w, "POST", path, NULL, 202));
}

/* The deterministic id of parent's child for losing carrier lc. */
static void child_id(vox_pg_t *pg, const char *parent, const char *lc,
                     char out[40])
{
	const char *params[] = {parent, lc};
	PGresult *res;
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, "SELECT md5($1 || ':' || $2)::uuid::text",
	                         2, params, &res, &err),
	             0, "%s", err.message);
	snprintf(out, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* The applied moves of order, in order: "submitted,in-process,...". */
static char *moves(vox_pg_t *pg, const char *order)
{
	const char *params[] = {order};
	PGresult *res;
	vox_error_t err;
	char *out;

	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT coalesce(string_agg(to_status, ',' "
	                         "ORDER BY id), '') FROM porting_order_events "
	                         "WHERE order_id = $1 AND applied",
	                         1, params, &res, &err),
	             0, "%s", err.message);
	out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

Test(porting_crash, killed_mid_transitions_nothing_lost_or_twice,
     .timeout = 300, .fini = tp_fini)
{
	char acme[20], beta[20], id[40], kid_a[40], kid_b[40], *m;
	struct tp_world w;
	struct seen seen = {0};
	vox_pg_t *pg = t_pg();
	long long applied_total = 0;

	/* FOC 3 business days ahead: some 15 s at this scale */
	tp_start(&w, false, true, "porting.submit.after_carrier", 20000);
	tp_number(acme, 1);
	tp_number(beta, 5);
	draft_and_submit(&w, acme, beta, id);
	child_id(pg, id, "Acme Wireless", kid_a);
	child_id(pg, id, "Beta Telecom", kid_b);

	/* 1. dead after the carrier calls: the carrier has both orders, we
	 * have no children */
	cr_assert(tp_worker_died(&w, WAIT_MS),
	          "the worker did not die at porting.submit.after_carrier");
	cr_assert_eq(tp_carrier_orders(kid_a), 1);
	cr_assert_eq(tp_carrier_orders(kid_b), 1);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_orders WHERE "
	                        "parent_id = $1",
	                        id),
	             0, "the split survived the crash");
	/* 2. dead applying the first ported event. The carrier went on
	 * meanwhile (in-process, foc-date-confirmed: held until the submit
	 * is recorded); the port comes some 15 s after the FOC is confirmed,
	 * once the submit is in (the consumer dead-letters a message that
	 * killed the worker twice: the two deaths must be two messages'). */
	tp_worker_spawn(&w, "porting.event.ported");
	cr_assert(tp_worker_died(&w, 2 * WAIT_MS),
	          "the worker did not die at porting.event.ported");

	/* 3. a healthy worker finishes */
	tp_worker_spawn(&w, NULL);
	json_decref(tp_wait_status(&w, kid_a, "ported", WAIT_MS));
	json_decref(tp_wait_status(&w, kid_b, "ported", WAIT_MS));
	json_decref(tp_wait_status(&w, id, "ported", WAIT_MS));

	/* one carrier order per child, however often it was submitted */
	cr_expect_eq(tp_carrier_orders(kid_a), 1);
	cr_expect_eq(tp_carrier_orders(kid_b), 1);
	cr_expect_eq(tp_carrier_orders(id), 0);

	/* every move of each child once, in order; nothing held */
	const char *kids[] = {kid_a, kid_b};
	for (int i = 0; i < 2; i++) {
		m = moves(pg, kids[i]);
		cr_expect_str_eq(m,
		                 "submitted,in-process,foc-date-confirmed,"
		                 "ported",
		                 "child %s moves", kids[i]);
		free(m);
	}
	m = moves(pg, id);
	cr_expect(strstr(m, "submitted") == m && strstr(m, "ported") != NULL,
	          "parent moves: %s", m);
	free(m);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM porting_order_events e "
	                        "JOIN porting_orders o ON o.id = e.order_id "
	                        "WHERE (o.id = $1 OR o.parent_id = $1) AND "
	                        "NOT e.applied",
	                        id),
	             0, "refused or held carrier events left");
	applied_total = t_pg_count(pg,
	                           "SELECT count(*) FROM porting_order_events "
	                           "e JOIN porting_orders o ON o.id = "
	                           "e.order_id WHERE (o.id = $1 OR o.parent_id "
	                           "= $1) AND e.applied",
	                           id);

	/* the numbers once, active, the account's; one port_in per child */
	cr_expect_eq(
	        t_pg_count(pg,
	                   "SELECT count(*) FROM numbers n JOIN "
	                   "porting_order_numbers p ON p.number_id = n.id "
	                   "JOIN porting_orders o ON o.id = p.order_id "
	                   "WHERE o.parent_id = $1 AND n.status = 'active' "
	                   "AND n.account_id = o.account_id",
	                   id),
	        2);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM orders r JOIN "
	                        "porting_orders o ON o.id = r.id WHERE "
	                        "o.parent_id = $1 AND r.kind = 'port_in'",
	                        id),
	             2);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM order_items i JOIN "
	                        "porting_orders o ON o.id = i.order_id WHERE "
	                        "o.parent_id = $1",
	                        id),
	             2);

	/* one vox.events event per applied move (the outbox relay may
	 * repeat a message: distinct ids count) */
	tp_stop(&w);
	seen.ids[0] = id;
	seen.ids[1] = kid_a;
	seen.ids[2] = kid_b;
	seen.numbers[0] = acme;
	seen.numbers[1] = beta;
	seen.by_key = json_object();
	t_consume_all("vox.events", 3000, NULL, on_event, &seen);
	{
		const char *key;
		json_t *list;
		long long events = 0;

		json_object_foreach(seen.by_key, key, list)
		{
			json_t *distinct = json_object();
			size_t i;
			json_t *v;

			json_array_foreach(list, i, v) json_object_set(
			        distinct, json_string_value(v), json_true());
			events += (long long)json_object_size(distinct);
			/* a type twice is a move applied twice, except the
			 * two submits of nothing here: one each */
			cr_expect_eq(json_object_size(distinct), 1,
			             "%s: %zu events", key,
			             json_object_size(distinct));
			json_decref(distinct);
		}
		cr_expect_eq(events, applied_total,
		             "%lld events for %lld applied moves", events,
		             applied_total);
	}
	cr_expect_eq(seen.ported_in, 2, "%d number.ported_in", seen.ported_in);
	json_decref(seen.by_key);
	vox_pg_destroy(pg);
}
