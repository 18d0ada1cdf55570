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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CODE_MAX 64

static const char *host = "127.0.0.1";
static int         port = 8080;
static const char *auth = "YWRtaW46YWRtaW4="; // admin:admin

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng % n);
}

static int
connect_to(void)
{
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t) port) };
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static size_t
build_request(char *out, const char *method, const char *path,
    const char *body)
{
	size_t blen = body ? strlen(body) : 0;
	int    n = sprintf(out,
            "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Basic %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
            method, path, host, port, auth, blen);
	if (blen)
		memcpy(out + n, body, blen);
	return (size_t) n + blen;
}

// call makes one blocking request on fd; the response body goes to out
// (truncated to ocap - 1). Returns the status.
static int
call(int fd, const char *method, const char *path, const char *body,
    char *out, size_t ocap)
{
	static char   req[1 << 16];
	static char   buf[1 << 22];
	static size_t used;
	size_t        len = build_request(req, method, path, body);
	if (write(fd, req, len) != (ssize_t) len) {
		perror("write");
		exit(1);
	}
	for (;;) {
		char *hend = memmem(buf, used, "\r\n\r\n", 4);
		if (hend) {
			size_t hlen = (size_t) (hend - buf) + 4;
			char  *cl = memmem(buf, hlen, "ontent-Length:", 14);
			if (!cl)
				cl = memmem(buf, hlen, "ontent-length:", 14);
			size_t clen = cl ? strtoul(cl + 14, NULL, 10) : 0;
			if (used >= hlen + clen) {
				int    status = atoi(buf + 9);
				size_t n = clen < ocap - 1 ? clen : ocap - 1;
				memcpy(out, buf + hlen, n);
				out[n] = 0;
				memmove(buf, buf + hlen + clen, used - hlen - clen);
				used -= hlen + clen;
				return status;
			}
		}
		ssize_t n = read(fd, buf + used, sizeof(buf) - used);
		if (n <= 0) {
			fprintf(stderr, "connection lost during setup\n");
			exit(1);
		}
		used += (size_t) n;
	}
}

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
	int   fd = connect_to();
	char *out = malloc(1 << 22);
	char  body[512], id[64], batch[64], status[32], path[256];
	sprintf(body,
	    "{\"name\":\"Bench %d-%lld\",\"type\":\"INDIVIDUAL\","
	    "\"prefix\":\"BN\",\"codeLength\":10}",
	    (int) getpid(), (long long) now_ns());
	int st = call(fd, "POST", "/api/v1/CouponTypes", body, out, 1 << 22);
	if (st != 201 || !json_str(out, "id", id, sizeof(id))) {
		fprintf(stderr, "create coupon type: %d %s\n", st, out);
		exit(1);
	}
	sprintf(body, "{\"couponTypeId\":\"%s\",\"numberOfCodes\":%d}", id, n);
	st = call(fd, "POST", "/api/v1/CouponCodeBatches", body, out, 1 << 22);
	if (st != 202 || !json_str(out, "id", batch, sizeof(batch))) {
		fprintf(stderr, "create batch: %d %s\n", st, out);
		exit(1);
	}
	int64_t t0 = now_ns(), deadline = t0 + 300 * 1000000000ll;
	for (;;) {
		sprintf(path, "/api/v1/CouponCodeBatches/%s", batch);
		st = call(fd, "GET", path, NULL, out, 1 << 22);
		if (st == 200 && json_str(out, "status", status, sizeof(status))
		    && strcmp(status, "COMPLETED") == 0)
			break;
		if (now_ns() > deadline || strcmp(status, "FAILED") == 0) {
			fprintf(stderr, "batch did not complete: %s\n", out);
			exit(1);
		}
		usleep(20000);
	}
	fprintf(stderr, "setup: %d codes generated in %.2f s\n", n,
	    (double) (now_ns() - t0) / 1e9);
	codes = calloc((size_t) n, CODE_MAX);
	for (int skip = 0; skip < n; skip += 1000) {
		sprintf(path,
		    "/api/v1/CouponCodes?couponTypeId=%s&$top=1000&$skip=%d", id,
		    skip);
		st = call(fd, "GET", path, NULL, out, 1 << 22);
		if (st != 200) {
			fprintf(stderr, "list codes: %d %s\n", st, out);
			exit(1);
		}
		const char *p = out;
		while (ncodes < (size_t) n
		    && (p = json_str(p, "code", codes[ncodes], CODE_MAX)) != NULL)
			ncodes++;
	}
	free(out);
	close(fd);
}

