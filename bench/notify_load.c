/*
 * bench/notify_load: the set-up and the event producer of
 * bench/notifications.
 *
 *   notify_load endpoints ACCOUNT_ID N URL_PREFIX SECRET
 *       Prints N INSERTs of webhook_endpoints rows for psql: url
 *       URL_PREFIX<i> (i = 0..N-1), events {*}, the whsec_ SECRET sealed as
 *       the ingress seals it (vox_crypto with VOX_ENCRYPTION_KEY, bound to
 *       the row by the associated data "webhook_endpoints/<id>").
 *   notify_load produce BROKERS TOPIC RATE SECONDS ACCOUNT_ID NUMBERS_FILE
 *       number.activated CloudEvents (vox_event_build: the envelope the
 *       provisioning worker emits; subject and key the E.164) at RATE per
 *       second for SECONDS, round robin over the numbers of the file (one
 *       "number id|E.164" a line, psql -At's output). data: phone_number,
 *       status, number_id, account_id and sent_at_us (CLOCK_REALTIME µs when
 *       the event was made: the receiver's latency is counted from it).
 *       Each event is due at start + i/RATE and is sent then, whatever the
 *       broker's pace (open loop). Prints one line:
 *       PRODUCE sent= acked= failed= seconds= rate= late_max_ms=
 */
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_crypto.h"
#include "vox_event.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define NUMBER_MAX 24

struct number {
	char id[VOX_UUID_STRLEN];
	char e164[NUMBER_MAX];
};

static long acked, failed;

/* ---------------------------------------------------------------- endpoints */

static int endpoints(const char *account, long n, const char *url_prefix,
                     const char *secret)
{
	const char *key = getenv("VOX_ENCRYPTION_KEY");
	vox_crypto_keyring_t *ring;
	vox_error_t err;
	int rc = 0;

	if (key == NULL || *key == '\0') {
		fprintf(stderr, "notify_load: VOX_ENCRYPTION_KEY is not set\n");
		return 2;
	}
	ring = vox_crypto_keyring_new(key, getenv("VOX_ENCRYPTION_OLD_KEYS"),
	                              &err);
	if (ring == NULL) {
		fprintf(stderr, "notify_load: %s\n", err.message);
		return 2;
	}
	for (long i = 0; i < n && rc == 0; i++) {
		char id[VOX_UUID_STRLEN], aad[64], *hex;
		unsigned char *sealed = NULL;
		size_t sealed_len = 0;

		vox_uuid7(id);
		snprintf(aad, sizeof(aad), "webhook_endpoints/%s", id);
		rc = vox_crypto_seal(ring, secret, strlen(secret), aad,
		                     strlen(aad), &sealed, &sealed_len, &err);
		if (rc != 0) {
			fprintf(stderr, "notify_load: %s\n", err.message);
			break;
		}
		hex = malloc(2 * sealed_len + 1);
		if (hex == NULL) {
			free(sealed);
			rc = 1;
			break;
		}
		vox_hex_encode(sealed, sealed_len, hex);
		printf("INSERT INTO webhook_endpoints (id, account_id, url, "
		       "secret_enc, events, description) VALUES ('%s', '%s', "
		       "'%s%ld', decode('%s', 'hex'), '{*}', 'bench');\n",
		       id, account, url_prefix, i, hex);
		free(hex);
		free(sealed);
	}
	vox_crypto_keyring_destroy(ring);
	return rc;
}

/* ---------------------------------------------------------------- produce */

static long read_pairs(const char *path, struct number **out)
{
	FILE *f = fopen(path, "r");
	char line[128];
	long n = 0, cap = 256;
	struct number *nums = malloc((size_t)cap * sizeof(*nums));

	if (f == NULL || nums == NULL) {
		fprintf(stderr, "notify_load: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		char *bar = strchr(line, '|');

		line[strcspn(line, "\r\n")] = '\0';
		if (bar == NULL || bar - line != VOX_UUID_STRLEN - 1 ||
		    strlen(bar + 1) >= NUMBER_MAX)
			continue;
		if (n == cap) {
			cap *= 2;
			nums = realloc(nums, (size_t)cap * sizeof(*nums));
			if (nums == NULL)
				exit(1);
		}
		memcpy(nums[n].id, line, VOX_UUID_STRLEN - 1);
		nums[n].id[VOX_UUID_STRLEN - 1] = '\0';
		snprintf(nums[n].e164, NUMBER_MAX, "%s", bar + 1);
		n++;
	}
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "notify_load: %s: no \"id|e164\" lines\n",
		        path);
		exit(1);
	}
	*out = nums;
	return n;
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		acked++;
	else if (failed++ == 0)
		fprintf(stderr, "notify_load: delivery failed: %s\n",
		        rd_kafka_err2str(m->err));
}

