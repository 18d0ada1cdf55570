// reporting/handlers.c -- report queries (DRE-SPEC §10): PromotionPerformance
// from the reporting service's own aggregates of confirmed sales,
// BudgetUtilization from the budget service's budgets plus the burn rate of
// those aggregates; JSON or CSV (?format=csv).
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apply.h"
#include "dre/arena.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/money.h"

#define MAX_ROWS    100000
#define MAX_LOOKUPS 200
#define BURN_DAYS   7
#define CSV_CT      "text/csv; charset=utf-8"
#define DAY_MS      (24LL * 3600 * 1000)

// ---- output: one table, JSON or CSV -------------------------------------

typedef enum { COL_STR, COL_INT, COL_DEC, COL_TIME, COL_PCT } col_type;

typedef struct {
	const char *name;
	col_type    type;
} col;

typedef struct {
	bool       csv;
	dre_buf   *out;
	dre_jsonw  w;
	const col *cols;
	size_t     ncols;
	size_t     nrows;
} table;

// A cell: a string (NULL = null) or an integer, per its column's type.
typedef struct {
	const char *s;
	int64_t     i;
	bool        null;
} cell;

static void
csv_str(dre_buf *b, const char *s)
{
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
		dre_buf_puts(b, s);
		return;
	}
	dre_buf_putc(b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			dre_buf_putc(b, '"');
		dre_buf_putc(b, *s);
	}
	dre_buf_putc(b, '"');
}

static void
table_begin(
    table *t, dre_buf *out, bool csv, bool list, const col *cols, size_t ncols)
{
	t->csv = csv;
	t->out = out;
	t->cols = cols;
	t->ncols = ncols;
	t->nrows = 0;
	if (csv) {
		for (size_t i = 0; i < ncols; i++) {
			if (i > 0)
				dre_buf_putc(out, ',');
			dre_buf_puts(out, cols[i].name);
		}
		dre_buf_puts(out, "\r\n");
		return;
	}
	dre_jsonw_init(&t->w, out);
	if (list) {
		dre_jsonw_obj_begin(&t->w);
		dre_jsonw_key(&t->w, "value");
		dre_jsonw_arr_begin(&t->w);
	}
}

static void
table_row(table *t, const cell *c)
{
	char num[40];
	t->nrows++;
	if (!t->csv)
		dre_jsonw_obj_begin(&t->w);
	for (size_t i = 0; i < t->ncols; i++) {
		const col *k = &t->cols[i];
		if (t->csv) {
			if (i > 0)
				dre_buf_putc(t->out, ',');
			if (c[i].null)
				continue;
			switch (k->type) {
			case COL_STR:
				csv_str(t->out, c[i].s);
				break;
			case COL_INT:
				dre_buf_i64(t->out, c[i].i);
				break;
			case COL_DEC:
			case COL_PCT:
				dre_decimal_format(num, c[i].i, 2);
				dre_buf_puts(t->out, num);
				break;
			case COL_TIME:
				dre_time_format(num, c[i].i);
				dre_buf_puts(t->out, num);
				break;
			}
			continue;
		}
		dre_jsonw_key(&t->w, k->name);
		if (c[i].null || (k->type == COL_STR && c[i].s == NULL)) {
			dre_jsonw_null(&t->w);
			continue;
		}
		switch (k->type) {
		case COL_STR:
			dre_jsonw_str(&t->w, c[i].s);
			break;
		case COL_INT:
			dre_jsonw_int(&t->w, c[i].i);
			break;
		case COL_DEC:
		case COL_PCT:
			dre_jsonw_decimal(&t->w, c[i].i, 2);
			break;
		case COL_TIME:
			dre_jsonw_time(&t->w, c[i].i);
			break;
		}
	}
	if (t->csv)
		dre_buf_puts(t->out, "\r\n");
	else
		dre_jsonw_obj_end(&t->w);
}

static void
table_end(table *t, bool list)
{
	if (t->csv || !list)
		return;
	dre_jsonw_arr_end(&t->w);
	dre_jsonw_kint(&t->w, "count", (int64_t) t->nrows);
	dre_jsonw_obj_end(&t->w);
}

static void
reply_table(dre_rpc_reply *rep, bool csv)
{
	rep->status = 200;
	rep->content_type = csv ? CSV_CT : "application/json";
}

// ---- parameters -----------------------------------------------------------

