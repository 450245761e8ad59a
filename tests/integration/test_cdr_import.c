/*
 * producers/cdr-import against the real Kafka of the test stack: every
 * good row of a 20,000-row file lands on vox.cdr.raw (keyed by our number)
 * and the bad ones in the rejects file; an import stopped by SIGINT and
 * rerun sends every row exactly once; one killed with SIGKILL and rerun
 * sends every row at least once and skips what its checkpoint says; a
 * finished file sends nothing again; a file without a required column is
 * refused before anything is sent; no Kafka gives exit 3.
 *
 * vox.cdr.raw is shared by every test: each test uses a carrier name of
 * its own and reads only the messages written after it started.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_cdr.h"
#include "vox_uuid.h"

#define GOOD_ROWS      20000
#define MAX_PARTITIONS 64

/* What one test saw on the topic for its carrier. */
struct seen {
	const char *carrier;
	int nrows;
	int *count;    /* per good row index */
	int foreign;   /* ids of ours that are not good rows */
	int bad_key;   /* key not our number */
	int bad_event; /* type or received_via wrong */
};

struct import_run {
	char dir[256];
	char file[300];
	char carrier[40];
	char out[320], err[320];
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void number_for(int i, char out[24])
{
	snprintf(out, 24, "+1415202%04d", i % 10000);
}

/* A directory and carrier name of the test's own. */
static void run_init(struct import_run *r, const char *name)
{
	char id[VOX_UUID_STRLEN];

	vox_uuid7(id);
	snprintf(r->carrier, sizeof(r->carrier), "t-%s", id + 24);
	snprintf(r->dir, sizeof(r->dir), "%s/cdr-import-%s-%s",
	         t_env("VOX_TEST_LOGS"), name, id + 24);
	cr_assert_eq(mkdir(r->dir, 0755), 0, "mkdir %s: %s", r->dir,
	             strerror(errno));
	snprintf(r->file, sizeof(r->file), "%s/cdrs.csv", r->dir);
	snprintf(r->out, sizeof(r->out), "%s/stdout", r->dir);
	snprintf(r->err, sizeof(r->err), "%s/stderr", r->dir);
}

/* Writes nrows good rows (ids <carrier>-<i>) in a column order of our
 * own with an extra column, and a bad row after every 2500th good one;
 * returns the bad rows written. Lines: 1 header, then one per row. */
static int write_cdrs(const struct import_run *r, int nrows, bool with_bad)
{
	/* segments, then the columns after id; '@' is the start time. */
	static const char *const bad[][2] = {
	        {"", "inbound_call,+12125550100,+999,@,5,x"},
	        {"", "fax,+12125550100,+14152020001,@,5,x"},
	        {"", "inbound_call,+12125550100,+14152020001,@,-3,x"},
	        {"", "inbound_call,+12125550100,+14152020001,@"},
	        {"0", "sms_sent,+14152020001,+12125550100,@,,x"},
	        {"", "inbound_call,+12125550100,+14152020001,not-a-time,5,x"},
	        {"", "inbound_call,+12125550100,+14152020001,"
	             "2099-01-01T00:00:00Z,5,x"},
	        {"", "outbound_call,+14152020001,+12125550100,@,,x"}};
	char now[40], number[24];
	FILE *out = fopen(r->file, "w");
	int nbad = 0;

	cr_assert_not_null(out);
	vox_rfc3339_format((int64_t)time(NULL) * 1000000 - 60000000, now,
	                   sizeof(now));
	fputs("segments,id,type,from,to,started_at,duration_s,note\r\n", out);
	for (int i = 0; i < nrows; i++) {
		number_for(i, number);
		if (i % 2)
			fprintf(out,
			        ",%s-%d,inbound_call,\"+12125550100\",%s,%s,%d,"
			        "\"a, \"\"b\"\"\"\r\n",
			        r->carrier, i, number, now, i % 600);
		else
			fprintf(out, "%d,%s-%d,sms_sent,%s,anonymous,%s,,\n",
			        1 + i % 3, r->carrier, i, number, now);
		if (with_bad && i % 2500 == 2499) {
			fprintf(out, "%s,%s-bad%d,", bad[nbad % 8][0],
			        r->carrier, nbad);
			for (const char *c = bad[nbad % 8][1]; *c; c++)
				if (*c == '@')
					fputs(now, out);
				else
					fputc(*c, out);
			fputs("\r\n", out);
			nbad++;
		}
	}
	fclose(out);
	return nbad;
}

/* Starts cdr-import with args (NULL-terminated) and extra environment. */
static pid_t import_start(const struct import_run *r, const char *const *args,
                          const char *extra_env)
{
	char path[512], carrier_arg[64];
	const char *argv[16];
	int n = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/cdr-import", t_env("VOX_BIN_DIR"));
	snprintf(carrier_arg, sizeof(carrier_arg), "--carrier=%s", r->carrier);
	argv[n++] = "cdr-import";
	argv[n++] = carrier_arg;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int out = open(r->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(r->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		if (extra_env != NULL)
			putenv((char *)extra_env);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Exit code, or 128 + the signal that ended it. */
static int import_wait(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int import_run(const struct import_run *r, const char *const *args,
                      const char *extra_env)
{
	return import_wait(import_start(r, args, extra_env));
}

static char *slurp(const char *path)
{
	FILE *in = fopen(path, "rb");
	char *text;
	long size;

	if (in == NULL)
		return strdup("");
	fseek(in, 0, SEEK_END);
	size = ftell(in);
	rewind(in);
	text = calloc(1, (size_t)size + 1);
	cr_assert_eq(fread(text, 1, (size_t)size, in), (size_t)size);
	fclose(in);
	return text;
}

/* A number from the summary's "total:" line ("skipped 123"). */
static long summary_total(const struct import_run *r, const char *what)
{
	char *text = slurp(r->out), *total = strstr(text, "total:"), *at;
	long value = -1;

	cr_assert_not_null(total, "no summary in %s:\n%s", r->out, text);
	at = strstr(total, what);
	if (at != NULL)
		value = strtol(at + strlen(what) + 1, NULL, 10);
	free(text);
	return value;
}

/* ---------------------------------------------------------- the topic */

static rd_kafka_t *consumer_new(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char group[64], id[VOX_UUID_STRLEN], errstr[256];
	rd_kafka_t *rk;

	vox_uuid7(id);
	snprintf(group, sizeof(group), "t-cdr-%s", id);
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
	                  sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	return rk;
}

/* The end offset of each partition of vox.cdr.raw; returns how many. */
static int topic_ends(rd_kafka_t *rk, int64_t ends[MAX_PARTITIONS])
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, VOX_CDR_TOPIC, NULL);
	int n;

	cr_assert_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000),
	             RD_KAFKA_RESP_ERR_NO_ERROR);
	n = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	cr_assert(n > 0 && n <= MAX_PARTITIONS);
	for (int p = 0; p < n; p++) {
		int64_t lo;

		cr_assert_eq(rd_kafka_query_watermark_offsets(rk, VOX_CDR_TOPIC,
		                                              p, &lo, &ends[p],
		                                              10000),
		             RD_KAFKA_RESP_ERR_NO_ERROR);
	}
	return n;
}

static void marks_take(int64_t marks[MAX_PARTITIONS])
{
	rd_kafka_t *rk = consumer_new();

	topic_ends(rk, marks);
	rd_kafka_destroy(rk);
}

static void seen_message(struct seen *seen, const rd_kafka_message_t *m)
{
	json_t *event = json_loadb(m->payload, m->len, 0, NULL), *data;
	const char *carrier, *id, *via, *type;
	size_t prefix = strlen(seen->carrier);
	char number[24], *end;
	long i;

	cr_assert_not_null(event);
	data = json_object_get(event, "data");
	carrier = json_string_value(json_object_get(data, "carrier"));
	if (carrier == NULL || strcmp(carrier, seen->carrier) != 0) {
		json_decref(event);
		return;
	}
	id = json_string_value(json_object_get(data, "id"));
	via = json_string_value(json_object_get(data, "received_via"));
	type = json_string_value(json_object_get(event, "type"));
	if (via == NULL || strcmp(via, "file") != 0 || type == NULL ||
	    strcmp(type, VOX_CDR_EVENT_TYPE) != 0)
		seen->bad_event++;
	i = -1;
	if (id && strncmp(id, seen->carrier, prefix) == 0 &&
	    id[prefix] == '-') {
		i = strtol(id + prefix + 1, &end, 10);
		if (*end || end == id + prefix + 1 || i >= seen->nrows)
			i = -1;
	}
	if (i < 0) {
		seen->foreign++;
	} else {
		seen->count[i]++;
		number_for((int)i, number);
		if (m->key_len != strlen(number) ||
		    memcmp(m->key, number, m->key_len) != 0)
			seen->bad_key++;
	}
	json_decref(event);
}

/* Reads every message written to vox.cdr.raw since marks. */
static void consume_since(const int64_t marks[MAX_PARTITIONS],
                          struct seen *seen)
{
	rd_kafka_t *rk = consumer_new();
	rd_kafka_topic_partition_list_t *parts;
	int64_t ends[MAX_PARTITIONS], next[MAX_PARTITIONS];
	int n = topic_ends(rk, ends), waited = 0;
	bool done = false;

