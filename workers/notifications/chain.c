/*
 * Chains: one per event to tell an account about. A chain walks the
 * account's channel order for its type; each step is one notifications row
 * per recipient. The chain moves on when every row of its step failed (or
 * was cancelled) or the step's deadline passed with none delivered; a
 * delivered row ends it. Every function here runs in the caller's
 * transaction and locks the chain first (FOR UPDATE), the one lock order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define DEFAULT_CHANNELS "email,sms,webhook"
#define SWEEP_MAX        200 /* chains moved per tick */

/* Row columns of a step, from its chain c: what every insert shares. */
#define STEP_COLUMNS                                                           \
	"INSERT INTO notifications (account_id, user_id, "                     \
	"webhook_endpoint_id, "                                                \
	"channel, recipient, event_type, template, payload, dedup_key, "       \
	"next_attempt_at, chain_id, step, message_id, ordering_key, "          \
	"sequence) "
#define STEP_VALUES(user, endpoint, recipient, who)                            \
	"SELECT c.account_id, " user ", " endpoint ", $2, " recipient          \
	", c.event_type, c.event_type, c.payload, c.id || ':' || c.step || "   \
	"':' || " who ", now(), c.id, c.step, c.payload ->> 'id', "            \
	"c.ordering_key, c.sequence FROM notification_chains c "

long notify_scaled_ms(const struct notify_ctx *nc, double s)
{
	return (long)(s * 1000.0 / (double)nc->time_scale);
}

static long step_deadline_ms(const struct notify_ctx *nc, const char *channel)
{
	if (strcmp(channel, "email") == 0)
		return notify_scaled_ms(nc, (double)nc->email_deadline_s);
	if (strcmp(channel, "sms") == 0)
		return notify_scaled_ms(nc, (double)nc->sms_deadline_s);
	return notify_scaled_ms(nc, (double)nc->webhook_deadline_s);
}

/* The rows of the chain's current step on channel; *n receives how many.
 * An endpoint its customer disabled (PATCH enabled=false) gets its rows,
 * held until it is enabled again (paused); one we disabled (410, 5 days
 * of failures: disabled_at set) and a deleted one get none. */
static int step_rows(vox_pg_t *pg, const char *chain_id, const char *channel,
                     long *n, vox_error_t *err)
{
	const char *params[] = {chain_id, channel};
	PGresult *res;
	int rc;

	if (strcmp(channel, "webhook") == 0)
		rc = vox_pg_execp(
		        pg, "notify_step_webhook",
		        STEP_COLUMNS STEP_VALUES(
		                "NULL::uuid", "w.id", "w.url",
		                "w.id") "JOIN webhook_endpoints w ON "
		                        "w.account_id = "
		                        "c.account_id WHERE c.id = $1 AND "
		                        "(w.enabled OR w.disabled_at IS "
		                        "NULL) AND w.deleted_at IS NULL AND "
		                        "(c.event_type = ANY (w.events) "
		                        "OR '*' = ANY (w.events)) ON CONFLICT "
		                        "(dedup_key) DO "
		                        "NOTHING RETURNING id",
		        2, params, &res, err);
	else
		rc = vox_pg_execp(
		        pg, "notify_step_users",
		        STEP_COLUMNS STEP_VALUES(
		                "u.id", "NULL::uuid",
		                "CASE WHEN $2 = 'email' THEN u.email ELSE "
		                "u.phone END",
		                "u.id") "JOIN users u ON u.account_id = "
		                        "c.account_id WHERE "
		                        "c.id = $1 AND u.status = 'active' AND "
		                        "u.role IN "
		                        "('owner', 'admin') AND ($2 = 'email' "
		                        "OR u.phone IS NOT "
		                        "NULL) ON CONFLICT (dedup_key) DO "
		                        "NOTHING RETURNING id",
		        2, params, &res, err);
	if (rc != 0)
		return rc;
	*n = PQntuples(res);
	PQclear(res);
	return 0;
}

/* Enters step `step` of channels (comma-separated) or, when it has no
 * recipient, the next one; past the last: exhausted. */
