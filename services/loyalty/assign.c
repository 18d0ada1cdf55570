// loyalty/assign.c -- personal promotion assignments (PRODUCT-DECISIONS §8):
// /api/v3/promotion-assignments (assign, list, unassign, redeem), the
// evaluator's question "which personal promotions does this customer hold"
// (loyalty.Assignments.active) and the redemption by a confirmed sale.
//
// An assignment names the promotion by its DRE id or its externalId; the
// catalog is asked at assignment time and the DRE id is kept, so that a
// confirm (which names DRE ids) finds it. One live (unredeemed) assignment
// per contact and promotion: assigning again answers the live one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/audit.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/uuid.h"
#include "dre/json.h"
#include "apply.h"
#include "rewards.h"

static const dre_docapi_svc loy_assign_api = { "the loyalty service", 1 };

typedef struct {
	const char *id, *promotion, *external, *name, *contact, *tx, *channel;
	int64_t     created, expires, redeemed_on; // expires 0 = open
	bool        redeemed;
} assignment;

static void
as_store(dre_buf *out, const assignment *x)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", x->id);
	dre_jsonw_kstr(&w, "promotionId", x->promotion);
	dre_jsonw_kstr(&w, "externalId", x->external);
	dre_jsonw_kstr(&w, "name", x->name);
	dre_jsonw_kstr(&w, "contactId", x->contact);
	dre_jsonw_kint(&w, "createdOn", x->created);
	dre_jsonw_kint(&w, "expiresOn", x->expires);
	dre_jsonw_kbool(&w, "redeemed", x->redeemed);
	dre_jsonw_kint(&w, "redeemedOn", x->redeemed_on);
	dre_jsonw_kstr(&w, "transactionId", x->tx);
	dre_jsonw_kstr(&w, "channel", x->channel);
	dre_jsonw_obj_end(&w);
}

static dre_err
as_parse(assignment *x, dre_arena *a, const char *text, size_t len)
{
	const dre_json *d = NULL;
	dre_err         err = loy_json_doc(a, text, len, &d);
	if (err != DRE_OK)
		return err;
	memset(x, 0, sizeof *x);
	x->id = loy_jstr(d, "id");
	x->promotion = loy_jstr(d, "promotionId");
	x->external = loy_jstr(d, "externalId");
	x->name = loy_jstr(d, "name");
	x->contact = loy_jstr(d, "contactId");
	x->tx = loy_jstr(d, "transactionId");
	x->channel = loy_jstr(d, "channel");
	x->created = loy_jint(d, "createdOn");
	x->expires = loy_jint(d, "expiresOn");
	x->redeemed_on = loy_jint(d, "redeemedOn");
	x->redeemed = dre_json_is(dre_json_get(d, "redeemed"), DRE_JSON_TRUE);
	return x->id != NULL && x->promotion != NULL && x->contact != NULL
	    ? DRE_OK
	    : DRE_ECODEC;
}

static void
ktime_or_null(dre_jsonw *w, const char *k, int64_t ms, bool set)
{
	dre_jsonw_key(w, k);
	if (set)
		dre_jsonw_time(w, ms);
	else
		dre_jsonw_null(w);
}

// as_render writes x as answered by /api/v3/promotion-assignments.
static void
as_render(dre_jsonw *w, const assignment *x, bool full)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "id", x->id);
	dre_jsonw_kstr(w, "promotionId", x->promotion);
	if (full)
		dre_jsonw_kstr(w, "contactId", x->contact);
	dre_jsonw_kstr(w, "externalId", x->external);
	dre_jsonw_kstr(w, "name", x->name);
	ktime_or_null(w, "expiresOn", x->expires, x->expires != 0);
	dre_jsonw_kbool(w, "redeemed", x->redeemed);
	ktime_or_null(w, "redeemedOn", x->redeemed_on, x->redeemed);
	dre_jsonw_key(w, "redemptionChannels");
	dre_jsonw_arr_begin(w);
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "type", "POS");
	dre_jsonw_kstr(w, "valueType", x->external ? "EXTERNALID" : "ID");
	dre_jsonw_kstr(w, "value", x->external ? x->external : x->promotion);
	dre_jsonw_obj_end(w);
	dre_jsonw_arr_end(w);
	dre_jsonw_obj_end(w);
}

