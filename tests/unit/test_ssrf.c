/*
 * Tests of vox_ssrf: every refused class of IPv4 and IPv6 address (with
 * the embedded-IPv4 forms), public addresses that pass, the allowlist and
 * its parsing, names (localhost, a .invalid name), the numeric spellings
 * of 127.0.0.1, URL shape (scheme, userinfo, port, 2048 bytes), the
 * target's CURLOPT_RESOLVE line, and real transfers with libcurl: pinned
 * to an allowlisted listener on 127.0.0.77, refused by the connect hook on
 * 127.0.0.1, and an IPv6 literal on ::1.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vox_ssrf.h"

static vox_ssrf_t *ssrf_or_fail(const char *allow)
{
	vox_error_t err = {0};
	vox_ssrf_t *s = vox_ssrf_new(allow, &err);

	cr_assert_not_null(s, "%s: %s", allow, err.message);
	return s;
}

/* url refused as INVALID with a message naming the address and what. */
static void refused(const vox_ssrf_t *s, const char *url, const char *addr,
                    const char *what)
{
	vox_error_t err = {0};
	vox_ssrf_target_t t;

	cr_assert_eq(vox_ssrf_check_url(s, url, &t, &err), VOX_ERR_INVALID,
	             "%s passed", url);
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, addr), "%s: %s", url,
	                   err.message);
	cr_assert_not_null(strstr(err.message, what), "%s: %s", url,
	                   err.message);
	vox_error_clear(&err);
	cr_assert_eq(vox_ssrf_check_literal(s, url, &err), VOX_ERR_INVALID,
	             "%s passed the literal check", url);
	cr_assert_not_null(strstr(err.message, what), "%s", err.message);
}

static void passes(const vox_ssrf_t *s, const char *url)
{
	vox_error_t err = {0};
	vox_ssrf_target_t t;

	cr_assert_eq(vox_ssrf_check_url(s, url, &t, &err), 0, "%s: %s", url,
	             err.message);
	cr_assert_eq(vox_ssrf_check_literal(s, url, &err), 0, "%s: %s", url,
	             err.message);
}

struct addr_case {
	const char *addr;
	const char *what;
};

static void refuse_all(const struct addr_case *cases, size_t n, bool v6)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	char url[128];

	for (size_t i = 0; i < n; i++) {
		snprintf(url, sizeof(url),
		         v6 ? "https://[%s]/hook" : "http://%s/",
		         cases[i].addr);
		refused(s, url, cases[i].addr, cases[i].what);
	}
	vox_ssrf_destroy(s);
}

Test(ssrf, ipv4_classes_refused)
{
	static const struct addr_case cases[] = {
	        {"0.0.0.0", "unspecified"},
	        {"0.1.2.3", "unspecified"},
	        {"10.0.0.1", "private"},
	        {"10.255.255.255", "private"},
	        {"100.64.0.1", "carrier-grade NAT"},
	        {"100.127.255.254", "carrier-grade NAT"},
	        {"127.0.0.1", "loopback"},
	        {"127.255.0.9", "loopback"},
	        {"169.254.1.1", "link-local"},
	        {"169.254.169.254", "metadata"},
	        {"172.16.0.1", "private"},
	        {"172.31.255.255", "private"},
	        {"192.0.0.8", "reserved"},
	        {"192.0.2.10", "documentation"},
	        {"192.88.99.1", "reserved"},
	        {"192.168.1.1", "private"},
	        {"198.18.0.1", "benchmarking"},
	        {"198.19.255.1", "benchmarking"},
	        {"198.51.100.7", "documentation"},
	        {"203.0.113.9", "documentation"},
	        {"224.0.0.1", "multicast"},
	        {"239.255.255.250", "multicast"},
	        {"240.0.0.1", "reserved"},
	        {"255.255.255.254", "reserved"},
	        {"255.255.255.255", "broadcast"},
	};

	refuse_all(cases, sizeof(cases) / sizeof(cases[0]), false);
}

