// ident.c -- who is calling, beyond the configured Basic users: Bearer
// tokens (our own, verified with the catalog's public keys, and those of a
// configured external issuer), API keys (asked of the catalog on every
// request, so a revoked key is refused at once by every gateway), the
// token endpoint, and the limit on failed credentials.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/clock.h"
#include "dre/hash.h"
#include "dre/hmac.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/token.h"
#include "gw.h"

#define LIMIT_SLOTS 8192
#define LIMIT_PROBE 8
// The catalog is asked for its keys when a token names a key id that
// neither set has (right after a rotation), at most this often: a stream of
// made-up key ids costs the catalog 10 cheap calls a second.
#define KEYS_REFRESH_MS 100
#define LEEWAY_S        60
// Verified tokens remembered (by SHA-256), so that a till sending the same
// token for an hour pays the RSA verification once.
#define TOKEN_CACHE 1024
// Accepted API keys remembered (by SHA-256) for the lease the catalog
// grants with each acceptance (auth.api_key_lease_ms): a revocation is
// answered only once every lease granted before it has run out.
#define KEY_CACHE 1024

typedef struct {
	uint64_t tag; // hash of source and principal; 0 = free
	int64_t  first_ms; // first failure of the window
	int64_t  last_ms;
	int64_t  until_ms; // locked out until
	int64_t  fails;
} limit_slot;

// A remembered credential: a token until its exp (wall seconds, plus the
// leeway), an API key until its lease ends (monotonic milliseconds).
typedef struct {
	unsigned char digest[32];
	int64_t       until; // 0 = free
	dre_principal who;
} token_entry;

struct gw_ident {
	pthread_mutex_t  cache_mu; // both caches
	token_entry      cache[TOKEN_CACHE];
	token_entry      keys[KEY_CACHE];
	pthread_rwlock_t keys_mu;
	dre_jwks        *own; // the catalog's keys
	char             own_issuer[256];
	int64_t          own_fetched_ms;
	pthread_mutex_t  fetch_mu;
	dre_jwks        *ext; // the external issuer's keys (read-only)
	dre_jwt_rules    ext_rules;
	pthread_mutex_t  limit_mu;
	limit_slot       slots[LIMIT_SLOTS];
};

// ---------------------------------------------------------------- limit

static uint64_t
limit_tag(const char *key)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *) key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h != 0 ? h : 1;
}

