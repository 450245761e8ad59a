/*
 * vox_carrier_search: available numbers. A query is checked and turned
 * into GET /v2/available_phone_numbers?filter[...] (values escaped), and
 * the answer's items into vox_carrier_number_t (malformed items skipped
 * with a warning: one bad number does not hide the others).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_internal.h"
#include "vox_json.h"
#include "vox_log.h"

#define MAX_VALUE 64  /* bytes of a search filter value */
#define MAX_LIMIT 250 /* most numbers a search answers */

/* ---- the query ---- */

static int query_value(const char *name, const char *value, vox_error_t *err)
{
	if (value != NULL && strnlen(value, MAX_VALUE + 1) > MAX_VALUE)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: %s longer than %d bytes",
		                     name, MAX_VALUE);
	return 0;
}

static int search_check(const vox_carrier_query_t *q, vox_error_t *err)
{
	const char *const values[] = {q->country,     q->area_code, q->contains,
	                              q->starts_with, q->ends_with, q->city,
	                              q->region};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(values) / sizeof(values[0]);
	     i++)
		rc = query_value("a filter", values[i], err);
	if (rc != 0)
		return rc;
	if (q->type != NULL && q->type[0] != '\0' &&
	    strcmp(q->type, "local") != 0 && strcmp(q->type, "mobile") != 0 &&
	    strcmp(q->type, "toll_free") != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: type \"%.20s\" is not "
		                     "local, mobile or toll_free",
		                     q->type);
	if (q->limit < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: limit %d", q->limit);
	if ((q->features &
	     ~(VOX_CARRIER_VOICE | VOX_CARRIER_SMS | VOX_CARRIER_MMS)) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: unknown features 0x%x",
		                     q->features);
	return 0;
}

/* Writes "<sep>key=<escaped value>"; false when out of memory. */
static bool query_param(FILE *out, char *sep, const char *key,
                        const char *value)
{
	char *escaped;

	if (value == NULL || value[0] == '\0')
		return true;
	escaped = vox_upstream_escape(value);
	if (escaped == NULL)
		return false;
	fprintf(out, "%c%s=%s", *sep, key, escaped);
	free(escaped);
	*sep = '&';
	return true;
}

char *vox_carrier_search_url(vox_carrier_t *c, const vox_carrier_query_t *q,
                             int max, vox_error_t *err)
{
	static const char *const feature_names[] = {"voice", "sms", "mms"};
	const struct {
		const char *key, *value;
	} params[] = {
	        {"filter[country_code]", q->country},
	        {"filter[national_destination_code]", q->area_code},
	        {"filter[phone_number][contains]", q->contains},
	        {"filter[phone_number][starts_with]", q->starts_with},
	        {"filter[phone_number][ends_with]", q->ends_with},
	        {"filter[locality]", q->city},
	        {"filter[administrative_area]", q->region},
	        {"filter[phone_number_type]", q->type},
	};
	char *url = NULL, sep = '?';
	size_t size = 0;
	bool ok = true;
	FILE *out;

	if (max < 1)
		max = 1;
	if (search_check(q, err) != 0)
		return NULL;
	out = open_memstream(&url, &size);
	if (out == NULL)
		goto failed_nomem;
	fprintf(out, "%s/v2/available_phone_numbers",
	        vox_upstream_base_url(c->up));
	for (size_t i = 0; ok && i < sizeof(params) / sizeof(params[0]); i++)
		ok = query_param(out, &sep, params[i].key, params[i].value);
	for (unsigned k = 0; k < 3; k++)
		if (q->features & (1u << k)) {
			fprintf(out, "%cfilter[features][]=%s", sep,
			        feature_names[k]);
			sep = '&';
		}
	if (max > MAX_LIMIT)
		max = MAX_LIMIT;
	fprintf(out, "%cfilter[limit]=%d", sep,
	        q->limit > 0 && q->limit < max ? q->limit : max);
	if (ferror(out))
		ok = false;
	if (fclose(out) != 0 || !ok)
		goto failed_nomem;
	return url;

failed_nomem:
	free(url);
	vox_error_set(err, VOX_ERR_NOMEM, true, "carrier search: no memory");
	return NULL;
}

/* ---- the answer ---- */

static bool upper_letters(const char *text, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (text[i] < 'A' || text[i] > 'Z')
			return false;
	return text[count] == '\0';
}

