/*
 * The porting suites' world (test_porting_e2e.c, test_porting_crash.c):
 * the real ingress on a port of its own, the porting worker (release or
 * test-bin build) on the real vox.cmd.porting from its end, the metering
 * worker and optionally the notifications worker (test_notify_helpers'
 * SMTP sink) on the real topics, a carrier credential of the run's own
 * whose key and signing secret the shared carrier sandbox is given with
 * the ingress's URL as its porting webhook target
 * (docs/CARRIER_SANDBOX.md "Porting").
 */
#ifndef TEST_PORTING_HELPERS_H
#define TEST_PORTING_HELPERS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define TP_ENCRYPTION_KEY                                                      \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct tp_world {
	int port;
	pid_t ingress, worker, metering;
	char account[40], key[64], auth[100], email[80];
	char carrier[40], ckey[96], csecret[64];
	char group[200], tag[16];
	char extra[120]; /* one more worker setting, or "" */
	bool test_bin, notify;
	int worker_starts;
};

/* Starts everything; notify: the notifications worker too (mail to
 * w->email); test_bin: the porting worker of $(BUILD)/test-bin (fault
 * points), with VOX_FAULT_POINT=fault_points unless NULL. time_scale: the
 * sandbox's porting time compression. */
void tp_start(struct tp_world *w, bool notify, bool test_bin,
              const char *fault_points, long time_scale);
/* The porting worker again (same group), with fault_points (or none). */
void tp_worker_spawn(struct tp_world *w, const char *fault_points);
/* Waits for the worker to die (a fault point) up to timeout_ms; true when
 * it did (abort). */
bool tp_worker_died(struct tp_world *w, int timeout_ms);
void tp_stop(struct tp_world *w);
/* For .fini: stops what the running test started and did not stop (a
 * failed assertion skips tp_stop; the processes must not outlive it). */
void tp_fini(void);

/* The API under the account's key; asserts the status; the answer's JSON
 * (a new reference). body may be NULL. */
json_t *tp_api(struct tp_world *w, const char *method, const char *path,
               const char *body, int want);
/* A document of kind (loa, invoice) uploaded through POST /v1/documents
 * (multipart, a small PDF); its id into id. */
void tp_document(struct tp_world *w, const char *kind, char id[40]);
/* A fresh valid US number (+1628...) whose last digit is last. */
void tp_number(char out[20], int last);
/* The first FOC date allowed-foc-windows offers for the order. */
void tp_first_foc(struct tp_world *w, const char *order_id, char date[11]);
/* GETs the order until its status is status (or timeout_ms); the last
 * answer (asserted to have that status). */
json_t *tp_wait_status(struct tp_world *w, const char *order_id,
                       const char *status, int timeout_ms);
/* The sandbox's porting orders whose customer_reference is ref. */
int tp_carrier_orders(const char *ref);
/* Restarts the porting worker with one more "NAME=value" setting. */
void tp_worker_env(struct tp_world *w, const char *setting);
/* Where the sandbox sends its porting webhooks from now on. */
void tp_webhook_url(const char *url);
/* POSTs a carrier porting webhook body to the ingress, signed with the
 * world's carrier credential; returns the HTTP status. */
int tp_carrier_event(struct tp_world *w, const char *body);
/* Polls sql (one text parameter; first column of the first row) until it
 * equals want; false after timeout_ms. *last (may be NULL) gets the last
 * value seen (malloc'd). */
bool tp_wait_sql(const char *sql, const char *param, const char *want,
                 int timeout_ms, char **last);
/* The sandbox's fault rules: POST a rule (JSON, docs/CARRIER_SANDBOX.md
 * "Faults"), or DELETE them all (body NULL). */
void tp_sandbox_faults(const char *method, const char *body);
/* Sets the sandbox's porting time scale. */
void tp_time_scale(long scale);

#endif
