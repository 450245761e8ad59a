/*
 * vox_carrier_order: buying numbers. One POST /v2/number_orders for all
 * the numbers, with the caller's Idempotency-Key (also the order's
 * customer_reference) on every attempt; the answer read per number; an
 * order the carrier leaves pending polled until it settles or
 * order_wait_ms has passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_internal.h"
#include "vox_json.h"
#include "vox_time.h"

#define POLL_MAX_MS 2000 /* longest pause between pending order polls */

/* What an order answer says beyond the per-number results. */
struct order_status {
	char id[64];  /* the order's id, "" if none */
	bool pending; /* the carrier has not finished it */
};

/* ---- the answer ---- */

static int order_slot(const char *e164, const char *const *e164s, int n,
                      const bool *answered)
{
	for (int k = 0; e164 != NULL && k < n; k++)
		if (!answered[k] && strcmp(e164s[k], e164) == 0)
			return k;
	return -1;
}

static void order_item(const json_t *item, vox_carrier_order_result_t *res)
{
	const char *status = vox_json_str(item, "status");
	const char *id = vox_json_str(item, "id");

	res->ok = false;
	if (status != NULL && strcmp(status, "success") == 0) {
		if (id != NULL && id[0] != '\0' &&
		    vox_carrier_copy_fits(res->carrier_id,
		                          sizeof(res->carrier_id), id)) {
			res->ok = true;
			res->error[0] = '\0';
		} else {
			vox_carrier_copy_cut(res->error, sizeof(res->error),
			                     "carrier gave no usable id");
		}
		return;
	}
	vox_carrier_errors_text(json_object_get(item, "errors"), res->error,
	                        sizeof(res->error));
	if (res->error[0] == '\0')
		snprintf(res->error, sizeof(res->error), "carrier status %.40s",
		         status != NULL ? status : "missing");
}

static int order_answer(const char *body, size_t len, const char *const *e164s,
                        int n, vox_carrier_order_result_t *results,
                        struct order_status *status, vox_error_t *err)
{
	bool answered[VOX_CARRIER_ORDER_MAX] = {false};
	json_t *root, *data, *numbers, *item;
	const char *text;
	vox_error_t jerr;
	size_t i;

	if (n < 1 || n > VOX_CARRIER_ORDER_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: %d numbers", n);
	for (int k = 0; k < n; k++) {
		memset(&results[k], 0, sizeof(results[k]));
		vox_carrier_copy_cut(results[k].e164, sizeof(results[k].e164),
		                     e164s[k]);
		vox_carrier_copy_cut(results[k].error, sizeof(results[k].error),
		                     "not in the carrier's answer");
	}
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return vox_carrier_unreadable(err, "order", jerr.message);
	data = json_object_get(root, "data");
	numbers = json_object_get(data, "phone_numbers");
	if (!json_is_array(numbers)) {
		json_decref(root);
		return vox_carrier_unreadable(err, "order",
		                              "no \"data.phone_numbers\"");
	}
	memset(status, 0, sizeof(*status));
	text = vox_json_str(data, "id");
	if (text != NULL &&
	    vox_upstream_header_safe(text, sizeof(status->id) - 1))
		vox_carrier_copy_fits(status->id, sizeof(status->id), text);
	text = vox_json_str(data, "status");
	status->pending = text != NULL && strcmp(text, "pending") == 0;
	json_array_foreach(numbers, i, item)
	{
		int k = order_slot(vox_json_str(item, "phone_number"), e164s, n,
		                   answered);

		if (k < 0)
			continue; /* not one we asked for */
		answered[k] = true;
		order_item(item, &results[k]);
		text = vox_json_str(item, "status");
		if (text != NULL && strcmp(text, "pending") == 0)
			status->pending = true;
	}
	json_decref(root);
	return 0;
}

int vox_carrier_parse_order(const char *body, size_t len,
                            const char *const *e164s, int n,
                            vox_carrier_order_result_t *results,
                            vox_error_t *err)
{
	struct order_status status;

	return order_answer(body, len, e164s, n, results, &status, err);
}

/* ---- the call ---- */

static int order_check(const char *const *e164s, int n, const char *key,
                       const vox_carrier_order_result_t *results,
                       vox_error_t *err)
{
	if (e164s == NULL || results == NULL || n < 1 ||
	    n > VOX_CARRIER_ORDER_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: 1 to %d numbers",
		                     VOX_CARRIER_ORDER_MAX);
	if (key == NULL || !vox_upstream_header_safe(key, VOX_UPSTREAM_MAX_KEY))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: an idempotency key of 1 "
		                     "to %d printable bytes is required",
		                     VOX_UPSTREAM_MAX_KEY);
	for (int k = 0; k < n; k++)
		if (!vox_carrier_e164_shape(e164s[k]))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "carrier order: number %d is not "
			                     "E.164",
			                     k);
	return 0;
}

