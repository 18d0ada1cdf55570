// confirm.c -- load generator for POST /pos/v2/confirm (dre-bench-confirm).
//
// Against a running DRE (gateway, evaluator, budget, reporting, broker):
//  1. setup: a POS group, a budget and a 10 % promotion linked to it;
//  2. throughput: evaluates N transactions (not timed), then confirms them
//     as fast as the connections allow: confirms/s, answer latency. Every
//     answered confirm is durable (synced outbox) and, unless the answer
//     says "queued", acknowledged by Kafka;
//  3. latency at a fixed rate: confirms at --rate for --duration seconds
//     (open loop: latency counts from the moment a confirm was due), then
//     reads every side-effects job and reports confirm -> COMPLETED, i.e.
//     the job's completedAt (when the evaluator folded in the last result,
//     what a poll shows first) minus the moment the confirm was sent, and
//     whether every budget and report figure adds up.
//     DRE_BENCH_TIMELINE=FILE writes one line per confirm of that phase:
//     "transactionId due_ms answer_ms enqueued_ms completed_ms" (due_ms
//     from the phase's first confirm; the others from the moment it was
//     due; the job's times have ms resolution), so a tail can be told
//     apart from stalls and from the side effects' own delay.
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

static char run_id[32];
static bool marks; // --marks: "@mark NAME N" lines for confirm_stack.py
static char promo_id[64], budget_id[64], group_code[48];

