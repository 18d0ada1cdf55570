// rpc.c -- nng REQ/REP calls carrying the protobuf envelope of rpc.proto.
#define _GNU_SOURCE // vasprintf
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/random.h>

#include "dre/auth.h"
#include "dre/clock.h"
#include "dre/health.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/rpc.h"
#include "dre/svc.h"

// Messages may carry a whole catalog page or a 1000-line basket answer;
// nng's default limit (1 MiB) is too tight for the former.
#define RPC_MAX_MSG (64u << 20)
// A client that has had no connection for this long after opening fails
// calls at once with DRE_EUNAVAIL instead of queueing them until timeout.
#define RPC_CONNECT_GRACE_MS 1000
// The method of a message that carries several calls (RpcRequest.batch),
// and the status of a call in it that must be sent alone.
#define RPC_BATCH "rpc.Batch"
#define RPC_ALONE (-1)
// A coalesced message carries at most this many calls and (past the first
// call) this many bytes of them.
#define RPC_BATCH_MAX   64
#define RPC_BATCH_BYTES (1u << 20)

// ---------------------------------------------------------------- proofs

#define PROOF_MAGIC  "DRE\1"
#define PROOF_MACOFF (DRE_RPC_PROOF_LEN - 32)
// Counters of one client may arrive out of order by this much: calls of
// several threads overtake each other between sealing and sending, and a
// server's workers (the evaluator has 128) between receiving and checking.
// 512 was too few: under a confirm benchmark on a loaded machine a call
// came more than 512 behind and was refused as a replay (1 KiB a client).
#define PEER_WINDOW 8192
// At most this many clients may have called within two TTLs.
#define PEER_MAX (1 << 16)

// The key as an initialised HMAC-SHA256 context: each MAC duplicates it,
// so the key schedule is computed once per process, not once per call.
static EVP_MAC     *rpc_mac;
static EVP_MAC_CTX *rpc_mac_key;
// Each thread keeps its own copy of the keyed context (proof_mac).
static pthread_key_t  mac_tls;
static pthread_once_t mac_tls_once = PTHREAD_ONCE_INIT;
static atomic_uint    mac_generation; // bumped by dre_rpc_key_set

dre_err
dre_rpc_key_set(const uint8_t *key, size_t len)
{
	OSSL_PARAM   params[2];
	EVP_MAC_CTX *c;

	if (key == NULL || len != DRE_RPC_KEY_LEN)
		return DRE_EINVAL;
	if (rpc_mac == NULL
	    && (rpc_mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return DRE_ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((c = EVP_MAC_CTX_new(rpc_mac)) == NULL)
		return DRE_ENOMEM;
	if (EVP_MAC_init(c, key, len, params) != 1) {
		EVP_MAC_CTX_free(c);
		return DRE_ENOMEM;
	}
	EVP_MAC_CTX_free(rpc_mac_key);
	rpc_mac_key = c;
	atomic_fetch_add(&mac_generation, 1);
	return DRE_OK;
}

dre_err
dre_rpc_key_parse(const char *text, uint8_t *key)
{
	char   hex[2 * DRE_RPC_KEY_LEN + 1];
	size_t n, len = 0;

	if (text == NULL)
		return DRE_EINVAL;
	text += strspn(text, " \t\r\n");
	n = strcspn(text, " \t\r\n");
	if (n != 2 * DRE_RPC_KEY_LEN
	    || text[n + strspn(text + n, " \t\r\n")] != '\0')
		return DRE_EINVAL;
	memcpy(hex, text, n);
	hex[n] = '\0';
	if (OPENSSL_hexstr2buf_ex(key, DRE_RPC_KEY_LEN, &len, hex, '\0') != 1
	    || len != DRE_RPC_KEY_LEN)
		return DRE_EINVAL;
	return DRE_OK;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t) v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

// A thread's copy of the keyed context: re-initialising it with the same
// key only restores the precomputed HMAC pads, where a fresh duplicate per
// call would cost several allocations (about 3 us).

typedef struct {
	EVP_MAC_CTX *ctx;
	unsigned     generation;
} mac_local;

static void
mac_local_free(void *p)
{
	mac_local *l = p;
	EVP_MAC_CTX_free(l->ctx);
	free(l);
}

static void
mac_tls_init(void)
{
	pthread_key_create(&mac_tls, mac_local_free);
}

// proof_mac computes the MAC of the header hdr[0..PROOF_MACOFF) and the
// packed request msg[0..len) into mac[32].
static bool
proof_mac(uint8_t *mac, const uint8_t *hdr, const uint8_t *msg, size_t len)
{
	size_t     n = 0;
	unsigned   gen = atomic_load(&mac_generation);
	mac_local *l;

	pthread_once(&mac_tls_once, mac_tls_init);
	if ((l = pthread_getspecific(mac_tls)) == NULL) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			return false;
		pthread_setspecific(mac_tls, l);
	}
	if (l->ctx == NULL || l->generation != gen) {
		EVP_MAC_CTX_free(l->ctx);
		l->ctx = EVP_MAC_CTX_dup(rpc_mac_key);
		l->generation = gen;
		if (l->ctx == NULL)
			return false;
	} else if (EVP_MAC_init(l->ctx, NULL, 0, NULL) != 1) {
		return false;
	}
	return EVP_MAC_update(l->ctx, hdr, PROOF_MACOFF) == 1
	    && EVP_MAC_update(l->ctx, msg, len) == 1
	    && EVP_MAC_final(l->ctx, mac, &n, 32) == 1 && n == 32;
}

dre_err
dre_rpc_seal(uint8_t *proof, const uint8_t *msg, size_t len, int64_t sent_ms,
    uint64_t client_id, uint64_t counter)
{
	if (rpc_mac_key == NULL)
		return DRE_ECONFIG;
	memcpy(proof, PROOF_MAGIC, 4);
	put_be64(proof + 4, (uint64_t) sent_ms);
	put_be64(proof + 12, client_id);
	put_be64(proof + 20, counter);
	return proof_mac(proof + PROOF_MACOFF, proof, msg, len) ? DRE_OK
	                                                        : DRE_ENOMEM;
}

// One client seen by a server: the highest counter and which of the
// PEER_WINDOW counters below it have been used.
typedef struct {
	uint64_t id; // 0 = free slot
	uint64_t top;
	int64_t  seen_ms;
	uint64_t used[PEER_WINDOW / 64]; // bit c % PEER_WINDOW: counter c
	                                 // (top - PEER_WINDOW, top] seen
} rpc_peer;

typedef struct {
	pthread_mutex_t mu;
	rpc_peer       *slots;
	size_t          cap, n; // cap a power of two
	atomic_ulong    refused;
} rpc_peers;

static rpc_peer *
peer_slot(rpc_peer *slots, size_t cap, uint64_t id)
{
	size_t i = (size_t) (id * 0x9E3779B97F4A7C15ull) & (cap - 1);
	while (slots[i].id != 0 && slots[i].id != id)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

// peers_rehash drops the clients not heard of for two TTLs (any proof of
// theirs still to come is stale) and grows the table when it stays over
// half full. False when out of memory or at PEER_MAX.
static bool
peers_rehash(rpc_peers *t, int64_t now)
{
	size_t live = 0, cap = t->cap != 0 ? t->cap : 64;

	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].id != 0
		    && now - t->slots[i].seen_ms <= 2 * DRE_RPC_PROOF_TTL_MS)
			live++;
	while (live + 1 > cap / 2)
		cap *= 2;
	if (cap > PEER_MAX)
		return false;
	rpc_peer *ns = calloc(cap, sizeof(*ns));
	if (ns == NULL)
		return false;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].id != 0
		    && now - t->slots[i].seen_ms <= 2 * DRE_RPC_PROOF_TTL_MS)
			*peer_slot(ns, cap, t->slots[i].id) = t->slots[i];
	free(t->slots);
	t->slots = ns;
	t->cap = cap;
	t->n = live;
	return true;
}

