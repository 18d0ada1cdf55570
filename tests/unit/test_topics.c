// test_topics.c -- every declared topic is in the table, once, with sane
// settings.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "dre/topics.h"

static void
test_every_topic_declared(void **state)
{
	const char *names[]
	    = { DRE_TOPIC_PROMOTIONS, DRE_TOPIC_ARTICLES, DRE_TOPIC_POS_GROUPS,
		      DRE_TOPIC_ARTICLE_GROUPS, DRE_TOPIC_CAMPAIGNS,
		      DRE_TOPIC_TX_CONFIRMED, DRE_TOPIC_TX_RETURNED,
		      DRE_TOPIC_CALCULATIONS, DRE_TOPIC_SIDEFX,
		      DRE_TOPIC_BUDGET_STATUS, DRE_TOPIC_BUDGET_EVENTS,
		      DRE_TOPIC_COUPON_EVENTS, DRE_TOPIC_LOYALTY_EVENTS,
		      DRE_TOPIC_CATALOG_EVENTS, DRE_TOPIC_IMPORTS };
	size_t n = sizeof(names) / sizeof(names[0]);
	for (size_t i = 0; i < n; i++) {
		const dre_topic *t = dre_topic_find(names[i]);
		assert_non_null(t);
		assert_string_equal(t->name, names[i]);
		assert_non_null(t->doc);
		assert_true(t->partitions >= 1);
		assert_true(t->retention_ms == -1 || t->retention_ms > 0);
		assert_int_equal(strncmp(t->name, "dre.", 4), 0);
	}
	size_t count = 0;
	for (const dre_topic *t = dre_topics; t->name != NULL; t++)
		count++;
	assert_int_equal(count, n);
}

static void
test_partitions(void **state)
{
	assert_int_equal(
	    dre_topic_find(DRE_TOPIC_TX_CONFIRMED)->partitions, 6);
	assert_int_equal(dre_topic_find(DRE_TOPIC_PROMOTIONS)->partitions, 3);
	assert_int_equal(dre_topic_find(DRE_TOPIC_ARTICLES)->partitions, 3);
	assert_int_equal(dre_topic_find(DRE_TOPIC_POS_GROUPS)->partitions, 3);
	assert_int_equal(
	    dre_topic_find(DRE_TOPIC_ARTICLE_GROUPS)->partitions, 3);
}

static void
test_unique_and_unknown(void **state)
{
	for (const dre_topic *a = dre_topics; a->name != NULL; a++)
		for (const dre_topic *b = a + 1; b->name != NULL; b++)
			assert_string_not_equal(a->name, b->name);
	assert_null(dre_topic_find("dre.nope"));
	assert_null(dre_topic_find(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_topic_declared),
		cmocka_unit_test(test_partitions),
		cmocka_unit_test(test_unique_and_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
