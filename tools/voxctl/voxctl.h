/* voxctl: shared settings and the command implementations. */
#ifndef VOXCTL_H
#define VOXCTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "vox_auth.h"
#include "vox_pg.h"
#include "vox_uuid.h"

struct voxctl_cfg {
	const char *pg_url;
	const char *migrations_dir;
	long pg_wait_ms;
	const char *encryption_key;      /* "" when not set */
	const char *encryption_old_keys; /* "" when not set */
	const char *kafka_brokers;       /* events tail/replay */
	long kafka_wait_ms;
	/* housekeep (docs/HOUSEKEEPING.md) */
	long hk_batch;
	long hk_lock_timeout_ms, hk_statement_timeout_ms;
	long hk_inbox_days, hk_inbox_long_days;
	long hk_outbox_hours, hk_operations_days, hk_signatures_minutes;
	long usage_retention_months;
	const char *s3_endpoint, *s3_region, *s3_access_key, *s3_secret_key;
	const char *archive_bucket;
};

/* Process exit codes every command returns. */
enum {
	VOXCTL_OK = 0,
	VOXCTL_FAILED = 1,
	VOXCTL_USAGE = 2,
};

/* Each returns the process exit code: 0 ok, 1 failed, 2 bad usage. */
int voxctl_migrate(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_account(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_key(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_usage(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_carrier(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_user(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_mail(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_billing(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_events(const struct voxctl_cfg *cfg, int argc, char **argv);
int voxctl_housekeep(const struct voxctl_cfg *cfg, int argc, char **argv);

/* archive.c: usage_records partitions older than
 * cfg->usage_retention_months, invoiced, archived to the object store and
 * dropped (housekeep's last step). Prints its line; 0 or -1 with err. */
int voxctl_archive_usage(vox_pg_t *pg, const struct voxctl_cfg *cfg,
                         vox_error_t *err);

/* cli.c: what the database subcommands share. */

/* "voxctl COMMAND SUB [ARGS]": subs is the table of COMMAND. */
struct voxctl_sub {
	const char *name;
	const char *usage; /* "voxctl account create --name NAME ..." */
	int (*run)(const struct voxctl_cfg *cfg, int argc, char **argv);
};

/* argv[0] is COMMAND; runs the sub named by argv[1] with argv + 1. */
int voxctl_dispatch(const struct voxctl_sub *subs, size_t nsubs,
                    const struct voxctl_cfg *cfg, int argc, char **argv);

/* Prints "voxctl: <message>" and usage on stderr; returns VOXCTL_USAGE. */
int voxctl_usage_error(const char *usage, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Resets getopt_long for a subcommand's argv (messages are ours). */
void voxctl_getopt_reset(void);

/* Turns what getopt_long returned for a bad option into a usage error. */
int voxctl_bad_option(const char *usage, int opt, char **argv);

/* Valid UTF-8 without control characters, min..max characters (code
 * points, as PostgreSQL's length() counts). why says what is wrong. */
bool voxctl_text_valid(const char *text, size_t min, size_t max, char *why,
                       size_t whylen);

/* "voxctl <thing> revoke ID": revokes one row once (keys, carrier
 * credentials). update_sql ($1 the id) revokes it only if active,
 * RETURNING what print_revoked shows; otherwise revoked_at_sql ($1 the id)
 * tells "already revoked at" (exit 0) from "no such <what>" (exit 1). */
struct voxctl_revocation {
	const char *usage;   /* the subcommand's usage line */
	const char *id_name; /* "ID", "KEY_ID": in usage errors */
	const char *what;    /* "key", "carrier credential" */
	const char *update_sql;
	const char *revoked_at_sql;
	void (*print_revoked)(const char *id, const PGresult *res);
};
int voxctl_revoke(const struct voxctl_cfg *cfg,
                  const struct voxctl_revocation *r, int argc, char **argv);

/* Connected, or NULL after saying why on stderr. Destroy with
 * vox_pg_destroy(). */
vox_pg_t *voxctl_pg_open(const struct voxctl_cfg *cfg);

/* A timestamptz column as "2025-01-31T12:00:00Z" (NULL stays NULL). */
#define VOXCTL_TS(col)                                                         \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Rows as an aligned table (NULL shown as "-") or one JSON array of
 * objects keyed by column name. Returns VOXCTL_OK or VOXCTL_FAILED when
 * stdout could not be written. */
int voxctl_print_rows(const PGresult *res, bool json);
/* The first row as "column: value" lines or one JSON object. */
int voxctl_print_record(const PGresult *res, bool json);

/* key.c: used by `account create` to make the first key in its own
 * transaction. */
struct voxctl_new_key {
	char id[VOX_UUID_STRLEN];
	char secret[VOX_APIKEY_LEN + 1]; /* shown once, then wiped */
};

/* Inserts a new random key of role for account_id (description may be
 * NULL). VOX_ERR_NOT_FOUND "no account <id>" when there is no such
 * account. */
int voxctl_key_insert(vox_pg_t *pg, const char *account_id, vox_role_t role,
                      const char *description, struct voxctl_new_key *key,
                      vox_error_t *err);

/* Prints a new key once (account_id may be NULL: not printed) and wipes
 * the secret from key. Returns VOXCTL_OK, or VOXCTL_FAILED when the key
 * could not be written out (the message then names the key to revoke). */
int voxctl_key_print_new(const char *account_id, struct voxctl_new_key *key,
                         bool json);

#endif
