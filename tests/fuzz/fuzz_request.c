/*
 * libFuzzer target: what the ingress does with untrusted request bytes
 * before anything is published — the Authorization value (API key shape,
 * JWT header and signature check with a pinned algorithm), and the body
 * (strict JSON, object, allowed keys). The first input byte picks the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_auth.h"
#include "vox_json.h"

static const vox_jwt_conf_t jwt_conf = {
        .alg = "HS256",
        .key = "fuzz-secret-0123456789abcdef0123456789",
        .keylen = 38,
        .issuer = "https://id.example",
        .audience = "voxlink",
        .leeway_s = 30,
};

static void fuzz_credentials(const char *text)
{
	vox_principal_t who;
	vox_error_t err;
	char hash[65];

	if (vox_apikey_well_formed(text))
		vox_apikey_hash_hex(text, hash);
	vox_jwt_verify(&jwt_conf, text, 1800000000, &who, &err);
}

static void fuzz_body(const char *text, size_t len)
{
	static const char *const allowed[] = {"role", "description", NULL};
	vox_error_t err;
	json_t *doc = vox_json_parse(text, len, VOX_JSON_DEFAULT_DEPTH, &err);

	if (doc == NULL)
		return;
	if (json_is_object(doc) && vox_json_only_keys(doc, allowed, &err) == 0)
		vox_role_parse(vox_json_str(doc, "role"));
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_credentials(text);
	else
		fuzz_body(text, size - 1);
	free(text);
	return 0;
}
