// test_catalog_api.c -- the catalog's handlers against a real RocksDB and a
// mock Kafka cluster.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog.h"
#include "dre/avro.h"
#include "dre/topics.h"
#include "entities.h"
#include "handlers.h"
#include "master.pb-c.h"

#include "dre/busmock.h"
#include "testkit.h"

static char          dir[64];
static cat           C;
static dre_kvlist    props;
static dre_bus_mock *mock;

static int
setup(void **state)
{
	if (tk_tmpdir(dir, sizeof dir, "catalog") != 0
	    || tk_broker_open(&mock, &props) != 0)
		return 1;
	return cat_open(&C, dir, &props) != DRE_OK;
}

static int
teardown(void **state)
{
	cat_close(&C);
	tk_broker_close(mock, &props);
	return tk_rmtree(dir) != 0;
}

// route is the handler of method in the catalog's route table.
static dre_rpc_fn
route(const char *method)
{
	const dre_rpc_route *rt = cat_routes;
	while (rt->method && strcmp(rt->method, method) != 0)
		rt++;
	assert_non_null(rt->method);
	return rt->fn;
}

// call invokes the handler of method as tenant with body and params
// ("k=v" strings, NULL-terminated); the reply body (an error's target) is
// copied to *out.
static int
call(const char *method, const char *tenant, const char *body, char **out,
    const char *const *params)
{
	int status
	    = tk_call(cat_routes, &C, method, tenant, body, params, out);
	assert_int_not_equal(status, -1);
	return status;
}

#define P(...) ((const char *const[]) { __VA_ARGS__, NULL })

static const char SEED[]
    = "{\"id\":\"10000000-0000-4000-8000-000000000001\","
      "\"name\":\"Electronics 10% Off\",\"type\":\"ARTICLE\","
      "\"status\":\"ACTIVE\",\"conditions\":[{\"type\":\"ARTICLE_GROUP\","
      "\"values\":[\"ELECTRONICS\"]}],\"actions\":[{\"type\":"
      "\"ARTICLE_GROUP\",\"discountType\":\"PERCENTAGE\",\"value\":10,"
      "\"target\":{\"articleGroups\":[\"ELECTRONICS\"]}}]}";

static void
test_promotions(void **state)
{
	char *out = NULL;
	assert_int_equal(
	    call("catalog.Promotions.create", "t1", SEED, &out, NULL), 201);
	assert_non_null(strstr(out,
	    "\"minorVersion\":13,\"id\":"
	    "\"10000000-0000-4000-8000-000000000001\""));
	assert_non_null(strstr(out, "\"createdAt\":\"20"));
	free(out);
	assert_int_equal(
	    call("catalog.Promotions.create", "t1", SEED, &out, NULL), 409);
	assert_string_equal(out, "id");
	free(out);
	// another tenant neither sees nor collides
	assert_int_equal(call("catalog.Promotions.get", "t2", NULL, NULL,
	                     P("id=10000000-0000-4000-8000-000000000001")),
	    404);
	assert_int_equal(
	    call("catalog.Promotions.create", "t2", SEED, NULL, NULL), 201);
	assert_int_equal(
	    call("catalog.Promotions.create", "t1", "{\"name\":", NULL, NULL),
	    400);
	assert_int_equal(call("catalog.Promotions.create", "t1",
	                     "{\"name\":\"x\",\"type\":\"ARTICLE\","
	                     "\"actions\":[{\"type\":\"ARTICLE\","
	                     "\"discountType\":\"PERCENTAGE\",\"value\":0}]}",
	                     &out, NULL),
	    400);
	assert_string_equal(out, "actions[0].value");
	free(out);
	// generated id
	assert_int_equal(call("catalog.Promotions.create", "t1",
	                     "{\"name\":\"Receipt\",\"type\":\"RECEIPT\","
	                     "\"actions\":[{\"type\":\"RECEIPT\","
	                     "\"discountType\":\"ABSOLUTE\",\"value\":5}]}",
	                     &out, NULL),
	    201);
	free(out);

	assert_int_equal(
	    call("catalog.Promotions.update", "t1", "{\"name\":\"Renamed\"}",
	        &out, P("id=10000000-0000-4000-8000-000000000001", "patch=1")),
	    200);
	assert_non_null(strstr(out, "\"name\":\"Renamed\""));
	assert_non_null(strstr(out, "\"value\":10"));
	free(out);
	assert_int_equal(
	    call("catalog.Promotions.deactivate", "t1", NULL, &out,
	        P("id=10000000-0000-4000-8000-000000000001")),
	    200);
	assert_non_null(strstr(out, "\"status\":\"INACTIVE\""));
	free(out);

	assert_int_equal(call("catalog.Promotions.list", "t1", NULL, &out,
	                     P("status=INACTIVE")),
	    200);
	assert_non_null(strstr(out, "\"count\":1,"));
	free(out);
	assert_int_equal(
	    call("catalog.Promotions.list", "t1", NULL, &out, P("$top=1")),
	    200);
	assert_non_null(strstr(out, "{\"minorVersion\":13,\"count\":2,"));
	free(out);
	assert_int_equal(
	    call("catalog.Promotions.list", "t1", NULL, &out, P("$top=x")),
	    400);
	assert_string_equal(out, "$top");
	free(out);
	assert_int_equal(call("catalog.Promotions.delete", "t1", NULL, NULL,
	                     P("id=10000000-0000-4000-8000-000000000001")),
	    204);
	assert_int_equal(call("catalog.Promotions.get", "t1", NULL, NULL,
	                     P("id=10000000-0000-4000-8000-000000000001")),
	    404);
	assert_int_equal(call("catalog.Promotions.get", "t2", NULL, NULL,
	                     P("id=10000000-0000-4000-8000-000000000001")),
	    200);
}

