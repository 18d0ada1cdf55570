// webhook/handlers.c -- the webhook service's nng API: /api/v1
// WebhookSubscriptions (CRUD, rotate-secret, test, repost of the failed)
// and WebhookDeliveries (list, detail, repost, delete), JSON documents on
// common/docapi.
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/audit.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/uuid.h"

#include <openssl/crypto.h>

#define MINOR_VERSION 1
#define TOP_DEFAULT   100
#define TOP_MAX       1000
#define DESC_MAX_LEN  1000
#define URL_MAX_LEN   2000
#define MAX_TYPES     32

static const char *const event_types[] = { "PROMOTION_CREATED",
	"PROMOTION_UPDATED", "PROMOTION_ACTIVATED", "PROMOTION_DEACTIVATED",
	"PROMOTION_DELETED", "TRANSACTION_CONFIRMED", "TRANSACTION_RETURNED",
	"SIDE_EFFECTS_COMPLETED", "BUDGET_THRESHOLD_CROSSED",
	"BUDGET_EXHAUSTED", "COUPON_ISSUED", "COUPON_REDEEMED",
	"COUPON_EXPIRED", "COUPON_BATCH_COMPLETED", "LOYALTY_POINTS_AWARDED",
	"LOYALTY_VOUCHER_CREATED", "LOYALTY_POINTS_DEDUCTED",
	"LOYALTY_LEVEL_CHANGED", "LOYALTY_VOUCHER_REDEEMED",
	"LOYALTY_PROMOTION_ASSIGNED", "LOYALTY_PROMOTION_REDEEMED",
	"LOYALTY_CONTACT_CREATED", "LOYALTY_CONTACT_UPDATED",
	"IMPORT_JOB_FINISHED", "WEBHOOK_DELIVERY_DEAD_LETTER",
	"WEBHOOK_TEST" };
#define NTYPES     (sizeof event_types / sizeof event_types[0])
#define NFIELDS(a) (sizeof(a) / sizeof(a)[0])

typedef struct {
	dre_docapi_req d;
	wh            *s;
} req;

static const dre_docapi_svc wh_api = { "the webhook service", MINOR_VERSION };

static bool
req_begin(req *r, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	r->s = svc;
	return dre_docapi_begin(&r->d, &wh_api, call, rep);
}

static const char *
param_id(const dre_rpc_call *call)
{
	const char *id = dre_rpc_param(call, "id");
	return id != NULL ? id : "";
}

// ---- rendering ------------------------------------------------------------

static void
render_sub(dre_jsonw *w, const wh_sub *u, const char *secret)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "id", u->id);
	dre_jsonw_kstr(w, "url", u->url);
	dre_jsonw_key(w, "eventTypes");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < u->ntypes; i++)
		dre_jsonw_str(w, u->types[i]);
	dre_jsonw_arr_end(w);
	dre_jsonw_kstr(w, "description", u->description);
	dre_jsonw_kbool(w, "active", u->active);
	dre_jsonw_key(w, "retryPolicy");
	dre_jsonw_obj_begin(w);
	dre_jsonw_kint(w, "maxAttempts", u->max_attempts);
	dre_jsonw_kint(w, "initialDelaySeconds", u->initial_s);
	dre_jsonw_kint(w, "maxDelaySeconds", u->max_s);
	dre_jsonw_obj_end(w);
	if (secret != NULL)
		dre_jsonw_kstr(w, "secret", secret);
	dre_jsonw_key(w, "createdAt");
	dre_jsonw_time(w, u->created_at);
	dre_jsonw_key(w, "modifiedAt");
	dre_jsonw_time(w, u->modified_at);
	dre_jsonw_obj_end(w);
}

static void
reply_sub(req *r, int status, const wh_sub *u, const char *secret)
{
	dre_buf   doc = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &doc);
	render_sub(&w, u, secret);
	if (doc.oom)
		dre_docapi_internal(&r->d, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(&r->d, status, doc.data, doc.len);
	dre_buf_free(&doc);
}

