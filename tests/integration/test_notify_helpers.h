/*
 * The notifications suite's world: its own SMTP sink (Maildir in a temp
 * directory), SMS sandbox and webhook receiver (on 127.0.0.77, admitted by
 * the worker's allowlist), a topic of its own that the worker reads, and
 * the worker itself (test-bin build), so that faults and scripts touch
 * nobody else's tests.
 */
#ifndef TEST_NOTIFY_HELPERS_H
#define TEST_NOTIFY_HELPERS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "vox_pg.h"

#define TN_ENCRYPTION_KEY                                                      \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct tn_world {
	vox_pg_t *pg;
	char topic[160], group[200], maildir[256];
	int sink_port, sms_port, recv_port;
	pid_t sink, sms, recv, worker;
	int worker_starts;
};

extern struct tn_world tn;

/* Starts the sandboxes and the receiver (once per process), a fresh topic
 * and a worker with extra "NAME=value" settings (NULL-terminated, may be
 * NULL). */
void tn_start(const char *const *extra);
/* Stops the worker (SIGTERM) and the helpers. */
void tn_stop(void);
/* Starts the worker again on the same topic and group. */
void tn_worker_spawn(const char *const *extra);

/* An account with language lang, one owner user (email, phone may be
 * NULL) and channel order channels ("{webhook}", NULL: the default). */
void tn_account(const char *lang, const char *email, const char *phone,
                const char *channels, char account[40]);
/* An endpoint row as the API would make it (secret sealed under
 * TN_ENCRYPTION_KEY); url is http://127.0.0.77:<port><path> unless it
 * starts with "http". secret may be NULL. */
void tn_endpoint(const char *account, const char *path, char id[40],
                 char secret[100]);
/* Seals secret for "<table>/<id>" as hex for decode($n, 'hex'). */
char *tn_seal(const char *table, const char *id, const char *secret);

/* Publishes a CloudEvent (data stolen) to the suite's topic; returns its
 * id in event_id (may be NULL). */
void tn_publish(const char *type, const char *subject, const char *account,
                json_t *data, char event_id[40]);

/* Publishes the last event again, same id (a redelivery). */
void tn_republish_last(void);

/* The webhook receiver's admin API (POST with body, or GET). */
json_t *tn_recv(const char *method, const char *path, const char *body);
/* The requests to path, waiting for at least min of them. */
json_t *tn_received(const char *path, int min, int timeout_ms);
/* HTTP to the SMS sandbox (JSON answer, or NULL). */
json_t *tn_sms(const char *method, const char *path, const char *body);

/* The text of the first message in the sink's Maildir for rcpt (malloc'd,
 * quoted-printable undone),
 * waiting up to timeout_ms; NULL if none came. */
char *tn_mail(const char *rcpt, int timeout_ms);

/* Polls sql (first column of the first row, one parameter) until it
 * equals want; false after timeout_ms. */
bool tn_wait_sql(const char *sql, const char *param, const char *want,
                 int timeout_ms);
/* First column of the first row as a malloc'd string ("" if no row). */
char *tn_sql(const char *sql, const char *param);

#endif
