// test_loyalty_concurrency.c -- the loyalty service while everything happens
// at once to one member: the confirms applier credits points (and redeems
// the personal promotions the sales used), the API patches the contact,
// posts receipts, creates other contacts, assigns and unassigns personal
// promotions, and evaluators keep asking which ones the member holds. No
// credit is lost to a concurrent write, every answer to the evaluators is
// one consistent state (a promotion held at most once, a known level), the
// live-assignment index agrees with the assignments, and every API write
// has its audit record. A fake catalog answers the promotion lookups over
// inproc nng. Run under ASan (use-after-free) and TSan (races).
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/json.h"
#include "dre/rpc.h"
#include "dre/uuid.h"
#include "handlers.h"
#include "loyalty.h"
#include "testkit.h"

#define TENANT    "t1"
#define CAT_URL   "inproc://test-loyalty-catalog"
#define NPROMOS   4
#define CONFIRMS  240 // 10 points each
#define BATCH     8
#define PATCHES   120
#define RECEIPTS  40 // 10.00 each: 10 points
#define ASSIGNS   60
#define EVALUATOR 2

static dre_bus_mock   *mock;
static dre_kvlist      props;
static char            dir[256];
static loy             s;
static dre_rpc_server *catalog;

static struct {
	char        member[DRE_UUID_LEN + 1];
	atomic_int  bad;
	atomic_int  busy; // writers still running
	atomic_long answers;
	atomic_int  assigned, unassigned; // 201s and 204s
	char        why[200];
	atomic_flag why_set;
} sh;

static void
note_bad(const char *what, int status)
{
	if (!atomic_flag_test_and_set(&sh.why_set))
		snprintf(sh.why, sizeof sh.why, "%s: %d", what, status);
	atomic_fetch_add(&sh.bad, 1);
}

// The catalog's catalog.Promotions.get: every id is a personal promotion.
static void
fake_promotion(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	(void) svc;
	const char *id = dre_rpc_param(call, "id");
	dre_buf_printf(&rep->body,
	    "{\"id\":\"%s\",\"name\":\"Personal %s\",\"assignment\":"
	    "\"PERSONAL\"}",
	    id ? id : "", id ? id : "");
	dre_rpc_reply_json(rep);
}

static const dre_rpc_route cat_routes[] = {
	{ "catalog.Promotions.get", fake_promotion, 0 },
	{ NULL, NULL, 0 },
};

static int
setup(void **state)
{
	(void) state;
	uint8_t key[DRE_RPC_KEY_LEN];
	memset(key, 7, sizeof key);
	if (tk_broker_open(&mock, &props) != 0
	    || tk_tmpdir(dir, sizeof dir, "loyalty") != 0
	    || loy_open(&s, dir, &props) != DRE_OK
	    || dre_rpc_key_set(key, sizeof key) != DRE_OK
	    || dre_rpc_server_open(&catalog, CAT_URL, cat_routes, NULL, 2)
	        != DRE_OK
	    || dre_rpc_client_open(&s.catalog, CAT_URL) != DRE_OK)
		return -1;
	s.call_ms = 5000;
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	dre_rpc_client_close(s.catalog);
	dre_rpc_server_close(catalog);
	loy_close(&s);
	tk_broker_close(mock, &props);
	return tk_rmtree(dir);
}

static int
call(const char *method, const char *body, const char *id, char **out)
{
	char        p[64];
	const char *params[2] = { NULL, NULL };
	if (id != NULL) {
		snprintf(p, sizeof p, "id=%s", id);
		params[0] = p;
	}
	return tk_call(loy_routes, &s, method, TENANT, body, params, out);
}

// id_of reads "id" of a contact or assignment answer into out.
static bool
id_of(const char *doc, char *out)
{
	const char *p = doc ? strstr(doc, "\"id\":\"") : NULL;
	if (p == NULL || strlen(p + 6) < DRE_UUID_LEN)
		return false;
	memcpy(out, p + 6, DRE_UUID_LEN);
	out[DRE_UUID_LEN] = '\0';
	return true;
}

// ---- the writers
// ------------------------------------------------------------

