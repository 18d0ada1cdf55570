// coupon/rules.c -- the coupon rules: states, reasons, code alphabet,
// decisions, issue rate window. Pure (getrandom aside).
#include "rules.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char *const state_names[] = {
#define CP_STATE_TEXT(n) #n,
	CP_STATE_MAP(CP_STATE_TEXT)
#undef CP_STATE_TEXT
};

static const struct {
	const char *name;
	const char *text;
} reasons[] = {
#define CP_REASON_TEXT(n, text) { #n, text },
	CP_REASON_MAP(CP_REASON_TEXT)
#undef CP_REASON_TEXT
};

const char *
cp_state_name(cp_state s)
{
	return (unsigned) s < CP_NSTATES ? state_names[s] : "UNKNOWN";
}

int
cp_state_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < CP_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

bool
cp_state_terminal(cp_state s)
{
	return s == CP_REDEEMED || s == CP_EXPIRED || s == CP_CANCELLED;
}

const char *
cp_reason_name(cp_reason r)
{
	return (unsigned) r < CP_NREASONS ? reasons[r].name : "UNKNOWN";
}

const char *
cp_reason_text(cp_reason r)
{
	return (unsigned) r < CP_NREASONS ? reasons[r].text : "unknown";
}

static bool
code_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
	    || c == '_';
}

bool
cp_code_normalize(char *out, const char *in, size_t len)
{
	if (in == NULL || len == 0 || len > CP_CODE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c >= 'a' && c <= 'z')
			c = (char) (c - 'a' + 'A');
		if (!code_char(c))
			return false;
		out[i] = c;
	}
	out[len] = '\0';
	return true;
}

bool
cp_prefix_valid(const char *p)
{
	size_t n = strlen(p);
	if (n > CP_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!code_char(p[i]))
			return false;
	return true;
}

// fill_random fills b with random bytes; getrandom blocks only before the
// kernel's pool is initialised, which is long past when a service runs.
static void
fill_random(unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(b, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		b += got;
		n -= (size_t) got;
	}
}

bool
cp_code_generate(char *out, const char *prefix, int len)
{
	static const char alphabet[] = CP_ALPHABET;
	const unsigned    nsym = sizeof alphabet - 1;
	// Bytes at or above the largest multiple of 31 are redrawn, so every
	// symbol is equally likely.
	const unsigned limit = 256 - 256 % nsym;
	size_t         pl = strlen(prefix);
	unsigned char  rnd[64];
	size_t         used = sizeof rnd;

	if (len < 1 || pl + (size_t) len > CP_CODE_MAX)
		return false;
	memcpy(out, prefix, pl);
	for (int i = 0; i < len;) {
		if (used == sizeof rnd) {
			fill_random(rnd, sizeof rnd);
			used = 0;
		}
		unsigned v = rnd[used++];
		if (v >= limit)
			continue;
		out[pl + (size_t) i++] = alphabet[v % nsym];
	}
	out[pl + (size_t) len] = '\0';
	return true;
}

