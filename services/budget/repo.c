// budget/repo.c -- budgets in RocksDB, the status version sequence and the
// outbox of the budget service's events.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "dre/avro.h"
#include "dre/log.h"
#include "dre/outbox.h"
#include "dre/topics.h"
#include "dre/uuid.h"

static const char *const bud_cfs[]
    = { "budgets", "meta", "outbox", "applier", "audit", "jobs" };

size_t
bud_key(char *out, size_t cap, const char *tenant, const char *id)
{
	return dre_key(out, cap, 0, 2, tenant, id);
}

dre_err
bud_get(bud *s, dre_batch *b, dre_arena *a, const char *tenant, const char *id,
    Dre__BudgetRecord **out)
{
	char   key[256], *v = NULL;
	size_t vl = 0, kl = bud_key(key, sizeof(key), tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	dre_err err
	    = dre_batch_get(b, s->st, BUD_CF_BUDGETS, key, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	ProtobufCAllocator al = dre_arena_pb(a);
	*out = dre__budget_record__unpack(&al, vl, (const uint8_t *) v);
	free(v);
	return *out != NULL ? DRE_OK : DRE_ECODEC;
}

dre_err
bud_put(bud *s, dre_batch *b, dre_arena *a, const char *tenant,
    const Dre__BudgetRecord *r)
{
	char   key[256];
	size_t kl = bud_key(key, sizeof(key), tenant, r->id);
	if (kl == 0)
		return DRE_EINVAL;
	size_t   n = dre__budget_record__get_packed_size(r);
	uint8_t *v = dre_arena_get(a, n + 1);
	if (v == NULL)
		return DRE_ENOMEM;
	dre__budget_record__pack(r, v);
	dre_batch_put(b, s->st, BUD_CF_BUDGETS, key, kl, v, n);
	return DRE_OK;
}

dre_err
bud_status_changed(bud *s, dre_batch *b, const char *tenant,
    Dre__BudgetRecord *r, const char *status, int64_t now)
{
	uint8_t be[8];
	r->version = ++s->version;
	dre_be64_put(be, s->version);
	dre_batch_put(b, s->st, BUD_CF_META, "v", 1, be, 8);
	dre_budget_status_event e = { 0 };
	char                    seed[320];
	int sl = snprintf(seed, sizeof(seed), "budget-status|%s|%s|%lld",
	    tenant, r->id, (long long) r->version);
	dre_uuid_derive(e.event_id, seed, (size_t) sl);
	e.tenant = tenant;
	e.occurred_at = now;
	e.schema_version = 1;
	e.budget_id = r->id;
	e.version = r->version;
	e.status = status != NULL     ? status
	    : r->consumed >= r->total ? "EXHAUSTED"
	                              : "ACTIVE";
	e.budget_name = r->name;
	e.total_amount = r->total;
	e.consumed_amount = r->consumed;
	e.currency = r->currency;
	dre_buf ev = { 0 };
	dre_err err = dre_avro_encode_budget_status(&ev, &e);
	if (err == DRE_OK) {
		char key[320];
		int  kl = snprintf(key, sizeof(key), "%s/%s", tenant, r->id);
		dre_outbox_put(s->ob, b, DRE_TOPIC_BUDGET_STATUS, key,
		    (size_t) kl, ev.data, ev.len);
	}
	dre_buf_free(&ev);
	return err;
}

dre_err
bud_open(bud *s, const char *path, const dre_kvlist *kafka)
{
	memset(s, 0, sizeof(*s));
	dre_store_cfg cfg = { .path = path, .cfs = bud_cfs, .ncfs = BUD_NCFS };
	dre_err       err = dre_store_open(&s->st, &cfg);
	if (err != DRE_OK)
		return err;
	char  *v = NULL;
	size_t vl = 0;
	if (dre_store_get(s->st, BUD_CF_META, "v", 1, &v, &vl) == DRE_OK
	    && vl == 8)
		s->version = dre_be64_get(v);
	free(v);
	pthread_mutex_init(&s->mu, NULL);
	s->kafka = kafka;
	s->kafka_timeout_ms = 2000;
	if ((err = dre_outbox_open(&s->ob, s->st, BUD_CF_OUTBOX, kafka))
	    != DRE_OK) {
		dre_store_close(s->st);
		pthread_mutex_destroy(&s->mu);
		return err;
	}
	return DRE_OK;
}

void
bud_close(bud *s)
{
	dre_outbox_close(s->ob);
	dre_store_close(s->st);
	pthread_mutex_destroy(&s->mu);
	s->ob = NULL;
	s->st = NULL;
}