typedef struct {
	bool        csv;
	const char *from, *to; // YYYY-MM-DD, inclusive
	const char *channel;
	const char *pos_group;
	bool        by_day, by_channel, by_pos_group;
} query;

static bool
is_day(const char *s)
{
	int64_t ms;
	return strlen(s) == 10 && s[4] == '-' && s[7] == '-'
	    && dre_time_parse(&ms, s, 10) == DRE_OK;
}

static bool
query_parse(const dre_rpc_call *call, dre_rpc_reply *rep, query *q)
{
	memset(q, 0, sizeof(*q));
	const char *f = dre_rpc_param(call, "format");
	if (f == NULL)
		f = dre_rpc_param(call, "$format");
	if (f != NULL && strcasecmp(f, "csv") != 0
	    && strcasecmp(f, "json") != 0) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "format",
		    "format must be json or csv");
		return false;
	}
	q->csv = f != NULL && strcasecmp(f, "csv") == 0;
	q->from = dre_rpc_param(call, "from");
	q->to = dre_rpc_param(call, "to");
	if ((q->from && !is_day(q->from)) || (q->to && !is_day(q->to))) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED",
		    q->from && !is_day(q->from) ? "from" : "to",
		    "from and to are days: YYYY-MM-DD");
		return false;
	}
	q->channel = dre_rpc_param(call, "channel");
	q->pos_group = dre_rpc_param(call, "posGroupId");
	const char *g = dre_rpc_param(call, "groupBy");
	if (g != NULL) {
		char buf[128], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", g);
		for (char *t = strtok_r(buf, ",", &save); t != NULL;
		     t = strtok_r(NULL, ",", &save)) {
			if (strcmp(t, "day") == 0)
				q->by_day = true;
			else if (strcmp(t, "channel") == 0)
				q->by_channel = true;
			else if (strcmp(t, "posGroup") == 0
			    || strcmp(t, "posGroupId") == 0)
				q->by_pos_group = true;
			else {
				dre_rpc_reply_error(rep, 400,
				    "VALIDATION_FAILED", "groupBy",
				    "groupBy takes day, channel, posGroup");
				return false;
			}
		}
	}
	return true;
}

// ---- PromotionPerformance -------------------------------------------------

typedef struct {
	const char *promotion_id, *day, *channel, *pos_group, *currency;
	const char *name, *type, *status;
	int64_t     count, amount, first, last;
} perf_row;

static const col perf_cols[] = {
	{ "promotionId", COL_STR },
	{ "promotionName", COL_STR },
	{ "promotionStatus", COL_STR },
	{ "promotionType", COL_STR },
	{ "applicationsCount", COL_INT },
	{ "totalDiscountGiven", COL_DEC },
	{ "avgDiscountPerTx", COL_DEC },
	{ "currency", COL_STR },
	{ "firstAppliedAt", COL_TIME },
	{ "lastAppliedAt", COL_TIME },
	{ "day", COL_STR },
	{ "channel", COL_STR },
	{ "posGroupId", COL_STR },
};

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL)
	    || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

// client_call calls service method on the lazily opened client.
static dre_err
client_call(rep_svc *s, bool budget, const char *method, const char *tenant,
    const char *id, Dre__RpcReply **repp)
{
	pthread_mutex_lock(&s->cli_mu);
	dre_rpc_client **c = budget ? &s->budget : &s->catalog;
	if (*c == NULL
	    && dre_rpc_client_open(c, budget ? s->budget_url : s->catalog_url)
	        != DRE_OK) {
		pthread_mutex_unlock(&s->cli_mu);
		return DRE_EUNAVAIL;
	}
	dre_rpc_client *cli = *c;
	pthread_mutex_unlock(&s->cli_mu);
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	Dre__Param      p1 = DRE__PARAM__INIT, p2 = DRE__PARAM__INIT;
	Dre__Param     *params[2] = { &p1, &p2 };
	rq.method = (char *) method;
	rq.tenant = (char *) tenant;
	rq.principal = "reporting";
	p1.key = id != NULL ? "id" : "$top";
	p1.value = id != NULL ? (char *) id : "1000";
	rq.params = params;
	rq.n_params = 1;
	return dre_rpc_call_sync(cli, &rq, s->rpc_timeout_ms, repp);
}

