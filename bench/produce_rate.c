/*
 * produce_rate: librdkafka's raw produce rate on this machine, the ceiling
 * bench/ingress compares the ingress with.
 *
 * Same producer settings as the ingress (common/vox_kafka.c):
 * enable.idempotence=true, acks=all, linger.ms=2 (-l), a copied payload
 * (RD_KAFKA_MSG_F_COPY), a 36-character key per message (the operation id
 * in the ingress), and a poll thread that serves delivery reports. The
 * payload is a CloudEvents JSON shaped like the ingress's canary command
 * (494 bytes; -n pads it to more), formatted per message. Only messages whose
 * delivery report says "acked" count.
 *
 *   produce_rate [-b brokers] [-t topic] [-s seconds] [-n bytes] [-l linger]
 *                [-i max in flight] [-p partitions] [-r rate]
 *
 * The topic (default vox.bench) is created with -p partitions (default 6,
 * like vox.cmd.provisioning) and a 1 h retention if it does not exist.
 * -i bounds the messages awaiting their report (0: only by librdkafka's
 * queue), like the connections of a closed-loop HTTP client do. -r sends
 * at a fixed rate (messages per second) instead of as fast as possible:
 * with it, the broker's CPU per message can be compared with the ingress's
 * at the same rate.
 *
 * Prints one line of key=value pairs: acked, failed, seconds, rate (acked
 * messages per second over the whole run, the final flush included),
 * mb_per_s, payload_bytes, and the time from produce to delivery report
 * (p50_ms, p99_ms, max_ms: with -r, the latency floor a command sees).
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long acked, failed;
/* Acknowledgement latencies (ms), appended by the poll thread only. */
static float *lat_ms;
static size_t nlat, lat_cap;
static atomic_bool stop_poll;
static pthread_mutex_t flight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flight_cond = PTHREAD_COND_INITIALIZER;
static long in_flight;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		double sent = (double)(intptr_t)m->_private / 1e6;

		atomic_fetch_add(&acked, 1);
		if (nlat == lat_cap) {
			float *grown;

			lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
			grown = realloc(lat_ms, lat_cap * sizeof(*lat_ms));
			if (grown == NULL)
				abort();
			lat_ms = grown;
		}
		lat_ms[nlat++] = (float)((now_s() - sent) * 1e3);
	} else if (atomic_fetch_add(&failed, 1) == 0) {
		fprintf(stderr, "produce_rate: delivery failed: %s\n",
		        rd_kafka_err2str(m->err));
	}
	pthread_mutex_lock(&flight_lock);
	in_flight--;
	pthread_cond_signal(&flight_cond);
	pthread_mutex_unlock(&flight_lock);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static double pct(double p)
{
	return nlat ? lat_ms[(size_t)(p / 100.0 * (double)(nlat - 1) + 0.5)]
	            : 0.0;
}

static void *poll_loop(void *arg)
{
	rd_kafka_t *rk = arg;

	while (!atomic_load(&stop_poll))
		rd_kafka_poll(rk, 100);
	return NULL;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "produce_rate: %s=%s: %s\n", name, value,
		        errstr);
		exit(2);
	}
}

/* Creates the topic unless it exists; any other failure stops the run. */
static void ensure_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
	char errstr[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1,
	                                                errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **res;
	size_t nres = 0;

	if (nt == NULL) {
		fprintf(stderr, "produce_rate: topic %s: %s\n", topic, errstr);
		exit(2);
	}
	rd_kafka_NewTopic_set_config(nt, "retention.ms", "3600000");
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 15000);
	if (ev == NULL || rd_kafka_event_error(ev)) {
		fprintf(stderr, "produce_rate: cannot create topic %s: %s\n",
		        topic,
		        ev ? rd_kafka_event_error_string(ev) : "timed out");
		exit(1);
	}
	res = rd_kafka_CreateTopics_result_topics(
	        rd_kafka_event_CreateTopics_result(ev), &nres);
	for (size_t i = 0; i < nres; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
		    e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			fprintf(stderr, "produce_rate: topic %s: %s\n", topic,
			        rd_kafka_topic_result_error_string(res[i]));
			exit(1);
		}
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
}

/* A CloudEvents command shaped like the ingress's canary (494 bytes there),
 * padded with a data field when size asks for more. */
static int format_event(char *buf, size_t cap, size_t size, uint64_t n,
                        char key[37])
{
	char tail[64];
	int len, tlen;

	snprintf(key, 37, "01a20e7e-%04x-7%03x-8%03x-%012" PRIx64,
	         (unsigned)((n >> 48) & 0xffff), (unsigned)((n >> 36) & 0xfff),
	         (unsigned)((n >> 24) & 0xfff), n & (uint64_t)0xffffffffffff);
	len = snprintf(
	        buf, cap,
	        "{\"specversion\":\"1.0\",\"id\":\"%.35s1\",\"source\":"
	        "\"/voxlink/ingress\",\"type\":\"vox.canary.requested\","
	        "\"time\":\"2026-11-24T16:58:18.764426Z\",\"subject\":"
	        "\"operations/%s\",\"datacontenttype\":\"application/json\","
	        "\"accountid\":\"cf382b3c-ac70-4378-ab0f-ecb682b0c7a5\","
	        "\"traceparent\":\"00-71df4ed4524320e63e29b08ce34e1293-"
	        "836a6270e5bab200-01\",\"data\":{\"operation_id\":\"%s\"",
	        key, key, key);
	if (len < 0 || (size_t)len + 64 >= cap)
		return -1;
	tlen = snprintf(tail, sizeof(tail), "},\"requestid\":\"%.35s2\"}", key);
	if ((size_t)len + 62 < size) { /* ,"pad":"....." */
		size_t fill = size - (size_t)len - 62;

		if ((size_t)len + 9 + fill + (size_t)tlen >= cap)
			return -1;
		memcpy(buf + len, ",\"pad\":\"", 8);
		len += 8;
		memset(buf + len, '.', fill);
		len += (int)fill;
		buf[len++] = '"';
	}
	memcpy(buf + len, tail, (size_t)tlen + 1); /* room checked above */
	return len + tlen;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: produce_rate [-b brokers] [-t topic] [-s seconds] "
	        "[-n bytes] [-l linger_ms] [-i max_in_flight] "
	        "[-p partitions] [-r rate]\n");
	exit(2);
}