	parts = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++) {
		rd_kafka_topic_partition_list_add(parts, VOX_CDR_TOPIC, p)
		        ->offset = marks[p];
		next[p] = marks[p];
	}
	cr_assert_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(parts);
	while (!done && waited < 60000) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

		if (m == NULL || m->err) {
			waited += 200;
		} else {
			seen_message(seen, m);
			next[m->partition] = m->offset + 1;
		}
		if (m != NULL)
			rd_kafka_message_destroy(m);
		done = true;
		for (int p = 0; p < n; p++)
			done = done && next[p] >= ends[p];
	}
	cr_assert(done, "vox.cdr.raw not read to its end within 60 s");
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

static struct seen *seen_new(const struct import_run *r, int nrows)
{
	struct seen *seen = calloc(1, sizeof(*seen));

	seen->carrier = r->carrier;
	seen->nrows = nrows;
	seen->count = calloc((size_t)nrows, sizeof(int));
	return seen;
}

static void seen_free(struct seen *seen)
{
	free(seen->count);
	free(seen);
}

/* Every good row min..max times; no other message of ours. */
static void assert_counts(const struct seen *seen, int min, int max)
{
	int missing = 0, over = 0, first_missing = -1;

	for (int i = 0; i < seen->nrows; i++) {
		if (seen->count[i] < min && first_missing < 0)
			first_missing = i;
		missing += seen->count[i] < min;
		over += seen->count[i] > max;
	}
	cr_assert_eq(missing, 0, "%d good rows not on the topic (first %d)",
	             missing, first_missing);
	cr_assert_eq(over, 0, "%d good rows on the topic more than %d times",
	             over, max);
	cr_assert_eq(seen->foreign, 0, "%d rejected rows were sent",
	             seen->foreign);
	cr_assert_eq(seen->bad_key, 0, "%d messages not keyed by our number",
	             seen->bad_key);
	cr_assert_eq(seen->bad_event, 0);
}

