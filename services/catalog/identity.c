// catalog/identity.c -- API clients (OAuth2 client credentials), API keys
// and the token signing keys, in the catalog's meta column family:
//   'C' id   an API client: {id, clientId, tenant, name, roles, expiresAt,
//            createdAt, createdBy, secretHash}
//   'K' id   an API key: {id, prefix, tenant, name, roles, expiresAt,
//            createdAt, createdBy, keyHash}
//   'J' kid  a signing key: {kid, createdAt, retiresAt, jwk (private)}
// Secrets exist in clear only in the answer that creates them; what is kept
// is a salted SHA-256 (dre/token.h): they are 256-bit random strings, so a
// slow password hash would add cost and no strength. None of these records
// travels on Kafka.
#include "identity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dre/auth.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/token.h"
#include "dre/uuid.h"

#define MINOR_VERSION 13
#define MAX_KEYS      16
#define KEY_ID_HEX    6 // bytes: an API key's id is 12 hex characters
#define CLIENT_ID_HEX 8
#define LEEWAY_S      60
#define NAME_MAX_LEN  100

typedef struct {
	char    kid[24];
	int64_t created_ms;
	int64_t retires_ms; // 0 = signs (the newest) or verifies still
	char   *priv; // private JWK JSON
	char   *pub; // public JWK JSON
} sign_key;

static struct {
	pthread_mutex_t mu;
	sign_key        keys[MAX_KEYS];
	size_t          n;
	cat_id_cfg      cfg;
} ids = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const dre_docapi_svc id_api = { "the catalog", MINOR_VERSION };

// ---------------------------------------------------------------- store

static size_t
meta_key(char *out, size_t cap, char tag, const char *id)
{
	return dre_key(out, cap, tag, 1, id);
}

static json_t *
doc_load(cat *c, char tag, const char *id)
{
	char    k[128], *v = NULL;
	size_t  kl = meta_key(k, sizeof k, tag, id), vl = 0;
	json_t *doc;

	if (kl == 0 || dre_store_get(c->st, CF_META, k, kl, &v, &vl) != DRE_OK)
		return NULL;
	doc = json_loadb(v, vl, 0, NULL);
	free(v);
	return doc;
}

static dre_err
doc_store(cat *c, char tag, const char *id, json_t *doc)
{
	char    k[128];
	size_t  kl = meta_key(k, sizeof k, tag, id);
	char   *v = json_dumps(doc, JSON_COMPACT);
	dre_err err = kl == 0 ? DRE_EINVAL : v == NULL ? DRE_ENOMEM : DRE_OK;

	if (err == DRE_OK)
		err = dre_store_put(c->st, CF_META, k, kl, v, strlen(v), true);
	free(v);
	return err;
}

static dre_err
doc_delete(cat *c, char tag, const char *id)
{
	char   k[128];
	size_t kl = meta_key(k, sizeof k, tag, id);
	return kl == 0 ? DRE_EINVAL
	               : dre_store_delete(c->st, CF_META, k, kl, true);
}

static const char *
str_of(json_t *doc, const char *key)
{
	const char *s = json_string_value(json_object_get(doc, key));
	return s != NULL ? s : "";
}

// ---------------------------------------------------------------- signing
// keys

static void
key_free(sign_key *k)
{
	free(k->priv);
	free(k->pub);
	memset(k, 0, sizeof(*k));
}

static dre_err
key_add(const char *kid, int64_t created, int64_t retires, const char *priv)
{
	sign_key *k;
	dre_err   err;

	if (ids.n >= MAX_KEYS) { // the oldest retired one goes
		key_free(&ids.keys[0]);
		memmove(&ids.keys[0], &ids.keys[1],
		    (ids.n - 1) * sizeof(ids.keys[0]));
		ids.n--;
	}
	k = &ids.keys[ids.n];
	memset(k, 0, sizeof(*k));
	snprintf(k->kid, sizeof k->kid, "%s", kid);
	k->created_ms = created;
	k->retires_ms = retires;
	if ((k->priv = strdup(priv)) == NULL)
		return DRE_ENOMEM;
	if ((err = dre_jwk_public(&k->pub, priv)) != DRE_OK) {
		key_free(k);
		return err;
	}
	ids.n++;
	return DRE_OK;
}

