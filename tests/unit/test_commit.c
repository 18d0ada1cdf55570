// test_commit.c -- group commit: many concurrent callers, few synced writes,
// every caller's change durable when it returns.
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/commit.h"
#include "testkit.h"

#define THREADS 16
#define PER     200

static const char *const cfs[] = { "data" };
static char              dir[256];
static dre_store        *st;
static dre_committer    *cm;

typedef struct {
	int  thread, i;
	char key[32];
} change;

static void
fill(void *arg, dre_batch *b)
{
	change *c = arg;
	dre_batch_put(b, st, 1, c->key, strlen(c->key), "v", 1);
}

static void *
worker(void *arg)
{
	int t = (int) (intptr_t) arg;
	for (int i = 0; i < PER; i++) {
		change c = { t, i, { 0 } };
		snprintf(c.key, sizeof(c.key), "k-%02d-%04d", t, i);
		assert_int_equal(dre_committer_commit(cm, fill, &c), DRE_OK);
		// Durable (and visible) on return.
		char *v = NULL;
		assert_int_equal(
		    dre_store_get(st, 1, c.key, strlen(c.key), &v, NULL),
		    DRE_OK);
		free(v);
	}
	return NULL;
}

static void
test_group_commit(void **state)
{
	assert_int_equal(tk_tmpdir(dir, sizeof dir, "commit"), 0);
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 1 };
	assert_int_equal(dre_store_open(&st, &cfg), DRE_OK);
	assert_int_equal(dre_committer_open(&cm, st), DRE_OK);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *) (intptr_t) t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	dre_committer_stats s;
	dre_committer_stats_get(cm, &s);
	assert_int_equal(s.commits, THREADS * PER);
	// Concurrent callers share fsyncs.
	assert_true(s.writes < s.commits);
	assert_true(s.max_group > 1);
	printf("%lld commits in %lld synced writes (largest group %lld)\n",
	    (long long) s.commits, (long long) s.writes,
	    (long long) s.max_group);
	dre_committer_close(cm);
	dre_committer_close(NULL);
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

typedef struct {
	change          c;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int             calls;
	dre_err         err;
	bool            visible; // the change was readable in done
} async_change;

static void
async_done(void *arg, dre_err err)
{
	async_change *a = arg;
	char         *v = NULL;
	bool vis = dre_store_get(st, 1, a->c.key, strlen(a->c.key), &v, NULL)
	    == DRE_OK;
	free(v);
	pthread_mutex_lock(&a->mu);
	a->calls++;
	a->err = err;
	a->visible = vis;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

// dre_committer_commit_async returns at once; its completion runs once the
// change is durable, and close completes what is queued.
static void
test_commit_async(void **state)
{
	static async_change a[PER];
	(void) state;
	assert_int_equal(tk_tmpdir(dir, sizeof dir, "commit-async"), 0);
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 1 };
	assert_int_equal(dre_store_open(&st, &cfg), DRE_OK);
	assert_int_equal(dre_committer_open(&cm, st), DRE_OK);
	for (int i = 0; i < PER; i++) {
		snprintf(a[i].c.key, sizeof(a[i].c.key), "a-%04d", i);
		pthread_mutex_init(&a[i].mu, NULL);
		pthread_cond_init(&a[i].cv, NULL);
		a[i].err = DRE_EIO;
		assert_int_equal(
		    dre_committer_commit_async(cm, fill, async_done, &a[i]),
		    DRE_OK);
	}
	for (int i = 0; i < PER / 2; i++) {
		pthread_mutex_lock(&a[i].mu);
		while (a[i].calls == 0)
			pthread_cond_wait(&a[i].cv, &a[i].mu);
		pthread_mutex_unlock(&a[i].mu);
	}
	dre_committer_close(cm); // the rest complete before it returns
	for (int i = 0; i < PER; i++) {
		pthread_mutex_lock(&a[i].mu);
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].err, DRE_OK);
		assert_true(a[i].visible);
		pthread_mutex_unlock(&a[i].mu);
		pthread_cond_destroy(&a[i].cv);
		pthread_mutex_destroy(&a[i].mu);
	}
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_commit_async),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
