// test_coupon_store.c -- the coupon service's transitions against a real
// RocksDB and a mock Kafka cluster: races between threads, lazy and swept
// reservation expiry, validTo expiry, batch jobs, the events on
// dre.coupon.events, the promotion link table and coupon.Check.
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coupon.h"
#include "coupon.pb-c.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "handlers.h"
#include "model.h"
#include "rules.h"

#include "dre/busmock.h"
#include "testkit.h"

static char          dir[64];
static cp            S;
static dre_kvlist    props;
static dre_bus_mock *mock;
static const cp_opts OPTS = { .reservation_ttl_ms = 60000,
	.issue_rate_per_min = 1000,
	.sweep_ms = 1000,
	.retention_ms = 86400000,
	.batch_chunk = 64,
	.resnapshot_ms = 30000,
	.catalog_url = "tcp://127.0.0.1:1" };

static int
setup(void **state)
{
	(void) state;
	if (tk_tmpdir(dir, sizeof dir, "coupon") != 0)
		return 1;
	if (tk_broker_open(&mock, &props) != 0)
		return 1;
	return cp_open(&S, dir, &props, &OPTS) != DRE_OK;
}

static int
teardown(void **state)
{
	(void) state;
	cp_close(&S);
	tk_broker_close(mock, &props);
	return tk_rmtree(dir) != 0;
}

// route is the handler of method in the coupon service's route table.
static dre_rpc_fn
route(const char *method)
{
	const dre_rpc_route *rt = cp_routes;
	while (rt->method && strcmp(rt->method, method) != 0)
		rt++;
	assert_non_null(rt->method);
	return rt->fn;
}

// make_type stores a coupon type; returns its id in id[37].
static void
make_type(const char *tenant, bool generic, int64_t max, int64_t per_cust,
    int64_t valid_to, char *id)
{
	cp_type t;
	memset(&t, 0, sizeof t);
	dre_uuid_v4(t.id);
	snprintf(t.name, sizeof t.name, "type-%s", t.id);
	t.code_length = 8;
	t.r = (cp_type_rules) { .generic = generic,
		.active = true,
		.stackable = true,
		.max_redemptions = generic ? max : 1,
		.max_per_customer = per_cust,
		.valid_to = valid_to };
	assert_int_equal(cp_type_store(&S, tenant, "admin", &t, NULL), DRE_OK);
	memcpy(id, t.id, DRE_UUID_LEN + 1);
}

static void
make_code(const char *tenant, const char *type_id, const char *code,
    const char *customer, cp_state st)
{
	dre_arena *a = dre_arena_alloc(0);
	cp_type    t;
	cp_code    c;
	bool       dup = false;
	size_t     n = 0;
	assert_int_equal(cp_type_load(&S, a, tenant, type_id, &t), DRE_OK);
	cp_code_new(
	    &c, &t, code, customer, st, CP_ORIGIN_IMPORT, dre_now_ms());
	dre_batch *b = dre_batch_alloc();
	assert_int_equal(cp_codes_insert(&S, tenant, &c, 1, &t, false, &dup, b,
	                     NULL, NULL, NULL, &n),
	    DRE_OK);
	dre_batch_free(b);
	assert_false(dup);
	assert_int_equal(n, 1);
	dre_arena_free(a);
}

static cp_code
get_code(const char *tenant, const char *code)
{
	dre_arena *a = dre_arena_alloc(0);
	cp_code    c;
	assert_int_equal(cp_code_load(&S, a, tenant, code, &c), DRE_OK);
	c.issue_reason = NULL;
	c.metadata = NULL;
	dre_arena_free(a);
	return c;
}

// ---- races
// -------------------------------------------------------------------

#define NTHREADS 50

typedef struct {
	const char *code;
	char        tx[32];
	bool        redeem;
	int         status;
	cp_reason   reason;
} racer;

static pthread_barrier_t gate;

