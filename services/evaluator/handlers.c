// handlers.c -- evaluator.Evaluate / Simulate / Heartbeat: counters per
// transaction, one arena per request, the engine in between.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/hash.h"
#include "dre/outbox.h"
#include "dre/store.h"
#include "dre/arena.h"
#include "dre/changes.h"
#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/log.h"
#include "dre/uuid.h"
#include "dre/version.h"
#include "confirm.pb-c.h"
#include "coupon.pb-c.h"
#include "dre/promo.h"
#include "evaluate.pb-c.h"
#include "confirm.h"
#include "handlers.h"
#include "personal.h"

#define TXID_MAX    50
#define ITEMS_MAX   1000
#define COUPONS_MAX 100 // what one coupon.Check answers
// coupon.Check waits at most this long, and at most half of what is left
// of the evaluate deadline: the basket is priced in time either way.
#define COUPON_CHECK_MS 300
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
	s->counters = calloc(
	    (size_t) EV_STRIPES * EV_COUNTER_WAYS, sizeof(*s->counters));
	if (s->counters == NULL)
		return DRE_ENOMEM;
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
	free(s->counters);
	s->counters = NULL;
	// The calling thread's arena (if any) is not freed by the key's
	// destructor once the key is gone.
	arena_destroy(pthread_getspecific(s->arena_key));
	pthread_setspecific(s->arena_key, NULL);
	pthread_key_delete(s->arena_key);
}

dre_arena *
ev_worker_arena(ev_svc *s)
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

// ---- counters
// ----------------------------------------------------------------

size_t
ev_txn_key(char *buf, size_t cap, const char *tenant, const char *txid)
{
	return dre_key(buf, cap, 0, 2, tenant, txid);
}

// counter_slot is the one slot key may be remembered in (its stripe's
// way picked by the hash's higher bits).
static ev_counter_slot *
counter_slot(ev_svc *s, uint32_t h)
{
	return &s->counters[(size_t) (h % EV_STRIPES) * EV_COUNTER_WAYS
	    + (h / EV_STRIPES) % EV_COUNTER_WAYS];
}

dre_err
ev_counter_get(ev_svc *s, const char *key, size_t klen, int64_t *last)
{
	uint32_t         h = dre_fnv1a32(DRE_FNV32_INIT, key, klen);
	ev_counter_slot *c = counter_slot(s, h);
	int64_t          ttl = s->cfg.iterations_ttl_ms;
	if (c->klen != 0 && c->hash == h && c->klen == klen
	    && memcmp(c->key, key, klen) == 0
	    && (ttl <= 0 || dre_now_ms() - c->at < ttl)) {
		*last = c->counter;
		return DRE_OK;
	}
	char   *val;
	size_t  vlen;
	dre_err err = dre_store_get(s->st, EV_CF_TXN, key, klen, &val, &vlen);
	if (err == DRE_ENOTFOUND) {
		*last = 0;
		return DRE_OK;
	}
	if (err != DRE_OK)
		return err;
	// counter(8), then the time of the evaluation (8; older stores: none)
	*last = vlen >= 8 ? dre_be64_get((const uint8_t *) val) : 0;
	free(val);
	return DRE_OK;
}

void
ev_counter_set(
    ev_svc *s, const char *key, size_t klen, int64_t counter, int64_t at)
{
	uint32_t         h = dre_fnv1a32(DRE_FNV32_INIT, key, klen);
	ev_counter_slot *c = counter_slot(s, h);
	if (klen == 0 || klen > sizeof(c->key))
		return; // not remembered: read from the store each time
	c->hash = h;
	c->klen = (uint8_t) klen;
	memcpy(c->key, key, klen);
	c->counter = counter;
	c->at = at;
}

