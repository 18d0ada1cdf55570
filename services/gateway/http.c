// http.c -- libmicrohttpd glue: one job per request in flight, suspended
// while its nng call runs, resumed from the rpc callback.
#define _GNU_SOURCE // pthread_setname_np
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/log.h"
#include "gw.h"

// Idle jobs kept for reuse; beyond this they are freed.
#define GW_MAX_FREE_JOBS 512
// A response buffer that grew past this is not kept for the next request.
#define GW_KEEP_BUF (256u << 10)
// Open files kept for everything but client connections: the listener,
// epoll, nng sockets and pipes, logs.
#define GW_FD_RESERVE 256
// Seconds a client should wait before retrying a 503: the rpc clients
// redial a service every 50 ms to 1 s, so a restarted one is back by then.
#define GW_RETRY_AFTER "1"
// libmicrohttpd messages logged per second at most (see on_mhd_log).
#define GW_MHD_LOG_PER_S 10

static void log_limited(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static gw_http_loop *http_loop_of(gw *g, struct MHD_Connection *conn);
static void          http_kick(gw_http_loop *l);
// Set by an HTTP thread's MHD when it closed a connection (http_loop_main).
static __thread bool http_closed;

// ---------------------------------------------------------------- jobs

static gw_job *
job_get(gw *g)
{
	gw_job *j;

	pthread_mutex_lock(&g->free_mu);
	if ((j = g->free_jobs) != NULL) {
		g->free_jobs = j->next_free;
		g->nfree--;
	}
	pthread_mutex_unlock(&g->free_mu);
	if (j == NULL) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return NULL;
		if ((j->arena = dre_arena_alloc(32u << 10)) == NULL) {
			free(j);
			return NULL;
		}
		j->g = g;
	}
	j->state = JOB_READ;
	j->coalesce = false;
	j->body_limit = (size_t) g->cfg->body_limit;
	atomic_fetch_add(&g->active, 1);
	return j;
}

static void
job_free(gw_job *j)
{
	dre_arena_free(j->arena);
	dre_buf_free(&j->body);
	dre_buf_free(&j->out);
	free(j);
}

static void
job_put(gw_job *j)
{
	gw *g = j->g;

	gw_ops_free(j);
	dre_rpc_reply_msg_free(j->rep);
	if (j->pending != NULL)
		MHD_destroy_response(j->pending);
	j->pending = NULL;
	j->rep = NULL;
	j->route = NULL;
	j->entity = NULL;
	j->id = NULL;
	j->counter = NULL;
	j->ctx = NULL;
	j->render = NULL;
	j->rpc_err = DRE_OK;
	j->nhdrs = 0;
	j->in_upload = false;
	j->streaming = false;
	j->stream_off = 0;
	j->awaited = false;
	atomic_store(&j->await_left, 0);
	atomic_store(&j->await_pending, false);
	j->fan = NULL;
	j->conn = NULL;
	j->txid[0] = '\0';
	j->rpc_method[0] = '\0';
	j->apikey = NULL;
	j->key_ok = false;
	j->key_refusal = 0;
	j->on_key_refused = NULL;
	j->src[0] = '\0';
	j->limit_key[0] = '\0';
	memset(&j->who, 0, sizeof(j->who));
	dre_arena_reset(j->arena);
	if (j->body.cap > GW_KEEP_BUF)
		dre_buf_free(&j->body);
	else
		dre_buf_reset(&j->body);
	if (j->out.cap > GW_KEEP_BUF)
		dre_buf_free(&j->out);
	else
		dre_buf_reset(&j->out);
	j->rid[0] = '\0';
	j->path = NULL;
	j->t0_us = 0;
	j->status = 0;
	j->error_code = NULL;
	j->method = NULL;
	atomic_fetch_sub(&g->active, 1);
	pthread_mutex_lock(&g->free_mu);
	if (g->nfree < GW_MAX_FREE_JOBS) {
		j->next_free = g->free_jobs;
		g->free_jobs = j;
		g->nfree++;
		j = NULL;
	}
	pthread_mutex_unlock(&g->free_mu);
	if (j != NULL)
		job_free(j);
}

// ---------------------------------------------------------------- answers

void
gw_job_header_add(gw_job *j, const char *key, const char *value)
{
	if (j->nhdrs < sizeof(j->hdrs) / sizeof(j->hdrs[0])) {
		j->hdrs[j->nhdrs][0] = key;
		j->hdrs[j->nhdrs][1] = value;
		j->nhdrs++;
	}
}

const char *
gw_job_header(gw_job *j, const char *name)
{
	return MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, name);
}

