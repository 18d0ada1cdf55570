// catalog/handlers.c -- nng handlers: CRUD of the master-data kinds and
// campaigns, tenant settings, article import, snapshot.
#include "handlers.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "catalog.h"
#include "dre/arena.h"
#include "dre/audit.h"
#include "dre/auth.h"
#include "dre/changes.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/odata.h"
#include "dre/log.h"
#include "dre/promo.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "calendar.h"
#include "entities.h"
#include "identity.h"
#include "masterdata.h"
#include "master.pb-c.h"

#define MINOR_VERSION 13
#define TOP_DEFAULT   100
#define TOP_MAX       1000
#define MAX_ERRS      32

// One request in progress: everything a handler needs, freed in
// dre_docapi_end.
typedef struct {
	dre_docapi_req   d;
	cat             *c;
	cat_kind         k;
	const ent_spec  *spec; // NULL for promotions
	dre_promo_error  ev[MAX_ERRS];
	dre_promo_errors errs;
	// The changes this request wrote, one line each: KIND \t key \t
	// version. Sent back as the reply header dre-changes, so the gateway
	// can wait until every evaluator applied them (read-your-writes,
	// PRODUCT-DECISIONS §4b).
	dre_buf changes;
	int64_t version; // of the stored entity resolve() found
	int64_t written; // version of this request's last write
	int     nwritten; // entities written
	// For the audit log: the action when it is not create, update or
	// delete, its details (JSON), and the promotion's approval state to
	// store with the change (dre_buf data, NULL: unchanged).
	const char *action;
	const char *details;
	dre_buf     approval;
} req;

static const ent_spec *const specs[CAT_NKINDS] = {
	[CAT_PROMOTION] = NULL,
	[CAT_POS_GROUP] = &ent_pos_group,
	[CAT_ARTICLE_GROUP] = &ent_article_group,
	[CAT_ARTICLE] = &ent_article,
	[CAT_CAMPAIGN] = &ent_campaign,
};

static const dre_docapi_svc cat_api = { "the catalog", MINOR_VERSION };

static bool
req_begin(req *r, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep,
    cat_kind k)
{
	r->c = svc;
	r->k = k;
	r->spec = specs[k];
	r->errs.v = r->ev;
	r->errs.cap = MAX_ERRS;
	r->errs.n = 0;
	memset(&r->changes, 0, sizeof r->changes);
	r->version = 0;
	r->written = 0;
	r->nwritten = 0;
	r->action = NULL;
	r->details = NULL;
	memset(&r->approval, 0, sizeof r->approval);
	return dre_docapi_begin(&r->d, &cat_api, call, rep);
}

static void etag_set(req *r, int64_t version);

// req_end hands the changes to the gateway (on a successful answer only)
// and releases the request.
static void
req_end(req *r)
{
	if (r->nwritten == 1 && r->d.rep->status < 300)
		etag_set(r, r->written); // one entity written: its new tag
	if (r->changes.len > 0 && !r->changes.oom && r->d.rep->status < 300) {
		dre_buf_putc(&r->changes, '\0');
		if (!r->changes.oom)
			dre_rpc_reply_header(
			    r->d.rep, "dre-changes", r->changes.data);
	}
	dre_buf_free(&r->changes);
	dre_buf_free(&r->approval);
	dre_docapi_end(&r->d);
}

// put_locked is cat_put_locked that records the change in r->changes.
static dre_err
put_locked(req *r, cat_kind k, const char *key, const char *doc, size_t len,
    const cat_index *add, size_t nadd, const cat_index *del, size_t ndel)
{
	int64_t   version = 0;
	cat_audit au = { r->d.call->principal, r->action, r->details,
		r->approval.len > 0 ? r->approval.data : NULL,
		r->approval.len };
	if (r->approval.oom)
		return DRE_ENOMEM;
	dre_err err = cat_put_locked(r->c, r->d.call->tenant, k, key, doc, len,
	    add, nadd, del, ndel, &au, &version);
	if (err == DRE_OK) {
		// No evaluator reads campaigns: nothing to wait for.
		if (k != CAT_CAMPAIGN)
			dre_changes_add(
			    &r->changes, cat_kind_name(k), key, version);
		r->written = version;
		r->nwritten++;
	}
	return err;
}

static const dre_json *
parse_stored(req *r, const char *doc, size_t len)
{
	dre_json *root = NULL;
	if (dre_json_parse(&root, r->d.a, doc, len, DRE_JSON_MAX_DEPTH, NULL)
	    != DRE_OK)
		return NULL;
	return root;
}

static const char *
key_field(const req *r)
{
	if (r->spec == NULL || r->spec->key < 0)
		return "id";
	return r->spec->fields[r->spec->key].name;
}

// alt_field names the secondary index that also addresses an entity.
static const char *
alt_field(cat_kind k)
{
	switch (k) {
	case CAT_POS_GROUP:
		return "code";
	case CAT_ARTICLE_GROUP:
	case CAT_ARTICLE:
		return "id";
	default:
		return NULL;
	}
}

// resolve finds the entity the "id" parameter names: by key, else by the
// kind's secondary index. *keyp and *docp are malloc'd; r->version is the
// stored version (its ETag).
static dre_err
resolve(req *r, const char *id, char **keyp, char **docp, size_t *lenp)
{
	dre_err     err;
	const char *alt = alt_field(r->k);
	err = cat_get(
	    r->c, r->d.call->tenant, r->k, id, docp, lenp, &r->version);
	if (err == DRE_OK) {
		if ((*keyp = strdup(id)) == NULL) {
			free(*docp);
			return DRE_ENOMEM;
		}
		return DRE_OK;
	}
	if (err != DRE_ENOTFOUND || alt == NULL)
		return err;
	char *key = NULL;
	if ((err = cat_index_get(r->c, r->d.call->tenant, r->k, alt, id, &key))
	    != DRE_OK)
		return err;
	err = cat_get(
	    r->c, r->d.call->tenant, r->k, key, docp, lenp, &r->version);
	if (err != DRE_OK) {
		free(key);
		return err;
	}
	*keyp = key;
	return DRE_OK;
}

// ---- optimistic concurrency: ETag = the entity's version
// ------------------------------------------------------------------------

// etag_set answers the entity's ETag (a strong tag of its version).
static void
etag_set(req *r, int64_t version)
{
	char tag[32];
	snprintf(tag, sizeof tag, "\"%lld\"", (long long) version);
	dre_rpc_reply_header(r->d.rep, "ETag", tag);
}

// if_match_ok checks the request's If-Match (the gateway's if_match
// parameter) against the stored version r->version: "*", or a list of
// tags one of which is it (W/ prefixes compared weakly, as RFC 9110 allows
// for If-Match on our own tags). Answers 412 and returns false otherwise.
static bool
if_match_ok(req *r)
{
	const char *im = dre_rpc_param(r->d.call, "if_match");
	if (im == NULL)
		return true;
	char want[32];
	snprintf(want, sizeof want, "%lld", (long long) r->version);
	if (dre_etag_match(im, want))
		return true;
	dre_rpc_reply_error(r->d.rep, 412, "PRECONDITION_FAILED", "If-Match",
	    "the entity changed since it was read (now version %s): read it "
	    "again and reapply the change",
	    want);
	return false;
}

static const char *
id_param(req *r)
{
	const char *id = dre_rpc_param(r->d.call, "id");
	if (id == NULL || id[0] == 0) {
		dre_docapi_invalid(&r->d, "id", "the entity id is missing");
		return NULL;
	}
	return id;
}

static void
reply_not_found(req *r, const char *id)
{
	dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
	    "%s '%s' not found", cat_kind_name(r->k), id);
}

// resolve_stored is resolve() for a handler that reads (check false) or
// changes (check true: If-Match must hold) the entity: its stored document
// parsed, or NULL once it has answered 404, 412 or 503. *keyp and *docp
// as resolve() sets them (the caller frees them in either case).
static const dre_json *
resolve_stored(
    req *r, const char *id, bool check, char **keyp, char **docp, size_t *lenp)
{
	dre_err err = resolve(r, id, keyp, docp, lenp);
	if (err != DRE_OK) {
		if (err == DRE_ENOTFOUND)
			reply_not_found(r, id);
		else
			dre_docapi_internal(&r->d, err);
		return NULL;
	}
	if (check && !if_match_ok(r))
		return NULL;
	const dre_json *root = parse_stored(r, *docp, *lenp);
	if (root == NULL)
		dre_docapi_internal(&r->d, DRE_ESTORE);
	return root;
}

// ---- approval (issue 13.5) ------------------------------------------------
//
// DRAFT -> PENDING_APPROVAL (submit) -> APPROVED | REJECTED (approve,
// reject with a reason); APPROVED -> ACTIVE (activate). Every promotion
// write stores, beside the promotion and in its batch, the approval state
// (CF_META, CAT_META_APPROVAL): the last editor, whether the content was
// approved since, who decided and why. With the tenant setting
// requireApproval a promotion reaches ACTIVE only from APPROVED (or from
// INACTIVE when its content was approved and not edited since), approved
// by someone other than its last editor; without it activate works from
// any status, as before.

// The approval state of a promotion, as stored (JSON).
typedef struct {
	const char *last_editor; // "" when unknown (written before 13.5)
	const char *submitted_by;
	const char *decided_by;
	const char *reason;
	bool        approved; // the current content was approved
} approval_state;

#define SETTINGS_KEY "settings"

// require_approval tells whether the tenant set requireApproval.
static bool
require_approval(req *r)
{
	char           *doc = NULL;
	size_t          len = 0;
	const dre_json *root = NULL;
	bool            on = false;
	if (cat_get(r->c, r->d.call->tenant, CAT_TENANT_SETTINGS, SETTINGS_KEY,
	        &doc, &len, NULL)
	    != DRE_OK)
		return false;
	if ((root = parse_stored(r, doc, len)) != NULL)
		on = dre_json_is(
		    dre_json_get(root, "requireApproval"), DRE_JSON_TRUE);
	free(doc);
	return on;
}

static const char *
state_str(req *r, const dre_json *root, const char *name)
{
	const dre_json *v = root ? dre_json_get(root, name) : NULL;
	return dre_json_is(v, DRE_JSON_STRING)
	    ? dre_arena_strdup(r->d.a, v->str)
	    : NULL;
}

// approval_get reads the approval state of promotion key (all empty when
// none was stored).
static dre_err
approval_get(req *r, const char *key, approval_state *st)
{
	char   ak[1024], *val = NULL;
	size_t vlen = 0;
	size_t al = dre_key(
	    ak, sizeof ak, CAT_META_APPROVAL, 2, r->d.call->tenant, key);
	dre_err err = al == 0
	    ? DRE_ENOTFOUND
	    : dre_store_get(r->c->st, CF_META, ak, al, &val, &vlen);
	memset(st, 0, sizeof *st);
	st->last_editor = "";
	if (err == DRE_ENOTFOUND)
		return DRE_OK;
	if (err != DRE_OK)
		return err;
	const dre_json *root = parse_stored(r, val, vlen);
	free(val);
	if (root == NULL)
		return DRE_ESTORE;
	const char *le = state_str(r, root, "lastEditor");
	st->last_editor = le ? le : "";
	st->submitted_by = state_str(r, root, "submittedBy");
	st->decided_by = state_str(r, root, "decidedBy");
	st->reason = state_str(r, root, "reason");
	st->approved
	    = dre_json_is(dre_json_get(root, "approved"), DRE_JSON_TRUE);
	return DRE_OK;
}

// approval_set makes st the state the request's write stores.
static void
approval_set(req *r, const approval_state *st)
{
	dre_jsonw w;
	dre_buf_reset(&r->approval);
	dre_jsonw_init(&w, &r->approval);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "lastEditor", st->last_editor);
	dre_jsonw_kstr(&w, "submittedBy", st->submitted_by);
	dre_jsonw_kstr(&w, "decidedBy", st->decided_by);
	dre_jsonw_kstr(&w, "reason", st->reason);
	dre_jsonw_kbool(&w, "approved", st->approved);
	dre_jsonw_obj_end(&w);
}

