// coupon/supc.h -- single-use promotion codes of the POS-platform bridge
// (services/coupon/supc.c, PRODUCT-DECISIONS §10). Each takes the
// promotion id as the parameter "id".
#ifndef CP_SUPC_H
#define CP_SUPC_H

#include "dre/rpc.h"

// cp_h_supc_list: the promotion's single-use codes with their status.
void cp_h_supc_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// cp_h_supc_create: {codes[] | count} new codes of the promotion's
// INDIVIDUAL coupon type.
void cp_h_supc_create(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// cp_h_supc_redeem: marks codes redeemed by an external system, each once.
void cp_h_supc_redeem(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
