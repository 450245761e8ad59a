/*
 * Tests of vox_log: stderr is captured through a pipe and every line must
 * be one JSON object with time, level, service, msg and the context keys.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vox_log.h"

static int capture_read_fd = -1;
static int saved_stderr = -1;

static void capture_start(void)
{
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(saved_stderr, 0);
	cr_assert_geq(dup2(fds[1], STDERR_FILENO), 0);
	close(fds[1]);
	capture_read_fd = fds[0];
}

/* Restores stderr and returns what was logged (lines are small: they fit
 * in the pipe buffer, so reading after the fact cannot block). */
static void capture_end(char *buf, size_t size)
{
	size_t used = 0;
	ssize_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	while (used + 1 < size &&
	       (n = read(capture_read_fd, buf + used, size - 1 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(capture_read_fd);
}

/* Splits captured text into lines, parsing each as a JSON object. */
static size_t parse_lines(char *text, json_t **lines, size_t max)
{
	size_t count = 0;
	char *line = text;

	while (*line != '\0') {
		char *end = strchr(line, '\n');
		json_error_t jerr;

		cr_assert_not_null(end, "last line lacks a newline: %s", line);
		cr_assert_lt(count, max);
		lines[count] = json_loadb(line, (size_t)(end - line), 0, &jerr);
		cr_assert_not_null(lines[count], "not JSON (%s): %.*s",
		                   jerr.text, (int)(end - line), line);
		cr_assert(json_is_object(lines[count]));
		count++;
		line = end + 1;
	}
	return count;
}

static void assert_common(json_t *line, const char *level, const char *service,
                          const char *msg)
{
	const char *when = json_string_value(json_object_get(line, "time"));

	cr_assert_not_null(when);
	/* 2026-11-24T16:02:17.123Z */
	cr_assert_eq(strlen(when), 24, "%s", when);
	cr_assert_eq(when[10], 'T');
	cr_assert_eq(when[19], '.');
	cr_assert_eq(when[23], 'Z');
	cr_assert_str_eq(json_string_value(json_object_get(line, "level")),
	                 level);
	cr_assert_str_eq(json_string_value(json_object_get(line, "service")),
	                 service);
	cr_assert_str_eq(json_string_value(json_object_get(line, "msg")), msg);
}

static const char *member(json_t *line, const char *key)
{
	return json_string_value(json_object_get(line, key));
}

static void free_lines(json_t **lines, size_t count)
{
	for (size_t i = 0; i < count; i++)
		json_decref(lines[i]);
}

Test(log, line_has_fields_and_context)
{
	char text[8192];
	json_t *lines[4];
	size_t count;

	vox_log_init("ingress", VOX_LOG_DEBUG);
	capture_start();
	vox_log(VOX_LOG_INFO, "operation accepted", "operation_id", "op-1",
	        "request_id", "req-9", NULL);
	vox_log(VOX_LOG_ERROR, "consume failed", "topic", "ops", "partition",
	        "3", "offset", "1234", NULL);
	vox_log(VOX_LOG_DEBUG, "no context", NULL);
	capture_end(text, sizeof(text));

	count = parse_lines(text, lines, 4);
	cr_assert_eq(count, 3, "%s", text);
	assert_common(lines[0], "info", "ingress", "operation accepted");
	cr_assert_str_eq(member(lines[0], "operation_id"), "op-1");
	cr_assert_str_eq(member(lines[0], "request_id"), "req-9");
	assert_common(lines[1], "error", "ingress", "consume failed");
	cr_assert_str_eq(member(lines[1], "topic"), "ops");
	cr_assert_str_eq(member(lines[1], "partition"), "3");
	cr_assert_str_eq(member(lines[1], "offset"), "1234");
	assert_common(lines[2], "debug", "ingress", "no context");
	cr_assert_eq(json_object_size(lines[2]), 4, "only the four fields");
	free_lines(lines, count);
}

Test(log, default_service_before_init)
{
	char text[4096];
	json_t *lines[2];
	size_t count;

	/* each test is its own process: init was never called here */
	capture_start();
	vox_log(VOX_LOG_WARN, "hello", NULL);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 2);
	cr_assert_eq(count, 1);
	assert_common(lines[0], "warn", "vox", "hello");
	free_lines(lines, count);
}

Test(log, levels_below_minimum_are_dropped)
{
	char text[4096];
	json_t *lines[4];
	size_t count;

	vox_log_init("worker", VOX_LOG_WARN);
	capture_start();
	vox_log(VOX_LOG_DEBUG, "dropped", NULL);
	vox_log(VOX_LOG_INFO, "dropped", NULL);
	vox_logf(VOX_LOG_INFO, "dropped %d", 1);
	vox_log(VOX_LOG_WARN, "kept", NULL);
	vox_logf(VOX_LOG_ERROR, "kept %d", 2);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 4);
	cr_assert_eq(count, 2, "%s", text);
	assert_common(lines[0], "warn", "worker", "kept");
	assert_common(lines[1], "error", "worker", "kept 2");
	free_lines(lines, count);
}

Test(log, special_characters_stay_on_one_line)
{
	char text[4096];
	json_t *lines[2];
	size_t count;

	vox_log_init("ingress", VOX_LOG_INFO);
	capture_start();
	vox_log(VOX_LOG_INFO, "bad \"input\"\nsecond line\tcaf\xc3\xa9", "body",
	        "{\"a\":\n1}", NULL);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 2);
	cr_assert_eq(count, 1, "a newline leaked into the output: %s", text);
	assert_common(lines[0], "info", "ingress",
	              "bad \"input\"\nsecond line\tcaf\xc3\xa9");
	cr_assert_str_eq(member(lines[0], "body"), "{\"a\":\n1}");
	free_lines(lines, count);
}