static int64_t
wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
json_field(const char *json, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	out[0] = 0;
	if (p == NULL)
		return;
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static void
setup(void)
{
	int  fd = httpc_connect();
	char body[2048], out[8192];
	httpc_wait_up(
	    fd, 120, (const char *const[]) { "catalog", "budget", NULL });
	snprintf(group_code, sizeof(group_code), "CB%s", run_id);
	snprintf(body, sizeof(body), "{\"code\":\"%s\",\"name\":\"Bench\"}",
	    group_code);
	if (httpc_call(fd, "POST", "/api/v1/PosGroups", body, out, sizeof(out))
	    != 201) {
		fprintf(stderr, "POS group: %s\n", out);
		exit(1);
	}
	snprintf(body, sizeof(body),
	    "{\"name\":\"Bench %s\",\"totalAmount\":100000000,"
	    "\"currency\":\"EUR\"}",
	    run_id);
	if (httpc_call(fd, "POST", "/api/v1/Budgets", body, out, sizeof(out))
	    != 201) {
		fprintf(stderr, "budget: %s\n", out);
		exit(1);
	}
	json_field(out, "id", budget_id, sizeof(budget_id));
	snprintf(body, sizeof(body),
	    "{\"name\":\"Bench "
	    "%s\",\"type\":\"ARTICLE\",\"status\":\"ACTIVE\","
	    "\"budgetIds\":[\"%s\"],\"conditions\":[{\"type\":\"ARTICLE\","
	    "\"values\":[\"CB-%s\"]}],\"actions\":[{\"type\":\"ARTICLE\","
	    "\"discountType\":\"PERCENTAGE\",\"value\":10}]}",
	    run_id, budget_id, run_id);
	if (httpc_call(
	        fd, "POST", "/api/v1/Promotions", body, out, sizeof(out))
	    != 201) {
		fprintf(stderr, "promotion: %s\n", out);
		exit(1);
	}
	json_field(out, "id", promo_id, sizeof(promo_id));
	snprintf(body, sizeof(body),
	    "{\"request\":{\"posGroupCode\":\"%s\",\"items\":[{"
	    "\"articleNumber\":"
	    "\"CB-%s\",\"quantity\":1,\"unitPrice\":20.00}]}}",
	    group_code, run_id);
	int64_t deadline = httpc_now_ns() + 30 * 1000000000ll;
	for (;;) {
		int st = httpc_call(
		    fd, "POST", "/pos/v2/simulate", body, out, sizeof(out));
		if (st == 200 && strstr(out, promo_id) != NULL)
			break;
		if (httpc_now_ns() > deadline) {
			fprintf(
			    stderr, "the promotion never applied: %s\n", out);
			exit(1);
		}
		usleep(50000);
	}
	close(fd);
}

// mark tells the wrapper (confirm_stack.py) that a phase starts or ends,
// so it can read each process's CPU time right then.
static void
mark(const char *name, long n)
{
	if (!marks)
		return;
	printf("@mark %s %ld\n", name, n);
	fflush(stdout);
}

// ---- an epoll client: one request at a time per connection ----------------

typedef struct {
	int     fd;
	char    in[1 << 15];
	size_t  used;
	char   *req;
	size_t  len, woff;
	int64_t due; // ns
	long    item;
	bool    busy;
} conn;

typedef char *(*make_fn)(long item, size_t *lenp);
typedef void (*done_fn)(
    long item, int status, const char *body, int64_t latency_ns);

typedef struct {
	long    n;
	int64_t elapsed_ns;
	long    non200;
} run_result;

// run issues items 0..n-1 over nconn connections, at rate per second (0 =
// as fast as possible), for at most n items.
static run_result
run(int nconn, long n, double rate, make_fn make, done_fn done)
{
	int   ep = epoll_create1(0);
	conn *cs = calloc((size_t) nconn, sizeof(conn));
	for (int i = 0; i < nconn; i++)
		cs[i].fd = httpc_connect_epoll(ep, &cs[i]);
	int64_t    interval = rate > 0 ? (int64_t) (1e9 / rate) : 0;
	int64_t    start = httpc_now_ns(), next_due = start;
	long       issued = 0, finished = 0;
	run_result r = { 0 };
	while (finished < n) {
		int64_t t = httpc_now_ns();
		for (int i = 0; i < nconn && issued < n; i++) {
			conn *c = &cs[i];
			if (c->busy)
				continue;
			if (interval && next_due > t)
				break;
			c->busy = true;
			c->due = interval ? next_due : t;
			next_due += interval;
			c->item = issued++;
			free(c->req);
			c->req = make(c->item, &c->len);
			ssize_t w = write(c->fd, c->req, c->len);
			c->woff = w > 0 ? (size_t) w : 0;
		}
		// Until the next send is due (none: an answer), at most 2 ms.
		struct epoll_event evs[64];
		int                ne = httpc_wait(ep, evs, 64,
                    interval && issued < n ? next_due : INT64_MAX, 2000000);
		for (int e = 0; e < ne; e++) {
			conn *c = evs[e].data.ptr;
			if (c->busy && c->woff < c->len) {
				ssize_t w = write(
				    c->fd, c->req + c->woff, c->len - c->woff);
				if (w > 0)
					c->woff += (size_t) w;
			}
			for (;;) {
				ssize_t rd = read(c->fd, c->in + c->used,
				    sizeof(c->in) - 1 - c->used);
				if (rd <= 0) {
					if (rd == 0 && !c->busy) {
						// Idle too long (a slow rate
						// leaves most connections so).
						c->fd = httpc_reconnect_epoll(
						    ep, c->fd, c);
						c->used = 0;
						break;
					}
					if (rd == 0 || errno != EAGAIN) {
						fprintf(stderr,
						    "connection lost: %s "
						    "(item "
						    "%ld, %zu of %zu bytes "
						    "sent, %zu received)\n",
						    rd == 0 ? "closed by the "
						              "server"
						            : strerror(errno),
						    c->item, c->woff, c->len,
						    c->used);
						exit(1);
					}
					break;
				}
				c->used += (size_t) rd;
			}
			int    status;
			size_t hlen, clen;
			if (!httpc_response(
			        c->in, c->used, &status, &hlen, &clen))
				continue;
			char save = c->in[hlen + clen];
			c->in[hlen + clen] = 0;
			if (status != 200)
				r.non200++;
			done(c->item, status, c->in + hlen,
			    httpc_now_ns() - c->due);
			c->in[hlen + clen] = save;
			memmove(
			    c->in, c->in + hlen + clen, c->used - hlen - clen);
			c->used -= hlen + clen;
			c->busy = false;
			finished++;
		}
	}
	r.n = finished;
	r.elapsed_ns = httpc_now_ns() - start;
	for (int i = 0; i < nconn; i++) {
		close(cs[i].fd);
		free(cs[i].req);
	}
	free(cs);
	close(ep);
	return r;
}

// ---- the transactions ------------------------------------------------------

static long     base; // first transaction number of the current phase
static int64_t *lat; // answer latency per item, ns
static int64_t *sent_us; // wall clock a confirm was due, per item
static long     queued;

static char *
make_evaluate(long i, size_t *lenp)
{
	char body[512];
	snprintf(body, sizeof(body),
	    "{\"request\":{\"header\":{\"transactionId\":\"CB-%s-%ld\"},"
	    "\"posGroupCode\":\"%s\",\"channel\":\"ONLINE\",\"items\":[{"
	    "\"lineReference\":\"L1\",\"articleNumber\":\"CB-%s\","
	    "\"quantity\":1,\"unitPrice\":20.00}]}}",
	    run_id, base + i, group_code, run_id);
	return httpc_request_alloc("POST", "/pos/v2/evaluate", body, lenp);
}

static void
done_evaluate(long i, int status, const char *body, int64_t ns)
{
	if (status != 200
	    || strstr(body, "\"transactionCounter\":1") == NULL) {
		fprintf(stderr, "evaluate %ld: %d %.300s\n", base + i, status,
		    body);
		exit(1);
	}
}

static char *
make_confirm(long i, size_t *lenp)
{
	char body[512];
	snprintf(body, sizeof(body),
	    "{\"request\":{\"header\":{\"transactionId\":\"CB-%s-%ld\","
	    "\"transactionCounter\":1},\"transactionId\":\"CB-%s-%ld\","
	    "\"appliedPromotions\":[{\"promotionId\":\"%s\","
	    "\"discountAmount\":{\"value\":2.00,\"currency\":\"EUR\"}}]}}",
	    run_id, base + i, run_id, base + i, promo_id);
	if (sent_us != NULL)
		sent_us[i] = wall_us();
	return httpc_request_alloc("POST", "/pos/v2/confirm", body, lenp);
}

static void
done_confirm(long i, int status, const char *body, int64_t ns)
{
	if (status != 200) {
		fprintf(stderr, "confirm %ld: %d %.300s\n", base + i, status,
		    body);
		exit(1);
	}
	if (strstr(body, "queued") != NULL)
		queued++;
	lat[i] = ns;
}

static void
evaluate_all(int nconn, long n)
{
	run_result r = run(nconn, n, 0, make_evaluate, done_evaluate);
	printf("  prepared %ld iterations (evaluate) in %.1f s: %.0f/s\n", r.n,
	    (double) r.elapsed_ns / 1e9,
	    (double) r.n * 1e9 / (double) r.elapsed_ns);
}

// parse_iso reads "YYYY-MM-DDTHH:MM:SS.mmmZ" as epoch ms.
static int64_t
parse_iso(const char *s)
{
	struct tm tm = { 0 };
	int       ms = 0;
	if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
	        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms)
	    != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm) * 1000 + ms;
}

