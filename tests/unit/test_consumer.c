// test_consumer.c -- the applier against an in-process mock cluster: every
// event applied exactly once across duplicates, restarts, transient
// failures, dead letters, a changed cluster and group mode; a follower's
// refreshes (at start, and while there is no cluster).
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dre/avro.h"
#include "dre/bus.h"
#include "dre/busmock.h"
#include "dre/consumer.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "testkit.h"

#define CF_STATE 1
#define CF_AP    2

static dre_bus_mock *mock;
static dre_kvlist    props;
static char          dir[256];

static const char *const topics[] = { DRE_TOPIC_BUDGET_STATUS };

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int
group_setup(void **state)
{
	return tk_broker_open(&mock, &props);
}

static int
group_teardown(void **state)
{
	tk_broker_close(mock, &props);
	return 0;
}

static dre_store *
store_open(const char *name)
{
	static const char *const cfs[] = { "state", "applier" };
	char                     tag[64];
	snprintf(tag, sizeof tag, "consumer-%s", name);
	assert_int_equal(tk_tmpdir(dir, sizeof dir, tag), 0);
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 2 };
	dre_store    *st = NULL;
	assert_int_equal(dre_store_open(&st, &cfg), DRE_OK);
	return st;
}

static void
store_remove(dre_store *st)
{
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

// produce sends one BudgetStatus event adding amount to budget; id NULL
// makes a fresh eventId. Returns the eventId used (static buffer).
static const char *
produce_to(dre_producer *p, const char *topic, const char *tenant,
    const char *budget, int64_t amount, const char *id)
{
	static char             used[37];
	dre_budget_status_event e = { 0 };
	if (id != NULL)
		snprintf(e.event_id, sizeof(e.event_id), "%s", id);
	else
		dre_uuid_v4(e.event_id);
	e.tenant = tenant;
	e.occurred_at = 1;
	e.schema_version = 1;
	e.budget_id = budget;
	e.version = 1;
	e.status = "ACTIVE";
	e.budget_name = "B";
	e.total_amount = 0;
	e.consumed_amount = amount;
	e.currency = "EUR";
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_budget_status(&b, &e), DRE_OK);
	char key[128];
	int  kl = snprintf(key, sizeof(key), "%s/%s", tenant, budget);
	assert_int_equal(
	    dre_producer_send(p, topic, key, (size_t) kl, b.data, b.len, NULL),
	    DRE_OK);
	dre_buf_free(&b);
	memcpy(used, e.event_id, sizeof(used));
	return used;
}

static const char *
produce(dre_producer *p, const char *tenant, const char *budget,
    int64_t amount, const char *id)
{
	return produce_to(
	    p, DRE_TOPIC_BUDGET_STATUS, tenant, budget, amount, id);
}

// producer opens a producer and names a budget of the test's own.
static dre_producer *
producer(char *budget, size_t cap, char prefix)
{
	dre_producer *p = NULL;
	assert_int_equal(dre_producer_open(&p, &props, NULL, NULL), DRE_OK);
	snprintf(budget, cap, "%c-%d", prefix, rand());
	return p;
}

// ---- the service under test: sums consumedAmount per budget -------------

typedef struct {
	atomic_int  applied;
	atomic_int  fail_next; // this many transient failures to inject
	atomic_int  max_attempts;
	atomic_int  begins, ends;
	atomic_int  recovers;
	atomic_int  probes, reached;
	atomic_int  in_batch; // applied in the open batch
	atomic_int  committed; // applied in batches that were written
	atomic_int  noops; // events applied that changed nothing
	const char *watch; // count only this budget's events (NULL = all)
} svc;

static int64_t
sum_of(dre_store *st, dre_batch *b, const char *budget)
{
	char   *v = NULL;
	size_t  vl = 0;
	int64_t n = 0;
	if (dre_batch_get(b, st, CF_STATE, budget, strlen(budget), &v, &vl)
	    == DRE_OK) {
		assert_int_equal(vl, 8);
		memcpy(&n, v, 8);
	}
	free(v);
	return n;
}

