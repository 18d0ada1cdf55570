// loyalty/repo.c -- contacts, their lookup keys and the program in RocksDB;
// points, days and levels; the outbox of dre.loyalty.events.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "loyalty.h"

static const char *const loy_cfs[] = { "contacts", "index", "program",
	"ledger", "outbox", "applier", "rewards", "jobs" };

const char *const loy_attr_names[LOY_NATTRS] = {
#define LOY_ATTR_NAME(id, name) name,
	LOY_ATTR_MAP(LOY_ATTR_NAME)
#undef LOY_ATTR_NAME
};

const char *
loy_norm_email(dre_arena *a, const char *email)
{
	char *e = dre_arena_strdup(a, email);
	for (char *p = e; p != NULL && *p; p++)
		*p = (char) tolower((unsigned char) *p);
	return e;
}

// ---- the stored document ------------------------------------------------

static void
kopt(dre_jsonw *w, const char *key, const char *s)
{
	dre_jsonw_key(w, key);
	if (s != NULL)
		dre_jsonw_str(w, s);
	else
		dre_jsonw_null(w);
}

static void
attributes(dre_jsonw *w, const loy_contact *c)
{
	dre_jsonw_key(w, "attributes");
	dre_jsonw_obj_begin(w);
	for (int i = 0; i < LOY_NATTRS; i++)
		kopt(w, loy_attr_names[i], c->attr[i]);
	dre_jsonw_obj_end(w);
}

static void
prefs(dre_jsonw *w, const loy_contact *c)
{
	dre_jsonw_key(w, "preferences");
	if (c->preferences != NULL)
		dre_jsonw_json(w, c->preferences);
	else
		dre_jsonw_raw(w, "{}", 2);
	dre_jsonw_key(w, "consents");
	if (c->consents != NULL)
		dre_jsonw_json(w, c->consents);
	else
		dre_jsonw_raw(w, "[]", 2);
}

void
loy_serialize(dre_buf *out, const loy_contact *c)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", c->id);
	attributes(&w, c);
	prefs(&w, c);
	kopt(&w, "source", c->source);
	kopt(&w, "store", c->store);
	dre_jsonw_kint(&w, "created", c->created);
	dre_jsonw_kint(&w, "modified", c->modified);
	dre_jsonw_kint(&w, "balance", c->balance);
	kopt(&w, "level", c->level);
	dre_jsonw_key(&w, "earn");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < c->nearn; i++) {
		dre_jsonw_arr_begin(&w);
		dre_jsonw_int(&w, c->earn[i].day);
		dre_jsonw_int(&w, c->earn[i].points);
		dre_jsonw_arr_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_kint(&w, "vouchers", c->vouchers);
	dre_jsonw_obj_end(&w);
}

void
loy_render(dre_buf *out, const loy_contact *c)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", c->id);
	attributes(&w, c);
	dre_jsonw_key(&w, "meta");
	dre_jsonw_obj_begin(&w);
	kopt(&w, "source", c->source);
	kopt(&w, "storeExternalId", c->store);
	dre_jsonw_key(&w, "createdOn");
	dre_jsonw_time(&w, c->created);
	dre_jsonw_key(&w, "modifiedOn");
	dre_jsonw_time(&w, c->modified);
	dre_jsonw_obj_end(&w);
	prefs(&w, c);
	dre_jsonw_obj_end(&w);
}