int64_t
ev_pb_first_varint(const char *val, size_t vlen)
{
	const uint8_t *p = (const uint8_t *) val;
	if (vlen < 2 || p[0] != 0x08) // field 1, wire type varint
		return -1;
	uint64_t v = 0;
	for (size_t i = 1; i < vlen && i <= 10; i++) {
		v |= (uint64_t) (p[i] & 0x7f) << (7 * (i - 1));
		if ((p[i] & 0x80) == 0)
			return v > INT64_MAX ? -1 : (int64_t) v;
	}
	return -1;
}

int64_t
ev_txn_record_time(const char *key, size_t klen, const char *val, size_t vlen)
{
	// tenant \0 transactionId is a counter; an iteration has its own
	// \0 and counter after it (neither part holds a NUL).
	size_t nuls = 0;
	for (size_t i = 0; i < klen; i++)
		nuls += key[i] == '\0';
	if (nuls <= 1)
		return vlen == 16 ? dre_be64_get((const uint8_t *) val + 8)
		                  : -1;
	return ev_pb_first_varint(val, vlen);
}

size_t
ev_iter_key(char *buf, size_t cap, const char *tenant, const char *txid,
    int64_t counter)
{
	size_t klen = ev_txn_key(buf, cap, tenant, txid);
	if (klen == 0 || klen + 9 > cap)
		return 0;
	buf[klen] = '\0';
	dre_be64_put((uint8_t *) buf + klen + 1, counter);
	return klen + 9;
}

static uint32_t
stripe_of(const char *key, size_t klen)
{
	return dre_fnv1a32(DRE_FNV32_INIT, key, klen) % EV_STRIPES;
}

pthread_mutex_t *
ev_stripe(ev_svc *s, const char *key, size_t klen)
{
	return &s->stripes[stripe_of(key, klen)];
}

// find_discount returns the first line discount of promotion id (for its
// type and coupon), or NULL.
static const Dre__LineDiscount *
find_discount(const Dre__EvaluateResponse *r, const char *id)
{
	for (size_t i = 0; i < r->n_line_items; i++)
		for (size_t k = 0; k < r->line_items[i]->n_discounts; k++)
			if (strcmp(
			        r->line_items[i]->discounts[k]->promotion_id,
			        id)
			    == 0)
				return r->line_items[i]->discounts[k];
	return NULL;
}

