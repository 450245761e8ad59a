/* vox_inflight: consumer_inflight marks, written and read in one
 * statement each (vox_inflight.h). */
#include "vox_inflight.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One statement: the new mark (one row per partition of the ranges in $4)
 * and, when $5, the dead marks over the same offsets. The mark's own rows
 * are not in the SELECT's snapshot, and a live owner's backend is in
 * pg_stat_activity (backend_start is NULL there only for sessions of
 * another role: then the pid alone says alive). */
static const char begin_sql[] =
        "WITH r AS (SELECT * FROM json_to_recordset($4::json)"
        " AS x(t text, p int, f bigint, l bigint)),"
        " k AS (SELECT nextval('consumer_inflight_mark_seq') AS mark),"
        " ins AS (INSERT INTO consumer_inflight (mark, consumer, topic, "
        "partition, first_offset, last_offset, attempts, owner, owner_pid, "
        "owner_start)"
        " SELECT k.mark, $1, r.t, r.p, r.f, r.l, $3::int, $2, "
        "pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity "
        "WHERE pid = pg_backend_pid()) FROM r, k)"
        " SELECT k.mark, (SELECT json_agg(json_build_object('m', m.mark, "
        "'t', m.topic, 'p', m.partition, 'f', m.first_offset, 'l', "
        "m.last_offset, 'a', m.attempts))"
        " FROM consumer_inflight m JOIN r ON m.topic = r.t AND "
        "m.partition = r.p AND m.first_offset <= r.l AND m.last_offset >= r.f"
        " WHERE $5::bool AND m.consumer = $1 AND m.owner <> $2"
        " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = "
        "m.owner_pid AND (a.backend_start IS NULL OR a.backend_start = "
        "m.owner_start)))"
        " FROM k";

struct range {
	const char *topic;
	int32_t partition;
	int64_t first, last;
};

static bool range_of(const struct range *r, const vox_batch_msg_t *m)
{
	return r->partition == m->partition && strcmp(r->topic, m->topic) == 0;
}

/* Index of m's partition in r[0..*nr), added when new; -1: out of memory.
 * Messages come in runs of one partition: the last one is tried first. */
static long range_find(struct range **r, size_t *nr, size_t *cap, size_t last,
                       const vox_batch_msg_t *m)
{
	if (*nr > 0 && range_of(&(*r)[last], m))
		return (long)last;
	for (size_t j = 0; j < *nr; j++)
		if (range_of(&(*r)[j], m))
			return (long)j;
	if (*nr == *cap) {
		size_t grown = *cap ? *cap * 2 : 8;
		struct range *more = realloc(*r, grown * sizeof(**r));

		if (more == NULL)
			return -1;
		*r = more;
		*cap = grown;
	}
	(*r)[*nr] =
	        (struct range){m->topic, m->partition, m->offset, m->offset};
	return (long)(*nr)++;
}

/* The first..last offsets per partition of msgs, as JSON for $4. */
static char *inflight_ranges(const vox_batch_msg_t *msgs, size_t n)
{
	struct range *r = NULL;
	size_t nr = 0, cap = 0, last = 0;
	json_t *ranges = NULL;
	char *text = NULL;

	for (size_t i = 0; i < n; i++) {
		long k = range_find(&r, &nr, &cap, last, &msgs[i]);

		if (k < 0)
			goto out;
		last = (size_t)k;
		if (msgs[i].offset < r[k].first)
			r[k].first = msgs[i].offset;
		if (msgs[i].offset > r[k].last)
			r[k].last = msgs[i].offset;
	}
	ranges = json_array();
	for (size_t k = 0; ranges != NULL && k < nr; k++)
		if (json_array_append_new(
		            ranges,
		            json_pack("{s:s, s:i, s:I, s:I}", "t", r[k].topic,
		                      "p", (int)r[k].partition, "f",
		                      (json_int_t)r[k].first, "l",
		                      (json_int_t)r[k].last)) != 0)
			goto out;
	if (ranges != NULL)
		text = json_dumps(ranges, JSON_COMPACT);
out:
	json_decref(ranges);
	free(r);
	return text;
}

