// budget/handlers.c -- the budget service's nng API: /api/v1/Budgets CRUD
// (JSON documents) and the snapshot evaluators start from.
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "dre/arena.h"
#include "dre/audit.h"
#include "dre/buf.h"
#include "dre/changes.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/importjob.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/odata.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/outbox.h"
#include "dre/topics.h"
#include "dre/uuid.h"

#define MINOR_VERSION 13
#define TOP_DEFAULT   100
#define TOP_MAX       1000
#define NAME_MAX_LEN  100
#define DESC_MAX_LEN  1000

static const int32_t default_thresholds[] = { 50, 80, 100 };

typedef struct {
	dre_docapi_req d;
	bud           *s;
} req;

static const dre_docapi_svc bud_api = { "the budget service", MINOR_VERSION };

static bool
req_begin(req *r, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	r->s = svc;
	return dre_docapi_begin(&r->d, &bud_api, call, rep);
}

// ---- rendering ------------------------------------------------------------

// changes_header names the status change a write made (its budget and the
// service-wide version) in the reply header dre-changes: the gateway
// answers the write once every evaluator knows it (PRODUCT-DECISIONS §4b).
static void
changes_header(dre_rpc_reply *rep, const char *id, int64_t version)
{
	dre_buf b = { 0 };
	dre_changes_add(&b, "BUDGET", id, version);
	if (!b.oom && b.len > 0)
		dre_rpc_reply_header(
		    rep, "dre-changes", (const char *) b.data);
	dre_buf_free(&b);
}

static void
kdecimal(dre_jsonw *w, const char *key, int64_t v)
{
	dre_jsonw_key(w, key);
	dre_jsonw_decimal(w, v, DRE_MONEY_SCALE);
}

static void
ktime_opt(dre_jsonw *w, const char *key, bool has, int64_t ms)
{
	dre_jsonw_key(w, key);
	if (has)
		dre_jsonw_time(w, ms);
	else
		dre_jsonw_null(w);
}

// bud_utilization is consumed / total in hundredths of a percent (HALF_UP);
// a zero total counts as fully used.
static int64_t
utilization(const Dre__BudgetRecord *b)
{
	if (b->total <= 0)
		return b->consumed > 0 || b->total == 0 ? 10000 : 0;
	return dre_div_round(
	    (__int128) b->consumed * 10000, b->total, DRE_ROUND_HALF_UP);
}

static void
render(dre_jsonw *w, const Dre__BudgetRecord *b)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "id", b->id);
	dre_jsonw_kstr(w, "name", b->name);
	dre_jsonw_kstr(w, "description", b->description);
	kdecimal(w, "totalAmount", b->total);
	kdecimal(w, "consumedAmount", b->consumed);
	kdecimal(w, "remainingAmount", b->total - b->consumed);
	dre_jsonw_kstr(w, "currency", b->currency);
	dre_jsonw_key(w, "utilizationPct");
	dre_jsonw_decimal(w, utilization(b), 2);
	dre_jsonw_kstr(w, "status", bud_exhausted(b) ? "EXHAUSTED" : "ACTIVE");
	ktime_opt(w, "validFrom", b->has_valid_from, b->valid_from);
	ktime_opt(w, "validTo", b->has_valid_to, b->valid_to);
	dre_jsonw_key(w, "thresholds");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < b->n_thresholds; i++)
		dre_jsonw_int(w, b->thresholds[i]);
	dre_jsonw_arr_end(w);
	dre_jsonw_key(w, "thresholdsCrossed");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < b->n_crossed; i++)
		dre_jsonw_int(w, b->crossed[i]);
	dre_jsonw_arr_end(w);
	dre_jsonw_kint(w, "transactionsCount", b->transactions);
	ktime_opt(w, "exhaustedAt", b->has_exhausted_at, b->exhausted_at);
	ktime_opt(w, "createdAt", true, b->created_at);
	ktime_opt(w, "modifiedAt", true, b->modified_at);
	dre_jsonw_obj_end(w);
}

