/* vox_canary: completes canary operations and reports them on vox.events. */
#include "vox_canary.h"

#include <stdio.h>
#include <stdlib.h>

#include "vox_event.h"
#include "vox_json.h"
#include "vox_ops.h"
#include "vox_uuid.h"

int vox_canary_validate(const json_t *data, vox_error_t *err)
{
	static const char *const allowed[] = {"operation_id", NULL};
	const char *op_id = vox_json_str(data, "operation_id");

	if (!json_is_object(data))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data must be an object");
	if (vox_json_only_keys(data, allowed, err) != 0)
		return VOX_ERR_INVALID;
	if (op_id == NULL || !vox_uuid_valid(op_id))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.operation_id must be a UUID");
	return 0;
}

int vox_canary_handle(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	const char *op_id = vox_json_str(msg->data, "operation_id");
	char *result = NULL;
	json_t *res;
	vox_op_t op = {0};
	int rc;

	(void)ctx;
	if (vox_canary_validate(msg->data, err) != 0)
		return VOX_ERR_INVALID;
	res = json_pack("{s:s, s:s, s:i, s:I}", "worker", msg->consumer,
	                "message_id", msg->id, "partition", (int)msg->partition,
	                "offset", (json_int_t)msg->offset);
	result = vox_json_dump(res);
	json_decref(res);
	op.id = op_id;
	op.account_id = msg->account_id;
	op.kind = "canary";
	op.subject = msg->subject;
	op.at = msg->time;
	rc = vox_op_finish(pg, &op, "completed", result, NULL, NULL, err);
	if (rc != 0)
		goto out;
	if (result == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		goto out;
	}
	rc = vox_event_emit(pg, VOX_CANARY_DONE_TYPE, op_id, msg->subject,
	                    msg->account_id, msg->traceparent,
	                    json_pack("{s:s, s:s}", "operation_id", op_id,
	                              "worker", msg->consumer),
	                    err);
out:
	free(result);
	return rc;
}

/* One message's row for vox_canary_handle_batch, or NULL (err says why). */
static json_t *canary_row(const vox_message_t *msg, vox_error_t *err)
{
	const char *op_id = vox_json_str(msg->data, "operation_id");
	json_t *ev, *row;
	char *text;

	if (vox_canary_validate(msg->data, err) != 0)
		return NULL;
	ev = vox_event_build(VOX_CANARY_DONE_TYPE, msg->subject,
	                     msg->account_id, msg->traceparent,
	                     json_pack("{s:s, s:s}", "operation_id", op_id,
	                               "worker", msg->consumer));
	text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		return NULL;
	}
	row = json_pack("{s:s, s:s?, s:s?, s:s?, s:{s:s, s:s, s:i, s:I}, s:s}",
	                "id", op_id, "a", msg->account_id, "s", msg->subject,
	                "at", msg->time, "r", "worker", msg->consumer,
	                "message_id", msg->id, "partition", (int)msg->partition,
	                "offset", (json_int_t)msg->offset, "ev", text);
	free(text);
	if (row == NULL)
		vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	return row;
}

int vox_canary_handle_batch(vox_pg_t *pg, const vox_message_t *msgs, size_t n,
                            void *ctx, vox_error_t *err)
{
	const vox_event_kind_t *kind = vox_event_kind(VOX_CANARY_DONE_TYPE);
	const char *params[4];
	json_t *rows = json_array();
	char *text;
	int rc;

	(void)ctx;
	if (kind == NULL || rows == NULL) {
		json_decref(rows);
		return vox_error_set(
		        err, VOX_ERR_INTERNAL, false,
		        "event type %s is not in vox_event's table",
		        VOX_CANARY_DONE_TYPE);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *row = canary_row(&msgs[i], err);

		if (row == NULL) {
			json_decref(rows);
			return err->code;
		}
		json_array_append_new(rows, row);
	}
	text = vox_json_dump(rows);
	json_decref(rows);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	params[0] = text;
	params[1] = kind->topic;
	params[2] = kind->domain_topic;
	params[3] = vox_event_seq_scope(kind);
	/* vox_op_finish and vox_event_outbox_add, set-based; the outbox rows
	 * in message order (the relay publishes in id order) */
	rc = vox_pg_execp(
	        pg, "vox_canary_finish_many",
	        "WITH v AS (SELECT t.*, row_number() OVER () AS n FROM "
	        "json_to_recordset($1::json) AS t(id text, a uuid, s text, at "
	        "timestamptz, r jsonb, ev text)), "
	        "op AS (INSERT INTO operations AS o (id, account_id, kind, "
	        "status, result, error_code, error_message, created_at, "
	        "updated_at, completed_at, subject, request_id) SELECT "
	        "id::uuid, a, "
	        "'canary', 'completed', r, NULL, NULL, coalesce(at, now()), "
	        "now(), now(), s, NULL FROM v ORDER BY n "
	        "ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, "
	        "result = EXCLUDED.result, error_code = EXCLUDED.error_code, "
	        "error_message = EXCLUDED.error_message, updated_at = now(), "
	        "completed_at = EXCLUDED.completed_at RETURNING id), "
	        "h AS (INSERT INTO operation_events (operation_id, status, "
	        "detail) SELECT id, 'completed', NULL FROM op) "
	        "INSERT INTO outbox (topic, message_key, payload, "
	        "domain_topic, "
	        "seq_scope) SELECT $2, id, ev, $3, $4 FROM v ORDER BY n",
	        4, params, NULL, err);
	free(text);
	if (rc != 0)
		return rc;
	return vox_pg_execp(pg, "vox_outbox_notify", "NOTIFY vox_outbox", 0,
	                    NULL, NULL, err);
}
