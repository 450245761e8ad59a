/*
 * Tests of the one event builder (vox_event): the table of the types we
 * send, W3C traceparent children, the jansson and text envelopes agreeing,
 * and the two text events built on it (vox.cdr.received, vox.usage.rated)
 * at the documented maximum length of every carrier-supplied field, read
 * back with the same checks consumers and tests/unit/test_schemas.c use.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_canary.h"
#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_usage_event.h"
#include "vox_uuid.h"

static const char parent[] =
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

Test(event, table_gives_source_and_topic)
{
	static const char *const sent[] = {
	        VOX_CANARY_TYPE,       VOX_CANARY_DONE_TYPE,
	        VOX_CDR_EVENT_TYPE,    VOX_USAGE_RATED_TYPE,
	        VOX_NOTIFICATION_TYPE, "vox.order.requested",
	        "number.purchased",    "reservation.expired",
	};

	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		const vox_event_kind_t *k = vox_event_kind(sent[i]);

		cr_assert_not_null(k, "%s", sent[i]);
		cr_assert_str_eq(k->type, sent[i]);
		cr_assert_eq(strncmp(k->source, "/voxlink/", 9), 0, "%s",
		             k->source);
		cr_assert_eq(strncmp(k->topic, "vox.", 4), 0, "%s", k->topic);
	}
	cr_assert_str_eq(vox_event_kind(VOX_USAGE_RATED_TYPE)->topic,
	                 "vox.events");
	cr_assert_str_eq(vox_event_kind(VOX_NOTIFICATION_TYPE)->topic,
	                 "vox.cmd.notifications");
	cr_assert_str_eq(vox_event_kind(VOX_CDR_EVENT_TYPE)->topic,
	                 VOX_CDR_TOPIC);
	cr_assert_null(vox_event_kind("vox.no.such.type"));
	cr_assert_null(vox_event_kind(NULL));
	cr_assert_null(vox_event_build("vox.no.such.type", NULL, NULL, NULL,
	                               json_object()));
}

static bool traceparent_shaped(const char *tp)
{
	if (strlen(tp) != VOX_TRACEPARENT_LEN - 1 || strncmp(tp, "00-", 3))
		return false;
	for (int i = 3; i < 55; i++)
		if (i != 35 && i != 52 && !strchr("0123456789abcdef", tp[i]))
			return false;
	return tp[35] == '-' && tp[52] == '-';
}

Test(event, traceparent_child_keeps_the_trace)
{
	char child[VOX_TRACEPARENT_LEN], other[VOX_TRACEPARENT_LEN];
	static const char *const bad[] = {
	        "",
	        "garbage",
	        "01-0af7651916cd43dd8448eb211c80319c-"
	        "b7ad6b7169203331-01",
	        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
	        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
	        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
	        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x"};

	vox_traceparent_child(parent, child);
	cr_assert(traceparent_shaped(child), "%s", child);
	cr_assert_eq(strncmp(child, parent, 36), 0, "trace id kept: %s", child);
	cr_assert_neq(strncmp(child + 36, parent + 36, 16), 0,
	              "a new span id: %s", child);
	cr_assert_str_eq(child + 52, "-01");
	vox_traceparent_child(parent, other);
	cr_assert_neq(strcmp(child, other), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_traceparent_child(bad[i], child);
		cr_assert(traceparent_shaped(child), "%s", child);
		cr_assert_neq(strncmp(child + 3,
		                      bad[i] + (strlen(bad[i]) > 3 ? 3 : 0),
		                      32),
		              0, "a new trace for %s", bad[i]);
	}
	vox_traceparent_child(NULL, child);
	cr_assert(traceparent_shaped(child), "%s", child);
}

/* The text envelope with data {} appended, parsed. */
static json_t *head_parsed(const char *type, const char *subject,
                           const char *account, const char *trace)
{
	vox_buf_t b;
	vox_error_t err;
	json_t *ev = NULL;

	vox_buf_init(&b, VOX_EVENT_MAX_BYTES);
	cr_assert_eq(vox_event_head(&b, type, subject, account, trace), 0);
	cr_assert_eq(vox_buf_adds(&b, "{}}"), 0);
	cr_assert_eq(
	        vox_event_parse(vox_buf_str(&b), vox_buf_len(&b), &ev, &err), 0,
	        "%s: %s", err.message, vox_buf_str(&b));
	vox_buf_free(&b);
	return ev;
}

