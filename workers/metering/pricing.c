/*
 * metering: what a batch's records cost. Each message is parsed (envelope
 * and record; bad ones become exceptions), the batch's numbers are looked
 * up in one query (owner, country, type, account currency), and each
 * record is priced in memory with its account's rate card.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "vox_buf.h"
#include "vox_json.h"

/* ---------------------------------------------------------------- numbers */

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct number *meter_number_slot(struct batch *b, const char *e164)
{
	size_t i = hash(e164) & (b->nums_cap - 1);

	while (b->nums[i].used && strcmp(b->nums[i].e164, e164) != 0)
		i = (i + 1) & (b->nums_cap - 1);
	if (!b->nums[i].used) {
		b->nums[i].used = 1;
		snprintf(b->nums[i].e164, sizeof(b->nums[i].e164), "%s", e164);
	}
	return &b->nums[i];
}

int meter_numbers_load(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	vox_buf_t list;
	PGresult *res = NULL;
	size_t count = 0;
	int rc;

	/* a text[] literal: E.164 numbers need no quoting */
	vox_buf_init(&list, b->nums_cap * sizeof(b->nums[0].e164) + 3);
	vox_buf_add(&list, "{", 1);
	for (size_t i = 0; i < b->nums_cap; i++)
		if (b->nums[i].used) {
			if (count++ > 0)
				vox_buf_add(&list, ",", 1);
			vox_buf_adds(&list, b->nums[i].e164);
		}
	vox_buf_add(&list, "}", 1);
	rc = vox_buf_check(&list, "number list", err);
	if (rc != 0)
		return rc;
	const char *params[] = {vox_buf_str(&list)};
	rc = vox_pg_execp(pg, "meter_numbers",
	                  "SELECT n.e164, n.id, n.account_id, n.country, "
	                  "n.number_type, a.currency FROM numbers n "
	                  "JOIN accounts a ON a.id = n.account_id "
	                  "WHERE n.e164 = ANY($1::text[]) AND n.status IN "
	                  "('purchased', 'active', 'suspended', 'porting')",
	                  1, params, &res, err);
	vox_buf_free(&list);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		struct number *nm = meter_number_slot(b, PQgetvalue(res, i, 0));

		snprintf(nm->id, sizeof(nm->id), "%s", PQgetvalue(res, i, 1));
		snprintf(nm->account_id, sizeof(nm->account_id), "%s",
		         PQgetvalue(res, i, 2));
		snprintf(nm->country, sizeof(nm->country), "%s",
		         PQgetvalue(res, i, 3));
		snprintf(nm->type, sizeof(nm->type), "%s",
		         PQgetvalue(res, i, 4));
		snprintf(nm->currency, sizeof(nm->currency), "%s",
		         PQgetvalue(res, i, 5));
		nm->found = 1;
	}
	PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------- parsing */

/* reason = what + detail (detail cut to 150 bytes). */
static void reject(struct rec *r, const char *code, const char *what,
                   const char *detail)
{
	r->reason_code = code;
	snprintf(r->reason, sizeof(r->reason), "%.40s%.150s", what, detail);
}

/* The envelope of a message from our own topic: JSON (duplicate keys
 * refused; jansson bounds the depth), an object with specversion 1.0 and
 * an object data. Cheaper than vox_event_parse, whose input limits are
 * for messages from outside. */
static int envelope_parse(const char *payload, size_t len, json_t **out,
                          vox_error_t *err)
{
	json_error_t jerr;
	json_t *ev = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *v;

	*out = NULL;
	if (ev == NULL)
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "invalid JSON at line %d, column %d: %.120s", jerr.line,
		        jerr.column, jerr.text);
	v = json_string_value(json_object_get(ev, "specversion"));
	if (!json_is_object(ev) || v == NULL || strcmp(v, "1.0") != 0 ||
	    !json_is_object(json_object_get(ev, "data"))) {
		json_decref(ev);
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a CloudEvents 1.0 envelope with an "
		                     "object data");
	}
	*out = ev;
	return 0;
}

