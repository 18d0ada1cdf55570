// test_rpc.c -- in-process REP server and REQ client: routing, errors,
// timeouts and many concurrent asynchronous calls.
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <dlfcn.h>

#include "dre/auth.h"
#include "dre/clock.h"
#include "dre/rpc.h"

static void
h_echo(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	const char *p = dre_rpc_param(call, "id");

	(void) svc;
	dre_buf_printf(&rep->body, "%s|%s|%s|%u|%s|", call->method,
	    call->tenant, call->principal, (unsigned) call->roles,
	    p != NULL ? p : "-");
	dre_buf_append(&rep->body, call->body, call->body_len);
	dre_rpc_reply_json(rep);
	dre_rpc_reply_header(rep, "Location", "/x/1");
	rep->status = 201;
}

static void
h_fail(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	(void) call;
	dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "items[2].quantity",
	    "bad %s", "quantity");
	dre_rpc_reply_detail(
	    rep, "VALIDATION_FAILED", "items[3].unitPrice", "bad %d", 3);
}

static void
h_slow(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	(void) call;
	usleep(300 * 1000);
	dre_buf_puts(&rep->body, "late");
}

// h_defer is inline; it asks for a worker thread (as an evaluate with
// coupons does) and answers from there. It leaves junk in rep before
// deferring, which must not reach the reply.
static void
h_defer(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	if (!call->on_worker) {
		dre_buf_puts(&rep->body, "inline");
		rep->defer = true;
		return;
	}
	dre_buf_printf(&rep->body, "worker:%.*s", (int) call->body_len,
	    (const char *) call->body);
}

static const dre_rpc_route routes[] = {
	{ "test.Defer", h_defer, DRE_RPC_INLINE },
	{ "test.Echo", h_echo },
	{ "test.Fail", h_fail },
	{ "test.Slow", h_slow },
	{ NULL, NULL },
};

static const char *URL = "inproc://test_rpc";

static Dre__RpcReply *
call(dre_rpc_client *c, const char *method, int timeout, dre_err *errp)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__RpcReply  *rep = NULL;
	Dre__Param      p = DRE__PARAM__INIT;
	Dre__Param     *pp = &p;
	char           *roles[2] = { (char *) "Admin", (char *) "POSReader" };

	req.method = (char *) method;
	req.tenant = (char *) "default";
	req.principal = (char *) "admin";
	req.roles = roles;
	req.n_roles = 2;
	req.has_body = 1;
	req.body.data = (uint8_t *) "{}";
	req.body.len = 2;
	p.key = (char *) "id";
	p.value = (char *) "42";
	req.params = &pp;
	req.n_params = 1;
	*errp = dre_rpc_call_sync(c, &req, timeout, &rep);
	return rep;
}

static void
test_routing(void **state)
{
	dre_rpc_server *s;
	dre_rpc_client *c;
	Dre__RpcReply  *rep;
	dre_err         err;
	char            want[128];

	(void) state;
	assert_int_equal(
	    dre_rpc_server_open(&s, URL, routes, NULL, 4), DRE_OK);
	assert_int_equal(dre_rpc_client_open(&c, URL), DRE_OK);

	rep = call(c, "test.Echo", 2000, &err);
	assert_int_equal(err, DRE_OK);
	assert_int_equal(rep->status, 201);
	snprintf(want, sizeof(want), "test.Echo|default|admin|%u|42|{}",
	    (unsigned) (DRE_ROLE(ADMIN) | DRE_ROLE(POS_READER)));
	assert_int_equal(rep->body.len, strlen(want));
	assert_memory_equal(rep->body.data, want, strlen(want));
	assert_string_equal(rep->content_type, "application/json");
	assert_int_equal(rep->n_headers, 1);
	assert_string_equal(rep->headers[0]->key, "Location");
	assert_string_equal(rep->headers[0]->value, "/x/1");
	dre_rpc_reply_msg_free(rep);

	rep = call(c, "test.Defer", 2000, &err);
	assert_int_equal(err, DRE_OK);
	assert_int_equal(rep->status, 200);
	assert_int_equal(rep->body.len, strlen("worker:{}"));
	assert_memory_equal(rep->body.data, "worker:{}", rep->body.len);
	dre_rpc_reply_msg_free(rep);

	rep = call(c, "test.Nope", 2000, &err);
	assert_int_equal(err, DRE_OK);
	assert_int_equal(rep->status, 404);
	assert_string_equal(rep->error_code, "NOT_FOUND");
	dre_rpc_reply_msg_free(rep);

	rep = call(c, "test.Fail", 2000, &err);
	assert_int_equal(err, DRE_OK);
	assert_int_equal(rep->status, 400);
	assert_string_equal(rep->error_code, "VALIDATION_FAILED");
	assert_string_equal(rep->error_target, "items[2].quantity");
	assert_string_equal(rep->error_message, "bad quantity");
	assert_int_equal(rep->n_details, 1);
	assert_string_equal(rep->details[0]->target, "items[3].unitPrice");
	assert_string_equal(rep->details[0]->message, "bad 3");
	dre_rpc_reply_msg_free(rep);

	dre_rpc_client_close(c);
	dre_rpc_server_close(s);
}