static void *
confirms(void *arg)
{
	(void) arg;
	dre_arena *a = dre_arena_alloc(0);
	for (int i = 0; i < CONFIRMS; i += BATCH) {
		dre_batch *b = dre_batch_alloc_indexed();
		dre_err    err = DRE_OK;
		loy_batch_begin(&s);
		for (int k = 0; k < BATCH && err == DRE_OK; k++) {
			char             tx[32], pid[16];
			dre_tx_promotion p = { 0 };
			dre_tx_confirmed t = { 0 };
			dre_buf          ev = { 0 };
			snprintf(tx, sizeof tx, "TX-%d", i + k);
			snprintf(pid, sizeof pid, "PX-%d", (i + k) % NPROMOS);
			p.promotion_id = pid;
			p.promotion_name = pid;
			p.promotion_type = "ARTICLE";
			dre_uuid_v4(t.event_id);
			t.tenant = TENANT;
			t.customer_id = "M-1"; // the memberNumber
			t.occurred_at = t.evaluated_at = t.transaction_time
			    = dre_now_ms();
			t.schema_version = 2;
			t.transaction_id = tx;
			t.transaction_counter = 1;
			t.currency = "EUR";
			t.loyalty_points = 10;
			t.promotions = &p;
			t.npromotions = 1;
			if ((err = dre_avro_encode_tx_confirmed(&ev, &t))
			    == DRE_OK) {
				dre_msg m = { .topic = "dre.transactions."
					               "confirmed",
					.payload = (const uint8_t *) ev.data,
					.len = ev.len };
				dre_apply_ctx x = { .st = s.st,
					.b = b,
					.a = a,
					.event_id = t.event_id,
					.attempts = 1,
					.now_ms = dre_now_ms() };
				err = loy_apply_confirmed(&s, &x, &m);
			}
			dre_buf_free(&ev);
		}
		if (err == DRE_OK)
			err = dre_store_write(s.st, b, true);
		loy_batch_end(&s, err);
		if (err != DRE_OK)
			note_bad(dre_strerror(err), i);
		dre_batch_free(b);
		dre_arena_reset(a);
	}
	dre_arena_free(a);
	atomic_fetch_sub(&sh.busy, 1);
	return NULL;
}

static void *
contact_writer(void *arg)
{
	(void) arg;
	char body[256];
	for (int i = 0; i < PATCHES; i++) {
		snprintf(body, sizeof body, "{\"firstName\":\"n%d\"}", i);
		int st
		    = call("loyalty.Contacts.update", body, sh.member, NULL);
		if (st != 200)
			note_bad("patch", st);
		if (i % 3 == 0) { // someone else joins
			snprintf(body, sizeof body,
			    "{\"email\":\"other%d@example.com\"}", i);
			if ((st = call(
			         "loyalty.Contacts.upsert", body, NULL, NULL))
			    != 201)
				note_bad("create", st);
		}
		if (i < RECEIPTS) {
			snprintf(body, sizeof body,
			    "{\"uniqueReceiptId\":\"R-%d\",\"contact\":{"
			    "\"matchKey\":\"%s\",\"matchKeyType\":"
			    "\"ContactId\"},\"items\":[{\"type\":\"PURCHASE\","
			    "\"grossPaidPrice\":10.00}]}",
			    i, sh.member);
			if ((st = call(
			         "loyalty.Receipts.create", body, NULL, NULL))
			    != 202)
				note_bad("receipt", st);
		}
	}
	atomic_fetch_sub(&sh.busy, 1);
	return NULL;
}

static void *
assigner(void *arg)
{
	(void) arg;
	char body[160], aid[DRE_UUID_LEN + 1];
	for (int i = 0; i < ASSIGNS; i++) {
		char *out = NULL;
		snprintf(body, sizeof body,
		    "{\"contactId\":\"%s\",\"promotionId\":\"PX-%d\"}",
		    sh.member, i % NPROMOS);
		int st = call(
		    "loyalty.PromotionAssignments.assign", body, NULL, &out);
		bool ok = (st == 201 || st == 200) && id_of(out, aid);
		free(out);
		if (!ok) {
			note_bad("assign", st);
			continue;
		}
		if (st == 201)
			atomic_fetch_add(&sh.assigned, 1);
		if (i % 2 == 1)
			continue; // left for a confirm to redeem
		// Unassigned, unless a confirm redeemed it meanwhile.
		st = call(
		    "loyalty.PromotionAssignments.delete", NULL, aid, NULL);
		if (st == 204)
			atomic_fetch_add(&sh.unassigned, 1);
		else if (st != 409)
			note_bad("unassign", st);
	}
	atomic_fetch_sub(&sh.busy, 1);
	return NULL;
}

