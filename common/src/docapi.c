// docapi.c -- shared plumbing of the JSON-document nng APIs.
#define _GNU_SOURCE // vasprintf
#include "dre/docapi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/buf.h"
#include "dre/log.h"

bool
dre_docapi_begin(dre_docapi_req *r, const dre_docapi_svc *svc,
    const dre_rpc_call *call, dre_rpc_reply *rep)
{
	r->svc = svc;
	r->call = call;
	r->rep = rep;
	r->a = NULL;
	if (call->tenant[0] == '\0') {
		dre_rpc_reply_error(
		    rep, 403, "FORBIDDEN", NULL, "the call carries no tenant");
		return false;
	}
	if ((r->a = dre_arena_alloc(0)) == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return false;
	}
	return true;
}

void
dre_docapi_end(dre_docapi_req *r)
{
	dre_arena_free(r->a);
	r->a = NULL;
}

void
dre_docapi_internal(dre_docapi_req *r, dre_err err)
{
	dre_error("%s: %s", r->call->method, dre_strerror(err));
	dre_rpc_reply_error(r->rep, 503, "UNAVAILABLE", NULL,
	    "%s could not complete the request: %s", r->svc->name,
	    dre_strerror(err));
}

bool
dre_docapi_invalid(dre_docapi_req *r, const char *target, const char *fmt, ...)
{
	// Formatted here in full, as dre_rpc_reply_error would: a message may
	// quote the caller's input at any length.
	char   *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	dre_rpc_reply_error(r->rep, 400, "VALIDATION_FAILED", target, "%s",
	    n >= 0 ? msg : "invalid request");
	if (n >= 0)
		free(msg);
	return false;
}

bool
dre_docapi_strict(
    dre_docapi_req *r, const dre_json *doc, const char *const *known, size_t n)
{
	const dre_json *m = dre_json_unknown(doc, known, n, NULL);
	if (m == NULL)
		return true;
	char name[64], msg[160];
	dre_json_unknown_describe(
	    m, known, n, name, sizeof name, msg, sizeof msg);
	return dre_docapi_invalid(r, name, "%s", msg);
}

void
dre_docapi_errors(
    dre_docapi_req *r, const dre_promo_errors *e, const char *fallback)
{
	if (e->n == 0) {
		dre_docapi_invalid(r, NULL, "%s", fallback);
		return;
	}
	dre_rpc_reply_error(r->rep, 400, "VALIDATION_FAILED",
	    e->v[0].target[0] ? e->v[0].target : NULL, "%s", e->v[0].message);
	for (size_t i = 0; i < e->n && i < e->cap; i++)
		dre_rpc_reply_detail(r->rep, "VALIDATION_FAILED",
		    e->v[i].target[0] ? e->v[i].target : NULL, "%s",
		    e->v[i].message);
}

const dre_json *
dre_docapi_body(dre_docapi_req *r, const char *not_object)
{
	dre_json      *root = NULL;
	dre_json_error je = { 0, NULL };
	dre_err err = dre_json_parse(&root, r->a, (const char *) r->call->body,
	    r->call->body_len, DRE_JSON_MAX_DEPTH, &je);
	if (err == DRE_ENOMEM) {
		dre_docapi_internal(r, err);
		return NULL;
	}
	if (err != DRE_OK) {
		dre_rpc_reply_error(r->rep, 400, "MALFORMED_JSON", NULL,
		    "the body is not valid JSON: %s at byte %zu",
		    je.msg ? je.msg : "parse error", je.offset);
		return NULL;
	}
	if (not_object != NULL && !dre_json_is(root, DRE_JSON_OBJECT)) {
		dre_docapi_invalid(r, NULL, "%s", not_object);
		return NULL;
	}
	return root;
}

bool
dre_docapi_int_param(
    dre_docapi_req *r, const char *name, int64_t dflt, int64_t *out)
{
	const char *s = dre_rpc_param(r->call, name);
	char       *end = NULL;
	if (s == NULL || s[0] == '\0') {
		*out = dflt;
		return true;
	}
	// Digits only: strtoll alone would also take a sign, white space
	// and, clamped, a number too large.
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] < '0' || s[0] > '9')
		return dre_docapi_invalid(
		    r, name, "%s must be a non-negative integer", name);
	*out = v;
	return true;
}

bool
dre_docapi_paging(dre_docapi_req *r, int64_t dflt, int64_t max, int64_t *topp,
    int64_t *skipp)
{
	if (!dre_docapi_int_param(r, "$top", dflt, topp)
	    || !dre_docapi_int_param(r, "$skip", 0, skipp))
		return false;
	if (*topp > max)
		*topp = max;
	return true;
}

// reply_body answers status with b as the JSON body, or 503 if b ran out of
// memory.
static void
reply_body(dre_docapi_req *r, int status, dre_buf *b)
{
	if (b->oom) {
		dre_buf_reset(b);
		dre_docapi_internal(r, DRE_ENOMEM);
		return;
	}
	r->rep->status = status;
	dre_rpc_reply_json(r->rep);
}

