/*
 * vox_carrier_port: porting at the carrier (vox_carrier_port.h). A
 * portability check is one POST /v2/portability_checks read back per
 * number; a porting order is POST (create), PATCH (corrected details after
 * an exception), POST .../actions/cancel and GET, each answered with the
 * order ({"data": {id, status: {value}, ...}}).
 *
 * The account number and the PIN go in the request body and nowhere else:
 * errors about them name the field, never the value, and vox_upstream
 * logs no bodies. The carrier's error details (vox_carrier_describe) are
 * the carrier's text; the sandbox never echoes a secret in them.
 */
#include "vox_carrier_port.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_internal.h"
#include "vox_json.h"
#include "vox_log.h"

#define MAX_NAME      1024 /* bytes of a name or address field (UTF-8) */
#define MAX_REFERENCE 255  /* customer_reference, document ids */
#define MAX_ACCOUNT   64   /* account number: printable ASCII */
#define MAX_PIN       16   /* PIN: printable ASCII */

/* The statuses the carrier may answer (ours; "draft" is never the
 * carrier's). */
static const char *const port_statuses[] = {
        "submitted", "in-process",     "exception", "foc-date-confirmed",
        "ported",    "cancel-pending", "cancelled", NULL};

/* Our service address keys and the carrier's names for them. */
static const struct {
	const char *ours, *carriers;
} address_keys[] = {
        {"street", "street_address"},
        {"extended_address", "extended_address"},
        {"locality", "locality"},
        {"administrative_area", "administrative_area"},
        {"postal_code", "postal_code"},
        {"country", "country_code"},
};

/* ---- the request ---- */

static bool printable_ascii(const char *text, size_t max)
{
	size_t len = strnlen(text, max + 1);

	if (len < 1 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return false;
	return true;
}

/* 1..max bytes of valid UTF-8 without control characters. */
static bool text_ok(const char *text, size_t max)
{
	size_t len = strnlen(text, max + 1);
	json_t *probe;

	if (len < 1 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return false;
	probe = json_stringn(text, len); /* NULL for invalid UTF-8 */
	json_decref(probe);
	return probe != NULL;
}

static bool date_shape(const char *text)
{
	static const char pattern[] = "dddd-dd-dd";

	if (strlen(text) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; pattern[i] != '\0'; i++)
		if (pattern[i] == 'd' ? text[i] < '0' || text[i] > '9'
		                      : text[i] != pattern[i])
			return false;
	return true;
}

static int bad_req(vox_error_t *err, const char *what)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "carrier port: %s",
	                     what);
}

static int req_numbers_check(const vox_carrier_port_req_t *req,
                             vox_error_t *err)
{
	if (req->e164s == NULL || req->n < 1 || req->n > VOX_CARRIER_PORT_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier port: 1 to %d numbers",
		                     VOX_CARRIER_PORT_MAX);
	for (int k = 0; k < req->n; k++)
		if (!vox_carrier_e164_shape(req->e164s[k]))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "carrier port: number %d is not "
			                     "E.164",
			                     k);
	if (req->customer_reference == NULL ||
	    !text_ok(req->customer_reference, MAX_REFERENCE))
		return bad_req(err, "a customer_reference of 1 to 255 bytes "
		                    "is required");
	return 0;
}

/* What every request checks; messages name the field, never the value. */
static int req_check(const vox_carrier_port_req_t *req, vox_error_t *err)
{
	if (req->authorized_name != NULL &&
	    !text_ok(req->authorized_name, MAX_NAME))
		return bad_req(err, "authorized_name is not 1 to 1024 bytes "
		                    "of text");
	if (req->business_name != NULL &&
	    !text_ok(req->business_name, MAX_NAME))
		return bad_req(err, "business_name is not 1 to 1024 bytes "
		                    "of text");
	if (req->account_number != NULL &&
	    !printable_ascii(req->account_number, MAX_ACCOUNT))
		return bad_req(err, "the account number is not 1 to 64 "
		                    "printable ASCII characters");
	if (req->pin != NULL && !printable_ascii(req->pin, MAX_PIN))
		return bad_req(err, "the PIN is not 1 to 16 printable ASCII "
		                    "characters");
	if (req->foc_date != NULL && !date_shape(req->foc_date))
		return bad_req(err, "foc_date is not YYYY-MM-DD");
	if (req->loa_document_id != NULL &&
	    !printable_ascii(req->loa_document_id, MAX_REFERENCE))
		return bad_req(err, "the LOA document id is not 1 to 255 "
		                    "printable characters");
	if (req->invoice_document_id != NULL &&
	    !printable_ascii(req->invoice_document_id, MAX_REFERENCE))
		return bad_req(err, "the invoice document id is not 1 to 255 "
		                    "printable characters");
	return 0;
}

