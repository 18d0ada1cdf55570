// loyalty/handlers.c -- the loyalty service's nng API: the program
// (/api/v1/LoyaltyProgram), contacts, the contact overview and receipts in
// Voyado Engage's v3 shapes (PRODUCT-DECISIONS §8); errors keep §1's
// envelope with Engage's names as error.code.
#include "handlers.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "rewards.h"
#include "dre/audit.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/importjob.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/outbox.h"
#include "dre/store.h"
#include "dre/topics.h"
#include "dre/uuid.h"

#define MINOR_VERSION 1
#define ATTR_MAX_LEN  256

static const dre_docapi_svc loy_api = { "the loyalty service", MINOR_VERSION };

typedef struct {
	dre_docapi_req d;
	loy           *s;
} req;

static bool
req_begin(req *r, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	r->s = svc;
	return dre_docapi_begin(&r->d, &loy_api, call, rep);
}

// ---- identifiers --------------------------------------------------------

bool
loy_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	size_t      n = strlen(s);
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL || n > 254)
		return false;
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char) *p) || iscntrl((unsigned char) *p)
		    || *p == ',' || *p == ';' || *p == '<' || *p == '>')
			return false;
	const char *dot = strrchr(at + 1, '.');
	return dot != NULL && dot > at + 1 && dot[1] != '\0'
	    && strstr(at, "..") == NULL;
}

bool
loy_phone_valid(const char *s)
{
	if (s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	size_t n = 0;
	for (const char *p = s + 1; *p; p++, n++)
		if (!isdigit((unsigned char) *p))
			return false;
	return n >= 7 && n <= 15;
}

// check_attr answers 400 when v is not a valid value of attribute i.
static bool
check_attr(req *r, int i, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return true;
	if (strlen(v) > ATTR_MAX_LEN) {
		dre_rpc_reply_error(r->d.rep, 400, "VALIDATION_FAILED",
		    loy_attr_names[i], "%s is longer than %d bytes",
		    loy_attr_names[i], ATTR_MAX_LEN);
		return false;
	}
	if (i == LOY_A_EMAIL && !loy_email_valid(v)) {
		dre_rpc_reply_error(r->d.rep, 400, "InvalidEmailAddress",
		    "email", "'%s' is not a valid email address", v);
		return false;
	}
	if (i == LOY_A_MOBILE && !loy_phone_valid(v)) {
		dre_rpc_reply_error(r->d.rep, 400, "InvalidPhoneNumber",
		    "mobilePhone",
		    "'%s' is not a mobile phone number in E.164 form "
		    "(+46701234567)",
		    v);
		return false;
	}
	return true;
}

static const char *const contact_known[]
    = { "email", "mobilePhone", "memberNumber", "firstName", "lastName",
	      "countryCode", "language", "birthDay", "gender", "street",
	      "zipCode", "city", "preferences", "consents" };
#define NCONTACT_KNOWN (sizeof(contact_known) / sizeof(contact_known[0]))

// read_attrs applies the attributes present in doc to c (a present null
// or "" overwrites too); false once it has answered 400.
static bool
read_attrs(req *r, const dre_json *doc, loy_contact *c)
{
	const dre_json *m;
	if ((m = dre_json_unknown(doc, contact_known, NCONTACT_KNOWN, NULL))
	    != NULL) {
		char name[64], msg[160];
		dre_json_unknown_describe(m, contact_known, NCONTACT_KNOWN,
		    name, sizeof(name), msg, sizeof(msg));
		dre_rpc_reply_error(
		    r->d.rep, 400, "VALIDATION_FAILED", name, "%s", msg);
		return false;
	}
	for (int i = 0; i < LOY_NATTRS; i++) {
		const dre_json *v = dre_json_get(doc, loy_attr_names[i]);
		if (v == NULL)
			continue;
		if (dre_json_is(v, DRE_JSON_NULL)) {
			c->attr[i] = NULL;
			continue;
		}
		if (!dre_json_is(v, DRE_JSON_STRING)) {
			dre_rpc_reply_error(r->d.rep, 400, "VALIDATION_FAILED",
			    loy_attr_names[i], "%s must be a string or null",
			    loy_attr_names[i]);
			return false;
		}
		if (!check_attr(r, i, v->str))
			return false;
		c->attr[i] = v->str;
	}
	const dre_json *p = dre_json_get(doc, "preferences");
	if (p != NULL) {
		if (!dre_json_is_null(p) && !dre_json_is(p, DRE_JSON_OBJECT)) {
			dre_rpc_reply_error(r->d.rep, 400, "VALIDATION_FAILED",
			    "preferences", "preferences must be an object");
			return false;
		}
		c->preferences = dre_json_is_null(p) ? NULL : p;
	}
	p = dre_json_get(doc, "consents");
	if (p != NULL) {
		if (!dre_json_is_null(p) && !dre_json_is(p, DRE_JSON_ARRAY)
		    && !dre_json_is(p, DRE_JSON_OBJECT)) {
			dre_rpc_reply_error(r->d.rep, 400, "VALIDATION_FAILED",
			    "consents", "consents must be an array or object");
			return false;
		}
		c->consents = dre_json_is_null(p) ? NULL : p;
	}
	return true;
}

static bool
present(const char *v)
{
	return v != NULL && v[0] != '\0';
}

// ---- replies ------------------------------------------------------------

static void
reply_contact(req *r, int status, const loy_contact *c)
{
	loy_render(&r->d.rep->body, c);
	r->d.rep->status = status;
	dre_rpc_reply_json(r->d.rep);
}

static void
not_found(req *r, const char *what)
{
	dre_rpc_reply_error(
	    r->d.rep, 404, "ContactNotFound", NULL, "no contact %s", what);
}

// write commits b synced and kicks the outbox.
static dre_err
commit(loy *s, dre_batch *b)
{
	dre_err err = dre_store_write(s->st, b, true);
	if (err == DRE_OK)
		dre_outbox_kick(s->ob);
	return err;
}

// audit_points adds the audit record of a points change of contact c
// (before: as it was) made by a receipt or an exchange: details {key:
// ref, "points": points}.
static dre_err
audit_points(req *r, dre_batch *b, const loy_contact *before,
    const loy_contact *c, const char *key, const char *ref, int64_t points)
{
	dre_buf   d = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &d);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, key, ref);
	dre_jsonw_kint(&w, "points", points);
	dre_jsonw_obj_end(&w);
	dre_err err = d.oom ? DRE_ENOMEM
	                    : loy_audit_contact(r->s, b, r->d.call->tenant,
	                        r->d.call->principal, before, c, d.data);
	dre_buf_free(&d);
	return err;
}

// loyalty.AuditLogs.list: the records of the API's writes, for the
// gateway's GET /api/v1/AuditLogs (dre/audit.h).
static void
h_audit_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	loy *s = svc;
	dre_audit_list_call(&loy_api, s->st, LOY_CF_AUDIT, 0, call, rep);
}

// ---- /api/v1/LoyaltyProgram ---------------------------------------------

static void
h_program_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (req_begin(&r, svc, call, rep)) {
		loy_program p;
		dre_err err = loy_program_get(r.s, r.d.a, call->tenant, &p);
		if (err != DRE_OK) {
			dre_docapi_internal(&r.d, err);
		} else {
			loy_program_render(&rep->body, &p);
			dre_rpc_reply_json(rep);
		}
	}
	dre_docapi_end(&r.d);
}