// needs_approval: the statuses only the workflow (and activate) reach.
static bool
needs_approval(dre_promo_status s)
{
	return s == DRE_PS_PENDING_APPROVAL || s == DRE_PS_APPROVED
	    || s == DRE_PS_REJECTED || s == DRE_PS_ACTIVE || s == DRE_PS_PILOT;
}

// approval_edit applies the workflow to a create or update (base NULL:
// create) resulting in p: the caller becomes the last editor and the
// content is no longer approved. With requireApproval an edit cannot set a
// workflow or live status, cannot change an ACTIVE promotion, and takes a
// submitted, approved or rejected one back to DRAFT. False once it has
// answered 409 APPROVAL_REQUIRED.
static bool
approval_edit(req *r, const dre_promo *base, dre_promo *p)
{
	approval_state st = { 0 };
	st.last_editor = r->d.call->principal;
	approval_set(r, &st);
	if (!require_approval(r))
		return true;
	dre_promo_status was = base ? base->status : DRE_PS_DRAFT;
	if (base != NULL && p->status == was
	    && (was == DRE_PS_PENDING_APPROVAL || was == DRE_PS_APPROVED
	        || was == DRE_PS_REJECTED)) {
		p->status = DRE_PS_DRAFT; // the edit withdraws it
		return true;
	}
	if (!needs_approval(p->status))
		return true;
	if (base != NULL && p->status == was)
		dre_rpc_reply_error(r->d.rep, 409, "APPROVAL_REQUIRED",
		    "status",
		    "the promotion is %s and the tenant requires approval: "
		    "deactivate it, change it and submit it again",
		    dre_promo_status_name(was));
	else
		dre_rpc_reply_error(r->d.rep, 409, "APPROVAL_REQUIRED",
		    "status",
		    "the tenant requires approval: a promotion becomes %s "
		    "only through submit, approve and activate",
		    dre_promo_status_name(p->status));
	return false;
}

// ---- documents ----------------------------------------------------------

// build_promo turns body (PUT/POST) or body over stored (PATCH) into the
// normal form in out; *idp is the promotion id. Answers 400 itself.
static bool
build_promo(req *r, const dre_json *in, const dre_json *stored, bool patch,
    dre_buf *out, const char **idp)
{
	dre_promo *base = NULL, *p = NULL;
	dre_err    err;
	int64_t    now = dre_now_ms();
	if (stored != NULL
	    && (err = dre_promo_parse(&base, r->d.a, stored, NULL, NULL))
	        != DRE_OK) {
		dre_docapi_internal(&r->d, DRE_ESTORE);
		return false;
	}
	err = dre_promo_parse(&p, r->d.a, in, patch ? base : NULL, &r->errs);
	if (err == DRE_OK && base != NULL && !patch && p->id[0]
	    && strcmp(p->id, base->id) != 0) {
		r->errs.n = 0;
		r->errs.v[0].code = "VALIDATION_FAILED";
		snprintf(
		    r->errs.v[0].target, sizeof r->errs.v[0].target, "id");
		snprintf(r->errs.v[0].message, sizeof r->errs.v[0].message,
		    "id cannot be changed");
		r->errs.n = 1;
		err = DRE_EINVAL;
	}
	if (err == DRE_ENOMEM) {
		dre_docapi_internal(&r->d, err);
		return false;
	}
	if (err != DRE_OK) {
		dre_docapi_errors(&r->d, &r->errs, "invalid document");
		return false;
	}
	if (!approval_edit(r, base, p))
		return false;
	if (base != NULL) {
		memcpy(p->id, base->id, sizeof p->id);
		p->created_at = base->created_at;
	} else {
		if (p->id[0] == 0)
			dre_uuid_v4(p->id);
		p->created_at = now;
	}
	p->updated_at = now;
	dre_promo_write(out, p);
	*idp = dre_arena_strdup(r->d.a, p->id);
	return *idp != NULL;
}

static bool campaign_check(req *r, const ent_doc *d, const dre_json *base);

// ---- create -------------------------------------------------------------

static void
do_create(req *r)
{
	const dre_json *in = dre_docapi_body(&r->d, NULL);
	dre_buf         doc = { 0 };
	const char     *key = NULL;
	char            id[DRE_UUID_LEN + 1];
	cat_index       idx[1];
	size_t          nidx = 0;
	ent_doc         d;
	dre_err         err;
	char           *old = NULL;
	if (in == NULL)
		return;

	if (r->spec == NULL) {
		if (!build_promo(r, in, NULL, false, &doc, &key))
			goto out;
	} else {
		bool        bad = false;
		const char *bid = ent_check_id(in, "", &r->errs, &bad);
		if (ent_validate(&d, r->spec, in, NULL, false, "", &r->errs)
		        != DRE_OK
		    || bad) {
			dre_docapi_errors(&r->d, &r->errs, "invalid document");
			goto out;
		}
		if (r->k == CAT_CAMPAIGN && !campaign_check(r, &d, NULL))
			goto out;
		if (bid != NULL)
			snprintf(id, sizeof id, "%s", bid);
		else
			dre_uuid_v4(id);
		key = r->spec->key >= 0 ? ent_str(&d, r->spec->key) : id;
		int64_t now = dre_now_ms();
		ent_write(&doc, &d, id, now, now);
		const char *alt = alt_field(r->k);
		if (alt != NULL) {
			idx[0].field = alt;
			idx[0].value = strcmp(alt, "id") == 0
			    ? id
			    : ent_str(&d, r->spec->unique);
			nidx = 1;
		}
	}
	if (doc.oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		goto out;
	}

	pthread_mutex_lock(&r->c->mu);
	err = cat_get(r->c, r->d.call->tenant, r->k, key, &old, NULL, NULL);
	if (err == DRE_OK) {
		dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", key_field(r),
		    "%s '%s' already exists", cat_kind_name(r->k), key);
		goto unlock;
	}
	if (err != DRE_ENOTFOUND) {
		dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	for (size_t i = 0; i < nidx; i++) {
		char *other = NULL;
		err = cat_index_get(r->c, r->d.call->tenant, r->k,
		    idx[i].field, idx[i].value, &other);
		free(other);
		if (err == DRE_OK) {
			dre_rpc_reply_error(r->d.rep, 409, "CONFLICT",
			    idx[i].field, "%s '%s' already exists",
			    idx[i].field, idx[i].value);
			goto unlock;
		}
		if (err != DRE_ENOTFOUND) {
			dre_docapi_internal(&r->d, err);
			goto unlock;
		}
	}
	err = put_locked(r, r->k, key, doc.data, doc.len, idx, nidx, NULL, 0);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		dre_docapi_reply_doc(&r->d, 201, doc.data, doc.len);
unlock:
	pthread_mutex_unlock(&r->c->mu);
out:
	free(old);
	dre_buf_free(&doc);
}

// ---- update (PUT, PATCH with patch=1) -----------------------------------

static void
do_update(req *r)
{
	const char     *id = id_param(r);
	const dre_json *in = id ? dre_docapi_body(&r->d, NULL) : NULL;
	const char     *pp = dre_rpc_param(r->d.call, "patch");
	bool            patch = pp != NULL && strcmp(pp, "1") == 0;
	char           *key = NULL, *stored = NULL;
	size_t          slen = 0;
	dre_buf         doc = { 0 };
	cat_index       add[1], del[1];
	size_t          nadd = 0, ndel = 0;
	dre_err         err;
	if (in == NULL)
		return;

	pthread_mutex_lock(&r->c->mu);
	const dre_json *sroot
	    = resolve_stored(r, id, true, &key, &stored, &slen);
	if (sroot == NULL)
		goto unlock;
	if (r->spec == NULL) {
		const char *pid;
		if (!build_promo(r, in, sroot, patch, &doc, &pid))
			goto unlock;
	} else {
		ent_doc         d;
		bool            bad = false;
		const char     *bid = ent_check_id(in, "", &r->errs, &bad);
		const dre_json *sid = dre_json_get(sroot, "id");
		const char     *eid
		    = dre_json_is(sid, DRE_JSON_STRING) ? sid->str : key;
		if (ent_validate(&d, r->spec, in, sroot, patch, "", &r->errs)
		        != DRE_OK
		    || bad) {
			dre_docapi_errors(&r->d, &r->errs, "invalid document");
			goto unlock;
		}
		if (r->k == CAT_CAMPAIGN && !campaign_check(r, &d, sroot))
			goto unlock;
		if (bid != NULL && strcmp(bid, eid) != 0) {
			dre_docapi_invalid(
			    &r->d, "id", "id cannot be changed");
			goto unlock;
		}
		if (r->spec->key >= 0
		    && strcmp(ent_str(&d, r->spec->key), key) != 0) {
			dre_docapi_invalid(&r->d, key_field(r),
			    "%s cannot be changed", key_field(r));
			goto unlock;
		}
		if (r->spec->unique >= 0) {
			const char *f = r->spec->fields[r->spec->unique].name;
			const char *now_v = ent_str(&d, r->spec->unique);
			const dre_json *was = dre_json_get(sroot, f);
			const char *was_v = dre_json_is(was, DRE_JSON_STRING)
			    ? was->str
			    : NULL;
			if (was_v == NULL || strcmp(was_v, now_v) != 0) {
				char *other = NULL;
				err = cat_index_get(r->c, r->d.call->tenant,
				    r->k, f, now_v, &other);
				bool taken
				    = err == DRE_OK && strcmp(other, key) != 0;
				free(other);
				if (taken) {
					dre_rpc_reply_error(r->d.rep, 409,
					    "CONFLICT", f,
					    "%s '%s' already exists", f,
					    now_v);
					goto unlock;
				}
				if (was_v != NULL) {
					del[0].field = f;
					del[0].value = was_v;
					ndel = 1;
				}
				add[0].field = f;
				add[0].value = now_v;
				nadd = 1;
			}
		}
		ent_write(
		    &doc, &d, eid, ent_time(sroot, "createdAt"), dre_now_ms());
	}
	if (doc.oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		goto unlock;
	}
	err = put_locked(
	    r, r->k, key, doc.data, doc.len, add, nadd, del, ndel);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		dre_docapi_reply_doc(&r->d, 200, doc.data, doc.len);
unlock:
	pthread_mutex_unlock(&r->c->mu);
	free(key);
	free(stored);
	dre_buf_free(&doc);
}

// ---- get, delete --------------------------------------------------------

static void
do_get(req *r)
{
	const char *id = id_param(r);
	char       *key = NULL, *doc = NULL;
	size_t      len = 0;
	dre_err     err;
	if (id == NULL)
		return;
	if ((err = resolve(r, id, &key, &doc, &len)) == DRE_OK) {
		dre_docapi_reply_doc(&r->d, 200, doc, len);
		etag_set(r, r->version);
	} else if (err == DRE_ENOTFOUND)
		reply_not_found(r, id);
	else
		dre_docapi_internal(&r->d, err);
	free(key);
	free(doc);
}

static void
do_delete(req *r)
{
	const char *id = id_param(r);
	char       *key = NULL, *doc = NULL;
	size_t      len = 0;
	cat_index   del[1];
	size_t      ndel = 0;
	dre_err     err;
	if (id == NULL)
		return;
	pthread_mutex_lock(&r->c->mu);
	if ((err = resolve(r, id, &key, &doc, &len)) != DRE_OK) {
		if (err == DRE_ENOTFOUND)
			reply_not_found(r, id);
		else
			dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	if (!if_match_ok(r))
		goto unlock;
	const char *alt = alt_field(r->k);
	if (alt != NULL) {
		const dre_json *sroot = parse_stored(r, doc, len);
		const dre_json *v = sroot ? dre_json_get(sroot, alt) : NULL;
		if (dre_json_is(v, DRE_JSON_STRING)) {
			del[0].field = alt;
			del[0].value = v->str;
			ndel = 1;
		}
	}
	err = put_locked(r, r->k, key, NULL, 0, NULL, 0, del, ndel);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
	} else {
		r->d.rep->status = 204;
		dre_buf_reset(&r->d.rep->body);
	}
unlock:
	pthread_mutex_unlock(&r->c->mu);
	free(key);
	free(doc);
}

