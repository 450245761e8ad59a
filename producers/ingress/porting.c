/*
 * Porting orders (/v1/porting-orders, docs/PORTING.md): drafts written
 * synchronously (create, PATCH), reads (one order, lists, its history, the
 * FOC windows). Every write checks the whole body first, then the rules,
 * then the numbers (ours, then the carrier's), and only then writes, in one
 * transaction: a refused request stores nothing. The account number and PIN
 * are sealed with the ingress's keyring bound to their order and account
 * (vox_porting_aad) before they reach the database; only their last two
 * characters are stored in clear and answered. Submit and cancel are in
 * porting_actions.c.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "porting.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_phone.h"

#define NAME_MAX_CHARS      200
#define REFERENCE_MAX_CHARS 200
#define ACCOUNT_NUMBER_MAX  64
#define PIN_MAX             16
/* Answered as its last two characters: a secret of two would be answered
 * whole, of three nearly; no losing carrier issues PINs or account numbers
 * that short. */
#define SECRET_MIN 4

/* ---------------------------------------------------------------- answers */

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

static json_t *json_col(const PGresult *res, int row, int col, json_t *dflt)
{
	json_t *v = PQgetisnull(res, row, col)
	                    ? NULL
	                    : json_loads(PQgetvalue(res, row, col), 0, NULL);

	if (v == NULL)
		return dflt;
	json_decref(dflt);
	return v;
}

json_t *porting_order_json(const PGresult *res, int i)
{
	json_t *end_user, *documents, *order;

	end_user = json_pack(
	        "{s:o, s:o, s:o, s:o, s:o}", "authorized_name",
	        text_or_null(res, i, PC_NAME), "business_name",
	        text_or_null(res, i, PC_BUSINESS), "service_address",
	        json_col(res, i, PC_ADDRESS, json_null()),
	        "account_number_last2", text_or_null(res, i, PC_ACCOUNT_LAST2),
	        "pin_last2", text_or_null(res, i, PC_PIN_LAST2));
	documents = json_pack("{s:o, s:o}", "loa", text_or_null(res, i, PC_LOA),
	                      "invoice", text_or_null(res, i, PC_INVOICE));
	order = json_pack(
	        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
	        text_or_null(res, i, PC_ID), "status",
	        text_or_null(res, i, PC_STATUS), "parent_id",
	        text_or_null(res, i, PC_PARENT), "children",
	        json_col(res, i, PC_CHILDREN, json_array()), "phone_numbers",
	        json_col(res, i, PC_NUMBERS, json_array()), "end_user",
	        end_user, "requested_foc_date",
	        text_or_null(res, i, PC_REQUESTED_FOC), "foc_date",
	        text_or_null(res, i, PC_FOC), "documents", documents,
	        "exceptions", json_col(res, i, PC_EXCEPTIONS, json_array()));
	json_object_set_new(order, "cancel_reason",
	                    text_or_null(res, i, PC_CANCEL_REASON));
	json_object_set_new(order, "customer_reference",
	                    text_or_null(res, i, PC_REFERENCE));
	json_object_set_new(order, "losing_carrier",
	                    text_or_null(res, i, PC_LOSING));
	json_object_set_new(
	        order, "version",
	        json_integer(strtol(PQgetvalue(res, i, PC_VERSION), NULL, 10)));
	json_object_set_new(order, "expires_at",
	                    text_or_null(res, i, PC_EXPIRES));
	json_object_set_new(order, "created_at",
	                    text_or_null(res, i, PC_CREATED));
	json_object_set_new(order, "updated_at",
	                    text_or_null(res, i, PC_UPDATED));
	json_object_set_new(order, "submitted_at",
	                    text_or_null(res, i, PC_SUBMITTED));
	json_object_set_new(order, "ported_at",
	                    text_or_null(res, i, PC_PORTED));
	return order;
}

PGresult *porting_lookup(vox_http_req_t *req, ingress_req_t *ir, const char *id)
{
	return ingress_lookup(req, ir, "ingress_porting_get",
	                      "SELECT " PORTING_ORDER_COLUMNS
	                      "FROM porting_orders o WHERE o.id = $1 AND "
	                      "o.account_id = $2",
	                      id, "porting_order_not_found", "porting order");
}

bool porting_rule(vox_http_req_t *req, const char *rule, const char *message,
                  json_t *details)
{
	if (details == NULL)
		details = json_object();
	json_object_set_new(details, "rule", json_string(rule));
	ingress_error(req, 422, "porting_rule_violated", message, details);
	return false;
}

