// routes.c -- the gateway's route table and its handlers: POS evaluate /
// simulate / confirm / heartbeat on the evaluator shards, and one
// forwarding handler for every other route (master data, budgets,
// reporting, coupons) to the backend its row names.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/audit.h"
#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/jsonw.h"
#include "dre/hash.h"
#include "dre/importjob.h"
#include "dre/json.h"
#include "dre/log.h"
#include "dre/uuid.h"
#include "dre/version.h"
#include "gw.h"

#define ROLES_POS   (DRE_ROLE(ADMIN) | DRE_ROLE(POS_READER))
#define ROLES_ADMIN DRE_ROLE(ADMIN)
#define ROLES_READ                                                            \
	(DRE_ROLE(ADMIN) | DRE_ROLE(PROMOTION_MANAGER)                        \
	    | DRE_ROLE(PROMOTION_APPROVER) | DRE_ROLE(PUBLIC_API_READER)      \
	    | DRE_ROLE(PUBLIC_API_WRITER))
#define ROLES_WRITE                                                           \
	(DRE_ROLE(ADMIN) | DRE_ROLE(PROMOTION_MANAGER)                        \
	    | DRE_ROLE(PUBLIC_API_WRITER))
#define ROLES_BUDGET_READ                                                     \
	(DRE_ROLE(ADMIN) | DRE_ROLE(BUDGET_MANAGER)                           \
	    | DRE_ROLE(PROMOTION_MANAGER) | DRE_ROLE(PUBLIC_API_READER)       \
	    | DRE_ROLE(PUBLIC_API_WRITER))
#define ROLES_BUDGET_WRITE                                                    \
	(DRE_ROLE(ADMIN) | DRE_ROLE(BUDGET_MANAGER)                           \
	    | DRE_ROLE(PUBLIC_API_WRITER))
// Loyalty: tills and web shops (POS credentials) and the integrations
// that write members (public API writers) use /api/v3.
#define ROLES_LOYALTY                                                         \
	(DRE_ROLE(ADMIN) | DRE_ROLE(POS_READER) | DRE_ROLE(PROMOTION_MANAGER) \
	    | DRE_ROLE(PUBLIC_API_WRITER))
// Approval (issue 13.5): approvers decide, writers submit.
#define ROLES_APPROVE (DRE_ROLE(ADMIN) | DRE_ROLE(PROMOTION_APPROVER))
// The audit log is read by admins and auditors only.
#define ROLES_AUDIT (DRE_ROLE(ADMIN) | DRE_ROLE(AUDITOR))
// Any signed-in caller (GET /api/v1/Me).
#define DRE_ROLE_OR(name, text) | DRE_ROLE(name)
#define ROLES_ANY               (0u DRE_ROLE_MAP(DRE_ROLE_OR))
// S/4HANA DRFOUT (issue 17.3): the ERP's technical user, and admins.
#define ROLES_INGEST (DRE_ROLE(ADMIN) | DRE_ROLE(MASTER_DATA_INGESTER))
#define ROLES_REPORTING                                                       \
	(DRE_ROLE(ADMIN) | DRE_ROLE(PROMOTION_MANAGER)                        \
	    | DRE_ROLE(BUDGET_MANAGER))

#define BRIDGE (GW_AUTH_QUERY_KEY | GW_AUTH_PLATFORM)

static void gw_evaluate(gw_job *j);
static void gw_confirm(gw_job *j);
static void gw_side_effects(gw_job *j);
static void gw_audit_logs(gw_job *j);
static void gw_import_create(gw_job *j);
static void gw_import_list(gw_job *j);
static void gw_import_job(gw_job *j);
static void gw_import_rows(gw_job *j);
static void gw_import_stream(gw_job *j);