// evaluator asks what the evaluator asks before pricing the member's
// basket: each answer one state (no promotion twice, a level).
static void *
evaluator(void *arg)
{
	(void) arg;
	const char *params[] = { "customerId=M-1", NULL };
	dre_arena  *a = dre_arena_alloc(0);
	while (atomic_load(&sh.busy) > 0) {
		char *out = NULL;
		int st = tk_call(loy_routes, &s, "loyalty.Assignments.active",
		    TENANT, NULL, params, &out);
		dre_json *d = NULL;
		if (st != 200 || out == NULL
		    || dre_json_parse(&d, a, out, strlen(out), 8, NULL)
		        != DRE_OK) {
			note_bad("active", st);
			free(out);
			continue;
		}
		const dre_json *c = dre_json_get(d, "contactId");
		const dre_json *l = dre_json_get(d, "level");
		const dre_json *ps = dre_json_get(d, "promotionIds");
		if (!dre_json_is(c, DRE_JSON_STRING)
		    || strcmp(c->str, sh.member) != 0
		    || !dre_json_is(l, DRE_JSON_STRING)
		    || (strcmp(l->str, "BASE") != 0
		        && strcmp(l->str, "SILVER") != 0
		        && strcmp(l->str, "GOLD") != 0)
		    || !dre_json_is(ps, DRE_JSON_ARRAY) || ps->len > NPROMOS)
			note_bad("active answer", 0);
		bool seen[NPROMOS] = { false };
		for (const dre_json *p = ps ? ps->child : NULL; p;
		     p = p->next) {
			int k = -1;
			if (!dre_json_is(p, DRE_JSON_STRING)
			    || sscanf(p->str, "PX-%d", &k) != 1 || k < 0
			    || k >= NPROMOS || seen[k])
				note_bad("promotion held twice", k);
			else
				seen[k] = true;
		}
		atomic_fetch_add(&sh.answers, 1);
		free(out);
		dre_arena_reset(a);
	}
	dre_arena_free(a);
	return NULL;
}

// count counts the keys of cf under prefix whose value holds needle.
static size_t
count(int cf, const char *prefix, size_t pl, const char *needle)
{
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl, n = 0;
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, cf, prefix, pl), DRE_OK);
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		char *text = strndup(v, vl);
		n += needle == NULL || strstr(text, needle) != NULL;
		free(text);
	}
	dre_store_iter_close(it);
	return n;
}

static void
test_everything_at_once(void **state)
{
	(void) state;
	char *out = NULL;
	assert_int_equal(call("loyalty.Contacts.upsert",
	                     "{\"email\":\"m1@example.com\",\"memberNumber\":"
	                     "\"M-1\"}",
	                     NULL, &out),
	    201);
	assert_true(id_of(out, sh.member));
	free(out);

	pthread_t th[3 + EVALUATOR];
	atomic_store(&sh.busy, 3);
	assert_int_equal(pthread_create(&th[0], NULL, confirms, NULL), 0);
	assert_int_equal(
	    pthread_create(&th[1], NULL, contact_writer, NULL), 0);
	assert_int_equal(pthread_create(&th[2], NULL, assigner, NULL), 0);
	for (int i = 0; i < EVALUATOR; i++)
		assert_int_equal(
		    pthread_create(&th[3 + i], NULL, evaluator, NULL), 0);
	for (int i = 0; i < 3 + EVALUATOR; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&sh.bad) != 0)
		fail_msg("%d bad, first %s", atomic_load(&sh.bad), sh.why);
	assert_true(atomic_load(&sh.answers) > 0);
	print_message("%ld answers to the evaluators; %d assigned, %d "
	              "unassigned\n",
	    atomic_load(&sh.answers), atomic_load(&sh.assigned),
	    atomic_load(&sh.unassigned));

	// Every credit kept, the last patch too.
	dre_arena  *a = dre_arena_alloc(0);
	loy_contact c;
	assert_int_equal(
	    loy_contact_get(&s, NULL, a, TENANT, sh.member, &c), DRE_OK);
	assert_int_equal(c.balance, CONFIRMS * 10 + RECEIPTS * 10);
	assert_string_equal(c.attr[LOY_A_FIRST], "n119");
	assert_string_equal(c.level, "SILVER"); // 2,800 points this year
	dre_arena_free(a);

	// The live-assignment index ('Q') names exactly the live ones.
	char   p[128];
	size_t pl = dre_key(p, sizeof p, 'A', 3, TENANT, sh.member, "");
	size_t live = count(LOY_CF_REWARDS, p, pl, "\"redeemed\":false");
	pl = dre_key(p, sizeof p, 'Q', 3, TENANT, sh.member, "");
	assert_int_equal(count(LOY_CF_REWARDS, p, pl, NULL), live);
	assert_true(live <= NPROMOS);

	// One audit record per API write of them (confirms are not edits).
	pl = dre_key(p, sizeof p, 0, 2, TENANT, "");
	char needle[80];
	snprintf(needle, sizeof needle, "\"entityId\":\"%s\"", sh.member);
	assert_int_equal(
	    count(LOY_CF_AUDIT, p, pl, needle), 1 + PATCHES + RECEIPTS);
	assert_int_equal(
	    count(LOY_CF_AUDIT, p, pl,
	        "\"entity\":\"PromotionAssignment\",\"entityId\""),
	    (size_t) (atomic_load(&sh.assigned)
	        + atomic_load(&sh.unassigned)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_everything_at_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
