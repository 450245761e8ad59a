/*
 * voxctl mail: the mail the local SMTP sink (ops/smtp-sink) accepted, read
 * from its Maildir: VOX_SMTP_MAILDIR, else $VOX_RUN_DIR/smtp/Maildir, else
 * .run/smtp/Maildir (ops/stack's default run dir).
 *   voxctl mail list [--to ADDR] [--json]   date, from, to, subject (oldest
 *                                            first, numbered from 1)
 *   voxctl mail show N|--last                one message as stored
 * list reads only the headers; encoded words (RFC 2047, B and Q) in them
 * are decoded.
 */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "vox_buf.h"
#include "voxctl.h"

#define MAIL_LIST_USAGE "voxctl mail list [--to ADDR] [--json]"
#define MAIL_SHOW_USAGE "voxctl mail show N|--last"
#define MAIL_HEADER_MAX (256 * 1024) /* headers read for list */
#define MAIL_FIELD_MAX  4096

struct mail_entry {
	char path[PATH_MAX];
	const char *name; /* inside path */
	long long mtime;
};

struct mail_headers {
	char date[MAIL_FIELD_MAX];
	char from[MAIL_FIELD_MAX];
	char to[MAIL_FIELD_MAX];
	char rcpt[MAIL_FIELD_MAX]; /* X-RcptTo: the envelope, from the sink */
	char subject[MAIL_FIELD_MAX];
};

static const char *mail_dir(char *buf, size_t len)
{
	const char *dir = getenv("VOX_SMTP_MAILDIR");
	const char *run = getenv("VOX_RUN_DIR");

	if (dir != NULL && dir[0] != '\0')
		return dir;
	if (snprintf(buf, len, "%s/smtp/Maildir",
	             run != NULL && run[0] != '\0' ? run : ".run") >= (int)len)
		return NULL;
	return buf;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct mail_entry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Appends the messages of dir/sub (new or cur) to *list. */
static int scan_sub(const char *dir, const char *sub, struct mail_entry **list,
                    size_t *count, size_t *cap)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
	    (int)sizeof(path))
		return -1;
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct mail_entry *e;

		if (de->d_name[0] == '.')
			continue;
		if (*count == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64;
			struct mail_entry *n =
			        realloc(*list, ncap * sizeof(*n));

			if (n == NULL)
				goto failed;
			*list = n;
			*cap = ncap;
		}
		e = &(*list)[*count];
		if (snprintf(e->path, sizeof(e->path), "%s/%s", path,
		             de->d_name) >= (int)sizeof(e->path) ||
		    stat(e->path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		e->name = e->path + strlen(path) + 1;
		e->mtime = (long long)st.st_mtim.tv_sec * 1000000000LL +
		           st.st_mtim.tv_nsec;
		(*count)++;
	}
	closedir(d);
	return 0;
failed:
	closedir(d);
	return -1;
}

/* The Maildir's messages, oldest first; NULL (and a message) on failure. */
static struct mail_entry *mail_scan(size_t *count)
{
	char buf[PATH_MAX];
	const char *dir = mail_dir(buf, sizeof(buf));
	struct mail_entry *list = NULL;
	size_t cap = 0;

	*count = 0;
	if (dir == NULL || scan_sub(dir, "new", &list, count, &cap) != 0 ||
	    scan_sub(dir, "cur", &list, count, &cap) != 0) {
		fprintf(stderr,
		        "voxctl: cannot read the Maildir %s (set "
		        "VOX_SMTP_MAILDIR, or VOX_RUN_DIR of the stack whose "
		        "smtp sink runs)\n",
		        dir ? dir : "(path too long)");
		free(list);
		return NULL;
	}
	if (*count > 0)
		qsort(list, *count, sizeof(*list), entry_cmp);
	else if (list == NULL)
		list = calloc(1, sizeof(*list));
	return list;
}