const gw_route gw_routes[] = {
	{ "GET", "/openapi.json", gw_openapi, GW_SELF, "openapi", 0,
	    GW_BODY_NONE },
	{ "GET", "/healthz", gw_healthz, GW_SELF, "healthz", 0, GW_BODY_NONE },
	{ "GET", "/readyz", gw_readyz, GW_SELF, "readyz", 0, GW_BODY_NONE },
	{ "GET", "/metrics", gw_metrics, GW_SELF, "metrics", ROLES_ADMIN,
	    GW_BODY_NONE },
	// The browser console (console.c): its files are public, the
	// application calls the API with the user's credentials.
	{ "GET", "/console", gw_console, GW_SELF, "console", 0, GW_BODY_NONE },
	{ "GET", "/console/:id", gw_console, GW_SELF, "console", 0,
	    GW_BODY_NONE },
	{ "GET", "/api/v1/Me", gw_me, GW_SELF, "me", ROLES_ANY, GW_BODY_NONE },
	// Identity (ident.c, catalog/identity.c). The token endpoint
	// authenticates the client itself (RFC 6749 §2.3).
	{ "POST", "/oauth/token", gw_token, GW_CATALOG, "OAuth.token", 0,
	    GW_BODY_FORM },
	{ "GET", "/.well-known/jwks.json", gw_forward, GW_CATALOG, "Jwks.get",
	    0, GW_BODY_NONE },
	{ "POST", "/api/v1/ApiClients", gw_forward, GW_CATALOG,
	    "ApiClients.create", ROLES_ADMIN, GW_BODY_JSON },
	{ "GET", "/api/v1/ApiClients", gw_forward, GW_CATALOG,
	    "ApiClients.list", ROLES_ADMIN, GW_BODY_NONE },
	{ "GET", "/api/v1/ApiClients/:id", gw_forward, GW_CATALOG,
	    "ApiClients.get", ROLES_ADMIN, GW_BODY_NONE },
	{ "DELETE", "/api/v1/ApiClients/:id", gw_forward, GW_CATALOG,
	    "ApiClients.delete", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/api/v1/ApiKeys", gw_forward, GW_CATALOG, "ApiKeys.create",
	    ROLES_ADMIN, GW_BODY_JSON },
	{ "GET", "/api/v1/ApiKeys", gw_forward, GW_CATALOG, "ApiKeys.list",
	    ROLES_ADMIN, GW_BODY_NONE },
	{ "GET", "/api/v1/ApiKeys/:id", gw_forward, GW_CATALOG, "ApiKeys.get",
	    ROLES_ADMIN, GW_BODY_NONE },
	{ "DELETE", "/api/v1/ApiKeys/:id", gw_forward, GW_CATALOG,
	    "ApiKeys.delete", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/api/v1/SigningKeys/rotate", gw_forward, GW_CATALOG,
	    "SigningKeys.rotate", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/pos/v2/evaluate", gw_evaluate, GW_EVALUATOR, "Evaluate",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/v2/simulate", gw_evaluate, GW_EVALUATOR, "Simulate",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/evaluate", gw_evaluate, GW_EVALUATOR, "Evaluate",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/simulate", gw_evaluate, GW_EVALUATOR, "Simulate",
	    ROLES_POS, GW_BODY_JSON },
	{ "GET", "/pos/heartbeat", gw_heartbeat, GW_EVALUATOR, "Heartbeat",
	    ROLES_POS, GW_BODY_NONE },
	{ "POST", "/pos/v2/confirm", gw_confirm, GW_EVALUATOR, "Confirm",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/confirm", gw_confirm, GW_EVALUATOR, "Confirm",
	    ROLES_POS, GW_BODY_JSON },
	{ "GET", "/pos/v2/transactions/:id/:counter/side-effects",
	    gw_side_effects, GW_EVALUATOR, "SideEffects", ROLES_POS,
	    GW_BODY_NONE },
	// The POS-platform bridge (bridge.c, PRODUCT-DECISIONS §10): the
	// platform's conventions, ?api_key= among its credentials.
	{ "POST", "/rc/spi/1.0/sa/cartValidation", gw_bridge_cart,
	    GW_EVALUATOR, "Evaluate", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/spi/1.0/promotion-code/validate", gw_bridge_code,
	    GW_COUPON, "Validate", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/spi/1.0/sa/getLoyaltyPoints", gw_forward, GW_LOYALTY,
	    "OrderPoints.get", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/spi/1.0/reward/lookup", gw_forward, GW_LOYALTY,
	    "RewardLookup.get", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/webhooks/ORDER", gw_bridge_order, GW_EVALUATOR,
	    "Confirm", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/webhooks/RETURN", gw_bridge_return, GW_LOYALTY,
	    "Returns.create", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "POST", "/rc/webhooks/VOID_CART", gw_bridge_void, GW_COUPON,
	    "ReleaseTransaction", ROLES_POS, GW_BODY_JSON, BRIDGE },
	{ "GET", "/merchant/v1/promotions/:id/supc", gw_forward, GW_COUPON,
	    "Supc.list", ROLES_READ, GW_BODY_NONE, BRIDGE },
	{ "POST", "/merchant/v1/promotions/:id/supc", gw_bridge_supc,
	    GW_COUPON, "Supc.create", ROLES_WRITE, GW_BODY_JSON, BRIDGE },
	{ "PUT", "/merchant/v1/promotions/:id/supc", gw_bridge_supc, GW_COUPON,
	    "Supc.redeem", ROLES_WRITE, GW_BODY_JSON, BRIDGE },
	{ "POST", "/api/v1/Budgets", gw_forward, GW_BUDGET, "Budgets.create",
	    ROLES_BUDGET_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/Budgets", gw_forward, GW_BUDGET, "Budgets.list",
	    ROLES_BUDGET_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/Budgets/:id", gw_forward, GW_BUDGET, "Budgets.get",
	    ROLES_BUDGET_READ, GW_BODY_NONE },
	{ "PATCH", "/api/v1/Budgets/:id", gw_forward, GW_BUDGET,
	    "Budgets.update", ROLES_BUDGET_WRITE, GW_BODY_JSON },
	{ "PUT", "/api/v1/Budgets/:id", gw_forward, GW_BUDGET,
	    "Budgets.update", ROLES_BUDGET_WRITE, GW_BODY_JSON },
	{ "DELETE", "/api/v1/Budgets/:id", gw_forward, GW_BUDGET,
	    "Budgets.delete", ROLES_BUDGET_WRITE, GW_BODY_NONE },
	{ "POST", "/api/v1/WebhookSubscriptions", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.create", ROLES_ADMIN, GW_BODY_JSON },
	{ "GET", "/api/v1/WebhookSubscriptions", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.list", ROLES_ADMIN, GW_BODY_NONE },
	{ "GET", "/api/v1/WebhookSubscriptions/:id", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.get", ROLES_ADMIN, GW_BODY_NONE },
	{ "PATCH", "/api/v1/WebhookSubscriptions/:id", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.update", ROLES_ADMIN, GW_BODY_JSON },
	{ "PUT", "/api/v1/WebhookSubscriptions/:id", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.update", ROLES_ADMIN, GW_BODY_JSON },
	{ "DELETE", "/api/v1/WebhookSubscriptions/:id", gw_forward, GW_WEBHOOK,
	    "WebhookSubscriptions.delete", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/api/v1/WebhookSubscriptions/:id/rotate-secret", gw_forward,
	    GW_WEBHOOK, "WebhookSubscriptions.rotateSecret", ROLES_ADMIN,
	    GW_BODY_NONE },
	{ "POST", "/api/v1/WebhookSubscriptions/:id/test", gw_forward,
	    GW_WEBHOOK, "WebhookSubscriptions.test", ROLES_ADMIN,
	    GW_BODY_NONE },
	{ "POST", "/api/v1/WebhookSubscriptions/:id/repost", gw_forward,
	    GW_WEBHOOK, "WebhookSubscriptions.repost", ROLES_ADMIN,
	    GW_BODY_JSON },
	{ "GET", "/api/v1/WebhookDeliveries", gw_forward, GW_WEBHOOK,
	    "WebhookDeliveries.list", ROLES_ADMIN, GW_BODY_NONE },
	{ "GET", "/api/v1/WebhookDeliveries/:id", gw_forward, GW_WEBHOOK,
	    "WebhookDeliveries.get", ROLES_ADMIN, GW_BODY_NONE },
	{ "DELETE", "/api/v1/WebhookDeliveries/:id", gw_forward, GW_WEBHOOK,
	    "WebhookDeliveries.delete", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/api/v1/WebhookDeliveries/:id/repost", gw_forward,
	    GW_WEBHOOK, "WebhookDeliveries.repost", ROLES_ADMIN,
	    GW_BODY_NONE },
	{ "GET", "/reporting/PromotionPerformance", gw_forward, GW_REPORTING,
	    "PromotionPerformance.list", ROLES_REPORTING, GW_BODY_NONE },
	{ "GET", "/reporting/PromotionPerformance/:id", gw_forward,
	    GW_REPORTING, "PromotionPerformance.get", ROLES_REPORTING,
	    GW_BODY_NONE },
	{ "GET", "/reporting/BudgetUtilization", gw_forward, GW_REPORTING,
	    "BudgetUtilization.list", ROLES_REPORTING, GW_BODY_NONE },
	{ "GET", "/reporting/BudgetUtilization/:id", gw_forward, GW_REPORTING,
	    "BudgetUtilization.get", ROLES_REPORTING, GW_BODY_NONE },
	{ "POST", "/pos/articles/import", gw_forward, GW_CATALOG,
	    "Articles.import", ROLES_POS, GW_BODY_JSON },
	{ "POST", "/api/v1/Campaigns/:id/addPromotions", gw_forward,
	    GW_CATALOG, "Campaigns.addPromotions", ROLES_WRITE, GW_BODY_JSON },
	{ "POST", "/api/v1/Campaigns/:id/removePromotion", gw_forward,
	    GW_CATALOG, "Campaigns.removePromotion", ROLES_WRITE,
	    GW_BODY_JSON },
	{ "GET", "/api/v1/Campaigns/:id/exportICS", gw_forward, GW_CATALOG,
	    "Campaigns.exportICS", ROLES_READ, GW_BODY_NONE },
	{ "POST",
	    "/api/v1/master-data/ProductMerchandiseViewReplicationBulkRequest",
	    gw_forward, GW_CATALOG, "MasterData.replicate", ROLES_INGEST,
	    GW_BODY_JSON },
	{ "POST", "/api/v1/master-data/soap", gw_forward, GW_CATALOG,
	    "MasterData.replicateSoap", ROLES_INGEST, GW_BODY_XML },
	{ "GET", "/api/v1/master-data/messages/:id", gw_forward, GW_CATALOG,
	    "MasterData.message", ROLES_INGEST, GW_BODY_NONE },
	{ "GET", "/api/v1/master-data/messages/:id/raw", gw_forward,
	    GW_CATALOG, "MasterData.raw", ROLES_INGEST, GW_BODY_NONE },
	// Import jobs (PRODUCT-DECISIONS §11): in the entity's owner, the
	// upload streamed through (GW_BODY_STREAM).
	{ "POST", "/pos/articles/import-batch", gw_forward, GW_CATALOG,
	    "Articles.importBatch", ROLES_POS, GW_BODY_JSON },
	{ "POST", "/api/v1/ImportJobs", gw_import_create, GW_CATALOG,
	    "ImportJobs.create", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/ImportJobs", gw_import_list, GW_CATALOG,
	    "ImportJobs.list", ROLES_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/ImportJobs/:id", gw_import_job, GW_CATALOG,
	    "ImportJobs.get", ROLES_READ, GW_BODY_NONE },
	{ "PUT", "/api/v1/ImportJobs/:id/data", gw_import_stream, GW_CATALOG,
	    "ImportJobs.append", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/ImportJobs/:id/cancel", gw_import_job, GW_CATALOG,
	    "ImportJobs.cancel", ROLES_WRITE, GW_BODY_NONE },
	{ "GET", "/api/v1/ImportJobErrors", gw_import_rows, GW_CATALOG,
	    "ImportJobErrors.list", ROLES_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/ArticleImportJobs/:id", gw_import_job, GW_CATALOG,
	    "ArticleImportJobs.get", ROLES_READ | ROLES_POS, GW_BODY_NONE },
	{ "GET", "/admin/ArticleImportJobs/:id", gw_import_job, GW_CATALOG,
	    "ArticleImportJobs.get", ROLES_ADMIN, GW_BODY_NONE },
	{ "GET", "/api/v1/ArticleImportJobItems", gw_import_rows, GW_CATALOG,
	    "ImportJobItems.list", ROLES_READ | ROLES_POS, GW_BODY_NONE },
	{ "GET", "/admin/ArticleImportJobItems", gw_import_rows, GW_CATALOG,
	    "ImportJobItems.list", ROLES_ADMIN, GW_BODY_NONE },
	{ "POST", "/api/v1/Articles:bulk-import", gw_import_stream, GW_CATALOG,
	    "Articles", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/ArticleGroups:bulk-import", gw_import_stream,
	    GW_CATALOG, "ArticleGroups", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/PosGroups:bulk-import", gw_import_stream,
	    GW_CATALOG, "PosGroups", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/Promotions:bulk-import", gw_import_stream,
	    GW_CATALOG, "Promotions", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/CouponCodes:bulk-import", gw_import_stream,
	    GW_CATALOG, "CouponCodes", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/Contacts:bulk-import", gw_import_stream, GW_CATALOG,
	    "Contacts", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/Budgets:bulk-import", gw_import_stream, GW_CATALOG,
	    "Budgets", ROLES_BUDGET_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/CouponTypes:bulk-import", gw_import_stream,
	    GW_CATALOG, "CouponTypes", ROLES_WRITE, GW_BODY_STREAM },
	{ "POST", "/api/v1/Promotions/:id/activate", gw_forward, GW_CATALOG,
	    "Promotions.activate", ROLES_WRITE, GW_BODY_JSON_OPT },
	{ "POST", "/api/v1/Promotions/:id/deactivate", gw_forward, GW_CATALOG,
	    "Promotions.deactivate", ROLES_WRITE, GW_BODY_JSON_OPT },
	{ "POST", "/api/v1/Promotions/:id/submit", gw_forward, GW_CATALOG,
	    "Promotions.submit", ROLES_WRITE, GW_BODY_JSON_OPT },
	{ "POST", "/api/v1/Promotions/:id/approve", gw_forward, GW_CATALOG,
	    "Promotions.approve", ROLES_APPROVE, GW_BODY_JSON_OPT },
	{ "POST", "/api/v1/Promotions/:id/reject", gw_forward, GW_CATALOG,
	    "Promotions.reject", ROLES_APPROVE, GW_BODY_JSON },
	{ "GET", "/api/v1/AuditLogs", gw_audit_logs, GW_CATALOG,
	    "AuditLogs.list", ROLES_AUDIT, GW_BODY_NONE },
	{ "GET", "/api/v1/CalculationAuditLogs/:id", gw_forward, GW_EVALUATOR,
	    "CalculationAuditLogs.get", ROLES_AUDIT, GW_BODY_NONE },
	{ "GET", "/api/v1/TenantSettings", gw_forward, GW_CATALOG,
	    "TenantSettings.get", ROLES_READ, GW_BODY_NONE },
	{ "PUT", "/api/v1/TenantSettings", gw_forward, GW_CATALOG,
	    "TenantSettings.update", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/LoyaltyProgram", gw_forward, GW_LOYALTY,
	    "Program.get", ROLES_READ | ROLES_LOYALTY, GW_BODY_NONE },
	{ "PUT", "/api/v1/LoyaltyProgram", gw_forward, GW_LOYALTY,
	    "Program.put", ROLES_WRITE, GW_BODY_JSON },
	{ "POST", "/api/v3/contacts", gw_forward, GW_LOYALTY,
	    "Contacts.upsert", ROLES_LOYALTY, GW_BODY_JSON },
	{ "POST", "/api/v3/contacts/import", gw_forward, GW_LOYALTY,
	    "Contacts.import", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v3/contacts/id", gw_forward, GW_LOYALTY,
	    "Contacts.lookup", ROLES_LOYALTY, GW_BODY_NONE },
	{ "GET", "/api/v3/contacts/:id", gw_forward, GW_LOYALTY,
	    "Contacts.get", ROLES_LOYALTY, GW_BODY_NONE },
	{ "PATCH", "/api/v3/contacts/:id", gw_forward, GW_LOYALTY,
	    "Contacts.update", ROLES_LOYALTY, GW_BODY_JSON },
	{ "GET", "/api/v3/contactoverview", gw_forward, GW_LOYALTY,
	    "ContactOverview.get", ROLES_LOYALTY, GW_BODY_NONE },
	{ "POST", "/api/v3/receipts", gw_forward, GW_LOYALTY,
	    "Receipts.create", ROLES_LOYALTY, GW_BODY_JSON },
	{ "POST", "/api/v3/reward-vouchers", gw_forward, GW_LOYALTY,
	    "RewardVouchers.exchange", ROLES_LOYALTY, GW_BODY_JSON },
	{ "GET", "/api/v3/reward-vouchers", gw_forward, GW_LOYALTY,
	    "RewardVouchers.list", ROLES_LOYALTY, GW_BODY_NONE },
	{ "GET", "/api/v3/reward-vouchers/available", gw_forward, GW_LOYALTY,
	    "RewardVouchers.available", ROLES_LOYALTY, GW_BODY_NONE },
	{ "GET", "/api/v3/reward-vouchers/redeemed", gw_forward, GW_LOYALTY,
	    "RewardVouchers.redeemed", ROLES_LOYALTY, GW_BODY_NONE },
	{ "POST", "/api/v3/reward-vouchers/:id/redeem", gw_forward, GW_LOYALTY,
	    "RewardVouchers.redeem", ROLES_LOYALTY, GW_BODY_JSON_OPT },
	{ "POST", "/api/v3/promotion-assignments", gw_forward, GW_LOYALTY,
	    "PromotionAssignments.assign", ROLES_LOYALTY, GW_BODY_JSON },
	{ "GET", "/api/v3/promotion-assignments", gw_forward, GW_LOYALTY,
	    "PromotionAssignments.list", ROLES_LOYALTY, GW_BODY_NONE },
	{ "DELETE", "/api/v3/promotion-assignments/:id", gw_forward,
	    GW_LOYALTY, "PromotionAssignments.delete", ROLES_LOYALTY,
	    GW_BODY_NONE },
	{ "POST", "/api/v3/promotion-assignments/:id/redeem", gw_forward,
	    GW_LOYALTY, "PromotionAssignments.redeem", ROLES_LOYALTY,
	    GW_BODY_JSON_OPT },
	{ "POST", "/api/v1/:entity", gw_forward, GW_CATALOG, "create",
	    ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/:entity", gw_forward, GW_CATALOG, "list", ROLES_READ,
	    GW_BODY_NONE },
	{ "GET", "/api/v1/:entity/:id", gw_forward, GW_CATALOG, "get",
	    ROLES_READ, GW_BODY_NONE },
	{ "PATCH", "/api/v1/:entity/:id", gw_forward, GW_CATALOG, "update",
	    ROLES_WRITE, GW_BODY_JSON },
	{ "PUT", "/api/v1/:entity/:id", gw_forward, GW_CATALOG, "update",
	    ROLES_WRITE, GW_BODY_JSON },
	{ "DELETE", "/api/v1/:entity/:id", gw_forward, GW_CATALOG, "delete",
	    ROLES_WRITE, GW_BODY_NONE },
	{ "POST", "/pos/coupons/validate", gw_forward, GW_COUPON, "Validate",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/coupons/reserve", gw_forward, GW_COUPON, "Reserve",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/coupons/redeem", gw_forward, GW_COUPON, "Redeem",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/coupons/cancel", gw_forward, GW_COUPON, "Cancel",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/coupons/activate", gw_forward, GW_COUPON, "Activate",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/pos/coupons/issue", gw_forward, GW_COUPON, "Issue",
	    ROLES_POS, GW_BODY_JSON },
	{ "POST", "/api/v1/CouponTypes", gw_forward, GW_COUPON,
	    "CouponTypes.create", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/CouponTypes", gw_forward, GW_COUPON,
	    "CouponTypes.list", ROLES_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/CouponTypes/:id", gw_forward, GW_COUPON,
	    "CouponTypes.get", ROLES_READ, GW_BODY_NONE },
	{ "PATCH", "/api/v1/CouponTypes/:id", gw_forward, GW_COUPON,
	    "CouponTypes.update", ROLES_WRITE, GW_BODY_JSON },
	{ "PUT", "/api/v1/CouponTypes/:id", gw_forward, GW_COUPON,
	    "CouponTypes.update", ROLES_WRITE, GW_BODY_JSON },
	{ "DELETE", "/api/v1/CouponTypes/:id", gw_forward, GW_COUPON,
	    "CouponTypes.delete", ROLES_WRITE, GW_BODY_NONE },
	{ "POST", "/api/v1/CouponCodes/import", gw_forward, GW_COUPON,
	    "CouponCodes.import", ROLES_WRITE, GW_BODY_JSON },
	{ "POST", "/api/v1/CouponCodes", gw_forward, GW_COUPON,
	    "CouponCodes.create", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/CouponCodes", gw_forward, GW_COUPON,
	    "CouponCodes.list", ROLES_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/CouponCodes/:id", gw_forward, GW_COUPON,
	    "CouponCodes.get", ROLES_READ, GW_BODY_NONE },
	{ "PATCH", "/api/v1/CouponCodes/:id", gw_forward, GW_COUPON,
	    "CouponCodes.update", ROLES_WRITE, GW_BODY_JSON },
	{ "PUT", "/api/v1/CouponCodes/:id", gw_forward, GW_COUPON,
	    "CouponCodes.update", ROLES_WRITE, GW_BODY_JSON },
	{ "POST", "/api/v1/CouponCodeBatches", gw_forward, GW_COUPON,
	    "CouponCodeBatches.create", ROLES_WRITE, GW_BODY_JSON },
	{ "GET", "/api/v1/CouponCodeBatches", gw_forward, GW_COUPON,
	    "CouponCodeBatches.list", ROLES_READ, GW_BODY_NONE },
	{ "GET", "/api/v1/CouponCodeBatches/:id", gw_forward, GW_COUPON,
	    "CouponCodeBatches.get", ROLES_READ, GW_BODY_NONE },
	{ NULL, NULL, NULL, 0, NULL, 0, 0 },
};

static const char *const entities[] = { "Promotions", "PosGroups",
	"ArticleGroups", "Articles", "Campaigns", NULL };

// ---------------------------------------------------------------- matching

#define MAX_SEGS 8

// split_path cuts path into segments in the arena; the OData key forms
// Entity(id) and Entity('id') become two segments. -1 when too deep.
static int
split_path(gw_job *j, const char *path, const char **segs)
{
	int   n = 0;
	char *p = dre_arena_strdup(j->arena, path);
	char *save = NULL;

	if (p == NULL)
		return -1;
	for (char *s = strtok_r(p, "/", &save); s != NULL;
	     s = strtok_r(NULL, "/", &save)) {
		char  *open = strchr(s, '(');
		size_t len = strlen(s);
		if (n >= MAX_SEGS)
			return -1;
		if (open != NULL && open != s && s[len - 1] == ')') {
			char *key = open + 1;
			*open = '\0';
			s[len - 1] = '\0';
			size_t kl = strlen(key);
			if (kl >= 2 && key[0] == '\'' && key[kl - 1] == '\'') {
				key[kl - 1] = '\0';
				key++;
			}
			segs[n++] = s;
			if (n >= MAX_SEGS)
				return -1;
			segs[n++] = key;
		} else {
			segs[n++] = s;
		}
	}
	return n;
}

static bool
is_entity(const char *s)
{
	for (int i = 0; entities[i] != NULL; i++)
		if (strcmp(entities[i], s) == 0)
			return true;
	return false;
}

// pat_is tells whether the pattern segment p[0..len) is the literal lit.
static bool
pat_is(const char *p, size_t len, const char *lit, size_t ll)
{
	return len == ll && memcmp(p, lit, ll) == 0;
}

// match_pattern compares the segments with a pattern, binding :entity and
// :id into j. The pattern is read in place (every request tries the table
// from its start, so no copy and no printf).
static bool
match_pattern(gw_job *j, const char *pattern, const char **segs, int n)
{
	const char *entity = NULL, *id = NULL, *counter = NULL;
	const char *p = pattern;
	int         i = 0;

	for (;; i++) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		const char *end = strchr(p, '/');
		size_t      len = end != NULL ? (size_t) (end - p) : strlen(p);
		if (i >= n)
			return false;
		if (pat_is(p, len, ":entity", 7)) {
			if (!is_entity(segs[i]))
				return false;
			entity = segs[i];
		} else if (pat_is(p, len, ":id", 3)) {
			if (segs[i][0] == '\0')
				return false;
			id = segs[i];
		} else if (pat_is(p, len, ":counter", 8)) {
			if (segs[i][0] == '\0')
				return false;
			counter = segs[i];
		} else if (strncmp(p, segs[i], len) != 0
		    || segs[i][len] != '\0') {
			return false;
		}
		p += len;
	}
	if (i != n)
		return false;
	j->entity = entity;
	j->id = id;
	j->counter = counter;
	return true;
}

const gw_route *
gw_route_match(
    gw_job *j, const char *method, const char *path, bool *path_known)
{
	const char *segs[MAX_SEGS];
	int         n = split_path(j, path, segs);

	*path_known = false;
	if (n < 0)
		return NULL;
	for (const gw_route *r = gw_routes; r->method != NULL; r++) {
		if (!match_pattern(j, r->pattern, segs, n))
			continue;
		if (strcmp(r->method, method) != 0) {
			*path_known = true;
			continue;
		}
		// Fits: the names are the table's and the entities' list.
		if (r->backend != GW_SELF)
			snprintf(j->rpc_method, sizeof(j->rpc_method),
			    "%s.%s%s%s", gw_backends[r->backend].name,
			    j->entity != NULL ? j->entity : "",
			    j->entity != NULL ? "." : "", r->arg);
		return r;
	}
	return NULL;
}

// ---------------------------------------------------------------- helpers

// protobuf-c allocates unpacked replies from the job's arena: one free.
// gw_client_of picks the client of the route's backend. On a sharded one a
// transaction goes to one shard for its whole life, chosen by tenant and
// txid, so that its iteration counter and confirm idempotency live in one
// place; txid is NULL for calls any shard answers (the first one does).
dre_rpc_client *
gw_client_of(gw_job *j, const char *txid)
{
	const gw_backend *b = &j->g->backends[j->route->backend];

	if (txid == NULL || b->n <= 1)
		return b->clients[0];
	uint32_t h = dre_fnv1a32_str(DRE_FNV32_INIT, j->who.tenant, 1);
	return b->clients[dre_fnv1a32_str(h, txid, 0) % b->n];
}

// parse_body parses the request body (in place: strings point into
// j->body, which is overwritten, for a route that does not pass it on) and
// answers 400 MALFORMED_JSON when it is not JSON.
static bool
parse_body(gw_job *j, dre_json **rootp, bool inplace)
{
	dre_json_error jerr = { 0, NULL };
	dre_err        err;

	if (inplace)
		err = dre_json_parse_inplace(rootp, j->arena, j->body.data,
		    j->body.len, DRE_JSON_MAX_DEPTH, &jerr);
	else
		err = dre_json_parse(rootp, j->arena,
		    j->body.data != NULL ? j->body.data : "", j->body.len,
		    DRE_JSON_MAX_DEPTH, &jerr);
	if (err == DRE_OK)
		return true;
	if (err == DRE_ENOMEM)
		gw_job_oom(j);
	else
		gw_job_error(j, 400, "MALFORMED_JSON", NULL,
		    "malformed JSON at byte %zu: %s", jerr.offset,
		    jerr.msg != NULL ? jerr.msg : "syntax error");
	return false;
}

bool
gw_parse_json_body(gw_job *j, dre_json **rootp)
{
	return parse_body(j, rootp, false);
}

// wire_refused answers the outcome of a dre_*req_parse that failed: the
// request's fault as it says, anything else as out of memory. False (and
// nothing answered) when it succeeded.
static bool
wire_refused(gw_job *j, dre_err err, const dre_wire_error *werr)
{
	if (err == DRE_OK)
		return false;
	if (err == DRE_EINVAL)
		gw_job_error(j, werr->status, werr->code,
		    werr->target[0] != '\0' ? werr->target : NULL, "%s",
		    werr->message);
	else
		gw_job_oom(j);
	return true;
}

// gw_call_packed sends q, packed into the arena, as the body of the route's
// call to the shard of txid, and renders the reply with render.
void
gw_call_packed(
    gw_job *j, const ProtobufCMessage *q, const char *txid, gw_render render)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];
	size_t          n = protobuf_c_message_get_packed_size(q);
	uint8_t        *packed = dre_arena_get(j->arena, n > 0 ? n : 1);

	if (packed == NULL) {
		gw_job_oom(j);
		return;
	}
	protobuf_c_message_pack(q, packed);
	gw_job_envelope(j, &req, j->rpc_method, roles);
	req.has_body = 1;
	req.body.data = packed;
	req.body.len = n;
	gw_job_call(j, gw_client_of(j, txid), &req, render);
}

// gw_unpack_reply decodes the callee's protobuf answer into the job's arena
// and empties j->out for its rendering. On an error reply or an undecodable
// answer it has answered the client already and returns NULL.
void *
gw_unpack_reply(gw_job *j, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCAllocator al = dre_arena_pb(j->arena);
	void              *m;

	if (gw_job_reply_error(j))
		return NULL;
	m = protobuf_c_message_unpack(
	    desc, &al, j->rep->body.len, j->rep->body.data);
	if (m == NULL)
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "undecodable evaluator answer");
	else
		dre_buf_reset(&j->out);
	return m;
}

// gw_respond_out answers 200 with the JSON rendered into j->out.
void
gw_respond_out(gw_job *j)
{
	if (j->out.oom) {
		gw_job_oom(j);
		return;
	}
	gw_job_respond(j, 200, j->out.data, j->out.len, GW_JSON_CT);
}

// ---------------------------------------------------------------- evaluate

// render_evaluate answers the evaluator's reply: the answer's JSON as the
// evaluator wrote it (EvaluateRequest.answer_json, RpcReply.content_type
// set), copied to the wire as it is; a packed EvaluateResponse (an
// evaluator that does not know answer_json) rendered here.
static void
render_evaluate(gw_job *j)
{
	const Dre__RpcReply *rep = j->rep;

	if (j->rpc_err == DRE_OK && rep != NULL && rep->status < 400
	    && rep->content_type != NULL) {
		gw_job_respond(j, 200, (const char *) rep->body.data,
		    rep->has_body ? rep->body.len : 0, GW_JSON_CT);
		return;
	}
	Dre__EvaluateResponse *r
	    = gw_unpack_reply(j, &dre__evaluate_response__descriptor);

	if (r == NULL)
		return;
	dre_evalresp_write(&j->out, r);
	gw_respond_out(j);
}

// ignored_header names the request members DRE ignored in the header
// DRE-Ignored-Fields (PRODUCT-DECISIONS §1: at most 20, then "…"); the
// evaluator refuses them instead when the tenant set rejectUnknownFields.
static void
ignored_header(gw_job *j, const Dre__EvaluateRequest *q)
{
	size_t n = q->n_ignored_fields, len = 8;
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		len += strlen(q->ignored_fields[i]) + 2;
	char *v = dre_arena_get(j->arena, len);
	if (v == NULL)
		return;
	size_t o = 0;
	for (size_t i = 0; i < n && i < DRE_EVAL_MAX_IGNORED; i++)
		o += (size_t) snprintf(v + o, len - o, "%s%s", i ? ", " : "",
		    q->ignored_fields[i]);
	if (n > DRE_EVAL_MAX_IGNORED)
		snprintf(v + o, len - o, ", \u2026");
	gw_job_header_add(j, "DRE-Ignored-Fields", v);
}

static void
gw_evaluate(gw_job *j)
{
	bool      simulate = strcmp(j->route->arg, "Simulate") == 0;
	dre_json *root;
	Dre__EvaluateRequest *q;
	dre_wire_error        werr;

	// The body is not used after this: parsed in place.
	if (!parse_body(j, &root, true)
	    || wire_refused(j,
	        dre_evalreq_parse(&q, j->arena, root, simulate, &werr), &werr))
		return;
	ignored_header(j, q);
	if (q->header == NULL) {
		q->header = dre_arena_get(j->arena, sizeof(*q->header));
		if (q->header == NULL) {
			gw_job_oom(j);
			return;
		}
		dre__request_header__init(q->header);
	}
	if (q->header->transaction_id == NULL) {
		// Generated here, not by the evaluator, so that the shard is
		// known before the call.
		dre_uuid_v4(j->txid);
		q->header->transaction_id = j->txid;
	}
	q->has_answer_json = true; // the answer is copied to the wire
	q->answer_json = true;
	// Coalesced under load (rpc.coalesce), unless it has coupon codes:
	// their check always waits for the coupon service, so the evaluator
	// would answer it "alone" and it would be sent twice. (One with a
	// customer waits for loyalty only in some tenants; those come back
	// "alone" at once and go again by themselves.)
	j->coalesce = q->n_coupons == 0;
	gw_call_packed(
	    j, &q->base, q->header->transaction_id, render_evaluate);
}

// ---------------------------------------------------------------- heartbeat

static void
render_heartbeat(gw_job *j)
{
	ProtobufCAllocator      al = dre_arena_pb(j->arena);
	Dre__HeartbeatResponse *h = NULL;
	Dre__HeartbeatResponse  down = DRE__HEARTBEAT_RESPONSE__INIT;
	int                     status = 200;

	if (j->rpc_err == DRE_OK && j->rep->status < 400)
		h = dre__heartbeat_response__unpack(
		    &al, j->rep->body.len, j->rep->body.data);
	if (h == NULL) {
		// Still the heartbeat shape: monitors read status, not codes.
		down.status = "DOWN";
		down.version = DRE_VERSION;
		down.mode = j->g->cfg->mode;
		down.btp_connectivity = "DISCONNECTED";
		down.pending_transactions = 0;
		down.promotions_loaded = 0;
		down.uptime_s = (dre_now_ms() - j->g->started_ms) / 1000;
		h = &down;
	}
	gw_services_fill(j, h);
	if (h->status != NULL && strcmp(h->status, "DOWN") == 0)
		status = 503;
	dre_buf_reset(&j->out);
	dre_heartbeat_write(&j->out, h);
	gw_job_respond(j, status, j->out.data, j->out.len, GW_JSON_CT);
}

// heartbeat_call asks the evaluator for the heartbeat once every
// service's Health answered.
static void
heartbeat_call(gw_job *j)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];

	gw_job_envelope(j, &req, j->rpc_method, roles);
	gw_job_call(j, gw_client_of(j, NULL), &req, render_heartbeat);
}

