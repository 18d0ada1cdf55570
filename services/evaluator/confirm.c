// confirm.c -- evaluator.Confirm: an iteration becomes a durable
// TransactionConfirmed event (confirm marker + side-effect job + outbox
// entry in one group-committed, synced batch) before the POS gets its
// answer; evaluator.SideEffects: the job as the poll endpoint shows it; and
// the dre.sidefx.results consumer that folds every service's result into
// the jobs this shard owns.
//
// Keys of EV_CF_CONFIRM:
//   'c' tenant \0 transactionId              -> dre.ConfirmRecord
//   'j' tenant \0 transactionId \0 counter(8) -> dre.SideEffectJob
//   'd' due(8) 'j'-key                      -> "" (a job's deadline)
//   'a' tenant \0 transactionId              -> the calculation audit
//                                               record (JSON, dre/audit.h)
//
// A job with services to wait for gets a deadline, sidefx.timeout_ms after
// the confirm. The sweeper thread visits the deadlines in time order: a job
// not finished by then gets a TIMED_OUT result for every service that has
// not answered ("<service>: no result within N ms" in the answer's reason)
// and so ends PARTIAL (some answered) or FAILED (none did, or every answer
// failed). A result that arrives later still replaces the service's
// TIMED_OUT: the job shows what happened, and may end COMPLETED after all.
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "confirm.h"
#include "confirm.pb-c.h"
#include "dre/audit.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/consumer.h"
#include "dre/hash.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/outbox.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "handlers.h"

#define KEY_MAX          200
#define CACHE_SLOTS      4096
#define MINOR_VERSION    8
#define MSG_CONFIRMED    "Transaction confirmed"
#define TIMED_OUT        "TIMED_OUT" // a service's result set by the sweeper
#define SWEEP_MS         500
#define SWEEP_CHUNK      1000
#define INFLIGHT_BUCKETS 64
#define MSG_QUEUED                                                            \
	"Transaction confirmed and stored; the event backbone is not "        \
	"reachable, so the transaction is queued and will be delivered "      \
	"when it returns"

typedef struct {
	char     key[KEY_MAX];
	size_t   klen;
	int64_t  at; // mono ms the answer was made
	uint64_t gen; // bumped whenever the job changes
	dre_buf  json;
} cache_ent;

struct ev_confirm {
	dre_applier *ap;
	// Held by the results consumer from the start to the end of each
	// batch and by the sweeper while it changes a job: a job is never
	// changed by both at once.
	pthread_mutex_t jobs_mu;
	pthread_t       sweeper;
	bool            sweeping; // the thread runs
	pthread_mutex_t stop_mu;
	pthread_cond_t  stop_cv;
	bool            stop;
	int64_t         swept_to; // wall ms: every deadline before is handled
	pthread_mutex_t mu; // the cache
	cache_ent      *cache;
	char          **expected;
	size_t          nexpected;
	// Jobs changed by the open batch (applier thread only).
	char (*touched)[KEY_MAX];
	size_t *touched_len;
	size_t  ntouched, captouched;
	// Confirms handed to the group commit and not yet durable, by
	// transaction (INFLIGHT_BUCKETS lists, each under its own lock): a
	// repeat of one waits for it as it waited for the stripe lock when
	// the handler held that across the commit. Lock order: the stripe,
	// then a bucket.
	pthread_mutex_t ifmu[INFLIGHT_BUCKETS];
	pthread_cond_t  ifcv[INFLIGHT_BUCKETS];
	struct cjob    *inflight[INFLIGHT_BUCKETS];
	// Confirms not answered yet; ev_confirm_stop waits for none.
	pthread_mutex_t out_mu;
	pthread_cond_t  out_cv;
	int64_t         outstanding;
};

static size_t
prefixed(char *out, char prefix, const char *key, size_t klen)
{
	if (klen == 0 || klen + 1 > KEY_MAX)
		return 0;
	out[0] = prefix;
	memcpy(out + 1, key, klen);
	return klen + 1;
}

static uint32_t
slot_of(const char *key, size_t klen)
{
	return dre_fnv1a32(DRE_FNV32_INIT, key, klen) % CACHE_SLOTS;
}

static void
pack_reply(dre_rpc_reply *rep, const Dre__ConfirmResponse *r)
{
	size_t len = dre__confirm_response__get_packed_size(r);
	dre_buf_reserve(&rep->body, len + 1);
	if (rep->body.oom)
		return;
	dre__confirm_response__pack(r, (uint8_t *) rep->body.data);
	rep->body.len = len;
}

static void
answer(dre_rpc_reply *rep, const char *txid, const char *message)
{
	Dre__ConfirmResponse r = DRE__CONFIRM_RESPONSE__INIT;
	r.transaction_id = (char *) txid;
	r.confirmed = true;
	r.message = (char *) message;
	pack_reply(rep, &r);
}

static const char *
money_text(char *buf, int64_t v)
{
	dre_decimal_format(buf, v, DRE_MONEY_SCALE);
	return buf;
}

// ---- confirm -------------------------------------------------------------

// A confirm on its way: handed by the handler to the group commit, whose
// completion hands it to the outbox's acknowledgement, whose completion
// answers the call. Owns copies of everything the write and the answer
// need (the call's data is gone once the handler returns).
typedef struct cjob cjob;
struct cjob {
	ev_svc          *s;
	dre_rpc_pending *pending; // NULL: the handler waits on sync
	sem_t            sync;
	dre_rpc_reply   *sync_rep;
	cjob            *next; // in-flight list
	uint32_t         bucket;
	char             tkey[KEY_MAX], mkey[KEY_MAX], jkey[KEY_MAX];
	char             okey[KEY_MAX], akey[KEY_MAX], dkey[KEY_MAX + 9];
	size_t           tkl, mkl, jkl, okl, akl, dkl; // dkl 0: no deadline
	char            *txid;
	uint8_t         *mark, *job;
	size_t           markl, jobl;
	dre_buf          event, audit;
	uint64_t         seq; // set by fill
	// The marker's fields, for the "queued" one.
	int64_t counter, confirmed_at;
	char    event_id[40];
};

// fill_confirm runs on the committer thread: marker, job and event go into
// the shared batch together.
static void
fill_confirm(void *arg, dre_batch *b)
{
	cjob   *w = arg;
	ev_svc *s = w->s;
	dre_batch_put(
	    b, s->st, EV_CF_CONFIRM, w->mkey, w->mkl, w->mark, w->markl);
	dre_batch_put(
	    b, s->st, EV_CF_CONFIRM, w->jkey, w->jkl, w->job, w->jobl);
	if (w->dkl > 0)
		dre_batch_put(b, s->st, EV_CF_CONFIRM, w->dkey, w->dkl, "", 0);
	dre_batch_put(b, s->st, EV_CF_CONFIRM, w->akey, w->akl, w->audit.data,
	    w->audit.len);
	w->seq = dre_outbox_put(s->ob, b, DRE_TOPIC_TX_CONFIRMED, w->okey,
	    w->okl, w->event.data, w->event.len);
}

static void
cjob_free(cjob *j)
{
	free(j->txid);
	free(j->mark);
	free(j->job);
	dre_buf_free(&j->event);
	dre_buf_free(&j->audit);
	free(j);
}

