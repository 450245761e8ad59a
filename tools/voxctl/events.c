/*
 * voxctl events tail [--topic T] [--type T] [--account A]
 *                    [--from TIME|OFFSET|P:OFFSET,...|beginning|end]
 *                    [--count N] [--idle-exit MS]
 * voxctl events replay --from TIME --to TIME --topic T [--type T]
 *                      [--account A] [--output FILE]
 *                      [--progress|--no-progress]
 *
 * Reads a topic's events as NDJSON (docs/VOXCTL.md). Partitions are
 * assigned by us with explicit offsets: no consumer group is joined and
 * nothing is committed, so a tail or a replay never moves anyone's
 * offsets. "Time" is the Kafka message timestamp, mapped to offsets with
 * rd_kafka_offsets_for_times. A replay reads, for every partition,
 * [first offset at or after --from, first offset at or after --to) and
 * prints the messages whose timestamp lies in [from, to).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_kafka.h"
#include "vox_log.h"
#include "vox_signal.h"
#include "vox_time.h"
#include "vox_uuid.h"
#include "voxctl.h"

#define TAIL_USAGE                                                             \
	"voxctl events tail [--topic T] [--type T] [--account A] "             \
	"[--from TIME|OFFSET|P:OFFSET,...|beginning|end] [--count N] "         \
	"[--idle-exit MS]"
#define REPLAY_USAGE                                                           \
	"voxctl events replay --from TIME --to TIME --topic T [--type T] "     \
	"[--account A] [--output FILE] [--progress|--no-progress]"

#define POLL_MS           100
#define PROGRESS_EVERY_MS 200

struct events_args {
	const char *usage;
	const char *topic, *type, *account, *from, *to, *output;
	long count;   /* tail: stop after this many events (0: no limit) */
	long idle_ms; /* tail: stop after this long without one (0: never) */
	int progress; /* replay: -1 when stderr is a TTY, 0 no, 1 yes */
	/* what --from/--to say, once parsed */
	enum { FROM_END, FROM_BEGINNING, FROM_TIME, FROM_OFFSET } from_kind;
	int64_t from_ms, to_ms, from_offset;
	char *offsets; /* "P:OFFSET,..." form of --from, or NULL */
};

/* One partition's part of the read: [start, end) for a replay. */
struct part {
	int32_t id;
	int64_t low, high; /* watermarks when we started */
	int64_t start, end;
	int64_t next; /* the next offset we expect */
	bool done;
};

struct events_run {
	const struct voxctl_cfg *cfg;
	const struct events_args *a;
	rd_kafka_t *rk;
	struct part *parts;
	int nparts;
	FILE *out;
	bool replay;
	bool progress; /* draw the progress bar on stderr */
	long printed, read, skipped;
	int64_t started_ms, progress_ms, total;
	bool stopped; /* the reader of stdout went away */
};

static bool number_arg(const char *text, long min, long max, long *out)
{
	char *end;

	if (text == NULL || *text == '\0' || strlen(text) > 12 ||
	    strspn(text, "0123456789") != strlen(text))
		return false;
	*out = strtol(text, &end, 10);
	return *end == '\0' && *out >= min && *out <= max;
}

/* Kafka's own rule for topic names. */
static bool topic_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 249 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789._-") == n;
}

/* Milliseconds at or after the RFC 3339 time: the first whole
 * millisecond that is not before it (message timestamps are in ms). */
static bool time_arg(const char *text, int64_t *ms)
{
	int64_t us;

	if (vox_rfc3339_parse(text, &us) != 0)
		return false;
	*ms = us / 1000 + (us % 1000 != 0);
	return true;
}

/* "P:OFFSET[,P:OFFSET...]", digits only. */
static bool offsets_form(const char *s)
{
	for (;;) {
		size_t n = strspn(s, "0123456789");

		if (n == 0 || n > 9 || s[n] != ':')
			return false;
		s += n + 1;
		n = strspn(s, "0123456789");
		if (n == 0 || n > 18)
			return false;
		s += n;
		if (*s == '\0')
			return true;
		if (*s++ != ',')
			return false;
	}
}

