/*
 * vox.porting_order.submit_requested: a draft (first submit) or an order in
 * exception (resubmit after PATCH) goes to the carrier.
 *
 * A first submit whose numbers have several losing carriers is split: one
 * child per losing carrier, with a deterministic id (md5 of "<parent
 * id>:<losing carrier>") so a submit run again after a crash finds the
 * same children, the secrets sealed again for each child, the numbers
 * moved. Each leaf is then created at the carrier (Idempotency-Key
 * "<leaf id>:<leaf version>": a redelivered submit never ports twice) or,
 * after an exception, updated ("<leaf id>:<version>:<submits so far>").
 *
 * A carrier refusal fails the operation with the carrier's reason and
 * leaves the order as it was (the split is undone: a savepoint), never a
 * half split; orders already created at the carrier by this submit are
 * cancelled there. A carrier still down after vox_carrier's retries
 * fails it the same way (carrier_unavailable: submit again); our own
 * retriable errors roll everything back for the consumer to retry.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_carrier_port.h"
#include "vox_fault.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_porting.h"

#define KIND "porting.submit"

/* A leaf's request to the carrier, with its secrets opened. */
struct leaf_req {
	char *authorized_name, *business_name, *address, *foc, *loa, *invoice;
	char *account_number, *pin; /* wiped when freed */
	char **e164s;
	int n;
	long submits; /* the leaf's applied submits so far */
};

static char *dup_or_null(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL
	                                : strdup(PQgetvalue(res, 0, col));
}

static void wipe_free(char *secret)
{
	if (secret != NULL) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
}

static void leaf_req_free(struct leaf_req *r)
{
	free(r->authorized_name);
	free(r->business_name);
	free(r->address);
	free(r->foc);
	free(r->loa);
	free(r->invoice);
	wipe_free(r->account_number);
	wipe_free(r->pin);
	for (int i = 0; i < r->n; i++)
		free(r->e164s[i]);
	free(r->e164s);
	memset(r, 0, sizeof(*r));
}

/* Opens a sealed column (bytea as text) bound to field of order/account.
 * *plain NULL when the column is NULL. */
static int open_secret(const struct porting_ctx *pc, const char *column_text,
                       const char *field, const char *order_id,
                       const char *account_id, char **plain, vox_error_t *err)
{
	unsigned char *sealed;
	size_t sealed_len = 0, plain_len = 0;
	char aad[200];
	int rc;

	*plain = NULL;
	if (column_text == NULL)
		return 0;
	sealed = PQunescapeBytea((const unsigned char *)column_text,
	                         &sealed_len);
	if (sealed == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	vox_porting_aad(aad, sizeof(aad), field, order_id, account_id);
	rc = vox_crypto_open(pc->ring, sealed, sealed_len, aad, strlen(aad),
	                     plain, &plain_len, err);
	PQfreemem(sealed);
	if (rc != 0)
		/* never the value: only which field of which order */
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "the sealed %s of order %s does not open",
		                     field, order_id);
	return 0;
}