Test(log, null_context_value_is_json_null)
{
	char text[4096];
	json_t *lines[2];
	size_t count;

	capture_start();
	vox_log(VOX_LOG_INFO, "x", "account_id", NULL, NULL);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 2);
	cr_assert_eq(count, 1);
	cr_assert(json_is_null(json_object_get(lines[0], "account_id")));
	free_lines(lines, count);
}

Test(log, logf_formats_and_truncates)
{
	char text[8192];
	char big[3000];
	json_t *lines[2];
	size_t count;
	const char *msg;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	vox_logf(VOX_LOG_INFO, "%s=%d", "port", 18080);
	vox_logf(VOX_LOG_INFO, "%s", big);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 2);
	cr_assert_eq(count, 2);
	assert_common(lines[0], "info", "vox", "port=18080");
	msg = member(lines[1], "msg");
	cr_assert_not_null(msg);
	cr_assert_lt(strlen(msg), sizeof(big) - 1, "long messages are cut");
	cr_assert_gt(strlen(msg), 500);
	free_lines(lines, count);
}

Test(log, level_names_parse)
{
	cr_assert_eq(vox_log_level_parse("debug"), VOX_LOG_DEBUG);
	cr_assert_eq(vox_log_level_parse("info"), VOX_LOG_INFO);
	cr_assert_eq(vox_log_level_parse("warn"), VOX_LOG_WARN);
	cr_assert_eq(vox_log_level_parse("error"), VOX_LOG_ERROR);
	cr_assert_eq(vox_log_level_parse("INFO"), -1);
	cr_assert_eq(vox_log_level_parse("warning"), -1);
	cr_assert_eq(vox_log_level_parse(""), -1);
}

Test(log, long_service_name_is_cut)
{
	char text[4096];
	char service[200];
	json_t *lines[2];
	size_t count;

	memset(service, 's', sizeof(service) - 1);
	service[sizeof(service) - 1] = '\0';
	vox_log_init(service, VOX_LOG_INFO);
	capture_start();
	vox_log(VOX_LOG_INFO, "x", NULL);
	capture_end(text, sizeof(text));
	count = parse_lines(text, lines, 2);
	cr_assert_eq(count, 1);
	cr_assert_lt(strlen(member(lines[0], "service")), sizeof(service) - 1);
	free_lines(lines, count);
}

Test(log, invalid_utf8_keeps_every_field)
{
	char buf[4096];
	json_t *lines[4];
	size_t n;

	vox_log_init("svc", VOX_LOG_DEBUG);
	capture_start();
	vox_log(VOX_LOG_INFO, "caf\xe9", "who", "\xff\xfe", NULL);
	capture_end(buf, sizeof(buf));
	n = parse_lines(buf, lines, 4);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(member(lines[0], "msg"), "caf?");
	cr_assert_str_eq(member(lines[0], "who"), "??");
	free_lines(lines, n);
}
