// bridge.c -- the POS-platform bridge (PRODUCT-DECISIONS §10, seed 004):
// the platform's SPIs and webhooks translated to DRE's own calls, so that
// the same engine, counters and confirm rules serve its tills.
//
// Its conventions live here and nowhere else: routes flagged
// GW_AUTH_PLATFORM take ?api_key= (ident.c), answer every error as
// {errorCode, errorMessage} and a failed authentication as an empty 401
// (gw_bridge_error, called by gw_job_error), money as JSON decimals, times
// as epoch milliseconds; unknown request members are ignored and named in
// DRE-Ignored-Fields.
#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <strings.h>

#include "dre/changes.h"
#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/money.h"
#include "dre/uuid.h"
#include "gw.h"

#define MAX_IGNORED 20

// ---------------------------------------------------------------- conventions

void
gw_bridge_error(gw_job *j, int status, const char *code, const char *msg)
{
	dre_jsonw w;

	dre_buf_reset(&j->out);
	if (status == 401) { // the platform's contract: no body at all
		gw_job_respond(j, 401, "", 0, "text/plain");
		return;
	}
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "errorCode", code);
	dre_jsonw_kstr(&w, "errorMessage", msg);
	dre_jsonw_obj_end(&w);
	gw_job_respond(j, status, j->out.data, j->out.len, GW_JSON_CT);
}

// The names each object of a platform request may have; others are
// ignored and named (at most MAX_IGNORED, then "…").
typedef struct {
	dre_buf b;
	int     n;
} ignored;

static void
ignore_unknown(ignored *ig, const dre_json *obj, const char *path,
    const char *const *known)
{
	if (!dre_json_is(obj, DRE_JSON_OBJECT))
		return;
	for (const dre_json *m = obj->child; m != NULL; m = m->next) {
		bool ok = false;
		for (size_t k = 0; known[k] != NULL && !ok; k++)
			ok = strcmp(known[k], m->key) == 0;
		if (ok)
			continue;
		if (ig->n < MAX_IGNORED)
			dre_buf_printf(&ig->b, "%s%s%s%s", ig->n ? ", " : "",
			    path, path[0] ? "." : "", m->key);
		else if (ig->n == MAX_IGNORED)
			dre_buf_printf(&ig->b, ", \u2026");
		ig->n++;
	}
}

// ignored_done adds the header (its value copied into the arena).
static void
ignored_done(gw_job *j, ignored *ig)
{
	if (ig->n > 0 && !ig->b.oom) {
		char *v = dre_arena_get(j->arena, ig->b.len + 1);
		if (v != NULL) {
			memcpy(v, ig->b.data, ig->b.len);
			v[ig->b.len] = '\0';
			gw_job_header_add(j, "DRE-Ignored-Fields", v);
		}
	}
	dre_buf_free(&ig->b);
}

// str_member reads a required (or optional) non-empty string member; false
// when it has answered 400.
static bool
str_member(gw_job *j, const dre_json *obj, const char *path, const char *key,
    bool required, const char **out)
{
	const dre_json *v = dre_json_get(obj, key);

	*out = NULL;
	if (dre_json_is_null(v)) {
		if (!required)
			return true;
		gw_job_error(j, 400, "MISSING_FIELD", NULL,
		    "%s%s%s is required", path, path[0] ? "." : "", key);
		return false;
	}
	if (v->type != DRE_JSON_STRING || v->len == 0) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "%s%s%s must be a non-empty string", path,
		    path[0] ? "." : "", key);
		return false;
	}
	*out = v->str;
	return true;
}

static bool
body_object(gw_job *j, dre_json **root)
{
	if (!gw_parse_json_body(j, root))
		return false;
	if ((*root)->type != DRE_JSON_OBJECT) {
		gw_job_error(j, 400, "INVALID_REQUEST", NULL,
		    "the body must be a JSON object");
		return false;
	}
	return true;
}

static void
money(dre_jsonw *w, const char *key, int64_t minor)
{
	dre_jsonw_key(w, key);
	dre_jsonw_decimal(w, minor, DRE_MONEY_SCALE);
}

// ---------------------------------------------------------------- cart

static const char *const k_cart[] = { "cartId", "storeId", "currency",
	"customer", "promoCodes", "lineItems", NULL };
static const char *const k_customer[] = { "customerId", "loyaltyId", NULL };
static const char *const k_line[] = { "lineId", "sku", "upc", "productId",
	"category", "brand", "quantity", "unitPrice", NULL };

