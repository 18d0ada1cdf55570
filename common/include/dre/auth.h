// auth.h -- who is calling: Basic users from configuration (plaintext dev
// users, crypt(3) hashes), role names, and the hook for auth events. JWTs and
// secrets: dre/token.h.
#ifndef DRE_AUTH_H
#define DRE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
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
// separated by ',' or ';'. A password starting with '$' is a crypt(3) hash
// ($y$, $2b$, $6$, ...). dev_users adds the PRODUCT-DECISIONS §2 users (one
// per role, plaintext).
// Caller closes with dre_auth_close().
dre_err dre_auth_open(dre_auth **ap, const char *users, bool dev_users);
void    dre_auth_close(dre_auth *a);

// dre_auth_check authenticates an Authorization header value (NULL when
// absent). DRE_EAUTH when missing or wrong. Constant-time password compare.
dre_err dre_auth_check(
    const dre_auth *a, const char *authorization, dre_principal *out);

// dre_auth_tenant_of copies the tenant of the configured user name into
// out (cap bytes) and answers true; false (out "") when no such user. For
// an event about a user (a burst of failed logins), never to authenticate.
bool dre_auth_tenant_of(
    const dre_auth *a, const char *name, char *out, size_t cap);

// dre_auth_basic_split decodes a Basic header into user (ucap bytes) and,
// unless pass is NULL, the password (pcap bytes); false when the header is
// not Basic, not decodable or does not fit.
bool dre_auth_basic_split(const char *authorization, char *user, size_t ucap,
    char *pass, size_t pcap);

// dre_roles_text writes the names of roles joined by sep ("Admin or
// POSReader") into out; returns out.
char *dre_roles_text(uint32_t roles, const char *sep, char *out, size_t cap);

// Auth events ("token.issued", "apikey.created", "apikey.revoked",
// "apiclient.created", "apiclient.deleted", "signingkey.rotated",
// "login.failure_burst", ...): who (tenant, principal) did what to which
// subject (a client id, key prefix, user name), from where (a source
// address or ""). Each is logged as one structured line
//   auth-event event=<e> tenant=<t> principal=<p> subject=<s> source=<a>
// and handed to the hook, if one is set (the audit log of issue 13 point 6
// sets it). Never pass a secret.
typedef void (*dre_auth_event_fn)(void *arg, const char *event,
    const char *tenant, const char *principal, const char *subject,
    const char *source);
void dre_auth_event_hook(dre_auth_event_fn fn, void *arg);
void dre_auth_event(const char *event, const char *tenant,
    const char *principal, const char *subject, const char *source);

// dre_role_parse maps a role name ("Admin") to its bit, 0 if unknown.
uint32_t dre_role_parse(const char *name);
// dre_role_name returns the name of a single role bit; NULL when bit is not
// exactly one known role.
const char *dre_role_name(uint32_t bit);

#endif
