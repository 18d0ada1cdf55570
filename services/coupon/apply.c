// coupon/apply.c -- the confirmed-sale applier: what a sale on
// dre.transactions.confirmed does to coupons, exactly once:
// the codes of appliedPromotions[].couponCode are redeemed, the promotions'
// ISSUE_COUPON actions generate post-purchase codes, and one
// SideEffectResult is queued -- all into the applier's batch, which is
// written (synced) together with its offsets and eventIds.
//
// The applier's batch is written after the apply calls of all its messages,
// so the stripe of every code it touched (and the creation lock, once it
// made a code) stays locked until the batch is written: no reserve, redeem
// or sweep can read a code between the applier's decision and its write.
// Reads go through the batch (indexed), so two sales of one batch using
// the same GENERIC code see each other's redemptions.
//
// A replay does nothing twice, whatever its eventId: a code already
// redeemed by the transaction ('r' tenant \0 CODE \0 txId) counts as
// redeemed, and post-purchase codes are keyed by what made them
//   'p' tenant \0 txId \0 promotionId \0 action \0 n -> CODE   (CF_IDX)
// so a second look finds the codes of the first.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "coupon.h"
#include "dre/outbox.h"
#include "dre/sidefx.h"
#include "dre/store.h"
#include "dre/avro.h"
#include "dre/log.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "dre/json.h"
#include "keys.h"

#define MAX_CODES   64 // distinct coupon codes one sale redeems
#define MAX_ISSUED  1000 // post-purchase codes one sale gets
#define MAX_HOLDS   4096
#define REGEN_TRIES 16

// ---- locks
// ------------------------------------------------------------------

static void
lock_code(cp *s, const char *tenant, const char *code)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	size_t           i = (size_t) (mu - s->stripes);
	if (!s->ap_stripes[i]) {
		pthread_mutex_lock(mu);
		s->ap_stripes[i] = true;
	}
}

static void
lock_create(cp *s)
{
	if (!s->ap_create) {
		pthread_mutex_lock(&s->create_mu);
		s->ap_create = true;
	}
}

void
cp_apply_batch_end(void *arg, dre_err err)
{
	cp *s = arg;
	if (s->ap_create) {
		pthread_mutex_unlock(&s->create_mu);
		s->ap_create = false;
	}
	for (size_t i = 0; i < CP_STRIPES; i++)
		if (s->ap_stripes[i]) {
			pthread_mutex_unlock(&s->stripes[i]);
			s->ap_stripes[i] = false;
		}
	if (err == DRE_OK)
		dre_outbox_kick(s->ob);
}

// ---- reads through the batch
// ------------------------------------------------

static dre_err
bget(cp *s, dre_apply_ctx *x, int cf, const char *k, size_t kl, char **v,
    size_t *vl)
{
	if (kl == 0)
		return DRE_ENOTFOUND;
	return dre_batch_get(x->b, s->st, cf, k, kl, v, vl);
}

static dre_err
code_get(
    cp *s, dre_apply_ctx *x, const char *tenant, const char *code, cp_code *c)
{
	char    k[512];
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = bget(s, x, CF_CODES, k,
	    dre_key(k, sizeof k, 0, 2, tenant, code), &v, &vl);
	if (err == DRE_OK && cp_code_parse(c, x->a, v, vl) != DRE_OK)
		err = DRE_ESTORE; // a stored document we cannot read
	free(v);
	return err;
}

static dre_err
resv_get(
    cp *s, dre_apply_ctx *x, const char *tenant, const char *id, cp_resv *r)
{
	char    k[512];
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = bget(
	    s, x, CF_RESV, k, dre_key(k, sizeof k, 0, 2, tenant, id), &v, &vl);
	if (err == DRE_OK && cp_resv_parse(r, x->a, v, vl) != DRE_OK)
		err = DRE_ESTORE;
	free(v);
	return err;
}

