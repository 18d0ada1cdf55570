// test_coupon_confirm.c -- the coupon service's apply of confirmed sales
// (services/coupon/apply.c) against a real RocksDB and a mock Kafka
// cluster: redemption through a reservation, directly, of a GENERIC code by
// several sales of one batch (the batch's own writes counted), a code that
// cannot be redeemed reported, post-purchase codes and their replay, an
// unknown promotion retried, the stripes held until the batch is written and
// the SideEffectResult read back from dre.sidefx.results.
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply.h"
#include "coupon.h"
#include "coupon.pb-c.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "handlers.h"
#include "keys.h"
#include "model.h"
#include "rules.h"

#include "dre/busmock.h"
#include "dre/outbox.h"
#include "testkit.h"

static char          dir[64];
static cp            S;
static dre_kvlist    props;
static dre_bus_mock *mock;
static dre_arena    *A;
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
	if (tk_tmpdir(dir, sizeof dir, "cpconf") != 0
	    || (A = dre_arena_alloc(0)) == NULL)
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
	dre_arena_free(A);
	return tk_rmtree(dir) != 0;
}

// ---- fixtures -----------------------------------------------------------

static void
make_type(const char *tenant, bool generic, int64_t max, int64_t per_cust,
    bool active, char *id)
{
	cp_type t;
	memset(&t, 0, sizeof t);
	dre_uuid_v4(t.id);
	snprintf(t.name, sizeof t.name, "type-%s", t.id);
	snprintf(t.prefix, sizeof t.prefix, "PP");
	t.code_length = 8;
	t.validity_days = 10;
	t.r = (cp_type_rules) { .generic = generic,
		.active = active,
		.stackable = true,
		.max_redemptions = generic ? max : 1,
		.max_per_customer = per_cust };
	assert_int_equal(cp_type_store(&S, tenant, "admin", &t, NULL), DRE_OK);
	memcpy(id, t.id, DRE_UUID_LEN + 1);
}

static void
make_code(const char *tenant, const char *type_id, const char *code,
    const char *customer, cp_state st)
{
	cp_type t;
	cp_code c;
	bool    dup = false;
	size_t  n = 0;
	assert_int_equal(cp_type_load(&S, A, tenant, type_id, &t), DRE_OK);
	cp_code_new(
	    &c, &t, code, customer, st, CP_ORIGIN_IMPORT, dre_now_ms());
	dre_batch *b = dre_batch_alloc();
	assert_int_equal(cp_codes_insert(&S, tenant, &c, 1, &t, false, &dup, b,
	                     NULL, NULL, NULL, &n),
	    DRE_OK);
	dre_batch_free(b);
	assert_int_equal(n, 1);
}

static cp_code
get_code(const char *tenant, const char *code)
{
	cp_code c;
	assert_int_equal(cp_code_load(&S, A, tenant, code, &c), DRE_OK);
	return c;
}

// promo records promotion id in the link table (doc: its JSON).
static void
promo(const char *tenant, const char *id, int64_t version, const char *doc)
{
	dre_batch *b = dre_batch_alloc();
	cp_links_apply(&S, b, tenant, id, version, doc, strlen(doc));
	assert_int_equal(dre_store_write(S.st, b, false), DRE_OK);
	dre_batch_free(b);
}

// A confirmed sale of promotion promo_id with up to 4 coupon codes (each on
// a promotion entry of its own).
typedef struct {
	dre_tx_confirmed t;
	dre_tx_promotion p[4];
} sale_ev;

static void
sale_init(sale_ev *e, const char *tenant, const char *tx, const char *customer,
    const char *promo_id, const char *const *codes, size_t ncodes)
{
	memset(e, 0, sizeof *e);
	dre_uuid_v4(e->t.event_id);
	e->t.tenant = tenant;
	e->t.occurred_at = dre_now_ms();
	e->t.schema_version = 1;
	e->t.transaction_id = tx;
	e->t.transaction_counter = 1;
	e->t.evaluated_at = dre_now_ms();
	e->t.transaction_time = dre_now_ms();
	e->t.customer_id = customer;
	e->t.currency = "EUR";
	for (size_t i = 0; i < (ncodes ? ncodes : 1); i++) {
		e->p[i].promotion_id = promo_id;
		e->p[i].promotion_name = "P";
		e->p[i].promotion_type = "ARTICLE";
		e->p[i].amount = e->p[i].granted_amount = 100;
		e->p[i].coupon_code = i < ncodes ? codes[i] : NULL;
	}
	e->t.promotions = e->p;
	e->t.npromotions = ncodes ? ncodes : 1;
}