// doc_of renders b as the API answers it, without minorVersion (the audit
// log's before and after).
static void
doc_of(dre_buf *out, const Dre__BudgetRecord *b)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	render(&w, b);
}

// audit_put adds the audit record of an /api/v1 write to wb: before (a
// rendered budget, NULL for a create) and after (NULL for a delete).
static dre_err
audit_put(req *r, dre_batch *wb, const char *id, const dre_buf *before,
    const Dre__BudgetRecord *after)
{
	dre_buf a = { 0 };
	if (after != NULL)
		doc_of(&a, after);
	dre_err err = dre_audit_change(wb, r->s->st, BUD_CF_AUDIT,
	    r->d.call->tenant, r->d.call->principal, "Budget", id, NULL,
	    before, after != NULL ? &a : NULL, NULL);
	dre_buf_free(&a);
	return err;
}

// ---- optimistic concurrency: ETag = the budget's edit revision
// ------------------------------------------------------------------------

// etag_set answers b's ETag. Consumption does not change it: only edits
// through /api/v1 do (a marketer's edit must not be refused because a sale
// consumed the budget meanwhile).
static void
etag_set(req *r, const Dre__BudgetRecord *b)
{
	char tag[32];
	snprintf(tag, sizeof tag, "\"%lld\"",
	    (long long) (b->has_revision ? b->revision : 0));
	dre_rpc_reply_header(r->d.rep, "ETag", tag);
}

// if_match_ok checks the request's If-Match against b's revision ("*", or
// a list of tags, W/ forms compared weakly); answers 412 otherwise.
static bool
if_match_ok(req *r, const Dre__BudgetRecord *b)
{
	const char *im = dre_rpc_param(r->d.call, "if_match");
	if (im == NULL)
		return true;
	char want[32];
	snprintf(want, sizeof want, "%lld",
	    (long long) (b->has_revision ? b->revision : 0));
	if (dre_etag_match(im, want))
		return true;
	dre_rpc_reply_error(r->d.rep, 412, "PRECONDITION_FAILED", "If-Match",
	    "the budget changed since it was read (now revision %s): read it "
	    "again and reapply the change",
	    want);
	return false;
}

static void
reply_doc(req *r, int status, const Dre__BudgetRecord *b)
{
	dre_buf   doc = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &doc);
	render(&w, b);
	if (doc.oom)
		dre_docapi_internal(&r->d, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(&r->d, status, doc.data, doc.len);
	dre_buf_free(&doc);
}

// ---- validation ----------------------------------------------------------

// str_field reads a string member (NULL when absent or null).
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
		return dre_docapi_invalid(&r->d, name, "must be a string");
	if (chars > max)
		return dre_docapi_invalid(&r->d, name,
		    "%s must be at most %zu characters", name, max);
	*out = (char *) v->str;
	return true;
}

static bool
time_field(req *r, const dre_json *doc, const char *name,
    protobuf_c_boolean *has, int64_t *out)
{
	char *s = NULL;
	if (!str_field(r, doc, name, 40, &s))
		return false;
	if (s == NULL)
		return true;
	if (dre_time_parse(out, s, strlen(s)) != DRE_OK)
		return dre_docapi_invalid(
		    &r->d, name, "must be an ISO-8601 date-time");
	*has = true;
	return true;
}

static int
i32_cmp(const void *x, const void *y)
{
	int32_t a = *(const int32_t *) x, b = *(const int32_t *) y;
	return a < b ? -1 : a > b;
}