// iteration_write stores the new counter and what this iteration granted
// (read by confirm: the lines, every promotion with its amount, type,
// coupon and budgets) in one batch. Not synced: the WAL survives a process
// kill, and an iteration lost with the machine is re-evaluated by the POS.
static dre_err
iteration_write(ev_svc *s, dre_arena *a, const char *key, size_t klen,
    int64_t counter, const Dre__EvaluateRequest *req,
    const Dre__EvaluateResponse *r, const eng_index *ix, const char *tenant)
{
	uint8_t be[16]; // the counter, then the time of this evaluation
	char    ikey[256];
	dre_be64_put(be, counter);
	dre_be64_put(be + 8, r->evaluated_at_ms);
	if (klen + 9 > sizeof(ikey))
		return DRE_EINVAL;
	memcpy(ikey, key, klen);
	ikey[klen] = '\0';
	memcpy(ikey + klen + 1, be, 8);

	Dre__IterationRecord rec = DRE__ITERATION_RECORD__INIT;
	const Dre__Totals   *t = r->totals;
	rec.evaluated_at = r->evaluated_at_ms;
	rec.currency = r->currency;
	rec.has_timestamp_ms = req->has_timestamp_ms;
	rec.timestamp_ms = req->timestamp_ms;
	rec.channel = req->channel;
	rec.pos_group_id = req->pos_group_id;
	rec.pos_group_code = req->pos_group_code;
	rec.customer_id = req->customer ? req->customer->customer_id : NULL;
	rec.receipt_id = req->header ? req->header->receipt_id : NULL;
	rec.subtotal = t->subtotal;
	rec.discount = t->discount;
	rec.has_loyalty_points = true;
	rec.loyalty_points = t->loyalty_points_earned;
	rec.lines = dre_arena_get(a, (r->n_line_items + 1) * sizeof(void *));
	rec.promotions = dre_arena_get(
	    a, (t->n_promotion_breakdown + 1) * sizeof(void *));
	if (rec.lines == NULL || rec.promotions == NULL)
		return DRE_ENOMEM;
	for (size_t i = 0; i < r->n_line_items; i++) {
		const Dre__LineItem *li = r->line_items[i];
		Dre__IterationLine  *l = dre_arena_get(a, sizeof(*l));
		if (l == NULL)
			return DRE_ENOMEM;
		dre__iteration_line__init(l);
		l->line_reference = li->line_reference;
		l->article_number = li->article_number;
		l->quantity = li->quantity;
		l->unit_price = li->unit_price;
		l->line_total = li->line_total;
		l->line_discount = li->line_discount;
		rec.lines[rec.n_lines++] = l;
	}
	for (size_t i = 0; i < t->n_promotion_breakdown; i++) {
		const Dre__PromotionBreakdown *b = t->promotion_breakdown[i];
		Dre__IterationPromotion *p = dre_arena_get(a, sizeof(*p));
		if (p == NULL)
			return DRE_ENOMEM;
		dre__iteration_promotion__init(p);
		p->promotion_id = b->promotion_id;
		p->promotion_name = b->promotion_name;
		p->amount = b->total_discount;
		const Dre__LineDiscount *d = find_discount(r, b->promotion_id);
		const dre_promo         *pr
		    = eng_index_promotion(ix, tenant, b->promotion_id);
		p->promotion_type = d ? d->promotion_type
		    : pr              ? (char *) dre_promo_type_name(pr->type)
		                      : "ARTICLE";
		p->coupon_code = d ? d->coupon_code : NULL;
		int64_t ver = eng_index_version_of(
		    ix, tenant, ENG_MK_PROMOTION, b->promotion_id);
		if (ver >= 0) {
			p->has_promotion_version = true;
			p->promotion_version = ver;
		}
		if (pr != NULL && pr->budget_ids.n > 0) {
			p->budget_ids = (char **) pr->budget_ids.v;
			p->n_budget_ids = pr->budget_ids.n;
		}
		rec.promotions[rec.n_promotions++] = p;
	}
	size_t   n = dre__iteration_record__get_packed_size(&rec);
	uint8_t *val = dre_arena_get(a, n + 1);
	if (val == NULL)
		return DRE_ENOMEM;
	dre__iteration_record__pack(&rec, val);
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return DRE_ENOMEM;
	dre_batch_put(b, s->st, EV_CF_TXN, key, klen, be, sizeof(be));
	dre_batch_put(b, s->st, EV_CF_TXN, ikey, klen + 9, val, n);
	dre_err err = dre_store_write(s->st, b, false);
	dre_batch_free(b);
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
	if (req->n_coupons > COUPONS_MAX) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "coupons",
		    "more than %d coupons", COUPONS_MAX);
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

