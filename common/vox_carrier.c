/*
 * vox_carrier: the carrier adapter's handle (see vox_carrier.h): its
 * configuration turned into a vox_upstream named "carrier" (every endpoint
 * calls through c->up), and the bounded copies of the carrier's text
 * into our fixed fields (cut at a UTF-8 boundary for names, refused for
 * numbers and ids).
 */
#include "vox_carrier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_internal.h"

#define MAX_BACKOFF_MS 5000

bool vox_carrier_copy_fits(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return false;
	memcpy(dst, src, len + 1);
	return true;
}

void vox_carrier_copy_cut(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

bool vox_carrier_e164_shape(const char *text)
{
	size_t len;

	if (text == NULL || text[0] != '+' || text[1] < '1' || text[1] > '9')
		return false;
	len = strlen(text);
	if (len < 3 || len > 16)
		return false;
	for (size_t i = 1; i < len; i++)
		if (text[i] < '0' || text[i] > '9')
			return false;
	return true;
}

char *vox_carrier_resource_path(const char *collection, const char *id)
{
	char *escaped = vox_upstream_escape(id);
	char *path = NULL;

	if (escaped != NULL &&
	    asprintf(&path, "/v2/%s/%s", collection, escaped) < 0)
		path = NULL;
	free(escaped);
	return path;
}

int vox_carrier_send(vox_carrier_t *c, vox_upstream_request_t *req, char *path,
                     bool with_body, json_t *body,
                     vox_upstream_response_t *resp, vox_error_t *err)
{
	int rc;

	if (path == NULL || (with_body && body == NULL)) {
		memset(resp, 0, sizeof(*resp));
		rc = vox_error_set(err, VOX_ERR_NOMEM, true,
		                   "carrier %s: no memory", req->endpoint);
		goto out;
	}
	req->path = path;
	req->json = body;
	rc = vox_upstream_call(c->up, req, resp, err);
out:
	free(path);
	json_decref(body);
	return rc;
}

vox_breaker_state_t vox_carrier_breaker_state(const vox_carrier_t *c)
{
	return vox_upstream_breaker_state(c->up);
}

/* 0 picks def; otherwise value must be in [min, max]. */
static int conf_int(const char *name, int value, int def, int min, int max,
                    int *out, vox_error_t *err)
{
	if (value == 0)
		value = def;
	if (value < min || value > max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier: %s %d is outside %d..%d", name,
		                     value, min, max);
	*out = value;
	return 0;
}

/* The adapter's own numbers; the rest is checked by vox_upstream_new. */
static int conf_check(vox_carrier_t *c, const vox_carrier_conf_t *conf,
                      vox_error_t *err)
{
	if (conf->api_key == NULL ||
	    !vox_upstream_header_safe(conf->api_key, 512))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier: an API key is required");
	return conf_int("backoff_ms", conf->backoff_ms, 100, 1, MAX_BACKOFF_MS,
	                &c->backoff_ms, err) ||
	       conf_int("order_wait_ms", conf->order_wait_ms, 10000, 1, 600000,
	                &c->order_wait_ms, err);
}

vox_carrier_t *vox_carrier_new(const vox_carrier_conf_t *conf, vox_error_t *err)
{
	vox_upstream_conf_t up_conf = {0};
	char *auth_header = NULL;
	vox_carrier_t *c;

	if (conf == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "carrier: no conf");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, true, "carrier: no memory");
		return NULL;
	}
	if (conf_check(c, conf, err) != 0)
		goto failed;
	if (asprintf(&auth_header, "Authorization: Bearer %s", conf->api_key) <
	    0) {
		auth_header = NULL;
		vox_error_set(err, VOX_ERR_NOMEM, true, "carrier: no memory");
		goto failed;
	}
	up_conf.name = "carrier";
	up_conf.base_url = conf->base_url;
	up_conf.auth_header = auth_header;
	up_conf.timeout_ms = conf->timeout_ms;
	up_conf.max_attempts = conf->max_attempts;
	up_conf.backoff_ms = c->backoff_ms;
	up_conf.breaker_failures = conf->breaker_failures;
	up_conf.breaker_cooldown_ms = conf->breaker_cooldown_ms;
	up_conf.metrics = conf->metrics;
	up_conf.describe = vox_carrier_describe;
	c->up = vox_upstream_new(&up_conf, err);
	free(auth_header);
	if (c->up == NULL)
		goto failed;
	return c;

failed:
	vox_carrier_destroy(c);
	return NULL;
}

void vox_carrier_destroy(vox_carrier_t *c)
{
	if (c == NULL)
		return;
	vox_upstream_destroy(c->up);
	free(c);
}