// apply_doc copies the document's fields into b. full: name and
// totalAmount are required (create, PUT).
static bool
apply_doc(req *r, const dre_json *doc, Dre__BudgetRecord *b, bool full)
{
	// What a write may set, and what a read answers (a GET body can be PUT
	// back); anything else is refused.
	static const char *const known[]
	    = { "id", "name", "description", "totalAmount", "currency",
		      "thresholds", "validFrom", "validTo", "consumedAmount",
		      "remainingAmount", "utilizationPct", "status",
		      "thresholdsCrossed", "transactionsCount", "exhaustedAt",
		      "createdAt", "modifiedAt", "minorVersion" };
	char           *s = NULL;
	const dre_json *v;
	if (!dre_docapi_strict(
	        &r->d, doc, known, sizeof known / sizeof known[0]))
		return false;
	if (!str_field(r, doc, "name", NAME_MAX_LEN, &s))
		return false;
	if (s != NULL && s[0] == '\0')
		return dre_docapi_invalid(
		    &r->d, "name", "name must not be empty");
	if (s != NULL)
		b->name = s;
	else if (full)
		return dre_docapi_invalid(&r->d, "name", "name is required");
	if (dre_json_get(doc, "description") != NULL) {
		if (!str_field(r, doc, "description", DESC_MAX_LEN, &s))
			return false;
		b->description = s;
	}
	v = dre_json_get(doc, "totalAmount");
	if (!dre_json_is_null(v)) {
		int64_t t = 0;
		if ((v->type != DRE_JSON_NUMBER && v->type != DRE_JSON_STRING)
		    || dre_json_decimal(
		           &t, v, DRE_MONEY_SCALE, DRE_DECIMAL_MAX_DIGITS)
		        != DRE_OK)
			return dre_docapi_invalid(&r->d, "totalAmount",
			    "totalAmount must be a decimal with at most 2 "
			    "decimals");
		if (t < 0)
			return dre_docapi_invalid(&r->d, "totalAmount",
			    "totalAmount must not be negative");
		b->total = t;
	} else if (full) {
		return dre_docapi_invalid(
		    &r->d, "totalAmount", "totalAmount is required");
	}
	if (!str_field(r, doc, "currency", 3, &s))
		return false;
	if (s != NULL) {
		if (strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A'
		    || s[1] > 'Z' || s[2] < 'A' || s[2] > 'Z')
			return dre_docapi_invalid(&r->d, "currency",
			    "currency must be an ISO 4217 code (EUR)");
		if (b->consumed != 0 && b->currency != NULL
		    && strcmp(b->currency, s) != 0) {
			dre_rpc_reply_error(r->d.rep, 409, "CONFLICT",
			    "currency",
			    "the currency of a budget with consumption "
			    "cannot change");
			return false;
		}
		b->currency = s;
	}
	if (!time_field(
	        r, doc, "validFrom", &b->has_valid_from, &b->valid_from)
	    || !time_field(r, doc, "validTo", &b->has_valid_to, &b->valid_to))
		return false;
	if (b->has_valid_from && b->has_valid_to
	    && b->valid_to < b->valid_from)
		return dre_docapi_invalid(
		    &r->d, "validTo", "validTo is before validFrom");
	v = dre_json_get(doc, "thresholds");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_ARRAY || v->len > BUD_MAX_THRESHOLDS)
			return dre_docapi_invalid(&r->d, "thresholds",
			    "thresholds must be an array of at most 16 whole "
			    "percentages");
		int32_t *t = dre_arena_get(r->d.a, (v->len + 1) * sizeof(*t));
		size_t   n = 0;
		if (t == NULL) {
			dre_docapi_internal(&r->d, DRE_ENOMEM);
			return false;
		}
		for (const dre_json *e = v->child; e != NULL; e = e->next) {
			int64_t pct = 0;
			char    tg[32];
			snprintf(tg, sizeof(tg), "thresholds[%zu]", n);
			if (dre_json_int(&pct, e, 1, 100) != DRE_OK)
				return dre_docapi_invalid(&r->d, tg,
				    "a threshold is a whole percentage 1-100");
			for (size_t k = 0; k < n; k++)
				if (t[k] == pct)
					return dre_docapi_invalid(&r->d, tg,
					    "threshold listed twice");
			t[n++] = (int32_t) pct;
		}
		qsort(t, n, sizeof(*t), i32_cmp);
		b->thresholds = t;
		b->n_thresholds = n;
	}
	return true;
}

// ---- handlers ------------------------------------------------------------

