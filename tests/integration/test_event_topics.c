/*
 * The domain topics and per-key sequences (docs/EVENTS.md "Topics and
 * ordering") against the real stack: events emitted in a transaction come
 * out of the outbox relay on vox.events and on their domain topic, the same
 * bytes, numbered 1, 2, 3 per key in partition order; an event published
 * again keeps its id and its number, and the next one goes on from there.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_event.h"
#include "vox_kafka.h"
#include "vox_relay.h"
#include "vox_uuid.h"

struct emits {
	const char *numbers[2]; /* E.164 keys */
	const char *account;
	int per_number[2];
	int invoices;
};

static int emit_all(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	const struct emits *e = arg;
	char id[VOX_UUID_STRLEN];
	int rc = 0;

	/* Interleaved: the numbers' events alternate in the outbox. */
	for (int i = 0; rc == 0 && i < 3; i++)
		for (int k = 0; rc == 0 && k < 2; k++) {
			if (i >= e->per_number[k])
				continue;
			vox_uuid7(id);
			rc = vox_event_emit(
			        pg, "number.reserved", e->numbers[k],
			        e->numbers[k], e->account, NULL,
			        json_pack("{s:s, s:s}", "phone_number",
			                  e->numbers[k], "reservation_id", id),
			        err);
		}
	for (int i = 0; rc == 0 && i < e->invoices; i++) {
		vox_uuid7(id);
		rc = vox_event_emit(
		        pg, "invoice.created", e->account, id, e->account, NULL,
		        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}",
		                  "invoice_id", id, "account_id", e->account,
		                  "status", "draft", "period_start",
		                  "2026-11-01T00:00:00.000000Z", "period_end",
		                  "2026-12-01T00:00:00.000000Z", "total_micros",
		                  0, "currency", "USD"),
		        err);
	}
	return rc;
}

static void relay_all(vox_pg_t *pg, const char *account)
{
	vox_producer_t *p;
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test"};
	vox_error_t err;
	int published;

	p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	/* Another relay (a worker's) may hold the lock for a while. */
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(vox_relay_once(pg, p, 500, &published, &err), 0,
		             "%s", err.message);
		if (t_pg_count(pg,
		               "SELECT count(*) FROM outbox WHERE published_at "
		               "IS NULL AND payload LIKE '%' || $1 || '%'",
		               account) == 0)
			break;
		usleep(50000);
	}
	vox_producer_destroy(p, 5000);
}

/* What the consumer saw of our keys, in the order it saw them. */
struct seen {
	const char *keys[3];
	char ids[3][16][64];
	long long seqs[3][16];
	int n[3];
	char raw[3][16][2048]; /* the bytes, to compare across topics */
};

static void collect(void *arg, const char *payload, size_t len,
                    const char *header)
{
	struct seen *s = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *subject, *account;

	(void)header;
	if (ev == NULL)
		return;
	subject = json_string_value(json_object_get(ev, "subject"));
	account = json_string_value(json_object_get(ev, "accountid"));
	for (int k = 0; k < 3; k++) {
		const char *match = k < 2 ? subject : account;
		int i = s->n[k];

		if (match == NULL || strcmp(match, s->keys[k]) != 0 || i == 16)
			continue;
		if (k == 2 &&
		    strcmp(json_string_value(json_object_get(ev, "type")),
		           "invoice.created") != 0)
			continue;
		snprintf(s->ids[k][i], sizeof(s->ids[k][i]), "%s",
		         json_string_value(json_object_get(ev, "id")));
		s->seqs[k][i] = json_is_integer(json_object_get(ev, "sequence"))
		                        ? json_integer_value(json_object_get(
		                                  ev, "sequence"))
		                        : -1;
		snprintf(s->raw[k][i], sizeof(s->raw[k][i]), "%.*s", (int)len,
		         payload);
		s->n[k]++;
		break;
	}
	json_decref(ev);
}