bool porting_bad_field(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[240];

	snprintf(msg, sizeof(msg), "%.60s %.170s", field, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", field));
	return false;
}

bool porting_expired(vox_http_req_t *req, const PGresult *order)
{
	if (strcmp(PQgetvalue(order, 0, PC_EXPIRED), "t") != 0)
		return false;
	ingress_error(req, 409, "invalid_state",
	              "the draft expired (expires_at): it is being cancelled; "
	              "create another",
	              json_pack("{s:s, s:s}", "current_status", "draft",
	                        "expires_at",
	                        PQgetvalue(order, 0, PC_EXPIRES)));
	return true;
}

vox_date_t porting_today(void)
{
	return vox_date_of_unix((long long)time(NULL));
}

/* ---------------------------------------------------------------- input */

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A string of min..max characters, none a control character (they go to
 * the losing carrier and into notifications as they are). */
static bool text_ok(vox_http_req_t *req, const json_t *v, const char *field,
                    size_t min, size_t max)
{
	char why[120];
	size_t n;

	if (json_is_string(v) && !has_control(json_string_value(v))) {
		n = utf8_chars(json_string_value(v));
		if (n >= min && n <= max)
			return true;
	}
	snprintf(why, sizeof(why),
	         "must be a string of %zu to %zu characters, no control "
	         "character",
	         min, max);
	return porting_bad_field(req, field, why);
}

/* SECRET_MIN..max printable ASCII characters: what a losing carrier
 * accepts, long enough that its last two do not give it away. */
static bool secret_ok(vox_http_req_t *req, const json_t *v, const char *field,
                      size_t max)
{
	const char *s = json_string_value(v);
	char why[96];
	size_t n = s ? strlen(s) : 0;

	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			n = 0;
	if (n >= SECRET_MIN && n <= max)
		return true;
	snprintf(why, sizeof(why),
	         "must be %d to %zu printable ASCII characters", SECRET_MIN,
	         max);
	return porting_bad_field(req, field, why);
}

/* What a create or a PATCH wants written. */
struct porting_input {
	json_t *set;     /* column -> value, for the statement (owned) */
	json_t *numbers; /* canonical E.164 strings, or NULL (owned) */
	const char *account_number, *pin; /* borrowed from the body */
	bool has_account_number, has_pin; /* given (a null clears) */
	const char *docs[2];              /* loa, invoice ids to check */
};

/* The body's plaintext secrets, wiped before the body is freed. */
static void wipe_secrets(json_t *body)
{
	static const char *const fields[] = {"account_number", "pin"};
	json_t *end_user = json_object_get(body, "end_user");

	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(end_user, fields[i]);

		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v),
			                json_string_length(v));
	}
}

static void input_free(struct porting_input *pi)
{
	json_decref(pi->set);
	json_decref(pi->numbers);
}

static bool address_ok(vox_http_req_t *req, json_t *addr, json_t *set)
{
	static const char *const keys[] = {
	        "street",      "locality", "administrative_area",
	        "postal_code", "country",  NULL};
	const char *key;
	json_t *value;
	vox_error_t err;
	char field[80];

	if (json_is_null(addr)) {
		json_object_set_new(set, "service_address", json_null());
		return true;
	}
	if (!json_is_object(addr))
		return porting_bad_field(req, "end_user.service_address",
		                         "must be an object or null");
	if (vox_json_only_keys(addr, keys, &err) != 0)
		return porting_bad_field(req, "end_user.service_address",
		                         "may hold only street, locality, "
		                         "administrative_area, postal_code and "
		                         "country");
	json_object_foreach(addr, key, value)
	{
		snprintf(field, sizeof(field), "end_user.service_address.%s",
		         key);
		if (!text_ok(req, value, field, 1, NAME_MAX_CHARS))
			return false;
		if (strcmp(key, "country") == 0) {
			const char *c = json_string_value(value);

			if (strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' ||
			    c[1] < 'A' || c[1] > 'Z')
				return porting_bad_field(
				        req, field,
				        "must be an ISO 3166 alpha-2 code "
				        "(\"US\")");
		}
	}
	json_object_set(set, "service_address", addr);
	return true;
}

static bool end_user_ok(vox_http_req_t *req, json_t *end_user,
                        struct porting_input *pi)
{
	static const char *const keys[] = {
	        "authorized_name", "business_name", "service_address",
	        "account_number",  "pin",           NULL};
	static const char *const names[] = {"authorized_name", "business_name"};
	vox_error_t err;
	json_t *v;

