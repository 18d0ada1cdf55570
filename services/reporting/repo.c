// reporting/repo.c -- the reporting store and its outbox.
#include <string.h>

#include "reporting.h"

#include "dre/outbox.h"

static const char *const rep_cfs[] = { "aggregates", "outbox", "applier" };

dre_err
rep_open(rep_svc *s, const char *path, const dre_kvlist *kafka)
{
	dre_store_cfg cfg = { .path = path, .cfs = rep_cfs, .ncfs = REP_NCFS };
	dre_err       err = dre_store_open(&s->st, &cfg);
	if (err != DRE_OK)
		return err;
	pthread_mutex_init(&s->cli_mu, NULL);
	if ((err = dre_outbox_open(&s->ob, s->st, REP_CF_OUTBOX, kafka))
	    != DRE_OK) {
		dre_store_close(s->st);
		pthread_mutex_destroy(&s->cli_mu);
		return err;
	}
	return DRE_OK;
}

void
rep_close(rep_svc *s)
{
	dre_outbox_close(s->ob);
	dre_rpc_client_close(s->budget);
	dre_rpc_client_close(s->catalog);
	dre_store_close(s->st);
	pthread_mutex_destroy(&s->cli_mu);
}
