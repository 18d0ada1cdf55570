// webhook/webhook.h -- the webhook service's state: subscriptions and
// deliveries in RocksDB, the schedule of due attempts, the key that seals
// subscription secrets, the delivery thread.
#ifndef WH_WEBHOOK_H
#define WH_WEBHOOK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/consumer.h"
#include "dre/json.h"
#include "dre/outbox.h"
#include "dre/seal.h"
#include "dre/store.h"

// Column families (0 is RocksDB's "default", unused).
enum {
	WH_CF_SUBS = 1, // tenant \0 id -> subscription (JSON, secret sealed)
	WH_CF_DELIVERIES, // tenant \0 id -> delivery record (JSON)
	WH_CF_DUE, // due ms (be64) tenant \0 sub \0 id -> "" (the schedule)
	WH_CF_OUTBOX, // SideEffectResults waiting for Kafka
	WH_CF_APPLIER, // the applier's offsets and eventIds
	WH_CF_SIDEFX, // tenant \0 txn \0 counter(be64) -> results so far
	              // (JSON)
	WH_CF_PROMOS, // the promotion follower's copy and offsets (promos.c)
	WH_CF_AUDIT, // audit records of subscription writes (dre/audit.h)
	WH_NCFS = WH_CF_AUDIT,
};

#define WH_KEY_MAX        256
#define WH_SECRET_KEY_LEN DRE_SEAL_KEY_LEN // dre/seal.h: the secrets at rest

typedef struct wh_deliverer   wh_deliverer;
typedef struct wh_tenant_subs wh_tenant_subs;

#define WH_CACHE_SLOTS 256 // hash slots of the subscriptions' copy

typedef struct {
	bool    allow_insecure; // http and private targets (dev/test only)
	int64_t timeout_ms; // per attempt
	int64_t max_in_flight; // attempts in flight, all subscriptions
	int64_t max_in_flight_per_sub;
	int64_t retention_ms; // DELIVERED records kept this long
	// The services whose SideEffectResults complete a sale's side
	// effects (SIDE_EFFECTS_COMPLETED), as the evaluator's
	// sidefx.services; borrowed.
	const char *const *sfx_services;
	size_t             nsfx;
} wh_opts;

typedef struct {
	dre_store    *st;
	dre_outbox   *ob;
	dre_applier  *ap;
	dre_applier  *promo_ap; // the promotion follower (promos.c)
	wh_deliverer *dl;
	wh_opts       o;
	unsigned char seal_key[WH_SECRET_KEY_LEN];
	// mu serialises every read-modify-write of a delivery record and of
	// its schedule entry (the delivery thread, repost, the applier).
	pthread_mutex_t mu;
	// sub_mu serialises every read-modify-write of a subscription (the
	// API's create, update, rotate, delete): without it an update that
	// read the subscription before a delete wrote it back after.
	pthread_mutex_t sub_mu;
	// The events are matched against a copy of each tenant's active
	// subscriptions (wh_subs_wanting), read from the store once and kept
	// while subs_gen stays what it was then: every write of a
	// subscription moves it (wh_subs_write), after the write.
	atomic_uint_fast64_t subs_gen;
	pthread_mutex_t      cache_mu;
	uint64_t             cache_gen; // subs_gen the copy was read at
	dre_arena           *cache_a; // the copy's memory
	wh_tenant_subs      *cache[WH_CACHE_SLOTS];
} wh;

// A subscription as stored.
typedef struct {
	const char        *id;
	const char        *url;
	const char *const *types; // "*" = every type
	size_t             ntypes;
	const char        *description;
	bool               active;
	const char        *sealed; // base64(nonce | ciphertext | tag)
	int64_t            max_attempts; // 1-20
	int64_t            initial_s; // >= 1
	int64_t            max_s; // >= initial_s
	int64_t            created_at, modified_at;
} wh_sub;

// wh_key writes tenant \0 id; 0 when it does not fit in cap.
size_t wh_key(char *out, size_t cap, const char *tenant, const char *id);

// Subscriptions. wh_sub_get: DRE_ENOTFOUND when absent. Strings live in a.
dre_err wh_sub_get(
    wh *s, dre_arena *a, const char *tenant, const char *id, wh_sub *out);
dre_err wh_sub_put(wh *s, dre_batch *b, const char *tenant, const wh_sub *u);
// wh_sub_parse reads a stored subscription document.
dre_err wh_sub_parse(wh_sub *u, dre_arena *a, const char *v, size_t vl);
// wh_sub_wants: u is active and subscribed to type.
bool wh_sub_wants(const wh_sub *u, const char *type);

// Delivery records. The record is a JSON object; a delivery is read into a
// parsed tree and written back whole.
typedef struct {
	const char     *id, *sub_id, *event_id, *event_type, *status;
	int64_t         attempts; // attempts of the current series
	int64_t         total_attempts; // every attempt ever made
	int64_t         series; // 1 + reposts
	int64_t         created_at, last_attempt_at, next_attempt_at;
	int64_t         last_status; // 0 = none
	const char     *last_error; // NULL = none
	const dre_json *payload; // the event's body
	const dre_json *log; // attemptLog array (may be NULL)
	const char     *extra_log; // one more attempt (JSON object) or NULL
} wh_delivery;

