// coupon/main.c -- dre-coupon: coupon types, codes, reservations and
// redemptions, the coupon effects of confirmed sales (config, store, jobs,
// promotion links, the confirmed-sales consumer, rpc, shutdown).
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "coupon.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/importjob.h"
#include "handlers.h"

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	char          *catalog_url;
	int64_t        reservation_ttl_ms;
	int64_t        issue_rate_per_min;
	int64_t        sweep_ms;
	int64_t        retention_ms;
	int64_t        batch_chunk;
	int64_t        resnapshot_ms;
	int64_t        max_batch;
	dre_ijob_opts  imports;
} cp_cfg;

static const dre_cfg_opt cp_cfg_opts[] = {
	DRE_CFG_COMMON(cp_cfg, common, "tcp://127.0.0.1:7501"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(cp_cfg, rpc_workers), "8",
	    "concurrent request handlers (synced writes of different codes "
	    "share an fsync)",
	    DRE_CFG_RANGE(1, 4096) },
	{ "catalog.url", DRE_CFG_STR, offsetof(cp_cfg, catalog_url),
	    "tcp://127.0.0.1:7101",
	    "catalog service (snapshot of promotion -> coupon type links)" },
	{ "coupon.reservation_ttl_ms", DRE_CFG_INT,
	    offsetof(cp_cfg, reservation_ttl_ms), "900000",
	    "a reservation not redeemed within this time lapses and the code "
	    "is usable again",
	    DRE_CFG_POSITIVE },
	{ "coupon.issue_rate_per_min", DRE_CFG_INT,
	    offsetof(cp_cfg, issue_rate_per_min), "1000",
	    "codes POST /pos/coupons/issue may create per minute and tenant",
	    DRE_CFG_POSITIVE },
	{ "coupon.sweep_ms", DRE_CFG_INT, offsetof(cp_cfg, sweep_ms), "1000",
	    "how often lapsed reservations and expired codes are swept",
	    DRE_CFG_POSITIVE },
	{ "coupon.reservation_retention_ms", DRE_CFG_INT,
	    offsetof(cp_cfg, retention_ms), "86400000",
	    "finished reservations are kept this long (redeem/cancel "
	    "answers)",
	    DRE_CFG_NONNEGATIVE },
	{ "coupon.batch_chunk", DRE_CFG_INT, offsetof(cp_cfg, batch_chunk),
	    "1000", "codes a batch job writes per synced batch",
	    DRE_CFG_RANGE(1, 100000) },
	{ "feed.resnapshot_ms", DRE_CFG_INT, offsetof(cp_cfg, resnapshot_ms),
	    "30000", "without Kafka: how often the links are re-read",
	    DRE_CFG_RANGE(1000, INT64_MAX) },
	{ "consumer.max_batch", DRE_CFG_INT, offsetof(cp_cfg, max_batch),
	    "500",
	    "confirmed sales (dre.transactions.confirmed) applied per synced "
	    "write",
	    DRE_CFG_RANGE(1, 100000) },
	DRE_IJOB_CFG_ROWS(cp_cfg, imports),
	DRE_CFG_END,
};

// bootstrap_default takes the embedded broker's address from
// <data_dir>/broker/bootstrap when kafka.bootstrap.servers is not set.
static void
bootstrap_default(cp_cfg *cfg)
{
	dre_kvlist *k = &cfg->common.kafka;
	char        path[1024], line[512];
	if (dre_kvlist_get(k, "bootstrap.servers") != NULL)
		return;
	snprintf(
	    path, sizeof path, "%s/broker/bootstrap", cfg->common.data_dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return;
	if (fgets(line, sizeof line, fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0')
			dre_kvlist_set(k, "bootstrap.servers", line);
	}
	fclose(fp);
}

int
main(int argc, char **argv)
{
	cp_cfg          cfg = { 0 };
	static cp       s;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;
	char           *path = NULL;

	dre_svc_init("coupon", &cfg, cp_cfg_opts, &cfg.common, argc, argv);
	bootstrap_default(&cfg);
	if ((path = dre_svc_path(&cfg.common, "coupon")) == NULL)
		goto out;
	cp_opts o = {
		.reservation_ttl_ms = cfg.reservation_ttl_ms,
		.issue_rate_per_min = cfg.issue_rate_per_min,
		.sweep_ms = cfg.sweep_ms,
		.retention_ms = cfg.retention_ms,
		.batch_chunk = cfg.batch_chunk,
		.resnapshot_ms = cfg.resnapshot_ms,
		.catalog_url = cfg.catalog_url,
		.data_dir = cfg.common.data_dir,
	};
	if ((err = cp_open(&s, path, &cfg.common.kafka, &o)) != DRE_OK) {
		dre_error("cannot open the coupon store %s: %s", path,
		    dre_strerror(err));
		goto out;
	}
	if ((err = cp_jobs_start(&s)) != DRE_OK
	    || (err = cp_links_start(&s)) != DRE_OK
	    || (err = cp_applier_start(&s, (int) cfg.max_batch)) != DRE_OK) {
		dre_error(
		    "cannot start the background jobs: %s", dre_strerror(err));
		cp_links_stop(&s);
		cp_jobs_stop(&s);
		cp_close(&s);
		goto out;
	}
	err = dre_ijob_start(&s.jobs, &cfg.common, "coupon", s.st, CF_JOBS,
	    cp_imports, &s, s.ob, &cfg.imports);
	if (err != DRE_OK) {
		cp_applier_stop(&s);
		cp_links_stop(&s);
		cp_jobs_stop(&s);
		cp_close(&s);
		goto out;
	}
	if ((err = dre_rpc_server_open(&srv, cfg.common.rpc_listen, cp_routes,
	         &s, (int) cfg.rpc_workers))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		dre_ijob_close(s.jobs);
		cp_applier_stop(&s);
		cp_links_stop(&s);
		cp_jobs_stop(&s);
		cp_close(&s);
		goto out;
	}
	dre_info("coupon serving on %s (reservation TTL %lld ms, issue limit "
	         "%lld/min)",
	    cfg.common.rpc_listen, (long long) cfg.reservation_ttl_ms,
	    (long long) cfg.issue_rate_per_min);
	while (!dre_svc_wait(-1))
		;
	dre_info("coupon stopping");
	dre_rpc_server_close(srv);
	dre_ijob_close(s.jobs); // at a row boundary: resumed at the next start
	cp_applier_stop(&s);
	cp_links_stop(&s);
	cp_jobs_stop(&s);
	cp_close(&s);
	rc = 0;
out:
	free(path);
	dre_config_free(&cfg, cp_cfg_opts, &cfg.common.kafka);
	return rc;
}