// cart_line writes line i as an evaluate item; false when it has answered.
static bool
cart_line(gw_job *j, dre_jsonw *w, const dre_json *el, size_t i)
{
	char            path[32];
	const char     *sku, *id, *upc, *cat, *brand;
	const dre_json *q, *p;
	int64_t         v;

	snprintf(path, sizeof path, "lineItems[%zu]", i);
	if (el->type != DRE_JSON_OBJECT) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "%s must be an object", path);
		return false;
	}
	if (!str_member(j, el, path, "sku", true, &sku)
	    || !str_member(j, el, path, "lineId", false, &id)
	    || !str_member(j, el, path, "upc", false, &upc)
	    || !str_member(j, el, path, "category", false, &cat)
	    || !str_member(j, el, path, "brand", false, &brand))
		return false;
	// The article group id DRE matches group promotions on (else the
	// article's own group from master data).
	if (cat != NULL && strlen(cat) > 20) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "%s.category must be an article group id of at most 20 "
		    "characters",
		    path);
		return false;
	}
	q = dre_json_get(el, "quantity");
	if (dre_json_decimal(&v, q, DRE_QTY_SCALE, 15) != DRE_OK || v <= 0) {
		gw_job_error(j, 400, "INVALID_QUANTITY", NULL,
		    "%s.quantity must be a number greater than 0", path);
		return false;
	}
	p = dre_json_get(el, "unitPrice");
	if (dre_json_decimal(&v, p, DRE_MONEY_SCALE, 15) != DRE_OK || v < 0) {
		gw_job_error(j, 400, "INVALID_PRICE", NULL,
		    "%s.unitPrice must be a number not below 0", path);
		return false;
	}
	dre_jsonw_obj_begin(w);
	if (id != NULL)
		dre_jsonw_kstr(w, "lineReference", id);
	dre_jsonw_kstr(w, "articleNumber", sku);
	if (upc != NULL)
		dre_jsonw_kstr(w, "ean", upc);
	if (cat != NULL)
		dre_jsonw_kstr(w, "articleGroupId", cat);
	if (brand != NULL)
		dre_jsonw_kstr(w, "manufacturerId", brand);
	dre_jsonw_key(w, "quantity");
	dre_jsonw_json(w, q);
	dre_jsonw_key(w, "unitPrice");
	dre_jsonw_json(w, p);
	dre_jsonw_obj_end(w);
	return true;
}

// cart_evaluate writes the evaluate request of a cart (PRODUCT-DECISIONS
// §10: cartId -> transactionId, storeId -> posGroupCode, sku/upc/category/
// brand -> articleNumber/ean/articleGroupId/manufacturerId, loyaltyId (else
// customerId) -> customer, promoCodes -> coupons); false when answered.
static bool
cart_evaluate(gw_job *j, const dre_json *c, dre_buf *out, ignored *ig)
{
	const char     *cart, *store, *cur, *cid, *lid;
	const dre_json *cust = dre_json_get(c, "customer");
	const dre_json *codes = dre_json_get(c, "promoCodes");
	const dre_json *lines = dre_json_get(c, "lineItems");
	dre_jsonw       w;

	if (!str_member(j, c, "", "cartId", true, &cart)
	    || !str_member(j, c, "", "storeId", true, &store)
	    || !str_member(j, c, "", "currency", false, &cur))
		return false;
	if (!dre_json_is(lines, DRE_JSON_ARRAY) || lines->len == 0) {
		gw_job_error(j, 400, "EMPTY_CART", NULL,
		    "lineItems must hold at least one line");
		return false;
	}
	if (!dre_json_is_null(cust) && cust->type != DRE_JSON_OBJECT) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "customer must be an object");
		return false;
	}
	cid = lid = NULL;
	if (!dre_json_is_null(cust)
	    && (!str_member(j, cust, "customer", "customerId", false, &cid)
	        || !str_member(j, cust, "customer", "loyaltyId", false, &lid)))
		return false;
	if (!dre_json_is_null(codes) && codes->type != DRE_JSON_ARRAY) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "promoCodes must be an array of strings");
		return false;
	}
	ignore_unknown(ig, c, "", k_cart);
	ignore_unknown(ig, cust, "customer", k_customer);
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "request");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "header");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", cart);
	dre_jsonw_obj_end(&w);
	dre_jsonw_kstr(&w, "posGroupCode", store);
	if (cur != NULL)
		dre_jsonw_kstr(&w, "currency", cur);
	if (lid != NULL || cid != NULL) {
		dre_jsonw_key(&w, "customer");
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "customerId", lid != NULL ? lid : cid);
		dre_jsonw_obj_end(&w);
	}
	if (!dre_json_is_null(codes)) {
		dre_jsonw_key(&w, "coupons");
		dre_jsonw_arr_begin(&w);
		size_t i = 0;
		for (const dre_json *e = codes->child; e != NULL;
		     e = e->next, i++) {
			if (e->type != DRE_JSON_STRING || e->len == 0) {
				gw_job_error(j, 400, "INVALID_FIELD", NULL,
				    "promoCodes[%zu] must be a non-empty "
				    "string",
				    i);
				return false;
			}
			dre_jsonw_obj_begin(&w);
			dre_jsonw_kstr(&w, "code", e->str);
			dre_jsonw_obj_end(&w);
		}
		dre_jsonw_arr_end(&w);
	}
	dre_jsonw_key(&w, "items");
	dre_jsonw_arr_begin(&w);
	size_t i = 0;
	for (const dre_json *e = lines->child; e != NULL; e = e->next, i++) {
		char path[32];
		if (!cart_line(j, &w, e, i))
			return false;
		snprintf(path, sizeof path, "lineItems[%zu]", i);
		ignore_unknown(ig, e, path, k_line);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	dre_jsonw_obj_end(&w);
	return true;
}

