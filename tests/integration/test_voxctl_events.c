/*
 * voxctl events replay and tail against the real Kafka (issue 16,
 * acceptance 3): three batches of events go to a fresh topic with pauses
 * between them; a replay of [between 1 and 2, between 2 and 3) prints
 * exactly the middle batch (none missing, none extra, none twice), its
 * filters keep exactly the matching ones, a range with no events prints
 * nothing, bad arguments exit 2 and an unreachable Kafka exits 1, with
 * the reason on stderr; tail --from beginning prints what the topic holds.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_kafka.h"
#include "vox_time.h"
#include "vox_uuid.h"
#include "voxctl_helpers.h"

#define PER_BATCH 12
#define PAUSE_MS  250

static const char *const types[] = {"number.provisioned", "number.released",
                                    "usage.recorded"};

struct sent {
	char id[VOX_UUID_STRLEN];
	const char *type;
	const char *account;
};

/* What three_batches produced, and RFC 3339 times around the batches:
 * at[0] before the first, at[1] between 1 and 2, at[2] between 2 and 3,
 * at[3] after the third. */
struct batches {
	char topic[256];
	char account_a[VOX_UUID_STRLEN], account_b[VOX_UUID_STRLEN];
	struct sent events[3][PER_BATCH];
	char at[4][40];
	int64_t at_us[4];
};

static void stamp(struct batches *b, int n)
{
	b->at_us[n] = vox_now_us();
	vox_rfc3339_format(b->at_us[n], b->at[n], sizeof(b->at[n]));
}

static void send_batch(vox_producer_t *producer, struct batches *b, int n)
{
	vox_error_t err;

	for (int i = 0; i < PER_BATCH; i++) {
		struct sent *e = &b->events[n][i];
		json_t *event;
		char *text;

		vox_uuid7(e->id);
		e->type = types[i % 3];
		e->account = i % 2 ? b->account_a : b->account_b;
		event = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i}}",
		                  "specversion", "1.0", "id", e->id, "source",
		                  "/test/voxctl-events", "type", e->type,
		                  "accountid", e->account, "time",
		                  "2026-01-01T00:00:00Z", "data", "n", i);
		text = json_dumps(event, JSON_COMPACT);
		cr_assert_not_null(text);
		/* keyed by event id: the batch spreads over the partitions */
		cr_assert_eq(vox_producer_send_sync(producer, b->topic, e->id,
		                                    text, strlen(text), NULL, 0,
		                                    NULL, NULL, &err),
		             0, "send: %s", err.message);
		free(text);
		json_decref(event);
	}
}

/* A fresh 4-partition topic with three batches of PER_BATCH events,
 * PAUSE_MS apart: the times recorded between them are PAUSE_MS away
 * from any event's Kafka timestamp. */
static void three_batches(struct batches *b)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "test-voxctl-events"};
	vox_producer_t *producer;
	vox_error_t err;

	memset(b, 0, sizeof(*b));
	vox_uuid7(b->account_a);
	vox_uuid7(b->account_b);
	t_topic_create("test.voxctl-events", 4, b->topic, sizeof(b->topic));
	producer = vox_producer_new(&conf, &err);
	cr_assert_not_null(producer, "%s", err.message);
	for (int n = 0; n < 3; n++) {
		if (n > 0)
			vox_sleep_ms(PAUSE_MS);
		stamp(b, n);
		vox_sleep_ms(PAUSE_MS);
		send_batch(producer, b, n);
	}
	vox_sleep_ms(PAUSE_MS);
	stamp(b, 3);
	vox_producer_destroy(producer, 5000);
}

/* The ids of voxctl's NDJSON output, each line a JSON object. */
static json_t *output_ids(const char *out)
{
	json_t *ids = json_array();
	const char *line = out;

	while (*line != '\0') {
		const char *nl = strchr(line, '\n');
		json_error_t jerr;
		json_t *event;

		cr_assert_not_null(nl, "last line without a newline: %s", line);
		event = json_loadb(line, (size_t)(nl - line), 0, &jerr);
		cr_assert(json_is_object(event), "not a JSON object: %.*s",
		          (int)(nl - line), line);
		cr_assert(json_is_string(json_object_get(event, "id")));
		json_array_append(ids, json_object_get(event, "id"));
		json_decref(event);
		line = nl + 1;
	}
	return ids;
}

static bool sent_matches(const struct sent *e, const char *type_prefix,
                         const char *account)
{
	return (type_prefix == NULL ||
	        strncmp(e->type, type_prefix, strlen(type_prefix)) == 0) &&
	       (account == NULL || strcmp(e->account, account) == 0);
}

/* out holds exactly the events of batches from..to (inclusive) that
 * match type_prefix and account (NULL: any): each once, no other. */