/* Our service address (a JSON object) in the carrier's names. */
static int address_location(const char *address_json, json_t *location,
                            vox_error_t *err)
{
	json_t *address;
	int rc = 0;

	address = vox_json_parse(address_json, strlen(address_json),
	                         VOX_JSON_DEFAULT_DEPTH, NULL);
	if (!json_is_object(address)) {
		json_decref(address);
		return bad_req(err, "service_address_json is not a JSON "
		                    "object");
	}
	for (size_t i = 0;
	     rc == 0 && i < sizeof(address_keys) / sizeof(address_keys[0]);
	     i++) {
		json_t *value = json_object_get(address, address_keys[i].ours);

		if (value == NULL || json_is_null(value))
			continue;
		if (!json_is_string(value) ||
		    !text_ok(json_string_value(value), MAX_NAME))
			rc = vox_error_set(err, VOX_ERR_INVALID, false,
			                   "carrier port: service address %s "
			                   "is not 1 to 1024 bytes of text",
			                   address_keys[i].ours);
		else if (json_object_set(location, address_keys[i].carriers,
		                         value) != 0)
			rc = vox_error_set(err, VOX_ERR_NOMEM, true,
			                   "carrier port: no memory");
	}
	json_decref(address);
	return rc;
}

/* Sets key to a copy of value when value is not NULL; false on ENOMEM. */
static bool set_text(json_t *object, const char *key, const char *value)
{
	return value == NULL ||
	       json_object_set_new(object, key, json_string(value)) == 0;
}

static int body_end_user(const vox_carrier_port_req_t *req, json_t *body,
                         vox_error_t *err)
{
	json_t *admin = json_object(), *location = json_object();
	json_t *end_user = json_object();
	int rc = 0;

	if (admin == NULL || location == NULL || end_user == NULL ||
	    !set_text(admin, "entity_name", req->business_name) ||
	    !set_text(admin, "authorized_person_name", req->authorized_name) ||
	    !set_text(admin, "account_number", req->account_number) ||
	    !set_text(admin, "pin_passcode", req->pin))
		rc = vox_error_set(err, VOX_ERR_NOMEM, true,
		                   "carrier port: no memory");
	if (rc == 0 && req->service_address_json != NULL)
		rc = address_location(req->service_address_json, location, err);
	if (rc == 0 && json_object_size(admin) > 0)
		json_object_set(end_user, "admin", admin);
	if (rc == 0 && json_object_size(location) > 0)
		json_object_set(end_user, "location", location);
	if (rc == 0 && json_object_size(end_user) > 0 &&
	    json_object_set(body, "end_user", end_user) != 0)
		rc = vox_error_set(err, VOX_ERR_NOMEM, true,
		                   "carrier port: no memory");
	json_decref(admin);
	json_decref(location);
	json_decref(end_user);
	return rc;
}

static int body_rest(const vox_carrier_port_req_t *req, json_t *body,
                     vox_error_t *err)
{
	json_t *documents = json_object();
	bool ok = documents != NULL;

	if (ok && req->foc_date != NULL) {
		char when[32];

		snprintf(when, sizeof(when), "%.10sT14:00:00Z", req->foc_date);
		ok = json_object_set_new(body, "activation_settings",
		                         json_pack("{s:s}",
		                                   "foc_datetime_requested",
		                                   when)) == 0;
	}
	ok = ok && set_text(documents, "loa", req->loa_document_id) &&
	     set_text(documents, "invoice", req->invoice_document_id);
	if (ok && json_object_size(documents) > 0)
		ok = json_object_set(body, "documents", documents) == 0;
	json_decref(documents);
	return ok ? 0
	          : vox_error_set(err, VOX_ERR_NOMEM, true,
	                          "carrier port: no memory");
}

static int body_numbers(const vox_carrier_port_req_t *req, json_t *body,
                        vox_error_t *err)
{
	json_t *numbers = json_array();
	bool ok = numbers != NULL;

	for (int k = 0; ok && k < req->n; k++)
		ok = json_array_append_new(numbers,
		                           json_string(req->e164s[k])) == 0;
	ok = ok && json_object_set(body, "phone_numbers", numbers) == 0 &&
	     set_text(body, "customer_reference", req->customer_reference);
	json_decref(numbers);
	return ok ? 0
	          : vox_error_set(err, VOX_ERR_NOMEM, true,
	                          "carrier port: no memory");
}