void
gw_heartbeat(gw_job *j)
{
	gw_fanout(j, NULL, 0, "Health", NULL, 0,
	    (int) j->g->cfg->health_timeout_ms, heartbeat_call);
}

// ---------------------------------------------------------------- confirm

static void
render_confirm(gw_job *j)
{
	Dre__ConfirmResponse *r
	    = gw_unpack_reply(j, &dre__confirm_response__descriptor);

	if (r == NULL)
		return;
	dre_confirmresp_write(&j->out, r);
	gw_respond_out(j);
}

static void
gw_confirm(gw_job *j)
{
	dre_json            *root;
	Dre__ConfirmRequest *q;
	dre_wire_error       werr;

	if (!gw_parse_json_body(j, &root)
	    || wire_refused(
	        j, dre_confirmreq_parse(&q, j->arena, root, &werr), &werr))
		return;
	// The shard that evaluated the transaction holds its iterations.
	gw_call_packed(j, &q->base, q->header->transaction_id, render_confirm);
}

// ---------------------------------------------------------------- forward

// Read-your-writes (PRODUCT-DECISIONS §4b): a master-data write is answered
// once every live service that learns master data prices with it. The
// catalog names what it wrote in the reply header dre-changes; each
// backend marked GW_AWAITS (every evaluator shard, and the coupon service
// for confirm's redemptions and post-purchase codes) is asked to answer
// when it holds those versions (<name>.AwaitChanges), bounded by
// catalog.propagation_wait_ms. A client that is not connected is not live
// and not waited for; one that does not apply the changes in time makes
// the answer carry DRE-Propagation: pending.
#define CHANGES_HEADER "dre-changes"