// ---- tenant settings ------------------------------------------------------

// settings_write appends the normal form of a tenant's settings.
// requireApproval is written only when on (absent: off), so the settings of
// a tenant that never asked for it read as before.
static void
settings_write(dre_buf *b, bool nudges, const char *currency, bool strict,
    bool approval, int64_t at)
{
	dre_jsonw w;
	dre_jsonw_init(&w, b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "enableProductionNudges", nudges);
	dre_jsonw_kstr(&w, "currency", currency);
	dre_jsonw_kbool(&w, "rejectUnknownFields", strict);
	if (approval)
		dre_jsonw_kbool(&w, "requireApproval", true);
	dre_jsonw_key(&w, "modifiedAt");
	if (at == 0)
		dre_jsonw_null(&w);
	else
		dre_jsonw_time(&w, at);
	dre_jsonw_obj_end(&w);
}

// do_settings_get answers the stored settings, or the defaults (no
// production nudges, EUR) when the tenant never set any.
static void
do_settings_get(req *r)
{
	char   *doc = NULL;
	size_t  len = 0;
	dre_err err = cat_get(r->c, r->d.call->tenant, CAT_TENANT_SETTINGS,
	    SETTINGS_KEY, &doc, &len, &r->version);
	if (err == DRE_ENOTFOUND) {
		dre_buf d = { 0 };
		settings_write(&d, false, "EUR", false, false, 0);
		if (d.oom)
			dre_docapi_internal(&r->d, DRE_ENOMEM);
		else
			dre_docapi_reply_doc(&r->d, 200, d.data, d.len);
		dre_buf_free(&d);
		etag_set(r, 0); // the defaults: never written
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	dre_docapi_reply_doc(&r->d, 200, doc, len);
	etag_set(r, r->version);
	free(doc);
}

// do_settings_put replaces the settings (members absent or null take their
// defaults).
static void
do_settings_put(req *r)
{
	const dre_json *root
	    = dre_docapi_body(&r->d, "the settings must be a JSON object");
	if (root == NULL)
		return;
	static const char *const known[]
	    = { "enableProductionNudges", "currency", "rejectUnknownFields",
		      "requireApproval", "modifiedAt", "minorVersion" };
	if (!dre_docapi_strict(
	        &r->d, root, known, sizeof known / sizeof known[0]))
		return;
	bool            nudges = false, strict = false, approval = false;
	const char     *cur = "EUR";
	const dre_json *v = dre_json_get(root, "requireApproval");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE) {
			dre_docapi_invalid(&r->d, "requireApproval",
			    "requireApproval must be a boolean");
			return;
		}
		approval = v->type == DRE_JSON_TRUE;
	}
	v = dre_json_get(root, "rejectUnknownFields");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE) {
			dre_docapi_invalid(&r->d, "rejectUnknownFields",
			    "rejectUnknownFields must be a boolean");
			return;
		}
		strict = v->type == DRE_JSON_TRUE;
	}
	v = dre_json_get(root, "enableProductionNudges");
	if (!dre_json_is_null(v)) {
		if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE) {
			dre_docapi_invalid(&r->d, "enableProductionNudges",
			    "enableProductionNudges must be a boolean");
			return;
		}
		nudges = v->type == DRE_JSON_TRUE;
	}
	v = dre_json_get(root, "currency");
	if (!dre_json_is_null(v)) {
		if (!dre_json_is(v, DRE_JSON_STRING) || v->len != 3
		    || v->str[0] < 'A' || v->str[0] > 'Z' || v->str[1] < 'A'
		    || v->str[1] > 'Z' || v->str[2] < 'A' || v->str[2] > 'Z') {
			dre_docapi_invalid(&r->d, "currency",
			    "currency must be a 3-letter ISO 4217 code");
			return;
		}
		cur = v->str;
	}
	dre_buf doc = { 0 };
	settings_write(&doc, nudges, cur, strict, approval, dre_now_ms());
	if (doc.oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		dre_buf_free(&doc);
		return;
	}
	pthread_mutex_lock(&r->c->mu);
	// If-Match against the stored settings (version 0: never written).
	char   *old = NULL;
	size_t  olen = 0;
	dre_err gerr = cat_get(r->c, r->d.call->tenant, CAT_TENANT_SETTINGS,
	    SETTINGS_KEY, &old, &olen, &r->version);
	free(old);
	if (gerr == DRE_ENOTFOUND)
		r->version = 0;
	if (!if_match_ok(r)) {
		pthread_mutex_unlock(&r->c->mu);
		dre_buf_free(&doc);
		return;
	}
	// Four eyes cannot be switched off (or on) by those it binds.
	if (approval != require_approval(r)
	    && (r->d.call->roles & DRE_ROLE(ADMIN)) == 0) {
		pthread_mutex_unlock(&r->c->mu);
		dre_buf_free(&doc);
		dre_rpc_reply_error(r->d.rep, 403, "FORBIDDEN",
		    "requireApproval",
		    "changing requireApproval needs the role Admin (the "
		    "settings keep it: send \"requireApproval\": %s)",
		    approval ? "false" : "true");
		return;
	}
	dre_err err = put_locked(r, CAT_TENANT_SETTINGS, SETTINGS_KEY,
	    doc.data, doc.len, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&r->c->mu);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		dre_docapi_reply_doc(&r->d, 200, doc.data, doc.len);
	dre_buf_free(&doc);
}

// ---- activate, deactivate, submit, approve, reject ----------------------

typedef enum {
	ACT_ACTIVATE,
	ACT_DEACTIVATE,
	ACT_SUBMIT,
	ACT_APPROVE,
	ACT_REJECT,
} promo_action;

static const char *const action_names[]
    = { "activate", "deactivate", "submit", "approve", "reject" };

// reject_reason reads the reject body's reason (required); NULL once it
// has answered 400.
static const char *
reject_reason(req *r)
{
	static const char *const known[] = { "reason" };
	const dre_json *in = dre_docapi_body(&r->d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(&r->d, in, known, 1))
		return NULL;
	const dre_json *v = dre_json_get(in, "reason");
	if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0 || v->len > 1000) {
		dre_docapi_invalid(&r->d, "reason",
		    "reason must be a string of 1 to 1000 characters saying "
		    "why the promotion is rejected");
		return NULL;
	}
	return v->str;
}

// transition_ok checks that action may move promotion p (approval state
// st) and sets its next status and state; false once it has answered.
static bool
transition_ok(req *r, promo_action act, dre_promo *p, approval_state *st,
    const char *reason)
{
	const char      *who = r->d.call->principal;
	dre_promo_status was = p->status;
	switch (act) {
	case ACT_DEACTIVATE:
		p->status = DRE_PS_INACTIVE;
		return true;
	case ACT_ACTIVATE:
		if (was != DRE_PS_ACTIVE && was != DRE_PS_APPROVED
		    && !(was == DRE_PS_INACTIVE && st->approved)
		    && require_approval(r)) {
			dre_rpc_reply_error(r->d.rep, 409, "APPROVAL_REQUIRED",
			    "status",
			    "the tenant requires approval: the promotion is "
			    "%s and its content was not approved; submit it "
			    "and have someone other than its last editor "
			    "approve it",
			    dre_promo_status_name(was));
			return false;
		}
		p->status = DRE_PS_ACTIVE;
		return true;
	case ACT_SUBMIT:
		if (was != DRE_PS_DRAFT && was != DRE_PS_REJECTED
		    && was != DRE_PS_INACTIVE) {
			dre_rpc_reply_error(r->d.rep, 409, "CONFLICT",
			    "status",
			    "the promotion is %s: only a DRAFT, REJECTED or "
			    "INACTIVE promotion can be submitted",
			    dre_promo_status_name(was));
			return false;
		}
		p->status = DRE_PS_PENDING_APPROVAL;
		st->submitted_by = who;
		st->decided_by = st->reason = NULL;
		st->approved = false;
		return true;
	case ACT_APPROVE:
	case ACT_REJECT:
		if (was != DRE_PS_PENDING_APPROVAL) {
			dre_rpc_reply_error(r->d.rep, 409, "CONFLICT",
			    "status",
			    "the promotion is %s: only a PENDING_APPROVAL "
			    "promotion can be %s",
			    dre_promo_status_name(was),
			    act == ACT_APPROVE ? "approved" : "rejected");
			return false;
		}
		if (act == ACT_APPROVE && strcmp(st->last_editor, who) == 0) {
			dre_rpc_reply_error(r->d.rep, 403,
			    "FOUR_EYES_REQUIRED", NULL,
			    "%s made the last change to this promotion and "
			    "cannot approve it: someone else must",
			    who);
			return false;
		}
		p->status
		    = act == ACT_APPROVE ? DRE_PS_APPROVED : DRE_PS_REJECTED;
		st->decided_by = who;
		st->reason = reason;
		st->approved = act == ACT_APPROVE;
		return true;
	}
	return false;
}

static void
transition(req *r, promo_action act)
{
	const char    *id = id_param(r);
	const char    *reason = NULL;
	char          *key = NULL, *doc = NULL;
	size_t         len = 0;
	dre_buf        out = { 0 };
	dre_promo     *p = NULL;
	approval_state st;
	dre_err        err;
	if (id == NULL
	    || (act == ACT_REJECT && (reason = reject_reason(r)) == NULL))
		return;
	pthread_mutex_lock(&r->c->mu);
	const dre_json *sroot = resolve_stored(r, id, true, &key, &doc, &len);
	if (sroot == NULL)
		goto unlock;
	if (dre_promo_parse(&p, r->d.a, sroot, NULL, NULL) != DRE_OK) {
		dre_docapi_internal(&r->d, DRE_ESTORE);
		goto unlock;
	}
	if ((err = approval_get(r, key, &st)) != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	if (!transition_ok(r, act, p, &st, reason))
		goto unlock;
	r->action = action_names[act];
	if (act >= ACT_SUBMIT)
		approval_set(r, &st);
	if (reason != NULL) {
		dre_buf   det = { 0 };
		dre_jsonw w;
		dre_jsonw_init(&w, &det);
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "reason", reason);
		dre_jsonw_obj_end(&w);
		dre_buf_putc(&det, 0);
		r->details
		    = det.oom ? NULL : dre_arena_strdup(r->d.a, det.data);
		dre_buf_free(&det);
	}
	p->updated_at = dre_now_ms();
	dre_promo_write(&out, p);
	if (out.oom)
		err = DRE_ENOMEM;
	else
		err = put_locked(
		    r, r->k, key, out.data, out.len, NULL, 0, NULL, 0);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		dre_docapi_reply_doc(&r->d, 200, out.data, out.len);
unlock:
	pthread_mutex_unlock(&r->c->mu);
	free(key);
	free(doc);
	dre_buf_free(&out);
}

// ---- list ---------------------------------------------------------------

