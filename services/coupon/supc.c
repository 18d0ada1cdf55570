// coupon/supc.c -- single-use promotion codes (SUPC) of the POS-platform
// bridge (PRODUCT-DECISIONS §10, seed 004): an external system creates
// codes for a promotion, lists them with their status and marks codes it
// redeemed itself, each exactly once. A SUPC is a coupon code of the
// INDIVIDUAL coupon type the promotion names in its couponTypeIds, so a
// till uses it as a promo code of a cart like any other code, and the
// states, events and audit records are the coupon service's own.
//
// The errors carry the platform's error codes (the gateway answers them as
// {errorCode, errorMessage}): 404 PROMOTION_NOT_FOUND, CODE_NOT_FOUND; 409
// NO_SUPC_TYPE (create only), CODE_EXISTS, ALREADY_REDEEMED,
// CODE_NOT_REDEEMABLE; 400 MISSING_FIELD, INVALID_FIELD.
#include "supc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coupon.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "handlers.h"

#define SUPC_CREATE_MAX 1000
#define SUPC_REDEEM_MAX 100

static const dre_docapi_svc supc_api = { "the coupon service", 1 };

// supc_types finds the promotion's INDIVIDUAL coupon types (every one when
// listing, the first active one otherwise: *t); false when it has answered.
// Only creating (t given) needs one: it answers 409 NO_SUPC_TYPE, on which
// the gateway's bridge creates the type and names it in the promotion
// ("created on first use", PRODUCT-DECISIONS §10) and asks again; a list
// of a promotion without one is empty, and none of its codes is known.
static bool
supc_types(dre_docapi_req *d, cp *s, const char *promo, bool active,
    const char ***idsp, size_t *np, cp_type *t)
{
	const char **ids = NULL;
	size_t       n = 0, m = 0;
	dre_err      err
	    = cp_links_types(s, d->a, d->call->tenant, promo, &ids, &n);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(d->rep, 404, "PROMOTION_NOT_FOUND", NULL,
		    "promotion '%s' not found", promo);
		return false;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(d, err);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		cp_type ty;
		err = cp_type_load(s, d->a, d->call->tenant, ids[i], &ty);
		if (err == DRE_ENOTFOUND || (err == DRE_OK && ty.r.generic)
		    || (err == DRE_OK && active && !ty.r.active))
			continue;
		if (err != DRE_OK) {
			dre_docapi_internal(d, err);
			return false;
		}
		if (m == 0 && t != NULL)
			*t = ty;
		ids[m++] = ids[i];
	}
	if (m == 0 && t != NULL) {
		dre_rpc_reply_error(d->rep, 409, "NO_SUPC_TYPE", NULL,
		    "promotion '%s' names no %sINDIVIDUAL coupon type in its "
		    "couponTypeIds: single-use codes need one",
		    promo, active ? "active " : "");
		return false;
	}
	*idsp = ids;
	*np = m;
	return true;
}

static const char *
promo_param(dre_docapi_req *d)
{
	const char *id = dre_rpc_param(d->call, "id");
	if (id == NULL || id[0] == '\0') {
		dre_rpc_reply_error(d->rep, 400, "MISSING_FIELD",
		    "promotionId", "the promotion id is missing");
		return NULL;
	}
	return id;
}

// code_item writes one code of the list: its order when an external
// system redeemed it, its cart when a till's confirm did.
static void
code_item(cp *s, const char *tenant, dre_jsonw *w, const cp_code *c)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "code", c->code);
	dre_jsonw_kstr(w, "status", cp_state_name(c->state));
	if (c->state == CP_REDEEMED && c->redeemed_at != 0)
		dre_jsonw_kint(w, "redeemedAt", c->redeemed_at);
	char            p[512];
	size_t          pl = dre_key(p, sizeof p, 'r', 3, tenant, c->code, "");
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl;
	if (c->redemptions > 0 && pl > 0
	    && dre_store_iter_open(&it, s->st, CF_IDX, p, pl) == DRE_OK) {
		if (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
			bool ext = vl == strlen(CP_RES_EXTERNAL)
			    && memcmp(v, CP_RES_EXTERNAL, vl) == 0;
			dre_jsonw_key(w, ext ? "orderId" : "cartId");
			dre_jsonw_strn(w, k + pl, kl - pl);
		}
		dre_store_iter_close(it);
	}
	dre_jsonw_obj_end(w);
}

