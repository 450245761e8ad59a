/*
 * The routing endpoints (docs/ROUTING.md, docs/API.md):
 *   POST /v1/carrier/calls/route   the carrier asks, per call, what to do
 *                                  with a call to one of our numbers;
 *                                  answered from the in-memory table
 *                                  (routing.c), authenticated like the CDR
 *                                  push (carrier_auth.c)
 *   GET /v1/numbers/{id}/business-hours/preview
 *                                  the next open/close transitions of a
 *                                  number's schedule, local and UTC
 * A number we do not route (unknown, not active) is answered 200 "reject"
 * with rule "number_unknown", not 404: the carrier needs an answer for the
 * call either way, and a 4xx would read as its own mistake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier_auth.h"
#include "ingress.h"
#include "routing.h"
#include "vox_json.h"
#include "vox_schedule.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define PREVIEW_MAX_DAYS     31
#define PREVIEW_DEFAULT_DAYS 7
#define ROUTE_FROM_MAX       64
#define ROUTE_TO_MAX         20 /* E.164: + and at most 15 digits */

static json_t *str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_string(s) : json_null();
}

/* UTC, with microseconds only when the instant has some (transitions are
 * whole minutes). */
static json_t *instant_json(int64_t us)
{
	char text[40], *dot;

	vox_rfc3339_format(us, text, sizeof(text));
	if (us % 1000000 == 0 && (dot = strchr(text, '.')) != NULL)
		snprintf(dot, sizeof(text) - (size_t)(dot - text), "Z");
	return json_string(text);
}

/* The instants a schedule is evaluated at: 1970..2199, UTC. */
#define INSTANT_MAX_US 7258118400000000LL /* 2200-01-01T00:00:00Z */

static bool instant_parse(const char *text, int64_t *us)
{
	return vox_rfc3339_parse(text, us) == 0 && *us >= 0 &&
	       *us < INSTANT_MAX_US;
}

/* "+" then 7..15 digits, the first not 0 (the numbers table's own check):
 * whether the number is ours is the table's answer; libphonenumber's
 * validity check would cost more than the decision. */
static bool e164_shaped(const char *s)
{
	size_t digits = strspn(s + 1, "0123456789");

	return s[0] == '+' && s[1] >= '1' && s[1] <= '9' && digits >= 7 &&
	       digits <= 15 && s[1 + digits] == '\0';
}

/* Characters (code points) of a UTF-8 string, as JSON Schema counts. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static void bad_field(vox_http_req_t *req, const char *field,
                      const char *message)
{
	vox_http_reply_error(req, 400, "invalid_body", message,
	                     json_pack("{s:s}", "field", field));
}

/* to, from, at from the body: false after answering 400/415. */
static bool route_args(vox_http_req_t *req, char to[ROUTE_TO_MAX],
                       int64_t *at_us)
{
	static const char *const allowed[] = {"to", "from", "at", NULL};
	json_t *body = ingress_body(req, allowed, false);
	const json_t *from, *at;
	const char *called;
	bool ok = false;

	if (body == NULL)
		return false;
	called = vox_json_str(body, "to");
	from = json_object_get(body, "from");
	at = json_object_get(body, "at");
	if (called == NULL || !e164_shaped(called)) {
		bad_field(
		        req, "to",
		        "to must be the called number in E.164 (+14155550100)");
	} else if (!json_is_string(from) ||
	           utf8_chars(json_string_value(from)) > ROUTE_FROM_MAX) {
		bad_field(req, "from",
		          "from must be the caller's number or id as a string "
		          "(at most 64 characters; \"\" when withheld)");
	} else if (at != NULL &&
	           (!json_is_string(at) ||
	            !instant_parse(json_string_value(at), at_us))) {
		bad_field(req, "at",
		          "at must be an RFC 3339 date-time (1970..2199)");
	} else {
		ok = true;
	}
	if (ok)
		snprintf(to, ROUTE_TO_MAX, "%s", called);
	json_decref(body);
	return ok;
}

static json_t *decision_json(const routing_decision_t *d, const char *to,
                             int64_t at_us)
{
	return json_pack(
	        "{s:s, s:o, s:s, s:o, s:o, s:o, s:s, s:o, s:o}", "action",
	        routing_action_name(d->action), "at", instant_json(at_us),
	        "number", to, "destination", str_or_null(d->destination),
	        "failover_destination", str_or_null(d->failover), "timeout_s",
	        d->timeout_s > 0 ? json_integer(d->timeout_s) : json_null(),
	        "rule", d->rule, "state",
	        d->has_state ? json_string(vox_schedule_state_name(d->state))
	                     : json_null(),
	        "next_transition_at",
	        d->has_next ? instant_json(d->next_us) : json_null());
}

