// rpc.h -- nng request/reply with the protobuf envelope of proto/rpc.proto.
//
// A service opens one REP socket with a route table of same-signature
// handlers; several worker contexts serve calls concurrently. A client opens
// a REQ socket (the gateway one per callee) and calls synchronously or
// asynchronously (callback on an nng thread, no thread per call). REQ
// re-sends are disabled: a call is delivered at most once, and a timed-out
// call reports DRE_ETIMEOUT.
//
// Internal authentication: every request carries a proof that its sender
// holds the deployment's internal key (dre_rpc_key_set). The client
// prepends DRE_RPC_PROOF_LEN bytes to the packed RpcRequest:
//
//   "DRE\1" | sent_ms (int64, big-endian, epoch millis) | client id (8 bytes,
//   random per client) | counter (uint64 BE, 1, 2, ... per client) |
//   HMAC-SHA256(key, every byte before the mac and every byte after it)
//
// so the MAC covers the whole envelope (method, tenant, principal, roles,
// params, body) and the header. The server answers 401 UNAUTHORIZED, before
// decoding anything, when the proof is missing or its MAC is wrong, when
// sent_ms is more than DRE_RPC_PROOF_TTL_MS away from its clock, and when a
// (client id, counter) pair was seen already (a replay).
#ifndef DRE_RPC_H
#define DRE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/buf.h"
#include "dre/err.h"
#include "rpc.pb-c.h"

// One call as the handler sees it. Everything is borrowed for the duration
// of the handler.
typedef struct {
	const char            *method;
	const char            *tenant; // never NULL ("" when absent)
	const char            *principal; // never NULL
	uint32_t               roles; // DRE_ROLE() bits
	int64_t                deadline_ms; // epoch millis; 0 = none
	const uint8_t         *body;
	size_t                 body_len;
	const Dre__RpcRequest *req;
	bool on_worker; // false: an inline handler on an nng thread
	// The server's receiving slot (dre_rpc_reply_later); NULL for a call
	// made in-process.
	struct rpc_slot *slot;
} dre_rpc_call;

// dre_rpc_param returns the value of a path/query parameter or NULL.
const char *dre_rpc_param(const dre_rpc_call *call, const char *key);

#define DRE_RPC_MAX_DETAILS 16
#define DRE_RPC_MAX_HEADERS 4

// The reply a handler fills. status defaults to 200 and body to empty.
typedef struct {
	int         status;
	const char *content_type; // static string; NULL = protobuf / none
	dre_buf     body;
	const char *error_code; // static string
	char       *error_message; // owned
	char       *error_target; // owned
	size_t      ndetails;
	struct {
		const char *code;
		char       *message; // owned
		char       *target; // owned
	} details[DRE_RPC_MAX_DETAILS];
	size_t nheaders;
	struct {
		const char *key; // static
		char       *value; // owned
	} headers[DRE_RPC_MAX_HEADERS];
	// An inline handler that finds it must block after all (a call to
	// another service) sets defer and returns with nothing else set: the
	// call is queued for a worker thread, which runs the handler again.
	bool defer;
} dre_rpc_reply;

