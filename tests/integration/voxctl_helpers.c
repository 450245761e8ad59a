/* Running the real voxctl binary from a test (voxctl_helpers.h). */
#include "voxctl_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_buf.h"

/* Appends text to cmd as a shell word in single quotes. */
static void shell_quote(vox_buf_t *cmd, const char *text)
{
	vox_buf_adds(cmd, " '");
	for (; *text != '\0'; text++)
		if (*text == '\'')
			vox_buf_adds(cmd, "'\\''");
		else
			vox_buf_add(cmd, text, 1);
	vox_buf_adds(cmd, "'");
}

static char *read_all(FILE *in)
{
	size_t len = 0, cap = 4096, n;
	char *buf = malloc(cap);

	cr_assert_not_null(buf);
	while ((n = fread(buf + len, 1, cap - len - 1, in)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

/* Criterion reaps children, so pclose's status is unreliable: the shell
 * prints the exit code after the output instead. */
struct t_voxctl_run t_voxctl(const char *const *env, const char *const *args)
{
	char errpath[] = "/tmp/voxctl-err-XXXXXX", *tail;
	struct t_voxctl_run r = {-1, NULL, NULL};
	int fd = mkstemp(errpath);
	vox_buf_t cmd;
	FILE *f;

	cr_assert_geq(fd, 0);
	close(fd);
	vox_buf_init(&cmd, 64 * 1024);
	vox_buf_adds(&cmd, "env");
	for (int i = 0; env != NULL && env[i] != NULL; i++)
		shell_quote(&cmd, env[i]);
	vox_buf_printf(&cmd, " '%s/voxctl'", t_env("VOX_BIN_DIR"));
	for (int i = 0; args[i] != NULL; i++)
		shell_quote(&cmd, args[i]);
	vox_buf_printf(&cmd, " 2>'%s'; printf '\\nexit=%%d\\n' \"$?\"",
	               errpath);
	cr_assert_eq(vox_buf_error(&cmd), 0, "command too long");
	f = popen(vox_buf_str(&cmd), "r");
	vox_buf_free(&cmd);
	cr_assert_not_null(f);
	r.out = read_all(f);
	pclose(f);
	tail = strstr(r.out, "\nexit=");
	cr_assert_not_null(tail, "no exit line: %s", r.out);
	while (strstr(tail + 1, "\nexit=") != NULL)
		tail = strstr(tail + 1, "\nexit=");
	r.exit = (int)strtol(tail + 6, NULL, 10);
	*tail = '\0';
	f = fopen(errpath, "r");
	cr_assert_not_null(f);
	r.err = read_all(f);
	fclose(f);
	unlink(errpath);
	return r;
}

void t_voxctl_free(struct t_voxctl_run *r)
{
	free(r->out);
	free(r->err);
}

void t_voxctl_refused(struct t_voxctl_run *r, int code, const char *why)
{
	cr_assert_eq(r->exit, code, "exit %d, not %d; stderr: %s", r->exit,
	             code, r->err);
	cr_assert_str_eq(r->out, "", "stdout of a refusal: %s", r->out);
	cr_assert_not_null(strstr(r->err, why), "stderr \"%s\" lacks \"%s\"",
	                   r->err, why);
	t_voxctl_free(r);
}