static void
on_await(void *arg, dre_err err, Dre__RpcReply *rep)
{
	gw_job *j = arg;

	if (err == DRE_ETIMEOUT || (err == DRE_OK && rep->status == 202))
		atomic_store(&j->await_pending, true);
	dre_rpc_reply_msg_free(rep);
	if (atomic_fetch_sub(&j->await_left, 1) == 1)
		gw_job_wake(j);
}

bool
gw_await_changes(gw_job *j, const char *changes, gw_render render)
{
	gw             *g = j->g;
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__Param      wp = DRE__PARAM__INIT;
	Dre__Param     *params[1] = { &wp };
	char            wait[24], method[48] = "", *roles[32];
	size_t          n = 0;

	j->awaited = true;
	for (int b = 0; b < GW_NBACKENDS; b++)
		if ((gw_backends[b].flags & GW_AWAITS) != 0)
			n += g->backends[b].n;
	if (g->cfg->propagation_wait_ms <= 0 || n == 0)
		return false;
	snprintf(wait, sizeof wait, "%lld",
	    (long long) g->cfg->propagation_wait_ms);
	wp.key = "wait_ms";
	wp.value = wait;
	gw_job_envelope(j, &req, method, roles); // method: per backend below
	req.params = params;
	req.n_params = 1;
	req.has_body = 1;
	req.body.data = (uint8_t *) changes;
	req.body.len = strlen(changes);
	if (!gw_job_wait(j, render))
		return true; // answered 503: shutting down
	// One count for this loop, so that no reply wakes the job before
	// every call is out.
	atomic_store(&j->await_left, (int) n + 1);
	for (int b = 0; b < GW_NBACKENDS; b++) {
		if ((gw_backends[b].flags & GW_AWAITS) == 0)
			continue;
		snprintf(method, sizeof method, "%s.AwaitChanges",
		    gw_backends[b].name);
		for (size_t i = 0; i < g->backends[b].n; i++) {
			dre_err err
			    = dre_rpc_call_async(g->backends[b].clients[i],
			        &req, (int) g->cfg->propagation_wait_ms + 1000,
			        on_await, j);
			if (err != DRE_OK) // not connected: not live
				atomic_fetch_sub(&j->await_left, 1);
		}
	}
	if (atomic_fetch_sub(&j->await_left, 1) == 1)
		gw_job_wake(j);
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t sl = strlen(s), xl = strlen(suffix);

	return sl > xl && strcmp(s + sl - xl, suffix) == 0;
}