// slot_of finds the slot of tag, or the one to reuse for it (free, or the
// one whose last failure is oldest). Under limit_mu.
static limit_slot *
slot_of(gw_ident *id, uint64_t tag, bool create)
{
	limit_slot *victim = NULL;
	for (size_t i = 0; i < LIMIT_PROBE; i++) {
		limit_slot *s = &id->slots[(tag + i) % LIMIT_SLOTS];
		if (s->tag == tag)
			return s;
		if (victim == NULL || s->tag == 0
		    || (victim->tag != 0 && s->last_ms < victim->last_ms))
			victim = s;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->tag = tag;
	return victim;
}

// limit_wait returns the milliseconds the pair must still wait, 0 when it
// may try.
static int64_t
limit_wait(gw_ident *id, const char *key)
{
	int64_t now = dre_mono_ms(), wait = 0;
	pthread_mutex_lock(&id->limit_mu);
	limit_slot *s = slot_of(id, limit_tag(key), false);
	if (s != NULL && s->until_ms > now)
		wait = s->until_ms - now;
	pthread_mutex_unlock(&id->limit_mu);
	return wait;
}

// burst_recorded ends the audit call of a burst: nothing waits for it.
static void
burst_recorded(void *arg, dre_err err, Dre__RpcReply *rep)
{
	(void) arg;
	if (err != DRE_OK || rep->status != 201)
		dre_warn("audit of login.failure_burst not recorded: %s",
		    err != DRE_OK ? dre_strerror(err)
		                  : "refused by the catalog");
	if (rep != NULL)
		dre_rpc_reply_msg_free(rep);
}

// burst_record records a burst of failed credentials in the audit log
// (docs/audit.md): one asynchronous call to the catalog's
// catalog.AuditLogs.record, best-effort, the request does not wait for it.
// principal is a Basic user name (its tenant when configured) or the limit
// key "source|key:<key id>" / "source|client:<client id>"; every other
// burst goes to the operator's tenant (metrics.tenant).
static void
burst_record(
    gw *g, const char *principal, bool user, const char *src, int64_t fails)
{
	char        tenant[DRE_TENANT_MAX + 1];
	const char *kind = "user", *name = principal, *bar;
	char        kbuf[16];
	if (!user && (bar = strchr(principal, '|')) != NULL) {
		const char *colon = strchr(bar + 1, ':');
		size_t kl = colon != NULL ? (size_t) (colon - bar - 1) : 0;
		if (colon != NULL && kl < sizeof kbuf) {
			memcpy(kbuf, bar + 1, kl);
			kbuf[kl] = '\0';
			kind = kbuf;
			name = colon + 1;
		}
	}
	if (!user || !dre_auth_tenant_of(g->auth, name, tenant, sizeof tenant))
		snprintf(tenant, sizeof tenant, "%s", g->cfg->metrics_tenant);
	dre_buf   body = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "entity", "Login");
	dre_jsonw_kstr(&w, "entityId", name);
	dre_jsonw_kstr(&w, "action", "failure_burst");
	dre_jsonw_kstr(&w, "actor", name);
	dre_jsonw_key(&w, "details");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "event", "login.failure_burst");
	dre_jsonw_kstr(&w, "source", src);
	dre_jsonw_kstr(&w, "credential", kind);
	dre_jsonw_kint(&w, "failures", fails);
	dre_jsonw_obj_end(&w);
	dre_jsonw_obj_end(&w);
	if (body.oom) {
		dre_buf_free(&body);
		return;
	}
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	req.method = "catalog.AuditLogs.record";
	req.tenant = tenant;
	req.principal = "gateway";
	req.has_body = true;
	req.body.data = (uint8_t *) body.data;
	req.body.len = body.len;
	dre_err err = dre_rpc_call_async(g->backends[GW_CATALOG].clients[0],
	    &req, (int) g->cfg->rpc_timeout_ms, burst_recorded, NULL);
	if (err != DRE_OK)
		dre_warn("audit of login.failure_burst not recorded: %s",
		    dre_strerror(err));
	dre_buf_free(&body);
}

static void
limit_fail(gw *g, const char *key, const char *src, const char *principal)
{
	gw_ident *id = g->ident;
	int64_t   now = dre_mono_ms();
	bool      burst = false;

	pthread_mutex_lock(&id->limit_mu);
	limit_slot *s = slot_of(id, limit_tag(key), true);
	if (now - s->first_ms > g->cfg->fail_window_ms && s->until_ms <= now
	    && s->fails < g->cfg->fail_limit) {
		s->first_ms = now;
		s->fails = 0;
	}
	s->fails++;
	s->last_ms = now;
	if (s->fails >= g->cfg->fail_limit) {
		int64_t over = s->fails - g->cfg->fail_limit;
		int64_t ms = g->cfg->lockout_ms;
		while (over-- > 0 && ms < g->cfg->lockout_max_ms)
			ms *= 2;
		if (ms > g->cfg->lockout_max_ms)
			ms = g->cfg->lockout_max_ms;
		s->until_ms = now + ms;
		burst = s->fails == g->cfg->fail_limit;
	}
	int64_t fails = s->fails;
	pthread_mutex_unlock(&id->limit_mu);
	if (burst) {
		dre_auth_event("login.failure_burst", "", "", principal, src);
		burst_record(g, principal, principal != key, src, fails);
	}
}

static void
limit_ok(gw_ident *id, const char *key)
{
	pthread_mutex_lock(&id->limit_mu);
	limit_slot *s = slot_of(id, limit_tag(key), false);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&id->limit_mu);
}

// refused_slow answers 429 when the pair (j->limit_key) is locked out.
static bool
refused_slow(gw_job *j)
{
	int64_t wait = limit_wait(j->g->ident, j->limit_key);
	if (wait <= 0)
		return false;
	char *ra = dre_arena_get(j->arena, 24);
	if (ra == NULL) {
		gw_job_oom(j);
		return true;
	}
	snprintf(ra, 24, "%lld", (long long) ((wait + 999) / 1000));
	gw_job_header_add(j, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	gw_job_error(j, 429, "RATE_LIMITED", NULL,
	    "too many failed credentials from this client; retry after %s s",
	    ra);
	return true;
}

static void
source_of(gw_job *j)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    j->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	j->src[0] = '\0';
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET,
		    &((const struct sockaddr_in *) sa)->sin_addr, j->src,
		    sizeof j->src);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *) sa)->sin6_addr, j->src,
		    sizeof j->src);
}