void
gw_job_respond(gw_job *j, int status, const char *data, size_t len,
    const char *content_type)
{
	struct MHD_Response *r;
	bool                 retry_after = false;

	// The data outlives the response: it is freed when the request has
	// completed (job_put), so MHD need not copy it.
	r = MHD_create_response_from_buffer(
	    len, (void *) (data != NULL ? data : ""), MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		j->state = JOB_SENT; // MHD closes the connection
		return;
	}
	if (len > 0 || status != 204)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		    content_type != NULL ? content_type : GW_JSON_CT);
	for (size_t i = 0; i < j->nhdrs; i++) {
		MHD_add_response_header(r, j->hdrs[i][0], j->hdrs[i][1]);
		if (strcasecmp(j->hdrs[i][0], MHD_HTTP_HEADER_RETRY_AFTER)
		    == 0)
			retry_after = true;
	}
	// Every 503 is temporary (a service down or restarting, shutdown,
	// memory): tell the client when to try again unless the callee did.
	if (status == 503 && !retry_after)
		MHD_add_response_header(
		    r, MHD_HTTP_HEADER_RETRY_AFTER, GW_RETRY_AFTER);
	if (j->rid[0] != '\0')
		MHD_add_response_header(r, "X-Request-Id", j->rid);
	// Draining: the client's next request goes on a new connection,
	// which a load balancer sends to a gateway that stays.
	if (atomic_load(&j->g->draining))
		MHD_add_response_header(
		    r, MHD_HTTP_HEADER_CONNECTION, "close");
	j->status = status;
	if (j->in_upload) {
		// Queued once the body has been read (and dropped).
		j->pending = r;
		j->pending_status = status;
		j->state = JOB_REFUSED;
		return;
	}
	MHD_queue_response(j->conn, (unsigned) status, r);
	MHD_destroy_response(r);
	j->state = JOB_SENT;
}

void
gw_job_error(gw_job *j, int status, const char *code, const char *target,
    const char *fmt, ...)
{
	char    msg[320];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	// A message cut by its buffer ends before a character, never inside
	// one (it may quote the request's path or arguments); one that fits
	// is left whole.
	if (n >= (int) sizeof(msg))
		msg[dre_utf8_cut(msg, sizeof(msg) - 1, sizeof(msg) - 4)]
		    = '\0';
	j->error_code = code;
	if (j->route != NULL && (j->route->auth & GW_AUTH_PLATFORM) != 0) {
		gw_bridge_error(j, status, code, msg);
		return;
	}
	dre_buf_reset(&j->out);
	dre_error_body_write(&j->out, code, msg, target);
	gw_job_respond(j, status, j->out.data, j->out.len, GW_JSON_CT);
}

void
gw_job_oom(gw_job *j)
{
	gw_job_error(j, 503, "UNAVAILABLE", NULL, "out of memory");
}

bool
gw_job_reply_error(gw_job *j)
{
	const Dre__RpcReply *rep = j->rep;
	dre_error_detail     det[DRE_RPC_MAX_DETAILS];
	size_t               n = 0;

	if (j->rpc_err != DRE_OK) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    j->rpc_err == DRE_ETIMEOUT
		        ? "the service did not answer in time"
		        : "the service is unavailable (%s)",
		    dre_strerror(j->rpc_err));
		return true;
	}
	if (rep->status < 400)
		return false;
	j->error_code = rep->error_code;
	if (j->route != NULL && (j->route->auth & GW_AUTH_PLATFORM) != 0) {
		gw_job_error(j, rep->status,
		    rep->error_code != NULL ? rep->error_code : "ERROR", NULL,
		    "%s",
		    rep->error_message != NULL ? rep->error_message : "");
		return true;
	}
	for (size_t i = 0; i < rep->n_headers; i++)
		gw_job_header_add(
		    j, rep->headers[i]->key, rep->headers[i]->value);
	if (rep->error_code == NULL && rep->has_body && rep->body.len > 0
	    && rep->content_type != NULL) {
		// The callee wrote its own error document.
		gw_job_respond(j, rep->status, (const char *) rep->body.data,
		    rep->body.len, GW_JSON_CT);
		return true;
	}
	for (size_t i = 0; i < rep->n_details && i < DRE_RPC_MAX_DETAILS;
	     i++, n++) {
		det[i].code = rep->details[i]->code;
		det[i].message = rep->details[i]->message;
		det[i].target = rep->details[i]->target;
	}
	dre_buf_reset(&j->out);
	dre_error_body_write_details(&j->out,
	    rep->error_code != NULL ? rep->error_code : "UNAVAILABLE",
	    rep->error_message != NULL ? rep->error_message : "",
	    rep->error_target, det, n);
	gw_job_respond(j, rep->status, j->out.data, j->out.len, GW_JSON_CT);
	return true;
}