// gw_render_forward sends the callee's document as it is (JSON unless the
// callee named another content type, e.g. text/csv), once the services
// learning a write it reports have applied it.
void
gw_render_forward(gw_job *j)
{
	const Dre__RpcReply *rep = j->rep;
	int                  status;
	const char          *changes = NULL;

	if (gw_job_reply_error(j))
		return;
	status = rep->status != 0 ? rep->status : 200;
	for (size_t i = 0; i < rep->n_headers; i++)
		if (strcmp(rep->headers[i]->key, CHANGES_HEADER) == 0)
			changes = rep->headers[i]->value;
	if (status < 300 && changes != NULL && !j->awaited
	    && gw_await_changes(j, changes, gw_render_forward))
		return; // rendered again once the services answered
	if (status == 200 && ends_with(j->rpc_method, ".create"))
		status = 201;
	if (status == 200 && ends_with(j->rpc_method, ".delete"))
		status = 204;
	if (j->awaited && atomic_load(&j->await_pending))
		gw_job_header_add(j, "DRE-Propagation", "pending");
	for (size_t i = 0; i < rep->n_headers; i++)
		if (strcmp(rep->headers[i]->key, CHANGES_HEADER) != 0)
			gw_job_header_add(
			    j, rep->headers[i]->key, rep->headers[i]->value);
	if (status == 204) {
		gw_job_respond(j, 204, NULL, 0, NULL);
		return;
	}
	// The reply body is the client's document: sent as is, no copy.
	gw_job_respond(j, status, (const char *) rep->body.data,
	    rep->has_body ? rep->body.len : 0,
	    rep->content_type != NULL
	            && strncmp(rep->content_type, "application/json", 16) != 0
	        ? rep->content_type
	        : GW_JSON_CT);
}

