// reporting/apply.c -- folds confirmed sales into aggregates, exactly once
// (the applier writes them with its offsets and eventId keys), and reports
// the outcome as a side-effect result.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "dre/clock.h"
#include "dre/log.h"
#include "dre/outbox.h"
#include "dre/sidefx.h"
#include "dre/topics.h"
#include "dre/uuid.h"

void
rep_day(char *out, int64_t ms)
{
	// The day from the clock's ISO text: "YYYY-MM-DDT..." (years 0-9999).
	char iso[32];
	dre_time_format(iso, ms);
	memcpy(out, iso, 10);
	out[10] = '\0';
}

size_t
rep_key(char *out, size_t cap, char prefix, const char *const *parts, size_t n)
{
	size_t len = 1;
	if (cap < 1)
		return 0;
	out[0] = prefix;
	for (size_t i = 0; i < n; i++) {
		const char *p = parts[i] ? parts[i] : "";
		size_t      l = strlen(p);
		if (len + l + 1 > cap)
			return 0;
		memcpy(out + len, p, l);
		len += l;
		if (i + 1 < n)
			out[len++] = '\0';
	}
	return len;
}

Dre__Aggregate *
rep_add(Dre__Aggregate *a, dre_arena *x, int64_t amount, int64_t at,
    const char *currency, const char *name, const char *type)
{
	if (a == NULL) {
		if ((a = dre_arena_get(x, sizeof(*a))) == NULL)
			return NULL;
		dre__aggregate__init(a);
		a->first_at = a->last_at = at;
		a->currency = (char *) currency;
	}
	a->count++;
	a->amount += amount;
	if (at < a->first_at)
		a->first_at = at;
	if (at > a->last_at)
		a->last_at = at;
	if (name != NULL)
		a->name = (char *) name;
	if (type != NULL)
		a->type = (char *) type;
	return a;
}

// fold adds one application to the aggregate at key.
static dre_err
fold(rep_svc *s, dre_apply_ctx *x, const char *key, size_t kl, int64_t amount,
    int64_t at, const char *currency, const char *name, const char *type)
{
	char           *v = NULL;
	size_t          vl = 0;
	Dre__Aggregate *a = NULL;
	dre_err err = dre_batch_get(x->b, s->st, REP_CF_AGG, key, kl, &v, &vl);
	if (err == DRE_OK) {
		ProtobufCAllocator al = dre_arena_pb(x->a);
		a = dre__aggregate__unpack(&al, vl, (const uint8_t *) v);
		free(v);
		if (a == NULL)
			return DRE_ESTORE;
	} else if (err != DRE_ENOTFOUND) {
		return err;
	}
	if ((a = rep_add(a, x->a, amount, at, currency, name, type)) == NULL)
		return DRE_ENOMEM;
	size_t   n = dre__aggregate__get_packed_size(a);
	uint8_t *buf = dre_arena_get(x->a, n + 1);
	if (buf == NULL)
		return DRE_ENOMEM;
	dre__aggregate__pack(a, buf);
	dre_batch_put(x->b, s->st, REP_CF_AGG, key, kl, buf, n);
	return DRE_OK;
}

dre_err
rep_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	rep_svc         *s = arg;
	dre_tx_confirmed t;
	dre_err          err
	    = dre_avro_decode_tx_confirmed(&t, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	char day[11];
	rep_day(day, t.transaction_time);
	const char *pg = t.pos_group_id ? t.pos_group_id : t.pos_group_code;
	for (size_t i = 0; i < t.npromotions; i++) {
		const dre_tx_promotion *p = &t.promotions[i];
		const char             *parts[5]
		    = { t.tenant, p->promotion_id, day, t.channel, pg };
		char   key[512];
		size_t kl = rep_key(key, sizeof(key), 'p', parts, 5);
		if (kl == 0)
			return DRE_EINVAL;
		if ((err = fold(s, x, key, kl, p->amount, t.transaction_time,
		         t.currency, p->promotion_name, p->promotion_type))
		    != DRE_OK)
			return err;
		for (size_t k = 0; k < p->nbudget_ids; k++) {
			const char *bp[3]
			    = { t.tenant, p->budget_ids[k], day };
			if ((kl = rep_key(key, sizeof(key), 'b', bp, 3)) == 0)
				return DRE_EINVAL;
			if ((err = fold(s, x, key, kl, p->amount,
			         t.transaction_time, t.currency, NULL, NULL))
			    != DRE_OK)
				return err;
		}
	}

	dre_sfx_result res;
	dre_sidefx_init(&res, "reporting", &t, x);
	return dre_sidefx_put(s->ob, x->b, &res);
}

void
rep_batch_end(void *arg, dre_err err)
{
	rep_svc *s = arg;
	if (err == DRE_OK)
		dre_outbox_kick(s->ob);
}