static void
message(dre_jsonw *w, const char *code, const char *text)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "code", code);
	dre_jsonw_kstr(w, "text", text);
	dre_jsonw_obj_end(w);
}

// The codes a priced cart reserves, one coupon.Reserve after another.
typedef struct {
	const char *cart;
	char      **codes;
	size_t      n, next;
} hold;

// backend_call sends a JSON body to method of backend (its first client)
// and renders the reply with render.
static void
backend_call(gw_job *j, gw_backend_id backend, const char *method,
    const char *body, gw_render render)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];

	snprintf(j->rpc_method, sizeof j->rpc_method, "%s", method);
	gw_job_envelope(j, &req, j->rpc_method, roles);
	req.has_body = 1;
	req.body.data = (uint8_t *) body;
	req.body.len = strlen(body);
	gw_job_call(j, j->g->backends[backend].clients[0], &req, render);
}

// backend_send is backend_call with the JSON body in b (freed).
static void
backend_send(gw_job *j, gw_backend_id backend, const char *method, dre_buf *b,
    gw_render render)
{
	char *body = b->oom ? NULL : dre_arena_strdup(j->arena, b->data);

	dre_buf_free(b);
	if (body == NULL) {
		gw_job_oom(j);
		return;
	}
	backend_call(j, backend, method, body, render);
}

// hold_next reserves the cart's next code, then answers the cart (in
// j->out). A code the coupon service does not hold (a race with another
// cart) is refused by ORDER's confirm rules, never here.
static void
hold_next(gw_job *j)
{
	hold     *h = (hold *) j->ctx;
	dre_buf   b = { 0 };
	dre_jsonw w;

	if (j->rep != NULL) {
		dre_rpc_reply_msg_free(j->rep);
		j->rep = NULL;
	}
	if (h->next >= h->n) {
		gw_job_respond(j, 200, j->out.data, j->out.len, GW_JSON_CT);
		return;
	}
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "code", h->codes[h->next++]);
	dre_jsonw_kstr(&w, "transactionId", h->cart);
	dre_jsonw_obj_end(&w);
	backend_send(j, GW_COUPON, "coupon.Reserve", &b, hold_next);
}

static void
render_cart(gw_job *j)
{
	Dre__EvaluateResponse *r
	    = gw_unpack_reply(j, &dre__evaluate_response__descriptor);
	dre_jsonw w;
	char      text[320];

	if (r == NULL)
		return;
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "valid", true);
	dre_jsonw_kstr(&w, "cartId", r->header->transaction_id);
	dre_jsonw_kint(&w, "transactionCounter",
	    r->header->has_transaction_counter ? r->header->transaction_counter
	                                       : 0);
	dre_jsonw_kstr(&w, "currency", r->currency);
	dre_jsonw_key(&w, "lineItems");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_line_items; i++) {
		const Dre__LineItem *li = r->line_items[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "lineId", li->line_reference);
		dre_jsonw_kstr(&w, "sku", li->article_number);
		dre_jsonw_key(&w, "quantity");
		dre_jsonw_decimal_trim(&w, li->quantity, DRE_QTY_SCALE);
		money(&w, "unitPrice", li->unit_price);
		money(&w, "lineTotal", li->line_total);
		money(&w, "discount", li->line_discount);
		money(&w, "netTotal", li->line_net);
		dre_jsonw_key(&w, "promotions");
		dre_jsonw_arr_begin(&w);
		for (size_t k = 0; k < li->n_discounts; k++) {
			const Dre__LineDiscount *d = li->discounts[k];
			dre_jsonw_obj_begin(&w);
			dre_jsonw_kstr(&w, "promotionId", d->promotion_id);
			dre_jsonw_kstr(&w, "name", d->promotion_name);
			money(&w, "amount", d->discount_amount);
			if (d->coupon_code != NULL)
				dre_jsonw_kstr(&w, "code", d->coupon_code);
			dre_jsonw_obj_end(&w);
		}
		dre_jsonw_arr_end(&w);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "grantedItems");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_granted_items; i++) {
		const Dre__GrantedItem *g = r->granted_items[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "sku", g->article_number);
		dre_jsonw_kint(&w, "quantity", g->quantity);
		dre_jsonw_kstr(&w, "promotionId", g->promotion_id);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "totals");
	dre_jsonw_obj_begin(&w);
	money(&w, "subtotal", r->totals->subtotal);
	money(&w, "discount", r->totals->discount);
	money(&w, "total", r->totals->grand_total);
	dre_jsonw_obj_end(&w);
	dre_jsonw_kint(
	    &w, "loyaltyPointsEarned", r->totals->loyalty_points_earned);
	dre_jsonw_key(&w, "messages");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_invalid_coupons; i++) {
		snprintf(text, sizeof text, "promo code %s: %s",
		    r->invalid_coupons[i]->code,
		    r->invalid_coupons[i]->reason);
		message(&w, "INVALID_PROMO_CODE", text);
	}
	for (size_t i = 0; i < r->n_warnings; i++) {
		const Dre__Warning *x = r->warnings[i];
		// An unknown store never blocks the sale (§4c): the cart is
		// priced with the promotions of every store.
		message(&w,
		    strcmp(x->code, "UNKNOWN_POS_GROUP") == 0 ? "UNKNOWN_STORE"
		                                              : x->code,
		    x->message);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	if (j->out.oom) {
		gw_job_oom(j);
		return;
	}
	// The cart holds its codes until ORDER redeems them or VOID_CART
	// releases them (another cart cannot use a single-use code meanwhile).
	hold  *h = dre_arena_get(j->arena, sizeof(*h));
	char **codes = dre_arena_get(
	    j->arena, (r->n_applied_coupons + 1) * sizeof(char *));
	char *cart = dre_arena_strdup(j->arena, r->header->transaction_id);
	if (h == NULL || codes == NULL || cart == NULL) {
		gw_job_oom(j);
		return;
	}
	for (size_t i = 0; i < r->n_applied_coupons; i++)
		if ((codes[i] = dre_arena_strdup(
		         j->arena, r->applied_coupons[i]->code))
		    == NULL) {
			gw_job_oom(j);
			return;
		}
	*h = (hold) { cart, codes, r->n_applied_coupons, 0 };
	j->ctx = h;
	hold_next(j);
}

