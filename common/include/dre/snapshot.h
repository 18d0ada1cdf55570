// snapshot.h -- the follower's snapshot client: asks the service that owns
// some data (catalog, budget) for a full copy over nng.
//
// A follower takes one when it has no position in the owner's change feed
// (see dre_recover_fn in dre/consumer.h): the answer carries the state and
// the feed's offsets it is current to (a repeated dre.TopicOffset named
// `offsets`, as every snapshot response of proto/ has).
#ifndef DRE_SNAPSHOT_H
#define DRE_SNAPSHOT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "dre/bus.h"
#include "dre/err.h"
#include "dre/store.h"
#include "master.pb-c.h"

typedef struct dre_snapshot_client dre_snapshot_client;

typedef struct {
	const char *url; // the owner's nng address
	const char *method; // e.g. "catalog.Snapshot"
	const char *principal; // who asks (the owner logs it)
	const ProtobufCMessageDescriptor *reply; // the answer's message type
	int    timeout_ms; // a stop waits for a call in progress
	size_t max_bytes; // largest answer accepted (0: the rpc default)
	// A dre.SnapshotResponse comes in pages of about page_bytes of
	// documents (0: one answer), each a call of timeout_ms.
	size_t page_bytes;
} dre_snapshot_cfg;

// dre_snapshot_catalog is the cfg of the catalog's snapshot (every
// tenant's master data, a Dre__SnapshotResponse) at url, asked by
// principal: what every follower of the dre.master.* feed takes.
dre_snapshot_cfg dre_snapshot_catalog(const char *url, const char *principal);

// dre_snapshot_client_open copies cfg (its strings are borrowed for the
// client's lifetime; the connection is dialled at the first fetch).
// Caller closes with dre_snapshot_client_close().
dre_err dre_snapshot_client_open(
    dre_snapshot_client **cp, const dre_snapshot_cfg *cfg);
// dre_snapshot_client_close closes the connection. NULL is a no-op.
void dre_snapshot_client_close(dre_snapshot_client *c);

// dre_snapshot_fetch asks for the whole snapshot (an empty request: every
// tenant). On success *msgp is the answer, of cfg->reply's type; caller
// frees with dre_snapshot_free(). DRE_EUNAVAIL when the owner cannot be
// reached or refuses (logged here), DRE_ECODEC on an undecodable answer.
dre_err dre_snapshot_fetch(ProtobufCMessage **msgp, dre_snapshot_client *c);
// A dre.SnapshotResponse (the catalog's) is asked page by page
// (cfg->page_bytes) and answered as one message (every page of the same
// state: the catalog reads them all from one consistent snapshot).
// dre_snapshot_free frees an answer of dre_snapshot_fetch (only: one of
// type dre.SnapshotResponse is assembled from pages). NULL is a no-op.
void dre_snapshot_free(ProtobufCMessage *m);

// dre_snapshot_page_fn takes one page of a dre.SnapshotResponse, valid
// until it returns (borrowed: the next page reuses its memory). first: the
// page with the snapshot's offsets, cluster id and version (every page has
// its version); last: no page follows. Anything but DRE_OK stops the fetch
// with that error.
typedef dre_err (*dre_snapshot_page_fn)(
    void *arg, const Dre__SnapshotResponse *page, bool first, bool last);
// dre_snapshot_fetch_pages asks for a dre.SnapshotResponse page by page
// (cfg->page_bytes) and hands each to fn as it arrives, so the caller
// holds one page at a time, not the whole snapshot. Errors as
// dre_snapshot_fetch (DRE_EUNAVAIL also for a page of another state), or
// fn's.
dre_err dre_snapshot_fetch_pages(
    dre_snapshot_client *c, dre_snapshot_page_fn fn, void *arg);

// dre_snapshot_positions sets po[i].offset for every partition of po that
// the snapshot's offsets (v[0..nv)) name; the others are left as they are.
void dre_snapshot_positions(
    dre_partition_offset *po, size_t n, Dre__TopicOffset *const *v, size_t nv);

// dre_snapshot_wipe deletes, in b, every key of cf that starts with one of
// the bytes of prefixes: the part of a copy a snapshot replaces.
dre_err dre_snapshot_wipe(
    dre_batch *b, dre_store *st, int cf, const char *prefixes);

#endif