// cjob_finish answers the confirm with rep (filled) and frees j.
static void
cjob_finish(cjob *j, dre_rpc_reply *rep)
{
	ev_confirm *c = j->s->confirm;
	if (j->pending == NULL) {
		*j->sync_rep = *rep; // the handler waits for it
		sem_post(&j->sync);
		return;
	}
	dre_rpc_answer(j->pending, rep);
	cjob_free(j);
	pthread_mutex_lock(&c->out_mu);
	if (--c->outstanding == 0)
		pthread_cond_broadcast(&c->out_cv);
	pthread_mutex_unlock(&c->out_mu);
}

// acked runs when Kafka acknowledged the event (on the producer's
// delivery thread) or did not within confirm.ack_wait_ms (the relay's):
// the answer, as the handler gave it when it waited itself.
static void
acked(void *arg, bool ok)
{
	cjob         *j = arg;
	dre_rpc_reply rep;
	memset(&rep, 0, sizeof(rep));
	rep.status = 200;
	if (!ok) {
		// A repeat of this confirm gets this same answer.
		Dre__ConfirmRecord cr = DRE__CONFIRM_RECORD__INIT;
		cr.counter = j->counter;
		cr.event_id = j->event_id;
		cr.confirmed_at = j->confirmed_at;
		cr.message = MSG_QUEUED;
		uint8_t mark[256];
		size_t  markl = dre__confirm_record__get_packed_size(&cr);
		if (markl <= sizeof(mark)) {
			dre__confirm_record__pack(&cr, mark);
			dre_store_put(j->s->st, EV_CF_CONFIRM, j->mkey, j->mkl,
			    mark, markl, false);
		}
	}
	answer(&rep, j->txid, ok ? MSG_CONFIRMED : MSG_QUEUED);
	cjob_finish(j, &rep);
}

// committed runs on the committer thread once the confirm's batch is
// durable (or failed).
static void
committed(void *arg, dre_err err)
{
	cjob       *j = arg;
	ev_svc     *s = j->s;
	ev_confirm *c = s->confirm;
	pthread_mutex_lock(&c->ifmu[j->bucket]);
	for (cjob **pp = &c->inflight[j->bucket]; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_cond_broadcast(&c->ifcv[j->bucket]);
	pthread_mutex_unlock(&c->ifmu[j->bucket]);
	// Written (or not): only the answer is left to make.
	dre_buf_free(&j->event);
	dre_buf_free(&j->audit);
	if (err != DRE_OK) {
		dre_rpc_reply rep;
		memset(&rep, 0, sizeof(rep));
		dre_error("confirm %s: %s", j->okey, dre_strerror(err));
		dre_rpc_reply_error(&rep, 503, "UNAVAILABLE", NULL,
		    "the confirmation could not be stored: %s",
		    dre_strerror(err));
		cjob_finish(j, &rep);
		return;
	}
	dre_outbox_kick(s->ob);
	// Durable now. Normally Kafka has it within milliseconds too; when
	// the link is down (or slower than the configured wait) the answer
	// says the event is queued, and the relay delivers it later.
	if (strcmp(ev_btp_connectivity(s), "CIRCUIT_OPEN") == 0
	    || s->cfg.ack_wait_ms <= 0
	    || dre_outbox_wait_async(
	           s->ob, j->seq, (int) s->cfg.ack_wait_ms, acked, j)
	        != DRE_OK)
		acked(j, false);
}

// inflight_busy tells whether a confirm of transaction tkey is being
// committed; bucket lock held.
static bool
inflight_busy(ev_confirm *c, uint32_t b, const char *tkey, size_t tkl)
{
	for (cjob *j = c->inflight[b]; j != NULL; j = j->next)
		if (j->tkl == tkl && memcmp(j->tkey, tkey, tkl) == 0)
			return true;
	return false;
}

static const Dre__IterationPromotion *
granted(const Dre__IterationRecord *it, const char *id)
{
	for (size_t i = 0; i < it->n_promotions; i++)
		if (strcmp(it->promotions[i]->promotion_id, id) == 0)
			return it->promotions[i];
	return NULL;
}

// check_promotions matches the confirmed promotions against what the
// iteration granted and fills the event's list; false with rep filled
// when the request asks for more.
static bool
check_promotions(const Dre__ConfirmRequest *req,
    const Dre__IterationRecord *it, dre_tx_promotion *out, int64_t *totalp,
    dre_rpc_reply *rep)
{
	int64_t total = 0;
	for (size_t i = 0; i < req->n_applied_promotions; i++) {
		const Dre__ConfirmPromotion   *cp = req->applied_promotions[i];
		const Dre__IterationPromotion *g
		    = granted(it, cp->promotion_id);
		char t[96], m1[32], m2[32];
		if (g == NULL) {
			snprintf(t, sizeof(t),
			    "appliedPromotions[%zu].promotionId", i);
			dre_rpc_reply_error(rep, 409, "CONFLICT", t,
			    "promotion %s was not granted by this iteration",
			    cp->promotion_id);
			return false;
		}
		// A promotion a coupon triggered is confirmed with that code
		// (or none: the granted one is carried), never another; one
		// no coupon triggered is confirmed with none. Confirm spends
		// only what evaluate granted: a till cannot redeem a code the
		// iteration did not use (issue 10.8).
		bool named
		    = cp->coupon_code != NULL && cp->coupon_code[0] != '\0';
		bool used
		    = g->coupon_code != NULL && g->coupon_code[0] != '\0';
		if (named && !used) {
			snprintf(t, sizeof(t),
			    "appliedPromotions[%zu].couponCode", i);
			dre_rpc_reply_error(rep, 409, "CONFLICT", t,
			    "promotion %s was not triggered by a coupon in "
			    "this "
			    "iteration: coupon %s cannot be redeemed with it",
			    cp->promotion_id, cp->coupon_code);
			return false;
		}
		if (named && used
		    && strcasecmp(cp->coupon_code, g->coupon_code) != 0) {
			snprintf(t, sizeof(t),
			    "appliedPromotions[%zu].couponCode", i);
			dre_rpc_reply_error(rep, 409, "CONFLICT", t,
			    "promotion %s was granted for coupon %s, not %s",
			    cp->promotion_id, g->coupon_code, cp->coupon_code);
			return false;
		}
		int64_t amount = g->amount;
		if (cp->has_discount_amount) {
			amount = cp->discount_amount;
			snprintf(t, sizeof(t),
			    "appliedPromotions[%zu].discountAmount.value", i);
			if (cp->discount_currency != NULL
			    && strcmp(cp->discount_currency, it->currency)
			        != 0) {
				snprintf(t, sizeof(t),
				    "appliedPromotions[%zu].discountAmount."
				    "currency",
				    i);
				dre_rpc_reply_error(rep, 400,
				    "VALIDATION_FAILED", t,
				    "currency %s differs from the "
				    "transaction's %s",
				    cp->discount_currency, it->currency);
				return false;
			}
		} else if (cp->has_total_discount) {
			amount = cp->total_discount;
			snprintf(t, sizeof(t),
			    "appliedPromotions[%zu].totalDiscount", i);
		}
		if (amount > g->amount) {
			dre_rpc_reply_error(rep, 409, "CONFLICT", t,
			    "confirmed discount %s of promotion %s exceeds "
			    "the %s granted",
			    money_text(m1, amount), cp->promotion_id,
			    money_text(m2, g->amount));
			return false;
		}
		dre_tx_promotion *p = &out[i];
		p->promotion_id = g->promotion_id;
		p->promotion_name = g->promotion_name;
		p->promotion_type = g->promotion_type;
		p->amount = amount;
		p->granted_amount = g->amount;
		p->coupon_code
		    = cp->coupon_code ? cp->coupon_code : g->coupon_code;
		p->budget_ids = (const char *const *) g->budget_ids;
		p->nbudget_ids = g->n_budget_ids;
		total += amount;
	}
	*totalp = total;
	return true;
}

// calc_audit renders the calculation audit record of a confirm (seed 002:
// what was priced, with which promotion versions) into out.
static void
calc_audit(dre_buf *out, const dre_rpc_call *call, const dre_tx_confirmed *ev,
    const Dre__IterationRecord *it)
{
	dre_buf   det = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &det);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "transactionCounter", ev->transaction_counter);
	dre_jsonw_key(&w, "evaluatedAt");
	dre_jsonw_time(&w, ev->evaluated_at);
	dre_jsonw_key(&w, "transactionTime");
	dre_jsonw_time(&w, ev->transaction_time);
	dre_jsonw_kstr(&w, "posGroupId", ev->pos_group_id);
	dre_jsonw_kstr(&w, "posGroupCode", ev->pos_group_code);
	dre_jsonw_kstr(&w, "channel", ev->channel);
	dre_jsonw_kstr(&w, "customerId", ev->customer_id);
	dre_jsonw_kstr(&w, "receiptId", ev->receipt_id);
	dre_jsonw_kmoney(&w, "subtotal", ev->subtotal, ev->currency);
	dre_jsonw_kmoney(
	    &w, "totalDiscount", ev->total_discount, ev->currency);
	dre_jsonw_kmoney(&w, "grandTotal", ev->grand_total, ev->currency);
	dre_jsonw_key(&w, "lines");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < ev->nlines; i++) {
		const dre_tx_line *l = &ev->lines[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "lineReference", l->line_reference);
		dre_jsonw_kstr(&w, "articleNumber", l->article_number);
		dre_jsonw_key(&w, "quantity");
		dre_jsonw_decimal_trim(&w, l->quantity, DRE_QTY_SCALE);
		dre_jsonw_kmoney(&w, "unitPrice", l->unit_price, ev->currency);
		dre_jsonw_kmoney(&w, "lineTotal", l->line_total, ev->currency);
		dre_jsonw_kmoney(
		    &w, "lineDiscount", l->line_discount, ev->currency);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "promotions");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < ev->npromotions; i++) {
		const dre_tx_promotion        *p = &ev->promotions[i];
		const Dre__IterationPromotion *g
		    = granted(it, p->promotion_id);
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "promotionId", p->promotion_id);
		dre_jsonw_key(&w, "promotionVersion");
		if (g != NULL && g->has_promotion_version)
			dre_jsonw_int(&w, g->promotion_version);
		else
			dre_jsonw_null(&w);
		dre_jsonw_kstr(&w, "promotionName", p->promotion_name);
		dre_jsonw_kstr(&w, "promotionType", p->promotion_type);
		dre_jsonw_kmoney(&w, "discount", p->amount, ev->currency);
		dre_jsonw_kmoney(
		    &w, "grantedDiscount", p->granted_amount, ev->currency);
		dre_jsonw_kstr(&w, "couponCode", p->coupon_code);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	dre_audit_rec rec = { .tenant = call->tenant,
		.actor = call->principal,
		.at_ms = ev->occurred_at,
		.entity = "Transaction",
		.entity_id = ev->transaction_id,
		.action = "confirm",
		.details = det.data,
		.details_len = det.len };
	if (det.oom)
		out->oom = true;
	else
		dre_audit_render(out, &rec);
	dre_buf_free(&det);
}

