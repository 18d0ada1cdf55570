// loyalty/rewards.c -- reward vouchers: points exchanged for a personal
// coupon code of the coupon service (coupon.IssueVoucher), on request
// (POST /api/v3/reward-vouchers) or automatically while the program says
// so; listed in Engage's shape; marked redeemed when a confirmed sale used
// the code (the coupon service redeems the code itself) or when redeemed
// through POST /api/v3/reward-vouchers/{id}/redeem.
//
// No half-applied exchange: the code is issued first, idempotently by a
// voucher id derived from the contact and its voucher count, and only then
// are the points debited, with the voucher and its event, in one synced
// batch. A coupon service that does not answer leaves the points where
// they were (503); a crash between the two leaves a code nobody knows of,
// which the next exchange of the contact gets back (same voucher id) and
// records.
//
// A redeem through the API likewise asks the coupon service first to
// withdraw the code (coupon.RedeemVoucher, idempotent: no till can use it
// afterwards) and only then records the redemption and its event in one
// synced batch: a crash in between leaves a withdrawn code on an unredeemed
// voucher, which the retry (the coupon service answers success again)
// completes.
#include "rewards.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/audit.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/svc.h"
#include "dre/uuid.h"

#define DAY_MS            86400000LL
#define CONVERT_EVERY_MS  1000 // the converter's pace when nothing kicks it
#define CONVERT_MAX_ROUND 100 // vouchers per contact and round

// ---- a JSON call to another service -----------------------------------

dre_err
loy_call(loy *s, dre_rpc_client *cli, const char *method, const char *tenant,
    const char *const *params, size_t n, const dre_buf *body, dre_arena *a,
    int *status, const dre_json **doc)
{
	*status = 0;
	*doc = NULL;
	if (cli == NULL)
		return DRE_EUNAVAIL;
	Dre__Param      pv[4], *pp[4];
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	for (size_t i = 0; i < n && i < 4; i++) {
		dre__param__init(&pv[i]);
		pv[i].key = (char *) params[2 * i];
		pv[i].value = (char *) params[2 * i + 1];
		pp[i] = &pv[i];
	}
	rq.method = (char *) method;
	rq.tenant = (char *) tenant;
	rq.principal = "loyalty";
	rq.has_deadline_unix_ms = true;
	rq.deadline_unix_ms = dre_now_ms() + s->call_ms;
	rq.params = pp;
	rq.n_params = n < 4 ? n : 4;
	if (body != NULL) {
		rq.has_body = true;
		rq.body.data = (uint8_t *) body->data;
		rq.body.len = body->len;
	}
	Dre__RpcReply *rr = NULL;
	dre_err err = dre_rpc_call_sync(cli, &rq, (int) s->call_ms, &rr);
	if (err != DRE_OK)
		return err;
	*status = rr->status;
	if (rr->has_body && rr->body.len > 0) {
		char *text = dre_arena_strndup(
		    a, (const char *) rr->body.data, rr->body.len);
		dre_json *d = NULL;
		if (text != NULL
		    && dre_json_parse(&d, a, text, rr->body.len, 32, NULL)
		        == DRE_OK)
			*doc = d;
	} else if (rr->error_message != NULL) {
		// An error answer: its message as {"error": {"message"}}.
		dre_buf   eb = { 0 };
		dre_jsonw w;
		dre_jsonw_init(&w, &eb);
		dre_jsonw_obj_begin(&w);
		dre_jsonw_key(&w, "error");
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", rr->error_code);
		dre_jsonw_kstr(&w, "message", rr->error_message);
		dre_jsonw_obj_end(&w);
		dre_jsonw_obj_end(&w);
		char *text
		    = eb.oom ? NULL : dre_arena_strndup(a, eb.data, eb.len);
		dre_json *d = NULL;
		if (text != NULL
		    && dre_json_parse(&d, a, text, eb.len, 4, NULL) == DRE_OK)
			*doc = d;
		dre_buf_free(&eb);
	}
	dre_rpc_reply_msg_free(rr);
	return DRE_OK;
}

// ---- the voucher document ---------------------------------------------

typedef struct {
	const char *id, *number, *contact, *name, *currency, *tx;
	int64_t     points, amount, created, expires, redeemed_on;
	bool        redeemed;
} voucher;

