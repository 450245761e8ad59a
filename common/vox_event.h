/*
 * vox_event: CloudEvents 1.0 envelopes (structured mode, JSON) for every
 * Kafka message: id, source, type, specversion, time, subject, data, plus
 * the extensions accountid and traceparent.
 */
#ifndef VOX_EVENT_H
#define VOX_EVENT_H

#include <jansson.h>
#include <stddef.h>

#include "vox_error.h"
#include "vox_time.h"

#define VOX_EVENT_MAX_BYTES (1024 * 1024)

/* A new envelope with a fresh UUIDv7 id and the current time. data is
 * stolen (a new reference is not taken); subject, account_id and
 * traceparent may be NULL (traceparent NULL: a new one is generated).
 * Returns NULL on ENOMEM. */
json_t *vox_event_new(const char *type, const char *source, const char *subject,
                      const char *account_id, const char *traceparent,
                      json_t *data);

/* Parses and checks an envelope from the wire. Returns 0 with *event a new
 * reference, or VOX_ERR_INVALID/VOX_ERR_LIMIT with err saying what is wrong
 * ("missing attribute id", "specversion must be \"1.0\"", ...). */
int vox_event_parse(const char *payload, size_t len, json_t **event,
                    vox_error_t *err);

/* A W3C traceparent with random trace and span ids. */
void vox_traceparent_new(char *out, size_t outlen);

#endif