void
ev_h_confirm(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
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
	ProtobufCAllocator   al = dre_arena_pb(a);
	Dre__ConfirmRequest *req
	    = dre__confirm_request__unpack(&al, call->body_len, call->body);
	// Without a counter (the POS-platform bridge's ORDER, which names
	// the cart only) the transaction's last priced iteration is confirmed,
	// or the one confirmed before.
	if (req == NULL || req->header == NULL
	    || req->header->transaction_id == NULL
	    || (req->header->has_transaction_counter
	        && req->header->transaction_counter < 1)) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "header",
		    "header.transactionId and header.transactionCounter are "
		    "required");
		return;
	}
	const char *txid = req->header->transaction_id;
	bool        latest = !req->header->has_transaction_counter;
	int64_t     counter = req->header->transaction_counter;
	char        tkey[KEY_MAX], ikey[KEY_MAX], mkey[KEY_MAX], jkey[KEY_MAX];
	size_t tkl = ev_txn_key(tkey, sizeof(tkey) - 16, call->tenant, txid);
	size_t mkl = prefixed(mkey, 'c', tkey, tkl);
	if (tkl == 0 || mkl == 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "header.transactionId", "transactionId too long");
		return;
	}

	pthread_mutex_t *mu = ev_stripe(s, tkey, tkl);
	ev_confirm      *c = s->confirm;
	uint32_t         bucket
	    = dre_fnv1a32(DRE_FNV32_INIT, tkey, tkl) % INFLIGHT_BUCKETS;
	pthread_mutex_lock(mu);
	// A confirm of this transaction still on its way to the disk is
	// waited for: its marker decides this one's answer.
	pthread_mutex_lock(&c->ifmu[bucket]);
	while (inflight_busy(c, bucket, tkey, tkl)) {
		if (!call->on_worker) {
			// Not on the nng thread that received the call: a
			// worker runs the handler again and waits.
			pthread_mutex_unlock(&c->ifmu[bucket]);
			pthread_mutex_unlock(mu);
			rep->defer = true;
			return;
		}
		pthread_cond_wait(&c->ifcv[bucket], &c->ifmu[bucket]);
	}
	pthread_mutex_unlock(&c->ifmu[bucket]);
	char   *val = NULL;
	size_t  vlen = 0;
	dre_err err
	    = dre_store_get(s->st, EV_CF_CONFIRM, mkey, mkl, &val, &vlen);
	if (err == DRE_ENOTFOUND && latest) {
		if ((err = ev_counter_get(s, tkey, tkl, &counter)) != DRE_OK)
			goto unavailable;
		if (counter == 0) {
			pthread_mutex_unlock(mu);
			dre_rpc_reply_error(rep, 404, "NOT_FOUND",
			    "header.transactionId",
			    "transaction %s was never priced", txid);
			return;
		}
		err = DRE_ENOTFOUND;
	}
	size_t ikl
	    = ev_iter_key(ikey, sizeof(ikey) - 1, call->tenant, txid, counter);
	size_t jkl = prefixed(jkey, 'j', ikey, ikl);
	if (err == DRE_ENOTFOUND && (ikl == 0 || jkl == 0)) {
		pthread_mutex_unlock(mu);
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "header.transactionId", "transactionId too long");
		return;
	}
	if (err == DRE_OK) {
		// Confirmed before: the same iteration gets the first answer,
		// another one is refused.
		pthread_mutex_unlock(mu);
		Dre__ConfirmRecord *cr = dre__confirm_record__unpack(
		    &al, vlen, (const uint8_t *) val);
		free(val);
		if (cr == NULL) {
			dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
			    "confirm record unreadable");
		} else if (latest || cr->counter == counter) {
			answer(rep, txid, cr->message);
		} else {
			dre_rpc_reply_error(rep, 409, "CONFLICT",
			    "header.transactionCounter",
			    "transaction %s is already confirmed with counter "
			    "%lld",
			    txid, (long long) cr->counter);
		}
		return;
	}
	if (err != DRE_ENOTFOUND)
		goto unavailable;
	err = dre_store_get(s->st, EV_CF_TXN, ikey, ikl, &val, &vlen);
	Dre__IterationRecord *it = NULL;
	if (err == DRE_OK) {
		it = dre__iteration_record__unpack(
		    &al, vlen, (const uint8_t *) val);
		free(val);
		if (it == NULL) {
			pthread_mutex_unlock(mu);
			dre_rpc_reply_error(rep, 404, "NOT_FOUND",
			    "header.transactionCounter",
			    "iteration %lld of transaction %s was stored by "
			    "an "
			    "older version and cannot be confirmed; evaluate "
			    "again",
			    (long long) counter, txid);
			return;
		}
		// An expired iteration that compaction has not dropped yet
		// is gone all the same (retention.iterations_ms): its confirm
		// marker may be.
		if (s->cfg.iterations_ttl_ms > 0
		    && it->evaluated_at
		        < dre_now_ms() - s->cfg.iterations_ttl_ms)
			err = DRE_ENOTFOUND;
	}
	if (err == DRE_ENOTFOUND) {
		pthread_mutex_unlock(mu);
		dre_rpc_reply_error(rep, 404, "NOT_FOUND",
		    "header.transactionCounter",
		    "transaction %s has no evaluated iteration %lld", txid,
		    (long long) counter);
		return;
	}
	if (err != DRE_OK)
		goto unavailable;
	dre_tx_promotion *promos = dre_arena_get(
	    a, (req->n_applied_promotions + 1) * sizeof(*promos));
	dre_tx_line *lines
	    = dre_arena_get(a, (it->n_lines + 1) * sizeof(*lines));
	int64_t total = 0;
	if (promos == NULL || lines == NULL) {
		err = DRE_ENOMEM;
		goto unavailable;
	}
	if (!check_promotions(req, it, promos, &total, rep)) {
		pthread_mutex_unlock(mu);
		return;
	}
	int64_t now = dre_now_ms();

	// The event.
	dre_tx_confirmed ev = { 0 };
	dre_uuid_v4(ev.event_id);
	ev.tenant = call->tenant;
	ev.occurred_at = now;
	ev.schema_version = 3;
	ev.request_id = call->req != NULL ? call->req->request_id : NULL;
	ev.transaction_id = txid;
	ev.transaction_counter = counter;
	ev.evaluated_at = it->evaluated_at;
	ev.transaction_time = req->has_timestamp_ms ? req->timestamp_ms
	    : it->has_timestamp_ms                  ? it->timestamp_ms
	                                            : now;
	ev.receipt_id = req->header->receipt_id ? req->header->receipt_id
	                                        : it->receipt_id;
	ev.customer_id = req->customer_id ? req->customer_id : it->customer_id;
	ev.channel = it->channel;
	ev.pos_group_id
	    = it->pos_group_id ? it->pos_group_id : req->pos_group_id;
	ev.pos_group_code
	    = it->pos_group_code ? it->pos_group_code : req->pos_group_code;
	ev.currency = it->currency;
	ev.subtotal = it->subtotal;
	ev.total_discount = total;
	ev.grand_total = it->subtotal - total;
	ev.loyalty_points = it->has_loyalty_points ? it->loyalty_points : 0;
	for (size_t i = 0; i < it->n_lines; i++) {
		const Dre__IterationLine *l = it->lines[i];
		lines[i] = (dre_tx_line) { l->line_reference,
			l->article_number, l->quantity, l->unit_price,
			l->line_total, l->line_discount,
			l->line_total - l->line_discount };
	}
	ev.lines = lines;
	ev.nlines = it->n_lines;
	ev.promotions = promos;
	ev.npromotions = req->n_applied_promotions;
	cjob *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		err = DRE_ENOMEM;
		goto unavailable;
	}
	j->s = s;
	j->bucket = bucket;
	memcpy(j->tkey, tkey, tkl);
	j->tkl = tkl;
	memcpy(j->mkey, mkey, mkl);
	j->mkl = mkl;
	memcpy(j->jkey, jkey, jkl);
	j->jkl = jkl;
	j->akl = prefixed(j->akey, 'a', tkey, tkl);
	j->counter = counter;
	j->confirmed_at = now;
	snprintf(j->event_id, sizeof(j->event_id), "%s", ev.event_id);
	calc_audit(&j->audit, call, &ev, it);
	int okl
	    = snprintf(j->okey, sizeof(j->okey), "%s/%s", call->tenant, txid);
	j->okl = okl > 0 ? (size_t) okl : 0;
	j->txid = strdup(txid);
	if ((err = dre_avro_encode_tx_confirmed(&j->event, &ev)) != DRE_OK
	    || (err = j->audit.oom || j->akl == 0 || j->txid == NULL
	                   || okl <= 0 || (size_t) okl >= sizeof(j->okey)
	               ? DRE_ENOMEM
	               : DRE_OK)
	        != DRE_OK) {
		cjob_free(j);
		goto unavailable;
	}

	// The marker (the answer a repeat gets) and the job.
	Dre__ConfirmRecord cr = DRE__CONFIRM_RECORD__INIT;
	cr.counter = counter;
	cr.event_id = ev.event_id;
	cr.confirmed_at = now;
	cr.message = MSG_CONFIRMED;
	Dre__SideEffectJob job = DRE__SIDE_EFFECT_JOB__INIT;
	job.enqueued_at = now;
	job.expected = c->expected;
	job.n_expected = c->nexpected;
	job.currency = it->currency;
	if (job.n_expected == 0) { // nobody reports: nothing to wait for
		job.has_started_at = job.has_completed_at = true;
		job.started_at = job.completed_at = now;
	}
	j->markl = dre__confirm_record__get_packed_size(&cr);
	j->jobl = dre__side_effect_job__get_packed_size(&job);
	j->mark = malloc(j->markl + 1);
	j->job = malloc(j->jobl + 1);
	if (j->mark == NULL || j->job == NULL) {
		cjob_free(j);
		err = DRE_ENOMEM;
		goto unavailable;
	}
	dre__confirm_record__pack(&cr, j->mark);
	dre__side_effect_job__pack(&job, j->job);
	if (job.n_expected > 0 && s->cfg.sidefx_timeout_ms > 0) {
		j->dkey[0] = 'd';
		dre_be64_put(j->dkey + 1, now + s->cfg.sidefx_timeout_ms);
		memcpy(j->dkey + 9, jkey, jkl);
		j->dkl = jkl + 9;
	}

	// The answer is made by the completions (committed, then acked),
	// without this thread: it serves the next call meanwhile. A call
	// that cannot wait so (in-process, or no room for more pending
	// calls) is answered here when they are done.
	j->pending = dre_rpc_reply_later(call);
	bool sync = j->pending == NULL; // j may be gone once handed on
	if (sync && !call->on_worker) {
		// No room for another pending call: a worker thread does it
		// all again (nothing was written) and waits.
		pthread_mutex_unlock(mu);
		cjob_free(j);
		rep->defer = true;
		return;
	}
	if (sync) {
		sem_init(&j->sync, 0, 0);
		j->sync_rep = rep;
	} else {
		pthread_mutex_lock(&c->out_mu);
		c->outstanding++;
		pthread_mutex_unlock(&c->out_mu);
	}
	pthread_mutex_lock(&c->ifmu[bucket]);
	j->next = c->inflight[bucket];
	c->inflight[bucket] = j;
	pthread_mutex_unlock(&c->ifmu[bucket]);
	pthread_mutex_unlock(mu);
	err = dre_committer_commit_async(s->cm, fill_confirm, committed, j);
	if (err != DRE_OK)
		committed(j, err); // never queued: answered the same way
	if (sync) {
		while (sem_wait(&j->sync) != 0 && errno == EINTR)
			;
		sem_destroy(&j->sync);
		cjob_free(j);
	}
	return;

