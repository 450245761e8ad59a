/*
 * vox_signal: staged shutdown. The first SIGTERM/SIGINT clears vox_running
 * (the main loop drains and exits); a second one exits at once. SIGPIPE is
 * ignored. The handler only touches the flag (async-signal-safe).
 */
#ifndef VOX_SIGNAL_H
#define VOX_SIGNAL_H

#include <signal.h>

extern volatile sig_atomic_t vox_running;

void vox_signal_setup(void);

#endif
