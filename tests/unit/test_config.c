/*
 * Tests of vox_config: values from the environment and defaults, every
 * kind of bad value with its message, the usage table, and the exit codes
 * of vox_config_load() (run in a forked child).
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vox_config.h"

static struct {
	long port;
	long workers;
	long offset;
	bool debug;
	const char *url;
	const char *name;
} cfg;

static vox_cfg_opt_t opts[] = {
        {"VOX_INGRESS_PORT", VOX_CFG_INT, "18080", 1, 65535,
         "TCP port of the HTTP API", &cfg.port},
        {"VOX_WORKERS", VOX_CFG_INT, "4", 1, 64, "worker threads",
         &cfg.workers},
        {"VOX_OFFSET", VOX_CFG_INT, "0", 0, 0, "any integer", &cfg.offset},
        {"VOX_DEBUG", VOX_CFG_BOOL, "false", 0, 0, "verbose logs", &cfg.debug},
        {"VOX_TEST_URL", VOX_CFG_STRING, NULL, 0, 0, "where things live",
         &cfg.url},
        {"VOX_NAME", VOX_CFG_STRING, "voxlink", 3, 8, "a short name",
         &cfg.name},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void setup(void)
{
	static const char *const names[] = {"VOX_INGRESS_PORT", "VOX_WORKERS",
	                                    "VOX_OFFSET", "VOX_DEBUG",
	                                    "VOX_NAME"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
	setenv("VOX_TEST_URL", "redis://localhost:6379", 1);
	memset(&cfg, 0, sizeof(cfg));
}

TestSuite(config, .init = setup);

/* Parses expecting failure with exactly this message. */
static void assert_bad(const char *env, const char *value, const char *want)
{
	vox_error_t err;

	setenv(env, value, 1);
	vox_error_clear(&err);
	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), VOX_ERR_INVALID,
	             "%s=\"%s\" accepted", env, value);
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message, want);
	unsetenv(env);
}

Test(config, defaults)
{
	vox_error_t err;

	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), 0, "%s", err.message);
	cr_assert_eq(cfg.port, 18080);
	cr_assert_eq(cfg.workers, 4);
	cr_assert_eq(cfg.offset, 0);
	cr_assert_eq(cfg.debug, false);
	cr_assert_str_eq(cfg.url, "redis://localhost:6379");
	cr_assert_str_eq(cfg.name, "voxlink");
}

Test(config, environment_wins)
{
	vox_error_t err;

	setenv("VOX_INGRESS_PORT", "65535", 1);
	setenv("VOX_WORKERS", "+1", 1);
	setenv("VOX_OFFSET", "-9223372036854775808", 1);
	setenv("VOX_DEBUG", "ON", 1);
	setenv("VOX_NAME", "abc", 1);
	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), 0, "%s", err.message);
	cr_assert_eq(cfg.port, 65535);
	cr_assert_eq(cfg.workers, 1);
	cr_assert_eq(cfg.offset, -9223372036854775807L - 1);
	cr_assert_eq(cfg.debug, true);
	cr_assert_str_eq(cfg.name, "abc");
}

Test(config, empty_means_unset)
{
	vox_error_t err;

	setenv("VOX_INGRESS_PORT", "", 1);
	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), 0, "%s", err.message);
	cr_assert_eq(cfg.port, 18080);
	setenv("VOX_TEST_URL", "", 1);
	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), VOX_ERR_INVALID);
	cr_assert_str_eq(err.message,
	                 "VOX_TEST_URL: required but not set (where things "
	                 "live)");
}

Test(config, bool_spellings)
{
	static const char *const yes[] = {"1", "true", "TRUE", "yes", "on"};
	static const char *const no[] = {"0", "false", "No", "off", "OFF"};
	vox_error_t err;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		setenv("VOX_DEBUG", yes[i], 1);
		cfg.debug = false;
		cr_assert_eq(vox_config_parse(opts, NOPTS, &err), 0);
		cr_assert(cfg.debug, "%s", yes[i]);
		setenv("VOX_DEBUG", no[i], 1);
		cr_assert_eq(vox_config_parse(opts, NOPTS, &err), 0);
		cr_assert_not(cfg.debug, "%s", no[i]);
	}
}

