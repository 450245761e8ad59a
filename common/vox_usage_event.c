/* vox_usage_event: checks of the metering worker's events. */
#include "vox_usage_event.h"

#include <string.h>

#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_time.h"
#include "vox_uuid.h"

static int bad(vox_error_t *err, const char *what)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s", what);
}

static int str_in(const json_t *o, const char *key, const char *const *set)
{
	const char *v = json_string_value(json_object_get(o, key));

	for (; v != NULL && *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return 1;
	return 0;
}

static int nonneg(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int uuid_field(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL && vox_uuid_valid(v);
}

static int time_field(const json_t *o, const char *key)
{
	int64_t us;

	return vox_rfc3339_parse(json_string_value(json_object_get(o, key)),
	                         &us) == 0;
}

/* A key and its string value, the key a literal: ,"key": */
#define ADD_STR(b, lit, s)                                                     \
	(vox_buf_add(b, lit, sizeof(lit) - 1), vox_buf_add_json_str(b, s))
#define ADD_INT(b, lit, v)                                                     \
	(vox_buf_add(b, lit, sizeof(lit) - 1), vox_buf_add_int(b, v))

static void rated_record(vox_buf_t *b, const vox_rated_rec_t *r)
{
	char started[40];

	vox_rfc3339_format(r->started_us, started, sizeof(started));
	ADD_STR(b, "{\"id\":", r->usage_id);
	ADD_STR(b, ",\"carrier\":", r->carrier);
	ADD_STR(b, ",\"carrier_cdr_id\":", r->carrier_cdr_id);
	ADD_STR(b, ",\"number\":", r->number);
	ADD_STR(b, ",\"event_type\":", vox_cdr_type_name(r->type));
	ADD_STR(b, ",\"started_at\":", started);
	ADD_INT(b, ",\"billable_s\":", r->billable_s);
	ADD_INT(b, ",\"units\":", r->units);
	ADD_INT(b, ",\"cost_micros\":", r->cost_micros);
	vox_buf_add(b, "}", 1);
}

int vox_usage_rated_event(vox_buf_t *b, const char *account_id,
                          const char *currency, const char *parent,
                          const vox_rated_rec_t *recs, size_t n)
{
	int64_t cost = 0;

	for (size_t i = 0; i < n; i++)
		cost += recs[i].cost_micros;
	vox_event_head(b, VOX_USAGE_RATED_TYPE, account_id, account_id, parent);
	ADD_STR(b, "{\"account_id\":", account_id);
	ADD_STR(b, ",\"currency\":", currency);
	ADD_INT(b, ",\"count\":", (int64_t)n);
	ADD_INT(b, ",\"cost_micros\":", cost);
	vox_buf_adds(b, ",\"records\":[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			vox_buf_add(b, ",", 1);
		rated_record(b, &recs[i]);
	}
	return vox_buf_adds(b, "]}}");
}

int vox_usage_rated_validate(const json_t *data, vox_error_t *err)
{
	static const char *const types[] = {"inbound_call", "outbound_call",
	                                    "sms_received", "sms_sent", NULL};
	const json_t *records = json_object_get(data, "records"), *r;
	const char *cur = json_string_value(json_object_get(data, "currency"));
	long long sum = 0;
	size_t i;

	if (!json_is_object(data) || !uuid_field(data, "account_id"))
		return bad(err, "account_id must be a UUID");
	if (cur == NULL || strlen(cur) != 3)
		return bad(err, "currency must be an ISO 4217 code");
	if (!json_is_array(records) || json_array_size(records) == 0)
		return bad(err, "records must be a non-empty array");
	if (!nonneg(data, "count") ||
	    (size_t)json_integer_value(json_object_get(data, "count")) !=
	            json_array_size(records))
		return bad(err, "count must be the number of records");
	json_array_foreach(records, i, r)
	{
		if (!uuid_field(r, "id") ||
		    !vox_carrier_name_valid(
		            json_string_value(json_object_get(r, "carrier"))) ||
		    !json_is_string(json_object_get(r, "carrier_cdr_id")) ||
		    !json_is_string(json_object_get(r, "number")) ||
		    !str_in(r, "event_type", types) ||
		    !time_field(r, "started_at") || !nonneg(r, "billable_s") ||
		    !nonneg(r, "units") || !nonneg(r, "cost_micros"))
			return bad(err,
			           "a record lacks a field or has a bad one");
		sum += json_integer_value(json_object_get(r, "cost_micros"));
	}
	if (!nonneg(data, "cost_micros") ||
	    json_integer_value(json_object_get(data, "cost_micros")) != sum)
		return bad(err, "cost_micros must be the records' sum");
	return 0;
}

int vox_notification_validate(const json_t *data, vox_error_t *err)
{
	static const char *const kinds[] = {"usage_trigger", NULL};
	static const char *const categories[] = {
	        "all", "calls",       "calls_inbound", "calls_outbound",
	        "sms", "sms_inbound", "sms_outbound",  NULL};
	static const char *const by[] = {"count", "usage", "price", NULL};
	static const char *const recurring[] = {"daily", "monthly", "none",
	                                        NULL};
	const json_t *threshold = json_object_get(data, "threshold");
	const char *day, *url;

	if (!json_is_object(data) || !str_in(data, "kind", kinds))
		return bad(err, "kind must be usage_trigger");
	if (!uuid_field(data, "trigger_id") || !uuid_field(data, "account_id"))
		return bad(err, "trigger_id and account_id must be UUIDs");
	if (!str_in(data, "category", categories) ||
	    !str_in(data, "trigger_by", by) ||
	    !str_in(data, "recurring", recurring))
		return bad(err, "category, trigger_by or recurring is not one "
		                "of its values");
	if (!json_is_integer(threshold) || json_integer_value(threshold) <= 0 ||
	    !nonneg(data, "value") ||
	    json_integer_value(json_object_get(data, "value")) <
	            json_integer_value(threshold))
		return bad(err, "threshold must be positive and value at least "
		                "the threshold");
	day = json_string_value(json_object_get(data, "period_start"));
	if (day == NULL || strlen(day) != 10 || day[4] != '-' || day[7] != '-')
		return bad(err, "period_start must be a date (YYYY-MM-DD)");
	url = json_string_value(json_object_get(data, "callback_url"));
	if (url == NULL || (strncmp(url, "https://", 8) != 0 &&
	                    strncmp(url, "http://", 7) != 0))
		return bad(err, "callback_url must be an http(s) URL");
	if (!json_is_null(json_object_get(data, "friendly_name")) &&
	    !json_is_string(json_object_get(data, "friendly_name")))
		return bad(err, "friendly_name must be a string or null");
	return 0;
}