	if (!json_is_object(end_user))
		return porting_bad_field(req, "end_user", "must be an object");
	if (vox_json_only_keys(end_user, keys, &err) != 0)
		return porting_bad_field(req, "end_user", err.message);
	for (size_t i = 0; i < 2; i++) {
		char field[40];

		v = json_object_get(end_user, names[i]);
		if (v == NULL)
			continue;
		snprintf(field, sizeof(field), "end_user.%s", names[i]);
		if (!json_is_null(v) &&
		    !text_ok(req, v, field, 1, NAME_MAX_CHARS))
			return false;
		json_object_set(pi->set, names[i], v);
	}
	v = json_object_get(end_user, "service_address");
	if (v != NULL && !address_ok(req, v, pi->set))
		return false;
	v = json_object_get(end_user, "account_number");
	if (v != NULL) {
		if (!json_is_null(v) &&
		    !secret_ok(req, v, "end_user.account_number",
		               ACCOUNT_NUMBER_MAX))
			return false;
		pi->has_account_number = true;
		pi->account_number = json_string_value(v);
	}
	v = json_object_get(end_user, "pin");
	if (v != NULL) {
		if (!json_is_null(v) &&
		    !secret_ok(req, v, "end_user.pin", PIN_MAX))
			return false;
		pi->has_pin = true;
		pi->pin = json_string_value(v);
	}
	return true;
}

static bool documents_ok(vox_http_req_t *req, json_t *docs,
                         struct porting_input *pi)
{
	static const char *const keys[] = {"loa", "invoice", NULL};
	static const char *const columns[] = {"loa_document_id",
	                                      "invoice_document_id"};
	vox_error_t err;

	if (!json_is_object(docs))
		return porting_bad_field(req, "documents", "must be an object");
	if (vox_json_only_keys(docs, keys, &err) != 0)
		return porting_bad_field(req, "documents", err.message);
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(docs, keys[i]);
		char field[40];

		if (v == NULL)
			continue;
		snprintf(field, sizeof(field), "documents.%s", keys[i]);
		if (!json_is_null(v) && !vox_uuid_valid(json_string_value(v)))
			return porting_bad_field(
			        req, field, "must be a document id or null");
		pi->docs[i] = json_string_value(v);
		json_object_set(pi->set, columns[i], v);
	}
	return true;
}

/* phone_numbers: 1..1000 distinct valid numbers, into pi->numbers as
 * canonical E.164. */
static bool numbers_ok(vox_http_req_t *req, json_t *list,
                       struct porting_input *pi)
{
	size_t i, n = json_array_size(list);
	json_t *value;
	char msg[300];

	if (!json_is_array(list) || n == 0)
		return porting_bad_field(req, "phone_numbers",
		                         "must be a list of 1 to 1000 E.164 "
		                         "numbers");
	if (n > VOX_PORTING_MAX_NUMBERS)
		return porting_rule(
		        req, "too_many_numbers",
		        "an order holds at most 1000 numbers: split it",
		        json_pack("{s:i, s:I}", "limit",
		                  VOX_PORTING_MAX_NUMBERS, "count",
		                  (json_int_t)n));
	pi->numbers = json_array();
	json_array_foreach(list, i, value)
	{
		vox_phone_t p;
		vox_error_t err;

		if (!json_is_string(value) ||
		    vox_phone_parse(json_string_value(value), NULL, &p, &err) !=
		            0) {
			snprintf(msg, sizeof(msg),
			         "phone_numbers[%zu] is not a valid E.164 "
			         "number%s%.200s",
			         i, json_is_string(value) ? ": " : "",
			         json_is_string(value) ? err.message : "");
			ingress_error(req, 400, "invalid_phone_number", msg,
			              json_pack("{s:s, s:I}", "field",
			                        "phone_numbers", "index",
			                        (json_int_t)i));
			return false;
		}
		json_array_append_new(pi->numbers, json_string(p.e164));
	}
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The numbers as a C array (borrowed from pi->numbers), sorted copy
 * checked for duplicates. NULL after answering. */
static const char **numbers_array(vox_http_req_t *req, json_t *numbers)
{
	size_t n = json_array_size(numbers);
	const char **list = calloc(n + 1, sizeof(*list));
	const char **sorted = calloc(n + 1, sizeof(*sorted));

	if (list == NULL || sorted == NULL) {
		free(list);
		free(sorted);
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		list[i] = sorted[i] =
		        json_string_value(json_array_get(numbers, i));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			porting_rule(
			        req, "duplicate_number",
			        "a number is in the order twice",
			        json_pack("{s:s}", "phone_number", sorted[i]));
			free(list);
			free(sorted);
			return NULL;
		}
	free(sorted);
	return list;
}

/* Every field of the body: shapes (400), then the FOC rule (422). */
static bool input_ok(vox_http_req_t *req, json_t *body, bool create,
                     struct porting_input *pi)
{
	json_t *v;