static void number_regions(const json_t *regions, vox_carrier_number_t *num)
{
	const json_t *region;
	size_t i;

	json_array_foreach(regions, i, region)
	{
		const char *kind = vox_json_str(region, "region_type");
		const char *name = vox_json_str(region, "region_name");

		if (kind == NULL || name == NULL)
			continue;
		if (strcmp(kind, "country_code") == 0 && upper_letters(name, 2))
			vox_carrier_copy_fits(num->region, sizeof(num->region),
			                      name);
		else if (strcmp(kind, "location") == 0)
			vox_carrier_copy_cut(num->city, sizeof(num->city),
			                     name);
		else if (strcmp(kind, "state") == 0 ||
		         strcmp(kind, "region") == 0) /* outside US/CA */
			vox_carrier_copy_cut(num->state, sizeof(num->state),
			                     name);
	}
}

static unsigned number_features(const json_t *features)
{
	static const char *const names[] = {"voice", "sms", "mms"};
	const json_t *feature;
	unsigned bits = 0;
	size_t i;

	json_array_foreach(features, i, feature)
	{
		const char *name = json_is_string(feature)
		                           ? json_string_value(feature)
		                           : vox_json_str(feature, "name");

		for (unsigned k = 0; name != NULL && k < 3; k++)
			if (strcmp(name, names[k]) == 0)
				bits |= 1u << k;
	}
	return bits;
}

/* Absent: 0. Present: an exact decimal string. */
static bool money_member(const json_t *cost, const char *key, long long *micros)
{
	const json_t *value = json_object_get(cost, key);

	*micros = 0;
	return value == NULL ||
	       (json_is_string(value) &&
	        vox_carrier_money_parse(json_string_value(value), micros) == 0);
}

/* 0, or -1 with why filled: the item is skipped. */
static int search_item(const json_t *item, vox_carrier_number_t *num,
                       const char **why)
{
	const char *e164 = vox_json_str(item, "phone_number");
	const char *type = vox_json_str(item, "phone_number_type");
	const json_t *cost = json_object_get(item, "cost_information");
	const char *currency = vox_json_str(cost, "currency");

	memset(num, 0, sizeof(*num));
	*why = "phone_number is not E.164";
	if (!vox_carrier_e164_shape(e164) ||
	    !vox_carrier_copy_fits(num->e164, sizeof(num->e164), e164))
		return -1;
	*why = "phone_number_type too long";
	if (type != NULL &&
	    !vox_carrier_copy_fits(num->type, sizeof(num->type), type))
		return -1;
	number_regions(json_object_get(item, "region_information"), num);
	num->features = number_features(json_object_get(item, "features"));
	*why = "bad upfront_cost";
	if (!money_member(cost, "upfront_cost", &num->upfront_micros))
		return -1;
	*why = "bad monthly_cost";
	if (!money_member(cost, "monthly_cost", &num->monthly_micros))
		return -1;
	*why = "bad currency";
	if (currency != NULL &&
	    (!upper_letters(currency, 3) ||
	     !vox_carrier_copy_fits(num->currency, sizeof(num->currency),
	                            currency)))
		return -1;
	return 0;
}

int vox_carrier_parse_search(const char *body, size_t len,
                             vox_carrier_number_t *out, int max, int *count,
                             vox_error_t *err)
{
	vox_error_t jerr;
	json_t *root, *data, *item;
	const char *why;
	size_t i;
	int n = 0;

	if (count != NULL)
		*count = 0;
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return vox_carrier_unreadable(err, "search", jerr.message);
	data = json_object_get(root, "data");
	if (!json_is_array(data)) {
		json_decref(root);
		return vox_carrier_unreadable(err, "search",
		                              "no \"data\" array");
	}
	json_array_foreach(data, i, item)
	{
		if (n >= max)
			break;
		if (search_item(item, &out[n], &why) == 0) {
			n++;
			continue;
		}
		vox_log(VOX_LOG_WARN, "carrier search: number skipped",
		        "phone_number",
		        vox_json_str(item, "phone_number")
		                ? vox_json_str(item, "phone_number")
		                : "",
		        "reason", why, NULL);
	}
	json_decref(root);
	if (count != NULL)
		*count = n;
	return 0;
}

/* ---- the call ---- */

int vox_carrier_search(vox_carrier_t *c, const vox_carrier_query_t *q,
                       vox_carrier_number_t *out, int max, int *count,
                       vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "search"};
	vox_upstream_response_t resp;
	vox_error_t url_err;
	char *url;
	int rc;

	if (count != NULL)
		*count = 0;
	if (c == NULL || q == NULL || out == NULL || max < 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: bad arguments");
	url = vox_carrier_search_url(c, q, max, &url_err);
	if (url == NULL) {
		if (err != NULL)
			*err = url_err;
		return url_err.code;
	}
	req.url = url;
	rc = vox_upstream_call(c->up, &req, &resp, err);
	if (rc == 0)
		rc = vox_carrier_parse_search(resp.body, resp.len, out, max,
		                              count, err);
	vox_upstream_response_free(&resp);
	free(url);
	return rc;
}