static void
limit_key_set(gw_job *j, const char *kind, const char *principal)
{
	int n = snprintf(
	    j->limit_key, sizeof j->limit_key, "%s|%s:", j->src, kind);
	if (n > 0 && (size_t) n < sizeof j->limit_key)
		snprintf(j->limit_key + n, sizeof j->limit_key - (size_t) n,
		    "%s", principal);
}

// ---------------------------------------------------------------- keys

// own_keys_fetch asks the catalog for its public keys (at most once a
// KEYS_REFRESH_MS); true when it got new ones.
static bool
own_keys_fetch(gw *g)
{
	gw_ident       *id = g->ident;
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__RpcReply  *rep = NULL;
	dre_jwks       *keys = NULL;
	const char     *iss = NULL;
	bool            got = false;

	pthread_mutex_lock(&id->fetch_mu);
	int64_t now = dre_mono_ms();
	if (id->own_fetched_ms != 0
	    && now - id->own_fetched_ms < KEYS_REFRESH_MS) {
		pthread_mutex_unlock(&id->fetch_mu);
		return false;
	}
	id->own_fetched_ms = now;
	req.method = "catalog.Jwks.get";
	req.tenant = "";
	req.principal = "gateway";
	if (dre_rpc_call_sync(g->backends[GW_CATALOG].clients[0], &req,
	        (int) (g->cfg->rpc_timeout_ms < 2000 ? g->cfg->rpc_timeout_ms
	                                             : 2000),
	        &rep)
	        == DRE_OK
	    && rep->status == 200
	    && dre_jwks_parse(
	           &keys, (const char *) rep->body.data, rep->body.len)
	        == DRE_OK) {
		for (size_t i = 0; i < rep->n_headers; i++)
			if (strcmp(rep->headers[i]->key, "dre-issuer") == 0)
				iss = rep->headers[i]->value;
		pthread_rwlock_wrlock(&id->keys_mu);
		dre_jwks_free(id->own);
		id->own = keys;
		snprintf(id->own_issuer, sizeof id->own_issuer, "%s",
		    iss != NULL ? iss : "dre");
		pthread_rwlock_unlock(&id->keys_mu);
		got = true;
	} else {
		dre_warn("cannot fetch the token keys from the catalog");
	}
	dre_rpc_reply_msg_free(rep);
	pthread_mutex_unlock(&id->fetch_mu);
	return got;
}

static dre_err
verify_own(gw *g, const char *token, dre_principal *who, int64_t *expp)
{
	gw_ident     *id = g->ident;
	dre_jwt_rules rules = { .audience = "dre",
		.tenant_claim = "tenant",
		.scope_prefix = "dre.",
		.leeway_s = LEEWAY_S };
	pthread_rwlock_rdlock(&id->keys_mu);
	rules.issuer = id->own_issuer;
	dre_err err = id->own != NULL ? dre_jwt_verify(id->own, &rules, token,
	                  dre_now_ms() / 1000, who, expp)
	                              : DRE_ENOTFOUND;
	pthread_rwlock_unlock(&id->keys_mu);
	return err;
}

// bearer_verify checks a token: ours, else the external issuer's, else
// ours again after asking the catalog for its keys (a key id we do not
// know).
static dre_err
bearer_verify(gw *g, const char *token, dre_principal *who, int64_t *exp)
{
	dre_err err = verify_own(g, token, who, exp);
	if (err == DRE_ENOTFOUND && g->ident->ext != NULL)
		err = dre_jwt_verify(g->ident->ext, &g->ident->ext_rules,
		    token, dre_now_ms() / 1000, who, exp);
	if (err == DRE_ENOTFOUND && own_keys_fetch(g))
		err = verify_own(g, token, who, exp);
	return err == DRE_OK ? DRE_OK : DRE_EAUTH;
}

// remembered looks credential (digest d) up in the cache tab of n entries
// (as of now, in the cache's unit): true with *who when it is there and
// good.
static bool
remembered(gw_ident *id, token_entry *tab, size_t n, const unsigned char *d,
    int64_t now, dre_principal *who)
{
	token_entry *e = &tab[(d[0] | d[1] << 8) % n];
	pthread_mutex_lock(&id->cache_mu);
	bool hit
	    = e->until != 0 && memcmp(e->digest, d, 32) == 0 && now < e->until;
	if (hit)
		*who = e->who;
	pthread_mutex_unlock(&id->cache_mu);
	return hit;
}

