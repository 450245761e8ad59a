/*
 * The in-memory routing table (routing.h) and the decision rule of
 * docs/ROUTING.md: held for an unpaid invoice (dunning), not configured,
 * disabled or without a primary destination -> reject; open -> forward to
 * business_hours_destination or else primary_destination; closed or holiday ->
 * forward to after_hours_destination when set, else voicemail when it is
 * enabled, else reject. No business-hours document: always open ("default").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_routing_doc.h"
#include "vox_uuid.h"

struct routing_entry {
	char e164[20];
	char number_id[VOX_UUID_STRLEN];
	bool configured, enabled, voicemail;
	bool held; /* billing_hold_at: suspended for an unpaid invoice */
	char primary[ROUTING_DEST_MAX], failover[ROUTING_DEST_MAX];
	char open_dest[ROUTING_DEST_MAX], closed_dest[ROUTING_DEST_MAX];
	int timeout_s;
	vox_schedule_t *sched; /* NULL: always open */
};

struct routing_table {
	pthread_rwlock_t lock;
	struct routing_entry **entries; /* sorted by e164 */
	size_t n, cap;
	atomic_bool ready;
};

/* Columns: id, e164, status, call_forwarding, business_hours, voicemail,
 * the account's time zone, whether a billing hold is on it. */
#define ROUTING_SELECT                                                         \
	"SELECT n.id, n.e164, n.status, c.call_forwarding::text, "             \
	"c.business_hours::text, c.voicemail::text, a.timezone, "              \
	"n.billing_hold_at IS NOT NULL FROM numbers "                          \
	"n LEFT JOIN number_configurations c ON c.number_id = n.id LEFT "      \
	"JOIN accounts a ON a.id = n.account_id WHERE "

static void entry_free(struct routing_entry *e)
{
	if (e == NULL)
		return;
	vox_schedule_destroy(e->sched);
	free(e);
}

static void dest_copy(char out[ROUTING_DEST_MAX], const char *dest)
{
	snprintf(out, ROUTING_DEST_MAX, "%s", dest ? dest : "");
}

/* The routing section, read as vox_routing_doc reads it everywhere. */
static void entry_routing(struct routing_entry *e, const json_t *doc)
{
	vox_routing_doc_t r;

	vox_routing_doc_read(doc, &r);
	e->configured = r.configured;
	e->enabled = r.enabled;
	e->timeout_s = r.timeout_s;
	dest_copy(e->primary, r.primary);
	dest_copy(e->failover, r.failover);
	dest_copy(e->open_dest, r.open_dest);
	dest_copy(e->closed_dest, r.closed_dest);
}

/* One row of numbers_sql as an entry, or NULL (logged) when it cannot be
 * built. A business-hours document that does not parse (the API refuses
 * them, so only a hand-made row) is logged and treated as none. */
static struct routing_entry *entry_from_row(const PGresult *res, int row)
{
	struct routing_entry *e = calloc(1, sizeof(*e));
	json_t *routing = NULL, *hours = NULL, *voicemail = NULL;
	const char *zone =
	        PQgetisnull(res, row, 6) ? NULL : PQgetvalue(res, row, 6);
	vox_error_t err;

