/* metering: rate cards and account assignments, cached in memory. */
#include <stdlib.h>
#include <string.h>

#include "metering.h"
#include "vox_log.h"

void meter_cards_free(struct meter_ctx *m)
{
	for (size_t i = 0; i < m->ncards; i++)
		free(m->cards[i].rates);
	free(m->cards);
	free(m->assigns);
	m->cards = NULL;
	m->assigns = NULL;
	m->ncards = m->nassigns = 0;
}

static vox_rate_card_t *card_by_id(struct meter_ctx *m, const char *id)
{
	for (size_t i = 0; i < m->ncards; i++)
		if (strcmp(m->cards[i].id, id) == 0)
			return &m->cards[i];
	return NULL;
}

static int64_t us_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? 0
	               : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

#define US_OF(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* clang-format off */
static const char cards_sql[] =
	"SELECT id, currency, " US_OF("effective_from") ", "
	US_OF("effective_to") ", is_default FROM rate_cards";
static const char rates_sql[] =
	"SELECT rate_card_id, id, event_type, prefix, coalesce(country, ''), "
	"coalesce(number_type, ''), per_minute_micros, per_unit_micros, "
	"setup_micros, first_increment_s, next_increment_s FROM rates";
static const char assigns_sql[] =
	"SELECT account_id, rate_card_id, " US_OF("effective_from") ", "
	US_OF("effective_to") " FROM account_rate_cards";
/* clang-format on */

static int load(struct meter_ctx *m, vox_pg_t *pg, vox_error_t *err)
{
	PGresult *cards = NULL, *rates = NULL, *assigns = NULL;
	int rc;

	rc = vox_pg_exec(pg, cards_sql, 0, NULL, &cards, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, rates_sql, 0, NULL, &rates, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, assigns_sql, 0, NULL, &assigns, err);
	if (rc != 0)
		goto out;
	meter_cards_free(m);
	m->ncards = (size_t)PQntuples(cards);
	m->cards = calloc(m->ncards + 1, sizeof(*m->cards));
	m->assigns =
	        calloc((size_t)PQntuples(assigns) + 1, sizeof(*m->assigns));
	if (m->cards == NULL || m->assigns == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, false,
		                   "rate cards: oom");
		goto out;
	}
	for (int i = 0; i < PQntuples(cards); i++) {
		vox_rate_card_t *c = &m->cards[i];

		snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(cards, i, 0));
		snprintf(c->currency, sizeof(c->currency), "%s",
		         PQgetvalue(cards, i, 1));
		c->from_us = us_value(cards, i, 2);
		c->to_us = us_value(cards, i, 3);
		c->is_default = PQgetvalue(cards, i, 4)[0] == 't';
		c->rates =
		        calloc((size_t)PQntuples(rates) + 1, sizeof(*c->rates));
		if (c->rates == NULL) {
			rc = vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
			goto out;
		}
	}
	for (int i = 0; i < PQntuples(rates); i++) {
		vox_rate_card_t *c = card_by_id(m, PQgetvalue(rates, i, 0));
		vox_rate_t *r;

		if (c == NULL)
			continue;
		r = &c->rates[c->nrates++];
		r->id = strtoll(PQgetvalue(rates, i, 1), NULL, 10);
		r->event_type = (vox_cdr_type_t)vox_cdr_type_parse(
		        PQgetvalue(rates, i, 2));
		snprintf(r->prefix, sizeof(r->prefix), "%s",
		         PQgetvalue(rates, i, 3));
		snprintf(r->country, sizeof(r->country), "%s",
		         PQgetvalue(rates, i, 4));
		snprintf(r->number_type, sizeof(r->number_type), "%s",
		         PQgetvalue(rates, i, 5));
		r->per_minute_micros = us_value(rates, i, 6);
		r->per_unit_micros = us_value(rates, i, 7);
		r->setup_micros = us_value(rates, i, 8);
		r->first_increment_s = (int)us_value(rates, i, 9);
		r->next_increment_s = (int)us_value(rates, i, 10);
	}
	for (int i = 0; i < PQntuples(assigns); i++) {
		struct assignment *a = &m->assigns[m->nassigns];

		a->card = card_by_id(m, PQgetvalue(assigns, i, 1));
		if (a->card == NULL)
			continue;
		snprintf(a->account_id, sizeof(a->account_id), "%s",
		         PQgetvalue(assigns, i, 0));
		a->from_us = us_value(assigns, i, 2);
		a->to_us = us_value(assigns, i, 3);
		m->nassigns++;
	}
	vox_logf(VOX_LOG_INFO,
	         "rate cards loaded: %zu cards, %d rates, %zu "
	         "assignments (version %lld)",
	         m->ncards, PQntuples(rates), m->nassigns, m->version);
out:
	PQclear(cards);
	PQclear(rates);
	PQclear(assigns);
	return rc;
}

int meter_cards_refresh(struct meter_ctx *m, vox_pg_t *pg, vox_error_t *err)
{
	PGresult *res = NULL;
	long long version;
	int rc = vox_pg_execp(pg, "meter_version",
	                      "SELECT version FROM rating_version", 0, NULL,
	                      &res, err);

	if (rc != 0)
		return rc;
	version = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
	                              : 0;
	PQclear(res);
	if (version == m->version && m->cards != NULL)
		return 0;
	m->version = version;
	rc = load(m, pg, err);
	if (rc != 0)
		m->version = 0;
	return rc;
}

static int covers(int64_t from_us, int64_t to_us, int64_t t)
{
	return from_us <= t && (to_us == 0 || t < to_us);
}

const vox_rate_card_t *meter_card_for(const struct meter_ctx *m,
                                      const char *account_id,
                                      const char *currency, int64_t t_us)
{
	const struct assignment *best = NULL;
	const vox_rate_card_t *dflt = NULL;

	for (size_t i = 0; i < m->nassigns; i++) {
		const struct assignment *a = &m->assigns[i];

		if (strcmp(a->account_id, account_id) == 0 &&
		    covers(a->from_us, a->to_us, t_us) &&
		    (best == NULL || a->from_us > best->from_us))
			best = a;
	}
	if (best != NULL)
		return covers(best->card->from_us, best->card->to_us, t_us)
		               ? best->card
		               : NULL;
	for (size_t i = 0; i < m->ncards; i++) {
		const vox_rate_card_t *c = &m->cards[i];

		if (c->is_default && strcmp(c->currency, currency) == 0 &&
		    covers(c->from_us, c->to_us, t_us) &&
		    (dflt == NULL || c->from_us > dflt->from_us))
			dflt = c;
	}
	return dflt;
}