typedef struct {
	cp         *s;
	const char *tenant;
	dre_arena  *scratch;
	dre_jsonw  *w;
} lister;

static bool
list_one(void *arg, const char *doc, size_t len)
{
	lister *l = arg;
	cp_code c;
	dre_arena_reset(l->scratch);
	if (cp_code_parse(&c, l->scratch, doc, len) == DRE_OK)
		code_item(l->s, l->tenant, l->w, &c);
	return true;
}

// cp_h_supc_list: {promotionId, codes[{code, status, redeemedAt?,
// orderId? | cartId?}]}, the codes of every INDIVIDUAL type it names.
void
cp_h_supc_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cp            *s = svc;
	dre_docapi_req d;
	const char    *promo, **ids;
	size_t         n;
	dre_jsonw      w;
	if (!dre_docapi_begin(&d, &supc_api, call, rep)
	    || (promo = promo_param(&d)) == NULL
	    || !supc_types(&d, s, promo, false, &ids, &n, NULL))
		goto out;
	lister l = { s, call->tenant, dre_arena_alloc(0), &w };
	if (l.scratch == NULL) {
		dre_docapi_internal(&d, DRE_ENOMEM);
		goto out;
	}
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "promotionId", promo);
	dre_jsonw_key(&w, "codes");
	dre_jsonw_arr_begin(&w);
	dre_err err = DRE_OK;
	for (size_t i = 0; i < n && err == DRE_OK; i++) {
		cp_code_filter f = { ids[i], NULL, -1, 0, 0 };
		err = cp_codes_scan(s, call->tenant, &f, NULL, list_one, &l);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	dre_arena_free(l.scratch);
	if (err != DRE_OK || rep->body.oom) {
		dre_buf_reset(&rep->body);
		dre_docapi_internal(&d, err != DRE_OK ? err : DRE_ENOMEM);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&d);
}

// given_codes reads codes[] (strings) into v (normalised); false when it
// has answered.
static bool
given_codes(dre_docapi_req *d, const dre_json *list, cp_code *v,
    const cp_type *t, int64_t now)
{
	size_t i = 0;
	for (const dre_json *x = list->child; x != NULL; x = x->next, i++) {
		char code[CP_CODE_MAX + 1];
		if (!dre_json_is(x, DRE_JSON_STRING)
		    || !cp_code_normalize(code, x->str, x->len)) {
			dre_rpc_reply_error(d->rep, 400, "INVALID_FIELD", NULL,
			    "codes[%zu] must be 1 to 50 letters, digits, '-' "
			    "or '_'",
			    i);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(v[k].code, code) == 0) {
				dre_rpc_reply_error(d->rep, 400,
				    "INVALID_FIELD", NULL,
				    "codes[%zu]: code '%s' is given twice", i,
				    code);
				return false;
			}
		cp_code_new(
		    &v[i], t, code, "", CP_ACTIVE, CP_ORIGIN_IMPORT, now);
	}
	return true;
}