// ---------------------------------------------------------------- rpc

void
gw_job_envelope(
    gw_job *j, Dre__RpcRequest *req, const char *method, char **roles_buf)
{
	size_t n = 0;

	req->method = (char *) method;
	req->tenant = j->who.tenant;
	req->principal = j->who.principal;
	for (uint32_t bit = 1; bit != 0 && n < 32; bit <<= 1)
		if ((j->who.roles & bit) != 0 && dre_role_name(bit) != NULL)
			roles_buf[n++] = (char *) dre_role_name(bit);
	req->roles = roles_buf;
	req->n_roles = n;
	req->has_deadline_unix_ms = 1;
	req->deadline_unix_ms = dre_now_ms() + j->g->cfg->rpc_timeout_ms;
	req->request_id = j->rid[0] != '\0' ? j->rid : NULL;
}

void
gw_job_wake(gw_job *j)
{
	gw                    *g = j->g;
	struct MHD_Connection *conn = j->conn;
	gw_http_loop          *kick = j->kick;

	j->state = JOB_DONE;
	MHD_resume_connection(conn);
	// From here on conn and j may be gone: the HTTP thread may already
	// have answered, the client closed, and the job serve another call.
	http_kick(kick);
	// Only now: shutdown waits for this count before stopping MHD, which
	// must not find a suspended connection.
	atomic_fetch_sub(&g->inflight, 1);
}

bool
gw_job_wait(gw_job *j, gw_render render)
{
	gw *g = j->g;

	atomic_fetch_add(&g->inflight, 1);
	if (atomic_load(&g->stopping)) {
		atomic_fetch_sub(&g->inflight, 1);
		gw_job_error(j, 503, "UNAVAILABLE", NULL, "shutting down");
		return false;
	}
	j->render = render;
	j->state = JOB_WAIT;
	j->kick = http_loop_of(g, j->conn);
	// Suspend first: the wake-up may come before the caller returns.
	MHD_suspend_connection(j->conn);
	return true;
}

static void
on_reply(void *arg, dre_err err, Dre__RpcReply *rep)
{
	gw_job *j = arg;

	j->rpc_err = err;
	j->rep = rep;
	gw_job_wake(j);
}

void
gw_job_call(
    gw_job *j, dre_rpc_client *c, Dre__RpcRequest *req, gw_render render)
{
	dre_err err;

	if (!gw_job_wait(j, render))
		return;
	bool coalesce = j->coalesce;
	j->coalesce = false;
	err = (coalesce ? dre_rpc_call_coalesced : dre_rpc_call_async)(
	    c, req, (int) j->g->cfg->rpc_timeout_ms, on_reply, j);
	if (err != DRE_OK)
		on_reply(j, err, NULL);
}

// ---------------------------------------------------------------- framing

typedef struct {
	int         ncl, nte; // Content-Length, Transfer-Encoding headers
	uint64_t    cl;
	const char *why; // the first problem, NULL while none
} framing;

// trimmed returns v without optional whitespace around it in *len.
static const char *
trimmed(const char *v, size_t *len)
{
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	*len = n;
	return v;
}

static bool
parse_length(const char *v, uint64_t *out)
{
	size_t   n;
	uint64_t x = 0;

	v = trimmed(v, &n);
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t) (v[i] - '0');
	}
	*out = x;
	return true;
}

static enum MHD_Result
framing_header(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	framing *f = cls;
	uint64_t n = 0;
	size_t   len;

	(void) kind;
	if (value == NULL)
		value = "";
	// RFC 9112 5.1: whitespace before the colon must be refused, since
	// "Transfer-Encoding : chunked" frames the body for some parsers
	// and not for others (MHD keeps it as an unknown header).
	if (strpbrk(key, " \t") != NULL) {
		f->why = "whitespace in a header name";
	} else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		// Repeats of one value frame the body the same way for
		// everyone (RFC 9110 8.6 allows taking them as one).
		if (!parse_length(value, &n))
			f->why = "Content-Length is not a number";
		else if (f->ncl > 0 && n != f->cl)
			f->why = "two different Content-Length values";
		f->cl = n;
		f->ncl++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		// Only a lone "chunked": MHD decodes nothing else, and would
		// read any other coding to the end of the connection.
		value = trimmed(value, &len);
		if (++f->nte > 1)
			f->why = "more than one Transfer-Encoding header";
		else if (len != 7 || strncasecmp(value, "chunked", 7) != 0)
			f->why = "Transfer-Encoding other than chunked";
	}
	return f->why == NULL ? MHD_YES : MHD_NO;
}