static dre_err
key_store(cat *c, const sign_key *k)
{
	json_t *jwk = json_loads(k->priv, 0, NULL);
	json_t *doc = json_pack("{s:s,s:I,s:I,s:o}", "kid", k->kid,
	    "createdAt", (json_int_t) k->created_ms, "retiresAt",
	    (json_int_t) k->retires_ms, "jwk", jwk);
	dre_err err
	    = doc != NULL ? doc_store(c, 'J', k->kid, doc) : DRE_ENOMEM;
	json_decref(doc);
	return err;
}

// Rotations, one at a time. ids.mu is taken only to read and to install
// keys: the JWKS route runs inline on nng's threads and must never wait for
// a key's generation or its synced writes.
static pthread_mutex_t rotate_mu = PTHREAD_MUTEX_INITIALIZER;

// key_new makes a key that signs from now on (its kid into kid_out, 24
// bytes); the current ones verify until every token they signed has
// expired. Stored before it is used: a key that signed is always on disk.
static dre_err
key_new(cat *c, char *kid_out)
{
	char     kid[24], *priv = NULL;
	int64_t  now = dre_now_ms();
	int64_t  retires = now + (ids.cfg.token_ttl_s + LEEWAY_S) * 1000;
	sign_key old[MAX_KEYS];
	size_t   nold = 0;
	dre_err  err;

	pthread_mutex_lock(&rotate_mu);
	if ((err = dre_random_hex(kid, sizeof kid, 8)) != DRE_OK
	    || (err = dre_jwk_generate(&priv, kid)) != DRE_OK)
		goto out;
	pthread_mutex_lock(&ids.mu);
	for (size_t i = 0; i < ids.n && err == DRE_OK; i++)
		if (ids.keys[i].retires_ms == 0) {
			old[nold] = ids.keys[i];
			old[nold].retires_ms = retires;
			old[nold].pub = NULL;
			if ((old[nold].priv = strdup(ids.keys[i].priv))
			    == NULL)
				err = DRE_ENOMEM;
			else
				nold++;
		}
	pthread_mutex_unlock(&ids.mu);
	for (size_t i = 0; i < nold && err == DRE_OK; i++)
		err = key_store(c, &old[i]);
	sign_key k = { .created_ms = now, .priv = priv };
	snprintf(k.kid, sizeof k.kid, "%s", kid);
	if (err == DRE_OK)
		err = key_store(c, &k);
	if (err == DRE_OK) {
		pthread_mutex_lock(&ids.mu);
		for (size_t i = 0; i < ids.n; i++)
			for (size_t j = 0; j < nold; j++)
				if (strcmp(ids.keys[i].kid, old[j].kid) == 0)
					ids.keys[i].retires_ms = retires;
		err = key_add(kid, now, 0, priv);
		pthread_mutex_unlock(&ids.mu);
	}
	if (err == DRE_OK) {
		snprintf(kid_out, 24, "%s", kid);
		dre_info("token signing key %s created", kid);
	}
out:
	pthread_mutex_unlock(&rotate_mu);
	for (size_t i = 0; i < nold; i++) {
		explicit_bzero(old[i].priv, strlen(old[i].priv));
		free(old[i].priv);
	}
	if (priv != NULL) {
		explicit_bzero(priv, strlen(priv));
		free(priv);
	}
	return err;
}

dre_err
cat_id_open(cat *c, const cat_id_cfg *cfg)
{
	char            prefix[1] = { 'J' };
	dre_store_iter *it;
	const char     *k, *v;
	size_t          kl, vl;
	dre_err         err;
	int64_t         now = dre_now_ms();

	pthread_mutex_lock(&ids.mu);
	ids.cfg = *cfg;
	if ((err = dre_store_iter_open(&it, c->st, CF_META, prefix, 1))
	    != DRE_OK) {
		pthread_mutex_unlock(&ids.mu);
		return err;
	}
	while (err == DRE_OK && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		json_t *doc = json_loadb(v, vl, 0, NULL);
		json_t *jwk = json_object_get(doc, "jwk");
		char   *priv
		    = jwk != NULL ? json_dumps(jwk, JSON_COMPACT) : NULL;
		int64_t retires = (int64_t) json_integer_value(
		    json_object_get(doc, "retiresAt"));
		if (priv != NULL && (retires == 0 || retires > now))
			err = key_add(str_of(doc, "kid"),
			    (int64_t) json_integer_value(
			        json_object_get(doc, "createdAt")),
			    retires, priv);
		else if (priv != NULL) // expired: nothing it signed is valid
			doc_delete(c, 'J', str_of(doc, "kid"));
		free(priv);
		json_decref(doc);
	}
	dre_store_iter_close(it);
	bool signing = false;
	for (size_t i = 0; i < ids.n; i++)
		signing |= ids.keys[i].retires_ms == 0;
	pthread_mutex_unlock(&ids.mu);
	char kid[24];
	if (err == DRE_OK && !signing)
		err = key_new(c, kid);
	return err;
}