void meter_parse(struct batch *b, size_t msg, struct rec *r)
{
	const vox_batch_msg_t *bm = &b->msgs[msg];
	json_t *ev = NULL, *data;
	const char *type, *carrier, *code, *trace;
	vox_error_t err;

	memset(r, 0, sizeof(*r));
	r->msg = msg;
	snprintf(r->carrier, sizeof(r->carrier), "unknown");
	if (envelope_parse(bm->payload, bm->len, &ev, &err) != 0) {
		size_t keep = bm->len > 8192 ? (size_t)8192 : bm->len;

		/* json_stringn refuses invalid UTF-8, and jsonb refuses the
		 * \u0000 a NUL byte would become (the batch would fail for
		 * good and run one message at a time): neither is kept as
		 * text. */
		if (memchr(bm->payload, '\0', keep) == NULL)
			r->data = json_pack("{s:s%}", "raw", bm->payload, keep);
		if (r->data == NULL)
			r->data = json_pack("{s:s, s:I}", "raw",
			                    "(not UTF-8 text, or NUL bytes)",
			                    "bytes", (json_int_t)bm->len);
		reject(r, "invalid_event", "not a CloudEvent: ", err.message);
		return;
	}
	data = json_object_get(ev, "data");
	r->data = json_incref(data);
	trace = vox_json_str(ev, "traceparent");
	if (trace != NULL && strlen(trace) < sizeof(r->trace))
		memcpy(r->trace, trace, strlen(trace) + 1);
	type = vox_json_str(ev, "type");
	carrier = json_string_value(json_object_get(data, "carrier"));
	if (vox_carrier_name_valid(carrier))
		snprintf(r->carrier, sizeof(r->carrier), "%s", carrier);
	if (type == NULL || strcmp(type, VOX_CDR_EVENT_TYPE) != 0)
		reject(r, "invalid_event",
		       "event type is not vox.cdr.received: ",
		       type ? type : "(none)");
	else if (vox_cdr_check(data, &r->cdr, &code, &err) != 0)
		reject(r, code, "", err.message);
	if (json_is_integer(json_object_get(data, "rerate_of")))
		r->rerate_of =
		        json_integer_value(json_object_get(data, "rerate_of"));
	/* An invalid record may still carry a usable id, so its exception
	 * row is shared by redeliveries. */
	if (r->cdr.id[0] == '\0') {
		const char *id = json_string_value(json_object_get(data, "id"));

		if (id != NULL && strlen(id) <= VOX_CDR_ID_MAX)
			snprintf(r->cdr.id, sizeof(r->cdr.id), "%s", id);
	}
	json_decref(ev);
}

void meter_rate(struct batch *b, struct rec *r)
{
	const vox_rate_card_t *card;
	vox_error_t err;
	int rc;

	r->num = meter_number_slot(b, r->cdr.number);
	if (!r->num->found) {
		reject(r, "unknown_number",
		       "not a number of any account: ", r->cdr.number);
		return;
	}
	card = meter_card_for(b->m, r->num->account_id, r->num->currency,
	                      r->cdr.started_us);
	if (card == NULL) {
		reject(r, "no_rate_card",
		       "no rate card in force at started_at for account ",
		       r->num->account_id);
		return;
	}
	rc = vox_rate_cdr(card, &r->cdr, r->num->country, r->num->type,
	                  &r->charge, &err);
	if (rc != 0) {
		reject(r, rc == VOX_ERR_NOT_FOUND ? "no_rate" : "cost_overflow",
		       "", err.message);
		return;
	}
	snprintf(r->card_id, sizeof(r->card_id), "%s", card->id);
	snprintf(r->currency, sizeof(r->currency), "%s", card->currency);
	r->rate_id = r->charge.rate->id;
	r->charge.rate = NULL;
	vox_uuid7(r->usage_id);
}