const char *
loy_jstr(const dre_json *o, const char *k)
{
	const dre_json *v = dre_json_get(o, k);
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

int64_t
loy_jint(const dre_json *o, const char *k)
{
	int64_t v = 0;
	if (dre_json_int(&v, dre_json_get(o, k), INT64_MIN, INT64_MAX)
	    != DRE_OK)
		return 0;
	return v;
}

static void
voucher_store(dre_buf *out, const voucher *v)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", v->id);
	dre_jsonw_kstr(&w, "voucherNumber", v->number);
	dre_jsonw_kstr(&w, "contactId", v->contact);
	dre_jsonw_kstr(&w, "name", v->name);
	dre_jsonw_kint(&w, "points", v->points);
	dre_jsonw_kint(&w, "amount", v->amount);
	dre_jsonw_kstr(&w, "currency", v->currency);
	dre_jsonw_kint(&w, "createdOn", v->created);
	dre_jsonw_kint(&w, "expiresOn", v->expires);
	dre_jsonw_kbool(&w, "redeemed", v->redeemed);
	dre_jsonw_kint(&w, "redeemedOn", v->redeemed_on);
	dre_jsonw_kstr(&w, "transactionId", v->tx);
	dre_jsonw_obj_end(&w);
}

dre_err
loy_json_doc(dre_arena *a, const char *text, size_t len, const dre_json **doc)
{
	dre_json *d = NULL;
	char     *copy = dre_arena_strndup(a, text, len);
	if (copy == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&d, a, copy, len, 4, NULL) != DRE_OK)
		return DRE_ECODEC;
	*doc = d;
	return DRE_OK;
}

static dre_err
voucher_parse(voucher *v, dre_arena *a, const char *text, size_t len)
{
	const dre_json *d = NULL;
	dre_err         err = loy_json_doc(a, text, len, &d);
	if (err != DRE_OK)
		return err;
	memset(v, 0, sizeof *v);
	v->id = loy_jstr(d, "id");
	v->number = loy_jstr(d, "voucherNumber");
	v->contact = loy_jstr(d, "contactId");
	v->name = loy_jstr(d, "name");
	v->currency = loy_jstr(d, "currency");
	v->tx = loy_jstr(d, "transactionId");
	v->points = loy_jint(d, "points");
	v->amount = loy_jint(d, "amount");
	v->created = loy_jint(d, "createdOn");
	v->expires = loy_jint(d, "expiresOn");
	v->redeemed_on = loy_jint(d, "redeemedOn");
	v->redeemed = dre_json_is(dre_json_get(d, "redeemed"), DRE_JSON_TRUE);
	return v->id != NULL && v->number != NULL ? DRE_OK : DRE_ECODEC;
}

// voucher_render writes v as an item of /api/v3/reward-vouchers.
static void
voucher_render(dre_jsonw *w, const voucher *v)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "id", v->id);
	dre_jsonw_kstr(w, "voucherNumber", v->number);
	dre_jsonw_kstr(w, "name", v->name);
	dre_jsonw_kbool(w, "redeemed", v->redeemed);
	dre_jsonw_key(w, "redeemedOn");
	if (v->redeemed)
		dre_jsonw_time(w, v->redeemed_on);
	else
		dre_jsonw_null(w);
	dre_jsonw_key(w, "expiresOn");
	dre_jsonw_time(w, v->expires);
	dre_jsonw_key(w, "value");
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "currency", v->currency);
	dre_jsonw_key(w, "amount");
	dre_jsonw_decimal(w, v->amount, DRE_MONEY_SCALE);
	dre_jsonw_obj_end(w);
	dre_jsonw_kint(w, "points", v->points);
	dre_jsonw_obj_end(w);
}

// voucher_render_rc writes v as a reward of the POS platform's reward
// lookup: rewardId is the voucher number, usable as a promo code.
static void
voucher_render_rc(dre_jsonw *w, const voucher *v)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "rewardId", v->number);
	dre_jsonw_kstr(w, "name", v->name);
	dre_jsonw_key(w, "amount");
	dre_jsonw_decimal(w, v->amount, DRE_MONEY_SCALE);
	dre_jsonw_kstr(w, "currency", v->currency);
	dre_jsonw_kint(w, "expiresAt", v->expires);
	dre_jsonw_obj_end(w);
}

// voucher_audit adds the audit record of a write of voucher after (before:
// as it was; NULL for a new one) by actor to b: both as the API answers
// them but for the code (voucherNumber null: whoever reads the log must not
// be able to use it).
static dre_err
voucher_audit(loy *s, dre_batch *b, const char *tenant, const char *actor,
    const char *action, const voucher *before, const voucher *after)
{
	dre_buf   bd = { 0 }, ad = { 0 };
	dre_jsonw w;
	voucher   v;
	if (before != NULL) {
		v = *before;
		v.number = NULL;
		dre_jsonw_init(&w, &bd);
		voucher_render(&w, &v);
	}
	v = *after;
	v.number = NULL;
	dre_jsonw_init(&w, &ad);
	voucher_render(&w, &v);
	dre_err err = dre_audit_change(b, s->st, LOY_CF_AUDIT, tenant, actor,
	    "RewardVoucher", after->id, action, before != NULL ? &bd : NULL,
	    &ad, NULL);
	dre_buf_free(&bd);
	dre_buf_free(&ad);
	return err;
}