static rd_kafka_t *producer_new(const char *brokers)
{
	static const char *const settings[][2] = {
	        {"enable.idempotence", "true"},
	        {"acks", "all"},
	        {"linger.ms", "1"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto failed;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1],
		                      errstr,
		                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto failed;
	rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk != NULL)
		return rk; /* conf now owned by rk */
	conf = NULL;
failed:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	fprintf(stderr, "notify_load: kafka: %s\n", errstr);
	return NULL;
}

/* Sleeps until the monotonic time due (seconds). */
static void sleep_until(double due)
{
	struct timespec ts = {
	        .tv_sec = (time_t)due,
	        .tv_nsec = (long)((due - (double)(time_t)due) * 1e9)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int produce(const char *brokers, const char *topic, long rate,
                   double seconds, const char *account, const char *path)
{
	struct number *nums;
	long nn = read_pairs(path, &nums), total = (long)(rate * seconds);
	rd_kafka_t *rk = producer_new(brokers);
	double t0, late_max = 0;
	long sent = 0;

	if (rk == NULL)
		return 1;
	t0 = vox_mono_seconds();
	for (long i = 0; i < total; i++) {
		const struct number *num = &nums[i % nn];
		double due = t0 + (double)i / (double)rate, late;
		rd_kafka_resp_err_t kerr;
		json_t *ev;
		char *text;

		if (vox_mono_seconds() < due)
			sleep_until(due);
		late = vox_mono_seconds() - due;
		if (late > late_max)
			late_max = late;
		ev = vox_event_build(
		        "number.activated", num->e164, account, NULL,
		        json_pack("{s:s, s:s, s:s, s:s, s:I}", "phone_number",
		                  num->e164, "status", "active", "number_id",
		                  num->id, "account_id", account, "sent_at_us",
		                  (json_int_t)vox_now_us()));
		text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
		json_decref(ev);
		if (text == NULL) {
			fprintf(stderr, "notify_load: out of memory\n");
			return 1;
		}
		while ((kerr = rd_kafka_producev(
		                rk, RD_KAFKA_V_TOPIC(topic),
		                RD_KAFKA_V_KEY(num->e164, strlen(num->e164)),
		                RD_KAFKA_V_VALUE(text, strlen(text)),
		                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
		                RD_KAFKA_V_END)) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "notify_load: produce: %s\n",
			        rd_kafka_err2str(kerr));
			free(text);
			break;
		}
		/* text now owned by rk (F_FREE) */
		sent++;
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 60000);
	printf("PRODUCE sent=%ld acked=%ld failed=%ld seconds=%.3f rate=%.0f "
	       "late_max_ms=%.1f\n",
	       sent, acked, failed, vox_mono_seconds() - t0,
	       (double)acked / (vox_mono_seconds() - t0), late_max * 1e3);
	rd_kafka_destroy(rk);
	free(nums);
	return failed == 0 && acked == sent ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "endpoints") == 0) {
		long n = strtol(argv[3], NULL, 10);

		if (n < 1 || n > 1000 || !vox_uuid_valid(argv[2]) ||
		    strlen(argv[4]) > 1000 || strchr(argv[4], '\'') != NULL ||
		    strchr(argv[2], '\'') != NULL)
			goto usage;
		return endpoints(argv[2], n, argv[4], argv[5]);
	}
	if (argc == 8 && strcmp(argv[1], "produce") == 0) {
		long rate = strtol(argv[4], NULL, 10);
		double seconds = strtod(argv[5], NULL);

		if (rate < 1 || rate > 1000000 || seconds <= 0 ||
		    seconds > 3600 || !vox_uuid_valid(argv[6]))
			goto usage;
		return produce(argv[2], argv[3], rate, seconds, argv[6],
		               argv[7]);
	}
usage:
	fprintf(stderr,
	        "usage: notify_load endpoints ACCOUNT_ID N URL_PREFIX SECRET\n"
	        "       notify_load produce BROKERS TOPIC RATE SECONDS "
	        "ACCOUNT_ID NUMBERS_FILE\n");
	return 2;
}
