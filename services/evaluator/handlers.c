// handlers.c -- evaluator.Evaluate / Simulate / Heartbeat: counters per
// transaction, one arena per request, the engine in between.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/clock.h"
#include "dre/log.h"
#include "dre/uuid.h"
#include "evaluate.pb-c.h"
#include "handlers.h"

#ifndef DRE_VERSION
#define DRE_VERSION "0.0.0"
#endif

#define TXID_MAX  50
#define ITEMS_MAX 1000
// The first block covers a 20-line basket and its answer; bigger baskets
// chain more blocks, and a reset keeps only the first.
#define ARENA_BLOCK (64 * 1024)

static void
arena_destroy(void *a)
{
	dre_arena_free(a);
}

dre_err
ev_handlers_init(ev_svc *s)
{
	for (int i = 0; i < EV_STRIPES; i++)
		pthread_mutex_init(&s->stripes[i], NULL);
	return pthread_key_create(&s->arena_key, arena_destroy) == 0
	    ? DRE_OK
	    : DRE_ENOMEM;
}

void
ev_handlers_fini(ev_svc *s)
{
	for (int i = 0; i < EV_STRIPES; i++)
		pthread_mutex_destroy(&s->stripes[i]);
	// The calling thread's arena (if any) is not freed by the key's
	// destructor once the key is gone.
	arena_destroy(pthread_getspecific(s->arena_key));
	pthread_setspecific(s->arena_key, NULL);
	pthread_key_delete(s->arena_key);
}

static dre_arena *
worker_arena(ev_svc *s)
{
	dre_arena *a = pthread_getspecific(s->arena_key);
	if (a == NULL) {
		a = dre_arena_alloc(ARENA_BLOCK);
		if (a != NULL && pthread_setspecific(s->arena_key, a) != 0) {
			dre_arena_free(a);
			a = NULL;
		}
	} else
		dre_arena_reset(a);
	return a;
}

static void *
pb_alloc(void *data, size_t n)
{
	return dre_arena_get(data, n);
}

static void
pb_free(void *data, void *p)
{
	// Freed with the arena.
}

// ---- counters
// ----------------------------------------------------------------

static size_t
txn_key(char *buf, size_t cap, const char *tenant, const char *txid)
{
	size_t lt = strlen(tenant), lx = strlen(txid);
	if (lt + lx + 2 > cap)
		return 0;
	memcpy(buf, tenant, lt + 1);
	memcpy(buf + lt + 1, txid, lx);
	return lt + 1 + lx;
}

static void
put_be64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t) v;
		v = (int64_t) ((uint64_t) v >> 8);
	}
}

static int64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t) v;
}

// last_counter reads the last counter of a transaction (0 when new).
static dre_err
last_counter(ev_svc *s, const char *key, size_t klen, int64_t *last)
{
	char   *val;
	size_t  vlen;
	dre_err err = dre_store_get(s->st, EV_CF_TXN, key, klen, &val, &vlen);
	if (err == DRE_ENOTFOUND) {
		*last = 0;
		return DRE_OK;
	}
	if (err != DRE_OK)
		return err;
	*last = vlen == 8 ? get_be64((const uint8_t *) val) : 0;
	free(val);
	return DRE_OK;
}

static uint32_t
stripe_of(const char *key, size_t klen)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ (unsigned char) key[i]) * 16777619u;
	return h % EV_STRIPES;
}