static int from_arg(struct events_args *a)
{
	long offset;

	if (a->from == NULL || strcmp(a->from, "end") == 0) {
		a->from_kind = FROM_END;
	} else if (strcmp(a->from, "beginning") == 0) {
		a->from_kind = FROM_BEGINNING;
	} else if (number_arg(a->from, 0, INT64_MAX, &offset)) {
		a->from_kind = FROM_OFFSET;
		a->from_offset = offset;
	} else if (offsets_form(a->from)) {
		a->from_kind = FROM_OFFSET;
		a->from_offset = -1;
		a->offsets = (char *)a->from;
	} else if (time_arg(a->from, &a->from_ms)) {
		a->from_kind = FROM_TIME;
	} else {
		return voxctl_usage_error(
		        a->usage,
		        "--from \"%s\" is not an RFC 3339 time "
		        "(2026-12-07T10:00:00Z), an offset, P:OFFSET,..., "
		        "beginning or end",
		        a->from);
	}
	return -1;
}

static int filters_check(const struct events_args *a)
{
	const char *star;

	if (a->topic == NULL)
		return voxctl_usage_error(a->usage, "--topic is missing");
	if (!topic_name_ok(a->topic))
		return voxctl_usage_error(a->usage,
		                          "--topic \"%s\" is not a topic name "
		                          "([a-zA-Z0-9._-], 1 to 249)",
		                          a->topic);
	if (a->type != NULL) {
		star = strchr(a->type, '*');
		if (*a->type == '\0' || strlen(a->type) > 200 ||
		    (star != NULL && star[1] != '\0'))
			return voxctl_usage_error(
			        a->usage,
			        "--type \"%s\" must be a type, or a prefix "
			        "ending in * (number.*)",
			        a->type);
	}
	if (a->account != NULL &&
	    (*a->account == '\0' || strlen(a->account) > 200))
		return voxctl_usage_error(a->usage,
		                          "--account must be 1 to 200 "
		                          "characters");
	return -1;
}

static int replay_check(struct events_args *a)
{
	if (a->from == NULL || a->to == NULL)
		return voxctl_usage_error(a->usage, "%s is missing",
		                          a->from == NULL ? "--from" : "--to");
	if (!time_arg(a->from, &a->from_ms))
		return voxctl_usage_error(a->usage,
		                          "--from \"%s\" is not an RFC 3339 "
		                          "time (2026-12-07T10:00:00Z)",
		                          a->from);
	if (!time_arg(a->to, &a->to_ms))
		return voxctl_usage_error(a->usage,
		                          "--to \"%s\" is not an RFC 3339 "
		                          "time (2026-12-07T11:00:00Z)",
		                          a->to);
	if (a->from_ms >= a->to_ms)
		return voxctl_usage_error(a->usage,
		                          "--from must be before --to (the "
		                          "range is [from, to))");
	a->from_kind = FROM_TIME;
	return -1;
}

