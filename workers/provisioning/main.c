/*
 * provisioning: the worker that turns number commands into carrier calls
 * and database state. For now it answers the pipeline canary.
 */
#include "vox_canary.h"
#include "vox_worker.h"

static const vox_handler_t handlers[] = {
        {VOX_CANARY_TYPE, vox_canary_handle},
};

int main(int argc, char **argv)
{
	const vox_worker_def_t def = {
	        .name = "provisioning",
	        .about = "consumes provisioning commands (and the canary)",
	        .topics = "vox.cmd.provisioning",
	        .metrics_port = 19101,
	        .handlers = handlers,
	        .nhandlers = sizeof(handlers) / sizeof(handlers[0]),
	};

	return vox_worker_main(&def, argc, argv);
}