void
dre_docapi_reply_doc(
    dre_docapi_req *r, int status, const char *doc, size_t len)
{
	dre_buf *b = &r->rep->body;
	dre_buf_reset(b);
	dre_buf_printf(b, "{\"minorVersion\":%d", r->svc->minor_version);
	if (len > 2 && doc[0] == '{') {
		dre_buf_putc(b, ',');
		dre_buf_append(b, doc + 1, len - 1);
	} else {
		dre_buf_putc(b, '}');
	}
	reply_body(r, status, b);
}

void
dre_docapi_reply_list(dre_docapi_req *r, int64_t count, const dre_buf *items)
{
	dre_buf *b = &r->rep->body;
	dre_buf_reset(b);
	dre_buf_printf(b, "{\"minorVersion\":%d,\"count\":%lld,\"value\":[",
	    r->svc->minor_version, (long long) count);
	if (items->len > 0)
		dre_buf_append(b, items->data, items->len);
	dre_buf_puts(b, "]}");
	if (items->oom)
		b->oom = 1;
	reply_body(r, 200, b);
}

bool
dre_etag_match(const char *if_match, const char *version)
{
	size_t wl = strlen(version);
	for (const char *p = if_match; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		const char *q = p;
		while (*q && *q != ',')
			q++;
		size_t n = (size_t) (q - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == wl + 2 && p[0] == '"' && p[n - 1] == '"'
		    && memcmp(p + 1, version, wl) == 0)
			return true;
		p = q;
	}
	return false;
}

void
dre_docapi_etag(dre_docapi_req *r, const char *version)
{
	char tag[80];
	snprintf(tag, sizeof tag, "\"%.64s\"", version);
	dre_rpc_reply_header(r->rep, "ETag", tag);
}

bool
dre_docapi_if_match(dre_docapi_req *r, const char *version, const char *what)
{
	const char *im = dre_rpc_param(r->call, "if_match");
	if (im == NULL || dre_etag_match(im, version))
		return true;
	dre_docapi_stale(r, version, what);
	return false;
}

void
dre_docapi_stale(dre_docapi_req *r, const char *version, const char *what)
{
	dre_rpc_reply_error(r->rep, 412, "PRECONDITION_FAILED", "If-Match",
	    "the %s changed since it was read (its ETag is now \"%s\"): read "
	    "it again and reapply the change",
	    what, version);
}

// ---- lists
// ------------------------------------------------------------------

bool
dre_docapi_list_begin(dre_docapi_list *l, dre_docapi_req *r,
    const dre_odata_fields *fields, int64_t dflt, int64_t max)
{
	dre_odata_error qerr;
	memset(l, 0, sizeof *l);
	l->r = r;
	dre_err err
	    = dre_odata_parse(&l->q, r->a, r->call, fields, dflt, max, &qerr);
	if (err == DRE_EINVAL)
		return dre_docapi_invalid(r, qerr.target, "%s", qerr.message);
	l->parse = err == DRE_OK && !dre_odata_trivial(l->q);
	if (err != DRE_OK
	    || (l->parse
	        && ((l->scratch = dre_arena_alloc(0)) == NULL
	            || (l->docs = dre_arena_alloc(0)) == NULL))) {
		dre_docapi_internal(r, err != DRE_OK ? err : DRE_ENOMEM);
		return false;
	}
	return true;
}

bool
dre_docapi_list_add(dre_docapi_list *l, const char *text, size_t len)
{
	dre_json *root = NULL;
	if (!l->parse) {
		dre_odata_emit(l->q, &l->count, &l->vals, NULL, text, len);
		return !(l->oom = l->vals.oom);
	}
	dre_arena_reset(l->scratch);
	dre_err err = dre_json_parse(
	    &root, l->scratch, text, len, DRE_JSON_MAX_DEPTH, NULL);
	if (err == DRE_ENOMEM) {
		l->oom = true;
		return false;
	}
	if (err != DRE_OK) // never one of ours: left out
		return true;
	if (!dre_odata_sorted(l->q)) {
		dre_odata_emit(l->q, &l->count, &l->vals, root, text, len);
		return !(l->oom = l->vals.oom);
	}
	if (!dre_odata_match(l->q, root))
		return true;
	// Kept: the text and its tree in docs, for sorting.
	char *kept = dre_arena_strndup(l->docs, text, len);
	if (kept == NULL
	    || dre_json_parse(
	           &root, l->docs, kept, len, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK
	    || !dre_odata_keep(l->q, &l->kept, root, kept, len))
		l->oom = true;
	return !l->oom;
}

void
dre_docapi_list_free(dre_docapi_list *l)
{
	free(l->kept.v);
	l->kept.v = NULL;
	dre_arena_free(l->scratch);
	dre_arena_free(l->docs);
	l->scratch = l->docs = NULL;
	dre_buf_free(&l->vals);
}

void
dre_docapi_list_end(dre_docapi_list *l)
{
	if (l->parse && dre_odata_sorted(l->q))
		l->count = dre_odata_page(l->q, &l->kept, &l->vals);
	if (l->oom || l->vals.oom)
		dre_docapi_internal(l->r, DRE_ENOMEM);
	else
		dre_docapi_reply_list(l->r, l->count, &l->vals);
	dre_docapi_list_free(l);
}