static void
test_master_data(void **state)
{
	char *out = NULL;
	assert_int_equal(call("catalog.PosGroups.create", "t1",
	                     "{\"code\":\"BERLIN\",\"name\":\"Berlin\","
	                     "\"stores\":[\"S1\",\"S2\"]}",
	                     &out, NULL),
	    201);
	assert_non_null(strstr(out, "\"stores\":[\"S1\",\"S2\"]"));
	free(out);
	assert_int_equal(
	    call("catalog.PosGroups.create", "t1",
	        "{\"code\":\"BERLIN\",\"name\":\"Again\"}", &out, NULL),
	    409);
	assert_string_equal(out, "code");
	free(out);
	assert_int_equal(
	    call("catalog.PosGroups.get", "t1", NULL, NULL, P("id=BERLIN")),
	    200);
	assert_int_equal(
	    call("catalog.PosGroups.create", "t1",
	        "{\"code\":\"ABCDEFGHIJKLMNOPQRSTU\",\"name\":\"x\"}", &out,
	        NULL),
	    400);
	assert_string_equal(out, "code");
	free(out);

	assert_int_equal(call("catalog.ArticleGroups.create", "t1",
	                     "{\"articleGroupId\":\"ELECTRONICS\","
	                     "\"name\":\"Electronics\"}",
	                     NULL, NULL),
	    201);
	assert_int_equal(call("catalog.ArticleGroups.update", "t1",
	                     "{\"description\":\"TV and more\"}", &out,
	                     P("id=ELECTRONICS", "patch=1")),
	    200);
	assert_non_null(strstr(out, "\"name\":\"Electronics\""));
	assert_non_null(strstr(out, "\"description\":\"TV and more\""));
	free(out);

	assert_int_equal(call("catalog.Articles.create", "t1",
	                     "{\"articleNumber\":\"ART-1001\",\"name\":\"TV\","
	                     "\"ean\":\"4007817327098\",\"referencePrice\":"
	                     "\"89.99\",\"articleGroupId\":\"ELECTRONICS\"}",
	                     &out, NULL),
	    201);
	assert_non_null(strstr(out, "\"referencePrice\":89.99"));
	free(out);
	assert_int_equal(
	    call("catalog.Articles.create", "t1",
	        "{\"articleNumber\":\"ART-1001\",\"name\":\"TV\"}", &out,
	        NULL),
	    409);
	assert_string_equal(out, "articleNumber");
	free(out);
	assert_int_equal(call("catalog.Articles.import", "t1",
	                     "{\"articles\":[{\"articleNumber\":\"ART-10006\","
	                     "\"name\":\"Mineral Water 0.5L\",\"ean\":"
	                     "\"4001954600106\",\"manufacturer\":\"Spring "
	                     "Corp\",\"category\":\"Beverages\"},"
	                     "{\"articleNumber\":\"ART-1001\",\"name\":\"TV "
	                     "55\"},{\"name\":\"no number\"},"
	                     "{\"articleNumber\":\"X\",\"name\":\"n\","
	                     "\"referencePrice\":-1}]}",
	                     &out, NULL),
	    200);
	assert_non_null(strstr(out,
	    "\"imported\":1,\"updated\":1,"
	    "\"failed\":2,"));
	assert_non_null(strstr(out,
	    "{\"articleNumber\":\"ART-10006\","
	    "\"status\":\"created\",\"id\":\""));
	assert_non_null(
	    strstr(out, "\"target\":\"articles[2].articleNumber\""));
	assert_non_null(
	    strstr(out, "\"target\":\"articles[3].referencePrice\""));
	free(out);
	assert_int_equal(
	    call("catalog.Articles.import", "t1", "{}", &out, NULL), 400);
	assert_string_equal(out, "articles");
	free(out);
	assert_int_equal(
	    call("catalog.Articles.get", "t1", NULL, &out, P("id=ART-1001")),
	    200);
	assert_non_null(strstr(out, "\"name\":\"TV 55\""));
	free(out);
	assert_int_equal(
	    call("catalog.Articles.list", "t1", NULL, &out, P("$skip=1")),
	    200);
	assert_non_null(strstr(out, "\"count\":2,\"value\":[{"));
	// key order: "ART-10006" < "ART-1001"
	assert_non_null(strstr(out, "\"articleNumber\":\"ART-1001\""));
	assert_null(strstr(out, "ART-10006"));
	free(out);
	assert_int_equal(
	    call("catalog.Articles.list", "t2", NULL, &out, NULL), 200);
	assert_string_equal(out,
	    "{\"minorVersion\":13,\"count\":0,"
	    "\"value\":[]}");
	free(out);
	assert_int_equal(
	    call("catalog.Articles.list", "", NULL, NULL, NULL), 403);
}

