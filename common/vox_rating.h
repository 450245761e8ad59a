/*
 * vox_rating: pricing one CDR with a rate card (docs/METERING.md). Pure
 * computation: the metering worker loads the cards from PostgreSQL.
 *
 * Rate choice: among the card's rates for the record's event type, the
 * longest prefix of the rated number's digits wins ("to": the destination
 * of outbound records, our number on inbound ones; a party that is not
 * E.164 matches only the catch-all prefix ""). A rate naming a country or
 * number type applies only to our numbers of that country/type and wins a
 * tie of prefix length over one that does not.
 *
 * Calls: unanswered (0 s) calls cost nothing. Otherwise billable seconds =
 * the first increment, then whole next increments:
 *   d <= first ? first : first + ceil((d - first) / next) * next
 * (60/60 per-minute, 6/6, 1/1 per-second), and
 *   cost = setup + ceil(per_minute * billable / 60)   [micro-units]
 * i.e. a fraction of a micro-unit is rounded UP, once per record.
 * Messages: units = segments, cost = setup + per_unit * units.
 */
#ifndef VOX_RATING_H
#define VOX_RATING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_cdr.h"
#include "vox_error.h"

typedef struct vox_rate {
	long long id;
	vox_cdr_type_t event_type;
	char prefix[16];
	char country[3];      /* "" = any */
	char number_type[12]; /* "" = any */
	int64_t per_minute_micros, per_unit_micros, setup_micros;
	int first_increment_s, next_increment_s;
} vox_rate_t;

typedef struct vox_rate_card {
	char id[40];
	char currency[4];
	int64_t from_us, to_us; /* effective [from, to); to 0 = open */
	bool is_default;
	vox_rate_t *rates;
	size_t nrates;
} vox_rate_card_t;

typedef struct vox_charge {
	const vox_rate_t *rate;
	int billable_s;
	int units;
	int64_t rate_micros; /* per minute (calls) or per unit (messages) */
	int64_t cost_micros;
} vox_charge_t;

/* Billable seconds of a call of duration_s under first/next increments. */
int vox_billable_seconds(int duration_s, int first_s, int next_s);

/* The best rate of card for the record, or NULL. country/number_type are
 * those of our number. */
const vox_rate_t *vox_rate_find(const vox_rate_card_t *card,
                                const vox_cdr_t *cdr, const char *country,
                                const char *number_type);

/* Prices cdr with card: 0, or VOX_ERR_NOT_FOUND (no rate applies) or
 * VOX_ERR_LIMIT (the cost overflows 64 bits). */
int vox_rate_cdr(const vox_rate_card_t *card, const vox_cdr_t *cdr,
                 const char *country, const char *number_type,
                 vox_charge_t *out, vox_error_t *err);

#endif