static void
h_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (!req_begin(&r, svc, call, rep))
		return;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	Dre__BudgetRecord b = DRE__BUDGET_RECORD__INIT;
	char             *id = NULL;
	if (!str_field(&r, doc, "id", 36, &id))
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
	b.id = id;
	b.currency = "EUR";
	b.thresholds = (int32_t *) default_thresholds;
	b.n_thresholds = 3;
	if (!apply_doc(&r, doc, &b, true))
		goto out;
	int64_t now = dre_now_ms();
	b.created_at = b.modified_at = now;

	pthread_mutex_lock(&r.s->mu);
	Dre__BudgetRecord *old = NULL;
	dre_err err = bud_get(r.s, NULL, r.d.a, call->tenant, id, &old);
	if (err == DRE_OK) {
		pthread_mutex_unlock(&r.s->mu);
		dre_rpc_reply_error(rep, 409, "CONFLICT", "id",
		    "budget %s already exists", id);
		goto out;
	}
	dre_batch *wb = dre_batch_alloc();
	bud_change c;
	bud_retotal(&b, b.total, r.d.a, &c); // thresholds already reached
	if (bud_exhausted(&b)) {
		b.has_exhausted_at = true;
		b.exhausted_at = now;
	}
	err = wb == NULL
	    ? DRE_ENOMEM
	    : bud_status_changed(r.s, wb, call->tenant, &b, NULL, now);
	if (err == DRE_OK)
		err = bud_put(r.s, wb, r.d.a, call->tenant, &b);
	if (err == DRE_OK)
		err = audit_put(&r, wb, b.id, NULL, &b);
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, wb, !dre_ijob_enlist(wb));
	pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(wb);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_outbox_kick(r.s->ob);
	changes_header(rep, b.id, b.version);
	reply_doc(&r, 201, &b);
	etag_set(&r, &b);
out:
	dre_docapi_end(&r.d);
}

static void
h_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	const char *id = dre_rpc_param(call, "id");
	if (!req_begin(&r, svc, call, rep))
		return;
	Dre__BudgetRecord *b = NULL;
	dre_err            err
	    = bud_get(r.s, NULL, r.d.a, call->tenant, id ? id : "", &b);
	if (err == DRE_ENOTFOUND)
		dre_rpc_reply_error(
		    rep, 404, "NOT_FOUND", NULL, "no budget %s", id ? id : "");
	else if (err != DRE_OK)
		dre_docapi_internal(&r.d, err);
	else {
		reply_doc(&r, 200, b);
		etag_set(&r, b);
	}
	dre_docapi_end(&r.d);
}

// What a list query can use (common/include/dre/odata.h): the scalar
// members for $filter and $orderby, all of them for $select.
static const char *const list_scalars[] = { "id", "name", "description",
	"totalAmount", "consumedAmount", "remainingAmount", "currency",
	"utilizationPct", "status", "validFrom", "validTo",
	"transactionsCount", "exhaustedAt", "createdAt", "modifiedAt" };
static const char *const list_members[]
    = { "id", "name", "description", "totalAmount", "consumedAmount",
	      "remainingAmount", "currency", "utilizationPct", "status",
	      "validFrom", "validTo", "transactionsCount", "exhaustedAt",
	      "createdAt", "modifiedAt", "thresholds", "thresholdsCrossed" };

