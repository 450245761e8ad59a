/*
 * The web dashboard's files (web/, built by make into VOX_DASHBOARD_DIR):
 * read into memory once at start, served at /dashboard (index.html) and
 * /dashboard/{file} (the hashed bundles), with no credential: the pages
 * hold none and call the API with the one the user signs in with.
 *
 * Every answer carries a strict Content-Security-Policy (scripts, styles,
 * images and fetches from this origin only; no inline code, no framing).
 * index.html is revalidated on every load (Cache-Control: no-cache and an
 * ETag), the bundles are cached for a year: their names carry a hash of
 * their content (web/build.mjs), so a new build is a new name. Text
 * files are gzipped once at load and sent so to clients that accept gzip
 * (Vary: Accept-Encoding; the gzipped form has an ETag of its own).
 * docs/DASHBOARD.md.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_gzip.h"
#include "vox_log.h"

#define DASHBOARD_MAX_FILES 64
#define DASHBOARD_MAX_BYTES (16L * 1024 * 1024)

static const char dashboard_csp[] =
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

typedef struct dashboard_file {
	char name[128];
	const char *type;
	char *body;
	size_t len;
	void *gz; /* body gzipped; NULL: not worth it (images) */
	size_t gzlen;
	char etag[68];    /* "<sha-256 hex>" with its quotes */
	char gz_etag[72]; /* "<sha-256 hex>-gz" */
} dashboard_file_t;

struct dashboard {
	dashboard_file_t files[DASHBOARD_MAX_FILES];
	int nfiles;
};

static const char *dashboard_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	        {".html", "text/html; charset=utf-8"},
	        {".js", "text/javascript; charset=utf-8"},
	        {".css", "text/css; charset=utf-8"},
	        {".svg", "image/svg+xml"},
	        {".png", "image/png"},
	        {".ico", "image/x-icon"},
	        {".map", "application/json"},
	        {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* A name the dashboard may serve: letters, digits, '-', '_' and dots, not
 * starting with a dot (no hidden files, no "..", no '/'). */
static bool dashboard_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(((dashboard_file_t *)0)->name) ||
	    name[0] == '.')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
	                    "YZ0123456789-_.") == n;
}

static int dashboard_load_file(dashboard_t *d, const char *dir,
                               const char *name)
{
	dashboard_file_t *f = &d->files[d->nfiles];
	char path[4200];
	FILE *fp;
	long n;

	f->type = dashboard_type(name);
	if (!dashboard_name_ok(name) || f->type == NULL)
		return 0; /* not ours to serve */
	if (d->nfiles == DASHBOARD_MAX_FILES)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		return -1;
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
	    n > DASHBOARD_MAX_BYTES || fseek(fp, 0, SEEK_SET) != 0 ||
	    (f->body = malloc((size_t)n + 1)) == NULL) {
		fclose(fp);
		return -1;
	}
	if (fread(f->body, 1, (size_t)n, fp) != (size_t)n) {
		free(f->body);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	f->len = (size_t)n;
	snprintf(f->name, sizeof(f->name), "%s", name);
	char hex[65];

	vox_sha256_hex(f->body, f->len, hex);
	snprintf(f->etag, sizeof(f->etag), "\"%s\"", hex);
	snprintf(f->gz_etag, sizeof(f->gz_etag), "\"%s-gz\"", hex);
	if (strncmp(f->type, "text/", 5) == 0 ||
	    strcmp(f->type, "image/svg+xml") == 0 ||
	    strcmp(f->type, "application/json") == 0) {
		if (vox_gzip(f->body, f->len, 9, &f->gz, &f->gzlen, NULL) !=
		            0 ||
		    f->gzlen >= f->len) {
			free(f->gz);
			f->gz = NULL;
		}
	}
	d->nfiles++;
	return 0;
}

dashboard_t *dashboard_load(const char *dir)
{
	dashboard_t *d = calloc(1, sizeof(*d));
	DIR *dh;
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return NULL;
	dh = opendir(dir);
	if (dh == NULL) {
		vox_log(VOX_LOG_WARN,
		        "dashboard not built: /dashboard answers 503 "
		        "(make builds it)",
		        "dir", dir, NULL);
		return d;
	}
	while (rc == 0 && (de = readdir(dh)) != NULL)
		rc = dashboard_load_file(d, dir, de->d_name);
	closedir(dh);
	if (rc != 0)
		vox_log(VOX_LOG_WARN, "dashboard: a file could not be loaded",
		        "dir", dir, NULL);
	return d;
}