// peers_use records counter ctr of client id; false when it was used
// already or is too far below the client's highest (a replay).
static bool
peers_use(rpc_peers *t, uint64_t id, uint64_t ctr, int64_t now)
{
	bool ok = false;

	pthread_mutex_lock(&t->mu);
	if (t->n + 1 > t->cap * 3 / 4 && !peers_rehash(t, now)) {
		pthread_mutex_unlock(&t->mu);
		return false;
	}
	rpc_peer *p = peer_slot(t->slots, t->cap, id);
	if (p->id == 0) {
		memset(p, 0, sizeof(*p));
		p->id = id;
		p->top = ctr;
		p->used[(ctr % PEER_WINDOW) / 64] = 1ull << (ctr % 64);
		t->n++;
		ok = true;
	} else if (ctr > p->top) {
		// A ring indexed by counter: moving the top clears the bits of
		// the counters it passes (one bit for the usual step of one),
		// instead of shifting the whole window on every call.
		if (ctr - p->top >= PEER_WINDOW)
			memset(p->used, 0, sizeof(p->used));
		else
			for (uint64_t c = p->top + 1; c <= ctr; c++)
				p->used[(c % PEER_WINDOW) / 64]
				    &= ~(1ull << (c % 64));
		p->used[(ctr % PEER_WINDOW) / 64] |= 1ull << (ctr % 64);
		p->top = ctr;
		ok = true;
	} else if (p->top - ctr < PEER_WINDOW) {
		uint64_t *w = &p->used[(ctr % PEER_WINDOW) / 64];
		uint64_t  bit = 1ull << (ctr % 64);
		ok = (*w & bit) == 0;
		*w |= bit;
	}
	if (ok)
		p->seen_ms = now;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

// proof_check returns NULL when msg[0..len) starts with a valid, fresh,
// unused proof, else why it does not.
static const char *
proof_check(rpc_peers *t, const uint8_t *msg, size_t len)
{
	uint8_t mac[32];
	int64_t now = dre_now_ms();

	if (len < DRE_RPC_PROOF_LEN || memcmp(msg, PROOF_MAGIC, 4) != 0)
		return "no proof";
	int64_t sent = (int64_t) get_be64(msg + 4);
	if (sent < now - DRE_RPC_PROOF_TTL_MS
	    || sent > now + DRE_RPC_PROOF_TTL_MS)
		return "proof expired";
	if (rpc_mac_key == NULL
	    || !proof_mac(
	        mac, msg, msg + DRE_RPC_PROOF_LEN, len - DRE_RPC_PROOF_LEN)
	    || CRYPTO_memcmp(mac, msg + PROOF_MACOFF, 32) != 0)
		return "bad signature";
	if (!peers_use(t, get_be64(msg + 12), get_be64(msg + 20), now))
		return "replayed";
	return NULL;
}

// ---------------------------------------------------------------- replies

static char *
vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void
dre_rpc_reply_error(dre_rpc_reply *r, int status, const char *code,
    const char *target, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->error_code = code;
	free(r->error_message);
	free(r->error_target);
	va_start(ap, fmt);
	r->error_message = vformat(fmt, ap);
	va_end(ap);
	r->error_target = dup_or_null(target);
}

void
dre_rpc_reply_detail(dre_rpc_reply *r, const char *code, const char *target,
    const char *fmt, ...)
{
	va_list ap;

	if (r->ndetails >= DRE_RPC_MAX_DETAILS)
		return;
	r->details[r->ndetails].code = code;
	va_start(ap, fmt);
	r->details[r->ndetails].message = vformat(fmt, ap);
	va_end(ap);
	r->details[r->ndetails].target = dup_or_null(target);
	r->ndetails++;
}

void
dre_rpc_reply_header(dre_rpc_reply *r, const char *key, const char *value)
{
	if (r->nheaders >= DRE_RPC_MAX_HEADERS)
		return;
	r->headers[r->nheaders].key = key;
	r->headers[r->nheaders].value = dup_or_null(value);
	r->nheaders++;
}

void
dre_rpc_reply_json(dre_rpc_reply *r)
{
	r->content_type = "application/json";
}

static void
reply_clear(dre_rpc_reply *r)
{
	free(r->error_message);
	free(r->error_target);
	for (size_t i = 0; i < r->ndetails; i++) {
		free(r->details[i].message);
		free(r->details[i].target);
	}
	for (size_t i = 0; i < r->nheaders; i++)
		free(r->headers[i].value);
	dre_buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

void
dre_rpc_reply_clear(dre_rpc_reply *r)
{
	reply_clear(r);
}

void
dre_rpc_reply_msg_free(Dre__RpcReply *rep)
{
	if (rep != NULL)
		dre__rpc_reply__free_unpacked(rep, NULL);
}

const char *
dre_rpc_param(const dre_rpc_call *call, const char *key)
{
	const Dre__RpcRequest *req = call->req;

	if (req == NULL)
		return NULL;
	for (size_t i = 0; i < req->n_params; i++)
		if (req->params[i]->key != NULL
		    && strcmp(req->params[i]->key, key) == 0)
			return req->params[i]->value;
	return NULL;
}

// reply_encode packs r into a new nng message; NULL when out of memory.
// The protobuf view of a reply, with the arrays it points into.
typedef struct {
	Dre__RpcReply     pb;
	Dre__ErrorDetail  det[DRE_RPC_MAX_DETAILS];
	Dre__ErrorDetail *detp[DRE_RPC_MAX_DETAILS];
	Dre__Param        hdr[DRE_RPC_MAX_HEADERS];
	Dre__Param       *hdrp[DRE_RPC_MAX_HEADERS];
} reply_pb;

// reply_view fills v with r (borrowed: valid while r is).
static void
reply_view(const dre_rpc_reply *r, reply_pb *v)
{
	dre__rpc_reply__init(&v->pb);
	v->pb.status = r->status != 0 ? r->status : 200;
	v->pb.error_code = (char *) r->error_code;
	v->pb.error_message = r->error_message;
	v->pb.error_target = r->error_target;
	for (size_t i = 0; i < r->ndetails; i++) {
		dre__error_detail__init(&v->det[i]);
		v->det[i].code = (char *) r->details[i].code;
		v->det[i].message = r->details[i].message;
		v->det[i].target = r->details[i].target;
		v->detp[i] = &v->det[i];
	}
	v->pb.n_details = r->ndetails;
	v->pb.details = v->detp;
	for (size_t i = 0; i < r->nheaders; i++) {
		dre__param__init(&v->hdr[i]);
		v->hdr[i].key = (char *) r->headers[i].key;
		v->hdr[i].value = r->headers[i].value != NULL
		    ? r->headers[i].value
		    : (char *) "";
		v->hdrp[i] = &v->hdr[i];
	}
	v->pb.n_headers = r->nheaders;
	v->pb.headers = v->hdrp;
	if (r->body.len > 0) {
		v->pb.has_body = 1;
		v->pb.body.data = (uint8_t *) r->body.data;
		v->pb.body.len = r->body.len;
	}
	v->pb.content_type = (char *) r->content_type;
}

static nng_msg *
reply_encode(const dre_rpc_reply *r)
{
	reply_pb v;
	nng_msg *m;

	reply_view(r, &v);
	size_t len = dre__rpc_reply__get_packed_size(&v.pb);
	if (nng_msg_alloc(&m, len) != 0)
		return NULL;
	dre__rpc_reply__pack(&v.pb, nng_msg_body(m));
	return m;
}

// ---------------------------------------------------------------- server

// One receiving context. It is driven by its aio callback: receive, run an
// inline handler right there or queue the call for a worker thread, send the
// reply, receive again. A handler that takes its call over
// (dre_rpc_reply_later) keeps the context until dre_rpc_answer sends.
typedef struct rpc_slot rpc_slot;
struct rpc_slot {
	dre_rpc_server      *s;
	nng_ctx              ctx;
	nng_aio             *aio;
	bool                 sending;
	Dre__RpcRequest     *req; // the call waiting for a worker
	const dre_rpc_route *route;
	rpc_slot            *next; // worker queue link
	dre_rpc_pending     *taken; // set by the running handler
};

// A call taken over. The handler's return and the answer may come in
// either order, on different threads: whichever is second sends.
struct dre_rpc_pending {
	rpc_slot        *w; // NULL: the server closed without it (orphan)
	dre_rpc_pending *prev, *next; // the server's pending calls
	int              ri; // route index for the metrics (-1 none)
	int64_t          t0; // mono us the handler started
	int              status; // of the answer
	bool             returned; // the handler returned
	bool             answered; // dre_rpc_answer came (out is it)
	nng_msg         *out;
	const char      *method; // the route's, for the debug line
	char            *rid; // the call's request id (NULL: none)
};

// Guards every server's pending calls, their count and sock_closed: an
// answer may come after its server is gone, so its lock cannot live there.
static pthread_mutex_t later_mu = PTHREAD_MUTEX_INITIALIZER;

struct dre_rpc_server {
	nng_socket           sock;
	const dre_rpc_route *routes;
	void                *svc;
	int                  nslots; // open receiving contexts
	int                  cap; // slots allocated (nslots can grow to it)
	int                  held; // slots whose call a worker has or awaits
	int                  nworkers;
	int64_t              warned_ms; // the last "calls wait" warning
	dre_metric          *m_held, *m_slots; // held and nslots as gauges
	dre_metric          *m_pending; // npending as a gauge
	rpc_slot            *slots;
	int                  nthreads;
	pthread_t           *threads;
	pthread_mutex_t      mtx;
	pthread_cond_t       cv;
	rpc_slot            *head, *tail; // calls waiting for a worker
	bool                 closing;
	int                  nroutes; // routes + the built-ins after them
	// Under later_mu: calls taken over and not answered, at most
	// pending_max; sock_closed once no answer may be sent.
	int              pending_max, npending;
	int              drain_ms; // close waits this long for answers
	atomic_int       nsending; // replies handed to nng, not yet sent
	_Atomic int64_t  replied_ms; // the last reply handed to nng (mono)
	dre_rpc_pending *later;
	pthread_cond_t   later_cv; // npending fell to 0
	bool             sock_closed;
	// By route index: calls served, failed (status >= 500) and their
	// handling time.
	dre_metric **m_calls, **m_errors, **m_seconds;
	rpc_peers    peers;
};

// A call queued for a worker keeps its receiving context (the reply goes
// out on it). So that calls queued behind busy or stuck workers never take
// the last contexts from the inline calls (the key checks every request
// makes), a server opens one more context whenever fewer than
// RPC_SLOTS_FREE are left free of them, up to RPC_SLOTS_GROW more than it
// started with; past that, new calls wait in nng until a context is free.
#define RPC_SLOTS_FREE 4
#define RPC_SLOTS_GROW 256
// How long after its last answer a closing server closes its connections
// (they may still be writing it).
#define RPC_CLOSE_GRACE_MS 50

// ---- built-in methods: every server answers <prefix>.Metrics and
// <prefix>.Health for the whole process (dre/metrics.h, dre/health.h).

static void
h_metrics(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	(void) call;
	dre_metrics_render(&rep->body);
	rep->content_type = "text/plain; version=0.0.4";
}

static void
h_health(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	(void) call;
	if (!dre_health_render(&rep->body))
		rep->status = 503;
	dre_rpc_reply_json(rep);
}

static const dre_rpc_route builtin_routes[] = {
	{ "Metrics", h_metrics, 0 },
	{ "Health", h_health, 0 },
};

static const dre_rpc_route *
server_route(dre_rpc_server *s, int i)
{
	int n = s->nroutes - 2;
	return i < n ? &s->routes[i] : &builtin_routes[i - n];
}

// route_index returns the index of method in routes, of a built-in method
// after them, or -1.
static int
route_index(const dre_rpc_route *routes, int nroutes, const char *method)
{
	for (int i = 0; i < nroutes; i++)
		if (strcmp(routes[i].method, method) == 0)
			return i;
	const char *dot = strrchr(method, '.');
	if (dot == NULL)
		return -1;
	for (int i = 0; i < 2; i++)
		if (strcmp(dot + 1, builtin_routes[i].method) == 0)
			return nroutes + i;
	return -1;
}

// route_slot is the index of route in the server's metrics arrays.
static int
route_slot(dre_rpc_server *s, const dre_rpc_route *route)
{
	int n = s->nroutes - 2;
	if (route >= s->routes && route < s->routes + n)
		return (int) (route - s->routes);
	if (route >= builtin_routes && route < builtin_routes + 2)
		return n + (int) (route - builtin_routes);
	return -1;
}

static void slot_reply(rpc_slot *w, nng_msg *out);

// route_metrics counts one answered call of route index ri.
static void
route_metrics(dre_rpc_server *s, int ri, int64_t t0, int status)
{
	if (ri < 0)
		return;
	dre_metric_inc(s->m_calls[ri]);
	dre_metric_observe_us(s->m_seconds[ri], dre_mono_us() - t0);
	if (status >= 500)
		dre_metric_inc(s->m_errors[ri]);
}

// pending_finish sends the answer of p (out may be NULL: out of memory) and
// frees p; later_mu held. An orphan's answer is dropped.
static void
pending_finish(dre_rpc_pending *p, nng_msg *out)
{
	rpc_slot *w = p->w;
	if (w == NULL) {
		if (out != NULL)
			nng_msg_free(out);
		free(p->rid);
		free(p);
		return;
	}
	dre_rpc_server *s = w->s;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		s->later = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	if (--s->npending == 0)
		pthread_cond_broadcast(&s->later_cv);
	dre_metric_set(s->m_pending, s->npending);
	route_metrics(s, p->ri, p->t0, p->status);
	// The line serve logs for a call answered at once.
	dre_debug("rpc %s %d %.3f ms%s%s", p->method, p->status,
	    (double) (dre_mono_us() - p->t0) / 1000.0,
	    p->rid != NULL ? " request_id=" : "",
	    p->rid != NULL ? p->rid : "");
	// Under later_mu: close cannot close the socket meanwhile.
	slot_reply(w, out);
	free(p->rid);
	free(p);
}

dre_rpc_pending *
dre_rpc_reply_later(const dre_rpc_call *call)
{
	rpc_slot *w = call->slot;
	if (w == NULL)
		return NULL;
	if (w->taken != NULL)
		return w->taken;
	dre_rpc_server  *s = w->s;
	dre_rpc_pending *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	pthread_mutex_lock(&later_mu);
	if (s->npending >= s->pending_max || s->sock_closed) {
		pthread_mutex_unlock(&later_mu);
		free(p);
		return NULL;
	}
	s->npending++;
	dre_metric_set(s->m_pending, s->npending);
	p->w = w;
	p->ri = -1;
	p->next = s->later;
	if (s->later != NULL)
		s->later->prev = p;
	s->later = p;
	pthread_mutex_unlock(&later_mu);
	w->taken = p;
	return p;
}

// answer_encode encodes rep (then cleared) as p's answer: out NULL when out
// of memory.
static nng_msg *
answer_encode(dre_rpc_reply *rep, int *status)
{
	if (rep->body.oom) {
		reply_clear(rep);
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
	}
	nng_msg *out = reply_encode(rep);
	*status = rep->status != 0 ? rep->status : 200;
	reply_clear(rep);
	return out;
}

// answer_send sends out (status) as p's answer, or leaves it for the
// handler to send when it returns.
static void
answer_send(dre_rpc_pending *p, nng_msg *out, int status)
{
	pthread_mutex_lock(&later_mu);
	p->status = status;
	if (!p->returned) {
		// The handler is still running: it sends when it returns.
		p->answered = true;
		p->out = out;
	} else
		pending_finish(p, out);
	pthread_mutex_unlock(&later_mu);
}

void
dre_rpc_answer(dre_rpc_pending *p, dre_rpc_reply *rep)
{
	int      status;
	nng_msg *out = answer_encode(rep, &status);
	answer_send(p, out, status);
}

// An answer held back for a while (dre_rpc_answer_after).
typedef struct {
	nng_aio         *aio;
	dre_rpc_pending *p;
	nng_msg         *out;
	int              status;
} rpc_delayed;

static void
delayed_cb(void *arg)
{
	rpc_delayed *d = arg;
	answer_send(d->p, d->out, d->status);
	nng_aio_reap(d->aio);
	free(d);
}

void
dre_rpc_answer_after(dre_rpc_pending *p, dre_rpc_reply *rep, int ms)
{
	int          status;
	nng_msg     *out = answer_encode(rep, &status);
	rpc_delayed *d = NULL;
	if (ms > 0
	    && ((d = calloc(1, sizeof(*d))) == NULL
	        || nng_aio_alloc(&d->aio, delayed_cb, d) != 0)) {
		// Without a timer the thread waits.
		free(d);
		dre_sleep_ms(ms);
		d = NULL;
		ms = 0;
	}
	if (d == NULL) {
		answer_send(p, out, status);
		return;
	}
	d->p = p;
	d->out = out;
	d->status = status;
	nng_sleep_aio((nng_duration) ms, d->aio);
}

// serve_run runs the handler of a decoded call (route NULL: the error is in
// rep already) and leaves its answer in rep: true. False when an inline
// handler deferred the call to a worker (*deferp set, rep cleared) or took
// it over (dre_rpc_reply_later: *takenp set, req freed, the slot is the
// answer's now). req stays the caller's otherwise.
static bool
serve_run(dre_rpc_server *s, rpc_slot *w, Dre__RpcRequest *req,
    const dre_rpc_route *route, dre_rpc_reply *rep, bool on_worker,
    bool *deferp, bool *takenp)
{
	if (route != NULL && req->has_deadline_unix_ms
	    && req->deadline_unix_ms > 0
	    && dre_now_ms() > req->deadline_unix_ms) {
		// The caller has given up already; doing the work would only
		// delay the calls that can still be answered in time.
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "deadline passed before the call was served");
	} else if (route != NULL) {
		dre_rpc_call call;
		uint32_t     roles = 0;

		for (size_t i = 0; i < req->n_roles; i++)
			roles |= dre_role_parse(req->roles[i]);
		call.method = req->method;
		call.tenant = req->tenant != NULL ? req->tenant : "";
		call.principal = req->principal != NULL ? req->principal : "";
		call.roles = roles;
		call.deadline_ms
		    = req->has_deadline_unix_ms ? req->deadline_unix_ms : 0;
		call.body = req->has_body ? req->body.data : NULL;
		call.body_len = req->has_body ? req->body.len : 0;
		call.req = req;
		call.on_worker = on_worker;
		call.slot = w;
		dre_log_set_request_id(req->request_id);
		int64_t t0 = dre_mono_us();
		route->fn(s->svc, &call, rep);
		dre_log_set_request_id(NULL);
		if (w != NULL && w->taken != NULL) {
			dre_rpc_pending *p = w->taken;
			w->taken = NULL;
			reply_clear(rep);
			char *rid = req->request_id != NULL
			    ? strdup(req->request_id)
			    : NULL;
			dre__rpc_request__free_unpacked(req, NULL);
			pthread_mutex_lock(&later_mu);
			p->ri = route_slot(s, route);
			p->method = route->method;
			p->rid = rid;
			p->t0 = t0;
			p->returned = true;
			if (p->answered)
				pending_finish(p, p->out);
			pthread_mutex_unlock(&later_mu);
			*takenp = true;
			return false;
		}
		if (rep->defer && !on_worker && deferp != NULL) {
			reply_clear(rep);
			*deferp = true;
			return false;
		}
		route_metrics(s, route_slot(s, route), t0, rep->status);
		dre_debug("rpc %s %d %.3f ms%s%s", req->method,
		    rep->status != 0 ? rep->status : 200,
		    (double) (dre_mono_us() - t0) / 1000.0,
		    req->request_id != NULL ? " request_id=" : "",
		    req->request_id != NULL ? req->request_id : "");
		if (rep->body.oom) {
			reply_clear(rep);
			dre_rpc_reply_error(
			    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		}
	}
	return true;
}

// serve is serve_run with the answer encoded (NULL when out of memory, or
// when serve_run returned false) and req freed unless deferred.
static nng_msg *
serve(dre_rpc_server *s, rpc_slot *w, Dre__RpcRequest *req,
    const dre_rpc_route *route, dre_rpc_reply *rep, bool on_worker,
    bool *deferp, bool *takenp)
{
	if (!serve_run(s, w, req, route, rep, on_worker, deferp, takenp))
		return NULL;
	nng_msg *out = reply_encode(rep);
	reply_clear(rep);
	if (req != NULL)
		dre__rpc_request__free_unpacked(req, NULL);
	return out;
}

// varint_put writes v as a protobuf varint at p; returns its length.
static size_t
varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	do {
		p[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	return n;
}

// RpcReply.batch's key: field 9, length-delimited.
#define BATCH_KEY ((9u << 3) | 2u)

// batch_serve answers the calls of an rpc.Batch message, in order, in one
// reply (NULL when out of memory; frees req). A call runs here when its
// route is inline and its handler answers at once; one that would wait
// (takes the call over or defers it: it has no slot here, so
// dre_rpc_reply_later says no) or is not inline is answered RPC_ALONE,
// and the client sends it again on its own. Each answer is packed straight
// into the reply: RpcReply{status 200, batch: the answers}.
static nng_msg *
batch_serve(dre_rpc_server *s, Dre__RpcRequest *req)
{
	size_t         n = req->n_batch;
	dre_rpc_reply *reps = calloc(n > 0 ? n : 1, sizeof(*reps));
	reply_pb      *views = malloc((n > 0 ? n : 1) * sizeof(*views));
	size_t        *lens = malloc((n > 0 ? n : 1) * sizeof(*lens));
	nng_msg       *m = NULL;

	for (size_t i = 0; reps != NULL && i < n; i++) {
		dre_rpc_reply       *rep = &reps[i];
		const dre_rpc_route *route = NULL;
		Dre__RpcRequest     *c = dre__rpc_request__unpack(
		        NULL, req->batch[i].len, req->batch[i].data);
		rep->status = 200;
		if (c == NULL)
			dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
			    NULL, "undecodable rpc request");
		else if (c->n_batch > 0 || strcmp(c->method, RPC_BATCH) == 0)
			dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
			    NULL, "a batch inside a batch");
		else {
			int ri = route_index(
			    s->routes, s->nroutes - 2, c->method);
			if (ri < 0)
				dre_rpc_reply_error(rep, 404, "NOT_FOUND",
				    NULL, "unknown method %s", c->method);
			else if ((s->routes[ri].flags & DRE_RPC_INLINE) != 0)
				route = server_route(s, ri);
			else
				rep->status = RPC_ALONE;
		}
		bool deferred = false, taken = false;
		if (rep->status != RPC_ALONE
		    && !serve_run(
		        s, NULL, c, route, rep, false, &deferred, &taken))
			rep->status = RPC_ALONE; // deferred (cleared)
		if (c != NULL)
			dre__rpc_request__free_unpacked(c, NULL);
	}
	dre__rpc_request__free_unpacked(req, NULL);
	if (reps != NULL && views != NULL && lens != NULL) {
		Dre__RpcReply head = DRE__RPC_REPLY__INIT;
		head.status = 200;
		size_t hlen = dre__rpc_reply__get_packed_size(&head);
		size_t total = hlen;
		for (size_t i = 0; i < n; i++) {
			uint8_t tmp[10];
			reply_view(&reps[i], &views[i]);
			lens[i]
			    = dre__rpc_reply__get_packed_size(&views[i].pb);
			total += 1 + varint_put(tmp, lens[i]) + lens[i];
		}
		if (nng_msg_alloc(&m, total) == 0) {
			uint8_t *p = nng_msg_body(m);
			p += dre__rpc_reply__pack(&head, p);
			for (size_t i = 0; i < n; i++) {
				*p++ = BATCH_KEY;
				p += varint_put(p, lens[i]);
				p += dre__rpc_reply__pack(&views[i].pb, p);
			}
		} else
			m = NULL;
	}
	for (size_t i = 0; reps != NULL && i < n; i++)
		reply_clear(&reps[i]);
	free(reps);
	free(views);
	free(lens);
	return m;
}

// slot_reply sends the reply of the slot's call (or receives the next call
// when there is nothing to send).
static void
slot_reply(rpc_slot *w, nng_msg *out)
{
	if (out == NULL) {
		dre_error("rpc: out of memory encoding a reply");
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	w->sending = true;
	atomic_fetch_add(&w->s->nsending, 1);
	atomic_store(&w->s->replied_ms, dre_mono_ms());
	nng_aio_set_msg(w->aio, out);
	nng_ctx_send(w->ctx, w->aio);
}

static void slot_cb(void *arg);

// slot_open opens slot i's context and aio.
static int
slot_open(dre_rpc_server *s, int i)
{
	rpc_slot *w = &s->slots[i];
	int       rv;
	w->s = s;
	if ((rv = nng_ctx_open(&w->ctx, s->sock)) != 0)
		return rv;
	if ((rv = nng_aio_alloc(&w->aio, slot_cb, w)) != 0) {
		nng_ctx_close(w->ctx);
		w->aio = NULL;
	}
	return rv;
}

// slots_reserve keeps RPC_SLOTS_FREE contexts free of worker calls (under
// s->mtx, after a call was queued), and says so when calls pile up behind
// the workers.
static void
slots_reserve(dre_rpc_server *s)
{
	while (s->nslots - s->held < RPC_SLOTS_FREE && s->nslots < s->cap
	    && slot_open(s, s->nslots) == 0) {
		// nng completes the receive on a task thread, never in here.
		rpc_slot *w = &s->slots[s->nslots++];
		nng_ctx_recv(w->ctx, w->aio);
	}
	dre_metric_set(s->m_held, s->held);
	dre_metric_set(s->m_slots, s->nslots);
	int64_t now = dre_mono_ms();
	if (s->held > 2 * s->nworkers && now - s->warned_ms >= 10000) {
		s->warned_ms = now;
		dre_warn("rpc: %d call(s) wait for or run on %d worker(s) "
		         "(%d receiving contexts)%s",
		    s->held, s->nworkers, s->nslots,
		    s->nslots == s->cap ? ": no more contexts, new calls wait"
		                        : "");
	}
}

static void
slot_cb(void *arg)
{
	rpc_slot       *w = arg;
	dre_rpc_server *s = w->s;
	int             rv = nng_aio_result(w->aio);

	if (w->sending) {
		w->sending = false;
		atomic_fetch_sub(&s->nsending, 1);
		if (rv != 0) {
			// The requester is gone; the reply has nowhere to go.
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
		}
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}

	nng_msg             *in = nng_aio_get_msg(w->aio);
	dre_rpc_reply        rep;
	const dre_rpc_route *route = NULL;
	Dre__RpcRequest     *req = NULL;
	const char          *why
	    = proof_check(&s->peers, nng_msg_body(in), nng_msg_len(in));
	if (why == NULL)
		req = dre__rpc_request__unpack(NULL,
		    nng_msg_len(in) - DRE_RPC_PROOF_LEN,
		    (const uint8_t *) nng_msg_body(in) + DRE_RPC_PROOF_LEN);
	nng_msg_free(in);
	memset(&rep, 0, sizeof(rep));
	rep.status = 200;
	if (why != NULL) {
		// Nothing of an unproven call is decoded or logged beyond the
		// count: whoever sends it is not part of the deployment.
		unsigned long n = atomic_fetch_add(&s->peers.refused, 1) + 1;
		if ((n & (n - 1)) == 0)
			dre_warn("rpc: refused %lu call(s) without a valid "
			         "internal proof (latest: %s)",
			    n, why);
		dre_rpc_reply_error(&rep, 401, "UNAUTHORIZED", NULL,
		    "internal call refused: %s", why);
	} else if (req == NULL)
		dre_rpc_reply_error(&rep, 400, "VALIDATION_FAILED", NULL,
		    "undecodable rpc request");
	else if (strcmp(req->method, RPC_BATCH) == 0) {
		slot_reply(w, batch_serve(s, req));
		return;
	} else {
		int ri = route_index(s->routes, s->nroutes - 2, req->method);
		if (ri >= 0)
			route = server_route(s, ri);
		else
			dre_rpc_reply_error(&rep, 404, "NOT_FOUND", NULL,
			    "unknown method %s", req->method);
	}
	if (route == NULL || (route->flags & DRE_RPC_INLINE) != 0) {
		bool     deferred = false, taken = false;
		nng_msg *out
		    = serve(s, w, req, route, &rep, false, &deferred, &taken);
		if (taken)
			return;
		if (!deferred) {
			slot_reply(w, out);
			return;
		}
	}
	w->req = req;
	w->route = route;
	w->next = NULL;
	pthread_mutex_lock(&s->mtx);
	if (s->closing) {
		// The workers are leaving: no thread of ours may touch the
		// socket once it is closed, so this call gets no answer.
		pthread_mutex_unlock(&s->mtx);
		w->req = NULL;
		dre__rpc_request__free_unpacked(req, NULL);
		return;
	}
	if (s->tail != NULL)
		s->tail->next = w;
	else
		s->head = w;
	s->tail = w;
	s->held++;
	slots_reserve(s);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

static void *
worker_main(void *arg)
{
	dre_rpc_server *s = arg;
	dre_thread_name("rpc:worker", NULL);

	for (;;) {
		pthread_mutex_lock(&s->mtx);
		while (s->head == NULL && !s->closing)
			pthread_cond_wait(&s->cv, &s->mtx);
		rpc_slot *w = s->head;
		if (w == NULL) {
			pthread_mutex_unlock(&s->mtx);
			return NULL;
		}
		if ((s->head = w->next) == NULL)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mtx);

		dre_rpc_reply rep;
		memset(&rep, 0, sizeof(rep));
		rep.status = 200;
		Dre__RpcRequest *req = w->req;
		bool             taken = false;
		w->req = NULL;
		nng_msg *out
		    = serve(s, w, req, w->route, &rep, true, NULL, &taken);
		pthread_mutex_lock(&s->mtx);
		dre_metric_set(s->m_held, --s->held);
		pthread_mutex_unlock(&s->mtx);
		if (!taken)
			slot_reply(w, out);
	}
}

// log_methods names every method a server answers (operators see what a
// socket exposes; test_internal_auth calls each of them).
static void
log_methods(const char *url, const dre_rpc_route *routes)
{
	dre_buf b;
	int     n = 0;

	dre_buf_init(&b);

	for (const dre_rpc_route *r = routes; r->method != NULL; r++, n++)
		dre_buf_printf(&b, " %s", r->method);
	dre_info("rpc: listening on %s, %d methods:%.*s", url, n, (int) b.len,
	    b.data != NULL ? b.data : "");
	dre_buf_free(&b);
}

dre_err
dre_rpc_server_open(dre_rpc_server **sp, const char *url,
    const dre_rpc_route *routes, void *svc, int workers)
{
	return dre_rpc_server_open_pending(sp, url, routes, svc, workers, 0);
}

dre_err
dre_rpc_server_open_pending(dre_rpc_server **sp, const char *url,
    const dre_rpc_route *routes, void *svc, int workers, int pending_max)
{
	dre_rpc_server *s;
	int             rv;

	if (workers <= 0)
		workers = 1;
	if (pending_max < 0)
		pending_max = 0;
	if (rpc_mac_key == NULL) {
		dre_error("rpc: no internal key: set internal.key_file or "
		          "DRE_INTERNAL_KEY (docs/operating.md)");
		return DRE_ECONFIG;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DRE_ENOMEM;
	s->routes = routes;
	s->svc = svc;
	for (s->nroutes = 0; routes[s->nroutes].method != NULL; s->nroutes++)
		;
	s->nroutes += 2;
	s->m_calls = calloc((size_t) s->nroutes, sizeof(dre_metric *));
	s->m_errors = calloc((size_t) s->nroutes, sizeof(dre_metric *));
	s->m_seconds = calloc((size_t) s->nroutes, sizeof(dre_metric *));
	for (int i = 0;
	     s->m_calls && s->m_errors && s->m_seconds && i < s->nroutes;
	     i++) {
		char        lab[160], esc[128], full[128];
		const char *m = server_route(s, i)->method;
		if (i >= s->nroutes - 2) {
			// A built-in is named like the service's own methods.
			const char *dot = s->nroutes > 2
			    ? strchr(routes[0].method, '.')
			    : NULL;
			snprintf(full, sizeof(full), "%.*s%s%s",
			    dot != NULL ? (int) (dot - routes[0].method) : 0,
			    routes[0].method, dot != NULL ? "." : "", m);
			m = full;
		}
		dre_metric_label_escape(esc, sizeof(esc), m);
		snprintf(lab, sizeof(lab), "method=\"%s\"", esc);
		s->m_calls[i]
		    = dre_metric_counter("dre_rpc_server_calls_total",
		        "rpc calls served, by method", lab);
		s->m_errors[i] = dre_metric_counter(
		    "dre_rpc_server_errors_total",
		    "rpc calls answered with a status of 500 or more", lab);
		s->m_seconds[i]
		    = dre_metric_histogram("dre_rpc_server_duration_seconds",
		        "time spent in the rpc handler", lab);
	}
	s->m_held = dre_metric_gauge("dre_rpc_server_held_calls",
	    "calls waiting for or running on a worker thread", NULL);
	s->m_slots = dre_metric_gauge("dre_rpc_server_receiving_contexts",
	    "receiving contexts open (grows while calls wait for workers)",
	    NULL);
	s->m_pending = dre_metric_gauge("dre_rpc_server_pending_calls",
	    "calls taken over by their handler and not answered yet", NULL);
	pthread_mutex_init(&s->mtx, NULL);
	pthread_mutex_init(&s->peers.mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->later_cv, NULL);
	s->pending_max = pending_max;
	s->drain_ms = DRE_RPC_DRAIN_MS;
	atomic_init(&s->nsending, 0);
	atomic_init(&s->replied_ms, 0);
	s->nslots = 2 * workers + pending_max;
	s->cap = s->nslots + RPC_SLOTS_GROW;
	s->nworkers = workers;
	dre_metric_set(s->m_slots, s->nslots);
	s->slots = calloc((size_t) s->cap, sizeof(rpc_slot));
	s->threads = calloc((size_t) workers, sizeof(pthread_t));
	if (s->slots == NULL || s->threads == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		dre_error("rpc: rep socket: %s", nng_strerror(rv));
		goto fail;
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_MSG);
	for (int i = 0; i < s->nslots; i++)
		if ((rv = slot_open(s, i)) != 0)
			goto fail;
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&s->threads[i], NULL, worker_main, s)
		    != 0) {
			rv = NNG_ENOMEM;
			goto fail;
		}
		s->nthreads++;
	}
	if ((rv = nng_listen(s->sock, url, NULL, 0)) != 0) {
		dre_error("rpc: listen %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	// The first receives' calls may open more contexts (slots_reserve,
	// on nng's threads) while this loop runs: it posts only its own.
	pthread_mutex_lock(&s->mtx);
	int n0 = s->nslots;
	pthread_mutex_unlock(&s->mtx);
	for (int i = 0; i < n0; i++)
		nng_ctx_recv(s->slots[i].ctx, s->slots[i].aio);
	log_methods(url, routes);
	*sp = s;
	return DRE_OK;
fail:
	dre_rpc_server_close(s);
	return rv == NNG_ENOMEM ? DRE_ENOMEM : DRE_ERPC;
}

void
dre_rpc_server_set_drain_ms(dre_rpc_server *s, int ms)
{
	pthread_mutex_lock(&later_mu);
	s->drain_ms = ms > 0 ? ms : 0;
	pthread_mutex_unlock(&later_mu);
}

void
dre_rpc_server_close(dre_rpc_server *s)
{
	if (s == NULL)
		return;
	// The workers finish the calls queued or in progress (their replies
	// are sent on the still open socket), no new call is queued, and only
	// then is the socket closed: a worker thread calling nng_ctx_send on
	// a context being closed panics inside nng 1.5.2 ("pthread_mutex_lock:
	// Invalid argument"). Closing fails every pending receive with
	// NNG_ECLOSED.
	pthread_mutex_lock(&s->mtx);
	s->closing = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	// The calls taken over are answered by their owners (a group commit,
	// a delivery report): wait for them, then orphan those left.
	struct timespec until
	    = dre_timespec_after(CLOCK_REALTIME, s->drain_ms);
	pthread_mutex_lock(&later_mu);
	while (s->npending > 0
	    && pthread_cond_timedwait(&s->later_cv, &later_mu, &until)
	        != ETIMEDOUT)
		;
	if (s->npending > 0)
		dre_warn(
		    "rpc: closing with %d call(s) not answered", s->npending);
	for (dre_rpc_pending *p = s->later; p != NULL; p = p->next)
		p->w = NULL;
	s->later = NULL;
	s->npending = 0;
	dre_metric_set(s->m_pending, 0);
	s->sock_closed = true;
	pthread_mutex_unlock(&later_mu);
	// The last answers leave before the socket closes (a second at most).
	for (int i = 0; i < 1000 && atomic_load(&s->nsending) > 0; i++)
		usleep(1000);
	// A send is done once its message is handed to the connection, which
	// may still be writing it, and closing the socket cuts connections
	// hard: the last answers get a moment to be written.
	int64_t grace
	    = atomic_load(&s->replied_ms) + RPC_CLOSE_GRACE_MS - dre_mono_ms();
	if (grace > 0)
		dre_sleep_ms(grace);
	nng_close(s->sock);
	// No context opens now; one may have opened meanwhile.
	pthread_mutex_lock(&s->mtx);
	int nslots = s->nslots;
	pthread_mutex_unlock(&s->mtx);
	for (int i = 0; s->slots != NULL && i < nslots; i++) {
		rpc_slot *w = &s->slots[i];
		if (w->aio != NULL) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->req != NULL)
			dre__rpc_request__free_unpacked(w->req, NULL);
	}
	pthread_mutex_destroy(&s->mtx);
	pthread_mutex_destroy(&s->peers.mu);
	free(s->peers.slots);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->later_cv);
	free(s->slots);
	free(s->threads);
	free(s->m_calls);
	free(s->m_errors);
	free(s->m_seconds);
	free(s);
}

