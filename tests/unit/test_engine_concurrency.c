// test_engine_concurrency.c -- readers evaluate and pack answers while a
// writer swaps index versions (upserts, deletes, snapshot loads): every
// answer is one consistent version (a promotion named "v<k>" gives the
// discount of version k) and nothing an answer points at is freed while the
// reader holds the index; and changes staged together (a batch of the feed)
// are seen all at once or not at all; and the exhausted-budget set, written
// by the feed and by side-effect results at once (out of order) while
// evaluations and read-your-writes waits read it, keeps the highest version
// of each budget. Run under ASan (use-after-free) and TSan (races).
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "engine.h"

#define TENANT  "tenant-abc"
#define PROMO   "90000000-0000-4000-8000-000000000001"
#define READERS 3
#define CHANGES 20000

typedef struct {
	eng_engine     *e;
	atomic_bool     done;
	atomic_int      bad; // answers that mixed versions or did not pack
	atomic_long     answers, discounted;
	char            why[256];
	pthread_mutex_t why_mu;
} shared;

static int
pct_of(long version)
{
	return (int) (version % 30) + 1;
}

static void
promo_doc(char *buf, size_t cap, long version)
{
	snprintf(buf, cap,
	    "{\"id\":\"" PROMO "\",\"name\":\"v%ld\",\"type\":\"ARTICLE\","
	    "\"status\":\"ACTIVE\",\"conditions\":[{\"type\":\"ARTICLE\","
	    "\"values\":[\"A\"]}],\"actions\":[{\"type\":\"ARTICLE\","
	    "\"discountType\":\"PERCENTAGE\",\"value\":%d,\"target\":{"
	    "\"articles\":[\"A\"]}}]}",
	    version, pct_of(version));
}

static void
note_bad(shared *sh, const char *what, long a, long b)
{
	pthread_mutex_lock(&sh->why_mu);
	if (sh->why[0] == '\0')
		snprintf(sh->why, sizeof sh->why, "%s (%ld, %ld)", what, a, b);
	pthread_mutex_unlock(&sh->why_mu);
	atomic_fetch_add(&sh->bad, 1);
}

static void *
reader(void *arg)
{
	shared    *sh = arg;
	dre_arena *a = dre_arena_alloc(0);
	if (a == NULL) {
		note_bad(sh, "no arena", 0, 0);
		return NULL;
	}
	Dre__BasketItem it = DRE__BASKET_ITEM__INIT;
	it.line_reference = "L1";
	it.article_number = "A";
	it.quantity = 1000;
	it.unit_price = 1000; // 10.00: p percent is p * 10 minor units
	Dre__BasketItem     *items[] = { &it };
	Dre__EvaluateRequest req = DRE__EVALUATE_REQUEST__INIT;
	req.n_items = 1;
	req.items = items;
	eng_eval_ctx ctx = { .tenant = TENANT,
		.now_ms = 1780842601234,
		.counter = 1,
		.transaction_id = "T",
		.currency = "EUR" };
	uint8_t      buf[8192];
	while (!atomic_load(&sh->done)) {
		dre_arena_reset(a);
		const eng_index       *ix = eng_acquire(sh->e);
		Dre__EvaluateResponse *r = NULL;
		eng_eval_error         err;
		if (eng_evaluate(&r, a, ix, &req, &ctx, &err) != DRE_OK) {
			eng_index_release(ix);
			note_bad(sh, "evaluate failed", 0, 0);
			break;
		}
		// Pack while the reference is held (as h_evaluate does), then
		// read what the answer says.
		size_t len = dre__evaluate_response__get_packed_size(r);
		if (len > sizeof buf) {
			eng_index_release(ix);
			note_bad(sh, "answer too long", (long) len, 0);
			break;
		}
		dre__evaluate_response__pack(r, buf);
		long got = r->line_items[0]->line_discount;
		long version = -1;
		if (r->line_items[0]->n_discounts == 1) {
			const char *name
			    = r->line_items[0]->discounts[0]->promotion_name;
			if (name == NULL || name[0] != 'v')
				note_bad(sh, "bad name", 0, 0);
			else
				version = strtol(name + 1, NULL, 10);
		}
		eng_index_release(ix);
		Dre__EvaluateResponse *back
		    = dre__evaluate_response__unpack(NULL, len, buf);
		if (back == NULL) {
			note_bad(sh, "answer does not unpack", 0, 0);
			break;
		}
		dre__evaluate_response__free_unpacked(back, NULL);
		if (version >= 0 && got != pct_of(version) * 10)
			note_bad(sh, "version, discount", version, got);
		if (version < 0 && got != 0)
			note_bad(sh, "a discount without a promotion", got, 0);
		atomic_fetch_add(&sh->answers, 1);
		if (version >= 0)
			atomic_fetch_add(&sh->discounted, 1);
	}
	dre_arena_free(a);
	return NULL;
}

