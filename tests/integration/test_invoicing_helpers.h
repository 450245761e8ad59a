/*
 * The invoicing worker under test: its own topic and consumer group (one
 * or two processes, each its own group, so both get every command), and
 * fixtures written as SQL (accounts with billing settings, ownership
 * history, rated usage) for the worker-level tests.
 */
#ifndef TEST_INVOICING_HELPERS_H
#define TEST_INVOICING_HELPERS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "vox_pg.h"

struct ti {
	char topic[160], group[2][200];
	pid_t worker[2];
	int nworkers;
	vox_pg_t *pg;
};

/* Starts nworkers invoicing workers (1 or 2) on a new topic; extra env
 * ("NAME=value", NULL terminated) may be NULL. */
void ti_start(struct ti *w, int nworkers, const char *const *extra);
void ti_stop(struct ti *w);

/* A command (data stolen) to the worker's topic, key = account. */
void ti_send(struct ti *w, const char *type, const char *account, json_t *data);
/* Raw bytes to the topic. */
void ti_send_raw(struct ti *w, const char *key, const char *payload);

/* A generate command with a new operation; op receives its id. */
void ti_generate(struct ti *w, const char *account, const char *start,
                 const char *end, char op[40]);
/* A command on an invoice (type vox.invoice.*_requested or
 * vox.credit_note.create_requested) with a new operation; extra (stolen,
 * may be NULL) is merged into data. */
void ti_invoice_cmd(struct ti *w, const char *type, const char *account,
                    const char *invoice, json_t *extra, char op[40]);

/* Waits for the operation to finish; returns its row as
 * {status, error_code, result} (caller decrefs). */
json_t *ti_op_wait(struct ti *w, const char *op);

/* The operation completed: its result's invoice_id into invoice. */
void ti_op_invoice(struct ti *w, const char *op, char invoice[40]);
/* The operation failed with code. */
void ti_op_failed(struct ti *w, const char *op, const char *code);

/* SQL helpers: run, or first column of the first row (malloc'd, NULL
 * when no row). */
void ti_sql(struct ti *w, const char *sql, int n, const char *const *params);
char *ti_str(struct ti *w, const char *sql, int n, const char *const *params);
long long ti_num(struct ti *w, const char *sql, int n,
                 const char *const *params);

/* A new account in time zone tz with billing settings. */
void ti_account(struct ti *w, const char *tz, int anchor_day, int tax_ppm,
                int grace_days, char account[40]);
/* An ownership interval [start, end) (end NULL: open). */
void ti_own(struct ti *w, const char *account, const char *e164,
            const char *start, const char *end, const char *source,
            long long rate, long long setup);
/* n rated records of type for account at start + i seconds, each costing
 * cost micro-units (60 billable seconds, 1 unit). */
void ti_usage(struct ti *w, const char *account, const char *type,
              const char *start, int n, long long cost);

#endif