static void
h_program_put(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	loy_program p;
	const char *target = NULL;
	char        msg[200];
	if (!loy_program_parse(&p, r.d.a, doc, &target, msg, sizeof(msg))) {
		dre_docapi_invalid(&r.d, target, "%s", msg);
		goto out;
	}
	// The program as stored before (none: the defaults, a create) and
	// after, with their audit record in one batch.
	dre_buf    doc_out = { 0 };
	dre_batch *b = NULL;
	char      *v = NULL;
	size_t     vl = 0, tl = strlen(call->tenant);
	loy_program_render(&doc_out, &p);
	pthread_mutex_lock(&r.s->mu);
	dre_err err = dre_store_get(
	    r.s->st, LOY_CF_PROGRAM, call->tenant, tl, &v, &vl);
	const dre_buf before = { .data = v, .len = vl };
	if (err == DRE_OK || err == DRE_ENOTFOUND)
		err = (b = dre_batch_alloc()) == NULL ? DRE_ENOMEM : DRE_OK;
	if (err == DRE_OK) {
		dre_batch_put(b, r.s->st, LOY_CF_PROGRAM, call->tenant, tl,
		    doc_out.data, doc_out.len);
		err = dre_audit_change(b, r.s->st, LOY_CF_AUDIT, call->tenant,
		    call->principal, "LoyaltyProgram", "program", NULL,
		    v != NULL ? &before : NULL, &doc_out, NULL);
	}
	if (err == DRE_OK)
		err = dre_store_write(r.s->st, b, true);
	pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	free(v);
	if (err != DRE_OK)
		dre_docapi_internal(&r.d, err);
	else {
		dre_buf_append(&rep->body, doc_out.data, doc_out.len);
		dre_rpc_reply_json(rep);
	}
	dre_buf_free(&doc_out);
out:
	dre_docapi_end(&r.d);
}

// ---- contacts -----------------------------------------------------------

// existing finds a contact holding one of c's identifiers (email, mobile
// phone, member number) other than c itself; *id NULL when none.
static dre_err
existing(req *r, const loy_contact *c, const char **id, const char **which)
{
	static const struct {
		char        kind;
		loy_attr    attr;
		const char *name;
	} ks[] = { { 'e', LOY_A_EMAIL, "email" },
		{ 'm', LOY_A_MOBILE, "mobilePhone" },
		{ 'n', LOY_A_MEMBER, "memberNumber" } };
	*id = NULL;
	for (size_t i = 0; i < 3; i++) {
		const char *v = c->attr[ks[i].attr], *found = NULL;
		if (!present(v))
			continue;
		dre_err err = loy_lookup(r->s, NULL, r->d.a, r->d.call->tenant,
		    ks[i].kind, v, &found);
		if (err == DRE_ENOTFOUND)
			continue;
		if (err != DRE_OK)
			return err;
		if (c->id != NULL && strcmp(found, c->id) == 0)
			continue;
		*id = found;
		*which = ks[i].name;
		return DRE_OK;
	}
	return DRE_OK;
}