void
cat_id_close(cat *c)
{
	(void) c;
	pthread_mutex_lock(&ids.mu);
	for (size_t i = 0; i < ids.n; i++)
		key_free(&ids.keys[i]);
	ids.n = 0;
	pthread_mutex_unlock(&ids.mu);
}

static void
reply_json(dre_rpc_reply *rep, int status, json_t *doc)
{
	char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (s == NULL) {
		dre_rpc_reply_error(
		    rep, 503, "UNAVAILABLE", NULL, "out of memory");
		return;
	}
	rep->status = status;
	dre_buf_reset(&rep->body);
	dre_buf_puts(&rep->body, s);
	dre_rpc_reply_json(rep);
	free(s);
}

void
h_jwks_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	json_t *keys = json_array();
	int64_t now = dre_now_ms();

	(void) svc;
	(void) call;
	pthread_mutex_lock(&ids.mu);
	for (size_t i = 0; i < ids.n; i++)
		if (ids.keys[i].retires_ms == 0
		    || ids.keys[i].retires_ms > now)
			json_array_append_new(
			    keys, json_loads(ids.keys[i].pub, 0, NULL));
	dre_rpc_reply_header(rep, "dre-issuer", ids.cfg.issuer);
	pthread_mutex_unlock(&ids.mu);
	json_t *doc = json_pack("{s:o}", "keys", keys);
	reply_json(rep, 200, doc);
	json_decref(doc);
}

void
h_signingkeys_rotate(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat *c = svc;

	// The key is the deployment's, not a tenant's: only the Admins of
	// the operator's tenant change it.
	if ((call->roles & DRE_ROLE(ADMIN)) == 0
	    || strcmp(call->tenant, ids.cfg.key_tenant) != 0) {
		dre_rpc_reply_error(rep, 403, "FORBIDDEN", NULL,
		    "role Admin of tenant %s required to rotate the signing "
		    "key",
		    ids.cfg.key_tenant);
		return;
	}
	char    kid[24];
	dre_err err = key_new(c, kid);
	json_t *doc = err == DRE_OK ? json_pack("{s:I,s:s}", "minorVersion",
	                  (json_int_t) MINOR_VERSION, "kid", kid)
	                            : NULL;
	if (err != DRE_OK) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "the catalog could not create a key: %s",
		    dre_strerror(err));
		return;
	}
	dre_auth_event("signingkey.rotated", call->tenant, call->principal,
	    str_of(doc, "kid"), "");
	reply_json(rep, 200, doc);
	json_decref(doc);
}

// ---------------------------------------------------------------- documents

static const char *const cred_fields[] = { "name", "roles", "expiresAt" };

typedef struct {
	const char *name;
	uint32_t    roles;
	int64_t     expires_ms; // 0 = never
} cred_in;

// cred_parse reads {name, roles[], expiresAt?}; false once answered 400.
static bool
cred_parse(dre_docapi_req *d, cred_in *in)
{
	const dre_json *b = dre_docapi_body(d, DRE_DOCAPI_NOT_OBJECT);
	const dre_json *v;

	memset(in, 0, sizeof(*in));
	if (b == NULL || !dre_docapi_strict(d, b, cred_fields, 3))
		return false;
	v = dre_json_get(b, "name");
	if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0
	    || v->len > NAME_MAX_LEN)
		return dre_docapi_invalid(d, "name",
		    "name must be a string of 1 to %d characters",
		    NAME_MAX_LEN);
	in->name = v->str;
	v = dre_json_get(b, "roles");
	if (!dre_json_is(v, DRE_JSON_ARRAY) || v->len == 0)
		return dre_docapi_invalid(d, "roles",
		    "roles must be a non-empty array of role names");
	for (const dre_json *r = v->child; r != NULL; r = r->next) {
		uint32_t bit = dre_json_is(r, DRE_JSON_STRING)
		    ? dre_role_parse(r->str)
		    : 0;
		if (bit == 0)
			return dre_docapi_invalid(d, "roles",
			    "unknown role '%s'",
			    dre_json_is(r, DRE_JSON_STRING) ? r->str : "?");
		in->roles |= bit;
	}
	v = dre_json_get(b, "expiresAt");
	if (!dre_json_is_null(v)) {
		if (!dre_json_is(v, DRE_JSON_STRING)
		    || dre_time_parse(&in->expires_ms, v->str, v->len)
		        != DRE_OK)
			return dre_docapi_invalid(d, "expiresAt",
			    "expiresAt must be an ISO-8601 date-time");
		if (in->expires_ms <= dre_now_ms())
			return dre_docapi_invalid(
			    d, "expiresAt", "expiresAt must be in the future");
	}
	return true;
}

