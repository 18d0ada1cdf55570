// backend.c -- the services behind the gateway: their table, and an rpc
// client per service (per shard of a sharded one).
#define _GNU_SOURCE // sched_getaffinity, CPU_COUNT
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "dre/log.h"
#include "gw.h"

const gw_backend_def gw_backends[GW_NBACKENDS] = {
#define GW_BACKEND_DEF(id, name, key, url, flags, help)                       \
	[GW_##id] = { name, key, flags },
	GW_BACKEND_MAP(GW_BACKEND_DEF)
#undef GW_BACKEND_DEF
};

// open_shards dials one client per comma-separated URL of urls.
static dre_err
open_shards(gw_backend *b, const char *key, const char *urls)
{
	char   *copy = strdup(urls), *save = NULL;
	dre_err err = DRE_OK;

	if (copy == NULL)
		return DRE_ENOMEM;
	for (char *u = strtok_r(copy, ", ", &save); u != NULL;
	     u = strtok_r(NULL, ", ", &save)) {
		if (b->n >= GW_MAX_SHARDS) {
			dre_error(
			    "%s: more than %d shards", key, GW_MAX_SHARDS);
			err = DRE_ECONFIG;
			break;
		}
		if ((err = dre_rpc_client_open(&b->clients[b->n], u))
		    != DRE_OK)
			break;
		b->n++;
	}
	free(copy);
	if (err == DRE_OK && b->n == 0) {
		dre_error("%s is empty", key);
		err = DRE_ECONFIG;
	}
	return err;
}

dre_err
gw_backends_open(gw *g)
{
	dre_err err = DRE_OK;

	for (int i = 0; i < GW_NBACKENDS && err == DRE_OK; i++) {
		const gw_backend_def *d = &gw_backends[i];
		gw_backend           *b = &g->backends[i];
		const char           *url = g->cfg->urls[i];

		if ((d->flags & GW_SHARDED) != 0)
			err = open_shards(b, d->key, url);
		else if ((err = dre_rpc_client_open(&b->clients[0], url))
		    == DRE_OK)
			b->n = 1;
	}
	int limit = (int) g->cfg->rpc_coalesce;
	if (limit == 0) {
		// As many messages in flight as evaluates could run at once
		// on this host's share of CPUs (1 when pinned to one core).
		cpu_set_t set;
		limit = sched_getaffinity(0, sizeof(set), &set) == 0
		    ? CPU_COUNT(&set)
		    : 1;
	}
	for (size_t k = 0; err == DRE_OK && k < g->backends[GW_EVALUATOR].n;
	     k++)
		dre_rpc_client_coalesce(g->backends[GW_EVALUATOR].clients[k],
		    limit > 0 ? limit : 0);
	return err;
}

void
gw_backends_close(gw *g)
{
	for (int i = 0; i < GW_NBACKENDS; i++) {
		gw_backend *b = &g->backends[i];
		for (size_t k = 0; k < b->n; k++)
			dre_rpc_client_close(b->clients[k]);
		b->n = 0;
	}
}