Test(ssrf, ipv4_public_passes)
{
	vox_ssrf_t *s = ssrf_or_fail("");

	/* the neighbours of refused ranges */
	passes(s, "http://8.8.8.8/");
	passes(s, "http://1.1.1.1/");
	passes(s, "http://9.255.255.255/");
	passes(s, "http://11.0.0.0/");
	passes(s, "http://100.63.255.255/");
	passes(s, "http://100.128.0.0/");
	passes(s, "http://126.255.255.255/");
	passes(s, "http://128.0.0.0/");
	passes(s, "http://169.253.255.255/");
	passes(s, "http://172.15.255.255/");
	passes(s, "http://172.32.0.0/");
	passes(s, "http://192.167.255.255/");
	passes(s, "http://192.169.0.0/");
	passes(s, "http://198.17.255.255/");
	passes(s, "http://198.20.0.0/");
	passes(s, "http://223.255.255.255/");
	vox_ssrf_destroy(s);
}

Test(ssrf, ipv6_classes_refused)
{
	static const struct addr_case cases[] = {
	        {"::", "unspecified"},
	        {"::1", "loopback"},
	        {"::ffff:127.0.0.1",
	         "loopback address (IPv4-mapped 127.0.0.1)"},
	        {"::ffff:10.1.2.3", "private address (IPv4-mapped 10.1.2.3)"},
	        {"::ffff:169.254.169.254", "metadata"},
	        {"::127.0.0.1", "loopback address (IPv4-compatible 127.0.0.1)"},
	        {"::8.8.8.8", "deprecated IPv4-compatible"},
	        {"64:ff9b::7f00:1", "loopback address (NAT64 127.0.0.1)"},
	        {"64:ff9b::a9fe:a9fe", "metadata address (NAT64"},
	        {"64:ff9b::c0a8:101", "private address (NAT64 192.168.1.1)"},
	        {"64:ff9b:1::808:808", "local-use NAT64"},
	        {"2002:c0a8:101::1", "private address (6to4 192.168.1.1)"},
	        {"2002:7f00:1::", "loopback address (6to4 127.0.0.1)"},
	        {"2002:a9fe:a9fe::1", "metadata"},
	        {"fc00::1", "private"},
	        {"fd12:3456::1", "private"},
	        {"fd00:ec2::254", "metadata"},
	        {"fe80::1", "link-local"},
	        {"febf::1", "link-local"},
	        {"fec0::1", "site-local"},
	        {"feff::1", "site-local"},
	        {"ff02::1", "multicast"},
	        {"ff0e::101", "multicast"},
	        {"2001:db8::1", "documentation"},
	        {"3fff::1", "documentation"},
	        {"2001::1", "reserved"},    /* Teredo */
	        {"2001:10::1", "reserved"}, /* ORCHID */
	        {"2001:2::1", "benchmarking"},
	        {"100::1", "reserved"}, /* discard-only */
	        {"1::1", "reserved"},
	        {"4000::1", "reserved"},
	        {"5f00::1", "reserved"},
	        {"e000::1", "reserved"},
	};

	refuse_all(cases, sizeof(cases) / sizeof(cases[0]), true);
}

Test(ssrf, ipv6_public_passes)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);

	passes(s, "https://[2606:4700:4700::1111]/");
	passes(s, "https://[2001:4860:4860::8888]:8443/x");
	passes(s, "https://[2001:200::1]/"); /* just after 2001::/23 */
	passes(s, "https://[3ffe::1]/");
	passes(s, "https://[::ffff:8.8.8.8]/");
	passes(s, "https://[64:ff9b::808:808]/");
	passes(s, "https://[2002:808:808::1]/");
	vox_ssrf_destroy(s);
}