// The test links only dre_common, which links nng privately; the raw
// socket calls below are looked up in the already loaded libnng.
typedef struct {
	uint32_t id;
} raw_sock;
#define RAW(name, ret, ...)                                                   \
	ret (*name)(__VA_ARGS__)                                              \
	    = (ret(*)(__VA_ARGS__)) dlsym(RTLD_DEFAULT, #name);               \
	assert_non_null(name)

static void
test_undecodable(void **state)
{
	dre_rpc_server *s;
	raw_sock        sock;
	void           *m;
	Dre__RpcReply  *rep;

	(void) state;
	RAW(nng_req0_open, int, raw_sock *);
	RAW(nng_dial, int, raw_sock, const char *, void *, int);
	RAW(nng_msg_alloc, int, void **, size_t);
	RAW(nng_msg_append, int, void *, const void *, size_t);
	RAW(nng_sendmsg, int, raw_sock, void *, int);
	RAW(nng_recvmsg, int, raw_sock, void **, int);
	RAW(nng_msg_len, size_t, void *);
	RAW(nng_msg_body, void *, void *);
	RAW(nng_msg_free, void, void *);
	RAW(nng_close, int, raw_sock);
	assert_int_equal(
	    dre_rpc_server_open(&s, URL, routes, NULL, 1), DRE_OK);
	assert_int_equal(nng_req0_open(&sock), 0);
	assert_int_equal(nng_dial(sock, URL, NULL, 0), 0);
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, "\xff\xff\xff", 3), 0);
	assert_int_equal(nng_sendmsg(sock, m, 0), 0);
	assert_int_equal(nng_recvmsg(sock, &m, 0), 0);
	rep = dre__rpc_reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	assert_non_null(rep);
	assert_int_equal(rep->status, 400);
	dre_rpc_reply_msg_free(rep);
	nng_msg_free(m);
	nng_close(sock);
	dre_rpc_server_close(s);
}

static void
test_timeout(void **state)
{
	dre_rpc_server *s;
	dre_rpc_client *c;
	Dre__RpcReply  *rep;
	dre_err         err;
	int64_t         t0;

	(void) state;
	assert_int_equal(
	    dre_rpc_server_open(&s, URL, routes, NULL, 2), DRE_OK);
	assert_int_equal(dre_rpc_client_open(&c, URL), DRE_OK);
	t0 = dre_mono_ms();
	rep = call(c, "test.Slow", 100, &err);
	assert_null(rep);
	assert_int_equal(err, DRE_ETIMEOUT);
	assert_true(dre_mono_ms() - t0 < 280);
	// The client stays usable after a timed-out call.
	rep = call(c, "test.Echo", 2000, &err);
	assert_int_equal(err, DRE_OK);
	assert_int_equal(rep->status, 201);
	dre_rpc_reply_msg_free(rep);
	dre_rpc_client_close(c);
	dre_rpc_server_close(s);
}

static void
test_unreachable(void **state)
{
	dre_rpc_client *c;
	Dre__RpcReply  *rep;
	dre_err         err;

	(void) state;
	// Nothing listens: the call fails within its timeout, never blocks.
	assert_int_equal(dre_rpc_client_open(&c, "tcp://127.0.0.1:1"), DRE_OK);
	rep = call(c, "test.Echo", 100, &err);
	assert_null(rep);
	assert_true(err == DRE_EUNAVAIL || err == DRE_ETIMEOUT);
	// After the grace period calls fail at once.
	usleep(1100 * 1000);
	int64_t t0 = dre_mono_ms();
	rep = call(c, "test.Echo", 1000, &err);
	assert_null(rep);
	assert_int_equal(err, DRE_EUNAVAIL);
	assert_true(dre_mono_ms() - t0 < 50);
	dre_rpc_client_close(c);
}

