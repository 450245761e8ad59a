/*
 * vox_s3: objects in an S3-compatible store over libcurl's AWS Signature
 * V4. Path-style URLs, so any endpoint works without DNS per bucket (MinIO,
 * Ceph, moto, AWS with a regional endpoint). Each call has its own easy
 * handle: no state is shared between threads but the configuration.
 */
#include "vox_s3.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_crypto.h"

#define S3_KEY_MAX    1024 /* S3's own limit, in bytes */
#define S3_ERROR_SNIP 160  /* bytes of a refusal's body in a message */
#define S3_EMPTY_SHA256                                                        \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct vox_s3 {
	char *endpoint; /* without a trailing slash */
	char *region, *bucket, *userpwd, *sigv4;
	int timeout_ms;
};

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_rc;

static void s3_curl_init(void)
{
	s3_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* 3..63 of [a-z0-9.-], starting and ending with a letter or digit: a name
 * that is safe in a path without encoding (S3's bucket naming rules). */
static bool s3_bucket_ok(const char *bucket)
{
	size_t n = bucket ? strlen(bucket) : 0;

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = bucket[i];
		bool edge = i == 0 || i == n - 1;

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (!edge && (c == '.' || c == '-'))))
			return false;
	}
	return true;
}

static bool s3_text_ok(const char *text, size_t max)
{
	size_t n = text ? strnlen(text, max + 1) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7f)
			return false;
	return true;
}

int vox_s3_object_path(const char *bucket, const char *key, char *out,
                       size_t outlen, vox_error_t *err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = key ? strnlen(key, S3_KEY_MAX + 1) : 0;
	vox_buf_t path;
	int rc;

	if (n == 0 || n > S3_KEY_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "an object key has 1..%d bytes",
		                     S3_KEY_MAX);
	vox_buf_init(&path, outlen > 0 ? outlen - 1 : 0);
	vox_buf_adds(&path, "/");
	vox_buf_adds(&path, bucket);
	vox_buf_adds(&path, "/");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (c < 0x20 || c == 0x7f) {
			vox_buf_free(&path);
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "an object key has no control "
			                     "characters");
		}
		/* SigV4's canonical URI for S3: every byte but the
		 * unreserved ones and '/' percent-encoded once, upper-case
		 * hex; the URL we send is that same text, so the server and
		 * curl's signature see one path. */
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == '/')
			vox_buf_add(&path, &key[i], 1);
		else
			vox_buf_add(&path, esc, 3);
	}
	rc = vox_buf_error(&path);
	if (rc == 0)
		memcpy(out, vox_buf_str(&path), vox_buf_len(&path) + 1);
	vox_buf_free(&path);
	if (rc != 0)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "object path longer than %zu bytes",
		                     outlen);
	return 0;
}

void vox_s3_destroy(vox_s3_t *s3)
{
	if (s3 == NULL)
		return;
	free(s3->endpoint);
	free(s3->region);
	free(s3->bucket);
	if (s3->userpwd != NULL) {
		OPENSSL_cleanse(s3->userpwd, strlen(s3->userpwd));
		free(s3->userpwd);
	}
	free(s3->sigv4);
	free(s3);
}

static int s3_conf_check(const vox_s3_conf_t *conf, vox_error_t *err)
{
	const char *ep = conf->endpoint;

	if (ep == NULL ||
	    (strncmp(ep, "http://", 7) != 0 &&
	     strncmp(ep, "https://", 8) != 0) ||
	    !s3_text_ok(ep, 2048))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "VOX_S3_ENDPOINT: an http:// or https:// "
		                     "URL without spaces");
	if (!s3_text_ok(conf->region, 64) || strchr(conf->region, ':'))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "VOX_S3_REGION: 1..64 characters, no "
		                     "spaces or ':'");
	if (!s3_bucket_ok(conf->bucket))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "VOX_S3_BUCKET: 3..63 of a-z 0-9 . -, "
		                     "starting and ending with a letter or "
		                     "digit");
	if (!s3_text_ok(conf->access_key, 256) || strchr(conf->access_key, ':'))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "VOX_S3_ACCESS_KEY: 1..256 characters, "
		                     "no spaces or ':'");
	if (!s3_text_ok(conf->secret_key, 256))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "VOX_S3_SECRET_KEY: 1..256 characters, "
		                     "no spaces");
	return 0;
}

