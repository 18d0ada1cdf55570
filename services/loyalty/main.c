// loyalty/main.c -- dre-loyalty: the member system (contacts, points,
// levels) in Engage's v3 shapes, crediting confirmed sales exactly once.
#include <stddef.h>
#include <stdlib.h>

#include "apply.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "handlers.h"
#include "rewards.h"
#include "loyalty.h"

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	char          *group_id;
	int64_t        max_batch;
	char          *coupon_url, *catalog_url;
	int64_t        call_ms;
	dre_ijob_opts  imports;
} loy_cfg;

static const dre_cfg_opt loy_opts[] = {
	DRE_CFG_COMMON(loy_cfg, common, "tcp://127.0.0.1:7601"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(loy_cfg, rpc_workers), "4",
	    "concurrent request handlers" },
	{ "consumer.group_id", DRE_CFG_STR, offsetof(loy_cfg, group_id), "",
	    "consumer group (empty: this instance reads every partition; "
	    "run one instance per store)" },
	{ "consumer.max_batch", DRE_CFG_INT, offsetof(loy_cfg, max_batch),
	    "500", "confirmed sales applied per synced write" },
	{ "coupon.url", DRE_CFG_STR, offsetof(loy_cfg, coupon_url),
	    "tcp://127.0.0.1:7501",
	    "nng URL of dre-coupon (reward vouchers are its codes)" },
	{ "catalog.url", DRE_CFG_STR, offsetof(loy_cfg, catalog_url),
	    "tcp://127.0.0.1:7101",
	    "nng URL of dre-catalog (the promotions assignments name)" },
	{ "rewards.call_timeout_ms", DRE_CFG_INT, offsetof(loy_cfg, call_ms),
	    "2000",
	    "the longest a voucher exchange waits for dre-coupon, an "
	    "assignment for dre-catalog (then 503, nothing changed)",
	    DRE_CFG_RANGE(1, 60000) },
	DRE_IJOB_CFG_ROWS(loy_cfg, imports),
	DRE_CFG_END,
};

static const char *const topics[] = { DRE_TOPIC_TX_CONFIRMED };

int
main(int argc, char **argv)
{
	loy_cfg         cfg = { 0 };
	loy             s;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;
	bool            opened = false;

	dre_svc_init("loyalty", &cfg, loy_opts, &cfg.common, argc, argv);
	char *path = dre_svc_path(&cfg.common, "loyalty");
	if (path == NULL)
		goto out;
	if ((err = loy_open(&s, path, &cfg.common.kafka)) != DRE_OK) {
		dre_error("cannot open the loyalty store %s: %s", path,
		    dre_strerror(err));
		goto out;
	}
	opened = true;
	s.jobs = NULL;
	s.call_ms = cfg.call_ms;
	if ((err = dre_rpc_client_open(&s.coupon, cfg.coupon_url)) != DRE_OK
	    || (err = dre_rpc_client_open(&s.catalog, cfg.catalog_url))
	        != DRE_OK
	    || (err = loy_vouchers_start(&s)) != DRE_OK) {
		dre_error("coupon.url / catalog.url: %s", dre_strerror(err));
		goto out;
	}
	dre_applier_cfg acfg = { .name = "transactions",
		.topics = topics,
		.ntopics = 1,
		.st = s.st,
		.cf = LOY_CF_APPLIER,
		.kafka = &cfg.common.kafka,
		.group_id = cfg.group_id,
		.apply = loy_apply_confirmed,
		.batch_begin = loy_batch_begin,
		.batch_end = loy_batch_end,
		.arg = &s,
		.max_batch = (int) cfg.max_batch };
	if ((err = dre_applier_start(&s.ap, &acfg)) != DRE_OK) {
		dre_error("consumer: %s", dre_strerror(err));
		goto out;
	}
	err = dre_ijob_start(&s.jobs, &cfg.common, "loyalty", s.st,
	    LOY_CF_JOBS, loy_imports, &s, s.ob, &cfg.imports);
	if (err != DRE_OK) {
		goto out;
	}
	if ((err = dre_rpc_server_open(&srv, cfg.common.rpc_listen, loy_routes,
	         &s, (int) cfg.rpc_workers))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_info("loyalty serving on %s", cfg.common.rpc_listen);
	while (!dre_svc_wait(-1))
		;
	dre_info("loyalty stopping");
	rc = 0;
out:
	dre_rpc_server_close(srv);
	if (opened) {
		dre_ijob_close(
		    s.jobs); // at a row boundary: resumed next start
		dre_applier_stop(s.ap); // it kicks the converter
		loy_vouchers_stop(&s);
		dre_rpc_client_close(s.coupon);
		dre_rpc_client_close(s.catalog);
		loy_close(&s);
	}
	free(path);
	dre_config_free(&cfg, loy_opts, &cfg.common.kafka);
	return rc;
}
