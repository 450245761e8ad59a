/*
 * The metering worker's batch, shared by the files that handle one part
 * of it (not a public interface):
 *   batch.c       the flow: build (parse, look up, price), then write
 *   pricing.c     parsing the messages, our numbers, rating each record
 *   accounts.c    the batch's accounts checked once (no per-row key)
 *   store.c       the records as binary arrays and the one INSERT
 *                 statement (dedup, usage_records, usage_daily)
 *   exceptions.c  records that cannot be rated (usage_exceptions, DLQ)
 *   triggers.c    usage triggers of the touched (account, day) pairs
 *   rated.c       vox.usage.rated events
 *   partitions.c  usage_records partitions kept ahead (the tick)
 */
#ifndef METERING_BATCH_H
#define METERING_BATCH_H

#include <jansson.h>
#include <stddef.h>

#include "metering.h"
#include "vox_cdr.h"
#include "vox_copy.h"
#include "vox_event.h"
#include "vox_uuid.h"

/* Columns of a priced record in the insert statement (store.c). */
#define METER_COLS 21

/* One of our numbers as the batch found it. */
struct number {
	char e164[24];
	char id[40], account_id[40], country[3], type[12], currency[4];
	int used;  /* slot in use */
	int found; /* owned by an account */
};

struct rec {
	vox_cdr_t cdr;
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	char trace[VOX_TRACEPARENT_LEN]; /* the message's, or "" */
	long long rerate_of;             /* 0: not a re-rate */
	const struct number *num;
	/* what pricing chose: copied, as the cards may be reloaded before
	 * the batch is written */
	char card_id[40], currency[4];
	long long rate_id;
	vox_charge_t charge; /* charge.rate is not kept (NULL) */
	char usage_id[VOX_UUID_STRLEN];
	/* set when the record cannot be rated */
	const char *reason_code;
	char reason[200];
	json_t *data; /* the event data (or raw payload), for an exception */
	size_t msg;
	int inserted; /* new in usage_records (not a duplicate) */
};

struct batch {
	struct meter_ctx *m;
	vox_batch_msg_t *msgs;
	size_t n;
	struct rec *recs;
	size_t nrecs;
	struct number *nums; /* open addressing, nums_cap a power of 2 */
	size_t nums_cap;
	size_t good; /* records priced */
	/* their columns as binary arrays (store.c) */
	vox_copybuf_t cols[METER_COLS];
};

/* pricing.c */
/* Fills r from message msg; on failure r->reason_code says why. */
void meter_parse(struct batch *b, size_t msg, struct rec *r);
/* The batch's slot of e164 (made on first use). */
struct number *meter_number_slot(struct batch *b, const char *e164);
/* Looks up every number of the batch in one query. */
int meter_numbers_load(struct batch *b, vox_pg_t *pg, vox_error_t *err);
/* Prices r with its account's card (under cards_lock). */
void meter_rate(struct batch *b, struct rec *r);

/* store.c */
/* The priced records' columns as binary arrays (no database needed). */
int meter_rows_build(struct batch *b);
void meter_rows_free(struct batch *b);
/* The insert statement; *dups has one row (idx) per priced record that
 * was not inserted (a duplicate). */
int meter_insert(struct batch *b, vox_pg_t *pg, PGresult **dups,
                 vox_error_t *err);

/* accounts.c */
/* Locks the accounts of the priced records (FOR KEY SHARE) and rejects
 * the records of those that no longer exist ('unknown_account');
 * *rejected says how many (b->good is lowered by as many). */
int meter_accounts_check(struct batch *b, vox_pg_t *pg, size_t *rejected,
                         vox_error_t *err);

/* exceptions.c */
int meter_exception_write(struct batch *b, vox_pg_t *pg, struct rec *r,
                          vox_error_t *err);

/* triggers.c: the triggers of the new records' (account, day) pairs. */
int meter_triggers(struct batch *b, vox_pg_t *pg, vox_error_t *err);

/* rated.c: one event per account per VOX_USAGE_RATED_MAX new records. */
int meter_rated_events(struct batch *b, vox_pg_t *pg, vox_error_t *err);

#endif
