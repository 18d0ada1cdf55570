// auth.h -- who is calling: Basic dev users (and later JWT, API keys).
#ifndef DRE_AUTH_H
#define DRE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "dre/err.h"

#define DRE_ROLE_MAP(XX)                                                      \
	XX(ADMIN, "Admin")                                                    \
	XX(POS_READER, "POSReader")                                           \
	XX(PROMOTION_MANAGER, "PromotionManager")                             \
	XX(PROMOTION_APPROVER, "PromotionApprover")                           \
	XX(BUDGET_MANAGER, "BudgetManager")                                   \
	XX(PUBLIC_API_READER, "PublicApiReader")                              \
	XX(PUBLIC_API_WRITER, "PublicApiWriter")                              \
	XX(SYNC_SERVICE, "SyncService")                                       \
	XX(LOCAL_DEPLOYMENT, "LocalDeployment")                               \
	XX(MASTER_DATA_INGESTER, "MasterDataIngester")                        \
	XX(AUDITOR, "Auditor")

enum {
#define DRE_ROLE_BIT(name, text) DRE_ROLE_BIT_##name,
	DRE_ROLE_MAP(DRE_ROLE_BIT)
#undef DRE_ROLE_BIT
};
#define DRE_ROLE(name) (1u << DRE_ROLE_BIT_##name)

#define DRE_TENANT_MAX    64
#define DRE_PRINCIPAL_MAX 64

typedef struct {
	char     tenant[DRE_TENANT_MAX + 1];
	char     principal[DRE_PRINCIPAL_MAX + 1];
	uint32_t roles; // DRE_ROLE() bits
} dre_principal;

typedef struct dre_auth dre_auth;

// dre_auth_open parses the user table "user:password:Role[+Role]:tenant"
// separated by ',' or ';'. dev_users adds the PRODUCT-DECISIONS §2 users.
// Caller closes with dre_auth_close().
dre_err dre_auth_open(dre_auth **ap, const char *users, bool dev_users);
void    dre_auth_close(dre_auth *a);

// dre_auth_check authenticates an Authorization header value (NULL when
// absent). DRE_EAUTH when missing or wrong. Constant-time password compare.
dre_err dre_auth_check(
    const dre_auth *a, const char *authorization, dre_principal *out);

// dre_role_parse maps a role name ("Admin") to its bit, 0 if unknown.
uint32_t dre_role_parse(const char *name);
// dre_role_name returns the name of a single role bit; NULL when bit is not
// exactly one known role.
const char *dre_role_name(uint32_t bit);

#endif
