// budget/main.c -- dre-budget: budgets (CRUD), their consumption by
// confirmed sales (exactly once), status and threshold events.
#include <stddef.h>
#include <stdlib.h>

#include "apply.h"
#include "budget.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "handlers.h"

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	int64_t        kafka_timeout_ms;
	char          *group_id;
	int64_t        max_batch;
	dre_ijob_opts  imports;
} bud_cfg;

static const dre_cfg_opt bud_opts[] = {
	DRE_CFG_COMMON(bud_cfg, common, "tcp://127.0.0.1:7301"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(bud_cfg, rpc_workers), "4",
	    "concurrent request handlers", DRE_CFG_RANGE(1, 4096) },
	{ "snapshot.kafka_timeout_ms", DRE_CFG_INT,
	    offsetof(bud_cfg, kafka_timeout_ms), "2000",
	    "how long a snapshot waits for Kafka watermarks",
	    DRE_CFG_POSITIVE },
	{ "consumer.group_id", DRE_CFG_STR, offsetof(bud_cfg, group_id), "",
	    "consumer group (empty: this instance reads every partition; "
	    "budgets are shared by all partitions, so run one instance per "
	    "store)" },
	{ "consumer.max_batch", DRE_CFG_INT, offsetof(bud_cfg, max_batch),
	    "500", "confirmed sales applied per synced write",
	    DRE_CFG_RANGE(1, 100000) },
	DRE_IJOB_CFG_ROWS(bud_cfg, imports),
	DRE_CFG_END,
};

static const char *const topics[] = { DRE_TOPIC_TX_CONFIRMED };

int
main(int argc, char **argv)
{
	bud_cfg         cfg = { 0 };
	bud             s;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;
	bool            opened = false;

	dre_svc_init("budget", &cfg, bud_opts, &cfg.common, argc, argv);
	char *path = dre_svc_path(&cfg.common, "budget");
	if (path == NULL)
		goto out;
	if ((err = bud_open(&s, path, &cfg.common.kafka)) != DRE_OK) {
		dre_error("cannot open the budget store %s: %s", path,
		    dre_strerror(err));
		goto out;
	}
	opened = true;
	s.jobs = NULL;
	s.kafka_timeout_ms = (int) cfg.kafka_timeout_ms;
	dre_applier_cfg acfg = { .name = "transactions",
		.topics = topics,
		.ntopics = 1,
		.st = s.st,
		.cf = BUD_CF_APPLIER,
		.kafka = &cfg.common.kafka,
		.group_id = cfg.group_id,
		.apply = bud_apply_confirmed,
		.batch_begin = bud_batch_begin,
		.batch_end = bud_batch_end,
		.arg = &s,
		.max_batch = (int) cfg.max_batch };
	if ((err = dre_applier_start(&s.ap, &acfg)) != DRE_OK) {
		dre_error("consumer: %s", dre_strerror(err));
		goto out;
	}
	err = dre_ijob_start(&s.jobs, &cfg.common, "budget", s.st, BUD_CF_JOBS,
	    bud_imports, &s, s.ob, &cfg.imports);
	if (err != DRE_OK) {
		goto out;
	}
	if ((err = dre_rpc_server_open(&srv, cfg.common.rpc_listen, bud_routes,
	         &s, (int) cfg.rpc_workers))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_info("budget serving on %s", cfg.common.rpc_listen);
	while (!dre_svc_wait(-1))
		;
	dre_info("budget stopping");
	rc = 0;
out:
	dre_rpc_server_close(srv);
	if (opened) {
		dre_ijob_close(
		    s.jobs); // at a row boundary: resumed next start
		dre_applier_stop(s.ap);
		bud_close(&s);
	}
	free(path);
	dre_config_free(&cfg, bud_opts, &cfg.common.kafka);
	return rc;
}
