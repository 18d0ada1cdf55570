// catalog/entities.c -- validation and normal form of POS groups, article
// groups, articles and campaigns.
#include "entities.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/money.h"
#include "dre/uuid.h"

static const ent_field pos_group_fields[] = {
	{ "code", ENT_CODE, 20, true },
	{ "name", ENT_STR, 255, true },
	{ "description", ENT_STR, 5000, false },
	{ "stores", ENT_STRLIST, 50, false },
};
const ent_spec ent_pos_group = { "POS_GROUP", pos_group_fields, 4, -1, 0 };

static const ent_field article_group_fields[] = {
	{ "articleGroupId", ENT_CODE, 20, true },
	{ "name", ENT_STR, 255, true },
	{ "description", ENT_STR, 5000, false },
	{ "parentArticleGroupId", ENT_CODE, 20, false },
};
const ent_spec ent_article_group
    = { "ARTICLE_GROUP", article_group_fields, 4, 0, -1 };

static const ent_field article_fields[] = {
	{ "articleNumber", ENT_CODE, 50, true },
	{ "name", ENT_STR, 255, true },
	{ "ean", ENT_DIGITS, 18, false },
	{ "manufacturer", ENT_STR, 255, false },
	{ "manufacturerId", ENT_CODE, 50, false },
	{ "category", ENT_STR, 255, false },
	{ "articleGroupId", ENT_CODE, 20, false },
	{ "referencePrice", ENT_MONEY, 0, false },
	{ "unit", ENT_CODE, 20, false },
};
const ent_spec ent_article = { "ARTICLE", article_fields, 9, 0, -1 };

// A campaign groups promotions (issue 17.4); its dates are calendar days,
// endDate included. Which promotion ids exist, and that endDate is not
// before startDate, the handlers check (they need the store).
static const ent_field campaign_fields[] = {
	[ENT_CAMPAIGN_NAME] = { "name", ENT_STR, 255, true },
	[ENT_CAMPAIGN_DESCRIPTION] = { "description", ENT_STR, 5000, false },
	[ENT_CAMPAIGN_START] = { "startDate", ENT_DATE, 10, false },
	[ENT_CAMPAIGN_END] = { "endDate", ENT_DATE, 10, false },
	[ENT_CAMPAIGN_PROMOTIONS] = { "promotionIds", ENT_STRLIST, 64, false },
};
const ent_spec ent_campaign = { "CAMPAIGN", campaign_fields, 5, -1, -1 };

dre_err
ent_date_parse(int64_t *days, const char *s, size_t len)
{
	int64_t y = 0;
	int     m = 0, d = 0;
	if (len != 10 || s[4] != '-' || s[7] != '-')
		return DRE_EINVAL;
	for (size_t i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return DRE_EINVAL;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10
	    + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > 31)
		return DRE_EINVAL;
	// 2027-02-30 is not a day: the round trip lands elsewhere.
	int64_t n = dre_days_from_civil(y, m, d), ry = 0;
	int     rm = 0, rd = 0;
	dre_civil_from_days(n, &ry, &rm, &rd);
	if (ry != y || rm != m || rd != d)
		return DRE_EINVAL;
	*days = n;
	return DRE_OK;
}

