/* vox_signal: a flag for the first stop signal, _exit on the second. */
#include "vox_signal.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t vox_running = 1;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (!vox_running)
		_exit(130);
	vox_running = 0;
}

void vox_signal_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
