/*
 * /v1/documents against the real stack: the ingress, PostgreSQL and the
 * S3 stand-in (VOX_S3_* of `ops/stack env`). A real PDF, PNG and JPEG
 * (tests/data/documents, made by make.py there) go in and come back byte
 * for byte with their SHA-256; the content decides the type (a text file
 * sent as a PDF is 415 and leaves no row and no object); the size cap
 * (exactly 10 MiB in, one byte more out); the form's rules (file part
 * required, filename 1..255 bytes without control characters, kind);
 * another account's document is 404; a store that does not answer is 503
 * and leaves no row.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_buf.h"
#include "vox_crypto.h"

#define MIB      (1024 * 1024)
#define BOUNDARY "vox-test-boundary-7c1f"

static pid_t ingress;
static int port;

static int wait_port;
static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", wait_port, "/healthz", NULL, NULL, NULL) == 200;
}

/* An ingress on a free port; extra is one more NAME=value (or NULL). The
 * S3 settings come from the environment (eval "$(ops/stack env)"). */
static pid_t start_ingress(int *at, const char *logfile, const char *extra)
{
	char port_env[64];

	t_env("VOX_S3_ACCESS_KEY");
	*at = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", *at);
	const char *const env[] = {port_env, "VOX_RATE_COMMAND=1000",
	                           "VOX_RATE_READ=1000", extra, NULL};
	pid_t pid = t_spawn("ingress", logfile, env);

	wait_port = *at;
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	return pid;
}

static void suite_start(void)
{
	ingress = start_ingress(&port, "documents-ingress.log", NULL);
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(documents, .init = suite_start, .fini = suite_stop, .timeout = 180);

/* ---------------------------------------------------------------- HTTP */

struct answer {
	long status;
	vox_buf_t body;
	char content_type[128];
	char disposition[1024];
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;

	return vox_buf_add(&a->body, data, size * n) == 0 ? size * n : 0;
}

static void header_value(const char *line, size_t len, const char *name,
                         char *out, size_t outlen)
{
	size_t n = strlen(name);

	if (len > n && strncasecmp(line, name, n) == 0) {
		size_t v = len - n;

		while (v > 0 &&
		       (line[n + v - 1] == '\r' || line[n + v - 1] == '\n'))
			v--;
		snprintf(out, outlen, "%.*s", (int)v, line + n);
	}
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;

	header_value(line, size * n, "Content-Type: ", a->content_type,
	             sizeof(a->content_type));
	header_value(line, size * n, "Content-Disposition: ", a->disposition,
	             sizeof(a->disposition));
	return size * n;
}

/* One request; the answer's body is in a->body (vox_buf_free it). */
static long call(const char *method, int at, const char *path, const char *key,
                 const char *content_type, const void *body, size_t len,
                 const char *idem, struct answer *a)
{
	struct curl_slist *headers = NULL;
	char url[512], line[256];
	CURL *curl = curl_easy_init();

	memset(a, 0, sizeof(*a));
	vox_buf_init(&a->body, 64 * MIB);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", at, path);
	snprintf(line, sizeof(line), "Authorization: Bearer %s", key);
	headers = curl_slist_append(headers, line);
	if (content_type != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, line);
	}
	if (idem != NULL) {
		snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
		headers = curl_slist_append(headers, line);
	}
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)len);
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return a->status;
}

static json_t *answer_json(struct answer *a)
{
	json_t *doc = json_loadb(vox_buf_str(&a->body), vox_buf_len(&a->body),
	                         0, NULL);

	cr_assert_not_null(doc, "not JSON (HTTP %ld): %.300s", a->status,
	                   vox_buf_str(&a->body));
	return doc;
}

static const char *error_code(json_t *doc)
{
	const char *code = json_string_value(
	        json_object_get(json_object_get(doc, "error"), "code"));

	return code ? code : "(none)";
}

/* ---------------------------------------------------------------- forms */

struct part {
	const char *name;
	const char *filename; /* NULL: none */
	const char *content_type;
	const void *data;
	size_t len;
};