static void
h_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req              r;
	int64_t          count = 0;
	dre_odata       *q = NULL;
	dre_odata_error  qerr;
	dre_odata_fields qf = { list_scalars,
		sizeof list_scalars / sizeof list_scalars[0], list_members,
		sizeof list_members / sizeof list_members[0] };
	dre_arena       *docs = NULL;
	dre_odata_list   kept = { 0 };
	dre_buf          vals = { 0 };
	if (!req_begin(&r, svc, call, rep))
		return;
	dre_err err = dre_odata_parse(
	    &q, r.d.a, call, &qf, TOP_DEFAULT, TOP_MAX, &qerr);
	if (err == DRE_EINVAL) {
		dre_docapi_invalid(&r.d, qerr.target, "%s", qerr.message);
		goto out;
	}
	if (err != DRE_OK || (docs = dre_arena_alloc(0)) == NULL) {
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	char   prefix[256];
	size_t plen = bud_key(prefix, sizeof(prefix), call->tenant, "");
	dre_store_iter *it = NULL;
	if (plen == 0
	    || dre_store_iter_open(&it, r.s->st, BUD_CF_BUDGETS, prefix, plen)
	        != DRE_OK) {
		dre_docapi_internal(&r.d, DRE_ESTORE);
		goto out;
	}
	// Budgets are few: each is rendered, parsed, filtered and kept for
	// sorting; the page is written from what was kept.
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		Dre__BudgetRecord *b = dre__budget_record__unpack(
		    NULL, vl, (const uint8_t *) v);
		if (b == NULL)
			continue;
		dre_buf   one = { 0 };
		dre_jsonw w;
		dre_jsonw_init(&w, &one);
		render(&w, b);
		dre__budget_record__free_unpacked(b, NULL);
		char     *text = one.oom
		        ? NULL
		        : dre_arena_strndup(docs, one.data, one.len);
		size_t    tl = one.len;
		dre_json *root = NULL;
		dre_buf_free(&one);
		if (text == NULL
		    || dre_json_parse(
		           &root, docs, text, tl, DRE_JSON_MAX_DEPTH, NULL)
		        != DRE_OK
		    || !dre_odata_keep(q, &kept, root, text, tl))
			continue;
	}
	dre_store_iter_close(it);
	count = dre_odata_page(q, &kept, &vals);
	dre_docapi_reply_list(&r.d, count, &vals);
out:
	free(kept.v);
	dre_arena_free(docs);
	dre_buf_free(&vals);
	dre_docapi_end(&r.d);
}

static void
h_update(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	const char *id = dre_rpc_param(call, "id");
	const char *patch = dre_rpc_param(call, "patch");
	if (!req_begin(&r, svc, call, rep))
		return;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *bid = dre_json_get(doc, "id");
	if (dre_json_is(bid, DRE_JSON_STRING) && id != NULL
	    && strcmp(bid->str, id) != 0) {
		dre_docapi_invalid(&r.d, "id", "the id cannot change");
		goto out;
	}
	pthread_mutex_lock(&r.s->mu);
	Dre__BudgetRecord *b = NULL;
	dre_err            err
	    = bud_get(r.s, NULL, r.d.a, call->tenant, id ? id : "", &b);
	if (err == DRE_ENOTFOUND) {
		pthread_mutex_unlock(&r.s->mu);
		dre_rpc_reply_error(
		    rep, 404, "NOT_FOUND", NULL, "no budget %s", id ? id : "");
		goto out;
	}
	if (err != DRE_OK) {
		pthread_mutex_unlock(&r.s->mu);
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	if (!if_match_ok(&r, b)) {
		pthread_mutex_unlock(&r.s->mu);
		goto out;
	}
	int64_t old_total = b->total;
	bool    full = patch == NULL || strcmp(patch, "1") != 0;
	dre_buf before = { 0 };
	doc_of(&before, b);
	if (!apply_doc(&r, doc, b, full)) {
		pthread_mutex_unlock(&r.s->mu);
		dre_buf_free(&before);
		goto out;
	}
	int64_t now = dre_now_ms();
	int64_t total = b->total;
	b->total = old_total;
	b->revision = (b->has_revision ? b->revision : 0) + 1;
	b->has_revision = true;
	bud_change c;
	bud_retotal(b, total, r.d.a, &c);
	b->modified_at = now;
	if (c.exhausted_now) {
		b->has_exhausted_at = true;
		b->exhausted_at = now;
	} else if (c.active_now) {
		b->has_exhausted_at = false;
	}
	dre_batch *wb = dre_batch_alloc();
	err = wb == NULL ? DRE_ENOMEM : DRE_OK;
	bool status_changed = c.exhausted_now || c.active_now;
	if (err == DRE_OK && status_changed)
		err = bud_status_changed(r.s, wb, call->tenant, b, NULL, now);
	if (err == DRE_OK)
		err = bud_put(r.s, wb, r.d.a, call->tenant, b);
	if (err == DRE_OK)
		err = audit_put(&r, wb, b->id, &before, b);
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, wb, !dre_ijob_enlist(wb));
	pthread_mutex_unlock(&r.s->mu);
	dre_buf_free(&before);
	dre_batch_free(wb);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_outbox_kick(r.s->ob);
	if (status_changed)
		changes_header(rep, b->id, b->version);
	reply_doc(&r, 200, b);
	etag_set(&r, b);
out:
	dre_docapi_end(&r.d);
}

