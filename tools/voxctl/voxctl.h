/* voxctl: shared settings and the command implementations. */
#ifndef VOXCTL_H
#define VOXCTL_H

struct voxctl_cfg {
	const char *pg_url;
	const char *migrations_dir;
	long pg_wait_ms;
};

/* Each returns the process exit code: 0 ok, 1 failed, 2 bad usage. */
int voxctl_migrate(const struct voxctl_cfg *cfg, int argc, char **argv);

#endif