static void form(vox_buf_t *b, const struct part *parts, size_t n)
{
	vox_buf_init(b, 64 * MIB);
	for (size_t i = 0; i < n; i++) {
		vox_buf_printf(b,
		               "--" BOUNDARY "\r\nContent-Disposition: "
		               "form-data; name=\"%s\"",
		               parts[i].name);
		if (parts[i].filename != NULL)
			vox_buf_printf(b, "; filename=\"%s\"",
			               parts[i].filename);
		vox_buf_adds(b, "\r\n");
		if (parts[i].content_type != NULL)
			vox_buf_printf(b, "Content-Type: %s\r\n",
			               parts[i].content_type);
		vox_buf_adds(b, "\r\n");
		vox_buf_add(b, parts[i].data, parts[i].len);
		vox_buf_adds(b, "\r\n");
	}
	vox_buf_adds(b, "--" BOUNDARY "--\r\n");
	cr_assert_eq(vox_buf_error(b), 0);
}

static long upload(int at, const char *key, const struct part *parts, size_t n,
                   const char *idem, json_t **doc)
{
	struct answer a;
	vox_buf_t body;
	long status;

	form(&body, parts, n);
	status = call("POST", at, "/v1/documents", key,
	              "multipart/form-data; boundary=" BOUNDARY,
	              vox_buf_str(&body), vox_buf_len(&body), idem, &a);
	vox_buf_free(&body);
	*doc = vox_buf_len(&a.body) > 0 ? answer_json(&a) : NULL;
	vox_buf_free(&a.body);
	return status;
}

/* One file part (and a kind part when kind is not NULL). */
static long upload_file(int at, const char *key, const char *filename,
                        const char *content_type, const void *data, size_t len,
                        const char *kind, json_t **doc)
{
	struct part parts[2] = {
	        {"file", filename, content_type, data, len},
	        {"kind", NULL, NULL, kind, kind ? strlen(kind) : 0},
	};

	return upload(at, key, parts, kind ? 2 : 1, NULL, doc);
}

static char *read_data(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/tests/data/documents/%s",
	         t_env("VOX_ROOT"), name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---------------------------------------------------------------- state */

static long long rows_of(const char *account)
{
	vox_pg_t *pg = t_pg();
	long long n = t_pg_count(
	        pg, "SELECT count(*) FROM documents WHERE account_id = $1",
	        account);

	vox_pg_destroy(pg);
	return n;
}

/* Objects under documents/<account>/ in the store. */
static int objects_of(const char *account)
{
	char prefix[128];
	char **keys;
	int n = 0;

	snprintf(prefix, sizeof(prefix), "documents/%s/", account);
	keys = t_s3_list(prefix);
	while (keys[n] != NULL)
		n++;
	t_s3_keys_free(keys);
	return n;
}

/* GET the metadata and the content of doc and compare them with data. */
static void check_stored(int at, const char *key, json_t *doc,
                         const char *filename, const char *type,
                         const char *kind, const char *data, size_t len)
{
	const char *id = json_string_value(json_object_get(doc, "id"));
	char path[160], sha[65];
	struct answer a;
	json_t *meta;

	vox_sha256_hex(data, len, sha);
	cr_assert_not_null(id);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "filename")),
	                 filename);
	cr_assert_str_eq(
	        json_string_value(json_object_get(doc, "content_type")), type);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "kind")), kind);
	cr_assert_eq(json_integer_value(json_object_get(doc, "size_bytes")),
	             (json_int_t)len);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "sha256")),
	                 sha);
	cr_assert_not_null(
	        json_string_value(json_object_get(doc, "created_at")));
	cr_assert_eq(json_object_size(doc), 7, "only the documented fields");

	snprintf(path, sizeof(path), "/v1/documents/%s", id);
	cr_assert_eq(call("GET", at, path, key, NULL, NULL, 0, NULL, &a), 200);
	meta = answer_json(&a);
	cr_assert(json_equal(meta, doc), "GET answers what POST did");
	json_decref(meta);
	vox_buf_free(&a.body);

	snprintf(path, sizeof(path), "/v1/documents/%s/content", id);
	cr_assert_eq(call("GET", at, path, key, NULL, NULL, 0, NULL, &a), 200);
	cr_assert_str_eq(a.content_type, type);
	cr_assert_eq(vox_buf_len(&a.body), len);
	cr_assert(memcmp(vox_buf_str(&a.body), data, len) == 0,
	          "the content comes back byte for byte");
	cr_assert(strncmp(a.disposition, "attachment; filename*=UTF-8''", 29) ==
	                  0,
	          "Content-Disposition: %s", a.disposition);
	vox_buf_free(&a.body);
}

