/*
 * Documents (/v1/documents, docs/PORTING.md "Documents"): an LOA or an
 * invoice uploaded as multipart/form-data, checked by its content
 * (libmagic: PDF, PNG, JPEG only; the declared type is not believed),
 * stored in the S3-compatible object store under
 * documents/<account>/<id>, then its row. The object is written first: a
 * row never points at nothing; an object whose row could not be written
 * is deleted again. Reads are scoped by account (another's: 404).
 */
#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingress.h"
#include "vox_buf.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_s3.h"

#define DOCUMENT_FILENAME_MAX 255
#define DOCUMENT_KIND_MAX     16
/* A stored object path: "documents/" + two UUIDs. */
#define DOCUMENT_KEY_LEN 160

#define DOCUMENT_COLUMNS                                                       \
	"id, filename, content_type, kind, size_bytes, "                       \
	"encode(sha256, 'hex'), vox_iso(created_at), storage_key"

struct documents {
	vox_s3_t *s3; /* NULL: no store configured (503) */
	magic_t magic;
	pthread_mutex_t magic_lock; /* a magic_t is not thread-safe */
	size_t max_bytes;
};

static const char *const allowed_types[] = {"application/pdf", "image/png",
                                            "image/jpeg", NULL};
static const char *const kinds[] = {"loa", "invoice", "other", NULL};

struct documents *documents_new(const struct ingress_cfg *cfg, vox_error_t *err)
{
	struct documents *d = calloc(1, sizeof(*d));
	vox_s3_conf_t conf = {
	        .endpoint = cfg->s3_endpoint,
	        .region = cfg->s3_region,
	        .bucket = cfg->s3_bucket,
	        .access_key = cfg->s3_access_key,
	        .secret_key = cfg->s3_secret_key,
	        .timeout_ms = 10000,
	};

	if (d == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->magic_lock, NULL);
	d->max_bytes = (size_t)cfg->document_max_bytes;
	d->magic = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
	if (d->magic == NULL || magic_load(d->magic, NULL) != 0) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "libmagic: cannot load its database: %s",
		              d->magic ? magic_error(d->magic) : "magic_open");
		documents_destroy(d);
		return NULL;
	}
	if (*cfg->s3_access_key == '\0' && *cfg->s3_secret_key == '\0') {
		vox_log(VOX_LOG_WARN,
		        "no VOX_S3_ACCESS_KEY/VOX_S3_SECRET_KEY: /v1/documents "
		        "answers 503 document_storage_unavailable",
		        NULL);
		return d;
	}
	d->s3 = vox_s3_new(&conf, err);
	if (d->s3 == NULL) {
		documents_destroy(d);
		return NULL;
	}
	return d;
}

void documents_destroy(struct documents *d)
{
	if (d == NULL)
		return;
	vox_s3_destroy(d->s3);
	if (d->magic != NULL)
		magic_close(d->magic);
	pthread_mutex_destroy(&d->magic_lock);
	free(d);
}

static bool in_list(const char *value, const char *const *list)
{
	for (size_t i = 0; value != NULL && list[i] != NULL; i++)
		if (strcmp(value, list[i]) == 0)
			return true;
	return false;
}

/* The content's own type (libmagic), copied into out. */
static void document_sniff(struct documents *d, const char *data, size_t len,
                           char *out, size_t outlen)
{
	const char *mime;

	pthread_mutex_lock(&d->magic_lock);
	mime = magic_buffer(d->magic, data, len);
	snprintf(out, outlen, "%s", mime ? mime : "application/octet-stream");
	pthread_mutex_unlock(&d->magic_lock);
}

/* ---------------------------------------------------------------- upload */

/* Why the form reader stopped (vox_http_form returns it). */
enum upload_stop {
	UPLOAD_TOO_LARGE = 1,
	UPLOAD_DUPLICATE,
	UPLOAD_UNKNOWN_PART,
	UPLOAD_KIND_BAD, /* too long, or a NUL in it */
	UPLOAD_NO_MEMORY,
};

struct upload {
	size_t max;
	bool has_file, has_kind;
	char *filename;    /* the file part's, as sent (NULL: none) */
	vox_buf_t content; /* the file's bytes, capped at max */
	char kind[DOCUMENT_KIND_MAX + 1];
	size_t kind_len;
	char unknown[64]; /* the first part we do not take */
};

