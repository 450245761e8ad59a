/*
 * vox_ssrf: the destination filter for customer-given URLs (vox_ssrf.h,
 * docs/NOTIFICATIONS.md "Destination filter").
 *
 * The URL is parsed by libcurl's URL API, the same parser the transfer
 * uses, so what is checked is what curl will connect to (curl also turns
 * 0x7f000001, 2130706433, 017700000001 and 127.1 into 127.0.0.1). Names
 * are looked up once with getaddrinfo; the caller pins the checked address
 * with CURLOPT_RESOLVE, and the connect hook (vox_ssrf_allow_addr) checks
 * again whatever socket curl opens.
 *
 * IPv6 is judged the other way round from IPv4: only global unicast
 * (2000::/3) can pass, minus its special blocks, and the forms that embed
 * an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that
 * address.
 */
#include "vox_ssrf.h"
#include "vox_time.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSRF_URL_MAX   2048
#define SSRF_ENTRY_MAX 64 /* an IPv6 address, "/128" and some room */

struct ssrf_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char bytes[16];
	unsigned prefix;
};

/* Names that did not resolve, remembered a while (SSRF_MISS_MS; a
 * temporary failure SSRF_MISS_AGAIN_MS): a queue of deliveries to one dead
 * host costs one lookup, not one each; without it a thousand queued
 * callbacks to a name that is gone flood the resolver, whose answers then
 * take its 5 s retry each and hold every sender up. */
#define SSRF_MISSES        64
#define SSRF_MISS_MS       30000
#define SSRF_MISS_AGAIN_MS 5000
struct ssrf_miss {
	char host[256];
	int64_t until_ms;
	int gai;
};
struct ssrf_misses {
	pthread_mutex_t lock;
	struct ssrf_miss slot[SSRF_MISSES];
	unsigned next; /* the slot the next miss takes (round robin) */
};

struct vox_ssrf {
	struct ssrf_misses *misses;
	size_t count;
	struct ssrf_cidr cidrs[];
};

/* One IPv4 range and what it is. */
struct v4_range {
	uint32_t net;
	unsigned prefix;
	const char *what;
};

/* First match wins: the metadata address before link-local, broadcast
 * before 240/4. */
static const struct v4_range v4_refused[] = {
        {0xA9FEA9FE, 32, "a cloud metadata address"}, /* 169.254.169.254 */
        {0xFFFFFFFF, 32, "the broadcast address"},
        {0x00000000, 8, "an unspecified address"}, /* 0/8 "this network" */
        {0x0A000000, 8, "a private address"},
        {0x64400000, 10, "a carrier-grade NAT address"}, /* 100.64/10 */
        {0x7F000000, 8, "a loopback address"},
        {0xA9FE0000, 16, "a link-local address"},
        {0xAC100000, 12, "a private address"},
        {0xC0000000, 24, "a reserved address"}, /* IETF protocol assignments */
        {0xC0000200, 24, "a documentation address"}, /* TEST-NET-1 */
        {0xC0586300, 24, "a reserved address"},      /* 6to4 relay anycast */
        {0xC0A80000, 16, "a private address"},
        {0xC6120000, 15, "a benchmarking address"},  /* 198.18/15 */
        {0xC6336400, 24, "a documentation address"}, /* TEST-NET-2 */
        {0xCB007100, 24, "a documentation address"}, /* TEST-NET-3 */
        {0xE0000000, 4, "a multicast address"},
        {0xF0000000, 4, "a reserved address"},
};

/* What is wrong with v4 (host order), or NULL when it is public. */
static const char *v4_refusal(uint32_t v4)
{
	for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]);
	     i++) {
		uint32_t mask =
		        v4_refused[i].prefix == 0
		                ? 0
		                : 0xFFFFFFFFu << (32 - v4_refused[i].prefix);

		if ((v4 & mask) == v4_refused[i].net)
			return v4_refused[i].what;
	}
	return NULL;
}

/* Whether the first prefix bits of a and b agree. */
static bool prefix_match(const unsigned char *a, const unsigned char *b,
                         unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xFF << (8 - rest))) == 0;
}

static uint32_t v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* An IPv6 block: its first bytes, prefix length and what it is. */
struct v6_range {
	unsigned char bytes[16];
	unsigned prefix;
	const char *what;
};