/* ---------------------------------------------------------------- tests */

Test(documents, pdf_png_jpeg_round_trip)
{
	static const struct {
		const char *file, *type, *kind, *sent_kind;
	} cases[] = {
	        {"loa.pdf", "application/pdf", "loa", "loa"},
	        {"stamp.png", "image/png", "invoice", "invoice"},
	        {"scan.jpg", "image/jpeg", "other", NULL},
	};
	char account[40], key[64], storage[160];
	vox_pg_t *pg;

	t_account("developer", account, key);
	for (size_t i = 0; i < 3; i++) {
		size_t len;
		char *data = read_data(cases[i].file, &len);
		json_t *doc = NULL;
		long status =
		        upload_file(port, key, cases[i].file, cases[i].type,
		                    data, len, cases[i].sent_kind, &doc);

		cr_assert_eq(status, 201, "%s: HTTP %ld %s", cases[i].file,
		             status, doc ? error_code(doc) : "");
		check_stored(port, key, doc, cases[i].file, cases[i].type,
		             cases[i].kind, data, len);
		/* The row's storage key is documents/<account>/<id>. */
		snprintf(storage, sizeof(storage), "documents/%s/%s", account,
		         json_string_value(json_object_get(doc, "id")));
		pg = t_pg();
		cr_assert_eq(t_pg_count(pg,
		                        "SELECT count(*) FROM documents WHERE "
		                        "storage_key = $1",
		                        storage),
		             1, "%s", storage);
		vox_pg_destroy(pg);
		json_decref(doc);
		free(data);
	}
	cr_assert_eq(rows_of(account), 3);
	cr_assert_eq(objects_of(account), 3);
}

Test(documents, the_content_decides_the_type)
{
	char account[40], key[64];
	size_t len;
	char *text = read_data("notes.txt", &len);
	char *png;
	json_t *doc = NULL, *allowed;

	t_account("developer", account, key);
	cr_assert_eq(upload_file(port, key, "loa.pdf", "application/pdf", text,
	                         len, "loa", &doc),
	             415);
	cr_assert_str_eq(error_code(doc), "unsupported_document_type");
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_object_get(json_object_get(doc, "error"),
	                                         "details"),
	                         "detected")),
	                 "text/plain");
	allowed = json_object_get(
	        json_object_get(json_object_get(doc, "error"), "details"),
	        "allowed");
	cr_assert_eq(json_array_size(allowed), 3);
	json_decref(doc);
	cr_assert_eq(rows_of(account), 0, "no row");
	cr_assert_eq(objects_of(account), 0, "no object");

	/* A PNG declared as a PDF is stored as what it is. */
	png = read_data("stamp.png", &len);
	cr_assert_eq(upload_file(port, key, "x.pdf", "application/pdf", png,
	                         len, NULL, &doc),
	             201);
	cr_assert_str_eq(
	        json_string_value(json_object_get(doc, "content_type")),
	        "image/png");
	json_decref(doc);
	free(png);
	free(text);
}

