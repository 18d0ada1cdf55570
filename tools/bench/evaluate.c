// evaluate.c -- HTTP load generator for POST /pos/v2/evaluate
// (dre-bench-evaluate).
//
// Keeps N keep-alive connections on one epoll loop, sends pre-built baskets
// of 1-40 lines (realistic mix), and reports req/s and latency percentiles.
// With --rate the load is open-loop: latency is measured from the moment a
// request was due, so a stalled server cannot hide its queueing delay.
// --setup N first creates N active promotions (and their articles) through
// /api/v1 and waits until the evaluator has loaded them. --bridge sends the
// same baskets as the POS platform's carts to the bridge's cart validation
// (POST /rc/spi/1.0/sa/cartValidation) instead.
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

#define NBASKETS  512
#define NARTICLES 5000
#define NGROUPS   200

// setup creates NARTICLES articles (via import) and n promotions: a mix of
// group percentages, per-article absolute discounts and article-list unit
// prices, so every basket line has a few candidates.
static void
setup(int n)
{
	int   fd = httpc_connect();
	char *body = malloc(1 << 20);
	char  out[4096];
	int   pst = httpc_call(fd, "POST", "/api/v1/PosGroups",
	      "{\"code\":\"BENCH\",\"name\":\"Benchmark store\"}", out,
	      sizeof(out));
	if (pst != 201 && pst != 409) {
		fprintf(stderr, "create POS group: %d %s\n", pst, out);
		exit(1);
	}
	for (int base = 0; base < NARTICLES; base += 500) {
		size_t o = (size_t) sprintf(body, "{\"articles\":[");
		for (int i = base; i < base + 500; i++)
			o += (size_t) sprintf(body + o,
			    "%s{\"articleNumber\":\"A%05d\",\"name\":"
			    "\"Article %d\","
			    "\"articleGroupId\":\"G%03d\",\"manufacturerId\":"
			    "\"M%02d\"}",
			    i == base ? "" : ",", i, i, i % NGROUPS, i % 20);
		sprintf(body + o, "]}");
		int st = httpc_call(fd, "POST", "/pos/articles/import", body,
		    out, sizeof(out));
		if (st != 200) {
			fprintf(stderr, "article import: %d %s\n", st, out);
			exit(1);
		}
	}
	for (int i = 0; i < n; i++) {
		char cond[256], act[256];
		// A realistic mix: a tenth are group-wide percentages (half
		// the groups have one), the rest target a few articles each,
		// so a line meets about one promotion on average.
		if (i % 10 == 0) {
			sprintf(cond,
			    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"G%"
			    "03d\"]}",
			    (i / 10) % NGROUPS);
			sprintf(act,
			    "{\"type\":\"ARTICLE_GROUP\",\"discountType\":"
			    "\"PERCENTAGE\","
			    "\"value\":%d,\"target\":{\"articleGroups\":[\"G%"
			    "03d\"]}}",
			    1 + i % 30, (i / 10) % NGROUPS);
		} else if (i % 2 == 0) {
			sprintf(cond,
			    "{\"type\":\"ARTICLE\",\"values\":[\"A%05d\",\"A%"
			    "05d\"]}",
			    (i * 7) % NARTICLES, (i * 13) % NARTICLES);
			sprintf(act,
			    "{\"type\":\"ARTICLE\",\"discountType\":"
			    "\"ABSOLUTE\","
			    "\"value\":0.%02d}",
			    10 + i % 80);
		} else {
			sprintf(cond,
			    "{\"type\":\"ARTICLE_LIST\",\"values\":[\"A%05d\","
			    "\"A%05d\",\"A%05d\"]}",
			    (i * 3) % NARTICLES, (i * 11) % NARTICLES,
			    (i * 17) % NARTICLES);
			sprintf(act,
			    "{\"type\":\"ARTICLE_LIST\",\"discountType\":"
			    "\"UNIT_PRICE\","
			    "\"value\":%d.99,\"maxQuantity\":2}",
			    1 + i % 9);
		}
		sprintf(body,
		    "{\"name\":\"Bench "
		    "%d\",\"type\":\"ARTICLE\",\"status\":\"ACTIVE\","
		    "\"priority\":%d,\"conditions\":[%s],\"actions\":[%s]}",
		    i, i % 200, cond, act);
		int st = httpc_call(
		    fd, "POST", "/api/v1/Promotions", body, out, sizeof(out));
		if (st != 201) {
			fprintf(stderr, "create promotion: %d %s\n", st, out);
			exit(1);
		}
	}
	// Wait (bounded) until the evaluator has the promotions in its index.
	int64_t deadline = httpc_now_ns() + 30 * 1000000000ll;
	for (;;) {
		int st = httpc_call(
		    fd, "GET", "/pos/heartbeat", NULL, out, sizeof(out));
		char *p = strstr(out, "\"promotionsLoaded\":");
		if (st == 200 && p && atoi(p + 19) >= n)
			break;
		if (httpc_now_ns() > deadline) {
			fprintf(stderr,
			    "evaluator did not load %d promotions: %s\n", n,
			    out);
			exit(1);
		}
		usleep(50000);
	}
	free(body);
	close(fd);
}

