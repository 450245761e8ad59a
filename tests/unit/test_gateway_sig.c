/*
 * vox_gateway_signature_check (common/vox_gateway_sig.c), the payment
 * gateway's webhook signature "t=<unix>,v1=<hex HMAC-SHA256(secret,
 * "<t>.<body>")>", against vectors computed with Python's hmac/hashlib:
 *   hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
 * Then the window (both sides, its bounds), several v1 entries (rotation),
 * and malformed headers, which are refused and never crash.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vox_gateway.h"

#define SECRET "whsec_sandbox"
#define T      1700000000LL
#define BODY   "{\"id\":\"evt_1\"}"
#define SIG    "5c83ca56a76fc13716319e676dde1719da89def4594f7494e0b1de8abe94ed7d"
/* the same body signed with another secret (the gateway's old one) */
#define SIG_OLD                                                                \
	"ef1b1b7e4b312671a75ef2a03e10529f7834a6528a49db77ad6568c8c8017843"
/* "" */
#define SIG_EMPTY                                                              \
	"da0fa706052f616e93f3e839bc4e963e8c6a6b06cda09f7885a4af8ebe1d09ba"
/* "a\0b": the length counts, not a C string */
#define SIG_NUL                                                                \
	"bf9c0386ee3488c6aa212b79b76fd77a5a5cf14da176ad03880e4f4ae9f6f941"

static int check(const char *secret, const char *header, const char *body,
                 size_t len, long long now)
{
	vox_error_t err = {0};
	int rc = vox_gateway_signature_check(secret, header, body, len, now,
	                                     300, &err);

	if (rc != 0)
		cr_expect_neq(err.message[0], '\0', "a refusal says why");
	return rc;
}

Test(gateway_sig, python_vectors)
{
	cr_expect_eq(
	        check(SECRET, "t=1700000000,v1=" SIG, BODY, strlen(BODY), T),
	        0);
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG_EMPTY, "", 0, T), 0);
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG_NUL, "a\0b", 3, T),
	             0);
	/* the body's length matters: "a" alone is not "a\0b" */
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG_NUL, "a\0b", 1, T),
	             VOX_ERR_INVALID);
	/* v1 before t */
	cr_expect_eq(
	        check(SECRET, "v1=" SIG ",t=1700000000", BODY, strlen(BODY), T),
	        0);
}

Test(gateway_sig, wrong_secret_body_or_timestamp_is_refused)
{
	cr_expect_eq(check("whsec_other", "t=1700000000,v1=" SIG, BODY,
	                   strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG, "{\"id\":\"evt_2\"}",
	                   14, T),
	             VOX_ERR_INVALID);
	/* the timestamp is signed: another t with the same v1 fails */
	cr_expect_eq(
	        check(SECRET, "t=1700000001,v1=" SIG, BODY, strlen(BODY), T),
	        VOX_ERR_INVALID);
	/* upper-case hex, a truncated or a longer signature */
	char upper[] = "t=1700000000,v1=" SIG;
	for (char *c = upper + 16; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	cr_expect_eq(check(SECRET, upper, BODY, strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(SECRET,
	                   "t=1700000000,v1=5c83ca56a76fc13716319e676dde1719",
	                   BODY, strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG "00", BODY,
	                   strlen(BODY), T),
	             VOX_ERR_INVALID);
	/* v0 is not a scheme we accept */
	cr_expect_eq(
	        check(SECRET, "t=1700000000,v0=" SIG, BODY, strlen(BODY), T),
	        VOX_ERR_INVALID);
}

Test(gateway_sig, window_of_300_seconds_both_ways)
{
	const char *h = "t=1700000000,v1=" SIG;

	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T + 300), 0);
	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T - 300), 0);
	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T + 301),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T - 301),
	             VOX_ERR_INVALID);
	/* a very old or far-future t never overflows into the window */
	cr_expect_eq(check(SECRET, "t=-9223372036854775808,v1=" SIG, BODY,
	                   strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(SECRET, "t=99999999999999999999,v1=" SIG, BODY,
	                   strlen(BODY), T),
	             VOX_ERR_INVALID);
}

Test(gateway_sig, several_v1_entries_rotation)
{
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG_OLD ",v1=" SIG, BODY,
	                   strlen(BODY), T),
	             0);
	cr_expect_eq(check("whsec_old", "t=1700000000,v1=" SIG_OLD ",v1=" SIG,
	                   BODY, strlen(BODY), T),
	             0);
	cr_expect_eq(check(SECRET, "t=1700000000,v1=" SIG_OLD ",v1=00", BODY,
	                   strlen(BODY), T),
	             VOX_ERR_INVALID);
}

Test(gateway_sig, malformed_headers_are_refused)
{
	static const char *const bad[] = {
	        "",
	        ",",
	        ",,,,",
	        "t=",
	        "t=,v1=" SIG,
	        "v1=" SIG,
	        "t=abc,v1=" SIG,
	        "t=1700000000x,v1=" SIG,
	        "t=1700000000",
	        "t=1700000000,v1=",
	        "t=1700000000,v1",
	        "t=17000000000000000000000000000,v1=" SIG,
	        "1700000000," SIG,
	        "t=1700000000;v1=" SIG,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(check(SECRET, bad[i], BODY, strlen(BODY), T),
		             VOX_ERR_INVALID, "%s", bad[i]);
	/* no header, no secret */
	cr_expect_eq(check(SECRET, NULL, BODY, strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check("", "t=1700000000,v1=" SIG, BODY, strlen(BODY), T),
	             VOX_ERR_INVALID);
	cr_expect_eq(check(NULL, "t=1700000000,v1=" SIG, BODY, strlen(BODY), T),
	             VOX_ERR_INVALID);
}

Test(gateway_sig, a_long_header_is_handled)
{
	static const char zero_sig[] = ",v1="
	                               "000000000000000000000000000000000000000"
	                               "0000000000000000000000000";
	char h[20000];
	size_t n = strlen("t=1700000000"), z = strlen(zero_sig);

	memcpy(h, "t=1700000000", n);
	while (n + z + 80 < sizeof(h)) {
		memcpy(h + n, zero_sig, z);
		n += z;
	}
	h[n] = '\0';
	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T), VOX_ERR_INVALID);
	memcpy(h + n, ",v1=" SIG, strlen(",v1=" SIG) + 1);
	cr_expect_eq(check(SECRET, h, BODY, strlen(BODY), T), 0);
}