Test(documents, size_cap)
{
	char account[40], key[64];
	size_t max = 10 * MIB;
	char *big = malloc(max + 1);
	json_t *doc = NULL;
	size_t len;
	char *pdf = read_data("loa.pdf", &len);

	t_account("developer", account, key);
	/* A PDF padded to exactly the cap: a comment after %%EOF. */
	memset(big, ' ', max + 1);
	memcpy(big, pdf, len);
	cr_assert_eq(upload_file(port, key, "big.pdf", "application/pdf", big,
	                         max, "loa", &doc),
	             201, "exactly %zu bytes: %s", max,
	             doc ? error_code(doc) : "");
	check_stored(port, key, doc, "big.pdf", "application/pdf", "loa", big,
	             max);
	json_decref(doc);

	cr_assert_eq(upload_file(port, key, "big.pdf", "application/pdf", big,
	                         max + 1, "loa", &doc),
	             413);
	cr_assert_str_eq(error_code(doc), "document_too_large");
	json_decref(doc);
	cr_assert_eq(rows_of(account), 1);
	cr_assert_eq(objects_of(account), 1);
	free(big);
	free(pdf);

	/* A body past the route's cap is refused as it streams in. */
	size_t huge = max + 256 * 1024;
	char *body = calloc(1, huge);
	struct answer a;

	cr_assert_eq(call("POST", port, "/v1/documents", key,
	                  "multipart/form-data; boundary=" BOUNDARY, body, huge,
	                  NULL, &a),
	             413);
	doc = answer_json(&a);
	cr_assert_str_eq(error_code(doc), "payload_too_large");
	json_decref(doc);
	vox_buf_free(&a.body);
	free(body);
	cr_assert_eq(rows_of(account), 1);
}

static void refused_400(const char *key, const struct part *parts, size_t n,
                        const char *field, const char *why)
{
	json_t *doc = NULL;
	long status = upload(port, key, parts, n, NULL, &doc);

	cr_assert_eq(status, 400, "%s: HTTP %ld", why, status);
	cr_assert_str_eq(error_code(doc), "invalid_body", "%s", why);
	if (field != NULL)
		cr_assert_str_eq(
		        json_string_value(json_object_get(
		                json_object_get(json_object_get(doc, "error"),
		                                "details"),
		                "field")),
		        field, "%s", why);
	json_decref(doc);
}

