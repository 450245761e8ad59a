/* vox_log: JSON-lines logging, one write(2) per line. */
#include "vox_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_service[64] = "vox";
static vox_log_level_t log_min_level = VOX_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vox_log_init(const char *service, vox_log_level_t min_level)
{
	snprintf(log_service, sizeof(log_service), "%s", service);
	log_min_level = min_level;
}

int vox_log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

static void log_time(char *out, size_t outlen)
{
	struct timespec now;
	struct tm tm;
	char date[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03ldZ", date, now.tv_nsec / 1000000L);
}

/* jansson refuses invalid UTF-8; a log line must never lose a field, so
 * such text is kept with its non-ASCII bytes replaced by '?'. */
static json_t *log_str(const char *text)
{
	json_t *value = json_string(text);
	char *copy;

	if (value != NULL)
		return value;
	copy = strdup(text);
	if (copy == NULL)
		return json_string("(out of memory)");
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	value = json_string(copy);
	free(copy);
	return value;
}

static void log_emit(vox_log_level_t level, const char *msg, va_list *pairs)
{
	char when[48];
	json_t *line;
	char *text;
	size_t len;

	line = json_object();
	if (line == NULL)
		return;
	log_time(when, sizeof(when));
	json_object_set_new(line, "time", json_string(when));
	if ((unsigned)level > VOX_LOG_ERROR)
		level = VOX_LOG_ERROR;
	json_object_set_new(line, "level", json_string(level_names[level]));
	json_object_set_new(line, "service", json_string(log_service));
	json_object_set_new(line, "msg", log_str(msg ? msg : ""));
	if (pairs != NULL) {
		const char *key;

		while ((key = va_arg(*pairs, const char *)) != NULL) {
			const char *val = va_arg(*pairs, const char *);

			json_object_set_new(line, key,
			                    val ? log_str(val) : json_null());
		}
	}
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (text == NULL)
		return;
	len = strlen(text);
	text[len] = '\n'; /* overwrite the NUL: one write, one line */
	if (write(STDERR_FILENO, text, len + 1) < 0) {
		/* nowhere left to report to */
	}
	free(text);
}

void vox_log(vox_log_level_t level, const char *msg, ...)
{
	va_list ap;

	if (level < log_min_level)
		return;
	va_start(ap, msg);
	log_emit(level, msg, &ap);
	va_end(ap);
}

void vox_logf(vox_log_level_t level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level < log_min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(level, msg, NULL);
}