json_t *vox_carrier_port_body(const vox_carrier_port_req_t *req,
                              bool with_numbers, vox_error_t *err)
{
	json_t *body;
	int rc;

	if (req == NULL) {
		bad_req(err, "no request");
		return NULL;
	}
	rc = with_numbers ? req_numbers_check(req, err) : 0;
	if (rc == 0)
		rc = req_check(req, err);
	if (rc != 0)
		return NULL;
	body = json_object();
	if (body == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, true,
		              "carrier port: no memory");
		return NULL;
	}
	rc = with_numbers ? body_numbers(req, body, err) : 0;
	if (rc == 0)
		rc = body_end_user(req, body, err);
	if (rc == 0)
		rc = body_rest(req, body, err);
	if (rc != 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* ---- the answers ---- */

static int portability_slot(const char *e164, const char *const *e164s, int n,
                            const bool *answered)
{
	for (int k = 0; e164 != NULL && k < n; k++)
		if (!answered[k] && strcmp(e164s[k], e164) == 0)
			return k;
	return -1;
}

/* 0, or -1 with why filled: the item is skipped (its number stays
 * number_not_found). */
static int portability_item(const json_t *item, vox_carrier_portability_t *p,
                            const char **why)
{
	const json_t *portable = json_object_get(item, "portable");
	const json_t *fast = json_object_get(item, "fast_portable");
	const json_t *carrier = json_object_get(item, "losing_carrier");
	const json_t *needs = json_object_get(item, "requirements");
	const char *reason = vox_json_str(item, "not_portable_reason");
	const char *name = vox_json_str(carrier, "name");
	const char *spid = vox_json_str(carrier, "spid");
	const char *type = vox_json_str(item, "phone_number_type");

	*why = "portable is not a boolean";
	if (!json_is_boolean(portable))
		return -1;
	*why = "losing_carrier.spid too long";
	if (spid != NULL &&
	    !vox_carrier_copy_fits(p->spid, sizeof(p->spid), spid))
		return -1;
	*why = "phone_number_type too long";
	if (type != NULL &&
	    !vox_carrier_copy_fits(p->number_type, sizeof(p->number_type),
	                           type))
		return -1;
	p->portable = json_is_true(portable);
	p->fast_portable = p->portable && json_is_true(fast);
	if (name != NULL)
		vox_carrier_copy_cut(p->losing_carrier,
		                     sizeof(p->losing_carrier), name);
	p->pin_required = json_is_true(json_object_get(needs, "pin_required"));
	p->account_number_required =
	        json_is_true(json_object_get(needs, "account_number_required"));
	p->not_portable_reason[0] = '\0';
	if (!p->portable &&
	    (reason == NULL || reason[0] == '\0' ||
	     !vox_carrier_copy_fits(p->not_portable_reason,
	                            sizeof(p->not_portable_reason), reason)))
		vox_carrier_copy_cut(p->not_portable_reason,
		                     sizeof(p->not_portable_reason), "unknown");
	return 0;
}

static void portability_unknown(vox_carrier_portability_t *p, const char *e164)
{
	memset(p, 0, sizeof(*p));
	vox_carrier_copy_cut(p->e164, sizeof(p->e164), e164);
	vox_carrier_copy_cut(p->not_portable_reason,
	                     sizeof(p->not_portable_reason),
	                     "number_not_found");
}

int vox_carrier_parse_portability(const char *body, size_t len,
                                  const char *const *e164s, int n,
                                  vox_carrier_portability_t *out,
                                  vox_error_t *err)
{
	bool answered[VOX_CARRIER_PORT_CHECK_MAX] = {false};
	json_t *root, *data, *item;
	vox_error_t jerr;
	const char *why;
	size_t i;

	if (e164s == NULL || out == NULL || n < 1 ||
	    n > VOX_CARRIER_PORT_CHECK_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier portability: 1 to %d numbers",
		                     VOX_CARRIER_PORT_CHECK_MAX);
	for (int k = 0; k < n; k++)
		portability_unknown(&out[k], e164s[k] != NULL ? e164s[k] : "");
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return vox_carrier_unreadable(err, "portability", jerr.message);
	data = json_object_get(root, "data");
	if (!json_is_array(data)) {
		json_decref(root);
		return vox_carrier_unreadable(err, "portability",
		                              "no \"data\" array");
	}
	json_array_foreach(data, i, item)
	{
		const char *e164 = vox_json_str(item, "phone_number");
		int k = portability_slot(e164, e164s, n, answered);

		if (k < 0)
			continue; /* not one we asked for */
		answered[k] = true;
		if (portability_item(item, &out[k], &why) == 0)
			continue;
		portability_unknown(&out[k], e164s[k]);
		vox_log(VOX_LOG_WARN, "carrier portability: answer skipped",
		        "phone_number", e164s[k], "reason", why, NULL);
	}
	json_decref(root);
	return 0;
}

static bool known_status(const char *status)
{
	for (size_t i = 0; status != NULL && port_statuses[i] != NULL; i++)
		if (strcmp(status, port_statuses[i]) == 0)
			return true;
	return false;
}

static void port_exceptions(const json_t *list, vox_carrier_port_t *out)
{
	const json_t *item;
	size_t i;

	json_array_foreach(list, i, item)
	{
		const char *code = vox_json_str(item, "code");
		const char *field = vox_json_str(item, "field");
		vox_carrier_port_exception_t *e;

		if (out->n_exceptions >= VOX_CARRIER_PORT_EXCEPTIONS_MAX)
			break;
		if (code == NULL || code[0] == '\0')
			continue;
		e = &out->exceptions[out->n_exceptions++];
		vox_carrier_copy_cut(e->code, sizeof(e->code), code);
		vox_carrier_copy_cut(e->field, sizeof(e->field),
		                     field != NULL ? field : "");
	}
}

int vox_carrier_parse_port(const char *body, size_t len,
                           vox_carrier_port_t *out, vox_error_t *err)
{
	const json_t *data, *status;
	const char *id, *value, *foc;
	vox_error_t jerr;
	json_t *root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return vox_carrier_unreadable(err, "porting order",
		                              jerr.message);
	data = json_object_get(root, "data");
	id = vox_json_str(data, "id");
	status = json_object_get(data, "status");
	value = json_is_string(status) ? json_string_value(status)
	                               : vox_json_str(status, "value");
	foc = vox_json_str(json_object_get(data, "activation_settings"),
	                   "foc_datetime_actual");
	if (foc == NULL)
		foc = vox_json_str(data, "foc_date");
	if (id == NULL || !vox_upstream_header_safe(id, sizeof(out->id) - 1) ||
	    !vox_carrier_copy_fits(out->id, sizeof(out->id), id))
		rc = vox_carrier_unreadable(err, "porting order",
		                            "no usable \"data.id\"");
	else if (!known_status(value))
		rc = vox_carrier_unreadable(err, "porting order",
		                            "unknown \"data.status\"");
	else
		vox_carrier_copy_fits(out->status, sizeof(out->status), value);
	if (rc == 0 && foc != NULL)
		vox_carrier_copy_fits(out->foc_date, sizeof(out->foc_date),
		                      foc);
	if (rc == 0)
		port_exceptions(json_object_get(data, "exceptions"), out);
	json_decref(root);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- the calls ---- */

int vox_carrier_portability(vox_carrier_t *c, const char *const *e164s, int n,
                            vox_carrier_portability_t *out, vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "portability",
	                              .method = "POST"};
	vox_upstream_response_t resp;
	json_t *numbers;
	int rc;

	if (c == NULL || e164s == NULL || out == NULL || n < 1 ||
	    n > VOX_CARRIER_PORT_CHECK_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier portability: 1 to %d numbers",
		                     VOX_CARRIER_PORT_CHECK_MAX);
	for (int k = 0; k < n; k++)
		if (!vox_carrier_e164_shape(e164s[k]))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "carrier portability: number %d "
			                     "is not E.164",
			                     k);
	numbers = json_array();
	for (int k = 0; numbers != NULL && k < n; k++)
		if (json_array_append_new(numbers, json_string(e164s[k])) !=
		    0) {
			json_decref(numbers);
			numbers = NULL;
		}
	/* a check changes nothing at the carrier: safe to retry */
	rc = vox_carrier_send(
	        c, &req, strdup("/v2/portability_checks"), true,
	        numbers != NULL ? json_pack("{s:o}", "phone_numbers", numbers)
	                        : NULL,
	        &resp, err);
	if (rc == 0)
		rc = vox_carrier_parse_portability(resp.body, resp.len, e164s,
		                                   n, out, err);
	vox_upstream_response_free(&resp);
	return rc;
}