// iteration_write stores the new counter and what this iteration granted
// (read by confirm) in one batch. Not synced: the WAL survives a process
// kill, and an iteration lost with the machine is re-evaluated by the POS.
static dre_err
iteration_write(ev_svc *s, const char *key, size_t klen, int64_t counter,
    const Dre__EvaluateResponse *r)
{
	uint8_t be[8];
	char    ikey[256];
	dre_buf val = { 0 };
	put_be64(be, counter);
	if (klen + 9 > sizeof(ikey))
		return DRE_EINVAL;
	memcpy(ikey, key, klen);
	ikey[klen] = '\0';
	memcpy(ikey + klen + 1, be, 8);
	const Dre__Totals *t = r->totals;
	dre_buf_printf(&val,
	    "{\"evaluatedAt\":%lld,\"discount\":%lld,"
	    "\"promotions\":[",
	    (long long) r->evaluated_at_ms, (long long) t->discount);
	for (size_t i = 0; i < t->n_promotion_breakdown; i++) {
		const Dre__PromotionBreakdown *b = t->promotion_breakdown[i];
		dre_buf_printf(&val, "%s{\"id\":\"%s\",\"amount\":%lld}",
		    i ? "," : "", b->promotion_id,
		    (long long) b->total_discount);
	}
	dre_buf_puts(&val, "]}");
	if (val.oom) {
		dre_buf_free(&val);
		return DRE_ENOMEM;
	}
	dre_batch *b = dre_batch_alloc();
	if (b == NULL) {
		dre_buf_free(&val);
		return DRE_ENOMEM;
	}
	dre_batch_put(b, s->st, EV_CF_TXN, key, klen, be, 8);
	dre_batch_put(b, s->st, EV_CF_TXN, ikey, klen + 9, val.data, val.len);
	dre_err err = dre_store_write(s->st, b, false);
	dre_batch_free(b);
	dre_buf_free(&val);
	return err;
}

// ---- evaluate / simulate
// ---------------------------------------------------------

static bool
request_valid(const Dre__EvaluateRequest *req, dre_rpc_reply *rep)
{
	if (req->n_items == 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "items",
		    "items must not be empty");
		return false;
	}
	if (req->n_items > ITEMS_MAX) {
		dre_rpc_reply_error(rep, 413, "PAYLOAD_TOO_LARGE", "items",
		    "more than %d items", ITEMS_MAX);
		return false;
	}
	for (size_t i = 0; i < req->n_items; i++)
		if (req->items[i]->quantity == 0) {
			char target[48];
			snprintf(
			    target, sizeof(target), "items[%zu].quantity", i);
			dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
			    target, "quantity must not be 0");
			return false;
		}
	const char *txid = req->header ? req->header->transaction_id : NULL;
	if (txid != NULL && strlen(txid) > TXID_MAX) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "header.transactionId", "transactionId longer than %d",
		    TXID_MAX);
		return false;
	}
	return true;
}