static dre_err
apply(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	svc                    *s = arg;
	dre_budget_status_event e;
	dre_err                 err
	    = dre_avro_decode_budget_status(&e, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	assert_non_null(x->event_id);
	assert_string_equal(x->event_id, e.event_id);
	if (x->attempts > atomic_load(&s->max_attempts))
		atomic_store(&s->max_attempts, x->attempts);
	if (atomic_load(&s->fail_next) > 0) {
		atomic_fetch_sub(&s->fail_next, 1);
		return DRE_EUNAVAIL;
	}
	if (e.consumed_amount == 0) {
		// Nothing to add: the event changes nothing.
		if (s->watch == NULL || strcmp(s->watch, e.budget_id) == 0)
			atomic_fetch_add(&s->noops, 1);
		return DRE_OK;
	}
	// Read through the batch: earlier events of the same batch count.
	int64_t n = sum_of(x->st, x->b, e.budget_id) + e.consumed_amount;
	dre_batch_put(
	    x->b, x->st, CF_STATE, e.budget_id, strlen(e.budget_id), &n, 8);
	atomic_fetch_add(&s->applied, 1);
	if (s->watch == NULL || strcmp(s->watch, e.budget_id) == 0)
		atomic_fetch_add(&s->in_batch, 1);
	return DRE_OK;
}

static void
begin(void *arg)
{
	svc *s = arg;
	atomic_fetch_add(&s->begins, 1);
	atomic_store(&s->in_batch, 0);
}

static void
end(void *arg, dre_err err)
{
	svc *s = arg;
	atomic_fetch_add(&s->ends, 1);
	// A batch dropped by a rebalance or a transient failure is applied
	// again later; only written batches count as applications.
	if (err == DRE_OK)
		atomic_fetch_add(
		    &s->committed, atomic_exchange(&s->in_batch, 0));
}

static dre_err
recover_zero(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	svc *s = arg;
	atomic_fetch_add(&s->recovers, 1);
	// A "snapshot": the state is 1000 for budget b-snap, positions at the
	// beginning.
	int64_t v = 1000;
	dre_batch_put(x->b, x->st, CF_STATE, "b-snap", 6, &v, 8);
	return DRE_OK;
}

// recover_down is an owner that does not answer.
static dre_err
recover_down(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	svc *s = arg;
	atomic_fetch_add(&s->recovers, 1);
	return DRE_EUNAVAIL;
}

static void
probed(void *arg, bool reached)
{
	svc *s = arg;
	atomic_fetch_add(&s->probes, 1);
	if (reached)
		atomic_fetch_add(&s->reached, 1);
}

static dre_applier_cfg
cfg_of(dre_store *st, svc *s, const char *group, dre_recover_fn rec)
{
	dre_applier_cfg cfg = { .name = "test",
		.topics = topics,
		.ntopics = 1,
		.st = st,
		.cf = CF_AP,
		.kafka = &props,
		.group_id = group,
		.apply = apply,
		.recover = rec,
		.batch_begin = begin,
		.batch_end = end,
		.probed = probed,
		.arg = s,
		.max_batch = 7 };
	return cfg;
}

static dre_applier *
start(dre_store *st, svc *s, const char *group, dre_recover_fn rec)
{
	dre_applier_cfg cfg = cfg_of(st, s, group, rec);
	dre_applier    *ap = NULL;
	assert_int_equal(dre_applier_start(&ap, &cfg), DRE_OK);
	return ap;
}

// wait_count waits up to 20 s for *n to reach want.
static void
wait_count(atomic_int *n, int want)
{
	for (int i = 0; i < 400 && atomic_load(n) < want; i++)
		sleep_ms(50);
	assert_true(atomic_load(n) >= want);
}

static int64_t
stored_sum(dre_store *st, const char *budget)
{
	return sum_of(st, NULL, budget);
}

// wait_sum waits up to 20 s for the stored sum of budget to reach want.
static void
wait_sum(dre_store *st, const char *budget, int64_t want)
{
	for (int i = 0; i < 400 && stored_sum(st, budget) != want; i++)
		sleep_ms(50);
	assert_int_equal(stored_sum(st, budget), want);
}

static void
test_exactly_once(void **state)
{
	dre_store    *st = store_open("once");
	svc           s = { 0 };
	char          budget[40];
	dre_producer *p = producer(budget, sizeof(budget), 'b');

	// 50 events of 1..50, each produced twice (a re-published event).
	int64_t want = 0;
	for (int i = 1; i <= 50; i++) {
		char id[37];
		snprintf(
		    id, sizeof(id), "%s", produce(p, "t1", budget, i, NULL));
		produce(p, "t1", budget, i, id);
		want += i;
	}
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	dre_applier *ap = start(st, &s, NULL, NULL);
	wait_sum(st, budget, want);
	dre_applier_stats stats;
	for (int i = 0; i < 100; i++) {
		dre_applier_stats_get(ap, &stats);
		if (stats.applied + stats.duplicates >= 100)
			break;
		sleep_ms(50);
	}
	assert_int_equal(stats.applied, 50);
	assert_int_equal(stats.duplicates, 50);
	assert_int_equal(atomic_load(&s.applied), 50);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.begins), atomic_load(&s.ends));

	// Restart: the stored positions continue; nothing is applied twice,
	// and re-published old events are still recognised.
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 10; i++)
		produce(p, "t1", budget, 100, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	ap = start(st, &s, NULL, NULL);
	wait_sum(st, budget, want + 1000);
	sleep_ms(300);
	assert_int_equal(atomic_load(&s.applied), 10);
	dre_applier_stop(ap);
	assert_int_equal(stored_sum(st, budget), want + 1000);
	dre_producer_close(p);
	store_remove(st);
}