static const struct v6_range v6_refused[] = {
        {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54},
         128,
         "a cloud metadata address"},             /* fd00:ec2::254 */
        {{0x01, 0x00}, 64, "a reserved address"}, /* discard */
        {{0x20, 0x01, 0x0d, 0xb8}, 32, "a documentation address"},
        {{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, "a benchmarking address"},
        {{0x20, 0x01}, 23, "a reserved address"}, /* IETF: Teredo, ORCHID */
        {{0x3f, 0xff}, 20, "a documentation address"},
        {{0xfc}, 7, "a private address"}, /* unique local */
        {{0xfe, 0x80}, 10, "a link-local address"},
        {{0xfe, 0xc0}, 10, "a site-local address"},
        {{0xff}, 8, "a multicast address"},
        {{0x20}, 3, NULL}, /* global unicast: the rest passes */
};

/* The IPv6 forms that carry an IPv4 address: the first prefix/8 bytes,
 * and where the IPv4 address sits. */
struct v6_embed {
	unsigned char bytes[12];
	unsigned prefix;
	unsigned at;
	const char *form;
	bool deprecated; /* refused even around a public address */
};

static const struct v6_embed v6_embeds[] = {
        {{[10] = 0xff, [11] = 0xff}, 96, 12, "IPv4-mapped", false},
        {{0}, 96, 12, "IPv4-compatible", true},
        {{0x00, 0x64, 0xff, 0x9b}, 96, 12, "NAT64", false},
        {{0x20, 0x02}, 16, 2, "6to4", false},
};

/* What is wrong with an IPv6 address (text into why[len]), or false when
 * it may be reached. */
static bool v6_refused_why(const unsigned char *a, char *why, size_t len)
{
	static const unsigned char zero[16], one[16] = {[15] = 1};
	char v4text[INET_ADDRSTRLEN];

	if (memcmp(a, zero, 16) == 0) {
		snprintf(why, len, "an unspecified address");
		return true;
	}
	if (memcmp(a, one, 16) == 0) {
		snprintf(why, len, "a loopback address");
		return true;
	}
	for (size_t i = 0; i < sizeof(v6_embeds) / sizeof(v6_embeds[0]); i++) {
		const struct v6_embed *e = &v6_embeds[i];
		const char *what;

		if (!prefix_match(a, e->bytes, e->prefix))
			continue;
		what = v4_refusal(v4_at(a + e->at));
		inet_ntop(AF_INET, a + e->at, v4text, sizeof(v4text));
		if (what != NULL) {
			snprintf(why, len, "%s (%s %s)", what, e->form, v4text);
			return true;
		}
		/* A public IPv4 address in a form nobody routes any more. */
		if (e->deprecated) {
			snprintf(why, len,
			         "a deprecated IPv4-compatible address");
			return true;
		}
		return false;
	}
	if (prefix_match(
	            a,
	            (const unsigned char[]){0x00, 0x64, 0xff, 0x9b, 0x00, 0x01},
	            48)) {
		snprintf(why, len, "a reserved address (local-use NAT64)");
		return true;
	}
	for (size_t i = 0; i < sizeof(v6_refused) / sizeof(v6_refused[0]);
	     i++) {
		if (!prefix_match(a, v6_refused[i].bytes, v6_refused[i].prefix))
			continue;
		if (v6_refused[i].what == NULL)
			return false;
		snprintf(why, len, "%s", v6_refused[i].what);
		return true;
	}
	snprintf(why, len, "a reserved address");
	return true;
}

static bool allowlisted(const vox_ssrf_t *s, int family,
                        const unsigned char *bytes)
{
	for (size_t i = 0; s != NULL && i < s->count; i++)
		if (s->cidrs[i].family == family &&
		    prefix_match(bytes, s->cidrs[i].bytes, s->cidrs[i].prefix))
			return true;
	/* ::ffff:a.b.c.d is a.b.c.d: an IPv4 entry admits it too */
	if (family == AF_INET6 &&
	    prefix_match(bytes, v6_embeds[0].bytes, v6_embeds[0].prefix))
		return allowlisted(s, AF_INET, bytes + 12);
	return false;
}

/* Whether the address may be reached; if not, why[len] says what it is. */
static bool address_allowed(const vox_ssrf_t *s, int family,
                            const unsigned char *bytes, char *why, size_t len)
{
	const char *what;

	if (allowlisted(s, family, bytes))
		return true;
	if (family == AF_INET6)
		return !v6_refused_why(bytes, why, len);
	what = v4_refusal(v4_at(bytes));
	if (what == NULL)
		return true;
	snprintf(why, len, "%s", what);
	return false;
}

