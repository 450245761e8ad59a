/*
 * ingress: HTTP API in front of the Kafka command topics.
 * Wiring, configuration, the route table and the steps every request goes
 * through (ingress_begin: authenticate, authorize, rate-limit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "billing.h"
#include "carrier_keys.h"
#include "ingress.h"
#include "routing.h"
#include "vox_cdr.h"
#include "vox_config.h"
#include "vox_crypto.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_signal.h"
#include "vox_ssrf.h"

static const route_rule_t open_route = {.perms = 0};
static const route_rule_t read_route = {.perms = VOX_PERM_READ,
                                        .limit_class = "read"};
static const route_rule_t operate_route = {.perms = VOX_PERM_OPERATE,
                                           .limit_class = "command"};
static const route_rule_t search_route = {.perms = VOX_PERM_READ,
                                          .limit_class = "search"};
static const route_rule_t keys_read_route = {.perms = VOX_PERM_KEYS,
                                             .limit_class = "read"};
static const route_rule_t keys_write_route = {.perms = VOX_PERM_KEYS,
                                              .limit_class = "command"};
/* POST /v1/api-keys answers the new key's secret, once. */
static const char *const key_secret[] = {"key", NULL};
static const route_rule_t key_create_route = {.perms = VOX_PERM_KEYS,
                                              .limit_class = "command",
                                              .secret_fields = key_secret};
/* Webhook endpoints' signing secret, answered at creation and rotation;
 * a usage trigger's callback secret, at creation. */
static const char *const endpoint_secret[] = {"secret", NULL};
static const route_rule_t endpoint_secret_route = {.perms = VOX_PERM_OPERATE,
                                                   .limit_class = "command",
                                                   .secret_fields =
                                                           endpoint_secret};
static const char *const trigger_secret[] = {"callback_secret", NULL};
static const route_rule_t trigger_create_route = {.perms = VOX_PERM_OPERATE,
                                                  .limit_class = "command",
                                                  .secret_fields =
                                                          trigger_secret};
/* The SMS provider signs its receipts (sms_status.c): no account. */
static const route_rule_t provider_route = {
        .perms = 0, .limit_class = "command", .max_body = 64 * 1024};
/* Carriers authenticate with their own keys and signatures
 * (carrier_auth.c), not through ingress_begin: no account, no role. */
static const route_rule_t carrier_route = {
        .perms = 0, .limit_class = "command", .max_body = INGRESS_CDR_MAX_BODY};
static const route_rule_t carrier_decision_route = {.perms = 0,
                                                    .limit_class = "route"};
/* Billing: invoices, payment methods, settings (docs/BILLING.md "API"). */
static const route_rule_t billing_route = {.perms = VOX_PERM_BILLING,
                                           .limit_class = "command"};
/* The payment gateway signs its webhooks (gateway_events.c): no account. */
static const route_rule_t gateway_route = {
        .perms = 0, .limit_class = "command", .max_body = 64 * 1024};
/* POST /v1/documents: its body cap is VOX_DOCUMENT_MAX_BYTES plus the
 * multipart framing, set from the configuration before serving. */
static route_rule_t document_upload_route = {.perms = VOX_PERM_OPERATE,
                                             .limit_class = "command"};

/* docs/PERMISSIONS.md and schemas/openapi.yaml describe this table; a
 * test compares the OpenAPI paths with `ingress --routes`. */
