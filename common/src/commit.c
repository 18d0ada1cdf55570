// commit.c -- group commit: one synced batch for every caller queued while
// the previous write was in progress.
//
// Each caller waits on its own semaphore, posted alone when its group is
// written and without the committer's lock: a broadcast would wake every
// waiting caller (up to one per RPC worker) for every write, most of them
// only to sleep again behind the next group, and a caller woken under the
// lock would sleep again on it; that herd cost more CPU than the writes.
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dre/commit.h"
#include "dre/log.h"
#include "dre/svc.h"

typedef struct waiter waiter;
struct waiter {
	dre_commit_fill fill;
	void           *arg;
	dre_err         err;
	waiter         *next;
	dre_commit_done done; // NULL: a blocked caller, posted on sem
	sem_t           sem; // posted once err is set
};

struct dre_committer {
	dre_store          *st;
	dre_batch          *b;
	pthread_t           th;
	pthread_mutex_t     mu;
	pthread_cond_t      queued; // the committer waits for work
	bool                idle; // the committer waits on queued
	waiter             *head, *tail; // under mu
	bool                stop;
	dre_committer_stats stats; // under mu
};

static void *
committer_main(void *arg)
{
	dre_committer *c = arg;
	dre_thread_name("commit", NULL);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->head == NULL && !c->stop) {
			c->idle = true;
			pthread_cond_wait(&c->queued, &c->mu);
			c->idle = false;
		}
		if (c->head == NULL)
			break;
		waiter *group = c->head;
		c->head = c->tail = NULL;
		pthread_mutex_unlock(&c->mu);

		int64_t n = 0;
		dre_batch_clear(c->b);
		for (waiter *w = group; w != NULL; w = w->next, n++)
			w->fill(w->arg, c->b);
		dre_err err = dre_store_write(c->st, c->b, true);
		if (err != DRE_OK)
			dre_error("group commit of %lld: %s", (long long) n,
			    dre_strerror(err));

		pthread_mutex_lock(&c->mu);
		c->stats.commits += n;
		c->stats.writes++;
		if (n > c->stats.max_group)
			c->stats.max_group = n;
		pthread_mutex_unlock(&c->mu);
		for (waiter *w = group; w != NULL;) {
			// w dies once posted (glibc's sem_post is safe
			// against the waiter destroying it then).
			waiter *next = w->next;
			if (w->done != NULL) {
				w->done(w->arg, err);
				free(w);
			} else {
				w->err = err;
				sem_post(&w->sem);
			}
			w = next;
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

dre_err
dre_committer_open(dre_committer **cp, dre_store *st)
{
	dre_committer *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DRE_ENOMEM;
	c->st = st;
	if ((c->b = dre_batch_alloc()) == NULL) {
		free(c);
		return DRE_ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->queued, NULL);
	if (pthread_create(&c->th, NULL, committer_main, c) != 0) {
		dre_batch_free(c->b);
		pthread_cond_destroy(&c->queued);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return DRE_ENOMEM;
	}
	*cp = c;
	return DRE_OK;
}

// enqueue appends w to the next group; false after close.
static bool
enqueue(dre_committer *c, waiter *w)
{
	pthread_mutex_lock(&c->mu);
	if (c->stop) {
		pthread_mutex_unlock(&c->mu);
		return false;
	}
	if (c->tail != NULL)
		c->tail->next = w;
	else
		c->head = w;
	c->tail = w;
	if (c->idle)
		pthread_cond_signal(&c->queued);
	pthread_mutex_unlock(&c->mu);
	return true;
}

dre_err
dre_committer_commit(dre_committer *c, dre_commit_fill fill, void *arg)
{
	waiter w = { fill, arg, DRE_OK, NULL, NULL };
	sem_init(&w.sem, 0, 0);
	if (!enqueue(c, &w)) {
		sem_destroy(&w.sem);
		return DRE_ECLOSED;
	}
	while (sem_wait(&w.sem) != 0 && errno == EINTR)
		;
	sem_destroy(&w.sem);
	return w.err;
}

dre_err
dre_committer_commit_async(
    dre_committer *c, dre_commit_fill fill, dre_commit_done done, void *arg)
{
	waiter *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return DRE_ENOMEM;
	w->fill = fill;
	w->arg = arg;
	w->done = done;
	if (!enqueue(c, w)) {
		free(w);
		return DRE_ECLOSED;
	}
	return DRE_OK;
}

void
dre_committer_close(dre_committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->queued);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	dre_batch_free(c->b);
	pthread_cond_destroy(&c->queued);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
dre_committer_stats_get(dre_committer *c, dre_committer_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	pthread_mutex_unlock(&c->mu);
}