Test(config, bad_integers)
{
	assert_bad("VOX_INGRESS_PORT", "abc",
	           "VOX_INGRESS_PORT: \"abc\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "80x",
	           "VOX_INGRESS_PORT: \"80x\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", " 80",
	           "VOX_INGRESS_PORT: \" 80\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "80 ",
	           "VOX_INGRESS_PORT: \"80 \" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "0x50",
	           "VOX_INGRESS_PORT: \"0x50\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "-",
	           "VOX_INGRESS_PORT: \"-\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "8.5",
	           "VOX_INGRESS_PORT: \"8.5\" is not an integer (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "0",
	           "VOX_INGRESS_PORT: \"0\" is out of range (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "65536",
	           "VOX_INGRESS_PORT: \"65536\" is out of range (allowed "
	           "1..65535)");
	assert_bad("VOX_INGRESS_PORT", "-1",
	           "VOX_INGRESS_PORT: \"-1\" is out of range (allowed "
	           "1..65535)");
	assert_bad("VOX_OFFSET", "99999999999999999999",
	           "VOX_OFFSET: \"99999999999999999999\" is out of range "
	           "(allowed any integer)");
}

Test(config, long_bad_value_is_cut)
{
	char value[300];
	vox_error_t err;

	memset(value, '9', sizeof(value) - 1);
	value[0] = 'x';
	value[sizeof(value) - 1] = '\0';
	setenv("VOX_WORKERS", value, 1);
	cr_assert_eq(vox_config_parse(opts, NOPTS, &err), VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "(allowed 1..64)"), "%s",
	                   err.message);
}

Test(config, bad_bool)
{
	assert_bad("VOX_DEBUG", "maybe",
	           "VOX_DEBUG: \"maybe\" is not a boolean (allowed 1/0, "
	           "true/false, yes/no, on/off)");
	assert_bad("VOX_DEBUG", "2",
	           "VOX_DEBUG: \"2\" is not a boolean (allowed 1/0, "
	           "true/false, yes/no, on/off)");
}

Test(config, string_length_without_echo)
{
	assert_bad("VOX_NAME", "ab",
	           "VOX_NAME: value is too short, 2 bytes (allowed length "
	           "3..8)");
	assert_bad("VOX_NAME", "secret-password",
	           "VOX_NAME: value is too long, 15 bytes (allowed length "
	           "3..8)");
}

Test(config, bad_default_is_reported)
{
	long port;
	vox_cfg_opt_t broken[] = {
	        {"VOX_BROKEN", VOX_CFG_INT, "eighty", 1, 10, "", &port},
	};
	vox_error_t err;

	unsetenv("VOX_BROKEN");
	cr_assert_eq(vox_config_parse(broken, 1, &err), VOX_ERR_INVALID);
	cr_assert_str_eq(err.message, "VOX_BROKEN: \"eighty\" is not an "
	                              "integer (allowed 1..10)");
}

Test(config, string_min_only)
{
	const char *token = NULL;
	vox_cfg_opt_t opt[] = {
	        {"VOX_TOKEN", VOX_CFG_STRING, NULL, 16, 0, "", &token},
	};
	vox_error_t err;

	setenv("VOX_TOKEN", "0123456789abcdef0123", 1);
	cr_assert_eq(vox_config_parse(opt, 1, &err), 0, "%s", err.message);
	cr_assert_str_eq(token, "0123456789abcdef0123");
	setenv("VOX_TOKEN", "short", 1);
	cr_assert_eq(vox_config_parse(opt, 1, &err), VOX_ERR_INVALID);
	cr_assert_str_eq(err.message, "VOX_TOKEN: value is too short, 5 bytes "
	                              "(allowed length >= 16)");
}

Test(config, usage_table)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	cr_assert_not_null(out);
	vox_config_usage("ingress", "Accepts operations over HTTP.", opts,
	                 NOPTS, out);
	fclose(out);
	cr_assert(strncmp(text, "usage: ingress", 14) == 0, "%s", text);
	cr_assert_not_null(strstr(text, "Accepts operations over HTTP."));
	cr_assert_not_null(strstr(text, "  VARIABLE          TYPE    DEFAULT"
	                                "     RANGE        HELP\n"),
	                   "%s", text);
	cr_assert_not_null(strstr(text, "  VOX_INGRESS_PORT  int     18080"
	                                "       1..65535     TCP port of "
	                                "the HTTP API\n"),
	                   "%s", text);
	cr_assert_not_null(strstr(text, "  VOX_TEST_URL      string  "
	                                "(required)  any          where"),
	                   "%s", text);
	cr_assert_not_null(strstr(text, "  VOX_DEBUG         bool    false"
	                                "       true/false"),
	                   "%s", text);
	cr_assert_not_null(strstr(text, "length 3..8"), "%s", text);
	free(text);
}