/* Returns -1 to go on, or the exit code (help, usage errors). */
static int events_read_args(int argc, char **argv, bool replay,
                            struct events_args *a)
{
	static const struct option longopts[] = {
	        {"topic", required_argument, NULL, 'T'},
	        {"type", required_argument, NULL, 't'},
	        {"account", required_argument, NULL, 'a'},
	        {"from", required_argument, NULL, 'f'},
	        {"to", required_argument, NULL, 'u'},
	        {"count", required_argument, NULL, 'c'},
	        {"idle-exit", required_argument, NULL, 'i'},
	        {"output", required_argument, NULL, 'o'},
	        {"progress", no_argument, NULL, 'p'},
	        {"no-progress", no_argument, NULL, 'n'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *count = NULL, *idle = NULL;
	int opt, rc, index = 0;

	a->usage = replay ? REPLAY_USAGE : TAIL_USAGE;
	a->topic = replay ? NULL : "vox.events";
	a->progress = -1;
	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, &index)) != -1) {
		switch (opt) {
		case 'T':
			a->topic = optarg;
			break;
		case 't':
			a->type = optarg;
			break;
		case 'a':
			a->account = optarg;
			break;
		case 'f':
			a->from = optarg;
			break;
		case 'u':
		case 'o':
		case 'p':
		case 'n':
			if (!replay)
				return voxctl_usage_error(
				        a->usage,
				        "--%s is an option of events "
				        "replay",
				        longopts[index].name);
			if (opt == 'u')
				a->to = optarg;
			else if (opt == 'o')
				a->output = optarg;
			else
				a->progress = opt == 'p';
			break;
		case 'c':
		case 'i':
			if (replay)
				return voxctl_usage_error(
				        a->usage,
				        "--%s is an option of events "
				        "tail",
				        longopts[index].name);
			*(opt == 'c' ? &count : &idle) = optarg;
			break;
		case 'h':
			printf("usage: %s\n", a->usage);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(a->usage, opt, argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(
		        a->usage, "unexpected argument \"%s\"", argv[optind]);
	if (count != NULL && !number_arg(count, 1, 1000000000, &a->count))
		return voxctl_usage_error(a->usage,
		                          "--count must be 1..1000000000");
	if (idle != NULL && !number_arg(idle, 1, 86400000, &a->idle_ms))
		return voxctl_usage_error(a->usage,
		                          "--idle-exit must be 1..86400000 "
		                          "(milliseconds)");
	if (a->output != NULL && *a->output == '\0')
		return voxctl_usage_error(a->usage, "--output is empty");
	rc = filters_check(a);
	if (rc >= 0)
		return rc;
	return replay ? replay_check(a) : from_arg(a);
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
	(void)rk;
	(void)level;
	/* librdkafka retries connections itself and says so loudly; we
	 * report what fails in our own words, so its lines are debug. */
	vox_log(VOX_LOG_DEBUG, buf, "component", "librdkafka", "facility", fac,
	        NULL);
}

/* A consumer that only reads what it is assigned. librdkafka's assign
 * needs a group id: a fresh one that never joins nor commits. */
static rd_kafka_t *events_consumer(const char *brokers)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char group[64], id[VOX_UUID_STRLEN], errstr[512];
	vox_error_t err;
	rd_kafka_t *rk;

	vox_uuid7(id);
	snprintf(group, sizeof(group), "voxctl-events-%s", id);
	if (vox_kafka_conf_set(conf, "bootstrap.servers", brokers, &err) ||
	    vox_kafka_conf_set(conf, "client.id", "voxctl", &err) ||
	    vox_kafka_conf_set(conf, "group.id", group, &err) ||
	    vox_kafka_conf_set(conf, "enable.auto.commit", "false", &err) ||
	    vox_kafka_conf_set(conf, "enable.auto.offset.store", "false",
	                       &err) ||
	    vox_kafka_conf_set(conf, "enable.partition.eof", "true", &err) ||
	    vox_kafka_conf_set(conf, "auto.offset.reset", "latest", &err)) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, on_kafka_log);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "voxctl: kafka: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	/* conf is now owned by rk */
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

static int kafka_failed(const struct events_run *r, const char *what,
                        rd_kafka_resp_err_t kerr)
{
	if (kerr == RD_KAFKA_RESP_ERR__TRANSPORT ||
	    kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ||
	    kerr == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		fprintf(stderr,
		        "voxctl: kafka at %s is not reachable (%s: no answer "
		        "within %ld ms; VOX_KAFKA_BROKERS, "
		        "VOX_KAFKA_WAIT_MS)\n",
		        r->cfg->kafka_brokers, what, r->cfg->kafka_wait_ms);
	else
		fprintf(stderr, "voxctl: kafka: %s: %s\n", what,
		        rd_kafka_err2str(kerr));
	return VOXCTL_FAILED;
}

/* The topic's partitions and their watermarks into r->parts. */
static int events_partitions(struct events_run *r)
{
	const int wait = (int)r->cfg->kafka_wait_ms;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t kerr;
	int rc = VOXCTL_FAILED;

	rkt = rd_kafka_topic_new(r->rk, r->a->topic, NULL);
	if (rkt == NULL)
		return kafka_failed(r, "topic handle", rd_kafka_last_error());
	kerr = rd_kafka_metadata(r->rk, 0, rkt, &md, wait);
	if (kerr) {
		rc = kafka_failed(r, "metadata", kerr);
		goto out_topic;
	}
	kerr = md->topic_cnt == 1 ? md->topics[0].err
	                          : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
	if (kerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
	    (kerr == 0 && md->topics[0].partition_cnt == 0)) {
		fprintf(stderr, "voxctl: no topic \"%s\" in kafka at %s\n",
		        r->a->topic, r->cfg->kafka_brokers);
		rc = VOXCTL_USAGE;
		goto out_metadata;
	}
	if (kerr) {
		rc = kafka_failed(r, "metadata", kerr);
		goto out_metadata;
	}
	r->nparts = md->topics[0].partition_cnt;
	r->parts = calloc((size_t)r->nparts, sizeof(*r->parts));
	if (r->parts == NULL) {
		fprintf(stderr, "voxctl: out of memory\n");
		goto out_metadata;
	}
	for (int i = 0; i < r->nparts; i++) {
		struct part *p = &r->parts[i];

		p->id = md->topics[0].partitions[i].id;
		kerr = rd_kafka_query_watermark_offsets(
		        r->rk, r->a->topic, p->id, &p->low, &p->high, wait);
		if (kerr) {
			rc = kafka_failed(r, "watermark offsets", kerr);
			goto out_metadata;
		}
	}
	rc = VOXCTL_OK;
out_metadata:
	rd_kafka_metadata_destroy(md);
out_topic:
	rd_kafka_topic_destroy(rkt);
	return rc;
}

static struct part *part_find(struct events_run *r, int32_t id)
{
	for (int i = 0; i < r->nparts; i++)
		if (r->parts[i].id == id)
			return &r->parts[i];
	return NULL;
}

/* For every partition, the first offset with a timestamp >= ms, or the
 * high watermark when there is none, into *field. */
static int offsets_at(struct events_run *r, int64_t ms, bool end_field)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;
	int rc = VOXCTL_OK;

	list = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++)
		rd_kafka_topic_partition_list_add(list, r->a->topic,
		                                  r->parts[i].id)
		        ->offset = ms;
	kerr = rd_kafka_offsets_for_times(r->rk, list,
	                                  (int)r->cfg->kafka_wait_ms);
	if (kerr) {
		rc = kafka_failed(r, "offsets for times", kerr);
		goto out;
	}
	for (int i = 0; i < list->cnt; i++) {
		struct part *p = part_find(r, list->elems[i].partition);
		int64_t offset = list->elems[i].offset;

		if (list->elems[i].err) {
			rc = kafka_failed(r, "offsets for times",
			                  list->elems[i].err);
			goto out;
		}
		if (offset < 0) /* no message at or after ms */
			offset = p->high;
		*(end_field ? &p->end : &p->start) = offset;
	}
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

/* The offset of partition id in "P:OFFSET,...", or -1 if not named. */
static int64_t offsets_lookup(const char *spec, int32_t id)
{
	const char *s = spec;

	while (*s != '\0') {
		char *end;
		long p = strtol(s, &end, 10);
		long long offset = strtoll(end + 1, &end, 10);

		if (p == id)
			return offset;
		s = *end == ',' ? end + 1 : end;
	}
	return -1;
}

/* Where a tail starts on every partition (-1: not read). */
static int tail_starts(struct events_run *r)
{
	const struct events_args *a = r->a;
	int rc;

	if (a->from_kind == FROM_TIME) {
		rc = offsets_at(r, a->from_ms, false);
		if (rc != VOXCTL_OK)
			return rc;
	}
	for (int i = 0; i < r->nparts; i++) {
		struct part *p = &r->parts[i];

		p->end = INT64_MAX;
		if (a->from_kind == FROM_END)
			p->start = RD_KAFKA_OFFSET_END;
		else if (a->from_kind == FROM_BEGINNING)
			p->start = RD_KAFKA_OFFSET_BEGINNING;
		else if (a->from_kind == FROM_OFFSET)
			p->start = a->offsets
			                   ? offsets_lookup(a->offsets, p->id)
			                   : a->from_offset;
		if (a->from_kind != FROM_OFFSET)
			continue;
		/* P:OFFSET,... reads only the partitions it names */
		p->done = p->start < 0;
		/* an offset outside what the partition holds starts at its
		 * nearest end, not wherever auto.offset.reset would go */
		p->start = p->start < p->low    ? p->low
		           : p->start > p->high ? p->high
		                                : p->start;
	}
	for (const char *s = a->offsets; s != NULL && *s != '\0';) {
		char *end;
		long id = strtol(s, &end, 10);

		if (part_find(r, (int32_t)id) == NULL) {
			fprintf(stderr,
			        "voxctl: topic \"%s\" has no partition "
			        "%ld\n",
			        a->topic, id);
			return VOXCTL_USAGE;
		}
		s = strchr(end, ',');
		s = s ? s + 1 : "";
	}
	return VOXCTL_OK;
}

static int replay_ranges(struct events_run *r)
{
	int rc = offsets_at(r, r->a->from_ms, false);

	if (rc == VOXCTL_OK)
		rc = offsets_at(r, r->a->to_ms, true);
	for (int i = 0; rc == VOXCTL_OK && i < r->nparts; i++) {
		struct part *p = &r->parts[i];

		if (p->end < p->start)
			p->end = p->start;
		p->next = p->start;
		p->done = p->start >= p->end;
		r->total += p->end - p->start;
	}
	return rc;
}

static int events_assign(struct events_run *r)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;

	list = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++)
		if (!r->parts[i].done)
			rd_kafka_topic_partition_list_add(list, r->a->topic,
			                                  r->parts[i].id)
			        ->offset = r->parts[i].start;
	kerr = list->cnt > 0 ? rd_kafka_assign(r->rk, list) : 0;
	rd_kafka_topic_partition_list_destroy(list);
	return kerr ? kafka_failed(r, "assign", kerr) : VOXCTL_OK;
}