static int leaf_load(vox_pg_t *pg, const struct porting_ctx *pc,
                     const struct por_order *leaf, struct leaf_req *r,
                     vox_error_t *err)
{
	const char *params[] = {leaf->id};
	PGresult *res;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = vox_pg_execp(
	        pg, "por_leaf_load",
	        "SELECT authorized_name, business_name, service_address::text, "
	        "account_number_enc, pin_enc, requested_foc_date::text, "
	        "loa_document_id::text, invoice_document_id::text, (SELECT "
	        "count(*) FROM porting_order_events e WHERE e.order_id = o.id "
	        "AND e.to_status = 'submitted' AND e.applied) FROM "
	        "porting_orders o WHERE o.id = $1::uuid",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "porting order %s vanished", leaf->id);
	}
	r->authorized_name = dup_or_null(res, 0);
	r->business_name = dup_or_null(res, 1);
	r->address = dup_or_null(res, 2);
	r->foc = dup_or_null(res, 5);
	r->loa = dup_or_null(res, 6);
	r->invoice = dup_or_null(res, 7);
	r->submits = strtol(PQgetvalue(res, 0, 8), NULL, 10);
	rc = open_secret(pc,
	                 PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
	                 "account_number", leaf->id, leaf->account_id,
	                 &r->account_number, err);
	if (rc == 0)
		rc = open_secret(
		        pc,
		        PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4),
		        "pin", leaf->id, leaf->account_id, &r->pin, err);
	PQclear(res);
	if (rc != 0)
		return rc;
	rc = vox_pg_execp(pg, "por_leaf_numbers",
	                  "SELECT e164 FROM porting_order_numbers WHERE "
	                  "order_id = $1::uuid ORDER BY e164",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	r->e164s = calloc((size_t)PQntuples(res) + 1, sizeof(char *));
	if (r->e164s == NULL) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
		if ((r->e164s[r->n] = strdup(PQgetvalue(res, i, 0))) != NULL)
			r->n++;
	PQclear(res);
	return 0;
}

/* Seals the parent's secret again for the child (field's aad). */
static int reseal(vox_pg_t *pg, const struct porting_ctx *pc,
                  const struct por_order *parent, const char *child_id,
                  const char *field, const char *column_text, vox_error_t *err)
{
	char aad[200], *plain = NULL, *hex = NULL;
	int rc;

	rc = open_secret(pc, column_text, field, parent->id, parent->account_id,
	                 &plain, err);
	if (rc != 0 || plain == NULL)
		return rc;
	vox_porting_aad(aad, sizeof(aad), field, child_id, parent->account_id);
	rc = vox_crypto_seal_hex(pc->ring, plain, aad, &hex, err);
	wipe_free(plain);
	if (rc != 0)
		return rc;
	const char *params[] = {child_id, hex};
	rc = vox_pg_execp(
	        pg,
	        strcmp(field, "pin") == 0 ? "por_reseal_pin"
	                                  : "por_reseal_account",
	        strcmp(field, "pin") == 0
	                ? "UPDATE porting_orders SET pin_enc = decode($2, "
	                  "'hex') WHERE id = $1::uuid"
	                : "UPDATE porting_orders SET account_number_enc = "
	                  "decode($2, 'hex') WHERE id = $1::uuid",
	        2, params, NULL, err);
	free(hex);
	return rc;
}