// as_audit adds the audit record of a write of an assignment by the call's
// caller to b: before / after (NULL: none) as the API answers them.
static dre_err
as_audit(loy *s, dre_batch *b, const dre_rpc_call *call, const char *action,
    const assignment *before, const assignment *after)
{
	dre_buf   bd = { 0 }, ad = { 0 };
	dre_jsonw w;
	if (before != NULL) {
		dre_jsonw_init(&w, &bd);
		as_render(&w, before, true);
	}
	if (after != NULL) {
		dre_jsonw_init(&w, &ad);
		as_render(&w, after, true);
	}
	dre_err err = dre_audit_change(b, s->st, LOY_CF_AUDIT, call->tenant,
	    call->principal, "PromotionAssignment",
	    after != NULL ? after->id : before->id, action,
	    before != NULL ? &bd : NULL, after != NULL ? &ad : NULL, NULL);
	dre_buf_free(&bd);
	dre_buf_free(&ad);
	return err;
}

static bool
live(const assignment *x, int64_t now)
{
	return !x->redeemed && (x->expires == 0 || x->expires > now);
}

// ---- reading ------------------------------------------------------------

// as_get reads assignment id (its contact from 'B') as b will leave it.
static dre_err
as_get(loy *s, dre_batch *b, dre_arena *a, const char *tenant, const char *id,
    assignment *x, char *key, size_t cap, size_t *klp)
{
	char   k[600], *v = NULL;
	size_t vl = 0, kl = dre_key(k, sizeof k, 'B', 2, tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	dre_err err = dre_batch_get(b, s->st, LOY_CF_REWARDS, k, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	char *contact = dre_arena_strndup(a, v, vl);
	free(v);
	if (contact == NULL)
		return DRE_ENOMEM;
	*klp = dre_key(key, cap, 'A', 3, tenant, contact, id);
	if (*klp == 0)
		return DRE_ENOTFOUND;
	err = dre_batch_get(b, s->st, LOY_CF_REWARDS, key, *klp, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = as_parse(x, a, v, vl);
	free(v);
	return err;
}

// each calls fn for every assignment of contact (a snapshot, key order).
static dre_err
each(loy *s, dre_arena *a, const char *tenant, const char *contact,
    void (*fn)(void *, const assignment *), void *arg)
{
	char            p[600];
	size_t          pl = dre_key(p, sizeof p, 'A', 3, tenant, contact, "");
	dre_store_iter *it = NULL;
	if (pl == 0)
		return DRE_OK;
	dre_err err = dre_store_iter_open(&it, s->st, LOY_CF_REWARDS, p, pl);
	if (err != DRE_OK)
		return err;
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		assignment x;
		if (as_parse(&x, a, v, vl) == DRE_OK)
			fn(arg, &x);
	}
	dre_store_iter_close(it);
	return DRE_OK;
}

typedef struct {
	dre_jsonw *w;
	bool       live_only;
	int64_t    now;
} render_ctx;

static void
render_one(void *arg, const assignment *x)
{
	render_ctx *r = arg;
	if (!r->live_only || live(x, r->now))
		as_render(r->w, x, false);
}

dre_err
loy_assignments_render(loy *s, dre_arena *a, const char *tenant,
    const char *contact, bool live_only, dre_jsonw *w)
{
	render_ctx r = { w, live_only, dre_now_ms() };
	dre_jsonw_arr_begin(w);
	dre_err err = each(s, a, tenant, contact, render_one, &r);
	dre_jsonw_arr_end(w);
	return err;
}

// ---- the promotion an assignment names ----------------------------------

typedef struct {
	const char *id, *name, *external;
	bool        personal;
	int64_t     valid_to; // 0 = open
} promo_ref;

static void
promo_read(promo_ref *p, const dre_json *doc)
{
	p->id = loy_jstr(doc, "id");
	p->name = loy_jstr(doc, "name");
	p->external = loy_jstr(doc, "externalId");
	const char *as = loy_jstr(doc, "assignment");
	p->personal = as != NULL && strcmp(as, "PERSONAL") == 0;
	const char *vt = loy_jstr(doc, "validTo");
	p->valid_to = 0;
	if (vt != NULL
	    && dre_time_parse(&p->valid_to, vt, strlen(vt)) != DRE_OK)
		p->valid_to = 0;
}

// promo_find asks the catalog for the promotion given (its id, else its
// externalId). false with o set when there is none or the catalog did not
// answer.
static bool
promo_find(loy *s, dre_arena *a, const char *tenant, const char *given,
    promo_ref *p, loy_outcome *o)
{
	const char     *params[4] = { "id", given, NULL, NULL };
	int             st = 0;
	const dre_json *doc = NULL;
	dre_err err = loy_call(s, s->catalog, "catalog.Promotions.get", tenant,
	    params, 1, NULL, a, &st, &doc);
	if (err == DRE_OK && st == 200) {
		promo_read(p, doc);
		if (p->id != NULL)
			return true;
	}
	if (err == DRE_OK && (st == 404 || st == 400)) {
		// Not an id: an externalId? Quotes double in OData strings.
		dre_buf f = { 0 };
		dre_buf_puts(&f, "externalId eq '");
		for (const char *c = given; *c; c++) {
			if (*c == '\'')
				dre_buf_putc(&f, '\'');
			dre_buf_putc(&f, *c);
		}
		dre_buf_putc(&f, '\'');
		char *filter
		    = f.oom ? NULL : dre_arena_strndup(a, f.data, f.len);
		dre_buf_free(&f);
		params[0] = "$filter";
		params[1] = filter;
		if (filter == NULL)
			err = DRE_ENOMEM;
		else
			err = loy_call(s, s->catalog,
			    "catalog.Promotions.list", tenant, params, 1, NULL,
			    a, &st, &doc);
		const dre_json *first
		    = dre_json_at(dre_json_get(doc, "value"), 0);
		if (err == DRE_OK && st == 200 && first != NULL) {
			promo_read(p, first);
			if (p->id != NULL)
				return true;
		}
		if (err == DRE_OK && st == 200) {
			o->status = 404;
			o->code = "PromotionNotFound";
			o->target = "promotionId";
			snprintf(o->msg, sizeof o->msg,
			    "no promotion with the id or externalId '%.*s'",
			    DRE_UTF8_CUT(given, 150));
			return false;
		}
	}
	o->status = 503;
	o->code = "UNAVAILABLE";
	o->target = NULL;
	snprintf(o->msg, sizeof o->msg,
	    "the catalog did not answer about promotion '%.100s' (%s %d): "
	    "nothing was assigned",
	    given, err != DRE_OK ? dre_strerror(err) : "status", st);
	return false;
}

// ---- handlers -----------------------------------------------------------

static void
reply_outcome(dre_docapi_req *d, const loy_outcome *o)
{
	dre_rpc_reply_error(
	    d->rep, o->status, o->code, o->target, "%s", o->msg);
}

static void
reply_assignment(dre_docapi_req *d, int status, const assignment *x)
{
	dre_jsonw w;
	dre_jsonw_init(&w, &d->rep->body);
	as_render(&w, x, true);
	d->rep->status = status;
	dre_rpc_reply_json(d->rep);
}

static const char *
body_str(dre_docapi_req *d, const dre_json *doc, const char *k)
{
	const dre_json *v = dre_json_get(doc, k);
	if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0 || v->len > 200
	    || memchr(v->str, 0, v->len) != NULL) {
		dre_docapi_invalid(
		    d, k, "%s must be a string of 1 to 200 bytes", k);
		return NULL;
	}
	return v->str;
}

void
loy_h_assign_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	static const char *const known[] = { "contactId", "promotionId" };
	loy                     *s = svc;
	dre_docapi_req           d;
	dre_batch               *b = NULL;
	dre_buf                  doc = { 0 };
	bool                     locked = false;
	if (!dre_docapi_begin(&d, &loy_assign_api, call, rep))
		goto out;
	const dre_json *in = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(&d, in, known, 2))
		goto out;
	const char *contact = body_str(&d, in, "contactId");
	const char *given = contact ? body_str(&d, in, "promotionId") : NULL;
	if (given == NULL)
		goto out;
	loy_contact c;
	dre_err err = loy_contact_get(s, NULL, d.a, call->tenant, contact, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "ContactNotFound", "contactId",
		    "no contact %s", contact);
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	promo_ref   p = { 0 };
	loy_outcome o = { 0 };
	if (!promo_find(s, d.a, call->tenant, given, &p, &o)) {
		reply_outcome(&d, &o);
		goto out;
	}
	if (!p.personal) {
		dre_docapi_invalid(&d, "promotionId",
		    "promotion %s is not personal (assignment NONE): it "
		    "applies to every customer already",
		    p.id);
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	locked = true;
	// The live assignment of this promotion, if the contact has one.
	char   qk[600], k[600], *v = NULL;
	size_t vl = 0, kl;
	size_t ql = dre_key(qk, sizeof qk, 'Q', 3, call->tenant, c.id, p.id);
	assignment x;
	err = ql == 0 ? DRE_ENOTFOUND
	              : dre_store_get(s->st, LOY_CF_REWARDS, qk, ql, &v, &vl);
	if (err == DRE_OK) {
		char *aid = dre_arena_strndup(d.a, v, vl);
		free(v);
		err = aid == NULL ? DRE_ENOMEM
		                  : as_get(s, NULL, d.a, call->tenant, aid, &x,
		                      k, sizeof k, &kl);
		if (err == DRE_OK && live(&x, dre_now_ms())) {
			reply_assignment(&d, 200, &x);
			goto out;
		}
		if (err == DRE_ENOTFOUND)
			err = DRE_ENOTFOUND;
	}
	if (err != DRE_OK && err != DRE_ENOTFOUND) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	char id[DRE_UUID_LEN + 1];
	dre_uuid_v4(id);
	memset(&x, 0, sizeof x);
	x.id = id;
	x.promotion = p.id;
	x.external = p.external;
	x.name = p.name;
	x.contact = c.id;
	x.created = dre_now_ms();
	x.expires = p.valid_to;
	if ((b = dre_batch_alloc()) == NULL) {
		dre_docapi_internal(&d, DRE_ENOMEM);
		goto out;
	}
	as_store(&doc, &x);
	kl = dre_key(k, sizeof k, 'A', 3, call->tenant, c.id, id);
	dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	kl = dre_key(k, sizeof k, 'B', 2, call->tenant, id);
	dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, c.id, strlen(c.id));
	dre_batch_put(b, s->st, LOY_CF_REWARDS, qk, ql, id, strlen(id));
	if (doc.oom
	    || (err = loy_event(s, b, call->tenant, &c, "PROMOTION_ASSIGNED",
	            0, NULL, NULL, NULL, id, id, x.created))
	        != DRE_OK
	    || (err = as_audit(s, b, call, NULL, NULL, &x)) != DRE_OK
	    || (err = dre_store_write(s->st, b, true)) != DRE_OK) {
		dre_docapi_internal(&d, doc.oom ? DRE_ENOMEM : err);
		goto out;
	}
	dre_outbox_kick(s->ob);
	reply_assignment(&d, 201, &x);
