// budget/apply.c -- applies confirmed sales to budgets, exactly once: the
// consumption, the status change, the threshold events and the side-effect
// result go into the applier's batch together with its offsets.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/log.h"
#include "dre/outbox.h"
#include "dre/sidefx.h"
#include "dre/topics.h"
#include "dre/uuid.h"

#define MAX_BUDGETS 64 // distinct budgets one transaction consumes

bool
bud_exhausted(const Dre__BudgetRecord *r)
{
	return r->consumed >= r->total;
}

bool
bud_reached(const Dre__BudgetRecord *r, int32_t pct)
{
	return (__int128) r->consumed * 100 >= (__int128) r->total * pct;
}

static bool
was_crossed(const Dre__BudgetRecord *r, int32_t pct)
{
	for (size_t i = 0; i < r->n_crossed; i++)
		if (r->crossed[i] == pct)
			return true;
	return false;
}

// recross lists (in out) every threshold now reached and not announced,
// and makes r->crossed exactly the reached ones.
static void
recross(Dre__BudgetRecord *r, dre_arena *a, bud_change *out)
{
	int32_t *now = dre_arena_get(a, (r->n_thresholds + 1) * sizeof(*now));
	size_t   n = 0;
	if (now == NULL)
		return;
	for (size_t i = 0; i < r->n_thresholds; i++) {
		int32_t pct = r->thresholds[i];
		if (!bud_reached(r, pct))
			continue;
		now[n++] = pct;
		if (!was_crossed(r, pct) && out->ncrossed < BUD_MAX_THRESHOLDS)
			out->crossed[out->ncrossed++] = pct;
	}
	r->crossed = now;
	r->n_crossed = n;
}

void
bud_consume(
    Dre__BudgetRecord *r, int64_t amount, dre_arena *a, bud_change *out)
{
	bool before = bud_exhausted(r);
	memset(out, 0, sizeof(*out));
	r->consumed += amount;
	r->transactions++;
	recross(r, a, out);
	out->exhausted_now = !before && bud_exhausted(r);
}

void
bud_retotal(Dre__BudgetRecord *r, int64_t total, dre_arena *a, bud_change *out)
{
	bool before = bud_exhausted(r);
	memset(out, 0, sizeof(*out));
	r->total = total;
	recross(r, a, out);
	out->exhausted_now = !before && bud_exhausted(r);
	out->active_now = before && !bud_exhausted(r);
}

void
bud_batch_begin(void *arg)
{
	bud *s = arg;
	pthread_mutex_lock(&s->mu);
}

void
bud_batch_end(void *arg, dre_err err)
{
	bud *s = arg;
	pthread_mutex_unlock(&s->mu);
	if (err == DRE_OK)
		dre_outbox_kick(s->ob);
}

// event queues one BudgetEvent.
static dre_err
event(bud *s, dre_batch *b, const char *tenant, const Dre__BudgetRecord *r,
    const char *type, int32_t pct, const char *txid, const char *cause,
    int64_t now)
{
	dre_budget_event e = { 0 };
	char             seed[400];
	int sl = snprintf(seed, sizeof(seed), "budget-event|%s|%s|%s|%d|%s",
	    tenant, r->id, type, (int) pct, cause);
	dre_uuid_derive(e.event_id, seed, (size_t) sl);
	e.tenant = tenant;
	e.occurred_at = now;
	e.schema_version = 1;
	e.type = type;
	e.budget_id = r->id;
	e.budget_name = r->name;
	e.threshold_pct = pct;
	e.total_amount = r->total;
	e.consumed_amount = r->consumed;
	e.currency = r->currency;
	e.transaction_id = txid;
	dre_buf ev = { 0 };
	dre_err err = dre_avro_encode_budget_event(&ev, &e);
	if (err == DRE_OK) {
		char key[320];
		int  kl = snprintf(key, sizeof(key), "%s/%s", tenant, r->id);
		dre_outbox_put(s->ob, b, DRE_TOPIC_BUDGET_EVENTS, key,
		    (size_t) kl, ev.data, ev.len);
	}
	dre_buf_free(&ev);
	return err;
}

