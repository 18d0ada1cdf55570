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
// (POST /rc/spi/1.0/sa/cartValidation) instead. --compare R measures both on
// the same connections and the same baskets, alternating R rounds of
// --duration seconds each (evaluate, cart validation, evaluate, ...), so
// that the load of other work on the machine falls on both alike; it prints
// each path's figures and their ratio. DRE_BENCH_TIMELINE=FILE also writes
// each request's due time and latency (see timeline()).
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
	httpc_wait_up(fd, 120, (const char *const[]) { "catalog", NULL });
	int pst = httpc_call(fd, "POST", "/api/v1/PosGroups",
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

// One request set: every basket as /pos/v2/evaluate or as a cart.
typedef struct {
	const char *name;
	char       *req[NBASKETS];
	size_t      len[NBASKETS];
} reqset;

static reqset evals = { "/pos/v2/evaluate", { 0 }, { 0 } };
static reqset carts = { "/rc/spi/1.0/sa/cartValidation", { 0 }, { 0 } };

// build_baskets writes each basket twice from the same draws: as an
// evaluate request and as the POS platform's cart (storeId = the POS group
// code, sku = the article; the article group comes from the article's
// master data in both, as a cart names none).
static void
build_baskets(void)
{
	char *ev = malloc(64 * 1024), *ca = malloc(64 * 1024);
	for (int b = 0; b < NBASKETS; b++) {
		// Realistic mix: most baskets small, a tail up to 40 lines.
		int lines
		    = 1 + (httpc_rnd(4) == 0 ? httpc_rnd(40) : httpc_rnd(12));
		size_t o = (size_t) sprintf(ev,
		    "{\"request\":{\"header\":{\"transactionId\":\"BENCH-%d\"}"
		    ","
		    "\"posGroupCode\":\"BENCH\",\"channel\":\"IN_STORE\","
		    "\"items\":[",
		    b);
		size_t oc = (size_t) sprintf(ca,
		    "{\"cartId\":\"BENCH-%d\",\"storeId\":\"BENCH\","
		    "\"lineItems\":[",
		    b);
		for (int l = 0; l < lines; l++) {
			int a = (int) httpc_rnd(NARTICLES);
			int q = 1 + (int) httpc_rnd(3);
			int eu = 1 + (int) httpc_rnd(60),
			    ct = (int) httpc_rnd(100);
			o += (size_t) sprintf(ev + o,
			    "%s{\"lineReference\":\"L%d\",\"articleNumber\":"
			    "\"A%05d\",\"quantity\":%d,\"unitPrice\":%d.%02d}",
			    l ? "," : "", l + 1, a, q, eu, ct);
			oc += (size_t) sprintf(ca + oc,
			    "%s{\"lineId\":\"L%d\",\"sku\":\"A%05d\","
			    "\"quantity\":%d,\"unitPrice\":%d.%02d}",
			    l ? "," : "", l + 1, a, q, eu, ct);
		}
		sprintf(ev + o, "]}}");
		sprintf(ca + oc, "]}");
		evals.req[b] = httpc_request_alloc(
		    "POST", evals.name, ev, &evals.len[b]);
		carts.req[b] = httpc_request_alloc(
		    "POST", carts.name, ca, &carts.len[b]);
	}
	free(ev);
	free(ca);
}

// What one path measured (over one or more rounds).
typedef struct {
	int64_t *lat;
	int64_t *at; // when each was due, ns from the first run's start
	size_t   n, cap;
	long     errors, non200;
	int64_t  bytes;
	double   secs;
	int64_t  t0; // the first run's start (ns)
} tally;

// run sends requests of rs on the nconn connections for duration seconds
// (open loop at rate when > 0) and adds what it measured to t. Answers of
// requests still in flight at the end are awaited (not counted). False when
// a connection was lost.
static bool
run(int ep, conn *cs, int nconn, const reqset *rs, int duration, double rate,
    tally *t)
{
	int64_t start = httpc_now_ns(),
	        end = start + (int64_t) duration * 1000000000;
	if (t->t0 == 0)
		t->t0 = start;
	int64_t t0 = t->t0;
	int64_t interval = rate > 0 ? (int64_t) (1e9 / rate) : 0;
	int64_t next_due = start;
	int     busy = 0;

	for (;;) {
		int64_t now = httpc_now_ns();
		if (now >= end && busy == 0)
			break;
		// Issue requests on idle connections.
		for (int i = 0; i < nconn && now < end; i++) {
			conn *c = &cs[i];
			if (c->busy)
				continue;
			if (interval && next_due > now)
				break;
			c->busy = true;
			busy++;
			c->due = interval ? next_due : now;
			next_due += interval;
			c->basket = (int) httpc_rnd(NBASKETS);
			c->woff = 0;
			ssize_t n = write(
			    c->fd, rs->req[c->basket], rs->len[c->basket]);
			if (n > 0)
				c->woff = (size_t) n;
		}
		// Until the next send is due (none: an answer), at most 5 ms.
		struct epoll_event evs[64];
		int                n = httpc_wait(ep, evs, 64,
                    interval && now < end ? next_due : INT64_MAX, 5000000);
		for (int e = 0; e < n; e++) {
			conn *c = evs[e].data.ptr;
			if (c->busy && c->woff < rs->len[c->basket]) {
				ssize_t w = write(c->fd,
				    rs->req[c->basket] + c->woff,
				    rs->len[c->basket] - c->woff);
				if (w > 0)
					c->woff += (size_t) w;
			}
			for (;;) {
				ssize_t r = read(c->fd, c->in + c->used,
				    sizeof(c->in) - c->used);
				if (r <= 0) {
					if (r == 0 && !c->busy) {
						// Idle too long (a slow rate
						// leaves most connections so).
						c->fd = httpc_reconnect_epoll(
						    ep, c->fd, c);
						c->used = 0;
						break;
					}
					if (r == 0 || (errno != EAGAIN)) {
						t->errors++;
						fprintf(stderr,
						    "connection lost: %s "
						    "(read %zd)\n",
						    r == 0 ? "closed by server"
						           : strerror(errno),
						    r);
						return false;
					}
					break;
				}
				c->used += (size_t) r;
			}
			int    status;
			size_t hlen, clen;
			if (!c->busy
			    || !httpc_response(
			        c->in, c->used, &status, &hlen, &clen))
				continue;
			int64_t done = httpc_now_ns();
			if (c->due < end) {
				if (status != 200)
					t->non200++;
				t->bytes += (int64_t) (hlen + clen);
				if (t->n < t->cap) {
					t->at[t->n] = c->due - t0;
					t->lat[t->n++] = done - c->due;
				}
			}
			memmove(
			    c->in, c->in + hlen + clen, c->used - hlen - clen);
			c->used -= hlen + clen;
			c->busy = false;
			busy--;
		}
	}
	t->secs += (double) (end - start) / 1e9;
	return true;
}

#define PCT(t, p) (httpc_pct((t)->lat, (t)->n, (p)) / 1e6)

// timeline writes "due_ms latency_us" per answered request, in the order
// they were due, to the file $DRE_BENCH_TIMELINE (where a latency tail
// comes from: spread out, or stalls at some moments).
static void
timeline(const tally *t)
{
	const char *path = getenv("DRE_BENCH_TIMELINE");
	FILE       *f = path != NULL && path[0] ? fopen(path, "w") : NULL;
	if (f == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		fprintf(f, "%.3f %.1f\n", (double) t->at[i] / 1e6,
		    (double) t->lat[i] / 1e3);
	fclose(f);
}

static void
report(const char *name, tally *t)
{
	timeline(t);
	qsort(t->lat, t->n, sizeof(int64_t), httpc_cmp_i64);
	if (name != NULL)
		printf("%s\n  ", name);
	printf("requests %zu in %.1fs: %.0f req/s, %.1f MB/s, non-200 %ld, "
	       "errors %ld\n",
	    t->n, t->secs, (double) t->n / t->secs,
	    (double) t->bytes / t->secs / 1e6, t->non200, t->errors);
	printf("%slatency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max "
	       "%.3f\n",
	    name != NULL ? "  " : "", PCT(t, 0.50), PCT(t, 0.90), PCT(t, 0.99),
	    PCT(t, 0.999), PCT(t, 1.0));
}

static tally
tally_new(void)
{
	tally t = { 0 };
	t.cap = 1 << 22;
	t.lat = malloc(t.cap * sizeof(int64_t));
	t.at = malloc(t.cap * sizeof(int64_t));
	return t;
}

int
main(int argc, char **argv)
{
	int    nconn = 32, duration = 10, setup_n = 0, rounds = 0;
	double rate = 0; // requests per second; 0 = as fast as possible
	bool   bridge = false;
	static const struct option opts[] = { { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' }, { "connections", 1, 0, 'c' },
		{ "duration", 1, 0, 'd' }, { "rate", 1, 0, 'r' },
		{ "setup", 1, 0, 's' }, { "bridge", 0, 0, 'b' },
		{ "compare", 1, 0, 'C' }, { 0, 0, 0, 0 } };
	for (int c;
	     (c = getopt_long(argc, argv, "h:p:c:d:r:s:bC:", opts, NULL))
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
		case 'C':
			rounds = atoi(optarg);
			break;
		default:
			if (httpc_option(c, optarg))
				break;
			fprintf(stderr,
			    "usage: dre-bench-evaluate [--host H] [--port P] "
			    "[--connections N] [--duration S] [--rate R] "
			    "[--setup NPROMOS] [--bridge | --compare "
			    "ROUNDS]\n");
			return 2;
		}
	}
	if (setup_n > 0)
		setup(setup_n);
	build_baskets();

	int   ep = epoll_create1(0);
	conn *cs = calloc((size_t) nconn, sizeof(conn));
	for (int i = 0; i < nconn; i++)
		cs[i].fd = httpc_connect_epoll(ep, &cs[i]);
	tally te = tally_new(), tc = tally_new();
	if (rounds <= 0) {
		if (!run(ep, cs, nconn, bridge ? &carts : &evals, duration,
		        rate, &te))
			return 1;
		report(NULL, &te);
		return te.non200 || te.errors ? 1 : 0;
	}
	for (int r = 0; r < rounds; r++)
		if (!run(ep, cs, nconn, &evals, duration, rate, &te)
		    || !run(ep, cs, nconn, &carts, duration, rate, &tc))
			return 1;
	report(evals.name, &te);
	report(carts.name, &tc);
	printf("cart validation / evaluate: req/s %.2f, p50 %.2f, p99 %.2f "
	       "(%d rounds of %d s each, %d connections)\n",
	    ((double) tc.n / tc.secs) / ((double) te.n / te.secs),
	    PCT(&tc, 0.50) / PCT(&te, 0.50), PCT(&tc, 0.99) / PCT(&te, 0.99),
	    rounds, duration, nconn);
	return te.non200 || te.errors || tc.non200 || tc.errors ? 1 : 0;
}