// promo_status asks the catalog for a promotion's status (NULL when it
// cannot say: deleted, or the catalog is away).
static const char *
promo_status(rep_svc *s, dre_arena *a, const char *tenant, const char *id)
{
	Dre__RpcReply *rep = NULL;
	const char    *st = NULL;
	if (client_call(s, false, "catalog.Promotions.get", tenant, id, &rep)
	    != DRE_OK)
		return NULL;
	if (rep->status == 200 && rep->has_body) {
		dre_json *root = NULL;
		if (dre_json_parse(&root, a, (const char *) rep->body.data,
		        rep->body.len, DRE_JSON_MAX_DEPTH, NULL)
		    == DRE_OK) {
			const dre_json *v = dre_json_get(root, "status");
			if (dre_json_is(v, DRE_JSON_STRING))
				st = v->str;
		}
	}
	dre_rpc_reply_msg_free(rep);
	return st;
}

// key_parts splits a key (after the prefix byte) into its \0-separated
// strings, copied into a.
static size_t
key_parts(dre_arena *a, const char *k, size_t kl, char **parts, size_t max)
{
	size_t n = 0, start = 1;
	for (size_t i = 1; i <= kl && n < max; i++)
		if (i == kl || k[i] == '\0') {
			parts[n++]
			    = dre_arena_strndup(a, k + start, i - start);
			start = i + 1;
		}
	return n;
}

static void
perf(rep_svc *s, dre_docapi_req *d, bool one)
{
	const dre_rpc_call *call = d->call;
	dre_rpc_reply      *rep = d->rep;
	dre_arena          *a = d->a;
	query               q;
	if (!query_parse(call, rep, &q))
		return;
	const char *id = one ? dre_rpc_param(call, "id") : NULL;
	if (one && (id == NULL || id[0] == '\0')) {
		dre_rpc_reply_error(rep, 400, "VALIDATION_FAILED", "id",
		    "a promotion id is required");
		return;
	}
	if (one)
		q.by_day = q.by_channel = q.by_pos_group = false;
	perf_row   *rows = NULL;
	size_t      nrows = 0, cap = 0, first_of_promo = 0;
	const char *pp[2] = { call->tenant, id };
	char        prefix[512];
	size_t      pl = rep_key(prefix, sizeof(prefix), 'p', pp, one ? 2 : 1);
	if (pl == 0) {
		dre_rpc_reply_error(
		    rep, 400, "VALIDATION_FAILED", "id", "too long");
		return;
	}
	prefix[pl++] = '\0';
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, s->st, REP_CF_AGG, prefix, pl)
	    != DRE_OK) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL, "store");
		return;
	}
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		char *p[5];
		if (key_parts(a, k, kl, p, 5) != 5)
			continue;
		const char *day = p[2], *chan = p[3][0] ? p[3] : NULL,
		           *pg = p[4][0] ? p[4] : NULL;
		if ((q.from && strcmp(day, q.from) < 0)
		    || (q.to && strcmp(day, q.to) > 0)
		    || (q.channel
		        && (chan == NULL || strcasecmp(chan, q.channel) != 0))
		    || (q.pos_group
		        && (pg == NULL || strcmp(pg, q.pos_group))))
			continue;
		Dre__Aggregate *ag
		    = dre__aggregate__unpack(NULL, vl, (const uint8_t *) v);
		if (ag == NULL)
			continue;
		if (nrows == 0 || strcmp(rows[nrows - 1].promotion_id, p[1]))
			first_of_promo = nrows;
		perf_row  want = { p[1], q.by_day ? day : NULL,
                        q.by_channel ? chan : NULL, q.by_pos_group ? pg : NULL,
			 dre_arena_strdup(a, ag->currency), NULL, NULL, NULL, 0,
			 0, ag->first_at, ag->last_at };
		perf_row *r = NULL;
		for (size_t i = first_of_promo; i < nrows && r == NULL; i++)
			if (same(rows[i].day, want.day)
			    && same(rows[i].channel, want.channel)
			    && same(rows[i].pos_group, want.pos_group)
			    && same(rows[i].currency, want.currency))
				r = &rows[i];
		if (r == NULL && nrows < MAX_ROWS) {
			if (nrows == cap) {
				cap = cap ? cap * 2 : 64;
				perf_row *nr
				    = realloc(rows, cap * sizeof(*nr));
				if (nr == NULL) {
					dre__aggregate__free_unpacked(
					    ag, NULL);
					break;
				}
				rows = nr;
			}
			r = &rows[nrows++];
			*r = want;
		}
		if (r != NULL) {
			r->count += ag->count;
			r->amount += ag->amount;
			if (ag->first_at < r->first)
				r->first = ag->first_at;
			if (ag->last_at > r->last)
				r->last = ag->last_at;
			if (ag->name)
				r->name = dre_arena_strdup(a, ag->name);
			if (ag->type)
				r->type = dre_arena_strdup(a, ag->type);
		}
		dre__aggregate__free_unpacked(ag, NULL);
	}
	dre_store_iter_close(it);
	if (one && nrows == 0) {
		free(rows);
		dre_rpc_reply_error(rep, 404, "NOT_FOUND", NULL,
		    "no confirmed application of promotion %s", id);
		return;
	}
	// The status comes from the catalog, once per promotion.
	size_t lookups = 0;
	for (size_t i = 0; i < nrows; i++) {
		if (i > 0
		    && strcmp(rows[i].promotion_id, rows[i - 1].promotion_id)
		        == 0) {
			rows[i].status = rows[i - 1].status;
			continue;
		}
		if (lookups++ < MAX_LOOKUPS)
			rows[i].status = promo_status(
			    s, a, call->tenant, rows[i].promotion_id);
	}
	size_t ncols
	    = 10 + (q.by_day || q.by_channel || q.by_pos_group ? 3 : 0);
	table t;
	table_begin(&t, &rep->body, q.csv, !one, perf_cols, ncols);
	for (size_t i = 0; i < nrows; i++) {
		perf_row *r = &rows[i];
		cell      c[13] = {
			     { r->promotion_id, 0, false },
			     { r->name, 0, false },
			     { r->status, 0, false },
			     { r->type, 0, false },
			     { NULL, r->count, false },
			     { NULL, r->amount, false },
			     { NULL,
                            r->count ? dre_div_round(
			             r->amount, r->count, DRE_ROUND_HALF_UP)
			                  : 0,
			         false },
			     { r->currency, 0, false },
			     { NULL, r->first, false },
			     { NULL, r->last, false },
			     { r->day, 0, r->day == NULL },
			     { r->channel, 0, r->channel == NULL },
			     { r->pos_group, 0, r->pos_group == NULL },
		};
		table_row(&t, c);
	}
	table_end(&t, !one);
	reply_table(rep, q.csv);
	free(rows);
}

