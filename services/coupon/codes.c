// coupon/codes.c -- coupon storage and every state transition of a code.
//
// Race freedom by construction: a transition reads the code, decides with
// rules.c and writes the code, its reservation, the indexes and its event
// in one synced RocksDB batch, all while holding the stripe lock of (tenant,
// code). New codes are created under one creation lock, so "does this code
// exist?" and "insert it" cannot interleave with another creator.
//
// Index keys (CF_IDX), first byte a tag:
//   'n' tenant \0 name                 -> type id (names are unique)
//   't' tenant \0 typeId \0 CODE       -> ""      (codes of a type)
//   'u' tenant \0 customerId \0 CODE   -> ""      (codes of a customer)
//   'h' tenant \0 CODE \0 txId         -> reservationId \0 customerId (holds)
//   'r' tenant \0 CODE \0 txId         -> reservationId ("" = direct)
//   'T' tenant \0 txId \0 CODE         -> reservationId (holds of a tx)
//   'k' tenant \0 CODE \0 customerId   -> redemptions (8, big endian)
//   'x' expiresAt(8) tenant \0 resId   -> ""      (holds by expiry)
//   'v' validTo(8) tenant \0 CODE      -> ""      (codes by end of validity)
//   'f' endedAt(8) tenant \0 resId     -> ""      (finished, for retention)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coupon.h"
#include "dre/importjob.h"
#include "dre/hash.h"
#include "dre/outbox.h"
#include "dre/store.h"
#include "dre/audit.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/docapi.h" // dre_etag_match
#include "dre/log.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "dre/json.h"
#include "keys.h"

// ---- keys ---------------------------------------------------------------

size_t
cp_key_when(char *out, size_t cap, char tag, int64_t when, const char *tenant,
    const char *id)
{
	size_t lt = strlen(tenant), li = strlen(id);
	if (1 + 8 + lt + 1 + li > cap)
		return 0;
	out[0] = tag;
	dre_be64_put((unsigned char *) out + 1, when);
	memcpy(out + 9, tenant, lt);
	out[9 + lt] = '\0';
	memcpy(out + 10 + lt, id, li);
	return 10 + lt + li;
}

pthread_mutex_t *
cp_stripe(cp *s, const char *tenant, const char *code)
{
	uint32_t h = dre_fnv1a32_str(DRE_FNV32_INIT, tenant, 1);
	return &s->stripes[dre_fnv1a32_str(h, code, 0) % CP_STRIPES];
}

// ---- open / close -------------------------------------------------------

dre_err
cp_open(cp *s, const char *path, const dre_kvlist *kafka, const cp_opts *o)
{
	static const char *const cfs[] = { "types", "codes", "resv", "batches",
		"idx", "links", "outbox", "applier", "audit", "jobs" };
	dre_store_cfg cfg = { .path = path, .cfs = cfs, .ncfs = 10 };
	dre_err       err;

	memset(s, 0, sizeof *s);
	s->kafka = kafka;
	s->o = *o;
	for (int i = 0; i < CP_STRIPES; i++)
		pthread_mutex_init(&s->stripes[i], NULL);
	pthread_mutex_init(&s->create_mu, NULL);
	pthread_mutex_init(&s->types_mu, NULL);
	pthread_mutex_init(&s->rate_mu, NULL);
	pthread_mutex_init(&s->job_mu, NULL);
	pthread_cond_init(&s->job_cv, NULL);
	atomic_init(&s->stop, false);
	if ((err = dre_store_open(&s->st, &cfg)) != DRE_OK)
		return err;
	if ((err = dre_outbox_open(&s->ob, s->st, CF_OUTBOX, kafka))
	    != DRE_OK) {
		dre_store_close(s->st);
		s->st = NULL;
		return err;
	}
	dre_info("coupon store %s open", path);
	return DRE_OK;
}

void
cp_close(cp *s)
{
	dre_outbox_close(s->ob);
	s->ob = NULL;
	dre_store_close(s->st);
	s->st = NULL;
	for (int i = 0; i < CP_STRIPES; i++)
		pthread_mutex_destroy(&s->stripes[i]);
	pthread_mutex_destroy(&s->create_mu);
	pthread_mutex_destroy(&s->types_mu);
	pthread_mutex_destroy(&s->rate_mu);
	pthread_mutex_destroy(&s->job_mu);
	pthread_cond_destroy(&s->job_cv);
	free(s->rates);
	s->rates = NULL;
}

// ---- reads --------------------------------------------------------------

static dre_err
load(cp *s, int cf, const char *tenant, const char *id, char **v, size_t *vl)
{
	char   k[512];
	size_t kl = dre_key(k, sizeof k, 0, 2, tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	return dre_store_get(s->st, cf, k, kl, v, vl);
}

dre_err
cp_type_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_type *t)
{
	char     *v = NULL;
	size_t    vl = 0;
	dre_json *root = NULL;
	dre_err   err = load(s, CF_TYPES, tenant, id, &v, &vl);
	if (err != DRE_OK)
		return err;
	if (dre_json_parse(&root, a, v, vl, DRE_JSON_MAX_DEPTH, NULL) != DRE_OK
	    || cp_type_parse(t, a, root, NULL, false, NULL) != DRE_OK)
		err = DRE_ESTORE;
	free(v);
	return err;
}

dre_err
cp_type_find_name(
    cp *s, dre_arena *a, const char *tenant, const char *name, cp_type *t)
{
	char    k[1024], id[DRE_UUID_LEN + 1];
	char   *v = NULL;
	size_t  vl = 0;
	size_t  kl = dre_key(k, sizeof k, 'n', 2, tenant, name);
	dre_err err;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(s->st, CF_IDX, k, kl, &v, &vl)) != DRE_OK)
		return err;
	snprintf(id, sizeof id, "%.*s", (int) vl, v);
	free(v);
	return cp_type_load(s, a, tenant, id, t);
}