static json_t *
roles_json(uint32_t roles)
{
	json_t *a = json_array();
	for (uint32_t bit = 1; bit != 0; bit <<= 1)
		if ((roles & bit) != 0 && dre_role_name(bit) != NULL)
			json_array_append_new(
			    a, json_string(dre_role_name(bit)));
	return a;
}

static uint32_t
roles_of(json_t *doc)
{
	uint32_t roles = 0;
	size_t   i;
	json_t  *v;
	json_array_foreach(json_object_get(doc, "roles"), i, v) roles
	    |= dre_role_parse(json_string_value(v));
	return roles;
}

static json_t *
time_json(int64_t ms)
{
	char      buf[40];
	dre_buf   b = { 0 };
	dre_jsonw w;
	if (ms == 0)
		return json_null();
	dre_jsonw_init(&w, &b);
	dre_jsonw_time(&w, ms);
	snprintf(buf, sizeof buf, "%.*s", b.len >= 2 ? (int) b.len - 2 : 0,
	    b.data != NULL ? b.data + 1 : "");
	dre_buf_free(&b);
	return json_string(buf);
}

// expired tells whether the record's expiresAt has passed.
static bool
expired(json_t *doc)
{
	const char *e = json_string_value(json_object_get(doc, "expiresAt"));
	int64_t     ms = 0;
	return e != NULL
	    && (dre_time_parse(&ms, e, strlen(e)) != DRE_OK
	        || ms <= dre_now_ms());
}

// public_doc answers doc without what is not to be shown: the hashes and
// the tenant (the caller's own).
static void
public_doc(dre_docapi_req *d, int status, json_t *doc)
{
	json_t *o = json_deep_copy(doc);
	json_object_del(o, "secretHash");
	json_object_del(o, "keyHash");
	json_object_del(o, "tenant");
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL) {
		dre_docapi_internal(d, DRE_ENOMEM);
		return;
	}
	dre_docapi_reply_doc(d, status, s, strlen(s));
	free(s);
}

// ---------------------------------------------------------------- CRUD

typedef struct {
	char        tag; // 'C' or 'K'
	const char *what; // "API client"
	const char *event; // "apiclient" / "apikey"
} kind;

static const kind k_client = { 'C', "API client", "apiclient" };
static const kind k_key = { 'K', "API key", "apikey" };

static void
do_create(
    const kind *k, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat           *c = svc;
	dre_docapi_req d;
	cred_in        in;
	char           id[40], secret[DRE_SECRET_LEN + 8], shown[96];
	char           hash[DRE_SECRET_HASH_LEN + 1];
	dre_err        err;

	if (!dre_docapi_begin(&d, &id_api, call, rep) || !cred_parse(&d, &in))
		goto out;
	if (k->tag == 'C') {
		memcpy(id, "dre-", 4);
		err = dre_random_hex(id + 4, sizeof id - 4, CLIENT_ID_HEX);
	} else {
		err = dre_random_hex(id, sizeof id, KEY_ID_HEX);
	}
	if (err == DRE_OK)
		err = dre_random_b64url(secret, sizeof secret, 32);
	// An API key carries its id, so that it is found without a scan:
	// dre_<id>_<secret>; the hash covers the whole key.
	if (k->tag == 'K')
		snprintf(shown, sizeof shown, "dre_%s_%s", id, secret);
	else
		snprintf(shown, sizeof shown, "%s", secret);
	if (err == DRE_OK)
		err = dre_secret_hash(hash, sizeof hash, shown);
	if (err != DRE_OK) {
		dre_docapi_internal(&d, err);
		goto out;
	}
	json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:s,s:s}", "id", id,
	    "tenant", call->tenant, "name", in.name, "roles",
	    roles_json(in.roles), "expiresAt", time_json(in.expires_ms),
	    "createdAt", time_json(dre_now_ms()), "createdBy", call->principal,
	    k->tag == 'C' ? "secretHash" : "keyHash", hash);
	char    prefix[48];
	snprintf(prefix, sizeof prefix, "dre_%s_", id);
	if (k->tag == 'C')
		json_object_set_new(doc, "clientId", json_string(id));
	else
		json_object_set_new(doc, "prefix", json_string(prefix));
	pthread_mutex_lock(&c->mu);
	err = doc_store(c, k->tag, id, doc);
	pthread_mutex_unlock(&c->mu);
	if (err != DRE_OK) {
		json_decref(doc);
		dre_docapi_internal(&d, err);
		goto out;
	}
	char ev[40];
	snprintf(ev, sizeof ev, "%s.created", k->event);
	dre_auth_event(ev, call->tenant, call->principal, id, "");
	// The secret is shown here, once.
	json_object_set_new(
	    doc, k->tag == 'C' ? "clientSecret" : "key", json_string(shown));
	public_doc(&d, 200, doc);
	json_decref(doc);