	pi->set = json_object();
	v = json_object_get(body, "phone_numbers");
	if ((create || v != NULL) && !numbers_ok(req, v, pi))
		return false;
	v = json_object_get(body, "end_user");
	if (v != NULL && !json_is_null(v) && !end_user_ok(req, v, pi))
		return false;
	v = json_object_get(body, "documents");
	if (v != NULL && !json_is_null(v) && !documents_ok(req, v, pi))
		return false;
	v = json_object_get(body, "customer_reference");
	if (v != NULL) {
		if (!json_is_null(v) && !text_ok(req, v, "customer_reference",
		                                 0, REFERENCE_MAX_CHARS))
			return false;
		json_object_set(pi->set, "customer_reference", v);
	}
	v = json_object_get(body, "requested_foc_date");
	if (v != NULL && !json_is_null(v)) {
		vox_date_t foc, today = porting_today();
		const char *rule;

		if (vox_date_parse(json_string_value(v), &foc) != 0)
			return porting_bad_field(req, "requested_foc_date",
			                         "must be a date YYYY-MM-DD");
		if ((rule = vox_porting_foc_rule(&today, &foc)) != NULL) {
			vox_date_t first, last;
			char a[11], b[11], msg[200];

			vox_porting_foc_range(&today, &first, &last);
			vox_date_format(&first, a);
			vox_date_format(&last, b);
			snprintf(msg, sizeof(msg),
			         "requested_foc_date must be a business day "
			         "from %s to %s (see allowed-foc-windows)",
			         a, b);
			return porting_rule(
			        req, rule, msg,
			        json_pack("{s:s, s:s, s:s, s:O}", "field",
			                  "requested_foc_date", "earliest", a,
			                  "latest", b, "requested_foc_date",
			                  v));
		}
	}
	if (v != NULL)
		json_object_set(pi->set, "requested_foc_date", v);
	return true;
}

/* The documents named must be the account's: 400 otherwise. */
static bool documents_owned(vox_http_req_t *req, ingress_req_t *ir,
                            const struct porting_input *pi)
{
	static const char *const fields[] = {"documents.loa",
	                                     "documents.invoice"};
	static const char *const kinds[] = {"loa", "invoice"};

	for (size_t i = 0; i < 2; i++) {
		PGresult *res;
		bool found, kind_ok;

		if (pi->docs[i] == NULL)
			continue;
		const char *params[] = {pi->docs[i], ir->who.account_id,
		                        kinds[i]};
		res = ingress_query(
		        ir->in, req, "ingress_porting_doc",
		        "SELECT kind IN ($3, 'other') FROM documents "
		        "WHERE id = $1 AND account_id = $2",
		        3, params);
		if (res == NULL)
			return false;
		found = PQntuples(res) == 1;
		kind_ok = found && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!found)
			return porting_bad_field(
			        req, fields[i],
			        "is not the id of a document of "
			        "this account");
		/* an invoice is not a letter of authorization */
		if (!kind_ok)
			return porting_bad_field(
			        req, fields[i],
			        i == 0 ? "must be a document of kind loa "
			                 "(or other)"
			               : "must be a document of kind invoice "
			                 "(or other)");
	}
	return true;
}

/* A secret is stored only sealed: none without a keyring. true, or
 * false after answering 503 secret_storage_unavailable. */
static bool secrets_storable(vox_http_req_t *req, const ingress_t *in,
                             const struct porting_input *pi)
{
	if ((pi->account_number == NULL && pi->pin == NULL) ||
	    in->keyring != NULL)
		return true;
	ingress_error(req, 503, "secret_storage_unavailable",
	              "account numbers and PINs are stored encrypted and this "
	              "server has no VOX_ENCRYPTION_KEY: a configuration error "
	              "on our side; nothing was stored",
	              NULL);
	return false;
}

/* Seals the secrets pi carries into set for order id: 0, or answered
 * (500; 503 secret_storage_unavailable when there is no keyring). */
static int seal_secrets(vox_http_req_t *req, ingress_t *in,
                        const struct porting_input *pi, const char *id,
                        const char *account, json_t *set)
{
	static const char *const fields[] = {"account_number", "pin"};
	const char *values[] = {pi->account_number, pi->pin};
	const bool given[] = {pi->has_account_number, pi->has_pin};

	for (size_t i = 0; i < 2; i++) {
		char aad[160], key[40], last2[3];
		char *hex = NULL;
		vox_error_t err = {0};

		if (!given[i])
			continue;
		snprintf(key, sizeof(key), "%s_enc", fields[i]);
		if (values[i] == NULL) { /* null: cleared */
			json_object_set_new(set, key, json_null());
			snprintf(key, sizeof(key), "%s_last2", fields[i]);
			json_object_set_new(set, key, json_null());
			continue;
		}
		if (in->keyring == NULL) {
			ingress_error(
			        req, 503, "secret_storage_unavailable",
			        "account numbers and PINs are stored "
			        "encrypted and this server has no "
			        "VOX_ENCRYPTION_KEY: a configuration error "
			        "on our side; nothing was stored",
			        NULL);
			return -1;
		}
		vox_porting_aad(aad, sizeof(aad), fields[i], id, account);
		if (vox_crypto_seal_hex(in->keyring, values[i], aad, &hex,
		                        &err) != 0) {
			ingress_error(req, 500, "internal",
			              "cannot seal a secret", NULL);
			return -1;
		}
		json_object_set_new(set, key, json_string(hex));
		free(hex);
		vox_porting_last2(values[i], last2);
		snprintf(key, sizeof(key), "%s_last2", fields[i]);
		json_object_set_new(set, key, json_string(last2));
	}
	return 0;
}