static const char *
opt_str(const dre_json *v)
{
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

static dre_err
parse_contact(loy_contact *c, dre_arena *a, const char *v, size_t vl)
{
	dre_json *d = NULL;
	if (dre_json_parse(&d, a, v, vl, 16, NULL) != DRE_OK
	    || !dre_json_is(d, DRE_JSON_OBJECT))
		return DRE_ECODEC;
	memset(c, 0, sizeof(*c));
	c->id = opt_str(dre_json_get(d, "id"));
	const dre_json *at = dre_json_get(d, "attributes");
	for (int i = 0; i < LOY_NATTRS; i++)
		c->attr[i] = opt_str(dre_json_get(at, loy_attr_names[i]));
	c->preferences = dre_json_get(d, "preferences");
	c->consents = dre_json_get(d, "consents");
	c->source = opt_str(dre_json_get(d, "source"));
	c->store = opt_str(dre_json_get(d, "store"));
	int64_t n = 0;
	if (dre_json_int(&c->created, dre_json_get(d, "created"), 0, INT64_MAX)
	        != DRE_OK
	    || dre_json_int(
	           &c->modified, dre_json_get(d, "modified"), 0, INT64_MAX)
	        != DRE_OK
	    || dre_json_int(&c->balance, dre_json_get(d, "balance"), INT64_MIN,
	           INT64_MAX)
	        != DRE_OK)
		return DRE_ECODEC;
	c->level = opt_str(dre_json_get(d, "level"));
	if (dre_json_get(d, "vouchers") != NULL
	    && dre_json_int(
	           &c->vouchers, dre_json_get(d, "vouchers"), 0, INT64_MAX)
	        != DRE_OK)
		return DRE_ECODEC;
	const dre_json *e = dre_json_get(d, "earn");
	if (c->id == NULL || !dre_json_is(e, DRE_JSON_ARRAY))
		return DRE_ECODEC;
	c->earn = dre_arena_get(a, (e->len + 1) * sizeof(*c->earn));
	if (c->earn == NULL)
		return DRE_ENOMEM;
	for (const dre_json *x = e->child; x != NULL; x = x->next) {
		int64_t day = 0;
		if (dre_json_int(&day, dre_json_at(x, 0), 0, INT32_MAX)
		        != DRE_OK
		    || dre_json_int(
		           &n, dre_json_at(x, 1), INT64_MIN, INT64_MAX)
		        != DRE_OK)
			return DRE_ECODEC;
		c->earn[c->nearn++] = (loy_earn) { (int32_t) day, n };
	}
	return DRE_OK;
}

dre_err
loy_contact_get(loy *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *id, loy_contact *c)
{
	char   key[512], *v = NULL;
	size_t vl = 0, kl = dre_key(key, sizeof(key), 0, 2, tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	dre_err err = b != NULL
	    ? dre_batch_get(b, s->st, LOY_CF_CONTACTS, key, kl, &v, &vl)
	    : dre_store_get(s->st, LOY_CF_CONTACTS, key, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	char *copy = dre_arena_strndup(a, v, vl);
	free(v);
	if (copy == NULL)
		return DRE_ENOMEM;
	return parse_contact(c, a, copy, vl);
}

// index_key writes tenant \0 kind \0 value.
static size_t
index_key(
    char *out, size_t cap, const char *tenant, char kind, const char *value)
{
	char k[2] = { kind, '\0' };
	return dre_key(out, cap, 0, 3, tenant, k, value);
}

static const struct {
	char     kind;
	loy_attr attr;
} keyed[]
    = { { 'e', LOY_A_EMAIL }, { 'm', LOY_A_MOBILE }, { 'n', LOY_A_MEMBER } };

static const char *
key_value(char *buf, size_t cap, char kind, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return NULL;
	if (kind != 'e')
		return v;
	size_t i = 0;
	for (; v[i] && i + 1 < cap; i++)
		buf[i] = (char) tolower((unsigned char) v[i]);
	buf[i] = '\0';
	return buf;
}

dre_err
loy_contact_put(loy *s, dre_batch *b, const char *tenant, const loy_contact *c,
    const loy_contact *old)
{
	char   key[512];
	size_t kl = dre_key(key, sizeof(key), 0, 2, tenant, c->id);
	if (kl == 0)
		return DRE_EINVAL;
	for (size_t i = 0; i < sizeof(keyed) / sizeof(keyed[0]); i++) {
		char        nb[320], ob[320], ik[512];
		const char *nv = key_value(
		    nb, sizeof(nb), keyed[i].kind, c->attr[keyed[i].attr]);
		const char *ov = old == NULL
		    ? NULL
		    : key_value(ob, sizeof(ob), keyed[i].kind,
		        old->attr[keyed[i].attr]);
		if (nv != NULL && ov != NULL && strcmp(nv, ov) == 0)
			continue;
		size_t il;
		if (ov != NULL
		    && (il = index_key(
		            ik, sizeof(ik), tenant, keyed[i].kind, ov))
		        != 0)
			dre_batch_delete(b, s->st, LOY_CF_INDEX, ik, il);
		if (nv != NULL
		    && (il = index_key(
		            ik, sizeof(ik), tenant, keyed[i].kind, nv))
		        != 0)
			dre_batch_put(b, s->st, LOY_CF_INDEX, ik, il, c->id,
			    strlen(c->id));
	}
	dre_buf doc = { 0 };
	loy_serialize(&doc, c);
	dre_err err = doc.oom ? DRE_ENOMEM : DRE_OK;
	if (err == DRE_OK)
		dre_batch_put(
		    b, s->st, LOY_CF_CONTACTS, key, kl, doc.data, doc.len);
	dre_buf_free(&doc);
	return err;
}

dre_err
loy_lookup(loy *s, dre_batch *b, dre_arena *a, const char *tenant, char kind,
    const char *value, const char **id)
{
	char        buf[320], ik[512], *v = NULL;
	size_t      vl = 0, il;
	const char *kv = key_value(buf, sizeof(buf), kind, value);
	if (kv == NULL
	    || (il = index_key(ik, sizeof(ik), tenant, kind, kv)) == 0)
		return DRE_ENOTFOUND;
	dre_err err = b != NULL
	    ? dre_batch_get(b, s->st, LOY_CF_INDEX, ik, il, &v, &vl)
	    : dre_store_get(s->st, LOY_CF_INDEX, ik, il, &v, &vl);
	if (err != DRE_OK)
		return err;
	*id = dre_arena_strndup(a, v, vl);
	free(v);
	return *id != NULL ? DRE_OK : DRE_ENOMEM;
}

dre_err
loy_resolve(loy *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *who, loy_contact *c)
{
	const char *id = NULL;
	if (who == NULL || who[0] == '\0')
		return DRE_ENOTFOUND;
	dre_err err = loy_contact_get(s, b, a, tenant, who, c);
	if (err != DRE_ENOTFOUND)
		return err;
	if ((err = loy_lookup(s, b, a, tenant, 'n', who, &id)) != DRE_OK)
		return err;
	return loy_contact_get(s, b, a, tenant, id, c);
}

// ---- the program --------------------------------------------------------

void
loy_program_default(loy_program *p)
{
	memset(p, 0, sizeof(*p));
	p->ppcu = 100;
	p->nlevels = 3;
	p->levels[0].name = "BASE";
	p->levels[1].name = "SILVER";
	p->levels[1].min = 1000;
	p->levels[2].name = "GOLD";
	p->levels[2].min = 5000;
	p->per_voucher = 500;
	p->voucher_value = 500;
	p->voucher_currency = "EUR";
	p->validity_days = 90;
	p->automatic = true;
}

void
loy_program_render(dre_buf *out, const loy_program *p)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "pointsPerCurrencyUnit");
	dre_jsonw_decimal_trim(&w, p->ppcu, 2);
	dre_jsonw_key(&w, "levels");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < p->nlevels; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "name", p->levels[i].name);
		dre_jsonw_kint(&w, "minPoints", p->levels[i].min);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "voucherRule");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "pointsPerVoucher", p->per_voucher);
	dre_jsonw_key(&w, "value");
	dre_jsonw_decimal(&w, p->voucher_value, DRE_MONEY_SCALE);
	dre_jsonw_kstr(&w, "currency", p->voucher_currency);
	dre_jsonw_kint(&w, "validityDays", p->validity_days);
	dre_jsonw_kbool(&w, "automatic", p->automatic);
	dre_jsonw_kstr(&w, "couponTypeId", p->voucher_type);
	dre_jsonw_obj_end(&w);
	dre_jsonw_obj_end(&w);
}