static const dre_docapi_svc rep_api = { "the reporting service", 0 };

typedef void report_fn(rep_svc *s, dre_docapi_req *d, bool one);

// report runs fn as a request of its own (tenant, arena).
static void
report(report_fn *fn, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep,
    bool one)
{
	dre_docapi_req d;
	if (dre_docapi_begin(&d, &rep_api, call, rep))
		fn(svc, &d, one);
	dre_docapi_end(&d);
}

static void
h_perf_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	report(perf, svc, call, rep, false);
}

static void
h_perf_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	report(perf, svc, call, rep, true);
}

// ---- BudgetUtilization ----------------------------------------------------

static const col budget_cols[] = {
	{ "budgetId", COL_STR },
	{ "budgetName", COL_STR },
	{ "status", COL_STR },
	{ "totalAmount", COL_DEC },
	{ "consumedAmount", COL_DEC },
	{ "remainingAmount", COL_DEC },
	{ "currency", COL_STR },
	{ "utilizationPct", COL_PCT },
	{ "transactionsCount", COL_INT },
	{ "dailyBurnRate", COL_DEC },
	{ "projectedExhaustionDate", COL_STR },
};

static int64_t
dec(const dre_json *doc, const char *name)
{
	int64_t v = 0;
	dre_json_decimal(&v, dre_json_get(doc, name), 2, 18);
	return v;
}

static const char *
str(const dre_json *doc, const char *name)
{
	const dre_json *v = dre_json_get(doc, name);
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

// burn sums the budget's consumption over the last BURN_DAYS days (today
// included) from the aggregates.
static int64_t
burn(rep_svc *s, dre_arena *a, const char *tenant, const char *id, int64_t now)
{
	const char *pp[3] = { tenant, id, "" };
	char        prefix[512], since[11];
	size_t      pl = rep_key(prefix, sizeof(prefix), 'b', pp, 3);
	int64_t     sum = 0;
	rep_day(since, now - (BURN_DAYS - 1) * DAY_MS);
	dre_store_iter *it = NULL;
	if (pl == 0
	    || dre_store_iter_open(&it, s->st, REP_CF_AGG, prefix, pl)
	        != DRE_OK)
		return 0;
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl < pl + 10 || memcmp(k + pl, since, 10) < 0)
			continue;
		Dre__Aggregate *ag
		    = dre__aggregate__unpack(NULL, vl, (const uint8_t *) v);
		if (ag != NULL)
			sum += ag->amount;
		dre__aggregate__free_unpacked(ag, NULL);
	}
	dre_store_iter_close(it);
	(void) a;
	return sum;
}

