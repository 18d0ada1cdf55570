// evaluator/main.c -- dre-evaluator: config, store, engine, feed, rpc, clean
// shutdown.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/log.h"
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
	    "concurrent request handlers (confirms wait for fsync and Kafka, "
	    "so more than cores)",
	    DRE_CFG_RANGE(1, 4096) },
	{ "mode", DRE_CFG_STR, offsetof(ev_cfg, mode), "central",
	    "central | local-store", DRE_CFG_CHOICES("central|local-store") },
	{ "feed.resnapshot_ms", DRE_CFG_INT, offsetof(ev_cfg, resnapshot_ms),
	    "30000", "re-snapshot this often while the feed is unhealthy",
	    DRE_CFG_RANGE(1000, INT64_MAX) },
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

int
main(int argc, char **argv)
{
	static ev_svc   s; // large (stripes); lives for the whole process
	dre_rpc_server *srv = NULL;
	int             rc = 1;
	char           *path = NULL;
	bool            handlers = false;

	dre_svc_init("evaluator", &s.cfg, ev_opts, &s.cfg.common, argc, argv);
	s.started_ms = dre_now_ms();
	s.source = strcmp(s.cfg.mode, "central") == 0 ? "btp" : "local-store";
	char sub[64];
	snprintf(sub, sizeof(sub), "evaluator-%lld", (long long) s.cfg.shard);
	if ((path = dre_svc_path(&s.cfg.common, sub)) == NULL) {
		dre_error("cannot create %s/%s", s.cfg.common.data_dir, sub);
		goto out;
	}
	dre_store_cfg scfg = { .path = path, .cfs = ev_cfs, .ncfs = EV_NCFS };
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
	err = dre_rpc_server_open(&srv, s.cfg.common.rpc_listen, ev_routes, &s,
	    (int) s.cfg.rpc_workers);
	if (err != DRE_OK) {
		dre_error("listen %s: %s", s.cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_info("shard %lld serving on %s (%s mode)", (long long) s.cfg.shard,
	    s.cfg.common.rpc_listen, s.cfg.mode);
	while (!dre_svc_wait(-1))
		;
	dre_info("stopping");
	rc = 0;
out:
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