// remember puts credential d into its entry of tab (n entries), good until
// until (the cache's unit).
static void
remember(gw_ident *id, token_entry *tab, size_t n, const unsigned char *d,
    int64_t until, const dre_principal *who)
{
	token_entry *e = &tab[(d[0] | d[1] << 8) % n];
	pthread_mutex_lock(&id->cache_mu);
	memcpy(e->digest, d, 32);
	e->until = until;
	e->who = *who;
	pthread_mutex_unlock(&id->cache_mu);
}

// bearer is bearer_verify behind the cache of verified tokens: a token
// does not change, and a key verifies until the tokens it signed expired,
// so a verified token stays good until its exp (plus the leeway).
static dre_err
bearer(gw *g, const char *token, dre_principal *who)
{
	gw_ident     *id = g->ident;
	unsigned char d[32];
	size_t        len = strnlen(token, 8193);
	int64_t       exp = 0;

	if (len > 8192 || !dre_sha256(d, token, len))
		return bearer_verify(g, token, who, &exp);
	if (remembered(
	        id, id->cache, TOKEN_CACHE, d, dre_now_ms() / 1000, who))
		return DRE_OK;
	dre_err err = bearer_verify(g, token, who, &exp);
	if (err == DRE_OK)
		remember(id, id->cache, TOKEN_CACHE, d, exp + LEEWAY_S, who);
	return err;
}

static dre_err
file_read(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long  n;
	if (f == NULL)
		return DRE_EIO;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20)
	    || fseek(f, 0, SEEK_SET) != 0
	    || (b = malloc((size_t) n + 1)) == NULL
	    || fread(b, 1, (size_t) n, f) != (size_t) n) {
		free(b);
		fclose(f);
		return DRE_EIO;
	}
	fclose(f);
	b[n] = '\0';
	*out = b;
	*len = (size_t) n;
	return DRE_OK;
}

dre_err
gw_ident_open(gw *g)
{
	gw_ident *id = calloc(1, sizeof(*id));
	if (id == NULL)
		return DRE_ENOMEM;
	pthread_rwlock_init(&id->keys_mu, NULL);
	pthread_mutex_init(&id->cache_mu, NULL);
	pthread_mutex_init(&id->fetch_mu, NULL);
	pthread_mutex_init(&id->limit_mu, NULL);
	g->ident = id;
	const gw_cfg *c = g->cfg;
	if (c->jwt_issuer == NULL || c->jwt_issuer[0] == '\0')
		return DRE_OK;
	char   *doc = NULL;
	size_t  len = 0;
	dre_err err = DRE_OK;
	if (c->jwt_jwks_file == NULL || c->jwt_jwks_file[0] == '\0') {
		dre_error("auth.jwt.issuer needs auth.jwt.jwks_file");
		return DRE_ECONFIG;
	}
	if ((err = file_read(c->jwt_jwks_file, &doc, &len)) != DRE_OK
	    || (err = dre_jwks_parse(&id->ext, doc, len)) != DRE_OK
	    || dre_jwks_count(id->ext) == 0) {
		dre_error("auth.jwt.jwks_file %s: no RS256 key (%s)",
		    c->jwt_jwks_file, dre_strerror(err));
		free(doc);
		return DRE_ECONFIG;
	}
	free(doc);
	id->ext_rules.issuer = c->jwt_issuer;
	id->ext_rules.audience = c->jwt_audience;
	id->ext_rules.tenant_claim = c->jwt_tenant_claim;
	id->ext_rules.scope_prefix = c->jwt_scope_prefix;
	id->ext_rules.leeway_s = LEEWAY_S;
	dre_info("tokens of %s accepted (%zu key%s)", c->jwt_issuer,
	    dre_jwks_count(id->ext), dre_jwks_count(id->ext) == 1 ? "" : "s");
	return DRE_OK;
}

void
gw_ident_close(gw *g)
{
	gw_ident *id = g->ident;
	if (id == NULL)
		return;
	dre_jwks_free(id->own);
	dre_jwks_free(id->ext);
	pthread_rwlock_destroy(&id->keys_mu);
	pthread_mutex_destroy(&id->cache_mu);
	pthread_mutex_destroy(&id->fetch_mu);
	pthread_mutex_destroy(&id->limit_mu);
	free(id);
	g->ident = NULL;
}

