/*
 * bench/export_load: makes the topic bench/export measures. Creates
 * <topic> with <partitions> partitions and produces <n> CloudEvents
 * usage.recorded events (about 400 bytes, 2,000 accounts as keys) whose
 * times run through the 24 hours of 2026-11-02 in order, as a day of
 * traffic would. Prints "produced <n> in <s> s".
 *   export_load <brokers> <topic> <partitions> <n>
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_time.h"

static int topic_create(rd_kafka_t *rk, const char *topic, int partitions)
{
	char errstr[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1,
	                                                errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	const rd_kafka_topic_result_t **res;
	rd_kafka_event_t *ev;
	size_t n = 0;
	int rc = -1;

	if (nt == NULL) {
		fprintf(stderr, "export_load: %s\n", errstr);
		rd_kafka_queue_destroy(q);
		return -1;
	}
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev != NULL && rd_kafka_event_CreateTopics_result(ev) != NULL) {
		res = rd_kafka_CreateTopics_result_topics(
		        rd_kafka_event_CreateTopics_result(ev), &n);
		if (n == 1 && rd_kafka_topic_result_error(res[0]) == 0)
			rc = 0;
		else if (n == 1)
			fprintf(stderr, "export_load: create %s: %s\n", topic,
			        rd_kafka_topic_result_error_string(res[0]));
	}
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	return rc;
}

static char *event_text(long i, long n)
{
	char id[64], time[40], acct[64], number[32];
	int64_t day_us = INT64_C(1793577600000000); /* 2026-11-02T00:00Z */
	int64_t at = day_us + (int64_t)((double)i / (double)n * 86400e6);
	json_t *ev;
	char *text;

	snprintf(id, sizeof(id), "0199a000-0000-7000-8000-%012ld", i);
	snprintf(acct, sizeof(acct), "0199a000-0000-7000-9000-%012ld",
	         i % 2000);
	snprintf(number, sizeof(number), "+1628%07ld", 1000000 + i % 2000);
	vox_rfc3339_format(at, time, sizeof(time));
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, "
	               "s:s, s:s, s:i, s:I, s:s}}",
	               "specversion", "1.0", "id", id, "source",
	               "/workers/metering", "type", "usage.recorded", "time",
	               time, "subject", number, "accountid", acct, "sequence",
	               (json_int_t)(i / 2000 + 1), "data", "account_id", acct,
	               "number", number, "event_type", "call.outbound",
	               "duration_s", (int)(i % 600), "cost_micros",
	               (json_int_t)(i % 600) * 1200, "currency", "USD");
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	return text;
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	char errstr[256];
	long n;
	int partitions;
	double t0;

	if (argc != 5) {
		fprintf(stderr, "usage: export_load <brokers> <topic> "
		                "<partitions> <n>\n");
		return 2;
	}
	partitions = (int)strtol(argv[3], NULL, 10);
	n = strtol(argv[4], NULL, 10);
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "linger.ms", "20", errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "compression.type", "lz4", errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "export_load: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "export_load: %s\n", errstr);
		return 1;
	}
	if (topic_create(rk, argv[2], partitions) != 0) {
		rd_kafka_destroy(rk);
		return 1;
	}
	t0 = vox_mono_seconds();
	for (long i = 0; i < n; i++) {
		char *text = event_text(i, n), key[48];
		rd_kafka_resp_err_t kerr;

		snprintf(key, sizeof(key), "acct-%ld", i % 2000);
		do {
			kerr = rd_kafka_producev(
			        rk, RD_KAFKA_V_TOPIC(argv[2]),
			        RD_KAFKA_V_KEY(key, strlen(key)),
			        RD_KAFKA_V_VALUE(text, strlen(text)),
			        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			        RD_KAFKA_V_END);
			if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 20);
		} while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		free(text);
		if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "export_load: produce: %s\n",
			        rd_kafka_err2str(kerr));
			rd_kafka_destroy(rk);
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "export_load: flush timed out\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	printf("produced %ld in %.1f s\n", n, vox_mono_seconds() - t0);
	rd_kafka_destroy(rk);
	return 0;
}
