// httpc.c -- the load generators' shared HTTP/1.1 client and helpers.
#define _GNU_SOURCE // memmem
#include "httpc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *httpc_host = "127.0.0.1";
int         httpc_port = 8080;

// The credential header: $DRE_BENCH_AUTH_HEADER (e.g. "Authorization:
// Bearer eyJ..." or "X-Api-Key: dre_...", to measure what checking them
// costs), else Basic admin:admin.
static const char *
auth(void)
{
	const char *a = getenv("DRE_BENCH_AUTH_HEADER");
	return a != NULL && a[0] != '\0'
	    ? a
	    : "Authorization: Basic YWRtaW46YWRtaW4=";
}

bool
httpc_option(int c, const char *arg)
{
	switch (c) {
	case 'h':
		httpc_host = arg;
		return true;
	case 'p':
		httpc_port = atoi(arg);
		return true;
	default:
		return false;
	}
}

int64_t
httpc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t
httpc_rnd(uint32_t n)
{
	static uint64_t rng = 0x9E3779B97F4A7C15ull;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng % n);
}

int
httpc_connect(void)
{
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t) httpc_port) };
	inet_pton(AF_INET, httpc_host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
httpc_connect_epoll(int ep, void *ptr)
{
	int fd = httpc_connect();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	struct epoll_event ev
	    = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = ptr };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return fd;
}

int
httpc_reconnect_epoll(int ep, int fd, void *ptr)
{
	close(fd); // leaves ep with it
	return httpc_connect_epoll(ep, ptr);
}

int
httpc_wait(int ep, struct epoll_event *evs, int maxevs, int64_t due_ns,
    int64_t max_ns)
{
	int64_t wait = due_ns - httpc_now_ns();
	if (wait < 0)
		wait = 0;
	if (wait > max_ns)
		wait = max_ns;
	struct timespec ts
	    = { (time_t) (wait / 1000000000), (long) (wait % 1000000000) };
	return epoll_pwait2(ep, evs, maxevs, &ts, NULL);
}

size_t
httpc_request(
    char *out, const char *method, const char *path, const char *body)
{
	size_t blen = body ? strlen(body) : 0;
	int    n = sprintf(out,
	       "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n"
	          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	       method, path, httpc_host, httpc_port, auth(), blen);
	if (blen)
		memcpy(out + n, body, blen);
	return (size_t) n + blen;
}

char *
httpc_request_alloc(
    const char *method, const char *path, const char *body, size_t *lenp)
{
	char *r = malloc((body ? strlen(body) : 0) + 512 + strlen(auth()));
	if (r == NULL) {
		perror("malloc");
		exit(1);
	}
	*lenp = httpc_request(r, method, path, body);
	return r;
}

bool
httpc_response(
    const char *buf, size_t used, int *statusp, size_t *hlenp, size_t *clenp)
{
	const char *hend = memmem(buf, used, "\r\n\r\n", 4);
	if (hend == NULL)
		return false;
	size_t      hlen = (size_t) (hend - buf) + 4;
	const char *cl = memmem(buf, hlen, "ontent-Length:", 14);
	if (cl == NULL)
		cl = memmem(buf, hlen, "ontent-length:", 14);
	size_t clen = cl ? strtoul(cl + 14, NULL, 10) : 0;
	if (used < hlen + clen)
		return false;
	*statusp = atoi(buf + 9);
	*hlenp = hlen;
	*clenp = clen;
	return true;
}

int
httpc_call(int fd, const char *method, const char *path, const char *body,
    char *out, size_t ocap)
{
	static char   buf[1 << 22];
	static size_t used;
	size_t        len;
	char         *req = httpc_request_alloc(method, path, body, &len);
	if (write(fd, req, len) != (ssize_t) len) {
		perror("write");
		exit(1);
	}
	free(req);
	for (;;) {
		int    status;
		size_t hlen, clen;
		if (httpc_response(buf, used, &status, &hlen, &clen)) {
			size_t n = clen < ocap - 1 ? clen : ocap - 1;
			memcpy(out, buf + hlen, n);
			out[n] = 0;
			memmove(buf, buf + hlen + clen, used - hlen - clen);
			used -= hlen + clen;
			return status;
		}
		ssize_t n = used < sizeof(buf)
		    ? read(fd, buf + used, sizeof(buf) - used)
		    : -1;
		if (n <= 0) {
			fprintf(stderr, "connection lost\n");
			exit(1);
		}
		used += (size_t) n;
	}
}

void
httpc_wait_up(int fd, int secs, const char *const *services)
{
	static char out[8192];
	int64_t     deadline = httpc_now_ns() + (int64_t) secs * 1000000000;
	for (;;) {
		int st = httpc_call(
		    fd, "GET", "/pos/heartbeat", NULL, out, sizeof(out));
		bool up = true; // whatever the status (503: no evaluator)
		for (size_t i = 0; up && services[i] != NULL; i++) {
			char want[64];
			snprintf(
			    want, sizeof want, "\"%s\":\"UP\"", services[i]);
			up = strstr(out, want) != NULL;
		}
		if (up)
			return;
		if (httpc_now_ns() > deadline) {
			fprintf(stderr,
			    "the services are not UP after %d s: HTTP %d %s\n",
			    secs, st, out);
			exit(1);
		}
		usleep(100000);
	}
}

int
httpc_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
	return (x > y) - (x < y);
}

double
httpc_pct(const int64_t *v, size_t n, double p)
{
	return n ? (double) v[(size_t) ((double) (n - 1) * p)] : 0;
}
