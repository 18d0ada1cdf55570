// health.h -- the process's readiness: named checks, each a function that
// says whether a dependency the process needs is usable now.
//
// Every service answers `<svc>.Health` on its rpc socket with the checks
// (rpc.c): 200 and {"status":"UP",...} when all pass, 503 and "DOWN"
// otherwise. Answering at all means alive.
#ifndef DRE_HEALTH_H
#define DRE_HEALTH_H

#include <stdbool.h>

#include "dre/buf.h"

typedef bool (*dre_health_fn)(void *arg);

// dre_health_add registers a check named name (copied); remove it before
// arg is freed.
void dre_health_add(const char *name, dre_health_fn fn, void *arg);
void dre_health_remove(dre_health_fn fn, void *arg);

// dre_health_render runs every check and appends
// {"status":"UP"|"DOWN","checks":{"<name>":"UP"|"DOWN",...}}; true when
// all passed.
bool dre_health_render(dre_buf *out);

#endif