// ---------------------------------------------------------------- client

enum { OP_SEND, OP_RECV };

// A call waiting for its client's coalescing limit (dre_rpc_client_coalesce)
// and then for the reply of the message that carried it.
typedef struct rpc_queued rpc_queued;
struct rpc_queued {
	rpc_queued  *next;
	dre_rpc_done done;
	void        *arg;
	int64_t      deadline; // monotonic millis
	int64_t      started_us; // monotonic micros
	size_t       len;
	uint8_t      packed[]; // the packed RpcRequest
};

typedef struct rpc_op rpc_op;
struct rpc_op {
	dre_rpc_client *c;
	nng_ctx         ctx;
	nng_aio        *aio;
	nng_aio     *waio; // without a callback: dre_rpc_call_sync waits on it
	int          state;
	int64_t      deadline; // monotonic millis
	int64_t      started_us; // monotonic micros
	dre_rpc_done done;
	void        *arg;
	bool         coalesced; // counts in the client's inflight
	rpc_queued  *batch; // the calls of an rpc.Batch message (done unused)
	size_t       nbatch;
	rpc_op      *next_free;
	rpc_op      *next_all;
};

struct dre_rpc_client {
	nng_socket      sock;
	pthread_mutex_t mu;
	rpc_op         *free_ops; // idle ops, ready for a call
	rpc_op         *all_ops; // every op, for close
	atomic_int      npipes;
	int64_t         opened; // monotonic millis
	bool            closed;
	dre_metric     *m_seconds; // round trips
	dre_metric     *m_failed[4]; // by client_fail_kind
	uint64_t        id; // random, names the client in its proofs
	atomic_ulong    counter;
	// Coalescing (dre_rpc_client_coalesce), under mu: the messages of
	// dre_rpc_call_coalesced in flight, the calls waiting to be sent.
	int         co_limit; // 0: every call is sent at once
	int         inflight;
	rpc_queued *qhead, *qtail;
	atomic_bool co_off; // the server answers rpc.Batch 404
	dre_metric *m_batches, *m_batched;
};