// framing_refused answers 400 MALFORMED_REQUEST and closes the connection
// when the headers do not say unambiguously where the body ends. MHD 0.9.75
// frames by the first Content-Length alone, and by Transfer-Encoding when
// both are present: a proxy in front that framed the other way would let a
// client hide a second request in the body (request smuggling). It runs at
// the first call for a request, before MHD reads any of the body, and the
// early answer makes MHD discard the rest of the connection.
static bool
framing_refused(gw_job *j)
{
	framing f = { 0, 0, 0, NULL };

	MHD_get_connection_values(
	    j->conn, MHD_HEADER_KIND, framing_header, &f);
	if (f.why == NULL && f.ncl > 0 && f.nte > 0)
		f.why = "both Content-Length and Transfer-Encoding";
	if (f.why == NULL)
		return false;
	gw_job_header_add(j, MHD_HTTP_HEADER_CONNECTION, "close");
	gw_job_error(j, 400, "MALFORMED_REQUEST", NULL,
	    "ambiguous request framing: %s", f.why);
	return true;
}

// ---------------------------------------------------------------- MHD

static bool
content_type_json(const char *ct)
{
	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", 16) != 0)
		return false;
	ct += 16;
	return *ct == '\0' || *ct == ';' || *ct == ' ';
}

// content_type_xml accepts the media types of a SOAP message.
static bool
content_type_xml(const char *ct)
{
	static const char *const types[]
	    = { "text/xml", "application/soap+xml" };
	while (ct != NULL && *ct == ' ')
		ct++;
	for (size_t i = 0; ct != NULL && i < 2; i++) {
		size_t n = strlen(types[i]);
		if (strncasecmp(ct, types[i], n) == 0
		    && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
			return true;
	}
	return false;
}

// query_arg_utf8 stops at the first query argument whose name or value,
// as decoded, is not UTF-8, and keeps its name in *cls.
static enum MHD_Result
query_arg_utf8(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void) kind;
	if (dre_utf8_valid(key, strlen(key), NULL)
	    && (value == NULL || dre_utf8_valid(value, strlen(value), NULL)))
		return MHD_YES;
	*(const char **) cls = key;
	return MHD_NO;
}

// text_refused answers 400 when the decoded path or a query argument is
// not UTF-8: they reach services' documents and error bodies, which are.
static bool
text_refused(gw_job *j, const char *url)
{
	const char *bad = NULL;
	if (!dre_utf8_valid(url, strlen(url), NULL)) {
		gw_job_error(j, 400, "VALIDATION_FAILED", NULL,
		    "the path is not valid UTF-8 (after percent-decoding)");
		return true;
	}
	MHD_get_connection_values(
	    j->conn, MHD_GET_ARGUMENT_KIND, query_arg_utf8, &bad);
	if (bad == NULL)
		return false;
	if (dre_utf8_valid(bad, strlen(bad), NULL))
		gw_job_error(j, 400, "VALIDATION_FAILED", bad,
		    "query argument %.*s is not valid UTF-8 (after "
		    "percent-decoding)",
		    DRE_UTF8_CUT(bad, 60));
	else
		gw_job_error(j, 400, "VALIDATION_FAILED", NULL,
		    "a query argument's name is not valid UTF-8 (after "
		    "percent-decoding)");
	return true;
}