static void
h_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req        r;
	dre_batch *b = NULL;
	bool       locked = false;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	loy_contact c;
	memset(&c, 0, sizeof(c));
	if (!read_attrs(&r, doc, &c))
		goto out;
	if (!present(c.attr[LOY_A_EMAIL]) && !present(c.attr[LOY_A_MOBILE])
	    && !present(c.attr[LOY_A_MEMBER])) {
		dre_docapi_invalid(&r.d, "email",
		    "a contact needs at least one of email, mobilePhone and "
		    "memberNumber");
		goto out;
	}
	for (int i = 0; i < LOY_NATTRS; i++)
		if (c.attr[i] != NULL && c.attr[i][0] == '\0')
			c.attr[i] = NULL;
	pthread_mutex_lock(&r.s->mu);
	locked = true;
	const char *id = NULL, *which = NULL;
	dre_err     err = existing(&r, &c, &id, &which);
	if (err == DRE_OK && id != NULL) {
		// Never a duplicate: the contact holding the identifier.
		loy_contact old;
		err = loy_contact_get(
		    r.s, NULL, r.d.a, call->tenant, id, &old);
		if (err == DRE_OK) {
			reply_contact(&r, 200, &old);
			goto out;
		}
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	char       *nid = dre_arena_get(r.d.a, DRE_UUID_LEN + 1);
	loy_program p;
	if (nid == NULL
	    || (err = loy_program_get(r.s, r.d.a, call->tenant, &p))
	        != DRE_OK) {
		dre_docapi_internal(&r.d, nid == NULL ? DRE_ENOMEM : err);
		goto out;
	}
	dre_uuid_v4(nid);
	c.id = nid;
	c.source = dre_rpc_param(call, "source");
	c.store = dre_rpc_param(call, "storeExternalId");
	c.created = c.modified = dre_now_ms();
	c.level = p.levels[0].name;
	if ((b = dre_batch_alloc_indexed()) == NULL) {
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	if ((err = loy_contact_put(r.s, b, call->tenant, &c, NULL)) != DRE_OK
	    || (err = loy_event(r.s, b, call->tenant, &c, "CONTACT_CREATED", 0,
	            NULL, NULL, NULL, NULL, "created", c.created))
	        != DRE_OK
	    || (err = loy_audit_contact(
	            r.s, b, call->tenant, call->principal, NULL, &c, NULL))
	        != DRE_OK
	    || (err = commit(r.s, b)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	reply_contact(&r, 201, &c);
out:
	if (locked)
		pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	dre_docapi_end(&r.d);
}

// find answers the ids of the contacts a lookup names: kind is e, m, n or
// 'a' (any of them, and a contact id). Up to 4 distinct ids.
static dre_err
find(req *r, char kind, const char *v, const char **ids, size_t *n)
{
	static const char kinds[] = { 'e', 'm', 'n' };
	*n = 0;
	for (size_t i = 0; i < 3; i++) {
		const char *id = NULL;
		if (kind != 'a' && kind != kinds[i])
			continue;
		if (kinds[i] == 'e' && kind == 'a' && strchr(v, '@') == NULL)
			continue;
		dre_err err = loy_lookup(
		    r->s, NULL, r->d.a, r->d.call->tenant, kinds[i], v, &id);
		if (err == DRE_ENOTFOUND)
			continue;
		if (err != DRE_OK)
			return err;
		bool dup = false;
		for (size_t k = 0; k < *n; k++)
			dup = dup || strcmp(ids[k], id) == 0;
		if (!dup)
			ids[(*n)++] = id;
	}
	return DRE_OK;
}

// lookup_params reads which of email / mobilePhone / customKey / any a
// request names; false once it answered 400.
static bool
lookup_params(req *r, char *kind, const char **v)
{
	static const struct {
		const char *name;
		char        kind;
	} ps[]
	    = { { "email", 'e' }, { "mobilePhone", 'm' }, { "customKey", 'n' },
		      { "memberNumber", 'n' }, { "any", 'a' } };
	*v = NULL;
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		const char *x = dre_rpc_param(r->d.call, ps[i].name);
		if (x == NULL)
			continue;
		if (*v != NULL)
			return dre_docapi_invalid(&r->d, ps[i].name,
			    "name one of email, mobilePhone, customKey and "
			    "any");
		if (x[0] == '\0')
			return dre_docapi_invalid(
			    &r->d, ps[i].name, "%s is empty", ps[i].name);
		*v = x;
		*kind = ps[i].kind;
	}
	if (*v == NULL)
		return dre_docapi_invalid(&r->d, "email",
		    "name the contact by email, mobilePhone, customKey or "
		    "any");
	if (*kind == 'e' && !loy_email_valid(*v)) {
		dre_rpc_reply_error(r->d.rep, 400, "InvalidEmailAddress",
		    "email", "'%s' is not a valid email address", *v);
		return false;
	}
	if (*kind == 'm' && !loy_phone_valid(*v)) {
		dre_rpc_reply_error(r->d.rep, 400, "InvalidPhoneNumber",
		    "mobilePhone",
		    "'%s' is not a mobile phone number in E.164 form", *v);
		return false;
	}
	return true;
}

// resolve_one finds the one contact a lookup names; false once answered.
static bool
resolve_one(req *r, char kind, const char *v, const char **id)
{
	const char *ids[4];
	size_t      n = 0;
	dre_err     err = find(r, kind, v, ids, &n);
	if (err == DRE_OK && n == 0 && kind == 'a') {
		loy_contact c;
		err = loy_contact_get(
		    r->s, NULL, r->d.a, r->d.call->tenant, v, &c);
		if (err == DRE_OK)
			ids[n++] = c.id;
		else if (err == DRE_ENOTFOUND)
			err = DRE_OK;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return false;
	}
	if (n == 0) {
		char what[300];
		snprintf(what, sizeof(what), "matches '%s'", v);
		not_found(r, what);
		return false;
	}
	if (n > 1) {
		dre_rpc_reply_error(r->d.rep, 409, "MultipleMatches", NULL,
		    "%zu contacts match '%s'", n, v);
		return false;
	}
	*id = ids[0];
	return true;
}

static void
h_lookup(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	char        kind = 0;
	const char *v = NULL, *id = NULL;
	if (req_begin(&r, svc, call, rep) && lookup_params(&r, &kind, &v)
	    && resolve_one(&r, kind, v, &id)) {
		dre_jsonw w;
		dre_jsonw_init(&w, &rep->body);
		dre_jsonw_str(&w, id);
		dre_rpc_reply_json(rep);
	}
	dre_docapi_end(&r.d);
}

static void
h_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (req_begin(&r, svc, call, rep)) {
		const char *id = dre_rpc_param(call, "id");
		loy_contact c;
		dre_err     err = loy_contact_get(
		        r.s, NULL, r.d.a, call->tenant, id ? id : "", &c);
		if (err == DRE_ENOTFOUND)
			not_found(&r, id ? id : "");
		else if (err != DRE_OK)
			dre_docapi_internal(&r.d, err);
		else
			reply_contact(&r, 200, &c);
	}
	dre_docapi_end(&r.d);
}

static void
h_update(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req        r;
	dre_batch *b = NULL;
	bool       locked = false;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const char *id = dre_rpc_param(call, "id");
	pthread_mutex_lock(&r.s->mu);
	locked = true;
	loy_contact old, c;
	dre_err     err = loy_contact_get(
	        r.s, NULL, r.d.a, call->tenant, id ? id : "", &old);
	if (err == DRE_ENOTFOUND) {
		not_found(&r, id ? id : "");
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	c = old;
	if (!read_attrs(&r, doc, &c))
		goto out;
	const char *other = NULL, *which = NULL;
	if ((err = existing(&r, &c, &other, &which)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	if (other != NULL) {
		dre_rpc_reply_error(rep, 409, "ContactAlreadyExists", which,
		    "contact %s already has this %s", other, which);
		goto out;
	}
	c.modified = dre_now_ms();
	if ((b = dre_batch_alloc_indexed()) == NULL) {
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	char seed[32];
	snprintf(seed, sizeof(seed), "updated|%lld", (long long) c.modified);
	if ((err = loy_contact_put(r.s, b, call->tenant, &c, &old)) != DRE_OK
	    || (err = loy_event(r.s, b, call->tenant, &c, "CONTACT_UPDATED", 0,
	            NULL, NULL, NULL, NULL, seed, c.modified))
	        != DRE_OK
	    || (err = loy_audit_contact(
	            r.s, b, call->tenant, call->principal, &old, &c, NULL))
	        != DRE_OK
	    || (err = commit(r.s, b)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	reply_contact(&r, 200, &c);
out:
	if (locked)
		pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	dre_docapi_end(&r.d);
}

static void
h_overview(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req         r;
	const char *id = NULL;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	id = dre_rpc_param(call, "contactId");
	if (id == NULL) {
		char        kind = 0;
		const char *v = NULL;
		if (!lookup_params(&r, &kind, &v)
		    || !resolve_one(&r, kind, v, &id))
			goto out;
	}
	loy_contact c;
	loy_program p;
	dre_err err = loy_contact_get(r.s, NULL, r.d.a, call->tenant, id, &c);
	if (err == DRE_ENOTFOUND) {
		not_found(&r, id);
		goto out;
	}
	if (err == DRE_OK)
		err = loy_program_get(r.s, r.d.a, call->tenant, &p);
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	int64_t     earned = loy_earned365(&c, loy_day(dre_now_ms()));
	const char *level = loy_level(&p, earned), *next = NULL;
	int64_t     to_next = 0;
	for (size_t i = 0; i < p.nlevels && next == NULL; i++)
		if (p.levels[i].min > earned) {
			next = p.levels[i].name;
			to_next = p.levels[i].min - earned;
		}
	// The contact's document, then its loyalty state.
	loy_render(&rep->body, &c);
	if (rep->body.len > 0 && rep->body.data[rep->body.len - 1] == '}')
		rep->body.len--;
	dre_jsonw w;
	dre_buf_puts(&rep->body, ",\"loyalty\":");
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "level", level);
	dre_jsonw_kint(&w, "pointsBalance", c.balance);
	dre_jsonw_kint(&w, "pointsEarnedLast365", earned);
	dre_jsonw_key(&w, "nextLevel");
	if (next != NULL)
		dre_jsonw_str(&w, next);
	else
		dre_jsonw_null(&w);
	dre_jsonw_key(&w, "pointsToNextLevel");
	if (next != NULL)
		dre_jsonw_int(&w, to_next);
	else
		dre_jsonw_null(&w);
	dre_jsonw_obj_end(&w);
	// The available vouchers and the live personal promotions.
	int64_t total = 0;
	dre_buf_puts(&rep->body, ",\"vouchers\":");
	dre_jsonw_init(&w, &rep->body);
	err = loy_vouchers_render(
	    r.s, r.d.a, call->tenant, c.id, 'v', 0, 1000, &w, &total);
	dre_buf_puts(&rep->body, ",\"promotions\":");
	dre_jsonw_init(&w, &rep->body);
	if (err == DRE_OK)
		err = loy_assignments_render(
		    r.s, r.d.a, call->tenant, c.id, true, &w);
	dre_buf_putc(&rep->body, '}');
	if (err != DRE_OK) {
		dre_buf_reset(&rep->body);
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&r.d);
}

// ---- the POS-platform bridge ---------------------------------------------

// h_order_points answers the platform's getLoyaltyPoints {orderId,
// customerId} in its shape: the points that confirmed order (its receipt
// id) earned the member, the balance and the tier now.
static void
h_order_points(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *o = dre_json_get(doc, "orderId");
	const dre_json *who = dre_json_get(doc, "customerId");
	if (!dre_json_is(o, DRE_JSON_STRING) || o->len == 0
	    || !dre_json_is(who, DRE_JSON_STRING) || who->len == 0) {
		dre_rpc_reply_error(rep, 400, "MISSING_FIELD", NULL,
		    "orderId and customerId are required strings");
		goto out;
	}
	loy_contact c;
	loy_program p;
	dre_err     err
	    = loy_resolve(r.s, NULL, r.d.a, call->tenant, who->str, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "CUSTOMER_NOT_FOUND", NULL,
		    "customer %s is not a loyalty member", who->str);
		goto out;
	}
	char   key[800], *v = NULL;
	size_t kl = 0, vl = 0;
	if (err == DRE_OK)
		err = loy_program_get(r.s, r.d.a, call->tenant, &p);
	if (err == DRE_OK) {
		kl = dre_key(
		    key, sizeof(key), 0, 4, call->tenant, "o", c.id, o->str);
		err = kl == 0
		    ? DRE_ENOTFOUND
		    : dre_store_get(r.s->st, LOY_CF_LEDGER, key, kl, &v, &vl);
	}
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "ORDER_NOT_FOUND", NULL,
		    "order %s of customer %s has not been confirmed (yet)",
		    o->str, who->str);
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	int64_t pts = vl == 8 ? dre_be64_get((const uint8_t *) v) : 0;
	free(v);
	int64_t   earned = loy_earned365(&c, loy_day(dre_now_ms()));
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "orderId", o->str);
	dre_jsonw_kstr(&w, "customerId", who->str);
	dre_jsonw_kint(&w, "pointsEarned", pts);
	dre_jsonw_kint(&w, "pointsBalance", c.balance);
	dre_jsonw_kstr(&w, "tier", loy_level(&p, earned));
	dre_jsonw_obj_end(&w);
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&r.d);
}

// h_reward_lookup answers the platform's reward lookup {customerId |
// loyaltyId}: the member's points, tier and available reward vouchers.
static void
h_reward_lookup(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req r;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *who = dre_json_get(doc, "loyaltyId");
	if (!dre_json_is(who, DRE_JSON_STRING) || who->len == 0)
		who = dre_json_get(doc, "customerId");
	if (!dre_json_is(who, DRE_JSON_STRING) || who->len == 0) {
		dre_rpc_reply_error(rep, 400, "MISSING_FIELD", NULL,
		    "customerId or loyaltyId is required");
		goto out;
	}
	loy_contact c;
	loy_program p;
	dre_err     err
	    = loy_resolve(r.s, NULL, r.d.a, call->tenant, who->str, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(rep, 404, "CUSTOMER_NOT_FOUND", NULL,
		    "customer %s is not a loyalty member", who->str);
		goto out;
	}
	if (err == DRE_OK)
		err = loy_program_get(r.s, r.d.a, call->tenant, &p);
	dre_buf   rewards = { 0 };
	dre_jsonw w;
	int64_t   total = 0;
	dre_jsonw_init(&w, &rewards);
	if (err == DRE_OK)
		err = loy_vouchers_render(
		    r.s, r.d.a, call->tenant, c.id, 'p', 0, 1000, &w, &total);
	if (err != DRE_OK || rewards.oom) {
		dre_buf_free(&rewards);
		dre_docapi_internal(&r.d, err != DRE_OK ? err : DRE_ENOMEM);
		goto out;
	}
	int64_t earned = loy_earned365(&c, loy_day(dre_now_ms()));
	int64_t to_next = p.per_voucher - c.balance;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "accountNumber",
	    c.attr[LOY_A_MEMBER] != NULL ? c.attr[LOY_A_MEMBER] : c.id);
	dre_jsonw_kint(&w, "totalPoints", c.balance);
	dre_jsonw_kint(&w, "currentRewardPoints", c.balance);
	dre_jsonw_kint(&w, "pointsToNextReward", to_next > 0 ? to_next : 0);
	dre_jsonw_key(&w, "currentTier");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "name", loy_level(&p, earned));
	dre_jsonw_obj_end(&w);
	dre_jsonw_key(&w, "rewards");
	dre_jsonw_raw(&w, rewards.data, rewards.len);
	dre_jsonw_obj_end(&w);
	dre_buf_free(&rewards);
	dre_rpc_reply_json(rep);
out:
	dre_docapi_end(&r.d);
}

