// budgets.c -- budget states for the engine: snapshot from dre-budget over
// nng, then dre.budgets.status through the applier (positions and states in
// one batch), so an exhausted budget limits its promotions here within
// milliseconds of the confirm that exhausted it.
//
// Keys of EV_CF_BUDGET: 'b' tenant \0 budgetId -> version (be64) + exhausted
// (1 byte).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.pb-c.h"
#include "budgets.h"
#include "dre/store.h"
#include "dre/avro.h"
#include "dre/consumer.h"
#include "dre/log.h"
#include "dre/snapshot.h"
#include "dre/topics.h"

// Short: a stop waits for a snapshot in progress.
#define SNAPSHOT_TIMEOUT_MS 3000

struct ev_budgets {
	dre_applier *ap;
};

static size_t
state_key(char *buf, size_t cap, const char *tenant, const char *id)
{
	size_t lt = strlen(tenant), li = strlen(id);
	if (lt + li + 2 > cap)
		return 0;
	buf[0] = 'b';
	memcpy(buf + 1, tenant, lt + 1);
	memcpy(buf + 2 + lt, id, li);
	return lt + li + 2;
}

static void
batch_state(ev_svc *s, dre_batch *b, const char *tenant, const char *id,
    int64_t version, bool exhausted)
{
	char    key[512];
	uint8_t val[9];
	size_t  kl = state_key(key, sizeof(key), tenant, id);
	if (kl == 0)
		return;
	dre_be64_put(val, version);
	val[8] = exhausted;
	dre_batch_put(b, s->st, EV_CF_BUDGET, key, kl, val, sizeof(val));
}

// state_newer is true when the stored state of the budget is older than
// version (or absent).
static bool
state_newer(ev_svc *s, dre_batch *b, const char *tenant, const char *id,
    int64_t version)
{
	char   key[512], *v = NULL;
	size_t vl = 0, kl = state_key(key, sizeof(key), tenant, id);
	if (kl == 0)
		return false;
	bool newer = true;
	if (dre_batch_get(b, s->st, EV_CF_BUDGET, key, kl, &v, &vl) == DRE_OK
	    && vl == 9)
		newer = version > dre_be64_get((const uint8_t *) v);
	free(v);
	return newer;
}

static dre_err
status_apply(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	ev_svc                 *s = arg;
	dre_budget_status_event e;
	dre_err                 err
	    = dre_avro_decode_budget_status(&e, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	bool exhausted = strcmp(e.status, "EXHAUSTED") == 0;
	if (!state_newer(s, x->b, e.tenant, e.budget_id, e.version))
		return DRE_OK;
	batch_state(s, x->b, e.tenant, e.budget_id, e.version, exhausted);
	if (eng_budget_set_update(
	        s->budgets, e.tenant, e.budget_id, e.version, exhausted))
		dre_info("budget %s/%s is %s (version %lld)", e.tenant,
		    e.budget_id, e.status, (long long) e.version);
	return DRE_OK;
}

// snapshot replaces every state by the budget service's and sets the
// positions the snapshot names.
static dre_err
snapshot(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	ev_svc                            *s = arg;
	const Dre__BudgetSnapshotResponse *snap
	    = (const Dre__BudgetSnapshotResponse *) x->snapshot;
	dre_err err = dre_snapshot_wipe(x->b, s->st, EV_CF_BUDGET, "b");
	if (err != DRE_OK)
		return err;
	eng_budget_set_clear(s->budgets);
	for (size_t i = 0; i < snap->n_budgets; i++) {
		const Dre__BudgetState *b = snap->budgets[i];
		batch_state(s, x->b, b->tenant, b->budget_id, b->version,
		    b->exhausted);
		eng_budget_set_update(s->budgets, b->tenant, b->budget_id,
		    b->version, b->exhausted);
	}
	dre_snapshot_positions(po, n, snap->offsets, snap->n_offsets);
	dre_info("budget snapshot: %zu budgets (%zu exhausted)",
	    snap->n_budgets, eng_budget_set_count(s->budgets));
	return DRE_OK;
}

// load reads the stored states into the engine's set.
static void
load(ev_svc *s)
{
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, s->st, EV_CF_BUDGET, "b", 1) != DRE_OK)
		return;
	const char *k, *v;
	size_t      kl, vl;
	size_t      n = 0;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		const char *tenant = k + 1;
		size_t      lt = strnlen(tenant, kl - 1);
		if (vl != 9 || lt + 2 > kl)
			continue;
		char id[256];
		snprintf(id, sizeof(id), "%.*s", (int) (kl - lt - 2),
		    tenant + lt + 1);
		eng_budget_set_update(s->budgets, tenant, id,
		    dre_be64_get((const uint8_t *) v), v[8] != 0);
		n++;
	}
	dre_store_iter_close(it);
	if (n > 0)
		dre_info("budget states: %zu from the local copy (%zu "
		         "exhausted)",
		    n, eng_budget_set_count(s->budgets));
}

static const char *const status_topics[] = { DRE_TOPIC_BUDGET_STATUS };

dre_err
ev_budgets_start(ev_svc *s)
{
	ev_budgets *bu = calloc(1, sizeof(*bu));
	if (bu == NULL)
		return DRE_ENOMEM;
	s->bud = bu;
	load(s);
	dre_snapshot_cfg sc = { .url = s->cfg.budget_url,
		.method = "budget.Snapshot",
		.principal = "evaluator",
		.reply = &dre__budget_snapshot_response__descriptor,
		.timeout_ms = SNAPSHOT_TIMEOUT_MS };

	dre_applier_cfg cfg = { .name = "budget-status",
		.topics = status_topics,
		.ntopics = 1,
		.st = s->st,
		.cf = EV_CF_BAPPLY,
		.kafka = &s->cfg.common.kafka,
		.apply = status_apply,
		.recover = snapshot,
		.snapshot = &sc,
		.arg = s,
		.idempotent = true }; // versioned states
	dre_err         err = dre_applier_start(&bu->ap, &cfg);
	if (err != DRE_OK)
		ev_budgets_stop(s);
	return err;
}

void
ev_budgets_stop(ev_svc *s)
{
	ev_budgets *bu = s->bud;
	if (bu == NULL)
		return;
	dre_applier_stop(bu->ap);
	free(bu);
	s->bud = NULL;
}
