// catalog/imports.c -- the catalog as the owner of import jobs
// (dre/importjob.h): its importable entities, one row each, and the rpc
// methods ImportJobs.* / ImportJobErrors.list / ImportJobItems.list.
#include <string.h>

#include "catalog.h"
#include "handlers.h"

#define APPLY(name, kind)                                                     \
	static dre_err name(                                                  \
	    void *svc, const dre_ijob_row *row, dre_ijob_result *res)         \
	{                                                                     \
		return cat_import_row(svc, kind, row, res);                   \
	}

APPLY(apply_article, CAT_ARTICLE)
APPLY(apply_article_group, CAT_ARTICLE_GROUP)
APPLY(apply_pos_group, CAT_POS_GROUP)
APPLY(apply_promotion, CAT_PROMOTION)

// csv_cell: how a CSV column becomes a member. Lists are ";"-separated;
// numbers and the nested parts of a promotion are written as JSON.
static dre_ijob_cell
csv_cell(const char *col)
{
	static const char *const lists[] = { "stores", "posGroups",
		"budgetIds", "couponTypeIds", "exclusionGroups" };
	static const char *const raw[] = { "referencePrice", "priority",
		"conditions", "actions", "timeWindows", "calculationConfig" };
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
		if (strcmp(col, lists[i]) == 0)
			return DRE_IJOB_CELL_LIST;
	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
		if (strcmp(col, raw[i]) == 0)
			return DRE_IJOB_CELL_RAW;
	return DRE_IJOB_CELL_STRING;
}

const dre_ijob_entity cat_imports[] = {
	{ "Articles", apply_article, csv_cell },
	{ "ArticleGroups", apply_article_group, csv_cell },
	{ "PosGroups", apply_pos_group, csv_cell },
	{ "Promotions", apply_promotion, csv_cell },
	{ NULL, NULL, NULL },
};

void
cat_ijob(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cat *c = svc;
	dre_ijob_dispatch(c->jobs, call, rep);
}