// cp_h_supc_create: {codes[] | count} -> 201 {promotionId, couponTypeId,
// codes[{code, status}]}: all of them or none (a code that exists: 409
// CODE_EXISTS).
void
cp_h_supc_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cp            *s = svc;
	dre_docapi_req d;
	const char    *promo, **ids;
	size_t         n = 0, nt, ins = 0;
	cp_type        t;
	cp_code       *v = NULL;
	bool          *dup = NULL;
	dre_batch     *b = NULL;
	int64_t        count = 0, now = dre_now_ms();
	if (!dre_docapi_begin(&d, &supc_api, call, rep))
		goto out;
	const dre_json *in = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || (promo = promo_param(&d)) == NULL)
		goto out;
	const dre_json *list = dre_json_get(in, "codes");
	const dre_json *cnt = dre_json_get(in, "count");
	bool            has_list = !dre_json_is_null(list);
	if (has_list == !dre_json_is_null(cnt)) {
		dre_rpc_reply_error(rep, 400, "MISSING_FIELD", NULL,
		    "give either codes (an array of codes) or count");
		goto out;
	}
	if (has_list
	    && (!dre_json_is(list, DRE_JSON_ARRAY) || list->len == 0
	        || list->len > SUPC_CREATE_MAX)) {
		dre_rpc_reply_error(rep, 400, "INVALID_FIELD", "codes",
		    "codes must be an array of 1 to %d codes",
		    SUPC_CREATE_MAX);
		goto out;
	}
	if (!has_list
	    && dre_json_int(&count, cnt, 1, SUPC_CREATE_MAX) != DRE_OK) {
		dre_rpc_reply_error(rep, 400, "INVALID_FIELD", "count",
		    "count must be a whole number from 1 to %d",
		    SUPC_CREATE_MAX);
		goto out;
	}
	if (!supc_types(&d, s, promo, true, &ids, &nt, &t))
		goto out;
	n = has_list ? list->len : (size_t) count;
	v = calloc(n, sizeof *v);
	dup = calloc(n, sizeof *dup);
	b = dre_batch_alloc();
	if (v == NULL || dup == NULL || b == NULL) {
		dre_docapi_internal(&d, DRE_ENOMEM);
		goto out;
	}
	if (has_list) {
		if (!given_codes(&d, list, v, &t, now))
			goto out;
		for (size_t i = 0; i < n; i++) {
			cp_code c;
			dre_err err = cp_code_load(
			    s, d.a, call->tenant, v[i].code, &c);
			if (err == DRE_OK) {
				dre_rpc_reply_error(rep, 409, "CODE_EXISTS",
				    NULL,
				    "codes[%zu]: code '%s' exists already", i,
				    v[i].code);
				goto out;
			}
			if (err != DRE_ENOTFOUND) {
				dre_docapi_internal(&d, err);
				goto out;
			}
		}
	} else
		for (size_t i = 0; i < n; i++)
			cp_code_new(&v[i], &t, NULL, "", CP_ACTIVE,
			    CP_ORIGIN_IMPORT, now);
	dre_err err = cp_codes_insert(s, call->tenant, v, n, &t, !has_list,
	    dup, b, NULL, NULL, call->principal, &ins);
	if (err == DRE_EEXISTS) {
		dre_rpc_reply_error(rep, 409, "CODE_EXISTS", NULL,
		    "the code space of coupon type '%s' is full", t.id);
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "promotionId", promo);
	dre_jsonw_kstr(&w, "couponTypeId", t.id);
	dre_jsonw_key(&w, "codes");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < n; i++) {
		if (dup[i]) // created by another caller in between
			continue;
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", v[i].code);
		dre_jsonw_kstr(&w, "status", cp_state_name(v[i].state));
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	rep->status = 201;
	dre_rpc_reply_json(rep);
out:
	free(v);
	free(dup);
	dre_batch_free(b);
	dre_docapi_end(&d);
}