int vox_inflight_begin(vox_pg_t *pg, const char *consumer, const char *owner,
                       const vox_batch_msg_t *msgs, size_t n, int attempts,
                       int64_t *mark, json_t **dead, vox_error_t *err)
{
	char tries[16], *ranges = inflight_ranges(msgs, n);
	PGresult *res = NULL;
	json_error_t jerr;
	int rc;

	*mark = 0;
	if (dead != NULL)
		*dead = NULL;
	if (ranges == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	snprintf(tries, sizeof(tries), "%d", attempts);
	const char *params[] = {consumer, owner, tries, ranges,
	                        dead != NULL ? "true" : "false"};
	rc = vox_pg_execp(pg, "vox_inflight_begin", begin_sql, 5, params, &res,
	                  err);
	free(ranges);
	if (rc != 0)
		return rc;
	*mark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (dead != NULL && !PQgetisnull(res, 0, 1)) {
		*dead = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
		if (*dead == NULL)
			rc = vox_error_set(err, VOX_ERR_INTERNAL, false,
			                   "dead marks: %s", jerr.text);
	}
	PQclear(res);
	return rc;
}

int vox_inflight_clear(vox_pg_t *pg, int64_t mark, vox_error_t *err)
{
	char id[24];

	snprintf(id, sizeof(id), "%" PRId64, mark);
	const char *params[] = {id};
	return vox_pg_execp(pg, "vox_inflight_clear",
	                    "DELETE FROM consumer_inflight WHERE mark = $1", 1,
	                    params, NULL, err);
}

int vox_inflight_forget(vox_pg_t *pg, const json_t *dead, vox_error_t *err)
{
	char *text = json_dumps(dead, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	const char *params[] = {text};
	rc = vox_pg_execp(pg, "vox_inflight_forget",
	                  "DELETE FROM consumer_inflight c USING "
	                  "json_to_recordset($1::json) AS x(m bigint, t text, "
	                  "p int) WHERE c.mark = x.m AND c.topic = x.t AND "
	                  "c.partition = x.p",
	                  1, params, NULL, err);
	free(text);
	return rc;
}

size_t vox_inflight_seen(const json_t *dead, const vox_batch_msg_t *msgs,
                         size_t n, vox_inflight_seen_t *seen)
{
	size_t covered = 0, j;
	json_t *d;

	memset(seen, 0, n * sizeof(*seen));
	for (size_t i = 0; i < n; i++) {
		json_array_foreach(dead, j, d)
		{
			json_int_t f =
			        json_integer_value(json_object_get(d, "f"));
			json_int_t l =
			        json_integer_value(json_object_get(d, "l"));
			int a = (int)json_integer_value(
			        json_object_get(d, "a"));
			const char *t =
			        json_string_value(json_object_get(d, "t"));

			if (msgs[i].offset < f || msgs[i].offset > l ||
			    json_integer_value(json_object_get(d, "p")) !=
			            msgs[i].partition ||
			    t == NULL || strcmp(t, msgs[i].topic) != 0)
				continue;
			if (a > seen[i].crashes)
				seen[i].crashes = a;
			if (f == l && a > seen[i].alone)
				seen[i].alone = a;
		}
		covered += seen[i].crashes > 0;
	}
	return covered;
}

static bool mark_finished(const json_t *d, const vox_batch_msg_t *msgs,
                          size_t n, size_t done)
{
	const char *t = json_string_value(json_object_get(d, "t"));
	json_int_t p = json_integer_value(json_object_get(d, "p"));
	json_int_t l = json_integer_value(json_object_get(d, "l"));
	bool reached = false;

	for (size_t i = 0; t != NULL && i < n; i++) {
		if (msgs[i].partition != p || strcmp(msgs[i].topic, t) != 0)
			continue;
		if (i >= done)
			return reached && msgs[i].offset > l;
		reached = reached || msgs[i].offset >= l;
	}
	return reached;
}

json_t *vox_inflight_finished(json_t *dead, const vox_batch_msg_t *msgs,
                              size_t n, size_t done)
{
	json_t *finished = NULL;

	for (size_t j = json_array_size(dead); j-- > 0;) {
		json_t *d = json_array_get(dead, j);

		if (!mark_finished(d, msgs, n, done))
			continue;
		if (finished == NULL && (finished = json_array()) == NULL)
			break;
		json_array_append(finished, d);
		json_array_remove(dead, j);
	}
	return finished;
}
