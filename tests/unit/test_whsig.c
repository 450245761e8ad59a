/*
 * Tests of vox_whsig against vectors from the reference implementations:
 * the Standard Webhooks spec's example, and vectors computed with the PyPI
 * package standardwebhooks 1.3.0 (Webhook(secret).sign(id, ts, body)) for
 * the other keys; Twilio's documented example (auth token "12345") and one
 * computed with Python's hmac/hashlib:
 *   base64(hmac.new(token, url + "".join(k + v for k, v in
 *          sorted(params)), sha1).digest())
 * Then secrets (new, valid, bounds), rotation headers, bad input.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_whsig.h"

#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS     1614265330LL
#define SPEC_BODY   "{\"test\": 2432232314}"
#define SPEC_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* bytes 0..31 */
#define SECRET2 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SIG2    "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI="
/* (i * 7 + 1) & 255 for 16 and for 64 bytes: the bounds */
#define SECRET16 "whsec_AQgPFh0kKzI5QEdOVVxjag=="
#define SECRET64                                                               \
	"whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PE" \
	"NKUVhfZm10e4KJkJeepayzug=="

static void sign_is(const char *secret, const char *id, long long ts,
                    const char *body, const char *want)
{
	char sig[VOX_WHSIG_SIG_MAX];

	memset(sig, 'x', sizeof(sig));
	cr_assert_eq(vox_whsig_sign(secret, id, ts, body, strlen(body), sig), 0,
	             "%s", secret);
	cr_assert_str_eq(sig, want);
}

Test(whsig, standard_webhooks_spec_example)
{
	sign_is(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG);
}

Test(whsig, reference_library_vectors)
{
	sign_is(SECRET2, SPEC_ID, SPEC_TS, SPEC_BODY, SIG2);
	sign_is(SECRET16, "msg_1", 1700000000, "",
	        "v1,WKWYFVOKFlm0oFWbskD603LOEvMWW4w9ZCizZM26Rz8=");
	sign_is(SECRET64, "msg_1", 1700000000, "",
	        "v1,qp//0zgKpPXaIGDpL3REmfN168uIuV9CW7uiFhhBMW8=");
	/* UTF-8 and quotes are signed as the bytes they are */
	sign_is(SPEC_SECRET, "msg_2", 1700000000, "caf\xc3\xa9 \"x\"",
	        "v1,MZMuadnt8FSqMW1pc3vS7C9bAdWfLitOvVHixyp4L6E=");
}

Test(whsig, body_is_taken_by_length)
{
	char a[VOX_WHSIG_SIG_MAX], b[VOX_WHSIG_SIG_MAX];
	const char body[] = "ab\0cd";

	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", 1, body, 5, a), 0);
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", 1, body, 2, b), 0);
	cr_assert_str_neq(a, b, "bytes after a NUL are signed");
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", 1, NULL, 0, a), 0);
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", 1, "", 0, b), 0);
	cr_assert_str_eq(a, b);
}

Test(whsig, rotation_gives_two_entries)
{
	const char *both[] = {SPEC_SECRET, SECRET2};
	char header[2 * VOX_WHSIG_SIG_MAX];

	cr_assert_eq(vox_whsig_sign_all(both, 2, SPEC_ID, SPEC_TS, SPEC_BODY,
	                                strlen(SPEC_BODY), header,
	                                sizeof(header)),
	             0);
	cr_assert_str_eq(header, SPEC_SIG " " SIG2);
	cr_assert_eq(vox_whsig_sign_all(both, 1, SPEC_ID, SPEC_TS, SPEC_BODY,
	                                strlen(SPEC_BODY), header,
	                                VOX_WHSIG_SIG_MAX),
	             0);
	cr_assert_str_eq(header, SPEC_SIG);
}

Test(whsig, rotation_refuses_bad_input)
{
	const char *both[] = {SPEC_SECRET, SECRET2};
	const char *bad[] = {SPEC_SECRET, "whsec_nope"};
	const char *three[] = {SPEC_SECRET, SECRET2, SECRET16};
	char header[3 * VOX_WHSIG_SIG_MAX];
	size_t exact = 2 * (strlen(SPEC_SIG)) + 2;

	cr_assert_eq(vox_whsig_sign_all(both, 0, "m", 1, "", 0, header,
	                                sizeof(header)),
	             -1);
	cr_assert_eq(vox_whsig_sign_all(three, 3, "m", 1, "", 0, header,
	                                sizeof(header)),
	             -1);
	cr_assert_eq(vox_whsig_sign_all(bad, 2, "m", 1, "", 0, header,
	                                sizeof(header)),
	             -1);
	/* exactly enough room, and one byte less */
	cr_assert_eq(vox_whsig_sign_all(both, 2, "m", 1, "", 0, header, exact),
	             0);
	cr_assert_eq(strlen(header), exact - 1);
	cr_assert_eq(
	        vox_whsig_sign_all(both, 2, "m", 1, "", 0, header, exact - 1),
	        -1);
}

