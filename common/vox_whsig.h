/*
 * vox_whsig: signatures on webhooks, both ways.
 *
 * Outbound, Standard Webhooks (https://www.standardwebhooks.com):
 * secret "whsec_" + base64(24..64 random bytes); signature
 * "v1," + base64(HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>")), the key
 * being the decoded bytes after "whsec_". Several secrets (a rotation)
 * give space-separated entries.
 *
 * Inbound, the SMS provider's receipts (Twilio's X-Twilio-Signature):
 * base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))
 * with the form parameters sorted by name.
 */
#ifndef VOX_WHSIG_H
#define VOX_WHSIG_H

#include <stdbool.h>
#include <stddef.h>

#define VOX_WHSIG_SECRET_MAX 100 /* "whsec_" + base64 of up to 64 bytes */
#define VOX_WHSIG_SIG_MAX    64  /* "v1," + 44 base64 characters + NUL */

/* A new secret from the OS's random source (24 bytes). 0, or -1. */
int vox_whsig_secret_new(char out[VOX_WHSIG_SECRET_MAX]);

/* Whether secret is "whsec_" + valid base64 of 16..64 bytes. */
bool vox_whsig_secret_valid(const char *secret);

/* "v1,<base64>" for one secret. 0, or -1 (bad secret). */
int vox_whsig_sign(const char *secret, const char *msg_id, long long timestamp,
                   const void *body, size_t body_len,
                   char out[VOX_WHSIG_SIG_MAX]);

/* The webhook-signature header value for n secrets (n 1..2): entries
 * joined by one space. out must hold n * VOX_WHSIG_SIG_MAX. 0, or -1. */
int vox_whsig_sign_all(const char *const *secrets, size_t n, const char *msg_id,
                       long long timestamp, const void *body, size_t body_len,
                       char *out, size_t outlen);

/* Twilio-style signature of a form post: names[i]=values[i], n pairs (in
 * any order; sorted by name here, bytewise). out: base64 of the 20-byte
 * HMAC-SHA1 (28 characters + NUL). 0, or -1. */
int vox_whsig_twilio(const char *auth_token, const char *url,
                     const char *const *names, const char *const *values,
                     size_t n, char out[32]);

/* Constant-time comparison of two NUL-terminated strings. */
bool vox_whsig_equal(const char *a, const char *b);

#endif