out:
	if (locked)
		pthread_mutex_unlock(&s->mu);
	dre_batch_free(b);
	dre_buf_free(&doc);
	dre_docapi_end(&d);
}

void
loy_h_assign_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	loy           *s = svc;
	dre_docapi_req d;
	if (!dre_docapi_begin(&d, &loy_assign_api, call, rep))
		goto out;
	const char *contact = dre_rpc_param(call, "contactId");
	const char *chan = dre_rpc_param(call, "redemptionChannelType");
	if (chan != NULL && strcmp(chan, "POS") != 0
	    && strcmp(chan, "ECOM") != 0 && strcmp(chan, "OTHER") != 0) {
		dre_docapi_invalid(&d, "redemptionChannelType",
		    "redemptionChannelType must be POS, ECOM or OTHER");
		goto out;
	}
	if (contact == NULL || contact[0] == '\0') {
		dre_docapi_invalid(&d, "contactId", "contactId is required");
		goto out;
	}
	loy_contact c;
	dre_err err = loy_contact_get(s, NULL, d.a, call->tenant, contact, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "ContactNotFound", "contactId",
		    "no contact %s", contact);
		goto out;
	}
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "items");
	if (err == DRE_OK)
		err = loy_assignments_render(
		    s, d.a, call->tenant, c.id, false, &w);
	dre_jsonw_obj_end(&w);
	if (err != DRE_OK) {
		dre_buf_reset(&rep->body);
		dre_docapi_internal(&d, err);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}