static void fail(loy_outcome *o, int status, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
fail(loy_outcome *o, int status, const char *code, const char *target,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	o->status = status;
	o->code = code;
	o->target = target;
	vsnprintf(o->msg, sizeof o->msg, fmt, ap);
	va_end(ap);
}

// due_key writes 'P' tenant \0 contact.
static size_t
due_key(char *k, size_t cap, const char *tenant, const char *contact)
{
	return dre_key(k, cap, 'P', 2, tenant, contact);
}

void
loy_vouchers_due(loy *s, dre_batch *b, const char *tenant,
    const loy_contact *c, const loy_program *p)
{
	char   k[512];
	size_t kl = due_key(k, sizeof k, tenant, c->id);
	if (kl == 0)
		return;
	if (p->automatic && p->voucher_type != NULL
	    && c->balance >= p->per_voucher)
		dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, "", 0);
	else
		dre_batch_delete(b, s->st, LOY_CF_REWARDS, k, kl);
}

// ---- the exchange -----------------------------------------------------

// issue asks the coupon service for the code of voucher vid.
static bool
issue(loy *s, dre_arena *a, const char *tenant, const loy_program *p,
    const loy_contact *c, const char *vid, int64_t expires, const char **code,
    loy_outcome *o)
{
	dre_buf   body = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "voucherId", vid);
	dre_jsonw_kstr(&w, "couponTypeId", p->voucher_type);
	dre_jsonw_kstr(&w, "customerId", c->id);
	dre_jsonw_kint(&w, "validTo", expires);
	dre_jsonw_obj_end(&w);
	int             st = 0;
	const dre_json *doc = NULL;
	dre_err         err = body.oom ? DRE_ENOMEM
	                               : loy_call(s, s->coupon, "coupon.IssueVoucher",
	                                   tenant, NULL, 0, &body, a, &st, &doc);
	dre_buf_free(&body);
	if (err != DRE_OK) {
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the coupon service did not issue the voucher (%s): no "
		    "points were debited",
		    dre_strerror(err));
		return false;
	}
	const char *msg = loy_jstr(dre_json_get(doc, "error"), "message");
	if (st == 409) {
		fail(o, 409, "VoucherNotIssued", "voucherRule.couponTypeId",
		    "%s: no points were debited", msg ? msg : "refused");
		return false;
	}
	*code = loy_jstr(doc, "code");
	if ((st != 200 && st != 201) || *code == NULL) {
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the coupon service did not issue the voucher (%d %s): no "
		    "points were debited",
		    st, msg ? msg : "");
		return false;
	}
	return true;
}

