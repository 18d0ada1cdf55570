// snapshot.c -- asks the owner of some data for a full copy over nng.
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/snapshot.h"

// The catalog's snapshot holds all master data -- some 300 MB at 1,000,000
// articles (about 300 B each) -- so it comes in pages of about
// CATALOG_PAGE_BYTES of documents, each call with its own timeout: a page
// takes the catalog well under a second, whatever the size of the whole.
// 1 MiB: every buffer of a page (the catalog's answer, the nng message, the
// reply's copy) stays below the mmap threshold that dre_svc_init sets, so
// the next page reuses the heap the last one freed; 16 MiB pages took fresh
// mmapped memory each time, and faulting it in was a third of the start.
// A catalog that does not page answers everything at once: up to
// CATALOG_MAX_BYTES.
#define CATALOG_TIMEOUT_MS 15000
#define CATALOG_PAGE_BYTES ((size_t) 1 << 20)
#define CATALOG_MAX_BYTES  ((size_t) 2 << 30)

struct dre_snapshot_client {
	dre_snapshot_cfg cfg;
	dre_rpc_client  *cli; // dialled at the first fetch
};

dre_snapshot_cfg
dre_snapshot_catalog(const char *url, const char *principal)
{
	return (dre_snapshot_cfg) { .url = url,
		.method = "catalog.Snapshot",
		.principal = principal,
		.reply = &dre__snapshot_response__descriptor,
		.timeout_ms = CATALOG_TIMEOUT_MS,
		.max_bytes = CATALOG_MAX_BYTES,
		.page_bytes = CATALOG_PAGE_BYTES };
}

dre_err
dre_snapshot_client_open(dre_snapshot_client **cp, const dre_snapshot_cfg *cfg)
{
	if (cfg == NULL || cfg->url == NULL || cfg->method == NULL
	    || cfg->reply == NULL)
		return DRE_EINVAL;
	dre_snapshot_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DRE_ENOMEM;
	c->cfg = *cfg;
	*cp = c;
	return DRE_OK;
}

void
dre_snapshot_client_close(dre_snapshot_client *c)
{
	if (c == NULL)
		return;
	dre_rpc_client_close(c->cli);
	free(c);
}

// A call in flight: its answer, when done is posted.
typedef struct {
	sem_t          done;
	dre_err        err;
	Dre__RpcReply *rep;
} pending;

static void
pending_done(void *arg, dre_err err, Dre__RpcReply *rep)
{
	pending *p = arg;
	p->err = err;
	p->rep = rep;
	sem_post(&p->done);
}

// make_request dials the owner at the first call and makes rq, the request of
// body.
static dre_err
make_request(dre_snapshot_client *c, Dre__RpcRequest *rq, const uint8_t *body,
    size_t len)
{
	if (c->cli == NULL) {
		if (dre_rpc_client_open(&c->cli, c->cfg.url) != DRE_OK)
			return DRE_EUNAVAIL;
		if (c->cfg.max_bytes > 0)
			dre_rpc_client_set_recv_max(c->cli, c->cfg.max_bytes);
	}
	rq->method = (char *) c->cfg.method;
	rq->has_body = true;
	rq->body.data = (uint8_t *) (len > 0 ? body : (const uint8_t *) "");
	rq->body.len = len;
	rq->tenant = "";
	rq->principal = (char *) c->cfg.principal;
	return DRE_OK;
}

// send_req sends body to the owner; the answer is p's (p stays where it is
// until collect has it).
static dre_err
send_req(dre_snapshot_client *c, const uint8_t *body, size_t len, pending *p)
{
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	if (make_request(c, &rq, body, len) != DRE_OK)
		return DRE_EUNAVAIL;
	p->rep = NULL;
	dre_err err = dre_rpc_call_async(
	    c->cli, &rq, c->cfg.timeout_ms, pending_done, p);
	if (err != DRE_OK) {
		dre_warn("%s from %s: %s", c->cfg.method, c->cfg.url,
		    dre_strerror(err));
		return DRE_EUNAVAIL;
	}
	return DRE_OK;
}

// answered takes a call's outcome: on success *repp is its 200 answer.
static dre_err
answered(dre_snapshot_client *c, dre_err err, Dre__RpcReply *rep,
    Dre__RpcReply **repp)
{
	if (err != DRE_OK) {
		dre_warn("%s from %s: %s", c->cfg.method, c->cfg.url,
		    dre_strerror(err));
		return DRE_EUNAVAIL;
	}
	if (rep->status != 200) {
		dre_warn("%s from %s: %d %s", c->cfg.method, c->cfg.url,
		    rep->status, rep->error_message ? rep->error_message : "");
		dre_rpc_reply_msg_free(rep);
		return DRE_EUNAVAIL;
	}
	*repp = rep;
	return DRE_OK;
}

// collect waits for the answer of p's call (sent); on success *repp is its
// 200 answer.
static dre_err
collect(dre_snapshot_client *c, pending *p, Dre__RpcReply **repp)
{
	while (sem_wait(&p->done) != 0)
		; // (EINTR)
	Dre__RpcReply *rep = p->rep;
	p->rep = NULL;
	return answered(c, p->err, rep, repp);
}