static void
reply_delivery(req *r, int status, const wh_delivery *d, bool detail)
{
	dre_buf doc = { 0 };
	wh_delivery_render(&doc, d, detail);
	if (doc.oom)
		dre_docapi_internal(&r->d, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(&r->d, status, doc.data, doc.len);
	dre_buf_free(&doc);
}

// ---- validation ----------------------------------------------------------

static bool
str_field(
    req *r, const dre_json *doc, const char *name, size_t max, char **out)
{
	const dre_json *v = dre_json_get(doc, name);
	size_t          chars = 0;
	*out = NULL;
	if (dre_json_is_null(v))
		return true;
	if (v->type != DRE_JSON_STRING || strlen(v->str) != v->len
	    || !dre_utf8_valid(v->str, v->len, &chars))
		return dre_docapi_invalid(
		    &r->d, name, "%s must be a string", name);
	if (chars > max)
		return dre_docapi_invalid(&r->d, name,
		    "%s must be at most %zu characters", name, max);
	*out = (char *) v->str;
	return true;
}

static bool
known_type(const char *t)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(t, event_types[i]) == 0)
			return true;
	return false;
}

static bool
int_member(req *r, const dre_json *o, const char *name, int64_t min,
    int64_t max, int64_t *out)
{
	const dre_json *v = dre_json_get(o, name);
	char            tg[64];
	if (dre_json_is_null(v))
		return true;
	snprintf(tg, sizeof tg, "retryPolicy.%s", name);
	if (dre_json_int(out, v, min, max) != DRE_OK)
		return dre_docapi_invalid(&r->d, tg,
		    "%s must be a whole number from %lld to %lld", tg,
		    (long long) min, (long long) max);
	return true;
}