/* A part's first piece may come empty and again at offset 0 (libmicrohttpd
 * announces every part at least once): a piece continues the part when it
 * starts where the bytes so far end; offset 0 after bytes is a second
 * part. */
static int upload_file_piece(struct upload *up, const char *filename,
                             uint64_t off, const char *data, size_t size)
{
	size_t got = vox_buf_len(&up->content);

	if (up->has_file && off != got)
		return UPLOAD_DUPLICATE;
	up->has_file = true;
	if (up->filename == NULL && filename != NULL &&
	    (up->filename = strdup(filename)) == NULL)
		return UPLOAD_NO_MEMORY;
	if (size > 0 && got + size > up->max)
		return UPLOAD_TOO_LARGE;
	if (size > 0 && vox_buf_add(&up->content, data, size) != 0)
		return UPLOAD_NO_MEMORY;
	return 0;
}

static int upload_piece(void *arg, const char *name, const char *filename,
                        const char *content_type, uint64_t off,
                        const char *data, size_t size)
{
	struct upload *up = arg;

	(void)content_type; /* the content decides, not the declaration */
	if (name != NULL && strcmp(name, "file") == 0)
		return upload_file_piece(up, filename, off, data, size);
	if (name != NULL && strcmp(name, "kind") == 0) {
		if (up->has_kind && off != up->kind_len)
			return UPLOAD_DUPLICATE;
		up->has_kind = true;
		/* A NUL would cut the value short of what was sent. */
		if (up->kind_len + size > DOCUMENT_KIND_MAX ||
		    (size > 0 && memchr(data, '\0', size) != NULL))
			return UPLOAD_KIND_BAD;
		if (size > 0)
			memcpy(up->kind + up->kind_len, data, size);
		up->kind_len += size;
		up->kind[up->kind_len] = '\0';
		return 0;
	}
	/* Echoed in the answer: printable ASCII only (a name may be any
	 * bytes, and JSON text must be UTF-8). */
	snprintf(up->unknown, sizeof(up->unknown), "%s", name ? name : "");
	for (char *c = up->unknown; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return UPLOAD_UNKNOWN_PART;
}

static bool bad_field(vox_http_req_t *req, const char *field,
                      const char *message)
{
	ingress_error(req, 400, "invalid_body", message,
	              json_pack("{s:s}", "field", field));
	return false;
}

/* Reads the form into up: true, or false after answering 4xx. */
static bool upload_read(vox_http_req_t *req, struct upload *up)
{
	const char *ct = vox_http_header(req, "Content-Type");
	vox_error_t err = {0};
	char msg[200];
	int rc;

	if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) {
		ingress_error(req, 415, "unsupported_media_type",
		              "send the document as Content-Type: "
		              "multipart/form-data with a file part",
		              NULL);
		return false;
	}
	rc = vox_http_form(req, upload_piece, up, &err);
	switch (rc) {
	case 0:
		return true;
	case UPLOAD_TOO_LARGE:
		snprintf(msg, sizeof(msg),
		         "the file is larger than %zu bytes; send less",
		         up->max);
		ingress_error(
		        req, 413, "document_too_large", msg,
		        json_pack("{s:I}", "max_bytes", (json_int_t)up->max));
		return false;
	case UPLOAD_DUPLICATE:
		return bad_field(req, "file",
		                 "send one file part and at most one kind "
		                 "part");
	case UPLOAD_UNKNOWN_PART:
		snprintf(msg, sizeof(msg),
		         "unknown part \"%s\": the form takes file and kind",
		         up->unknown);
		return bad_field(req, up->unknown, msg);
	case UPLOAD_KIND_BAD:
		return bad_field(req, "kind",
		                 "kind is one of loa, invoice, other");
	case UPLOAD_NO_MEMORY:
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return false;
	default:
		ingress_error(req, 400, "invalid_body", err.message, NULL);
		return false;
	}
}

/* 1..255 bytes of UTF-8 without control characters. */
static bool filename_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	json_t *utf8;

	if (n == 0 || n > DOCUMENT_FILENAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	utf8 = json_string(name); /* NULL for invalid UTF-8 */
	json_decref(utf8);
	return utf8 != NULL;
}

