/*
 * Portability (docs/PORTING.md "POST /v1/porting/portability-checks"):
 * our checks first (a valid number of the US or CA, not already an
 * account's), then the carrier's (vox_carrier_portability) for what is
 * left. Synchronous: the caller waits for the carrier, through a client of
 * its own per server thread. The same checks guard the numbers of an order
 * when they are written and when it is submitted (porting_numbers_ok).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_phone.h"

/* Characters of one item of a check (what the OpenAPI maxLength says). */
#define CHECK_ITEM_MAX 64

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static pthread_key_t carrier_key;
static pthread_once_t carrier_once = PTHREAD_ONCE_INIT;

static void carrier_free(void *c)
{
	vox_carrier_destroy(c);
}

static void carrier_key_make(void)
{
	pthread_key_create(&carrier_key, carrier_free);
}

/* This server thread's carrier client for porting (NULL: cannot make
 * one). */
static vox_carrier_t *porting_carrier(ingress_t *in)
{
	vox_carrier_t *c;

	pthread_once(&carrier_once, carrier_key_make);
	c = pthread_getspecific(carrier_key);
	if (c == NULL) {
		vox_carrier_conf_t conf = {0};
		vox_error_t err;

		conf.base_url = in->cfg->carrier_url;
		conf.api_key = in->cfg->carrier_key;
		conf.timeout_ms = 5000; /* the customer waits for it */
		conf.max_attempts = 2;
		conf.metrics = in->metrics;
		c = vox_carrier_new(&conf, &err);
		if (c == NULL)
			vox_log(VOX_LOG_ERROR, "porting carrier client",
			        "error", err.message, NULL);
		else
			pthread_setspecific(carrier_key, c);
	}
	return c;
}

static void not_portable(vox_carrier_portability_t *p, const char *reason)
{
	p->portable = false;
	p->fast_portable = false;
	snprintf(p->not_portable_reason, sizeof(p->not_portable_reason), "%s",
	         reason);
}

/* already_on_platform for the numbers an account owns. 0, or -1 after
 * answering 503. */
static int owned_numbers(vox_http_req_t *req, ingress_t *in,
                         const char *const *e164s, int n,
                         vox_carrier_portability_t *out)
{
	json_t *list = json_array();
	char *text;
	PGresult *res;

	for (int i = 0; i < n; i++)
		if (out[i].not_portable_reason[0] == '\0')
			json_array_append_new(list, json_string(e164s[i]));
	text = vox_json_dump(list);
	json_decref(list);
	if (text == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return -1;
	}
	const char *params[] = {text};
	res = ingress_query(in, req, "ingress_porting_owned",
	                    "SELECT e164 FROM numbers WHERE e164 IN (SELECT "
	                    "json_array_elements_text($1::json)) AND "
	                    "account_id IS NOT NULL AND status IN ('active', "
	                    "'suspended', 'reserved')",
	                    1, params);
	free(text);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		for (int i = 0; i < n; i++)
			if (strcmp(e164s[i], PQgetvalue(res, r, 0)) == 0)
				not_portable(&out[i], "already_on_platform");
	PQclear(res);
	return 0;
}

