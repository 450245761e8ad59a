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
	char signature[65];  /* the v1 that matched: the replay key */
	long long signed_at; /* its t (unix seconds) */
} carrier_caller_t;

/* Checks the bearer key, the signature over the body and its timestamp
 * (+-300 s), then in one Redis call the rate limit of limit_class at
 * rate_per_s for the credential and the signature's first use (it is
 * recorded there). 0, or answered (401, 429, 503). A request refused
 * after this (bad body, Kafka down...) must carrier_auth_forget, so the
 * same signed request may be sent again. */
int carrier_auth_check(vox_http_req_t *req, ingress_t *in,
                       const char *limit_class, long rate_per_s,
                       carrier_caller_t *who);

/* Forgets who's recorded signature (the request was not taken: its retry
 * as it is must not count as a replay). Logs a failure. */
void carrier_auth_forget(ingress_t *in, const carrier_caller_t *who);

/* 401 with WWW-Authenticate: Bearer realm="carriers", counted. */
void carrier_auth_refuse(vox_http_req_t *req, ingress_t *in, const char *code,
                         const char *message);

#endif