// dre_rpc_reply_error sets status, code, target (may be NULL) and message.
void dre_rpc_reply_error(dre_rpc_reply *r, int status, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
// dre_rpc_reply_detail adds one details[] entry (ignored past the maximum).
void dre_rpc_reply_detail(dre_rpc_reply *r, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dre_rpc_reply_header(
    dre_rpc_reply *r, const char *key, const char *value);
// dre_rpc_reply_clear frees what a reply holds and zeroes it (for a
// handler run in-process, e.g. an import job's row).
void dre_rpc_reply_clear(dre_rpc_reply *r);
// dre_rpc_reply_json marks the body as a JSON document for the client.
void dre_rpc_reply_json(dre_rpc_reply *r);

typedef void (*dre_rpc_fn)(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

// Route flags.
#define DRE_RPC_INLINE                                                        \
	1 // handler never blocks: run it on the nng thread
	  // that received the call (saves a thread hand-off)

typedef struct {
	const char *method;
	dre_rpc_fn  fn;
	int         flags; // DRE_RPC_INLINE or 0 (may block: a worker runs it)
} dre_rpc_route;

#define DRE_RPC_KEY_LEN      32
#define DRE_RPC_PROOF_LEN    60
#define DRE_RPC_PROOF_TTL_MS 30000

// dre_rpc_key_set installs the deployment's internal key (DRE_RPC_KEY_LEN
// bytes) for every client and server of the process; dre_svc_init calls it
// with the key of the internal.key / internal.key_file settings. Until a key
// is set, opening a server or a client fails with DRE_ECONFIG.
dre_err dre_rpc_key_set(const uint8_t *key, size_t len);
// dre_rpc_key_parse reads 64 hex digits (surrounding white space ignored)
// into key[DRE_RPC_KEY_LEN]; DRE_EINVAL on anything else.
dre_err dre_rpc_key_parse(const char *text, uint8_t *key);
// dre_rpc_seal writes the proof of the packed request msg[0..len) into
// proof[DRE_RPC_PROOF_LEN] as sent at sent_ms by (client_id, counter).
// DRE_ECONFIG without a key. (Clients call it; exposed for tests and tools.)
dre_err dre_rpc_seal(uint8_t *proof, const uint8_t *msg, size_t len,
    int64_t sent_ms, uint64_t client_id, uint64_t counter);

typedef struct dre_rpc_server dre_rpc_server;

// A call a handler took over to answer later, from any thread.
typedef struct dre_rpc_pending dre_rpc_pending;

// dre_rpc_reply_later takes the call over: the handler returns without an
// answer (whatever it put in rep is discarded) and the call's receiving
// context stays with it until dre_rpc_answer, so the thread that ran the
// handler is free at once. NULL when the call cannot wait (made
// in-process, or the server has no room for pending calls: see
// dre_rpc_server_open_pending): the handler then answers in rep as usual.
// Everything the call borrows (body, params, strings) is valid only until
// the handler returns: copy what the answer needs.
dre_rpc_pending *dre_rpc_reply_later(const dre_rpc_call *call);
// dre_rpc_answer sends rep (then cleared, as a handler's reply is) as the
// answer of p and frees p; the context receives the next call. From any
// thread, exactly once per handle, also after dre_rpc_server_close (the
// answer is dropped then). It does not block.
void dre_rpc_answer(dre_rpc_pending *p, dre_rpc_reply *rep);
// dre_rpc_answer_after is dre_rpc_answer ms milliseconds from now, on a
// timer of nng's: no thread waits meanwhile.
void dre_rpc_answer_after(dre_rpc_pending *p, dre_rpc_reply *rep, int ms);

// dre_rpc_server_open listens on url and serves routes (terminated by a
// {NULL, NULL} entry; borrowed for the server's lifetime). Up to 2*workers
// calls are received concurrently; DRE_RPC_INLINE routes run at once on the
// receiving nng thread, the others are queued to `workers` threads so a
// handler that blocks (fsync, a long scan) never stalls nng. An unknown
// method answers 404 NOT_FOUND; a call without a valid proof (above) 401.
dre_err dre_rpc_server_open(dre_rpc_server **sp, const char *url,
    const dre_rpc_route *routes, void *svc, int workers);
// dre_rpc_server_open_pending is dre_rpc_server_open with room for
// pending_max calls taken over by dre_rpc_reply_later on top: each holds a
// receiving context until it is answered, so there are 2*workers +
// pending_max of them, and up to pending_max calls wait at once without a
// thread (beyond that dre_rpc_reply_later returns NULL).
dre_err dre_rpc_server_open_pending(dre_rpc_server **sp, const char *url,
    const dre_rpc_route *routes, void *svc, int workers, int pending_max);
// dre_rpc_server_set_drain_ms changes how long dre_rpc_server_close waits
// for the pending calls' answers (DRE_RPC_DRAIN_MS by default).
void dre_rpc_server_set_drain_ms(dre_rpc_server *s, int ms);
// dre_rpc_server_close stops receiving, waits for handlers in progress and
// for the pending calls to be answered (up to DRE_RPC_DRAIN_MS or the
// drain time set; the answers
// of those left are dropped: dre_rpc_answer still frees them) and closes
// the socket. NULL is a no-op.
void dre_rpc_server_close(dre_rpc_server *s);

#define DRE_RPC_DRAIN_MS 10000

typedef struct dre_rpc_client dre_rpc_client;

// dre_rpc_client_open dials url (non-blocking: connects in the background
// and reconnects). Caller closes with dre_rpc_client_close().
dre_err dre_rpc_client_open(dre_rpc_client **cp, const char *url);
void    dre_rpc_client_close(dre_rpc_client *c);
// dre_rpc_client_set_recv_max raises (or lowers) the largest reply c
// accepts, 64 MiB by default: for a trusted owner's full snapshot, which
// grows with the data (1,000,000 articles are some 300 MB).
void dre_rpc_client_set_recv_max(dre_rpc_client *c, size_t bytes);

// dre_rpc_client_coalesce lets c coalesce the calls made with
// dre_rpc_call_coalesced: while `limit` messages of theirs are in flight,
// more calls wait, and when one of those replies the waiting calls leave
// together, up to 64 in one rpc.Batch message (RpcRequest.batch) under one
// proof. A lone call is never held back. The server runs each call as it
// would alone and answers them in one message; a call whose handler would
// wait (dre_rpc_reply_later, a deferral) or is not inline is answered
// "alone" at once and sent again by itself, outside the limit. Every
// coalesced message is an rpc.Batch, one call too, so none waits at the
// server and holds back the calls queued behind it. A server that answers
// rpc.Batch 404 (one from before it) turns it off. Call before c's first
// call; limit 0 (the default) sends every call at once in its own
// message.
void dre_rpc_client_coalesce(dre_rpc_client *c, int limit);

// dre_rpc_batch_split finds, without copying, the status and the answers
// (RpcReply.batch) of a packed RpcReply msg[0..len): items[0..max) point
// into msg. Returns how many answers there are (those past max are
// counted, not stored), or -1 when msg is not a well-formed reply with a
// status. (The coalescing client reads its batch replies with it; exposed
// for the fuzz target.)
long dre_rpc_batch_split(const uint8_t *msg, size_t len, int32_t *status,
    ProtobufCBinaryData *items, size_t max);

// dre_rpc_call_sync sends req and waits up to timeout_ms for the reply. On
// success *repp is the reply; caller frees with dre_rpc_reply_msg_free().
// DRE_ETIMEOUT when no reply came in time, DRE_EUNAVAIL when nothing is
// connected, DRE_ECODEC on an undecodable reply. The call runs in the
// calling thread (no hand-off to an nng task thread); c must not be closed
// while a call waits. (Named _sync because
// dre_rpc_call is the handler's view of a call, above: C has one namespace
// for both.)
dre_err dre_rpc_call_sync(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, Dre__RpcReply **repp);

// A call begun and not yet ended.
typedef struct rpc_op dre_rpc_op;

// dre_rpc_call_begin sends req in the calling thread, as dre_rpc_call_sync
// does, and returns without waiting for the reply; dre_rpc_call_end waits
// for it, with dre_rpc_call_sync's results, and ends the call. Calls begun
// one after the other wait for their replies side by side: together they
// take as long as the slowest, not the sum. Every call begun (DRE_OK) must
// be ended; after an error there is nothing to end.
dre_err dre_rpc_call_begin(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_op **opp);
dre_err dre_rpc_call_end(dre_rpc_op *op, Dre__RpcReply **repp);

// Completion of an asynchronous call: rep is NULL unless err is DRE_OK;
// the callback owns rep and frees it with dre_rpc_reply_msg_free().
typedef void (*dre_rpc_done)(void *arg, dre_err err, Dre__RpcReply *rep);

// dre_rpc_call_async sends req and returns at once; done runs exactly once,
// on an nng thread, with the reply or the error (DRE_ETIMEOUT after
// timeout_ms). req is copied; the caller may free it on return. When it
// returns an error (DRE_EUNAVAIL: no connection for a while; DRE_ENOMEM;
// DRE_ECLOSED) done is not called.
dre_err dre_rpc_call_async(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_done done, void *arg);

// dre_rpc_call_coalesced is dre_rpc_call_async for a call that may wait
// for c's coalescing limit (dre_rpc_client_coalesce) and leave with others.
// For calls an inline handler usually answers at once: one that waits at
// the server costs a second message (it is sent again alone). done may
// also run on the thread of another call of c, or of
// dre_rpc_client_close.
dre_err dre_rpc_call_coalesced(dre_rpc_client *c, const Dre__RpcRequest *req,
    int timeout_ms, dre_rpc_done done, void *arg);

void dre_rpc_reply_msg_free(Dre__RpcReply *rep);

#endif
