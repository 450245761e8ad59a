/* vox_rating: rate choice and the cost of one CDR (vox_rating.h). */
#include "vox_rating.h"

#include <string.h>

int vox_billable_seconds(int duration_s, int first_s, int next_s)
{
	if (duration_s <= 0)
		return 0;
	if (first_s < 1)
		first_s = 1;
	if (next_s < 1)
		next_s = 1;
	if (duration_s <= first_s)
		return first_s;
	return first_s + (duration_s - first_s + next_s - 1) / next_s * next_s;
}

static bool is_prefix(const char *prefix, const char *digits)
{
	size_t n = strlen(prefix);

	return strncmp(prefix, digits, n) == 0;
}

const vox_rate_t *vox_rate_find(const vox_rate_card_t *card,
                                const vox_cdr_t *cdr, const char *country,
                                const char *number_type)
{
	const char *digits = cdr->to[0] == '+' ? cdr->to + 1 : "";
	const vox_rate_t *best = NULL;
	int best_len = -1, best_spec = -1;

	for (size_t i = 0; i < card->nrates; i++) {
		const vox_rate_t *r = &card->rates[i];
		int len, spec;

		if (r->event_type != cdr->type)
			continue;
		if (r->country[0] && strcmp(r->country, country) != 0)
			continue;
		if (r->number_type[0] &&
		    strcmp(r->number_type, number_type) != 0)
			continue;
		if (r->prefix[0] &&
		    (digits[0] == '\0' || !is_prefix(r->prefix, digits)))
			continue;
		len = (int)strlen(r->prefix);
		spec = (r->country[0] != '\0') + (r->number_type[0] != '\0');
		if (len > best_len || (len == best_len && spec > best_spec)) {
			best = r;
			best_len = len;
			best_spec = spec;
		}
	}
	return best;
}

int vox_rate_cdr(const vox_rate_card_t *card, const vox_cdr_t *cdr,
                 const char *country, const char *number_type,
                 vox_charge_t *out, vox_error_t *err)
{
	const vox_rate_t *r = vox_rate_find(card, cdr, country, number_type);
	unsigned __int128 cost;

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "rate card %s has no %s rate for %s",
		                     card->id, vox_cdr_type_name(cdr->type),
		                     cdr->to);
	out->rate = r;
	if (vox_cdr_is_call(cdr->type)) {
		out->rate_micros = r->per_minute_micros;
		out->billable_s = vox_billable_seconds(cdr->duration_s,
		                                       r->first_increment_s,
		                                       r->next_increment_s);
		if (out->billable_s == 0)
			return 0; /* unanswered: no charge, no connect fee */
		cost = (unsigned __int128)r->per_minute_micros *
		       (unsigned)out->billable_s;
		cost = (cost + 59) / 60 + (unsigned __int128)r->setup_micros;
	} else {
		out->rate_micros = r->per_unit_micros;
		out->units = cdr->segments;
		cost = (unsigned __int128)r->per_unit_micros *
		               (unsigned)cdr->segments +
		       (unsigned __int128)r->setup_micros;
	}
	if (cost > (unsigned __int128)INT64_MAX)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "cost overflows 64-bit micro-units");
	out->cost_micros = (int64_t)cost;
	return 0;
}