// Calls that got no reply, by kind (the label of
// dre_rpc_client_failures_total).
enum { FAIL_TIMEOUT, FAIL_UNAVAILABLE, FAIL_CLOSED, FAIL_OTHER };
static const char *const fail_kinds[]
    = { "timeout", "unavailable", "closed", "other" };

static void
client_metrics_open(dre_rpc_client *c, const char *url)
{
	char esc[128], lab[192];

	dre_metric_label_escape(esc, sizeof(esc), url);
	snprintf(lab, sizeof(lab), "peer=\"%s\"", esc);
	c->m_seconds = dre_metric_histogram("dre_rpc_client_duration_seconds",
	    "rpc round trips that got a reply, send to reply", lab);
	for (int i = 0; i < 4; i++) {
		snprintf(lab, sizeof(lab), "peer=\"%s\",reason=\"%s\"", esc,
		    fail_kinds[i]);
		c->m_failed[i]
		    = dre_metric_counter("dre_rpc_client_failures_total",
		        "rpc calls that got no reply, by reason", lab);
	}
	snprintf(lab, sizeof(lab), "peer=\"%s\"", esc);
	c->m_batches = dre_metric_counter("dre_rpc_client_batches_total",
	    "rpc messages that carried several coalesced calls", lab);
	c->m_batched = dre_metric_counter("dre_rpc_client_batched_calls_total",
	    "rpc calls sent in a message with others", lab);
}