static bool file_exists(void *path)
{
	return access(path, F_OK) == 0;
}

static long checkpoint_line(const char *path, bool *complete)
{
	json_t *cp = json_load_file(path, 0, NULL);
	long line;

	cr_assert_not_null(cp, "no checkpoint %s", path);
	line = (long)json_integer_value(json_object_get(cp, "line"));
	*complete = json_is_true(json_object_get(cp, "complete"));
	json_decref(cp);
	return line;
}

/* ---------------------------------------------------------- the tests */

Test(cdr_import, good_rows_land_on_the_topic_bad_ones_in_rejects,
     .timeout = 180)
{
	const char *const args[] = {NULL, NULL};
	int64_t marks[MAX_PARTITIONS];
	struct import_run r;
	struct seen *seen;
	char rejects[340], *text, needle[80];
	int nbad;

	run_init(&r, "good");
	nbad = write_cdrs(&r, GOOD_ROWS, true);
	marks_take(marks);
	((const char **)args)[0] = r.file;
	cr_assert_eq(import_run(&r, args, NULL), 1, "exit status (stderr: %s)",
	             slurp(r.err));
	cr_assert_eq(summary_total(&r, "accepted"), GOOD_ROWS);
	cr_assert_eq(summary_total(&r, "rejected"), nbad);
	seen = seen_new(&r, GOOD_ROWS);
	consume_since(marks, seen);
	assert_counts(seen, 1, 1);
	seen_free(seen);
	/* Each bad row with its line and reason. Good row i is on line
	 * 2 + i + (bad rows before it); bad row k follows good row
	 * 2500 k + 2499. */
	snprintf(rejects, sizeof(rejects), "%s.rejected.csv", r.file);
	text = slurp(rejects);
	cr_assert(strncmp(text, "line,reason,detail,segments,id,", 31) == 0,
	          "%s", text);
	{
		static const char *const reasons[] = {
		        "invalid_number",       "invalid_type",
		        "invalid_duration",     "malformed_row",
		        "invalid_segments",     "invalid_started_at",
		        "started_at_in_future", "invalid_duration"};

		for (int k = 0; k < nbad; k++) {
			snprintf(needle, sizeof(needle), "\n%d,%s,",
			         2 + 2500 * k + 2499 + 1 + k - 0,
			         reasons[k % 8]);
			cr_assert_not_null(strstr(text, needle),
			                   "rejects lack %s:\n%s", needle + 1,
			                   text);
		}
	}
	free(text);
}

