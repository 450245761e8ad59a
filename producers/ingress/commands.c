/*
 * Command endpoints: validate, take the Idempotency-Key, publish, and answer
 * 202 only once Kafka acknowledged the command and its accepted row is
 * committed; with Prefer: wait=N, hold the answer until the operation
 * finishes (200 with the operation) or N seconds pass (202). No thread
 * waits meanwhile: the connection is suspended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_canary.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"

/* Prefer: wait=N (RFC 7240); other preferences are ignored. */
static int prefer_wait(vox_http_req_t *req, long max_s)
{
	const char *prefer = vox_http_header(req, "Prefer");
	const char *w;
	long n;

	if (prefer == NULL || (w = strstr(prefer, "wait=")) == NULL)
		return 0;
	n = strtol(w + 5, NULL, 10);
	if (n <= 0)
		return 0;
	return (int)(n > max_s ? max_s : n);
}

static json_t *accepted_body(const ingress_req_t *ir, const char *href)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", ir->op_id, "kind",
	                 ir->kind, "status", "accepted", "created_at",
	                 ir->accepted_at, "href", href);
}

static void answer_accepted(vox_http_req_t *req, ingress_req_t *ir)
{
	char href[96];

	snprintf(href, sizeof(href), "/v1/operations/%s", ir->op_id);
	vox_http_add_header(req, "Location", href);
	ingress_reply(req, 202, accepted_body(ir, href));
}

/* After Prefer: wait: the finished operation (200), or 202 if it is not. */
static void command_after_wait(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	ingress_req_t *ir = vox_http_state(req);
	char applied[32];
	const char *status;
	vox_error_t err;
	json_t *op = NULL;
	vox_pg_t *pg;

	snprintf(applied, sizeof(applied), "wait=%d", ir->wait_s);
	vox_http_add_header(req, "Preference-Applied", applied);
	pg = vox_pg_pool_acquire(in->pg_pool, 2000, &err);
	if (pg != NULL) {
		vox_op_get(pg, ir->op_id, ir->who.account_id, &op, &err);
		vox_pg_pool_release(in->pg_pool, pg);
	}
	status = op ? vox_json_str(op, "status") : NULL;
	if (status && (strcmp(status, "completed") == 0 ||
	               strcmp(status, "failed") == 0)) {
		/* The stored idempotent answer is the 202: a replay must
		 * not depend on timing. */
		char href[96], *accepted;
		json_t *body;

		snprintf(href, sizeof(href), "/v1/operations/%s", ir->op_id);
		body = accepted_body(ir, href);
		accepted = vox_json_dump(body);
		json_decref(body);
		idem_finish(ir, 202, accepted ? accepted : "{}",
		            accepted ? strlen(accepted) : 2);
		free(accepted);
		vox_http_reply_json(req, 200, op);
		return;
	}
	json_decref(op);
	answer_accepted(req, ir);
}

/* Runs on a server thread once the accepted row is committed. */
static void command_after_accept(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	ingress_req_t *ir = vox_http_state(req);

	vox_counter_inc(in->accepted);
	if (ir->wait_s > 0) {
		listener_wait_for(in->listener, req, ir, command_after_wait);
		return;
	}
	answer_accepted(req, ir);
}

/* Kafka refused or timed out: nothing was accepted. */
static void command_refused(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	ingress_req_t *ir = vox_http_state(req);

	vox_counter_inc(in->refused);
	vox_log(VOX_LOG_WARN, "command not accepted", "error", ir->err.message,
	        "request_id", vox_http_request_id(req), NULL);
	vox_http_add_header(req, "Retry-After", "1");
	ingress_reply(req, 503,
	              json_pack("{s:{s:s, s:s, s:{s:s}}}", "error", "code",
	                        "bus_unavailable", "message",
	                        "the command could not be made durable; "
	                        "nothing was accepted: retry (with the same "
	                        "Idempotency-Key)",
	                        "details", "reason", ir->err.message));
}

/* On the producer's poll thread: it must not block. */
static void command_delivered(void *opaque, const vox_error_t *err,
                              int32_t partition, int64_t offset)
{
	vox_http_req_t *req = opaque;
	ingress_req_t *ir = vox_http_state(req);

	(void)partition;
	(void)offset;
	if (err != NULL) {
		ir->failed = true;
		ir->err = *err;
		vox_http_resume(req, command_refused);
		return;
	}
	accept_writer_submit(ir->in->writer, req, ir, command_after_accept);
}

/* Publishes data (stolen) as a command of type on topic, keyed by key
 * (NULL: the operation id; it may point into data), and answers later. */
void ingress_command(vox_http_req_t *req, ingress_req_t *ir, const char *topic,
                     const char *type, const char *key, json_t *data)
{
	json_t *event;
	char *text, msg_key[64];

	vox_uuid7(ir->op_id);
	/* key may point into data, which the event below takes and frees. */
	snprintf(msg_key, sizeof(msg_key), "%s", key ? key : ir->op_id);
	vox_time_now_rfc3339(ir->accepted_at, sizeof(ir->accepted_at));
	snprintf(ir->subject, sizeof(ir->subject), "operations/%s", ir->op_id);
	ir->wait_s = prefer_wait(req, ir->in->cfg->max_wait_s);
	json_object_set_new(data, "operation_id", json_string(ir->op_id));
	event = vox_event_build(type, ir->subject, ir->who.account_id, NULL,
	                        data);
	json_object_set_new(event, "requestid",
	                    json_string(vox_http_request_id(req)));
	text = vox_json_dump(event);
	json_decref(event);
	if (text == NULL) {
		ingress_reply(req, 500,
		              json_pack("{s:{s:s,s:s}}", "error", "code",
		                        "internal", "message",
		                        "out of memory"));
		return;
	}
	vox_http_suspend(req);
	if (vox_producer_send(ir->in->producer, topic, msg_key, text,
	                      strlen(text), NULL, 0, command_delivered, req,
	                      &ir->err) != 0) {
		ir->failed = true;
		vox_http_resume(req, command_refused);
	}
	free(text);
}

void ingress_canary(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	json_t *body;

	if (ir == NULL)
		return;
	body = ingress_body(req, allowed, true);
	if (body == NULL)
		return;
	json_decref(body);
	if (!idem_begin(req, ir))
		return;
	ir->kind = "canary";
	ingress_command(req, ir, "vox.cmd.provisioning", VOX_CANARY_TYPE, NULL,
	                json_object());
}