static void *
race_main(void *arg)
{
	racer     *x = arg;
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r;
	cp_outcome o;
	pthread_barrier_wait(&gate);
	cp_reserve(&S, a, "t1", x->code, x->tx, "", &r, &o);
	if (o.status == 200 && x->redeem)
		cp_redeem(&S, a, "t1", r.id, x->tx, &o);
	x->status = o.status;
	x->reason = o.reason;
	dre_arena_free(a);
	return NULL;
}

static int
race(const char *code, bool redeem, racer *v)
{
	pthread_t th[NTHREADS];
	int       ok = 0;
	pthread_barrier_init(&gate, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		v[i] = (racer) { .code = code, .redeem = redeem };
		snprintf(v[i].tx, sizeof v[i].tx, "%s-TX-%d", code, i);
		pthread_create(&th[i], NULL, race_main, &v[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ok += v[i].status == 200;
	}
	pthread_barrier_destroy(&gate);
	return ok;
}

static void
test_race_individual(void **state)
{
	(void) state;
	char  tid[37];
	racer v[NTHREADS];
	make_type("t1", false, 0, 0, 0, tid);
	make_code("t1", tid, "RACE-1", "", CP_ACTIVE);
	assert_int_equal(race("RACE-1", false, v), 1);
	for (int i = 0; i < NTHREADS; i++)
		if (v[i].status != 200) {
			assert_int_equal(v[i].status, 409);
			assert_int_equal(v[i].reason, CP_R_RESERVED_BY_OTHER);
		}
	cp_code c = get_code("t1", "RACE-1");
	assert_int_equal(c.state, CP_RESERVED);
	assert_int_equal(c.held, 1);
}

static void
test_race_generic(void **state)
{
	(void) state;
	char  tid[37];
	racer v[NTHREADS];
	make_type("t1", true, 10, 0, 0, tid);
	make_code("t1", tid, "RACE-G", "", CP_ACTIVE);
	assert_int_equal(race("RACE-G", true, v), 10);
	for (int i = 0; i < NTHREADS; i++)
		if (v[i].status != 200)
			assert_int_equal(v[i].reason, CP_R_LIMIT_REACHED);
	cp_code c = get_code("t1", "RACE-G");
	assert_int_equal(c.state, CP_REDEEMED);
	assert_int_equal(c.redemptions, 10);
	assert_int_equal(c.held, 0);
}

// ---- expiry
// ------------------------------------------------------------------

static void
test_hold_expiry(void **state)
{
	(void) state;
	char       tid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r, r2;
	cp_outcome o;
	make_type("t1", false, 0, 0, 0, tid);
	make_code("t1", tid, "HOLD-1", "", CP_ACTIVE);
	cp_reserve(&S, a, "t1", "HOLD-1", "TX-A", "", &r, &o);
	assert_int_equal(o.status, 200);
	assert_true(r.expires_at > dre_now_ms() + 50000);
	// the sweeper before the TTL changes nothing
	cp_sweep(&S, dre_now_ms());
	assert_int_equal(get_code("t1", "HOLD-1").state, CP_RESERVED);
	// after it: ACTIVE again, the reservation EXPIRED
	cp_sweep(&S, r.expires_at);
	cp_code c = get_code("t1", "HOLD-1");
	assert_int_equal(c.state, CP_ACTIVE);
	assert_int_equal(c.held, 0);
	assert_string_equal(c.res_id, "");
	assert_int_equal(cp_resv_load(&S, a, "t1", r.id, &r2), DRE_OK);
	assert_int_equal(r2.state, CP_HOLD_EXPIRED);
	cp_redeem(&S, a, "t1", r.id, "TX-A", &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_EXPIRED);
	// cancel of a lapsed reservation is a success (nothing held)
	cp_cancel(&S, a, "t1", r.id, &o);
	assert_int_equal(o.status, 200);
	// retention: the finished reservation is forgotten after it
	cp_sweep(&S, r.expires_at + OPTS.retention_ms + 1);
	assert_int_equal(cp_resv_load(&S, a, "t1", r.id, &r2), DRE_ENOTFOUND);
	dre_arena_free(a);
}

static void
test_valid_to_expiry(void **state)
{
	(void) state;
	char       tid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r;
	cp_outcome o;
	int64_t    end = dre_now_ms() + 3600000;
	make_type("t1", false, 0, 0, end, tid);
	make_code("t1", tid, "VT-1", "", CP_ACTIVE);
	make_code("t1", tid, "VT-2", "", CP_ACTIVE);
	make_code("t1", tid, "VT-3", "", CP_ACTIVE);
	cp_reserve(&S, a, "t1", "VT-2", "TX", "", &r, &o);
	assert_int_equal(o.status, 200);
	assert_true(r.expires_at <= end);
	cp_admin_cancel(
	    &S, a, "t1", "VT-3", "admin", NULL, &(cp_code) { 0 }, &o);
	assert_int_equal(o.status, 200);
	cp_sweep(&S, end); // validTo itself is still valid
	assert_int_equal(get_code("t1", "VT-1").state, CP_ACTIVE);
	cp_sweep(&S, end + 1);
	assert_int_equal(get_code("t1", "VT-1").state, CP_EXPIRED);
	assert_int_equal(get_code("t1", "VT-2").state, CP_EXPIRED);
	assert_int_equal(get_code("t1", "VT-3").state, CP_CANCELLED);
	cp_redeem(&S, a, "t1", r.id, "TX", &o);
	assert_int_equal(o.reason, CP_R_EXPIRED);
	dre_arena_free(a);
}

// A personal code is usable by whoever presents it without naming a
// customer, counted as its owner's use; another customer named is refused
// (PRODUCT-DECISIONS §5). Redeem's refusals use the POS reason codes;
// activation is idempotent.
static void
test_personal_code(void **state)
{
	(void) state;
	char       gid[37], iid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r, r2;
	cp_check   ck;
	cp_code    c;
	cp_outcome o;
	make_type("t1", true, 0, 1, 0, gid); // one use per customer
	make_code("t1", gid, "MINE-1", "ALICE", CP_ACTIVE);
	assert_int_equal(
	    cp_validate(&S, a, "t1", "MINE-1", "", "TX-0", dre_now_ms(), &ck),
	    DRE_OK);
	assert_int_equal(ck.reason, CP_R_OK);
	assert_int_equal(cp_validate(&S, a, "t1", "MINE-1", "BOB", "TX-0",
	                     dre_now_ms(), &ck),
	    DRE_OK);
	assert_int_equal(ck.reason, CP_R_OTHER_CUSTOMER);
	cp_reserve(&S, a, "t1", "MINE-1", "TX-1", "", &r, &o);
	assert_int_equal(o.status, 200);
	assert_string_equal(r.customer, "ALICE"); // the owner's use
	// so the owner's limit counts it, named or not
	cp_reserve(&S, a, "t1", "MINE-1", "TX-2", "", &r2, &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_LIMIT_REACHED);
	cp_reserve(&S, a, "t1", "MINE-1", "TX-2", "ALICE", &r2, &o);
	assert_int_equal(o.reason, CP_R_LIMIT_REACHED);
	cp_reserve(&S, a, "t1", "MINE-1", "TX-3", "BOB", &r2, &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_OTHER_CUSTOMER);
	assert_string_equal(
	    o.msg, "coupon 'MINE-1': the coupon belongs to another customer");
	// redeem: another transaction's reservation, then a cancelled one
	cp_redeem(&S, a, "t1", r.id, "TX-9", &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_RESERVED_BY_OTHER);
	cp_cancel(&S, a, "t1", r.id, &o);
	assert_int_equal(o.status, 200);
	cp_redeem(&S, a, "t1", r.id, "TX-1", &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_CANCELLED);
	char want[96];
	snprintf(
	    want, sizeof want, "reservation '%s' has been cancelled", r.id);
	assert_string_equal(o.msg, want);

	// activation: by its customer, again (nothing to do), not by another
	make_type("t1", false, 0, 0, 0, iid);
	make_code("t1", iid, "MINE-2", "ALICE", CP_CREATED);
	cp_activate(&S, a, "t1", "MINE-2", "BOB", &c, &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_OTHER_CUSTOMER);
	cp_activate(&S, a, "t1", "MINE-2", "ALICE", &c, &o);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.msg, "coupon 'MINE-2' activated");
	int64_t at = get_code("t1", "MINE-2").activated_at;
	cp_activate(&S, a, "t1", "MINE-2", "ALICE", &c, &o);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.msg, "coupon 'MINE-2' is already active");
	assert_int_equal(get_code("t1", "MINE-2").activated_at, at);
	cp_activate(&S, a, "t1", "MINE-2", "BOB", &c, &o);
	assert_int_equal(o.reason, CP_R_OTHER_CUSTOMER);
	// anyone holding it reserves and redeems it, as its owner's use
	cp_reserve(&S, a, "t1", "MINE-2", "TX-4", "", &r, &o);
	assert_int_equal(o.status, 200);
	cp_redeem(&S, a, "t1", r.id, "TX-4", &o);
	assert_int_equal(o.status, 200);
	assert_int_equal(get_code("t1", "MINE-2").state, CP_REDEEMED);
	dre_arena_free(a);
}