Test(ssrf, numeric_spellings_of_loopback_refused)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	static const char *urls[] = {
	        "http://0x7f000001/",      "http://2130706433/",
	        "http://017700000001/",    "http://127.1/",
	        "http://0177.0.0.1/",      "http://0x7f.0.0.1/",
	        "http://127.0.0.1:8080/",  "http://[::ffff:127.0.0.1]/",
	        "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/",
	        "HTTP://127.0.0.1/",
	};

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		refused(s, urls[i], "127.0.0.1", "loopback");
	refused(s, "http://0/", "0.0.0.0", "unspecified");
	vox_ssrf_destroy(s);
}

Test(ssrf, names)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	vox_ssrf_target_t t;
	vox_error_t err = {0};

	cr_assert_eq(vox_ssrf_check_url(s, "http://localhost:8080/", &t, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "loopback"), "%s", err.message);
	/* the class, never the address a name resolved to on our side */
	cr_assert_not_null(strstr(err.message, "resolves to a loopback"), "%s",
	                   err.message);
	cr_assert_null(strstr(err.message, "127.0.0.1"), "%s", err.message);
	/* loopback by name, whatever the resolver says (curl answers these
	 * itself) */
	static const char *local[] = {"https://LocalHost./",
	                              "http://hooks.localhost/",
	                              "http://a.b.LOCALHOST.:8080/"};

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		vox_error_clear(&err);
		cr_assert_eq(vox_ssrf_check_url(s, local[i], &t, &err),
		             VOX_ERR_INVALID, "%s: %s", local[i], err.message);
		cr_assert_not_null(strstr(err.message, "loopback"), "%s",
		                   err.message);
		cr_assert_eq(vox_ssrf_check_literal(s, local[i], &err),
		             VOX_ERR_INVALID, "%s", local[i]);
	}
	vox_error_clear(&err);
	/* a name that merely ends so */
	cr_assert_eq(vox_ssrf_check_literal(s, "http://notlocalhost/", &err),
	             0);
	cr_assert_eq(
	        vox_ssrf_check_url(s, "http://notlocalhost.invalid/", &t, &err),
	        VOX_ERR_NOT_FOUND);
	vox_error_clear(&err);
	cr_assert_eq(vox_ssrf_check_url(s, "https://hooks.voxlink.invalid/x",
	                                &t, &err),
	             VOX_ERR_NOT_FOUND);
	cr_assert_not_null(strstr(err.message, "hooks.voxlink.invalid"), "%s",
	                   err.message);
	/* asked again (now from the misses remembered): the same answer;
	 * localhost is still told apart */
	vox_error_clear(&err);
	cr_assert_eq(vox_ssrf_check_url(s, "https://hooks.voxlink.invalid/y",
	                                &t, &err),
	             VOX_ERR_NOT_FOUND);
	cr_assert_not_null(strstr(err.message, "hooks.voxlink.invalid"), "%s",
	                   err.message);
	vox_error_clear(&err);
	cr_assert_eq(vox_ssrf_check_url(s, "http://localhost/", &t, &err),
	             VOX_ERR_INVALID);
	vox_error_clear(&err);
	/* without a lookup, a name passes */
	cr_assert_eq(vox_ssrf_check_literal(s, "https://hooks.voxlink.invalid/",
	                                    &err),
	             0);
	vox_ssrf_destroy(s);
}

Test(ssrf, names_through_the_allowlist)
{
	vox_ssrf_t *s = ssrf_or_fail("127.0.0.0/8,::1/128");
	vox_ssrf_target_t t;
	vox_error_t err = {0};

	cr_assert_eq(vox_ssrf_check_url(s, "http://localhost:8080/x", &t, &err),
	             0, "%s", err.message);
	cr_assert_str_eq(t.host, "localhost");
	cr_assert_eq(t.port, 8080);
	cr_assert_str_eq(t.address, "127.0.0.1");
	cr_assert_str_eq(t.resolve, "localhost:8080:127.0.0.1");
	vox_ssrf_destroy(s);
	/* both of curl's answers must be admitted */
	s = ssrf_or_fail("127.0.0.0/8");
	cr_assert_eq(vox_ssrf_check_url(s, "http://localhost:8080/x", &t, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "loopback"), "%s", err.message);
	cr_assert_null(strstr(err.message, "::1"), "%s", err.message);
	vox_ssrf_destroy(s);
}

