// evaluator/main.c -- dre-evaluator: config, store, engine, feed, rpc, clean
// shutdown.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/health.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/outbox.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "evaluator.h"
#include "budgets.h"
#include "confirm.h"
#include "feed.h"
#include "handlers.h"

static const dre_cfg_opt ev_opts[] = {
	DRE_CFG_COMMON(ev_cfg, common, "tcp://127.0.0.1:7201"),
	{ "shard", DRE_CFG_INT, offsetof(ev_cfg, shard), "0",
	    "evaluator shard number (state in <data_dir>/evaluator-<shard>)",
	    DRE_CFG_RANGE(0, 1023) },
	{ "catalog.url", DRE_CFG_STR, offsetof(ev_cfg, catalog_url),
	    "tcp://127.0.0.1:7101", "nng URL of dre-catalog (snapshots)" },
	{ "currency", DRE_CFG_STR, offsetof(ev_cfg, currency), "EUR",
	    "currency of the answers" },
	{ "rpc.workers", DRE_CFG_INT, offsetof(ev_cfg, rpc_workers), "128",
	    "request handler threads for calls that may block (a repeated "
	    "confirm waits for the first one, a poll reads the store); a "
	    "confirm waits for fsync and Kafka without one (rpc.pending_max)",
	    DRE_CFG_RANGE(1, 4096) },
	{ "rpc.pending_max", DRE_CFG_INT, offsetof(ev_cfg, rpc_pending_max),
	    "512",
	    "calls waiting at once without holding a handler thread: "
	    "confirms for their fsync and Kafka's acknowledgement, "
	    "evaluates for coupon and loyalty (more wait in one)",
	    DRE_CFG_RANGE(0, 65536) },
	{ "mode", DRE_CFG_STR, offsetof(ev_cfg, mode), "central",
	    "central | local-store", DRE_CFG_CHOICES("central|local-store") },
	{ "feed.resnapshot_ms", DRE_CFG_INT, offsetof(ev_cfg, resnapshot_ms),
	    "30000", "re-snapshot this often while the feed is unhealthy",
	    DRE_CFG_RANGE(1000, INT64_MAX) },
	{ "snapshot.page_bytes", DRE_CFG_INT,
	    offsetof(ev_cfg, snapshot_page_bytes), "1048576",
	    "the catalog's snapshot comes in pages of about this many bytes, "
	    "each a call of its own (0 = all in one answer)",
	    DRE_CFG_RANGE(0, 1 << 30) },
	{ "budget.url", DRE_CFG_STR, offsetof(ev_cfg, budget_url),
	    "tcp://127.0.0.1:7301", "nng URL of dre-budget (snapshots)" },
	{ "confirm.ack_wait_ms", DRE_CFG_INT, offsetof(ev_cfg, ack_wait_ms),
	    "250",
	    "how long a confirm waits for Kafka's acknowledgement before it "
	    "answers \"queued\" (0 = never wait)",
	    DRE_CFG_NONNEGATIVE },
	{ "sidefx.services", DRE_CFG_STR, offsetof(ev_cfg, sidefx_services),
	    "budget,reporting,coupon,loyalty,webhook",
	    "services whose results complete a side-effects job" },
	{ "sidefx.cache_ms", DRE_CFG_INT, offsetof(ev_cfg, sidefx_cache_ms),
	    "1000", "side-effects poll answers are cached this long",
	    DRE_CFG_NONNEGATIVE },
	{ "sidefx.timeout_ms", DRE_CFG_INT,
	    offsetof(ev_cfg, sidefx_timeout_ms), "60000",
	    "a side-effects job some service has not answered this long "
	    "after the confirm ends PARTIAL or FAILED, naming the service "
	    "(0 = wait for ever)",
	    DRE_CFG_NONNEGATIVE },
	{ "coupon.url", DRE_CFG_STR, offsetof(ev_cfg, coupon_url),
	    "tcp://127.0.0.1:7501",
	    "nng URL of dre-coupon (coupon.Check for baskets with coupons)" },
	{ "retention.iterations_ms", DRE_CFG_INT,
	    offsetof(ev_cfg, iterations_ttl_ms), "86400000",
	    "transaction counters and evaluated iterations are dropped this "
	    "long after their last evaluation (a confirm of an older "
	    "iteration is 404; 0 = kept for ever)",
	    DRE_CFG_NONNEGATIVE },
	{ "retention.confirmed_ms", DRE_CFG_INT,
	    offsetof(ev_cfg, confirmed_ttl_ms), "604800000",
	    "confirm markers and side-effect jobs are dropped this long after "
	    "the confirm (a repeated confirm is then 404, the side-effects "
	    "poll 404; 0 = kept for ever)",
	    DRE_CFG_NONNEGATIVE },
	{ "retention.compact_every_ms", DRE_CFG_INT,
	    offsetof(ev_cfg, compact_every_ms), "3600000",
	    "how often the store is compacted to drop expired records",
	    DRE_CFG_POSITIVE },
	{ "loyalty.url", DRE_CFG_STR, offsetof(ev_cfg, loyalty_url),
	    "tcp://127.0.0.1:7601",
	    "nng URL of dre-loyalty (the personal promotions of a basket's "
	    "customer)" },
	{ "loyalty.timeout_ms", DRE_CFG_INT,
	    offsetof(ev_cfg, loyalty_timeout_ms), "50",
	    "the longest an evaluate waits for loyalty; past it the basket is "
	    "priced without personal promotions (warning "
	    "LOYALTY_UNAVAILABLE)",
	    DRE_CFG_RANGE(1, 10000) },
	DRE_CFG_END,
};

