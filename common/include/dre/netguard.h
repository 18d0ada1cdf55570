// netguard.h -- outgoing HTTP calls to URLs a tenant configured (webhook
// deliveries, import job callbacks): the SSRF guard and one signed POST.
#ifndef DRE_NETGUARD_H
#define DRE_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

struct sockaddr;

// dre_net_url_check tells whether url may be a target: https (http only
// when insecure), a host, and when the host is an address literal, an
// allowed one. On refusal writes why into why.
bool dre_net_url_check(const char *url, bool insecure, char *why, size_t cap);
// dre_net_addr_allowed: addr is not loopback, private, link-local,
// unique-local, multicast, unspecified or otherwise reserved (always true
// when insecure).
bool dre_net_addr_allowed(const struct sockaddr *addr, bool insecure);

// dre_net_post POSTs the JSON body to url with extra header lines
// ("Name: value"; a NULL-terminated list, may be NULL), connecting only to
// allowed addresses, no proxy, no redirects, within timeout_ms; *code is
// the HTTP status.
CURLcode dre_net_post(const char *url, const char *body, size_t len,
    const char *const *headers, bool insecure, long timeout_ms, long *code);

#endif