// apply_doc copies the document's fields into u; *secret is set when the
// document gives one. full: url and eventTypes are required (create).
static bool
apply_doc(req *r, const dre_json *doc, wh_sub *u, bool full, char **secret)
{
	static const char *const known[] = { "id", "url", "eventTypes",
		"description", "active", "secret", "retryPolicy", "createdAt",
		"modifiedAt", "minorVersion" };
	char                    *s = NULL;
	const dre_json          *v;
	if (!dre_docapi_strict(
	        &r->d, doc, known, sizeof known / sizeof known[0]))
		return false;
	if (!str_field(r, doc, "url", URL_MAX_LEN, &s))
		return false;
	if (s != NULL) {
		char why[160];
		if (!dre_net_url_check(
		        s, r->s->o.allow_insecure, why, sizeof why))
			return dre_docapi_invalid(&r->d, "url", "%s", why);
		u->url = s;
	} else if (full) {
		return dre_docapi_invalid(&r->d, "url", "url is required");
	}
	v = dre_json_get(doc, "eventTypes");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_ARRAY || v->len == 0
		    || v->len > MAX_TYPES)
			return dre_docapi_invalid(&r->d, "eventTypes",
			    "eventTypes must be a non-empty array of event "
			    "types, or [\"*\"]");
		const char **t = dre_arena_get(r->d.a, v->len * sizeof(*t));
		size_t       n = 0;
		if (t == NULL) {
			dre_docapi_internal(&r->d, DRE_ENOMEM);
			return false;
		}
		for (const dre_json *e = v->child; e != NULL; e = e->next) {
			char tg[32];
			snprintf(tg, sizeof tg, "eventTypes[%zu]", n);
			if (e->type != DRE_JSON_STRING
			    || (!known_type(e->str)
			        && strcmp(e->str, "*") != 0))
				return dre_docapi_invalid(&r->d, tg,
				    "unknown event type (one of "
				    "TRANSACTION_CONFIRMED, "
				    "PROMOTION_UPDATED, "
				    "... or \"*\")");
			t[n++] = e->str;
		}
		u->types = t;
		u->ntypes = n;
	} else if (full) {
		return dre_docapi_invalid(
		    &r->d, "eventTypes", "eventTypes is required");
	}
	if (dre_json_get(doc, "description") != NULL) {
		if (!str_field(r, doc, "description", DESC_MAX_LEN, &s))
			return false;
		u->description = s;
	}
	v = dre_json_get(doc, "active");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE)
			return dre_docapi_invalid(
			    &r->d, "active", "active must be true or false");
		u->active = v->type == DRE_JSON_TRUE;
	}
	if (!str_field(r, doc, "secret", 200, &s))
		return false;
	if (s != NULL && !wh_secret_valid(s))
		return dre_docapi_invalid(&r->d, "secret",
		    "secret must be whsec_ followed by the base64 of 16 to 64 "
		    "bytes");
	*secret = s;
	v = dre_json_get(doc, "retryPolicy");
	if (!dre_json_is_null(v)) {
		static const char *const rp[] = { "maxAttempts",
			"initialDelaySeconds", "maxDelaySeconds" };
		if (v->type != DRE_JSON_OBJECT)
			return dre_docapi_invalid(&r->d, "retryPolicy",
			    "retryPolicy must be an object");
		const dre_json *bad = dre_json_unknown(v, rp, 3, NULL);
		if (bad != NULL) {
			char name[64], msg[160], tg[96];
			dre_json_unknown_describe(
			    bad, rp, 3, name, sizeof name, msg, sizeof msg);
			snprintf(tg, sizeof tg, "retryPolicy.%s", name);
			return dre_docapi_invalid(&r->d, tg, "%s", msg);
		}
		if (!int_member(r, v, "maxAttempts", 1, 20, &u->max_attempts)
		    || !int_member(
		        r, v, "initialDelaySeconds", 1, 86400, &u->initial_s)
		    || !int_member(
		        r, v, "maxDelaySeconds", 1, 7 * 86400, &u->max_s))
			return false;
	}
	if (u->max_s < u->initial_s)
		return dre_docapi_invalid(&r->d, "retryPolicy.maxDelaySeconds",
		    "retryPolicy.maxDelaySeconds must not be below "
		    "initialDelaySeconds");
	return true;
}

// seal seals secret into u (its storage in r's arena).
static bool
seal(req *r, wh_sub *u, const char *secret)
{
	dre_buf b = { 0 };
	if (dre_seal(&b, r->s->seal_key, secret) != DRE_OK) {
		dre_buf_free(&b);
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return false;
	}
	u->sealed = dre_arena_strndup(r->d.a, b.data, b.len);
	dre_buf_free(&b);
	return u->sealed != NULL;
}

// sub_doc renders u as a read answers it, without the secret (NULL: none).
static const dre_buf *
sub_doc(dre_buf *out, const wh_sub *u)
{
	dre_jsonw w;
	if (u == NULL)
		return NULL;
	dre_jsonw_init(&w, out);
	render_sub(&w, u, NULL);
	return out;
}

// audit_put adds the audit record of a subscription write to b: before
// (NULL for a create) and after (NULL for a delete).
static dre_err
audit_put(req *r, dre_batch *b, const char *id, const wh_sub *before,
    const wh_sub *after)
{
	dre_buf bd = { 0 }, ad = { 0 };
	dre_err err = dre_audit_change(b, r->s->st, WH_CF_AUDIT,
	    r->d.call->tenant, r->d.call->principal, "WebhookSubscription", id,
	    NULL, sub_doc(&bd, before), sub_doc(&ad, after), NULL);
	dre_buf_free(&bd);
	dre_buf_free(&ad);
	return err;
}