// fmt formats into out, truncating quietly (targets and messages are short).
static void fmt(char *out, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void
fmt(char *out, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(out, cap, f, ap);
	va_end(ap);
}

static void eerr(dre_promo_errors *e, const char *prefix, const char *field,
    const char *mfmt, ...) __attribute__((format(printf, 4, 5)));

static void
eerr(dre_promo_errors *e, const char *prefix, const char *field,
    const char *mfmt, ...)
{
	if (e == NULL)
		return;
	if (e->n < e->cap && e->v != NULL) {
		dre_promo_error *x = &e->v[e->n];
		char             msg[160];
		va_list          ap;
		x->code = "VALIDATION_FAILED";
		if (prefix[0] && field[0])
			fmt(x->target, sizeof x->target, "%s.%s", prefix,
			    field);
		else
			fmt(x->target, sizeof x->target, "%s",
			    prefix[0] ? prefix : field);
		va_start(ap, mfmt);
		vsnprintf(msg, sizeof msg, mfmt, ap);
		va_end(ap);
		fmt(x->message, sizeof x->message, "%s %s",
		    x->target[0] ? x->target : "document", msg);
	}
	e->n++;
}

static bool
check_string(const dre_json *v, const ent_field *f, const char **why)
{
	size_t chars = 0;
	if (!dre_json_is(v, DRE_JSON_STRING)) {
		*why = "must be a string";
		return false;
	}
	dre_utf8_valid(v->str, v->len, &chars);
	if (chars == 0 || memchr(v->str, 0, v->len)) {
		*why = "must not be empty";
		return false;
	}
	if (chars > (size_t) f->max) {
		*why = "is too long";
		return false;
	}
	if (f->type == ENT_CODE || f->type == ENT_DIGITS)
		for (uint32_t i = 0; i < v->len; i++) {
			unsigned char ch = (unsigned char) v->str[i];
			if (ch < 0x20 || ch == 0x7f) {
				*why = "must not contain control characters";
				return false;
			}
			if (f->type == ENT_DIGITS && (ch < '0' || ch > '9')) {
				*why = "must consist of digits";
				return false;
			}
		}
	return true;
}

dre_err
ent_validate(ent_doc *d, const ent_spec *spec, const dre_json *doc,
    const dre_json *base, bool patch, const char *prefix,
    dre_promo_errors *errs)
{
	int bad = 0;
	memset(d, 0, sizeof *d);
	d->spec = spec;
	if (!dre_json_is(doc, DRE_JSON_OBJECT)) {
		eerr(errs, prefix, "", "must be a JSON object");
		return DRE_EINVAL;
	}
	// Strict master data (PRODUCT-DECISIONS §1): a member that is not a
	// field of the entity (nor what a read answers: id, createdAt,
	// modifiedAt, minorVersion) is refused, with the nearest field name
	// as a hint.
	const char *known[ENT_MAX_FIELDS + 4]
	    = { "id", "createdAt", "modifiedAt", "minorVersion" };
	size_t nknown = 4;
	for (int i = 0; i < spec->nfields; i++)
		known[nknown++] = spec->fields[i].name;
	for (const dre_json *m = dre_json_unknown(doc, known, nknown, NULL);
	     m != NULL; m = dre_json_unknown(doc, known, nknown, m)) {
		char name[64], msg[160];
		dre_json_unknown_describe(
		    m, known, nknown, name, sizeof name, msg, sizeof msg);
		// eerr starts the message with the target: "is" reads on.
		eerr(errs, prefix, name, "is an %s", msg);
		bad++;
	}
	for (int i = 0; i < spec->nfields; i++) {
		const ent_field *f = &spec->fields[i];
		const dre_json  *v = dre_json_get(doc, f->name);
		const char      *why = NULL;
		if (v == NULL && base != NULL && (patch || i == spec->key))
			v = dre_json_get(base, f->name);
		if (dre_json_is_null(v)) {
			if (f->required) {
				eerr(errs, prefix, f->name, "is required");
				bad++;
			}
			continue;
		}
		switch (f->type) {
		case ENT_STR:
		case ENT_CODE:
		case ENT_DIGITS:
			check_string(v, f, &why);
			break;
		case ENT_DATE: {
			int64_t days = 0;
			if (!dre_json_is(v, DRE_JSON_STRING)
			    || ent_date_parse(&days, v->str, v->len) != DRE_OK)
				why = "must be a date YYYY-MM-DD";
			break;
		}
		case ENT_MONEY: {
			dre_err e = dre_json_decimal(&d->money[i], v,
			    DRE_MONEY_SCALE, DRE_DECIMAL_MAX_DIGITS);
			if (e == DRE_EINVAL)
				why = "must have at most 2 decimals";
			else if (e != DRE_OK)
				why = "must be a decimal number";
			else if (d->money[i] < 0)
				why = "must not be negative";
			break;
		}
		case ENT_STRLIST:
			if (!dre_json_is(v, DRE_JSON_ARRAY)) {
				why = "must be an array of strings";
				break;
			}
			for (const dre_json *x = v->child; x; x = x->next)
				if (!check_string(x, f, &why))
					break;
			break;
		}
		if (why != NULL) {
			eerr(errs, prefix, f->name, "%s", why);
			bad++;
			continue;
		}
		d->v[i] = v;
	}
	return bad ? DRE_EINVAL : DRE_OK;
}

const char *
ent_str(const ent_doc *d, int i)
{
	const dre_json *v = i >= 0 ? d->v[i] : NULL;
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

static void
w_time(dre_jsonw *w, const char *k, int64_t ms)
{
	dre_jsonw_key(w, k);
	if (ms == 0)
		dre_jsonw_null(w);
	else
		dre_jsonw_time(w, ms);
}

void
ent_write(dre_buf *out, const ent_doc *d, const char *id, int64_t created_at,
    int64_t modified_at)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", id);
	for (int i = 0; i < d->spec->nfields; i++) {
		const ent_field *f = &d->spec->fields[i];
		const dre_json  *v = d->v[i];
		dre_jsonw_key(&w, f->name);
		if (f->type == ENT_STRLIST) {
			dre_jsonw_arr_begin(&w);
			for (const dre_json *x = v ? v->child : NULL; x;
			     x = x->next)
				dre_jsonw_strn(&w, x->str, x->len);
			dre_jsonw_arr_end(&w);
		} else if (v == NULL) {
			dre_jsonw_null(&w);
		} else if (f->type == ENT_MONEY) {
			dre_jsonw_decimal(&w, d->money[i], DRE_MONEY_SCALE);
		} else {
			dre_jsonw_strn(&w, v->str, v->len);
		}
	}
	w_time(&w, "createdAt", created_at);
	w_time(&w, "modifiedAt", modified_at);
	dre_jsonw_obj_end(&w);
}

const char *
ent_check_id(
    const dre_json *doc, const char *prefix, dre_promo_errors *errs, bool *bad)
{
	const dre_json *v = dre_json_get(doc, "id");
	if (dre_json_is_null(v))
		return NULL;
	if (!dre_json_is(v, DRE_JSON_STRING)
	    || !dre_uuid_valid(v->str, v->len)) {
		eerr(errs, prefix, "id", "must be a UUID");
		*bad = true;
		return NULL;
	}
	return v->str;
}

int64_t
ent_time(const dre_json *doc, const char *k)
{
	const dre_json *v = dre_json_get(doc, k);
	int64_t         ms = 0;
	if (dre_json_is(v, DRE_JSON_STRING)
	    && dre_time_parse(&ms, v->str, v->len) == DRE_OK)
		return ms;
	return 0;
}