static const char *number_type(const vox_carrier_portability_t *p)
{
	if (strcmp(p->number_type, "mobile") == 0 ||
	    strcmp(p->number_type, "toll_free") == 0)
		return p->number_type;
	return "local";
}

/* The numbers' rows for porting_order_numbers, and the order's losing
 * carrier when they share one (NULL otherwise) into set. */
static json_t *number_rows(const char *const *e164s, int n,
                           const vox_carrier_portability_t *checks, json_t *set)
{
	json_t *rows = json_array();
	const char *losing = n > 0 ? checks[0].losing_carrier : "";

	for (int i = 0; i < n; i++) {
		vox_phone_t p;

		vox_phone_parse(e164s[i], NULL, &p, NULL);
		json_array_append_new(
		        rows,
		        json_pack("{s:s, s:s, s:s, s:s?}", "e164", e164s[i],
		                  "country", p.region, "number_type",
		                  number_type(&checks[i]), "losing_carrier",
		                  checks[i].losing_carrier[0]
		                          ? checks[i].losing_carrier
		                          : NULL));
		if (strcmp(losing, checks[i].losing_carrier) != 0)
			losing = "";
	}
	json_object_set_new(set, "losing_carrier",
	                    losing[0] ? json_string(losing) : json_null());
	return rows;
}

/* ---------------------------------------------------------------- create */

#define SET_VALUES                                                             \
	"s->>'authorized_name', s->>'business_name', "                         \
	"nullif(s->'service_address', 'null'::jsonb), "                        \
	"decode(s->>'account_number_enc', 'hex'), "                            \
	"s->>'account_number_last2', "                                         \
	"decode(s->>'pin_enc', 'hex'), s->>'pin_last2', "                      \
	"(s->>'requested_foc_date')::date, (s->>'loa_document_id')::uuid, "    \
	"(s->>'invoice_document_id')::uuid, s->>'customer_reference'"

static const char numbers_insert_sql[] =
        "INSERT INTO porting_order_numbers (order_id, e164, country, "
        "number_type, losing_carrier) SELECT $1, x.e164, x.country, "
        "x.number_type, x.losing_carrier FROM json_to_recordset($2::json) "
        "AS x(e164 text, country text, number_type text, losing_carrier "
        "text)";

struct porting_write {
	const char *id, *account;
	char *set_text, *rows_text; /* rows_text NULL: numbers unchanged */
	/* PATCH of a parent: children in exception, each with its set */
	int nchildren;
	const char *child_ids[PORTING_MAX_CHILDREN];
	char *child_sets[PORTING_MAX_CHILDREN];
	bool state_changed; /* PATCH: the order left draft/exception */
	PGresult *row;      /* the order as written */
};

static int create_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct porting_write *w = arg;
	const char *params[] = {w->id, w->account, w->set_text};
	const char *nparams[] = {w->id, w->rows_text};
	int rc;

	rc = vox_pg_execp(
	        pg, "ingress_porting_create",
	        "INSERT INTO porting_orders (id, account_id, losing_carrier, "
	        "authorized_name, business_name, service_address, "
	        "account_number_enc, account_number_last2, pin_enc, pin_last2, "
	        "requested_foc_date, loa_document_id, invoice_document_id, "
	        "customer_reference) SELECT $1, $2, "
	        "s->>'losing_carrier', " SET_VALUES
	        " FROM (SELECT $3::jsonb AS s) x",
	        3, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "ingress_porting_numbers",
		                  numbers_insert_sql, 2, nparams, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "ingress_porting_reread",
		                  "SELECT " PORTING_ORDER_COLUMNS
		                  "FROM porting_orders o WHERE o.id = $1",
		                  1, params, &w->row, err);
	return rc;
}

static void write_free(struct porting_write *w)
{
	free(w->set_text);
	free(w->rows_text);
	for (int i = 0; i < w->nchildren; i++)
		free(w->child_sets[i]);
	PQclear(w->row);
}

/* Runs fn in a transaction; answers 503 when it failed (and false). */
static bool write_run(vox_http_req_t *req, ingress_t *in, vox_pg_tx_fn fn,
                      struct porting_write *w)
{
	vox_error_t err = {0};
	vox_pg_t *pg = ingress_pg(in, req);
	int rc;

	if (pg == NULL)
		return false;
	rc = vox_pg_transaction(pg, fn, w, &err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc != 0 && !w->state_changed) {
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
		return false;
	}
	return rc == 0;
}

/* The numbers' checks (pi->numbers): duplicates, rules, carrier. The
 * rows to insert, or NULL after answering. */
