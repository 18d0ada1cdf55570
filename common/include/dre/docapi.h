// docapi.h -- the plumbing every JSON-document nng API shares: tenant and
// arena per request, body parsing, $top/$skip, error and document replies.
#ifndef DRE_DOCAPI_H
#define DRE_DOCAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/err.h"
#include "dre/json.h"
#include "dre/odata.h"
#include "dre/promo.h"
#include "dre/rpc.h"

// One per service, static.
typedef struct {
	const char
	    *name; // "the catalog": who "could not complete the request"
	int  minor_version; // minorVersion of every document answered
} dre_docapi_svc;

// One request in progress. Everything but a is borrowed for the handler.
typedef struct {
	const dre_docapi_svc *svc;
	const dre_rpc_call   *call;
	dre_rpc_reply        *rep;
	dre_arena            *a; // per request; freed by dre_docapi_end()
} dre_docapi_req;

// dre_docapi_begin fills r and opens its arena. Returns false, having
// answered 403 FORBIDDEN (no tenant) or 503 UNAVAILABLE (no memory), when
// the request cannot go on; dre_docapi_end(r) is still right to call.
bool dre_docapi_begin(dre_docapi_req *r, const dre_docapi_svc *svc,
    const dre_rpc_call *call, dre_rpc_reply *rep);
// dre_docapi_end frees the request's arena.
void dre_docapi_end(dre_docapi_req *r);

// dre_docapi_internal logs err and answers 503 UNAVAILABLE "<svc name>
// could not complete the request: <err>".
void dre_docapi_internal(dre_docapi_req *r, dre_err err);

// dre_docapi_invalid answers 400 VALIDATION_FAILED with target (may be
// NULL) and a printf message. Returns false, for `return
// dre_docapi_invalid(...)` in validators.
bool dre_docapi_invalid(dre_docapi_req *r, const char *target, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

// dre_docapi_strict answers 400 VALIDATION_FAILED naming the first member
// of doc that is not in known[0..n) (target = its name, a did-you-mean when
// a known name is close) and returns false; true when every member is
// known. Master-data writes are strict (PRODUCT-DECISIONS §1).
bool dre_docapi_strict(dre_docapi_req *r, const dre_json *doc,
    const char *const *known, size_t n);
// dre_docapi_errors answers 400 VALIDATION_FAILED with the first of errs as
// the error and every one as a detail; with none, fallback is the message.
void dre_docapi_errors(
    dre_docapi_req *r, const dre_promo_errors *errs, const char *fallback);

// dre_docapi_body parses the request body into r's arena; NULL once it has
// answered 400 MALFORMED_JSON (or 503). With not_object set, a body that is
// not a JSON object is answered 400 VALIDATION_FAILED with that message.
const dre_json *dre_docapi_body(dre_docapi_req *r, const char *not_object);
#define DRE_DOCAPI_NOT_OBJECT "the body must be a JSON object"

// dre_docapi_int_param reads the non-negative integer parameter name (dflt
// when absent or empty); false once it has answered 400.
bool dre_docapi_int_param(
    dre_docapi_req *r, const char *name, int64_t dflt, int64_t *out);
// dre_docapi_paging reads $top (dflt when absent, at most max) and $skip.
bool dre_docapi_paging(dre_docapi_req *r, int64_t dflt, int64_t max,
    int64_t *topp, int64_t *skipp);

// dre_docapi_reply_doc answers status with the JSON object doc[0..len)
// with minorVersion as its first member.
void dre_docapi_reply_doc(
    dre_docapi_req *r, int status, const char *doc, size_t len);
// dre_docapi_reply_list answers 200 {minorVersion, count, value: [items]};
// items holds the comma-separated elements. 503 when either ran out of
// memory.
void dre_docapi_reply_list(
    dre_docapi_req *r, int64_t count, const dre_buf *items);

// A list answer in progress, with the OData query options (dre/odata.h).
// Without $orderby the page is written while the collection is read,
// keeping nothing (a collection may hold a million documents); with one,
// the documents that pass $filter are kept and sorted. The members are
// the caller's to read (count, q: to peek at $skip/$top before rendering).
typedef struct {
	dre_docapi_req *r;
	dre_odata      *q;
	bool            parse; // $filter, $select or $orderby: parsed docs
	dre_arena      *scratch; // the document at hand
	dre_arena      *docs; // the documents kept for sorting
	dre_odata_list  kept;
	dre_buf         vals; // the page
	int64_t         count;
	bool            oom;
} dre_docapi_list;

// dre_docapi_list_begin reads the query options for an entity offering
// fields ($top: dflt when absent, at most max); false once it has answered
// (400 naming the option, or 503) -- dre_docapi_list_free is still right.
bool dre_docapi_list_begin(dre_docapi_list *l, dre_docapi_req *r,
    const dre_odata_fields *fields, int64_t dflt, int64_t max);
// dre_docapi_list_add offers one document of the collection, text[0..len)
// as a read answers it (borrowed for the call). False once out of memory.
bool dre_docapi_list_add(dre_docapi_list *l, const char *text, size_t len);
// dre_docapi_list_end answers the page (or 503) and frees what l holds.
void dre_docapi_list_end(dre_docapi_list *l);
// dre_docapi_list_free frees what l holds (when it has answered already).
void dre_docapi_list_free(dre_docapi_list *l);

// dre_etag_match tells whether an If-Match header value names the entity
// whose ETag is "version" (quoted): "*", or one tag of a comma-separated
// list; W/ forms compare weakly, as RFC 9110 allows for our own tags.
bool dre_etag_match(const char *if_match, const char *version);

// dre_docapi_etag answers the header ETag: version, quoted (a strong tag).
void dre_docapi_etag(dre_docapi_req *r, const char *version);
// dre_docapi_if_match checks the request's If-Match (the gateway's if_match
// parameter) against the entity's current version (dre_etag_match): true
// when there is none or it matches. Otherwise answers as dre_docapi_stale
// and returns false: the caller then changes nothing.
bool dre_docapi_if_match(
    dre_docapi_req *r, const char *version, const char *what);
// dre_docapi_stale answers 412 PRECONDITION_FAILED, target If-Match: the
// <what> changed since it was read, its ETag is now version.
void dre_docapi_stale(
    dre_docapi_req *r, const char *version, const char *what);

#endif