static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	dre_rpc_client *c = arg;

	(void) p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&c->npipes, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		// A pipe rejected before ADD_POST also reports REM_POST;
		// never let that drive the count negative.
		int n = atomic_load(&c->npipes);
		while (n > 0
		    && !atomic_compare_exchange_weak(&c->npipes, &n, n - 1))
			;
	}
}

dre_err
dre_rpc_client_open(dre_rpc_client **cp, const char *url)
{
	dre_rpc_client *c;
	int             rv;

	if (rpc_mac_key == NULL) {
		dre_error("rpc: no internal key: set internal.key_file or "
		          "DRE_INTERNAL_KEY (docs/operating.md)");
		return DRE_ECONFIG;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DRE_ENOMEM;
	while (c->id == 0)
		if (getrandom(&c->id, sizeof(c->id), 0) != sizeof(c->id)) {
			free(c);
			return DRE_EIO;
		}
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->npipes, 0);
	atomic_init(&c->counter, 0);
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		dre_error("rpc: req socket: %s", nng_strerror(rv));
		pthread_mutex_destroy(&c->mu);
		free(c);
		return DRE_ERPC;
	}
	// At most once: a re-sent request could apply a confirm twice.
	nng_socket_set_ms(
	    c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_MSG);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
	c->opened = dre_mono_ms();
	client_metrics_open(c, url);
	if ((rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		dre_error("rpc: dial %s: %s", url, nng_strerror(rv));
		nng_close(c->sock);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return DRE_ERPC;
	}
	*cp = c;
	return DRE_OK;
}