void
gw_bridge_cart(gw_job *j)
{
	dre_json             *root, *ev;
	dre_buf               req = { 0 };
	ignored               ig = { { 0 }, 0 };
	Dre__EvaluateRequest *q;
	dre_wire_error        werr;
	dre_json_error        jerr = { 0, NULL };

	if (!body_object(j, &root))
		return;
	if (!cart_evaluate(j, root, &req, &ig)) {
		dre_buf_free(&req);
		dre_buf_free(&ig.b);
		return;
	}
	ignored_done(j, &ig);
	dre_err err = req.oom ? DRE_ENOMEM
	                      : dre_json_parse(&ev, j->arena, req.data,
	                          req.len, DRE_JSON_MAX_DEPTH, &jerr);
	if (err == DRE_OK)
		err = dre_evalreq_parse(&q, j->arena, ev, false, &werr);
	dre_buf_free(&req);
	if (err == DRE_EINVAL) {
		gw_job_error(
		    j, werr.status, werr.code, NULL, "%s", werr.message);
		return;
	}
	if (err != DRE_OK) {
		gw_job_oom(j);
		return;
	}
	gw_call_packed(j, &q->base, q->header->transaction_id, render_cart);
}

// ---------------------------------------------------------------- ORDER

static const char *const k_order[] = { "orderId", "cartId", "customerId",
	"createdAt", "lineItems", "promotions", NULL };
static const char *const k_order_promo[]
    = { "promotionId", "amount", "code", NULL };

static void
render_order(gw_job *j)
{
	const char *order = j->ctx;

	if (j->rpc_err == DRE_OK && j->rep->status == 404) {
		gw_job_error(j, 404, "CART_NOT_FOUND", NULL, "%s",
		    j->rep->error_message ? j->rep->error_message : "");
		return;
	}
	if (j->rpc_err == DRE_OK && j->rep->status == 409) {
		gw_job_error(j, 409, "PROMOTION_NOT_GRANTED", NULL, "%s",
		    j->rep->error_message ? j->rep->error_message : "");
		return;
	}
	Dre__ConfirmResponse *r
	    = gw_unpack_reply(j, &dre__confirm_response__descriptor);
	dre_jsonw w;
	if (r == NULL)
		return;
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "orderId", order);
	dre_jsonw_kstr(&w, "cartId", r->transaction_id);
	dre_jsonw_kbool(&w, "confirmed", r->confirmed);
	dre_jsonw_kstr(&w, "message", r->message);
	dre_jsonw_obj_end(&w);
	gw_respond_out(j);
}

// order_promotions fills q's applied promotions from ORDER promotions[];
// false when it has answered.
static bool
order_promotions(
    gw_job *j, Dre__ConfirmRequest *q, const dre_json *arr, ignored *ig)
{
	size_t i = 0;

	if (dre_json_is_null(arr))
		return true;
	if (arr->type != DRE_JSON_ARRAY) {
		gw_job_error(j, 400, "INVALID_FIELD", NULL,
		    "promotions must be an array");
		return false;
	}
	q->applied_promotions = dre_arena_get(
	    j->arena, (arr->len + 1) * sizeof(*q->applied_promotions));
	if (q->applied_promotions == NULL) {
		gw_job_oom(j);
		return false;
	}
	for (const dre_json *e = arr->child; e != NULL; e = e->next, i++) {
		char                   path[32];
		const char            *id, *code;
		Dre__ConfirmPromotion *p;
		int64_t                amount = 0;
		snprintf(path, sizeof path, "promotions[%zu]", i);
		if (e->type != DRE_JSON_OBJECT) {
			gw_job_error(j, 400, "INVALID_FIELD", NULL,
			    "%s must be an object", path);
			return false;
		}
		if (!str_member(j, e, path, "promotionId", true, &id)
		    || !str_member(j, e, path, "code", false, &code))
			return false;
		if (dre_json_decimal(&amount, dre_json_get(e, "amount"),
		        DRE_MONEY_SCALE, 15)
		        != DRE_OK
		    || amount < 0) {
			gw_job_error(j, 400, "INVALID_FIELD", NULL,
			    "%s.amount must be a number not below 0", path);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(q->applied_promotions[k]->promotion_id, id)
			    == 0) {
				gw_job_error(j, 400, "INVALID_FIELD", NULL,
				    "%s: promotion %s is named twice", path,
				    id);
				return false;
			}
		if ((p = dre_arena_get(j->arena, sizeof(*p))) == NULL) {
			gw_job_oom(j);
			return false;
		}
		dre__confirm_promotion__init(p);
		p->promotion_id = (char *) id;
		p->coupon_code = (char *) code;
		p->has_total_discount = 1;
		p->total_discount = amount;
		q->applied_promotions[i] = p;
		ignore_unknown(ig, e, path, k_order_promo);
	}
	q->n_applied_promotions = i;
	return true;
}