// write_sub stores u (old: the stored version, NULL for a create) with its
// audit record.
static bool
write_sub(req *r, const wh_sub *u, const wh_sub *old)
{
	dre_batch *b = dre_batch_alloc();
	dre_err    err = b == NULL ? DRE_ENOMEM
	                           : wh_sub_put(r->s, b, r->d.call->tenant, u);
	if (err == DRE_OK)
		err = audit_put(r, b, u->id, old, u);
	if (err == DRE_OK)
		err = wh_subs_write(r->s, b, true);
	dre_batch_free(b);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	return err == DRE_OK;
}

static bool
load_sub(req *r, const char *id, wh_sub *u)
{
	dre_err err = wh_sub_get(r->s, r->d.a, r->d.call->tenant, id, u);
	if (err == DRE_ENOTFOUND)
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "no webhook subscription %s", id);
	else if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	return err == DRE_OK;
}

// ---- subscriptions ---------------------------------------------------------

static void
h_sub_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (!req_begin(&r, svc, call, rep))
		return;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	wh_sub          u = { 0 };
	char           *id = NULL, *secret = NULL, made[80] = "";
	if (doc == NULL || !str_field(&r, doc, "id", 36, &id))
		goto out;
	if (id != NULL && !dre_uuid_valid(id, strlen(id))) {
		dre_docapi_invalid(&r.d, "id", "id must be a UUID");
		goto out;
	}
	if (id == NULL) {
		if ((id = dre_arena_get(r.d.a, DRE_UUID_LEN + 1)) == NULL) {
			dre_docapi_internal(&r.d, DRE_ENOMEM);
			goto out;
		}
		dre_uuid_v4(id);
	}
	u.id = id;
	u.active = true;
	u.max_attempts = 8;
	u.initial_s = 5;
	u.max_s = 36000;
	if (!apply_doc(&r, doc, &u, true, &secret))
		goto out;
	if (secret == NULL) {
		if (wh_secret_new(made, sizeof made) != DRE_OK) {
			dre_docapi_internal(&r.d, DRE_EINVAL);
			goto out;
		}
		secret = made;
	}
	if (!seal(&r, &u, secret))
		goto out;
	u.created_at = u.modified_at = dre_now_ms();
	wh_sub old;
	pthread_mutex_lock(&r.s->sub_mu);
	if (wh_sub_get(r.s, r.d.a, call->tenant, id, &old) == DRE_OK)
		dre_rpc_reply_error(rep, 409, "CONFLICT", "id",
		    "webhook subscription %s already exists", id);
	else if (write_sub(&r, &u, NULL))
		reply_sub(&r, 201, &u, secret);
	pthread_mutex_unlock(&r.s->sub_mu);
out:
	OPENSSL_cleanse(made, sizeof made);
	dre_docapi_end(&r.d);
}

static void
h_sub_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req    r;
	wh_sub u;
	if (!req_begin(&r, svc, call, rep))
		return;
	if (load_sub(&r, param_id(call), &u))
		reply_sub(&r, 200, &u, NULL);
	dre_docapi_end(&r.d);
}

static void
h_sub_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req     r;
	int64_t top = 0, skip = 0, count = 0;
	dre_buf items = { 0 };
	if (!req_begin(&r, svc, call, rep))
		return;
	if (!dre_docapi_paging(&r.d, TOP_DEFAULT, TOP_MAX, &top, &skip))
		goto out;
	char            prefix[WH_KEY_MAX];
	size_t          pl = wh_key(prefix, sizeof prefix, call->tenant, "");
	dre_store_iter *it = NULL;
	if (pl == 0
	    || dre_store_iter_open(&it, r.s->st, WH_CF_SUBS, prefix, pl)
	        != DRE_OK) {
		dre_docapi_internal(&r.d, DRE_ESTORE);
		goto out;
	}
	const char *k, *v;
	size_t      kl, vl;
	dre_arena  *a = dre_arena_alloc(0);
	while (a != NULL && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		wh_sub u;
		dre_arena_reset(a);
		if (wh_sub_parse(&u, a, v, vl) != DRE_OK)
			continue;
		if (count++ < skip || count > skip + top)
			continue;
		if (items.len > 0)
			dre_buf_putc(&items, ',');
		dre_jsonw w;
		dre_jsonw_init(&w, &items);
		render_sub(&w, &u, NULL);
	}
	dre_arena_free(a);
	dre_store_iter_close(it);
	dre_docapi_reply_list(&r.d, count, &items);