// A transaction whose hold on a GENERIC code lapsed reserves again: the
// lapsed hold ends first and does not count against the customer's limit.
static void
test_generic_relapse(void **state)
{
	(void) state;
	char       tid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r1, r2, old;
	cp_outcome o;
	make_type("t1", true, 0, 1, 0, tid);
	make_code("t1", tid, "RELAPSE", "", CP_ACTIVE);
	S.o.reservation_ttl_ms = 1;
	cp_reserve(&S, a, "t1", "RELAPSE", "TX-1", "CUST", &r1, &o);
	S.o.reservation_ttl_ms = OPTS.reservation_ttl_ms;
	assert_int_equal(o.status, 200);
	while (dre_now_ms() <= r1.expires_at) // the 1 ms TTL passes
		;
	cp_reserve(&S, a, "t1", "RELAPSE", "TX-1", "CUST", &r2, &o);
	assert_int_equal(o.status, 200);
	assert_string_not_equal(r1.id, r2.id);
	assert_int_equal(cp_resv_load(&S, a, "t1", r1.id, &old), DRE_OK);
	assert_int_equal(old.state, CP_HOLD_EXPIRED);
	cp_code c = get_code("t1", "RELAPSE");
	assert_int_equal(c.held, 1);
	// the customer's one use is now held
	cp_reserve(&S, a, "t1", "RELAPSE", "TX-2", "CUST", &old, &o);
	assert_int_equal(o.reason, CP_R_LIMIT_REACHED);
	cp_redeem(&S, a, "t1", r2.id, "TX-1", &o);
	assert_int_equal(o.status, 200);
	c = get_code("t1", "RELAPSE");
	assert_int_equal(c.held, 0);
	assert_int_equal(c.redemptions, 1);
	assert_int_equal(c.state, CP_ACTIVE);
	dre_arena_free(a);
}