static void
h_evaluate(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc    *s = svc;
	bool       simulate = strcmp(call->method, "evaluator.Simulate") == 0;
	dre_arena *a = worker_arena(s);
	if (a == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	if (call->tenant[0] == '\0') {
		dre_rpc_reply_error(
		    rep, 401, "UNAUTHORIZED", NULL, "no tenant in the call");
		return;
	}
	ProtobufCAllocator    al = { pb_alloc, pb_free, a };
	Dre__EvaluateRequest *req
	    = dre__evaluate_request__unpack(&al, call->body_len, call->body);
	if (req == NULL) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", NULL,
		    "body is not a dre.EvaluateRequest");
		return;
	}
	if (!request_valid(req, rep))
		return;

	const char *txid = req->header ? req->header->transaction_id : NULL;
	bool        fresh = txid == NULL || txid[0] == '\0';
	if (fresh) {
		char *id = dre_arena_get(a, DRE_UUID_LEN + 1);
		if (id == NULL) {
			dre_rpc_reply_error(
			    rep, 503, "UNAVAILABLE", NULL, "out of memory");
			return;
		}
		dre_uuid_v4(id);
		txid = id;
	}
	char   key[128]; // tenant (64) + NUL + transactionId (50)
	size_t klen = txn_key(key, sizeof(key), call->tenant, txid);
	if (klen == 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "header.transactionId", "transactionId too long");
		return;
	}

	dre_eval_ctx     ctx = { .tenant = call->tenant,
		    .now_ms = dre_now_ms(),
		    .transaction_id = txid,
		    .currency = s->cfg.currency,
		    .instance_id = s->cfg.common.instance_id,
		    .source = s->source,
		    .simulate = simulate };
	pthread_mutex_t *mu
	    = simulate ? NULL : &s->stripes[stripe_of(key, klen)];
	int64_t last = 0;
	dre_err err = DRE_OK;
	if (mu != NULL)
		pthread_mutex_lock(mu);
	if (!fresh)
		err = last_counter(s, key, klen, &last);
	Dre__EvaluateResponse *resp = NULL;
	dre_eval_error         verr = { 0 };
	if (err == DRE_OK) {
		ctx.counter = last + 1;
		const dre_index *ix = dre_engine_acquire(s->engine);
		err = dre_evaluate(&resp, a, ix, req, &ctx, &verr);
		dre_index_release(ix);
		if (err == DRE_OK && !simulate)
			err = iteration_write(s, key, klen, ctx.counter, resp);
		else if (err == DRE_EINVAL && verr.code == NULL)
			verr.code = "VALIDATION_FAILED";
	}
	if (mu != NULL)
		pthread_mutex_unlock(mu);
	if (err == DRE_EINVAL) {
		dre_rpc_reply_error(rep, verr.status ? verr.status : 400,
		    verr.code, verr.target[0] ? verr.target : NULL, "%s",
		    verr.message);
		return;
	}
	if (err != DRE_OK) {
		dre_warn("evaluate %s/%s: %s", call->tenant, txid,
		    dre_strerror(err));
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "evaluation failed: %s", dre_strerror(err));
		return;
	}
	size_t len = dre__evaluate_response__get_packed_size(resp);
	dre_buf_reserve(&rep->body, len + 1);
	if (rep->body.oom) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	dre__evaluate_response__pack(resp, (uint8_t *) rep->body.data);
	rep->body.len = len;
}

// ---- heartbeat
// ----------------------------------------------------------------------

static void
h_heartbeat(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc                *s = svc;
	Dre__HeartbeatResponse hb = DRE__HEARTBEAT_RESPONSE__INIT;
	bool                   up = atomic_load(&s->kafka_ok);
	const dre_index       *ix = dre_engine_acquire(s->engine);
	hb.status
	    = (char *) (atomic_load(&s->loaded) && up ? "UP" : "DEGRADED");
	hb.version = DRE_VERSION;
	hb.mode = s->cfg.mode;
	// After three failed probes in a row the link counts as broken, as a
	// circuit breaker would open; one miss is only a disconnect.
	hb.btp_connectivity = (char *) (up             ? "CONNECTED"
	        : atomic_load(&s->kafka_failures) >= 3 ? "CIRCUIT_OPEN"
	                                               : "DISCONNECTED");
	int64_t sync = atomic_load(&s->last_sync_ms);
	if (sync > 0) {
		hb.has_last_sync_ms = true;
		hb.last_sync_ms = sync;
	}
	hb.pending_transactions = 0;
	hb.promotions_loaded = (int64_t) dre_index_promotions(
	    ix, call->tenant[0] ? call->tenant : NULL);
	dre_index_release(ix);
	hb.uptime_s = (dre_now_ms() - s->started_ms) / 1000;
	size_t len = dre__heartbeat_response__get_packed_size(&hb);
	dre_buf_reserve(&rep->body, len + 1);
	if (rep->body.oom) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	dre__heartbeat_response__pack(&hb, (uint8_t *) rep->body.data);
	rep->body.len = len;
}

const dre_rpc_route ev_routes[] = {
	{ "evaluator.Evaluate", h_evaluate, DRE_RPC_INLINE },
	{ "evaluator.Simulate", h_evaluate, DRE_RPC_INLINE },
	{ "evaluator.Heartbeat", h_heartbeat },
	{ NULL, NULL, 0 },
};