unavailable:
	pthread_mutex_unlock(mu);
	dre_warn("confirm %s/%s: %s", call->tenant, txid, dre_strerror(err));
	dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
	    "the confirmation could not be processed: %s", dre_strerror(err));
}

// ---- the calculation audit record -----------------------------------------

// An /api/v1 document: the Public API's minor version (catalog/handlers.c).
static const dre_docapi_svc calc_api = { "the evaluator", 13 };

void
ev_h_calc_audit(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc        *s = svc;
	dre_docapi_req d;
	char           tkey[KEY_MAX], akey[KEY_MAX];
	if (!dre_docapi_begin(&d, &calc_api, call, rep)) {
		dre_docapi_end(&d);
		return;
	}
	const char *txid = dre_rpc_param(call, "id");
	size_t      tkl = txid
	         ? ev_txn_key(tkey, sizeof(tkey) - 16, call->tenant, txid)
	         : 0;
	size_t      akl = tkl ? prefixed(akey, 'a', tkey, tkl) : 0;
	char       *val = NULL;
	size_t      vlen = 0;
	dre_err     err = akl == 0
	        ? DRE_ENOTFOUND
	        : dre_store_get(s->st, EV_CF_CONFIRM, akey, akl, &val, &vlen);
	if (err == DRE_OK)
		dre_docapi_reply_doc(&d, 200, val, vlen);
	else if (err == DRE_ENOTFOUND)
		dre_rpc_reply_error(rep, 404, "NOT_FOUND", NULL,
		    "transaction %s has no confirm", txid ? txid : "");
	else
		dre_docapi_internal(&d, err);
	free(val);
	dre_docapi_end(&d);
}

