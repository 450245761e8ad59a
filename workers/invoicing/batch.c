/*
 * The batch function: every polled batch of vox.cmd.invoicing in ONE
 * transaction. Generate commands are gathered and made set-based
 * (inv_generate_batch), idempotent by UNIQUE (account_id, period_start);
 * every other command claims its id in the inbox (a redelivered one is
 * skipped) and runs its handler. A batch that fails for good is run again
 * one message at a time by the consumer, and the message that fails alone
 * is dead-lettered with its reason (vox_consumer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "invoicing.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_pg.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define GENERATE_TYPE "vox.invoice.generate_requested"

static const vox_handler_t handlers[] = {
        {"vox.invoice.finalize_requested", inv_finalize},
        {"vox.invoice.void_requested", inv_void},
        {"vox.invoice.mark_uncollectible_requested", inv_mark_uncollectible},
        {"vox.credit_note.create_requested", inv_credit_note},
        {"vox.invoice.pay_requested", inv_pay},
        {"vox.payment_method.attach_requested", inv_payment_method_attach},
        {"vox.payment.gateway_event", inv_gateway_event},
};

static vox_handler_fn handler_of(const char *type)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(handlers[i].type, type) == 0)
			return handlers[i].fn;
	return NULL;
}

static void message_view(const vox_batch_msg_t *m, const json_t *ev,
                         vox_message_t *msg)
{
	memset(msg, 0, sizeof(*msg));
	msg->topic = m->topic;
	msg->partition = m->partition;
	msg->offset = m->offset;
	msg->payload = m->payload;
	msg->len = m->len;
	vox_message_envelope(ev, msg);
	msg->consumer = "invoicing";
}

/* A generate command's fields, checked; a reason in dlq when it can
 * never be made. The period's ends are normalized to RFC 3339 UTC. */
static bool generate_req(const vox_message_t *msg, struct inv_generate_req *r,
                         char *dlq, size_t dlqlen)
{
	const char *account = vox_json_str(msg->data, "account_id");
	const char *start = vox_json_str(msg->data, "period_start");
	const char *end = vox_json_str(msg->data, "period_end");
	const char *op = vox_json_str(msg->data, "operation_id");
	int64_t start_us, end_us;
	vox_error_t why;

	memset(r, 0, sizeof(*r));
	if (inv_generate_validate(msg->data, &why) != 0) {
		snprintf(dlq, dlqlen, "%.200s", why.message);
		return false;
	}
	if (vox_rfc3339_parse(start, &start_us) != 0 ||
	    vox_rfc3339_parse(end, &end_us) != 0 || end_us <= start_us) {
		snprintf(dlq, dlqlen,
		         "invalid_period: period_start and period_end must be "
		         "RFC 3339 times, start before end");
		return false;
	}
	snprintf(r->account_id, sizeof(r->account_id), "%s", account);
	vox_rfc3339_format(start_us, r->period_start, sizeof(r->period_start));
	vox_rfc3339_format(end_us, r->period_end, sizeof(r->period_end));
	if (op != NULL)
		snprintf(r->operation_id, sizeof(r->operation_id), "%s", op);
	r->msg = msg;
	r->dlq_reason = dlq;
	r->dlq_len = dlqlen;
	return true;
}

int inv_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
              void *ctx, vox_error_t *err)
{
	struct inv_generate_req *reqs = NULL;
	vox_message_t *views = NULL;
	json_t **evs = NULL;
	size_t nreq = 0;
	int rc = 0;

	(void)prepared;
	reqs = calloc(n, sizeof(*reqs));
	views = calloc(n, sizeof(*views));
	evs = calloc(n, sizeof(*evs));
	if (reqs == NULL || views == NULL || evs == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		vox_batch_msg_t *m = &msgs[i];
		const char *type;
		vox_handler_fn fn;
		vox_error_t perr;

		if (vox_event_parse(m->payload, m->len, &evs[i], &perr) != 0) {
			snprintf(m->dlq_reason, sizeof(m->dlq_reason),
			         "invalid envelope: %.200s", perr.message);
			continue;
		}
		message_view(m, evs[i], &views[i]);
		type = vox_json_str(evs[i], "type");
		if (strcmp(type, GENERATE_TYPE) == 0) {
			if (generate_req(&views[i], &reqs[nreq], m->dlq_reason,
			                 sizeof(m->dlq_reason)))
				nreq++;
			continue;
		}
		if ((fn = handler_of(type)) == NULL) {
			snprintf(m->dlq_reason, sizeof(m->dlq_reason),
			         "no handler for type %.100s", type);
			continue;
		}
		rc = vox_inbox_claim(pg, "invoicing", views[i].id, m->topic,
		                     m->partition, m->offset, err);
		if (rc == VOX_ERR_DUPLICATE) {
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = fn(pg, &views[i], ctx, err);
	}
	if (rc == 0 && nreq > 0)
		rc = inv_generate_batch(pg, ctx, reqs, nreq, err);
done:
	for (size_t i = 0; evs != NULL && i < n; i++)
		json_decref(evs[i]);
	free(evs);
	free(views);
	free(reqs);
	return rc;
}
