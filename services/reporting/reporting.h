// reporting/reporting.h -- the reporting service's state: aggregates of
// confirmed sales per tenant, promotion, day, channel and POS group (and per
// budget and day), built exactly once from dre.transactions.confirmed.
#ifndef REP_REPORTING_H
#define REP_REPORTING_H

#include <pthread.h>
#include <stdint.h>

#include "dre/bus.h"
#include "dre/config.h"
#include "dre/consumer.h"
#include "dre/outbox.h"
#include "dre/rpc.h"
#include "dre/store.h"

enum {
	REP_CF_AGG = 1, // aggregates (keys in apply.h)
	REP_CF_OUTBOX, // side-effect results waiting for Kafka
	REP_CF_APPLIER, // the applier's keys
	REP_NCFS = REP_CF_APPLIER,
};

typedef struct {
	dre_store      *st;
	dre_outbox     *ob;
	dre_applier    *ap;
	const char     *budget_url;
	const char     *catalog_url;
	pthread_mutex_t cli_mu; // the clients below, opened on first use
	dre_rpc_client *budget;
	dre_rpc_client *catalog;
	int             rpc_timeout_ms;
} rep_svc;

dre_err rep_open(rep_svc *s, const char *path, const dre_kvlist *kafka);
void    rep_close(rep_svc *s);

#endif