// exchange is loy_voucher_exchange under s->mu.
static void
exchange(loy *s, dre_arena *a, const char *tenant, const char *actor,
    const char *id, loy_outcome *o, dre_buf *out)
{
	loy_contact c;
	loy_program p;
	dre_err     err = loy_contact_get(s, NULL, a, tenant, id, &c);
	if (err == DRE_ENOTFOUND) {
		fail(o, 404, "ContactNotFound", "contactId", "no contact %s",
		    id);
		return;
	}
	if (err == DRE_OK)
		err = loy_program_get(s, a, tenant, &p);
	if (err != DRE_OK) {
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the loyalty service could not complete the request: %s",
		    dre_strerror(err));
		return;
	}
	if (p.voucher_type == NULL) {
		fail(o, 409, "VoucherRuleIncomplete",
		    "voucherRule.couponTypeId",
		    "the program's voucherRule names no couponTypeId: no "
		    "voucher can be issued");
		return;
	}
	if (c.balance < p.per_voucher) {
		fail(o, 409, "InsufficientPoints", "contactId",
		    "contact %s has %lld points; a voucher takes %lld", id,
		    (long long) c.balance, (long long) p.per_voucher);
		return;
	}
	// The voucher id: the contact's next voucher. A retry after a lost
	// answer or a crash asks for the same one.
	char    vid[DRE_UUID_LEN + 1], seed[600];
	int64_t seq = c.vouchers + 1, now = dre_now_ms();
	int64_t expires = now + p.validity_days * DAY_MS;
	snprintf(seed, sizeof seed, "reward-voucher|%s|%s|%lld", tenant, c.id,
	    (long long) seq);
	dre_uuid_derive(vid, seed, strlen(seed));
	const char *code = NULL;
	if (!issue(s, a, tenant, &p, &c, vid, expires, &code, o))
		return;

	voucher v = { .id = vid,
		.number = code,
		.contact = c.id,
		.currency = p.voucher_currency,
		.points = p.per_voucher,
		.amount = p.voucher_value,
		.created = now,
		.expires = expires };
	char    name[96];
	snprintf(name, sizeof name, "Reward voucher %lld.%02lld %s",
	    (long long) (p.voucher_value / 100),
	    (long long) (p.voucher_value % 100), p.voucher_currency);
	v.name = name;
	loy_contact before = c;
	c.balance -= p.per_voucher;
	c.vouchers = seq;
	c.modified = now;
	dre_batch *b = dre_batch_alloc_indexed();
	dre_buf    doc = { 0 };
	char       k[600];
	size_t     kl;
	if (b == NULL) {
		err = DRE_ENOMEM;
		goto out;
	}
	voucher_store(&doc, &v);
	if (doc.oom) {
		err = DRE_ENOMEM;
		goto out;
	}
	kl = dre_key(k, sizeof k, 'V', 3, tenant, c.id, vid);
	dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	kl = dre_key(k, sizeof k, 'N', 2, tenant, code);
	dre_buf_reset(&doc);
	dre_buf_printf(&doc, "%s\n%s", c.id, vid);
	dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	loy_vouchers_due(s, b, tenant, &c, &p);
	if ((err = loy_contact_put(s, b, tenant, &c, &c)) != DRE_OK
	    || (err = loy_event(s, b, tenant, &c, "VOUCHER_CREATED",
	            p.per_voucher, NULL, NULL, NULL, code, vid, now))
	        != DRE_OK)
		goto out;
	if (actor != NULL) { // an API call (not the automatic conversion)
		char details[128];
		snprintf(details, sizeof details,
		    "{\"rewardVoucherId\":\"%s\",\"points\":%lld}", vid,
		    (long long) -p.per_voucher);
		if ((err = voucher_audit(s, b, tenant, actor, NULL, NULL, &v))
		        != DRE_OK
		    || (err = loy_audit_contact(
		            s, b, tenant, actor, &before, &c, details))
		        != DRE_OK)
			goto out;
	}
	if ((err = dre_store_write(s->st, b, true)) != DRE_OK)
		goto out;
	dre_outbox_kick(s->ob);
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	voucher_render(&w, &v);
	o->status = 201;
out:
	if (err != DRE_OK)
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the loyalty service could not record the voucher (%s): "
		    "no points were debited",
		    dre_strerror(err));
	dre_buf_free(&doc);
	dre_batch_free(b);
}

void
loy_voucher_exchange(loy *s, dre_arena *a, const char *tenant,
    const char *actor, const char *contact, loy_outcome *o, dre_buf *out)
{
	memset(o, 0, sizeof *o);
	pthread_mutex_lock(&s->mu);
	exchange(s, a, tenant, actor, contact, o, out);
	pthread_mutex_unlock(&s->mu);
}

// ---- redeem ----------------------------------------------------------------

// withdraw asks the coupon service to withdraw the code of voucher v.
static bool
withdraw(
    loy *s, dre_arena *a, const char *tenant, const voucher *v, loy_outcome *o)
{
	dre_buf   body = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "voucherId", v->id);
	dre_jsonw_kstr(&w, "customerId", v->contact);
	dre_jsonw_obj_end(&w);
	int             st = 0;
	const dre_json *doc = NULL;
	dre_err         err = body.oom ? DRE_ENOMEM
	                               : loy_call(s, s->coupon, "coupon.RedeemVoucher",
	                                   tenant, NULL, 0, &body, a, &st, &doc);
	dre_buf_free(&body);
	if (err != DRE_OK) {
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the coupon service did not answer (%s): the voucher was "
		    "not redeemed",
		    dre_strerror(err));
		return false;
	}
	if (st == 200)
		return true;
	const dre_json *e = dre_json_get(doc, "error");
	const char     *code = loy_jstr(e, "code");
	const char     *msg = loy_jstr(e, "message");
	if (code == NULL)
		code = "";
	if (msg == NULL)
		msg = "refused";
	if (st == 409 && strcmp(code, "REDEEMED") == 0)
		fail(o, 409, "RewardVoucherAlreadyRedeemed", "id",
		    "reward voucher %s was redeemed already (its code was "
		    "used "
		    "at a till)",
		    v->id);
	else if (st == 409 && strcmp(code, "EXPIRED") == 0)
		fail(o, 409, "RewardVoucherExpired", "id",
		    "reward voucher %s has expired", v->id);
	else if (st == 409 && strcmp(code, "RESERVED_BY_OTHER") == 0)
		fail(o, 409, "RewardVoucherInUse", "id",
		    "reward voucher %s is held by a transaction at a till: "
		    "not redeemed",
		    v->id);
	else if (st == 404 || st == 409)
		fail(o, 409, "RewardVoucherNotRedeemable", "id",
		    "the coupon service refused to withdraw the code of "
		    "reward voucher %s (%s): not redeemed",
		    v->id, msg);
	else
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the coupon service did not withdraw the code (%d %s): "
		    "the voucher was not redeemed",
		    st, msg);
	return false;
}

