/*
 * vox_redis: a hiredis connection that reconnects by itself.
 *
 * Not thread-safe: one vox_redis_t per thread. Every command has the
 * connect/command timeout given at creation, so a dead Redis never hangs a
 * caller: it gets VOX_ERR_UNAVAILABLE and the next call tries to reconnect.
 */
#ifndef VOX_REDIS_H
#define VOX_REDIS_H

#include <hiredis/hiredis.h>

#include "vox_error.h"

typedef struct vox_redis vox_redis_t;

/* url: redis://host:port[/db]. Does not connect yet. NULL on bad url/ENOMEM. */
vox_redis_t *vox_redis_new(const char *url, int timeout_ms, vox_error_t *err);
void vox_redis_destroy(vox_redis_t *r);

/* Runs a command (hiredis format string). Returns the reply (caller frees
 * with freeReplyObject), or NULL with err filled; a reply of type
 * REDIS_REPLY_ERROR is returned as is. Reconnects once if the connection
 * was broken. */
redisReply *vox_redis_command(vox_redis_t *r, vox_error_t *err, const char *fmt,
                              ...);

/* PING == PONG: 0, else VOX_ERR_UNAVAILABLE. */
int vox_redis_ping(vox_redis_t *r, vox_error_t *err);

#endif