// snap asks for a snapshot page (cursor NULL: the first) of tenant (NULL:
// every tenant); *status is the answer's status, the page NULL unless 200.
static Dre__SnapshotResponse *
snap(const char *tenant, const char *cursor, uint32_t page_bytes, int *status)
{
	Dre__SnapshotRequest rq = DRE__SNAPSHOT_REQUEST__INIT;
	uint8_t              buf[128];
	rq.tenant = (char *) tenant;
	rq.cursor = (char *) cursor;
	rq.has_page_bytes = page_bytes > 0;
	rq.page_bytes = page_bytes;
	size_t          n = dre__snapshot_request__pack(&rq, buf);
	Dre__RpcRequest rq0 = DRE__RPC_REQUEST__INIT;
	dre_rpc_call    c = { .method = "catalog.Snapshot",
		   .tenant = "",
		   .principal = "",
		   .body = buf,
		   .body_len = n,
		   .req = &rq0 };
	dre_rpc_reply   rep = { .status = 200 };
	route("catalog.Snapshot")(&C, &c, &rep);
	*status = rep.status;
	Dre__SnapshotResponse *s = rep.status == 200
	    ? dre__snapshot_response__unpack(
	        NULL, rep.body.len, (const uint8_t *) rep.body.data)
	    : NULL;
	dre_rpc_reply_clear(&rep);
	return s;
}

static void
test_snapshot(void **state)
{
	int                    st;
	Dre__SnapshotResponse *s = snap("t1", NULL, 0, &st);
	assert_int_equal(st, 200);
	assert_non_null(s);
	// t1: one promotion left, one POS group, one article group, two
	// articles
	assert_int_equal(s->n_entities, 5);
	assert_int_equal(s->version, C.version);
	for (size_t i = 0; i < s->n_entities; i++) {
		const Dre__MasterEntity *e = s->entities[i];
		assert_string_equal(e->tenant, "t1");
		assert_true(e->version > 0);
		// the stored document, whole (packed straight from the
		// store's value)
		assert_true(e->document.len > 2);
		assert_int_equal(e->document.data[0], '{');
		assert_int_equal(e->document.data[e->document.len - 1], '}');
	}
	assert_true(s->n_offsets >= 4);
	dre__snapshot_response__free_unpacked(s, NULL);
}