out:
	explicit_bzero(secret, sizeof secret);
	explicit_bzero(shown, sizeof shown);
	dre_docapi_end(&d);
}

// find loads the record id of the caller's tenant; NULL (404 answered)
// when there is none.
static json_t *
find(const kind *k, dre_docapi_req *d, cat *c)
{
	const char *id = dre_rpc_param(d->call, "id");
	json_t     *doc = id != NULL ? doc_load(c, k->tag, id) : NULL;

	if (doc != NULL && strcmp(str_of(doc, "tenant"), d->call->tenant) == 0)
		return doc;
	json_decref(doc);
	dre_rpc_reply_error(d->rep, 404, "NOT_FOUND", "id", "no %s '%s'",
	    k->what, id != NULL ? id : "");
	return NULL;
}

// lease_of is the lease of an accepted key: auth.api_key_lease_ms, ending
// no later than the key's expiresAt.
static int64_t
lease_of(json_t *doc)
{
	int64_t     lease = ids.cfg.key_lease_ms;
	const char *e = json_string_value(json_object_get(doc, "expiresAt"));
	int64_t     at = 0;
	if (lease > 0 && e != NULL
	    && dre_time_parse(&at, e, strlen(e)) == DRE_OK) {
		int64_t left = at - dre_now_ms();
		if (left < lease)
			lease = left;
	}
	return lease;
}

// answer_after_leases answers a key's revocation (rep, complete) once
// every lease granted before it was written has run out. A key accepted
// with a lease (dre-lease-ms) may be used by a gateway without asking again
// until it ends, counted from before the gateway asked; a check that read
// the store before the revocation's write was done (else it saw the key
// revoked) began before now, so its lease ends within a lease from now --
// also one granted by this process's previous run. So a revocation
// answered then is refused by every gateway's next request. No thread
// waits (dre_rpc_answer_after), unless the call cannot be taken over.
static void
answer_after_leases(const dre_rpc_call *call, dre_rpc_reply *rep)
{
	int              ms = (int) ids.cfg.key_lease_ms;
	dre_rpc_pending *p = ms > 0 ? dre_rpc_reply_later(call) : NULL;
	if (p != NULL)
		dre_rpc_answer_after(p, rep, ms);
	else
		dre_sleep_ms(ms);
}

static void
do_get(const kind *k, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_docapi_req d;
	json_t        *doc;

	if (dre_docapi_begin(&d, &id_api, call, rep)
	    && (doc = find(k, &d, svc)) != NULL) {
		public_doc(&d, 200, doc);
		json_decref(doc);
	}
	dre_docapi_end(&d);
}

static void
do_delete(
    const kind *k, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat           *c = svc;
	dre_docapi_req d;
	json_t        *doc;

	if (dre_docapi_begin(&d, &id_api, call, rep)
	    && (doc = find(k, &d, svc)) != NULL) {
		pthread_mutex_lock(&c->mu);
		dre_err err = doc_delete(c, k->tag, str_of(doc, "id"));
		pthread_mutex_unlock(&c->mu);
		if (err != DRE_OK) {
			dre_docapi_internal(&d, err);
		} else {
			char ev[40];
			snprintf(ev, sizeof ev, "%s.%s", k->event,
			    k->tag == 'K' ? "revoked" : "deleted");
			dre_auth_event(ev, call->tenant, call->principal,
			    str_of(doc, "id"), "");
			rep->status = 200;
			if (k->tag == 'K')
				answer_after_leases(call, rep);
		}
		json_decref(doc);
	}
	dre_docapi_end(&d);
}

