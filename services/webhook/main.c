// webhook/main.c -- dre-webhook: webhook subscriptions, events on the
// backbone turned into signed HTTP deliveries (at least once, retried,
// dead-lettered), the delivery log and its repost.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "apply.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "handlers.h"
#include "webhook.h"

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	char          *group_id;
	int64_t        max_batch;
	char          *key_file;
	bool           allow_insecure;
	int64_t        timeout_ms;
	int64_t        max_in_flight;
	int64_t        max_in_flight_per_sub;
	int64_t        retention_ms;
	char          *sfx_services;
	char          *catalog_url;
} wh_cfg;

static const dre_cfg_opt wh_opts_table[] = {
	DRE_CFG_COMMON(wh_cfg, common, "tcp://127.0.0.1:7701"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(wh_cfg, rpc_workers), "4",
	    "concurrent request handlers" },
	{ "consumer.group_id", DRE_CFG_STR, offsetof(wh_cfg, group_id), "",
	    "consumer group (empty: this instance reads every partition; run "
	    "one instance per store)" },
	{ "consumer.max_batch", DRE_CFG_INT, offsetof(wh_cfg, max_batch),
	    "500", "events turned into deliveries per synced write" },
	{ "webhook.key_file", DRE_CFG_STR, offsetof(wh_cfg, key_file), "",
	    "the 32-byte key sealing subscription secrets at rest (AES-256-"
	    "GCM), created on first start; empty: <data_dir>/webhook.key, "
	    "outside the store. Keep it out of copies of the data" },
	{ "webhook.allow_insecure_urls", DRE_CFG_BOOL,
	    offsetof(wh_cfg, allow_insecure), "false",
	    "allow http targets and private, loopback and link-local "
	    "addresses (dev and test stacks only)" },
	{ "webhook.timeout_ms", DRE_CFG_INT, offsetof(wh_cfg, timeout_ms),
	    "10000", "how long one delivery attempt may take" },
	{ "webhook.max_in_flight", DRE_CFG_INT,
	    offsetof(wh_cfg, max_in_flight), "64",
	    "delivery attempts in flight, all subscriptions together" },
	{ "webhook.max_in_flight_per_subscription", DRE_CFG_INT,
	    offsetof(wh_cfg, max_in_flight_per_sub), "8",
	    "delivery attempts in flight to one subscription" },
	{ "webhook.retention_ms", DRE_CFG_INT, offsetof(wh_cfg, retention_ms),
	    "604800000",
	    "how long DELIVERED records are kept (FAILED ones stay until "
	    "reposted or deleted)" },
	{ "webhook.sidefx_services", DRE_CFG_STR,
	    offsetof(wh_cfg, sfx_services),
	    "budget,reporting,coupon,loyalty,webhook",
	    "services whose results complete a sale's side effects "
	    "(SIDE_EFFECTS_COMPLETED; as the evaluator's sidefx.services)" },
	{ "catalog.url", DRE_CFG_STR, offsetof(wh_cfg, catalog_url),
	    "tcp://127.0.0.1:7101",
	    "catalog service (snapshot of the promotions, taken when the "
	    "promotion feed has no position: PROMOTION_* events)" },
	DRE_CFG_END,
};

// The promotion feed has its own applier (promos.c).
static const char *const topics[] = { DRE_TOPIC_TX_CONFIRMED,
	DRE_TOPIC_BUDGET_EVENTS, DRE_TOPIC_COUPON_EVENTS,
	DRE_TOPIC_LOYALTY_EVENTS, DRE_TOPIC_SIDEFX, DRE_TOPIC_TX_RETURNED };

#define MAX_SFX 16

// split_services cuts the comma list (in place) into at most MAX_SFX names.
static size_t
split_services(char *list, const char **out)
{
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(list, ", ", &save);
	     t != NULL && n < MAX_SFX; t = strtok_r(NULL, ", ", &save))
		out[n++] = t;
	return n;
}

int
main(int argc, char **argv)
{
	wh_cfg          cfg = { 0 };
	wh              s;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;
	bool            opened = false;
	char           *key_file = NULL;

	dre_svc_init("webhook", &cfg, wh_opts_table, &cfg.common, argc, argv);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		dre_error("libcurl cannot be initialised");
		goto out;
	}
	char *path = dre_svc_path(&cfg.common, "webhook");
	if (path == NULL)
		goto out;
	if (cfg.key_file != NULL && cfg.key_file[0] != '\0') {
		key_file = strdup(cfg.key_file);
	} else if ((key_file = malloc(strlen(cfg.common.data_dir) + 16))
	    != NULL) {
		sprintf(key_file, "%s/webhook.key", cfg.common.data_dir);
	}
	if (key_file == NULL
	    || (err = wh_open(&s, path, key_file, &cfg.common.kafka))
	        != DRE_OK) {
		dre_error("cannot open the webhook store %s", path);
		free(path);
		goto out;
	}
	free(path);
	opened = true;
	s.o.allow_insecure = cfg.allow_insecure;
	s.o.timeout_ms = cfg.timeout_ms;
	s.o.max_in_flight = cfg.max_in_flight;
	s.o.max_in_flight_per_sub = cfg.max_in_flight_per_sub;
	s.o.retention_ms = cfg.retention_ms;
	const char *sfx[MAX_SFX];
	s.o.nsfx
	    = cfg.sfx_services ? split_services(cfg.sfx_services, sfx) : 0;
	s.o.sfx_services = sfx;
	if (s.o.allow_insecure)
		dre_warn("webhook.allow_insecure_urls: http and internal "
		         "targets are allowed (never in production)");
	if ((err = wh_deliverer_start(&s)) != DRE_OK) {
		dre_error("delivery thread: %s", dre_strerror(err));
		goto out;
	}
	dre_applier_cfg acfg = { .name = "webhook events",
		.topics = topics,
		.ntopics = sizeof topics / sizeof topics[0],
		.st = s.st,
		.cf = WH_CF_APPLIER,
		.kafka = &cfg.common.kafka,
		.group_id = cfg.group_id,
		.apply = wh_apply,
		.batch_begin = wh_batch_begin,
		.batch_end = wh_batch_end,
		.arg = &s,
		.max_batch = (int) cfg.max_batch };
	if ((err = dre_applier_start(&s.ap, &acfg)) != DRE_OK
	    || (err = wh_promos_start(&s, cfg.catalog_url, &cfg.common.kafka))
	        != DRE_OK) {
		dre_error("consumer: %s", dre_strerror(err));
		goto out;
	}
	if ((err = dre_rpc_server_open(&srv, cfg.common.rpc_listen, wh_routes,
	         &s, (int) cfg.rpc_workers))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		goto out;
	}
	dre_info("webhook serving on %s", cfg.common.rpc_listen);
	while (!dre_svc_wait(-1))
		;
	dre_info("webhook stopping");
	rc = 0;
out:
	dre_rpc_server_close(srv);
	if (opened) {
		wh_promos_stop(&s);
		dre_applier_stop(s.ap);
		wh_deliverer_stop(&s);
		wh_close(&s);
	}
	free(key_file);
	dre_config_free(&cfg, wh_opts_table, &cfg.common.kafka);
	curl_global_cleanup();
	return rc;
}