static void
pending_init(pending *p)
{
	memset(p, 0, sizeof(*p));
	sem_init(&p->done, 0, 0);
}

static void
pending_fini(pending *p)
{
	sem_destroy(&p->done);
}

// call sends body to the owner and waits; on success *repp is its 200
// answer.
static dre_err
call(dre_snapshot_client *c, const uint8_t *body, size_t len,
    Dre__RpcReply **repp)
{
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	if (make_request(c, &rq, body, len) != DRE_OK)
		return DRE_EUNAVAIL;
	Dre__RpcReply *rep = NULL;
	dre_err err = dre_rpc_call_sync(c->cli, &rq, c->cfg.timeout_ms, &rep);
	return answered(c, err, rep, repp);
}

// unpack decodes rep's body (into arena a when not NULL) and frees rep.
static ProtobufCMessage *
unpack(dre_snapshot_client *c, const ProtobufCMessageDescriptor *d,
    Dre__RpcReply *rep, dre_arena *a)
{
	ProtobufCAllocator al
	    = a ? dre_arena_pb(a) : (ProtobufCAllocator) { 0 };
	ProtobufCMessage *m = protobuf_c_message_unpack(d, a ? &al : NULL,
	    rep->has_body ? rep->body.len : 0, rep->body.data);
	dre_rpc_reply_msg_free(rep);
	if (m == NULL)
		dre_warn("%s from %s: undecodable answer", c->cfg.method,
		    c->cfg.url);
	return m;
}

// A catalog snapshot assembled from its pages: the answer is the first
// member; its entities point into the pages, kept until it is freed.
typedef struct {
	Dre__SnapshotResponse   r;
	Dre__SnapshotResponse **pages;
	size_t                  npages;
} paged;

static void
paged_free(paged *p)
{
	for (size_t i = 0; i < p->npages; i++)
		dre__snapshot_response__free_unpacked(p->pages[i], NULL);
	free(p->pages);
	free(p->r.entities);
	free(p);
}

// ask sends the request of the page at cursor (NULL: the first).
static dre_err
ask(dre_snapshot_client *c, const char *cursor, pending *p)
{
	Dre__SnapshotRequest rq = DRE__SNAPSHOT_REQUEST__INIT;
	uint8_t              buf[256];
	rq.cursor = (char *) cursor;
	rq.has_page_bytes = c->cfg.page_bytes > 0;
	rq.page_bytes = c->cfg.page_bytes > UINT32_MAX
	    ? UINT32_MAX
	    : (uint32_t) c->cfg.page_bytes;
	if (dre__snapshot_request__get_packed_size(&rq) > sizeof(buf))
		return DRE_ECODEC;
	size_t len = dre__snapshot_request__pack(&rq, buf);
	return send_req(c, buf, len, p);
}

// fetch_pages hands the pages to fn: decoded into a (reset for each page;
// fn borrows the page), or with a NULL, by malloc (fn owns the page). The
// next page is asked for before fn has the current one: the owner reads
// and packs it while fn works.
static dre_err
fetch_pages(
    dre_snapshot_client *c, dre_arena *a, dre_snapshot_page_fn fn, void *arg)
{
	int64_t version = 0;
	size_t  npages = 0, nents = 0;
	pending p;
	bool    asked = false; // p's call is in flight
	pending_init(&p);
	dre_err err = ask(c, NULL, &p);
	asked = err == DRE_OK;
	while (err == DRE_OK) {
		Dre__RpcReply *rep = NULL;
		asked = false;
		if ((err = collect(c, &p, &rep)) != DRE_OK)
			break;
		if (a != NULL)
			dre_arena_reset(a);
		Dre__SnapshotResponse *pg = (Dre__SnapshotResponse *) unpack(
		    c, &dre__snapshot_response__descriptor, rep, a);
		if (pg == NULL) {
			err = DRE_ECODEC;
			break;
		}
		if (npages++ == 0) {
			version = pg->version;
		} else if (pg->version != version) {
			// Every page is of the first one's state.
			dre_warn("%s from %s: page %zu of version %lld, not "
			         "%lld",
			    c->cfg.method, c->cfg.url, npages,
			    (long long) pg->version, (long long) version);
			if (a == NULL)
				dre__snapshot_response__free_unpacked(
				    pg, NULL);
			err = DRE_EUNAVAIL;
			break;
		}
		nents += pg->n_entities;
		bool last = pg->next_cursor == NULL || pg->next_cursor[0] == 0;
		if (!last) {
			if ((err = ask(c, pg->next_cursor, &p)) != DRE_OK) {
				if (a == NULL)
					dre__snapshot_response__free_unpacked(
					    pg, NULL);
				break;
			}
			asked = true;
		}
		if ((err = fn(arg, pg, npages == 1, last)) != DRE_OK)
			break;
		if (last) {
			if (npages > 1)
				dre_info(
				    "%s from %s: %zu entities in %zu pages",
				    c->cfg.method, c->cfg.url, nents, npages);
			break;
		}
	}
	if (asked) { // fn stopped the fetch: the next page is not wanted
		Dre__RpcReply *rep = NULL;
		if (collect(c, &p, &rep) == DRE_OK)
			dre_rpc_reply_msg_free(rep);
	}
	pending_fini(&p);
	return err;
}

