// webhook/guard.c -- the SSRF guard: which URLs and addresses a delivery
// may reach. The URL is checked when a subscription is written, the
// address on every connection (deliver.c opens its sockets through
// dre_net_addr_allowed), so a name that resolves to an internal address later
// is refused then.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "dre/netguard.h"

static bool
v4_allowed(uint32_t a)
{
	uint8_t b0 = a >> 24, b1 = (a >> 16) & 255;
	if (b0 == 0 || b0 == 10 || b0 == 127) // this, private, loopback
		return false;
	if (b0 == 100 && (b1 & 0xc0) == 64) // 100.64/10 shared (CGNAT)
		return false;
	if (b0 == 169 && b1 == 254) // link-local (cloud metadata)
		return false;
	if (b0 == 172 && (b1 & 0xf0) == 16) // 172.16/12
		return false;
	if (b0 == 192 && b1 == 168) // 192.168/16
		return false;
	if (b0 == 192 && b1 == 0 && ((a >> 8) & 255) == 0) // 192.0.0/24
		return false;
	if (b0 == 198 && (b1 & 0xfe) == 18) // 198.18/15 benchmarking
		return false;
	if (b0 >= 224) // multicast, reserved, broadcast
		return false;
	return true;
}

bool
dre_net_addr_allowed(const struct sockaddr *addr, bool insecure)
{
	if (insecure)
		return true;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *) addr;
		return v4_allowed(ntohl(in->sin_addr.s_addr));
	}
	if (addr->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *in6 = (const void *) addr;
	const uint8_t             *b = in6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)
	    || IN6_IS_ADDR_V4COMPAT(&in6->sin6_addr)) {
		uint32_t a = (uint32_t) b[12] << 24 | (uint32_t) b[13] << 16
		    | (uint32_t) b[14] << 8 | b[15];
		return v4_allowed(a);
	}
	if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)
	    || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
		return false;
	if (b[0] == 0xff) // multicast
		return false;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) // fe80::/10 link-local
		return false;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) // fec0::/10 site-local
		return false;
	if ((b[0] & 0xfe) == 0xfc) // fc00::/7 unique-local
		return false;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return false; // 2001:db8::/32 documentation
	if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
		return false; // 64:ff9b::/96 NAT64 may reach private v4
	return true;
}

bool
dre_net_url_check(const char *url, bool insecure, char *why, size_t cap)
{
	CURLU *u = curl_url();
	char  *scheme = NULL, *host = NULL;
	bool   ok = false;
	if (u == NULL) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	if (strlen(url) > 2000
	    || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
	    || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
	    || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
	    || host[0] == '\0') {
		snprintf(why, cap, "url must be an absolute https URL");
		goto out;
	}
	if (strcmp(scheme, "https") != 0
	    && !(insecure && strcmp(scheme, "http") == 0)) {
		snprintf(why, cap, "url must use https");
		goto out;
	}
	// An address literal is checked now; a name on every connection.
	char lit[64];
	snprintf(lit, sizeof lit, "%s", host);
	size_t ll = strlen(lit);
	if (lit[0] == '[' && ll > 2 && lit[ll - 1] == ']') {
		memmove(lit, lit + 1, ll - 2);
		lit[ll - 2] = '\0';
	}
	struct sockaddr_in  a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	bool                literal = false, allowed = true;
	if (inet_pton(AF_INET, lit, &a4.sin_addr) == 1) {
		literal = true;
		allowed
		    = dre_net_addr_allowed((struct sockaddr *) &a4, insecure);
	} else if (inet_pton(AF_INET6, lit, &a6.sin6_addr) == 1) {
		literal = true;
		allowed
		    = dre_net_addr_allowed((struct sockaddr *) &a6, insecure);
	}
	if (literal && !allowed) {
		snprintf(why, cap,
		    "url must not target a private, loopback, link-local or "
		    "multicast address");
		goto out;
	}
	if (!insecure && strcasecmp(host, "localhost") == 0) {
		snprintf(why, cap, "url must not target localhost");
		goto out;
	}
	ok = true;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

// ---- one POST -----------------------------------------------------------

static curl_socket_t
guarded_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	const bool *insecure = arg;
	(void) purpose;
	if (!dre_net_addr_allowed(&a->addr, *insecure))
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void) p;
	(void) arg;
	return size * n;
}

CURLcode
dre_net_post(const char *url, const char *body, size_t len,
    const char *const *headers, bool insecure, long timeout_ms, long *code)
{
	CURL              *e = curl_easy_init();
	struct curl_slist *h = NULL, *n;
	CURLcode           rc;
	*code = 0;
	if (e == NULL)
		return CURLE_OUT_OF_MEMORY;
	const char *lines[] = { "Content-Type: application/json",
		"User-Agent: DRE/1", "Expect:" };
	for (size_t i = 0; i < 3 || (headers && headers[i - 3]); i++) {
		const char *l = i < 3 ? lines[i] : headers[i - 3];
		if ((n = curl_slist_append(h, l)) == NULL) {
			curl_slist_free_all(h);
			curl_easy_cleanup(e);
			return CURLE_OUT_OF_MEMORY;
		}
		h = n;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(
	    e, CURLOPT_PROTOCOLS_STR, insecure ? "http,https" : "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) len);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, guarded_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &insecure);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return rc;
}