/*
 * Polls GET /v2/number_orders/{id} until the order is no longer pending,
 * for at most order_wait_ms. Still pending then: VOX_ERR_TIMEOUT,
 * retriable; the retry's Idempotency-Key gets the same order back.
 */
static int order_wait(vox_carrier_t *c, const char *order_id,
                      const char *const *e164s, int n,
                      vox_carrier_order_result_t *results, vox_error_t *err)
{
	int64_t deadline = vox_mono_ms() + c->order_wait_ms;
	struct order_status status = {.pending = true};
	long pause = c->backoff_ms, left;
	vox_upstream_response_t resp;
	int rc = 0;

	if (order_id[0] == '\0')
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "carrier order: pending, without an id");
	while (rc == 0 && status.pending) {
		vox_upstream_request_t req = {.endpoint = "order_status"};

		left = (long)(deadline - vox_mono_ms());
		if (left <= 0)
			return vox_error_set(err, VOX_ERR_TIMEOUT, true,
			                     "carrier order %s still pending "
			                     "after %d ms",
			                     order_id, c->order_wait_ms);
		vox_sleep_ms(pause < left ? pause : left);
		pause = pause * 2 < POLL_MAX_MS ? pause * 2 : POLL_MAX_MS;
		rc = vox_carrier_send(
		        c, &req,
		        vox_carrier_resource_path("number_orders", order_id),
		        false, NULL, &resp, err);
		if (rc == 0)
			rc = order_answer(resp.body, resp.len, e164s, n,
			                  results, &status, err);
		vox_upstream_response_free(&resp);
	}
	return rc;
}

int vox_carrier_order(vox_carrier_t *c, const char *const *e164s, int n,
                      const char *idempotency_key,
                      vox_carrier_order_result_t *results, vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "order",
	                              .method = "POST",
	                              .idempotency_key = idempotency_key};
	struct order_status status;
	vox_upstream_response_t resp;
	json_t *numbers;
	int rc;

	if (c == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: no carrier");
	rc = order_check(e164s, n, idempotency_key, results, err);
	if (rc != 0)
		return rc;
	for (int k = 0; k < n; k++) {
		memset(&results[k], 0, sizeof(results[k]));
		vox_carrier_copy_cut(results[k].e164, sizeof(results[k].e164),
		                     e164s[k]);
	}
	numbers = json_array();
	for (int k = 0; numbers != NULL && k < n; k++)
		json_array_append_new(
		        numbers, json_pack("{s:s}", "phone_number", e164s[k]));
	rc = vox_carrier_send(c, &req, strdup("/v2/number_orders"), true,
	                      json_pack("{s:o?,s:s}", "phone_numbers", numbers,
	                                "customer_reference", idempotency_key),
	                      &resp, err);
	if (rc == 0)
		rc = order_answer(resp.body, resp.len, e164s, n, results,
		                  &status, err);
	vox_upstream_response_free(&resp);
	if (rc == 0 && status.pending)
		rc = order_wait(c, status.id, e164s, n, results, err);
	return rc;
}