out:
	dre_buf_free(&items);
	dre_docapi_end(&r.d);
}

static void
h_sub_update(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	wh_sub      u;
	char       *secret = NULL;
	const char *id = param_id(call);
	if (!req_begin(&r, svc, call, rep))
		return;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *bid = dre_json_get(doc, "id");
	if (dre_json_is(bid, DRE_JSON_STRING) && strcmp(bid->str, id) != 0) {
		dre_docapi_invalid(&r.d, "id", "the id cannot change");
		goto out;
	}
	pthread_mutex_lock(&r.s->sub_mu);
	if (!load_sub(&r, id, &u))
		goto unlock;
	wh_sub      old = u;
	const char *patch = dre_rpc_param(call, "patch");
	bool        full = patch == NULL || strcmp(patch, "1") != 0;
	if (!apply_doc(&r, doc, &u, full, &secret))
		goto unlock;
	if (secret != NULL && !seal(&r, &u, secret))
		goto unlock;
	u.modified_at = dre_now_ms();
	if (write_sub(&r, &u, &old)) {
		reply_sub(&r, 200, &u, NULL);
		wh_deliverer_kick(r.s);
	}
unlock:
	pthread_mutex_unlock(&r.s->sub_mu);
out:
	dre_docapi_end(&r.d);
}

static void
h_sub_delete(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req    r;
	wh_sub u;
	if (!req_begin(&r, svc, call, rep))
		return;
	pthread_mutex_lock(&r.s->sub_mu);
	if (load_sub(&r, param_id(call), &u)) {
		char       key[WH_KEY_MAX];
		size_t     kl = wh_key(key, sizeof key, call->tenant, u.id);
		dre_batch *b = dre_batch_alloc();
		dre_err    err = b == NULL || kl == 0 ? DRE_ENOMEM : DRE_OK;
		if (err == DRE_OK) {
			dre_batch_delete(b, r.s->st, WH_CF_SUBS, key, kl);
			err = audit_put(&r, b, u.id, &u, NULL);
		}
		if (err == DRE_OK)
			err = wh_subs_write(r.s, b, true);
		dre_batch_free(b);
		if (err != DRE_OK)
			dre_docapi_internal(&r.d, err);
		else
			rep->status = 204;
	}
	pthread_mutex_unlock(&r.s->sub_mu);
	dre_docapi_end(&r.d);
}

static void
h_sub_rotate(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req    r;
	wh_sub u;
	char   made[80] = "";
	if (!req_begin(&r, svc, call, rep))
		return;
	pthread_mutex_lock(&r.s->sub_mu);
	if (!load_sub(&r, param_id(call), &u))
		goto unlock;
	wh_sub old = u;
	if (wh_secret_new(made, sizeof made) != DRE_OK) {
		dre_docapi_internal(&r.d, DRE_EINVAL);
		goto unlock;
	}
	if (!seal(&r, &u, made))
		goto unlock;
	u.modified_at = dre_now_ms();
	if (write_sub(&r, &u, &old))
		reply_sub(&r, 200, &u, made);
unlock:
	pthread_mutex_unlock(&r.s->sub_mu);
	OPENSSL_cleanse(made, sizeof made);
	dre_docapi_end(&r.d);
}