/* One encoded word's text ("=?charset?B|Q?text?=") decoded into out. */
static void decode_word(char enc, const char *text, size_t len, vox_buf_t *out)
{
	if (enc == 'B' || enc == 'b') {
		unsigned char *raw = malloc(len / 4 * 3 + 3);
		int n;

		if (raw == NULL || len % 4 != 0 ||
		    (n = EVP_DecodeBlock(raw, (const unsigned char *)text,
		                         (int)len)) < 0) {
			vox_buf_add(out, text, len);
		} else {
			while (n > 0 && len > 0 && text[len - 1] == '=') {
				n--; /* EVP_DecodeBlock counts the padding */
				len--;
			}
			vox_buf_add(out, raw, (size_t)n);
		}
		free(raw);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '_') {
			vox_buf_add(out, " ", 1);
		} else if (text[i] == '=' && i + 2 < len &&
		           isxdigit((unsigned char)text[i + 1]) &&
		           isxdigit((unsigned char)text[i + 2])) {
			char hex[3] = {text[i + 1], text[i + 2], '\0'};
			unsigned char c = (unsigned char)strtoul(hex, NULL, 16);

			vox_buf_add(out, &c, 1);
			i += 2;
		} else {
			vox_buf_add(out, text + i, 1);
		}
	}
}

/* value with its encoded words decoded and control characters shown as
 * '?', into out (at most outlen - 1 bytes). */
static void header_text(const char *value, char *out, size_t outlen)
{
	vox_buf_t buf;
	const char *p = value;
	size_t n;

	vox_buf_init(&buf, MAIL_FIELD_MAX * 2);
	while (*p != '\0') {
		const char *q1, *q2, *end;

		if (p[0] == '=' && p[1] == '?' && (q1 = strchr(p + 2, '?')) &&
		    q1[1] != '\0' && q1[2] == '?' &&
		    (end = strstr(q1 + 3, "?=")) != NULL) {
			q2 = q1 + 3;
			decode_word(q1[1], q2, (size_t)(end - q2), &buf);
			p = end + 2;
			/* whitespace between two encoded words is dropped */
			n = strspn(p, " \t");
			if (p[n] == '=' && p[n + 1] == '?')
				p += n;
			continue;
		}
		vox_buf_add(&buf, p++, 1);
	}
	n = 0;
	for (size_t i = 0; buf.err == 0 && i < buf.len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)buf.data[i];

		out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[n] = '\0';
	vox_buf_free(&buf);
}

static void set_header(struct mail_headers *h, const char *line)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
	        {"date", offsetof(struct mail_headers, date)},
	        {"from", offsetof(struct mail_headers, from)},
	        {"to", offsetof(struct mail_headers, to)},
	        {"x-rcptto", offsetof(struct mail_headers, rcpt)},
	        {"subject", offsetof(struct mail_headers, subject)},
	};
	const char *colon = strchr(line, ':');

	if (colon == NULL)
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *dst = (char *)h + fields[i].off;

		if ((size_t)(colon - line) == strlen(fields[i].name) &&
		    strncasecmp(line, fields[i].name, (size_t)(colon - line)) ==
		            0 &&
		    dst[0] == '\0') {
			header_text(colon + 1 + strspn(colon + 1, " \t"), dst,
			            MAIL_FIELD_MAX);
			return;
		}
	}
}

/* The headers of one message (folded lines joined). */
static int read_headers(const char *path, struct mail_headers *h)
{
	vox_buf_t field;
	char line[8192];
	size_t total = 0;
	FILE *f = fopen(path, "r");

	memset(h, 0, sizeof(*h));
	if (f == NULL)
		return -1;
	vox_buf_init(&field, MAIL_FIELD_MAX * 4);
	while (total < MAIL_HEADER_MAX && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");

		total += strlen(line);
		if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
			vox_buf_add(&field, " ", 1);
			vox_buf_add(&field, line + strspn(line, " \t"),
			            len - strspn(line, " \t"));
			continue;
		}
		if (field.len > 0 && field.err == 0)
			set_header(h, field.data);
		vox_buf_reset(&field);
		if (len == 0)
			break; /* end of the headers */
		vox_buf_add(&field, line, len);
	}
	if (field.len > 0 && field.err == 0)
		set_header(h, field.data);
	vox_buf_free(&field);
	fclose(f);
	return 0;
}