/* A whole decimal number, or usage(). */
static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0')
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *brokers = getenv("VOX_KAFKA_BROKERS");
	const char *topic = "vox.bench", *linger = "2";
	double seconds = 10;
	long size = 494, max_flight = 0;
	double rate = 0; /* messages per second; 0: as fast as possible */
	int partitions = 6, opt;
	char errstr[512], buf[4096], key[37];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	pthread_t poller;
	uint64_t n = 0;
	long queue_full = 0;
	double t0, t_end, elapsed;

	if (brokers == NULL || *brokers == '\0')
		brokers = "127.0.0.1:29092";
	while ((opt = getopt(argc, argv, "b:t:s:n:l:i:p:r:h")) != -1) {
		switch (opt) {
		case 'b':
			brokers = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			size = num(optarg);
			break;
		case 'l':
			linger = optarg;
			break;
		case 'i':
			max_flight = num(optarg);
			break;
		case 'p':
			partitions = (int)num(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (seconds <= 0 || size < 0 || size > (long)sizeof(buf) - 1 ||
	    partitions < 1 || max_flight < 0 || rate < 0)
		usage();

	conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "client.id", "vox-bench-produce-rate");
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "message.timeout.ms", "10000");
	set(conf, "linger.ms", linger);
	set(conf, "socket.keepalive.enable", "true");
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "produce_rate: %s\n", errstr);
		return 1;
	}
	ensure_topic(rk, topic, partitions);
	if (pthread_create(&poller, NULL, poll_loop, rk) != 0)
		return 1;

	/* Warm-up: metadata, producer id, connections. */
	int len = format_event(buf, sizeof(buf), (size_t)size, n++, key);
	pthread_mutex_lock(&flight_lock);
	in_flight++;
	pthread_mutex_unlock(&flight_lock);
	if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
	                      RD_KAFKA_V_KEY(key, 36),
	                      RD_KAFKA_V_VALUE(buf, (size_t)len),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                      RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_flush(rk, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    atomic_load(&acked) != 1) {
		fprintf(stderr,
		        "produce_rate: warm-up message not acked "
		        "(is Kafka up on %s?)\n",
		        brokers);
		return 1;
	}
	atomic_store(&acked, 0);
	nlat = 0;

	t0 = now_s();
	t_end = t0 + seconds;
	for (;;) {
		rd_kafka_resp_err_t e;

		if (rate > 0) { /* the n-th message is due at t0 + n / rate */
			double due = t0 + (double)(n - 1) / rate, t = now_s();

			if (t >= t_end)
				break;
			if (due > t)
				usleep((useconds_t)((due - t) * 1e6));
		} else if ((n & 255) == 0 && now_s() >= t_end) {
			break;
		}
		if (max_flight > 0) {
			pthread_mutex_lock(&flight_lock);
			while (in_flight >= max_flight)
				pthread_cond_wait(&flight_cond, &flight_lock);
			in_flight++;
			pthread_mutex_unlock(&flight_lock);
		} else {
			pthread_mutex_lock(&flight_lock);
			in_flight++;
			pthread_mutex_unlock(&flight_lock);
		}
		len = format_event(buf, sizeof(buf), (size_t)size, n++, key);
		for (;;) {
			e = rd_kafka_producev(
			        rk, RD_KAFKA_V_TOPIC(topic),
			        RD_KAFKA_V_KEY(key, 36),
			        RD_KAFKA_V_VALUE(buf, (size_t)len),
			        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			        RD_KAFKA_V_OPAQUE(
			                (void *)(intptr_t)(now_s() * 1e6)),
			        RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			queue_full++;
			usleep(500); /* the poll thread drains reports */
		}
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "produce_rate: produce: %s\n",
			        rd_kafka_err2str(e));
			return 1;
		}
	}
	rd_kafka_flush(rk, 30000);
	elapsed = now_s() - t0;
	atomic_store(&stop_poll, true);
	pthread_join(poller, NULL);

	qsort(lat_ms, nlat, sizeof(*lat_ms), cmp_float);
	printf("acked=%ld failed=%ld seconds=%.2f rate=%.0f mb_per_s=%.1f "
	       "payload_bytes=%d queue_full_waits=%ld in_flight_max=%ld "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       atomic_load(&acked), atomic_load(&failed), elapsed,
	       (double)atomic_load(&acked) / elapsed,
	       (double)atomic_load(&acked) * len / elapsed / 1e6, len,
	       queue_full, max_flight, pct(50), pct(99),
	       nlat ? (double)lat_ms[nlat - 1] : 0.0);
	rd_kafka_destroy(rk);
	return atomic_load(&failed) > 0 ? 1 : 0;
}