Test(ssrf, url_shape)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	static const char *bad[] = {
	        "",
	        "8.8.8.8/x",
	        "ftp://8.8.8.8/",
	        "file:///etc/passwd",
	        "gopher://8.8.8.8/",
	        "javascript:alert(1)",
	        "http://user:pass@8.8.8.8/",
	        "http://user@8.8.8.8/",
	        "http://:pass@8.8.8.8/",
	        "https://u%40x:p@8.8.8.8/",
	        "http://8.8.8.8:0/",
	        "http://8.8.8.8:65536/",
	        "http://8.8.8.8:-1/",
	        "http://[fe80::1%25eth0]/",
	        "http://[::1/",
	        "http://a b/",
	        "http://\xc3\xb1.example/",
	        "http://",
	};
	vox_error_t err = {0};
	vox_ssrf_target_t t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_error_clear(&err);
		cr_assert_eq(vox_ssrf_check_url(s, bad[i], &t, &err),
		             VOX_ERR_INVALID, "%s", bad[i]);
		cr_assert_neq(err.message[0], '\0');
		cr_assert_eq(vox_ssrf_check_literal(s, bad[i], &err),
		             VOX_ERR_INVALID, "%s", bad[i]);
	}
	cr_assert_eq(vox_ssrf_check_url(s, NULL, &t, &err), VOX_ERR_INVALID);
	cr_assert_eq(vox_ssrf_check_literal(s, NULL, NULL), VOX_ERR_INVALID);
	cr_assert_eq(vox_ssrf_check_url(s, "http://u@8.8.8.8/", &t, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "credentials"), "%s",
	                   err.message);
	cr_assert_eq(vox_ssrf_check_url(s, "ftp://8.8.8.8/", &t, &err),
	             VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "http"), "%s", err.message);
	vox_ssrf_destroy(s);
}

Test(ssrf, url_length)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	char url[2051];
	vox_ssrf_target_t t;
	vox_error_t err = {0};
	size_t head = strlen("http://8.8.8.8/");

	memcpy(url, "http://8.8.8.8/", head);
	memset(url + head, 'a', sizeof(url) - head);
	url[2048] = '\0';
	cr_assert_eq(vox_ssrf_check_url(s, url, &t, &err), 0, "%s",
	             err.message);
	url[2048] = 'a';
	url[2049] = '\0';
	cr_assert_eq(vox_ssrf_check_url(s, url, &t, &err), VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "2048"), "%s", err.message);
	cr_assert_eq(vox_ssrf_check_literal(s, url, &err), VOX_ERR_INVALID);
	vox_ssrf_destroy(s);
}

Test(ssrf, target_fields)
{
	vox_ssrf_t *s = ssrf_or_fail(NULL);
	vox_ssrf_target_t t;
	vox_error_t err = {0};

	cr_assert_eq(
	        vox_ssrf_check_url(s, "http://8.8.8.8:8443/x?y=1", &t, &err),
	        0);
	cr_assert_str_eq(t.host, "8.8.8.8");
	cr_assert_eq(t.port, 8443);
	cr_assert_str_eq(t.address, "8.8.8.8");
	cr_assert_str_eq(t.resolve, "8.8.8.8:8443:8.8.8.8");
	cr_assert_eq(vox_ssrf_check_url(s, "https://0x08080808/", &t, &err), 0);
	cr_assert_str_eq(t.host, "8.8.8.8", "curl's normal form");
	cr_assert_eq(t.port, 443);
	cr_assert_eq(vox_ssrf_check_url(s, "https://[2606:4700:4700::1111]/",
	                                &t, &err),
	             0);
	cr_assert_str_eq(t.host, "2606:4700:4700::1111");
	cr_assert_eq(t.port, 443);
	cr_assert_str_eq(t.address, "[2606:4700:4700::1111]");
	cr_assert_str_eq(t.resolve, "-[2606:4700:4700::1111]:443");
	/* out may be NULL */
	cr_assert_eq(vox_ssrf_check_url(s, "http://1.1.1.1/", NULL, &err), 0);
	vox_ssrf_destroy(s);
}