// The members a query can use per kind: scalar ones for $filter and
// $orderby, every one for $select.
static void
query_fields(const req *r, dre_odata_fields *f, const char **scalars,
    const char **members)
{
	static const char *const promo_scalars[]
	    = { "id", "name", "description", "type", "status", "validFrom",
		      "validTo", "timezone", "currency", "priority",
		      "exclusivity", "campaignId", "externalId", "assignment",
		      "createdAt", "modifiedAt" };
	static const char *const promo_members[]
	    = { "id", "name", "description", "type", "status", "validFrom",
		      "validTo", "timeWindows", "timezone", "posGroups",
		      "currency", "priority", "exclusivity", "exclusionGroups",
		      "calculationConfig", "budgetIds", "couponTypeIds",
		      "campaignId", "externalId", "assignment", "conditions",
		      "actions", "createdAt", "modifiedAt" };
	size_t ns = 0, nm = 0;
	if (r->spec == NULL) {
		for (size_t i = 0; i < sizeof promo_scalars / sizeof(char *);
		     i++)
			scalars[ns++] = promo_scalars[i];
		for (size_t i = 0; i < sizeof promo_members / sizeof(char *);
		     i++)
			members[nm++] = promo_members[i];
	} else {
		const char *common[] = { "id", "createdAt", "modifiedAt" };
		for (size_t i = 0; i < 3; i++)
			scalars[ns++] = members[nm++] = common[i];
		for (int i = 0; i < r->spec->nfields; i++) {
			members[nm++] = r->spec->fields[i].name;
			if (r->spec->fields[i].type != ENT_STRLIST)
				scalars[ns++] = r->spec->fields[i].name;
		}
	}
	f->scalars = scalars;
	f->nscalars = ns;
	f->members = members;
	f->nmembers = nm;
}

