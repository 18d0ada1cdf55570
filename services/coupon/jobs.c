// coupon/jobs.c -- the background work of the coupon service: the sweeper
// (reservation TTL, validTo expiry, retention of finished reservations) and
// the CouponCodeBatch generator. Both run on their own thread; every change
// they make goes through the same per-code transitions as the API.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coupon.h"
#include "dre/outbox.h"
#include "dre/store.h"
#include "dre/clock.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "keys.h"

#define SWEEP_BATCH 512

typedef struct {
	int64_t when;
	char    tenant[DRE_UUID_LEN + 64];
	char    id[CP_ID_BYTES];
} due_item;

// due_scan lists up to cap index entries with tag whose time is <= until.
static size_t
due_scan(cp *s, char tag, int64_t until, due_item *v, size_t cap)
{
	dre_store_iter *it = NULL;
	const char     *k, *val;
	size_t          kl, vl, n = 0;
	if (dre_store_iter_open(&it, s->st, CF_IDX, &tag, 1) != DRE_OK)
		return 0;
	while (n < cap && dre_store_iter_next(it, &k, &kl, &val, &vl)) {
		if (kl < 10)
			continue;
		int64_t when = dre_be64_get((const unsigned char *) k + 1);
		if (when > until)
			break; // keys are in time order
		const char *t = k + 9;
		size_t      tl = strnlen(t, kl - 9);
		if (9 + tl + 1 >= kl || tl >= sizeof v[n].tenant
		    || kl - 10 - tl >= sizeof v[n].id)
			continue;
		v[n].when = when;
		memcpy(v[n].tenant, t, tl);
		v[n].tenant[tl] = '\0';
		memcpy(v[n].id, t + tl + 1, kl - 10 - tl);
		v[n].id[kl - 10 - tl] = '\0';
		n++;
	}
	dre_store_iter_close(it);
	return n;
}