Test(ssrf, allowlist_admits)
{
	vox_ssrf_t *s = ssrf_or_fail(" 127.0.0.77/32 , fd00::/8,10.0.0.0/8,"
	                             "192.168.7.7");

	passes(s, "http://127.0.0.77:9000/");
	passes(s, "http://[::ffff:127.0.0.77]/");
	passes(s, "http://[fd00::1]/");
	passes(s, "http://[fd00:ec2::254]/"); /* the operator said so */
	passes(s, "http://10.200.0.1/");
	passes(s, "http://192.168.7.7/");
	refused(s, "http://127.0.0.78/", "127.0.0.78", "loopback");
	refused(s, "http://127.0.0.1/", "127.0.0.1", "loopback");
	refused(s, "http://192.168.7.8/", "192.168.7.8", "private");
	refused(s, "http://[fc00::1]/", "fc00::1", "private");
	refused(s, "http://[::1]/", "::1", "loopback");
	vox_ssrf_destroy(s);
}

Test(ssrf, allowlist_parsing)
{
	static const char *good[] = {
	        "",
	        "  ",
	        "0.0.0.0/0",
	        "::/0",
	        "8.8.8.8",
	        "::1",
	        "10.0.0.0/8,  172.16.0.0/12",
	        "2001:db8::/32",
	        "fe80::/10",
	};
	static const char *bad[] = {
	        "10.0.0.1/33",
	        "::/129",
	        "10.1.2.3/8",
	        "abc",
	        "10.0.0.0/",
	        "10.0.0.0/-1",
	        "10.0.0.0/+8",
	        "10.0.0.0/8,",
	        ",",
	        "10.0.0.0/8,,fc00::/7",
	        "/8",
	        "10.0.0.0/0008",
	        "fd00::1/8",
	        "10.0.0.0/8/8",
	        "localhost",
	        "10.0.0.0 /8",
	        "0x0a000000/8",
	        "127.1/32",
	        "aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa/1",
	};
	vox_error_t err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		vox_ssrf_destroy(ssrf_or_fail(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_error_clear(&err);
		cr_assert_null(vox_ssrf_new(bad[i], &err), "%s accepted",
		               bad[i]);
		cr_assert_eq(err.code, VOX_ERR_INVALID, "%s", bad[i]);
		cr_assert_neq(err.message[0], '\0');
	}
	vox_error_clear(&err);
	cr_assert_null(vox_ssrf_new("8.8.8.8/32,10.1.0.0/8", &err));
	cr_assert_not_null(strstr(err.message, "10.1.0.0/8"), "%s",
	                   err.message);
}

static void sin_of(struct sockaddr_in *in, const char *text)
{
	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_port = htons(443);
	cr_assert_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
}

static void sin6_of(struct sockaddr_in6 *in6, const char *text)
{
	memset(in6, 0, sizeof(*in6));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(443);
	cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
}

Test(ssrf, allow_addr_hook)
{
	vox_ssrf_t *s = ssrf_or_fail("127.0.0.77/32");
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr unix_addr = {.sa_family = AF_UNIX};

	sin_of(&in, "127.0.0.77");
	cr_assert(vox_ssrf_allow_addr(s, (struct sockaddr *)&in, sizeof(in)));
	cr_assert_not(vox_ssrf_allow_addr(s, (struct sockaddr *)&in, 8),
	              "short length");
	sin_of(&in, "127.0.0.1");
	cr_assert_not(
	        vox_ssrf_allow_addr(s, (struct sockaddr *)&in, sizeof(in)));
	sin_of(&in, "8.8.8.8");
	cr_assert(vox_ssrf_allow_addr(s, (struct sockaddr *)&in, sizeof(in)));
	cr_assert(
	        vox_ssrf_allow_addr(NULL, (struct sockaddr *)&in, sizeof(in)));
	sin6_of(&in6, "::1");
	cr_assert_not(
	        vox_ssrf_allow_addr(s, (struct sockaddr *)&in6, sizeof(in6)));
	sin6_of(&in6, "::ffff:127.0.0.77");
	cr_assert(vox_ssrf_allow_addr(s, (struct sockaddr *)&in6, sizeof(in6)));
	sin6_of(&in6, "2606:4700:4700::1111");
	cr_assert(vox_ssrf_allow_addr(s, (struct sockaddr *)&in6, sizeof(in6)));
	cr_assert_not(vox_ssrf_allow_addr(s, &unix_addr, sizeof(unix_addr)));
	cr_assert_not(vox_ssrf_allow_addr(s, NULL, 0));
	vox_ssrf_destroy(s);
}

/* A one-connection HTTP server on addr: answers "pinned" and counts. */
struct listener {
	int fd;
	int port;
	int accepted;
	pthread_t thread;
};

static void *listener_run(void *arg)
{
	struct listener *l = arg;
	struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
	                             "Connection: close\r\n\r\npinned";
	char request[2048];

	if (poll(&pfd, 1, 5000) != 1)
		return NULL;
	int conn = accept(l->fd, NULL, NULL);

	if (conn < 0)
		return NULL;
	l->accepted++;
	if (read(conn, request, sizeof(request)) > 0 &&
	    write(conn, answer, sizeof(answer) - 1) < 0)
		l->accepted = -1;
	close(conn);
	return NULL;
}

static void listener_start(struct listener *l, int family, const char *addr)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int one = 1;

	memset(l, 0, sizeof(*l));
	l->fd = socket(family, SOCK_STREAM, 0);
	cr_assert_geq(l->fd, 0);
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		len = sizeof(*in6);
	}
	cr_assert_eq(bind(l->fd, (struct sockaddr *)&ss, len), 0, "bind %s",
	             addr);
	cr_assert_eq(listen(l->fd, 4), 0);
	cr_assert_eq(getsockname(l->fd, (struct sockaddr *)&ss, &len), 0);
	l->port = ntohs(family == AF_INET
	                        ? ((struct sockaddr_in *)&ss)->sin_port
	                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
	cr_assert_eq(pthread_create(&l->thread, NULL, listener_run, l), 0);
}

