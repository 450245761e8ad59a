/*
 * Intake: the handlers, run in the batch's transaction (batch.c). An event
 * to tell an account about becomes a chain (chain.c); an SMS receipt
 * settles its row. A redelivered event finds its chain by source event id
 * and does nothing, even past the inbox.
 */
#include <stdio.h>
#include <string.h>

#include "notifications.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_usage_event.h"
#include "vox_uuid.h"
#include "vox_validate.h"

/* An event of the stream with no account (or a malformed one) is not for
 * us to notify: logged and skipped, not dead-lettered (vox.events is
 * shared; its producers validate it). */
static int notify_skip(const vox_message_t *msg, const char *why)
{
	vox_log(VOX_LOG_WARN, "event not notified", "type", msg->type, "id",
	        msg->id, "reason", why, NULL);
	return 0;
}

int notify_requested(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     vox_error_t *err)
{
	struct notify_event ev = {0};
	const char *account;
	int rc;

	if ((rc = vox_notification_validate(msg->data, err)) != 0)
		return rc; /* schema-invalid: dead-lettered */
	account = vox_json_str(msg->data, "account_id");
	if (msg->account_id == NULL || strcmp(msg->account_id, account) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "accountid and data.account_id differ");
	ev.id = msg->id;
	ev.type = "usage.trigger.fired";
	ev.account_id = account;
	ev.ordering_key = vox_json_str(msg->data, "trigger_id");
	ev.time = msg->time;
	ev.data = msg->data;
	ev.trigger_id = ev.ordering_key;
	ev.callback_url = vox_json_str(msg->data, "callback_url");
	return notify_chain_start(pg, ctx, &ev, err);
}

int notify_event_check(const json_t *event, vox_error_t *err)
{
	const char *account = vox_json_str(event, "accountid");
	const char *subject = vox_json_str(event, "subject");

	if (account == NULL || !vox_uuid_valid(account))
		return vox_error_set(err, VOX_ERR_INVALID, false, "no account");
	if (subject == NULL || *subject == '\0' || strlen(subject) > 300)
		return vox_error_set(err, VOX_ERR_INVALID, false, "no subject");
	return 0;
}

int notify_reservation_check(const json_t *event, vox_error_t *err)
{
	const char *account = vox_json_str(event, "accountid");
	const char *reservation =
	        vox_json_str(json_object_get(event, "data"), "reservation_id");

	if (account == NULL || !vox_uuid_valid(account))
		return vox_error_set(err, VOX_ERR_INVALID, false, "no account");
	if (reservation == NULL || !vox_uuid_valid(reservation))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "no reservation_id");
	return 0;
}

/* number.*: ordered per number (the subject, its E.164). */
int notify_number_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                        vox_error_t *err)
{
	struct notify_event ev = {0};
	vox_error_t why;

	if (notify_event_check(msg->event, &why) != 0)
		return notify_skip(msg, why.message);
	ev.id = msg->id;
	ev.type = msg->type;
	ev.account_id = msg->account_id;
	ev.ordering_key = msg->subject;
	ev.time = msg->time;
	ev.data = msg->data;
	return notify_chain_start(pg, ctx, &ev, err);
}

int notify_reservation_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                             vox_error_t *err)
{
	const char *reservation = vox_json_str(msg->data, "reservation_id");
	struct notify_event ev = {0};
	vox_error_t why;

	if (notify_reservation_check(msg->event, &why) != 0)
		return notify_skip(msg, why.message);
	ev.id = msg->id;
	ev.type = msg->type;
	ev.account_id = msg->account_id;
	ev.ordering_key = reservation;
	ev.time = msg->time;
	ev.data = msg->data;
	return notify_chain_start(pg, ctx, &ev, err);
}

/* The row an SMS receipt is about, its chain locked first (the lock order
 * of every transaction here: chain, then its rows). 0 and row filled, or
 * VOX_ERR_NOT_FOUND. */