// do_list answers a page of the collection with the OData query options
// (common/include/dre/odata.h); promotions also take status=. Documents are
// only parsed when the query filters, sorts or selects.
static void
do_list(req *r)
{
	int64_t          count = 0, emitted = 0;
	dre_promo_status want = DRE_PS_DRAFT;
	const char      *status = NULL;
	dre_store_iter  *it = NULL;
	dre_buf          vals = { 0 };
	dre_arena       *docs = NULL;
	char             prefix[512];
	size_t           plen;
	dre_err          err;
	const char      *scalars[ENT_MAX_FIELDS + 24];
	const char      *members[ENT_MAX_FIELDS + 24];
	dre_odata_fields qf;
	dre_odata       *q = NULL;
	dre_odata_error  qerr;
	dre_odata_list   kept = { 0 };

	query_fields(r, &qf, scalars, members);
	err = dre_odata_parse(
	    &q, r->d.a, r->d.call, &qf, TOP_DEFAULT, TOP_MAX, &qerr);
	if (err == DRE_EINVAL) {
		dre_docapi_invalid(&r->d, qerr.target, "%s", qerr.message);
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	int64_t top = dre_odata_top(q), skip = dre_odata_skip(q);
	if (r->k == CAT_PROMOTION) {
		status = dre_rpc_param(r->d.call, "status");
		if (status != NULL && status[0] == 0)
			status = NULL;
		if (status != NULL
		    && dre_promo_status_parse(&want, status) != DRE_OK) {
			dre_docapi_invalid(&r->d, "status",
			    "status '%s' is not a promotion status", status);
			return;
		}
	}
	bool parse = status != NULL || !dre_odata_trivial(q);
	// tenant \0 KIND \0 (cat_key with an empty key): the trailing NUL
	// keeps a kind apart from a longer kind name with the same start.
	plen = cat_key(prefix, sizeof prefix, r->d.call->tenant, r->k, "");
	if (plen == 0) {
		dre_docapi_invalid(&r->d, NULL, "tenant too long");
		return;
	}
	if ((err = dre_store_iter_open(
	         &it, r->c->st, CF_ENTITIES, prefix, plen))
	    != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	if (parse && (docs = dre_arena_alloc(0)) == NULL) {
		dre_store_iter_close(it);
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (vl < 8)
			continue;
		const char *doc = v + 8;
		size_t      dl = vl - 8;
		if (!parse) { // a page of the documents as stored
			count++;
			if (count > skip && emitted < top) {
				if (emitted > 0)
					dre_buf_putc(&vals, ',');
				dre_buf_append(&vals, doc, dl);
				emitted++;
			}
			continue;
		}
		// Kept (text and tree) for sorting; the iterator's memory is
		// not stable, so the text is copied.
		char     *text = dre_arena_strndup(docs, doc, dl);
		dre_json *root = NULL;
		if (text == NULL
		    || dre_json_parse(
		           &root, docs, text, dl, DRE_JSON_MAX_DEPTH, NULL)
		        != DRE_OK)
			continue;
		if (status != NULL) {
			const dre_json *s = dre_json_get(root, "status");
			if (!dre_json_is(s, DRE_JSON_STRING)
			    || strcmp(s->str, status) != 0)
				continue;
		}
		if (!dre_odata_keep(q, &kept, root, text, dl))
			break;
	}
	dre_store_iter_close(it);
	if (parse)
		count = dre_odata_page(q, &kept, &vals);
	free(kept.v);
	dre_arena_free(docs);
	dre_docapi_reply_list(&r->d, count, &vals);
	dre_buf_free(&vals);
}

// ---- campaigns (issue 17.4) -----------------------------------------------
//
// A campaign groups promotions: {name, description, startDate, endDate,
// promotionIds[]}. CRUD goes through the generic entity handlers above
// (campaign_check adds what needs the store); addPromotions and
// removePromotion change the list as a PATCH would; exportICS answers the
// campaign as an iCalendar (calendar.c).

static void err_add(req *r, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
err_add(req *r, const char *target, const char *fmt, ...)
{
	if (r->errs.n < r->errs.cap) {
		dre_promo_error *e = &r->errs.v[r->errs.n];
		va_list          ap;
		e->code = "VALIDATION_FAILED";
		snprintf(e->target, sizeof e->target, "%s", target);
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof e->message, fmt, ap);
		va_end(ap);
	}
	r->errs.n++;
}

// in_list tells whether the JSON array list holds the string s.
static bool
in_list(const dre_json *list, const char *s)
{
	for (const dre_json *x
	     = dre_json_is(list, DRE_JSON_ARRAY) ? list->child : NULL;
	     x != NULL; x = x->next)
		if (dre_json_is(x, DRE_JSON_STRING) && strcmp(x->str, s) == 0)
			return true;
	return false;
}

// campaign_check completes the validation of campaign d (written over
// base, the stored one, or NULL): endDate not before startDate, no
// promotion id twice, every promotion id not already in base names a
// promotion of the tenant. False once it has answered 400 (every problem
// a detail, target promotionIds[i]) or 503.
static bool
campaign_check(req *r, const ent_doc *d, const dre_json *base)
{
	const char *sd = ent_str(d, ENT_CAMPAIGN_START);
	const char *ed = ent_str(d, ENT_CAMPAIGN_END);
	int64_t     s = 0, e = 0;
	r->errs.n = 0;
	if (sd && ed && ent_date_parse(&s, sd, strlen(sd)) == DRE_OK
	    && ent_date_parse(&e, ed, strlen(ed)) == DRE_OK && e < s)
		err_add(r, "endDate",
		    "endDate %s must not be before startDate %s", ed, sd);
	const dre_json *ids = d->v[ENT_CAMPAIGN_PROMOTIONS];
	const dre_json *had = base ? dre_json_get(base, "promotionIds") : NULL;
	size_t          i = 0;
	for (const dre_json *x = ids ? ids->child : NULL; x != NULL;
	     x = x->next, i++) {
		char target[48];
		snprintf(target, sizeof target, "promotionIds[%zu]", i);
		bool twice = false;
		for (const dre_json *y = ids->child; y != x; y = y->next)
			twice = twice || strcmp(y->str, x->str) == 0;
		if (twice) {
			err_add(r, target, "promotion '%s' is listed twice",
			    x->str);
			continue;
		}
		if (in_list(had, x->str))
			continue;
		char   *doc = NULL;
		dre_err err = cat_get(r->c, r->d.call->tenant, CAT_PROMOTION,
		    x->str, &doc, NULL, NULL);
		free(doc);
		if (err == DRE_ENOTFOUND)
			err_add(r, target, "promotion '%s' does not exist",
			    x->str);
		else if (err != DRE_OK) {
			dre_docapi_internal(&r->d, err);
			return false;
		}
	}
	if (r->errs.n == 0)
		return true;
	dre_docapi_errors(&r->d, &r->errs, "invalid campaign");
	return false;
}

// campaign_ids reads the body of addPromotions ({promotionIds: [..]}) or
// removePromotion ({promotionId}); NULL once it has answered 400.
static const dre_json *
campaign_ids(req *r, bool add)
{
	const char *const known[] = { add ? "promotionIds" : "promotionId" };
	const dre_json   *in = dre_docapi_body(&r->d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(&r->d, in, known, 1))
		return NULL;
	const dre_json *v = dre_json_get(in, known[0]);
	if (!add) {
		if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0) {
			dre_docapi_invalid(&r->d, "promotionId",
			    "promotionId must be the id of a promotion of the "
			    "campaign");
			return NULL;
		}
		return v;
	}
	bool ok = dre_json_is(v, DRE_JSON_ARRAY) && v->child != NULL;
	for (const dre_json *x = ok ? v->child : NULL; x; x = x->next)
		ok = ok && dre_json_is(x, DRE_JSON_STRING) && x->len > 0;
	if (!ok) {
		dre_docapi_invalid(&r->d, "promotionIds",
		    "promotionIds must be a non-empty array of promotion ids");
		return NULL;
	}
	return v;
}

// campaign_change adds ids (an array) to the campaign's promotions, those
// it has already kept where they are, or removes the one id (a string):
// the new list is applied as a PATCH {promotionIds} of the stored campaign.
static void
campaign_change(req *r, bool add)
{
	const char     *id = id_param(r);
	const dre_json *ids = id ? campaign_ids(r, add) : NULL;
	char           *key = NULL, *stored = NULL;
	size_t          slen = 0;
	dre_buf         patch = { 0 }, doc = { 0 };
	dre_jsonw       w;
	dre_err         err;
	if (ids == NULL)
		return;
	pthread_mutex_lock(&r->c->mu);
	const dre_json *sroot
	    = resolve_stored(r, id, true, &key, &stored, &slen);
	if (sroot == NULL)
		goto unlock;
	const dre_json *had = dre_json_get(sroot, "promotionIds");
	if (!add && !in_list(had, ids->str)) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", "promotionId",
		    "promotion '%s' is not in campaign '%s'", ids->str, key);
		goto unlock;
	}
	dre_jsonw_init(&w, &patch);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "promotionIds");
	dre_jsonw_arr_begin(&w);
	for (const dre_json *x
	     = dre_json_is(had, DRE_JSON_ARRAY) ? had->child : NULL;
	     x != NULL; x = x->next)
		if (add || strcmp(x->str, ids->str) != 0)
			dre_jsonw_strn(&w, x->str, x->len);
	for (const dre_json *x = add ? ids->child : NULL; x; x = x->next) {
		bool seen = in_list(had, x->str);
		for (const dre_json *y = ids->child; y != x && !seen;
		     y = y->next)
			seen = strcmp(y->str, x->str) == 0;
		if (!seen)
			dre_jsonw_strn(&w, x->str, x->len);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
	dre_json *proot = NULL;
	ent_doc   d;
	if (patch.oom
	    || dre_json_parse(&proot, r->d.a, patch.data, patch.len,
	           DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		goto unlock;
	}
	if (ent_validate(&d, &ent_campaign, proot, sroot, true, "", &r->errs)
	    != DRE_OK) {
		// The request's ids: each is a non-empty string, so only a
		// too long one can fail here.
		dre_docapi_errors(&r->d, &r->errs, "invalid campaign");
		goto unlock;
	}
	if (!campaign_check(r, &d, sroot))
		goto unlock;
	const dre_json *sid = dre_json_get(sroot, "id");
	ent_write(&doc, &d, dre_json_is(sid, DRE_JSON_STRING) ? sid->str : key,
	    ent_time(sroot, "createdAt"), dre_now_ms());
	r->action = add ? "addPromotions" : "removePromotion";
	err = doc.oom ? DRE_ENOMEM
	              : put_locked(r, CAT_CAMPAIGN, key, doc.data, doc.len,
	                  NULL, 0, NULL, 0);
	if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		dre_docapi_reply_doc(&r->d, 200, doc.data, doc.len);
unlock:
	pthread_mutex_unlock(&r->c->mu);
	free(key);
	free(stored);
	dre_buf_free(&patch);
	dre_buf_free(&doc);
}

static int64_t
time_or(const dre_json *doc, const char *k, int64_t open)
{
	int64_t ms = ent_time(doc, k);
	return ms != 0 ? ms : open;
}

static const char *
str_of(const dre_json *doc, const char *k)
{
	const dre_json *v = dre_json_get(doc, k);
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

// campaign_ics answers GET .../exportICS: text/calendar, one event per
// promotion of the campaign that still exists.
static void
campaign_ics(req *r)
{
	const char    *id = id_param(r);
	char          *key = NULL, *stored = NULL;
	size_t         slen = 0, n = 0;
	cal_promotion *ps = NULL;
	dre_err        err;
	if (id == NULL)
		return;
	const dre_json *root
	    = resolve_stored(r, id, false, &key, &stored, &slen);
	if (root == NULL)
		goto out;
	const dre_json *ids = root ? dre_json_get(root, "promotionIds") : NULL;
	const char     *sd = root ? str_of(root, "startDate") : NULL;
	const char     *ed = root ? str_of(root, "endDate") : NULL;
	cal_campaign    c = { .id = str_of(root, "id"),
		   .name = str_of(root, "name"),
		   .start_day = INT64_MIN,
		   .end_day = INT64_MAX,
		   .modified_at = ent_time(root, "modifiedAt") };
	if (c.id == NULL || c.name == NULL) {
		dre_docapi_internal(&r->d, DRE_ESTORE);
		goto out;
	}
	if (sd != NULL)
		(void) ent_date_parse(&c.start_day, sd, strlen(sd));
	if (ed != NULL)
		(void) ent_date_parse(&c.end_day, ed, strlen(ed));
	size_t cap = dre_json_is(ids, DRE_JSON_ARRAY) ? ids->len : 0;
	if (cap > 0
	    && (ps = dre_arena_get(r->d.a, cap * sizeof *ps)) == NULL) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		goto out;
	}
	for (const dre_json *x = cap ? ids->child : NULL; x; x = x->next) {
		char           *pdoc = NULL;
		size_t          plen = 0;
		const dre_json *p = NULL;
		err = cat_get(r->c, r->d.call->tenant, CAT_PROMOTION, x->str,
		    &pdoc, &plen, NULL);
		if (err == DRE_ENOTFOUND)
			continue; // deleted since it was added
		if (err == DRE_OK) {
			char *text = dre_arena_strndup(r->d.a, pdoc, plen);
			p = text ? parse_stored(r, text, plen) : NULL;
		}
		free(pdoc);
		if (p == NULL || str_of(p, "name") == NULL) {
			dre_docapi_internal(
			    &r->d, err != DRE_OK ? err : DRE_ESTORE);
			goto out;
		}
		ps[n++] = (cal_promotion) { .id = x->str,
			.name = str_of(p, "name"),
			.description = str_of(p, "description"),
			.valid_from = time_or(p, "validFrom", INT64_MIN),
			.valid_to = time_or(p, "validTo", INT64_MAX),
			.modified_at = ent_time(p, "modifiedAt") };
	}
	dre_buf_reset(&r->d.rep->body);
	if ((err = cal_write(&r->d.rep->body, &c, ps, n)) != DRE_OK) {
		dre_buf_reset(&r->d.rep->body);
		dre_docapi_internal(&r->d, err);
		goto out;
	}
	r->d.rep->status = 200;
	r->d.rep->content_type = "text/calendar; charset=utf-8";
out:
	free(key);
	free(stored);
}

// ---- article import (seed 002: POST /pos/articles/import) ---------------

typedef struct {
	int64_t   imported, updated, failed;
	dre_buf   results, errors;
	dre_jsonw rw, ew;
} import_out;

static void
import_fail(import_out *o, size_t i, const char *artnum, const char *target,
    const char *msg)
{
	o->failed++;
	dre_jsonw_obj_begin(&o->rw);
	dre_jsonw_kstr(&o->rw, "articleNumber", artnum);
	dre_jsonw_kstr(&o->rw, "status", "failed");
	dre_jsonw_kstr(&o->rw, "id", NULL);
	dre_jsonw_kstr(&o->rw, "error", msg);
	dre_jsonw_obj_end(&o->rw);
	dre_jsonw_obj_begin(&o->ew);
	dre_jsonw_kint(&o->ew, "index", (int64_t) i);
	dre_jsonw_kstr(&o->ew, "articleNumber", artnum);
	dre_jsonw_kstr(&o->ew, "code", "VALIDATION_FAILED");
	dre_jsonw_kstr(&o->ew, "target", target);
	dre_jsonw_kstr(&o->ew, "message", msg);
	dre_jsonw_obj_end(&o->ew);
}

// import_one upserts one article by articleNumber.
static void
import_one(req *r, import_out *o, size_t i, const dre_json *x)
{
	char            prefix[48], id[DRE_UUID_LEN + 1];
	ent_doc         d;
	bool            bad = false;
	dre_buf         doc = { 0 };
	char           *stored = NULL;
	size_t          slen = 0;
	dre_err         err;
	const dre_json *an = dre_json_is(x, DRE_JSON_OBJECT)
	    ? dre_json_get(x, "articleNumber")
	    : NULL;
	const char *artnum = dre_json_is(an, DRE_JSON_STRING) ? an->str : NULL;

	snprintf(prefix, sizeof prefix, "articles[%zu]", i);
	r->errs.n = 0;
	const char *bid = dre_json_is(x, DRE_JSON_OBJECT)
	    ? ent_check_id(x, prefix, &r->errs, &bad)
	    : NULL;
	// An article without a usable number is refused as it stands; one
	// with a number is validated after the stored one is read: an update
	// changes the fields it names (null clears) and keeps the others.
	if (artnum == NULL || bad) {
		// articleNumber is required: this records why (after the id's
		// problem, when there is one).
		(void) ent_validate(
		    &d, &ent_article, x, NULL, false, prefix, &r->errs);
		import_fail(
		    o, i, artnum, r->errs.v[0].target, r->errs.v[0].message);
		return;
	}
	int64_t   now = dre_now_ms(), created = now;
	cat_index add[1];
	size_t    nadd = 0;

	pthread_mutex_lock(&r->c->mu);
	err = cat_get(r->c, r->d.call->tenant, CAT_ARTICLE, artnum, &stored,
	    &slen, NULL);
	bool exists = err == DRE_OK;
	if (err != DRE_OK && err != DRE_ENOTFOUND && err != DRE_EINVAL) {
		import_fail(o, i, artnum, prefix, dre_strerror(err));
		goto unlock;
	}
	const dre_json *sroot = exists ? parse_stored(r, stored, slen) : NULL;
	if (ent_validate(&d, &ent_article, x, sroot, exists, prefix, &r->errs)
	    != DRE_OK) {
		import_fail(
		    o, i, artnum, r->errs.v[0].target, r->errs.v[0].message);
		goto unlock;
	}
	const char *key = ent_str(&d, ent_article.key);
	if (exists) {
		const dre_json *sid = sroot ? dre_json_get(sroot, "id") : NULL;
		if (!dre_json_is(sid, DRE_JSON_STRING)) {
			import_fail(o, i, artnum, prefix,
			    "stored article is "
			    "unreadable");
			goto unlock;
		}
		if (bid != NULL && strcmp(bid, sid->str) != 0) {
			char t[64];
			snprintf(t, sizeof t, "%s.id", prefix);
			import_fail(o, i, artnum, t, "id cannot be changed");
			goto unlock;
		}
		snprintf(id, sizeof id, "%s", sid->str);
		created = ent_time(sroot, "createdAt");
	} else {
		if (bid != NULL) {
			char *other = NULL;
			err = cat_index_get(r->c, r->d.call->tenant,
			    CAT_ARTICLE, "id", bid, &other);
			free(other);
			if (err == DRE_OK) {
				char t[64];
				snprintf(t, sizeof t, "%s.id", prefix);
				import_fail(o, i, artnum, t,
				    "id already belongs to another article");
				goto unlock;
			}
			snprintf(id, sizeof id, "%s", bid);
		} else {
			dre_uuid_v4(id);
		}
		add[0].field = "id";
		add[0].value = id;
		nadd = 1;
	}
	ent_write(&doc, &d, id, created, now);
	err = doc.oom ? DRE_ENOMEM
	              : put_locked(r, CAT_ARTICLE, key, doc.data, doc.len, add,
	                  nadd, NULL, 0);
	if (err != DRE_OK) {
		import_fail(o, i, artnum, prefix, dre_strerror(err));
		goto unlock;
	}
	if (exists)
		o->updated++;
	else
		o->imported++;
	dre_jsonw_obj_begin(&o->rw);
	dre_jsonw_kstr(&o->rw, "articleNumber", key);
	dre_jsonw_kstr(&o->rw, "status", exists ? "updated" : "created");
	dre_jsonw_kstr(&o->rw, "id", id);
	dre_jsonw_kstr(&o->rw, "error", NULL);
	dre_jsonw_obj_end(&o->rw);
unlock:
	pthread_mutex_unlock(&r->c->mu);
	free(stored);
	dre_buf_free(&doc);
}

static void
do_import(req *r)
{
	const dre_json *in = dre_docapi_body(&r->d, NULL);
	import_out      o = { 0 };
	if (in == NULL)
		return;
	const dre_json *arts = dre_json_is(in, DRE_JSON_OBJECT)
	    ? dre_json_get(in, "articles")
	    : NULL;
	if (!dre_json_is(arts, DRE_JSON_ARRAY)) {
		dre_docapi_invalid(&r->d, "articles",
		    "articles must be an array of articles");
		return;
	}
	dre_jsonw_init(&o.rw, &o.results);
	dre_jsonw_init(&o.ew, &o.errors);
	dre_jsonw_arr_begin(&o.rw);
	dre_jsonw_arr_begin(&o.ew);
	size_t i = 0;
	for (const dre_json *x = arts->child; x != NULL; x = x->next, i++)
		import_one(r, &o, i, x);
	dre_jsonw_arr_end(&o.rw);
	dre_jsonw_arr_end(&o.ew);

	dre_buf *b = &r->d.rep->body;
	dre_buf_reset(b);
	dre_buf_printf(b,
	    "{\"minorVersion\":%d,\"imported\":%lld,\"updated\":%lld,"
	    "\"failed\":%lld,\"results\":",
	    MINOR_VERSION, (long long) o.imported, (long long) o.updated,
	    (long long) o.failed);
	dre_buf_append(b, o.results.data, o.results.len);
	dre_buf_puts(b, ",\"errors\":");
	dre_buf_append(b, o.errors.data, o.errors.len);
	dre_buf_putc(b, '}');
	bool oom = o.results.oom || o.errors.oom || b->oom;
	dre_buf_free(&o.results);
	dre_buf_free(&o.errors);
	if (oom) {
		dre_buf_reset(b);
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	r->d.rep->status = 200;
	dre_rpc_reply_json(r->d.rep);
}

// ---- S/4HANA DRFOUT (issue 17.3) -----------------------------------------
//
// POST /api/v1/master-data/ProductMerchandiseViewReplicationBulkRequest
// (JSON) and /api/v1/master-data/soap (SOAP 1.1 or 1.2): the message is
// read (masterdata.c), its products become article rows (md_articles) and
// an Articles import job (dre/importjob.h, UPSERT) runs them in the
// background; the message as it came ('r') and its record with the job's
// id ('m') are stored in one synced batch. The tenant's next message with
// the same MessageHeader/ID is answered from that record -- the same
// answer, byte for byte, on the same transport -- and starts no second
// job. Messages are handled one at a time (md_mu), so a repeat always finds
// the first one's record. A crash between the job and the batch leaves a
// job without a record: S/4's retry makes a second job of the same rows,
// which upserts the same articles.

static pthread_mutex_t md_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t
md_key(req *r, char *out, size_t cap, char tag, const char *id)
{
	return dre_key(out, cap, tag, 2, r->d.call->tenant, id);
}

// md_load reads the stored value tag of message id (caller frees with
// free()); DRE_ENOTFOUND when there is none.
static dre_err
md_load(req *r, char tag, const char *id, char **vp, size_t *lenp)
{
	char   k[512];
	size_t kl = md_key(r, k, sizeof k, tag, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	return dre_store_get(r->c->st, CF_META, k, kl, vp, lenp);
}

static const char *
md_format(int soap)
{
	return soap == 11 ? "SOAP 1.1" : soap == 12 ? "SOAP 1.2" : "JSON";
}

// md_media_type is the content type of an answer (or a message) in the
// transport of soap (0: JSON).
static const char *
md_media_type(int soap)
{
	return soap ? md_soap_content_type(soap) : "application/json";
}

// md_record writes the message's record: what came, when, and its job.
static void
md_record(
    dre_buf *b, const md_message *m, const char *job_id, int64_t received)
{
	dre_jsonw w;
	dre_jsonw_init(&w, b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "messageId", m->id);
	dre_jsonw_kstr(&w, "format", md_format(m->soap));
	dre_jsonw_kstr(&w, "senderBusinessSystemId", m->sender);
	dre_jsonw_kstr(&w, "creationDateTime", m->created);
	dre_jsonw_key(&w, "receivedAt");
	dre_jsonw_time(&w, received);
	dre_jsonw_kint(&w, "products", (int64_t) m->n);
	dre_jsonw_kstr(&w, "jobId", job_id);
	dre_jsonw_obj_end(&w);
}

// md_reply answers 202: JSON {messageId, status, jobId, products} or the
// SOAP acknowledgement (the transport of m->soap). A function of its
// arguments only, so that a repeat gets the same bytes.
static void
md_reply(req *r, const md_message *m, const char *job_id, int64_t received)
{
	dre_buf  *b = &r->d.rep->body;
	dre_err   err = DRE_OK;
	dre_jsonw w;
	dre_buf_reset(b);
	if (m->soap != 0) {
		err = md_soap_ack(b, m, job_id, "ACCEPTED", received);
	} else {
		dre_jsonw_init(&w, b);
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kint(&w, "minorVersion", MINOR_VERSION);
		dre_jsonw_kstr(&w, "messageId", m->id);
		dre_jsonw_kstr(&w, "status", "ACCEPTED");
		dre_jsonw_kstr(&w, "jobId", job_id);
		dre_jsonw_kint(&w, "products", (int64_t) m->n);
		dre_jsonw_obj_end(&w);
	}
	if (err == DRE_OK && b->oom)
		err = DRE_ENOMEM;
	if (err != DRE_OK) {
		dre_buf_reset(b);
		dre_docapi_internal(&r->d, err);
		return;
	}
	r->d.rep->status = 202;
	r->d.rep->content_type = md_media_type(m->soap);
}

// md_replay answers a message whose ID the tenant sent before from its
// record; false (nothing answered) when it never did.
static bool
md_replay(req *r, const md_message *m)
{
	char   *v = NULL;
	size_t  len = 0;
	dre_err err = md_load(r, CAT_META_MD_MESSAGE, m->id, &v, &len);
	if (err == DRE_ENOTFOUND)
		return false;
	const dre_json *rec = err == DRE_OK ? parse_stored(r, v, len) : NULL;
	const dre_json *job = rec ? dre_json_get(rec, "jobId") : NULL;
	const dre_json *n = rec ? dre_json_get(rec, "products") : NULL;
	if (!dre_json_is(job, DRE_JSON_STRING)
	    || !dre_json_is(n, DRE_JSON_NUMBER)) {
		free(v);
		dre_docapi_internal(&r->d, err != DRE_OK ? err : DRE_ESTORE);
		return true;
	}
	md_message first = *m; // the first message's count, this transport
	first.n = (size_t) strtoull(n->str, NULL, 10);
	md_reply(r, &first, job->str, ent_time(rec, "receivedAt"));
	free(v);
	dre_info("master data: %s repeated for tenant %s: the first answer",
	    m->id, r->d.call->tenant);
	return true;
}

// md_store keeps the message as it came and its record.
static dre_err
md_store(req *r, const md_message *m, const dre_buf *record)
{
	char       k[512];
	size_t     kl, kl2;
	dre_batch *b = dre_batch_alloc();
	dre_err    err = DRE_OK;
	if (b == NULL)
		return DRE_ENOMEM;
	if ((kl = md_key(r, k, sizeof k, CAT_META_MD_RAW, m->id)) > 0)
		dre_batch_put(b, r->c->st, CF_META, k, kl, r->d.call->body,
		    r->d.call->body_len);
	if ((kl2 = md_key(r, k, sizeof k, CAT_META_MD_MESSAGE, m->id)) > 0)
		dre_batch_put(
		    b, r->c->st, CF_META, k, kl2, record->data, record->len);
	if (kl == 0 || kl2 == 0)
		err = DRE_ETOOBIG;
	else if (record->oom)
		err = DRE_ENOMEM;
	else
		err = dre_store_write(r->c->st, b, true);
	dre_batch_free(b);
	return err;
}

// md_replicate handles one parsed message (m) under md_mu: its rows
// (md_articles) become an Articles import job.
static void
md_replicate(req *r, const md_message *m)
{
	dre_buf rows = { 0 }, record = { 0 };
	char    job[DRE_IJOB_ID_MAX] = "";
	char    name[32 + 4 * MD_ID_MAX]; // an id's characters: 1 to 4 bytes
	int64_t received = dre_now_ms();
	dre_err err;
	pthread_mutex_lock(&md_mu);
	if (md_replay(r, m))
		goto out;
	md_articles(&rows, m);
	snprintf(name, sizeof name, "S/4HANA DRFOUT %s", m->id);
	dre_ijob_spec spec = { .tenant = r->d.call->tenant,
		.principal = r->d.call->principal,
		.entity = "Articles",
		.format = DRE_IJOB_JSON,
		.mode = DRE_IJOB_UPSERT,
		.name = name,
		.source = "s4" };
	err = rows.oom ? DRE_ENOMEM
	    : r->c->jobs == NULL
	    ? DRE_EUNAVAIL
	    : dre_ijob_submit(r->c->jobs, &spec, rows.data, rows.len, job);
	if (err == DRE_ETOOBIG) {
		dre_rpc_reply_error(r->d.rep, 413, "PAYLOAD_TOO_LARGE", NULL,
		    "the message's articles do not fit: imports.max_upload "
		    "or the disk's free space");
		goto out;
	}
	if (err != DRE_OK)
		goto fail;
	md_record(&record, m, job, received);
	if ((err = md_store(r, m, &record)) != DRE_OK)
		goto fail;
	dre_info("master data: %s (%s, %zu products) from %s: import job %s",
	    m->id, md_format(m->soap), m->n, m->sender ? m->sender : "?", job);
	md_reply(r, m, job, received);
	goto out;
fail:
	dre_docapi_internal(&r->d, err);
out:
	pthread_mutex_unlock(&md_mu);
	dre_buf_free(&rows);
	dre_buf_free(&record);
}

static void
md_refuse(req *r, const md_error *e)
{
	dre_rpc_reply_error(r->d.rep, e->status, e->code,
	    e->target[0] ? e->target : NULL, "%s", e->message);
}

static void
do_md_json(req *r)
{
	const dre_json *in = dre_docapi_body(&r->d, NULL);
	md_message      m;
	md_error        e;
	dre_err         err;
	if (in == NULL)
		return;
	if ((err = md_parse_json(&m, r->d.a, in, &e)) == DRE_EINVAL)
		md_refuse(r, &e);
	else if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		md_replicate(r, &m);
}

static void
do_md_soap(req *r)
{
	md_limits lim
	    = { (size_t) r->c->md_max_bytes, (int) r->c->md_max_depth };
	md_message m;
	md_error   e;
	dre_err err = md_parse_soap(&m, r->d.a, (const char *) r->d.call->body,
	    r->d.call->body_len, &lim, &e);
	if (err == DRE_EINVAL)
		md_refuse(r, &e);
	else if (err != DRE_OK)
		dre_docapi_internal(&r->d, err);
	else
		md_replicate(r, &m);
}

// md_reply_record answers the record with "job": its import job as
// GET /api/v1/ImportJobs/{id} reads now (null when gone).
static void
md_reply_record(req *r, const char *rec, size_t len)
{
	const dre_json *root = parse_stored(r, rec, len);
	const dre_json *jid = root ? dre_json_get(root, "jobId") : NULL;
	dre_buf         doc = { 0 }, job = { 0 };
	if (root == NULL || len < 2) {
		dre_docapi_internal(&r->d, DRE_ESTORE);
		return;
	}
	if (dre_json_is(jid, DRE_JSON_STRING) && r->c->jobs != NULL
	    && dre_ijob_job_json(r->c->jobs, r->d.call->tenant, jid->str, &job)
	        != DRE_OK)
		dre_buf_reset(&job);
	dre_buf_append(&doc, rec, len - 1); // without the closing brace
	dre_buf_puts(&doc, ",\"job\":");
	if (job.len > 0)
		dre_buf_append(&doc, job.data, job.len);
	else
		dre_buf_puts(&doc, "null");
	dre_buf_putc(&doc, '}');
	if (doc.oom || job.oom)
		dre_docapi_internal(&r->d, DRE_ENOMEM);
	else
		dre_docapi_reply_doc(&r->d, 200, doc.data, doc.len);
	dre_buf_free(&doc);
	dre_buf_free(&job);
}

// do_md_get answers GET /api/v1/master-data/messages/{id} (the record) or
// .../raw (the message as it came, with its media type).
static void
do_md_get(req *r, bool raw)
{
	const char *id = id_param(r);
	char       *v = NULL, *rec = NULL;
	size_t      len = 0, rlen = 0;
	dre_err     err;
	if (id == NULL)
		return;
	err = md_load(r, CAT_META_MD_MESSAGE, id, &rec, &rlen);
	if (err == DRE_OK && raw)
		err = md_load(r, CAT_META_MD_RAW, id, &v, &len);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "master-data message '%s' not found", id);
	} else if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
	} else if (!raw) {
		md_reply_record(r, rec, rlen);
	} else {
		const dre_json *root = parse_stored(r, rec, rlen);
		const dre_json *f = root ? dre_json_get(root, "format") : NULL;
		int             soap = 0;
		if (dre_json_is(f, DRE_JSON_STRING))
			soap = strcmp(f->str, "SOAP 1.1") == 0 ? 11
			    : strcmp(f->str, "SOAP 1.2") == 0  ? 12
			                                       : 0;
		dre_buf_reset(&r->d.rep->body);
		dre_buf_append(&r->d.rep->body, v, len);
		r->d.rep->status = 200;
		r->d.rep->content_type = md_media_type(soap);
	}
	free(v);
	free(rec);
}

