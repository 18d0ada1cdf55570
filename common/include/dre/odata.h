// odata.h -- the OData query subset of the /api/v1 collections: $filter,
// $select, $orderby, $top, $skip, $count (issue 10.3).
//
// $filter: comparisons `field op literal` (eq ne gt ge lt le), the
// functions contains(field,'text') and startswith(field,'text'), and, or,
// not and parentheses. Literals: 'text' ('' is a quote), numbers (compared
// exactly as decimals), true, false, null. Fields are the entity's scalar
// members. $orderby: `field [asc|desc]`, comma-separated. $select: member
// names, comma-separated. Anything else starting with '$' is refused, as is
// a field the entity does not have: a query is never silently ignored.
#ifndef DRE_ODATA_H
#define DRE_ODATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/json.h"
#include "dre/rpc.h"

typedef struct dre_odata dre_odata;

// What an entity offers to queries: scalar members (filter and orderby)
// and every member (select). Borrowed.
typedef struct {
	const char *const *scalars;
	size_t             nscalars;
	const char *const *members;
	size_t             nmembers;
} dre_odata_fields;

// A refused query: target is the option ("$filter") and message says what
// is wrong (at which character for $filter).
typedef struct {
	char target[32];
	char message[200];
} dre_odata_error;

// dre_odata_parse reads the query options among call's parameters (other
// parameters are left alone). *qp is allocated in a. DRE_EINVAL with *err
// filled when an option or a field is not supported or does not parse.
dre_err dre_odata_parse(dre_odata **qp, dre_arena *a, const dre_rpc_call *call,
    const dre_odata_fields *fields, int64_t top_default, int64_t top_max,
    dre_odata_error *err);

// dre_odata_trivial is true when the query only pages ($top, $skip): the
// caller may then stream documents without parsing them.
bool    dre_odata_trivial(const dre_odata *q);
int64_t dre_odata_top(const dre_odata *q);
int64_t dre_odata_skip(const dre_odata *q);

// dre_odata_sorted tells whether the query has an $orderby. Without one
// the page can be written while the collection is read, in store order,
// keeping nothing (dre_odata_emit): what a large collection needs.
bool dre_odata_sorted(const dre_odata *q);

// dre_odata_match tells whether doc passes $filter (true without one).
bool dre_odata_match(const dre_odata *q, const dre_json *doc);

// One document that passed the filter: its parsed tree and its text.
typedef struct {
	const dre_json *doc;
	const char     *text;
	size_t          len;
} dre_odata_item;

// dre_odata_sort orders v[0..n) by $orderby (stable: equal items keep their
// order, the store's key order).
void dre_odata_sort(const dre_odata *q, dre_odata_item *v, size_t n);

// dre_odata_write appends one item to out: its text as stored, or only the
// $select members.
void dre_odata_write(
    const dre_odata *q, dre_buf *out, const dre_odata_item *it);

// The documents of a collection that passed $filter, kept for sorting and
// paging. Zero-initialise.
typedef struct {
	dre_odata_item *v;
	size_t          n, cap;
} dre_odata_list;

// dre_odata_keep adds doc (its tree and its text, which must outlive the
// list) to l when it passes $filter. False when out of memory.
bool dre_odata_keep(const dre_odata *q, dre_odata_list *l, const dre_json *doc,
    const char *text, size_t len);

// dre_odata_emit counts the document (its tree and its text) into *count
// when it passes $filter and appends it to out, comma-separated and with
// $select applied, when it falls in the page ($skip, $top). Documents come
// in the order they are answered: for a query without $orderby. doc may be
// NULL when the query is trivial (the text is then written as it is).
void dre_odata_emit(const dre_odata *q, int64_t *count, dre_buf *out,
    const dre_json *doc, const char *text, size_t len);

// dre_odata_page sorts l, appends the page ($skip, $top) to out, the items
// comma-separated, frees l and returns how many documents matched.
int64_t dre_odata_page(const dre_odata *q, dre_odata_list *l, dre_buf *out);

#endif
