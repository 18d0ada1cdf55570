// topics.h -- every Kafka topic DRE uses, declared once.
#ifndef DRE_TOPICS_H
#define DRE_TOPICS_H

#include <stdint.h>

#define DRE_TOPIC_PROMOTIONS     "dre.master.promotions"
#define DRE_TOPIC_ARTICLES       "dre.master.articles"
#define DRE_TOPIC_POS_GROUPS     "dre.master.posgroups"
#define DRE_TOPIC_ARTICLE_GROUPS "dre.master.articlegroups"
#define DRE_TOPIC_CAMPAIGNS      "dre.master.campaigns"
#define DRE_TOPIC_TX_CONFIRMED   "dre.transactions.confirmed"
#define DRE_TOPIC_TX_RETURNED    "dre.transactions.returned"
#define DRE_TOPIC_CALCULATIONS   "dre.calculations"
#define DRE_TOPIC_SIDEFX         "dre.sidefx.results"
#define DRE_TOPIC_BUDGET_STATUS  "dre.budgets.status"
#define DRE_TOPIC_BUDGET_EVENTS  "dre.budget.events"
#define DRE_TOPIC_COUPON_EVENTS  "dre.coupon.events"
#define DRE_TOPIC_LOYALTY_EVENTS "dre.loyalty.events"
#define DRE_TOPIC_CATALOG_EVENTS "dre.catalog.events"
#define DRE_TOPIC_IMPORTS        "dre.imports"

typedef struct {
	const char *name;
	int         partitions;
	int64_t     retention_ms; // -1 = infinite
	const char *doc;
	// Kafka's cleanup.policy: "delete" (retention only) or
	// "compact,delete" (the latest record per key, within retention).
	const char *cleanup;
	// The value schema (proto/<schema>.avsc without the extension; NULL =
	// none yet), registered as subject <name>-value with
	// events.format=confluent.
	const char *schema;
} dre_topic;

// dre_topics lists every topic, terminated by { NULL }.
extern const dre_topic dre_topics[];

// dre_topic_find returns the declaration of name or NULL.
const dre_topic *dre_topic_find(const char *name);

#endif
