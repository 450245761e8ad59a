/*
 * Running the real voxctl binary ($VOX_BIN_DIR/voxctl) from a test: its
 * exit code, stdout and stderr, for the tests of its commands.
 */
#ifndef VOXCTL_HELPERS_H
#define VOXCTL_HELPERS_H

struct t_voxctl_run {
	int exit;  /* voxctl's exit code, as the shell saw it */
	char *out; /* stdout */
	char *err; /* stderr */
};

/* Runs voxctl with args (NULL-terminated), with env ("NAME=value",
 * NULL-terminated, or NULL) added to the environment. Free the result
 * with t_voxctl_free(). */
struct t_voxctl_run t_voxctl(const char *const *env, const char *const *args);
void t_voxctl_free(struct t_voxctl_run *r);

/* Asserts a refusal: exit code, nothing on stdout, why on stderr; then
 * frees r. */
void t_voxctl_refused(struct t_voxctl_run *r, int code, const char *why);

#define VOXCTL(...) t_voxctl(NULL, (const char *const[]){__VA_ARGS__, NULL})

#endif
