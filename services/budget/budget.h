// budget/budget.h -- the budget service's state: budgets in RocksDB, the
// status version sequence, the outbox of its events.
#ifndef BUD_BUDGET_H
#define BUD_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "budget.pb-c.h"
#include "dre/arena.h"
#include "dre/bus.h"
#include "dre/config.h"
#include "dre/consumer.h"
#include "dre/outbox.h"
#include "dre/store.h"

// Column families (0 is RocksDB's "default", unused).
enum {
	BUD_CF_BUDGETS = 1, // tenant \0 id -> dre.BudgetRecord
	BUD_CF_META, // 'v' -> last status version (be64)
	BUD_CF_OUTBOX, // events waiting for Kafka
	BUD_CF_APPLIER, // the dre.transactions.confirmed applier's keys
	BUD_CF_AUDIT, // the audit records of /api/v1 writes (dre/audit.h)
	BUD_CF_JOBS, // import jobs (dre/importjob.h)
	BUD_NCFS = BUD_CF_JOBS,
};

typedef struct {
	dre_store        *st;
	dre_outbox       *ob;
	dre_applier      *ap;
	const dre_kvlist *kafka; // borrowed from the config
	int               kafka_timeout_ms;
	// mu serialises every read-modify-write of a budget: API calls take
	// it per call, the applier for a whole batch (begin to end).
	pthread_mutex_t mu;
	int64_t         version; // last status version handed out; under mu
	struct dre_ijob_reg *jobs; // import jobs of Budgets (handlers.c)
} bud;

// bud_key writes tenant \0 id; 0 when it does not fit in cap.
size_t bud_key(char *out, size_t cap, const char *tenant, const char *id);

// bud_get reads budget id of tenant as b will leave it (b may be NULL),
// unpacked into a. DRE_ENOTFOUND when absent, DRE_ECODEC when unreadable.
dre_err bud_get(bud *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *id, Dre__BudgetRecord **out);
// bud_put stores r into b.
dre_err bud_put(bud *s, dre_batch *b, dre_arena *a, const char *tenant,
    const Dre__BudgetRecord *r);

// bud_status_changed gives r the next status version (persisted in b) and
// queues its dre.budgets.status event; status NULL = r's own state.
dre_err bud_status_changed(bud *s, dre_batch *b, const char *tenant,
    Dre__BudgetRecord *r, const char *status, int64_t now);

// bud_open / bud_close: store, version, outbox (service main and tests).
dre_err bud_open(bud *s, const char *path, const dre_kvlist *kafka);
void    bud_close(bud *s);

#endif
