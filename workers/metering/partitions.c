/*
 * metering: usage_records is partitioned by month; the worker's tick keeps
 * VOX_USAGE_PARTITIONS_AHEAD months of partitions created ahead.
 */
#include <stdio.h>
#include <time.h>

#include "metering.h"
#include "vox_log.h"

void meter_tick(vox_pg_t *pg, void *ctx)
{
	struct meter_ctx *m = ctx;
	static time_t last;
	time_t now = time(NULL);
	char ahead[16];
	vox_error_t err;

	if (last != 0 && now - last < 3600)
		return;
	snprintf(ahead, sizeof(ahead), "%ld", m->partitions_ahead);
	const char *params[] = {ahead};
	if (vox_pg_exec(pg, "SELECT usage_ensure_partitions($1::int)", 1,
	                params, NULL, &err) == 0)
		last = now;
	else
		vox_log(VOX_LOG_WARN, "usage partitions not ensured", "error",
		        err.message, NULL);
}