dre_err
dre_snapshot_fetch_pages(
    dre_snapshot_client *c, dre_snapshot_page_fn fn, void *arg)
{
	// One arena for every page, reset between them: a page's thousands
	// of small allocations are not malloc'd and freed one by one (nor
	// its memory given back and taken again by the next page).
	size_t     pb = c->cfg.page_bytes;
	dre_arena *a = dre_arena_alloc(pb > 0 && pb < ((size_t) 256 << 20)
	        ? pb + pb / 2 + 65536
	        : (size_t) 1 << 20);
	if (a == NULL)
		return DRE_ENOMEM;
	dre_err err = fetch_pages(c, a, fn, arg);
	dre_arena_free(a);
	return err;
}

// page_keep adds page pg to the assembled answer p, which keeps it (it was
// fetched with malloc: p frees it).
static dre_err
page_keep(void *arg, const Dre__SnapshotResponse *page, bool first, bool last)
{
	paged                 *p = arg;
	Dre__SnapshotResponse *pg = (Dre__SnapshotResponse *) page;
	(void) last;
	Dre__SnapshotResponse **v
	    = realloc(p->pages, (p->npages + 1) * sizeof(*v));
	if (v == NULL) {
		dre__snapshot_response__free_unpacked(pg, NULL);
		return DRE_ENOMEM;
	}
	p->pages = v;
	p->pages[p->npages++] = pg;
	if (first) {
		p->r.offsets = pg->offsets;
		p->r.n_offsets = pg->n_offsets;
		p->r.cluster_id = pg->cluster_id;
		p->r.version = pg->version;
	}
	if (pg->n_entities > 0) { // (an empty page: no array at all)
		Dre__MasterEntity **e = realloc(p->r.entities,
		    (p->r.n_entities + pg->n_entities) * sizeof(*e));
		if (e == NULL)
			return DRE_ENOMEM;
		p->r.entities = e;
		memcpy(p->r.entities + p->r.n_entities, pg->entities,
		    pg->n_entities * sizeof(*pg->entities));
		p->r.n_entities += pg->n_entities;
	}
	return DRE_OK;
}

// fetch_paged asks for the catalog's snapshot page by page and puts the
// pages together.
static dre_err
fetch_paged(ProtobufCMessage **msgp, dre_snapshot_client *c)
{
	paged *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return DRE_ENOMEM;
	dre__snapshot_response__init(&p->r);
	dre_err err = fetch_pages(c, NULL, page_keep, p);
	if (err != DRE_OK) {
		paged_free(p);
		return err == DRE_ENOMEM || err == DRE_ECODEC ? err
		                                              : DRE_EUNAVAIL;
	}
	*msgp = &p->r.base;
	return DRE_OK;
}

dre_err
dre_snapshot_fetch(ProtobufCMessage **msgp, dre_snapshot_client *c)
{
	if (c->cfg.reply == &dre__snapshot_response__descriptor)
		return fetch_paged(msgp, c);
	// Every other snapshot request is empty here (no tenant: all of
	// them), and an empty message packs to no bytes.
	Dre__RpcReply *rep = NULL;
	dre_err        err = call(c, NULL, 0, &rep);
	if (err != DRE_OK)
		return err;
	ProtobufCMessage *m = unpack(c, c->cfg.reply, rep, NULL);
	if (m == NULL)
		return DRE_ECODEC;
	*msgp = m;
	return DRE_OK;
}

void
dre_snapshot_free(ProtobufCMessage *m)
{
	if (m == NULL)
		return;
	if (m->descriptor == &dre__snapshot_response__descriptor)
		paged_free((paged *) m); // always assembled by fetch_paged
	else
		protobuf_c_message_free_unpacked(m, NULL);
}

void
dre_snapshot_positions(
    dre_partition_offset *po, size_t n, Dre__TopicOffset *const *v, size_t nv)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nv; k++)
			if (v[k]->partition == po[i].partition
			    && strcmp(v[k]->topic, po[i].topic) == 0)
				po[i].offset = v[k]->offset;
}

dre_err
dre_snapshot_wipe(dre_batch *b, dre_store *st, int cf, const char *prefixes)
{
	for (const char *p = prefixes; *p != '\0'; p++) {
		dre_store_iter *it = NULL;
		dre_err         err = dre_store_iter_open(&it, st, cf, p, 1);
		if (err != DRE_OK)
			return err;
		const char *k;
		size_t      kl;
		while (dre_store_iter_next(it, &k, &kl, NULL, NULL))
			dre_batch_delete(b, st, cf, k, kl);
		dre_store_iter_close(it);
	}
	return DRE_OK;
}