// ---- creation
// --------------------------------------------------------------------

static char first_batch[37];

// store_batch stores a PENDING batch of n codes of type_id.
static void
store_batch(const char *type_id, int64_t n, cp_batch *bt)
{
	memset(bt, 0, sizeof *bt);
	dre_uuid_v4(bt->id);
	snprintf(bt->type_id, sizeof bt->type_id, "%s", type_id);
	bt->number = n;
	bt->created_at = dre_now_ms();
	dre_batch *b = dre_batch_alloc();
	cp_batch_stage(&S, b, "t1", bt);
	assert_int_equal(dre_store_write(S.st, b, true), DRE_OK);
	dre_batch_free(b);
}

static void
test_batch_and_uniqueness(void **state)
{
	(void) state;
	char       tid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_batch   bt;
	cp_type    t;
	make_type("t1", false, 0, 0, 0, tid);
	assert_int_equal(cp_type_load(&S, a, "t1", tid, &t), DRE_OK);
	// 130 codes in chunks of 64: progress is written with each chunk
	store_batch(tid, 130, &bt);
	memcpy(first_batch, bt.id, sizeof first_batch);
	cp_batch_run(&S, "t1", bt.id);
	assert_int_equal(cp_batch_load(&S, a, "t1", bt.id, &bt), DRE_OK);
	assert_int_equal(bt.state, CP_BATCH_COMPLETED);
	assert_int_equal(bt.generated, 130);
	assert_true(bt.started_at > 0 && bt.completed_at >= bt.started_at);
	cp_code_filter f = { tid, NULL, CP_ACTIVE, 0, 1000 };
	dre_buf        vals = { 0 };
	int64_t        count = 0;
	assert_int_equal(
	    cp_codes_list(&S, a, "t1", &f, &vals, &count), DRE_OK);
	assert_int_equal(count, 130);
	dre_buf_free(&vals);
	// a batch whose type is gone FAILS
	store_batch("00000000-0000-4000-8000-000000000000", 5, &bt);
	cp_batch_run(&S, "t1", bt.id);
	assert_int_equal(cp_batch_load(&S, a, "t1", bt.id, &bt), DRE_OK);
	assert_int_equal(bt.state, CP_BATCH_FAILED);
	assert_non_null(strstr(bt.error, "no longer exists"));
	// a full code space: 31 one-symbol codes exist, a 32nd cannot be made
	cp_type tiny = t;
	tiny.prefix[0] = 'Z';
	tiny.prefix[1] = '\0';
	tiny.code_length = 1;
	cp_code c[32];
	size_t  n = 0;
	for (int i = 0; i < 31; i++) {
		cp_code_new(
		    &c[i], &tiny, NULL, "", CP_ACTIVE, CP_ORIGIN_BATCH, 1);
		c[i].code[1] = CP_ALPHABET[i];
	}
	dre_batch *b = dre_batch_alloc();
	assert_int_equal(cp_codes_insert(&S, "t1", c, 31, &tiny, false, NULL,
	                     b, NULL, NULL, NULL, &n),
	    DRE_OK);
	assert_int_equal(n, 31);
	dre_batch_clear(b);
	cp_code_new(&c[31], &tiny, NULL, "", CP_ACTIVE, CP_ORIGIN_BATCH, 1);
	assert_int_equal(cp_codes_insert(&S, "t1", &c[31], 1, &tiny, true,
	                     NULL, b, NULL, NULL, NULL, &n),
	    DRE_EEXISTS);
	dre_batch_free(b);
	// explicit codes: a duplicate is reported, not overwritten
	bool dup[2];
	cp_code_new(&c[0], &t, "DUP-1", "", CP_ACTIVE, CP_ORIGIN_IMPORT, 1);
	cp_code_new(&c[1], &t, "DUP-1", "", CP_ACTIVE, CP_ORIGIN_IMPORT, 1);
	b = dre_batch_alloc();
	assert_int_equal(cp_codes_insert(&S, "t1", c, 2, &t, false, dup, b,
	                     NULL, NULL, NULL, &n),
	    DRE_OK);
	dre_batch_free(b);
	assert_int_equal(n, 1);
	assert_false(dup[0]);
	assert_true(dup[1]);
	// the same code in another tenant is another coupon
	char tid2[37];
	make_type("t2", false, 0, 0, 0, tid2);
	make_code("t2", tid2, "DUP-1", "", CP_ACTIVE);
	dre_arena_free(a);
}