// evaluator.AuditLogs.list: this shard's calculation records, for the
// gateway's merge of GET /api/v1/AuditLogs.
void
ev_h_audit_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc *s = svc;
	dre_audit_list_call(&calc_api, s->st, EV_CF_CONFIRM, 'a', call, rep);
}

// ---- the job -------------------------------------------------------------

static const Dre__ServiceResult *
result_of(const Dre__SideEffectJob *j, const char *service)
{
	for (size_t i = 0; i < j->n_results; i++)
		if (strcmp(j->results[i]->service, service) == 0)
			return j->results[i];
	return NULL;
}

// job_status is PENDING (nobody reported), RUNNING (some did), COMPLETED
// (every expected service succeeded or had nothing to do), FAILED (every
// expected service failed or timed out) or PARTIAL.
static const char *
job_status(const Dre__SideEffectJob *j)
{
	size_t reported = 0, failed = 0;
	for (size_t i = 0; i < j->n_expected; i++) {
		const Dre__ServiceResult *r = result_of(j, j->expected[i]);
		if (r == NULL)
			continue;
		reported++;
		failed += strcmp(r->status, "FAILED") == 0
		    || strcmp(r->status, TIMED_OUT) == 0;
	}
	if (j->n_expected == 0)
		return "COMPLETED";
	if (reported == 0)
		return j->n_results > 0 ? "RUNNING" : "PENDING";
	if (reported < j->n_expected)
		return "RUNNING";
	if (failed == 0)
		return "COMPLETED";
	return failed == reported ? "FAILED" : "PARTIAL";
}

static bool
job_finished(const Dre__SideEffectJob *j)
{
	const char *st = job_status(j);
	return strcmp(st, "PENDING") != 0 && strcmp(st, "RUNNING") != 0;
}

static void
ktime(dre_jsonw *w, const char *key, bool has, int64_t ms)
{
	dre_jsonw_key(w, key);
	if (has)
		dre_jsonw_time(w, ms);
	else
		dre_jsonw_null(w);
}

static void
job_render(dre_buf *out, const char *txid, int64_t counter,
    const Dre__SideEffectJob *j)
{
	dre_jsonw w;
	int32_t   attempts = 0;
	for (size_t i = 0; i < j->n_results; i++)
		if (j->results[i]->attempts > attempts)
			attempts = j->results[i]->attempts;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "minorVersion", MINOR_VERSION);
	dre_jsonw_kstr(&w, "transactionId", txid);
	dre_jsonw_kint(&w, "transactionCounter", counter);
	dre_jsonw_kstr(&w, "status", job_status(j));
	ktime(&w, "enqueuedAt", true, j->enqueued_at);
	ktime(&w, "startedAt", j->has_started_at, j->started_at);
	ktime(&w, "completedAt", j->has_completed_at, j->completed_at);
	dre_jsonw_kint(&w, "attempts", attempts);
	dre_jsonw_kint(&w, "couponsRedeemed", j->coupons_redeemed);
	dre_jsonw_key(&w, "budgetsConsumed");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < j->n_budgets; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "budgetId", j->budgets[i]->budget_id);
		dre_jsonw_kmoney(&w, "amount", j->budgets[i]->amount,
		    j->budgets[i]->currency);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_kint(&w, "loyaltyPointsEarned", j->loyalty_points);
	dre_jsonw_key(&w, "postPurchaseCoupons");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < j->n_coupons; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", j->coupons[i]->code);
		dre_jsonw_kstr(
		    &w, "couponTypeId", j->coupons[i]->coupon_type_id);
		dre_jsonw_kstr(&w, "customerId", j->coupons[i]->customer_id);
		ktime(&w, "issuedAt", true, j->coupons[i]->issued_at);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	// reason: every service's reason, "service: text; ...", but for a
	// SKIPPED result's (nothing to do is no problem of the sale: loyalty
	// names the customer it does not know, PRODUCT-DECISIONS §8; the
	// result on dre.sidefx.results keeps it).
	dre_buf reason = { 0 };
	for (size_t i = 0; i < j->n_results; i++)
		if (j->results[i]->reason != NULL
		    && strcmp(j->results[i]->status, "SKIPPED") != 0) {
			dre_buf_printf(&reason, "%s%s: %s",
			    reason.len ? "; " : "", j->results[i]->service,
			    j->results[i]->reason);
		}
	dre_jsonw_kstr(&w, "reason", reason.len ? reason.data : NULL);
	dre_buf_free(&reason);
	dre_jsonw_obj_end(&w);
}