static void
h_sub_test(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req    r;
	wh_sub u;
	if (!req_begin(&r, svc, call, rep))
		return;
	if (!load_sub(&r, param_id(call), &u))
		goto out;
	char    eid[DRE_UUID_LEN + 1];
	int64_t now = dre_now_ms();
	dre_uuid_v4(eid);
	dre_buf   data = { 0 }, body = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "subscriptionId", u.id);
	dre_jsonw_kstr(&w, "message", "a test event from DRE");
	dre_jsonw_obj_end(&w);
	wh_event_body(&body, eid, "WEBHOOK_TEST", now, call->tenant, data.data,
	    data.len);
	dre_batch *b = dre_batch_alloc();
	dre_err    err = b == NULL || data.oom || body.oom
	       ? DRE_ENOMEM
	       : wh_enqueue(r.s, b, r.d.a, call->tenant, u.id, eid,
	           "WEBHOOK_TEST", body.data, body.len, now);
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, b, true);
	dre_batch_free(b);
	dre_buf_free(&data);
	dre_buf_free(&body);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	wh_deliverer_kick(r.s);
	char seed[128], did[DRE_UUID_LEN + 1];
	int  sl
	    = snprintf(seed, sizeof seed, "webhook-delivery|%s|%s", u.id, eid);
	dre_uuid_derive(did, seed, (size_t) sl);
	wh_delivery d;
	if (wh_delivery_get(r.s, r.d.a, call->tenant, did, &d) == DRE_OK)
		reply_delivery(&r, 202, &d, false);
	else
		dre_docapi_internal(&r.d, DRE_ESTORE);
out:
	dre_docapi_end(&r.d);
}

// repost starts a new series of d in b (under s->mu).
static dre_err
repost(wh *s, dre_batch *b, const char *tenant, wh_delivery *d, int64_t now)
{
	int64_t old_due
	    = strcmp(d->status, "PENDING") == 0 ? d->next_attempt_at : -1;
	d->status = "PENDING";
	d->series++;
	d->attempts = 0;
	d->next_attempt_at = now;
	return wh_delivery_put(s, b, tenant, d, old_due);
}

static void
h_sub_repost(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req    r;
	wh_sub u;
	if (!req_begin(&r, svc, call, rep))
		return;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	static const char *const known[] = { "status", "from", "to" };
	char                    *st = NULL, *from_s = NULL, *to_s = NULL;
	int64_t                  from = INT64_MIN, to = INT64_MAX;
	if (doc == NULL || !dre_docapi_strict(&r.d, doc, known, 3)
	    || !str_field(&r, doc, "status", 20, &st)
	    || !str_field(&r, doc, "from", 40, &from_s)
	    || !str_field(&r, doc, "to", 40, &to_s))
		goto out;
	if (st != NULL && strcmp(st, "FAILED") != 0) {
		dre_docapi_invalid(&r.d, "status",
		    "status must be FAILED (only failed deliveries are "
		    "reposted in bulk)");
		goto out;
	}
	if (from_s != NULL
	    && dre_time_parse(&from, from_s, strlen(from_s)) != DRE_OK) {
		dre_docapi_invalid(&r.d, "from", "from must be ISO-8601");
		goto out;
	}
	if (to_s != NULL
	    && dre_time_parse(&to, to_s, strlen(to_s)) != DRE_OK) {
		dre_docapi_invalid(&r.d, "to", "to must be ISO-8601");
		goto out;
	}
	if (!load_sub(&r, param_id(call), &u))
		goto out;
	char            prefix[WH_KEY_MAX];
	size_t          pl = wh_key(prefix, sizeof prefix, call->tenant, "");
	dre_store_iter *it = NULL;
	dre_batch      *b = dre_batch_alloc();
	dre_arena      *a = dre_arena_alloc(0);
	int64_t         n = 0, now = dre_now_ms();
	dre_err         err = b && a ? DRE_OK : DRE_ENOMEM;
	pthread_mutex_lock(&r.s->mu);
	if (err == DRE_OK
	    && dre_store_iter_open(&it, r.s->st, WH_CF_DELIVERIES, prefix, pl)
	        != DRE_OK)
		err = DRE_ESTORE;
	const char *k, *v;
	size_t      kl, vl;
	while (err == DRE_OK && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		wh_delivery d;
		if (wh_delivery_parse(&d, a, v, vl) != DRE_OK
		    || strcmp(d.sub_id, u.id) != 0
		    || strcmp(d.status, "FAILED") != 0 || d.created_at < from
		    || d.created_at > to)
			continue;
		if ((err = repost(r.s, b, call->tenant, &d, now)) == DRE_OK)
			n++;
	}
	dre_store_iter_close(it);
	if (err == DRE_OK && n > 0)
		err = dre_store_write(r.s->st, b, true);
	pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	dre_arena_free(a);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	wh_deliverer_kick(r.s);
	char body[64];
	int  bl = snprintf(
	     body, sizeof body, "{\"reposted\":%lld}", (long long) n);
	dre_docapi_reply_doc(&r.d, 202, body, (size_t) bl);
out:
	dre_docapi_end(&r.d);
}