// A paged snapshot (one entity a page here) is the state of its first
// page: an article created between pages is in none of them, and every
// page has the first page's version and offsets; a cursor serves once.
static void
test_snapshot_pages(void **state)
{
	int                    st;
	Dre__SnapshotResponse *all = snap(NULL, NULL, 0, &st);
	assert_int_equal(st, 200);
	assert_non_null(all);
	assert_null(all->next_cursor);
	assert_true(all->n_entities >= 5);
	Dre__SnapshotResponse *pg = snap(NULL, NULL, 1, &st);
	assert_int_equal(st, 200);
	assert_int_equal(pg->n_entities, 1);
	assert_non_null(pg->next_cursor);
	assert_int_equal(pg->version, all->version);
	size_t noff = pg->n_offsets;
	assert_int_equal(
	    call("catalog.Articles.create", "t9",
	        "{\"articleNumber\":\"ZZZ-PAGED\",\"name\":\"late\"}", NULL,
	        NULL),
	    201);
	size_t i = 0, pages = 1;
	for (;;) {
		assert_true(i < all->n_entities);
		assert_int_equal(pg->n_entities, 1);
		const Dre__MasterEntity *e = pg->entities[0],
		                        *w = all->entities[i];
		assert_string_equal(e->tenant, w->tenant);
		assert_string_equal(e->kind, w->kind);
		assert_string_equal(e->id, w->id);
		assert_int_equal(e->version, w->version);
		assert_int_equal(e->document.len, w->document.len);
		assert_memory_equal(
		    e->document.data, w->document.data, w->document.len);
		assert_int_equal(pg->version, all->version);
		assert_int_equal(pg->n_offsets, noff);
		i++;
		if (pg->next_cursor == NULL)
			break;
		char cursor[64];
		snprintf(cursor, sizeof cursor, "%s", pg->next_cursor);
		dre__snapshot_response__free_unpacked(pg, NULL);
		pg = snap(NULL, cursor, 1, &st);
		assert_int_equal(st, 200);
		pages++;
		if (pages == 2) { // a cursor serves once
			assert_null(snap(NULL, cursor, 1, &st));
			assert_int_equal(st, 410);
		}
		if (pg->n_entities == 0) { // the iterator ended on a page
			assert_null(pg->next_cursor);
			break;
		}
	}
	dre__snapshot_response__free_unpacked(pg, NULL);
	assert_int_equal(i, all->n_entities);
	assert_null(snap(NULL, "123abc.1", 1, &st));
	assert_int_equal(st, 410);
	assert_null(snap(NULL, "not a cursor", 1, &st));
	assert_int_equal(st, 410);
	// A new snapshot has it.
	Dre__SnapshotResponse *now = snap(NULL, NULL, 0, &st);
	assert_int_equal(now->n_entities, all->n_entities + 1);
	assert_true(now->version > all->version);
	dre__snapshot_response__free_unpacked(now, NULL);
	dre__snapshot_response__free_unpacked(all, NULL);
}

// The outbox relay publishes every change to dre.master.* with key
// "<tenant>/<key>" and the catalog-wide version.
static void
test_events(void **state)
{
	dre_consumer *co = NULL;
	assert_int_equal(dre_consumer_open(&co, &props, NULL), DRE_OK);
	assert_int_equal(dre_consumer_assign_topic(
	                     co, DRE_TOPIC_ARTICLES, DRE_OFFSET_BEGINNING),
	    DRE_OK);
	bool found = false;
	for (int i = 0; i < 100 && !found; i++) {
		dre_msg m;
		if (dre_consumer_poll(co, 200, &m) != DRE_OK)
			continue;
		if (m.key_len != strlen("t1/ART-10006")
		    || memcmp(m.key, "t1/ART-10006", m.key_len) != 0)
			continue;
		dre_master_event e;
		dre_arena       *a = dre_arena_alloc(0);
		assert_int_equal(
		    dre_avro_decode_master(&e, a, m.payload, m.len), DRE_OK);
		assert_string_equal(e.tenant, "t1");
		assert_string_equal(e.entity_kind, "ARTICLE");
		assert_string_equal(e.entity_id, "ART-10006");
		assert_string_equal(e.op, "UPSERT");
		assert_true(e.version > 0);
		assert_non_null(strstr(e.document, "Mineral Water"));
		dre_arena_free(a);
		found = true;
	}
	dre_consumer_close(co);
	assert_true(found);
}