static const char *const ev_cfs[]
    = { "txn", "master", "confirm", "outbox", "sfx", "budget", "bapply" };

// index_collect sets the engine's gauges before a metrics rendering.
static void
index_collect(void *arg)
{
	ev_svc          *s = arg;
	const eng_index *ix = eng_acquire(s->engine);
	size_t           ents = 0, bytes = eng_index_bytes(ix, &ents);

	dre_metric_set(dre_metric_gauge("dre_engine_index_promotions",
	                   "live promotions in the engine's index", NULL),
	    (int64_t) eng_index_promotions(ix, NULL));
	dre_metric_set(dre_metric_gauge("dre_engine_index_entities",
	                   "master-data entities in the index (tombstones "
	                   "included)",
	                   NULL),
	    (int64_t) ents);
	dre_metric_set(dre_metric_gauge("dre_engine_index_bytes",
	                   "memory of the index's tenants and entities", NULL),
	    (int64_t) bytes);
	dre_metric_set(
	    dre_metric_gauge("dre_engine_index_version",
	        "version (feed position) of the published index", NULL),
	    eng_index_version(ix));
	eng_index_release(ix);
	dre_metric_set(dre_metric_gauge("dre_evaluator_feed_connected",
	                   "1 while the master-data feed reaches Kafka", NULL),
	    atomic_load(&s->kafka_ok) ? 1 : 0);
}

// index_loaded: not ready before the first master data was loaded.
static bool
index_loaded(void *arg)
{
	ev_svc *s = arg;
	return atomic_load(&s->loaded);
}

