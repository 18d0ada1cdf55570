// odata.c -- the OData query subset of the /api/v1 collections: a
// recursive-descent $filter parser into a small tree, its evaluation on
// parsed documents, $orderby, $select, $top/$skip.
#define _GNU_SOURCE // qsort_r
#include "dre/odata.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/jsonw.h"
#include "dre/json.h"

#define MAX_ORDER  8
#define MAX_SELECT 32
#define MAX_DEPTH  32 // nesting of parentheses and not

typedef enum { N_AND, N_OR, N_NOT, N_CMP, N_CONTAINS, N_STARTS } node_kind;
typedef enum { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE } cmp_op;
typedef enum { L_STR, L_NUM, L_TRUE, L_FALSE, L_NULL } lit_kind;

typedef struct node node;
struct node {
	node_kind   kind;
	node       *a, *b; // operands (and, or: both; not: a)
	const char *field;
	cmp_op      op;
	lit_kind    lit;
	const char *text; // string or number text
};

struct dre_odata {
	node       *filter;
	const char *order[MAX_ORDER];
	bool        desc[MAX_ORDER];
	size_t      norder;
	const char *select[MAX_SELECT];
	size_t      nselect;
	int64_t     top, skip;
};

// ---- errors ------------------------------------------------------------

static dre_err fail(dre_odata_error *e, const char *target, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static dre_err
fail(dre_odata_error *e, const char *target, const char *fmt, ...)
{
	va_list ap;
	snprintf(e->target, sizeof e->target, "%.*s",
	    DRE_UTF8_CUT(target, sizeof e->target - 1));
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return DRE_EINVAL;
}

static bool
known(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

// ---- $filter -----------------------------------------------------------

typedef struct {
	const char             *s, *p;
	dre_arena              *a;
	const dre_odata_fields *f;
	dre_odata_error        *err;
	int                     depth;
	bool                    bad;
} parser;

static void
skip_ws(parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static node *
perror_at(parser *ps, const char *what)
{
	if (!ps->bad)
		fail(ps->err, "$filter", "%s at character %d of $filter", what,
		    (int) (ps->p - ps->s) + 1);
	ps->bad = true;
	return NULL;
}

static bool
ident_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
	    || (!first && c >= '0' && c <= '9');
}

// word reads an identifier into the arena; NULL when there is none.
static const char *
word(parser *ps)
{
	skip_ws(ps);
	const char *b = ps->p;
	if (!ident_char(*b, true))
		return NULL;
	while (ident_char(*ps->p, false))
		ps->p++;
	return dre_arena_strndup(ps->a, b, (size_t) (ps->p - b));
}

// keyword consumes kw when it stands next as a whole word.
static bool
keyword(parser *ps, const char *kw)
{
	skip_ws(ps);
	size_t n = strlen(kw);
	if (strncmp(ps->p, kw, n) != 0 || ident_char(ps->p[n], false))
		return false;
	ps->p += n;
	return true;
}

static bool
punct(parser *ps, char c)
{
	skip_ws(ps);
	if (*ps->p != c)
		return false;
	ps->p++;
	return true;
}

static const char *
field(parser *ps)
{
	const char *w = word(ps);
	if (w == NULL) {
		perror_at(ps, "a field name is expected");
		return NULL;
	}
	if (!known(ps->f->scalars, ps->f->nscalars, w)) {
		if (!ps->bad)
			fail(ps->err, "$filter",
			    "$filter: '%.*s' is not a field that can be "
			    "filtered on",
			    DRE_UTF8_CUT(w, 60));
		ps->bad = true;
		return NULL;
	}
	return w;
}

// literal reads 'text', a number, true, false or null into n.
static bool
literal(parser *ps, node *n)
{
	skip_ws(ps);
	if (*ps->p == '\'') {
		dre_buf b = { 0 };
		ps->p++;
		for (;;) {
			if (*ps->p == '\0') {
				dre_buf_free(&b);
				perror_at(ps, "an unterminated string");
				return false;
			}
			if (*ps->p == '\'' && ps->p[1] == '\'') {
				dre_buf_putc(&b, '\'');
				ps->p += 2;
				continue;
			}
			if (*ps->p == '\'')
				break;
			dre_buf_putc(&b, *ps->p++);
		}
		ps->p++;
		n->lit = L_STR;
		n->text
		    = dre_arena_strndup(ps->a, b.data ? b.data : "", b.len);
		dre_buf_free(&b);
		return n->text != NULL;
	}
	const char *b = ps->p;
	if (*ps->p == '-')
		ps->p++;
	if (*ps->p >= '0' && *ps->p <= '9') {
		while (*ps->p >= '0' && *ps->p <= '9')
			ps->p++;
		if (*ps->p == '.') {
			ps->p++;
			if (!(*ps->p >= '0' && *ps->p <= '9')) {
				perror_at(ps, "a digit is expected");
				return false;
			}
			while (*ps->p >= '0' && *ps->p <= '9')
				ps->p++;
		}
		n->lit = L_NUM;
		n->text = dre_arena_strndup(ps->a, b, (size_t) (ps->p - b));
		return n->text != NULL;
	}
	ps->p = b;
	if (keyword(ps, "true"))
		n->lit = L_TRUE;
	else if (keyword(ps, "false"))
		n->lit = L_FALSE;
	else if (keyword(ps, "null"))
		n->lit = L_NULL;
	else {
		perror_at(ps,
		    "a value ('text', a number, true, false or null) "
		    "is expected");
		return false;
	}
	return true;
}

static node *parse_or(parser *ps);

static node *
new_node(parser *ps, node_kind k)
{
	node *n = dre_arena_get(ps->a, sizeof *n);
	if (n == NULL) {
		perror_at(ps, "out of memory");
		return NULL;
	}
	n->kind = k;
	return n;
}

static node *
parse_primary(parser *ps)
{
	if (++ps->depth > MAX_DEPTH)
		return perror_at(ps, "too deeply nested");
	node *n = NULL;
	if (punct(ps, '(')) {
		n = parse_or(ps);
		if (n != NULL && !punct(ps, ')'))
			n = perror_at(ps, "')' is expected");
	} else if (keyword(ps, "not")) {
		node *x = parse_primary(ps);
		if (x != NULL && (n = new_node(ps, N_NOT)) != NULL)
			n->a = x;
	} else {
		const char *save = ps->p;
		node_kind   fk = keyword(ps, "contains") ? N_CONTAINS
		      : keyword(ps, "startswith")        ? N_STARTS
		                                         : N_CMP;
		if (fk != N_CMP && !punct(ps, '(')) {
			ps->p = save; // a field called contains, say
			fk = N_CMP;
		}
		if ((n = new_node(ps, fk)) == NULL)
			return NULL;
		if ((n->field = field(ps)) == NULL)
			return NULL;
		if (fk != N_CMP) {
			if (!punct(ps, ','))
				return perror_at(ps, "',' is expected");
			if (!literal(ps, n))
				return NULL;
			if (n->lit != L_STR)
				return perror_at(ps, "a 'text' is expected");
			if (!punct(ps, ')'))
				return perror_at(ps, "')' is expected");
		} else {
			static const char *const ops[]
			    = { "eq", "ne", "gt", "ge", "lt", "le" };
			size_t i = 0;
			while (i < 6 && !keyword(ps, ops[i]))
				i++;
			if (i == 6)
				return perror_at(ps,
				    "an operator (eq, ne, gt, ge, lt, le) is "
				    "expected");
			n->op = (cmp_op) i;
			if (!literal(ps, n))
				return NULL;
		}
	}
	ps->depth--;
	return n;
}

// parse_chain parses operand (kw operand)* into a left-leaning tree of
// kind k: "and" over primaries, "or" over and-chains.
static node *
parse_chain(
    parser *ps, const char *kw, node_kind k, node *(*operand)(parser *) )
{
	node *l = operand(ps);
	while (l != NULL && keyword(ps, kw)) {
		node *r = operand(ps), *n;
		if (r == NULL || (n = new_node(ps, k)) == NULL)
			return NULL;
		n->a = l;
		n->b = r;
		l = n;
	}
	return l;
}

static node *
parse_and(parser *ps)
{
	return parse_chain(ps, "and", N_AND, parse_primary);
}

static node *
parse_or(parser *ps)
{
	return parse_chain(ps, "or", N_OR, parse_and);
}

// ---- comparing values ----------------------------------------------------

// num_cmp compares two decimal texts (-?digits[.digits]) exactly; *ok is
// false when either is not such a text (an exponent, say).
static int
num_cmp(const char *x, const char *y, bool *ok)
{
	bool nx = *x == '-', ny = *y == '-';
	x += nx;
	y += ny;
	const char *dx = strchr(x, '.'), *dy = strchr(y, '.');
	size_t      ix = dx ? (size_t) (dx - x) : strlen(x);
	size_t      iy = dy ? (size_t) (dy - y) : strlen(y);
	for (const char *p = x; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			*ok = false;
	for (const char *p = y; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			*ok = false;
	while (ix > 1 && *x == '0') // leading zeros
		x++, ix--;
	while (iy > 1 && *y == '0')
		y++, iy--;
	int c = ix != iy ? (ix < iy ? -1 : 1) : strncmp(x, y, ix);
	if (c == 0) { // fractions, the shorter one padded with zeros
		const char *fx = dx ? dx + 1 : "", *fy = dy ? dy + 1 : "";
		while (c == 0 && (*fx || *fy)) {
			char a = *fx ? *fx++ : '0', b = *fy ? *fy++ : '0';
			c = (a > b) - (a < b);
		}
	}
	bool zero = c == 0 && strspn(x, "0.") == strlen(x)
	    && strspn(y, "0.") == strlen(y);
	if (zero)
		return 0; // -0 == 0
	if (nx != ny)
		return nx ? -1 : 1;
	return nx ? -c : c;
}

// value_cmp orders two JSON values: null and absent first, then false,
// true, numbers, strings; *ok is false for values of different kinds that
// cannot be ordered (a filter comparison is then false).
static int
value_cmp(const dre_json *x, const dre_json *y, bool *ok)
{
	int rx = dre_json_is_null(x)     ? 0
	    : x->type == DRE_JSON_FALSE  ? 1
	    : x->type == DRE_JSON_TRUE   ? 2
	    : x->type == DRE_JSON_NUMBER ? 3
	    : x->type == DRE_JSON_STRING ? 4
	                                 : 5;
	int ry = dre_json_is_null(y)     ? 0
	    : y->type == DRE_JSON_FALSE  ? 1
	    : y->type == DRE_JSON_TRUE   ? 2
	    : y->type == DRE_JSON_NUMBER ? 3
	    : y->type == DRE_JSON_STRING ? 4
	                                 : 5;
	if (rx != ry) {
		bool both_bool = (rx == 1 || rx == 2) && (ry == 1 || ry == 2);
		if (!both_bool)
			*ok = false;
		return rx < ry ? -1 : 1;
	}
	if (rx == 3)
		return num_cmp(x->str, y->str, ok);
	if (rx == 4)
		return strcmp(x->str, y->str);
	if (rx == 5)
		*ok = false;
	return 0;
}

static bool
eval(const node *n, const dre_json *doc)
{
	switch (n->kind) {
	case N_AND:
		return eval(n->a, doc) && eval(n->b, doc);
	case N_OR:
		return eval(n->a, doc) || eval(n->b, doc);
	case N_NOT:
		return !eval(n->a, doc);
	case N_CONTAINS:
	case N_STARTS: {
		const dre_json *v = dre_json_get(doc, n->field);
		if (!dre_json_is(v, DRE_JSON_STRING))
			return false;
		return n->kind == N_CONTAINS
		    ? strstr(v->str, n->text) != NULL
		    : strncmp(v->str, n->text, strlen(n->text)) == 0;
	}
	case N_CMP:
		break;
	}
	dre_json lit = { 0 };
	lit.type = n->lit == L_STR ? DRE_JSON_STRING
	    : n->lit == L_NUM      ? DRE_JSON_NUMBER
	    : n->lit == L_TRUE     ? DRE_JSON_TRUE
	    : n->lit == L_FALSE    ? DRE_JSON_FALSE
	                           : DRE_JSON_NULL;
	lit.str = n->text;
	const dre_json *v = dre_json_get(doc, n->field);
	bool            ok = true;
	int             c = value_cmp(v, &lit, &ok);
	if (!ok) // different kinds: only "not equal" holds
		return n->op == OP_NE;
	switch (n->op) {
	case OP_EQ:
		return c == 0;
	case OP_NE:
		return c != 0;
	case OP_GT:
		return c > 0;
	case OP_GE:
		return c >= 0;
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	}
	return false;
}

// ---- options -------------------------------------------------------------

// An item of a comma-separated option ($orderby, $select): the option's
// item parser gets it trimmed of spaces, in a's memory.
typedef dre_err (*item_fn)(
    dre_odata *q, char *item, const dre_odata_fields *f, dre_odata_error *err);

// parse_list splits s at commas and hands each non-empty item to fn; an
// option naming no item at all is refused.
static dre_err
parse_list(dre_odata *q, dre_arena *a, const char *opt, const char *s,
    item_fn fn, const dre_odata_fields *f, dre_odata_error *err)
{
	size_t n = 0;
	for (const char *p = s; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *b = p;
		while (*p && *p != ',')
			p++;
		size_t len = (size_t) (p - b);
		while (len > 0 && b[len - 1] == ' ')
			len--;
		if (len == 0)
			continue;
		char *item = dre_arena_strndup(a, b, len);
		if (item == NULL)
			return DRE_ENOMEM;
		dre_err e = fn(q, item, f, err);
		if (e != DRE_OK)
			return e;
		n++;
	}
	if (n == 0)
		return fail(err, opt, "%s names no field", opt);
	return DRE_OK;
}

// orderby_item reads `field [asc|desc]`.
static dre_err
orderby_item(
    dre_odata *q, char *item, const dre_odata_fields *f, dre_odata_error *err)
{
	char *dir = strchr(item, ' ');
	if (dir != NULL) {
		*dir++ = '\0';
		while (*dir == ' ')
			dir++;
	}
	if (!known(f->scalars, f->nscalars, item))
		return fail(err, "$orderby",
		    "$orderby: '%.*s' is not a field that can be sorted on",
		    DRE_UTF8_CUT(item, 60));
	bool desc = dir != NULL && strcmp(dir, "desc") == 0;
	if (dir != NULL && !desc && strcmp(dir, "asc") != 0)
		return fail(err, "$orderby",
		    "$orderby: expected 'field [asc|desc]' separated by "
		    "commas");
	if (q->norder == MAX_ORDER)
		return fail(
		    err, "$orderby", "$orderby: at most %d keys", MAX_ORDER);
	q->order[q->norder] = item;
	q->desc[q->norder++] = desc;
	return DRE_OK;
}

// select_item reads one member name. A name selected again (in the same
// $select or another one) is written once: a member twice in an object is
// JSON that strict readers, ours included, refuse.
static dre_err
select_item(
    dre_odata *q, char *item, const dre_odata_fields *f, dre_odata_error *err)
{
	if (!known(f->members, f->nmembers, item))
		return fail(err, "$select",
		    "$select: '%.*s' is not a field of this entity",
		    DRE_UTF8_CUT(item, 60));
	if (known(q->select, q->nselect, item))
		return DRE_OK;
	if (q->nselect == MAX_SELECT)
		return fail(
		    err, "$select", "$select: at most %d fields", MAX_SELECT);
	q->select[q->nselect++] = item;
	return DRE_OK;
}

static dre_err
parse_int(const char *s, int64_t *out, const char *opt, dre_odata_error *err)
{
	int64_t v = 0;
	if (*s == '\0')
		return fail(
		    err, opt, "%s must be a non-negative integer", opt);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
			return fail(err, opt,
			    "%s must be a non-negative integer", opt);
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return DRE_OK;
}

dre_err
dre_odata_parse(dre_odata **qp, dre_arena *a, const dre_rpc_call *call,
    const dre_odata_fields *f, int64_t top_default, int64_t top_max,
    dre_odata_error *err)
{
	dre_odata *q = dre_arena_get(a, sizeof *q);
	if (q == NULL)
		return DRE_ENOMEM;
	q->top = top_default;
	const Dre__RpcRequest *req = call->req;
	for (size_t i = 0; req != NULL && i < req->n_params; i++) {
		const char *k = req->params[i]->key,
		           *v = req->params[i]->value;
		if (k == NULL || k[0] != '$')
			continue;
		if (v == NULL)
			v = "";
		dre_err e = DRE_OK;
		if (strcmp(k, "$top") == 0) {
			e = parse_int(v, &q->top, "$top", err);
			if (e == DRE_OK && q->top > top_max)
				q->top = top_max;
		} else if (strcmp(k, "$skip") == 0) {
			e = parse_int(v, &q->skip, "$skip", err);
		} else if (strcmp(k, "$count") == 0) {
			// The count is always answered; the option is
			// accepted.
			if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
				e = fail(err, "$count",
				    "$count must be true or false");
		} else if (strcmp(k, "$filter") == 0) {
			parser ps = { v, v, a, f, err, 0, false };
			q->filter = parse_or(&ps);
			skip_ws(&ps);
			if (q->filter != NULL && *ps.p != '\0')
				perror_at(&ps, "unexpected text");
			if (ps.bad)
				e = DRE_EINVAL;
		} else if (strcmp(k, "$orderby") == 0) {
			e = parse_list(
			    q, a, "$orderby", v, orderby_item, f, err);
		} else if (strcmp(k, "$select") == 0) {
			e = parse_list(
			    q, a, "$select", v, select_item, f, err);
		} else {
			e = fail(err, k,
			    "query option %.*s is not supported ($filter, "
			    "$select, $orderby, $top, $skip, $count are)",
			    DRE_UTF8_CUT(k, 40));
		}
		if (e != DRE_OK)
			return e;
	}
	*qp = q;
	return DRE_OK;
}

bool
dre_odata_trivial(const dre_odata *q)
{
	return q->filter == NULL && q->norder == 0 && q->nselect == 0;
}

int64_t
dre_odata_top(const dre_odata *q)
{
	return q->top;
}

int64_t
dre_odata_skip(const dre_odata *q)
{
	return q->skip;
}

bool
dre_odata_sorted(const dre_odata *q)
{
	return q->norder > 0;
}

bool
dre_odata_match(const dre_odata *q, const dre_json *doc)
{
	return q->filter == NULL || eval(q->filter, doc);
}

// ---- sorting and writing ---------------------------------------------------

typedef struct {
	dre_odata_item it;
	size_t         pos;
} ranked;

static int
ranked_cmp(const void *x, const void *y, void *arg)
{
	const ranked    *a = x, *b = y;
	const dre_odata *q = arg;
	for (size_t i = 0; i < q->norder; i++) {
		bool ok = true;
		int  c = value_cmp(dre_json_get(a->it.doc, q->order[i]),
		     dre_json_get(b->it.doc, q->order[i]), &ok);
		if (c != 0)
			return q->desc[i] ? -c : c;
	}
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

void
dre_odata_sort(const dre_odata *q, dre_odata_item *v, size_t n)
{
	if (q->norder == 0 || n < 2)
		return;
	ranked *r = malloc(n * sizeof *r);
	if (r == NULL)
		return; // unsorted rather than nothing
	for (size_t i = 0; i < n; i++) {
		r[i].it = v[i];
		r[i].pos = i;
	}
	qsort_r(r, n, sizeof *r, ranked_cmp, (void *) q);
	for (size_t i = 0; i < n; i++)
		v[i] = r[i].it;
	free(r);
}

void
dre_odata_write(const dre_odata *q, dre_buf *out, const dre_odata_item *it)
{
	if (q->nselect == 0) {
		dre_buf_append(out, it->text, it->len);
		return;
	}
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	for (size_t i = 0; i < q->nselect; i++) {
		const dre_json *v = dre_json_get(it->doc, q->select[i]);
		dre_jsonw_key(&w, q->select[i]);
		dre_jsonw_json(&w, v);
	}
	dre_jsonw_obj_end(&w);
}

bool
dre_odata_keep(const dre_odata *q, dre_odata_list *l, const dre_json *doc,
    const char *text, size_t len)
{
	if (!dre_odata_match(q, doc))
		return true;
	if (l->n == l->cap) {
		size_t          ncap = l->cap ? l->cap * 2 : 64;
		dre_odata_item *nv = realloc(l->v, ncap * sizeof *nv);
		if (nv == NULL)
			return false;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (dre_odata_item) { doc, text, len };
	return true;
}

// page_put writes it, the match at pos (0-based), when it falls in the page
// ($skip, $top), comma-separated from the one before.
static void
page_put(
    const dre_odata *q, int64_t pos, dre_buf *out, const dre_odata_item *it)
{
	if (pos < q->skip || pos - q->skip >= q->top)
		return;
	if (pos > q->skip)
		dre_buf_putc(out, ',');
	dre_odata_write(q, out, it);
}

void
dre_odata_emit(const dre_odata *q, int64_t *count, dre_buf *out,
    const dre_json *doc, const char *text, size_t len)
{
	if (dre_odata_match(q, doc))
		page_put(
		    q, (*count)++, out, &(dre_odata_item) { doc, text, len });
}

int64_t
dre_odata_page(const dre_odata *q, dre_odata_list *l, dre_buf *out)
{
	dre_odata_sort(q, l->v, l->n);
	for (size_t i = (size_t) q->skip;
	     i < l->n && (int64_t) i - q->skip < q->top; i++)
		page_put(q, (int64_t) i, out, &l->v[i]);
	int64_t n = (int64_t) l->n;
	free(l->v);
	memset(l, 0, sizeof *l);
	return n;
}