void
gw_bridge_order(gw_job *j)
{
	dre_json            *root;
	const char          *order, *cart, *cust;
	ignored              ig = { { 0 }, 0 };
	Dre__ConfirmRequest *q;
	Dre__RequestHeader  *h;
	const dre_json      *at;

	if (!body_object(j, &root)
	    || !str_member(j, root, "", "orderId", true, &order)
	    || !str_member(j, root, "", "cartId", true, &cart)
	    || !str_member(j, root, "", "customerId", false, &cust))
		return;
	q = dre_arena_get(j->arena, sizeof(*q));
	h = dre_arena_get(j->arena, sizeof(*h));
	if (q == NULL || h == NULL) {
		gw_job_oom(j);
		return;
	}
	dre__confirm_request__init(q);
	dre__request_header__init(h);
	// No counter: the cart's last priced iteration (evaluator confirm).
	h->transaction_id = (char *) cart;
	h->receipt_id = (char *) order;
	q->header = h;
	q->customer_id = (char *) cust;
	at = dre_json_get(root, "createdAt");
	if (!dre_json_is_null(at)) {
		int64_t ms;
		if (dre_json_int(&ms, at, 0, INT64_MAX) != DRE_OK) {
			gw_job_error(j, 400, "INVALID_FIELD", NULL,
			    "createdAt must be epoch milliseconds");
			return;
		}
		q->has_timestamp_ms = 1;
		q->timestamp_ms = ms;
	}
	if (!order_promotions(j, q, dre_json_get(root, "promotions"), &ig)) {
		dre_buf_free(&ig.b);
		return;
	}
	ignore_unknown(&ig, root, "", k_order);
	ignored_done(j, &ig);
	j->ctx = order;
	gw_call_packed(j, &q->base, cart, render_order);
}

// ---------------------------------------------------------------- VOID_CART

static const char *const k_void[] = { "cartId", NULL };

static void
render_void(gw_job *j)
{
	dre_jsonw w;

	if (gw_job_reply_error(j))
		return;
	dre_buf_reset(&j->out);
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "cartId", j->ctx);
	dre_jsonw_kbool(&w, "voided", true);
	dre_jsonw_obj_end(&w);
	gw_respond_out(j);
}

void
gw_bridge_void(gw_job *j)
{
	dre_json   *root;
	const char *cart;
	ignored     ig = { { 0 }, 0 };
	dre_buf     b = { 0 };
	dre_jsonw   w;

	if (!body_object(j, &root)
	    || !str_member(j, root, "", "cartId", true, &cart))
		return;
	ignore_unknown(&ig, root, "", k_void);
	ignored_done(j, &ig);
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", cart);
	dre_jsonw_obj_end(&w);
	j->ctx = cart;
	backend_send(
	    j, GW_COUPON, "coupon.ReleaseTransaction", &b, render_void);
}

// ---------------------------------------------------------------- codes

static const char *const k_code[] = { "code", "cartId", "customerId", NULL };

// render_code answers coupon.Validate in the platform's shape: expiresAt in
// epoch milliseconds (null when the code does not end).
static void
render_code(gw_job *j)
{
	dre_json      *v = NULL;
	dre_json_error jerr = { 0, NULL };
	dre_jsonw      w;
	int64_t        until = 0;

	if (gw_job_reply_error(j))
		return;
	if (dre_json_parse(&v, j->arena, (const char *) j->rep->body.data,
	        j->rep->body.len, DRE_JSON_MAX_DEPTH, &jerr)
	        != DRE_OK
	    || v->type != DRE_JSON_OBJECT) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "undecodable coupon service answer");
		return;
	}
	const dre_json *vu = dre_json_get(v, "validUntil");
	if (dre_json_is(vu, DRE_JSON_STRING))
		dre_time_parse(&until, vu->str, vu->len);
	const dre_json *valid = dre_json_get(v, "valid");
	dre_buf_reset(&j->out);
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "valid", dre_json_is(valid, DRE_JSON_TRUE));
	dre_jsonw_key(&w, "code");
	dre_jsonw_json(&w, dre_json_get(v, "code"));
	dre_jsonw_key(&w, "promotionId");
	dre_jsonw_json(&w, dre_json_get(v, "promotionId"));
	dre_jsonw_key(&w, "message");
	dre_jsonw_json(&w, dre_json_get(v, "message"));
	dre_jsonw_key(&w, "expiresAt");
	if (until != 0)
		dre_jsonw_int(&w, until);
	else
		dre_jsonw_null(&w);
	dre_jsonw_obj_end(&w);
	gw_respond_out(j);
}

