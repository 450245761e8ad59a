/*
 * bench/metering_load: the two halves of bench/metering.
 *
 *   metering_load produce BROKERS TOPIC N CARRIER NUMBERS_FILE
 *       N vox.cdr.received events (vox_cdr_event, as the ingress makes
 *       them) keyed by number, round robin over the numbers in the file
 *       (one E.164 a line): a mix of inbound/outbound calls and messages.
 *       Prints "produced N in S s (R/s)".
 *   metering_load copy PG_URL N ACCOUNT_ID NUMBERS_FILE CARD_ID RATE_ID
 *       N rows shaped like the worker's into usage_records with one
 *       binary COPY: the ceiling of writing these rows into this table.
 *       Prints "copied N in S s (R/s)".
 */
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_cdr.h"
#include "vox_copy.h"
#include "vox_uuid.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_numbers(const char *path, char (**out)[24])
{
	FILE *f = fopen(path, "r");
	char line[64];
	int n = 0, cap = 1024;
	char(*nums)[24] = malloc((size_t)cap * sizeof(*nums));

	if (f == NULL || nums == NULL) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '+')
			continue;
		if (n == cap) {
			cap *= 2;
			nums = realloc(nums, (size_t)cap * sizeof(*nums));
			if (nums == NULL)
				exit(1);
		}
		snprintf(nums[n++], 24, "%.23s", line);
	}
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "%s: no numbers\n", path);
		exit(1);
	}
	*out = nums;
	return n;
}

static void fill(vox_cdr_t *cdr, long i, const char *number, int64_t base_us)
{
	memset(cdr, 0, sizeof(*cdr));
	snprintf(cdr->id, sizeof(cdr->id), "bench-%ld", i);
	cdr->type = (vox_cdr_type_t)(i % 4);
	snprintf(cdr->number, sizeof(cdr->number), "%s", number);
	if (vox_cdr_is_inbound(cdr->type)) {
		snprintf(cdr->from, sizeof(cdr->from), "+12125550100");
		snprintf(cdr->to, sizeof(cdr->to), "%s", number);
	} else {
		snprintf(cdr->from, sizeof(cdr->from), "%s", number);
		snprintf(cdr->to, sizeof(cdr->to), "+44207946%04ld", i % 10000);
	}
	cdr->started_us = base_us + i * 1000;
	if (vox_cdr_is_call(cdr->type))
		cdr->duration_s = (int)(i * 7919 % 1200);
	else
		cdr->segments = 1 + (int)(i % 3);
}

static long delivered_ok, delivered_err;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err)
		delivered_err++;
	else
		delivered_ok++;
}

static int produce(const char *brokers, const char *topic, long n,
                   const char *carrier, const char *numbers_file)
{
	char(*nums)[24], errstr[256], ev[1024];
	int nn = read_numbers(numbers_file, &nums);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int64_t base = ((int64_t)time(NULL) - 86400) * 1000000;
	double t0;
	rd_kafka_t *rk;
	vox_cdr_t cdr;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
	                      sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
	                      sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "20", errstr,
	                      sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "compression.type", "lz4", errstr,
	                      sizeof(errstr))) {
		fprintf(stderr, "kafka conf: %s\n", errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "kafka: %s\n", errstr);
		return 1;
	}
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		int len;

		fill(&cdr, i, nums[i % nn], base);
		len = vox_cdr_event(&cdr, carrier, "api", ev, sizeof(ev));
		while (rd_kafka_producev(
		               rk, RD_KAFKA_V_TOPIC(topic),
		               RD_KAFKA_V_KEY(cdr.number, strlen(cdr.number)),
		               RD_KAFKA_V_VALUE(ev, (size_t)len),
		               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		               RD_KAFKA_V_END) != 0)
			rd_kafka_poll(rk, 10);
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 120000);
	printf("produced %ld in %.2f s (%.0f/s), %ld failed\n", delivered_ok,
	       now_s() - t0, (double)delivered_ok / (now_s() - t0),
	       delivered_err);
	rd_kafka_destroy(rk);
	free(nums);
	return delivered_err == 0 && delivered_ok == n ? 0 : 1;
}

