/*
 * vox_ssrf: where customer-given URLs (webhook endpoints, usage trigger
 * callbacks) may send us. One policy, used at create, update, test and
 * delivery (docs/NOTIFICATIONS.md "Destination filter").
 *
 * Refused: loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16,
 * fc00::/7), link-local (169.254/16, fe80::/10), CGNAT 100.64/10, 0/8,
 * multicast (224/4, ff00::/8), broadcast and 240/4, documentation and
 * benchmark ranges, the cloud metadata addresses (169.254.169.254,
 * fd00:ec2::254), IPv6 site-local (fec0::/10), ::/128, every IPv6 address
 * outside 2000::/3, and the IPv6 forms that embed one of these IPv4
 * addresses (::ffff:a.b.c.d mapped, ::a.b.c.d compatible (refused even
 * around a public address), 64:ff9b::/96 NAT64, 2002::/16 6to4); unless an
 * address is inside the operator's allowlist (VOX_WEBHOOK_ALLOW_CIDRS).
 * "localhost" and "*.localhost" are 127.0.0.1 and ::1 without a lookup
 * (curl answers them itself). Thread-safe once made.
 */
#ifndef VOX_SSRF_H
#define VOX_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "vox_error.h"

typedef struct vox_ssrf vox_ssrf_t;

/* allow_cidrs: "" or NULL, or comma-separated CIDRs ("127.0.0.77/32,
 * fd00::/8"; a bare address is that one host; bits set after the prefix
 * are an error); NULL with err (VOX_ERR_INVALID naming the bad entry). */
vox_ssrf_t *vox_ssrf_new(const char *allow_cidrs, vox_error_t *err);
void vox_ssrf_destroy(vox_ssrf_t *s);

/* Whether a connection to addr may be opened (same shape as
 * vox_upstream_allow_fn, so it can be that hook: arg is the vox_ssrf_t). */
bool vox_ssrf_allow_addr(void *s, const struct sockaddr *addr, socklen_t len);

/* The checked destination of a URL: what to connect to, and the
 * CURLOPT_RESOLVE line that pins it ("host:port:address"). */
typedef struct vox_ssrf_target {
	char host[256];    /* as in the URL, without brackets */
	int port;          /* explicit or the scheme's */
	char address[64];  /* the checked numeric address (IPv6 bracketed) */
	char resolve[400]; /* "host:port:address" for CURLOPT_RESOLVE */
} vox_ssrf_target_t;
/* An IPv6 literal host ("https://[2606:4700::1]/") cannot be named in
 * CURLOPT_RESOLVE's syntax and is never looked up by curl: its resolve is
 * "-[addr]:port", a removal entry curl 7.88 ignores, so every target's
 * resolve can be appended to the list as it is. */

/* Checks url: http(s) only, a host, no userinfo, at most 2048 bytes; then
 * resolves the host once (getaddrinfo; a literal address is not looked
 * up) and checks every address. 0 and *out filled (the first address) when
 * all are allowed. Otherwise:
 *   VOX_ERR_INVALID  the URL is malformed, or an address is refused
 *                    (message says which, e.g. "url resolves to 127.0.0.1,
 *                    a loopback address");
 *   VOX_ERR_NOT_FOUND the name does not resolve (callers at create time
 *                    accept it; delivery fails the attempt); retriable
 *                    set when the resolver failed for now (EAI_AGAIN);
 * message never longer than err's buffer. */
int vox_ssrf_check_url(const vox_ssrf_t *s, const char *url,
                       vox_ssrf_target_t *out, vox_error_t *err);

/* The same checks without a lookup: for create-time validation of a URL
 * whose host is a literal address or a name (a name passes here, but for
 * localhost names). */
int vox_ssrf_check_literal(const vox_ssrf_t *s, const char *url,
                           vox_error_t *err);

#endif
