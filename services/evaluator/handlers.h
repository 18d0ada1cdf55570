// handlers.h -- the evaluator's nng methods (evaluate, simulate, heartbeat).
#ifndef DRE_EVALUATOR_HANDLERS_H
#define DRE_EVALUATOR_HANDLERS_H

#include "dre/rpc.h"
#include "evaluator.h"

// ev_routes is the route table for dre_rpc_server_open (svc = ev_svc *).
extern const dre_rpc_route ev_routes[];

// ev_handlers_init prepares the per-thread arenas and counter stripes.
dre_err ev_handlers_init(ev_svc *s);
void    ev_handlers_fini(ev_svc *s);

// ev_txn_key writes tenant \0 transactionId (the counter's key); 0 when it
// does not fit in cap.
size_t ev_txn_key(char *buf, size_t cap, const char *tenant, const char *txid);
// ev_counter_get gives the last counter of a transaction (key from
// ev_txn_key; 0 when it was never evaluated): remembered, else read from
// the store -- also once retention.iterations_ms has passed since, so that
// an expired transaction starts again as the store says. ev_counter_set
// remembers one just written, evaluated at epoch ms at. Both with the key's
// stripe (ev_stripe) held.
dre_err ev_counter_get(ev_svc *s, const char *key, size_t klen, int64_t *last);
void    ev_counter_set(
       ev_svc *s, const char *key, size_t klen, int64_t counter, int64_t at);
// ev_txn_record_time is the time of a record of EV_CF_TXN for retention
// (dre_store_ttl): a counter's last evaluation, an iteration's evaluatedAt;
// -1 (kept) for a counter written before counters carried their time.
int64_t ev_txn_record_time(
    const char *key, size_t klen, const char *val, size_t vlen);
// ev_confirm_record_time is the time of a record of EV_CF_CONFIRM: a
// confirm marker's confirmedAt, a side-effect job's enqueuedAt; -1 (kept)
// for a deadline (the sweeper deletes those).
int64_t ev_confirm_record_time(
    const char *key, size_t klen, const char *val, size_t vlen);
// ev_pb_first_varint reads a protobuf message's first field when it is
// field 1 as a varint (what protobuf-c writes first for a required int64
// field 1); -1 otherwise.
int64_t ev_pb_first_varint(const char *val, size_t vlen);
// ev_iter_key writes the iteration key: txn key \0 counter (be64).
size_t ev_iter_key(char *buf, size_t cap, const char *tenant, const char *txid,
    int64_t counter);
// ev_stripe is the lock serialising everything done to one transaction.
pthread_mutex_t *ev_stripe(ev_svc *s, const char *key, size_t klen);
// ev_worker_arena returns the calling rpc worker's arena, reset.
dre_arena *ev_worker_arena(ev_svc *s);
// ev_btp_connectivity is CONNECTED | DISCONNECTED | CIRCUIT_OPEN: the link
// to the event backbone as the confirm relay and the feeds see it.
const char *ev_btp_connectivity(ev_svc *s);

#endif