Test(documents, form_rules)
{
	char account[40], key[64], name[300];
	size_t len;
	char *pdf = read_data("loa.pdf", &len);
	json_t *doc = NULL;
	struct answer a;

	t_account("developer", account, key);
	{
		struct part p[] = {{"kind", NULL, NULL, "loa", 3}};
		refused_400(key, p, 1, "file", "no file part");
	}
	{
		struct part p[] = {{"file", "e.pdf", "application/pdf", "", 0}};
		refused_400(key, p, 1, "file", "an empty file");
	}
	{
		struct part p[] = {{"file", NULL, "application/pdf", pdf, len}};
		refused_400(key, p, 1, "file", "no filename");
	}
	{
		struct part p[] = {{"file", "", "application/pdf", pdf, len}};
		refused_400(key, p, 1, NULL, "an empty filename");
	}
	{
		struct part p[] = {
		        {"file", "a\tb.pdf", "application/pdf", pdf, len}};
		refused_400(key, p, 1, "filename", "a tab in the filename");
	}
	{
		struct part p[] = {{"file", "bad\xff\xfe.pdf",
		                    "application/pdf", pdf, len}};
		refused_400(key, p, 1, "filename", "invalid UTF-8");
	}
	{
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"kind", NULL, NULL, "passport", 8}};
		refused_400(key, p, 2, "kind", "an unknown kind");
	}
	{
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"kind", NULL, NULL, "invoice-but-longer", 18}};
		refused_400(key, p, 2, "kind", "a long kind");
	}
	{
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"kind", NULL, NULL, "loa\0x", 5}};
		refused_400(key, p, 2, "kind", "a NUL in kind");
	}
	{
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"owner", NULL, NULL, "me", 2}};
		refused_400(key, p, 2, "owner", "an unknown part");
	}
	{
		/* Its name echoed as printable ASCII (JSON must stay UTF-8). */
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"\xc3\xa9t\xff", NULL, NULL, "x", 1}};
		refused_400(key, p, 2, "??t?", "an unknown part, not ASCII");
	}
	{
		struct part p[] = {
		        {"file", "a.pdf", "application/pdf", pdf, len},
		        {"file", "b.pdf", "application/pdf", pdf, len}};
		refused_400(key, p, 2, "file", "two files");
	}
	/* Not a form at all. */
	cr_assert_eq(call("POST", port, "/v1/documents", key,
	                  "application/json", "{}", 2, NULL, &a),
	             415);
	doc = answer_json(&a);
	cr_assert_str_eq(error_code(doc), "unsupported_media_type");
	json_decref(doc);
	vox_buf_free(&a.body);
	/* A form cut short (no closing boundary, mid-part). */
	{
		static const char cut[] =
		        "--" BOUNDARY "\r\nContent-Disposition: form-data; "
		        "name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4 "
		        "half";
		cr_assert_eq(call("POST", port, "/v1/documents", key,
		                  "multipart/form-data; boundary=" BOUNDARY,
		                  cut, sizeof(cut) - 1, NULL, &a),
		             400, "a truncated form: %.200s",
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
	}
	/* A form without its boundary, an empty one, a part header larger
	 * than the reader's buffer, a thousand empty parts, a boundary and
	 * nothing else, headers without a blank line: 400, never a crash. */
	{
		static const char whole[] =
		        "--" BOUNDARY "\r\nContent-Disposition: form-data; "
		        "name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4 "
		        "x\r\n--" BOUNDARY "--\r\n";
		static const char no_blank[] =
		        "--" BOUNDARY "\r\nContent-Disposition: form-data; "
		        "name=\"file\"; filename=\"a.pdf\"\r\n--" BOUNDARY
		        "--\r\n";
		static const char only_end[] = "--" BOUNDARY "--\r\n";
		vox_buf_t big;
		long st;

		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data", whole, sizeof(whole) - 1, NULL,
		          &a);
		cr_expect_eq(st, 400, "no boundary: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data; boundary=", whole,
		          sizeof(whole) - 1, NULL, &a);
		cr_expect_eq(st, 400, "empty boundary: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data; boundary=" BOUNDARY, only_end,
		          sizeof(only_end) - 1, NULL, &a);
		cr_expect_eq(st, 400, "no part: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data; boundary=" BOUNDARY, no_blank,
		          sizeof(no_blank) - 1, NULL, &a);
		cr_expect_eq(st, 400, "no blank line: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		/* a 40 KiB Content-Disposition line */
		vox_buf_init(&big, 1 << 20);
		vox_buf_adds(&big, "--" BOUNDARY "\r\nContent-Disposition: "
		                   "form-data; name=\"file\"; filename=\"");
		for (int i = 0; i < 40 * 1024; i++)
			vox_buf_adds(&big, "n");
		vox_buf_adds(&big, ".pdf\"\r\n\r\n%PDF-1.4 x\r\n--" BOUNDARY
		                   "--\r\n");
		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data; boundary=" BOUNDARY,
		          vox_buf_str(&big), vox_buf_len(&big), NULL, &a);
		cr_expect_eq(st, 400, "a huge part header: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		vox_buf_free(&big);
		/* a thousand parts named file, all empty */
		vox_buf_init(&big, 1 << 20);
		for (int i = 0; i < 1000; i++)
			vox_buf_adds(&big,
			             "--" BOUNDARY
			             "\r\nContent-Disposition: form-data; "
			             "name=\"file\"; "
			             "filename=\"a.pdf\"\r\n\r\n\r\n");
		vox_buf_adds(&big, "--" BOUNDARY "--\r\n");
		st = call("POST", port, "/v1/documents", key,
		          "multipart/form-data; boundary=" BOUNDARY,
		          vox_buf_str(&big), vox_buf_len(&big), NULL, &a);
		cr_expect_eq(st, 400, "a thousand empty files: %ld %.200s", st,
		             vox_buf_str(&a.body));
		vox_buf_free(&a.body);
		vox_buf_free(&big);
	}
	cr_assert_eq(rows_of(account), 0, "nothing refused was stored");
	cr_assert_eq(objects_of(account), 0);

	/* The filename at its limit: 255 bytes in, 256 out. */
	memset(name, 'n', sizeof(name));
	memcpy(name + 251, ".pdf", 5); /* 255 bytes and the NUL */
	cr_assert_eq(upload_file(port, key, name, "application/pdf", pdf, len,
	                         "loa", &doc),
	             201);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "filename")),
	                 name);
	json_decref(doc);
	memset(name, 'n', sizeof(name));
	memcpy(name + 252, ".pdf", 5); /* 256 bytes */
	{
		struct part p[] = {{"file", name, "application/pdf", pdf, len}};
		refused_400(key, p, 1, "filename", "a 256-byte filename");
	}
	/* UTF-8 names are fine; quotes travel percent-encoded. */
	cr_assert_eq(upload_file(port, key,
	                         "lettre d\xe2\x80\x99\x61utorisation.pdf",
	                         "application/pdf", pdf, len, "loa", &doc),
	             201);
	check_stored(port, key, doc, "lettre d\xe2\x80\x99\x61utorisation.pdf",
	             "application/pdf", "loa", pdf, len);
	json_decref(doc);
	cr_assert_eq(rows_of(account), 2);
	free(pdf);
}