static void assert_exactly(const char *out, const struct batches *b, int from,
                           int to, const char *type_prefix, const char *account)
{
	json_t *ids = output_ids(out);
	size_t expected = 0, i;
	json_t *id;

	for (int n = from; n <= to; n++)
		for (int k = 0; k < PER_BATCH; k++) {
			const struct sent *e = &b->events[n][k];
			int seen = 0;

			if (!sent_matches(e, type_prefix, account))
				continue;
			expected++;
			json_array_foreach(ids, i, id) seen +=
			        strcmp(json_string_value(id), e->id) == 0;
			cr_assert_eq(seen, 1,
			             "event %s (batch %d) printed %d "
			             "times",
			             e->id, n + 1, seen);
		}
	cr_assert_eq(json_array_size(ids), expected,
	             "%zu events printed, %zu expected:\n%s",
	             json_array_size(ids), expected, out);
	json_decref(ids);
}

static void assert_ok(const struct t_voxctl_run *r, const char *summary)
{
	cr_assert_eq(r->exit, 0, "exit %d; stderr: %s", r->exit, r->err);
	if (summary != NULL)
		cr_assert_not_null(strstr(r->err, summary),
		                   "stderr \"%s\" lacks \"%s\"", r->err,
		                   summary);
}

Test(voxctl_events, replay_returns_exactly_the_middle_batch)
{
	struct batches b;
	struct t_voxctl_run r;
	char path[] = "/tmp/voxctl-replay-XXXXXX", file[64];
	FILE *f;
	char text[64 * 1024];
	size_t len;
	int fd;

	three_batches(&b);
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2]);
	assert_ok(&r, "replayed 12 events from ");
	assert_exactly(r.out, &b, 1, 1, NULL, NULL);
	t_voxctl_free(&r);

	/* the whole span, and [from, to) edges: nothing lost between */
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[0],
	           "--to", b.at[3], "--progress");
	assert_ok(&r, "replayed 36 events from ");
	cr_assert_not_null(strstr(r.err, "100.0%"), "no progress: %s", r.err);
	assert_exactly(r.out, &b, 0, 2, NULL, NULL);
	t_voxctl_free(&r);
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[2],
	           "--to", b.at[3]);
	assert_ok(&r, "replayed 12 events");
	assert_exactly(r.out, &b, 2, 2, NULL, NULL);
	t_voxctl_free(&r);

	/* --output: the same lines in the file, none on stdout */
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.ndjson", path);
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2], "--output", file);
	assert_ok(&r, "replayed 12 events");
	cr_assert_str_eq(r.out, "");
	f = fopen(file, "r");
	cr_assert_not_null(f, "no %s", file);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	unlink(file);
	text[len] = '\0';
	assert_exactly(text, &b, 1, 1, NULL, NULL);
	t_voxctl_free(&r);
}

Test(voxctl_events, replay_filters_by_type_and_account)
{
	struct batches b;
	struct t_voxctl_run r;

	three_batches(&b);
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2], "--type", "number.*");
	assert_ok(&r, "replayed 8 events");
	assert_exactly(r.out, &b, 1, 1, "number.", NULL);
	t_voxctl_free(&r);

	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2], "--type", "number.released");
	assert_ok(&r, "replayed 4 events");
	assert_exactly(r.out, &b, 1, 1, "number.released", NULL);
	t_voxctl_free(&r);

	/* "number" alone is a type no event has: no prefix match */
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2], "--type", "number");
	assert_ok(&r, "replayed 0 events");
	cr_assert_str_eq(r.out, "");
	t_voxctl_free(&r);

	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", b.at[2], "--account", b.account_a);
	assert_ok(&r, "replayed 6 events");
	assert_exactly(r.out, &b, 1, 1, NULL, b.account_a);
	t_voxctl_free(&r);

	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[0],
	           "--to", b.at[3], "--account", b.account_b, "--type",
	           "usage.*");
	assert_ok(&r, "replayed 6 events");
	assert_exactly(r.out, &b, 0, 2, "usage.", b.account_b);
	t_voxctl_free(&r);
}

Test(voxctl_events, replay_of_a_range_without_events_prints_nothing)
{
	struct batches b;
	struct t_voxctl_run r;
	char before[40], later[40];

	three_batches(&b);
	/* the pause before the second batch holds no event */
	vox_rfc3339_format(b.at_us[1] + PAUSE_MS * 1000 / 2, later,
	                   sizeof(later));
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[1],
	           "--to", later);
	assert_ok(&r, "replayed 0 events from 0 partitions");
	cr_assert_str_eq(r.out, "", "events in the pause: %s", r.out);
	t_voxctl_free(&r);
	/* nor the hour before the first batch */
	vox_rfc3339_format(b.at_us[0] - 3600LL * 1000000, before,
	                   sizeof(before));
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", before,
	           "--to", b.at[0]);
	assert_ok(&r, "replayed 0 events from 0 partitions");
	cr_assert_str_eq(r.out, "", "events before the first batch: %s", r.out);
	t_voxctl_free(&r);
	/* after the last one: from at[3] to an hour later */
	vox_rfc3339_format(b.at_us[3] + 3600LL * 1000000, later, sizeof(later));
	r = VOXCTL("events", "replay", "--topic", b.topic, "--from", b.at[3],
	           "--to", later);
	assert_ok(&r, "replayed 0 events");
	cr_assert_str_eq(r.out, "", "events after the last batch: %s", r.out);
	t_voxctl_free(&r);
}

