// evaluator.h -- the dre-evaluator process: its config and shared state.
#ifndef DRE_EVALUATOR_H
#define DRE_EVALUATOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dre/bus.h"
#include "dre/commit.h"
#include "dre/config.h"
#include "dre/outbox.h"
#include "dre/rpc.h"
#include "dre/store.h"
#include "engine.h"

typedef struct {
	dre_common_cfg common;
	int64_t        shard;
	char          *catalog_url;
	char          *currency;
	int64_t        rpc_workers;
	int64_t        rpc_pending_max; // confirms answered later, at once
	char          *mode; // central | local-store
	int64_t        resnapshot_ms; // safety net while the feed is unhealthy
	int64_t        snapshot_page_bytes; // catalog snapshot page size
	char          *budget_url; // budget service (budget snapshots)
	int64_t        ack_wait_ms; // confirm waits this long for Kafka's ack
	char          *sidefx_services; // services reporting side effects
	int64_t        sidefx_cache_ms; // side-effects poll answers cached
	int64_t        sidefx_timeout_ms; // a job unfinished by then ends
	char          *coupon_url; // coupon service (coupon.Check)
	int64_t        iterations_ttl_ms; // retention of counters, iterations
	int64_t        confirmed_ttl_ms; // retention of confirms and jobs
	int64_t        compact_every_ms; // retention's compaction period
	char          *loyalty_url; // loyalty service (assignments)
	int64_t        loyalty_timeout_ms; // the longest an evaluate waits
} ev_cfg;

// Column families of <data_dir>/evaluator-<shard>.
#define EV_CF_TXN     1 // transaction counters and iteration records
#define EV_CF_MASTER  2 // copy of master data, versions, consumed offsets
#define EV_CF_CONFIRM 3 // confirm markers and side-effect jobs
#define EV_CF_OUTBOX  4 // dre.transactions.confirmed waiting for Kafka
#define EV_CF_SFX     5 // applier of dre.sidefx.results
#define EV_CF_BUDGET  6 // budget states (copy of the budget service's)
#define EV_CF_BAPPLY  7 // applier of dre.budgets.status
#define EV_NCFS       7

// Counter increments of one transaction are serialised by one of these.
#define EV_STRIPES 256
// Each stripe remembers the last counter of this many recently evaluated
// transactions (ev_counter_get): an evaluate of one of them reads no store.
#define EV_COUNTER_WAYS 16

// A remembered counter: tenant \0 transactionId (ev_txn_key) -> last
// counter written and when. Guarded by the key's stripe lock.
typedef struct {
	uint32_t hash; // fnv1a32 of the key; klen 0 = empty
	uint8_t  klen;
	char     key[119];
	int64_t  counter;
	int64_t  at; // epoch ms of that evaluation
} ev_counter_slot;

typedef struct ev_feed    ev_feed;
typedef struct ev_confirm ev_confirm;
typedef struct ev_budgets ev_budgets;

typedef struct {
	ev_cfg           cfg;
	eng_engine      *engine;
	dre_store       *st;
	ev_feed         *feed;
	const char      *source; // "local-store" | "btp"
	int64_t          started_ms;
	pthread_mutex_t  stripes[EV_STRIPES];
	ev_counter_slot *counters; // EV_STRIPES * EV_COUNTER_WAYS
	pthread_key_t    arena_key; // one request arena per rpc worker thread
	atomic_bool      loaded; // an index came from a snapshot or the copy
	atomic_bool      kafka_ok; // the feed's last probe reached Kafka
	atomic_int       kafka_failures; // consecutive failed probes
	atomic_llong     last_sync_ms;
	// Confirm and the event backbone.
	dre_outbox     *ob; // dre.transactions.confirmed relay
	dre_committer  *cm; // group commit of confirms
	eng_budget_set *budgets; // exhausted budgets (engine input)
	ev_confirm     *confirm; // side-effect jobs, poll cache
	ev_budgets     *bud; // budget snapshot + status feed
	atomic_llong    disconnected_since; // mono ms; 0 = connected
	dre_rpc_client *coupon_cli; // coupon.Check for baskets with coupons
	dre_rpc_client *loyalty_cli; // personal promotions of a customer
} ev_svc;

#endif