Test(documents, another_accounts_document_is_not_found)
{
	char a1[40], k1[64], a2[40], k2[64], viewer[64], path[160];
	size_t len;
	char *jpg = read_data("scan.jpg", &len);
	json_t *doc = NULL, *err;
	struct answer a;
	const char *id;

	t_account("developer", a1, k1);
	t_account("owner", a2, k2);
	cr_assert_eq(upload_file(port, k1, "scan.jpg", "image/jpeg", jpg, len,
	                         "invoice", &doc),
	             201);
	id = json_string_value(json_object_get(doc, "id"));
	snprintf(path, sizeof(path), "/v1/documents/%s", id);
	cr_assert_eq(call("GET", port, path, k2, NULL, NULL, 0, NULL, &a), 404);
	err = answer_json(&a);
	cr_assert_str_eq(error_code(err), "document_not_found");
	json_decref(err);
	vox_buf_free(&a.body);
	snprintf(path, sizeof(path), "/v1/documents/%s/content", id);
	cr_assert_eq(call("GET", port, path, k2, NULL, NULL, 0, NULL, &a), 404);
	err = answer_json(&a);
	cr_assert_str_eq(error_code(err), "document_not_found");
	json_decref(err);
	vox_buf_free(&a.body);
	/* Not a UUID, or no such document: the same 404. */
	cr_assert_eq(call("GET", port, "/v1/documents/not-a-uuid", k1, NULL,
	                  NULL, 0, NULL, &a),
	             404);
	vox_buf_free(&a.body);
	cr_assert_eq(call("GET", port,
	                  "/v1/documents/00000000-0000-4000-8000-000000000000/"
	                  "content",
	                  k1, NULL, NULL, 0, NULL, &a),
	             404);
	vox_buf_free(&a.body);
	/* A viewer of the account reads it but may not upload. */
	t_key(a1, "viewer", viewer, NULL);
	cr_assert_eq(call("GET", port, path, viewer, NULL, NULL, 0, NULL, &a),
	             200);
	cr_assert_eq(vox_buf_len(&a.body), len);
	vox_buf_free(&a.body);
	json_decref(doc);
	cr_assert_eq(upload_file(port, viewer, "scan.jpg", "image/jpeg", jpg,
	                         len, NULL, &doc),
	             403);
	cr_assert_str_eq(error_code(doc), "permission_denied");
	json_decref(doc);
	cr_assert_eq(rows_of(a1), 1);
	free(jpg);
}

Test(documents, idempotency_key_replays_the_upload)
{
	char account[40], key[64], idem[64];
	size_t len;
	char *pdf = read_data("loa.pdf", &len);
	struct part p[] = {{"file", "loa.pdf", "application/pdf", pdf, len},
	                   {"kind", NULL, NULL, "loa", 3}};
	json_t *first = NULL, *again = NULL;

	t_account("developer", account, key);
	snprintf(idem, sizeof(idem), "doc-%s", account);
	cr_assert_eq(upload(port, key, p, 2, idem, &first), 201);
	cr_assert_eq(upload(port, key, p, 2, idem, &again), 201);
	cr_assert(json_equal(first, again), "the replay is the first answer");
	cr_assert_eq(rows_of(account), 1);
	cr_assert_eq(objects_of(account), 1);
	json_decref(first);
	json_decref(again);
	free(pdf);
}

