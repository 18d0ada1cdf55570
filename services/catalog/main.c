// catalog/main.c -- dre-catalog: the source of truth for master data (config,
// store, rpc, shutdown).
#include <stddef.h>
#include <stdlib.h>

#include "catalog.h"
#include "dre/auth.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "handlers.h"
#include "identity.h"

// Calls the catalog answers later, at most this many at a time: API-key
// revocations waiting for the keys' leases to run out (identity.c).
#define CAT_PENDING_MAX 64

typedef struct {
	dre_common_cfg common;
	int64_t        rpc_workers;
	int64_t        kafka_timeout_ms;
	char          *issuer;
	int64_t        token_ttl_s;
	char          *key_tenant;
	int64_t        key_lease_ms;
	int64_t        md_max_bytes;
	int64_t        md_max_depth;
	dre_ijob_opts  imports;
} cat_cfg;

static const dre_cfg_opt cat_opts[] = {
	DRE_CFG_COMMON(cat_cfg, common, "tcp://127.0.0.1:7101"),
	{ "rpc.workers", DRE_CFG_INT, offsetof(cat_cfg, rpc_workers), "4",
	    "concurrent request handlers", DRE_CFG_RANGE(1, 4096) },
	{ "snapshot.kafka_timeout_ms", DRE_CFG_INT,
	    offsetof(cat_cfg, kafka_timeout_ms), "2000",
	    "how long a snapshot waits for Kafka watermarks",
	    DRE_CFG_POSITIVE },
	{ "auth.issuer", DRE_CFG_STR, offsetof(cat_cfg, issuer), "dre",
	    "iss of the tokens POST /oauth/token issues (the gateways learn "
	    "it with the keys)" },
	{ "auth.token_ttl_s", DRE_CFG_INT, offsetof(cat_cfg, token_ttl_s),
	    "3600", "lifetime of an issued token, seconds",
	    DRE_CFG_RANGE(60, 86400) },
	{ "auth.key_tenant", DRE_CFG_STR, offsetof(cat_cfg, key_tenant),
	    "default",
	    "tenant whose Admins may rotate the token signing key" },
	{ "auth.api_key_lease_ms", DRE_CFG_INT,
	    offsetof(cat_cfg, key_lease_ms), "1000",
	    "how long a gateway may go on accepting an API key the catalog "
	    "accepted without asking again; a revocation is answered once "
	    "the leases granted before it have run out (0 = every request "
	    "asks)",
	    DRE_CFG_RANGE(0, 60000) },
	{ "masterdata.max_xml_bytes", DRE_CFG_INT,
	    offsetof(cat_cfg, md_max_bytes), "1048576",
	    "largest S/4HANA DRFOUT SOAP message read, bytes (a larger one "
	    "is refused with 413 before it is parsed)",
	    DRE_CFG_RANGE(1024, 1073741824) },
	{ "masterdata.max_xml_depth", DRE_CFG_INT,
	    offsetof(cat_cfg, md_max_depth), "32",
	    "deepest element nesting of a DRFOUT SOAP message (the parser "
	    "stops at the first element deeper)",
	    DRE_CFG_RANGE(8, 256) },
	DRE_IJOB_CFG_ROWS(cat_cfg, imports),
	DRE_CFG_END,
};

int
main(int argc, char **argv)
{
	cat_cfg         cfg = { 0 };
	cat             c;
	dre_rpc_server *srv = NULL;
	dre_err         err;
	int             rc = 1;

	dre_svc_init("catalog", &cfg, cat_opts, &cfg.common, argc, argv);
	char *path = dre_svc_path(&cfg.common, "catalog");
	if (path == NULL) {
		dre_error("cannot create %s/catalog", cfg.common.data_dir);
		goto out;
	}
	if ((err = cat_open(&c, path, &cfg.common.kafka)) != DRE_OK) {
		dre_error("cannot open the catalog store %s: %s", path,
		    dre_strerror(err));
		goto out;
	}
	c.kafka_timeout_ms = (int) cfg.kafka_timeout_ms;
	c.md_max_bytes = cfg.md_max_bytes;
	c.md_max_depth = cfg.md_max_depth;
	dre_auth_event_hook(cat_audit_auth_event, &c); // issue 13.6
	cat_id_cfg idc = { cfg.issuer, cfg.token_ttl_s, cfg.key_tenant,
		cfg.key_lease_ms };
	if ((err = cat_id_open(&c, &idc)) != DRE_OK) {
		dre_error("cannot load the token signing keys: %s",
		    dre_strerror(err));
		cat_close(&c);
		goto out;
	}
	err = dre_ijob_start(&c.jobs, &cfg.common, "catalog", c.st, CF_JOBS,
	    cat_imports, &c, c.ob, &cfg.imports);
	if (err != DRE_OK) {
		cat_id_close(&c);
		cat_close(&c);
		goto out;
	}
	if ((err = dre_rpc_server_open_pending(&srv, cfg.common.rpc_listen,
	         cat_routes, &c, (int) cfg.rpc_workers, CAT_PENDING_MAX))
	    != DRE_OK) {
		dre_error("cannot listen on %s: %s", cfg.common.rpc_listen,
		    dre_strerror(err));
		dre_ijob_close(c.jobs);
		cat_id_close(&c);
		cat_close(&c);
		goto out;
	}
	dre_info("catalog serving on %s", cfg.common.rpc_listen);
	while (!dre_svc_wait(-1))
		;
	dre_info("catalog stopping");
	dre_rpc_server_close(srv);
	dre_ijob_close(c.jobs); // at a row boundary: resumed at the next start
	cat_id_close(&c);
	cat_close(&c);
	rc = 0;
out:
	free(path);
	dre_config_free(&cfg, cat_opts, &cfg.common.kafka);
	return rc;
}
