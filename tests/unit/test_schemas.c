/*
 * The C validators agree with schemas/: every example under
 * schemas/examples/<type>/valid passes vox_event_parse and the type's data
 * validator, every one under invalid/ fails one of them. The JSON Schema
 * side of the same files is checked by tests/shell/schemas.sh.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_canary.h"
#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_usage_event.h"

static const struct {
	const char *type;
	int (*validate)(const json_t *data, vox_error_t *err);
} validators[] = {
        {VOX_CANARY_TYPE, vox_canary_validate},
        {VOX_CDR_EVENT_TYPE, vox_cdr_validate},
        {VOX_USAGE_RATED_TYPE, vox_usage_rated_validate},
        {VOX_NOTIFICATION_TYPE, vox_notification_validate},
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* 0 when the example is accepted; the error message otherwise. */
static int check_example(const char *type, const char *path, vox_error_t *err)
{
	size_t len;
	char *text = slurp(path, &len);
	json_t *ev = NULL;
	int rc = vox_event_parse(text, len, &ev, err);

	free(text);
	if (rc != 0)
		return rc;
	if (strcmp(vox_json_str(ev, "type"), type) != 0)
		rc = vox_error_set(err, VOX_ERR_INVALID, false, "type is %s",
		                   vox_json_str(ev, "type"));
	for (size_t i = 0;
	     rc == 0 && i < sizeof(validators) / sizeof(validators[0]); i++)
		if (strcmp(validators[i].type, type) == 0)
			rc = validators[i].validate(json_object_get(ev, "data"),
			                            err);
	json_decref(ev);
	return rc;
}

static int check_dir(const char *type, const char *kind, bool expect_ok)
{
	char dir[512], path[1024];
	struct dirent *ent;
	vox_error_t err;
	int checked = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "schemas/examples/%s/%s", type, kind);
	d = opendir(dir);
	cr_assert_not_null(d, "missing %s (run from the repository root)", dir);
	while ((ent = readdir(d)) != NULL) {
		if (strstr(ent->d_name, ".json") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		if (expect_ok)
			cr_expect_eq(check_example(type, path, &err), 0,
			             "%s refused: %s", path, err.message);
		else
			cr_expect_neq(check_example(type, path, &err), 0,
			              "%s accepted", path);
		checked++;
	}
	closedir(d);
	return checked;
}

Test(schemas, examples_agree_with_c_validators)
{
	for (size_t i = 0; i < sizeof(validators) / sizeof(validators[0]);
	     i++) {
		cr_assert_gt(check_dir(validators[i].type, "valid", true), 0);
		cr_assert_gt(check_dir(validators[i].type, "invalid", false),
		             0);
	}
}