// has_key: the applier keeps eventId id.
static bool
has_key(dre_store *st, const char *id)
{
	char   k[40], *v = NULL;
	size_t vl = 0;
	k[0] = 'd';
	memcpy(k + 1, id, 36);
	dre_err err = dre_store_get(st, CF_AP, k, 37, &v, &vl);
	free(v);
	assert_true(err == DRE_OK || err == DRE_ENOTFOUND);
	return err == DRE_OK;
}

// An event that changes nothing leaves no eventId key (a webhook service
// without subscribers ignores five results of every sale): its copy is
// applied again, and changes nothing again; an event that changed the state
// keeps its key, and its copy is recognised.
static void
test_no_key_for_an_event_that_changed_nothing(void **state)
{
	dre_store    *st = store_open("noop");
	svc           s = { 0 };
	char          budget[40], noop[3][37], eff[3][37];
	dre_producer *p = producer(budget, sizeof(budget), 'n');

	s.watch = budget;
	for (int i = 0; i < 3; i++) {
		snprintf(noop[i], sizeof noop[i], "%s",
		    produce(p, "t1", budget, 0, NULL));
		produce(p, "t1", budget, 0, noop[i]);
		snprintf(eff[i], sizeof eff[i], "%s",
		    produce(p, "t1", budget, i + 1, NULL));
		produce(p, "t1", budget, i + 1, eff[i]);
	}
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	dre_applier *ap = start(st, &s, NULL, NULL);
	wait_sum(st, budget, 6); // the copies come before the last event
	wait_count(&s.noops, 6);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.noops), 6);
	assert_int_equal(atomic_load(&s.committed), 3);
	assert_int_equal(stored_sum(st, budget), 6);
	for (int i = 0; i < 3; i++) {
		assert_false(has_key(st, noop[i]));
		assert_true(has_key(st, eff[i]));
	}
	dre_producer_close(p);
	store_remove(st);
}