static dre_err
apply_sale(dre_batch *b, const sale_ev *e, int attempts)
{
	dre_buf buf = { 0 };
	assert_int_equal(dre_avro_encode_tx_confirmed(&buf, &e->t), DRE_OK);
	dre_msg m = { .topic = DRE_TOPIC_TX_CONFIRMED,
		.payload = (const uint8_t *) buf.data,
		.len = buf.len };
	dre_arena_reset(A);
	dre_apply_ctx x = { .st = S.st,
		.b = b,
		.a = A,
		.event_id = e->t.event_id,
		.attempts = attempts,
		.now_ms = dre_now_ms() };
	dre_err       err = cp_apply_confirmed(&S, &x, &m);
	dre_buf_free(&buf);
	return err;
}

// commit writes the batch as the applier does and ends it.
static void
commit_batch(dre_batch *b)
{
	assert_int_equal(dre_store_write(S.st, b, true), DRE_OK);
	cp_apply_batch_end(&S, DRE_OK);
	dre_batch_clear(b);
}

static bool
stripe_locked(const char *tenant, const char *code)
{
	pthread_mutex_t *mu = cp_stripe(&S, tenant, code);
	if (pthread_mutex_trylock(mu) == EBUSY)
		return true;
	pthread_mutex_unlock(mu);
	return false;
}

// The SideEffectResults of tx on dre.sidefx.results, in order (strings in
// a, which the caller frees).
static size_t
results_of(dre_arena *a, const char *tx, dre_sfx_result *out, size_t cap)
{
	dre_consumer *co = NULL;
	size_t        n = 0;
	int           idle = 0;
	dre_outbox_kick(S.ob);
	assert_int_equal(dre_consumer_open(&co, &props, NULL), DRE_OK);
	assert_int_equal(dre_consumer_assign_topic(
	                     co, DRE_TOPIC_SIDEFX, DRE_OFFSET_BEGINNING),
	    DRE_OK);
	// The relay delivers within a moment; stop after 0.6 s of silence
	// once something arrived (or 10 s without anything).
	while (idle < (n > 0 ? 3 : 50)) {
		dre_msg        m;
		dre_sfx_result r;
		if (dre_consumer_poll(co, 200, &m) != DRE_OK) {
			idle++;
			continue;
		}
		idle = 0;
		assert_int_equal(
		    dre_avro_decode_sfx_result(&r, a, m.payload, m.len),
		    DRE_OK);
		if (strcmp(r.transaction_id, tx) == 0 && n < cap)
			out[n++] = r;
	}
	dre_consumer_close(co);
	return n;
}

// ---- tests ----------------------------------------------------------------