#define NASYNC 200

typedef struct {
	atomic_int calls[NASYNC];
	atomic_int done;
	atomic_int ok;
} async_state;

typedef struct {
	async_state *st;
	int          i;
} async_arg;

static void
async_done(void *arg, dre_err err, Dre__RpcReply *rep)
{
	async_arg *a = arg;

	atomic_fetch_add(&a->st->calls[a->i], 1);
	if (err == DRE_OK && rep != NULL && rep->status == 201)
		atomic_fetch_add(&a->st->ok, 1);
	dre_rpc_reply_msg_free(rep);
	atomic_fetch_add(&a->st->done, 1);
}

// free_tcp_url writes a tcp:// URL on a loopback port nobody uses now, so
// parallel test runs never collide on a fixed port.
static void
free_tcp_url(char *url, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t          len = sizeof(sa);
	int                fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	snprintf(url, cap, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	close(fd);
}

static void
test_async_many(void **state)
{
	dre_rpc_server    *s;
	dre_rpc_client    *c;
	static async_state st;
	static async_arg   args[NASYNC];
	Dre__RpcRequest    req = DRE__RPC_REQUEST__INIT;

	(void) state;
	char url[64];

	memset(&st, 0, sizeof(st));
	free_tcp_url(url, sizeof(url));
	assert_int_equal(
	    dre_rpc_server_open(&s, url, routes, NULL, 8), DRE_OK);
	assert_int_equal(dre_rpc_client_open(&c, url), DRE_OK);
	req.method = (char *) "test.Echo";
	for (int i = 0; i < NASYNC; i++) {
		args[i].st = &st;
		args[i].i = i;
		assert_int_equal(
		    dre_rpc_call_async(c, &req, 5000, async_done, &args[i]),
		    DRE_OK);
	}
	for (int i = 0; i < 500 && atomic_load(&st.done) < NASYNC; i++)
		usleep(10 * 1000);
	assert_int_equal(atomic_load(&st.done), NASYNC);
	assert_int_equal(atomic_load(&st.ok), NASYNC);
	// A little longer: nothing may complete twice.
	usleep(50 * 1000);
	for (int i = 0; i < NASYNC; i++)
		assert_int_equal(atomic_load(&st.calls[i]), 1);
	dre_rpc_client_close(c);
	dre_rpc_server_close(s);
}

static void
test_async_close_inflight(void **state)
{
	dre_rpc_server    *s;
	dre_rpc_client    *c;
	static async_state st;
	static async_arg   args[4];
	Dre__RpcRequest    req = DRE__RPC_REQUEST__INIT;

	(void) state;
	memset(&st, 0, sizeof(st));
	assert_int_equal(
	    dre_rpc_server_open(&s, URL, routes, NULL, 4), DRE_OK);
	assert_int_equal(dre_rpc_client_open(&c, URL), DRE_OK);
	req.method = (char *) "test.Slow";
	for (int i = 0; i < 4; i++) {
		args[i].st = &st;
		args[i].i = i;
		assert_int_equal(
		    dre_rpc_call_async(c, &req, 5000, async_done, &args[i]),
		    DRE_OK);
	}
	usleep(20 * 1000);
	// Closing reports every call in flight, exactly once.
	dre_rpc_client_close(c);
	assert_int_equal(atomic_load(&st.done), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(atomic_load(&st.calls[i]), 1);
	dre_rpc_server_close(s);
}

static void
test_reply_helpers(void **state)
{
	dre_rpc_call    c;
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;

	(void) state;
	memset(&c, 0, sizeof(c));
	c.req = &req;
	assert_null(dre_rpc_param(&c, "id"));
	dre_rpc_server_close(NULL);
	dre_rpc_client_close(NULL);
	dre_rpc_reply_msg_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_undecodable),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_async_many),
		cmocka_unit_test(test_async_close_inflight),
		cmocka_unit_test(test_reply_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