// ---- events
// ----------------------------------------------------------------------

static void
test_events(void **state)
{
	(void) state;
	char       tid[37];
	dre_arena *a = dre_arena_alloc(0);
	cp_resv    r;
	cp_outcome o;
	make_type("t1", true, 0, 0, 0, tid);
	make_code("t1", tid, "EV-1", "", CP_ACTIVE);
	cp_reserve(&S, a, "t1", "EV-1", "TX-EV", "CUST-1", &r, &o);
	assert_int_equal(o.status, 200);
	cp_redeem(&S, a, "t1", r.id, "TX-EV", &o);
	assert_int_equal(o.status, 200);

	dre_consumer *co = NULL;
	assert_int_equal(dre_consumer_open(&co, &props, NULL), DRE_OK);
	assert_int_equal(dre_consumer_assign_topic(co, DRE_TOPIC_COUPON_EVENTS,
	                     DRE_OFFSET_BEGINNING),
	    DRE_OK);
	bool redeemed = false, batch = false;
	for (int i = 0; i < 100 && !(redeemed && batch); i++) {
		dre_msg          m;
		dre_coupon_event e;
		if (dre_consumer_poll(co, 200, &m) != DRE_OK)
			continue;
		dre_arena_reset(a);
		assert_int_equal(
		    dre_avro_decode_coupon(&e, a, m.payload, m.len), DRE_OK);
		assert_int_equal(e.schema_version, 1);
		assert_true(dre_uuid_valid(e.event_id, strlen(e.event_id)));
		if (strcmp(e.type, "COUPON_REDEEMED") == 0
		    && strcmp(e.code, "EV-1") == 0) {
			assert_int_equal(m.key_len, strlen("t1/EV-1"));
			assert_memory_equal(m.key, "t1/EV-1", m.key_len);
			assert_string_equal(e.tenant, "t1");
			assert_string_equal(e.coupon_type_id, tid);
			assert_string_equal(e.customer_id, "CUST-1");
			assert_string_equal(e.transaction_id, "TX-EV");
			assert_string_equal(e.reservation_id, r.id);
			assert_int_equal(e.count, 1);
			assert_null(e.batch_id);
			redeemed = true;
		}
		if (strcmp(e.type, "COUPON_BATCH_COMPLETED") == 0
		    && strcmp(e.batch_id, first_batch) == 0) {
			assert_null(e.code);
			assert_int_equal(e.count, 130);
			assert_int_equal(m.key_len, 3 + strlen(first_batch));
			batch = true;
		}
	}
	dre_consumer_close(co);
	assert_true(redeemed);
	assert_true(batch);
	dre_arena_free(a);
}