static void
do_list(const kind *k, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat            *c = svc;
	dre_docapi_req  d;
	dre_store_iter *it = NULL;
	const char     *key, *v;
	size_t          kl, vl;
	dre_buf         items = { 0 };
	int64_t         n = 0;

	if (!dre_docapi_begin(&d, &id_api, call, rep))
		goto out;
	if (dre_store_iter_open(&it, c->st, CF_META, &k->tag, 1) != DRE_OK) {
		dre_docapi_internal(&d, DRE_ESTORE);
		goto out;
	}
	while (dre_store_iter_next(it, &key, &kl, &v, &vl)) {
		json_t *doc = json_loadb(v, vl, 0, NULL);
		if (doc != NULL
		    && strcmp(str_of(doc, "tenant"), call->tenant) == 0) {
			json_object_del(doc, "secretHash");
			json_object_del(doc, "keyHash");
			json_object_del(doc, "tenant");
			char *s = json_dumps(doc, JSON_COMPACT);
			if (s != NULL) {
				if (n++ > 0)
					dre_buf_putc(&items, ',');
				dre_buf_puts(&items, s);
				free(s);
			}
		}
		json_decref(doc);
	}
	dre_store_iter_close(it);
	dre_docapi_reply_list(&d, n, &items);
out:
	dre_buf_free(&items);
	dre_docapi_end(&d);
}

#define CRUD(name, k)                                                         \
	void h_##name##_create(                                               \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		do_create(&k, svc, call, rep);                                \
	}                                                                     \
	void h_##name##_list(                                                 \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		do_list(&k, svc, call, rep);                                  \
	}                                                                     \
	void h_##name##_get(                                                  \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		do_get(&k, svc, call, rep);                                   \
	}                                                                     \
	void h_##name##_delete(                                               \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		do_delete(&k, svc, call, rep);                                \
	}

CRUD(apiclients, k_client)
CRUD(apikeys, k_key)

// ---------------------------------------------------------------- verify

void
h_apikeys_verify(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	char    key[128], id[2 * KEY_ID_HEX + 1], roles[16];
	json_t *doc = NULL;

	// dre_<12 hex>_<43 base64url>
	if (call->body_len != 4 + 2 * KEY_ID_HEX + 1 + DRE_SECRET_LEN
	    || memcmp(call->body, "dre_", 4) != 0
	    || call->body[4 + 2 * KEY_ID_HEX] != '_')
		goto refused;
	memcpy(key, call->body, call->body_len);
	key[call->body_len] = '\0';
	memcpy(id, key + 4, 2 * KEY_ID_HEX);
	id[2 * KEY_ID_HEX] = '\0';
	doc = doc_load(svc, 'K', id);
	if (doc == NULL || !dre_secret_verify(key, str_of(doc, "keyHash"))
	    || expired(doc))
		goto refused;
	snprintf(roles, sizeof roles, "%u", (unsigned) roles_of(doc));
	dre_rpc_reply_header(rep, "dre-tenant", str_of(doc, "tenant"));
	char principal[DRE_PRINCIPAL_MAX + 1];
	snprintf(principal, sizeof principal, "apikey:%s", id);
	dre_rpc_reply_header(rep, "dre-principal", principal);
	dre_rpc_reply_header(rep, "dre-roles", roles);
	int64_t lease = lease_of(doc);
	if (lease > 0) {
		char lb[24];
		snprintf(lb, sizeof lb, "%lld", (long long) lease);
		dre_rpc_reply_header(rep, "dre-lease-ms", lb);
	}
	rep->status = 200;
	explicit_bzero(key, sizeof key);
	json_decref(doc);
	return;
refused:
	explicit_bzero(key, sizeof key);
	json_decref(doc);
	dre_rpc_reply_error(
	    rep, 401, "UNAUTHORIZED", NULL, "unknown, revoked or expired key");
}

// ---------------------------------------------------------------- token

// oauth_error answers an RFC 6749 §5.2 error document.
static void
oauth_error(
    dre_rpc_reply *rep, int status, const char *error, const char *description)
{
	json_t *doc = json_pack(
	    "{s:s,s:s}", "error", error, "error_description", description);
	reply_json(rep, status, doc);
	json_decref(doc);
}