void
dre_rpc_client_set_recv_max(dre_rpc_client *c, size_t bytes)
{
	if (c != NULL)
		nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, bytes);
}

static void queued_end(
    dre_rpc_client *c, rpc_queued *q, dre_err err, Dre__RpcReply *rep);

void
dre_rpc_client_close(dre_rpc_client *c)
{
	rpc_op *op, *next;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	pthread_mutex_unlock(&c->mu);
	// Every call in flight completes with DRE_ECLOSED here.
	nng_close(c->sock);
	for (op = c->all_ops; op != NULL; op = op->next_all) {
		nng_aio_stop(op->aio);
		if (op->waio != NULL)
			nng_aio_stop(op->waio);
	}
	// Calls still waiting to be sent (none should be: the last messages'
	// ends sent them, and the closed client failed them).
	pthread_mutex_lock(&c->mu);
	rpc_queued *q = c->qhead, *qnext;
	c->qhead = c->qtail = NULL;
	pthread_mutex_unlock(&c->mu);
	for (; q != NULL; q = qnext) {
		qnext = q->next;
		queued_end(c, q, DRE_ECLOSED, NULL);
	}
	for (op = c->all_ops; op != NULL; op = next) {
		next = op->next_all;
		nng_aio_free(op->aio);
		if (op->waio != NULL)
			nng_aio_free(op->waio);
		free(op);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static dre_err
map_nng(int rv, bool sending)
{
	switch (rv) {
	case 0:
		return DRE_OK;
	case NNG_ETIMEDOUT:
		// A request that never left the queue found no peer.
		return sending ? DRE_EUNAVAIL : DRE_ETIMEOUT;
	case NNG_ECONNRESET:
	case NNG_ECONNREFUSED:
	case NNG_ECONNSHUT:
		return DRE_EUNAVAIL;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return DRE_ECLOSED;
	case NNG_ENOMEM:
		return DRE_ENOMEM;
	default:
		return DRE_ERPC;
	}
}

static void
op_release(rpc_op *op)
{
	dre_rpc_client *c = op->c;

	op->done = NULL;
	op->arg = NULL;
	op->coalesced = false;
	op->batch = NULL;
	op->nbatch = 0;
	pthread_mutex_lock(&c->mu);
	op->next_free = c->free_ops;
	c->free_ops = op;
	pthread_mutex_unlock(&c->mu);
}

// outcome_count counts the outcome of a call begun at started_us in the
// client's metrics.
static void
outcome_count(dre_rpc_client *c, int64_t started_us, dre_err err)
{
	if (err == DRE_OK)
		dre_metric_observe_us(
		    c->m_seconds, dre_mono_us() - started_us);
	else
		dre_metric_inc(c->m_failed[err == DRE_ETIMEOUT ? FAIL_TIMEOUT
		        : err == DRE_EUNAVAIL ? FAIL_UNAVAILABLE
		        : err == DRE_ECLOSED  ? FAIL_CLOSED
		                              : FAIL_OTHER]);
}

static void
op_count(rpc_op *op, dre_err err)
{
	outcome_count(op->c, op->started_us, err);
}

static void pump(dre_rpc_client *c);

// uncount ends a coalesced message: the calls waiting may go.
static void
uncount(dre_rpc_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->inflight--;
	pthread_mutex_unlock(&c->mu);
	pump(c);
}

// op_finish reports the outcome once and returns the op to the freelist.
static void
op_finish(rpc_op *op, dre_err err, Dre__RpcReply *rep)
{
	dre_rpc_client *c = op->c;
	dre_rpc_done    done = op->done;
	void           *arg = op->arg;
	bool            coalesced = op->coalesced;

	op_count(op, err);
	op_release(op);
	if (coalesced)
		uncount(c);
	done(arg, err, rep);
}

// queued_end reports the outcome of a call that waited and frees it.
static void
queued_end(dre_rpc_client *c, rpc_queued *q, dre_err err, Dre__RpcReply *rep)
{
	outcome_count(c, q->started_us, err);
	q->done(q->arg, err, rep);
	free(q);
}

static void batch_end(rpc_op *op, dre_err err, nng_msg *m);

// reply_of decodes the reply message m (freed).
static dre_err
reply_of(nng_msg *m, Dre__RpcReply **repp)
{
	*repp = dre__rpc_reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	return *repp != NULL ? DRE_OK : DRE_ECODEC;
}

static void
op_cb(void *arg)
{
	rpc_op  *op = arg;
	int      rv = nng_aio_result(op->aio);
	nng_msg *m;

	if (op->state == OP_SEND) {
		int64_t left;

		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(op->aio));
			nng_aio_set_msg(op->aio, NULL);
			if (op->batch != NULL)
				batch_end(op, map_nng(rv, true), NULL);
			else
				op_finish(op, map_nng(rv, true), NULL);
			return;
		}
		op->state = OP_RECV;
		left = op->deadline - dre_mono_ms();
		nng_aio_set_timeout(
		    op->aio, left > 0 ? (nng_duration) left : 1);
		nng_ctx_recv(op->ctx, op->aio);
		return;
	}
	if (rv != 0) {
		if (op->batch != NULL)
			batch_end(op, map_nng(rv, false), NULL);
		else
			op_finish(op, map_nng(rv, false), NULL);
		return;
	}
	m = nng_aio_get_msg(op->aio);
	nng_aio_set_msg(op->aio, NULL);
	if (op->batch != NULL) {
		batch_end(op, DRE_OK, m);
		return;
	}
	Dre__RpcReply *rep;
	dre_err        err = reply_of(m, &rep);
	op_finish(op, err, rep);
}