void ingress_call_route(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	carrier_caller_t who;
	routing_decision_t decision;
	char to[ROUTE_TO_MAX];
	int64_t at_us = vox_now_us();
	vox_error_t err;

	if (carrier_auth_check(req, in, "route", in->cfg->rate_route, &who) !=
	    0)
		return;
	/* Only a decision uses the signature up: after any other answer the
	 * same signed request may be sent again. */
	if (!route_args(req, to, &at_us))
		goto refused;
	if (!routing_ready(in->routing)) {
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(req, 503, "routing_unavailable",
		                     "the routing table is still loading: "
		                     "retry in a second",
		                     NULL);
		goto refused;
	}
	if (routing_decide(in->routing, to, at_us, &decision, &err) != 0) {
		if (err.code == VOX_ERR_INVALID)
			bad_field(req, "at", err.message);
		else
			vox_http_reply_error(req, 500, "internal", err.message,
			                     NULL);
		goto refused;
	}
	vox_counter_inc(in->routes_decided);
	vox_http_reply_json(req, 200, decision_json(&decision, to, at_us));
	return;
refused:
	carrier_auth_forget(in, &who);
}

struct preview {
	json_t *list;
};

static int preview_add(const vox_schedule_transition_t *t, void *arg)
{
	struct preview *p = arg;

	json_array_append_new(
	        p->list,
	        json_pack("{s:o, s:s, s:s, s:s}", "at", instant_json(t->at_us),
	                  "local", t->local, "state",
	                  vox_schedule_state_name(t->state), "rule", t->rule));
	return 0;
}

/* from and days from the query string: false after answering 400. */
static bool preview_args(vox_http_req_t *req, int64_t *from_us, int *days)
{
	const char *from = vox_http_query(req, "from");
	const char *days_arg = vox_http_query(req, "days");
	char *end;
	long n;

	*from_us = vox_now_us();
	*days = PREVIEW_DEFAULT_DAYS;
	if (from != NULL && !instant_parse(from, from_us))
		return ingress_bad_param(req, "from",
		                         "an RFC 3339 date-time (1970..2199)");
	if (days_arg != NULL) {
		n = strtol(days_arg, &end, 10);
		if (*days_arg == '\0' || *end != '\0' || n < 1 ||
		    n > PREVIEW_MAX_DAYS)
			return ingress_bad_param(req, "days",
			                         "an integer 1..31");
		*days = (int)n;
	}
	return true;
}

/* The schedule of row 0 (business_hours, account zone): 0 with *sched
 * NULL when there is none (always open), or answered. */
static int preview_schedule(vox_http_req_t *req, const PGresult *res,
                            vox_schedule_t **sched)
{
	json_t *doc = PQgetisnull(res, 0, 0)
	                      ? NULL
	                      : json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	vox_error_t err;
	int rc = 0;

	*sched = NULL;
	if (json_is_object(doc) && json_object_size(doc) > 0 &&
	    vox_schedule_parse(doc, PQgetvalue(res, 0, 1), sched, &err) != 0) {
		ingress_error(req, 409, "business_hours_invalid", err.message,
		              NULL);
		rc = -1;
	}
	json_decref(doc);
	return rc;
}

void ingress_hours_preview(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	vox_schedule_state_t st = {.state = VOX_SCHEDULE_OPEN};
	struct preview p = {NULL};
	vox_schedule_t *sched = NULL;
	PGresult *res = NULL;
	int64_t from_us;
	vox_error_t err;
	int days;

	if (ir == NULL || !preview_args(req, &from_us, &days))
		return;
	if (id == NULL || !vox_uuid_valid(id)) {
		ingress_error(req, 404, "number_not_found",
		              "no number has this id", NULL);
		return;
	}
	{
		const char *params[] = {id, ir->who.account_id};

		res = ingress_query(
		        ir->in, req, "ingress_hours_preview",
		        "SELECT c.business_hours::text, a.timezone FROM "
		        "numbers n JOIN accounts a ON a.id = n.account_id "
		        "LEFT JOIN number_configurations c ON c.number_id = "
		        "n.id WHERE n.id = $1 AND n.account_id = $2",
		        2, params);
	}
	if (res == NULL)
		return;
	if (PQntuples(res) == 0) {
		ingress_error(req, 404, "number_not_found",
		              "no number has this id", NULL);
		goto out;
	}
	if (preview_schedule(req, res, &sched) != 0)
		goto out;
	snprintf(st.rule, sizeof(st.rule), "default");
	p.list = json_array();
	if (sched != NULL &&
	    (vox_schedule_state(sched, from_us, &st, &err) != 0 ||
	     vox_schedule_transitions(sched, from_us, days, preview_add, &p,
	                              &err) != 0)) {
		ingress_bad_param(req, "from", err.message);
		goto out;
	}
	vox_http_reply_json(
	        req, 200,
	        json_pack("{s:s, s:s, s:b, s:o, s:i, s:s, s:s, s:O}",
	                  "number_id", id, "time_zone",
	                  sched ? vox_schedule_zone(sched)
	                        : PQgetvalue(res, 0, 1),
	                  "configured", sched != NULL, "from",
	                  instant_json(from_us), "days", days, "state",
	                  vox_schedule_state_name(st.state), "rule", st.rule,
	                  "transitions", p.list));
out:
	json_decref(p.list);
	vox_schedule_destroy(sched);
	PQclear(res);
}
