// httpc.h -- what the HTTP load generators (dre-bench-*) share: a
// keep-alive HTTP/1.1 client for the gateway, timing, random numbers,
// percentiles.
#ifndef DRE_BENCH_HTTPC_H
#define DRE_BENCH_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const char *httpc_host; // default 127.0.0.1
extern int         httpc_port; // default 8080

// httpc_option takes the options every load generator has: -h/--host and
// -p/--port. Returns false for any other option letter.
bool httpc_option(int c, const char *arg);

int64_t httpc_now_ns(void); // monotonic
// httpc_rnd is a fixed-seed xorshift in [0, n): runs repeat.
uint32_t httpc_rnd(uint32_t n);

// httpc_connect opens a blocking TCP_NODELAY connection; exits on failure.
int httpc_connect(void);
// httpc_connect_epoll opens one non-blocking and adds it, edge-triggered
// for reading and writing, to ep with ptr as its data.
int httpc_connect_epoll(int ep, void *ptr);
// httpc_reconnect_epoll closes fd (a connection the server closed while it
// was idle: the gateway does after http.idle_timeout_ms, 60 s) and returns
// a new one added like httpc_connect_epoll's.
int httpc_reconnect_epoll(int ep, int fd, void *ptr);
// httpc_wait is epoll_wait until the monotonic time due_ns (now when it has
// passed), at most max_ns: a wait to the nanosecond, as an open-loop
// generator needs (one rounded down to milliseconds spins through the last
// one, taking the CPU the measured stack needs).
struct epoll_event;
int httpc_wait(int ep, struct epoll_event *evs, int maxevs, int64_t due_ns,
    int64_t max_ns);

// httpc_request writes a request with the credential header
// $DRE_BENCH_AUTH_HEADER (default Basic admin:admin) into out (room for
// strlen(body) + 512 + that header) and returns its length.
size_t httpc_request(
    char *out, const char *method, const char *path, const char *body);
// httpc_request_alloc is httpc_request into memory the caller frees.
char *httpc_request_alloc(
    const char *method, const char *path, const char *body, size_t *lenp);

// httpc_response is true once buf[0..used) begins with a whole response:
// its status, header length and body length.
bool httpc_response(
    const char *buf, size_t used, int *statusp, size_t *hlenp, size_t *clenp);

// httpc_call makes one request on a blocking connection (one at a time per
// process) and copies the body, truncated to ocap - 1, into out. Returns
// the status; exits when the connection is lost.
int httpc_call(int fd, const char *method, const char *path, const char *body,
    char *out, size_t ocap);

// httpc_wait_up polls GET /pos/heartbeat on fd until it names each service
// of the NULL-terminated list "UP" (the stack may lack others, even the
// evaluator: coupons.sh), at most secs seconds; exits when it does not. A
// set-up's writes go to the catalog (and coupon, budget), which may still be
// starting while the gateway already answers: the heartbeat is DEGRADED then.
void httpc_wait_up(int fd, int secs, const char *const *services);

// qsort comparator for int64_t, and the p-quantile (0..1) of sorted v.
int    httpc_cmp_i64(const void *a, const void *b);
double httpc_pct(const int64_t *v, size_t n, double p);

#endif