// Three sales in one batch: through a reservation, directly, and a GENERIC
// code whose per-customer limit the batch itself reaches.
static void
test_redeem(void **state)
{
	(void) state;
	char ti[37], tg[37];
	make_type("t1", false, 1, 0, true, ti);
	make_type("t1", true, 3, 1, true, tg);
	make_code("t1", ti, "R-1", "", CP_ACTIVE);
	make_code("t1", ti, "A-1", "", CP_ACTIVE);
	make_code("t1", ti, "A-2", "C9", CP_ACTIVE); // C9's own
	make_code("t1", tg, "G-1", "", CP_ACTIVE);
	promo("t1", "P1", 1, "{\"status\":\"ACTIVE\",\"actions\":[]}");
	cp_resv    r;
	cp_outcome o;
	cp_reserve(&S, A, "t1", "R-1", "TX1", "C1", &r, &o);
	assert_int_equal(o.status, 200);
	char res_id[37];
	memcpy(res_id, r.id, sizeof res_id);

	dre_batch  *b = dre_batch_alloc_indexed();
	sale_ev     e1, e2, e3;
	const char *c1[] = { "R-1", "g-1" }, *c2[] = { "A-1", "G-1", "A-2" },
	           *c3[] = { "G-1", "G-1" };
	sale_init(&e1, "t1", "TX1", "C1", "P1", c1, 2);
	sale_init(&e2, "t1", "TX2", "C1", "P1", c2, 3);
	sale_init(&e3, "t1", "TX3", "C2", "P1", c3, 2);
	assert_int_equal(apply_sale(b, &e1, 1), DRE_OK);
	assert_int_equal(apply_sale(b, &e2, 1), DRE_OK);
	assert_int_equal(apply_sale(b, &e3, 1), DRE_OK);
	// Nothing is visible, and the codes are locked, until the write.
	assert_int_equal(get_code("t1", "R-1").state, CP_RESERVED);
	assert_true(stripe_locked("t1", "R-1"));
	assert_true(stripe_locked("t1", "G-1"));
	commit_batch(b);
	assert_false(stripe_locked("t1", "R-1"));
	assert_false(stripe_locked("t1", "G-1"));

	cp_code c = get_code("t1", "R-1");
	assert_int_equal(c.state, CP_REDEEMED);
	assert_int_equal(c.redemptions, 1);
	assert_int_equal(c.held, 0);
	assert_string_equal(c.res_id, "");
	assert_int_equal(cp_resv_load(&S, A, "t1", res_id, &r), DRE_OK);
	assert_int_equal(r.state, CP_HOLD_REDEEMED);
	assert_int_equal(get_code("t1", "A-1").state, CP_REDEEMED);
	assert_int_equal(get_code("t1", "A-2").state, CP_ACTIVE);
	c = get_code("t1", "G-1");
	assert_int_equal(c.state, CP_ACTIVE);
	assert_int_equal(c.redemptions, 2); // TX1 (C1), TX3 (C2)
	// the POS cannot redeem the spent reservation again
	cp_redeem(&S, A, "t1", res_id, "TX1", &o);
	assert_int_equal(o.status, 409);
	assert_int_equal(o.reason, CP_R_REDEEMED);

	// The same sales again under new eventIds: nothing twice.
	dre_uuid_v4(e1.t.event_id);
	dre_uuid_v4(e3.t.event_id);
	assert_int_equal(apply_sale(b, &e1, 1), DRE_OK);
	assert_int_equal(apply_sale(b, &e3, 1), DRE_OK);
	commit_batch(b);
	assert_int_equal(get_code("t1", "G-1").redemptions, 2);
	assert_int_equal(get_code("t1", "R-1").redemptions, 1);
	dre_batch_free(b);

	dre_arena     *a = dre_arena_alloc(0);
	dre_sfx_result v[4];
	assert_int_equal(results_of(a, "TX2", v, 4), 1);
	assert_string_equal(v[0].service, "coupon");
	assert_string_equal(v[0].status, "FAILED");
	assert_int_equal(v[0].coupons_redeemed, 1);
	assert_int_equal(v[0].ncoupons, 0);
	assert_string_equal(v[0].reason,
	    "coupon 'G-1' not redeemed: the coupon's redemption limit is "
	    "reached (LIMIT_REACHED); coupon 'A-2' not redeemed: the coupon "
	    "belongs to another customer (OTHER_CUSTOMER)");
	assert_int_equal(results_of(a, "TX1", v, 4), 2);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(v[i].status, "SUCCESS");
		assert_int_equal(v[i].coupons_redeemed, 2);
		assert_null(v[i].reason);
	}
	assert_string_equal(v[1].source_event_id, e1.t.event_id);
	assert_int_equal(results_of(a, "TX3", v, 4), 2);
	assert_int_equal(v[0].coupons_redeemed, 1); // G-1 twice is one use
	dre_arena_free(a);
}