// ---- deliveries ------------------------------------------------------------

// What a delivery list can query ($filter, $orderby, $select): every
// member of the list view.
static const char *const del_fields[] = { "id", "subscriptionId", "eventId",
	"eventType", "status", "attempts", "totalAttempts", "createdAt",
	"lastAttemptAt", "nextAttemptAt", "lastStatusCode", "lastError" };

static void
h_del_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req              r;
	dre_docapi_list  l;
	dre_odata_fields qf = { del_fields, NFIELDS(del_fields), del_fields,
		NFIELDS(del_fields) };
	dre_buf          doc = { 0 };
	const char      *sub = dre_rpc_param(call, "subscriptionId");
	const char      *status = dre_rpc_param(call, "status");
	const char      *type = dre_rpc_param(call, "eventType");
	if (!req_begin(&r, svc, call, rep))
		return;
	// The filters of §9 stay beside $filter (both apply).
	if (!dre_docapi_list_begin(&l, &r.d, &qf, TOP_DEFAULT, TOP_MAX))
		goto out;
	if (status != NULL && status[0] != '\0'
	    && strcmp(status, "PENDING") != 0
	    && strcmp(status, "DELIVERED") != 0
	    && strcmp(status, "FAILED") != 0) {
		dre_docapi_invalid(&r.d, "status",
		    "status must be PENDING, DELIVERED or FAILED");
		goto out;
	}
	if (type != NULL && type[0] != '\0' && !known_type(type)) {
		dre_docapi_invalid(&r.d, "eventType", "unknown event type");
		goto out;
	}
	char            prefix[WH_KEY_MAX];
	size_t          pl = wh_key(prefix, sizeof prefix, call->tenant, "");
	dre_store_iter *it = NULL;
	if (pl == 0
	    || dre_store_iter_open(&it, r.s->st, WH_CF_DELIVERIES, prefix, pl)
	        != DRE_OK) {
		dre_docapi_internal(&r.d, DRE_ESTORE);
		goto out;
	}
	const char *k, *v;
	size_t      kl, vl;
	dre_arena  *a = dre_arena_alloc(0);
	l.oom = a == NULL;
	while (!l.oom && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		wh_delivery d;
		dre_arena_reset(a);
		if (wh_delivery_parse(&d, a, v, vl) != DRE_OK)
			continue;
		if ((sub && sub[0] && strcmp(d.sub_id, sub) != 0)
		    || (status && status[0] && strcmp(d.status, status) != 0)
		    || (type && type[0] && strcmp(d.event_type, type) != 0))
			continue;
		dre_buf_reset(&doc);
		wh_delivery_render(&doc, &d, false);
		if (doc.oom || !dre_docapi_list_add(&l, doc.data, doc.len))
			l.oom = true;
	}
	dre_arena_free(a);
	dre_store_iter_close(it);
	dre_buf_free(&doc);
	dre_docapi_list_end(&l);
	dre_docapi_end(&r.d);
	return;
out:
	dre_docapi_list_free(&l);
	dre_docapi_end(&r.d);
}