struct outcome {
	int status;
	char out[4096];
	char err[4096];
};

/* Reads fd to the end, dropping lines a sanitizer runtime adds ("==pid==")
 * when a forked child of a threaded process exits. */
static void drain(int fd, char *buf, size_t size)
{
	size_t used = 0;
	ssize_t n;
	char *line;

	while (used + 1 < size &&
	       (n = read(fd, buf + used, size - 1 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	line = buf;
	while (*line != '\0') {
		char *next = strchr(line, '\n');

		next = next != NULL ? next + 1 : line + strlen(line);
		if (strncmp(line, "==", 2) == 0)
			memmove(line, next, strlen(next) + 1);
		else
			line = next;
	}
}

/* Runs vox_config_load() in a child and collects exit status and output.
 * Output is small, so reading the pipes one after the other is safe. */
static struct outcome run_load(int argc, char **argv)
{
	struct outcome result;
	int out_pipe[2], err_pipe[2], status;
	pid_t pid;

	cr_assert_eq(pipe(out_pipe), 0);
	cr_assert_eq(pipe(err_pipe), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		close(out_pipe[0]);
		close(err_pipe[0]);
		vox_config_load("ingress", "About.", opts, NOPTS, argc, argv);
		_exit(77); /* returned: config was fine */
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	drain(out_pipe[0], result.out, sizeof(result.out));
	drain(err_pipe[0], result.err, sizeof(result.err));
	close(out_pipe[0]);
	close(err_pipe[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	result.status = WEXITSTATUS(status);
	return result;
}

TestSuite(config_load, .init = setup);

Test(config_load, returns_when_valid)
{
	char *argv[] = {"ingress", NULL};
	struct outcome result = run_load(1, argv);

	cr_assert_eq(result.status, 77);
	cr_assert_str_empty(result.err);
}

Test(config_load, help_goes_to_stdout_with_exit_0)
{
	char *argv[] = {"ingress", "--help", NULL};
	char *short_argv[] = {"ingress", "-h", NULL};
	struct outcome result = run_load(2, argv);

	cr_assert_eq(result.status, 0);
	cr_assert_not_null(strstr(result.out, "usage: ingress"));
	cr_assert_not_null(strstr(result.out, "VOX_INGRESS_PORT"));
	cr_assert_str_empty(result.err);
	result = run_load(2, short_argv);
	cr_assert_eq(result.status, 0);
	cr_assert_not_null(strstr(result.out, "usage: ingress"));
}

Test(config_load, help_wins_even_with_bad_config)
{
	char *argv[] = {"ingress", "--help", NULL};
	struct outcome result;

	setenv("VOX_INGRESS_PORT", "abc", 1);
	result = run_load(2, argv);
	cr_assert_eq(result.status, 0);
}

Test(config_load, unknown_argument_exits_2)
{
	char *argv[] = {"ingress", "--port=1", NULL};
	struct outcome result = run_load(2, argv);

	cr_assert_eq(result.status, 2);
	cr_assert_str_empty(result.out);
	cr_assert_not_null(strstr(result.err, "unknown argument \"--port=1\""),
	                   "%s", result.err);
	cr_assert_not_null(strstr(result.err, "usage: ingress"));
}

Test(config_load, bad_value_exits_2_with_message)
{
	char *argv[] = {"ingress", NULL};
	struct outcome result;

	setenv("VOX_INGRESS_PORT", "abc", 1);
	result = run_load(1, argv);
	cr_assert_eq(result.status, 2);
	cr_assert_str_eq(result.err, "ingress: VOX_INGRESS_PORT: \"abc\" is "
	                             "not an integer (allowed 1..65535)\n");
	cr_assert_str_empty(result.out);
}

Test(config_load, missing_required_exits_2)
{
	char *argv[] = {"ingress", NULL};
	struct outcome result;

	unsetenv("VOX_TEST_URL");
	result = run_load(1, argv);
	cr_assert_eq(result.status, 2);
	cr_assert_not_null(strstr(result.err, "VOX_TEST_URL: required"), "%s",
	                   result.err);
}