int porting_portability(vox_http_req_t *req, ingress_t *in,
                        const char *const *e164s, int n,
                        vox_carrier_portability_t *out)
{
	const char **ask = calloc((size_t)n + 1, sizeof(*ask));
	int *where = calloc((size_t)n + 1, sizeof(*where));
	vox_carrier_portability_t *got = calloc((size_t)n + 1, sizeof(*got));
	vox_carrier_t *carrier;
	int nask = 0, rc = -1;

	if (ask == NULL || where == NULL || got == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		vox_phone_t p;

		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].e164, sizeof(out[i].e164), "%s", e164s[i]);
		if (vox_phone_parse(e164s[i], NULL, &p, NULL) != 0)
			not_portable(&out[i], "invalid_number");
		else if (strcmp(p.region, "US") != 0 &&
		         strcmp(p.region, "CA") != 0)
			not_portable(&out[i], "country_not_supported");
		if (p.type[0] != '\0')
			snprintf(out[i].number_type, sizeof(out[i].number_type),
			         "%s",
			         strcmp(p.type, "mobile") == 0 ||
			                         strcmp(p.type, "toll_free") ==
			                                 0
			                 ? p.type
			                 : "local");
	}
	if (owned_numbers(req, in, e164s, n, out) != 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (out[i].not_portable_reason[0] == '\0') {
			where[nask] = i;
			ask[nask++] = e164s[i];
		}
	if (nask > 0 && (carrier = porting_carrier(in)) == NULL) {
		ingress_error(req, 503, "carrier_unavailable",
		              "the carrier client could not be made", NULL);
		goto out;
	}
	for (int from = 0; from < nask; from += VOX_CARRIER_PORT_CHECK_MAX) {
		int count = nask - from < VOX_CARRIER_PORT_CHECK_MAX
		                    ? nask - from
		                    : VOX_CARRIER_PORT_CHECK_MAX;
		vox_error_t err = {0};

		if (vox_carrier_portability(carrier, ask + from, count,
		                            got + from, &err) != 0) {
			vox_log(VOX_LOG_WARN, "portability check failed",
			        "error", err.message, "request_id",
			        vox_http_request_id(req), NULL);
			vox_http_add_header(req, "Retry-After", "5");
			ingress_error(
			        req, 503, "carrier_unavailable",
			        "the carrier did not answer the "
			        "portability check: retry later",
			        json_pack("{s:s}", "reason", err.message));
			goto out;
		}
	}
	for (int k = 0; k < nask; k++) {
		vox_carrier_portability_t *p = &out[where[k]];

		*p = got[k];
		snprintf(p->e164, sizeof(p->e164), "%s", ask[k]);
		if (!p->portable && p->not_portable_reason[0] == '\0')
			not_portable(p, "number_not_found");
	}
	rc = 0;
out:
	free(ask);
	free(where);
	free(got);
	return rc;
}

/* Numbers of e164s in another open order (own_order and its children
 * excepted): the first one, malloc'd, "" when none, NULL after answering. */
static char *in_other_port(vox_http_req_t *req, ingress_t *in,
                           const char *own_order, const char *const *e164s,
                           int n)
{
	json_t *list = json_array();
	char *text, *found;
	PGresult *res;

	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_string(e164s[i]));
	text = vox_json_dump(list);
	json_decref(list);
	if (text == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	const char *params[] = {text, own_order};
	res = ingress_query(
	        in, req, "ingress_porting_other",
	        "SELECT n.e164 FROM porting_order_numbers n JOIN "
	        "porting_orders o ON o.id = n.order_id WHERE n.e164 IN (SELECT "
	        "json_array_elements_text($1::json)) AND n.status IN "
	        "('submitted', 'in-process', 'exception', "
	        "'foc-date-confirmed', "
	        "'cancel-pending') AND ($2::uuid IS NULL OR (o.id <> $2::uuid "
	        "AND o.parent_id IS DISTINCT FROM $2::uuid)) ORDER BY n.e164 "
	        "LIMIT 1",
	        2, params);
	free(text);
	if (res == NULL)
		return NULL;
	found = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	if (found == NULL)
		ingress_error(req, 500, "internal", "out of memory", NULL);
	return found;
}

bool porting_numbers_ok(vox_http_req_t *req, ingress_t *in,
                        const char *own_order, const char *const *e164s, int n,
                        vox_carrier_portability_t *out)
{
	char *other = in_other_port(req, in, own_order, e164s, n);
	char msg[200];

	if (other == NULL)
		return false;
	if (other[0] != '\0') {
		snprintf(msg, sizeof(msg),
		         "%s is already in another open porting order", other);
		porting_rule(req, "number_in_other_port", msg,
		             json_pack("{s:s}", "phone_number", other));
		free(other);
		return false;
	}
	free(other);
	if (porting_portability(req, in, e164s, n, out) != 0)
		return false;
	for (int i = 0; i < n; i++) {
		const char *reason = out[i].not_portable_reason;

		if (out[i].portable)
			continue;
		snprintf(msg, sizeof(msg), "%s cannot be ported: %s",
		         out[i].e164, reason);
		return porting_rule(
		        req,
		        /* ours, or the carrier's (a number it sold us) */
		        strcmp(reason, "already_on_platform") == 0
		                ? "number_already_owned"
		                : "number_not_portable",
		        msg,
		        json_pack("{s:s, s:s}", "phone_number", out[i].e164,
		                  "reason", reason));
	}
	return true;
}

