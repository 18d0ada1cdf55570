// topics.c -- the table of every Kafka topic DRE uses.
#include <string.h>

#include "dre/topics.h"

#define DAY_MS (24LL * 3600 * 1000)

// Master-data feeds are never the only copy (the catalog is), so a week is
// plenty for an evaluator that was down; a consumer that falls further behind
// re-snapshots. A budget's status is a state (the latest per key is all a
// reader needs), so that topic is also compacted. Confirmed sales get more
// partitions because every consumer service scales on them.
const dre_topic dre_topics[] = {
	{ DRE_TOPIC_PROMOTIONS, 3, 7 * DAY_MS,
	    "dre.MasterDataChanged for promotions; key tenant/id", "delete",
	    "MasterDataChanged" },
	{ DRE_TOPIC_ARTICLES, 3, 7 * DAY_MS,
	    "dre.MasterDataChanged for articles; key tenant/articleNumber",
	    "delete", "MasterDataChanged" },
	{ DRE_TOPIC_POS_GROUPS, 3, 7 * DAY_MS,
	    "dre.MasterDataChanged for POS groups; key tenant/id", "delete",
	    "MasterDataChanged" },
	{ DRE_TOPIC_ARTICLE_GROUPS, 3, 7 * DAY_MS,
	    "dre.MasterDataChanged for article groups; key "
	    "tenant/articleGroupId",
	    "delete", "MasterDataChanged" },
	{ DRE_TOPIC_CAMPAIGNS, 3, 7 * DAY_MS,
	    "dre.MasterDataChanged for campaigns; key tenant/id", "delete",
	    "MasterDataChanged" },
	{ DRE_TOPIC_TX_CONFIRMED, 6, 7 * DAY_MS,
	    "confirmed sales; key tenant/transactionId", "delete",
	    "TransactionConfirmed" },
	{ DRE_TOPIC_TX_RETURNED, 3, 7 * DAY_MS,
	    "returns of confirmed sales; key tenant/orderId", "delete",
	    "TransactionReturned" },
	{ DRE_TOPIC_CALCULATIONS, 3, 3 * DAY_MS,
	    "calculation audit records; key tenant/transactionId", "delete",
	    NULL },
	{ DRE_TOPIC_SIDEFX, 3, 1 * DAY_MS,
	    "side-effect job results; key tenant/transactionId", "delete",
	    "SideEffectResult" },
	{ DRE_TOPIC_BUDGET_STATUS, 3, 7 * DAY_MS,
	    "budget status changes; key tenant/budgetId", "compact,delete",
	    "BudgetStatus" },
	{ DRE_TOPIC_BUDGET_EVENTS, 3, 7 * DAY_MS,
	    "budget business events; key tenant/budgetId", "delete",
	    "BudgetEvent" },
	{ DRE_TOPIC_COUPON_EVENTS, 3, 7 * DAY_MS,
	    "coupon business events; key tenant/code", "delete",
	    "CouponEvent" },
	{ DRE_TOPIC_LOYALTY_EVENTS, 3, 7 * DAY_MS,
	    "loyalty business events; key tenant/contactId", "delete",
	    "LoyaltyEvent" },
	{ DRE_TOPIC_CATALOG_EVENTS, 3, 7 * DAY_MS,
	    "catalog business events (webhooks); key tenant/id", "delete",
	    NULL },
	{ DRE_TOPIC_IMPORTS, 3, 7 * DAY_MS,
	    "import jobs finished (IMPORT_JOB_FINISHED); key tenant/jobId",
	    "delete", "ImportJobFinished" },
	{ NULL, 0, 0, NULL, NULL, NULL },
};

const dre_topic *
dre_topic_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (const dre_topic *t = dre_topics; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}