void
cp_sweep(cp *s, int64_t now)
{
	due_item  *v = malloc(SWEEP_BATCH * sizeof *v);
	dre_arena *a = dre_arena_alloc(0);
	size_t     n;
	if (v == NULL || a == NULL)
		goto out;
	// Reservations whose TTL passed: back to ACTIVE. Each pass removes
	// the entries it handled, so the loop ends.
	while (!atomic_load(&s->stop)
	    && (n = due_scan(s, 'x', now, v, SWEEP_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			dre_arena_reset(a);
			cp_expire_hold(s, a, v[i].tenant, v[i].id, now);
		}
		if (n < SWEEP_BATCH)
			break;
	}
	// Codes whose validTo passed (validTo itself is still valid).
	while (!atomic_load(&s->stop)
	    && (n = due_scan(s, 'v', now - 1, v, SWEEP_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			dre_arena_reset(a);
			cp_expire_code(
			    s, a, v[i].tenant, v[i].id, v[i].when, now);
		}
		if (n < SWEEP_BATCH)
			break;
	}
	// Finished reservations past the retention: forgotten. Their
	// redemption records ('r', 'k') stay.
	while (!atomic_load(&s->stop)
	    && (n = due_scan(s, 'f', now - s->o.retention_ms, v, SWEEP_BATCH))
	        > 0) {
		dre_batch *b = dre_batch_alloc();
		if (b == NULL)
			break;
		for (size_t i = 0; i < n; i++) {
			char   k[512];
			size_t kl
			    = dre_key(k, sizeof k, 0, 2, v[i].tenant, v[i].id);
			if (kl > 0)
				dre_batch_delete(b, s->st, CF_RESV, k, kl);
			kl = cp_key_when(
			    k, sizeof k, 'f', v[i].when, v[i].tenant, v[i].id);
			if (kl > 0)
				dre_batch_delete(b, s->st, CF_IDX, k, kl);
		}
		dre_err err = dre_store_write(s->st, b, false);
		dre_batch_free(b);
		if (err != DRE_OK || n < SWEEP_BATCH)
			break;
	}
out:
	free(v);
	dre_arena_free(a);
}

static void *
sweeper_main(void *arg)
{
	cp *s = arg;
	dre_thread_name("coupon:sweep", NULL);
	while (!atomic_load(&s->stop)) {
		cp_sweep(s, dre_now_ms());
		pthread_mutex_lock(&s->job_mu);
		if (!atomic_load(&s->stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns
			    = (int64_t) ts.tv_nsec + s->o.sweep_ms * 1000000;
			ts.tv_sec += (time_t) (ns / 1000000000);
			ts.tv_nsec = (long) (ns % 1000000000);
			pthread_cond_timedwait(&s->job_cv, &s->job_mu, &ts);
		}
		pthread_mutex_unlock(&s->job_mu);
	}
	return NULL;
}

// ---- batches --------------------------------------------------------------

static dre_err
batch_save(cp *s, const char *tenant, const cp_batch *bt, const cp_event *e)
{
	dre_batch *b = dre_batch_alloc();
	dre_err    err = DRE_OK;
	if (b == NULL)
		return DRE_ENOMEM;
	cp_batch_stage(s, b, tenant, bt);
	if (e != NULL)
		err = cp_event_put(s, b, tenant, e);
	if (err == DRE_OK)
		err = dre_store_write(s->st, b, true);
	if (err == DRE_OK && e != NULL)
		dre_outbox_kick(s->ob);
	dre_batch_free(b);
	return err;
}

static void
batch_end(cp *s, const char *tenant, cp_batch *bt, const char *error)
{
	bt->state = error == NULL ? CP_BATCH_COMPLETED : CP_BATCH_FAILED;
	bt->completed_at = dre_now_ms();
	snprintf(bt->error, sizeof bt->error, "%s", error ? error : "");
	cp_event e = { .type = error == NULL ? "COUPON_BATCH_COMPLETED"
		                             : "COUPON_BATCH_FAILED",
		.type_id = bt->type_id,
		.batch_id = bt->id,
		.count = bt->generated,
		.reason = error };
	dre_err  err = batch_save(s, tenant, bt, &e);
	if (err != DRE_OK)
		dre_error("batch %s/%s: cannot record the end: %s", tenant,
		    bt->id, dre_strerror(err));
	else
		dre_info("batch %s/%s %s: %lld codes", tenant, bt->id,
		    cp_batch_state_name(bt->state), (long long) bt->generated);
}

void
cp_batch_run(cp *s, const char *tenant, const char *batch_id)
{
	dre_arena *a = dre_arena_alloc(0);
	cp_batch   bt;
	cp_type    t;
	cp_code   *codes = NULL;
	int64_t    chunk = s->o.batch_chunk > 0 ? s->o.batch_chunk : 1000;
	dre_err    err;

	if (a == NULL)
		return;
	if (cp_batch_load(s, a, tenant, batch_id, &bt) != DRE_OK
	    || bt.state == CP_BATCH_COMPLETED || bt.state == CP_BATCH_FAILED)
		goto out;
	if ((err = cp_type_load(s, a, tenant, bt.type_id, &t)) != DRE_OK) {
		batch_end(s, tenant, &bt,
		    err == DRE_ENOTFOUND ? "the coupon type no longer exists"
		                         : "the coupon type is unreadable");
		goto out;
	}
	if (bt.state == CP_BATCH_PENDING) {
		bt.state = CP_BATCH_GENERATING;
		bt.started_at = dre_now_ms();
		if (batch_save(s, tenant, &bt, NULL) != DRE_OK)
			goto out;
	}
	if ((codes = malloc((size_t) chunk * sizeof *codes)) == NULL)
		goto out;
	while (bt.generated < bt.number && !atomic_load(&s->stop)) {
		int64_t n = bt.number - bt.generated;
		int64_t now = dre_now_ms();
		if (n > chunk)
			n = chunk;
		for (int64_t i = 0; i < n; i++) {
			cp_code *c = &codes[i];
			memset(c, 0, sizeof *c);
			cp_code_generate(
			    c->code, t.prefix, (int) t.code_length);
			memcpy(c->type_id, t.id, sizeof c->type_id);
			c->state = CP_ACTIVE;
			c->origin = CP_ORIGIN_BATCH;
			memcpy(c->batch_id, bt.id, sizeof c->batch_id);
			c->created_at = now;
			cp_birth_validity(&t.r, t.validity_days, now,
			    &c->valid_from, &c->valid_to);
		}
		// The progress is written with the codes: a restart resumes
		// exactly after the last chunk.
		cp_batch next = bt;
		next.generated += n;
		dre_batch *b = dre_batch_alloc();
		size_t     ins = 0;
		if (b == NULL)
			goto out;
		cp_batch_stage(s, b, tenant, &next);
		err = cp_codes_insert(s, tenant, codes, (size_t) n, &t, true,
		    NULL, b, NULL, NULL, NULL, &ins);
		dre_batch_free(b);
		if (err == DRE_EEXISTS) {
			batch_end(s, tenant, &bt,
			    "no unused code left for this prefix and "
			    "codeLength");
			goto out;
		}
		if (err != DRE_OK) {
			dre_warn("batch %s/%s: %s (will resume)", tenant,
			    bt.id, dre_strerror(err));
			goto out;
		}
		bt = next;
	}
	if (bt.generated >= bt.number)
		batch_end(s, tenant, &bt, NULL);
out:
	free(codes);
	dre_arena_free(a);
}

// batches_pending runs every PENDING or GENERATING batch of every tenant.
static void
batches_pending(cp *s)
{
	for (;;) {
		dre_store_iter *it = NULL;
		dre_arena      *a = dre_arena_alloc(0);
		char        tenant[DRE_UUID_LEN + 64], id[DRE_UUID_LEN + 1];
		bool        found = false;
		const char *k, *v;
		size_t      kl, vl;
		if (a == NULL
		    || dre_store_iter_open(&it, s->st, CF_BATCHES, NULL, 0)
		        != DRE_OK) {
			dre_arena_free(a);
			return;
		}
		while (!found && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
			cp_batch b;
			size_t   tl = strnlen(k, kl);
			dre_arena_reset(a);
			if (tl >= kl || tl >= sizeof tenant
			    || cp_batch_parse(&b, a, v, vl) != DRE_OK)
				continue;
			if (b.state != CP_BATCH_PENDING
			    && b.state != CP_BATCH_GENERATING)
				continue;
			memcpy(tenant, k, tl);
			tenant[tl] = '\0';
			memcpy(id, b.id, sizeof id);
			found = true;
		}
		dre_store_iter_close(it);
		dre_arena_free(a);
		if (!found || atomic_load(&s->stop))
			return;
		cp_batch_run(s, tenant, id);
	}
}

static void *
batcher_main(void *arg)
{
	cp *s = arg;
	dre_thread_name("coupon:batch", NULL);
	while (!atomic_load(&s->stop)) {
		batches_pending(s);
		pthread_mutex_lock(&s->job_mu);
		if (!s->job_kick && !atomic_load(&s->stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5; // a safety net; kicks wake it at once
			pthread_cond_timedwait(&s->job_cv, &s->job_mu, &ts);
		}
		s->job_kick = false;
		pthread_mutex_unlock(&s->job_mu);
	}
	return NULL;
}

void
cp_jobs_kick(cp *s)
{
	pthread_mutex_lock(&s->job_mu);
	s->job_kick = true;
	pthread_cond_broadcast(&s->job_cv);
	pthread_mutex_unlock(&s->job_mu);
}

dre_err
cp_jobs_start(cp *s)
{
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0)
		return DRE_ENOMEM;
	if (pthread_create(&s->batcher, NULL, batcher_main, s) != 0) {
		atomic_store(&s->stop, true);
		cp_jobs_kick(s);
		pthread_join(s->sweeper, NULL);
		return DRE_ENOMEM;
	}
	s->threads = true;
	return DRE_OK;
}

void
cp_jobs_stop(cp *s)
{
	if (!s->threads)
		return;
	atomic_store(&s->stop, true);
	cp_jobs_kick(s);
	pthread_join(s->sweeper, NULL);
	pthread_join(s->batcher, NULL);
	s->threads = false;
}
