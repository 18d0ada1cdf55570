// catalog/identity.h -- API clients, API keys and the deployment's token
// signing keys (issue 13): the catalog owns them, in its store, so that
// every gateway sees a revocation with its very next request.
#ifndef CAT_IDENTITY_H
#define CAT_IDENTITY_H

#include <stdint.h>

#include "catalog.h"
#include "dre/rpc.h"

typedef struct {
	const char *issuer; // iss of the tokens issued
	int64_t     token_ttl_s; // lifetime of a token
	const char *key_tenant; // whose Admin may rotate the signing key
	int64_t     key_lease_ms; // an accepted API key's lease (0: none)
} cat_id_cfg;

// cat_id_open loads the signing keys, creating the first one on the first
// start; cat_id_close frees them.
dre_err cat_id_open(cat *c, const cat_id_cfg *cfg);
void    cat_id_close(cat *c);

// The nng handlers (routes in handlers.c).
void h_apiclients_create(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apiclients_list(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apiclients_get(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apiclients_delete(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apikeys_create(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apikeys_list(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apikeys_get(void *svc, const dre_rpc_call *, dre_rpc_reply *);
void h_apikeys_delete(void *svc, const dre_rpc_call *, dre_rpc_reply *);
// ApiKeys.verify: body = the presented key; 200 with the headers
// dre-tenant, dre-principal, dre-roles (role bits, decimal), else 401.
void h_apikeys_verify(void *svc, const dre_rpc_call *, dre_rpc_reply *);
// OAuth.token: params grant_type, client_id, client_secret, scope; answers
// the RFC 6749 token or error document.
void h_oauth_token(void *svc, const dre_rpc_call *, dre_rpc_reply *);
// Jwks.get: {"keys": [public keys that still verify]}, header dre-issuer.
void h_jwks_get(void *svc, const dre_rpc_call *, dre_rpc_reply *);
// SigningKeys.rotate: a new key signs from now on; the old ones verify
// until the tokens they signed have expired.
void h_signingkeys_rotate(void *svc, const dre_rpc_call *, dre_rpc_reply *);

#endif