static json_t *numbers_checked(vox_http_req_t *req, ingress_req_t *ir,
                               const char *own_order,
                               const struct porting_input *pi)
{
	int n = (int)json_array_size(pi->numbers);
	const char **list = numbers_array(req, pi->numbers);
	vox_carrier_portability_t *checks;
	json_t *rows = NULL;

	if (list == NULL)
		return NULL;
	checks = calloc((size_t)n, sizeof(*checks));
	if (checks == NULL)
		ingress_error(req, 500, "internal", "out of memory", NULL);
	else if (porting_numbers_ok(req, ir->in, own_order, list, n, checks))
		rows = number_rows(list, n, checks, pi->set);
	free(checks);
	free(list);
	return rows;
}

void ingress_porting_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"phone_numbers",      "end_user",
	                                      "requested_foc_date", "documents",
	                                      "customer_reference", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	struct porting_input pi = {0};
	struct porting_write w = {0};
	char id[VOX_UUID_STRLEN];
	json_t *body, *rows = NULL;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	if (!input_ok(req, body, true, &pi))
		goto out;
	ir->body_has_secret = pi.account_number != NULL || pi.pin != NULL;
	if (!idem_begin(req, ir))
		goto out;
	/* The id first: the secrets are sealed bound to it. */
	vox_uuid7(id);
	if (!secrets_storable(req, ir->in, &pi) ||
	    !documents_owned(req, ir, &pi) ||
	    (rows = numbers_checked(req, ir, NULL, &pi)) == NULL ||
	    seal_secrets(req, ir->in, &pi, id, ir->who.account_id, pi.set) != 0)
		goto out;
	w.id = id;
	w.account = ir->who.account_id;
	w.set_text = vox_json_dump(pi.set);
	w.rows_text = vox_json_dump(rows);
	if (w.set_text == NULL || w.rows_text == NULL)
		ingress_error(req, 500, "internal", "out of memory", NULL);
	else if (write_run(req, ir->in, create_tx, &w))
		ingress_reply(req, 201, porting_order_json(w.row, 0));
out:
	write_free(&w);
	json_decref(rows);
	input_free(&pi);
	wipe_secrets(body);
	json_decref(body);
}

/* ---------------------------------------------------------------- PATCH */

#define SET_UPDATE                                                             \
	"authorized_name = CASE WHEN s ? 'authorized_name' THEN "              \
	"s->>'authorized_name' ELSE o.authorized_name END, business_name = "   \
	"CASE WHEN s ? 'business_name' THEN s->>'business_name' ELSE "         \
	"o.business_name END, service_address = CASE WHEN s ? "                \
	"'service_address' THEN nullif(s->'service_address', 'null'::jsonb) "  \
	"ELSE o.service_address END, account_number_enc = CASE WHEN s ? "      \
	"'account_number_enc' THEN decode(s->>'account_number_enc', 'hex') "   \
	"ELSE o.account_number_enc END, account_number_last2 = CASE WHEN s ? " \
	"'account_number_last2' THEN s->>'account_number_last2' ELSE "         \
	"o.account_number_last2 END, pin_enc = CASE WHEN s ? 'pin_enc' THEN "  \
	"decode(s->>'pin_enc', 'hex') ELSE o.pin_enc END, pin_last2 = CASE "   \
	"WHEN s ? 'pin_last2' THEN s->>'pin_last2' ELSE o.pin_last2 END, "     \
	"requested_foc_date = CASE WHEN s ? 'requested_foc_date' THEN "        \
	"(s->>'requested_foc_date')::date ELSE o.requested_foc_date END, "     \
	"loa_document_id = CASE WHEN s ? 'loa_document_id' THEN "              \
	"(s->>'loa_document_id')::uuid ELSE o.loa_document_id END, "           \
	"invoice_document_id = CASE WHEN s ? 'invoice_document_id' THEN "      \
	"(s->>'invoice_document_id')::uuid ELSE o.invoice_document_id END, "   \
	"customer_reference = CASE WHEN s ? 'customer_reference' THEN "        \
	"s->>'customer_reference' ELSE o.customer_reference END, "             \
	"losing_carrier = CASE WHEN s ? 'losing_carrier' THEN "                \
	"s->>'losing_carrier' ELSE o.losing_carrier END, version = o.version " \
	"+ 1"