static void
h_delete(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	const char *id = dre_rpc_param(call, "id");
	if (!req_begin(&r, svc, call, rep))
		return;
	pthread_mutex_lock(&r.s->mu);
	Dre__BudgetRecord *b = NULL;
	dre_err            err
	    = bud_get(r.s, NULL, r.d.a, call->tenant, id ? id : "", &b);
	if (err == DRE_ENOTFOUND) {
		pthread_mutex_unlock(&r.s->mu);
		dre_rpc_reply_error(
		    rep, 404, "NOT_FOUND", NULL, "no budget %s", id ? id : "");
		goto out;
	}
	if (err == DRE_OK && !if_match_ok(&r, b)) {
		pthread_mutex_unlock(&r.s->mu);
		goto out;
	}
	char   key[256];
	size_t kl = bud_key(key, sizeof(key), call->tenant, b ? b->id : "");
	dre_batch *wb = dre_batch_alloc();
	if (err == DRE_OK)
		err = wb == NULL ? DRE_ENOMEM
		                 : bud_status_changed(r.s, wb, call->tenant, b,
		                     "DELETED", dre_now_ms());
	if (err == DRE_OK) {
		dre_buf before = { 0 };
		doc_of(&before, b);
		dre_batch_delete(wb, r.s->st, BUD_CF_BUDGETS, key, kl);
		err = audit_put(&r, wb, b->id, &before, NULL);
		dre_buf_free(&before);
	}
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, wb, !dre_ijob_enlist(wb));
	pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(wb);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_outbox_kick(r.s->ob);
	changes_header(rep, b->id, b->version);
	rep->status = 200;
out:
	dre_docapi_end(&r.d);
}

// budget.AuditLogs.list: the budgets' audit records, for the gateway's
// merge of GET /api/v1/AuditLogs.
static void
h_audit_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	bud *s = svc;
	dre_audit_list_call(&bud_api, s->st, BUD_CF_AUDIT, 0, call, rep);
}

// ---- snapshot --------------------------------------------------------------