/* One child of parent for losing carrier lc, its secrets and numbers. */
static int split_child(vox_pg_t *pg, const struct porting_ctx *pc,
                       const struct por_order *parent, const char *lc,
                       const char *account_enc, const char *pin_enc,
                       struct por_order *child, vox_error_t *err)
{
	const char *params[] = {parent->id, lc};
	char child_id[40];
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "por_split_child",
	        "WITH c AS (INSERT INTO porting_orders (id, account_id, "
	        "parent_id, status, version, losing_carrier, authorized_name, "
	        "business_name, service_address, account_number_last2, "
	        "pin_last2, requested_foc_date, loa_document_id, "
	        "invoice_document_id, customer_reference, expires_at) SELECT "
	        "md5(p.id::text || ':' || $2)::uuid, p.account_id, p.id, "
	        "'draft', p.version, nullif($2, ''), p.authorized_name, "
	        "p.business_name, p.service_address, p.account_number_last2, "
	        "p.pin_last2, p.requested_foc_date, p.loa_document_id, "
	        "p.invoice_document_id, p.customer_reference, p.expires_at "
	        "FROM porting_orders p WHERE p.id = $1::uuid ON CONFLICT (id) "
	        "DO NOTHING) SELECT md5($1::text || ':' || $2)::uuid::text",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	snprintf(child_id, sizeof(child_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	rc = reseal(pg, pc, parent, child_id, "account_number", account_enc,
	            err);
	if (rc == 0)
		rc = reseal(pg, pc, parent, child_id, "pin", pin_enc, err);
	if (rc != 0)
		return rc;
	const char *move[] = {parent->id, lc, child_id};
	rc = vox_pg_execp(pg, "por_split_numbers",
	                  "UPDATE porting_order_numbers SET order_id = "
	                  "$3::uuid, updated_at = now() WHERE order_id = "
	                  "$1::uuid AND coalesce(losing_carrier, '') = $2",
	                  3, move, NULL, err);
	if (rc != 0)
		return rc;
	return por_order_lock(pg, child_id, NULL, child, err);
}

/* The leaves of a first submit: the order itself (one losing carrier) or
 * its new children. */
static int split(vox_pg_t *pg, const struct porting_ctx *pc,
                 struct por_order *o, struct por_order *leaves, int *n,
                 vox_error_t *err)
{
	const char *params[] = {o->id};
	PGresult *res, *sec;
	int rc;

	*n = 0;
	rc = vox_pg_execp(pg, "por_split_carriers",
	                  "SELECT DISTINCT coalesce(losing_carrier, '') FROM "
	                  "porting_order_numbers WHERE order_id = $1::uuid "
	                  "ORDER BY 1",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) > POR_MAX_CHILDREN) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "more than %d losing carriers",
		                     POR_MAX_CHILDREN);
	}
	if (PQntuples(res) <= 1) {
		const char *set[] = {o->id, PQntuples(res) == 1
		                                    ? PQgetvalue(res, 0, 0)
		                                    : ""};
		rc = vox_pg_execp(pg, "por_leaf_carrier",
		                  "UPDATE porting_orders SET losing_carrier = "
		                  "coalesce(losing_carrier, nullif($2, '')) "
		                  "WHERE id = $1::uuid",
		                  2, set, NULL, err);
		PQclear(res);
		leaves[(*n)++] = *o;
		return rc;
	}
	rc = vox_pg_execp(pg, "por_split_secrets",
	                  "SELECT account_number_enc, pin_enc FROM "
	                  "porting_orders WHERE id = $1::uuid",
	                  1, params, &sec, err);
	if (rc != 0) {
		PQclear(res);
		return rc;
	}
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		rc = split_child(
		        pg, pc, o, PQgetvalue(res, i, 0),
		        PQgetisnull(sec, 0, 0) ? NULL : PQgetvalue(sec, 0, 0),
		        PQgetisnull(sec, 0, 1) ? NULL : PQgetvalue(sec, 0, 1),
		        &leaves[*n], err);
		if (rc == 0)
			(*n)++;
	}
	PQclear(sec);
	PQclear(res);
	if (rc == 0) {
		const char *clear[] = {o->id};
		/* the parent speaks for several losing carriers */
		rc = vox_pg_execp(pg, "por_parent_carrier",
		                  "UPDATE porting_orders SET losing_carrier = "
		                  "NULL WHERE id = $1::uuid",
		                  1, clear, NULL, err);
	}
	return rc;
}