static void
test_transient_and_poison(void **state)
{
	dre_store    *st = store_open("retry");
	svc           s = { 0 };
	char          budget[40];
	dre_producer *p = producer(budget, sizeof(budget), 'b');
	atomic_store(&s.fail_next, 2);
	dre_applier *ap = start(st, &s, NULL, NULL);
	for (int i = 0; i < 20; i++)
		produce(p, "t1", budget, 5, NULL);
	// A message whose eventId reads but whose body does not decode.
	uint8_t bad[64] = { 0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 8 };
	memcpy(bad + 11, "abcd", 4);
	char key[64];
	int  kl = snprintf(key, sizeof(key), "t1/%s", budget);
	assert_int_equal(dre_producer_send(p, DRE_TOPIC_BUDGET_STATUS, key,
	                     (size_t) kl, bad, 15, NULL),
	    DRE_OK);
	for (int i = 0; i < 5; i++)
		produce(p, "t1", budget, 1, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	wait_sum(st, budget, 105);
	dre_applier_stats stats;
	dre_applier_stats_get(ap, &stats);
	assert_int_equal(stats.dead_letters, 1);
	assert_true(stats.retries >= 2);
	assert_true(atomic_load(&s.max_attempts) >= 2);
	dre_applier_stop(ap);
	dre_producer_close(p);
	store_remove(st);
}

static void
test_cluster_change_recovers(void **state)
{
	dre_store *st = store_open("cluster");
	svc        s = { 0 };
	// Positions that belong to another cluster.
	assert_int_equal(
	    dre_store_put(st, CF_AP, "c", 1, "old-cluster", 11, true), DRE_OK);
	uint8_t off[8] = { 0, 0, 0, 0, 0, 0, 0x10, 0 };
	char    key[64] = "o" DRE_TOPIC_BUDGET_STATUS;
	size_t  kl = strlen(key) + 1;
	memset(key + kl, 0, 4);
	assert_int_equal(
	    dre_store_put(st, CF_AP, key, kl + 4, off, 8, true), DRE_OK);
	dre_applier *ap = start(st, &s, NULL, recover_zero);
	wait_sum(st, "b-snap", 1000);
	assert_true(atomic_load(&s.recovers) >= 1);
	dre_applier_stop(ap);
	char  *v = NULL;
	size_t vl = 0;
	assert_int_equal(dre_store_get(st, CF_AP, "c", 1, &v, &vl), DRE_OK);
	assert_true(vl != 11 || memcmp(v, "old-cluster", 11) != 0);
	free(v);
	store_remove(st);
}

static void
test_group_mode(void **state)
{
	dre_store    *st = store_open("group");
	svc           s = { 0 };
	char          budget[40];
	dre_producer *p = producer(budget, sizeof(budget), 'g');
	for (int i = 0; i < 30; i++)
		produce(p, "t2", budget, 2, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	dre_kvlist_set(&props, "session.timeout.ms", "6000");
	dre_kvlist_set(&props, "heartbeat.interval.ms", "500");
	dre_applier *ap = start(st, &s, "dre-test-group", NULL);
	wait_sum(st, budget, 60);
	dre_applier_stop(ap);
	// A new member of the group starts from the stored positions. Other
	// tests' events on the topic that the first member had not reached
	// when it stopped (it stops once this budget's sum is there) are read
	// now: only this budget's events are counted.
	memset(&s, 0, sizeof(s));
	s.watch = budget;
	for (int i = 0; i < 5; i++)
		produce(p, "t2", budget, 2, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	ap = start(st, &s, "dre-test-group", NULL);
	wait_sum(st, budget, 70);
	dre_applier_stop(ap);
	// Exactly the 5 new events were written (a batch the group's rebalance
	// dropped may have run apply before and been rolled back), and nothing
	// was applied twice: the sum stays exact after the stop.
	assert_int_equal(atomic_load(&s.committed), 5);
	assert_int_equal(stored_sum(st, budget), 70);
	dre_producer_close(p);
	store_remove(st);
}

static void
test_refresh(void **state)
{
	dre_store    *st = store_open("refresh");
	svc           s = { 0 };
	char          budget[40];
	dre_producer *p = producer(budget, sizeof(budget), 'r');
	// A first run stores positions.
	dre_applier *ap = start(st, &s, NULL, NULL);
	for (int i = 0; i < 5; i++)
		produce(p, "t1", budget, 1, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	wait_sum(st, budget, 5);
	dre_applier_stop(ap);
	assert_true(atomic_load(&s.reached) >= 1);

	// A refresh at start from an owner that does not answer: retried,
	// and the feed is followed from the stored positions meanwhile.
	memset(&s, 0, sizeof(s));
	dre_applier_cfg cfg = cfg_of(st, &s, NULL, recover_down);
	cfg.recover_at_start = true;
	assert_int_equal(dre_applier_start(&ap, &cfg), DRE_OK);
	for (int i = 0; i < 5; i++)
		produce(p, "t1", budget, 1, NULL);
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	wait_sum(st, budget, 10);
	wait_count(&s.recovers, 2);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.begins), atomic_load(&s.ends));

	// Without a cluster: a recovery every resync_ms.
	memset(&s, 0, sizeof(s));
	dre_kvlist none = { 0 };
	cfg = cfg_of(st, &s, NULL, recover_zero);
	cfg.kafka = &none;
	cfg.resync_ms = 100;
	assert_int_equal(dre_applier_start(&ap, &cfg), DRE_OK);
	wait_count(&s.recovers, 3);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.probes), 0);
	assert_int_equal(stored_sum(st, "b-snap"), 1000);
	dre_producer_close(p);
	store_remove(st);
}

// A static applier reads every partition the cluster has: a topic created
// wider than dre_topics[] declares (here: not declared at all, 1 partition
// by the table) before it starts, and one that appears (with more than one
// partition) while it runs.
static atomic_int parts_seen[512];