static void listener_stop(struct listener *l)
{
	shutdown(l->fd, SHUT_RDWR);
	pthread_join(l->thread, NULL);
	close(l->fd);
}

struct transfer {
	vox_ssrf_t *ssrf;
	int asked;
	int refused;
	char body[64];
	size_t body_len;
};

static curl_socket_t open_checked(void *arg, curlsocktype purpose,
                                  struct curl_sockaddr *address)
{
	struct transfer *x = arg;

	(void)purpose;
	x->asked++;
	if (!vox_ssrf_allow_addr(x->ssrf, &address->addr, address->addrlen)) {
		x->refused++;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

static size_t body_keep(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *x = arg;
	size_t len = size * n;

	if (len > sizeof(x->body) - 1 - x->body_len)
		return 0;
	memcpy(x->body + x->body_len, data, len);
	x->body_len += len;
	return len;
}

/* GET url pinned by the target's resolve line, through the hook. */
static CURLcode fetch(struct transfer *x, const char *url,
                      const vox_ssrf_target_t *t)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *pin = NULL;
	CURLcode rc;

	cr_assert_not_null(curl);
	if (t != NULL) {
		pin = curl_slist_append(NULL, t->resolve);
		curl_easy_setopt(curl, CURLOPT_RESOLVE, pin);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_keep);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
	rc = curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	curl_slist_free_all(pin);
	return rc;
}

Test(ssrf, curl_connects_to_the_checked_allowlisted_address, .timeout = 20)
{
	struct listener l;
	struct transfer x = {.ssrf = ssrf_or_fail("127.0.0.77/32")};
	vox_ssrf_target_t t;
	vox_error_t err = {0};
	char url[128];
	char want[128];

	listener_start(&l, AF_INET, "127.0.0.77");
	snprintf(url, sizeof(url), "http://127.0.0.77:%d/hook", l.port);
	cr_assert_eq(vox_ssrf_check_url(x.ssrf, url, &t, &err), 0, "%s",
	             err.message);
	snprintf(want, sizeof(want), "127.0.0.77:%d:127.0.0.77", l.port);
	cr_assert_str_eq(t.resolve, want);
	cr_assert_eq(fetch(&x, url, &t), CURLE_OK);
	listener_stop(&l);
	cr_assert_eq(l.accepted, 1);
	cr_assert_eq(x.asked, 1);
	cr_assert_eq(x.refused, 0);
	cr_assert_str_eq(x.body, "pinned");
	vox_ssrf_destroy(x.ssrf);
}

Test(ssrf, curl_pin_sends_a_name_to_the_checked_address, .timeout = 20)
{
	struct listener l;
	struct transfer x = {.ssrf = ssrf_or_fail("127.0.0.77/32")};
	vox_ssrf_target_t t;
	vox_error_t err = {0};
	char url[128];

	listener_start(&l, AF_INET, "127.0.0.77");
	snprintf(url, sizeof(url), "http://127.0.0.77:%d/", l.port);
	cr_assert_eq(vox_ssrf_check_url(x.ssrf, url, &t, &err), 0);
	/* the line a name gets, for a name no DNS knows: only the pin can
	 * take curl there */
	snprintf(t.resolve, sizeof(t.resolve), "hooks.voxlink.invalid:%d:%s",
	         t.port, t.address);
	snprintf(url, sizeof(url), "http://hooks.voxlink.invalid:%d/", l.port);
	cr_assert_eq(fetch(&x, url, &t), CURLE_OK);
	listener_stop(&l);
	cr_assert_eq(l.accepted, 1);
	cr_assert_str_eq(x.body, "pinned");
	vox_ssrf_destroy(x.ssrf);
}

Test(ssrf, connect_hook_refuses_loopback, .timeout = 20)
{
	struct listener l;
	struct transfer x = {.ssrf = ssrf_or_fail("127.0.0.77/32")};
	char url[128];

	listener_start(&l, AF_INET, "127.0.0.1");
	/* as if a lookup had been skipped or a name rebound */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", l.port);
	cr_assert_eq(fetch(&x, url, NULL), CURLE_COULDNT_CONNECT);
	listener_stop(&l);
	cr_assert_eq(x.refused, 1);
	cr_assert_eq(l.accepted, 0);
	vox_ssrf_destroy(x.ssrf);
}

Test(ssrf, curl_takes_the_line_of_an_ipv6_literal, .timeout = 20)
{
	struct listener l;
	struct transfer x = {.ssrf = ssrf_or_fail("::1/128")};
	vox_ssrf_target_t t;
	vox_error_t err = {0};
	char url[128];

	listener_start(&l, AF_INET6, "::1");
	snprintf(url, sizeof(url), "http://[::1]:%d/", l.port);
	cr_assert_eq(vox_ssrf_check_url(x.ssrf, url, &t, &err), 0, "%s",
	             err.message);
	cr_assert_str_eq(t.address, "[::1]");
	cr_assert_eq(fetch(&x, url, &t), CURLE_OK);
	listener_stop(&l);
	cr_assert_eq(l.accepted, 1);
	cr_assert_str_eq(x.body, "pinned");
	vox_ssrf_destroy(x.ssrf);
}
