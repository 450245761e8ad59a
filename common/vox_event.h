/*
 * vox_event: CloudEvents 1.0 envelopes (structured mode, JSON) for every
 * Kafka message: id, source, type, specversion, time, subject, data, plus
 * the extensions accountid and traceparent.
 *
 * Every type we send is a row of one table (vox_event.c, listed in
 * docs/ARCHITECTURE.md) giving its source ("/voxlink/<component>") and its
 * topic; vox_event_build/vox_event_head/vox_event_emit take the rest from
 * there, so no producer spells a source or a topic itself. The envelope's
 * attributes are written in one place, as jansson (vox_event_build) or as
 * text (vox_event_head, for the hot paths that build their data with
 * vox_buf).
 *
 * traceparent (W3C Trace Context): an event caused by an incoming message
 * is a child of it: same trace id and flags, a new span id. Without a
 * (valid) parent it starts a new trace. accountid is set whenever the
 * producer knows the account (null otherwise: a carrier's CDR).
 */
#ifndef VOX_EVENT_H
#define VOX_EVENT_H

#include <jansson.h>
#include <stddef.h>

#include "vox_buf.h"
#include "vox_error.h"
#include "vox_pg.h"
#include "vox_time.h"

#define VOX_EVENT_MAX_BYTES (1024 * 1024)
/* "00-" 32 hex "-" 16 hex "-" 2 hex, and the NUL */
#define VOX_TRACEPARENT_LEN 56

/* One type we send. */
typedef struct vox_event_kind {
	const char *type;   /* "vox.usage.rated" */
	const char *source; /* "/voxlink/metering" */
	const char *topic;  /* where it goes: "vox.events" */
	/* The event's domain topic ("vox.events.numbers"), where the relay
	 * publishes it too, with its per-key sequence; NULL: vox.events only
	 * (and for commands). docs/EVENTS.md "Topics and ordering". */
	const char *domain_topic;
} vox_event_kind_t;

/* The table's row for type, or NULL when we do not send that type. */
const vox_event_kind_t *vox_event_kind(const char *type);
/* The i-th row of the table (NULL past the end): for tests that must
 * cover every type (tests/unit/test_schemas.c). */
const vox_event_kind_t *vox_event_kind_at(size_t i);

/* The envelope of an event of a type in the table, with a fresh UUIDv7 id
 * and the current time. data is stolen (NULL: {}); subject and account_id
 * may be NULL; parent is the incoming message's traceparent or NULL.
 * Returns NULL on ENOMEM or for a type not in the table (data is freed
 * then too). */
json_t *vox_event_build(const char *type, const char *subject,
                        const char *account_id, const char *parent,
                        json_t *data);

/* vox_event_build() with any source and type: for tests and tools that
 * make messages we never send (an unknown type, a foreign source). */
json_t *vox_event_new(const char *type, const char *source, const char *subject,
                      const char *account_id, const char *parent, json_t *data);

/* The same envelope as text, appended to b up to and including "data":
 * the caller appends the data object and then the closing "}". Every
 * string is JSON-escaped. 0 or the buffer's sticky error (VOX_ERR_INTERNAL
 * for a type not in the table). */
int vox_event_head(vox_buf_t *b, const char *type, const char *subject,
                   const char *account_id, const char *parent);

/* Builds the event (vox_event_build, data stolen) and queues it in the
 * outbox for its table topic (and domain topic), keyed by key, in pg's
 * transaction. */
int vox_event_emit(vox_pg_t *pg, const char *type, const char *key,
                   const char *subject, const char *account_id,
                   const char *parent, json_t *data, vox_error_t *err);

/* Queues the text event in b (vox_event_head + data + "}") for type's
 * table topic; fails with the buffer's error if building it failed. */
int vox_event_emit_buf(vox_pg_t *pg, const char *type, const char *key,
                       const vox_buf_t *b, vox_error_t *err);

/* The scope an event of kind is numbered in by the relay (its domain
 * topic; vox.events for the events without one), or NULL (commands). */
const char *vox_event_seq_scope(const vox_event_kind_t *kind);
/* Queues the event text of kind in the outbox, keyed by key: for its
 * topic and domain topic; an event on vox.events (not a command) gets a
 * per-(domain topic, key) `sequence` from the relay when published. */
int vox_event_outbox_add(vox_pg_t *pg, const vox_event_kind_t *kind,
                         const char *key, const char *text, vox_error_t *err);

/* Parses and checks an envelope from the wire. Returns 0 with *event a new
 * reference, or VOX_ERR_INVALID/VOX_ERR_LIMIT with err saying what is wrong
 * ("missing attribute id", "specversion must be \"1.0\"", ...). */
int vox_event_parse(const char *payload, size_t len, json_t **event,
                    vox_error_t *err);

/* A W3C traceparent with random trace and span ids. */
void vox_traceparent_new(char *out, size_t outlen);

/* A child of parent (same trace id and flags, a new span id); a new trace
 * when parent is NULL or not a valid version-00 traceparent. */
void vox_traceparent_child(const char *parent, char out[VOX_TRACEPARENT_LEN]);

#endif