// job_begin decides everything the headers allow: route, auth, media type,
// declared size. It answers at once when the request cannot succeed.
static void
job_begin(gw_job *j, const char *method, const char *url)
{
	gw             *g = j->g;
	bool            known;
	const gw_route *r;
	const char     *cl, *te, *ct;
	bool            has_body;

	if (text_refused(j, url))
		return;
	r = gw_route_match(j, method, url, &known);
	if (r == NULL) {
		if (known)
			gw_job_error(j, 405, "METHOD_NOT_ALLOWED", NULL,
			    "method %s not allowed on %s", method, url);
		else
			gw_job_error(j, 404, "NOT_FOUND", NULL,
			    "no resource at %s", url);
		return;
	}
	j->route = r;
	if (r->roles == 0) {
		// Public (the API description): no credentials are read.
	} else if (r->fn == gw_heartbeat
	    && strcmp(g->cfg->mode, "local-store") == 0) {
		snprintf(j->who.tenant, sizeof(j->who.tenant), "default");
	} else if (!gw_authenticate(j, method, url)) {
		return; // answered 401, 403 or 429
	}
	cl = gw_job_header(j, MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = gw_job_header(j, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	ct = gw_job_header(j, MHD_HTTP_HEADER_CONTENT_TYPE);
	has_body = (cl != NULL && strtoull(cl, NULL, 10) > 0) || te != NULL;
	if ((r->body == GW_BODY_JSON
	        || (r->body == GW_BODY_JSON_OPT && (has_body || ct != NULL)))
	    && !content_type_json(ct)) {
		gw_job_error(j, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
		    "Content-Type must be application/json");
		return;
	}
	if (r->body == GW_BODY_FORM
	    && (ct == NULL
	        || strncasecmp(ct, "application/x-www-form-urlencoded", 33)
	            != 0)) {
		gw_job_error(j, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
		    "Content-Type must be application/x-www-form-urlencoded");
		return;
	}
	if (r->body == GW_BODY_XML && !content_type_xml(ct)) {
		gw_job_error(j, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
		    "Content-Type must be text/xml (SOAP 1.1) or "
		    "application/soap+xml (SOAP 1.2)");
		return;
	}
	if (r->body == GW_BODY_STREAM)
		j->body_limit = SIZE_MAX; // the owner checks its disk
	if (cl != NULL && strtoull(cl, NULL, 10) > j->body_limit) {
		gw_job_error(j, 413, "PAYLOAD_TOO_LARGE", NULL,
		    "body larger than %zu bytes", j->body_limit);
		return;
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	gw     *g = cls;
	gw_job *j = *con_cls;

	(void) version;
	if (j == NULL) {
		// The headers are complete; the body's deadline starts.
		gw_watch_phase(g->watch, conn, GW_PHASE_BODY);
		if ((j = job_get(g)) == NULL)
			return MHD_NO;
		*con_cls = j;
		j->conn = conn;
		j->method = method;
		gw_ops_begin(j, url);
		if (!framing_refused(j))
			job_begin(j, method, url);
		if (j->state == JOB_SENT) // answered: no body is read
			gw_watch_phase(g->watch, conn, GW_PHASE_NONE);
		return MHD_YES;
	}
	switch (j->state) {
	case JOB_READ:
	read:
		if (*upload_size > 0 && j->route->body == GW_BODY_STREAM) {
			// Passed on in chunks: the connection is suspended
			// while the owner stores one, then reading goes on.
			dre_buf_append(&j->body, upload, *upload_size);
			*upload_size = 0;
			if (j->body.oom) {
				j->in_upload = true;
				gw_job_oom(j);
				j->in_upload = false;
			} else if (j->body.len >= GW_STREAM_CHUNK) {
				j->streaming = true;
				gw_watch_phase(g->watch, conn, GW_PHASE_NONE);
				if (j->apikey != NULL)
					gw_key_verify(j);
				else
					j->route->fn(j);
			}
			return MHD_YES;
		}
		if (*upload_size > 0) {
			if (j->body.len + *upload_size > j->body_limit) {
				j->in_upload = true;
				gw_job_error(j, 413, "PAYLOAD_TOO_LARGE", NULL,
				    "body larger than %zu bytes",
				    j->body_limit);
				j->in_upload = false;
			} else {
				dre_buf_append(&j->body, upload, *upload_size);
			}
			*upload_size = 0;
			return MHD_YES;
		}
		// The body is complete: the call and the answer have MHD's
		// idle timeout only.
		gw_watch_phase(g->watch, conn, GW_PHASE_NONE);
		if (j->body.oom) {
			gw_job_oom(j);
			return MHD_YES;
		}
		j->streaming = false;
		if (j->apikey != NULL)
			gw_key_verify(j); // runs the handler once verified
		else
			j->route->fn(j);
		return MHD_YES;
	case JOB_REFUSED:
		if (*upload_size > 0) {
			*upload_size = 0; // dropped, never buffered
			return MHD_YES;
		}
		gw_watch_phase(g->watch, conn, GW_PHASE_NONE);
		MHD_queue_response(
		    conn, (unsigned) j->pending_status, j->pending);
		MHD_destroy_response(j->pending);
		j->pending = NULL;
		j->state = JOB_SENT;
		return MHD_YES;
	case JOB_DONE:
		j->render(j);
		if (j->state == JOB_READ) { // a streamed chunk was stored
			gw_watch_phase(g->watch, conn, GW_PHASE_BODY);
			goto read;
		}
		return MHD_YES;
	case JOB_WAIT:
	case JOB_SENT:
		*upload_size = 0;
		return MHD_YES;
	}
	return MHD_NO;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	gw     *g = cls;
	gw_job *j = *con_cls;

	(void) toe;
	// Answered: the next request line is due within the idle timeout.
	gw_watch_phase(g->watch, conn, GW_PHASE_WAIT);
	if (j != NULL) {
		gw_ops_end(j);
		job_put(j);
	}
	*con_cls = NULL;
}

// on_uri is MHD's URI log callback: a request line has arrived, the
// header deadline starts (the time a client was idle before does not
// count).
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	gw *g = cls;

	(void) uri;
	gw_watch_phase(g->watch, conn, GW_PHASE_HEADERS);
	return NULL; // *con_cls: on_request makes the job
}

// After gw_http_drain a worker closes each new connection as it accepts
// it. (MHD_quiesce_daemon is not used: with epoll and a thread pool,
// libmicrohttpd 0.9.75 races the worker that removes the listening socket
// from its own epoll set and aborts the process: "Failed to remove listen
// FD from epoll set".)
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	gw *g = cls;

	(void) addr;
	(void) addrlen;
	return atomic_load(&g->refusing) ? MHD_NO : MHD_YES;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	gw                             *g = cls;
	const union MHD_ConnectionInfo *ci;
	int                             one = 1;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
		gw_watch_conn_close(g->watch, socket_ctx);
		http_closed = true;
		return;
	}
	// Small JSON answers must not wait for Nagle + delayed ACK.
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (!gw_watch_conn_open(g->watch, conn, socket_ctx) && ci != NULL) {
		// Read as EOF by this thread, which then closes it.
		shutdown(ci->connect_fd, SHUT_RDWR);
		log_limited("connection refused: its address has "
		            "http.max_connections_per_ip (%lld) open",
		    (long long) g->cfg->max_connections_per_ip);
	}
}