typedef struct {
	int     fd;
	char    in[1 << 20];
	size_t  used;
	int64_t due; // when the in-flight request was due (ns)
	bool    busy;
	size_t  woff; // bytes of the current request written
	int     basket;
} conn;

static char  *reqs[NBASKETS];
static size_t reqlen[NBASKETS];

static bool bridge;

// build_carts is build_baskets in the POS platform's cart shape.
static void
build_carts(void)
{
	char *body = malloc(64 * 1024);
	for (int b = 0; b < NBASKETS; b++) {
		int lines
		    = 1 + (httpc_rnd(4) == 0 ? httpc_rnd(40) : httpc_rnd(12));
		size_t o = (size_t) sprintf(body,
		    "{\"cartId\":\"BENCH-%d\",\"storeId\":\"BENCH\","
		    "\"lineItems\":[",
		    b);
		for (int l = 0; l < lines; l++) {
			int a = (int) httpc_rnd(NARTICLES);
			o += (size_t) sprintf(body + o,
			    "%s{\"lineId\":\"L%d\",\"sku\":\"A%05d\","
			    "\"quantity\":%d,\"unitPrice\":%d.%02d}",
			    l ? "," : "", l + 1, a, 1 + (int) httpc_rnd(3),
			    1 + (int) httpc_rnd(60), (int) httpc_rnd(100));
		}
		o += (size_t) sprintf(body + o, "]}");
		reqs[b] = httpc_request_alloc(
		    "POST", "/rc/spi/1.0/sa/cartValidation", body, &reqlen[b]);
	}
	free(body);
}

static void
build_baskets(void)
{
	char *body = malloc(64 * 1024);
	for (int b = 0; b < NBASKETS; b++) {
		// Realistic mix: most baskets small, a tail up to 40 lines.
		int lines
		    = 1 + (httpc_rnd(4) == 0 ? httpc_rnd(40) : httpc_rnd(12));
		size_t o = (size_t) sprintf(body,
		    "{\"request\":{\"header\":{\"transactionId\":\"BENCH-%d\"}"
		    ","
		    "\"posGroupCode\":\"BENCH\",\"channel\":\"IN_STORE\","
		    "\"items\":[",
		    b);
		for (int l = 0; l < lines; l++) {
			int a = (int) httpc_rnd(NARTICLES);
			o += (size_t) sprintf(body + o,
			    "%s{\"lineReference\":\"L%d\",\"articleNumber\":"
			    "\"A%05d\","
			    "\"articleGroupId\":\"G%03d\",\"quantity\":%d,"
			    "\"unitPrice\":%d.%02d}",
			    l ? "," : "", l + 1, a, a % NGROUPS,
			    1 + (int) httpc_rnd(3), 1 + (int) httpc_rnd(60),
			    (int) httpc_rnd(100));
		}
		o += (size_t) sprintf(body + o, "]}}");
		reqs[b] = httpc_request_alloc(
		    "POST", "/pos/v2/evaluate", body, &reqlen[b]);
	}
	free(body);
}