// coupons_start asks the coupon service about the basket's codes with one
// coupon.Check (read-only), waiting at most COUPON_CHECK_MS and at most
// half of what is left before deadline_ms: as ev_personal_start, begun
// (*opp) without done, asynchronous with it. DRE_OK when the call was sent.
static dre_err
coupons_start(ev_svc *s, const char *tenant, int64_t deadline_ms,
    const Dre__EvaluateRequest *req, const char *txid, dre_arena *a,
    dre_rpc_op **opp, dre_rpc_done done, void *arg)
{
	int64_t now = dre_now_ms();
	int64_t wait = COUPON_CHECK_MS;
	if (deadline_ms > 0 && (deadline_ms - now) / 2 < wait)
		wait = (deadline_ms - now) / 2;
	if (s->coupon_cli == NULL || wait < 1)
		return DRE_EUNAVAIL;
	Dre__CouponCheckRequest cr = DRE__COUPON_CHECK_REQUEST__INIT;
	cr.codes = req->coupons;
	cr.n_codes = req->n_coupons;
	cr.customer_id = req->customer ? req->customer->customer_id : NULL;
	cr.transaction_id = (char *) txid;
	cr.has_at_ms = true;
	cr.at_ms = req->has_timestamp_ms ? req->timestamp_ms : now;
	size_t   blen = dre__coupon_check_request__get_packed_size(&cr);
	uint8_t *body = dre_arena_get(a, blen + 1);
	if (body == NULL)
		return DRE_ENOMEM;
	dre__coupon_check_request__pack(&cr, body);
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	rq.method = "coupon.Check";
	rq.tenant = (char *) tenant;
	rq.principal = "evaluator";
	rq.has_deadline_unix_ms = true;
	rq.deadline_unix_ms = now + wait;
	rq.has_body = true;
	rq.body.data = body;
	rq.body.len = blen;
	dre_err err = done != NULL
	    ? dre_rpc_call_async(s->coupon_cli, &rq, (int) wait, done, arg)
	    : dre_rpc_call_begin(s->coupon_cli, &rq, (int) wait, opp);
	if (err != DRE_OK)
		dre_warn(
		    "coupon.Check %s/%s: %s", tenant, txid, dre_strerror(err));
	return err;
}