// finish ends assignment id: redeemed (redeem) or deleted (unassign).
static void
finish(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep, bool redeem)
{
	loy           *s = svc;
	dre_docapi_req d;
	dre_batch     *b = NULL;
	dre_buf        doc = { 0 };
	bool           locked = false;
	if (!dre_docapi_begin(&d, &loy_assign_api, call, rep))
		goto out;
	const char *id = dre_rpc_param(call, "id");
	const char *chan = "POS";
	if (redeem && call->body_len > 0) {
		const dre_json *in
		    = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
		if (in == NULL)
			goto out;
		const dre_json *ch = dre_json_get(in, "redemptionChannel");
		if (dre_json_is(ch, DRE_JSON_STRING) && ch->len > 0
		    && ch->len <= 20)
			chan = ch->str;
		else if (ch != NULL && !dre_json_is_null(ch)) {
			dre_docapi_invalid(&d, "redemptionChannel",
			    "redemptionChannel must be POS, ECOM or OTHER");
			goto out;
		}
	}
	pthread_mutex_lock(&s->mu);
	locked = true;
	assignment x;
	char       k[600];
	size_t     kl = 0;
	dre_err    err = as_get(
	       s, NULL, d.a, call->tenant, id ? id : "", &x, k, sizeof k, &kl);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "PromotionNotFound", "id",
		    "no promotion assignment %s", id ? id : "");
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	if (x.redeemed) {
		dre_rpc_reply_error(rep, 409, "PromotionAlreadyRedeemed", "id",
		    "promotion assignment %s was redeemed already", x.id);
		goto out;
	}
	loy_contact c;
	if ((err = loy_contact_get(s, NULL, d.a, call->tenant, x.contact, &c))
	        != DRE_OK
	    || (b = dre_batch_alloc()) == NULL) {
		dre_docapi_internal(
		    &d, b == NULL && err == DRE_OK ? DRE_ENOMEM : err);
		goto out;
	}
	char   qk[600], bk[600];
	size_t ql = dre_key(
	    qk, sizeof qk, 'Q', 3, call->tenant, x.contact, x.promotion);
	dre_batch_delete(b, s->st, LOY_CF_REWARDS, qk, ql);
	int64_t    now = dre_now_ms();
	assignment before = x;
	if (redeem) {
		x.redeemed = true;
		x.redeemed_on = now;
		x.channel = chan;
		as_store(&doc, &x);
		dre_batch_put(
		    b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
		char seed[100];
		snprintf(seed, sizeof seed, "redeem|%s", x.id);
		err = doc.oom
		    ? DRE_ENOMEM
		    : loy_event(s, b, call->tenant, &c, "PROMOTION_REDEEMED",
		        0, NULL, NULL, NULL, x.id, seed, now);
	} else {
		dre_batch_delete(b, s->st, LOY_CF_REWARDS, k, kl);
		size_t bl = dre_key(bk, sizeof bk, 'B', 2, call->tenant, x.id);
		dre_batch_delete(b, s->st, LOY_CF_REWARDS, bk, bl);
	}
	if (err == DRE_OK)
		err = as_audit(s, b, call, redeem ? "redeem" : NULL, &before,
		    redeem ? &x : NULL);
	if (err == DRE_OK)
		err = dre_store_write(s->st, b, true);
	if (err != DRE_OK) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	dre_outbox_kick(s->ob);
	if (redeem)
		reply_assignment(&d, 200, &x);
	else
		rep->status = 204;
out:
	if (locked)
		pthread_mutex_unlock(&s->mu);
	dre_batch_free(b);
	dre_buf_free(&doc);
	dre_docapi_end(&d);
}