static int patch_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct porting_write *w = arg;
	const char *params[] = {w->id, w->account, w->set_text};
	const char *nparams[] = {w->id, w->rows_text};
	PGresult *res = NULL;
	int rc;

	/* phone_numbers only in draft; the rest in draft or exception. */
	rc = vox_pg_execp(
	        pg, "ingress_porting_patch",
	        "UPDATE porting_orders o SET " SET_UPDATE
	        " FROM (SELECT $3::jsonb AS s) x WHERE o.id = $1 AND "
	        "o.account_id = $2 AND ((o.status = 'draft' AND o.expires_at > "
	        "now()) OR (o.status = 'exception' AND NOT s ? "
	        "'losing_carrier')) RETURNING o.id",
	        3, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		w->state_changed = true;
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "state changed");
	}
	PQclear(res);
	if (w->rows_text != NULL) {
		rc = vox_pg_execp(pg, "ingress_porting_numbers_clear",
		                  "DELETE FROM porting_order_numbers WHERE "
		                  "order_id = $1",
		                  1, params, NULL, err);
		if (rc == 0)
			rc = vox_pg_execp(pg, "ingress_porting_numbers",
			                  numbers_insert_sql, 2, nparams, NULL,
			                  err);
	}
	for (int i = 0; rc == 0 && i < w->nchildren; i++) {
		const char *cparams[] = {w->child_ids[i], w->id,
		                         w->child_sets[i]};

		rc = vox_pg_execp(
		        pg, "ingress_porting_patch_child",
		        "UPDATE porting_orders o SET " SET_UPDATE
		        " FROM (SELECT $3::jsonb AS s) x WHERE o.id = $1 AND "
		        "o.parent_id = $2 AND o.status = 'exception'",
		        3, cparams, NULL, err);
	}
	if (rc == 0)
		rc = vox_pg_execp(pg, "ingress_porting_reread",
		                  "SELECT " PORTING_ORDER_COLUMNS
		                  "FROM porting_orders o WHERE o.id = $1",
		                  1, params, &w->row, err);
	return rc;
}

/* A parent's children in exception (children, borrowed: w keeps
 * pointers into it) get the same details, their secrets sealed bound to
 * each child. false after answering. */
static bool patch_children(vox_http_req_t *req, ingress_req_t *ir,
                           const json_t *children,
                           const struct porting_input *pi,
                           struct porting_write *w)
{
	const json_t *child;
	size_t i;

	json_array_foreach(children, i, child)
	{
		const char *cid = vox_json_str(child, "id");
		const char *status = vox_json_str(child, "status");
		json_t *set;

		if (cid == NULL || status == NULL ||
		    strcmp(status, "exception") != 0)
			continue;
		if (w->nchildren == PORTING_MAX_CHILDREN) {
			ingress_error(req, 500, "internal",
			              "too many child orders", NULL);
			return false;
		}
		set = json_deep_copy(pi->set);
		json_object_del(set, "losing_carrier");
		if (seal_secrets(req, ir->in, pi, cid, ir->who.account_id,
		                 set) != 0) {
			json_decref(set);
			return false;
		}
		w->child_ids[w->nchildren] = cid;
		w->child_sets[w->nchildren++] = vox_json_dump(set);
		json_decref(set);
	}
	return true;
}

void ingress_porting_update(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"phone_numbers",      "end_user",
	                                      "requested_foc_date", "documents",
	                                      "customer_reference", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	struct porting_input pi = {0};
	struct porting_write w = {0};
	json_t *body = NULL, *rows = NULL, *children = NULL;
	PGresult *order = NULL;
	const char *status;

	if (ir == NULL || (order = porting_lookup(req, ir, id)) == NULL)
		return;
	if ((body = ingress_body(req, allowed, false)) == NULL ||
	    !input_ok(req, body, false, &pi))
		goto out;
	status = PQgetvalue(order, 0, PC_STATUS);
	if ((strcmp(status, "draft") != 0 &&
	     strcmp(status, "exception") != 0) ||
	    (pi.numbers != NULL && strcmp(status, "draft") != 0)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "the porting order is %s: %s",
		         status,
		         pi.numbers != NULL && strcmp(status, "exception") == 0
		                 ? "phone_numbers change only in a draft"
		                 : "only a draft or an order in exception "
		                   "changes");
		ingress_error(req, 409, "invalid_state", msg,
		              json_pack("{s:s}", "current_status", status));
		goto out;
	}
	if (porting_expired(req, order) ||
	    !secrets_storable(req, ir->in, &pi) ||
	    !documents_owned(req, ir, &pi))
		goto out;
	if (pi.numbers != NULL &&
	    (rows = numbers_checked(req, ir, id, &pi)) == NULL)
		goto out;
	children = json_loads(PQgetvalue(order, 0, PC_CHILDREN), 0, NULL);
	if (!patch_children(req, ir, children, &pi, &w) ||
	    seal_secrets(req, ir->in, &pi, id, ir->who.account_id, pi.set) != 0)
		goto out;
	w.id = id;
	w.account = ir->who.account_id;
	w.set_text = vox_json_dump(pi.set);
	w.rows_text = rows ? vox_json_dump(rows) : NULL;
	if (w.set_text == NULL)
		ingress_error(req, 500, "internal", "out of memory", NULL);
	else if (write_run(req, ir->in, patch_tx, &w))
		ingress_reply(req, 200, porting_order_json(w.row, 0));
	else if (w.state_changed)
		ingress_error(req, 409, "invalid_state",
		              "the porting order changed state meanwhile: "
		              "read it again",
		              NULL);