void
ev_h_side_effects(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	ev_svc     *s = svc;
	ev_confirm *c = s->confirm;
	const char *txid = dre_rpc_param(call, "id");
	const char *cs = dre_rpc_param(call, "counter");
	char       *end = NULL;
	long long   counter = 0;
	// Digits only, and no overflow: strtoll would take a sign or white
	// space, and clamp a number too large to LLONG_MAX.
	errno = 0;
	if (cs != NULL && cs[0] >= '0' && cs[0] <= '9')
		counter = strtoll(cs, &end, 10);
	if (errno != 0 || end == NULL || *end != '\0')
		counter = 0;
	if (call->tenant[0] == '\0') {
		dre_rpc_reply_error(
		    rep, 401, "UNAUTHORIZED", NULL, "no tenant in the call");
		return;
	}
	if (txid == NULL || txid[0] == '\0' || strlen(txid) > 50) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "transactionId", "transactionId must be 1-50 characters");
		return;
	}
	if (counter < 1) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "transactionCounter",
		    "transactionCounter must be an integer >= 1");
		return;
	}
	char   ikey[KEY_MAX], jkey[KEY_MAX];
	size_t ikl = ev_iter_key(
	    ikey, sizeof(ikey) - 1, call->tenant, txid, (int64_t) counter);
	size_t jkl = prefixed(jkey, 'j', ikey, ikl);
	if (jkl == 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    "transactionId", "transactionId too long");
		return;
	}
	dre_rpc_reply_json(rep);
	cache_ent *ce = &c->cache[slot_of(jkey, jkl)];
	int64_t    now = dre_mono_ms();
	pthread_mutex_lock(&c->mu);
	uint64_t gen = ce->gen;
	if (ce->klen == jkl && memcmp(ce->key, jkey, jkl) == 0
	    && now - ce->at < s->cfg.sidefx_cache_ms) {
		dre_buf_append(&rep->body, ce->json.data, ce->json.len);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);

	char   *val = NULL;
	size_t  vlen = 0;
	dre_err err
	    = dre_store_get(s->st, EV_CF_CONFIRM, jkey, jkl, &val, &vlen);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "NOT_FOUND", NULL,
		    "transaction %s has no confirmed iteration %lld", txid,
		    counter);
		return;
	}
	Dre__SideEffectJob *j = err == DRE_OK
	    ? dre__side_effect_job__unpack(NULL, vlen, (const uint8_t *) val)
	    : NULL;
	free(val);
	if (j == NULL) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "side-effect job unreadable: %s",
		    dre_strerror(err ? err : DRE_ECODEC));
		return;
	}
	job_render(&rep->body, txid, (int64_t) counter, j);
	dre__side_effect_job__free_unpacked(j, NULL);
	// Cached unless the job changed while we read it.
	pthread_mutex_lock(&c->mu);
	if (ce->gen == gen && !rep->body.oom) {
		memcpy(ce->key, jkey, jkl);
		ce->klen = jkl;
		ce->at = now;
		dre_buf_reset(&ce->json);
		dre_buf_append(&ce->json, rep->body.data, rep->body.len);
	}
	pthread_mutex_unlock(&c->mu);
}

// ---- dre.sidefx.results ---------------------------------------------------

static void
touched_add(ev_confirm *c, const char *key, size_t klen)
{
	if (c->ntouched == c->captouched) {
		size_t cap = c->captouched ? c->captouched * 2 : 64;
		char(*t)[KEY_MAX] = realloc(c->touched, cap * KEY_MAX);
		size_t *tl = realloc(c->touched_len, cap * sizeof(size_t));
		if (t != NULL)
			c->touched = t;
		if (tl != NULL)
			c->touched_len = tl;
		if (t == NULL || tl == NULL)
			return;
		c->captouched = cap;
	}
	memcpy(c->touched[c->ntouched], key, klen);
	c->touched_len[c->ntouched++] = klen;
}

// sfx_end runs after each batch: the jobs it changed leave the cache.
static void
sfx_end(void *arg, dre_err err)
{
	ev_svc     *s = arg;
	ev_confirm *c = s->confirm;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->ntouched; i++) {
		cache_ent *ce
		    = &c->cache[slot_of(c->touched[i], c->touched_len[i])];
		ce->gen++;
		ce->klen = 0;
	}
	pthread_mutex_unlock(&c->mu);
	c->ntouched = 0;
}