// coupons_read reads coupon.Check's answer rr (freed here; NULL: none came,
// err says why, logged unless DRE_OK): one result per code, in order,
// allocated in a; NULL without an answer or with an unusable one (the
// engine then reports every code UNAVAILABLE).
static const eng_coupon_result *
coupons_read(Dre__RpcReply *rr, dre_err err, const char *tenant,
    const Dre__EvaluateRequest *req, const char *txid, dre_arena *a)
{
	if (rr == NULL) {
		if (err != DRE_OK)
			dre_warn("coupon.Check %s/%s: %s", tenant, txid,
			    dre_strerror(err));
		return NULL;
	}
	ProtobufCAllocator        al = dre_arena_pb(a);
	Dre__CouponCheckResponse *cp = NULL;
	if (rr->status == 200)
		cp = dre__coupon_check_response__unpack(
		    &al, rr->has_body ? rr->body.len : 0, rr->body.data);
	else
		dre_warn("coupon.Check %s/%s: %d %s", tenant, txid, rr->status,
		    rr->error_message ? rr->error_message : "");
	dre_rpc_reply_msg_free(rr);
	if (cp == NULL || cp->n_results != req->n_coupons)
		return NULL;
	eng_coupon_result *v
	    = dre_arena_get(a, (cp->n_results + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < cp->n_results; i++) {
		const Dre__CouponCheckResult *x = cp->results[i];
		v[i].code = req->coupons[i];
		v[i].valid = x->valid;
		v[i].reason = x->reason;
		if (x->coupon_type != NULL) {
			v[i].type_id = x->coupon_type->id;
			v[i].type_name = x->coupon_type->name;
			v[i].stackable = x->coupon_type->is_stackable;
		}
		v[i].promotion_ids = (const char *const *) x->promotion_ids;
		v[i].npromotion_ids = x->n_promotion_ids;
	}
	return v;
}

// evaluate_pack writes resp into the reply's body (503 when out of memory):
// the client's JSON (dre_evalresp_write) when the caller asked for it
// (req->answer_json: the gateway copies it to the wire), else packed.
static void
evaluate_pack(dre_rpc_reply *rep, const Dre__EvaluateRequest *req,
    const Dre__EvaluateResponse *resp)
{
	if (req->answer_json) {
		// Room for the whole answer at once (a 20-line answer is
		// ~19 KB): growing by doubling copied it five times.
		dre_buf_reserve(&rep->body, 2048 + 1024 * resp->n_line_items);
		dre_evalresp_write(&rep->body, resp);
		if (rep->body.oom) {
			dre_buf_reset(&rep->body);
			dre_rpc_reply_error(
			    rep, 503, "UNAVAILABLE", NULL, "out of memory");
			return;
		}
		dre_rpc_reply_json(rep);
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

// One evaluate between the calls it makes -- coupon.Check for a basket with
// coupon codes, loyalty's assignments for a member of a tenant with
// personal promotions -- and its pricing. Called on an nng thread, the
// calls are asynchronous: the handler takes the call over
// (dre_rpc_reply_later) and returns, and the last answer to come (or its
// time-out) prices the basket and answers, so no thread waits and no worker
// is needed. On a worker (an nng thread could not take the call over) they
// are begun side by side and waited for.
typedef struct {
	ev_svc               *s;
	dre_arena            *a; // holds the request and the strings
	Dre__EvaluateRequest *req;
	const char           *tenant;
	const char           *txid;
	const char           *customer; // whose assignments (personal)
	char                  key[128]; // tenant (64) \0 transactionId (50)
	size_t                klen;
	bool                  fresh; // txid made here
	bool                  simulate;
	bool                  personal; // loyalty is asked
	int64_t               deadline_ms;
	// The answers (NULL: none, err says why; DRE_OK when the call could
	// not be sent, which was logged then).
	Dre__RpcReply *crr, *lrr;
	dre_err        cerr, lerr;
	// Asynchronous only: the call taken over, the answers still awaited
	// (+1 while the calls are being sent) and the request id for the log.
	dre_rpc_pending *pending;
	atomic_int       left;
	char            *rid;
} ev_eval;

// price evaluates e's basket with the answers it got and fills rep.
static void
price(ev_eval *e, dre_rpc_reply *rep)
{
	ev_svc      *s = e->s;
	dre_arena   *a = e->a;
	const char  *key = e->key;
	size_t       klen = e->klen;
	eng_eval_ctx ctx = { .tenant = e->tenant,
		.now_ms = dre_now_ms(),
		.transaction_id = e->txid,
		.currency = s->cfg.currency,
		.instance_id = s->cfg.common.instance_id,
		.source = s->source,
		.simulate = e->simulate,
		.budgets = s->budgets };
	if (e->req->n_coupons > 0) {
		ctx.coupons = coupons_read(
		    e->crr, e->cerr, e->tenant, e->req, e->txid, a);
		ctx.ncoupons = ctx.coupons ? e->req->n_coupons : 0;
	}
	if (e->personal)
		ev_personal_read(e->lrr, e->lerr, e->tenant, e->req, a, &ctx);
	e->crr = e->lrr = NULL; // read and freed
	pthread_mutex_t *stripe = &s->stripes[stripe_of(key, klen)];
	pthread_mutex_t *mu = e->simulate ? NULL : stripe;
	int64_t          last = 0;
	dre_err          err = DRE_OK;
	if (mu != NULL)
		pthread_mutex_lock(mu);
	if (!e->fresh && e->simulate) { // the remembered counters need it
		pthread_mutex_lock(stripe);
		err = ev_counter_get(s, key, klen, &last);
		pthread_mutex_unlock(stripe);
	} else if (!e->fresh)
		err = ev_counter_get(s, key, klen, &last);
	Dre__EvaluateResponse *resp = NULL;
	eng_eval_error         verr = { 0 };
	// The response borrows strings (promotion ids, names, texts) from the
	// index: the reference is held until the answer is packed, so that a
	// master-data change swapping the index meanwhile cannot free them.
	const eng_index *ix = NULL;
	if (err == DRE_OK) {
		ctx.counter = last + 1;
		ix = eng_acquire(s->engine);
		err = eng_evaluate(&resp, a, ix, e->req, &ctx, &verr);
		if (err == DRE_OK && !e->simulate) {
			err = iteration_write(s, a, key, klen, ctx.counter,
			    e->req, resp, ix, e->tenant);
			if (err == DRE_OK)
				ev_counter_set(s, key, klen, ctx.counter,
				    resp->evaluated_at_ms);
		} else if (err == DRE_EINVAL && verr.code == NULL)
			verr.code = "VALIDATION_FAILED";
	}
	if (mu != NULL)
		pthread_mutex_unlock(mu);
	if (err == DRE_OK)
		evaluate_pack(rep, e->req, resp);
	eng_index_release(ix);
	if (err == DRE_EINVAL) {
		dre_rpc_reply_error(rep, verr.status ? verr.status : 400,
		    verr.code, verr.target[0] ? verr.target : NULL, "%s",
		    verr.message);
		return;
	}
	if (err != DRE_OK) {
		dre_warn("evaluate %s/%s: %s", e->tenant, e->txid,
		    dre_strerror(err));
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "evaluation failed: %s", dre_strerror(err));
	}
}

// eval_release counts one answer (or the end of sending) of an
// asynchronous evaluate; the last prices the basket, answers and frees it.
static void
eval_release(ev_eval *e)
{
	if (atomic_fetch_sub(&e->left, 1) != 1)
		return;
	dre_rpc_reply rep = { 0 };
	dre_log_set_request_id(e->rid);
	price(e, &rep);
	dre_log_set_request_id(NULL);
	dre_rpc_answer(e->pending, &rep);
	dre_arena_free(e->a);
	free(e->rid);
	free(e);
}

static void
coupon_answered(void *arg, dre_err err, Dre__RpcReply *rr)
{
	ev_eval *e = arg;
	e->crr = rr;
	e->cerr = err;
	eval_release(e);
}

static void
loyalty_answered(void *arg, dre_err err, Dre__RpcReply *rr)
{
	ev_eval *e = arg;
	e->lrr = rr;
	e->lerr = err;
	eval_release(e);
}

// eval_async sends e's calls and leaves the rest to their answers: false
// when the call cannot be taken over (then nothing was sent).
static bool
eval_async(ev_eval *e, const dre_rpc_call *call)
{
	ev_eval *h = malloc(sizeof(*h));
	char    *rid = NULL;
	if (h == NULL
	    || (call->req != NULL && call->req->request_id != NULL
	        && (rid = strdup(call->req->request_id)) == NULL)) {
		free(h);
		return false;
	}
	if ((e->pending = dre_rpc_reply_later(call)) == NULL) {
		free(rid);
		free(h);
		return false;
	}
	*h = *e;
	h->rid = rid;
	// The arena holds the request: it is this evaluate's from now on,
	// and the thread makes itself a new one for its next call.
	pthread_setspecific(e->s->arena_key, NULL);
	atomic_init(&h->left, 1);
	if (h->req->n_coupons > 0) {
		atomic_fetch_add(&h->left, 1);
		if (coupons_start(h->s, h->tenant, h->deadline_ms, h->req,
		        h->txid, h->a, NULL, coupon_answered, h)
		    != DRE_OK)
			atomic_fetch_sub(&h->left, 1);
	}
	if (h->personal) {
		atomic_fetch_add(&h->left, 1);
		if (ev_personal_start(h->s, h->tenant, h->deadline_ms,
		        h->customer, NULL, loyalty_answered, h)
		    != DRE_OK)
			atomic_fetch_sub(&h->left, 1);
	}
	eval_release(h);
	return true;
}

// eval_sync asks coupon and loyalty side by side and waits for both.
static void
eval_sync(ev_eval *e)
{
	dre_rpc_op *cop = NULL, *lop = NULL;
	if (e->req->n_coupons > 0)
		(void) coupons_start(e->s, e->tenant, e->deadline_ms, e->req,
		    e->txid, e->a, &cop, NULL, NULL);
	if (e->personal)
		(void) ev_personal_start(e->s, e->tenant, e->deadline_ms,
		    e->customer, &lop, NULL, NULL);
	if (cop != NULL)
		e->cerr = dre_rpc_call_end(cop, &e->crr);
	if (lop != NULL)
		e->lerr = dre_rpc_call_end(lop, &e->lrr);
}

static void
h_evaluate(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc    *s = svc;
	dre_arena *a = ev_worker_arena(s);
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
	ProtobufCAllocator    al = dre_arena_pb(a);
	Dre__EvaluateRequest *req
	    = dre__evaluate_request__unpack(&al, call->body_len, call->body);
	if (req == NULL) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", NULL,
		    "body is not a dre.EvaluateRequest");
		return;
	}
	if (!request_valid(req, rep))
		return;
	ev_eval e = { .s = s,
		.a = a,
		.req = req,
		.tenant = call->tenant,
		.simulate = strcmp(call->method, "evaluator.Simulate") == 0,
		.deadline_ms = call->deadline_ms };
	// A known customer of a tenant with personal promotions, or with
	// LOYALTY_TIER conditions and a basket that states no tier: loyalty is
	// asked (one call) which ones the customer holds and its level.
	e.customer = ev_personal_customer(req);
	if (e.customer != NULL) {
		const eng_index *pix = eng_acquire(s->engine);
		unsigned need = eng_index_loyalty_needs(pix, call->tenant);
		eng_index_release(pix);
		bool tier = req->customer->loyalty_tier != NULL
		    && req->customer->loyalty_tier[0] != '\0';
		e.personal = (need & ENG_LOYALTY_PERSONAL) != 0
		    || ((need & ENG_LOYALTY_TIER) != 0 && !tier);
	}
	e.txid = req->header ? req->header->transaction_id : NULL;
	e.fresh = e.txid == NULL || e.txid[0] == '\0';
	if (e.fresh) {
		char *id = dre_arena_get(a, DRE_UUID_LEN + 1);
		if (id == NULL) {
			dre_rpc_reply_error(
			    rep, 503, "UNAVAILABLE", NULL, "out of memory");
			return;
		}
		dre_uuid_v4(id);
		e.txid = id;
	}
	e.klen = ev_txn_key(e.key, sizeof(e.key), call->tenant, e.txid);
	if (e.klen == 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "header.transactionId", "transactionId too long");
		return;
	}
	if (req->n_coupons == 0 && !e.personal) {
		price(&e, rep);
		return;
	}
	// The call's strings are the caller's only until this returns.
	if ((e.tenant = dre_arena_strdup(a, call->tenant)) == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	if (!call->on_worker) {
		if (!eval_async(&e, call))
			rep->defer = true; // a worker asks and waits
		return;
	}
	eval_sync(&e);
	price(&e, rep);
}

