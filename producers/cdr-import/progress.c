/*
 * cdr-import progress bar (stderr, only on a terminal, at most 10 redraws
 * a second) and the summary (stdout).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "import.h"
#include "vox_time.h"

struct progress {
	bool enabled;
	const char *name;
	long long size;
	double started, drawn;
};

progress_t *progress_new(bool enabled, const char *path, long long size)
{
	progress_t *pg = calloc(1, sizeof(*pg));
	const char *slash = strrchr(path, '/');

	if (pg == NULL)
		return NULL;
	pg->enabled = enabled;
	pg->name = slash ? slash + 1 : path;
	pg->size = size;
	pg->started = vox_mono_seconds();
	return pg;
}

void progress_update(progress_t *pg, long long offset, long rows, long acked,
                     bool force)
{
	char bar[31], eta[48] = "--:--";
	double now = vox_mono_seconds(), elapsed, frac, rate;
	int filled;

	if (pg == NULL || !pg->enabled || (!force && now - pg->drawn < 0.1))
		return;
	pg->drawn = now;
	elapsed = now - pg->started;
	frac = pg->size > 0 ? (double)offset / (double)pg->size : 1.0;
	if (frac > 1.0)
		frac = 1.0;
	filled = (int)(frac * 30);
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(30 - filled));
	bar[30] = '\0';
	rate = elapsed > 0 ? rows / elapsed : 0;
	if (frac > 0.001 && elapsed > 0.2) {
		long left = (long)(elapsed / frac - elapsed);

		snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
	}
	fprintf(stderr,
	        "\r\033[K%.24s [%s] %5.1f%% %ld rows, %ld acked, %.0f/s, ETA "
	        "%s",
	        pg->name, bar, frac * 100, rows, acked, rate, eta);
	fflush(stderr);
}

void progress_destroy(progress_t *pg)
{
	if (pg != NULL && pg->enabled) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	free(pg);
}

void stats_count_reason(import_stats_t *stats, const char *reason, long n)
{
	int i;

	for (i = 0; i < IMPORT_MAX_REASONS && stats->reasons[i]; i++)
		if (strcmp(stats->reasons[i], reason) == 0)
			break;
	if (i == IMPORT_MAX_REASONS)
		i = IMPORT_MAX_REASONS -
		    1; /* more reasons than we know: lumped */
	stats->reasons[i] = stats->reasons[i] ? stats->reasons[i] : reason;
	stats->reason_counts[i] += n;
}

static void print_line(FILE *out, const char *name, const import_stats_t *s)
{
	fprintf(out,
	        "%s: read %ld, accepted %ld, rejected %ld, skipped %ld, "
	        "%.2f s, %.0f records/s\n",
	        name, s->read, s->accepted, s->rejected, s->skipped,
	        s->elapsed_s,
	        s->elapsed_s > 0 ? s->accepted / s->elapsed_s : 0);
	if (s->rejected == 0)
		return;
	fputs("  rejected:", out);
	for (int i = 0; i < IMPORT_MAX_REASONS && s->reasons[i]; i++)
		fprintf(out, "%s %s %ld", i ? "," : "", s->reasons[i],
		        s->reason_counts[i]);
	fputc('\n', out);
}

void stats_print(FILE *out, const import_stats_t *files, int nfiles)
{
	import_stats_t total;

	memset(&total, 0, sizeof(total));
	for (int f = 0; f < nfiles; f++) {
		const import_stats_t *s = &files[f];

		print_line(out, s->path, s);
		total.read += s->read;
		total.accepted += s->accepted;
		total.skipped += s->skipped;
		total.elapsed_s += s->elapsed_s;
		total.rejected += s->rejected;
		for (int i = 0; i < IMPORT_MAX_REASONS && s->reasons[i]; i++)
			stats_count_reason(&total, s->reasons[i],
			                   s->reason_counts[i]);
	}
	print_line(out, "total", &total);
	fflush(out);
}