// log_limitedv logs a line about connections, at most GW_MHD_LOG_PER_S a
// second: there is a line per refused or broken connection, so a
// connection flood would otherwise flood the log too.
static void
log_limitedv(const char *prefix, const char *fmt, va_list ap)
{
	static _Atomic int64_t window;
	static atomic_int      n;
	int64_t                now = dre_mono_ms() / 1000;
	int64_t                w = atomic_load(&window);
	char                   msg[512];
	size_t                 len;

	if (w != now && atomic_compare_exchange_strong(&window, &w, now)) {
		int dropped = atomic_exchange(&n, 0) - GW_MHD_LOG_PER_S;
		if (dropped > 0)
			dre_info("%d more connection message(s) not logged",
			    dropped);
	}
	if (atomic_fetch_add(&n, 1) >= GW_MHD_LOG_PER_S)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	dre_info("%s%s", prefix, msg);
}

static void
log_limited(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_limitedv("", fmt, ap);
	va_end(ap);
}

// on_mhd_log is MHD's logger.
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void) cls;
	log_limitedv("libmicrohttpd: ", fmt, ap);
}

// connection_budget raises the open-file limit to what
// http.max_connections needs (up to the hard limit) and returns how many
// connections fit: past the limit accept() would fail for everyone, nng
// could not redial a service and the gateway would answer nobody.
static unsigned int
connection_budget(const gw_cfg *cfg)
{
	struct rlimit rl;
	rlim_t        need = (rlim_t) cfg->max_connections + GW_FD_RESERVE;
	rlim_t        fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY
	    || rl.rlim_cur >= need)
		return (unsigned int) cfg->max_connections;
	fit = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max
	                                                         : need;
	if (fit > rl.rlim_cur) {
		struct rlimit up = { fit, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = fit;
	}
	if (rl.rlim_cur >= need)
		return (unsigned int) cfg->max_connections;
	fit = rl.rlim_cur > GW_FD_RESERVE + 16 ? rl.rlim_cur - GW_FD_RESERVE
	                                       : 16;
	dre_warn("http.max_connections lowered from %lld to %llu: the "
	         "open-file limit is %llu",
	    (long long) cfg->max_connections, (unsigned long long) fit,
	    (unsigned long long) rl.rlim_cur);
	return (unsigned int) fit;
}

// ---------------------------------------------------------------- threads

// The HTTP threads are the gateway's own, not libmicrohttpd's. MHD's
// polling thread (0.9.75, and upstream's master of 2025) drains epoll in
// rounds of 128 events and, when a round comes back full, calls epoll_wait
// again with the whole timeout (up to the connection timeout, 60 s) before
// it serves that round: 128 keep-alive clients whose requests arrive
// together (a till fleet, a load test) all waited for the next event on
// that thread, or for the idle deadline, which then closed them
// unanswered (test_connections test_8). In external polling mode MHD_run()
// waits 0 ms inside and leaves the waiting to its caller: each thread here
// runs one daemon in that mode and waits for its epoll descriptor (and an
// eventfd: resumes, the stop) with poll(), for as long as
// MHD_get_timeout() allows. The
// daemons share one listening socket, as the workers of MHD's thread pool
// do: whichever thread is free accepts, and each daemon takes its share of
// http.max_connections; the per-address limit is counted over all of them
// (conn.c).
struct gw_http_loop {
	struct MHD_Daemon *d;
	pthread_t          th;
	int                wake; // eventfd: a resume (http_kick) or the stop
	// Set by the first http_kick since the thread last looked: the ones
	// after it need not write (replies that come together, as the calls
	// of one coalesced rpc message do, wake the thread once).
	atomic_bool kicked;
	atomic_bool stop;
	bool        running;
};

