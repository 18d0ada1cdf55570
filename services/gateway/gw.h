// gw.h -- the gateway's shared types: the backend table, config, the
// server, one job per request in flight, and the route table.
#ifndef GW_H
#define GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "dre/arena.h"
#include "dre/auth.h"
#include "dre/buf.h"
#include "dre/config.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "evaluate.pb-c.h"

// GW_BACKEND_MAP lists the services behind the gateway, one row each:
// XX(ID, name, config key, default URL, flags, help). name is the prefix of
// the rpc methods the service answers ("budget" answers "budget.*"); the
// route table names a backend by GW_<ID>. Adding a service is a row here
// and its routes in routes.c. Flags:
//  GW_SHARDED: the key lists one URL per shard, comma-separated, in shard
//    order; the handlers choose the shard (routes.c, client_of).
//  GW_AWAITS: the service learns master data from the catalog's feed; a
//    write is answered once it has applied it (read-your-writes, routes.c).
#define GW_BACKEND_MAP(XX)                                                    \
	XX(EVALUATOR, "evaluator", "evaluator.urls", "tcp://127.0.0.1:7201",  \
	    GW_SHARDED | GW_AWAITS,                                           \
	    "evaluator shards, comma-separated, in shard order")              \
	XX(CATALOG, "catalog", "catalog.url", "tcp://127.0.0.1:7101", 0,      \
	    "catalog service")                                                \
	XX(BUDGET, "budget", "budget.url", "tcp://127.0.0.1:7301", 0,         \
	    "budget service (/api/v1/Budgets)")                               \
	XX(REPORTING, "reporting", "reporting.url", "tcp://127.0.0.1:7401",   \
	    0, "reporting service (/reporting/*)")                            \
	XX(COUPON, "coupon", "coupon.url", "tcp://127.0.0.1:7501", GW_AWAITS, \
	    "coupon service")                                                 \
	XX(LOYALTY, "loyalty", "loyalty.url", "tcp://127.0.0.1:7601", 0,      \
	    "loyalty service")                                                \
	XX(WEBHOOK, "webhook", "webhook.url", "tcp://127.0.0.1:7701", 0,      \
	    "webhook service (/api/v1/Webhook*)")

enum {
	GW_SHARDED = 1 << 0,
	GW_AWAITS = 1 << 1,
};

// clang-format off
typedef enum {
#define GW_BACKEND_ID(id, name, key, url, flags, help) GW_##id,
	GW_BACKEND_MAP(GW_BACKEND_ID)
#undef GW_BACKEND_ID
	GW_NBACKENDS,
	GW_SELF = GW_NBACKENDS, // a route the gateway answers itself
} gw_backend_id;
// clang-format on

typedef struct {
	const char *name; // rpc method prefix
	const char *key; // config key of its URL(s)
	unsigned    flags; // GW_SHARDED, GW_AWAITS
} gw_backend_def;

// gw_backends describes each backend, indexed by gw_backend_id.
extern const gw_backend_def gw_backends[GW_NBACKENDS];

typedef struct {
	dre_common_cfg common;
	int64_t        http_port;
	char          *http_bind;
	int64_t        http_threads;
	int64_t        body_limit;
	int64_t        max_connections;
	int64_t        max_connections_per_ip; // 0 = no limit
	int64_t        header_timeout_ms; // 0 = none
	int64_t        body_timeout_ms; // 0 = none
	int64_t        idle_timeout_ms;
	char          *urls[GW_NBACKENDS]; // by gw_backend_id: its config key
	int64_t        propagation_wait_ms; // 0 = do not wait
	bool           dev_users;
	char          *users;
	int64_t        rpc_timeout_ms;
	int64_t        rpc_coalesce; // evaluates in flight before coalescing
	char          *mode; // central | local-store
	int64_t        shutdown_grace_ms; // serve on after SIGTERM, not ready
	int64_t        health_timeout_ms; // each service's answer to Health
	bool           access_log;
	int64_t        access_flush_ms; // log.access_flush_ms
	char          *metrics_tenant; // whose Admins read /metrics
	// Tokens of an external issuer (XSUAA, any OIDC provider); none when
	// jwt_issuer is empty.
	char *jwt_issuer;
	char *jwt_audience;
	char *jwt_jwks_file;
	char *jwt_tenant_claim;
	char *jwt_scope_prefix;
	// Failed credentials (ident.c): fail_limit failures of one source
	// and principal within fail_window_ms lock that pair out for
	// lockout_ms, doubling up to lockout_max_ms.
	int64_t fail_limit;
	int64_t fail_window_ms;
	int64_t lockout_ms;
	int64_t lockout_max_ms;
	char   *console_dir; // console.c; empty: share/dre/console by bin/
} gw_cfg;

