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