void
gw_bridge_code(gw_job *j)
{
	dre_json   *root;
	const char *code, *cart, *cust;
	ignored     ig = { { 0 }, 0 };
	dre_buf     b = { 0 };
	dre_jsonw   w;

	if (!body_object(j, &root)
	    || !str_member(j, root, "", "code", true, &code)
	    || !str_member(j, root, "", "cartId", false, &cart)
	    || !str_member(j, root, "", "customerId", false, &cust))
		return;
	ignore_unknown(&ig, root, "", k_code);
	ignored_done(j, &ig);
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "code", code);
	if (cart != NULL)
		dre_jsonw_kstr(&w, "transactionId", cart);
	if (cust != NULL)
		dre_jsonw_kstr(&w, "customerId", cust);
	dre_jsonw_obj_end(&w);
	backend_send(j, GW_COUPON, "coupon.Validate", &b, render_code);
}

// ---------------------------------------------------------------- RETURN

static const char *const k_return[]
    = { "orderId", "returnId", "customerId", "lineItems", NULL };
static const char *const k_return_line[]
    = { "sku", "quantity", "refundAmount", NULL };

// render_passed answers the callee's document as it is (it is in the
// platform's shape already).
static void
render_passed(gw_job *j)
{
	if (gw_job_reply_error(j))
		return;
	gw_job_respond(j, 200, (const char *) j->rep->body.data,
	    j->rep->has_body ? j->rep->body.len : 0, GW_JSON_CT);
}

void
gw_bridge_return(gw_job *j)
{
	dre_json       *root;
	const char     *order, *ret;
	const dre_json *lines;
	ignored         ig = { { 0 }, 0 };
	int64_t         refund = 0;
	size_t          i = 0;

	if (!body_object(j, &root)
	    || !str_member(j, root, "", "orderId", true, &order)
	    || !str_member(j, root, "", "returnId", true, &ret))
		return;
	lines = dre_json_get(root, "lineItems");
	if (!dre_json_is(lines, DRE_JSON_ARRAY) || lines->len == 0) {
		gw_job_error(j, 400, "EMPTY_RETURN", NULL,
		    "lineItems must hold at least one returned line");
		return;
	}
	for (const dre_json *e = lines->child; e != NULL; e = e->next, i++) {
		char    path[32];
		int64_t v;
		snprintf(path, sizeof path, "lineItems[%zu]", i);
		if (e->type != DRE_JSON_OBJECT
		    || dre_json_decimal(&v, dre_json_get(e, "refundAmount"),
		           DRE_MONEY_SCALE, 15)
		        != DRE_OK
		    || v < 0) {
			gw_job_error(j, 400, "INVALID_FIELD", NULL,
			    "%s.refundAmount must be a number not below 0",
			    path);
			dre_buf_free(&ig.b);
			return;
		}
		refund += v;
		ignore_unknown(&ig, e, path, k_return_line);
	}
	ignore_unknown(&ig, root, "", k_return);
	ignored_done(j, &ig);
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "orderId", order);
	dre_jsonw_kstr(&w, "returnId", ret);
	dre_jsonw_kint(&w, "refund", refund);
	dre_jsonw_obj_end(&w);
	backend_send(
	    j, GW_LOYALTY, "loyalty.Returns.create", &b, render_passed);
}

// ---------------------------------------------------------------- SUPC

static const char *const k_supc[] = { "codes", "count", NULL };
static const char *const k_supc_code[]
    = { "code", "redeemed", "orderId", "redeemedAt", NULL };

// The promotion's INDIVIDUAL coupon type, created on first use (§10): when
// the coupon service answers a POST with 409 NO_SUPC_TYPE, the bridge
// reads the promotion (catalog), creates the type (coupon service; its id
// derived from the promotion's, so that two first POSTs make one type),
// adds it to the promotion's couponTypeIds (a PATCH with If-Match, read
// again on 412), waits until the services that learn master data hold the
// promotion's version (read-your-writes, §4b) and asks the coupon service
// again. Every step is the normal write of its service (roles, audit as
// the caller, events), as if the code system had made the calls itself.
#define SUPC_TRIES     5 // promotion updates tried on 412
#define SUPC_NAME_KEEP 95 // characters of the promotion's name kept

typedef struct {
	char            type_id[DRE_UUID_LEN + 1];
	const char     *etag; // the promotion's version as read
	const dre_json *promo; // the promotion as read (arena)
	int             tries;
	bool            type_made; // created now or found
	bool            by_id; // the type named "SUPC <promotionId>"
	bool            asked_again; // the coupon service asked again
} supc_first;

static void supc_created(gw_job *j);
static void supc_got_promo(gw_job *j);
static void supc_type_made(gw_job *j);
static void supc_updated(gw_job *j);

