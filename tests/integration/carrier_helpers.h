/*
 * Carrier credentials and signed carrier requests for the tests of the
 * /v1/carrier/... routes (docs/CARRIER_CDRS.md).
 */
#ifndef CARRIER_HELPERS_H
#define CARRIER_HELPERS_H

#include "vox_auth.h"
#include "vox_uuid.h"

struct t_carrier {
	char id[VOX_UUID_STRLEN];
	char name[40];
	char key[VOX_CARRIER_KEY_LEN + 1];
	char secret[44];
};

/* A new active credential with a unique carrier name (SQL, as voxctl). */
void t_carrier_new(struct t_carrier *c);

/* hex HMAC-SHA256(secret, "<t>.<body>") */
void t_carrier_sign(const char *secret, long long t, const char *body,
                    char out[65]);

#endif