// redeem_items reads codes[{code, redeemed: true, orderId?, redeemedAt?}]
// into v; false when it has answered.
static bool
redeem_items(dre_docapi_req *d, const dre_json *list, cp_ext_redeem *v)
{
	size_t i = 0;
	for (const dre_json *x = list->child; x != NULL; x = x->next, i++) {
		const dre_json *c = dre_json_get(x, "code");
		const dre_json *o = dre_json_get(x, "orderId");
		const dre_json *at = dre_json_get(x, "redeemedAt");
		char           *code = dre_arena_get(d->a, CP_CODE_MAX + 1);
		if (code == NULL) {
			dre_docapi_internal(d, DRE_ENOMEM);
			return false;
		}
		if (!dre_json_is(x, DRE_JSON_OBJECT)
		    || !dre_json_is(c, DRE_JSON_STRING)
		    || !cp_code_normalize(code, c->str, c->len)) {
			dre_rpc_reply_error(d->rep, 400, "INVALID_FIELD", NULL,
			    "codes[%zu].code must be a code", i);
			return false;
		}
		if (!dre_json_is(dre_json_get(x, "redeemed"), DRE_JSON_TRUE)) {
			dre_rpc_reply_error(d->rep, 400, "INVALID_FIELD", NULL,
			    "codes[%zu].redeemed must be true (a redemption "
			    "cannot be undone)",
			    i);
			return false;
		}
		if (!dre_json_is_null(o)
		    && (!dre_json_is(o, DRE_JSON_STRING) || o->len == 0
		        || o->len > 4 * CP_ID_MAX
		        || memchr(o->str, 0, o->len) != NULL)) {
			dre_rpc_reply_error(d->rep, 400, "INVALID_FIELD", NULL,
			    "codes[%zu].orderId must be a non-empty string",
			    i);
			return false;
		}
		v[i].at = 0;
		if (!dre_json_is_null(at)
		    && dre_json_int(&v[i].at, at, 1, INT64_MAX) != DRE_OK) {
			dre_rpc_reply_error(d->rep, 400, "INVALID_FIELD", NULL,
			    "codes[%zu].redeemedAt must be epoch milliseconds",
			    i);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(v[k].code, code) == 0) {
				dre_rpc_reply_error(d->rep, 400,
				    "INVALID_FIELD", NULL,
				    "codes[%zu]: code '%s' is given twice", i,
				    code);
				return false;
			}
		v[i].code = code;
		v[i].order = dre_json_is_null(o) ? NULL : o->str;
	}
	return true;
}

// cp_h_supc_redeem: {codes[{code, redeemed: true, orderId, redeemedAt}]}
// -> 200 {promotionId, codes[{code, status, redeemedAt, orderId}]}, all or
// none; a code redeemed before: 409 ALREADY_REDEEMED, nothing changed.
void
cp_h_supc_redeem(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cp            *s = svc;
	dre_docapi_req d;
	const char    *promo, **ids;
	size_t         nt;
	cp_ext_redeem *v = NULL;
	if (!dre_docapi_begin(&d, &supc_api, call, rep))
		goto out;
	const dre_json *in = dre_docapi_body(&d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || (promo = promo_param(&d)) == NULL)
		goto out;
	const dre_json *list = dre_json_get(in, "codes");
	if (!dre_json_is(list, DRE_JSON_ARRAY) || list->len == 0
	    || list->len > SUPC_REDEEM_MAX) {
		dre_rpc_reply_error(rep, 400,
		    dre_json_is_null(list) ? "MISSING_FIELD" : "INVALID_FIELD",
		    "codes", "codes must be an array of 1 to %d codes",
		    SUPC_REDEEM_MAX);
		goto out;
	}
	if ((v = calloc(list->len, sizeof *v)) == NULL) {
		dre_docapi_internal(&d, DRE_ENOMEM);
		goto out;
	}
	if (!redeem_items(&d, list, v)
	    || !supc_types(&d, s, promo, false, &ids, &nt, NULL))
		goto out;
	if (nt == 0) {
		dre_rpc_reply_error(rep, 404, "CODE_NOT_FOUND", NULL,
		    "code '%s' not found among the promotion's single-use "
		    "codes (it has none)",
		    v[0].code);
		goto out;
	}
	cp_outcome o;
	cp_redeem_external(s, d.a, call->tenant, v, list->len, ids, nt, &o);
	if (o.status != 200) {
		const char *code = o.status == 404 ? "CODE_NOT_FOUND"
		    : o.status != 409              ? "UNAVAILABLE"
		    : o.reason == CP_R_REDEEMED    ? "ALREADY_REDEEMED"
		                                   : "CODE_NOT_REDEEMABLE";
		dre_rpc_reply_error(rep, o.status, code, NULL, "%s%s", o.msg,
		    o.status == 404 ? " among the promotion's single-use codes"
		                    : "");
		goto out;
	}
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "promotionId", promo);
	dre_jsonw_key(&w, "codes");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < list->len; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", v[i].c.code);
		dre_jsonw_kstr(&w, "status", cp_state_name(v[i].c.state));
		dre_jsonw_kint(&w, "redeemedAt", v[i].c.redeemed_at);
		dre_jsonw_kstr(&w, "orderId", v[i].order);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	dre_rpc_reply_json(rep);
out:
	free(v);
	dre_docapi_end(&d);
}