static void read_topic(const char *topic, struct seen *s, const struct emits *e)
{
	memset(s, 0, sizeof(*s));
	s->keys[0] = e->numbers[0];
	s->keys[1] = e->numbers[1];
	s->keys[2] = e->account;
	t_consume_all(topic, 2000, NULL, collect, s);
}

static void random_e164(char out[16])
{
	char id[VOX_UUID_STRLEN];
	unsigned long long n = 0;

	vox_uuid7(id);
	for (const char *c = id + 24; *c; c++)
		n = n * 16 +
		    (unsigned long long)(*c <= '9' ? *c - '0' : *c - 'a' + 10);
	snprintf(out, 16, "+1555%07llu", n % 10000000ULL);
}

Test(event_topics, domain_topics_carry_gapless_per_key_sequences,
     .timeout = 180)
{
	vox_pg_t *pg = t_pg();
	char n1[16], n2[16], account[VOX_UUID_STRLEN];
	struct emits e;
	struct seen *dom = calloc(1, sizeof(*dom));
	struct seen *fire = calloc(1, sizeof(*fire));
	struct seen *bill = calloc(1, sizeof(*bill));
	vox_error_t err;

	cr_assert(dom && fire && bill);
	random_e164(n1);
	do
		random_e164(n2);
	while (strcmp(n1, n2) == 0);
	vox_uuid7(account);
	e = (struct emits){{n1, n2}, account, {3, 2}, 2};
	cr_assert_eq(vox_pg_transaction(pg, emit_all, &e, &err), 0, "%s",
	             err.message);
	relay_all(pg, account);

	read_topic("vox.events.numbers", dom, &e);
	read_topic("vox.events", fire, &e);
	read_topic("vox.events.billing", bill, &e);
	/* Each number's events on its domain topic: 1, 2, 3 and 1, 2. */
	for (int k = 0; k < 2; k++) {
		cr_assert_eq(dom->n[k], e.per_number[k], "%s: %d events",
		             e.numbers[k], dom->n[k]);
		for (int i = 0; i < dom->n[k]; i++)
			cr_assert_eq(dom->seqs[k][i], i + 1, "%s #%d: %lld",
			             e.numbers[k], i, dom->seqs[k][i]);
		/* The firehose has the same messages, the same bytes. */
		cr_assert_eq(fire->n[k], dom->n[k]);
		for (int i = 0; i < dom->n[k]; i++)
			cr_assert_str_eq(fire->raw[k][i], dom->raw[k][i]);
	}
	/* No invoice on the numbers' topic; the account's two on billing. */
	cr_assert_eq(dom->n[2], 0);
	cr_assert_eq(bill->n[2], 2);
	cr_assert_eq(bill->seqs[2][0], 1);
	cr_assert_eq(bill->seqs[2][1], 2);
	cr_assert_eq(bill->n[0] + bill->n[1], 0);

	/* Published again (as after a relay that died before marking it):
	 * the same id, the same number. */
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE outbox SET published_at = NULL WHERE "
	                         "id = (SELECT max(id) FROM outbox WHERE "
	                         "message_key = $1)",
	                         1, (const char *[]){n1}, NULL, &err),
	             0, "%s", err.message);
	/* And one more event of n1: the next number. */
	e.per_number[0] = 1;
	e.per_number[1] = 0;
	e.invoices = 0;
	cr_assert_eq(vox_pg_transaction(pg, emit_all, &e, &err), 0, "%s",
	             err.message);
	relay_all(pg, account);
	read_topic("vox.events.numbers", dom, &e);
	cr_assert_eq(dom->n[0], 5, "%d", dom->n[0]);
	cr_assert_eq(dom->seqs[0][3], 3);
	cr_assert_str_eq(dom->ids[0][3], dom->ids[0][2]);
	cr_assert_eq(dom->seqs[0][4], 4);
	cr_assert_eq(
	        t_pg_count(pg,
	                   "SELECT last_sequence FROM event_sequences WHERE "
	                   "scope = 'vox.events.numbers' AND message_key = $1",
	                   n1),
	        4);
	free(dom);
	free(fire);
	free(bill);
	vox_pg_destroy(pg);
}