static int key_check(const char *key, vox_error_t *err)
{
	if (key == NULL || !vox_upstream_header_safe(key, VOX_UPSTREAM_MAX_KEY))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier port: an idempotency key of 1 "
		                     "to %d printable bytes is required",
		                     VOX_UPSTREAM_MAX_KEY);
	return 0;
}

static int id_check(const char *id, vox_error_t *err)
{
	if (id == NULL || !vox_upstream_header_safe(id, 63))
		return bad_req(err, "a carrier porting order id of 1 to 63 "
		                    "printable bytes is required");
	return 0;
}

/* Sends req (path stolen; body stolen, NULL for a GET) and reads the
 * order answered. */
/* The account number and PIN of a request body, wiped before it goes. */
static void body_wipe(json_t *body)
{
	static const char *const keys[] = {"account_number", "pin_passcode"};
	json_t *admin =
	        json_object_get(json_object_get(body, "end_user"), "admin");

	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(admin, keys[i]);

		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v),
			                json_string_length(v));
	}
}

static int port_call(vox_carrier_t *c, vox_upstream_request_t *req, char *path,
                     json_t *body, vox_carrier_port_t *out, vox_error_t *err)
{
	vox_upstream_response_t resp;
	int rc;

	json_incref(body); /* kept to be wiped once sent */
	rc = vox_carrier_send(c, req, path, req->method != NULL, body, &resp,
	                      err);
	body_wipe(body);
	json_decref(body);
	if (rc == 0)
		rc = vox_carrier_parse_port(resp.body, resp.len, out, err);
	vox_upstream_response_free(&resp);
	return rc;
}

