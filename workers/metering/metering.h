/*
 * metering: the worker that rates carrier CDRs from vox.cdr.raw into
 * usage_records, exactly once per (carrier, record id), with usage_daily,
 * usage triggers, exceptions and usage.rated events in the same
 * transaction (docs/METERING.md).
 */
#ifndef METERING_H
#define METERING_H

#include <pthread.h>
#include <stdint.h>

#include "vox_consumer.h"
#include "vox_pg.h"
#include "vox_rating.h"

/* A rate card assignment (account_rate_cards row). */
struct assignment {
	char account_id[40];
	const vox_rate_card_t *card;
	int64_t from_us, to_us; /* to 0 = open */
};

struct meter_ctx {
	/* settings */
	long partitions_ahead;
	/* rate cards in memory, reloaded when rating_version changes; the
	 * polling thread (prepare) and the writer (a batch it builds itself)
	 * both price, so under cards_lock */
	pthread_mutex_t cards_lock;
	long long version;
	vox_rate_card_t *cards;
	size_t ncards;
	struct assignment *assigns;
	size_t nassigns;
	/* the physical connection the insert was prepared on */
	unsigned insert_conn;
};

/* Reloads the cards when rating_version moved (inside the batch tx). */
int meter_cards_refresh(struct meter_ctx *m, vox_pg_t *pg, vox_error_t *err);

/* The card pricing account's usage at t (in the account's currency), or
 * NULL. */
const vox_rate_card_t *meter_card_for(const struct meter_ctx *m,
                                      const char *account_id,
                                      const char *currency, int64_t t_us);

void meter_cards_free(struct meter_ctx *m);

/* The batch handler (vox_batch_fn) and its pipelined preparation
 * (vox_batch_prepare_fn / vox_batch_release_fn). */
int meter_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
                void *ctx, vox_error_t *err);
void *meter_prepare(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *ctx);
void meter_release(void *prepared, void *ctx);

/* Creates usage_records partitions ahead (the tick). */
void meter_tick(vox_pg_t *pg, void *ctx);

#endif
