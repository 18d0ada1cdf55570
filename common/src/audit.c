// audit.c -- audit records written with the change they describe, and
// answered with the /api/v1 query options (dre/audit.h).
#include <stdlib.h>
#include <string.h>

#include "dre/audit.h"
#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/odata.h"
#include "dre/uuid.h"

#define KEY_MAX     512
#define TOP_DEFAULT 100

static const char *const scalars[]
    = { "id", "at", "actor", "entity", "entityId", "action" };
static const char *const members[] = { "id", "at", "actor", "entity",
	"entityId", "action", "before", "after", "details" };
const dre_odata_fields   dre_audit_fields
    = { scalars, sizeof scalars / sizeof *scalars, members,
	      sizeof members / sizeof *members };

// audit_key writes tag, tenant \0, be64(at), id; 0 when it does not fit.
static size_t
audit_key(char *out, size_t cap, char tag, const char *tenant, int64_t at,
    const char *id)
{
	size_t n = dre_key(out, cap, tag, 2, tenant, "");
	size_t il = id ? strlen(id) : 0;
	if (n == 0 || n + 8 + il > cap)
		return 0;
	dre_be64_put(out + n, at);
	memcpy(out + n + 8, id, il);
	return n + 8 + il;
}

static void
raw_or_null(dre_jsonw *w, const char *key, const char *json, size_t len)
{
	dre_jsonw_key(w, key);
	if (json == NULL || len == 0)
		dre_jsonw_null(w);
	else
		dre_jsonw_raw(w, json, len);
}

// audit_write appends the record's JSON to out.
static void
audit_write(dre_buf *out, const dre_audit_rec *rec, const char *id, int64_t at)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", id);
	dre_jsonw_key(&w, "at");
	dre_jsonw_time(&w, at);
	dre_jsonw_kstr(&w, "actor", rec->actor);
	dre_jsonw_kstr(&w, "entity", rec->entity);
	dre_jsonw_kstr(&w, "entityId", rec->entity_id);
	dre_jsonw_kstr(&w, "action", rec->action);
	raw_or_null(&w, "before", rec->before, rec->before_len);
	raw_or_null(&w, "after", rec->after, rec->after_len);
	raw_or_null(&w, "details", rec->details, rec->details_len);
	dre_jsonw_obj_end(&w);
}

dre_err
dre_audit_put(dre_batch *b, dre_store *st, int cf, char tag,
    const dre_audit_rec *rec, char *idp)
{
	char    id[DRE_UUID_LEN + 1], key[KEY_MAX];
	int64_t at = rec->at_ms != 0 ? rec->at_ms : dre_now_ms();
	dre_buf doc = { 0 };
	dre_uuid_v4(id);
	size_t kl = audit_key(key, sizeof key, tag, rec->tenant, at, id);
	if (kl == 0)
		return DRE_ETOOBIG;
	audit_write(&doc, rec, id, at);
	if (doc.oom) {
		dre_buf_free(&doc);
		return DRE_ENOMEM;
	}
	dre_batch_put(b, st, cf, key, kl, doc.data, doc.len);
	dre_buf_free(&doc);
	if (idp != NULL)
		memcpy(idp, id, sizeof id);
	return DRE_OK;
}

dre_err
dre_audit_change(dre_batch *b, dre_store *st, int cf, const char *tenant,
    const char *actor, const char *entity, const char *entity_id,
    const char *action, const dre_buf *before, const dre_buf *after,
    const char *details)
{
	dre_audit_rec rec = { .tenant = tenant,
		.actor = actor,
		.entity = entity,
		.entity_id = entity_id,
		.action = action != NULL ? action
		    : after == NULL      ? "delete"
		    : before == NULL     ? "create"
		                         : "update",
		.details = details,
		.details_len = details != NULL ? strlen(details) : 0 };
	if ((before != NULL && before->oom) || (after != NULL && after->oom))
		return DRE_ENOMEM;
	if (before != NULL) {
		rec.before = before->data;
		rec.before_len = before->len;
	}
	if (after != NULL) {
		rec.after = after->data;
		rec.after_len = after->len;
	}
	return dre_audit_put(b, st, cf, 0, &rec, NULL);
}

void
dre_audit_render(dre_buf *out, const dre_audit_rec *rec)
{
	char id[DRE_UUID_LEN + 1];
	dre_uuid_v4(id);
	audit_write(out, rec, id, rec->at_ms != 0 ? rec->at_ms : dre_now_ms());
}

// json_member returns the text of member name of o (NULL when absent or
// null) after checking it is an object; false once it has answered 400.
static bool
json_member(dre_docapi_req *r, dre_arena *a, const dre_json *o,
    const char *name, const char **textp, size_t *lenp)
{
	const dre_json *v = dre_json_get(o, name);
	*textp = NULL;
	*lenp = 0;
	if (dre_json_is_null(v))
		return true;
	if (!dre_json_is(v, DRE_JSON_OBJECT))
		return dre_docapi_invalid(
		    r, name, "%s must be a JSON object or null", name);
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_json(&w, v);
	*textp = b.oom ? NULL : dre_arena_strndup(a, b.data, b.len);
	*lenp = b.len;
	dre_buf_free(&b);
	if (*textp == NULL) {
		dre_docapi_internal(r, DRE_ENOMEM);
		return false;
	}
	return true;
}

