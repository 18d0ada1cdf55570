// main.c -- dre-gateway: HTTP/JSON in, nng + protobuf out to the services
// of the backend table (gw.h).
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/clock.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "gw.h"

static const dre_cfg_opt gw_opts[] = {
	DRE_CFG_COMMON(gw_cfg, common, ""),
	{ "http.port", DRE_CFG_INT, offsetof(gw_cfg, http_port), "8080",
	    "HTTP port", DRE_CFG_RANGE(1, 65535) },
	{ "http.bind", DRE_CFG_STR, offsetof(gw_cfg, http_bind), "127.0.0.1",
	    "HTTP bind address" },
	{ "http.threads", DRE_CFG_INT, offsetof(gw_cfg, http_threads), "2",
	    "HTTP threads (more than cores raises latency)",
	    DRE_CFG_RANGE(1, 256) },
	{ "http.body_limit", DRE_CFG_INT, offsetof(gw_cfg, body_limit),
	    "1048576", "largest request body in bytes (413 beyond)",
	    DRE_CFG_POSITIVE },
	{ "http.max_connections", DRE_CFG_INT,
	    offsetof(gw_cfg, max_connections), "4096",
	    "open connections in total; more wait in the listen queue "
	    "(lowered "
	    "to fit the open-file limit)",
	    DRE_CFG_RANGE(1, 1000000) },
	{ "http.max_connections_per_ip", DRE_CFG_INT,
	    offsetof(gw_cfg, max_connections_per_ip), "1024",
	    "open connections from one client address, more are closed at "
	    "once (0 = no limit; raise it behind a proxy)",
	    DRE_CFG_RANGE(0, 1000000) },
	{ "http.header_timeout_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, header_timeout_ms), "10000",
	    "a request's headers must be complete this long after its "
	    "request line, or the connection is closed (0 = off)",
	    DRE_CFG_NONNEGATIVE },
	{ "http.body_timeout_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, body_timeout_ms), "30000",
	    "a request's body must be complete this long after its headers, "
	    "or the connection is closed (0 = off)",
	    DRE_CFG_NONNEGATIVE },
	{ "http.idle_timeout_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, idle_timeout_ms), "60000",
	    "a connection idle this long is closed; a request line must "
	    "arrive within it of the connection opening or of the last "
	    "answer, however slowly its bytes trickle",
	    DRE_CFG_POSITIVE },
// clang-format off
	// One URL option per backend (gw.h, GW_BACKEND_MAP).
#define GW_BACKEND_OPT(id, name, key, url, flags, help)                       \
	{ key, DRE_CFG_STR,                                                   \
	    offsetof(gw_cfg, urls) + GW_##id * sizeof(char *), url, help },
	GW_BACKEND_MAP(GW_BACKEND_OPT)
#undef GW_BACKEND_OPT
	// clang-format on
	{ "catalog.propagation_wait_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, propagation_wait_ms), "2000",
	    "a master-data write answers once every live evaluator prices "
	    "with it, or after this long with DRE-Propagation: pending "
	    "(0 = answer at once; at most 10000)",
	    DRE_CFG_RANGE(0, 10000) },
	{ "auth.dev_users", DRE_CFG_BOOL, offsetof(gw_cfg, dev_users), "true",
	    "enable the PRODUCT-DECISIONS §2 development users" },
	{ "auth.users", DRE_CFG_STR, offsetof(gw_cfg, users), NULL,
	    "user:password:Role[+Role]:tenant, separated by ','" },
	{ "rpc.timeout_ms", DRE_CFG_INT, offsetof(gw_cfg, rpc_timeout_ms),
	    "5000", "deadline of each call to a service", DRE_CFG_POSITIVE },
	{ "rpc.coalesce", DRE_CFG_INT, offsetof(gw_cfg, rpc_coalesce), "0",
	    "evaluates (and simulates) in flight to one evaluator before "
	    "more wait and leave together in one message when one of those "
	    "replies (0 = as many as the CPUs the gateway may run on; -1 = "
	    "each in its own message)",
	    DRE_CFG_RANGE(-1, 4096) },
	{ "mode", DRE_CFG_STR, offsetof(gw_cfg, mode), "central",
	    "central | local-store", DRE_CFG_CHOICES("central|local-store") },
	{ "shutdown.grace_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, shutdown_grace_ms), "5000",
	    "after SIGTERM /readyz answers 503 and every request is still "
	    "served for this long (for load balancers to take the gateway "
	    "out); then no new connection is accepted, the requests begun "
	    "are answered and the process exits",
	    DRE_CFG_RANGE(0, 600000) },
	{ "health.timeout_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, health_timeout_ms), "1000",
	    "how long /readyz and the heartbeat wait for each service's "
	    "Health answer (a service that does not answer in time counts "
	    "as UNREACHABLE)",
	    DRE_CFG_RANGE(1, 60000) },
	{ "metrics.tenant", DRE_CFG_STR, offsetof(gw_cfg, metrics_tenant),
	    "default",
	    "the operator's tenant: only its Admins read /metrics (the whole "
	    "deployment's figures, every tenant's traffic together)" },
	{ "log.access", DRE_CFG_BOOL, offsetof(gw_cfg, access_log), "true",
	    "one log line per request: method, path, status, duration, "
	    "tenant, request id (never a header)" },
	{ "log.access_flush_ms", DRE_CFG_INT,
	    offsetof(gw_cfg, access_flush_ms), "100",
	    "access lines are gathered and written together this often (one "
	    "write for many requests; the last ones are lost if the process "
	    "is killed); 0 = each line at once",
	    DRE_CFG_RANGE(0, 10000) },
	{ "auth.jwt.issuer", DRE_CFG_STR, offsetof(gw_cfg, jwt_issuer), "",
	    "iss of an external token issuer (XSUAA, OIDC) whose tokens are "
	    "accepted; empty: none" },
	{ "auth.jwt.audience", DRE_CFG_STR, offsetof(gw_cfg, jwt_audience),
	    "dre", "aud an external issuer's token must name" },
	{ "auth.jwt.jwks_file", DRE_CFG_STR, offsetof(gw_cfg, jwt_jwks_file),
	    "", "the external issuer's public keys (a JWKS document)" },
	{ "auth.jwt.tenant_claim", DRE_CFG_STR,
	    offsetof(gw_cfg, jwt_tenant_claim), "",
	    "claim holding the tenant in an external token; empty: zid, then "
	    "tenant" },
	{ "auth.jwt.scope_prefix", DRE_CFG_STR,
	    offsetof(gw_cfg, jwt_scope_prefix), "dre.",
	    "prefix of the role scopes in an external token (XSUAA: the "
	    "xsappname and a dot)" },
	{ "auth.fail_limit", DRE_CFG_INT, offsetof(gw_cfg, fail_limit), "5",
	    "failed credentials of one client address and principal before "
	    "it is slowed down (429)",
	    DRE_CFG_RANGE(1, 1000000) },
	{ "auth.fail_window_ms", DRE_CFG_INT, offsetof(gw_cfg, fail_window_ms),
	    "60000", "window in which failed credentials are counted",
	    DRE_CFG_POSITIVE },
	{ "auth.lockout_ms", DRE_CFG_INT, offsetof(gw_cfg, lockout_ms), "1000",
	    "first wait after auth.fail_limit failures; doubles with each "
	    "further failure",
	    DRE_CFG_POSITIVE },
	{ "auth.lockout_max_ms", DRE_CFG_INT, offsetof(gw_cfg, lockout_max_ms),
	    "60000", "longest wait imposed on failed credentials",
	    DRE_CFG_POSITIVE },
	{ "console.dir", DRE_CFG_STR, offsetof(gw_cfg, console_dir), "",
	    "directory of the browser console's files (GET /console); "
	    "empty: share/dre/console beside the bin/ of this program" },
	DRE_CFG_END,
};

// gw_check validates what the table cannot: the user table parses, and a
// gateway without development users has someone who can sign in -- a
// configured user or an external token issuer -- else nobody could create
// the OAuth2 clients and API keys integrations use, and every call is 401.
static bool
gw_check(const void *c)
{
	const gw_cfg *cfg = c;
	dre_auth     *a = NULL;
	dre_err       err = dre_auth_open(&a, cfg->users, cfg->dev_users);
	dre_auth_close(a);
	if (err != DRE_OK) {
		dre_error("auth.users: %s", dre_strerror(err));
		return false;
	}
	if (!cfg->dev_users && (cfg->users == NULL || *cfg->users == '\0')
	    && (cfg->jwt_issuer == NULL || *cfg->jwt_issuer == '\0')) {
		dre_error("auth.users: empty, auth.dev_users=false and no "
		          "auth.jwt.issuer: nobody can sign in (every call "
		          "would be 401)");
		return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	static gw_cfg cfg;
	static gw     g;
	dre_err       err;
	int           rc = 1;

	dre_svc_on_check(gw_check);
	dre_svc_init("gateway", &cfg, gw_opts, &cfg.common, argc, argv);
	g.cfg = &cfg;
	g.listen_fd = -1;
	g.started_ms = dre_now_ms();
	if (cfg.access_log
	    && !dre_log_access_buffer((int) cfg.access_flush_ms))
		dre_warn("log.access_flush_ms: out of memory: every access "
		         "line is written at once");
	pthread_mutex_init(&g.free_mu, NULL);
	atomic_init(&g.stopping, false);
	atomic_init(&g.inflight, 0);
	atomic_init(&g.active, 0);
	atomic_init(&g.draining, false);
	atomic_init(&g.refusing, false);

	if ((err = dre_auth_open(&g.auth, cfg.users, cfg.dev_users))
	    != DRE_OK) {
		dre_error("auth.users: %s", dre_strerror(err));
		goto out;
	}
	if ((err = gw_ops_open(&g)) != DRE_OK) {
		dre_error("cannot set up the metrics: %s", dre_strerror(err));
		goto out;
	}
	if ((err = gw_ident_open(&g)) != DRE_OK)
		goto out;
	if ((err = gw_console_open(&g)) != DRE_OK)
		goto out;
	if ((err = gw_backends_open(&g)) != DRE_OK) {
		dre_error("cannot open rpc clients: %s", dre_strerror(err));
		goto out;
	}
	if ((err = gw_http_start(&g)) != DRE_OK)
		goto out;
	dre_info("listening on http://%s:%d (%zu evaluator shard%s, "
	         "catalog %s, mode %s)",
	    cfg.http_bind, (int) cfg.http_port, g.backends[GW_EVALUATOR].n,
	    g.backends[GW_EVALUATOR].n == 1 ? "" : "s", cfg.urls[GW_CATALOG],
	    cfg.mode);
	dre_svc_wait(-1);
	// Drain: not ready at once (load balancers stop sending), serving
	// all the same for the grace period, then no new connection and the
	// requests begun are answered before anything closes.
	atomic_store(&g.draining, true);
	dre_info("draining: /readyz answers 503, serving for %lld ms more",
	    (long long) cfg.shutdown_grace_ms);
	for (int64_t until = dre_mono_ms() + cfg.shutdown_grace_ms;
	     dre_mono_ms() < until;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	gw_http_drain(&g);
	dre_info("drained: %d request(s) unanswered", atomic_load(&g.active));
	rc = 0;
out:
	gw_http_stop(&g);
	gw_backends_close(&g);
	gw_ops_close(&g);
	gw_ident_close(&g);
	dre_auth_close(g.auth);
	dre_config_free(&cfg, gw_opts, &cfg.common.kafka);
	pthread_mutex_destroy(&g.free_mu);
	dre_info("stopped");
	return rc;
}
