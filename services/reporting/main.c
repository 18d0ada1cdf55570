// reporting/main.c -- dre-reporting: report figures from confirmed sales
// (never from evaluate or simulate), built exactly once.
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "handlers.h"
#include "reporting.h"

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	char          *budget_url;
	char          *catalog_url;
	int64_t        rpc_timeout_ms;
	char          *group_id;
	int64_t        max_batch;
} rep_cfg;

static const dre_cfg_opt rep_opts[] = {
	DRE_CFG_COMMON(rep_cfg, common, "tcp://127.0.0.1:7401"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(rep_cfg, rpc_workers), "2",
	    "concurrent report queries", DRE_CFG_RANGE(1, 4096) },
	{ "budget.url", DRE_CFG_STR, offsetof(rep_cfg, budget_url),
	    "tcp://127.0.0.1:7301", "budget service (BudgetUtilization)" },
	{ "catalog.url", DRE_CFG_STR, offsetof(rep_cfg, catalog_url),
	    "tcp://127.0.0.1:7101", "catalog (promotion status)" },
	{ "rpc.timeout_ms", DRE_CFG_INT, offsetof(rep_cfg, rpc_timeout_ms),
	    "2000", "deadline of calls to the budget service and catalog",
	    DRE_CFG_POSITIVE },
	{ "consumer.group_id", DRE_CFG_STR, offsetof(rep_cfg, group_id), "",
	    "consumer group (empty: this instance reads every partition)" },
	{ "consumer.max_batch", DRE_CFG_INT, offsetof(rep_cfg, max_batch),
	    "500", "confirmed sales applied per synced write",
	    DRE_CFG_RANGE(1, 100000) },
	DRE_CFG_END,
};

static const char *const topics[] = { DRE_TOPIC_TX_CONFIRMED };

int
main(int argc, char **argv)
{
	rep_cfg         cfg = { 0 };
	rep_svc         s;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;
	bool            opened = false;

	memset(&s, 0, sizeof(s));
	dre_svc_init("reporting", &cfg, rep_opts, &cfg.common, argc, argv);
	char *path = dre_svc_path(&cfg.common, "reporting");
	if (path == NULL)
		goto out;
	if ((err = rep_open(&s, path, &cfg.common.kafka)) != DRE_OK) {
		dre_error("cannot open the reporting store %s: %s", path,
		    dre_strerror(err));
		goto out;
	}
	opened = true;
	s.budget_url = cfg.budget_url;
	s.catalog_url = cfg.catalog_url;
	s.rpc_timeout_ms = (int) cfg.rpc_timeout_ms;
	dre_applier_cfg acfg = { .name = "transactions",
		.topics = topics,
		.ntopics = 1,
		.st = s.st,
		.cf = REP_CF_APPLIER,
		.kafka = &cfg.common.kafka,
		.group_id = cfg.group_id,
		.apply = rep_apply_confirmed,
		.batch_end = rep_batch_end,
		.arg = &s,
		.max_batch = (int) cfg.max_batch };
	if ((err = dre_applier_start(&s.ap, &acfg)) != DRE_OK) {
		dre_error("consumer: %s", dre_strerror(err));
		goto out;
	}
	if ((err = dre_rpc_server_open(&srv, cfg.common.rpc_listen, rep_routes,
	         &s, (int) cfg.rpc_workers))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_info("reporting serving on %s", cfg.common.rpc_listen);
	while (!dre_svc_wait(-1))
		;
	dre_info("reporting stopping");
	rc = 0;
out:
	dre_rpc_server_close(srv);
	if (opened) {
		dre_applier_stop(s.ap);
		rep_close(&s);
	}
	free(path);
	dre_config_free(&cfg, rep_opts, &cfg.common.kafka);
	return rc;
}