static void
test_readers_during_swaps(void **state)
{
	(void) state;
	shared sh = { 0 };
	pthread_mutex_init(&sh.why_mu, NULL);
	assert_int_equal(eng_alloc(&sh.e), DRE_OK);
	char doc[1024];
	promo_doc(doc, sizeof doc, 1);
	eng_master_change c
	    = { ENG_MK_PROMOTION, TENANT, PROMO, 1, doc, strlen(doc) };
	assert_int_equal(eng_apply(sh.e, &c, 1, NULL), DRE_OK);

	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &sh), 0);
	// Upserts mostly, a delete every 7th change and a whole snapshot load
	// every 50th: each builds a new version and frees the old one when the
	// last reader lets go.
	for (long v = 2; v <= CHANGES; v++) {
		bool applied = false;
		if (v % 50 == 0) {
			promo_doc(doc, sizeof doc, v);
			eng_master_change s = { ENG_MK_PROMOTION, TENANT,
				PROMO, v, doc, strlen(doc) };
			assert_int_equal(
			    eng_load(sh.e, &s, 1, v, NULL), DRE_OK);
			continue;
		}
		if (v % 7 == 0) {
			eng_master_change d
			    = { ENG_MK_PROMOTION, TENANT, PROMO, v, NULL, 0 };
			assert_int_equal(
			    eng_apply(sh.e, &d, v, &applied), DRE_OK);
		} else {
			promo_doc(doc, sizeof doc, v);
			eng_master_change u = { ENG_MK_PROMOTION, TENANT,
				PROMO, v, doc, strlen(doc) };
			assert_int_equal(
			    eng_apply(sh.e, &u, v, &applied), DRE_OK);
		}
		assert_true(applied);
	}
	atomic_store(&sh.done, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	if (sh.bad != 0)
		fail_msg("%d bad answers; first: %s", sh.bad, sh.why);
	// The readers really read while the versions changed.
	assert_true(atomic_load(&sh.answers) > 0);
	assert_true(atomic_load(&sh.discounted) > 0);
	// The last version is what a reader sees now.
	const eng_index *ix = eng_acquire(sh.e);
	assert_int_equal(eng_index_version(ix), CHANGES);
	eng_index_release(ix);
	eng_free(sh.e);
	pthread_mutex_destroy(&sh.why_mu);
}

// ---- staged batches -------------------------------------------------------

#define BATCHES 1000

static int64_t
version_of(const eng_index *ix, const char *key)
{
	return eng_index_version_of(ix, TENANT, ENG_MK_PROMOTION, key);
}

// pair_reader checks that keys A and B always have the same version: the
// writer changes both in every batch.
static void *
pair_reader(void *arg)
{
	shared *sh = arg;
	while (!atomic_load(&sh->done)) {
		const eng_index *ix = eng_acquire(sh->e);
		int64_t a = version_of(ix, "A"), b = version_of(ix, "B");
		eng_index_release(ix);
		if (a != b)
			note_bad(sh, "half a batch", (long) a, (long) b);
		atomic_fetch_add(&sh->answers, 1);
	}
	return NULL;
}

static void
test_batches_publish_at_once(void **state)
{
	(void) state;
	shared sh = { 0 };
	pthread_mutex_init(&sh.why_mu, NULL);
	assert_int_equal(eng_alloc(&sh.e), DRE_OK);
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, pair_reader, &sh), 0);
	// The batches take milliseconds: start them once the readers read, so
	// the two overlap (bounded: a reader that never runs fails below).
	for (int64_t end = dre_mono_ms() + 10000;
	     atomic_load(&sh.answers) < READERS && dre_mono_ms() < end;)
		sched_yield();
	int64_t published = -1;
	for (long v = 1; v <= BATCHES; v++) {
		bool              applied = false;
		eng_master_change a
		    = { ENG_MK_PROMOTION, TENANT, "A", v, NULL, 0 };
		eng_master_change b
		    = { ENG_MK_PROMOTION, TENANT, "B", v, NULL, 0 };
		if (v % 50 == 0) {
			// A snapshot replaces what is staged: nothing of A
			// and B (deletes are not loaded).
			assert_int_equal(
			    eng_stage(sh.e, &a, v, &applied), DRE_OK);
			assert_int_equal(
			    eng_stage_load(sh.e, NULL, 0, v, NULL), DRE_OK);
			eng_publish(sh.e);
			published = -1;
			continue;
		}
		assert_int_equal(eng_stage(sh.e, &a, v, &applied), DRE_OK);
		assert_true(applied);
		// Again in the same batch: the staged version is seen.
		assert_int_equal(eng_stage(sh.e, &a, v, &applied), DRE_OK);
		assert_false(applied);
		assert_int_equal(eng_stage(sh.e, &b, v, &applied), DRE_OK);
		// Nothing is visible before the publish.
		const eng_index *ix = eng_acquire(sh.e);
		assert_int_equal(version_of(ix, "A"), published);
		eng_index_release(ix);
		if (v % 7 == 0) {
			eng_discard(sh.e); // a batch that was dropped
			continue;
		}
		eng_publish(sh.e);
		published = v;
	}
	atomic_store(&sh.done, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	if (sh.bad != 0)
		fail_msg("%d bad reads; first: %s", sh.bad, sh.why);
	assert_true(atomic_load(&sh.answers) > 0);
	const eng_index *ix = eng_acquire(sh.e);
	assert_int_equal(version_of(ix, "A"), published);
	assert_int_equal(version_of(ix, "B"), published);
	eng_index_release(ix);
	eng_free(sh.e);
	pthread_mutex_destroy(&sh.why_mu);
}

