/*
 * carrier_auth.c: a carrier's bearer key and request signature
 * (docs/CARRIER_CDRS.md), for every /v1/carrier/... route.
 */
#ifndef CARRIER_AUTH_H
#define CARRIER_AUTH_H

#include "ingress.h"
#include "vox_cdr.h"

/* Who sent an authenticated carrier request. */
typedef struct carrier_caller {
	char cred_id[40];
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	char signature[65]; /* the v1 that matched: the replay key */
} carrier_caller_t;

/* Checks the bearer key, the signature over the body and its timestamp
 * (+-300 s), then the rate limit of limit_class at rate_per_s for the
 * credential. 0, or answered (401, 429, 503). It does not record the
 * signature: carrier_auth_remember does, once the request is taken. */
int carrier_auth_check(vox_http_req_t *req, ingress_t *in,
                       const char *limit_class, long rate_per_s,
                       carrier_caller_t *who);

/* Records who->signature as used: 0, or answered (401 replayed_request,
 * 503). */
int carrier_auth_remember(vox_http_req_t *req, ingress_t *in,
                          const carrier_caller_t *who);

/* Forgets a remembered signature (the request could not be taken: its
 * retry as it is must not count as a replay). Logs a failure. */
void carrier_auth_forget(ingress_t *in, const carrier_caller_t *who);

/* 401 with WWW-Authenticate: Bearer realm="carriers", counted. */
void carrier_auth_refuse(vox_http_req_t *req, ingress_t *in, const char *code,
                         const char *message);

#endif