static int64_t
min_end(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

int64_t
cp_effective_valid_to(const cp_code_rules *c, const cp_type_rules *t)
{
	return min_end(c->valid_to, t->valid_to);
}

// window_reason checks the validity windows of the code and its type.
static cp_reason
window_reason(const cp_code_rules *c, const cp_type_rules *t, int64_t at)
{
	int64_t from
	    = c->valid_from > t->valid_from ? c->valid_from : t->valid_from;
	int64_t to = cp_effective_valid_to(c, t);
	if (from != 0 && at < from)
		return CP_R_NOT_ACTIVE_YET;
	if (to != 0 && at > to)
		return CP_R_EXPIRED;
	return CP_R_OK;
}

// terminal_reason names a terminal state.
static cp_reason
terminal_reason(const cp_code_rules *c, const cp_type_rules *t)
{
	switch (c->state) {
	case CP_CANCELLED:
		return CP_R_CANCELLED;
	case CP_EXPIRED:
		return CP_R_EXPIRED;
	case CP_REDEEMED:
		// A GENERIC code is REDEEMED once its limit is used up.
		return t->generic ? CP_R_LIMIT_REACHED : CP_R_REDEEMED;
	default:
		return CP_R_OK;
	}
}

const char *
cp_customer_of_use(const char *owner, const char *given)
{
	return given != NULL && given[0] != '\0' ? given : owner;
}

// other_customer reports whether a customer other than the personal
// code's own is named. Nobody named is not another customer: holding the
// code is the proof (PRODUCT-DECISIONS §5).
static bool
other_customer(const cp_code_rules *c, const char *customer)
{
	return c->customer[0] != '\0' && customer != NULL
	    && customer[0] != '\0' && strcmp(customer, c->customer) != 0;
}

cp_reason
cp_check_use(const cp_code_rules *c, const cp_type_rules *t, int64_t at,
    int64_t now, const char *tx, const char *customer, const cp_usage *u)
{
	cp_reason r;
	if ((r = terminal_reason(c, t)) != CP_R_OK)
		return r;
	if (!t->active)
		return CP_R_INACTIVE;
	if ((r = window_reason(c, t, at)) != CP_R_OK)
		return r;
	if (other_customer(c, customer))
		return CP_R_OTHER_CUSTOMER;
	if (c->state == CP_CREATED)
		return CP_R_NOT_ACTIVE_YET;
	if (!t->generic) {
		if (c->state == CP_RESERVED && c->res_until > now
		    && (tx == NULL || tx[0] == '\0'
		        || strcmp(tx, c->res_tx) != 0))
			return CP_R_RESERVED_BY_OTHER;
		return CP_R_OK;
	}
	if (u != NULL && u->own_hold)
		return CP_R_OK; // its slot is already counted
	if (u != NULL && u->own_redeemed)
		return CP_R_REDEEMED;
	if (t->max_redemptions > 0
	    && c->redemptions + c->held >= t->max_redemptions)
		return CP_R_LIMIT_REACHED;
	if (t->max_per_customer > 0 && customer != NULL && customer[0] != '\0'
	    && u != NULL && u->customer_uses >= t->max_per_customer)
		return CP_R_LIMIT_REACHED;
	return CP_R_OK;
}

cp_reason
cp_check_activate(const cp_code_rules *c, const cp_type_rules *t, int64_t now,
    const char *customer)
{
	cp_reason r;
	if ((r = terminal_reason(c, t)) != CP_R_OK)
		return r;
	if (other_customer(c, customer))
		return CP_R_OTHER_CUSTOMER;
	if (!t->active)
		return CP_R_INACTIVE;
	// Activating ahead of validFrom is fine (the app may show it early);
	// after the end it is pointless.
	int64_t to = cp_effective_valid_to(c, t);
	if (to != 0 && now > to)
		return CP_R_EXPIRED;
	return CP_R_OK; // CREATED, or active already
}

void
cp_birth_validity(const cp_type_rules *t, int64_t validity_days,
    int64_t issued_at, int64_t *from, int64_t *to)
{
	*from = t->valid_from;
	*to = t->valid_to;
	if (validity_days > 0) {
		int64_t end = issued_at + validity_days * 86400000LL;
		*to = min_end(*to, end);
	}
}

int64_t
cp_hold_until(int64_t now, int64_t ttl_ms, int64_t valid_to)
{
	int64_t until = now + ttl_ms;
	if (valid_to != 0 && valid_to < until)
		until = valid_to;
	return until;
}

int64_t
cp_rate_take(
    cp_rate *r, int64_t limit, int64_t want, int64_t now_ms, int64_t *retry_s)
{
	int64_t sec = now_ms / 1000, used = 0, oldest = 0;
	for (int i = 0; i < CP_RATE_BUCKETS; i++) {
		if (r->count[i] == 0 || r->sec[i] <= sec - CP_RATE_BUCKETS)
			continue; // empty or out of the window
		used += r->count[i];
		if (oldest == 0 || r->sec[i] < oldest)
			oldest = r->sec[i];
	}
	int64_t room = limit - used;
	int64_t got = want < room ? want : room;
	if (got < 0)
		got = 0;
	if (got > 0) {
		int b = (int) (sec % CP_RATE_BUCKETS);
		if (r->sec[b] != sec) {
			r->sec[b] = sec;
			r->count[b] = 0;
		}
		r->count[b] += got;
		if (oldest == 0)
			oldest = sec;
	}
	if (got < want && retry_s != NULL) {
		// The oldest second in the window leaves it first.
		int64_t wait
		    = oldest != 0 ? oldest + CP_RATE_BUCKETS - sec : 1;
		*retry_s = wait < 1 ? 1 : wait;
	}
	return got;
}
