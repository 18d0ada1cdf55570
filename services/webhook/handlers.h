// webhook/handlers.h -- the webhook service's nng API.
#ifndef WH_HANDLERS_H
#define WH_HANDLERS_H

#include "dre/rpc.h"
#include "webhook.h"

// wh_routes is the route table for dre_rpc_server_open; svc is a wh *.
// webhook.WebhookSubscriptions.{create,list,get,update,delete,
// rotateSecret,test,repost} and webhook.WebhookDeliveries.{list,get,
// repost,delete}: JSON in and out, params id, patch, $top, $skip and the
// delivery filters subscriptionId, status, eventType.
extern const dre_rpc_route wh_routes[];

#endif