	if (e == NULL)
		return NULL;
	snprintf(e->number_id, sizeof(e->number_id), "%s",
	         PQgetvalue(res, row, 0));
	snprintf(e->e164, sizeof(e->e164), "%s", PQgetvalue(res, row, 1));
	if (!PQgetisnull(res, row, 3))
		routing = json_loads(PQgetvalue(res, row, 3), 0, NULL);
	if (!PQgetisnull(res, row, 4))
		hours = json_loads(PQgetvalue(res, row, 4), 0, NULL);
	if (!PQgetisnull(res, row, 5))
		voicemail = json_loads(PQgetvalue(res, row, 5), 0, NULL);
	entry_routing(e, routing);
	e->held = strcmp(PQgetvalue(res, row, 7), "t") == 0;
	e->voicemail = json_is_true(json_object_get(voicemail, "enabled"));
	if (json_is_object(hours) && json_object_size(hours) > 0 &&
	    vox_schedule_parse(hours, zone, &e->sched, &err) != 0) {
		vox_log(VOX_LOG_WARN,
		        "a stored business-hours document does not parse: the "
		        "number is routed as always open",
		        "number_id", e->number_id, "error", err.message, NULL);
		e->sched = NULL;
	}
	json_decref(routing);
	json_decref(hours);
	json_decref(voicemail);
	return e;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct routing_entry *x = *(struct routing_entry *const *)a;
	const struct routing_entry *y = *(struct routing_entry *const *)b;

	return strcmp(x->e164, y->e164);
}

/* Index of e164, or -(insertion point) - 1. Lock held. */
static long table_find(const routing_table_t *t, const char *e164)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->entries[mid]->e164, e164);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

routing_table_t *routing_table_new(void)
{
	routing_table_t *t = calloc(1, sizeof(*t));

	if (t != NULL)
		pthread_rwlock_init(&t->lock, NULL);
	return t;
}

static void entries_free(struct routing_entry **entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_free(entries[i]);
	free(entries);
}

void routing_table_destroy(routing_table_t *t)
{
	if (t == NULL)
		return;
	entries_free(t->entries, t->n);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

bool routing_ready(const routing_table_t *t)
{
	return atomic_load(&((routing_table_t *)t)->ready);
}

int routing_load_all(routing_table_t *t, vox_pg_t *pg, vox_error_t *err)
{
	struct routing_entry **entries = NULL, **old;
	size_t n = 0, oldn;
	PGresult *res;
	int rows;

	if (vox_pg_execp(pg, "routing_load_all",
	                 ROUTING_SELECT "n.status = 'active'", 0, NULL, &res,
	                 err) != 0)
		return err->code;
	rows = PQntuples(res);
	entries = calloc((size_t)rows + 1, sizeof(*entries));
	if (entries == NULL) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "out of memory");
	}
	for (int i = 0; i < rows; i++)
		if ((entries[n] = entry_from_row(res, i)) != NULL)
			n++;
	PQclear(res);
	qsort(entries, n, sizeof(*entries), entry_cmp);
	pthread_rwlock_wrlock(&t->lock);
	old = t->entries;
	oldn = t->n;
	t->entries = entries;
	t->n = n;
	t->cap = (size_t)rows + 1;
	pthread_rwlock_unlock(&t->lock);
	entries_free(old, oldn);
	atomic_store(&t->ready, true);
	{
		char count[24];

		snprintf(count, sizeof(count), "%zu", n);
		vox_log(VOX_LOG_INFO, "routing table loaded", "numbers", count,
		        NULL);
	}
	return 0;
}

/* Puts e (NULL: nothing) in place of number_id's entry. Lock held. Returns
 * the entry that was replaced or removed, for the caller to free. */
static struct routing_entry *table_swap(routing_table_t *t,
                                        const char *number_id,
                                        struct routing_entry *e)
{
	struct routing_entry *old = NULL;
	long at;

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->entries[i]->number_id, number_id) == 0) {
			old = t->entries[i];
			memmove(&t->entries[i], &t->entries[i + 1],
			        (t->n - i - 1) * sizeof(*t->entries));
			t->n--;
			break;
		}
	if (e == NULL)
		return old;
	at = table_find(t, e->e164);
	if (at >= 0) { /* another id with this number: the newer wins */
		struct routing_entry *gone = t->entries[at];

		t->entries[at] = e;
		entry_free(old);
		return gone;
	}
	at = -at - 1;
	memmove(&t->entries[at + 1], &t->entries[at],
	        (t->n - (size_t)at) * sizeof(*t->entries));
	t->entries[at] = e;
	t->n++;
	return old;
}

