// main.c -- dre-gateway: HTTP/JSON in, nng + protobuf out to the evaluator
// shards and the catalog.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "gw.h"

static const dre_cfg_opt gw_opts[] = {
	DRE_CFG_COMMON(gw_cfg, common, ""),
	{ "http.port", DRE_CFG_INT, offsetof(gw_cfg, http_port), "8080",
	    "HTTP port" },
	{ "http.bind", DRE_CFG_STR, offsetof(gw_cfg, http_bind), "127.0.0.1",
	    "HTTP bind address" },
	{ "http.threads", DRE_CFG_INT, offsetof(gw_cfg, http_threads), "2",
	    "HTTP threads (more than cores raises latency)" },
	{ "http.body_limit", DRE_CFG_INT, offsetof(gw_cfg, body_limit),
	    "1048576", "largest request body in bytes (413 beyond)" },
	{ "evaluator.urls", DRE_CFG_STR, offsetof(gw_cfg, evaluator_urls),
	    "tcp://127.0.0.1:7201",
	    "evaluator shards, comma-separated, in shard order" },
	{ "catalog.url", DRE_CFG_STR, offsetof(gw_cfg, catalog_url),
	    "tcp://127.0.0.1:7101", "catalog service" },
	{ "budget.url", DRE_CFG_STR, offsetof(gw_cfg, budget_url),
	    "tcp://127.0.0.1:7301", "budget service (/api/v1/Budgets)" },
	{ "reporting.url", DRE_CFG_STR, offsetof(gw_cfg, reporting_url),
	    "tcp://127.0.0.1:7401", "reporting service (/reporting/*)" },
	{ "coupon.url", DRE_CFG_STR, offsetof(gw_cfg, coupon_url),
	    "tcp://127.0.0.1:7501", "coupon service" },
	{ "auth.dev_users", DRE_CFG_BOOL, offsetof(gw_cfg, dev_users), "true",
	    "enable the PRODUCT-DECISIONS §2 development users" },
	{ "auth.users", DRE_CFG_STR, offsetof(gw_cfg, users), NULL,
	    "user:password:Role[+Role]:tenant, separated by ','" },
	{ "rpc.timeout_ms", DRE_CFG_INT, offsetof(gw_cfg, rpc_timeout_ms),
	    "5000", "deadline of each call to a service" },
	{ "mode", DRE_CFG_STR, offsetof(gw_cfg, mode), "central",
	    "central | local-store" },
	DRE_CFG_END,
};

// open_evaluators dials one client per comma-separated shard URL.
static dre_err
open_evaluators(gw *g, const char *urls)
{
	char   *copy = strdup(urls), *save = NULL;
	dre_err err = DRE_OK;

	if (copy == NULL)
		return DRE_ENOMEM;
	for (char *u = strtok_r(copy, ", ", &save); u != NULL;
	     u = strtok_r(NULL, ", ", &save)) {
		if (g->nevaluators >= GW_MAX_SHARDS) {
			dre_error("evaluator.urls: more than %d shards",
			    GW_MAX_SHARDS);
			err = DRE_ECONFIG;
			break;
		}
		if ((err = dre_rpc_client_open(
		         &g->evaluators[g->nevaluators], u))
		    != DRE_OK)
			break;
		g->nevaluators++;
	}
	free(copy);
	if (err == DRE_OK && g->nevaluators == 0) {
		dre_error("evaluator.urls is empty");
		err = DRE_ECONFIG;
	}
	return err;
}

int
main(int argc, char **argv)
{
	static gw_cfg cfg;
	static gw     g;
	dre_err       err;
	int           rc = 1;

	dre_svc_init("gateway", &cfg, gw_opts, &cfg.common, argc, argv);
	if (strcmp(cfg.mode, "central") != 0
	    && strcmp(cfg.mode, "local-store") != 0) {
		dre_error(
		    "mode must be central or local-store, not %s", cfg.mode);
		return 2;
	}
	if (cfg.http_port <= 0 || cfg.http_port > 65535
	    || cfg.rpc_timeout_ms <= 0 || cfg.body_limit <= 0) {
		dre_error("http.port, rpc.timeout_ms and http.body_limit "
		          "must be positive");
		return 2;
	}
	g.cfg = &cfg;
	g.started_ms = dre_now_ms();
	pthread_mutex_init(&g.free_mu, NULL);
	atomic_init(&g.stopping, false);
	atomic_init(&g.inflight, 0);

	if ((err = dre_auth_open(&g.auth, cfg.users, cfg.dev_users))
	    != DRE_OK) {
		dre_error("auth.users: %s", dre_strerror(err));
		goto out;
	}
	if ((err = open_evaluators(&g, cfg.evaluator_urls)) != DRE_OK
	    || (err = dre_rpc_client_open(&g.catalog, cfg.catalog_url))
	        != DRE_OK
	    || (err = dre_rpc_client_open(&g.budget, cfg.budget_url)) != DRE_OK
	    || (err = dre_rpc_client_open(&g.reporting, cfg.reporting_url))
	        != DRE_OK
	    || (err = dre_rpc_client_open(&g.coupon, cfg.coupon_url))
	        != DRE_OK) {
		dre_error("cannot open rpc clients: %s", dre_strerror(err));
		goto out;
	}
	if ((err = gw_http_start(&g)) != DRE_OK)
		goto out;
	dre_info("listening on http://%s:%d (%zu evaluator shard%s, "
	         "catalog %s, mode %s)",
	    cfg.http_bind, (int) cfg.http_port, g.nevaluators,
	    g.nevaluators == 1 ? "" : "s", cfg.catalog_url, cfg.mode);
	dre_svc_wait(-1);
	rc = 0;
out:
	gw_http_stop(&g);
	for (size_t i = 0; i < g.nevaluators; i++)
		dre_rpc_client_close(g.evaluators[i]);
	dre_rpc_client_close(g.catalog);
	dre_rpc_client_close(g.budget);
	dre_rpc_client_close(g.reporting);
	dre_rpc_client_close(g.coupon);
	dre_auth_close(g.auth);
	dre_config_free(&cfg, gw_opts, &cfg.common.kafka);
	pthread_mutex_destroy(&g.free_mu);
	dre_info("stopped");
	return rc;
}