// ---- snapshot -----------------------------------------------------------

static const char *const master_topics[] = { DRE_TOPIC_PROMOTIONS,
	DRE_TOPIC_POS_GROUPS, DRE_TOPIC_ARTICLE_GROUPS, DRE_TOPIC_ARTICLES };

// snapshot_offsets asks Kafka for the high watermark of every partition of
// the dre.master.* topics. Taken BEFORE the entities are read, so that
// every change after them is at or past these offsets (a replay is
// harmless: versions). Leaves *n 0 when Kafka is unreachable.
static void
snapshot_offsets(cat *c, dre_arena *a, Dre__TopicOffset ***outp, size_t *n)
{
	enum { PARTS_MAX = 1024 };
	*n = 0;
	if (dre_kvlist_get(c->kafka, "bootstrap.servers") == NULL)
		return;
	int64_t           *high = dre_arena_get(a, PARTS_MAX * sizeof *high);
	Dre__TopicOffset **v = dre_arena_get(a, 4 * PARTS_MAX * sizeof *v);
	size_t             k = 0;
	if (high == NULL || v == NULL)
		return;
	for (size_t t = 0; t < 4; t++) {
		size_t  np = 0;
		dre_err err = dre_bus_topic_ends(c->kafka, master_topics[t],
		    high, PARTS_MAX, &np, c->kafka_timeout_ms);
		if (err != DRE_OK) {
			dre_warn("snapshot without offsets: %s: %s",
			    master_topics[t], dre_strerror(err));
			return;
		}
		for (size_t p = 0; p < np; p++) {
			Dre__TopicOffset *o = dre_arena_get(a, sizeof *o);
			if (o == NULL)
				return;
			dre__topic_offset__init(o);
			o->topic = (char *) master_topics[t];
			o->partition = (int32_t) p;
			o->offset = high[p];
			v[k++] = o;
		}
	}
	*outp = v;
	*n = k;
}