#define BAD(t, ...)                                                           \
	do {                                                                  \
		*target = (t);                                                \
		snprintf(msg, mcap, __VA_ARGS__);                             \
		return false;                                                 \
	} while (0)

bool
loy_program_parse(loy_program *p, dre_arena *a, const dre_json *doc,
    const char **target, char *msg, size_t mcap)
{
	static const char *const known[]
	    = { "pointsPerCurrencyUnit", "levels", "voucherRule" };
	static const char *const vknown[] = { "pointsPerVoucher", "value",
		"currency", "validityDays", "automatic", "couponTypeId" };
	const dre_json          *m;
	loy_program_default(p);
	if ((m = dre_json_unknown(doc, known, 3, NULL)) != NULL)
		BAD("body", "unknown field '%s'", m->key);
	const dre_json *v = dre_json_get(doc, "pointsPerCurrencyUnit");
	if (v != NULL
	    && (dre_json_decimal(&p->ppcu, v, 2, 12) != DRE_OK || p->ppcu < 0))
		BAD("pointsPerCurrencyUnit",
		    "pointsPerCurrencyUnit must be a number >= 0 with at most "
		    "2 decimals");
	v = dre_json_get(doc, "levels");
	if (v != NULL) {
		if (!dre_json_is(v, DRE_JSON_ARRAY) || v->len == 0
		    || v->len > LOY_MAX_LEVELS)
			BAD("levels",
			    "levels must be an array of 1 to %d "
			    "levels",
			    LOY_MAX_LEVELS);
		p->nlevels = 0;
		for (const dre_json *l = v->child; l != NULL; l = l->next) {
			size_t          i = p->nlevels;
			const dre_json *n = dre_json_get(l, "name");
			int64_t         min = 0;
			if (!dre_json_is(n, DRE_JSON_STRING) || n->len == 0
			    || n->len > 50)
				BAD("levels",
				    "levels[%zu].name must be a "
				    "string of 1 to 50 characters",
				    i);
			if (dre_json_int(&min, dre_json_get(l, "minPoints"), 0,
			        INT64_MAX / 4)
			    != DRE_OK)
				BAD("levels",
				    "levels[%zu].minPoints must be an integer "
				    ">= 0",
				    i);
			if (i == 0 && min != 0)
				BAD("levels",
				    "the first level's minPoints "
				    "must be 0");
			if (i > 0 && min <= p->levels[i - 1].min)
				BAD("levels",
				    "levels must be in ascending minPoints");
			p->levels[i].name = dre_arena_strdup(a, n->str);
			p->levels[i].min = min;
			p->nlevels++;
		}
	}
	v = dre_json_get(doc, "voucherRule");
	if (v != NULL) {
		if (!dre_json_is(v, DRE_JSON_OBJECT))
			BAD("voucherRule", "voucherRule must be an object");
		if ((m = dre_json_unknown(v, vknown, 6, NULL)) != NULL)
			BAD("voucherRule", "unknown field 'voucherRule.%s'",
			    m->key);
		const dre_json *x = dre_json_get(v, "pointsPerVoucher");
		if (x != NULL
		    && dre_json_int(&p->per_voucher, x, 1, INT64_MAX / 4)
		        != DRE_OK)
			BAD("voucherRule.pointsPerVoucher",
			    "pointsPerVoucher must be an integer >= 1");
		x = dre_json_get(v, "value");
		if (x != NULL
		    && (dre_json_decimal(
		            &p->voucher_value, x, DRE_MONEY_SCALE, 15)
		            != DRE_OK
		        || p->voucher_value <= 0))
			BAD("voucherRule.value",
			    "value must be a positive amount with at most 2 "
			    "decimals");
		x = dre_json_get(v, "currency");
		if (x != NULL) {
			if (!dre_json_is(x, DRE_JSON_STRING) || x->len != 3)
				BAD("voucherRule.currency",
				    "currency must be an ISO 4217 code");
			p->voucher_currency = dre_arena_strdup(a, x->str);
		}
		x = dre_json_get(v, "validityDays");
		if (x != NULL
		    && dre_json_int(&p->validity_days, x, 1, 36500) != DRE_OK)
			BAD("voucherRule.validityDays",
			    "validityDays must be an integer from 1 to 36500");
		x = dre_json_get(v, "automatic");
		if (x != NULL) {
			if (!dre_json_is(x, DRE_JSON_TRUE)
			    && !dre_json_is(x, DRE_JSON_FALSE))
				BAD("voucherRule.automatic",
				    "automatic must be true or false");
			p->automatic = dre_json_is(x, DRE_JSON_TRUE);
		}
		x = dre_json_get(v, "couponTypeId");
		if (x != NULL && !dre_json_is_null(x)) {
			if (!dre_json_is(x, DRE_JSON_STRING) || x->len == 0
			    || x->len > 36)
				BAD("voucherRule.couponTypeId",
				    "couponTypeId must be the id of a coupon "
				    "type (INDIVIDUAL) or null");
			p->voucher_type = dre_arena_strdup(a, x->str);
		}
	}
	return true;
}

