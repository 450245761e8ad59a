/*
 * voxctl: the operator's command line.
 *   voxctl migrate     apply migrations/NNNN_name.sql not yet applied
 *   voxctl account     create, list and show accounts (account.c)
 *   voxctl key         create, list and revoke API keys (key.c)
 *   voxctl usage       metering exceptions and re-rating (usage.c)
 *   voxctl carrier     create, list, revoke and seal carrier
 *                      credentials (carrier.c)
 *   voxctl mail        the local SMTP sink's Maildir (mail.c)
 *   voxctl billing     an account's billing settings (billing.c)
 *   voxctl events      tail and replay a topic's events (events.c)
 *   voxctl housekeep   prune old rows, archive old usage partitions
 *                      (housekeep.c, archive.c)
 *   voxctl help        commands and settings
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_config.h"
#include "vox_log.h"
#include "voxctl.h"

static struct voxctl_cfg cfg;

static const vox_cfg_opt_t opts[] = {
        {"VOX_PG_URL", VOX_CFG_STRING,
         "postgresql://vox@127.0.0.1:25432/voxlink", 1, 4096,
         "PostgreSQL connection URL", &cfg.pg_url},
        {"VOX_MIGRATIONS_DIR", VOX_CFG_STRING, "migrations", 1, 4096,
         "directory of NNNN_name.sql files", &cfg.migrations_dir},
        {"VOX_PG_WAIT_MS", VOX_CFG_INT, "30000", 0, 600000,
         "how long to wait for PostgreSQL to answer", &cfg.pg_wait_ms},
        {"VOX_ENCRYPTION_KEY", VOX_CFG_STRING, "", 0, 200,
         "AES-256-GCM key, [ID:]KEY with 32 bytes as hex or base64, that "
         "carrier create and carrier seal seal signing secrets with "
         "(empty: stored in plaintext, with a warning)",
         &cfg.encryption_key},
        {"VOX_ENCRYPTION_OLD_KEYS", VOX_CFG_STRING, "", 0, 2000,
         "retired keys that still open what they sealed: ID:KEY,... "
         "(carrier seal re-seals with the current key)",
         &cfg.encryption_old_keys},
        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:29092", 1, 4096,
         "Kafka bootstrap servers (events tail and replay)",
         &cfg.kafka_brokers},
        {"VOX_KAFKA_WAIT_MS", VOX_CFG_INT, "10000", 100, 600000,
         "how long events tail and replay wait for Kafka to answer",
         &cfg.kafka_wait_ms},
        {"VOX_HOUSEKEEP_BATCH", VOX_CFG_INT, "5000", 1, 100000,
         "housekeep: rows deleted per batch (each batch is one short "
         "transaction)",
         &cfg.hk_batch},
        {"VOX_HOUSEKEEP_LOCK_TIMEOUT_MS", VOX_CFG_INT, "1000", 10, 60000,
         "housekeep: longest wait for a table lock (a batch never waits "
         "for a row lock: rows a writer holds are skipped)",
         &cfg.hk_lock_timeout_ms},
        {"VOX_HOUSEKEEP_STATEMENT_TIMEOUT_MS", VOX_CFG_INT, "30000", 100,
         3600000, "housekeep: longest batch", &cfg.hk_statement_timeout_ms},
        {"VOX_HOUSEKEEP_INBOX_DAYS", VOX_CFG_INT, "8", 1, 3650,
         "housekeep: inbox rows of the command topics and vox.cdr.raw "
         "(Kafka retention 7 days) are kept this long",
         &cfg.hk_inbox_days},
        {"VOX_HOUSEKEEP_INBOX_LONG_DAYS", VOX_CFG_INT, "31", 1, 3650,
         "housekeep: inbox rows of every other topic (vox.events*, "
         "dead-letter topics: 30 days) are kept this long",
         &cfg.hk_inbox_long_days},
        {"VOX_HOUSEKEEP_OUTBOX_HOURS", VOX_CFG_INT, "24", 1, 87600,
         "housekeep: published outbox rows are kept this long (unpublished "
         "ones always)",
         &cfg.hk_outbox_hours},
        {"VOX_HOUSEKEEP_OPERATIONS_DAYS", VOX_CFG_INT, "90", 1, 36500,
         "housekeep: completed and failed operations (and their events) "
         "are kept this long after they finished",
         &cfg.hk_operations_days},
        {"VOX_HOUSEKEEP_SIGNATURES_MINUTES", VOX_CFG_INT, "15", 6, 525600,
         "housekeep: cdr_push_signatures rows are kept this long (the "
         "signature tolerance is 5 minutes)",
         &cfg.hk_signatures_minutes},
        {"VOX_USAGE_RETENTION_MONTHS", VOX_CFG_INT, "25", 2, 1200,
         "housekeep: usage_records months older than this (and invoiced) "
         "are archived to VOX_ARCHIVE_BUCKET and dropped; usage_dedup "
         "follows",
         &cfg.usage_retention_months},
        {"VOX_S3_ENDPOINT", VOX_CFG_STRING, "http://127.0.0.1:27090", 8, 2048,
         "housekeep: the S3-compatible store archives go to", &cfg.s3_endpoint},
        {"VOX_S3_REGION", VOX_CFG_STRING, "us-east-1", 1, 64,
         "housekeep: the store's region (SigV4 signing scope)", &cfg.s3_region},
        {"VOX_S3_ACCESS_KEY", VOX_CFG_STRING, "", 0, 256,
         "housekeep: the store's access key id (empty: a partition due "
         "for archiving is kept and housekeep exits 1)",
         &cfg.s3_access_key},
        {"VOX_S3_SECRET_KEY", VOX_CFG_STRING, "", 0, 256,
         "housekeep: the store's secret access key", &cfg.s3_secret_key},
        {"VOX_ARCHIVE_BUCKET", VOX_CFG_STRING, "voxlink-archive", 3, 63,
         "housekeep: the bucket of archived usage months "
         "(usage_records/YYYY/MM/<partition>.csv.gz)",
         &cfg.archive_bucket},
};

static const struct voxctl_command {
	const char *name;
	const char *help;
	int (*run)(const struct voxctl_cfg *cfg, int argc, char **argv);
} commands[] = {
        {"migrate", "apply pending database migrations (idempotent)",
         voxctl_migrate},
        {"account", "create, list and show accounts", voxctl_account},
        {"key", "create, list and revoke API keys", voxctl_key},
        {"usage", "metering exceptions; re-rate them", voxctl_usage},
        {"carrier", "create, list, revoke and seal carrier CDR credentials",
         voxctl_carrier},
        {"user",
         "add, list and update an account's users (who is "
         "notified)",
         voxctl_user},
        {"mail", "list and show the mail the local SMTP sink accepted",
         voxctl_mail},
        {"billing",
         "show or set an account's billing settings (tax rate, grace, "
         "terms, dunning plan, anchor day)",
         voxctl_billing},
        {"events",
         "tail a topic's events, or replay a time range of them, as "
         "NDJSON",
         voxctl_events},
        {"housekeep",
         "prune rows past their retention in short batches; archive old "
         "usage months (--every SECONDS: keep doing it)",
         voxctl_housekeep},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: voxctl COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
		        commands[i].help);
	fprintf(out, "\n");
	vox_config_usage("voxctl", "VoxLink operator tool", opts,
	                 sizeof(opts) / sizeof(opts[0]), out);
}

int main(int argc, char **argv)
{
	vox_error_t err;

	if (argc < 2 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (vox_config_parse(opts, sizeof(opts) / sizeof(opts[0]), &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		return 2;
	}
	vox_log_init("voxctl", VOX_LOG_WARN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(&cfg, argc - 1, argv + 1);
	fprintf(stderr, "voxctl: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