bool vox_ssrf_allow_addr(void *s, const struct sockaddr *addr, socklen_t len)
{
	char why[128];

	if (addr == NULL)
		return false;
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)addr;

		return address_allowed(s, AF_INET,
		                       (const unsigned char *)&in->sin_addr,
		                       why, sizeof(why));
	}
	if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)addr;

		return address_allowed(s, AF_INET6, in6->sin6_addr.s6_addr, why,
		                       sizeof(why));
	}
	return false;
}

/* "a.b.c.d/n" or "v6/n" (a bare address is the one host) into c. */
static int cidr_parse(const char *entry, struct ssrf_cidr *c, vox_error_t *err)
{
	char addr[SSRF_ENTRY_MAX];
	const char *slash = strchr(entry, '/');
	size_t alen = slash != NULL ? (size_t)(slash - entry) : strlen(entry);
	unsigned max;

	if (alen == 0 || alen >= sizeof(addr))
		goto bad;
	memcpy(addr, entry, alen);
	addr[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->bytes) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->bytes) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	c->prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		unsigned n = 0;

		if (*p == '\0' || strlen(p) > 3)
			goto bad;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				goto bad;
			n = n * 10 + (unsigned)(*p - '0');
		}
		if (n > max)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "allowlist entry \"%s\": prefix "
			                     "longer than %u bits",
			                     entry, max);
		c->prefix = n;
	}
	{
		/* 10.1.2.3/8 is a typing error more often than 10/8 */
		unsigned char masked[16] = {0};

		memcpy(masked, c->bytes, c->prefix / 8);
		if (c->prefix % 8)
			masked[c->prefix / 8] =
			        (unsigned char)(c->bytes[c->prefix / 8] &
			                        (0xFF << (8 - c->prefix % 8)));
		if (memcmp(masked, c->bytes, max / 8) != 0)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "allowlist entry \"%s\" has bits "
			                     "set after its prefix",
			                     entry);
	}
	return 0;
bad:
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "allowlist entry \"%.*s\" is not an address or "
	                     "CIDR",
	                     SSRF_ENTRY_MAX, entry);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

vox_ssrf_t *vox_ssrf_new(const char *allow_cidrs, vox_error_t *err)
{
	const char *p = allow_cidrs != NULL ? allow_cidrs : "";
	size_t count = 1;
	vox_ssrf_t *s;

	while (is_blank(*p))
		p++;
	for (const char *q = p; *q != '\0'; q++)
		count += *q == ',';
	s = calloc(1, sizeof(*s) + count * sizeof(s->cidrs[0]));
	if (s != NULL && (s->misses = calloc(1, sizeof(*s->misses))) == NULL) {
		free(s);
		s = NULL;
	}
	if (s == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->misses->lock, NULL);
	if (*p == '\0')
		return s;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char entry[SSRF_ENTRY_MAX + 1];

		while (len > 0 && is_blank(*p)) {
			p++;
			len--;
		}
		while (len > 0 && is_blank(p[len - 1]))
			len--;
		if (len == 0 || len > SSRF_ENTRY_MAX) {
			vox_error_set(err, VOX_ERR_INVALID, false,
			              "allowlist entry %zu is %s", s->count + 1,
			              len == 0 ? "empty" : "too long");
			goto fail;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		if (cidr_parse(entry, &s->cidrs[s->count], err) != 0)
			goto fail;
		s->count++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return s;
fail:
	vox_ssrf_destroy(s);
	return NULL;
}

void vox_ssrf_destroy(vox_ssrf_t *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->misses->lock);
	free(s->misses);
	free(s);
}

/* The lookup error remembered for host, or 0. */
static int miss_find(struct ssrf_misses *m, const char *host)
{
	int64_t now = vox_mono_ms();
	int gai = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < SSRF_MISSES; i++)
		if (m->slot[i].until_ms > now &&
		    strcmp(m->slot[i].host, host) == 0) {
			gai = m->slot[i].gai;
			break;
		}
	pthread_mutex_unlock(&m->lock);
	return gai;
}

static void miss_add(struct ssrf_misses *m, const char *host, int gai,
                     bool again)
{
	struct ssrf_miss *slot;

	pthread_mutex_lock(&m->lock);
	slot = &m->slot[m->next++ % SSRF_MISSES];
	snprintf(slot->host, sizeof(slot->host), "%s", host);
	slot->gai = gai;
	slot->until_ms =
	        vox_mono_ms() + (again ? SSRF_MISS_AGAIN_MS : SSRF_MISS_MS);
	pthread_mutex_unlock(&m->lock);
}

