/*
 * vox_s3 against the stack's S3 stand-in (ops/s3-standin: moto with its
 * SigV4 checks on, the VOX_S3_* of `ops/stack env`): bytes in and out
 * unchanged (NULs, 1 MiB), delete (twice is fine), a missing object is
 * NOT_FOUND, a wrong secret is refused and not retried, keys with spaces,
 * '+', '%', UTF-8 and "/./" segments, a store that does not answer is
 * UNAVAILABLE and retriable, the size cap of a GET, ensure_bucket.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_s3.h"

static vox_s3_t *s3_with(const char *endpoint, const char *bucket,
                         const char *secret)
{
	vox_s3_conf_t conf = {
	        .endpoint = endpoint ? endpoint : t_env("VOX_S3_ENDPOINT"),
	        .region = t_env("VOX_S3_REGION"),
	        .bucket = bucket ? bucket : t_env("VOX_S3_BUCKET"),
	        .access_key = t_env("VOX_S3_ACCESS_KEY"),
	        .secret_key = secret ? secret : t_env("VOX_S3_SECRET_KEY"),
	        .timeout_ms = 5000,
	};
	vox_error_t err = {0};
	vox_s3_t *s3 = vox_s3_new(&conf, &err);

	cr_assert_not_null(s3, "vox_s3_new: %s", err.message);
	return s3;
}

/* A key no other run uses. */
static void unique_key(const char *prefix, char *out, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "tests/%s-%d-%ld-%ld", prefix, (int)getpid(),
	         (long)ts.tv_sec, ts.tv_nsec);
}

static void roundtrip(vox_s3_t *s3, const char *key, const char *data,
                      size_t len)
{
	vox_error_t err = {0};
	char *got = NULL;
	size_t got_len = 0;

	cr_assert_eq(vox_s3_put(s3, key, data, len, "application/octet-stream",
	                        &err),
	             0, "put %s: %s", key, err.message);
	cr_assert_eq(vox_s3_get(s3, key, len, &got, &got_len, &err), 0,
	             "get %s: %s", key, err.message);
	cr_assert_eq(got_len, len, "%s: %zu bytes back, %zu sent", key, got_len,
	             len);
	cr_assert(memcmp(got, data, len) == 0, "%s: other bytes back", key);
	free(got);
	cr_assert_eq(vox_s3_delete(s3, key, &err), 0, "delete %s: %s", key,
	             err.message);
	cr_assert_eq(vox_s3_get(s3, key, len, &got, &got_len, &err),
	             VOX_ERR_NOT_FOUND, "%s still there after delete", key);
	cr_assert_null(got);
}

TestSuite(s3, .timeout = 60);

Test(s3, put_get_delete_keeps_the_bytes)
{
	vox_s3_t *s3 = s3_with(NULL, NULL, NULL);
	static const char binary[] = "a\0b\r\n\xff\x00\x80 end";
	size_t big_len = 1024 * 1024;
	char key[128], *big = malloc(big_len);
	vox_error_t err = {0};

	unique_key("bin", key, sizeof(key));
	roundtrip(s3, key, binary, sizeof(binary));
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i * 7 + i / 251);
	unique_key("big", key, sizeof(key));
	roundtrip(s3, key, big, big_len);
	/* Deleting what is gone is fine (S3 answers 204 either way). */
	cr_assert_eq(vox_s3_delete(s3, key, &err), 0, "%s", err.message);
	free(big);
	vox_s3_destroy(s3);
}

Test(s3, missing_object_is_not_found)
{
	vox_s3_t *s3 = s3_with(NULL, NULL, NULL);
	vox_error_t err = {0};
	char key[128], *data = (char *)"untouched";
	size_t len = 99;

	unique_key("never-written", key, sizeof(key));
	cr_assert_eq(vox_s3_get(s3, key, 1024, &data, &len, &err),
	             VOX_ERR_NOT_FOUND, "%s", err.message);
	cr_assert_null(data);
	cr_assert_eq(len, 0);
	cr_assert_not(err.retriable);
	vox_s3_destroy(s3);
}

Test(s3, wrong_secret_is_refused)
{
	vox_s3_t *good = s3_with(NULL, NULL, NULL);
	vox_s3_t *bad = s3_with(NULL, NULL, "not-the-secret-key");
	vox_error_t err = {0};
	char key[128], *data = NULL;
	size_t len = 0;

	unique_key("wrong-secret", key, sizeof(key));
	cr_assert_eq(vox_s3_put(bad, key, "x", 1, "text/plain", &err),
	             VOX_ERR_INVALID, "a wrong secret was taken: %s",
	             err.message);
	cr_assert_not(err.retriable, "a refusal is not retriable");
	cr_assert(strstr(err.message, "403") != NULL, "%s", err.message);
	cr_assert(strstr(err.message, "SignatureDoesNotMatch") != NULL, "%s",
	          err.message);
	/* Nothing was written: the right key finds nothing there. */
	cr_assert_eq(vox_s3_get(good, key, 16, &data, &len, &err),
	             VOX_ERR_NOT_FOUND, "%s", err.message);
	cr_assert_eq(vox_s3_get(bad, key, 16, &data, &len, &err),
	             VOX_ERR_INVALID, "%s", err.message);
	vox_s3_destroy(bad);
	vox_s3_destroy(good);
}