// A round trip of every field, nulls included.
static void
test_event_codec(void **state)
{
	(void) state;
	dre_coupon_event e = { .tenant = "t",
		.occurred_at = 42,
		.schema_version = 1,
		.type = "COUPON_ISSUED",
		.code = "C1",
		.coupon_type_id = "T",
		.customer_id = "K",
		.count = -1,
		.promotion_id = "P",
		.reason = "why" };
	dre_coupon_event d;
	dre_buf          out = { 0 };
	dre_arena       *a = dre_arena_alloc(0);
	dre_uuid_v4(e.event_id);
	assert_int_equal(dre_avro_encode_coupon(&out, &e), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_coupon(&d, a, out.data, out.len), DRE_OK);
	assert_string_equal(d.event_id, e.event_id);
	assert_string_equal(d.type, "COUPON_ISSUED");
	assert_string_equal(d.code, "C1");
	assert_string_equal(d.customer_id, "K");
	assert_null(d.transaction_id);
	assert_null(d.reservation_id);
	assert_null(d.batch_id);
	assert_int_equal(d.count, -1);
	assert_string_equal(d.promotion_id, "P");
	assert_string_equal(d.reason, "why");
	assert_int_equal(d.occurred_at, 42);
	e.type = "NOT_A_TYPE";
	dre_buf_reset(&out);
	assert_int_not_equal(dre_avro_encode_coupon(&out, &e), DRE_OK);
	dre_buf_free(&out);
	dre_arena_free(a);
}

// ---- links and coupon.Check
// --------------------------------------------------------

