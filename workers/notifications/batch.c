/*
 * Intake in batches: every polled batch of vox.cmd.notifications and
 * vox.events is handled in ONE transaction (one commit, and one in-flight
 * mark, for up to VOX_WORKER_BATCH_MAX events instead of three commits an
 * event: bench/RESULTS.md). There is no inbox in batch mode; each handler
 * is idempotent by itself: a chain is found by its source event id, a
 * callback by its dedup key, and an SMS receipt settles only a row that is
 * not settled yet. A batch that fails for good is run again one message at
 * a time by the consumer, and the message that fails alone is
 * dead-lettered with its reason (vox_consumer.h).
 */
#include <string.h>

#include "notifications.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_usage_event.h"

static const vox_handler_t handlers[] = {
        {VOX_NOTIFICATION_TYPE, notify_requested},
        {"vox.sms.status_received", notify_sms_status},
        {"number.purchased", notify_number_event},
        {"number.activated", notify_number_event},
        {"number.deactivated", notify_number_event},
        {"number.released", notify_number_event},
        {"number.configured", notify_number_event},
        {"reservation.expired", notify_reservation_event},
        /* porting orders (workers/porting): subject = the order id, so
         * one order's messages keep their order */
        {"porting_order.submitted", notify_number_event},
        {"porting_order.in_process", notify_number_event},
        {"porting_order.exception", notify_number_event},
        {"porting_order.foc_date_confirmed", notify_number_event},
        {"porting_order.ported", notify_number_event},
        {"porting_order.cancel_pending", notify_number_event},
        {"porting_order.cancelled", notify_number_event},
        {"porting_order.expired", notify_number_event},
        /* billing (workers/invoicing, docs/BILLING.md "Events"): subject =
         * the invoice id, or the account id for account.*, so one
         * invoice's (one account's) messages keep their order */
        {"invoice.finalized", notify_number_event},
        {"invoice.paid", notify_number_event},
        {"invoice.payment_failed", notify_number_event},
        {"invoice.payment_reminder", notify_number_event},
        {"account.billing_suspended", notify_number_event},
        {"account.billing_reinstated", notify_number_event},
};

/* The handler of type, NULL for the types that are not ours (the rest of
 * vox.events, or a command nobody handles). */
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
	msg->consumer = "notifications";
}

int notify_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
                 void *ctx, vox_error_t *err)
{
	(void)prepared;
	for (size_t i = 0; i < n; i++) {
		vox_batch_msg_t *m = &msgs[i];
		vox_handler_fn fn;
		const char *type;
		vox_message_t msg;
		vox_error_t perr;
		json_t *ev = NULL;
		int rc;

		if (vox_event_parse(m->payload, m->len, &ev, &perr) != 0) {
			/* never succeeds: dead-lettered after the commit */
			snprintf(m->dlq_reason, sizeof(m->dlq_reason),
			         "invalid envelope: %.200s", perr.message);
			continue;
		}
		type = vox_json_str(ev, "type");
		fn = type != NULL ? handler_of(type) : NULL;
		if (fn == NULL) {
			/* the rest of vox.events is others' business; a command
			 * nobody handles is dead-lettered (and its operation
			 * failed), as in every other worker */
			if (strncmp(m->topic, "vox.cmd.", 8) == 0)
				snprintf(m->dlq_reason, sizeof(m->dlq_reason),
				         "no handler for type %.200s",
				         type != NULL ? type : "(none)");
			json_decref(ev);
			continue;
		}
		message_view(m, ev, &msg);
		rc = fn(pg, &msg, ctx, err);
		json_decref(ev);
		if (rc != 0)
			return rc; /* the consumer retries, or splits the batch
			            */
	}
	return 0;
}