static void
h_snapshot(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	bud                        *s = svc;
	Dre__BudgetSnapshotResponse out = DRE__BUDGET_SNAPSHOT_RESPONSE__INIT;
	enum { PARTS_MAX = 1024 };
	dre_arena *a = dre_arena_alloc(0);
	if (a == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	// Watermarks first: every change after the states read below is at
	// or past them (a replay is harmless: versions).
	int64_t           *high = dre_arena_get(a, PARTS_MAX * sizeof(*high));
	Dre__TopicOffset **offs = dre_arena_get(a, PARTS_MAX * sizeof(*offs));
	size_t             noffs = 0, np = 0;
	if (high != NULL && offs != NULL
	    && dre_kvlist_get(s->kafka, "bootstrap.servers") != NULL
	    && dre_bus_topic_ends(s->kafka, DRE_TOPIC_BUDGET_STATUS, high,
	           PARTS_MAX, &np, s->kafka_timeout_ms)
	        != DRE_OK) {
		dre_warn("snapshot without offsets");
		np = 0;
	}
	for (size_t p = 0; p < np; p++) {
		Dre__TopicOffset *o = dre_arena_get(a, sizeof(*o));
		if (o == NULL)
			break;
		dre__topic_offset__init(o);
		o->topic = DRE_TOPIC_BUDGET_STATUS;
		o->partition = (int32_t) p;
		o->offset = high[p];
		offs[noffs++] = o;
	}
	out.offsets = offs;
	out.n_offsets = noffs;

	size_t          cap = 0;
	dre_store_iter *it = NULL;
	pthread_mutex_lock(&s->mu);
	if (dre_store_iter_open(&it, s->st, BUD_CF_BUDGETS, NULL, 0)
	    != DRE_OK) {
		pthread_mutex_unlock(&s->mu);
		dre_arena_free(a);
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL, "store");
		return;
	}
	pthread_mutex_unlock(&s->mu);
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		size_t lt = strnlen(k, kl);
		if (lt >= kl)
			continue;
		Dre__BudgetRecord *b = dre__budget_record__unpack(
		    NULL, vl, (const uint8_t *) v);
		if (b == NULL)
			continue;
		if (out.n_budgets == cap) {
			size_t             nc = cap ? cap * 2 : 64;
			Dre__BudgetState **nv
			    = dre_arena_get(a, nc * sizeof(*nv));
			if (nv != NULL && cap > 0)
				memcpy(nv, out.budgets, cap * sizeof(*nv));
			out.budgets = nv;
			cap = nv != NULL ? nc : 0;
		}
		Dre__BudgetState *st = dre_arena_get(a, sizeof(*st));
		if (out.budgets == NULL || st == NULL) {
			dre__budget_record__free_unpacked(b, NULL);
			break;
		}
		dre__budget_state__init(st);
		st->tenant = dre_arena_strndup(a, k, lt);
		st->budget_id = dre_arena_strdup(a, b->id);
		st->version = b->version;
		st->exhausted = bud_exhausted(b);
		out.budgets[out.n_budgets++] = st;
		dre__budget_record__free_unpacked(b, NULL);
	}
	dre_store_iter_close(it);
	size_t len = dre__budget_snapshot_response__get_packed_size(&out);
	dre_buf_reserve(&rep->body, len + 1);
	if (!rep->body.oom) {
		dre__budget_snapshot_response__pack(
		    &out, (uint8_t *) rep->body.data);
		rep->body.len = len;
	}
	dre_arena_free(a);
}

// ---- import jobs: a row of Budgets
// ------------------------------------------

static void
h_ijob(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_ijob_dispatch(((bud *) svc)->jobs, call, rep);
}

// A budget is created, or under UPSERT replaced when its id exists (the
// amount consumed so far stays: the budget's own rule for an update).
static dre_err
import_budget(void *svc, const dre_ijob_row *row, dre_ijob_result *res)
{
	dre_ijob_row_key(row, "id", res);
	if (row->mode == DRE_IJOB_UPSERT && res->key[0]) {
		dre_ijob_result probe = { 0 };
		dre_err         err
		    = dre_ijob_run(h_update, svc, row, res->key, "id", &probe);
		if (!(err == DRE_EINVAL && probe.status == 404)) {
			*res = probe;
			return err;
		}
	}
	res->created = true;
	return dre_ijob_run(h_create, svc, row, NULL, "id", res);
}

const dre_ijob_entity bud_imports[] = {
	{ "Budgets", import_budget, NULL },
	{ NULL, NULL, NULL },
};

const dre_rpc_route bud_routes[] = {
	{ "budget.Budgets.create", h_create },
	// Import jobs (dre/importjob.h): bud_imports below.
	{ "budget.ImportJobs.create", h_ijob },
	{ "budget.ImportJobs.submit", h_ijob },
	{ "budget.ImportJobs.append", h_ijob },
	{ "budget.ImportJobs.complete", h_ijob },
	{ "budget.ImportJobs.abort", h_ijob },
	{ "budget.ImportJobs.get", h_ijob },
	{ "budget.ImportJobs.list", h_ijob },
	{ "budget.ImportJobs.cancel", h_ijob },
	{ "budget.ImportJobErrors.list", h_ijob },
	{ "budget.ImportJobItems.list", h_ijob },
	{ "budget.Budgets.list", h_list },
	{ "budget.Budgets.get", h_get },
	{ "budget.Budgets.update", h_update },
	{ "budget.Budgets.delete", h_delete },
	{ "budget.Snapshot", h_snapshot },
	{ "budget.AuditLogs.list", h_audit_list },
	{ NULL, NULL },
};