// ---------------------------------------------------------------- requests

// unauthorized answers 401; a failure of a guessable credential (principal
// not NULL) counts against the client's limit.
static void
unauthorized(gw_job *j, const char *principal)
{
	if (principal != NULL)
		limit_fail(j->g, j->limit_key, j->src, principal);
	gw_job_header_add(j, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    "Basic realm=\"DRE\", Bearer realm=\"DRE\"");
	gw_job_error(
	    j, 401, "UNAUTHORIZED", NULL, "missing or invalid credentials");
}

// roles_refused answers 403 naming the roles the route needs.
static bool
roles_refused(gw_job *j)
{
	char need[256];
	if ((j->who.roles & j->route->roles) != 0)
		return false;
	gw_job_error(j, 403, "FORBIDDEN", NULL, "role %s required to %s %s",
	    dre_roles_text(j->route->roles, " or ", need, sizeof need),
	    j->method, j->route->pattern);
	return true;
}

static bool
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

bool
gw_authenticate(gw_job *j, const char *method, const char *url)
{
	gw         *g = j->g;
	const char *authz = gw_job_header(j, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *key = gw_job_header(j, "X-Api-Key");
	char        user[DRE_PRINCIPAL_MAX + 1];

	(void) method;
	source_of(j);
	if (key == NULL && has_prefix(url, "/api/v3/"))
		key = gw_job_header(j, "apikey");
	if (key == NULL && (j->route->auth & GW_AUTH_QUERY_KEY) != 0)
		key = MHD_lookup_connection_value(
		    j->conn, MHD_GET_ARGUMENT_KIND, "api_key");
	if (authz != NULL) {
		const char *p = authz;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "Bearer", 6) == 0
		    && (p[6] == ' ' || p[6] == '\t')) {
			p += 7;
			while (*p == ' ' || *p == '\t')
				p++;
			// A signature cannot be guessed: bad tokens are not
			// counted, so they cannot slow down good ones.
			if (bearer(g, p, &j->who) != DRE_OK) {
				unauthorized(j, NULL);
				return false;
			}
			return !roles_refused(j);
		}
		if (!dre_auth_basic_split(authz, user, sizeof user, NULL, 0))
			snprintf(user, sizeof user, "?");
		limit_key_set(j, "user", user);
		if (refused_slow(j))
			return false;
		if (dre_auth_check(g->auth, authz, &j->who) != DRE_OK) {
			unauthorized(j, user);
			return false;
		}
		limit_ok(g->ident, j->limit_key);
		return !roles_refused(j);
	}
	if (key != NULL) {
		// dre_<id>_...: its id names the key in the limit, never
		// the secret part.
		char id[20];
		snprintf(id, sizeof id, "%.16s", key);
		limit_key_set(j, "key", id);
		if (refused_slow(j))
			return false;
		if ((j->apikey = dre_arena_strdup(j->arena, key)) == NULL) {
			gw_job_oom(j);
			return false;
		}
		return true; // verified once the body is in (gw_key_verify)
	}
	limit_key_set(j, "none", "");
	gw_job_header_add(j, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    "Basic realm=\"DRE\", Bearer realm=\"DRE\"");
	gw_job_error(
	    j, 401, "UNAUTHORIZED", NULL, "missing or invalid credentials");
	return false;
}

static const char *
reply_header(const Dre__RpcReply *rep, const char *key)
{
	for (size_t i = 0; i < rep->n_headers; i++)
		if (strcmp(rep->headers[i]->key, key) == 0)
			return rep->headers[i]->value;
	return NULL;
}

void
gw_key_refused_reply(gw_job *j)
{
	// Mid-body the answer waits until the rest is read (and dropped).
	j->in_upload = j->streaming;
	if (j->key_refusal == 403)
		roles_refused(j);
	else if (j->key_refusal == 401)
		unauthorized(j, j->limit_key);
	else if (j->rep != NULL || j->rpc_err != DRE_OK)
		gw_job_reply_error(j);
	else
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "the API key cannot be checked now");
	j->in_upload = false;
}