Test(cdr_import, sigint_then_rerun_sends_each_row_exactly_once, .timeout = 180)
{
	const char *args[] = {"--max-rate=8000", NULL, NULL};
	const char *rerun[] = {NULL, NULL};
	int64_t marks[MAX_PARTITIONS];
	char checkpoint[340];
	struct import_run r;
	struct seen *seen;
	long first, second;
	bool complete;
	pid_t pid;

	run_init(&r, "sigint");
	write_cdrs(&r, GOOD_ROWS, false);
	snprintf(checkpoint, sizeof(checkpoint), "%s.checkpoint", r.file);
	marks_take(marks);
	args[1] = r.file;
	pid = import_start(&r, args, NULL);
	cr_assert(t_wait_for(file_exists, checkpoint, 20000));
	sleep_ms(300);
	kill(pid, SIGINT);
	cr_assert_eq(import_wait(pid), 130, "stderr: %s", slurp(r.err));
	first = summary_total(&r, "accepted");
	cr_assert(first > 0 && first < GOOD_ROWS, "first run sent %ld", first);
	/* With SIGINT every report is waited for: the checkpoint is exact. */
	cr_assert_eq(checkpoint_line(checkpoint, &complete), first + 1);
	cr_assert(!complete);
	rerun[0] = r.file;
	cr_assert_eq(import_run(&r, rerun, NULL), 0, "stderr: %s",
	             slurp(r.err));
	second = summary_total(&r, "accepted");
	cr_assert_eq(summary_total(&r, "skipped"), first);
	cr_assert_eq(first + second, GOOD_ROWS);
	checkpoint_line(checkpoint, &complete);
	cr_assert(complete);
	seen = seen_new(&r, GOOD_ROWS);
	consume_since(marks, seen);
	assert_counts(seen, 1, 1);
	seen_free(seen);
}