static int chain_enter(vox_pg_t *pg, const struct notify_ctx *nc,
                       const char *chain_id, const char *channels, int step,
                       vox_error_t *err)
{
	char list[64], *save = NULL, *channel, step_text[16], deadline[24];
	long n = 0;
	int i = 0, rc;

	snprintf(list, sizeof(list), "%s", channels);
	for (channel = strtok_r(list, ",", &save); channel != NULL;
	     channel = strtok_r(NULL, ",", &save), i++) {
		if (i < step)
			continue;
		snprintf(step_text, sizeof(step_text), "%d", i);
		const char *params[] = {chain_id, step_text, deadline};
		snprintf(deadline, sizeof(deadline), "%ld",
		         step_deadline_ms(nc, channel));
		rc = vox_pg_execp(pg, "notify_chain_step",
		                  "UPDATE notification_chains SET step = $2, "
		                  "step_deadline_at = now() + $3 * interval "
		                  "'1 ms' WHERE id = $1",
		                  3, params, NULL, err);
		if (rc == 0)
			rc = step_rows(pg, chain_id, channel, &n, err);
		if (rc != 0 || n > 0)
			return rc;
	}
	const char *params[] = {chain_id};
	return vox_pg_execp(
	        pg, "notify_chain_exhausted",
	        "UPDATE notification_chains SET status = "
	        "'exhausted', step_deadline_at = NULL WHERE id = $1",
	        1, params, NULL, err);
}

/* The public body: {id, type, timestamp, sequence, account_id, data}. */
static char *chain_payload(const struct notify_event *ev, const char *msg_id,
                           long long seq)
{
	char now[40];
	json_t *body;
	char *text;

	vox_time_now_rfc3339(now, sizeof(now));
	body = json_pack("{s:s, s:s, s:s, s:I, s:s, s:O}", "id", msg_id, "type",
	                 ev->type, "timestamp", ev->time ? ev->time : now,
	                 "sequence", (json_int_t)seq, "account_id",
	                 ev->account_id, "data",
	                 ev->data ? ev->data : json_object());
	text = body ? vox_json_dump(body) : NULL;
	json_decref(body);
	return text;
}

/* The usage trigger's callback: outside the chain, retried on the webhook
 * schedule, signed with the trigger's own secret. */
static int chain_callback(vox_pg_t *pg, const struct notify_event *ev,
                          const char *payload, const char *msg_id,
                          long long seq, vox_error_t *err)
{
	char seq_text[24];

	snprintf(seq_text, sizeof(seq_text), "%lld", seq);
	const char *params[] = {
	        ev->account_id,   ev->callback_url, ev->type,
	        payload,          ev->id,           msg_id,
	        ev->ordering_key, seq_text,         ev->trigger_id};
	return vox_pg_execp(
	        pg, "notify_chain_callback",
	        "INSERT INTO notifications (account_id, channel, recipient, "
	        "event_type, template, payload, dedup_key, next_attempt_at, "
	        "message_id, ordering_key, sequence, trigger_id) VALUES ($1, "
	        "'callback', $2, $3, $3, $4::jsonb, $5 || ':callback', now(), "
	        "$6, $7, $8::bigint, $9::uuid) ON CONFLICT (dedup_key) DO "
	        "NOTHING",
	        9, params, NULL, err);
}

/* The chain of an event in one statement: the account's channel order,
 * the next sequence number of its ordering key and the chain row (with
 * its first step's deadline), unless the event already has its chain (a
 * redelivery: no new sequence). Answers channels ("" for none; NULL: no
 * such account), the sequence (NULL: a redelivery) and whether a chain
 * was made. Six statements an event made the intake the bottleneck at
 * 1,000 events/s (bench/RESULTS.md). */