// supc_call sends the JSON body in b (NULL: none; freed) to method of
// backend with the promotion id (and If-Match, PATCH when etag is given)
// as params.
static void
supc_call(gw_job *j, gw_backend_id backend, const char *method, dre_buf *b,
    const char *etag, gw_render render)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__Param      pv[3], *pp[3];
	char           *roles[32], *body = NULL;
	size_t          n = 0;

	if (b != NULL) {
		body = b->oom ? NULL : dre_arena_strdup(j->arena, b->data);
		dre_buf_free(b);
		if (body == NULL) {
			gw_job_oom(j);
			return;
		}
	}
	if (j->rep != NULL) {
		dre_rpc_reply_msg_free(j->rep);
		j->rep = NULL;
	}
	dre__param__init(&pv[n]);
	pv[n].key = "id";
	pv[n].value = (char *) j->id;
	pp[n] = &pv[n];
	n++;
	if (etag != NULL) {
		dre__param__init(&pv[n]);
		pv[n].key = "if_match";
		pv[n].value = (char *) etag;
		pp[n] = &pv[n];
		n++;
		dre__param__init(&pv[n]);
		pv[n].key = "patch";
		pv[n].value = "1";
		pp[n] = &pv[n];
		n++;
	}
	snprintf(j->rpc_method, sizeof j->rpc_method, "%s", method);
	gw_job_envelope(j, &req, j->rpc_method, roles);
	req.params = pp;
	req.n_params = n;
	if (body != NULL) {
		req.has_body = 1;
		req.body.data = (uint8_t *) body;
		req.body.len = strlen(body);
	}
	gw_job_call(j, j->g->backends[backend].clients[0], &req, render);
}

static const char *
reply_header(const Dre__RpcReply *rep, const char *key)
{
	for (size_t i = 0; i < rep->n_headers; i++)
		if (strcasecmp(rep->headers[i]->key, key) == 0)
			return rep->headers[i]->value;
	return NULL;
}

// names_type tells whether the promotion read names the type already.
static bool
names_type(const supc_first *f)
{
	const dre_json *ids = dre_json_get(f->promo, "couponTypeIds");
	for (const dre_json *x
	     = dre_json_is(ids, DRE_JSON_ARRAY) ? ids->child : NULL;
	     x != NULL; x = x->next)
		if (dre_json_is(x, DRE_JSON_STRING)
		    && strcmp(x->str, f->type_id) == 0)
			return true;
	return false;
}

// supc_again asks the coupon service again (the codes of the type now).
static void
supc_again(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;

	dre_buf b = { 0 };

	dre_buf_append(&b, j->body.data, j->body.len);
	dre_buf_append(&b, "", 1);
	f->asked_again = true;
	supc_call(j, GW_COUPON, "coupon.Supc.create", &b, NULL, supc_created);
}

// supc_update names the type in the promotion read, or, when it does
// already (a concurrent first POST), waits for that version.
static void
supc_update(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;
	dre_buf     b = { 0 };
	dre_jsonw   w;

	if (names_type(f)) {
		const dre_json *v = dre_json_get(f->promo, "version");
		int64_t         ver = 0;
		char           *changes;
		if (f->etag != NULL)
			ver = strtoll(f->etag + (f->etag[0] == '"'), NULL, 10);
		else if (dre_json_is(v, DRE_JSON_NUMBER))
			dre_json_int(&ver, v, 0, INT64_MAX);
		dre_changes_add(&b, "PROMOTION", j->id, ver);
		changes = b.oom ? NULL : dre_arena_strdup(j->arena, b.data);
		dre_buf_free(&b);
		if (changes == NULL) {
			gw_job_oom(j);
			return;
		}
		if (!gw_await_changes(j, changes, supc_again))
			supc_again(j);
		return;
	}
	const dre_json *ids = dre_json_get(f->promo, "couponTypeIds");
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "couponTypeIds");
	dre_jsonw_arr_begin(&w);
	for (const dre_json *x
	     = dre_json_is(ids, DRE_JSON_ARRAY) ? ids->child : NULL;
	     x != NULL; x = x->next)
		if (dre_json_is(x, DRE_JSON_STRING))
			dre_jsonw_strn(&w, x->str, x->len);
	dre_jsonw_str(&w, f->type_id);
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	f->tries++;
	supc_call(j, GW_CATALOG, "catalog.Promotions.update", &b,
	    f->etag != NULL ? f->etag : "*", supc_updated);
}

