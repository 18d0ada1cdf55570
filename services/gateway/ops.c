// ops.c -- what an operator sees of the gateway: the request id of every
// request (X-Request-Id / traceparent), the access log, the HTTP metrics,
// /healthz, /readyz, /metrics for the whole stack, and the state of every
// service in the heartbeat. The last three ask every service at once (a
// fan-out of <service>.Health or <service>.Metrics, common/src/rpc.c).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/uuid.h"
#include "gw.h"

// The statuses counted without a lookup; others find their series under
// the registry's lock.
static const int common_status[] = { 200, 201, 204, 304, 400, 401, 403, 404,
	405, 409, 412, 413, 415, 422, 429, 500, 503 };
#define NSTATUS (sizeof(common_status) / sizeof(common_status[0]))

struct gw_ops {
	size_t       nroutes; // gw_routes rows; index nroutes = unmatched
	dre_metric **seconds; // by route
	_Atomic(dre_metric *) (*requests)[NSTATUS]; // by route, status
	dre_metric *in_flight, *draining;
};

// ---------------------------------------------------------------- setup

static void
ops_collect(void *arg)
{
	gw *g = arg;

	dre_metric_set(g->ops->in_flight, atomic_load(&g->active));
	dre_metric_set(g->ops->draining, atomic_load(&g->draining) ? 1 : 0);
}

dre_err
gw_ops_open(gw *g)
{
	struct gw_ops *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return DRE_ENOMEM;
	while (gw_routes[o->nroutes].method != NULL)
		o->nroutes++;
	o->seconds = calloc(o->nroutes + 1, sizeof(*o->seconds));
	o->requests = calloc(o->nroutes + 1, sizeof(*o->requests));
	if (o->seconds == NULL || o->requests == NULL) {
		free(o->seconds);
		free(o->requests);
		free(o);
		return DRE_ENOMEM;
	}
	for (size_t i = 0; i <= o->nroutes; i++) {
		char lab[160];
		snprintf(lab, sizeof(lab), "route=\"%s\",method=\"%s\"",
		    i < o->nroutes ? gw_routes[i].pattern : "unmatched",
		    i < o->nroutes ? gw_routes[i].method : "OTHER");
		o->seconds[i]
		    = dre_metric_histogram("dre_http_request_duration_seconds",
		        "time from a request's headers to its answer sent, by "
		        "route",
		        lab);
	}
	o->in_flight = dre_metric_gauge("dre_http_requests_in_flight",
	    "requests between their headers and their answer sent", NULL);
	o->draining = dre_metric_gauge("dre_gateway_draining",
	    "1 after SIGTERM while the gateway drains (not ready)", NULL);
	g->ops = o;
	dre_metrics_collector_add(ops_collect, g);
	return DRE_OK;
}

void
gw_ops_close(gw *g)
{
	if (g->ops == NULL)
		return;
	dre_metrics_collector_remove(ops_collect, g);
	free(g->ops->seconds);
	free(g->ops->requests);
	free(g->ops);
	g->ops = NULL;
}

// ---------------------------------------------------------------- request id