/* The form's fields checked: true, or false after answering 400/415. */
static bool upload_check(vox_http_req_t *req, struct documents *d,
                         struct upload *up, char *mime, size_t mimelen)
{
	if (!up->has_file)
		return bad_field(
		        req, "file",
		        "a file part (Content-Disposition: form-data; "
		        "name=\"file\"; filename=\"...\") is required");
	if (up->filename == NULL)
		return bad_field(req, "file",
		                 "the file part needs a filename in its "
		                 "Content-Disposition");
	if (!filename_ok(up->filename))
		return bad_field(req, "filename",
		                 "the filename has 1..255 bytes of UTF-8 and "
		                 "no control characters");
	if (vox_buf_len(&up->content) == 0)
		return bad_field(req, "file", "the file is empty");
	if (!up->has_kind || up->kind_len == 0)
		snprintf(up->kind, sizeof(up->kind), "other");
	else if (!in_list(up->kind, kinds))
		return bad_field(req, "kind",
		                 "kind is one of loa, invoice, other");
	document_sniff(d, vox_buf_str(&up->content), vox_buf_len(&up->content),
	               mime, mimelen);
	if (!in_list(mime, allowed_types)) {
		ingress_error(req, 415, "unsupported_document_type",
		              "a document is a PDF, PNG or JPEG (checked by "
		              "its content)",
		              json_pack("{s:s, s:[sss]}", "detected", mime,
		                        "allowed", "application/pdf",
		                        "image/png", "image/jpeg"));
		return false;
	}
	return true;
}

static json_t *document_json(const PGresult *res, int i)
{
	return json_pack(
	        "{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id",
	        PQgetvalue(res, i, 0), "filename", PQgetvalue(res, i, 1),
	        "content_type", PQgetvalue(res, i, 2), "kind",
	        PQgetvalue(res, i, 3), "size_bytes",
	        (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10), "sha256",
	        PQgetvalue(res, i, 5), "created_at", PQgetvalue(res, i, 6));
}

static void storage_unavailable(vox_http_req_t *req, const char *why)
{
	vox_log(VOX_LOG_WARN, "document store unavailable", "error", why,
	        "request_id", vox_http_request_id(req), NULL);
	ingress_error(req, 503, "document_storage_unavailable",
	              "the document store is not available; try again later",
	              NULL);
}

/* Object, then row; the object goes again when the row cannot be
 * written. Answers 201 or 503. */
static void upload_store(vox_http_req_t *req, ingress_req_t *ir,
                         struct documents *d, struct upload *up,
                         const char *mime)
{
	char id[VOX_UUID_STRLEN], key[DOCUMENT_KEY_LEN], sha[65], size[24];
	vox_error_t err = {0}, derr = {0};
	PGresult *res;

	vox_uuid7(id);
	snprintf(key, sizeof(key), "documents/%s/%s", ir->who.account_id, id);
	vox_sha256_hex(vox_buf_str(&up->content), vox_buf_len(&up->content),
	               sha);
	snprintf(size, sizeof(size), "%zu", vox_buf_len(&up->content));
	if (vox_s3_put(d->s3, key, vox_buf_str(&up->content),
	               vox_buf_len(&up->content), mime, &err) != 0) {
		storage_unavailable(req, err.message);
		return;
	}
	const char *params[] = {
	        id, ir->who.account_id, up->kind, up->filename, mime, size, sha,
	        key};
	res = ingress_query(ir->in, req, "ingress_document_create",
	                    "INSERT INTO documents (id, account_id, kind, "
	                    "filename, content_type, size_bytes, sha256, "
	                    "storage_key) VALUES ($1, $2, $3, $4, $5, "
	                    "$6::bigint, decode($7, 'hex'), $8) "
	                    "RETURNING " DOCUMENT_COLUMNS,
	                    8, params);
	if (res == NULL || PQntuples(res) != 1) {
		/* ingress_query answered 503; the object must not stay. */
		if (vox_s3_delete(d->s3, key, &derr) != 0)
			vox_log(VOX_LOG_ERROR,
			        "document object left without its row", "key",
			        key, "error", derr.message, NULL);
		if (res != NULL)
			ingress_error(req, 500, "internal",
			              "the document row was not written", NULL);
		PQclear(res);
		return;
	}
	vox_log(VOX_LOG_INFO, "document stored", "document_id", id,
	        "account_id", ir->who.account_id, "content_type", mime,
	        "size_bytes", size, NULL);
	ingress_reply(req, 201, document_json(res, 0));
	PQclear(res);
}