// A paged snapshot's state between pages: the iterator (a consistent
// RocksDB snapshot, so every page reads the state of the first) and what
// the first page carried. A few at a time; one idle for SNAP_IDLE_MS is
// closed by the next request (a follower that gave up starts again).
#define SNAP_SESSIONS 4
#define SNAP_IDLE_MS  60000

typedef struct {
	uint64_t           id; // 0 = free
	uint32_t           next; // the page number the cursor must name
	bool               busy; // a page is being read (outside snap_mu)
	int64_t            used_ms;
	dre_store         *st;
	dre_store_iter    *it;
	dre_arena         *a; // tenant, offsets, cluster id
	const char        *tenant;
	int64_t            version;
	Dre__TopicOffset **offsets;
	size_t             n_offsets;
	char              *cluster_id;
} snap_session;

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static snap_session    snap_sessions[SNAP_SESSIONS];

static void
snap_session_close(snap_session *ss)
{
	dre_store_iter_close(ss->it);
	dre_arena_free(ss->a);
	*ss = (snap_session) { 0 };
}

void
cat_snapshots_close(cat *c)
{
	pthread_mutex_lock(&snap_mu);
	for (int i = 0; i < SNAP_SESSIONS; i++)
		if (snap_sessions[i].id != 0 && snap_sessions[i].st == c->st)
			snap_session_close(&snap_sessions[i]);
	pthread_mutex_unlock(&snap_mu);
}

// snap_fill packs the entities of it into body, a dre.SnapshotResponse's
// repeated field `entities` written element by element (the wire format
// allows a repeated field's elements one by one, anywhere in the message):
// each document goes once from RocksDB's value into the answer, no copy in
// between, until page_bytes of documents (0 = no limit, at least one
// entity); *more: it stopped early. *version: the highest entity version.
static dre_err
snap_fill(dre_store_iter *it, dre_buf *body, int64_t *version, size_t *n,
    size_t page_bytes, bool *more)
{
	const char *k, *v;
	size_t      kl, vl, bytes = 0;
	char        idbuf[512];
	*more = false;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		const char *s1 = memchr(k, 0, kl);
		const char *s2 = s1
		    ? memchr(s1 + 1, 0, kl - (size_t) (s1 + 1 - k))
		    : NULL;
		int         kind
		    = s2 ? cat_kind_parse(s1 + 1, (size_t) (s2 - s1 - 1)) : -1;
		// Campaigns are no evaluator's business (issue 17.4).
		if (kind < 0 || kind == CAT_CAMPAIGN || vl < 8)
			continue;
		// The key's tenant ends with its NUL; its id does not.
		size_t idl = kl - (size_t) (s2 + 1 - k);
		char  *id = idl < sizeof idbuf ? idbuf : malloc(idl + 1);
		if (id == NULL)
			return DRE_ENOMEM;
		memcpy(id, s2 + 1, idl);
		id[idl] = '\0';
		Dre__MasterEntity e = DRE__MASTER_ENTITY__INIT;
		e.kind = (char *) cat_kind_name((cat_kind) kind);
		e.tenant = (char *) k;
		e.id = id;
		uint64_t ver = 0;
		for (int i = 0; i < 8; i++)
			ver = (ver << 8) | (unsigned char) v[i];
		e.version = (int64_t) ver;
		if (e.version > *version)
			*version = e.version;
		e.document.data = (uint8_t *) v + 8;
		e.document.len = vl - 8;
		// Field 1, length-delimited (tag 0x0a), the length a varint.
		size_t  len = dre__master_entity__get_packed_size(&e);
		uint8_t hdr[11];
		size_t  hl = 0;
		hdr[hl++] = 0x0a;
		size_t x = len;
		for (; x >= 0x80; x >>= 7)
			hdr[hl++] = (uint8_t) (x | 0x80);
		hdr[hl++] = (uint8_t) x;
		dre_buf_reserve(body, hl + len);
		if (!body->oom) {
			memcpy(body->data + body->len, hdr, hl);
			dre__master_entity__pack(
			    &e, (uint8_t *) body->data + body->len + hl);
			body->len += hl + len;
			body->data[body->len] = '\0';
		}
		if (id != idbuf)
			free(id);
		if (body->oom)
			return DRE_ENOMEM;
		(*n)++;
		bytes += kl + vl;
		if (page_bytes > 0 && bytes >= page_bytes) {
			*more = true;
			break;
		}
	}
	return DRE_OK;
}

// snap_session_get finds the session of cursor "<id hex>.<page>" and marks
// it busy; NULL when none (expired, used, or not a cursor).
static snap_session *
snap_session_get(const char *cursor)
{
	unsigned long long id;
	unsigned           page;
	char               end;
	if (sscanf(cursor, "%llx.%u%c", &id, &page, &end) != 2 || id == 0)
		return NULL;
	snap_session *ss = NULL;
	pthread_mutex_lock(&snap_mu);
	for (int i = 0; i < SNAP_SESSIONS; i++)
		if (snap_sessions[i].id == id && !snap_sessions[i].busy
		    && snap_sessions[i].next == page) {
			ss = &snap_sessions[i];
			ss->busy = true;
		}
	pthread_mutex_unlock(&snap_mu);
	return ss;
}

// snap_session_new takes a free slot (closing idle ones) for st; NULL
// when all are in use.
static snap_session *
snap_session_new(dre_store *st)
{
	int64_t       now = dre_mono_ms();
	snap_session *ss = NULL;
	pthread_mutex_lock(&snap_mu);
	for (int i = 0; i < SNAP_SESSIONS; i++) {
		snap_session *x = &snap_sessions[i];
		if (x->id != 0 && !x->busy && now - x->used_ms > SNAP_IDLE_MS)
			snap_session_close(x);
		if (x->id == 0 && ss == NULL)
			ss = x;
	}
	if (ss != NULL) {
		// Random: a cursor of an earlier catalog process names no
		// session of this one.
		uint64_t id = 0;
		while (id == 0)
			if (getrandom(&id, sizeof id, 0) != sizeof id)
				id = (uint64_t) now
				    ^ ((uint64_t) rand() << 20);
		*ss = (snap_session) {
			.id = id, .busy = true, .used_ms = now, .st = st
		};
	}
	pthread_mutex_unlock(&snap_mu);
	return ss;
}

static void
snap_session_release(snap_session *ss, bool done)
{
	pthread_mutex_lock(&snap_mu);
	if (done)
		snap_session_close(ss);
	else {
		ss->busy = false;
		ss->next++;
		ss->used_ms = dre_mono_ms();
	}
	pthread_mutex_unlock(&snap_mu);
}

static void
h_snapshot(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat                  *c = svc;
	Dre__SnapshotRequest *in;
	Dre__SnapshotResponse out = DRE__SNAPSHOT_RESPONSE__INIT;
	dre_arena            *a = dre_arena_alloc(0);
	dre_store_iter       *it = NULL;
	snap_session         *ss = NULL;
	char                  cluster[256], next[64];
	size_t                page_bytes = 0;
	bool                  more = false;
	dre_err               err;

	if (a == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	in = dre__snapshot_request__unpack(NULL, call->body_len, call->body);
	if (in == NULL) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", NULL,
		    "body is not a dre.SnapshotRequest");
		dre_arena_free(a);
		return;
	}
	const char *tenant = in->tenant && in->tenant[0]
	    ? dre_arena_strdup(a, in->tenant)
	    : NULL;
	const char *cursor = in->cursor && in->cursor[0]
	    ? dre_arena_strdup(a, in->cursor)
	    : NULL;
	if (in->has_page_bytes)
		page_bytes = in->page_bytes;
	dre__snapshot_request__free_unpacked(in, NULL);

	if (cursor != NULL) {
		// A next page: the first page's state, read on.
		ss = snap_session_get(cursor);
		if (ss == NULL) {
			dre_rpc_reply_error(rep, 410, "GONE", NULL,
			    "snapshot cursor %s is unknown, used or expired: "
			    "start again",
			    cursor);
			dre_arena_free(a);
			return;
		}
		it = ss->it;
		tenant = ss->tenant;
		out.version = ss->version;
		out.offsets = ss->offsets;
		out.n_offsets = ss->n_offsets;
		out.cluster_id = ss->cluster_id;
		if (page_bytes == 0)
			page_bytes = 1u << 20;
		goto fill;
	}
	snapshot_offsets(c, a, &out.offsets, &out.n_offsets);
	if (out.n_offsets > 0
	    && dre_bus_cluster_id(
	           c->kafka, cluster, sizeof cluster, c->kafka_timeout_ms)
	        == DRE_OK)
		out.cluster_id = cluster;

	// The version and the iterator are taken together under the write
	// lock: the snapshot is exactly the state at that version.
	pthread_mutex_lock(&c->mu);
	out.version = c->version;
	err = dre_store_iter_open(
	    &it, c->st, CF_ENTITIES, tenant, tenant ? strlen(tenant) + 1 : 0);
	pthread_mutex_unlock(&c->mu);
	if (err != DRE_OK) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "snapshot failed: %s", dre_strerror(err));
		dre_arena_free(a);
		return;
	}
	if (page_bytes > 0) {
		// Paged: what the next pages need outlives this call.
		ss = snap_session_new(c->st);
		if (ss == NULL) {
			dre_store_iter_close(it);
			dre_arena_free(a);
			dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
			    "too many snapshots in progress");
			return;
		}
		ss->a = dre_arena_alloc(4096);
		ss->it = it;
		ss->version = out.version;
		if (ss->a == NULL)
			goto nomem;
		ss->tenant = tenant ? dre_arena_strdup(ss->a, tenant) : NULL;
		ss->cluster_id = out.cluster_id
		    ? dre_arena_strdup(ss->a, out.cluster_id)
		    : NULL;
		ss->offsets = dre_arena_get(
		    ss->a, (out.n_offsets + 1) * sizeof(*ss->offsets));
		if (ss->offsets == NULL || (tenant && !ss->tenant)
		    || (out.cluster_id && !ss->cluster_id))
			goto nomem;
		for (size_t i = 0; i < out.n_offsets; i++) {
			Dre__TopicOffset *o = dre_arena_get(ss->a, sizeof(*o));
			if (o == NULL)
				goto nomem;
			*o = *out.offsets[i];
			ss->offsets[i] = o;
		}
		ss->n_offsets = out.n_offsets;
	}
