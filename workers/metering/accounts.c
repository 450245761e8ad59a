/*
 * metering: the accounts of a batch, checked once per batch in its
 * transaction (usage_records has no foreign key on account_id since
 * migration 0035: its trigger looked the account up once per row).
 *
 * One statement locks every account of the batch FOR KEY SHARE, as the
 * foreign key's trigger did, and returns the ones that are gone. The lock
 * holds an account against deletion until the batch commits, so no record
 * is written for an account deleted between the check and the insert.
 * The records of a missing account (deleted after the number lookup, which
 * reads outside the transaction) become exceptions 'unknown_account'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "vox_buf.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char check_sql[] =
        "WITH l AS (SELECT id FROM accounts WHERE id = ANY($1::uuid[])"
        " FOR KEY SHARE)"
        " SELECT a FROM unnest($1::uuid[]) a"
        " WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a)";

/* Rejects the priced records of account id. */
static size_t reject_account(struct batch *b, const char *id)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nrecs; i++) {
		struct rec *r = &b->recs[i];

		if (r->reason_code != NULL ||
		    strcmp(r->num->account_id, id) != 0)
			continue;
		r->reason_code = "unknown_account";
		snprintf(r->reason, sizeof(r->reason),
		         "the account %s of number %s no longer exists", id,
		         r->cdr.number);
		n++;
	}
	return n;
}

int meter_accounts_check(struct batch *b, vox_pg_t *pg, size_t *rejected,
                         vox_error_t *err)
{
	const char **ids;
	size_t n = 0, uniq = 0;
	vox_buf_t list;
	PGresult *res = NULL;
	int rc;

	*rejected = 0;
	ids = malloc((b->good > 0 ? b->good : 1) * sizeof(*ids));
	if (ids == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].reason_code == NULL && n < b->good)
			ids[n++] = b->recs[i].num->account_id;
	qsort(ids, n, sizeof(*ids), cmp_str);
	/* a uuid[] literal: canonical uuids need no quoting */
	vox_buf_init(&list, (n + 1) * 40 + 3);
	vox_buf_add(&list, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
			continue;
		if (uniq++ > 0)
			vox_buf_add(&list, ",", 1);
		vox_buf_adds(&list, ids[i]);
	}
	vox_buf_add(&list, "}", 1);
	free(ids);
	rc = vox_buf_check(&list, "account list", err);
	if (rc == 0) {
		const char *params[] = {vox_buf_str(&list)};

		rc = vox_pg_execp(pg, "meter_accounts", check_sql, 1, params,
		                  &res, err);
	}
	vox_buf_free(&list);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res); i++)
		*rejected += reject_account(b, PQgetvalue(res, i, 0));
	b->good -= *rejected;
	PQclear(res);
	return 0;
}
