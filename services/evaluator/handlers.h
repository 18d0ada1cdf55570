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
// ev_last_counter reads the last counter of a transaction (key from
// ev_txn_key; 0 when it was never evaluated).
dre_err ev_last_counter(
    ev_svc *s, const char *key, size_t klen, int64_t *last);
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