static bool mail_matches(const struct mail_headers *h, const char *to)
{
	return to == NULL || strcasestr(h->to, to) != NULL ||
	       strcasestr(h->rcpt, to) != NULL;
}

static int print_json_list(json_t *rows)
{
	int rc = json_dumpf(rows, stdout, JSON_INDENT(2)) == 0 &&
	                         fputc('\n', stdout) != EOF
	                 ? VOXCTL_OK
	                 : VOXCTL_FAILED;

	json_decref(rows);
	return rc;
}

static int mail_list(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"to", required_argument, NULL, 't'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *to = NULL;
	struct mail_entry *list;
	struct mail_headers h;
	json_t *rows = NULL;
	bool json = false;
	size_t count;
	int opt;

	(void)cfg;
	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 't') {
			to = optarg;
		} else if (opt == 'j') {
			json = true;
		} else if (opt == 'h') {
			printf("usage: %s\n", MAIL_LIST_USAGE);
			return VOXCTL_OK;
		} else {
			return voxctl_bad_option(MAIL_LIST_USAGE, opt, argv);
		}
	}
	if (argc != optind)
		return voxctl_usage_error(MAIL_LIST_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	list = mail_scan(&count);
	if (list == NULL)
		return VOXCTL_FAILED;
	if (json)
		rows = json_array();
	for (size_t i = 0; i < count; i++) {
		if (read_headers(list[i].path, &h) != 0 ||
		    !mail_matches(&h, to))
			continue;
		if (json)
			json_array_append_new(
			        rows,
			        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}",
			                  "n", (json_int_t)(i + 1), "file",
			                  list[i].name, "date", h.date, "from",
			                  h.from, "to", h.to, "rcpt_to", h.rcpt,
			                  "subject", h.subject));
		else
			printf("%-4zu %-31s %-28s %-28s %s\n", i + 1, h.date,
			       h.from, h.to[0] ? h.to : h.rcpt, h.subject);
	}
	free(list);
	if (json)
		return print_json_list(rows);
	return fflush(stdout) == 0 ? VOXCTL_OK : VOXCTL_FAILED;
}

static int mail_show(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct mail_entry *list;
	char chunk[65536];
	size_t count, n, index;
	int rc = VOXCTL_OK;
	char *end;
	FILE *f;

	(void)cfg;
	if (argc == 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s\n", MAIL_SHOW_USAGE);
		return VOXCTL_OK;
	}
	if (argc != 2)
		return voxctl_usage_error(MAIL_SHOW_USAGE,
		                          "expected N or --last");
	index = 0; /* --last */
	if (strcmp(argv[1], "--last") != 0) {
		unsigned long long v = strtoull(argv[1], &end, 10);

		if (argv[1][0] < '0' || argv[1][0] > '9' || *end != '\0' ||
		    v == 0 || v > SIZE_MAX)
			return voxctl_usage_error(
			        MAIL_SHOW_USAGE,
			        "N \"%s\" is not a message number "
			        "(1, 2, ... as mail list shows)",
			        argv[1]);
		index = (size_t)v;
	}
	list = mail_scan(&count);
	if (list == NULL)
		return VOXCTL_FAILED;
	if (index == 0)
		index = count;
	if (index == 0 || index > count) {
		fprintf(stderr,
		        "voxctl: no message %zu (the Maildir has %zu)\n", index,
		        count);
		free(list);
		return VOXCTL_FAILED;
	}
	f = fopen(list[index - 1].path, "rb");
	if (f == NULL) {
		fprintf(stderr, "voxctl: cannot open %s\n",
		        list[index - 1].path);
		free(list);
		return VOXCTL_FAILED;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (fwrite(chunk, 1, n, stdout) != n)
			rc = VOXCTL_FAILED;
	if (ferror(f) || fflush(stdout) != 0)
		rc = VOXCTL_FAILED;
	fclose(f);
	free(list);
	return rc;
}

static const struct voxctl_sub mail_subs[] = {
        {"list", MAIL_LIST_USAGE, mail_list},
        {"show", MAIL_SHOW_USAGE, mail_show},
};

int voxctl_mail(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(mail_subs,
	                       sizeof(mail_subs) / sizeof(mail_subs[0]), cfg,
	                       argc, argv);
}
