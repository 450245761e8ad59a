/*
 * bench/invoicing's Kafka side (bench/README.md):
 * - topics BROKERS TOPIC PARTITIONS: creates TOPIC and TOPIC.dlq;
 * - delete BROKERS TOPIC: deletes them;
 * - produce BROKERS TOPIC FILE: one vox.invoice.generate_requested per
 *   line "account<TAB>start<TAB>end" of FILE (no operation, as the
 *   scheduler's), key = the account, every delivery acknowledged before
 *   it exits; prints the count and the time it took.
 */
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_event.h"
#include "vox_kafka.h"
#include "vox_time.h"

static atomic_long acked, failed;

static void on_delivery(void *opaque, const vox_error_t *err, int32_t partition,
                        int64_t offset)
{
	(void)opaque, (void)partition, (void)offset;
	if (err != NULL)
		atomic_fetch_add(&failed, 1);
	else
		atomic_fetch_add(&acked, 1);
}

static int admin(const char *brokers, const char *topic, int partitions,
                 bool create)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char dlq[400], errstr[256];
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	rd_kafka_t *rk;
	int rc = 0;

	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
	                  sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "invoicing_load: %s\n", errstr);
		return 1;
	}
	q = rd_kafka_queue_new(rk);
	if (create) {
		rd_kafka_NewTopic_t *t[2] = {
		        rd_kafka_NewTopic_new(topic, partitions, 1, errstr,
		                              sizeof(errstr)),
		        rd_kafka_NewTopic_new(dlq, 1, 1, errstr,
		                              sizeof(errstr))};

		rd_kafka_CreateTopics(rk, t, 2, NULL, q);
		rd_kafka_NewTopic_destroy_array(t, 2);
	} else {
		rd_kafka_DeleteTopic_t *t[2] = {rd_kafka_DeleteTopic_new(topic),
		                                rd_kafka_DeleteTopic_new(dlq)};

		rd_kafka_DeleteTopics(rk, t, 2, NULL, q);
		rd_kafka_DeleteTopic_destroy_array(t, 2);
	}
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev == NULL || rd_kafka_event_error(ev) != 0) {
		fprintf(stderr, "invoicing_load: topics: %s\n",
		        ev ? rd_kafka_event_error_string(ev) : "timed out");
		rc = 1;
	}
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

static int produce(const char *brokers, const char *topic, const char *file)
{
	vox_producer_conf_t conf = {.brokers = brokers,
	                            .client_id = "vox-bench-invoicing",
	                            .linger_ms = 5};
	char line[256];
	long sent = 0;
	vox_error_t err;
	vox_producer_t *p;
	FILE *in = fopen(file, "r");
	int64_t t0 = vox_mono_us();

	if (in == NULL) {
		perror(file);
		return 1;
	}
	p = vox_producer_new(&conf, &err);
	if (p == NULL) {
		fprintf(stderr, "invoicing_load: %s\n", err.message);
		fclose(in);
		return 1;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		char *account = line, *start, *end, *text;
		json_t *ev;

		/* account<TAB>start<TAB>end */
		start = strchr(account, '\t');
		end = start ? strchr(start + 1, '\t') : NULL;
		if (end == NULL)
			continue;
		*start++ = '\0';
		*end++ = '\0';
		end[strcspn(end, "\r\n")] = '\0';
		ev = vox_event_build("vox.invoice.generate_requested", account,
		                     account, NULL,
		                     json_pack("{s:s, s:s, s:s}", "account_id",
		                               account, "period_start", start,
		                               "period_end", end));
		text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
		json_decref(ev);
		if (text == NULL ||
		    vox_producer_send(p, topic, account, text, strlen(text),
		                      NULL, 0, on_delivery, NULL, &err) != 0) {
			fprintf(stderr, "invoicing_load: send: %s\n",
			        text ? err.message : "out of memory");
			free(text);
			break;
		}
		free(text);
		sent++;
	}
	fclose(in);
	vox_producer_destroy(p, 60000);
	printf("produced %ld commands (%ld acknowledged, %ld failed) in %.3f "
	       "s\n",
	       sent, atomic_load(&acked), atomic_load(&failed),
	       (double)(vox_mono_us() - t0) / 1e6);
	return atomic_load(&acked) == sent ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "topics") == 0)
		return admin(argv[2], argv[3], (int)strtol(argv[4], NULL, 10),
		             true);
	if (argc == 4 && strcmp(argv[1], "delete") == 0)
		return admin(argv[2], argv[3], 0, false);
	if (argc == 5 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2], argv[3], argv[4]);
	fprintf(stderr,
	        "usage: invoicing_load topics BROKERS TOPIC PARTITIONS "
	        "| delete BROKERS TOPIC | produce BROKERS TOPIC FILE\n");
	return 2;
}