/* --type: exact, or a prefix when it ends in '*'. */
static bool type_matches(const char *pattern, const char *type)
{
	size_t n = strlen(pattern);

	if (type == NULL)
		return false;
	if (n > 0 && pattern[n - 1] == '*')
		return strncmp(pattern, type, n - 1) == 0;
	return strcmp(pattern, type) == 0;
}

static bool event_matches(const struct events_args *a, json_t *event)
{
	const char *account;

	if (a->type != NULL &&
	    !type_matches(a->type,
	                  json_string_value(json_object_get(event, "type"))))
		return false;
	account = json_string_value(json_object_get(event, "accountid"));
	return a->account == NULL ||
	       (account != NULL && strcmp(a->account, account) == 0);
}

/* Prints the message value as one line if it is a JSON object that the
 * filters let through; anything else is skipped, with the reason. */
static void event_print(struct events_run *r, const rd_kafka_message_t *msg)
{
	json_t *event = NULL;
	json_error_t jerr;
	int failed;

	r->read++;
	if (msg->len > 0)
		event = json_loadb(msg->payload, msg->len, 0, &jerr);
	if (!json_is_object(event)) {
		r->skipped++;
		fprintf(stderr,
		        "voxctl: skipped %s/%" PRId32 "/%" PRId64 ": %s\n",
		        r->a->topic, msg->partition, msg->offset,
		        msg->len == 0 ? "empty message" : "not a JSON object");
		goto out;
	}
	if (!event_matches(r->a, event))
		goto out;
	/* one event a line: a value written over several lines is
	 * written again compactly */
	if (memchr(msg->payload, '\n', msg->len) != NULL)
		failed = json_dumpf(event, r->out, JSON_COMPACT) != 0;
	else
		failed = fwrite(msg->payload, 1, msg->len, r->out) != msg->len;
	if (failed || putc('\n', r->out) == EOF ||
	    (!r->replay && fflush(r->out) != 0))
		r->stopped = true;
	else
		r->printed++;
out:
	json_decref(event);
}