typedef struct {
	int     fd;
	char    in[1 << 16];
	size_t  used;
	char    out[1024];
	size_t  olen, woff;
	int64_t start;
	bool    busy;
} conn;

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
	return (x > y) - (x < y);
}

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
		sprintf(body, "{\"code\":\"%s\",\"transactionId\":\"BENCH-%zu\"}",
		    codes[i], i);
	} else {
		sprintf(body, "{\"code\":\"%s\"}", codes[rnd((uint32_t) ncodes)]);
	}
	c->olen = build_request(c->out, "POST",
	    reserve ? "/pos/coupons/reserve" : "/pos/coupons/validate", body);
	c->woff = 0;
	return true;
}

static int
phase(const char *name, bool reserve, int nconn, int duration)
{
	int     ep = epoll_create1(0);
	conn   *cs = calloc((size_t) nconn, sizeof(conn));
	size_t  lcap = 1 << 22, nlat = 0, next_code = 0;
	int64_t *lat = malloc(lcap * sizeof(int64_t));
	long     non200 = 0;
	for (int i = 0; i < nconn; i++) {
		cs[i].fd = connect_to();
		fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
			.data.ptr = &cs[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	int64_t start = now_ns(), end = start + (int64_t) duration * 1000000000;
	int     busy = 0;
	bool    more = true;
	for (;;) {
		int64_t t = now_ns();
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
				ssize_t w = write(
				    c->fd, c->out + c->woff, c->olen - c->woff);
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
			char *hend = memmem(c->in, c->used, "\r\n\r\n", 4);
			if (!hend)
				continue;
			size_t hlen = (size_t) (hend - c->in) + 4;
			char  *cl = memmem(c->in, hlen, "ontent-Length:", 14);
			if (!cl)
				cl = memmem(c->in, hlen, "ontent-length:", 14);
			size_t clen = cl ? strtoul(cl + 14, NULL, 10) : 0;
			if (c->used < hlen + clen)
				continue;
			if (atoi(c->in + 9) != 200) {
				if (non200++ < 3)
					fprintf(stderr, "%s: %.*s\n", name,
					    (int) clen, c->in + hlen);
			}
			if (nlat < lcap)
				lat[nlat++] = now_ns() - c->start;
			memmove(c->in, c->in + hlen + clen, c->used - hlen - clen);
			c->used -= hlen + clen;
			c->busy = false;
			busy--;
		}
	}
	double secs = (double) (now_ns() - start) / 1e9;
	qsort(lat, nlat, sizeof(int64_t), cmp_i64);
#define PCT(p)                                                                \
	(nlat ? (double) lat[(size_t) ((double) (nlat - 1) * (p))] / 1e6 : 0)
	printf("%-8s %zu requests in %.1fs: %.0f req/s, non-200 %ld; latency ms "
	       "p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
	    name, nlat, secs, (double) nlat / secs, non200, PCT(0.50),
	    PCT(0.99), PCT(0.999), PCT(1.0));
	for (int i = 0; i < nconn; i++)
		close(cs[i].fd);
	close(ep);
	free(cs);
	free(lat);
	return non200 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	int nconn = 16, duration = 10, ncode = 20000;
	static const struct option opts[] = { { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' }, { "connections", 1, 0, 'c' },
		{ "duration", 1, 0, 'd' }, { "codes", 1, 0, 'n' },
		{ 0, 0, 0, 0 } };
	for (int c; (c = getopt_long(argc, argv, "h:p:c:d:n:", opts, NULL))
	     != -1;) {
		switch (c) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 'd': duration = atoi(optarg); break;
		case 'n': ncode = atoi(optarg); break;
		default:
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