// ---- read-your-writes
// ----------------------------------------------------------------------

// The longest a write may ask to wait (catalog.propagation_wait_ms).
#define EV_AWAIT_MAX_MS 10000

// changes_applied tells whether ix holds every change of body (lines of
// KIND \t key \t version, as the catalog reports a write) at its version
// or a later one.
// A BUDGET line is a budget's status change (dre.budgets.status, applied to
// the engine's budget set), the others master data (the index). *budget is
// set when a budget change is still missing.
static bool
changes_applied(const ev_svc *s, const eng_index *ix, const char *tenant,
    const uint8_t *body, size_t len, bool *budget)
{
	char        line[512];
	const char *kind, *key;
	int64_t     version;
	size_t      pos = 0;
	*budget = false;
	while (dre_changes_next(
	    body, len, &pos, line, sizeof line, &kind, &key, &version)) {
		eng_master_kind k;
		if (strcmp(kind, "BUDGET") == 0) {
			if (eng_budget_set_version(s->budgets, tenant, key)
			    < version) {
				*budget = true;
				return false;
			}
		} else if (eng_master_kind_parse(&k, kind) == DRE_OK
		    && eng_index_version_of(ix, tenant, k, key) < version)
			return false;
	}
	return true;
}

// h_await answers once this evaluator prices with every change of the
// body (200), or after wait_ms with the changes still missing (202): the
// gateway holds a master-data write's answer on it (PRODUCT-DECISIONS §4b).
static void
h_await(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc     *s = svc;
	const char *w = dre_rpc_param(call, "wait_ms");
	long long   wait = w != NULL ? strtoll(w, NULL, 10) : 2000;
	if (wait < 0)
		wait = 0;
	if (wait > EV_AWAIT_MAX_MS)
		wait = EV_AWAIT_MAX_MS;
	int64_t          until = dre_mono_ms() + wait;
	const eng_index *ix = eng_acquire(s->engine);
	for (;;) {
		bool budget;
		if (changes_applied(s, ix, call->tenant, call->body,
		        call->body_len, &budget))
			break;
		int64_t left = until - dre_mono_ms();
		if (left <= 0) {
			rep->status = 202;
			break;
		}
		// A budget state does not swap the index: look again soon.
		eng_wait(s->engine, ix, budget && left > 2 ? 2 : (int) left);
		eng_index_release(ix);
		ix = eng_acquire(s->engine);
	}
	eng_index_release(ix);
}