// redeem is loy_voucher_redeem under s->mu.
static void
redeem(loy *s, dre_arena *a, const char *tenant, const char *actor,
    const char *contact, const char *vid, loy_outcome *o, dre_buf *out)
{
	loy_contact c;
	dre_err     err = loy_contact_get(s, NULL, a, tenant, contact, &c);
	if (err == DRE_ENOTFOUND) {
		fail(o, 404, "ContactNotFound", "contactId", "no contact %s",
		    contact);
		return;
	}
	char   k[600], *val = NULL;
	size_t kl = 0, vl = 0;
	if (err == DRE_OK) {
		kl = dre_key(k, sizeof k, 'V', 3, tenant, c.id, vid);
		err = kl == 0
		    ? DRE_ENOTFOUND
		    : dre_store_get(s->st, LOY_CF_REWARDS, k, kl, &val, &vl);
	}
	if (err == DRE_ENOTFOUND) {
		// Unknown, or another contact's: the same answer.
		fail(o, 404, "RewardVoucherNotFound", "id",
		    "contact %s holds no reward voucher %s", c.id, vid);
		return;
	}
	voucher v;
	if (err == DRE_OK) {
		err = voucher_parse(&v, a, val, vl);
		free(val);
	}
	if (err != DRE_OK) {
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the loyalty service could not complete the request: %s",
		    dre_strerror(err));
		return;
	}
	int64_t now = dre_now_ms();
	if (v.redeemed) {
		fail(o, 409, "RewardVoucherAlreadyRedeemed", "id",
		    "reward voucher %s was redeemed already", v.id);
		return;
	}
	if (v.expires != 0 && v.expires <= now) {
		fail(o, 409, "RewardVoucherExpired", "id",
		    "reward voucher %s has expired", v.id);
		return;
	}
	if (!withdraw(s, a, tenant, &v, o))
		return;
	voucher before = v;
	v.redeemed = true;
	v.redeemed_on = now;
	dre_batch *b = dre_batch_alloc_indexed();
	dre_buf    doc = { 0 };
	char       seed[300];
	if (b == NULL) {
		err = DRE_ENOMEM;
		goto done;
	}
	voucher_store(&doc, &v);
	if (doc.oom) {
		err = DRE_ENOMEM;
		goto done;
	}
	dre_batch_put(b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	snprintf(seed, sizeof seed, "redeem|%s", v.id);
	if ((err = loy_event(s, b, tenant, &c, "VOUCHER_REDEEMED", 0, NULL,
	         NULL, NULL, v.number, seed, now))
	        != DRE_OK
	    || (err
	           = voucher_audit(s, b, tenant, actor, "redeem", &before, &v))
	        != DRE_OK
	    || (err = dre_store_write(s->st, b, true)) != DRE_OK)
		goto done;
	dre_outbox_kick(s->ob);
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	voucher_render(&w, &v);
	o->status = 200;
done:
	if (err != DRE_OK)
		fail(o, 503, "UNAVAILABLE", NULL,
		    "the loyalty service could not record the redemption "
		    "(%s); its code is withdrawn: retry to complete it",
		    dre_strerror(err));
	dre_buf_free(&doc);
	dre_batch_free(b);
}

void
loy_voucher_redeem(loy *s, dre_arena *a, const char *tenant, const char *actor,
    const char *contact, const char *id, loy_outcome *o, dre_buf *out)
{
	memset(o, 0, sizeof *o);
	pthread_mutex_lock(&s->mu);
	redeem(s, a, tenant, actor, contact, id, o, out);
	pthread_mutex_unlock(&s->mu);
}

// ---- listing ------------------------------------------------------------