void dashboard_free(dashboard_t *d)
{
	if (d == NULL)
		return;
	for (int i = 0; i < d->nfiles; i++) {
		free(d->files[i].body);
		free(d->files[i].gz);
	}
	free(d);
}

static const dashboard_file_t *dashboard_find(const dashboard_t *d,
                                              const char *name)
{
	for (int i = 0; d && i < d->nfiles; i++)
		if (strcmp(d->files[i].name, name) == 0)
			return &d->files[i];
	return NULL;
}

static void dashboard_headers(vox_http_req_t *req)
{
	vox_http_add_header(req, "Content-Security-Policy", dashboard_csp);
	vox_http_add_header(req, "X-Content-Type-Options", "nosniff");
	vox_http_add_header(req, "Referrer-Policy", "no-referrer");
	vox_http_add_header(req, "X-Frame-Options", "DENY");
}

/* Whether the client takes gzip: a "gzip" coding in Accept-Encoding whose
 * q is not 0 (RFC 9110 12.5.3). */
static bool dashboard_takes_gzip(const char *ae)
{
	const char *p = ae;

	while (p != NULL && (p = strcasestr(p, "gzip")) != NULL) {
		const char *end = p + 4;
		bool start = p == ae || p[-1] == ' ' || p[-1] == ',';

		p = end;
		if (!start ||
		    (*end != '\0' && *end != ',' && *end != ';' && *end != ' '))
			continue;
		end += strspn(end, " ");
		if (*end == ';') {
			const char *q = strstr(end, "q=");
			const char *comma = strchr(end, ',');

			if (q != NULL && (comma == NULL || q < comma) &&
			    strtod(q + 2, NULL) <= 0)
				return false;
		}
		return true;
	}
	return false;
}

static void dashboard_send(vox_http_req_t *req, const dashboard_file_t *f,
                           const char *cache)
{
	const char *inm = vox_http_header(req, "If-None-Match");
	bool gz = f->gz != NULL &&
	          dashboard_takes_gzip(vox_http_header(req, "Accept-Encoding"));
	const char *etag = gz ? f->gz_etag : f->etag;

	dashboard_headers(req);
	vox_http_add_header(req, "Cache-Control", cache);
	vox_http_add_header(req, "ETag", etag);
	if (f->gz != NULL)
		vox_http_add_header(req, "Vary", "Accept-Encoding");
	if (inm != NULL && strstr(inm, etag) != NULL) {
		vox_http_reply(req, 304, f->type, "", 0);
		return;
	}
	if (gz) {
		vox_http_add_header(req, "Content-Encoding", "gzip");
		vox_http_reply(req, 200, f->type, f->gz, f->gzlen);
		return;
	}
	vox_http_reply(req, 200, f->type, f->body, f->len);
}

/* GET /dashboard: the page itself (its routes are fragments, #/numbers). */
void ingress_dashboard_index(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	const dashboard_file_t *f = dashboard_find(in->dashboard, "index.html");

	if (f == NULL) {
		vox_http_reply_error(req, 503, "dashboard_unavailable",
		                     "the dashboard is not built (make builds "
		                     "it into VOX_DASHBOARD_DIR)",
		                     NULL);
		return;
	}
	dashboard_send(req, f, "no-cache");
}

/* GET /dashboard/{file}: a bundle, named by its content's hash. */
void ingress_dashboard_file(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	const char *name = vox_http_param(req, "file");
	const dashboard_file_t *f = NULL;

	if (name != NULL && dashboard_name_ok(name))
		f = dashboard_find(in->dashboard, name);
	if (f == NULL) {
		vox_http_reply_error(req, 404, "route_not_found",
		                     "no such dashboard file", NULL);
		return;
	}
	dashboard_send(req, f,
	               strcmp(name, "index.html") == 0
	                       ? "no-cache"
	                       : "public, max-age=31536000, immutable");
}