/* "/v2/porting_orders/<id><suffix>", or NULL on ENOMEM. */
static char *order_path(const char *id, const char *suffix)
{
	char *base = vox_carrier_resource_path("porting_orders", id);
	char *path = NULL;

	if (base != NULL && asprintf(&path, "%s%s", base, suffix) < 0)
		path = NULL;
	free(base);
	return path;
}

int vox_carrier_port_create(vox_carrier_t *c, const vox_carrier_port_req_t *req,
                            const char *idempotency_key,
                            vox_carrier_port_t *out, vox_error_t *err)
{
	vox_upstream_request_t call = {.endpoint = "port_create",
	                               .method = "POST",
	                               .idempotency_key = idempotency_key};
	json_t *body;
	int rc;

	if (c == NULL || out == NULL)
		return bad_req(err, "no carrier or no answer");
	memset(out, 0, sizeof(*out));
	rc = key_check(idempotency_key, err);
	if (rc != 0)
		return rc;
	body = vox_carrier_port_body(req, true, err);
	if (body == NULL)
		return err != NULL ? err->code : VOX_ERR_INVALID;
	return port_call(c, &call, strdup("/v2/porting_orders"), body, out,
	                 err);
}

int vox_carrier_port_update(vox_carrier_t *c, const char *carrier_order_id,
                            const vox_carrier_port_req_t *req,
                            const char *idempotency_key,
                            vox_carrier_port_t *out, vox_error_t *err)
{
	vox_upstream_request_t call = {.endpoint = "port_update",
	                               .method = "PATCH",
	                               .idempotency_key = idempotency_key};
	json_t *body;
	int rc;

	if (c == NULL || out == NULL)
		return bad_req(err, "no carrier or no answer");
	memset(out, 0, sizeof(*out));
	rc = id_check(carrier_order_id, err);
	if (rc == 0)
		rc = key_check(idempotency_key, err);
	if (rc != 0)
		return rc;
	body = vox_carrier_port_body(req, false, err);
	if (body == NULL)
		return err != NULL ? err->code : VOX_ERR_INVALID;
	return port_call(c, &call, order_path(carrier_order_id, ""), body, out,
	                 err);
}

int vox_carrier_port_cancel(vox_carrier_t *c, const char *carrier_order_id,
                            vox_carrier_port_t *out, vox_error_t *err)
{
	vox_upstream_request_t call = {.endpoint = "port_cancel",
	                               .method = "POST"};
	int rc;

	if (c == NULL || out == NULL)
		return bad_req(err, "no carrier or no answer");
	memset(out, 0, sizeof(*out));
	rc = id_check(carrier_order_id, err);
	if (rc != 0)
		return rc;
	/* an empty object: a POST with a body every proxy passes; the
	 * carrier's cancel is idempotent, so retries are safe */
	return port_call(c, &call,
	                 order_path(carrier_order_id, "/actions/cancel"),
	                 json_object(), out, err);
}

int vox_carrier_port_get(vox_carrier_t *c, const char *carrier_order_id,
                         vox_carrier_port_t *out, vox_error_t *err)
{
	vox_upstream_request_t call = {.endpoint = "port_get"};
	int rc;

	if (c == NULL || out == NULL)
		return bad_req(err, "no carrier or no answer");
	memset(out, 0, sizeof(*out));
	rc = id_check(carrier_order_id, err);
	if (rc != 0)
		return rc;
	return port_call(c, &call, order_path(carrier_order_id, ""), NULL, out,
	                 err);
}
