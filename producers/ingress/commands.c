/* Command endpoints: publish, wait for Kafka's acknowledgement without
 * parking a thread, record the operation as accepted, answer 202. */
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_canary.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"
#include "vox_uuid.h"

struct command {
	ingress_t *in;
	vox_http_req_t *req;
	char op_id[VOX_UUID_STRLEN];
	char accepted_at[40];
	char subject[64];
	const char *kind;
	bool failed;
	vox_error_t err;
};

vox_pg_t *ingress_pg(ingress_t *in, vox_http_req_t *req)
{
	vox_error_t err;
	vox_pg_t *pg = vox_pg_pool_acquire(in->pg_pool, 2000, &err);

	if (pg == NULL)
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
	return pg;
}

/* Runs on a server thread once the delivery report arrived. */
static void command_answer(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct command *cmd = vox_http_state(req);
	char location[96];
	vox_op_t op = {0};
	vox_error_t err;
	vox_pg_t *pg;

	if (cmd->failed) {
		vox_counter_inc(in->refused);
		vox_log(VOX_LOG_WARN, "command not accepted", "error",
		        cmd->err.message, "request_id",
		        vox_http_request_id(req), NULL);
		vox_http_reply_error(
		        req, 503, "bus_unavailable",
		        "the command could not be made durable; "
		        "retry with the same Idempotency-Key",
		        json_pack("{s:s}", "reason", cmd->err.message));
		return;
	}
	/* Kafka has the command, so it will be done whatever happens here;
	 * the worker creates the row if this insert does not. */
	op.id = cmd->op_id;
	op.kind = cmd->kind;
	op.subject = cmd->subject;
	op.request_id = vox_http_request_id(req);
	op.at = cmd->accepted_at;
	pg = vox_pg_pool_acquire(in->pg_pool, 2000, &err);
	if (pg == NULL || vox_op_accept(pg, &op, &err) != 0)
		vox_log(VOX_LOG_WARN, "accepted row not written", "error",
		        err.message, "operation_id", cmd->op_id, NULL);
	if (pg != NULL)
		vox_pg_pool_release(in->pg_pool, pg);
	vox_counter_inc(in->accepted);
	snprintf(location, sizeof(location), "/v1/operations/%s", cmd->op_id);
	vox_http_add_header(req, "Location", location);
	vox_http_reply_json(req, 202,
	                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
	                              cmd->op_id, "kind", cmd->kind, "status",
	                              "accepted", "created_at",
	                              cmd->accepted_at, "href", location));
}

/* On the producer's poll thread: note the outcome and wake the request. */
static void command_delivered(void *opaque, const vox_error_t *err,
                              int32_t partition, int64_t offset)
{
	struct command *cmd = opaque;

	(void)partition;
	(void)offset;
	if (err != NULL) {
		cmd->failed = true;
		cmd->err = *err;
	}
	vox_http_resume(cmd->req, command_answer);
}

/* Publishes event (stolen) to topic keyed by key and answers later. */
static void command_publish(ingress_t *in, vox_http_req_t *req,
                            struct command *cmd, const char *topic,
                            json_t *event)
{
	char *text = vox_json_dump(event);

	json_decref(event);
	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	vox_http_suspend(req);
	if (vox_producer_send(in->producer, topic, cmd->op_id, text,
	                      strlen(text), NULL, 0, command_delivered, cmd,
	                      &cmd->err) != 0) {
		cmd->failed = true;
		vox_http_resume(req, command_answer);
	}
	free(text);
}

static struct command *command_new(ingress_t *in, vox_http_req_t *req,
                                   const char *kind)
{
	struct command *cmd = calloc(1, sizeof(*cmd));

	if (cmd == NULL)
		return NULL;
	cmd->in = in;
	cmd->req = req;
	cmd->kind = kind;
	vox_uuid7(cmd->op_id);
	vox_time_now_rfc3339(cmd->accepted_at, sizeof(cmd->accepted_at));
	vox_http_set_state(req, cmd, free);
	return cmd;
}

/* The canary takes no parameters: an empty body or {}. */
static bool canary_body_ok(vox_http_req_t *req)
{
	size_t len;
	const char *body = vox_http_body(req, &len);
	vox_error_t err;
	json_t *doc;
	bool ok;

	if (len == 0)
		return true;
	doc = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, &err);
	if (doc == NULL) {
		vox_http_reply_error(req, 400, "invalid_json", err.message,
		                     NULL);
		return false;
	}
	ok = json_is_object(doc) && json_object_size(doc) == 0;
	json_decref(doc);
	if (!ok)
		vox_http_reply_error(req, 400, "invalid_body",
		                     "the canary takes no parameters: send "
		                     "no body or {}",
		                     NULL);
	return ok;
}

void ingress_canary(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct command *cmd;
	json_t *event;

	if (!canary_body_ok(req))
		return;
	cmd = command_new(in, req, "canary");
	if (cmd == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	snprintf(cmd->subject, sizeof(cmd->subject), "operations/%s",
	         cmd->op_id);
	event = vox_event_new(VOX_CANARY_TYPE, "/voxlink/ingress", cmd->subject,
	                      NULL, NULL,
	                      json_pack("{s:s}", "operation_id", cmd->op_id));
	json_object_set_new(event, "requestid",
	                    json_string(vox_http_request_id(req)));
	command_publish(in, req, cmd, "vox.cmd.provisioning", event);
}

void ingress_operation_get(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	const char *id = vox_http_param(req, "id");
	vox_error_t err;
	json_t *op;
	vox_pg_t *pg;
	int rc;

	if (id == NULL || !vox_uuid_valid(id)) {
		vox_http_reply_error(req, 404, "operation_not_found",
		                     "no operation has this id", NULL);
		return;
	}
	pg = ingress_pg(in, req);
	if (pg == NULL)
		return;
	rc = vox_op_get(pg, id, NULL, &op, &err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc == VOX_ERR_NOT_FOUND)
		vox_http_reply_error(req, 404, "operation_not_found",
		                     "no operation has this id", NULL);
	else if (rc != 0)
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
	else
		vox_http_reply_json(req, 200, op);
}