static const char chain_insert_sql[] =
        "WITH pref AS (SELECT array_to_string(coalesce((SELECT channels "
        "FROM notification_preferences WHERE account_id = a.id AND user_id "
        "IS NULL AND event_type = $4), (SELECT channels FROM "
        "notification_preferences WHERE account_id = a.id AND user_id IS "
        "NULL AND event_type = '*'), '{" DEFAULT_CHANNELS "}'), ',') AS "
        "channels FROM accounts a WHERE a.id = $2::uuid), "
        "fresh AS (SELECT 1 FROM pref WHERE NOT EXISTS (SELECT 1 FROM "
        "notification_chains WHERE source_event_id = $3)), "
        "seq AS (INSERT INTO notification_sequences (account_id, "
        "ordering_key, last) SELECT $2::uuid, $5, 1 FROM fresh ON CONFLICT "
        "(account_id, ordering_key) DO UPDATE SET last = "
        "notification_sequences.last + 1 RETURNING last), "
        "chain AS (INSERT INTO notification_chains (id, account_id, "
        "source_event_id, event_type, ordering_key, sequence, payload, "
        "channels, step, step_deadline_at) SELECT $1::uuid, $2::uuid, $3, "
        "$4, $5, seq.last, jsonb_set($6::jsonb, '{sequence}', "
        "to_jsonb(seq.last)), string_to_array(pref.channels, ','), 0, "
        "now() + (CASE split_part(pref.channels, ',', 1) WHEN 'email' THEN "
        "$7 WHEN 'sms' THEN $8 ELSE $9 END)::bigint * interval '1 ms' FROM "
        "seq, pref WHERE pref.channels <> '' ON CONFLICT (source_event_id) "
        "DO NOTHING RETURNING 1) "
        "SELECT (SELECT channels FROM pref), (SELECT last FROM seq), "
        "(SELECT count(*) FROM chain)";

int notify_chain_start(vox_pg_t *pg, const struct notify_ctx *nc,
                       const struct notify_event *ev, vox_error_t *err)
{
	char id[VOX_UUID_STRLEN], msg_id[40], channels[64], first[16];
	char email_ms[24], sms_ms[24], webhook_ms[24];
	char *payload = NULL;
	long long seq;
	bool made;
	PGresult *res;
	long n = 0;
	int rc, j = 4;

	vox_uuid7(id);
	memcpy(msg_id, "msg_", 4);
	for (const char *p = id; *p != '\0'; p++)
		if (*p != '-')
			msg_id[j++] = *p;
	msg_id[j] = '\0';
	payload = chain_payload(ev, msg_id, 0);
	if (payload == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	snprintf(email_ms, sizeof(email_ms), "%ld",
	         step_deadline_ms(nc, "email"));
	snprintf(sms_ms, sizeof(sms_ms), "%ld", step_deadline_ms(nc, "sms"));
	snprintf(webhook_ms, sizeof(webhook_ms), "%ld",
	         step_deadline_ms(nc, "webhook"));
	const char *params[] = {id,       ev->account_id,   ev->id,
	                        ev->type, ev->ordering_key, payload,
	                        email_ms, sms_ms,           webhook_ms};
	rc = vox_pg_execp(pg, "notify_chain_insert", chain_insert_sql, 9,
	                  params, &res, err);
	free(payload);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "no account %s", ev->account_id);
	}
	if (PQgetisnull(res, 0, 1)) { /* the event has its chain already */
		PQclear(res);
		return 0;
	}
	snprintf(channels, sizeof(channels), "%s", PQgetvalue(res, 0, 0));
	seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	made = strcmp(PQgetvalue(res, 0, 2), "0") != 0;
	PQclear(res);
	if (made) {
		/* step 0's rows; none: the next step (chain_enter) */
		snprintf(first, sizeof(first), "%.*s",
		         (int)strcspn(channels, ","), channels);
		rc = step_rows(pg, id, first, &n, err);
		if (rc == 0 && n == 0)
			rc = chain_enter(pg, nc, id, channels, 1, err);
	} else {
		vox_log(VOX_LOG_INFO, "account takes no notification",
		        "account_id", ev->account_id, "type", ev->type, NULL);
	}
	if (rc == 0 && ev->callback_url != NULL && *ev->callback_url != '\0') {
		payload = chain_payload(ev, msg_id, seq);
		if (payload == NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, true,
			                     "out of memory");
		rc = chain_callback(pg, ev, payload, msg_id, seq, err);
		free(payload);
	}
	return rc;
}

