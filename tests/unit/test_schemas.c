/*
 * The C validators agree with schemas/: every example under
 * schemas/examples/<type>/valid passes vox_event_parse and the type's
 * checks in the worker that reads it (its envelope check, if it has one,
 * and its data validator), every one under invalid/ fails one of them.
 * Every type of vox_event.c's table has examples, and every command type
 * (vox.cmd.*, vox.cdr.raw) a C validator here. The JSON Schema side of
 * the same files is checked by tests/shell/schemas.sh.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/invoicing/invoicing.h"
#include "../../workers/notifications/notifications.h"
#include "../../workers/porting/porting.h"
#include "../../workers/provisioning/provisioning.h"
#include "vox_canary.h"
#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_usage_event.h"

typedef int (*check_fn)(const json_t *json, vox_error_t *err);

/* The reader's checks of one type: envelope (may be NULL) gets the whole
 * event, validate (may be NULL) its data. Every valid example must pass
 * them and every invalid one fail them. */
static const struct reader {
	const char *type;
	check_fn envelope, validate;
} validators[] = {
        {VOX_CANARY_TYPE, NULL, vox_canary_validate},
        {VOX_CDR_EVENT_TYPE, NULL, vox_cdr_validate},
        {VOX_USAGE_RATED_TYPE, NULL, vox_usage_rated_validate},
        {VOX_NOTIFICATION_TYPE, NULL, vox_notification_validate},
        /* provisioning (workers/provisioning/validate.c) */
        {"vox.reservation.requested", prov_envelope_validate,
         prov_reservation_validate},
        {"vox.reservation.extend_requested", prov_envelope_validate,
         prov_extend_validate},
        {"vox.order.requested", prov_envelope_validate, prov_order_validate},
        {"vox.number.activate_requested", prov_envelope_validate,
         prov_activate_validate},
        {"vox.number.deactivate_requested", prov_envelope_validate,
         prov_number_validate},
        {"vox.number.release_requested", prov_envelope_validate,
         prov_number_validate},
        {"vox.number.routing_update_requested", prov_envelope_validate,
         prov_routing_validate},
        {"vox.number.business_hours_update_requested", prov_envelope_validate,
         prov_hours_validate},
        {"vox.number.voicemail_update_requested", prov_envelope_validate,
         prov_voicemail_validate},
        {"vox.notification_preferences.update_requested",
         prov_envelope_validate, prov_preferences_validate},
        /* invoicing (workers/invoicing/validate.c) */
        {"vox.invoice.generate_requested", NULL, inv_generate_validate},
        {"vox.invoice.finalize_requested", NULL, inv_invoice_cmd_validate},
        {"vox.invoice.void_requested", NULL, inv_invoice_cmd_validate},
        {"vox.invoice.pay_requested", NULL, inv_invoice_cmd_validate},
        {"vox.invoice.mark_uncollectible_requested", NULL,
         inv_invoice_cmd_validate},
        {"vox.credit_note.create_requested", NULL, inv_credit_note_validate},
        {"vox.payment_method.attach_requested", NULL, inv_attach_validate},
        {"vox.payment.gateway_event", NULL, inv_gateway_event_validate},
        /* notifications (workers/notifications/intake.c) */
        {"vox.sms.status_received", NULL, notify_sms_status_validate},
        /* porting (workers/porting/validate.c) */
        {"vox.porting_order.submit_requested", por_envelope_validate,
         por_submit_validate},
        {"vox.porting_order.cancel_requested", por_envelope_validate,
         por_cancel_validate},
        {"vox.porting.carrier_event", por_carrier_envelope_validate,
         por_carrier_event_validate},
};

#define NVALIDATORS (sizeof(validators) / sizeof(validators[0]))

/* Partial readers: the events the notifications worker reads
 * (workers/notifications/batch.c) are checked only for what it uses; the
 * rest of vox.events has no C reader (analysts only). */
static const struct reader partial[] = {
        {"number.purchased", notify_event_check, NULL},
        {"number.activated", notify_event_check, NULL},
        {"number.deactivated", notify_event_check, NULL},
        {"number.released", notify_event_check, NULL},
        {"number.configured", notify_event_check, NULL},
        {"reservation.expired", notify_reservation_check, NULL},
        {"porting_order.submitted", notify_event_check, NULL},
        {"porting_order.in_process", notify_event_check, NULL},
        {"porting_order.exception", notify_event_check, NULL},
        {"porting_order.foc_date_confirmed", notify_event_check, NULL},
        {"porting_order.ported", notify_event_check, NULL},
        {"porting_order.cancel_pending", notify_event_check, NULL},
        {"porting_order.cancelled", notify_event_check, NULL},
        {"porting_order.expired", notify_event_check, NULL},
        {"invoice.finalized", notify_event_check, NULL},
        {"invoice.paid", notify_event_check, NULL},
        {"invoice.payment_failed", notify_event_check, NULL},
        {"invoice.payment_reminder", notify_event_check, NULL},
        {"account.billing_suspended", notify_event_check, NULL},
        {"account.billing_reinstated", notify_event_check, NULL},
};

#define NPARTIAL (sizeof(partial) / sizeof(partial[0]))

static bool has_full_validator(const char *type)
{
	for (size_t v = 0; v < NVALIDATORS; v++)
		if (strcmp(validators[v].type, type) == 0)
			return true;
	return false;
}

/* type's checks: a full reader's, else a partial one's, else NULL. */
static const struct reader *reader_of(const char *type)
{
	for (size_t v = 0; v < NVALIDATORS; v++)
		if (strcmp(validators[v].type, type) == 0)
			return &validators[v];
	for (size_t v = 0; v < NPARTIAL; v++)
		if (strcmp(partial[v].type, type) == 0)
			return &partial[v];
	return NULL;
}

static bool is_command(const vox_event_kind_t *kind)
{
	return strncmp(kind->topic, "vox.cmd.", 8) == 0 ||
	       strcmp(kind->topic, "vox.cdr.raw") == 0;
}

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
	const struct reader *r;
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
	if (rc == 0 && (r = reader_of(type)) != NULL) {
		if (r->envelope != NULL)
			rc = r->envelope(ev, err);
		if (rc == 0 && r->validate != NULL)
			rc = r->validate(json_object_get(ev, "data"), err);
	}
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
	const vox_event_kind_t *kind;

	for (size_t i = 0; (kind = vox_event_kind_at(i)) != NULL; i++) {
		cr_expect_gt(check_dir(kind->type, "valid", true), 0,
		             "%s has no valid example", kind->type);
		/* An event no C program reads (analysts only), or reads
		 * only in part, has no C check its invalid examples must
		 * fail. */
		if (has_full_validator(kind->type))
			cr_expect_gt(check_dir(kind->type, "invalid", false), 0,
			             "%s has no invalid example", kind->type);
	}
}

Test(schemas, every_command_has_a_c_validator)
{
	const vox_event_kind_t *kind;
	int commands = 0;

	for (size_t i = 0; (kind = vox_event_kind_at(i)) != NULL; i++) {
		if (is_command(kind)) {
			commands++;
			cr_expect(has_full_validator(kind->type),
			          "command %s (%s) has no C validator",
			          kind->type, kind->topic);
		}
	}
	cr_assert_gt(commands, 0);
	for (size_t v = 0; v < NVALIDATORS; v++)
		cr_expect_not_null(vox_event_kind(validators[v].type),
		                   "%s is not in vox_event.c's table",
		                   validators[v].type);
}