vox_s3_t *vox_s3_new(const vox_s3_conf_t *conf, vox_error_t *err)
{
	vox_s3_t *s3;
	vox_buf_t b;
	size_t eplen;

	if (s3_conf_check(conf, err) != 0)
		return NULL;
	pthread_once(&s3_curl_once, s3_curl_init);
	if (s3_curl_rc != CURLE_OK) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "curl_global_init: %s",
		              curl_easy_strerror(s3_curl_rc));
		return NULL;
	}
	s3 = calloc(1, sizeof(*s3));
	if (s3 == NULL)
		goto oom;
	eplen = strlen(conf->endpoint);
	while (eplen > 0 && conf->endpoint[eplen - 1] == '/')
		eplen--;
	s3->endpoint = strndup(conf->endpoint, eplen);
	s3->region = strdup(conf->region);
	s3->bucket = strdup(conf->bucket);
	s3->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
	vox_buf_init(&b, 1024);
	vox_buf_printf(&b, "%s:%s", conf->access_key, conf->secret_key);
	s3->userpwd = vox_buf_error(&b) ? NULL : vox_buf_take(&b, NULL);
	vox_buf_free(&b);
	vox_buf_init(&b, 256);
	vox_buf_printf(&b, "aws:amz:%s:s3", conf->region);
	s3->sigv4 = vox_buf_error(&b) ? NULL : vox_buf_take(&b, NULL);
	vox_buf_free(&b);
	if (s3->endpoint && s3->region && s3->bucket && s3->userpwd &&
	    s3->sigv4)
		return s3;
	vox_s3_destroy(s3);
oom:
	vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
	return NULL;
}

/* One request's answer. */
struct s3_answer {
	vox_buf_t body;
	long status;
};

static size_t s3_collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct s3_answer *ans = arg;
	size_t n = size * nmemb;

	/* Past the cap the transfer is aborted (CURLE_WRITE_ERROR). */
	return vox_buf_add(&ans->body, data, n) == 0 ? n : 0;
}

/* The error of an answer that is not 2xx: 5xx and 429/503 may pass
 * (retriable), 404 is NOT_FOUND, other refusals (403 for a bad
 * signature, 400) are INVALID. The store's <Code> is in the message. */
static int s3_refusal(const char *what, const char *key, struct s3_answer *ans,
                      vox_error_t *err)
{
	const char *text = vox_buf_str(&ans->body);
	const char *code = strstr(text, "<Code>");
	int codelen = 0;

	if (code != NULL) {
		code += 6;
		codelen = (int)strcspn(code, "<");
		if (codelen > S3_ERROR_SNIP)
			codelen = S3_ERROR_SNIP;
	}
	if (ans->status == 404)
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "s3 %s %s: no such object (%.*s)", what,
		                     key, codelen, code ? code : "");
	return vox_error_set(err,
	                     ans->status >= 500 || ans->status == 429
	                             ? VOX_ERR_UNAVAILABLE
	                             : VOX_ERR_INVALID,
	                     ans->status >= 500 || ans->status == 429,
	                     "s3 %s %s: HTTP %ld %.*s", what, key, ans->status,
	                     codelen, code ? code : "");
}

/* Runs method on path ("/bucket/key", already encoded) with body (NULL:
 * none). The answer's body is kept up to max bytes. 0 once the store
 * answered (any status), else VOX_ERR_UNAVAILABLE/TIMEOUT/LIMIT. */
static int s3_request(vox_s3_t *s3, const char *method, const char *path,
                      const void *body, size_t len, const char *content_type,
                      size_t max, struct s3_answer *ans, vox_error_t *err)
{
	struct curl_slist *headers = NULL, *h;
	char sha[65], line[128], errbuf[CURL_ERROR_SIZE] = "";
	vox_buf_t url;
	CURL *curl;
	CURLcode cc;
	int rc = 0;

	vox_buf_init(&ans->body, max);
	ans->status = 0;
	vox_buf_init(&url, 4096);
	vox_buf_adds(&url, s3->endpoint);
	vox_buf_adds(&url, path);
	if (vox_buf_error(&url) != 0) {
		vox_buf_free(&url);
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "s3 URL too long");
	}
	if (body != NULL)
		vox_sha256_hex(body, len, sha);
	else
		memcpy(sha, S3_EMPTY_SHA256, sizeof(sha));
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
	curl = curl_easy_init();
	h = curl_slist_append(NULL, line);
	if (h != NULL && content_type != NULL) {
		headers = h;
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		h = curl_slist_append(headers, line);
	}
	if (curl == NULL || h == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
		curl_slist_free_all(h ? h : headers);
		headers = NULL;
		goto out;
	}
	headers = h;
	curl_easy_setopt(curl, CURLOPT_URL, vox_buf_str(&url));
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L); /* keep "/./" keys */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)s3->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(s3->timeout_ms < 3000 ? s3->timeout_ms : 3000));
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "voxlink");
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(curl, CURLOPT_USERPWD, s3->userpwd);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s3_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ans);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)len);
	}
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ans->status);
	if (cc == CURLE_WRITE_ERROR && vox_buf_error(&ans->body) != 0)
		rc = vox_error_set(err, VOX_ERR_LIMIT, false,
		                   "s3 %s %s: the answer is larger than %zu "
		                   "bytes",
		                   method, path, max);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		rc = vox_error_set(err, VOX_ERR_TIMEOUT, true,
		                   "s3 %s %s: no answer within %d ms", method,
		                   path, s3->timeout_ms);
	else if (cc != CURLE_OK)
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "s3 %s %s: %s", method, path,
		                   *errbuf ? errbuf : curl_easy_strerror(cc));
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	vox_buf_free(&url);
	if (rc != 0)
		vox_buf_free(&ans->body);
	return rc;
}