void
loy_h_assign_delete(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	finish(svc, call, rep, false);
}

void
loy_h_assign_redeem(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	finish(svc, call, rep, true);
}

typedef struct {
	dre_jsonw *w;
	int64_t    now;
} active_ctx;

static void
active_one(void *arg, const assignment *x)
{
	active_ctx *r = arg;
	if (live(x, r->now))
		dre_jsonw_str(r->w, x->promotion);
}

// loy_h_assign_active answers the evaluator: {contactId, level,
// promotionIds[]} -- the level the points of the last 365 days give (for
// LOYALTY_TIER conditions) and the live assignments of customerId (a
// contact id or memberNumber); an unknown customer has no level and holds
// none.
void
loy_h_assign_active(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	loy           *s = svc;
	dre_docapi_req d;
	if (!dre_docapi_begin(&d, &loy_assign_api, call, rep))
		goto out;
	const char *who = dre_rpc_param(call, "customerId");
	loy_contact c;
	dre_err     err = who == NULL
	        ? DRE_ENOTFOUND
	        : loy_resolve(s, NULL, d.a, call->tenant, who, &c);
	if (err != DRE_OK && err != DRE_ENOTFOUND) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	const char *level = NULL;
	loy_program p;
	if (err == DRE_OK) {
		dre_err perr = loy_program_get(s, d.a, call->tenant, &p);
		if (perr != DRE_OK) {
			dre_docapi_internal(&d, perr);
			goto out;
		}
		level
		    = loy_level(&p, loy_earned365(&c, loy_day(dre_now_ms())));
	}
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "contactId", err == DRE_OK ? c.id : NULL);
	dre_jsonw_kstr(&w, "level", level);
	dre_jsonw_key(&w, "promotionIds");
	dre_jsonw_arr_begin(&w);
	active_ctx ac = { &w, dre_now_ms() };
	if (err == DRE_OK)
		err = each(s, d.a, call->tenant, c.id, active_one, &ac);
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	if (err != DRE_OK && err != DRE_ENOTFOUND) {
		dre_buf_reset(&rep->body);
		dre_docapi_internal(&d, err);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}