Test(voxctl_events, tail_prints_what_the_topic_holds)
{
	struct batches b;
	struct t_voxctl_run r;
	json_t *ids;

	three_batches(&b);
	r = VOXCTL("events", "tail", "--topic", b.topic, "--from", "beginning",
	           "--idle-exit", "2000");
	assert_ok(&r, NULL);
	assert_exactly(r.out, &b, 0, 2, NULL, NULL);
	t_voxctl_free(&r);

	/* from a time: the third batch only; with a filter */
	r = VOXCTL("events", "tail", "--topic", b.topic, "--from", b.at[2],
	           "--idle-exit", "1000", "--account", b.account_a);
	assert_ok(&r, NULL);
	assert_exactly(r.out, &b, 2, 2, NULL, b.account_a);
	t_voxctl_free(&r);

	/* --count stops after that many */
	r = VOXCTL("events", "tail", "--topic", b.topic, "--from", "0",
	           "--count", "5");
	assert_ok(&r, NULL);
	ids = output_ids(r.out);
	cr_assert_eq(json_array_size(ids), 5, "%s", r.out);
	json_decref(ids);
	t_voxctl_free(&r);
}

Test(voxctl_events, bad_arguments_exit_2_and_no_kafka_exits_1)
{
	char brokers[64], topic[256];
	const char *const no_kafka[] = {brokers, "VOX_KAFKA_WAIT_MS=1000",
	                                NULL};
	struct t_voxctl_run r;

	t_topic_create("test.voxctl-events", 2, topic, sizeof(topic));
	r = VOXCTL("events", "replay", "--from", "2026-12-01T00:00:00Z", "--to",
	           "2026-12-02T00:00:00Z");
	t_voxctl_refused(&r, 2, "--topic is missing");
	r = VOXCTL("events", "replay", "--topic", topic, "--from", "yesterday",
	           "--to", "2026-12-02T00:00:00Z");
	t_voxctl_refused(&r, 2, "--from \"yesterday\" is not an RFC 3339 time");
	r = VOXCTL("events", "replay", "--topic", topic, "--from",
	           "2026-12-01T00:00:00Z", "--to", "2026-13-02T00:00:00Z");
	t_voxctl_refused(&r, 2, "--to \"2026-13-02T00:00:00Z\" is not");
	r = VOXCTL("events", "replay", "--topic", topic, "--from",
	           "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z");
	t_voxctl_refused(&r, 2, "--from must be before --to");
	r = VOXCTL("events", "replay", "--topic", topic, "--to",
	           "2026-12-01T00:00:00Z");
	t_voxctl_refused(&r, 2, "--from is missing");
	r = VOXCTL("events", "replay", "--topic", "test.voxctl-events.none",
	           "--from", "2026-12-01T00:00:00Z", "--to",
	           "2026-12-02T00:00:00Z");
	t_voxctl_refused(&r, 2, "no topic \"test.voxctl-events.none\"");
	r = VOXCTL("events", "tail", "--topic", topic, "--type", "a*b");
	t_voxctl_refused(&r, 2, "--type \"a*b\"");
	r = VOXCTL("events", "tail", "--topic", topic, "--from", "soon");
	t_voxctl_refused(&r, 2, "--from \"soon\" is not");
	r = VOXCTL("events", "tail", "--topic", topic, "--from", "7:0");
	t_voxctl_refused(&r, 2, "has no partition 7");
	r = VOXCTL("events", "tail", "--count", "0");
	t_voxctl_refused(&r, 2, "--count must be");

	snprintf(brokers, sizeof(brokers), "VOX_KAFKA_BROKERS=127.0.0.1:%d",
	         t_free_port());
	r = t_voxctl(no_kafka, (const char *const[]){
	                               "events", "replay", "--topic", topic,
	                               "--from", "2026-12-01T00:00:00Z", "--to",
	                               "2026-12-02T00:00:00Z", NULL});
	t_voxctl_refused(&r, 1, "is not reachable");
	r = t_voxctl(no_kafka, (const char *const[]){"events", "tail",
	                                             "--topic", topic, NULL});
	t_voxctl_refused(&r, 1, "is not reachable");
}
