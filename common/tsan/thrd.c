// thrd.c -- ThreadSanitizer builds only (DRE_TSAN): C11 threads (thrd_*,
// mtx_*, cnd_*, call_once) over pthreads.
//
// librdkafka uses C11 threads. glibc implements them by calling its
// internal pthread functions directly, not the pthread_* symbols TSan
// intercepts: a thread started with thrd_create has no TSan state (the
// first allocation on it crashes, GCC 12 / LLVM 14 runtimes), and every
// mtx_lock is invisible, so each hand-off through a librdkafka queue looks
// like a race. libdre_common comes before libc in every DRE binary's search
// order, so these definitions take the calls and TSan sees real thread
// starts, joins, locks and waits. glibc's mtx_t and cnd_t hold a
// pthread_mutex_t and pthread_cond_t (that is how glibc itself implements
// them). Not built otherwise.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <threads.h>

typedef struct {
	thrd_start_t fn;
	void        *arg;
} thrd_start;

static void *
thrd_trampoline(void *p)
{
	thrd_start s = *(thrd_start *) p;
	free(p);
	return (void *) (intptr_t) s.fn(s.arg);
}

int
thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	thrd_start *s = malloc(sizeof(*s));
	if (s == NULL)
		return thrd_nomem;
	s->fn = fn;
	s->arg = arg;
	pthread_t t;
	if (pthread_create(&t, NULL, thrd_trampoline, s) != 0) {
		free(s);
		return thrd_error;
	}
	*thr = (thrd_t) t;
	return thrd_success;
}

int
thrd_join(thrd_t thr, int *res)
{
	void *r = NULL;
	if (pthread_join((pthread_t) thr, &r) != 0)
		return thrd_error;
	if (res != NULL)
		*res = (int) (intptr_t) r;
	return thrd_success;
}

int
thrd_detach(thrd_t thr)
{
	return pthread_detach((pthread_t) thr) == 0 ? thrd_success
	                                            : thrd_error;
}

static int
thrd_rc(int rc)
{
	return rc == 0        ? thrd_success
	    : rc == ETIMEDOUT ? thrd_timedout
	    : rc == EBUSY     ? thrd_busy
	    : rc == ENOMEM    ? thrd_nomem
	                      : thrd_error;
}

int
mtx_init(mtx_t *m, int type)
{
	pthread_mutexattr_t at;
	pthread_mutexattr_init(&at);
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&at, PTHREAD_MUTEX_RECURSIVE);
	int rc = pthread_mutex_init((pthread_mutex_t *) m, &at);
	pthread_mutexattr_destroy(&at);
	return thrd_rc(rc);
}

int
mtx_lock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_lock((pthread_mutex_t *) m));
}

int
mtx_trylock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_trylock((pthread_mutex_t *) m));
}

int
mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
	return thrd_rc(pthread_mutex_timedlock((pthread_mutex_t *) m, ts));
}

int
mtx_unlock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_unlock((pthread_mutex_t *) m));
}

void
mtx_destroy(mtx_t *m)
{
	pthread_mutex_destroy((pthread_mutex_t *) m);
}

int
cnd_init(cnd_t *c)
{
	return thrd_rc(pthread_cond_init((pthread_cond_t *) c, NULL));
}

int
cnd_signal(cnd_t *c)
{
	return thrd_rc(pthread_cond_signal((pthread_cond_t *) c));
}

int
cnd_broadcast(cnd_t *c)
{
	return thrd_rc(pthread_cond_broadcast((pthread_cond_t *) c));
}

int
cnd_wait(cnd_t *c, mtx_t *m)
{
	return thrd_rc(
	    pthread_cond_wait((pthread_cond_t *) c, (pthread_mutex_t *) m));
}

int
cnd_timedwait(
    cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
	return thrd_rc(pthread_cond_timedwait(
	    (pthread_cond_t *) c, (pthread_mutex_t *) m, ts));
}

void
cnd_destroy(cnd_t *c)
{
	pthread_cond_destroy((pthread_cond_t *) c);
}

void
call_once(once_flag *flag, void (*fn)(void))
{
	pthread_once((pthread_once_t *) flag, fn);
}