typedef struct {
	gw_job      *j;
	Dre__Param **params;
	size_t       n, cap;
} param_list;

// params_init makes room for cap params; false (answered 503) without
// memory.
static bool
params_init(param_list *l, gw_job *j, size_t cap)
{
	l->j = j;
	l->n = 0;
	l->cap = cap;
	l->params = dre_arena_get(j->arena, cap * sizeof(*l->params));
	if (l->params == NULL)
		gw_job_oom(j);
	return l->params != NULL;
}

static bool
param_add(param_list *l, const char *key, const char *value)
{
	Dre__Param *p;

	if (l->n >= l->cap)
		return false;
	if ((p = dre_arena_get(l->j->arena, sizeof(*p))) == NULL)
		return false;
	dre__param__init(p);
	p->key = (char *) key;
	p->value = (char *) (value != NULL ? value : "");
	l->params[l->n++] = p;
	return true;
}

static enum MHD_Result
query_arg(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void) kind;
	// Path variables win over query arguments of the same name.
	if (strcmp(key, "id") == 0 || strcmp(key, "patch") == 0)
		return MHD_YES;
	param_add(cls, key, value);
	return MHD_YES;
}

static void
gw_side_effects(gw_job *j)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];
	param_list      pl;

	if (!params_init(&pl, j, 4))
		return;
	if (!param_add(&pl, "id", j->id)
	    || !param_add(&pl, "counter", j->counter)) {
		gw_job_oom(j);
		return;
	}
	gw_job_envelope(j, &req, j->rpc_method, roles);
	req.params = pl.params;
	req.n_params = pl.n;
	gw_job_call(j, gw_client_of(j, j->id), &req, gw_render_forward);
}

// gw_forward calls the route's backend with the path's id and the query
// arguments as params and the body as it came (checked to be JSON, or XML
// on a GW_BODY_XML route), and answers with the callee's document.
void
gw_forward(gw_job *j)
{
	gw_forward_then(j, gw_render_forward);
}

void
gw_forward_then(gw_job *j, gw_render render)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];
	dre_json       *root;
	param_list      pl;

	bool xml = j->route->body == GW_BODY_XML;
	if (j->body.len > 0 && !xml && !gw_parse_json_body(j, &root))
		return;
	if (!params_init(&pl, j, 40))
		return;
	// An XML body goes as it came; the callee parses it (and picks the
	// SOAP version of its answer by the media type).
	if (xml)
		param_add(&pl, "content_type",
		    gw_job_header(j, MHD_HTTP_HEADER_CONTENT_TYPE));
	if (j->id != NULL)
		param_add(&pl, "id", j->id);
	if (strcmp(j->method, "PATCH") == 0)
		param_add(&pl, "patch", "1");
	// Optimistic concurrency: the service compares it with the version.
	const char *im = gw_job_header(j, MHD_HTTP_HEADER_IF_MATCH);
	if (im != NULL)
		param_add(&pl, "if_match", im);
	MHD_get_connection_values(
	    j->conn, MHD_GET_ARGUMENT_KIND, query_arg, &pl);
	gw_job_envelope(j, &req, j->rpc_method, roles);
	req.params = pl.params;
	req.n_params = pl.n;
	if (j->body.len > 0) {
		req.has_body = 1;
		req.body.data = (uint8_t *) j->body.data;
		req.body.len = j->body.len;
	}
	// The evaluator's forwarded routes name a transaction: its shard.
	gw_job_call(j,
	    gw_client_of(j, j->route->backend == GW_EVALUATOR ? j->id : NULL),
	    &req, render);
}

// ---------------------------------------------------------------- audit log

// GET /api/v1/AuditLogs is one collection over every service that keeps
// audit records (dre/audit.h): the catalog (master data, auth events), the
// budget, coupon, loyalty and webhook services (their writes) and every
// evaluator shard (confirm's calculation records). Each is asked for
// the first $skip + $top records of the query (without $select, ordered by
// at when the query does not order), the gateway merges them, orders,
// pages and selects with the same query (common/odata) and adds the
// counts.
static const int audit_backends[] = { GW_CATALOG, GW_EVALUATOR, GW_BUDGET,
	GW_COUPON, GW_LOYALTY, GW_WEBHOOK };

// fan_query: what render_fan_list needs of the request.
typedef struct {
	Dre__RpcRequest         mine; // the query as the gateway applies it
	const dre_odata_fields *fields; // of the merged collection
	const char             *what; // "audit log", "import jobs"
} fan_query;

// fan_int reads a non-negative integer query option (dflt when absent);
// false once it has answered 400.
static bool
fan_int(gw_job *j, const char *name, int64_t dflt, int64_t max, int64_t *out)
{
	const char *v = MHD_lookup_connection_value(
	    j->conn, MHD_GET_ARGUMENT_KIND, name);
	char *end = NULL;
	if (v == NULL) {
		*out = dflt;
		return true;
	}
	long long n = strtoll(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || n > max) {
		gw_job_error(j, 400, "VALIDATION_FAILED", name,
		    "%s must be an integer from 0 to %lld", name,
		    (long long) max);
		return false;
	}
	*out = n;
	return true;
}

static void render_fan_list(gw_job *j);

// fan_list answers one collection merged from the method `list` of every
// backend (and shard) of backends[0..nb): each is asked for the first
// $skip + $top documents of the query (without $select, ordered by order
// when the query does not order), the gateway merges them, orders, pages
// and selects with the same query (common/odata) and adds the counts.
static void
fan_list(gw_job *j, const int *backends, size_t nb, const char *list,
    const char *order, const dre_odata_fields *fields, const char *what)
{
	param_list pl, *mine;
	int64_t    top, skip;
	fan_query *q;
	char      *want;

	if (!fan_int(j, "$top", 100, 1000, &top)
	    || !fan_int(j, "$skip", 0, DRE_AUDIT_TOP_MAX - top, &skip))
		return;
	// mine: the query as the gateway applies it (its render's ctx).
	mine = dre_arena_get(j->arena, sizeof *mine);
	q = dre_arena_get(j->arena, sizeof *q);
	want = dre_arena_get(j->arena, 24);
	if (mine == NULL || q == NULL || want == NULL) {
		gw_job_oom(j);
		return;
	}
	if (!params_init(&pl, j, 40) || !params_init(mine, j, 40))
		return;
	MHD_get_connection_values(
	    j->conn, MHD_GET_ARGUMENT_KIND, query_arg, mine);
	bool ordered = false;
	for (size_t i = 0; i < mine->n; i++) {
		const char *k = mine->params[i]->key;
		if (strcmp(k, "$orderby") == 0)
			ordered = true;
		if (strcmp(k, "$top") != 0 && strcmp(k, "$skip") != 0
		    && strcmp(k, "$select") != 0)
			param_add(&pl, k, mine->params[i]->value);
	}
	if (!ordered) { // oldest first across the services too
		param_add(&pl, "$orderby", order);
		param_add(mine, "$orderby", order);
	}
	snprintf(want, 24, "%lld", (long long) (skip + top));
	param_add(&pl, "$top", want);
	param_add(&pl, "$skip", "0");
	dre__rpc_request__init(&q->mine);
	q->mine.params = mine->params;
	q->mine.n_params = mine->n;
	q->fields = fields;
	q->what = what;
	j->ctx = q;
	gw_fanout(j, backends, nb, list, pl.params, pl.n,
	    (int) j->g->cfg->rpc_timeout_ms, render_fan_list);
}

static void
gw_audit_logs(gw_job *j)
{
	fan_list(j, audit_backends, sizeof audit_backends / sizeof(int),
	    "AuditLogs.list", "at", &dre_audit_fields, "audit log");
}