// op_get takes an idle op or makes a new one (each owns a REQ context, so
// calls in flight never wait for each other).
static dre_err
op_get(rpc_op **opp, dre_rpc_client *c)
{
	rpc_op *op;
	int     rv;

	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return DRE_ECLOSED;
	}
	if ((op = c->free_ops) != NULL) {
		c->free_ops = op->next_free;
		pthread_mutex_unlock(&c->mu);
		*opp = op;
		return DRE_OK;
	}
	pthread_mutex_unlock(&c->mu);

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return DRE_ENOMEM;
	op->c = c;
	if ((rv = nng_aio_alloc(&op->aio, op_cb, op)) != 0) {
		free(op);
		return DRE_ENOMEM;
	}
	if ((rv = nng_ctx_open(&op->ctx, c->sock)) != 0) {
		nng_aio_free(op->aio);
		free(op);
		return rv == NNG_ECLOSED ? DRE_ECLOSED : DRE_ERPC;
	}
	nng_ctx_set_ms(op->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	pthread_mutex_lock(&c->mu);
	op->next_all = c->all_ops;
	c->all_ops = op;
	pthread_mutex_unlock(&c->mu);
	*opp = op;
	return DRE_OK;
}

// unreachable tells (and counts) that c has had no connection for longer
// than a first connect may take: calls fail at once then.
static bool
unreachable(dre_rpc_client *c, int64_t now)
{
	if (atomic_load(&c->npipes) == 0
	    && now - c->opened > RPC_CONNECT_GRACE_MS) {
		dre_metric_inc(c->m_failed[FAIL_UNAVAILABLE]);
		return true;
	}
	return false;
}

// with_request_id is req, or a copy of it in *withid carrying the id of the
// request being served (a call made while serving one carries its id on).
static const Dre__RpcRequest *
with_request_id(const Dre__RpcRequest *req, Dre__RpcRequest *withid)
{
	if (req->request_id != NULL || dre_log_request_id() == NULL)
		return req;
	*withid = *req;
	withid->request_id = (char *) dre_log_request_id();
	return withid;
}

// seal_body seals the packed request in m's body after its proof.
static dre_err
seal_body(dre_rpc_client *c, nng_msg *m)
{
	uint8_t *body = nng_msg_body(m);
	return dre_rpc_seal(body, body + DRE_RPC_PROOF_LEN,
	    nng_msg_len(m) - DRE_RPC_PROOF_LEN, dre_now_ms(), c->id,
	    atomic_fetch_add(&c->counter, 1) + 1);
}

// call_start packs and seals req and takes an op for it (deadline and
// start time set), the message in *mp.
static dre_err
call_start(dre_rpc_client *c, const Dre__RpcRequest *req, int timeout_ms,
    rpc_op **opp, nng_msg **mp)
{
	rpc_op  *op;
	nng_msg *m;
	dre_err  err;
	int64_t  now = dre_mono_ms();

	Dre__RpcRequest withid;

	if (unreachable(c, now))
		return DRE_EUNAVAIL;
	req = with_request_id(req, &withid);
	size_t len = dre__rpc_request__get_packed_size(req);
	if (nng_msg_alloc(&m, DRE_RPC_PROOF_LEN + len) != 0)
		return DRE_ENOMEM;
	dre__rpc_request__pack(
	    req, (uint8_t *) nng_msg_body(m) + DRE_RPC_PROOF_LEN);
	err = seal_body(c, m);
	if (err != DRE_OK || (err = op_get(&op, c)) != DRE_OK) {
		nng_msg_free(m);
		return err;
	}
	op->deadline = now + (timeout_ms > 0 ? timeout_ms : 1);
	op->started_us = dre_mono_us();
	*opp = op;
	*mp = m;
	return DRE_OK;
}

// ---- coalescing

void
dre_rpc_client_coalesce(dre_rpc_client *c, int limit)
{
	c->co_limit = limit > 0 ? limit : 0;
}

// queued_msg seals the calls of list (n, at least one) into one message:
// an rpc.Batch, or (batch false, n 1) the call as packed.
static dre_err
queued_msg(
    dre_rpc_client *c, rpc_queued *list, size_t n, bool batch, nng_msg **mp)
{
	Dre__RpcRequest      req = DRE__RPC_REQUEST__INIT;
	ProtobufCBinaryData *items = NULL;
	size_t               len = list->len;
	nng_msg             *m;

	if (batch) {
		if ((items = malloc(n * sizeof(*items))) == NULL)
			return DRE_ENOMEM;
		size_t i = 0;
		for (rpc_queued *q = list; q != NULL; q = q->next, i++) {
			items[i].data = q->packed;
			items[i].len = q->len;
		}
		req.method = (char *) RPC_BATCH;
		req.n_batch = n;
		req.batch = items;
		len = dre__rpc_request__get_packed_size(&req);
	}
	if (nng_msg_alloc(&m, DRE_RPC_PROOF_LEN + len) != 0) {
		free(items);
		return DRE_ENOMEM;
	}
	uint8_t *body = (uint8_t *) nng_msg_body(m) + DRE_RPC_PROOF_LEN;
	if (batch)
		dre__rpc_request__pack(&req, body);
	else
		memcpy(body, list->packed, len);
	free(items);
	dre_err err = seal_body(c, m);
	if (err != DRE_OK) {
		nng_msg_free(m);
		return err;
	}
	*mp = m;
	return DRE_OK;
}

// queued_send sends the calls of list (n, at least one) in one message, on
// an op that counts in the client's inflight when coalesced. A coalesced
// message is an rpc.Batch even for one call (unless the server does not
// take them): the server answers a call that would wait "alone" at once,
// so no coalesced message waits and holds back the calls queued behind it.
// On an error nothing was sent and the calls are still the caller's.
static dre_err
queued_send(dre_rpc_client *c, rpc_queued *list, size_t n, bool coalesced)
{
	nng_msg *m;
	rpc_op  *op;
	int64_t  deadline = 0;
	bool     batch = coalesced && !atomic_load(&c->co_off);
	dre_err  err = queued_msg(c, list, n, batch, &m);

	if (err == DRE_OK && (err = op_get(&op, c)) != DRE_OK)
		nng_msg_free(m);
	if (err != DRE_OK)
		return err;
	for (rpc_queued *q = list; q != NULL; q = q->next)
		if (q->deadline > deadline)
			deadline = q->deadline;
	op->deadline = deadline;
	op->coalesced = coalesced;
	op->state = OP_SEND;
	if (!batch) {
		op->started_us = list->started_us;
		op->done = list->done;
		op->arg = list->arg;
		free(list);
	} else {
		op->started_us = dre_mono_us();
		op->batch = list;
		op->nbatch = n;
		if (n > 1) {
			dre_metric_inc(c->m_batches);
			dre_metric_add(c->m_batched, (int64_t) n);
		}
	}
	int64_t left = deadline - dre_mono_ms();
	nng_aio_set_msg(op->aio, m);
	nng_aio_set_timeout(op->aio, left > 0 ? (nng_duration) left : 1);
	nng_ctx_send(op->ctx, op->aio);
	return DRE_OK;
}

// alone_send sends a call that waited on its own (the server asked so),
// outside the coalescing limit.
static void
alone_send(dre_rpc_client *c, rpc_queued *q)
{
	dre_err err = q->deadline <= dre_mono_ms()
	    ? DRE_ETIMEOUT
	    : queued_send(c, q, 1, false);
	if (err != DRE_OK)
		queued_end(c, q, err, NULL);
}

// pump sends the waiting calls while the limit lets it: as many in one
// message as RPC_BATCH_MAX and RPC_BATCH_BYTES allow (one at a time when
// the server does not take batches). Calls past their deadline end here.
static void
pump(dre_rpc_client *c)
{
	size_t max = atomic_load(&c->co_off) ? 1 : RPC_BATCH_MAX;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		if (c->qhead == NULL || c->inflight >= c->co_limit) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		rpc_queued *taken = c->qhead, *last = taken;
		size_t      k = 1, bytes = taken->len;
		while (k < max && last->next != NULL
		    && bytes + last->next->len <= RPC_BATCH_BYTES) {
			last = last->next;
			bytes += last->len;
			k++;
		}
		if ((c->qhead = last->next) == NULL)
			c->qtail = NULL;
		last->next = NULL;
		c->inflight++;
		pthread_mutex_unlock(&c->mu);

		int64_t     now = dre_mono_ms();
		rpc_queued *list = NULL, **tail = &list, *next;
		size_t      n = 0;
		for (rpc_queued *q = taken; q != NULL; q = next) {
			next = q->next;
			q->next = NULL;
			if (q->deadline <= now)
				queued_end(c, q, DRE_ETIMEOUT, NULL);
			else {
				*tail = q;
				tail = &q->next;
				n++;
			}
		}
		dre_err err = n > 0 ? queued_send(c, list, n, true) : DRE_OK;
		if (n > 0 && err == DRE_OK)
			continue;
		pthread_mutex_lock(&c->mu);
		c->inflight--;
		pthread_mutex_unlock(&c->mu);
		for (rpc_queued *q = list; q != NULL; q = next) {
			next = q->next;
			queued_end(c, q, err, NULL);
		}
	}
}