// key_refused answers a refused key, after the route's undo when a
// streamed body had begun under it.
static void
key_refused(gw_job *j, int status)
{
	j->key_refusal = status;
	if (j->key_ok && j->on_key_refused != NULL) {
		if (j->rpc_err == DRE_OK) {
			dre_rpc_reply_msg_free(j->rep);
			j->rep = NULL;
		}
		j->on_key_refused(j);
		return;
	}
	gw_key_refused_reply(j);
}

// key_accept runs the route for the key's principal who (or refuses it).
static void
key_accept(gw_job *j, const dre_principal *who)
{
	// A streamed body's chunks all belong to the key's tenant.
	if (j->key_ok && strcmp(who->tenant, j->who.tenant) != 0) {
		key_refused(j, 401);
		return;
	}
	j->who = *who;
	// A streamed body's key is asked about again at its next chunk.
	if (j->route->body != GW_BODY_STREAM)
		j->apikey = NULL;
	limit_ok(j->g->ident, j->limit_key);
	if ((j->who.roles & j->route->roles) == 0) {
		key_refused(j, 403);
		return;
	}
	j->key_ok = true;
	j->route->fn(j);
}

static void
key_verified(gw_job *j)
{
	Dre__RpcReply *rep = j->rep;
	const char    *t, *p, *r, *lease;
	dre_principal  who;

	if (j->rpc_err != DRE_OK) {
		// Not undone: the caller may try the upload again.
		j->key_refusal = 503;
		gw_key_refused_reply(j);
		return;
	}
	t = reply_header(rep, "dre-tenant");
	p = reply_header(rep, "dre-principal");
	r = reply_header(rep, "dre-roles");
	lease = reply_header(rep, "dre-lease-ms");
	if (rep->status != 200 || t == NULL || p == NULL || r == NULL) {
		key_refused(j, 401);
		return;
	}
	memset(&who, 0, sizeof who);
	snprintf(who.tenant, sizeof who.tenant, "%s", t);
	snprintf(who.principal, sizeof who.principal, "%s", p);
	who.roles = (uint32_t) strtoul(r, NULL, 10);
	// Remembered for the lease, counted from before the question left:
	// it ends no later than the catalog's grant does.
	int64_t ms = lease != NULL ? strtoll(lease, NULL, 10) : 0;
	if (ms > 0 && j->key_hashed)
		remember(j->g->ident, j->g->ident->keys, KEY_CACHE,
		    j->key_digest, j->key_asked_ms + ms, &who);
	// The route's own call gets a fresh reply.
	dre_rpc_reply_msg_free(j->rep);
	j->rep = NULL;
	key_accept(j, &who);
}

void
gw_key_verify(gw_job *j)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	gw_ident       *id = j->g->ident;
	dre_principal   who;

	j->key_asked_ms = dre_mono_ms();
	j->key_hashed
	    = dre_sha256(j->key_digest, j->apikey, strlen(j->apikey));
	if (j->key_hashed
	    && remembered(id, id->keys, KEY_CACHE, j->key_digest,
	        j->key_asked_ms, &who)) {
		key_accept(j, &who);
		return;
	}
	req.method = "catalog.ApiKeys.verify";
	req.tenant = "";
	req.principal = "gateway";
	req.has_body = 1;
	req.body.data = (uint8_t *) j->apikey;
	req.body.len = strlen(j->apikey);
	req.has_deadline_unix_ms = 1;
	req.deadline_unix_ms = dre_now_ms() + j->g->cfg->rpc_timeout_ms;
	gw_job_call(
	    j, j->g->backends[GW_CATALOG].clients[0], &req, key_verified);
}

// ---------------------------------------------------------------- token

typedef struct {
	gw_job     *j;
	const char *v[4]; // grant_type, client_id, client_secret, scope
	bool        dup;
} form;

static const char *const form_keys[4]
    = { "grant_type", "client_id", "client_secret", "scope" };

static enum MHD_Result
form_field(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off, size_t size)
{
	form *f = cls;
	(void) kind;
	(void) filename;
	(void) content_type;
	(void) transfer_encoding;
	for (int i = 0; i < 4; i++) {
		if (strcmp(key, form_keys[i]) != 0)
			continue;
		// A value may come in pieces: append them.
		size_t have = off > 0 && f->v[i] != NULL ? strlen(f->v[i]) : 0;
		if (off == 0 && f->v[i] != NULL)
			f->dup = true; // RFC 6749 §3.2: no repeated parameter
		char *s = dre_arena_get(f->j->arena, have + size + 1);
		if (s == NULL)
			return MHD_NO;
		if (have > 0)
			memcpy(s, f->v[i], have);
		memcpy(s + have, data, size);
		s[have + size] = '\0';
		f->v[i] = s;
	}
	return MHD_YES;
}