dre_err
cp_code_load(
    cp *s, dre_arena *a, const char *tenant, const char *code, cp_code *c)
{
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = load(s, CF_CODES, tenant, code, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = cp_code_parse(c, a, v, vl);
	free(v);
	return err;
}

dre_err
cp_resv_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_resv *r)
{
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = load(s, CF_RESV, tenant, id, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = cp_resv_parse(r, a, v, vl);
	free(v);
	return err;
}

dre_err
cp_batch_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_batch *b)
{
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = load(s, CF_BATCHES, tenant, id, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = cp_batch_parse(b, a, v, vl);
	free(v);
	return err;
}

// exists reports whether key k is present in cf.
static bool
exists(cp *s, int cf, const char *k, size_t kl, dre_err *errp)
{
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = dre_store_get(s->st, cf, k, kl, &v, &vl);
	free(v);
	if (errp != NULL)
		*errp = err == DRE_ENOTFOUND ? DRE_OK : err;
	return err == DRE_OK;
}

bool
cp_type_has_codes(cp *s, const char *tenant, const char *type_id)
{
	char            p[512];
	size_t          pl = dre_key(p, sizeof p, 't', 3, tenant, type_id, "");
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl;
	bool            any;
	if (pl == 0
	    || dre_store_iter_open(&it, s->st, CF_IDX, p, pl) != DRE_OK)
		return true; // when in doubt, keep the type
	any = dre_store_iter_next(it, &k, &kl, &v, &vl);
	dre_store_iter_close(it);
	return any;
}

// ---- staging ------------------------------------------------------------

static dre_err
stage_doc(cp *s, dre_batch *b, int cf, const char *tenant, const char *id,
    dre_buf *doc)
{
	char   k[512];
	size_t kl = dre_key(k, sizeof k, 0, 2, tenant, id);
	if (kl == 0)
		return DRE_ETOOBIG;
	if (doc->oom)
		return DRE_ENOMEM;
	dre_batch_put(b, s->st, cf, k, kl, doc->data, doc->len);
	return DRE_OK;
}

dre_err
cp_stage_code(cp *s, dre_batch *b, const char *tenant, cp_code *c, int64_t now)
{
	dre_buf doc = { 0 };
	c->updated_at = now;
	cp_code_write(&doc, c);
	dre_err err = stage_doc(s, b, CF_CODES, tenant, c->code, &doc);
	dre_buf_free(&doc);
	return err;
}

static dre_err
stage_resv(cp *s, dre_batch *b, const char *tenant, const cp_resv *r)
{
	dre_buf doc = { 0 };
	cp_resv_write(&doc, r);
	dre_err err = stage_doc(s, b, CF_RESV, tenant, r->id, &doc);
	dre_buf_free(&doc);
	return err;
}

void
cp_batch_stage(cp *s, dre_batch *b, const char *tenant, const cp_batch *bt)
{
	dre_buf doc = { 0 };
	cp_batch_write(&doc, bt);
	stage_doc(s, b, CF_BATCHES, tenant, bt->id, &doc);
	dre_buf_free(&doc);
}

static void
idx_put(
    cp *s, dre_batch *b, const char *k, size_t kl, const void *v, size_t vl)
{
	if (kl > 0)
		dre_batch_put(b, s->st, CF_IDX, k, kl, v, vl);
}

static void
idx_del(cp *s, dre_batch *b, const char *k, size_t kl)
{
	if (kl > 0)
		dre_batch_delete(b, s->st, CF_IDX, k, kl);
}

dre_err
cp_event_put(cp *s, dre_batch *b, const char *tenant, const cp_event *e)
{
	dre_coupon_event ev = { 0 };
	dre_buf          out = { 0 };
	char             key[512];
	dre_err          err;

	dre_uuid_v4(ev.event_id);
	ev.tenant = tenant;
	ev.occurred_at = dre_now_ms();
	ev.schema_version = 1;
	ev.type = e->type;
	ev.code = e->code;
	ev.coupon_type_id = e->type_id;
	ev.customer_id = e->customer && e->customer[0] ? e->customer : NULL;
	ev.transaction_id = e->tx && e->tx[0] ? e->tx : NULL;
	ev.reservation_id = e->res_id && e->res_id[0] ? e->res_id : NULL;
	ev.batch_id = e->batch_id && e->batch_id[0] ? e->batch_id : NULL;
	ev.count = e->count;
	ev.promotion_id
	    = e->promotion_id && e->promotion_id[0] ? e->promotion_id : NULL;
	ev.reason = e->reason;
	if ((err = dre_avro_encode_coupon(&out, &ev)) != DRE_OK) {
		dre_buf_free(&out);
		return err;
	}
	int kl = snprintf(key, sizeof key, "%s/%s", tenant,
	    e->code != NULL ? e->code : e->batch_id);
	if (kl < 0 || (size_t) kl >= sizeof key) {
		dre_buf_free(&out);
		return DRE_ETOOBIG;
	}
	dre_outbox_put(s->ob, b, DRE_TOPIC_COUPON_EVENTS, key, (size_t) kl,
	    out.data, out.len);
	dre_buf_free(&out);
	return DRE_OK;
}

// commit writes b synced and wakes the outbox relay.
static dre_err
commit(cp *s, dre_batch *b)
{
	if (dre_batch_count(b) == 0)
		return DRE_OK;
	// An import row's cursor rides in the same batch (dre/importjob.h).
	bool    in_job = dre_ijob_enlist(b);
	dre_err err = dre_store_write(s->st, b, !in_job);
	if (err == DRE_OK)
		dre_outbox_kick(s->ob);
	return err;
}

// ---- outcomes -------------------------------------------------------------

static void done(cp_outcome *o, int status, cp_reason r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
done(cp_outcome *o, int status, cp_reason r, const char *fmt, ...)
{
	va_list ap;
	o->status = status;
	o->reason = r;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof o->msg, fmt, ap);
	va_end(ap);
}

static void
refuse(cp_outcome *o, cp_reason r, const char *code)
{
	done(o, r == CP_R_NOT_FOUND ? 404 : 409, r, "coupon '%s': %s", code,
	    cp_reason_text(r));
}

static void
failed(cp_outcome *o, dre_err err)
{
	done(o, 503, CP_R_UNAVAILABLE,
	    "the coupon service could not complete "
	    "the request: %s",
	    dre_strerror(err));
}

// ---- holds ----------------------------------------------------------------

// hold_end stages the end of held reservation r of code c (state end at
// now): the reservation, its indexes, the code's hold count and, for an
// INDIVIDUAL code, RESERVED -> ACTIVE. The caller stages c.
dre_err
cp_hold_end(cp *s, dre_batch *b, const char *tenant, cp_code *c, cp_resv *r,
    cp_hold_state end, int64_t now, const char *event)
{
	char   k[512];
	size_t kl;
	r->state = end;
	r->ended_at = now;
	dre_err err = stage_resv(s, b, tenant, r);
	if (err != DRE_OK)
		return err;
	kl = dre_key(k, sizeof k, 'h', 3, tenant, c->code, r->tx);
	idx_del(s, b, k, kl);
	kl = dre_key(k, sizeof k, 'T', 3, tenant, r->tx, c->code);
	idx_del(s, b, k, kl);
	kl = cp_key_when(k, sizeof k, 'x', r->expires_at, tenant, r->id);
	idx_del(s, b, k, kl);
	kl = cp_key_when(k, sizeof k, 'f', now, tenant, r->id);
	idx_put(s, b, k, kl, "", 0);
	if (c->held > 0)
		c->held--;
	if (strcmp(c->res_id, r->id) == 0) {
		c->res_id[0] = c->res_tx[0] = '\0';
		c->res_until = 0;
		if (c->state == CP_RESERVED)
			c->state = CP_ACTIVE;
	}
	if (event == NULL)
		return DRE_OK;
	cp_event e = { .type = event,
		.code = c->code,
		.type_id = c->type_id,
		.customer = r->customer,
		.tx = r->tx,
		.res_id = r->id,
		.count = -1 };
	return cp_event_put(s, b, tenant, &e);
}

typedef struct {
	char id[DRE_UUID_LEN + 1];
	char customer[CP_ID_BYTES];
} hold_ref;

// holds_of lists the holds of a code (at most cap) into v.
static size_t
holds_of(cp *s, const char *tenant, const char *code, hold_ref *v, size_t cap,
    dre_err *errp)
{
	char            p[512];
	size_t          pl = dre_key(p, sizeof p, 'h', 3, tenant, code, "");
	dre_store_iter *it = NULL;
	const char     *k, *val;
	size_t          kl, vl, n = 0;
	*errp = DRE_OK;
	if (pl == 0)
		return 0;
	if ((*errp = dre_store_iter_open(&it, s->st, CF_IDX, p, pl)) != DRE_OK)
		return 0;
	while (n < cap && dre_store_iter_next(it, &k, &kl, &val, &vl)) {
		size_t il = strnlen(val, vl);
		snprintf(v[n].id, sizeof v[n].id, "%.*s", (int) il, val);
		snprintf(v[n].customer, sizeof v[n].customer, "%.*s",
		    il < vl ? (int) (vl - il - 1) : 0,
		    il < vl ? val + il + 1 : "");
		n++;
	}
	dre_store_iter_close(it);
	return n;
}

#define MAX_HOLDS 4096

// holds_sweep ends the holds of c whose time has passed (every hold when
// all is set, as `end`). It reads the stored holds: b must not hold ends
// of holds already (flush first).
static dre_err
holds_sweep(cp *s, dre_arena *a, dre_batch *b, const char *tenant, cp_code *c,
    int64_t now, bool all, cp_hold_state end, const char *event)
{
	dre_err   err;
	hold_ref *v = malloc(MAX_HOLDS * sizeof *v);
	if (v == NULL)
		return DRE_ENOMEM;
	size_t n = holds_of(s, tenant, c->code, v, MAX_HOLDS, &err);
	for (size_t i = 0; err == DRE_OK && i < n; i++) {
		cp_resv r;
		err = cp_resv_load(s, a, tenant, v[i].id, &r);
		if (err == DRE_ENOTFOUND) {
			err = DRE_OK;
			continue;
		}
		if (err == DRE_OK && r.state == CP_HOLD_HELD
		    && (all || r.expires_at <= now))
			err = cp_hold_end(
			    s, b, tenant, c, &r, end, now, event);
	}
	free(v);
	return err;
}

// usage_of fills what the GENERIC rules need about tx and customer.
static dre_err
usage_of(cp *s, dre_arena *a, const char *tenant, const cp_code *c,
    const cp_type *t, const char *tx, const char *customer, int64_t now,
    cp_usage *u)
{
	char    k[512];
	size_t  kl;
	dre_err err = DRE_OK;
	memset(u, 0, sizeof *u);
	if (!t->r.generic)
		return DRE_OK;
	if (tx != NULL && tx[0] != '\0') {
		char  *v = NULL;
		size_t vl = 0;
		kl = dre_key(k, sizeof k, 'h', 3, tenant, c->code, tx);
		if (kl > 0
		    && (err = dre_store_get(s->st, CF_IDX, k, kl, &v, &vl))
		        == DRE_OK) {
			char    id[DRE_UUID_LEN + 1];
			cp_resv r;
			snprintf(
			    id, sizeof id, "%.*s", (int) strnlen(v, vl), v);
			free(v);
			err = cp_resv_load(s, a, tenant, id, &r);
			u->own_hold = err == DRE_OK && r.state == CP_HOLD_HELD
			    && r.expires_at > now;
		}
		if (err != DRE_OK && err != DRE_ENOTFOUND)
			return err;
		kl = dre_key(k, sizeof k, 'r', 3, tenant, c->code, tx);
		u->own_redeemed = kl > 0 && exists(s, CF_IDX, k, kl, &err);
		if (err != DRE_OK)
			return err;
	}
	if (t->r.max_per_customer > 0 && customer != NULL
	    && customer[0] != '\0') {
		char  *v = NULL;
		size_t vl = 0;
		kl = dre_key(k, sizeof k, 'k', 3, tenant, c->code, customer);
		err = kl > 0 ? dre_store_get(s->st, CF_IDX, k, kl, &v, &vl)
		             : DRE_ENOTFOUND;
		if (err == DRE_OK && vl == 8)
			u->customer_uses
			    = dre_be64_get((const unsigned char *) v);
		free(v);
		if (err != DRE_OK && err != DRE_ENOTFOUND)
			return err;
		if (c->held > 0) {
			hold_ref *h = malloc(MAX_HOLDS * sizeof *h);
			if (h == NULL)
				return DRE_ENOMEM;
			size_t n
			    = holds_of(s, tenant, c->code, h, MAX_HOLDS, &err);
			for (size_t i = 0; i < n; i++)
				if (strcmp(h[i].customer, customer) == 0)
					u->customer_uses++;
			free(h);
			if (err != DRE_OK)
				return err;
		}
	}
	return DRE_OK;
}

// ---- validate -----------------------------------------------------------

dre_err
cp_validate(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *customer, const char *tx, int64_t at, cp_check *out)
{
	int64_t       now = dre_now_ms();
	cp_code_rules cv;
	cp_usage      u;
	dre_err       err;

	memset(out, 0, sizeof *out);
	err = cp_code_load(s, a, tenant, code, &out->code);
	if (err == DRE_OK)
		err = cp_type_load(
		    s, a, tenant, out->code.type_id, &out->type);
	if (err == DRE_ENOTFOUND) {
		out->reason = CP_R_NOT_FOUND;
		return DRE_OK;
	}
	if (err != DRE_OK)
		return err;
	cp_code_view(&out->code, &cv);
	out->valid_until = cp_effective_valid_to(&cv, &out->type.r);
	customer = cp_customer_of_use(out->code.customer, customer);
	if ((err = usage_of(
	         s, a, tenant, &out->code, &out->type, tx, customer, now, &u))
	    != DRE_OK)
		return err;
	out->reason
	    = cp_check_use(&cv, &out->type.r, at, now, tx, customer, &u);
	// A lapsed hold still counted in the GENERIC total is not a limit:
	// recount without the holds whose time has passed.
	if (out->reason == CP_R_LIMIT_REACHED && out->code.held > 0
	    && !cp_state_terminal(out->code.state)) {
		hold_ref *h = malloc(MAX_HOLDS * sizeof *h);
		if (h == NULL)
			return DRE_ENOMEM;
		size_t n = holds_of(s, tenant, code, h, MAX_HOLDS, &err);
		for (size_t i = 0; err == DRE_OK && i < n; i++) {
			cp_resv r;
			if (cp_resv_load(s, a, tenant, h[i].id, &r) == DRE_OK
			    && r.state == CP_HOLD_HELD
			    && r.expires_at <= now) {
				cv.held--;
				if (strcmp(h[i].customer,
				        customer ? customer : "")
				    == 0)
					u.customer_uses--;
			}
		}
		free(h);
		out->reason = cp_check_use(
		    &cv, &out->type.r, at, now, tx, customer, &u);
	}
	return err;
}

// ---- reserve --------------------------------------------------------------

// flush writes what b holds, with the code c as it is now, and empties b:
// later reads under the same lock see it. Nothing staged, nothing written.
static dre_err
flush(cp *s, dre_batch *b, const char *tenant, cp_code *c, int64_t now)
{
	dre_err err = DRE_OK;
	if (dre_batch_count(b) == 0)
		return DRE_OK;
	err = cp_stage_code(s, b, tenant, c, now);
	if (err == DRE_OK)
		err = commit(s, b);
	dre_batch_clear(b);
	return err;
}

// prepare loads code and type under the caller's lock and ends (writes) a
// lapsed INDIVIDUAL hold first. Answers NOT_FOUND itself.
static bool
prepare(cp *s, dre_arena *a, dre_batch *b, const char *tenant,
    const char *code, int64_t now, cp_code *c, cp_type *t, cp_outcome *out)
{
	dre_err err = cp_code_load(s, a, tenant, code, c);
	if (err == DRE_OK)
		err = cp_type_load(s, a, tenant, c->type_id, t);
	if (err == DRE_ENOTFOUND) {
		refuse(out, CP_R_NOT_FOUND, code);
		return false;
	}
	if (err == DRE_OK && c->state == CP_RESERVED && c->res_until <= now)
		err = holds_sweep(s, a, b, tenant, c, now, false,
		    CP_HOLD_EXPIRED, "COUPON_RESERVATION_EXPIRED");
	if (err == DRE_OK)
		err = flush(s, b, tenant, c, now);
	if (err != DRE_OK) {
		failed(out, err);
		return false;
	}
	return true;
}

void
cp_reserve(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *tx, const char *customer, cp_resv *r, cp_outcome *out)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	int64_t          now = dre_now_ms();
	dre_batch       *b = dre_batch_alloc();
	cp_code          c;
	cp_type          t;
	cp_code_rules    cv;
	cp_usage         u;
	char             k[512], hv[DRE_UUID_LEN + CP_ID_BYTES + 1];
	char            *v = NULL;
	size_t           kl, vl = 0;
	dre_err          err;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	pthread_mutex_lock(mu);
	if (!prepare(s, a, b, tenant, code, now, &c, &t, out))
		goto unlock;
	// A personal code presented without a customer is used as its owner's.
	customer = cp_customer_of_use(c.customer, customer);

	// The same transaction asking again gets its live reservation; its
	// lapsed one ends before a new one takes its index entry (an
	// INDIVIDUAL code's only hold was ended by prepare already).
	kl = dre_key(k, sizeof k, 'h', 3, tenant, code, tx);
	err = kl ? dre_store_get(s->st, CF_IDX, k, kl, &v, &vl)
	         : DRE_ENOTFOUND;
	if (err == DRE_OK) {
		char id[DRE_UUID_LEN + 1];
		snprintf(id, sizeof id, "%.*s", (int) strnlen(v, vl), v);
		free(v);
		err = cp_resv_load(s, a, tenant, id, r);
		if (err == DRE_OK && r->state == CP_HOLD_HELD
		    && r->expires_at > now) {
			done(out, 200, CP_R_OK,
			    "coupon '%s' is already reserved for this "
			    "transaction",
			    code);
			goto unlock;
		}
		if (err == DRE_OK && r->state == CP_HOLD_HELD)
			err = cp_hold_end(s, b, tenant, &c, r, CP_HOLD_EXPIRED,
			    now, "COUPON_RESERVATION_EXPIRED");
		if (err == DRE_OK)
			err = flush(s, b, tenant, &c, now);
	}
	if (err != DRE_OK && err != DRE_ENOTFOUND) {
		failed(out, err);
		goto unlock;
	}

	if ((err = usage_of(s, a, tenant, &c, &t, tx, customer, now, &u))
	    != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	cp_code_view(&c, &cv);
	cp_reason why = cp_check_use(&cv, &t.r, now, now, tx, customer, &u);
	if (why == CP_R_LIMIT_REACHED && c.held > 0) {
		// Lapsed holds the sweeper has not reached yet do not count.
		if ((err = holds_sweep(s, a, b, tenant, &c, now, false,
		         CP_HOLD_EXPIRED, "COUPON_RESERVATION_EXPIRED"))
		        != DRE_OK
		    || (err = flush(s, b, tenant, &c, now)) != DRE_OK
		    || (err = usage_of(
		            s, a, tenant, &c, &t, tx, customer, now, &u))
		        != DRE_OK) {
			failed(out, err);
			goto unlock;
		}
		cp_code_view(&c, &cv);
		why = cp_check_use(&cv, &t.r, now, now, tx, customer, &u);
	}
	if (why != CP_R_OK) {
		refuse(out, why, code); // nothing to write
		goto unlock;
	}

	memset(r, 0, sizeof *r);
	dre_uuid_v4(r->id);
	snprintf(r->code, sizeof r->code, "%s", code);
	memcpy(r->type_id, c.type_id, sizeof r->type_id);
	snprintf(r->tx, sizeof r->tx, "%s", tx);
	snprintf(
	    r->customer, sizeof r->customer, "%s", customer ? customer : "");
	r->state = CP_HOLD_HELD;
	r->created_at = now;
	r->expires_at = cp_hold_until(
	    now, s->o.reservation_ttl_ms, cp_effective_valid_to(&cv, &t.r));
	c.held++;
	if (!t.r.generic) {
		c.state = CP_RESERVED;
		memcpy(c.res_id, r->id, sizeof c.res_id);
		memcpy(c.res_tx, r->tx, sizeof c.res_tx);
		c.res_until = r->expires_at;
	}
	if ((err = stage_resv(s, b, tenant, r)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	size_t il = strlen(r->id), cl = strlen(r->customer);
	memcpy(hv, r->id, il + 1);
	memcpy(hv + il + 1, r->customer, cl);
	idx_put(s, b, k, kl, hv, il + 1 + cl);
	kl = dre_key(k, sizeof k, 'T', 3, tenant, tx, code);
	idx_put(s, b, k, kl, r->id, il);
	kl = cp_key_when(k, sizeof k, 'x', r->expires_at, tenant, r->id);
	idx_put(s, b, k, kl, "", 0);
	// The reservation, its indexes and the code in one synced batch.
	if ((err = flush(s, b, tenant, &c, now)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "coupon '%s' reserved for transaction '%.*s'",
	    code, DRE_UTF8_CUT(tx, 50));
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// ---- redeem / cancel ----------------------------------------------------

#define RELEASE_MAX 64

size_t
cp_release_tx(
    cp *s, dre_arena *a, const char *tenant, const char *tx, cp_outcome *out)
{
	char            p[512], ids[RELEASE_MAX][DRE_UUID_LEN + 1];
	size_t          pl = dre_key(p, sizeof p, 'T', 3, tenant, tx, "");
	dre_store_iter *it = NULL;
	const char     *k, *val;
	size_t          kl, vl, n = 0, released = 0;
	dre_err         err;

	done(out, 200, CP_R_OK, "transaction '%.*s' holds no coupon",
	    DRE_UTF8_CUT(tx, 50));
	if (pl == 0)
		return 0;
	if ((err = dre_store_iter_open(&it, s->st, CF_IDX, p, pl)) != DRE_OK) {
		failed(out, err);
		return 0;
	}
	while (n < RELEASE_MAX && dre_store_iter_next(it, &k, &kl, &val, &vl))
		snprintf(ids[n++], sizeof ids[0], "%.*s",
		    (int) (vl < DRE_UUID_LEN ? vl : DRE_UUID_LEN), val);
	dre_store_iter_close(it);
	for (size_t i = 0; i < n; i++) {
		cp_outcome o;
		cp_cancel(s, a, tenant, ids[i], &o);
		if (o.status != 200 && o.status != 409) {
			*out = o;
			return released;
		}
		released += o.status == 200;
	}
	if (released > 0)
		done(out, 200, CP_R_OK,
		    "%zu reservation(s) of transaction '%.*s' released",
		    released, DRE_UTF8_CUT(tx, 50));
	return released;
}

// resv_lock finds reservation id and locks its code; NULL (answered) when
// it does not exist.
static pthread_mutex_t *
resv_lock(cp *s, dre_arena *a, const char *tenant, const char *id, cp_resv *r,
    cp_outcome *out)
{
	dre_err err = cp_resv_load(s, a, tenant, id, r);
	if (err == DRE_ENOTFOUND) {
		done(out, 404, CP_R_NOT_FOUND, "reservation '%s' not found",
		    id);
		return NULL;
	}
	if (err != DRE_OK) {
		failed(out, err);
		return NULL;
	}
	pthread_mutex_t *mu = cp_stripe(s, tenant, r->code);
	pthread_mutex_lock(mu);
	// Read again under the lock: it may have changed meanwhile.
	if ((err = cp_resv_load(s, a, tenant, id, r)) != DRE_OK) {
		pthread_mutex_unlock(mu);
		failed(out, err);
		return NULL;
	}
	return mu;
}

void
cp_redeem(cp *s, dre_arena *a, const char *tenant, const char *res_id,
    const char *tx, cp_outcome *out)
{
	int64_t          now = dre_now_ms();
	cp_resv          r;
	cp_code          c;
	cp_type          t;
	char             k[512];
	size_t           kl;
	dre_err          err;
	dre_batch       *b = dre_batch_alloc();
	pthread_mutex_t *mu;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	if ((mu = resv_lock(s, a, tenant, res_id, &r, out)) == NULL) {
		dre_batch_free(b);
		return;
	}
	if (strcmp(r.tx, tx) != 0) {
		done(out, 409, CP_R_RESERVED_BY_OTHER,
		    "reservation '%s' belongs to another transaction", res_id);
		goto unlock;
	}
	switch (r.state) {
	case CP_HOLD_REDEEMED:
		done(out, 409, CP_R_REDEEMED,
		    "reservation '%s' has already been redeemed", res_id);
		goto unlock;
	case CP_HOLD_RELEASED:
		done(out, 409, CP_R_CANCELLED,
		    "reservation '%s' has been cancelled", res_id);
		goto unlock;
	case CP_HOLD_EXPIRED:
		done(out, 409, CP_R_EXPIRED, "reservation '%s' has expired",
		    res_id);
		goto unlock;
	case CP_HOLD_HELD:
		break;
	}
	err = cp_code_load(s, a, tenant, r.code, &c);
	if (err == DRE_OK)
		err = cp_type_load(s, a, tenant, c.type_id, &t);
	if (err != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	if (r.expires_at <= now) {
		err = cp_hold_end(s, b, tenant, &c, &r, CP_HOLD_EXPIRED, now,
		    "COUPON_RESERVATION_EXPIRED");
		if (err == DRE_OK)
			err = cp_stage_code(s, b, tenant, &c, now);
		if (err == DRE_OK)
			err = commit(s, b);
		if (err != DRE_OK)
			failed(out, err);
		else
			done(out, 409, CP_R_EXPIRED,
			    "reservation '%s' has expired", res_id);
		goto unlock;
	}
	if ((err = cp_hold_end(
	         s, b, tenant, &c, &r, CP_HOLD_REDEEMED, now, NULL))
	    != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	c.redemptions++;
	c.redeemed_at = now;
	if (!t.r.generic
	    || (t.r.max_redemptions > 0
	        && c.redemptions >= t.r.max_redemptions))
		c.state = CP_REDEEMED;
	kl = dre_key(k, sizeof k, 'r', 3, tenant, c.code, r.tx);
	idx_put(s, b, k, kl, r.id, strlen(r.id));
	if (r.customer[0] != '\0') {
		char         *v = NULL;
		size_t        vl = 0;
		unsigned char be[8];
		int64_t       n = 0;
		kl = dre_key(k, sizeof k, 'k', 3, tenant, c.code, r.customer);
		if (kl > 0
		    && dre_store_get(s->st, CF_IDX, k, kl, &v, &vl) == DRE_OK
		    && vl == 8)
			n = dre_be64_get((const unsigned char *) v);
		free(v);
		dre_be64_put(be, n + 1);
		idx_put(s, b, k, kl, be, 8);
	}
	cp_event e = { .type = "COUPON_REDEEMED",
		.code = c.code,
		.type_id = c.type_id,
		.customer = r.customer,
		.tx = r.tx,
		.res_id = r.id,
		.count = c.redemptions };
	if ((err = cp_event_put(s, b, tenant, &e)) != DRE_OK
	    || (err = cp_stage_code(s, b, tenant, &c, now)) != DRE_OK
	    || (err = commit(s, b)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "coupon '%s' redeemed", c.code);
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

void
cp_cancel(cp *s, dre_arena *a, const char *tenant, const char *res_id,
    cp_outcome *out)
{
	int64_t          now = dre_now_ms();
	cp_resv          r;
	cp_code          c;
	dre_err          err;
	dre_batch       *b = dre_batch_alloc();
	pthread_mutex_t *mu;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	if ((mu = resv_lock(s, a, tenant, res_id, &r, out)) == NULL) {
		dre_batch_free(b);
		return;
	}
	switch (r.state) {
	case CP_HOLD_REDEEMED:
		done(out, 409, CP_R_REDEEMED,
		    "reservation '%s' has been redeemed and cannot be "
		    "cancelled",
		    res_id);
		goto unlock;
	case CP_HOLD_RELEASED:
	case CP_HOLD_EXPIRED:
		done(out, 200, CP_R_OK,
		    "reservation '%s' was already %s; coupon '%s' is not held",
		    res_id,
		    r.state == CP_HOLD_RELEASED ? "released" : "expired",
		    r.code);
		goto unlock;
	case CP_HOLD_HELD:
		break;
	}
	if ((err = cp_code_load(s, a, tenant, r.code, &c)) != DRE_OK
	    || (err = cp_hold_end(
	            s, b, tenant, &c, &r, CP_HOLD_RELEASED, now, NULL))
	        != DRE_OK
	    || (err = cp_stage_code(s, b, tenant, &c, now)) != DRE_OK
	    || (err = commit(s, b)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK,
	    "reservation '%s' released; coupon '%s' is "
	    "available again",
	    res_id, r.code);
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// ---- activate / admin cancel ---------------------------------------------

void
cp_activate(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *customer, cp_code *c, cp_outcome *out)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	int64_t          now = dre_now_ms();
	dre_batch       *b = dre_batch_alloc();
	cp_type          t;
	cp_code_rules    cv;
	dre_err          err;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	pthread_mutex_lock(mu);
	if (!prepare(s, a, b, tenant, code, now, c, &t, out))
		goto unlock;
	cp_code_view(c, &cv);
	cp_reason why = cp_check_activate(&cv, &t.r, now, customer);
	if (why != CP_R_OK) {
		refuse(out, why, code);
		goto unlock;
	}
	if (c->state != CP_CREATED) {
		// Activated before (a retry of the app): nothing to write.
		done(out, 200, CP_R_OK, "coupon '%s' is already active", code);
		goto unlock;
	}
	c->state = CP_ACTIVE;
	c->activated_at = now;
	cp_event e = { .type = "COUPON_ACTIVATED",
		.code = c->code,
		.type_id = c->type_id,
		.customer = customer,
		.count = -1 };
	if ((err = cp_event_put(s, b, tenant, &e)) != DRE_OK
	    || (err = cp_stage_code(s, b, tenant, c, now)) != DRE_OK
	    || (err = commit(s, b)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "coupon '%s' activated", code);
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// end_code moves c to a terminal state (CANCELLED or EXPIRED), ending its
// holds, with its event; why NULL = the default reason of the state.
static dre_err
end_code(cp *s, dre_arena *a, dre_batch *b, const char *tenant, cp_code *c,
    cp_state to, int64_t now, const char *why)
{
	char    k[512];
	size_t  kl;
	dre_err err = holds_sweep(s, a, b, tenant, c, now, true,
	    to == CP_EXPIRED ? CP_HOLD_EXPIRED : CP_HOLD_RELEASED, NULL);
	if (err != DRE_OK)
		return err;
	c->state = to;
	c->held = 0;
	if (c->valid_to != 0) {
		kl = cp_key_when(
		    k, sizeof k, 'v', c->valid_to, tenant, c->code);
		idx_del(s, b, k, kl);
	}
	cp_event e = { .type
		= to == CP_EXPIRED ? "COUPON_EXPIRED" : "COUPON_CANCELLED",
		.code = c->code,
		.type_id = c->type_id,
		.customer = c->customer,
		.count = c->redemptions,
		.reason = why != NULL  ? why
		    : to == CP_EXPIRED ? "validTo passed"
		                       : "cancelled by an administrator" };
	if ((err = cp_event_put(s, b, tenant, &e)) != DRE_OK)
		return err;
	return cp_stage_code(s, b, tenant, c, now);
}

void
cp_admin_cancel(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *actor, const char *if_match, cp_code *c, cp_outcome *out)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	int64_t          now = dre_now_ms();
	dre_batch       *b = dre_batch_alloc();
	cp_type          t;
	dre_err          err;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	pthread_mutex_lock(mu);
	// The precondition is on the code as it was read (before prepare ends
	// a lapsed hold: that is the sweeper's change, not this request's).
	if (if_match != NULL
	    && (err = cp_code_load(s, a, tenant, code, c)) != DRE_ENOTFOUND) {
		char tag[CP_ETAG_BYTES];
		if (err != DRE_OK) {
			failed(out, err);
			goto unlock;
		}
		cp_code_etag(tag, c);
		if (!dre_etag_match(if_match, tag)) {
			done(out, 412, CP_R_OK, "%s", tag);
			goto unlock;
		}
	}
	if (!prepare(s, a, b, tenant, code, now, c, &t, out))
		goto unlock;
	if (cp_state_terminal(c->state)) {
		done(out, 409,
		    c->state == CP_REDEEMED      ? CP_R_REDEEMED
		        : c->state == CP_EXPIRED ? CP_R_EXPIRED
		                                 : CP_R_CANCELLED,
		    "coupon '%s' is %s and cannot be cancelled", code,
		    cp_state_name(c->state));
		goto unlock;
	}
	dre_buf before = { 0 }, after = { 0 };
	cp_code_write(&before, c);
	if ((err = end_code(s, a, b, tenant, c, CP_CANCELLED, now, NULL))
	    == DRE_OK) {
		cp_code_write(&after, c);
		err = dre_audit_change(b, s->st, CF_AUDIT, tenant, actor,
		    "CouponCode", c->code, NULL, &before, &after, NULL);
	}
	dre_buf_free(&before);
	dre_buf_free(&after);
	if (err != DRE_OK || (err = commit(s, b)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "coupon '%s' cancelled", code);
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

void
cp_voucher_withdraw(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *customer, cp_code *c, cp_outcome *out)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	int64_t          now = dre_now_ms();
	dre_batch       *b = dre_batch_alloc();
	cp_type          t;
	dre_err          err;

	if (b == NULL) {
		failed(out, DRE_ENOMEM);
		return;
	}
	pthread_mutex_lock(mu);
	if (!prepare(s, a, b, tenant, code, now, c, &t, out))
		goto unlock;
	if (strcmp(c->customer, customer) != 0) {
		refuse(out, CP_R_OTHER_CUSTOMER, code);
		goto unlock;
	}
	if (c->state == CP_CANCELLED) { // a retry: withdrawn already
		done(out, 200, CP_R_OK, "coupon '%s' was withdrawn already",
		    code);
		goto unlock;
	}
	if (cp_state_terminal(c->state)) {
		refuse(out,
		    c->state == CP_REDEEMED ? CP_R_REDEEMED : CP_R_EXPIRED,
		    code);
		goto unlock;
	}
	if (c->state == CP_RESERVED) { // a till holds it right now
		refuse(out, CP_R_RESERVED_BY_OTHER, code);
		goto unlock;
	}
	if ((err = end_code(s, a, b, tenant, c, CP_CANCELLED, now,
	         "reward voucher redeemed through the loyalty service"))
	        != DRE_OK
	    || (err = commit(s, b)) != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "coupon '%s' withdrawn", code);
unlock:
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// stripes_lock takes the stripes of every code of v: the first one
// waiting, the others only when free (the confirm applier holds several in
// its own order), else all are let go and taken again a moment later.
// *mus gets the distinct stripes; false when they could not be had.
static bool
stripes_lock(cp *s, const char *tenant, const cp_ext_redeem *v, size_t n,
    pthread_mutex_t **mus, size_t *nmu)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_t *mu = cp_stripe(s, tenant, v[i].code);
		bool             seen = false;
		for (size_t k = 0; k < m && !seen; k++)
			seen = mus[k] == mu;
		if (!seen)
			mus[m++] = mu;
	}
	*nmu = m;
	for (int tries = 0; tries < 2000; tries++) {
		size_t got = 1;
		pthread_mutex_lock(mus[0]);
		while (got < m && pthread_mutex_trylock(mus[got]) == 0)
			got++;
		if (got == m)
			return true;
		while (got > 0)
			pthread_mutex_unlock(mus[--got]);
		nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
	return false;
}

void
cp_redeem_external(cp *s, dre_arena *a, const char *tenant, cp_ext_redeem *v,
    size_t n, const char *const *type_ids, size_t ntypes, cp_outcome *out)
{
	int64_t           now = dre_now_ms();
	dre_batch        *b = dre_batch_alloc();
	pthread_mutex_t **mus = calloc(n + 1, sizeof *mus);
	size_t            nmu = 0;
	dre_err           err = DRE_OK;
	char              k[512];
	size_t            kl;

	if (b == NULL || mus == NULL) {
		failed(out, DRE_ENOMEM);
		goto end;
	}
	if (!stripes_lock(s, tenant, v, n, mus, &nmu)) {
		failed(out, DRE_ETIMEOUT);
		nmu = 0;
		goto end;
	}
	// Every code first: one that cannot be redeemed changes nothing.
	for (size_t i = 0; i < n; i++) {
		cp_type t;
		bool    ours = false;
		if (!prepare(
		        s, a, b, tenant, v[i].code, now, &v[i].c, &t, out))
			goto unlock;
		for (size_t j = 0; j < ntypes && !ours; j++)
			ours = strcmp(type_ids[j], v[i].c.type_id) == 0;
		if (!ours) {
			refuse(out, CP_R_NOT_FOUND, v[i].code);
			goto unlock;
		}
		if (cp_state_terminal(v[i].c.state)) {
			done(out, 409,
			    v[i].c.state == CP_REDEEMED      ? CP_R_REDEEMED
			        : v[i].c.state == CP_EXPIRED ? CP_R_EXPIRED
			                                     : CP_R_CANCELLED,
			    "code '%s' is %s already", v[i].code,
			    cp_state_name(v[i].c.state));
			goto unlock;
		}
	}
	for (size_t i = 0; i < n && err == DRE_OK; i++) {
		cp_code *c = &v[i].c;
		// A till's hold ends: the code was used elsewhere.
		err = holds_sweep(
		    s, a, b, tenant, c, now, true, CP_HOLD_RELEASED, NULL);
		if (err != DRE_OK)
			break;
		c->state = CP_REDEEMED;
		c->redemptions++;
		c->redeemed_at = v[i].at > 0 ? v[i].at : now;
		if (c->valid_to != 0) {
			kl = cp_key_when(
			    k, sizeof k, 'v', c->valid_to, tenant, c->code);
			idx_del(s, b, k, kl);
		}
		kl = dre_key(k, sizeof k, 'r', 3, tenant, c->code,
		    v[i].order != NULL ? v[i].order : "");
		idx_put(s, b, k, kl, CP_RES_EXTERNAL, strlen(CP_RES_EXTERNAL));
		cp_event e = { .type = "COUPON_REDEEMED",
			.code = c->code,
			.type_id = c->type_id,
			.customer = c->customer,
			.tx = v[i].order,
			.count = c->redemptions,
			.reason = "redeemed by an external system" };
		if ((err = cp_event_put(s, b, tenant, &e)) == DRE_OK)
			err = cp_stage_code(s, b, tenant, c, now);
	}
	if (err == DRE_OK)
		err = commit(s, b);
	if (err != DRE_OK) {
		failed(out, err);
		goto unlock;
	}
	done(out, 200, CP_R_OK, "%zu codes redeemed", n);
unlock:
	while (nmu > 0)
		pthread_mutex_unlock(mus[--nmu]);
end:
	free(mus);
	dre_batch_free(b);
}

// cp_expire_code expires code if its validity ended before now; when is
// the time of the index entry that led here (sweeper).
void
cp_expire_code(cp *s, dre_arena *a, const char *tenant, const char *code,
    int64_t when, int64_t now)
{
	pthread_mutex_t *mu = cp_stripe(s, tenant, code);
	dre_batch       *b = dre_batch_alloc();
	cp_code          c;
	char             k[512];
	size_t           kl;
	dre_err          err;
	if (b == NULL)
		return;
	pthread_mutex_lock(mu);
	err = cp_code_load(s, a, tenant, code, &c);
	bool live = err == DRE_OK && !cp_state_terminal(c.state);
	if (live && c.valid_to != 0 && c.valid_to < now)
		err = end_code(s, a, b, tenant, &c, CP_EXPIRED, now, NULL);
	if (err == DRE_ENOTFOUND || !live || c.valid_to != when) {
		// The entry has served its purpose (or is stale).
		err = DRE_OK;
		kl = cp_key_when(k, sizeof k, 'v', when, tenant, code);
		idx_del(s, b, k, kl);
	}
	if (err == DRE_OK)
		err = commit(s, b);
	if (err != DRE_OK)
		dre_warn("sweep: expire %s/%s: %s", tenant, code,
		    dre_strerror(err));
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// cp_expire_hold ends hold res_id if its time has passed (sweeper).
void
cp_expire_hold(
    cp *s, dre_arena *a, const char *tenant, const char *res_id, int64_t now)
{
	cp_outcome       out;
	cp_resv          r;
	cp_code          c;
	dre_err          err = DRE_OK;
	dre_batch       *b = dre_batch_alloc();
	pthread_mutex_t *mu;
	if (b == NULL)
		return;
	if ((mu = resv_lock(s, a, tenant, res_id, &r, &out)) == NULL) {
		dre_batch_free(b);
		return;
	}
	if (r.state == CP_HOLD_HELD && r.expires_at <= now) {
		if ((err = cp_code_load(s, a, tenant, r.code, &c)) == DRE_OK
		    && (err
		           = cp_hold_end(s, b, tenant, &c, &r, CP_HOLD_EXPIRED,
		               now, "COUPON_RESERVATION_EXPIRED"))
		        == DRE_OK
		    && (err = cp_stage_code(s, b, tenant, &c, now)) == DRE_OK)
			err = commit(s, b);
	}
	if (err != DRE_OK)
		dre_warn("sweep: reservation %s/%s: %s", tenant, res_id,
		    dre_strerror(err));
	pthread_mutex_unlock(mu);
	dre_batch_free(b);
}

// ---- creating codes -------------------------------------------------------

// A small open-addressing set of the codes of one insert call.
typedef struct {
	const char **slot;
	size_t       cap;
} code_set;

// set_add returns false when s is already in the set.
static bool
set_add(code_set *cs, const char *s)
{
	size_t i = dre_fnv1a32_str(DRE_FNV32_INIT, s, 0) & (cs->cap - 1);
	while (cs->slot[i] != NULL) {
		if (strcmp(cs->slot[i], s) == 0)
			return false;
		i = (i + 1) & (cs->cap - 1);
	}
	cs->slot[i] = s;
	return true;
}

#define REGEN_TRIES 16

dre_err
cp_stage_new_code(cp *s, dre_batch *b, const char *tenant, cp_code *c)
{
	char    k[512];
	size_t  kl;
	dre_err err = cp_stage_code(s, b, tenant, c, c->created_at);
	if (err != DRE_OK)
		return err;
	kl = dre_key(k, sizeof k, 't', 3, tenant, c->type_id, c->code);
	idx_put(s, b, k, kl, "", 0);
	if (c->customer[0] != '\0') {
		kl = dre_key(
		    k, sizeof k, 'u', 3, tenant, c->customer, c->code);
		idx_put(s, b, k, kl, "", 0);
	}
	if (c->valid_to != 0) {
		kl = cp_key_when(
		    k, sizeof k, 'v', c->valid_to, tenant, c->code);
		idx_put(s, b, k, kl, "", 0);
	}
	return DRE_OK;
}

dre_err
cp_codes_insert(cp *s, const char *tenant, cp_code *codes, size_t n,
    const cp_type *t, bool regen, bool *dup, dre_batch *b, const char *event,
    const char *reason, const char *actor, size_t *inserted)
{
	code_set cs = { NULL, 16 };
	char     k[512];
	size_t   kl, ok = 0;
	dre_err  err = DRE_OK;

	while (cs.cap < 2 * n)
		cs.cap *= 2;
	if ((cs.slot = calloc(cs.cap, sizeof *cs.slot)) == NULL)
		return DRE_ENOMEM;
	pthread_mutex_lock(&s->create_mu);
	for (size_t i = 0; i < n && err == DRE_OK; i++) {
		cp_code *c = &codes[i];
		bool     taken = false;
		for (int tries = 0;; tries++) {
			kl = dre_key(k, sizeof k, 0, 2, tenant, c->code);
			taken = kl == 0 || exists(s, CF_CODES, k, kl, &err);
			if (err != DRE_OK)
				break;
			if (!taken && set_add(&cs, c->code))
				break;
			taken = true;
			if (!regen || tries >= REGEN_TRIES)
				break;
			cp_code_generate(
			    c->code, t->prefix, (int) t->code_length);
		}
		if (dup != NULL)
			dup[i] = taken;
		if (err != DRE_OK || taken) {
			if (taken && regen && err == DRE_OK)
				err = DRE_EEXISTS; // the code space is full
			continue;
		}
		if ((err = cp_stage_new_code(s, b, tenant, c)) != DRE_OK)
			break;
		if (event != NULL) {
			cp_event e = { .type = event,
				.code = c->code,
				.type_id = c->type_id,
				.customer = c->customer,
				.tx = c->issuing_tx,
				.batch_id = c->batch_id,
				.count = -1,
				.promotion_id = c->issuing_promotion,
				.reason = reason };
			err = cp_event_put(s, b, tenant, &e);
		}
		if (actor != NULL && err == DRE_OK) {
			dre_buf doc = { 0 };
			cp_code_write(&doc, c);
			err = dre_audit_change(b, s->st, CF_AUDIT, tenant,
			    actor, "CouponCode", c->code, NULL, NULL, &doc,
			    NULL);
			dre_buf_free(&doc);
		}
		ok++;
	}
	if (err == DRE_OK)
		err = commit(s, b);
	pthread_mutex_unlock(&s->create_mu);
	free(cs.slot);
	if (inserted != NULL)
		*inserted = err == DRE_OK ? ok : 0;
	return err;
}

// ---- coupon types ---------------------------------------------------------

dre_err
cp_type_store(cp *s, const char *tenant, const char *actor, const cp_type *t,
    const cp_type *old)
{
	dre_batch *b = dre_batch_alloc();
	dre_buf    doc = { 0 }, before = { 0 };
	char       k[1024];
	size_t     kl;
	dre_err    err = DRE_OK;
	if (b == NULL)
		return DRE_ENOMEM;
	if (old != NULL && (t == NULL || strcmp(old->name, t->name) != 0)) {
		kl = dre_key(k, sizeof k, 'n', 2, tenant, old->name);
		idx_del(s, b, k, kl);
	}
	if (t != NULL) {
		cp_type_write(&doc, t, false, NULL, 0);
		err = stage_doc(s, b, CF_TYPES, tenant, t->id, &doc);
		kl = dre_key(k, sizeof k, 'n', 2, tenant, t->name);
		if (kl == 0)
			err = DRE_ETOOBIG;
		idx_put(s, b, k, kl, t->id, strlen(t->id));
	} else {
		kl = dre_key(k, sizeof k, 0, 2, tenant, old->id);
		if (kl > 0)
			dre_batch_delete(b, s->st, CF_TYPES, k, kl);
	}
	if (old != NULL)
		cp_type_write(&before, old, false, NULL, 0);
	if (err == DRE_OK)
		err = dre_audit_change(b, s->st, CF_AUDIT, tenant, actor,
		    "CouponType", t != NULL ? t->id : old->id, NULL,
		    old != NULL ? &before : NULL, t != NULL ? &doc : NULL,
		    NULL);
	if (err == DRE_OK)
		err = commit(s, b);
	dre_buf_free(&before);
	dre_buf_free(&doc);
	dre_batch_free(b);
	return err;
}

// ---- issue rate -----------------------------------------------------------

struct cp_rates {
	size_t n, cap;
	struct {
		char    tenant[DRE_UUID_LEN + 64];
		cp_rate r;
	} v[];
};

int64_t
cp_rate_take_tenant(
    cp *s, const char *tenant, int64_t want, int64_t now_ms, int64_t *retry_s)
{
	int64_t got;
	pthread_mutex_lock(&s->rate_mu);
	size_t i = 0;
	for (; s->rates != NULL && i < s->rates->n; i++)
		if (strcmp(s->rates->v[i].tenant, tenant) == 0)
			break;
	if (s->rates == NULL || i == s->rates->n) {
		size_t cap = s->rates ? s->rates->cap : 0;
		if (s->rates == NULL || s->rates->n == cap) {
			size_t           ncap = cap ? cap * 2 : 8;
			struct cp_rates *nr = realloc(
			    s->rates, sizeof *nr + ncap * sizeof nr->v[0]);
			if (nr == NULL) {
				pthread_mutex_unlock(&s->rate_mu);
				if (retry_s != NULL)
					*retry_s = 1;
				return 0;
			}
			if (s->rates == NULL)
				nr->n = 0;
			nr->cap = ncap;
			s->rates = nr;
		}
		i = s->rates->n++;
		memset(&s->rates->v[i], 0, sizeof s->rates->v[i]);
		snprintf(s->rates->v[i].tenant, sizeof s->rates->v[i].tenant,
		    "%s", tenant);
	}
	got = cp_rate_take(
	    &s->rates->v[i].r, s->o.issue_rate_per_min, want, now_ms, retry_s);
	pthread_mutex_unlock(&s->rate_mu);
	return got;
}

// ---- listing --------------------------------------------------------------

// doc_matches checks the filters that need the document.
static bool
doc_matches(dre_arena *a, const cp_code_filter *f, const char *doc, size_t len)
{
	cp_code c;
	if (f->state < 0 && f->type_id == NULL && f->customer == NULL)
		return true;
	dre_arena_reset(a);
	if (cp_code_parse(&c, a, doc, len) != DRE_OK)
		return false;
	return (f->state < 0 || (int) c.state == f->state)
	    && (f->type_id == NULL || strcmp(c.type_id, f->type_id) == 0)
	    && (f->customer == NULL || strcmp(c.customer, f->customer) == 0);
}

dre_err
cp_codes_scan(cp *s, const char *tenant, const cp_code_filter *f,
    cp_code_peek peek, cp_code_visit fn, void *arg)
{
	char            p[512];
	size_t          pl;
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl;
	dre_err         err = DRE_OK;
	int             cf = CF_IDX;
	dre_arena      *scratch;

	// The narrowest index: a customer's codes, a type's codes, or all.
	// What the index answers for is not checked again: a code is only
	// parsed for what remains (a type's million codes are not).
	cp_code_filter rest = *f;
	if (f->customer != NULL) {
		pl = dre_key(p, sizeof p, 'u', 3, tenant, f->customer, "");
		rest.customer = NULL;
	} else if (f->type_id != NULL) {
		pl = dre_key(p, sizeof p, 't', 3, tenant, f->type_id, "");
		rest.type_id = NULL;
	} else {
		pl = dre_key(p, sizeof p, 0, 2, tenant, "");
		cf = CF_CODES;
	}
	if (pl == 0)
		return DRE_OK;
	if ((scratch = dre_arena_alloc(0)) == NULL)
		return DRE_ENOMEM;
	if ((err = dre_store_iter_open(&it, s->st, cf, p, pl)) != DRE_OK) {
		dre_arena_free(scratch);
		return err;
	}
	bool more = true;
	while (more && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (cf == CF_CODES) {
			if (doc_matches(scratch, &rest, v, vl))
				more = fn(arg, v, vl);
			continue;
		}
		char  *doc = NULL;
		size_t dl = 0;
		char   code[CP_CODE_MAX + 1];
		// A page of a type's codes reads the page, not the type.
		if (peek != NULL && rest.state < 0 && rest.type_id == NULL
		    && rest.customer == NULL && !peek(arg))
			continue;
		snprintf(code, sizeof code, "%.*s", (int) (kl - pl), k + pl);
		if (load(s, CF_CODES, tenant, code, &doc, &dl) == DRE_OK
		    && doc_matches(scratch, &rest, doc, dl))
			more = fn(arg, doc, dl);
		free(doc);
	}
	dre_store_iter_close(it);
	dre_arena_free(scratch);
	return DRE_OK;
}

typedef struct {
	const cp_code_filter *f;
	dre_buf              *vals;
	int64_t              *count;
} list_page;

// page_add counts a matching code document and appends it in the page.
static bool
page_add(void *arg, const char *doc, size_t len)
{
	list_page *lp = arg;
	(*lp->count)++;
	if (*lp->count > lp->f->skip
	    && *lp->count - lp->f->skip <= lp->f->top) {
		if (lp->vals->len > 0)
			dre_buf_putc(lp->vals, ',');
		dre_buf_append(lp->vals, doc, len);
	}
	return true;
}

dre_err
cp_codes_list(cp *s, dre_arena *a, const char *tenant, const cp_code_filter *f,
    dre_buf *vals, int64_t *count)
{
	list_page lp = { f, vals, count };
	(void) a;
	*count = 0;
	dre_err err = cp_codes_scan(s, tenant, f, NULL, page_add, &lp);
	if (err == DRE_OK && vals->oom)
		err = DRE_ENOMEM;
	return err;
}