/* A URL taken apart: host without brackets, port, and the host's address
 * when it is a literal (family 0 for a name). */
struct ssrf_url {
	char host[256];
	int port;
	int family;
	unsigned char bytes[16];
	bool localhost; /* a name curl resolves itself, to loopback */
};

static bool has_part(CURLU *u, CURLUPart what)
{
	char *part = NULL;
	bool present =
	        curl_url_get(u, what, &part, 0) == CURLUE_OK && part != NULL;

	curl_free(part);
	return present;
}

/* "localhost", "*.localhost" and those with the root's dot: loopback by
 * definition (RFC 6761), and curl answers them itself (127.0.0.1 and ::1)
 * without a lookup, so they are judged as those two addresses. */
static bool is_localhost(const char *host)
{
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len < 9 || strncasecmp(host + len - 9, "localhost", 9) != 0)
		return false;
	return len == 9 || host[len - 10] == '.';
}

static int url_parse(const char *url, struct ssrf_url *out, vox_error_t *err)
{
	CURLU *u = NULL;
	CURLUcode uc;
	char *scheme = NULL, *host = NULL, *port = NULL;
	size_t hlen;
	struct in_addr v4;
	int rc = VOX_ERR_INVALID;

	if (url == NULL || url[0] == '\0')
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "url is missing");
	if (strlen(url) > SSRF_URL_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "url is longer than %d bytes",
		                     SSRF_URL_MAX);
	u = curl_url();
	if (u == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "url is malformed: %s", curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 &&
	     strcasecmp(scheme, "https") != 0)) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "url must be http or https");
		goto out;
	}
	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
	    has_part(u, CURLUPART_OPTIONS)) {
		vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "url must not contain credentials (user:password@)");
		goto out;
	}
	if (has_part(u, CURLUPART_ZONEID)) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "url must not name an IPv6 zone");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    host[0] == '\0') {
		vox_error_set(err, VOX_ERR_INVALID, false, "url has no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	            CURLUE_OK ||
	    (out->port = (int)strtol(port, NULL, 10)) <= 0 ||
	    out->port > 65535) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "url port must be 1..65535");
		goto out;
	}
	hlen = strlen(host);
	if (host[0] == '[') { /* curl answers IPv6 literals in brackets */
		memcpy(out->host, host + 1, hlen - 2);
		out->host[hlen - 2] = '\0';
	} else if (hlen < sizeof(out->host)) {
		memcpy(out->host, host, hlen + 1);
	} else {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "url host is longer than 255 bytes");
		goto out;
	}
	for (const char *c = out->host; *c != '\0'; c++)
		if ((unsigned char)*c >= 0x80) {
			/* curl would look up the punycode form: the pin would
			 * not apply */
			vox_error_set(err, VOX_ERR_INVALID, false,
			              "url host must be ASCII (write an "
			              "international name as xn--)");
			goto out;
		}
	out->family = 0;
	out->localhost = is_localhost(out->host);
	if (inet_pton(AF_INET6, out->host, out->bytes) == 1) {
		out->family = AF_INET6;
	} else if (inet_pton(AF_INET, out->host, out->bytes) == 1) {
		out->family = AF_INET;
	} else if (inet_aton(out->host, &v4) != 0) {
		/* a numeric form curl left alone: getaddrinfo would read it
		 * as an address, so it is one */
		memcpy(out->bytes, &v4, 4);
		out->family = AF_INET;
	}
	rc = 0;
out:
	curl_free(port);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

/* 0, or VOX_ERR_INVALID naming the class of the address. The address
 * itself only when the URL wrote it: what a name resolved to on our side
 * is not told (the message reaches the customer, who could otherwise map
 * our internal names to addresses). */
static int check_one(const vox_ssrf_t *s, int family,
                     const unsigned char *bytes, const char *verb,
                     vox_error_t *err)
{
	char why[128], text[INET6_ADDRSTRLEN], *detail;

	if (address_allowed(s, family, bytes, why, sizeof(why)))
		return 0;
	if (strcmp(verb, "resolves to") == 0) {
		if ((detail = strstr(why, " (")) != NULL)
			*detail = '\0';
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "url resolves to %s", why);
	}
	inet_ntop(family, bytes, text, sizeof(text));
	return vox_error_set(err, VOX_ERR_INVALID, false, "url %s %s, %s", verb,
	                     text, why);
}