out:
	write_free(&w);
	json_decref(children);
	json_decref(rows);
	input_free(&pi);
	wipe_secrets(body);
	json_decref(body);
	PQclear(order);
}

/* ---------------------------------------------------------------- reads */

void ingress_porting_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL ||
	    (res = porting_lookup(req, ir, vox_http_param(req, "id"))) == NULL)
		return;
	vox_http_reply_json(req, 200, porting_order_json(res, 0));
	PQclear(res);
}

void ingress_porting_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *status = vox_http_query(req, "status");
	const char *parent = vox_http_query(req, "parent_id");
	const char *cursor;
	char limit[16];
	PGresult *res;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	if (status != NULL && !vox_porting_status_valid(status)) {
		ingress_bad_param(req, "status",
		                  "must be draft, submitted, in-process, "
		                  "exception, foc-date-confirmed, ported, "
		                  "cancel-pending or cancelled");
		return;
	}
	if (parent != NULL && !vox_uuid_valid(parent)) {
		ingress_bad_param(req, "parent_id", "must be an order id");
		return;
	}
	const char *params[] = {ir->who.account_id, status, parent, cursor,
	                        limit};
	/* Newest first; the cursor is the last id of the page before. */
	res = ingress_query(
	        ir->in, req, "ingress_porting_list",
	        "SELECT " PORTING_ORDER_COLUMNS
	        "FROM porting_orders o WHERE o.account_id = $1 AND ($2::text "
	        "IS NULL OR o.status = $2) AND ($3::uuid IS NULL OR "
	        "o.parent_id = $3::uuid) AND ($4::uuid IS NULL OR "
	        "(o.created_at, o.id) < (SELECT p.created_at, p.id FROM "
	        "porting_orders p WHERE p.id = $4::uuid AND p.account_id = "
	        "$1)) ORDER BY o.created_at DESC, o.id DESC LIMIT $5::int",
	        5, params);
	if (res == NULL)
		return;
	vox_http_reply_json(req, 200,
	                    ingress_page(res, strtol(limit, NULL, 10) - 1,
	                                 porting_order_json));
	PQclear(res);
}

void ingress_porting_events(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *order, *res;
	json_t *data;

	if (ir == NULL || (order = porting_lookup(req, ir, id)) == NULL)
		return;
	PQclear(order);
	const char *params[] = {id};
	res = ingress_query(
	        ir->in, req, "ingress_porting_history",
	        "SELECT id, from_status, to_status, applied, source, "
	        "carrier_event_id, reason, detail::text, vox_iso(at) FROM "
	        "porting_order_events WHERE order_id = $1 ORDER BY id LIMIT "
	        "1000",
	        1, params);
	if (res == NULL)
		return;
	data = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		        data,
		        json_pack(
		                "{s:I, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o}",
		                "id",
		                (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL,
		                                    10),
		                "from_status", text_or_null(res, i, 1),
		                "to_status", text_or_null(res, i, 2), "applied",
		                strcmp(PQgetvalue(res, i, 3), "t") == 0,
		                "source", text_or_null(res, i, 4),
		                "carrier_event_id", text_or_null(res, i, 5),
		                "reason", text_or_null(res, i, 6), "detail",
		                json_col(res, i, 7, json_null()), "at",
		                text_or_null(res, i, 8)));
	vox_http_reply_json(req, 200, json_pack("{s:o}", "data", data));
	PQclear(res);
}

void ingress_porting_windows(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	vox_date_t today = porting_today(), first, last;
	PGresult *order;
	json_t *data;

	if (ir == NULL || (order = porting_lookup(
	                           req, ir, vox_http_param(req, "id"))) == NULL)
		return;
	PQclear(order);
	vox_porting_foc_range(&today, &first, &last);
	data = json_array();
	for (long d = vox_date_days(&first); d <= vox_date_days(&last); d++) {
		vox_date_t day = vox_date_from_days(d);
		char date[11], start[32], end[32];

		if (!vox_porting_business_day(&day))
			continue;
		vox_date_format(&day, date);
		snprintf(start, sizeof(start), "%sT%02d:00:00Z", date,
		         VOX_PORTING_WINDOW_START_H);
		snprintf(end, sizeof(end), "%sT%02d:00:00Z", date,
		         VOX_PORTING_WINDOW_END_H);
		json_array_append_new(data, json_pack("{s:s, s:s, s:s}", "date",
		                                      date, "started_at", start,
		                                      "ended_at", end));
	}
	vox_http_reply_json(req, 200, json_pack("{s:o}", "data", data));
}
