/*
 * vox_fault: crashes on purpose, in test builds only.
 *
 * The consumer calls these on the writer path right before a handler runs
 * (the batch handler, or the handler of one message). In the release
 * build they do nothing. A build compiled with -DVOX_FAULT_HOOKS (the
 * Makefile's $(BUILD)/test-bin/ binaries) reads VOX_FAULT_ABORT_ON and
 * calls abort() when a payload contains that text, so a test can make one
 * record kill the worker (tests/integration/test_crash.c).
 *
 * vox_fault_point(name) marks a place inside a handler (e.g. the porting
 * worker right after a carrier call, before its transaction commits); the
 * test build aborts there when VOX_FAULT_POINT names it (a comma-separated
 * list), so a test can kill a worker in the middle of a transition
 * (tests/integration/test_porting_crash.c).
 */
#ifndef VOX_FAULT_H
#define VOX_FAULT_H

#include <stddef.h>

#include "vox_consumer.h"

void vox_fault_check_batch(const vox_batch_msg_t *msgs, size_t n);
void vox_fault_check_message(const char *payload, size_t len);
void vox_fault_point(const char *name);

#endif