#define GW_MAX_SHARDS 64

#define GW_JSON_CT "application/json; charset=utf-8"

typedef struct gw           gw;
typedef struct gw_job       gw_job;
typedef struct gw_watch     gw_watch;
typedef struct gw_conn      gw_conn;
typedef struct gw_http_loop gw_http_loop; // one HTTP thread (http.c)

// A handler runs when the request is complete (body read). It either
// answers at once (gw_job_respond*) or starts an rpc with gw_job_call and
// names the function that renders the reply once it came back.
typedef void (*gw_handler)(gw_job *j);
typedef void (*gw_render)(gw_job *j);

typedef struct {
	const char   *method; // HTTP method
	const char   *pattern; // segments; ":entity", ":id", ":counter" bind
	gw_handler    fn;
	gw_backend_id backend; // the service called, or GW_SELF
	// The rpc method without the backend's prefix ("Budgets.create" on
	// GW_BUDGET calls "budget.Budgets.create"); on a route with :entity,
	// the operation on the entity ("create" on /api/v1/Promotions calls
	// "catalog.Promotions.create").
	const char *arg;
	uint32_t    roles; // any of these; 0 = public (no authentication)
	int         body; // GW_BODY_*: what the request body must be
	unsigned    auth; // GW_AUTH_*: credentials accepted beyond the usual
} gw_route;

enum {
	GW_BODY_NONE = 0, // ignored
	GW_BODY_JSON, // required, application/json
	GW_BODY_JSON_OPT, // optional; application/json when present
	GW_BODY_FORM, // required, application/x-www-form-urlencoded
	// required, text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2),
	// forwarded unparsed with its media type (param content_type)
	GW_BODY_XML,
	// Any media type, any size: handed to the route's handler in chunks
	// of GW_STREAM_CHUNK as it arrives (j->streaming; the handler sends
	// each on and the read goes on once it was stored), never buffered
	// whole; http.body_limit does not apply (import uploads).
	GW_BODY_STREAM,
};

#define GW_STREAM_CHUNK (256u << 10)

// Every authenticated route takes Basic, Bearer and X-Api-Key (and the
// header apikey under /api/v3, the loyalty facade). GW_AUTH_QUERY_KEY adds
// ?api_key= (the POS-platform bridge's paths only: a key in a URL ends up
// in logs).
// GW_AUTH_PLATFORM marks the bridge's routes (bridge.c): the POS
// platform's conventions apply to every answer, errors included.
enum {
	GW_AUTH_QUERY_KEY = 1 << 0,
	GW_AUTH_PLATFORM = 1 << 1,
};

typedef struct gw_ident gw_ident;

// One rpc client per backend, one per shard of a sharded one.
typedef struct {
	dre_rpc_client *clients[GW_MAX_SHARDS];
	size_t          n;
} gw_backend;

struct gw {
	gw_cfg         *cfg;
	gw_http_loop   *loops; // the HTTP threads, one MHD daemon each
	unsigned        nloops;
	int             listen_fd; // -1 until listening
	gw_watch       *watch; // header and body deadlines (conn.c)
	dre_auth       *auth;
	gw_ident       *ident; // tokens, keys, failed-credential limits
	gw_backend      backends[GW_NBACKENDS]; // by gw_backend_id
	int64_t         started_ms;
	atomic_bool     stopping;
	atomic_bool     draining; // SIGTERM: not ready, still serving
	atomic_int      inflight; // suspended connections
	atomic_int      active; // requests between headers and completion
	struct gw_ops  *ops; // metrics of the routes (ops.c)
	atomic_bool     refusing; // after gw_http_drain: no new connection
	pthread_mutex_t free_mu;
	gw_job         *free_jobs;
	int             nfree;
	char            console_dir[4096]; // resolved console.dir
};

enum gw_state {
	JOB_READ, // receiving the body
	JOB_REFUSED, // answered before the body was complete; drop the rest
	JOB_WAIT, // connection suspended, rpc in flight
	JOB_DONE, // rpc finished; render on resume
	JOB_SENT, // response queued
};