static void
on_delivered(void *arg, dre_err err, void *msg_opaque, int32_t partition,
    int64_t offset)
{
	if (err == DRE_OK && partition >= 0 && partition < 512)
		atomic_fetch_add(&parts_seen[partition], 1);
}

// later_sums_are checks the stored sum of each of the later topic's 40
// budgets.
static void
later_sums_are(dre_store *st, int64_t want)
{
	for (int i = 0; i < 40; i++) {
		char budget[32];
		snprintf(budget, sizeof budget, "w-1-%d", i);
		assert_int_equal(stored_sum(st, budget), want);
	}
}

static void
test_static_reads_every_partition_of_the_cluster(void **state)
{
	char wide[64], later[64], huge[64];
	snprintf(wide, sizeof wide, "test.wide.%d", rand());
	snprintf(later, sizeof later, "test.later.%d", rand());
	snprintf(huge, sizeof huge, "test.huge.%d", rand());
	assert_int_equal(dre_bus_mock_topic_create(mock, wide, 5), DRE_OK);
	// More partitions than an applier once had room for (256).
	assert_int_equal(dre_bus_mock_topic_create(mock, huge, 300), DRE_OK);
	const char *const three[] = { wide, later, huge };
	dre_store        *st = store_open("wide");
	svc               s = { 0 };
	dre_applier_cfg   cfg = cfg_of(st, &s, NULL, NULL);
	cfg.topics = three;
	cfg.ntopics = 3;
	dre_applier *ap = NULL;
	assert_int_equal(dre_applier_start(&ap, &cfg), DRE_OK);
	// The consumer's own request for the unknown topic may have made the
	// mock create it (4 partitions) first: either way it has several.
	dre_err made = dre_bus_mock_topic_create(mock, later, 5);
	int     counts[3] = { 0, 0, 0 };
	assert_int_equal(
	    dre_bus_cluster_info(&props, NULL, 0, three, 3, counts, 5000),
	    DRE_OK);
	assert_int_equal(counts[0], 5);
	assert_int_equal(counts[1], made == DRE_OK ? 5 : 4);
	assert_int_equal(counts[2], 300);

	dre_producer *p = NULL;
	assert_int_equal(
	    dre_producer_open(&p, &props, on_delivered, NULL), DRE_OK);
	for (int t = 0; t < 3; t++) {
		for (int i = 0; i < 512; i++)
			atomic_store(&parts_seen[i], 0);
		for (int i = 0; i < 40; i++) {
			char budget[32];
			snprintf(budget, sizeof budget, "w-%d-%d", t, i);
			produce_to(p, three[t], "t1", budget, 1, NULL);
		}
		assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
		// Events on the last partitions, which the table knows nothing
		// of (the keys are fixed, and so are their partitions).
		int last = 0;
		for (int i = 0; i < 512; i++)
			if (atomic_load(&parts_seen[i]) > 0)
				last = i;
		assert_true(last >= (t < 2 ? counts[t] - 1 : 256));
	}
	// Every event of every partition is applied (the later topic's
	// extra partitions from the next probe, within seconds).
	wait_count(&s.committed, 120);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.committed), 120);
	later_sums_are(st, 1);

	// Started again: the positions of all partitions are kept (nothing
	// applied twice, new events read).
	memset(&s, 0, sizeof(s));
	assert_int_equal(dre_applier_start(&ap, &cfg), DRE_OK);
	for (int i = 0; i < 40; i++) {
		char budget[32];
		snprintf(budget, sizeof budget, "w-1-%d", i);
		produce_to(p, later, "t1", budget, 1, NULL);
	}
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	wait_count(&s.committed, 40);
	dre_applier_stop(ap);
	assert_int_equal(atomic_load(&s.committed), 40);
	later_sums_are(st, 2);
	dre_producer_close(p);
	store_remove(st);
}

int
main(void)
{
	srand((unsigned) time(NULL) ^ (unsigned) getpid());
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exactly_once),
		cmocka_unit_test(
		    test_no_key_for_an_event_that_changed_nothing),
		cmocka_unit_test(test_transient_and_poison),
		cmocka_unit_test(test_cluster_change_recovers),
		cmocka_unit_test(test_group_mode),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(
		    test_static_reads_every_partition_of_the_cluster),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
