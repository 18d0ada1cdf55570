// coupons.c -- HTTP load generator for the coupon endpoints
// (dre-bench-coupons): POST /pos/coupons/validate and /pos/coupons/reserve.
//
// Setup through /api/v1: one INDIVIDUAL coupon type and a CouponCodeBatch of
// --codes codes (waited for), then the codes are listed. Phase 1 validates
// random codes; phase 2 reserves each code once (a distinct transaction per
// call, so every call is a real ACTIVE -> RESERVED transition with a synced
// write). N keep-alive connections on one epoll loop, closed loop; reports
// req/s and latency percentiles per phase.
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"

#define CODE_MAX 64

// json_str finds "key":"value" after p and copies value into out.
static const char *
json_str(const char *p, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *s = strstr(p, pat);
	if (s == NULL)
		return NULL;
	s += strlen(pat);
	size_t n = strcspn(s, "\"");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
	return s + n;
}

static char (*codes)[CODE_MAX];
static size_t ncodes;

// setup creates the type and the batch, waits for it and lists the codes.
static void
setup(int n)
{
	int   fd = httpc_connect();
	char *out = malloc(1 << 22);
	char  body[512], id[64], batch[64], status[32], path[256];
	httpc_wait_up(
	    fd, 120, (const char *const[]) { "catalog", "coupon", NULL });
	sprintf(body,
	    "{\"name\":\"Bench %d-%lld\",\"type\":\"INDIVIDUAL\","
	    "\"prefix\":\"BN\",\"codeLength\":10}",
	    (int) getpid(), (long long) httpc_now_ns());
	int st = httpc_call(
	    fd, "POST", "/api/v1/CouponTypes", body, out, 1 << 22);
	if (st != 201 || !json_str(out, "id", id, sizeof(id))) {
		fprintf(stderr, "create coupon type: %d %s\n", st, out);
		exit(1);
	}
	sprintf(body, "{\"couponTypeId\":\"%s\",\"numberOfCodes\":%d}", id, n);
	st = httpc_call(
	    fd, "POST", "/api/v1/CouponCodeBatches", body, out, 1 << 22);
	if (st != 202 || !json_str(out, "id", batch, sizeof(batch))) {
		fprintf(stderr, "create batch: %d %s\n", st, out);
		exit(1);
	}
	int64_t t0 = httpc_now_ns(), deadline = t0 + 300 * 1000000000ll;
	for (;;) {
		sprintf(path, "/api/v1/CouponCodeBatches/%s", batch);
		st = httpc_call(fd, "GET", path, NULL, out, 1 << 22);
		if (st == 200
		    && json_str(out, "status", status, sizeof(status))
		    && strcmp(status, "COMPLETED") == 0)
			break;
		if (httpc_now_ns() > deadline
		    || strcmp(status, "FAILED") == 0) {
			fprintf(stderr, "batch did not complete: %s\n", out);
			exit(1);
		}
		usleep(20000);
	}
	fprintf(stderr, "setup: %d codes generated in %.2f s\n", n,
	    (double) (httpc_now_ns() - t0) / 1e9);
	codes = calloc((size_t) n, CODE_MAX);
	for (int skip = 0; skip < n; skip += 1000) {
		sprintf(path,
		    "/api/v1/CouponCodes?couponTypeId=%s&$top=1000&$skip=%d",
		    id, skip);
		st = httpc_call(fd, "GET", path, NULL, out, 1 << 22);
		if (st != 200) {
			fprintf(stderr, "list codes: %d %s\n", st, out);
			exit(1);
		}
		const char *p = out;
		while (ncodes < (size_t) n
		    && (p = json_str(p, "code", codes[ncodes], CODE_MAX))
		        != NULL)
			ncodes++;
	}
	free(out);
	close(fd);
}

typedef struct {
	int     fd;
	char    in[1 << 16];
	size_t  used;
	char    out[4096]; // request: body, headers, a token
	size_t  olen, woff;
	int64_t start;
	bool    busy;
} conn;

// next_request fills c->out for the phase; false when the phase has no
// more work (reserve: every code used).
static bool
next_request(conn *c, bool reserve, size_t *next_code)
{
	char body[256];
	if (reserve) {
		if (*next_code >= ncodes)
			return false;
		size_t i = (*next_code)++;
		sprintf(body,
		    "{\"code\":\"%s\",\"transactionId\":\"BENCH-%zu\"}",
		    codes[i], i);
	} else {
		sprintf(body, "{\"code\":\"%s\"}",
		    codes[httpc_rnd((uint32_t) ncodes)]);
	}
	c->olen = httpc_request(c->out, "POST",
	    reserve ? "/pos/coupons/reserve" : "/pos/coupons/validate", body);
	c->woff = 0;
	return true;
}