static const vox_http_route_t routes[] = {
        {"POST", "/v1/canary", ingress_canary, NULL, &operate_route},
        {"GET", "/v1/operations", ingress_operation_list, NULL, &read_route},
        {"GET", "/v1/operations/{id}", ingress_operation_get, NULL,
         &read_route},
        {"POST", "/v1/api-keys", ingress_key_create, NULL, &key_create_route},
        {"GET", "/v1/api-keys", ingress_key_list, NULL, &keys_read_route},
        {"GET", "/v1/api-keys/{id}", ingress_key_get, NULL, &keys_read_route},
        {"DELETE", "/v1/api-keys/{id}", ingress_key_revoke, NULL,
         &keys_write_route},
        {"GET", "/v1/account", ingress_account_get, NULL, &read_route},
        {"GET", "/v1/available-numbers", ingress_numbers_search, NULL,
         &search_route},
        {"POST", "/v1/reservations", ingress_reservation_create, NULL,
         &operate_route},
        {"GET", "/v1/reservations/{id}", ingress_reservation_get, NULL,
         &read_route},
        {"POST", "/v1/reservations/{id}/extend", ingress_reservation_extend,
         NULL, &operate_route},
        {"POST", "/v1/orders", ingress_order_create, NULL, &operate_route},
        {"GET", "/v1/orders/{id}", ingress_order_get, NULL, &read_route},
        {"GET", "/v1/numbers", ingress_number_list, NULL, &read_route},
        {"GET", "/v1/numbers/{id}", ingress_number_get, NULL, &read_route},
        {"GET", "/v1/numbers/{id}/business-hours/preview",
         ingress_hours_preview, NULL, &read_route},
        {"POST", "/v1/numbers/{id}/activate", ingress_number_activate, NULL,
         &operate_route},
        {"POST", "/v1/numbers/{id}/deactivate", ingress_number_deactivate, NULL,
         &operate_route},
        {"DELETE", "/v1/numbers/{id}", ingress_number_release, NULL,
         &operate_route},
        {"PUT", "/v1/numbers/{id}/routing", ingress_config_put, NULL,
         &operate_route},
        {"GET", "/v1/numbers/{id}/routing", ingress_config_get, NULL,
         &read_route},
        {"PUT", "/v1/numbers/{id}/business-hours", ingress_config_put, NULL,
         &operate_route},
        {"GET", "/v1/numbers/{id}/business-hours", ingress_config_get, NULL,
         &read_route},
        {"PUT", "/v1/numbers/{id}/voicemail", ingress_config_put, NULL,
         &operate_route},
        {"GET", "/v1/numbers/{id}/voicemail", ingress_config_get, NULL,
         &read_route},
        {"GET", "/v1/numbers/{id}/configuration/versions",
         ingress_config_versions, NULL, &read_route},
        {"PUT", "/v1/notification-preferences", ingress_preferences_put, NULL,
         &operate_route},
        {"GET", "/v1/notification-preferences", ingress_preferences_get, NULL,
         &read_route},
        {"GET", "/v1/usage", ingress_usage_get, NULL, &read_route},
        {"POST", "/v1/usage-triggers", ingress_trigger_create, NULL,
         &trigger_create_route},
        {"GET", "/v1/usage-triggers", ingress_trigger_list, NULL, &read_route},
        {"GET", "/v1/usage-triggers/{id}", ingress_trigger_get, NULL,
         &read_route},
        {"DELETE", "/v1/usage-triggers/{id}", ingress_trigger_delete, NULL,
         &operate_route},
        {"POST", "/v1/documents", ingress_document_create, NULL,
         &document_upload_route},
        {"GET", "/v1/documents/{id}", ingress_document_get, NULL, &read_route},
        {"GET", "/v1/documents/{id}/content", ingress_document_content, NULL,
         &read_route},
        {"POST", "/v1/webhook-endpoints", ingress_endpoint_create, NULL,
         &endpoint_secret_route},
        {"GET", "/v1/webhook-endpoints", ingress_endpoint_list, NULL,
         &read_route},
        {"GET", "/v1/webhook-endpoints/{id}", ingress_endpoint_get, NULL,
         &read_route},
        {"PATCH", "/v1/webhook-endpoints/{id}", ingress_endpoint_update, NULL,
         &operate_route},
        {"DELETE", "/v1/webhook-endpoints/{id}", ingress_endpoint_delete, NULL,
         &operate_route},
        {"POST", "/v1/webhook-endpoints/{id}/rotate-secret",
         ingress_endpoint_rotate, NULL, &endpoint_secret_route},
        {"POST", "/v1/webhook-endpoints/{id}/test", ingress_endpoint_test, NULL,
         &operate_route},
        {"GET", "/v1/webhook-endpoints/{id}/attempts",
         ingress_endpoint_attempts, NULL, &read_route},
        {"POST", "/v1/webhook-endpoints/{id}/recover", ingress_endpoint_recover,
         NULL, &operate_route},
        {"POST", "/v1/webhook-endpoints/{id}/messages/{msg_id}/resend",
         ingress_endpoint_resend, NULL, &operate_route},
        {"POST", "/v1/porting/portability-checks", ingress_porting_check, NULL,
         &operate_route},
        {"POST", "/v1/porting-orders", ingress_porting_create, NULL,
         &operate_route},
        {"GET", "/v1/porting-orders", ingress_porting_list, NULL, &read_route},
        {"GET", "/v1/porting-orders/{id}", ingress_porting_get, NULL,
         &read_route},
        {"PATCH", "/v1/porting-orders/{id}", ingress_porting_update, NULL,
         &operate_route},
        {"POST", "/v1/porting-orders/{id}/actions/submit",
         ingress_porting_submit, NULL, &operate_route},
        {"POST", "/v1/porting-orders/{id}/actions/cancel",
         ingress_porting_cancel, NULL, &operate_route},
        {"GET", "/v1/porting-orders/{id}/events", ingress_porting_events, NULL,
         &read_route},
        {"GET", "/v1/porting-orders/{id}/allowed-foc-windows",
         ingress_porting_windows, NULL, &read_route},
        {"GET", "/v1/invoices", ingress_invoice_list, NULL, &read_route},
        {"POST", "/v1/invoices", ingress_invoice_generate, NULL,
         &billing_route},
        {"GET", "/v1/invoices/{id}", ingress_invoice_get, NULL, &read_route},
        {"GET", "/v1/invoices/{id}/pdf", ingress_invoice_pdf, NULL,
         &read_route},
        {"GET", "/v1/invoices/{id}/csv", ingress_invoice_csv, NULL,
         &read_route},
        {"POST", "/v1/invoices/{id}/actions/finalize", ingress_invoice_finalize,
         NULL, &billing_route},
        {"POST", "/v1/invoices/{id}/actions/void", ingress_invoice_void, NULL,
         &billing_route},
        {"POST", "/v1/invoices/{id}/actions/mark-uncollectible",
         ingress_invoice_uncollectible, NULL, &billing_route},
        {"POST", "/v1/invoices/{id}/actions/pay", ingress_invoice_pay, NULL,
         &billing_route},
        {"POST", "/v1/invoices/{id}/credit-notes", ingress_credit_note_create,
         NULL, &billing_route},
        {"GET", "/v1/cost-analytics", ingress_cost_analytics, NULL,
         &read_route},
        {"POST", "/v1/payment-methods", ingress_payment_method_create, NULL,
         &billing_route},
        {"GET", "/v1/payment-methods", ingress_payment_method_list, NULL,
         &read_route},
        {"DELETE", "/v1/payment-methods/{id}", ingress_payment_method_delete,
         NULL, &billing_route},
        {"POST", "/v1/payment-methods/{id}/actions/make-default",
         ingress_payment_method_default, NULL, &billing_route},
        {"GET", "/v1/billing/settings", ingress_billing_settings_get, NULL,
         &read_route},
        {"PATCH", "/v1/billing/settings", ingress_billing_settings_patch, NULL,
         &billing_route},
        {"POST", "/v1/payment-gateway/events", ingress_gateway_event, NULL,
         &gateway_route},
        {"POST", "/v1/providers/sms/status", ingress_sms_status, NULL,
         &provider_route},
        {"POST", "/v1/carrier/cdrs", ingress_cdr_push, NULL, &carrier_route},
        {"POST", "/v1/carrier/porting-events", ingress_porting_carrier_event,
         NULL, &carrier_route},
        {"POST", "/v1/carrier/calls/route", ingress_call_route, NULL,
         &carrier_decision_route},
        {"GET", "/v1/openapi.yaml", ingress_openapi, NULL, &open_route},
        {"GET", "/dashboard", ingress_dashboard_index, NULL, &open_route},
        {"GET", "/dashboard/{file}", ingress_dashboard_file, NULL, &open_route},
        {"GET", "/healthz", ingress_healthz, NULL, &open_route},
        {"GET", "/readyz", ingress_readyz, NULL, &open_route},
        {"GET", "/metrics", ingress_metrics, NULL, &open_route},
        /* Only served with VOX_INGRESS_BENCH=true (kept last). */
        {"POST", "/bench/static", ingress_bench_static, NULL, &open_route},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

vox_pg_t *ingress_pg(ingress_t *in, vox_http_req_t *req)
{
	vox_error_t err;
	vox_pg_t *pg = vox_pg_pool_acquire(in->pg_pool, 2000, &err);

	if (pg == NULL)
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
	return pg;
}

PGresult *ingress_query(ingress_t *in, vox_http_req_t *req, const char *name,
                        const char *sql, int nparams, const char *const *params)
{
	PGresult *res = NULL;
	vox_error_t err;
	vox_pg_t *pg = ingress_pg(in, req);
	int rc;

	if (pg == NULL)
		return NULL;
	rc = vox_pg_execp(pg, name, sql, nparams, params, &res, &err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return NULL;
	}
	return res;
}

void ingress_rate_headers(vox_http_req_t *req, const struct limit_result *r)
{
	char v[32];

	snprintf(v, sizeof(v), "%ld", r->limit);
	vox_http_add_header(req, "RateLimit-Limit", v);
	snprintf(v, sizeof(v), "%ld", r->remaining);
	vox_http_add_header(req, "RateLimit-Remaining", v);
	snprintf(v, sizeof(v), "%ld", r->reset_s);
	vox_http_add_header(req, "RateLimit-Reset", v);
	if (!r->allowed) {
		snprintf(v, sizeof(v), "%ld", r->retry_after_s);
		vox_http_add_header(req, "Retry-After", v);
	}
}

bool ingress_rate_answer(vox_http_req_t *req, ingress_t *in,
                         const char *limit_class,
                         const struct limit_result *limit)
{
	ingress_rate_headers(req, limit);
	if (limit->allowed)
		return true;
	vox_counter_inc(in->limited);
	vox_http_reply_error(req, 429, "rate_limited",
	                     "too many requests: slow down and retry after "
	                     "Retry-After seconds",
	                     json_pack("{s:s, s:I}", "class", limit_class,
	                               "limit", (json_int_t)limit->limit));
	return false;
}

bool ingress_rate_limit(vox_http_req_t *req, ingress_t *in,
                        const char *credential, const char *limit_class,
                        long rate_per_s)
{
	struct limit_result limit;

	limiter_check(in->limiter, credential, limit_class, rate_per_s, &limit);
	return ingress_rate_answer(req, in, limit_class, &limit);
}

static long class_rate(const ingress_t *in, const char *limit_class)
{
	if (strcmp(limit_class, "search") == 0)
		return in->cfg->rate_search;
	if (strcmp(limit_class, "command") == 0)
		return in->cfg->rate_command;
	return in->cfg->rate_read;
}

ingress_req_t *ingress_begin(vox_http_req_t *req, ingress_t *in)
{
	const route_rule_t *rule = vox_http_route(req)->data;
	ingress_req_t *ir;
	const char *code = "";
	char message[160], credential[64];
	int status;

	ir = calloc(1, sizeof(*ir));
	if (ir == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return NULL;
	}
	ir->in = in;
	ir->secret_fields = rule->secret_fields;
	vox_http_set_state(req, ir, free);
	status = auth_authenticate(in, vox_http_header(req, "Authorization"),
	                           &ir->who, &code, message, sizeof(message));
	if (status != 0) {
		vox_counter_inc(in->auth_failed);
		if (status == 401)
			vox_http_add_header(req, "WWW-Authenticate",
			                    "Bearer realm=\"voxlink\"");
		vox_http_reply_error(req, status, code, message, NULL);
		return NULL;
	}
	/* The credential is the key, or for a JWT its account and subject. */
	snprintf(credential, sizeof(credential), "%s",
	         ir->who.key_id[0] ? ir->who.key_id : ir->who.account_id);
	if (!ingress_rate_limit(req, in, credential, rule->limit_class,
	                        class_rate(in, rule->limit_class)))
		return NULL;
	if (!vox_role_allows(ir->who.role, rule->perms)) {
		snprintf(message, sizeof(message),
		         "the %s role may not call %s %s",
		         vox_role_name(ir->who.role), vox_http_method(req),
		         vox_http_route(req)->pattern);
		vox_http_reply_error(req, 403, "permission_denied", message,
		                     NULL);
		return NULL;
	}
	return ir;
}

static bool content_type_json(vox_http_req_t *req)
{
	const char *ct = vox_http_header(req, "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The first key of object not in the NULL-terminated allowed list. */
static const char *unknown_key(json_t *object, const char *const *allowed)
{
	const char *key;
	json_t *value;

	json_object_foreach(object, key, value)
	{
		size_t i = 0;

		while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
			i++;
		if (allowed[i] == NULL)
			return key;
	}
	return NULL;
}

json_t *ingress_body(vox_http_req_t *req, const char *const *allowed,
                     bool optional)
{
	size_t len;
	const char *text = vox_http_body(req, &len);
	vox_error_t err;
	json_t *doc;

	if (len == 0 && optional)
		return json_object();
	if (!content_type_json(req)) {
		vox_http_reply_error(req, 415, "unsupported_media_type",
		                     "send the body as Content-Type: "
		                     "application/json",
		                     NULL);
		return NULL;
	}
	if (len == 0) {
		vox_http_reply_error(req, 400, "invalid_body",
		                     "this endpoint needs a JSON object body",
		                     NULL);
		return NULL;
	}
	doc = vox_json_parse(text, len, VOX_JSON_DEFAULT_DEPTH, &err);
	if (doc == NULL) {
		vox_http_reply_error(req, 400, "invalid_json", err.message,
		                     NULL);
		return NULL;
	}
	if (!json_is_object(doc)) {
		vox_http_reply_error(req, 400, "invalid_body",
		                     "the body must be a JSON object", NULL);
	} else if (vox_json_only_keys(doc, allowed, &err) != 0) {
		vox_http_reply_error(req, 400, "invalid_body", err.message,
		                     json_pack("{s:s?}", "field",
		                               unknown_key(doc, allowed)));
	} else {
		return doc;
	}
	json_decref(doc);
	return NULL;
}

bool ingress_bad_param(vox_http_req_t *req, const char *name, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s: %s", name, why);
	vox_http_reply_error(req, 400, "invalid_parameter", msg,
	                     json_pack("{s:s}", "parameter", name));
	return false;
}

void ingress_reply(vox_http_req_t *req, int status, json_t *json)
{
	char *text;

	if (json_is_object(json) && json_object_get(json, "error") != NULL) {
		json_t *e = json_object_get(json, "error");
		char when[40];

		vox_time_now_rfc3339(when, sizeof(when));
		json_object_set_new(e, "timestamp", json_string(when));
		json_object_set_new(e, "requestId",
		                    json_string(vox_http_request_id(req)));
		if (json_object_get(e, "details") == NULL)
			json_object_set_new(e, "details", json_object());
	}
	text = vox_json_dump(json);
	json_decref(json);
	vox_http_reply(req, status, "application/json", text ? text : "{}",
	               text ? strlen(text) : 2);
	free(text);
}

void ingress_error(vox_http_req_t *req, int status, const char *code,
                   const char *message, json_t *details)
{
	ingress_reply(req, status,
	              json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code,
	                        "message", message, "details",
	                        details ? details : json_object()));
}

static size_t route_max_body(const vox_http_route_t *route)
{
	const route_rule_t *rule = route->data;

	return rule ? rule->max_body : 0;
}

/* The URL the SMS provider signs receipts over, when not configured:
 * ours, as the local stack's sandbox calls it. */
static void sms_callback_default(ingress_t *in, int port)
{
	snprintf(in->sms_callback_url, sizeof(in->sms_callback_url),
	         "http://127.0.0.1:%d/v1/providers/sms/status", port);
}

/* Before listening: every connection the first requests would otherwise
 * open themselves (the PostgreSQL pool, the accepted-rows writer) and the
 * command topics' leaders, so the first second is answered like any
 * other. A part that does not answer is logged and left to connect on
 * demand, as before (/readyz says whether it is there). */
static void ingress_warm(const struct ingress_cfg *cfg, ingress_t *in)
{
	static const char *const topics[] = {
	        "vox.cmd.provisioning",  "vox.cmd.porting", "vox.cmd.invoicing",
	        "vox.cmd.notifications", VOX_CDR_TOPIC,     NULL};
	vox_pg_t **held = calloc((size_t)cfg->pg_pool, sizeof(*held));
	vox_error_t err;
	long n = 0;

	for (; held != NULL && n < cfg->pg_pool; n++) {
		held[n] = vox_pg_pool_acquire(in->pg_pool, 0, &err);
		if (held[n] == NULL || vox_pg_connect(held[n], 0, &err) != 0) {
			vox_log(VOX_LOG_WARN,
			        "warm-up: postgres pool not connected", "error",
			        err.message, NULL);
			n += held[n] != NULL;
			break;
		}
	}
	while (n > 0)
		vox_pg_pool_release(in->pg_pool, held[--n]);
	free(held);
	if (accept_writer_warm(in->writer, &err) != 0)
		vox_log(VOX_LOG_WARN,
		        "warm-up: accepted-rows writer not "
		        "connected",
		        "error", err.message, NULL);
	if (vox_producer_warm(in->producer, topics, 2000, &err) != 0)
		vox_log(VOX_LOG_WARN, "warm-up: kafka", "error", err.message,
		        NULL);
}

static int ingress_serve(const struct ingress_cfg *cfg, ingress_t *in)
{
	vox_http_conf_t hconf = {0};
	vox_http_t *http;
	vox_error_t err;
	char port[16];

	hconf.bind = cfg->bind;
	hconf.port = (int)cfg->port;
	hconf.threads = (int)cfg->threads;
	hconf.max_body = (size_t)cfg->max_body;
	hconf.routes = routes;
	hconf.nroutes = cfg->bench_routes ? NROUTES : NROUTES - 1;
	hconf.ctx = in;
	hconf.metrics = in->metrics;
	hconf.route_max_body = route_max_body;
	hconf.conn_memory = (size_t)cfg->conn_memory;
	ingress_warm(cfg, in);
	http = vox_http_start(&hconf, &err);
	if (http == NULL) {
		vox_log(VOX_LOG_ERROR, "cannot start HTTP server", "error",
		        err.message, NULL);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", vox_http_port(http));
	if (cfg->port == 0 && *cfg->sms_callback_url == '\0')
		sms_callback_default(in, vox_http_port(http));
	vox_log(VOX_LOG_INFO, "ingress listening", "bind", cfg->bind, "port",
	        port, NULL);
	while (vox_running)
		pause();
	vox_log(VOX_LOG_INFO, "ingress stopping: draining requests", NULL);
	/* Deliveries still in flight resume their requests while we drain;
	 * the writer and listener then answer the rest. */
	vox_producer_destroy(in->producer, 5000);
	in->producer = NULL;
	accept_writer_destroy(in->writer);
	in->writer = NULL;
	listener_destroy(in->listener);
	in->listener = NULL;
	vox_http_stop(http, 5000);
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int ingress_jwt(const struct ingress_cfg *cfg, ingress_t *in)
{
	size_t len = 0;

	if (*cfg->jwt_key_file != '\0') {
		in->jwt_key = read_file(cfg->jwt_key_file, &len);
		if (in->jwt_key == NULL) {
			fprintf(stderr, "VOX_JWT_KEY_FILE: cannot read %s\n",
			        cfg->jwt_key_file);
			return 2;
		}
	} else if (*cfg->jwt_secret != '\0') {
		in->jwt_key = strdup(cfg->jwt_secret);
		len = strlen(cfg->jwt_secret);
	} else {
		return 0; /* JWTs not accepted; API keys only */
	}
	in->jwt_enabled = true;
	in->jwt.alg = cfg->jwt_alg;
	in->jwt.key = in->jwt_key;
	in->jwt.keylen = len;
	in->jwt.issuer = *cfg->jwt_issuer ? cfg->jwt_issuer : NULL;
	in->jwt.audience = *cfg->jwt_audience ? cfg->jwt_audience : NULL;
	in->jwt.leeway_s = cfg->jwt_leeway_s;
	return 0;
}

static void ingress_counters(ingress_t *in)
{
	vox_metrics_t *m = in->metrics;

	in->accepted = vox_metrics_counter(m, "vox_commands_accepted_total",
	                                   "Commands Kafka acknowledged", NULL);
	in->refused = vox_metrics_counter(
	        m, "vox_commands_refused_total",
	        "Commands answered 503 because Kafka did not take them", NULL);
	in->auth_failed = vox_metrics_counter(
	        m, "vox_auth_failures_total",
	        "Requests refused for their credentials", NULL);
	in->limited = vox_metrics_counter(m, "vox_rate_limited_total",
	                                  "Requests answered 429", NULL);
	in->cdrs_accepted = vox_metrics_counter(
	        m, "vox_cdrs_accepted_total",
	        "Pushed CDRs Kafka acknowledged (POST /v1/carrier/cdrs)", NULL);
	in->cdrs_rejected = vox_metrics_counter(
	        m, "vox_cdrs_rejected_total",
	        "Pushed CDRs refused for their content", NULL);
	in->cdrs_refused = vox_metrics_counter(
	        m, "vox_cdrs_refused_total",
	        "Pushed CDRs answered 503 because Kafka did not take them",
	        NULL);
	in->routes_decided = vox_metrics_counter(
	        m, "vox_routing_decisions_total",
	        "Calls answered by POST /v1/carrier/calls/route", NULL);
	in->idem_hits = vox_metrics_counter(
	        m, "vox_idempotency_hits_total",
	        "POSTs answered from an existing Idempotency-Key "
	        "(replay, 409 or 422)",
	        NULL);
}

/* The keyring that seals stored answers carrying secrets and opens
 * carrier signing secrets (cdrs.c); none is fine (answers are then stored
 * without the secret, and only plaintext carrier secrets verify), a
 * malformed key is not. */
static int ingress_keyring(const struct ingress_cfg *cfg, ingress_t *in)
{
	vox_error_t err;

	if (cfg->test_clock_skew_s != 0)
		vox_log(VOX_LOG_WARN,
		        "VOX_TEST_CLOCK_SKEW_S is set: idempotency keys expire "
		        "early (tests only)",
		        NULL);
	if (*cfg->encryption_key == '\0') {
		if (*cfg->encryption_old_keys != '\0') {
			fprintf(stderr, "VOX_ENCRYPTION_OLD_KEYS needs "
			                "VOX_ENCRYPTION_KEY\n");
			return 2;
		}
		vox_log(VOX_LOG_WARN,
		        "no VOX_ENCRYPTION_KEY: answers that carry a secret "
		        "are not kept for Idempotency-Key replays, and CDR "
		        "pushes of carrier credentials whose signing secret is "
		        "sealed answer 503",
		        NULL);
		return 0;
	}
	in->keyring = vox_crypto_keyring_new(cfg->encryption_key,
	                                     cfg->encryption_old_keys, &err);
	if (in->keyring == NULL) {
		fprintf(stderr, "VOX_ENCRYPTION_KEY: %s\n", err.message);
		return 2;
	}
	return 0;
}

static int ingress_run(const struct ingress_cfg *cfg)
{
	vox_producer_conf_t pconf = {0};
	ingress_t in = {0};
	vox_error_t err;
	int rc = 1;

	in.cfg = cfg;
	if ((rc = ingress_jwt(cfg, &in)) != 0 ||
	    (rc = ingress_keyring(cfg, &in)) != 0) {
		free(in.jwt_key);
		return rc;
	}
	rc = 1;
	in.ssrf = vox_ssrf_new(cfg->webhook_allow_cidrs, &err);
	if (in.ssrf == NULL) {
		fprintf(stderr, "VOX_WEBHOOK_ALLOW_CIDRS: %s\n", err.message);
		free(in.jwt_key);
		vox_crypto_keyring_destroy(in.keyring);
		return 2;
	}
	if (*cfg->sms_callback_url != '\0')
		snprintf(in.sms_callback_url, sizeof(in.sms_callback_url), "%s",
		         cfg->sms_callback_url);
	else
		sms_callback_default(&in, (int)cfg->port);
	in.metrics = vox_metrics_new();
	ingress_counters(&in);
	in.openapi = read_file(cfg->openapi_file, &in.openapi_len);
	if (in.openapi == NULL)
		vox_log(VOX_LOG_WARN, "OpenAPI file not readable", "path",
		        cfg->openapi_file, NULL);
	in.dashboard = dashboard_load(cfg->dashboard_dir);
	in.documents = documents_new(cfg, &err);
	if (in.documents == NULL) {
		fprintf(stderr, "documents: %s\n", err.message);
		rc = 2;
		goto out;
	}
	document_upload_route.max_body = (size_t)cfg->document_max_bytes +
	                                 INGRESS_DOCUMENT_FORM_OVERHEAD;
	in.pg_pool = vox_pg_pool_new(cfg->pg_url, (int)cfg->pg_pool);
	in.keys = key_cache_new();
	in.carrier_keys = carrier_keys_new();
	in.routing = routing_table_new();
	in.limiter = limiter_new(cfg->redis_url, cfg->rate_lease, in.metrics);
	in.writer = accept_writer_new(cfg->pg_url, in.metrics);
	in.listener = listener_new(&in);
	pconf.brokers = cfg->brokers;
	pconf.client_id = "vox-ingress";
	pconf.message_timeout_ms = (int)cfg->kafka_timeout_ms;
	pconf.linger_ms = (int)cfg->linger_ms;
	in.producer = vox_producer_new(&pconf, &err);
	if (in.pg_pool == NULL || in.keys == NULL || in.carrier_keys == NULL ||
	    in.routing == NULL || in.limiter == NULL || in.writer == NULL ||
	    in.listener == NULL || in.producer == NULL) {
		vox_log(VOX_LOG_ERROR, "cannot start", "error",
		        in.producer ? "out of memory" : err.message, NULL);
		goto out;
	}
	rc = ingress_serve(cfg, &in);
out:
	vox_producer_destroy(in.producer, 5000);
	accept_writer_destroy(in.writer);
	listener_destroy(in.listener);
	limiter_destroy(in.limiter);
	key_cache_destroy(in.keys);
	carrier_keys_destroy(in.carrier_keys);
	routing_table_destroy(in.routing);
	vox_pg_pool_destroy(in.pg_pool);
	vox_metrics_destroy(in.metrics);
	free(in.jwt_key);
	free(in.openapi);
	dashboard_free(in.dashboard);
	vox_crypto_keyring_destroy(in.keyring);
	vox_ssrf_destroy(in.ssrf);
	documents_destroy(in.documents);
	vox_log(VOX_LOG_INFO, "ingress stopped", NULL);
	return rc;
}

int main(int argc, char **argv)
{
	struct ingress_cfg cfg;
	const vox_cfg_opt_t opts[] = {
	        {"VOX_INGRESS_BIND", VOX_CFG_STRING, "127.0.0.1", 7, 15,
	         "IPv4 address to listen on", &cfg.bind},
	        {"VOX_INGRESS_PORT", VOX_CFG_INT, "18080", 0, 65535,
	         "TCP port of the HTTP API", &cfg.port},
	        {"VOX_INGRESS_THREADS", VOX_CFG_INT, "4", 1, 256,
	         "HTTP thread pool size", &cfg.threads},
	        {"VOX_INGRESS_CONN_MEMORY", VOX_CFG_INT, "4096", 2048, 1048576,
	         "bytes each connection holds for its request line, headers "
	         "and reply headers (headers that do not fit: 431)",
	         &cfg.conn_memory},
	        {"VOX_MAX_BODY_BYTES", VOX_CFG_INT, "1048576", 1024, 67108864,
	         "largest request body accepted", &cfg.max_body},
	        {"VOX_PG_URL", VOX_CFG_STRING,
	         "postgresql://vox@127.0.0.1:25432/voxlink", 1, 4096,
	         "PostgreSQL connection URL", &cfg.pg_url},
	        {"VOX_PG_POOL", VOX_CFG_INT, "8", 1, 512,
	         "PostgreSQL connections", &cfg.pg_pool},
	        {"VOX_REDIS_URL", VOX_CFG_STRING, "redis://127.0.0.1:26379", 1,
	         4096, "Redis URL (rate limits)", &cfg.redis_url},
	        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:29092", 1,
	         4096, "Kafka bootstrap servers", &cfg.brokers},
	        {"VOX_KAFKA_TIMEOUT_MS", VOX_CFG_INT, "10000", 100, 300000,
	         "time a command may wait for Kafka before 503",
	         &cfg.kafka_timeout_ms},
	        {"VOX_KAFKA_LINGER_MS", VOX_CFG_INT, "2", 0, 1000,
	         "producer batching delay", &cfg.linger_ms},
	        {"VOX_JWT_ALG", VOX_CFG_STRING, "HS256", 5, 5,
	         "the one JWT algorithm accepted (HS256, RS256, ES256, ...)",
	         &cfg.jwt_alg},
	        {"VOX_JWT_SECRET", VOX_CFG_STRING, "", 0, 4096,
	         "HMAC secret for HS* JWTs (empty: JWTs off unless a key "
	         "file is set)",
	         &cfg.jwt_secret},
	        {"VOX_JWT_KEY_FILE", VOX_CFG_STRING, "", 0, 4096,
	         "PEM public key file for RS*/ES* JWTs", &cfg.jwt_key_file},
	        {"VOX_JWT_ISSUER", VOX_CFG_STRING, "", 0, 512,
	         "required iss claim (empty: not checked)", &cfg.jwt_issuer},
	        {"VOX_JWT_AUDIENCE", VOX_CFG_STRING, "", 0, 512,
	         "required aud claim (empty: not checked)", &cfg.jwt_audience},
	        {"VOX_JWT_LEEWAY_S", VOX_CFG_INT, "30", 0, 600,
	         "clock skew allowed on exp and nbf", &cfg.jwt_leeway_s},
	        {"VOX_RATE_READ", VOX_CFG_INT, "100", 1, 10000000,
	         "reads per second per credential (burst: twice)",
	         &cfg.rate_read},
	        {"VOX_RATE_COMMAND", VOX_CFG_INT, "50", 1, 10000000,
	         "commands per second per credential (burst: twice)",
	         &cfg.rate_command},
	        {"VOX_RATE_SEARCH", VOX_CFG_INT, "10", 1, 10000000,
	         "number searches per second per credential (burst: twice)",
	         &cfg.rate_search},
	        {"VOX_RATE_ROUTE", VOX_CFG_INT, "5000", 1, 10000000,
	         "routing decisions per second per carrier key (burst: twice)",
	         &cfg.rate_route},
	        {"VOX_RATE_LEASE", VOX_CFG_INT, "64", 1, 100000,
	         "most tokens an instance leases from Redis at once (a lease "
	         "is a fiftieth of the rate per second, 1 under 100/s): "
	         "fewer Redis calls, and an instance may run ahead of the "
	         "shared limit by at most one lease",
	         &cfg.rate_lease},
	        {"VOX_MAX_WAIT_S", VOX_CFG_INT, "30", 0, 300,
	         "largest Prefer: wait honoured", &cfg.max_wait_s},
	        {"VOX_OPENAPI_FILE", VOX_CFG_STRING, "schemas/openapi.yaml", 1,
	         4096, "the OpenAPI document served at /v1/openapi.yaml",
	         &cfg.openapi_file},
	        {"VOX_DASHBOARD_DIR", VOX_CFG_STRING, "build/web", 1, 4096,
	         "the built web dashboard served at /dashboard (make builds "
	         "it)",
	         &cfg.dashboard_dir},
	        {"VOX_CARRIER_URL", VOX_CFG_STRING, "http://127.0.0.1:27080", 8,
	         2048, "the carrier's numbers API (search refills)",
	         &cfg.carrier_url},
	        {"VOX_CARRIER_API_KEY", VOX_CFG_STRING, "sandbox-key", 1, 512,
	         "the carrier API key", &cfg.carrier_key},
	        {"VOX_ENCRYPTION_KEY", VOX_CFG_STRING, "", 0, 200,
	         "AES-256-GCM key, [ID:]KEY with 32 bytes as hex or base64, "
	         "sealing stored answers that carry secrets (empty: they are "
	         "kept without the secret, docs/API.md) and opening sealed "
	         "carrier signing secrets (docs/CARRIER_CDRS.md)",
	         &cfg.encryption_key},
	        {"VOX_ENCRYPTION_OLD_KEYS", VOX_CFG_STRING, "", 0, 2000,
	         "retired keys that still open what they sealed: ID:KEY,...",
	         &cfg.encryption_old_keys},
	        {"VOX_TEST_CLOCK_SKEW_S", VOX_CFG_INT, "0", 0, 864000,
	         "TESTS ONLY: seconds added to the idempotency clock (key "
	         "expiry, claim takeover); never set in production",
	         &cfg.test_clock_skew_s},
	        {"VOX_WEBHOOK_ALLOW_CIDRS", VOX_CFG_STRING, "", 0, 2000,
	         "comma-separated CIDRs customer URLs (webhook endpoints, "
	         "usage trigger callbacks) may point into although private "
	         "or loopback (self-hosted receivers; empty: none)",
	         &cfg.webhook_allow_cidrs},
	        {"VOX_SMS_STATUS_CALLBACK_URL", VOX_CFG_STRING, "", 0, 2048,
	         "the URL the SMS provider posts receipts to, as it signs it "
	         "(X-Twilio-Signature; empty: http://127.0.0.1:<port>/v1/"
	         "providers/sms/status)",
	         &cfg.sms_callback_url},
	        {"VOX_SMS_AUTH_TOKEN", VOX_CFG_STRING, "sandbox-token", 1, 512,
	         "the SMS provider's auth token, the key of its receipts' "
	         "signatures",
	         &cfg.sms_auth_token},
	        {"VOX_SMS_ACCOUNT_SID", VOX_CFG_STRING, "AC_sandbox", 1, 128,
	         "our account at the SMS provider: receipts naming another "
	         "AccountSid are refused",
	         &cfg.sms_account_sid},
	        {"VOX_PAYMENT_WEBHOOK_SECRET", VOX_CFG_STRING, "whsec_sandbox",
	         1, 512,
	         "the payment gateway's webhook signing secret "
	         "(Gateway-Signature of POST /v1/payment-gateway/events)",
	         &cfg.payment_webhook_secret},
	        {"VOX_S3_ENDPOINT", VOX_CFG_STRING, "http://127.0.0.1:27090", 8,
	         2048,
	         "the S3-compatible object store of documents (AWS S3, MinIO, "
	         "Ceph, ...; path-style requests)",
	         &cfg.s3_endpoint},
	        {"VOX_S3_REGION", VOX_CFG_STRING, "us-east-1", 1, 64,
	         "the store's region (SigV4 signing scope)", &cfg.s3_region},
	        {"VOX_S3_BUCKET", VOX_CFG_STRING, "voxlink-documents", 3, 63,
	         "the bucket documents go to", &cfg.s3_bucket},
	        {"VOX_S3_ACCESS_KEY", VOX_CFG_STRING, "", 0, 256,
	         "the store's access key id (empty: /v1/documents answers "
	         "503)",
	         &cfg.s3_access_key},
	        {"VOX_S3_SECRET_KEY", VOX_CFG_STRING, "", 0, 256,
	         "the store's secret access key", &cfg.s3_secret_key},
	        {"VOX_DOCUMENT_MAX_BYTES", VOX_CFG_INT, "10485760", 1024,
	         67108864, "largest document accepted (POST /v1/documents)",
	         &cfg.document_max_bytes},
	        {"VOX_INGRESS_BENCH", VOX_CFG_BOOL, "false", 0, 0,
	         "also serve POST /bench/static (a static 202, for bench/)",
	         &cfg.bench_routes},
	        {"VOX_LOG_LEVEL", VOX_CFG_STRING, "info", 4, 5,
	         "debug, info, warn or error", &cfg.log_level},
	};
	int level;

	if (argc == 2 && strcmp(argv[1], "--routes") == 0) {
		for (size_t i = 0; i + 1 < NROUTES; i++)
			printf("%s %s\n", routes[i].method, routes[i].pattern);
		return 0;
	}
	vox_config_load("ingress",
	                "VoxLink HTTP API: authenticates, validates, publishes "
	                "commands (--routes lists the endpoints)",
	                opts, sizeof(opts) / sizeof(opts[0]), argc, argv);
	level = vox_log_level_parse(cfg.log_level);
	if (level < 0) {
		fprintf(stderr,
		        "VOX_LOG_LEVEL: \"%s\" is not one of debug, "
		        "info, warn, error\n",
		        cfg.log_level);
		return 2;
	}
	vox_log_init("ingress", (vox_log_level_t)level);
	vox_signal_setup();
	return ingress_run(&cfg);
}
