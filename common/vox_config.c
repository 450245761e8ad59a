/*
 * vox_config: applies a binary's table of settings from the environment,
 * prints it for --help, and stops the program on a bad value (exit 2).
 *
 * An empty variable counts as unset: compose files and shell scripts
 * often pass VAR= for "not configured".
 */
#include "vox_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The allowed range as text, for errors and the usage table. */
static void range_text(const vox_cfg_opt_t *opt, char *out, size_t outlen)
{
	switch (opt->type) {
	case VOX_CFG_INT:
		if (opt->min == 0 && opt->max == 0)
			snprintf(out, outlen, "any integer");
		else
			snprintf(out, outlen, "%ld..%ld", opt->min, opt->max);
		break;
	case VOX_CFG_BOOL:
		snprintf(out, outlen, "true/false");
		break;
	case VOX_CFG_STRING:
		if (opt->max > 0)
			snprintf(out, outlen, "length %ld..%ld",
			         opt->min > 0 ? opt->min : 0, opt->max);
		else if (opt->min > 0)
			snprintf(out, outlen, "length >= %ld", opt->min);
		else
			snprintf(out, outlen, "any");
		break;
	}
}

static int parse_int(const vox_cfg_opt_t *opt, const char *value,
                     vox_error_t *err)
{
	char range[64];
	char *end;
	long number;

	range_text(opt, range, sizeof(range));
	/* strtol would skip leading blanks; a value with them is a typo */
	if (!(value[0] == '-' || value[0] == '+' ||
	      (value[0] >= '0' && value[0] <= '9')))
		goto out_not_integer;
	errno = 0;
	number = strtol(value, &end, 10);
	if (end == value || *end != '\0' || (errno != 0 && errno != ERANGE))
		goto out_not_integer;
	if (errno == ERANGE || (!(opt->min == 0 && opt->max == 0) &&
	                        (number < opt->min || number > opt->max)))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: \"%.64s\" is out of range (allowed "
		                     "%s)",
		                     opt->env, value, range);
	*(long *)opt->target = number;
	return 0;

out_not_integer:
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "%s: \"%.64s\" is not an integer (allowed %s)",
	                     opt->env, value, range);
}

static int parse_bool(const vox_cfg_opt_t *opt, const char *value,
                      vox_error_t *err)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*(bool *)opt->target = true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*(bool *)opt->target = false;
			return 0;
		}
	}
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "%s: \"%.64s\" is not a boolean (allowed "
	                     "1/0, true/false, yes/no, on/off)",
	                     opt->env, value);
}

/* STRING limits: min/max length, 0 meaning no limit on that side. */
static int parse_string(const vox_cfg_opt_t *opt, const char *value,
                        vox_error_t *err)
{
	size_t len = strlen(value);
	char range[64];

	range_text(opt, range, sizeof(range));
	/* the value itself is not echoed: strings hold passwords and URLs
	 * with credentials */
	if (opt->min > 0 && len < (size_t)opt->min)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: value is too short, %zu bytes "
		                     "(allowed %s)",
		                     opt->env, len, range);
	if (opt->max > 0 && len > (size_t)opt->max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: value is too long, %zu bytes "
		                     "(allowed %s)",
		                     opt->env, len, range);
	*(const char **)opt->target = value;
	return 0;
}

int vox_config_parse(const vox_cfg_opt_t *opts, size_t nopts, vox_error_t *err)
{
	for (size_t i = 0; i < nopts; i++) {
		const vox_cfg_opt_t *opt = &opts[i];
		const char *value = getenv(opt->env);
		int rc = 0;

		if (value == NULL || value[0] == '\0')
			value = opt->def;
		if (value == NULL)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "%s: required but not set (%s)",
			                     opt->env,
			                     opt->help ? opt->help : "no help");
		switch (opt->type) {
		case VOX_CFG_INT:
			rc = parse_int(opt, value, err);
			break;
		case VOX_CFG_BOOL:
			rc = parse_bool(opt, value, err);
			break;
		case VOX_CFG_STRING:
			rc = parse_string(opt, value, err);
			break;
		default:
			rc = vox_error_set(err, VOX_ERR_INTERNAL, false,
			                   "%s: unknown setting type %d",
			                   opt->env, (int)opt->type);
			break;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static const char *type_name(vox_cfg_type_t type)
{
	switch (type) {
	case VOX_CFG_STRING:
		return "string";
	case VOX_CFG_INT:
		return "int";
	case VOX_CFG_BOOL:
		return "bool";
	}
	return "?";
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

static const char *default_text(const vox_cfg_opt_t *opt)
{
	if (opt->def == NULL)
		return "(required)";
	return opt->def[0] != '\0' ? opt->def : "\"\"";
}

void vox_config_usage(const char *prog, const char *about,
                      const vox_cfg_opt_t *opts, size_t nopts, void *stream)
{
	FILE *out = stream;
	int env_w = (int)strlen("VARIABLE"), def_w = (int)strlen("DEFAULT");
	int range_w = (int)strlen("RANGE");
	char range[64];

	/* column widths from the widest cell, so the table lines up */
	for (size_t i = 0; i < nopts; i++) {
		env_w = max_int(env_w, (int)strlen(opts[i].env));
		def_w = max_int(def_w, (int)strlen(default_text(&opts[i])));
		range_text(&opts[i], range, sizeof(range));
		range_w = max_int(range_w, (int)strlen(range));
	}
	fprintf(out, "usage: %s [--help]\n", prog);
	if (about != NULL && about[0] != '\0')
		fprintf(out, "\n%s\n", about);
	fprintf(out, "\nSettings are read from the environment:\n\n");
	fprintf(out, "  %-*s  %-6s  %-*s  %-*s  %s\n", env_w, "VARIABLE",
	        "TYPE", def_w, "DEFAULT", range_w, "RANGE", "HELP");
	for (size_t i = 0; i < nopts; i++) {
		range_text(&opts[i], range, sizeof(range));
		fprintf(out, "  %-*s  %-6s  %-*s  %-*s  %s\n", env_w,
		        opts[i].env, type_name(opts[i].type), def_w,
		        default_text(&opts[i]), range_w, range,
		        opts[i].help ? opts[i].help : "");
	}
}

void vox_config_load(const char *prog, const char *about,
                     const vox_cfg_opt_t *opts, size_t nopts, int argc,
                     char **argv)
{
	vox_error_t err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			vox_config_usage(prog, about, opts, nopts, stdout);
			exit(0);
		}
	}
	if (argc > 1) {
		fprintf(stderr, "%s: unknown argument \"%s\"\n\n", prog,
		        argv[1]);
		vox_config_usage(prog, about, opts, nopts, stderr);
		exit(2);
	}
	vox_error_clear(&err);
	if (vox_config_parse(opts, nopts, &err) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err.message);
		exit(2);
	}
}