static void progress_show(struct events_run *r, bool final)
{
	static const char bar[] = "##############################";
	const int width = (int)sizeof(bar) - 1;
	int64_t now = vox_mono_ms(), done = 0;
	double seconds, pct;

	if (!final && now - r->progress_ms < PROGRESS_EVERY_MS)
		return;
	r->progress_ms = now;
	for (int i = 0; i < r->nparts; i++)
		done += (r->parts[i].done ? r->parts[i].end
		                          : r->parts[i].next) -
		        r->parts[i].start;
	pct = r->total > 0 ? 100.0 * (double)done / (double)r->total : 100.0;
	seconds = (double)(now - r->started_ms) / 1000.0;
	fprintf(stderr, "\r[%-*.*s] %" PRId64 "/%" PRId64 " %5.1f%% %.0f/s",
	        width, (int)(pct * width / 100.0), bar, done, r->total, pct,
	        seconds > 0 ? (double)done / seconds : 0.0);
	if (final)
		fputc('\n', stderr);
}

static bool all_done(const struct events_run *r)
{
	for (int i = 0; i < r->nparts; i++)
		if (!r->parts[i].done)
			return false;
	return true;
}

/* A message (or partition end) of a replay: prints it when its offset
 * and timestamp are in range; the partition is done at its end offset. */