// queued_new packs req into a call that may wait and leave with others.
static dre_err
queued_new(dre_rpc_client *c, const Dre__RpcRequest *req, int timeout_ms,
    dre_rpc_done done, void *arg, rpc_queued **qp)
{
	Dre__RpcRequest withid;
	int64_t         now = dre_mono_ms();

	if (unreachable(c, now))
		return DRE_EUNAVAIL;
	req = with_request_id(req, &withid);
	size_t      len = dre__rpc_request__get_packed_size(req);
	rpc_queued *q = malloc(sizeof(*q) + len);
	if (q == NULL)
		return DRE_ENOMEM;
	dre__rpc_request__pack(req, q->packed);
	q->len = len;
	q->next = NULL;
	q->done = done;
	q->arg = arg;
	q->deadline = now + (timeout_ms > 0 ? timeout_ms : 1);
	q->started_us = dre_mono_us();
	*qp = q;
	return DRE_OK;
}

// call_queue packs req to wait behind the coalescing limit.
static dre_err
call_queue(dre_rpc_client *c, const Dre__RpcRequest *req, int timeout_ms,
    dre_rpc_done done, void *arg)
{
	rpc_queued *q;
	dre_err     err = queued_new(c, req, timeout_ms, done, arg, &q);

	if (err != DRE_OK)
		return err;
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		free(q);
		return DRE_ECLOSED;
	}
	if (c->qtail != NULL)
		c->qtail->next = q;
	else
		c->qhead = q;
	c->qtail = q;
	pthread_mutex_unlock(&c->mu);
	// A message may have ended since the limit was checked.
	pump(c);
	return DRE_OK;
}

// varint_get reads a protobuf varint at *p (before end): false when it is
// cut short or longer than 64 bits.
static bool
varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		x |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return true;
		}
	}
	return false;
}

long
dre_rpc_batch_split(const uint8_t *msg, size_t len, int32_t *status,
    ProtobufCBinaryData *items, size_t max)
{
	const uint8_t *p = msg, *end = msg + len;
	long           n = 0;
	bool           has_status = false;

	while (p < end) {
		uint64_t key, v;
		// Field 0 is not valid protobuf, but protobuf-c skips it as
		// an unknown field; so does this (fuzz_rpc compares the two).
		if (!varint_get(&p, end, &key))
			return -1;
		switch (key & 7) {
		case 0: // varint
			if (!varint_get(&p, end, &v))
				return -1;
			if ((key >> 3) == 1) {
				*status = (int32_t) v;
				has_status = true;
			}
			break;
		case 1: // 64-bit
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 5: // 32-bit
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		case 2: // length-delimited
			if (!varint_get(&p, end, &v)
			    || v > (uint64_t) (end - p))
				return -1;
			if (key == BATCH_KEY) {
				if ((size_t) n < max) {
					items[n].data = (uint8_t *) p;
					items[n].len = (size_t) v;
				}
				n++;
			}
			p += v;
			break;
		default:
			return -1;
		}
	}
	return has_status ? n : -1;
}

// batch_end delivers the reply m of an rpc.Batch message (NULL: err) to
// each of its calls: each answer is decoded from its place in m.
static void
batch_end(rpc_op *op, dre_err err, nng_msg *m)
{
	dre_rpc_client      *c = op->c;
	rpc_queued          *q = op->batch, *next;
	size_t               n = op->nbatch;
	ProtobufCBinaryData *items = NULL;
	Dre__RpcReply       *all = NULL; // a reply without answers
	int32_t              status = 0;

	op_release(op);
	uncount(c);
	if (err == DRE_OK && (items = malloc(n * sizeof(*items))) == NULL)
		err = DRE_ENOMEM;
	if (err == DRE_OK) {
		long k = dre_rpc_batch_split(
		    nng_msg_body(m), nng_msg_len(m), &status, items, n);
		if (k == 0 && status >= 400)
			all = dre__rpc_reply__unpack(
			    NULL, nng_msg_len(m), nng_msg_body(m));
		if (all == NULL && !(status == 200 && k == (long) n))
			err = DRE_ECODEC;
	}
	if (all != NULL && status == 404 && !atomic_exchange(&c->co_off, true))
		dre_warn(
		    "rpc: the server does not take coalesced calls (" RPC_BATCH
		    " not found): each call goes alone");
	for (size_t i = 0; q != NULL; q = next, i++) {
		Dre__RpcReply *rep = NULL;
		dre_err        e = err;

		next = q->next;
		q->next = NULL;
		if (e == DRE_OK && all == NULL) {
			rep = dre__rpc_reply__unpack(
			    NULL, items[i].len, items[i].data);
			if (rep == NULL)
				e = DRE_ECODEC;
			else if (rep->status == RPC_ALONE) {
				dre__rpc_reply__free_unpacked(rep, NULL);
				alone_send(c, q);
				continue;
			}
		} else if (e == DRE_OK && status == 404) {
			// A server from before rpc.Batch.
			alone_send(c, q);
			continue;
		} else if (e == DRE_OK) {
			// The message as a whole was refused (its proof, say):
			// each call gets that answer.
			rep = dre__rpc_reply__unpack(
			    NULL, nng_msg_len(m), nng_msg_body(m));
			if (rep == NULL)
				e = DRE_ENOMEM;
		}
		queued_end(c, q, e, rep);
	}
	if (all != NULL)
		dre__rpc_reply__free_unpacked(all, NULL);
	free(items);
	if (m != NULL)
		nng_msg_free(m);
}

// call_send sends req in its own message.
static dre_err
call_send(dre_rpc_client *c, const Dre__RpcRequest *req, int timeout_ms,
    dre_rpc_done done, void *arg)
{
	rpc_op  *op;
	nng_msg *m;
	dre_err  err = call_start(c, req, timeout_ms, &op, &m);

	if (err != DRE_OK)
		return err;
	op->done = done;
	op->arg = arg;
	op->state = OP_SEND;
	nng_aio_set_msg(op->aio, m);
	nng_aio_set_timeout(op->aio, timeout_ms > 0 ? timeout_ms : 1);
	nng_ctx_send(op->ctx, op->aio);
	return DRE_OK;
}

dre_err
dre_rpc_call_async(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_done done, void *arg)
{
	return call_send(c, req, timeout_ms, done, arg);
}

dre_err
dre_rpc_call_coalesced(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_done done, void *arg)
{
	if (c->co_limit == 0 || atomic_load(&c->co_off))
		return call_send(c, req, timeout_ms, done, arg);
	pthread_mutex_lock(&c->mu);
	// In order: nothing overtakes the calls already waiting.
	bool now = c->inflight < c->co_limit && c->qhead == NULL;
	if (now)
		c->inflight++;
	pthread_mutex_unlock(&c->mu);
	if (!now)
		return call_queue(c, req, timeout_ms, done, arg);
	rpc_queued *q;
	dre_err     err = queued_new(c, req, timeout_ms, done, arg, &q);
	if (err == DRE_OK && (err = queued_send(c, q, 1, true)) != DRE_OK)
		free(q);
	if (err != DRE_OK)
		uncount(c);
	return err;
}

// send_wait sends the op's message on its callback-less aio and waits in
// the calling thread: nng completes such an aio where the I/O completes,
// with no hand-off to its task threads (one thread switch less per step;
// dre_rpc_call_end waits for the receive the same way).
static int
send_wait(rpc_op *op)
{
	int64_t left = op->deadline - dre_mono_ms();

	nng_aio_set_timeout(op->waio, left > 0 ? (nng_duration) left : 1);
	nng_ctx_send(op->ctx, op->waio);
	nng_aio_wait(op->waio);
	return nng_aio_result(op->waio);
}

dre_err
dre_rpc_call_begin(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_op **opp)
{
	rpc_op  *op;
	nng_msg *m;
	dre_err  err = call_start(c, req, timeout_ms, &op, &m);
	int      rv;

	*opp = NULL;
	if (err != DRE_OK)
		return err;
	if (op->waio == NULL && nng_aio_alloc(&op->waio, NULL, NULL) != 0) {
		nng_msg_free(m);
		op_release(op);
		return DRE_ENOMEM;
	}
	nng_aio_set_msg(op->waio, m);
	if ((rv = send_wait(op)) != 0) {
		nng_msg_free(nng_aio_get_msg(op->waio));
		nng_aio_set_msg(op->waio, NULL);
		err = map_nng(rv, true);
		op_count(op, err);
		op_release(op);
		return err;
	}
	// The receive is posted once the send is done (cancelling a receive
	// while its send still waits for a pipe is not safe in nng 1.5.2) and
	// runs while the caller does something else.
	int64_t left = op->deadline - dre_mono_ms();
	nng_aio_set_timeout(op->waio, left > 0 ? (nng_duration) left : 1);
	nng_ctx_recv(op->ctx, op->waio);
	*opp = op;
	return DRE_OK;
}

dre_err
dre_rpc_call_end(dre_rpc_op *op, Dre__RpcReply **repp)
{
	nng_aio_wait(op->waio);
	int     rv = nng_aio_result(op->waio);
	dre_err err = rv != 0 ? map_nng(rv, false)
	                      : reply_of(nng_aio_get_msg(op->waio), repp);
	nng_aio_set_msg(op->waio, NULL);
	op_count(op, err);
	op_release(op);
	return err;
}

dre_err
dre_rpc_call_sync(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, Dre__RpcReply **repp)
{
	dre_rpc_op *op;
	dre_err     err = dre_rpc_call_begin(c, req, timeout_ms, &op);
	return err == DRE_OK ? dre_rpc_call_end(op, repp) : err;
}
