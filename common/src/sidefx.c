// sidefx.c -- SideEffectResults of the consumers of confirmed sales.
#include <stdio.h>

#include "dre/buf.h"
#include "dre/metrics.h"
#include "dre/sidefx.h"
#include "dre/topics.h"
#include "dre/uuid.h"

void
dre_sidefx_init(dre_sfx_result *res, const char *service,
    const dre_tx_confirmed *t, const dre_apply_ctx *x)
{
	char seed[128];
	int  n = snprintf(
	     seed, sizeof(seed), "sidefx|%s|%s", service, t->event_id);
	*res = (dre_sfx_result) { 0 };
	dre_uuid_derive(res->event_id, seed,
	    n < 0                           ? 0
	        : (size_t) n < sizeof(seed) ? (size_t) n
	                                    : sizeof(seed) - 1);
	res->tenant = t->tenant;
	res->occurred_at = x->now_ms;
	res->schema_version = 1;
	res->transaction_id = t->transaction_id;
	res->transaction_counter = t->transaction_counter;
	res->source_event_id = t->event_id;
	res->service = service;
	res->status = "SUCCESS";
	res->attempts = x->attempts;
}

// sidefx_count counts what the service did for the sale once the
// applier's batch is written (dre_metric_add_pending).
static void
sidefx_count(const dre_sfx_result *res)
{
	char lab[64];

	snprintf(lab, sizeof(lab), "status=\"%s\"",
	    res->status != NULL ? res->status : "");
	dre_metric_add_pending(dre_metric_counter("dre_sidefx_results_total",
	                           "confirmed sales handled, by the status "
	                           "of the side-effect result",
	                           lab),
	    1);
	if (res->coupons_redeemed > 0)
		dre_metric_add_pending(
		    dre_metric_counter("dre_coupon_redemptions_total",
		        "coupon codes redeemed by confirmed sales", NULL),
		    res->coupons_redeemed);
	if (res->nbudgets > 0)
		dre_metric_add_pending(
		    dre_metric_counter("dre_budget_consumptions_total",
		        "budget consumptions by confirmed sales", NULL),
		    (int64_t) res->nbudgets);
	if (res->loyalty_points > 0)
		dre_metric_add_pending(
		    dre_metric_counter("dre_loyalty_points_awarded_total",
		        "loyalty points credited for confirmed sales", NULL),
		    res->loyalty_points);
}

dre_err
dre_sidefx_put(dre_outbox *ob, dre_batch *b, const dre_sfx_result *res)
{
	char key[320];
	int  kl = snprintf(
	     key, sizeof(key), "%s/%s", res->tenant, res->transaction_id);
	if (kl < 0 || (size_t) kl >= sizeof(key))
		return DRE_EINVAL;
	dre_buf ev = { 0 };
	dre_err err = dre_avro_encode_sfx_result(&ev, res);
	if (err == DRE_OK) {
		dre_outbox_put(ob, b, DRE_TOPIC_SIDEFX, key, (size_t) kl,
		    ev.data, ev.len);
		sidefx_count(res);
	}
	dre_buf_free(&ev);
	return err;
}