// text_member reads the required (or optional) string member name.
static bool
text_member(dre_docapi_req *r, const dre_json *o, const char *name,
    bool required, const char **out)
{
	const dre_json *v = dre_json_get(o, name);
	*out = NULL;
	if (dre_json_is_null(v) && !required)
		return true;
	if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0 || v->len > 200)
		return dre_docapi_invalid(r, name,
		    "%s must be a string of 1 to 200 characters", name);
	*out = v->str;
	return true;
}

void
dre_audit_record(dre_docapi_req *r, dre_store *st, int cf, char tag)
{
	static const char *const known[] = { "entity", "entityId", "action",
		"actor", "before", "after", "details" };
	const dre_json *in = dre_docapi_body(r, DRE_DOCAPI_NOT_OBJECT);
	dre_audit_rec   rec = { 0 };
	char            id[DRE_UUID_LEN + 1];
	if (in == NULL
	    || !dre_docapi_strict(r, in, known, sizeof known / sizeof *known)
	    || !text_member(r, in, "entity", true, &rec.entity)
	    || !text_member(r, in, "entityId", false, &rec.entity_id)
	    || !text_member(r, in, "action", true, &rec.action)
	    || !text_member(r, in, "actor", false, &rec.actor)
	    || !json_member(
	        r, r->a, in, "before", &rec.before, &rec.before_len)
	    || !json_member(r, r->a, in, "after", &rec.after, &rec.after_len)
	    || !json_member(
	        r, r->a, in, "details", &rec.details, &rec.details_len))
		return;
	rec.tenant = r->call->tenant;
	if (rec.actor == NULL)
		rec.actor = r->call->principal;
	rec.at_ms = dre_now_ms();
	dre_batch *b = dre_batch_alloc();
	dre_err    err
	    = b == NULL ? DRE_ENOMEM : dre_audit_put(b, st, cf, tag, &rec, id);
	if (err == DRE_OK)
		err = dre_store_write(st, b, true);
	dre_batch_free(b);
	if (err != DRE_OK) {
		dre_docapi_internal(r, err);
		return;
	}
	dre_buf doc = { 0 };
	audit_write(&doc, &rec, id, rec.at_ms);
	if (doc.oom)
		dre_docapi_internal(r, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(r, 201, doc.data, doc.len);
	dre_buf_free(&doc);
}

void
dre_audit_list(dre_docapi_req *r, dre_store *st, int cf, char tag)
{
	dre_odata      *q = NULL;
	dre_odata_error qerr;
	dre_odata_list  kept = { 0 };
	dre_store_iter *it = NULL;
	dre_arena      *docs = NULL;
	dre_buf         vals = { 0 };
	int64_t         count = 0;
	char            prefix[KEY_MAX];
	bool            oom = false;
	dre_err err = dre_odata_parse(&q, r->a, r->call, &dre_audit_fields,
	    TOP_DEFAULT, DRE_AUDIT_TOP_MAX, &qerr);
	if (err == DRE_EINVAL) {
		dre_docapi_invalid(r, qerr.target, "%s", qerr.message);
		return;
	}
	size_t plen
	    = dre_key(prefix, sizeof prefix, tag, 2, r->call->tenant, "");
	if (err == DRE_OK && plen == 0)
		err = DRE_ETOOBIG;
	if (err == DRE_OK && (docs = dre_arena_alloc(0)) == NULL)
		err = DRE_ENOMEM;
	if (err == DRE_OK)
		err = dre_store_iter_open(&it, st, cf, prefix, plen);
	if (err != DRE_OK) {
		dre_arena_free(docs);
		dre_docapi_internal(r, err);
		return;
	}
	bool        parse = !dre_odata_trivial(q);
	bool        sorted = dre_odata_sorted(q);
	const char *k, *v;
	size_t      kl, vl;
	while (!oom && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		dre_json *root = NULL;
		if (!parse) {
			dre_odata_emit(q, &count, &vals, NULL, v, vl);
			continue;
		}
		// Sorted pages keep what passed (text and tree) until the
		// end; the others only the document at hand.
		if (!sorted)
			dre_arena_reset(docs);
		char *text = dre_arena_strndup(docs, v, vl);
		if (text == NULL
		    || dre_json_parse(
		           &root, docs, text, vl, DRE_JSON_MAX_DEPTH, NULL)
		        == DRE_ENOMEM) {
			oom = true;
			break;
		}
		if (root == NULL)
			continue;
		if (!sorted)
			dre_odata_emit(q, &count, &vals, root, text, vl);
		else if (!dre_odata_keep(q, &kept, root, text, vl))
			oom = true;
	}
	dre_store_iter_close(it);
	if (sorted && parse)
		count = dre_odata_page(q, &kept, &vals);
	free(kept.v);
	dre_arena_free(docs);
	if (oom || vals.oom)
		dre_docapi_internal(r, DRE_ENOMEM);
	else
		dre_docapi_reply_list(r, count, &vals);
	dre_buf_free(&vals);
}

void
dre_audit_list_call(const dre_docapi_svc *api, dre_store *st, int cf, char tag,
    const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_docapi_req r;
	if (dre_docapi_begin(&r, api, call, rep))
		dre_audit_list(&r, st, cf, tag);
	dre_docapi_end(&r);
}
