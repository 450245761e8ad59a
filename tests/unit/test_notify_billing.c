/*
 * The billing notifications' templates (workers/notifications/templates,
 * docs/NOTIFICATIONS.md): every part of every billing type renders in en
 * and es from the events' data, money formatted from micro-units by the
 * renderer (money.<name> from data.<name>_micros and data.currency), and
 * an unknown language falls back to en. Run from the repository root
 * (tests/run and /work/vtest do).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/notifications/notifications.h"

#define DIR "workers/notifications/templates"

static const char *const types[] = {
        "invoice.finalized",         "invoice.paid",
        "invoice.payment_failed",    "invoice.payment_reminder",
        "account.billing_suspended", "account.billing_reinstated",
};
static const char *const parts[] = {"subject", "txt", "html", "sms"};

/* A delivery of an event of type with this data (JSON text). */
static void delivery(struct notify_delivery *d, const char *type,
                     const char *lang, const char *data)
{
	char payload[2048];

	memset(d, 0, sizeof(*d));
	snprintf(d->event_type, sizeof(d->event_type), "%s", type);
	snprintf(d->language, sizeof(d->language), "%s", lang);
	snprintf(d->account_name, sizeof(d->account_name), "Acme & Co");
	snprintf(d->account_id, sizeof(d->account_id),
	         "0193a601-2b3c-7d4e-8f50-617283940a1b");
	snprintf(payload, sizeof(payload),
	         "{\"id\":\"msg_1\",\"type\":\"%s\",\"timestamp\":"
	         "\"2026-12-02T00:00:00Z\",\"sequence\":1,\"account_id\":"
	         "\"0193a601-2b3c-7d4e-8f50-617283940a1b\",\"data\":%s}",
	         type, data);
	d->payload = strdup(payload);
}

/* The data the billing events carry (docs/BILLING.md "Events"). */
static const char *data_of(const char *type)
{
	if (strncmp(type, "account.", 8) == 0)
		return "{\"account_id\":\"0193a601-2b3c-7d4e-8f50-"
		       "617283940a1b\","
		       "\"invoice_id\":\"0193a601-0000-7000-8000-"
		       "000000000001\","
		       "\"numbers\":3,\"previous_standing\":\"suspended\"}";
	return "{\"invoice_id\":\"0193a601-0000-7000-8000-000000000001\","
	       "\"number\":\"0193A601-000007\",\"total_micros\":6198629,"
	       "\"amount_due_micros\":6200000,\"amount_paid_micros\":6200000,"
	       "\"currency\":\"USD\",\"due_at\":\"2026-12-01T05:00:00Z\","
	       "\"period_start\":\"2026-11-01T04:00:00Z\",\"period_end\":"
	       "\"2026-12-01T05:00:00Z\",\"days_past_due\":8,\"step\":1,"
	       "\"decline_code\":\"insufficient_funds\"}";
}

Test(notify_billing, every_part_renders_in_en_and_es)
{
	static const char *const langs[] = {"en", "es", "fr"};
	vox_error_t err;
	struct notify_templates *t = notify_templates_load(DIR, &err);

	cr_assert_not_null(t, "%s", err.message);
	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
		for (size_t l = 0; l < sizeof(langs) / sizeof(*langs); l++)
			for (size_t p = 0; p < sizeof(parts) / sizeof(*parts);
			     p++) {
				struct notify_delivery d;
				char *out;

				delivery(&d, types[i], langs[l],
				         data_of(types[i]));
				out = notify_render(t, &d, parts[p], &err);
				cr_assert_not_null(out, "%s %s %s: %s",
				                   types[i], langs[l], parts[p],
				                   err.message);
				cr_expect_gt(strlen(out), 10, "%s %s %s: %s",
				             types[i], langs[l], parts[p], out);
				/* an invoice is named by its number */
				if (strncmp(types[i], "invoice.", 8) == 0 &&
				    strcmp(parts[p], "subject") == 0)
					cr_expect(strstr(out,
					                 "0193A601-000007") !=
					                  NULL,
					          "%s", out);
				free(out);
				free(d.payload);
			}
	notify_templates_free(t);
}

Test(notify_billing, money_is_formatted_from_micros)
{
	vox_error_t err;
	struct notify_templates *t = notify_templates_load(DIR, &err);
	struct notify_delivery d;
	char *out;

	cr_assert_not_null(t, "%s", err.message);
	delivery(&d, "invoice.payment_reminder", "en",
	         data_of("invoice.payment_reminder"));
	out = notify_render(t, &d, "txt", &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_expect(strstr(out, "6.20 USD is still unpaid") != NULL, "%s", out);
	cr_expect(strstr(out, "8 days past due") != NULL, "%s", out);
	cr_expect(strstr(out, "Hello Acme & Co,") != NULL, "%s", out);
	free(out);
	out = notify_render(t, &d, "html", &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_expect(strstr(out, "Acme &amp; Co") != NULL, "%s", out);
	free(out);
	free(d.payload);

	/* no decimals for JPY; half away from zero to the minor unit */
	delivery(&d, "invoice.finalized", "es",
	         "{\"number\":\"X-000001\",\"amount_due_micros\":1500000,"
	         "\"total_micros\":1499999,\"currency\":\"JPY\","
	         "\"due_at\":\"2026-12-01T00:00:00Z\"}");
	out = notify_render(t, &d, "subject", &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_expect_str_eq(out, "Factura X-000001: 2 JPY a pagar");
	free(out);
	free(d.payload);

	/* without a currency, nothing is formatted (and nothing breaks) */
	delivery(&d, "invoice.payment_reminder", "en",
	         "{\"number\":\"X-000002\",\"amount_due_micros\":1,"
	         "\"days_past_due\":1}");
	out = notify_render(t, &d, "sms", &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_expect_str_eq(out, "VoxLink: invoice X-000002  is 1 days past due");
	free(out);
	free(d.payload);
	notify_templates_free(t);
}