/* A number of the order (or its children) open in another order. */
static int other_port(vox_pg_t *pg, const char *order_id, char *e164,
                      size_t len, vox_error_t *err)
{
	const char *params[] = {order_id};
	PGresult *res;
	int rc;

	e164[0] = '\0';
	rc = vox_pg_execp(
	        pg, "por_other_port",
	        "SELECT min(x.e164) FROM porting_order_numbers mine JOIN "
	        "porting_order_numbers x ON x.e164 = mine.e164 AND x.order_id "
	        "<> mine.order_id WHERE (mine.order_id = $1::uuid OR "
	        "mine.order_id IN (SELECT id FROM porting_orders WHERE "
	        "parent_id = $1::uuid)) AND x.status IN ('submitted', "
	        "'in-process', 'exception', 'foc-date-confirmed', "
	        "'cancel-pending')",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	if (!PQgetisnull(res, 0, 0))
		snprintf(e164, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* The carrier call of one leaf: create, or update after an exception. */
static int leaf_send(vox_pg_t *pg, const struct porting_ctx *pc,
                     const struct por_order *leaf, vox_carrier_port_t *out,
                     bool *carrier_said, vox_error_t *err)
{
	vox_carrier_port_req_t req = {0};
	struct leaf_req r;
	char key[120];
	int rc;

	*carrier_said = false;
	rc = leaf_load(pg, pc, leaf, &r, err);
	if (rc != 0) {
		leaf_req_free(&r);
		return rc;
	}
	*carrier_said = true;
	req.customer_reference = leaf->id;
	req.e164s = (const char *const *)r.e164s;
	req.n = r.n;
	req.authorized_name = r.authorized_name;
	req.business_name = r.business_name;
	req.service_address_json = r.address;
	req.account_number = r.account_number;
	req.pin = r.pin;
	req.foc_date = r.foc;
	req.loa_document_id = r.loa;
	req.invoice_document_id = r.invoice;
	if (*leaf->carrier_order_id == '\0') {
		snprintf(key, sizeof(key), "%s:%ld", leaf->id, leaf->version);
		rc = vox_carrier_port_create(pc->carrier, &req, key, out, err);
	} else {
		snprintf(key, sizeof(key), "%s:%ld:%ld", leaf->id,
		         leaf->version, r.submits);
		rc = vox_carrier_port_update(pc->carrier,
		                             leaf->carrier_order_id, &req, key,
		                             out, err);
	}
	leaf_req_free(&r);
	return rc;
}

/* Undoes what this submit did at the carrier after a later leaf was
 * refused (best effort: a failure is logged). */
static void undo_created(const struct porting_ctx *pc,
                         const vox_carrier_port_t *sent, const bool *created,
                         int n)
{
	for (int i = 0; i < n; i++) {
		vox_carrier_port_t out;
		vox_error_t err;

		if (!created[i])
			continue;
		if (vox_carrier_port_cancel(pc->carrier, sent[i].id, &out,
		                            &err) != 0)
			vox_log(VOX_LOG_ERROR,
			        "cancelling a carrier porting order of a "
			        "refused submit failed",
			        "carrier_order_id", sent[i].id, "error",
			        err.message, NULL);
	}
}

/* The leaves are at the carrier: record it. */
static int leaves_submitted(vox_pg_t *pg, const vox_message_t *msg,
                            const struct porting_ctx *pc,
                            const struct por_order *o, struct por_order *leaves,
                            const vox_carrier_port_t *sent, int n,
                            vox_error_t *err)
{
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		const char *params[] = {leaves[i].id, sent[i].id};

		rc = vox_pg_execp(
		        pg, "por_carrier_order",
		        "UPDATE porting_orders SET carrier_order_id = "
		        "$2 WHERE id = $1::uuid",
		        2, params, NULL, err);
		if (rc == 0)
			rc = por_move(pg, msg, &leaves[i], "submitted", "api",
			              NULL, err);
	}
	/* what the carrier said before we got here, once every leaf is
	 * submitted (a parent's summary must see them all) */
	for (int i = 0; i < n && rc == 0; i++)
		rc = por_early_replay(pg, msg, (void *)pc, o->id, leaves[i].id,
		                      err);
	return rc;
}

static int submit_leaves(vox_pg_t *pg, const vox_message_t *msg,
                         const struct porting_ctx *pc, struct por_order *o,
                         struct por_order *leaves, int n, vox_error_t *err)
{
	vox_carrier_port_t sent[POR_MAX_CHILDREN];
	bool created[POR_MAX_CHILDREN] = {false};
	vox_error_t cerr;
	int rc;

	for (int i = 0; i < n; i++) {
		bool carrier_said;

		memset(&sent[i], 0, sizeof(sent[i]));
		if (leaf_send(pg, pc, &leaves[i], &sent[i], &carrier_said,
		              &cerr) == 0) {
			created[i] = *leaves[i].carrier_order_id == '\0';
			continue;
		}
		if (cerr.code == VOX_ERR_INTERNAL ||
		    cerr.code == VOX_ERR_NOMEM ||
		    (!carrier_said && (cerr.retriable || cerr.fatal))) {
			/* ours (the database...): rolled back, the consumer
			 * retries */
			*err = cerr;
			return cerr.code;
		}
		/* refused, the carrier still down after vox_carrier's own
		 * retries (as provisioning: the operation fails visibly
		 * instead of ending in the DLQ with it running), or our
		 * secrets do not open (a key missing from the keyring): back
		 * to where it was, then the reason */
		undo_created(pc, sent, created, i);
		rc = vox_pg_exec(pg, "ROLLBACK TO SAVEPOINT por_submit", 0,
		                 NULL, NULL, err);
		if (rc != 0)
			return rc;
		return por_fail(pg, msg, KIND,
		                !carrier_said ? "secrets_unreadable"
		                : cerr.retriable || cerr.fatal
		                        ? "carrier_unavailable"
		                        : "carrier_refused",
		                cerr.message, err);
	}
	/* tests: killed with the carrier's orders made, ours not recorded */
	vox_fault_point("porting.submit.after_carrier");
	rc = leaves_submitted(pg, msg, pc, o, leaves, sent, n, err);
	/* a parent (split now or before) follows its children; so does the
	 * parent of a child submitted by its own id */
	if (rc == 0 && (n > 1 || strcmp(leaves[0].id, o->id) != 0))
		rc = por_parent_sync(pg, msg, o->id, err);
	else if (rc == 0 && *o->parent_id != '\0')
		rc = por_parent_sync(pg, msg, o->parent_id, err);
	if (rc == 0)
		rc = por_order_lock(pg, o->id, NULL, o, err);
	if (rc != 0)
		return rc;
	vox_fault_point("porting.submit.before_commit");
	return por_done(pg, msg, KIND, por_result(o), err);
}

int por_submit(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err)
{
	struct porting_ctx *pc = ctx;
	struct por_order o, leaves[POR_MAX_CHILDREN], kids[POR_MAX_CHILDREN];
	const json_t *version = json_object_get(msg->data, "version");
	char busy[24];
	int n = 0, nkids = 0, rc;

	/* por_need ran por_submit_validate: version is at least 1 */
	if ((rc = por_need(pg, msg, KIND, err)) != 0)
		return rc;
	rc = por_order_lock(pg, vox_json_str(msg->data, "order_id"),
	                    msg->account_id, &o, err);
	if (rc == VOX_ERR_NOT_FOUND)
		return por_fail(pg, msg, KIND, "porting_order_not_found",
		                "the porting order does not exist", err);
	if (rc != 0)
		return rc;
	if (o.version != json_integer_value(version))
		return por_fail(
		        pg, msg, KIND, "order_changed",
		        "the order changed after this submit was asked: "
		        "submit again",
		        err);
	if (strcmp(o.status, "draft") != 0 && strcmp(o.status, "exception"))
		return por_fail(pg, msg, KIND, "invalid_state",
		                "only an order in draft or exception can be "
		                "submitted",
		                err);
	if ((rc = other_port(pg, o.id, busy, sizeof(busy), err)) != 0)
		return rc;
	if (*busy != '\0')
		return por_fail(pg, msg, KIND, "number_in_other_port", busy,
		                err);
	rc = vox_pg_exec(pg, "SAVEPOINT por_submit", 0, NULL, NULL, err);
	if (rc != 0)
		return rc;
	if (o.children > 0) {
		rc = por_children(pg, o.id, kids, POR_MAX_CHILDREN, &nkids,
		                  err);
		for (int i = 0; i < nkids; i++)
			if (strcmp(kids[i].status, "exception") == 0)
				leaves[n++] = kids[i];
	} else if (strcmp(o.status, "draft") == 0) {
		rc = split(pg, pc, &o, leaves, &n, err);
	} else {
		leaves[n++] = o;
	}
	if (rc != 0)
		return rc;
	if (n == 0)
		return por_fail(pg, msg, KIND, "invalid_state",
		                "no child order is in exception", err);
	return submit_leaves(pg, msg, pc, &o, leaves, n, err);
}