// hold_of finds the reservation of tx on code ('h' index); DRE_ENOTFOUND
// when it holds none.
static dre_err
hold_of(cp *s, dre_apply_ctx *x, const char *tenant, const char *code,
    const char *tx, cp_resv *r)
{
	char    k[512], id[DRE_UUID_LEN + 1];
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = bget(s, x, CF_IDX, k,
	    dre_key(k, sizeof k, 'h', 3, tenant, code, tx), &v, &vl);
	if (err != DRE_OK)
		return err;
	snprintf(id, sizeof id, "%.*s", (int) strnlen(v, vl), v);
	free(v);
	return resv_get(s, x, tenant, id, r);
}

static int64_t
counter_get(cp *s, dre_apply_ctx *x, const char *k, size_t kl, dre_err *errp)
{
	char   *v = NULL;
	size_t  vl = 0;
	int64_t n = 0;
	*errp = bget(s, x, CF_IDX, k, kl, &v, &vl);
	if (*errp == DRE_OK && vl == 8)
		n = dre_be64_get((const unsigned char *) v);
	free(v);
	if (*errp == DRE_ENOTFOUND)
		*errp = DRE_OK;
	return n;
}

// live_holds counts the live holds of a GENERIC code: *lapsed those whose
// time has passed (they no longer count), *mine the live ones of customer.
// The hold index is read from the store (only this thread changes it while
// the stripe is held) and each reservation through the batch, so a hold
// this batch ended is not counted.
static dre_err
live_holds(cp *s, dre_apply_ctx *x, const char *tenant, const char *code,
    const char *customer, int64_t *lapsed, int64_t *mine)
{
	char            p[512];
	size_t          pl = dre_key(p, sizeof p, 'h', 3, tenant, code, "");
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl, n = 0;
	dre_err         err;
	char(*ids)[DRE_UUID_LEN + 1] = NULL;
	*lapsed = *mine = 0;
	if (pl == 0)
		return DRE_OK;
	if ((ids = malloc(MAX_HOLDS * sizeof *ids)) == NULL)
		return DRE_ENOMEM;
	if ((err = dre_store_iter_open(&it, s->st, CF_IDX, p, pl)) != DRE_OK) {
		free(ids);
		return err;
	}
	while (n < MAX_HOLDS && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		snprintf(
		    ids[n], sizeof ids[n], "%.*s", (int) strnlen(v, vl), v);
		n++;
	}
	dre_store_iter_close(it);
	for (size_t i = 0; err == DRE_OK && i < n; i++) {
		cp_resv r;
		err = resv_get(s, x, tenant, ids[i], &r);
		if (err == DRE_ENOTFOUND) {
			err = DRE_OK;
			continue;
		}
		if (err != DRE_OK || r.state != CP_HOLD_HELD)
			continue;
		if (r.expires_at <= x->now_ms)
			(*lapsed)++;
		else if (customer[0] != '\0'
		    && strcmp(r.customer, customer) == 0)
			(*mine)++;
	}
	free(ids);
	return err;
}

// ---- redemption ---------------------------------------------------------

typedef struct {
	const dre_tx_confirmed *t;
	const char             *customer; // "" = none
	dre_buf                 reason; // "; "-separated problems
	int32_t                 redeemed;
	dre_sfx_coupon         *issued;
	size_t                  nissued;
} sale;