fill:
	// The entities straight into the answer, then the rest of the
	// message after them (offsets, version, cursor: out without
	// entities), which the reader merges with them as one message.
	dre_buf_reset(&rep->body);
	// (Room for the page and its keys: 1 MiB pages, the default, stay
	// in buffers of 2 MiB, below the mmap threshold (dre_svc_init):
	// taken from the heap again page after page, not fresh pages of
	// memory to fault in each time.)
	if (page_bytes > 0)
		dre_buf_reserve(&rep->body, page_bytes + page_bytes / 4);
	size_t nents = 0;
	if (snap_fill(it, &rep->body, &out.version, &nents, page_bytes, &more)
	    != DRE_OK)
		goto nomem;
	if (more) {
		snprintf(next, sizeof next, "%llx.%u",
		    (unsigned long long) ss->id, ss->next + 1);
		out.next_cursor = next;
	}
	size_t len = dre__snapshot_response__get_packed_size(&out);
	dre_buf_reserve(&rep->body, len);
	if (rep->body.oom) {
		dre_buf_reset(&rep->body);
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		more = false;
	} else {
		dre__snapshot_response__pack(
		    &out, (uint8_t *) rep->body.data + rep->body.len);
		rep->body.len += len;
		rep->status = 200;
		dre_info("snapshot%s%s: %zu entities at version %lld, %zu "
		         "offsets%s%s",
		    tenant ? " of " : "", tenant ? tenant : "", nents,
		    (long long) out.version, out.n_offsets,
		    ss ? ", page of " : "",
		    ss ? (more ? "more" : "last") : "");
	}
	if (ss != NULL)
		snap_session_release(ss, !more); // the last page ends it
	else
		dre_store_iter_close(it);
	dre_arena_free(a);
	return;
nomem:
	if (ss != NULL)
		snap_session_release(ss, true);
	else
		dre_store_iter_close(it);
	dre_arena_free(a);
	dre_buf_reset(&rep->body); // (part of a page)
	dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL, "out of memory");
}

// ---- route table --------------------------------------------------------

#define OP(kind, name, fn)                                                    \
	static void h_##name(                                                 \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		req r;                                                        \
		if (req_begin(&r, svc, call, rep, kind))                      \
			fn;                                                   \
		req_end(&r);                                                  \
	}

#define CRUD(kind, name)                                                      \
	OP(kind, name##_create, do_create(&r))                                \
	OP(kind, name##_list, do_list(&r))                                    \
	OP(kind, name##_get, do_get(&r))                                      \
	OP(kind, name##_update, do_update(&r))                                \
	OP(kind, name##_delete, do_delete(&r))

CRUD(CAT_PROMOTION, promotions)
CRUD(CAT_POS_GROUP, pos_groups)
CRUD(CAT_ARTICLE_GROUP, article_groups)
CRUD(CAT_ARTICLE, articles)
CRUD(CAT_CAMPAIGN, campaigns)
OP(CAT_CAMPAIGN, campaigns_add, campaign_change(&r, true))
OP(CAT_CAMPAIGN, campaigns_remove, campaign_change(&r, false))
OP(CAT_CAMPAIGN, campaigns_ics, campaign_ics(&r))
OP(CAT_ARTICLE, md_json, do_md_json(&r))
OP(CAT_ARTICLE, md_soap, do_md_soap(&r))
OP(CAT_ARTICLE, md_message, do_md_get(&r, false))
OP(CAT_ARTICLE, md_raw, do_md_get(&r, true))
OP(CAT_PROMOTION, promotions_activate, transition(&r, ACT_ACTIVATE))
OP(CAT_PROMOTION, promotions_deactivate, transition(&r, ACT_DEACTIVATE))
OP(CAT_PROMOTION, promotions_submit, transition(&r, ACT_SUBMIT))
OP(CAT_PROMOTION, promotions_approve, transition(&r, ACT_APPROVE))
OP(CAT_PROMOTION, promotions_reject, transition(&r, ACT_REJECT))
OP(CAT_PROMOTION, audit_list, dre_audit_list(&r.d, r.c->st, CF_AUDIT, 0))
OP(CAT_PROMOTION, audit_record, dre_audit_record(&r.d, r.c->st, CF_AUDIT, 0))
OP(CAT_ARTICLE, articles_import, do_import(&r))
OP(CAT_TENANT_SETTINGS, settings_get, do_settings_get(&r))
OP(CAT_TENANT_SETTINGS, settings_update, do_settings_put(&r))

#define ROUTES(ent, name)                                                     \
	{ "catalog." ent ".create", h_##name##_create },                      \
	    { "catalog." ent ".list", h_##name##_list },                      \
	    { "catalog." ent ".get", h_##name##_get },                        \
	    { "catalog." ent ".update", h_##name##_update },                  \
	{                                                                     \
		"catalog." ent ".delete", h_##name##_delete                   \
	}

const dre_rpc_route cat_routes[] = {
	ROUTES("Promotions", promotions),
	ROUTES("PosGroups", pos_groups),
	ROUTES("ArticleGroups", article_groups),
	ROUTES("Articles", articles),
	ROUTES("Campaigns", campaigns),
	{ "catalog.Campaigns.addPromotions", h_campaigns_add },
	{ "catalog.Campaigns.removePromotion", h_campaigns_remove },
	{ "catalog.Campaigns.exportICS", h_campaigns_ics },
	{ "catalog.MasterData.replicate", h_md_json },
	{ "catalog.MasterData.replicateSoap", h_md_soap },
	{ "catalog.MasterData.message", h_md_message },
	{ "catalog.MasterData.raw", h_md_raw },
	{ "catalog.Promotions.activate", h_promotions_activate },
	{ "catalog.Promotions.deactivate", h_promotions_deactivate },
	{ "catalog.Promotions.submit", h_promotions_submit },
	{ "catalog.Promotions.approve", h_promotions_approve },
	{ "catalog.Promotions.reject", h_promotions_reject },
	{ "catalog.AuditLogs.list", h_audit_list },
	{ "catalog.AuditLogs.record", h_audit_record },
	{ "catalog.Articles.import", h_articles_import },
	{ "catalog.Articles.importBatch", cat_import_batch },
	// Import jobs (imports.c, dre/importjob.h).
	{ "catalog.ImportJobs.create", cat_ijob },
	{ "catalog.ImportJobs.submit", cat_ijob },
	{ "catalog.ImportJobs.append", cat_ijob },
	{ "catalog.ImportJobs.complete", cat_ijob },
	{ "catalog.ImportJobs.abort", cat_ijob },
	{ "catalog.ImportJobs.get", cat_ijob },
	{ "catalog.ImportJobs.list", cat_ijob },
	{ "catalog.ImportJobs.cancel", cat_ijob },
	{ "catalog.ImportJobErrors.list", cat_ijob },
	{ "catalog.ImportJobItems.list", cat_ijob },
	{ "catalog.ArticleImportJobs.get", cat_ijob },
	{ "catalog.TenantSettings.get", h_settings_get },
	{ "catalog.TenantSettings.update", h_settings_update },
	{ "catalog.Snapshot", h_snapshot },
	// Identity (identity.c): API clients, API keys, tokens, keys.
	{ "catalog.ApiClients.create", h_apiclients_create },
	{ "catalog.ApiClients.list", h_apiclients_list },
	{ "catalog.ApiClients.get", h_apiclients_get },
	{ "catalog.ApiClients.delete", h_apiclients_delete },
	{ "catalog.ApiKeys.create", h_apikeys_create },
	{ "catalog.ApiKeys.list", h_apikeys_list },
	{ "catalog.ApiKeys.get", h_apikeys_get },
	{ "catalog.ApiKeys.delete", h_apikeys_delete },
	{ "catalog.ApiKeys.verify", h_apikeys_verify, DRE_RPC_INLINE },
	{ "catalog.OAuth.token", h_oauth_token },
	{ "catalog.Jwks.get", h_jwks_get, DRE_RPC_INLINE },
	{ "catalog.SigningKeys.rotate", h_signingkeys_rotate },
	{ NULL, NULL },
};

// ---- import jobs (dre/importjob.h): one row through create or update ------

// lookup_field is the member an UPSERT finds the stored entity by.
static const char *
lookup_field(cat_kind k)
{
	const ent_spec *s = specs[k];
	if (s == NULL)
		return "id";
	return s->fields[s->key >= 0 ? s->key : s->unique].name;
}

dre_err
cat_import_row(
    cat *c, cat_kind k, const dre_ijob_row *row, dre_ijob_result *res)
{
	static const dre_rpc_fn create[]
	    = { h_promotions_create, h_pos_groups_create,
		      h_article_groups_create, h_articles_create };
	static const dre_rpc_fn update[]
	    = { h_promotions_update, h_pos_groups_update,
		      h_article_groups_update, h_articles_update };
	bool exists = false;
	dre_ijob_row_key(row, lookup_field(k), res);
	if (row->mode == DRE_IJOB_UPSERT && res->key[0]) {
		char   *doc = NULL, *key = NULL;
		dre_err err
		    = cat_get(c, row->tenant, k, res->key, &doc, NULL, NULL);
		if (err == DRE_ENOTFOUND && alt_field(k) != NULL)
			err = cat_index_get(
			    c, row->tenant, k, alt_field(k), res->key, &key);
		exists = err == DRE_OK;
		free(doc);
		free(key);
	}
	res->created = !exists;
	return dre_ijob_run(exists ? update[k] : create[k], c, row,
	    exists ? res->key : NULL, lookup_field(k), res);
}

// do_import_batch is seed 002's POST /pos/articles/import-batch {name,
// articles[]}: the articles become an import job (source "pos": per-article
// items are kept for ArticleImportJobItems).
static void
do_import_batch(req *r)
{
	static const char *const known[] = { "name", "articles" };
	const dre_json *in = dre_docapi_body(&r->d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(&r->d, in, known, 2))
		return;
	const dre_json *arts = dre_json_get(in, "articles");
	const dre_json *name = dre_json_get(in, "name");
	if (!dre_json_is(arts, DRE_JSON_ARRAY)) {
		dre_docapi_invalid(&r->d, "articles",
		    "articles must be an array of articles");
		return;
	}
	if (!dre_json_is_null(name)
	    && (!dre_json_is(name, DRE_JSON_STRING)
	        || !dre_ijob_name_ok(name->str))) {
		dre_docapi_invalid(&r->d, "name",
		    "name must be a string of at most %d characters",
		    DRE_IJOB_NAME_MAX);
		return;
	}
	dre_buf   data = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &data);
	dre_jsonw_json(&w, arts);
	char          id[DRE_IJOB_ID_MAX];
	dre_ijob_spec s = { r->d.call->tenant, r->d.call->principal,
		"Articles", DRE_IJOB_JSON, DRE_IJOB_UPSERT,
		dre_json_is(name, DRE_JSON_STRING) ? name->str : NULL, "pos",
		NULL, NULL };
	dre_err       err = data.oom
	          ? DRE_ENOMEM
	          : dre_ijob_submit(r->c->jobs, &s, data.data, data.len, id);
	dre_buf_free(&data);
	if (err == DRE_ETOOBIG) {
		dre_rpc_reply_error(r->d.rep, 413, "PAYLOAD_TOO_LARGE", NULL,
		    "the articles do not fit: imports.max_upload or the "
		    "disk's "
		    "free space");
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	dre_buf  *b = &r->d.rep->body;
	dre_jsonw o;
	char      msg[96];
	snprintf(msg, sizeof msg, "import job created: %u articles queued",
	    (unsigned) arts->len);
	dre_buf_reset(b);
	dre_jsonw_init(&o, b);
	dre_jsonw_obj_begin(&o);
	dre_jsonw_kint(&o, "minorVersion", MINOR_VERSION);
	dre_jsonw_kstr(&o, "jobId", id);
	dre_jsonw_kstr(&o, "status", "QUEUED");
	dre_jsonw_kstr(&o, "message", msg);
	dre_jsonw_obj_end(&o);
	r->d.rep->status = 202;
	dre_rpc_reply_json(r->d.rep);
}

OP(CAT_ARTICLE, articles_import_batch, do_import_batch(&r))

void
cat_import_batch(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	h_articles_import_batch(svc, call, rep);
}