// Restart keeps everything, the version sequence included.
static void
test_restart(void **state)
{
	int64_t v = C.version;
	cat_close(&C);
	assert_int_equal(cat_open(&C, dir, &props), DRE_OK);
	assert_int_equal(C.version, v);
	assert_int_equal(
	    call("catalog.Articles.get", "t1", NULL, NULL, P("id=ART-10006")),
	    200);
}

// Tenant settings: defaults until set, replaced by PUT, validated, and
// published on the promotions feed as TENANT_SETTINGS.
static void
test_settings(void **state)
{
	char *out = NULL;
	assert_int_equal(
	    call("catalog.TenantSettings.get", "t3", NULL, &out, NULL), 200);
	assert_string_equal(out,
	    "{\"minorVersion\":13,\"enableProductionNudges\":false,"
	    "\"currency\":\"EUR\",\"rejectUnknownFields\":false,"
	    "\"modifiedAt\":null}");
	free(out);
	assert_int_equal(call("catalog.TenantSettings.update", "t3",
	                     "{\"enableProductionNudges\":true}", &out, NULL),
	    200);
	assert_non_null(strstr(out, "\"enableProductionNudges\":true"));
	free(out);
	assert_int_equal(
	    call("catalog.TenantSettings.get", "t3", NULL, &out, NULL), 200);
	assert_non_null(strstr(out,
	    "\"enableProductionNudges\":true,\"currency\":\"EUR\","
	    "\"rejectUnknownFields\":false,\"modifiedAt\":\"20"));
	free(out);
	assert_int_equal(call("catalog.TenantSettings.update", "t3",
	                     "{\"enableProductionNudges\":1}", &out, NULL),
	    400);
	assert_string_equal(out, "enableProductionNudges");
	free(out);
	assert_int_equal(call("catalog.TenantSettings.update", "t3",
	                     "{\"currency\":\"eur\"}", &out, NULL),
	    400);
	assert_string_equal(out, "currency");
	free(out);
	assert_int_equal(
	    call("catalog.TenantSettings.update", "t3", "[]", &out, NULL),
	    400);
	free(out);
	// Other tenants keep their defaults.
	assert_int_equal(
	    call("catalog.TenantSettings.get", "t4", NULL, &out, NULL), 200);
	assert_non_null(strstr(out, "\"enableProductionNudges\":false"));
	free(out);

	dre_consumer *co = NULL;
	assert_int_equal(dre_consumer_open(&co, &props, NULL), DRE_OK);
	assert_int_equal(dre_consumer_assign_topic(
	                     co, DRE_TOPIC_PROMOTIONS, DRE_OFFSET_BEGINNING),
	    DRE_OK);
	bool found = false;
	for (int i = 0; i < 100 && !found; i++) {
		dre_msg m;
		if (dre_consumer_poll(co, 200, &m) != DRE_OK)
			continue;
		if (m.key_len != strlen("t3/settings")
		    || memcmp(m.key, "t3/settings", m.key_len) != 0)
			continue;
		dre_master_event e;
		dre_arena       *a = dre_arena_alloc(0);
		assert_int_equal(
		    dre_avro_decode_master(&e, a, m.payload, m.len), DRE_OK);
		assert_string_equal(e.entity_kind, "TENANT_SETTINGS");
		assert_string_equal(e.entity_id, "settings");
		assert_int_equal(e.schema_version, 3);
		dre_arena_free(a);
		found = true;
	}
	dre_consumer_close(co);
	assert_true(found);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_promotions),
		cmocka_unit_test(test_master_data),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_snapshot_pages),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_settings),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