static json_t *check_json(const vox_carrier_portability_t *p)
{
	return json_pack(
	        "{s:s, s:b, s:b, s:o, s:o, s:o, s:{s:b, s:b}}", "phone_number",
	        p->e164, "portable", p->portable, "fast_portable",
	        p->fast_portable, "not_portable_reason",
	        p->not_portable_reason[0] ? json_string(p->not_portable_reason)
	                                  : json_null(),
	        "losing_carrier",
	        p->losing_carrier[0]
	                ? json_pack("{s:s, s:o}", "name", p->losing_carrier,
	                            "spid",
	                            p->spid[0] ? json_string(p->spid)
	                                       : json_null())
	                : json_null(),
	        "phone_number_type",
	        p->number_type[0] ? json_string(p->number_type) : json_null(),
	        "requirements", "pin_required", p->pin_required,
	        "account_number_required", p->account_number_required);
}

void ingress_porting_check(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"phone_numbers", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	vox_carrier_portability_t *out = NULL;
	const char **e164s = NULL;
	/* an item as written: 64 characters of up to 4 bytes, never cut */
	char(*canonical)[CHECK_ITEM_MAX * 4 + 1] = NULL;
	json_t *body, *list, *value, *data;
	size_t i, n;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	list = json_object_get(body, "phone_numbers");
	n = json_array_size(list);
	if (!json_is_array(list) || n == 0 || n > VOX_PORTING_CHECK_MAX) {
		porting_bad_field(req, "phone_numbers",
		                  "must be a list of 1 to 250 phone numbers");
		goto out;
	}
	for (i = 0; i < n; i++) {
		value = json_array_get(list, i);
		if (!json_is_string(value) ||
		    utf8_chars(json_string_value(value)) > CHECK_ITEM_MAX) {
			porting_bad_field(req, "phone_numbers",
			                  "must hold strings of at most 64 "
			                  "characters");
			goto out;
		}
	}
	if (!idem_begin(req, ir))
		goto out;
	out = calloc(n, sizeof(*out));
	e164s = calloc(n, sizeof(*e164s));
	canonical = calloc(n, sizeof(*canonical));
	if (out == NULL || e164s == NULL || canonical == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		goto out;
	}
	/* A number that does not parse stays as written: our check calls
	 * it invalid_number, the carrier never sees it. */
	json_array_foreach(list, i, value)
	{
		vox_phone_t p;

		if (vox_phone_parse(json_string_value(value), NULL, &p, NULL) ==
		    0)
			snprintf(canonical[i], sizeof(canonical[i]), "%s",
			         p.e164);
		else
			snprintf(canonical[i], sizeof(canonical[i]), "%s",
			         json_string_value(value));
		e164s[i] = canonical[i];
	}
	if (porting_portability(req, ir->in, e164s, (int)n, out) != 0)
		goto out;
	data = json_array();
	for (i = 0; i < n; i++) {
		bool invalid = strcmp(out[i].not_portable_reason,
		                      "invalid_number") == 0;
		json_t *item;

		/* Invalid ones are answered as they were sent: e164 holds
		 * them cut to its size, maybe inside a UTF-8 character,
		 * which json_pack refuses (the item was dropped). */
		if (invalid)
			out[i].e164[0] = '\0';
		item = check_json(&out[i]);
		if (invalid)
			json_object_set(item, "phone_number",
			                json_array_get(list, i));
		json_array_append_new(data, item);
	}
	ingress_reply(req, 200, json_pack("{s:o}", "data", data));
out:
	free(out);
	free(e164s);
	free(canonical);
	json_decref(body);
}
