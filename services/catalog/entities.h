// catalog/entities.h -- master-data documents other than promotions: POS
// groups, article groups, articles. Pure: validation and the normal form.
#ifndef CAT_ENTITIES_H
#define CAT_ENTITIES_H

#include <stdbool.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/json.h"
#include "dre/promo.h"

typedef enum {
	ENT_STR, // string of 1..max code points
	ENT_CODE, // identifier: 1..max characters, no control characters
	ENT_DIGITS, // string of 1..max decimal digits (EAN)
	ENT_MONEY, // Decimal(15,2) >= 0, written with two decimals
	ENT_STRLIST, // array of non-empty strings
	ENT_DATE, // calendar date "YYYY-MM-DD"
} ent_ftype;

typedef struct {
	const char *name;
	ent_ftype   type;
	int         max; // characters (strings)
	bool        required;
} ent_field;

#define ENT_MAX_FIELDS 12

typedef struct {
	const char *kind; // PROMOTION | POS_GROUP | ARTICLE_GROUP | ARTICLE |
	                  // CAMPAIGN
	const ent_field *fields;
	int              nfields;
	int              key; // index of the key field; -1 = the id
	int unique; // index of another field unique per tenant; -1
} ent_spec;

extern const ent_spec ent_pos_group;
extern const ent_spec ent_article_group;
extern const ent_spec ent_article;
extern const ent_spec ent_campaign;

// Field indexes of a campaign (ent_campaign).
enum {
	ENT_CAMPAIGN_NAME,
	ENT_CAMPAIGN_DESCRIPTION,
	ENT_CAMPAIGN_START,
	ENT_CAMPAIGN_END,
	ENT_CAMPAIGN_PROMOTIONS,
};

// ent_date_parse reads a calendar date "YYYY-MM-DD" (a real day of the
// proleptic Gregorian calendar) into days since 1970-01-01.
dre_err ent_date_parse(int64_t *days, const char *s, size_t len);

// One validated document: the JSON value of each field (NULL = null) and
// the decimals already read.
typedef struct {
	const ent_spec *spec;
	const dre_json *v[ENT_MAX_FIELDS];
	int64_t         money[ENT_MAX_FIELDS];
} ent_doc;

// ent_validate checks doc against spec and fills *d; problems go to errs
// (targets prefixed with prefix, e.g. "articles[3]", or "" for none).
// base is the stored document: with patch every member absent from doc is
// taken from base; without patch only the key field is (a PUT may omit it).
// Returns DRE_EINVAL when there was any problem.
dre_err ent_validate(ent_doc *d, const ent_spec *spec, const dre_json *doc,
    const dre_json *base, bool patch, const char *prefix,
    dre_promo_errors *errs);

// ent_str returns field i as a string (borrowed from the JSON tree) or NULL.
const char *ent_str(const ent_doc *d, int i);

// ent_write appends the normal form of d: id, every field in table order
// (null when absent), createdAt, modifiedAt.
void ent_write(dre_buf *out, const ent_doc *d, const char *id,
    int64_t created_at, int64_t modified_at);

// ent_check_id validates an optional client-supplied "id" member: NULL when
// absent, the UUID text when valid; records a problem otherwise.
const char *ent_check_id(const dre_json *doc, const char *prefix,
    dre_promo_errors *errs, bool *bad);

// ent_time reads the createdAt-style member k of doc (0 when absent).
int64_t ent_time(const dre_json *doc, const char *k);

#endif