static int
phase(const char *name, bool reserve, int nconn, int duration)
{
	int      ep = epoll_create1(0);
	conn    *cs = calloc((size_t) nconn, sizeof(conn));
	size_t   lcap = 1 << 22, nlat = 0, next_code = 0;
	int64_t *lat = malloc(lcap * sizeof(int64_t));
	long     non200 = 0, refused = 0;
	for (int i = 0; i < nconn; i++)
		cs[i].fd = httpc_connect_epoll(ep, &cs[i]);
	int64_t start = httpc_now_ns(),
	        end = start + (int64_t) duration * 1000000000;
	int  busy = 0;
	bool more = true;
	for (;;) {
		int64_t t = httpc_now_ns();
		if (t < end && more) {
			for (int i = 0; i < nconn; i++) {
				conn *c = &cs[i];
				if (c->busy)
					continue;
				if (!next_request(c, reserve, &next_code)) {
					more = false;
					break;
				}
				c->busy = true;
				busy++;
				c->start = t;
				ssize_t n = write(c->fd, c->out, c->olen);
				if (n > 0)
					c->woff = (size_t) n;
			}
		}
		if (busy == 0 && (t >= end || !more))
			break;
		struct epoll_event evs[64];
		int                n = epoll_wait(ep, evs, 64, 1);
		for (int e = 0; e < n; e++) {
			conn *c = evs[e].data.ptr;
			if (c->busy && c->woff < c->olen) {
				ssize_t w = write(c->fd, c->out + c->woff,
				    c->olen - c->woff);
				if (w > 0)
					c->woff += (size_t) w;
			}
			for (;;) {
				ssize_t r = read(c->fd, c->in + c->used,
				    sizeof(c->in) - c->used);
				if (r <= 0) {
					if (r == 0 || errno != EAGAIN) {
						fprintf(stderr,
						    "connection lost: %s\n",
						    r == 0 ? "closed"
						           : strerror(errno));
						return 1;
					}
					break;
				}
				c->used += (size_t) r;
			}

			int    status;
			size_t hlen, clen;
			if (!httpc_response(
			        c->in, c->used, &status, &hlen, &clen))
				continue;
			if (status != 200) {
				if (non200++ < 3)
					fprintf(stderr, "%s: %.*s\n", name,
					    (int) clen, c->in + hlen);
			} else if (reserve
			    && memmem(
			           c->in + hlen, clen, "\"reserved\":true", 15)
			        == NULL) {
				// a business refusal is a 200 (§5)
				if (refused++ < 3)
					fprintf(stderr, "%s: %.*s\n", name,
					    (int) clen, c->in + hlen);
			}
			if (nlat < lcap)
				lat[nlat++] = httpc_now_ns() - c->start;
			memmove(
			    c->in, c->in + hlen + clen, c->used - hlen - clen);
			c->used -= hlen + clen;
			c->busy = false;
			busy--;
		}
	}
	double secs = (double) (httpc_now_ns() - start) / 1e9;
	qsort(lat, nlat, sizeof(int64_t), httpc_cmp_i64);
#define PCT(p) (httpc_pct(lat, nlat, (p)) / 1e6)
	printf("%-8s %zu requests in %.1fs: %.0f req/s, non-200 %ld, refused "
	       "%ld; latency ms p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
	    name, nlat, secs, (double) nlat / secs, non200, refused, PCT(0.50),
	    PCT(0.99), PCT(0.999), PCT(1.0));
	for (int i = 0; i < nconn; i++)
		close(cs[i].fd);
	close(ep);
	free(cs);
	free(lat);
	return non200 || refused ? 1 : 0;
}

int
main(int argc, char **argv)
{
	int                        nconn = 16, duration = 10, ncode = 20000;
	static const struct option opts[]
	    = { { "host", 1, 0, 'h' }, { "port", 1, 0, 'p' },
		      { "connections", 1, 0, 'c' }, { "duration", 1, 0, 'd' },
		      { "codes", 1, 0, 'n' }, { 0, 0, 0, 0 } };
	for (int c;
	     (c = getopt_long(argc, argv, "h:p:c:d:n:", opts, NULL)) != -1;) {
		switch (c) {
		case 'c':
			nconn = atoi(optarg);
			break;
		case 'd':
			duration = atoi(optarg);
			break;
		case 'n':
			ncode = atoi(optarg);
			break;
		default:
			if (httpc_option(c, optarg))
				break;
			fprintf(stderr,
			    "usage: dre-bench-coupons [--host H] [--port P] "
			    "[--connections N] [--duration S] [--codes N]\n");
			return 2;
		}
	}
	setup(ncode);
	if (ncodes == 0) {
		fprintf(stderr, "no codes listed\n");
		return 1;
	}
	int rc = phase("validate", false, nconn, duration);
	rc |= phase("reserve", true, nconn, duration);
	return rc;
}