dre_err
loy_program_get(loy *s, dre_arena *a, const char *tenant, loy_program *p)
{
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = dre_store_get(
	    s->st, LOY_CF_PROGRAM, tenant, strlen(tenant), &v, &vl);
	if (err == DRE_ENOTFOUND) {
		loy_program_default(p);
		return DRE_OK;
	}
	if (err != DRE_OK)
		return err;
	dre_json   *d = NULL;
	char       *copy = dre_arena_strndup(a, v, vl);
	const char *t;
	char        msg[200];
	free(v);
	if (copy == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&d, a, copy, vl, 16, NULL) != DRE_OK
	    || !loy_program_parse(p, a, d, &t, msg, sizeof(msg)))
		return DRE_ECODEC;
	return DRE_OK;
}

// ---- points and levels --------------------------------------------------

int64_t
loy_earned365(const loy_contact *c, int32_t today)
{
	int64_t sum = 0;
	for (size_t i = 0; i < c->nearn; i++)
		if (c->earn[i].day > today - 365)
			sum += c->earn[i].points;
	return sum;
}

const char *
loy_level(const loy_program *p, int64_t earned)
{
	const char *name = p->levels[0].name;
	for (size_t i = 1; i < p->nlevels; i++)
		if (earned >= p->levels[i].min)
			name = p->levels[i].name;
	return name;
}