dre_err
loy_vouchers_render(loy *s, dre_arena *a, const char *tenant,
    const char *contact, char which, int64_t skip, int64_t top, dre_jsonw *w,
    int64_t *total)
{
	char            p[600];
	size_t          pl = dre_key(p, sizeof p, 'V', 3, tenant, contact, "");
	dre_store_iter *it = NULL;
	dre_err err = dre_store_iter_open(&it, s->st, LOY_CF_REWARDS, p, pl);
	if (err != DRE_OK)
		return err;
	const char *k, *val;
	size_t      kl, vl;
	int64_t     now = dre_now_ms();
	*total = 0;
	dre_jsonw_arr_begin(w);
	while (dre_store_iter_next(it, &k, &kl, &val, &vl)) {
		voucher v;
		if (voucher_parse(&v, a, val, vl) != DRE_OK)
			continue;
		bool avail = !v.redeemed && v.expires > now;
		if (((which == 'v' || which == 'p') && !avail)
		    || (which == 'r' && !v.redeemed))
			continue;
		if (*total >= skip && *total < skip + top) {
			if (which == 'p')
				voucher_render_rc(w, &v);
			else
				voucher_render(w, &v);
		}
		(*total)++;
	}
	dre_jsonw_arr_end(w);
	dre_store_iter_close(it);
	return DRE_OK;
}

// ---- at confirm -----------------------------------------------------------

// voucher_redeemed marks the voucher of code (if it is one) redeemed by t.
static dre_err
voucher_redeemed(
    loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t, const char *code)
{
	char   k[600], up[128], *val = NULL;
	size_t kl, vl = 0, n = strlen(code);
	if (n >= sizeof up)
		return DRE_OK;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char) (code[i] >= 'a' && code[i] <= 'z'
		        ? code[i] - 'a' + 'A'
		        : code[i]);
	kl = dre_key(k, sizeof k, 'N', 2, t->tenant, up);
	dre_err err = kl == 0
	    ? DRE_ENOTFOUND
	    : dre_batch_get(x->b, s->st, LOY_CF_REWARDS, k, kl, &val, &vl);
	if (err == DRE_ENOTFOUND)
		return DRE_OK; // not a reward voucher
	if (err != DRE_OK)
		return err;
	char *ref = dre_arena_strndup(x->a, val, vl);
	free(val);
	char *nl = ref ? strchr(ref, '\n') : NULL;
	if (nl == NULL)
		return DRE_OK;
	*nl = '\0';
	const char *contact = ref, *vid = nl + 1;
	kl = dre_key(k, sizeof k, 'V', 3, t->tenant, contact, vid);
	if ((err
	        = dre_batch_get(x->b, s->st, LOY_CF_REWARDS, k, kl, &val, &vl))
	    != DRE_OK)
		return err == DRE_ENOTFOUND ? DRE_OK : err;
	voucher v;
	err = voucher_parse(&v, x->a, val, vl);
	free(val);
	if (err != DRE_OK || v.redeemed)
		return DRE_OK;
	v.redeemed = true;
	v.redeemed_on = t->occurred_at;
	v.tx = t->transaction_id;
	loy_contact c;
	if ((err = loy_contact_get(s, x->b, x->a, t->tenant, contact, &c))
	    != DRE_OK)
		return err == DRE_ENOTFOUND ? DRE_OK : err;
	dre_buf doc = { 0 };
	voucher_store(&doc, &v);
	if (doc.oom)
		return DRE_ENOMEM;
	dre_batch_put(x->b, s->st, LOY_CF_REWARDS, k, kl, doc.data, doc.len);
	dre_buf_free(&doc);
	char seed[300];
	snprintf(seed, sizeof seed, "%s|%s", t->event_id, v.number);
	return loy_event(s, x->b, t->tenant, &c, "VOUCHER_REDEEMED", 0, NULL,
	    t->transaction_id, NULL, v.number, seed, x->now_ms);
}

dre_err
loy_rewards_confirmed(
    loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t, loy_contact *contact)
{
	dre_err err = DRE_OK;
	for (size_t i = 0; i < t->npromotions && err == DRE_OK; i++) {
		const dre_tx_promotion *p = &t->promotions[i];
		if (p->coupon_code != NULL && p->coupon_code[0] != '\0')
			err = voucher_redeemed(s, x, t, p->coupon_code);
		if (err == DRE_OK && contact != NULL
		    && p->promotion_id != NULL)
			err = loy_assignment_confirmed(
			    s, x, t, contact, p->promotion_id);
	}
	return err;
}

// ---- the converter ------------------------------------------------------

void
loy_vouchers_kick(loy *s)
{
	if (!s->converter_on)
		return;
	pthread_mutex_lock(&s->cmu);
	s->kicked = true;
	pthread_cond_signal(&s->ccv);
	pthread_mutex_unlock(&s->cmu);
}