// scope_roles reads a requested scope ("dre.Admin dre.POSReader"); the
// roles must be the client's. Returns false on one that is not.
static bool
scope_roles(const char *scope, uint32_t granted, uint32_t *out)
{
	*out = 0;
	while (*scope != '\0') {
		size_t n = strcspn(scope, " ");
		char   name[48];
		if (n > 4 && n - 4 < sizeof name
		    && strncmp(scope, "dre.", 4) == 0) {
			memcpy(name, scope + 4, n - 4);
			name[n - 4] = '\0';
			uint32_t bit = dre_role_parse(name);
			if (bit == 0 || (granted & bit) == 0)
				return false;
			*out |= bit;
		} else if (n > 0) {
			return false;
		}
		scope += n;
		while (*scope == ' ')
			scope++;
	}
	if (*out == 0)
		*out = granted;
	return true;
}

void
h_oauth_token(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	const char *grant = dre_rpc_param(call, "grant_type");
	const char *id = dre_rpc_param(call, "client_id");
	const char *secret = dre_rpc_param(call, "client_secret");
	const char *scope = dre_rpc_param(call, "scope");
	json_t     *client = NULL, *claims = NULL, *doc = NULL;
	char       *claims_s = NULL, *token = NULL, *priv = NULL;
	char        scope_s[512], jti[37];
	uint32_t    roles;
	int64_t     now = dre_now_ms() / 1000;

	if (grant == NULL || grant[0] == '\0') {
		oauth_error(
		    rep, 400, "invalid_request", "grant_type is missing");
		return;
	}
	if (strcmp(grant, "client_credentials") != 0) {
		oauth_error(rep, 400, "unsupported_grant_type",
		    "only client_credentials is supported");
		return;
	}
	if (id == NULL || secret == NULL || id[0] == '\0' || strlen(id) > 64) {
		oauth_error(rep, 401, "invalid_client",
		    "client authentication failed");
		return;
	}
	client = doc_load(svc, 'C', id);
	if (client == NULL
	    || !dre_secret_verify(secret, str_of(client, "secretHash"))
	    || expired(client)) {
		json_decref(client);
		oauth_error(rep, 401, "invalid_client",
		    "client authentication failed");
		return;
	}
	if (!scope_roles(
	        scope != NULL ? scope : "", roles_of(client), &roles)) {
		json_decref(client);
		oauth_error(rep, 400, "invalid_scope",
		    "the scope asks for a role the client does not have");
		return;
	}
	size_t o = 0;
	scope_s[0] = '\0';
	for (uint32_t bit = 1; bit != 0; bit <<= 1)
		if ((roles & bit) != 0 && dre_role_name(bit) != NULL)
			o += (size_t) snprintf(scope_s + o, sizeof scope_s - o,
			    "%sdre.%s", o > 0 ? " " : "", dre_role_name(bit));
	dre_uuid_v4(jti);
	pthread_mutex_lock(&ids.mu);
	for (size_t i = ids.n; i-- > 0;)
		if (ids.keys[i].retires_ms == 0) {
			priv = strdup(ids.keys[i].priv);
			break;
		}
	int64_t ttl = ids.cfg.token_ttl_s;
	claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "iss",
	    ids.cfg.issuer, "aud", "dre", "sub", id, "client_id", id, "tenant",
	    str_of(client, "tenant"), "iat", (json_int_t) now, "exp",
	    (json_int_t) (now + ttl), "jti", jti, "scope", scope_s);
	pthread_mutex_unlock(&ids.mu);
	claims_s = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
	if (priv == NULL || claims_s == NULL
	    || dre_jwt_sign(&token, priv, claims_s) != DRE_OK) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "the catalog could not sign a token");
		goto out;
	}
	doc = json_pack("{s:s,s:s,s:I,s:s}", "access_token", token,
	    "token_type", "Bearer", "expires_in", (json_int_t) ttl, "scope",
	    scope_s);
	reply_json(rep, 200, doc);
	dre_auth_event("token.issued", str_of(client, "tenant"), id, jti, "");
out:
	if (priv != NULL) {
		explicit_bzero(priv, strlen(priv));
		free(priv);
	}
	free(token);
	free(claims_s);
	json_decref(doc);
	json_decref(claims);
	json_decref(client);
}
