/*
 * cdr-import: imports carrier CDR files (CSV) into vox.cdr.raw, the same
 * vox.cdr.received events the ingress publishes for pushed CDRs, with a
 * checkpoint per file so an interrupted import resumes without sending a
 * row twice (docs/CDR_IMPORT.md).
 *
 * Exit: 0 all imported, 1 some rows rejected (the rest imported), 2 usage
 * or configuration, 3 Kafka unavailable, 128+signal when interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import.h"
#include "vox_cdr.h"
#include "vox_config.h"
#include "vox_log.h"
#include "vox_time.h"

#define EXIT_REJECTS 1
#define EXIT_USAGE   2
#define EXIT_KAFKA   3
#define USAGE        "cdr-import [options] FILE..."

volatile sig_atomic_t import_stop_signal;

static struct {
	const char *brokers;
	long kafka_wait_s;
	long message_timeout_ms;
	long linger_ms;
	const char *log_level;
} cfg;

static const vox_cfg_opt_t opts_table[] = {
        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:29092", 1, 4096,
         "Kafka bootstrap servers", &cfg.brokers},
        {"VOX_CDR_IMPORT_KAFKA_WAIT_S", VOX_CFG_INT, "15", 1, 600,
         "how long to wait for Kafka at start before exit 3",
         &cfg.kafka_wait_s},
        {"VOX_KAFKA_TIMEOUT_MS", VOX_CFG_INT, "30000", 1000, 600000,
         "time a record may wait for its acknowledgement before exit 3",
         &cfg.message_timeout_ms},
        {"VOX_KAFKA_LINGER_MS", VOX_CFG_INT, "20", 0, 1000,
         "producer batching delay", &cfg.linger_ms},
        {"VOX_LOG_LEVEL", VOX_CFG_STRING, "warn", 4, 5,
         "debug, info, warn or error (JSON lines on stderr)", &cfg.log_level},
};
#define NOPTS (sizeof(opts_table) / sizeof(opts_table[0]))

static const char about[] =
        "imports carrier CDR files (CSV) into vox.cdr.raw "
        "(docs/CDR_IMPORT.md)\n"
        "  --carrier NAME        carrier the records come from (default "
        "sandbox)\n"
        "  --checkpoint-dir DIR  checkpoints and rejects here (default: "
        "beside each file)\n"
        "  --restart             ignore checkpoints, import from the "
        "start\n"
        "  --max-rate N          send at most N records a second\n"
        "  --quiet               no progress bar, no summary\n"
        "exit: 0 ok, 1 rows rejected, 2 usage/config, 3 Kafka "
        "unavailable, 130/143 interrupted";

/* The second signal exits at once (the checkpoint on disk stays valid). */
static void on_signal(int sig)
{
	if (import_stop_signal)
		_exit(128 + sig);
	import_stop_signal = sig;
}

static void signals_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void usage_exit(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "cdr-import: %s\n", why);
	vox_config_usage(USAGE, about, opts_table, NOPTS, stderr);
	exit(EXIT_USAGE);
}

static void parse_args(int argc, char **argv, import_opts_t *o)
{
	static const struct option longopts[] = {
	        {"carrier", required_argument, NULL, 'c'},
	        {"checkpoint-dir", required_argument, NULL, 'd'},
	        {"restart", no_argument, NULL, 'r'},
	        {"max-rate", required_argument, NULL, 'm'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->carrier = optarg;
			break;
		case 'd':
			o->checkpoint_dir = optarg;
			break;
		case 'r':
			o->restart = true;
			break;
		case 'm':
			o->max_rate = strtol(optarg, &end, 10);
			if (*end || o->max_rate < 0)
				usage_exit("--max-rate: a number "
				           "of records per second");
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			vox_config_usage(USAGE, about, opts_table, NOPTS,
			                 stdout);
			exit(0);
		default:
			usage_exit(NULL);
		}
	}
	if (optind >= argc)
		usage_exit("no FILE to import");
	if (!vox_carrier_name_valid(o->carrier))
		usage_exit("--carrier: 1..63 of [a-z0-9_-], "
		           "starting with a letter or digit");
}

/* Every file must be readable with a complete header before anything is
 * sent, so a bad file in the list does not leave the others half done. */