static void
budget_row(rep_svc *s, table *t, dre_arena *a, const char *tenant,
    const dre_json *b, int64_t now)
{
	const char *id = str(b, "id");
	if (id == NULL)
		return;
	int64_t total = dec(b, "totalAmount"),
	        consumed = dec(b, "consumedAmount");
	int64_t remaining = total - consumed;
	int64_t pct = dec(b, "utilizationPct");
	int64_t tx = 0;
	dre_json_int(&tx, dre_json_get(b, "transactionsCount"), 0, INT64_MAX);
	int64_t rate = dre_div_round(
	    burn(s, a, tenant, id, now), BURN_DAYS, DRE_ROUND_HALF_UP);
	char date[11];
	bool has_date = false;
	if (remaining > 0 && rate > 0) {
		int64_t days = (remaining + rate - 1) / rate;
		rep_day(date, now + days * DAY_MS);
		has_date = true;
	}
	cell c[11] = {
		{ id, 0, false },
		{ str(b, "name"), 0, false },
		{ str(b, "status"), 0, false },
		{ NULL, total, false },
		{ NULL, consumed, false },
		{ NULL, remaining, false },
		{ str(b, "currency"), 0, false },
		{ NULL, pct, false },
		{ NULL, tx, false },
		{ NULL, rate, false },
		{ has_date ? date : NULL, 0, !has_date },
	};
	table_row(t, c);
}

static void
budgets(rep_svc *s, dre_docapi_req *d, bool one)
{
	const dre_rpc_call *call = d->call;
	dre_rpc_reply      *rep = d->rep;
	dre_arena          *a = d->a;
	query               q;
	if (!query_parse(call, rep, &q))
		return;
	const char    *id = one ? dre_rpc_param(call, "id") : NULL;
	Dre__RpcReply *br = NULL;
	dre_err        err = client_call(s, true,
            one ? "budget.Budgets.get" : "budget.Budgets.list", call->tenant,
	           id, &br);
	if (err != DRE_OK) {
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "the budget service is unavailable: %s",
		    dre_strerror(err));
		return;
	}
	if (br->status != 200) {
		dre_rpc_reply_error(rep, br->status == 404 ? 404 : 503,
		    br->status == 404 ? "NOT_FOUND" : "UNAVAILABLE", NULL,
		    "%s",
		    br->error_message ? br->error_message
		                      : "the budget service refused");
		dre_rpc_reply_msg_free(br);
		return;
	}
	dre_json *root = NULL;
	if (dre_json_parse(&root, a, (const char *) br->body.data,
	        br->body.len, DRE_JSON_MAX_DEPTH, NULL)
	    != DRE_OK) {
		dre_rpc_reply_msg_free(br);
		dre_rpc_reply_error(rep, 503, "UNAVAILABLE", NULL,
		    "unreadable answer of the budget service");
		return;
	}
	int64_t now = dre_now_ms();
	table   t;
	table_begin(&t, &rep->body, q.csv, !one, budget_cols, 11);
	if (one) {
		budget_row(s, &t, a, call->tenant, root, now);
	} else {
		const dre_json *vals = dre_json_get(root, "value");
		for (const dre_json *b = vals ? vals->child : NULL; b != NULL;
		     b = b->next)
			budget_row(s, &t, a, call->tenant, b, now);
	}
	table_end(&t, !one);
	reply_table(rep, q.csv);
	dre_rpc_reply_msg_free(br);
}

static void
h_budget_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	report(budgets, svc, call, rep, false);
}

static void
h_budget_get(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	report(budgets, svc, call, rep, true);
}

const dre_rpc_route rep_routes[] = {
	{ "reporting.PromotionPerformance.list", h_perf_list },
	{ "reporting.PromotionPerformance.get", h_perf_get },
	{ "reporting.BudgetUtilization.list", h_budget_list },
	{ "reporting.BudgetUtilization.get", h_budget_get },
	{ NULL, NULL },
};