static dre_err
sfx_apply(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	ev_svc        *s = arg;
	dre_sfx_result r;
	dre_err err = dre_avro_decode_sfx_result(&r, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	// A budget's state after a consumption: the engine learns it here
	// first (the status feed brings it to the other shards).
	for (size_t i = 0; i < r.nbudgets; i++)
		eng_budget_set_update(s->budgets, r.tenant,
		    r.budgets[i].budget_id, r.budgets[i].budget_version,
		    strcmp(r.budgets[i].budget_status, "EXHAUSTED") == 0);

	char   ikey[KEY_MAX], jkey[KEY_MAX];
	size_t ikl = ev_iter_key(ikey, sizeof(ikey) - 1, r.tenant,
	    r.transaction_id, r.transaction_counter);
	size_t jkl = prefixed(jkey, 'j', ikey, ikl);
	if (jkl == 0)
		return DRE_EINVAL;
	char  *val = NULL;
	size_t vlen = 0;
	err = dre_batch_get(
	    x->b, s->st, EV_CF_CONFIRM, jkey, jkl, &val, &vlen);
	if (err == DRE_ENOTFOUND)
		return DRE_OK; // another shard's transaction
	if (err != DRE_OK)
		return err;
	ProtobufCAllocator  al = dre_arena_pb(x->a);
	Dre__SideEffectJob *j
	    = dre__side_effect_job__unpack(&al, vlen, (const uint8_t *) val);
	free(val);
	if (j == NULL)
		return DRE_ECODEC;

	// This service's result replaces any earlier one; the same result
	// again (a re-published event) changes nothing.
	for (size_t i = 0; i < j->n_results; i++) {
		const Dre__ServiceResult *o = j->results[i];
		if (strcmp(o->service, r.service) == 0
		    && strcmp(o->status, r.status) == 0
		    && o->attempts == r.attempts)
			return DRE_OK;
	}
	Dre__ServiceResult  *sr = dre_arena_get(x->a, sizeof(*sr));
	Dre__ServiceResult **res
	    = dre_arena_get(x->a, (j->n_results + 1) * sizeof(*res));
	if (sr == NULL || res == NULL)
		return DRE_ENOMEM;
	dre__service_result__init(sr);
	sr->service = (char *) r.service;
	sr->status = (char *) r.status;
	sr->attempts = r.attempts;
	sr->reason = (char *) r.reason;
	sr->at = x->now_ms;
	size_t n = 0;
	for (size_t i = 0; i < j->n_results; i++)
		if (strcmp(j->results[i]->service, r.service) != 0)
			res[n++] = j->results[i];
	res[n++] = sr;
	j->results = res;
	j->n_results = n;
	if (!j->has_started_at) {
		j->has_started_at = true;
		j->started_at = x->now_ms;
	}
	if (r.nbudgets > 0 || strcmp(r.service, "budget") == 0) {
		Dre__BudgetConsumed **bv
		    = dre_arena_get(x->a, (r.nbudgets + 1) * sizeof(*bv));
		if (bv == NULL)
			return DRE_ENOMEM;
		for (size_t i = 0; i < r.nbudgets; i++) {
			if ((bv[i] = dre_arena_get(x->a, sizeof(**bv)))
			    == NULL)
				return DRE_ENOMEM;
			dre__budget_consumed__init(bv[i]);
			bv[i]->budget_id = (char *) r.budgets[i].budget_id;
			bv[i]->amount = r.budgets[i].amount;
			bv[i]->currency = (char *) r.budgets[i].currency;
		}
		j->budgets = bv;
		j->n_budgets = r.nbudgets;
	}
	if (strcmp(r.service, "coupon") == 0) {
		j->has_coupons_redeemed = true;
		j->coupons_redeemed = r.coupons_redeemed;
		Dre__IssuedCoupon **cv
		    = dre_arena_get(x->a, (r.ncoupons + 1) * sizeof(*cv));
		if (cv == NULL)
			return DRE_ENOMEM;
		for (size_t i = 0; i < r.ncoupons; i++) {
			if ((cv[i] = dre_arena_get(x->a, sizeof(**cv)))
			    == NULL)
				return DRE_ENOMEM;
			dre__issued_coupon__init(cv[i]);
			cv[i]->code = (char *) r.coupons[i].code;
			cv[i]->coupon_type_id
			    = (char *) r.coupons[i].coupon_type_id;
			cv[i]->customer_id = (char *) r.coupons[i].customer_id;
			cv[i]->issued_at = r.coupons[i].issued_at;
		}
		j->coupons = cv;
		j->n_coupons = r.ncoupons;
	}
	if (strcmp(r.service, "loyalty") == 0) {
		j->has_loyalty_points = true;
		j->loyalty_points = r.loyalty_points;
	}
	if (!j->has_completed_at && job_finished(j)) {
		j->has_completed_at = true;
		j->completed_at = x->now_ms;
		// Its deadline goes too (one set under another
		// sidefx.timeout_ms is left to the sweeper).
		char dkey[KEY_MAX + 9];
		if (s->cfg.sidefx_timeout_ms > 0) {
			dkey[0] = 'd';
			dre_be64_put(dkey + 1,
			    j->enqueued_at + s->cfg.sidefx_timeout_ms);
			memcpy(dkey + 9, jkey, jkl);
			dre_batch_delete(
			    x->b, s->st, EV_CF_CONFIRM, dkey, jkl + 9);
		}
	}
	size_t   len = dre__side_effect_job__get_packed_size(j);
	uint8_t *buf = dre_arena_get(x->a, len + 1);
	if (buf == NULL)
		return DRE_ENOMEM;
	dre__side_effect_job__pack(j, buf);
	dre_batch_put(x->b, s->st, EV_CF_CONFIRM, jkey, jkl, buf, len);
	touched_add(s->confirm, jkey, jkl);
	return DRE_OK;
}

// sfx_begin runs before each batch of results: the sweeper waits.
static void
sfx_begin(void *arg)
{
	ev_svc *s = arg;
	pthread_mutex_lock(&s->confirm->jobs_mu);
}

static void
sfx_end_unlock(void *arg, dre_err err)
{
	ev_svc *s = arg;
	sfx_end(arg, err);
	pthread_mutex_unlock(&s->confirm->jobs_mu);
}

// time_out gives every expected service without a result a TIMED_OUT one,
// into b. 1: done; 0: nothing to do (the job is finished, gone or
// unreadable); -1: the store failed (the deadline stays).
static int
time_out(ev_svc *s, dre_batch *b, const char *jkey, size_t jkl, int64_t now)
{
	char   *val = NULL;
	size_t  vlen = 0;
	dre_err err
	    = dre_store_get(s->st, EV_CF_CONFIRM, jkey, jkl, &val, &vlen);
	if (err != DRE_OK)
		return err == DRE_ENOTFOUND ? 0 : -1;
	Dre__SideEffectJob *j
	    = dre__side_effect_job__unpack(NULL, vlen, (const uint8_t *) val);
	free(val);
	if (j == NULL || job_finished(j)) {
		dre__side_effect_job__free_unpacked(j, NULL);
		return 0;
	}
	// Our additions live on this stack frame; j's own arrays are put back
	// before it is freed.
	size_t               n0 = j->n_results, n = n0;
	Dre__ServiceResult **old = j->results;
	Dre__ServiceResult **res
	    = calloc(n0 + j->n_expected + 1, sizeof(*res));
	Dre__ServiceResult *add = calloc(j->n_expected + 1, sizeof(*add));
	char(*why)[64] = calloc(j->n_expected + 1, sizeof(*why));
	bool ok = res != NULL && add != NULL && why != NULL;
	if (ok) {
		if (n0 > 0)
			memcpy(res, old, n0 * sizeof(*res));
		for (size_t i = 0; i < j->n_expected; i++) {
			if (result_of(j, j->expected[i]) != NULL)
				continue;
			Dre__ServiceResult *r = &add[n - n0];
			dre__service_result__init(r);
			snprintf(why[n - n0], sizeof(why[0]),
			    "no result within %lld ms",
			    (long long) s->cfg.sidefx_timeout_ms);
			r->service = j->expected[i];
			r->status = TIMED_OUT;
			r->reason = why[n - n0];
			r->at = now;
			res[n++] = r;
		}
		j->results = res;
		j->n_results = n;
		if (!j->has_started_at) {
			j->has_started_at = true;
			j->started_at = now;
		}
		j->has_completed_at = true;
		j->completed_at = now;
		size_t   len = dre__side_effect_job__get_packed_size(j);
		uint8_t *buf = malloc(len + 1);
		if (buf != NULL) {
			dre__side_effect_job__pack(j, buf);
			dre_batch_put(
			    b, s->st, EV_CF_CONFIRM, jkey, jkl, buf, len);
			free(buf);
		}
		ok = buf != NULL;
		j->results = old;
		j->n_results = n0;
	}
	free(res);
	free(add);
	free(why);
	dre__side_effect_job__free_unpacked(j, NULL);
	return ok ? 1 : -1;
}

// sweep ends the jobs whose deadline passed; returns how many deadlines it
// handled (SWEEP_CHUNK at most). It starts at c->swept_to, below which
// every deadline was handled: the deletes of the deadlines of jobs that
// finished in time are not walked again and again.
static int
sweep(ev_svc *s)
{
	ev_confirm     *c = s->confirm;
	int64_t         now = dre_now_ms();
	int64_t         next = now; // the new swept_to
	dre_store_iter *it = NULL;
	char            start[9] = { 'd' };
	dre_be64_put(start + 1, c->swept_to);
	if (dre_store_iter_open_from(
	        &it, s->st, EV_CF_CONFIRM, "d", 1, start, sizeof(start))
	    != DRE_OK)
		return 0;
	dre_batch  *b = dre_batch_alloc();
	const char *k;
	size_t      kl;
	int         n = 0;
	char(*changed)[KEY_MAX] = calloc(SWEEP_CHUNK, KEY_MAX);
	size_t *changed_len = calloc(SWEEP_CHUNK, sizeof(size_t));
	size_t  nchanged = 0;
	pthread_mutex_lock(&c->jobs_mu);
	while (b != NULL && changed != NULL && changed_len != NULL
	    && dre_store_iter_next(it, &k, &kl, NULL, NULL)) {
		if (kl < 10 || kl - 9 > KEY_MAX)
			continue;
		int64_t due = dre_be64_get(k + 1);
		if (due > now || n >= SWEEP_CHUNK) {
			next = due < now ? due : now;
			break; // the rest is due later (or next time)
		}
		int r = time_out(s, b, k + 9, kl - 9, now);
		if (r < 0) {
			next = due;
			break;
		}
		if (r > 0) {
			memcpy(changed[nchanged], k + 9, kl - 9);
			changed_len[nchanged++] = kl - 9;
		}
		dre_batch_delete(b, s->st, EV_CF_CONFIRM, k, kl);
		n++;
	}
	dre_store_iter_close(it);
	if (b == NULL || changed == NULL || changed_len == NULL
	    || (n > 0 && dre_store_write(s->st, b, false) != DRE_OK)) {
		n = 0; // retried next time
		nchanged = 0;
	} else {
		c->swept_to = next;
	}
	pthread_mutex_unlock(&c->jobs_mu);
	if (nchanged > 0)
		dre_warn("side effects: %zu job(s) ended without every "
		         "service's result within %lld ms",
		    nchanged, (long long) s->cfg.sidefx_timeout_ms);
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < nchanged; i++) {
		cache_ent *ce = &c->cache[slot_of(changed[i], changed_len[i])];
		ce->gen++;
		ce->klen = 0;
	}
	pthread_mutex_unlock(&c->mu);
	dre_batch_free(b);
	free(changed);
	free(changed_len);
	return n;
}