static void replay_message(struct events_run *r, const rd_kafka_message_t *msg)
{
	struct part *p = part_find(r, msg->partition);
	rd_kafka_timestamp_type_t tstype;
	int64_t ts;

	if (p == NULL || p->done)
		return;
	if (msg->err == 0 && msg->offset < p->end) {
		ts = rd_kafka_message_timestamp(msg, &tstype);
		if (ts >= r->a->from_ms && ts < r->a->to_ms)
			event_print(r, msg);
		p->next = msg->offset + 1;
	} else if (msg->err == 0) {
		p->next = msg->offset;
	} else {
		p->next = msg->offset; /* partition EOF: the end it saw */
	}
	if (p->next >= p->end) {
		rd_kafka_topic_partition_list_t *one =
		        rd_kafka_topic_partition_list_new(1);

		p->done = true;
		rd_kafka_topic_partition_list_add(one, r->a->topic, p->id);
		rd_kafka_pause_partitions(r->rk, one);
		rd_kafka_topic_partition_list_destroy(one);
	}
}

/* Reads until the replay's ranges are done, the tail's count or idle
 * time is reached, stdout is closed, or a stop signal. */
static int events_consume(struct events_run *r)
{
	const struct events_args *a = r->a;
	int64_t last_ms = vox_mono_ms(), error_since = 0;
	rd_kafka_message_t *msg;

	while (vox_running && !r->stopped && !(r->replay && all_done(r)) &&
	       !(a->count > 0 && r->printed >= a->count)) {
		if (r->replay && r->progress)
			progress_show(r, false);
		msg = rd_kafka_consumer_poll(r->rk, POLL_MS);
		if (msg == NULL) {
			if (a->idle_ms > 0 &&
			    vox_mono_ms() - last_ms >= a->idle_ms)
				break;
			continue;
		}
		if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			int64_t now = vox_mono_ms();

			/* a tail follows through outages (librdkafka
			 * reconnects); a replay gives up after the wait */
			if (error_since == 0 && !r->replay)
				fprintf(stderr,
				        "voxctl: kafka: %s (still "
				        "trying)\n",
				        rd_kafka_err2str(msg->err));
			if (error_since == 0)
				error_since = now;
			if (rd_kafka_fatal_error(r->rk, NULL, 0) ||
			    (r->replay &&
			     now - error_since >= r->cfg->kafka_wait_ms)) {
				kafka_failed(r, "consume", msg->err);
				rd_kafka_message_destroy(msg);
				return VOXCTL_FAILED;
			}
		} else if (r->replay) {
			error_since = 0;
			replay_message(r, msg);
		} else if (msg->err == 0) {
			error_since = 0;
			last_ms = vox_mono_ms();
			event_print(r, msg);
		}
		rd_kafka_message_destroy(msg);
	}
	return VOXCTL_OK;
}

static void events_close(struct events_run *r)
{
	if (r->rk != NULL) {
		rd_kafka_consumer_close(r->rk);
		rd_kafka_destroy(r->rk);
	}
	free(r->parts);
}

int voxctl_events_tail(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct events_args a = {0};
	struct events_run r = {.cfg = cfg, .a = &a, .out = stdout};
	int rc = events_read_args(argc, argv, false, &a);

	if (rc >= 0)
		return rc;
	vox_signal_setup();
	r.rk = events_consumer(cfg->kafka_brokers);
	if (r.rk == NULL)
		return VOXCTL_FAILED;
	rc = events_partitions(&r);
	if (rc == VOXCTL_OK)
		rc = tail_starts(&r);
	if (rc == VOXCTL_OK)
		rc = events_assign(&r);
	if (rc == VOXCTL_OK)
		rc = events_consume(&r);
	events_close(&r);
	return rc;
}