static bool
load_delivery(req *r, const char *id, wh_delivery *d)
{
	dre_err err = wh_delivery_get(r->s, r->d.a, r->d.call->tenant, id, d);
	if (err == DRE_ENOTFOUND)
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "no webhook delivery %s", id);
	else if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	return err == DRE_OK;
}

static void
h_del_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	wh_delivery d;
	if (!req_begin(&r, svc, call, rep))
		return;
	if (load_delivery(&r, param_id(call), &d))
		reply_delivery(&r, 200, &d, true);
	dre_docapi_end(&r.d);
}

static void
h_del_repost(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	wh_delivery d;
	if (!req_begin(&r, svc, call, rep))
		return;
	pthread_mutex_lock(&r.s->mu);
	if (!load_delivery(&r, param_id(call), &d)) {
		pthread_mutex_unlock(&r.s->mu);
		goto out;
	}
	dre_batch *b = dre_batch_alloc();
	dre_err    err = b == NULL
	       ? DRE_ENOMEM
	       : repost(r.s, b, call->tenant, &d, dre_now_ms());
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, b, true);
	pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	wh_deliverer_kick(r.s);
	reply_delivery(&r, 202, &d, false);
out:
	dre_docapi_end(&r.d);
}

static void
h_del_delete(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	wh_delivery d;
	if (!req_begin(&r, svc, call, rep))
		return;
	pthread_mutex_lock(&r.s->mu);
	if (load_delivery(&r, param_id(call), &d)) {
		char       key[WH_KEY_MAX], due[WH_KEY_MAX + 8];
		size_t     kl = wh_key(key, sizeof key, call->tenant, d.id);
		dre_batch *b = dre_batch_alloc();
		if (b != NULL) {
			dre_batch_delete(
			    b, r.s->st, WH_CF_DELIVERIES, key, kl);
			size_t dl = strcmp(d.status, "PENDING") == 0
			    ? wh_due_key(due, sizeof due, d.next_attempt_at,
			        call->tenant, d.sub_id, d.id)
			    : 0;
			if (dl > 0)
				dre_batch_delete(
				    b, r.s->st, WH_CF_DUE, due, dl);
		}
		if (b == NULL || dre_store_write(r.s->st, b, true) != DRE_OK)
			dre_docapi_internal(&r.d, DRE_ESTORE);
		else
			rep->status = 204;
		dre_batch_free(b);
	}
	pthread_mutex_unlock(&r.s->mu);
	dre_docapi_end(&r.d);
}

// webhook.AuditLogs.list: the subscriptions' audit records, for the
// gateway's merge of GET /api/v1/AuditLogs.
static void
h_audit_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	wh *s = svc;
	dre_audit_list_call(&wh_api, s->st, WH_CF_AUDIT, 0, call, rep);
}

const dre_rpc_route wh_routes[] = {
	{ "webhook.WebhookSubscriptions.create", h_sub_create, 0 },
	{ "webhook.WebhookSubscriptions.list", h_sub_list, 0 },
	{ "webhook.WebhookSubscriptions.get", h_sub_get, 0 },
	{ "webhook.WebhookSubscriptions.update", h_sub_update, 0 },
	{ "webhook.WebhookSubscriptions.delete", h_sub_delete, 0 },
	{ "webhook.WebhookSubscriptions.rotateSecret", h_sub_rotate, 0 },
	{ "webhook.WebhookSubscriptions.test", h_sub_test, 0 },
	{ "webhook.WebhookSubscriptions.repost", h_sub_repost, 0 },
	{ "webhook.WebhookDeliveries.list", h_del_list, 0 },
	{ "webhook.WebhookDeliveries.get", h_del_get, 0 },
	{ "webhook.WebhookDeliveries.repost", h_del_repost, 0 },
	{ "webhook.WebhookDeliveries.delete", h_del_delete, 0 },
	{ "webhook.AuditLogs.list", h_audit_list, 0 },
	{ NULL, NULL, 0 },
};
