// evaluator/personal.c -- asks dre-loyalty which personal promotions the
// basket's customer holds (loyalty.Assignments.active, JSON), within
// loyalty.timeout_ms: a slow or absent loyalty service never holds up a
// sale, the basket is priced without them and warned LOYALTY_UNAVAILABLE.
#include "personal.h"

#include <string.h>

#include "dre/clock.h"
#include "dre/json.h"
#include "dre/log.h"

const char *
ev_personal_customer(const Dre__EvaluateRequest *req)
{
	const Dre__CustomerInfo *c = req->customer;
	if (c == NULL)
		return NULL;
	if (c->customer_id != NULL && c->customer_id[0] != '\0')
		return c->customer_id;
	if (c->loyalty_card_no != NULL && c->loyalty_card_no[0] != '\0')
		return c->loyalty_card_no;
	return NULL;
}

dre_err
ev_personal_start(ev_svc *s, const char *tenant, int64_t deadline_ms,
    const char *customer, dre_rpc_op **opp, dre_rpc_done done, void *arg)
{
	int64_t now = dre_now_ms();
	int64_t wait = s->cfg.loyalty_timeout_ms;
	if (deadline_ms > 0 && (deadline_ms - now) / 2 < wait)
		wait = (deadline_ms - now) / 2;
	if (s->loyalty_cli == NULL || wait < 1)
		return DRE_EUNAVAIL;
	Dre__Param  p = DRE__PARAM__INIT;
	Dre__Param *pv[1] = { &p };
	p.key = "customerId";
	p.value = (char *) customer;
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	rq.method = "loyalty.Assignments.active";
	rq.tenant = (char *) tenant;
	rq.principal = "evaluator";
	rq.has_deadline_unix_ms = true;
	rq.deadline_unix_ms = now + wait;
	rq.params = pv;
	rq.n_params = 1;
	dre_err err = done != NULL
	    ? dre_rpc_call_async(s->loyalty_cli, &rq, (int) wait, done, arg)
	    : dre_rpc_call_begin(s->loyalty_cli, &rq, (int) wait, opp);
	if (err != DRE_OK)
		dre_warn("loyalty.Assignments.active %s: %s", tenant,
		    dre_strerror(err));
	return err;
}

void
ev_personal_read(Dre__RpcReply *rr, dre_err err, const char *tenant,
    Dre__EvaluateRequest *req, dre_arena *a, eng_eval_ctx *ctx)
{
	ctx->loyalty_unavailable = true;
	if (rr == NULL) {
		if (err != DRE_OK)
			dre_warn("loyalty.Assignments.active %s: %s", tenant,
			    dre_strerror(err));
		return;
	}
	dre_json *doc = NULL;
	if (rr->status == 200 && rr->has_body) {
		char *text = dre_arena_strndup(
		    a, (const char *) rr->body.data, rr->body.len);
		if (text != NULL
		    && dre_json_parse(&doc, a, text, rr->body.len, 8, NULL)
		        != DRE_OK)
			doc = NULL;
	} else
		dre_warn("loyalty.Assignments.active %s: %d %s", tenant,
		    rr->status, rr->error_message ? rr->error_message : "");
	dre_rpc_reply_msg_free(rr);
	const dre_json *level = dre_json_get(doc, "level");
	if (dre_json_is(level, DRE_JSON_STRING) && level->len > 0
	    && req->customer != NULL
	    && (req->customer->loyalty_tier == NULL
	        || req->customer->loyalty_tier[0] == '\0'))
		req->customer->loyalty_tier = (char *) level->str;
	const dre_json *ids = dre_json_get(doc, "promotionIds");
	if (!dre_json_is(ids, DRE_JSON_ARRAY))
		return;
	const char **v = dre_arena_get(a, (ids->len + 1) * sizeof(char *));
	if (v == NULL)
		return;
	size_t n = 0;
	for (const dre_json *x = ids->child; x != NULL; x = x->next)
		if (dre_json_is(x, DRE_JSON_STRING))
			v[n++] = x->str;
	ctx->assigned = v;
	ctx->nassigned = n;
	ctx->loyalty_unavailable = false;
}