Test(s3, keys_with_odd_characters)
{
	vox_s3_t *s3 = s3_with(NULL, NULL, NULL);
	static const char *const odd[] = {
	        "a key with spaces.pdf",
	        "plus+equals=amp&semi;at@dollar$comma,colon:",
	        "percent%20not-decoded%2F",
	        "quotes\"'(brackets)[]{}<>!*~",
	        "unicode-\xc3\xa9t\xc3\xa9-\xe6\x96\x87\xe4\xbb\xb6.pdf",
	        "dots/./and/../segments//double-slash",
	        "question?mark#hash",
	};
	char key[512], prefix[128];

	unique_key("odd", prefix, sizeof(prefix));
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(key, sizeof(key), "%s/%s", prefix, odd[i]);
		roundtrip(s3, key, odd[i], strlen(odd[i]));
	}
	vox_s3_destroy(s3);
}

/* A key's dot segments are part of its name, not a way to another
 * object: "<p>/a/../b" is not "<p>/b". */
Test(s3, dot_segments_do_not_reach_another_object)
{
	vox_s3_t *s3 = s3_with(NULL, NULL, NULL);
	vox_error_t err = {0};
	char prefix[128], tricky[256], plain[256], *data = NULL;
	size_t len = 0;

	unique_key("dots", prefix, sizeof(prefix));
	snprintf(plain, sizeof(plain), "%s/b", prefix);
	snprintf(tricky, sizeof(tricky), "%s/a/../b", prefix);
	cr_assert_eq(vox_s3_put(s3, plain, "theirs", 6, "text/plain", &err), 0,
	             "%s", err.message);
	cr_assert_eq(vox_s3_put(s3, tricky, "mine", 4, "text/plain", &err), 0,
	             "%s", err.message);
	cr_assert_eq(vox_s3_get(s3, plain, 64, &data, &len, &err), 0, "%s",
	             err.message);
	cr_expect_eq(len, 6);
	cr_expect(len == 6 && memcmp(data, "theirs", 6) == 0,
	          "the tricky key overwrote another object");
	free(data);
	data = NULL;
	cr_assert_eq(vox_s3_get(s3, tricky, 64, &data, &len, &err), 0, "%s",
	             err.message);
	cr_expect(len == 4 && memcmp(data, "mine", 4) == 0);
	free(data);
	vox_s3_delete(s3, plain, &err);
	vox_s3_delete(s3, tricky, &err);
	vox_s3_destroy(s3);
}

Test(s3, get_larger_than_max_is_refused)
{
	vox_s3_t *s3 = s3_with(NULL, NULL, NULL);
	vox_error_t err = {0};
	char key[128], *data = NULL, payload[200000];
	size_t len = 0;

	memset(payload, 'p', sizeof(payload));
	unique_key("cap", key, sizeof(key));
	cr_assert_eq(vox_s3_put(s3, key, payload, sizeof(payload), NULL, &err),
	             0, "%s", err.message);
	cr_assert_eq(
	        vox_s3_get(s3, key, sizeof(payload) - 1, &data, &len, &err),
	        VOX_ERR_LIMIT, "%s", err.message);
	cr_assert_null(data);
	cr_assert_eq(vox_s3_get(s3, key, sizeof(payload), &data, &len, &err), 0,
	             "%s", err.message);
	cr_assert_eq(len, sizeof(payload));
	free(data);
	cr_assert_eq(vox_s3_delete(s3, key, &err), 0, "%s", err.message);
	vox_s3_destroy(s3);
}

Test(s3, a_store_that_does_not_answer_is_unavailable)
{
	char endpoint[64];
	vox_s3_t *s3;
	vox_error_t err = {0};
	char *data = NULL;
	size_t len = 0;

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d",
	         t_free_port());
	s3 = s3_with(endpoint, NULL, NULL);
	cr_assert_eq(vox_s3_put(s3, "k", "x", 1, NULL, &err),
	             VOX_ERR_UNAVAILABLE, "%s", err.message);
	cr_assert(err.retriable);
	cr_assert_eq(vox_s3_get(s3, "k", 10, &data, &len, &err),
	             VOX_ERR_UNAVAILABLE, "%s", err.message);
	cr_assert_eq(vox_s3_delete(s3, "k", &err), VOX_ERR_UNAVAILABLE, "%s",
	             err.message);
	cr_assert_eq(vox_s3_ensure_bucket(s3, &err), VOX_ERR_UNAVAILABLE, "%s",
	             err.message);
	vox_s3_destroy(s3);
}

Test(s3, ensure_bucket_creates_once)
{
	char bucket[64];
	vox_s3_t *s3, *dflt = s3_with(NULL, NULL, NULL);
	vox_error_t err = {0};
	char *data = NULL;
	size_t len = 0;

	/* The stack's bucket exists: nothing to do. */
	cr_assert_eq(vox_s3_ensure_bucket(dflt, &err), 0, "%s", err.message);
	snprintf(bucket, sizeof(bucket), "vox-test-%d-%ld", (int)getpid(),
	         (long)time(NULL));
	s3 = s3_with(NULL, bucket, NULL);
	cr_assert_eq(vox_s3_put(s3, "k", "x", 1, NULL, &err), VOX_ERR_NOT_FOUND,
	             "a put into a missing bucket: %s", err.message);
	cr_assert_eq(vox_s3_ensure_bucket(s3, &err), 0, "%s", err.message);
	cr_assert_eq(vox_s3_ensure_bucket(s3, &err), 0, "again: %s",
	             err.message);
	cr_assert_eq(vox_s3_put(s3, "k", "x", 1, NULL, &err), 0, "%s",
	             err.message);
	cr_assert_eq(vox_s3_get(s3, "k", 1, &data, &len, &err), 0, "%s",
	             err.message);
	cr_assert_eq(len, 1);
	free(data);
	vox_s3_destroy(s3);
	vox_s3_destroy(dflt);
}