int routing_reload(routing_table_t *t, vox_pg_t *pg, const char *number_id,
                   vox_error_t *err)
{
	const char *params[] = {number_id};
	struct routing_entry *e = NULL, *old;
	PGresult *res;
	int rc = 0;

	if (!vox_uuid_valid(number_id))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "vox_routing payload is not a number id");
	if (vox_pg_execp(pg, "routing_reload", ROUTING_SELECT "n.id = $1", 1,
	                 params, &res, err) != 0)
		return err->code;
	if (PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 2), "active") == 0 &&
	    (e = entry_from_row(res, 0)) == NULL)
		rc = vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
	PQclear(res);
	if (rc != 0)
		return rc;
	pthread_rwlock_wrlock(&t->lock);
	if (e != NULL && t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct routing_entry **grown =
		        realloc(t->entries, cap * sizeof(*grown));

		if (grown == NULL) {
			pthread_rwlock_unlock(&t->lock);
			entry_free(e);
			return vox_error_set(err, VOX_ERR_NOMEM, false,
			                     "out of memory");
		}
		t->entries = grown;
		t->cap = cap;
	}
	old = table_swap(t, number_id, e);
	pthread_rwlock_unlock(&t->lock);
	entry_free(old);
	return 0;
}

const char *routing_action_name(routing_action_t action)
{
	switch (action) {
	case ROUTING_FORWARD:
		return "forward";
	case ROUTING_VOICEMAIL:
		return "voicemail";
	default:
		return "reject";
	}
}

/* The rule applied to a known entry. Lock held (read). */
static int decide(const struct routing_entry *e, int64_t at_us,
                  routing_decision_t *out, vox_error_t *err)
{
	vox_schedule_state_t st = {.state = VOX_SCHEDULE_OPEN};

	snprintf(st.rule, sizeof(st.rule), "default");
	if (e->sched != NULL &&
	    vox_schedule_state(e->sched, at_us, &st, err) != 0)
		return err->code;
	out->has_state = true;
	out->state = st.state;
	out->has_next = st.has_next;
	out->next_us = st.next_transition_us;
	snprintf(out->rule, sizeof(out->rule), "%s", st.rule);
	out->action = ROUTING_REJECT;
	if (e->held) { /* dunning: nothing of its configuration applies */
		snprintf(out->rule, sizeof(out->rule), "billing_suspended");
		return 0;
	}
	if (!e->configured) {
		snprintf(out->rule, sizeof(out->rule),
		         "routing_not_configured");
		return 0;
	}
	out->timeout_s = e->timeout_s;
	snprintf(out->failover, sizeof(out->failover), "%s", e->failover);
	if (!e->enabled || e->primary[0] == '\0') {
		snprintf(out->rule, sizeof(out->rule), "%s",
		         e->enabled ? "no_destination" : "routing_disabled");
		return 0;
	}
	if (st.state == VOX_SCHEDULE_OPEN) {
		out->action = ROUTING_FORWARD;
		snprintf(out->destination, sizeof(out->destination), "%s",
		         e->open_dest[0] ? e->open_dest : e->primary);
	} else if (e->closed_dest[0] != '\0') {
		out->action = ROUTING_FORWARD;
		snprintf(out->destination, sizeof(out->destination), "%s",
		         e->closed_dest);
	} else if (e->voicemail) {
		out->action = ROUTING_VOICEMAIL;
	}
	return 0;
}

int routing_decide(routing_table_t *t, const char *e164, int64_t at_us,
                   routing_decision_t *out, vox_error_t *err)
{
	long at;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&t->lock);
	at = table_find(t, e164);
	if (at < 0)
		snprintf(out->rule, sizeof(out->rule), "number_unknown");
	else
		rc = decide(t->entries[at], at_us, out, err);
	pthread_rwlock_unlock(&t->lock);
	return rc;
}
