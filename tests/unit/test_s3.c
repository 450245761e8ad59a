/*
 * vox_s3 without a server: the configuration it refuses (endpoint, region,
 * bucket names, keys) and the request path of a key, which must be the
 * canonical URI SigV4 signs for S3 (unreserved bytes and '/' as they are,
 * every other byte %XX upper-case, once), at the key's limits.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_s3.h"

static vox_s3_conf_t good_conf(void)
{
	vox_s3_conf_t conf = {
	        .endpoint = "http://127.0.0.1:27090/",
	        .region = "us-east-1",
	        .bucket = "voxlink-documents",
	        .access_key = "AKIAEXAMPLE",
	        .secret_key = "secret/with+chars=",
	};
	return conf;
}

Test(s3_conf, a_good_configuration)
{
	vox_s3_conf_t conf = good_conf();
	vox_error_t err = {0};
	vox_s3_t *s3 = vox_s3_new(&conf, &err);

	cr_assert_not_null(s3, "%s", err.message);
	vox_s3_destroy(s3);
	conf.endpoint = "https://s3.eu-west-3.amazonaws.com";
	conf.region = "eu-west-3";
	s3 = vox_s3_new(&conf, &err);
	cr_assert_not_null(s3, "%s", err.message);
	vox_s3_destroy(s3);
	vox_s3_destroy(NULL);
}

static void refused(vox_s3_conf_t conf, const char *what)
{
	vox_error_t err = {0};
	vox_s3_t *s3 = vox_s3_new(&conf, &err);

	cr_assert_null(s3, "%s was taken", what);
	cr_assert_eq(err.code, VOX_ERR_INVALID, "%s", what);
	cr_assert(strstr(err.message, "VOX_S3_") != NULL,
	          "%s: the message names the setting: %s", what, err.message);
}

Test(s3_conf, bad_settings_are_refused)
{
	vox_s3_conf_t c;
	char bucket64[65];

	c = good_conf(), c.endpoint = "ftp://x";
	refused(c, "ftp endpoint");
	c = good_conf(), c.endpoint = "127.0.0.1:27090";
	refused(c, "endpoint without scheme");
	c = good_conf(), c.endpoint = "http://a b";
	refused(c, "endpoint with a space");
	c = good_conf(), c.endpoint = NULL;
	refused(c, "no endpoint");
	c = good_conf(), c.region = "";
	refused(c, "empty region");
	c = good_conf(), c.region = "us:east";
	refused(c, "region with ':'");
	c = good_conf(), c.bucket = "ab";
	refused(c, "2-character bucket");
	memset(bucket64, 'b', 64);
	bucket64[64] = '\0';
	c = good_conf(), c.bucket = bucket64;
	refused(c, "64-character bucket");
	c = good_conf(), c.bucket = "Upper";
	refused(c, "upper-case bucket");
	c = good_conf(), c.bucket = "-edge";
	refused(c, "bucket starting with '-'");
	c = good_conf(), c.bucket = "a/b";
	refused(c, "bucket with '/'");
	c = good_conf(), c.access_key = "";
	refused(c, "empty access key");
	c = good_conf(), c.access_key = "a:b";
	refused(c, "access key with ':'");
	c = good_conf(), c.secret_key = "";
	refused(c, "empty secret");
	c = good_conf(), c.secret_key = "with space";
	refused(c, "secret with a space");
	bucket64[63] = '\0'; /* 63: the longest allowed */
	c = good_conf(), c.bucket = bucket64;
	vox_s3_t *s3 = vox_s3_new(&c, NULL);
	cr_assert_not_null(s3, "a 63-character bucket is fine");
	vox_s3_destroy(s3);
}

static const char *path_of(const char *key)
{
	static char out[4096];
	vox_error_t err = {0};

	cr_assert_eq(vox_s3_object_path("bkt", key, out, sizeof(out), &err), 0,
	             "%s", err.message);
	return out;
}

Test(s3_path, encodes_as_sigv4_canonical_uri)
{
	cr_assert_str_eq(path_of("documents/a/b.pdf"),
	                 "/bkt/documents/a/b.pdf");
	cr_assert_str_eq(path_of("AZaz09-._~"), "/bkt/AZaz09-._~");
	cr_assert_str_eq(path_of("a b+c=d&e"), "/bkt/a%20b%2Bc%3Dd%26e");
	cr_assert_str_eq(path_of("100%"), "/bkt/100%25");
	cr_assert_str_eq(path_of("q?x#y"), "/bkt/q%3Fx%23y");
	cr_assert_str_eq(path_of("\xc3\xa9"), "/bkt/%C3%A9");
	cr_assert_str_eq(path_of("./../x//y"), "/bkt/./../x//y");
	cr_assert_str_eq(path_of("*'()!$,;:@"),
	                 "/bkt/%2A%27%28%29%21%24%2C%3B%3A%40");
}

Test(s3_path, key_limits)
{
	char key[1026], out[4096];
	vox_error_t err = {0};

	memset(key, 'k', 1024);
	key[1024] = '\0';
	cr_assert_eq(vox_s3_object_path("bkt", key, out, sizeof(out), &err), 0,
	             "1024 bytes is S3's limit: %s", err.message);
	cr_assert_eq(strlen(out), 5 + 1024);
	key[1024] = 'k';
	key[1025] = '\0';
	cr_assert_eq(vox_s3_object_path("bkt", key, out, sizeof(out), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_s3_object_path("bkt", "", out, sizeof(out), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_s3_object_path("bkt", NULL, out, sizeof(out), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_s3_object_path("bkt", "a\nb", out, sizeof(out), &err),
	             VOX_ERR_INVALID, "a control character");
	cr_assert_eq(vox_s3_object_path("bkt", "a\x7f", out, sizeof(out), &err),
	             VOX_ERR_INVALID, "DEL");
	/* Too small a buffer: refused, not cut. */
	cr_assert_eq(vox_s3_object_path("bkt", "abcdef", out, 10, &err),
	             VOX_ERR_LIMIT);
	cr_assert_eq(vox_s3_object_path("bkt", "abcde", out, 11, &err), 0);
	cr_assert_str_eq(out, "/bkt/abcde");
}