int
main(int argc, char **argv)
{
	int                        nconn = 128, duration = 10;
	long                       nthroughput = 20000;
	double                     rate = 1000;
	static const struct option opts[]
	    = { { "host", 1, 0, 'h' }, { "port", 1, 0, 'p' },
		      { "connections", 1, 0, 'c' }, { "count", 1, 0, 'n' },
		      { "rate", 1, 0, 'r' }, { "duration", 1, 0, 'd' },
		      { "marks", 0, 0, 'm' }, { 0, 0, 0, 0 } };
	for (int c; (c = getopt_long(argc, argv, "h:p:c:n:r:d:m", opts, NULL))
	     != -1;) {
		switch (c) {
		case 'c':
			nconn = atoi(optarg);
			break;
		case 'n':
			nthroughput = atol(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'd':
			duration = atoi(optarg);
			break;
		case 'm':
			marks = true;
			break;
		default:
			if (httpc_option(c, optarg))
				break;
			fprintf(stderr,
			    "usage: dre-bench-confirm [--host H] [--port P] "
			    "[--connections N] [--count N] [--rate R] "
			    "[--duration S] [--marks]\n");
			return 2;
		}
	}
	snprintf(run_id, sizeof(run_id), "%lx", (long) time(NULL) ^ getpid());
	setup();
	printf("promotion %s, budget %s\n", promo_id, budget_id);

	// Throughput.
	if (nthroughput > 0) {
		printf("throughput: %ld confirms, %d connections\n",
		    nthroughput, nconn);
		base = 0;
		evaluate_all(nconn, nthroughput);
		lat = calloc((size_t) nthroughput, sizeof(int64_t));
		queued = 0;
		fflush(stdout);
		mark("confirm-start", nthroughput);
		run_result r
		    = run(nconn, nthroughput, 0, make_confirm, done_confirm);
		mark("confirm-end", r.n);
		qsort(lat, (size_t) r.n, sizeof(int64_t), httpc_cmp_i64);
		printf("  %ld confirms in %.2f s: %.0f confirms/s durable "
		       "(%ld answered queued, non-200 %ld)\n",
		    r.n, (double) r.elapsed_ns / 1e9,
		    (double) r.n * 1e9 / (double) r.elapsed_ns, queued,
		    r.non200);
		printf("  answer latency ms: p50 %.2f  p99 %.2f  max %.2f\n",
		    httpc_pct(lat, (size_t) r.n, 0.5) / 1e6,
		    httpc_pct(lat, (size_t) r.n, 0.99) / 1e6,
		    httpc_pct(lat, (size_t) r.n, 1.0) / 1e6);
		free(lat);
		// The consumers catch up before the next phase: its latency
		// must not include this backlog.
		int     fd = httpc_connect();
		char    path[256], out[8192];
		int64_t t0 = httpc_now_ns();
		snprintf(path, sizeof(path), "/api/v1/Budgets/%s", budget_id);
		for (;;) {
			httpc_call(fd, "GET", path, NULL, out, sizeof(out));
			char *tx = strstr(out, "\"transactionsCount\":");
			if (tx != NULL && atol(tx + 20) >= nthroughput)
				break;
			if (httpc_now_ns() - t0 > 120 * 1000000000ll) {
				fprintf(stderr, "budget never caught up: %s\n",
				    out);
				exit(1);
			}
			usleep(20000);
		}
		snprintf(path, sizeof(path),
		    "/pos/v2/transactions/CB-%s-%ld/1/side-effects", run_id,
		    nthroughput - 1);
		for (;;) {
			httpc_call(fd, "GET", path, NULL, out, sizeof(out));
			if (strstr(out, "\"COMPLETED\"") != NULL)
				break;
			usleep(20000);
		}
		mark("caught-up", nthroughput);
		printf("  consumers caught up %.1f s after the last confirm\n",
		    (double) (httpc_now_ns() - t0) / 1e9);
		close(fd);
	}

	// Latency at a fixed rate.
	long n = (long) (rate * duration);
	if (n > 0) {
		printf(
		    "fixed rate: %.0f confirms/s for %d s\n", rate, duration);
		base = 1000000;
		evaluate_all(nconn, n);
		lat = calloc((size_t) n, sizeof(int64_t));
		sent_us = calloc((size_t) n, sizeof(int64_t));
		queued = 0;
		run_result r = run(nconn, n, rate, make_confirm, done_confirm);
		printf("  %ld confirms in %.2f s (%ld queued)\n", r.n,
		    (double) r.elapsed_ns / 1e9, queued);
		// sorted apart: lat stays in due order for the timeline
		int64_t *sorted = malloc((size_t) r.n * sizeof(int64_t));
		memcpy(sorted, lat, (size_t) r.n * sizeof(int64_t));
		qsort(sorted, (size_t) r.n, sizeof(int64_t), httpc_cmp_i64);
		printf("  answer latency ms: p50 %.2f  p99 %.2f  max %.2f\n",
		    httpc_pct(sorted, (size_t) r.n, 0.5) / 1e6,
		    httpc_pct(sorted, (size_t) r.n, 0.99) / 1e6,
		    httpc_pct(sorted, (size_t) r.n, 1.0) / 1e6);
		free(sorted);
		// Read every job (after the run: polling during it would add
		// load the POS does not).
		int         fd = httpc_connect();
		int64_t    *done_ms = calloc((size_t) n, sizeof(int64_t));
		char        path[256], out[4096], at[64], enq[64];
		const char *tl = getenv("DRE_BENCH_TIMELINE");
		FILE       *tlf = tl != NULL && tl[0] ? fopen(tl, "w") : NULL;
		long        pending = 0;
		int64_t     deadline = httpc_now_ns() + 60 * 1000000000ll;
		for (long i = 0; i < n; i++) {
			snprintf(path, sizeof(path),
			    "/pos/v2/transactions/CB-%s-%ld/1/side-effects",
			    run_id, base + i);
			for (;;) {
				int st = httpc_call(
				    fd, "GET", path, NULL, out, sizeof(out));
				if (st == 200
				    && strstr(out, "\"COMPLETED\"")) {
					json_field(out, "completedAt", at,
					    sizeof(at));
					done_ms[i] = parse_iso(at) * 1000
					    - sent_us[i];
					json_field(out, "enqueuedAt", enq,
					    sizeof(enq));
					if (tlf != NULL)
						fprintf(tlf,
						    "CB-%s-%ld %.3f %.3f %.3f "
						    "%.3f\n",
						    run_id, base + i,
						    (double) (sent_us[i]
						        - sent_us[0])
						        / 1e3,
						    (double) lat[i] / 1e6,
						    (double) (parse_iso(enq)
						            * 1000
						        - sent_us[i])
						        / 1e3,
						    (double) done_ms[i] / 1e3);
					break;
				}
				if (httpc_now_ns() > deadline) {
					pending++;
					done_ms[i] = INT64_MAX / 2;
					break;
				}
				usleep(10000);
			}
		}
		if (tlf != NULL)
			fclose(tlf);
		qsort(done_ms, (size_t) n, sizeof(int64_t), httpc_cmp_i64);
		printf("  confirm -> side effects COMPLETED ms (completedAt - "
		       "sent, ms resolution): p50 %.1f  p99 %.1f  max %.1f  "
		       "(%ld not completed)\n",
		    httpc_pct(done_ms, (size_t) n, 0.5) / 1e3,
		    httpc_pct(done_ms, (size_t) n, 0.99) / 1e3,
		    httpc_pct(done_ms, (size_t) n, 1.0) / 1e3, pending);
		snprintf(path, sizeof(path), "/api/v1/Budgets/%s", budget_id);
		httpc_call(fd, "GET", path, NULL, out, sizeof(out));
		char *tx = strstr(out, "\"transactionsCount\":");
		printf("  budget: %.80s... transactionsCount %ld (expected "
		       "%ld)\n",
		    strstr(out, "\"consumedAmount\"")
		        ? strstr(out, "\"consumedAmount\"")
		        : out,
		    tx ? atol(tx + 20) : -1, nthroughput + n);
		close(fd);
		free(done_ms);
		free(lat);
		free(sent_us);
	}
	return 0;
}