static void problem(sale *sl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// problem adds one thing that could not be done to the sale's reason.
static void
problem(sale *sl, const char *fmt, ...)
{
	char    line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (sl->reason.len > 0)
		dre_buf_puts(&sl->reason, "; ");
	dre_buf_puts(&sl->reason, line);
}

// redeemed stages the redemption of c by the sale (held by reservation
// res_id, "" = directly) for customer: counts, state, indexes, event.
static dre_err
redeemed(cp *s, dre_apply_ctx *x, sale *sl, cp_code *c, const cp_type *ty,
    const char *res_id, const char *customer)
{
	const char *tenant = sl->t->tenant, *tx = sl->t->transaction_id;
	char        k[512];
	size_t      kl;
	dre_err     err = DRE_OK;
	c->redemptions++;
	c->redeemed_at = x->now_ms;
	if (!ty->r.generic
	    || (ty->r.max_redemptions > 0
	        && c->redemptions >= ty->r.max_redemptions))
		c->state = CP_REDEEMED;
	kl = dre_key(k, sizeof k, 'r', 3, tenant, c->code, tx);
	if (kl == 0)
		return DRE_ETOOBIG;
	dre_batch_put(x->b, s->st, CF_IDX, k, kl, res_id, strlen(res_id));
	if (customer[0] != '\0'
	    && (kl = dre_key(k, sizeof k, 'k', 3, tenant, c->code, customer))
	        > 0) {
		unsigned char be[8];
		int64_t       n = counter_get(s, x, k, kl, &err);
		if (err != DRE_OK)
			return err;
		dre_be64_put(be, n + 1);
		dre_batch_put(x->b, s->st, CF_IDX, k, kl, be, 8);
	}
	cp_event e = { .type = "COUPON_REDEEMED",
		.code = c->code,
		.type_id = c->type_id,
		.customer = customer,
		.tx = tx,
		.res_id = res_id,
		.count = c->redemptions };
	if ((err = cp_event_put(s, x->b, tenant, &e)) != DRE_OK)
		return err;
	sl->redeemed++;
	return cp_stage_code(s, x->b, tenant, c, x->now_ms);
}

// redeem_code redeems one code presented with the sale: through the sale's
// reservation when it holds one, else directly if the code can be used.
// A code that cannot be redeemed is reported, never an error: the sale was
// confirmed and its discount stands (PRODUCT-DECISIONS §4).
static dre_err
redeem_code(cp *s, dre_apply_ctx *x, sale *sl, const char *code)
{
	const char   *tenant = sl->t->tenant, *tx = sl->t->transaction_id;
	int64_t       now = x->now_ms;
	cp_code       c;
	cp_type       ty;
	cp_resv       r;
	cp_code_rules cv;
	cp_usage      u = { 0 };
	char          k[512];
	char         *v = NULL;
	size_t        vl = 0;
	dre_err       err;

	lock_code(s, tenant, code);
	err = code_get(s, x, tenant, code, &c);
	if (err == DRE_OK)
		err = cp_type_load(s, x->a, tenant, c.type_id, &ty);
	if (err == DRE_ENOTFOUND) {
		problem(sl, "coupon '%s': %s (NOT_FOUND)", code,
		    cp_reason_text(CP_R_NOT_FOUND));
		return DRE_OK;
	}
	if (err != DRE_OK)
		return err == DRE_ECODEC ? DRE_ESTORE : err;

	// Redeemed by this very transaction already (a replay, or the POS
	// redeemed its reservation itself): nothing more to do.
	err = bget(s, x, CF_IDX, k,
	    dre_key(k, sizeof k, 'r', 3, tenant, code, tx), &v, &vl);
	free(v);
	if (err == DRE_OK) {
		sl->redeemed++;
		return DRE_OK;
	}
	if (err != DRE_ENOTFOUND)
		return err;

	// Its own reservation: redeemed even if its time passed a moment ago
	// (the discount was granted while it held).
	err = hold_of(s, x, tenant, code, tx, &r);
	if (err == DRE_OK && r.state == CP_HOLD_HELD) {
		if ((err = cp_hold_end(
		         s, x->b, tenant, &c, &r, CP_HOLD_REDEEMED, now, NULL))
		    != DRE_OK)
			return err;
		return redeemed(s, x, sl, &c, &ty, r.id,
		    r.customer[0] != '\0' ? r.customer : sl->customer);
	}
	if (err != DRE_OK && err != DRE_ENOTFOUND)
		return err;

	// Directly: the rules of a reserve, judged at the evaluation. A
	// personal code in a sale without a customer is its owner's use.
	int64_t     at = sl->t->evaluated_at > 0 ? sl->t->evaluated_at : now;
	const char *who = cp_customer_of_use(c.customer, sl->customer);
	cp_code_view(&c, &cv);
	if (ty.r.generic) {
		int64_t lapsed = 0, mine = 0;
		if ((err = live_holds(s, x, tenant, code, who, &lapsed, &mine))
		    != DRE_OK)
			return err;
		cv.held = c.held > lapsed ? c.held - lapsed : 0;
		u.customer_uses = mine
		    + counter_get(s, x, k,
		        dre_key(k, sizeof k, 'k', 3, tenant, code, who), &err);
		if (err != DRE_OK)
			return err;
	}
	cp_reason why = cp_check_use(&cv, &ty.r, at, now, tx, who, &u);
	if (why != CP_R_OK) {
		problem(sl, "coupon '%s' not redeemed: %s (%s)", code,
		    cp_reason_text(why), cp_reason_name(why));
		return DRE_OK;
	}
	// An INDIVIDUAL code still marked for another transaction's lapsed
	// hold: that hold ends first.
	if (!ty.r.generic && c.state == CP_RESERVED && c.res_id[0] != '\0') {
		err = resv_get(s, x, tenant, c.res_id, &r);
		if (err == DRE_OK && r.state == CP_HOLD_HELD)
			err = cp_hold_end(s, x->b, tenant, &c, &r,
			    CP_HOLD_EXPIRED, now,
			    "COUPON_RESERVATION_EXPIRED");
		else if (err == DRE_OK || err == DRE_ENOTFOUND) {
			err = DRE_OK;
			c.res_id[0] = c.res_tx[0] = '\0';
			c.res_until = 0;
			c.state = CP_ACTIVE;
		}
		if (err != DRE_OK)
			return err;
	}
	return redeemed(s, x, sl, &c, &ty, "", who);
}

// ---- post-purchase codes ------------------------------------------------

static dre_err
issued_add(sale *sl, dre_apply_ctx *x, const cp_code *c)
{
	if (sl->nissued == MAX_ISSUED)
		return DRE_EINVAL;
	dre_sfx_coupon *o = &sl->issued[sl->nissued++];
	o->code = dre_arena_strdup(x->a, c->code);
	o->coupon_type_id = dre_arena_strdup(x->a, c->type_id);
	o->customer_id
	    = c->customer[0] ? dre_arena_strdup(x->a, c->customer) : NULL;
	o->issued_at = c->issued_at;
	return o->code == NULL || o->coupon_type_id == NULL ? DRE_ENOMEM
	                                                    : DRE_OK;
}

// issue generates the codes of ISSUE_COUPON action j of promotion promo.
static dre_err
issue(cp *s, dre_apply_ctx *x, sale *sl, const char *promo, size_t j,
    const cp_issue *act)
{
	const char *tenant = sl->t->tenant, *tx = sl->t->transaction_id;
	int64_t     now = x->now_ms;
	cp_type     ty;
	bool        have_type = false;
	dre_err     err;

	for (int64_t n = 0; n < act->quantity; n++) {
		if (sl->nissued == MAX_ISSUED) {
			problem(sl,
			    "promotion %s: more than %d post-purchase coupons "
			    "for one sale, the rest not issued",
			    promo, MAX_ISSUED);
			return DRE_OK;
		}
		char   k[1024], js[24], ns[24], *v = NULL;
		size_t kl, vl = 0;
		snprintf(js, sizeof js, "%zu", j);
		snprintf(ns, sizeof ns, "%lld", (long long) n);
		kl = dre_key(k, sizeof k, 'p', 5, tenant, tx, promo, js, ns);
		if (kl == 0)
			return DRE_EINVAL;
		err = bget(s, x, CF_IDX, k, kl, &v, &vl);
		if (err == DRE_OK) { // made before: report it again
			char    code[CP_CODE_MAX + 1];
			cp_code c;
			snprintf(code, sizeof code, "%.*s", (int) vl, v);
			free(v);
			if ((err = code_get(s, x, tenant, code, &c)) == DRE_OK)
				err = issued_add(sl, x, &c);
			if (err != DRE_OK && err != DRE_ENOTFOUND)
				return err;
			continue;
		}
		if (err != DRE_ENOTFOUND)
			return err;
		if (!have_type) {
			err = cp_type_load(s, x->a, tenant, act->type_id, &ty);
			if (err == DRE_ENOTFOUND) {
				problem(sl,
				    "promotion %s: coupon type %s does not "
				    "exist, no post-purchase coupon issued",
				    promo, act->type_id);
				return DRE_OK;
			}
			if (err != DRE_OK)
				return err == DRE_ECODEC ? DRE_ESTORE : err;
			if (!ty.r.active
			    || (ty.r.valid_to != 0 && ty.r.valid_to < now)) {
				problem(sl,
				    "promotion %s: coupon type %s is inactive "
				    "or expired, no post-purchase coupon "
				    "issued",
				    promo, act->type_id);
				return DRE_OK;
			}
			have_type = true;
		}

		cp_code c;
		memset(&c, 0, sizeof c);
		lock_create(s);
		for (int tries = 0;; tries++) {
			char   ck[512];
			char  *cv = NULL;
			size_t cvl = 0;
			if (!cp_code_generate(
			        c.code, ty.prefix, (int) ty.code_length))
				return DRE_EINVAL;
			err = bget(s, x, CF_CODES, ck,
			    dre_key(ck, sizeof ck, 0, 2, tenant, c.code), &cv,
			    &cvl);
			free(cv);
			if (err == DRE_ENOTFOUND)
				break;
			if (err != DRE_OK)
				return err;
			if (tries >= REGEN_TRIES) {
				problem(sl,
				    "promotion %s: coupon type %s has no free "
				    "code left",
				    promo, act->type_id);
				return DRE_OK;
			}
		}
		memcpy(c.type_id, ty.id, sizeof c.type_id);
		c.state = CP_ACTIVE;
		snprintf(c.customer, sizeof c.customer, "%s", sl->customer);
		cp_birth_validity(
		    &ty.r, ty.validity_days, now, &c.valid_from, &c.valid_to);
		c.origin = CP_ORIGIN_POST_PURCHASE;
		c.issued_at = c.created_at = c.activated_at = now;
		snprintf(c.issuing_promotion, sizeof c.issuing_promotion, "%s",
		    promo);
		snprintf(c.issuing_tx, sizeof c.issuing_tx, "%s", tx);
		if ((err = cp_stage_new_code(s, x->b, tenant, &c)) != DRE_OK)
			return err;
		dre_batch_put(
		    x->b, s->st, CF_IDX, k, kl, c.code, strlen(c.code));
		cp_event e = { .type = "COUPON_ISSUED",
			.code = c.code,
			.type_id = c.type_id,
			.customer = c.customer,
			.tx = tx,
			.count = -1,
			.promotion_id = promo };
		if ((err = cp_event_put(s, x->b, tenant, &e)) != DRE_OK
		    || (err = issued_add(sl, x, &c)) != DRE_OK)
			return err;
	}
	return DRE_OK;
}

// ---- the sale
// ---------------------------------------------------------------

static dre_err
result_put(cp *s, dre_apply_ctx *x, sale *sl, bool any)
{
	const dre_tx_confirmed *t = sl->t;
	dre_sfx_result          res;
	dre_sidefx_init(&res, "coupon", t, x);
	res.status = sl->reason.len > 0 ? "FAILED"
	    : any                       ? "SUCCESS"
	                                : "SKIPPED";
	res.reason = sl->reason.len > 0
	    ? dre_arena_strdup(x->a, sl->reason.data)
	    : NULL;
	res.coupons_redeemed = sl->redeemed;
	res.coupons = sl->issued;
	res.ncoupons = sl->nissued;
	return dre_sidefx_put(s->ob, x->b, &res);
}

dre_err
cp_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	cp              *s = arg;
	dre_tx_confirmed t;
	dre_err          err
	    = dre_avro_decode_tx_confirmed(&t, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	if (t.tenant == NULL || t.transaction_id == NULL)
		return DRE_EINVAL;

	// First what the promotions ask for, before anything is staged: a
	// promotion the link table does not know yet retries the batch.
	cp_issue **acts
	    = dre_arena_get(x->a, (t.npromotions + 1) * sizeof *acts);
	size_t *nacts
	    = dre_arena_get(x->a, (t.npromotions + 1) * sizeof *nacts);
	sale sl = { .t = &t, .customer = t.customer_id ? t.customer_id : "" };
	if (acts == NULL || nacts == NULL)
		return DRE_ENOMEM;
	for (size_t i = 0; i < t.npromotions; i++) {
		err = cp_links_issue(s, x->a, t.tenant,
		    t.promotions[i].promotion_id, &acts[i], &nacts[i]);
		if (err == DRE_ENOTFOUND && x->attempts < CP_UNKNOWN_TRIES) {
			dre_info("confirm %s/%s: promotion %s not known yet: "
			         "waiting for the promotion feed",
			    t.tenant, t.transaction_id,
			    t.promotions[i].promotion_id);
			return DRE_EUNAVAIL;
		}
		if (err == DRE_ENOTFOUND) {
			problem(&sl,
			    "promotion %s is unknown to the coupon service: "
			    "its post-purchase coupons were not issued",
			    t.promotions[i].promotion_id);
			nacts[i] = 0;
			err = DRE_OK;
		} else if (err != DRE_OK) {
			dre_buf_free(&sl.reason);
			return err;
		}
	}

	// The codes, each once, in the order of the sale.
	char(*codes)[CP_CODE_MAX + 1]
	    = dre_arena_get(x->a, MAX_CODES * sizeof *codes);
	size_t ncodes = 0;
	if (codes == NULL)
		return DRE_ENOMEM;
	for (size_t i = 0; i < t.npromotions; i++) {
		const char *cc = t.promotions[i].coupon_code;
		char        norm[CP_CODE_MAX + 1];
		size_t      j = 0;
		if (cc == NULL || cc[0] == '\0')
			continue;
		if (!cp_code_normalize(norm, cc, strlen(cc))) {
			problem(&sl, "coupon '%.*s': %s (NOT_FOUND)",
			    DRE_UTF8_CUT(cc, 50),
			    cp_reason_text(CP_R_NOT_FOUND));
			continue;
		}
		while (j < ncodes && strcmp(codes[j], norm) != 0)
			j++;
		if (j < ncodes)
			continue;
		if (ncodes == MAX_CODES) {
			problem(&sl,
			    "coupon '%s': more than %d coupon codes in one "
			    "sale, not redeemed",
			    norm, MAX_CODES);
			continue;
		}
		memcpy(codes[ncodes++], norm, sizeof norm);
	}

	bool any = ncodes > 0;
	for (size_t i = 0; err == DRE_OK && i < ncodes; i++)
		err = redeem_code(s, x, &sl, codes[i]);
	if (err == DRE_OK
	    && (sl.issued
	           = dre_arena_get(x->a, MAX_ISSUED * sizeof *sl.issued))
	        == NULL)
		err = DRE_ENOMEM;
	for (size_t i = 0; err == DRE_OK && i < t.npromotions; i++)
		for (size_t j = 0; err == DRE_OK && j < nacts[i]; j++) {
			any = true;
			err = issue(s, x, &sl, t.promotions[i].promotion_id, j,
			    &acts[i][j]);
		}
	if (err == DRE_OK)
		err = result_put(s, x, &sl, any);
	if (err == DRE_OK && sl.reason.len > 0)
		dre_warn("confirm %s/%s: %s", t.tenant, t.transaction_id,
		    sl.reason.data);
	dre_buf_free(&sl.reason);
	return err;
}

// ---- the applier
// ------------------------------------------------------------

static const char *const topics[] = { DRE_TOPIC_TX_CONFIRMED };

dre_err
cp_applier_start(cp *s, int max_batch)
{
	if (dre_kvlist_get(s->kafka, "bootstrap.servers") == NULL) {
		dre_warn(
		    "confirm: no kafka.bootstrap.servers: confirmed sales "
		    "are not consumed");
		return DRE_OK;
	}
	// Coupon codes are shared by every partition (a GENERIC code is used
	// in many transactions): one instance reads them all (static
	// assignment). A lost position restarts from the log's beginning,
	// which the eventIds and the per-transaction keys make harmless.
	dre_applier_cfg cfg = { .name = "transactions",
		.topics = topics,
		.ntopics = 1,
		.st = s->st,
		.cf = CF_APPLIER,
		.kafka = s->kafka,
		.apply = cp_apply_confirmed,
		.batch_end = cp_apply_batch_end,
		.arg = s,
		.max_batch = max_batch };
	return dre_applier_start(&s->ap, &cfg);
}

void
cp_applier_stop(cp *s)
{
	dre_applier_stop(s->ap);
	s->ap = NULL;
}