static void target_fill(const struct ssrf_url *parsed, int family,
                        const unsigned char *bytes, vox_ssrf_target_t *out)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(family, bytes, text, sizeof(text));
	memcpy(out->host, parsed->host, sizeof(out->host));
	out->port = parsed->port;
	snprintf(out->address, sizeof(out->address),
	         family == AF_INET6 ? "[%s]" : "%s", text);
	if (parsed->family == AF_INET6)
		/* curl never looks an IPv6 literal up, and its RESOLVE syntax
		 * cannot name one: a removal entry it ignores */
		snprintf(out->resolve, sizeof(out->resolve), "-[%s]:%d",
		         parsed->host, parsed->port);
	else
		snprintf(out->resolve, sizeof(out->resolve), "%s:%d:%s",
		         parsed->host, parsed->port, out->address);
}

static int check_localhost(const vox_ssrf_t *s, const struct ssrf_url *parsed,
                           vox_ssrf_target_t *out, vox_error_t *err)
{
	static const unsigned char v4[4] = {127, 0, 0, 1}, v6[16] = {[15] = 1};
	int rc = check_one(s, AF_INET, v4, "resolves to", err);

	if (rc == 0)
		rc = check_one(s, AF_INET6, v6, "resolves to", err);
	if (rc == 0 && out != NULL)
		target_fill(parsed, AF_INET, v4, out);
	return rc;
}

int vox_ssrf_check_literal(const vox_ssrf_t *s, const char *url,
                           vox_error_t *err)
{
	struct ssrf_url parsed;
	int rc = url_parse(url, &parsed, err);

	if (rc != 0)
		return rc;
	if (parsed.localhost)
		return check_localhost(s, &parsed, NULL, err);
	if (parsed.family == 0)
		return 0;
	return check_one(s, parsed.family, parsed.bytes, "points to", err);
}

int vox_ssrf_check_url(const vox_ssrf_t *s, const char *url,
                       vox_ssrf_target_t *out, vox_error_t *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct ssrf_url parsed;
	const struct addrinfo *first = NULL;
	int rc = url_parse(url, &parsed, err), gai;

	if (rc != 0)
		return rc;
	if (parsed.localhost)
		return check_localhost(s, &parsed, out, err);
	if (parsed.family != 0) {
		rc = check_one(s, parsed.family, parsed.bytes, "points to",
		               err);
		if (rc == 0 && out != NULL)
			target_fill(&parsed, parsed.family, parsed.bytes, out);
		return rc;
	}
	gai = miss_find(s->misses, parsed.host);
	if (gai == 0) {
		gai = getaddrinfo(parsed.host, NULL, &hints, &res);
		if (gai != 0 && gai != EAI_MEMORY && gai != EAI_SYSTEM)
			miss_add(s->misses, parsed.host, gai,
			         gai == EAI_AGAIN || gai == EAI_FAIL);
	}
	if (gai == EAI_AGAIN || gai == EAI_FAIL || gai == EAI_SYSTEM ||
	    gai == EAI_MEMORY)
		return vox_error_set(
		        err, VOX_ERR_NOT_FOUND, true,
		        "url host %s could not be resolved now: %s",
		        parsed.host, gai_strerror(gai));
	if (gai != 0)
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "url host %s does not resolve: %s",
		                     parsed.host, gai_strerror(gai));
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		const unsigned char *bytes;

		if (ai->ai_family == AF_INET)
			bytes = (const unsigned char *)&(
			                (const struct sockaddr_in
			                         *)(const void *)ai->ai_addr)
			                ->sin_addr;
		else if (ai->ai_family == AF_INET6)
			bytes = ((const struct sockaddr_in6 *)(const void *)
			                 ai->ai_addr)
			                ->sin6_addr.s6_addr;
		else
			continue;
		rc = check_one(s, ai->ai_family, bytes, "resolves to", err);
		if (rc != 0)
			goto out;
		if (first == NULL) {
			first = ai;
			if (out != NULL)
				target_fill(&parsed, ai->ai_family, bytes, out);
		}
	}
	if (first == NULL)
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "url host %s has no IPv4 or IPv6 address",
		                   parsed.host);
out:
	freeaddrinfo(res);
	return rc;
}
