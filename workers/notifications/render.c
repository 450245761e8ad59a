/*
 * Templates: <dir>/<lang>/<event type>.<part>.mustache, part one of
 * subject, txt, html, sms; loaded and checked once at startup (a template
 * that does not parse stops the worker, naming the file), rendered with
 * vox_template over {event, data, account, money}. The account's language
 * picks the directory; a missing template falls back to en. Mustache cannot
 * format money: for every integer data.<name>_micros of an event whose
 * data has a currency, money.<name> is the amount rounded to the
 * currency's minor unit with its code ("12.35 USD", vox_money_format_minor),
 * so billing templates write {{money.amount_due}}.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_json.h"
#include "vox_money.h"
#include "vox_template.h"

#define TEMPLATE_MAX_BYTES (64 * 1024)
#define RENDER_MAX_BYTES   (256 * 1024)

/* The types a chain carries to email and SMS: en has all their parts. */
static const char *const required_types[] = {
        "usage.trigger.fired",       "number.purchased",
        "number.activated",          "number.deactivated",
        "number.released",           "number.configured",
        "reservation.expired",       "endpoint.disabled",
        "porting_order.submitted",   "porting_order.in_process",
        "porting_order.exception",   "porting_order.foc_date_confirmed",
        "porting_order.ported",      "porting_order.cancel_pending",
        "porting_order.cancelled",   "porting_order.expired",
        "invoice.finalized",         "invoice.paid",
        "invoice.payment_failed",    "invoice.payment_reminder",
        "account.billing_suspended", "account.billing_reinstated",
};
static const char *const parts[] = {"subject", "txt", "html", "sms"};

struct template
{
	char lang[40];
	char name[240]; /* "<type>.<part>" */
	char *text;
};

struct notify_templates {
	struct template *list;
	size_t n, alloc;
};

void notify_templates_free(struct notify_templates *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->list[i].text);
	free(t->list);
	free(t);
}

static const char *template_find(const struct notify_templates *t,
                                 const char *lang, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->list[i].lang, lang) == 0 &&
		    strcmp(t->list[i].name, name) == 0)
			return t->list[i].text;
	return NULL;
}

static char *slurp(const char *path, vox_error_t *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len;

	if (f == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "cannot read %s",
		              path);
		return NULL;
	}
	text = malloc(TEMPLATE_MAX_BYTES + 1);
	len = text ? fread(text, 1, TEMPLATE_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (text == NULL || len > TEMPLATE_MAX_BYTES) {
		free(text);
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "%s: larger than %d bytes", path,
		              TEMPLATE_MAX_BYTES);
		return NULL;
	}
	text[len] = '\0';
	return text;
}

/* Adds <dir>/<lang>/<file> ("<name>.mustache"), checked. */
static int template_add(struct notify_templates *t, const char *dir,
                        const char *lang, const char *file, vox_error_t *err)
{
	char path[4096 + 600];
	size_t flen = strlen(file), suffix = strlen(".mustache");
	struct template *tp;
	vox_error_t why;

	if (flen <= suffix || strcmp(file + flen - suffix, ".mustache") != 0)
		return 0;
	if (t->n == t->alloc) {
		size_t alloc = t->alloc ? 2 * t->alloc : 64;
		struct template *grown =
		        realloc(t->list, alloc * sizeof(*grown));

		if (grown == NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, false,
			                     "out of memory");
		t->list = grown;
		t->alloc = alloc;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", dir, lang, file);
	tp = &t->list[t->n];
	snprintf(tp->lang, sizeof(tp->lang), "%s", lang);
	snprintf(tp->name, sizeof(tp->name), "%.*s", (int)(flen - suffix),
	         file);
	tp->text = slurp(path, err);
	if (tp->text == NULL)
		return err->code;
	if (!vox_template_check(tp->text, &why)) {
		free(tp->text);
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "template %s: %s", path, why.message);
	}
	t->n++;
	return 0;
}