/* The output file is written under a temporary name and renamed once
 * the replay is complete: a FILE that exists is a whole replay. */
static int replay_output(struct events_run *r, char *tmp, size_t tmplen)
{
	if (r->a->output == NULL)
		return VOXCTL_OK;
	if ((size_t)snprintf(tmp, tmplen, "%s.partial", r->a->output) >= tmplen)
		return voxctl_usage_error(r->a->usage, "--output is too long");
	r->out = fopen(tmp, "w");
	if (r->out == NULL) {
		fprintf(stderr, "voxctl: cannot write %s: %s\n", tmp,
		        strerror(errno));
		return VOXCTL_FAILED;
	}
	return VOXCTL_OK;
}

static int replay_finish(struct events_run *r, int rc, const char *tmp)
{
	int used = 0;
	bool to_file = r->a->output != NULL;

	if (rc == VOXCTL_OK && !vox_running) {
		fprintf(stderr,
		        "\nvoxctl: replay interrupted after %ld events: "
		        "the output is incomplete\n",
		        r->printed);
		rc = VOXCTL_FAILED;
	}
	if ((fflush(r->out) != 0 || r->stopped) && rc == VOXCTL_OK) {
		fprintf(stderr, "voxctl: cannot write the output: %s\n",
		        strerror(errno));
		rc = VOXCTL_FAILED;
	}
	if (to_file && fclose(r->out) != 0 && rc == VOXCTL_OK) {
		fprintf(stderr, "voxctl: cannot write %s: %s\n", tmp,
		        strerror(errno));
		rc = VOXCTL_FAILED;
	}
	if (to_file && rc == VOXCTL_OK && rename(tmp, r->a->output) != 0) {
		fprintf(stderr, "voxctl: cannot rename %s to %s: %s\n", tmp,
		        r->a->output, strerror(errno));
		rc = VOXCTL_FAILED;
	}
	if (to_file && rc != VOXCTL_OK)
		unlink(tmp);
	if (rc != VOXCTL_OK)
		return rc;
	if (r->progress)
		progress_show(r, true);
	for (int i = 0; i < r->nparts; i++)
		used += r->parts[i].end > r->parts[i].start;
	fprintf(stderr, "replayed %ld events from %d partitions in %.1f s",
	        r->printed, used,
	        (double)(vox_mono_ms() - r->started_ms) / 1000.0);
	if (r->read > r->printed)
		fprintf(stderr,
		        " (%ld read: %ld filtered out, %ld skipped as not JSON "
		        "objects)",
		        r->read, r->read - r->printed - r->skipped, r->skipped);
	fputc('\n', stderr);
	return VOXCTL_OK;
}

int voxctl_events_replay(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct events_args a = {0};
	struct events_run r = {
	        .cfg = cfg, .a = &a, .out = stdout, .replay = true};
	char tmp[4096];
	int rc = events_read_args(argc, argv, true, &a);

	if (rc >= 0)
		return rc;
	r.progress = a.progress >= 0 ? a.progress : isatty(STDERR_FILENO);
	r.started_ms = vox_mono_ms();
	vox_signal_setup();
	r.rk = events_consumer(cfg->kafka_brokers);
	if (r.rk == NULL)
		return VOXCTL_FAILED;
	rc = events_partitions(&r);
	if (rc == VOXCTL_OK)
		rc = replay_ranges(&r);
	if (rc == VOXCTL_OK)
		rc = replay_output(&r, tmp, sizeof(tmp));
	if (rc != VOXCTL_OK)
		goto out;
	rc = events_assign(&r);
	if (rc == VOXCTL_OK)
		rc = events_consume(&r);
	rc = replay_finish(&r, rc, tmp);
out:
	events_close(&r);
	return rc;
}

int voxctl_events(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct voxctl_sub subs[] = {
	        {"tail", TAIL_USAGE, voxctl_events_tail},
	        {"replay", REPLAY_USAGE, voxctl_events_replay},
	};

	return voxctl_dispatch(subs, sizeof(subs) / sizeof(subs[0]), cfg, argc,
	                       argv);
}