// changed queues what a change of r means to the outside.
static dre_err
changed(bud *s, dre_batch *b, const char *tenant, Dre__BudgetRecord *r,
    const bud_change *c, const char *txid, const char *cause, int64_t now)
{
	dre_err err = DRE_OK;
	for (size_t i = 0; err == DRE_OK && i < c->ncrossed; i++)
		err = event(s, b, tenant, r, "BUDGET_THRESHOLD_CROSSED",
		    c->crossed[i], txid, cause, now);
	if (err == DRE_OK && c->exhausted_now)
		err = event(
		    s, b, tenant, r, "BUDGET_EXHAUSTED", -1, txid, cause, now);
	if (err == DRE_OK && (c->exhausted_now || c->active_now))
		err = bud_status_changed(s, b, tenant, r, NULL, now);
	if (c->exhausted_now)
		dre_info("budget %s/%s exhausted: %lld of %lld consumed",
		    tenant, r->id, (long long) r->consumed,
		    (long long) r->total);
	return err;
}

typedef struct {
	const char *id;
	int64_t     amount;
} want;

dre_err
bud_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	bud             *s = arg;
	dre_tx_confirmed t;
	dre_err          err
	    = dre_avro_decode_tx_confirmed(&t, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;

	// Each linked budget consumes the confirmed amount of each of its
	// promotions; a budget linked twice is consumed once with the sum.
	want   w[MAX_BUDGETS];
	size_t nw = 0;
	for (size_t i = 0; i < t.npromotions; i++) {
		const dre_tx_promotion *p = &t.promotions[i];
		for (size_t k = 0; k < p->nbudget_ids; k++) {
			size_t j = 0;
			while (
			    j < nw && strcmp(w[j].id, p->budget_ids[k]) != 0)
				j++;
			if (j == nw) {
				if (nw == MAX_BUDGETS)
					return DRE_EINVAL;
				w[nw++] = (want) { p->budget_ids[k], 0 };
			}
			w[j].amount += p->amount;
		}
	}

	dre_sfx_budget *done = dre_arena_get(x->a, (nw + 1) * sizeof(*done));
	dre_buf         reason = { 0 };
	size_t          ndone = 0, nfailed = 0;
	if (done == NULL)
		return DRE_ENOMEM;
	for (size_t j = 0; j < nw; j++) {
		Dre__BudgetRecord *r = NULL;
		err = bud_get(s, x->b, x->a, t.tenant, w[j].id, &r);
		if (err == DRE_ENOTFOUND) {
			dre_buf_printf(&reason, "%sbudget %s does not exist",
			    reason.len ? "; " : "", w[j].id);
			nfailed++;
			continue;
		}
		if (err != DRE_OK) {
			dre_buf_free(&reason);
			return err == DRE_ECODEC ? DRE_ESTORE : err;
		}
		if (strcmp(r->currency, t.currency) != 0) {
			dre_buf_printf(&reason,
			    "%sbudget %s is in %s, the sale in %s",
			    reason.len ? "; " : "", w[j].id, r->currency,
			    t.currency);
			nfailed++;
			continue;
		}
		bud_change c;
		bud_consume(r, w[j].amount, x->a, &c);
		r->modified_at = x->now_ms;
		if (c.exhausted_now) {
			r->has_exhausted_at = true;
			r->exhausted_at = x->now_ms;
		}
		if ((err = changed(s, x->b, t.tenant, r, &c, t.transaction_id,
		         t.event_id, x->now_ms))
		        != DRE_OK
		    || (err = bud_put(s, x->b, x->a, t.tenant, r)) != DRE_OK) {
			dre_buf_free(&reason);
			return err;
		}
		done[ndone++] = (dre_sfx_budget) { r->id, w[j].amount,
			r->currency, bud_exhausted(r) ? "EXHAUSTED" : "ACTIVE",
			r->version };
	}

	// One result per transaction; its id is derived from the sale's, so
	// it is the same if this is ever made again.
	dre_sfx_result res;
	dre_sidefx_init(&res, "budget", &t, x);
	res.status = nfailed > 0 ? "FAILED"
	    : ndone > 0          ? "SUCCESS"
	                         : "SKIPPED";
	res.reason = reason.len ? dre_arena_strdup(x->a, reason.data) : NULL;
	res.budgets = done;
	res.nbudgets = ndone;
	dre_buf_free(&reason);
	return dre_sidefx_put(s->ob, x->b, &res);
}
