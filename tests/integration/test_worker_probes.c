/*
 * What Kubernetes and Prometheus read from a worker (deploy/kubernetes,
 * deploy/prometheus): /readyz answers 503 while the worker cannot consume
 * yet (here: PostgreSQL unreachable) although /healthz answers 200, and 200
 * once it consumes; vox_consumer_lag_seconds shows how old the messages it
 * polls are, and falls back to 0 once nothing waits.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_time.h"
#include "vox_uuid.h"

TestSuite(worker_probes, .timeout = 120);

struct probe {
	int port;
	const char *path;
	int status;
};

static bool answers(void *arg)
{
	struct probe *p = arg;

	return t_http("GET", p->port, p->path, NULL, NULL, NULL) == p->status;
}

Test(worker_probes, readyz_is_503_until_the_worker_can_consume)
{
	char port_env[64];
	int port = t_free_port();
	struct probe health = {port, "/healthz", 200};
	struct probe ready = {port, "/readyz", 503};

	snprintf(port_env, sizeof(port_env), "VOX_WORKER_METRICS_PORT=%d",
	         port);
	/* nothing listens on port 1: the worker keeps trying to connect */
	const char *const env[] = {
	        port_env, "VOX_PG_URL=postgresql://vox@127.0.0.1:1/voxlink",
	        "VOX_WORKER_RELAY=false", NULL};
	pid_t worker = t_spawn("provisioning", "probes-nopg.log", env);

	cr_assert(t_wait_for(answers, &health, 20000), "no /healthz 200");
	cr_expect(answers(&ready), "/readyz not 503 without PostgreSQL");
	t_stop(worker, SIGKILL, 5000);
}

/* The value of name{consumer="group"} in the worker's /metrics, or -1. */
static double metric(int port, const char *name, const char *group)
{
	char *text = NULL, series[256], *at;
	double value = -1;

	if (t_http("GET", port, "/metrics", NULL, NULL, &text) == 200) {
		snprintf(series, sizeof(series), "%s{consumer=\"%s\"} ", name,
		         group);
		at = strstr(text, series);
		if (at != NULL)
			value = strtod(at + strlen(series), NULL);
	}
	free(text);
	return value;
}

struct lag_probe {
	int port;
	const char *group;
	double at_least, at_most;
};

static bool lag_within(void *arg)
{
	struct lag_probe *p = arg;
	double lag = metric(p->port, "vox_consumer_lag_seconds", p->group);

	return lag >= p->at_least && lag <= p->at_most;
}

Test(worker_probes, readyz_200_while_consuming_and_lag_in_seconds)
{
	char topic[160], group[96], id[VOX_UUID_STRLEN], errstr[256];
	char port_env[64], topics_env[200], group_env[120];
	int port = t_free_port();
	struct probe ready = {port, "/readyz", 200};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	/* two minutes old: the lag the gauge must show */
	int64_t old_ms = vox_now_us() / 1000 - 120000;

	vox_uuid7(id);
	t_topic_create("vox.test.probes", 1, topic, sizeof(topic));
	snprintf(group, sizeof(group), "vox.test.probes.%s", id);
	snprintf(port_env, sizeof(port_env), "VOX_WORKER_METRICS_PORT=%d",
	         port);
	snprintf(topics_env, sizeof(topics_env), "VOX_WORKER_TOPICS=%s", topic);
	snprintf(group_env, sizeof(group_env), "VOX_WORKER_GROUP=%s", group);
	const char *const env[] = {port_env,
	                           topics_env,
	                           group_env,
	                           "VOX_WORKER_RELAY=false",
	                           "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                           NULL};
	pid_t worker = t_spawn("provisioning", "probes-lag.log", env);

	cr_assert(t_wait_for(answers, &ready, 30000), "no /readyz 200");

	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	/* Messages no handler knows: dead-lettered, which is enough to be
	 * polled. Their CreateTime is two minutes ago. */
	for (int i = 0; i < 50; i++) {
		char value[128];

		snprintf(value, sizeof(value),
		         "{\"specversion\":\"1.0\",\"type\":\"test.probe\","
		         "\"id\":\"%s-%d\"}",
		         id, i);
		cr_assert_eq(rd_kafka_producev(
		                     rk, RD_KAFKA_V_TOPIC(topic),
		                     RD_KAFKA_V_KEY("k", 1),
		                     RD_KAFKA_V_VALUE(value, strlen(value)),
		                     RD_KAFKA_V_TIMESTAMP(old_ms),
		                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                     RD_KAFKA_V_END),
		             RD_KAFKA_RESP_ERR_NO_ERROR);
	}
	cr_assert_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(rk);

	/* The gauge holds the batch's age from its poll to the next poll
	 * (>= 200 ms): /metrics is read every few ms meanwhile. */
	struct lag_probe old = {port, group, 110.0, 600.0};
	struct lag_probe none = {port, group, 0.0, 0.0};

	cr_expect(t_wait_for(lag_within, &old, 20000),
	          "vox_consumer_lag_seconds never showed the two minutes");
	cr_expect(t_wait_for(lag_within, &none, 20000),
	          "vox_consumer_lag_seconds not back to 0 once caught up");
	cr_expect_eq(t_stop(worker, SIGTERM, 20000), 0);
}
