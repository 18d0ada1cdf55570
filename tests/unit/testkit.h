// testkit.h -- the scaffolding unit tests share: scratch directories and an
// in-process broker with the client properties that reach it.
#ifndef DRE_TESTKIT_H
#define DRE_TESTKIT_H

#include <stddef.h>

#include "dre/busmock.h"
#include "dre/config.h"
#include "dre/rpc.h"

// tk_tmpdir makes a fresh, empty directory /tmp/dre-test-<tag>-XXXXXX and
// writes its path into dir (n bytes). Returns 0, or -1 when it cannot.
int tk_tmpdir(char *dir, size_t n, const char *tag);
// tk_rmtree removes path and everything below it. Returns 0, or -1.
int tk_rmtree(const char *path);
// tk_broker_open starts a one-broker mock cluster with every DRE topic and
// sets bootstrap.servers in props to it. Returns 0, or -1.
int tk_broker_open(dre_bus_mock **mock, dre_kvlist *props);
// tk_broker_close frees props and stops the cluster.
void tk_broker_close(dre_bus_mock *mock, dre_kvlist *props);

// tk_call runs the handler of method in routes (svc its state) in the
// calling thread, as an nng call of tenant by principal "test" with body
// (NULL: none) and params ("k=v" strings, NULL-terminated, at most 8 of
// at most 127 bytes). Returns the status, or -1 when the reply breaks the
// rules every handler keeps (a 2xx with a body not application/json, an
// error without a code). *out (when out is not NULL; free it) is the body,
// or the error's target ("" when none) for a status >= 400.
int tk_call(const dre_rpc_route *routes, void *svc, const char *method,
    const char *tenant, const char *body, const char *const *params,
    char **out);

#endif