static int templates_scan(struct notify_templates *t, const char *dir,
                          const char *lang, vox_error_t *err)
{
	char path[4096 + 64];
	struct dirent *ent;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, lang);
	d = opendir(path);
	if (d == NULL)
		return 0; /* a file, not a language */
	while (rc == 0 && (ent = readdir(d)) != NULL)
		if (ent->d_name[0] != '.')
			rc = template_add(t, dir, lang, ent->d_name, err);
	closedir(d);
	return rc;
}

static int templates_complete(const struct notify_templates *t, const char *dir,
                              vox_error_t *err)
{
	char name[240];

	for (size_t i = 0; i < sizeof(required_types) / sizeof(*required_types);
	     i++)
		for (size_t j = 0; j < sizeof(parts) / sizeof(*parts); j++) {
			snprintf(name, sizeof(name), "%s.%s", required_types[i],
			         parts[j]);
			if (template_find(t, "en", name) == NULL)
				return vox_error_set(
				        err, VOX_ERR_INVALID, false,
				        "missing template %s/en/%s.mustache",
				        dir, name);
		}
	return 0;
}

struct notify_templates *notify_templates_load(const char *dir,
                                               vox_error_t *err)
{
	struct notify_templates *t = calloc(1, sizeof(*t));
	struct dirent *ent;
	DIR *d = opendir(dir);
	int rc = 0;

	if (t == NULL || d == NULL) {
		if (d != NULL)
			closedir(d);
		free(t);
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "cannot open the templates directory %s", dir);
		return NULL;
	}
	while (rc == 0 && (ent = readdir(d)) != NULL)
		if (ent->d_name[0] != '.' && strlen(ent->d_name) < 40)
			rc = templates_scan(t, dir, ent->d_name, err);
	closedir(d);
	if (rc == 0)
		rc = templates_complete(t, dir, err);
	if (rc != 0) {
		notify_templates_free(t);
		return NULL;
	}
	return t;
}

/* {<name>: "12.35 USD"} for every integer <name>_micros of data, when
 * data.currency is a currency code; {} otherwise. */
static json_t *money_of(const json_t *data)
{
	const char *currency = vox_json_str(data, "currency"), *key;
	static const char suffix[] = "_micros";
	json_t *money = json_object(), *value;

	if (money == NULL || currency == NULL ||
	    vox_currency_exponent(currency) < 0)
		return money;
	json_object_foreach((json_t *)data, key, value)
	{
		size_t len = strlen(key), slen = sizeof(suffix) - 1;
		char amount[32], text[48], name[128];

		if (!json_is_integer(value) || len <= slen ||
		    len - slen >= sizeof(name) ||
		    strcmp(key + len - slen, suffix) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - slen), key);
		vox_money_format_minor((int64_t)json_integer_value(value),
		                       currency, amount);
		snprintf(text, sizeof(text), "%s %s", amount, currency);
		json_object_set_new(money, name, json_string(text));
	}
	return money;
}

char *notify_render(const struct notify_templates *t,
                    const struct notify_delivery *d, const char *part,
                    vox_error_t *err)
{
	char name[240];
	const char *tmpl;
	json_t *event, *ctx;
	char *out;

	snprintf(name, sizeof(name), "%s.%s", d->event_type, part);
	tmpl = template_find(t, d->language, name);
	if (tmpl == NULL)
		tmpl = template_find(t, "en", name);
	if (tmpl == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "no template %s",
		              name);
		return NULL;
	}
	event = json_loads(d->payload, 0, NULL);
	ctx = json_pack("{s:o?, s:O?, s:{s:s, s:s, s:s}, s:o?}", "event", event,
	                "data", json_object_get(event, "data"), "account", "id",
	                d->account_id, "name", d->account_name, "language",
	                d->language, "money",
	                money_of(json_object_get(event, "data")));
	if (ctx == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
		return NULL;
	}
	out = vox_template_render(tmpl, ctx, strcmp(part, "html") == 0,
	                          RENDER_MAX_BYTES, err);
	json_decref(ctx);
	/* one-line parts: no trailing line break */
	for (size_t len = out ? strlen(out) : 0;
	     len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ' ||
	                 out[len - 1] == '\r');
	     len--)
		out[len - 1] = '\0';
	return out;
}