void ingress_document_create(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	struct documents *d;
	struct upload up = {0};
	char mime[128];

	if (ir == NULL)
		return;
	d = ir->in->documents;
	up.max = d->max_bytes;
	vox_buf_init(&up.content, d->max_bytes);
	if (!upload_read(req, &up) ||
	    !upload_check(req, d, &up, mime, sizeof(mime)))
		goto out;
	if (d->s3 == NULL) {
		storage_unavailable(req, "no VOX_S3_ACCESS_KEY configured");
		goto out;
	}
	if (!idem_begin(req, ir))
		goto out;
	upload_store(req, ir, d, &up, mime);
out:
	vox_buf_free(&up.content);
	free(up.filename);
}

/* ---------------------------------------------------------------- reads */

static PGresult *document_lookup(vox_http_req_t *req, ingress_req_t *ir)
{
	return ingress_lookup(req, ir, "ingress_document_get",
	                      "SELECT " DOCUMENT_COLUMNS " FROM documents "
	                      "WHERE id = $1 AND account_id = $2",
	                      vox_http_param(req, "id"), "document_not_found",
	                      "document");
}

void ingress_document_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL || (res = document_lookup(req, ir)) == NULL)
		return;
	vox_http_reply_json(req, 200, document_json(res, 0));
	PQclear(res);
}

/* Content-Disposition: attachment with the filename as RFC 6266/8187
 * filename*=UTF-8''<percent-encoded>, so no byte of it is taken as
 * syntax by the client. */
static void content_disposition(vox_http_req_t *req, const char *filename)
{
	static const char hex[] = "0123456789ABCDEF";
	vox_buf_t value;

	vox_buf_init(&value, 32 + DOCUMENT_FILENAME_MAX * 3);
	vox_buf_adds(&value, "attachment; filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)filename; *p;
	     p++) {
		char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p))
			vox_buf_add(&value, p, 1);
		else
			vox_buf_add(&value, esc, 3);
	}
	if (vox_buf_error(&value) == 0)
		vox_http_add_header(req, "Content-Disposition",
		                    vox_buf_str(&value));
	vox_buf_free(&value);
}

void ingress_document_content(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	struct documents *d;
	vox_error_t err = {0};
	char *data = NULL, sha[65];
	size_t len = 0, size;
	PGresult *res;

	if (ir == NULL || (res = document_lookup(req, ir)) == NULL)
		return;
	d = ir->in->documents;
	size = (size_t)strtoull(PQgetvalue(res, 0, 4), NULL, 10);
	if (d->s3 == NULL) {
		storage_unavailable(req, "no VOX_S3_ACCESS_KEY configured");
		goto out;
	}
	if (vox_s3_get(d->s3, PQgetvalue(res, 0, 7), size, &data, &len, &err) !=
	    0) {
		if (err.code == VOX_ERR_UNAVAILABLE ||
		    err.code == VOX_ERR_TIMEOUT) {
			storage_unavailable(req, err.message);
		} else {
			vox_log(VOX_LOG_ERROR, "document content unreadable",
			        "document_id", PQgetvalue(res, 0, 0), "error",
			        err.message, NULL);
			ingress_error(req, 500, "internal",
			              "the document's content cannot be read",
			              NULL);
		}
		goto out;
	}
	vox_sha256_hex(data, len, sha);
	if (len != size || strcmp(sha, PQgetvalue(res, 0, 5)) != 0) {
		/* The row pins the bytes: never serve others. */
		vox_log(VOX_LOG_ERROR,
		        "document content does not match its "
		        "SHA-256",
		        "document_id", PQgetvalue(res, 0, 0), NULL);
		ingress_error(req, 500, "internal",
		              "the stored content does not match the document",
		              NULL);
		goto out;
	}
	content_disposition(req, PQgetvalue(res, 0, 1));
	vox_http_add_header(req, "X-Content-Type-Options", "nosniff");
	vox_http_reply(req, 200, PQgetvalue(res, 0, 2), data, len);
out:
	free(data);
	PQclear(res);
}