// ---- at confirm -----------------------------------------------------------

dre_err
loy_assignment_confirmed(loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t,
    loy_contact *c, const char *promotion_id)
{
	char   qk[600], k[600], *v = NULL;
	size_t vl = 0, kl = 0;
	size_t ql
	    = dre_key(qk, sizeof qk, 'Q', 3, t->tenant, c->id, promotion_id);
	dre_err err = ql == 0
	    ? DRE_ENOTFOUND
	    : dre_batch_get(x->b, s->st, LOY_CF_REWARDS, qk, ql, &v, &vl);
	if (err == DRE_ENOTFOUND)
		return DRE_OK; // no live assignment: not a personal one
	if (err != DRE_OK)
		return err;
	char *aid = dre_arena_strndup(x->a, v, vl);
	free(v);
	if (aid == NULL)
		return DRE_ENOMEM;
	assignment as;
	err = as_get(s, x->b, x->a, t->tenant, aid, &as, k, sizeof k, &kl);
	if (err != DRE_OK)
		return err == DRE_ENOTFOUND || err == DRE_ECODEC ? DRE_OK
		                                                 : err;
	if (as.redeemed)
		return DRE_OK;
	as.redeemed = true;
	as.redeemed_on = t->occurred_at;
	as.tx = t->transaction_id;
	as.channel = "POS";
	dre_buf doc = { 0 };
	as_store(&doc, &as);
	if (doc.oom)
		return DRE_ENOMEM;
	dre_batch_put(x->b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	dre_batch_delete(x->b, s->st, LOY_CF_REWARDS, qk, ql);
	dre_buf_free(&doc);
	char seed[300];
	snprintf(seed, sizeof seed, "%s|%s", t->event_id, as.id);
	return loy_event(s, x->b, t->tenant, c, "PROMOTION_REDEEMED", 0, NULL,
	    t->transaction_id, NULL, as.id, seed, x->now_ms);
}