int
main(int argc, char **argv)
{
	int    nconn = 32, duration = 10, setup_n = 0;
	double rate = 0; // requests per second; 0 = as fast as possible
	static const struct option opts[]
	    = { { "host", 1, 0, 'h' }, { "port", 1, 0, 'p' },
		      { "connections", 1, 0, 'c' }, { "duration", 1, 0, 'd' },
		      { "rate", 1, 0, 'r' }, { "setup", 1, 0, 's' },
		      { "bridge", 0, 0, 'b' }, { 0, 0, 0, 0 } };
	for (int c; (c = getopt_long(argc, argv, "h:p:c:d:r:s:b", opts, NULL))
	     != -1;) {
		switch (c) {
		case 'c':
			nconn = atoi(optarg);
			break;
		case 'd':
			duration = atoi(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 's':
			setup_n = atoi(optarg);
			break;
		case 'b':
			bridge = true;
			break;
		default:
			if (httpc_option(c, optarg))
				break;
			fprintf(stderr,
			    "usage: dre-bench-evaluate [--host H] [--port P] "
			    "[--connections N] [--duration S] [--rate R] "
			    "[--setup NPROMOS] [--bridge]\n");
			return 2;
		}
	}
	if (setup_n > 0)
		setup(setup_n);
	if (bridge)
		build_carts();
	else
		build_baskets();

	int   ep = epoll_create1(0);
	conn *cs = calloc((size_t) nconn, sizeof(conn));
	for (int i = 0; i < nconn; i++)
		cs[i].fd = httpc_connect_epoll(ep, &cs[i]);
	size_t   lcap = 1 << 22, nlat = 0;
	int64_t *lat = malloc(lcap * sizeof(int64_t));
	int64_t  start = httpc_now_ns(),
	        end = start + (int64_t) duration * 1000000000;
	int64_t interval = rate > 0 ? (int64_t) (1e9 / rate) : 0;
	int64_t next_due = start;
	long    errors = 0, non200 = 0;
	int64_t bytes = 0;

	for (;;) {
		int64_t t = httpc_now_ns();
		if (t >= end)
			break;
		// Issue requests on idle connections.
		for (int i = 0; i < nconn; i++) {
			conn *c = &cs[i];
			if (c->busy)
				continue;
			if (interval && next_due > t)
				break;
			c->busy = true;
			c->due = interval ? next_due : t;
			next_due += interval;
			c->basket = (int) httpc_rnd(NBASKETS);
			c->woff = 0;
			ssize_t n
			    = write(c->fd, reqs[c->basket], reqlen[c->basket]);
			if (n > 0)
				c->woff = (size_t) n;
		}
		struct epoll_event evs[64];
		int64_t            wait_ms
		    = interval ? (next_due - httpc_now_ns()) / 1000000 : 1;
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 5)
			wait_ms = 5;
		int n = epoll_wait(ep, evs, 64, (int) wait_ms);
		for (int e = 0; e < n; e++) {
			conn *c = evs[e].data.ptr;
			if (c->busy && c->woff < reqlen[c->basket]) {
				ssize_t w
				    = write(c->fd, reqs[c->basket] + c->woff,
				        reqlen[c->basket] - c->woff);
				if (w > 0)
					c->woff += (size_t) w;
			}
			for (;;) {
				ssize_t r = read(c->fd, c->in + c->used,
				    sizeof(c->in) - c->used);
				if (r <= 0) {
					if (r == 0 || (errno != EAGAIN)) {
						errors++;
						fprintf(stderr,
						    "connection lost: %s "
						    "(read %zd)\n",
						    r == 0 ? "closed by server"
						           : strerror(errno),
						    r);
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
			if (status != 200)
				non200++;
			bytes += (int64_t) (hlen + clen);
			if (nlat < lcap)
				lat[nlat++] = httpc_now_ns() - c->due;
			memmove(
			    c->in, c->in + hlen + clen, c->used - hlen - clen);
			c->used -= hlen + clen;
			c->busy = false;
		}
	}
	double secs = (double) (httpc_now_ns() - start) / 1e9;
	qsort(lat, nlat, sizeof(int64_t), httpc_cmp_i64);
#define PCT(p) (httpc_pct(lat, nlat, (p)) / 1e6)
	printf("requests %zu in %.1fs: %.0f req/s, %.1f MB/s, non-200 %ld, "
	       "errors %ld\n",
	    nlat, secs, (double) nlat / secs, (double) bytes / secs / 1e6,
	    non200, errors);
	printf(
	    "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
	    PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), PCT(1.0));
	return non200 || errors ? 1 : 0;
}