// fan_merge keeps every record of one service's page for the merge and
// adds its count; false once it has answered.
static bool
fan_merge(gw_job *j, const dre_odata *q, dre_odata_list *kept,
    const Dre__RpcReply *rep, int64_t *count, const char *what)
{
	dre_json       *root = NULL;
	const dre_json *c, *v;
	if (dre_json_parse(&root, j->arena,
	        rep->has_body ? (const char *) rep->body.data : "",
	        rep->has_body ? rep->body.len : 0, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK
	    || !dre_json_is(c = dre_json_get(root, "count"), DRE_JSON_NUMBER)
	    || !dre_json_is(v = dre_json_get(root, "value"), DRE_JSON_ARRAY)) {
		gw_job_error(
		    j, 503, "UNAVAILABLE", NULL, "undecodable %s page", what);
		return false;
	}
	*count += strtoll(c->str, NULL, 10);
	for (const dre_json *x = v->child; x != NULL; x = x->next) {
		dre_buf   b = { 0 };
		dre_jsonw w;
		dre_jsonw_init(&w, &b);
		dre_jsonw_json(&w, x);
		char  *text = b.oom
		     ? NULL
		     : dre_arena_strndup(j->arena, b.data, b.len);
		size_t len = b.len;
		dre_buf_free(&b);
		if (text == NULL || !dre_odata_keep(q, kept, x, text, len)) {
			gw_job_oom(j);
			return false;
		}
	}
	return true;
}

static void
render_fan_list(gw_job *j)
{
	gw_fanout_t     *f = j->fan;
	const fan_query *fq = j->ctx;
	dre_rpc_call     call = { 0 };
	dre_odata       *q = NULL;
	dre_odata_error  qerr;
	dre_odata_list   kept = { 0 };
	dre_buf          vals = { 0 };
	int64_t          count = 0;
	bool             answered = false;

	// A service's refusal (the query) or absence answers for all.
	for (size_t i = 0; i < f->n && !answered; i++) {
		gw_fan_slot *sl = &f->s[i];
		if (sl->err == DRE_OK && sl->rep != NULL
		    && sl->rep->status < 400)
			continue;
		j->rpc_err = sl->err;
		j->rep = sl->rep; // freed with the job
		sl->rep = NULL;
		if (j->rpc_err != DRE_OK)
			dre_warn("%s: %s: %s", fq->what, sl->name,
			    dre_strerror(j->rpc_err));
		answered = gw_job_reply_error(j);
	}
	call.tenant = j->who.tenant;
	call.principal = j->who.principal;
	call.req = &fq->mine;
	if (!answered
	    && dre_odata_parse(
	           &q, j->arena, &call, fq->fields, 100, 1000, &qerr)
	        != DRE_OK) {
		gw_job_error(j, 400, "VALIDATION_FAILED", qerr.target, "%s",
		    qerr.message);
		answered = true;
	}
	for (size_t i = 0; i < f->n && !answered; i++)
		answered
		    = !fan_merge(j, q, &kept, f->s[i].rep, &count, fq->what);
	if (answered) {
		free(kept.v);
		return;
	}
	dre_odata_page(q, &kept, &vals);
	free(kept.v);
	dre_buf_reset(&j->out);
	dre_buf_printf(&j->out,
	    "{\"minorVersion\":13,\"count\":%lld,\"value\":[",
	    (long long) count);
	dre_buf_append(&j->out, vals.data, vals.len);
	dre_buf_puts(&j->out, "]}");
	bool oom = vals.oom || j->out.oom;
	dre_buf_free(&vals);
	if (oom)
		gw_job_oom(j);
	else
		gw_job_respond(j, 200, j->out.data, j->out.len, GW_JSON_CT);
}

// ---------------------------------------------------------------- imports
//
// Import jobs (PRODUCT-DECISIONS §11, dre/importjob.h) live in the service
// that owns the entity; a job id "<service>-<uuid>" names it. Uploads are
// streamed: every GW_STREAM_CHUNK of the body goes to the owner
// (ImportJobs.append) while the connection waits, so the gateway holds one
// chunk at a time whatever the file's size.

static const struct {
	const char *entity;
	int         backend;
} import_owners[] = {
	{ "Articles", GW_CATALOG },
	{ "ArticleGroups", GW_CATALOG },
	{ "PosGroups", GW_CATALOG },
	{ "Promotions", GW_CATALOG },
	{ "CouponCodes", GW_COUPON },
	{ "CouponTypes", GW_COUPON },
	{ "Budgets", GW_BUDGET },
	{ "Contacts", GW_LOYALTY },
};

static const int import_backends[]
    = { GW_CATALOG, GW_COUPON, GW_BUDGET, GW_LOYALTY };

// GET /api/v1/ImportJobs: every owner's jobs, oldest first.
static void
gw_import_list(gw_job *j)
{
	fan_list(j, import_backends, sizeof import_backends / sizeof(int),
	    "ImportJobs.list", "createdAt", &dre_ijob_fields, "import jobs");
}

static int
owner_of_entity(const char *entity)
{
	for (size_t i = 0;
	     entity && i < sizeof import_owners / sizeof import_owners[0]; i++)
		if (strcmp(import_owners[i].entity, entity) == 0)
			return import_owners[i].backend;
	return -1;
}

// owner_of_job: the backend whose name prefixes the job id; -1 when none.
static int
owner_of_job(const char *id)
{
	const char *dash = id ? strchr(id, '-') : NULL;
	if (dash == NULL)
		return -1;
	for (int b = 0; b < GW_NBACKENDS; b++) {
		size_t n = strlen(gw_backends[b].name);
		if ((size_t) (dash - id) == n
		    && strncmp(id, gw_backends[b].name, n) == 0)
			return b;
	}
	return -1;
}

static void
job_not_found(gw_job *j, const char *id)
{
	gw_job_error(j, 404, "NOT_FOUND", NULL, "import job '%s' not found",
	    id ? id : "");
}

// call_owner sends method with params pl and body[0..len) to backend b.
static void
call_owner(gw_job *j, int b, const char *method, param_list *pl,
    const void *body, size_t len, gw_render render)
{
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	char           *roles[32];
	snprintf(j->rpc_method, sizeof j->rpc_method, "%s.%s",
	    gw_backends[b].name, method);
	gw_job_envelope(j, &req, j->rpc_method, roles);
	if (pl != NULL) {
		req.params = pl->params;
		req.n_params = pl->n;
	}
	if (len > 0) {
		req.has_body = 1;
		req.body.data = (uint8_t *) body;
		req.body.len = len;
	}
	gw_job_call(j, j->g->backends[b].clients[0], &req, render);
}

// forward_owner is gw_forward to backend b's method (query arguments and
// the path's id as params; jobId added when not NULL).
static void
forward_owner(gw_job *j, int b, const char *method, const char *job_id)
{
	param_list pl;
	if (!params_init(&pl, j, 40))
		return;
	if (j->id != NULL)
		param_add(&pl, "id", j->id);
	if (job_id != NULL)
		param_add(&pl, "jobId", job_id);
	MHD_get_connection_values(
	    j->conn, MHD_GET_ARGUMENT_KIND, query_arg, &pl);
	call_owner(
	    j, b, method, &pl, j->body.data, j->body.len, gw_render_forward);
}

// POST /api/v1/ImportJobs: to the owner of the body's entity.
static void
gw_import_create(gw_job *j)
{
	dre_json *root;
	if (!gw_parse_json_body(j, &root))
		return;
	const dre_json *e = dre_json_is(root, DRE_JSON_OBJECT)
	    ? dre_json_get(root, "entity")
	    : NULL;
	int             b
	    = owner_of_entity(dre_json_is(e, DRE_JSON_STRING) ? e->str : NULL);
	if (b < 0) {
		gw_job_error(j, 400, "VALIDATION_FAILED", "entity",
		    "entity '%s' cannot be imported (Articles, ArticleGroups, "
		    "PosGroups, Promotions, CouponCodes, ...)",
		    dre_json_is(e, DRE_JSON_STRING) ? e->str : "");
		return;
	}
	forward_owner(j, b, "ImportJobs.create", NULL);
}

// GET /api/v1/ImportJobs/:id, POST …/:id/cancel, GET
// /api/v1/ArticleImportJobs/:id: to the job's owner.
static void
gw_import_job(gw_job *j)
{
	int b = owner_of_job(j->id);
	if (b < 0) {
		job_not_found(j, j->id);
		return;
	}
	forward_owner(j, b, j->route->arg, NULL);
}

// filter_job_id finds jobId eq '<id>' in $filter (in the arena).
static const char *
filter_job_id(gw_job *j)
{
	const char *f = MHD_lookup_connection_value(
	    j->conn, MHD_GET_ARGUMENT_KIND, "$filter");
	const char *p = f ? strstr(f, "jobId eq '") : NULL;
	if (p == NULL)
		return NULL;
	p += strlen("jobId eq '");
	const char *e = strchr(p, '\'');
	return e ? dre_arena_strndup(j->arena, p, (size_t) (e - p)) : NULL;
}

// GET /api/v1/ImportJobErrors, /api/v1/ArticleImportJobItems: the rows of
// one job, named by $filter=jobId eq '<id>'.
static void
gw_import_rows(gw_job *j)
{
	const char *id = filter_job_id(j);
	if (id == NULL) {
		// The query's own problems first (as every list answers them).
		param_list      pl;
		Dre__RpcRequest q = DRE__RPC_REQUEST__INIT;
		dre_rpc_call    call = { 0 };
		dre_odata      *od = NULL;
		dre_odata_error qerr;
		if (!params_init(&pl, j, 40))
			return;
		MHD_get_connection_values(
		    j->conn, MHD_GET_ARGUMENT_KIND, query_arg, &pl);
		q.params = pl.params;
		q.n_params = pl.n;
		call.tenant = j->who.tenant;
		call.principal = j->who.principal;
		call.req = &q;
		if (dre_odata_parse(&od, j->arena, &call,
		        strstr(j->route->arg, "Items")
		            ? &dre_ijob_item_fields
		            : &dre_ijob_error_fields,
		        100, 1000, &qerr)
		    == DRE_EINVAL) {
			gw_job_error(j, 400, "VALIDATION_FAILED", qerr.target,
			    "%s", qerr.message);
			return;
		}
		gw_job_error(j, 400, "VALIDATION_FAILED", "$filter",
		    "the rows are read per job: $filter=jobId eq '<id>'");
		return;
	}
	int b = owner_of_job(id);
	if (b < 0) {
		job_not_found(j, id);
		return;
	}
	forward_owner(j, b, j->route->arg, id);
}

// ---- the streamed upload (PUT <uploadUrl>, POST /api/v1/<E>:bulk-import)

typedef struct {
	int  backend;
	char id[96];
	bool bulk; // :bulk-import: the job is created with the first chunk
} stream_ctx;

static void stream_next(gw_job *j);

static bool
stream_failed(gw_job *j)
{
	if (j->rpc_err == DRE_OK && j->rep != NULL && j->rep->status < 400)
		return false;
	// Mid-body the answer waits until the rest is read (and dropped).
	j->in_upload = j->streaming;
	gw_job_reply_error(j);
	j->in_upload = false;
	return true;
}

static void
render_stream_done(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	if (stream_failed(j))
		return;
	if (!s->bulk) {
		gw_render_forward(j); // 202 the job, QUEUED
		return;
	}
	dre_buf_reset(&j->out);
	dre_jsonw w;
	char      url[160];
	snprintf(url, sizeof url, "/api/v1/ImportJobs/%s", s->id);
	dre_jsonw_init(&w, &j->out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "jobId", s->id);
	dre_jsonw_kstr(&w, "status", "QUEUED");
	dre_jsonw_kstr(&w, "statusUrl", url);
	dre_jsonw_obj_end(&w);
	if (j->out.oom)
		gw_job_oom(j);
	else
		gw_job_respond(j, 202, j->out.data, j->out.len, GW_JSON_CT);
}

static void
render_stream_chunk(gw_job *j)
{
	if (stream_failed(j))
		return;
	dre_rpc_reply_msg_free(j->rep);
	j->rep = NULL;
	j->stream_off += (int64_t) j->body.len;
	dre_buf_reset(&j->body);
	if (j->streaming)
		j->state = JOB_READ; // read on (http.c)
	else
		stream_next(j); // the last chunk is in: complete
}

// stream_next passes the chunk in j->body on, or completes the job once
// the body is complete and passed on.
static void
stream_next(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	param_list  pl;
	if (!params_init(&pl, j, 4))
		return;
	param_add(&pl, "id", s->id);
	if (j->body.len == 0 && !j->streaming) {
		call_owner(j, s->backend, "ImportJobs.complete", &pl, NULL, 0,
		    render_stream_done);
		return;
	}
	char *off = dre_arena_get(j->arena, 24);
	if (off == NULL) {
		gw_job_oom(j);
		return;
	}
	snprintf(off, 24, "%lld", (long long) j->stream_off);
	param_add(&pl, "offset", off);
	call_owner(j, s->backend, "ImportJobs.append", &pl, j->body.data,
	    j->body.len, render_stream_chunk);
}

static void
render_bulk_created(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	dre_json   *root = NULL;
	if (stream_failed(j))
		return;
	const dre_json *id = NULL;
	if (dre_json_parse(&root, j->arena,
	        j->rep->has_body ? (const char *) j->rep->body.data : "",
	        j->rep->has_body ? j->rep->body.len : 0, DRE_JSON_MAX_DEPTH,
	        NULL)
	    == DRE_OK)
		id = dre_json_get(root, "id");
	if (!dre_json_is(id, DRE_JSON_STRING)) {
		gw_job_error(j, 503, "UNAVAILABLE", NULL,
		    "undecodable import job answer");
		return;
	}
	snprintf(s->id, sizeof s->id, "%s", id->str);
	dre_rpc_reply_msg_free(j->rep);
	j->rep = NULL;
	stream_next(j);
}

// render_aborted answers the refusal once the owner has failed the job.
static void
render_aborted(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	if (j->rpc_err != DRE_OK || j->rep == NULL || j->rep->status >= 300)
		dre_warn("import job %s: its upload was refused (HTTP %d) "
		         "but the job could not be failed: %s",
		    s->id, j->key_refusal,
		    j->rpc_err != DRE_OK ? dre_strerror(j->rpc_err)
		                         : "the owner refused");
	if (j->rep != NULL) {
		dre_rpc_reply_msg_free(j->rep);
		j->rep = NULL;
	}
	j->rpc_err = DRE_OK;
	gw_key_refused_reply(j);
}

// stream_key_refused: the API key was revoked (or lost the role) while
// the body streamed. The job the accepted chunks began is FAILED at its
// owner (its data removed, nothing imported), then the 401/403 answers.
static void
stream_key_refused(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	param_list  pl;
	if (s == NULL || s->id[0] == 0 || s->backend < 0) {
		gw_key_refused_reply(j);
		return;
	}
	if (!params_init(&pl, j, 2))
		return;
	param_add(&pl, "id", s->id);
	call_owner(
	    j, s->backend, "ImportJobs.abort", &pl, NULL, 0, render_aborted);
}

// bulk_format: ?format=, else the media type (JSON by default).
static const char *
bulk_format(gw_job *j)
{
	const char *f = MHD_lookup_connection_value(
	    j->conn, MHD_GET_ARGUMENT_KIND, "format");
	const char *ct = gw_job_header(j, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (f != NULL)
		return f;
	if (ct != NULL && strncasecmp(ct, "text/csv", 8) == 0)
		return "CSV";
	if (ct != NULL
	    && (strncasecmp(ct, "application/x-ndjson", 20) == 0
	        || strncasecmp(ct, "application/jsonl", 17) == 0))
		return "NDJSON";
	return "JSON";
}

// The route handler of both: runs at every chunk (j->streaming) and once
// at the end of the body.
static void
gw_import_stream(gw_job *j)
{
	stream_ctx *s = (stream_ctx *) j->ctx;
	if (s == NULL) {
		if ((s = dre_arena_get(j->arena, sizeof *s)) == NULL) {
			gw_job_oom(j);
			return;
		}
		memset(s, 0, sizeof *s);
		j->ctx = s;
		j->on_key_refused = stream_key_refused;
		s->bulk = j->id == NULL;
		if (s->bulk) {
			s->backend = owner_of_entity(j->route->arg);
		} else {
			s->backend = owner_of_job(j->id);
			snprintf(s->id, sizeof s->id, "%s", j->id);
		}
		if (s->backend < 0) {
			j->in_upload = j->streaming;
			job_not_found(j, j->id);
			j->in_upload = false;
			return;
		}
		if (s->bulk) { // create first: entity, format, mode
			dre_buf     b = { 0 };
			dre_jsonw   w;
			const char *mode = MHD_lookup_connection_value(
			    j->conn, MHD_GET_ARGUMENT_KIND, "mode");
			dre_jsonw_init(&w, &b);
			dre_jsonw_obj_begin(&w);
			dre_jsonw_kstr(&w, "entity", j->route->arg);
			dre_jsonw_kstr(&w, "format", bulk_format(j));
			dre_jsonw_kstr(&w, "mode", mode);
			dre_jsonw_obj_end(&w);
			char  *body = b.oom
			     ? NULL
			     : dre_arena_strndup(j->arena, b.data, b.len);
			size_t len = b.len;
			dre_buf_free(&b);
			if (body == NULL) {
				gw_job_oom(j);
				return;
			}
			call_owner(j, s->backend, "ImportJobs.create", NULL,
			    body, len, render_bulk_created);
			return;
		}
	}
	stream_next(j);
}