// convert_one exchanges the points of contact into vouchers while it has
// enough; the mark goes once nothing more is due, stays while the coupon
// service does not answer.
static void
convert_one(loy *s, const char *tenant, const char *contact)
{
	dre_arena *a = dre_arena_alloc(16 * 1024);
	if (a == NULL)
		return;
	for (int i = 0; i < CONVERT_MAX_ROUND && !atomic_load(&s->stop); i++) {
		loy_outcome o;
		dre_buf     out = { 0 };
		loy_voucher_exchange(s, a, tenant, NULL, contact, &o, &out);
		dre_buf_free(&out);
		dre_arena_reset(a);
		if (o.status == 201)
			continue;
		if (o.status == 503) {
			dre_warn("automatic voucher for %s/%s: %s", tenant,
			    contact, o.msg);
			break;
		}
		// Nothing (more) due: the mark goes -- unless new points
		// came meanwhile (checked again under the lock); a refusal
		// of the coupon service (a wrong type) drops it too, the
		// next credit marks the contact again.
		pthread_mutex_lock(&s->mu);
		loy_contact c;
		loy_program p;
		bool        recheck = o.status == 409
		    && strcmp(o.code, "InsufficientPoints") == 0;
		if (recheck
		    && loy_contact_get(s, NULL, a, tenant, contact, &c)
		        == DRE_OK
		    && loy_program_get(s, a, tenant, &p) == DRE_OK) {
			dre_batch *b = dre_batch_alloc();
			if (b != NULL) {
				loy_vouchers_due(s, b, tenant, &c, &p);
				dre_store_write(s->st, b, false);
				dre_batch_free(b);
			}
		} else {
			char   k[512];
			size_t kl = due_key(k, sizeof k, tenant, contact);
			dre_store_delete(s->st, LOY_CF_REWARDS, k, kl, false);
		}
		pthread_mutex_unlock(&s->mu);
		break;
	}
	dre_arena_free(a);
}

static void *
converter_main(void *arg)
{
	loy *s = arg;
	dre_thread_name("loyalty:convert", NULL);
	while (!atomic_load(&s->stop)) {
		char            p[1] = { 'P' };
		dre_store_iter *it = NULL;
		if (dre_store_iter_open(&it, s->st, LOY_CF_REWARDS, p, 1)
		    == DRE_OK) {
			const char *k, *v;
			size_t      kl, vl;
			char        key[512];
			while (!atomic_load(&s->stop)
			    && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
				if (kl < 3 || kl >= sizeof key)
					continue;
				memcpy(key, k + 1, kl - 1);
				key[kl - 1] = '\0';
				const char *tenant = key;
				size_t      tl = strlen(tenant);
				if (tl + 1 >= kl - 1)
					continue;
				convert_one(s, tenant, key + tl + 1);
			}
			dre_store_iter_close(it);
		}
		pthread_mutex_lock(&s->cmu);
		if (!s->kicked && !atomic_load(&s->stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += CONVERT_EVERY_MS / 1000;
			pthread_cond_timedwait(&s->ccv, &s->cmu, &ts);
		}
		s->kicked = false;
		pthread_mutex_unlock(&s->cmu);
	}
	return NULL;
}

dre_err
loy_vouchers_start(loy *s)
{
	atomic_store(&s->stop, false);
	pthread_mutex_init(&s->cmu, NULL);
	pthread_cond_init(&s->ccv, NULL);
	if (pthread_create(&s->converter, NULL, converter_main, s) != 0) {
		pthread_cond_destroy(&s->ccv);
		pthread_mutex_destroy(&s->cmu);
		return DRE_ENOMEM;
	}
	s->converter_on = true;
	return DRE_OK;
}

void
loy_vouchers_stop(loy *s)
{
	if (!s->converter_on)
		return;
	atomic_store(&s->stop, true);
	loy_vouchers_kick(s);
	pthread_join(s->converter, NULL);
	s->converter_on = false;
	pthread_cond_destroy(&s->ccv);
	pthread_mutex_destroy(&s->cmu);
}

// ---- handlers -------------------------------------------------------------

static const dre_docapi_svc loy_voucher_api = { "the loyalty service", 1 };

// loy_h_voucher_exchange: POST /api/v3/reward-vouchers {contactId} -> 201
// the voucher.
void
loy_h_voucher_exchange(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	static const char *const known[] = { "contactId" };
	dre_docapi_req           d;
	if (!dre_docapi_begin(&d, &loy_voucher_api, call, rep))
		goto out;
	const dre_json *in = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(&d, in, known, 1))
		goto out;
	const char *id = loy_jstr(in, "contactId");
	if (id == NULL || id[0] == '\0' || strlen(id) > 200) {
		dre_docapi_invalid(&d, "contactId",
		    "contactId must be a string of 1 to 200 bytes");
		goto out;
	}
	loy_outcome o;
	loy_voucher_exchange(
	    svc, d.a, call->tenant, call->principal, id, &o, &rep->body);
	if (o.status != 201) {
		dre_buf_reset(&rep->body);
		dre_rpc_reply_error(
		    rep, o.status, o.code, o.target, "%s", o.msg);
		goto out;
	}
	rep->status = 201;
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}