// rid_ok accepts a client's X-Request-Id: 1..64 of [A-Za-z0-9._:-] (it
// goes into logs, headers and events as it is).
static bool
rid_ok(const char *v)
{
	size_t n = 0;

	for (; v[n] != '\0'; n++) {
		char c = v[n];
		if (n >= DRE_REQUEST_ID_MAX
		    || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '.' || c == '_'
		        || c == ':' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool
hex_run(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9')
		        || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

// traceparent_id copies the trace id of a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>", not all zeros) into out[33].
static bool
traceparent_id(const char *v, char *out)
{
	if (v == NULL || strlen(v) < 55 || !hex_run(v, 2) || v[2] != '-'
	    || !hex_run(v + 3, 32) || v[35] != '-' || !hex_run(v + 36, 16)
	    || v[52] != '-' || !hex_run(v + 53, 2) || strncmp(v, "ff", 2) == 0)
		return false;
	if (strspn(v + 3, "0") >= 32)
		return false;
	memcpy(out, v + 3, 32);
	out[32] = '\0';
	return true;
}

void
gw_ops_begin(gw_job *j, const char *url)
{
	const char *x = gw_job_header(j, "X-Request-Id");

	j->t0_us = dre_mono_us();
	j->status = 0;
	j->error_code = NULL;
	j->path = dre_arena_strdup(j->arena, url);
	if (x != NULL && rid_ok(x)) {
		snprintf(j->rid, sizeof(j->rid), "%s", x);
	} else if (!traceparent_id(gw_job_header(j, "traceparent"), j->rid)) {
		char u[40];
		dre_uuid_v4(u);
		snprintf(j->rid, sizeof(j->rid), "%s", u);
	}
}

// ---------------------------------------------------------------- end

static dre_metric *
requests_series(gw *g, size_t ri, int status)
{
	struct gw_ops *o = g->ops;
	size_t         k = 0;
	char           lab[200];

	while (k < NSTATUS && common_status[k] != status)
		k++;
	if (k < NSTATUS) {
		dre_metric *m = atomic_load_explicit(
		    &o->requests[ri][k], memory_order_relaxed);
		if (m != NULL)
			return m;
	}
	snprintf(lab, sizeof(lab), "route=\"%s\",method=\"%s\",code=\"%d\"",
	    ri < o->nroutes ? gw_routes[ri].pattern : "unmatched",
	    ri < o->nroutes ? gw_routes[ri].method : "OTHER", status);
	dre_metric *m = dre_metric_counter("dre_http_requests_total",
	    "requests answered, by route, method and status code", lab);
	if (k < NSTATUS)
		atomic_store_explicit(
		    &o->requests[ri][k], m, memory_order_relaxed);
	return m;
}

void
gw_ops_end(gw_job *j)
{
	gw    *g = j->g;
	size_t ri;

	if (j->t0_us == 0 || g->ops == NULL)
		return;
	int64_t us = dre_mono_us() - j->t0_us;
	ri = j->route != NULL ? (size_t) (j->route - gw_routes)
	                      : g->ops->nroutes;
	dre_metric_observe_us(g->ops->seconds[ri], us);
	dre_metric_inc(requests_series(g, ri, j->status));
	if (j->error_code != NULL && j->status >= 400) {
		char esc[64], lab[96];
		dre_metric_label_escape(esc, sizeof(esc), j->error_code);
		snprintf(lab, sizeof(lab), "code=\"%s\"", esc);
		dre_metric_inc(dre_metric_counter("dre_http_errors_total",
		    "error answers, by the error body's code", lab));
	}
	if (g->cfg->access_log) {
		// Never a header: credentials stay out of the log.
		dre_log_set_request_id(j->rid);
		dre_log_access("access method=%s path=%s status=%d "
		               "duration_ms=%lld.%03lld "
		               "tenant=%s",
		    j->method != NULL ? j->method : "-",
		    j->path != NULL ? j->path : "-", j->status,
		    (long long) (us / 1000), (long long) (us % 1000),
		    j->who.tenant[0] != '\0' ? j->who.tenant : "-");
		dre_log_set_request_id(NULL);
	}
	j->t0_us = 0;
}

// ---------------------------------------------------------------- fan-out

void
gw_ops_free(gw_job *j)
{
	if (j->fan == NULL)
		return;
	for (size_t i = 0; i < j->fan->n; i++)
		dre_rpc_reply_msg_free(j->fan->s[i].rep);
	j->fan = NULL; // the struct itself is in the arena
}

static void
fan_done(void *arg, dre_err err, Dre__RpcReply *rep)
{
	gw_fan_slot *s = arg;

	s->err = err;
	s->rep = rep;
	if (atomic_fetch_sub(&s->fan->left, 1) == 1)
		gw_job_wake(s->fan->j);
}

void
gw_fanout(gw_job *j, const int *backends, size_t nb, const char *what,
    Dre__Param **params, size_t nparams, int timeout_ms, gw_render render)
{
	gw             *g = j->g;
	gw_fanout_t    *f = dre_arena_get(j->arena, sizeof(*f));
	dre_rpc_client *clients[GW_FAN_MAX];
	int             of[GW_FAN_MAX]; // the backend of each slot

	if (f == NULL) {
		gw_job_oom(j);
		return;
	}
	memset(f, 0, sizeof(*f));
	f->j = j;
	for (size_t i = 0; i < (backends != NULL ? nb : GW_NBACKENDS); i++) {
		int b = backends != NULL ? backends[i] : (int) i;
		for (size_t k = 0; k < g->backends[b].n && f->n < GW_FAN_MAX;
		     k++) {
			gw_fan_slot *s = &f->s[f->n];
			s->fan = f;
			s->shard = g->backends[b].n > 1 ? (int) k : -1;
			if (s->shard >= 0)
				snprintf(s->name, sizeof(s->name), "%s-%d",
				    gw_backends[b].name, s->shard);
			else
				snprintf(s->name, sizeof(s->name), "%s",
				    gw_backends[b].name);
			of[f->n] = b;
			clients[f->n++] = g->backends[b].clients[k];
		}
	}
	j->fan = f;
	if (!gw_job_wait(j, render))
		return;
	atomic_store(&f->left, (int) f->n + 1);
	for (size_t i = 0; i < f->n; i++) {
		Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
		char           *roles[32];
		char            method[80];
		snprintf(method, sizeof(method), "%s.%s",
		    gw_backends[of[i]].name, what);
		gw_job_envelope(j, &req, method, roles);
		req.deadline_unix_ms = dre_now_ms() + timeout_ms;
		req.params = params;
		req.n_params = nparams;
		dre_err err = dre_rpc_call_async(
		    clients[i], &req, timeout_ms, fan_done, &f->s[i]);
		if (err != DRE_OK) {
			f->s[i].err = err;
			atomic_fetch_sub(&f->left, 1);
		}
	}
	if (atomic_fetch_sub(&f->left, 1) == 1)
		gw_job_wake(j);
}

// slot_state: UP, DOWN (answered: not ready) or UNREACHABLE.
static const char *
slot_state(const gw_fan_slot *s)
{
	if (s->err != DRE_OK || s->rep == NULL)
		return "UNREACHABLE";
	return s->rep->status == 200 ? "UP" : "DOWN";
}

// ---------------------------------------------------------------- routes

void
gw_healthz(gw_job *j)
{
	static const char body[] = "{\"status\":\"UP\"}";

	// Alive: answering at all is the answer.
	gw_job_respond(j, 200, body, sizeof(body) - 1, GW_JSON_CT);
}

static void
render_readyz(gw_job *j)
{
	gw_fanout_t *f = j->fan;
	bool         ready = !atomic_load(&j->g->draining);
	dre_jsonw    w;

	for (size_t i = 0; f != NULL && i < f->n; i++)
		if (f->s[i].err != DRE_OK || f->s[i].rep == NULL)
			ready = false;
	dre_buf_reset(&j->out);
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "status", ready ? "UP" : "DOWN");
	dre_jsonw_kbool(&w, "draining", atomic_load(&j->g->draining));
	dre_jsonw_key(&w, "services");
	dre_jsonw_obj_begin(&w);
	for (size_t i = 0; f != NULL && i < f->n; i++)
		dre_jsonw_kstr(&w, f->s[i].name, slot_state(&f->s[i]));
	dre_jsonw_obj_end(&w);
	dre_jsonw_obj_end(&w);
	if (j->out.oom) {
		gw_job_oom(j);
		return;
	}
	gw_job_respond(
	    j, ready ? 200 : 503, j->out.data, j->out.len, GW_JSON_CT);
}

void
gw_readyz(gw_job *j)
{
	if (atomic_load(&j->g->draining)) {
		// Shutting down: not ready, whatever the services say.
		render_readyz(j);
		return;
	}
	gw_fanout(j, NULL, 0, "Health", NULL, 0,
	    (int) j->g->cfg->health_timeout_ms, render_readyz);
}

static void
render_metrics(gw_job *j)
{
	gw_fanout_t *f = j->fan;
	const char  *texts[GW_FAN_MAX + 1];
	size_t       lens[GW_FAN_MAX + 1];
	const char  *extra[GW_FAN_MAX + 1];
	char         shard[GW_FAN_MAX][24];
	dre_buf      own;
	size_t       n = 0;

	// Whether each service answered, as the gateway's own series.
	for (size_t i = 0; i < f->n; i++) {
		char lab[96];
		snprintf(lab, sizeof(lab), "target=\"%s\"", f->s[i].name);
		dre_metric_set(dre_metric_gauge("dre_service_up",
		                   "1 when the service answered the gateway's "
		                   "last metrics scrape",
		                   lab),
		    f->s[i].err == DRE_OK && f->s[i].rep != NULL
		            && f->s[i].rep->status == 200
		        ? 1
		        : 0);
	}
	dre_buf_init(&own);
	dre_metrics_render(&own);
	texts[n] = own.data != NULL ? own.data : "";
	lens[n] = own.len;
	extra[n++] = NULL;
	for (size_t i = 0; i < f->n; i++) {
		const Dre__RpcReply *r = f->s[i].rep;
		if (f->s[i].err != DRE_OK || r == NULL || r->status != 200
		    || !r->has_body)
			continue;
		texts[n] = (const char *) r->body.data;
		lens[n] = r->body.len;
		if (f->s[i].shard >= 0) {
			snprintf(shard[i], sizeof(shard[i]), "shard=\"%d\"",
			    f->s[i].shard);
			extra[n++] = shard[i];
		} else {
			extra[n++] = NULL;
		}
	}
	dre_buf_reset(&j->out);
	dre_err err = dre_metrics_merge(&j->out, texts, lens, extra, n);
	dre_buf_free(&own);
	if (err != DRE_OK || j->out.oom) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "cannot assemble the metrics: %s", dre_strerror(err));
		return;
	}
	gw_job_respond(j, 200, j->out.data, j->out.len,
	    "text/plain; version=0.0.4; charset=utf-8");
}

void
gw_metrics(gw_job *j)
{
	// Every tenant's traffic together: the operator's, not a tenant's.
	if (strcmp(j->who.tenant, j->g->cfg->metrics_tenant) != 0) {
		gw_job_error(j, 403, "FORBIDDEN", NULL,
		    "the metrics are read by Admins of the operator's tenant "
		    "(metrics.tenant)");
		return;
	}
	gw_fanout(j, NULL, 0, "Metrics", NULL, 0,
	    (int) j->g->cfg->rpc_timeout_ms, render_metrics);
}

void
gw_services_fill(gw_job *j, Dre__HeartbeatResponse *h)
{
	gw_fanout_t *f = j->fan;
	bool         all = true;

	if (f == NULL || f->n == 0)
		return;
	Dre__ServiceStatus **v = dre_arena_get(j->arena, f->n * sizeof(*v));
	Dre__ServiceStatus  *st = dre_arena_get(j->arena, f->n * sizeof(*st));
	if (v == NULL || st == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		dre__service_status__init(&st[i]);
		st[i].name = f->s[i].name;
		st[i].status = (char *) slot_state(&f->s[i]);
		v[i] = &st[i];
		all = all && strcmp(st[i].status, "UP") == 0;
	}
	h->services = v;
	h->n_services = f->n;
	if (!all && h->status != NULL && strcmp(h->status, "UP") == 0)
		h->status = "DEGRADED";
}