dre_err wh_delivery_get(
    wh *s, dre_arena *a, const char *tenant, const char *id, wh_delivery *out);
// wh_delivery_parse reads a stored record.
dre_err wh_delivery_parse(
    wh_delivery *d, dre_arena *a, const char *v, size_t vl);
// wh_delivery_put writes d (and, when old_due >= 0, moves its schedule
// entry from old_due to d->next_attempt_at; PENDING only) into b.
dre_err wh_delivery_put(wh *s, dre_batch *b, const char *tenant,
    const wh_delivery *d, int64_t old_due);
// wh_delivery_render writes the list view (detail adds payload and log).
void wh_delivery_render(dre_buf *out, const wh_delivery *d, bool detail);
// wh_due_key writes the schedule key of a delivery: due (be64) tenant \0
// sub_id \0 id. The subscription is in the key so that the delivery thread
// passes over the backlog of a subscription at its in-flight bound without
// reading a record.
size_t wh_due_key(char *out, size_t cap, int64_t due, const char *tenant,
    const char *sub_id, const char *id);

// wh_enqueue adds a PENDING delivery of the event body (a JSON object
// {id, type, timestamp, tenant, data}) to subscription sub_id into b, due
// at once. The delivery's id is derived from (sub_id, event_id), so an
// event enqueued twice is one delivery.
dre_err wh_enqueue(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *sub_id, const char *event_id, const char *type,
    const char *body, size_t blen, int64_t now);
// wh_subs_write writes b, a batch that writes or deletes subscriptions
// (synced when sync), and then makes the next match read them again.
dre_err wh_subs_write(wh *s, dre_batch *b, bool sync);
// wh_subs_wanting finds the active subscriptions of tenant that want type:
// their ids into *idsp (n of them, copied into a). DRE_ESTORE when the
// store cannot be read.
dre_err wh_subs_wanting(wh *s, dre_arena *a, const char *tenant,
    const char *type, const char ***idsp, size_t *np);
// wh_wanted sets *yes when some active subscription of tenant wants type.
// An error (the store could not be read) is the applier's to retry.
dre_err wh_wanted(
    wh *s, dre_arena *a, const char *tenant, const char *type, bool *yes);
// wh_fanout enqueues the event for every active subscription of tenant
// that wants type; *n counts them.
dre_err wh_fanout(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *event_id, const char *type, const char *body, size_t blen,
    int64_t now, size_t *n);
// wh_event_body writes {"id","type","timestamp","tenant","data": data}.
void wh_event_body(dre_buf *out, const char *event_id, const char *type,
    int64_t at, const char *tenant, const char *data, size_t dlen);

// wh_open / wh_close: store, seal key, outbox (service main and tests).
// key_file holds the sealing key; created (0600) when missing.
dre_err wh_open(
    wh *s, const char *path, const char *key_file, const dre_kvlist *kafka);
void wh_close(wh *s);

// ---- secrets (sign.c) -----------------------------------------------------

#define WH_SECRET_PREFIX "whsec_"
// wh_secret_new writes "whsec_" + base64 of 24 random bytes (out: 64 bytes).
dre_err wh_secret_new(char *out, size_t cap);
// wh_secret_valid: "whsec_" followed by base64 of 16 to 64 bytes.
bool wh_secret_valid(const char *secret);
// wh_secret_key decodes the key of a secret; returns its length (0 bad).
size_t wh_secret_key(unsigned char *key, size_t cap, const char *secret);
// wh_sign_std writes "v1,<base64 HMAC-SHA256(key, id.ts.body)>" (out: 64+).
void wh_sign_std(char *out, size_t cap, const unsigned char *key, size_t klen,
    const char *id, int64_t ts, const char *body, size_t blen);
// wh_sign_dre writes "sha256=<hex HMAC-SHA256(key, body)>" (out: 72+).
void wh_sign_dre(char *out, size_t cap, const unsigned char *key, size_t klen,
    const char *body, size_t blen);

// The SSRF guard is common/ (dre/netguard.h): dre_net_url_check,
// dre_net_addr_allowed.
#include "dre/netguard.h"

// ---- the promotion events (promos.c) -------------------------------------

// wh_promos_start follows the catalog's promotion feed (snapshot from
// catalog_url when it has no position) and raises PROMOTION_CREATED,
// _UPDATED, _ACTIVATED, _DEACTIVATED and _DELETED. wh_promos_stop joins it.
dre_err wh_promos_start(
    wh *s, const char *catalog_url, const dre_kvlist *kafka);
void wh_promos_stop(wh *s);
// wh_promo_apply is the follower's apply function (arg = wh *): one
// MasterDataChanged of dre.master.promotions into x's batch.
dre_err wh_promo_apply(void *arg, dre_apply_ctx *x, const dre_msg *m);

// ---- the delivery thread (deliver.c) --------------------------------------

dre_err wh_deliverer_start(wh *s);
void    wh_deliverer_stop(wh *s);
// wh_deliverer_kick wakes the thread: new deliveries are due.
void wh_deliverer_kick(wh *s);

#endif