// http_loop_of is the thread of conn's daemon (NULL: none), asked while
// conn is certainly alive (its request being handled).
static gw_http_loop *
http_loop_of(gw *g, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci
	    = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);

	for (unsigned i = 0; ci != NULL && i < g->nloops; i++)
		if (g->loops[i].d == ci->daemon)
			return &g->loops[i];
	return NULL;
}

// http_kick wakes an HTTP thread (http_loop_of) after
// MHD_resume_connection: in external polling mode MHD has no channel of
// its own to do that. Only the first kick since the thread last looked
// writes: the thread clears `kicked` after draining its eventfd and before
// it runs MHD, so a resume either comes before that run or writes.
static void
http_kick(gw_http_loop *l)
{
	uint64_t one = 1;

	if (l == NULL || atomic_exchange(&l->kicked, true))
		return;
	if (write(l->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		dre_warn("http thread: wake: %s", strerror(errno));
}

static void *
http_loop_main(void *arg)
{
	gw_http_loop               *l = arg;
	const union MHD_DaemonInfo *di
	    = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd pf[2]
	    = { { di->epoll_fd, POLLIN, 0 }, { l->wake, POLLIN, 0 } };

	pthread_setname_np(pthread_self(), "MHD-worker");
	while (!atomic_load(&l->stop)) {
		MHD_UNSIGNED_LONG_LONG to;
		int                    ms = -1;

		if (MHD_get_timeout(l->d, &to) == MHD_YES)
			ms = to > INT_MAX ? INT_MAX : (int) to;
		if (poll(pf, 2, ms) < 0 && errno != EINTR) {
			dre_error("http thread: poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents != 0) { // a resume (or the stop)
			uint64_t n;
			if (read(l->wake, &n, sizeof(n)) < 0
			    && errno != EAGAIN)
				dre_warn("http thread: %s", strerror(errno));
		}
		atomic_store(&l->kicked, false);
		// A daemon at its share of http.max_connections has taken the
		// listening socket out of its epoll set; MHD puts it back at
		// the start of its next run once a connection has closed, so
		// run once more before waiting on that set again.
		do {
			http_closed = false;
			MHD_run(l->d);
		} while (http_closed && !atomic_load(&l->stop));
	}
	return NULL;
}

// listen_on opens the listening socket of http.bind and http.port.
static int
listen_on(const gw_cfg *cfg)
{
	struct sockaddr_in  a4;
	struct sockaddr_in6 a6;
	struct sockaddr    *sa;
	socklen_t           salen;
	int                 fd, one = 1;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, cfg->http_bind, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t) cfg->http_port);
		sa = (struct sockaddr *) &a4;
		salen = sizeof(a4);
	} else if (inet_pton(AF_INET6, cfg->http_bind, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t) cfg->http_port);
		sa = (struct sockaddr *) &a6;
		salen = sizeof(a6);
	} else {
		dre_error("http.bind %s is not an IP address", cfg->http_bind);
		return -1;
	}
	fd = socket(
	    sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0
	    || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))
	    || (sa->sa_family == AF_INET6
	        && setsockopt(
	            fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
	    || bind(fd, sa, salen) != 0 || listen(fd, SOMAXCONN) != 0) {
		dre_error("cannot listen on %s:%d: %s", cfg->http_bind,
		    (int) cfg->http_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void
loops_stop(gw *g)
{
	for (unsigned i = 0; i < g->nloops; i++) {
		gw_http_loop *l = &g->loops[i];
		uint64_t      one = 1;

		if (l->running) {
			atomic_store(&l->stop, true);
			if (write(l->wake, &one, sizeof(one)) < 0)
				dre_warn(
				    "http thread: wake: %s", strerror(errno));
			pthread_join(l->th, NULL);
			l->running = false;
		}
	}
	// MHD closes its connections and its copy of the listening socket.
	for (unsigned i = 0; i < g->nloops; i++) {
		gw_http_loop *l = &g->loops[i];

		if (l->d != NULL)
			MHD_stop_daemon(l->d);
		if (l->wake >= 0)
			close(l->wake);
	}
	free(g->loops);
	g->loops = NULL;
	g->nloops = 0;
	if (g->listen_fd >= 0)
		close(g->listen_fd);
	g->listen_fd = -1;
}

dre_err
gw_http_start(gw *g)
{
	// MHD_ALLOW_SUSPEND_RESUME asks for MHD's inter-thread channel too,
	// which external polling drops: http_kick wakes a resumed one's
	// thread.
	unsigned int flags
	    = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	unsigned int threads = g->cfg->http_threads > 0
	    ? (unsigned int) g->cfg->http_threads
	    : 1;
	unsigned int limit = connection_budget(g->cfg);
	unsigned int idle_s
	    = (unsigned int) ((g->cfg->idle_timeout_ms + 999) / 1000);
	dre_err err;

	if (threads > limit)
		threads = limit;
	if ((err = gw_watch_open(&g->watch, g->cfg->idle_timeout_ms,
	         g->cfg->header_timeout_ms, g->cfg->body_timeout_ms,
	         (unsigned int) g->cfg->max_connections_per_ip))
	    != DRE_OK)
		return err;
	if ((g->listen_fd = listen_on(g->cfg)) < 0)
		return DRE_EIO;
	if ((g->loops = calloc(threads, sizeof(*g->loops))) == NULL) {
		close(g->listen_fd);
		g->listen_fd = -1;
		return DRE_ENOMEM;
	}
	g->nloops = threads;
	for (unsigned int i = 0; i < threads; i++)
		g->loops[i].wake = -1;
	for (unsigned int i = 0; i < threads; i++) {
		gw_http_loop *l = &g->loops[i];
		// Past its share of the total a daemon stops accepting: new
		// connections wait in the listen queue until one closes (or
		// another thread has room).
		unsigned int share = limit / threads + (i < limit % threads);
		int          lfd = fcntl(g->listen_fd, F_DUPFD_CLOEXEC, 0);

		if (lfd < 0
		    || (l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
		        < 0) {
			dre_error("http thread %u: %s", i, strerror(errno));
			if (lfd >= 0)
				close(lfd);
			loops_stop(g);
			return DRE_EIO;
		}
		l->d = MHD_start_daemon(flags, 0, on_accept, g, on_request, g,
		    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, g,
		    MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_NOTIFY_COMPLETED,
		    on_completed, g, MHD_OPTION_NOTIFY_CONNECTION,
		    on_connection, g, MHD_OPTION_URI_LOG_CALLBACK, on_uri, g,
		    MHD_OPTION_CONNECTION_LIMIT, share,
		    MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
		if (l->d == NULL) {
			// lfd is not closed here: MHD may have closed it
			// already, and the gateway stops anyway.
			dre_error("cannot start HTTP thread %u on %s:%d", i,
			    g->cfg->http_bind, (int) g->cfg->http_port);
			loops_stop(g);
			return DRE_EIO;
		}
		if (pthread_create(&l->th, NULL, http_loop_main, l) != 0) {
			dre_error("cannot start HTTP thread %u", i);
			loops_stop(g);
			return DRE_EIO;
		}
		l->running = true;
	}
	return DRE_OK;
}

void
gw_http_drain(gw *g)
{
	int64_t until;

	if (g->nloops == 0)
		return;
	// No new connection from here on (each is closed as it is accepted,
	// so a client learns at once to go elsewhere); the requests begun
	// finish: each is answered within rpc.timeout_ms.
	atomic_store(&g->refusing, true);
	until = dre_mono_ms() + g->cfg->rpc_timeout_ms + 1000;
	while (atomic_load(&g->active) > 0 && dre_mono_ms() < until) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&g->active) > 0)
		dre_warn("drain: %d request(s) still unanswered after %lld ms",
		    atomic_load(&g->active),
		    (long long) g->cfg->rpc_timeout_ms + 1000);
}

void
gw_http_stop(gw *g)
{
	int64_t until;

	// New calls are refused from here on; the ones in flight finish (each
	// within rpc.timeout_ms) so that no connection is left suspended.
	atomic_store(&g->stopping, true);
	until = dre_mono_ms() + g->cfg->rpc_timeout_ms + 1000;
	while (atomic_load(&g->inflight) > 0 && dre_mono_ms() < until) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	loops_stop(g);
	// After MHD: its "closed" notifications still use the watcher.
	gw_watch_close(g->watch);
	g->watch = NULL;
	while (g->free_jobs != NULL) {
		gw_job *j = g->free_jobs;
		g->free_jobs = j->next_free;
		job_free(j);
	}
	g->nfree = 0;
}
