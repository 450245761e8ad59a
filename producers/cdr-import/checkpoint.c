/*
 * cdr-import checkpoints: where an interrupted import resumes. One small
 * JSON file per imported file, replaced atomically (temp file, fsync,
 * rename, fsync of the directory) so a crash leaves the old or the new
 * one, never half of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "vox_crypto.h"

#define HEAD_BYTES 65536

static int head_hash(int fd, char out[65], vox_error_t *err)
{
	static unsigned char buf[HEAD_BYTES];
	ssize_t n;

	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false, "read: %s",
		                     strerror(errno));
	vox_sha256_hex(buf, (size_t)n, out);
	return 0;
}

int checkpoint_init(checkpoint_t *cp, const char *file, const char *dir,
                    const char *carrier, vox_error_t *err)
{
	char dir_copy[4096], base_copy[4096];
	const char *base, *where;
	struct stat st;
	int fd, rc = 0;

	memset(cp, 0, sizeof(*cp));
	if (realpath(file, cp->source) == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     file, strerror(errno));
	snprintf(dir_copy, sizeof(dir_copy), "%s", cp->source);
	snprintf(base_copy, sizeof(base_copy), "%s", cp->source);
	where = dir ? dir : dirname(dir_copy);
	base = basename(base_copy);
	if (snprintf(cp->path, sizeof(cp->path), "%s/%s.checkpoint", where,
	             base) >= (int)sizeof(cp->path) ||
	    snprintf(cp->rejects, sizeof(cp->rejects), "%s/%s.rejected.csv",
	             where, base) >= (int)sizeof(cp->rejects))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: path too long", file);
	snprintf(cp->carrier, sizeof(cp->carrier), "%s", carrier);
	fd = open(cp->source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     file, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s", file,
		                   strerror(errno));
		goto out_close;
	}
	cp->size = st.st_size;
	cp->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
	               st.st_mtim.tv_nsec;
	rc = head_hash(fd, cp->head_sha256, err);
out_close:
	close(fd);
	return rc;
}

/* Says in mismatch why a saved checkpoint is not this file's. */
static bool same_file(const checkpoint_t *cp, json_t *saved, char *mismatch,
                      size_t mismatch_len)
{
	const char *sha =
	        json_string_value(json_object_get(saved, "head_sha256"));
	const char *carrier =
	        json_string_value(json_object_get(saved, "carrier"));

	if (json_integer_value(json_object_get(saved, "size")) != cp->size ||
	    json_integer_value(json_object_get(saved, "mtime_ns")) !=
	            cp->mtime_ns ||
	    sha == NULL || strcmp(sha, cp->head_sha256) != 0) {
		snprintf(mismatch, mismatch_len,
		         "the file changed since the checkpoint was written "
		         "(size, mtime or first 64 KiB differ)");
		return false;
	}
	if (carrier == NULL || strcmp(carrier, cp->carrier) != 0) {
		snprintf(mismatch, mismatch_len,
		         "the checkpoint is for carrier \"%s\"",
		         carrier ? carrier : "?");
		return false;
	}
	return true;
}

int checkpoint_load(checkpoint_t *cp, char *mismatch, size_t mismatch_len,
                    vox_error_t *err)
{
	json_error_t jerr;
	json_t *saved;
	int rc = 0;

	mismatch[0] = '\0';
	if (access(cp->path, F_OK) != 0)
		return 0;
	saved = json_load_file(cp->path, 0, &jerr);
	if (saved == NULL || !json_is_integer(json_object_get(saved, "line")))
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "checkpoint %s cannot be read (%s): remove "
		                   "it or use --restart",
		                   cp->path, saved ? "no line" : jerr.text);
	else if (same_file(cp, saved, mismatch, mismatch_len)) {
		cp->line = (long)json_integer_value(
		        json_object_get(saved, "line"));
		cp->rejects_bytes = json_integer_value(
		        json_object_get(saved, "rejects_bytes"));
		cp->complete = json_is_true(json_object_get(saved, "complete"));
		rc = 1;
	}
	json_decref(saved);
	return rc;
}

static int fsync_dir(const char *path)
{
	char copy[4096];
	int fd, rc;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int checkpoint_save(const checkpoint_t *cp, vox_error_t *err)
{
	char tmp[4200], *text;
	json_t *doc;
	size_t len;
	int fd, rc = 0;

	doc = json_pack("{s:i, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:b}",
	                "version", 1, "source", cp->source, "carrier",
	                cp->carrier, "size", (json_int_t)cp->size, "mtime_ns",
	                (json_int_t)cp->mtime_ns, "head_sha256",
	                cp->head_sha256, "line", (json_int_t)cp->line,
	                "rejects_bytes", (json_int_t)cp->rejects_bytes,
	                "complete", cp->complete);
	text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
	json_decref(doc);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", cp->path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, false, "%s: %s",
		                   tmp, strerror(errno));
		goto out_free;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, false,
		                   "writing %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out_free;
	}
	close(fd);
	if (rename(tmp, cp->path) != 0) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, false,
		                   "rename %s: %s", cp->path, strerror(errno));
		unlink(tmp);
		goto out_free;
	}
	fsync_dir(cp->path);
out_free:
	free(text);
	return rc;
}
