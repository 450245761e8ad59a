/*
 * vox_config: one table per binary describes every setting.
 *
 *   static vox_cfg_opt_t opts[] = {
 *     {"VOX_INGRESS_PORT", VOX_CFG_INT, "18080", 1, 65535,
 *      "TCP port of the HTTP API", &cfg.port},
 *     ...
 *   };
 *
 * Values come from the environment (or the default). `--help` prints the
 * table; a bad value stops the program with a clear message and exit code 2.
 */
#ifndef VOX_CONFIG_H
#define VOX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vox_error.h"

typedef enum vox_cfg_type {
	VOX_CFG_STRING, /* target: const char ** (points at env or default) */
	VOX_CFG_INT,    /* target: long *, checked against [min, max] */
	VOX_CFG_BOOL,   /* target: bool *; 1/0, true/false, yes/no, on/off */
} vox_cfg_type_t;

typedef struct vox_cfg_opt {
	const char *env;
	vox_cfg_type_t type;
	const char *def; /* NULL: required (must be set in the environment) */
	long min, max;   /* INT range; STRING: min/max length (0,0 = any) */
	const char *help;
	void *target;
} vox_cfg_opt_t;

/* Applies the table from the environment. Returns 0, or VOX_ERR_INVALID with
 * err naming the variable, the bad value and what is allowed. */
int vox_config_parse(const vox_cfg_opt_t *opts, size_t nopts, vox_error_t *err);

/* Prints "usage: prog" and the table (env, type, default, range, help). */
void vox_config_usage(const char *prog, const char *about,
                      const vox_cfg_opt_t *opts, size_t nopts, void *stream);

/* For main(): handles --help/-h (usage on stdout, exit 0), any other
 * argument (usage on stderr, exit 2), and parse errors (message on stderr,
 * exit 2). Returns only on success. */
void vox_config_load(const char *prog, const char *about,
                     const vox_cfg_opt_t *opts, size_t nopts, int argc,
                     char **argv);

#endif