Test(cdr_import, sigkill_then_rerun_sends_each_row_at_least_once,
     .timeout = 180)
{
	const char *args[] = {"--max-rate=8000", NULL, NULL};
	const char *rerun[] = {NULL, NULL};
	int64_t marks[MAX_PARTITIONS];
	char checkpoint[340];
	struct import_run r;
	struct seen *seen;
	long line, again = 0;
	bool complete;
	pid_t pid;

	run_init(&r, "sigkill");
	write_cdrs(&r, GOOD_ROWS, false);
	snprintf(checkpoint, sizeof(checkpoint), "%s.checkpoint", r.file);
	marks_take(marks);
	args[1] = r.file;
	pid = import_start(&r, args, NULL);
	cr_assert(t_wait_for(file_exists, checkpoint, 20000));
	sleep_ms(700);
	kill(pid, SIGKILL);
	cr_assert_eq(import_wait(pid), 128 + SIGKILL);
	line = checkpoint_line(checkpoint, &complete);
	cr_assert(!complete && line > 1 && line < GOOD_ROWS + 1, "line %ld",
	          line);
	rerun[0] = r.file;
	cr_assert_eq(import_run(&r, rerun, NULL), 0, "stderr: %s",
	             slurp(r.err));
	/* Rows are on lines 2..: the checkpoint covers line - 1 of them. */
	cr_assert_eq(summary_total(&r, "skipped"), line - 1);
	cr_assert_eq(summary_total(&r, "accepted"), GOOD_ROWS - (line - 1));
	seen = seen_new(&r, GOOD_ROWS);
	consume_since(marks, seen);
	assert_counts(seen, 1, 2);
	for (int i = 0; i < GOOD_ROWS; i++)
		again += seen->count[i] > 1;
	/* Sent twice: only what was sent after the last checkpoint write
	 * (at most ~0.5 s of records at 8000/s, plus what was in flight). */
	cr_assert_leq(again, 8000, "%ld rows sent twice", again);
	cr_log_info("sigkill: checkpoint at line %ld, %ld rows sent twice",
	            line, again);
	seen_free(seen);
}

Test(cdr_import, finished_file_rerun_sends_nothing, .timeout = 120)
{
	const char *args[] = {NULL, NULL};
	int64_t marks[MAX_PARTITIONS];
	struct import_run r;
	struct seen *seen;

	run_init(&r, "rerun");
	write_cdrs(&r, 200, false);
	args[0] = r.file;
	cr_assert_eq(import_run(&r, args, NULL), 0);
	cr_assert_eq(summary_total(&r, "accepted"), 200);
	marks_take(marks);
	cr_assert_eq(import_run(&r, args, NULL), 0);
	cr_assert_eq(summary_total(&r, "accepted"), 0);
	cr_assert_eq(summary_total(&r, "skipped"), 200);
	seen = seen_new(&r, 200);
	consume_since(marks, seen);
	assert_counts(seen, 0, 0);
	seen_free(seen);
}

Test(cdr_import, missing_column_refuses_every_file_before_sending,
     .timeout = 120)
{
	const char *args[] = {NULL, NULL, NULL};
	int64_t marks[MAX_PARTITIONS];
	char second[340], *err;
	struct import_run r;
	struct seen *seen;
	FILE *out;

	run_init(&r, "header");
	write_cdrs(&r, 100, false);
	snprintf(second, sizeof(second), "%s/no-started-at.csv", r.dir);
	out = fopen(second, "w");
	fputs("id,type,from,to,duration_s,segments\n"
	      "x1,inbound_call,+12125550100,+14152020001,5,\n",
	      out);
	fclose(out);
	marks_take(marks);
	args[0] = r.file;
	args[1] = second;
	cr_assert_eq(import_run(&r, args, NULL), 2);
	err = slurp(r.err);
	cr_assert_not_null(strstr(err, "\"started_at\""), "stderr: %s", err);
	free(err);
	seen = seen_new(&r, 100);
	consume_since(marks, seen);
	assert_counts(seen, 0, 0);
	seen_free(seen);
}

Test(cdr_import, kafka_unavailable_exits_3, .timeout = 60)
{
	const char *args[] = {NULL, NULL};
	struct import_run r;
	char env[96], *err;
	time_t started = time(NULL);

	run_init(&r, "nokafka");
	write_cdrs(&r, 10, false);
	args[0] = r.file;
	snprintf(env, sizeof(env), "VOX_KAFKA_BROKERS=127.0.0.1:%d",
	         t_free_port());
	setenv("VOX_CDR_IMPORT_KAFKA_WAIT_S", "2", 1);
	cr_assert_eq(import_run(&r, args, env), 3);
	unsetenv("VOX_CDR_IMPORT_KAFKA_WAIT_S");
	cr_assert_leq(time(NULL) - started, 20);
	err = slurp(r.err);
	cr_assert_not_null(strstr(err, "unavailable"), "stderr: %s", err);
	free(err);
}
