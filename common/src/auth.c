// auth.c -- Basic authentication of callers against a user table.
//
// Users come from configuration and, when enabled, the dev users of
// PRODUCT-DECISIONS §2. Every header is hostile until proven otherwise:
// bounded, strictly decoded, compared in constant time.
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/auth.h"
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
} user;

struct dre_auth {
	user  *users;
	size_t n;
};

static const char *const role_names[] = {
#define DRE_ROLE_TEXT(name, text) text,
	DRE_ROLE_MAP(DRE_ROLE_TEXT)
#undef DRE_ROLE_TEXT
};
#define ROLE_COUNT (sizeof(role_names) / sizeof(role_names[0]))

static const char dev_users[] = "admin:admin:Admin:default,"
                                "pos-reader:pos:POSReader:default,"
                                "promo-manager:promo:PromotionManager:default,"
                                "budget-manager:budget:BudgetManager:default,"
                                "api-writer:api:PublicApiWriter:default";

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
	return roles_parse(&u->roles, c2 + 1, (size_t) (c3 - c2 - 1));
}

static dre_err
users_add(dre_auth *a, const char *list)
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
	dre_err rv = DRE_OK;
	// Configured users first: they win over a dev user of the same name.
	if (users != NULL)
		rv = users_add(a, users);
	if (rv == DRE_OK && dev)
		rv = users_add(a, dev_users);
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

dre_err
dre_auth_check(
    const dre_auth *a, const char *authorization, dre_principal *out)
{
	if (a == NULL || authorization == NULL)
		return DRE_EAUTH;
	size_t hl = strnlen(authorization, AUTH_HEADER_MAX + 1);
	if (hl > AUTH_HEADER_MAX)
		return DRE_EAUTH;
	const char *p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return DRE_EAUTH;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	unsigned char cred[AUTH_HEADER_MAX];
	long          cl = b64_decode(cred, sizeof(cred), p, n);
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
	const user *found = NULL;
	for (size_t i = 0; i < a->n; i++) {
		const user *u = &a->users[i];
		bool        ok = ct_eq(cred, ul, u->name, u->name_len);
		ok &= ct_eq(pw, pl, u->pass, u->pass_len);
		if (ok && found == NULL)
			found = u;
	}
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