Test(event, text_and_json_envelopes_agree)
{
	json_t *text =
	        head_parsed(VOX_NOTIFICATION_TYPE, "a \"quoted\"\n one",
	                    "01a20f52-53f8-73dc-941d-e25bb75cb2ca", parent);
	json_t *obj = vox_event_build(
	        VOX_NOTIFICATION_TYPE, "a \"quoted\"\n one",
	        "01a20f52-53f8-73dc-941d-e25bb75cb2ca", parent, NULL);
	const char *key;
	json_t *v;

	cr_assert_not_null(obj);
	cr_assert_eq(json_object_size(text), json_object_size(obj));
	json_object_foreach(obj, key, v)
	{
		json_t *t = json_object_get(text, key);

		cr_assert_not_null(t, "%s missing from the text", key);
		if (strcmp(key, "id") == 0 || strcmp(key, "time") == 0 ||
		    strcmp(key, "traceparent") == 0)
			continue;
		cr_assert(json_equal(t, v), "%s differs", key);
	}
	cr_assert_str_eq(vox_json_str(text, "subject"), "a \"quoted\"\n one");
	cr_assert_str_eq(vox_json_str(obj, "source"), "/voxlink/metering");
	cr_assert_eq(strncmp(vox_json_str(text, "traceparent"), parent, 36), 0);
	cr_assert_eq(strncmp(vox_json_str(obj, "traceparent"), parent, 36), 0);
	json_decref(text);
	json_decref(obj);
	/* account unknown: accountid null, no subject: none */
	text = head_parsed(VOX_CDR_EVENT_TYPE, NULL, NULL, NULL);
	cr_assert(json_is_null(json_object_get(text, "accountid")));
	cr_assert_null(json_object_get(text, "subject"));
	json_decref(text);
}

/* A record with every carrier-supplied field at its maximum. */
static void longest_cdr(vox_cdr_t *cdr, char c)
{
	memset(cdr, 0, sizeof(*cdr));
	memset(cdr->id, c, VOX_CDR_ID_MAX);
	cdr->type = VOX_CDR_OUTBOUND_CALL;
	memcpy(cdr->from, "+123456789012345", 17); /* E.164: 15 digits */
	memset(cdr->to, 'z', VOX_CDR_PARTY_MAX);
	memcpy(cdr->number, "+123456789012345", 17);
	cdr->started_us = 4102444799999999LL; /* 2099-12-31T23:59:59.999999Z */
	cdr->duration_s = VOX_CDR_MAX_DURATION_S;
	cdr->segments = VOX_CDR_MAX_SEGMENTS;
}

Test(event, cdr_event_at_maximum_lengths)
{
	char carrier[VOX_CARRIER_NAME_MAX + 1], ev[1024];
	vox_error_t err;
	vox_cdr_t cdr;
	json_t *parsed = NULL;
	int n;

	memset(carrier, 'c', VOX_CARRIER_NAME_MAX);
	carrier[VOX_CARRIER_NAME_MAX] = '\0';
	longest_cdr(&cdr, ':');
	cdr.segments = 0; /* a call */
	n = vox_cdr_event(&cdr, carrier, "file", ev, sizeof(ev));
	cr_assert_gt(n, 0, "1024 bytes is always enough");
	cr_assert_eq(vox_event_parse(ev, (size_t)n, &parsed, &err), 0, "%s",
	             err.message);
	cr_assert_str_eq(vox_json_str(parsed, "source"), "/voxlink/carriers");
	cr_assert_str_eq(vox_json_str(json_object_get(parsed, "data"), "id"),
	                 cdr.id);
	cr_assert_str_eq(
	        vox_json_str(json_object_get(parsed, "data"), "carrier"),
	        carrier);
	json_decref(parsed);
	/* one byte short of what it needs: refused, nothing written past */
	memset(ev, 'x', sizeof(ev));
	cr_assert_eq(vox_cdr_event(&cdr, carrier, "file", ev, (size_t)n), -1);
	cr_assert_eq(ev[n], 'x');
}