static void
test_links_and_check(void **state)
{
	(void) state;
	char        tid[37], tid2[37];
	dre_arena  *a = dre_arena_alloc(0);
	const char *first = NULL, **ids = NULL;
	make_type("t1", false, 0, 0, 0, tid);
	make_type("t1", false, 0, 0, 0, tid2);
	make_code("t1", tid, "CHK-1", "", CP_ACTIVE);
	make_code("t1", tid, "CHK-2", "ALICE", CP_ACTIVE);
	char doc[512];
	snprintf(doc, sizeof doc,
	    "{\"id\":\"P1\",\"status\":\"INACTIVE\",\"couponTypeIds\":[\"%s\"]"
	    "}",
	    tid);
	dre_batch *b = dre_batch_alloc();
	cp_links_apply(&S, b, "t1", "P1", 5, doc, strlen(doc));
	snprintf(doc, sizeof doc,
	    "{\"id\":\"P2\",\"status\":\"ACTIVE\",\"couponTypeIds\":[\"%s\","
	    "\"%s\"]}",
	    tid, tid2);
	cp_links_apply(&S, b, "t1", "P2", 6, doc, strlen(doc));
	assert_int_equal(dre_store_write(S.st, b, false), DRE_OK);
	dre_batch_free(b);
	assert_int_equal(cp_links_get(&S, a, "t1", tid, &ids, &first), 2);
	assert_string_equal(ids[0], "P1");
	assert_string_equal(ids[1], "P2");
	assert_string_equal(first, "P2");
	// an older version is ignored; a newer one relinks; a delete unlinks
	b = dre_batch_alloc();
	cp_links_apply(&S, b, "t1", "P2", 4, "{\"couponTypeIds\":[]}", 20);
	assert_int_equal(dre_store_write(S.st, b, false), DRE_OK);
	dre_batch_clear(b);
	assert_int_equal(cp_links_get(&S, a, "t1", tid2, &ids, NULL), 1);
	cp_links_apply(&S, b, "t1", "P2", 7, NULL, 0);
	assert_int_equal(dre_store_write(S.st, b, false), DRE_OK);
	dre_batch_free(b);
	assert_int_equal(cp_links_get(&S, a, "t1", tid2, &ids, NULL), 0);
	assert_int_equal(cp_links_get(&S, a, "t1", tid, &ids, &first), 1);
	assert_null(first);
	assert_int_equal(cp_links_get(&S, a, "t2", tid, &ids, NULL), 0);

	// coupon.Check: order kept, duplicates and bad codes reported
	Dre__CouponCheckRequest rq = DRE__COUPON_CHECK_REQUEST__INIT;
	char *codes[] = { "chk-1", "CHK-2", "CHK-1", "no such!", "NOPE" };
	rq.codes = codes;
	rq.n_codes = 5;
	rq.customer_id = "BOB";
	uint8_t         buf[512];
	size_t          n = dre__coupon_check_request__pack(&rq, buf);
	Dre__RpcRequest rq0 = DRE__RPC_REQUEST__INIT;
	dre_rpc_call    c = { .method = "coupon.Check",
		   .tenant = "t1",
		   .principal = "",
		   .body = buf,
		   .body_len = n,
		   .req = &rq0 };
	dre_rpc_reply   rep = { .status = 200 };
	route("coupon.Check")(&S, &c, &rep);
	assert_int_equal(rep.status, 200);
	Dre__CouponCheckResponse *res = dre__coupon_check_response__unpack(
	    NULL, rep.body.len, (const uint8_t *) rep.body.data);
	assert_non_null(res);
	assert_int_equal(res->n_results, 5);
	assert_string_equal(res->results[0]->code, "CHK-1");
	assert_true(res->results[0]->valid);
	assert_string_equal(res->results[0]->coupon_type->id, tid);
	assert_true(res->results[0]->coupon_type->is_stackable);
	assert_int_equal(res->results[0]->n_promotion_ids, 1);
	assert_string_equal(res->results[0]->promotion_ids[0], "P1");
	assert_false(res->results[1]->valid);
	assert_string_equal(res->results[1]->reason, "OTHER_CUSTOMER");
	assert_string_equal(res->results[2]->reason, "DUPLICATE");
	assert_string_equal(res->results[3]->reason, "NOT_FOUND");
	assert_string_equal(res->results[3]->code, "no such!");
	assert_string_equal(res->results[4]->reason, "NOT_FOUND");
	assert_null(res->results[4]->coupon_type);
	dre__coupon_check_response__free_unpacked(res, NULL);
	dre_buf_free(&rep.body);
	dre_arena_free(a);
}