#define GW_MAX_VARS   2
#define GW_MAX_PARAMS 16

struct gw_job {
	gw *g;
	// Written by the thread that finishes the call (gw_job_wake) while
	// the connection's thread may still be reading it.
	_Atomic enum gw_state  state;
	struct MHD_Connection *conn;
	const gw_route        *route;
	const char            *method; // HTTP method (MHD's, borrowed)
	dre_principal          who;
	dre_arena             *arena; // parse trees, packed bodies, replies
	dre_buf                body; // request body
	dre_buf                out; // response body; MHD borrows it
	size_t                 body_limit;
	// Path variables (entity, id) in the arena.
	const char *entity;
	const char *id;
	const char *counter; // :counter (side-effects)
	const void *ctx; // the handler's state for its render (arena)
	char        rpc_method[80]; // the route's, in full (gw_route_match)
	// rpc outcome, filled by the nng callback before resume.
	gw_render render;
	// The HTTP thread serving conn, noted while the call is made: the
	// thread that resumes conn must not touch it after (MHD may answer,
	// close and free it at once; the job is reused).
	gw_http_loop *kick;
	// The next gw_job_call may be coalesced with others (an evaluate
	// without coupon codes: rpc.coalesce).
	bool           coalesce;
	dre_err        rpc_err;
	Dre__RpcReply *rep;
	char           txid[40];
	// Authentication (ident.c): the caller's address, the principal
	// its failures count against, an API key still to verify.
	char        src[48];
	char        limit_key[96];
	const char *apikey;
	// GW_BODY_STREAM routes verify the key again at every chunk and at
	// the end: key_ok once it was accepted, key_refusal the answer when
	// it no longer is (401, 403, 503), on_key_refused the route's undo
	// of what the accepted chunks began (it answers with
	// gw_key_refused_reply).
	bool          key_ok;
	int           key_refusal;
	int64_t       key_asked_ms; // when the catalog was asked (monotonic)
	bool          key_hashed; // key_digest is apikey's SHA-256
	unsigned char key_digest[32];
	void (*on_key_refused)(gw_job *j);
	size_t      nhdrs;
	const char *hdrs[8][2];
	bool        in_upload; // MHD refuses responses mid-body
	// GW_BODY_STREAM: the body so far is a chunk to pass on (false: the
	// last one, the body is complete); stream_off is the bytes passed on.
	bool                 streaming;
	int64_t              stream_off;
	int                  pending_status;
	struct MHD_Response *pending;
	// Read-your-writes: the evaluators still applying this write's
	// changes, and whether one of them did not within the bound.
	bool        awaited;
	atomic_int  await_left;
	atomic_bool await_pending;
	// Operations (ops.c): the request id, where and when the request
	// began, how it was answered, and the replies of a fan-out.
	char              rid[DRE_REQUEST_ID_MAX + 1];
	const char       *path; // in the arena
	int64_t           t0_us; // monotonic
	int               status; // answered with; 0 = not yet
	const char       *error_code; // static string or the reply's
	struct gw_fanout *fan; // a fan-out's replies (gw_fanout), in the arena
	gw_job           *next_free;
};

// conn.c: where a connection is in its request, for the deadlines.
enum gw_phase {
	GW_PHASE_NONE, // call in flight, answering: MHD's idle timeout only
	GW_PHASE_WAIT, // until a request line: http.idle_timeout_ms
	GW_PHASE_HEADERS, // request line to headers: http.header_timeout_ms
	GW_PHASE_BODY, // headers to body: http.body_timeout_ms
};

// gw_watch_open starts the thread that closes connections past the
// deadline of their phase (a timeout of 0 turns that deadline off), and
// counts the open connections of each client address against per_ip (0 =
// no limit). Caller closes with gw_watch_close() after MHD has stopped.
dre_err gw_watch_open(gw_watch **wp, int64_t wait_timeout_ms,
    int64_t header_timeout_ms, int64_t body_timeout_ms, unsigned per_ip);
void    gw_watch_close(gw_watch *w);
// gw_watch_conn_open and gw_watch_conn_close are called from MHD's
// connection notification: started (WAIT starts now) and closed (before
// MHD closes the socket). gw_watch_conn_open returns false when the
// client's address already has per_ip connections open: the caller shuts
// the new one down (it is not counted).
bool gw_watch_conn_open(
    gw_watch *w, struct MHD_Connection *conn, void **socket_ctx);