Test(whsig, new_secrets_are_valid_and_differ)
{
	char a[VOX_WHSIG_SECRET_MAX], b[VOX_WHSIG_SECRET_MAX];
	char sig[VOX_WHSIG_SIG_MAX];

	cr_assert_eq(vox_whsig_secret_new(a), 0);
	cr_assert_eq(vox_whsig_secret_new(b), 0);
	cr_assert_eq(strlen(a), 6 + 32, "%s", a); /* 24 bytes */
	cr_assert_eq(strncmp(a, "whsec_", 6), 0);
	cr_assert(vox_whsig_secret_valid(a), "%s", a);
	cr_assert_str_neq(a, b);
	cr_assert_eq(vox_whsig_sign(a, "m", 1, "x", 1, sig), 0);
	cr_assert_eq(strlen(sig), 3 + 44);
}

Test(whsig, secret_validity)
{
	cr_assert(vox_whsig_secret_valid(SPEC_SECRET));
	cr_assert(vox_whsig_secret_valid(SECRET16));
	cr_assert(vox_whsig_secret_valid(SECRET64));
	cr_assert_eq(strlen(SECRET64) + 1 <= VOX_WHSIG_SECRET_MAX, true);
	/* 15 and 65 bytes */
	cr_assert_not(vox_whsig_secret_valid("whsec_AQgPFh0kKzI5QEdOVVxj"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEh"
	        "kgJy41PENKUVhfZm10e4KJkJeepayzusE="));
	cr_assert_not(vox_whsig_secret_valid(NULL));
	cr_assert_not(vox_whsig_secret_valid(""));
	cr_assert_not(vox_whsig_secret_valid("whsec_"));
	cr_assert_not(
	        vox_whsig_secret_valid("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	/* padding required, standard alphabet only, no blanks */
	cr_assert_not(vox_whsig_secret_valid("whsec_AQgPFh0kKzI5QEdOVVxjag"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_w"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa=w"));
	cr_assert_not(vox_whsig_secret_valid(
	        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La===="));
	/* 1 KiB of base64: refused before decoding */
	char big[1100];

	memcpy(big, "whsec_", 6);
	memset(big + 6, 'A', 1024);
	big[1030] = '\0';
	cr_assert_not(vox_whsig_secret_valid(big));
}

Test(whsig, sign_refuses_bad_input)
{
	char sig[VOX_WHSIG_SIG_MAX];

	cr_assert_eq(vox_whsig_sign("whsec_nope", "m", 1, "", 0, sig), -1);
	cr_assert_eq(vox_whsig_sign(NULL, "m", 1, "", 0, sig), -1);
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, NULL, 1, "", 0, sig), -1);
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", -1, "", 0, sig), -1);
	cr_assert_eq(vox_whsig_sign(SPEC_SECRET, "m", 1, NULL, 3, sig), -1);
}

Test(whsig, twilio_documented_example)
{
	const char *names[] = {"To", "Caller", "Digits", "From", "CallSid"};
	const char *values[] = {"+18005551212", "+12349013030", "1234",
	                        "+12349013030", "CA1234567890ABCDE"};
	char sig[32];

	cr_assert_eq(vox_whsig_twilio("12345",
	                              "https://mycompany.com/myapp.php?foo=1&"
	                              "bar=2",
	                              names, values, 5, sig),
	             0);
	cr_assert_str_eq(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

Test(whsig, twilio_sorts_bytewise_and_repeated_names)
{
	const char *url = "https://voxlink.example/v1/providers/sms/status";
	const char *tok = "0123456789abcdef0123456789abcdef";
	/* "tag" sorts after the capitalised names; its values sort too */
	const char *names[] = {"tag", "MessageStatus", "MessageSid",
	                       "To",  "AccountSid",    "tag"};
	const char *values[] = {"b",   "delivered", "SM1", "+14155550123",
	                        "AC1", "a"};
	char sig[32];

	cr_assert_eq(vox_whsig_twilio(tok, url, names, values, 6, sig), 0);
	cr_assert_str_eq(sig, "fe6H6QfJvhTCEfDIS+YU6T4VZHM=");
	cr_assert_eq(vox_whsig_twilio(tok, url, NULL, NULL, 0, sig), 0);
	cr_assert_str_eq(sig, "2V1J5scbIovTNl3AgJAILMd1QHM=");
}

Test(whsig, twilio_refuses_bad_input)
{
	const char *names[] = {"a", NULL};
	const char *values[] = {"1", "2"};
	char sig[32];

	cr_assert_eq(vox_whsig_twilio("", "https://x", NULL, NULL, 0, sig), -1);
	cr_assert_eq(vox_whsig_twilio(NULL, "https://x", NULL, NULL, 0, sig),
	             -1);
	cr_assert_eq(vox_whsig_twilio("t", NULL, NULL, NULL, 0, sig), -1);
	cr_assert_eq(vox_whsig_twilio("t", "https://x", names, values, 2, sig),
	             -1);
	cr_assert_eq(vox_whsig_twilio("t", "https://x", NULL, values, 1, sig),
	             -1);
}

Test(whsig, equal)
{
	cr_assert(vox_whsig_equal(SPEC_SIG, SPEC_SIG));
	cr_assert(vox_whsig_equal("", ""));
	cr_assert_not(vox_whsig_equal(SPEC_SIG, SIG2));
	cr_assert_not(vox_whsig_equal("abc", "abcd"));
	cr_assert_not(vox_whsig_equal("abcd", "abc"));
	cr_assert_not(vox_whsig_equal(NULL, "a"));
	cr_assert_not(vox_whsig_equal("a", NULL));
}