// supc_make_type creates the INDIVIDUAL type "SUPC <promotion name>" (on
// a clash of names "SUPC <promotionId>").
static void
supc_make_type(gw_job *j)
{
	supc_first     *f = (supc_first *) j->ctx;
	const dre_json *nm = dre_json_get(f->promo, "name");
	dre_buf         b = { 0 };
	dre_jsonw       w;
	size_t          len = 0, chars = 0;

	if (!f->by_id && dre_json_is(nm, DRE_JSON_STRING) && nm->len > 0) {
		// At most SUPC_NAME_KEEP characters, never half of one.
		while (len < nm->len
		    && (chars < SUPC_NAME_KEEP
		        || ((unsigned char) nm->str[len] & 0xC0) == 0x80)) {
			if (((unsigned char) nm->str[len] & 0xC0) != 0x80)
				chars++;
			len++;
		}
	} else
		f->by_id = true;
	char *name
	    = dre_arena_get(j->arena, 8 + (f->by_id ? strlen(j->id) : len));
	if (name == NULL) {
		gw_job_oom(j);
		return;
	}
	if (f->by_id)
		snprintf(name, 6 + strlen(j->id), "SUPC %s", j->id);
	else {
		memcpy(name, "SUPC ", 5);
		memcpy(name + 5, nm->str, len);
		name[5 + len] = '\0';
	}
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", f->type_id);
	dre_jsonw_kstr(&w, "name", name);
	dre_jsonw_kstr(&w, "type", "INDIVIDUAL");
	dre_jsonw_kstr(&w, "description",
	    "single-use promotion codes (SUPC) of the promotion, created by "
	    "the POS-platform bridge");
	dre_jsonw_obj_end(&w);
	supc_call(j, GW_COUPON, "coupon.CouponTypes.create", &b, NULL,
	    supc_type_made);
}

static void
supc_type_made(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;
	const char *target
	    = j->rpc_err == DRE_OK ? j->rep->error_target : NULL;

	if (j->rpc_err == DRE_OK && j->rep->status == 409 && target != NULL) {
		if (strcmp(target, "name") == 0 && !f->by_id) {
			f->by_id = true;
			supc_make_type(j);
			return;
		}
		if (strcmp(target, "id") == 0) // made by a concurrent POST
			goto made;
	}
	if (gw_job_reply_error(j))
		return;
made:
	f->type_made = true;
	supc_update(j);
}

static void
supc_get_promo(gw_job *j)
{
	supc_call(j, GW_CATALOG, "catalog.Promotions.get", NULL, NULL,
	    supc_got_promo);
}

static void
supc_got_promo(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;
	dre_json   *doc = NULL;
	const char *etag;
	char       *text;

	if (gw_job_reply_error(j))
		return;
	text = dre_arena_strndup(j->arena,
	    j->rep->has_body ? (const char *) j->rep->body.data : "",
	    j->rep->has_body ? j->rep->body.len : 0);
	if (text == NULL
	    || dre_json_parse(&doc, j->arena, text, strlen(text), 32, NULL)
	        != DRE_OK
	    || !dre_json_is(doc, DRE_JSON_OBJECT)) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "the promotion could not be read");
		return;
	}
	f->promo = doc;
	etag = reply_header(j->rep, "ETag");
	f->etag = etag != NULL ? dre_arena_strdup(j->arena, etag) : NULL;
	if (f->type_made)
		supc_update(j);
	else
		supc_make_type(j);
}

static void
supc_updated(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;
	const char *changes;

	if (j->rpc_err == DRE_OK && j->rep->status == 412
	    && f->tries < SUPC_TRIES) {
		supc_get_promo(j); // changed since read: read it again
		return;
	}
	if (gw_job_reply_error(j))
		return;
	changes = reply_header(j->rep, "dre-changes");
	if (changes == NULL || !gw_await_changes(j, changes, supc_again))
		supc_again(j);
}

// supc_created answers the coupon service's reply, or creates the type on
// the first NO_SUPC_TYPE.
static void
supc_created(gw_job *j)
{
	supc_first *f = (supc_first *) j->ctx;
	bool        no_type = j->rpc_err == DRE_OK && j->rep->status == 409
	    && j->rep->error_code != NULL
	    && strcmp(j->rep->error_code, "NO_SUPC_TYPE") == 0;

	if (no_type && f == NULL) {
		if ((f = dre_arena_get(j->arena, sizeof *f)) == NULL) {
			gw_job_oom(j);
			return;
		}
		j->ctx = f;
		char seed[256];
		int  n = snprintf(
		     seed, sizeof seed, "supc\t%s\t%s", j->who.tenant, j->id);
		dre_uuid_derive(f->type_id, seed, (size_t) n);
		supc_get_promo(j);
		return;
	}
	if (no_type && atomic_load(&j->await_pending)) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "the promotion's new coupon type is not in effect yet: "
		    "ask again");
		return;
	}
	gw_render_forward(j);
}

void
gw_bridge_supc(gw_job *j)
{
	dre_json       *root;
	ignored         ig = { { 0 }, 0 };
	const dre_json *codes;
	size_t          i = 0;

	if (!body_object(j, &root))
		return;
	ignore_unknown(&ig, root, "", k_supc);
	codes = dre_json_get(root, "codes");
	for (const dre_json *e
	     = dre_json_is(codes, DRE_JSON_ARRAY) ? codes->child : NULL;
	     e != NULL; e = e->next, i++) {
		char path[32];
		snprintf(path, sizeof path, "codes[%zu]", i);
		ignore_unknown(&ig, e, path, k_supc_code);
	}
	ignored_done(j, &ig);
	if (strcmp(j->method, "POST") == 0)
		gw_forward_then(j, supc_created);
	else
		gw_forward(j);
}