int notify_chain_lock(vox_pg_t *pg, const char *chain_id, vox_error_t *err)
{
	const char *params[] = {chain_id};

	return vox_pg_execp(pg, "notify_chain_lock",
	                    "SELECT 1 FROM notification_chains WHERE id = $1 "
	                    "FOR UPDATE",
	                    1, params, NULL, err);
}

int notify_chain_delivered(vox_pg_t *pg, const char *chain_id, vox_error_t *err)
{
	const char *params[] = {chain_id};

	return vox_pg_execp(
	        pg, "notify_chain_delivered",
	        "UPDATE notification_chains SET status = "
	        "'delivered', step_deadline_at = NULL WHERE id = $1 "
	        "AND status <> 'delivered'",
	        1, params, NULL, err);
}

int notify_chain_advance(vox_pg_t *pg, const struct notify_ctx *nc,
                         const char *chain_id, vox_error_t *err)
{
	const char *params[] = {chain_id};
	char channels[64];
	bool active, past;
	long delivered, open;
	PGresult *res;
	int rc, step;

	rc = vox_pg_execp(
	        pg, "notify_chain_state",
	        "SELECT c.status = 'active', c.step, "
	        "array_to_string(c.channels, "
	        "','), coalesce(c.step_deadline_at <= now(), true), (SELECT "
	        "count(*) FROM notifications n WHERE n.chain_id = c.id AND "
	        "n.step = c.step AND n.status = 'delivered'), (SELECT count(*) "
	        "FROM notifications n WHERE n.chain_id = c.id AND n.step = "
	        "c.step AND n.status IN ('queued', 'sent')) FROM "
	        "notification_chains c WHERE c.id = $1 FOR UPDATE OF c",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	active = *PQgetvalue(res, 0, 0) == 't';
	step = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
	snprintf(channels, sizeof(channels), "%s", PQgetvalue(res, 0, 2));
	past = *PQgetvalue(res, 0, 3) == 't';
	delivered = strtol(PQgetvalue(res, 0, 4), NULL, 10);
	open = strtol(PQgetvalue(res, 0, 5), NULL, 10);
	PQclear(res);
	if (!active)
		return 0;
	if (delivered > 0)
		return notify_chain_delivered(pg, chain_id, err);
	if (open > 0 && !past)
		return 0;
	/* email and SMS not sent yet are dropped; webhooks keep their
	 * schedule (endpoints were promised at-least-once) */
	rc = vox_pg_execp(pg, "notify_chain_cancel",
	                  "UPDATE notifications SET status = 'cancelled' "
	                  "WHERE chain_id = $1 AND step = (SELECT step FROM "
	                  "notification_chains WHERE id = $1) AND status = "
	                  "'queued' AND channel IN ('email', 'sms')",
	                  1, params, NULL, err);
	if (rc != 0)
		return rc;
	return chain_enter(pg, nc, chain_id, channels, step + 1, err);
}

struct sweep_tx {
	const struct notify_ctx *nc;
	const char *chain_id;
};

static int sweep_one(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct sweep_tx *tx = arg;

	return notify_chain_advance(pg, tx->nc, tx->chain_id, err);
}

void notify_chain_sweep(vox_pg_t *pg, const struct notify_ctx *nc)
{
	char limit[16];
	PGresult *res;
	vox_error_t err;

	snprintf(limit, sizeof(limit), "%d", SWEEP_MAX);
	const char *params[] = {limit};
	if (vox_pg_execp(pg, "notify_chain_due",
	                 "SELECT id FROM notification_chains WHERE status = "
	                 "'active' AND step_deadline_at <= now() ORDER BY "
	                 "step_deadline_at LIMIT $1::int",
	                 1, params, &res, &err) != 0) {
		vox_log(VOX_LOG_WARN, "chain sweep", "error", err.message,
		        NULL);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct sweep_tx tx = {nc, PQgetvalue(res, i, 0)};

		if (vox_pg_transaction(pg, sweep_one, &tx, &err) != 0)
			vox_log(VOX_LOG_WARN, "chain sweep", "chain_id",
			        tx.chain_id, "error", err.message, NULL);
	}
	PQclear(res);
}