// Codes an external system redeemed (the bridge's SUPC API): all or none,
// each once, a till's hold ends, only codes of the given types.
static void
test_redeem_external(void **state)
{
	(void) state;
	char         tid[37], tid2[37];
	dre_arena   *a = dre_arena_alloc(0);
	cp_outcome   o;
	cp_resv      r;
	const char **ids = NULL;
	size_t       n = 0;
	make_type("t1", false, 0, 0, 0, tid);
	make_type("t1", false, 0, 0, 0, tid2);
	make_code("t1", tid, "EXT-1", "", CP_ACTIVE);
	make_code("t1", tid, "EXT-2", "", CP_ACTIVE);
	make_code("t1", tid2, "EXT-3", "", CP_ACTIVE);
	cp_reserve(&S, a, "t1", "EXT-2", "CART-9", NULL, &r, &o);
	assert_int_equal(o.status, 200);
	const char *types[] = { tid };
	// A code of another type: refused, nothing changed.
	cp_ext_redeem v[2] = { { .code = "EXT-1", .order = "O1", .at = 1000 },
		{ .code = "EXT-3", .order = "O1" } };
	cp_redeem_external(&S, a, "t1", v, 2, types, 1, &o);
	assert_int_equal(o.status, 404);
	assert_int_equal(get_code("t1", "EXT-1").state, CP_ACTIVE);
	// Both of the type: redeemed, the till's hold ended.
	v[1] = (cp_ext_redeem) { .code = "EXT-2", .order = "O2" };
	cp_redeem_external(&S, a, "t1", v, 2, types, 1, &o);
	assert_int_equal(o.status, 200);
	cp_code c = get_code("t1", "EXT-1");
	assert_int_equal(c.state, CP_REDEEMED);
	assert_int_equal(c.redeemed_at, 1000);
	assert_int_equal(c.redemptions, 1);
	c = get_code("t1", "EXT-2");
	assert_int_equal(c.state, CP_REDEEMED);
	assert_int_equal(c.held, 0);
	assert_int_equal(cp_resv_load(&S, a, "t1", r.id, &r), DRE_OK);
	assert_int_equal(r.state, CP_HOLD_RELEASED);
	// Once only.
	cp_redeem_external(&S, a, "t1", v, 1, types, 1, &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_REDEEMED);
	assert_int_equal(get_code("t1", "EXT-1").redemptions, 1);
	// The promotion's types from the link table.
	char doc[256];
	snprintf(
	    doc, sizeof doc, "{\"couponTypeIds\":[\"%s\",\"%s\"]}", tid, tid2);
	dre_batch *b = dre_batch_alloc();
	cp_links_apply(&S, b, "t1", "P-EXT", 3, doc, strlen(doc));
	assert_int_equal(dre_store_write(S.st, b, false), DRE_OK);
	dre_batch_free(b);
	assert_int_equal(
	    cp_links_types(&S, a, "t1", "P-EXT", &ids, &n), DRE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], tid);
	assert_string_equal(ids[1], tid2);
	assert_int_equal(
	    cp_links_types(&S, a, "t1", "P-NONE", &ids, &n), DRE_ENOTFOUND);
	dre_arena_free(a);
}

// Restart keeps codes, reservations and indexes.
static void
test_restart(void **state)
{
	(void) state;
	cp_close(&S);
	assert_int_equal(cp_open(&S, dir, &props, &OPTS), DRE_OK);
	assert_int_equal(get_code("t1", "RACE-1").state, CP_ACTIVE); // swept
	assert_int_equal(get_code("t1", "DUP-1").state, CP_ACTIVE);
	assert_int_equal(get_code("t1", "RACE-G").redemptions, 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_race_individual),
		cmocka_unit_test(test_race_generic),
		cmocka_unit_test(test_hold_expiry),
		cmocka_unit_test(test_valid_to_expiry),
		cmocka_unit_test(test_generic_relapse),
		cmocka_unit_test(test_personal_code),
		cmocka_unit_test(test_batch_and_uniqueness),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_event_codec),
		cmocka_unit_test(test_links_and_check),
		cmocka_unit_test(test_redeem_external),
		cmocka_unit_test(test_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