static void *
sweeper_main(void *arg)
{
	ev_svc     *s = arg;
	ev_confirm *c = s->confirm;
	dre_thread_name("sidefx:sweep", NULL);
	pthread_mutex_lock(&c->stop_mu);
	while (!c->stop) {
		pthread_mutex_unlock(&c->stop_mu);
		int n = sweep(s);
		pthread_mutex_lock(&c->stop_mu);
		if (n >= SWEEP_CHUNK || c->stop)
			continue; // more are due
		struct timespec ts
		    = dre_timespec_after(CLOCK_REALTIME, SWEEP_MS);
		pthread_cond_timedwait(&c->stop_cv, &c->stop_mu, &ts);
	}
	pthread_mutex_unlock(&c->stop_mu);
	return NULL;
}

static const char *const sfx_topics[] = { DRE_TOPIC_SIDEFX };

dre_err
ev_confirm_start(ev_svc *s)
{
	ev_confirm *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DRE_ENOMEM;
	c->cache = calloc(CACHE_SLOTS, sizeof(*c->cache));
	if (c->cache == NULL) {
		free(c);
		return DRE_ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->jobs_mu, NULL);
	pthread_mutex_init(&c->stop_mu, NULL);
	pthread_cond_init(&c->stop_cv, NULL);
	pthread_mutex_init(&c->out_mu, NULL);
	pthread_cond_init(&c->out_cv, NULL);
	for (size_t i = 0; i < INFLIGHT_BUCKETS; i++) {
		pthread_mutex_init(&c->ifmu[i], NULL);
		pthread_cond_init(&c->ifcv[i], NULL);
	}
	// The services expected to report, fixed into each job at confirm.
	char *copy
	    = strdup(s->cfg.sidefx_services ? s->cfg.sidefx_services : ""),
	    *save = NULL;
	for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t != NULL;
	     t = strtok_r(NULL, ", ", &save)) {
		char **v
		    = realloc(c->expected, (c->nexpected + 1) * sizeof(*v));
		if (v == NULL)
			break;
		c->expected = v;
		if ((v[c->nexpected] = strdup(t)) != NULL)
			c->nexpected++;
	}
	free(copy);
	s->confirm = c;
	dre_applier_cfg cfg = { .name = "sidefx",
		.topics = sfx_topics,
		.ntopics = 1,
		.st = s->st,
		.cf = EV_CF_SFX,
		.kafka = &s->cfg.common.kafka,
		.apply = sfx_apply,
		.batch_begin = sfx_begin,
		.batch_end = sfx_end_unlock,
		.arg = s,
		// A result replaces the service's entry of its job: applying
		// one twice changes nothing.
		.idempotent = true };
	dre_err         err = dre_applier_start(&c->ap, &cfg);
	if (err == DRE_OK && s->cfg.sidefx_timeout_ms > 0) {
		if (pthread_create(&c->sweeper, NULL, sweeper_main, s) == 0)
			c->sweeping = true;
		else
			err = DRE_ENOMEM;
	}
	if (err != DRE_OK)
		ev_confirm_stop(s);
	return err;
}

void
ev_confirm_stop(ev_svc *s)
{
	ev_confirm *c = s->confirm;
	if (c == NULL)
		return;
	// Every confirm handed on is answered first (the committer and the
	// outbox close after this; the rpc server closed before).
	pthread_mutex_lock(&c->out_mu);
	while (c->outstanding > 0)
		pthread_cond_wait(&c->out_cv, &c->out_mu);
	pthread_mutex_unlock(&c->out_mu);
	if (c->sweeping) {
		pthread_mutex_lock(&c->stop_mu);
		c->stop = true;
		pthread_cond_signal(&c->stop_cv);
		pthread_mutex_unlock(&c->stop_mu);
		pthread_join(c->sweeper, NULL);
	}
	dre_applier_stop(c->ap);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		dre_buf_free(&c->cache[i].json);
	free(c->cache);
	for (size_t i = 0; i < c->nexpected; i++)
		free(c->expected[i]);
	free(c->expected);
	free(c->touched);
	free(c->touched_len);
	pthread_cond_destroy(&c->stop_cv);
	pthread_mutex_destroy(&c->stop_mu);
	pthread_mutex_destroy(&c->jobs_mu);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->out_cv);
	pthread_mutex_destroy(&c->out_mu);
	for (size_t i = 0; i < INFLIGHT_BUCKETS; i++) {
		pthread_mutex_destroy(&c->ifmu[i]);
		pthread_cond_destroy(&c->ifcv[i]);
	}
	free(c);
	s->confirm = NULL;
}

int64_t
ev_confirm_record_time(
    const char *key, size_t klen, const char *val, size_t vlen)
{
	if (klen < 1)
		return -1;
	if (key[0] == 'j')
		return ev_pb_first_varint(val, vlen); // enqueued_at
	if (key[0] != 'c')
		return -1;
	Dre__ConfirmRecord *cr
	    = dre__confirm_record__unpack(NULL, vlen, (const uint8_t *) val);
	if (cr == NULL)
		return -1;
	int64_t at = cr->confirmed_at;
	dre__confirm_record__free_unpacked(cr, NULL);
	return at;
}
