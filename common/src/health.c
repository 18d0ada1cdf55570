// health.c -- named readiness checks of the process (dre/health.h).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dre/health.h"
#include "dre/jsonw.h"

typedef struct check {
	char         *name;
	dre_health_fn fn;
	void         *arg;
	struct check *next;
} check;

static pthread_mutex_t health_mu = PTHREAD_MUTEX_INITIALIZER;
static check          *checks, *checks_last;

void
dre_health_add(const char *name, dre_health_fn fn, void *arg)
{
	check *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->name = strdup(name)) == NULL) {
		free(c);
		return;
	}
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&health_mu);
	if (checks_last != NULL)
		checks_last->next = c;
	else
		checks = c;
	checks_last = c;
	pthread_mutex_unlock(&health_mu);
}

void
dre_health_remove(dre_health_fn fn, void *arg)
{
	pthread_mutex_lock(&health_mu);
	check *prev = NULL;
	for (check *c = checks; c != NULL; prev = c, c = c->next) {
		if (c->fn != fn || c->arg != arg)
			continue;
		if (prev != NULL)
			prev->next = c->next;
		else
			checks = c->next;
		if (checks_last == c)
			checks_last = prev;
		free(c->name);
		free(c);
		break;
	}
	pthread_mutex_unlock(&health_mu);
}

bool
dre_health_render(dre_buf *out)
{
	dre_buf   inner;
	dre_jsonw w;
	bool      all = true;

	dre_buf_init(&inner);
	dre_jsonw_init(&w, &inner);
	dre_jsonw_obj_begin(&w);
	pthread_mutex_lock(&health_mu);
	for (check *c = checks; c != NULL; c = c->next) {
		bool ok = c->fn(c->arg);
		all = all && ok;
		dre_jsonw_kstr(&w, c->name, ok ? "UP" : "DOWN");
	}
	pthread_mutex_unlock(&health_mu);
	dre_jsonw_obj_end(&w);
	dre_buf_printf(
	    out, "{\"status\":\"%s\",\"checks\":", all ? "UP" : "DOWN");
	dre_buf_append(out, inner.data, inner.len);
	dre_buf_putc(out, '}');
	dre_buf_free(&inner);
	return all;
}