static void
token_error(gw_job *j, int status, const char *error, const char *desc)
{
	dre_buf_reset(&j->out);
	dre_buf_printf(&j->out,
	    "{\"error\":\"%s\",\"error_description\":\"%s\"}", error, desc);
	gw_job_header_add(j, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	gw_job_respond(j, status, j->out.data, j->out.len, GW_JSON_CT);
}

static void
render_token(gw_job *j)
{
	const Dre__RpcReply *rep = j->rep;

	if (j->rpc_err != DRE_OK) {
		gw_job_reply_error(j);
		return;
	}
	if (rep->status == 401) {
		limit_fail(j->g, j->limit_key, j->src, j->limit_key);
		gw_job_header_add(j, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Basic realm=\"DRE\"");
	} else if (rep->status == 200) {
		limit_ok(j->g->ident, j->limit_key);
	}
	gw_job_header_add(j, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	gw_job_header_add(j, MHD_HTTP_HEADER_PRAGMA, "no-cache");
	gw_job_respond(j, rep->status != 0 ? rep->status : 200,
	    (const char *) rep->body.data, rep->has_body ? rep->body.len : 0,
	    GW_JSON_CT);
}

void
gw_token(gw_job *j)
{
	form        f = { j, { NULL }, false };
	const char *authz = gw_job_header(j, MHD_HTTP_HEADER_AUTHORIZATION);
	char        bid[128], bsecret[256];
	const char *id, *secret;

	struct MHD_PostProcessor *pp
	    = MHD_create_post_processor(j->conn, 1024, form_field, &f);
	if (pp == NULL) {
		token_error(j, 400, "invalid_request",
		    "the body must be application/x-www-form-urlencoded");
		return;
	}
	enum MHD_Result ok = j->body.len > 0
	    ? MHD_post_process(pp, j->body.data, j->body.len)
	    : MHD_YES;
	MHD_destroy_post_processor(pp);
	if (ok != MHD_YES || f.dup) {
		token_error(j, 400, "invalid_request",
		    "malformed or repeated form parameters");
		return;
	}
	id = f.v[1];
	secret = f.v[2];
	source_of(j);
	if (authz != NULL) {
		// RFC 6749 §2.3.1: client_id:client_secret in Basic, each
		// form-urlencoded first; one method only.
		if (f.v[2] != NULL) {
			token_error(j, 400, "invalid_request",
			    "use one client authentication method only");
			return;
		}
		if (!dre_auth_basic_split(
		        authz, bid, sizeof bid, bsecret, sizeof bsecret)) {
			bid[0] = bsecret[0] = '\0';
		}
		MHD_http_unescape(bid);
		MHD_http_unescape(bsecret);
		if (id != NULL && strcmp(id, bid) != 0) {
			token_error(j, 400, "invalid_request",
			    "client_id differs from the authenticated client");
			return;
		}
		id = bid;
		secret = bsecret;
	}
	limit_key_set(j, "client", id != NULL ? id : "");
	if (refused_slow(j)) {
		explicit_bzero(bsecret, sizeof bsecret);
		return;
	}
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__Param      pv[4], *params[4];
	size_t          n = 0;
	for (int i = 0; i < 4; i++) {
		const char *v = i == 1 ? id : i == 2 ? secret : f.v[i];
		if (v == NULL)
			continue;
		dre__param__init(&pv[n]);
		pv[n].key = (char *) form_keys[i];
		pv[n].value = (char *) v;
		params[n] = &pv[n];
		n++;
	}
	req.method = "catalog.OAuth.token";
	req.tenant = "";
	req.principal = "gateway";
	req.params = params;
	req.n_params = n;
	req.has_deadline_unix_ms = 1;
	req.deadline_unix_ms = dre_now_ms() + j->g->cfg->rpc_timeout_ms;
	gw_job_call(
	    j, j->g->backends[GW_CATALOG].clients[0], &req, render_token);
	explicit_bzero(bsecret, sizeof bsecret);
}