static int sms_row(vox_pg_t *pg, const char *sid, char id[40], char chain[40],
                   vox_error_t *err)
{
	const char *params[] = {sid};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "notify_sms_row",
	                  "SELECT id, chain_id FROM notifications WHERE "
	                  "provider_message_id = $1 AND channel = 'sms'",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return VOX_ERR_NOT_FOUND;
	}
	snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
	snprintf(chain, 40, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (*chain != '\0')
		rc = notify_chain_lock(pg, chain, err);
	return rc;
}

/* 1 to max characters, all of them in set. */
static bool chars_in(const char *s, const char *set, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n >= 1 && n <= max && strspn(s, set) == n;
}

/* Absent-or-null is not allowed: the ingress always writes the member. */
static bool null_or_chars(const json_t *v, const char *set, size_t max)
{
	return json_is_null(v) || chars_in(json_string_value(v), set, max);
}

int notify_sms_status_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"provider", "provider_message_id",
	                                   "status",   "error_code",
	                                   "to",       NULL};
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char *provider = vox_json_str(data, "provider");
	char sid_set[sizeof(alnum) + 2];
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0)
		return rc;
	if (provider == NULL || strcmp(provider, "sms") != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.provider must be sms");
	snprintf(sid_set, sizeof(sid_set), "%s_-", alnum);
	if (!chars_in(vox_json_str(data, "provider_message_id"), sid_set, 64))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.provider_message_id must be 1 to 64 "
		                     "letters, digits, _ or -");
	if (!chars_in(vox_json_str(data, "status"),
	              "abcdefghijklmnopqrstuvwxyz_", 32))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.status must be 1 to 32 of [a-z_]");
	if (!null_or_chars(json_object_get(data, "error_code"), "0123456789",
	                   16))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.error_code must be null or 1 to 16 "
		                     "digits");
	if (!null_or_chars(json_object_get(data, "to"), "+0123456789", 64))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.to must be null or a phone number");
	return 0;
}

/* vox.sms.status_received: delivered settles the row (and its chain);
 * undelivered/failed fail it (its chain may move on); the others (queued,
 * sent...) change nothing. */
int notify_sms_status(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	const char *sid = vox_json_str(msg->data, "provider_message_id");
	const char *status = vox_json_str(msg->data, "status");
	const char *code = vox_json_str(msg->data, "error_code");
	char id[40], chain[40], why[160];
	bool delivered, failed, settled;
	int rc;

	if ((rc = notify_sms_status_validate(msg->data, err)) != 0)
		return rc; /* schema-invalid: dead-lettered */
	delivered = strcmp(status, "delivered") == 0;
	failed = strcmp(status, "undelivered") == 0 ||
	         strcmp(status, "failed") == 0;
	if (!delivered && !failed)
		return 0;
	rc = sms_row(pg, sid, id, chain, err);
	if (rc == VOX_ERR_NOT_FOUND) /* a receipt may beat our commit */
		return vox_error_set(err, VOX_ERR_NOT_FOUND, true,
		                     "no SMS with sid %s (yet)", sid);
	if (rc != 0)
		return rc;
	snprintf(why, sizeof(why), "%s (provider error %.40s)", status,
	         code ? code : "none");
	const char *params[] = {id, delivered ? "delivered" : "failed",
	                        delivered ? NULL : why};
	PGresult *res;
	rc = vox_pg_execp(pg, "notify_sms_settle",
	                  "UPDATE notifications SET status = $2, "
	                  "delivered_at = CASE WHEN $2 = 'delivered' THEN "
	                  "now() END, last_error = $3 WHERE id = $1 AND "
	                  "status IN ('sent', 'queued') RETURNING id",
	                  3, params, &res, err);
	if (rc != 0)
		return rc;
	settled = PQntuples(res) > 0;
	PQclear(res);
	/* a receipt seen before (a redelivery: there is no inbox in batch
	 * mode) or after the row was settled otherwise changes nothing */
	if (!settled || *chain == '\0')
		return 0;
	if (delivered)
		return notify_chain_delivered(pg, chain, err);
	return notify_chain_advance(pg, ctx, chain, err);
}