// loy_h_voucher_redeem: POST /api/v3/reward-vouchers/{id}/redeem with
// contactId in the query or the body ({contactId?, redemptionChannel?})
// -> 200 the voucher, redeemed.
void
loy_h_voucher_redeem(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	static const char *const known[]
	    = { "contactId", "redemptionChannel" };
	dre_docapi_req d;
	if (!dre_docapi_begin(&d, &loy_voucher_api, call, rep))
		goto out;
	const char *id = dre_rpc_param(call, "id");
	const char *who = dre_rpc_param(call, "contactId");
	if (call->body_len > 0) {
		const dre_json *in
		    = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
		if (in == NULL || !dre_docapi_strict(&d, in, known, 2))
			goto out;
		const dre_json *b = dre_json_get(in, "contactId");
		if (b != NULL && !dre_json_is(b, DRE_JSON_STRING)) {
			dre_docapi_invalid(
			    &d, "contactId", "contactId must be a string");
			goto out;
		}
		if (b != NULL && who != NULL && strcmp(b->str, who) != 0) {
			dre_docapi_invalid(&d, "contactId",
			    "the query and the body name different contacts");
			goto out;
		}
		if (b != NULL)
			who = b->str;
	}
	if (who == NULL || who[0] == '\0' || strlen(who) > 200) {
		dre_docapi_invalid(&d, "contactId",
		    "contactId (query or body) is required: the contact "
		    "whose voucher is redeemed");
		goto out;
	}
	if (id == NULL || id[0] == '\0' || strlen(id) > 200) {
		dre_docapi_invalid(&d, "id", "the voucher id is required");
		goto out;
	}
	loy_outcome o;
	loy_voucher_redeem(
	    svc, d.a, call->tenant, call->principal, who, id, &o, &rep->body);
	if (o.status != 200) {
		dre_buf_reset(&rep->body);
		dre_rpc_reply_error(
		    rep, o.status, o.code, o.target, "%s", o.msg);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}

// loy_h_voucher_list: GET /api/v3/reward-vouchers[/available|/redeemed]
// ?contactId=&offset=&count= (methods .list, .available, .redeemed).
void
loy_h_voucher_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	loy           *s = svc;
	dre_docapi_req d;
	int64_t        skip = 0, top = 100, total = 0;
	if (!dre_docapi_begin(&d, &loy_voucher_api, call, rep))
		goto out;
	const char *id = dre_rpc_param(call, "contactId");
	// RewardVouchers.list, .available or .redeemed.
	const char *dot = strrchr(call->method, '.');
	const char *which = dot != NULL ? dot + 1 : "list";
	if (!dre_docapi_int_param(&d, "offset", 0, &skip)
	    || !dre_docapi_int_param(&d, "count", 100, &top))
		goto out;
	if (id == NULL || id[0] == '\0') {
		dre_docapi_invalid(&d, "contactId", "contactId is required");
		goto out;
	}
	if (top > 1000)
		top = 1000;
	loy_contact c;
	dre_err     err = loy_contact_get(s, NULL, d.a, call->tenant, id, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "ContactNotFound", "contactId",
		    "no contact %s", id);
		goto out;
	}
	dre_buf   items = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &items);
	if (err == DRE_OK)
		err = loy_vouchers_render(s, d.a, call->tenant, c.id,
		    strcmp(which, "available") == 0      ? 'v'
		        : strcmp(which, "redeemed") == 0 ? 'r'
		                                         : 'a',
		    skip, top, &w, &total);
	if (err != DRE_OK || items.oom) {
		dre_buf_free(&items);
		dre_docapi_internal(&d, err != DRE_OK ? err : DRE_ENOMEM);
		goto out;
	}
	int64_t shown = total - skip;
	shown = shown < 0 ? 0 : shown > top ? top : shown;
	dre_buf_printf(&rep->body,
	    "{\"count\":%lld,\"offset\":%lld,\"totalCount\":%lld,\"items\":",
	    (long long) shown, (long long) skip, (long long) total);
	dre_buf_append(&rep->body, items.data, items.len);
	dre_buf_putc(&rep->body, '}');
	dre_buf_free(&items);
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}