/* n records of account at maximum length; ids with a quote when odd. */
static json_t *rated_parsed(size_t n, bool quote, size_t *bytes)
{
	static char ids[VOX_USAGE_RATED_MAX][VOX_CDR_ID_MAX + 1];
	static char uuids[VOX_USAGE_RATED_MAX][VOX_UUID_STRLEN];
	vox_rated_rec_t *recs = calloc(n, sizeof(*recs));
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	vox_buf_t b;
	vox_error_t err;
	json_t *ev = NULL;

	memset(carrier, 'k', VOX_CARRIER_NAME_MAX);
	carrier[VOX_CARRIER_NAME_MAX] = '\0';
	for (size_t i = 0; i < n; i++) {
		memset(ids[i], 'a' + (char)(i % 26), VOX_CDR_ID_MAX);
		ids[i][VOX_CDR_ID_MAX] = '\0';
		if (quote)
			ids[i][i % VOX_CDR_ID_MAX] = '"';
		vox_uuid7(uuids[i]);
		recs[i] = (vox_rated_rec_t){
		        .usage_id = uuids[i],
		        .carrier = carrier,
		        .carrier_cdr_id = ids[i],
		        .number = "+123456789012345",
		        .type = (vox_cdr_type_t)(i % VOX_CDR_NTYPES),
		        .started_us = 4102444799999999LL,
		        .billable_s = VOX_CDR_MAX_DURATION_S,
		        .units = VOX_CDR_MAX_SEGMENTS,
		        .cost_micros = 1000000000000LL,
		};
	}
	vox_buf_init(&b, VOX_EVENT_MAX_BYTES);
	cr_assert_eq(vox_usage_rated_event(&b,
	                                   "01a20f52-53f8-73dc-941d-"
	                                   "e25bb75cb2ca",
	                                   "USD", parent, recs, n),
	             0);
	*bytes = vox_buf_len(&b);
	cr_assert_eq(
	        vox_event_parse(vox_buf_str(&b), vox_buf_len(&b), &ev, &err), 0,
	        "%s", err.message);
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(
		        json_object_get(json_object_get(ev, "data"), "records"),
		        i);

		cr_assert_str_eq(vox_json_str(r, "carrier_cdr_id"), ids[i]);
		cr_assert_str_eq(vox_json_str(r, "id"), uuids[i]);
	}
	vox_buf_free(&b);
	free(recs);
	return ev;
}

Test(event, rated_event_of_500_longest_records)
{
	size_t bytes;
	vox_error_t err;
	json_t *ev = rated_parsed(VOX_USAGE_RATED_MAX, false, &bytes);
	json_t *data = json_object_get(ev, "data");

	cr_log_info("500 longest records: %zu bytes", bytes);
	cr_assert_gt(bytes, 1024 + VOX_USAGE_RATED_MAX * 360,
	             "longer than the old fixed buffer");
	cr_assert_eq(vox_usage_rated_validate(data, &err), 0, "%s",
	             err.message);
	cr_assert_str_eq(vox_json_str(ev, "type"), VOX_USAGE_RATED_TYPE);
	cr_assert_str_eq(vox_json_str(ev, "source"), "/voxlink/metering");
	cr_assert_str_eq(vox_json_str(ev, "accountid"),
	                 "01a20f52-53f8-73dc-941d-e25bb75cb2ca");
	cr_assert_eq(json_integer_value(json_object_get(data, "cost_micros")),
	             500 * 1000000000000LL);
	json_decref(ev);
	/* strings that need escaping come back the same */
	ev = rated_parsed(7, true, &bytes);
	json_decref(ev);
}