// ev_check: an iteration never outlives its confirm marker (else a repeated
// confirm would find the iteration without the marker and confirm twice).
static bool
ev_check(const void *c)
{
	const ev_cfg *cfg = c;
	if (cfg->confirmed_ttl_ms > 0
	    && (cfg->iterations_ttl_ms == 0
	        || cfg->iterations_ttl_ms > cfg->confirmed_ttl_ms)) {
		dre_error(
		    "retention.iterations_ms (%lld) must be at most "
		    "retention.confirmed_ms (%lld), and not 0 (for ever) "
		    "while that is not",
		    (long long) cfg->iterations_ttl_ms,
		    (long long) cfg->confirmed_ttl_ms);
		return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	static ev_svc   s; // large (stripes); lives for the whole process
	dre_rpc_server *srv = NULL;
	int             rc = 1;
	char           *path = NULL;
	bool            handlers = false;

	dre_svc_on_check(ev_check);
	dre_svc_init("evaluator", &s.cfg, ev_opts, &s.cfg.common, argc, argv);
	if (!ev_check(&s.cfg)) {
		dre_config_free(&s.cfg, ev_opts, &s.cfg.common.kafka);
		return 2;
	}
	s.started_ms = dre_now_ms();
	s.source = strcmp(s.cfg.mode, "central") == 0 ? "btp" : "local-store";
	char sub[64];
	snprintf(sub, sizeof(sub), "evaluator-%lld", (long long) s.cfg.shard);
	if ((path = dre_svc_path(&s.cfg.common, sub)) == NULL) {
		dre_error("cannot create %s/%s", s.cfg.common.data_dir, sub);
		goto out;
	}
	// Retention (docs/operating.md "Data retention"): by compaction.
	dre_store_ttl ttl[EV_NCFS + 1] = { { 0 } };
	ttl[EV_CF_TXN]
	    = (dre_store_ttl) { s.cfg.iterations_ttl_ms, ev_txn_record_time };
	ttl[EV_CF_CONFIRM] = (dre_store_ttl) { s.cfg.confirmed_ttl_ms,
		ev_confirm_record_time };
	// The master data's copy takes a catalog snapshot (hundreds of MB
	// at scale) in bulk: larger memtables, fewer files to compact. The
	// iterations (~1 KB per evaluate, random keys) too: with 4 MiB
	// memtables every L0 compaction rewrote L1 for 16 MiB of input, and
	// compaction took 15 us of CPU per evaluate under sustained load
	// (4 us with 32 MiB; docs/performance.md, session 13).
	size_t wbuf[EV_NCFS + 1] = { 0 };
	wbuf[EV_CF_MASTER] = 64;
	wbuf[EV_CF_TXN] = 32;
	dre_store_cfg scfg = { .path = path,
		.cfs = ev_cfs,
		.ncfs = EV_NCFS,
		.ttl = ttl,
		.compact_every_ms = s.cfg.compact_every_ms,
		.write_buffer_mb = wbuf };
	dre_err       err = dre_store_open(&s.st, &scfg);
	if (err != DRE_OK) {
		dre_error("store %s: %s", path, dre_strerror(err));
		goto out;
	}
	if (eng_alloc(&s.engine) != DRE_OK
	    || eng_budget_set_alloc(&s.budgets) != DRE_OK
	    || ev_handlers_init(&s) != DRE_OK) {
		dre_error("out of memory");
		goto out;
	}
	handlers = true;
	if ((err = ev_feed_start(&s)) != DRE_OK) {
		dre_error("feed: %s", dre_strerror(err));
		goto out;
	}
	// After the feed: it completes kafka.bootstrap.servers.
	if ((err = dre_outbox_open(
	         &s.ob, s.st, EV_CF_OUTBOX, &s.cfg.common.kafka))
	        != DRE_OK
	    || (err = dre_committer_open(&s.cm, s.st)) != DRE_OK
	    || (err = ev_confirm_start(&s)) != DRE_OK
	    || (err = ev_budgets_start(&s)) != DRE_OK) {
		dre_error("event backbone: %s", dre_strerror(err));
		goto out;
	}
	if ((err = dre_rpc_client_open(&s.coupon_cli, s.cfg.coupon_url))
	    != DRE_OK) {
		dre_error(
		    "coupon.url %s: %s", s.cfg.coupon_url, dre_strerror(err));
		goto out;
	}
	if ((err = dre_rpc_client_open(&s.loyalty_cli, s.cfg.loyalty_url))
	    != DRE_OK) {
		dre_error("loyalty.url %s: %s", s.cfg.loyalty_url,
		    dre_strerror(err));
		goto out;
	}
	err = dre_rpc_server_open_pending(&srv, s.cfg.common.rpc_listen,
	    ev_routes, &s, (int) s.cfg.rpc_workers,
	    (int) s.cfg.rpc_pending_max);
	if (err != DRE_OK) {
		dre_error("listen %s: %s", s.cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_metrics_collector_add(index_collect, &s);
	dre_health_add("index_loaded", index_loaded, &s);
	dre_info("shard %lld serving on %s (%s mode)", (long long) s.cfg.shard,
	    s.cfg.common.rpc_listen, s.cfg.mode);
	while (!dre_svc_wait(-1))
		;
	dre_info("stopping");
	rc = 0;
out:
	dre_metrics_collector_remove(index_collect, &s);
	dre_health_remove(index_loaded, &s);
	dre_rpc_server_close(srv); // no handler runs past this
	dre_rpc_client_close(s.coupon_cli);
	dre_rpc_client_close(s.loyalty_cli);
	ev_budgets_stop(&s);
	ev_confirm_stop(&s);
	dre_committer_close(s.cm);
	dre_outbox_close(s.ob);
	ev_feed_stop(&s);
	if (handlers)
		ev_handlers_fini(&s);
	eng_free(s.engine);
	eng_budget_set_free(s.budgets);
	dre_store_close(s.st);
	free(path);
	dre_config_free(&s.cfg, ev_opts, &s.cfg.common.kafka);
	return rc;
}
