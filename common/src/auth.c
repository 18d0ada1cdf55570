// auth.c -- Basic authentication of callers against a user table.
//
// Users come from configuration and, when enabled, the dev users of
// PRODUCT-DECISIONS §2. Every header is hostile until proven otherwise:
// bounded, strictly decoded, compared in constant time.
#include <crypt.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "dre/auth.h"
#include "dre/hmac.h"
#include "dre/log.h"

// Longest Authorization value looked at; real Basic headers are far below.
#define AUTH_HEADER_MAX 1024
#define PASSWORD_MAX    128

typedef struct {
	char     name[DRE_PRINCIPAL_MAX + 1];
	char     pass[PASSWORD_MAX + 1];
	size_t   name_len;
	size_t   pass_len;
	uint32_t roles;
	char     tenant[DRE_TENANT_MAX + 1];
	// pass is a crypt(3) hash. Hashes are slow on purpose (yescrypt,
	// bcrypt): the SHA-256 of the last password that matched is kept, so
	// a till sending it on every request pays the hash once.
	bool          hashed;
	bool          ok_valid; // under dre_auth.mu
	unsigned char ok_sha[32];
} user;

struct dre_auth {
	user           *users;
	size_t          n;
	pthread_mutex_t mu;
};

static const char *const role_names[] = {
#define DRE_ROLE_TEXT(name, text) text,
	DRE_ROLE_MAP(DRE_ROLE_TEXT)
#undef DRE_ROLE_TEXT
};
#define ROLE_COUNT (sizeof(role_names) / sizeof(role_names[0]))

static const char dev_users[]
    = "admin:admin:Admin:default,"
      "pos-reader:pos:POSReader:default,"
      "promo-manager:promo:PromotionManager:default,"
      "budget-manager:budget:BudgetManager:default,"
      "api-writer:api:PublicApiWriter:default,"
      "api-reader:reader:PublicApiReader:default,"
      "approver:approve:PromotionApprover:default,"
      "sync-service:sync:SyncService:default,"
      "local-store:local:LocalDeployment:default,"
      "md-ingester:ingest:MasterDataIngester:default";

uint32_t
dre_role_parse(const char *name)
{
	if (name == NULL)
		return 0;
	for (size_t i = 0; i < ROLE_COUNT; i++)
		if (strcmp(name, role_names[i]) == 0)
			return 1u << i;
	return 0;
}

const char *
dre_role_name(uint32_t bit)
{
	for (size_t i = 0; i < ROLE_COUNT; i++)
		if (bit == 1u << i)
			return role_names[i];
	return NULL;
}

static bool
copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

static dre_err
roles_parse(uint32_t *out, const char *s, size_t n)
{
	uint32_t roles = 0;
	size_t   i = 0;
	for (;;) {
		size_t j = i;
		while (j < n && s[j] != '+')
			j++;
		char name[32];
		// An empty name ("Admin+", "+Admin", "") is a typo, not a
		// role.
		if (!copy_field(name, sizeof(name), s + i, j - i)) {
			dre_error("auth: empty or unknown role in '%.*s'",
			    (int) n, s);
			return DRE_ECONFIG;
		}
		uint32_t bit = dre_role_parse(name);
		if (bit == 0) {
			dre_error("auth: unknown role '%s'", name);
			return DRE_ECONFIG;
		}
		roles |= bit;
		if (j == n)
			break;
		i = j + 1;
	}
	if (roles == 0)
		return DRE_ECONFIG;
	*out = roles;
	return DRE_OK;
}

// user_parse reads "user:password:Role+Role:tenant". The password is
// everything between the first and the second-to-last colon, so it may hold
// colons itself.
static dre_err
user_parse(user *u, const char *s, size_t n)
{
	const char *c1 = memchr(s, ':', n);
	const char *c3 = NULL, *c2 = NULL;
	for (const char *p = s + n; p > s; p--) {
		if (p[-1] != ':')
			continue;
		if (c3 == NULL)
			c3 = p - 1;
		else {
			c2 = p - 1;
			break;
		}
	}
	if (c1 == NULL || c2 == NULL || c2 <= c1) {
		dre_error("auth: expected user:password:Role:tenant");
		return DRE_ECONFIG;
	}
	memset(u, 0, sizeof(*u));
	if (!copy_field(u->name, sizeof(u->name), s, (size_t) (c1 - s))
	    || !copy_field(
	        u->pass, sizeof(u->pass), c1 + 1, (size_t) (c2 - c1 - 1))
	    || !copy_field(u->tenant, sizeof(u->tenant), c3 + 1,
	        (size_t) (s + n - c3 - 1))) {
		dre_error("auth: empty or too long field in user entry");
		return DRE_ECONFIG;
	}
	u->name_len = (size_t) (c1 - s);
	u->pass_len = (size_t) (c2 - c1 - 1);
	u->hashed = u->pass[0] == '$';
	return roles_parse(&u->roles, c2 + 1, (size_t) (c3 - c2 - 1));
}