Test(documents, a_store_that_does_not_answer_is_503)
{
	char account[40], key[64], endpoint[80], path[160];
	size_t len;
	char *png = read_data("stamp.png", &len);
	json_t *doc = NULL, *stored = NULL;
	struct answer a;
	int dead_at;
	pid_t dead;

	t_account("developer", account, key);
	cr_assert_eq(upload_file(port, key, "stamp.png", "image/png", png, len,
	                         NULL, &stored),
	             201);
	snprintf(endpoint, sizeof(endpoint),
	         "VOX_S3_ENDPOINT=http://127.0.0.1:%d", t_free_port());
	dead = start_ingress(&dead_at, "documents-dead-s3-ingress.log",
	                     endpoint);
	cr_assert_eq(upload_file(dead_at, key, "stamp.png", "image/png", png,
	                         len, NULL, &doc),
	             503);
	cr_assert_str_eq(error_code(doc), "document_storage_unavailable");
	json_decref(doc);
	cr_assert_eq(rows_of(account), 1, "no row for the refused upload");
	/* The metadata is PostgreSQL's; the content needs the store. */
	snprintf(path, sizeof(path), "/v1/documents/%s",
	         json_string_value(json_object_get(stored, "id")));
	cr_assert_eq(call("GET", dead_at, path, key, NULL, NULL, 0, NULL, &a),
	             200);
	vox_buf_free(&a.body);
	snprintf(path, sizeof(path), "/v1/documents/%s/content",
	         json_string_value(json_object_get(stored, "id")));
	cr_assert_eq(call("GET", dead_at, path, key, NULL, NULL, 0, NULL, &a),
	             503);
	doc = answer_json(&a);
	cr_assert_str_eq(error_code(doc), "document_storage_unavailable");
	json_decref(doc);
	vox_buf_free(&a.body);
	cr_assert_eq(t_stop(dead, SIGTERM, 20000), 0);
	json_decref(stored);
	free(png);
}

/* The row cannot be written (a trigger of this test refuses this account's
 * rows): 503, and the object already stored is deleted again. */
Test(documents, a_row_that_cannot_be_written_leaves_no_object)
{
	char account[40], key[64], sql[1024];
	size_t len;
	char *pdf = read_data("loa.pdf", &len);
	json_t *doc = NULL;
	vox_error_t err = {0};
	vox_pg_t *pg = t_pg();

	t_account("developer", account, key);
	snprintf(
	        sql, sizeof(sql),
	        "CREATE FUNCTION documents_refuse_%d() RETURNS trigger "
	        "LANGUAGE plpgsql AS $$ BEGIN IF NEW.account_id = '%s' THEN "
	        "RAISE EXCEPTION 'test: refused' USING ERRCODE = "
	        "'check_violation'; END IF; RETURN NEW; END $$; "
	        "CREATE TRIGGER documents_refuse_%d BEFORE INSERT ON documents "
	        "FOR EACH ROW EXECUTE FUNCTION documents_refuse_%d();",
	        (int)getpid(), account, (int)getpid(), (int)getpid());
	cr_assert_eq(vox_pg_exec_script(pg, sql, &err), 0, "%s", err.message);
	long status = upload_file(port, key, "loa.pdf", "application/pdf", pdf,
	                          len, "loa", &doc);
	snprintf(sql, sizeof(sql),
	         "DROP TRIGGER documents_refuse_%d ON documents; "
	         "DROP FUNCTION documents_refuse_%d();",
	         (int)getpid(), (int)getpid());
	cr_assert_eq(vox_pg_exec_script(pg, sql, &err), 0, "%s", err.message);
	vox_pg_destroy(pg);
	cr_assert_eq(status, 503, "HTTP %ld", status);
	cr_assert_str_eq(error_code(doc), "database_unavailable");
	json_decref(doc);
	cr_assert_eq(rows_of(account), 0);
	cr_assert_eq(objects_of(account), 0, "the object went with the row");
	/* And the next upload goes through. */
	cr_assert_eq(upload_file(port, key, "loa.pdf", "application/pdf", pdf,
	                         len, "loa", &doc),
	             201);
	json_decref(doc);
	cr_assert_eq(objects_of(account), 1);
	free(pdf);
}