void
loy_credit(loy_contact *c, dre_arena *a, const loy_program *p, int64_t points,
    int32_t day, const char **prev)
{
	*prev = c->level;
	c->balance += points;
	// Days older than a year no longer count: dropped.
	size_t keep = 0;
	while (keep < c->nearn && c->earn[keep].day <= day - 365)
		keep++;
	loy_earn *e = dre_arena_get(a, (c->nearn + 2) * sizeof(*e));
	size_t    n = 0;
	if (e != NULL) {
		for (size_t i = keep; i < c->nearn; i++)
			e[n++] = c->earn[i];
		if (n > 0 && e[n - 1].day == day)
			e[n - 1].points += points;
		else if (n < LOY_MAX_DAYS)
			e[n++] = (loy_earn) { day, points };
		c->earn = e;
		c->nearn = n;
	}
	c->level = loy_level(p, loy_earned365(c, day));
}

// ---- events -------------------------------------------------------------

dre_err
loy_event(loy *s, dre_batch *b, const char *tenant, const loy_contact *c,
    const char *type, int64_t points, const char *prev_level, const char *txid,
    const char *receipt, const char *reference, const char *seed, int64_t now)
{
	dre_loyalty_event e = { 0 };
	dre_buf           sd = { 0 };
	dre_buf_printf(
	    &sd, "loyalty-event|%s|%s|%s|%s", tenant, c->id, type, seed);
	if (sd.oom) {
		dre_buf_free(&sd);
		return DRE_ENOMEM;
	}
	dre_uuid_derive(e.event_id, sd.data, sd.len);
	dre_buf_free(&sd);
	e.tenant = tenant;
	e.occurred_at = now;
	e.schema_version = 1;
	e.type = type;
	e.contact_id = c->id;
	e.points = points;
	e.points_balance = c->balance;
	e.level = c->level;
	e.previous_level = prev_level;
	e.transaction_id = txid;
	e.receipt_id = receipt;
	e.reference = reference;
	dre_buf ev = { 0 };
	dre_err err = dre_avro_encode_loyalty_event(&ev, &e);
	if (err == DRE_OK) {
		char key[512];
		int  kl = snprintf(key, sizeof(key), "%s/%s", tenant, c->id);
		dre_outbox_put(s->ob, b, DRE_TOPIC_LOYALTY_EVENTS, key,
		    (size_t) kl, ev.data, ev.len);
	}
	dre_buf_free(&ev);
	return err;
}

// ---- open / close -------------------------------------------------------

dre_err
loy_open(loy *s, const char *path, const dre_kvlist *kafka)
{
	memset(s, 0, sizeof(*s));
	dre_store_cfg cfg = { .path = path, .cfs = loy_cfs, .ncfs = LOY_NCFS };
	dre_err       err = dre_store_open(&s->st, &cfg);
	if (err != DRE_OK)
		return err;
	pthread_mutex_init(&s->mu, NULL);
	if ((err = dre_outbox_open(&s->ob, s->st, LOY_CF_OUTBOX, kafka))
	    != DRE_OK) {
		dre_store_close(s->st);
		pthread_mutex_destroy(&s->mu);
		return err;
	}
	return DRE_OK;
}

void
loy_close(loy *s)
{
	dre_outbox_close(s->ob);
	dre_store_close(s->st);
	pthread_mutex_destroy(&s->mu);
	s->ob = NULL;
	s->st = NULL;
}