static void check_files(char **files, int nfiles, const import_opts_t *o)
{
	vox_error_t err;
	checkpoint_t cp;
	char mismatch[160];
	int col[IMPORT_NCOLUMNS];

	if (o->checkpoint_dir != NULL && access(o->checkpoint_dir, W_OK) != 0) {
		fprintf(stderr,
		        "cdr-import: --checkpoint-dir %s: %s (nothing sent)\n",
		        o->checkpoint_dir, strerror(errno));
		exit(EXIT_USAGE);
	}
	for (int i = 0; i < nfiles; i++) {
		if (import_check_header(files[i], col, &err) != 0 ||
		    checkpoint_init(&cp, files[i], o->checkpoint_dir,
		                    o->carrier, &err) != 0 ||
		    (!o->restart &&
		     checkpoint_load(&cp, mismatch, sizeof(mismatch), &err) <
		             0)) {
			fprintf(stderr, "cdr-import: %s (nothing sent)\n",
			        err.message);
			exit(EXIT_USAGE);
		}
	}
}

static vox_producer_t *kafka_connect(void)
{
	vox_producer_conf_t pc = {.brokers = cfg.brokers,
	                          .client_id = "cdr-import",
	                          .message_timeout_ms =
	                                  (int)cfg.message_timeout_ms,
	                          .linger_ms = (int)cfg.linger_ms};
	double deadline = vox_mono_seconds() + (double)cfg.kafka_wait_s;
	vox_producer_t *producer;
	vox_error_t err;

	producer = vox_producer_new(&pc, &err);
	if (producer == NULL) {
		fprintf(stderr, "cdr-import: kafka: %s\n", err.message);
		exit(EXIT_USAGE);
	}
	while (vox_producer_ping(producer, 1000, &err) != 0) {
		if (import_stop_signal || vox_mono_seconds() >= deadline) {
			fprintf(stderr,
			        "cdr-import: Kafka at %s is unavailable "
			        "after %ld s (%s); nothing sent\n",
			        cfg.brokers, cfg.kafka_wait_s, err.message);
			vox_producer_destroy(producer, 0);
			exit(import_stop_signal ? 128 + import_stop_signal
			                        : EXIT_KAFKA);
		}
	}
	return producer;
}

int main(int argc, char **argv)
{
	import_opts_t o = {.carrier = "sandbox"};
	import_stats_t *stats;
	vox_producer_t *producer;
	vox_error_t err;
	int level, nfiles, done = 0, status = 0;
	bool rejected = false;

	parse_args(argc, argv, &o);
	if (vox_config_parse(opts_table, NOPTS, &err) != 0) {
		fprintf(stderr, "cdr-import: %s\n", err.message);
		return EXIT_USAGE;
	}
	level = vox_log_level_parse(cfg.log_level);
	if (level < 0)
		usage_exit("VOX_LOG_LEVEL: debug, info, warn or error");
	vox_log_init("cdr-import", (vox_log_level_t)level);
	o.progress = !o.quiet && isatty(STDERR_FILENO);
	o.kafka_wait_ms = (int)cfg.message_timeout_ms;
	nfiles = argc - optind;
	check_files(argv + optind, nfiles, &o);
	stats = calloc((size_t)nfiles, sizeof(*stats));
	if (stats == NULL)
		return EXIT_USAGE;
	signals_setup();
	producer = kafka_connect();
	for (int i = 0; i < nfiles && status == 0; i++) {
		import_outcome_t outcome = import_file(
		        producer, argv[optind + i], &o, &stats[i], &err);

		done = i + 1;
		rejected |= stats[i].rejected > 0;
		if (outcome == IMPORT_INTERRUPTED)
			status = 128 + import_stop_signal;
		else if (outcome == IMPORT_KAFKA_FAILED) {
			fprintf(stderr,
			        "cdr-import: %s: Kafka did not acknowledge "
			        "records (%s); checkpoint written, rerun to "
			        "resume\n",
			        argv[optind + i], err.message);
			status = EXIT_KAFKA;
		} else if (outcome == IMPORT_REFUSED) {
			fprintf(stderr, "cdr-import: %s\n", err.message);
			status = EXIT_USAGE;
		}
	}
	vox_producer_destroy(producer, 5000);
	if (!o.quiet)
		stats_print(stdout, stats, done);
	free(stats);
	if (status == 0 && rejected)
		status = EXIT_REJECTS;
	return status;
}
