/*
 * vox_json: strict parsing of untrusted JSON and small helpers over jansson.
 *
 * Error messages end up in logs and HTTP responses, which are JSON too, so
 * any text copied from the input into a message is made valid UTF-8 first.
 */
#include "vox_json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int vox_json_depth(const char *buf, size_t len, int max_depth)
{
	bool in_string = false;
	int depth = 0, deepest = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (in_string) {
			if (c == '\\')
				i++; /* the escaped char can't end the string */
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '[':
		case '{':
			depth++;
			if (depth > deepest)
				deepest = depth;
			/* no need to read a huge body once it is refused */
			if (max_depth > 0 && deepest > max_depth)
				return deepest;
			break;
		case ']':
		case '}':
			/* an unbalanced closer is jansson's to report */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return deepest;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. Only
 * needs to be safe, not complete: anything doubtful becomes '?'. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (need > n)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past Unicode */
	if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) ||
	    (need == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp > 0x10ffff)
		return 0;
	return need;
}

/* Copies at most inlen bytes of in as printable valid UTF-8, truncating on
 * a character boundary with "..." when out is too small. */
static void copy_printable(char *out, size_t outlen, const char *in,
                           size_t inlen)
{
	const unsigned char *src = (const unsigned char *)in;
	size_t o = 0, i = 0;

	while (i < inlen) {
		size_t seq = utf8_seq_len(src + i, inlen - i);
		const char *piece = (const char *)src + i;

		if (seq == 0 || (seq == 1 && src[i] < 0x20)) {
			piece = "?";
			seq = 1;
		}
		if (o + seq + 4 > outlen) { /* room for "..." and NUL */
			if (outlen >= 4) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, piece, seq);
		o += seq;
		i += seq;
	}
	if (outlen > 0)
		out[o < outlen ? o : outlen - 1] = '\0';
}

/* jansson's position for a duplicate key is just past the key's closing
 * quote; walk back to its opening quote (one not escaped by an odd run of
 * backslashes). Returns the start offset, or -1. */
static long dup_key_start(const char *buf, size_t end)
{
	if (end < 2 || buf[end - 1] != '"')
		return -1;
	for (size_t i = end - 1; i-- > 0;) {
		size_t slashes = 0;

		if (buf[i] != '"')
			continue;
		while (slashes < i && buf[i - 1 - slashes] == '\\')
			slashes++;
		if (slashes % 2 == 0)
			return (long)i;
	}
	return -1;
}

static void parse_error(const char *buf, size_t len, const json_error_t *jerr,
                        vox_error_t *err)
{
	char what[160];

	if (json_error_code(jerr) == json_error_duplicate_key &&
	    jerr->position > 0 && (size_t)jerr->position <= len) {
		size_t end = (size_t)jerr->position;
		long start = dup_key_start(buf, end);

		if (start >= 0) {
			copy_printable(what, 72, buf + start,
			               end - (size_t)start);
			vox_error_set(err, VOX_ERR_INVALID, false,
			              "duplicate key %s at line %d, column %d",
			              what, jerr->line, jerr->column);
			return;
		}
	}
	/* Not jansson's " near '<token>'": the token may be a secret sent
	 * in the body (a PIN cut short by a missing quote), and the line and
	 * column say where the error is. */
	const char *near = strstr(jerr->text, " near '");

	copy_printable(what, sizeof(what), jerr->text,
	               near != NULL ? (size_t)(near - jerr->text)
	                            : strlen(jerr->text));
	vox_error_set(err, VOX_ERR_INVALID, false,
	              "invalid JSON at line %d, column %d: %s", jerr->line,
	              jerr->column, what);
}

json_t *vox_json_parse(const char *buf, size_t len, int max_depth,
                       vox_error_t *err)
{
	const char *nul;
	json_error_t jerr;
	json_t *value;
	int depth;

	if (buf == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "no JSON body");
		return NULL;
	}
	if (max_depth <= 0)
		max_depth = VOX_JSON_DEFAULT_DEPTH;
	/* jansson would stop at the NUL and report a confusing token */
	nul = memchr(buf, '\0', len);
	if (nul != NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "invalid JSON: NUL byte at offset %zu",
		              (size_t)(nul - buf));
		return NULL;
	}
	/* jansson recurses per level; refuse deep input before it does */
	depth = vox_json_depth(buf, len, max_depth);
	if (depth > max_depth) {
		vox_error_set(err, VOX_ERR_LIMIT, false,
		              "JSON nested deeper than %d levels", max_depth);
		return NULL;
	}
	value = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	                   &jerr);
	if (value == NULL)
		parse_error(buf, len, &jerr, err);
	return value;
}

char *vox_json_dump(const json_t *value)
{
	if (value == NULL)
		return NULL;
	return json_dumps(value,
	                  JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

const char *vox_json_str(const json_t *object, const char *key)
{
	json_t *member = json_object_get(object, key);

	return json_is_string(member) ? json_string_value(member) : NULL;
}

int vox_json_only_keys(const json_t *object, const char *const *allowed,
                       vox_error_t *err)
{
	const char *key;
	json_t *member;

	if (!json_is_object(object))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "expected a JSON object");
	/* the iteration macro wants a non-const object; it only reads */
	json_object_foreach((json_t *)object, key, member)
	{
		const char *const *name;
		char shown[72];

		for (name = allowed; name != NULL && *name != NULL; name++)
			if (strcmp(*name, key) == 0)
				break;
		if (name != NULL && *name != NULL)
			continue;
		copy_printable(shown, sizeof(shown), key, strlen(key));
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unknown key \"%s\"", shown);
	}
	return 0;
}