/* The object's path, or an error for a bad key. */
static int s3_path(vox_s3_t *s3, const char *key, char *path, size_t len,
                   vox_error_t *err)
{
	return vox_s3_object_path(s3->bucket, key, path, len, err);
}

#define S3_PATH_MAX (S3_KEY_MAX * 3 + 80)

int vox_s3_put(vox_s3_t *s3, const char *key, const void *data, size_t len,
               const char *content_type, vox_error_t *err)
{
	char path[S3_PATH_MAX];
	struct s3_answer ans;
	int rc;

	if (data == NULL)
		data = "";
	if ((rc = s3_path(s3, key, path, sizeof(path), err)) != 0 ||
	    (rc = s3_request(s3, "PUT", path, data, len,
	                     content_type ? content_type
	                                  : "application/octet-stream",
	                     64 * 1024, &ans, err)) != 0)
		return rc;
	if (ans.status < 200 || ans.status > 299)
		rc = s3_refusal("PUT", key, &ans, err);
	vox_buf_free(&ans.body);
	return rc;
}

int vox_s3_get(vox_s3_t *s3, const char *key, size_t max, char **data,
               size_t *len, vox_error_t *err)
{
	char path[S3_PATH_MAX];
	struct s3_answer ans;
	int rc;

	*data = NULL;
	*len = 0;
	if ((rc = s3_path(s3, key, path, sizeof(path), err)) != 0 ||
	    (rc = s3_request(s3, "GET", path, NULL, 0, NULL,
	                     max > 64 * 1024 ? max : 64 * 1024, &ans, err)) !=
	            0)
		return rc;
	if (ans.status < 200 || ans.status > 299) {
		rc = s3_refusal("GET", key, &ans, err);
	} else if (vox_buf_len(&ans.body) > max) {
		rc = vox_error_set(err, VOX_ERR_LIMIT, false,
		                   "s3 GET %s: larger than %zu bytes", key,
		                   max);
	} else {
		*len = vox_buf_len(&ans.body);
		*data = vox_buf_take(&ans.body, NULL);
		if (*data == NULL) /* nothing was appended: an empty object */
			*data = calloc(1, 1);
		if (*data == NULL)
			rc = vox_error_set(err, VOX_ERR_NOMEM, false,
			                   "out of memory");
	}
	vox_buf_free(&ans.body);
	return rc;
}

int vox_s3_delete(vox_s3_t *s3, const char *key, vox_error_t *err)
{
	char path[S3_PATH_MAX];
	struct s3_answer ans;
	int rc;

	if ((rc = s3_path(s3, key, path, sizeof(path), err)) != 0 ||
	    (rc = s3_request(s3, "DELETE", path, NULL, 0, NULL, 64 * 1024, &ans,
	                     err)) != 0)
		return rc;
	if ((ans.status < 200 || ans.status > 299) && ans.status != 404)
		rc = s3_refusal("DELETE", key, &ans, err);
	vox_buf_free(&ans.body);
	return rc;
}

int vox_s3_ensure_bucket(vox_s3_t *s3, vox_error_t *err)
{
	char path[80], conf[256];
	struct s3_answer ans;
	const void *body = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "/%s", s3->bucket);
	if ((rc = s3_request(s3, "HEAD", path, NULL, 0, NULL, 64 * 1024, &ans,
	                     err)) != 0)
		return rc;
	vox_buf_free(&ans.body);
	if (ans.status >= 200 && ans.status <= 299)
		return 0;
	if (ans.status != 404)
		return s3_refusal("HEAD", path, &ans, err);
	/* us-east-1 takes no location; every other region needs its own. */
	if (strcmp(s3->region, "us-east-1") != 0) {
		snprintf(conf, sizeof(conf),
		         "<CreateBucketConfiguration xmlns=\"http://s3."
		         "amazonaws.com/doc/2006-03-01/\"><LocationConstraint>"
		         "%s</LocationConstraint></CreateBucketConfiguration>",
		         s3->region);
		body = conf;
		len = strlen(conf);
	}
	if ((rc = s3_request(s3, "PUT", path, body ? body : "", len,
	                     body ? "application/xml" : NULL, 64 * 1024, &ans,
	                     err)) != 0)
		return rc;
	/* Created, or made meanwhile by another caller: both fine. */
	if ((ans.status < 200 || ans.status > 299) &&
	    strstr(vox_buf_str(&ans.body), "BucketAlreadyOwnedByYou") == NULL)
		rc = s3_refusal("PUT", path, &ans, err);
	vox_buf_free(&ans.body);
	return rc;
}