// h_return answers the platform's RETURN {orderId, returnId, refund (minor
// units)}: the member of that confirmed order loses the points of the
// refunded share of the sale (points * refund / total, never more than the
// order earned). Idempotent by returnId: a repost gets the first answer.
static void
h_return(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req        r;
	dre_batch *b = NULL;
	bool       locked = false;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *o = dre_json_get(doc, "orderId");
	const dre_json *rid = dre_json_get(doc, "returnId");
	int64_t         refund = 0;
	if (!dre_json_is(o, DRE_JSON_STRING) || o->len == 0
	    || !dre_json_is(rid, DRE_JSON_STRING) || rid->len == 0
	    || dre_json_int(&refund, dre_json_get(doc, "refund"), 0, INT64_MAX)
	        != DRE_OK) {
		dre_rpc_reply_error(rep, 400, "MISSING_FIELD", NULL,
		    "orderId, returnId and refund are required");
		goto out;
	}
	pthread_mutex_lock(&r.s->mu);
	locked = true;
	char   rk[512], ok[512], dk[512], *v = NULL;
	size_t vl = 0;
	size_t rkl
	    = dre_key(rk, sizeof(rk), 0, 3, call->tenant, "R", rid->str);
	size_t  okl = dre_key(ok, sizeof(ok), 0, 3, call->tenant, "O", o->str);
	size_t  dkl = dre_key(dk, sizeof(dk), 0, 3, call->tenant, "D", o->str);
	dre_err err = rkl && okl && dkl
	    ? dre_store_get(r.s->st, LOY_CF_LEDGER, rk, rkl, &v, &vl)
	    : DRE_EINVAL;
	if (err == DRE_OK) { // a repost: the first answer
		dre_buf_append(&rep->body, v, vl);
		free(v);
		dre_rpc_reply_json(rep);
		goto out;
	}
	if (err == DRE_EINVAL) {
		dre_rpc_reply_error(
		    rep, 400, "INVALID_FIELD", NULL, "orderId too long");
		goto out;
	}
	if (err != DRE_ENOTFOUND
	    || (err = dre_store_get(r.s->st, LOY_CF_LEDGER, ok, okl, &v, &vl))
	        == DRE_ENOTFOUND) {
		if (err == DRE_ENOTFOUND)
			dre_rpc_reply_error(rep, 404, "ORDER_NOT_FOUND", NULL,
			    "no confirmed order %s", o->str);
		else
			dre_docapi_internal(&r.d, err);
		goto out;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	size_t  idl = strnlen(v, vl);
	char   *cid = dre_arena_strndup(r.d.a, v, idl);
	int64_t earned = 0, total = 0, done = 0;
	if (idl + 17 == vl) {
		earned = dre_be64_get((const uint8_t *) v + idl + 1);
		total = dre_be64_get((const uint8_t *) v + idl + 9);
	}
	free(v);
	if ((err = dre_store_get(r.s->st, LOY_CF_LEDGER, dk, dkl, &v, &vl))
	    == DRE_OK) {
		done = vl == 8 ? dre_be64_get((const uint8_t *) v) : 0;
		free(v);
	} else if (err != DRE_ENOTFOUND) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	int64_t deduct = total > 0 && refund < total
	    ? (int64_t) ((__int128) earned * refund / total)
	    : earned;
	if (deduct > earned - done)
		deduct = earned - done;
	if (deduct < 0)
		deduct = 0;
	loy_contact c;
	loy_program p;
	int64_t     now = dre_now_ms();
	if (cid == NULL || (b = dre_batch_alloc_indexed()) == NULL) {
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	// A sale without a member (cid ""): nothing to deduct, the return
	// is still recorded and published.
	memset(&c, 0, sizeof(c));
	if (cid[0] != '\0'
	    && ((err
	            = loy_contact_get(r.s, NULL, r.d.a, call->tenant, cid, &c))
	            != DRE_OK
	        || (err = loy_program_get(r.s, r.d.a, call->tenant, &p))
	            != DRE_OK)) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	if (cid[0] == '\0')
		deduct = 0;
	if (deduct > 0) {
		const char *prev = NULL;
		char        seed[300];
		snprintf(seed, sizeof(seed), "return|%s", rid->str);
		loy_credit(&c, r.d.a, &p, -deduct, loy_day(now), &prev);
		c.modified = now;
		if ((err = loy_contact_put(r.s, b, call->tenant, &c, &c))
		        != DRE_OK
		    || (err = loy_event(r.s, b, call->tenant, &c,
		            "POINTS_DEDUCTED", deduct, NULL, NULL, o->str,
		            rid->str, seed, now))
		        != DRE_OK) {
			dre_docapi_internal(&r.d, err);
			goto out;
		}
	}
	dre_jsonw w;
	dre_jsonw_init(&w, &rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "orderId", o->str);
	dre_jsonw_kstr(&w, "returnId", rid->str);
	if (cid[0] != '\0')
		dre_jsonw_kstr(&w, "customerId", c.id);
	dre_jsonw_kint(&w, "pointsDeducted", deduct);
	dre_jsonw_kint(&w, "pointsBalance", c.balance);
	dre_jsonw_obj_end(&w);
	// TRANSACTION_RETURNED, in the batch of the deduction (outbox).
	dre_return_event ev = { .tenant = call->tenant,
		.occurred_at = now,
		.schema_version = 1,
		.order_id = o->str,
		.return_id = rid->str,
		.customer_id = cid[0] != '\0' ? c.id : NULL,
		.refund_amount = refund,
		.points_deducted = deduct,
		.points_balance = c.balance };
	dre_buf          evb = { 0 };
	dre_buf_printf(
	    &evb, "transaction-returned|%s|%s", call->tenant, rid->str);
	if (evb.oom) {
		dre_buf_free(&evb);
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	dre_uuid_derive(ev.event_id, evb.data, evb.len);
	dre_buf_reset(&evb);
	if ((err = dre_avro_encode_return_event(&evb, &ev)) != DRE_OK) {
		dre_buf_free(&evb);
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	char evk[512];
	int  evkl = snprintf(evk, sizeof(evk), "%s/%s", call->tenant, o->str);
	dre_outbox_put(r.s->ob, b, DRE_TOPIC_TX_RETURNED, evk,
	    evkl < (int) sizeof(evk) ? (size_t) evkl : sizeof(evk) - 1,
	    evb.data, evb.len);
	dre_buf_free(&evb);
	uint8_t be[8];
	dre_be64_put(be, done + deduct);
	dre_batch_put(b, r.s->st, LOY_CF_LEDGER, dk, dkl, be, 8);
	dre_batch_put(
	    b, r.s->st, LOY_CF_LEDGER, rk, rkl, rep->body.data, rep->body.len);
	if ((err = commit(r.s, b)) != DRE_OK) {
		dre_buf_reset(&rep->body);
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_rpc_reply_json(rep);
out:
	if (locked)
		pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	dre_docapi_end(&r.d);
}

// ---- receipts -----------------------------------------------------------

// receipt_contact finds the receipt's contact{matchKey, matchKeyType}.
static bool
receipt_contact(req *r, const dre_json *doc, loy_contact *c)
{
	const dre_json *ct = dre_json_get(doc, "contact");
	const dre_json *k = dre_json_get(ct, "matchKey");
	const dre_json *t = dre_json_get(ct, "matchKeyType");
	if (!dre_json_is(ct, DRE_JSON_OBJECT)
	    || !dre_json_is(k, DRE_JSON_STRING) || k->len == 0)
		return dre_docapi_invalid(
		    &r->d, "contact.matchKey", "contact.matchKey is required");
	const char *type = dre_json_is(t, DRE_JSON_STRING) ? t->str : "any";
	char        kind;
	if (strcasecmp(type, "email") == 0)
		kind = 'e';
	else if (strcasecmp(type, "mobile") == 0
	    || strcasecmp(type, "mobilePhone") == 0)
		kind = 'm';
	else if (strcasecmp(type, "memberNumber") == 0
	    || strcasecmp(type, "customKey") == 0
	    || strcasecmp(type, "cardNumber") == 0)
		kind = 'n';
	else if (strcasecmp(type, "contactId") == 0)
		kind = 'i';
	else if (strcasecmp(type, "any") == 0)
		kind = 'a';
	else
		return dre_docapi_invalid(&r->d, "contact.matchKeyType",
		    "matchKeyType must be one of ContactId, Email, Mobile, "
		    "MemberNumber, Any");
	const char *id = k->str;
	if (kind != 'i' && !resolve_one(r, kind, k->str, &id))
		return false;
	dre_err err
	    = loy_contact_get(r->s, NULL, r->d.a, r->d.call->tenant, id, c);
	if (err == DRE_ENOTFOUND) {
		not_found(r, k->str);
		return false;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return false;
	}
	return true;
}

// receipt_points sums the receipt's items: PURCHASE earns, RETURN deducts,
// ADJUSTMENT neither; *amount is the net in minor units. false once
// answered 400.
static bool
receipt_amount(req *r, const dre_json *doc, int64_t *amount)
{
	const dre_json *items = dre_json_get(doc, "items");
	if (!dre_json_is(items, DRE_JSON_ARRAY) || items->len == 0)
		return dre_docapi_invalid(
		    &r->d, "items", "a receipt needs at least one item");
	int64_t net = 0;
	size_t  i = 0;
	for (const dre_json *it = items->child; it != NULL;
	     it = it->next, i++) {
		char            t[48];
		const dre_json *ty = dre_json_get(it, "type");
		const dre_json *gp = dre_json_get(it, "grossPaidPrice");
		const dre_json *ab = dre_json_get(it, "awardsBonus");
		int64_t         v = 0;
		snprintf(t, sizeof(t), "items[%zu].type", i);
		if (!dre_json_is(it, DRE_JSON_OBJECT))
			return dre_docapi_invalid(
			    &r->d, t, "items[%zu] must be an object", i);
		const char *type
		    = dre_json_is(ty, DRE_JSON_STRING) ? ty->str : "PURCHASE";
		int sign = strcmp(type, "PURCHASE") == 0 ? 1
		    : strcmp(type, "RETURN") == 0        ? -1
		    : strcmp(type, "ADJUSTMENT") == 0    ? 0
		                                         : 2;
		if (sign == 2)
			return dre_docapi_invalid(&r->d, t,
			    "%s must be PURCHASE, RETURN or ADJUSTMENT", t);
		snprintf(t, sizeof(t), "items[%zu].grossPaidPrice", i);
		if (!dre_json_is(gp, DRE_JSON_NUMBER)
		    || dre_json_decimal(&v, gp, DRE_MONEY_SCALE, 15) != DRE_OK)
			return dre_docapi_invalid(&r->d, t,
			    "%s must be a number with at most 2 decimals", t);
		if (v < 0)
			return dre_docapi_invalid(&r->d, t,
			    "%s must not be negative (a RETURN item deducts "
			    "its price)",
			    t);
		if (dre_json_is(ab, DRE_JSON_FALSE))
			continue;
		net += sign * v;
	}
	*amount = net;
	return true;
}

// floor_div divides rounding towards minus infinity.
static int64_t
floor_div(__int128 a, __int128 b)
{
	__int128 q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return (int64_t) q;
}

static void
reply_receipt(req *r, const char *id)
{
	dre_jsonw w;
	dre_jsonw_init(&w, &r->d.rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", id);
	dre_jsonw_obj_end(&w);
	r->d.rep->status = 202;
	dre_rpc_reply_json(r->d.rep);
}

static void
h_receipt(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req        r;
	dre_batch *b = NULL;
	bool       locked = false;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, DRE_DOCAPI_NOT_OBJECT);
	if (doc == NULL)
		goto out;
	const dre_json *u = dre_json_get(doc, "uniqueReceiptId");
	if (!dre_json_is(u, DRE_JSON_STRING) || u->len == 0 || u->len > 200
	    || strlen(u->str) != u->len) {
		dre_docapi_invalid(&r.d, "uniqueReceiptId",
		    "uniqueReceiptId must be a string of 1 to 200 bytes "
		    "(no NUL)");
		goto out;
	}
	int64_t         rate = 1000000, amount = 0;
	const dre_json *x = dre_json_get(doc, "exchangeRateToGroupCurrency");
	if (!dre_json_is_null(x)
	    && (!dre_json_is(x, DRE_JSON_NUMBER)
	        || dre_json_decimal(&rate, x, 6, 15) != DRE_OK || rate <= 0)) {
		dre_docapi_invalid(&r.d, "exchangeRateToGroupCurrency",
		    "exchangeRateToGroupCurrency must be a positive number "
		    "with at most 6 decimals");
		goto out;
	}
	if (!receipt_amount(&r, doc, &amount))
		goto out;
	loy_contact c;
	if (!receipt_contact(&r, doc, &c))
		goto out;

	pthread_mutex_lock(&r.s->mu);
	locked = true;
	char    rk[512], tk[800], *v = NULL;
	size_t  vl = 0;
	size_t  rkl = dre_key(rk, sizeof(rk), 0, 3, call->tenant, "r", u->str);
	dre_err err = dre_store_get(r.s->st, LOY_CF_LEDGER, rk, rkl, &v, &vl);
	if (err == DRE_OK) { // idempotent: the first answer again
		dre_json *d = NULL;
		char     *copy = dre_arena_strndup(r.d.a, v, vl);
		free(v);
		if (copy != NULL
		    && dre_json_parse(&d, r.d.a, copy, vl, 4, NULL) == DRE_OK
		    && dre_json_is(dre_json_get(d, "id"), DRE_JSON_STRING))
			reply_receipt(&r, dre_json_get(d, "id")->str);
		else
			dre_docapi_internal(&r.d, DRE_ECODEC);
		goto out;
	}
	if (err != DRE_ENOTFOUND) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	// Re-read under the lock: the applier may have credited meanwhile.
	if ((err = loy_contact_get(r.s, NULL, r.d.a, call->tenant, c.id, &c))
	    != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	// A transaction this contact confirmed through DRE earned at
	// confirm: kept in the history, earns nothing.
	bool   confirmed = false;
	size_t tkl
	    = dre_key(tk, sizeof(tk), 0, 4, call->tenant, "t", c.id, u->str);
	err = dre_store_get(r.s->st, LOY_CF_LEDGER, tk, tkl, &v, &vl);
	if (err == DRE_OK) {
		free(v);
		confirmed = true;
	} else if (err != DRE_ENOTFOUND) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	loy_program p;
	if ((err = loy_program_get(r.s, r.d.a, call->tenant, &p)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	int64_t points = confirmed
	    ? 0
	    : floor_div((__int128) amount * p.ppcu * rate,
	        (__int128) 100 * 100 * 1000000);
	char   *id = dre_arena_get(r.d.a, DRE_UUID_LEN + 1);
	if (id == NULL || (b = dre_batch_alloc_indexed()) == NULL) {
		dre_docapi_internal(&r.d, DRE_ENOMEM);
		goto out;
	}
	char seed[300];
	snprintf(seed, sizeof(seed), "receipt|%s|%.*s", call->tenant,
	    (int) u->len, u->str);
	dre_uuid_derive(id, seed, strlen(seed));
	int64_t now = dre_now_ms();
	dre_buf rec = { 0 };
	dre_buf_printf(&rec,
	    "{\"id\":\"%s\",\"contactId\":\"%s\",\"points\":%lld,"
	    "\"amount\":%lld,\"confirmedThroughDre\":%s,\"at\":%lld}",
	    id, c.id, (long long) points, (long long) amount,
	    confirmed ? "true" : "false", (long long) now);
	dre_batch_put(b, r.s->st, LOY_CF_LEDGER, rk, rkl, rec.data, rec.len);
	dre_buf_free(&rec);
	if (points != 0) {
		const char *prev = NULL;
		loy_contact before = c;
		loy_credit(&c, r.d.a, &p, points, loy_day(now), &prev);
		c.modified = now;
		if ((err = loy_contact_put(r.s, b, call->tenant, &c, &before))
		        != DRE_OK
		    || (err = loy_event(r.s, b, call->tenant, &c,
		            points > 0 ? "POINTS_EARNED" : "POINTS_DEDUCTED",
		            points > 0 ? points : -points, NULL, NULL, u->str,
		            NULL, seed, now))
		        != DRE_OK
		    || ((prev == NULL || strcmp(prev, c.level) != 0)
		        && (err = loy_event(r.s, b, call->tenant, &c,
		                "LEVEL_CHANGED", 0, prev, NULL, u->str, NULL,
		                seed, now))
		            != DRE_OK)
		    || (err = audit_points(
		            &r, b, &before, &c, "receiptId", u->str, points))
		        != DRE_OK) {
			dre_docapi_internal(&r.d, err);
			goto out;
		}
		loy_vouchers_due(r.s, b, call->tenant, &c, &p);
	}
	if ((err = commit(r.s, b)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	if (points > 0)
		loy_vouchers_kick(r.s);
	reply_receipt(&r, id);
out:
	if (locked)
		pthread_mutex_unlock(&r.s->mu);
	dre_batch_free(b);
	dre_docapi_end(&r.d);
}

// ---- migration ----------------------------------------------------------

#define IMPORT_MAX_ERRORS 100

static const char *const import_known[] = { "email", "mobilePhone",
	"memberNumber", "firstName", "lastName", "countryCode", "language",
	"birthDay", "gender", "street", "zipCode", "city", "preferences",
	"consents", "pointsBalance", "level", "pointsEarnedLast365" };
#define NIMPORT_KNOWN (sizeof(import_known) / sizeof(import_known[0]))

typedef struct {
	int64_t created, updated, failed;
	size_t  nerrors;
	dre_buf errors; // comma-separated error objects
} import_stats;

static void row_error(import_stats *st, int64_t row, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
row_error(import_stats *st, int64_t row, const char *code, const char *target,
    const char *fmt, ...)
{
	st->failed++;
	if (st->nerrors++ >= IMPORT_MAX_ERRORS)
		return;
	char    msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dre_jsonw w;
	if (st->errors.len > 0)
		dre_buf_putc(&st->errors, ',');
	dre_jsonw_init(&w, &st->errors);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "row", row);
	dre_jsonw_kstr(&w, "code", code);
	if (target != NULL)
		dre_jsonw_kstr(&w, "target", target);
	dre_jsonw_kstr(&w, "message", msg);
	dre_jsonw_obj_end(&w);
}

// import_row validates one member and writes it into b (found by
// memberNumber, email or mobilePhone: replaced, else created). A row is
// all or nothing: refused rows leave b as they found it.
static void
import_row(req *r, dre_batch *b, const loy_program *p, const dre_json *m,
    int64_t row, int64_t now, import_stats *st)
{
	const char     *tenant = r->d.call->tenant;
	const dre_json *u;
	if (!dre_json_is(m, DRE_JSON_OBJECT)) {
		row_error(st, row, "VALIDATION_FAILED", NULL,
		    "a member must be a JSON object");
		return;
	}
	if ((u = dre_json_unknown(m, import_known, NIMPORT_KNOWN, NULL))
	    != NULL) {
		row_error(st, row, "VALIDATION_FAILED", u->key,
		    "unknown field '%s'", u->key);
		return;
	}
	loy_contact c;
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < LOY_NATTRS; i++) {
		const dre_json *v = dre_json_get(m, loy_attr_names[i]);
		if (dre_json_is_null(v))
			continue;
		if (!dre_json_is(v, DRE_JSON_STRING)) {
			row_error(st, row, "VALIDATION_FAILED",
			    loy_attr_names[i], "%s must be a string or null",
			    loy_attr_names[i]);
			return;
		}
		if (v->str[0] == '\0')
			continue;
		if (i == LOY_A_EMAIL && !loy_email_valid(v->str)) {
			row_error(st, row, "InvalidEmailAddress", "email",
			    "'%s' is not a valid email address", v->str);
			return;
		}
		if (i == LOY_A_MOBILE && !loy_phone_valid(v->str)) {
			row_error(st, row, "InvalidPhoneNumber", "mobilePhone",
			    "'%s' is not a mobile phone number in E.164 form",
			    v->str);
			return;
		}
		if (strlen(v->str) > ATTR_MAX_LEN) {
			row_error(st, row, "VALIDATION_FAILED",
			    loy_attr_names[i], "%s is longer than %d bytes",
			    loy_attr_names[i], ATTR_MAX_LEN);
			return;
		}
		c.attr[i] = v->str;
	}
	if (c.attr[LOY_A_EMAIL] == NULL && c.attr[LOY_A_MOBILE] == NULL
	    && c.attr[LOY_A_MEMBER] == NULL) {
		row_error(st, row, "VALIDATION_FAILED", "memberNumber",
		    "a member needs one of memberNumber, email and "
		    "mobilePhone");
		return;
	}
	int64_t balance = 0, earned = -1;
	u = dre_json_get(m, "pointsBalance");
	if (!dre_json_is_null(u)
	    && dre_json_int(&balance, u, -(INT64_C(1) << 50), INT64_C(1) << 50)
	        != DRE_OK) {
		row_error(st, row, "VALIDATION_FAILED", "pointsBalance",
		    "pointsBalance must be an integer");
		return;
	}
	u = dre_json_get(m, "pointsEarnedLast365");
	if (!dre_json_is_null(u)
	    && dre_json_int(&earned, u, 0, INT64_C(1) << 50) != DRE_OK) {
		row_error(st, row, "VALIDATION_FAILED", "pointsEarnedLast365",
		    "pointsEarnedLast365 must be an integer >= 0");
		return;
	}
	const char *level = p->levels[0].name;
	u = dre_json_get(m, "level");
	if (!dre_json_is_null(u)) {
		size_t i = 0;
		while (i < p->nlevels
		    && !(dre_json_is(u, DRE_JSON_STRING)
		        && strcmp(p->levels[i].name, u->str) == 0))
			i++;
		if (i == p->nlevels) {
			row_error(st, row, "VALIDATION_FAILED", "level",
			    "level must be one of the program's levels");
			return;
		}
		level = p->levels[i].name;
		if (earned < 0)
			earned = p->levels[i].min;
		// The level follows the points of the last 365 days: both
		// given must agree.
		if (strcmp(loy_level(p, earned), level) != 0) {
			row_error(st, row, "VALIDATION_FAILED", "level",
			    "level %s does not go with pointsEarnedLast365 "
			    "%lld (that is %s)",
			    level, (long long) earned, loy_level(p, earned));
			return;
		}
	} else if (earned > 0) { // no level: the one the points give
		level = loy_level(p, earned);
	}
	// The contact holding one of the identifiers (memberNumber first).
	static const char     kinds[] = { 'n', 'e', 'm' };
	static const loy_attr attrs[]
	    = { LOY_A_MEMBER, LOY_A_EMAIL, LOY_A_MOBILE };
	const char *id = NULL;
	for (size_t k = 0; k < 3 && id == NULL; k++) {
		if (c.attr[attrs[k]] == NULL)
			continue;
		dre_err err = loy_lookup(
		    r->s, b, r->d.a, tenant, kinds[k], c.attr[attrs[k]], &id);
		if (err != DRE_OK && err != DRE_ENOTFOUND) {
			row_error(st, row, "UNAVAILABLE", NULL, "%s",
			    dre_strerror(err));
			return;
		}
	}
	loy_contact old, *oldp = NULL;
	if (id != NULL) {
		dre_err err
		    = loy_contact_get(r->s, b, r->d.a, tenant, id, &old);
		if (err != DRE_OK) {
			row_error(st, row, "UNAVAILABLE", NULL, "%s",
			    dre_strerror(err));
			return;
		}
		oldp = &old;
		c.id = old.id;
		c.source = old.source;
		c.store = old.store;
		c.created = old.created;
		c.preferences = old.preferences;
		c.consents = old.consents;
	} else {
		char *nid = dre_arena_get(r->d.a, DRE_UUID_LEN + 1);
		if (nid == NULL) {
			row_error(
			    st, row, "UNAVAILABLE", NULL, "out of memory");
			return;
		}
		dre_uuid_v4(nid);
		c.id = nid;
		c.source = "MIGRATION";
		c.created = now;
	}
	// Another contact must not hold one of the other identifiers.
	for (size_t k = 0; k < 3; k++) {
		const char *other = NULL;
		if (c.attr[attrs[k]] == NULL)
			continue;
		if (loy_lookup(r->s, b, r->d.a, tenant, kinds[k],
		        c.attr[attrs[k]], &other)
		        == DRE_OK
		    && strcmp(other, c.id) != 0) {
			row_error(st, row, "ContactAlreadyExists",
			    loy_attr_names[attrs[k]],
			    "contact %s already has this %s", other,
			    loy_attr_names[attrs[k]]);
			return;
		}
	}
	const dre_json *pf = dre_json_get(m, "preferences");
	if (dre_json_is(pf, DRE_JSON_OBJECT))
		c.preferences = pf;
	pf = dre_json_get(m, "consents");
	if (dre_json_is(pf, DRE_JSON_ARRAY)
	    || dre_json_is(pf, DRE_JSON_OBJECT))
		c.consents = pf;
	// The balance and level are set, not added: a run again is the same.
	c.modified = now;
	c.balance = balance;
	c.level = level;
	c.earn = dre_arena_get(r->d.a, sizeof(*c.earn));
	if (c.earn != NULL && earned > 0) {
		c.earn[0] = (loy_earn) { loy_day(now), earned };
		c.nearn = 1;
	}
	dre_err err = loy_contact_put(r->s, b, tenant, &c, oldp);
	if (err != DRE_OK) {
		row_error(
		    st, row, "UNAVAILABLE", NULL, "%s", dre_strerror(err));
		return;
	}
	if (oldp != NULL)
		st->updated++;
	else
		st->created++;
}

// chunk_id_valid: 1 to 64 of [A-Za-z0-9._:-] (a tool's run id and row).
static bool
chunk_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char) s[i]) && !strchr("-_.:", s[i]))
			return false;
	return true;
}

static void
h_import(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	req          r;
	dre_batch   *b = NULL;
	bool         locked = false;
	import_stats st = { 0 };
	dre_buf      answer = { 0 };
	dre_err      err;
	if (!req_begin(&r, svc, call, rep))
		goto out;
	const dre_json *doc = dre_docapi_body(&r.d, NULL);
	if (doc == NULL)
		goto out;
	if (!dre_json_is(doc, DRE_JSON_ARRAY)) {
		dre_docapi_invalid(
		    &r.d, "body", "the body must be a JSON array of members");
		goto out;
	}
	int64_t first = 0;
	if (!dre_docapi_int_param(&r.d, "firstRow", 0, &first))
		goto out;
	const char *chunk = dre_rpc_param(call, "chunkId");
	if (chunk != NULL && chunk[0] == '\0')
		chunk = NULL;
	if (chunk != NULL && !chunk_id_valid(chunk)) {
		dre_docapi_invalid(&r.d, "chunkId",
		    "chunkId must be 1 to 64 letters, digits, '-', '_', '.' "
		    "or ':'");
		goto out;
	}
	loy_program p;
	err = loy_program_get(r.s, r.d.a, call->tenant, &p);
	if (err != DRE_OK || (b = dre_batch_alloc_indexed()) == NULL) {
		dre_docapi_internal(&r.d, err != DRE_OK ? err : DRE_ENOMEM);
		goto out;
	}
	pthread_mutex_lock(&r.s->mu);
	locked = true;
	// A chunk sent again (its first answer lost to a timeout) gets the
	// first answer: the counts are not doubled as "updated" rows.
	char   ckey[200];
	size_t ckl = chunk != NULL
	    ? dre_key(ckey, sizeof(ckey), 0, 3, call->tenant, "c", chunk)
	    : 0;
	if (ckl > 0) {
		char  *v = NULL;
		size_t vl = 0;
		err = dre_store_get(
		    r.s->st, LOY_CF_LEDGER, ckey, ckl, &v, &vl);
		if (err == DRE_OK) {
			dre_buf_append(&rep->body, v, vl);
			free(v);
			dre_rpc_reply_json(rep);
			goto out;
		}
		if (err != DRE_ENOTFOUND) {
			dre_docapi_internal(&r.d, err);
			goto out;
		}
	}
	int64_t now = dre_now_ms(), row = first;
	for (const dre_json *m = doc->child; m != NULL; m = m->next, row++) {
		dre_batch_savepoint(b);
		int64_t failed = st.failed;
		import_row(&r, b, &p, m, row, now, &st);
		if (st.failed != failed)
			dre_batch_rollback(b);
	}
	// One audit record for the request, not one a member: a migration
	// loads state (as it publishes no events), and a record a member
	// doubled the import's cost (50 us a row, docs/audit.md). An import
	// job's row (dre/importjob.h): its cursor rides in the batch when the
	// row was taken.
	char details[200];
	snprintf(details, sizeof details,
	    "{\"firstRow\":%lld,\"rows\":%lld,\"created\":%lld,"
	    "\"updated\":%lld,\"failed\":%lld}",
	    (long long) first, (long long) (row - first),
	    (long long) st.created, (long long) st.updated,
	    (long long) st.failed);
	err = dre_audit_change(b, r.s->st, LOY_CF_AUDIT, call->tenant,
	    call->principal, "ContactImport", NULL, "import", NULL, NULL,
	    details);
	bool in_job = err == DRE_OK && st.failed == 0 && dre_ijob_enlist(b);
	dre_buf_printf(&answer,
	    "{\"rows\":%lld,\"created\":%lld,\"updated\":%lld,\"failed\":%lld,"
	    "\"errors\":[%s]}",
	    (long long) (row - first), (long long) st.created,
	    (long long) st.updated, (long long) st.failed,
	    st.errors.len ? st.errors.data : "");
	if (err == DRE_OK && answer.oom)
		err = DRE_ENOMEM;
	if (err == DRE_OK && ckl > 0) // the answer kept with the rows
		dre_batch_put(b, r.s->st, LOY_CF_LEDGER, ckey, ckl,
		    answer.data, answer.len);
	if (err != DRE_OK
	    || (err = dre_store_write(r.s->st, b, !in_job)) != DRE_OK) {
		dre_docapi_internal(&r.d, err);
		goto out;
	}
	dre_buf_append(&rep->body, answer.data, answer.len);
	dre_rpc_reply_json(rep);
out:
	if (locked)
		pthread_mutex_unlock(&r.s->mu);
	dre_buf_free(&st.errors);
	dre_buf_free(&answer);
	dre_batch_free(b);
	dre_docapi_end(&r.d);
}

// ---- import jobs: Contacts with points and level (migration) --------------

static void
h_ijob(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_ijob_dispatch(((loy *) svc)->jobs, call, rep);
}

// import_contact runs one member through Contacts.import (the migration
// path: found by memberNumber, email or mobilePhone, balance and level
// set) as a one-member array, and reads its answer.
static dre_err
import_contact(void *svc, const dre_ijob_row *row, dre_ijob_result *res)
{
	dre_buf       body = { 0 };
	dre_ijob_call c;
	dre_rpc_reply rep;
	dre_err       out = DRE_OK;
	dre_ijob_row_key(row, "memberNumber", res);
	if (res->key[0] == 0)
		dre_ijob_row_key(row, "email", res);
	dre_buf_putc(&body, '[');
	dre_buf_append(&body, row->json, row->len);
	dre_buf_putc(&body, ']');
	if (body.oom)
		return DRE_ENOMEM;
	dre_ijob_row one = *row;
	one.json = body.data;
	one.len = body.len;
	dre_ijob_call_init(&c, &one, NULL);
	memset(&rep, 0, sizeof rep);
	h_import(svc, &c.call, &rep);
	dre_arena *a = dre_arena_alloc(0);
	dre_json  *doc = NULL;
	int        st = rep.status ? rep.status : 200;
	if (st >= 500 || a == NULL) {
		out = DRE_EUNAVAIL;
	} else if (st >= 400) {
		snprintf(res->code, sizeof res->code, "%s",
		    rep.error_code ? rep.error_code : "VALIDATION_FAILED");
		snprintf(res->message, sizeof res->message, "%s",
		    rep.error_message ? rep.error_message : "");
		snprintf(res->target, sizeof res->target, "%s",
		    rep.error_target ? rep.error_target : "");
		out = DRE_EINVAL;
	} else if (dre_json_parse(&doc, a, rep.body.data ? rep.body.data : "",
	               rep.body.len, DRE_JSON_MAX_DEPTH, NULL)
	    != DRE_OK) {
		out = DRE_EUNAVAIL;
	} else {
		const dre_json *errs = dre_json_get(doc, "errors");
		if (dre_json_is(errs, DRE_JSON_ARRAY) && errs->child != NULL) {
			const dre_json *x = errs->child;
			const dre_json *v = dre_json_get(x, "code");
			snprintf(res->code, sizeof res->code, "%s",
			    dre_json_is(v, DRE_JSON_STRING) ? v->str : "");
			v = dre_json_get(x, "message");
			snprintf(res->message, sizeof res->message, "%s",
			    dre_json_is(v, DRE_JSON_STRING) ? v->str : "");
			v = dre_json_get(x, "target");
			snprintf(res->target, sizeof res->target, "%s",
			    dre_json_is(v, DRE_JSON_STRING) ? v->str : "");
			out = DRE_EINVAL;
		} else {
			const dre_json *v = dre_json_get(doc, "created");
			res->created = dre_json_is(v, DRE_JSON_NUMBER)
			    && strcmp(v->str, "1") == 0;
		}
	}
	dre_arena_free(a);
	dre_rpc_reply_clear(&rep);
	dre_buf_free(&body);
	return out;
}

static dre_ijob_cell
contact_cell(const char *col)
{
	static const char *const raw[]
	    = { "pointsBalance", "pointsEarnedLast365", "customAttributes" };
	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
		if (strcmp(col, raw[i]) == 0)
			return DRE_IJOB_CELL_RAW;
	return DRE_IJOB_CELL_STRING;
}

const dre_ijob_entity loy_imports[] = {
	{ "Contacts", import_contact, contact_cell },
	{ NULL, NULL, NULL },
};

const dre_rpc_route loy_routes[] = {
	{ "loyalty.Program.get", h_program_get, 0 },
	{ "loyalty.Program.put", h_program_put, 0 },
	{ "loyalty.Contacts.upsert", h_create, 0 },
	{ "loyalty.Contacts.lookup", h_lookup, 0 },
	{ "loyalty.Contacts.get", h_get, 0 },
	{ "loyalty.Contacts.update", h_update, 0 },
	{ "loyalty.ContactOverview.get", h_overview, 0 },
	{ "loyalty.OrderPoints.get", h_order_points, 0 },
	{ "loyalty.Returns.create", h_return, 0 },
	{ "loyalty.RewardLookup.get", h_reward_lookup, 0 },
	{ "loyalty.Receipts.create", h_receipt, 0 },
	{ "loyalty.Contacts.import", h_import, 0 },
	{ "loyalty.ImportJobs.create", h_ijob, 0 },
	{ "loyalty.ImportJobs.submit", h_ijob, 0 },
	{ "loyalty.ImportJobs.append", h_ijob, 0 },
	{ "loyalty.ImportJobs.complete", h_ijob, 0 },
	{ "loyalty.ImportJobs.abort", h_ijob, 0 },
	{ "loyalty.ImportJobs.get", h_ijob, 0 },
	{ "loyalty.ImportJobs.list", h_ijob, 0 },
	{ "loyalty.ImportJobs.cancel", h_ijob, 0 },
	{ "loyalty.ImportJobErrors.list", h_ijob, 0 },
	{ "loyalty.ImportJobItems.list", h_ijob, 0 },
	{ "loyalty.RewardVouchers.exchange", loy_h_voucher_exchange, 0 },
	{ "loyalty.RewardVouchers.list", loy_h_voucher_list, 0 },
	{ "loyalty.RewardVouchers.available", loy_h_voucher_list, 0 },
	{ "loyalty.RewardVouchers.redeemed", loy_h_voucher_list, 0 },
	{ "loyalty.RewardVouchers.redeem", loy_h_voucher_redeem, 0 },
	{ "loyalty.PromotionAssignments.assign", loy_h_assign_create, 0 },
	{ "loyalty.PromotionAssignments.list", loy_h_assign_list, 0 },
	{ "loyalty.PromotionAssignments.delete", loy_h_assign_delete, 0 },
	{ "loyalty.PromotionAssignments.redeem", loy_h_assign_redeem, 0 },
	// Reads only (the store, no lock): answered on the nng thread, one
	// hand-off less for every evaluate of a member.
	{ "loyalty.Assignments.active", loy_h_assign_active, DRE_RPC_INLINE },
	{ "loyalty.AuditLogs.list", h_audit_list, 0 },
	{ NULL, NULL, 0 },
};
