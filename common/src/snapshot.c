// snapshot.c -- asks the owner of some data for a full copy over nng.
#include <stdlib.h>
#include <string.h>

#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/snapshot.h"

// The catalog's answer holds all master data: it may take a while, and
// it is large -- some 300 MB at 1,000,000 articles (about 300 B each; the
// rpc default of 64 MiB holds some 200,000).
#define CATALOG_TIMEOUT_MS 15000
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
		.max_bytes = CATALOG_MAX_BYTES };
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

dre_err
dre_snapshot_fetch(ProtobufCMessage **msgp, dre_snapshot_client *c)
{
	if (c->cli == NULL) {
		if (dre_rpc_client_open(&c->cli, c->cfg.url) != DRE_OK)
			return DRE_EUNAVAIL;
		if (c->cfg.max_bytes > 0)
			dre_rpc_client_set_recv_max(c->cli, c->cfg.max_bytes);
	}
	// Every snapshot request is empty here (no tenant: all of them), and
	// an empty message packs to no bytes.
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	rq.method = (char *) c->cfg.method;
	rq.has_body = true;
	rq.body.data = (uint8_t *) "";
	rq.body.len = 0;
	rq.tenant = "";
	rq.principal = (char *) c->cfg.principal;
	Dre__RpcReply *rep = NULL;
	dre_err err = dre_rpc_call_sync(c->cli, &rq, c->cfg.timeout_ms, &rep);
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
	ProtobufCMessage *m = protobuf_c_message_unpack(c->cfg.reply, NULL,
	    rep->has_body ? rep->body.len : 0, rep->body.data);
	dre_rpc_reply_msg_free(rep);
	if (m == NULL) {
		dre_warn("%s from %s: undecodable answer", c->cfg.method,
		    c->cfg.url);
		return DRE_ECODEC;
	}
	*msgp = m;
	return DRE_OK;
}

void
dre_snapshot_free(ProtobufCMessage *m)
{
	if (m != NULL)
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