// ISSUE_COUPON: quantity codes per action, ACTIVE, for the customer; a
// replay finds them again; a missing or inactive type is reported.
static void
test_post_purchase(void **state)
{
	(void) state;
	char t1[37], t2[37], off[37], doc[512];
	make_type("t1", false, 1, 0, true, t1);
	make_type("t1", true, 0, 0, true, t2);
	make_type("t1", false, 1, 0, false, off);
	snprintf(doc, sizeof doc,
	    "{\"status\":\"ACTIVE\",\"actions\":[{\"type\":\"ARTICLE\"},"
	    "{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":\"%s\","
	    "\"quantity\":2},{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":"
	    "\"%s\"}]}",
	    t1, t2);
	promo("t1", "PP", 3, doc);
	cp_issue *iv;
	size_t    ni;
	assert_int_equal(cp_links_issue(&S, A, "t1", "PP", &iv, &ni), DRE_OK);
	assert_int_equal(ni, 2);
	assert_string_equal(iv[0].type_id, t1);
	assert_int_equal(iv[0].quantity, 2);
	assert_string_equal(iv[1].type_id, t2);
	assert_int_equal(iv[1].quantity, 1);

	dre_batch *b = dre_batch_alloc_indexed();
	sale_ev    e;
	sale_init(&e, "t1", "TX-PP", "CUST-7", "PP", NULL, 0);
	assert_int_equal(apply_sale(b, &e, 1), DRE_OK);
	commit_batch(b);
	dre_uuid_v4(e.t.event_id); // the same sale, published again
	assert_int_equal(apply_sale(b, &e, 1), DRE_OK);
	commit_batch(b);

	dre_arena     *a = dre_arena_alloc(0);
	dre_sfx_result v[4];
	assert_int_equal(results_of(a, "TX-PP", v, 4), 2);
	assert_string_equal(v[0].status, "SUCCESS");
	assert_int_equal(v[0].ncoupons, 3);
	assert_int_equal(v[1].ncoupons, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(
		    v[0].coupons[i].code, v[1].coupons[i].code);
		assert_string_equal(v[0].coupons[i].customer_id, "CUST-7");
		assert_string_equal(
		    v[0].coupons[i].coupon_type_id, i < 2 ? t1 : t2);
		assert_int_equal(strlen(v[0].coupons[i].code), 10);
		assert_memory_equal(v[0].coupons[i].code, "PP", 2);
		cp_code c = get_code("t1", v[0].coupons[i].code);
		assert_int_equal(c.state, CP_ACTIVE);
		assert_string_equal(c.customer, "CUST-7");
		assert_string_equal(c.issuing_promotion, "PP");
		assert_string_equal(c.issuing_tx, "TX-PP");
		assert_string_equal(c.origin, CP_ORIGIN_POST_PURCHASE);
		assert_int_equal(c.issued_at, v[0].coupons[i].issued_at);
		assert_int_equal(c.valid_to, c.issued_at + 10 * 86400000LL);
	}
	cp_code_filter f = { .customer = "CUST-7", .state = -1, .top = 100 };
	dre_buf        vals = { 0 };
	int64_t        count = 0;
	assert_int_equal(
	    cp_codes_list(&S, A, "t1", &f, &vals, &count), DRE_OK);
	assert_int_equal(count, 3);
	dre_buf_free(&vals);

	// An inactive and a missing type: nothing issued, both reported.
	snprintf(doc, sizeof doc,
	    "{\"actions\":[{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":"
	    "\"%s\"},{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":\"nope\"}]}",
	    off);
	promo("t1", "PX", 1, doc);
	sale_init(&e, "t1", "TX-PX", NULL, "PX", NULL, 0);
	assert_int_equal(apply_sale(b, &e, 1), DRE_OK);
	commit_batch(b);
	assert_int_equal(results_of(a, "TX-PX", v, 4), 1);
	assert_string_equal(v[0].status, "FAILED");
	assert_int_equal(v[0].ncoupons, 0);
	char want[512];
	snprintf(want, sizeof want,
	    "promotion PX: coupon type %s is inactive or expired, no "
	    "post-purchase coupon issued; promotion PX: coupon type nope "
	    "does not exist, no post-purchase coupon issued",
	    off);
	assert_string_equal(v[0].reason, want);
	dre_batch_free(b);
	dre_arena_free(a);
}

// A promotion the link table has not seen: the batch is retried while its
// feed may be behind, then the sale is applied and the gap reported. A sale
// without coupons is SKIPPED.
static void
test_unknown_promotion(void **state)
{
	(void) state;
	dre_batch *b = dre_batch_alloc_indexed();
	sale_ev    e;
	sale_init(&e, "t2", "TX-U", "C", "UNSEEN", NULL, 0);
	assert_int_equal(apply_sale(b, &e, 1), DRE_EUNAVAIL);
	assert_int_equal(dre_batch_count(b), 0);
	cp_apply_batch_end(&S, DRE_EUNAVAIL);
	assert_int_equal(apply_sale(b, &e, CP_UNKNOWN_TRIES), DRE_OK);
	commit_batch(b);
	promo("t2", "SEEN", 1, "{\"status\":\"ACTIVE\"}");
	sale_init(&e, "t2", "TX-S", "C", "SEEN", NULL, 0);
	assert_int_equal(apply_sale(b, &e, 1), DRE_OK);
	commit_batch(b);
	dre_batch_free(b);

	dre_arena     *a = dre_arena_alloc(0);
	dre_sfx_result v[2];
	assert_int_equal(results_of(a, "TX-U", v, 2), 1);
	assert_string_equal(v[0].status, "FAILED");
	assert_int_equal(v[0].attempts, CP_UNKNOWN_TRIES);
	assert_string_equal(v[0].reason,
	    "promotion UNSEEN is unknown to the coupon service: its "
	    "post-purchase coupons were not issued");
	assert_int_equal(results_of(a, "TX-S", v, 2), 1);
	assert_string_equal(v[0].status, "SKIPPED");
	assert_null(v[0].reason);
	dre_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redeem),
		cmocka_unit_test(test_post_purchase),
		cmocka_unit_test(test_unknown_promotion),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