// ---- heartbeat
// ----------------------------------------------------------------------

static void
h_heartbeat(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc                *s = svc;
	Dre__HeartbeatResponse hb = DRE__HEARTBEAT_RESPONSE__INIT;
	const char            *btp = ev_btp_connectivity(s);
	bool                   up = strcmp(btp, "CONNECTED") == 0;
	const eng_index       *ix = eng_acquire(s->engine);
	hb.status
	    = (char *) (atomic_load(&s->loaded) && up ? "UP" : "DEGRADED");
	hb.version = DRE_VERSION;
	hb.mode = s->cfg.mode;
	hb.btp_connectivity = (char *) btp;
	int64_t sync = atomic_load(&s->last_sync_ms);
	if (sync > 0) {
		hb.has_last_sync_ms = true;
		hb.last_sync_ms = sync;
	}
	hb.pending_transactions
	    = s->ob != NULL ? dre_outbox_pending(s->ob) : 0;
	hb.promotions_loaded = (int64_t) eng_index_promotions(
	    ix, call->tenant[0] ? call->tenant : NULL);
	eng_index_release(ix);
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

// ev_btp_connectivity: after three failed probes in a row, or with the
// confirm relay unable to reach Kafka for 3 s, the link counts as broken
// (CIRCUIT_OPEN: confirms do not wait for Kafka at all); a shorter miss is
// only a disconnect.
const char *
ev_btp_connectivity(ev_svc *s)
{
	bool relay_ok = s->ob == NULL || dre_outbox_connected(s->ob);
	bool feed_ok = atomic_load(&s->kafka_ok);
	if (relay_ok) {
		atomic_store(&s->disconnected_since, 0);
		if (feed_ok)
			return "CONNECTED";
		return atomic_load(&s->kafka_failures) >= 3 ? "CIRCUIT_OPEN"
		                                            : "DISCONNECTED";
	}
	int64_t now = dre_mono_ms(), since = 0;
	if (atomic_compare_exchange_strong(
	        &s->disconnected_since, &since, now))
		since = now;
	return now - since >= 3000 || atomic_load(&s->kafka_failures) >= 3
	    ? "CIRCUIT_OPEN"
	    : "DISCONNECTED";
}

const dre_rpc_route ev_routes[] = {
	{ "evaluator.Evaluate", h_evaluate, DRE_RPC_INLINE },
	{ "evaluator.Simulate", h_evaluate, DRE_RPC_INLINE },
	{ "evaluator.Confirm", ev_h_confirm, DRE_RPC_INLINE },
	{ "evaluator.SideEffects", ev_h_side_effects, 0 },
	{ "evaluator.CalculationAuditLogs.get", ev_h_calc_audit, 0 },
	{ "evaluator.AuditLogs.list", ev_h_audit_list, 0 },
	{ "evaluator.Heartbeat", h_heartbeat },
	{ "evaluator.AwaitChanges", h_await, 0 },
	{ NULL, NULL, 0 },
};