void gw_watch_conn_close(gw_watch *w, void **socket_ctx);
// gw_watch_phase moves conn to phase p; its deadline starts now.
void gw_watch_phase(gw_watch *w, struct MHD_Connection *conn, enum gw_phase p);

// backend.c: gw_backends_open dials every backend's URL(s) from g->cfg;
// gw_backends_close closes what it opened (also after a failed open).
dre_err gw_backends_open(gw *g);
void    gw_backends_close(gw *g);

// http.c
dre_err gw_http_start(gw *g);
// gw_http_drain stops accepting connections and waits (at most
// rpc.timeout_ms + 1 s) until every request begun has been answered.
void gw_http_drain(gw *g);
void gw_http_stop(gw *g);

// gw_job_respond answers with data[0..len) (borrowed until the request is
// completed: j->out or the rpc reply) and the headers added so far.
void gw_job_respond(gw_job *j, int status, const char *data, size_t len,
    const char *content_type);
// gw_job_header_add adds a response header (both strings borrowed until
// the request is completed).
void gw_job_header_add(gw_job *j, const char *key, const char *value);
void gw_job_error(gw_job *j, int status, const char *code, const char *target,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
// gw_job_oom answers 503 UNAVAILABLE "out of memory".
void gw_job_oom(gw_job *j);
// gw_job_wait suspends the connection until gw_job_wake(j); render runs
// then. False (answered 503) when the gateway is shutting down.
bool gw_job_wait(gw_job *j, gw_render render);
// gw_job_wake resumes a connection gw_job_wait suspended (any thread).
void gw_job_wake(gw_job *j);
// gw_job_call sends req to c and renders the outcome with render once it
// arrives; the connection stays suspended meanwhile.
void gw_job_call(
    gw_job *j, dre_rpc_client *c, Dre__RpcRequest *req, gw_render render);
// gw_job_envelope fills req with the caller's identity, deadline and method.
void gw_job_envelope(
    gw_job *j, Dre__RpcRequest *req, const char *method, char **roles_buf);
// gw_job_reply_error renders a reply with status >= 400 (or the rpc
// failure) as the PRODUCT-DECISIONS §1 body; true when it did.
bool        gw_job_reply_error(gw_job *j);
const char *gw_job_header(gw_job *j, const char *name);

// routes.c
extern const gw_route gw_routes[];
void                  gw_heartbeat(gw_job *j);
// gw_route_match finds the route for method+path and sets j->entity and
// j->id; *path_known is set when the path exists under another method
// (405 instead of 404).
const gw_route *gw_route_match(
    gw_job *j, const char *method, const char *path, bool *path_known);

// ops.c: request ids, the access log and the gateway's metrics, the
// fan-out of Health / Metrics calls to every service, /healthz, /readyz,
// /metrics and the services in the heartbeat.
dre_err gw_ops_open(gw *g);
void    gw_ops_close(gw *g);
// gw_ops_begin takes (or makes) the request id and notes the start.
void gw_ops_begin(gw_job *j, const char *url);
// gw_ops_end writes the access log line and counts the request.
void gw_ops_end(gw_job *j);
// gw_ops_free releases what a fan-out left in the job.
void gw_ops_free(gw_job *j);
void gw_healthz(gw_job *j);
void gw_readyz(gw_job *j);
void gw_metrics(gw_job *j);
// gw_services_fill adds the state of every service (from the Health
// fan-out of j) to a heartbeat and lowers an UP status to DEGRADED when
// one is not UP.
void gw_services_fill(gw_job *j, Dre__HeartbeatResponse *h);
// A fan-out: one call to several services and every shard of each at once
// (the audit log, /readyz, /metrics, the heartbeat's services). j->fan
// holds the replies until the job ends (gw_ops_free).
#define GW_FAN_MAX (GW_NBACKENDS + GW_MAX_SHARDS)

typedef struct gw_fanout gw_fanout_t;

typedef struct {
	gw_fanout_t   *fan;
	char           name[48]; // "catalog"; "evaluator-1" when sharded
	int            shard; // -1 when not sharded
	dre_err        err;
	Dre__RpcReply *rep; // NULL when err
} gw_fan_slot;

struct gw_fanout {
	gw_job     *j;
	atomic_int  left;
	size_t      n;
	gw_fan_slot s[GW_FAN_MAX];
};

// gw_fanout calls "<service>.<what>" with params (n of them, may be NULL)
// on the services backends[0..nb) (NULL: every service), every shard of
// each, at once, waiting at most timeout_ms, and renders with render once
// all answered (or failed).
void gw_fanout(gw_job *j, const int *backends, size_t nb, const char *what,
    Dre__Param **params, size_t nparams, int timeout_ms, gw_render render);
// ident.c: credentials beyond Basic users (Bearer JWTs, API keys), the
// token endpoint and the failed-credential limit.
dre_err gw_ident_open(gw *g);
void    gw_ident_close(gw *g);
// gw_authenticate sets j->who from the request's credentials (or leaves an
// API key for gw_key_verify) and checks the route's roles; false when it
// has answered (401, 403, 429).
bool gw_authenticate(gw_job *j, const char *method, const char *url);
// gw_key_verify asks the catalog about j->apikey, then runs the route's
// handler (or answers 401/403); a key the catalog accepted with a lease
// (dre-lease-ms) is not asked about again until the lease ends. A streamed
// body's key is checked at every chunk: a key revoked mid-upload stops it
// (j->on_key_refused).
void gw_key_verify(gw_job *j);
// gw_key_refused_reply answers j->key_refusal (401, 403 or the failed
// call's 503), held until the rest of a body is read when mid-body.
void gw_key_refused_reply(gw_job *j);
// gw_token is POST /oauth/token (RFC 6749 client credentials).
void gw_token(gw_job *j);

// Shared by the route handlers (routes.c, bridge.c).
// gw_client_of picks the client of the route's backend (the shard of txid
// on a sharded one; NULL: any shard).
dre_rpc_client *gw_client_of(gw_job *j, const char *txid);
// gw_parse_json_body parses the request body into the arena; false when it
// has answered 400 (or 503).
struct dre_json;
bool gw_parse_json_body(gw_job *j, struct dre_json **rootp);
// gw_call_packed sends q as the body of the route's call to the shard of
// txid and renders the reply with render.
void gw_call_packed(
    gw_job *j, const ProtobufCMessage *q, const char *txid, gw_render render);
// gw_unpack_reply decodes the callee's protobuf answer (NULL when it has
// answered the error) and empties j->out.
void *gw_unpack_reply(gw_job *j, const ProtobufCMessageDescriptor *desc);
// gw_respond_out answers 200 with j->out.
void gw_respond_out(gw_job *j);

// bridge.c: the POS-platform bridge (PRODUCT-DECISIONS §10).
// gw_bridge_error answers an error of a GW_AUTH_PLATFORM route in the
// platform's shape: {errorCode, errorMessage}, a 401 with an empty body.
void gw_bridge_error(gw_job *j, int status, const char *code, const char *msg);
void gw_bridge_cart(gw_job *j);
void gw_bridge_order(gw_job *j);
void gw_bridge_void(gw_job *j);
void gw_bridge_code(gw_job *j);
void gw_bridge_return(gw_job *j);
// gw_bridge_supc names the unknown members of a SUPC write in
// DRE-Ignored-Fields, then forwards it (the coupon service answers); a
// POST for a promotion without an INDIVIDUAL coupon type creates the type
// and names it in the promotion first.
void gw_bridge_supc(gw_job *j);
// gw_forward sends the request to the route's backend as it is and answers
// the reply (routes.c); gw_forward_then renders the reply with render.
void gw_forward(gw_job *j);
void gw_forward_then(gw_job *j, gw_render render);
// gw_render_forward answers the callee's reply as it is, once the services
// learning a master-data write it reports (dre-changes) have applied it.
void gw_render_forward(gw_job *j);
// gw_await_changes holds the answer until the services that learn master
// data hold changes (dre/changes.h lines), then runs render; false (render
// not called) when there is nothing to wait for (PRODUCT-DECISIONS §4b).
bool gw_await_changes(gw_job *j, const char *changes, gw_render render);

// openapi.c: GET /openapi.json, the embedded proto/openapi.yaml as JSON.
void gw_openapi(gw_job *j);

// console.c: the browser console's static files (GET /console, public)
// and GET /api/v1/Me (the caller's principal, tenant and roles).
// gw_console_open resolves console.dir once at start.
dre_err gw_console_open(gw *g);
void    gw_console(gw_job *j);
void    gw_me(gw_job *j);

#endif