static dre_err
users_add(dre_auth *a, const char *list, bool dev)
{
	const char *p = list;
	while (*p != '\0') {
		size_t n = strcspn(p, ",;");
		// Surrounding blanks are layout, not part of the entry.
		const char *b = p, *e = p + n;
		while (b < e && (*b == ' ' || *b == '\t' || *b == '\n'))
			b++;
		while (
		    e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
			e--;
		if (e > b) {
			user *us = realloc(a->users, (a->n + 1) * sizeof(*us));
			if (us == NULL)
				return DRE_ENOMEM;
			a->users = us;
			dre_err rv
			    = user_parse(&a->users[a->n], b, (size_t) (e - b));
			if (rv != DRE_OK)
				return rv;
			if (!dev && !a->users[a->n].hashed)
				dre_warn(
				    "auth: user %s has a plaintext password; "
				    "give a crypt(3) hash (mkpasswd) in "
				    "production",
				    a->users[a->n].name);
			a->n++;
		}
		p += n;
		if (*p != '\0')
			p++;
	}
	return DRE_OK;
}

dre_err
dre_auth_open(dre_auth **ap, const char *users, bool dev)
{
	dre_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return DRE_ENOMEM;
	pthread_mutex_init(&a->mu, NULL);
	dre_err rv = DRE_OK;
	// Configured users first: they win over a dev user of the same name.
	if (users != NULL)
		rv = users_add(a, users, false);
	if (rv == DRE_OK && dev)
		rv = users_add(a, dev_users, true);
	if (rv != DRE_OK) {
		dre_auth_close(a);
		return rv;
	}
	*ap = a;
	return DRE_OK;
}

void
dre_auth_close(dre_auth *a)
{
	if (a == NULL)
		return;
	// Passwords do not linger in freed memory.
	if (a->users != NULL)
		explicit_bzero(a->users, a->n * sizeof(*a->users));
	free(a->users);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

// b64_decode decodes standard base64 (padding optional) into out, which
// holds cap bytes; -1 on a bad character, bad padding or overflow.
static long
b64_decode(unsigned char *out, size_t cap, const char *s, size_t n)
{
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	size_t   o = 0;
	uint32_t acc = 0;
	int      bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char) s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (long) o;
}

// ct_eq compares a (attacker controlled) with the secret b in time that
// depends only on b's length.
static bool
ct_eq(const unsigned char *a, size_t alen, const char *b, size_t blen)
{
	unsigned diff = alen != blen;
	for (size_t i = 0; i < blen; i++) {
		unsigned char x = i < alen ? a[i] : 0;
		diff |= x ^ (unsigned char) b[i];
	}
	return diff == 0;
}

// basic_decode decodes the credentials of a Basic header into cred (cap
// bytes); -1 when it is not one.
static long
basic_decode(const char *authorization, unsigned char *cred, size_t cap)
{
	if (authorization == NULL)
		return -1;
	size_t hl = strnlen(authorization, AUTH_HEADER_MAX + 1);
	if (hl > AUTH_HEADER_MAX)
		return -1;
	const char *p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return -1;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	long cl = b64_decode(cred, cap, p, n);
	return cl > 0 ? cl : -1;
}

bool
dre_auth_basic_split(const char *authorization, char *name, size_t ucap,
    char *pass, size_t pcap)
{
	unsigned char  cred[AUTH_HEADER_MAX];
	long           cl = basic_decode(authorization, cred, sizeof(cred));
	unsigned char *colon = cl > 0 ? memchr(cred, ':', (size_t) cl) : NULL;
	size_t         ul = colon != NULL ? (size_t) (colon - cred) : 0;
	size_t         pl = colon != NULL ? (size_t) cl - ul - 1 : 0;
	bool ok = colon != NULL && ul < ucap && (pass == NULL || pl < pcap)
	    && memchr(cred, '\0', (size_t) cl) == NULL;
	if (ok) {
		memcpy(name, cred, ul);
		name[ul] = '\0';
		if (pass != NULL) {
			memcpy(pass, colon + 1, pl);
			pass[pl] = '\0';
		}
	}
	explicit_bzero(cred, sizeof(cred));
	return ok;
}

// hash_check verifies pw against u's crypt(3) hash, or against the digest
// of the last password that did.
static bool
hash_check(dre_auth *a, user *u, const unsigned char *pw, size_t pl)
{
	unsigned char d[32];
	char          phrase[PASSWORD_MAX + 1];
	bool          ok = false;

	if (pl > PASSWORD_MAX || !dre_sha256(d, pw, pl))
		return false;
	pthread_mutex_lock(&a->mu);
	ok = u->ok_valid && CRYPTO_memcmp(d, u->ok_sha, 32) == 0;
	pthread_mutex_unlock(&a->mu);
	if (ok)
		return true;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return false;
	memcpy(phrase, pw, pl);
	phrase[pl] = '\0';
	const char *h = memchr(pw, '\0', pl) == NULL
	    ? crypt_rn(phrase, u->pass, cd, (int) sizeof(*cd))
	    : NULL;
	ok = h != NULL && h[0] != '*' && strlen(h) == u->pass_len
	    && CRYPTO_memcmp(h, u->pass, u->pass_len) == 0;
	explicit_bzero(phrase, sizeof(phrase));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (ok) {
		pthread_mutex_lock(&a->mu);
		memcpy(u->ok_sha, d, 32);
		u->ok_valid = true;
		pthread_mutex_unlock(&a->mu);
	}
	return ok;
}

dre_err
dre_auth_check(
    const dre_auth *ca, const char *authorization, dre_principal *out)
{
	// The table itself is not changed; only the hash cache (under mu).
	dre_auth     *a = (dre_auth *) ca;
	unsigned char cred[AUTH_HEADER_MAX];

	if (a == NULL)
		return DRE_EAUTH;
	long cl = basic_decode(authorization, cred, sizeof(cred));
	if (cl <= 0)
		return DRE_EAUTH;
	// RFC 7617: the user-id cannot contain a colon; the password can.
	unsigned char *colon = memchr(cred, ':', (size_t) cl);
	if (colon == NULL) {
		explicit_bzero(cred, sizeof(cred));
		return DRE_EAUTH;
	}
	size_t         ul = (size_t) (colon - cred);
	unsigned char *pw = colon + 1;
	size_t         pl = (size_t) cl - ul - 1;

	// Look at every user without stopping early, so the time taken says
	// nothing about which names exist.
	user *found = NULL, *named = NULL;
	for (size_t i = 0; i < a->n; i++) {
		user *u = &a->users[i];
		bool  ok = ct_eq(cred, ul, u->name, u->name_len);
		if (ok && named == NULL)
			named = u;
		ok &= !u->hashed && ct_eq(pw, pl, u->pass, u->pass_len);
		if (ok && found == NULL)
			found = u;
	}
	if (found == NULL && named != NULL && named->hashed
	    && hash_check(a, named, pw, pl))
		found = named;
	explicit_bzero(cred, sizeof(cred));
	if (found == NULL)
		return DRE_EAUTH;
	if (out == NULL)
		return DRE_OK;
	memset(out, 0, sizeof(*out));
	memcpy(out->tenant, found->tenant, sizeof(out->tenant));
	memcpy(out->principal, found->name, sizeof(out->principal));
	out->roles = found->roles;
	return DRE_OK;
}

char *
dre_roles_text(uint32_t roles, const char *sep, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < ROLE_COUNT && o < cap; i++)
		if ((roles & (1u << i)) != 0)
			o += (size_t) snprintf(out + o, cap - o, "%s%s",
			    o > 0 ? sep : "", role_names[i]);
	return out;
}

bool
dre_auth_tenant_of(const dre_auth *a, const char *name, char *out, size_t cap)
{
	if (cap > 0)
		out[0] = '\0';
	if (a == NULL || name == NULL)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->users[i].name, name) == 0) {
			snprintf(out, cap, "%s", a->users[i].tenant);
			return true;
		}
	return false;
}

static dre_auth_event_fn event_fn;
static void             *event_arg;

void
dre_auth_event_hook(dre_auth_event_fn fn, void *arg)
{
	event_arg = arg;
	event_fn = fn;
}

void
dre_auth_event(const char *event, const char *tenant, const char *principal,
    const char *subject, const char *source)
{
	dre_info("auth-event event=%s tenant=%s principal=%s subject=%s "
	         "source=%s",
	    event, tenant != NULL ? tenant : "",
	    principal != NULL ? principal : "", subject != NULL ? subject : "",
	    source != NULL ? source : "");
	if (event_fn != NULL)
		event_fn(event_arg, event, tenant, principal, subject, source);
}