// ---- the exhausted-budget set ---------------------------------------------

#define BUDGETS  300 // past several growths of the table
#define VERSIONS 400

typedef struct {
	eng_budget_set *b;
	int             writer; // takes the versions v with v % 2 == writer
	atomic_bool    *done;
	atomic_int     *bad;
	atomic_long    *reads;
} bs_arg;

static void
budget_name(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, "b-%03d", i);
}

// bs_writer records versions of every budget, interleaved with the other
// writer, so older versions often arrive after newer ones.
static void *
bs_writer(void *arg)
{
	bs_arg *a = arg;
	char    id[16];
	for (int v = 1 + a->writer; v <= VERSIONS; v += 2)
		for (int i = 0; i < BUDGETS; i++) {
			budget_name(id, sizeof id, i);
			eng_budget_set_update(a->b, TENANT, id, v, v % 3 == 0);
		}
	return NULL;
}

// bs_reader checks that the version it reads of a budget never goes back.
static void *
bs_reader(void *arg)
{
	bs_arg *a = arg;
	int64_t seen[BUDGETS];
	char    id[16];
	for (int i = 0; i < BUDGETS; i++)
		seen[i] = -1;
	for (unsigned n = 0; !atomic_load(a->done); n++) {
		int i = (int) (n * 7919u % BUDGETS);
		budget_name(id, sizeof id, i);
		int64_t v = eng_budget_set_version(a->b, TENANT, id);
		(void) eng_budget_set_exhausted(a->b, TENANT, id);
		if (v < seen[i] || v > VERSIONS
		    || eng_budget_set_count(a->b) > BUDGETS)
			atomic_fetch_add(a->bad, 1);
		seen[i] = v;
		atomic_fetch_add(a->reads, 1);
	}
	return NULL;
}

static void
test_budget_set_under_writers(void **state)
{
	(void) state;
	eng_budget_set *b = NULL;
	assert_int_equal(eng_budget_set_alloc(&b), DRE_OK);
	atomic_bool done = false;
	atomic_int  bad = 0;
	atomic_long reads = 0;
	bs_arg      args[2 + READERS];
	pthread_t   th[2 + READERS];
	for (int i = 0; i < 2 + READERS; i++) {
		args[i] = (bs_arg) { b, i, &done, &bad, &reads };
		assert_int_equal(pthread_create(&th[i], NULL,
		                     i < 2 ? bs_writer : bs_reader, &args[i]),
		    0);
	}
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	// The readers read while the writers wrote; let them read the end too.
	for (long end = atomic_load(&reads) + 1000; atomic_load(&reads) < end;)
		sched_yield();
	atomic_store(&done, true);
	for (int i = 2; i < 2 + READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&bad), 0);
	// Every budget holds the highest version and its state.
	char id[16];
	for (int i = 0; i < BUDGETS; i++) {
		budget_name(id, sizeof id, i);
		assert_int_equal(
		    eng_budget_set_version(b, TENANT, id), VERSIONS);
		assert_int_equal(eng_budget_set_exhausted(b, TENANT, id),
		    VERSIONS % 3 == 0);
	}
	assert_int_equal(
	    eng_budget_set_count(b), VERSIONS % 3 == 0 ? BUDGETS : 0);
	assert_int_equal(eng_budget_set_version(b, TENANT, "b-none"), -1);
	eng_budget_set_clear(b);
	assert_int_equal(eng_budget_set_version(b, TENANT, "b-000"), -1);
	eng_budget_set_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readers_during_swaps),
		cmocka_unit_test(test_batches_publish_at_once),
		cmocka_unit_test(test_budget_set_under_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