/* ---------------------------------------------------------------- COPY */

static int copy(const char *url, long n, const char *account,
                const char *numbers_file, const char *card, const char *rate)
{
	char(*nums)[24], id[VOX_UUID_STRLEN], cdr_id[48];
	int nn = read_numbers(numbers_file, &nums);
	int64_t base = ((int64_t)time(NULL) - 86400) * 1000000, now;
	vox_copybuf_t b;
	PGconn *conn = PQconnectdb(url);
	PGresult *res;
	vox_cdr_t cdr;
	double t0;

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	now = (int64_t)time(NULL) * 1000000;
	/* the rows are built before the clock starts: only the COPY counts */
	vox_copy_begin(&b, (size_t)n * 300);
	for (long i = 0; i < n; i++) {
		int billable;

		fill(&cdr, i, nums[i % nn], base);
		billable = (cdr.duration_s + 59) / 60 * 60;
		vox_uuid7(id);
		snprintf(cdr_id, sizeof(cdr_id), "copy-%ld", i);
		vox_copy_row(&b, 21);
		vox_copy_uuid(&b, id);
		vox_copy_uuid(&b, account);
		vox_copy_uuid(&b, id); /* number_id: any uuid */
		vox_copy_text(&b, cdr.number);
		vox_copy_text(&b, vox_cdr_type_name(cdr.type));
		vox_copy_text(&b, vox_cdr_is_inbound(cdr.type) ? "inbound"
		                                               : "outbound");
		vox_copy_text(&b, "benchcopy");
		vox_copy_text(&b, cdr_id);
		vox_copy_text(&b, cdr.from);
		vox_copy_text(&b, cdr.to);
		vox_copy_timestamptz(&b, cdr.started_us);
		vox_copy_timestamptz(
		        &b, cdr.started_us + (int64_t)cdr.duration_s * 1000000);
		vox_copy_int4(&b, cdr.duration_s);
		vox_copy_int4(&b, billable);
		vox_copy_int4(&b, cdr.segments);
		vox_copy_uuid(&b, card);
		vox_copy_int8(&b, strtoll(rate, NULL, 10));
		vox_copy_int8(&b, 8500);
		vox_copy_int8(&b, 8500LL * (billable / 60));
		vox_copy_text(&b, "USD");
		vox_copy_timestamptz(&b, now);
	}
	if (vox_copy_end(&b) != 0) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	t0 = now_s();
	res = PQexec(
	        conn,
	        "COPY usage_records (id, account_id, number_id, e164, "
	        "event_type, direction, carrier, carrier_cdr_id, "
	        "from_number, to_number, started_at, ended_at, duration_s, "
	        "billable_s, units, rate_card_id, rate_id, rate_micros, "
	        "cost_micros, currency, rated_at) FROM STDIN (FORMAT binary)");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "COPY: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	for (size_t off = 0; off < b.len; off += 1 << 20) {
		size_t len = b.len - off < (1 << 20) ? b.len - off : 1 << 20;

		if (PQputCopyData(conn, b.data + off, (int)len) != 1)
			return 1;
	}
	PQputCopyEnd(conn, NULL);
	res = PQgetResult(conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "COPY: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	printf("copied %ld in %.2f s (%.0f/s)\n", n, now_s() - t0,
	       (double)n / (now_s() - t0));
	PQfinish(conn);
	vox_copy_free(&b);
	free(nums);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2], argv[3], strtol(argv[4], NULL, 10),
		               argv[5], argv[6]);
	if (argc == 8 && strcmp(argv[1], "copy") == 0)
		return copy(argv[2], strtol(argv[3], NULL, 10), argv[4],
		            argv[5], argv[6], argv[7]);
	fprintf(stderr,
	        "usage: metering_load produce BROKERS TOPIC N CARRIER NUMBERS\n"
	        "       metering_load copy PG_URL N ACCOUNT NUMBERS CARD "
	        "RATE\n");
	return 2;
}
